/* The "gen" recommender end to end on a small synthetic world: it trains,
 * early-stops on validation through the real decoder, ranks only real items
 * (at most `beams` of them, every other item -inf), beats popularity on
 * test NDCG@10, and is deterministic for a seed; bad parameters are errors. */
#include "gr_test.h"
#include "genrec/eval.h"
#include "genrec/model.h"
#include "genrec/synth.h"

#include <stdlib.h>

static gr_dataset *world(void)
{
    gr_synth_opts so = gr_synth_opts_default();
    so.n_users = 300;
    so.n_items = 120;
    so.per_user = 25;
    so.seed = 5;
    gr_synth_world *w = gr_synth_generate(&so);
    if (!w) return NULL;
    gr_dataset *d = gr_synth_to_dataset(w);
    gr_synth_free(w);
    return d;
}

static const char *kv[] = {"gen.dim=32", "gen.layers=1", "gen.heads=2", "gen.ctx=96", "gen.epochs=10",
                           "gen.round_steps=0", "gen.patience=3", "gen.beams=10", "gen.batch=1024", "gen.lr=5e-3", "gen.vocab=384"};

static const char *kv_sid[] = {"gen-sid.dim=32", "gen-sid.layers=1", "gen-sid.heads=2", "gen-sid.ctx=96",
                               "gen-sid.epochs=10", "gen-sid.round_steps=0", "gen-sid.patience=3", "gen-sid.beams=10",
                               "gen-sid.batch=1024", "gen-sid.lr=5e-3", "gen-sid.sid_dim=16"};

static char saved[1024]; /* the first gen model, for the decoding variants (gen.load) */

static void run_model(const char *name, const char **kvs, int nkv, const gr_split *s, gr_eval_result *r,
                      float *scores_out, const char *save_path)
{
    gr_params p = {kvs, nkv};
    gr_model *m = gr_model_create(name, &p);
    if (!m) fprintf(stderr, "error: %s\n", gr_error_message());
    REQUIRE(m);
    CHECK_EQ_INT(m->max_k, 10);
    gr_eval_opts eo = gr_eval_opts_default();
    if (gr_eval_run_model(m, name, s, &eo, 7, 0, r) != GR_OK) fprintf(stderr, "error: %s\n", gr_error_message());
    CHECK_NEAR(r->invalid_rate, 0.0, 0.0); /* constrained decoding returns real items only */
    /* scores of a few test queries: at most 10 finite, all of real items */
    int n = 8;
    REQUIRE(m->ops->score(m, s->test, n, scores_out) == GR_OK);
    for (int q = 0; q < n; q++) {
        int finite = 0;
        for (int32_t i = 0; i < s->n_items; i++) finite += isfinite(scores_out[(int64_t)q * s->n_items + i]);
        CHECK(finite >= 1 && finite <= 10);
    }
    if (save_path) CHECK(gr_model_save(m, s, save_path) == GR_OK);
    gr_model_free(m);
}

static void run(const gr_split *s, gr_eval_result *r, float *scores_out, int save)
{
    run_model("gen", kv, (int)(sizeof kv / sizeof kv[0]), s, r, scores_out, save ? saved : NULL);
}

static void test_gen_end_to_end(void)
{
    gr_dataset *d = world();
    REQUIRE(d);
    gr_split *s = gr_split_build(d, NULL);
    REQUIRE(s);
    float *sc1 = malloc(sizeof(float) * 8 * (size_t)s->n_items), *sc2 = malloc(sizeof(float) * 8 * (size_t)s->n_items);
    gr_eval_result r1, r2, rp;
    snprintf(saved, sizeof saved, "%s/gen.gguf", gr_test_tmpdir());
    run(s, &r1, sc1, 1);
    run(s, &r2, sc2, 0);
    /* deterministic for a seed and thread count */
    CHECK(memcmp(sc1, sc2, sizeof(float) * 8 * (size_t)s->n_items) == 0);
    CHECK_NEAR(r1.test.ndcg[2], r2.test.ndcg[2], 0.0);
    /* better than popularity */
    gr_model *pop = gr_model_create("pop", NULL);
    REQUIRE(pop);
    gr_eval_opts eo = gr_eval_opts_default();
    REQUIRE(gr_eval_run_model(pop, "pop", s, &eo, 7, 0, &rp) == GR_OK);
    printf("  gen test NDCG@10 %.4f (valid %.4f), pop %.4f\n", r1.test.ndcg[2], r1.valid_ndcg10, rp.test.ndcg[2]);
    CHECK(r1.test.ndcg[2] > rp.test.ndcg[2]);
    CHECK(r1.test.max_k == 10); /* metrics beyond the beams are undefined */
    /* semantic IDs: same stack, well above chance (10 of 120 items: ~0.04) */
    gr_eval_result rs;
    run_model("gen-sid", kv_sid, (int)(sizeof kv_sid / sizeof kv_sid[0]), s, &rs, sc1, NULL);
    printf("  gen-sid test NDCG@10 %.4f (valid %.4f)\n", rs.test.ndcg[2], rs.valid_ndcg10);
    CHECK(rs.test.ndcg[2] > 0.06);
    /* the assistant with g chosen on validation, on the saved model (no
     * retraining): at least as good on validation */
    char load[1100];
    snprintf(load, sizeof load, "gen.load=%s", saved);
    const char *kv_as[sizeof kv / sizeof kv[0] + 3];
    memcpy(kv_as, kv, sizeof kv);
    kv_as[sizeof kv / sizeof kv[0]] = "gen.assist=-1";
    kv_as[sizeof kv / sizeof kv[0] + 1] = "sasrec.epochs=20";
    kv_as[sizeof kv / sizeof kv[0] + 2] = load;
    gr_eval_result ra;
    run_model("gen", kv_as, (int)(sizeof kv_as / sizeof kv_as[0]), s, &ra, sc1, NULL);
    printf("  gen + assistant test NDCG@10 %.4f (valid %.4f)\n", ra.test.ndcg[2], ra.valid_ndcg10);
    CHECK(ra.valid_ndcg10 >= r1.valid_ndcg10 - 1e-9);
    gr_model_free(pop);
    free(sc1);
    free(sc2);
    gr_split_free(s);
    gr_dataset_free(d);
}

