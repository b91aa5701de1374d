/* "gen" fine-tuning a pretrained model (gen.base) with its own tokenizer and
 * an instruction template (D3's prompt), fully or with LoRA:
 *  - a base GGUF written here (a small Llama + a BPE tokenizer) is fine-tuned
 *    on a synthetic world through the real evaluation path: only real items
 *    are returned, the model learns (validation and test NDCG@10 above the
 *    untrained base's, and the validation answers' likelihood far higher:
 *    the less noisy measure), and the saved file reloads to identical scores;
 *  - with LoRA only the adapted projections change (merged at the end): the
 *    embedding, norms and unadapted projections stay bit-identical to the
 *    base's, and the adapted ones differ;
 *  - semantic IDs can come from the base's embeddings of the item texts;
 *  - bad combinations of keys are errors naming the key; the item-text
 *    options (genres, year) reach the answers;
 *  - with ../shared/models: stories260K (llama2.c .bin + its SentencePiece
 *    tokenizer, LoRA) and tiny-random-gpt2 (safetensors, GPT-2, all weights)
 *    fine-tune, decode real items only and round-trip through the file. */
#include "gr_test.h"
#include "genrec/eval.h"
#include "genrec/lm_io.h"
#include "genrec/lora.h"
#include "genrec/model.h"
#include "genrec/synth.h"
#include "genrec/tokenizer.h"
#include "models/gen_internal.h"

#include <stdlib.h>

static gr_dataset *world(int n_users)
{
    gr_synth_opts so = gr_synth_opts_default();
    so.n_users = n_users;
    so.n_items = 80;
    so.per_user = 14;
    so.seed = 9;
    gr_synth_world *w = gr_synth_generate(&so);
    if (!w) return NULL;
    gr_dataset *d = gr_synth_to_dataset(w);
    gr_synth_free(w);
    return d;
}

#define NKV(a) ((int)(sizeof a / sizeof a[0]))

static char base_path[1024];

/* The named base parameter of a model as a pointer and its element count. */
static const float *view(gr_lm *lm, const char *name, int64_t *n)
{
    const gr_tfm_param_view *v;
    int nv = gr_tfm_param_views(gr_lm_tfm(lm), &v);
    for (int i = 0; i < nv; i++)
        if (!strcmp(v[i].name, name)) {
            *n = 1;
            for (int k = 0; k < v[i].ndim; k++) *n *= v[i].shape[k];
            return gr_tfm_params(gr_lm_tfm(lm)) + v[i].offset;
        }
    return NULL;
}

/* A "pretrained" base: a small Llama with a BPE tokenizer trained on the
 * catalogue and the D3 prompt's text, saved as GGUF. */
static void write_base(const gr_dataset *d)
{
    gr_itemtext *it = gr_itemtext_build(d, NULL);
    REQUIRE(it);
    gr_prompt_tmpl t = gr_prompt_tmpl_d3("games");
    size_t len;
    char *corpus = gr_rec_corpus(&t, it, &len);
    REQUIRE(corpus);
    const char *specials[1] = {"<|endoftext|>"};
    gr_bpe_train_opts bo = {400, 2, specials, 1};
    gr_tokenizer *tok = gr_bpe_train(corpus, len, &bo);
    gr_free(corpus);
    REQUIRE(tok);
    gr_tfm_config c;
    gr_lm_config_preset(&c, GR_ARCH_LLAMA, 1, 32, 2, 0, 96, 256, gr_tokenizer_n_vocab(tok));
    c.tied = 1;
    gr_lm *lm = gr_lm_init(GR_ARCH_LLAMA, &c, 3);
    REQUIRE(lm);
    /* embeddings at a trained model's scale (std 0.5, not the init's 0.02):
     * the head is tied and frozen under LoRA, and with std 0.02 no logit
     * could exceed ~0.7, so nothing could learn through adapters */
    int64_t ne = 0;
    float *e = (float *)view(lm, "token_embd.weight", &ne);
    REQUIRE(e);
    for (int64_t i = 0; i < ne; i++) e[i] *= 25.0f;
    REQUIRE(gr_lm_set_tokenizer(lm, tok) == GR_OK);
    snprintf(base_path, sizeof base_path, "%s/base.gguf", gr_test_tmpdir());
    REQUIRE(gr_lm_save(lm, base_path, NULL) == GR_OK);
    gr_lm_free(lm);
    gr_itemtext_free(it);
}

