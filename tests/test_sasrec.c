/* SASRec on a planted sequential pattern (item i is always followed by item
 * i+1 mod n_items): it must learn the pattern (HR@1 near 1 on held-out
 * queries), be deterministic for a seed, stop early and restore the best
 * epoch, and reject bad hyperparameters. */
#include "gr_test.h"
#include "genrec/common.h"
#include "genrec/model.h"
#include "genrec/rng.h"

#include <stdlib.h>

enum { NU = 160, NI = 40 };

/* A hand-built loo-style split: user u's sequence is a run of consecutive
 * items (mod NI) of length 8..27 starting at a random item; the training
 * part is all but the last two, valid target = second to last, test target
 * = last. */
typedef struct planted {
    gr_split s;
    int64_t off[NU + 1];
    int32_t item[NU * 30];
    int64_t time[NU * 30];
    gr_query valid[NU], test[NU];
    int32_t hist[NU][30];
} planted;

static void planted_build(planted *p, uint64_t seed)
{
    memset(p, 0, sizeof *p);
    gr_rng r;
    gr_rng_seed(&r, seed);
    int64_t k = 0;
    for (int u = 0; u < NU; u++) {
        int len = 8 + (int)gr_rng_below(&r, 20), start = (int)gr_rng_below(&r, NI);
        p->off[u] = k;
        for (int j = 0; j < len; j++) p->hist[u][j] = (start + j) % NI;
        for (int j = 0; j < len - 2; j++) {
            p->item[k] = p->hist[u][j];
            p->time[k] = j;
            k++;
        }
        p->valid[u] = (gr_query){u, p->hist[u][len - 2], len - 2, p->hist[u], len - 2, NULL, 0};
        p->test[u] = (gr_query){u, p->hist[u][len - 1], len - 1, p->hist[u], len - 1, NULL, 0};
    }
    p->off[NU] = k;
    p->s.protocol = GR_PROTOCOL_LOO;
    p->s.n_users = NU;
    p->s.n_items = NI;
    p->s.train_off = p->off;
    p->s.train_item = p->item;
    p->s.train_time = p->time;
    p->s.valid = p->valid;
    p->s.n_valid = NU;
    p->s.test = p->test;
    p->s.n_test = NU;
}

/* HR@1 over queries q: argmax over all items (history items included, so
 * the last item itself competes with its successor), ties to the smaller id. */
static double hr1(gr_model *m, const gr_query *q, int n)
{
    float *sc = malloc(sizeof(float) * (size_t)n * NI);
    if (m->ops->score(m, q, n, sc) != GR_OK) { free(sc); return -1; }
    int hits = 0;
    for (int i = 0; i < n; i++) {
        const float *row = sc + (size_t)i * NI;
        int best = 0;
        for (int v = 1; v < NI; v++)
            if (row[v] > row[best]) best = v;
        hits += best == q[i].target;
    }
    free(sc);
    return (double)hits / n;
}

/* validate(): HR@1 on the valid queries stands in for NDCG@10. */
static double validate_hr1(gr_fit_ctx *ctx, gr_model *m)
{
    planted *p = ctx->eval_state;
    return hr1(m, p->valid, NU);
}

static gr_model *make(const char **kv, int n)
{
    gr_params p = {kv, n};
    gr_model *m = gr_sasrec_create(&p);
    if (!m) fprintf(stderr, "create: %s\n", gr_error_message());
    return m;
}

static planted P;

