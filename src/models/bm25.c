/* BM25: content-based retrieval baseline. Documents are the items' text;
 * the query of a user is the concatenated text of the items in the query's
 * history (the most recent max_hist items, default 10; 0 = all), so a word
 * the user's history mentions q times weighs q times.
 *
 * Tokens: maximal runs of ASCII letters/digits and bytes >= 0x80 (so UTF-8
 * letters stay inside words; they are not case-folded), ASCII lower-cased.
 * Everything else (space, punctuation, the '|' between genres) separates
 * words. With bm25.drop_year=1 a 4-digit token written as "(1995)" is
 * dropped (MovieLens release years); by default years are kept as words.
 *
 * Okapi BM25 with the Lucene/Pyserini non-negative idf:
 *   idf(t)   = ln(1 + (N - df + 0.5) / (df + 0.5))
 *   s(q, d)  = Σ_t qtf(t) · idf(t) · tf(t,d)(k1+1) / (tf(t,d) + k1(1 - b + b·|d|/avgdl))
 * with N = n_items, |d| = the document's token count. Scoring walks an
 * inverted index (postings hold the precomputed per-(term, item) weight), so
 * a query costs the total postings length of its distinct terms.
 */
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include "baseline_params.h"
#include "genrec/model.h"

enum { BM25_TITLE = 1, BM25_GENRES = 2, BM25_BRAND = 4, BM25_TEXT = 8 };

typedef struct bm25_model {
    double k1, b;
    int32_t max_hist;
    int fields, drop_year;
    int32_t n_items, n_terms;
    int64_t *fwd_off; int32_t *fwd_term; float *fwd_tf;  /* item -> (term, tf), terms ascending */
    int64_t *post_off; int32_t *post_item; float *post_w; /* term -> (item, weight), items ascending */
} bm25_model;

/* ---- vocabulary (open addressing on FNV-1a) --------------------------------- */

typedef struct vocab {
    char **key; int32_t *id; uint64_t cap; int32_t n;
} vocab;

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t k = 0; k < n; k++) h = (h ^ (unsigned char)s[k]) * 1099511628211ULL;
    return h;
}

static void vocab_free(vocab *v)
{
    if (v->key)
        for (uint64_t k = 0; k < v->cap; k++) free(v->key[k]);
    gr_free(v->key);
    gr_free(v->id);
    memset(v, 0, sizeof *v);
}

/* Term id of the n-byte word w, adding it if new; -1 on OOM. */
static int32_t vocab_get(vocab *v, const char *w, size_t n)
{
    if ((uint64_t)(v->n + 1) * 2 > v->cap) {
        uint64_t cap = v->cap ? v->cap * 2 : 1024;
        char **key = gr_calloc(cap, sizeof *key);
        int32_t *id = gr_alloc(cap, sizeof *id);
        if (!key || !id) { gr_free(key); gr_free(id); return -1; }
        for (uint64_t k = 0; k < v->cap; k++) {
            if (!v->key[k]) continue;
            uint64_t h = fnv1a(v->key[k], strlen(v->key[k])) & (cap - 1);
            while (key[h]) h = (h + 1) & (cap - 1);
            key[h] = v->key[k];
            id[h] = v->id[k];
        }
        gr_free(v->key); gr_free(v->id);
        v->key = key; v->id = id; v->cap = cap;
    }
    uint64_t h = fnv1a(w, n) & (v->cap - 1);
    while (v->key[h]) {
        if (strlen(v->key[h]) == n && memcmp(v->key[h], w, n) == 0) return v->id[h];
        h = (h + 1) & (v->cap - 1);
    }
    v->key[h] = gr_strndup(w, n);
    if (!v->key[h]) return -1;
    v->id[h] = v->n;
    return v->n++;
}

/* ---- tokenizer -------------------------------------------------------------- */

static int is_word_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

