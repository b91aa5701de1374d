/* gr_gemm against a double-precision triple loop: all four transpose
 * combinations, odd shapes (edges of the 6x16 tile, K across the KC block),
 * padded leading dimensions, alpha/beta, every backend and 1-3 threads; the
 * same with the generic (no AVX2/FMA) path forced; the bf16-weight GEMM
 * against the fp32 one on bf16-rounded inputs; bf16 rounding. */
#include "gr_test.h"
#include "genrec/common.h"
#include "genrec/gemm.h"
#include "genrec/rng.h"
#include "engine/gemm_kernels.h" /* internal: triangular GEMM */
#include "engine/vmath.h"       /* internal: gr_vdot_bf16 */

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void fill(float *x, size_t n, gr_rng *r)
{
    for (size_t i = 0; i < n; i++) x[i] = (float)(gr_rng_double(r) * 2.0 - 1.0);
}

/* max |C - ref| / (max |ref| + tiny) after running backend be. */
static double check_case_ex(gr_gemm_backend be, int bf16, int nt, int ta, int tb, int M, int N,
                            int K, float alpha, float beta, int pad, gr_rng *r)
{
    int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb,
           nc = (size_t)M * ldc;
    float *A = malloc(sizeof(float) * (na + 1)), *B = malloc(sizeof(float) * (nb + 1)),
          *C = malloc(sizeof(float) * (nc + 1));
    double *ref = malloc(sizeof(double) * (nc + 1));
    fill(A, na, r);
    fill(B, nb, r);
    fill(C, nc, r);
    uint16_t *B16 = NULL;
    if (bf16) { /* B rounded to bf16; the reference uses the rounded values */
        B16 = malloc(sizeof(uint16_t) * (nb + 1));
        gr_f32_to_bf16_n(B, B16, nb);
        gr_bf16_to_f32_n(B16, B, nb);
    }
    if (beta == 0.0f) /* C must not be read when beta == 0 */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] = NAN;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++) {
                double a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                double b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                s += a * b;
            }
            double c0 = beta == 0.0f ? 0.0 : (double)C[(size_t)i * ldc + j];
            ref[(size_t)i * ldc + j] = alpha * s + beta * c0;
        }
    /* padding columns of C must stay untouched */
    float sentinel = 12345.0f;
    for (int i = 0; i < M; i++)
        for (int j = N; j < ldc; j++) C[(size_t)i * ldc + j] = sentinel;
    if (bf16) {
        /* the same kernel on the widened values gives the same bits */
        float *C2 = malloc(sizeof(float) * (nc + 1));
        memcpy(C2, C, sizeof(float) * nc);
        gr_gemm_bf16_ex(be, nt, ta, tb, M, N, K, alpha, A, lda, B16, ldb, beta, C, ldc);
        gr_gemm_backend same = be == GR_GEMM_BLAS || be == GR_GEMM_BLAS_THREADED ? GR_GEMM_AUTO : be;
        gr_gemm_ex(same == GR_GEMM_AUTO ? GR_GEMM_AVX2 : same, nt, ta, tb, M, N, K, alpha, A, lda, B,
                   ldb, beta, C2, ldc);
        int same_bits = memcmp(C, C2, sizeof(float) * nc) == 0;
        free(C2);
        free(B16);
        if (!same_bits) {
            free(A); free(B); free(C); free(ref);
            return INFINITY;
        }
    } else {
        gr_gemm_ex(be, nt, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    }
    double maxref = 1e-30, maxdiff = 0;
    int pad_ok = 1;
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            double d = fabs(C[(size_t)i * ldc + j] - ref[(size_t)i * ldc + j]);
            if (!(d <= maxdiff)) maxdiff = isnan(d) ? INFINITY : d;
            if (fabs(ref[(size_t)i * ldc + j]) > maxref) maxref = fabs(ref[(size_t)i * ldc + j]);
        }
        for (int j = N; j < ldc; j++) pad_ok &= C[(size_t)i * ldc + j] == sentinel;
    }
    free(A); free(B); free(C); free(ref);
    if (!pad_ok) return INFINITY;
    return maxdiff / maxref;
}

