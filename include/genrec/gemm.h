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
 * Backends: genrec's own packed GEMM (BLIS-style: op(A) and op(B) packed
 * into per-thread aligned panels blocked for L1/L2/L3, one 6x16 AVX2/FMA
 * micro-kernel with 12 ymm accumulators for every transposition case) and
 * OpenBLAS cblas_sgemm. The ISA is chosen at run time with
 * __builtin_cpu_supports: without AVX2/FMA (or when forced, see
 * gr_gemm_force_generic) the own GEMM runs a portable C kernel over the same
 * packing. GR_GEMM_AUTO picks from bench_gemm measurements (see
 * docs/BENCHMARKS.md): the own AVX2 kernel for every shape when the CPU has
 * AVX2/FMA (1.3-2.5x OpenBLAS on the skinny SASRec/scoring shapes, within
 * the shared machine's noise of it on the large LM shapes), OpenBLAS
 * otherwise (its own dispatch covers older x86 better than portable C).
 *
 * Thread policy (the whole library follows it): parallelism is OpenMP only.
 * OpenBLAS is switched to 1 thread on first use (its own pthread pool would
 * fight with OpenMP's spinning threads on a small machine), and gr_gemm
 * splits C itself into tile-aligned blocks (up to 4 per thread, handed out
 * dynamically so a descheduled thread does not stall the others). gr_gemm
 * uses gr_threads_get() threads when called from serial code and 1 thread
 * when called from inside an active parallel region, so it is safe to call
 * from anywhere. The one exception is the engine's own passes: called by
 * every thread of a pass's single parallel region (src/engine/par.h),
 * gr_gemm, gr_gemm_bias and gr_gemm_bf16 share the blocks among that team
 * (an orphaned `omp for`) instead of opening a region; the _ex variants
 * with n_threads > 0 and gr_gemm_serial never do. Results are deterministic for a given thread count (each
 * element of C is computed by one thread, with a fixed summation order; with
 * the AVX2 kernel they do not even depend on the thread count). Library code
 * should call gr_gemm rather than cblas_sgemm directly. On a machine shared
 * with other busy processes, OMP_WAIT_POLICY=passive stops idle OpenMP
 * threads from spinning away their CPU share.
 *
 * bf16 weights: gr_gemm_bf16 takes B as bf16 (the upper 16 bits of an fp32,
 * stored as uint16_t) with fp32 A, C and fp32 accumulation; B is widened to
 * fp32 while it is packed (a 16-bit shift), so it runs the same kernel and
 * reads half the weight bytes (for memory-bound decoding). The result equals
 * gr_gemm on the fp32 values the bf16 numbers stand for. Future work: on a
 * CPU with AVX512_BF16, a kernel on vdpbf16ps (bf16 A and B, fp32
 * accumulation) would double the multiply rate; it is not written because no
 * machine here has that extension to test it on.
 */
#ifndef GENREC_GEMM_H
#define GENREC_GEMM_H

#include <stddef.h>
#include <stdint.h>

typedef enum gr_gemm_backend {
    GR_GEMM_AUTO = 0,   /* per shape and CPU: own AVX2 kernel, else OpenBLAS */
    GR_GEMM_BLAS,       /* OpenBLAS cblas_sgemm, 1 BLAS thread per caller thread */
    GR_GEMM_AVX2,       /* own packed kernel; the generic C one without AVX2/FMA */
    GR_GEMM_NAIVE,      /* triple loop (reference, slow) */
    GR_GEMM_BLAS_THREADED, /* OpenBLAS with its own threads (benchmarks only) */
    GR_GEMM_GENERIC     /* own packed GEMM with the portable C kernel (tests) */
} gr_gemm_backend;

/* C = alpha*op(A)*op(B) + beta*C with gr_threads_get() threads (1 inside a
 * parallel region, the team's threads inside an engine pass, see above).
 * Cannot fail; dimensions <= 0 are a no-op except that
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

/* 1 when the AVX2/FMA kernel can run on this CPU (and is not forced off). */
int gr_gemm_have_avx2(void);

/* Prepacked B, for one B multiplied by many A (a prompt's keys and values in
 * beam search, weights in decoding): gr_gemm_pack_b writes op(B) (K x N,
 * transB as in gr_gemm) into gr_gemm_pack_b_size(N, K) floats at dst,
 * owned by the caller and 32-byte aligned (gr_alloc's are; a misaligned
 * buffer is read by the slow loop below); gr_gemm_packed_serial then computes C =
 * alpha*op(A)*op(B) + beta*C from it on the calling thread with genrec's
 * own kernel (AVX2 when the CPU has it: then bit-identical to gr_gemm_serial
 * on the unpacked B; packing is skipped, not the product). Cannot fail (an
 * OOM for the A buffer falls back to a loop over the packed layout). The
 * packed buffer is only valid for the N and K it was packed with.
 * gr_gemm_packed_ex picks the kernel: GR_GEMM_GENERIC the portable one,
 * GR_GEMM_NAIVE the loop over the packed layout (tests), anything else as
 * gr_gemm_packed_serial. */
size_t gr_gemm_pack_b_size(int N, int K);
void gr_gemm_pack_b(int transB, int N, int K, const float *B, int ldb, float *dst);
void gr_gemm_packed_serial(int transA, int M, int N, int K, float alpha, const float *A, int lda,
                           const float *Bp, float beta, float *C, int ldc);
void gr_gemm_packed_ex(gr_gemm_backend be, int transA, int M, int N, int K, float alpha, const float *A,
                       int lda, const float *Bp, float beta, float *C, int ldc);
/* The same product with + bias[j] on every row (bias may be NULL), shared
 * by threads as gr_gemm is (rows split in whole tiles; the team's threads
 * inside an engine pass). */
void gr_gemm_packed(int transA, int M, int N, int K, float alpha, const float *A, int lda, const float *Bp,
                    const float *bias, float beta, float *C, int ldc);

/* Force (on != 0) the generic path as if the CPU lacked AVX2/FMA, or go
 * back to detection (on == 0): gr_gemm_have_avx2() then returns 0, AUTO and
 * AVX2 behave as on such a CPU, and so do the other vector paths keyed on
 * it (vmath). Setting GENREC_GEMM_GENERIC=1 in the environment does the same
 * from the start. For tests and benchmarks; not meant to be flipped while
 * other threads are inside gr_gemm. Cannot fail. */
void gr_gemm_force_generic(int on);

/* C (M, N) = alpha * op(A) (M, K) * op(B) (K, N) + beta * C with B in bf16
 * (uint16_t, op(B) as in gr_gemm, ldb in elements), A and C fp32, fp32
 * accumulation. Same threading, determinism and degenerate-shape rules as
 * gr_gemm. Cannot fail. */
void gr_gemm_bf16(int transA, int transB, int M, int N, int K, float alpha, const float *A,
                  int lda, const uint16_t *B, int ldb, float beta, float *C, int ldc);
/* The same with an explicit backend and thread count: AUTO and AVX2 run the
 * own AVX2 kernel (generic C without AVX2/FMA), GENERIC the C kernel, NAIVE
 * the triple loop; the BLAS backends have no bf16 and act as AUTO. */
void gr_gemm_bf16_ex(gr_gemm_backend be, int n_threads, int transA, int transB, int M, int N,
                     int K, float alpha, const float *A, int lda, const uint16_t *B, int ldb,
                     float beta, float *C, int ldc);

/* fp32 -> bf16 rounding to nearest, ties to even (NaN stays NaN, overflow
 * rounds to infinity), and bf16 -> fp32 (exact). */
uint16_t gr_f32_to_bf16(float f);
float gr_bf16_to_f32(uint16_t h);
/* The same over n elements (src and dst must not overlap). */
void gr_f32_to_bf16_n(const float *src, uint16_t *dst, size_t n);
void gr_bf16_to_f32_n(const uint16_t *src, float *dst, size_t n);

/* Printable backend name ("avx2", "openblas", ...). */
const char *gr_gemm_backend_name(gr_gemm_backend be);

#endif