/* Append the term ids of text to *ids (growing it). GR_ERR on OOM. */
static int tokenize_into(vocab *v, const char *text, int drop_year, int32_t **ids, int64_t *n, int64_t *cap)
{
    char word[256];
    const unsigned char *s = (const unsigned char *)text;
    size_t k = 0;
    while (s[k]) {
        if (!is_word_byte(s[k])) { k++; continue; }
        size_t a = k;
        while (s[k] && is_word_byte(s[k])) k++;
        size_t len = k - a;
        if (drop_year && len == 4 && a > 0 && s[a - 1] == '(' && s[k] == ')') {
            int digits = 1;
            for (size_t d = a; d < k; d++) digits &= s[d] >= '0' && s[d] <= '9';
            if (digits) continue;
        }
        if (len > sizeof word) len = sizeof word; /* very long runs are cut, consistently */
        for (size_t d = 0; d < len; d++) {
            unsigned char c = s[a + d];
            word[d] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        }
        int32_t id = vocab_get(v, word, len);
        if (id < 0) return GR_ERR;
        if (*n == *cap) {
            int64_t nc = *cap ? *cap * 2 : 64;
            int32_t *p = gr_realloc(*ids, (size_t)nc, sizeof *p);
            if (!p) return GR_ERR;
            *ids = p; *cap = nc;
        }
        (*ids)[(*n)++] = id;
    }
    return GR_OK;
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* ---- index construction ----------------------------------------------------- */

static void bm25_clear(bm25_model *bm)
{
    gr_free(bm->fwd_off); gr_free(bm->fwd_term); gr_free(bm->fwd_tf);
    gr_free(bm->post_off); gr_free(bm->post_item); gr_free(bm->post_w);
    bm->fwd_off = bm->post_off = NULL;
    bm->fwd_term = bm->post_item = NULL;
    bm->fwd_tf = bm->post_w = NULL;
    bm->n_terms = 0;
}

static int bm25_fit(gr_model *m, const gr_split *s, gr_fit_ctx *ctx)
{
    (void)ctx;
    bm25_model *bm = m->impl;
    if (!s || !s->data) return gr_errorf("bm25: fit: split has no dataset (item text needed)");
    const gr_dataset *d = s->data;
    const int32_t ni = s->n_items;
    if (ni <= 0 || d->n_items != ni)
        return gr_errorf("bm25: fit: split has %d items but its dataset %d", (int)ni, (int)d->n_items);
    bm25_clear(bm);
    vocab v = {0};
    int32_t *ids = NULL; /* per item: its tokens, then its unique terms */
    int64_t n_ids = 0, cap_ids = 0;
    double *dl = gr_alloc((size_t)ni, sizeof *dl);
    bm->fwd_off = gr_alloc((size_t)ni + 1, sizeof *bm->fwd_off);
    int64_t fwd_cap = 0, fwd_n = 0;
    int rc = GR_ERR;
    if (!dl || !bm->fwd_off) goto done;
    char **const fields[4] = {d->item_title, d->item_genres, d->item_brand, d->item_text};
    for (int32_t i = 0; i < ni; i++) {
        n_ids = 0;
        for (int f = 0; f < 4; f++) {
            if (!(bm->fields & (1 << f)) || !fields[f] || !fields[f][i]) continue;
            if (tokenize_into(&v, fields[f][i], bm->drop_year, &ids, &n_ids, &cap_ids) != GR_OK) goto done;
        }
        dl[i] = (double)n_ids;
        qsort(ids, (size_t)n_ids, sizeof *ids, cmp_i32);
        bm->fwd_off[i] = fwd_n;
        for (int64_t k = 0; k < n_ids;) {
            int64_t e = k;
            while (e < n_ids && ids[e] == ids[k]) e++;
            if (fwd_n == fwd_cap) {
                int64_t nc = fwd_cap ? fwd_cap * 2 : 4096;
                int32_t *t = gr_realloc(bm->fwd_term, (size_t)nc, sizeof *t);
                if (!t) goto done;
                bm->fwd_term = t;
                float *f = gr_realloc(bm->fwd_tf, (size_t)nc, sizeof *f);
                if (!f) goto done;
                bm->fwd_tf = f;
                fwd_cap = nc;
            }
            bm->fwd_term[fwd_n] = ids[k];
            bm->fwd_tf[fwd_n++] = (float)(e - k);
            k = e;
        }
    }
    bm->fwd_off[ni] = fwd_n;
    bm->n_terms = v.n;

    /* Postings: df per term, then fill in increasing item order. */
    const int32_t nt = v.n;
    bm->post_off = gr_calloc((size_t)nt + 1, sizeof *bm->post_off);
    bm->post_item = gr_alloc((size_t)fwd_n + 1, sizeof *bm->post_item);
    bm->post_w = gr_alloc((size_t)fwd_n + 1, sizeof *bm->post_w);
    if (!bm->post_off || !bm->post_item || !bm->post_w) goto done;
    for (int64_t k = 0; k < fwd_n; k++) bm->post_off[bm->fwd_term[k] + 1]++;
    for (int32_t t = 0; t < nt; t++) bm->post_off[t + 1] += bm->post_off[t];
    double avgdl = 0;
    for (int32_t i = 0; i < ni; i++) avgdl += dl[i];
    avgdl /= ni;
    if (avgdl <= 0) avgdl = 1;
    int64_t *fill = gr_alloc((size_t)nt + 1, sizeof *fill);
    if (!fill) goto done;
    memcpy(fill, bm->post_off, (size_t)nt * sizeof *fill);
    for (int32_t i = 0; i < ni; i++) {
        double norm = bm->k1 * (1.0 - bm->b + bm->b * dl[i] / avgdl);
        for (int64_t k = bm->fwd_off[i]; k < bm->fwd_off[i + 1]; k++) {
            int32_t t = bm->fwd_term[k];
            double df = (double)(bm->post_off[t + 1] - bm->post_off[t]);
            double idf = log(1.0 + ((double)ni - df + 0.5) / (df + 0.5));
            double tf = bm->fwd_tf[k];
            int64_t p = fill[t]++;
            bm->post_item[p] = i;
            bm->post_w[p] = (float)(idf * tf * (bm->k1 + 1.0) / (tf + norm));
        }
    }
    gr_free(fill);
    bm->n_items = ni;
    m->n_items = ni;
    if (ctx && ctx->verbose)
        gr_log(1, "bm25: indexed %d items, %d terms, %lld postings, avgdl %.1f\n", (int)ni, (int)nt,
               (long long)fwd_n, avgdl);
    rc = GR_OK;
done:
    if (rc != GR_OK) {
        bm25_clear(bm);
        gr_error_prefix("bm25: fit: ");
    }
    vocab_free(&v);
    gr_free(ids);
    gr_free(dl);
    return rc;
}

/* ---- scoring ---------------------------------------------------------------- */

static int bm25_score(gr_model *m, const gr_query *q, int n, float *scores)
{
    bm25_model *bm = m->impl;
    if (!bm->post_off) return gr_errorf("bm25: score called before fit");
    const int32_t ni = bm->n_items, nt = bm->n_terms;
    int failed = 0;
#pragma omp parallel num_threads(gr_threads_get()) if (n > 4)
    {
        float *qtf = gr_calloc((size_t)nt + 1, sizeof *qtf);
        int32_t *used = gr_alloc((size_t)nt + 1, sizeof *used);
        if (!qtf || !used) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 4)
        for (int r = 0; r < n; r++) {
            float *row = scores + (size_t)r * (size_t)ni;
            memset(row, 0, (size_t)ni * sizeof *row);
            if (!qtf || !used) continue;
            int32_t a = 0, len = q[r].hist_len, n_used = 0;
            if (bm->max_hist > 0 && len > bm->max_hist) a = len - bm->max_hist;
            for (int32_t h = a; h < len; h++) {
                int32_t it = q[r].hist[h];
                if (it < 0 || it >= ni) continue;
                for (int64_t k = bm->fwd_off[it]; k < bm->fwd_off[it + 1]; k++) {
                    int32_t t = bm->fwd_term[k];
                    if (qtf[t] == 0) used[n_used++] = t;
                    qtf[t] += bm->fwd_tf[k];
                }
            }
            /* Fixed term order so results do not depend on history order. */
            qsort(used, (size_t)n_used, sizeof *used, cmp_i32);
            for (int32_t u = 0; u < n_used; u++) {
                int32_t t = used[u];
                float w = qtf[t];
                for (int64_t p = bm->post_off[t]; p < bm->post_off[t + 1]; p++)
                    row[bm->post_item[p]] += w * bm->post_w[p];
                qtf[t] = 0;
            }
        }
        gr_free(qtf);
        gr_free(used);
    }
    if (failed) return gr_errorf("bm25: score: out of memory");
    return GR_OK;
}

