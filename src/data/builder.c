/* gr_builder: string keys -> dense ids, grouping and stable time sort;
 * gr_dataset_free, gr_load_opts_default, gr_dataset_print_summary. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data/strmap.h"
#include "data/text.h"
#include "genrec/dataset.h"

struct gr_builder {
    char *name, *format;
    gr_strmap umap, imap;
    char **ukey;            /* [nu] owned */
    int32_t nu, ucap;
    char **ikey;            /* [ni] owned; items seen in interactions or text */
    char **itxt[4];         /* title, genres, brand, text per internal item; NULL = unset */
    int32_t *idense;        /* [ni] dense id, -1 until the first interaction */
    int32_t ni, icap, n_dense;
    int32_t *ruser, *ritem; /* [nr] (ritem = internal item index) */
    int64_t *rtime;
    float *rrating;
    int64_t nr, rcap;
    int has_time, has_rating; /* has_rating -1: auto (1 iff every rating is a number) */
    int all_rated;
};

gr_load_opts gr_load_opts_default(void)
{
    gr_load_opts o = {0};
    o.format = NULL;
    o.min_rating = 0.0f;
    o.kcore = 0;
    o.dedup = 1;
    return o;
}

static void free_strs(char **a, int64_t n)
{
    if (!a) return;
    for (int64_t i = 0; i < n; i++) free(a[i]);
    free(a);
}

void gr_dataset_free(gr_dataset *d)
{
    if (!d) return;
    free(d->name);
    free(d->format);
    free_strs(d->user_key, d->n_users);
    free_strs(d->item_key, d->n_items);
    free_strs(d->item_title, d->n_items);
    free_strs(d->item_genres, d->n_items);
    free_strs(d->item_brand, d->n_items);
    free_strs(d->item_text, d->n_items);
    gr_free(d->user_off);
    gr_free(d->inter_item);
    gr_free(d->inter_time);
    gr_free(d->inter_rating);
    free(d);
}

gr_builder *gr_builder_init(const char *name, const char *format)
{
    gr_builder *b = calloc(1, sizeof *b);
    if (!b) { gr_errorf("out of memory creating a dataset builder"); return NULL; }
    b->name = gr_strdup(name ? name : "dataset");
    b->format = gr_strdup(format ? format : "unknown");
    if (!b->name || !b->format) { gr_builder_free(b); return NULL; }
    gr_strmap_init(&b->umap);
    gr_strmap_init(&b->imap);
    b->has_time = 1;
    b->has_rating = -1;
    b->all_rated = 1;
    return b;
}

void gr_builder_free(gr_builder *b)
{
    if (!b) return;
    free(b->name);
    free(b->format);
    gr_strmap_free(&b->umap);
    gr_strmap_free(&b->imap);
    free_strs(b->ukey, b->nu);
    free_strs(b->ikey, b->ni);
    for (int f = 0; f < 4; f++) free_strs(b->itxt[f], b->ni);
    free(b->idense);
    free(b->ruser);
    free(b->ritem);
    free(b->rtime);
    free(b->rrating);
    free(b);
}

void gr_builder_set_flags(gr_builder *b, int has_time, int has_rating)
{
    b->has_time = has_time ? 1 : 0;
    b->has_rating = has_rating ? 1 : 0;
}

static int grow_ptrs(char ***a, int32_t n, int32_t cap)
{
    char **p = realloc(*a, (size_t)cap * sizeof *p);
    if (!p) return gr_errorf("out of memory growing a dataset builder");
    memset(p + n, 0, (size_t)(cap - n) * sizeof *p);
    *a = p;
    return GR_OK;
}

/* Id of user key u, creating it. -1 on error. */
static int32_t user_id(gr_builder *b, const char *u)
{
    size_t n = strlen(u);
    int32_t id = gr_strmap_get(&b->umap, u, n);
    if (id >= 0) return id;
    if (b->nu == INT32_MAX - 1) { gr_errorf("more than %d users", INT32_MAX - 1); return -1; }
    if (b->nu == b->ucap) {
        int32_t cap = b->ucap ? (b->ucap > INT32_MAX / 2 ? INT32_MAX - 1 : b->ucap * 2) : 1024;
        if (grow_ptrs(&b->ukey, b->nu, cap) != GR_OK) return -1;
        b->ucap = cap;
    }
    char *k = gr_strndup(u, n);
    if (!k) return -1;
    b->ukey[b->nu] = k;
    if (gr_strmap_put(&b->umap, k, n, b->nu) < 0) { free(k); b->ukey[b->nu] = NULL; return -1; }
    return b->nu++;
}

