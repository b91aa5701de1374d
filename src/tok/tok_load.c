/* Tokenizer loaders: GGUF metadata, GPT-2 encoder.json + vocab.bpe, Hugging
 * Face tokenizer.json, llama2.c tokenizer.bin, and auto-detection. */
#include "genrec/common.h"
#include "genrec/json.h"
#include "tok/tok_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_VOCAB (1 << 26)
#define MAX_FILE ((size_t)1 << 31) /* largest vocabulary / merges file read */

/* Split a merge rule "a b" at the first space after the first byte. */
static int split_merge(const char *s, size_t n, size_t *sp)
{
    for (size_t i = 1; i < n; i++)
        if (s[i] == ' ') { *sp = i; return 1; }
    return 0;
}

static int32_t special_id(int64_t v, int32_t n_vocab)
{
    return v >= 0 && v < n_vocab ? (int32_t)v : -1;
}

/* ---- GGUF ---------------------------------------------------------------------------------- */

static void gguf_opt_id(const gr_gguf *g, const char *key, int32_t n_vocab, int32_t *out)
{
    int64_t v;
    if (gr_gguf_find(g, key) && gr_gguf_get_int(g, key, &v) == GR_OK) *out = special_id(v, n_vocab);
}

static void gguf_opt_bool(const gr_gguf *g, const char *key, int *out)
{
    int v;
    if (gr_gguf_find(g, key) && gr_gguf_get_bool(g, key, &v) == GR_OK) *out = v;
}

gr_tokenizer *gr_tokenizer_from_gguf(const gr_gguf *g)
{
    const char *model;
    if (gr_gguf_get_str(g, "tokenizer.ggml.model", &model, NULL)) return NULL;
    gr_tok_kind kind;
    if (!strcmp(model, "gpt2")) kind = GR_TOK_BPE;
    else if (!strcmp(model, "llama")) kind = GR_TOK_SPM;
    else { gr_errorf("tokenizer.ggml.model '%.64s' is not supported (gpt2 or llama)", model); return NULL; }
    const gr_gguf_kv *toks = gr_gguf_get_arr(g, "tokenizer.ggml.tokens", GR_GGUF_STRING);
    if (!toks) return NULL;
    if (toks->n == 0 || toks->n > MAX_VOCAB) { gr_errorf("tokenizer.ggml.tokens: bad vocabulary size %" PRIu64, toks->n); return NULL; }
    int32_t nv = (int32_t)toks->n;
    const gr_gguf_kv *scores = gr_gguf_find(g, "tokenizer.ggml.scores");
    const gr_gguf_kv *types = gr_gguf_find(g, "tokenizer.ggml.token_type");
    if (scores && !(scores = gr_gguf_get_arr(g, "tokenizer.ggml.scores", GR_GGUF_F32))) return NULL;
    if (types && !(types = gr_gguf_get_arr(g, "tokenizer.ggml.token_type", GR_GGUF_I32))) return NULL;
    if (scores && scores->n != toks->n) { gr_errorf("tokenizer.ggml.scores has %" PRIu64 " entries, tokens %d", scores->n, nv); return NULL; }
    if (types && types->n != toks->n) { gr_errorf("tokenizer.ggml.token_type has %" PRIu64 " entries, tokens %d", types->n, nv); return NULL; }
    const char *pre = NULL;
    if (gr_gguf_find(g, "tokenizer.ggml.pre") && gr_gguf_get_str(g, "tokenizer.ggml.pre", &pre, NULL)) return NULL;
    if (kind == GR_TOK_BPE && pre && strcmp(pre, "gpt-2") && strcmp(pre, "gpt2") && strcmp(pre, "default")) {
        gr_errorf("tokenizer.ggml.pre '%.64s' is not supported (only the GPT-2 pre-tokenizer is implemented)", pre);
        return NULL;
    }
    gr_tokenizer *t = tok_new(kind, nv);
    if (!t) return NULL;
    if (pre) snprintf(t->pre, sizeof t->pre, "%s", pre);
    for (int32_t i = 0; i < nv; i++) {
        float sc = scores ? ((const float *)scores->v.arr)[i] : 0.0f;
        int32_t ty = types ? ((const int32_t *)types->v.arr)[i] : GR_TOKEN_NORMAL;
        if (tok_set(t, i, toks->v.strs[i], (size_t)toks->str_lens[i], sc, ty)) goto fail;
    }
    if (tok_index(t)) goto fail;
    if (kind == GR_TOK_BPE) {
        const gr_gguf_kv *m = gr_gguf_get_arr(g, "tokenizer.ggml.merges", GR_GGUF_STRING);
        if (!m) goto fail;
        for (uint64_t k = 0; k < m->n; k++) {
            size_t sp;
            int added;
            const char *s = m->v.strs[k];
            if (!split_merge(s, (size_t)m->str_lens[k], &sp)) {
                gr_errorf("tokenizer.ggml.merges[%" PRIu64 "]: '%.64s' is not \"left right\"", k, s);
                goto fail;
            }
            if (tok_add_merge(t, s, sp, s + sp + 1, (size_t)m->str_lens[k] - sp - 1, &added)) goto fail;
        }
    }
    gguf_opt_id(g, "tokenizer.ggml.bos_token_id", nv, &t->bos);
    gguf_opt_id(g, "tokenizer.ggml.eos_token_id", nv, &t->eos);
    gguf_opt_id(g, "tokenizer.ggml.unknown_token_id", nv, &t->unk);
    gguf_opt_id(g, "tokenizer.ggml.padding_token_id", nv, &t->pad);
    gguf_opt_bool(g, "tokenizer.ggml.add_bos_token", &t->add_bos);
    gguf_opt_bool(g, "tokenizer.ggml.add_eos_token", &t->add_eos);
    gguf_opt_bool(g, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix);
    return t;
fail:
    gr_tokenizer_free(t);
    return NULL;
}

