/* BPR-MF: finite-difference gradient check, exact negative sampling, a
 * planted block structure, early stopping with best-parameter restore,
 * determinism across thread counts, cold users, parameter errors. */
#include <stdlib.h>

#include "gr_test.h"
#include "genrec/common.h"
#include "genrec/eval.h"
#include "genrec/model.h"
#include "genrec/rng.h"
#include "models/bprmf_internal.h"

static void model_free(gr_model *m)
{
    if (!m) return;
    m->ops->destroy(m);
    gr_free(m);
}

/* ---- gradient ------------------------------------------------------------- */

enum { FU = 3, FI = 5, FD = 4, FT = 7 };

static void test_bprmf_gradcheck(void)
{
    float P[FU * FD], Q[FI * FD], B[FI];
    gr_rng r;
    gr_rng_seed(&r, 11);
    for (int k = 0; k < FU * FD; k++) P[k] = (float)gr_rng_normal(&r);
    for (int k = 0; k < FI * FD; k++) Q[k] = (float)gr_rng_normal(&r);
    for (int k = 0; k < FI; k++) B[k] = (float)(0.5 * gr_rng_normal(&r));
    /* repeated users/items, and one triple without a negative (skipped) */
    int32_t u[FT] = {0, 1, 2, 0, 1, 2, 0}, i[FT] = {1, 1, 3, 4, 0, 2, 2}, j[FT] = {0, 2, 4, 1, 3, -1, 0};
    const float reg = 0.05f;
    float gP[FU * FD] = {0}, gQ[FI * FD] = {0}, gB[FI] = {0}, buf[FT * (3 * FD + 2)];
    float dP[FU * FD], dQ[FI * FD], dB[FI];
    double L = bprmf_batch_loss_grad(FD, P, Q, B, u, i, j, FT, reg, gP, gQ, gB, buf);

    /* reference loss in double */
    double ref = 0;
    for (int t = 0; t < FT; t++) {
        if (j[t] < 0) continue;
        double x = B[i[t]] - B[j[t]], sq = B[i[t]] * B[i[t]] + B[j[t]] * B[j[t]];
        for (int d = 0; d < FD; d++) {
            double p = P[u[t] * FD + d], a = Q[i[t] * FD + d], b = Q[j[t] * FD + d];
            x += p * (a - b);
            sq += p * p + a * a + b * b;
        }
        ref += log1p(exp(-x)) + 0.5 * reg * sq;
    }
    CHECK_REL(L, ref / FT, 1e-5);

    /* central differences on every parameter */
    float *sets[3] = {P, Q, B}, *grads[3] = {gP, gQ, gB};
    int sizes[3] = {FU * FD, FI * FD, FI};
    double worst = 0;
    for (int s = 0; s < 3; s++)
        for (int k = 0; k < sizes[s]; k++) {
            float old = sets[s][k];
            const float h = 1e-2f;
            sets[s][k] = old + h;
            double lp = bprmf_batch_loss_grad(FD, P, Q, B, u, i, j, FT, reg, dP, dQ, dB, buf);
            sets[s][k] = old - h;
            double lm = bprmf_batch_loss_grad(FD, P, Q, B, u, i, j, FT, reg, dP, dQ, dB, buf);
            sets[s][k] = old;
            double num = (lp - lm) / (2 * h), err = fabs(num - grads[s][k]) / fmax(1e-2, fabs(num));
            if (err > worst) worst = err;
            CHECK_NEAR(grads[s][k], num, 2e-3 * fmax(1.0, fabs(num)));
        }
    printf("  gradcheck: worst relative error %.2e\n", worst);
    /* gradients accumulate */
    float g2P[FU * FD];
    memcpy(g2P, gP, sizeof g2P);
    bprmf_batch_loss_grad(FD, P, Q, B, u, i, j, FT, reg, gP, gQ, gB, buf);
    for (int k = 0; k < FU * FD; k++) CHECK_NEAR(gP[k], 2 * g2P[k], 1e-6);
    /* item 4 only appears as a negative of triple 2 and positive of triple 3 */
    CHECK(gQ[4 * FD] != 0);
}

static void test_bprmf_negatives(void)
{
    gr_rng r;
    gr_rng_seed(&r, 5);
    const int32_t seen[5] = {0, 3, 4, 5, 9}; /* unseen: 1 2 6 7 8 */
    int hist[10] = {0};
    for (int k = 0; k < 50000; k++) {
        int32_t j = bprmf_sample_negative(&r, 10, seen, 5);
        REQUIRE(j >= 0 && j < 10);
        hist[j]++;
    }
    for (int k = 0; k < 5; k++) CHECK_EQ_INT(hist[seen[k]], 0);
    const int unseen[5] = {1, 2, 6, 7, 8};
    for (int k = 0; k < 5; k++) CHECK(abs(hist[unseen[k]] - 10000) < 500);
    const int32_t all[3] = {0, 1, 2};
    CHECK_EQ_INT(bprmf_sample_negative(&r, 3, all, 3), -1);
    CHECK_EQ_INT(bprmf_sample_negative(&r, 4, all, 3), 3);
    CHECK(bprmf_sample_negative(&r, 4, NULL, 0) >= 0);
}

