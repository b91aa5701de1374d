/* BM25: scores of a hand-tokenised example against the formula, fields,
 * year dropping, history cut, parameter errors. */
#include <stdlib.h>

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

enum { NI = 4 };
static char *title[NI] = {"The Matrix (1999)", "Matrix Reloaded, The (2003)", "Am\xc3\xa9lie (2001)",
                          "Toy Story (1995)"};
static char *genres[NI] = {"Action|Sci-Fi", "Action|Sci-Fi|Thriller", "Comedy|Romance",
                           "Animation|Children's|Comedy"};
static char *brand[NI] = {"", "", "", "PIXAR"};
static char *text[NI] = {"", "Neo returns.", "", ""};

/* The same documents tokenised by hand (lower-case ASCII, UTF-8 kept in
 * words, punctuation and '|' split). NULL-terminated. */
static const char *tok_title[NI][6] = {{"the", "matrix", "1999", NULL},
                                       {"matrix", "reloaded", "the", "2003", NULL},
                                       {"am\xc3\xa9lie", "2001", NULL},
                                       {"toy", "story", "1995", NULL}};
static const char *tok_genres[NI][6] = {{"action", "sci", "fi", NULL},
                                        {"action", "sci", "fi", "thriller", NULL},
                                        {"comedy", "romance", NULL},
                                        {"animation", "children", "s", "comedy", NULL}};
static const char *tok_brand[NI][2] = {{NULL}, {NULL}, {NULL}, {"pixar", NULL}};
static const char *tok_text[NI][3] = {{NULL}, {"neo", "returns", NULL}, {NULL}, {NULL}};

typedef struct doc { const char *w[256]; int n; } doc;

static int is_year(const char *w)
{
    return strlen(w) == 4 && w[0] >= '0' && w[0] <= '9' && w[1] >= '0' && w[1] <= '9' &&
           w[2] >= '0' && w[2] <= '9' && w[3] >= '0' && w[3] <= '9';
}

static void build_docs(doc *d, int use_title, int use_genres, int use_brand_text, int drop_year)
{
    for (int i = 0; i < NI; i++) {
        d[i].n = 0;
        for (int k = 0; use_title && tok_title[i][k]; k++)
            if (!(drop_year && is_year(tok_title[i][k]))) d[i].w[d[i].n++] = tok_title[i][k];
        for (int k = 0; use_genres && tok_genres[i][k]; k++) d[i].w[d[i].n++] = tok_genres[i][k];
        for (int k = 0; use_brand_text && tok_brand[i][k]; k++) d[i].w[d[i].n++] = tok_brand[i][k];
        for (int k = 0; use_brand_text && tok_text[i][k]; k++) d[i].w[d[i].n++] = tok_text[i][k];
    }
}

static int count(const doc *d, const char *w)
{
    int c = 0;
    for (int k = 0; k < d->n; k++) c += strcmp(d->w[k], w) == 0;
    return c;
}

/* Expected BM25 score of every item for the query = concatenated docs of hist. */
static void expected(const doc *d, const int32_t *hist, int nh, double k1, double b, double *out)
{
    doc q = {.n = 0};
    for (int h = 0; h < nh; h++)
        for (int k = 0; k < d[hist[h]].n; k++) q.w[q.n++] = d[hist[h]].w[k];
    double avgdl = 0;
    for (int i = 0; i < NI; i++) avgdl += d[i].n;
    avgdl /= NI;
    for (int i = 0; i < NI; i++) {
        out[i] = 0;
        for (int k = 0; k < q.n; k++) {
            int first = 1;
            for (int k2 = 0; k2 < k; k2++) first &= strcmp(q.w[k2], q.w[k]) != 0;
            if (!first) continue; /* each distinct query term once, weighted by qtf */
            const char *t = q.w[k];
            double qtf = count(&q, t), tf = count(&d[i], t), df = 0;
            if (tf == 0) continue;
            for (int j = 0; j < NI; j++) df += count(&d[j], t) > 0;
            double idf = log(1 + (NI - df + 0.5) / (df + 0.5));
            out[i] += qtf * idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * d[i].n / avgdl));
        }
    }
}

static gr_dataset data = {.name = "hand", .n_users = 1, .n_items = NI, .item_title = title,
                          .item_genres = genres, .item_brand = brand, .item_text = text};