static double check_case(gr_gemm_backend be, int nt, int ta, int tb, int M, int N, int K,
                         float alpha, float beta, int pad, gr_rng *r)
{
    return check_case_ex(be, 0, nt, ta, tb, M, N, K, alpha, beta, pad, r);
}

static void test_shapes_all_backends(void)
{
    gr_rng r;
    gr_rng_seed(&r, 1);
    const int shapes[][3] = {
        {1, 1, 1}, {5, 7, 3}, {6, 16, 8}, {7, 17, 9}, {13, 33, 300}, {64, 64, 64},
        {37, 5, 257}, {3, 41, 11}, {150, 20, 20}, {20, 150, 520}, {97, 200, 31},
        {13, 2071, 37}, {301, 23, 530},
    };
    const float ab[][2] = {{1.0f, 0.0f}, {0.5f, 1.0f}, {-2.0f, 0.25f}};
    gr_gemm_backend bes[] = {GR_GEMM_AUTO, GR_GEMM_AVX2, GR_GEMM_BLAS, GR_GEMM_NAIVE, GR_GEMM_GENERIC};
    int nshape = (int)(sizeof shapes / sizeof shapes[0]);
    for (int b = 0; b < 5; b++)
        for (int s = 0; s < nshape; s++)
            for (int t = 0; t < 4; t++) {
                int ta = t & 1, tb = t >> 1;
                int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                int ai = (s + t) % 3, pad = (s + t) % 2 ? 3 : 0, nt = 1 + (s + b) % 3;
                double e = check_case(bes[b], nt, ta, tb, M, N, K, ab[ai][0], ab[ai][1], pad, &r);
                if (!(e < 2e-6))
                    gr_test_fail(__FILE__, __LINE__, "%s ta=%d tb=%d M=%d N=%d K=%d alpha=%g beta=%g pad=%d nt=%d: rel err %g",
                                 gr_gemm_backend_name(bes[b]), ta, tb, M, N, K, ab[ai][0], ab[ai][1], pad, nt, e);
            }
}

/* Large enough to be split across threads in both directions. */
static void test_threaded_split(void)
{
    gr_rng r;
    gr_rng_seed(&r, 2);
    for (int t = 0; t < 4; t++) {
        /* >= 1M multiply-adds per thread, so these really run split: rows
         * (601 x 70) and columns (100 x 700) */
        CHECK(check_case(GR_GEMM_AUTO, 2, t & 1, t >> 1, 601, 70, 129, 1.0f, 0.0f, 0, &r) < 2e-6);
        CHECK(check_case(GR_GEMM_AUTO, 3, t & 1, t >> 1, 100, 700, 129, 1.5f, -1.0f, 1, &r) < 2e-6);
    }
}

/* The same inputs give bit-identical results for a given thread count, and
 * the serial entry point matches gr_gemm with 1 thread. */
static void test_deterministic(void)
{
    int M = 517, N = 96, K = 300;
    float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
    float *C1 = malloc(sizeof(float) * M * N), *C2 = malloc(sizeof(float) * M * N);
    gr_rng r;
    gr_rng_seed(&r, 3);
    fill(A, (size_t)M * K, &r);
    fill(B, (size_t)K * N, &r);
    gr_gemm_ex(GR_GEMM_AUTO, 2, 0, 0, M, N, K, 1, A, K, B, N, 0, C1, N);
    gr_gemm_ex(GR_GEMM_AUTO, 2, 0, 0, M, N, K, 1, A, K, B, N, 0, C2, N);
    CHECK(memcmp(C1, C2, sizeof(float) * M * N) == 0);
    gr_gemm_serial(0, 0, M, N, K, 1, A, K, B, N, 0, C1, N);
    gr_gemm_ex(GR_GEMM_AUTO, 1, 0, 0, M, N, K, 1, A, K, B, N, 0, C2, N);
    CHECK(memcmp(C1, C2, sizeof(float) * M * N) == 0);
    free(A); free(B); free(C1); free(C2);
}

