/* The language model wrapper (lm.h): whole-model finite-difference gradients
 * (embedding, blocks, untied head) for GPT-2 and Llama configs, consistency
 * of loss / log-probabilities / logits, and a real model (stories260K) giving
 * the published next-token probabilities after "Once upon a time". */
#include "gr_test.h"
#include "genrec/lm.h"

#include <stdlib.h>

/* tokens: 2 sequences (lengths 5 and 4), targets: next token, last = -1,
 * and in sequence 0 the first two targets masked (answer-only loss). */
static const int32_t toks[9] = {3, 7, 1, 7, 12, 5, 5, 9, 2};
static const int32_t tgts[9] = {-1, -1, 7, 12, -1, 5, 9, 2, -1};
static const int32_t offs[3] = {0, 5, 9};

static gr_lm *tiny(gr_arch arch, int tied)
{
    gr_tfm_config c;
    gr_lm_config_preset(&c, arch, 2, 8, 2, arch == GR_ARCH_LLAMA ? 1 : 2, 12, 16, 13);
    c.tied = tied;
    gr_lm *lm = gr_lm_init(arch, &c, 42);
    if (!lm) fprintf(stderr, "error: %s\n", gr_error_message());
    /* larger weights than 0.02 so every path carries gradient */
    float *p = gr_tfm_params(gr_lm_tfm(lm));
    gr_rng r;
    gr_rng_seed(&r, 7);
    for (int64_t i = 0; i < gr_tfm_n_params(gr_lm_tfm(lm)); i++) p[i] += (float)(0.3 * gr_rng_normal(&r));
    return lm;
}

static double loss_at(gr_lm *lm, const gr_lm_batch *b)
{
    double s;
    int64_t n;
    if (gr_lm_eval_loss(lm, b, &s, &n) != GR_OK) return NAN;
    return s / (double)n;
}

static void fd_check(gr_arch arch, int tied)
{
    gr_lm *lm = tiny(arch, tied);
    REQUIRE(lm);
    gr_tfm *m = gr_lm_tfm(lm);
    gr_lm_batch b = {toks, tgts, NULL, offs, 2, 9};
    gr_tfm_zero_grad(m);
    float loss;
    REQUIRE(gr_lm_forward_backward(lm, &b, &loss, NULL) == GR_OK);
    CHECK_REL(loss, loss_at(lm, &b), 1e-5);
    float *p = gr_tfm_params(m), *g = gr_tfm_grads(m);
    const gr_tfm_param_view *views;
    int nv = gr_tfm_param_views(m, &views), checked = 0, bad = 0;
    double worst = 0.0;
    for (int v = 0; v < nv; v++) {
        int64_t n = views[v].ndim == 1 ? views[v].shape[0] : views[v].shape[0] * views[v].shape[1];
        for (int64_t k = 0; k < n; k += 1 + n / 7) {
            int64_t i = views[v].offset + k;
            float save = p[i];
            double e = 1e-2;
            p[i] = save + (float)e;
            double lp = loss_at(lm, &b);
            p[i] = save - (float)e;
            double lm_ = loss_at(lm, &b);
            p[i] = save;
            double fd = (lp - lm_) / (2 * e), err = fabs(fd - g[i]) / fmax(1e-2, fabs(fd));
            if (err > worst) worst = err;
            if (err > 2e-2) {
                if (bad++ < 5) gr_test_fail(__FILE__, __LINE__, "%s[%lld]: analytic %g vs fd %g", views[v].name, (long long)k, g[i], fd);
            }
            checked++;
        }
    }
    printf("  %s %s: %d gradient entries checked, worst relative error %.2e\n",
           arch == GR_ARCH_GPT2 ? "gpt2" : "llama", tied ? "tied" : "untied", checked, worst);
    CHECK(checked > 100);
    /* the embedding row of a token that never occurs gets no gradient */
    const float *gE = gr_tfm_embd(m, 1);
    if (!tied) for (int c = 0; c < 8; c++) CHECK(gE[4 * 8 + c] == 0.0f);
    gr_lm_free(lm);
}

static void test_fd_gpt2(void) { fd_check(GR_ARCH_GPT2, 1); }
static void test_fd_llama(void) { fd_check(GR_ARCH_LLAMA, 0); }

