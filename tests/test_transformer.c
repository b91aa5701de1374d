/* The transformer engine: config validation, parameter views, packed-batch
 * invariances, finite differences through whole tiny models (GPT-2-like,
 * Llama-like, SASRec-like with dropout) and equality with an independent
 * PyTorch float64 reference (tests/ref/transformer_ref.py, skipped when
 * /usr/bin/python3 or torch is missing). */
#include "gr_test.h"
#include "tfm_testutil.h"
#include "genrec/common.h"
#include "genrec/rng.h"
#include "genrec/transformer.h"

#include <math.h>
#include <stdlib.h>

static gr_tfm_config cfg_sasrec(void)
{
    gr_tfm_config c = {.n_layer = 2, .d_model = 8, .n_head = 2, .d_ff = 8, .max_T = 10,
                       .norm = GR_NORM_LAYER, .act = GR_ACT_RELU, .pos = GR_POS_LEARNED,
                       .bias = 1, .final_norm = 1, .norm_eps = 1e-8f};
    return c;
}

/* Finite differences through the whole model on up to 6 entries of every
 * parameter tensor and of x. */
static void fd_check(const char *what, const gr_tfm_config *c, int right_align, double eps, double tol)
{
    gr_tfm *m = make_model(c, 5);
    REQUIRE(m);
    int lens[3] = {4, 1, 6};
    batch b;
    make_batch(&b, lens, 3, c->d_model, c->max_T, right_align, 11);
    float *out = malloc(sizeof(float) * (size_t)b.N * b.C), *dx = malloc(sizeof(float) * (size_t)b.N * b.C);
    gr_tfm_zero_grad(m);
    double L0 = loss(m, &b, out);
    REQUIRE(isfinite(L0));
    REQUIRE(gr_tfm_backward(m, b.R, dx) == GR_OK);
    const gr_tfm_param_view *v;
    int nv = gr_tfm_param_views(m, &v);
    float *p = gr_tfm_params(m), *g = gr_tfm_grads(m);
    for (int i = 0; i <= nv; i++) {
        float *xs = i < nv ? p + v[i].offset : b.x, *gs = i < nv ? g + v[i].offset : dx;
        int64_t n = i == nv ? (int64_t)b.N * b.C : v[i].ndim == 1 ? v[i].shape[0] : v[i].shape[0] * v[i].shape[1];
        const char *name = i < nv ? v[i].name : "x";
        if (i < nv && !strcmp(name, "pos_embd")) { /* only rows that are used get gradient */
            xs += (int64_t)(c->max_T - 6) * c->d_model;
            gs += (int64_t)(c->max_T - 6) * c->d_model;
            n = 6 * (int64_t)c->d_model;
            if (!right_align) { xs = p + v[i].offset; gs = g + v[i].offset; }
        }
        double maxnum = 0, maxdiff = 0;
        int used = 0;
        for (int k = 0; k < 8 && used < 6; k++) {
            int64_t j = (k * 7919 + i * 31) % n;
            float x0 = xs[j];
            xs[j] = (float)(x0 + eps);
            double hp = (double)xs[j] - x0, Lp = loss(m, &b, out);
            xs[j] = (float)(x0 - eps);
            double hm = x0 - (double)xs[j], Lm = loss(m, &b, out);
            xs[j] = x0;
            double num = (Lp - Lm) / (hp + hm);
            /* a ReLU kink inside [x-eps, x+eps] makes the one-sided slopes
             * disagree: no derivative to check there, skip the probe */
            double fwd = (Lp - L0) / hp, bwd = (L0 - Lm) / hm;
            if (fabs(fwd - bwd) > 0.02 * fmax(fabs(num), 0.05)) continue;
            used++;
            maxnum = fmax(maxnum, fabs(num));
            maxdiff = fmax(maxdiff, fabs(num - gs[j]));
        }
        if (used < 3) gr_test_fail(__FILE__, __LINE__, "%s: d/d%s: only %d smooth probes", what, name, used);
        if (getenv("GR_TEST_VERBOSE")) printf("  %s %-28s rel %.2e (max %.3g)\n", what, name, maxdiff / fmax(maxnum, 1e-12), maxnum);
        /* floor: attn_k.bias has an exactly-zero gradient (softmax shift) */
        if (!(maxdiff <= tol * fmax(maxnum, 0.1)))
            gr_test_fail(__FILE__, __LINE__, "%s: d/d%s max |num-ana| %g > %g * max|num| %g", what, name, maxdiff, tol, maxnum);
    }
    free(out); free(dx); free_batch(&b);
    gr_tfm_free(m);
}

