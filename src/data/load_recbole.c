/* RecBole loaders (UTF-8, TAB-separated, no quoting, typed header "name:type"
 * with type token | token_seq | float | float_seq; sequences are separated by
 * single spaces).
 *
 * recbole     : NAME.inter with columns user_id, item_id and optionally
 *               timestamp and rating, in any order (other columns ignored);
 *               NAME.item (optional) with item_id and text columns (below).
 *               Without a timestamp column the data set is order-only
 *               (has_time = 0) and file order is the sequence order.
 * recbole-seq : NAME.{train,valid,test}.inter with user_id, item_id_list
 *               (token_seq) and item_id. Each user's full sequence is the
 *               test row's list + target; users missing from test use their
 *               valid row, then their longest train row. Order only.
 *               Item text from NAME.text ("item_id<TAB>text", optional
 *               header) whose ids may be raw ids (e.g. ASINs) mapped to the
 *               .inter indices through NAME.item2index ("raw<TAB>index"), and
 *               from NAME.item if present.
 *
 * Item text columns, by name: title / movie_title / name / item_name /
 * title_name -> item_title; genre / genres / class / categories / category /
 * tags -> item_genres (a token_seq is joined by '|'); brand / artist /
 * author / publisher / director -> item_brand; text / description / desc /
 * item_text / plot / overview -> item_text. Amazon-style text
 * ("Title. Categories. Brand.") is kept whole in item_text; when the file has
 * no title column, the part before the first ". " becomes item_title.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "data/loaders.h"
#include "data/strmap.h"
#include "data/text.h"

#define RB_MAXF 256

/* A parsed typed header. */
typedef struct rb_header {
    int n;
    char *name[RB_MAXF];
    char type[RB_MAXF]; /* 't' token, 's' token_seq, 'f' float, 'v' float_seq */
} rb_header;

static int rb_parse_header(char *line, size_t len, const char *path, rb_header *h)
{
    char *f[RB_MAXF];
    int n = gr_fields_split(line, len, '\t', 0, f, RB_MAXF, path, 1);
    if (n < 0) return GR_ERR;
    if (n > RB_MAXF) return gr_errorf("%s:1: header has %d fields (at most %d)", path, n, RB_MAXF);
    h->n = n;
    for (int i = 0; i < n; i++) {
        char *c = strrchr(f[i], ':');
        if (!c || c == f[i])
            return gr_errorf("%s:1: field %d: header field '%s' is not 'name:type' (RecBole atomic header)", path,
                             i + 1, gr_quote_input(f[i]));
        *c = '\0';
        const char *t = c + 1;
        if (!strcmp(t, "token")) h->type[i] = 't';
        else if (!strcmp(t, "token_seq")) h->type[i] = 's';
        else if (!strcmp(t, "float")) h->type[i] = 'f';
        else if (!strcmp(t, "float_seq")) h->type[i] = 'v';
        else
            return gr_errorf("%s:1: field '%s': unknown type '%s' (token, token_seq, float, float_seq)", path,
                             gr_quote_input(f[i]), gr_quote_input(t));
        h->name[i] = f[i];
        for (int j = 0; j < i; j++)
            if (!strcmp(h->name[j], f[i])) return gr_errorf("%s:1: field '%s': duplicate column", path, f[i]);
    }
    return GR_OK;
}

static int rb_col(const rb_header *h, const char *const *names)
{
    return gr_fields_find(h->name, h->n, names);
}

/* Open PATH and parse its header. */
static gr_lines *rb_open(const char *path, rb_header *h)
{
    gr_lines *r = gr_lines_open(path);
    if (!r) return NULL;
    char *line;
    size_t len;
    int rc = gr_lines_next(r, &line, &len);
    if (rc == 0) gr_errorf("%s:1: field 'header': empty file (a typed header line is required)", path);
    if (rc <= 0 || rb_parse_header(line, len, path, h) != GR_OK) {
        gr_lines_close(r);
        return NULL;
    }
    return r;
}