/* gr_gemm_bias: C = op(A) op(B) + bias on every row, C not read. */
static void test_bias(void)
{
    gr_rng r;
    gr_rng_seed(&r, 4);
    const int shapes[][3] = {{7, 17, 9}, {601, 70, 129}, {100, 700, 129}, {6, 16, 300}, {13, 5, 0}};
    gr_gemm_backend bes[] = {GR_GEMM_AUTO, GR_GEMM_AVX2, GR_GEMM_BLAS, GR_GEMM_NAIVE, GR_GEMM_BLAS_THREADED};
    for (int b = 0; b < 5; b++)
        for (int si = 0; si < 5; si++)
            for (int t = 0; t < 4; t++) {
                int ta = t & 1, tb = t >> 1, M = shapes[si][0], N = shapes[si][1], K = shapes[si][2];
                int lda = ta ? M : (K ? K : 1), ldb = tb ? (K ? K : 1) : N;
                size_t na = (size_t)(ta ? K : M) * lda + 1, nb = (size_t)(tb ? N : K) * ldb + 1;
                float *A = malloc(sizeof(float) * na), *B = malloc(sizeof(float) * nb);
                float *bias = malloc(sizeof(float) * N), *C = malloc(sizeof(float) * M * N);
                fill(A, na, &r); fill(B, nb, &r); fill(bias, (size_t)N, &r);
                for (int i = 0; i < M * N; i++) C[i] = NAN;
                gr_gemm_bias_ex(bes[b], 1 + (si + t) % 2, ta, tb, M, N, K, A, lda, B, ldb, bias, C, N);
                double maxd = 0;
                for (int i = 0; i < M; i++)
                    for (int j = 0; j < N; j++) {
                        double s = bias[j];
                        for (int k = 0; k < K; k++)
                            s += (double)(ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]) *
                                 (tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]);
                        double d = fabs(s - C[i * N + j]);
                        maxd = isnan(d) ? INFINITY : fmax(maxd, d);
                    }
                if (!(maxd < 1e-4))
                    gr_test_fail(__FILE__, __LINE__, "bias %s ta=%d tb=%d %dx%dx%d: max diff %g",
                                 gr_gemm_backend_name(bes[b]), ta, tb, M, N, K, maxd);
                free(A); free(B); free(bias); free(C);
            }
}

/* Internal triangular GEMM used by attention: C_LOWER entries j <= i + off
 * must match; A_LOWER / A_UPPER with the zero structure put in A must match
 * everywhere. */
static void test_triangular(void)
{
    gr_rng r;
    gr_rng_seed(&r, 5);
    const int cases[][4] = {{37, 41, 19, 0}, {64, 130, 64, 66}, {200, 200, 64, 0}, {13, 300, 270, -5}};
    for (int ci = 0; ci < 4; ci++)
        for (int tri = GR_TRI_C_LOWER; tri <= GR_TRI_A_UPPER; tri++)
            for (int ta = 0; ta < 2; ta++) {
                int M = cases[ci][0], N = cases[ci][1], K = cases[ci][2], off = cases[ci][3];
                if (tri == GR_TRI_A_UPPER) off = -off;
                int lda = ta ? M : K;
                float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
                float *C = malloc(sizeof(float) * M * N), *C0 = malloc(sizeof(float) * M * N);
                fill(A, (size_t)M * K, &r); fill(B, (size_t)K * N, &r); fill(C0, (size_t)M * N, &r);
                memcpy(C, C0, sizeof(float) * M * N);
                for (int i = 0; i < M; i++) /* zero structure of op(A) */
                    for (int k = 0; k < K; k++) {
                        int zero = (tri == GR_TRI_A_LOWER && k > i + off) || (tri == GR_TRI_A_UPPER && k < i + off);
                        if (zero) A[ta ? (size_t)k * lda + i : (size_t)i * lda + k] = 0.0f;
                    }
                float beta = ci % 2 ? 1.0f : 0.0f;
                gr_gemm_tri_serial(tri, off, ta, 0, M, N, K, 0.5f, A, lda, B, N, beta, C, N);
                double maxd = 0;
                for (int i = 0; i < M; i++)
                    for (int j = 0; j < N; j++) {
                        if (tri == GR_TRI_C_LOWER && j > i + off) continue;
                        double sum = 0;
                        for (int k = 0; k < K; k++)
                            sum += (double)A[ta ? (size_t)k * lda + i : (size_t)i * lda + k] * B[(size_t)k * N + j];
                        double ref = 0.5 * sum + beta * C0[i * N + j];
                        maxd = fmax(maxd, fabs(ref - C[i * N + j]));
                    }
                if (!(maxd < 1e-4))
                    gr_test_fail(__FILE__, __LINE__, "tri %d ta=%d %dx%dx%d off %d: max diff %g", tri, ta, M, N, K, off, maxd);
                free(A); free(B); free(C); free(C0);
            }
}

