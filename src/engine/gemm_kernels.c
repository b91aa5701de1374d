/* genrec's own fp32 GEMM: BLIS-style loop nest over packed panels.
 *
 *   for jc (NC columns of C):
 *     for pc (KC of K):            pack op(B)[pc.., jc..] into 16-wide strips
 *       for ic (MC rows of C):     pack op(A)[ic.., pc..] into 6-tall strips
 *         for jr (16 columns), ir (6 rows):
 *           6x16 micro-kernel over kc, 12 ymm accumulators
 *
 * Both operands are packed into contiguous, 64-byte aligned, per-thread
 * buffers (allocated on a thread's first call, reused, freed when the thread
 * exits), so every transposition case runs the same micro-kernel on the same
 * layout: the packed B strip (16 x KC floats, 16 KiB) stays in L1 across the
 * ir loop, the packed A block (MC x KC, 144 KiB) in L2 across the jr loop,
 * the packed B panel (KC x NC, 2 MiB) in L3. Edge strips are zero-padded
 * while packing, so the kernel always computes a full tile and only the
 * store is masked (through a small tile buffer).
 *
 * B may be fp32 or bf16 (uint16_t, the upper half of an fp32): bf16 is
 * widened while packing (a 16-bit shift), so the kernel is the same.
 *
 * Two implementations of the packers and the kernel: AVX2/FMA (compiled with
 * target("avx2,fma") so a generic build still carries it; only called after
 * gr_gemm_avx2_supported()) and portable C. The summation order of every C
 * element depends only on K and KC, never on where the element sits, so
 * results do not depend on how C is split across threads.
 */
#include "gemm_kernels.h"

#include <immintrin.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MR 6
#define NR 16
#ifndef KC
#define KC 256
#endif
#ifndef MC
#define MC 144  /* multiple of MR; packed A block MC*KC*4 = 144 KiB (L2) */
#endif
#ifndef NC
#define NC 2048 /* multiple of NR; packed B panel KC*NC*4 = 2 MiB (L3) */
#endif
#define A_SLACK 16 /* floats past the packed A block (overlapping stores) */
#define A_ROWS_MAX_N 128 /* N up to which the AVX2 path reads A in place */

/* ------------------------------------------------------------------------ */
/* CPU features and the forced generic path                                  */

static int force_generic = -1; /* -1: not decided yet (read the environment) */

void gr_gemm_kernels_force_generic(int on)
{
    __atomic_store_n(&force_generic, on ? 1 : 0, __ATOMIC_RELAXED);
}

int gr_gemm_avx2_supported(void)
{
    static int cached = -1;
    int fg = __atomic_load_n(&force_generic, __ATOMIC_RELAXED);
    if (fg < 0) {
        const char *e = getenv("GENREC_GEMM_GENERIC");
        fg = e && e[0] && strcmp(e, "0") != 0;
        int expected = -1; /* a concurrent gr_gemm_force_generic wins */
        __atomic_compare_exchange_n(&force_generic, &expected, fg, 0, __ATOMIC_RELAXED,
                                    __ATOMIC_RELAXED);
        fg = __atomic_load_n(&force_generic, __ATOMIC_RELAXED);
    }
    if (fg) return 0;
    int c = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (c < 0) {
        __builtin_cpu_init();
        c = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        __atomic_store_n(&cached, c, __ATOMIC_RELAXED);
    }
    return c;
}

/* ------------------------------------------------------------------------ */
/* Per-thread packing buffers                                                */

typedef struct pack_bufs { float *a, *b; } pack_bufs;
static pthread_key_t pack_key;
static pthread_once_t pack_once = PTHREAD_ONCE_INIT;
static int pack_key_ok;

static void pack_bufs_free(void *p)
{
    pack_bufs *pb = p;
    free(pb->a);
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
    pb->a = aligned_alloc(64, sizeof(float) * (MC * KC + A_SLACK));
    pb->b = aligned_alloc(64, sizeof(float) * KC * NC);
    if (!pb->a || !pb->b || pthread_setspecific(pack_key, pb) != 0) {
        pack_bufs_free(pb);
        return NULL;
    }
    return pb;
}

static inline float bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* ------------------------------------------------------------------------ */
/* Packing, portable C                                                       */

/* Pack op(A)[i0:i0+mc, p0:p0+kc] into strips of MR rows: strip s (rows
 * i0+MR*s..) holds kc columns of MR floats, dst[s*MR*kc + k*MR + r]; rows
 * beyond mc are zero. */
