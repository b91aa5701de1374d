/* MovieLens loaders:
 *   ml-100k : u.data (TAB: user item rating unix_ts) + u.item ('|', Latin-1:
 *             id|title|release|video release|IMDb URL|19 genre flags) + u.genre
 *   ml-dat  : ratings.dat (user::item::rating::ts) + movies.dat
 *             (id::title::genres, Latin-1) + tags.dat (user::item::tag::ts)
 *   ml-csv  : ratings.csv + movies.csv + tags.csv with headers (UTF-8, RFC-4180)
 * Ids must be non-negative integers and are kept as their decimal strings.
 * Titles keep the "(1995)" year. Genres are joined by '|'; "(no genres
 * listed)" becomes "". Tags (when a tags file exists) become item_text: the
 * item's distinct tags in first-appearance order, joined by ", " (at most
 * MAX_TAGS per item). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/loaders.h"
#include "data/strmap.h"
#include "data/text.h"

#define MAX_TAGS 64
#define MAX_GENRES 64

static const char *const ml100k_genres[19] = {
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western"};

/* Parse a non-negative integer id and write its canonical decimal form. */
static int ml_id(const char *s, char *out, size_t outn, const char *path, int64_t ln, const char *field)
{
    size_t n = 0;
    while (s[n] >= '0' && s[n] <= '9') n++;
    if (n > 0 && n < 19 && n < outn && !s[n] && (s[0] != '0' || n == 1)) { /* already canonical */
        memcpy(out, s, n + 1);
        return GR_OK;
    }
    int64_t v;
    if (gr_parse_i64(s, &v, path, ln, field) != GR_OK) return GR_ERR;
    if (v < 0) return gr_errorf("%s:%lld: field '%s': id %lld is negative", path, (long long)ln, field, (long long)v);
    snprintf(out, outn, "%lld", (long long)v);
    return GR_OK;
}

/* ---- tags -> item text ------------------------------------------------------------ */

typedef struct tagbag {
    gr_strmap seen;          /* "movie\x1ftag" -> 1 */
    char **seen_keys;
    size_t n_seen, cap_seen;
    gr_strmap movie;         /* movie key -> slot */
    char **mkey, **text;
    int *count;
    size_t n, cap;
} tagbag;

static void tagbag_free(tagbag *t)
{
    gr_strmap_free(&t->seen);
    gr_strmap_free(&t->movie);
    for (size_t i = 0; i < t->n_seen; i++) free(t->seen_keys[i]);
    for (size_t i = 0; i < t->n; i++) { free(t->mkey[i]); free(t->text[i]); }
    free(t->seen_keys);
    free(t->mkey);
    free(t->text);
    free(t->count);
}

static int tagbag_add(tagbag *t, const char *movie, const char *tag)
{
    if (!tag[0]) return GR_OK;
    size_t lm = strlen(movie), lt = strlen(tag);
    char *k = malloc(lm + lt + 2);
    if (!k) return gr_errorf("out of memory");
    memcpy(k, movie, lm);
    k[lm] = '\x1f';
    memcpy(k + lm + 1, tag, lt + 1);
    if (gr_strmap_get(&t->seen, k, lm + lt + 1) >= 0) { free(k); return GR_OK; }
    int32_t slot = gr_strmap_get(&t->movie, movie, lm);
    if (slot >= 0 && t->count[slot] >= MAX_TAGS) { free(k); return GR_OK; }
    if (t->n_seen == t->cap_seen) {
        size_t cap = t->cap_seen ? t->cap_seen * 2 : 256;
        char **p = realloc(t->seen_keys, cap * sizeof *p);
        if (!p) { free(k); return gr_errorf("out of memory"); }
        t->seen_keys = p;
        t->cap_seen = cap;
    }
    t->seen_keys[t->n_seen++] = k;
    if (gr_strmap_put(&t->seen, k, lm + lt + 1, 1) < 0) return GR_ERR;
    if (slot < 0) {
        if (t->n == t->cap) {
            size_t cap = t->cap ? t->cap * 2 : 256;
            char **a = realloc(t->mkey, cap * sizeof *a);
            if (a) t->mkey = a;
            char **b = realloc(t->text, cap * sizeof *b);
            if (b) t->text = b;
            int *c = realloc(t->count, cap * sizeof *c);
            if (c) t->count = c;
            if (!a || !b || !c) return gr_errorf("out of memory");
            t->cap = cap;
        }
        slot = (int32_t)t->n;
        t->mkey[slot] = gr_strdup(movie);
        t->text[slot] = gr_strdup("");
        t->count[slot] = 0;
        if (!t->mkey[slot] || !t->text[slot]) { free(t->mkey[slot]); free(t->text[slot]); return GR_ERR; }
        t->n++;
        if (gr_strmap_put(&t->movie, t->mkey[slot], lm, slot) < 0) return GR_ERR;
    }
    size_t old = strlen(t->text[slot]);
    char *nt = realloc(t->text[slot], old + lt + 3);
    if (!nt) return gr_errorf("out of memory");
    if (old) { memcpy(nt + old, ", ", 2); old += 2; }
    memcpy(nt + old, tag, lt + 1);
    t->text[slot] = nt;
    t->count[slot]++;
    return GR_OK;
}

