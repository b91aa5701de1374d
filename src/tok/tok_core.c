/* The gr_tokenizer object: vocabulary storage and lookup, merge table,
 * decoded pieces, encode/decode entry points, GGUF export. */
#include "tok/tok_internal.h"
#include "tok/unicode.h"
#include "genrec/common.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tok_chunk { struct tok_chunk *next; size_t used, cap; _Alignas(16) unsigned char data[]; };

static void *tok_arena(gr_tokenizer *t, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    if (!t->chunks || t->chunks->cap - t->chunks->used < n) {
        size_t cap = t->chunks ? t->chunks->cap * 2 : 16384; /* grow geometrically */
        if (cap > ((size_t)4 << 20)) cap = (size_t)4 << 20;
        if (cap < n) cap = n;
        tok_chunk *c = malloc(sizeof(tok_chunk) + cap);
        if (!c) { gr_errorf("tokenizer: out of memory"); return NULL; }
        c->next = t->chunks;
        c->used = 0;
        c->cap = cap;
        t->chunks = c;
    }
    void *p = t->chunks->data + t->chunks->used;
    t->chunks->used += n;
    return p;
}

static uint32_t hash_bytes(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

int tok_ids_push(tok_ids *o, int32_t id)
{
    if (o->n == o->cap) {
        int64_t cap = o->cap ? 2 * o->cap : 64;
        int32_t *nv = realloc(o->v, (size_t)cap * sizeof *nv);
        if (!nv) return gr_errorf("tokenizer: out of memory");
        o->v = nv;
        o->cap = cap;
    }
    o->v[o->n++] = id;
    return GR_OK;
}

/* ---- heap ------------------------------------------------------------------------------ */

static int cand_before(const tok_cand *a, const tok_cand *b)
{
    return a->prio > b->prio || (a->prio == b->prio && a->left < b->left);
}

int tok_heap_push(tok_heap *h, tok_cand c)
{
    if (h->n == h->cap) {
        int64_t cap = h->cap ? 2 * h->cap : 64;
        tok_cand *nv = realloc(h->v, (size_t)cap * sizeof *nv);
        if (!nv) return gr_errorf("tokenizer: out of memory");
        h->v = nv;
        h->cap = cap;
    }
    int64_t i = h->n++;
    while (i > 0) {
        int64_t p = (i - 1) / 2;
        if (!cand_before(&c, &h->v[p])) break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = c;
    return GR_OK;
}

tok_cand tok_heap_pop(tok_heap *h)
{
    tok_cand top = h->v[0], last = h->v[--h->n];
    int64_t i = 0;
    for (;;) {
        int64_t l = 2 * i + 1, best = i;
        const tok_cand *bv = &last;
        if (l < h->n && cand_before(&h->v[l], bv)) { best = l; bv = &h->v[l]; }
        if (l + 1 < h->n && cand_before(&h->v[l + 1], bv)) best = l + 1;
        if (best == i) break;
        h->v[i] = h->v[best];
        i = best;
    }
    if (h->n) h->v[i] = last;
    return top;
}

/* ---- GPT-2 byte alphabet ------------------------------------------------------------------ */

static int printable_byte(unsigned b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE); }

uint32_t tok_byte_to_cp(unsigned char b)
{
    if (printable_byte(b)) return b;
    uint32_t n = 0;
    for (unsigned x = 0; x < b; x++) n += !printable_byte(x);
    return 256 + n;
}

int tok_cp_to_byte(uint32_t cp)
{
    if (cp < 256) return printable_byte(cp) ? (int)cp : -1;
    if (cp >= 256 + 68) return -1; /* 68 non-printable bytes */
    uint32_t n = cp - 256;
    for (unsigned x = 0; x < 256; x++)
        if (!printable_byte(x) && n-- == 0) return (int)x;
    return -1;
}

/* ---- building ------------------------------------------------------------------------------- */

gr_tokenizer *tok_new(gr_tok_kind kind, int32_t n_vocab)
{
    if (n_vocab <= 0 || n_vocab > (1 << 26)) { gr_errorf("tokenizer: bad vocabulary size %d", n_vocab); return NULL; }
    gr_tokenizer *t = calloc(1, sizeof *t);
    if (!t) { gr_errorf("tokenizer: out of memory"); return NULL; }
    t->kind = kind;
    t->n_vocab = n_vocab;
    t->bos = t->eos = t->unk = t->pad = -1;
    t->add_bos = kind == GR_TOK_SPM;
    t->add_space_prefix = kind == GR_TOK_SPM;
    snprintf(t->pre, sizeof t->pre, "%s", kind == GR_TOK_BPE ? "gpt-2" : "default");
    size_t n = (size_t)n_vocab;
    t->text = calloc(n, sizeof *t->text);
    t->text_len = calloc(n, sizeof *t->text_len);
    t->piece = calloc(n, sizeof *t->piece);
    t->piece_len = calloc(n, sizeof *t->piece_len);
    t->scores = calloc(n, sizeof *t->scores);
    t->types = calloc(n, sizeof *t->types);
    if (!t->text || !t->text_len || !t->piece || !t->piece_len || !t->scores || !t->types) {
        gr_tokenizer_free(t);
        gr_errorf("tokenizer: out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) t->types[i] = GR_TOKEN_NORMAL;
    for (int i = 0; i < 256; i++) t->byte_tok[i] = -1;
    return t;
}

int tok_set(gr_tokenizer *t, int32_t id, const char *s, size_t len, float score, int32_t type)
{
    if (id < 0 || id >= t->n_vocab) return gr_errorf("tokenizer: token id %d out of range", id);
    if (len > (1u << 20)) return gr_errorf("tokenizer: token %d is %zu bytes long", id, len);
    char *c = tok_arena(t, len + 1);
    if (!c) return GR_ERR;
    memcpy(c, s, len);
    c[len] = '\0';
    t->text[id] = c;
    t->text_len[id] = (uint32_t)len;
    t->scores[id] = score;
    t->types[id] = type;
    return GR_OK;
}

int32_t gr_tokenizer_find(const gr_tokenizer *t, const char *s, size_t len)
{
    if (!t->vh) return -1;
    for (uint32_t h = hash_bytes(s, len) & t->vh_mask;; h = (h + 1) & t->vh_mask) {
        int32_t id = t->vh[h];
        if (id < 0) return -1;
        if (t->text_len[id] == len && !memcmp(t->text[id], s, len)) return id;
    }
}

static int parse_byte_token(const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    if (n != 6 || memcmp(s, "<0x", 3) || s[5] != '>') return -1;
    const char *a = strchr(hex, s[3]), *b = strchr(hex, s[4]);
    if (!a || !b || !s[3] || !s[4]) return -1;
    return (int)((a - hex) * 16 + (b - hex));
}

static int make_piece(gr_tokenizer *t, int32_t id)
{
    const char *s = t->text[id];
    size_t n = t->text_len[id];
    int type = t->types[id];
    t->piece[id] = t->text[id];
    t->piece_len[id] = (uint32_t)n;
    if (type == GR_TOKEN_CONTROL) return GR_OK;
    if (t->kind == GR_TOK_SPM) {
        int b = parse_byte_token(s, n);
        if (b >= 0 && (type == GR_TOKEN_BYTE || type == GR_TOKEN_NORMAL)) {
            char *p = tok_arena(t, 2);
            if (!p) return GR_ERR;
            p[0] = (char)b;
            p[1] = '\0';
            t->piece[id] = p;
            t->piece_len[id] = 1;
            return GR_OK;
        }
        if (!strstr(s, "\xE2\x96\x81")) return GR_OK;
        char *p = tok_arena(t, n + 1);
        if (!p) return GR_ERR;
        size_t k = 0;
        for (size_t i = 0; i < n;) {
            if (i + 3 <= n && !memcmp(s + i, "\xE2\x96\x81", 3)) { p[k++] = ' '; i += 3; }
            else p[k++] = s[i++];
        }
        p[k] = '\0';
        t->piece[id] = p;
        t->piece_len[id] = (uint32_t)k;
        return GR_OK;
    }
    /* byte-level: map every char back through the alphabet, else keep the text */
    char *p = tok_arena(t, n + 1);
    if (!p) return GR_ERR;
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        i += gr_utf8_decode((const unsigned char *)s + i, n - i, &cp);
        int b = cp == GR_UTF8_INVALID ? -1 : tok_cp_to_byte(cp);
        if (b < 0) return GR_OK; /* not in the alphabet (an added token): text as is */
        p[k++] = (char)b;
    }
    p[k] = '\0';
    t->piece[id] = p;
    t->piece_len[id] = (uint32_t)k;
    return GR_OK;
}

int tok_index(gr_tokenizer *t)
{
    uint32_t cap = 16;
    while (cap < (uint32_t)t->n_vocab * 2u) cap <<= 1;
    free(t->vh);
    t->vh = malloc(cap * sizeof(int32_t));
    if (!t->vh) return gr_errorf("tokenizer: out of memory");
    memset(t->vh, 0xff, cap * sizeof(int32_t));
    t->vh_mask = cap - 1;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        if (!t->text[id]) {
            if (tok_set(t, id, "", 0, 0.0f, GR_TOKEN_UNUSED)) return GR_ERR;
        }
        if (gr_tokenizer_find(t, t->text[id], t->text_len[id]) < 0) { /* first one wins */
            uint32_t h = hash_bytes(t->text[id], t->text_len[id]) & t->vh_mask;
            while (t->vh[h] >= 0) h = (h + 1) & t->vh_mask;
            t->vh[h] = id;
        }
        if (make_piece(t, id)) return GR_ERR;
    }
    /* SPM: ASCII bytes that occur in no token longer than one byte can never
     * take part in a merge, so encoding may split the text at them */
    memset(t->barrier, 1, sizeof t->barrier);
    for (int32_t id = 0; id < t->n_vocab; id++)
        for (uint32_t i = 0; t->text_len[id] > 1 && i < t->text_len[id]; i++) {
            unsigned char c = (unsigned char)t->text[id][i];
            if (c < 128) t->barrier[c] = 0;
        }
    for (int b = 0; b < 256; b++) {
        char buf[8];
        size_t n;
        if (t->kind == GR_TOK_BPE) {
            n = gr_utf8_encode(tok_byte_to_cp((unsigned char)b), buf);
            t->byte_tok[b] = gr_tokenizer_find(t, buf, n);
        } else {
            n = (size_t)snprintf(buf, sizeof buf, "<0x%02X>", b);
            t->byte_tok[b] = gr_tokenizer_find(t, buf, n);
            if (t->byte_tok[b] < 0) { buf[0] = (char)b; t->byte_tok[b] = gr_tokenizer_find(t, buf, 1); }
        }
    }
    return GR_OK;
}

static uint32_t hash_pair(int32_t l, int32_t r)
{
    uint64_t x = ((uint64_t)(uint32_t)l << 32) | (uint32_t)r;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return (uint32_t)x;
}

int32_t tok_merge_rank(const gr_tokenizer *t, int32_t l, int32_t r)
{
    if (!t->mh) return -1;
    for (uint32_t h = hash_pair(l, r) & t->mh_mask;; h = (h + 1) & t->mh_mask) {
        int32_t k = t->mh[h];
        if (k < 0) return -1;
        if (t->m_left[k] == l && t->m_right[k] == r) return k;
    }
}

static int merge_rehash(gr_tokenizer *t, uint32_t cap)
{
    int32_t *mh = malloc(cap * sizeof(int32_t));
    if (!mh) return gr_errorf("tokenizer: out of memory");
    memset(mh, 0xff, cap * sizeof(int32_t));
    for (int64_t k = 0; k < t->n_merges; k++) {
        uint32_t h = hash_pair(t->m_left[k], t->m_right[k]) & (cap - 1);
        while (mh[h] >= 0) h = (h + 1) & (cap - 1);
        mh[h] = (int32_t)k;
    }
    free(t->mh);
    t->mh = mh;
    t->mh_mask = cap - 1;
    return GR_OK;
}

int tok_add_merge_ids(gr_tokenizer *t, int32_t l, int32_t r, int32_t result)
{
    if (tok_merge_rank(t, l, r) >= 0) return GR_OK; /* duplicate rule: the first (best) rank stays */
    if (t->n_merges == t->cap_merges) {
        int64_t cap = t->cap_merges ? 2 * t->cap_merges : 1024;
        if (cap > INT32_MAX) return gr_errorf("tokenizer: too many merges");
        int32_t *a = realloc(t->m_left, (size_t)cap * sizeof(int32_t));
        if (a) t->m_left = a;
        int32_t *b = realloc(t->m_right, (size_t)cap * sizeof(int32_t));
        if (b) t->m_right = b;
        int32_t *c = realloc(t->m_result, (size_t)cap * sizeof(int32_t));
        if (c) t->m_result = c;
        if (!a || !b || !c) return gr_errorf("tokenizer: out of memory");
        t->cap_merges = cap;
    }
    if (!t->mh || (uint64_t)(t->n_merges + 1) * 2 > (uint64_t)t->mh_mask + 1) {
        uint32_t cap = t->mh ? (t->mh_mask + 1) * 2 : 2048;
        if (merge_rehash(t, cap)) return GR_ERR;
    }
    int64_t k = t->n_merges++;
    t->m_left[k] = l;
    t->m_right[k] = r;
    t->m_result[k] = result;
    uint32_t h = hash_pair(l, r) & t->mh_mask;
    while (t->mh[h] >= 0) h = (h + 1) & t->mh_mask;
    t->mh[h] = (int32_t)k;
    return GR_OK;
}

int tok_add_merge(gr_tokenizer *t, const char *l, size_t ll, const char *r, size_t rl, int *added)
{
    *added = 0;
    int32_t a = gr_tokenizer_find(t, l, ll), b = gr_tokenizer_find(t, r, rl);
    if (a < 0 || b < 0) return GR_OK;
    char small[256], *buf = small;
    if (ll + rl > sizeof small && !(buf = malloc(ll + rl))) return gr_errorf("tokenizer: out of memory");
    memcpy(buf, l, ll);
    memcpy(buf + ll, r, rl);
    int32_t c = gr_tokenizer_find(t, buf, ll + rl);
    if (buf != small) free(buf);
    if (c < 0) return GR_OK;
    *added = 1;
    return tok_add_merge_ids(t, a, b, c);
}

/* ---- public API -------------------------------------------------------------------------------- */

void gr_tokenizer_free(gr_tokenizer *t)
{
    if (!t) return;
    free(t->text);
    free(t->text_len);
    free(t->piece);
    free(t->piece_len);
    free(t->scores);
    free(t->types);
    free(t->vh);
    free(t->m_left);
    free(t->m_right);
    free(t->m_result);
    free(t->mh);
    for (tok_chunk *c = t->chunks, *n; c; c = n) { n = c->next; free(c); }
    free(t);
}

int32_t *gr_tokenizer_encode(const gr_tokenizer *t, const char *text, size_t len, int add_bos, int64_t *n_ids)
{
    tok_ids o = {0};
    *n_ids = 0;
    int rc = GR_OK;
    if (add_bos && t->bos >= 0) rc = tok_ids_push(&o, t->bos);
    if (rc == GR_OK && len) rc = t->kind == GR_TOK_BPE ? tok_bpe_encode(t, text, len, &o) : tok_spm_encode(t, text, len, &o);
    if (rc == GR_OK && !o.v && !(o.v = malloc(sizeof(int32_t)))) rc = gr_errorf("tokenizer: out of memory");
    if (rc != GR_OK) { free(o.v); return NULL; }
    *n_ids = o.n;
    return o.v;
}

const char *gr_tokenizer_piece(const gr_tokenizer *t, int32_t id, size_t *len)
{
    if (id < 0 || id >= t->n_vocab) { if (len) *len = 0; return NULL; }
    if (len) *len = t->piece_len[id];
    return t->piece[id];
}

char *gr_tokenizer_decode(const gr_tokenizer *t, const int32_t *ids, int64_t n, size_t *len)
{
    size_t total = 0;
    for (int64_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_vocab) { gr_errorf("tokenizer: decode: id %d at position %" PRId64 " is out of range", ids[i], i); return NULL; }
        total += t->piece_len[ids[i]];
    }
    char *out = malloc(total + 1);
    if (!out) { gr_errorf("tokenizer: out of memory"); return NULL; }
    size_t k = 0;
    int first = 1;
    for (int64_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (t->types[id] == GR_TOKEN_CONTROL) continue;
        const char *p = t->piece[id];
        size_t pl = t->piece_len[id];
        if (first && t->kind == GR_TOK_SPM && t->add_space_prefix && pl && p[0] == ' ') { p++; pl--; }
        first = 0;
        memcpy(out + k, p, pl);
        k += pl;
    }
    out[k] = '\0';
    if (len) *len = k;
    return out;
}

