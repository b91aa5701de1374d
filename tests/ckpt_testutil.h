/* Test helpers for the checkpoint importers (header-only, static): a tiny
 * safetensors writer, deterministic tensor values, and generators for
 * synthetic Hugging Face Llama / GPT-2 checkpoints and llama2.c files. Used by
 * test_checkpoint.c and test_checkpoint_malformed.c. */
#ifndef CKPT_TESTUTIL_H
#define CKPT_TESTUTIL_H

#include "genrec/checkpoint.h"
#include "genrec/common.h"
#include "genrec/gguf.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A value in {-1, -63/64, ..., 1} determined by (name, i): exact in F16 and
 * BF16, so conversions can be checked with ==. */
static inline float hv(const char *name, int64_t i)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = name; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    h ^= (uint64_t)i * 0x9E3779B97F4A7C15ull;
    h ^= h >> 31; h *= 0xBF58476D1CE4E5B9ull; h ^= h >> 29;
    return (float)((int)(h % 129) - 64) / 64.0f;
}

/* ---- safetensors writer ------------------------------------------------------------------ */

typedef struct stw {
    char *hdr; size_t hn, hcap;
    unsigned char *dat; size_t dn, dcap;
} stw;

static inline void stw_put(stw *w, const char *s)
{
    size_t n = strlen(s);
    if (w->hn + n + 1 > w->hcap) { w->hcap = (w->hn + n + 1) * 2; w->hdr = realloc(w->hdr, w->hcap); }
    memcpy(w->hdr + w->hn, s, n + 1);
    w->hn += n;
}

static inline void stw_init(stw *w) { memset(w, 0, sizeof *w); stw_put(w, "{\"__metadata__\":{\"format\":\"pt\"}"); }

/* Add a tensor of ndim dims with values v (converted to dtype: F32, F16, BF16, or
 * any other name, which gets 4 zero bytes per element). */
static inline void stw_add(stw *w, const char *name, const char *dtype, int ndim, const int64_t *shape, const float *v)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    size_t es = !strcmp(dtype, "F16") || !strcmp(dtype, "BF16") ? 2 : 4;
    size_t bytes = (size_t)n * es;
    if (w->dn + bytes > w->dcap) { w->dcap = (w->dn + bytes) * 2 + 64; w->dat = realloc(w->dat, w->dcap); }
    unsigned char *p = w->dat + w->dn;
    for (int64_t i = 0; i < n; i++) {
        if (!strcmp(dtype, "F32")) memcpy(p + 4 * i, &v[i], 4);
        else if (es == 2) {
            uint16_t h = !strcmp(dtype, "F16") ? gr_fp32_to_fp16(v[i]) : gr_fp32_to_bf16(v[i]);
            memcpy(p + 2 * i, &h, 2);
        } else memset(p + 4 * i, 0, 4);
    }
    char buf[512];
    int o = snprintf(buf, sizeof buf, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", name, dtype);
    for (int i = 0; i < ndim; i++) o += snprintf(buf + o, sizeof buf - (size_t)o, "%s%" PRId64, i ? "," : "", shape[i]);
    snprintf(buf + o, sizeof buf - (size_t)o, "],\"data_offsets\":[%zu,%zu]}", w->dn, w->dn + bytes);
    stw_put(w, buf);
    w->dn += bytes;
}

/* Add a tensor whose values are hv(name, i). */
static inline void stw_add_hv(stw *w, const char *name, const char *dtype, int ndim, int64_t d0, int64_t d1)
{
    int64_t shape[2] = {d0, d1}, n = d0 * (ndim == 2 ? d1 : 1);
    float *v = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) v[i] = hv(name, i);
    stw_add(w, name, dtype, ndim, shape, v);
    free(v);
}

/* The file bytes (malloc'd); frees the writer. */
static inline unsigned char *stw_finish(stw *w, size_t *len)
{
    stw_put(w, "}");
    uint64_t hl = w->hn;
    unsigned char *out = malloc(8 + w->hn + w->dn + 1);
    memcpy(out, &hl, 8);
    memcpy(out + 8, w->hdr, w->hn);
    if (w->dn) memcpy(out + 8 + w->hn, w->dat, w->dn);
    *len = 8 + w->hn + w->dn;
    free(w->hdr);
    free(w->dat);
    return out;
}