static int tagbag_apply(tagbag *t, gr_builder *b)
{
    for (size_t i = 0; i < t->n; i++)
        if (gr_builder_has_item(b, t->mkey[i]) &&
            gr_builder_item_text(b, t->mkey[i], NULL, NULL, NULL, t->text[i]) != GR_OK)
            return GR_ERR;
    return GR_OK;
}

/* "Action|Comedy" as is; "(no genres listed)" -> "". */
static const char *ml_genres(const char *g)
{
    return !strcmp(g, "(no genres listed)") ? "" : g;
}

/* Finish: no interactions is an error naming the ratings file. */
static gr_dataset *finish_nonempty(gr_builder *b, int64_t n, const char *path, int64_t lines)
{
    if (n == 0) {
        gr_builder_free(b);
        gr_errorf("%s:%lld: field 'user': no interaction records found (empty file?)", path,
                  (long long)(lines + 1));
        return NULL;
    }
    return gr_builder_finish(b);
}

/* ---- ml-100k ------------------------------------------------------------------------ */

/* Read u.genre ("name|index" lines) into names[]; returns the count or -1. */
static int read_genres(const char *path, char **names, int max)
{
    gr_lines *r = gr_lines_open(path);
    if (!r) return -1;
    int n = 0, rc;
    char *line;
    size_t len;
    while ((rc = gr_lines_next(r, &line, &len)) == 1) {
        int64_t ln = gr_lines_lineno(r);
        if (len == 0) continue;
        char *f[3];
        int nf = gr_fields_split(line, len, '|', 0, f, 3, path, ln);
        int64_t idx;
        if (nf != 2) { gr_errorf("%s:%lld: expected 2 fields (name|index), found %d", path, (long long)ln, nf); goto fail; }
        if (gr_parse_i64(f[1], &idx, path, ln, "index") != GR_OK) goto fail;
        if (idx != n || n >= max) {
            gr_errorf("%s:%lld: field 'index': expected %d, got %lld", path, (long long)ln, n, (long long)idx);
            goto fail;
        }
        if (!(names[n] = gr_text_clean(f[0], strlen(f[0]), GR_ENC_LATIN1, path, ln, "name"))) goto fail;
        n++;
    }
    if (rc < 0) goto fail;
    gr_lines_close(r);
    return n;
fail:
    for (int i = 0; i < n; i++) { free(names[i]); names[i] = NULL; }
    gr_lines_close(r);
    return -1;
}

