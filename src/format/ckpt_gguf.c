/* GGUF checkpoints (llama.cpp conventions) -> gr_ckpt: the llama / gpt2
 * metadata keys, tensors converted to fp32 with shapes reversed from ggml's
 * ne order, a fused attn_qkv split into q|k|v. */
#include "checkpoint_internal.h"

#include "genrec/common.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

typedef struct gg_ctx { const gr_gguf *g; const char *name; const char *arch; } gg_ctx;

/* "<arch>.<suffix>" as an int in [1, INT_MAX]; absent gives def (or an error
 * when def < 0). */
static int key_int(const gg_ctx *c, const char *suffix, int64_t def, int *out)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", c->arch, suffix);
    if (!gr_gguf_find(c->g, key)) {
        if (def < 0) return gr_errorf("%s: field '%s' is missing", c->name, key);
        *out = (int)def;
        return GR_OK;
    }
    int64_t v;
    if (gr_gguf_get_int(c->g, key, &v)) return gr_error_prefix("%s: ", c->name);
    if (v < 1 || v > INT_MAX) return gr_errorf("%s: field '%s' = %" PRId64 ": must be in [1, %d]", c->name, key, v, INT_MAX);
    *out = (int)v;
    return GR_OK;
}

static int key_float(const gg_ctx *c, const char *suffix, double def, float *out)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", c->arch, suffix);
    if (!gr_gguf_find(c->g, key)) { *out = (float)def; return GR_OK; }
    double v;
    if (gr_gguf_get_float(c->g, key, &v)) return gr_error_prefix("%s: ", c->name);
    if (!(v > 0.0 && v < 1e30)) return gr_errorf("%s: field '%s' = %g: must be in (0, 1e30)", c->name, key, v);
    *out = (float)v;
    return GR_OK;
}

static int read_hparams(const gg_ctx *c, gr_ckpt *hp)
{
    memset(hp, 0, sizeof *hp);
    int llama = !strcmp(c->arch, "llama");
    hp->arch = llama ? GR_ARCH_LLAMA : GR_ARCH_GPT2;
    if (key_int(c, "context_length", -1, &hp->max_T) || key_int(c, "embedding_length", -1, &hp->d_model) ||
        key_int(c, "block_count", -1, &hp->n_layer) || key_int(c, "attention.head_count", -1, &hp->n_head) ||
        key_int(c, "attention.head_count_kv", hp->n_head, &hp->n_kv_head))
        return GR_ERR;
    if (hp->d_model > INT_MAX / 4) return gr_errorf("%s: field '%s.embedding_length' is too large", c->name, c->arch);
    if (key_int(c, "feed_forward_length", llama ? -1 : 4 * (int64_t)hp->d_model, &hp->d_ff)) return GR_ERR;
    if (llama) {
        if (key_float(c, "attention.layer_norm_rms_epsilon", 1e-5, &hp->norm_eps) ||
            key_float(c, "rope.freq_base", 10000.0, &hp->rope_theta))
            return GR_ERR;
        int rd;
        if (key_int(c, "rope.dimension_count", hp->d_model / hp->n_head, &rd)) return GR_ERR;
        if ((int64_t)rd * hp->n_head != hp->d_model)
            return gr_errorf("%s: field 'llama.rope.dimension_count' = %d: partial RoPE is not supported (head size %d)",
                             c->name, rd, hp->d_model / hp->n_head);
    } else if (key_float(c, "attention.layer_norm_epsilon", 1e-5, &hp->norm_eps)) {
        return GR_ERR;
    }
    const gr_gguf_tensor *emb = gr_gguf_find_tensor(c->g, "token_embd.weight");
    if (!emb) return gr_errorf("%s: missing tensor 'token_embd.weight'", c->name);
    if (emb->n_dims != 2 || emb->ne[1] < 1 || emb->ne[1] > INT_MAX)
        return gr_errorf("%s: tensor 'token_embd.weight': expected 2 dims (vocab rows)", c->name);
    hp->vocab = (int)emb->ne[1];
    hp->tied = gr_gguf_find_tensor(c->g, "output.weight") == NULL;
    return GR_OK;
}

/* Convert t to fp32 (scratch is grown as needed). */
static int convert(const gg_ctx *c, const gr_gguf_tensor *t, float *dst)
{
    if (gr_ggml_to_f32(t->type, t->data, dst, t->n_elements))
        return gr_error_prefix("%s: tensor '%s': ", c->name, t->name);
    return GR_OK;
}

