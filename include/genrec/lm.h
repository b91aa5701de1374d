/* The language model: token embedding -> the shared transformer engine ->
 * output head (tied to the embedding or not), for GPT-2 and Llama.
 *
 * Everything trainable (embedding, positions, blocks, final norm, head)
 * lives in the transformer's one parameter slab (gr_tfm_config.vocab > 0), so
 * gradients and AdamW moments are single slabs too and a checkpoint is one
 * array plus a table of named views (gr_tfm_param_views).
 *
 * Batches are the engine's packed, padding-free layout (see transformer.h):
 * N tokens of n_seq sequences laid end to end, sequence s in rows
 * [seq_off[s], seq_off[s+1]). targets[i] is the token that should follow
 * tokens[i] (the next token of the same sequence), or < 0 for "no loss here"
 * (prompt tokens in answer-only training, the last token of a sequence).
 *
 * Ownership: a gr_lm owns its transformer and (when it has one) its
 * tokenizer. It is not safe to use one gr_lm from two threads at once; the
 * work inside each call is OpenMP-parallel (gr_threads_get() threads) and
 * deterministic for a given thread count.
 */
#ifndef GENREC_LM_H
#define GENREC_LM_H

#include <stdint.h>

#include "genrec/checkpoint.h"
#include "genrec/common.h"
#include "genrec/rng.h"
#include "genrec/tokenizer.h"
#include "genrec/transformer.h"

typedef struct gr_lm gr_lm;

/* Fill cfg with the architecture's fixed choices (GPT-2: LayerNorm eps 1e-5,
 * GELU-tanh, learned positions, biases, tied head; Llama: RMSNorm eps 1e-5,
 * SwiGLU, RoPE theta 10000, no biases, untied head) and the given sizes;
 * n_kv_head 0 = n_head, dropout 0. Callers may change fields afterwards. */
void gr_lm_config_preset(gr_tfm_config *cfg, gr_arch arch, int n_layer, int d_model,
                         int n_head, int n_kv_head, int d_ff, int max_T, int vocab);

/* A freshly initialised model (normal(0, 0.02) matrices, norms 1, biases 0,
 * from seed). cfg->vocab must be > 0. NULL + error on a bad config or OOM.
 * The model has no tokenizer until gr_lm_set_tokenizer. */
gr_lm *gr_lm_init(gr_arch arch, const gr_tfm_config *cfg, uint64_t seed);

/* A model holding a copy of ck's weights (ck may be freed afterwards).
 * NULL + error naming the tensor on a shape mismatch. */
gr_lm *gr_lm_from_ckpt(const gr_ckpt *ck);

/* Load a model from a GGUF file, a llama2.c .bin, or a safetensors file or
 * folder (gr_ckpt_load), plus its tokenizer: from tokenizer_path when not
 * NULL; else from the GGUF itself, from the safetensors folder
 * (tokenizer.json or encoder.json + vocab.bpe), or from a tokenizer.bin next
 * to a llama2.c .bin. A model without a findable tokenizer still loads
 * (gr_lm_tokenizer returns NULL); a tokenizer_path that fails to load, or a
 * tokenizer whose vocabulary is larger than the model's, is an error.
 * NULL + error naming the path on failure. */
gr_lm *gr_lm_load(const char *model_path, const char *tokenizer_path);

/* Free the model, its transformer and its tokenizer (NULL is fine). */
void gr_lm_free(gr_lm *lm);

/* Accessors (owned by lm). */
gr_tfm *gr_lm_tfm(gr_lm *lm);
const gr_tfm_config *gr_lm_config(const gr_lm *lm);
gr_arch gr_lm_arch(const gr_lm *lm);
int gr_lm_vocab(const gr_lm *lm);
const gr_tokenizer *gr_lm_tokenizer(const gr_lm *lm);
/* Give the model a tokenizer (ownership passes to lm; the previous one is
 * freed). GR_ERR (and tok is still the caller's) if tok's vocabulary is
 * larger than the model's. */
int gr_lm_set_tokenizer(gr_lm *lm, gr_tokenizer *tok);

/* A packed batch (see the top of this file). pos NULL = 0, 1, ... within
 * each sequence; targets NULL = no loss anywhere. */
typedef struct gr_lm_batch {
    const int32_t *tokens;    /* N */
    const int32_t *targets;   /* N or NULL */
    const int32_t *pos;       /* N or NULL */
    const int32_t *seq_off;   /* n_seq + 1 */
    int n_seq, N;
} gr_lm_batch;

/* Training step body: forward (train mode: dropout from rng), full-softmax
 * cross-entropy averaged over the tokens with targets >= 0 (written to
 * *loss; 0 when there are none), and backward: gradients ACCUMULATE (+=)
 * into the gradient slab (gr_tfm_grads), so gradient accumulation over k
 * micro-batches is k calls followed by scaling the slab by 1/k. GR_ERR +
 * error on a bad batch (token or target outside the vocabulary, bad
 * seq_off/pos) or OOM; the gradient slab is then unspecified. */
int gr_lm_forward_backward(gr_lm *lm, const gr_lm_batch *b, float *loss, gr_rng *rng);

/* Inference-mode loss: *sum_nll = sum over tokens with targets >= 0 of
 * -log p(target) (double), *n_targets their count. Either may be NULL. */
int gr_lm_eval_loss(gr_lm *lm, const gr_lm_batch *b, double *sum_nll, int64_t *n_targets);

/* Per-sequence log-probabilities (inference mode): lp[s] = sum over the
 * tokens i of sequence s with targets[i] >= 0 of log p(targets[i] | tokens
 * up to i) — the sequence score DPO, GRPO and reranking need. b->targets
 * must not be NULL. */
int gr_lm_seq_logprob(gr_lm *lm, const gr_lm_batch *b, double *lp);

/* Logits (inference mode) of the rows rows[0..n_rows) of the batch into
 * logits (n_rows, V). rows NULL = the last token of every sequence (n_rows
 * must then equal n_seq). */
int gr_lm_logits(gr_lm *lm, const gr_lm_batch *b, const int32_t *rows, int n_rows, float *logits);

/* Pooling of a sequence's final hidden states into one vector. */
typedef enum gr_pool {
    GR_POOL_LAST = 0,   /* the hidden state of the sequence's last token */
    GR_POOL_MEAN = 1    /* the mean over all its tokens */
} gr_pool;

/* Final hidden states (inference mode, after the final norm when the model
 * has one, i.e. what the output head multiplies: logits = hidden . head^T)
 * pooled per sequence: out (n_seq, d_model) gets, for sequence s, the
 * hidden state of its last token (GR_POOL_LAST) or the mean of its tokens'
 * hidden states (GR_POOL_MEAN). out is the caller's; b->targets is ignored.
 * GR_ERR + error on a bad batch (as gr_lm_logits), an empty sequence, an
 * unknown pool, or OOM (out is then unspecified). */
int gr_lm_hidden(gr_lm *lm, const gr_lm_batch *b, gr_pool pool, float *out);

/* Embed n token sequences: out (n, d_model) = gr_lm_hidden of seqs[s][0 ..
 * len[s]) (each non-empty and at most max_T tokens), run in batches of about
 * 4096 tokens. out is the caller's. GR_ERR + error as gr_lm_hidden. */
int gr_lm_embed_seqs(gr_lm *lm, const int32_t *const *seqs, const int64_t *len, int64_t n, gr_pool pool,
                     float *out);

#endif
