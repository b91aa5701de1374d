/* Linear layers, learned positions, residual adds and dropout (ops.h).
 *
 * Each op is a body of orphaned worksharing run by GR_PAR_RUN (par.h): by
 * the calling pass's team, or by a region of its own.
 *
 * Reductions over tokens (bias and position gradients) sum in a fixed order
 * that does not depend on the thread count (see column_sums).
 */
#include "genrec/ops.h"
#include "genrec/common.h"
#include "genrec/gemm.h"
#include "par.h"
#include "vmath.h"

#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
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
    /* out (N, OC) = inp (N, C) weight^T (C, OC) + bias, bias added in the
     * GEMM's store */
    gr_gemm_bias(0, 1, N, OC, C, inp, C, weight, C, bias, out, OC);
}

/* dbias (OC) += column sums of dout (N, OC). Rows are cut into SUM_PARTS
 * fixed parts; each part sums its rows in order into a partial vector
 * (contiguous, vectorised), and the partials are added in part order in
 * double: deterministic, independent of the thread count. Without the small
 * partial buffer (OOM), column blocks give the same sums the slow way. */
#define SUM_PARTS 16
#define ROW_BLOCK 64
static void column_sums_body(float *dbias, const float *dout, int N, int OC)
{
    float *part;
#pragma omp single copyprivate(part)
    part = malloc(sizeof(float) * SUM_PARTS * (size_t)OC);
    if (part) {
        int rows_per = (N + SUM_PARTS - 1) / SUM_PARTS;
#pragma omp for schedule(dynamic, 1)
        for (int p = 0; p < SUM_PARTS; p++) {
            float *acc = part + (size_t)p * OC;
            for (int c = 0; c < OC; c++) acc[c] = 0.0f;
            int i1 = (p + 1) * rows_per < N ? (p + 1) * rows_per : N;
            for (int i = p * rows_per; i < i1; i++) {
                const float *row = dout + (size_t)i * OC;
#pragma omp simd
                for (int c = 0; c < OC; c++) acc[c] += row[c];
            }
        }
#pragma omp for schedule(static)
        for (int c = 0; c < OC; c++) {
            double a = 0;
            for (int p = 0; p < SUM_PARTS; p++) a += part[(size_t)p * OC + c];
            dbias[c] += (float)a;
        }
#pragma omp single nowait
        free(part);
        return;
    }
    int nblk = (OC + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp for schedule(dynamic, 1)
    for (int b = 0; b < nblk; b++) {
        int c0 = b * COL_BLOCK, w = OC - c0 < COL_BLOCK ? OC - c0 : COL_BLOCK;
        double acc[COL_BLOCK] = {0};
        for (int i0 = 0; i0 < N; i0 += ROW_BLOCK) {
            int i1 = i0 + ROW_BLOCK < N ? i0 + ROW_BLOCK : N;
            float pacc[COL_BLOCK] = {0};
            for (int i = i0; i < i1; i++) {
                const float *row = dout + (size_t)i * OC + c0;
                for (int c = 0; c < w; c++) pacc[c] += row[c];
            }
            for (int c = 0; c < w; c++) acc[c] += pacc[c];
        }
        for (int c = 0; c < w; c++) dbias[c0 + c] += (float)acc[c];
    }
}

static void linear_backward_body(float *dinp, float *dweight, float *dbias, const float *dout,
                                 const float *inp, const float *weight, int N, int C, int OC)
{
    if (dinp) gr_gemm(0, 0, N, C, OC, 1.0f, dout, OC, weight, C, 1.0f, dinp, C);
    if (dweight) gr_gemm(1, 0, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dweight, C);
    if (dbias) column_sums_body(dbias, dout, N, OC);
}

void gr_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, int N, int C, int OC)
{
    /* one region for the three products when called alone (the GEMMs join
     * it as collective calls) */
    GR_PAR_RUN(gr_ops_threads((double)N * C * OC),
               linear_backward_body(dinp, dweight, dbias, dout, inp, weight, N, C, OC));
}

/* ---- positions ----------------------------------------------------------- */

static void pos_embd_fwd(float *out, const float *inp, const float *wpe, const int32_t *pos,
                         int N, int C)
{
#pragma omp for schedule(dynamic, gr_row_chunk(C))
    for (int i = 0; i < N; i++) {
        const float *x = inp + (size_t)i * C, *p = wpe + (size_t)pos[i] * C;
        float *o = out + (size_t)i * C;
#pragma omp simd
        for (int c = 0; c < C; c++) o[c] = x[c] + p[c];
    }
}

