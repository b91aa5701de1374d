/* Hugging Face checkpoints: config.json (model_type "gpt2" or "llama") +
 * model.safetensors, mapped to GGUF-style names. GPT-2 Conv1D weights
 * ([in, out]) are transposed and c_attn is split into q|k|v; Llama q/k rows
 * are un-permuted from rotate-halves to adjacent-pair RoPE order. */
#include "checkpoint_internal.h"

#include "genrec/common.h"
#include "genrec/json.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- config.json ----------------------------------------------------------------------- */

typedef struct cfg_ctx { const gr_json *root; const char *name; } cfg_ctx;

static int present(const gr_json *v) { return v && v->type != GR_JSON_NULL; }

/* Integer field (1..INT_MAX); absent/null gives def, or an error if def < 0. */
static int cfg_int(const cfg_ctx *c, const char *key, int64_t def, int *out)
{
    const gr_json *v = gr_json_get(c->root, key);
    if (!present(v)) {
        if (def < 0) return gr_errorf("%s: field '%s' is missing", c->name, key);
        *out = (int)def;
        return GR_OK;
    }
    if (v->type != GR_JSON_NUMBER || !v->u.num.is_int)
        return gr_errorf("%s: field '%s' must be an integer", c->name, key);
    if (v->u.num.i < 1 || v->u.num.i > INT_MAX)
        return gr_errorf("%s: field '%s' = %" PRId64 ": must be in [1, %d]", c->name, key, v->u.num.i, INT_MAX);
    *out = (int)v->u.num.i;
    return GR_OK;
}

static int cfg_float(const cfg_ctx *c, const char *key, double def, float *out)
{
    const gr_json *v = gr_json_get(c->root, key);
    if (!present(v)) { *out = (float)def; return GR_OK; }
    if (v->type != GR_JSON_NUMBER) return gr_errorf("%s: field '%s' must be a number", c->name, key);
    double d = v->u.num.d;
    if (!(d > 0.0 && d < 1e30)) return gr_errorf("%s: field '%s' = %g: must be in (0, 1e30)", c->name, key, d);
    *out = (float)d;
    return GR_OK;
}

static int cfg_bool(const cfg_ctx *c, const char *key, int def, int *out)
{
    const gr_json *v = gr_json_get(c->root, key);
    if (!present(v)) { *out = def; return GR_OK; }
    if (v->type != GR_JSON_BOOL) return gr_errorf("%s: field '%s' must be true or false", c->name, key);
    *out = v->u.boolean;
    return GR_OK;
}

/* A string field that must be one of the allowed values (absent is fine). */
static int cfg_oneof(const cfg_ctx *c, const char *key, const char *const *allowed, const char *why)
{
    const gr_json *v = gr_json_get(c->root, key);
    if (!present(v)) return GR_OK;
    const char *s = gr_json_str(v);
    for (int i = 0; s && allowed[i]; i++)
        if (!strcmp(s, allowed[i])) return GR_OK;
    return gr_errorf("%s: field '%s' = %s%.40s%s: %s", c->name, key, s ? "'" : "", s ? s : "(not a string)",
                     s ? "'" : "", why);
}

