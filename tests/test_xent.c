/* Fused classifier + cross-entropy: brute-force references in double,
 * finite differences, sampled softmax (with collisions, cosine, temperature),
 * the scoring helper and the vectorised exp. */
#include "gr_test.h"
#include "genrec/common.h"
#include "genrec/rng.h"
#include "genrec/xent.h"

#include <stdlib.h>

static float *randn(gr_rng *r, int64_t n, float sd)
{
    float *x = gr_alloc((size_t)n, sizeof(float));
    for (int64_t i = 0; i < n; i++) x[i] = (float)(gr_rng_normal(r) * sd);
    return x;
}

/* Double-precision brute force of the full softmax CE; grads overwrite. */
static double ref_full(const float *h, const float *W, const float *b, const int32_t *t, int N, int V, int C,
                       double *dh, double *dW, double *db)
{
    int nv = 0;
    for (int i = 0; i < N; i++) nv += t[i] >= 0;
    if (dh) memset(dh, 0, sizeof(double) * N * C);
    if (dW) memset(dW, 0, sizeof(double) * V * C);
    if (db) memset(db, 0, sizeof(double) * V);
    if (!nv) return 0;
    double loss = 0, *l = malloc(sizeof(double) * V);
    for (int i = 0; i < N; i++) {
        if (t[i] < 0) continue;
        double m = -1e300, s = 0;
        for (int v = 0; v < V; v++) {
            double z = b ? b[v] : 0;
            for (int c = 0; c < C; c++) z += (double)h[i * C + c] * W[v * C + c];
            l[v] = z;
            if (z > m) m = z;
        }
        for (int v = 0; v < V; v++) s += exp(l[v] - m);
        loss += log(s) + m - l[t[i]];
        for (int v = 0; v < V; v++) {
            double g = (exp(l[v] - m) / s - (v == t[i])) / nv;
            if (db) db[v] += g;
            for (int c = 0; c < C; c++) {
                if (dh) dh[i * C + c] += g * W[v * C + c];
                if (dW) dW[v * C + c] += g * h[i * C + c];
            }
        }
    }
    free(l);
    return loss / nv;
}

