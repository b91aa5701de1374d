/* The synthetic world: determinism, scale, titles, sequel habits, popularity
 * skew, drift, ground truth (affinity, exact next-item distribution, sampler
 * calibration), learnable signal in ids and text, files and reload. */
#include "gr_test.h"
#include "genrec/dataset.h"
#include "genrec/synth.h"
#include "data/synth_internal.h"

#include <ctype.h>
#include <dirent.h>
#include <stdlib.h>

static gr_synth_world *world_default;

static gr_synth_world *get_default(void)
{
    if (!world_default) world_default = gr_synth_generate(NULL);
    return world_default;
}

static gr_synth_opts small_opts(uint64_t seed)
{
    gr_synth_opts o = gr_synth_opts_default();
    o.seed = seed;
    o.n_users = 300;
    o.n_items = 400;
    o.per_user = 30;
    return o;
}

/* 1 if the worlds hold identical catalogues, tastes and interactions. */
static int same_world(const gr_synth_world *a, const gr_synth_world *b)
{
    if (a->n_users != b->n_users || a->n_items != b->n_items || a->n_inter != b->n_inter ||
        a->n_studios != b->n_studios || a->n_franchises != b->n_franchises || a->dim != b->dim)
        return 0;
    for (int32_t i = 0; i < a->n_items; i++)
        if (strcmp(a->item_title[i], b->item_title[i]) || strcmp(a->item_genres[i], b->item_genres[i]) ||
            a->item_studio[i] != b->item_studio[i] || a->item_next[i] != b->item_next[i] ||
            a->item_popq[i] != b->item_popq[i] || a->item_year[i] != b->item_year[i])
            return 0;
    size_t nt = (size_t)a->n_users * a->n_themes;
    if (memcmp(a->user_theta0, b->user_theta0, nt * 4) || memcmp(a->user_theta1, b->user_theta1, nt * 4) ||
        memcmp(a->user_vec, b->user_vec, (size_t)a->n_users * a->dim * 4) ||
        memcmp(a->item_vec, b->item_vec, (size_t)a->n_items * a->dim * 4))
        return 0;
    return !memcmp(a->user_off, b->user_off, ((size_t)a->n_users + 1) * 8) &&
           !memcmp(a->inter_item, b->inter_item, (size_t)a->n_inter * 4) &&
           !memcmp(a->inter_time, b->inter_time, (size_t)a->n_inter * 8) &&
           !memcmp(a->inter_rating, b->inter_rating, (size_t)a->n_inter * 4);
}

static void test_determinism(void)
{
    gr_synth_opts o = small_opts(7);
    gr_threads_set(1);
    gr_synth_world *a = gr_synth_generate(&o);
    gr_threads_set(2);
    gr_synth_world *b = gr_synth_generate(&o);
    gr_threads_set(0);
    o.seed = 8;
    gr_synth_world *c = gr_synth_generate(&o);
    REQUIRE(a && b && c);
    CHECK(same_world(a, b)); /* same seed, different thread counts */
    CHECK(!same_world(a, c));
    int64_t n = a->n_inter < c->n_inter ? a->n_inter : c->n_inter, diff = 0;
    for (int64_t k = 0; k < n; k++) diff += a->inter_item[k] != c->inter_item[k];
    CHECK(diff > n / 2);
    int tdiff = 0;
    for (int32_t i = 0; i < a->n_items; i++) tdiff += strcmp(a->item_title[i], c->item_title[i]) != 0;
    CHECK(tdiff > a->n_items / 2);
    gr_synth_free(a);
    gr_synth_free(b);
    gr_synth_free(c);
}

static void test_counts_and_order(void)
{
    gr_synth_world *w = get_default();
    REQUIRE(w);
    CHECK_EQ_INT(w->n_users, 1000);
    CHECK_EQ_INT(w->n_items, 1500);
    CHECK(w->n_inter > 0.85 * 60000 && w->n_inter < 1.15 * 60000);
    CHECK_EQ_INT(w->user_off[0], 0);
    CHECK_EQ_INT(w->user_off[w->n_users], w->n_inter);
    uint8_t *seen = calloc((size_t)w->n_items, 1);
    REQUIRE(seen);
    int bad_len = 0, bad_time = 0, repeats = 0, bad_rating = 0;
    int64_t first_min = INT64_MAX, first_max = INT64_MIN;
    for (int32_t u = 0; u < w->n_users; u++) {
        int64_t a = w->user_off[u], b = w->user_off[u + 1];
        bad_len += b - a < w->opts.min_per_user || b - a > w->n_items / 2;
        if (w->inter_time[a] < first_min) first_min = w->inter_time[a];
        if (w->inter_time[a] > first_max) first_max = w->inter_time[a];
        for (int64_t k = a; k < b; k++) {
            bad_time += k > a && w->inter_time[k] <= w->inter_time[k - 1];
            repeats += seen[w->inter_item[k]]++ > 0;
            float r = w->inter_rating[k];
            bad_rating += !(r == 1 || r == 2 || r == 3 || r == 4 || r == 5);
        }
        for (int64_t k = a; k < b; k++) seen[w->inter_item[k]] = 0;
    }
    free(seen);
    CHECK_EQ_INT(bad_len, 0);
    CHECK_EQ_INT(bad_time, 0);
    CHECK_EQ_INT(repeats, 0);
    CHECK_EQ_INT(bad_rating, 0);
    CHECK(first_min >= w->opts.t_start);
    /* users start at different times: first interactions spread over most of the span */
    CHECK((double)(first_max - first_min) > 0.6 * w->opts.span_days * 86400);
}

