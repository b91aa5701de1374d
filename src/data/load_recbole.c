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
#include "data/table.h"

/* Open a RecBole file and check its typed header "name:type"; the type
 * suffixes are cut from t->head and the types stored in TYPES ('t' token,
 * 's' token_seq, 'f' float, 'v' float_seq; GR_TABLE_MAXF entries). */
static int rb_open(gr_table *t, const char *path, char *types)
{
    if (gr_table_open(t, path, "\t", 0, 1) != GR_OK) return GR_ERR;
    for (int i = 0; i < t->nf; i++) {
        char *f = t->head[i], *c = strrchr(f, ':');
        if (!c || c == f) {
            gr_errorf("%s:1: field %d: header field '%s' is not 'name:type' (RecBole atomic header)", path, i + 1,
                      gr_quote_input(f));
            goto fail;
        }
        *c = '\0';
        const char *ty = c + 1;
        if (!strcmp(ty, "token")) types[i] = 't';
        else if (!strcmp(ty, "token_seq")) types[i] = 's';
        else if (!strcmp(ty, "float")) types[i] = 'f';
        else if (!strcmp(ty, "float_seq")) types[i] = 'v';
        else {
            gr_errorf("%s:1: field '%s': unknown type '%s' (token, token_seq, float, float_seq)", path,
                      gr_quote_input(f), gr_quote_input(ty));
            goto fail;
        }
        for (int j = 0; j < i; j++)
            if (!strcmp(t->head[j], f)) { gr_errorf("%s:1: field '%s': duplicate column", path, f); goto fail; }
    }
    return GR_OK;
fail:
    gr_table_close(t);
    return GR_ERR;
}

/* ---- item text (.item files) ------------------------------------------------------------ */

static const char *const n_title[] = {"title", "movie_title", "name", "item_name", "title_name", NULL};
static const char *const n_genre[] = {"genre", "genres", "class", "categories", "category", "tags", NULL};
static const char *const n_brand[] = {"brand", "artist", "author", "publisher", "director", NULL};
static const char *const n_text[] = {"text", "description", "desc", "item_text", "plot", "overview", NULL};

/* Read an atomic .item file into the builder's item text. */
static int rb_read_item(gr_builder *b, const char *path)
{
    static const char *const n_id[] = {"item_id", NULL};
    gr_table t;
    char types[GR_TABLE_MAXF];
    if (rb_open(&t, path, types) != GR_OK) return GR_ERR;
    int id = gr_table_col(&t, n_id, 1);
    int txt[4] = {gr_table_col(&t, n_title, 0), gr_table_col(&t, n_genre, 0), gr_table_col(&t, n_brand, 0),
                  gr_table_col(&t, n_text, 0)};
    int rc = id < 0 ? GR_ERR : gr_table_read_item_text(&t, b, id, txt, txt[1] >= 0 && types[txt[1]] == 's', 1);
    gr_table_close(&t);
    return rc;
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
        int is_split = gr_name_is_split_inter(nm) != 0;
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
    static const char *const n_user[] = {"user_id", NULL}, *const n_item[] = {"item_id", NULL},
                             *const n_time[] = {"timestamp", NULL}, *const n_rating[] = {"rating", NULL};
    char *inter = NULL, *dir = NULL, *name = NULL, *item = NULL;
    gr_builder *b = NULL;
    gr_dataset *d = NULL;
    gr_table t = {0};
    char types[GR_TABLE_MAXF];
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
    if (rb_open(&t, inter, types) != GR_OK) goto done;
    const char *const *const cols[4] = {n_user, n_item, n_time, n_rating};
    gr_inter_cols c;
    if (gr_table_inter_cols(&t, cols, &c) != GR_OK || gr_table_read_interactions(&t, b, &c) != GR_OK) goto done;
    if (item && rb_read_item(b, item) != GR_OK) goto done;
    gr_builder_set_flags(b, c.col[2] >= 0, c.col[3] >= 0);
    d = gr_builder_finish(b);
    b = NULL;
done:
    gr_table_close(&t);
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
    static const char *const n_user[] = {"user_id", NULL}, *const n_list[] = {"item_id_list", NULL},
                             *const n_item[] = {"item_id", NULL};
    gr_table t;
    char types[GR_TABLE_MAXF];
    if (rb_open(&t, path, types) != GR_OK) return GR_ERR;
    int cu = gr_table_col(&t, n_user, 0), cl = gr_table_col(&t, n_list, 0), ci = gr_table_col(&t, n_item, 0);
    int rc;
    if (cu < 0 || cl < 0 || ci < 0) {
        gr_errorf("%s:1: field '%s': column missing from the header (user_id, item_id_list, item_id)", path,
                  cu < 0 ? "user_id" : cl < 0 ? "item_id_list" : "item_id");
        goto fail;
    }
    while ((rc = gr_table_next(&t)) == 1) {
        char **f = t.f;
        int64_t ln = t.ln;
        if (gr_check_id(f[cu], path, ln, "user_id") || gr_check_id(f[ci], path, ln, "item_id")) goto fail;
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
    gr_table_close(&t);
    return GR_OK;
fail:
    gr_table_close(&t);
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
    gr_table t;
    if (gr_table_open(&t, path, "\t", 0, 0) != GR_OK) return GR_ERR;
    gr_table_expect(&t, 2, "(raw_id index)");
    int rc;
    while ((rc = gr_table_next(&t)) == 1) {
        char **f = t.f;
        if (t.ln == 1 && strchr(f[0], ':')) continue; /* typed header */
        if (gr_check_id(f[0], path, t.ln, "raw_id") || gr_check_id(f[1], path, t.ln, "index")) goto fail;
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
    gr_table_close(&t);
    return GR_OK;
fail:
    gr_table_close(&t);
    return GR_ERR;
}

/* NAME.text: "item_id<TAB>text" (optional typed header). */
static int read_text(gr_builder *b, const char *path, const gr_strmap *items, const kvmap *map)
{
    gr_table t;
    if (gr_table_open(&t, path, "\t", 0, 0) != GR_OK) return GR_ERR;
    gr_table_expect(&t, 2, "(item_id text)");
    int rc;
    while ((rc = gr_table_next(&t)) == 1) {
        char **f = t.f;
        if (t.ln == 1 && strchr(f[0], ':') && strchr(f[1], ':')) continue; /* typed header */
        if (gr_check_id(f[0], path, t.ln, "item_id") != GR_OK) goto fail;
        const char *key = f[0];
        if (gr_strmap_get(items, key, strlen(key)) < 0) {
            int32_t j = map ? gr_strmap_get(&map->m, key, strlen(key)) : -1;
            if (j < 0) continue; /* text of an item without interactions */
            key = map->v[j];
        }
        char *text = gr_text_clean(f[1], strlen(f[1]), GR_ENC_UTF8, path, t.ln, "text");
        char *title = text ? gr_text_first_sentence(text) : NULL;
        int ok = title ? gr_builder_item_text(b, key, title, NULL, NULL, text) : GR_ERR;
        free(text);
        free(title);
        if (ok != GR_OK) goto fail;
    }
    if (rc < 0) goto fail;
    gr_table_close(&t);
    return GR_OK;
fail:
    gr_table_close(&t);
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
