/* Items as tokens for the generative recommenders (gen_internal.h): the
 * vocabulary, every item's answer ids, the item trie and the language model
 * sized for them.
 *
 * Titles ("gen"): a byte-level BPE vocabulary trained on the catalogue's
 * texts (gr_rec_corpus + gr_bpe_train; size: the next power of two >=
 * n_items, clamped to [512, 4096], unless vocab is set); an item's answer is
 * encode(" " + title) + EOS under the compact template; the trie is built and
 * checked with exactly that tokenization. Titles with a pretrained base
 * (gen.base): the base's own tokenizer and the chosen template's answers
 * (e.g. D3's "\"" title "\"\n" + EOS), checked the same way.
 *
 * Semantic IDs ("gen-sid"): RQ-KMeans codes (genrec/semid.h) over item
 * embeddings (sid_emb, see sid_embeddings: text TF-IDF/SVD or a language
 * model's embeddings (gen-sid.text_model, lm_text_embed), collaborative
 * SVD of the training interactions, or both; sid_dim dimensions each). The vocabulary is BOS followed by the L x K level codes and
 * the collision codes; an answer is the item's L + 1 code tokens (all answers
 * have the same length, so none is a prefix of another and no end marker is
 * needed). Items whose text shares no word with any other item get an
 * all-zero embedding and are told apart by their collision codes only. */
#include <math.h>
#include <string.h>

#include "gen_internal.h"
#include "genrec/tokenizer.h"

static int items_answers(gen_model *g, const gr_tokenizer *tok);

static gr_lm *new_lm(gen_model *g, int V)
{
    gr_tfm_config c;
    int ff = g->ff > 0 ? g->ff : 3 * g->dim;
    gr_lm_config_preset(&c, GR_ARCH_LLAMA, g->layers, g->dim, g->heads, 0, ff, g->ctx, V);
    c.dropout = g->dropout;
    c.tied = 1;
    return gr_lm_init(GR_ARCH_LLAMA, &c, gr_rng_u64(&g->rng));
}

/* g's pretrained model (g->base, g->base_tok: gen.base or gen-sid.text_model)
 * with its tokenizer, or NULL + an error starting with the parameter's name. */
static gr_lm *load_pretrained(const gen_model *g)
{
    const char *key = g->items == GEN_ITEMS_SID ? "gen-sid.text_model" : "gen.base";
    const char *tok_key = g->items == GEN_ITEMS_SID ? "gen-sid.text_tokenizer" : "gen.base_tokenizer";
    gr_lm *lm = gr_lm_load(g->base, g->base_tok);
    if (!lm) { gr_error_prefix("%s: ", key); return NULL; }
    if (!gr_lm_tokenizer(lm)) {
        gr_errorf("%s: %s has no tokenizer (give %s)", key, g->base, tok_key);
        gr_lm_free(lm);
        return NULL;
    }
    return lm;
}

/* A pretrained base (gen.base) with its own tokenizer: the model's shape
 * becomes g's hyperparameters (saved with it). */
static int load_base(gen_model *g)
{
    if (!(g->lm = load_pretrained(g))) return GR_ERR;
    const gr_tokenizer *tok = gr_lm_tokenizer(g->lm);
    if (gr_tokenizer_eos(tok) < 0) return gr_errorf("gen.base: %s: the tokenizer has no end-of-text token", g->base);
    if (gr_lm_arch(g->lm) != GR_ARCH_LLAMA && gr_lm_arch(g->lm) != GR_ARCH_GPT2)
        return gr_errorf("gen.base: %s: only Llama and GPT-2 models can be fine-tuned", g->base);
    const gr_tfm_config *c = gr_lm_config(g->lm);
    g->dim = c->d_model; g->layers = c->n_layer; g->heads = c->n_head; g->ff = c->d_ff;
    g->kv_heads = c->n_kv_head && c->n_kv_head != c->n_head ? c->n_kv_head : 0;
    g->ctx = c->max_T; g->vocab = c->vocab; g->dropout = c->dropout;
    return GR_OK;
}

