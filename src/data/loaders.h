/* Internal: the format loaders behind gr_dataset_load.
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

/* File-name tests shared by detection and the loaders (load.c): 1 if NAME
 * is *.json / *.jsonl (optionally .gz), resp. *.{train,valid,test}.inter. */
int gr_name_is_json(const char *name);
int gr_name_is_split_inter(const char *name);

/* Path helpers (gr_path_join, gr_path_find, ...) are in genrec/common.h;
 * gr_text_first_sentence is in data/text.h. */

#endif