static const char *year_suffix(const char *t)
{
    size_t n = strlen(t);
    if (n < 8 || t[n - 1] != ')' || t[n - 6] != '(' || t[n - 7] != ' ') return NULL;
    for (int k = 2; k <= 5; k++)
        if (!isdigit((unsigned char)t[n - k])) return NULL;
    return t + n - 7;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void test_titles(void)
{
    gr_synth_world *w = get_default();
    REQUIRE(w);
    char **sorted = malloc((size_t)w->n_items * sizeof *sorted);
    REQUIRE(sorted);
    int no_year = 0, commas = 0, quotes = 0, bad_genre = 0, bad_sequel = 0, sequels = 0;
    for (int32_t i = 0; i < w->n_items; i++) {
        const char *t = w->item_title[i];
        sorted[i] = w->item_title[i];
        no_year += year_suffix(t) == NULL || atoi(t + strlen(t) - 5) != w->item_year[i];
        commas += strchr(t, ',') != NULL;
        quotes += strchr(t, '"') != NULL;
        const char *g = w->genre_name[w->item_genre[i]];
        bad_genre += strncmp(w->item_genres[i], g, strlen(g)) != 0;
        int32_t p = w->item_prev[i];
        if (p >= 0) {
            /* part k > 1 starts with part 1's title without its year */
            int32_t first = i;
            while (w->item_prev[first] >= 0) first = w->item_prev[first];
            size_t base = strlen(w->item_title[first]) - 7;
            sequels++;
            bad_sequel += strncmp(t, w->item_title[first], base) != 0 || w->item_part[i] != w->item_part[p] + 1 ||
                          w->item_year[i] < w->item_year[p] || w->item_genre[i] != w->item_genre[p];
        }
    }
    CHECK_EQ_INT(no_year, 0);
    CHECK_EQ_INT(bad_genre, 0);
    CHECK_EQ_INT(bad_sequel, 0);
    CHECK(sequels > 100);
    CHECK(commas > 0 && quotes > 0); /* the CSV quoting paths are exercised */
    qsort(sorted, (size_t)w->n_items, sizeof *sorted, cmp_str);
    int dups = 0;
    for (int32_t i = 1; i < w->n_items; i++) dups += !strcmp(sorted[i], sorted[i - 1]);
    free(sorted);
    printf("  titles: %d duplicates among %d, %d sequels; e.g. \"%s\"\n", dups, w->n_items, sequels, w->item_title[0]);
    CHECK(dups <= w->n_items / 50); /* mostly unique (MovieLens-100K: 18 of 1682) */
}

static void test_sequel_habit(void)
{
    gr_synth_world *w = get_default();
    REQUIRE(w);
    int64_t cand = 0, hit = 0;
    for (int32_t u = 0; u < w->n_users; u++)
        for (int64_t k = w->user_off[u]; k + 1 < w->user_off[u + 1]; k++) {
            int32_t nx = w->item_next[w->inter_item[k]];
            if (nx < 0) continue;
            int seen_before = 0;
            for (int64_t j = w->user_off[u]; j < k && !seen_before; j++) seen_before = w->inter_item[j] == nx;
            if (seen_before) continue;
            cand++;
            hit += w->inter_item[k + 1] == nx;
        }
    double p = (double)hit / (double)cand;
    printf("  P(next = part k+1 | part k) = %.3f over %lld cases (chance %.5f)\n", p, (long long)cand,
           1.0 / w->n_items);
    CHECK(cand > 1000);
    CHECK(p > 0.3);
    CHECK(p > 100.0 / w->n_items);
}

static int cmp_i64_desc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x < y) - (x > y);
}

static void test_popularity_skew(void)
{
    gr_synth_world *w = get_default();
    REQUIRE(w);
    int64_t *cnt = calloc((size_t)w->n_items, sizeof *cnt);
    REQUIRE(cnt);
    for (int64_t k = 0; k < w->n_inter; k++) cnt[w->inter_item[k]]++;
    qsort(cnt, (size_t)w->n_items, sizeof *cnt, cmp_i64_desc);
    int64_t top = 0;
    for (int32_t i = 0; i < w->n_items / 10; i++) top += cnt[i];
    double share = (double)top / (double)w->n_inter;
    printf("  top 10%% of items: %.1f%% of interactions; most popular item: %lld\n", 100 * share, (long long)cnt[0]);
    CHECK(share > 0.30);
    CHECK(share < 0.80);
    free(cnt);
}