/* Grounded decoding: full ranking of real items (every score finite),
 * gamma chosen on validation, invalid_rate = share of free generations that
 * are not exactly an item. */
static void test_gen_ground(void)
{
    gr_dataset *d = world();
    REQUIRE(d);
    gr_split *s = gr_split_build(d, NULL);
    REQUIRE(s);
    char load[1100];
    snprintf(load, sizeof load, "gen.load=%s", saved);
    const char *kvg[sizeof kv / sizeof kv[0] + 3];
    memcpy(kvg, kv, sizeof kv);
    kvg[sizeof kv / sizeof kv[0]] = "gen.ground=1";
    kvg[sizeof kv / sizeof kv[0] + 1] = "gen.ground_pool=1";
    kvg[sizeof kv / sizeof kv[0] + 2] = load; /* the model of test_gen_end_to_end */
    gr_params p = {kvg, (int)(sizeof kvg / sizeof kvg[0])};
    gr_model *m = gr_model_create("gen", &p);
    REQUIRE(m);
    CHECK_EQ_INT(m->max_k, 0);
    gr_eval_opts eo = gr_eval_opts_default();
    gr_eval_result r;
    memset(&r, 0, sizeof r);
    if (gr_eval_run_model(m, "gen", s, &eo, 7, 0, &r) != GR_OK) fprintf(stderr, "error: %s\n", gr_error_message());
    REQUIRE(r.test.n > 0);
    printf("  gen + grounding test NDCG@10 %.4f, invalid %.3f\n", r.test.ndcg[2], r.invalid_rate);
    CHECK(r.invalid_rate >= 0.0 && r.invalid_rate <= 1.0);
    CHECK(r.test.max_k == 0 && r.test.ndcg[4] > 0.0); /* NDCG@50 exists */
    float *sc = malloc(sizeof(float) * 4 * (size_t)s->n_items);
    REQUIRE(sc);
    REQUIRE(m->ops->score(m, s->test, 4, sc) == GR_OK);
    for (int64_t i = 0; i < 4 * (int64_t)s->n_items; i++) CHECK(isfinite(sc[i]) && sc[i] <= 0.0f && sc[i] >= -1.0f);
    free(sc);
    gr_model_free(m);
    gr_split_free(s);
    gr_dataset_free(d);
}

static void test_gen_bad_params(void)
{
    const char *bad1[] = {"gen.beams=0"}, *bad2[] = {"gen.dim=30", "gen.heads=4"}, *bad3[] = {"gen.nope=1"};
    gr_params p1 = {bad1, 1}, p2 = {bad2, 2}, p3 = {bad3, 1};
    CHECK(gr_model_create("gen", &p1) == NULL);
    CHECK_HAS(gr_error_message(), "gen.beams");
    CHECK(gr_model_create("gen", &p2) == NULL);
    CHECK_HAS(gr_error_message(), "gen.heads");
    CHECK(gr_model_create("gen", &p3) == NULL);
    CHECK_HAS(gr_error_message(), "gen.nope");
    const char *bad4[] = {"gen-sid.sid_k=1"}, *bad5[] = {"gen.load="}, *bad6[] = {"gen-sid.sid_emb=3"};
    gr_params p4 = {bad4, 1}, p5 = {bad5, 1}, p6 = {bad6, 1};
    CHECK(gr_model_create("gen-sid", &p4) == NULL);
    CHECK_HAS(gr_error_message(), "sid_k");
    CHECK(gr_model_create("gen", &p5) == NULL);
    CHECK_HAS(gr_error_message(), "gen.load");
    CHECK(gr_model_create("gen-sid", &p6) == NULL);
    CHECK_HAS(gr_error_message(), "gen-sid.sid_emb");

    /* fit-time errors: a context too small for the longest title, a missing
     * model file to load; both leave the model unfitted, never crash */
    gr_dataset *d = world();
    REQUIRE(d);
    gr_split *s = gr_split_build(d, NULL);
    REQUIRE(s);
    const char *small[] = {"gen.ctx=16", "gen.vocab=300", "gen.epochs=1"};
    const char *missing[] = {"gen.load=/nonexistent/model.gguf"};
    gr_params ps = {small, 3}, pm = {missing, 1};
    gr_model *m = gr_model_create("gen", &ps);
    REQUIRE(m);
    CHECK(m->ops->fit(m, s, NULL) == GR_ERR);
    CHECK_HAS(gr_error_message(), "ctx (16)");
    float sc[256];
    CHECK(s->n_items <= 256 && m->ops->score(m, s->test, 1, sc) == GR_ERR);
    gr_model_free(m);
    m = gr_model_create("gen", &pm);
    REQUIRE(m);
    CHECK(m->ops->fit(m, s, NULL) == GR_ERR);
    CHECK_HAS(gr_error_message(), "/nonexistent/model.gguf");
    gr_model_free(m);
    gr_split_free(s);
    gr_dataset_free(d);
}

int main(void)
{
    GR_RUN(test_gen_end_to_end);
    GR_RUN(test_gen_ground);
    GR_RUN(test_gen_bad_params);
    return gr_test_finish();
}
