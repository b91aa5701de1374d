/* SentencePiece-style BPE encoding, following llama.cpp's llm_tokenizer_spm
 * (and llama2.c's encode): escape spaces as U+2581, add the dummy-prefix
 * space, split into UTF-8 characters, merge the adjacent pair whose merged
 * text is the highest-scoring vocabulary entry (ties: leftmost) until none is
 * left, then emit each symbol's token or its <0xNN> byte tokens. One
 * deliberate difference: a byte that is not valid UTF-8 is its own symbol
 * (llama.cpp groups by the lead byte's length), so any input round-trips. */
#include "genrec/common.h"
#include "tok/tok_internal.h"
#include "tok/unicode.h"

#include <stdlib.h>
#include <string.h>

typedef struct ssym { size_t off, n; int32_t prev, next; } ssym;

static int try_bigram(const gr_tokenizer *t, const char *txt, ssym *s, tok_heap *h, int32_t l, int32_t r)
{
    if (l < 0 || r < 0) return GR_OK;
    size_t size = s[l].n + s[r].n;
    int32_t id = gr_tokenizer_find(t, txt + s[l].off, size);
    if (id < 0) return GR_OK;
    tok_cand c = {(double)t->scores[id], l, r, (int32_t)size, id};
    return tok_heap_push(h, c);
}

static int emit_bytes(const gr_tokenizer *t, const unsigned char *p, size_t n, tok_ids *out)
{
    for (size_t j = 0; j < n; j++) {
        int32_t id = t->byte_tok[p[j]] >= 0 ? t->byte_tok[p[j]] : t->unk;
        if (id >= 0 && tok_ids_push(out, id)) return GR_ERR;
    }
    return GR_OK;
}

/* Merge and emit one segment txt[0..tl) (its symbols never merge with text
 * outside it). s and h are scratch space. */
static int encode_segment(const gr_tokenizer *t, const char *txt, size_t tl, ssym *s, tok_heap *h, tok_ids *out)
{
    int32_t ns = 0;
    h->n = 0;
    for (size_t off = 0; off < tl;) {
        uint32_t cp; /* invalid UTF-8 bytes become one-byte symbols, so they round-trip */
        size_t n = gr_utf8_decode((const unsigned char *)txt + off, tl - off, &cp);
        s[ns] = (ssym){off, n, ns - 1, off + n < tl ? ns + 1 : -1};
        ns++;
        off += n;
    }
    int rc = GR_OK;
    for (int32_t i = 1; i < ns && rc == GR_OK; i++) rc = try_bigram(t, txt, s, h, i - 1, i);
    while (rc == GR_OK && h->n) {
        tok_cand c = tok_heap_pop(h);
        ssym *l = &s[c.left], *r = &s[c.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != (size_t)c.a || l->next != c.right) continue;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) s[r->next].prev = c.left;
        rc = try_bigram(t, txt, s, h, l->prev, c.left);
        if (rc == GR_OK) rc = try_bigram(t, txt, s, h, c.left, l->next);
    }
    for (int32_t i = ns ? 0 : -1; i >= 0 && rc == GR_OK; i = s[i].next) {
        int32_t id = gr_tokenizer_find(t, txt + s[i].off, s[i].n);
        rc = id >= 0 ? tok_ids_push(out, id) : emit_bytes(t, (const unsigned char *)txt + s[i].off, s[i].n, out);
    }
    return rc;
}

int tok_spm_encode(const gr_tokenizer *t, const char *text, size_t len, tok_ids *out)
{
    /* escaped text: optional leading space, every ' ' -> U+2581 */
    size_t extra = t->add_space_prefix ? 1 : 0, nsp = 0;
    for (size_t i = 0; i < len; i++) nsp += text[i] == ' ';
    if (len > (size_t)INT32_MAX / 4) return gr_errorf("tokenizer: input too long");
    size_t cap = len + 2 * (nsp + extra) + 1;
    char *txt = malloc(cap);
    ssym *s = malloc((len + extra + 1) * sizeof *s);
    if (!txt || !s) { free(txt); free(s); return gr_errorf("tokenizer: out of memory"); }
    size_t tl = 0;
    if (extra) { memcpy(txt, "\xE2\x96\x81", 3); tl = 3; }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') { memcpy(txt + tl, "\xE2\x96\x81", 3); tl += 3; }
        else txt[tl++] = text[i];
    }
    tok_heap h = {0};
    int rc = GR_OK;
    size_t seg = 0;
    for (size_t i = 0; i <= tl && rc == GR_OK; i++) {
        int cut = i == tl || ((unsigned char)txt[i] < 128 && t->barrier[(unsigned char)txt[i]]);
        if (!cut) continue;
        rc = encode_segment(t, txt + seg, i - seg, s, &h, out);
        if (rc == GR_OK && i < tl) rc = encode_segment(t, txt + i, 1, s, &h, out);
        seg = i + 1;
    }
    free(h.v);
    free(txt);
    free(s);
    return rc;
}
