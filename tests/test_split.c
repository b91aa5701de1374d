/* Protocols: exact loo / ts / c20 splits on hand-built datasets, ts global
 * ordering and tie stability, c20 negatives, dataset checks, text export. */
#include <stdlib.h>

#include "genrec/rng.h"
#include "genrec/split.h"
#include "gr_test.h"

/* A dataset over caller-owned arrays: user u has lens[u] interactions. */
typedef struct tiny_ds {
    gr_dataset d;
    int64_t off[64];
} tiny_ds;

static void tiny_init(tiny_ds *t, int n_users, int n_items, const int *lens, int32_t *items, int64_t *times)
{
    memset(t, 0, sizeof *t);
    t->off[0] = 0;
    for (int u = 0; u < n_users; u++) t->off[u + 1] = t->off[u] + lens[u];
    t->d.name = "tiny";
    t->d.format = "synth";
    t->d.n_users = n_users;
    t->d.n_items = n_items;
    t->d.n_inter = t->off[n_users];
    t->d.user_off = t->off;
    t->d.inter_item = items;
    t->d.inter_time = times;
    t->d.has_time = 1;
}

/* The example used by the exact-split tests:
 *   u0: 0 1 2 3 @ 10 20 30 40    u1: 2 4 @ 15 25
 *   u2: 5 0 1   @ 20 20 50       u3: 3 @ 5                                  */
static int ex_lens[] = {4, 2, 3, 1};
static int32_t ex_items[] = {0, 1, 2, 3, 2, 4, 5, 0, 1, 3};
static int64_t ex_times[] = {10, 20, 30, 40, 15, 25, 20, 20, 50, 5};

static int hist_is(const gr_query *q, const int32_t *h, int n)
{
    if (q->hist_len != n) return 0;
    for (int i = 0; i < n; i++)
        if (q->hist[i] != h[i]) return 0;
    return 1;
}

static int train_is(const gr_split *s, int u, const int32_t *h, int n)
{
    if (s->train_off[u + 1] - s->train_off[u] != n) return 0;
    for (int i = 0; i < n; i++)
        if (s->train_item[s->train_off[u] + i] != h[i]) return 0;
    return 1;
}

static void test_protocol_names(void)
{
    gr_protocol p;
    CHECK_EQ_INT(gr_protocol_parse("loo", &p), GR_OK);
    CHECK_EQ_INT(p, GR_PROTOCOL_LOO);
    CHECK_EQ_INT(gr_protocol_parse("ts", &p), GR_OK);
    CHECK_EQ_INT(p, GR_PROTOCOL_TS);
    CHECK_EQ_INT(gr_protocol_parse("c20", &p), GR_OK);
    CHECK_EQ_INT(p, GR_PROTOCOL_C20);
    CHECK_EQ_INT(gr_protocol_parse("LOO", &p), GR_ERR);
    CHECK_HAS(gr_error_message(), "unknown protocol 'LOO'");
    CHECK_STR(gr_protocol_name(GR_PROTOCOL_TS), "ts");
    gr_split_opts o = gr_split_opts_default(GR_PROTOCOL_TS);
    CHECK_EQ_INT(o.max_hist, 10);
    CHECK_EQ_INT(gr_split_opts_default(GR_PROTOCOL_LOO).max_hist, 0);
    CHECK_EQ_INT(gr_split_opts_default(GR_PROTOCOL_C20).n_cand, 20);
}

static void test_loo_exact(void)
{
    tiny_ds t;
    tiny_init(&t, 4, 6, ex_lens, ex_items, ex_times);
    gr_split_opts o = gr_split_opts_default(GR_PROTOCOL_LOO);
    gr_split *s = gr_split_build(&t.d, &o);
    REQUIRE(s);
    CHECK(s->data == &t.d);
    CHECK_EQ_INT(s->n_users, 4);
    CHECK_EQ_INT(s->n_items, 6);
    REQUIRE(s->n_valid == 2 && s->n_test == 2);
    CHECK(train_is(s, 0, (int32_t[]){0, 1}, 2));
    CHECK(train_is(s, 1, (int32_t[]){2, 4}, 2)); /* < 3 interactions: training only */
    CHECK(train_is(s, 2, (int32_t[]){5}, 1));
    CHECK(train_is(s, 3, (int32_t[]){3}, 1));
    CHECK_EQ_INT(s->train_time[0], 10);
    CHECK_EQ_INT(s->train_time[s->train_off[2]], 20);
    CHECK_EQ_INT(s->valid[0].user, 0);
    CHECK_EQ_INT(s->valid[0].target, 2);
    CHECK_EQ_INT(s->valid[0].time, 30);
    CHECK(hist_is(&s->valid[0], (int32_t[]){0, 1}, 2));
    CHECK_EQ_INT(s->test[0].user, 0);
    CHECK_EQ_INT(s->test[0].target, 3);
    CHECK_EQ_INT(s->test[0].time, 40);
    CHECK(hist_is(&s->test[0], (int32_t[]){0, 1, 2}, 3));
    CHECK_EQ_INT(s->valid[1].user, 2);
    CHECK_EQ_INT(s->valid[1].target, 0);
    CHECK(hist_is(&s->valid[1], (int32_t[]){5}, 1));
    CHECK_EQ_INT(s->test[1].user, 2);
    CHECK_EQ_INT(s->test[1].target, 1);
    CHECK(hist_is(&s->test[1], (int32_t[]){5, 0}, 2));
    CHECK(s->test[0].cand == NULL && s->test[0].n_cand == 0);
    gr_split_free(s);

    o.max_hist = 1;
    s = gr_split_build(&t.d, &o);
    REQUIRE(s);
    CHECK(hist_is(&s->valid[0], (int32_t[]){1}, 1));
    CHECK(hist_is(&s->test[0], (int32_t[]){2}, 1));
    CHECK(hist_is(&s->test[1], (int32_t[]){0}, 1));
    CHECK(train_is(s, 0, (int32_t[]){0, 1}, 2)); /* max_hist never cuts training */
    gr_split_free(s);
}