static int parse_config(const cfg_ctx *c, gr_ckpt *hp)
{
    if (c->root->type != GR_JSON_OBJECT) return gr_errorf("%s: not a JSON object", c->name);
    const char *mt = gr_json_str(gr_json_get(c->root, "model_type"));
    if (!mt) return gr_errorf("%s: field 'model_type' is missing or not a string", c->name);
    memset(hp, 0, sizeof *hp);
    if (!strcmp(mt, "gpt2")) {
        static const char *const acts[] = {"gelu_new", "gelu_pytorch_tanh", "gelu_fast", NULL};
        hp->arch = GR_ARCH_GPT2;
        int n_ctx = 0;
        if (cfg_int(c, "n_embd", -1, &hp->d_model) || cfg_int(c, "n_layer", -1, &hp->n_layer) ||
            cfg_int(c, "n_head", -1, &hp->n_head) || cfg_int(c, "vocab_size", -1, &hp->vocab) ||
            cfg_int(c, "n_ctx", 1024, &n_ctx) || cfg_int(c, "n_positions", n_ctx, &hp->max_T) ||
            cfg_float(c, "layer_norm_epsilon", 1e-5, &hp->norm_eps) || cfg_bool(c, "tie_word_embeddings", 1, &hp->tied) ||
            cfg_oneof(c, "activation_function", acts, "only the tanh GELU (gelu_new) is supported"))
            return GR_ERR;
        if (hp->d_model > INT_MAX / 4) return gr_errorf("%s: field 'n_embd' = %d is too large", c->name, hp->d_model);
        if (cfg_int(c, "n_inner", 4 * (int64_t)hp->d_model, &hp->d_ff)) return GR_ERR;
        hp->n_kv_head = hp->n_head;
        return GR_OK;
    }
    if (!strcmp(mt, "llama")) {
        static const char *const acts[] = {"silu", NULL};
        hp->arch = GR_ARCH_LLAMA;
        if (cfg_int(c, "hidden_size", -1, &hp->d_model) || cfg_int(c, "num_hidden_layers", -1, &hp->n_layer) ||
            cfg_int(c, "num_attention_heads", -1, &hp->n_head) ||
            cfg_int(c, "num_key_value_heads", hp->n_head, &hp->n_kv_head) ||
            cfg_int(c, "intermediate_size", -1, &hp->d_ff) || cfg_int(c, "vocab_size", -1, &hp->vocab) ||
            cfg_int(c, "max_position_embeddings", -1, &hp->max_T) ||
            cfg_float(c, "rms_norm_eps", 1e-6, &hp->norm_eps) || cfg_float(c, "rope_theta", 10000.0, &hp->rope_theta) ||
            cfg_bool(c, "tie_word_embeddings", 0, &hp->tied) ||
            cfg_oneof(c, "hidden_act", acts, "only SwiGLU (silu) is supported"))
            return GR_ERR;
        int flag;
        if (cfg_bool(c, "attention_bias", 0, &flag)) return GR_ERR;
        if (flag) return gr_errorf("%s: field 'attention_bias' = true: attention biases are not supported", c->name);
        if (cfg_bool(c, "mlp_bias", 0, &flag)) return GR_ERR;
        if (flag) return gr_errorf("%s: field 'mlp_bias' = true: MLP biases are not supported", c->name);
        if (present(gr_json_get(c->root, "rope_scaling")))
            return gr_errorf("%s: field 'rope_scaling': RoPE scaling is not supported", c->name);
        int hd;
        if (present(gr_json_get(c->root, "head_dim"))) {
            if (cfg_int(c, "head_dim", -1, &hd)) return GR_ERR;
            if ((int64_t)hd * hp->n_head != hp->d_model)
                return gr_errorf("%s: field 'head_dim' = %d: must equal hidden_size / num_attention_heads", c->name, hd);
        }
        return GR_OK;
    }
    return gr_errorf("%s: field 'model_type' = '%.40s': only \"gpt2\" and \"llama\" are supported", c->name, mt);
}

/* ---- tensor mapping -------------------------------------------------------------------- */

typedef struct hf_ctx {
    ckpt_builder *b;
    const char *name;
    float *tmp;        /* scratch for a converted source tensor */
    int64_t tmp_n;
} hf_ctx;

/* Convert t into scratch (grown as needed). */
static float *to_tmp(hf_ctx *h, const gr_st_tensor *t)
{
    if (t->n > h->tmp_n) {
        gr_free(h->tmp);
        h->tmp_n = 0;
        if (!(h->tmp = gr_alloc((size_t)t->n, sizeof(float)))) return NULL;
        h->tmp_n = t->n;
    }
    if (gr_st_to_f32(t, h->tmp)) { gr_error_prefix("%s: ", h->name); return NULL; }
    return h->tmp;
}

/* A source dtype that is not convertible is an error before anything else. */
static int check_dtype(hf_ctx *h, const gr_st_tensor *t)
{
    gr_st_dtype d = t->dtype;
    if (d == GR_ST_F32 || d == GR_ST_F16 || d == GR_ST_BF16 || d == GR_ST_F64) return GR_OK;
    return gr_errorf("%s: tensor '%s': dtype %s is not a float type (F32, F16, BF16, F64)", h->name, t->name,
                     gr_st_dtype_name(d));
}

static int direct(hf_ctx *h, const gr_st_tensor *t, const char *gg)
{
    float *dst = ckb_add(h->b, gg, t->ndim, t->shape, t->name);
    if (!dst) return GR_ERR;
    if (gr_st_to_f32(t, dst)) return gr_error_prefix("%s: ", h->name);
    return GR_OK;
}

