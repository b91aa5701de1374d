/* Decoding benchmark (decode.h) on a real model (stories260K by default).
 *
 *   ./build/bench_decode [--model FILE] [--threads N] [--reps R] [--prompt P] [--steps S]
 *   ./build/bench_decode --bf16 D,L,V [--threads N] [--reps R]   (see bench_bf16)
 *
 * Workloads, each timed best-of-R in this one process:
 *   single     one stream, greedy from BOS for 256 positions, KV cache;
 *   single-fr  the same tokens with full recompute (gr_lm_logits over the
 *              whole prefix at every step, no cache);
 *   batched B  (B = 20 and 64) B sequences sharing a prompt of P tokens:
 *              the prompt is prefilled ONCE into one slot, every sequence
 *              shares it (gr_kv_cache_share_prefix), then S steps, each one
 *              gr_lm_decode_step with one token for each of the B sequences
 *              (one GEMM per projection). Sequence b follows the (b+1)-th
 *              best token at the first step, then greedy;
 *   +reorder   the same plus a beam reorder (gr_kv_cache_reorder with a
 *              parent for every beam) after every step;
 *   naive      the same B*S tokens, each sequence alone: its own private
 *              copy of the prompt prefilled, then S single-token steps
 *              (the per-beam loop);
 *   full-rec   the same B*S tokens with full recompute of all B sequences
 *              at every step (one gr_lm_logits batch of B * (P + k) tokens).
 * tok/s counts generated tokens (B*S; prompt work is part of the time).
 * Default model path: $GENREC_SHARED/models/stories260K/stories260K.bin,
 * else ../shared/models/stories260K/stories260K.bin.
 */
#include "genrec/common.h"
#include "genrec/decode.h"
#include "genrec/lm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int V;
static double g_cpu; /* process CPU seconds of the last run */


static void die(const char *what)
{
    fprintf(stderr, "bench_decode: %s: %s\n", what, gr_error_message());
    exit(1);
}

/* greedy tokens from BOS (1) for n positions: toks[0..n] */
static double run_single_w(gr_lm *lm, int n, int32_t *toks, int bf16)
{
    gr_kv_cache *c = gr_lm_kv_cache_init(lm, 1, n);
    float *lg = malloc(sizeof(float) * V);
    if (!c || !lg) die("single");
    if (bf16 && gr_kv_cache_set_bf16_weights(c, gr_lm_tfm(lm)) != GR_OK) die("bf16 weights");
    int32_t slot = 0, off[2] = {0, 1};
    toks[0] = 1;
    double c0 = gr_cpu_time(), t0 = gr_time_now();
    for (int p = 0; p < n; p++) {
        if (gr_lm_decode_step(lm, c, &toks[p], &slot, off, 1, 1, lg) != GR_OK) die("decode");
        toks[p + 1] = gr_argmax(lg, V);
    }
    double t = gr_time_now() - t0;
    g_cpu = gr_cpu_time() - c0;
    gr_kv_cache_free(c);
    free(lg);
    return t;
}

static double run_single(gr_lm *lm, int n, int32_t *toks) { return run_single_w(lm, n, toks, 0); }

/* --bf16 D,L,V: single-stream decoding of a random Llama (d D, L layers,
 * vocabulary V, heads of 64, SwiGLU width 8/3 D) with fp32 weights against
 * the same model with a bf16 copy of them (gr_kv_cache_set_bf16_weights),
 * alternated, best of reps; weight bytes per token and the rate they are
 * read at. */
