/* The synthetic world: a deterministic (seeded) generator of a movie-like
 * recommendation world, the project's embedded default data for the demo,
 * the tests and the benchmarks. docs/SYNTH.md describes the model in full.
 *
 * Catalogue: items belong to a primary genre and one of its themes (3 per
 * genre; every theme has its own vocabulary), may carry secondary genres, a
 * studio (the dataset's brand), a release year and a place in a franchise of
 * numbered sequels. Titles are built from the theme's words, so shared words
 * carry signal: "Star Quest II: The Iron Moon (1997)".
 *
 * Users: a taste mixture over themes that drifts from theta0 (first
 * interaction) to theta1 (last), a unit latent vector matched against the
 * items' latent vectors, an era preference (old vs new films), and a total
 * length n_u. Each step the user picks the next item from
 *
 *   P(i) = s * [i == pending sequel]
 *        + (1 - s) * w(theme_i) * pop_i * h(u, i) * gate_i * [i unseen] / Z
 *
 *   w     = (1 - momentum) * ((1 - lam) theta0 + lam theta1) + momentum * [theme of last item],
 *           lam = min(1, k / (n_u - 1)) after k interactions
 *   pop_i = Zipf-like popularity of i normalised within its theme (item_popq * 2^-40)
 *   h     = exp(gamma (<p_u, q_i> - 1) + eta (era_u * era_i - |era_u|))   (in (0, 1])
 *   gate  = sequel_gate when i is part k > 1 of a franchise and part k-1 is unseen, else 1
 *   s     = p_sequel * sequel_decay^age for the next part of the most recent
 *           franchise item consumed (age = items consumed since), else 0.
 *
 * Item and user ids are dense 0-based; the keys written to the CSV files are
 * id + 1 ("1", "2", ...). Every array below is owned by the world; treat the
 * struct as read-only.
 */
#ifndef GENREC_SYNTH_H
#define GENREC_SYNTH_H
#include <stdint.h>
#include <stdio.h>
#include "genrec/dataset.h"
#include "genrec/rng.h"

#define GR_SYNTH_MAX_GENRES 12
#define GR_SYNTH_THEMES_PER_GENRE 3
#define GR_SYNTH_MAX_DIM 64

typedef struct gr_synth_opts {
    uint64_t seed;           /* default 42 */
    int32_t n_users;         /* default 1000 (1 .. 50,000,000) */
    int32_t n_items;         /* default 1500 (20 .. 20,000,000) */
    double per_user;         /* mean interactions per user, default 60 (log-normal lengths) */
    int32_t min_per_user;    /* shortest user history, default 5 */
    int32_t n_genres;        /* 2 .. 12, default 12 */
    int32_t dim;             /* latent dimension, 1 .. 64, default 8 */
    double franchise_frac;   /* share of items that belong to a franchise, default 0.2 */
    double zipf;             /* popularity exponent: pop ~ (rank + 1)^-zipf, default 1.1 */
    double p_sequel;         /* chance to watch the next part right after part k, default 0.5 */
    double sequel_decay;     /* that chance decays by this factor per item consumed since, default 0.6 */
    double sequel_gate;      /* weight of part k > 1 while part k-1 is unseen, default 0.1 */
    double momentum;         /* weight of the last item's theme in the next choice, default 0.35 */
    double drift;            /* share of taste that moves to a new genre over a history, default 0.35 */
    double gamma;            /* strength of the latent-vector match, default 1.5 */
    double eta;              /* strength of the era (release year) preference, default 0.7 */
    double dup_title_rate;   /* chance to accept a duplicate "Title (Year)", default 0.005 */
    int64_t t_start;         /* first possible timestamp (unix seconds), default 2000-01-01 */
    double span_days;        /* users start uniformly within 85% of this span, default 1095 */
} gr_synth_opts;

/* The defaults documented above (a small world: ~1,000 users, ~1,500 items,
 * ~60k interactions, generated in well under a second). */
gr_synth_opts gr_synth_opts_default(void);