/* Tastes drift: the genre that gains most from theta0 to theta1 is consumed
 * more in the last quarter of a history than in the first. */
static void test_drift(void)
{
    gr_synth_world *w = get_default();
    REQUIRE(w);
    double first = 0, last = 0;
    for (int32_t u = 0; u < w->n_users; u++) {
        double gain[GR_SYNTH_MAX_GENRES] = {0};
        for (int t = 0; t < w->n_themes; t++)
            gain[t / GR_SYNTH_THEMES_PER_GENRE] += w->user_theta1[(size_t)u * w->n_themes + t] -
                                                   w->user_theta0[(size_t)u * w->n_themes + t];
        int g = 0;
        for (int k = 1; k < w->n_genres; k++)
            if (gain[k] > gain[g]) g = k;
        int64_t a = w->user_off[u], n = w->user_off[u + 1] - a, q = n / 4;
        for (int64_t k = 0; k < q; k++) {
            first += w->item_genre[w->inter_item[a + k]] == g;
            last += w->item_genre[w->inter_item[a + n - 1 - k]] == g;
        }
    }
    printf("  drift genre: %.0f items in first quarters, %.0f in last quarters\n", first, last);
    CHECK(last > 1.5 * first);
}

/* Per user: AUC of the true affinity, consumed items against the others. */
static void test_affinity_correlates(void)
{
    gr_synth_world *w = get_default();
    REQUIRE(w);
    uint8_t *seen = calloc((size_t)w->n_items, 1);
    REQUIRE(seen);
    gr_rng r;
    gr_rng_seed(&r, 3);
    double auc = 0, hi = 0, lo = 0;
    int64_t nhi = 0, nlo = 0;
    int users = 200;
    for (int32_t u = 0; u < users; u++) {
        int64_t a = w->user_off[u], b = w->user_off[u + 1];
        for (int64_t k = a; k < b; k++) seen[w->inter_item[k]] = 1;
        int64_t win = 0, tot = 0;
        for (int64_t k = a; k < b; k++) {
            double s = gr_synth_true_affinity(w, u, w->inter_item[k]);
            for (int j = 0; j < 20; j++) {
                int32_t i = (int32_t)gr_rng_below(&r, (uint64_t)w->n_items);
                if (seen[i]) continue;
                win += s > gr_synth_true_affinity(w, u, i);
                tot++;
            }
            if (w->inter_rating[k] >= 4) hi += s, nhi++;
            if (w->inter_rating[k] <= 2) lo += s, nlo++;
        }
        auc += (double)win / (double)tot;
        for (int64_t k = a; k < b; k++) seen[w->inter_item[k]] = 0;
    }
    free(seen);
    auc /= users;
    printf("  true-affinity AUC consumed vs not: %.3f; mean affinity rated >= 4: %.2f, <= 2: %.2f\n", auc, hi / nhi,
           lo / nlo);
    CHECK(auc > 0.8);
    CHECK(hi / nhi > lo / nlo + 0.2);
    CHECK(gr_synth_true_affinity(w, -1, 0) == -INFINITY);
    CHECK(gr_synth_true_affinity(w, 0, w->n_items) == -INFINITY);
}

/* Both samplers (the public rejection sampler and the generator's Fenwick
 * sampler) against gr_synth_next_dist after hist: by theme, and item by item
 * for the likely items (within 5 standard errors). */
static void check_samplers(const gr_synth_world *w, int32_t u, const int32_t *hist, int32_t len, const double *p,
                           const char *what)
{
    const int n = 20000;
    int32_t *draws = malloc(n * sizeof *draws);
    double *emp = calloc((size_t)w->n_items, sizeof *emp);
    REQUIRE(draws && emp);
    gr_rng r;
    gr_rng_seed(&r, 11 + (uint64_t)len);
    for (int which = 0; which < 2; which++) {
        if (which == 0) {
            for (int s = 0; s < n; s++) REQUIRE((draws[s] = gr_synth_sample_next(w, u, hist, len, NULL, &r)) >= 0);
        } else {
            REQUIRE(synth_sample_fenwick(w, u, hist, len, &r, n, draws) == GR_OK);
        }
        double et[GR_SYNTH_MAX_GENRES * 3] = {0}, want[GR_SYNTH_MAX_GENRES * 3] = {0}, tv = 0;
        memset(emp, 0, (size_t)w->n_items * sizeof *emp);
        for (int s = 0; s < n; s++) emp[draws[s]] += 1.0 / n;
        int far = 0, checked = 0;
        for (int32_t i = 0; i < w->n_items; i++) {
            et[w->item_theme[i]] += emp[i];
            want[w->item_theme[i]] += p[i];
            if (p[i] > 0.002) {
                checked++;
                far += fabs(emp[i] - p[i]) > 5 * sqrt(p[i] * (1 - p[i]) / n);
            }
            far += p[i] == 0 && emp[i] > 0;
        }
        for (int t = 0; t < w->n_themes; t++) tv += fabs(et[t] - want[t]) / 2;
        printf("  %s, %s sampler: theme TV %.4f; %d of %d likely items off\n", what, which ? "fenwick" : "public", tv,
               far, checked);
        CHECK(tv < 0.03);
        CHECK(checked >= 10);
        CHECK_EQ_INT(far, 0);
    }
    free(draws);
    free(emp);
}