static void test_fd_gpt2(void) { gr_tfm_config c = cfg_gpt2(); fd_check("gpt2", &c, 0, 1e-2, 2e-3); }
static void test_fd_llama(void) { gr_tfm_config c = cfg_llama(); fd_check("llama", &c, 0, 1e-2, 2e-3); }
static void test_fd_sasrec_dropout(void)
{
    gr_tfm_config c = cfg_sasrec();
    c.dropout = 0.2f;
    fd_check("sasrec", &c, 1, 3e-3, 2e-3);
}

static void test_config_errors(void)
{
    gr_tfm_config c = cfg_gpt2();
    c.n_head = 3;
    CHECK(gr_tfm_init(&c, 1) == NULL);
    CHECK_HAS(gr_error_message(), "'n_head'");
    c = cfg_llama();
    c.n_kv_head = 3;
    CHECK(gr_tfm_init(&c, 1) == NULL);
    CHECK_HAS(gr_error_message(), "'n_kv_head'");
    c = cfg_gpt2();
    c.dropout = 1.0f;
    CHECK(gr_tfm_init(&c, 1) == NULL);
    CHECK_HAS(gr_error_message(), "'dropout'");
    c = cfg_llama();
    c.d_model = 12; c.n_head = 4; c.n_kv_head = 4; /* head size 3: odd, RoPE needs pairs */
    CHECK(gr_tfm_init(&c, 1) == NULL);
    CHECK_HAS(gr_error_message(), "RoPE");
    c = cfg_gpt2();
    c.norm_eps = 0;
    CHECK(gr_tfm_init(&c, 1) == NULL);
    CHECK_HAS(gr_error_message(), "'norm_eps'");
    c = cfg_gpt2();
    c.act = (gr_act_type)7;
    CHECK(gr_tfm_init(&c, 1) == NULL);
    CHECK_HAS(gr_error_message(), "'act'");
    CHECK(gr_tfm_init(NULL, 1) == NULL);
    gr_tfm_free(NULL);
}

static void test_views_and_init(void)
{
    gr_tfm_config c = cfg_llama();
    c.n_kv_head = 0; /* 0 = n_head */
    gr_tfm *m = gr_tfm_init(&c, 3);
    REQUIRE(m);
    CHECK_EQ_INT(gr_tfm_get_config(m)->n_kv_head, 4);
    const gr_tfm_param_view *v;
    int nv = gr_tfm_param_views(m, &v);
    int64_t total = 0, expect_off = 0;
    int contiguous = 1;
    for (int i = 0; i < nv; i++) {
        int64_t n = v[i].ndim == 1 ? v[i].shape[0] : v[i].shape[0] * v[i].shape[1];
        contiguous &= v[i].offset == expect_off;
        expect_off += n;
        total += n;
    }
    CHECK(contiguous);
    CHECK_EQ_INT(total, gr_tfm_n_params(m));
    /* C=16, F=24, 2 layers, no biases, RMSNorm, SwiGLU: per layer
     * 16 + 3*256 + 256 + 16 + 2*24*16 + 16*24 = 2208; + output_norm 16 */
    CHECK_EQ_INT(gr_tfm_n_params(m), 2 * 2208 + 16);
    CHECK_STR(v[0].name, "blk.0.attn_norm.weight");
    CHECK(gr_tfm_param(m, "blk.1.ffn_gate.weight") != NULL);
    CHECK(gr_tfm_param(m, "blk.1.attn_q.bias") == NULL);
    CHECK_HAS(gr_error_message(), "blk.1.attn_q.bias");
    /* q, k, v adjacent (fused QKV), and the k view has shape (KVH*HS, C) */
    float *q = gr_tfm_param(m, "blk.0.attn_q.weight"), *k = gr_tfm_param(m, "blk.0.attn_k.weight");
    CHECK(k == q + 16 * 16);
    CHECK(gr_tfm_grad(m, "blk.0.attn_q.weight") == gr_tfm_grads(m) + (q - gr_tfm_params(m)));
    float *nw = gr_tfm_param(m, "output_norm.weight");
    CHECK(nw && nw[0] == 1.0f && nw[15] == 1.0f);
    /* init statistics of a weight matrix ~ N(0, 0.02) */
    float *up = gr_tfm_param(m, "blk.0.ffn_up.weight");
    double s = 0, s2 = 0;
    for (int i = 0; i < 24 * 16; i++) { s += up[i]; s2 += (double)up[i] * up[i]; }
    CHECK_NEAR(sqrt(s2 / 384 - (s / 384) * (s / 384)), 0.02, 0.004);
    uint8_t *mask = malloc((size_t)gr_tfm_n_params(m));
    gr_tfm_decay_mask(m, mask);
    CHECK_EQ_INT(mask[0], 0);                        /* attn_norm.weight */
    CHECK_EQ_INT(mask[q - gr_tfm_params(m)], 1);     /* attn_q.weight */
    CHECK_EQ_INT(mask[gr_tfm_n_params(m) - 1], 0);   /* output_norm.weight */
    free(mask);
    /* same seed, same parameters */
    gr_tfm *m2 = gr_tfm_init(&c, 3);
    REQUIRE(m2);
    CHECK(memcmp(gr_tfm_params(m), gr_tfm_params(m2), sizeof(float) * (size_t)gr_tfm_n_params(m)) == 0);
    gr_tfm_free(m2);
    gr_tfm_free(m);
}

