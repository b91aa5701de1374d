/* GEMM benchmark: measured FMA peak, then GFLOP/s of genrec's own GEMM and
 * OpenBLAS on the shapes SASRec and the language models use, as fractions
 * of that peak; then the bf16-weight GEMM.
 *
 *   ./build/bench_gemm [seconds_per_case (0.3)] [max_threads (1)] [all|blas (all)] [filter]
 *
 * bench/bench_gemm.sh runs it twice, with OPENBLAS_CORETYPE as set and
 * unset (OpenBLAS picks its kernels from it; genrec's do not depend on it).
 *
 * Peak: 12 independent FMA chains on 8-wide vectors per thread (enough to
 * cover the FMA latency on 2 pipes), in assembly, 1 and N threads; x86-64
 * with AVX2/FMA only. Columns: genrec's own
 * packed kernel ("genrec", GR_GEMM_AVX2: the AVX2 kernel, or the generic C
 * one without AVX2/FMA), OpenBLAS with one BLAS thread per OpenMP thread
 * under the gr_gemm split ("openblas-1t"), OpenBLAS's own threading
 * ("openblas-mt", more than one thread only), and what gr_gemm (AUTO)
 * picks. "blas" as third argument measures only the OpenBLAS columns.
 * filter: only cases whose name contains it.
 * Timing: each case is timed in 3 windows of seconds_per_case / 3 (at least
 * one call each) and the best window is reported. 1-thread rows (and the
 * 1-thread peak) use the thread's CPU time, so they hold on a shared, loaded
 * machine; multi-thread rows use wall time and are only meaningful on an
 * otherwise idle machine.
 */
#include "genrec/common.h"
#include "genrec/gemm.h"

#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double thread_cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU time of this thread for 1-thread measurements, else wall time. */
static double clock_for(int nt) { return nt == 1 ? thread_cpu_now() : gr_time_now(); }

/* n iterations of 48 independent FMAs on 8-wide vectors: 12 accumulators
 * (enough to cover the FMA latency on 2 pipes), 4 per accumulator per
 * iteration. In assembly: written in C, identical chains are merged by the
 * compiler (an earlier version of this benchmark timed one latency-bound
 * chain and counted it 10 times, reporting ~86 GFLOP/s where the real peak
 * of this machine is ~66). */
__attribute__((noinline))
static void fma_chains(long n)
{
    static const float one = 1.0f;
    __asm__ volatile(
        "vbroadcastss %[one], %%ymm12\n\t"
        "vxorps %%ymm13, %%ymm13, %%ymm13\n\t"
        "vxorps %%ymm14, %%ymm14, %%ymm14\n\t"
        "vxorps %%ymm15, %%ymm15, %%ymm15\n\t"
        "vxorps %%ymm0, %%ymm0, %%ymm0\n\t"
        "vmovaps %%ymm0, %%ymm1\n\tvmovaps %%ymm0, %%ymm2\n\tvmovaps %%ymm0, %%ymm3\n\t"
        "vmovaps %%ymm0, %%ymm4\n\tvmovaps %%ymm0, %%ymm5\n\tvmovaps %%ymm0, %%ymm6\n\t"
        "vmovaps %%ymm0, %%ymm7\n\tvmovaps %%ymm0, %%ymm8\n\tvmovaps %%ymm0, %%ymm9\n\t"
        "vmovaps %%ymm0, %%ymm10\n\tvmovaps %%ymm0, %%ymm11\n\t"
        ".p2align 5\n"
        "1:\n\t"
        ".rept 4\n\t" /* 4 x 12 independent FMAs per iteration */
        "vfmadd231ps %%ymm12, %%ymm13, %%ymm0\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %%ymm1\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %%ymm2\n\t"
        "vfmadd231ps %%ymm12, %%ymm13, %%ymm3\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %%ymm4\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %%ymm5\n\t"
        "vfmadd231ps %%ymm12, %%ymm13, %%ymm6\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %%ymm7\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %%ymm8\n\t"
        "vfmadd231ps %%ymm12, %%ymm13, %%ymm9\n\t"
        "vfmadd231ps %%ymm12, %%ymm14, %%ymm10\n\t"
        "vfmadd231ps %%ymm12, %%ymm15, %%ymm11\n\t"
        ".endr\n\t"
        "decq %[n]\n\t"
        "jnz 1b\n\t"
        "vzeroupper\n\t"
        : [n] "+r"(n)
        : [one] "m"(one)
        : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
          "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "memory", "cc");
}

/* GFLOP/s of 48 FMAs x 8 lanes x 2 flops per iteration, on nt threads (best
 * of 5). */
static double fma_peak(int nt)
{
    long n = 4000000;
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = clock_for(nt);
#pragma omp parallel num_threads(nt)
        fma_chains(n);
        double t = clock_for(nt) - t0;
        double g = (double)n * 48 * 16 * nt / t / 1e9;
        if (g > best) best = g;
    }
    return best;
}

typedef struct { int ta, tb, M, N, K; const char *what; } shape;

typedef struct bench_ctx {
    float *A, *B, *C;
    uint16_t *B16;
} bench_ctx;

