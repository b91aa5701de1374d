/* One GGUF file per fitted generative model ("gen", "gen-sid"), the
 * catalogue that comes with it, and recommending for one history
 * (genrec/model.h: gr_model_save, gr_model_load, gr_model_recommend).
 *
 * Layout (format version 1). The language model exactly as gr_lm_to_gguf
 * writes it (general.*, llama.*, tensors in F32, the BPE tokenizer for "gen";
 * gr_ckpt_from_gguf reads it back bit for bit), then genrec's own keys:
 *
 *   genrec.model              "gen" | "gen-sid"
 *   genrec.format_version     u32 1
 *   genrec.dataset, genrec.protocol   strings (information)
 *   genrec.gen.*              every hyperparameter (i32 / f32; seed_offset i64),
 *                             bos, eos, template ("compact"), epochs_run, best_epoch
 *   genrec.items.key          [n_items] strings: the dataset's item ids
 *   genrec.items.title        [n_items] strings: the item texts the model was trained on
 *   genrec.items.pop          [n_items] f64: training interaction counts
 *   genrec.items.answer_off   [n_items+1] i64, genrec.items.answer_ids i32: each
 *                             item's answer token ids (CSR)
 *   genrec.trie               i32: gr_trie_serialize
 *   genrec.sid.levels, .K, .dim, .n_dup_codes, .codes [n_items*(levels+1)]  (gen-sid)
 *   genrec.users.key          [n_users] strings
 *   genrec.users.off          [n_users+1] i64, genrec.users.items i32: every user's
 *                             whole interaction sequence from the dataset
 *
 * Everything genrec-specific lives in metadata arrays (not tensors) so the
 * file stays a plain llama GGUF for every tensor reader. */
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "gen_internal.h"
#include "genrec/gguf.h"
#include "genrec/lm_io.h"

#define GEN_FILE_VERSION 1
#define GEN_MAX_BEAMS 1024

static int is_gen(const gr_model *m)
{
    return m && m->ops && m->ops->name && (!strcmp(m->ops->name, "gen") || !strcmp(m->ops->name, "gen-sid"));
}

/* ---- hyperparameters ---------------------------------------------------------- */

typedef struct hp_field {
    const char *key;  /* after "genrec.gen." */
    size_t off;       /* int or float field of gen_model */
    int is_float;
    double lo, hi;    /* the ranges gr_gen_create accepts */
    int optional;     /* may be missing (files written before it existed) */
    double def;       /* ... and then takes this value */
} hp_field;

#define HPI(k, f, lo, hi) {k, offsetof(gen_model, f), 0, lo, hi, 0, 0}
#define HPF(k, f, lo, hi) {k, offsetof(gen_model, f), 1, lo, hi, 0, 0}
#define HPI_OPT(k, f, lo, hi, def) {k, offsetof(gen_model, f), 0, lo, hi, 1, def}
#define HPF_OPT(k, f, lo, hi, def) {k, offsetof(gen_model, f), 1, lo, hi, 1, def}
static const hp_field hp_fields[] = {
    HPI("dim", dim, 8, 4096), HPI("layers", layers, 1, 64), HPI("heads", heads, 1, 64),
    HPI("ff", ff, 0, 65536), HPI("ctx", ctx, 16, 1 << 20), HPI("vocab", vocab, 0, 1 << 20),
    HPI("batch", batch, 16, 1 << 24), HPI("epochs", epochs, 1, 100000), HPI("patience", patience, 1, 100000),
    HPI("beams", beams, 1, GEN_MAX_BEAMS), HPI("max_hist", max_hist, 1, 1 << 20),
    HPI("sid_levels", sid_levels, 1, GR_SEMID_MAX_LEVELS), HPI("sid_k", sid_k, 0, 65536),
    HPI("sid_dim", sid_dim, 2, 4096), HPI("sid_emb", sid_emb, 0, 2), HPI("ground_pool", ground_pool, 0, 1),
    HPI("ground_beams", ground_beams, 1, 256),
    HPI_OPT("round_steps", round_steps, 0, 1 << 30, 0), /* absent: one pass per epoch, as trained then */
    /* fine-tuned bases (absent in files of models trained from scratch) */
    HPI_OPT("kv_heads", kv_heads, 0, 64, 0), HPI_OPT("lora", lora_rank, 0, 4096, 0),
    HPF_OPT("lora_alpha", lora_alpha, 0.0, 1e6, 0.0), HPI_OPT("sft_samples", sft_samples, 0, 1 << 30, 0),
    HPI_OPT("with_genres", with_genres, 0, 1, 0), HPI_OPT("with_brand", with_brand, 0, 1, 0),
    HPI_OPT("strip_year", strip_year, 0, 1, 0),
    HPI("epochs_run", epochs_run, 0, 100000), HPI("best_epoch", best_epoch, 0, 100000),
    HPF("dropout", dropout, 0.0, 0.99), HPF("lr", lr, 0.0, 1.0), HPF("wd", wd, 0.0, 10.0),
    HPF("lambda", lambda, 0.0, 10.0), HPF("assist", assist, -1.0, 1.0), HPF("ground_gamma", ground_gamma, -1.0, 1e6),
};
#undef HPI
#undef HPF
#undef HPI_OPT
#undef HPF_OPT
#define N_HP ((int)(sizeof hp_fields / sizeof hp_fields[0]))

/* ---- saving ----------------------------------------------------------------------- */

