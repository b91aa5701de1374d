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
#include <stdlib.h>
#include <string.h>

#include "data/loaders.h"
#include "data/strmap.h"
#include "data/table.h"

#define MAX_TAGS 64
#define MAX_GENRES 64

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

/* One MovieLens layout: file names, how its files are delimited, and the
 * names of its fields in messages. */
typedef struct ml_layout ml_layout;
struct ml_layout {
    const char *format, *what;          /* format name; layout name in "no ratings file" errors */
    const char *ratings, *items, *tags; /* file names (tags may be NULL) */
    const char *delim;                  /* delimiter of ratings, items and tags */
    int csv;                            /* header line + RFC-4180 quoting; else positional */
    gr_enc enc;                         /* encoding of titles, genres and tags */
    const char *rname[4], *rshape;      /* ratings: user, item, time, rating fields; their shape */
    const char *iname[3];               /* items: id, title, genres fields */
    const char *tname[2], *tshape;      /* tags: movie and tag fields; their shape */
    int (*read_items)(gr_builder *b, const char *path, const char *dir, const ml_layout *L);
};

/* ---- tags ------------------------------------------------------------------------------ */

static const char *const c_user[] = {"userId", "user_id", NULL};
static const char *const c_movie[] = {"movieId", "movie_id", "itemId", "item_id", NULL};
static const char *const c_rating[] = {"rating", NULL};
static const char *const c_time[] = {"timestamp", NULL};
static const char *const c_title[] = {"title", NULL};
static const char *const c_genres[] = {"genres", NULL};
static const char *const c_tag[] = {"tag", NULL};

/* tags.dat (UserID::MovieID::Tag::Timestamp) or tags.csv (header with movieId, tag). */
static int read_tags(gr_builder *b, const char *path, const ml_layout *L)
{
    gr_table t;
    if (gr_table_open(&t, path, L->delim, L->csv, L->csv) != GR_OK) return GR_ERR;
    tagbag tb = {0};
    char id[32];
    int c[2] = {1, 2}, rc = -1;
    if (L->csv) {
        if ((c[0] = gr_table_col(&t, c_movie, 1)) < 0 || (c[1] = gr_table_col(&t, c_tag, 1)) < 0) goto done;
    } else {
        gr_table_expect(&t, 4, L->tshape);
    }
    while ((rc = gr_table_next(&t)) == 1) {
        const char *tag = t.f[c[1]];
        if (gr_parse_id(t.f[c[0]], id, sizeof id, path, t.ln, L->tname[0]) != GR_OK) { rc = -1; break; }
        char *clean = gr_text_clean(tag, strlen(tag), L->enc, path, t.ln, L->tname[1]);
        int ok = clean ? tagbag_add(&tb, id, clean) : GR_ERR;
        free(clean);
        if (ok != GR_OK) { rc = -1; break; }
    }
    if (rc == 0 && tagbag_apply(&tb, b) != GR_OK) rc = -1;
done:
    tagbag_free(&tb);
    gr_table_close(&t);
    return rc < 0 ? GR_ERR : GR_OK;
}

/* ---- items -------------------------------------------------------------------------------- */

/* movies.dat (MovieID::Title::Genres; a title may contain "::") or movies.csv
 * (header with movieId, title, optional genres). */
