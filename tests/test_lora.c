/* LoRA adapters (lora.h): config errors and views, B = 0 leaves the model
 * bit-identical, finite differences of every adapter tensor (and of the base
 * tensors when unfrozen) through tiny GPT-2, Llama (GQA, SwiGLU) and SASRec
 * (dropout) models, frozen base = no base gradient at all, merge, AdamW on
 * adapters only, GGUF save/load, the language model wrapper, and a PyTorch
 * float64 check through tests/ref/transformer_ref.py (the adapted model is
 * the base model with merged weights W' = W + s B A, so torch's dL/dW' gives
 * dL/dW = dL/dW', dB = s dL/dW' A^T and dA = s B^T dL/dW'). */
#include "gr_test.h"
#include "tfm_testutil.h"
#include "genrec/common.h"
#include "genrec/decode.h"
#include "genrec/gguf.h"
#include "genrec/lm.h"
#include "genrec/lora.h"
#include "genrec/rng.h"
#include "genrec/transformer.h"

#include <math.h>
#include <stdlib.h>

static gr_tfm_config cfg_sasrec(void)
{
    gr_tfm_config c = {.n_layer = 2, .d_model = 8, .n_head = 2, .d_ff = 8, .max_T = 10,
                       .norm = GR_NORM_LAYER, .act = GR_ACT_RELU, .pos = GR_POS_LEARNED,
                       .bias = 1, .final_norm = 1, .norm_eps = 1e-8f, .dropout = 0.2f};
    return c;
}

/* Overwrite every adapter tensor (B too) with random values of size ~1/sqrt(in). */
static void randomize_lora(gr_lora *l, uint64_t seed)
{
    const gr_tfm_param_view *v;
    int nv = gr_lora_views(l, &v);
    gr_rng r;
    gr_rng_seed(&r, seed);
    float *p = gr_lora_params(l);
    for (int i = 0; i < nv; i++)
        for (int64_t j = 0; j < numel(&v[i]); j++)
            p[v[i].offset + j] = (float)(0.5 / sqrt((double)v[i].shape[1]) * gr_rng_normal(&r));
}

static const gr_lora_config lcfg_all = {.rank = 2, .alpha = 5.0f, .targets = GR_LORA_ALL, .seed = 3};

/* ---- config, views, identity ---------------------------------------------------- */

static void test_config_errors(void)
{
    gr_tfm_config c = cfg_llama();
    gr_tfm *m = gr_tfm_init(&c, 1);
    REQUIRE(m);
    gr_lora_config lc = lcfg_all;
    lc.rank = 0;
    CHECK(gr_lora_attach(m, &lc) == NULL);
    CHECK_HAS(gr_error_message(), "'rank' (0)");
    lc.rank = 9; /* attn_k / attn_v are (KVH*HS = 8, 16) */
    CHECK(gr_lora_attach(m, &lc) == NULL);
    CHECK_HAS(gr_error_message(), "attn_k");
    lc.targets = GR_LORA_ATTN_Q | GR_LORA_FFN_UP; /* (16, 16), (24, 16): rank 9 fine */
    gr_lora *l = gr_lora_attach(m, &lc);
    CHECK(l != NULL);
    gr_lora_detach(m);
    lc.rank = 17;
    CHECK(gr_lora_attach(m, &lc) == NULL);
    CHECK_HAS(gr_error_message(), "exceeds target attn_q");
    lc = lcfg_all;
    lc.alpha = 0.0f;
    CHECK(gr_lora_attach(m, &lc) == NULL);
    CHECK_HAS(gr_error_message(), "'alpha'");
    lc = lcfg_all;
    lc.targets = 1u << 9;
    CHECK(gr_lora_attach(m, &lc) == NULL);
    CHECK_HAS(gr_error_message(), "unknown target bits");
    lc.targets = 0;
    CHECK(gr_lora_attach(m, &lc) == NULL);
    CHECK_HAS(gr_error_message(), "'targets' is empty");
    CHECK(gr_lora_attach(m, NULL) == NULL);
    /* target names */
    unsigned mask;
    CHECK(gr_lora_parse_targets("attn_q, attn_v,ffn_down", &mask) == GR_OK);
    CHECK_EQ_INT(mask, GR_LORA_ATTN_Q | GR_LORA_ATTN_V | GR_LORA_FFN_DOWN);
    CHECK(gr_lora_parse_targets("all", &mask) == GR_OK);
    CHECK_EQ_INT(mask, GR_LORA_ALL);
    CHECK(gr_lora_parse_targets("attn_q,attn_x", &mask) == GR_ERR);
    CHECK_HAS(gr_error_message(), "unknown target 'attn_x'");
    CHECK(gr_lora_parse_targets("", &mask) == GR_ERR);
    CHECK_STR(gr_lora_target_name(5), "ffn_gate");
    CHECK(gr_lora_target_name(7) == NULL);
    /* attach twice; saving nothing */
    CHECK(gr_tfm_lora(m) == NULL);
    CHECK(gr_lora_save(m, gr_test_path("none.gguf")) == GR_ERR);
    CHECK_HAS(gr_error_message(), "no adapters");
    l = gr_lora_attach(m, &lcfg_all);
    REQUIRE(l);
    CHECK(gr_tfm_lora(m) == l);
    CHECK(gr_lora_attach(m, &lcfg_all) == NULL);
    CHECK_HAS(gr_error_message(), "already has adapters");
    gr_tfm_free(m); /* frees the adapters too (leak checkers see it) */
    /* ffn_gate needs SwiGLU; ALL on GPT-2 means all but the gate */
    c = cfg_gpt2();
    m = gr_tfm_init(&c, 1);
    REQUIRE(m);
    lc = lcfg_all;
    lc.targets = GR_LORA_FFN_GATE;
    CHECK(gr_lora_attach(m, &lc) == NULL);
    CHECK_HAS(gr_error_message(), "SwiGLU");
    l = gr_lora_attach(m, &lcfg_all);
    REQUIRE(l);
    CHECK_EQ_INT(gr_lora_get_config(l)->targets, GR_LORA_ALL & ~GR_LORA_FFN_GATE);
    gr_tfm_free(m);
}

