/* Register-tiled fp32 GEMM for AVX2 + FMA (BLIS-style loop nest).
 *
 *   for jc (NC columns of C):
 *     for pc (KC of K):              pack op(B)[pc.., jc..] into 16-wide strips
 *       for ic (MC rows of C), jr (16 columns), ir (6 rows):
 *         6x16 micro-kernel over kc, 12 ymm accumulators
 *
 * op(A) is read in place through (row, column) strides, so a transposed A
 * costs nothing and the tall-skinny activations of a transformer are never
 * copied (edge strips with fewer than 6 rows re-read their last row).
 * op(B) is packed (vector copies, or 8x8 register transposes when B is
 * transposed), so forward (X W^T) and both backward products (dY W, dY^T X)
 * run the same micro-kernel. The summation order of every C element depends
 * only on K and KC, never on where the element sits, so results do not
 * depend on how C is split across threads. Compiled with target("avx2,fma")
 * so a generic build still carries it; gemm.c only calls it after
 * gr_gemm_avx2_supported().
 */
#include "gemm_kernels.h"

#include <immintrin.h>
#include <pthread.h>
#include <stdlib.h>

#define MR 6
#define NR 16
#define KC 256
#define MC 144  /* multiple of MR; A block MC*KC*4 = 144 KiB (L2) */
#define NC 2048 /* multiple of NR; B block KC*NC*4 = 2 MiB (L3) */

int gr_gemm_avx2_supported(void)
{
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return cached;
}

/* Per-thread packing buffers, allocated on a thread's first call and freed
 * by a pthread key destructor when the thread exits. */
typedef struct pack_bufs { float *b; } pack_bufs;
static pthread_key_t pack_key;
static pthread_once_t pack_once = PTHREAD_ONCE_INIT;
static int pack_key_ok;

static void pack_bufs_free(void *p)
{
    pack_bufs *pb = p;
    free(pb->b);
    free(pb);
}

static void pack_key_create(void) { pack_key_ok = pthread_key_create(&pack_key, pack_bufs_free) == 0; }

static pack_bufs *get_buffers(void)
{
    pthread_once(&pack_once, pack_key_create);
    if (!pack_key_ok) return NULL;
    pack_bufs *pb = pthread_getspecific(pack_key);
    if (pb) return pb;
    pb = calloc(1, sizeof *pb);
    if (!pb) return NULL;
    pb->b = aligned_alloc(64, sizeof(float) * KC * NC);
    if (!pb->b || pthread_setspecific(pack_key, pb) != 0) {
        pack_bufs_free(pb);
        return NULL;
    }
    return pb;
}