static int64_t off[2] = {0, 0};
static gr_split split = {.data = &data, .n_users = 1, .n_items = NI, .train_off = off};

/* Fit a BM25 model with params kv and compare its scores for hist with the formula. */
static void check_case(const char **kv, int nkv, const int32_t *hist, int nh, double k1, double b,
                       int use_title, int use_genres, int use_bt, int drop_year, const int32_t *qhist, int nqh)
{
    gr_params p = {kv, nkv};
    gr_model *m = gr_bm25_create(&p);
    REQUIRE(m);
    REQUIRE(m->ops->fit(m, &split, NULL) == GR_OK);
    gr_query q = {.user = 0, .target = 0, .hist_len = nqh, .hist = qhist};
    float sc[NI];
    REQUIRE(m->ops->score(m, &q, 1, sc) == GR_OK);
    doc d[NI];
    build_docs(d, use_title, use_genres, use_bt, drop_year);
    double want[NI];
    expected(d, hist, nh, k1, b, want);
    for (int i = 0; i < NI; i++) CHECK_REL(sc[i], want[i], 1e-5);
    model_free(m);
}

static void test_bm25_formula(void)
{
    /* User saw The Matrix: sequel scores highest, Amélie/Toy Story zero. */
    int32_t h0[1] = {0};
    check_case(NULL, 0, h0, 1, 1.2, 0.75, 1, 1, 1, 0, h0, 1);
    gr_model *m = gr_bm25_create(NULL);
    REQUIRE(m);
    REQUIRE(m->ops->fit(m, &split, NULL) == GR_OK);
    gr_query q = {.user = 0, .hist_len = 1, .hist = h0};
    float sc[NI];
    REQUIRE(m->ops->score(m, &q, 1, sc) == GR_OK);
    CHECK(sc[0] > sc[1] && sc[1] > 0);
    CHECK_NEAR(sc[2], 0, 0);
    CHECK_NEAR(sc[3], 0, 0);
    model_free(m);

    /* Repeated history items weigh by query term frequency; other k1, b. */
    int32_t h1[3] = {0, 2, 2};
    const char *kv1[] = {"bm25.k1=1.5", "bm25.b=0.5"};
    check_case(kv1, 2, h1, 3, 1.5, 0.5, 1, 1, 1, 0, h1, 3);
    /* Years dropped. */
    const char *kv2[] = {"bm25.drop_year=1"};
    int32_t h2[2] = {3, 1};
    check_case(kv2, 1, h2, 2, 1.2, 0.75, 1, 1, 1, 1, h2, 2);
    /* Only genres. */
    const char *kv3[] = {"bm25.fields=genres"};
    check_case(kv3, 1, h2, 2, 1.2, 0.75, 0, 1, 0, 0, h2, 2);
    /* Title + brand + text, in another order. */
    const char *kv4[] = {"bm25.fields=text,brand,title"};
    check_case(kv4, 1, h2, 2, 1.2, 0.75, 1, 0, 1, 0, h2, 2);
    /* max_hist=1: only the most recent history item (1) forms the query. */
    const char *kv5[] = {"bm25.max_hist=1"};
    check_case(kv5, 1, h2 + 1, 1, 1.2, 0.75, 1, 1, 1, 0, h2, 2);
    /* default max_hist=10: a 12-item history uses its last 10 items; 0 = all */
    int32_t h12[12] = {2, 2, 0, 1, 3, 0, 1, 3, 0, 1, 3, 0};
    check_case(NULL, 0, h12 + 2, 10, 1.2, 0.75, 1, 1, 1, 0, h12, 12);
    const char *kv7[] = {"bm25.max_hist=0"};
    check_case(kv7, 1, h12, 12, 1.2, 0.75, 1, 1, 1, 0, h12, 12);
    /* b = 0 and k1 = 0 edge values */
    const char *kv6[] = {"bm25.k1=0", "bm25.b=0"};
    check_case(kv6, 2, h1, 3, 0, 0, 1, 1, 1, 0, h1, 3);
}

