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
 * Only strict JSON is accepted: the old python-dict style files (single
 * quotes) are rejected with a message saying so.
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

#include "data/json_lines.h"
#include "data/loaders.h"
#include "data/text.h"

static int is_json_name(const char *nm)
{
    return gr_str_ends(nm, ".json") || gr_str_ends(nm, ".json.gz") || gr_str_ends(nm, ".jsonl") ||
           gr_str_ends(nm, ".jsonl.gz");
}

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
        if (!is_json_name(nm)) continue;
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

/* A required string member; error names the field. */
static const char *req_str(const gr_jl_doc *j, const gr_jl *o, const char *key, const char *path, int64_t ln)
{
    const gr_jl *v = gr_jl_get(j, o, key);
    if (!v || v->type != GR_JL_STRING) {
        gr_errorf("%s:%lld: field '%s': %s", path, (long long)ln, key, v ? "must be a string" : "missing");
        return NULL;
    }
    const char *s = gr_jl_str(j, v);
    if (!s[0]) { gr_errorf("%s:%lld: field '%s': empty", path, (long long)ln, key); return NULL; }
    return s;
}

/* Join the strings of an array (or a single string) with SEP, cleaning each. */
static char *join_clean(const gr_jl_doc *j, const gr_jl *v, const char *sep, const char *path, int64_t ln,
                        const char *field)
{
    size_t cap = 64, len = 0;
    char *out = malloc(cap);
    if (!out) { gr_errorf("out of memory"); return NULL; }
    out[0] = '\0';
    const gr_jl *it = v && v->type == GR_JL_ARRAY ? gr_jl_first(j, v) : v;
    for (; it; it = v->type == GR_JL_ARRAY ? gr_jl_next(j, it) : NULL) {
        if (it->type != GR_JL_STRING) continue;
        const char *s = gr_jl_str(j, it);
        char *c = gr_text_clean(s, strlen(s), GR_ENC_UTF8, path, ln, field);
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
    gr_jl_doc j;
    gr_jl_init(&j);
    char *line;
    size_t len;
    int rc;
    while ((rc = gr_lines_next(r, &line, &len)) == 1) {
        int64_t ln = gr_lines_lineno(r);
        if (len == 0) continue;
        const gr_jl *o = gr_jl_parse(&j, line, len, path, ln);
        if (!o) goto fail;
        if (o->type != GR_JL_OBJECT) { gr_errorf("%s:%lld:1: each line must be a JSON object", path, (long long)ln); goto fail; }
        const char *asin = req_str(&j, o, "asin", path, ln);
        if (!asin) goto fail;
        if (!gr_builder_has_item(b, asin)) continue; /* not reviewed: skip its text */
        const gr_jl *t = gr_jl_get(&j, o, "title"), *br = gr_jl_get(&j, o, "brand");
        char *title = t && t->type == GR_JL_STRING ? join_clean(&j, t, "", path, ln, "title") : NULL;
        char *brand = br && br->type == GR_JL_STRING ? join_clean(&j, br, "", path, ln, "brand") : NULL;
        char *cats = join_clean(&j, gr_jl_get(&j, o, "category"), "|", path, ln, "category");
        char *desc = join_clean(&j, gr_jl_get(&j, o, "description"), " ", path, ln, "description");
        int ok = (!t || t->type != GR_JL_STRING || title) && (!br || br->type != GR_JL_STRING || brand) && cats &&
                 desc;
        if (ok) ok = gr_builder_item_text(b, asin, title ? title : "", cats, brand ? brand : "", desc) == GR_OK;
        free(title);
        free(brand);
        free(cats);
        free(desc);
        if (!ok) goto fail;
    }
    if (rc < 0) goto fail;
    gr_jl_free(&j);
    gr_lines_close(r);
    return GR_OK;
fail:
    gr_jl_free(&j);
    gr_lines_close(r);
    return GR_ERR;
}

gr_dataset *gr_load_amazon(const char *path)
{
    char *reviews = NULL, *meta = NULL, *name = NULL;
    gr_builder *b = NULL;
    gr_lines *r = NULL;
    gr_dataset *d = NULL;
    gr_jl_doc j;
    gr_jl_init(&j);
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
    char *line;
    size_t len;
    int rc;
    int64_t n = 0;
    while ((rc = gr_lines_next(r, &line, &len)) == 1) {
        int64_t ln = gr_lines_lineno(r);
        if (len == 0) continue;
        const gr_jl *o = gr_jl_parse(&j, line, len, reviews, ln);
        if (!o) goto done;
        if (o->type != GR_JL_OBJECT) {
            gr_errorf("%s:%lld:1: each line must be a JSON object", reviews, (long long)ln);
            goto done;
        }
        const char *user = req_str(&j, o, "reviewerID", reviews, ln);
        const char *item = user ? req_str(&j, o, "asin", reviews, ln) : NULL;
        if (!item) goto done;
        const gr_jl *t = gr_jl_get(&j, o, "unixReviewTime"), *ov = gr_jl_get(&j, o, "overall");
        int64_t ts;
        if (!t || t->type != GR_JL_NUMBER) {
            gr_errorf("%s:%lld: field 'unixReviewTime': %s", reviews, (long long)ln, t ? "must be a number" : "missing");
            goto done;
        }
        if (gr_parse_time(gr_jl_str(&j, t), &ts, reviews, ln, "unixReviewTime") != GR_OK) goto done;
        float rating = NAN;
        if (ov && ov->type != GR_JL_NULL) {
            if (ov->type != GR_JL_NUMBER || fabs(ov->num) > 1e30) {
                gr_errorf("%s:%lld: field 'overall': must be a number", reviews, (long long)ln);
                goto done;
            }
            rating = (float)ov->num;
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
    gr_jl_free(&j);
    gr_lines_close(r);
    gr_builder_free(b);
    free(reviews);
    free(meta);
    free(name);
    return d;
}
