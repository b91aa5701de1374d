/* Training samples from a split and tokenized SFT sets (see itemtext.h). */
#include <omp.h>
#include <string.h>

#include "genrec/itemtext.h"
#include "rec/rec_internal.h"

gr_query *gr_rec_train_queries(const gr_split *s, int32_t max_hist, int64_t *n)
{
    int64_t cnt = 0;
    for (int32_t u = 0; u < s->n_users; u++) {
        int64_t len = s->train_off[u + 1] - s->train_off[u];
        if (len > 1) cnt += len - 1;
    }
    gr_query *q = gr_calloc(cnt > 0 ? (size_t)cnt : 1, sizeof *q);
    if (!q) return NULL;
    int64_t k = 0;
    for (int32_t u = 0; u < s->n_users; u++) {
        int64_t a = s->train_off[u], len = s->train_off[u + 1] - a;
        for (int64_t i = 1; i < len; i++, k++) {
            int64_t h = max_hist > 0 && i > max_hist ? max_hist : i;
            q[k].user = u;
            q[k].target = s->train_item[a + i];
            q[k].hist_len = (int32_t)h;
            q[k].hist = s->train_item + a + i - h;
            q[k].time = s->train_time ? s->train_time[a + i] : i;
            q[k].cand = NULL;
            q[k].n_cand = 0;
        }
    }
    *n = cnt;
    return q;
}

double *gr_rec_train_counts(const gr_split *s)
{
    double *c = gr_calloc(s->n_items > 0 ? (size_t)s->n_items : 1, sizeof *c);
    if (!c) return NULL;
    for (int64_t k = 0; k < s->train_off[s->n_users]; k++) {
        int32_t i = s->train_item[k];
        if (i >= 0 && i < s->n_items) c[i] += 1;
    }
    return c;
}

void gr_sft_free(gr_sft_set *s)
{
    if (!s) return;
    gr_free(s->off);
    gr_free(s->ids);
    gr_free(s->mask);
    gr_free(s->prompt_len);
    gr_free(s->user);
    gr_free(s->target);
    gr_free(s->hist_used);
    gr_free(s);
}

/* Per-item token ids in CSR form. */
typedef struct csr {
    int64_t *off;
    int32_t *ids;
} csr;

static void csr_free(csr *c)
{
    gr_free(c->off);
    gr_free(c->ids);
}

/* Encode every item as an answer (answer = 1) or as a history piece. */
static int csr_items(csr *c, const gr_prompt_tmpl *t, const gr_tokenizer *tok, const gr_itemtext *it, int answer)
{
    gr_ivec v = {0};
    c->off = gr_alloc((size_t)it->n + 1, sizeof *c->off);
    if (!c->off) return GR_ERR;
    c->off[0] = 0;
    for (int32_t i = 0; i < it->n; i++) {
        if (answer) {
            int64_t k;
            int32_t *ids = gr_answer_encode(t, tok, it, i, &k);
            int rc = ids ? gr_ivec_add(&v, ids, k) : GR_ERR;
            gr_free(ids);
            if (rc) goto fail;
        } else if (gr_rec_encode_item_piece(t, tok, it, i, &v)) {
            goto fail;
        }
        c->off[i + 1] = v.n;
    }
    c->ids = v.p ? v.p : gr_alloc(1, sizeof *c->ids);
    if (!c->ids) goto fail;
    return GR_OK;
fail:
    gr_free(v.p);
    gr_free(c->off);
    c->off = NULL;
    return GR_ERR;
}

typedef struct sample {
    int32_t *ids;
    int64_t n;
    int32_t prompt_len, hist_used;
    int shortened, cut;
} sample;

typedef struct ctx {
    const gr_prompt_tmpl *t;
    const gr_tokenizer *tok;
    const gr_itemtext *it;
    int32_t max_len;
    csr ans, piece;            /* piece only when t->piecewise */
    gr_ivec pre, sep, foot;    /* piecewise: [bos] instruction header / separator / footer */
    int32_t bos;
} ctx;