static void test_ts_exact(void)
{
    tiny_ds t;
    tiny_init(&t, 4, 6, ex_lens, ex_items, ex_times);
    gr_split_opts o = gr_split_opts_default(GR_PROTOCOL_TS);
    gr_split *s = gr_split_build(&t.d, &o);
    REQUIRE(s);
    /* samples by (time, user, pos): (20,u0,1) (20,u2,1) (25,u1,1) (30,u0,2) | (40,u0,3) | (50,u2,2)
     * N = 6: train floor(4.8) = 4, valid floor(5.4) - 4 = 1, test 1 */
    REQUIRE(s->n_valid == 1 && s->n_test == 1);
    CHECK(train_is(s, 0, (int32_t[]){0, 1, 2}, 3));
    CHECK(train_is(s, 1, (int32_t[]){2, 4}, 2));
    CHECK(train_is(s, 2, (int32_t[]){5, 0}, 2));
    CHECK(train_is(s, 3, (int32_t[]){3}, 1)); /* first item, no sample */
    CHECK_EQ_INT(s->valid[0].user, 0);
    CHECK_EQ_INT(s->valid[0].target, 3);
    CHECK_EQ_INT(s->valid[0].time, 40);
    CHECK(hist_is(&s->valid[0], (int32_t[]){0, 1, 2}, 3));
    CHECK_EQ_INT(s->test[0].user, 2);
    CHECK_EQ_INT(s->test[0].target, 1);
    CHECK_EQ_INT(s->test[0].time, 50);
    CHECK(hist_is(&s->test[0], (int32_t[]){5, 0}, 2));
    gr_split_free(s);

    o.max_hist = 2;
    s = gr_split_build(&t.d, &o);
    REQUIRE(s);
    CHECK(hist_is(&s->valid[0], (int32_t[]){1, 2}, 2));
    gr_split_free(s);
}

/* ts ordering on a bigger random dataset with many equal times: queries are
 * sorted by (time, user, position), the cut is at floor(8N/10) / floor(9N/10),
 * and the train prefixes hold exactly the train samples. */
