/* Internals of the language model shared by src/lm files (the model, its
 * decoding and training). Not a public header: use genrec/lm.h. */
#ifndef GENREC_LM_INTERNAL_H
#define GENREC_LM_INTERNAL_H
#include "genrec/lm.h"
#include "genrec/xent.h"

struct gr_lm {
    gr_arch arch;
    gr_tfm *tfm;
    gr_tokenizer *tok;        /* may be NULL */
    int V, C;
    /* scratch, grown to the largest batch: x (cap, C) embeddings in, then
     * dx; h (cap, C) hidden states out; dh (cap, C); pos (cap) */
    int64_t cap;
    float *x, *h, *dh;
    int32_t *pos;
    float *logit_buf;         /* (logit_rows, V) for eval / logprob chunks */
    int logit_rows;
    gr_xent_ws xent;
};

/* Grow the scratch to N tokens. GR_ERR + error on OOM. */
int gr_lm_reserve(gr_lm *lm, int64_t N);
/* x[i] = token_embd[tokens[i]] for i < N (tokens checked < V, >= 0). */
int gr_lm_embed(gr_lm *lm, const int32_t *tokens, int N, float *x);

#endif