static int bench_bf16(const char *spec, int reps)
{
    int D = 0, L = 0, VV = 0;
    if (sscanf(spec, "%d,%d,%d", &D, &L, &VV) != 3 || D < 64 || D % 64 || L < 1 || VV < 2) {
        fprintf(stderr, "bench_decode: --bf16 wants D,L,V (D a multiple of 64)\n");
        return 2;
    }
    int ff = (8 * D / 3 + 63) / 64 * 64, n = 128;
    gr_tfm_config cfg;
    gr_lm_config_preset(&cfg, GR_ARCH_LLAMA, L, D, D / 64, 0, ff, n + 1, VV);
    gr_lm *lm = gr_lm_init(GR_ARCH_LLAMA, &cfg, 1);
    if (!lm) die("random model");
    V = VV;
    double wbytes = 4.0 * ((double)L * (4.0 * D * D + 3.0 * D * ff) + (double)VV * D); /* projections + head */
    printf("random Llama d %d, %d layers, ff %d, vocab %d: %.1f M weights read per token; threads %d; best of %d\n",
           D, L, ff, VV, wbytes / 4e6, gr_threads_get(), reps);
    int32_t *t32 = malloc(sizeof(int32_t) * (size_t)(n + 1)), *t16 = malloc(sizeof(int32_t) * (size_t)(n + 1));
    double best[2] = {1e30, 1e30}, cbest[2] = {1e30, 1e30};
    for (int r = 0; r < reps; r++)
        for (int b = 0; b < 2; b++) {
            double t = run_single_w(lm, n, b ? t16 : t32, b);
            best[b] = t < best[b] ? t : best[b];
            cbest[b] = g_cpu < cbest[b] ? g_cpu : cbest[b];
        }
    int agree = 0;
    while (agree < n + 1 && t32[agree] == t16[agree]) agree++;
    for (int b = 0; b < 2; b++)
        printf("single stream, %d positions, %s weights: %.1f [%.1f] tok/s, weights read at %.1f GB/s\n", n,
               b ? "bf16" : "fp32", n / best[b], n / cbest[b], n / best[b] * wbytes / (b ? 2 : 1) / 1e9);
    printf("  bf16 / fp32: %.2fx [%.2fx]; greedy tokens identical for the first %d of %d positions\n",
           best[0] / best[1], cbest[0] / cbest[1], agree - 1, n);
    free(t32);
    free(t16);
    gr_lm_free(lm);
    return 0;
}

static double run_single_full(gr_lm *lm, int n, int32_t *toks)
{
    float *lg = malloc(sizeof(float) * V);
    toks[0] = 1;
    double c0 = gr_cpu_time(), t0 = gr_time_now();
    for (int p = 0; p < n; p++) {
        int32_t off[2] = {0, p + 1};
        gr_lm_batch b = {toks, NULL, NULL, off, 1, p + 1};
        if (gr_lm_logits(lm, &b, NULL, 1, lg) != GR_OK) die("logits");
        toks[p + 1] = gr_argmax(lg, V);
    }
    double t = gr_time_now() - t0;
    g_cpu = gr_cpu_time() - c0;
    free(lg);
    return t;
}

/* token for sequence b after logits z at step k */
static int32_t pick(float *z, int b, int k)
{
    int32_t t = gr_argmax(z, V);
    if (k == 0)
        for (int r = 0; r < b % 8; r++) { z[t] = -1e30f; t = gr_argmax(z, V); }
    return t;
}

typedef enum { BATCHED, BATCHED_REORDER, NAIVE, FULL } mode;

