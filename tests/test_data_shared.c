/* The four shared real datasets (../shared/data): exact counts from the
 * data README, specific titles, deterministic tie order, cache round trip.
 * Skips when ../shared is absent. */
#include <stdlib.h>
#include <string.h>

#include "gr_test.h"
#include "genrec/dataset.h"

static gr_dataset *load(const char *rel, int dedup)
{
    const char *p = gr_test_shared(rel);
    if (!p) return NULL;
    gr_load_opts o = gr_load_opts_default();
    o.dedup = dedup;
    gr_dataset *d = gr_dataset_load(p, &o);
    if (!d) gr_test_fail(__FILE__, __LINE__, "loading %s: %s", p, gr_error_message());
    return d;
}

/* Interactions whose time equals the previous one of the same user. */
static int64_t count_ties(const gr_dataset *d)
{
    int64_t n = 0;
    for (int32_t u = 0; u < d->n_users; u++)
        for (int64_t k = d->user_off[u] + 1; k < d->user_off[u + 1]; k++) n += d->inter_time[k] == d->inter_time[k - 1];
    return n;
}

static void check_sane(const gr_dataset *d)
{
    CHECK_EQ_INT(d->user_off[0], 0);
    CHECK_EQ_INT(d->user_off[d->n_users], d->n_inter);
    int bad = 0;
    for (int32_t u = 0; u < d->n_users; u++) {
        bad += d->user_off[u + 1] <= d->user_off[u]; /* every user has interactions */
        for (int64_t k = d->user_off[u] + 1; k < d->user_off[u + 1]; k++) bad += d->inter_time[k] < d->inter_time[k - 1];
    }
    for (int64_t k = 0; k < d->n_inter; k++) bad += d->inter_item[k] < 0 || d->inter_item[k] >= d->n_items;
    for (int32_t i = 0; i < d->n_items; i++)
        bad += !d->item_title[i] || !d->item_genres[i] || !d->item_brand[i] || !d->item_text[i];
    CHECK_EQ_INT(bad, 0);
}

typedef struct { int32_t user, item; int64_t t; int64_t idx; } raw_row;

static int cmp_raw(const void *a, const void *b)
{
    const raw_row *x = a, *y = b;
    if (x->user != y->user) return x->user < y->user ? -1 : 1;
    if (x->t != y->t) return x->t < y->t ? -1 : 1;
    return x->idx < y->idx ? -1 : 1;
}

static void test_ml100k(void)
{
    const char *raw = gr_test_shared("data/ml-100k/u.data");
    if (!raw) { gr_test_skip("../shared/data/ml-100k absent"); return; }
    gr_dataset *d = load("data/ml-100k", 0);
    REQUIRE(d);
    CHECK_STR(d->format, "ml-100k");
    CHECK_EQ_INT(d->n_users, 943);
    CHECK_EQ_INT(d->n_items, 1682);
    CHECK_EQ_INT(d->n_inter, 100000);
    CHECK(d->has_time && d->has_rating);
    check_sane(d);
    CHECK_EQ_INT(count_ties(d), 50561);
    int32_t i1 = gr_test_item_of(d, "1");
    REQUIRE(i1 >= 0);
    CHECK_STR(d->item_title[i1], "Toy Story (1995)");
    CHECK_STR(d->item_genres[i1], "Animation|Children's|Comedy");
    CHECK_STR(d->item_title[gr_test_item_of(d, "267")], "unknown");
    CHECK_STR(d->item_title[gr_test_item_of(d, "1682")], "Scream of Stone (Schrei aus Stein) (1991)");

    /* every user's sequence equals an independent stable sort of u.data */
    FILE *f = fopen(raw, "r");
    REQUIRE(f);
    raw_row *rows = malloc(100000 * sizeof *rows);
    int64_t n = 0;
    int u, it, r;
    long long t;
    while (n < 100000 && fscanf(f, "%d %d %d %lld", &u, &it, &r, &t) == 4) {
        rows[n] = (raw_row){u, it, t, n};
        n++;
    }
    fclose(f);
    CHECK_EQ_INT(n, 100000);
    qsort(rows, (size_t)n, sizeof *rows, cmp_raw);
    int64_t mismatches = 0;
    char key[32];
    for (int64_t k = 0; k < n;) {
        snprintf(key, sizeof key, "%d", rows[k].user);
        int32_t du = gr_test_user_of(d, key);
        int64_t pos = du >= 0 ? d->user_off[du] : -1;
        int64_t k0 = k;
        for (; k < n && rows[k].user == rows[k0].user; k++, pos++) {
            snprintf(key, sizeof key, "%d", rows[k].item);
            if (pos < 0 || pos >= d->n_inter || strcmp(d->item_key[d->inter_item[pos]], key) ||
                d->inter_time[pos] != rows[k].t)
                mismatches++;
        }
    }
    CHECK_EQ_INT(mismatches, 0);
    free(rows);
    gr_dataset_free(d);

    /* dedup changes nothing on ml-100k */
    d = load("data/ml-100k", 1);
    REQUIRE(d);
    CHECK_EQ_INT(d->n_inter, 100000);
    gr_dataset_free(d);
}

