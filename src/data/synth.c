/* The synthetic world: options, generation, freeing, conversion to the
 * shared gr_dataset, and the summary printout. The catalogue is built in
 * synth_catalog.c, users and their interactions in synth_users.c, files in
 * synth_io.c. */
#include "synth_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

gr_synth_opts gr_synth_opts_default(void)
{
    gr_synth_opts o;
    memset(&o, 0, sizeof o);
    o.seed = 42;
    o.n_users = 1000;
    o.n_items = 1500;
    o.per_user = 60;
    o.min_per_user = 5;
    o.n_genres = 12;
    o.dim = 8;
    o.franchise_frac = 0.2;
    o.zipf = 1.1;
    o.p_sequel = 0.5;
    o.sequel_decay = 0.6;
    o.sequel_gate = 0.1;
    o.momentum = 0.35;
    o.drift = 0.35;
    o.gamma = 1.5;
    o.eta = 0.7;
    o.dup_title_rate = 0.005;
    o.t_start = 946684800; /* 2000-01-01 00:00:00 UTC */
    o.span_days = 1095;
    return o;
}

static int check_range(const char *field, double v, double lo, double hi)
{
    if (!(v >= lo && v <= hi)) return gr_errorf("synth options: field '%s' = %g is outside [%g, %g]", field, v, lo, hi);
    return GR_OK;
}

int synth_check_opts(const gr_synth_opts *o)
{
    if (check_range("n_users", o->n_users, 1, 50e6) || check_range("n_items", o->n_items, 20, 20e6) ||
        check_range("per_user", o->per_user, 1, 1e6) || check_range("min_per_user", o->min_per_user, 1, 1e6) ||
        check_range("n_genres", o->n_genres, 2, GR_SYNTH_MAX_GENRES) ||
        check_range("dim", o->dim, 1, GR_SYNTH_MAX_DIM) || check_range("franchise_frac", o->franchise_frac, 0, 0.9) ||
        check_range("zipf", o->zipf, 0, 3) || check_range("p_sequel", o->p_sequel, 0, 1) ||
        check_range("sequel_decay", o->sequel_decay, 0, 1) || check_range("sequel_gate", o->sequel_gate, 1e-6, 1) ||
        check_range("momentum", o->momentum, 0, 0.95) || check_range("drift", o->drift, 0, 1) ||
        check_range("gamma", o->gamma, 0, 20) || check_range("eta", o->eta, 0, 20) ||
        check_range("dup_title_rate", o->dup_title_rate, 0, 1) || check_range("span_days", o->span_days, 1, 36500) ||
        check_range("t_start", (double)o->t_start, -2208988800.0, 7258118400.0))
        return GR_ERR;
    if (o->min_per_user > o->per_user)
        return gr_errorf("synth options: field 'min_per_user' = %d is larger than per_user = %g", o->min_per_user,
                         o->per_user);
    if ((double)o->n_users * o->per_user > 2e9)
        return gr_errorf("synth options: n_users * per_user = %g exceeds 2e9 interactions",
                         (double)o->n_users * o->per_user);
    return GR_OK;
}

/* ---- allocation ------------------------------------------------------------------- */

int synth_alloc_items(gr_synth_world *w)
{
    size_t n = (size_t)w->n_items;
    w->item_title = gr_calloc(n, sizeof(char *));
    w->item_genres = gr_calloc(n, sizeof(char *));
    w->item_genre = gr_calloc(n, sizeof(int32_t));
    w->item_theme = gr_calloc(n, sizeof(int32_t));
    w->item_genre_mask = gr_calloc(n, sizeof(uint32_t));
    w->item_studio = gr_calloc(n, sizeof(int32_t));
    w->item_franchise = gr_calloc(n, sizeof(int32_t));
    w->item_part = gr_calloc(n, sizeof(int32_t));
    w->item_prev = gr_calloc(n, sizeof(int32_t));
    w->item_next = gr_calloc(n, sizeof(int32_t));
    w->item_year = gr_calloc(n, sizeof(int32_t));
    w->item_pop = gr_calloc(n, sizeof(float));
    w->item_era = gr_calloc(n, sizeof(float));
    w->item_vec = gr_calloc(n * (size_t)w->dim, sizeof(float));
    if (!w->item_title || !w->item_genres || !w->item_genre || !w->item_theme || !w->item_genre_mask ||
        !w->item_studio || !w->item_franchise || !w->item_part || !w->item_prev || !w->item_next ||
        !w->item_year || !w->item_pop || !w->item_era || !w->item_vec)
        return GR_ERR;
    return GR_OK;
}