/* Conv1D weight [in, out] -> [out, in]. */
static int transpose(hf_ctx *h, const gr_st_tensor *t, const char *gg)
{
    int64_t sh[2] = {t->ndim == 2 ? t->shape[1] : 0, t->ndim == 2 ? t->shape[0] : 0};
    if (t->ndim != 2)
        return gr_errorf("%s: tensor '%s' (Conv1D -> %s): %d dims, expected 2", h->name, t->name, gg, t->ndim);
    float *dst = ckb_add(h->b, gg, 2, sh, t->name);
    const float *src = dst ? to_tmp(h, t) : NULL;
    if (!src) return GR_ERR;
    int64_t in = t->shape[0], out = t->shape[1];
    for (int64_t o = 0; o < out; o++)
        for (int64_t i = 0; i < in; i++) dst[o * in + i] = src[i * out + o];
    return GR_OK;
}

/* GPT-2 c_attn: weight [C, 3C] (Conv1D) or bias [3C] -> q|k|v. */
static int split_qkv(hf_ctx *h, const gr_st_tensor *t, int layer, int is_bias)
{
    int64_t C = h->b->ck->d_model;
    int ok = is_bias ? t->ndim == 1 && t->shape[0] == 3 * C : t->ndim == 2 && t->shape[0] == C && t->shape[1] == 3 * C;
    if (!ok)
        return gr_errorf("%s: tensor '%s': shape does not match %s (n_embd %" PRId64 ")", h->name, t->name,
                         is_bias ? "[3*n_embd]" : "[n_embd, 3*n_embd]", C);
    const float *src = to_tmp(h, t);
    if (!src) return GR_ERR;
    static const char *const part[3] = {"attn_q", "attn_k", "attn_v"};
    for (int p = 0; p < 3; p++) {
        char gg[GR_CKPT_MAX_NAME];
        snprintf(gg, sizeof gg, "blk.%d.%s.%s", layer, part[p], is_bias ? "bias" : "weight");
        int64_t sh[2] = {C, C};
        float *dst = ckb_add(h->b, gg, is_bias ? 1 : 2, sh, t->name);
        if (!dst) return GR_ERR;
        if (is_bias) memcpy(dst, src + p * C, (size_t)C * sizeof(float));
        else
            for (int64_t o = 0; o < C; o++)
                for (int64_t i = 0; i < C; i++) dst[o * C + i] = src[i * 3 * C + p * C + o];
    }
    return GR_OK;
}

/* Llama q_proj/k_proj: un-permute rows to adjacent-pair RoPE order. */
static int unpermute(hf_ctx *h, const gr_st_tensor *t, const char *gg, int n_heads)
{
    float *dst = ckb_add(h->b, gg, t->ndim, t->shape, t->name);
    const float *src = dst ? to_tmp(h, t) : NULL;
    if (!src) return GR_ERR;
    const gr_ckpt *ck = h->b->ck;
    ckpt_unpermute_rows(dst, src, n_heads, ck->d_model / ck->n_head, t->shape[1]);
    return GR_OK;
}

/* "N.rest" with N a layer index < L (no sign, no leading zeros). */
static int layer_prefix(const char *s, int L, int *layer, const char **rest)
{
    if (*s < '0' || *s > '9' || (s[0] == '0' && s[1] != '.')) return 0;
    long l = 0;
    for (; *s >= '0' && *s <= '9'; s++)
        if ((l = l * 10 + (*s - '0')) > INT_MAX) return 0;
    if (*s != '.') return 0;
    *layer = (int)l;
    *rest = s + 1;
    return l < L;
}

static int unknown(hf_ctx *h, const gr_st_tensor *t)
{
    return gr_errorf("%s: tensor '%s': unknown name for a %s checkpoint with %d layers", h->name, t->name,
                     gr_arch_name(h->b->ck->arch), h->b->ck->n_layer);
}

