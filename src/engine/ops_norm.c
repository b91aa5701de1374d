/* LayerNorm and RMSNorm forward/backward (ops.h).
 *
 * Every op is a body of orphaned worksharing run by GR_PAR_RUN (par.h), by
 * the calling pass's team or a region of its own. The rows are cut into NORM_PARTS fixed
 * parts (independent of the thread count); each part computes dinp for its
 * rows and accumulates its rows' dweight/dbias contributions, in row order,
 * into its own partial vector (contiguous, vectorised, in L1). The partials
 * are then added in part order, in double. The result is deterministic and
 * does not depend on the thread count. If the small partial buffer cannot be
 * allocated, a column-block pass computes the same sums without it.
 */
#include "genrec/ops.h"
#include "par.h"
#include "vmath.h"

#include <math.h>
#include <stdlib.h>

#define NORM_PARTS 16
#define COL_BLOCK 16
#define ROW_BLOCK 64

static void layernorm_fwd(float *out, float *mean, float *rstd, const float *inp,
                          const float *weight, const float *bias, int N, int C, float eps)
{
#pragma omp for schedule(dynamic, gr_row_chunk(C))
    for (int i = 0; i < N; i++) {
        const float *x = inp + (size_t)i * C;
        float *o = out + (size_t)i * C;
        float m = gr_vsum(x, C) / (float)C;
        float v = gr_vsumsq_centered(x, m, C) / (float)C;
        float s = 1.0f / sqrtf(v + eps);
        if (bias) {
#pragma omp simd
            for (int c = 0; c < C; c++) o[c] = (x[c] - m) * s * weight[c] + bias[c];
        } else {
#pragma omp simd
            for (int c = 0; c < C; c++) o[c] = (x[c] - m) * s * weight[c];
        }
        if (mean) mean[i] = m;
        if (rstd) rstd[i] = s;
    }
}

void gr_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                          const float *weight, const float *bias, int N, int C, float eps)
{
    GR_PAR_RUN(gr_ops_threads((double)N * C * 4),
               layernorm_fwd(out, mean, rstd, inp, weight, bias, N, C, eps));
}

/* dinp row i of LayerNorm (mean m, rstd s). */
static inline void ln_row_dinp(float *dx, const float *x, const float *dy, const float *weight,
                               float m, float s, int C)
{
    float a1[8] = {0}, a2[8] = {0}; /* 8 partial sums each, fixed order */
    int c = 0;
    for (; c + 8 <= C; c += 8)
        for (int j = 0; j < 8; j++) {
            float dn = weight[c + j] * dy[c + j];
            a1[j] += dn;
            a2[j] += dn * ((x[c + j] - m) * s);
        }
    float dmean = ((a1[0] + a1[1]) + (a1[2] + a1[3])) + ((a1[4] + a1[5]) + (a1[6] + a1[7]));
    float dnmean = ((a2[0] + a2[1]) + (a2[2] + a2[3])) + ((a2[4] + a2[5]) + (a2[6] + a2[7]));
    for (; c < C; c++) {
        float dn = weight[c] * dy[c];
        dmean += dn;
        dnmean += dn * ((x[c] - m) * s);
    }
    dmean /= (float)C;
    dnmean /= (float)C;
#pragma omp simd
    for (c = 0; c < C; c++)
        dx[c] += (weight[c] * dy[c] - dmean - ((x[c] - m) * s) * dnmean) * s;
}

/* dinp row i of RMSNorm (rstd s). */
static inline void rms_row_dinp(float *dx, const float *x, const float *dy, const float *weight,
                                float s, int C)
{
    float a[8] = {0}; /* mean(dxhat * xhat), 8 partial sums */
    int c = 0;
    for (; c + 8 <= C; c += 8)
        for (int j = 0; j < 8; j++) a[j] += weight[c + j] * dy[c + j] * x[c + j];
    float dot = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
    for (; c < C; c++) dot += weight[c] * dy[c] * x[c];
    dot = dot * s / (float)C;
#pragma omp simd
    for (c = 0; c < C; c++) dx[c] += s * (weight[c] * dy[c] - x[c] * s * dot);
}

/* Shared body. rms: RMSNorm (mean unused, no dbias). The partials (NORM_PARTS
 * x 2C floats) are allocated by one thread and shared; without them (no
 * weight/bias gradient, or OOM) the column-block fallback runs. */