/* A sequence's outputs do not depend on what it is packed with; inference
 * equals the training forward without dropout; bad batches are rejected. */
static void test_packing_and_inference(void)
{
    gr_tfm_config cfgs[2] = {cfg_gpt2(), cfg_llama()};
    for (int ci = 0; ci < 2; ci++) {
        gr_tfm *m = make_model(&cfgs[ci], 9);
        REQUIRE(m);
        int lens[3] = {5, 9, 3};
        batch b;
        make_batch(&b, lens, 3, 16, 12, 0, 4);
        float *out = malloc(sizeof(float) * (size_t)b.N * 16), *out1 = malloc(sizeof(float) * (size_t)b.N * 16);
        REQUIRE(gr_tfm_forward(m, b.x, b.pos, b.seq_off, 3, b.N, out, 1, NULL) == GR_OK);
        REQUIRE(gr_tfm_forward(m, b.x, b.pos, b.seq_off, 3, b.N, out1, 0, NULL) == GR_OK);
        double d = 0;
        for (int i = 0; i < b.N * 16; i++) d = fmax(d, fabs(out[i] - out1[i]));
        CHECK(d < 1e-6);
        /* the middle sequence alone */
        int32_t off1[2] = {0, 9};
        REQUIRE(gr_tfm_forward(m, b.x + 5 * 16, b.pos + 5, off1, 1, 9, out1, 0, NULL) == GR_OK);
        d = 0;
        for (int i = 0; i < 9 * 16; i++) d = fmax(d, fabs(out[5 * 16 + i] - out1[i]));
        CHECK(d < 1e-5);
        /* backward after an inference forward is an error */
        CHECK(gr_tfm_backward(m, b.R, NULL) == GR_ERR);
        CHECK_HAS(gr_error_message(), "train=1");
        /* bad batches */
        int32_t bad_off[4] = {0, 5, 4, b.N};
        CHECK(gr_tfm_forward(m, b.x, b.pos, bad_off, 3, b.N, out, 0, NULL) == GR_ERR);
        CHECK_HAS(gr_error_message(), "seq_off");
        int32_t keep = b.pos[2];
        b.pos[2] = 12;
        CHECK(gr_tfm_forward(m, b.x, b.pos, b.seq_off, 3, b.N, out, 0, NULL) == GR_ERR);
        CHECK_HAS(gr_error_message(), "pos[2]");
        b.pos[2] = keep;
        gr_tfm_config dc = cfgs[ci];
        dc.dropout = 0.1f;
        gr_tfm *md = gr_tfm_init(&dc, 1);
        REQUIRE(md);
        CHECK(gr_tfm_forward(md, b.x, b.pos, b.seq_off, 3, b.N, out, 1, NULL) == GR_ERR);
        CHECK_HAS(gr_error_message(), "rng");
        gr_tfm_free(md);
        /* empty batch */
        int32_t zero_off[1] = {0};
        CHECK(gr_tfm_forward(m, b.x, b.pos, zero_off, 0, 0, out, 1, NULL) == GR_OK);
        CHECK(gr_tfm_backward(m, b.R, NULL) == GR_OK);
        free(out); free(out1); free_batch(&b);
        gr_tfm_free(m);
    }
}

/* Two identical training steps give bit-identical gradients; growing the
 * buffers for a larger batch and going back to a smaller one is fine. */