static int set_strs(gr_gguf_builder *b, const char *key, char *const *s, int64_t n)
{
    return gr_gguf_set_arr_str(b, key, (const char *const *)s, NULL, (uint64_t)n);
}

static int save_build(gr_model *m, const gr_split *s, gr_gguf_builder *b)
{
    gen_model *g = m->impl;
    const gr_dataset *d = s->data;
    char key[96];
    int rc = gr_lm_to_gguf(g->lm, b, GR_GGML_F32, 1);
    rc = rc ? rc : gr_gguf_set_str(b, "general.name", g->name);
    rc = rc ? rc : gr_gguf_set_str(b, "genrec.model", g->name);
    rc = rc ? rc : gr_gguf_set_u32(b, "genrec.format_version", GEN_FILE_VERSION);
    rc = rc ? rc : gr_gguf_set_str(b, "genrec.dataset", d->name ? d->name : "");
    rc = rc ? rc : gr_gguf_set_str(b, "genrec.protocol", gr_protocol_name(s->protocol));
    rc = rc ? rc : gr_gguf_set_i32(b, "genrec.gen.items", (int32_t)g->items);
    rc = rc ? rc : gr_gguf_set_i32(b, "genrec.gen.decode", (int32_t)g->decode);
    for (int i = 0; i < N_HP && !rc; i++) {
        snprintf(key, sizeof key, "genrec.gen.%s", hp_fields[i].key);
        const char *p = (const char *)g + hp_fields[i].off;
        rc = hp_fields[i].is_float ? gr_gguf_set_f32(b, key, *(const float *)p) : gr_gguf_set_i32(b, key, *(const int *)p);
    }
    rc = rc ? rc : gr_gguf_set_i64(b, "genrec.gen.seed_offset", g->seed_offset);
    rc = rc ? rc : gr_gguf_set_i32(b, "genrec.gen.bos", g->bos);
    rc = rc ? rc : gr_gguf_set_i32(b, "genrec.gen.eos", g->eos);
    rc = rc ? rc : gr_gguf_set_str(b, "genrec.gen.template", g->tmpl.name ? g->tmpl.name : "compact");
    if (g->category) rc = rc ? rc : gr_gguf_set_str(b, "genrec.gen.category", g->category);
    /* information: the fine-tuned base (gen) or the text model of the semantic IDs (gen-sid) */
    if (g->base) rc = rc ? rc : gr_gguf_set_str(b, "genrec.gen.base", g->base);
    if (rc) return GR_ERR;

    /* items */
    const int32_t n = g->n_items;
    rc = set_strs(b, "genrec.items.key", d->item_key, n);
    rc = rc ? rc : set_strs(b, "genrec.items.title", g->it->text, n);
    rc = rc ? rc : gr_gguf_set_arr(b, "genrec.items.pop", GR_GGUF_F64, g->pop, (uint64_t)n);
    if (rc) return GR_ERR;
    int64_t *off = gr_alloc((size_t)n + 1, sizeof(int64_t));
    if (!off) return GR_ERR;
    off[0] = 0;
    for (int32_t i = 0; i < n; i++) off[i + 1] = off[i] + g->ans_len[i];
    int32_t *ids = gr_alloc((size_t)off[n] + 1, sizeof(int32_t));
    if (!ids) { gr_free(off); return GR_ERR; }
    for (int32_t i = 0; i < n; i++) memcpy(ids + off[i], g->ans[i], sizeof(int32_t) * (size_t)g->ans_len[i]);
    rc = gr_gguf_set_arr(b, "genrec.items.answer_off", GR_GGUF_I64, off, (uint64_t)n + 1);
    rc = rc ? rc : gr_gguf_set_arr(b, "genrec.items.answer_ids", GR_GGUF_I32, ids, (uint64_t)off[n]);
    gr_free(off);
    gr_free(ids);
    if (rc) return GR_ERR;
    int64_t nt;
    int32_t *tb = gr_trie_serialize(g->tr, &nt);
    if (!tb) return GR_ERR;
    rc = gr_gguf_set_arr(b, "genrec.trie", GR_GGUF_I32, tb, (uint64_t)nt);
    gr_free(tb);
    if (rc) return GR_ERR;
    if (g->sid) {
        const gr_semid *sd = g->sid;
        rc = gr_gguf_set_i32(b, "genrec.sid.levels", sd->n_levels);
        rc = rc ? rc : gr_gguf_set_i32(b, "genrec.sid.K", sd->K);
        rc = rc ? rc : gr_gguf_set_i32(b, "genrec.sid.dim", sd->dim);
        rc = rc ? rc : gr_gguf_set_i32(b, "genrec.sid.n_dup_codes", sd->n_dup_codes);
        rc = rc ? rc : gr_gguf_set_arr(b, "genrec.sid.codes", GR_GGUF_I32, sd->codes,
                                       (uint64_t)sd->n_items * (uint64_t)(sd->n_levels + 1));
        if (rc) return GR_ERR;
    }
    /* users: the whole sequences */
    rc = set_strs(b, "genrec.users.key", d->user_key, d->n_users);
    rc = rc ? rc : gr_gguf_set_arr(b, "genrec.users.off", GR_GGUF_I64, d->user_off, (uint64_t)d->n_users + 1);
    rc = rc ? rc : gr_gguf_set_arr(b, "genrec.users.items", GR_GGUF_I32, d->inter_item, (uint64_t)d->user_off[d->n_users]);
    return rc ? GR_ERR : GR_OK;
}

