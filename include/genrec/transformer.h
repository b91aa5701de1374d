/* The shared transformer engine: a stack of decoder blocks that covers GPT-2
 * (LayerNorm, learned positions, GELU-tanh, biases) and Llama (RMSNorm, RoPE,
 * SwiGLU, grouped-query attention), plus SASRec/HSTU-style small configs
 * (ReLU FFN, pre-LN). Token/item embedding and the output head live in the
 * caller (the language model or SASRec), so every model shares this one
 * implementation.
 *
 * Batches are packed, padding-free: N tokens from n_seq sequences laid end to
 * end; sequence s occupies rows [seq_off[s], seq_off[s+1]) (seq_off[0] = 0,
 * seq_off[n_seq] = N, non-decreasing). Attention is causal within each
 * sequence only. pos[i] is token i's position index (for learned positions
 * and RoPE); callers choose it (e.g. SASRec aligns the last item of every
 * sequence to position max_T-1).
 *
 * Block (pre-norm):  x = x + Attn(Norm(x));  x = x + FFN(Norm(x))
 * then an optional final norm. Input: x + pos_embd[pos] (learned positions).
 *
 * Shapes: N tokens, C = d_model, NH heads, HS = C/NH head size,
 * KVH kv heads, F = d_ff.
 * Parameters, gradients and AdamW moments are each one slab (float[n_params])
 * with a table of named views (gr_tfm_param_view). Slab order, per layer:
 * attn_norm, attn_q|attn_k|attn_v weights (adjacent: one fused QKV GEMM),
 * their biases, attn_output, ffn_norm, ffn_up|ffn_gate weights (adjacent),
 * their biases, ffn_down; "token_embd" (when vocab > 0) and "pos_embd"
 * first, "output_norm" and "output" (vocab > 0, untied) last.
 *
 * Threads: see genrec/gemm.h and genrec/ops.h (OpenMP only, gr_threads_get()
 * threads, deterministic for a given seed and thread count). A gr_tfm is not
 * safe to use from two threads at once.
 *
 * Incremental decoding (a KV cache with prefix sharing, gr_tfm_forward_cached)
 * is in genrec/decode.h; LoRA adapters and the frozen-base flag are in
 * genrec/lora.h. Both hook into this engine's layers, so there is still one
 * transformer implementation.
 */
#ifndef GENREC_TRANSFORMER_H
#define GENREC_TRANSFORMER_H
#include <stdint.h>
#include "genrec/common.h"
#include "genrec/rng.h"

typedef enum gr_norm_type { GR_NORM_LAYER = 0, GR_NORM_RMS } gr_norm_type;
typedef enum gr_act_type { GR_ACT_GELU_TANH = 0, GR_ACT_RELU, GR_ACT_SWIGLU } gr_act_type;
typedef enum gr_pos_type { GR_POS_LEARNED = 0, GR_POS_ROPE, GR_POS_NONE } gr_pos_type;

typedef struct gr_tfm_config {
    int n_layer;
    int d_model;       /* C */
    int n_head;        /* NH */
    int n_kv_head;     /* KVH (== n_head for GPT-2/SASRec; 0 means n_head) */
    int d_ff;          /* F */
    int max_T;         /* positions 0..max_T-1 */
    gr_norm_type norm;
    gr_act_type act;
    gr_pos_type pos;
    int bias;          /* linear layers have biases (GPT-2, SASRec); LayerNorm
                          always has a bias, RMSNorm never */
    int final_norm;    /* apply a norm after the last block */
    float norm_eps;
    float rope_theta;
    float dropout;     /* on the input (x + positions) and on each residual branch
                          (attention and FFN outputs), training only; [0, 1) */
    int vocab;         /* > 0: the slab also holds "token_embd.weight" (vocab, C)
                          first and, unless tied, "output.weight" (vocab, C)
                          last, so a language model's parameters, gradients and
                          optimizer state are each one slab. The engine never
                          reads them (the caller embeds and classifies). */
    int tied;          /* with vocab > 0: the head is token_embd (no output.weight) */
} gr_tfm_config;

typedef struct gr_tfm gr_tfm;

/* Allocate a transformer with parameters initialised (normal(0, 0.02),
 * norms to 1, biases to 0) from seed. NULL + message naming the bad field
 * ("transformer config: field 'n_head' ...") on a bad config or OOM. The
 * caller owns the result and frees it with gr_tfm_free (NULL is fine). */
