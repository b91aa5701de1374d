/* Incremental decoding: a KV cache for the transformer engine, a cached
 * forward pass that appends tokens to it, the language model's decoding step
 * on top, and a token sampler (temperature, top-p, greedy).
 *
 * KV cache. A gr_kv_cache holds, per layer, the K and V rows of n_slots
 * sequences ("slots"): storage (n_layer, n_slots, max_T, KVH*HS) floats for
 * K (after RoPE) and as much for V, each slot's block stored transposed
 * (KVH*HS, max_T) for the decoding step's loops. A slot is one sequence
 * being decoded.
 * Its logical rows are positions 0 .. len-1; they come from two places:
 *
 *   - a shared PREFIX: rows [0, base) are read from another slot (the
 *     "root"), without copying. A prompt is prefilled once into one slot,
 *     and every beam of it calls gr_kv_cache_share_prefix so that the beams
 *     read the prompt's rows from there;
 *   - its OWN rows [base, len), stored in the slot's storage starting at its
 *     first row (storage row r holds position base + r), so a slot's
 *     capacity max_T counts its own rows only: a beam slot that shares a
 *     prompt of 500 tokens can still hold max_T new ones (positions are
 *     limited by the model's max_T as usual).
 *
 * A slot without a prefix is a root (base 0). Prefixes are one level deep:
 * sharing a prefix of a slot that itself has one resolves to that slot's root
 * and copies the rows in between (see gr_kv_cache_share_prefix). The cache
 * counts how many slots read each root; a root that is read by others cannot
 * be cleared or overwritten (GR_ERR), but it can still be appended to (new
 * rows never touch the shared ones). Beams are reordered with
 * gr_kv_cache_copy / gr_kv_cache_reorder, which copy only the slots' own
 * (suffix) rows and share the prefix reference.
 *
 * Batches are the engine's packed layout (transformer.h): N new tokens of
 * n_seq sequences laid end to end, sequence s in rows [seq_off[s],
 * seq_off[s+1]), appended to slot slots[s]. A batch may mix a chunk of a
 * prompt (prefill) for one slot with single tokens for many others; all
 * projections run as one GEMM over the N rows, attention runs in parallel
 * over (sequence, head).
 *
 * Threads and ownership: the cache owns its storage and the scratch memory of
 * the cached forward (grown to the largest batch seen, never shrunk), so one
 * gr_tfm (read-only here) may decode with several caches from different
 * threads at once -- except with LoRA adapters attached (lora.h: they are
 * applied, and their scratch lives in the model); one cache must not be
 * used from two threads at once. Results are deterministic for a given
 * thread count.
 */
#ifndef GENREC_DECODE_H
#define GENREC_DECODE_H

#include <stdint.h>

#include "genrec/common.h"
#include "genrec/lm.h"
#include "genrec/rng.h"
#include "genrec/transformer.h"

typedef struct gr_kv_cache gr_kv_cache;

/* ---- KV cache --------------------------------------------------------------- */

/* A cache for the transformer described by cfg (n_layer, n_kv_head and head
 * size are taken from it; n_kv_head 0 means n_head), with n_slots slots of
 * max_T own rows each, all empty. Memory: 2 * n_layer * n_slots * max_T *
 * KVH*HS floats (allocated, not touched, so untouched rows cost no RAM on
 * Linux). NULL + error on a bad config, n_slots < 1, max_T < 1 or OOM. The
 * caller frees it with gr_kv_cache_free (NULL is fine). */
gr_kv_cache *gr_kv_cache_init(const gr_tfm_config *cfg, int n_slots, int max_T);
void gr_kv_cache_free(gr_kv_cache *c);

int gr_kv_cache_n_slots(const gr_kv_cache *c);
/* Own-row capacity of every slot. */
int gr_kv_cache_max_T(const gr_kv_cache *c);
/* Number of positions (prefix + own rows) in slot; -1 if slot is out of
 * range (no error recorded). */
int gr_kv_cache_len(const gr_kv_cache *c, int slot);
/* Length of the shared prefix of slot (0 for a root) and the slot it is read
 * from (-1 for a root); -1 / -1 if slot is out of range. */
int gr_kv_cache_prefix_len(const gr_kv_cache *c, int slot);
int gr_kv_cache_prefix_slot(const gr_kv_cache *c, int slot);
/* How many slots read a prefix from slot (0 if out of range). */
int gr_kv_cache_n_readers(const gr_kv_cache *c, int slot);