static void test_learns_planted_pattern(void)
{
    planted_build(&P, 7);
    const char *kv[] = {"sasrec.dim=32", "sasrec.max_len=24", "sasrec.epochs=40", "sasrec.batch=32",
                        "sasrec.dropout=0.1", "sasrec.lr=0.005", "sasrec.patience=3"};
    gr_model *m = make(kv, 7);
    REQUIRE(m);
    gr_fit_ctx ctx = {validate_hr1, &P, 1, getenv("GENREC_TEST_VERBOSE") != NULL};
    float dummy[NI];
    CHECK_EQ_INT(m->ops->score(m, P.test, 1, dummy), GR_ERR); /* not fitted */
    CHECK_HAS(gr_error_message(), "before fit");
    REQUIRE(m->ops->fit(m, &P.s, &ctx) == GR_OK);
    CHECK_EQ_INT(m->n_items, NI);
    double h = hr1(m, P.test, NU);
    printf("  planted pattern: test HR@1 = %.3f\n", h);
    CHECK(h >= 0.95);
    /* packing: scoring all queries at once (several packed batches, since
     * the model's batch is 32) equals scoring each query alone */
    float *all = malloc(sizeof(float) * NU * NI), one[NI];
    REQUIRE(m->ops->score(m, P.test, NU, all) == GR_OK);
    double worst = 0;
    for (int i = 0; i < NU; i += 7) {
        REQUIRE(m->ops->score(m, &P.test[i], 1, one) == GR_OK);
        for (int v = 0; v < NI; v++) worst = fmax(worst, fabs(one[v] - all[(size_t)i * NI + v]));
    }
    CHECK(worst < 1e-4);
    free(all);
    /* an empty history scores all zeros */
    gr_query empty = {0, 3, 0, NULL, 0, NULL, 0};
    float row[NI];
    REQUIRE(m->ops->score(m, &empty, 1, row) == GR_OK);
    for (int v = 0; v < NI; v++) CHECK(row[v] == 0.0f);
    /* ... also in the middle of a batch, without shifting the other rows */
    gr_query mixed[3] = {P.test[5], empty, P.test[6]};
    float three[3 * NI], a[NI], b[NI];
    REQUIRE(m->ops->score(m, mixed, 3, three) == GR_OK);
    REQUIRE(m->ops->score(m, &P.test[5], 1, a) == GR_OK);
    REQUIRE(m->ops->score(m, &P.test[6], 1, b) == GR_OK);
    for (int v = 0; v < NI; v++) {
        CHECK_NEAR(three[v], a[v], 1e-4);
        CHECK(three[NI + v] == 0.0f);
        CHECK_NEAR(three[2 * NI + v], b[v], 1e-4);
    }
    gr_model_free(m);
    /* the same model untrained (0 epochs) does not find the pattern */
    const char *kv0[] = {"sasrec.dim=32", "sasrec.max_len=24", "sasrec.epochs=0"};
    m = make(kv0, 3);
    REQUIRE(m);
    REQUIRE(m->ops->fit(m, &P.s, &ctx) == GR_OK);
    h = hr1(m, P.test, NU);
    printf("  untrained: test HR@1 = %.3f\n", h);
    CHECK(h < 0.3);
    gr_model_free(m);
}

/* Same seed and thread count -> identical scores (1 and 2 threads); another
 * seed -> different scores. */
static void test_deterministic(void)
{
    planted_build(&P, 8);
    const char *kv[] = {"sasrec.dim=16", "sasrec.max_len=16", "sasrec.epochs=2", "sasrec.batch=40"};
    float *a = malloc(sizeof(float) * NU * NI), *b = malloc(sizeof(float) * NU * NI);
    for (int threads = 1; threads <= 2; threads++) {
        gr_threads_set(threads);
        for (int run = 0; run < 3; run++) {
            gr_model *m = make(kv, 4);
            REQUIRE(m);
            gr_fit_ctx ctx = {NULL, NULL, run == 2 ? 6 : 5, 0}; /* run 2: another seed */
            REQUIRE(m->ops->fit(m, &P.s, &ctx) == GR_OK);
            REQUIRE(m->ops->score(m, P.test, NU, run == 0 ? a : b) == GR_OK);
            if (run == 1) CHECK(memcmp(a, b, sizeof(float) * NU * NI) == 0);
            if (run == 2) CHECK(memcmp(a, b, sizeof(float) * NU * NI) != 0);
            gr_model_free(m);
        }
    }
    gr_threads_set(1);
    free(a);
    free(b);
}

/* validate() returns a scripted curve and keeps a copy of the scores at each
 * evaluation, so the test can check which epoch's parameters were restored. */
typedef struct scripted {
    int calls;
    float scores[16][4 * NI];
} scripted;
static scripted S;
static const double curve[] = {0.10, 0.30, 0.20, 0.25, 0.28, 0.90, 0.95};

static double validate_scripted(gr_fit_ctx *ctx, gr_model *m)
{
    (void)ctx;
    if (S.calls >= 16) return -1;
    if (m->ops->score(m, P.test, 4, S.scores[S.calls]) != GR_OK) return -1;
    return curve[S.calls++];
}

