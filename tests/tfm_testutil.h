/* Test helpers for the transformer engine (header-only, static): tiny GPT-2 and
 * Llama configs, models with large random parameters, packed batches with a
 * random readout R (L = sum(out * R)), relative error, and for the PyTorch
 * float64 reference tests/ref/transformer_ref.py: the GRTFREF1 case writer,
 * the runner, and the check of a model's output and gradients against its
 * answer. Used by test_transformer.c and test_lora.c. */
#ifndef TFM_TESTUTIL_H
#define TFM_TESTUTIL_H

#include "gr_test.h"
#include "genrec/common.h"
#include "genrec/rng.h"
#include "genrec/transformer.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define PY "/usr/bin/python3"

static inline gr_tfm_config cfg_gpt2(void)
{
    gr_tfm_config c = {.n_layer = 2, .d_model = 16, .n_head = 4, .n_kv_head = 4, .d_ff = 40,
                       .max_T = 12, .norm = GR_NORM_LAYER, .act = GR_ACT_GELU_TANH,
                       .pos = GR_POS_LEARNED, .bias = 1, .final_norm = 1, .norm_eps = 1e-5f};
    return c;
}

static inline gr_tfm_config cfg_llama(void)
{
    gr_tfm_config c = {.n_layer = 2, .d_model = 16, .n_head = 4, .n_kv_head = 2, .d_ff = 24,
                       .max_T = 12, .norm = GR_NORM_RMS, .act = GR_ACT_SWIGLU,
                       .pos = GR_POS_ROPE, .bias = 0, .final_norm = 1, .norm_eps = 1e-5f,
                       .rope_theta = 10000.0f};
    return c;
}

/* Number of elements of a 1-D or 2-D parameter view. */
static inline int64_t numel(const gr_tfm_param_view *v) { return v->ndim == 1 ? v->shape[0] : v->shape[0] * v->shape[1]; }

/* A model with large random parameters (init's 0.02 makes gradients tiny). */
static inline gr_tfm *make_model(const gr_tfm_config *c, uint64_t seed)
{
    gr_tfm *m = gr_tfm_init(c, seed);
    if (!m) return NULL;
    const gr_tfm_param_view *v;
    int nv = gr_tfm_param_views(m, &v);
    gr_rng r;
    gr_rng_seed(&r, seed + 1);
    float *p = gr_tfm_params(m);
    for (int i = 0; i < nv; i++) {
        int is_norm = strstr(v[i].name, "norm.weight") != NULL;
        double sd = v[i].ndim == 2 ? 1.0 / sqrt((double)v[i].shape[1]) : 0.2;
        for (int64_t j = 0; j < numel(&v[i]); j++)
            p[v[i].offset + j] = (float)((is_norm ? 1.0 : 0.0) + sd * gr_rng_normal(&r));
    }
    return m;
}

/* ---- packed batches ---------------------------------------------------------------------- */

typedef struct batch {
    int N, n_seq, C;
    int32_t seq_off[8], *pos;
    float *x, *R;
} batch;

/* Sequences of the given lengths (n_seq <= 7); positions right-aligned to
 * max_T-1 when right_align (SASRec), else 0..T-1. Free with free_batch. */
static inline void make_batch(batch *b, const int *lens, int n_seq, int C, int max_T, int right_align,
                              uint64_t seed)
{
    b->n_seq = n_seq;
    b->C = C;
    b->seq_off[0] = 0;
    for (int s = 0; s < n_seq; s++) b->seq_off[s + 1] = b->seq_off[s] + lens[s];
    b->N = b->seq_off[n_seq];
    b->pos = malloc(sizeof(int32_t) * (size_t)(b->N + 1));
    b->x = malloc(sizeof(float) * (size_t)(b->N * C + 1));
    b->R = malloc(sizeof(float) * (size_t)(b->N * C + 1));
    for (int s = 0; s < n_seq; s++)
        for (int t = 0; t < lens[s]; t++)
            b->pos[b->seq_off[s] + t] = right_align ? max_T - lens[s] + t : t;
    gr_rng r;
    gr_rng_seed(&r, seed);
    for (int i = 0; i < b->N * C; i++) {
        b->x[i] = (float)gr_rng_normal(&r);
        b->R[i] = (float)(gr_rng_double(&r) * 2 - 1);
    }
}