static void test_views_and_init(void)
{
    gr_tfm_config c = cfg_llama();
    gr_tfm *m = gr_tfm_init(&c, 1);
    REQUIRE(m);
    gr_lora_config lc = {.rank = 4, .alpha = 8.0f, .targets = GR_LORA_ALL, .seed = 9};
    gr_lora *l = gr_lora_attach(m, &lc);
    REQUIRE(l);
    CHECK_NEAR(gr_lora_scale(l), 2.0, 0);
    const gr_tfm_param_view *v;
    int nv = gr_lora_views(l, &v);
    CHECK_EQ_INT(nv, 2 * 7 * 2);
    /* per layer: A's (4, in) then B's (out, 4); C=16, kv=8, F=24 */
    int64_t per_layer = 4 * (16 * 6 + 24) + 4 * (16 + 8 + 8 + 16 + 24 + 24 + 16);
    CHECK_EQ_INT(gr_lora_n_params(l), 2 * per_layer);
    int64_t off = 0;
    int contiguous = 1;
    for (int i = 0; i < nv; i++) { contiguous &= v[i].offset == off; off += numel(&v[i]); }
    CHECK(contiguous);
    CHECK_STR(v[0].name, "blk.0.attn_q.lora_a");
    CHECK_STR(v[7].name, "blk.0.attn_q.lora_b");
    float *ak = gr_lora_param(l, "blk.1.attn_k.lora_a"), *bk = gr_lora_param(l, "blk.1.attn_k.lora_b");
    REQUIRE(ak && bk);
    const gr_tfm_param_view *vk = NULL, *vd = NULL;
    for (int i = 0; i < nv; i++) {
        if (!strcmp(v[i].name, "blk.1.attn_k.lora_b")) vk = &v[i];
        if (!strcmp(v[i].name, "blk.0.ffn_down.lora_a")) vd = &v[i];
    }
    REQUIRE(vk && vd);
    CHECK(vk->shape[0] == 8 && vk->shape[1] == 4);
    CHECK(vd->shape[0] == 4 && vd->shape[1] == 24);
    CHECK(gr_lora_grad(l, "blk.1.attn_k.lora_a") == gr_lora_grads(l) + (ak - gr_lora_params(l)));
    CHECK(gr_lora_param(l, "blk.0.attn_x.lora_a") == NULL);
    CHECK_HAS(gr_error_message(), "blk.0.attn_x.lora_a");
    /* A ~ U(-1/sqrt(16), 1/sqrt(16)) (variance 1/48), B = 0 */
    double s2 = 0, mx = 0;
    for (int i = 0; i < 4 * 16; i++) { s2 += (double)ak[i] * ak[i]; mx = fmax(mx, fabs(ak[i])); }
    CHECK(mx <= 0.25 && mx > 0.15);
    CHECK_NEAR(s2 / 64, 1.0 / 48, 0.008);
    int zero = 1;
    for (int i = 0; i < 8 * 4; i++) zero &= bk[i] == 0.0f;
    CHECK(zero);
    uint8_t *mask = malloc((size_t)gr_lora_n_params(l));
    gr_lora_decay_mask(l, mask);
    CHECK(mask[0] == 1 && mask[gr_lora_n_params(l) - 1] == 1);
    free(mask);
    /* same seed, same adapters */
    gr_tfm *m2 = gr_tfm_init(&c, 1);
    REQUIRE(m2);
    gr_lora *l2 = gr_lora_attach(m2, &lc);
    REQUIRE(l2);
    CHECK(memcmp(gr_lora_params(l), gr_lora_params(l2), sizeof(float) * (size_t)gr_lora_n_params(l)) == 0);
    gr_tfm_free(m2);
    gr_tfm_free(m);
}

/* With B = 0 (a fresh adapter) the outputs and dx are the base model's, bit
 * for bit, in training and inference; detaching restores the base path. */