static int read_uitem(gr_builder *b, const char *path, char **gnames, int ng)
{
    gr_lines *r = gr_lines_open(path);
    if (!r) return GR_ERR;
    char *line, *f[5 + MAX_GENRES + 1], id[32];
    size_t len;
    int rc;
    char *genres = malloc((size_t)ng * 64 + 1024);
    if (!genres) { gr_lines_close(r); return gr_errorf("out of memory"); }
    while ((rc = gr_lines_next(r, &line, &len)) == 1) {
        int64_t ln = gr_lines_lineno(r);
        if (len == 0) continue;
        int nf = gr_fields_split(line, len, '|', 0, f, 5 + MAX_GENRES + 1, path, ln);
        if (nf != 5 + ng) {
            gr_errorf("%s:%lld: expected %d '|'-separated fields (id|title|release|video|url + %d genre flags), "
                      "found %d", path, (long long)ln, 5 + ng, ng, nf);
            goto fail;
        }
        if (ml_id(f[0], id, sizeof id, path, ln, "movie id") != GR_OK) goto fail;
        size_t w = 0;
        genres[0] = '\0';
        for (int g = 0; g < ng; g++) {
            const char *v = f[5 + g];
            if (strcmp(v, "0") && strcmp(v, "1")) {
                gr_errorf("%s:%lld: field 'genre %d': expected 0 or 1, got '%s'", path, (long long)ln, g + 1,
                          gr_quote_input(v));
                goto fail;
            }
            if (v[0] == '1') {
                size_t gl = strlen(gnames[g]);
                if (w + gl + 2 > (size_t)ng * 64 + 1024) continue;
                if (w) genres[w++] = '|';
                memcpy(genres + w, gnames[g], gl + 1);
                w += gl;
            }
        }
        char *title = gr_text_clean(f[1], strlen(f[1]), GR_ENC_LATIN1, path, ln, "title");
        if (!title) goto fail;
        int ok = gr_builder_item_text(b, id, title, genres, NULL, NULL);
        free(title);
        if (ok != GR_OK) { gr_error_prefix("%s:%lld: ", path, (long long)ln); goto fail; }
    }
    if (rc < 0) goto fail;
    free(genres);
    gr_lines_close(r);
    return GR_OK;
fail:
    free(genres);
    gr_lines_close(r);
    return GR_ERR;
}

gr_dataset *gr_load_ml100k(const char *dir)
{
    char *data = gr_path_find(dir, "u.data");
    char *item = gr_path_find(dir, "u.item");
    char *genre = gr_path_find(dir, "u.genre");
    char *name = gr_path_stem(dir, NULL);
    char *gnames[MAX_GENRES] = {0};
    int ng = 0;
    gr_builder *b = NULL;
    gr_lines *r = NULL;
    gr_dataset *d = NULL;
    if (!data) { gr_errorf("%s: no u.data file (MovieLens-100K layout)", dir); goto done; }
    if (!name || !(b = gr_builder_init(name, "ml-100k"))) goto done;
    if (!(r = gr_lines_open(data))) goto done;
    char *line, *f[5], u[32], it[32];
    size_t len;
    int rc;
    int64_t n = 0;
    while ((rc = gr_lines_next(r, &line, &len)) == 1) {
        int64_t ln = gr_lines_lineno(r);
        if (len == 0) continue;
        int nf = gr_fields_split(line, len, '\t', 0, f, 5, data, ln);
        if (nf != 4) {
            gr_errorf("%s:%lld: expected 4 TAB-separated fields (user item rating timestamp), found %d", data,
                      (long long)ln, nf);
            goto done;
        }
        float rating;
        int64_t ts;
        if (ml_id(f[0], u, sizeof u, data, ln, "user") || ml_id(f[1], it, sizeof it, data, ln, "item") ||
            gr_parse_float(f[2], &rating, data, ln, "rating") || gr_parse_i64(f[3], &ts, data, ln, "timestamp"))
            goto done;
        if (gr_builder_add(b, u, it, ts, rating) != GR_OK) { gr_error_prefix("%s:%lld: ", data, (long long)ln); goto done; }
        n++;
    }
    if (rc < 0) goto done;
    int64_t lines = gr_lines_lineno(r);
    gr_lines_close(r);
    r = NULL;
    if (genre) {
        if ((ng = read_genres(genre, gnames, MAX_GENRES)) < 0) goto done;
        if (ng == 0) { gr_errorf("%s:1: field 'name': no genres listed", genre); goto done; }
    } else {
        ng = 19;
        for (int g = 0; g < 19; g++)
            if (!(gnames[g] = gr_strdup(ml100k_genres[g]))) goto done;
    }
    if (item && read_uitem(b, item, gnames, ng) != GR_OK) goto done;
    gr_builder_set_flags(b, 1, 1);
    d = finish_nonempty(b, n, data, lines);
    b = NULL;
done:
    for (int g = 0; g < MAX_GENRES; g++) free(gnames[g]);
    gr_lines_close(r);
    gr_builder_free(b);
    free(data);
    free(item);
    free(genre);
    free(name);
    return d;
}

/* ---- ml-dat (1M / 10M) ------------------------------------------------------------ */