/* gr_synth_next_dist is a distribution, honours the sequel habit, and
 * matches both samplers. */
static void test_next_dist(void)
{
    gr_synth_world *w = get_default();
    REQUIRE(w);
    double *p = malloc((size_t)w->n_items * sizeof *p);
    REQUIRE(p);
    /* a user whose history ends in a franchise part with the next part unseen */
    int32_t u = -1, len = 0;
    for (int32_t v = 0; v < w->n_users && u < 0; v++)
        for (int64_t k = w->user_off[v]; k < w->user_off[v + 1] - 1; k++) {
            int32_t nx = w->item_next[w->inter_item[k]];
            if (nx >= 0 && w->inter_item[k + 1] != nx) {
                u = v;
                len = (int32_t)(k - w->user_off[v] + 1);
                break;
            }
        }
    REQUIRE(u >= 0);
    const int32_t *hist = w->inter_item + w->user_off[u];
    int32_t pending = w->item_next[hist[len - 1]];
    int pending_seen = 0;
    for (int32_t j = 0; j < len; j++) pending_seen |= hist[j] == pending;
    REQUIRE(gr_synth_next_dist(w, u, hist, len, p) == GR_OK);
    double sum = 0;
    int in_hist = 0;
    for (int32_t i = 0; i < w->n_items; i++) sum += p[i];
    for (int32_t j = 0; j < len; j++) in_hist += p[hist[j]] != 0;
    CHECK_NEAR(sum, 1.0, 1e-9);
    CHECK_EQ_INT(in_hist, 0);
    CHECK(!pending_seen && p[pending] >= w->opts.p_sequel);
    check_samplers(w, u, hist, len, p, "pending sequel");

    /* an empty history (no momentum, no sequel), then a long history
     * without franchise items (momentum and drift only) */
    REQUIRE(gr_synth_next_dist(w, 4, NULL, 0, p) == GR_OK);
    check_samplers(w, 4, NULL, 0, p, "empty history");
    int32_t plain[40], np = 0;
    for (int64_t k = 0; k < w->n_inter && np < 40; k++)
        if (w->item_franchise[w->inter_item[k]] < 0) {
            int dup = 0;
            for (int j = 0; j < np; j++) dup |= plain[j] == w->inter_item[k];
            if (!dup) plain[np++] = w->inter_item[k];
        }
    REQUIRE(np == 40);
    REQUIRE(gr_synth_next_dist(w, 9, plain, np, p) == GR_OK);
    check_samplers(w, 9, plain, np, p, "40 items, no franchise");

    CHECK(gr_synth_next_dist(w, w->n_users, hist, len, p) == GR_ERR);
    CHECK_HAS(gr_error_message(), "user");
    int32_t badh[1] = {w->n_items};
    gr_rng r;
    gr_rng_seed(&r, 1);
    CHECK(gr_synth_next_dist(w, 0, badh, 1, p) == GR_ERR);
    CHECK(gr_synth_sample_next(w, 0, badh, 1, NULL, &r) == -1);
    free(p);
}

/* The generator (Fenwick sampler) draws from gr_synth_next_dist: over many
 * steps, log p(observed next item) - E[log p] sums to a standard normal
 * after scaling by the summed variances. */
static void test_generator_calibrated(void)
{
    gr_synth_world *w = get_default();
    REQUIRE(w);
    double *p = malloc((size_t)w->n_items * sizeof *p);
    REQUIRE(p);
    double lp = 0, mean = 0, var = 0;
    int n = 0;
    for (int32_t u = 0; u < w->n_users; u += 3) {
        int64_t a = w->user_off[u], len = w->user_off[u + 1] - a;
        for (int64_t k = u % 3; k < len; k += 3) {
            REQUIRE(gr_synth_next_dist(w, u, w->inter_item + a, (int32_t)k, p) == GR_OK);
            double m1 = 0, m2 = 0;
            for (int32_t i = 0; i < w->n_items; i++)
                if (p[i] > 0) {
                    double l = log(p[i]);
                    m1 += p[i] * l;
                    m2 += p[i] * l * l;
                }
            lp += log(p[w->inter_item[a + k]]);
            mean += m1;
            var += m2 - m1 * m1;
            n++;
        }
    }
    free(p);
    double z = (lp - mean) / sqrt(var);
    printf("  calibration over %d steps: mean log p(observed) %.3f, expected %.3f, z = %.2f\n", n, lp / n,
           mean / n, z);
    CHECK(n > 5000);
    CHECK(fabs(z) < 4);
}

