/* Semantic IDs: codebook-size rule, k-means quality, planted clusters,
 * determinism, uniqueness after the collision code, token strings, TF-IDF +
 * SVD against brute-force cosines, and the report on the synthetic world and
 * (when ../shared is present) ml-100k. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gr_test.h"
#include "genrec/itemtext.h"
#include "genrec/rng.h"
#include "genrec/semid.h"
#include "genrec/synth.h"

static void test_default_k(void)
{
    CHECK_EQ_INT(gr_semid_default_k(1), 4);
    CHECK_EQ_INT(gr_semid_default_k(100), 32);
    CHECK_EQ_INT(gr_semid_default_k(1500), 64);
    CHECK_EQ_INT(gr_semid_default_k(1682), 64);
    CHECK_EQ_INT(gr_semid_default_k(10000), 128);
    CHECK_EQ_INT(gr_semid_default_k(100000), 256);
    CHECK_EQ_INT(gr_semid_default_k(5000000), 256);
}

/* n points around c planted unit centres in dim dimensions. */
static float *planted(int32_t n, int32_t c, int32_t dim, float noise, uint64_t seed, int32_t *label)
{
    float *ctr = malloc((size_t)c * dim * sizeof *ctr), *x = malloc((size_t)n * dim * sizeof *x);
    gr_rng r;
    gr_rng_seed(&r, seed);
    for (int32_t k = 0; k < c; k++) {
        double s = 0;
        for (int32_t j = 0; j < dim; j++) s += pow(ctr[k * dim + j] = (float)gr_rng_normal(&r), 2);
        for (int32_t j = 0; j < dim; j++) ctr[k * dim + j] /= (float)sqrt(s);
    }
    for (int32_t i = 0; i < n; i++) {
        label[i] = (int32_t)gr_rng_below(&r, (uint64_t)c);
        for (int32_t j = 0; j < dim; j++) x[i * dim + j] = ctr[label[i] * dim + j] + noise * (float)gr_rng_normal(&r);
    }
    free(ctr);
    return x;
}

static void test_kmeans_vs_random(void)
{
    int32_t n = 3000, dim = 16, K = 32, *lab = malloc((size_t)n * sizeof *lab), *as = malloc((size_t)n * sizeof *as);
    float *x = planted(n, 50, dim, 0.1f, 5, lab), *c = malloc((size_t)K * dim * sizeof *c);
    gr_rng r;
    gr_rng_seed(&r, 1);
    double dist, dist0;
    REQUIRE(gr_kmeans(x, n, dim, K, 0, 0, &r, c, as, &dist0) == GR_OK); /* k-means++ only */
    gr_rng_seed(&r, 1);
    REQUIRE(gr_kmeans(x, n, dim, K, 30, 0, &r, c, as, &dist) == GR_OK);
    CHECK(dist <= dist0);
    /* random assignment to K groups, centroids = group means */
    double *sum = calloc((size_t)K * dim, sizeof *sum), rnd = 0;
    int64_t *cnt = calloc((size_t)K, sizeof *cnt);
    for (int32_t i = 0; i < n; i++) {
        int32_t k = (int32_t)gr_rng_below(&r, (uint64_t)K);
        as[i] = k;
        cnt[k]++;
        for (int32_t j = 0; j < dim; j++) sum[k * dim + j] += x[i * dim + j];
    }
    for (int32_t i = 0; i < n; i++)
        for (int32_t j = 0; j < dim; j++) rnd += pow(x[i * dim + j] - sum[as[i] * dim + j] / (double)cnt[as[i]], 2);
    rnd /= n;
    printf("  k-means distortion %.4f (after k-means++ %.4f) vs random assignment %.4f\n", dist, dist0, rnd);
    CHECK(dist < 0.5 * rnd);
    CHECK(gr_kmeans(x, 0, dim, K, 30, 0, &r, c, as, NULL) == GR_ERR);
    free(sum);
    free(cnt);
    free(x);
    free(c);
    free(lab);
    free(as);
}