static int map_gpt2(hf_ctx *h, const gr_st_tensor *t)
{
    const char *n = t->name;
    int tied = h->b->ck->tied;
    if (!strcmp(n, "lm_head.weight")) return tied ? GR_OK : direct(h, t, "output.weight");
    if (!strncmp(n, "transformer.", 12)) n += 12;
    if (!strcmp(n, "wte.weight")) return direct(h, t, "token_embd.weight");
    if (!strcmp(n, "wpe.weight")) return direct(h, t, "position_embd.weight");
    if (!strcmp(n, "ln_f.weight")) return direct(h, t, "output_norm.weight");
    if (!strcmp(n, "ln_f.bias")) return direct(h, t, "output_norm.bias");
    int l;
    const char *r;
    if (strncmp(n, "h.", 2) || !layer_prefix(n + 2, h->b->ck->n_layer, &l, &r)) return unknown(h, t);
    static const struct { const char *hf, *gg; int op; } map[] = {
        {"ln_1.weight", "attn_norm.weight", 0}, {"ln_1.bias", "attn_norm.bias", 0},
        {"ln_2.weight", "ffn_norm.weight", 0},  {"ln_2.bias", "ffn_norm.bias", 0},
        {"attn.c_proj.weight", "attn_output.weight", 1}, {"attn.c_proj.bias", "attn_output.bias", 0},
        {"mlp.c_fc.weight", "ffn_up.weight", 1}, {"mlp.c_fc.bias", "ffn_up.bias", 0},
        {"mlp.c_proj.weight", "ffn_down.weight", 1}, {"mlp.c_proj.bias", "ffn_down.bias", 0},
        {"attn.c_attn.weight", NULL, 2}, {"attn.c_attn.bias", NULL, 3},
        {"attn.bias", NULL, 4}, {"attn.masked_bias", NULL, 4},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        if (strcmp(r, map[i].hf)) continue;
        char gg[GR_CKPT_MAX_NAME];
        if (map[i].gg) snprintf(gg, sizeof gg, "blk.%d.%s", l, map[i].gg);
        switch (map[i].op) {
        case 0: return direct(h, t, gg);
        case 1: return transpose(h, t, gg);
        case 2: return split_qkv(h, t, l, 0);
        case 3: return split_qkv(h, t, l, 1);
        default: return GR_OK; /* causal-mask buffers, not weights */
        }
    }
    return unknown(h, t);
}

static int map_llama(hf_ctx *h, const gr_st_tensor *t)
{
    const char *n = t->name;
    const gr_ckpt *ck = h->b->ck;
    if (!strcmp(n, "lm_head.weight")) return ck->tied ? GR_OK : direct(h, t, "output.weight");
    if (!strncmp(n, "model.", 6)) n += 6;
    if (!strcmp(n, "embed_tokens.weight")) return direct(h, t, "token_embd.weight");
    if (!strcmp(n, "norm.weight")) return direct(h, t, "output_norm.weight");
    int l;
    const char *r;
    if (strncmp(n, "layers.", 7) || !layer_prefix(n + 7, ck->n_layer, &l, &r)) return unknown(h, t);
    static const struct { const char *hf, *gg; int op; } map[] = {
        {"input_layernorm.weight", "attn_norm.weight", 0}, {"post_attention_layernorm.weight", "ffn_norm.weight", 0},
        {"self_attn.q_proj.weight", "attn_q.weight", 1},   {"self_attn.k_proj.weight", "attn_k.weight", 2},
        {"self_attn.v_proj.weight", "attn_v.weight", 0},   {"self_attn.o_proj.weight", "attn_output.weight", 0},
        {"mlp.gate_proj.weight", "ffn_gate.weight", 0},    {"mlp.up_proj.weight", "ffn_up.weight", 0},
        {"mlp.down_proj.weight", "ffn_down.weight", 0},    {"self_attn.rotary_emb.inv_freq", NULL, 3},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        if (strcmp(r, map[i].hf)) continue;
        char gg[GR_CKPT_MAX_NAME];
        if (map[i].gg) snprintf(gg, sizeof gg, "blk.%d.%s", l, map[i].gg);
        switch (map[i].op) {
        case 0: return direct(h, t, gg);
        case 1: return unpermute(h, t, gg, ck->n_head);
        case 2: return unpermute(h, t, gg, ck->n_kv_head);
        default: return GR_OK; /* a RoPE buffer, recomputed by the engine */
        }
    }
    return unknown(h, t);
}

