/* gr_gemm: backend dispatch and the thread policy described in gemm.h.
 *
 * C is split into contiguous blocks of whole 6x16 tiles (rows or columns,
 * whichever divides most evenly), up to 4 per thread when that is cheap,
 * handed out dynamically; each block runs the single-threaded kernel. The
 * block boundaries depend only on the shape and thread count, and the AVX2
 * kernel's result does not depend on them at all. OpenBLAS is set to one thread
 * once, so the only threads ever running are OpenMP's.
 */
#include "genrec/gemm.h"
#include "genrec/common.h"
#include "gemm_kernels.h"

#include <cblas.h>
#include <omp.h>
#include <pthread.h>

/* Multiply-adds per thread below which another thread is not worth its
 * wake-up and barrier (~40 us of work: overhead stays under ~10%). */
#define GEMM_PAR_MIN_WORK (1 << 20)
/* Chunks beyond one per thread only when the operand all chunks share has
 * at most this many floats (it is re-packed or re-read per chunk). */
#define GEMM_SHARED_MAX (1 << 18)
/* AUTO uses OpenBLAS when M, N and K are all at least this large. */
#define GEMM_BLAS_MIN_DIM 512

static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
static void blas_single_thread(void) { openblas_set_num_threads(1); }

int gr_gemm_have_avx2(void) { return gr_gemm_avx2_supported(); }

const char *gr_gemm_backend_name(gr_gemm_backend be)
{
    switch (be) {
    case GR_GEMM_AUTO: return gr_gemm_avx2_supported() ? "avx2" : "openblas";
    case GR_GEMM_BLAS: return "openblas-1t";
    case GR_GEMM_AVX2: return "avx2";
    case GR_GEMM_NAIVE: return "naive";
    case GR_GEMM_BLAS_THREADED: return "openblas-mt";
    }
    return "?";
}

static void gemm_naive(int transA, int transB, int M, int N, int K, float alpha,
                       const float *A, int lda, const float *B, int ldb,
                       float beta, float *C, int ldc, const float *bias)
{
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            float s = 0.0f;
            for (int k = 0; k < K; k++) {
                float a = transA ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                float b = transB ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                s += a * b;
            }
            float *c = C + (size_t)i * ldc + j;
            float v = alpha * s + (bias ? bias[j] : 0.0f);
            *c = beta == 0.0f ? v : v + beta * *c;
        }
    }
}

static void gemm_blas(int transA, int transB, int M, int N, int K, float alpha,
                      const float *A, int lda, const float *B, int ldb,
                      float beta, float *C, int ldc)
{
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
                transB ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb,
                beta, C, ldc);
}

/* C = beta*C + bias (rows), the part of the product that needs no A, B. */
static void scale_add_bias(int M, int N, float beta, float *C, int ldc, const float *bias)
{
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * ldc;
        for (int j = 0; j < N; j++)
            c[j] = (beta == 0.0f ? 0.0f : beta * c[j]) + (bias ? bias[j] : 0.0f);
    }
}