/* Next data row split into f (n fields as in the header). 1 / 0 EOF / -1. */
static int rb_row(gr_lines *r, const char *path, const rb_header *h, char **f, int64_t *ln)
{
    char *line;
    size_t len;
    for (;;) {
        int rc = gr_lines_next(r, &line, &len);
        if (rc <= 0) return rc;
        *ln = gr_lines_lineno(r);
        if (len == 0) continue;
        int nf = gr_fields_split(line, len, '\t', 0, f, RB_MAXF, path, *ln);
        if (nf != h->n) {
            gr_errorf("%s:%lld: expected %d TAB-separated fields as in the header, found %d", path, (long long)*ln,
                      h->n, nf);
            return -1;
        }
        return 1;
    }
}

/* A token: non-empty, valid UTF-8, no spaces. */
static int rb_token(const char *s, const char *path, int64_t ln, const char *field)
{
    size_t n = strlen(s), bad;
    if (n == 0) return gr_errorf("%s:%lld: field '%s': empty token", path, (long long)ln, field);
    if (!gr_utf8_valid(s, n, &bad))
        return gr_errorf("%s:%lld: field '%s': invalid UTF-8 at byte %zu", path, (long long)ln, field, bad + 1);
    return GR_OK;
}

/* ---- item text (.item files) ------------------------------------------------------------ */

static const char *const n_title[] = {"title", "movie_title", "name", "item_name", "title_name", NULL};
static const char *const n_genre[] = {"genre", "genres", "class", "categories", "category", "tags", NULL};
static const char *const n_brand[] = {"brand", "artist", "author", "publisher", "director", NULL};
static const char *const n_text[] = {"text", "description", "desc", "item_text", "plot", "overview", NULL};

/* Clean a value; a token_seq genre column becomes '|'-joined. */
static char *rb_text(const char *v, int genre_seq, const char *path, int64_t ln, const char *field)
{
    char *c = gr_text_clean(v, strlen(v), GR_ENC_UTF8, path, ln, field);
    if (c && genre_seq)
        for (char *p = c; *p; p++)
            if (*p == ' ') *p = '|';
    return c;
}

/* Set item text for one item from title/genres/brand/text values (any NULL). */
static int rb_set_text(gr_builder *b, const char *item, char *title, char *genres, char *brand, char *text,
                       int has_title_col)
{
    char *derived = NULL;
    if (!has_title_col && !title && text) {
        derived = gr_text_first_sentence(text);
        if (!derived) return GR_ERR;
    }
    int rc = gr_builder_item_text(b, item, title ? title : derived, genres, brand, text);
    free(derived);
    return rc;
}

/* Read an atomic .item file into the builder's item text. */
static int rb_read_item(gr_builder *b, const char *path)
{
    rb_header h;
    gr_lines *r = rb_open(path, &h);
    if (!r) return GR_ERR;
    static const char *const n_id[] = {"item_id", NULL};
    int ci = rb_col(&h, n_id), ct = rb_col(&h, n_title), cg = rb_col(&h, n_genre), cb = rb_col(&h, n_brand),
        cx = rb_col(&h, n_text);
    char *f[RB_MAXF];
    int64_t ln;
    int rc;
    if (ci < 0) { gr_errorf("%s:1: field 'item_id': column missing from the header", path); goto fail; }
    while ((rc = rb_row(r, path, &h, f, &ln)) == 1) {
        if (rb_token(f[ci], path, ln, "item_id") != GR_OK) goto fail;
        if (!gr_builder_has_item(b, f[ci])) continue; /* no interactions: skip its text */
        char *v[4] = {NULL, NULL, NULL, NULL};
        int cols[4] = {ct, cg, cb, cx}, ok = GR_OK;
        for (int k = 0; k < 4 && ok == GR_OK; k++)
            if (cols[k] >= 0 &&
                !(v[k] = rb_text(f[cols[k]], k == 1 && h.type[cg] == 's', path, ln, h.name[cols[k]])))
                ok = GR_ERR;
        if (ok == GR_OK) ok = rb_set_text(b, f[ci], v[0], v[1], v[2], v[3], ct >= 0);
        for (int k = 0; k < 4; k++) free(v[k]);
        if (ok != GR_OK) goto fail;
    }
    if (rc < 0) goto fail;
    gr_lines_close(r);
    return GR_OK;
fail:
    gr_lines_close(r);
    return GR_ERR;
}