/* Prompt ids of the last h items of hist (piecewise: from the caches). */
static int32_t *prompt_ids(const ctx *c, const int32_t *hist, int32_t h, int64_t *n)
{
    if (!c->t->piecewise) return gr_prompt_encode(c->t, c->tok, c->it, hist, h, n);
    int64_t len = c->pre.n + c->foot.n + (h > 1 ? (int64_t)(h - 1) * c->sep.n : 0);
    for (int32_t i = 0; i < h; i++) len += c->piece.off[hist[i] + 1] - c->piece.off[hist[i]];
    int32_t *p = gr_alloc(len > 0 ? (size_t)len : 1, sizeof *p);
    if (!p) return NULL;
    int64_t k = 0;
    if (c->pre.n) memcpy(p, c->pre.p, (size_t)c->pre.n * sizeof *p);
    k += c->pre.n;
    for (int32_t i = 0; i < h; i++) {
        if (i && c->sep.n) {
            memcpy(p + k, c->sep.p, (size_t)c->sep.n * sizeof *p);
            k += c->sep.n;
        }
        int64_t a = c->piece.off[hist[i]], b = c->piece.off[hist[i] + 1];
        memcpy(p + k, c->piece.ids + a, (size_t)(b - a) * sizeof *p);
        k += b - a;
    }
    if (c->foot.n) memcpy(p + k, c->foot.p, (size_t)c->foot.n * sizeof *p);
    *n = len;
    return p;
}

/* Piecewise prompt length for the last h items (no allocation). */
static int64_t prompt_len_pw(const ctx *c, const int32_t *hist, int32_t h)
{
    int64_t len = c->pre.n + c->foot.n + (h > 1 ? (int64_t)(h - 1) * c->sep.n : 0);
    for (int32_t i = 0; i < h; i++) len += c->piece.off[hist[i] + 1] - c->piece.off[hist[i]];
    return len;
}

static int build_one(const ctx *c, const gr_query *q, sample *s)
{
    int32_t h = q->hist_len;
    const int32_t *hist = q->hist;
    if (c->t->max_hist > 0 && h > c->t->max_hist) {
        hist += h - c->t->max_hist;
        h = c->t->max_hist;
    }
    int64_t alen = c->ans.off[q->target + 1] - c->ans.off[q->target];
    int32_t h0 = h;
    if (c->max_len > 0 && c->t->piecewise)
        while (h > 0 && prompt_len_pw(c, hist + (h0 - h), h) + alen > c->max_len) h--;
    int64_t plen;
    int32_t *p;
    for (;;) {
        p = prompt_ids(c, hist + (h0 - h), h, &plen);
        if (!p) return GR_ERR;
        if (c->max_len <= 0 || plen + alen <= c->max_len || h == 0) break;
        gr_free(p);
        h--;
    }
    s->shortened = h < h0;
    s->hist_used = h;
    /* still too long: cut prompt tokens on the left, after BOS */
    int64_t skip = 0, keep_bos = c->bos >= 0 && plen > 0 && p[0] == c->bos;
    if (c->max_len > 0 && plen + alen > c->max_len) {
        int64_t room = c->max_len - alen - keep_bos;
        if (room < 0) room = 0;
        skip = plen - keep_bos - room;
        if (skip < 0) skip = 0;
        s->cut = skip > 0;
    }
    int64_t pl = plen - skip;
    s->n = pl + alen;
    s->ids = gr_alloc(s->n > 0 ? (size_t)s->n : 1, sizeof *s->ids);
    if (!s->ids) {
        gr_free(p);
        return GR_ERR;
    }
    if (keep_bos && skip) {
        s->ids[0] = p[0];
        memcpy(s->ids + 1, p + 1 + skip, (size_t)(pl - 1) * sizeof *p);
    } else {
        memcpy(s->ids, p, (size_t)pl * sizeof *p);
    }
    memcpy(s->ids + pl, c->ans.ids + c->ans.off[q->target], (size_t)alen * sizeof *p);
    s->prompt_len = (int32_t)pl;
    gr_free(p);
    return GR_OK;
}

static void ctx_free(ctx *c)
{
    csr_free(&c->ans);
    csr_free(&c->piece);
    gr_free(c->pre.p);
    gr_free(c->sep.p);
    gr_free(c->foot.p);
}

static int ctx_init(ctx *c, const gr_prompt_tmpl *t, const gr_tokenizer *tok, const gr_itemtext *it, int32_t max_len)
{
    memset(c, 0, sizeof *c);
    c->t = t;
    c->tok = tok;
    c->it = it;
    c->max_len = max_len;
    c->bos = gr_rec_prompt_bos(t, tok);
    if (csr_items(&c->ans, t, tok, it, 1)) return GR_ERR;
    if (!t->piecewise) return GR_OK;
    const char *cat = gr_rec_tmpl_cat(t);
    if (csr_items(&c->piece, t, tok, it, 0)) return GR_ERR;
    if (c->bos >= 0 && gr_ivec_add(&c->pre, &c->bos, 1)) return GR_ERR;
    if (gr_rec_encode_subst(&c->pre, tok, t->instruction, cat) || gr_rec_encode_subst(&c->pre, tok, t->header, cat) ||
        gr_rec_encode_subst(&c->sep, tok, t->item_sep, cat) || gr_rec_encode_subst(&c->foot, tok, t->footer, cat))
        return GR_ERR;
    return GR_OK;
}

