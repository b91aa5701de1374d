/* Heap top-k vs a full sort on random rows with ties, masking and -inf/NaN. */
#include <stdlib.h>

#include "gr_test.h"
#include "genrec/common.h"
#include "genrec/rng.h"
#include "genrec/topk.h"

static const float *ref_scores;

static int ref_cmp(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    float sx = ref_scores[x], sy = ref_scores[y];
    if (sx != sy) return sx > sy ? -1 : 1;
    return (x > y) - (x < y);
}

/* Reference: sort every eligible item (score desc, id asc). Returns count. */
static int32_t ref_topk(const float *s, int32_t n, const int32_t *ex, int32_t nex, int32_t *out)
{
    int32_t m = 0;
    for (int32_t i = 0; i < n; i++) {
        int skip = isnan(s[i]) || s[i] == -INFINITY;
        for (int32_t e = 0; e < nex && !skip; e++) skip = ex[e] == i;
        if (!skip) out[m++] = i;
    }
    ref_scores = s;
    qsort(out, (size_t)m, sizeof *out, ref_cmp);
    return m;
}

static void test_topk_random(void)
{
    gr_rng r;
    gr_rng_seed(&r, 7);
    enum { N = 300 };
    float s[N];
    int32_t ex[700], got[N], want[N];
    float gs[N];
    for (int trial = 0; trial < 400; trial++) {
        int32_t n = 1 + (int32_t)gr_rng_below(&r, N);
        int levels = 1 + (int)gr_rng_below(&r, 12); /* few levels => many ties */
        for (int32_t i = 0; i < n; i++) {
            s[i] = (float)gr_rng_below(&r, (uint64_t)levels) - 3.0f;
            uint64_t x = gr_rng_below(&r, 50);
            if (x == 0) s[i] = -INFINITY;
            else if (x == 1) s[i] = NAN;
            else if (x == 2) s[i] = INFINITY;
        }
        /* exclude lists: random, with duplicates and out-of-range ids; sometimes
         * longer than the 512-entry stack buffer */
        int32_t nex = (int32_t)gr_rng_below(&r, trial % 10 == 0 ? 700 : 40);
        for (int32_t e = 0; e < nex; e++) ex[e] = (int32_t)gr_rng_below(&r, (uint64_t)n + 5) - 2;
        int32_t k = (int32_t)gr_rng_below(&r, (uint64_t)n + 10);
        int32_t m = gr_topk(s, n, k, ex, nex, got, gs);
        int32_t mr = ref_topk(s, n, ex, nex, want);
        int32_t expect = mr < k ? mr : k;
        CHECK_EQ_INT(m, expect);
        if (m != expect) continue;
        int bad = 0;
        for (int32_t j = 0; j < m; j++) bad += got[j] != want[j] || gs[j] != s[want[j]];
        CHECK_EQ_INT(bad, 0);
        if (bad) {
            fprintf(stderr, "trial %d n %d k %d nex %d\n", trial, n, k, nex);
            return;
        }
    }
}

static void test_topk_edges(void)
{
    float s[5] = {1, 2, 2, 2, 0};
    int32_t out[5];
    float os[5];
    CHECK_EQ_INT(gr_topk(s, 5, 0, NULL, 0, out, os), 0);
    CHECK_EQ_INT(gr_topk(s, 0, 3, NULL, 0, out, os), 0);
    CHECK_EQ_INT(gr_topk(s, 5, -1, NULL, 0, out, os), -1);
    CHECK_HAS(gr_error_message(), "gr_topk");
    /* ties: smaller id first, like the evaluator */
    CHECK_EQ_INT(gr_topk(s, 5, 2, NULL, 0, out, NULL), 2);
    CHECK_EQ_INT(out[0], 1);
    CHECK_EQ_INT(out[1], 2);
    int32_t ex[2] = {2, 1};
    CHECK_EQ_INT(gr_topk(s, 5, 3, ex, 2, out, os), 3);
    CHECK_EQ_INT(out[0], 3);
    CHECK_EQ_INT(out[1], 0);
    CHECK_EQ_INT(out[2], 4);
    CHECK_NEAR(os[1], 1.0, 0);
}

static void test_topk_batch(void)
{
    enum { R = 40, N = 120, K = 10 };
    static float s[R * N];
    int32_t hist[R][6];
    gr_query q[R];
    gr_rng r;
    gr_rng_seed(&r, 3);
    for (int i = 0; i < R * N; i++) s[i] = (float)gr_rng_below(&r, 20);
    for (int i = 0; i < R; i++) {
        for (int h = 0; h < 6; h++) hist[i][h] = (int32_t)gr_rng_below(&r, N);
        q[i] = (gr_query){.user = i, .target = 0, .hist_len = 6, .hist = hist[i]};
    }
    /* last row: everything but 3 items masked out -> padding */
    static int32_t all[N];
    int32_t na = 0;
    for (int32_t i = 3; i < N; i++) all[na++] = i;
    q[R - 1].hist = all;
    q[R - 1].hist_len = na;
    int32_t out[R * K], want[N];
    float os[R * K];
    CHECK_EQ_INT(gr_topk_batch(s, R, N, K, q, 1, out, os), GR_OK);
    int bad = 0;
    for (int i = 0; i < R; i++) {
        int32_t m = ref_topk(s + i * N, N, q[i].hist, q[i].hist_len, want);
        for (int j = 0; j < K; j++) {
            int32_t w = j < m ? want[j] : -1;
            bad += out[i * K + j] != w;
            if (w < 0) bad += os[i * K + j] != -INFINITY;
        }
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(out[(R - 1) * K + 3], -1);
    /* without masking: row 0 equals the plain top-k */
    CHECK_EQ_INT(gr_topk_batch(s, R, N, K, NULL, 0, out, NULL), GR_OK);
    int32_t one[K];
    CHECK_EQ_INT(gr_topk(s, N, K, NULL, 0, one, NULL), K);
    for (int j = 0; j < K; j++) CHECK_EQ_INT(out[j], one[j]);
    CHECK_EQ_INT(gr_topk_batch(s, R, N, K, NULL, 1, out, NULL), GR_ERR);
}

int main(void)
{
    GR_RUN(test_topk_random);
    GR_RUN(test_topk_edges);
    GR_RUN(test_topk_batch);
    return gr_test_finish();
}