static int read_movies_dat(gr_builder *b, const char *path)
{
    gr_lines *r = gr_lines_open(path);
    if (!r) return GR_ERR;
    char *line, id[32];
    size_t len;
    int rc;
    while ((rc = gr_lines_next(r, &line, &len)) == 1) {
        int64_t ln = gr_lines_lineno(r);
        if (len == 0) continue;
        char *a = strstr(line, "::"), *z = NULL;
        for (char *p = a; p; p = strstr(p + 1, "::")) z = p;
        if (!a || z == a) {
            gr_errorf("%s:%lld: expected 3 fields (MovieID::Title::Genres), found %d", path, (long long)ln, a ? 2 : 1);
            goto fail;
        }
        *a = '\0';
        *z = '\0';
        char *title_raw = a + 2, *genres_raw = z + 2;
        if (ml_id(line, id, sizeof id, path, ln, "MovieID") != GR_OK) goto fail;
        char *title = gr_text_clean(title_raw, strlen(title_raw), GR_ENC_LATIN1, path, ln, "Title");
        char *genres = title ? gr_text_clean(genres_raw, strlen(genres_raw), GR_ENC_LATIN1, path, ln, "Genres") : NULL;
        int ok = title && genres ? gr_builder_item_text(b, id, title, ml_genres(genres), NULL, NULL) : GR_ERR;
        free(title);
        free(genres);
        if (ok != GR_OK) goto fail;
    }
    if (rc < 0) goto fail;
    gr_lines_close(r);
    return GR_OK;
fail:
    gr_lines_close(r);
    return GR_ERR;
}

static int read_tags_dat(gr_builder *b, const char *path)
{
    gr_lines *r = gr_lines_open(path);
    if (!r) return GR_ERR;
    tagbag t = {0};
    char *line, *f[5], id[32];
    size_t len;
    int rc;
    while ((rc = gr_lines_next(r, &line, &len)) == 1) {
        int64_t ln = gr_lines_lineno(r);
        if (len == 0) continue;
        int nf = gr_fields_split_str(line, "::", f, 5);
        if (nf != 4) {
            gr_errorf("%s:%lld: expected 4 fields (UserID::MovieID::Tag::Timestamp), found %d", path, (long long)ln, nf);
            goto fail;
        }
        if (ml_id(f[1], id, sizeof id, path, ln, "MovieID") != GR_OK) goto fail;
        char *tag = gr_text_clean(f[2], strlen(f[2]), GR_ENC_LATIN1, path, ln, "Tag");
        int ok = tag ? tagbag_add(&t, id, tag) : GR_ERR;
        free(tag);
        if (ok != GR_OK) goto fail;
    }
    if (rc < 0 || tagbag_apply(&t, b) != GR_OK) goto fail;
    tagbag_free(&t);
    gr_lines_close(r);
    return GR_OK;
fail:
    tagbag_free(&t);
    gr_lines_close(r);
    return GR_ERR;
}

gr_dataset *gr_load_mldat(const char *dir)
{
    char *data = gr_path_find(dir, "ratings.dat");
    char *movies = gr_path_find(dir, "movies.dat");
    char *tags = gr_path_find(dir, "tags.dat");
    char *name = gr_path_stem(dir, NULL);
    gr_builder *b = NULL;
    gr_lines *r = NULL;
    gr_dataset *d = NULL;
    if (!data) { gr_errorf("%s: no ratings.dat file (MovieLens-1M/10M layout)", dir); goto done; }
    if (!name || !(b = gr_builder_init(name, "ml-dat"))) goto done;
    if (!(r = gr_lines_open(data))) goto done;
    char *line, *f[5], u[32], it[32];
    size_t len;
    int rc;
    int64_t n = 0;
    while ((rc = gr_lines_next(r, &line, &len)) == 1) {
        int64_t ln = gr_lines_lineno(r);
        if (len == 0) continue;
        int nf = gr_fields_split_str(line, "::", f, 5);
        if (nf != 4) {
            gr_errorf("%s:%lld: expected 4 fields (UserID::MovieID::Rating::Timestamp), found %d", data,
                      (long long)ln, nf);
            goto done;
        }
        float rating;
        int64_t ts;
        if (ml_id(f[0], u, sizeof u, data, ln, "UserID") || ml_id(f[1], it, sizeof it, data, ln, "MovieID") ||
            gr_parse_float(f[2], &rating, data, ln, "Rating") || gr_parse_i64(f[3], &ts, data, ln, "Timestamp"))
            goto done;
        if (gr_builder_add(b, u, it, ts, rating) != GR_OK) { gr_error_prefix("%s:%lld: ", data, (long long)ln); goto done; }
        n++;
    }
    if (rc < 0) goto done;
    int64_t lines = gr_lines_lineno(r);
    gr_lines_close(r);
    r = NULL;
    if (movies && read_movies_dat(b, movies) != GR_OK) goto done;
    if (tags && read_tags_dat(b, tags) != GR_OK) goto done;
    gr_builder_set_flags(b, 1, 1);
    d = finish_nonempty(b, n, data, lines);
    b = NULL;
done:
    gr_lines_close(r);
    gr_builder_free(b);
    free(data);
    free(movies);
    free(tags);
    free(name);
    return d;
}

