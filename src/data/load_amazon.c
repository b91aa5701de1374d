/* Amazon review data 2018 (J. Ni, J. Li, J. McAuley, EMNLP 2019).
 *
 * Reviews: JSON lines (plain or gzip) with "reviewerID" (string), "asin"
 * (string), "unixReviewTime" (number of seconds; a fraction is truncated)
 * and optionally "overall"
 * (number, the rating). Other keys are parsed (the JSON must be valid) and
 * ignored.
 * Meta (optional): JSON lines with "asin", "title" (string), "brand" (string),
 * "category" (array of strings, joined by '|' into item_genres) and
 * "description" (string or array of strings, joined by ' ' into item_text).
 * Each line is parsed with the strict gr_json parser (genrec/json.h) with
 * lenient escapes: unpaired surrogates and \u0000 decode to U+FFFD. The old
 * python-dict style files (single quotes) are rejected with a message saying
 * so. A key that appears twice in one object: the first one counts.
 *
 * PATH is either the reviews file (its meta file is meta_<CATEGORY>.json[.gz]
 * next to it, where CATEGORY is the review file's stem without a trailing
 * "_5") or a directory with exactly one reviews file (*.json, *.jsonl,
 * optionally .gz) and at most one meta_*.json[.gz] file.
 */
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/loaders.h"
#include "data/text.h"
#include "genrec/json.h"

static const char *const json_sfx[] = {".json.gz", ".jsonl.gz", ".json", ".jsonl", NULL};

/* Scan DIR for the reviews and meta files. */
static int find_files(const char *dir, char **reviews, char **meta)
{
    DIR *dp = opendir(dir);
    if (!dp) return gr_errorf("%s: cannot open directory", dir);
    struct dirent *e;
    char *rv = NULL, *mt = NULL;
    int rc = GR_OK;
    while ((e = readdir(dp)) && rc == GR_OK) {
        const char *nm = e->d_name;
        if (!gr_name_is_json(nm)) continue;
        char **slot = !strncmp(nm, "meta_", 5) ? &mt : &rv;
        if (*slot) {
            rc = gr_errorf("%s: several %s files (%s, %s): pass the reviews file path instead", dir,
                           slot == &mt ? "meta_*.json" : "review", *slot, nm);
            break;
        }
        if (!(*slot = gr_strdup(nm))) rc = GR_ERR;
    }
    closedir(dp);
    if (rc == GR_OK && !rv) rc = gr_errorf("%s: no reviews file (*.json or *.json.gz, Amazon 2018 layout)", dir);
    if (rc == GR_OK) {
        *reviews = gr_path_join(dir, rv);
        *meta = mt ? gr_path_join(dir, mt) : NULL;
        if (!*reviews || (mt && !*meta)) rc = GR_ERR;
    }
    free(rv);
    free(mt);
    return rc;
}

/* Meta file next to a reviews file: meta_<stem without _5>.json[.gz]. */
static char *meta_for(const char *reviews)
{
    char *dir = gr_path_dir(reviews), *stem = gr_path_stem(reviews, json_sfx), *found = NULL;
    if (dir && stem) {
        size_t n = strlen(stem);
        if (n > 2 && !strcmp(stem + n - 2, "_5")) stem[n - 2] = '\0';
        char *nm = malloc(strlen(stem) + 16);
        if (nm) {
            static const char *const ext[] = {".json", ".jsonl", NULL};
            for (int k = 0; ext[k] && !found; k++) {
                snprintf(nm, strlen(stem) + 16, "meta_%s%s", stem, ext[k]);
                found = gr_path_find(dir, nm);
            }
            free(nm);
        }
    }
    free(dir);
    free(stem);
    return found;
}

/* The next non-empty line of R parsed into *doc (replacing the previous
 * document); it must be a JSON object. 1, 0 at the end, -1 on error (naming
 * PATH:LINE:COLUMN). */
static int next_object(gr_lines *r, gr_json_doc **doc, int64_t *ln)
{
    const char *path = gr_lines_path(r);
    char *line;
    size_t len;
    int rc;
    while ((rc = gr_lines_next(r, &line, &len)) == 1) {
        *ln = gr_lines_lineno(r);
        if (len == 0) continue;
        gr_json_free(*doc);
        gr_json_opts o = {.first_line = *ln, .lenient_escapes = 1};
        if (!(*doc = gr_json_parse_ex(line, len, path, &o))) return -1;
        if (gr_json_root(*doc)->type != GR_JSON_OBJECT)
            return gr_errorf("%s:%lld:1: each line must be a JSON object", path, (long long)*ln), -1;
        return 1;
    }
    return rc;
}

/* A required, non-empty string member; the error names the field. */
static const char *req_str(const gr_json *o, const char *key, const char *path, int64_t ln)
{
    const gr_json *v = gr_json_get(o, key);
    if (!v || v->type != GR_JSON_STRING) {
        gr_errorf("%s:%lld: field '%s': %s", path, (long long)ln, key, v ? "must be a string" : "missing");
        return NULL;
    }
    if (!v->n) { gr_errorf("%s:%lld: field '%s': empty", path, (long long)ln, key); return NULL; }
    return v->u.str;
}