/* HF names for "missing tensor" messages. */
static void hint_hf(const gr_ckpt *ck, const char *gg, char *buf, size_t n)
{
    int l = -1;
    const char *r = gg;
    if (!strncmp(gg, "blk.", 4)) {
        l = atoi(gg + 4);
        r = strchr(gg + 4, '.');
        r = r ? r + 1 : gg;
    }
    static const char *const tab[][3] = {
        {"token_embd.weight", "transformer.wte.weight", "model.embed_tokens.weight"},
        {"position_embd.weight", "transformer.wpe.weight", ""},
        {"output_norm.weight", "transformer.ln_f.weight", "model.norm.weight"},
        {"output_norm.bias", "transformer.ln_f.bias", ""},
        {"output.weight", "lm_head.weight", "lm_head.weight"},
        {"attn_norm.weight", "ln_1.weight", "input_layernorm.weight"}, {"attn_norm.bias", "ln_1.bias", ""},
        {"attn_q.weight", "attn.c_attn.weight", "self_attn.q_proj.weight"},
        {"attn_k.weight", "attn.c_attn.weight", "self_attn.k_proj.weight"},
        {"attn_v.weight", "attn.c_attn.weight", "self_attn.v_proj.weight"},
        {"attn_q.bias", "attn.c_attn.bias", ""}, {"attn_k.bias", "attn.c_attn.bias", ""},
        {"attn_v.bias", "attn.c_attn.bias", ""},
        {"attn_output.weight", "attn.c_proj.weight", "self_attn.o_proj.weight"},
        {"attn_output.bias", "attn.c_proj.bias", ""},
        {"ffn_norm.weight", "ln_2.weight", "post_attention_layernorm.weight"}, {"ffn_norm.bias", "ln_2.bias", ""},
        {"ffn_up.weight", "mlp.c_fc.weight", "mlp.up_proj.weight"}, {"ffn_up.bias", "mlp.c_fc.bias", ""},
        {"ffn_gate.weight", "", "mlp.gate_proj.weight"},
        {"ffn_down.weight", "mlp.c_proj.weight", "mlp.down_proj.weight"}, {"ffn_down.bias", "mlp.c_proj.bias", ""},
    };
    int col = ck->arch == GR_ARCH_GPT2 ? 1 : 2;
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++) {
        if (strcmp(tab[i][0], r) || !tab[i][col][0]) continue;
        if (l < 0) snprintf(buf, n, "%s", tab[i][col]);
        else if (col == 1) snprintf(buf, n, "transformer.h.%d.%s", l, tab[i][col]);
        else snprintf(buf, n, "model.layers.%d.%s", l, tab[i][col]);
        return;
    }
}

/* ---- entry points -------------------------------------------------------------------- */

static gr_ckpt *load_hf(const void *st_data, size_t st_size, const char *st_name, const char *cfg_data,
                        size_t cfg_len, const char *cfg_name)
{
    gr_json_doc *doc = gr_json_parse(cfg_data, cfg_len, cfg_name);
    if (!doc) return NULL;
    cfg_ctx c = {gr_json_root(doc), cfg_name};
    gr_ckpt hp;
    int rc = parse_config(&c, &hp);
    gr_json_free(doc);
    if (rc) return NULL;
    gr_st *st = gr_st_open_memory(st_data, st_size, st_name);
    if (!st) return NULL;
    ckpt_builder b;
    if (ckb_init(&b, &hp, "safetensors", st_name)) {
        gr_error_prefix("%s: ", cfg_name);
        gr_st_close(st);
        return NULL;
    }
    b.hint = hint_hf;
    hf_ctx h = {&b, st_name, NULL, 0};
    rc = GR_OK;
    for (int64_t i = 0; i < gr_st_n_tensors(st) && !rc; i++) {
        const gr_st_tensor *t = gr_st_tensor_at(st, i);
        rc = check_dtype(&h, t) || (hp.arch == GR_ARCH_GPT2 ? map_gpt2(&h, t) : map_llama(&h, t));
    }
    gr_free(h.tmp);
    gr_st_close(st);
    if (rc) { ckb_abort(&b); return NULL; }
    return ckb_finish(&b);
}

gr_ckpt *gr_ckpt_load_safetensors_memory(const void *st, size_t st_size, const char *config, size_t config_len,
                                         const char *name)
{
    if (!name) name = "<safetensors>";
    char cfg_name[512];
    snprintf(cfg_name, sizeof cfg_name, "%s: config.json", name);
    return load_hf(st, st_size, name, config ? config : "", config ? config_len : 0, cfg_name);
}

gr_ckpt *gr_ckpt_load_safetensors(const char *st_path, const char *config_path)
{
    char *own = NULL;
    if (!config_path) {
        char *dir = gr_path_dir(st_path);
        own = dir ? gr_path_join(dir, "config.json") : NULL;
        free(dir);
        if (!own) return NULL;
        config_path = own;
    }
    size_t cfg_len;
    char *cfg = gr_read_file(config_path, (size_t)16 << 20, &cfg_len);
    ckpt_map sm;
    gr_ckpt *ck = NULL;
    if (cfg && !ckpt_map_file(st_path, &sm)) {
        ck = load_hf(sm.data, sm.size, st_path, cfg, cfg_len, config_path);
        ckpt_unmap(&sm);
    }
    gr_free(cfg);
    free(own);
    return ck;
}
