/* Synthetic users: taste mixtures over themes that drift, latent vectors,
 * era preferences, history lengths and start times; the next-item sampler
 * (rejection sampling with an exact fallback), its exact distribution, the
 * true affinity, and the generation of every user's interactions.
 * See include/genrec/synth.h for the model and docs/SYNTH.md for details. */
#include "synth_internal.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define MAX_THEMES (GR_SYNTH_MAX_GENRES * GR_SYNTH_THEMES_PER_GENRE)
#define MAX_TRIES 256

/* Stream ids for gr_rng_fork (the world's seed stream is forked per purpose). */
#define STREAM_TASTE 0x7a57e000ULL
#define STREAM_INTER 0x1a7e0000ULL

/* ---- random helpers ----------------------------------------------------------- */

/* Gamma(a, 1) by Marsaglia-Tsang (boosted for a < 1). */
static double rgamma(gr_rng *r, double a)
{
    if (a < 1) {
        double u = gr_rng_double(r);
        return rgamma(r, a + 1) * pow(u > 1e-300 ? u : 1e-300, 1.0 / a);
    }
    double d = a - 1.0 / 3, c = 1.0 / sqrt(9 * d);
    for (;;) {
        double x, v;
        do { x = gr_rng_normal(r); v = 1 + c * x; } while (v <= 0);
        v = v * v * v;
        double u = gr_rng_double(r);
        if (u < 1 - 0.0331 * x * x * x * x) return d * v;
        if (log(u) < 0.5 * x * x + d * (1 - v + log(v))) return d * v;
    }
}

static int pick_prior(gr_rng *r, const double *wt, int n)
{
    double tot = 0;
    for (int i = 0; i < n; i++) tot += wt[i];
    double x = gr_rng_double(r) * tot;
    for (int i = 0; i < n; i++) {
        x -= wt[i];
        if (x < 0 && wt[i] > 0) return i;
    }
    for (int i = n - 1; i >= 0; i--)
        if (wt[i] > 0) return i;
    return 0;
}

/* Add weight gw spread over genre g's three themes (Dirichlet(0.6)) to mix. */
static void add_genre(gr_rng *r, double *mix, int g, double gw)
{
    double tw[GR_SYNTH_THEMES_PER_GENRE], s = 0;
    for (int t = 0; t < GR_SYNTH_THEMES_PER_GENRE; t++) s += tw[t] = rgamma(r, 0.6) + 1e-12;
    for (int t = 0; t < GR_SYNTH_THEMES_PER_GENRE; t++) mix[g * GR_SYNTH_THEMES_PER_GENRE + t] += gw * tw[t] / s;
}

/* Tastes, latent vector, era preference, history length and start time of
 * one user, all from the user's own stream (so users can be built in
 * parallel). */
static void user_profile(gr_synth_world *w, int32_t u, gr_rng *r, int32_t *len, int64_t *start)
{
    const gr_synth_opts *o = &w->opts;
    const int ng = w->n_genres, nt = w->n_themes;
    double prior[GR_SYNTH_MAX_GENRES], psum = 0;
    for (int g = 0; g < ng; g++) psum += prior[g] = synth_genres[g].prior;

    double mix[MAX_THEMES] = {0}, x = gr_rng_double(r);
    int k = x < 0.3 ? 1 : x < 0.75 ? 2 : 3;
    if (k > ng) k = ng;
    double avail[GR_SYNTH_MAX_GENRES];
    memcpy(avail, prior, sizeof avail);
    double gsum = 0;
    for (int j = 0; j < k; j++) {
        int g = pick_prior(r, avail, ng);
        avail[g] = 0;
        double gw = rgamma(r, 1.0) + 1e-12;
        gsum += gw;
        add_genre(r, mix, g, gw);
    }
    float *t0 = w->user_theta0 + (size_t)u * nt, *t1 = w->user_theta1 + (size_t)u * nt;
    for (int t = 0; t < nt; t++)
        t0[t] = (float)(0.9 * mix[t] / gsum + 0.1 * prior[t / GR_SYNTH_THEMES_PER_GENRE] / psum / GR_SYNTH_THEMES_PER_GENRE);

    /* drift towards a genre that was not a favourite (any genre if none is left) */
    int left = 0;
    for (int g = 0; g < ng; g++) left += avail[g] > 0;
    int g2 = pick_prior(r, left ? avail : prior, ng);
    double nu[MAX_THEMES] = {0};
    add_genre(r, nu, g2, 1.0);
    for (int t = 0; t < nt; t++) t1[t] = (float)((1 - o->drift) * t0[t] + o->drift * nu[t]);

    float *v = w->user_vec + (size_t)u * w->dim;
    double s = 0;
    for (int j = 0; j < w->dim; j++) { v[j] = (float)gr_rng_normal(r); s += (double)v[j] * v[j]; }
    s = s > 0 ? 1 / sqrt(s) : 1;
    for (int j = 0; j < w->dim; j++) v[j] = (float)(v[j] * s);
    double e = 0.25 + 0.5 * gr_rng_normal(r);
    w->user_era[u] = (float)(e < -1 ? -1 : e > 1 ? 1 : e);

    /* length: min + log-normal with mean per_user - min, capped at half the catalogue */
    double extra = o->per_user - o->min_per_user, sigma = 0.9;
    int64_t n = o->min_per_user;
    if (extra >= 0.5) n += (int64_t)floor(exp(log(extra) - sigma * sigma / 2 + sigma * gr_rng_normal(r)) + 0.5);
    else n = (int64_t)floor(o->per_user + 0.5);
    int64_t cap = w->n_items / 2 > 0 ? w->n_items / 2 : 1;
    if (n > cap) n = cap;
    if (n < 1) n = 1;
    *len = (int32_t)n;
    *start = o->t_start + (int64_t)floor(gr_rng_double(r) * 0.85 * o->span_days * 86400.0);
}