/* A raw safetensors file: header text + n data bytes (value i & 0xff). */
static inline unsigned char *st_raw(const char *header, size_t n_data, size_t *len)
{
    size_t hn = strlen(header);
    uint64_t hl = hn;
    unsigned char *out = malloc(8 + hn + n_data + 1);
    memcpy(out, &hl, 8);
    memcpy(out + 8, header, hn);
    for (size_t i = 0; i < n_data; i++) out[8 + hn + i] = (unsigned char)i;
    *len = 8 + hn + n_data;
    return out;
}

static inline int write_bytes(const char *path, const void *d, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(d, 1, n, f);
    fclose(f);
    return w == n ? 0 : -1;
}

static inline unsigned char *read_bytes(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) { free(b); b = NULL; }
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* ---- synthetic Hugging Face checkpoints ---------------------------------------------------- */

typedef struct hf_spec { int C, L, NH, KVH, F, V, T; } hf_spec;

typedef struct hf_opts {
    const char *dtype;      /* "F32" (default), "F16", "BF16" */
    int tied;               /* config tie_word_embeddings */
    int lm_head;            /* write lm_head.weight (random) */
    int lm_head_copy;       /* write lm_head.weight = embeddings */
    int no_prefix;          /* omit "model." / "transformer." */
    const char *skip;       /* a tensor name not to write */
    const char *bad_shape;  /* this tensor gets one extra row */
    const char *extra;      /* an extra tensor [4] */
    const char *extra_dtype;/* its dtype (default F32) */
} hf_opts;

static inline void hf_add(stw *w, const hf_opts *o, const char *name, int ndim, int64_t d0, int64_t d1)
{
    if (o->skip && !strcmp(o->skip, name)) return;
    if (o->bad_shape && !strcmp(o->bad_shape, name)) d0++;
    stw_add_hv(w, name, o->dtype ? o->dtype : "F32", ndim, d0, d1);
}

static inline void hf_extra(stw *w, const hf_opts *o)
{
    if (!o->extra) return;
    int64_t shape[1] = {4};
    float v[4] = {1, 2, 3, 4};
    stw_add(w, o->extra, o->extra_dtype ? o->extra_dtype : "F32", 1, shape, v);
}

/* Llama safetensors (names "model.layers.N...", values hv(name, i)). */
static inline unsigned char *make_llama_st(const hf_spec *s, const hf_opts *o, size_t *len)
{
    stw w;
    stw_init(&w);
    const char *pf = o->no_prefix ? "" : "model.";
    int64_t C = s->C, HS = C / s->NH, KV = (int64_t)s->KVH * HS;
    char nm[160];
    snprintf(nm, sizeof nm, "%sembed_tokens.weight", pf);
    hf_add(&w, o, nm, 2, s->V, C);
    for (int l = 0; l < s->L; l++) {
        static const char *const suf[] = {"input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.k_proj.weight",
            "self_attn.v_proj.weight", "self_attn.o_proj.weight", "post_attention_layernorm.weight",
            "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight"};
        int64_t d0[] = {C, C, KV, KV, C, C, s->F, s->F, C}, d1[] = {0, C, C, C, C, 0, C, C, s->F};
        for (int k = 0; k < 9; k++) {
            snprintf(nm, sizeof nm, "%slayers.%d.%s", pf, l, suf[k]);
            hf_add(&w, o, nm, d1[k] ? 2 : 1, d0[k], d1[k]);
        }
    }
    snprintf(nm, sizeof nm, "%snorm.weight", pf);
    hf_add(&w, o, nm, 1, C, 0);
    if (o->lm_head) hf_add(&w, o, "lm_head.weight", 2, s->V, C);
    if (o->lm_head_copy) {
        int64_t shape[2] = {s->V, C};
        float *v = malloc((size_t)(s->V * C) * sizeof(float));
        snprintf(nm, sizeof nm, "%sembed_tokens.weight", pf);
        for (int64_t i = 0; i < s->V * C; i++) v[i] = hv(nm, i);
        stw_add(&w, "lm_head.weight", o->dtype ? o->dtype : "F32", 2, shape, v);
        free(v);
    }
    hf_extra(&w, o);
    return stw_finish(&w, len);
}

static inline void llama_config(char *buf, size_t n, const hf_spec *s, int tied)
{
    snprintf(buf, n,
             "{\"architectures\":[\"LlamaForCausalLM\"],\"model_type\":\"llama\",\"hidden_size\":%d,"
             "\"num_hidden_layers\":%d,\"num_attention_heads\":%d,\"num_key_value_heads\":%d,"
             "\"intermediate_size\":%d,\"vocab_size\":%d,\"max_position_embeddings\":%d,\"rms_norm_eps\":1e-06,"
             "\"rope_theta\":500000.0,\"tie_word_embeddings\":%s,\"hidden_act\":\"silu\",\"rope_scaling\":null,"
             "\"torch_dtype\":\"float32\"}",
             s->C, s->L, s->NH, s->KVH, s->F, s->V, s->T, tied ? "true" : "false");
}

