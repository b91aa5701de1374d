/* Byte-level BPE training.
 *
 * 1. Pre-tokenize the corpus with the GPT-2 splitter and count unique words.
 * 2. Each word is a sequence of token ids (initially its bytes, ids 0..255).
 * 3. Keep, for every adjacent pair, its frequency-weighted count and the list
 *    of words it occurs in; a max-heap of (count, pair) entries with lazy
 *    invalidation finds the best pair (ties: smaller left id, then smaller
 *    right id).
 * 4. Merging a pair only touches the words in its list: their old pairs are
 *    subtracted, the word is rewritten, the new pairs are added, and every
 *    pair whose count changed gets a fresh heap entry.
 */
#include "genrec/common.h"
#include "tok/tok_internal.h"
#include "tok/unicode.h"

#include <stdlib.h>
#include <string.h>

/* ---- small hash of byte strings -> int32 --------------------------------------------- */

typedef struct strtab { char **s; uint32_t *len; int32_t *val; uint32_t cap, n; } strtab;

static uint32_t hbytes(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static int32_t *strtab_slot(strtab *t, const char *s, size_t n, int create)
{
    if (create && (t->n + 1) * 2 > t->cap) {
        uint32_t cap = t->cap ? t->cap * 2 : 1024;
        strtab nt = {calloc(cap, sizeof(char *)), calloc(cap, sizeof(uint32_t)), calloc(cap, sizeof(int32_t)), cap, t->n};
        if (!nt.s || !nt.len || !nt.val) { free(nt.s); free(nt.len); free(nt.val); gr_errorf("bpe train: out of memory"); return NULL; }
        for (uint32_t i = 0; i < t->cap; i++) {
            if (!t->s[i]) continue;
            uint32_t h = hbytes(t->s[i], t->len[i]) & (cap - 1);
            while (nt.s[h]) h = (h + 1) & (cap - 1);
            nt.s[h] = t->s[i]; nt.len[h] = t->len[i]; nt.val[h] = t->val[i];
        }
        free(t->s); free(t->len); free(t->val);
        *t = nt;
    }
    if (!t->cap) return NULL;
    uint32_t h = hbytes(s, n) & (t->cap - 1);
    for (; t->s[h]; h = (h + 1) & (t->cap - 1))
        if (t->len[h] == n && !memcmp(t->s[h], s, n)) return &t->val[h];
    if (!create) return NULL;
    if (!(t->s[h] = gr_strndup(s, n))) return NULL;
    t->len[h] = (uint32_t)n;
    t->val[h] = -1;
    t->n++;
    return &t->val[h];
}

static void strtab_free(strtab *t)
{
    for (uint32_t i = 0; i < t->cap; i++) free(t->s[i]);
    free(t->s); free(t->len); free(t->val);
}

/* ---- pairs ------------------------------------------------------------------------------ */

typedef struct pairinfo { int32_t l, r; int64_t count; int32_t *where; int32_t n_where, cap_where; } pairinfo;

typedef struct trainer {
    pairinfo *p;                 /* pair table */
    int32_t n_p, cap_p;
    int32_t *ph; uint32_t ph_mask;
    struct hent { int64_t count; int32_t pair; } *heap;
    int64_t n_heap, cap_heap;
    int32_t *sym;                /* all words' symbols */
    int64_t *w_off; int32_t *w_len; int64_t *w_freq; int32_t *w_stamp;
    int32_t n_words;
} trainer;

static uint32_t hpair(int32_t l, int32_t r) { return ((uint32_t)l * 0x9E3779B1u) ^ ((uint32_t)r * 0x85EBCA77u); }

static int32_t pair_id(trainer *T, int32_t l, int32_t r)
{
    if ((uint32_t)(T->n_p + 1) * 2 > T->ph_mask + 1) {
        uint32_t cap = (T->ph_mask + 1) * 2;
        int32_t *ph = malloc(cap * sizeof(int32_t));
        if (!ph) return gr_errorf("bpe train: out of memory");
        memset(ph, 0xff, cap * sizeof(int32_t));
        for (int32_t i = 0; i < T->n_p; i++) {
            uint32_t h = hpair(T->p[i].l, T->p[i].r) & (cap - 1);
            while (ph[h] >= 0) h = (h + 1) & (cap - 1);
            ph[h] = i;
        }
        free(T->ph);
        T->ph = ph;
        T->ph_mask = cap - 1;
    }
    uint32_t h = hpair(l, r) & T->ph_mask;
    for (; T->ph[h] >= 0; h = (h + 1) & T->ph_mask)
        if (T->p[T->ph[h]].l == l && T->p[T->ph[h]].r == r) return T->ph[h];
    if (T->n_p == T->cap_p) {
        int32_t cap = T->cap_p ? T->cap_p * 2 : 4096;
        pairinfo *np = realloc(T->p, (size_t)cap * sizeof *np);
        if (!np) return gr_errorf("bpe train: out of memory");
        T->p = np;
        T->cap_p = cap;
    }
    T->p[T->n_p] = (pairinfo){l, r, 0, NULL, 0, 0};
    T->ph[h] = T->n_p;
    return T->n_p++;
}

static int add_where(pairinfo *p, int32_t w)
{
    if (p->n_where && p->where[p->n_where - 1] == w) return GR_OK;
    if (p->n_where == p->cap_where) {
        int32_t cap = p->cap_where ? p->cap_where * 2 : 4;
        int32_t *nw = realloc(p->where, (size_t)cap * sizeof *nw);
        if (!nw) return gr_errorf("bpe train: out of memory");
        p->where = nw;
        p->cap_where = cap;
    }
    p->where[p->n_where++] = w;
    return GR_OK;
}

static int heap_before(const trainer *T, const struct hent *a, const struct hent *b)
{
    if (a->count != b->count) return a->count > b->count;
    const pairinfo *x = &T->p[a->pair], *y = &T->p[b->pair];
    return x->l != y->l ? x->l < y->l : x->r < y->r;
}

static int heap_push(trainer *T, int32_t pair)
{
    if (T->p[pair].count <= 0) return GR_OK;
    if (T->n_heap == T->cap_heap) {
        int64_t cap = T->cap_heap ? T->cap_heap * 2 : 4096;
        struct hent *nh = realloc(T->heap, (size_t)cap * sizeof *nh);
        if (!nh) return gr_errorf("bpe train: out of memory");
        T->heap = nh;
        T->cap_heap = cap;
    }
    struct hent e = {T->p[pair].count, pair};
    int64_t i = T->n_heap++;
    while (i > 0 && heap_before(T, &e, &T->heap[(i - 1) / 2])) { T->heap[i] = T->heap[(i - 1) / 2]; i = (i - 1) / 2; }
    T->heap[i] = e;
    return GR_OK;
}

static struct hent heap_pop(trainer *T)
{
    struct hent top = T->heap[0], last = T->heap[--T->n_heap];
    int64_t i = 0;
    for (;;) {
        int64_t l = 2 * i + 1, b = i;
        const struct hent *bv = &last;
        if (l < T->n_heap && heap_before(T, &T->heap[l], bv)) { b = l; bv = &T->heap[l]; }
        if (l + 1 < T->n_heap && heap_before(T, &T->heap[l + 1], bv)) b = l + 1;
        if (b == i) break;
        T->heap[i] = T->heap[b];
        i = b;
    }
    if (T->n_heap) T->heap[i] = last;
    return top;
}

/* Add `sign * freq` for every adjacent pair of word w; record touched pairs. */
static int count_word(trainer *T, int32_t w, int sign, int32_t only_with, int32_t **touched, int64_t *n_t, int64_t *cap_t)
{
    const int32_t *s = T->sym + T->w_off[w];
    for (int32_t i = 0; i + 1 < T->w_len[w]; i++) {
        int32_t id = pair_id(T, s[i], s[i + 1]);
        if (id < 0) return GR_ERR;
        T->p[id].count += sign * T->w_freq[w];
        if (sign > 0 && (only_with < 0 || s[i] == only_with || s[i + 1] == only_with) && add_where(&T->p[id], w)) return GR_ERR;
        if (touched) {
            if (*n_t == *cap_t) {
                int64_t cap = *cap_t ? *cap_t * 2 : 256;
                int32_t *nt = realloc(*touched, (size_t)cap * sizeof *nt);
                if (!nt) return gr_errorf("bpe train: out of memory");
                *touched = nt;
                *cap_t = cap;
            }
            (*touched)[(*n_t)++] = id;
        }
    }
    return GR_OK;
}

static void trainer_free(trainer *T)
{
    for (int32_t i = 0; i < T->n_p; i++) free(T->p[i].where);
    free(T->p); free(T->ph); free(T->heap); free(T->sym);
    free(T->w_off); free(T->w_len); free(T->w_freq); free(T->w_stamp);
}

gr_tokenizer *gr_bpe_train(const char *text, size_t len, const gr_bpe_train_opts *opts)
{
    int n_special = opts->n_specials > 0 ? opts->n_specials : 0;
    int64_t min_freq = opts->min_frequency > 0 ? opts->min_frequency : 2;
    if (opts->vocab_size < 256 + n_special || opts->vocab_size > (1 << 24)) {
        gr_errorf("bpe train: vocab_size %d must be in [256 + %d specials, 2^24]", opts->vocab_size, n_special);
        return NULL;
    }
    int32_t max_merges = opts->vocab_size - 256 - n_special;
    gr_tokenizer *tok = NULL;
    trainer T = {0};
    strtab words = {0}, texts = {0};
    char **tok_text = NULL;
    uint32_t *tok_len = NULL;
    int32_t *m_l = NULL, *m_r = NULL, *m_res = NULL, *touched = NULL;
    int64_t n_touched = 0, cap_touched = 0;
    int32_t n_tok = 256, n_merges = 0;

    /* 1. count words */
    size_t np;
    size_t *ends = gr_pretok_gpt2(text, len, &np);
    if (!ends) return NULL;
    int64_t total_syms = 0;
    for (size_t i = 0, start = 0; i < np; start = ends[i], i++) {
        int32_t *v = strtab_slot(&words, text + start, ends[i] - start, 1);
        if (!v) goto done;
        if (*v < 0) { *v = (int32_t)words.n - 1; total_syms += (int64_t)(ends[i] - start); }
    }
    T.n_words = (int32_t)words.n;
    T.sym = malloc((size_t)(total_syms ? total_syms : 1) * sizeof(int32_t));
    T.w_off = malloc(((size_t)T.n_words + 1) * sizeof(int64_t));
    T.w_len = calloc((size_t)T.n_words + 1, sizeof(int32_t));
    T.w_freq = calloc((size_t)T.n_words + 1, sizeof(int64_t));
    T.w_stamp = malloc(((size_t)T.n_words + 1) * sizeof(int32_t));
    T.ph = malloc(1024 * sizeof(int32_t));
    tok_text = calloc((size_t)opts->vocab_size, sizeof(char *));
    tok_len = calloc((size_t)opts->vocab_size, sizeof(uint32_t));
    m_l = malloc((size_t)(max_merges + 1) * sizeof(int32_t));
    m_r = malloc((size_t)(max_merges + 1) * sizeof(int32_t));
    m_res = malloc((size_t)(max_merges + 1) * sizeof(int32_t));
    if (!T.sym || !T.w_off || !T.w_len || !T.w_freq || !T.w_stamp || !T.ph || !tok_text || !tok_len || !m_l || !m_r || !m_res) {
        gr_errorf("bpe train: out of memory");
        goto done;
    }
    memset(T.ph, 0xff, 1024 * sizeof(int32_t));
    T.ph_mask = 1023;
    for (size_t i = 0, start = 0; i < np; start = ends[i], i++)
        T.w_freq[*strtab_slot(&words, text + start, ends[i] - start, 0)]++;
    for (uint32_t h = 0; h < words.cap; h++)
        if (words.s[h]) { T.w_len[words.val[h]] = (int32_t)words.len[h]; T.w_stamp[words.val[h]] = -1; }
    int64_t off = 0;
    for (int32_t w = 0; w < T.n_words; off += T.w_len[w], w++) T.w_off[w] = off;
    for (uint32_t h = 0; h < words.cap; h++)
        for (uint32_t k = 0; words.s[h] && k < words.len[h]; k++)
            T.sym[T.w_off[words.val[h]] + k] = (unsigned char)words.s[h][k];
    strtab_free(&words);
    memset(&words, 0, sizeof words);
    /* byte tokens */
    for (int b = 0; b < 256; b++) {
        char buf[4];
        size_t n = gr_utf8_encode(tok_byte_to_cp((unsigned char)b), buf);
        if (!(tok_text[b] = gr_strndup(buf, n))) goto done;
        tok_len[b] = (uint32_t)n;
        int32_t *v = strtab_slot(&texts, buf, n, 1);
        if (!v) goto done;
        *v = b;
    }
    /* 2. initial pair counts */
    for (int32_t w = 0; w < T.n_words; w++)
        if (count_word(&T, w, +1, -1, NULL, NULL, NULL)) goto done;
    for (int32_t i = 0; i < T.n_p; i++)
        if (heap_push(&T, i)) goto done;

    /* 3. merge loop */
    while (n_merges < max_merges && T.n_heap) {
        struct hent e = heap_pop(&T);
        pairinfo *bp = &T.p[e.pair];
        if (e.count != bp->count) continue; /* stale entry */
        if (bp->count < min_freq) break;
        int32_t l = bp->l, r = bp->r;
        /* the merged token (reuse an existing token with the same text) */
        size_t nl = tok_len[l] + tok_len[r];
        char *s = malloc(nl + 1);
        if (!s) { gr_errorf("bpe train: out of memory"); goto done; }
        memcpy(s, tok_text[l], tok_len[l]);
        memcpy(s + tok_len[l], tok_text[r], tok_len[r]);
        int32_t *v = strtab_slot(&texts, s, nl, 1);
        if (!v) { free(s); goto done; }
        if (*v < 0) {
            *v = n_tok;
            tok_text[n_tok] = s;
            tok_len[n_tok] = (uint32_t)nl;
            n_tok++;
        } else {
            free(s);
        }
        int32_t res = *v;
        m_l[n_merges] = l;
        m_r[n_merges] = r;
        m_res[n_merges] = res;
        /* rewrite affected words */
        n_touched = 0;
        int32_t n_where = bp->n_where;
        int32_t *where = bp->where;
        bp->where = NULL;
        bp->n_where = bp->cap_where = 0;
        for (int32_t k = 0; k < n_where; k++) {
            int32_t w = where[k];
            if (T.w_stamp[w] == n_merges) continue;
            T.w_stamp[w] = n_merges;
            int32_t *sy = T.sym + T.w_off[w];
            int found = 0;
            for (int32_t i = 0; i + 1 < T.w_len[w]; i++)
                if (sy[i] == l && sy[i + 1] == r) { found = 1; break; }
            if (!found) continue;
            if (count_word(&T, w, -1, -1, &touched, &n_touched, &cap_touched)) { free(where); goto done; }
            int32_t o = 0;
            for (int32_t i = 0; i < T.w_len[w]; i++) {
                if (i + 1 < T.w_len[w] && sy[i] == l && sy[i + 1] == r) { sy[o++] = res; i++; }
                else sy[o++] = sy[i];
            }
            T.w_len[w] = o;
            if (count_word(&T, w, +1, res, &touched, &n_touched, &cap_touched)) { free(where); goto done; }
        }
        free(where);
        n_merges++;
        for (int64_t i = 0; i < n_touched; i++)
            if (heap_push(&T, touched[i])) goto done;
        if (n_tok + n_special >= opts->vocab_size) break;
    }

    /* 4. the tokenizer */
    if (!(tok = tok_new(GR_TOK_BPE, n_tok + n_special))) goto done;
    for (int32_t i = 0; i < n_tok; i++)
        if (tok_set(tok, i, tok_text[i], tok_len[i], 0.0f, GR_TOKEN_NORMAL)) goto fail;
    for (int i = 0; i < n_special; i++)
        if (tok_set(tok, n_tok + i, opts->specials[i], strlen(opts->specials[i]), 0.0f, GR_TOKEN_CONTROL)) goto fail;
    if (tok_index(tok)) goto fail;
    for (int32_t k = 0; k < n_merges; k++)
        if (tok_add_merge_ids(tok, m_l[k], m_r[k], m_res[k])) goto fail;
    if (n_special) tok->bos = tok->eos = n_tok;
    goto done;
fail:
    gr_tokenizer_free(tok);
    tok = NULL;
done:
    free(ends);
    strtab_free(&words);
    strtab_free(&texts);
    if (tok_text)
        for (int32_t i = 0; i < opts->vocab_size; i++) free(tok_text[i]);
    free(tok_text);
    free(tok_len);
    free(m_l); free(m_r); free(m_res); free(touched);
    trainer_free(&T);
    return tok;
}