static int items_title(gen_model *g, const gr_split *sp)
{
    /* the item as text: its title, optionally with genres / brand, without the year */
    gr_itemtext_opts o = {g->with_genres, g->with_brand, 0, g->strip_year, 0};
    g->it = gr_itemtext_build(sp->data, &o);
    if (!g->it) return GR_ERR;
    if (!g->tmpl.name) g->tmpl = gr_prompt_tmpl_compact();
    if (g->base) {
        if (load_base(g) != GR_OK) return GR_ERR;
        const gr_tokenizer *tok = gr_lm_tokenizer(g->lm);
        g->bos = gr_tokenizer_bos(tok) >= 0 ? gr_tokenizer_bos(tok) : gr_tokenizer_eos(tok);
        g->eos = gr_tokenizer_eos(tok);
        return items_answers(g, tok);
    }
    size_t len;
    char *corpus = gr_rec_corpus(&g->tmpl, g->it, &len);
    if (!corpus) return GR_ERR;
    int V = g->vocab;
    if (V <= 0) {
        V = 512;
        while (V < sp->n_items && V < 4096) V *= 2;
    }
    const char *specials[1] = {"<|endoftext|>"};
    gr_bpe_train_opts bo = {V, 2, specials, 1};
    gr_tokenizer *tok = gr_bpe_train(corpus, len, &bo);
    gr_free(corpus);
    if (!tok) return GR_ERR;
    g->bos = gr_tokenizer_bos(tok);
    g->eos = gr_tokenizer_eos(tok);
    g->lm = new_lm(g, gr_tokenizer_n_vocab(tok));
    if (!g->lm) { gr_tokenizer_free(tok); return GR_ERR; }
    if (gr_lm_set_tokenizer(g->lm, tok) != GR_OK) { gr_tokenizer_free(tok); return GR_ERR; }
    return items_answers(g, tok);
}

/* Every item's answer ids and the trie, with exactly the tokenization of
 * training (checked: every answer lies on a trie path). */
static int items_answers(gen_model *g, const gr_tokenizer *tok)
{
    for (int32_t i = 0; i < g->n_items; i++) {
        g->ans[i] = gr_answer_encode(&g->tmpl, tok, g->it, i, &g->ans_len[i]);
        if (!g->ans[i]) return GR_ERR;
    }
    g->tr = gr_trie_build_answers(&g->tmpl, tok, g->it, g->pop);
    if (!g->tr) return GR_ERR;
    return gr_trie_check_answers(g->tr, &g->tmpl, tok, g->it, NULL);
}

/* Text embeddings from a language model (gen-sid.text_model): the mean of
 * the final hidden states of each item's text (its first max_T tokens),
 * centred over the items and L2-normalised (a language model's states share a
 * large common direction that would otherwise dominate the k-means). New
 * (n_items, d_model) array or NULL + error. */
static float *lm_text_embed(gen_model *g, const gr_itemtext *it, int32_t *dim)
{
    gr_lm *lm = load_pretrained(g);
    if (!lm) return NULL;
    const gr_tokenizer *tok = gr_lm_tokenizer(lm);
    const int C = gr_lm_config(lm)->d_model, T = gr_lm_config(lm)->max_T;
    const int32_t n = it->n;
    int32_t **ids = gr_calloc((size_t)n, sizeof *ids);
    int64_t *len = gr_alloc((size_t)n, sizeof *len);
    float *e = gr_alloc((size_t)n * (size_t)C, sizeof(float));
    int ok = ids && len && e;
    for (int32_t i = 0; ok && i < n; i++) {
        const char *t = it->text[i][0] ? it->text[i] : " ";
        ids[i] = gr_tokenizer_encode(tok, t, strlen(t), gr_tokenizer_wants_bos(tok), &len[i]);
        ok = ids[i] && len[i] > 0;
        if (ok && len[i] > T) len[i] = T;
    }
    ok = ok && gr_lm_embed_seqs(lm, (const int32_t *const *)ids, len, n, GR_POOL_MEAN, e) == GR_OK;
    if (ok) {
        for (int c = 0; c < C; c++) {
            double mu = 0.0;
            for (int32_t i = 0; i < n; i++) mu += e[(int64_t)i * C + c];
            mu /= n;
            for (int32_t i = 0; i < n; i++) e[(int64_t)i * C + c] -= (float)mu;
        }
        for (int32_t i = 0; i < n; i++) {
            float *r = e + (int64_t)i * C;
            double ss = 0.0;
            for (int c = 0; c < C; c++) ss += (double)r[c] * r[c];
            const float inv = ss > 0 ? (float)(1.0 / sqrt(ss)) : 0.0f;
            for (int c = 0; c < C; c++) r[c] *= inv;
        }
    }
    if (ids) for (int32_t i = 0; i < n; i++) gr_free(ids[i]);
    gr_free(ids);
    gr_free(len);
    gr_lm_free(lm);
    if (!ok) { gr_free(e); gr_error_prefix("gen-sid.text_model: "); return NULL; }
    *dim = C;
    return e;
}

/* Item embeddings for the semantic IDs (sid_emb): 0 = text (TF-IDF/SVD of
 * title, genres, brand, text), 1 = collaborative (SVD of the training
 * item x user matrix), 2 = both, each half L2-normalised and weighted 1/sqrt 2. */