/* Learnable from ids: on the last item of each user, the true next-item
 * distribution and a simple learned transition model beat popularity. */
static void test_learnable(void)
{
    gr_synth_world *w = get_default();
    REQUIRE(w);
    const int32_t ni = w->n_items;
    int64_t *pop = calloc((size_t)ni, sizeof *pop);
    float *co = calloc((size_t)ni * ni, sizeof *co);
    double *p = malloc((size_t)ni * sizeof *p), *score = malloc((size_t)ni * sizeof *score);
    uint8_t *seen = calloc((size_t)ni, 1);
    REQUIRE(pop && co && p && score && seen);
    /* train on all but the last item of every user */
    for (int32_t u = 0; u < w->n_users; u++)
        for (int64_t k = w->user_off[u]; k < w->user_off[u + 1] - 1; k++) {
            pop[w->inter_item[k]]++;
            for (int64_t j = k + 1; j < w->user_off[u + 1] - 1 && j <= k + 3; j++)
                co[(size_t)w->inter_item[k] * ni + w->inter_item[j]] += 1.0f / (float)(j - k);
        }
    int64_t hit_pop = 0, hit_co = 0, hit_true = 0;
    for (int32_t u = 0; u < w->n_users; u++) {
        int64_t a = w->user_off[u], n = w->user_off[u + 1] - a;
        const int32_t *h = w->inter_item + a;
        int32_t target = h[n - 1];
        for (int64_t k = 0; k < n - 1; k++) seen[h[k]] = 1;
        REQUIRE(gr_synth_next_dist(w, u, h, (int32_t)(n - 1), p) == GR_OK);
        for (int32_t i = 0; i < ni; i++) {
            score[i] = 0;
            for (int64_t k = n - 2, d = 1; k >= 0 && d <= 3; k--, d++)
                score[i] += co[(size_t)h[k] * ni + i] / d;
            score[i] += 1e-6 * (double)pop[i];
        }
        int64_t rp = 0, rc = 0, rt = 0;
        for (int32_t i = 0; i < ni; i++) {
            if (seen[i] || i == target) continue;
            rp += pop[i] > pop[target] || (pop[i] == pop[target] && i < target);
            rc += score[i] > score[target] || (score[i] == score[target] && i < target);
            rt += p[i] > p[target] || (p[i] == p[target] && i < target);
        }
        hit_pop += rp < 10;
        hit_co += rc < 10;
        hit_true += rt < 10;
        for (int64_t k = 0; k < n - 1; k++) seen[h[k]] = 0;
    }
    double hp = (double)hit_pop / w->n_users, hc = (double)hit_co / w->n_users, ht = (double)hit_true / w->n_users;
    printf("  HR@10 on each user's last item: pop %.3f, item transitions %.3f, true distribution %.3f\n", hp, hc, ht);
    CHECK(ht > 2 * hp);
    CHECK(hc > 1.3 * hp);
    free(pop);
    free(co);
    free(p);
    free(score);
    free(seen);
}

/* Title words of a title (lowercase, no stop words, no year) as hashes. */
static int title_words(const char *t, uint32_t *out, int cap)
{
    static const char *const stop[] = {"the", "of", "and", "a", "in", "for", "ii", "iii", "iv", "v", "vi", "vii"};
    int n = 0;
    char word[64];
    while (*t && n < cap) {
        int len = 0;
        while (*t && !isalpha((unsigned char)*t)) t++;
        while (*t && (isalpha((unsigned char)*t) || *t == '-' || *t == '\'') && len < 63)
            word[len++] = (char)tolower((unsigned char)*t++);
        word[len] = '\0';
        if (!len) continue;
        int skip = 0;
        for (size_t k = 0; k < sizeof stop / sizeof stop[0]; k++) skip |= !strcmp(word, stop[k]);
        if (skip) continue;
        uint32_t h = 2166136261u;
        for (int k = 0; k < len; k++) h = (h ^ (unsigned char)word[k]) * 16777619u;
        out[n++] = h;
    }
    return n;
}

static double jaccard(const char *a, const char *b)
{
    uint32_t wa[32], wb[32];
    int na = title_words(a, wa, 32), nb = title_words(b, wb, 32), inter = 0;
    for (int i = 0; i < na; i++) {
        int dup = 0;
        for (int k = 0; k < i; k++) dup |= wa[k] == wa[i];
        if (dup) continue;
        for (int j = 0; j < nb; j++)
            if (wa[i] == wb[j]) { inter++; break; }
    }
    int uni = na + nb - inter;
    return uni > 0 ? (double)inter / uni : 0;
}

/* Text carries signal: consecutive items (outside franchises) share more
 * title words than random pairs. */
