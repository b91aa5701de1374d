/* LoRA adapters for the transformer engine (Hu et al. 2021).
 *
 * An adapter set is attached to one gr_tfm and adapts any of its linear
 * projections (the targets): for a projection y = W x + b with W (out, in),
 * it adds two trainable matrices A (r, in) and B (out, r) and computes
 *
 *     y = W x + b + (alpha / r) B (A x)
 *
 * A starts Kaiming-uniform (U(-1/sqrt(in), 1/sqrt(in)), as PEFT) from the
 * config's seed and B starts at zero, so a freshly attached adapter changes
 * nothing: the outputs are bit-identical to the base model's.
 *
 * Targets are the GGUF projection names: attn_q, attn_k, attn_v (one fused
 * (QKV, C) weight in the engine: each target adapts its own rows of it),
 * attn_output, ffn_up, ffn_gate (SwiGLU only; up|gate are one fused (2F, C)
 * weight) and ffn_down. Every layer gets the same targets.
 *
 * Parameters, gradients (and so the AdamW moments a trainer allocates with
 * gr_adamw_init(opt, gr_lora_n_params(l), ...)) are each ONE slab with named
 * views, per layer and target in the order above:
 *     "blk.N.attn_q.lora_a" (r, C)    "blk.N.attn_q.lora_b" (out, r)  ...
 * (out = C for attn_q/attn_output, KVH*HS for attn_k/attn_v, F for ffn_up/
 * ffn_gate, C for ffn_down whose A is (r, F)).
 *
 * Training only the adapters: gr_tfm_set_frozen(m, 1) makes gr_tfm_backward
 * skip every base-parameter gradient (linear weights and biases, norms,
 * positions: the weight-gradient GEMMs are most of a backward pass) while
 * still propagating dx through the frozen layers to the adapters and to the
 * caller. The base gradient slab is then left untouched. A training step is
 *
 *     gr_tfm_zero_grad(m);                     // zeroes the adapter grads too
 *     gr_tfm_forward(m, ..., train=1, rng); gr_tfm_backward(m, dout, dx);
 *     gr_adamw_step(&opt, gr_lora_params(l), gr_lora_grads(l), mask);
 *
 * The language model (genrec/lm.h): its token embedding and output head live
 * in the engine's slab but are used by lm.c, not by the engine, so they are
 * OUTSIDE LoRA: gr_lm_forward_backward still accumulates their gradients
 * (the head's dW GEMM and the embedding scatter) even when the base is
 * frozen. A trainer of adapters steps only the adapter slab, so those values
 * are simply ignored (they cost time, not correctness); lm.c can skip them
 * by testing gr_tfm_frozen().
 *
 * Inference: gr_tfm_forward (train=0) and the KV-cached gr_tfm_forward_cached
 * (decode.h) apply attached adapters through the same hooks, so an unmerged
 * adapter can be evaluated and decoded directly (their scratch lives in the
 * model: a model with adapters must not decode from two threads at once).
 * Each adapted projection costs two extra skinny GEMMs per call, so for
 * serving, gr_lora_merge folds the adapters into the base weights
 * (W += (alpha/r) B A) and detaches them, after which the model runs at the
 * base model's speed (decoding included). Any decoding path that reads the
 * base weights directly, without the tfm_lora_* hooks of tfm_internal.h,
 * must be given a merged model (or one without adapters).
 *
 * Ownership: the adapter set belongs to the gr_tfm (freed by gr_lora_detach,
 * gr_lora_merge or gr_tfm_free); the gr_lora handle stays valid until then.
 * At most one adapter set is attached at a time. Threads: as the engine.
 */
#ifndef GENREC_LORA_H
#define GENREC_LORA_H
#include <stdint.h>
#include "genrec/common.h"
#include "genrec/transformer.h"

/* Target bits (gr_lora_config.targets). */
enum {
    GR_LORA_ATTN_Q = 1 << 0,
    GR_LORA_ATTN_K = 1 << 1,
    GR_LORA_ATTN_V = 1 << 2,
    GR_LORA_ATTN_OUTPUT = 1 << 3,
    GR_LORA_FFN_UP = 1 << 4,
    GR_LORA_FFN_GATE = 1 << 5,
    GR_LORA_FFN_DOWN = 1 << 6,
    GR_LORA_N_TARGETS = 7,
    GR_LORA_ALL = (1 << 7) - 1  /* every target the model has (ffn_gate: SwiGLU only) */
};