static void pack_a_generic(int transA, const float *A, int lda, int i0, int p0, int mc,
                           int kc, float *dst)
{
    for (int ir = 0; ir < mc; ir += MR) {
        int mr = mc - ir < MR ? mc - ir : MR;
        float *d = dst + (size_t)ir * kc;
        for (int k = 0; k < kc; k++)
            for (int r = 0; r < MR; r++) {
                size_t i = (size_t)(i0 + ir + r), kk = (size_t)(p0 + k);
                d[(size_t)k * MR + r] = r >= mr ? 0.0f : transA ? A[kk * lda + i] : A[i * lda + kk];
            }
    }
}

/* Pack op(B)[p0:p0+kc, j0:j0+nc] into strips of NR columns: strip s holds kc
 * rows of NR floats, dst[s*NR*kc + k*NR + j]; columns beyond nc are zero.
 * B is fp32 (b16 == NULL) or bf16 (b16 != NULL, B ignored). */
static void pack_b_generic(int transB, const float *B, const uint16_t *b16, int ldb, int p0,
                           int j0, int kc, int nc, float *dst)
{
    for (int jr = 0; jr < nc; jr += NR) {
        int nr = nc - jr < NR ? nc - jr : NR;
        float *d = dst + (size_t)jr * kc;
        for (int k = 0; k < kc; k++)
            for (int j = 0; j < NR; j++) {
                size_t kk = (size_t)(p0 + k), jj = (size_t)(j0 + jr + j);
                size_t at = transB ? jj * ldb + kk : kk * ldb + jj;
                d[(size_t)k * NR + j] = j >= nr ? 0.0f : b16 ? bf16_to_f32(b16[at]) : B[at];
            }
    }
}

/* C[0:mr, 0:nr] = alpha * a b (+ bias[0:nr]) + beta * C (C not read when
 * beta == 0), a a packed MR x kc strip, b a packed kc x NR strip. */
static void store_tile(const float *tile, float *c, int ldc, int mr, int nr, float beta,
                       const float *bias)
{
    for (int i = 0; i < mr; i++) {
        float *cr = c + (size_t)i * ldc;
        const float *t = tile + i * NR;
        for (int j = 0; j < nr; j++) {
            float v = t[j] + (bias ? bias[j] : 0.0f);
            cr[j] = beta == 0.0f ? v : v + beta * cr[j];
        }
    }
}

static void kernel_generic(int kc, const float *restrict a, const float *restrict b,
                           float *restrict c, int ldc, int mr, int nr, float alpha, float beta,
                           const float *restrict bias)
{
    float acc[MR * NR];
    for (int i = 0; i < MR * NR; i++) acc[i] = 0.0f;
    for (int k = 0; k < kc; k++, a += MR, b += NR)
        for (int r = 0; r < MR; r++) {
            float av = a[r];
            for (int j = 0; j < NR; j++) acc[r * NR + j] += av * b[j];
        }
    for (int i = 0; i < MR * NR; i++) acc[i] *= alpha;
    store_tile(acc, c, ldc, mr, nr, beta, bias);
}

/* ------------------------------------------------------------------------ */
/* Packing and the micro-kernel, AVX2/FMA                                    */

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

