/* Saving a language model (genrec/lm.h) as ONE GGUF file that llama.cpp's
 * conventions describe and gr_lm_load() reads back:
 *
 *   general.architecture        "gpt2" or "llama"
 *   <arch>.context_length, .embedding_length, .block_count,
 *   .feed_forward_length, .attention.head_count, .attention.head_count_kv,
 *   .attention.layer_norm_epsilon (GPT-2) / .attention.layer_norm_rms_epsilon
 *   and .rope.freq_base, .rope.dimension_count (Llama), .vocab_size
 *   tensors: token_embd.weight, position_embd.weight (GPT-2), blk.N.* and
 *   output_norm.*, output.weight (untied heads only), names and shapes as in
 *   genrec/checkpoint.h (ggml order: ne[0] = the contiguous "in" dimension)
 *   tokenizer.ggml.*            the model's tokenizer, when it has one
 *   genrec.*                    genrec's own keys: genrec.vocab, genrec.tied,
 *                               genrec.step and the caller's key=value pairs
 *
 * F32 files load back bit-identically; F16/BF16 convert the 2-D weights only
 * (norm weights and biases stay F32, as llama.cpp's converters do).
 */
#ifndef GENREC_LM_IO_H
#define GENREC_LM_IO_H

#include <stdint.h>

#include "genrec/common.h"
#include "genrec/gguf.h"
#include "genrec/lm.h"

typedef struct gr_lm_save_opts {
    gr_ggml_type type;     /* GR_GGML_F32 (0, the default), GR_GGML_F16 or GR_GGML_BF16 */
    const char *name;      /* general.name, or NULL */
    int64_t step;          /* genrec.step (training steps behind these weights); < 0: not written */
    const gr_params *meta; /* "key=value" pairs stored as string keys genrec.<key>; may be NULL */
} gr_lm_save_opts;

/* Add lm's description (general.*, <arch>.*, genrec.vocab/tied, the
 * tokenizer when lm has one) and, when with_tensors is set, its weights
 * converted to type (matrices; 1-D tensors stay F32) to the builder b. F32
 * tensor data is BORROWED from lm's parameter slab: keep lm alive and
 * unchanged until gr_gguf_write() or gr_gguf_builder_free(). GR_ERR + error
 * on an unsupported type or OOM. */
int gr_lm_to_gguf(gr_lm *lm, gr_gguf_builder *b, gr_ggml_type type, int with_tensors);

/* Write lm to path as one GGUF file (see the top of this file), atomically
 * (temporary file + fsync + rename, gr_afile): a failure leaves any previous
 * file at path untouched. opts may be NULL (F32, no extra keys). GR_ERR +
 * error naming path on failure. */
int gr_lm_save(gr_lm *lm, const char *path, const gr_lm_save_opts *opts);

/* A freshly initialised model (seed 0) built from the description keys that
 * gr_lm_to_gguf writes (general.architecture, <arch>.*, genrec.vocab,
 * genrec.tied), with the tokenizer from the tokenizer.ggml.* keys when they
 * are present. Used to rebuild a model from a training checkpoint, whose
 * weights come separately. name is used in messages. NULL + error naming
 * name and the key on failure. */
gr_lm *gr_lm_from_gguf_meta(const gr_gguf *g, const char *name);

#endif