/* ---- synthetic splits --------------------------------------------------------- */

typedef struct synth {
    gr_split s;
    int64_t *off;
    int32_t *item;
    int64_t *time;
} synth;

static void synth_free(synth *y)
{
    free(y->off); free(y->item); free(y->time);
}

/* Two groups: user u < nu/2 likes items < ni/2, the rest the others. Each
 * user gets per_user distinct random in-group items (user 0 optionally none). */
static void synth_block(synth *y, int nu, int ni, int per_user, uint64_t seed, int cold_user0)
{
    gr_rng r;
    gr_rng_seed(&r, seed);
    y->off = calloc((size_t)nu + 1, sizeof *y->off);
    y->item = calloc((size_t)nu * per_user + 1, sizeof *y->item);
    y->time = calloc((size_t)nu * per_user + 1, sizeof *y->time);
    int half = ni / 2;
    int32_t *pool = malloc((size_t)half * sizeof *pool);
    int64_t n = 0;
    for (int u = 0; u < nu; u++) {
        y->off[u] = n;
        if (!(cold_user0 && u == 0)) {
            int base = u < nu / 2 ? 0 : half;
            for (int k = 0; k < half; k++) pool[k] = base + k;
            gr_rng_shuffle_i32(&r, pool, half);
            for (int k = 0; k < per_user; k++) { y->item[n] = pool[k]; y->time[n] = n; n++; }
        }
    }
    y->off[nu] = n;
    free(pool);
    y->s = (gr_split){.protocol = GR_PROTOCOL_LOO, .n_users = nu, .n_items = ni,
                      .train_off = y->off, .train_item = y->item, .train_time = y->time};
}

static int in_train(const synth *y, int u, int i)
{
    for (int64_t k = y->off[u]; k < y->off[u + 1]; k++)
        if (y->item[k] == i) return 1;
    return 0;
}

static void test_bprmf_blocks(void)
{
    enum { NU = 80, NI = 40 };
    synth y;
    synth_block(&y, NU, NI, 8, 1, 0);
    const char *kv[] = {"bprmf.dim=4", "bprmf.epochs=60", "bprmf.batch=64", "bprmf.lr=0.01"};
    gr_params p = {kv, 4};
    gr_model *m = gr_bprmf_create(&p);
    REQUIRE(m);
    CHECK_STR(m->ops->name, "bprmf");
    gr_fit_ctx ctx = {.seed = 42};
    double t0 = gr_time_now();
    REQUIRE(m->ops->fit(m, &y.s, &ctx) == GR_OK);
    double dt = gr_time_now() - t0;
    gr_query q[NU];
    for (int u = 0; u < NU; u++) q[u] = (gr_query){.user = u};
    static float sc[NU * NI];
    REQUIRE(m->ops->score(m, q, NU, sc) == GR_OK);
    int good_users = 0;
    double auc_sum = 0;
    for (int u = 0; u < NU; u++) {
        int base = u < NU / 2 ? 0 : NI / 2;
        double ok = 0, tot = 0;
        for (int i = base; i < base + NI / 2; i++) {
            if (in_train(&y, u, i)) continue;
            for (int o = 0; o < NI; o++) {
                if (o >= base && o < base + NI / 2) continue;
                ok += sc[u * NI + i] > sc[u * NI + o];
                tot++;
            }
        }
        auc_sum += ok / tot;
        good_users += ok / tot > 0.95;
    }
    printf("  blocks: mean in-group AUC %.4f, %d/%d users > 0.95 (%.2fs)\n", auc_sum / NU, good_users, NU, dt);
    CHECK(auc_sum / NU > 0.98);
    CHECK(good_users >= NU * 9 / 10);
    model_free(m);
    synth_free(&y);
}

/* A scripted validation curve: 0.1, 0.3 (best), 0.2, 0.25, 0.2, ...; records
 * user 1's score row at every call. */
typedef struct script { int calls; float rows[16][20]; } script;

static double scripted_validate(gr_fit_ctx *ctx, gr_model *m)
{
    script *sc = ctx->eval_state;
    static const double curve[] = {0.1, 0.3, 0.2, 0.25, 0.2, 0.2, 0.2, 0.2};
    gr_query q = {.user = 1};
    if (sc->calls >= 16 || m->ops->score(m, &q, 1, sc->rows[sc->calls]) != GR_OK) return -1;
    return curve[sc->calls++ % 8];
}