/* 8 bf16 -> 8 fp32 (zero-extend to 32 bits, shift into the upper half). */
__attribute__((target("avx2,fma")))
static inline __m256 load8_bf16(const uint16_t *p)
{
    __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

__attribute__((target("avx2,fma")))
static void pack_a_avx2(int transA, const float *A, int lda, int i0, int p0, int mc, int kc,
                        float *dst)
{
    int full = mc - mc % MR;
    if (transA) { /* stored row k holds op(A)(i0.., k): read it once, in order */
        for (int k = 0; k < kc; k++) {
            const float *src = A + (size_t)(p0 + k) * lda + i0;
            float *d = dst + (size_t)k * MR;
            for (int ir = 0; ir < full; ir += MR, d += (size_t)MR * kc) {
                _mm_storeu_ps(d, _mm_loadu_ps(src + ir));
                _mm_storel_pi((__m64 *)(d + 4),
                              _mm_loadl_pi(_mm_setzero_ps(), (const __m64 *)(src + ir + 4)));
            }
        }
        if (full < mc)
            pack_a_generic(transA, A, lda, i0 + full, p0, mc - full, kc, dst + (size_t)full * kc);
        return;
    }
    for (int ir = 0; ir < mc; ir += MR) {
        int mr = mc - ir < MR ? mc - ir : MR;
        float *d = dst + (size_t)ir * kc;
        if (mr < MR) {
            pack_a_generic(transA, A, lda, i0 + ir, p0, mr, kc, d);
            continue;
        }
        /* 6 rows x 8 columns per step, transposed in registers; each column
         * is stored as 8 floats of which the last 2 are overwritten by the
         * next column (the very last spill lands in A_SLACK) */
        const float *src = A + (size_t)(i0 + ir) * lda + p0;
        int k = 0;
        for (; k + 8 <= kc; k += 8) {
            __m256 r[8];
            for (int q = 0; q < MR; q++) r[q] = _mm256_loadu_ps(src + (size_t)q * lda + k);
            r[6] = r[7] = _mm256_setzero_ps();
            transpose8(r);
            for (int j = 0; j < 8; j++) _mm256_storeu_ps(d + (size_t)(k + j) * MR, r[j]);
        }
        for (; k < kc; k++)
            for (int q = 0; q < MR; q++) d[(size_t)k * MR + q] = src[(size_t)q * lda + k];
    }
}

__attribute__((target("avx2,fma")))
static void pack_b_avx2(int transB, const float *B, const uint16_t *b16, int ldb, int p0,
                        int j0, int kc, int nc, float *dst)
{
    for (int jr = 0; jr < nc; jr += NR) {
        int nr = nc - jr < NR ? nc - jr : NR;
        float *d = dst + (size_t)jr * kc;
        if (nr < NR) {
            pack_b_generic(transB, B, b16, ldb, p0, j0 + jr, kc, nr, d);
            continue;
        }
        if (!transB) {
            size_t at = (size_t)p0 * ldb + j0 + jr;
            for (int k = 0; k < kc; k++, at += ldb, d += NR) {
                if (b16) {
                    _mm256_store_ps(d, load8_bf16(b16 + at));
                    _mm256_store_ps(d + 8, load8_bf16(b16 + at + 8));
                } else {
                    _mm256_store_ps(d, _mm256_loadu_ps(B + at));
                    _mm256_store_ps(d + 8, _mm256_loadu_ps(B + at + 8));
                }
            }
            continue;
        }
        /* 16 rows of stored B (16 output columns), kc along each row:
         * transpose 8x8 blocks */
        int k = 0;
        for (; k + 8 <= kc; k += 8)
            for (int h = 0; h < 2; h++) {
                size_t at = (size_t)(j0 + jr + 8 * h) * ldb + p0 + k;
                __m256 r[8];
                for (int j = 0; j < 8; j++)
                    r[j] = b16 ? load8_bf16(b16 + at + (size_t)j * ldb)
                               : _mm256_loadu_ps(B + at + (size_t)j * ldb);
                transpose8(r);
                for (int j = 0; j < 8; j++) _mm256_store_ps(d + (size_t)(k + j) * NR + 8 * h, r[j]);
            }
        for (; k < kc; k++)
            for (int j = 0; j < NR; j++) {
                size_t at = (size_t)(j0 + jr + j) * ldb + p0 + k;
                d[(size_t)k * NR + j] = b16 ? bf16_to_f32(b16[at]) : B[at];
            }
    }
}

#define FMA_STEP(u)                                                        \
    do {                                                                   \
        __m256 b0 = _mm256_load_ps(b + (u) * NR), b1 = _mm256_load_ps(b + (u) * NR + 8); \
        __m256 a_;                                                         \
        a_ = _mm256_broadcast_ss(a + (u) * MR + 0);                        \
        c00 = _mm256_fmadd_ps(a_, b0, c00); c01 = _mm256_fmadd_ps(a_, b1, c01); \
        a_ = _mm256_broadcast_ss(a + (u) * MR + 1);                        \
        c10 = _mm256_fmadd_ps(a_, b0, c10); c11 = _mm256_fmadd_ps(a_, b1, c11); \
        a_ = _mm256_broadcast_ss(a + (u) * MR + 2);                        \
        c20 = _mm256_fmadd_ps(a_, b0, c20); c21 = _mm256_fmadd_ps(a_, b1, c21); \
        a_ = _mm256_broadcast_ss(a + (u) * MR + 3);                        \
        c30 = _mm256_fmadd_ps(a_, b0, c30); c31 = _mm256_fmadd_ps(a_, b1, c31); \
        a_ = _mm256_broadcast_ss(a + (u) * MR + 4);                        \
        c40 = _mm256_fmadd_ps(a_, b0, c40); c41 = _mm256_fmadd_ps(a_, b1, c41); \
        a_ = _mm256_broadcast_ss(a + (u) * MR + 5);                        \
        c50 = _mm256_fmadd_ps(a_, b0, c50); c51 = _mm256_fmadd_ps(a_, b1, c51); \
    } while (0)

#define STORE_ROW(r)                                                       \
    do {                                                                   \
        float *cr_ = c + (size_t)(r) * ldc;                                \
        __m256 x0_ = _mm256_mul_ps(va, c##r##0), x1_ = _mm256_mul_ps(va, c##r##1); \
        if (bias) {                                                        \
            x0_ = _mm256_add_ps(x0_, bv0);                                 \
            x1_ = _mm256_add_ps(x1_, bv1);                                 \
        }                                                                  \
        if (beta != 0.0f) {                                                \
            x0_ = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr_), x0_);          \
            x1_ = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr_ + 8), x1_);      \
        }                                                                  \
        _mm256_storeu_ps(cr_, x0_);                                        \
        _mm256_storeu_ps(cr_ + 8, x1_);                                    \
    } while (0)