gr_tok_kind gr_tokenizer_kind(const gr_tokenizer *t) { return t->kind; }
int32_t gr_tokenizer_n_vocab(const gr_tokenizer *t) { return t->n_vocab; }
const char *gr_tokenizer_token(const gr_tokenizer *t, int32_t id) { return id >= 0 && id < t->n_vocab ? t->text[id] : NULL; }
float gr_tokenizer_score(const gr_tokenizer *t, int32_t id) { return id >= 0 && id < t->n_vocab ? t->scores[id] : 0.0f; }
int gr_tokenizer_token_type(const gr_tokenizer *t, int32_t id) { return id >= 0 && id < t->n_vocab ? t->types[id] : 0; }
int32_t gr_tokenizer_bos(const gr_tokenizer *t) { return t->bos; }
int32_t gr_tokenizer_eos(const gr_tokenizer *t) { return t->eos; }
int gr_tokenizer_wants_bos(const gr_tokenizer *t) { return t->add_bos && t->bos >= 0; }
int gr_tokenizer_wants_eos(const gr_tokenizer *t) { return t->add_eos && t->eos >= 0; }
int64_t gr_tokenizer_n_merges(const gr_tokenizer *t) { return t->n_merges; }

int gr_tokenizer_to_gguf(const gr_tokenizer *t, gr_gguf_builder *b)
{
    int spm = t->kind == GR_TOK_SPM;
    uint64_t *lens = malloc((size_t)t->n_vocab * sizeof *lens);
    if (!lens) return gr_errorf("tokenizer: out of memory");
    for (int32_t i = 0; i < t->n_vocab; i++) lens[i] = t->text_len[i];
    int rc = gr_gguf_set_str(b, "tokenizer.ggml.model", spm ? "llama" : "gpt2");
    rc = rc ? rc : gr_gguf_set_str(b, "tokenizer.ggml.pre", t->pre);
    rc = rc ? rc : gr_gguf_set_arr_str(b, "tokenizer.ggml.tokens", (const char *const *)t->text, lens, (uint64_t)t->n_vocab);
    free(lens);
    if (rc) return rc;
    if (spm && gr_gguf_set_arr(b, "tokenizer.ggml.scores", GR_GGUF_F32, t->scores, (uint64_t)t->n_vocab)) return GR_ERR;
    if (gr_gguf_set_arr(b, "tokenizer.ggml.token_type", GR_GGUF_I32, t->types, (uint64_t)t->n_vocab)) return GR_ERR;
    if (!spm) {
        char **m = calloc((size_t)(t->n_merges ? t->n_merges : 1), sizeof *m);
        if (!m) return gr_errorf("tokenizer: out of memory");
        for (int64_t k = 0; k < t->n_merges && rc == GR_OK; k++) {
            const char *l = t->text[t->m_left[k]], *r = t->text[t->m_right[k]];
            size_t ll = t->text_len[t->m_left[k]], rl = t->text_len[t->m_right[k]];
            if (!(m[k] = malloc(ll + rl + 2))) { rc = gr_errorf("tokenizer: out of memory"); break; }
            memcpy(m[k], l, ll);
            m[k][ll] = ' ';
            memcpy(m[k] + ll + 1, r, rl);
            m[k][ll + rl + 1] = '\0';
        }
        if (rc == GR_OK) rc = gr_gguf_set_arr_str(b, "tokenizer.ggml.merges", (const char *const *)m, NULL, (uint64_t)t->n_merges);
        for (int64_t k = 0; k < t->n_merges; k++) free(m[k]);
        free(m);
        if (rc) return rc;
    }
    if (t->bos >= 0 && gr_gguf_set_u32(b, "tokenizer.ggml.bos_token_id", (uint32_t)t->bos)) return GR_ERR;
    if (t->eos >= 0 && gr_gguf_set_u32(b, "tokenizer.ggml.eos_token_id", (uint32_t)t->eos)) return GR_ERR;
    if (t->unk >= 0 && gr_gguf_set_u32(b, "tokenizer.ggml.unknown_token_id", (uint32_t)t->unk)) return GR_ERR;
    if (t->pad >= 0 && gr_gguf_set_u32(b, "tokenizer.ggml.padding_token_id", (uint32_t)t->pad)) return GR_ERR;
    if (gr_gguf_set_bool(b, "tokenizer.ggml.add_bos_token", t->add_bos)) return GR_ERR;
    if (gr_gguf_set_bool(b, "tokenizer.ggml.add_eos_token", t->add_eos)) return GR_ERR;
    if (gr_gguf_set_bool(b, "tokenizer.ggml.add_space_prefix", t->add_space_prefix)) return GR_ERR;
    return GR_OK;
}