static void test_identity_at_init(void)
{
    gr_tfm_config cfgs[3] = {cfg_gpt2(), cfg_llama(), cfg_sasrec()};
    for (int ci = 0; ci < 3; ci++) {
        gr_tfm *m = make_model(&cfgs[ci], 4);
        REQUIRE(m);
        int lens[3] = {5, 2, 3};
        batch b;
        make_batch(&b, lens, 3, cfgs[ci].d_model, cfgs[ci].max_T, ci == 2, 6);
        size_t nc = (size_t)b.N * b.C;
        float *o0 = malloc(sizeof(float) * nc), *o1 = malloc(sizeof(float) * nc);
        float *d0 = malloc(sizeof(float) * nc), *d1 = malloc(sizeof(float) * nc);
        int64_t np = gr_tfm_n_params(m);
        float *g0 = malloc(sizeof(float) * (size_t)np);
        gr_tfm_zero_grad(m);
        loss(m, &b, o0);
        REQUIRE(gr_tfm_backward(m, b.R, d0) == GR_OK);
        memcpy(g0, gr_tfm_grads(m), sizeof(float) * (size_t)np);
        REQUIRE(gr_lora_attach(m, &lcfg_all));
        gr_tfm_zero_grad(m);
        loss(m, &b, o1);
        REQUIRE(gr_tfm_backward(m, b.R, d1) == GR_OK);
        CHECK(memcmp(o0, o1, sizeof(float) * nc) == 0);
        CHECK(memcmp(d0, d1, sizeof(float) * nc) == 0); /* dA = 0: du = s dY B = 0 */
        CHECK(memcmp(g0, gr_tfm_grads(m), sizeof(float) * (size_t)np) == 0);
        REQUIRE(gr_tfm_forward(m, b.x, b.pos, b.seq_off, b.n_seq, b.N, o1, 0, NULL) == GR_OK);
        gr_lora_detach(m);
        REQUIRE(gr_tfm_forward(m, b.x, b.pos, b.seq_off, b.n_seq, b.N, o0, 0, NULL) == GR_OK);
        CHECK(memcmp(o0, o1, sizeof(float) * nc) == 0);
        /* attaching between a training forward and its backward cancels it */
        CHECK(isfinite(loss(m, &b, o1)));
        REQUIRE(gr_lora_attach(m, &lcfg_all));
        CHECK(gr_tfm_backward(m, b.R, NULL) == GR_ERR);
        CHECK_HAS(gr_error_message(), "train=1");
        free(o0); free(o1); free(d0); free(d1); free(g0); free_batch(&b);
        gr_tfm_free(m);
    }
}

/* ---- finite differences ----------------------------------------------------------- */

/* Probe up to 6 entries of xs[0..n) against the analytic gs. */
static double fd_floor = 0.1; /* |gradient| below which tol is absolute */

static void fd_tensor(const char *what, const char *name, gr_tfm *m, const batch *b, float *out, double L0,
                      float *xs, const float *gs, int64_t n, int salt, double eps, double tol)
{
    double maxnum = 0, maxdiff = 0;
    int used = 0;
    for (int k = 0; k < 8 && used < 6; k++) {
        int64_t j = ((int64_t)k * 7919 + salt * 31) % n;
        float x0 = xs[j];
        xs[j] = (float)(x0 + eps);
        double hp = (double)xs[j] - x0, Lp = loss(m, b, out);
        xs[j] = (float)(x0 - eps);
        double hm = x0 - (double)xs[j], Lm = loss(m, b, out);
        xs[j] = x0;
        double num = (Lp - Lm) / (hp + hm);
        double fwd = (Lp - L0) / hp, bwd = (L0 - Lm) / hm; /* skip ReLU kinks */
        if (fabs(fwd - bwd) > 0.02 * fmax(fabs(num), 0.05)) continue;
        used++;
        maxnum = fmax(maxnum, fabs(num));
        maxdiff = fmax(maxdiff, fabs(num - gs[j]));
    }
    if (used < 3) gr_test_fail(__FILE__, __LINE__, "%s: d/d%s: only %d smooth probes", what, name, used);
    if (getenv("GR_TEST_VERBOSE")) printf("  %s %-26s rel %.2e (max %.3g)\n", what, name, maxdiff / fmax(maxnum, 1e-12), maxnum);
    if (!(maxdiff <= tol * fmax(maxnum, fd_floor)))
        gr_test_fail(__FILE__, __LINE__, "%s: d/d%s max |num-ana| %g > %g * max|num| %g", what, name, maxdiff, tol, maxnum);
}

/* Finite differences of every adapter tensor and x, and (unfrozen) of every
 * base tensor; frozen: the base gradient slab stays exactly zero. */
