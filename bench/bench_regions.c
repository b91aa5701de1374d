/* One parallel region per pass (src/engine/par.h) against one region per op
 * (gr_ops_set_pass_region(0), the previous behaviour), alternated in one
 * process so that both see the same machine load. Random Llama weights
 * (speed does not depend on them); every workload is timed REPS times per
 * mode and the medians are printed, by wall clock and by process CPU time.
 *
 *   bench_regions [--threads 2] [--reps 5] [--dim 128] [--layers 2]
 *                 [--beams 20] [--prompt 214] [--steps 30] [--train-seq 4x64]
 *
 * Workloads:
 *   beam    bench_beam's shape: a prompt prefilled once, shared by B beams,
 *           then S cached steps of B tokens (gr_tfm_forward_cached);
 *   single  one stream: S*4 cached steps of 1 token after a 1-token prompt;
 *   train   gr_tfm_forward(train=1) + gr_tfm_backward on 4 sequences of 64.
 */
#include "genrec/common.h"
#include "genrec/decode.h"
#include "genrec/ops.h"
#include "genrec/transformer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_regions: %s: %s\n", what, gr_error_message());
    exit(1);
}

typedef struct wl {
    gr_tfm *m;
    gr_kv_cache *kc;
    const gr_tfm_config *cfg;
    int beams, prompt, steps, n_seq, seq_len;
    float *x, *out;
} wl;

static void run_beam(wl *w)
{
    gr_kv_cache_clear(w->kc);
    int32_t slot0 = 0, off[2] = {0, w->prompt};
    if (gr_tfm_forward_cached(w->m, w->kc, w->x, &slot0, off, 1, w->prompt, w->out) != GR_OK) die("prefill");
    int32_t *slots = malloc(sizeof(int32_t) * (size_t)w->beams), *so = malloc(sizeof(int32_t) * (size_t)(w->beams + 1));
    so[0] = 0;
    for (int b = 0; b < w->beams; b++) {
        slots[b] = b + 1;
        so[b + 1] = b + 1;
        if (gr_kv_cache_share_prefix(w->kc, b + 1, 0, w->prompt) != GR_OK) die("share");
    }
    for (int s = 0; s < w->steps; s++)
        if (gr_tfm_forward_cached(w->m, w->kc, w->x, slots, so, w->beams, w->beams, w->out) != GR_OK) die("step");
    free(slots);
    free(so);
}

static void run_single(wl *w)
{
    gr_kv_cache_clear(w->kc);
    int32_t slot0 = 0, off[2] = {0, 1};
    for (int s = 0; s < w->steps * 4 && s < w->cfg->max_T; s++)
        if (gr_tfm_forward_cached(w->m, w->kc, w->x + (size_t)s * w->cfg->d_model, &slot0, off, 1, 1, w->out) != GR_OK)
            die("single step");
}