static void test_early_stopping_restores_best(void)
{
    planted_build(&P, 9);
    const char *kv[] = {"sasrec.dim=16", "sasrec.max_len=16", "sasrec.epochs=50", "sasrec.batch=32",
                        "sasrec.patience=3"};
    gr_model *m = make(kv, 5);
    REQUIRE(m);
    memset(&S, 0, sizeof S);
    gr_fit_ctx ctx = {validate_scripted, NULL, 3, 0};
    REQUIRE(m->ops->fit(m, &P.s, &ctx) == GR_OK);
    /* best at evaluation 2; three evaluations without improvement -> stop after 5 */
    CHECK_EQ_INT(S.calls, 5);
    float now[4 * NI];
    REQUIRE(m->ops->score(m, P.test, 4, now) == GR_OK);
    CHECK(memcmp(now, S.scores[1], sizeof now) == 0);
    CHECK(memcmp(now, S.scores[4], sizeof now) != 0);
    gr_model_free(m);

    /* eval_every = 2: evaluations after epochs 2, 4, ... and the last one */
    const char *kv2[] = {"sasrec.dim=16", "sasrec.max_len=16", "sasrec.epochs=5", "sasrec.batch=32",
                         "sasrec.eval_every=2", "sasrec.patience=10"};
    m = make(kv2, 6);
    REQUIRE(m);
    memset(&S, 0, sizeof S);
    REQUIRE(m->ops->fit(m, &P.s, &ctx) == GR_OK);
    CHECK_EQ_INT(S.calls, 3); /* epochs 2, 4, 5 */
    gr_model_free(m);

    /* a failing validate() fails fit with a message */
    const char *kv3[] = {"sasrec.dim=16", "sasrec.max_len=16", "sasrec.epochs=40", "sasrec.patience=100"};
    m = make(kv3, 4);
    REQUIRE(m);
    memset(&S, 0, sizeof S);
    S.calls = 16;
    CHECK_EQ_INT(m->ops->fit(m, &P.s, &ctx), GR_ERR);
    CHECK_HAS(gr_error_message(), "validation after epoch 1");
    gr_model_free(m);
}

static void test_sampled_losses_learn(void)
{
    planted_build(&P, 10);
    const char *kv[] = {"sasrec.dim=32", "sasrec.max_len=24", "sasrec.epochs=30", "sasrec.batch=32",
                        "sasrec.dropout=0.1", "sasrec.lr=0.005", "sasrec.loss=sampled", "sasrec.negatives=16",
                        "sasrec.patience=3"};
    gr_model *m = make(kv, 9);
    REQUIRE(m);
    gr_fit_ctx ctx = {validate_hr1, &P, 1, 0};
    REQUIRE(m->ops->fit(m, &P.s, &ctx) == GR_OK);
    double h = hr1(m, P.test, NU);
    printf("  sampled softmax (16 negatives): test HR@1 = %.3f\n", h);
    CHECK(h >= 0.9);
    gr_model_free(m);
    kv[6] = "sasrec.loss=cosine";
    m = make(kv, 9);
    REQUIRE(m);
    REQUIRE(m->ops->fit(m, &P.s, &ctx) == GR_OK);
    h = hr1(m, P.test, NU);
    printf("  cosine sampled softmax (tau 0.05): test HR@1 = %.3f\n", h);
    CHECK(h >= 0.9);
    gr_model_free(m);
}

static void test_bad_params(void)
{
    const char *bad1[] = {"sasrec.dimm=3"};
    gr_params p = {bad1, 1};
    CHECK(gr_sasrec_create(&p) == NULL);
    CHECK_HAS(gr_error_message(), "sasrec.dimm");
    const char *bad2[] = {"sasrec.loss=bpr"};
    p.kv = bad2;
    CHECK(gr_sasrec_create(&p) == NULL);
    CHECK_HAS(gr_error_message(), "sasrec.loss");
    const char *bad3[] = {"sasrec.dim=30", "sasrec.heads=4"};
    p.kv = bad3;
    p.n = 2;
    CHECK(gr_sasrec_create(&p) == NULL);
    CHECK_HAS(gr_error_message(), "sasrec.heads");
    const char *bad4[] = {"sasrec.dropout=1.5"};
    p.kv = bad4;
    p.n = 1;
    CHECK(gr_sasrec_create(&p) == NULL);
    CHECK_HAS(gr_error_message(), "sasrec.dropout");
    gr_model *m = gr_sasrec_create(NULL);
    CHECK(m != NULL);
    gr_model_free(m);
}

int main(void)
{
    /* one thread: the learning tests stay fast on a loaded 2-core machine;
     * test_deterministic also runs the 2-thread paths */
    gr_threads_set(1);
    GR_RUN(test_learns_planted_pattern);
    GR_RUN(test_deterministic);
    GR_RUN(test_early_stopping_restores_best);
    GR_RUN(test_sampled_losses_learn);
    GR_RUN(test_bad_params);
    return gr_test_finish();
}