/* ---- ml-csv (latest, 20M, 25M, 32M) ------------------------------------------------- */

#define CSV_MAXF 32

/* Read a CSV header and find the named columns; idx[k] = -1 when optional and absent. */
static int csv_header(gr_lines *r, const char *path, char **f, int *nf, const char *const *cols[],
                      const int *required, int *idx, int ncols)
{
    char *line;
    size_t len;
    int rc = gr_lines_next_record(r, ',', &line, &len);
    if (rc == 0) return gr_errorf("%s:1: field 'header': empty file (a header line is required)", path);
    if (rc < 0) return GR_ERR;
    *nf = gr_fields_split(line, len, ',', 1, f, CSV_MAXF, path, 1);
    if (*nf < 0) return GR_ERR;
    if (*nf > CSV_MAXF) return gr_errorf("%s:1: header has %d fields (at most %d)", path, *nf, CSV_MAXF);
    for (int c = 0; c < ncols; c++) {
        idx[c] = gr_fields_find(f, *nf, cols[c]);
        if (idx[c] < 0 && required[c])
            return gr_errorf("%s:1: field '%s': column missing from the header", path, cols[c][0]);
    }
    return GR_OK;
}

/* Read the next data record into f; returns 1, 0 at EOF, -1 on error. */
static int csv_record(gr_lines *r, const char *path, char **f, int nf_expect, int64_t *ln)
{
    char *line;
    size_t len;
    for (;;) {
        int rc = gr_lines_next_record(r, ',', &line, &len);
        if (rc <= 0) return rc;
        *ln = gr_lines_lineno(r);
        if (len == 0) continue;
        int nf = gr_fields_split(line, len, ',', 1, f, CSV_MAXF, path, *ln);
        if (nf < 0) return -1;
        if (nf != nf_expect) {
            gr_errorf("%s:%lld: expected %d comma-separated fields as in the header, found %d", path, (long long)*ln,
                      nf_expect, nf);
            return -1;
        }
        return 1;
    }
}

static const char *const c_user[] = {"userId", "user_id", NULL};
static const char *const c_movie[] = {"movieId", "movie_id", "itemId", "item_id", NULL};
static const char *const c_rating[] = {"rating", NULL};
static const char *const c_time[] = {"timestamp", NULL};
static const char *const c_title[] = {"title", NULL};
static const char *const c_genres[] = {"genres", NULL};
static const char *const c_tag[] = {"tag", NULL};

static int read_movies_csv(gr_builder *b, const char *path)
{
    gr_lines *r = gr_lines_open(path);
    if (!r) return GR_ERR;
    char *f[CSV_MAXF], id[32];
    int nf, idx[3];
    const char *const *cols[3] = {c_movie, c_title, c_genres};
    static const int req[3] = {1, 1, 0};
    int rc;
    int64_t ln;
    if (csv_header(r, path, f, &nf, cols, req, idx, 3) != GR_OK) goto fail;
    while ((rc = csv_record(r, path, f, nf, &ln)) == 1) {
        if (ml_id(f[idx[0]], id, sizeof id, path, ln, "movieId") != GR_OK) goto fail;
        char *title = gr_text_clean(f[idx[1]], strlen(f[idx[1]]), GR_ENC_UTF8, path, ln, "title");
        char *genres = NULL;
        if (title && idx[2] >= 0) genres = gr_text_clean(f[idx[2]], strlen(f[idx[2]]), GR_ENC_UTF8, path, ln, "genres");
        int ok = title && (idx[2] < 0 || genres)
                     ? gr_builder_item_text(b, id, title, genres ? ml_genres(genres) : NULL, NULL, NULL)
                     : GR_ERR;
        free(title);
        free(genres);
        if (ok != GR_OK) goto fail;
    }
    if (rc < 0) goto fail;
    gr_lines_close(r);
    return GR_OK;
fail:
    gr_lines_close(r);
    return GR_ERR;
}

