/* Pretrained checkpoint importers: llama2.c legacy .bin, Hugging Face
 * safetensors (+ config.json, GPT-2 and Llama layouts) and GGUF, all turned
 * into one in-memory form: a gr_ckpt = architecture + hyperparameters + named
 * fp32 tensors.
 *
 * Tensor names follow GGUF (llama.cpp) and shapes are in PyTorch order
 * (out, in):
 *   token_embd.weight (V, C)     position_embd.weight (max_T, C)   [GPT-2]
 *   output_norm.weight (C)       output_norm.bias (C)              [GPT-2]
 *   output.weight (V, C)         absent when the head is tied to token_embd
 *   blk.N.attn_norm.weight/bias (C)              bias: GPT-2 only
 *   blk.N.attn_q.weight (NH*HS, C), attn_k/attn_v.weight (KVH*HS, C)
 *   blk.N.attn_q/k/v.bias                        GPT-2 only
 *   blk.N.attn_output.weight (C, C) (+ .bias GPT-2)
 *   blk.N.ffn_norm.weight/bias (C)               bias: GPT-2 only
 *   blk.N.ffn_up.weight (F, C) (+ .bias GPT-2)   blk.N.ffn_gate.weight (F, C) [Llama]
 *   blk.N.ffn_down.weight (C, F) (+ .bias GPT-2)
 * GPT-2's fused Conv1D c_attn [C, 3C] is split into q|k|v and every Conv1D
 * weight is transposed from [in, out] to [out, in]; a fused GGUF attn_qkv is
 * split the same way.
 *
 * RoPE convention: every gr_ckpt uses llama2.c / GGUF's ADJACENT-PAIR layout
 * (pair (2i, 2i+1) of a head rotates together; what gr_rope_forward does).
 * Hugging Face Llama q_proj/k_proj rows are permuted for the rotate-halves
 * convention, so the HF importer un-permutes them at load exactly like
 * llama.cpp's converter: w.reshape(n_head, 2, HS/2, C).swapaxes(1, 2).
 *
 * Tied heads: a checkpoint whose output.weight is bit-identical to
 * token_embd.weight (GGUF converters store such a copy) is loaded as tied.
 *
 * Hardening: every size is checked with overflow-checked arithmetic against
 * the file length before anything is allocated or read; malformed input is
 * an error naming the file, the field or tensor, and the problem, never a
 * crash. Byte order: little-endian hosts only (as everywhere in genrec).
 */
#ifndef GENREC_CHECKPOINT_H
#define GENREC_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "genrec/gguf.h"
#include "genrec/transformer.h"

typedef enum gr_arch { GR_ARCH_GPT2 = 0, GR_ARCH_LLAMA = 1 } gr_arch;

/* Caps on hyperparameters (anything larger is rejected as absurd). */
#define GR_CKPT_MAX_LAYERS 4096
#define GR_CKPT_MAX_DIM (1 << 24)     /* d_model, d_ff, vocab, max_T, heads */
#define GR_CKPT_MAX_NAME 64           /* tensor name bytes incl. NUL */

/* One named fp32 tensor, contiguous row-major, PyTorch shape order. */
typedef struct gr_ckpt_tensor {
    char name[GR_CKPT_MAX_NAME];
    int ndim;                 /* 1 or 2 */
    int64_t shape[4];         /* unused dims = 1 */
    int64_t n;                /* elements */
    float *data;              /* owned by the gr_ckpt (gr_alloc) */
} gr_ckpt_tensor;

typedef struct gr_ckpt {
    gr_arch arch;
    int n_layer;
    int d_model;              /* C */
    int n_head;               /* NH; head size HS = C / NH */
    int n_kv_head;            /* KVH (== n_head for GPT-2) */
    int d_ff;                 /* F */
    int vocab;                /* V */
    int max_T;                /* context length the checkpoint declares */
    float norm_eps;           /* LayerNorm / RMSNorm epsilon */
    float rope_theta;         /* Llama RoPE base (GPT-2: 0); pairs are adjacent (see top) */
    int tied;                 /* 1: no output.weight, the head is token_embd */
    const char *format;       /* "llama2c", "safetensors" or "gguf" (static) */
    int n_tensors;
    gr_ckpt_tensor *tensors;  /* canonical order: token_embd, position_embd,
                                 blk.0.* ... blk.L-1.*, output_norm.*, output */
} gr_ckpt;

/* "gpt2" / "llama" ("?" when unknown). */
const char *gr_arch_name(gr_arch a);

/* Load a checkpoint, detecting its format: a file starting with the GGUF
 * magic; a directory holding model.safetensors + config.json, or a
 * *.safetensors file (config.json next to it); a *.bin file (llama2.c legacy
 * format). Returns a checkpoint the caller frees with gr_ckpt_free, or NULL
 * with an error naming the path and the problem. */
gr_ckpt *gr_ckpt_load(const char *path);

/* llama2.c legacy (version 0) .bin: 7 x int32 header (dim, hidden_dim,
 * n_layers, n_heads, n_kv_heads, vocab_size (< 0: an untied classifier
 * follows), seq_len), then fp32 weights. The file size must be exactly what
 * the header implies. RMSNorm eps 1e-5, RoPE theta 10000 (llama2.c's
 * constants). The _memory variant reads a caller's buffer (copied; `name`
 * is used in messages). NULL + error on failure. */