static void test_degenerate(void)
{
    float C[4] = {1, 2, 3, 4}, A[1] = {0}, B[1] = {0};
    gr_gemm(0, 0, 2, 2, 0, 1.0f, A, 1, B, 2, 0.5f, C, 2); /* K = 0: C *= beta */
    CHECK_NEAR(C[3], 2.0, 0);
    gr_gemm(0, 0, 2, 2, 0, 1.0f, A, 1, B, 2, 0.0f, C, 2);
    CHECK_NEAR(C[0], 0.0, 0);
    C[0] = 7;
    gr_gemm(0, 0, 0, 2, 3, 1.0f, A, 3, B, 2, 0.0f, C, 2); /* M = 0: untouched */
    CHECK_NEAR(C[0], 7.0, 0);
    CHECK(gr_gemm_backend_name(GR_GEMM_AUTO)[0] != '\0');
}


static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* fp32 -> bf16 rounds to nearest, ties to even; bf16 -> fp32 is exact. */
static void test_bf16_rounding(void)
{
    CHECK(gr_f32_to_bf16(1.0f) == 0x3f80);
    CHECK(gr_f32_to_bf16(-2.0f) == 0xc000);
    CHECK(gr_f32_to_bf16(0.0f) == 0x0000);
    CHECK(gr_f32_to_bf16(-0.0f) == 0x8000);
    CHECK(gr_f32_to_bf16(bits_f32(0x3f808000u)) == 0x3f80); /* tie, even below */
    CHECK(gr_f32_to_bf16(bits_f32(0x3f818000u)) == 0x3f82); /* tie, even above */
    CHECK(gr_f32_to_bf16(bits_f32(0x3f808001u)) == 0x3f81); /* above the tie */
    CHECK(gr_f32_to_bf16(bits_f32(0x3f807fffu)) == 0x3f80); /* below the tie */
    CHECK(gr_f32_to_bf16(bits_f32(0xbf818000u)) == 0xbf82); /* negative tie */
    CHECK(gr_f32_to_bf16(bits_f32(0x7f7fffffu)) == 0x7f80); /* FLT_MAX -> inf */
    CHECK(gr_f32_to_bf16(INFINITY) == 0x7f80);
    CHECK(gr_f32_to_bf16(-INFINITY) == 0xff80);
    CHECK(gr_f32_to_bf16(bits_f32(0x00008000u)) == 0x0000); /* subnormal tie -> even 0 */
    CHECK(gr_f32_to_bf16(bits_f32(0x00018000u)) == 0x0002);
    uint16_t hn = gr_f32_to_bf16(NAN);
    CHECK((hn & 0x7f80) == 0x7f80 && (hn & 0x007f) != 0);
    /* a NaN whose payload sits only in the low 16 bits stays a NaN */
    uint16_t hl = gr_f32_to_bf16(bits_f32(0x7f800001u));
    CHECK((hl & 0x7f80) == 0x7f80 && (hl & 0x007f) != 0);
    CHECK(gr_bf16_to_f32(0x3f80) == 1.0f);
    CHECK(f32_bits(gr_bf16_to_f32(0xc049)) == 0xc0490000u);
    /* every non-NaN bf16 value survives the round trip */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = gr_bf16_to_f32((uint16_t)h);
        if (isnan(f)) continue;
        bad += gr_f32_to_bf16(f) != h;
    }
    CHECK(bad == 0);
    /* against nearest-value rounding on random inputs: the result is one of
     * the two neighbours and the closer one */
    gr_rng r;
    gr_rng_seed(&r, 7);
    int wrong = 0;
    for (int i = 0; i < 100000; i++) {
        float f = (float)((gr_rng_double(&r) * 2 - 1) * pow(2.0, (int)(gr_rng_double(&r) * 40) - 20));
        uint32_t u = f32_bits(f);
        float lo = bits_f32(u & 0xffff0000u), hi = bits_f32((u & 0xffff0000u) + 0x10000u);
        float got = gr_bf16_to_f32(gr_f32_to_bf16(f));
        double dl = fabs((double)f - lo), dh = fabs((double)f - hi);
        float want = dl < dh ? lo : dh < dl ? hi : ((u >> 16) & 1 ? hi : lo);
        wrong += got != want;
    }
    CHECK(wrong == 0);
    /* array forms */
    float xs[5] = {1.0f, -3.5f, 1e-3f, 65504.0f, 0.1f}, back[5];
    uint16_t hs[5];
    gr_f32_to_bf16_n(xs, hs, 5);
    gr_bf16_to_f32_n(hs, back, 5);
    for (int i = 0; i < 5; i++) {
        CHECK(hs[i] == gr_f32_to_bf16(xs[i]));
        CHECK(fabs(back[i] - xs[i]) <= fabs(xs[i]) * (1.0 / 256));
    }
}