int synth_alloc_users(gr_synth_world *w)
{
    size_t n = (size_t)w->n_users;
    w->user_theta0 = gr_calloc(n * (size_t)w->n_themes, sizeof(float));
    w->user_theta1 = gr_calloc(n * (size_t)w->n_themes, sizeof(float));
    w->user_vec = gr_calloc(n * (size_t)w->dim, sizeof(float));
    w->user_era = gr_calloc(n, sizeof(float));
    w->user_off = gr_calloc(n + 1, sizeof(int64_t));
    if (!w->user_theta0 || !w->user_theta1 || !w->user_vec || !w->user_era || !w->user_off) return GR_ERR;
    return GR_OK;
}

int synth_alloc_inter(gr_synth_world *w)
{
    size_t n = (size_t)w->n_inter;
    w->inter_item = gr_alloc(n, sizeof(int32_t));
    w->inter_time = gr_alloc(n, sizeof(int64_t));
    w->inter_rating = gr_alloc(n, sizeof(float));
    if (!w->inter_item || !w->inter_time || !w->inter_rating) return GR_ERR;
    return GR_OK;
}

static void free_strings(char **s, int64_t n)
{
    if (!s) return;
    for (int64_t i = 0; i < n; i++) gr_free(s[i]);
    gr_free(s);
}

void gr_synth_free(gr_synth_world *w)
{
    if (!w) return;
    free_strings(w->item_title, w->n_items);
    free_strings(w->item_genres, w->n_items);
    free_strings(w->studio_name, w->n_studios);
    free_strings(w->genre_name, w->n_genres);
    void *arrays[] = {w->item_genre, w->item_theme, w->item_genre_mask, w->item_studio, w->item_franchise,
                      w->item_part, w->item_prev, w->item_next, w->item_year, w->item_pop, w->item_era,
                      w->item_vec, w->user_theta0, w->user_theta1, w->user_vec, w->user_era, w->user_off,
                      w->inter_item, w->inter_time, w->inter_rating, w->item_popq, w->theme_off, w->theme_item,
                      w->item_tpos, w->theme_cdf, w->fen_base};
    for (size_t k = 0; k < sizeof arrays / sizeof arrays[0]; k++) gr_free(arrays[k]);
    gr_free(w);
}

/* ---- generation ----------------------------------------------------------------------- */

gr_synth_world *gr_synth_generate(const gr_synth_opts *opts)
{
    gr_synth_opts o = opts ? *opts : gr_synth_opts_default();
    if (synth_check_opts(&o)) return NULL;
    gr_synth_world *w = gr_calloc(1, sizeof *w);
    if (!w) return NULL;
    w->opts = o;
    w->n_users = o.n_users;
    w->n_items = o.n_items;
    w->n_genres = o.n_genres;
    w->n_themes = o.n_genres * GR_SYNTH_THEMES_PER_GENRE;
    w->dim = o.dim;
    int32_t ns = o.n_items / 40;
    w->n_studios = ns < 8 ? 8 : ns > 320 ? 320 : ns;
    gr_rng base, cat;
    gr_rng_seed(&base, o.seed);
    cat = gr_rng_fork(&base, 1);
    if (synth_alloc_items(w) || synth_alloc_users(w) || synth_build_catalog(w, &cat) ||
        synth_build_users(w, &base)) {
        gr_error_prefix("synth: generate: ");
        gr_synth_free(w);
        return NULL;
    }
    return w;
}