/* Internal index of item key i, creating it. -1 on error. */
static int32_t item_index(gr_builder *b, const char *it)
{
    size_t n = strlen(it);
    int32_t id = gr_strmap_get(&b->imap, it, n);
    if (id >= 0) return id;
    if (b->ni == INT32_MAX - 1) { gr_errorf("more than %d items", INT32_MAX - 1); return -1; }
    if (b->ni == b->icap) {
        int32_t cap = b->icap ? (b->icap > INT32_MAX / 2 ? INT32_MAX - 1 : b->icap * 2) : 1024;
        if (grow_ptrs(&b->ikey, b->ni, cap) != GR_OK) return -1;
        for (int f = 0; f < 4; f++)
            if (grow_ptrs(&b->itxt[f], b->ni, cap) != GR_OK) return -1;
        int32_t *d = realloc(b->idense, (size_t)cap * sizeof *d);
        if (!d) { gr_errorf("out of memory growing a dataset builder"); return -1; }
        b->idense = d;
        b->icap = cap;
    }
    char *k = gr_strndup(it, n);
    if (!k) return -1;
    b->ikey[b->ni] = k;
    b->idense[b->ni] = -1;
    if (gr_strmap_put(&b->imap, k, n, b->ni) < 0) { free(k); b->ikey[b->ni] = NULL; return -1; }
    return b->ni++;
}

int gr_builder_add(gr_builder *b, const char *user, const char *item, int64_t time, float rating)
{
    if (b->nr == b->rcap) {
        int64_t cap = b->rcap ? b->rcap * 2 : 4096;
        if (cap > INT64_MAX / 16) return gr_errorf("too many interactions");
        int32_t *u = realloc(b->ruser, (size_t)cap * sizeof *u);
        if (u) b->ruser = u;
        int32_t *i = realloc(b->ritem, (size_t)cap * sizeof *i);
        if (i) b->ritem = i;
        int64_t *t = realloc(b->rtime, (size_t)cap * sizeof *t);
        if (t) b->rtime = t;
        float *r = realloc(b->rrating, (size_t)cap * sizeof *r);
        if (r) b->rrating = r;
        if (!u || !i || !t || !r) return gr_errorf("out of memory adding interaction %lld", (long long)b->nr);
        b->rcap = cap;
    }
    int32_t uid = user_id(b, user);
    if (uid < 0) return GR_ERR;
    int32_t iid = item_index(b, item);
    if (iid < 0) return GR_ERR;
    if (b->idense[iid] < 0) b->idense[iid] = b->n_dense++;
    b->ruser[b->nr] = uid;
    b->ritem[b->nr] = iid;
    b->rtime[b->nr] = time;
    b->rrating[b->nr] = rating;
    if (isnan(rating)) b->all_rated = 0;
    b->nr++;
    return GR_OK;
}

int gr_builder_item_text(gr_builder *b, const char *item, const char *title, const char *genres,
                         const char *brand, const char *text)
{
    const char *v[4] = {title, genres, brand, text};
    static const char *names[4] = {"title", "genres", "brand", "text"};
    for (int f = 0; f < 4; f++) {
        size_t bad;
        if (v[f] && !gr_utf8_valid(v[f], strlen(v[f]), &bad))
            return gr_errorf("item '%s': %s is not valid UTF-8 (byte %zu)", item, names[f], bad + 1);
    }
    int32_t iid = item_index(b, item);
    if (iid < 0) return GR_ERR;
    for (int f = 0; f < 4; f++) {
        if (!v[f]) continue;
        char *c = gr_strdup(v[f]);
        if (!c) return GR_ERR;
        free(b->itxt[f][iid]);
        b->itxt[f][iid] = c;
    }
    return GR_OK;
}

int gr_builder_has_item(const gr_builder *b, const char *item)
{
    int32_t i = gr_strmap_get(&b->imap, item, strlen(item));
    return i >= 0 && b->idense[i] >= 0;
}

typedef struct { int64_t time, idx; } time_idx;

