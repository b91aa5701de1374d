/* Text data for language-model training (genrec/lm_train.h): documents ->
 * token stream -> train/valid split -> packed B x T batches. */
#include "genrec/lm_train.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void gr_lm_data_free(gr_lm_data *d)
{
    if (!d) return;
    gr_free(d->tokens);
    memset(d, 0, sizeof *d);
    d->sep = -1;
}

typedef struct span { size_t a, b; } span;

/* Document spans of text (non-empty, trailing newlines dropped). */
static span *find_docs(const char *s, size_t len, gr_lm_docs docs, int64_t *n_out)
{
    int64_t cap = 16, n = 0;
    span *v = gr_alloc((size_t)cap, sizeof *v);
    if (!v) return NULL;
    size_t i = 0;
    while (i < len) {
        size_t a = i, b;
        if (docs == GR_LM_DOCS_NONE) {
            b = len;
            i = len;
        } else if (docs == GR_LM_DOCS_LINE) {
            const char *nl = memchr(s + i, '\n', len - i);
            b = nl ? (size_t)(nl - s) : len;
            i = b + 1;
        } else { /* paragraph: up to a "\n\n" (a line with nothing on it) */
            b = i;
            while (b < len && !(s[b] == '\n' && b + 1 < len && (s[b + 1] == '\n' || (s[b + 1] == '\r' && b + 2 < len && s[b + 2] == '\n'))))
                b++;
            i = b + 1;
        }
        while (b > a && (s[b - 1] == '\n' || s[b - 1] == '\r')) b--;
        while (a < b && (s[a] == '\n' || s[a] == '\r')) a++;
        if (b == a) continue;
        if (n == cap) {
            span *nv = gr_realloc(v, (size_t)cap * 2, sizeof *v);
            if (!nv) { gr_free(v); return NULL; }
            v = nv;
            cap *= 2;
        }
        v[n].a = a;
        v[n].b = b;
        n++;
    }
    *n_out = n;
    return v;
}

int gr_lm_data_from_text(gr_lm_data *d, const char *text, size_t len, const gr_tokenizer *tok,
                         gr_lm_docs docs, double valid_frac)
{
    memset(d, 0, sizeof *d);
    d->sep = -1;
    if (!tok) return gr_errorf("language-model data: no tokenizer");
    if (!(valid_frac >= 0.0 && valid_frac <= 0.5))
        return gr_errorf("language-model data: valid fraction %g must be in [0, 0.5]", valid_frac);
    if ((unsigned)docs > GR_LM_DOCS_NONE) return gr_errorf("language-model data: bad document mode %d", (int)docs);
    int32_t sep = gr_tokenizer_eos(tok);
    if (sep < 0) sep = gr_tokenizer_bos(tok);
    int64_t nd;
    span *sp = find_docs(text, len, docs, &nd);
    if (!sp) return gr_error_prefix("language-model data: ");
    int32_t **ids = gr_calloc((size_t)(nd > 0 ? nd : 1), sizeof *ids);
    int64_t *cnt = gr_calloc((size_t)(nd > 0 ? nd : 1), sizeof *cnt);
    int failed = !ids || !cnt;
    char err[512] = "";
    if (!failed) {
#pragma omp parallel for schedule(dynamic, 1)
        for (int64_t k = 0; k < nd; k++) {
            int64_t c;
            int32_t *x = gr_tokenizer_encode(tok, text + sp[k].a, sp[k].b - sp[k].a, 0, &c);
            if (!x) {
#pragma omp critical
                {
                    failed = 1;
                    snprintf(err, sizeof err, "%s", gr_error_message());
                }
            }
            ids[k] = x;
            cnt[k] = x ? c : 0;
        }
    }
    int64_t total = 0;
    for (int64_t k = 0; !failed && k < nd; k++) total += cnt[k] + (sep >= 0);
    int32_t *stream = failed ? NULL : gr_alloc((size_t)(total > 0 ? total : 1), sizeof(int32_t));
    if (!failed && stream) {
        int64_t o = 0;
        for (int64_t k = 0; k < nd; k++) {
            if (sep >= 0) stream[o++] = sep;
            memcpy(stream + o, ids[k], sizeof(int32_t) * (size_t)cnt[k]);
            o += cnt[k];
        }
    }
    for (int64_t k = 0; ids && k < nd; k++) gr_free(ids[k]);
    gr_free(ids);
    gr_free(cnt);
    gr_free(sp);
    if (!stream) {
        if (err[0]) return gr_errorf("language-model data: tokenizing: %s", err);
        return gr_error_prefix("language-model data: ");
    }
    int64_t n_valid = (int64_t)(valid_frac * (double)total + 0.5), cut = total - n_valid;
    if (n_valid > 0 && sep >= 0) {
        /* move the cut to a document start within n_valid/2 tokens */
        int64_t best = -1, slack = n_valid / 2;
        for (int64_t i = cut; i < total && i <= cut + slack && best < 0; i++)
            if (stream[i] == sep) best = i;
        for (int64_t i = cut - 1; i > 0 && i >= cut - slack && best < 0; i--)
            if (stream[i] == sep) best = i;
        if (best > 0) cut = best;
    }
    d->tokens = stream;
    d->n_tokens = total;
    d->n_train = cut;
    d->n_docs = nd;
    d->sep = sep;
    return GR_OK;
}