/* Fit through the evaluation path; returns the fitted model (caller frees). */
static gr_model *fit_eval(const char **kv, int nkv, const gr_split *s, gr_eval_result *r)
{
    gr_params p = {kv, nkv};
    gr_model *m = gr_model_create("gen", &p);
    if (!m) {
        gr_test_fail(__FILE__, __LINE__, "create: %s", gr_error_message());
        return NULL;
    }
    gr_eval_opts eo = gr_eval_opts_default();
    if (gr_eval_run_model(m, "gen", s, &eo, 7, 0, r) != GR_OK) {
        gr_test_fail(__FILE__, __LINE__, "eval: %s", gr_error_message());
        gr_model_free(m);
        return NULL;
    }
    CHECK_NEAR(r->invalid_rate, 0.0, 0.0); /* constrained decoding: real items only */
    return m;
}

/* Save m, load it back, and compare the scores of the first n test queries. */
static void check_round_trip(gr_model *m, const gr_split *s, const char *name)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/%s", gr_test_tmpdir(), name);
    REQUIRE(gr_model_save(m, s, path) == GR_OK);
    gr_rec_catalog *cat = NULL;
    gr_model *l = gr_model_load(path, &cat);
    if (!l) fprintf(stderr, "error: %s\n", gr_error_message());
    REQUIRE(l);
    const int n = 6;
    float *a = malloc(sizeof(float) * (size_t)n * (size_t)s->n_items);
    float *b = malloc(sizeof(float) * (size_t)n * (size_t)s->n_items);
    REQUIRE(a && b);
    REQUIRE(m->ops->score(m, s->test, n, a) == GR_OK);
    REQUIRE(l->ops->score(l, s->test, n, b) == GR_OK);
    CHECK(memcmp(a, b, sizeof(float) * (size_t)n * (size_t)s->n_items) == 0);
    const gen_model *gm = m->impl, *gl = l->impl;
    CHECK(gl->tmpl.name && !strcmp(gl->tmpl.name, gm->tmpl.name));
    CHECK(gl->base && gm->base && !strcmp(gl->base, gm->base));
    free(a);
    free(b);
    gr_rec_catalog_free(cat);
    gr_model_free(l);
}

/* Mean answer negative log-likelihood per token of lm on the validation
 * queries' SFT samples (template t, items it): the less noisy measure of
 * what fine-tuning learned (NDCG of a few hundred users moves by +-0.02). */
static double answer_nll(gr_lm *lm, const gr_prompt_tmpl *t, const gr_itemtext *it, const gr_split *s)
{
    gr_sft_set *ss = gr_sft_build(s->valid, s->n_valid, t, gr_lm_tokenizer(lm), it, gr_lm_config(lm)->max_T);
    if (!ss) return -1.0;
    const int64_t N = ss->off[ss->n];
    int32_t *tgt = malloc(sizeof(int32_t) * (size_t)N), *off = malloc(sizeof(int32_t) * (size_t)(ss->n + 1));
    double nll = -1.0, sum = 0.0;
    int64_t cnt = 0;
    if (tgt && off) {
        for (int64_t w = 0; w <= ss->n; w++) off[w] = (int32_t)ss->off[w];
        for (int64_t w = 0; w < ss->n; w++)
            for (int64_t j = ss->off[w]; j < ss->off[w + 1]; j++)
                tgt[j] = j + 1 < ss->off[w + 1] && ss->mask[j + 1] ? ss->ids[j + 1] : -1;
        gr_lm_batch b = {ss->ids, tgt, NULL, off, (int)ss->n, (int)N};
        if (gr_lm_eval_loss(lm, &b, &sum, &cnt) == GR_OK && cnt > 0) nll = sum / (double)cnt;
    }
    free(tgt);
    free(off);
    gr_sft_free(ss);
    return nll;
}

