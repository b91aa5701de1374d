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
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/loaders.h"
#include "data/text.h"

#define CSV_MAXF 64

static const char *const c_user[] = {"user", "user_id", "userId", NULL};
static const char *const c_item[] = {"item", "item_id", "itemId", NULL};
static const char *const c_time[] = {"timestamp", "time", "ts", NULL};
static const char *const c_rating[] = {"rating", NULL};
static const char *const c_title[] = {"title", NULL};
static const char *const c_genres[] = {"genres", "genre", "categories", NULL};
static const char *const c_brand[] = {"brand", NULL};
static const char *const c_text[] = {"text", "description", NULL};

typedef struct csvf {
    gr_lines *r;
    const char *path;
    char delim;
    int nf;
    char *f[CSV_MAXF];
} csvf;

/* Open, read the header, detect the delimiter and locate columns. */
static int csv_open(csvf *c, const char *path, const char *const *const *cols, const int *req, int *idx, int ncols)
{
    memset(c, 0, sizeof *c);
    c->path = path;
    if (!(c->r = gr_lines_open(path))) return GR_ERR;
    char *line;
    size_t len;
    int rc = gr_lines_next(c->r, &line, &len);
    if (rc == 0) return gr_errorf("%s:1: field 'header': empty file (a header line is required)", path);
    if (rc < 0) return GR_ERR;
    c->delim = memchr(line, '\t', len) ? '\t' : ',';
    c->nf = gr_fields_split(line, len, c->delim, 1, c->f, CSV_MAXF, path, 1);
    if (c->nf < 0) return GR_ERR;
    if (c->nf > CSV_MAXF) return gr_errorf("%s:1: header has %d fields (at most %d)", path, c->nf, CSV_MAXF);
    for (int k = 0; k < ncols; k++) {
        idx[k] = gr_fields_find(c->f, c->nf, cols[k]);
        if (idx[k] < 0 && req[k])
            return gr_errorf("%s:1: field '%s': column missing from the header", path, cols[k][0]);
    }
    return GR_OK;
}

/* Next record: 1, 0 at EOF, -1 on error. */
static int csv_next(csvf *c, int64_t *ln)
{
    char *line;
    size_t len;
    for (;;) {
        int rc = gr_lines_next_record(c->r, c->delim, &line, &len);
        if (rc <= 0) return rc;
        *ln = gr_lines_lineno(c->r);
        if (len == 0) continue;
        char *f[CSV_MAXF];
        int nf = gr_fields_split(line, len, c->delim, 1, f, CSV_MAXF, c->path, *ln);
        if (nf < 0) return -1;
        if (nf != c->nf) {
            gr_errorf("%s:%lld: expected %d %s-separated fields as in the header, found %d", c->path, (long long)*ln,
                      c->nf, c->delim == '\t' ? "TAB" : "comma", nf);
            return -1;
        }
        memcpy(c->f, f, sizeof(char *) * (size_t)nf);
        return 1;
    }
}

static int key_ok(const char *s, const char *path, int64_t ln, const char *field)
{
    size_t bad;
    if (!s[0]) return gr_errorf("%s:%lld: field '%s': empty id", path, (long long)ln, field);
    if (!gr_utf8_valid(s, strlen(s), &bad))
        return gr_errorf("%s:%lld: field '%s': invalid UTF-8 at byte %zu", path, (long long)ln, field, bad + 1);
    return GR_OK;
}

static int read_items(gr_builder *b, const char *path)
{
    csvf c;
    int idx[5], rc;
    const char *const *cols[5] = {c_item, c_title, c_genres, c_brand, c_text};
    static const int req[5] = {1, 0, 0, 0, 0};
    static const char *names[5] = {"item", "title", "genres", "brand", "text"};
    int64_t ln;
    if (csv_open(&c, path, cols, req, idx, 5) != GR_OK) goto fail;
    while ((rc = csv_next(&c, &ln)) == 1) {
        if (key_ok(c.f[idx[0]], path, ln, "item") != GR_OK) goto fail;
        if (!gr_builder_has_item(b, c.f[idx[0]])) continue; /* no interactions: skip its text */
        char *v[5] = {0};
        int ok = GR_OK;
        for (int k = 1; k < 5 && ok == GR_OK; k++)
            if (idx[k] >= 0 && !(v[k] = gr_text_clean(c.f[idx[k]], strlen(c.f[idx[k]]), GR_ENC_UTF8, path, ln, names[k])))
                ok = GR_ERR;
        if (ok == GR_OK) ok = gr_builder_item_text(b, c.f[idx[0]], v[1], v[2], v[3], v[4]);
        for (int k = 0; k < 5; k++) free(v[k]);
        if (ok != GR_OK) goto fail;
    }
    if (rc < 0) goto fail;
    gr_lines_close(c.r);
    return GR_OK;
fail:
    gr_lines_close(c.r);
    return GR_ERR;
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
    csvf c = {0};
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
    int idx[4], rc;
    const char *const *cols[4] = {c_user, c_item, c_time, c_rating};
    static const int req[4] = {1, 1, 0, 0};
    int64_t ln, n = 0;
    if (csv_open(&c, inter, cols, req, idx, 4) != GR_OK) goto done;
    while ((rc = csv_next(&c, &ln)) == 1) {
        int64_t ts = n;
        float rating = NAN;
        if (key_ok(c.f[idx[0]], inter, ln, "user") || key_ok(c.f[idx[1]], inter, ln, "item") ||
            (idx[2] >= 0 && gr_parse_time(c.f[idx[2]], &ts, inter, ln, "timestamp")) ||
            (idx[3] >= 0 && gr_parse_float(c.f[idx[3]], &rating, inter, ln, "rating")))
            goto done;
        if (gr_builder_add(b, c.f[idx[0]], c.f[idx[1]], ts, rating) != GR_OK) {
            gr_error_prefix("%s:%lld: ", inter, (long long)ln);
            goto done;
        }
        n++;
    }
    if (rc < 0) goto done;
    if (n == 0) {
        gr_errorf("%s:%lld: field 'user': no interaction records after the header", inter,
                  (long long)gr_lines_lineno(c.r) + 1);
        goto done;
    }
    if (items && read_items(b, items) != GR_OK) goto done;
    gr_builder_set_flags(b, idx[2] >= 0, idx[3] >= 0);
    d = gr_builder_finish(b);
    b = NULL;
done:
    gr_lines_close(c.r);
    gr_builder_free(b);
    free(inter);
    free(items);
    free(name);
    free(dir);
    return d;
}
