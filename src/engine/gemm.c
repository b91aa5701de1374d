/* gr_gemm: backend dispatch and the thread policy described in gemm.h.
 *
 * C is split into contiguous blocks of whole 6x16 tiles (rows or columns,
 * whichever divides most evenly), up to 4 per thread when that is cheap,
 * handed out dynamically; each block runs the single-threaded packed kernel
 * (gemm_kernels.c) or OpenBLAS. The block boundaries depend only on the
 * shape and thread count, and the own kernel's result does not depend on
 * them at all. OpenBLAS is set to one thread once, so the only threads ever
 * running are OpenMP's. Called by all threads of an engine team (a pass's
 * single region, par.h), gr_gemm hands the chunks to the team's threads with
 * an orphaned `omp for` instead of opening a region.
 */
#include "genrec/gemm.h"
#include "genrec/common.h"
#include "gemm_kernels.h"
#include "par.h"

#include <cblas.h>
#include <omp.h>
#include <pthread.h>
#include <string.h>

/* Multiply-adds per thread below which another thread is not worth its
 * wake-up and barrier (~40 us of work: overhead stays under ~10%). */
#define GEMM_PAR_MIN_WORK (1 << 20)
/* Chunks beyond one per thread only when the operand all chunks share has
 * at most this many floats (it is re-packed per chunk). */
#define GEMM_SHARED_MAX (1 << 18)

static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
static void blas_single_thread(void) { openblas_set_num_threads(1); }

int gr_gemm_have_avx2(void) { return gr_gemm_avx2_supported(); }

void gr_gemm_force_generic(int on) { gr_gemm_kernels_force_generic(on); }

const char *gr_gemm_backend_name(gr_gemm_backend be)
{
    switch (be) {
    case GR_GEMM_AUTO: return gr_gemm_avx2_supported() ? "avx2" : "openblas";
    case GR_GEMM_BLAS: return "openblas-1t";
    case GR_GEMM_AVX2: return gr_gemm_avx2_supported() ? "avx2" : "generic";
    case GR_GEMM_NAIVE: return "naive";
    case GR_GEMM_BLAS_THREADED: return "openblas-mt";
    case GR_GEMM_GENERIC: return "generic";
    }
    return "?";
}

uint16_t gr_f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: keep it a (quiet) NaN */
        return (uint16_t)((u >> 16) | 0x0040u);
    u += 0x7fffu + ((u >> 16) & 1u); /* round to nearest, ties to even */
    return (uint16_t)(u >> 16);
}

float gr_bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

void gr_f32_to_bf16_n(const float *src, uint16_t *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) dst[i] = gr_f32_to_bf16(src[i]);
}

void gr_bf16_to_f32_n(const uint16_t *src, float *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) dst[i] = gr_bf16_to_f32(src[i]);
}