static void test_finetune_full_and_lora(void)
{
    gr_dataset *d = world(200);
    REQUIRE(d);
    gr_split *s = gr_split_build(d, NULL);
    REQUIRE(s);
    write_base(d);
    char bp[1100];
    snprintf(bp, sizeof bp, "gen.base=%s", base_path);

    /* the base as it is (1 epoch at lr 0: no change), for reference */
    const char *kv0[] = {bp, "gen.template=d3", "gen.category=games", "gen.epochs=1", "gen.lr=0", "gen.beams=10",
                         "gen.sft_samples=200", "gen.batch=2048"};
    gr_eval_result r0;
    gr_model *m0 = fit_eval(kv0, NKV(kv0), s, &r0);
    REQUIRE(m0);
    gr_model_free(m0);

    /* all weights */
    const char *kv1[] = {bp, "gen.template=d3", "gen.category=games", "gen.epochs=4", "gen.patience=4",
                         "gen.lr=1e-2", "gen.max_hist=3", "gen.beams=10", "gen.batch=2048", "gen.round_steps=0"};
    gr_eval_result r1;
    gr_model *m1 = fit_eval(kv1, NKV(kv1), s, &r1);
    REQUIRE(m1);
    printf("  base alone valid %.4f test %.4f; fine-tuned valid %.4f test %.4f\n", r0.valid_ndcg10, r0.test.ndcg[2],
           r1.valid_ndcg10, r1.test.ndcg[2]);
    CHECK(r1.valid_ndcg10 > r0.valid_ndcg10 + 0.02);
    CHECK(r1.test.ndcg[2] > r0.test.ndcg[2] + 0.01);
    const gen_model *g1 = m1->impl;
    gr_lm *base = gr_lm_load(base_path, NULL);
    REQUIRE(base);
    const double nll0 = answer_nll(base, &g1->tmpl, g1->it, s), nll1 = answer_nll(g1->lm, &g1->tmpl, g1->it, s);
    CHECK(g1->dim == 32 && g1->layers == 1 && g1->ctx == 256); /* the base's shape */
    check_round_trip(m1, s, "ft-full.gguf");
    gr_model_free(m1);

    /* LoRA on q, v and the FFN's up and gate projections */
    const char *kv2[] = {bp, "gen.template=d3", "gen.category=games", "gen.epochs=4", "gen.patience=4",
                         "gen.lr=3e-2", "gen.max_hist=3", "gen.beams=10", "gen.batch=2048", "gen.round_steps=0", "gen.lora=16",
                         "gen.lora_targets=attn_q,attn_v,ffn_up,ffn_gate"};
    gr_eval_result r2;
    gr_model *m2 = fit_eval(kv2, NKV(kv2), s, &r2);
    REQUIRE(m2);
    const gen_model *g2 = m2->impl;
    const double nll2 = answer_nll(g2->lm, &g2->tmpl, g2->it, s);
    printf("  LoRA r16 valid %.4f test %.4f\n", r2.valid_ndcg10, r2.test.ndcg[2]);
    printf("  validation answer NLL per token: base %.3f, fine-tuned %.3f, LoRA %.3f\n", nll0, nll1, nll2);
    CHECK(nll0 > 0 && nll1 > 0 && nll2 > 0);
    CHECK(nll1 < nll0 - 1.0); /* the answers became far more likely */
    CHECK(nll2 < nll0 - 1.0);
    CHECK(r2.valid_ndcg10 > r0.valid_ndcg10);
    CHECK(gr_tfm_lora(gr_lm_tfm(g2->lm)) == NULL); /* merged */
    const char *same[] = {"token_embd.weight", "blk.0.ffn_down.weight", "blk.0.attn_output.weight", "blk.0.attn_k.weight",
                          "blk.0.attn_norm.weight", NULL};
    for (int i = 0; same[i]; i++) {
        int64_t na = 0, nb = 0;
        const float *a = view(base, same[i], &na), *b = view(g2->lm, same[i], &nb);
        REQUIRE(a && b && na == nb);
        CHECK(memcmp(a, b, sizeof(float) * (size_t)na) == 0);
    }
    /* the adapted projections change */
    const char *diff[] = {"blk.0.attn_q.weight", "blk.0.attn_v.weight", "blk.0.ffn_up.weight", "blk.0.ffn_gate.weight",
                          NULL};
    for (int i = 0; diff[i]; i++) {
        int64_t na = 0, nb = 0;
        const float *a = view(base, diff[i], &na), *b = view(g2->lm, diff[i], &nb);
        REQUIRE(a && b && na == nb);
        CHECK(memcmp(a, b, sizeof(float) * (size_t)na) != 0);
    }
    gr_lm_free(base);
    check_round_trip(m2, s, "ft-lora.gguf");
    gr_model_free(m2);
    gr_split_free(s);
    gr_dataset_free(d);
}

static void expect_create_error(const char **kv, int n, const char *what)
{
    gr_params p = {kv, n};
    gr_model *m = gr_model_create("gen", &p);
    CHECK(m == NULL);
    if (m) gr_model_free(m);
    else CHECK_HAS(gr_error_message(), what);
}

/* A model that is created but whose fit fails with an error naming each of
 * what1 and what2 (NULL: not checked); no crash. */
static void expect_fit_error(const char *name, const char **kv, int n, const gr_split *s, const char *what1,
                             const char *what2)
{
    gr_params p = {kv, n};
    gr_model *m = gr_model_create(name, &p);
    REQUIRE(m);
    CHECK(m->ops->fit(m, s, NULL) == GR_ERR);
    CHECK_HAS(gr_error_message(), what1);
    if (what2) CHECK_HAS(gr_error_message(), what2);
    gr_model_free(m);
}