/* ---- the choice model ------------------------------------------------------------ */

static double lam_of(const gr_synth_world *w, int32_t u, int64_t k)
{
    int64_t n = w->user_off[u + 1] - w->user_off[u];
    if (n <= 1) return k > 0 ? 1.0 : 0.0;
    double l = (double)k / (double)(n - 1);
    return l < 1 ? l : 1;
}

static double dotf(const float *a, const float *b, int d)
{
    double s = 0;
    for (int j = 0; j < d; j++) s += (double)a[j] * b[j];
    return s;
}

/* log h(u, i): latent match and era preference, <= 0. */
static double log_match(const gr_synth_world *w, int32_t u, int32_t i)
{
    const gr_synth_opts *o = &w->opts;
    double s = dotf(w->user_vec + (size_t)u * w->dim, w->item_vec + (size_t)i * w->dim, w->dim);
    double e = w->user_era[u];
    return o->gamma * (s - 1) + o->eta * (e * w->item_era[i] - fabs(e));
}

/* Theme weights of the next choice: drifted taste plus momentum on the last
 * item's theme (last < 0: none). */
static void theme_weights(const gr_synth_world *w, int32_t u, double lam, int32_t last, double *wt)
{
    const float *t0 = w->user_theta0 + (size_t)u * w->n_themes, *t1 = w->user_theta1 + (size_t)u * w->n_themes;
    double m = last >= 0 ? w->opts.momentum : 0;
    for (int t = 0; t < w->n_themes; t++) wt[t] = (1 - m) * ((1 - lam) * t0[t] + lam * t1[t]);
    if (last >= 0) wt[w->item_theme[last]] += m;
}

static double gate_of(const gr_synth_world *w, int32_t i, const uint8_t *seen)
{
    int32_t p = w->item_prev[i];
    return p >= 0 && !seen[p] ? w->opts.sequel_gate : 1.0;
}

/* Unnormalised choice weight of an unseen item. */
static double choice_weight(const gr_synth_world *w, int32_t u, int32_t i, const double *wt, const uint8_t *seen)
{
    return wt[w->item_theme[i]] * (double)w->item_popq[i] * exp(log_match(w, u, i)) * gate_of(w, i, seen);
}

/* Chance to jump to the pending sequel (0 if none or already seen). */
static double sequel_chance(const gr_synth_world *w, int32_t pending, int32_t age, const uint8_t *seen)
{
    if (pending < 0 || seen[pending]) return 0;
    return w->opts.p_sequel * pow(w->opts.sequel_decay, age);
}

/* ---- Fenwick trees over item_popq with seen items removed ------------------------ */

/* Per-thread sampler state for a whole history: a copy of the world's
 * per-theme Fenwick trees and each theme's remaining (unseen) mass. Integer
 * weights make removing and restoring items exact, so the state returns
 * bit-identical to the world's after each user whatever the thread schedule. */
typedef struct fen_state {
    uint64_t *fen;               /* [n_items] */
    uint64_t rem[MAX_THEMES];
} fen_state;

/* Theme t's tree: node j (1-based, 1..n_t) is stored at [j - 1]. */
static uint64_t *fen_tree(const gr_synth_world *w, const fen_state *st, int t)
{
    return st->fen + w->theme_off[t];
}