gr_sft_set *gr_sft_build(const gr_query *q, int64_t nq, const gr_prompt_tmpl *t,
                         const gr_tokenizer *tok, const gr_itemtext *it, int32_t max_len)
{
    if (!t || !tok || !it || (nq > 0 && !q) || nq < 0) {
        gr_errorf("sft: missing template, tokenizer, item texts or queries");
        return NULL;
    }
    if (gr_tokenizer_eos(tok) < 0) {
        gr_errorf("sft: the tokenizer has no EOS token to end the answers");
        return NULL;
    }
    for (int64_t k = 0; k < nq; k++) {
        if (q[k].target < 0 || q[k].target >= it->n) {
            gr_errorf("sft: sample %lld: target item %d out of range [0, %d)", (long long)k, (int)q[k].target, (int)it->n);
            return NULL;
        }
        if (q[k].hist_len < 0 || (q[k].hist_len > 0 && !q[k].hist)) {
            gr_errorf("sft: sample %lld: bad history (length %d)", (long long)k, (int)q[k].hist_len);
            return NULL;
        }
        for (int32_t i = 0; i < q[k].hist_len; i++)
            if (q[k].hist[i] < 0 || q[k].hist[i] >= it->n) {
                gr_errorf("sft: sample %lld: history item %d out of range [0, %d)", (long long)k, (int)q[k].hist[i], (int)it->n);
                return NULL;
            }
    }
    ctx c;
    gr_sft_set *out = NULL;
    sample *sm = NULL;
    if (ctx_init(&c, t, tok, it, max_len)) goto done;
    sm = gr_calloc(nq > 0 ? (size_t)nq : 1, sizeof *sm);
    out = gr_calloc(1, sizeof *out);
    if (!sm || !out) goto fail;
    int failed = 0;
#pragma omp parallel for schedule(dynamic, 16) num_threads(gr_threads_get())
    for (int64_t k = 0; k < nq; k++) {
        if (!failed && build_one(&c, &q[k], &sm[k])) {
#pragma omp atomic write
            failed = 1;
        }
    }
    if (failed) {
        gr_errorf("sft: out of memory while building %lld samples", (long long)nq);
        goto fail;
    }
    out->n = nq;
    size_t n1 = nq > 0 ? (size_t)nq : 1;
    out->off = gr_alloc(n1 + 1, sizeof *out->off);
    out->prompt_len = gr_alloc(n1, sizeof *out->prompt_len);
    out->user = gr_alloc(n1, sizeof *out->user);
    out->target = gr_alloc(n1, sizeof *out->target);
    out->hist_used = gr_alloc(n1, sizeof *out->hist_used);
    if (!out->off || !out->prompt_len || !out->user || !out->target || !out->hist_used) goto fail;
    out->off[0] = 0;
    for (int64_t k = 0; k < nq; k++) out->off[k + 1] = out->off[k] + sm[k].n;
    size_t tot = out->off[nq] > 0 ? (size_t)out->off[nq] : 1;
    out->ids = gr_alloc(tot, sizeof *out->ids);
    out->mask = gr_alloc(tot, sizeof *out->mask);
    if (!out->ids || !out->mask) goto fail;
    for (int64_t k = 0; k < nq; k++) {
        int64_t o = out->off[k];
        if (sm[k].n) memcpy(out->ids + o, sm[k].ids, (size_t)sm[k].n * sizeof *out->ids);
        memset(out->mask + o, 0, (size_t)sm[k].prompt_len);
        memset(out->mask + o + sm[k].prompt_len, 1, (size_t)(sm[k].n - sm[k].prompt_len));
        out->prompt_len[k] = sm[k].prompt_len;
        out->user[k] = q[k].user;
        out->target[k] = q[k].target;
        out->hist_used[k] = sm[k].hist_used;
        out->n_shortened += sm[k].shortened;
        out->n_cut += sm[k].cut;
    }
    goto done;
fail:
    gr_sft_free(out);
    out = NULL;
done:
    if (sm)
        for (int64_t k = 0; k < nq; k++) gr_free(sm[k].ids);
    gr_free(sm);
    ctx_free(&c);
    return out;
}
