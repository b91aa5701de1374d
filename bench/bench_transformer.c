/* Transformer engine benchmark: one SASRec-sized training step (forward with
 * dropout, backward, AdamW) and an inference forward, per configuration.
 *
 *   ./build/bench_transformer [reps (default 5)] [T (default 200)] [batch (default 128)]
 *
 * Default config = SASRec on ML-1M (d=64, 2 blocks, 1 head, d_ff=64, ReLU,
 * LayerNorm, learned positions, dropout 0.2), full-length sequences so the
 * token count (batch*T) matches a padded PyTorch batch. Compare with
 * bench/bench_transformer_torch.py on the same machine and thread count.
 */
#include "genrec/common.h"
#include "genrec/rng.h"
#include "genrec/transformer.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 5, T = argc > 2 ? atoi(argv[2]) : 200,
        B = argc > 3 ? atoi(argv[3]) : 128;
    int heads = getenv("BENCH_HEADS") ? atoi(getenv("BENCH_HEADS")) : 1;
    if (reps < 1 || T < 1 || B < 1) return 2;
    gr_tfm_config c = {.n_layer = 2, .d_model = 64, .n_head = heads, .d_ff = 64, .max_T = T,
                       .norm = GR_NORM_LAYER, .act = GR_ACT_RELU, .pos = GR_POS_LEARNED,
                       .bias = 1, .final_norm = 1, .norm_eps = 1e-8f, .dropout = 0.2f};
    gr_tfm *m = gr_tfm_init(&c, 1);
    if (!m) { fprintf(stderr, "%s\n", gr_error_message()); return 1; }
    int N = B * T, C = c.d_model;
    float *x = gr_alloc((size_t)N * C, sizeof(float)), *out = gr_alloc((size_t)N * C, sizeof(float));
    int32_t *pos = gr_alloc((size_t)N, sizeof(int32_t)), *off = gr_alloc((size_t)B + 1, sizeof(int32_t));
    if (!x || !out || !pos || !off) { fprintf(stderr, "%s\n", gr_error_message()); return 1; }
    gr_rng r;
    gr_rng_seed(&r, 3);
    for (int i = 0; i < N * C; i++) x[i] = (float)gr_rng_normal(&r) * 0.1f;
    for (int s = 0; s <= B; s++) off[s] = s * T;
    for (int i = 0; i < N; i++) pos[i] = i % T;
    gr_adamw opt;
    if (gr_adamw_init(&opt, gr_tfm_n_params(m), 1e-3f, 0.9f, 0.98f, 1e-8f, 0.0f) != GR_OK) return 1;
    double tf = 0, tb = 0, to = 0, ti = 0;
    for (int rep = 0; rep <= reps; rep++) { /* rep 0 warms up (allocation) */
        double t0 = gr_time_now();
        gr_tfm_zero_grad(m);
        if (gr_tfm_forward(m, x, pos, off, B, N, out, 1, &r) != GR_OK) return 1;
        double t1 = gr_time_now();
        if (gr_tfm_backward(m, out, NULL) != GR_OK) return 1; /* dout = out: loss 0.5|out|^2 */
        double t2 = gr_time_now();
        gr_adamw_step(&opt, gr_tfm_params(m), gr_tfm_grads(m), NULL);
        double t3 = gr_time_now();
        if (gr_tfm_forward(m, x, pos, off, B, N, out, 0, NULL) != GR_OK) return 1;
        double t4 = gr_time_now();
        if (rep) { tf += t1 - t0; tb += t2 - t1; to += t3 - t2; ti += t4 - t3; }
    }
    printf("threads %d, %d seqs x T=%d (N=%d), d=%d, heads %d: train step %.1f ms "
           "(fwd %.1f, bwd %.1f, adamw %.2f), inference fwd %.1f ms\n",
           gr_threads_get(), B, T, N, C, heads, 1e3 * (tf + tb + to) / reps, 1e3 * tf / reps,
           1e3 * tb / reps, 1e3 * to / reps, 1e3 * ti / reps);
    gr_adamw_free(&opt);
    gr_tfm_free(m);
    gr_free(x); gr_free(out); gr_free(pos); gr_free(off);
    return 0;
}