/* ---- atomic ---------------------------------------------------------------------- */

/* The first (by name) NAME.inter[.gz] in DIR: SPLITS 0 = only files that are
 * not named *.train/valid/test.inter, 1 = only those. NULL when none. */
static char *find_inter(const char *dir, int splits)
{
    DIR *dp = opendir(dir);
    if (!dp) return NULL;
    struct dirent *e;
    char *best = NULL;
    while ((e = readdir(dp))) {
        const char *nm = e->d_name;
        if (!gr_str_ends(nm, ".inter") && !gr_str_ends(nm, ".inter.gz")) continue;
        int is_split = strstr(nm, ".train.inter") || strstr(nm, ".valid.inter") || strstr(nm, ".test.inter");
        if (is_split != splits) continue;
        if (!best || strcmp(nm, best) < 0) { free(best); best = gr_strdup(nm); }
    }
    closedir(dp);
    if (!best) return NULL;
    char *p = gr_path_join(dir, best);
    free(best);
    return p;
}

gr_dataset *gr_load_recbole(const char *path)
{
    static const char *const sfx[] = {".inter.gz", ".inter", NULL};
    char *inter = NULL, *dir = NULL, *name = NULL, *item = NULL;
    gr_builder *b = NULL;
    gr_lines *r = NULL;
    gr_dataset *d = NULL;
    rb_header h;
    if (gr_path_is_dir(path)) {
        if (!(inter = find_inter(path, 0))) {
            gr_errorf("%s: no NAME.inter file (RecBole atomic layout)", path);
            goto done;
        }
    } else if (!(inter = gr_strdup(path))) {
        goto done;
    }
    if (!(dir = gr_path_dir(inter)) || !(name = gr_path_stem(inter, sfx))) goto done;
    {
        char *base = malloc(strlen(name) + 8);
        if (!base) { gr_errorf("out of memory"); goto done; }
        snprintf(base, strlen(name) + 8, "%s.item", name);
        item = gr_path_find(dir, base);
        free(base);
    }
    if (!(b = gr_builder_init(name, "recbole"))) goto done;
    if (!(r = rb_open(inter, &h))) goto done;
    static const char *const n_user[] = {"user_id", NULL}, *const n_item[] = {"item_id", NULL},
                             *const n_time[] = {"timestamp", NULL}, *const n_rating[] = {"rating", NULL};
    int cu = rb_col(&h, n_user), ci = rb_col(&h, n_item), ct = rb_col(&h, n_time), cr = rb_col(&h, n_rating);
    if (cu < 0 || ci < 0) {
        gr_errorf("%s:1: field '%s': column missing from the header", inter, cu < 0 ? "user_id" : "item_id");
        goto done;
    }
    char *f[RB_MAXF];
    int64_t ln, n = 0;
    int rc;
    while ((rc = rb_row(r, inter, &h, f, &ln)) == 1) {
        int64_t ts = n;
        float rating = 0.0f;
        if (rb_token(f[cu], inter, ln, "user_id") || rb_token(f[ci], inter, ln, "item_id") ||
            (ct >= 0 && gr_parse_time(f[ct], &ts, inter, ln, "timestamp")) ||
            (cr >= 0 && gr_parse_float(f[cr], &rating, inter, ln, "rating")))
            goto done;
        if (gr_builder_add(b, f[cu], f[ci], ts, rating) != GR_OK) {
            gr_error_prefix("%s:%lld: ", inter, (long long)ln);
            goto done;
        }
        n++;
    }
    if (rc < 0) goto done;
    if (n == 0) {
        gr_errorf("%s:%lld: field 'user_id': no interaction rows after the header", inter,
                  (long long)gr_lines_lineno(r) + 1);
        goto done;
    }
    if (item && rb_read_item(b, item) != GR_OK) goto done;
    gr_builder_set_flags(b, ct >= 0, cr >= 0);
    d = gr_builder_finish(b);
    b = NULL;
done:
    gr_lines_close(r);
    gr_builder_free(b);
    free(inter);
    free(dir);
    free(name);
    free(item);
    return d;
}

