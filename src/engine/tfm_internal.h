/* Internals of the transformer engine shared by its source files
 * (transformer.c: layout, forward/backward; the cached decoding and LoRA
 * files). Not a public header: everything outside src/engine uses
 * genrec/transformer.h. */
#ifndef GENREC_TFM_INTERNAL_H
#define GENREC_TFM_INTERNAL_H
#include "genrec/transformer.h"

typedef struct tfm_layer {      /* pointers into the param (or grad) slab */
    float *attn_norm_w, *attn_norm_b, *wqkv, *bqkv, *wo, *bo;
    float *ffn_norm_w, *ffn_norm_b, *wup, *bup, *wdown, *bdown;
} tfm_layer;

typedef struct tfm_acts {       /* one layer's activations */
    float *ln1, *ln1_mean, *ln1_rstd, *qkv, *att, *atty, *res_mid;
    float *ln2, *ln2_mean, *ln2_rstd, *fch, *fact, *res_out;
    uint8_t *mask_attn, *mask_ffn;
} tfm_acts;

struct gr_tfm {
    gr_tfm_config cfg;
    int C, NH, KVH, HS, F, QKV, FW;
    int64_t n_params;
    float *params, *grads;
    tfm_layer *lp, *lg;         /* per-layer views of params / grads */
    float *pos_embd, *out_norm_w, *out_norm_b;
    float *g_pos_embd, *g_out_norm_w, *g_out_norm_b;
    float *tok_embd, *head, *g_tok_embd, *g_head; /* vocab > 0 (head == tok_embd when tied) */
    gr_tfm_param_view *views;
    int n_views;
    char *names;
    float *rope_cs;             /* (max_T, HS/2, 2) */
    /* activations: capacity in tokens and layer slots; att per slot */
    int64_t cap_N;
    int cap_slots;
    size_t cap_att;             /* floats per slot */
    float *act_mem, *att_mem, *scratch;
    uint8_t *mask_mem;
    size_t cap_scratch;
    tfm_acts *acts;             /* cap_slots entries */
    float *x0, *lnf, *lnf_mean, *lnf_rstd, *branch;
    uint8_t *mask0;
    /* backward buffers (allocated with the activations) */
    float *dres, *dA, *dqkv, *dfch, *dfact, *dbranch;
    /* the last forward */
    int N, n_seq, cap_seq, cap_pos, train_ready;
    int32_t *pos, *seq_off;
    /* LoRA (lora.c): the attached adapter set or NULL, and the frozen flag
     * (backward computes no base-parameter gradient). Neither changes
     * anything when NULL / 0. */
    struct gr_lora *lora;
    int frozen;
};

/* Threads for a pass of N tokens over every layer of m (par.h's one region
 * per pass), att_work = one layer's attention work (multiply-adds). */
int tfm_pass_threads(const gr_tfm *m, int64_t N, double att_work);

/* ---- LoRA hooks (lora.c), called by transformer.c only when m->lora ------
 * A site is one base linear layer of a block whose output holds the rows of
 * one or more targets: QKV (ln1 -> qkv, q|k|v rows), O (atty -> branch), UP
 * (ln2 -> fch, up|gate rows), DOWN (fact -> branch). */
enum { TFM_SITE_QKV = 0, TFM_SITE_O, TFM_SITE_UP, TFM_SITE_DOWN, TFM_N_SITES };
/* Grow the adapters' activation buffers to N tokens. GR_ERR on OOM. */
int tfm_lora_reserve(gr_tfm *m, int64_t N);
/* out (N, site width) += scale * B (A inp) for the site's targets; with
 * train keep A inp for backward (layer l's own buffer; else a shared one). */
void tfm_lora_forward(gr_tfm *m, int l, int site, const float *inp, float *out, int N, int train);
/* Backward of the site's adapters: dA, dB accumulated into the adapter grad
 * slab, dinp (N, in) += the adapters' input gradient. */
void tfm_lora_backward(gr_tfm *m, int l, int site, const float *inp, const float *dout,
                       float *dinp, int N);
/* The hooks are collective (par.h): inside a pass every thread of its team
 * calls them, and their GEMMs are shared by the team. */
/* Free an adapter set (NULL is fine). */
void tfm_lora_free(struct gr_lora *lo);

#endif