/* ---- dataset -------------------------------------------------------------------------- */

static char *key_of(int64_t id)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%lld", (long long)id + 1);
    return gr_strdup(buf);
}

gr_dataset *gr_synth_to_dataset(const gr_synth_world *w)
{
    gr_dataset *d = gr_calloc(1, sizeof *d);
    if (!d) return NULL;
    size_t ni = (size_t)w->n_items, nu = (size_t)w->n_users, nx = (size_t)w->n_inter;
    d->name = gr_strdup("synth");
    d->format = gr_strdup("synth");
    d->n_users = w->n_users;
    d->n_items = w->n_items;
    d->n_inter = w->n_inter;
    d->has_time = 1;
    d->has_rating = 1;
    d->user_key = gr_calloc(nu, sizeof(char *));
    d->item_key = gr_calloc(ni, sizeof(char *));
    d->item_title = gr_calloc(ni, sizeof(char *));
    d->item_genres = gr_calloc(ni, sizeof(char *));
    d->item_brand = gr_calloc(ni, sizeof(char *));
    d->item_text = gr_calloc(ni, sizeof(char *));
    d->user_off = gr_alloc(nu + 1, sizeof(int64_t));
    d->inter_item = gr_alloc(nx, sizeof(int32_t));
    d->inter_time = gr_alloc(nx, sizeof(int64_t));
    d->inter_rating = gr_alloc(nx, sizeof(float));
    int ok = d->name && d->format && d->user_key && d->item_key && d->item_title && d->item_genres &&
             d->item_brand && d->item_text && d->user_off && d->inter_item && d->inter_time && d->inter_rating;
    for (size_t u = 0; ok && u < nu; u++) ok = (d->user_key[u] = key_of((int64_t)u)) != NULL;
    for (size_t i = 0; ok && i < ni; i++) {
        ok = (d->item_key[i] = key_of((int64_t)i)) && (d->item_title[i] = gr_strdup(w->item_title[i])) &&
             (d->item_genres[i] = gr_strdup(w->item_genres[i])) &&
             (d->item_brand[i] = gr_strdup(w->studio_name[w->item_studio[i]])) && (d->item_text[i] = gr_strdup(""));
    }
    if (!ok) {
        gr_dataset_free(d); /* handles the NULL entries of a partly built dataset */
        return NULL;
    }
    memcpy(d->user_off, w->user_off, (nu + 1) * sizeof(int64_t));
    memcpy(d->inter_item, w->inter_item, nx * sizeof(int32_t));
    memcpy(d->inter_time, w->inter_time, nx * sizeof(int64_t));
    memcpy(d->inter_rating, w->inter_rating, nx * sizeof(float));
    return d;
}

/* ---- summary ----------------------------------------------------------------------------- */

static void fmt_time(int64_t t, char *buf, size_t n)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || !strftime(buf, n, "%Y-%m-%d %H:%M", &tm)) snprintf(buf, n, "%lld", (long long)t);
}

static int cmp_i64_desc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x < y) - (x > y);
}