/* ---- sequential benchmark ------------------------------------------------------------ */

typedef struct seq_user {
    char *key;
    char *seq;  /* "i1 i2 ... target" */
    int rank;   /* 3 test, 2 valid, 1 train */
    size_t ntok;
} seq_user;

typedef struct seq_state {
    gr_strmap umap;
    seq_user *u;
    size_t n, cap;
} seq_state;

static int seq_offer(seq_state *s, const char *user, const char *list, const char *target, int rank)
{
    size_t ntok = 1;
    for (const char *p = list; *p; p++) ntok += *p == ' ';
    if (*list) ntok++;
    int32_t id = gr_strmap_get(&s->umap, user, strlen(user));
    if (id >= 0) {
        seq_user *x = &s->u[id];
        if (rank < x->rank || (rank == x->rank && ntok <= x->ntok)) return GR_OK;
    } else {
        if (s->n == s->cap) {
            size_t cap = s->cap ? s->cap * 2 : 1024;
            seq_user *p = realloc(s->u, cap * sizeof *p);
            if (!p) return gr_errorf("out of memory");
            s->u = p;
            s->cap = cap;
        }
        id = (int32_t)s->n;
        memset(&s->u[id], 0, sizeof s->u[id]);
        if (!(s->u[id].key = gr_strdup(user))) return GR_ERR;
        s->n++;
        if (gr_strmap_put(&s->umap, s->u[id].key, strlen(user), id) < 0) return GR_ERR;
    }
    seq_user *x = &s->u[id];
    size_t ll = strlen(list), tl = strlen(target);
    char *q = malloc(ll + tl + 2);
    if (!q) return gr_errorf("out of memory");
    memcpy(q, list, ll);
    if (ll) q[ll++] = ' ';
    memcpy(q + ll, target, tl + 1);
    free(x->seq);
    x->seq = q;
    x->rank = rank;
    x->ntok = ntok;
    return GR_OK;
}

static int seq_read(seq_state *s, const char *path, int rank)
{
    rb_header h;
    gr_lines *r = rb_open(path, &h);
    if (!r) return GR_ERR;
    static const char *const n_user[] = {"user_id", NULL}, *const n_list[] = {"item_id_list", NULL},
                             *const n_item[] = {"item_id", NULL};
    int cu = rb_col(&h, n_user), cl = rb_col(&h, n_list), ci = rb_col(&h, n_item);
    char *f[RB_MAXF];
    int64_t ln;
    int rc;
    if (cu < 0 || cl < 0 || ci < 0) {
        gr_errorf("%s:1: field '%s': column missing from the header (user_id, item_id_list, item_id)", path,
                  cu < 0 ? "user_id" : cl < 0 ? "item_id_list" : "item_id");
        goto fail;
    }
    while ((rc = rb_row(r, path, &h, f, &ln)) == 1) {
        if (rb_token(f[cu], path, ln, "user_id") || rb_token(f[ci], path, ln, "item_id")) goto fail;
        const char *l = f[cl];
        size_t bad;
        if (!gr_utf8_valid(l, strlen(l), &bad)) {
            gr_errorf("%s:%lld: field 'item_id_list': invalid UTF-8 at byte %zu", path, (long long)ln, bad + 1);
            goto fail;
        }
        for (const char *p = l; *p; p++)
            if (*p == ' ' && (p == l || p[1] == ' ' || p[1] == '\0')) {
                gr_errorf("%s:%lld: field 'item_id_list': empty item (items are separated by single spaces)", path,
                          (long long)ln);
                goto fail;
            }
        if (strchr(f[ci], ' ')) {
            gr_errorf("%s:%lld: field 'item_id': '%s' contains a space", path, (long long)ln, gr_quote_input(f[ci]));
            goto fail;
        }
        if (seq_offer(s, f[cu], l, f[ci], rank) != GR_OK) { gr_error_prefix("%s:%lld: ", path, (long long)ln); goto fail; }
    }
    if (rc < 0) goto fail;
    gr_lines_close(r);
    return GR_OK;
fail:
    gr_lines_close(r);
    return GR_ERR;
}

