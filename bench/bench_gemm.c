/* GEMM benchmark: measured FMA peak, then GFLOP/s of every gr_gemm backend on
 * the shapes SASRec and the language models use, as fractions of peak.
 *
 *   ./build/bench_gemm [seconds_per_case (default 0.3)] [max_threads (default 2)]
 *
 * Peak: 10 independent FMA chains on 8-wide vectors per thread (enough to
 * cover the FMA latency on 2 pipes), 1 and N threads. Backends: own AVX2
 * kernel ("avx2"), OpenBLAS with one BLAS thread per OpenMP thread under the
 * gr_gemm split ("openblas-1t"), OpenBLAS's own threading ("openblas-mt"),
 * and a naive triple loop (1 thread only, first shapes only).
 * Timing: 1-thread rows (and the 1-thread peak) use the thread's CPU time, so
 * they hold on a shared, loaded machine; multi-thread rows use wall time and
 * are only meaningful on an otherwise idle machine.
 */
#include "genrec/common.h"
#include "genrec/gemm.h"

#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double thread_cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU time of this thread for 1-thread measurements, else wall time. */
static double clock_for(int nt) { return nt == 1 ? thread_cpu_now() : gr_time_now(); }

__attribute__((target("avx2,fma"), noinline))
static float fma_chains(long n)
{
    __m256 a0 = _mm256_set1_ps(1.0f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0,
           a6 = a0, a7 = a0, a8 = a0, a9 = a0;
    __m256 b = _mm256_set1_ps(0.9999f), c = _mm256_set1_ps(1e-6f);
    for (long i = 0; i < n; i++) {
        a0 = _mm256_fmadd_ps(a0, b, c); a1 = _mm256_fmadd_ps(a1, b, c);
        a2 = _mm256_fmadd_ps(a2, b, c); a3 = _mm256_fmadd_ps(a3, b, c);
        a4 = _mm256_fmadd_ps(a4, b, c); a5 = _mm256_fmadd_ps(a5, b, c);
        a6 = _mm256_fmadd_ps(a6, b, c); a7 = _mm256_fmadd_ps(a7, b, c);
        a8 = _mm256_fmadd_ps(a8, b, c); a9 = _mm256_fmadd_ps(a9, b, c);
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(a4, a5),
                                           _mm256_add_ps(_mm256_add_ps(a6, a7),
                                                         _mm256_add_ps(a8, a9))));
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0];
}

/* GFLOP/s of 10 chains x 8 lanes x 2 flops, on nt threads. */
static double fma_peak(int nt)
{
    long n = 100000000;
    volatile float sink = 0;
    double t0 = clock_for(nt);
#pragma omp parallel num_threads(nt)
    {
        float r = fma_chains(n);
#pragma omp atomic
        sink += r;
    }
    double t = clock_for(nt) - t0;
    (void)sink;
    return (double)n * 10 * 16 * nt / t / 1e9;
}

typedef struct { int ta, tb, M, N, K; const char *what; } shape;