/* ---- GPT-2 encoder.json + vocab.bpe ---------------------------------------------------------- */

/* Fill a BPE tokenizer's vocabulary from a JSON object {token: id}. */
static gr_tokenizer *bpe_from_vocab_obj(const gr_json *vocab, const gr_json *added, const char *what)
{
    if (!vocab || vocab->type != GR_JSON_OBJECT || !vocab->n) { gr_errorf("%s: vocabulary object missing or empty", what); return NULL; }
    int64_t max_id = -1;
    for (size_t i = 0; i < vocab->n; i++) {
        const gr_json *v = &vocab->u.items[i];
        if (v->type != GR_JSON_NUMBER || !v->u.num.is_int || v->u.num.i < 0 || v->u.num.i >= MAX_VOCAB) {
            gr_errorf("%s: token '%.64s': id is not an integer in [0, %d)", what, v->key, MAX_VOCAB);
            return NULL;
        }
        if (v->u.num.i > max_id) max_id = v->u.num.i;
    }
    for (size_t i = 0; added && added->type == GR_JSON_ARRAY && i < added->n; i++) {
        const gr_json *id = gr_json_get(&added->u.items[i], "id");
        if (id && id->type == GR_JSON_NUMBER && id->u.num.is_int && id->u.num.i >= 0 && id->u.num.i < MAX_VOCAB &&
            id->u.num.i > max_id)
            max_id = id->u.num.i;
    }
    gr_tokenizer *t = tok_new(GR_TOK_BPE, (int32_t)max_id + 1);
    if (!t) return NULL;
    for (size_t i = 0; i < vocab->n; i++) {
        const gr_json *v = &vocab->u.items[i];
        if (tok_set(t, (int32_t)v->u.num.i, v->key, v->key_len, 0.0f, GR_TOKEN_NORMAL)) { gr_tokenizer_free(t); return NULL; }
    }
    for (size_t i = 0; added && added->type == GR_JSON_ARRAY && i < added->n; i++) {
        const gr_json *a = &added->u.items[i], *id = gr_json_get(a, "id"), *content = gr_json_get(a, "content");
        const gr_json *special = gr_json_get(a, "special");
        if (!id || id->type != GR_JSON_NUMBER || !id->u.num.is_int || id->u.num.i < 0 || id->u.num.i > max_id || !gr_json_str(content)) {
            gr_errorf("%s: added_tokens[%zu]: needs an integer id and a string content", what, i);
            gr_tokenizer_free(t);
            return NULL;
        }
        int type = special && special->type == GR_JSON_BOOL && special->u.boolean ? GR_TOKEN_CONTROL : GR_TOKEN_USER_DEFINED;
        if (tok_set(t, (int32_t)id->u.num.i, content->u.str, content->n, 0.0f, type)) { gr_tokenizer_free(t); return NULL; }
    }
    if (tok_index(t)) { gr_tokenizer_free(t); return NULL; }
    return t;
}