int gr_model_save(gr_model *m, const gr_split *s, const char *path)
{
    if (!path) return gr_errorf("model save: no path");
    if (!m || !m->ops) return gr_errorf("%s: model save: no model", path);
    if (!is_gen(m)) return gr_errorf("%s: model %s cannot be saved (only gen and gen-sid can)", path, m->ops->name);
    gen_model *g = m->impl;
    if (!g->fitted || !g->lm || !g->tr || !g->it) return gr_errorf("%s: model %s is not fitted", path, g->name);
    if (!s || !s->data || s->n_items != g->n_items || s->data->n_items != g->n_items || !s->data->item_key ||
        !s->data->user_key || !s->data->user_off || !s->data->inter_item)
        return gr_errorf("%s: model %s: the split does not match the fitted model (%d items)", path, g->name,
                         (int)g->n_items);
    if ((uint64_t)s->data->user_off[s->data->n_users] > GR_GGUF_MAX_ARRAY)
        return gr_errorf("%s: model %s: %lld interactions are more than a GGUF array holds", path, g->name,
                         (long long)s->data->user_off[s->data->n_users]);
    gr_gguf_builder *b = gr_gguf_builder_new();
    if (!b) return gr_errorf("%s: out of memory", path);
    int rc = save_build(m, s, b);
    if (rc == GR_OK) rc = gr_gguf_write(b, path);
    else gr_error_prefix("%s: model %s: ", path, g->name);
    gr_gguf_builder_free(b);
    return rc;
}

/* ---- loading ---------------------------------------------------------------------- */

typedef struct rd {
    const gr_gguf *gg;
    const char *name;
} rd;

static int rd_int(const rd *r, const char *key, int64_t lo, int64_t hi, int64_t *out)
{
    if (gr_gguf_get_int(r->gg, key, out) != GR_OK) return GR_ERR; /* the message names the file and key */
    if (*out < lo || *out > hi)
        return gr_errorf("%s: field '%s' = %lld is out of range [%lld, %lld]", r->name, key, (long long)*out,
                         (long long)lo, (long long)hi);
    return GR_OK;
}

static int rd_i32(const rd *r, const char *key, int64_t lo, int64_t hi, int32_t *out)
{
    int64_t v;
    if (rd_int(r, key, lo, hi, &v) != GR_OK) return GR_ERR;
    *out = (int32_t)v;
    return GR_OK;
}

/* An array of elem type with n elements (n < 0: any count). */
static const gr_gguf_kv *rd_arr(const rd *r, const char *key, gr_gguf_type elem, int64_t n)
{
    const gr_gguf_kv *kv = gr_gguf_get_arr(r->gg, key, elem);
    if (!kv) return NULL; /* the message names the file and key */
    if (n >= 0 && kv->n != (uint64_t)n) {
        gr_errorf("%s: field '%s' has %llu elements, expected %lld", r->name, key, (unsigned long long)kv->n,
                  (long long)n);
        return NULL;
    }
    return kv;
}

/* A string array of n strings (n < 0: any count <= INT32_MAX), each without
 * NUL bytes and (utf8) valid UTF-8. */
static const gr_gguf_kv *rd_strs(const rd *r, const char *key, int64_t n, int utf8)
{
    const gr_gguf_kv *kv = rd_arr(r, key, GR_GGUF_STRING, n);
    if (!kv) return NULL;
    if (kv->n > INT32_MAX) { gr_errorf("%s: field '%s' has too many strings", r->name, key); return NULL; }
    for (uint64_t i = 0; i < kv->n; i++) {
        size_t bad;
        if (strlen(kv->v.strs[i]) != kv->str_lens[i]) {
            gr_errorf("%s: field '%s': string %llu contains a NUL byte", r->name, key, (unsigned long long)i);
            return NULL;
        }
        if (utf8 && !gr_utf8_valid(kv->v.strs[i], kv->str_lens[i], &bad)) {
            gr_errorf("%s: field '%s': string %llu is not valid UTF-8 (byte %zu)", r->name, key,
                      (unsigned long long)i, bad);
            return NULL;
        }
    }
    return kv;
}

/* CSR offsets: off[0] = 0, non-decreasing (strictly when strict), off[n] = total. */
static int check_off(const rd *r, const char *key, const int64_t *off, int64_t n, int64_t total, int strict)
{
    if (off[0] != 0) return gr_errorf("%s: field '%s': first offset is %lld, not 0", r->name, key, (long long)off[0]);
    for (int64_t i = 0; i < n; i++)
        if (off[i + 1] < off[i] + strict || off[i + 1] > total)
            return gr_errorf("%s: field '%s': offset %lld (%lld) is out of order or past the end (%lld)", r->name, key,
                             (long long)(i + 1), (long long)off[i + 1], (long long)total);
    if (off[n] != total)
        return gr_errorf("%s: field '%s': last offset %lld, expected %lld", r->name, key, (long long)off[n],
                         (long long)total);
    return GR_OK;
}

static char **dup_strs(const gr_gguf_kv *kv)
{
    char **out = gr_calloc((size_t)kv->n + 1, sizeof *out);
    if (!out) return NULL;
    for (uint64_t i = 0; i < kv->n; i++)
        if (!(out[i] = gr_strdup(kv->v.strs[i]))) {
            for (uint64_t j = 0; j < i; j++) gr_free(out[j]);
            gr_free(out);
            return NULL;
        }
    return out;
}