static void gemm_naive(int transA, int transB, int M, int N, int K, float alpha,
                       const float *A, int lda, const float *B, const uint16_t *B16, int ldb,
                       float beta, float *C, int ldc, const float *bias)
{
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            float s = 0.0f;
            for (int k = 0; k < K; k++) {
                float a = transA ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                size_t at = transB ? (size_t)j * ldb + k : (size_t)k * ldb + j;
                float b = B16 ? gr_bf16_to_f32(B16[at]) : B[at];
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

/* The concrete backend AUTO (or AVX2 without AVX2) stands for on this CPU
 * and shape: BLAS, AVX2, GENERIC or NAIVE (BLAS_THREADED is handled before).
 * bf16 B never goes to BLAS. Measured (bench_gemm, see docs/BENCHMARKS.md):
 * the packed AVX2 kernel is 1.3-2.5x OpenBLAS on the skinny shapes and
 * within noise of it on the large ones, so AUTO takes it whenever the CPU
 * has AVX2/FMA (its results also do not depend on the thread count);
 * without them OpenBLAS (whose own dispatch covers older x86) is faster
 * than the portable C kernel for fp32. */
static gr_gemm_backend resolve_backend(gr_gemm_backend be, int bf16)
{
    int avx2 = gr_gemm_avx2_supported();
    switch (be) {
    case GR_GEMM_AUTO:
        if (avx2) return GR_GEMM_AVX2;
        return bf16 ? GR_GEMM_GENERIC : GR_GEMM_BLAS;
    case GR_GEMM_AVX2: return avx2 ? GR_GEMM_AVX2 : GR_GEMM_GENERIC;
    case GR_GEMM_BLAS:
    case GR_GEMM_BLAS_THREADED:
        if (bf16) return avx2 ? GR_GEMM_AVX2 : GR_GEMM_GENERIC;
        return GR_GEMM_BLAS;
    case GR_GEMM_NAIVE: return GR_GEMM_NAIVE;
    case GR_GEMM_GENERIC: return GR_GEMM_GENERIC;
    }
    return GR_GEMM_BLAS;
}

/* One block on the calling thread with a concrete backend (see above). */
static void gemm_block(gr_gemm_backend be, int transA, int transB, int M, int N, int K,
                       float alpha, const float *A, int lda, const void *B, int bf16, int ldb,
                       float beta, float *C, int ldc, const float *bias)
{
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        scale_add_bias(M, N, beta, C, ldc, bias);
        return;
    }
    if (be == GR_GEMM_NAIVE) {
        gemm_naive(transA, transB, M, N, K, alpha, A, lda, bf16 ? NULL : B,
                   bf16 ? B : NULL, ldb, beta, C, ldc, bias);
        return;
    }
    if (be == GR_GEMM_AVX2 || be == GR_GEMM_GENERIC || bf16) {
        gr_gemm_isa isa = be == GR_GEMM_AVX2 ? GR_ISA_AVX2 : GR_ISA_GENERIC;
        if (gr_gemm_own(isa, GR_TRI_NONE, 0, transA, transB, M, N, K, alpha, A, lda, B, bf16,
                        ldb, beta, C, ldc, bias) == 0)
            return;
        /* no memory for the packing buffers: the naive loop never fails */
        if (bf16) {
            gemm_naive(transA, transB, M, N, K, alpha, A, lda, NULL, B, ldb, beta, C, ldc, bias);
            return;
        }
    }
    if (bias) {
        scale_add_bias(M, N, beta, C, ldc, bias);
        beta = 1.0f;
    }
    gemm_blas(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* A product and its split of C into chunks of whole tiles (gemm_plan). */
typedef struct gemm_job {
    gr_gemm_backend be;
    int transA, transB, M, N, K, lda, bf16, ldb, ldc;
    float alpha, beta;
    const float *A, *bias;
    const void *B;
    float *C;
    int split_m, dim, chunk, nchunk; /* rows (split_m) or columns [t*chunk, ...) */
} gemm_job;

/* Split C for nt threads: the side whose 6-row / 16-column tiles divide
 * most evenly among the threads (ties: the larger side); blocks are whole
 * tiles. More chunks than threads (handed out dynamically, so a descheduled
 * thread does not stall the product) only when the operand every chunk
 * re-packs (B for a row split, A for a column split) is small. */
static void gemm_plan(gemm_job *j, int nt)
{
    double work = (double)j->M * j->N * (j->K > 0 ? j->K : 1);
    int tm = (j->M + 5) / 6, tn = (j->N + 15) / 16;
    double em = (double)tm / (nt * ((tm + nt - 1) / nt)), en = (double)tn / (nt * ((tn + nt - 1) / nt));
    j->split_m = em > en || (em == en && j->M >= j->N);
    j->dim = j->split_m ? j->M : j->N;
    int gran = j->split_m ? 6 : 16, tiles = j->split_m ? tm : tn;
    if (nt > tiles) nt = tiles;
    int nchunk = nt;
    double shared = j->split_m ? (double)j->N * j->K : (double)j->M * j->K;
    if (nt > 1 && shared <= GEMM_SHARED_MAX) {
        nchunk = 4 * nt;
        while (nchunk > nt && work / nchunk < GEMM_PAR_MIN_WORK) nchunk--;
        if (nchunk > tiles) nchunk = tiles;
    }
    j->chunk = ((tiles + nchunk - 1) / nchunk) * gran;
    j->nchunk = (j->dim + j->chunk - 1) / j->chunk;
}

/* Chunk t of the plan on the calling thread. */
static void gemm_chunk(const gemm_job *j, int t)
{
    int lo = t * j->chunk, hi = lo + j->chunk < j->dim ? lo + j->chunk : j->dim;
    if (j->split_m) {
        const float *At = j->transA ? j->A + lo : j->A + (size_t)lo * j->lda;
        gemm_block(j->be, j->transA, j->transB, hi - lo, j->N, j->K, j->alpha, At, j->lda, j->B,
                   j->bf16, j->ldb, j->beta, j->C + (size_t)lo * j->ldc, j->ldc, j->bias);
    } else {
        size_t esz = j->bf16 ? sizeof(uint16_t) : sizeof(float);
        size_t boff = j->transB ? (size_t)lo * j->ldb : (size_t)lo;
        const void *Bt = (const char *)j->B + boff * esz;
        gemm_block(j->be, j->transA, j->transB, j->M, hi - lo, j->K, j->alpha, j->A, j->lda, Bt,
                   j->bf16, j->ldb, j->beta, j->C + lo, j->ldc, j->bias ? j->bias + lo : NULL);
    }
}

/* The whole product on the calling thread. */
static void gemm_whole(const gemm_job *j)
{
    gemm_block(j->be, j->transA, j->transB, j->M, j->N, j->K, j->alpha, j->A, j->lda, j->B,
               j->bf16, j->ldb, j->beta, j->C, j->ldc, j->bias);
}

/* The product shared by the threads of the current team (orphaned
 * worksharing, par.h): every thread of the team calls it with the same job;
 * ends with the loop's barrier. */
static void gemm_team(gemm_job *j)
{
    int nt = omp_get_num_threads();
    if (nt <= 1) {
        gemm_whole(j);
        return;
    }
    gemm_plan(j, nt);
#pragma omp for schedule(dynamic, 1)
    for (int t = 0; t < j->nchunk; t++) gemm_chunk(j, t);
}

/* Thread policy (gemm.h): with n_threads <= 0 inside an engine team (a
 * pass's region, par.h) the product is shared by the team; otherwise it
 * opens its own region of n_threads (<= 0: gr_threads_get(), fewer for
 * small products; 1 inside any parallel region). */
static void gemm_run(gr_gemm_backend be, int n_threads, int transA, int transB,
                     int M, int N, int K, float alpha, const float *A, int lda,
                     const void *B, int bf16, int ldb, float beta, float *C, int ldc,
                     const float *bias)
{
    if (M <= 0 || N <= 0) return;
    if (be == GR_GEMM_BLAS_THREADED && !bf16) { /* benchmarks: OpenBLAS's own threads */
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
    be = resolve_backend(be, bf16);
    if (be == GR_GEMM_BLAS) pthread_once(&blas_once, blas_single_thread);
    gemm_job j = {.be = be, .transA = transA, .transB = transB, .M = M, .N = N, .K = K,
                  .lda = lda, .bf16 = bf16, .ldb = ldb, .ldc = ldc, .alpha = alpha, .beta = beta,
                  .A = A, .bias = bias, .B = B, .C = C};
    if (n_threads <= 0 && gr_par_in_team()) {
        gemm_team(&j);
        return;
    }
    int nt = n_threads > 0 ? n_threads : gr_threads_get();
    if (omp_in_parallel()) nt = 1;
    double work = (double)M * N * (K > 0 ? K : 1);
    if (nt > 1 && work < (double)GEMM_PAR_MIN_WORK * nt) {
        nt = (int)(work / GEMM_PAR_MIN_WORK);
        if (nt < 1) nt = 1;
    }
    if (nt > 1) gemm_plan(&j, nt);
    if (nt <= 1 || j.nchunk <= 1) {
        gemm_whole(&j);
        return;
    }
    if (nt > j.nchunk) nt = j.nchunk;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int t = 0; t < j.nchunk; t++) gemm_chunk(&j, t);
}

void gr_gemm_ex(gr_gemm_backend be, int n_threads, int transA, int transB,
                int M, int N, int K, float alpha, const float *A, int lda,
                const float *B, int ldb, float beta, float *C, int ldc)
{
    gemm_run(be, n_threads, transA, transB, M, N, K, alpha, A, lda, B, 0, ldb, beta, C, ldc, NULL);
}

void gr_gemm(int transA, int transB, int M, int N, int K, float alpha,
             const float *A, int lda, const float *B, int ldb,
             float beta, float *C, int ldc)
{
    gemm_run(GR_GEMM_AUTO, 0, transA, transB, M, N, K, alpha, A, lda, B, 0, ldb, beta, C, ldc, NULL);
}

void gr_gemm_serial(int transA, int transB, int M, int N, int K, float alpha,
                    const float *A, int lda, const float *B, int ldb,
                    float beta, float *C, int ldc)
{
    gemm_run(GR_GEMM_AUTO, 1, transA, transB, M, N, K, alpha, A, lda, B, 0, ldb, beta, C, ldc, NULL);
}

void gr_gemm_bias_ex(gr_gemm_backend be, int n_threads, int transA, int transB,
                     int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                     const float *bias, float *C, int ldc)
{
    gemm_run(be, n_threads, transA, transB, M, N, K, 1.0f, A, lda, B, 0, ldb, 0.0f, C, ldc, bias);
}

void gr_gemm_bias(int transA, int transB, int M, int N, int K, const float *A, int lda,
                  const float *B, int ldb, const float *bias, float *C, int ldc)
{
    gemm_run(GR_GEMM_AUTO, 0, transA, transB, M, N, K, 1.0f, A, lda, B, 0, ldb, 0.0f, C, ldc, bias);
}

void gr_gemm_bf16_ex(gr_gemm_backend be, int n_threads, int transA, int transB, int M, int N,
                     int K, float alpha, const float *A, int lda, const uint16_t *B, int ldb,
                     float beta, float *C, int ldc)
{
    gemm_run(be, n_threads, transA, transB, M, N, K, alpha, A, lda, B, 1, ldb, beta, C, ldc, NULL);
}

void gr_gemm_bf16(int transA, int transB, int M, int N, int K, float alpha, const float *A,
                  int lda, const uint16_t *B, int ldb, float beta, float *C, int ldc)
{
    gemm_run(GR_GEMM_AUTO, 0, transA, transB, M, N, K, alpha, A, lda, B, 1, ldb, beta, C, ldc, NULL);
}

void gr_gemm_tri_serial(int tri, int off, int transA, int transB, int M, int N, int K,
                        float alpha, const float *A, int lda, const float *B, int ldb,
                        float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0) return;
    gr_gemm_isa isa = gr_gemm_avx2_supported() ? GR_ISA_AVX2 : GR_ISA_GENERIC;
    if (K > 0 && gr_gemm_own(isa, tri, off, transA, transB, M, N, K, alpha, A, lda, B, 0, ldb,
                             beta, C, ldc, NULL) == 0)
        return;
    gr_gemm_serial(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

size_t gr_gemm_pack_b_size(int N, int K) { return gr_gemm_own_packed_size(N, K); }

void gr_gemm_pack_b(int transB, int N, int K, const float *B, int ldb, float *dst)
{
    if (N <= 0 || K <= 0) return;
    gr_gemm_own_pack_b(gr_gemm_avx2_supported() ? GR_ISA_AVX2 : GR_ISA_GENERIC, transB, N, K, B, ldb, dst);
}

/* The packed layout read directly (no buffers, cannot fail): strips of NR =
 * 16 columns, K rows each, within blocks of 2048 columns x 256 rows (the
 * layout of gemm_kernels.c). */
static void packed_naive(int transA, int M, int N, int K, float alpha, const float *A, int lda, const float *Bp,
                         const float *bias, float beta, float *C, int ldc)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            int jc = j / 2048 * 2048, nc = N - jc < 2048 ? N - jc : 2048, ncp = (nc + 15) / 16 * 16;
            double acc = 0.0;
            for (int k = 0; k < K; k++) {
                int pc = k / 256 * 256, kc = K - pc < 256 ? K - pc : 256, jj = j - jc;
                const float *blk = Bp + (size_t)jc * K + (size_t)ncp * pc;
                float b = blk[(size_t)(jj / 16 * 16) * kc + (size_t)(k - pc) * 16 + jj % 16];
                acc += (double)(transA ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]) * b;
            }
            float *c = C + (size_t)i * ldc + j;
            *c = (float)(alpha * acc) + (beta == 0.0f ? 0.0f : beta * *c) + (bias ? bias[j] : 0.0f);
        }
}

/* One block of rows on the calling thread. */
static void packed_block(gr_gemm_backend be, int transA, int M, int N, int K, float alpha, const float *A, int lda,
                         const float *Bp, const float *bias, float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        scale_add_bias(M, N, beta, C, ldc, bias);
        return;
    }
    gr_gemm_isa isa = be != GR_GEMM_GENERIC && gr_gemm_avx2_supported() ? GR_ISA_AVX2 : GR_ISA_GENERIC;
    /* the kernels load packed strips with aligned 32-byte loads */
    if (be == GR_GEMM_NAIVE || ((uintptr_t)Bp & 31) != 0 ||
        gr_gemm_own_packed(isa, transA, M, N, K, alpha, A, lda, Bp, beta, C, ldc, bias) != 0)
        packed_naive(transA, M, N, K, alpha, A, lda, Bp, bias, beta, C, ldc);
}

