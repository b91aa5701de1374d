/* Equivalence check of genrec's SASRec computation against the PyTorch
 * reference: one packed batch (3 sequences of 5, 8 and 3 items; 2 layers,
 * 2 heads, C = 16, 30 items, dropout 0, perturbed norms and biases) through
 * the shared engine with the same input scaling (sqrt(C)), position
 * alignment (last item at max_T - 1), tied output and fused cross-entropy as
 * src/models/sasrec.c. Writes the loss, the parameters and the gradients as
 * text to FILE. Then
 *
 *     /usr/bin/python3 bench/sasrec_torch.py --check FILE
 *
 * loads the parameters into the PyTorch model (float64), recomputes loss and
 * gradients on the left-padded batch and fails if they differ.
 *
 *   sasrec_equiv FILE
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "genrec/rng.h"
#include "genrec/transformer.h"
#include "genrec/xent.h"

enum { C = 16, V = 30, T = 8, NS = 3, NMAX = 32 };

static void write_floats(FILE *f, const char *tag, const char *name, const float *x, int64_t n)
{
    fprintf(f, "%s%s%s", tag, name ? " " : "", name ? name : "");
    for (int64_t i = 0; i < n; i++) fprintf(f, " %.9g", x[i]);
    fputc('\n', f);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE\n", argv[0]);
        return 2;
    }
    const int lens[NS] = {5, 8, 3};
    gr_tfm_config cfg = {0};
    cfg.n_layer = 2;
    cfg.d_model = C;
    cfg.n_head = 2;
    cfg.n_kv_head = 2;
    cfg.d_ff = C;
    cfg.max_T = T;
    cfg.norm = GR_NORM_LAYER;
    cfg.act = GR_ACT_RELU;
    cfg.pos = GR_POS_LEARNED;
    cfg.bias = 1;
    cfg.final_norm = 1;
    cfg.norm_eps = 1e-5f;
    gr_tfm *m = gr_tfm_init(&cfg, 3);
    if (!m) {
        fprintf(stderr, "error: %s\n", gr_error_message());
        return 1;
    }
    gr_rng r;
    gr_rng_seed(&r, 11);
    float *p = gr_tfm_params(m);
    const int64_t np = gr_tfm_n_params(m);
    for (int64_t i = 0; i < np; i++) p[i] += 0.05f * (float)gr_rng_normal(&r); /* norms/biases matter */
    static float E[V * C], dE[V * C], x[NMAX * C], h[NMAX * C], dh[NMAX * C];
    for (int i = 0; i < V * C; i++) E[i] = 0.1f * (float)gr_rng_normal(&r);
    int32_t tok[NMAX], pos[NMAX], tgt[NMAX], off[NS + 1] = {0};
    int N = 0;
    for (int s = 0; s < NS; s++) {
        for (int j = 0; j < lens[s]; j++) {
            tok[N + j] = (int32_t)gr_rng_below(&r, V);
            tgt[N + j] = (int32_t)gr_rng_below(&r, V);
            pos[N + j] = T - lens[s] + j;
        }
        N += lens[s];
        off[s + 1] = N;
    }
    const float sc = sqrtf((float)C);
    for (int i = 0; i < N; i++)
        for (int c = 0; c < C; c++) x[i * C + c] = E[tok[i] * C + c] * sc;
    float loss = 0.0f;
    if (gr_tfm_forward(m, x, pos, off, NS, N, h, 1, NULL) != GR_OK ||
        gr_xent_forward_backward(h, E, NULL, tgt, N, V, C, &loss, dh, dE, NULL) != GR_OK ||
        gr_tfm_backward(m, dh, dh) != GR_OK) {
        fprintf(stderr, "error: %s\n", gr_error_message());
        return 1;
    }
    for (int i = 0; i < N; i++)
        for (int c = 0; c < C; c++) dE[tok[i] * C + c] += dh[i * C + c] * sc;

    FILE *f = fopen(argv[1], "w");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    fprintf(f, "dims %d %d %d %d %d\n", C, V, T, cfg.n_layer, cfg.n_head);
    fprintf(f, "loss %.9g\n", loss);
    fprintf(f, "seqs");
    for (int s = 0; s < NS; s++) fprintf(f, " %d", lens[s]);
    fprintf(f, "\ntok");
    for (int i = 0; i < N; i++) fprintf(f, " %d", (int)tok[i]);
    fprintf(f, "\ntgt");
    for (int i = 0; i < N; i++) fprintf(f, " %d", (int)tgt[i]);
    fputc('\n', f);
    write_floats(f, "E", NULL, E, V * C);
    write_floats(f, "dE", NULL, dE, V * C);
    const gr_tfm_param_view *vw;
    const int nv = gr_tfm_param_views(m, &vw);
    const float *g = gr_tfm_grads(m);
    for (int k = 0; k < nv; k++) {
        const int64_t n = vw[k].shape[0] * (vw[k].ndim > 1 ? vw[k].shape[1] : 1);
        write_floats(f, "P", vw[k].name, p + vw[k].offset, n);
        write_floats(f, "G", vw[k].name, g + vw[k].offset, n);
    }
    if (fclose(f) != 0) {
        perror(argv[1]);
        return 1;
    }
    printf("loss %.6f over %d tokens written to %s\n", loss, N, argv[1]);
    gr_tfm_free(m);
    return 0;
}
