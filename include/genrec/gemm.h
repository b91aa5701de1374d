/* Row-major fp32 matrix multiplication, the one GEMM every model uses.
 *
 *   C (M, N) = alpha * op(A) (M, K) * op(B) (K, N) + beta * C
 *
 * op(A) = A when transA == 0 (A is M x K, row stride lda >= K) and A^T when
 * transA != 0 (A is stored K x M, lda >= M); likewise B (K x N, ldb >= N, or
 * stored N x K, ldb >= K, when transB != 0). C is M x N with ldc >= N.
 * With beta == 0, C is written without being read (it may hold garbage/NaN).
 * A layer's three products are all gr_gemm calls:
 *   forward   Y (N,OC)  = X (N,C) W^T        gr_gemm(0, 1, ...)
 *   backward  dX (N,C) += dY (N,OC) W (OC,C) gr_gemm(0, 0, ..., beta 1)
 *             dW (OC,C) += dY^T X            gr_gemm(1, 0, ..., beta 1)
 *
 * Backends: a register-tiled AVX2/FMA micro-kernel (6x16, chosen at run time
 * with __builtin_cpu_supports) and OpenBLAS cblas_sgemm. GR_GEMM_AUTO picks
 * per shape from bench_gemm measurements: the own kernel for the skinny
 * products of transformers and scoring (any dimension < 512), OpenBLAS when
 * M, N and K are all >= 512 or when the CPU lacks AVX2/FMA.
 *
 * Thread policy (the whole library follows it): parallelism is OpenMP only.
 * OpenBLAS is switched to 1 thread on first use (its own pthread pool would
 * fight with OpenMP's spinning threads on a small machine), and gr_gemm
 * splits C itself into tile-aligned blocks (up to 4 per thread, handed out
 * dynamically so a descheduled thread does not stall the others). gr_gemm
 * uses gr_threads_get() threads when called from serial code and 1 thread
 * when called from inside an active parallel region, so it is safe to call
 * from anywhere. Results are deterministic for a given thread count (each
 * element of C is computed by one thread, with a fixed summation order; with
 * the AVX2 kernel they do not even depend on the thread count). Library code
 * should call gr_gemm rather than cblas_sgemm directly. On a machine shared
 * with other busy processes, OMP_WAIT_POLICY=passive stops idle OpenMP
 * threads from spinning away their CPU share.
 */
#ifndef GENREC_GEMM_H
#define GENREC_GEMM_H

typedef enum gr_gemm_backend {
    GR_GEMM_AUTO = 0,   /* per shape: AVX2 kernel, or BLAS for large squares */
    GR_GEMM_BLAS,       /* OpenBLAS cblas_sgemm, 1 BLAS thread per caller thread */
    GR_GEMM_AVX2,       /* own kernel; falls back to BLAS without AVX2/FMA */
    GR_GEMM_NAIVE,      /* triple loop (reference, slow) */
    GR_GEMM_BLAS_THREADED /* OpenBLAS with its own threads (benchmarks only) */
} gr_gemm_backend;

/* C = alpha*op(A)*op(B) + beta*C with gr_threads_get() threads (1 inside a
 * parallel region). Cannot fail; dimensions <= 0 are a no-op except that
 * K <= 0 scales C by beta. */
void gr_gemm(int transA, int transB, int M, int N, int K, float alpha,
             const float *A, int lda, const float *B, int ldb,
             float beta, float *C, int ldc);

/* The same on the calling thread only (for use inside parallel loops). */
void gr_gemm_serial(int transA, int transB, int M, int N, int K, float alpha,
                    const float *A, int lda, const float *B, int ldb,
                    float beta, float *C, int ldc);

/* The same with an explicit backend and thread count (n_threads <= 0 means
 * gr_threads_get()); for tests and benchmarks. */
void gr_gemm_ex(gr_gemm_backend be, int n_threads, int transA, int transB,
                int M, int N, int K, float alpha, const float *A, int lda,
                const float *B, int ldb, float beta, float *C, int ldc);

/* C (M, N) = op(A) op(B) + bias, bias (N) added to every row (NULL: none),
 * C written without being read: a linear layer's forward in one pass (the
 * bias is added in the kernel's store). Same threading as gr_gemm. */
void gr_gemm_bias(int transA, int transB, int M, int N, int K, const float *A, int lda,
                  const float *B, int ldb, const float *bias, float *C, int ldc);
/* The same with an explicit backend and thread count (tests, benchmarks). */
void gr_gemm_bias_ex(gr_gemm_backend be, int n_threads, int transA, int transB,
                     int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                     const float *bias, float *C, int ldc);

/* 1 when the AVX2/FMA kernel can run on this CPU. */
int gr_gemm_have_avx2(void);

/* Printable backend name ("avx2", "openblas", ...). */
const char *gr_gemm_backend_name(gr_gemm_backend be);

#endif