static void free_strs(char **s, int64_t n)
{
    if (!s) return;
    for (int64_t i = 0; i < n; i++) gr_free(s[i]);
    gr_free(s);
}

void gr_rec_catalog_free(gr_rec_catalog *c)
{
    if (!c) return;
    gr_free(c->dataset);
    gr_free(c->protocol);
    free_strs(c->item_key, c->n_items);
    free_strs(c->item_title, c->n_items);
    free_strs(c->item_sid, c->n_items);
    free_strs(c->user_key, c->n_users);
    gr_free(c->user_off);
    gr_free(c->user_item);
    gr_free(c);
}

/* The hyperparameters, checked as gr_gen_create checks them. */
static int load_hparams(const rd *r, gen_model *g, gen_items items)
{
    char key[96];
    int64_t v;
    if (rd_int(r, "genrec.gen.items", 0, 1, &v) != GR_OK) return GR_ERR;
    if (v != (int64_t)items)
        return gr_errorf("%s: field 'genrec.gen.items' = %lld does not match model %s", r->name, (long long)v, g->name);
    if (rd_int(r, "genrec.gen.decode", 0, 1, &v) != GR_OK) return GR_ERR;
    g->decode = v == GEN_DECODE_GROUND ? GEN_DECODE_GROUND : GEN_DECODE_BEAM;
    for (int i = 0; i < N_HP; i++) {
        const hp_field *f = &hp_fields[i];
        snprintf(key, sizeof key, "genrec.gen.%s", f->key);
        char *p = (char *)g + f->off;
        if (f->optional && !gr_gguf_find(r->gg, key)) {
            if (f->is_float) *(float *)p = (float)f->def;
            else *(int *)p = (int)f->def;
        } else if (f->is_float) {
            double x;
            if (gr_gguf_get_float(r->gg, key, &x) != GR_OK) return GR_ERR;
            if (!(x >= f->lo && x <= f->hi))
                return gr_errorf("%s: field '%s' = %g is out of range [%g, %g]", r->name, key, x, f->lo, f->hi);
            *(float *)p = (float)x;
        } else {
            if (rd_int(r, key, (int64_t)f->lo, (int64_t)f->hi, &v) != GR_OK) return GR_ERR;
            *(int *)p = (int)v;
        }
    }
    if (rd_int(r, "genrec.gen.seed_offset", 0, 1 << 30, &g->seed_offset) != GR_OK) return GR_ERR;
    if (g->dim % g->heads)
        return gr_errorf("%s: field 'genrec.gen.heads' = %d does not divide genrec.gen.dim = %d", r->name, g->heads,
                         g->dim);
    if (g->sid_k == 1) return gr_errorf("%s: field 'genrec.gen.sid_k' = 1 (must be 0 or >= 2)", r->name);
    if (g->kv_heads && g->heads % g->kv_heads)
        return gr_errorf("%s: field 'genrec.gen.kv_heads' = %d does not divide genrec.gen.heads = %d", r->name,
                         g->kv_heads, g->heads);
    const char *tn, *cat = NULL, *base = NULL;
    if (gr_gguf_get_str(r->gg, "genrec.gen.template", &tn, NULL) != GR_OK) return GR_ERR;
    if (gr_gguf_find(r->gg, "genrec.gen.category") && gr_gguf_get_str(r->gg, "genrec.gen.category", &cat, NULL))
        return GR_ERR;
    if (gr_gguf_find(r->gg, "genrec.gen.base") && gr_gguf_get_str(r->gg, "genrec.gen.base", &base, NULL))
        return GR_ERR;
    gr_free(g->category); g->category = NULL;
    gr_free(g->base); g->base = NULL;
    if ((cat && !(g->category = gr_strdup(cat))) || (base && !(g->base = gr_strdup(base)))) return GR_ERR;
    if (gr_prompt_tmpl_by_name(tn, g->category, &g->tmpl) != GR_OK)
        return gr_error_prefix("%s: field 'genrec.gen.template': ", r->name);
    if (g->items == GEN_ITEMS_SID && gen_templated(g))
        return gr_errorf("%s: field 'genrec.gen.template' = '%.40s': a gen-sid model uses \"compact\"", r->name, tn);
    return GR_OK;
}

/* The language model: its shape keys must match the hyperparameters before
 * anything is allocated, then the weights (and tokenizer) are read. */