static void set_default_specials(gr_tokenizer *t)
{
    int32_t e = gr_tokenizer_find(t, "<|endoftext|>", 13);
    if (e >= 0) {
        t->types[e] = GR_TOKEN_CONTROL;
        if (t->bos < 0) t->bos = e;
        if (t->eos < 0) t->eos = e;
    }
}

gr_tokenizer *gr_tokenizer_load_gpt2(const char *encoder_json, const char *vocab_bpe)
{
    gr_json_doc *doc = gr_json_load(encoder_json);
    if (!doc) return NULL;
    gr_tokenizer *t = bpe_from_vocab_obj(gr_json_root(doc), NULL, encoder_json);
    gr_json_free(doc);
    if (!t) return NULL;
    size_t len;
    char *txt = gr_read_file(vocab_bpe, MAX_FILE, &len);
    if (!txt) { gr_tokenizer_free(t); return NULL; }
    size_t line = 0;
    for (char *p = txt, *end = txt + len; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        line++;
        if (n && p[n - 1] == '\r') n--;
        if (n && !(line == 1 && !strncmp(p, "#version", 8))) {
            size_t sp;
            int added;
            if (!split_merge(p, n, &sp)) {
                gr_errorf("%s:%zu: merge rule is not \"left right\"", vocab_bpe, line);
                free(txt);
                gr_tokenizer_free(t);
                return NULL;
            }
            if (tok_add_merge(t, p, sp, p + sp + 1, n - sp - 1, &added)) { free(txt); gr_tokenizer_free(t); return NULL; }
        }
        p = nl ? nl + 1 : end;
    }
    free(txt);
    set_default_specials(t);
    return t;
}

/* ---- Hugging Face tokenizer.json ---------------------------------------------------------------- */

/* Special token named in tokenizer_config.json ("bos_token": "x" or {"content": "x"}). */
static int32_t config_token(const gr_tokenizer *t, const gr_json *cfg, const char *key)
{
    const gr_json *v = gr_json_get(cfg, key);
    if (v && v->type == GR_JSON_OBJECT) v = gr_json_get(v, "content");
    const char *s = gr_json_str(v);
    return s ? gr_tokenizer_find(t, s, v->n) : -1;
}

static const gr_json *find_byte_level(const gr_json *pt)
{
    const char *type = gr_json_str(gr_json_get(pt, "type"));
    if (!type) return NULL;
    if (!strcmp(type, "ByteLevel")) return pt;
    const gr_json *list = gr_json_get(pt, "pretokenizers");
    if (!strcmp(type, "Sequence") && list && list->type == GR_JSON_ARRAY)
        for (size_t i = 0; i < list->n; i++) {
            const gr_json *b = find_byte_level(&list->u.items[i]);
            if (b) return b;
        }
    return NULL;
}