static void bm25_destroy(gr_model *m)
{
    bm25_model *bm = m->impl;
    if (bm) bm25_clear(bm);
    gr_free(bm);
}

static const gr_model_ops bm25_ops = {"bm25", bm25_fit, bm25_score, bm25_destroy};

/* Parse "title,genres,brand,text" (any subset, any order) into a mask. */
static int parse_fields(const char *s, int *out)
{
    static const char *const names[4] = {"title", "genres", "brand", "text"};
    int mask = 0;
    const char *p = s;
    while (*p) {
        size_t len = strcspn(p, ",");
        int f = -1;
        for (int k = 0; k < 4; k++)
            if (strlen(names[k]) == len && strncmp(p, names[k], len) == 0) f = k;
        if (f < 0)
            return gr_errorf("parameter bm25.fields: unknown field '%.*s' in '%s' "
                             "(use a comma list of title, genres, brand, text)", (int)len, p, s);
        mask |= 1 << f;
        p += len;
        if (*p == ',') p++;
    }
    if (!mask) return gr_errorf("parameter bm25.fields: empty field list");
    *out = mask;
    return GR_OK;
}

/* Create an unfitted BM25 model. Keys (defaults): bm25.k1 (1.2), bm25.b
 * (0.75), bm25.fields ("title,genres,brand,text"), bm25.max_hist (10: the
 * most recent history items that form the query, 0 = all), bm25.drop_year
 * (0; 1 drops "(1995)"-style years). Defaults chosen on validation NDCG@10
 * averaged over ml-100k, ml-latest-small, lastfm and amazon-scientific (loo). fit() needs the split's dataset (item text).
 * Returns NULL + message on an unknown "bm25.*" key or a bad value; free with
 * gr_model_free(). */