static void fd_check(const char *what, const gr_tfm_config *c, int right_align, int frozen,
                     double eps, double aeps, double tol)
{
    gr_tfm *m = make_model(c, 5);
    REQUIRE(m);
    /* scale 1 here (an A entry moves a whole column of W' = W + s B A, so a
     * larger s needs a smaller step; scales != 1 are checked against torch) */
    gr_lora *l = gr_lora_attach(m, &(gr_lora_config){.rank = 2, .alpha = 2.0f, .targets = GR_LORA_ALL, .seed = 3});
    REQUIRE(l);
    randomize_lora(l, 8);
    gr_tfm_set_frozen(m, frozen);
    CHECK_EQ_INT(gr_tfm_frozen(m), frozen);
    int lens[3] = {4, 1, 6};
    batch b;
    make_batch(&b, lens, 3, c->d_model, c->max_T, right_align, 11);
    float *out = malloc(sizeof(float) * (size_t)b.N * b.C), *dx = malloc(sizeof(float) * (size_t)b.N * b.C);
    /* garbage in the grad slabs: zero_grad must clear both */
    for (int64_t i = 0; i < gr_lora_n_params(l); i++) gr_lora_grads(l)[i] = 1.0f;
    gr_tfm_zero_grad(m);
    double L0 = loss(m, &b, out);
    REQUIRE(isfinite(L0));
    REQUIRE(gr_tfm_backward(m, b.R, dx) == GR_OK);
    const gr_tfm_param_view *v;
    int nv = gr_lora_views(l, &v), salt = 0;
    for (int i = 0; i < nv; i++)
        fd_tensor(what, v[i].name, m, &b, out, L0, gr_lora_params(l) + v[i].offset,
                  gr_lora_grads(l) + v[i].offset, numel(&v[i]), salt++, aeps, tol);
    fd_tensor(what, "x", m, &b, out, L0, b.x, dx, (int64_t)b.N * b.C, salt++, eps, tol);
    nv = gr_tfm_param_views(m, &v);
    if (frozen) {
        int64_t nz = 0;
        for (int64_t i = 0; i < gr_tfm_n_params(m); i++) nz += gr_tfm_grads(m)[i] != 0.0f;
        CHECK_EQ_INT(nz, 0);
    } else {
        for (int i = 0; i < nv; i++) {
            float *xs = gr_tfm_params(m) + v[i].offset, *gs = gr_tfm_grads(m) + v[i].offset;
            int64_t n = numel(&v[i]);
            if (!strcmp(v[i].name, "pos_embd")) { /* only the used rows */
                int64_t skip = right_align ? (int64_t)(c->max_T - 6) * c->d_model : 0;
                xs += skip; gs += skip; n = 6 * (int64_t)c->d_model;
            }
            fd_tensor(what, v[i].name, m, &b, out, L0, xs, gs, n, salt++, eps, tol);
        }
    }
    free(out); free(dx); free_batch(&b);
    gr_tfm_free(m);
}

static void test_fd_gpt2(void)
{
    gr_tfm_config c = cfg_gpt2();
    fd_check("gpt2 frozen", &c, 0, 1, 1e-2, 5e-3, 2e-3);
    fd_check("gpt2", &c, 0, 0, 1e-2, 5e-3, 2e-3);
}

static void test_fd_llama(void)
{
    gr_tfm_config c = cfg_llama();
    fd_check("llama frozen", &c, 0, 1, 1e-2, 5e-3, 2e-3);
    fd_check("llama", &c, 0, 0, 1e-2, 5e-3, 2e-3);
}

static void test_fd_sasrec_dropout(void)
{
    gr_tfm_config c = cfg_sasrec();
    /* d = 8: the float32 loss's rounding (~1e-6 relative) over a 6e-3 step
     * is ~3e-4 absolute, above 2e-3 * the usual 0.1 floor */
    fd_floor = 0.2;
    fd_check("sasrec frozen", &c, 1, 1, 3e-3, 3e-3, 2e-3);
    fd_floor = 0.1;
}

/* Freezing only drops the base-gradient work: dx and the adapter gradients
 * are bit-identical with and without it (dropout included). */
static void test_frozen_same_adapter_grads(void)
{
    gr_tfm_config cfgs[3] = {cfg_gpt2(), cfg_llama(), cfg_sasrec()};
    for (int ci = 0; ci < 3; ci++) {
        gr_tfm *m = make_model(&cfgs[ci], 14);
        REQUIRE(m);
        gr_lora *l = gr_lora_attach(m, &lcfg_all);
        REQUIRE(l);
        randomize_lora(l, 15);
        int lens[3] = {6, 3, 7};
        batch b;
        make_batch(&b, lens, 3, cfgs[ci].d_model, cfgs[ci].max_T, ci == 2, 16);
        size_t nc = (size_t)b.N * b.C, na = (size_t)gr_lora_n_params(l);
        float *out = malloc(sizeof(float) * nc), *dx[2], *ga[2];
        for (int fz = 0; fz < 2; fz++) {
            dx[fz] = malloc(sizeof(float) * nc);
            ga[fz] = malloc(sizeof(float) * na);
            gr_tfm_set_frozen(m, fz);
            gr_tfm_zero_grad(m);
            loss(m, &b, out);
            REQUIRE(gr_tfm_backward(m, b.R, dx[fz]) == GR_OK);
            memcpy(ga[fz], gr_lora_grads(l), sizeof(float) * na);
        }
        CHECK(memcmp(dx[0], dx[1], sizeof(float) * nc) == 0);
        CHECK(memcmp(ga[0], ga[1], sizeof(float) * na) == 0);
        /* a cached (inference) forward between a training forward and its
         * backward leaves what backward needs alone */
        gr_kv_cache *kc = gr_kv_cache_init(gr_tfm_get_config(m), 1, cfgs[ci].max_T);
        REQUIRE(kc);
        int32_t slot = 0, koff[2] = {0, 4};
        gr_tfm_zero_grad(m);
        loss(m, &b, out);
        float *tmp = malloc(sizeof(float) * 4 * (size_t)b.C);
        REQUIRE(gr_tfm_forward_cached(m, kc, b.R, &slot, koff, 1, 4, tmp) == GR_OK);
        REQUIRE(gr_tfm_backward(m, b.R, NULL) == GR_OK);
        CHECK(memcmp(ga[1], gr_lora_grads(l), sizeof(float) * na) == 0);
        free(tmp);
        gr_kv_cache_free(kc);
        int64_t nz = 0;
        for (size_t i = 0; i < na; i++) nz += ga[0][i] != 0.0f;
        CHECK(nz > (int64_t)na / 2);
        for (int fz = 0; fz < 2; fz++) { free(dx[fz]); free(ga[fz]); }
        free(out); free_batch(&b);
        gr_tfm_free(m);
    }
}

