/* Generic delimited files (the format `genrec synth` writes).
 *
 * interactions.csv (or .tsv, optionally .gz): header naming the columns, in
 * any order: user (or user_id, userId), item (item_id, itemId), optional
 * timestamp (time, ts) and rating. Delimiter: TAB if the header line contains
 * a TAB, else comma. Fields may be RFC-4180 quoted. UTF-8.
 * items.csv (optional, same rules): item, title, optional genres, brand, text.
 * Without a timestamp column the data set is order-only (file order).
 * PATH is a directory holding interactions.csv|tsv, or one interactions file
 * (items.csv|tsv next to it is read only when the file is named
 * interactions.*). */
#include <stdlib.h>
#include <string.h>

#include "data/loaders.h"
#include "data/table.h"

static const char *const c_user[] = {"user", "user_id", "userId", NULL};
static const char *const c_item[] = {"item", "item_id", "itemId", NULL};
static const char *const c_time[] = {"timestamp", "time", "ts", NULL};
static const char *const c_rating[] = {"rating", NULL};
static const char *const c_title[] = {"title", NULL};
static const char *const c_genres[] = {"genres", "genre", "categories", NULL};
static const char *const c_brand[] = {"brand", NULL};
static const char *const c_text[] = {"text", "description", NULL};

static int read_items(gr_builder *b, const char *path)
{
    gr_table t;
    if (gr_table_open(&t, path, NULL, 1, 1) != GR_OK) return GR_ERR;
    int id = gr_table_col(&t, c_item, 1);
    int txt[4] = {gr_table_col(&t, c_title, 0), gr_table_col(&t, c_genres, 0), gr_table_col(&t, c_brand, 0),
                  gr_table_col(&t, c_text, 0)};
    int rc = id < 0 ? GR_ERR : gr_table_read_item_text(&t, b, id, txt, 0, 0);
    gr_table_close(&t);
    return rc;
}

static char *find_one(const char *dir, const char *a, const char *b)
{
    char *p = gr_path_find(dir, a);
    return p ? p : gr_path_find(dir, b);
}

gr_dataset *gr_load_csv(const char *path)
{
    static const char *const sfx[] = {".csv.gz", ".tsv.gz", ".txt.gz", ".csv", ".tsv", ".txt", NULL};
    char *inter = NULL, *items = NULL, *name = NULL, *dir = NULL;
    gr_builder *b = NULL;
    gr_dataset *d = NULL;
    gr_table t = {0};
    if (gr_path_is_dir(path)) {
        if (!(inter = find_one(path, "interactions.csv", "interactions.tsv"))) {
            gr_errorf("%s: no interactions.csv or interactions.tsv (generic delimited layout)", path);
            goto done;
        }
        items = find_one(path, "items.csv", "items.tsv");
        name = gr_path_stem(path, NULL);
    } else {
        if (!(inter = gr_strdup(path)) || !(dir = gr_path_dir(path))) goto done;
        char *stem = gr_path_stem(path, sfx);
        if (stem && !strcmp(stem, "interactions")) {
            items = find_one(dir, "items.csv", "items.tsv");
            name = gr_path_stem(dir, NULL);
            free(stem);
        } else {
            name = stem;
        }
    }
    if (!name || !(b = gr_builder_init(name, "csv"))) goto done;
    if (gr_table_open(&t, inter, NULL, 1, 1) != GR_OK) goto done;
    const char *const *const cols[4] = {c_user, c_item, c_time, c_rating};
    gr_inter_cols c;
    if (gr_table_inter_cols(&t, cols, &c) != GR_OK || gr_table_read_interactions(&t, b, &c) != GR_OK) goto done;
    if (items && read_items(b, items) != GR_OK) goto done;
    gr_builder_set_flags(b, c.col[2] >= 0, c.col[3] >= 0);
    d = gr_builder_finish(b);
    b = NULL;
done:
    gr_table_close(&t);
    gr_builder_free(b);
    free(inter);
    free(items);
    free(name);
    free(dir);
    return d;
}