static double run_batch(gr_lm *lm, mode md, const int32_t *prompt, int P, int B, int S, int32_t *out_last)
{
    float *lg = malloc(sizeof(float) * (size_t)B * V);
    int32_t *seq = malloc(sizeof(int32_t) * (size_t)B * (P + S + 1));
    int32_t *slots = malloc(sizeof(int32_t) * (size_t)(2 * B + 1)), *off = malloc(sizeof(int32_t) * (size_t)(B + 1));
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)B), *par = malloc(sizeof(int32_t) * (size_t)B);
    int32_t *all = md == FULL ? malloc(sizeof(int32_t) * (size_t)B * (P + S)) : NULL;
    for (int b = 0; b < B; b++) memcpy(seq + (size_t)b * (P + S + 1), prompt, sizeof(int32_t) * (size_t)P);
    gr_kv_cache *c = NULL;
    if (md == BATCHED || md == BATCHED_REORDER) c = gr_lm_kv_cache_init(lm, B + 1, P + S);
    else if (md == NAIVE) c = gr_lm_kv_cache_init(lm, 1, P + S);
    if (md != FULL && !c) die("cache");
    gr_rng r;
    gr_rng_seed(&r, 9);
    double c0 = gr_cpu_time(), t0 = gr_time_now();
    if (md == BATCHED || md == BATCHED_REORDER) {
        int32_t s0 = 0, o[2] = {0, P - 1};
        if (gr_lm_decode_step(lm, c, prompt, &s0, o, 1, P - 1, NULL) != GR_OK) die("prefill");
        for (int b = 0; b < B; b++) {
            slots[b] = b + 1;
            off[b] = b;
            if (gr_kv_cache_share_prefix(c, b + 1, 0, P - 1) != GR_OK) die("share");
        }
        off[B] = B;
        for (int k = 0; k < S; k++) {
            for (int b = 0; b < B; b++) tok[b] = seq[(size_t)b * (P + S + 1) + P - 1 + k];
            if (gr_lm_decode_step(lm, c, tok, slots, off, B, B, lg) != GR_OK) die("decode");
            for (int b = 0; b < B; b++) seq[(size_t)b * (P + S + 1) + P + k] = pick(lg + (size_t)b * V, b, k);
            if (md == BATCHED_REORDER && k + 1 < S) {
                /* every beam gets a parent (half keep their own) */
                for (int b = 0; b < B; b++) par[b] = (b & 1) ? (int32_t)(1 + gr_rng_below(&r, (uint64_t)B)) : b + 1;
                if (gr_kv_cache_reorder(c, slots, par, B) != GR_OK) die("reorder");
            }
        }
    } else if (md == NAIVE) {
        for (int b = 0; b < B; b++) {
            int32_t s0 = 0, o[2] = {0, P - 1}, o1[2] = {0, 1};
            int32_t *sq = seq + (size_t)b * (P + S + 1);
            if (gr_kv_cache_clear_slot(c, 0) != GR_OK) die("clear");
            if (gr_lm_decode_step(lm, c, sq, &s0, o, 1, P - 1, NULL) != GR_OK) die("prefill");
            for (int k = 0; k < S; k++) {
                if (gr_lm_decode_step(lm, c, &sq[P - 1 + k], &s0, o1, 1, 1, lg) != GR_OK) die("decode");
                sq[P + k] = pick(lg, b, k);
            }
        }
    } else {
        for (int k = 0; k < S; k++) {
            int L = P + k;
            for (int b = 0; b < B; b++) {
                memcpy(all + (size_t)b * L, seq + (size_t)b * (P + S + 1), sizeof(int32_t) * (size_t)L);
                off[b] = b * L;
            }
            off[B] = B * L;
            gr_lm_batch bt = {all, NULL, NULL, off, B, B * L};
            if (gr_lm_logits(lm, &bt, NULL, B, lg) != GR_OK) die("logits");
            for (int b = 0; b < B; b++) seq[(size_t)b * (P + S + 1) + P + k] = pick(lg + (size_t)b * V, b, k);
        }
    }
    double t = gr_time_now() - t0;
    g_cpu = gr_cpu_time() - c0;
    if (out_last) *out_last = seq[(size_t)(B - 1) * (P + S + 1) + P + S - 1];
    gr_kv_cache_free(c);
    free(lg); free(seq); free(slots); free(off); free(tok); free(par); free(all);
    return t;
}

