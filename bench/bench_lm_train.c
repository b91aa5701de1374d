/* Language-model training throughput and memory (the genrec side of
 * bench/bench_lm_train.sh; bench/lm_train_torch.py is the PyTorch side).
 *
 *   bench_lm_train [--arch gpt2|llama] [--layers 6] [--dim 384] [--heads 6]
 *                  [--kv-heads H] [--ff F] [--ctx 256] [--vocab 8192]
 *                  [--batch 4] [--steps 8] [--skip 2] [--threads 2]
 *                  [--lr 1e-3] [--profile]
 *
 * Data: a fixed pseudo-random token sequence of period 1009 (the same LCG as
 * the Python script), row b of step s starting at stream position
 * (s*B + b)*T, so both engines see identical batches and the loss can fall.
 * One step = forward + full-softmax cross-entropy + backward + global-norm
 * clip (1.0) + AdamW (wd 0.1 on matrices), through gr_trainer. Reported:
 * per-step losses, the median step time after --skip steps as tokens/s,
 * and peak RSS (VmHWM) against params + grads + AdamW m, v + activations.
 * --profile times the phases of the step instead (same calls as
 * gr_lm_forward_backward, unrolled).
 */
#include "genrec/common.h"
#include "genrec/lm.h"
#include "genrec/memstat.h"
#include "genrec/train.h"
#include "genrec/xent.h"
#include "lm/lm_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PERIOD 1009

typedef struct bench {
    gr_lm *lm;
    int B, T, V, step, profile;
    int32_t seq[PERIOD];
    int32_t *tok, *tgt, *off;
    double t_embed, t_fwd, t_xent, t_bwd, t_scatter, t_micro;
} bench;

static void make_batch(bench *b)
{
    for (int r = 0; r < b->B; r++) {
        int64_t start = ((int64_t)b->step * b->B + r) * b->T;
        for (int i = 0; i < b->T; i++) {
            b->tok[r * b->T + i] = b->seq[(start + i) % PERIOD];
            b->tgt[r * b->T + i] = b->seq[(start + i + 1) % PERIOD];
        }
        b->off[r] = r * b->T;
    }
    b->off[b->B] = b->B * b->T;
}

/* gr_lm_forward_backward unrolled with timers (positions 0..T-1 per row). */
static int profiled(bench *b, const gr_lm_batch *bt, float *loss, gr_rng *rng)
{
    gr_lm *lm = b->lm;
    const int N = bt->N, C = lm->C;
    double t0 = gr_time_now();
    if (gr_lm_reserve(lm, N) || gr_lm_embed(lm, bt->tokens, N, lm->x)) return GR_ERR;
    for (int i = 0; i < N; i++) lm->pos[i] = i % b->T;
    double t1 = gr_time_now();
    if (gr_tfm_forward(lm->tfm, lm->x, lm->pos, bt->seq_off, bt->n_seq, N, lm->h, 1, rng)) return GR_ERR;
    double t2 = gr_time_now();
    memset(lm->dh, 0, sizeof(float) * (size_t)N * C);
    if (gr_xent_full(&lm->xent, lm->h, gr_tfm_head(lm->tfm, 0), NULL, bt->targets, N, lm->V, C, loss, lm->dh,
                     gr_tfm_head(lm->tfm, 1), NULL))
        return GR_ERR;
    double t3 = gr_time_now();
    if (gr_tfm_backward(lm->tfm, lm->dh, lm->x)) return GR_ERR;
    double t4 = gr_time_now();
    float *gE = gr_tfm_embd(lm->tfm, 1);
    for (int i = 0; i < N; i++) {
        float *g = gE + (int64_t)bt->tokens[i] * C;
        const float *d = lm->x + (int64_t)i * C;
        for (int c = 0; c < C; c++) g[c] += d[c];
    }
    double t5 = gr_time_now();
    b->t_embed += t1 - t0; b->t_fwd += t2 - t1; b->t_xent += t3 - t2; b->t_bwd += t4 - t3; b->t_scatter += t5 - t4;
    return GR_OK;
}

static int micro(void *ctx, gr_rng *rng, float *loss, int64_t *nt)
{
    bench *b = ctx;
    double t0 = gr_time_now();
    make_batch(b);
    gr_lm_batch bt = {b->tok, b->tgt, NULL, b->off, b->B, b->B * b->T};
    *nt = bt.N;
    int rc = b->profile ? profiled(b, &bt, loss, rng) : gr_lm_forward_backward(b->lm, &bt, loss, rng);
    b->step++;
    b->t_micro += gr_time_now() - t0;
    return rc;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    const char *arch_s = "gpt2";
    int L = 6, C = 384, H = 6, KV = 0, F = 0, T = 256, V = 8192, B = 4, steps = 8, skip = 2, threads = 2, profile = 0;
    double lr = 1e-3;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name, dst, conv) if (!strcmp(a, name) && v) { dst = conv(v); i++; continue; }
        OPT("--arch", arch_s, (const char *));
        OPT("--layers", L, atoi); OPT("--dim", C, atoi); OPT("--heads", H, atoi); OPT("--kv-heads", KV, atoi);
        OPT("--ff", F, atoi); OPT("--ctx", T, atoi); OPT("--vocab", V, atoi); OPT("--batch", B, atoi);
        OPT("--steps", steps, atoi); OPT("--skip", skip, atoi); OPT("--threads", threads, atoi); OPT("--lr", lr, atof);