static void fen_add(uint64_t *f, int64_t n, int64_t pos, uint64_t delta)
{
    for (int64_t i = pos + 1; i <= n; i += i & -i) f[i - 1] += delta; /* wraps for negative deltas */
}

/* First 0-based position whose prefix sum reaches target (1 <= target <= total). */
static int64_t fen_find(const uint64_t *f, int64_t n, uint64_t target)
{
    int64_t pos = 0, step = 1;
    while (step * 2 <= n) step *= 2;
    for (; step; step >>= 1) {
        int64_t nxt = pos + step;
        uint64_t v = nxt <= n ? f[nxt - 1] : UINT64_MAX;
        int go = v < target;
        pos = go ? nxt : pos;
        target -= go ? v : 0;
    }
    return pos;
}

static void fen_reset(const gr_synth_world *w, fen_state *st)
{
    for (int t = 0; t < w->n_themes; t++) {
        int64_t a = w->theme_off[t], b = w->theme_off[t + 1];
        st->rem[t] = b > a ? (uint64_t)w->theme_cdf[b - 1] : 0;
    }
}

static void fen_update(const gr_synth_world *w, fen_state *st, int32_t i, uint64_t delta)
{
    int t = w->item_theme[i];
    fen_add(fen_tree(w, st, t), w->theme_off[t + 1] - w->theme_off[t], w->item_tpos[i] - w->theme_off[t], delta);
    st->rem[t] += delta;
}

static void fen_remove(const gr_synth_world *w, fen_state *st, int32_t i)
{
    fen_update(w, st, i, (uint64_t)0 - w->item_popq[i]);
}

static void fen_restore(const gr_synth_world *w, fen_state *st, int32_t i)
{
    fen_update(w, st, i, w->item_popq[i]);
}

/* Draw the next item of user u after k items (last = the k-th, pending /
 * age = sequel state, seen = items consumed). With st the proposal only
 * visits unseen items (Fenwick tree); without, it rejects seen ones. Both
 * sample exactly the distribution of gr_synth_next_dist. -1 when every item
 * is seen. */
static int32_t draw_next(const gr_synth_world *w, int32_t u, int64_t k, int32_t last, int32_t pending,
                         int32_t age, const uint8_t *seen, const fen_state *st, gr_rng *r)
{
    if (gr_rng_double(r) < sequel_chance(w, pending, age, seen)) return pending;
    double wt[MAX_THEMES], cum[MAX_THEMES], tot = 0;
    theme_weights(w, u, lam_of(w, u, k), last, wt);
    for (int t = 0; t < w->n_themes; t++) {
        int64_t a = w->theme_off[t], b = w->theme_off[t + 1];
        double mass = st ? (double)st->rem[t] : b > a ? w->theme_cdf[b - 1] : 0;
        cum[t] = tot += wt[t] * mass;
    }
    for (int tries = 0; tries < MAX_TRIES && tot > 0; tries++) {
        double x = gr_rng_double(r) * tot;
        int t = 0;
        while (t < w->n_themes - 1 && cum[t] <= x) t++;
        int64_t lo = w->theme_off[t], hi = w->theme_off[t + 1];
        int32_t i;
        if (st) {
            if (!st->rem[t]) continue;
            i = w->theme_item[lo + fen_find(fen_tree(w, st, t), hi - lo, gr_rng_below(r, st->rem[t]) + 1)];
        } else {
            if (lo == hi) continue;
            double y = (double)gr_rng_below(r, (uint64_t)w->theme_cdf[hi - 1]);
            while (lo < hi - 1) { /* first j with cdf[j] > y */
                int64_t mid = lo + (hi - 1 - lo) / 2;
                if (w->theme_cdf[mid] > y) hi = mid + 1;
                else lo = mid + 1;
            }
            i = w->theme_item[lo];
        }
        if (seen[i]) continue;
        if (gr_rng_double(r) < exp(log_match(w, u, i)) * gate_of(w, i, seen)) return i;
    }
    /* exact fallback (rare): the same distribution computed item by item */
    double total = 0;
    for (int32_t i = 0; i < w->n_items; i++)
        if (!seen[i]) total += choice_weight(w, u, i, wt, seen);
    if (!(total > 0)) return -1;
    double x = gr_rng_double(r) * total;
    int32_t lastok = -1;
    for (int32_t i = 0; i < w->n_items; i++) {
        if (seen[i]) continue;
        lastok = i;
        x -= choice_weight(w, u, i, wt, seen);
        if (x < 0) return i;
    }
    return lastok;
}

/* Sequel state after a history: the next part of the most recent franchise
 * item, and how many items were consumed after it. */