gr_tokenizer *gr_lm_train_tokenizer(const char *text, size_t len, int32_t vocab_size)
{
    if (vocab_size < 257) {
        gr_errorf("BPE training: vocabulary size %d must be >= 257 (256 bytes + <|endoftext|>)", (int)vocab_size);
        return NULL;
    }
    static const char *const specials[1] = {"<|endoftext|>"};
    gr_bpe_train_opts o = {vocab_size, 2, specials, 1};
    return gr_bpe_train(text, len, &o);
}

/* ---- loader ----------------------------------------------------------------------------- */

void gr_lm_loader_free(gr_lm_loader *L)
{
    if (!L) return;
    gr_free(L->perm);
    gr_free(L->tok);
    gr_free(L->tgt);
    gr_free(L->seq_off);
    memset(L, 0, sizeof *L);
}

int gr_lm_loader_init(gr_lm_loader *L, const int32_t *tokens, int64_t n, int B, int T, int32_t sep,
                      int shuffle, uint64_t seed)
{
    memset(L, 0, sizeof *L);
    if (B < 1 || T < 1) return gr_errorf("language-model batches: B (%d) and T (%d) must be >= 1", B, T);
    if ((int64_t)B * T > INT32_MAX / 2) return gr_errorf("language-model batches: B*T = %lld is too large", (long long)B * T);
    if (n < (int64_t)T + 1)
        return gr_errorf("language-model batches: %lld tokens are too few for one window of %d + 1 tokens "
                         "(use more text or a smaller context)", (long long)n, T);
    L->tokens = tokens;
    L->n = n;
    L->B = B;
    L->T = T;
    L->sep = sep;
    L->shuffle = shuffle;
    L->seed = seed;
    L->n_windows = (n - 1) / T;
    if (L->n_windows > INT32_MAX) return gr_errorf("language-model batches: too many windows");
    L->perm_epoch = -1;
    size_t N = (size_t)B * (size_t)T;
    L->tok = gr_alloc(N, sizeof(int32_t));
    L->tgt = gr_alloc(N, sizeof(int32_t));
    L->seq_off = gr_alloc(N + 1, sizeof(int32_t));
    if (shuffle) L->perm = gr_alloc((size_t)L->n_windows, sizeof(int32_t));
    if (!L->tok || !L->tgt || !L->seq_off || (shuffle && !L->perm)) {
        gr_lm_loader_free(L);
        return gr_error_prefix("language-model batches: ");
    }
    return GR_OK;
}

int gr_lm_loader_seek(gr_lm_loader *L, int64_t epoch, int64_t index)
{
    if (epoch < 0 || index < 0 || index >= L->n_windows)
        return gr_errorf("language-model batches: cursor (epoch %lld, window %lld) outside [0, %lld)",
                         (long long)epoch, (long long)index, (long long)L->n_windows);
    L->epoch = epoch;
    L->index = index;
    return GR_OK;
}

static int64_t window_at(gr_lm_loader *L)
{
    if (!L->shuffle) return L->index;
    if (L->perm_epoch != L->epoch) {
        for (int64_t i = 0; i < L->n_windows; i++) L->perm[i] = (int32_t)i;
        gr_rng r;
        gr_rng_seed(&r, L->seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(L->epoch + 1)));
        gr_rng_shuffle_i32(&r, L->perm, L->n_windows);
        L->perm_epoch = L->epoch;
    }
    return L->perm[L->index];
}

int gr_lm_loader_next(gr_lm_loader *L, int max_windows, const gr_lm_batch **out)
{
    int nw = L->B;
    if (max_windows > 0) {
        if (L->index >= L->n_windows) { *out = NULL; return GR_OK; }
        int64_t left = L->n_windows - L->index;
        if (max_windows < nw) nw = max_windows;
        if (left < nw) nw = (int)left;
    }
    const int T = L->T;
    int n_seq = 0;
    for (int b = 0; b < nw; b++) {
        int64_t w = window_at(L);
        const int32_t *src = L->tokens + w * T;
        int32_t *tk = L->tok + (int64_t)b * T, *tg = L->tgt + (int64_t)b * T;
        memcpy(tk, src, sizeof(int32_t) * (size_t)T);
        memcpy(tg, src + 1, sizeof(int32_t) * (size_t)T);
        L->seq_off[n_seq++] = b * T;
        if (L->sep >= 0)
            for (int i = 1; i < T; i++)
                if (tk[i] == L->sep) L->seq_off[n_seq++] = b * T + i;
        if (++L->index == L->n_windows && max_windows <= 0) {
            L->index = 0;
            L->epoch++;
        }
    }
    L->seq_off[n_seq] = nw * T;
    L->batch.tokens = L->tok;
    L->batch.targets = L->tgt;
    L->batch.pos = NULL;
    L->batch.seq_off = L->seq_off;
    L->batch.n_seq = n_seq;
    L->batch.N = nw * T;
    *out = &L->batch;
    return GR_OK;
}