/* gr_gemm_bf16 against the double reference on bf16-rounded B, and bit for
 * bit against the fp32 kernel on the widened B: all transposes, odd shapes,
 * alpha/beta, backends, 1-3 threads (row and column splits). */
static void test_bf16_gemm(void)
{
    gr_rng r;
    gr_rng_seed(&r, 8);
    const int shapes[][3] = {
        {1, 1, 1}, {1, 2048, 512}, {4, 37, 300}, {7, 17, 9}, {13, 2071, 37}, {150, 20, 520},
        {601, 70, 129}, {100, 700, 129},
    };
    const float ab[][2] = {{1.0f, 0.0f}, {0.5f, 1.0f}, {-2.0f, 0.25f}};
    gr_gemm_backend bes[] = {GR_GEMM_AUTO, GR_GEMM_AVX2, GR_GEMM_GENERIC, GR_GEMM_BLAS};
    int nshape = (int)(sizeof shapes / sizeof shapes[0]);
    for (int b = 0; b < 4; b++)
        for (int s = 0; s < nshape; s++)
            for (int t = 0; t < 4; t++) {
                int ta = t & 1, tb = t >> 1;
                int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                int ai = (s + t) % 3, pad = (s + t) % 2 ? 5 : 0, nt = 1 + (s + b + t) % 3;
                double e = check_case_ex(bes[b], 1, nt, ta, tb, M, N, K, ab[ai][0], ab[ai][1], pad, &r);
                if (!(e < 2e-6))
                    gr_test_fail(__FILE__, __LINE__, "bf16 %s ta=%d tb=%d M=%d N=%d K=%d nt=%d: rel err %g",
                                 gr_gemm_backend_name(bes[b]), ta, tb, M, N, K, nt, e);
            }
    /* NAIVE (reference loop) on small shapes only */
    for (int t = 0; t < 4; t++)
        CHECK(check_case_ex(GR_GEMM_NAIVE, 1, 1, t & 1, t >> 1, 23, 41, 67, 1.5f, 0.5f, 1, &r) < 2e-6);
    /* K = 0 scales C by beta; the public entry point */
    float C[4] = {1, 2, 3, 4}, A[1] = {0};
    uint16_t B[1] = {0};
    gr_gemm_bf16(0, 0, 2, 2, 0, 1.0f, A, 1, B, 2, 0.5f, C, 2);
    CHECK_NEAR(C[3], 2.0, 0);
    float A2[6] = {1, 2, 3, 4, 5, 6}, C2[4];
    uint16_t B2[6];
    float Bf[6] = {1, 0.5f, -1, 2, 0.25f, 3}; /* 3 x 2 */
    gr_f32_to_bf16_n(Bf, B2, 6);
    gr_gemm_bf16(0, 0, 2, 2, 3, 1.0f, A2, 3, B2, 2, 0.0f, C2, 2);
    CHECK_NEAR(C2[0], 1 - 2 + 0.75, 1e-6);
    CHECK_NEAR(C2[3], 4 * 0.5 + 5 * 2 + 6 * 3, 1e-5);
}

/* The portable path, forced as on a CPU without AVX2/FMA: the dispatch
 * reports it, AUTO/AVX2 still give correct results (through OpenBLAS and
 * the generic C kernel), and so do the bias, bf16 and triangular variants. */