int main(int argc, char **argv)
{
    const char *model = NULL, *bf16 = NULL;
    int threads = 0, reps = 3, P = 32, S = 32;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--model")) model = argv[i + 1];
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--prompt")) P = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps")) S = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--bf16")) bf16 = argv[i + 1];
        else { fprintf(stderr, "bench_decode: unknown option %s\n", argv[i]); return 2; }
    }
    if (reps < 1 || P < 2 || S < 1) return 2;
    if (threads > 0) gr_threads_set(threads);
    if (bf16) return bench_bf16(bf16, reps);
    char def[4096];
    if (!model) {
        const char *sh = getenv("GENREC_SHARED");
        snprintf(def, sizeof def, "%s/models/stories260K/stories260K.bin", sh ? sh : "../shared");
        model = def;
    }
    if (threads > 0) gr_threads_set(threads);
    gr_lm *lm = gr_lm_load(model, NULL);
    if (!lm) die(model);
    V = gr_lm_vocab(lm);
    const gr_tfm_config *cfg = gr_lm_config(lm);
    const int n = 256 < cfg->max_T ? 256 : cfg->max_T;
    if (P + S > cfg->max_T) { fprintf(stderr, "bench_decode: prompt + steps > max_T\n"); return 2; }
    printf("model %s: %d layers, d %d, %d heads (%d kv), vocab %d; threads %d; best of %d\n", model,
           cfg->n_layer, cfg->d_model, cfg->n_head, cfg->n_kv_head, V, gr_threads_get(), reps);
    int32_t *toks = malloc(sizeof(int32_t) * (size_t)(n + 1)), *toks2 = malloc(sizeof(int32_t) * (size_t)(n + 1));
    double ts = 1e30, tf = 1e30, cs = 1e30, cf = 1e30;
    for (int r = 0; r < reps; r++) {
        double t = run_single(lm, n, toks);
        ts = t < ts ? t : ts;
        cs = g_cpu < cs ? g_cpu : cs;
        t = run_single_full(lm, n, toks2);
        tf = t < tf ? t : tf;
        cf = g_cpu < cf ? g_cpu : cf;
    }
    int same = !memcmp(toks, toks2, sizeof(int32_t) * (size_t)(n + 1));
    printf("tok/s by wall clock [by process CPU time in brackets: the per-core rate on a shared machine]\n");
    printf("single stream, greedy %d positions: cached %.0f [%.0f] tok/s, full recompute %.0f [%.0f] tok/s "
           "(cached %.1fx)%s\n", n, n / ts, n / cs, n / tf, n / cf, tf / ts, same ? "" : "  [token sequences differ!]");
    /* the prompt: the first P greedy tokens from BOS */
    const int Bs[2] = {20, 64};
    static const char *names[4] = {"shared-prefix batch", "+reorder each step", "naive per-beam", "full recompute"};
    for (int bi = 0; bi < 2; bi++) {
        int B = Bs[bi];
        double best[4] = {1e30, 1e30, 1e30, 1e30}, cbest[4] = {1e30, 1e30, 1e30, 1e30};
        int32_t last[4];
        for (int r = 0; r < reps; r++)
            for (int md = 0; md < 4; md++) {
                double t = run_batch(lm, (mode)md, toks, P, B, S, &last[md]);
                best[md] = t < best[md] ? t : best[md];
                cbest[md] = g_cpu < cbest[md] ? g_cpu : cbest[md];
            }
        double tok = (double)B * S;
        printf("batched B=%d, shared prompt %d, %d steps:", B, P, S);
        for (int md = 0; md < 4; md++) printf("%s %s %.0f [%.0f] tok/s", md ? "," : "", names[md], tok / best[md], tok / cbest[md]);
        printf("\n  ratios: batch / naive per-beam %.1fx [%.1fx], batch / full recompute %.1fx [%.1fx], "
               "batch / single stream %.1fx [%.1fx]%s\n",
               best[2] / best[0], cbest[2] / cbest[0], best[3] / best[0], cbest[3] / cbest[0],
               (tok / best[0]) / (n / ts), (tok / cbest[0]) / (n / cs),
               last[0] == last[2] && last[0] == last[3] ? "" : "  [last tokens differ]");
    }
    free(toks);
    free(toks2);
    gr_lm_free(lm);
    return 0;
}