gr_ckpt *gr_ckpt_load_llama2c(const char *path);
gr_ckpt *gr_ckpt_load_llama2c_memory(const void *data, size_t size, const char *name);

/* Hugging Face safetensors + config.json (model_type "gpt2" or "llama").
 * GPT-2 names may carry the "transformer." prefix and Llama names the
 * "model." prefix; F32/F16/BF16/F64 tensors are converted to fp32. Unknown
 * tensors (other than the known non-weight buffers attn.bias,
 * attn.masked_bias, rotary_emb.inv_freq), missing tensors and shape
 * mismatches are errors naming the tensor. config_path NULL means
 * "config.json" in st_path's directory. The _memory variant takes both files'
 * bytes (neither is kept). NULL + error on failure. */
gr_ckpt *gr_ckpt_load_safetensors(const char *st_path, const char *config_path);
gr_ckpt *gr_ckpt_load_safetensors_memory(const void *st, size_t st_size, const char *config,
                                         size_t config_len, const char *name);

/* GGUF with general.architecture "llama" or "gpt2" and llama.cpp's key and
 * tensor names; F32/F16/BF16/Q8_0 tensors are converted to fp32 (other types
 * are an error). gr_ckpt_from_gguf reads an already open file (not kept).
 * NULL + error on failure. */
gr_ckpt *gr_ckpt_load_gguf(const char *path);
gr_ckpt *gr_ckpt_from_gguf(const gr_gguf *g, const char *name);

/* Free a checkpoint and its tensors (NULL is fine). */
void gr_ckpt_free(gr_ckpt *ck);

/* The tensor called name, or NULL (no error recorded) when absent. Owned by
 * ck. */
const gr_ckpt_tensor *gr_ckpt_find(const gr_ckpt *ck, const char *name);

/* Fill a transformer config for ck's architecture (GPT-2: LayerNorm, GELU
 * tanh, learned positions, biases; Llama: RMSNorm, SwiGLU, RoPE, no biases;
 * both with a final norm, dropout 0). The tensors named in ck then match the
 * transformer's parameter views, except position_embd.weight which the
 * transformer calls "pos_embd", and token_embd/output which live in the
 * caller. */
void gr_ckpt_tfm_config(const gr_ckpt *ck, gr_tfm_config *cfg);

/* ---- safetensors reader ----------------------------------------------------------------
 * Layout: u64 little-endian header length N (<= GR_ST_MAX_HEADER), N bytes of
 * JSON {"name": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}, ...,
 * "__metadata__": {"k": "v"}}, then the data region; offsets are relative to
 * it. Checked: header inside the file, a JSON object, known dtypes, 0..8
 * dims each >= 1, element count * dtype size == e - b without overflow,
 * b <= e <= data size, no two tensors overlapping, no duplicate or empty
 * names, metadata values strings. */
#define GR_ST_MAX_HEADER ((uint64_t)100 << 20)
#define GR_ST_MAX_DIMS 8

typedef enum gr_st_dtype {
    GR_ST_BOOL = 0, GR_ST_U8, GR_ST_I8, GR_ST_F8_E5M2, GR_ST_F8_E4M3, GR_ST_I16, GR_ST_U16,
    GR_ST_F16, GR_ST_BF16, GR_ST_I32, GR_ST_U32, GR_ST_F32, GR_ST_F64, GR_ST_I64, GR_ST_U64,
    GR_ST_DTYPE_COUNT
} gr_st_dtype;

typedef struct gr_st_tensor {
    const char *name;        /* NUL-terminated, owned by the gr_st */
    gr_st_dtype dtype;
    int ndim;
    int64_t shape[GR_ST_MAX_DIMS];
    int64_t n;               /* elements (1 for a 0-dim scalar) */
    uint64_t begin, end;     /* data_offsets */
    const void *data;        /* begin bytes into the data region; may be unaligned */
} gr_st_tensor;

typedef struct gr_st gr_st;

/* Name ("F32", ...) and element size in bytes of a dtype ("?"/0 if unknown). */
const char *gr_st_dtype_name(gr_st_dtype t);
size_t gr_st_dtype_size(gr_st_dtype t);

/* Open and validate a safetensors file (mmap'd read-only) or a caller's
 * buffer (which must outlive the gr_st: tensor data points into it). `name`
 * prefixes messages. NULL + error "name: header: tensor 'x': field 'y':
 * problem" on failure. Free with gr_st_close. */
gr_st *gr_st_open(const char *path);
gr_st *gr_st_open_memory(const void *data, size_t size, const char *name);
void gr_st_close(gr_st *st);

/* Tensors in header order; i out of range gives NULL. */
int64_t gr_st_n_tensors(const gr_st *st);
const gr_st_tensor *gr_st_tensor_at(const gr_st *st, int64_t i);
/* The tensor called name, or NULL (no error recorded). */
const gr_st_tensor *gr_st_find(const gr_st *st, const char *name);
/* A "__metadata__" string value, or NULL when absent. */
const char *gr_st_metadata(const gr_st *st, const char *key);
/* Convert t's n elements to fp32 into dst (F32, F16, BF16, F64; reads
 * unaligned data safely). GR_ERR + error naming the tensor for other dtypes. */
int gr_st_to_f32(const gr_st_tensor *t, float *dst);

#endif