/* Empty slot (length 0, no prefix; releases its prefix reference). GR_ERR +
 * error if slot is out of range or other slots read a prefix from it. */
int gr_kv_cache_clear_slot(gr_kv_cache *c, int slot);
/* Empty every slot. */
void gr_kv_cache_clear(gr_kv_cache *c);

/* Make dst the first len positions of src, sharing rather than copying: dst
 * reads src's rows [0, len) (when src is a root), or, when src itself has a
 * prefix of length b read from root r, dst reads [0, min(len, b)) from r and
 * gets a copy of src's own rows up to len. dst's previous content is
 * dropped. Afterwards src must not be cleared or overwritten while dst (or a
 * copy of it) reads from it; appending to src is fine. GR_ERR + error if a
 * slot is out of range, dst == src, len is outside [0, len(src)], dst is read
 * by other slots, or the copied own rows exceed dst's capacity. */
int gr_kv_cache_share_prefix(gr_kv_cache *c, int dst, int src, int len);

/* Make dst a copy of src: the same prefix reference and a copy of src's own
 * rows (for a root src, all its rows are copied: dst becomes an independent
 * root). Equivalent to gr_kv_cache_share_prefix(c, dst, src, len(src)) when
 * src has a prefix. dst == src is a no-op. GR_ERR + error as above. */
int gr_kv_cache_copy(gr_kv_cache *c, int dst, int src);

/* Beam reorder: for i < n, slot dst[i] becomes what slot src[i] was BEFORE
 * the call (a permutation with repeats: src may repeat, dst must not, and a
 * slot may appear on both sides). Only own rows are copied (through a
 * scratch buffer held by the cache); prefix references are carried over.
 * Entries with dst[i] == src[i] cost nothing. GR_ERR + error (and the
 * cache unchanged) on an out-of-range or repeated dst slot, a rewritten dst
 * slot that other slots read a prefix from (gr_kv_cache_n_readers > 0), or
 * OOM. */
int gr_kv_cache_reorder(gr_kv_cache *c, const int32_t *dst, const int32_t *src, int n);

/* Rows (new tokens in one cached forward, or sequences whose logits are
 * wanted) up to which decoding multiplies by the weight rows directly (dot
 * products, llama2.c's matmul) instead of a GEMM, which would pack the whole
 * matrix at every call: 1.8x faster single-stream steps on stories260K. */
#define GR_DECODE_DOT_ROWS 4

/* Decode with bf16 weights: c keeps a bf16 copy (rounded to nearest even)
 * of m's projection weights and output head, made now, and every cached
 * forward of m through c (gr_tfm_forward_cached, and the logits of
 * gr_lm_decode_step) reads the copy instead of the fp32 weights: half the
 * memory traffic where decoding is bound by it (one or a few streams of a
 * model larger than the caches read all weights once per token; see
 * docs/BENCHMARKS.md). Results differ from fp32 by the rounding of the
 * weights. The copy is a snapshot: after m's weights change (training, a
 * LoRA merge, a load) call it again or gr_kv_cache_drop_weights, else the
 * old weights are used. LoRA adapters still apply on top, in fp32. Owned by
 * c (freed with it). GR_ERR + error on a cache made for another
 * configuration or OOM (c unchanged). */
int gr_kv_cache_set_bf16_weights(gr_kv_cache *c, const gr_tfm *m);
/* The same snapshot as packed fp32 panels (gr_gemm_pack_b): batched steps
 * (beam search, more than GR_DECODE_DOT_ROWS new tokens) then skip re-packing every weight
 * matrix and the head at each call, with results identical to the fp32
 * weights (AVX2). Same snapshot rules and errors as above; one copy at a
 * time (setting one drops the other). */
int gr_kv_cache_set_packed_weights(gr_kv_cache *c, const gr_tfm *m);
/* Drop the bf16 or packed copy: back to m's own weights. NULL is fine. */
void gr_kv_cache_drop_weights(gr_kv_cache *c);
/* The packed copy of m's output head (op(B) = head^T, gr_gemm_pack_b
 * layout) held by c, or NULL. */
const float *gr_kv_cache_packed_head(const gr_kv_cache *c, const gr_tfm *m);
/* The bf16 copy of m's output head (vocab, C) held by c, or NULL (no copy,
 * a copy of another model, or a model without a head). */
