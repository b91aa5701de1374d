/* Internal: the format loaders behind gr_dataset_load and small path helpers.
 *
 * Every loader returns a new dataset (before gr_dataset_prepare) or NULL with
 * an error naming file, line and field. See docs/DATASETS.md for the formats. */
#ifndef GENREC_DATA_LOADERS_H
#define GENREC_DATA_LOADERS_H
#include "genrec/dataset.h"

/* MovieLens-100K directory (u.data, optional u.item, u.genre). */
gr_dataset *gr_load_ml100k(const char *dir);
/* MovieLens-1M/10M directory (ratings.dat, optional movies.dat, tags.dat). */
gr_dataset *gr_load_mldat(const char *dir);
/* MovieLens "latest"/20M/25M CSV directory (ratings.csv, optional movies.csv, tags.csv). */
gr_dataset *gr_load_mlcsv(const char *dir);
/* RecBole atomic files: a directory holding one NAME.inter (+ NAME.item) or the .inter path. */
gr_dataset *gr_load_recbole(const char *path);
/* RecBole sequential benchmark: a directory with NAME.{train,valid,test}.inter or one of those paths. */
gr_dataset *gr_load_recbole_seq(const char *path);
/* Amazon review data 2018: a directory with reviews + meta_*.json[.gz], or the reviews file. */
gr_dataset *gr_load_amazon(const char *path);
/* Generic delimited files: a directory with interactions.csv|tsv (+ items.csv|tsv) or one file. */
gr_dataset *gr_load_csv(const char *path);

/* ---- path helpers (fsutil.c) ---- */

/* a + "/" + b, newly allocated (free), NULL + error on OOM. */
char *gr_path_join(const char *a, const char *b);
/* 1 if PATH is an existing regular file / directory. */
int gr_path_is_file(const char *path);
int gr_path_is_dir(const char *path);
/* DIR/NAME if it is a file, else DIR/NAME.gz if that is a file, else NULL
 * (no error recorded unless out of memory). */
char *gr_path_find(const char *dir, const char *name);
/* Last component of PATH without trailing slashes and without any of the
 * given suffixes (NULL-terminated list, first match removed), newly allocated. */
char *gr_path_stem(const char *path, const char *const *suffixes);
/* Directory part of PATH ("." when none), newly allocated. */
char *gr_path_dir(const char *path);
/* 1 if S ends with SUF. */
int gr_str_ends(const char *s, const char *suf);

/* Split "Title. Categories. Brand." style text: newly allocated copy of the
 * part before the first ". " (the whole string when there is none). */
char *gr_text_first_sentence(const char *text);

#endif