/* ---- merge, training, save/load ---------------------------------------------------- */

static double max_rel(const float *a, const float *b, int64_t n)
{
    double md = 0, mr = 1e-6;
    for (int64_t i = 0; i < n; i++) { md = fmax(md, fabs((double)a[i] - b[i])); mr = fmax(mr, fabs(b[i])); }
    return md / mr;
}

static void test_merge(void)
{
    gr_tfm_config cfgs[2] = {cfg_gpt2(), cfg_llama()};
    unsigned targets[3] = {GR_LORA_ALL, GR_LORA_ATTN_K | GR_LORA_FFN_DOWN, GR_LORA_ATTN_V | GR_LORA_ATTN_OUTPUT};
    for (int ci = 0; ci < 2; ci++)
        for (int ti = 0; ti < 3; ti++) {
            gr_tfm *m = make_model(&cfgs[ci], 12);
            REQUIRE(m);
            gr_lora_config lc = {.rank = 3, .alpha = 6.0f, .targets = targets[ti], .seed = 1};
            gr_lora *l = gr_lora_attach(m, &lc);
            REQUIRE(l);
            randomize_lora(l, 2 + ti);
            int lens[2] = {7, 4};
            batch b;
            make_batch(&b, lens, 2, 16, 12, 0, 3);
            size_t nc = (size_t)b.N * 16;
            float *o0 = malloc(sizeof(float) * nc), *o1 = malloc(sizeof(float) * nc), *o2 = malloc(sizeof(float) * nc);
            REQUIRE(gr_tfm_forward(m, b.x, b.pos, b.seq_off, 2, b.N, o0, 0, NULL) == GR_OK);
            gr_lora_detach(m);
            REQUIRE(gr_tfm_forward(m, b.x, b.pos, b.seq_off, 2, b.N, o2, 0, NULL) == GR_OK);
            l = gr_lora_attach(m, &lc);
            REQUIRE(l);
            randomize_lora(l, 2 + ti);
            gr_lora_merge(m);
            CHECK(gr_tfm_lora(m) == NULL);
            REQUIRE(gr_tfm_forward(m, b.x, b.pos, b.seq_off, 2, b.N, o1, 0, NULL) == GR_OK);
            double e = max_rel(o1, o0, (int64_t)nc), d = max_rel(o2, o0, (int64_t)nc);
            if (getenv("GR_TEST_VERBOSE")) printf("  merge cfg %d targets %d: rel %.2e (adapter effect %.2e)\n", ci, ti, e, d);
            CHECK(e < 1e-5);
            CHECK(d > 1e-2); /* the adapters did change the model */
            free(o0); free(o1); free(o2); free_batch(&b);
            gr_tfm_free(m);
        }
}

/* A few AdamW steps on the adapters only, base frozen: the loss
 * 0.5 |out - target|^2 falls and the base parameters stay bit-identical. */
static void test_adamw_adapters_only(void)
{
    gr_tfm_config c = cfg_llama();
    gr_tfm *m = make_model(&c, 21);
    REQUIRE(m);
    gr_lora *l = gr_lora_attach(m, &(gr_lora_config){.rank = 4, .alpha = 8.0f, .targets = GR_LORA_ALL, .seed = 5});
    REQUIRE(l);
    gr_tfm_set_frozen(m, 1);
    int64_t np = gr_tfm_n_params(m);
    float *base = malloc(sizeof(float) * (size_t)np);
    memcpy(base, gr_tfm_params(m), sizeof(float) * (size_t)np);
    int lens[3] = {6, 5, 8};
    batch b;
    make_batch(&b, lens, 3, 16, 12, 0, 8); /* b.R doubles as the regression target */
    size_t nc = (size_t)b.N * 16;
    float *out = malloc(sizeof(float) * nc), *dout = malloc(sizeof(float) * nc);
    gr_adamw opt;
    REQUIRE(gr_adamw_init(&opt, gr_lora_n_params(l), 1e-2f, 0.9f, 0.999f, 1e-8f, 0.01f) == GR_OK);
    uint8_t *mask = malloc((size_t)gr_lora_n_params(l));
    gr_lora_decay_mask(l, mask);
    double first = 0, last = 0;
    for (int step = 0; step < 30; step++) {
        gr_tfm_zero_grad(m);
        REQUIRE(gr_tfm_forward(m, b.x, b.pos, b.seq_off, 3, b.N, out, 1, NULL) == GR_OK);
        double L = 0;
        for (size_t i = 0; i < nc; i++) { dout[i] = out[i] - b.R[i]; L += 0.5 * dout[i] * dout[i]; }
        REQUIRE(gr_tfm_backward(m, dout, NULL) == GR_OK);
        gr_adamw_step(&opt, gr_lora_params(l), gr_lora_grads(l), mask);
        if (step == 0) first = L;
        last = L;
    }
    if (getenv("GR_TEST_VERBOSE")) printf("  adapter training: loss %.4f -> %.4f\n", first, last);
    CHECK(last < 0.8 * first);
    CHECK(memcmp(base, gr_tfm_params(m), sizeof(float) * (size_t)np) == 0);
    int64_t nz = 0;
    for (int64_t i = 0; i < np; i++) nz += gr_tfm_grads(m)[i] != 0.0f;
    CHECK_EQ_INT(nz, 0);
    gr_adamw_free(&opt);
    free(mask); free(base); free(out); free(dout); free_batch(&b);
    gr_tfm_free(m);
}