static int cmp_time_idx(const void *a, const void *b)
{
    const time_idx *x = a, *y = b;
    if (x->time != y->time) return x->time < y->time ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

gr_dataset *gr_builder_finish(gr_builder *b)
{
    if (!b) return NULL;
    gr_dataset *d = calloc(1, sizeof *d);
    int64_t *pos = NULL;
    time_idx *tmp = NULL;
    if (!d) { gr_errorf("out of memory finishing a dataset"); goto fail; }
    d->name = b->name; b->name = NULL;
    d->format = b->format; b->format = NULL;
    d->n_users = b->nu;
    d->n_items = b->n_dense;
    d->n_inter = b->nr;
    d->has_time = b->has_time;
    d->has_rating = b->has_rating < 0 ? (b->nr > 0 && b->all_rated) : b->has_rating;

    /* keys and text: move ownership into the dataset */
    d->user_key = b->ukey; b->ukey = NULL;
    b->nu = 0; /* the keys now belong to d (umap points at them but is only freed) */
    d->item_key = calloc((size_t)d->n_items + 1, sizeof(char *));
    char **txt[4];
    for (int f = 0; f < 4; f++) txt[f] = calloc((size_t)d->n_items + 1, sizeof(char *));
    d->item_title = txt[0]; d->item_genres = txt[1]; d->item_brand = txt[2]; d->item_text = txt[3];
    if (!d->item_key || !txt[0] || !txt[1] || !txt[2] || !txt[3]) { gr_errorf("out of memory"); goto fail; }
    for (int32_t i = 0; i < b->ni; i++) {
        int32_t di = b->idense[i];
        if (di < 0) continue;
        d->item_key[di] = b->ikey[i]; b->ikey[i] = NULL;
        for (int f = 0; f < 4; f++) { txt[f][di] = b->itxt[f][i]; b->itxt[f][i] = NULL; }
    }
    for (int32_t i = 0; i < d->n_items; i++)
        for (int f = 0; f < 4; f++)
            if (!txt[f][i] && !(txt[f][i] = gr_strdup(""))) goto fail;

    /* group by user (counting sort keeps file order), then stable sort by time */
    int64_t n = b->nr;
    d->user_off = gr_calloc((size_t)d->n_users + 1, sizeof(int64_t));
    d->inter_item = gr_alloc((size_t)n, sizeof(int32_t));
    d->inter_time = gr_alloc((size_t)n, sizeof(int64_t));
    if (d->has_rating) d->inter_rating = gr_alloc((size_t)n, sizeof(float));
    pos = gr_alloc((size_t)n, sizeof(int64_t));
    if (!d->user_off || !d->inter_item || !d->inter_time || (d->has_rating && !d->inter_rating) || !pos)
        goto fail;
    for (int64_t r = 0; r < n; r++) d->user_off[b->ruser[r] + 1]++;
    for (int32_t u = 0; u < d->n_users; u++) d->user_off[u + 1] += d->user_off[u];
    {
        int64_t *fill = gr_alloc((size_t)d->n_users + 1, sizeof(int64_t));
        if (!fill) goto fail;
        memcpy(fill, d->user_off, ((size_t)d->n_users + 1) * sizeof(int64_t));
        for (int64_t r = 0; r < n; r++) pos[fill[b->ruser[r]]++] = r;
        gr_free(fill);
    }
    int64_t maxlen = 0;
    for (int32_t u = 0; u < d->n_users; u++)
        if (d->user_off[u + 1] - d->user_off[u] > maxlen) maxlen = d->user_off[u + 1] - d->user_off[u];
    tmp = gr_alloc((size_t)maxlen + 1, sizeof *tmp);
    if (!tmp) goto fail;
    for (int32_t u = 0; u < d->n_users; u++) {
        int64_t a = d->user_off[u], e = d->user_off[u + 1];
        int sorted = 1;
        for (int64_t k = a + 1; k < e && sorted; k++) sorted = b->rtime[pos[k - 1]] <= b->rtime[pos[k]];
        if (!sorted) {
            for (int64_t k = a; k < e; k++) { tmp[k - a].time = b->rtime[pos[k]]; tmp[k - a].idx = pos[k]; }
            qsort(tmp, (size_t)(e - a), sizeof *tmp, cmp_time_idx);
            for (int64_t k = a; k < e; k++) pos[k] = tmp[k - a].idx;
        }
        for (int64_t k = a; k < e; k++) {
            int64_t r = pos[k];
            d->inter_item[k] = b->idense[b->ritem[r]];
            d->inter_time[k] = d->has_time ? b->rtime[r] : k - a;
            if (d->has_rating) d->inter_rating[k] = b->rrating[r];
        }
    }
    gr_free(pos);
    gr_free(tmp);
    gr_builder_free(b);
    return d;
fail:
    gr_free(pos);
    gr_free(tmp);
    gr_dataset_free(d);
    gr_builder_free(b);
    return NULL;
}

/* ---- summary ------------------------------------------------------------------------ */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void count_stats(const int64_t *c, int64_t n, FILE *f, const char *what)
{
    if (n <= 0) return;
    int64_t *s = malloc((size_t)n * sizeof *s);
    if (!s) return;
    memcpy(s, c, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_i64);
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += (double)s[i];
    fprintf(f, "  interactions per %s: min %lld, median %lld, mean %.1f, max %lld\n", what,
            (long long)s[0], (long long)s[n / 2], sum / (double)n, (long long)s[n - 1]);
    free(s);
}

static void fmt_time(int64_t t, char *buf, size_t n)
{
    if (t >= 0 && t < 4102444800LL) { /* plausible seconds: print a UTC date */
        time_t tt = (time_t)t;
        struct tm tm;
        if (gmtime_r(&tt, &tm)) { strftime(buf, n, "%Y-%m-%d", &tm); return; }
    }
    snprintf(buf, n, "%lld", (long long)t);
}

void gr_dataset_print_summary(const gr_dataset *d, FILE *f)
{
    if (!d) return;
    double dens = d->n_users && d->n_items ? (double)d->n_inter / ((double)d->n_users * d->n_items) : 0;
    fprintf(f, "dataset %s (format %s): %d users, %d items, %lld interactions, density %.4f%%\n",
            d->name, d->format, d->n_users, d->n_items, (long long)d->n_inter, 100.0 * dens);
    int64_t *uc = malloc(((size_t)d->n_users + 1) * sizeof *uc);
    int64_t *ic = calloc((size_t)d->n_items + 1, sizeof *ic);
    if (uc && ic) {
        for (int32_t u = 0; u < d->n_users; u++) uc[u] = d->user_off[u + 1] - d->user_off[u];
        for (int64_t k = 0; k < d->n_inter; k++) ic[d->inter_item[k]]++;
        count_stats(uc, d->n_users, f, "user");
        count_stats(ic, d->n_items, f, "item");
    }
    free(uc);
    free(ic);
    if (d->n_inter > 0) {
        if (d->has_time) {
            int64_t lo = d->inter_time[0], hi = lo;
            for (int64_t k = 1; k < d->n_inter; k++) {
                if (d->inter_time[k] < lo) lo = d->inter_time[k];
                if (d->inter_time[k] > hi) hi = d->inter_time[k];
            }
            char a[32], b[32];
            fmt_time(lo, a, sizeof a);
            fmt_time(hi, b, sizeof b);
            fprintf(f, "  time: timestamps %s .. %s", a, b);
        } else {
            fprintf(f, "  time: order only (no timestamps)");
        }
        if (d->has_rating) {
            double lo = INFINITY, hi = -INFINITY, s = 0;
            int64_t m = 0;
            for (int64_t k = 0; k < d->n_inter; k++) {
                float r = d->inter_rating[k];
                if (isnan(r)) continue;
                if (r < lo) lo = r;
                if (r > hi) hi = r;
                s += r;
                m++;
            }
            if (m) fprintf(f, "; ratings %g..%g, mean %.3f\n", lo, hi, s / (double)m);
            else fprintf(f, "; ratings: none\n");
        } else {
            fprintf(f, "; no ratings\n");
        }
    }
    int32_t nt = 0, ng = 0, nb = 0, nx = 0;
    for (int32_t i = 0; i < d->n_items; i++) {
        nt += d->item_title[i][0] != '\0';
        ng += d->item_genres[i][0] != '\0';
        nb += d->item_brand[i][0] != '\0';
        nx += d->item_text[i][0] != '\0';
    }
    fprintf(f, "  item text: title %d, genres %d, brand %d, text %d (of %d items)\n", nt, ng, nb, nx,
            d->n_items);
    if (d->n_items > 0)
        fprintf(f, "  e.g. item %s: \"%.80s\"%s%s\n", d->item_key[0], d->item_title[0],
                d->item_genres[0][0] ? " | " : "", d->item_genres[0]);
}