const uint16_t *gr_kv_cache_bf16_head(const gr_kv_cache *c, const gr_tfm *m);

/* ---- cached forward ------------------------------------------------------------- */

/* Append a packed batch to the cache and run the transformer on it. x (N, C)
 * are the new tokens' input embeddings; sequence s (rows [seq_off[s],
 * seq_off[s+1]), possibly empty) is appended to slot slots[s] at positions
 * len(slot) ..; positions enter as in gr_tfm_forward (learned positions
 * added to x, RoPE on q and k at those absolute positions). Each new token
 * attends to its slot's prefix rows, own rows and the new tokens up to
 * itself. out (N, C) gets the final hidden states (the same as
 * gr_tfm_forward on each whole sequence, up to rounding); out may equal x.
 * Slots in one call must be distinct. GR_ERR + error, with the cache
 * unchanged, on a bad batch (seq_off, a slot out of range or repeated), a
 * cache made for another configuration, a slot whose own rows would exceed
 * the cache's max_T, a position reaching the model's max_T (learned
 * positions / RoPE), or OOM. */
int gr_tfm_forward_cached(gr_tfm *m, gr_kv_cache *c, const float *x, const int32_t *slots,
                          const int32_t *seq_off, int n_seq, int N, float *out);

/* ---- language-model decoding ----------------------------------------------------- */

/* A cache sized for lm's transformer (gr_kv_cache_init with its config). */
gr_kv_cache *gr_lm_kv_cache_init(const gr_lm *lm, int n_slots, int max_T);

/* One decoding step (or a prefill chunk): embed tokens (N), run
 * gr_tfm_forward_cached on the packed batch (slots, seq_off, n_seq as there)
 * and write the logits of the LAST new token of every sequence into logits
 * (n_seq, V). logits NULL computes no logits (prefill only; empty sequences
 * are then allowed). GR_ERR + error on a token outside [0, V), an empty
 * sequence when logits are wanted, or anything gr_tfm_forward_cached
 * rejects; the cache is then unchanged. */
int gr_lm_decode_step(gr_lm *lm, gr_kv_cache *c, const int32_t *tokens, const int32_t *slots,
                      const int32_t *seq_off, int n_seq, int N, float *logits);

/* ---- sampling ------------------------------------------------------------------- */

/* Index of the largest of x[0..n) (n >= 1), ties going to the lowest
 * index; NaNs are never chosen unless everything is NaN (then 0). */
int32_t gr_argmax(const float *x, int n);

typedef struct gr_sampler {
    int V;
    float temperature;   /* 0 = greedy argmax */
    float top_p;         /* nucleus mass in (0, 1]; 1 = sample from everything */
    gr_rng rng;
    float *work;         /* (2V) scratch, owned */
    int32_t *iwork;      /* (2V) scratch, owned */
} gr_sampler;

/* Set up a sampler over V tokens. temperature >= 0 (0 = greedy), top_p in
 * (0, 1] (1 disables the nucleus cut), seed for the random stream. GR_ERR +
 * error on bad arguments or OOM (s is then empty; gr_sampler_free is still
 * safe). A sampler is not safe to use from two threads at once. */
int gr_sampler_init(gr_sampler *s, int V, float temperature, float top_p, uint64_t seed);
void gr_sampler_free(gr_sampler *s);

/* Pick a token from logits (V, not modified): temperature 0 gives
 * gr_argmax; otherwise probabilities softmax(logits / temperature), cut to
 * the nucleus (gr_sampler_nucleus) when top_p < 1, and one draw of the
 * sampler's rng (exactly one gr_rng_float per call, inverse-CDF over the
 * candidates in gr_sampler_nucleus's order, or in id order when top_p is 1).
 * Deterministic for a seed. */
int32_t gr_sampler_sample(gr_sampler *s, const float *logits);

/* The candidate set gr_sampler_sample draws from when temperature > 0 and
 * top_p < 1: ids and renormalised probabilities sorted by probability
 * (descending, ties to the lower id): the smallest such prefix whose mass
 * exceeds top_p (llama2.c's rule). With top_p 1: all V tokens, same order.
 * Temperature 0 is treated as 1 here. *ids and *prob point into the
 * sampler's scratch (valid until its next call); returns their count. */
int gr_sampler_nucleus(gr_sampler *s, const float *logits, const int32_t **ids, const float **prob);

#endif