/* Join the strings of an array (or a single string) with SEP, cleaning each. */
static char *join_clean(const gr_json *v, const char *sep, const char *path, int64_t ln, const char *field)
{
    size_t cap = 64, len = 0;
    char *out = malloc(cap);
    if (!out) { gr_errorf("out of memory"); return NULL; }
    out[0] = '\0';
    size_t n = !v ? 0 : v->type == GR_JSON_ARRAY ? v->n : 1;
    for (size_t k = 0; k < n; k++) {
        const gr_json *it = v->type == GR_JSON_ARRAY ? &v->u.items[k] : v;
        if (it->type != GR_JSON_STRING) continue;
        char *c = gr_text_clean(it->u.str, it->n, GR_ENC_UTF8, path, ln, field);
        if (!c) { free(out); return NULL; }
        size_t cl = strlen(c), sl = strlen(sep);
        if (cl) {
            if (len + cl + sl + 1 > cap) {
                while (len + cl + sl + 1 > cap) cap *= 2;
                char *q = realloc(out, cap);
                if (!q) { free(c); free(out); gr_errorf("out of memory"); return NULL; }
                out = q;
            }
            if (len) { memcpy(out + len, sep, sl); len += sl; }
            memcpy(out + len, c, cl + 1);
            len += cl;
        }
        free(c);
    }
    return out;
}

static int read_meta(gr_builder *b, const char *path)
{
    gr_lines *r = gr_lines_open(path);
    if (!r) return GR_ERR;
    gr_json_doc *j = NULL;
    int64_t ln;
    int rc;
    while ((rc = next_object(r, &j, &ln)) == 1) {
        const gr_json *o = gr_json_root(j);
        const char *asin = req_str(o, "asin", path, ln);
        if (!asin) { rc = -1; break; }
        if (!gr_builder_has_item(b, asin)) continue; /* not reviewed: skip its text */
        const gr_json *t = gr_json_get(o, "title"), *br = gr_json_get(o, "brand");
        if (t && t->type != GR_JSON_STRING) t = NULL;
        if (br && br->type != GR_JSON_STRING) br = NULL;
        char *title = t ? join_clean(t, "", path, ln, "title") : NULL;
        char *brand = br ? join_clean(br, "", path, ln, "brand") : NULL;
        char *cats = join_clean(gr_json_get(o, "category"), "|", path, ln, "category");
        char *desc = join_clean(gr_json_get(o, "description"), " ", path, ln, "description");
        int ok = (!t || title) && (!br || brand) && cats && desc;
        if (ok) ok = gr_builder_item_text(b, asin, title ? title : "", cats, brand ? brand : "", desc) == GR_OK;
        free(title);
        free(brand);
        free(cats);
        free(desc);
        if (!ok) { rc = -1; break; }
    }
    gr_json_free(j);
    gr_lines_close(r);
    return rc < 0 ? GR_ERR : GR_OK;
}

gr_dataset *gr_load_amazon(const char *path)
{
    char *reviews = NULL, *meta = NULL, *name = NULL;
    gr_builder *b = NULL;
    gr_lines *r = NULL;
    gr_dataset *d = NULL;
    gr_json_doc *j = NULL;
    if (gr_path_is_dir(path)) {
        if (find_files(path, &reviews, &meta) != GR_OK) goto done;
        name = gr_path_stem(path, NULL);
    } else {
        if (!(reviews = gr_strdup(path))) goto done;
        meta = meta_for(path);
        name = gr_path_stem(path, json_sfx);
    }
    if (!name || !(b = gr_builder_init(name, "amazon"))) goto done;
    if (!(r = gr_lines_open(reviews))) goto done;
    int64_t n = 0, ln;
    int rc;
    while ((rc = next_object(r, &j, &ln)) == 1) {
        const gr_json *o = gr_json_root(j);
        const char *user = req_str(o, "reviewerID", reviews, ln);
        const char *item = user ? req_str(o, "asin", reviews, ln) : NULL;
        if (!item) goto done;
        const gr_json *t = gr_json_get(o, "unixReviewTime"), *ov = gr_json_get(o, "overall");
        if (!t || t->type != GR_JSON_NUMBER) {
            gr_errorf("%s:%lld: field 'unixReviewTime': %s", reviews, (long long)ln, t ? "must be a number" : "missing");
            goto done;
        }
        int64_t ts = t->u.num.i;
        if (!t->u.num.is_int) { /* a fraction is truncated; the range is checked by gr_parse_time */
            char lit[40]; /* the shortest text that reads back as the same double */
            snprintf(lit, sizeof lit, "%.15g", t->u.num.d);
            if (strtod(lit, NULL) != t->u.num.d) snprintf(lit, sizeof lit, "%.17g", t->u.num.d);
            if (gr_parse_time(lit, &ts, reviews, ln, "unixReviewTime") != GR_OK) goto done;
        }
        float rating = NAN;
        if (ov && ov->type != GR_JSON_NULL) {
            if (ov->type != GR_JSON_NUMBER || !(fabs(ov->u.num.d) <= 1e30)) {
                gr_errorf("%s:%lld: field 'overall': must be a number", reviews, (long long)ln);
                goto done;
            }
            rating = (float)ov->u.num.d;
        }
        if (gr_builder_add(b, user, item, ts, rating) != GR_OK) { gr_error_prefix("%s:%lld: ", reviews, (long long)ln); goto done; }
        n++;
    }
    if (rc < 0) goto done;
    if (n == 0) {
        gr_errorf("%s:%lld: field 'reviewerID': no review records found (empty file?)", reviews,
                  (long long)gr_lines_lineno(r) + 1);
        goto done;
    }
    if (meta && read_meta(b, meta) != GR_OK) goto done;
    d = gr_builder_finish(b); /* has_rating is automatic: 1 iff every review has "overall" */
    b = NULL;
done:
    gr_json_free(j);
    gr_lines_close(r);
    gr_builder_free(b);
    free(reviews);
    free(meta);
    free(name);
    return d;
}
