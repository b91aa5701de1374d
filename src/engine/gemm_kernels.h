/* Internal: the packed AVX2/FMA GEMM (gemm_kernels.c), called by gemm.c. */
#ifndef GENREC_ENGINE_GEMM_KERNELS_H
#define GENREC_ENGINE_GEMM_KERNELS_H

/* 1 when this CPU has AVX2 and FMA (checked once). */
int gr_gemm_avx2_supported(void);

/* Single-threaded C = alpha*op(A)*op(B) + beta*C (+ bias[j] on every row
 * when bias != NULL), same contract as gr_gemm. Uses per-thread packing
 * buffers; returns -1 (nothing written) if they cannot be allocated, so the
 * caller can fall back to BLAS. M, N, K > 0. */
int gr_gemm_avx2(int transA, int transB, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb,
                 float beta, float *C, int ldc, const float *bias);

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

/* gr_gemm_avx2 with a triangular structure (see above); same contract. */
int gr_gemm_avx2_tri(int tri, int off, int transA, int transB, int M, int N, int K,
                     float alpha, const float *A, int lda, const float *B, int ldb,
                     float beta, float *C, int ldc, const float *bias);

/* Single-threaded triangular GEMM for attention: the AVX2 kernel when
 * available, else a full product through gr_gemm_serial (same result on the
 * entries the structure defines). Implemented in gemm.c. */
void gr_gemm_tri_serial(int tri, int off, int transA, int transB, int M, int N, int K,
                        float alpha, const float *A, int lda, const float *B, int ldb,
                        float beta, float *C, int ldc);

#endif