/* blk.N.attn_qkv.{weight,bias}: rows [q (C) | k (KV) | v (KV)]. */
static int split_qkv(const gg_ctx *c, ckpt_builder *b, const gr_gguf_tensor *t, int layer, int is_bias)
{
    const gr_ckpt *ck = b->ck;
    int64_t C = ck->d_model, KV = (int64_t)ck->n_kv_head * (C / ck->n_head), rows = C + 2 * KV;
    int ok = is_bias ? t->n_dims == 1 && t->ne[0] == rows : t->n_dims == 2 && t->ne[0] == C && t->ne[1] == rows;
    if (!ok)
        return gr_errorf("%s: tensor '%s': ggml shape does not match %s = {%" PRId64 "%s%" PRId64 "}", c->name,
                         t->name, is_bias ? "{q+k+v rows}" : "{n_embd, q+k+v rows}", is_bias ? rows : C,
                         is_bias ? "" : ", ", is_bias ? (int64_t)0 : rows);
    float *all = gr_alloc((size_t)t->n_elements, sizeof(float));
    if (!all) return GR_ERR;
    if (convert(c, t, all)) { gr_free(all); return GR_ERR; }
    static const char *const part[3] = {"attn_q", "attn_k", "attn_v"};
    int64_t start = 0, cols = is_bias ? 1 : C;
    for (int p = 0; p < 3; p++) {
        int64_t r = p ? KV : C, sh[2] = {r, C};
        char gg[GR_CKPT_MAX_NAME];
        snprintf(gg, sizeof gg, "blk.%d.%s.%s", layer, part[p], is_bias ? "bias" : "weight");
        float *dst = ckb_add(b, gg, is_bias ? 1 : 2, sh, t->name);
        if (!dst) { gr_free(all); return GR_ERR; }
        memcpy(dst, all + start * cols, (size_t)(r * cols) * sizeof(float));
        start += r;
    }
    gr_free(all);
    return GR_OK;
}

static int add_tensor(const gg_ctx *c, ckpt_builder *b, const gr_gguf_tensor *t)
{
    const char *n = t->name;
    if (!strncmp(n, "blk.", 4)) {
        const char *dot = strchr(n + 4, '.');
        int w = dot && !strcmp(dot, ".attn_qkv.weight"), bi = dot && !strcmp(dot, ".attn_qkv.bias");
        if (w || bi) {
            int64_t l = 0;
            const char *p = n + 4;
            int digits = 0;
            for (; p < dot && *p >= '0' && *p <= '9' && l < GR_CKPT_MAX_LAYERS; p++, digits++) l = l * 10 + (*p - '0');
            if (p != dot || !digits || (digits > 1 && n[4] == '0') || l >= b->ck->n_layer)
                return gr_errorf("%s: tensor '%s': bad layer index", c->name, n);
            return split_qkv(c, b, t, (int)l, bi);
        }
    }
    int64_t shape[GR_GGUF_MAX_DIMS];
    for (uint32_t i = 0; i < t->n_dims; i++) shape[i] = t->ne[t->n_dims - 1 - i];
    float *dst = ckb_add(b, n, (int)t->n_dims, shape, n);
    if (!dst) return GR_ERR;
    return convert(c, t, dst);
}

gr_ckpt *gr_ckpt_from_gguf(const gr_gguf *g, const char *name)
{
    if (!name) name = "<gguf>";
    const char *arch;
    if (gr_gguf_get_str(g, "general.architecture", &arch, NULL)) {
        gr_error_prefix("%s: ", name);
        return NULL;
    }
    if (strcmp(arch, "llama") && strcmp(arch, "gpt2")) {
        gr_errorf("%s: field 'general.architecture' = '%.40s': only \"llama\" and \"gpt2\" are supported", name, arch);
        return NULL;
    }
    gg_ctx c = {g, name, arch};
    gr_ckpt hp;
    if (read_hparams(&c, &hp)) return NULL;
    ckpt_builder b;
    if (ckb_init(&b, &hp, "gguf", name)) return NULL;
    for (int64_t i = 0; i < gr_gguf_n_tensors(g); i++) {
        if (add_tensor(&c, &b, gr_gguf_tensor_at(g, i))) {
            ckb_abort(&b);
            return NULL;
        }
    }
    return ckb_finish(&b);
}

gr_ckpt *gr_ckpt_load_gguf(const char *path)
{
    gr_gguf *g = gr_gguf_open(path);
    if (!g) return NULL;
    gr_ckpt *ck = gr_ckpt_from_gguf(g, path);
    gr_gguf_close(g);
    return ck;
}