static void test_forced_generic(void)
{
    int had = gr_gemm_have_avx2();
    gr_gemm_force_generic(1);
    CHECK(gr_gemm_have_avx2() == 0);
    CHECK(strcmp(gr_gemm_backend_name(GR_GEMM_AVX2), "generic") == 0);
    gr_rng r;
    gr_rng_seed(&r, 9);
    const int shapes[][3] = {{5, 7, 3}, {7, 17, 9}, {37, 5, 257}, {150, 20, 520}, {601, 70, 129}};
    for (int s = 0; s < 5; s++)
        for (int t = 0; t < 4; t++) {
            int ta = t & 1, tb = t >> 1, M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
            for (int b = 0; b < 2; b++) {
                gr_gemm_backend be = b ? GR_GEMM_AVX2 : GR_GEMM_AUTO;
                double e = check_case(be, 1 + (s + t) % 2, ta, tb, M, N, K, 0.5f, (s % 2) ? 1.0f : 0.0f, s % 2, &r);
                double e16 = check_case_ex(be, 1, 1 + t % 2, ta, tb, M, N, K, -1.0f, 0.25f, 0, &r);
                if (!(e < 2e-6) || !(e16 < 2e-6))
                    gr_test_fail(__FILE__, __LINE__, "generic %d ta=%d tb=%d %dx%dx%d: rel err %g, bf16 %g",
                                 b, ta, tb, M, N, K, e, e16);
            }
        }
    test_bias();
    test_triangular();
    gr_gemm_force_generic(0);
    CHECK(gr_gemm_have_avx2() == had);
    CHECK(had == (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")));
}

/* Prepacked B: gr_gemm_packed_serial on gr_gemm_pack_b's buffer gives the
 * bits of gr_gemm_serial on the unpacked B (AVX2: same kernel and order),
 * the generic and naive kernels agree with a double reference; shapes cross
 * the 16-column strips, the 256-row K blocks and the 2048-column panels. */
static void test_packed_b(void)
{
    gr_rng r;
    gr_rng_seed(&r, 21);
    const int shapes[][3] = {{1, 1, 1}, {20, 214, 32}, {20, 32, 214}, {7, 33, 300}, {150, 20, 520}, {3, 2100, 5}};
    for (int s = 0; s < 6; s++)
        for (int t = 0; t < 4; t++) {
            int ta = t & 1, tb = t >> 1, M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
            int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 2;
            size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc;
            float *A = malloc(sizeof(float) * na), *B = malloc(sizeof(float) * nb);
            float *C0 = malloc(sizeof(float) * nc), *C1 = malloc(sizeof(float) * nc);
            float *Bp = gr_alloc(gr_gemm_pack_b_size(N, K), sizeof(float));
            REQUIRE(A && B && C0 && C1 && Bp);
            fill(A, na, &r);
            fill(B, nb, &r);
            fill(C0, nc, &r);
            memcpy(C1, C0, sizeof(float) * nc);
            CHECK(gr_gemm_pack_b_size(N, K) == (size_t)((N + 15) / 16 * 16) * K);
            gr_gemm_pack_b(tb, N, K, B, ldb, Bp);
            float beta = s % 2 ? 0.5f : 0.0f;
            gr_gemm_serial(ta, tb, M, N, K, 0.75f, A, lda, B, ldb, beta, C0, ldc);
            gr_gemm_packed_serial(ta, M, N, K, 0.75f, A, lda, Bp, beta, C1, ldc);
            if (gr_gemm_have_avx2() && memcmp(C0, C1, sizeof(float) * nc) != 0)
                gr_test_fail(__FILE__, __LINE__, "packed %dx%dx%d ta=%d tb=%d: bits differ from gr_gemm_serial", M,
                             N, K, ta, tb);
            /* threaded, with a bias: rows split in tiles change no element's sum order */
            if (!ta) {
                float *bias = malloc(sizeof(float) * N), *C2 = malloc(sizeof(float) * nc);
                REQUIRE(bias && C2);
                fill(bias, (size_t)N, &r);
                for (int nt = 1; nt <= 3; nt++) {
                    gr_threads_set(nt);
                    gr_gemm_bias(0, tb, M, N, K, A, lda, B, ldb, bias, C1, ldc);
                    gr_gemm_packed(0, M, N, K, 1.0f, A, lda, Bp, bias, 0.0f, C2, ldc);
                    int same = 1;
                    for (int i = 0; i < M; i++) same &= !memcmp(C1 + (size_t)i * ldc, C2 + (size_t)i * ldc, sizeof(float) * N);
                    if (gr_gemm_have_avx2() && !same)
                        gr_test_fail(__FILE__, __LINE__, "packed+bias %dx%dx%d tb=%d, %d threads: bits differ", M, N,
                                     K, tb, nt);
                }
                gr_threads_set(0);
                free(bias);
                free(C2);
            }
            for (int k = 0; k < 2; k++) {
                memcpy(C1, C0, sizeof(float) * nc); /* C0 = the product with beta applied once */
                float *Cr = malloc(sizeof(float) * nc);
                REQUIRE(Cr);
                memcpy(Cr, C1, sizeof(float) * nc);
                /* C1 = 1*A*B + 0*C1 with generic / naive; Cr the double reference */
                gr_gemm_packed_ex(k ? GR_GEMM_NAIVE : GR_GEMM_GENERIC, ta, M, N, K, 1.0f, A, lda, Bp, 0.0f, C1, ldc);
                double md = 0, mr = 1e-30;
                for (int i = 0; i < M; i++)
                    for (int j = 0; j < N; j++) {
                        double acc = 0;
                        for (int q = 0; q < K; q++)
                            acc += (double)(ta ? A[(size_t)q * lda + i] : A[(size_t)i * lda + q]) *
                                   (tb ? B[(size_t)j * ldb + q] : B[(size_t)q * ldb + j]);
                        double d = fabs(C1[(size_t)i * ldc + j] - acc);
                        if (!(d <= md)) md = isnan(d) ? INFINITY : d;
                        if (fabs(acc) > mr) mr = fabs(acc);
                    }
                if (!(md / mr < 2e-6))
                    gr_test_fail(__FILE__, __LINE__, "packed %s %dx%dx%d ta=%d tb=%d: rel err %g",
                                 k ? "naive" : "generic", M, N, K, ta, tb, md / mr);
                free(Cr);
            }
            free(A); free(B); free(C0); free(C1); gr_free(Bp);
        }
}

/* gr_vdot_bf16 (decoding with bf16 weights) against a double reference on
 * the widened values, AVX2 and forced generic, lengths around the 8/16
 * blocks. */
static void test_vdot_bf16(void)
{
    gr_rng r;
    gr_rng_seed(&r, 5);
    const int ns[] = {1, 7, 8, 15, 16, 17, 33, 100, 768};
    for (int g = 0; g < 2; g++) {
        gr_gemm_force_generic(g);
        for (int t = 0; t < 9; t++) {
            int n = ns[t];
            float *x = malloc(sizeof(float) * n), *wf = malloc(sizeof(float) * n);
            uint16_t *w = malloc(sizeof(uint16_t) * n);
            REQUIRE(x && wf && w);
            fill(x, (size_t)n, &r);
            fill(wf, (size_t)n, &r);
            gr_f32_to_bf16_n(wf, w, (size_t)n);
            double ref = 0.0, mag = 0.0;
            for (int i = 0; i < n; i++) {
                ref += (double)x[i] * gr_bf16_to_f32(w[i]);
                mag += fabs((double)x[i] * gr_bf16_to_f32(w[i]));
            }
            double got = gr_vdot_bf16(x, w, n);
            if (!(fabs(got - ref) <= 1e-6 * (mag + 1e-30)))
                gr_test_fail(__FILE__, __LINE__, "vdot_bf16 n=%d generic=%d: %g vs %g", n, g, got, ref);
            free(x); free(wf); free(w);
        }
    }
    gr_gemm_force_generic(0);
}

int main(void)
{
    GR_RUN(test_shapes_all_backends);
    GR_RUN(test_threaded_split);
    GR_RUN(test_deterministic);
    GR_RUN(test_bias);
    GR_RUN(test_triangular);
    GR_RUN(test_degenerate);
    GR_RUN(test_bf16_rounding);
    GR_RUN(test_bf16_gemm);
    GR_RUN(test_forced_generic);
    GR_RUN(test_packed_b);
    GR_RUN(test_vdot_bf16);
    return gr_test_finish();
}