static int read_tags_csv(gr_builder *b, const char *path)
{
    gr_lines *r = gr_lines_open(path);
    if (!r) return GR_ERR;
    tagbag t = {0};
    char *f[CSV_MAXF], id[32];
    int nf, idx[2];
    const char *const *cols[2] = {c_movie, c_tag};
    static const int req[2] = {1, 1};
    int rc;
    int64_t ln;
    if (csv_header(r, path, f, &nf, cols, req, idx, 2) != GR_OK) goto fail;
    while ((rc = csv_record(r, path, f, nf, &ln)) == 1) {
        if (ml_id(f[idx[0]], id, sizeof id, path, ln, "movieId") != GR_OK) goto fail;
        char *tag = gr_text_clean(f[idx[1]], strlen(f[idx[1]]), GR_ENC_UTF8, path, ln, "tag");
        int ok = tag ? tagbag_add(&t, id, tag) : GR_ERR;
        free(tag);
        if (ok != GR_OK) goto fail;
    }
    if (rc < 0 || tagbag_apply(&t, b) != GR_OK) goto fail;
    tagbag_free(&t);
    gr_lines_close(r);
    return GR_OK;
fail:
    tagbag_free(&t);
    gr_lines_close(r);
    return GR_ERR;
}

gr_dataset *gr_load_mlcsv(const char *dir)
{
    char *data = gr_path_find(dir, "ratings.csv");
    char *movies = gr_path_find(dir, "movies.csv");
    char *tags = gr_path_find(dir, "tags.csv");
    char *name = gr_path_stem(dir, NULL);
    gr_builder *b = NULL;
    gr_lines *r = NULL;
    gr_dataset *d = NULL;
    if (!data) { gr_errorf("%s: no ratings.csv file (MovieLens CSV layout)", dir); goto done; }
    if (!name || !(b = gr_builder_init(name, "ml-csv"))) goto done;
    if (!(r = gr_lines_open(data))) goto done;
    char *f[CSV_MAXF], u[32], it[32];
    int nf, idx[4], rc;
    const char *const *cols[4] = {c_user, c_movie, c_rating, c_time};
    static const int req[4] = {1, 1, 0, 0};
    int64_t n = 0, ln;
    if (csv_header(r, data, f, &nf, cols, req, idx, 4) != GR_OK) goto done;
    while ((rc = csv_record(r, data, f, nf, &ln)) == 1) {
        float rating = NAN;
        int64_t ts = n;
        if (ml_id(f[idx[0]], u, sizeof u, data, ln, "userId") || ml_id(f[idx[1]], it, sizeof it, data, ln, "movieId") ||
            (idx[2] >= 0 && gr_parse_float(f[idx[2]], &rating, data, ln, "rating")) ||
            (idx[3] >= 0 && gr_parse_i64(f[idx[3]], &ts, data, ln, "timestamp")))
            goto done;
        if (gr_builder_add(b, u, it, ts, rating) != GR_OK) { gr_error_prefix("%s:%lld: ", data, (long long)ln); goto done; }
        n++;
    }
    if (rc < 0) goto done;
    int64_t lines = gr_lines_lineno(r);
    gr_lines_close(r);
    r = NULL;
    if (movies && read_movies_csv(b, movies) != GR_OK) goto done;
    if (tags && read_tags_csv(b, tags) != GR_OK) goto done;
    gr_builder_set_flags(b, idx[3] >= 0, idx[2] >= 0);
    d = finish_nonempty(b, n, data, lines);
    b = NULL;
done:
    gr_lines_close(r);
    gr_builder_free(b);
    free(data);
    free(movies);
    free(tags);
    free(name);
    return d;
}