void gr_pos_embd_forward(float *out, const float *inp, const float *wpe,
                         const int32_t *pos, int N, int C)
{
    GR_PAR_RUN(gr_ops_threads((double)N * C), pos_embd_fwd(out, inp, wpe, pos, N, C));
}

static void pos_embd_bwd(float *dwpe, const float *dout, const int32_t *pos, int N, int C)
{
    int nblk = (C + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp for schedule(dynamic, 1)
    for (int b = 0; b < nblk; b++) {
        int c0 = b * COL_BLOCK, c1 = c0 + COL_BLOCK < C ? c0 + COL_BLOCK : C;
        for (int i = 0; i < N; i++) {
            const float *d = dout + (size_t)i * C;
            float *w = dwpe + (size_t)pos[i] * C;
#pragma omp simd
            for (int c = c0; c < c1; c++) w[c] += d[c];
        }
    }
}

void gr_pos_embd_backward(float *dwpe, const float *dout, const int32_t *pos, int N, int C)
{
    int nblk = (C + COL_BLOCK - 1) / COL_BLOCK;
    int nt = gr_ops_threads((double)N * C);
    GR_PAR_RUN(nt < nblk ? nt : nblk, pos_embd_bwd(dwpe, dout, pos, N, C));
}

/* ---- residual ------------------------------------------------------------ */

static void residual_fwd(float *out, const float *a, const float *b, int64_t n)
{
#pragma omp for simd schedule(dynamic, GR_FLAT_CHUNK)
    for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void gr_residual_forward(float *out, const float *a, const float *b, int64_t n)
{
    GR_PAR_RUN(gr_ops_threads((double)n), residual_fwd(out, a, b, n));
}

static void residual_bwd(float *da, float *db, const float *dout, int64_t n)
{
    if (da) {
#pragma omp for simd schedule(dynamic, GR_FLAT_CHUNK) nowait
        for (int64_t i = 0; i < n; i++) da[i] += dout[i];
    }
    if (db) {
#pragma omp for simd schedule(dynamic, GR_FLAT_CHUNK) nowait
        for (int64_t i = 0; i < n; i++) db[i] += dout[i];
    }
#pragma omp barrier
}

void gr_residual_backward(float *da, float *db, const float *dout, int64_t n)
{
    GR_PAR_RUN(gr_ops_threads((double)n), residual_bwd(da, db, dout, n));
}

/* ---- dropout ----------------------------------------------------------------- */

/* lowbias32 (C. Wellons): a bijective 32-bit mixer, vectorisable. */
static inline uint32_t hash32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

/* Keep-decision of element i (the definition; the AVX2 path matches it). */
static inline uint32_t drop_hash(int64_t i, uint32_t s_lo, uint32_t s_hi)
{
    return hash32(hash32((uint32_t)i + s_lo) ^ s_hi ^ (uint32_t)((uint64_t)i >> 32));
}

static void dropout_range(float *out, uint8_t *mask, const float *inp, int64_t i0, int64_t i1,
                          uint32_t s_lo, uint32_t s_hi, uint32_t thresh, float scale)
{
    for (int64_t i = i0; i < i1; i++) {
        uint8_t keep = drop_hash(i, s_lo, s_hi) >= thresh;
        mask[i] = keep;
        out[i] = inp[i] * (scale * (float)keep);
    }
}

__attribute__((target("avx2,fma")))
static inline __m256i hash32x8(__m256i x)
{
    x = _mm256_xor_si256(x, _mm256_srli_epi32(x, 16));
    x = _mm256_mullo_epi32(x, _mm256_set1_epi32(0x7feb352d));
    x = _mm256_xor_si256(x, _mm256_srli_epi32(x, 15));
    x = _mm256_mullo_epi32(x, _mm256_set1_epi32((int)0x846ca68bU));
    return _mm256_xor_si256(x, _mm256_srli_epi32(x, 16));
}

/* Same decisions as dropout_range, 8 at a time; [i0, i1) must not cross a
 * multiple of 2^32 (blocks are far smaller). */
__attribute__((target("avx2,fma")))
static void dropout_range_avx2(float *out, uint8_t *mask, const float *inp, int64_t i0,
                               int64_t i1, uint32_t s_lo, uint32_t s_hi, uint32_t thresh,
                               float scale)
{
    const __m256i flip = _mm256_set1_epi32((int)0x80000000U);
    const __m256i vth = _mm256_xor_si256(_mm256_set1_epi32((int)thresh), flip);
    const __m256i step = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i hi = _mm256_set1_epi32((int)(s_hi ^ (uint32_t)((uint64_t)i0 >> 32)));
    const __m256 vs = _mm256_set1_ps(scale);
    int64_t i = i0;
    for (; i + 8 <= i1; i += 8) {
        __m256i idx = _mm256_add_epi32(_mm256_set1_epi32((int)((uint32_t)i + s_lo)), step);
        __m256i u = hash32x8(_mm256_xor_si256(hash32x8(idx), hi));
        /* keep = u >= thresh (unsigned) = !(thresh > u) */
        __m256i drop = _mm256_cmpgt_epi32(vth, _mm256_xor_si256(u, flip));
        __m256 keepf = _mm256_andnot_ps(_mm256_castsi256_ps(drop), vs);
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(inp + i), keepf));
        uint32_t bits = ~(uint32_t)_mm256_movemask_ps(_mm256_castsi256_ps(drop)) & 0xffu;
        /* bit j -> byte j (0/1): spread each nibble with one multiply */
        uint64_t lo = ((bits & 15u) * 0x00204081u) & 0x01010101u;
        uint64_t hi = ((bits >> 4) * 0x00204081u) & 0x01010101u;
        uint64_t bytes = lo | (hi << 32);
        memcpy(mask + i, &bytes, 8);
    }
    dropout_range(out, mask, inp, i, i1, s_lo, s_hi, thresh, scale);
}

