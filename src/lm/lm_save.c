/* Saving a language model as one GGUF file (genrec/lm_io.h), and rebuilding
 * a model from the description keys of such a file. */
#include "genrec/lm_io.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

static int set_arch_u32(gr_gguf_builder *b, const char *arch, const char *suffix, uint32_t v)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return gr_gguf_set_u32(b, key, v);
}

static int set_arch_f32(gr_gguf_builder *b, const char *arch, const char *suffix, float v)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return gr_gguf_set_f32(b, key, v);
}

int gr_lm_to_gguf(gr_lm *lm, gr_gguf_builder *b, gr_ggml_type type, int with_tensors)
{
    if (type != GR_GGML_F32 && type != GR_GGML_F16 && type != GR_GGML_BF16)
        return gr_errorf("language model save: tensor type '%s' is not supported (f32, f16 or bf16)",
                         gr_ggml_type_name(type) ? gr_ggml_type_name(type) : "?");
    const gr_tfm_config *c = gr_lm_config(lm);
    int llama = gr_lm_arch(lm) == GR_ARCH_LLAMA;
    const char *arch = llama ? "llama" : "gpt2";
    int rc = gr_gguf_set_str(b, "general.architecture", arch);
    rc = rc ? rc : gr_gguf_set_u32(b, "general.file_type", type == GR_GGML_F32 ? 0 : type == GR_GGML_F16 ? 1 : 32);
    rc = rc ? rc : set_arch_u32(b, arch, "context_length", (uint32_t)c->max_T);
    rc = rc ? rc : set_arch_u32(b, arch, "embedding_length", (uint32_t)c->d_model);
    rc = rc ? rc : set_arch_u32(b, arch, "block_count", (uint32_t)c->n_layer);
    rc = rc ? rc : set_arch_u32(b, arch, "feed_forward_length", (uint32_t)c->d_ff);
    rc = rc ? rc : set_arch_u32(b, arch, "attention.head_count", (uint32_t)c->n_head);
    rc = rc ? rc : set_arch_u32(b, arch, "attention.head_count_kv", (uint32_t)c->n_kv_head);
    rc = rc ? rc : set_arch_u32(b, arch, "vocab_size", (uint32_t)c->vocab);
    if (llama) {
        rc = rc ? rc : set_arch_f32(b, arch, "attention.layer_norm_rms_epsilon", c->norm_eps);
        rc = rc ? rc : set_arch_f32(b, arch, "rope.freq_base", c->rope_theta);
        rc = rc ? rc : set_arch_u32(b, arch, "rope.dimension_count", (uint32_t)(c->d_model / c->n_head));
    } else {
        rc = rc ? rc : set_arch_f32(b, arch, "attention.layer_norm_epsilon", c->norm_eps);
    }
    rc = rc ? rc : gr_gguf_set_u32(b, "genrec.vocab", (uint32_t)c->vocab);
    rc = rc ? rc : gr_gguf_set_bool(b, "genrec.tied", c->tied != 0);
    if (rc) return gr_error_prefix("language model save: ");
    const gr_tokenizer *tok = gr_lm_tokenizer(lm);
    if (tok && gr_tokenizer_to_gguf(tok, b) != GR_OK) return gr_error_prefix("language model save: tokenizer: ");
    if (!with_tensors) return GR_OK;

    gr_tfm *m = gr_lm_tfm(lm);
    const float *params = gr_tfm_params(m);
    const gr_tfm_param_view *views;
    int nv = gr_tfm_param_views(m, &views);
    for (int i = 0; i < nv; i++) {
        const gr_tfm_param_view *v = &views[i];
        const char *name = strcmp(v->name, "pos_embd") ? v->name : "position_embd.weight";
        int64_t ne[2];
        if (v->ndim == 1) ne[0] = v->shape[0];
        else { ne[0] = v->shape[1]; ne[1] = v->shape[0]; }
        gr_ggml_type t = v->ndim == 2 ? type : GR_GGML_F32;
        if (gr_gguf_add_tensor_f32(b, name, t, (uint32_t)v->ndim, ne, params + v->offset) != GR_OK)
            return gr_error_prefix("language model save: tensor '%s': ", name);
    }
    return GR_OK;
}

