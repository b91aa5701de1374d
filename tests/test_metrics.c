/* Metrics: gr_eval_rank's tie / exclusion / candidate rules on hand-computed
 * cases and against a brute-force reference, and HR/NDCG/MRR accumulation. */
#include <stdlib.h>

#include "genrec/eval.h"
#include "genrec/rng.h"
#include "gr_test.h"

static void test_rank_ties(void)
{
    const float s[5] = {0.5f, 0.9f, 0.5f, 0.1f, 0.5f};
    CHECK_EQ_INT(gr_eval_rank(s, 5, 1, NULL, 0, NULL, 0), 0);
    CHECK_EQ_INT(gr_eval_rank(s, 5, 0, NULL, 0, NULL, 0), 1); /* equal items 2, 4 have larger ids */
    CHECK_EQ_INT(gr_eval_rank(s, 5, 2, NULL, 0, NULL, 0), 2); /* item 1 higher, item 0 ties with smaller id */
    CHECK_EQ_INT(gr_eval_rank(s, 5, 4, NULL, 0, NULL, 0), 3);
    CHECK_EQ_INT(gr_eval_rank(s, 5, 3, NULL, 0, NULL, 0), 4);
    const float flat[4] = {1, 1, 1, 1};
    for (int t = 0; t < 4; t++) CHECK_EQ_INT(gr_eval_rank(flat, 4, t, NULL, 0, NULL, 0), t);
}

static void test_rank_exclude_seen(void)
{
    const float s[5] = {0.5f, 0.9f, 0.5f, 0.1f, 0.5f};
    CHECK_EQ_INT(gr_eval_rank(s, 5, 2, (int32_t[]){1}, 1, NULL, 0), 1);
    CHECK_EQ_INT(gr_eval_rank(s, 5, 2, (int32_t[]){1, 1, 0}, 3, NULL, 0), 0); /* duplicates count once */
    CHECK_EQ_INT(gr_eval_rank(s, 5, 2, (int32_t[]){2, 1}, 2, NULL, 0), 1);    /* target in history is kept */
    CHECK_EQ_INT(gr_eval_rank(s, 5, 2, (int32_t[]){3, 4}, 2, NULL, 0), 2);    /* lower items change nothing */
    CHECK_EQ_INT(gr_eval_rank(s, 5, 2, (int32_t[]){-1, 7, 1}, 3, NULL, 0), 1); /* out of range ignored */
    CHECK_EQ_INT(gr_eval_rank(s, 5, 4, (int32_t[]){0, 2, 1}, 3, NULL, 0), 0);
}

static void test_rank_candidates(void)
{
    const float s[5] = {0.5f, 0.9f, 0.5f, 0.1f, 0.5f};
    CHECK_EQ_INT(gr_eval_rank(s, 5, 2, NULL, 0, (int32_t[]){3, 2, 1}, 3), 1);
    CHECK_EQ_INT(gr_eval_rank(s, 5, 2, NULL, 0, (int32_t[]){3, 2}, 2), 0);
    CHECK_EQ_INT(gr_eval_rank(s, 5, 2, NULL, 0, (int32_t[]){4, 2, 0}, 3), 1); /* tie: only item 0 */
    CHECK_EQ_INT(gr_eval_rank(s, 5, 2, (int32_t[]){1}, 1, (int32_t[]){1, 2, 3}, 3), 0);
    /* an item outside the candidates never counts, however high */
    CHECK_EQ_INT(gr_eval_rank(s, 5, 3, NULL, 0, (int32_t[]){3, 0}, 2), 1);
}

static void test_rank_special(void)
{
    const float s1[4] = {0.2f, NAN, 0.4f, 0.3f};
    CHECK_EQ_INT(gr_eval_rank(s1, 4, 1, NULL, 0, NULL, 0), 3);          /* NaN target: last */
    CHECK_EQ_INT(gr_eval_rank(s1, 4, 1, (int32_t[]){2}, 1, NULL, 0), 2);
    CHECK_EQ_INT(gr_eval_rank(s1, 4, 0, NULL, 0, NULL, 0), 2);          /* NaN item does not beat 0.2 */
    const float s2[4] = {-INFINITY, -INFINITY, 0.3f, NAN};
    CHECK_EQ_INT(gr_eval_rank(s2, 4, 1, NULL, 0, NULL, 0), 2);          /* item 0 ties, item 2 higher */
    CHECK_EQ_INT(gr_eval_rank(s2, 4, 0, NULL, 0, NULL, 0), 1);          /* NaN after the target: no */
    CHECK_EQ_INT(gr_eval_rank(s2, 4, 9, NULL, 0, NULL, 0), -1);
    CHECK_HAS(gr_error_message(), "target item 9");
    CHECK_EQ_INT(gr_eval_rank(s2, 4, -1, NULL, 0, NULL, 0), -1);
}

/* Direct definition: count allowed items that beat the target. */
static int64_t naive_rank(const float *s, int n, int t, const int32_t *seen, int ns, const int32_t *cand, int nc)
{
    float st = isnan(s[t]) ? -INFINITY : s[t];
    int64_t r = 0;
    for (int j = 0; j < n; j++) {
        if (j == t) continue;
        int in = !cand;
        for (int k = 0; cand && k < nc; k++) in |= cand[k] == j;
        for (int k = 0; k < ns; k++) in &= seen[k] != j;
        float sj = isnan(s[j]) ? -INFINITY : s[j];
        if (in && (sj > st || (sj == st && j < t))) r++;
    }
    return r;
}