static int load_lm(const rd *r, gen_model *g)
{
    const char *arch;
    if (gr_gguf_get_str(r->gg, "general.architecture", &arch, NULL) != GR_OK) return GR_ERR;
    /* from scratch: llama; a fine-tuned base keeps its architecture */
    if (strcmp(arch, "llama") && !(g->base && !strcmp(arch, "gpt2")))
        return gr_errorf("%s: field 'general.architecture' = '%.40s': a gen model is \"llama\"%s", r->name, arch,
                         g->base ? " or \"gpt2\"" : "");
    const int64_t ff = g->ff > 0 ? g->ff : 3 * (int64_t)g->dim;
    const struct { const char *key; int64_t want; } shape[] = {
        {"context_length", g->ctx}, {"embedding_length", g->dim}, {"block_count", g->layers},
        {"attention.head_count", g->heads}, {"attention.head_count_kv", g->kv_heads ? g->kv_heads : g->heads},
        {"feed_forward_length", ff},
    };
    for (size_t i = 0; i < sizeof shape / sizeof shape[0]; i++) {
        char key[96];
        snprintf(key, sizeof key, "%s.%s", arch, shape[i].key);
        int64_t v;
        if (gr_gguf_get_int(r->gg, key, &v) != GR_OK) return GR_ERR;
        if (v != shape[i].want)
            return gr_errorf("%s: field '%s' = %lld does not match the hyperparameters (%lld)", r->name, key,
                             (long long)v, (long long)shape[i].want);
    }
    int32_t V;
    if (rd_i32(r, "genrec.vocab", 2, 1 << 21, &V) != GR_OK) return GR_ERR;
    const gr_gguf_tensor *emb = gr_gguf_find_tensor(r->gg, "token_embd.weight");
    if (!emb || emb->n_dims != 2 || emb->ne[0] != g->dim || emb->ne[1] != V)
        return gr_errorf("%s: tensor 'token_embd.weight' is missing or not {%d, %d}", r->name, g->dim, (int)V);
    gr_ckpt *ck = gr_ckpt_from_gguf(r->gg, r->name);
    if (!ck) return GR_ERR;
    g->lm = gr_lm_from_ckpt(ck);
    gr_ckpt_free(ck);
    if (!g->lm) return gr_error_prefix("%s: ", r->name);
    const gr_tfm_config *c = gr_lm_config(g->lm);
    if (c->vocab != V || c->max_T != g->ctx || c->d_model != g->dim || c->n_layer != g->layers)
        return gr_errorf("%s: the language model's tensors do not match the hyperparameters", r->name);
    const int has_tok = gr_gguf_find(r->gg, "tokenizer.ggml.model") != NULL;
    if (g->items == GEN_ITEMS_TITLE) {
        if (!has_tok) return gr_errorf("%s: field 'tokenizer.ggml.model' is missing (a gen model has a tokenizer)", r->name);
        gr_tokenizer *tok = gr_tokenizer_from_gguf(r->gg);
        if (!tok) return gr_error_prefix("%s: tokenizer: ", r->name);
        if (gr_lm_set_tokenizer(g->lm, tok) != GR_OK) {
            gr_tokenizer_free(tok);
            return gr_error_prefix("%s: tokenizer: ", r->name);
        }
    } else if (has_tok) {
        return gr_errorf("%s: field 'tokenizer.ggml.model': a gen-sid model has no tokenizer", r->name);
    }
    return GR_OK;
}

/* Semantic IDs (gen-sid): sizes and every code in range, vocabulary = BOS +
 * the code tokens. */
static int load_sid(const rd *r, gen_model *g, int32_t n)
{
    gr_semid *sd = gr_calloc(1, sizeof *sd);
    if (!sd) return GR_ERR;
    g->sid = sd;
    sd->n_items = n;
    if (rd_i32(r, "genrec.sid.levels", g->sid_levels, g->sid_levels, &sd->n_levels) ||
        rd_i32(r, "genrec.sid.K", 2, 65536, &sd->K) || rd_i32(r, "genrec.sid.dim", 0, 1 << 20, &sd->dim) ||
        rd_i32(r, "genrec.sid.n_dup_codes", 1, n, &sd->n_dup_codes))
        return GR_ERR;
    if (g->sid_k && sd->K != g->sid_k)
        return gr_errorf("%s: field 'genrec.sid.K' = %d does not match genrec.gen.sid_k = %d", r->name, (int)sd->K,
                         g->sid_k);
    const int64_t L1 = sd->n_levels + 1;
    if (1 + (int64_t)sd->n_levels * sd->K + sd->n_dup_codes != gr_lm_vocab(g->lm))
        return gr_errorf("%s: fields 'genrec.sid.*': the semantic IDs need %lld tokens but the vocabulary has %d", r->name,
                         1 + (long long)sd->n_levels * sd->K + sd->n_dup_codes, gr_lm_vocab(g->lm));
    const gr_gguf_kv *kv = rd_arr(r, "genrec.sid.codes", GR_GGUF_I32, (int64_t)n * L1);
    if (!kv) return GR_ERR;
    const int32_t *c = kv->v.arr;
    for (int64_t i = 0; i < (int64_t)n * L1; i++) {
        int32_t hi = i % L1 == L1 - 1 ? sd->n_dup_codes : sd->K;
        if (c[i] < 0 || c[i] >= hi)
            return gr_errorf("%s: field 'genrec.sid.codes': item %lld level %lld code %d is out of range [0, %d)",
                             r->name, (long long)(i / L1), (long long)(i % L1), (int)c[i], (int)hi);
    }
    if (!(sd->codes = gr_alloc((size_t)(n * L1), sizeof(int32_t)))) return GR_ERR;
    memcpy(sd->codes, c, sizeof(int32_t) * (size_t)(n * L1));
    sd->max_group = sd->n_dup_codes;
    return GR_OK;
}

/* Items: titles, popularity, trie, answers (each walks the trie to its own
 * leaf; re-derived from the tokenizer or the codes and compared). */