static void test_ml_latest_small(void)
{
    if (!gr_test_shared("data/ml-latest-small/ratings.csv")) { gr_test_skip("../shared/data/ml-latest-small absent"); return; }
    double t0 = gr_time_now();
    gr_dataset *d = load("data/ml-latest-small", 1);
    double dt = gr_time_now() - t0;
    REQUIRE(d);
    printf("  ml-latest-small loaded in %.3f s\n", dt);
    if (!getenv("GENREC_SANITIZED")) CHECK(dt < 2.0); /* typically ~0.2 s */
    CHECK_STR(d->format, "ml-csv");
    CHECK_EQ_INT(d->n_users, 610);
    CHECK_EQ_INT(d->n_items, 9724);
    CHECK_EQ_INT(d->n_inter, 100836);
    check_sane(d);
    CHECK_STR(d->item_title[gr_test_item_of(d, "1")], "Toy Story (1995)");
    CHECK_STR(d->item_genres[gr_test_item_of(d, "1")], "Adventure|Animation|Children|Comedy|Fantasy");
    CHECK_STR(d->item_title[gr_test_item_of(d, "11")], "American President, The (1995)");
    CHECK_STR(d->item_title[gr_test_item_of(d, "73")], "Mis\xc3\xa9rables, Les (1995)");
    int32_t u1 = gr_test_user_of(d, "1");
    REQUIRE(u1 >= 0);
    CHECK_EQ_INT(d->user_off[u1 + 1] - d->user_off[u1], 232);
    gr_dataset_free(d);
}

static void test_lastfm(void)
{
    if (!gr_test_shared("data/lastfm/lastfm.inter")) { gr_test_skip("../shared/data/lastfm absent"); return; }
    gr_dataset *d = load("data/lastfm", 1);
    REQUIRE(d);
    CHECK_STR(d->format, "recbole");
    CHECK_STR(d->name, "lastfm");
    CHECK_EQ_INT(d->n_users, 1142);
    CHECK_EQ_INT(d->n_items, 11853);
    CHECK_EQ_INT(d->n_inter, 68436);
    CHECK(!d->has_rating);
    check_sane(d);
    CHECK_STR(d->item_title[gr_test_item_of(d, "1")], "Morcheeba");
    CHECK_STR(d->item_title[gr_test_item_of(d, "3")], "Caf\xc3\xa9 Del Mar");
    gr_dataset_free(d);
}

static int ends_clamps_vive(const char *s)
{
    size_t n = strlen(s);
    return n >= 13 && !strcmp(s + n - 13, "Clamps. Vive."); /* trailing space trimmed */
}