static void test_rank_random(void)
{
    gr_rng r;
    gr_rng_seed(&r, 99);
    enum { N = 700 };
    static float s[N];
    static int32_t seen[400], cand[20];
    int mismatches = 0;
    for (int trial = 0; trial < 300; trial++) {
        int n = 1 + (int)gr_rng_below(&r, N);
        for (int j = 0; j < n; j++) {
            uint64_t v = gr_rng_below(&r, 12);
            s[j] = v == 0 ? NAN : v == 1 ? -INFINITY : (float)v; /* many ties */
        }
        int t = (int)gr_rng_below(&r, (uint64_t)n);
        int ns = (int)gr_rng_below(&r, 400); /* > 256 exercises the heap path */
        for (int k = 0; k < ns; k++) seen[k] = (int32_t)gr_rng_below(&r, (uint64_t)n + 2) - 1;
        int nc = 0;
        int use_cand = trial % 3 == 0;
        if (use_cand) {
            cand[nc++] = t;
            while (nc < 20 && nc < n) {
                int32_t c = (int32_t)gr_rng_below(&r, (uint64_t)n);
                int dup = 0;
                for (int k = 0; k < nc; k++) dup |= cand[k] == c;
                if (!dup) cand[nc++] = c;
            }
        }
        int64_t a = gr_eval_rank(s, n, t, seen, ns, use_cand ? cand : NULL, nc);
        int64_t b = naive_rank(s, n, t, seen, ns, use_cand ? cand : NULL, nc);
        if (a != b) {
            if (!mismatches) gr_test_fail(__FILE__, __LINE__, "trial %d: rank %lld, expected %lld", trial,
                                          (long long)a, (long long)b);
            mismatches++;
        }
    }
    CHECK_EQ_INT(mismatches, 0);
}

static void test_metric_formulas(void)
{
    const int64_t ranks[7] = {0, 1, 4, 9, 10, 60, -1};
    gr_metrics m;
    gr_metrics_init(&m);
    gr_metrics_add_ranks(&m, ranks, 7, 0);
    CHECK_EQ_INT(m.n, 7);
    CHECK_EQ_INT(m.max_k, 0);
    CHECK_NEAR(m.hr[0], 1.0 / 7, 1e-12);
    CHECK_NEAR(m.hr[1], 3.0 / 7, 1e-12);
    CHECK_NEAR(m.hr[2], 4.0 / 7, 1e-12);
    CHECK_NEAR(m.hr[3], 5.0 / 7, 1e-12);
    CHECK_NEAR(m.hr[4], 5.0 / 7, 1e-12);
    CHECK_NEAR(m.ndcg[0], 1.0 / 7, 1e-12);
    CHECK_NEAR(m.ndcg[1], (1 + 1 / log2(3) + 1 / log2(6)) / 7, 1e-12);
    CHECK_NEAR(m.ndcg[2], (1 + 1 / log2(3) + 1 / log2(6) + 1 / log2(11)) / 7, 1e-12);
    CHECK_NEAR(m.ndcg[4], (1 + 1 / log2(3) + 1 / log2(6) + 1 / log2(11) + 1 / log2(12)) / 7, 1e-12);
    CHECK_NEAR(m.mrr, (1 + 0.5 + 0.2 + 0.1 + 1.0 / 11 + 1.0 / 61) / 7, 1e-12);

    /* the same ranks added in pieces give the same means */
    gr_metrics p;
    gr_metrics_init(&p);
    gr_metrics_add_ranks(&p, ranks, 2, 0);
    gr_metrics_add_ranks(&p, ranks + 2, 0, 0);
    gr_metrics_add_ranks(&p, ranks + 2, 5, 0);
    CHECK_EQ_INT(p.n, 7);
    for (int k = 0; k < GR_EVAL_NK; k++) {
        CHECK_NEAR(p.hr[k], m.hr[k], 1e-12);
        CHECK_NEAR(p.ndcg[k], m.ndcg[k], 1e-12);
    }
    CHECK_NEAR(p.mrr, m.mrr, 1e-12);

    /* max_k: recorded, and MRR is cut there */
    gr_metrics_init(&p);
    gr_metrics_add_ranks(&p, ranks, 7, 5);
    CHECK_EQ_INT(p.max_k, 5);
    CHECK_NEAR(p.mrr, (1 + 0.5 + 0.2) / 7, 1e-12);
    CHECK_NEAR(p.hr[1], m.hr[1], 1e-12);
    gr_metrics_add_ranks(&p, ranks, 1, 10);
    CHECK_EQ_INT(p.max_k, 5); /* the smaller wins */
    CHECK_EQ_INT(gr_eval_ks[0], 1);
    CHECK_EQ_INT(gr_eval_ks[4], 50);
}

int main(void)
{
    GR_RUN(test_rank_ties);
    GR_RUN(test_rank_exclude_seen);
    GR_RUN(test_rank_candidates);
    GR_RUN(test_rank_special);
    GR_RUN(test_rank_random);
    GR_RUN(test_metric_formulas);
    return gr_test_finish();
}