static void test_text_signal(void)
{
    gr_synth_world *w = get_default();
    REQUIRE(w);
    gr_rng r;
    gr_rng_seed(&r, 5);
    double co = 0, rnd = 0;
    int64_t n = 0;
    for (int32_t u = 0; u < w->n_users; u++)
        for (int64_t k = w->user_off[u]; k + 1 < w->user_off[u + 1]; k++) {
            int32_t a = w->inter_item[k], b = w->inter_item[k + 1];
            if (w->item_franchise[a] >= 0 && w->item_franchise[a] == w->item_franchise[b]) continue;
            co += jaccard(w->item_title[a], w->item_title[b]);
            int32_t x = (int32_t)gr_rng_below(&r, (uint64_t)w->n_items), y = (int32_t)gr_rng_below(&r, (uint64_t)w->n_items);
            rnd += jaccard(w->item_title[x], w->item_title[y]);
            n++;
        }
    printf("  title-word Jaccard: consecutive items %.4f, random pairs %.4f\n", co / n, rnd / n);
    CHECK(co > 2 * rnd);
}

static void free_dataset(gr_dataset *d) { gr_dataset_free(d); }

static void test_dataset(void)
{
    gr_synth_world *w = get_default();
    REQUIRE(w);
    gr_dataset *d = gr_synth_to_dataset(w);
    REQUIRE(d);
    CHECK_STR(d->name, "synth");
    CHECK_STR(d->format, "synth");
    CHECK_EQ_INT(d->n_users, w->n_users);
    CHECK_EQ_INT(d->n_items, w->n_items);
    CHECK_EQ_INT(d->n_inter, w->n_inter);
    CHECK(d->has_time == 1 && d->has_rating == 1);
    int nulls = 0;
    for (int32_t i = 0; i < d->n_items; i++)
        nulls += !d->item_key[i] || !d->item_title[i] || !d->item_genres[i] || !d->item_brand[i] || !d->item_text[i];
    for (int32_t u = 0; u < d->n_users; u++) nulls += !d->user_key[u];
    CHECK_EQ_INT(nulls, 0);
    CHECK_STR(d->user_key[0], "1");
    CHECK_STR(d->item_key[9], "10");
    CHECK_STR(d->item_title[5], w->item_title[5]);
    CHECK_STR(d->item_brand[5], w->studio_name[w->item_studio[5]]);
    CHECK_STR(d->item_text[5], "");
    CHECK(!memcmp(d->user_off, w->user_off, ((size_t)d->n_users + 1) * 8));
    CHECK(!memcmp(d->inter_item, w->inter_item, (size_t)d->n_inter * 4));
    CHECK(!memcmp(d->inter_time, w->inter_time, (size_t)d->n_inter * 8));
    CHECK(!memcmp(d->inter_rating, w->inter_rating, (size_t)d->n_inter * 4));
    free_dataset(d);
}

/* Parse one RFC-4180 record starting at *p into fields (copies in out[k],
 * at most 8); advances *p past the line end. Returns the field count, -1 on
 * a malformed quote. */
static int csv_record(const char **p, char out[][256], int max)
{
    const char *s = *p;
    int nf = 0;
    for (;;) {
        char *o = nf < max ? out[nf] : NULL;
        int len = 0;
        if (*s == '"') {
            s++;
            for (;;) {
                if (!*s) return -1;
                if (*s == '"') {
                    if (s[1] == '"') { if (o && len < 255) o[len++] = '"'; s += 2; continue; }
                    s++;
                    break;
                }
                if (o && len < 255) o[len++] = *s;
                s++;
            }
            if (*s != ',' && *s != '\n' && *s) return -1;
        } else {
            while (*s && *s != ',' && *s != '\n') {
                if (*s == '"') return -1;
                if (o && len < 255) o[len++] = *s;
                s++;
            }
        }
        if (o) o[len] = '\0';
        nf++;
        if (*s == ',') { s++; continue; }
        if (*s == '\n') s++;
        break;
    }
    *p = s;
    return nf;
}