static void norm_backward_body(int rms, float *dinp, float *dweight, float *dbias,
                               const float *dout, const float *inp, const float *weight,
                               const float *mean, const float *rstd, int N, int C)
{
    int want_wb = dweight || dbias;
    int rows_per = (N + NORM_PARTS - 1) / NORM_PARTS;
    int nblk = (C + COL_BLOCK - 1) / COL_BLOCK;
    float *part = NULL;
    if (want_wb) {
#pragma omp single copyprivate(part)
        part = malloc(sizeof(float) * NORM_PARTS * 2 * (size_t)C);
    }
    if (part) {
#pragma omp for schedule(dynamic, 1)
        for (int p = 0; p < NORM_PARTS; p++) {
            float *pw = part + (size_t)p * 2 * C, *pb = pw + C;
            for (int c = 0; c < 2 * C; c++) pw[c] = 0.0f;
            int i1 = (p + 1) * rows_per < N ? (p + 1) * rows_per : N;
            for (int i = p * rows_per; i < i1; i++) {
                const float *x = inp + (size_t)i * C, *dy = dout + (size_t)i * C;
                float m = rms ? 0.0f : mean[i], s = rstd[i];
                if (dinp) {
                    if (rms) rms_row_dinp(dinp + (size_t)i * C, x, dy, weight, s, C);
                    else ln_row_dinp(dinp + (size_t)i * C, x, dy, weight, m, s, C);
                }
#pragma omp simd
                for (int c = 0; c < C; c++) {
                    pw[c] += dy[c] * ((x[c] - m) * s);
                    pb[c] += dy[c];
                }
            }
        }
#pragma omp for schedule(dynamic, 1)
        for (int b = 0; b < nblk; b++) {
            int c1 = (b + 1) * COL_BLOCK < C ? (b + 1) * COL_BLOCK : C;
            for (int c = b * COL_BLOCK; c < c1; c++) {
                double aw = 0, ab = 0;
                for (int p = 0; p < NORM_PARTS; p++) {
                    aw += part[(size_t)p * 2 * C + c];
                    ab += part[(size_t)p * 2 * C + C + c];
                }
                if (dweight) dweight[c] += (float)aw;
                if (dbias) dbias[c] += (float)ab;
            }
        }
#pragma omp single nowait
        free(part);
    } else {
        if (dinp) {
#pragma omp for schedule(dynamic, gr_row_chunk(C))
            for (int i = 0; i < N; i++) {
                const float *x = inp + (size_t)i * C, *dy = dout + (size_t)i * C;
                if (rms) rms_row_dinp(dinp + (size_t)i * C, x, dy, weight, rstd[i], C);
                else ln_row_dinp(dinp + (size_t)i * C, x, dy, weight, mean[i], rstd[i], C);
            }
        }
        if (want_wb) { /* fallback: column blocks, rows in order */
#pragma omp for schedule(dynamic, 1)
            for (int b = 0; b < nblk; b++) {
                int c0 = b * COL_BLOCK, w = C - c0 < COL_BLOCK ? C - c0 : COL_BLOCK;
                double aw[COL_BLOCK] = {0}, ab[COL_BLOCK] = {0};
                for (int i0 = 0; i0 < N; i0 += ROW_BLOCK) {
                    int i1 = i0 + ROW_BLOCK < N ? i0 + ROW_BLOCK : N;
                    float pw[COL_BLOCK] = {0}, pb[COL_BLOCK] = {0};
                    for (int i = i0; i < i1; i++) {
                        const float *x = inp + (size_t)i * C + c0, *dy = dout + (size_t)i * C + c0;
                        float m = rms ? 0.0f : mean[i], s = rstd[i];
                        for (int c = 0; c < w; c++) {
                            pw[c] += dy[c] * ((x[c] - m) * s);
                            pb[c] += dy[c];
                        }
                    }
                    for (int c = 0; c < w; c++) { aw[c] += pw[c]; ab[c] += pb[c]; }
                }
                for (int c = 0; c < w; c++) {
                    if (dweight) dweight[c0 + c] += (float)aw[c];
                    if (dbias) dbias[c0 + c] += (float)ab[c];
                }
            }
        }
    }
}

static void norm_backward(int rms, float *dinp, float *dweight, float *dbias, const float *dout,
                          const float *inp, const float *weight, const float *mean,
                          const float *rstd, int N, int C)
{
    GR_PAR_RUN(gr_ops_threads((double)N * C * 6),
               norm_backward_body(rms, dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C));
}

void gr_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                           const float *inp, const float *weight, const float *mean,
                           const float *rstd, int N, int C)
{
    norm_backward(0, dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
}

static void rmsnorm_fwd(float *out, float *rstd, const float *inp, const float *weight,
                        int N, int C, float eps)
{
#pragma omp for schedule(dynamic, gr_row_chunk(C))
    for (int i = 0; i < N; i++) {
        const float *x = inp + (size_t)i * C;
        float *o = out + (size_t)i * C;
        float s = 1.0f / sqrtf(gr_vdot(x, x, C) / (float)C + eps);
#pragma omp simd
        for (int c = 0; c < C; c++) o[c] = x[c] * s * weight[c];
        if (rstd) rstd[i] = s;
    }
}

void gr_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight,
                        int N, int C, float eps)
{
    GR_PAR_RUN(gr_ops_threads((double)N * C * 3), rmsnorm_fwd(out, rstd, inp, weight, N, C, eps));
}

void gr_rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp,
                         const float *weight, const float *rstd, int N, int C)
{
    norm_backward(1, dinp, dweight, NULL, dout, inp, weight, NULL, rstd, N, C);
}