#undef OPT
        if (!strcmp(a, "--profile")) { profile = 1; continue; }
        fprintf(stderr, "bench_lm_train: unknown or incomplete option '%s'\n", a);
        return 2;
    }
    gr_arch arch = strcmp(arch_s, "llama") ? GR_ARCH_GPT2 : GR_ARCH_LLAMA;
    if (!F) F = arch == GR_ARCH_GPT2 ? 4 * C : 1024;
    if (!KV) KV = H;
    if (steps <= skip) steps = skip + 1;
    gr_threads_set(threads);
    gr_tfm_config cfg;
    gr_lm_config_preset(&cfg, arch, L, C, H, KV, F, T, V);
    bench *b = calloc(1, sizeof *b);
    b->lm = gr_lm_init(arch, &cfg, 1337);
    if (!b->lm) { fprintf(stderr, "%s\n", gr_error_message()); return 1; }
    b->B = B; b->T = T; b->V = V; b->profile = profile;
    uint32_t s = 12345;
    for (int j = 0; j < PERIOD; j++) {
        s = (uint32_t)(((uint64_t)s * 1103515245u + 12345u) & 0x7fffffffu);
        b->seq[j] = (int32_t)((s >> 8) % (uint32_t)V);
    }
    b->tok = malloc(sizeof(int32_t) * (size_t)B * T);
    b->tgt = malloc(sizeof(int32_t) * (size_t)B * T);
    b->off = malloc(sizeof(int32_t) * (size_t)(B + 1));
    gr_tfm *m = gr_lm_tfm(b->lm);
    int64_t n = gr_tfm_n_params(m);
    uint8_t *mask = malloc((size_t)n);
    gr_tfm_decay_mask(m, mask);
    gr_train_config tc;
    gr_train_config_default(&tc);
    tc.steps = steps;
    tc.lr = (float)lr;
    tc.min_lr = (float)lr; /* constant: same as the PyTorch side */
    tc.warmup = 0;
    tc.clip = 1.0f;
    tc.weight_decay = 0.1f;
    tc.log_every = 0;
    gr_train_task task = {0};
    task.ctx = b;
    task.micro_batch = micro;
    gr_trainer *tr = gr_trainer_new(&tc, gr_tfm_params(m), gr_tfm_grads(m), n, mask, &task);
    if (!tr) { fprintf(stderr, "%s\n", gr_error_message()); return 1; }
    printf("genrec %s: layers %d dim %d heads %d/%d ff %d ctx %d vocab %d: %.2fM params; batch %d x %d, %d threads\n",
           arch_s, L, C, H, KV, F, T, V, (double)n / 1e6, B, T, gr_threads_get());
    double *dt = calloc((size_t)steps, sizeof(double));
    float first = 0, last = 0;
    double prof_micro = 0, prof_total = 0;
    for (int k = 0; k < steps; k++) {
        if (k == skip) b->t_embed = b->t_fwd = b->t_xent = b->t_bwd = b->t_scatter = b->t_micro = 0;
        double t0 = gr_time_now();
        float loss;
        if (gr_trainer_step(tr, &loss) != GR_OK) { fprintf(stderr, "%s\n", gr_error_message()); return 1; }
        dt[k] = gr_time_now() - t0;
        if (k >= skip) prof_total += dt[k];
        if (!k) first = loss;
        last = loss;
        printf("step %d loss %.4f time %.3f s\n", k, (double)loss, dt[k]);
        fflush(stdout);
    }
    prof_micro = b->t_micro;
    qsort(dt + skip, (size_t)(steps - skip), sizeof(double), cmp_d);
    double med = dt[skip + (steps - skip) / 2];
    double tps = (double)B * T / med;
    size_t pb = (size_t)n * sizeof(float);
    size_t act = gr_tfm_activation_bytes(m), scr = gr_lm_scratch_bytes(b->lm), peak = gr_mem_peak_rss();
    size_t sum = 4 * pb + act + scr;
    printf("median step %.3f s -> %.0f tokens/s\n", med, tps);
    printf("memory: params %.1f MB, grads %.1f MB, AdamW m+v %.1f MB, activations %.1f MB, lm scratch %.1f MB; "
           "sum %.1f MB; peak RSS %.1f MB = %.3fx the sum\n",
           pb / 1e6, pb / 1e6, 2 * pb / 1e6, act / 1e6, scr / 1e6, sum / 1e6, peak / 1e6, (double)peak / (double)sum);
    if (profile) {
        double per = (double)(steps - skip);
        printf("profile per step (ms): embed %.1f, transformer forward %.1f, head+softmax xent (fwd+bwd) %.1f, "
               "transformer backward %.1f, embedding grad scatter %.1f, clip+AdamW+zero %.1f, total %.1f\n",
               1e3 * b->t_embed / per, 1e3 * b->t_fwd / per, 1e3 * b->t_xent / per, 1e3 * b->t_bwd / per,
               1e3 * b->t_scatter / per, 1e3 * (prof_total - prof_micro) / per, 1e3 * prof_total / per);
    }
    printf("RESULT engine=genrec arch=%s params=%lld tok_s=%.1f loss0=%.4f loss_last=%.4f peak_mb=%.1f sum_mb=%.1f\n",
           arch_s, (long long)n, tps, (double)first, (double)last, peak / 1e6, sum / 1e6);
    gr_trainer_free(tr);
    gr_lm_free(b->lm);
    return 0;
}