void gr_synth_print_summary(const gr_synth_world *w, FILE *f)
{
    int64_t fr_items = 0, tmin = INT64_MAX, tmax = INT64_MIN, lmin = INT64_MAX, lmax = 0, never = 0;
    for (int32_t i = 0; i < w->n_items; i++) fr_items += w->item_franchise[i] >= 0;
    for (int32_t u = 0; u < w->n_users; u++) {
        int64_t a = w->user_off[u], b = w->user_off[u + 1];
        if (b - a < lmin) lmin = b - a;
        if (b - a > lmax) lmax = b - a;
        if (b > a && w->inter_time[a] < tmin) tmin = w->inter_time[a];
        if (b > a && w->inter_time[b - 1] > tmax) tmax = w->inter_time[b - 1];
    }
    fprintf(f, "synth world (seed %llu): %d users, %d items, %lld interactions (density %.2f%%)\n",
            (unsigned long long)w->opts.seed, w->n_users, w->n_items, (long long)w->n_inter,
            100.0 * (double)w->n_inter / ((double)w->n_users * w->n_items));
    fprintf(f, "  %d genres, %d themes, %d studios, %d franchises holding %lld items\n", w->n_genres, w->n_themes,
            w->n_studios, w->n_franchises, (long long)fr_items);
    char t0[32], t1[32];
    fmt_time(tmin, t0, sizeof t0);
    fmt_time(tmax, t1, sizeof t1);
    fprintf(f, "  interactions per user: min %lld, mean %.1f, max %lld; time %s .. %s\n", (long long)lmin,
            (double)w->n_inter / w->n_users, (long long)lmax, t0, t1);

    int64_t *cnt = gr_calloc((size_t)w->n_items, sizeof *cnt);
    if (cnt) {
        for (int64_t k = 0; k < w->n_inter; k++) cnt[w->inter_item[k]]++;
        for (int32_t i = 0; i < w->n_items; i++) never += cnt[i] == 0;
        qsort(cnt, (size_t)w->n_items, sizeof *cnt, cmp_i64_desc);
        int64_t top = 0, ntop = w->n_items / 10 > 0 ? w->n_items / 10 : 1;
        for (int64_t i = 0; i < ntop; i++) top += cnt[i];
        fprintf(f, "  popularity: the top 10%% of items get %.1f%% of interactions; %lld items never consumed\n",
                w->n_inter ? 100.0 * (double)top / (double)w->n_inter : 0.0, (long long)never);
        gr_free(cnt);
    }
    fprintf(f, "  genres (share of items):");
    for (int g = 0; g < w->n_genres; g++) {
        int64_t c = 0;
        for (int32_t i = 0; i < w->n_items; i++) c += w->item_genre[i] == g;
        fprintf(f, " %s %.0f%%", w->genre_name[g], 100.0 * (double)c / w->n_items);
    }
    fprintf(f, "\n  example titles:\n");
    int32_t fr = -1, best = 0; /* the longest franchise, preferring subtitled sequels */
    for (int32_t i = 0; i < w->n_items; i++) {
        if (w->item_part[i] != 1) continue;
        int len = 0;
        for (int32_t j = i; j >= 0; j = w->item_next[j]) len++;
        int score = 2 * (len > 4 ? 4 : len) + (w->item_next[i] >= 0 && strchr(w->item_title[w->item_next[i]], ':'));
        if (score > best) best = score, fr = i;
    }
    int shown = 0;
    for (int32_t i = fr; i >= 0 && shown < 4; i = w->item_next[i], shown++)
        fprintf(f, "    %-48s %-26s %s\n", w->item_title[i], w->item_genres[i], w->studio_name[w->item_studio[i]]);
    for (int32_t i = 0; i < w->n_items && shown < 10; i++)
        if (w->item_franchise[i] < 0 && i % 7 == 3) {
            fprintf(f, "    %-48s %-26s %s\n", w->item_title[i], w->item_genres[i], w->studio_name[w->item_studio[i]]);
            shown++;
        }
    int64_t a = w->user_off[0], b = w->user_off[1];
    fprintf(f, "  user 1 (first %lld of %lld items):\n", (long long)(b - a < 10 ? b - a : 10), (long long)(b - a));
    for (int64_t k = a; k < b && k < a + 10; k++) {
        fmt_time(w->inter_time[k], t0, sizeof t0);
        fprintf(f, "    %s  %.0f*  %s\n", t0, w->inter_rating[k], w->item_title[w->inter_item[k]]);
    }
}