typedef struct gr_lora_config {
    int rank;          /* r >= 1, at most min(in, out) of every adapted projection */
    float alpha;       /* scale = alpha / rank; alpha > 0 (PEFT's lora_alpha) */
    unsigned targets;  /* GR_LORA_* bits, non-empty */
    uint64_t seed;     /* initialisation of A */
} gr_lora_config;

typedef struct gr_lora gr_lora;

/* The GGUF name of target bit i ("attn_q", ...), or NULL when i is not in
 * [0, GR_LORA_N_TARGETS). */
const char *gr_lora_target_name(int i);

/* Parse a comma-separated list of target names ("attn_q,attn_v"; "all" =
 * GR_LORA_ALL) into *mask. GR_ERR + "lora targets: unknown target 'x'
 * (known: ...)" on a bad name or an empty list. */
int gr_lora_parse_targets(const char *list, unsigned *mask);

/* Attach a new adapter set to m (A random from cfg->seed, B = 0, gradients
 * zero). Returns the handle (owned by m) or NULL + message on a bad config
 * ("lora config: field 'rank' (0) must be >= 1", rank larger than a
 * projection's dims, alpha <= 0, an unknown target bit, ffn_gate without
 * SwiGLU), when m already has adapters, or on OOM. ALL with a non-SwiGLU
 * model silently means "all but ffn_gate". Attaching, detaching and merging
 * cancel a pending backward (train forward first, again). */
gr_lora *gr_lora_attach(gr_tfm *m, const gr_lora_config *cfg);

/* The adapter set attached to m, or NULL (no error) when none is. */
gr_lora *gr_tfm_lora(gr_tfm *m);

/* Free m's adapter set (no-op when none): the base model is unchanged. */
void gr_lora_detach(gr_tfm *m);

/* Fold the adapters into the base weights, W += (alpha/r) B A for every
 * adapted projection (in float32, rows of the fused weights), then detach.
 * The merged model's outputs equal the unmerged ones up to rounding. No-op
 * when m has no adapters. */
void gr_lora_merge(gr_tfm *m);

/* The config as attached (targets with ALL resolved to the model's). */
const gr_lora_config *gr_lora_get_config(const gr_lora *l);
float gr_lora_scale(const gr_lora *l);

/* Adapter slab access (owned by the adapter set). */
int64_t gr_lora_n_params(const gr_lora *l);
float *gr_lora_params(gr_lora *l);
float *gr_lora_grads(gr_lora *l);
void gr_lora_zero_grad(gr_lora *l);
/* Named views into the adapter slab (same struct as the engine's). */
int gr_lora_views(const gr_lora *l, const gr_tfm_param_view **views);
/* Pointer to the named tensor in the parameter / gradient slab; NULL +
 * message if no such name. */
float *gr_lora_param(gr_lora *l, const char *name);
float *gr_lora_grad(gr_lora *l, const char *name);
/* Fill mask[0..n_params) for AdamW: 1 everywhere (A and B are matrices and
 * get weight decay, as PEFT with torch.optim.AdamW). */
void gr_lora_decay_mask(const gr_lora *l, uint8_t *mask);

/* Freeze (1) or unfreeze (0) the base model: with frozen set,
 * gr_tfm_backward computes no gradient of any base parameter (the base grad
 * slab is not written) but still computes dx and the adapter gradients.
 * Independent of adapters (a frozen model without adapters only gives dx). */
void gr_tfm_set_frozen(gr_tfm *m, int frozen);
int gr_tfm_frozen(const gr_tfm *m);

/* Save m's adapters (tensors plus rank/alpha/targets and the base model's
 * shape as metadata) as a GGUF file, written atomically (temp + fsync +
 * rename): general.type = "adapter", adapter.type = "lora",
 * adapter.lora.alpha (f32), genrec.lora.rank (u32), genrec.lora.targets
 * (string array), genrec.lora.{n_layer,d_model,n_head,n_kv_head,d_ff} (u32);
 * tensors named as the views, F32. GR_ERR + message when m has no adapters
 * or the file cannot be written (path is then untouched). */
int gr_lora_save(gr_tfm *m, const char *path);

/* Load adapters saved by gr_lora_save and attach them to m (which must have
 * none). Returns the handle (gradients zero) or NULL + "PATH: ..." naming the
 * key or tensor on a malformed file or a base-model mismatch (shape keys or
 * tensor shapes). The frozen flag is not changed. */
gr_lora *gr_lora_load(gr_tfm *m, const char *path);

#endif