static void test_save_load(void)
{
    gr_tfm_config c = cfg_llama();
    gr_tfm *m = make_model(&c, 31);
    REQUIRE(m);
    gr_lora_config lc = {.rank = 3, .alpha = 4.5f, .targets = GR_LORA_ATTN_Q | GR_LORA_ATTN_V | GR_LORA_FFN_GATE, .seed = 2};
    gr_lora *l = gr_lora_attach(m, &lc);
    REQUIRE(l);
    randomize_lora(l, 4);
    const char *path = gr_test_path("adapter.gguf");
    REQUIRE(gr_lora_save(m, path) == GR_OK);
    /* the file is a GGUF adapter with the expected keys */
    gr_gguf *g = gr_gguf_open(path);
    REQUIRE(g);
    const char *s;
    CHECK(gr_gguf_get_str(g, "general.type", &s, NULL) == GR_OK && !strcmp(s, "adapter"));
    double alpha;
    CHECK(gr_gguf_get_float(g, "adapter.lora.alpha", &alpha) == GR_OK && alpha == 4.5);
    const gr_gguf_tensor *t = gr_gguf_find_tensor(g, "blk.1.ffn_gate.lora_b");
    CHECK(t && t->ne[0] == 3 && t->ne[1] == 24);
    CHECK_EQ_INT(gr_gguf_n_tensors(g), 2 * 3 * 2);
    gr_gguf_close(g);
    /* a fresh copy of the base model loads it */
    gr_tfm *m2 = make_model(&c, 31);
    REQUIRE(m2);
    gr_lora *l2 = gr_lora_load(m2, path);
    REQUIRE(l2);
    CHECK_EQ_INT(gr_lora_get_config(l2)->rank, 3);
    CHECK_EQ_INT(gr_lora_get_config(l2)->targets, lc.targets);
    CHECK_NEAR(gr_lora_scale(l2), 1.5, 0);
    REQUIRE(gr_lora_n_params(l2) == gr_lora_n_params(l));
    CHECK(memcmp(gr_lora_params(l), gr_lora_params(l2), sizeof(float) * (size_t)gr_lora_n_params(l)) == 0);
    int lens[2] = {5, 6};
    batch b;
    make_batch(&b, lens, 2, 16, 12, 0, 5);
    size_t nc = (size_t)b.N * 16;
    float *o1 = malloc(sizeof(float) * nc), *o2 = malloc(sizeof(float) * nc);
    REQUIRE(gr_tfm_forward(m, b.x, b.pos, b.seq_off, 2, b.N, o1, 0, NULL) == GR_OK);
    REQUIRE(gr_tfm_forward(m2, b.x, b.pos, b.seq_off, 2, b.N, o2, 0, NULL) == GR_OK);
    CHECK(memcmp(o1, o2, sizeof(float) * nc) == 0);
    /* loading onto a model that has adapters / a different base */
    CHECK(gr_lora_load(m2, path) == NULL);
    CHECK_HAS(gr_error_message(), "already has adapters");
    gr_tfm_config c3 = c;
    c3.d_ff = 32;
    gr_tfm *m3 = gr_tfm_init(&c3, 1);
    REQUIRE(m3);
    CHECK(gr_lora_load(m3, path) == NULL);
    CHECK_HAS(gr_error_message(), "genrec.lora.d_ff");
    CHECK(gr_tfm_lora(m3) == NULL);
    /* not an adapter file, missing file */
    gr_gguf_builder *gb = gr_gguf_builder_new();
    REQUIRE(gb);
    gr_gguf_set_str(gb, "general.architecture", "llama");
    REQUIRE(gr_gguf_write(gb, gr_test_path("plain.gguf")) == GR_OK);
    gr_gguf_builder_free(gb);
    CHECK(gr_lora_load(m3, gr_test_path("plain.gguf")) == NULL);
    CHECK_HAS(gr_error_message(), "adapter.type");
    CHECK(gr_lora_load(m3, gr_test_path("missing.gguf")) == NULL);
    CHECK_HAS(gr_error_message(), "missing.gguf");
    /* a tensor of the wrong shape: rank 2 file into a model, rewritten keys */
    gb = gr_gguf_builder_new();
    REQUIRE(gb);
    g = gr_gguf_open(path);
    REQUIRE(g);
    for (int64_t i = 0; i < gr_gguf_n_kv(g); i++) gr_gguf_set_kv(gb, gr_gguf_kv_at(g, i));
    for (int64_t i = 0; i < gr_gguf_n_tensors(g); i++) {
        const gr_gguf_tensor *ti = gr_gguf_tensor_at(g, i);
        int64_t ne[2] = {ti->ne[0], ti->ne[1]};
        if (!strcmp(ti->name, "blk.0.attn_v.lora_b")) ne[1] = 4; /* 8 rows -> 4 */
        gr_gguf_add_tensor(gb, ti->name, ti->type, 2, ne, ti->data, (size_t)(ne[0] * ne[1]) * 4);
    }
    REQUIRE(gr_gguf_write(gb, gr_test_path("badshape.gguf")) == GR_OK);
    gr_gguf_builder_free(gb);
    gr_gguf_close(g);
    CHECK(gr_lora_load(m3 = (gr_tfm_free(m3), make_model(&c, 1)), gr_test_path("badshape.gguf")) == NULL);
    CHECK_HAS(gr_error_message(), "blk.0.attn_v.lora_b");
    CHECK(gr_tfm_lora(m3) == NULL);
    free(o1); free(o2); free_batch(&b);
    gr_tfm_free(m3);
    gr_tfm_free(m2);
    gr_tfm_free(m);
}

