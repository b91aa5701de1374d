/* Linear layers, learned positions, residual adds and dropout (ops.h).
 *
 * Reductions over tokens (bias and position gradients) are split by column
 * blocks, each summed over rows in order, so they do not depend on the thread
 * count.
 */
#include "genrec/ops.h"
#include "genrec/common.h"
#include "genrec/gemm.h"

#include <omp.h>
#include <string.h>

/* Below this many elementary operations an op runs on the calling thread. */
#define OPS_PAR_MIN_WORK 32768.0
/* Column block for token reductions (floats). */
#define COL_BLOCK 16

int gr_ops_threads(double work)
{
    if (work < OPS_PAR_MIN_WORK || omp_in_parallel()) return 1;
    return gr_threads_get();
}

/* ---- linear ---------------------------------------------------------------- */

void gr_linear_forward(float *out, const float *inp, const float *weight,
                       const float *bias, int N, int C, int OC)
{
    /* out (N, OC) = bias (broadcast) + inp (N, C) weight^T (C, OC) */
    float beta = 0.0f;
    if (bias) {
        int nt = gr_ops_threads((double)N * OC);
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int i = 0; i < N; i++) memcpy(out + (size_t)i * OC, bias, sizeof(float) * OC);
        beta = 1.0f;
    }
    gr_gemm(0, 1, N, OC, C, 1.0f, inp, C, weight, C, beta, out, OC);
}

/* dbias (OC) += column sums of dout (N, OC), fixed order per column: float
 * partial sums over ROW_BLOCK rows, added up in double. */
#define ROW_BLOCK 64
static void column_sums(float *dbias, const float *dout, int N, int OC)
{
    int nblk = (OC + COL_BLOCK - 1) / COL_BLOCK;
    int nt = gr_ops_threads((double)N * OC);
    if (nt > nblk) nt = nblk;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int b = 0; b < nblk; b++) {
        int c0 = b * COL_BLOCK, w = OC - c0 < COL_BLOCK ? OC - c0 : COL_BLOCK;
        double acc[COL_BLOCK] = {0};
        for (int i0 = 0; i0 < N; i0 += ROW_BLOCK) {
            int i1 = i0 + ROW_BLOCK < N ? i0 + ROW_BLOCK : N;
            float part[COL_BLOCK] = {0};
            if (w == COL_BLOCK) {
                for (int i = i0; i < i1; i++) {
                    const float *row = dout + (size_t)i * OC + c0;
                    for (int c = 0; c < COL_BLOCK; c++) part[c] += row[c];
                }
            } else {
                for (int i = i0; i < i1; i++) {
                    const float *row = dout + (size_t)i * OC + c0;
                    for (int c = 0; c < w; c++) part[c] += row[c];
                }
            }
            for (int c = 0; c < w; c++) acc[c] += part[c];
        }
        for (int c = 0; c < w; c++) dbias[c0 + c] += (float)acc[c];
    }
}

void gr_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, int N, int C, int OC)
{
    if (dinp) gr_gemm(0, 0, N, C, OC, 1.0f, dout, OC, weight, C, 1.0f, dinp, C);
    if (dweight) gr_gemm(1, 0, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dweight, C);
    if (dbias) column_sums(dbias, dout, N, OC);
}

/* ---- positions ----------------------------------------------------------- */

void gr_pos_embd_forward(float *out, const float *inp, const float *wpe,
                         const int32_t *pos, int N, int C)
{
    int nt = gr_ops_threads((double)N * C);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int i = 0; i < N; i++) {
        const float *x = inp + (size_t)i * C, *p = wpe + (size_t)pos[i] * C;
        float *o = out + (size_t)i * C;
        for (int c = 0; c < C; c++) o[c] = x[c] + p[c];
    }
}

void gr_pos_embd_backward(float *dwpe, const float *dout, const int32_t *pos, int N, int C)
{
    int nblk = (C + COL_BLOCK - 1) / COL_BLOCK;
    int nt = gr_ops_threads((double)N * C);
    if (nt > nblk) nt = nblk;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int b = 0; b < nblk; b++) {
        int c0 = b * COL_BLOCK, c1 = c0 + COL_BLOCK < C ? c0 + COL_BLOCK : C;
        for (int i = 0; i < N; i++) {
            const float *d = dout + (size_t)i * C;
            float *w = dwpe + (size_t)pos[i] * C;
            for (int c = c0; c < c1; c++) w[c] += d[c];
        }
    }
}

/* ---- residual ------------------------------------------------------------ */

void gr_residual_forward(float *out, const float *a, const float *b, int64_t n)
{
    int nt = gr_ops_threads((double)n);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void gr_residual_backward(float *da, float *db, const float *dout, int64_t n)
{
    int nt = gr_ops_threads((double)n);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        if (da) da[i] += dout[i];
        if (db) db[i] += dout[i];
    }
}

/* ---- dropout ----------------------------------------------------------------- */

static inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void gr_dropout_forward(float *out, uint8_t *mask, const float *inp, int64_t n,
                        float p, gr_rng *rng)
{
    uint64_t seed = gr_rng_u64(rng);
    if (p <= 0.0f) {
        if (out != inp) memcpy(out, inp, sizeof(float) * (size_t)n);
        memset(mask, 1, (size_t)n);
        return;
    }
    /* element i keeps iff a 32-bit hash of (seed, i) >= p * 2^32 */
    uint32_t thresh = (uint32_t)((double)p * 4294967296.0);
    float scale = 1.0f / (1.0f - p);
    int64_t npair = (n + 1) / 2;
    int nt = gr_ops_threads((double)n * 4);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t j = 0; j < npair; j++) {
        uint64_t h = mix64(seed + (uint64_t)j * 0x9e3779b97f4a7c15ULL);
        for (int64_t i = 2 * j; i < 2 * j + 2 && i < n; i++) {
            uint32_t u = (uint32_t)(i & 1 ? h >> 32 : h);
            uint8_t keep = u >= thresh;
            mask[i] = keep;
            out[i] = keep ? inp[i] * scale : 0.0f;
        }
    }
}

void gr_dropout_apply(float *out, const uint8_t *mask, const float *inp, int64_t n, float p)
{
    float scale = 1.0f / (1.0f - p);
    int nt = gr_ops_threads((double)n);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t i = 0; i < n; i++) out[i] = mask[i] ? inp[i] * scale : 0.0f;
}

void gr_dropout_backward(float *dinp, const float *dout, const uint8_t *mask, int64_t n, float p)
{
    float scale = 1.0f / (1.0f - p);
    int nt = gr_ops_threads((double)n);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t i = 0; i < n; i++)
        if (mask[i]) dinp[i] += dout[i] * scale;
}