/* Read a two-column "key<TAB>value" map (item2index) into keys/vals. */
typedef struct kvmap { gr_strmap m; char **k, **v; size_t n, cap; } kvmap;

static void kv_free(kvmap *m)
{
    gr_strmap_free(&m->m);
    for (size_t i = 0; i < m->n; i++) { free(m->k[i]); free(m->v[i]); }
    free(m->k);
    free(m->v);
}

static int kv_read(kvmap *m, const char *path)
{
    gr_lines *r = gr_lines_open(path);
    if (!r) return GR_ERR;
    char *line, *f[3];
    size_t len;
    int rc;
    while ((rc = gr_lines_next(r, &line, &len)) == 1) {
        int64_t ln = gr_lines_lineno(r);
        if (len == 0) continue;
        int nf = gr_fields_split(line, len, '\t', 0, f, 3, path, ln);
        if (nf != 2) { gr_errorf("%s:%lld: expected 2 TAB-separated fields (raw_id index), found %d", path, (long long)ln, nf); goto fail; }
        if (ln == 1 && strchr(f[0], ':')) continue; /* typed header */
        if (rb_token(f[0], path, ln, "raw_id") || rb_token(f[1], path, ln, "index")) goto fail;
        if (m->n == m->cap) {
            size_t cap = m->cap ? m->cap * 2 : 1024;
            char **a = realloc(m->k, cap * sizeof *a);
            if (a) m->k = a;
            char **b = realloc(m->v, cap * sizeof *b);
            if (b) m->v = b;
            if (!a || !b) { gr_errorf("out of memory"); goto fail; }
            m->cap = cap;
        }
        char *k = gr_strdup(f[0]), *v = gr_strdup(f[1]);
        if (!k || !v) { free(k); free(v); goto fail; }
        m->k[m->n] = k;
        m->v[m->n] = v;
        m->n++;
        if (gr_strmap_put(&m->m, k, strlen(k), (int32_t)(m->n - 1)) < -1) goto fail;
    }
    if (rc < 0) goto fail;
    gr_lines_close(r);
    return GR_OK;
fail:
    gr_lines_close(r);
    return GR_ERR;
}

/* NAME.text: "item_id<TAB>text" (optional typed header). */
static int read_text(gr_builder *b, const char *path, const gr_strmap *items, const kvmap *map)
{
    gr_lines *r = gr_lines_open(path);
    if (!r) return GR_ERR;
    char *line, *f[3];
    size_t len;
    int rc;
    while ((rc = gr_lines_next(r, &line, &len)) == 1) {
        int64_t ln = gr_lines_lineno(r);
        if (len == 0) continue;
        int nf = gr_fields_split(line, len, '\t', 0, f, 3, path, ln);
        if (nf != 2) { gr_errorf("%s:%lld: expected 2 TAB-separated fields (item_id text), found %d", path, (long long)ln, nf); goto fail; }
        if (ln == 1 && strchr(f[0], ':') && strchr(f[1], ':')) continue; /* typed header */
        if (rb_token(f[0], path, ln, "item_id") != GR_OK) goto fail;
        const char *key = f[0];
        if (gr_strmap_get(items, key, strlen(key)) < 0) {
            int32_t j = map ? gr_strmap_get(&map->m, key, strlen(key)) : -1;
            if (j < 0) continue; /* text of an item without interactions */
            key = map->v[j];
        }
        char *text = gr_text_clean(f[1], strlen(f[1]), GR_ENC_UTF8, path, ln, "text");
        int ok = text ? rb_set_text(b, key, NULL, NULL, NULL, text, 0) : GR_ERR;
        free(text);
        if (ok != GR_OK) goto fail;
    }
    if (rc < 0) goto fail;
    gr_lines_close(r);
    return GR_OK;
fail:
    gr_lines_close(r);
    return GR_ERR;
}