/* ---- the language model ------------------------------------------------------------ */

static const int32_t toks[9] = {3, 7, 1, 7, 12, 5, 5, 9, 2};
static const int32_t tgts[9] = {-1, 4, 7, 12, -1, 5, 9, 2, -1};
static const int32_t offs[3] = {0, 5, 9};

static double lm_loss(gr_lm *lm, const gr_lm_batch *b)
{
    double s;
    int64_t n;
    if (gr_lm_eval_loss(lm, b, &s, &n) != GR_OK) return NAN;
    return s / (double)n;
}

/* Adapters on a gr_lm's transformer with the base frozen: finite differences
 * of the adapter gradients through gr_lm_forward_backward, and no gradient in
 * the engine's own part of the slab. token_embd / output are outside LoRA:
 * lm.c still accumulates their gradients (lora.h), which a trainer of
 * adapters ignores. */
static void test_lm_frozen(void)
{
    gr_arch archs[2] = {GR_ARCH_GPT2, GR_ARCH_LLAMA};
    for (int ai = 0; ai < 2; ai++) {
        gr_tfm_config c;
        gr_lm_config_preset(&c, archs[ai], 2, 8, 2, ai ? 1 : 2, 12, 16, 13);
        c.tied = 0;
        gr_lm *lm = gr_lm_init(archs[ai], &c, 42);
        REQUIRE(lm);
        gr_tfm *m = gr_lm_tfm(lm);
        float *p = gr_tfm_params(m);
        gr_rng r;
        gr_rng_seed(&r, 7);
        for (int64_t i = 0; i < gr_tfm_n_params(m); i++) p[i] += (float)(0.3 * gr_rng_normal(&r));
        gr_lora *l = gr_lora_attach(m, &(gr_lora_config){.rank = 2, .alpha = 2.0f, .targets = GR_LORA_ALL, .seed = 1});
        REQUIRE(l);
        randomize_lora(l, 3);
        gr_tfm_set_frozen(m, 1);
        gr_lm_batch b = {toks, tgts, NULL, offs, 2, 9};
        gr_tfm_zero_grad(m);
        float L;
        REQUIRE(gr_lm_forward_backward(lm, &b, &L, NULL) == GR_OK);
        CHECK_REL(L, lm_loss(lm, &b), 1e-5); /* inference applies the adapters too */
        const gr_tfm_param_view *v;
        int nv = gr_tfm_param_views(m, &v);
        int64_t nz = 0, nz_embd_head = 0;
        for (int i = 0; i < nv; i++) {
            int outside = !strcmp(v[i].name, "token_embd.weight") || !strcmp(v[i].name, "output.weight");
            for (int64_t j = 0; j < numel(&v[i]); j++) {
                int z = gr_tfm_grads(m)[v[i].offset + j] != 0.0f;
                if (outside) nz_embd_head += z; else nz += z;
            }
        }
        CHECK_EQ_INT(nz, 0);
        CHECK_EQ_INT(nz_embd_head, 0); /* lm.c skips the embedding/head gradients when frozen */
        nv = gr_lora_views(l, &v);
        float *lp = gr_lora_params(l), *lg = gr_lora_grads(l);
        for (int i = 0; i < nv; i++) {
            double maxnum = 0, maxdiff = 0;
            for (int k = 0; k < 3; k++) {
                int64_t j = v[i].offset + (k * 13 + i) % numel(&v[i]);
                float save = lp[j];
                lp[j] = save + 1e-2f;
                double h1 = (double)lp[j] - save, Lp = lm_loss(lm, &b);
                lp[j] = save - 1e-2f;
                double h2 = save - (double)lp[j], Lm = lm_loss(lm, &b);
                lp[j] = save;
                double num = (Lp - Lm) / (h1 + h2);
                maxnum = fmax(maxnum, fabs(num));
                maxdiff = fmax(maxdiff, fabs(num - lg[j]));
            }
            if (!(maxdiff <= 3e-3 * fmax(maxnum, 0.05)))
                gr_test_fail(__FILE__, __LINE__, "lm %d: d/d%s max |num-ana| %g (max %g)", ai, v[i].name, maxdiff, maxnum);
        }
        gr_lm_free(lm);
    }
}

/* ---- PyTorch reference --------------------------------------------------------------- */

