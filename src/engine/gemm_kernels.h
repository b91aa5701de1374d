/* Internal: genrec's own packed GEMM (gemm_kernels.c), called by gemm.c. */
#ifndef GENREC_ENGINE_GEMM_KERNELS_H
#define GENREC_ENGINE_GEMM_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* 1 when this CPU has AVX2 and FMA (checked once with
 * __builtin_cpu_supports) and the generic path is not forced
 * (gr_gemm_force_generic(), or GENREC_GEMM_GENERIC=1 in the environment).
 * vmath.c uses the same switch for its vector paths. */
int gr_gemm_avx2_supported(void);

/* Force (on != 0) or stop forcing the generic path; see gr_gemm_force_generic. */
void gr_gemm_kernels_force_generic(int on);

/* Which implementation of the packed GEMM to run. */
typedef enum gr_gemm_isa {
    GR_ISA_GENERIC = 0, /* portable C (whatever the compiler makes of it) */
    GR_ISA_AVX2         /* 6x16 AVX2/FMA micro-kernel; caller checks support */
} gr_gemm_isa;

/* Triangular structure the attention products can exploit (i = row of C,
 * j = column of C, k = inner index, all relative to this call, off = offset
 * of the diagonal):
 *   GR_TRI_C_LOWER: only C entries with j <= i + off are needed; 6x16 tiles
 *                   entirely above that diagonal are skipped (left unwritten).
 *   GR_TRI_A_LOWER: op(A)(i, k) == 0 for k > i + off (the products skip it).
 *   GR_TRI_A_UPPER: op(A)(i, k) == 0 for k < i + off.
 * The zero entries must really be zero in memory (they may still be read
 * within a tile). */
enum { GR_TRI_NONE = 0, GR_TRI_C_LOWER, GR_TRI_A_LOWER, GR_TRI_A_UPPER };

/* Single-threaded C = alpha*op(A)*op(B) + beta*C (+ bias[j] on every row
 * when bias != NULL), same contract as gr_gemm, with the triangular structure
 * tri (GR_TRI_NONE for a plain product). B is fp32 (b_bf16 == 0, B is a
 * const float *) or bf16 (b_bf16 != 0, B is a const uint16_t *), converted
 * to fp32 while packing. Uses per-thread packing buffers; returns -1
 * (nothing written) if they cannot be allocated, else 0. M, N, K > 0.
 * The summation order of every C element depends only on K (blocks of 256,
 * in order), never on M, N or the tile the element sits in, so results do
 * not depend on how C is split. */
int gr_gemm_own(gr_gemm_isa isa, int tri, int off, int transA, int transB, int M, int N,
                int K, float alpha, const float *A, int lda, const void *B, int b_bf16,
                int ldb, float beta, float *C, int ldc, const float *bias);

/* A whole op(B) (K x N, fp32) packed once for many products
 * (gr_gemm_own_packed): gr_gemm_own_packed_size(N, K) floats at dst (0 when
 * N or K <= 0). The layout is the same for both ISAs. */
size_t gr_gemm_own_packed_size(int N, int K);
void gr_gemm_own_pack_b(gr_gemm_isa isa, int transB, int N, int K, const float *B, int ldb, float *dst);

/* gr_gemm_own with B already packed by gr_gemm_own_pack_b (same N, K);
 * the same results as gr_gemm_own on the unpacked B (bias as there). -1 (nothing written)
 * when the A buffer cannot be allocated, else 0. M, N, K > 0. */
int gr_gemm_own_packed(gr_gemm_isa isa, int transA, int M, int N, int K, float alpha, const float *A,
                       int lda, const float *Bp, float beta, float *C, int ldc, const float *bias);

/* gr_gemm_own with the AVX2 ISA, fp32 B (kept for older callers). */
int gr_gemm_avx2(int transA, int transB, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb,
                 float beta, float *C, int ldc, const float *bias);
int gr_gemm_avx2_tri(int tri, int off, int transA, int transB, int M, int N, int K,
                     float alpha, const float *A, int lda, const float *B, int ldb,
                     float beta, float *C, int ldc, const float *bias);

/* Single-threaded triangular GEMM for attention: the AVX2 kernel when
 * available, else the generic packed kernel (same structure exploited).
 * Implemented in gemm.c. */
void gr_gemm_tri_serial(int tri, int off, int transA, int transB, int M, int N, int K,
                        float alpha, const float *A, int lda, const float *B, int ldb,
                        float beta, float *C, int ldc);

#endif