static void sequel_state(const gr_synth_world *w, const int32_t *hist, int32_t n, int32_t *pending, int32_t *age)
{
    *pending = -1;
    *age = 0;
    for (int32_t j = n - 1; j >= 0; j--)
        if (w->item_next[hist[j]] >= 0) {
            *pending = w->item_next[hist[j]];
            *age = n - 1 - j;
            return;
        }
}

static int check_hist(const gr_synth_world *w, int32_t u, const int32_t *hist, int32_t n)
{
    if (u < 0 || u >= w->n_users) return gr_errorf("synth: user %d out of range [0, %d)", u, w->n_users);
    if (n < 0 || (n > 0 && !hist)) return gr_errorf("synth: bad history (n = %d)", n);
    for (int32_t j = 0; j < n; j++)
        if (hist[j] < 0 || hist[j] >= w->n_items)
            return gr_errorf("synth: history item %d at position %d out of range [0, %d)", hist[j], j, w->n_items);
    return GR_OK;
}

double gr_synth_true_affinity(const gr_synth_world *w, int32_t user, int32_t item)
{
    if (!w || user < 0 || user >= w->n_users || item < 0 || item >= w->n_items) return -INFINITY;
    double th = w->user_theta1[(size_t)user * w->n_themes + w->item_theme[item]];
    return log(th * (double)w->item_popq[item] * 0x1p-40) + log_match(w, user, item);
}

int gr_synth_next_dist(const gr_synth_world *w, int32_t user, const int32_t *hist, int32_t n, double *probs)
{
    if (check_hist(w, user, hist, n)) return GR_ERR;
    uint8_t *seen = gr_calloc((size_t)w->n_items, 1);
    if (!seen) return GR_ERR;
    for (int32_t j = 0; j < n; j++) seen[hist[j]] = 1;
    double wt[MAX_THEMES], total = 0;
    theme_weights(w, user, lam_of(w, user, n), n > 0 ? hist[n - 1] : -1, wt);
    for (int32_t i = 0; i < w->n_items; i++) total += probs[i] = seen[i] ? 0 : choice_weight(w, user, i, wt, seen);
    int32_t pending, age;
    sequel_state(w, hist, n, &pending, &age);
    double s = sequel_chance(w, pending, age, seen);
    gr_free(seen);
    if (!(total > 0)) return gr_errorf("synth: user %d has seen every item", user);
    for (int32_t i = 0; i < w->n_items; i++) probs[i] *= (1 - s) / total;
    if (s > 0) probs[pending] += s;
    return GR_OK;
}

int32_t gr_synth_sample_next(const gr_synth_world *w, int32_t user, const int32_t *hist, int32_t n,
                             const uint8_t *seen, gr_rng *rng)
{
    if (check_hist(w, user, hist, n)) return -1;
    uint8_t *own = NULL;
    if (!seen) {
        if (!(own = gr_calloc((size_t)w->n_items, 1))) return -1;
        for (int32_t j = 0; j < n; j++) own[hist[j]] = 1;
        seen = own;
    }
    int32_t pending, age;
    sequel_state(w, hist, n, &pending, &age);
    int32_t i = draw_next(w, user, n, n > 0 ? hist[n - 1] : -1, pending, age, seen, NULL, rng);
    gr_free(own);
    if (i < 0) gr_errorf("synth: user %d has seen every item", user);
    return i;
}

int synth_sample_fenwick(const gr_synth_world *w, int32_t user, const int32_t *hist, int32_t n, gr_rng *rng,
                         int32_t count, int32_t *out)
{
    if (check_hist(w, user, hist, n)) return GR_ERR;
    uint8_t *seen = gr_calloc((size_t)w->n_items, 1);
    fen_state st;
    st.fen = gr_alloc((size_t)w->n_items, sizeof *st.fen);
    int rc = GR_OK;
    if (!seen || !st.fen) rc = GR_ERR;
    if (rc == GR_OK) {
        memcpy(st.fen, w->fen_base, (size_t)w->n_items * sizeof *st.fen);
        fen_reset(w, &st);
        for (int32_t j = 0; j < n; j++)
            if (!seen[hist[j]]) {
                seen[hist[j]] = 1;
                fen_remove(w, &st, hist[j]);
            }
        int32_t pending, age;
        sequel_state(w, hist, n, &pending, &age);
        for (int32_t c = 0; c < count && rc == GR_OK; c++)
            if ((out[c] = draw_next(w, user, n, n > 0 ? hist[n - 1] : -1, pending, age, seen, &st, rng)) < 0)
                rc = gr_errorf("synth: user %d has seen every item", user);
    }
    gr_free(seen);
    gr_free(st.fen);
    return rc;
}

/* ---- interactions ------------------------------------------------------------------ */