static void test_finetune_bad_params(void)
{
    const char *a[] = {"gen.base=x.gguf", "gen.dim=64"};
    expect_create_error(a, 2, "gen.dim");
    const char *b[] = {"gen.lora=4"};
    expect_create_error(b, 1, "gen.lora");
    const char *c[] = {"gen.template=alpaca"};
    expect_create_error(c, 1, "alpaca");
    const char *e[] = {"gen.base=x.gguf", "gen.lora=4", "gen.lora_targets=attn_q,bogus"};
    expect_create_error(e, 3, "bogus");
    const char *f[] = {"gen.base_tokenizer=tok.bin"};
    expect_create_error(f, 1, "gen.base_tokenizer");
    const char *g[] = {"gen-sid.base=x.gguf"};
    gr_params pg = {g, 1};
    CHECK(gr_model_create("gen-sid", &pg) == NULL);
    CHECK_HAS(gr_error_message(), "gen-sid.base");
    /* a missing base: a fit error naming the file, no crash */
    gr_dataset *d = world(200);
    REQUIRE(d);
    gr_split *s = gr_split_build(d, NULL);
    REQUIRE(s);
    const char *h[] = {"gen.base=/nonexistent/base.gguf"};
    expect_fit_error("gen", h, 1, s, "/nonexistent/base.gguf", NULL);
    /* a model file without a tokenizer: named, with the key that supplies one */
    gr_tfm_config cfg;
    gr_lm_config_preset(&cfg, GR_ARCH_LLAMA, 1, 16, 2, 0, 32, 64, 64);
    gr_lm *bare = gr_lm_init(GR_ARCH_LLAMA, &cfg, 1);
    REQUIRE(bare);
    const char *bp = gr_test_path("bare.gguf");
    REQUIRE(gr_lm_save(bare, bp, NULL) == GR_OK);
    gr_lm_free(bare);
    char kb[600], ks[600];
    snprintf(kb, sizeof kb, "gen.base=%s", bp);
    snprintf(ks, sizeof ks, "gen-sid.text_model=%s", bp);
    const char *nb[] = {kb}, *ns[] = {ks, "gen-sid.sid_emb=0"};
    expect_fit_error("gen", nb, 1, s, "gen.base_tokenizer", "bare.gguf");
    expect_fit_error("gen-sid", ns, 2, s, "gen-sid.text_tokenizer", NULL);
    gr_split_free(s);
    gr_dataset_free(d);
}

/* Semantic IDs over a language model's embeddings of the item texts
 * (gen-sid.text_model = the base written above): every item gets a distinct
 * code path, the codebook is used, and the codes differ from the TF-IDF
 * ones (the embeddings really came from the model). */
static void test_sid_text_model(void)
{
    if (!base_path[0]) { gr_test_skip("no base written"); return; }
    gr_dataset *d = world(60);
    REQUIRE(d);
    gr_split *s = gr_split_build(d, NULL);
    REQUIRE(s);
    char tm[1100];
    snprintf(tm, sizeof tm, "gen-sid.text_model=%s", base_path);
    const char *kv_lm[] = {tm, "gen-sid.sid_emb=0", "gen-sid.sid_k=8", "gen-sid.sid_levels=2"};
    const char *kv_tf[] = {"gen-sid.sid_emb=0", "gen-sid.sid_k=8", "gen-sid.sid_levels=2"};
    gr_params pl = {kv_lm, NKV(kv_lm)}, pt = {kv_tf, NKV(kv_tf)};
    gr_model *ml = gr_model_create("gen-sid", &pl), *mt = gr_model_create("gen-sid", &pt);
    REQUIRE(ml && mt);
    gen_model *gl = ml->impl, *gt = mt->impl;
    int rc = gen_items_build(gl, s);
    if (rc != GR_OK) fprintf(stderr, "error: %s\n", gr_error_message());
    REQUIRE(rc == GR_OK);
    REQUIRE(gen_items_build(gt, s) == GR_OK);
    CHECK_EQ_INT(gl->tr->n_items, s->n_items);
    int used = 0, differ = 0;
    uint8_t seen[8] = {0};
    for (int32_t i = 0; i < s->n_items; i++) {
        const int32_t c0 = gl->sid->codes[(int64_t)i * 3];
        REQUIRE(c0 >= 0 && c0 < 8);
        used += !seen[c0];
        seen[c0] = 1;
        differ += memcmp(gl->ans[i], gt->ans[i], sizeof(int32_t) * 2) != 0;
    }
    printf("  LM-embedded semantic IDs: %d of 8 first-level codes used, %d of %d items coded unlike TF-IDF\n", used,
           differ, (int)s->n_items);
    CHECK(used >= 4);
    CHECK(differ > 0);
    gr_model_free(ml);
    gr_model_free(mt);
    const char *bad[] = {"gen-sid.text_model=/nonexistent/lm.gguf", "gen-sid.sid_emb=0"};
    expect_fit_error("gen-sid", bad, 2, s, "/nonexistent/lm.gguf", NULL);
    gr_split_free(s);
    gr_dataset_free(d);
}