gr_model *gr_bm25_create(const gr_params *p)
{
    static const char *const known[] = {"bm25.k1", "bm25.b", "bm25.fields", "bm25.max_hist",
                                        "bm25.drop_year", NULL};
    if (baseline_params_check(p, "bm25.", known) != GR_OK) return NULL;
    double k1, b;
    int64_t max_hist, drop_year;
    int fields = 0;
    if (gr_params_float(p, "bm25.k1", 1.2, &k1) || gr_params_float(p, "bm25.b", 0.75, &b) ||
        gr_params_int(p, "bm25.max_hist", 10, &max_hist) ||
        gr_params_int(p, "bm25.drop_year", 0, &drop_year) ||
        parse_fields(gr_params_str(p, "bm25.fields", "title,genres,brand,text"), &fields))
        return NULL;
    const char *bad = NULL;
    if (!(k1 >= 0)) bad = "bm25.k1 (must be >= 0)";
    else if (!(b >= 0 && b <= 1)) bad = "bm25.b (must be in [0, 1])";
    else if (max_hist < 0 || max_hist > INT32_MAX) bad = "bm25.max_hist (must be >= 0)";
    else if (drop_year != 0 && drop_year != 1) bad = "bm25.drop_year (must be 0 or 1)";
    if (bad) { gr_errorf("parameter %s", bad); return NULL; }
    gr_model *m = gr_calloc(1, sizeof *m);
    bm25_model *bm = gr_calloc(1, sizeof *bm);
    if (!m || !bm) { gr_free(m); gr_free(bm); return NULL; }
    bm->k1 = k1; bm->b = b; bm->max_hist = (int32_t)max_hist;
    bm->fields = fields; bm->drop_year = (int)drop_year;
    m->ops = &bm25_ops;
    m->impl = bm;
    return m;
}
