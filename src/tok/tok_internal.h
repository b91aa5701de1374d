/* Internals shared by the tokenizer sources in src/tok. */
#ifndef GENREC_TOK_INTERNAL_H
#define GENREC_TOK_INTERNAL_H

#include "genrec/tokenizer.h"

#include <stddef.h>
#include <stdint.h>

typedef struct tok_chunk tok_chunk;

struct gr_tokenizer {
    gr_tok_kind kind;
    int32_t n_vocab;
    char **text;          /* vocab strings as stored, NUL-terminated */
    uint32_t *text_len;
    char **piece;         /* decoded bytes */
    uint32_t *piece_len;
    float *scores;
    int32_t *types;
    int32_t *vh;          /* vocab hash: open addressing over ids, -1 empty */
    uint32_t vh_mask;
    /* BPE merges, by rank */
    int32_t *m_left, *m_right, *m_result;
    int64_t n_merges, cap_merges;
    int32_t *mh;          /* merge hash: ranks, -1 empty */
    uint32_t mh_mask;
    int32_t byte_tok[256];   /* BPE: token of each byte's alphabet char; SPM: <0xNN> token */
    uint8_t barrier[128];    /* SPM: ASCII bytes found in no multi-byte token (they never merge) */
    int32_t bos, eos, unk, pad;
    int add_bos, add_eos, add_space_prefix;
    char pre[32];
    tok_chunk *chunks;
};

/* Scratch output buffer of ids. */
typedef struct tok_ids { int32_t *v; int64_t n, cap; } tok_ids;
int tok_ids_push(tok_ids *o, int32_t id);

/* Building: tok_new allocates n_vocab empty entries; tok_set fills one
 * (copied); tok_index builds the lookup hash, the pieces and the byte table
 * (call once all entries are set); tok_add_merge appends a merge rule by the
 * texts of its two parts (skipped silently with *added = 0 when a part or the
 * result is not in the vocabulary). */
gr_tokenizer *tok_new(gr_tok_kind kind, int32_t n_vocab);
int tok_set(gr_tokenizer *t, int32_t id, const char *s, size_t len, float score, int32_t type);
int tok_index(gr_tokenizer *t);
int tok_add_merge(gr_tokenizer *t, const char *l, size_t ll, const char *r, size_t rl, int *added);
int tok_add_merge_ids(gr_tokenizer *t, int32_t l, int32_t r, int32_t result);
/* Rank of merge (l, r) or -1. */
int32_t tok_merge_rank(const gr_tokenizer *t, int32_t l, int32_t r);

/* GPT-2 byte <-> unicode alphabet. */
uint32_t tok_byte_to_cp(unsigned char b);
int tok_cp_to_byte(uint32_t cp); /* -1 if cp is not in the alphabet */

/* Encoders (append to out). */
int tok_bpe_encode(const gr_tokenizer *t, const char *text, size_t len, tok_ids *out);
int tok_spm_encode(const gr_tokenizer *t, const char *text, size_t len, tok_ids *out);

/* Max-heap of merge candidates: larger prio first, then smaller left. */
typedef struct tok_cand { double prio; int32_t left, right, a, b; } tok_cand;
typedef struct tok_heap { tok_cand *v; int64_t n, cap; } tok_heap;
int tok_heap_push(tok_heap *h, tok_cand c);
tok_cand tok_heap_pop(tok_heap *h);

#endif