/* Rating 1..5 from how well the item matches the user's current taste. */
static float rating_of(const gr_synth_world *w, int32_t u, int32_t i, double lam, double bias, gr_rng *r)
{
    size_t t = (size_t)u * w->n_themes + w->item_theme[i];
    double th = (1 - lam) * w->user_theta0[t] + lam * w->user_theta1[t];
    double s = dotf(w->user_vec + (size_t)u * w->dim, w->item_vec + (size_t)i * w->dim, w->dim);
    double z = 0.5 * log(w->n_themes * th) + 1.2 * s + 0.4 * w->user_era[u] * w->item_era[i] + bias +
               0.6 * gr_rng_normal(r);
    static const double cut[4] = {-1.4, -0.52, 0.5, 1.6};
    int rating = 1;
    for (int c = 0; c < 4; c++) rating += z > cut[c];
    return (float)rating;
}

/* Fill user u's interactions [user_off[u], user_off[u+1]) from start time. */
static int user_history(gr_synth_world *w, int32_t u, int64_t start, gr_rng *r, uint8_t *seen, fen_state *st)
{
    int64_t off = w->user_off[u], n = w->user_off[u + 1] - off;
    int32_t *items = w->inter_item + off;
    int64_t t = start;
    int32_t last = -1, pending = -1, age = 0;
    double bias = 0.35 * gr_rng_normal(r);
    int rc = GR_OK;
    for (int64_t k = 0; k < n; k++) {
        int32_t i = draw_next(w, u, k, last, pending, age, seen, st, r);
        if (i < 0) { rc = GR_ERR; n = k; break; }
        items[k] = i;
        seen[i] = 1;
        fen_remove(w, st, i);
        if (w->item_next[i] >= 0) { pending = w->item_next[i]; age = 0; }
        else age++;
        last = i;
        if (k > 0) {
            double gap = gr_rng_double(r) < 0.25 ? 3600 + 3 * 86400.0 * -log(1 - gr_rng_double(r))
                                                 : 30 + 360.0 * -log(1 - gr_rng_double(r));
            t += (int64_t)gap + 1;
        }
        w->inter_time[off + k] = t;
        w->inter_rating[off + k] = rating_of(w, u, i, lam_of(w, u, k), bias, r);
    }
    for (int64_t k = 0; k < n; k++) {
        seen[items[k]] = 0;
        fen_restore(w, st, items[k]);
    }
    return rc;
}

int synth_build_users(gr_synth_world *w, const gr_rng *rng)
{
    const int32_t nu = w->n_users;
    gr_rng taste = gr_rng_fork(rng, STREAM_TASTE), inter = gr_rng_fork(rng, STREAM_INTER);
    int32_t *len = gr_alloc((size_t)nu, sizeof *len);
    int64_t *start = gr_alloc((size_t)nu, sizeof *start);
    if (!len || !start) { gr_free(len); gr_free(start); return GR_ERR; }
    int nth = gr_threads_get();

    #pragma omp parallel for schedule(static) num_threads(nth)
    for (int32_t u = 0; u < nu; u++) {
        gr_rng r = gr_rng_fork(&taste, (uint64_t)u);
        user_profile(w, u, &r, &len[u], &start[u]);
    }
    w->user_off[0] = 0;
    for (int32_t u = 0; u < nu; u++) w->user_off[u + 1] = w->user_off[u] + len[u];
    w->n_inter = w->user_off[nu];
    gr_free(len);
    if (synth_alloc_inter(w)) { gr_free(start); return GR_ERR; }

    int failed = 0;
    #pragma omp parallel num_threads(nth)
    {
        uint8_t *seen = calloc((size_t)w->n_items, 1);
        fen_state st;
        st.fen = malloc((size_t)w->n_items * sizeof *st.fen);
        if (!seen || !st.fen) {
            #pragma omp atomic write
            failed = 1;
        } else {
            memcpy(st.fen, w->fen_base, (size_t)w->n_items * sizeof *st.fen);
            fen_reset(w, &st);
        }
        #pragma omp for schedule(dynamic, 32)
        for (int32_t u = 0; u < nu; u++) {
            if (!seen || !st.fen) continue;
            gr_rng r = gr_rng_fork(&inter, (uint64_t)u);
            if (user_history(w, u, start[u], &r, seen, &st)) {
                #pragma omp atomic write
                failed = 2;
            }
        }
        free(seen);
        free(st.fen);
    }
    gr_free(start);
    if (failed == 1) return gr_errorf("out of memory for the sampler's scratch space");
    if (failed) return gr_errorf("a user ran out of unseen items (n_items too small)");
    return GR_OK;
}