static int load_items(const rd *r, gen_model *g)
{
    const gr_gguf_kv *keys = rd_strs(r, "genrec.items.key", -1, 0);
    if (!keys) return GR_ERR;
    if (keys->n < 1) return gr_errorf("%s: field 'genrec.items.key' is empty", r->name);
    const int32_t n = (int32_t)keys->n;
    const gr_gguf_kv *titles = rd_strs(r, "genrec.items.title", n, 1);
    if (!titles) return GR_ERR;
    if (!(g->it = gr_itemtext_from_strings((char *const *)titles->v.strs, n))) return gr_error_prefix("%s: ", r->name);
    const gr_gguf_kv *pop = rd_arr(r, "genrec.items.pop", GR_GGUF_F64, n);
    if (!pop) return GR_ERR;
    const double *pv = pop->v.arr;
    for (int32_t i = 0; i < n; i++)
        if (!(pv[i] >= 0.0 && pv[i] < 1e18))
            return gr_errorf("%s: field 'genrec.items.pop': item %d has count %g", r->name, (int)i, pv[i]);
    g->ans = gr_calloc((size_t)n, sizeof *g->ans);
    g->ans_len = gr_calloc((size_t)n, sizeof *g->ans_len);
    g->pop = gr_alloc((size_t)n, sizeof(double));
    if (!g->ans || !g->ans_len || !g->pop) return GR_ERR;
    g->n_items = n;
    memcpy(g->pop, pv, sizeof(double) * (size_t)n);
    const int32_t V = gr_lm_vocab(g->lm);

    /* trie: validated by gr_trie_deserialize; tokens must be in the vocabulary */
    const gr_gguf_kv *tk = rd_arr(r, "genrec.trie", GR_GGUF_I32, -1);
    if (!tk) return GR_ERR;
    if (!(g->tr = gr_trie_deserialize(tk->v.arr, (int64_t)tk->n))) return gr_error_prefix("%s: field 'genrec.trie': ", r->name);
    if (g->tr->n_items != n)
        return gr_errorf("%s: field 'genrec.trie' holds %d items, the item table %d", r->name, (int)g->tr->n_items, (int)n);
    for (int32_t e = 0; e < g->tr->n_nodes - 1; e++)
        if (g->tr->child_tok[e] < 0 || g->tr->child_tok[e] >= V)
            return gr_errorf("%s: field 'genrec.trie': edge %d has token %d outside the vocabulary [0, %d)", r->name,
                             (int)e, (int)g->tr->child_tok[e], (int)V);
    if ((int64_t)g->tr->max_depth + 2 > g->ctx)
        return gr_errorf("%s: field 'genrec.trie': depth %d does not fit ctx %d", r->name, (int)g->tr->max_depth, g->ctx);

    if (rd_i32(r, "genrec.gen.bos", 0, V - 1, &g->bos) != GR_OK ||
        rd_i32(r, "genrec.gen.eos", g->items == GEN_ITEMS_SID ? -1 : 0, g->items == GEN_ITEMS_SID ? -1 : V - 1,
               &g->eos) != GR_OK)
        return GR_ERR;
    const gr_tokenizer *tok = gr_lm_tokenizer(g->lm);
    if (g->items == GEN_ITEMS_TITLE) {
        /* a tokenizer without BOS starts compact prompts with its EOS (gen_items.c) */
        const int32_t tbos = gr_tokenizer_bos(tok) >= 0 ? gr_tokenizer_bos(tok) : gr_tokenizer_eos(tok);
        if (g->bos != tbos || g->eos != gr_tokenizer_eos(tok))
            return gr_errorf("%s: fields 'genrec.gen.bos'/'genrec.gen.eos' (%d, %d) differ from the tokenizer's (%d, %d)",
                             r->name, (int)g->bos, (int)g->eos, (int)tbos, (int)gr_tokenizer_eos(tok));
    } else {
        if (g->bos != 0) return gr_errorf("%s: field 'genrec.gen.bos' = %d (gen-sid: 0)", r->name, (int)g->bos);
        if (load_sid(r, g, n) != GR_OK) return GR_ERR;
    }

    /* answers */
    const gr_gguf_kv *ko = rd_arr(r, "genrec.items.answer_off", GR_GGUF_I64, (int64_t)n + 1);
    const gr_gguf_kv *ki = ko ? rd_arr(r, "genrec.items.answer_ids", GR_GGUF_I32, -1) : NULL;
    if (!ki) return GR_ERR;
    const int64_t *off = ko->v.arr;
    const int32_t *ids = ki->v.arr;
    if (check_off(r, "genrec.items.answer_off", off, n, (int64_t)ki->n, 1) != GR_OK) return GR_ERR;
    int32_t tmp[GR_SEMID_MAX_LEVELS + 1];
    for (int32_t i = 0; i < n; i++) {
        const int64_t len = off[i + 1] - off[i];
        const int32_t *a = ids + off[i];
        int32_t node = len <= g->tr->max_depth ? gr_trie_walk(g->tr, a, len) : -1;
        if (node < 0 || !gr_trie_is_leaf(g->tr, node) || g->tr->item_leaf[i] != node)
            return gr_errorf("%s: field 'genrec.items.answer_ids': item %d's answer does not lead to its trie leaf",
                             r->name, (int)i);
        if (g->items == GEN_ITEMS_TITLE) {
            int64_t elen;
            int32_t *e = gr_answer_encode(&g->tmpl, tok, g->it, i, &elen);
            if (!e) return gr_error_prefix("%s: item %d: ", r->name, (int)i);
            int same = elen == len && !memcmp(e, a, sizeof(int32_t) * (size_t)len);
            gr_free(e);
            if (!same)
                return gr_errorf("%s: field 'genrec.items.answer_ids': item %d's answer is not its title's tokens",
                                 r->name, (int)i);
        } else {
            if (len != g->sid->n_levels + 1 || gr_semid_item_tokens(g->sid, i, 1, tmp) != len ||
                memcmp(tmp, a, sizeof(int32_t) * (size_t)len))
                return gr_errorf("%s: field 'genrec.items.answer_ids': item %d's answer is not its semantic ID",
                                 r->name, (int)i);
        }
        if (!(g->ans[i] = gr_alloc((size_t)len, sizeof(int32_t)))) return GR_ERR;
        memcpy(g->ans[i], a, sizeof(int32_t) * (size_t)len);
        g->ans_len[i] = len;
    }
    return GR_OK;
}