static double failing_validate(gr_fit_ctx *ctx, gr_model *m)
{
    (void)ctx; (void)m;
    gr_errorf("eval exploded");
    return -1;
}

static void test_bprmf_early_stop(void)
{
    synth y;
    synth_block(&y, 20, 20, 4, 2, 0);
    const char *kv[] = {"bprmf.dim=8", "bprmf.epochs=100", "bprmf.eval_every=3", "bprmf.patience=3",
                        "bprmf.batch=16"};
    gr_params p = {kv, 5};
    gr_model *m = gr_bprmf_create(&p);
    REQUIRE(m);
    script st = {0};
    gr_fit_ctx ctx = {.validate = scripted_validate, .eval_state = &st, .seed = 1};
    REQUIRE(m->ops->fit(m, &y.s, &ctx) == GR_OK);
    /* best at call 2; three non-improving calls (3, 4, 5) stop training */
    CHECK_EQ_INT(st.calls, 5);
    float now[20];
    gr_query q = {.user = 1};
    REQUIRE(m->ops->score(m, &q, 1, now) == GR_OK);
    for (int i = 0; i < 20; i++) CHECK_NEAR(now[i], st.rows[1][i], 0);
    int differs = 0;
    for (int i = 0; i < 20; i++) differs += now[i] != st.rows[4][i];
    CHECK(differs > 0);
    model_free(m);

    /* a failing validation aborts fit with the evaluator's message */
    m = gr_bprmf_create(&p);
    REQUIRE(m);
    ctx.validate = failing_validate;
    CHECK_EQ_INT(m->ops->fit(m, &y.s, &ctx), GR_ERR);
    CHECK_HAS(gr_error_message(), "eval exploded");
    model_free(m);
    synth_free(&y);
}

/* Big enough batches that every OpenMP region (sampling, gradients, Adam
 * rows: >= BPRMF_PAR_MIN = 2^18 floats) runs in parallel: 8192 triples x 128
 * and ~3500 touched rows x 128 per batch. */
static const char *det_kv[] = {"bprmf.dim=128", "bprmf.epochs=3", "bprmf.batch=4096", "bprmf.neg=2"};

static void fit_scores(const synth *y, int threads, uint64_t seed, float *out, int nq)
{
    const char **kv = det_kv;
    gr_params p = {kv, 4};
    gr_threads_set(threads);
    gr_model *m = gr_bprmf_create(&p);
    if (!m) return;
    gr_fit_ctx ctx = {.seed = seed};
    gr_query *q = calloc((size_t)nq, sizeof *q);
    for (int u = 0; u < nq; u++) q[u].user = u;
    if (m->ops->fit(m, &y->s, &ctx) != GR_OK || m->ops->score(m, q, nq, out) != GR_OK)
        memset(out, 0, (size_t)nq * (size_t)y->s.n_items * sizeof *out);
    free(q);
    model_free(m);
    gr_threads_set(0);
}

static void test_bprmf_determinism(void)
{
    enum { NU = 3000, NI = 1200, NQ = 300 };
    synth y;
    synth_block(&y, NU, NI, 3, 3, 1); /* user 0 has no training data */
    static float a[NQ * NI], b[NQ * NI], c[NQ * NI];
    fit_scores(&y, 1, 7, a, NQ);
    fit_scores(&y, 2, 7, b, NQ);
    fit_scores(&y, 1, 8, c, NQ);
    int diff_threads = 0, diff_seed = 0;
    for (int k = 0; k < NQ * NI; k++) {
        diff_threads += a[k] != b[k];
        diff_seed += a[k] != c[k];
    }
    CHECK_EQ_INT(diff_threads, 0);
    CHECK(diff_seed > NQ * NI / 2);
    /* cold user 0 and an unknown user id both get the item-bias row */
    gr_threads_set(1);
    gr_params p = {det_kv, 4};
    gr_model *m = gr_bprmf_create(&p);
    REQUIRE(m);
    gr_fit_ctx ctx = {.seed = 7};
    REQUIRE(m->ops->fit(m, &y.s, &ctx) == GR_OK);
    gr_query q[3] = {{.user = 0}, {.user = 123456}, {.user = -1}};
    static float r[3 * NI];
    REQUIRE(m->ops->score(m, q, 3, r) == GR_OK);
    int same = 0, nonzero = 0;
    for (int i = 0; i < NI; i++) {
        same += r[i] == r[NI + i] && r[i] == r[2 * NI + i];
        nonzero += r[i] != 0;
    }
    CHECK_EQ_INT(same, NI);
    CHECK(nonzero > NI / 2);
    for (int i = 0; i < NI; i++) CHECK_NEAR(r[i], a[i], 0); /* row 0 of the 1-thread run */
    model_free(m);
    gr_threads_set(0);
    synth_free(&y);
}