static void test_ts_order_and_ties(void)
{
    enum { U = 20, L = 7 };
    int lens[U];
    int32_t items[U * L];
    int64_t times[U * L];
    gr_rng r;
    gr_rng_seed(&r, 5);
    int k = 0;
    for (int u = 0; u < U; u++) {
        lens[u] = 1 + (int)gr_rng_below(&r, L);
        int64_t tm = (int64_t)gr_rng_below(&r, 3);
        for (int i = 0; i < lens[u]; i++) {
            items[k] = (int32_t)gr_rng_below(&r, 30);
            tm += (int64_t)gr_rng_below(&r, 2); /* many ties, within and across users */
            times[k++] = tm;
        }
    }
    tiny_ds t;
    tiny_init(&t, U, 30, lens, items, times);
    gr_split *s = gr_split_build(&t.d, NULL);
    REQUIRE(s);
    gr_split_free(s);
    gr_split_opts o = gr_split_opts_default(GR_PROTOCOL_TS);
    s = gr_split_build(&t.d, &o);
    REQUIRE(s);
    int64_t N = t.d.n_inter;
    for (int u = 0; u < U; u++) N -= lens[u] > 0;
    CHECK_EQ_INT(s->n_valid, N * 9 / 10 - N * 8 / 10);
    CHECK_EQ_INT(s->n_test, N - N * 9 / 10);
    /* every query's position in its user's sequence: from hist_len when uncut */
    int64_t prev_t = -1, prev_u = -1, prev_p = -1;
    for (int w = 0; w < 2; w++) {
        const gr_query *q = w ? s->test : s->valid;
        int64_t n = w ? s->n_test : s->n_valid;
        for (int64_t i = 0; i < n; i++) {
            /* L < max_hist, so the history is uncut: its length is the position */
            int64_t off = t.off[q[i].user];
            int64_t p = q[i].hist_len;
            REQUIRE(p < lens[q[i].user]);
            CHECK_EQ_INT(q[i].target, items[off + p]);
            CHECK_EQ_INT(q[i].time, times[off + p]);
            for (int64_t j = 0; j < p; j++) CHECK_EQ_INT(q[i].hist[j], items[off + j]);
            REQUIRE(p > 0);
            int ordered = q[i].time > prev_t || (q[i].time == prev_t && (q[i].user > prev_u ||
                                                 (q[i].user == prev_u && p > prev_p)));
            CHECK(ordered);
            prev_t = q[i].time;
            prev_u = q[i].user;
            prev_p = p;
        }
    }
    /* train: all samples strictly before the first valid query in (time, user, pos) order */
    int64_t n_train_samples = 0;
    for (int u = 0; u < U; u++) {
        int64_t len = s->train_off[u + 1] - s->train_off[u];
        CHECK(len >= (lens[u] > 0));
        n_train_samples += len - (lens[u] > 0);
        for (int64_t j = 0; j < len; j++) CHECK_EQ_INT(s->train_item[s->train_off[u] + j], items[t.off[u] + j]);
        if (len > 1 && s->n_valid) /* last train sample is not after the first valid one */
            CHECK(times[t.off[u] + len - 1] <= s->valid[0].time);
    }
    CHECK_EQ_INT(n_train_samples, N * 8 / 10);
    gr_split_free(s);

    /* all times equal: order is purely (user, position) */
    for (int i = 0; i < k; i++) times[i] = 7;
    s = gr_split_build(&t.d, &o);
    REQUIRE(s);
    int last_u = U - 1;
    while (lens[last_u] < 2) last_u--;
    REQUIRE(s->n_test > 0);
    CHECK_EQ_INT(s->test[s->n_test - 1].user, last_u);
    CHECK_EQ_INT(s->test[s->n_test - 1].target, items[t.off[last_u] + lens[last_u] - 1]);
    for (int64_t i = 1; i < s->n_test; i++) CHECK(s->test[i].user >= s->test[i - 1].user);
    gr_split_free(s);
}

/* c20 on 40 items: 19 distinct negatives outside the user's sequence, the
 * target once, deterministic by seed, different for another seed. */
static void test_c20(void)
{
    enum { U = 6, I = 40 };
    int lens[U] = {5, 8, 3, 2, 12, 4};
    int32_t items[64];
    int64_t times[64];
    gr_rng r;
    gr_rng_seed(&r, 11);
    int k = 0;
    for (int u = 0; u < U; u++)
        for (int i = 0; i < lens[u]; i++) { items[k] = (int32_t)gr_rng_below(&r, I); times[k] = i; k++; }
    tiny_ds t;
    tiny_init(&t, U, I, lens, items, times);
    gr_split_opts o = gr_split_opts_default(GR_PROTOCOL_C20);
    o.seed = 123;
    gr_split *a = gr_split_build(&t.d, &o), *b = gr_split_build(&t.d, &o);
    o.seed = 124;
    gr_split *c = gr_split_build(&t.d, &o);
    REQUIRE(a && b && c);
    CHECK_EQ_INT(a->n_test, 5); /* user 3 has 2 interactions */
    CHECK_EQ_INT(a->n_valid, 5);
    int same = 1, target_not_first = 0;
    for (int w = 0; w < 2; w++)
        for (int64_t i = 0; i < a->n_test; i++) {
            const gr_query *q = w ? &a->test[i] : &a->valid[i];
            const gr_query *qb = w ? &b->test[i] : &b->valid[i];
            const gr_query *qc = w ? &c->test[i] : &c->valid[i];
            REQUIRE(q->cand && q->n_cand == 20);
            int n_target = 0;
            for (int j = 0; j < q->n_cand; j++) {
                int32_t it = q->cand[j];
                CHECK(it >= 0 && it < I);
                if (it == q->target) { n_target++; if (j) target_not_first = 1; continue; }
                for (int64_t x = t.off[q->user]; x < t.off[q->user + 1]; x++) CHECK(items[x] != it);
                for (int jj = 0; jj < j; jj++) CHECK(q->cand[jj] != it);
            }
            CHECK_EQ_INT(n_target, 1);
            CHECK_EQ_INT(qb->n_cand, q->n_cand);
            for (int j = 0; j < q->n_cand; j++) CHECK_EQ_INT(qb->cand[j], q->cand[j]);
            for (int j = 0; j < q->n_cand; j++) same &= qc->cand[j] == q->cand[j];
            /* same queries as loo */
            CHECK_EQ_INT(q->target, items[t.off[q->user + 1] - (w ? 1 : 2)]);
        }
    CHECK(!same);
    CHECK(target_not_first);
    gr_split_free(a);
    gr_split_free(b);
    gr_split_free(c);

    /* few eligible items: all of them are used */
    int lens2[1] = {5};
    int32_t items2[5] = {0, 2, 4, 6, 8};
    int64_t times2[5] = {1, 2, 3, 4, 5};
    tiny_init(&t, 1, 10, lens2, items2, times2);
    o = gr_split_opts_default(GR_PROTOCOL_C20);
    a = gr_split_build(&t.d, &o);
    REQUIRE(a && a->n_test == 1);
    CHECK_EQ_INT(a->test[0].n_cand, 6);
    int odd = 0;
    for (int j = 0; j < a->test[0].n_cand; j++) odd += a->test[0].cand[j] % 2;
    CHECK_EQ_INT(odd, 5);
    gr_split_free(a);
}