static int load_catalog(const rd *r, const gen_model *g, gr_rec_catalog *c)
{
    const char *s;
    snprintf(c->model, sizeof c->model, "%s", g->name);
    c->dataset = gr_strdup(gr_gguf_get_str(r->gg, "genrec.dataset", &s, NULL) == GR_OK ? s : "");
    c->protocol = gr_strdup(gr_gguf_get_str(r->gg, "genrec.protocol", &s, NULL) == GR_OK ? s : "");
    if (!c->dataset || !c->protocol) return GR_ERR;
    const gr_gguf_kv *keys = rd_strs(r, "genrec.items.key", g->n_items, 0);
    if (!keys || !(c->item_key = dup_strs(keys))) return GR_ERR;
    c->n_items = g->n_items;
    c->item_title = gr_calloc((size_t)g->n_items, sizeof(char *));
    if (!c->item_title) return GR_ERR;
    for (int32_t i = 0; i < g->n_items; i++)
        if (!(c->item_title[i] = gr_strdup(g->it->text[i]))) return GR_ERR;
    if (g->sid) {
        c->item_sid = gr_calloc((size_t)g->n_items, sizeof(char *));
        if (!c->item_sid) return GR_ERR;
        char buf[16 * (GR_SEMID_MAX_LEVELS + 1)];
        for (int32_t i = 0; i < g->n_items; i++)
            if (gr_semid_render(g->sid, i, buf, sizeof buf) < 0 || !(c->item_sid[i] = gr_strdup(buf))) return GR_ERR;
    }
    const gr_gguf_kv *uk = rd_strs(r, "genrec.users.key", -1, 0);
    if (!uk) return GR_ERR;
    const int32_t nu = (int32_t)uk->n;
    const gr_gguf_kv *uo = rd_arr(r, "genrec.users.off", GR_GGUF_I64, (int64_t)nu + 1);
    const gr_gguf_kv *ui = uo ? rd_arr(r, "genrec.users.items", GR_GGUF_I32, -1) : NULL;
    if (!ui) return GR_ERR;
    const int64_t *off = uo->v.arr;
    const int32_t *items = ui->v.arr;
    if (check_off(r, "genrec.users.off", off, nu, (int64_t)ui->n, 0) != GR_OK) return GR_ERR;
    for (uint64_t k = 0; k < ui->n; k++)
        if (items[k] < 0 || items[k] >= g->n_items)
            return gr_errorf("%s: field 'genrec.users.items': interaction %llu has item %d outside [0, %d)", r->name,
                             (unsigned long long)k, (int)items[k], (int)g->n_items);
    if (!(c->user_key = dup_strs(uk))) return GR_ERR;
    c->n_users = nu;
    c->user_off = gr_alloc((size_t)nu + 1, sizeof(int64_t));
    c->user_item = gr_alloc((size_t)ui->n + 1, sizeof(int32_t));
    if (!c->user_off || !c->user_item) return GR_ERR;
    memcpy(c->user_off, off, sizeof(int64_t) * ((size_t)nu + 1));
    if (ui->n) memcpy(c->user_item, items, sizeof(int32_t) * (size_t)ui->n);
    return GR_OK;
}

static gr_model *load_gguf(const gr_gguf *gg, const char *name, gr_rec_catalog **cat)
{
    rd r = {gg, name};
    const char *mn;
    gr_error_clear();
    int64_t ver;
    if (!gr_gguf_find(gg, "genrec.model")) {
        gr_errorf("%s: field 'genrec.model' is missing: not a model saved by genrec train", name);
        return NULL;
    }
    if (gr_gguf_get_str(gg, "genrec.model", &mn, NULL) != GR_OK) return NULL;
    gen_items items;
    if (!strcmp(mn, "gen")) items = GEN_ITEMS_TITLE;
    else if (!strcmp(mn, "gen-sid")) items = GEN_ITEMS_SID;
    else {
        gr_errorf("%s: field 'genrec.model' = '%.40s': only gen and gen-sid models can be loaded", name, mn);
        return NULL;
    }
    if (rd_int(&r, "genrec.format_version", GEN_FILE_VERSION, GEN_FILE_VERSION, &ver) != GR_OK) return NULL;
    /* a default model (assistant off, so no CF model is created), then the file's state */
    gr_model *m = gr_model_create(mn, NULL);
    if (!m) { gr_error_prefix("%s: ", name); return NULL; }
    gen_model *g = m->impl;
    gr_rec_catalog *c = NULL;
    if (load_hparams(&r, g, items) != GR_OK || load_lm(&r, g) != GR_OK || load_items(&r, g) != GR_OK) goto fail;
    g->assist = 1.0f; /* the CF assistant is not saved */
    g->fitted = 1;
    m->n_items = g->n_items;
    m->max_k = g->decode == GEN_DECODE_GROUND ? 0 : g->beams;
    if (cat) {
        if (!(c = gr_calloc(1, sizeof *c)) || load_catalog(&r, g, c) != GR_OK) goto fail;
        *cat = c;
    }
    return m;
fail:
    if (gr_error_message()[0] == '\0') gr_errorf("%s: out of memory", name);
    gr_rec_catalog_free(c);
    gr_model_free(m);
    return NULL;
}