/* One call of backend be (bf16: the bf16-weight GEMM). */
static void call(gr_gemm_backend be, int bf16, int nt, const shape *s, const bench_ctx *x)
{
    int lda = s->ta ? s->M : s->K, ldb = s->tb ? s->K : s->N;
    if (bf16)
        gr_gemm_bf16_ex(be, nt, s->ta, s->tb, s->M, s->N, s->K, 1.0f, x->A, lda, x->B16, ldb,
                        0.0f, x->C, s->N);
    else
        gr_gemm_ex(be, nt, s->ta, s->tb, s->M, s->N, s->K, 1.0f, x->A, lda, x->B, ldb, 0.0f,
                   x->C, s->N);
}

/* Best-of-3-windows GFLOP/s; *sec_per_call gets that window's time per call. */
static double bench_case(gr_gemm_backend be, int bf16, int nt, const shape *s,
                         const bench_ctx *x, double secs, double *sec_per_call)
{
    double flop = 2.0 * s->M * s->N * s->K, best = 0, best_t = 0;
    if (flop < 4e9) call(be, bf16, nt, s, x); /* warm-up (buffers, caches) */
    for (int w = 0; w < 3; w++) {
        int reps = 0;
        double t0 = clock_for(nt), t;
        do {
            call(be, bf16, nt, s, x);
            reps++;
            t = clock_for(nt) - t0;
        } while (t < secs / 3);
        double g = flop * reps / t / 1e9;
        if (g > best) {
            best = g;
            best_t = t / reps;
        }
    }
    if (sec_per_call) *sec_per_call = best_t;
    return best;
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 0.3;
    int maxt = argc > 2 ? atoi(argv[2]) : 1;
    int blas_only = argc > 3 && strcmp(argv[3], "blas") == 0;
    const char *filter = argc > 4 ? argv[4] : "";
    if (secs <= 0) secs = 0.3;
    if (maxt < 1) maxt = 1;
    const char *ct = getenv("OPENBLAS_CORETYPE"), *l2 = getenv("OPENBLAS_L2_SIZE");
    printf("OPENBLAS_CORETYPE=%s OPENBLAS_L2_SIZE=%s; OpenBLAS core: %s; config: %s\n",
           ct ? ct : "(unset)", l2 ? l2 : "(unset)", openblas_get_corename(),
           openblas_get_config());
    printf("genrec kernel: %s\n", gr_gemm_have_avx2() ? "avx2 (6x16 packed)" : "generic C (no AVX2/FMA)");
    double peak[9] = {0};
    int have_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    for (int nt = 1; nt <= maxt && nt <= 8; nt *= 2) {
        if (!have_fma) { /* the peak loop is AVX2/FMA code: report GFLOP/s only */
            peak[nt] = 1e30;
            printf("no AVX2/FMA: no peak measured, fractions are meaningless\n");
            continue;
        }
        peak[nt] = fma_peak(nt);
        printf("FMA peak %d thread%s: %.1f GFLOP/s (%s time)\n", nt, nt > 1 ? "s" : "", peak[nt],
               nt == 1 ? "CPU" : "wall");
    }
    /* LM: ~10M-parameter GPT-2/Llama-style, d = 512 (384), d_ff = 4 d, 8192
     * (4096) tokens per batch, vocab 16384 (8192) for the output head */
    const shape shapes[] = {
        {0, 1, 25600, 64, 64, "SASRec fwd X W^T (d=64)"},
        {0, 0, 25600, 64, 64, "SASRec bwd dY W"},
        {1, 0, 64, 64, 25600, "SASRec bwd dY^T X"},
        {0, 1, 25600, 256, 64, "SASRec FFN up fwd"},
        {0, 1, 256, 10000, 64, "scoring U I^T"},
        {0, 1, 200, 200, 64, "attention Q K^T (T=200)"},
        {0, 0, 1024, 1024, 1024, "large 1024^3 NN"},
        {0, 1, 1024, 1024, 1024, "large 1024^3 NT"},
        {1, 0, 1024, 1024, 1024, "large 1024^3 TN"},
        {0, 1, 8192, 1536, 512, "LM512 qkv fwd"},
        {0, 1, 8192, 512, 512, "LM512 attn proj fwd"},
        {0, 1, 8192, 2048, 512, "LM512 FFN up fwd"},
        {0, 0, 8192, 512, 2048, "LM512 FFN up bwd dX"},
        {1, 0, 2048, 512, 8192, "LM512 FFN up bwd dW"},
        {0, 1, 8192, 512, 2048, "LM512 FFN down fwd"},
        {0, 0, 8192, 2048, 512, "LM512 FFN down bwd dX"},
        {1, 0, 512, 2048, 8192, "LM512 FFN down bwd dW"},
        {0, 1, 4096, 16384, 512, "LM512 head fwd (V=16k)"},
        {0, 0, 4096, 512, 16384, "LM512 head bwd dX"},
        {1, 0, 16384, 512, 4096, "LM512 head bwd dW"},
        {0, 1, 4096, 1536, 384, "LM384 FFN up fwd"},
        {0, 1, 4096, 384, 1536, "LM384 FFN down fwd"},
        {1, 0, 384, 1536, 4096, "LM384 FFN down bwd dW"},
        {0, 1, 4096, 8192, 384, "LM384 head fwd (V=8k)"},
    };
    /* bf16 weights (B): training-size products and decoding (few tokens) */
    const shape shapes16[] = {
        {0, 1, 8192, 2048, 512, "bf16 LM512 FFN up fwd"},
        {0, 0, 8192, 512, 2048, "bf16 LM512 FFN up bwd dX"},
        {0, 1, 4096, 16384, 512, "bf16 LM512 head fwd"},
        {0, 1, 1, 2048, 512, "decode 1 tok FFN up"},
        {0, 1, 4, 2048, 512, "decode 4 tok FFN up"},
        {0, 1, 1, 16384, 512, "decode 1 tok head"},
        {0, 1, 16, 16384, 512, "decode 16 tok head"},
    };
    int nshape = (int)(sizeof shapes / sizeof shapes[0]);
    int nshape16 = (int)(sizeof shapes16 / sizeof shapes16[0]);
    size_t maxa = 0, maxb = 0, maxc = 0;
    for (int i = 0; i < nshape + nshape16; i++) {
        const shape *s = i < nshape ? &shapes[i] : &shapes16[i - nshape];
        size_t a = (size_t)s->M * s->K, b = (size_t)s->K * s->N, c = (size_t)s->M * s->N;
        if (a > maxa) maxa = a;
        if (b > maxb) maxb = b;
        if (c > maxc) maxc = c;
    }
    bench_ctx x;
    x.A = gr_alloc(maxa, sizeof(float));
    x.B = gr_alloc(maxb, sizeof(float));
    x.C = gr_alloc(maxc, sizeof(float));
    x.B16 = gr_alloc(maxb, sizeof(uint16_t));
    if (!x.A || !x.B || !x.C || !x.B16) { fprintf(stderr, "%s\n", gr_error_message()); return 1; }
    for (size_t i = 0; i < maxa; i++) x.A[i] = (float)((i * 7) % 13) * 0.1f - 0.6f;
    for (size_t i = 0; i < maxb; i++) x.B[i] = (float)((i * 5) % 11) * 0.1f - 0.5f;
    for (size_t i = 0; i < maxc; i++) x.C[i] = 0.0f;
    gr_f32_to_bf16_n(x.B, x.B16, maxb);

    printf("\n%-26s %-20s %3s | GFLOP/s (fraction of peak) per backend\n", "case",
           "tA tB M x N x K", "thr");
    for (int i = 0; i < nshape; i++) {
        const shape *s = &shapes[i];
        if (!strstr(s->what, filter)) continue;
        for (int nt = 1; nt <= maxt && nt <= 8; nt *= 2) {
            printf("%-26s %d%d %5dx%5dx%5d %3d |", s->what, s->ta, s->tb, s->M, s->N, s->K, nt);
            gr_gemm_backend bes[] = {GR_GEMM_AVX2, GR_GEMM_BLAS, GR_GEMM_BLAS_THREADED};
            const char *names[] = {"genrec", "openblas-1t", "openblas-mt"};
            for (int b = 0; b < 3; b++) {
                if (blas_only && b == 0) continue;
                if (bes[b] == GR_GEMM_BLAS_THREADED && nt == 1) continue;
                double g = bench_case(bes[b], 0, nt, s, &x, secs, NULL);
                printf(" %s %.1f (%.2f)", names[b], g, g / peak[nt]);
            }
            if (!blas_only) printf("  auto=%s", gr_gemm_backend_name(GR_GEMM_AUTO));
            printf("\n");
            fflush(stdout);
        }
    }
    if (blas_only) goto done;
    printf("\nbf16 weights (B): gr_gemm_bf16 vs fp32 gr_gemm, same kernel; weight GB/s = bytes of B read per second\n");
    for (int i = 0; i < nshape16; i++) {
        const shape *s = &shapes16[i];
        if (!strstr(s->what, filter)) continue;
        for (int nt = 1; nt <= maxt && nt <= 8; nt *= 2) {
            double t16, t32, wb = (double)s->K * s->N;
            double g16 = bench_case(GR_GEMM_AVX2, 1, nt, s, &x, secs, &t16);
            double g32 = bench_case(GR_GEMM_AVX2, 0, nt, s, &x, secs, &t32);
            printf("%-26s %d%d %5dx%5dx%5d %3d | bf16 %.1f (%.2f) %.1f GB/s   fp32 %.1f (%.2f) %.1f GB/s\n",
                   s->what, s->ta, s->tb, s->M, s->N, s->K, nt, g16, g16 / peak[nt],
                   2 * wb / t16 / 1e9, g32, g32 / peak[nt], 4 * wb / t32 / 1e9);
            fflush(stdout);
        }
    }
done:
    gr_free(x.A); gr_free(x.B); gr_free(x.C); gr_free(x.B16);
    return 0;
}