static int read_movies(gr_builder *b, const char *path, const char *dir, const ml_layout *L)
{
    (void)dir;
    gr_table t;
    if (gr_table_open(&t, path, L->delim, L->csv, L->csv) != GR_OK) return GR_ERR;
    char id[32];
    int c[3] = {0, 1, 2}, rc = -1;
    if (L->csv && ((c[0] = gr_table_col(&t, c_movie, 1)) < 0 || (c[1] = gr_table_col(&t, c_title, 1)) < 0)) goto done;
    if (L->csv) c[2] = gr_table_col(&t, c_genres, 0);
    while ((rc = gr_table_next(&t)) == 1) {
        if (!L->csv) {
            if (t.n < 3 || t.n > GR_TABLE_MAXF) {
                gr_errorf("%s:%lld: expected 3 '%s'-separated fields (MovieID%sTitle%sGenres), found %d", path,
                          (long long)t.ln, L->delim, L->delim, L->delim, t.n);
                rc = -1;
                break;
            }
            for (int k = 2; k < t.n - 1; k++) t.f[k][-(int)strlen(L->delim)] = L->delim[0]; /* rejoin the title */
            c[2] = t.n - 1;
        }
        const char *tr = t.f[c[1]], *gr = c[2] >= 0 ? t.f[c[2]] : NULL;
        if (gr_parse_id(t.f[c[0]], id, sizeof id, path, t.ln, L->iname[0]) != GR_OK) { rc = -1; break; }
        char *title = gr_text_clean(tr, strlen(tr), L->enc, path, t.ln, L->iname[1]);
        char *genres = title && gr ? gr_text_clean(gr, strlen(gr), L->enc, path, t.ln, L->iname[2]) : NULL;
        int ok = title && (!gr || genres) ? gr_builder_item_text(b, id, title, genres ? ml_genres(genres) : NULL, NULL, NULL)
                                          : GR_ERR;
        free(title);
        free(genres);
        if (ok != GR_OK) { rc = -1; break; }
    }
done:
    gr_table_close(&t);
    return rc < 0 ? GR_ERR : GR_OK;
}