typedef struct gr_synth_world {
    gr_synth_opts opts;
    int32_t n_users, n_items;
    int32_t n_genres, n_themes;   /* n_themes = n_genres * GR_SYNTH_THEMES_PER_GENRE */
    int32_t n_studios, n_franchises, dim;
    int64_t n_inter;

    /* catalogue, [n_items] each */
    char **item_title;       /* "Star Quest II: The Iron Moon (1997)" */
    char **item_genres;      /* "Sci-Fi|Adventure" (primary genre first) */
    int32_t *item_genre;     /* primary genre 0..n_genres-1 */
    int32_t *item_theme;     /* genre * 3 + theme 0..2 */
    uint32_t *item_genre_mask; /* bit g set when the item has genre g */
    int32_t *item_studio;    /* 0..n_studios-1 */
    int32_t *item_franchise; /* 0..n_franchises-1, or -1 */
    int32_t *item_part;      /* 1-based part number, 0 when not in a franchise */
    int32_t *item_prev;      /* item id of the previous / next part, or -1 */
    int32_t *item_next;
    int32_t *item_year;
    float *item_pop;         /* popularity share within its theme (sums to 1 per theme) */
    float *item_era;         /* release year scaled to [-1, 1] (old .. new) */
    float *item_vec;         /* [n_items * dim] unit vectors */
    char **studio_name;      /* [n_studios] */
    char **genre_name;       /* [n_genres] */

    /* users */
    float *user_theta0;      /* [n_users * n_themes] taste at the first interaction (sums to 1) */
    float *user_theta1;      /* [n_users * n_themes] taste at the last interaction */
    float *user_vec;         /* [n_users * dim] unit vectors */
    float *user_era;         /* [n_users] -1 (likes old films) .. 1 (likes new ones) */

    /* interactions: CSR by user, time-ordered, timestamps strictly increasing per user */
    int64_t *user_off;       /* [n_users + 1] */
    int32_t *inter_item;     /* [n_inter] */
    int64_t *inter_time;     /* [n_inter] unix seconds */
    float *inter_rating;     /* [n_inter] 1..5 */

    /* sampling index (derived from the above; rebuilt by gr_synth_load) */
    uint64_t *item_popq;     /* [n_items] pop in fixed point (units of 2^-40, >= 1): the
                                value the sampler and the formulas below use */
    int64_t *theme_off;      /* [n_themes + 1] */
    int32_t *theme_item;     /* [n_items] items grouped by theme */
    int64_t *item_tpos;      /* [n_items] position of each item in theme_item */
    double *theme_cdf;       /* [n_items] cumulative item_popq within the theme (exact integers) */
    uint64_t *fen_base;      /* [n_items] one Fenwick tree of item_popq per theme segment */
} gr_synth_world;

/* Generate a world from opts (NULL = defaults). The same opts (seed
 * included) give a bit-identical world for any thread count (across machines
 * too, as far as their libm's exp/log/pow agree, which glibc's do). Returns NULL with an error naming the bad option on invalid opts,
 * or on OOM. The caller frees the world with gr_synth_free(). */
gr_synth_world *gr_synth_generate(const gr_synth_opts *opts);

/* Free a world and everything it owns. NULL is fine. */
void gr_synth_free(gr_synth_world *w);

/* Build the in-memory dataset: ids equal the world's ids (every catalogue
 * item is present, even one nobody consumed), keys are id + 1, interactions
 * time-ordered per user, has_time = has_rating = 1, item_brand = studio,
 * item_text = "", name and format "synth". The caller frees it with
 * gr_dataset_free(). NULL + error on OOM. */
gr_dataset *gr_synth_to_dataset(const gr_synth_world *w);

/* True affinity of user u for item i: the log of the unnormalised weight with
 * which u, at the end of their history (taste theta1) and without sequential
 * context, would choose i:
 *   log(theta1[theme_i] * pop_i) + gamma (<p_u,q_i> - 1) + eta (era_u era_i - |era_u|)
 * with pop_i = item_popq[i] * 2^-40.
 * Differences are log-odds between items. Returns -INFINITY for ids out of
 * range. */
double gr_synth_true_affinity(const gr_synth_world *w, int32_t user, int32_t item);

/* The exact distribution of user u's next item after the history hist[0..n)
 * (oldest first; normally a prefix of u's own history, but any distinct
 * item ids work), under the generative model above with lam = min(1,
 * n / (n_u - 1)). probs[n_items] receives the probabilities (0 for items in
 * hist; they sum to 1). GR_ERR + error on a bad user/item id or when every
 * item is already in hist. */
int gr_synth_next_dist(const gr_synth_world *w, int32_t user, const int32_t *hist, int32_t n,
                       double *probs);

/* Draw user u's next item after hist[0..n) from the distribution of
 * gr_synth_next_dist (the sampler the generator itself uses; fast: rejection
 * sampling with an exact fallback). seen is a scratch array of n_items bytes
 * that must be 1 exactly for the items of hist (NULL: built internally).
 * Returns the item id, or -1 + error when every item is seen or ids are bad. */
int32_t gr_synth_sample_next(const gr_synth_world *w, int32_t user, const int32_t *hist, int32_t n,
                             const uint8_t *seen, gr_rng *rng);

/* Write the world into directory dir (created if missing):
 *   interactions.csv  header "user,item,timestamp,rating", one row per
 *                     interaction, grouped by user, time-ordered;
 *   items.csv         header "item,title,genres,brand" (RFC-4180 quoting for
 *                     fields with a comma, quote or newline; genres joined by '|');
 *   truth.bin         the complete world (options, catalogue, user tastes,
 *                     interactions) for gr_synth_load(); format in docs/SYNTH.md.
 * Each file is written to a temporary name and renamed, so readers never see
 * a partial file. GR_ERR + error naming the file on failure. */
int gr_synth_write(const gr_synth_world *w, const char *dir);

/* Load a world saved by gr_synth_write (path = the directory or the
 * truth.bin file itself). Every field is validated (magic, version,
 * checksum, sizes, id ranges). NULL + error naming file and field on
 * failure. The caller frees it with gr_synth_free(). */
gr_synth_world *gr_synth_load(const char *path);

/* Print a summary: counts, genre shares, popularity skew, example titles
 * (including a franchise), and the first items of one user's history. */
void gr_synth_print_summary(const gr_synth_world *w, FILE *f);

#endif