#define TILE_ROW(r)                                                        \
    do {                                                                   \
        _mm256_store_ps(tile + (r) * NR, _mm256_mul_ps(va, c##r##0));      \
        _mm256_store_ps(tile + (r) * NR + 8, _mm256_mul_ps(va, c##r##1));  \
    } while (0)

/* alpha * accumulators (+ bias) + beta * C into C[0:mr, 0:nr]. */
#define KERNEL_EPILOGUE()                                                  \
    do {                                                                   \
        __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);      \
        if (mr == MR && nr == NR) {                                        \
            __m256 bv0 = _mm256_setzero_ps(), bv1 = bv0;                   \
            if (bias) {                                                    \
                bv0 = _mm256_loadu_ps(bias);                               \
                bv1 = _mm256_loadu_ps(bias + 8);                           \
            }                                                              \
            STORE_ROW(0); STORE_ROW(1); STORE_ROW(2);                      \
            STORE_ROW(3); STORE_ROW(4); STORE_ROW(5);                      \
        } else {                                                           \
            _Alignas(32) float tile[MR * NR];                              \
            TILE_ROW(0); TILE_ROW(1); TILE_ROW(2);                         \
            TILE_ROW(3); TILE_ROW(4); TILE_ROW(5);                         \
            store_tile(tile, c, ldc, mr, nr, beta, bias);                  \
        }                                                                  \
    } while (0)

/* C[0:mr, 0:nr] = alpha * a b (+ bias[0:nr]) + beta * C over kc, a a packed
 * MR x kc strip, b a packed kc x NR strip (both 32-byte aligned for b). */
__attribute__((target("avx2,fma")))
static void kernel_avx2(int kc, const float *restrict a, const float *restrict b,
                        float *restrict c, int ldc, int mr, int nr, float alpha, float beta,
                        const float *restrict bias)
{
    for (int r = 0; r < mr; r++) {
        _mm_prefetch((const char *)(c + (size_t)r * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + (size_t)r * ldc + NR - 1), _MM_HINT_T0);
    }
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00,
           c20 = c00, c21 = c00, c30 = c00, c31 = c00, c40 = c00, c41 = c00,
           c50 = c00, c51 = c00;
    /* the k loop, 4 steps per iteration, in assembly: the compiler's
     * scheduling of the intrinsics (register moves, re-loads of b) cost
     * 20-30% of the peak. Accumulators in ymm0-11 (chosen by the compiler),
     * b in ymm12-13, broadcasts of a alternating in ymm14-15. */
    long n4 = kc / 4;
    if (n4 > 0) {
        __asm__ volatile(
        ".p2align 5\n"
        "1:\n\t"
        "prefetcht0 512(%[a])\n\t"
        "prefetcht0 576(%[a])\n\t"
        "vmovaps 0(%[b]), %%ymm12\n\t"
        "vmovaps 32(%[b]), %%ymm13\n\t"
        "vbroadcastss 0(%[a]), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %[c00]\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %[c01]\n\t"
        "vbroadcastss 4(%[a]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %[c10]\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %[c11]\n\t"
        "vbroadcastss 8(%[a]), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %[c20]\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %[c21]\n\t"
        "vbroadcastss 12(%[a]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %[c30]\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %[c31]\n\t"
        "vbroadcastss 16(%[a]), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %[c40]\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %[c41]\n\t"
        "vbroadcastss 20(%[a]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %[c50]\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %[c51]\n\t"
        "vmovaps 64(%[b]), %%ymm12\n\t"
        "vmovaps 96(%[b]), %%ymm13\n\t"
        "vbroadcastss 24(%[a]), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %[c00]\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %[c01]\n\t"
        "vbroadcastss 28(%[a]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %[c10]\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %[c11]\n\t"
        "vbroadcastss 32(%[a]), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %[c20]\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %[c21]\n\t"
        "vbroadcastss 36(%[a]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %[c30]\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %[c31]\n\t"
        "vbroadcastss 40(%[a]), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %[c40]\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %[c41]\n\t"
        "vbroadcastss 44(%[a]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %[c50]\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %[c51]\n\t"
        "vmovaps 128(%[b]), %%ymm12\n\t"
        "vmovaps 160(%[b]), %%ymm13\n\t"
        "vbroadcastss 48(%[a]), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %[c00]\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %[c01]\n\t"
        "vbroadcastss 52(%[a]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %[c10]\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %[c11]\n\t"
        "vbroadcastss 56(%[a]), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %[c20]\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %[c21]\n\t"
        "vbroadcastss 60(%[a]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %[c30]\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %[c31]\n\t"
        "vbroadcastss 64(%[a]), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %[c40]\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %[c41]\n\t"
        "vbroadcastss 68(%[a]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %[c50]\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %[c51]\n\t"
        "vmovaps 192(%[b]), %%ymm12\n\t"
        "vmovaps 224(%[b]), %%ymm13\n\t"
        "vbroadcastss 72(%[a]), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %[c00]\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %[c01]\n\t"
        "vbroadcastss 76(%[a]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %[c10]\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %[c11]\n\t"
        "vbroadcastss 80(%[a]), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %[c20]\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %[c21]\n\t"
        "vbroadcastss 84(%[a]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %[c30]\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %[c31]\n\t"
        "vbroadcastss 88(%[a]), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %[c40]\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %[c41]\n\t"
        "vbroadcastss 92(%[a]), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %[c50]\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %[c51]\n\t"
        "addq $96, %[a]\n\t"
        "addq $256, %[b]\n\t"
        "decq %[n]\n\t"
        "jnz 1b\n\t"
        : [a] "+r"(a), [b] "+r"(b), [n] "+r"(n4),
          [c00] "+x"(c00), [c01] "+x"(c01), [c10] "+x"(c10), [c11] "+x"(c11),
          [c20] "+x"(c20), [c21] "+x"(c21), [c30] "+x"(c30), [c31] "+x"(c31),
          [c40] "+x"(c40), [c41] "+x"(c41), [c50] "+x"(c50), [c51] "+x"(c51)
        :
        : "xmm12", "xmm13", "xmm14", "xmm15", "memory", "cc");
    }
    for (int k = kc & ~3; k < kc; k++) {
        FMA_STEP(0);
        a += MR;
        b += NR;
    }
    KERNEL_EPILOGUE();
}


/* The same for a full tile (mr == MR) with A read in place: row r of the
 * strip at a + r * lda, k contiguous (op(A) = A). Used when N is so small
 * that packing A would cost a noticeable part of the product. */
__attribute__((target("avx2,fma")))
static void kernel_avx2_rows(int kc, const float *restrict a, int lda, const float *restrict b,
                             float *restrict c, int ldc, int nr, float alpha, float beta,
                             const float *restrict bias)
{
    const int mr = MR;
    for (int r = 0; r < MR; r++) {
        _mm_prefetch((const char *)(c + (size_t)r * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + (size_t)r * ldc + NR - 1), _MM_HINT_T0);
    }
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00,
           c20 = c00, c21 = c00, c30 = c00, c31 = c00, c40 = c00, c41 = c00,
           c50 = c00, c51 = c00;
    long rs = (long)lda * 4; /* bytes between rows */
    long n4 = kc / 4;
    if (n4 > 0) {
        __asm__ volatile(
        "movq %[a], %%r8\n\t"
        "leaq (%[a],%[rs],2), %%r9\n\t"
        "addq %[rs], %%r9\n\t"
        "movq %[b], %%r10\n\t"
        "movq %[n], %%r11\n\t"
        ".p2align 5\n"
        "1:\n\t"
        "vmovaps 0(%%r10), %%ymm12\n\t"
        "vmovaps 32(%%r10), %%ymm13\n\t"
        "vbroadcastss 0(%%r8), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %[c00]\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %[c01]\n\t"
        "vbroadcastss 0(%%r8,%[rs],1), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %[c10]\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %[c11]\n\t"
        "vbroadcastss 0(%%r8,%[rs],2), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %[c20]\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %[c21]\n\t"
        "vbroadcastss 0(%%r9), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %[c30]\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %[c31]\n\t"
        "vbroadcastss 0(%%r9,%[rs],1), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %[c40]\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %[c41]\n\t"
        "vbroadcastss 0(%%r9,%[rs],2), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %[c50]\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %[c51]\n\t"
        "vmovaps 64(%%r10), %%ymm12\n\t"
        "vmovaps 96(%%r10), %%ymm13\n\t"
        "vbroadcastss 4(%%r8), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %[c00]\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %[c01]\n\t"
        "vbroadcastss 4(%%r8,%[rs],1), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %[c10]\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %[c11]\n\t"
        "vbroadcastss 4(%%r8,%[rs],2), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %[c20]\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %[c21]\n\t"
        "vbroadcastss 4(%%r9), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %[c30]\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %[c31]\n\t"
        "vbroadcastss 4(%%r9,%[rs],1), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %[c40]\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %[c41]\n\t"
        "vbroadcastss 4(%%r9,%[rs],2), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %[c50]\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %[c51]\n\t"
        "vmovaps 128(%%r10), %%ymm12\n\t"
        "vmovaps 160(%%r10), %%ymm13\n\t"
        "vbroadcastss 8(%%r8), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %[c00]\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %[c01]\n\t"
        "vbroadcastss 8(%%r8,%[rs],1), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %[c10]\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %[c11]\n\t"
        "vbroadcastss 8(%%r8,%[rs],2), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %[c20]\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %[c21]\n\t"
        "vbroadcastss 8(%%r9), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %[c30]\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %[c31]\n\t"
        "vbroadcastss 8(%%r9,%[rs],1), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %[c40]\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %[c41]\n\t"
        "vbroadcastss 8(%%r9,%[rs],2), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %[c50]\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %[c51]\n\t"
        "vmovaps 192(%%r10), %%ymm12\n\t"
        "vmovaps 224(%%r10), %%ymm13\n\t"
        "vbroadcastss 12(%%r8), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %[c00]\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %[c01]\n\t"
        "vbroadcastss 12(%%r8,%[rs],1), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %[c10]\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %[c11]\n\t"
        "vbroadcastss 12(%%r8,%[rs],2), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %[c20]\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %[c21]\n\t"
        "vbroadcastss 12(%%r9), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %[c30]\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %[c31]\n\t"
        "vbroadcastss 12(%%r9,%[rs],1), %%ymm14\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %[c40]\n\t"
        "vfmadd231ps %%ymm13, %%ymm14, %[c41]\n\t"
        "vbroadcastss 12(%%r9,%[rs],2), %%ymm15\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %[c50]\n\t"
        "vfmadd231ps %%ymm13, %%ymm15, %[c51]\n\t"
        "addq $16, %%r8\n\t"
        "addq $16, %%r9\n\t"
        "addq $256, %%r10\n\t"
        "decq %%r11\n\t"
        "jnz 1b\n\t"
        : [c00] "+x"(c00), [c01] "+x"(c01), [c10] "+x"(c10), [c11] "+x"(c11),
          [c20] "+x"(c20), [c21] "+x"(c21), [c30] "+x"(c30), [c31] "+x"(c31),
          [c40] "+x"(c40), [c41] "+x"(c41), [c50] "+x"(c50), [c51] "+x"(c51)
        : [a] "r"(a), [b] "r"(b), [n] "r"(n4), [rs] "r"(rs)
        : "r8", "r9", "r10", "r11", "xmm12", "xmm13", "xmm14", "xmm15", "memory", "cc");
    }
    const size_t l = (size_t)lda;
    const float *a0 = a + 4 * n4;
    b += (size_t)4 * n4 * NR;
    for (int k = kc & ~3; k < kc; k++, a0++, b += NR) {
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8), a_;
        a_ = _mm256_broadcast_ss(a0);
        c00 = _mm256_fmadd_ps(a_, b0, c00); c01 = _mm256_fmadd_ps(a_, b1, c01);
        a_ = _mm256_broadcast_ss(a0 + l);
        c10 = _mm256_fmadd_ps(a_, b0, c10); c11 = _mm256_fmadd_ps(a_, b1, c11);
        a_ = _mm256_broadcast_ss(a0 + 2 * l);
        c20 = _mm256_fmadd_ps(a_, b0, c20); c21 = _mm256_fmadd_ps(a_, b1, c21);
        a_ = _mm256_broadcast_ss(a0 + 3 * l);
        c30 = _mm256_fmadd_ps(a_, b0, c30); c31 = _mm256_fmadd_ps(a_, b1, c31);
        a_ = _mm256_broadcast_ss(a0 + 4 * l);
        c40 = _mm256_fmadd_ps(a_, b0, c40); c41 = _mm256_fmadd_ps(a_, b1, c41);
        a_ = _mm256_broadcast_ss(a0 + 5 * l);
        c50 = _mm256_fmadd_ps(a_, b0, c50); c51 = _mm256_fmadd_ps(a_, b1, c51);
    }
    KERNEL_EPILOGUE();
}

/* ------------------------------------------------------------------------ */
/* The loop nest                                                             */

typedef struct kern_ops {
    void (*pack_a)(int transA, const float *A, int lda, int i0, int p0, int mc, int kc,
                   float *dst);
    void (*pack_b)(int transB, const float *B, const uint16_t *b16, int ldb, int p0, int j0,
                   int kc, int nc, float *dst);
    void (*kernel)(int kc, const float *restrict a, const float *restrict b, float *restrict c,
                   int ldc, int mr, int nr, float alpha, float beta, const float *restrict bias);
} kern_ops;

static const kern_ops ops_generic = {pack_a_generic, pack_b_generic, kernel_generic};
static const kern_ops ops_avx2 = {pack_a_avx2, pack_b_avx2, kernel_avx2};

/* Prefetching of the next packed-A source block while the current one is
 * being multiplied: packing a block that is not in cache otherwise stalls
 * on memory (it matters when K or N is small, so that each block holds
 * little work). The block is a set of rows (of op(A) when A is not
 * transposed, of the stored K x M matrix when it is), spread evenly over the
 * kernel calls of the current block. */
typedef struct a_prefetch {
    const char *base;  /* first byte of the first row */
    size_t stride;     /* bytes between rows */
    int rows, lines;   /* rows, 64-byte lines per row */
    int pos, per_call; /* next line (row-major), lines per kernel call */
} a_prefetch;

static void a_prefetch_plan(a_prefetch *p, int transA, const float *A, int lda, int i0, int p0,
                            int mc, int kc, int calls)
{
    p->pos = 0;
    if (mc <= 0 || kc <= 0 || calls <= 0) {
        p->rows = 0;
        return;
    }
    if (transA) { /* rows k = p0.., mc floats from column i0 */
        p->base = (const char *)(A + (size_t)p0 * lda + i0);
        p->rows = kc;
        p->lines = (mc * 4 + 63) / 64 + 1;
    } else {
        p->base = (const char *)(A + (size_t)i0 * lda + p0);
        p->rows = mc;
        p->lines = (kc * 4 + 63) / 64 + 1;
    }
    p->stride = (size_t)lda * 4;
    int total = p->rows * p->lines;
    p->per_call = (total + calls - 1) / calls;
}

static inline void a_prefetch_step(a_prefetch *p)
{
    for (int n = 0; n < p->per_call && p->pos < p->rows * p->lines; n++, p->pos++) {
        int r = p->pos / p->lines, l = p->pos % p->lines;
        /* (the last line of the last row may lie past the matrix: a
         * prefetch never faults) */
        __builtin_prefetch(p->base + (size_t)r * p->stride + (size_t)l * 64, 0, 2);
    }
}

/* Offset of the packed block (jc, pc) of a whole packed B (gr_gemm_own_pack_b):
 * blocks in column-panel order (NC columns), each holding its K rows in KC
 * blocks of round_up(nc, NR) x kc floats. */
static size_t packed_off(int N, int K, int jc, int pc)
{
    int nc = N - jc < NC ? N - jc : NC;
    return (size_t)jc * K + (size_t)((nc + NR - 1) / NR * NR) * pc;
}

size_t gr_gemm_own_packed_size(int N, int K)
{
    return N > 0 && K > 0 ? (size_t)((N + NR - 1) / NR * NR) * (size_t)K : 0;
}

void gr_gemm_own_pack_b(gr_gemm_isa isa, int transB, int N, int K, const float *B, int ldb, float *dst)
{
    const kern_ops *ops = isa == GR_ISA_AVX2 ? &ops_avx2 : &ops_generic;
    for (int jc = 0; jc < N; jc += NC)
        for (int pc = 0; pc < K; pc += KC)
            ops->pack_b(transB, B, NULL, ldb, pc, jc, K - pc < KC ? K - pc : KC, N - jc < NC ? N - jc : NC,
                        dst + packed_off(N, K, jc, pc));
}

/* The packed product: B packed now into the thread's buffer (Bpre NULL) or
 * read from a whole packed B (Bpre, see packed_off). */
static int own_run(gr_gemm_isa isa, int tri, int off, int transA, int transB, int M, int N, int K,
                   float alpha, const float *A, int lda, const void *B, int b_bf16, int ldb,
                   const float *Bpre, float beta, float *C, int ldc, const float *bias)
{
    pack_bufs *pb = get_buffers();
    if (!pb) return -1;
    const kern_ops *ops = isa == GR_ISA_AVX2 ? &ops_avx2 : &ops_generic;
    const float *Bf = b_bf16 ? NULL : (const float *)B;
    const uint16_t *Bh = b_bf16 ? (const uint16_t *)B : NULL;
    float *ap = pb->a;
    const float *bp = pb->b;
    a_prefetch pf = {0};
    /* A read in place (not packed) by the AVX2 kernel when op(A) = A and N
     * is small: each packed strip would then be used by at most
     * A_ROWS_MAX_N / NR kernel calls, too few to pay for the packing */
    int a_rows = isa == GR_ISA_AVX2 && !transA && N <= A_ROWS_MAX_N;
    for (int jc = 0; jc < N; jc += NC) {
        int nc = N - jc < NC ? N - jc : NC;
        for (int pc = 0; pc < K; pc += KC) {
            int kc = K - pc < KC ? K - pc : KC;
            float beta_eff = pc == 0 ? beta : 1.0f;
            const float *bias_eff = bias && pc == 0 ? bias + jc : NULL;
            if (Bpre) bp = Bpre + packed_off(N, K, jc, pc);
            else ops->pack_b(transB, Bf, Bh, ldb, pc, jc, kc, nc, pb->b);
            for (int ic = 0; ic < M; ic += MC) {
                int mc = M - ic < MC ? M - ic : MC;
                if (!a_rows)
                    ops->pack_a(transA, A, lda, ic, pc, mc, kc, ap);
                else if (mc % MR) /* only the partial strip is packed */
                    ops->pack_a(transA, A, lda, ic + mc - mc % MR, pc, mc % MR, kc,
                                ap + (size_t)(mc - mc % MR) * kc);
                /* the next A block: further down, or the next K block */
                int calls = ((mc + MR - 1) / MR) * ((nc + NR - 1) / NR);
                if (ic + MC < M)
                    a_prefetch_plan(&pf, transA, A, lda, ic + MC, pc,
                                    M - ic - MC < MC ? M - ic - MC : MC, kc, calls);
                else if (pc + KC < K)
                    a_prefetch_plan(&pf, transA, A, lda, 0, pc + KC, M < MC ? M : MC,
                                    K - pc - KC < KC ? K - pc - KC : KC, calls);
                else
                    pf.rows = 0;
                for (int jr = 0; jr < nc; jr += NR) {
                    int nr = nc - jr < NR ? nc - jr : NR;
                    for (int ir = 0; ir < mc; ir += MR) {
                        int mr = mc - ir < MR ? mc - ir : MR, i0 = ic + ir;
                        if (pf.rows) a_prefetch_step(&pf);
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
                        if (a_rows && mr == MR) {
                            kernel_avx2_rows(k1 - k0, A + (size_t)i0 * lda + pc + k0, lda,
                                             bp + (size_t)jr * kc + (size_t)k0 * NR,
                                             C + (size_t)i0 * ldc + jc + jr, ldc, nr, alpha,
                                             beta_eff, bias_eff ? bias_eff + jr : NULL);
                            continue;
                        }
                        ops->kernel(k1 - k0, ap + (size_t)ir * kc + (size_t)k0 * MR,
                                    bp + (size_t)jr * kc + (size_t)k0 * NR,
                                    C + (size_t)i0 * ldc + jc + jr, ldc, mr, nr, alpha, beta_eff,
                                    bias_eff ? bias_eff + jr : NULL);
                    }
                }
            }
        }
    }
    return 0;
}

int gr_gemm_own(gr_gemm_isa isa, int tri, int off, int transA, int transB, int M, int N,
                int K, float alpha, const float *A, int lda, const void *B, int b_bf16,
                int ldb, float beta, float *C, int ldc, const float *bias)
{
    return own_run(isa, tri, off, transA, transB, M, N, K, alpha, A, lda, B, b_bf16, ldb, NULL, beta, C,
                   ldc, bias);
}

int gr_gemm_own_packed(gr_gemm_isa isa, int transA, int M, int N, int K, float alpha, const float *A,
                       int lda, const float *Bp, float beta, float *C, int ldc, const float *bias)
{
    return own_run(isa, GR_TRI_NONE, 0, transA, 0, M, N, K, alpha, A, lda, NULL, 0, 0, Bp, beta, C, ldc, bias);
}

int gr_gemm_avx2_tri(int tri, int off, int transA, int transB, int M, int N, int K,
                     float alpha, const float *A, int lda, const float *B, int ldb,
                     float beta, float *C, int ldc, const float *bias)
{
    return gr_gemm_own(GR_ISA_AVX2, tri, off, transA, transB, M, N, K, alpha, A, lda, B, 0, ldb,
                       beta, C, ldc, bias);
}

int gr_gemm_avx2(int transA, int transB, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb,
                 float beta, float *C, int ldc, const float *bias)
{
    return gr_gemm_own(GR_ISA_AVX2, GR_TRI_NONE, 0, transA, transB, M, N, K, alpha, A, lda, B, 0,
                       ldb, beta, C, ldc, bias);
}
