/* Internal helpers of src/rec: a growable byte buffer and a growable int32
 * vector. Functions return GR_OK / GR_ERR (error recorded on OOM). */
#ifndef GENREC_REC_INTERNAL_H
#define GENREC_REC_INTERNAL_H
#include <stdint.h>
#include <string.h>

#include "genrec/common.h"

typedef struct gr_sbuf {
    char *p;     /* NUL-terminated when n > 0 or after gr_sbuf_finish */
    size_t n, cap;
} gr_sbuf;

static inline int gr_sbuf_reserve(gr_sbuf *b, size_t extra)
{
    if (b->n + extra + 1 <= b->cap) return GR_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + extra + 1) cap *= 2;
    char *p = gr_realloc(b->p, cap, 1);
    if (!p) return GR_ERR;
    b->p = p;
    b->cap = cap;
    return GR_OK;
}

static inline int gr_sbuf_add(gr_sbuf *b, const char *s, size_t n)
{
    if (gr_sbuf_reserve(b, n)) return GR_ERR;
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return GR_OK;
}

static inline int gr_sbuf_adds(gr_sbuf *b, const char *s) { return gr_sbuf_add(b, s, strlen(s)); }

/* The buffer's string (an empty string is allocated when nothing was added);
 * the caller owns it. NULL + error on OOM. */
static inline char *gr_sbuf_finish(gr_sbuf *b)
{
    if (gr_sbuf_reserve(b, 0)) { gr_free(b->p); b->p = NULL; return NULL; }
    b->p[b->n] = 0;
    char *p = b->p;
    b->p = NULL;
    b->n = b->cap = 0;
    return p;
}

typedef struct gr_ivec {
    int32_t *p;
    int64_t n, cap;
} gr_ivec;

static inline int gr_ivec_add(gr_ivec *v, const int32_t *x, int64_t n)
{
    if (v->n + n > v->cap) {
        int64_t cap = v->cap ? v->cap : 64;
        while (cap < v->n + n) cap *= 2;
        int32_t *p = gr_realloc(v->p, (size_t)cap, sizeof *p);
        if (!p) return GR_ERR;
        v->p = p;
        v->cap = cap;
    }
    if (n) memcpy(v->p + v->n, x, (size_t)n * sizeof *x);
    v->n += n;
    return GR_OK;
}

/* Shared between the src/rec files (itemtext.c, sft.c). */
#include "genrec/itemtext.h"
/* BOS id to put before a prompt under t, or -1. */
int32_t gr_rec_prompt_bos(const gr_prompt_tmpl *t, const gr_tokenizer *tok);
/* Append the ids of one history item piece (item_open + text + item_close,
 * tokenized on its own) to v. GR_ERR on OOM. */
int gr_rec_encode_item_piece(const gr_prompt_tmpl *t, const gr_tokenizer *tok, const gr_itemtext *it,
                             int32_t item, gr_ivec *v);
/* Encode s (with "{cat}" replaced by cat) on its own and append to v. */
int gr_rec_encode_subst(gr_ivec *v, const gr_tokenizer *tok, const char *s, const char *cat);
/* t's category or "items". */
const char *gr_rec_tmpl_cat(const gr_prompt_tmpl *t);

#endif