static void test_bad_dataset(void)
{
    int lens[2] = {2, 2};
    int32_t items[4] = {0, 1, 1, 2};
    int64_t times[4] = {5, 4, 1, 2};
    tiny_ds t;
    tiny_init(&t, 2, 3, lens, items, times);
    CHECK(gr_split_build(&t.d, NULL) == NULL);
    CHECK_HAS(gr_error_message(), "time");
    times[1] = 6;
    items[3] = 3; /* out of range */
    CHECK(gr_split_build(&t.d, NULL) == NULL);
    CHECK_HAS(gr_error_message(), "item");
    items[3] = 2;
    gr_split_opts o = gr_split_opts_default(GR_PROTOCOL_TS);
    o.max_hist = -1;
    CHECK(gr_split_build(&t.d, &o) == NULL);
    CHECK_HAS(gr_error_message(), "max_hist");
    CHECK(gr_split_build(NULL, NULL) == NULL);
    gr_split *s = gr_split_build(&t.d, NULL);
    CHECK(s != NULL);
    CHECK_EQ_INT(s ? s->n_test : -1, 0); /* nobody has 3 interactions */
    gr_split_free(s);
    gr_split_free(NULL);
}

static void test_export(void)
{
    tiny_ds t;
    tiny_init(&t, 4, 6, ex_lens, ex_items, ex_times);
    gr_split *s = gr_split_build(&t.d, NULL);
    REQUIRE(s);
    char dir[512];
    snprintf(dir, sizeof dir, "%s/export", gr_test_tmpdir());
    REQUIRE(gr_split_export(s, dir) == GR_OK);
    char p[600];
    snprintf(p, sizeof p, "%s/meta.txt", dir);
    CHECK_STR(gr_test_read_text(p), "4 6\n");
    snprintf(p, sizeof p, "%s/train.txt", dir);
    CHECK_STR(gr_test_read_text(p), "0 0 1\n1 2 4\n2 5\n3 3\n");
    snprintf(p, sizeof p, "%s/valid.txt", dir);
    CHECK_STR(gr_test_read_text(p), "0 2 0 1\n2 0 5\n");
    snprintf(p, sizeof p, "%s/test.txt", dir);
    CHECK_STR(gr_test_read_text(p), "0 3 0 1 2\n2 1 5 0\n");
    REQUIRE(gr_split_export(s, dir) == GR_OK); /* overwrite is fine */
    gr_split_free(s);

    gr_split_opts o = gr_split_opts_default(GR_PROTOCOL_C20);
    o.n_cand = 3;
    s = gr_split_build(&t.d, &o);
    REQUIRE(s);
    REQUIRE(gr_split_export(s, dir) == GR_OK);
    snprintf(p, sizeof p, "%s/test.txt", dir);
    const char *txt = gr_test_read_text(p);
    CHECK_HAS(txt, "0 3 0 1 2 |");
    char want[64];
    snprintf(want, sizeof want, "| %d %d %d\n", (int)s->test[0].cand[0], (int)s->test[0].cand[1],
             (int)s->test[0].cand[2]);
    CHECK_HAS(txt, want);
    snprintf(p, sizeof p, "%s/meta.txt/x", dir);
    CHECK_EQ_INT(gr_split_export(s, p), GR_ERR);
    CHECK_HAS(gr_error_message(), "meta.txt");
    gr_split_free(s);
}

int main(void)
{
    GR_RUN(test_protocol_names);
    GR_RUN(test_loo_exact);
    GR_RUN(test_ts_exact);
    GR_RUN(test_ts_order_and_ties);
    GR_RUN(test_c20);
    GR_RUN(test_bad_dataset);
    GR_RUN(test_export);
    return gr_test_finish();
}