/* In-register transpose of 8 rows of 8 floats. */
__attribute__((target("avx2,fma")))
static inline void transpose8(__m256 r[8])
{
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
    r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
    r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
    r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
    r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

/* Pack op(B)[pc:pc+kc, jc:jc+nc] into strips of NR columns: strip s holds
 * kc rows of NR floats (zero beyond nc). */
__attribute__((target("avx2,fma")))
static void pack_b_panel(int transB, const float *B, int ldb, int pc, int jc,
                         int kc, int nc, float *dst)
{
    for (int jr = 0; jr < nc; jr += NR) {
        int nr = nc - jr < NR ? nc - jr : NR;
        float *d = dst + (size_t)jr * kc;
        if (!transB) {
            const float *src = B + (size_t)pc * ldb + jc + jr;
            for (int k = 0; k < kc; k++, src += ldb, d += NR) {
                if (nr == NR) {
                    _mm256_store_ps(d, _mm256_loadu_ps(src));
                    _mm256_store_ps(d + 8, _mm256_loadu_ps(src + 8));
                } else {
                    int j = 0;
                    for (; j < nr; j++) d[j] = src[j];
                    for (; j < NR; j++) d[j] = 0.0f;
                }
            }
        } else if (nr == NR) {
            /* 16 rows of B (16 output columns), kc along the row: transpose
             * 8x8 blocks */
            int k = 0;
            for (; k + 8 <= kc; k += 8)
                for (int h = 0; h < 2; h++) {
                    const float *src = B + (size_t)(jc + jr + 8 * h) * ldb + pc + k;
                    __m256 r[8];
                    for (int j = 0; j < 8; j++) r[j] = _mm256_loadu_ps(src + (size_t)j * ldb);
                    transpose8(r);
                    for (int j = 0; j < 8; j++) _mm256_store_ps(d + (size_t)(k + j) * NR + 8 * h, r[j]);
                }
            for (; k < kc; k++)
                for (int j = 0; j < NR; j++)
                    d[(size_t)k * NR + j] = B[(size_t)(jc + jr + j) * ldb + pc + k];
        } else {
            for (int j = 0; j < NR; j++) {
                if (j < nr) {
                    const float *src = B + (size_t)(jc + jr + j) * ldb + pc;
                    for (int k = 0; k < kc; k++) d[(size_t)k * NR + j] = src[k];
                } else {
                    for (int k = 0; k < kc; k++) d[(size_t)k * NR + j] = 0.0f;
                }
            }
        }
    }
}

#define FMA_ROW(r)                                                     \
    do {                                                               \
        __m256 a_ = _mm256_broadcast_ss(a + o##r);                     \
        c##r##0 = _mm256_fmadd_ps(a_, b0, c##r##0);                    \
        c##r##1 = _mm256_fmadd_ps(a_, b1, c##r##1);                    \
    } while (0)

#define STORE_ROW(r)                                                   \
    do {                                                               \
        float *cr_ = c + (size_t)(r) * ldc;                            \
        __m256 x0_ = _mm256_mul_ps(va, c##r##0), x1_ = _mm256_mul_ps(va, c##r##1); \
        if (bias) {                                                    \
            x0_ = _mm256_add_ps(x0_, bv0);                             \
            x1_ = _mm256_add_ps(x1_, bv1);                             \
        }                                                              \
        if (beta != 0.0f) {                                            \
            x0_ = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr_), x0_);      \
            x1_ = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr_ + 8), x1_);  \
        }                                                              \
        _mm256_storeu_ps(cr_, x0_);                                    \
        _mm256_storeu_ps(cr_ + 8, x1_);                                \
    } while (0)