static void test_planted_clusters(void)
{
    int32_t n = 400, dim = 16, C = 8, *lab = malloc((size_t)n * sizeof *lab);
    float *x = planted(n, C, dim, 0.03f, 11, lab);
    gr_semid_opts o = gr_semid_opts_default();
    o.K = C;
    o.n_levels = 2;
    gr_semid *s = gr_semid_build(x, n, dim, &o);
    REQUIRE(s);
    /* the first code is a bijection of the planted clusters */
    int32_t map[8], back[8];
    for (int k = 0; k < 8; k++) map[k] = back[k] = -1;
    int bad = 0;
    for (int32_t i = 0; i < n; i++) {
        int32_t code = s->codes[i * 3];
        if (map[lab[i]] < 0) map[lab[i]] = code;
        if (back[code] < 0) back[code] = lab[i];
        bad += map[lab[i]] != code || back[code] != lab[i];
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_NEAR(s->usage[0], 1.0, 1e-12);
    CHECK(s->distortion[0] < 0.05 * s->distortion0);
    CHECK(s->distortion[1] <= s->distortion[0]);
    gr_semid_free(s);
    free(x);
    free(lab);
}

/* The (L+1)-code IDs are pairwise distinct; collision codes are 0..g-1 per group. */
static int ids_unique(const gr_semid *s)
{
    int32_t st = s->n_levels + 1;
    int bad = 0;
    for (int32_t i = 0; i < s->n_items; i++)
        for (int32_t j = i + 1; j < s->n_items; j++)
            bad += !memcmp(s->codes + i * st, s->codes + j * st, (size_t)st * sizeof(int32_t));
    return bad == 0;
}

static void test_determinism_and_collisions(void)
{
    int32_t n = 300, dim = 8, *lab = malloc((size_t)n * sizeof *lab);
    float *x = planted(n, 20, dim, 0.2f, 3, lab);
    for (int32_t j = 0; j < dim; j++) x[5 * dim + j] = x[7 * dim + j]; /* an exact duplicate */
    gr_semid_opts o = gr_semid_opts_default();
    o.K = 4; /* 4^2 = 16 IDs for 300 items: many collisions */
    o.n_levels = 2;
    gr_semid *a = gr_semid_build(x, n, dim, &o), *b = gr_semid_build(x, n, dim, &o);
    REQUIRE(a && b);
    CHECK(!memcmp(a->codes, b->codes, (size_t)n * 3 * sizeof(int32_t)));
    CHECK(!memcmp(a->codebooks, b->codebooks, (size_t)2 * 4 * dim * sizeof(float)));
    CHECK(ids_unique(a));
    CHECK(!memcmp(a->codes + 5 * 3, a->codes + 7 * 3, 2 * sizeof(int32_t))); /* duplicates share their L codes */
    /* report = brute force */
    int32_t in_coll = 0, maxg = 0, bad = 0;
    for (int32_t i = 0; i < n; i++) {
        int32_t g = 0, below = 0;
        for (int32_t j = 0; j < n; j++)
            if (!memcmp(a->codes + i * 3, a->codes + j * 3, 2 * sizeof(int32_t))) {
                g++;
                below += j < i;
            }
        in_coll += g > 1;
        if (g > maxg) maxg = g;
        bad += a->codes[i * 3 + 2] != below; /* id order within a group */
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(a->max_group, maxg);
    CHECK_EQ_INT(a->n_dup_codes, maxg);
    CHECK_NEAR(a->collision_rate, (double)in_coll / n, 1e-12);
    /* tokens */
    char buf[64];
    CHECK(gr_semid_render(a, 5, buf, sizeof buf) > 0);
    char want[64];
    snprintf(want, sizeof want, "<a_%d><b_%d><c_%d>", a->codes[15], a->codes[16], a->codes[17]);
    CHECK_STR(buf, want);
    CHECK_EQ_INT(gr_semid_render(a, 5, buf, 6), -1);
    CHECK_EQ_INT(gr_semid_render(a, n, buf, sizeof buf), -1);
    int32_t nt;
    char **toks = gr_semid_tokens(a, &nt);
    REQUIRE(toks);
    CHECK_EQ_INT(nt, 2 * 4 + maxg);
    CHECK_STR(toks[0], "<a_0>");
    CHECK_STR(toks[4], "<b_0>");
    CHECK_STR(toks[8], "<c_0>");
    int32_t tid[3];
    CHECK_EQ_INT(gr_semid_item_tokens(a, 5, 1000, tid), 3);
    snprintf(buf, sizeof buf, "%s%s%s", toks[tid[0] - 1000], toks[tid[1] - 1000], toks[tid[2] - 1000]);
    CHECK_STR(buf, want);
    gr_semid_tokens_free(toks, nt);
    gr_itemtext *it = gr_semid_itemtext(a);
    REQUIRE(it);
    CHECK_STR(it->text[5], want);
    gr_itemtext_free(it);
    /* another seed still gives unique IDs */
    o.seed = 7;
    gr_semid *c = gr_semid_build(x, n, dim, &o);
    REQUIRE(c);
    CHECK(ids_unique(c));
    gr_semid_free(c);
    o.n_levels = 0;
    CHECK(gr_semid_build(x, n, dim, &o) == NULL);
    CHECK_HAS(gr_error_message(), "n_levels");
    gr_semid_free(a);
    gr_semid_free(b);
    free(x);
    free(lab);
}

/* With dim >= the TF-IDF rank, the normalised LSA embeddings reproduce the
 * TF-IDF cosines exactly (computed here by brute force). */
static void test_tfidf_svd(void)
{
    char *texts[] = {"red apple fruit", "green apple fruit", "red car engine", "blue car engine fast",
                     "green apple fruit", "fast red car", "sweet apple pie", "sweet pie crust", "blue sky", "zzz"};
    int32_t n = 10;
    gr_itemtext *it = gr_itemtext_from_strings(texts, n);
    REQUIRE(it);
    int32_t dim = 0;
    float *e = gr_semid_tfidf_embed(it, 32, 1, &dim);
    REQUIRE(e);
    /* 10 words with df >= 2 (red apple fruit green car engine blue fast sweet
     * pie), but rank 8: items 1 and 4 are equal and "zzz" keeps no word */
    CHECK_EQ_INT(dim, 8);
    const char *vocab[] = {"red", "apple", "fruit", "green", "car", "engine", "blue", "fast", "sweet", "pie"};
    double tf[10][10] = {{0}}, df[10] = {0};
    for (int i = 0; i < n; i++)
        for (int w = 0; w < 10; w++) {
            const char *p = texts[i];
            int c = 0;
            size_t L = strlen(vocab[w]);
            while ((p = strstr(p, vocab[w]))) {
                c += (p == texts[i] || p[-1] == ' ') && (p[L] == 0 || p[L] == ' ');
                p += L;
            }
            tf[i][w] = c;
            df[w] += c > 0;
        }
    double v[10][10], nrm[10];
    for (int i = 0; i < n; i++) {
        nrm[i] = 0;
        for (int w = 0; w < 10; w++) {
            v[i][w] = tf[i][w] > 0 ? (1 + log(tf[i][w])) * (log(11.0 / (1 + df[w])) + 1) : 0;
            nrm[i] += v[i][w] * v[i][w];
        }
        nrm[i] = sqrt(nrm[i]);
    }
    double maxerr = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double want = 0, got = 0;
            if (nrm[i] > 0 && nrm[j] > 0)
                for (int w = 0; w < 10; w++) want += v[i][w] * v[j][w] / (nrm[i] * nrm[j]);
            for (int k = 0; k < dim; k++) got += (double)e[i * dim + k] * e[j * dim + k];
            if (fabs(got - want) > maxerr) maxerr = fabs(got - want);
        }
    printf("  TF-IDF cosines reproduced to %.2e\n", maxerr);
    CHECK(maxerr < 1e-4);
    /* "zzz" has no kept word: zero vector */
    double z = 0;
    for (int k = 0; k < dim; k++) z += fabs(e[9 * dim + k]);
    CHECK_NEAR(z, 0, 0);
    gr_free(e);
    /* reduced to 3 dims: unit rows, apple items closer to each other than to cars */
    e = gr_semid_tfidf_embed(it, 3, 1, &dim);
    REQUIRE(e);
    CHECK_EQ_INT(dim, 3);
    double c01 = 0, c02 = 0, n0 = 0;
    for (int k = 0; k < 3; k++) {
        c01 += e[0 * 3 + k] * e[1 * 3 + k];
        c02 += e[1 * 3 + k] * e[2 * 3 + k];
        n0 += e[k] * e[k];
    }
    CHECK_NEAR(n0, 1.0, 1e-5);
    CHECK(c01 > c02);
    gr_free(e);
    gr_itemtext_free(it);
    char *none[] = {"alpha", "beta"};
    it = gr_itemtext_from_strings(none, 2);
    REQUIRE(it);
    CHECK(gr_semid_tfidf_embed(it, 8, 1, &dim) == NULL);
    CHECK_HAS(gr_error_message(), "no word");
    gr_itemtext_free(it);
}

/* TF-IDF (title + genres + brand) -> semantic IDs with the default options;
 * prints the report. Returns the semid (caller frees) or NULL. */
static gr_semid *semid_of(const gr_dataset *d)
{
    gr_itemtext_opts io = {.with_genres = 1, .with_brand = 1};
    gr_itemtext *it = gr_itemtext_build(d, &io);
    if (!it) return NULL;
    int32_t dim;
    double t0 = gr_time_now();
    float *e = gr_semid_tfidf_embed(it, 64, 42, &dim);
    gr_itemtext_free(it);
    if (!e) return NULL;
    double t1 = gr_time_now();
    int32_t same = 0, zero = 0; /* items that no embedding can tell apart */
    for (int32_t i = 0; i < d->n_items; i++) {
        double z = 0;
        for (int32_t k = 0; k < dim; k++) z += fabs(e[(int64_t)i * dim + k]);
        zero += z == 0;
        for (int32_t j = 0; j < i; j++)
            if (!memcmp(e + (int64_t)i * dim, e + (int64_t)j * dim, (size_t)dim * sizeof *e)) {
                same++;
                break;
            }
    }
    printf("  %s: %d items embed exactly like an earlier item, %d embed to zero\n", d->name, (int)same, (int)zero);
    gr_semid *s = gr_semid_build(e, d->n_items, dim, NULL);
    gr_free(e);
    if (!s) return NULL;
    printf("  %s: embed %.2f s, RQ-KMeans %.2f s\n", d->name, t1 - t0, gr_time_now() - t1);
    gr_semid_print_report(s, stdout);
    return s;
}

static void test_synth(void)
{
    gr_synth_world *w = gr_synth_generate(NULL);
    REQUIRE(w);
    gr_dataset *d = gr_synth_to_dataset(w);
    REQUIRE(d);
    gr_semid *s = semid_of(d);
    REQUIRE(s);
    CHECK_EQ_INT(s->K, gr_semid_default_k(d->n_items));
    CHECK(ids_unique(s));
    CHECK(s->usage[0] > 0.9);
    CHECK(s->collision_rate < 0.2);
    /* the first code follows the planted genres: majority-genre purity */
    int32_t K = s->K, T = w->n_genres;
    int32_t *cnt = calloc((size_t)K * T, sizeof *cnt);
    REQUIRE(cnt);
    for (int32_t i = 0; i < d->n_items; i++) cnt[s->codes[i * 4] * T + w->item_genre[i]]++;
    int64_t pure = 0;
    for (int32_t k = 0; k < K; k++) {
        int32_t best = 0;
        for (int32_t t = 0; t < T; t++)
            if (cnt[k * T + t] > best) best = cnt[k * T + t];
        pure += best;
    }
    double purity = (double)pure / d->n_items;
    printf("  first-code genre purity %.3f (%d genres, chance ~%.3f)\n", purity, (int)T, 1.0 / T);
    CHECK(purity > 0.5);
    free(cnt);
    gr_semid_free(s);
    gr_dataset_free(d);
    gr_synth_free(w);
}

static void test_ml100k(void)
{
    const char *p = gr_test_shared("data/ml-100k");
    if (!p) {
        gr_test_skip("../shared/data/ml-100k absent");
        return;
    }
    gr_dataset *d = gr_dataset_load(p, NULL);
    REQUIRE(d);
    gr_semid *s = semid_of(d);
    REQUIRE(s);
    CHECK_EQ_INT(s->K, 64);
    CHECK(s->collision_rate < 0.6);
    CHECK(ids_unique(s));
    CHECK(s->usage[0] > 0.9);
    gr_semid_free(s);
    gr_dataset_free(d);
}

/* Collaborative embeddings: items consumed by the same users point the same
 * way, items of disjoint audiences are orthogonal, an unseen item is zero,
 * and a bad item id is an error naming it. */
static void test_cf_embed(void)
{
    /* users 0-3 consume items 0,1,2; users 4-7 items 3,4; item 5 is unseen */
    int64_t off[9];
    int32_t items[20];
    int64_t k = 0;
    for (int u = 0; u < 8; u++) {
        off[u] = k;
        if (u < 4) { items[k++] = 0; items[k++] = 1; items[k++] = 2; }
        else { items[k++] = 3; items[k++] = 4; }
    }
    off[8] = k;
    int32_t d = 0;
    float *e = gr_semid_cf_embed(off, items, 8, 6, 4, 7, &d);
    REQUIRE(e);
    CHECK(d >= 1 && d <= 4);
    double c01 = 0, c03 = 0, n5 = 0;
    for (int32_t j = 0; j < d; j++) {
        c01 += (double)e[0 * d + j] * e[1 * d + j];
        c03 += (double)e[0 * d + j] * e[3 * d + j];
        n5 += (double)e[5 * d + j] * e[5 * d + j];
    }
    CHECK_NEAR(c01, 1.0, 1e-4); /* rows are unit vectors */
    CHECK_NEAR(c03, 0.0, 1e-4);
    CHECK_NEAR(n5, 0.0, 0.0);
    gr_free(e);
    items[3] = 9;
    CHECK(gr_semid_cf_embed(off, items, 8, 6, 4, 7, &d) == NULL);
    CHECK_HAS(gr_error_message(), "item 9 outside");
}

int main(void)
{
    GR_RUN(test_default_k);
    GR_RUN(test_kmeans_vs_random);
    GR_RUN(test_planted_clusters);
    GR_RUN(test_determinism_and_collisions);
    GR_RUN(test_tfidf_svd);
    GR_RUN(test_cf_embed);
    GR_RUN(test_synth);
    GR_RUN(test_ml100k);
    return gr_test_finish();
}
