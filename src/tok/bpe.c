/* Byte-level BPE encoding (GPT-2): pre-tokenize, then merge each piece's
 * byte symbols by merge rank with a priority queue (lowest rank first, ties
 * leftmost), like Hugging Face tokenizers and llama.cpp's llm_tokenizer_bpe. */
#include "genrec/common.h"
#include "tok/tok_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct sym { int32_t id, prev, next; } sym;

typedef struct bpe_work { sym *s; size_t cap; tok_heap heap; } bpe_work;

static int try_pair(const gr_tokenizer *t, bpe_work *w, int32_t l, int32_t r)
{
    if (l < 0 || r < 0 || w->s[l].id < 0 || w->s[r].id < 0) return GR_OK;
    int32_t rank = tok_merge_rank(t, w->s[l].id, w->s[r].id);
    if (rank < 0) return GR_OK;
    tok_cand c = {-(double)rank, l, r, w->s[l].id, w->s[r].id};
    return tok_heap_push(&w->heap, c);
}

/* Encode one pre-tokenized piece. */
static int encode_piece(const gr_tokenizer *t, const unsigned char *p, size_t n, bpe_work *w, tok_ids *out)
{
    if (n > INT32_MAX) return gr_errorf("tokenizer: piece of %zu bytes is too long", n);
    if (n > w->cap) {
        sym *ns = realloc(w->s, n * sizeof *ns);
        if (!ns) return gr_errorf("tokenizer: out of memory");
        w->s = ns;
        w->cap = n;
    }
    if (n == 1) return t->byte_tok[p[0]] >= 0 ? tok_ids_push(out, t->byte_tok[p[0]]) : GR_OK;
    for (size_t i = 0; i < n; i++) w->s[i] = (sym){t->byte_tok[p[i]], (int32_t)i - 1, i + 1 < n ? (int32_t)i + 1 : -1};
    w->heap.n = 0;
    for (size_t i = 0; i + 1 < n; i++)
        if (try_pair(t, w, (int32_t)i, (int32_t)i + 1)) return GR_ERR;
    while (w->heap.n) {
        tok_cand c = tok_heap_pop(&w->heap);
        sym *l = &w->s[c.left];
        if (l->next != c.right || l->id != c.a || w->s[c.right].id != c.b) continue; /* stale */
        sym *r = &w->s[c.right];
        l->id = t->m_result[(int32_t)-c.prio];
        l->next = r->next;
        if (r->next >= 0) w->s[r->next].prev = c.left;
        r->id = -2; /* dead */
        r->next = r->prev = -1;
        if (try_pair(t, w, l->prev, c.left) || try_pair(t, w, c.left, l->next)) return GR_ERR;
    }
    for (int32_t i = 0; i >= 0; i = w->s[i].next)
        if (w->s[i].id >= 0 && tok_ids_push(out, w->s[i].id)) return GR_ERR; /* bytes without a token are dropped */
    return GR_OK;
}

int tok_bpe_encode(const gr_tokenizer *t, const char *text, size_t len, tok_ids *out)
{
    const char *src = text;
    char *tmp = NULL;
    if (t->add_space_prefix && len && text[0] != ' ') { /* HF ByteLevel add_prefix_space */
        if (!(tmp = malloc(len + 1))) return gr_errorf("tokenizer: out of memory");
        tmp[0] = ' ';
        memcpy(tmp + 1, text, len);
        src = tmp;
        len++;
    }
    size_t np;
    size_t *ends = gr_pretok_gpt2(src, len, &np);
    if (!ends) { free(tmp); return GR_ERR; }
    bpe_work w = {0};
    int rc = GR_OK;
    size_t start = 0;
    for (size_t i = 0; i < np && rc == GR_OK; i++) {
        const unsigned char *p = (const unsigned char *)src + start;
        size_t n = ends[i] - start;
        rc = encode_piece(t, p, n, &w, out);
        start = ends[i];
    }
    free(w.s);
    free(w.heap.v);
    free(ends);
    free(tmp);
    return rc;
}