static inline void free_batch(batch *b) { free(b->pos); free(b->x); free(b->R); }

/* L = sum(out * R); the forward reseeds its rng, so dropout masks repeat. */
static inline double loss(gr_tfm *m, const batch *b, float *out)
{
    gr_rng r;
    gr_rng_seed(&r, 77);
    if (gr_tfm_forward(m, b->x, b->pos, b->seq_off, b->n_seq, b->N, out, 1, &r) != GR_OK) return NAN;
    double L = 0;
    for (int i = 0; i < b->N * b->C; i++) L += (double)out[i] * b->R[i];
    return L;
}

/* ---- relative error ---------------------------------------------------------------------- */

/* max |a - ref| / max(max |ref|, 1e-2) (the floor covers attn_k.bias,
 * whose true gradient is exactly zero) */
static inline double rel_err(const float *a, const float *ref, int64_t n)
{
    double mr = 1e-2, md = 0;
    for (int64_t i = 0; i < n; i++) {
        mr = fmax(mr, fabs(ref[i]));
        md = fmax(md, fabs((double)a[i] - ref[i]));
    }
    return md / mr;
}

/* ---- PyTorch reference ------------------------------------------------------------------- */

static inline void wr(FILE *f, const void *p, size_t n) { if (n) fwrite(p, 1, n, f); }

/* Write model m and batch b as a GRTFREF1 case of tests/ref/transformer_ref.py
 * (see there). 0 ok, else the file could not be written. */
static inline int write_case(const char *path, gr_tfm *m, const batch *b)
{
    const gr_tfm_config *c = gr_tfm_get_config(m);
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    const gr_tfm_param_view *v;
    int nv = gr_tfm_param_views(m, &v);
    int32_t hdr[12] = {c->n_layer, c->d_model, c->n_head, c->n_kv_head, c->d_ff, c->max_T,
                       (int32_t)c->norm, (int32_t)c->act, (int32_t)c->pos, c->bias, c->final_norm, nv};
    float fl[2] = {c->norm_eps, c->rope_theta};
    int32_t nn[2] = {b->N, b->n_seq};
    int64_t np = gr_tfm_n_params(m);
    wr(f, "GRTFREF1", 8); wr(f, hdr, sizeof hdr); wr(f, fl, sizeof fl); wr(f, nn, sizeof nn);
    wr(f, &np, 8);
    for (int i = 0; i < nv; i++) {
        int32_t len = (int32_t)strlen(v[i].name), nd = v[i].ndim;
        wr(f, &len, 4); wr(f, v[i].name, (size_t)len); wr(f, &v[i].offset, 8);
        wr(f, &nd, 4); wr(f, v[i].shape, 16);
    }
    wr(f, gr_tfm_params(m), sizeof(float) * (size_t)np);
    wr(f, b->x, sizeof(float) * (size_t)b->N * b->C);
    wr(f, b->pos, sizeof(int32_t) * (size_t)b->N);
    wr(f, b->seq_off, sizeof(int32_t) * (size_t)(b->n_seq + 1));
    wr(f, b->R, sizeof(float) * (size_t)b->N * b->C);
    return fclose(f);
}

/* Set in and out (512 bytes each) to tmpdir/PREFIXNAME.in and .out and write
 * m and b as the case in. 0 ok, else the case could not be written. */
static inline int write_case_files(char *in, char *out, const char *prefix, const char *name, gr_tfm *m,
                                   const batch *b)
{
    snprintf(in, 512, "%s/%s%s.in", gr_test_tmpdir(), prefix, name);
    snprintf(out, 512, "%s/%s%s.out", gr_test_tmpdir(), prefix, name);
    return write_case(in, m, b);
}