static float *sid_embeddings(gen_model *g, const gr_split *sp, int32_t *dim)
{
    float *parts[2] = {NULL, NULL};
    int32_t d[2] = {0, 0};
    if (g->sid_emb != 1) {
        gr_itemtext_opts all = {1, 1, 1, 0, 0};
        gr_itemtext *full = gr_itemtext_build(sp->data, &all);
        if (!full) return NULL;
        parts[0] = g->base ? lm_text_embed(g, full, &d[0])
                           : gr_semid_tfidf_embed(full, g->sid_dim, gr_rng_u64(&g->rng), &d[0]);
        gr_itemtext_free(full);
        if (!parts[0]) return NULL;
    }
    if (g->sid_emb != 0) {
        parts[1] = gr_semid_cf_embed(sp->train_off, sp->train_item, sp->n_users, sp->n_items, g->sid_dim,
                                     gr_rng_u64(&g->rng), &d[1]);
        if (!parts[1]) { gr_free(parts[0]); return NULL; }
    }
    if (!parts[0] || !parts[1]) {
        *dim = parts[0] ? d[0] : d[1];
        return parts[0] ? parts[0] : parts[1];
    }
    *dim = d[0] + d[1];
    float *e = gr_alloc((size_t)g->n_items * (size_t)*dim, sizeof(float));
    if (e) {
        const float w = 0.70710678f;
        for (int64_t i = 0; i < g->n_items; i++) {
            for (int32_t j = 0; j < d[0]; j++) e[i * *dim + j] = w * parts[0][i * d[0] + j];
            for (int32_t j = 0; j < d[1]; j++) e[i * *dim + d[0] + j] = w * parts[1][i * d[1] + j];
        }
    }
    gr_free(parts[0]);
    gr_free(parts[1]);
    return e;
}

static int items_sid(gen_model *g, const gr_split *sp)
{
    g->it = gr_itemtext_build(sp->data, NULL);
    if (!g->it) return GR_ERR;
    int32_t d = 0;
    float *emb = sid_embeddings(g, sp, &d);
    if (!emb) return GR_ERR;
    gr_semid_opts so = gr_semid_opts_default();
    so.n_levels = g->sid_levels;
    so.K = g->sid_k;
    so.seed = gr_rng_u64(&g->rng);
    g->sid = gr_semid_build(emb, g->n_items, d, &so);
    gr_free(emb);
    if (!g->sid) return GR_ERR;
    const int32_t L1 = g->sid->n_levels + 1;
    g->bos = 0;
    g->eos = -1;
    g->lm = new_lm(g, 1 + gr_semid_n_tokens(g->sid));
    if (!g->lm) return GR_ERR;
    int64_t *off = gr_alloc((size_t)g->n_items + 1, sizeof(int64_t));
    int32_t *ids = gr_alloc((size_t)g->n_items * (size_t)L1, sizeof(int32_t));
    if (!off || !ids) { gr_free(off); gr_free(ids); return GR_ERR; }
    off[0] = 0;
    for (int32_t i = 0; i < g->n_items; i++) {
        g->ans[i] = gr_alloc((size_t)L1, sizeof(int32_t));
        if (!g->ans[i] || gr_semid_item_tokens(g->sid, i, 1, g->ans[i]) != L1) {
            gr_free(off); gr_free(ids);
            return GR_ERR;
        }
        g->ans_len[i] = L1;
        memcpy(ids + (int64_t)i * L1, g->ans[i], sizeof(int32_t) * (size_t)L1);
        off[i + 1] = off[i] + L1;
    }
    g->tr = gr_trie_build(off, ids, g->n_items, g->pop);
    gr_free(off); gr_free(ids);
    return g->tr ? GR_OK : GR_ERR;
}

/* Build g's items for the split (see the top): it, tmpl, sid, lm, ans,
 * ans_len, bos, eos, pop, tr. GR_OK or GR_ERR + error; the caller frees the
 * partial state with gen_state_free on error. */
int gen_items_build(gen_model *g, const gr_split *sp)
{
    g->n_items = sp->n_items;
    g->ans = gr_calloc((size_t)g->n_items, sizeof *g->ans);
    g->ans_len = gr_calloc((size_t)g->n_items, sizeof *g->ans_len);
    g->pop = gr_rec_train_counts(sp);
    if (!g->ans || !g->ans_len || !g->pop) return GR_ERR;
    int rc = g->items == GEN_ITEMS_SID ? items_sid(g, sp) : items_title(g, sp);
    if (rc != GR_OK) return GR_ERR;
    if (g->tr->max_depth + 2 > g->ctx)
        return gr_errorf("the longest item takes %d tokens; ctx (%d) must be at least %d", g->tr->max_depth, g->ctx,
                         g->tr->max_depth + 2);
    return GR_OK;
}