static double max_abs_diff(const float *a, const double *b, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

static void test_full_matches_bruteforce(void)
{
    gr_rng r;
    gr_rng_seed(&r, 1);
    const int N = 37, V = 53, C = 12;
    float *h = randn(&r, N * C, 1.0f), *W = randn(&r, V * C, 0.5f), *b = randn(&r, V, 0.3f);
    int32_t t[37];
    for (int i = 0; i < N; i++) t[i] = (i % 5 == 3) ? -1 : (int32_t)gr_rng_below(&r, V);
    double *rdh = malloc(sizeof(double) * N * C), *rdW = malloc(sizeof(double) * V * C), *rdb = malloc(sizeof(double) * V);
    double rl = ref_full(h, W, b, t, N, V, C, rdh, rdW, rdb);
    /* chunk sizes x {1 thread, 2 threads private dW, 2 threads shared dW} */
    int chunks[] = {1, 3, 8, 0, 1000};
    for (int k = 0; k < 15; k++) {
        gr_threads_set(k / 5 == 0 ? 1 : 2);
        gr_xent_ws ws = {0};
        ws.chunk = chunks[k % 5];
        ws.shared = k / 5 == 2;
        float *dh = gr_calloc(N * C, sizeof(float)), *dW = gr_calloc(V * C, sizeof(float)), *db = gr_calloc(V, sizeof(float));
        float loss = -1;
        REQUIRE(gr_xent_full(&ws, h, W, b, t, N, V, C, &loss, dh, dW, db) == GR_OK);
        CHECK_NEAR(loss, rl, 1e-5 * fmax(1, rl));
        CHECK(max_abs_diff(dh, rdh, N * C) < 1e-6);
        CHECK(max_abs_diff(dW, rdW, V * C) < 1e-6);
        CHECK(max_abs_diff(db, rdb, V) < 1e-6);
        /* accumulation: a second call doubles the gradients */
        REQUIRE(gr_xent_full(&ws, h, W, b, t, N, V, C, &loss, dh, dW, db) == GR_OK);
        for (int64_t i = 0; i < N * C; i++) rdh[i] *= 2;
        CHECK(max_abs_diff(dh, rdh, N * C) < 2e-6);
        for (int64_t i = 0; i < N * C; i++) rdh[i] /= 2;
        gr_xent_ws_free(&ws);
        gr_free(dh); gr_free(dW); gr_free(db);
    }
    gr_threads_set(0);
    /* no bias, loss only, and the one-shot entry point */
    ref_full(h, W, NULL, t, N, V, C, rdh, rdW, NULL);
    double rl2 = ref_full(h, W, NULL, t, N, V, C, NULL, NULL, NULL);
    float loss2 = 0, *dh = gr_calloc(N * C, sizeof(float)), *dW = gr_calloc(V * C, sizeof(float));
    REQUIRE(gr_xent_forward_backward(h, W, NULL, t, N, V, C, &loss2, dh, dW, NULL) == GR_OK);
    CHECK_NEAR(loss2, rl2, 1e-5 * fmax(1, rl2));
    CHECK(max_abs_diff(dh, rdh, N * C) < 1e-6);
    CHECK(max_abs_diff(dW, rdW, V * C) < 1e-6);
    float loss3 = 0;
    REQUIRE(gr_xent_forward_backward(h, W, NULL, t, N, V, C, &loss3, NULL, NULL, NULL) == GR_OK);
    CHECK_NEAR(loss3, rl2, 1e-5 * fmax(1, rl2));
    gr_free(h); gr_free(W); gr_free(b); gr_free(dh); gr_free(dW);
    free(rdh); free(rdW); free(rdb);
}

static void test_full_finite_difference(void)
{
    gr_rng r;
    gr_rng_seed(&r, 2);
    const int N = 6, V = 9, C = 5;
    float *h = randn(&r, N * C, 1.0f), *W = randn(&r, V * C, 1.0f), *b = randn(&r, V, 1.0f);
    int32_t t[6] = {0, 8, -1, 3, 3, 5};
    float *dh = gr_calloc(N * C, sizeof(float)), *dW = gr_calloc(V * C, sizeof(float)), *db = gr_calloc(V, sizeof(float));
    float loss;
    REQUIRE(gr_xent_forward_backward(h, W, b, t, N, V, C, &loss, dh, dW, db) == GR_OK);
    const float eps = 1e-2f;
    float *params[3] = {h, W, b}, *grads[3] = {dh, dW, db};
    int sizes[3] = {N * C, V * C, V};
    for (int p = 0; p < 3; p++)
        for (int i = 0; i < sizes[p]; i += 3) {
            float keep = params[p][i], lp, lm;
            params[p][i] = keep + eps;
            gr_xent_forward_backward(h, W, b, t, N, V, C, &lp, NULL, NULL, NULL);
            params[p][i] = keep - eps;
            gr_xent_forward_backward(h, W, b, t, N, V, C, &lm, NULL, NULL, NULL);
            params[p][i] = keep;
            CHECK_NEAR(grads[p][i], (lp - lm) / (2 * eps), 2e-3);
        }
    /* the ignored row gets no gradient */
    for (int c = 0; c < C; c++) CHECK(dh[2 * C + c] == 0.0f);
    gr_free(h); gr_free(W); gr_free(b); gr_free(dh); gr_free(dW); gr_free(db);
}

static void test_full_edge_cases(void)
{
    float h[4] = {1, 2, 3, 4}, W[6] = {1, 0, 0, 1, 1, 1}, dh[4] = {0}, dW[6] = {0};
    int32_t all_ignored[2] = {-1, -1}, bad[2] = {0, 3};
    float loss = 7;
    CHECK_EQ_INT(gr_xent_forward_backward(h, W, NULL, all_ignored, 2, 3, 2, &loss, dh, dW, NULL), GR_OK);
    CHECK(loss == 0.0f);
    for (int i = 0; i < 6; i++) CHECK(dW[i] == 0.0f);
    CHECK_EQ_INT(gr_xent_forward_backward(h, W, NULL, bad, 2, 3, 2, &loss, dh, dW, NULL), GR_ERR);
    CHECK_HAS(gr_error_message(), "target[1]");
    CHECK_EQ_INT(gr_xent_forward_backward(h, W, NULL, bad, 2, 0, 2, &loss, dh, dW, NULL), GR_ERR);
    /* huge logits stay finite (stable softmax) */
    float hb[2] = {1000, -1000}, Wb[4] = {1, 0, 0, 1};
    int32_t tb[1] = {1};
    CHECK_EQ_INT(gr_xent_forward_backward(hb, Wb, NULL, tb, 1, 2, 2, &loss, NULL, NULL, NULL), GR_OK);
    CHECK_NEAR(loss, 2000.0, 1e-2);
}

/* Reference of the sampled loss for given negatives per chunk (double). */
static double ref_sampled(const float *h, const float *W, const float *b, const int32_t *t, int N, int C,
                          const int32_t *negs, int K, int chunk, int cosine, float tau)
{
    int nv = 0;
    for (int i = 0; i < N; i++) nv += t[i] >= 0;
    double loss = 0;
    int seen = 0;
    for (int i = 0; i < N; i++) {
        if (t[i] < 0) continue;
        const int32_t *ng = negs + (seen / chunk) * K;
        seen++;
        double hn = 0;
        for (int c = 0; c < C; c++) hn += (double)h[i * C + c] * h[i * C + c];
        hn = cosine ? fmax(sqrt(hn), 1e-6) : 1;
        double s[64];
        int ids[64];
        ids[0] = t[i];
        for (int k = 0; k < K; k++) ids[k + 1] = ng[k];
        double m = -1e300;
        for (int k = 0; k <= K; k++) {
            double wn = 0, d = 0;
            for (int c = 0; c < C; c++) {
                wn += (double)W[ids[k] * C + c] * W[ids[k] * C + c];
                d += (double)h[i * C + c] * W[ids[k] * C + c];
            }
            wn = cosine ? fmax(sqrt(wn), 1e-6) : 1;
            s[k] = d / (hn * wn) / tau + (b ? b[ids[k]] : 0);
            if (k > 0 && ids[k] == t[i]) s[k] = -1e300;
            if (s[k] > m) m = s[k];
        }
        double z = 0;
        for (int k = 0; k <= K; k++) z += s[k] > -1e299 ? exp(s[k] - m) : 0;
        loss += log(z) + m - s[0];
    }
    return loss / nv;
}

static void test_sampled(void)
{
    gr_rng r;
    gr_rng_seed(&r, 3);
    const int N = 11, V = 7, C = 6, K = 5, chunk = 4;
    float *h = randn(&r, N * C, 1.0f), *W = randn(&r, V * C, 1.0f), *b = randn(&r, V, 0.5f);
    int32_t t[11];
    for (int i = 0; i < N; i++) t[i] = i == 4 ? -1 : (int32_t)gr_rng_below(&r, V);
    for (int cosine = 0; cosine <= 1; cosine++) {
        gr_xent_sampled_opts o = {K, cosine, cosine ? 0.05f : 0.7f};
        const float *bias = cosine ? NULL : b;
        gr_xent_ws ws = {0};
        ws.chunk = chunk;
        /* the negatives the function will draw: chunk by chunk from the same stream */
        gr_rng s0, s1;
        gr_rng_seed(&s0, 99);
        s1 = s0;
        int32_t negs[3 * 5];
        int collisions = 0;
        for (int i = 0; i < 3 * K; i++) negs[i] = (int32_t)gr_rng_below(&s1, V);
        for (int i = 0, seen = 0; i < N; i++) {
            if (t[i] < 0) continue;
            for (int k = 0; k < K; k++) collisions += negs[(seen / chunk) * K + k] == t[i];
            seen++;
        }
        CHECK(collisions > 0); /* V = 7 makes collisions certain: masking is exercised */
        double rl = ref_sampled(h, W, bias, t, N, C, negs, K, chunk, cosine, o.temperature);
        float *dh = gr_calloc(N * C, sizeof(float)), *dW = gr_calloc(V * C, sizeof(float)), *db = gr_calloc(V, sizeof(float));
        float loss;
        gr_rng g = s0;
        REQUIRE(gr_xent_sampled(&ws, &o, &g, h, W, bias, t, N, V, C, &loss, dh, dW, db) == GR_OK);
        CHECK_NEAR(loss, rl, 1e-4 * fmax(1, rl));
        /* finite differences with the same negatives (same rng state) */
        const float eps = cosine ? 1e-3f : 1e-2f;
        float *params[3] = {h, W, b}, *grads[3] = {dh, dW, db};
        int sizes[3] = {N * C, V * C, cosine ? 0 : V};
        for (int p = 0; p < 3; p++)
            for (int i = 0; i < sizes[p]; i += 2) {
                float keep = params[p][i], lp, lm;
                params[p][i] = keep + eps;
                g = s0;
                gr_xent_sampled(&ws, &o, &g, h, W, bias, t, N, V, C, &lp, NULL, NULL, NULL);
                params[p][i] = keep - eps;
                g = s0;
                gr_xent_sampled(&ws, &o, &g, h, W, bias, t, N, V, C, &lm, NULL, NULL, NULL);
                params[p][i] = keep;
                double fd = (lp - lm) / (2 * eps);
                CHECK_NEAR(grads[p][i], fd, (cosine ? 2e-2 : 3e-3) * fmax(1, fabs(fd)));
            }
        gr_xent_ws_free(&ws);
        gr_free(dh); gr_free(dW); gr_free(db);
    }
    gr_xent_sampled_opts bad = {0, 0, 1};
    float loss;
    gr_xent_ws ws = {0};
    CHECK_EQ_INT(gr_xent_sampled(&ws, &bad, &r, h, W, NULL, t, N, V, C, &loss, NULL, NULL, NULL), GR_ERR);
    gr_free(h); gr_free(W); gr_free(b);
}

/* With K large, the sampled softmax approaches the full one (no bias). */
static void test_sampled_approaches_full(void)
{
    gr_rng r;
    gr_rng_seed(&r, 4);
    const int N = 64, V = 50, C = 8;
    float *h = randn(&r, N * C, 1.0f), *W = randn(&r, V * C, 1.0f);
    int32_t t[64];
    for (int i = 0; i < N; i++) t[i] = (int32_t)gr_rng_below(&r, V);
    float full, sampled = 0;
    gr_xent_forward_backward(h, W, NULL, t, N, V, C, &full, NULL, NULL, NULL);
    gr_xent_sampled_opts o = {4000, 0, 1.0f};
    gr_xent_ws ws = {0};
    gr_xent_sampled(&ws, &o, &r, h, W, NULL, t, N, V, C, &sampled, NULL, NULL, NULL);
    /* 4000 uniform draws ~ 80 copies of each class: log-sum is shifted by log(80) */
    CHECK_NEAR(sampled - logf(80.0f), full, 0.15);
    gr_xent_ws_free(&ws);
    gr_free(h); gr_free(W);
}

static void test_logits_and_exp(void)
{
    gr_rng r;
    gr_rng_seed(&r, 5);
    const int n = 3, V = 17, C = 4, ld = 6;
    float *h = randn(&r, 5 * ld, 1.0f), *W = randn(&r, V * C, 1.0f), *b = randn(&r, V, 1.0f);
    int32_t rows[3] = {4, 0, 2};
    float out[3 * 17], out2[3 * 17];
    REQUIRE(gr_xent_logits(h, ld, rows, n, W, b, V, C, out) == GR_OK);
    REQUIRE(gr_xent_logits(h, ld, NULL, n, W, NULL, V, C, out2) == GR_OK);
    for (int i = 0; i < n; i++)
        for (int v = 0; v < V; v++) {
            double z = b[v], z2 = 0;
            for (int c = 0; c < C; c++) {
                z += (double)h[rows[i] * ld + c] * W[v * C + c];
                z2 += (double)h[i * ld + c] * W[v * C + c];
            }
            CHECK_NEAR(out[i * V + v], z, 1e-5);
            CHECK_NEAR(out2[i * V + v], z2, 1e-5);
        }
    CHECK_EQ_INT(gr_xent_logits(h, 2, NULL, n, W, NULL, V, C, out), GR_ERR);
    /* vectorised exp: relative error over [-80, 80], and underflow to 0 */
    enum { M = 2003 };
    static float x[M];
    double worst = 0;
    for (int i = 0; i < M; i++) x[i] = -80.0f + 160.0f * i / (M - 1);
    gr_vexpf(x, M);
    for (int i = 0; i < M; i++) {
        double xi = -80.0 + 160.0 * (float)i / (M - 1), e = exp((double)(-80.0f + 160.0f * i / (M - 1)));
        (void)xi;
        worst = fmax(worst, fabs(x[i] - e) / e);
    }
    CHECK(worst < 1e-6);
    float y[3] = {-200.0f, -INFINITY, 0.0f};
    gr_vexpf(y, 3);
    CHECK(y[0] == 0.0f && y[1] == 0.0f && y[2] == 1.0f);
    gr_free(h); gr_free(W); gr_free(b);
}

int main(void)
{
    GR_RUN(test_full_matches_bruteforce);
    GR_RUN(test_full_finite_difference);
    GR_RUN(test_full_edge_cases);
    GR_RUN(test_sampled);
    GR_RUN(test_sampled_approaches_full);
    GR_RUN(test_logits_and_exp);
    return gr_test_finish();
}