int gr_lm_save(gr_lm *lm, const char *path, const gr_lm_save_opts *opts)
{
    gr_lm_save_opts def = {GR_GGML_F32, NULL, -1, NULL};
    if (!opts) opts = &def;
    gr_gguf_builder *b = gr_gguf_builder_new();
    if (!b) return gr_errorf("%s: out of memory", path);
    int rc = gr_lm_to_gguf(lm, b, opts->type, 1);
    if (rc == GR_OK && opts->name) rc = gr_gguf_set_str(b, "general.name", opts->name);
    if (rc == GR_OK && opts->step >= 0) rc = gr_gguf_set_u64(b, "genrec.step", (uint64_t)opts->step);
    if (rc == GR_OK && opts->meta) {
        for (int i = 0; i < opts->meta->n && rc == GR_OK; i++) {
            const char *kv = opts->meta->kv[i], *eq = strchr(kv, '=');
            if (!eq || eq == kv) { rc = gr_errorf("metadata '%s' is not key=value", kv); break; }
            char key[256];
            int kl = snprintf(key, sizeof key, "genrec.%.*s", (int)(eq - kv), kv);
            if (kl < 0 || (size_t)kl >= sizeof key) { rc = gr_errorf("metadata key in '%.40s...' is too long", kv); break; }
            rc = gr_gguf_set_str(b, key, eq + 1);
        }
    }
    if (rc == GR_OK) rc = gr_gguf_write(b, path);
    else gr_error_prefix("%s: ", path);
    gr_gguf_builder_free(b);
    return rc;
}

/* ---- rebuilding from the description keys ------------------------------------------- */

static int meta_int(const gr_gguf *g, const char *name, const char *arch, const char *suffix, int def, int *out)
{
    char key[128];
    if (arch) snprintf(key, sizeof key, "%s.%s", arch, suffix);
    else snprintf(key, sizeof key, "%s", suffix);
    if (!gr_gguf_find(g, key)) {
        if (def < 0) return gr_errorf("%s: field '%s' is missing", name, key);
        *out = def;
        return GR_OK;
    }
    int64_t v;
    if (gr_gguf_get_int(g, key, &v) != GR_OK) return gr_error_prefix("%s: ", name);
    if (v < 0 || v > INT_MAX) return gr_errorf("%s: field '%s' = %lld is out of range", name, key, (long long)v);
    *out = (int)v;
    return GR_OK;
}

static int meta_float(const gr_gguf *g, const char *name, const char *arch, const char *suffix, float def, float *out)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    if (!gr_gguf_find(g, key)) { *out = def; return GR_OK; }
    double v;
    if (gr_gguf_get_float(g, key, &v) != GR_OK) return gr_error_prefix("%s: ", name);
    if (!(v > 0.0 && v < 1e30)) return gr_errorf("%s: field '%s' = %g is out of range", name, key, v);
    *out = (float)v;
    return GR_OK;
}

gr_lm *gr_lm_from_gguf_meta(const gr_gguf *g, const char *name)
{
    if (!name) name = "<gguf>";
    const char *arch;
    if (gr_gguf_get_str(g, "general.architecture", &arch, NULL) != GR_OK) {
        gr_error_prefix("%s: ", name);
        return NULL;
    }
    gr_arch a;
    if (!strcmp(arch, "gpt2")) a = GR_ARCH_GPT2;
    else if (!strcmp(arch, "llama")) a = GR_ARCH_LLAMA;
    else {
        gr_errorf("%s: field 'general.architecture' = '%.40s': only \"gpt2\" and \"llama\" are supported", name, arch);
        return NULL;
    }
    int L, C, H, KV, F, T, V, tied = a == GR_ARCH_GPT2;
    if (meta_int(g, name, arch, "context_length", -1, &T) || meta_int(g, name, arch, "embedding_length", -1, &C) ||
        meta_int(g, name, arch, "block_count", -1, &L) || meta_int(g, name, arch, "attention.head_count", -1, &H) ||
        meta_int(g, name, arch, "attention.head_count_kv", H, &KV) ||
        meta_int(g, name, arch, "feed_forward_length", -1, &F) || meta_int(g, name, NULL, "genrec.vocab", -1, &V))
        return NULL;
    if (gr_gguf_find(g, "genrec.tied") && gr_gguf_get_bool(g, "genrec.tied", &tied) != GR_OK) {
        gr_error_prefix("%s: ", name);
        return NULL;
    }
    gr_tfm_config cfg;
    gr_lm_config_preset(&cfg, a, L, C, H, KV, F, T, V);
    cfg.tied = tied;
    if (a == GR_ARCH_LLAMA) {
        if (meta_float(g, name, arch, "attention.layer_norm_rms_epsilon", 1e-5f, &cfg.norm_eps) ||
            meta_float(g, name, arch, "rope.freq_base", 10000.0f, &cfg.rope_theta))
            return NULL;
    } else if (meta_float(g, name, arch, "attention.layer_norm_epsilon", 1e-5f, &cfg.norm_eps)) {
        return NULL;
    }
    gr_lm *lm = gr_lm_init(a, &cfg, 0);
    if (!lm) { gr_error_prefix("%s: ", name); return NULL; }
    if (gr_gguf_find(g, "tokenizer.ggml.model")) {
        gr_tokenizer *tok = gr_tokenizer_from_gguf(g);
        if (!tok || gr_lm_set_tokenizer(lm, tok) != GR_OK) {
            gr_tokenizer_free(tok);
            gr_error_prefix("%s: tokenizer: ", name);
            gr_lm_free(lm);
            return NULL;
        }
    }
    return lm;
}
