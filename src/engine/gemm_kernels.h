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

#endif