static void test_determinism_and_growth(void)
{
    gr_tfm_config c = cfg_sasrec();
    c.dropout = 0.3f;
    gr_tfm *m = make_model(&c, 2);
    REQUIRE(m);
    int64_t np = gr_tfm_n_params(m);
    float *g1 = malloc(sizeof(float) * (size_t)np);
    int lens_small[2] = {3, 4}, lens_big[4] = {10, 7, 10, 2};
    batch small, big;
    make_batch(&small, lens_small, 2, 8, 10, 1, 1);
    make_batch(&big, lens_big, 4, 8, 10, 1, 2);
    float *out = malloc(sizeof(float) * (size_t)big.N * 8);
    for (int rep = 0; rep < 2; rep++) {
        gr_tfm_zero_grad(m);
        CHECK(isfinite(loss(m, &small, out)));
        REQUIRE(gr_tfm_backward(m, small.R, NULL) == GR_OK);
        if (rep == 0) {
            memcpy(g1, gr_tfm_grads(m), sizeof(float) * (size_t)np);
            gr_tfm_zero_grad(m); /* grow in between */
            CHECK(isfinite(loss(m, &big, out)));
            REQUIRE(gr_tfm_backward(m, big.R, NULL) == GR_OK);
        }
    }
    CHECK(memcmp(g1, gr_tfm_grads(m), sizeof(float) * (size_t)np) == 0);
    /* 1 vs 3 threads: same result up to rounding (bit-identical with the
     * AVX2 GEMM, whose summation order does not depend on the split) */
    gr_threads_set(3);
    gr_tfm_zero_grad(m);
    CHECK(isfinite(loss(m, &big, out)));
    REQUIRE(gr_tfm_backward(m, big.R, NULL) == GR_OK);
    float *g3 = malloc(sizeof(float) * (size_t)np);
    memcpy(g3, gr_tfm_grads(m), sizeof(float) * (size_t)np);
    gr_threads_set(1);
    gr_tfm_zero_grad(m);
    CHECK(isfinite(loss(m, &big, out)));
    REQUIRE(gr_tfm_backward(m, big.R, NULL) == GR_OK);
    gr_threads_set(0);
    double md = 0, mg = 0;
    for (int64_t i = 0; i < np; i++) {
        md = fmax(md, fabs(g3[i] - gr_tfm_grads(m)[i]));
        mg = fmax(mg, fabs(g3[i]));
    }
    CHECK(md <= 1e-5 * mg);
    free(g3);
    /* backward accumulates */
    gr_tfm_zero_grad(m);
    CHECK(isfinite(loss(m, &small, out)));
    REQUIRE(gr_tfm_backward(m, small.R, NULL) == GR_OK);
    CHECK(isfinite(loss(m, &small, out)));
    REQUIRE(gr_tfm_backward(m, small.R, NULL) == GR_OK);
    CHECK_NEAR(gr_tfm_grads(m)[5], 2.0 * g1[5], 1e-6 * fmax(1.0, fabs(g1[5])));
    free(g1); free(out); free_batch(&small); free_batch(&big);
    gr_tfm_free(m);
}

/* ---- PyTorch reference ---------------------------------------------------------- */

static void test_torch_reference(void)
{
    gr_tfm_config cfgs[3] = {cfg_gpt2(), cfg_llama(), cfg_sasrec()};
    const char *names[3] = {"gpt2", "llama", "sasrec"};
    gr_tfm *ms[3];
    batch bs[3];
    char in[3][512], outp[3][512];
    int lens[4] = {5, 1, 7, 3};
    for (int i = 0; i < 3; i++) {
        ms[i] = make_model(&cfgs[i], 20 + i);
        REQUIRE(ms[i]);
        make_batch(&bs[i], lens, 4, cfgs[i].d_model, cfgs[i].max_T, i == 2, 30 + i);
        REQUIRE(write_case_files(in[i], outp[i], "", names[i], ms[i], &bs[i]) == 0);
    }
    int rc = run_reference(3, in, outp);
    if (rc == 77) {
        for (int i = 0; i < 3; i++) { free_batch(&bs[i]); gr_tfm_free(ms[i]); }
        return;
    }
    REQUIRE(rc == 0);
    for (int i = 0; i < 3; i++) {
        gr_tfm *m = ms[i];
        batch *b = &bs[i];
        float *ref = check_reference(names[i], m, b, outp[i]);
        REQUIRE(ref);
        free(ref); free_batch(b);
        gr_tfm_free(m);
    }
}

int main(void)
{
    GR_RUN(test_config_errors);
    GR_RUN(test_views_and_init);
    GR_RUN(test_packing_and_inference);
    GR_RUN(test_determinism_and_growth);
    GR_RUN(test_fd_gpt2);
    GR_RUN(test_fd_llama);
    GR_RUN(test_fd_sasrec_dropout);
    GR_RUN(test_torch_reference);
    return gr_test_finish();
}
