/* Internal helpers shared by the checkpoint importers (llama2c.c,
 * safetensors.c, ckpt_hf.c, ckpt_gguf.c, checkpoint.c). Not public API. */
#ifndef GENREC_CHECKPOINT_INTERNAL_H
#define GENREC_CHECKPOINT_INTERNAL_H

#include "genrec/checkpoint.h"

#include <stddef.h>
#include <stdint.h>

/* A whole file, read-only: mmap'd, or read into the heap when mmap fails. */
typedef struct ckpt_map {
    const void *data;
    size_t size;
    void *map;    /* munmap on release */
    void *heap;   /* gr_free on release */
} ckpt_map;

/* Map path (a regular file). GR_ERR + "path: cannot open: ..." on failure. */
int ckpt_map_file(const char *path, ckpt_map *m);
void ckpt_unmap(ckpt_map *m);

/* Builds a gr_ckpt from tensors arriving in any order. Every tensor gets a
 * slot from its canonical name, so duplicates, tensors the architecture does
 * not have, wrong shapes and missing tensors are all caught here. */
typedef struct ckpt_builder {
    gr_ckpt *ck;            /* hyperparameters filled by the importer */
    gr_ckpt_tensor *slots;  /* n_slots; data == NULL while absent */
    int n_slots;
    const char *name;       /* file name for messages (borrowed) */
    /* Optional: write the source format's name of canonical tensor gg into
     * buf (used in "missing tensor" messages). */
    void (*hint)(const gr_ckpt *ck, const char *gg, char *buf, size_t n);
} ckpt_builder;

/* Validate the hyperparameters in *hp (arch, n_layer, d_model, n_head,
 * n_kv_head, d_ff, vocab, max_T, norm_eps, rope_theta, tied) and start a
 * builder that owns a copy of them. GR_ERR + "name: field 'x' ..." on a bad
 * value. */
int ckb_init(ckpt_builder *b, const gr_ckpt *hp, const char *format, const char *name);

/* Expected shape of the canonical tensor gg_name for this architecture:
 * returns its ndim (1 or 2) and fills shape, or 0 when the architecture has no
 * such tensor (or the name is not canonical). */
int ckb_expected(const ckpt_builder *b, const char *gg_name, int64_t shape[2]);

/* Add the tensor gg_name with the given (already transformed) PyTorch shape;
 * src names where it came from (for messages). Returns a buffer of the
 * shape's element count for the caller to fill, owned by the builder. NULL +
 * error on an unexpected name, a duplicate, a shape mismatch or OOM. */
float *ckb_add(ckpt_builder *b, const char *gg_name, int ndim, const int64_t *shape, const char *src);

/* 1 when gg_name was added already. */
int ckb_has(const ckpt_builder *b, const char *gg_name);

/* Check every expected tensor is present (error naming the first missing
 * one), fold an output.weight identical to token_embd.weight into a tied
 * head, and return the checkpoint (the builder is emptied). NULL + error on
 * failure; the builder is released either way. */
gr_ckpt *ckb_finish(ckpt_builder *b);

/* Release a builder that will not be finished (safe after ckb_finish). */
void ckb_abort(ckpt_builder *b);

/* Un-permute a Hugging Face Llama q/k weight (rows = n_heads * HS, cols) from
 * the rotate-halves layout to adjacent pairs: dst row h*HS + 2i + j = src row
 * h*HS + j*HS/2 + i. HS must be even. */
void ckpt_unpermute_rows(float *dst, const float *src, int n_heads, int HS, int64_t cols);

#endif