void gr_gemm_packed_ex(gr_gemm_backend be, int transA, int M, int N, int K, float alpha, const float *A,
                       int lda, const float *Bp, float beta, float *C, int ldc)
{
    packed_block(be, transA, M, N, K, alpha, A, lda, Bp, NULL, beta, C, ldc);
}

void gr_gemm_packed_serial(int transA, int M, int N, int K, float alpha, const float *A, int lda,
                           const float *Bp, float beta, float *C, int ldc)
{
    packed_block(GR_GEMM_AUTO, transA, M, N, K, alpha, A, lda, Bp, NULL, beta, C, ldc);
}

/* Rows [t*chunk, ...) of the product. */
static void packed_chunk(int t, int chunk, int transA, int M, int N, int K, float alpha, const float *A, int lda,
                         const float *Bp, const float *bias, float beta, float *C, int ldc)
{
    int lo = t * chunk, hi = lo + chunk < M ? lo + chunk : M;
    const float *At = transA ? A + lo : A + (size_t)lo * lda;
    packed_block(GR_GEMM_AUTO, transA, hi - lo, N, K, alpha, At, lda, Bp, bias, beta, C + (size_t)lo * ldc, ldc);
}

void gr_gemm_packed(int transA, int M, int N, int K, float alpha, const float *A, int lda, const float *Bp,
                    const float *bias, float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0) return;
    const int in_team = gr_par_in_team();
    int nt = in_team ? omp_get_num_threads() : omp_in_parallel() ? 1 : gr_threads_get();
    double work = (double)M * N * (K > 0 ? K : 1);
    if (!in_team && nt > 1 && work < (double)GEMM_PAR_MIN_WORK * nt) {
        nt = (int)(work / GEMM_PAR_MIN_WORK);
        if (nt < 1) nt = 1;
    }
    /* rows split into whole 6-row tiles (the packed B is shared, never re-packed) */
    int tiles = (M + 5) / 6, nchunk = nt < tiles ? nt : tiles;
    int chunk = ((tiles + nchunk - 1) / nchunk) * 6;
    nchunk = (M + chunk - 1) / chunk;
    if (in_team) {
#pragma omp for schedule(dynamic, 1)
        for (int t = 0; t < nchunk; t++) packed_chunk(t, chunk, transA, M, N, K, alpha, A, lda, Bp, bias, beta, C, ldc);
        return;
    }
    if (nchunk <= 1) {
        packed_block(GR_GEMM_AUTO, transA, M, N, K, alpha, A, lda, Bp, bias, beta, C, ldc);
        return;
    }
#pragma omp parallel for num_threads(nchunk) schedule(dynamic, 1)
    for (int t = 0; t < nchunk; t++) packed_chunk(t, chunk, transA, M, N, K, alpha, A, lda, Bp, bias, beta, C, ldc);
}