static void test_write_and_reload(void)
{
    gr_synth_opts o = small_opts(21);
    gr_synth_world *w = gr_synth_generate(&o);
    REQUIRE(w);
    char dir[512];
    snprintf(dir, sizeof dir, "%s/world/sub", gr_test_tmpdir());
    REQUIRE(gr_synth_write(w, dir) == GR_OK);
    char path[600];
    size_t n;

    /* interactions.csv */
    snprintf(path, sizeof path, "%s/interactions.csv", dir);
    char *buf = gr_test_read_file(path, &n);
    REQUIRE(buf);
    const char *p = buf;
    char f[8][256];
    CHECK_EQ_INT(csv_record(&p, f, 8), 4);
    CHECK(!strcmp(f[0], "user") && !strcmp(f[1], "item") && !strcmp(f[2], "timestamp") && !strcmp(f[3], "rating"));
    int64_t rows = 0, mismatch = 0;
    for (int32_t u = 0; u < w->n_users; u++)
        for (int64_t k = w->user_off[u]; k < w->user_off[u + 1]; k++) {
            if (csv_record(&p, f, 8) != 4) { mismatch++; continue; }
            rows++;
            mismatch += atoi(f[0]) != u + 1 || atoi(f[1]) != w->inter_item[k] + 1 ||
                        atoll(f[2]) != w->inter_time[k] || atoi(f[3]) != (int)w->inter_rating[k];
        }
    CHECK_EQ_INT(rows, w->n_inter);
    CHECK_EQ_INT(mismatch, 0);
    CHECK(*p == '\0');
    free(buf);

    /* items.csv */
    snprintf(path, sizeof path, "%s/items.csv", dir);
    buf = gr_test_read_file(path, &n);
    REQUIRE(buf);
    p = buf;
    CHECK_EQ_INT(csv_record(&p, f, 8), 4);
    CHECK(!strcmp(f[0], "item") && !strcmp(f[1], "title") && !strcmp(f[2], "genres") && !strcmp(f[3], "brand"));
    mismatch = 0;
    CHECK(strstr(buf, ",\"") != NULL); /* some titles needed quoting */
    for (int32_t i = 0; i < w->n_items; i++) {
        if (csv_record(&p, f, 8) != 4) { mismatch++; continue; }
        mismatch += atoi(f[0]) != i + 1 || strcmp(f[1], w->item_title[i]) || strcmp(f[2], w->item_genres[i]) ||
                    strcmp(f[3], w->studio_name[w->item_studio[i]]);
    }
    CHECK_EQ_INT(mismatch, 0);
    CHECK(*p == '\0');
    free(buf);

    /* no temporary files left behind */
    DIR *dd = opendir(dir);
    REQUIRE(dd);
    int files = 0, tmp = 0;
    for (struct dirent *e; (e = readdir(dd));) {
        if (e->d_name[0] == '.' && (!e->d_name[1] || !strcmp(e->d_name, ".."))) continue;
        files++;
        tmp += strstr(e->d_name, ".tmp") != NULL;
    }
    closedir(dd);
    CHECK_EQ_INT(files, 3);
    CHECK_EQ_INT(tmp, 0);

    /* truth.bin reload: the same world, the same ground truth */
    gr_synth_world *v = gr_synth_load(dir);
    REQUIRE(v);
    CHECK(same_world(w, v));
    CHECK(gr_synth_true_affinity(w, 3, 17) == gr_synth_true_affinity(v, 3, 17));
    double *pw = malloc((size_t)w->n_items * sizeof *pw), *pv = malloc((size_t)w->n_items * sizeof *pv);
    REQUIRE(pw && pv);
    const int32_t *h = w->inter_item + w->user_off[5];
    CHECK(gr_synth_next_dist(w, 5, h, 4, pw) == GR_OK && gr_synth_next_dist(v, 5, h, 4, pv) == GR_OK);
    CHECK(!memcmp(pw, pv, (size_t)w->n_items * sizeof *pw));
    free(pw);
    free(pv);
    gr_synth_free(v);

    /* corrupt and truncated files are rejected with a message */
    snprintf(path, sizeof path, "%s/truth.bin", dir);
    buf = gr_test_read_file(path, &n);
    REQUIRE(buf);
    buf[n / 2] ^= 0x40;
    const char *bad = gr_test_write_file("bad_truth.bin", "");
    FILE *fp = fopen(bad, "wb");
    REQUIRE(fp);
    fwrite(buf, 1, n, fp);
    fclose(fp);
    CHECK(gr_synth_load(bad) == NULL);
    CHECK_HAS(gr_error_message(), "checksum");
    fp = fopen(bad, "wb");
    REQUIRE(fp);
    fwrite(buf, 1, n / 3, fp);
    fclose(fp);
    CHECK(gr_synth_load(bad) == NULL);
    CHECK_HAS(gr_error_message(), "bad_truth.bin");
    free(buf);
    CHECK(gr_synth_load(gr_test_write_file("notes.txt", "hello, world\n")) == NULL);
    CHECK_HAS(gr_error_message(), "magic");
    snprintf(path, sizeof path, "%s/missing", gr_test_tmpdir());
    CHECK(gr_synth_load(path) == NULL);
    CHECK_HAS(gr_error_message(), "missing");

    /* the target is a file, not a directory */
    CHECK(gr_synth_write(w, bad) == GR_ERR);
    CHECK_HAS(gr_error_message(), "not a directory");
    gr_synth_free(w);
}

/* If the generic loader is present, it reads the files back into the same
 * interactions (its own dense ids follow the keys). */