/* Run tests/ref/transformer_ref.py (under GENREC_SOURCE, else .) on the n cases
 * in[i] -> out[i]: 0 ok, 77 skip (no python3/torch; the skip is recorded),
 * else error. */
static inline int run_reference(int n, char in[][512], char out[][512])
{
    const char *src = getenv("GENREC_SOURCE");
    if (!src) src = ".";
    char cmd[4096];
    int len = snprintf(cmd, sizeof cmd, PY " %s/tests/ref/transformer_ref.py", src);
    for (int i = 0; i < n; i++) len += snprintf(cmd + len, sizeof cmd - (size_t)len, " %s %s", in[i], out[i]);
    int rc = 77;
    if (access(PY, X_OK) == 0) {
        rc = system(cmd);
        rc = rc == -1 || !WIFEXITED(rc) ? 1 : WEXITSTATUS(rc);
    }
    if (rc == 77) gr_test_skip(PY " with numpy and torch not available: PyTorch comparison skipped");
    return rc;
}

/* Check m on b (forward without dropout, backward of L = sum(out * R) into
 * freshly zeroed gradients) against the reference's answer at path: the
 * output (rel err < 1e-5), dL/dx and every parameter gradient (< 1e-4);
 * failures name the case what. Returns the answer (out, dx, then dL/dparams:
 * 2 N C + n_params floats; free with free), or NULL (failure recorded) when
 * it cannot be read or the model fails. */
static inline float *check_reference(const char *what, gr_tfm *m, const batch *b, const char *path)
{
    int64_t nc = (int64_t)b->N * b->C, np = gr_tfm_n_params(m);
    float *ref = malloc(sizeof(float) * (size_t)(2 * nc + np));
    FILE *f = fopen(path, "rb");
    size_t got = f ? fread(ref, sizeof(float), (size_t)(2 * nc + np), f) : 0;
    if (f) fclose(f);
    if (got != (size_t)(2 * nc + np)) {
        gr_test_fail(__FILE__, __LINE__, "%s: %s: cannot read %lld floats", what, path, (long long)(2 * nc + np));
        free(ref);
        return NULL;
    }
    float *out = malloc(sizeof(float) * (size_t)nc), *dx = malloc(sizeof(float) * (size_t)nc);
    gr_tfm_zero_grad(m);
    if (gr_tfm_forward(m, b->x, b->pos, b->seq_off, b->n_seq, b->N, out, 1, NULL) != GR_OK ||
        gr_tfm_backward(m, b->R, dx) != GR_OK) {
        gr_test_fail(__FILE__, __LINE__, "%s: forward/backward: %s", what, gr_error_message());
        free(ref); free(out); free(dx);
        return NULL;
    }
    double e_out = rel_err(out, ref, nc), e_dx = rel_err(dx, ref + nc, nc);
    if (getenv("GR_TEST_VERBOSE")) printf("  %s out %.2e dx %.2e\n", what, e_out, e_dx);
    if (!(e_out < 1e-5)) gr_test_fail(__FILE__, __LINE__, "%s: output rel err %g vs torch", what, e_out);
    if (!(e_dx < 1e-4)) gr_test_fail(__FILE__, __LINE__, "%s: dx rel err %g vs torch", what, e_dx);
    const gr_tfm_param_view *v;
    int nv = gr_tfm_param_views(m, &v);
    for (int j = 0; j < nv; j++) {
        double e = rel_err(gr_tfm_grads(m) + v[j].offset, ref + 2 * nc + v[j].offset, numel(&v[j]));
        if (getenv("GR_TEST_VERBOSE")) printf("  %s %-26s %.2e\n", what, v[j].name, e);
        if (!(e < 1e-4)) gr_test_fail(__FILE__, __LINE__, "%s: grad %s rel err %g vs torch", what, v[j].name, e);
    }
    free(out); free(dx);
    return ref;
}

#endif