static void run_train(wl *w)
{
    int N = w->n_seq * w->seq_len;
    int32_t *pos = malloc(sizeof(int32_t) * (size_t)N), *so = malloc(sizeof(int32_t) * (size_t)(w->n_seq + 1));
    for (int s = 0; s <= w->n_seq; s++) so[s] = s * w->seq_len;
    for (int i = 0; i < N; i++) pos[i] = i % w->seq_len;
    if (gr_tfm_forward(w->m, w->x, pos, so, w->n_seq, N, w->out, 1, NULL) != GR_OK) die("forward");
    if (gr_tfm_backward(w->m, w->x, NULL) != GR_OK) die("backward");
    free(pos);
    free(so);
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void bench(const char *name, void (*fn)(wl *), wl *w, int reps)
{
    double wall[2][64], cpu[2][64];
    for (int r = 0; r < reps; r++)
        for (int mode = 0; mode < 2; mode++) {
            gr_ops_set_pass_region(mode);
            double t0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
            fn(w);
            wall[mode][r] = now(CLOCK_MONOTONIC) - t0;
            cpu[mode][r] = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
        }
    for (int mode = 0; mode < 2; mode++) {
        qsort(wall[mode], (size_t)reps, sizeof(double), cmp);
        qsort(cpu[mode], (size_t)reps, sizeof(double), cmp);
    }
    printf("%-7s one region per op: %8.2f ms wall %8.2f ms CPU | per pass: %8.2f ms wall %8.2f ms CPU"
           " | speedup %.2fx wall %.2fx CPU\n",
           name, wall[0][reps / 2] * 1e3, cpu[0][reps / 2] * 1e3, wall[1][reps / 2] * 1e3,
           cpu[1][reps / 2] * 1e3, wall[0][reps / 2] / wall[1][reps / 2], cpu[0][reps / 2] / cpu[1][reps / 2]);
    gr_ops_set_pass_region(1);
}

int main(int argc, char **argv)
{
    int threads = 2, reps = 5, dim = 128, layers = 2;
    wl w = {.beams = 20, .prompt = 214, .steps = 30, .n_seq = 4, .seq_len = 64};
    for (int i = 1; i + 1 < argc; i += 2) {
        int v = atoi(argv[i + 1]);
        if (!strcmp(argv[i], "--threads")) threads = v;
        else if (!strcmp(argv[i], "--reps")) reps = v;
        else if (!strcmp(argv[i], "--dim")) dim = v;
        else if (!strcmp(argv[i], "--layers")) layers = v;
        else if (!strcmp(argv[i], "--beams")) w.beams = v;
        else if (!strcmp(argv[i], "--prompt")) w.prompt = v;
        else if (!strcmp(argv[i], "--steps")) w.steps = v;
        else if (!strcmp(argv[i], "--train-seq") && sscanf(argv[i + 1], "%dx%d", &w.n_seq, &w.seq_len) == 2) {}
        else { fprintf(stderr, "unknown or bad flag %s\n", argv[i]); return 2; }
    }
    if (reps < 1 || reps > 64 || dim < 4 || dim % 4 || layers < 1 || w.beams < 1 || w.prompt < 1 ||
        w.steps < 1 || w.n_seq < 1 || w.seq_len < 1) {
        fprintf(stderr, "bad sizes\n");
        return 2;
    }
    gr_threads_set(threads);
    gr_tfm_config c = {.n_layer = layers, .d_model = dim, .n_head = 4, .n_kv_head = 4, .d_ff = 3 * dim,
                       .max_T = 256, .norm = GR_NORM_RMS, .act = GR_ACT_SWIGLU, .pos = GR_POS_ROPE,
                       .final_norm = 1, .norm_eps = 1e-5f, .rope_theta = 10000.0f};
    int maxN = w.prompt > w.n_seq * w.seq_len ? w.prompt : w.n_seq * w.seq_len;
    if (w.prompt + w.steps > c.max_T || w.seq_len > c.max_T) { fprintf(stderr, "longer than max_T %d\n", c.max_T); return 2; }
    if (maxN < c.max_T) maxN = c.max_T;
    w.m = gr_tfm_init(&c, 1);
    w.kc = w.m ? gr_kv_cache_init(&c, w.beams + 1, c.max_T) : NULL;
    if (!w.kc) die("init");
    w.cfg = gr_tfm_get_config(w.m);
    w.x = malloc(sizeof(float) * (size_t)maxN * dim);
    w.out = malloc(sizeof(float) * (size_t)maxN * dim);
    for (size_t i = 0; i < (size_t)maxN * dim; i++) w.x[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
    printf("Llama d%d x %d layers, %d threads, median of %d (modes alternated)\n", dim, layers, threads, reps);
    run_beam(&w); /* warm up: buffers, thread pool */
    bench("beam", run_beam, &w, reps);
    bench("single", run_single, &w, reps);
    bench("train", run_train, &w, reps);
    gr_kv_cache_free(w.kc);
    gr_tfm_free(w.m);
    free(w.x);
    free(w.out);
    return 0;
}