gr_tfm *gr_tfm_init(const gr_tfm_config *cfg, uint64_t seed);
void gr_tfm_free(gr_tfm *m);

/* The validated config (n_kv_head filled in). */
const gr_tfm_config *gr_tfm_get_config(const gr_tfm *m);

/* Parameter slab access. */
int64_t gr_tfm_n_params(const gr_tfm *m);
float *gr_tfm_params(gr_tfm *m);
float *gr_tfm_grads(gr_tfm *m);       /* zeroed by gr_tfm_zero_grad */
void gr_tfm_zero_grad(gr_tfm *m);

/* Named views into the slab: "blk.0.attn_q.weight", ... (names follow GGUF). */
typedef struct gr_tfm_param_view {
    const char *name;
    int64_t offset;   /* into the slab */
    int ndim;
    int64_t shape[4]; /* PyTorch order (out, in) */
} gr_tfm_param_view;
int gr_tfm_param_views(const gr_tfm *m, const gr_tfm_param_view **views);
/* Pointer to the named tensor in the parameter (or gradient) slab; NULL +
 * message if no such name. Owned by m. */
float *gr_tfm_param(gr_tfm *m, const char *name);
float *gr_tfm_grad(gr_tfm *m, const char *name);
/* With vocab > 0: the token embedding (vocab, C) and the output head
 * (vocab, C; the same pointer when tied) in the parameter slab (grad = 0) or
 * the gradient slab (grad = 1). NULL when vocab == 0. Owned by m. */
float *gr_tfm_embd(gr_tfm *m, int grad);
float *gr_tfm_head(gr_tfm *m, int grad);
/* Fill mask[0..n_params) with 1 for matrices (linear weights, pos_embd) and
 * 0 for norm weights and biases: the usual AdamW weight-decay split. */
void gr_tfm_decay_mask(const gr_tfm *m, uint8_t *mask);

/* Forward pass on a packed batch. x: (N, C) input embeddings (positions are
 * added inside for GR_POS_LEARNED); out: (N, C) final hidden states (out
 * may equal x). train=1 keeps the activations needed by backward and applies
 * dropout (deterministically from rng, which may be NULL when dropout is 0);
 * train=0 is the inference path (no dropout, memory for one layer only).
 * Activation buffers grow to the largest batch seen and never shrink. The
 * transformer keeps pointers to nothing the caller passes (pos and seq_off
 * are copied). GR_ERR + message on bad seq_off/pos or if growing fails. */
int gr_tfm_forward(gr_tfm *m, const float *x, const int32_t *pos,
                   const int32_t *seq_off, int n_seq, int N,
                   float *out, int train, gr_rng *rng);

/* Backward of the last train=1 forward: dout (N, C) -> dx (N, C) (may be
 * NULL; may equal dout), parameter gradients accumulated (+=) into the grad
 * slab. GR_ERR if there was no train=1 forward since the last inference
 * forward or backward. */
int gr_tfm_backward(gr_tfm *m, const float *dout, float *dx);

/* ---- AdamW over any slab -------------------------------------------------- */
typedef struct gr_adamw {
    float lr, beta1, beta2, eps, weight_decay;
    int64_t t;        /* step count */
    float *m, *v;     /* moments, one slab each, owned */
    int64_t n;
} gr_adamw;
/* Allocate zeroed moments for n parameters. GR_ERR + message on bad
 * hyperparameters (lr < 0, betas outside [0, 1), eps <= 0, weight_decay < 0)
 * or OOM; opt is then left empty (gr_adamw_free is still safe). */
int gr_adamw_init(gr_adamw *opt, int64_t n, float lr, float beta1, float beta2,
                  float eps, float weight_decay);
/* One step on params[0..n) with grads, exactly as torch.optim.AdamW
 * (decoupled decay p *= 1 - lr*wd, bias-corrected moments); opt->lr may be
 * changed between steps (schedules). decay_mask (may be NULL = all decay)
 * marks params that get weight decay (1) or not (0). */
void gr_adamw_step(gr_adamw *opt, float *params, const float *grads, const uint8_t *decay_mask);
/* Free the moments (not opt itself). */
void gr_adamw_free(gr_adamw *opt);

#endif