/* seq_logprob, eval_loss and logits agree with each other */
static void test_consistency(void)
{
    gr_lm *lm = tiny(GR_ARCH_LLAMA, 0);
    REQUIRE(lm);
    gr_lm_batch b = {toks, tgts, NULL, offs, 2, 9};
    double lp[2], s;
    int64_t n;
    REQUIRE(gr_lm_seq_logprob(lm, &b, lp) == GR_OK);
    REQUIRE(gr_lm_eval_loss(lm, &b, &s, &n) == GR_OK);
    CHECK_EQ_INT(n, 5);
    CHECK_REL(-(lp[0] + lp[1]), s, 1e-9);
    int32_t rows[5] = {2, 3, 5, 6, 7};
    float logits[5 * 13];
    REQUIRE(gr_lm_logits(lm, &b, rows, 5, logits) == GR_OK);
    double want0 = 0, want1 = 0;
    for (int r = 0; r < 5; r++) {
        double mx = -INFINITY, z = 0;
        for (int v = 0; v < 13; v++) mx = fmax(mx, logits[r * 13 + v]);
        for (int v = 0; v < 13; v++) z += exp(logits[r * 13 + v] - mx);
        double l = logits[r * 13 + tgts[rows[r]]] - mx - log(z);
        if (rows[r] < 5) want0 += l; else want1 += l;
    }
    CHECK_REL(lp[0], want0, 1e-5);
    CHECK_REL(lp[1], want1, 1e-5);
    /* a sequence alone gives the same log-probability as inside the batch */
    gr_lm_batch b1 = {toks + 5, tgts + 5, NULL, (int32_t[2]){0, 4}, 1, 4};
    double lp1;
    REQUIRE(gr_lm_seq_logprob(lm, &b1, &lp1) == GR_OK);
    CHECK_REL(lp1, lp[1], 1e-5);
    /* errors, not crashes */
    int32_t badt[9];
    memcpy(badt, toks, sizeof badt);
    badt[4] = 13;
    gr_lm_batch bb = {badt, tgts, NULL, offs, 2, 9};
    CHECK(gr_lm_eval_loss(lm, &bb, &s, &n) == GR_ERR);
    CHECK_HAS(gr_error_message(), "outside the vocabulary");
    gr_lm_free(lm);
}

/* stories260K: P(next | BOS "Once upon a time"): "," 96.9 %, " there" 2.9 % */
static void test_stories_probs(void)
{
    const char *bin = gr_test_shared("models/stories260K/stories260K.bin");
    const char *tokp = gr_test_shared("models/stories260K/tok512.bin");
    const char *gguf = gr_test_shared("models/stories260K/stories260K.gguf");
    if (!bin || !tokp || !gguf) { gr_test_skip("../shared/models/stories260K absent"); return; }
    for (int f = 0; f < 2; f++) {
        gr_lm *lm = f ? gr_lm_load(gguf, NULL) : gr_lm_load(bin, tokp);
        if (!lm) fprintf(stderr, "error: %s\n", gr_error_message());
        REQUIRE(lm);
        const gr_tokenizer *tok = gr_lm_tokenizer(lm);
        REQUIRE(tok);
        int64_t n;
        int32_t *ids = gr_tokenizer_encode(tok, "Once upon a time", 16, 1, &n);
        REQUIRE(ids && n > 1);
        CHECK_EQ_INT(ids[0], 1);
        int V = gr_lm_vocab(lm);
        float *logits = malloc(sizeof(float) * (size_t)V);
        gr_lm_batch b = {ids, NULL, NULL, (int32_t[2]){0, (int32_t)n}, 1, (int)n};
        REQUIRE(gr_lm_logits(lm, &b, NULL, 1, logits) == GR_OK);
        double mx = -INFINITY, z = 0;
        for (int v = 0; v < V; v++) mx = fmax(mx, logits[v]);
        for (int v = 0; v < V; v++) z += exp(logits[v] - mx);
        int32_t comma = gr_tokenizer_find(tok, ",", 1);
        int32_t there = gr_tokenizer_find(tok, "\xe2\x96\x81there", 8);
        REQUIRE(comma >= 0 && there >= 0);
        double pc = exp(logits[comma] - mx) / z, pt = exp(logits[there] - mx) / z;
        printf("  %s: P(\",\") = %.4f  P(\" there\") = %.4f\n", f ? "gguf" : "bin", pc, pt);
        CHECK_NEAR(pc, 0.969, 0.0005);
        CHECK_NEAR(pt, 0.029, 0.0005);
        free(logits);
        gr_free(ids);
        gr_lm_free(lm);
    }
}

int main(void)
{
    GR_RUN(test_fd_gpt2);
    GR_RUN(test_fd_llama);
    GR_RUN(test_consistency);
    GR_RUN(test_stories_probs);
    return gr_test_finish();
}