gr_tokenizer *gr_tokenizer_load_hf_json(const char *path)
{
    gr_json_doc *doc = gr_json_load(path);
    if (!doc) return NULL;
    const gr_json *root = gr_json_root(doc), *model = gr_json_get(root, "model");
    const char *mtype = gr_json_str(gr_json_get(model, "type"));
    gr_tokenizer *t = NULL;
    if (!model || (mtype && strcmp(mtype, "BPE"))) {
        gr_errorf("%s: model.type '%s' is not supported (BPE only)", path, mtype ? mtype : "(missing)");
        goto done;
    }
    const gr_json *bl = find_byte_level(gr_json_get(root, "pre_tokenizer"));
    if (!bl) { gr_errorf("%s: pre_tokenizer is not ByteLevel (only byte-level BPE is supported)", path); goto done; }
    const gr_json *merges = gr_json_get(model, "merges");
    if (!merges || merges->type != GR_JSON_ARRAY) { gr_errorf("%s: model.merges is missing", path); goto done; }
    if (!(t = bpe_from_vocab_obj(gr_json_get(model, "vocab"), gr_json_get(root, "added_tokens"), path))) goto done;
    const gr_json *aps = gr_json_get(bl, "add_prefix_space");
    t->add_space_prefix = aps && aps->type == GR_JSON_BOOL && aps->u.boolean;
    for (size_t k = 0; k < merges->n; k++) {
        const gr_json *m = &merges->u.items[k];
        int added, rc;
        size_t sp;
        if (m->type == GR_JSON_STRING && split_merge(m->u.str, m->n, &sp))
            rc = tok_add_merge(t, m->u.str, sp, m->u.str + sp + 1, m->n - sp - 1, &added);
        else if (m->type == GR_JSON_ARRAY && m->n == 2 && gr_json_str(&m->u.items[0]) && gr_json_str(&m->u.items[1]))
            rc = tok_add_merge(t, m->u.items[0].u.str, m->u.items[0].n, m->u.items[1].u.str, m->u.items[1].n, &added);
        else rc = gr_errorf("%s: model.merges[%zu] is not \"left right\" or [left, right]", path, k);
        if (rc) { gr_tokenizer_free(t); t = NULL; goto done; }
    }
    /* bos/eos from a tokenizer_config.json next to the file */
    size_t pl = strlen(path);
    char *cfg_path = malloc(pl + 32);
    if (cfg_path) {
        memcpy(cfg_path, path, pl + 1);
        char *slash = strrchr(cfg_path, '/');
        strcpy(slash ? slash + 1 : cfg_path, "tokenizer_config.json");
        struct stat st;
        if (stat(cfg_path, &st) == 0) {
            gr_json_doc *cfg = gr_json_load(cfg_path);
            if (cfg) {
                t->bos = config_token(t, gr_json_root(cfg), "bos_token");
                t->eos = config_token(t, gr_json_root(cfg), "eos_token");
                t->unk = config_token(t, gr_json_root(cfg), "unk_token");
                gr_json_free(cfg);
            }
        }
        free(cfg_path);
    }
    set_default_specials(t);
done:
    gr_json_free(doc);
    return t;
}

/* ---- llama2.c tokenizer.bin ------------------------------------------------------------------------ */