#define TILE_ROW(r)                                                    \
    do {                                                               \
        _mm256_store_ps(tile + (r) * NR, _mm256_mul_ps(va, c##r##0));  \
        _mm256_store_ps(tile + (r) * NR + 8, _mm256_mul_ps(va, c##r##1)); \
    } while (0)

/* C[0:mr, 0:nr] = alpha * A B (+ bias[0:nr]) + beta * C over kc, where
 * A(i, k) is a[i*rs + k*cs] and B is a packed kc x NR strip. Rows i >= mr
 * re-read row mr-1 (valid memory) and are computed but never stored, so edge
 * strips need no copy. */
__attribute__((target("avx2,fma")))
static void micro_kernel(int kc, const float *restrict a, size_t rs, size_t cs,
                         const float *restrict b, float *restrict c, int ldc, int mr, int nr,
                         float alpha, float beta, const float *restrict bias)
{
    size_t last = (size_t)mr - 1;
    const size_t o0 = 0, o1 = (1 < last ? 1 : last) * rs, o2 = (2 < last ? 2 : last) * rs,
                 o3 = (3 < last ? 3 : last) * rs, o4 = (4 < last ? 4 : last) * rs,
                 o5 = (5 < last ? 5 : last) * rs;
    for (int r = 0; r < mr; r++) {
        _mm_prefetch((const char *)(c + (size_t)r * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + (size_t)r * ldc + NR - 1), _MM_HINT_T0);
    }
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00,
           c20 = c00, c21 = c00, c30 = c00, c31 = c00, c40 = c00, c41 = c00,
           c50 = c00, c51 = c00;
    for (int k = 0; k < kc; k++) {
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
        FMA_ROW(0); FMA_ROW(1); FMA_ROW(2);
        FMA_ROW(3); FMA_ROW(4); FMA_ROW(5);
        a += cs;
        b += NR;
    }
    __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    if (mr == MR && nr == NR) {
        __m256 bv0 = _mm256_setzero_ps(), bv1 = bv0;
        if (bias) {
            bv0 = _mm256_loadu_ps(bias);
            bv1 = _mm256_loadu_ps(bias + 8);
        }
        STORE_ROW(0); STORE_ROW(1); STORE_ROW(2);
        STORE_ROW(3); STORE_ROW(4); STORE_ROW(5);
        return;
    }
    _Alignas(32) float tile[MR * NR];
    TILE_ROW(0); TILE_ROW(1); TILE_ROW(2);
    TILE_ROW(3); TILE_ROW(4); TILE_ROW(5);
    for (int i = 0; i < mr; i++) {
        float *cr = c + (size_t)i * ldc;
        float *t = tile + i * NR;
        if (bias) for (int j = 0; j < nr; j++) t[j] += bias[j];
        if (beta == 0.0f) for (int j = 0; j < nr; j++) cr[j] = t[j];
        else for (int j = 0; j < nr; j++) cr[j] = t[j] + beta * cr[j];
    }
}

int gr_gemm_avx2_tri(int tri, int off, int transA, int transB, int M, int N, int K,
                     float alpha, const float *A, int lda, const float *B, int ldb,
                     float beta, float *C, int ldc, const float *bias)
{
    pack_bufs *pb = get_buffers();
    if (!pb) return -1;
    float *bp = pb->b;
    size_t rs = transA ? 1 : (size_t)lda, cs = transA ? (size_t)lda : 1;
    for (int jc = 0; jc < N; jc += NC) {
        int nc = N - jc < NC ? N - jc : NC;
        for (int pc = 0; pc < K; pc += KC) {
            int kc = K - pc < KC ? K - pc : KC;
            float beta_eff = pc == 0 ? beta : 1.0f;
            pack_b_panel(transB, B, ldb, pc, jc, kc, nc, bp);
            for (int ic = 0; ic < M; ic += MC) {
                int mc = M - ic < MC ? M - ic : MC;
                for (int jr = 0; jr < nc; jr += NR) {
                    int nr = nc - jr < NR ? nc - jr : NR;
                    for (int ir = 0; ir < mc; ir += MR) {
                        int mr = mc - ir < MR ? mc - ir : MR, i0 = ic + ir;
                        /* triangular structure: skip or shorten work */
                        int k0 = 0, k1 = kc;
                        if (tri == GR_TRI_C_LOWER && jc + jr > i0 + mr - 1 + off) continue;
                        if (tri == GR_TRI_A_LOWER) {
                            int kend = i0 + mr + off - pc; /* rows use k < i + off + 1 */
                            k1 = kend < 0 ? 0 : kend < kc ? kend : kc;
                        } else if (tri == GR_TRI_A_UPPER) {
                            int kbeg = i0 + off - pc;      /* rows use k >= i + off */
                            k0 = kbeg < 0 ? 0 : kbeg < kc ? kbeg : kc;
                        }
                        const float *a = transA ? A + (size_t)(pc + k0) * lda + i0
                                                : A + (size_t)i0 * lda + pc + k0;
                        micro_kernel(k1 - k0, a, rs, cs, bp + (size_t)jr * kc + (size_t)k0 * NR,
                                     C + (size_t)i0 * ldc + jc + jr, ldc, mr, nr, alpha, beta_eff,
                                     bias && pc == 0 ? bias + jc + jr : NULL);
                    }
                }
            }
        }
    }
    return 0;
}

int gr_gemm_avx2(int transA, int transB, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb,
                 float beta, float *C, int ldc, const float *bias)
{
    return gr_gemm_avx2_tri(GR_TRI_NONE, 0, transA, transB, M, N, K, alpha, A, lda, B, ldb,
                            beta, C, ldc, bias);
}
