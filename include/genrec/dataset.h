/* The one in-memory dataset representation shared by every loader, model and
 * protocol.
 *
 * Users and items are dense ids 0..n-1; their original keys are kept as
 * strings. Interactions are stored grouped by user (CSR: user_off) and, within
 * a user, in time order; ties in time keep the order in which they appeared in
 * the source file, so every split built from a dataset is deterministic.
 * Item text is valid UTF-8 (Latin-1 converted, HTML entities decoded,
 * whitespace normalised); a missing field is "" (never NULL).
 */
#ifndef GENREC_DATASET_H
#define GENREC_DATASET_H
#include <stdint.h>
#include "genrec/common.h"

typedef struct gr_dataset {
    char *name;          /* e.g. "ml-100k" */
    char *format;        /* loader that produced it: "ml-100k", "ml-dat", "ml-csv",
                            "recbole", "recbole-seq", "amazon", "csv", "synth", "cache" */
    int32_t n_users;
    int32_t n_items;
    int64_t n_inter;

    char **user_key;     /* [n_users] original user id strings */
    char **item_key;     /* [n_items] original item id strings */
    char **item_title;   /* [n_items] title (for MovieLens with the "(1995)" year kept) */
    char **item_genres;  /* [n_items] genres/categories joined by '|', or "" */
    char **item_brand;   /* [n_items] brand/artist/franchise, or "" */
    char **item_text;    /* [n_items] any further description text, or "" */

    int64_t *user_off;   /* [n_users+1] user u's interactions are [user_off[u], user_off[u+1]) */
    int32_t *inter_item; /* [n_inter] item id */
    int64_t *inter_time; /* [n_inter] timestamp (seconds) or, when has_time == 0, the
                            interaction's position in its user's sequence (0, 1, ...) */
    float *inter_rating; /* [n_inter] rating, or NULL when has_rating == 0 */
    int has_time;        /* 1: real timestamps; 0: only order is known */
    int has_rating;
} gr_dataset;

/* Options for loading and preparing a dataset. Zero-initialise, then set.
 * gr_load_opts_default() gives the documented defaults. */
typedef struct gr_load_opts {
    const char *format;   /* NULL/"auto": detect from the path; else a format name above */
    float min_rating;     /* keep interactions with rating >= this (only if ratings exist); 0 = keep all */
    int kcore;            /* iterated k-core on users and items; 0 or 1 = off */
    int dedup;            /* 1: keep only the first interaction of each (user,item) pair */
} gr_load_opts;

gr_load_opts gr_load_opts_default(void); /* format auto, min_rating 0, kcore 0, dedup 1 */

/* Load a dataset from PATH (a directory or a file; formats and detection rules
 * in docs/DATASETS.md), then gr_dataset_prepare() it with OPTS (NULL = the
 * defaults). Returns NULL with gr_error_message() naming file, line and field
 * on error. The caller owns the result and frees it with gr_dataset_free(). */
gr_dataset *gr_dataset_load(const char *path, const gr_load_opts *opts);

/* Free a dataset and everything it owns. NULL is fine. */
void gr_dataset_free(gr_dataset *d);

/* Apply rating threshold, dedup and iterated k-core in place, renumbering
 * users and items densely (keys and text follow; users and items left with
 * no interaction are dropped; relative orders are kept). Deterministic.
 * GR_ERR on OOM or bad options (dataset unchanged then). */
int gr_dataset_prepare(gr_dataset *d, const gr_load_opts *opts);

/* Save / load the prepared dataset as a versioned binary cache ("GRDS",
 * version 1, CRC-32 checked; written atomically: temp file + fsync + rename).
 * save: GR_OK / GR_ERR (the destination is untouched on error).
 * load: a new dataset (format "cache", owned by the caller) or NULL + error
 * when the file is not a cache, has another version, or is corrupt. */
int gr_dataset_save_cache(const gr_dataset *d, const char *path);
gr_dataset *gr_dataset_load_cache(const char *path);

/* Print a one-paragraph summary (users, items, interactions, density, text). */
void gr_dataset_print_summary(const gr_dataset *d, FILE *f);

/* ---- builder used by loaders ---------------------------------------------
 * Loaders append raw records with string keys; gr_builder_finish() assigns
 * dense ids (in first-appearance order), sorts each user's interactions by
 * time with a stable sort (file order breaks ties) and returns the dataset. */
typedef struct gr_builder gr_builder;
/* New builder (NULL + error on OOM); name/format are copied. Free it with
 * gr_builder_free() unless it was passed to gr_builder_finish(). */
gr_builder *gr_builder_init(const char *name, const char *format);
/* Add an interaction; user/item keys are copied. rating may be NAN if absent.
 * GR_ERR on OOM or too many users/items (the builder stays usable for free). */
int gr_builder_add(gr_builder *b, const char *user, const char *item, int64_t time, float rating);
/* Set item text fields (copied; NULL leaves a field unchanged; the text must
 * be valid UTF-8, else GR_ERR). An item that only has text but no
 * interaction is dropped at finish(). */
int gr_builder_item_text(gr_builder *b, const char *item, const char *title,
                         const char *genres, const char *brand, const char *text);
/* 1 if ITEM already has an interaction in B, else 0. Loaders read the
 * interactions first and use this to skip text of items nobody interacted
 * with (a catalogue may be far larger than the data set). */
int gr_builder_has_item(const gr_builder *b, const char *item);
/* Declare whether times are real timestamps and ratings exist. Default:
 * has_time 1; has_rating 1 iff every added rating is a number. With
 * has_time 0 the times only order interactions and finish() replaces them by
 * each interaction's position in its user's sequence. */
void gr_builder_set_flags(gr_builder *b, int has_time, int has_rating);
/* Build the dataset (owned by the caller) or NULL + error on OOM. */
gr_dataset *gr_builder_finish(gr_builder *b); /* frees b in all cases */
void gr_builder_free(gr_builder *b);

#endif