/* One block on the calling thread with backend be (AUTO/AVX2/BLAS/NAIVE). */
static void gemm_block(gr_gemm_backend be, int transA, int transB, int M, int N, int K,
                       float alpha, const float *A, int lda, const float *B, int ldb,
                       float beta, float *C, int ldc, const float *bias)
{
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        scale_add_bias(M, N, beta, C, ldc, bias);
        return;
    }
    if (be == GR_GEMM_NAIVE) {
        gemm_naive(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bias);
        return;
    }
    if ((be == GR_GEMM_AUTO || be == GR_GEMM_AVX2) && gr_gemm_avx2_supported() &&
        gr_gemm_avx2(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bias) == 0)
        return;
    if (bias) {
        scale_add_bias(M, N, beta, C, ldc, bias);
        beta = 1.0f;
    }
    gemm_blas(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

static void gemm_run(gr_gemm_backend be, int n_threads, int transA, int transB,
                     int M, int N, int K, float alpha, const float *A, int lda,
                     const float *B, int ldb, float beta, float *C, int ldc,
                     const float *bias)
{
    if (M <= 0 || N <= 0) return;
    if (be == GR_GEMM_BLAS_THREADED) { /* benchmarks: OpenBLAS's own threads */
        int nt = n_threads > 0 ? n_threads : gr_threads_get();
        pthread_once(&blas_once, blas_single_thread);
        if (bias) {
            scale_add_bias(M, N, beta, C, ldc, bias);
            beta = 1.0f;
        }
        openblas_set_num_threads(nt);
        if (K > 0) gemm_blas(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        else if (!bias) scale_add_bias(M, N, beta, C, ldc, NULL);
        openblas_set_num_threads(1);
        return;
    }
    if (be != GR_GEMM_NAIVE) pthread_once(&blas_once, blas_single_thread);
    /* measured (bench_gemm): the own kernel wins on the skinny shapes of
     * transformers and scoring; OpenBLAS's packed kernels are a little
     * faster once every dimension is large */
    if (be == GR_GEMM_AUTO && M >= GEMM_BLAS_MIN_DIM && N >= GEMM_BLAS_MIN_DIM && K >= GEMM_BLAS_MIN_DIM)
        be = GR_GEMM_BLAS;
    int nt = n_threads > 0 ? n_threads : gr_threads_get();
    if (omp_in_parallel()) nt = 1;
    double work = (double)M * N * (K > 0 ? K : 1);
    if (nt > 1 && work < (double)GEMM_PAR_MIN_WORK * nt) {
        nt = (int)(work / GEMM_PAR_MIN_WORK);
        if (nt < 1) nt = 1;
    }
    /* split the side whose 6-row / 16-column tiles divide most evenly among
     * the threads (ties: the larger side); blocks are whole tiles */
    int tm = (M + 5) / 6, tn = (N + 15) / 16;
    double em = (double)tm / (nt * ((tm + nt - 1) / nt)), en = (double)tn / (nt * ((tn + nt - 1) / nt));
    int split_m = em > en || (em == en && M >= N);
    int dim = split_m ? M : N, gran = split_m ? 6 : 16, tiles = split_m ? tm : tn;
    if (nt > tiles) nt = tiles;
    if (nt <= 1) {
        gemm_block(be, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bias);
        return;
    }
    /* more chunks than threads, handed out dynamically, so a descheduled
     * thread does not stall the product; only when the operand every chunk
     * re-reads (B for a row split, A for a column split) is small */
    int nchunk = nt;
    double shared = split_m ? (double)N * K : (double)M * K;
    if (shared <= GEMM_SHARED_MAX) {
        nchunk = 4 * nt;
        while (nchunk > nt && work / nchunk < GEMM_PAR_MIN_WORK) nchunk--;
        if (nchunk > tiles) nchunk = tiles;
    }
    int chunk = ((tiles + nchunk - 1) / nchunk) * gran;
    nchunk = (dim + chunk - 1) / chunk;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int t = 0; t < nchunk; t++) {
        int lo = t * chunk, hi = lo + chunk < dim ? lo + chunk : dim;
        if (split_m) {
            const float *At = transA ? A + lo : A + (size_t)lo * lda;
            gemm_block(be, transA, transB, hi - lo, N, K, alpha, At, lda, B, ldb, beta,
                       C + (size_t)lo * ldc, ldc, bias);
        } else {
            const float *Bt = transB ? B + (size_t)lo * ldb : B + lo;
            gemm_block(be, transA, transB, M, hi - lo, K, alpha, A, lda, Bt, ldb, beta,
                       C + lo, ldc, bias ? bias + lo : NULL);
        }
    }
}

void gr_gemm_ex(gr_gemm_backend be, int n_threads, int transA, int transB,
                int M, int N, int K, float alpha, const float *A, int lda,
                const float *B, int ldb, float beta, float *C, int ldc)
{
    gemm_run(be, n_threads, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL);
}

void gr_gemm(int transA, int transB, int M, int N, int K, float alpha,
             const float *A, int lda, const float *B, int ldb,
             float beta, float *C, int ldc)
{
    gemm_run(GR_GEMM_AUTO, 0, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL);
}

void gr_gemm_serial(int transA, int transB, int M, int N, int K, float alpha,
                    const float *A, int lda, const float *B, int ldb,
                    float beta, float *C, int ldc)
{
    gemm_run(GR_GEMM_AUTO, 1, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL);
}

void gr_gemm_bias_ex(gr_gemm_backend be, int n_threads, int transA, int transB,
                     int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                     const float *bias, float *C, int ldc)
{
    gemm_run(be, n_threads, transA, transB, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, ldc, bias);
}

void gr_gemm_bias(int transA, int transB, int M, int N, int K, const float *A, int lda,
                  const float *B, int ldb, const float *bias, float *C, int ldc)
{
    gemm_run(GR_GEMM_AUTO, 0, transA, transB, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, ldc, bias);
}

void gr_gemm_tri_serial(int tri, int off, int transA, int transB, int M, int N, int K,
                        float alpha, const float *A, int lda, const float *B, int ldb,
                        float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0) return;
    if (K > 0 && gr_gemm_avx2_supported() &&
        gr_gemm_avx2_tri(tri, off, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C,
                         ldc, NULL) == 0)
        return;
    gr_gemm_serial(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