static void test_bprmf_params(void)
{
    const char *kv[] = {"bprmf.dims=3"};
    gr_params p = {kv, 1};
    CHECK(gr_bprmf_create(&p) == NULL);
    CHECK_HAS(gr_error_message(), "bprmf.dims");
    const char *kv2[] = {"bprmf.lr=-1"};
    p = (gr_params){kv2, 1};
    CHECK(gr_bprmf_create(&p) == NULL);
    CHECK_HAS(gr_error_message(), "bprmf.lr");
    const char *kv3[] = {"bprmf.dim=x"};
    p = (gr_params){kv3, 1};
    CHECK(gr_bprmf_create(&p) == NULL);
    CHECK_HAS(gr_error_message(), "bprmf.dim");
    gr_model *m = gr_bprmf_create(NULL);
    REQUIRE(m);
    gr_query q = {0};
    float s[4];
    CHECK_EQ_INT(m->ops->score(m, &q, 1, s), GR_ERR);
    /* epochs=0: no training, still scores (random factors, zero bias) */
    model_free(m);
    const char *kv4[] = {"bprmf.epochs=0", "bprmf.dim=2"};
    p = (gr_params){kv4, 2};
    m = gr_bprmf_create(&p);
    REQUIRE(m);
    synth y;
    synth_block(&y, 4, 4, 2, 1, 0);
    gr_fit_ctx ctx = {0};
    CHECK_EQ_INT(m->ops->fit(m, &y.s, &ctx), GR_OK);
    CHECK_EQ_INT(m->ops->score(m, &q, 1, s), GR_OK);
    y.item[0] = 4; /* out of range */
    CHECK_EQ_INT(m->ops->fit(m, &y.s, &ctx), GR_ERR);
    CHECK_HAS(gr_error_message(), "item id 4");
    model_free(m);
    synth_free(&y);
}

/* Real data: a few epochs on ml-100k (leave-one-out) already beat Pop on
 * validation NDCG@10 (about 0.047 vs 0.035). */
static void test_bprmf_ml100k(void)
{
    const char *path = gr_test_shared("data/ml-100k");
    if (!path) { gr_test_skip("../shared/data/ml-100k not found"); return; }
    gr_load_opts lo = gr_load_opts_default();
    gr_dataset *d = gr_dataset_load(path, &lo);
    REQUIRE(d);
    gr_split_opts so = gr_split_opts_default(GR_PROTOCOL_LOO);
    gr_split *s = gr_split_build(d, &so);
    REQUIRE(s);
    const char *kv[] = {"bprmf.epochs=4"};
    gr_params p = {kv, 1};
    gr_model *bpr = gr_bprmf_create(&p), *pop = gr_pop_create(NULL);
    REQUIRE(bpr && pop);
    gr_fit_ctx ctx = {.seed = 42};
    /* one thread: on a busy shared machine spinning OpenMP barriers per
     * mini-batch cost more than they save (results are the same anyway) */
    gr_threads_set(1);
    double t0 = gr_time_now();
    int rc = bpr->ops->fit(bpr, s, &ctx);
    double t1 = gr_time_now();
    gr_threads_set(0);
    REQUIRE(rc == GR_OK);
    REQUIRE(pop->ops->fit(pop, s, &ctx) == GR_OK);
    gr_metrics mb, mp;
    gr_metrics_init(&mb);
    gr_metrics_init(&mp);
    REQUIRE(gr_eval_queries(bpr, s, s->valid, s->n_valid, NULL, &mb) == GR_OK);
    REQUIRE(gr_eval_queries(pop, s, s->valid, s->n_valid, NULL, &mp) == GR_OK);
    printf("  ml-100k loo valid NDCG@10: bprmf (4 epochs, %.2fs) %.4f, pop %.4f\n", t1 - t0, mb.ndcg[2],
           mp.ndcg[2]);
    CHECK(mb.ndcg[2] > mp.ndcg[2] * 1.15);
    CHECK(mb.hr[2] > mp.hr[2]);
    model_free(bpr);
    model_free(pop);
    gr_split_free(s);
    gr_dataset_free(d);
}

int main(void)
{
    GR_RUN(test_bprmf_gradcheck);
    GR_RUN(test_bprmf_negatives);
    GR_RUN(test_bprmf_blocks);
    GR_RUN(test_bprmf_early_stop);
    GR_RUN(test_bprmf_determinism);
    GR_RUN(test_bprmf_params);
    GR_RUN(test_bprmf_ml100k);
    return gr_test_finish();
}
