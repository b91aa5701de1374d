/* Internal: pieces of the synthetic world shared by synth*.c.
 *   synth.c          options, generate, free, to_dataset, summary
 *   synth_catalog.c  genres, vocabularies, titles, studios, franchises, popularity
 *   synth_users.c    tastes, the next-item sampler and its exact distribution, interactions
 *   synth_io.c       CSV files and truth.bin (write and load)
 */
#ifndef GENREC_DATA_SYNTH_INTERNAL_H
#define GENREC_DATA_SYNTH_INTERNAL_H
#include "genrec/synth.h"

/* Static description of a built-in genre. */
typedef struct synth_genre_info {
    const char *name;
    double prior;       /* relative share of items and of users' favourite genres */
    double franchise;   /* relative propensity to have franchises */
    int partners[5];    /* genres that co-occur as secondary genres, -1 terminated */
} synth_genre_info;

extern const synth_genre_info synth_genres[GR_SYNTH_MAX_GENRES];

/* Fill the catalogue of w (w->opts, n_items, n_genres, n_themes, dim set):
 * items, studios, genre names and the per-theme sampling index. */
int synth_build_catalog(gr_synth_world *w, gr_rng *rng);

/* Build the per-theme sampling index (theme_off/theme_item/theme_cdf) from
 * item_theme and item_pop. Used by generation and by load. */
int synth_build_index(gr_synth_world *w);

/* Fill users' tastes and their interactions (w's catalogue must be built). */
int synth_build_users(gr_synth_world *w, const gr_rng *rng);

/* Test hook: draw count next items of user after hist[0..n) with the
 * generator's own sampler (Fenwick trees with the history removed), so tests
 * can compare it with gr_synth_next_dist. GR_ERR + error on bad ids. */
int synth_sample_fenwick(const gr_synth_world *w, int32_t user, const int32_t *hist, int32_t n, gr_rng *rng,
                         int32_t count, int32_t *out);

/* Allocate every per-item / per-user array of w (zeroed; string arrays of
 * NULL). n_inter may be 0 and the interaction arrays are then allocated later. */
int synth_alloc_items(gr_synth_world *w);
int synth_alloc_users(gr_synth_world *w);
int synth_alloc_inter(gr_synth_world *w);

/* Validate options; GR_ERR + message naming the field. */
int synth_check_opts(const gr_synth_opts *o);

/* Unix time -> calendar year (UTC). */
int synth_year_of(int64_t t);

#endif
