/* gr_gemm: backend dispatch and the thread policy described in gemm.h.
 *
 * C is split into one contiguous block per thread (rows when M is the larger
 * side, else columns, rounded to the micro-kernel's 6x16 tile), each thread
 * runs the single-threaded kernel on its block. OpenBLAS is set to one thread
 * once, so the only threads ever running are OpenMP's.
 */
#include "genrec/gemm.h"
#include "genrec/common.h"
#include "gemm_kernels.h"

#include <cblas.h>
#include <omp.h>
#include <pthread.h>

/* Below this many multiply-adds a parallel region costs more than it saves. */
#define GEMM_PAR_MIN_WORK (1 << 17)
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
                       float beta, float *C, int ldc)
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
            *c = beta == 0.0f ? alpha * s : alpha * s + beta * *c;
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

/* One block on the calling thread with backend be (AUTO/AVX2/BLAS/NAIVE). */
static void gemm_block(gr_gemm_backend be, int transA, int transB, int M, int N, int K,
                       float alpha, const float *A, int lda, const float *B, int ldb,
                       float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { /* C = beta * C */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                float *c = C + (size_t)i * ldc + j;
                *c = beta == 0.0f ? 0.0f : beta * *c;
            }
        return;
    }
    if (be == GR_GEMM_NAIVE) {
        gemm_naive(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    if ((be == GR_GEMM_AUTO || be == GR_GEMM_AVX2) && gr_gemm_avx2_supported() &&
        gr_gemm_avx2(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc) == 0)
        return;
    gemm_blas(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gr_gemm_ex(gr_gemm_backend be, int n_threads, int transA, int transB,
                int M, int N, int K, float alpha, const float *A, int lda,
                const float *B, int ldb, float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0) return;
    if (be == GR_GEMM_BLAS_THREADED) { /* benchmarks: OpenBLAS's own threads */
        int nt = n_threads > 0 ? n_threads : gr_threads_get();
        pthread_once(&blas_once, blas_single_thread);
        openblas_set_num_threads(nt);
        gemm_blas(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
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
    if (nt > 1 && work < (double)GEMM_PAR_MIN_WORK * nt) nt = (int)(work / GEMM_PAR_MIN_WORK) + 1;
    /* split the larger side; keep blocks a multiple of the 6x16 tile */
    int split_m = M >= N;
    int dim = split_m ? M : N, gran = split_m ? 6 : 16;
    if (nt > 1 && dim < 2 * gran) nt = 1;
    if (nt <= 1) {
        gemm_block(be, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    int chunk = (dim + nt - 1) / nt;
    chunk = (chunk + gran - 1) / gran * gran;
#pragma omp parallel for num_threads(nt) schedule(static, 1)
    for (int t = 0; t < nt; t++) {
        int lo = t * chunk, hi = lo + chunk < dim ? lo + chunk : dim;
        if (lo >= hi) continue;
        if (split_m) {
            const float *At = transA ? A + lo : A + (size_t)lo * lda;
            gemm_block(be, transA, transB, hi - lo, N, K, alpha, At, lda, B, ldb, beta,
                       C + (size_t)lo * ldc, ldc);
        } else {
            const float *Bt = transB ? B + (size_t)lo * ldb : B + lo;
            gemm_block(be, transA, transB, M, hi - lo, K, alpha, A, lda, Bt, ldb, beta,
                       C + lo, ldc);
        }
    }
}

void gr_gemm(int transA, int transB, int M, int N, int K, float alpha,
             const float *A, int lda, const float *B, int ldb,
             float beta, float *C, int ldc)
{
    gr_gemm_ex(GR_GEMM_AUTO, 0, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void gr_gemm_serial(int transA, int transB, int M, int N, int K, float alpha,
                    const float *A, int lda, const float *B, int ldb,
                    float beta, float *C, int ldc)
{
    gr_gemm_ex(GR_GEMM_AUTO, 1, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