/* GPT-2 safetensors (Conv1D layout, names "transformer.h.N..."). */
static inline unsigned char *make_gpt2_st(const hf_spec *s, const hf_opts *o, size_t *len)
{
    stw w;
    stw_init(&w);
    const char *pf = o->no_prefix ? "" : "transformer.";
    int64_t C = s->C;
    char nm[160];
    snprintf(nm, sizeof nm, "%swte.weight", pf);
    hf_add(&w, o, nm, 2, s->V, C);
    snprintf(nm, sizeof nm, "%swpe.weight", pf);
    hf_add(&w, o, nm, 2, s->T, C);
    for (int l = 0; l < s->L; l++) {
        static const char *const suf[] = {"ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias",
            "attn.c_proj.weight", "attn.c_proj.bias", "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight",
            "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias"};
        int64_t d0[] = {C, C, C, 3 * C, C, C, C, C, C, s->F, s->F, C}, d1[] = {0, 0, 3 * C, 0, C, 0, 0, 0, s->F, 0, C, 0};
        for (int k = 0; k < 12; k++) {
            snprintf(nm, sizeof nm, "%sh.%d.%s", pf, l, suf[k]);
            hf_add(&w, o, nm, d1[k] ? 2 : 1, d0[k], d1[k]);
        }
    }
    snprintf(nm, sizeof nm, "%sln_f.weight", pf);
    hf_add(&w, o, nm, 1, C, 0);
    snprintf(nm, sizeof nm, "%sln_f.bias", pf);
    hf_add(&w, o, nm, 1, C, 0);
    if (o->lm_head) hf_add(&w, o, "lm_head.weight", 2, s->V, C);
    hf_extra(&w, o);
    return stw_finish(&w, len);
}

static inline void gpt2_config(char *buf, size_t n, const hf_spec *s)
{
    snprintf(buf, n,
             "{\"model_type\":\"gpt2\",\"activation_function\":\"gelu_new\",\"n_embd\":%d,\"n_layer\":%d,"
             "\"n_head\":%d,\"n_inner\":%d,\"vocab_size\":%d,\"n_positions\":%d,\"n_ctx\":%d,"
             "\"layer_norm_epsilon\":1e-05}",
             s->C, s->L, s->NH, s->F, s->V, s->T, s->T);
}

/* ---- synthetic llama2.c files ------------------------------------------------------------------
 * Header (dim, hidden, L, NH, NKV, vocab (negative = untied), seq); each weight array
 * "wq", ... holds hv(array name, i) over the whole (L, rows, cols) stack. */
static inline unsigned char *make_llama2c(const int32_t h[7], size_t *len)
{
    int64_t dim = h[0], hid = h[1], L = h[2], nh = h[3], nkv = h[4], V = h[5] < 0 ? -(int64_t)h[5] : h[5], seq = h[6];
    int64_t hs = dim / nh, kv = nkv * hs;
    struct { const char *name; int64_t n; } arr[] = {
        {"token_embedding_table", V * dim}, {"rms_att_weight", L * dim}, {"wq", L * dim * dim},
        {"wk", L * kv * dim}, {"wv", L * kv * dim}, {"wo", L * dim * dim}, {"rms_ffn_weight", L * dim},
        {"w1", L * hid * dim}, {"w2", L * dim * hid}, {"w3", L * hid * dim}, {"rms_final_weight", dim},
        {"freq_cis_real", seq * hs / 2}, {"freq_cis_imag", seq * hs / 2}, {"wcls", h[5] < 0 ? V * dim : 0},
    };
    int64_t total = 0;
    for (size_t a = 0; a < sizeof arr / sizeof arr[0]; a++) total += arr[a].n;
    unsigned char *out = malloc(28 + (size_t)total * 4);
    memcpy(out, h, 28);
    float *f = (float *)(out + 28);
    for (size_t a = 0; a < sizeof arr / sizeof arr[0]; a++)
        for (int64_t i = 0; i < arr[a].n; i++) *f++ = hv(arr[a].name, i);
    *len = 28 + (size_t)total * 4;
    return out;
}

#endif