static const char *const ml100k_genres[19] = {
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western"};

/* Read u.genre ("name|index" lines) into names[]; returns the count or -1. */
static int read_genres(const char *path, char **names, int max)
{
    gr_table t;
    if (gr_table_open(&t, path, "|", 0, 0) != GR_OK) return -1;
    gr_table_expect(&t, 2, "(name|index)");
    int n = 0, rc;
    while ((rc = gr_table_next(&t)) == 1) {
        int64_t idx;
        if (gr_parse_i64(t.f[1], &idx, path, t.ln, "index") != GR_OK) break;
        if (idx != n || n >= max) {
            gr_errorf("%s:%lld: field 'index': expected %d, got %lld", path, (long long)t.ln, n, (long long)idx);
            break;
        }
        if (!(names[n] = gr_text_clean(t.f[0], strlen(t.f[0]), GR_ENC_LATIN1, path, t.ln, "name"))) break;
        n++;
    }
    gr_table_close(&t);
    if (rc == 0 && n == 0) gr_errorf("%s:1: field 'name': no genres listed", path);
    if (rc == 0 && n > 0) return n;
    for (int i = 0; i < n; i++) { free(names[i]); names[i] = NULL; }
    return -1;
}

/* u.item: id|title|release|video release|IMDb URL|genre flags (one per
 * u.genre entry, or the 19 standard genres when there is no u.genre). */
static int read_uitem(gr_builder *b, const char *path, const char *dir, const ml_layout *L)
{
    (void)L;
    char *gnames[MAX_GENRES] = {0}, *genre = gr_path_find(dir, "u.genre"), id[32], shape[96];
    int ng = 0, rc = -1;
    size_t cap = (size_t)MAX_GENRES * 64 + 1024;
    char *genres = malloc(cap);
    gr_table t = {0};
    if (!genres) { gr_errorf("out of memory"); goto done; }
    if (genre) {
        if ((ng = read_genres(genre, gnames, MAX_GENRES)) < 0) goto done;
    } else {
        for (ng = 0; ng < 19; ng++)
            if (!(gnames[ng] = gr_strdup(ml100k_genres[ng]))) goto done;
    }
    if (gr_table_open(&t, path, "|", 0, 0) != GR_OK) goto done;
    snprintf(shape, sizeof shape, "(id|title|release|video|url + %d genre flags)", ng);
    gr_table_expect(&t, 5 + ng, shape);
    while ((rc = gr_table_next(&t)) == 1) {
        if (gr_parse_id(t.f[0], id, sizeof id, path, t.ln, "movie id") != GR_OK) { rc = -1; break; }
        size_t w = 0;
        genres[0] = '\0';
        for (int g = 0; g < ng; g++) {
            const char *v = t.f[5 + g];
            if (strcmp(v, "0") && strcmp(v, "1")) {
                gr_errorf("%s:%lld: field 'genre %d': expected 0 or 1, got '%s'", path, (long long)t.ln, g + 1,
                          gr_quote_input(v));
                rc = -1;
                break;
            }
            size_t gl = strlen(gnames[g]);
            if (v[0] != '1' || w + gl + 2 > cap) continue;
            if (w) genres[w++] = '|';
            memcpy(genres + w, gnames[g], gl + 1);
            w += gl;
        }
        if (rc < 0) break;
        char *title = gr_text_clean(t.f[1], strlen(t.f[1]), GR_ENC_LATIN1, path, t.ln, "title");
        if (!title) { rc = -1; break; }
        int ok = gr_builder_item_text(b, id, title, genres, NULL, NULL);
        free(title);
        if (ok != GR_OK) { gr_error_prefix("%s:%lld: ", path, (long long)t.ln); rc = -1; break; }
    }
done:
    gr_table_close(&t);
    for (int g = 0; g < MAX_GENRES; g++) free(gnames[g]);
    free(genres);
    free(genre);
    return rc < 0 ? GR_ERR : GR_OK;
}

/* ---- the loaders ---------------------------------------------------------------------------- */

static gr_dataset *ml_load(const char *dir, const ml_layout *L)
{
    char *data = gr_path_find(dir, L->ratings);
    char *items = gr_path_find(dir, L->items);
    char *tags = L->tags ? gr_path_find(dir, L->tags) : NULL;
    char *name = gr_path_stem(dir, NULL);
    gr_builder *b = NULL;
    gr_dataset *d = NULL;
    gr_table t = {0};
    if (!data) { gr_errorf("%s: no %s file (%s layout)", dir, L->ratings, L->what); goto done; }
    if (!name || !(b = gr_builder_init(name, L->format))) goto done;
    if (gr_table_open(&t, data, L->delim, L->csv, L->csv) != GR_OK) goto done;
    gr_inter_cols c = {{0, 1, 3, 2}, {L->rname[0], L->rname[1], L->rname[2], L->rname[3]}, 1, 1};
    const char *const *const cols[4] = {c_user, c_movie, c_time, c_rating};
    if (L->csv && gr_table_inter_cols(&t, cols, &c) != GR_OK) goto done;
    if (!L->csv) gr_table_expect(&t, 4, L->rshape);
    c.numeric_ids = c.int_time = 1;
    if (gr_table_read_interactions(&t, b, &c) != GR_OK) goto done;
    gr_table_close(&t);
    if (items && L->read_items(b, items, dir, L) != GR_OK) goto done;
    if (tags && read_tags(b, tags, L) != GR_OK) goto done;
    gr_builder_set_flags(b, c.col[2] >= 0, c.col[3] >= 0);
    d = gr_builder_finish(b);
    b = NULL;
done:
    gr_table_close(&t);
    gr_builder_free(b);
    free(data);
    free(items);
    free(tags);
    free(name);
    return d;
}

static const ml_layout ml100k = {
    "ml-100k", "MovieLens-100K", "u.data", "u.item", NULL, "\t", 0, GR_ENC_LATIN1,
    {"user", "item", "timestamp", "rating"}, "(user item rating timestamp)", {NULL, NULL, NULL}, {NULL, NULL}, NULL,
    read_uitem};

static const ml_layout mldat = {
    "ml-dat", "MovieLens-1M/10M", "ratings.dat", "movies.dat", "tags.dat", "::", 0, GR_ENC_LATIN1,
    {"UserID", "MovieID", "Timestamp", "Rating"}, "(UserID::MovieID::Rating::Timestamp)",
    {"MovieID", "Title", "Genres"}, {"MovieID", "Tag"}, "(UserID::MovieID::Tag::Timestamp)", read_movies};

static const ml_layout mlcsv = {
    "ml-csv", "MovieLens CSV", "ratings.csv", "movies.csv", "tags.csv", ",", 1, GR_ENC_UTF8,
    {"userId", "movieId", "timestamp", "rating"}, NULL, {"movieId", "title", "genres"}, {"movieId", "tag"}, NULL,
    read_movies};

gr_dataset *gr_load_ml100k(const char *dir) { return ml_load(dir, &ml100k); }
gr_dataset *gr_load_mldat(const char *dir) { return ml_load(dir, &mldat); }
gr_dataset *gr_load_mlcsv(const char *dir) { return ml_load(dir, &mlcsv); }