static void test_amazon_scientific(void)
{
    if (!gr_test_shared("data/amazon-scientific/Scientific.test.inter")) {
        gr_test_skip("../shared/data/amazon-scientific absent");
        return;
    }
    gr_dataset *d = load("data/amazon-scientific", 0);
    REQUIRE(d);
    CHECK_STR(d->format, "recbole-seq");
    CHECK_EQ_INT(d->n_users, 2928);
    CHECK_EQ_INT(d->n_items, 1585);
    CHECK_EQ_INT(d->n_inter, 19712);
    CHECK(!d->has_time);
    check_sane(d);
    /* user 0's sequence: test row "0 1 2 3" + target 4 */
    int32_t u0 = gr_test_user_of(d, "0");
    REQUIRE(u0 >= 0);
    CHECK_EQ_INT(d->user_off[u0 + 1] - d->user_off[u0], 5);
    for (int k = 0; k < 5; k++) CHECK_EQ_INT(d->inter_time[d->user_off[u0] + k], k);
    int32_t i0 = gr_test_item_of(d, "0"); /* ASIN B00O47ILVA through item2index */
    REQUIRE(i0 >= 0);
    CHECK_STR(d->item_title[i0], "Vive Suction Cup Reacher Grabber - 32 Heavy Duty Mobility Grip Hand Aid - Handle "
                                 "Tool Light Bulb Remover, Ipad Pickup, Long Handled Trash Litter Picker, Garbage "
                                 "Garden Nabber Extender - Handicap Arm");
    CHECK(strstr(d->item_text[i0], d->item_title[i0]) == d->item_text[i0]);
    CHECK(strstr(d->item_text[i0], "Handicap Arm. Industrial & Scientific Material Handling Products") != NULL);
    CHECK(ends_clamps_vive(d->item_text[i0]));
    int32_t with_text = 0;
    for (int32_t i = 0; i < d->n_items; i++) with_text += d->item_text[i][0] != '\0';
    CHECK_EQ_INT(with_text, 1585);
    gr_dataset_free(d);
    d = load("data/amazon-scientific", 1);
    REQUIRE(d);
    CHECK_EQ_INT(d->n_inter, 19568); /* repeated purchases removed by dedup */
    gr_dataset_free(d);
}

static void test_cache_roundtrip(void)
{
    if (!gr_test_shared("data/ml-latest-small/ratings.csv")) { gr_test_skip("../shared/data absent"); return; }
    gr_load_opts o = gr_load_opts_default();
    o.kcore = 5;
    gr_dataset *d = gr_dataset_load(gr_test_shared("data/ml-latest-small"), &o);
    REQUIRE(d);
    char p[512];
    snprintf(p, sizeof p, "%s/mls.grds", gr_test_tmpdir());
    REQUIRE(gr_dataset_save_cache(d, p) == GR_OK);
    double t0 = gr_time_now();
    gr_dataset *c = gr_dataset_load_cache(p);
    printf("  cache of %lld interactions loaded in %.3f s\n", (long long)d->n_inter, gr_time_now() - t0);
    REQUIRE(c);
    CHECK_EQ_INT(c->n_users, d->n_users);
    CHECK_EQ_INT(c->n_items, d->n_items);
    CHECK_EQ_INT(c->n_inter, d->n_inter);
    CHECK(c->n_inter < 100836);
    CHECK(!memcmp(c->user_off, d->user_off, sizeof(int64_t) * ((size_t)d->n_users + 1)));
    CHECK(!memcmp(c->inter_item, d->inter_item, sizeof(int32_t) * (size_t)d->n_inter));
    CHECK(!memcmp(c->inter_time, d->inter_time, sizeof(int64_t) * (size_t)d->n_inter));
    CHECK(!memcmp(c->inter_rating, d->inter_rating, sizeof(float) * (size_t)d->n_inter));
    int diff = 0;
    for (int32_t u = 0; u < d->n_users; u++) diff += strcmp(c->user_key[u], d->user_key[u]) != 0;
    for (int32_t i = 0; i < d->n_items; i++)
        diff += strcmp(c->item_key[i], d->item_key[i]) || strcmp(c->item_title[i], d->item_title[i]) ||
                strcmp(c->item_genres[i], d->item_genres[i]) || strcmp(c->item_brand[i], d->item_brand[i]) ||
                strcmp(c->item_text[i], d->item_text[i]);
    CHECK_EQ_INT(diff, 0);
    gr_dataset_free(c);
    gr_dataset_free(d);
}

int main(void)
{
    GR_RUN(test_ml100k);
    GR_RUN(test_ml_latest_small);
    GR_RUN(test_lastfm);
    GR_RUN(test_amazon_scientific);
    GR_RUN(test_cache_roundtrip);
    return gr_test_finish();
}