gr_model *gr_model_load(const char *path, gr_rec_catalog **cat)
{
    if (cat) *cat = NULL;
    if (!path) { gr_errorf("model load: no path"); return NULL; }
    gr_gguf *gg = gr_gguf_open(path);
    if (!gg) return NULL;
    gr_model *m = load_gguf(gg, path, cat);
    gr_gguf_close(gg);
    return m;
}

gr_model *gr_model_load_memory(const void *data, size_t size, const char *name, gr_rec_catalog **cat)
{
    if (cat) *cat = NULL;
    if (!name) name = "<memory>";
    gr_gguf *gg = gr_gguf_open_memory(data, size, name);
    if (!gg) return NULL;
    gr_model *m = load_gguf(gg, name, cat);
    gr_gguf_close(gg);
    return m;
}

/* ---- using a loaded model --------------------------------------------------------- */

int32_t gr_rec_catalog_user(const gr_rec_catalog *c, const char *key)
{
    if (!c || !key) return -1;
    for (int32_t u = 0; u < c->n_users; u++)
        if (!strcmp(c->user_key[u], key)) return u;
    return -1;
}

int32_t gr_rec_catalog_item(const gr_rec_catalog *c, const char *key_or_title)
{
    if (!c || !key_or_title) return -1;
    for (int32_t i = 0; i < c->n_items; i++)
        if (!strcmp(c->item_key[i], key_or_title)) return i;
    for (int32_t i = 0; i < c->n_items; i++)
        if (!strcmp(c->item_title[i], key_or_title)) return i;
    return -1;
}

int gr_model_set_beams(gr_model *m, int beams)
{
    if (!is_gen(m)) return gr_errorf("set beams: model %s has no beams", m && m->ops ? m->ops->name : "(null)");
    if (beams < 1 || beams > GEN_MAX_BEAMS) return gr_errorf("set beams: %d is outside [1, %d]", beams, GEN_MAX_BEAMS);
    gen_model *g = m->impl;
    g->beams = beams;
    m->max_k = g->decode == GEN_DECODE_GROUND ? 0 : beams;
    return GR_OK;
}

/* The top k eligible items of sc (finite, not excluded), best first, ties
 * to the smaller id; returns their count. */
static int top_k(const float *sc, int32_t n_items, const uint8_t *excl, int k, int32_t *items, float *scores)
{
    int n = 0;
    for (int32_t j = 0; j < n_items; j++) {
        const float v = sc[j];
        if (isnan(v) || v == -INFINITY || (excl && excl[j])) continue;
        if (n == k && !(v > sc[items[k - 1]])) continue;
        int p = n < k ? n++ : k - 1;
        while (p > 0 && v > sc[items[p - 1]]) { items[p] = items[p - 1]; p--; }
        items[p] = j;
    }
    if (scores) for (int i = 0; i < n; i++) scores[i] = sc[items[i]];
    return n;
}

int gr_model_recommend(gr_model *m, const int32_t *hist, int32_t n_hist, int k, int exclude_seen,
                       int32_t *items, float *scores, int *n_out)
{
    if (!m || !m->ops || !items || !n_out || k < 1 || n_hist < 0 || (n_hist > 0 && !hist))
        return gr_errorf("recommend: bad arguments (k = %d, %d history items)", k, (int)n_hist);
    *n_out = 0;
    for (int32_t i = 0; i < n_hist; i++)
        if (hist[i] < 0 || hist[i] >= m->n_items)
            return gr_errorf("recommend: history item %d is outside [0, %d)", (int)hist[i], (int)m->n_items);
    float *sc = gr_alloc((size_t)m->n_items, sizeof(float));
    uint8_t *excl = exclude_seen ? gr_calloc((size_t)m->n_items, 1) : NULL;
    if (!sc || (exclude_seen && !excl)) { gr_free(sc); gr_free(excl); return GR_ERR; }
    int32_t n_elig = m->n_items;
    for (int32_t i = 0; excl && i < n_hist; i++) if (!excl[hist[i]]) { excl[hist[i]] = 1; n_elig--; }
    gr_query q = {0};
    q.user = -1;
    q.target = -1;
    q.hist = hist;
    q.hist_len = n_hist;
    const int gen = is_gen(m);
    const int beams0 = gen ? ((gen_model *)m->impl)->beams : 0;
    int rc = GR_OK, n = 0;
    for (;;) {
        if (m->ops->score(m, &q, 1, sc) != GR_OK) { rc = gr_error_prefix("recommend: "); break; }
        n = top_k(sc, m->n_items, excl, k, items, scores);
        int beams = gen ? ((gen_model *)m->impl)->beams : 0;
        if (!gen || n >= k || n >= n_elig || beams >= GEN_MAX_BEAMS || beams >= m->n_items) break;
        gr_model_set_beams(m, beams * 2 > GEN_MAX_BEAMS ? GEN_MAX_BEAMS : beams * 2);
    }
    if (gen) gr_model_set_beams(m, beams0);
    gr_free(sc);
    gr_free(excl);
    if (rc != GR_OK) return rc;
    *n_out = n;
    return GR_OK;
}