gr_dataset *gr_load_recbole_seq(const char *path)
{
    static const char *const sfx[] = {".train.inter.gz", ".valid.inter.gz", ".test.inter.gz", ".train.inter",
                                      ".valid.inter", ".test.inter", NULL};
    static const char *const parts[3] = {"train", "valid", "test"};
    char *dir = NULL, *name = NULL, *file[3] = {0}, *text = NULL, *i2i = NULL, *item = NULL, *tmp = NULL;
    seq_state s = {0};
    kvmap map = {0};
    gr_strmap items;
    gr_strmap_init(&items);
    gr_builder *b = NULL;
    gr_dataset *d = NULL;
    if (gr_path_is_dir(path)) {
        char *any = find_inter(path, 1);
        if (!any) { gr_errorf("%s: no NAME.test.inter file (RecBole sequential layout)", path); goto done; }
        name = gr_path_stem(any, sfx);
        free(any);
        dir = gr_strdup(path);
    } else {
        dir = gr_path_dir(path);
        name = gr_path_stem(path, sfx);
    }
    if (!dir || !name) goto done;
    size_t tl = strlen(name) + 32;
    if (!(tmp = malloc(tl))) { gr_errorf("out of memory"); goto done; }
    int nfiles = 0;
    for (int k = 0; k < 3; k++) {
        snprintf(tmp, tl, "%s.%s.inter", name, parts[k]);
        file[k] = gr_path_find(dir, tmp);
        nfiles += file[k] != NULL;
    }
    if (!nfiles) {
        gr_errorf("%s: no %s.{train,valid,test}.inter files (RecBole sequential layout)", dir, name);
        goto done;
    }
    snprintf(tmp, tl, "%s.text", name);
    text = gr_path_find(dir, tmp);
    snprintf(tmp, tl, "%s.item2index", name);
    i2i = gr_path_find(dir, tmp);
    snprintf(tmp, tl, "%s.item", name);
    item = gr_path_find(dir, tmp);
    gr_strmap_init(&s.umap);
    gr_strmap_init(&map.m);
    for (int k = 0; k < 3; k++)
        if (file[k] && seq_read(&s, file[k], k + 1) != GR_OK) goto done;
    if (s.n == 0) {
        const char *f0 = file[2] ? file[2] : file[1] ? file[1] : file[0];
        gr_errorf("%s:2: field 'user_id': no interaction rows after the header", f0);
        goto done;
    }
    if (!(b = gr_builder_init(name, "recbole-seq"))) goto done;
    for (size_t u = 0; u < s.n; u++) {
        int64_t t = 0;
        for (char *p = s.u[u].seq; p; t++) {
            char *sp = strchr(p, ' ');
            if (sp) *sp = '\0';
            if (gr_builder_add(b, s.u[u].key, p, t, 0.0f) != GR_OK) goto done;
            if (gr_strmap_put(&items, p, strlen(p), 1) < -1) goto done;
            p = sp ? sp + 1 : NULL;
        }
    }
    if (i2i && kv_read(&map, i2i) != GR_OK) goto done;
    if (text && read_text(b, text, &items, i2i ? &map : NULL) != GR_OK) goto done;
    if (item && rb_read_item(b, item) != GR_OK) goto done;
    gr_builder_set_flags(b, 0, 0);
    d = gr_builder_finish(b);
    b = NULL;
done:
    gr_builder_free(b);
    gr_strmap_free(&items);
    kv_free(&map);
    for (size_t u = 0; u < s.n; u++) { free(s.u[u].key); free(s.u[u].seq); }
    free(s.u);
    gr_strmap_free(&s.umap);
    for (int k = 0; k < 3; k++) free(file[k]);
    free(dir);
    free(name);
    free(text);
    free(i2i);
    free(item);
    free(tmp);
    return d;
}