static void dropout_fwd(float *out, uint8_t *mask, const float *inp, int64_t n, float p,
                        gr_rng *rng)
{
    uint64_t seed;
#pragma omp single copyprivate(seed)
    seed = gr_rng_u64(rng);
    if (p <= 0.0f) {
#pragma omp single
        {
            if (out != inp) memcpy(out, inp, sizeof(float) * (size_t)n);
            memset(mask, 1, (size_t)n);
        }
        return;
    }
    /* element i keeps iff hash(hash(i + seed_lo) ^ seed_hi ^ i_hi) >= p * 2^32 */
    uint32_t thresh = (uint32_t)fmin((double)p * 4294967296.0, 4294967295.0);
    uint32_t s_lo = (uint32_t)seed, s_hi = (uint32_t)(seed >> 32);
    float scale = 1.0f / (1.0f - p);
    int avx2 = gr_gemm_have_avx2();
    const int64_t blk = 4096;
    int64_t nblk = (n + blk - 1) / blk;
#pragma omp for schedule(dynamic, 1)
    for (int64_t b = 0; b < nblk; b++) {
        int64_t i0 = b * blk, i1 = i0 + blk < n ? i0 + blk : n;
        if (avx2) dropout_range_avx2(out, mask, inp, i0, i1, s_lo, s_hi, thresh, scale);
        else dropout_range(out, mask, inp, i0, i1, s_lo, s_hi, thresh, scale);
    }
}

void gr_dropout_forward(float *out, uint8_t *mask, const float *inp, int64_t n,
                        float p, gr_rng *rng)
{
    GR_PAR_RUN(p <= 0.0f ? 1 : gr_ops_threads((double)n * 4), dropout_fwd(out, mask, inp, n, p, rng));
}

static void dropout_apply_body(float *out, const uint8_t *mask, const float *inp, int64_t n, float p)
{
    float scale = 1.0f / (1.0f - p);
#pragma omp for simd schedule(dynamic, GR_FLAT_CHUNK)
    for (int64_t i = 0; i < n; i++) out[i] = inp[i] * (scale * (float)mask[i]);
}

void gr_dropout_apply(float *out, const uint8_t *mask, const float *inp, int64_t n, float p)
{
    GR_PAR_RUN(gr_ops_threads((double)n), dropout_apply_body(out, mask, inp, n, p));
}

static void dropout_bwd(float *dinp, const float *dout, const uint8_t *mask, int64_t n, float p)
{
    float scale = 1.0f / (1.0f - p);
#pragma omp for simd schedule(dynamic, GR_FLAT_CHUNK)
    for (int64_t i = 0; i < n; i++) dinp[i] += dout[i] * (scale * (float)mask[i]);
}

void gr_dropout_backward(float *dinp, const float *dout, const uint8_t *mask, int64_t n, float p)
{
    GR_PAR_RUN(gr_ops_threads((double)n), dropout_bwd(dinp, dout, mask, n, p));
}
