/* Pop: training counts, one row per query, parameter checking. */
#include "gr_test.h"
#include "genrec/common.h"
#include "genrec/eval.h"
#include "genrec/model.h"

static void model_free(gr_model *m)
{
    if (!m) return;
    m->ops->destroy(m);
    gr_free(m);
}

static void test_pop_counts(void)
{
    /* 3 users, 6 items; item 2 appears 5x, item 0 2x, items 1/3 once, 4/5 never */
    int64_t off[4] = {0, 3, 5, 9};
    int32_t items[9] = {2, 0, 2, /**/ 1, 2, /**/ 0, 3, 2, 2};
    int64_t times[9] = {0};
    gr_split s = {.protocol = GR_PROTOCOL_LOO, .n_users = 3, .n_items = 6,
                  .train_off = off, .train_item = items, .train_time = times};
    gr_model *m = gr_pop_create(NULL);
    REQUIRE(m);
    CHECK_STR(m->ops->name, "pop");
    gr_query q[2] = {{.user = 0, .target = 4}, {.user = 7, .target = 5}};
    float sc[12];
    CHECK_EQ_INT(m->ops->score(m, q, 1, sc), GR_ERR); /* before fit */
    CHECK_HAS(gr_error_message(), "before fit");
    REQUIRE(m->ops->fit(m, &s, NULL) == GR_OK);
    CHECK_EQ_INT(m->n_items, 6);
    REQUIRE(m->ops->score(m, q, 2, sc) == GR_OK);
    const float want[6] = {2, 1, 5, 1, 0, 0};
    for (int r = 0; r < 2; r++)
        for (int i = 0; i < 6; i++) CHECK_NEAR(sc[r * 6 + i], want[i], 0);
    /* ranking: item 2 > item 0 > items 1, 3 (tie) > 4, 5 */
    CHECK(sc[2] > sc[0] && sc[0] > sc[1] && sc[1] == sc[3] && sc[3] > sc[4]);
    model_free(m);

    /* a bad item id in training data is an error naming it */
    items[4] = 6;
    m = gr_pop_create(NULL);
    REQUIRE(m);
    CHECK_EQ_INT(m->ops->fit(m, &s, NULL), GR_ERR);
    CHECK_HAS(gr_error_message(), "item id 6");
    model_free(m);
}

static void test_pop_params(void)
{
    const char *kv[] = {"bprmf.dim=8", "pop.window=3"};
    gr_params p = {kv, 1};
    gr_model *m = gr_pop_create(&p); /* other models' keys are not Pop's business */
    CHECK(m != NULL);
    model_free(m);
    p.n = 2;
    CHECK(gr_pop_create(&p) == NULL);
    CHECK_HAS(gr_error_message(), "pop.window");
}

/* Real data: Pop on ml-100k leave-one-out through the shared evaluator; its
 * scores are exactly the training counts recomputed here from the split. */
static void test_pop_ml100k(void)
{
    const char *path = gr_test_shared("data/ml-100k");
    if (!path) { gr_test_skip("../shared/data/ml-100k not found"); return; }
    gr_load_opts lo = gr_load_opts_default();
    gr_dataset *d = gr_dataset_load(path, &lo);
    REQUIRE(d);
    gr_split_opts so = gr_split_opts_default(GR_PROTOCOL_LOO);
    gr_split *s = gr_split_build(d, &so);
    REQUIRE(s);
    gr_model *m = gr_pop_create(NULL);
    REQUIRE(m);
    REQUIRE(m->ops->fit(m, s, NULL) == GR_OK);
    float *row = gr_alloc((size_t)s->n_items, sizeof *row);
    int64_t *cnt = gr_calloc((size_t)s->n_items, sizeof *cnt);
    REQUIRE(row && cnt);
    for (int64_t k = 0; k < s->train_off[s->n_users]; k++) cnt[s->train_item[k]]++;
    REQUIRE(m->ops->score(m, s->test, 1, row) == GR_OK);
    int bad = 0;
    for (int32_t i = 0; i < s->n_items; i++) bad += row[i] != (float)cnt[i];
    CHECK_EQ_INT(bad, 0);
    gr_metrics mt;
    gr_metrics_init(&mt);
    REQUIRE(gr_eval_queries(m, s, s->test, s->n_test, NULL, &mt) == GR_OK);
    printf("  ml-100k loo pop: test NDCG@10 %.4f HR@10 %.4f (n %lld)\n", mt.ndcg[2], mt.hr[2], (long long)mt.n);
    CHECK(mt.ndcg[2] > 0.02 && mt.ndcg[2] < 0.08); /* random would be ~0.003 */
    gr_free(row);
    gr_free(cnt);
    model_free(m);
    gr_split_free(s);
    gr_dataset_free(d);
}

int main(void)
{
    GR_RUN(test_pop_counts);
    GR_RUN(test_pop_params);
    GR_RUN(test_pop_ml100k);
    return gr_test_finish();
}