/* rel_err (tfm_testutil.h) against a float64 reference. */
static double rel_err_d(const float *a, const double *ref, int64_t n)
{
    double mr = 1e-2, md = 0;
    for (int64_t i = 0; i < n; i++) { mr = fmax(mr, fabs(ref[i])); md = fmax(md, fabs((double)a[i] - ref[i])); }
    return md / mr;
}

static void test_torch_reference(void)
{
    gr_tfm_config cfgs[2] = {cfg_gpt2(), cfg_llama()};
    const char *names[2] = {"gpt2", "llama"};
    gr_tfm *ms[2];
    batch bs[2];
    char in[2][512], outp[2][512];
    int lens[4] = {5, 1, 7, 3};
    for (int i = 0; i < 2; i++) {
        ms[i] = make_model(&cfgs[i], 40 + i);
        REQUIRE(ms[i]);
        gr_lora *l = gr_lora_attach(ms[i], &lcfg_all);
        REQUIRE(l);
        randomize_lora(l, 50 + i);
        make_batch(&bs[i], lens, 4, cfgs[i].d_model, cfgs[i].max_T, 0, 60 + i);
        /* the reference sees the merged weights */
        gr_tfm *mm = make_model(&cfgs[i], 40 + i);
        REQUIRE(mm);
        gr_lora *lm = gr_lora_attach(mm, &lcfg_all);
        REQUIRE(lm);
        memcpy(gr_lora_params(lm), gr_lora_params(l), sizeof(float) * (size_t)gr_lora_n_params(l));
        gr_lora_merge(mm);
        REQUIRE(write_case_files(in[i], outp[i], "lora_", names[i], mm, &bs[i]) == 0);
        gr_tfm_free(mm);
    }
    int rc = run_reference(2, in, outp);
    if (rc == 77) {
        for (int i = 0; i < 2; i++) { free_batch(&bs[i]); gr_tfm_free(ms[i]); }
        return;
    }
    REQUIRE(rc == 0);
    for (int i = 0; i < 2; i++) {
        gr_tfm *m = ms[i];
        gr_lora *l = gr_tfm_lora(m);
        batch *b = &bs[i];
        float *ref = check_reference(names[i], m, b, outp[i]); /* dL/dW = dL/dW' */
        REQUIRE(ref);
        const float *gref = ref + 2 * (int64_t)b->N * b->C;
        const gr_tfm_param_view *v;
        int nv = gr_tfm_param_views(m, &v);
        /* adapters: dB = s G A^T, dA = s B^T G with G = dL/dW' of the target */
        const gr_lora_config *lc = gr_lora_get_config(l);
        const int r = lc->rank;
        const double s = gr_lora_scale(l);
        for (int t = 0; t < GR_LORA_N_TARGETS; t++) {
            if (!(lc->targets & (1u << t))) continue;
            for (int layer = 0; layer < cfgs[i].n_layer; layer++) {
                char wn[64], an[64], bn[64];
                snprintf(wn, sizeof wn, "blk.%d.%s.weight", layer, gr_lora_target_name(t));
                snprintf(an, sizeof an, "blk.%d.%s.lora_a", layer, gr_lora_target_name(t));
                snprintf(bn, sizeof bn, "blk.%d.%s.lora_b", layer, gr_lora_target_name(t));
                const gr_tfm_param_view *wv = NULL;
                for (int j = 0; j < nv; j++) if (!strcmp(v[j].name, wn)) wv = &v[j];
                REQUIRE(wv);
                int out_d = (int)wv->shape[0], in_d = (int)wv->shape[1];
                const float *G = gref + wv->offset, *A = gr_lora_param(l, an), *B = gr_lora_param(l, bn);
                double *dA = calloc((size_t)r * in_d, sizeof(double)), *dB = calloc((size_t)out_d * r, sizeof(double));
                for (int o = 0; o < out_d; o++)
                    for (int k = 0; k < r; k++)
                        for (int c = 0; c < in_d; c++) {
                            dB[o * r + k] += s * G[o * in_d + c] * A[k * in_d + c];
                            dA[k * in_d + c] += s * B[o * r + k] * G[o * in_d + c];
                        }
                double ea = rel_err_d(gr_lora_grad(l, an), dA, (int64_t)r * in_d);
                double eb = rel_err_d(gr_lora_grad(l, bn), dB, (int64_t)out_d * r);
                if (getenv("GR_TEST_VERBOSE")) printf("  %s %-22s A %.2e B %.2e\n", names[i], wn, ea, eb);
                if (!(ea < 1e-4 && eb < 1e-4))
                    gr_test_fail(__FILE__, __LINE__, "%s: %s adapter grads rel err A %g B %g vs torch", names[i], wn, ea, eb);
                free(dA); free(dB);
            }
        }
        free(ref); free_batch(b);
        gr_tfm_free(m);
    }
}

int main(void)
{
    GR_RUN(test_config_errors);
    GR_RUN(test_views_and_init);
    GR_RUN(test_identity_at_init);
    GR_RUN(test_fd_gpt2);
    GR_RUN(test_fd_llama);
    GR_RUN(test_fd_sasrec_dropout);
    GR_RUN(test_frozen_same_adapter_grads);
    GR_RUN(test_merge);
    GR_RUN(test_adamw_adapters_only);
    GR_RUN(test_save_load);
    GR_RUN(test_lm_frozen);
    GR_RUN(test_torch_reference);
    return gr_test_finish();
}