/* Item text options: genres appended, year stripped, in the answers the
 * model is trained on (built without training). */
static void test_item_text_options(void)
{
    gr_dataset *d = world(60);
    REQUIRE(d);
    gr_split *s = gr_split_build(d, NULL);
    REQUIRE(s);
    const char *kv[] = {"gen.with_genres=1", "gen.strip_year=1", "gen.vocab=300", "gen.dim=16", "gen.heads=2"};
    gr_params p = {kv, NKV(kv)};
    gr_model *m = gr_model_create("gen", &p);
    REQUIRE(m);
    gen_model *g = m->impl;
    REQUIRE(gen_items_build(g, s) == GR_OK);
    int with_genres = 0, with_year = 0;
    for (int32_t i = 0; i < g->it->n; i++) {
        with_genres += strstr(g->it->text[i], " [") != NULL;
        with_year += strstr(g->it->text[i], " (19") != NULL || strstr(g->it->text[i], " (20") != NULL;
    }
    printf("  item 0: '%s'\n", g->it->text[0]);
    CHECK(with_genres == g->it->n);
    CHECK(with_year == 0);
    gr_model_free(m);
    gr_split_free(s);
    gr_dataset_free(d);
}

/* The shared real models: they fine-tune, decode only real items and
 * round-trip (quality is not asserted: they know stories, not items). */
static void test_finetune_shared_models(void)
{
    const char *bin = gr_test_shared("models/stories260K/stories260K.bin");
    const char *tok = gr_test_shared("models/stories260K/tok512.bin");
    const char *gpt2 = gr_test_shared("models/tiny-random-gpt2");
    if (!bin || !tok || !gpt2) {
        gr_test_skip("../shared/models (stories260K, tiny-random-gpt2) not found");
        return;
    }
    gr_dataset *d = world(60);
    REQUIRE(d);
    gr_split *s = gr_split_build(d, NULL);
    REQUIRE(s);
    char kb[1100], kt[1100], kg[1100];
    snprintf(kb, sizeof kb, "gen.base=%s", bin);
    snprintf(kt, sizeof kt, "gen.base_tokenizer=%s", tok);
    snprintf(kg, sizeof kg, "gen.base=%s", gpt2);
    const char *kv1[] = {kb, kt, "gen.lora=4", "gen.lora_targets=all", "gen.epochs=1", "gen.beams=10",
                         "gen.sft_samples=100", "gen.batch=2048", "gen.lr=3e-3", "gen.round_steps=0"};
    gr_eval_result r;
    gr_model *m = fit_eval(kv1, NKV(kv1), s, &r);
    REQUIRE(m);
    printf("  stories260K + LoRA (1 epoch): valid %.4f test %.4f\n", r.valid_ndcg10, r.test.ndcg[2]);
    const gen_model *g = m->impl;
    CHECK(g->dim == 64 && g->layers == 5 && g->heads == 8 && g->kv_heads == 4 && g->vocab == 512);
    check_round_trip(m, s, "ft-stories.gguf");
    gr_model_free(m);
    const char *kv2[] = {kg, "gen.template=bigrec", "gen.epochs=1", "gen.beams=10", "gen.sft_samples=100",
                         "gen.round_steps=0", "gen.batch=2048"};
    m = fit_eval(kv2, NKV(kv2), s, &r);
    REQUIRE(m);
    printf("  tiny-random-gpt2 (1 epoch): valid %.4f test %.4f\n", r.valid_ndcg10, r.test.ndcg[2]);
    g = m->impl;
    CHECK(gr_lm_arch(g->lm) == GR_ARCH_GPT2 && g->dim == 32 && g->vocab == 1000);
    check_round_trip(m, s, "ft-gpt2.gguf");
    gr_model_free(m);
    gr_split_free(s);
    gr_dataset_free(d);
}

int main(void)
{
    GR_RUN(test_finetune_bad_params);
    GR_RUN(test_item_text_options);
    GR_RUN(test_finetune_full_and_lora);
    GR_RUN(test_sid_text_model);
    GR_RUN(test_finetune_shared_models);
    return gr_test_finish();
}
