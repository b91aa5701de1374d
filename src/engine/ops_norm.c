/* LayerNorm and RMSNorm forward/backward (ops.h).
 *
 * Backward runs one parallel region with two work-shared loops: rows for
 * dinp, then column blocks for dweight/dbias (each column summed over rows in
 * order: float partial sums over 64 rows, added in double; the result does
 * not depend on the thread count).
 */
#include "genrec/ops.h"
#include "vmath.h"

#include <math.h>

#define COL_BLOCK 16
#define ROW_BLOCK 64 /* float partial sums, then double */

void gr_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                          const float *weight, const float *bias, int N, int C, float eps)
{
    int nt = gr_ops_threads((double)N * C * 4);
#pragma omp parallel for num_threads(nt) schedule(dynamic, gr_row_chunk(C))
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

void gr_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                           const float *inp, const float *weight, const float *mean,
                           const float *rstd, int N, int C)
{
    int nblk = (C + COL_BLOCK - 1) / COL_BLOCK;
    int nt = gr_ops_threads((double)N * C * 6);
#pragma omp parallel num_threads(nt)
    {
        if (dinp) {
#pragma omp for schedule(dynamic, gr_row_chunk(C))
            for (int i = 0; i < N; i++) {
                const float *x = inp + (size_t)i * C, *dy = dout + (size_t)i * C;
                float *dx = dinp + (size_t)i * C;
                float m = mean[i], s = rstd[i];
                /* 8 partial sums each (vectorisable, fixed order) */
                float a1[8] = {0}, a2[8] = {0};
                int c = 0;
                for (; c + 8 <= C; c += 8)
                    for (int j = 0; j < 8; j++) {
                        float dn = weight[c + j] * dy[c + j];
                        a1[j] += dn;
                        a2[j] += dn * ((x[c + j] - m) * s);
                    }
                float dnorm_mean = ((a1[0] + a1[1]) + (a1[2] + a1[3])) + ((a1[4] + a1[5]) + (a1[6] + a1[7]));
                float dnorm_norm_mean = ((a2[0] + a2[1]) + (a2[2] + a2[3])) + ((a2[4] + a2[5]) + (a2[6] + a2[7]));
                for (; c < C; c++) {
                    float dn = weight[c] * dy[c];
                    dnorm_mean += dn;
                    dnorm_norm_mean += dn * ((x[c] - m) * s);
                }
                dnorm_mean /= (float)C;
                dnorm_norm_mean /= (float)C;
#pragma omp simd
                for (c = 0; c < C; c++) {
                    float xhat = (x[c] - m) * s;
                    dx[c] += (weight[c] * dy[c] - dnorm_mean - xhat * dnorm_norm_mean) * s;
                }
            }
        }
        if (dweight || dbias) {
#pragma omp for schedule(dynamic, 1)
            for (int b = 0; b < nblk; b++) {
                int c0 = b * COL_BLOCK, w = C - c0 < COL_BLOCK ? C - c0 : COL_BLOCK;
                double aw[COL_BLOCK] = {0}, ab[COL_BLOCK] = {0};
                for (int i0 = 0; i0 < N; i0 += ROW_BLOCK) {
                    int i1 = i0 + ROW_BLOCK < N ? i0 + ROW_BLOCK : N;
                    float pw[COL_BLOCK] = {0}, pb[COL_BLOCK] = {0};
                    for (int i = i0; i < i1; i++) {
                        const float *x = inp + (size_t)i * C + c0, *dy = dout + (size_t)i * C + c0;
                        float m = mean[i], s = rstd[i];
                        if (w == COL_BLOCK)
                            for (int c = 0; c < COL_BLOCK; c++) {
                                pw[c] += dy[c] * ((x[c] - m) * s);
                                pb[c] += dy[c];
                            }
                        else
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

void gr_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight,
                        int N, int C, float eps)
{
    int nt = gr_ops_threads((double)N * C * 3);
#pragma omp parallel for num_threads(nt) schedule(dynamic, gr_row_chunk(C))
    for (int i = 0; i < N; i++) {
        const float *x = inp + (size_t)i * C;
        float *o = out + (size_t)i * C;
        float s = 1.0f / sqrtf(gr_vdot(x, x, C) / (float)C + eps);
#pragma omp simd
        for (int c = 0; c < C; c++) o[c] = x[c] * s * weight[c];
        if (rstd) rstd[i] = s;
    }
}

void gr_rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp,
                         const float *weight, const float *rstd, int N, int C)
{
    int nblk = (C + COL_BLOCK - 1) / COL_BLOCK;
    int nt = gr_ops_threads((double)N * C * 5);
#pragma omp parallel num_threads(nt)
    {
        if (dinp) {
#pragma omp for schedule(dynamic, gr_row_chunk(C))
            for (int i = 0; i < N; i++) {
                const float *x = inp + (size_t)i * C, *dy = dout + (size_t)i * C;
                float *dx = dinp + (size_t)i * C;
                float s = rstd[i];
                float a[8] = {0}; /* mean(dxhat * xhat), 8 partial sums */
                int c = 0;
                for (; c + 8 <= C; c += 8)
                    for (int j = 0; j < 8; j++) a[j] += weight[c + j] * dy[c + j] * x[c + j];
                float dot = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
                for (; c < C; c++) dot += weight[c] * dy[c] * x[c];
                dot = dot * s / (float)C;
#pragma omp simd
                for (c = 0; c < C; c++)
                    dx[c] += s * (weight[c] * dy[c] - x[c] * s * dot);
            }
        }
        if (dweight) {
#pragma omp for schedule(dynamic, 1)
            for (int b = 0; b < nblk; b++) {
                int c0 = b * COL_BLOCK, w = C - c0 < COL_BLOCK ? C - c0 : COL_BLOCK;
                double aw[COL_BLOCK] = {0};
                for (int i0 = 0; i0 < N; i0 += ROW_BLOCK) {
                    int i1 = i0 + ROW_BLOCK < N ? i0 + ROW_BLOCK : N;
                    float pw[COL_BLOCK] = {0};
                    for (int i = i0; i < i1; i++) {
                        const float *x = inp + (size_t)i * C + c0, *dy = dout + (size_t)i * C + c0;
                        float s = rstd[i];
                        if (w == COL_BLOCK)
                            for (int c = 0; c < COL_BLOCK; c++) pw[c] += dy[c] * (x[c] * s);
                        else
                            for (int c = 0; c < w; c++) pw[c] += dy[c] * (x[c] * s);
                    }
                    for (int c = 0; c < w; c++) aw[c] += pw[c];
                }
                for (int c = 0; c < w; c++) dweight[c0 + c] += (float)aw[c];
            }
        }
    }
}