static void test_csv_loader_roundtrip(void)
{
    gr_synth_opts o = small_opts(5);
    gr_synth_world *w = gr_synth_generate(&o);
    REQUIRE(w);
    char dir[512];
    snprintf(dir, sizeof dir, "%s/roundtrip", gr_test_tmpdir());
    REQUIRE(gr_synth_write(w, dir) == GR_OK);
    gr_load_opts lo = gr_load_opts_default();
    gr_dataset *d = gr_dataset_load(dir, &lo);
    if (!d) {
        printf("  loader: %s\n", gr_error_message());
        CHECK(d != NULL);
        gr_synth_free(w);
        return;
    }
    CHECK_EQ_INT(d->n_inter, w->n_inter);
    CHECK_EQ_INT(d->n_users, w->n_users);
    CHECK(d->has_time && d->has_rating);
    int64_t mismatch = 0;
    for (int32_t u = 0; u < d->n_users; u++) {
        int32_t wu = atoi(d->user_key[u]) - 1;
        if (wu < 0 || wu >= w->n_users || d->user_off[u + 1] - d->user_off[u] != w->user_off[wu + 1] - w->user_off[wu]) {
            mismatch++;
            continue;
        }
        for (int64_t k = 0; k < d->user_off[u + 1] - d->user_off[u]; k++) {
            int32_t di = d->inter_item[d->user_off[u] + k], wi = w->inter_item[w->user_off[wu] + k];
            mismatch += atoi(d->item_key[di]) - 1 != wi || strcmp(d->item_title[di], w->item_title[wi]) ||
                        strcmp(d->item_brand[di], w->studio_name[w->item_studio[wi]]) ||
                        d->inter_time[d->user_off[u] + k] != w->inter_time[w->user_off[wu] + k];
        }
    }
    CHECK_EQ_INT(mismatch, 0);
    gr_dataset_free(d);
    gr_synth_free(w);
}

static void test_bad_options(void)
{
    gr_synth_opts o = gr_synth_opts_default();
    o.n_items = 5;
    CHECK(gr_synth_generate(&o) == NULL);
    CHECK_HAS(gr_error_message(), "n_items");
    o = gr_synth_opts_default();
    o.n_genres = 13;
    CHECK(gr_synth_generate(&o) == NULL);
    CHECK_HAS(gr_error_message(), "n_genres");
    o = gr_synth_opts_default();
    o.per_user = 3;
    CHECK(gr_synth_generate(&o) == NULL);
    CHECK_HAS(gr_error_message(), "min_per_user");
    o = gr_synth_opts_default();
    o.zipf = NAN;
    CHECK(gr_synth_generate(&o) == NULL);
    CHECK_HAS(gr_error_message(), "zipf");
}

/* Tiny and odd worlds still satisfy the invariants. */
static void test_small_worlds(void)
{
    gr_synth_opts o = gr_synth_opts_default();
    o.n_users = 50;
    o.n_items = 20;
    o.per_user = 8;
    o.min_per_user = 2;
    o.n_genres = 2;
    o.dim = 1;
    o.franchise_frac = 0.9;
    gr_synth_world *w = gr_synth_generate(&o);
    REQUIRE(w);
    int bad = 0;
    for (int32_t u = 0; u < w->n_users; u++) bad += w->user_off[u + 1] - w->user_off[u] > 10;
    CHECK_EQ_INT(bad, 0);
    CHECK(w->n_franchises > 0);
    gr_synth_free(w);
    o = gr_synth_opts_default();
    o.n_users = 20;
    o.per_user = 1;
    o.min_per_user = 1;
    o.momentum = 0.95;
    o.p_sequel = 1;
    o.sequel_decay = 1;
    w = gr_synth_generate(&o);
    REQUIRE(w);
    CHECK_EQ_INT(w->n_inter, 20);
    gr_synth_free(w);
}

/* A million interactions (only completion and scale are asserted; a
 * sanitized build, ~5x slower, makes 300k). */
static void test_one_million(void)
{
    gr_synth_opts o = gr_synth_opts_default();
    int sanitized = getenv("GENREC_SANITIZED") != NULL;
    o.n_users = sanitized ? 3000 : 10000;
    o.n_items = 10000;
    o.per_user = 100;
    double t = gr_time_now();
    gr_synth_world *w = gr_synth_generate(&o);
    REQUIRE(w);
    printf("  %lld interactions in %.2f s\n", (long long)w->n_inter, gr_time_now() - t);
    CHECK(w->n_inter > 0.9 * o.n_users * o.per_user && w->n_inter < 1.1 * o.n_users * o.per_user);
    gr_synth_free(w);
}

int main(void)
{
    GR_RUN(test_determinism);
    GR_RUN(test_counts_and_order);
    GR_RUN(test_titles);
    GR_RUN(test_sequel_habit);
    GR_RUN(test_popularity_skew);
    GR_RUN(test_drift);
    GR_RUN(test_affinity_correlates);
    GR_RUN(test_next_dist);
    GR_RUN(test_generator_calibrated);
    GR_RUN(test_learnable);
    GR_RUN(test_text_signal);
    GR_RUN(test_dataset);
    GR_RUN(test_write_and_reload);
    GR_RUN(test_csv_loader_roundtrip);
    GR_RUN(test_bad_options);
    GR_RUN(test_small_worlds);
    GR_RUN(test_one_million);
    gr_synth_free(world_default);
    return gr_test_finish();
}