static double bench_case(gr_gemm_backend be, int nt, const shape *s, float *A, float *B,
                         float *C, double secs)
{
    int lda = s->ta ? s->M : s->K, ldb = s->tb ? s->K : s->N;
    double flop = 2.0 * s->M * s->N * s->K;
    gr_gemm_ex(be, nt, s->ta, s->tb, s->M, s->N, s->K, 1.0f, A, lda, B, ldb, 0.0f, C, s->N);
    int reps = 0;
    double t0 = clock_for(nt), t;
    do {
        gr_gemm_ex(be, nt, s->ta, s->tb, s->M, s->N, s->K, 1.0f, A, lda, B, ldb, 0.0f, C, s->N);
        reps++;
        t = clock_for(nt) - t0;
    } while (t < secs);
    return flop * reps / t / 1e9;
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 0.3;
    int maxt = argc > 2 ? atoi(argv[2]) : 2;
    if (secs <= 0) secs = 0.3;
    if (maxt < 1) maxt = 1;
    if (!gr_gemm_have_avx2()) printf("note: no AVX2/FMA on this CPU; avx2 = openblas\n");
    double peak[9] = {0};
    for (int nt = 1; nt <= maxt && nt <= 8; nt *= 2) {
        peak[nt] = fma_peak(nt);
        printf("FMA peak %d thread%s: %.1f GFLOP/s (%s time)\n", nt, nt > 1 ? "s" : "", peak[nt],
               nt == 1 ? "CPU" : "wall");
    }
    const shape shapes[] = {
        {0, 1, 25600, 64, 64, "SASRec fwd X W^T (d=64)"},
        {0, 0, 25600, 64, 64, "SASRec bwd dY W"},
        {1, 0, 64, 64, 25600, "SASRec bwd dY^T X"},
        {0, 1, 25600, 256, 64, "FFN up fwd (F=256)"},
        {0, 1, 25600, 64, 256, "FFN down fwd"},
        {1, 0, 256, 64, 25600, "FFN up bwd dW"},
        {0, 1, 256, 10000, 64, "scoring U I^T"},
        {0, 0, 256, 64, 10000, "scoring bwd dU = dS I"},
        {1, 0, 10000, 64, 256, "scoring bwd dI = dS^T U"},
        {0, 1, 200, 200, 64, "attention Q K^T (T=200)"},
        {0, 0, 200, 64, 200, "attention P V"},
        {0, 0, 1024, 1024, 1024, "large 1024^3"},
    };
    int nshape = (int)(sizeof shapes / sizeof shapes[0]);
    size_t maxa = 0, maxb = 0, maxc = 0;
    for (int i = 0; i < nshape; i++) {
        size_t a = (size_t)shapes[i].M * shapes[i].K, b = (size_t)shapes[i].K * shapes[i].N,
               c = (size_t)shapes[i].M * shapes[i].N;
        if (a > maxa) maxa = a;
        if (b > maxb) maxb = b;
        if (c > maxc) maxc = c;
    }
    float *A = gr_alloc(maxa, sizeof(float)), *B = gr_alloc(maxb, sizeof(float)),
          *C = gr_alloc(maxc, sizeof(float));
    if (!A || !B || !C) { fprintf(stderr, "%s\n", gr_error_message()); return 1; }
    for (size_t i = 0; i < maxa; i++) A[i] = (float)((i * 7) % 13) * 0.1f - 0.6f;
    for (size_t i = 0; i < maxb; i++) B[i] = (float)((i * 5) % 11) * 0.1f - 0.5f;
    printf("\n%-28s %-22s %7s | GFLOP/s (fraction of peak) per backend\n", "case", "shape(tA tB M N K)", "threads");
    for (int i = 0; i < nshape; i++) {
        const shape *s = &shapes[i];
        for (int nt = 1; nt <= maxt && nt <= 8; nt *= 2) {
            printf("%-28s %d%d %5dx%5dx%5d %7d |", s->what, s->ta, s->tb, s->M, s->N, s->K, nt);
            gr_gemm_backend bes[] = {GR_GEMM_AVX2, GR_GEMM_BLAS, GR_GEMM_BLAS_THREADED, GR_GEMM_NAIVE};
            for (int b = 0; b < 4; b++) {
                if (bes[b] == GR_GEMM_NAIVE && (nt > 1 || (double)s->M * s->N * s->K > 3e8)) continue;
                double g = bench_case(bes[b], nt, s, A, B, C, bes[b] == GR_GEMM_NAIVE ? 0.05 : secs);
                printf(" %s %.1f (%.2f)", gr_gemm_backend_name(bes[b]), g, g / peak[nt]);
            }
            printf("\n");
            fflush(stdout);
        }
    }
    gr_free(A); gr_free(B); gr_free(C);
    return 0;
}