gr_tokenizer *gr_tokenizer_load_llama2c(const char *path)
{
    size_t len;
    char *d = gr_read_file(path, MAX_FILE, &len);
    if (!d) return NULL;
    gr_tokenizer *t = NULL;
    int32_t maxlen;
    if (len < 4) { gr_errorf("%s: offset 0: field 'max_token_length': truncated file", path); goto done; }
    memcpy(&maxlen, d, 4);
    if (maxlen <= 0 || maxlen > (1 << 20)) { gr_errorf("%s: offset 0: field 'max_token_length': bad value %d", path, maxlen); goto done; }
    int64_t n = 0;
    for (size_t off = 4; off < len; n++) {
        int32_t l;
        if (len - off < 8) { gr_errorf("%s: offset %zu: field 'token[%" PRId64 "]': truncated header", path, off, n); goto done; }
        memcpy(&l, d + off + 4, 4);
        if (l < 0 || l > maxlen || (size_t)l > len - off - 8) {
            gr_errorf("%s: offset %zu: field 'token[%" PRId64 "].len': %d is negative, exceeds max_token_length or the file", path, off + 4, n, l);
            goto done;
        }
        off += 8 + (size_t)l;
        if (n >= MAX_VOCAB) { gr_errorf("%s: too many tokens", path); goto done; }
    }
    if (!(t = tok_new(GR_TOK_SPM, (int32_t)n))) goto done;
    char *buf = malloc((size_t)maxlen * 3 + 1);
    if (!buf) { gr_errorf("out of memory"); gr_tokenizer_free(t); t = NULL; goto done; }
    size_t off = 4;
    for (int32_t i = 0; i < n; i++) {
        float score;
        int32_t l;
        memcpy(&score, d + off, 4);
        memcpy(&l, d + off + 4, 4);
        const char *s = d + off + 8;
        size_t k = 0;
        for (int32_t j = 0; j < l; j++) {
            if (s[j] == ' ') { memcpy(buf + k, "\xE2\x96\x81", 3); k += 3; }
            else buf[k++] = s[j];
        }
        int type = GR_TOKEN_NORMAL;
        if (l == 6 && !memcmp(s, "<0x", 3) && s[5] == '>') type = GR_TOKEN_BYTE;
        if (i == 0 && l == 5 && !memcmp(s, "<unk>", 5)) type = GR_TOKEN_UNKNOWN;
        if (i == 1 || i == 2) type = GR_TOKEN_CONTROL;
        if (tok_set(t, i, buf, k, score, type)) { free(buf); gr_tokenizer_free(t); t = NULL; goto done; }
        off += 8 + (size_t)l;
    }
    free(buf);
    if (tok_index(t)) { gr_tokenizer_free(t); t = NULL; goto done; }
    t->unk = t->types[0] == GR_TOKEN_UNKNOWN ? 0 : -1;
    t->bos = n > 1 ? 1 : -1;
    t->eos = n > 2 ? 2 : -1;
done:
    free(d);
    return t;
}

/* ---- auto-detection -------------------------------------------------------------------------------- */


gr_tokenizer *gr_tokenizer_load(const char *path)
{
    struct stat st;
    if (stat(path, &st)) { gr_errorf("%s: %s", path, strerror(errno)); return NULL; }
    if (S_ISDIR(st.st_mode)) {
        char *enc = gr_path_join(path, "encoder.json"), *bpe = gr_path_join(path, "vocab.bpe");
        char *hf = gr_path_join(path, "tokenizer.json"), *bin = gr_path_join(path, "tokenizer.bin");
        gr_tokenizer *t = NULL;
        if (gr_path_is_file(enc) && gr_path_is_file(bpe)) t = gr_tokenizer_load_gpt2(enc, bpe);
        else if (gr_path_is_file(hf)) t = gr_tokenizer_load_hf_json(hf);
        else if (gr_path_is_file(bin)) t = gr_tokenizer_load_llama2c(bin);
        else gr_errorf("%s: no encoder.json + vocab.bpe, tokenizer.json or tokenizer.bin in this directory", path);
        free(enc); free(bpe); free(hf); free(bin);
        return t;
    }
    char magic[4] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) { gr_errorf("%s: cannot open: %s", path, strerror(errno)); return NULL; }
    size_t got = fread(magic, 1, 4, f);
    fclose(f);
    if (got == 4 && !memcmp(magic, "GGUF", 4)) {
        gr_gguf *g = gr_gguf_open(path);
        if (!g) return NULL;
        gr_tokenizer *t = gr_tokenizer_from_gguf(g);
        if (!t) gr_error_prefix("%s: ", path);
        gr_gguf_close(g);
        return t;
    }
    size_t pl = strlen(path);
    if (pl >= 5 && !strcmp(path + pl - 5, ".json")) return gr_tokenizer_load_hf_json(path);
    return gr_tokenizer_load_llama2c(path);
}