static void test_bm25_batch(void)
{
    /* Several queries in one call (parallel path) give the same rows as one by one. */
    enum { NQ = 9 };
    int32_t hs[NQ][2];
    gr_query q[NQ];
    for (int r = 0; r < NQ; r++) {
        hs[r][0] = r % NI;
        hs[r][1] = (r * 3 + 1) % NI;
        q[r] = (gr_query){.user = 0, .hist_len = 1 + r % 2, .hist = hs[r]};
    }
    gr_model *m = gr_bm25_create(NULL);
    REQUIRE(m);
    REQUIRE(m->ops->fit(m, &split, NULL) == GR_OK);
    float all[NQ * NI], one[NI];
    REQUIRE(m->ops->score(m, q, NQ, all) == GR_OK);
    for (int r = 0; r < NQ; r++) {
        REQUIRE(m->ops->score(m, &q[r], 1, one) == GR_OK);
        for (int i = 0; i < NI; i++) CHECK_NEAR(all[r * NI + i], one[i], 0);
    }
    /* empty history -> all zeros */
    q[0].hist_len = 0;
    REQUIRE(m->ops->score(m, q, 1, one) == GR_OK);
    for (int i = 0; i < NI; i++) CHECK_NEAR(one[i], 0, 0);
    model_free(m);
}

static void test_bm25_errors(void)
{
    const char *kv[] = {"bm25.k1=1.2", "bm25.kl=1"};
    gr_params p = {kv, 2};
    CHECK(gr_bm25_create(&p) == NULL);
    CHECK_HAS(gr_error_message(), "bm25.kl");
    const char *kv2[] = {"bm25.fields=title,bogus"};
    p = (gr_params){kv2, 1};
    CHECK(gr_bm25_create(&p) == NULL);
    CHECK_HAS(gr_error_message(), "bogus");
    const char *kv3[] = {"bm25.b=2"};
    p = (gr_params){kv3, 1};
    CHECK(gr_bm25_create(&p) == NULL);
    CHECK_HAS(gr_error_message(), "bm25.b");
    gr_model *m = gr_bm25_create(NULL);
    REQUIRE(m);
    gr_split nodata = split;
    nodata.data = NULL;
    CHECK_EQ_INT(m->ops->fit(m, &nodata, NULL), GR_ERR);
    CHECK_HAS(gr_error_message(), "dataset");
    gr_query q = {0};
    float sc[NI];
    CHECK_EQ_INT(m->ops->score(m, &q, 1, sc), GR_ERR);
    model_free(m);
}

/* Real data: ml-latest-small (9.7k items, 610 users) under leave-one-out must
 * index and score every validation and test query in seconds, far above
 * random (NDCG@10 ~ 0.0005). */
static void test_bm25_ml_latest_small(void)
{
    const char *path = gr_test_shared("data/ml-latest-small");
    if (!path) { gr_test_skip("../shared/data/ml-latest-small not found"); return; }
    gr_load_opts lo = gr_load_opts_default();
    gr_dataset *d = gr_dataset_load(path, &lo);
    REQUIRE(d);
    gr_split_opts so = gr_split_opts_default(GR_PROTOCOL_LOO);
    gr_split *s = gr_split_build(d, &so);
    REQUIRE(s);
    gr_model *m = gr_bm25_create(NULL);
    REQUIRE(m);
    double t0 = gr_time_now();
    REQUIRE(m->ops->fit(m, s, NULL) == GR_OK);
    double t1 = gr_time_now();
    gr_metrics mv, mt;
    gr_metrics_init(&mv);
    gr_metrics_init(&mt);
    REQUIRE(gr_eval_queries(m, s, s->valid, s->n_valid, NULL, &mv) == GR_OK);
    REQUIRE(gr_eval_queries(m, s, s->test, s->n_test, NULL, &mt) == GR_OK);
    double t2 = gr_time_now();
    printf("  ml-latest-small loo: %d items, fit %.2fs, %lld+%lld queries %.2fs, valid NDCG@10 %.4f, "
           "test NDCG@10 %.4f HR@10 %.4f\n", (int)s->n_items, t1 - t0, (long long)mv.n, (long long)mt.n,
           t2 - t1, mv.ndcg[2], mt.ndcg[2], mt.hr[2]);
    CHECK_EQ_INT(mt.n, 610);
    CHECK(mv.ndcg[2] > 0.01);
    CHECK(mt.ndcg[2] > 0.005);
    CHECK(t2 - t0 < 20.0);
    model_free(m);
    gr_split_free(s);
    gr_dataset_free(d);
}

int main(void)
{
    GR_RUN(test_bm25_formula);
    GR_RUN(test_bm25_batch);
    GR_RUN(test_bm25_errors);
    GR_RUN(test_bm25_ml_latest_small);
    return gr_test_finish();
}
