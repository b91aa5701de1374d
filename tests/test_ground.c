/* BIGRec-style grounding (ground.h) and the hidden-state API (gr_lm_hidden):
 * pooled hidden states against the logits and against per-prefix passes;
 * greedy generation against a step-by-step argmax loop over full-sequence
 * logits; beam search with enough beams against brute force; grounding of a
 * generation that reproduces an item (distance 0, ranked first, valid) and
 * of invalid ones; distances against a direct computation; BIGRec's
 * (1 + p~)^(-gamma) * d~ formula on a hand example; errors. */
#include "gr_test.h"
#include "genrec/decode.h"
#include "genrec/ground.h"

#include <stdlib.h>

#define V 24
#define MAXT 40

static gr_lm *make_lm(gr_arch arch)
{
    gr_tfm_config c;
    gr_lm_config_preset(&c, arch, 2, 16, 4, 2, 32, MAXT, V);
    gr_lm *lm = gr_lm_init(arch, &c, 3);
    if (!lm) return NULL;
    float *p = gr_tfm_params(gr_lm_tfm(lm));
    gr_rng r;
    gr_rng_seed(&r, 11);
    for (int64_t i = 0; i < gr_tfm_n_params(gr_lm_tfm(lm)); i++) p[i] += (float)(0.5 * gr_rng_normal(&r));
    return lm;
}

/* ---- (a) hidden states ---- */

static void hidden_arch(gr_arch arch)
{
    gr_lm *lm = make_lm(arch);
    REQUIRE(lm);
    const int C = 16;
    int32_t tok[] = {2, 3, 4, 20, 21, 5, 9, 9, 1, 7, 8, 6};
    int32_t off[] = {0, 5, 6, 12};
    gr_lm_batch b = {tok, NULL, NULL, off, 3, 12};
    float h[3 * 16], mean[3 * 16], logits[3 * V];
    REQUIRE(gr_lm_hidden(lm, &b, GR_POOL_LAST, h) == GR_OK);
    REQUIRE(gr_lm_logits(lm, &b, NULL, 3, logits) == GR_OK);
    const float *W = gr_tfm_head(gr_lm_tfm(lm), 0);
    for (int s = 0; s < 3; s++)
        for (int v = 0; v < V; v++) {
            double z = 0.0;
            for (int c = 0; c < C; c++) z += (double)h[s * C + c] * W[v * C + c];
            CHECK_NEAR(z, logits[s * V + v], 1e-4 * fmax(1.0, fabs(logits[s * V + v])));
        }
    /* mean pooling = average of the last-token states of every prefix (causal) */
    REQUIRE(gr_lm_hidden(lm, &b, GR_POOL_MEAN, mean) == GR_OK);
    for (int s = 0; s < 3; s++) {
        double acc[16] = {0};
        int L = off[s + 1] - off[s];
        for (int t = 1; t <= L; t++) {
            float ht[16];
            gr_lm_batch bp = {tok + off[s], NULL, NULL, (int32_t[2]){0, t}, 1, t};
            REQUIRE(gr_lm_hidden(lm, &bp, GR_POOL_LAST, ht) == GR_OK);
            for (int c = 0; c < C; c++) acc[c] += ht[c];
            if (t == L)
                for (int c = 0; c < C; c++) CHECK_NEAR(ht[c], h[s * C + c], 1e-4);
        }
        for (int c = 0; c < C; c++) CHECK_NEAR(mean[s * C + c], acc[c] / L, 1e-4);
    }
    /* errors: empty sequence, bad pool, bad token; targets are ignored */
    int32_t off_e[] = {0, 5, 5, 12};
    gr_lm_batch be = {tok, NULL, NULL, off_e, 3, 12};
    CHECK(gr_lm_hidden(lm, &be, GR_POOL_LAST, h) == GR_ERR);
    CHECK_HAS(gr_error_message(), "sequence 1 is empty");
    CHECK(gr_lm_hidden(lm, &b, (gr_pool)7, h) == GR_ERR);
    int32_t badtok[] = {2, V};
    gr_lm_batch bb = {badtok, NULL, NULL, (int32_t[2]){0, 2}, 1, 2};
    CHECK(gr_lm_hidden(lm, &bb, GR_POOL_LAST, h) == GR_ERR);
    CHECK_HAS(gr_error_message(), "outside the vocabulary");
    int32_t tgt[12];
    for (int i = 0; i < 12; i++) tgt[i] = 1000; /* would be rejected by the loss calls */
    gr_lm_batch bt = b;
    bt.targets = tgt;
    float h2[3 * 16];
    REQUIRE(gr_lm_hidden(lm, &bt, GR_POOL_LAST, h2) == GR_OK);
    CHECK(!memcmp(h, h2, sizeof h));
    gr_lm_free(lm);
}

static void test_hidden(void)
{
    hidden_arch(GR_ARCH_LLAMA);
    hidden_arch(GR_ARCH_GPT2);
}

/* ---- (b) generation ---- */

static const int32_t prompts_data[3][6] = {{2, 3, 4, 20, 21, 22}, {2, 19, 18}, {2, 4, 4, 4, 3}};
static const int64_t plens[3] = {6, 3, 5};

/* greedy continuation by full-sequence logits, n_new tokens, no end token */
static void argmax_loop(gr_lm *lm, const int32_t *prompt, int plen, int n_new, int32_t *out)
{
    int32_t seq[MAXT];
    memcpy(seq, prompt, sizeof(int32_t) * (size_t)plen);
    int n = plen;
    for (int k = 0; k < n_new; k++) {
        float z[V];
        gr_lm_batch b = {seq, NULL, NULL, (int32_t[2]){0, n}, 1, n};
        if (gr_lm_logits(lm, &b, NULL, 1, z) != GR_OK) { out[k] = -1; continue; }
        out[k] = gr_argmax(z, V);
        if (n < MAXT) seq[n++] = out[k];
    }
}

static void test_greedy(void)
{
    gr_lm *lm = make_lm(GR_ARCH_LLAMA);
    REQUIRE(lm);
    const int NEW = 8;
    int32_t ref[3][8];
    for (int u = 0; u < 3; u++) argmax_loop(lm, prompts_data[u], (int)plens[u], NEW, ref[u]);
    /* an end token that user 0 writes at step >= 1 (first occurrence) */
    int32_t eos = -1;
    for (int k = 1; k < NEW && eos < 0; k++) {
        int seen = 0;
        for (int j = 0; j < k; j++) seen |= ref[0][j] == ref[0][k];
        if (!seen) eos = ref[0][k];
    }
    REQUIRE(eos >= 0);
    const int32_t *pp[3] = {prompts_data[0], prompts_data[1], prompts_data[2]};
    for (int gs = 1; gs <= 4; gs += 3) {
        gr_ground_opts o = gr_ground_opts_default();
        o.eos = eos;
        o.max_new = NEW;
        o.group = gs;
        int32_t *ids[3];
        int64_t len[3];
        REQUIRE(gr_ground_generate(lm, pp, plens, 3, &o, ids, len) == GR_OK);
        for (int u = 0; u < 3; u++) {
            int expect = NEW;
            for (int k = 0; k < NEW; k++)
                if (ref[u][k] == eos) { expect = k; break; }
            CHECK_EQ_INT(len[u], expect);
            for (int k = 0; k < expect && k < len[u]; k++) CHECK_EQ_INT(ids[u][k], ref[u][k]);
            gr_free(ids[u]);
        }
        CHECK(len[0] >= 1 && len[0] < NEW); /* the end token was met */
    }
    /* the model's context caps the length: prompt of MAXT-2 tokens -> 3 new tokens */
    int32_t longp[MAXT];
    for (int i = 0; i < MAXT; i++) longp[i] = 2 + i % 20;
    const int32_t *lp1[1] = {longp};
    int64_t ll = MAXT - 2;
    gr_ground_opts o = gr_ground_opts_default();
    o.eos = V - 1;
    o.max_new = 50;
    int32_t *ids1[1];
    int64_t len1[1];
    REQUIRE(gr_ground_generate(lm, lp1, &ll, 1, &o, ids1, len1) == GR_OK);
    int32_t r1[3];
    argmax_loop(lm, longp, MAXT - 2, 3, r1);
    int e1 = 3;
    for (int k = 0; k < 3; k++)
        if (r1[k] == V - 1) { e1 = k; break; }
    CHECK_EQ_INT(len1[0], e1);
    for (int k = 0; k < e1 && k < len1[0]; k++) CHECK_EQ_INT(ids1[0][k], r1[k]);
    gr_free(ids1[0]);
    gr_lm_free(lm);
}

/* log p(seq | prompt) summed over seq's tokens */
static double seq_lp(gr_lm *lm, const int32_t *prompt, int plen, const int32_t *seq, int n)
{
    int32_t tok[MAXT], tgt[MAXT];
    int m = 0;
    for (int t = 0; t < plen; t++) tok[m++] = prompt[t];
    for (int t = 0; t < n - 1; t++) tok[m++] = seq[t];
    for (int t = 0; t < m; t++) tgt[t] = -1;
    for (int t = 0; t < n; t++) tgt[plen - 1 + t] = seq[t];
    gr_lm_batch b = {tok, tgt, NULL, (int32_t[2]){0, m}, 1, m};
    double lp = NAN;
    if (gr_lm_seq_logprob(lm, &b, &lp) != GR_OK) return NAN;
    return lp;
}

/* with n_beams >= V and max_new 2 the search is exhaustive over: [eos],
 * [a, eos], [a, b] (truncated), a, b != eos */
static void test_beam(void)
{
    gr_lm *lm = make_lm(GR_ARCH_LLAMA);
    REQUIRE(lm);
    const int32_t *pp[3] = {prompts_data[0], prompts_data[1], prompts_data[2]};
    const int32_t eos = 1;
    for (int li = 0; li < 2; li++) {
        float lambda = li ? 1.0f : 0.0f;
        gr_ground_opts o = gr_ground_opts_default();
        o.eos = eos;
        o.max_new = 2;
        o.n_beams = 64;
        o.lambda = lambda;
        o.group = 2;
        int32_t *ids[3];
        int64_t len[3];
        REQUIRE(gr_ground_generate(lm, pp, plens, 3, &o, ids, len) == GR_OK);
        for (int u = 0; u < 3; u++) {
            double best = -INFINITY;
            int32_t bseq[2] = {-1, -1};
            int blen = -1;
            int32_t s1[1] = {eos};
            double sc = seq_lp(lm, prompts_data[u], (int)plens[u], s1, 1);
            if (sc > best) { best = sc; blen = 0; }
            for (int32_t a = 0; a < V; a++) {
                if (a == eos) continue;
                for (int32_t b = 0; b < V; b++) {
                    int32_t s2[2] = {a, b};
                    double l = seq_lp(lm, prompts_data[u], (int)plens[u], s2, 2) / pow(2.0, lambda);
                    if (l > best) { best = l; bseq[0] = a; bseq[1] = b; blen = b == eos ? 1 : 2; }
                }
            }
            CHECK_EQ_INT(len[u], blen);
            for (int k = 0; k < blen && k < len[u]; k++) CHECK_EQ_INT(ids[u][k], bseq[k]);
            gr_free(ids[u]);
        }
    }
    /* a few beams: groups do not change the results */
    int32_t *a[3], *b[3];
    int64_t la[3], lb[3];
    gr_ground_opts o = gr_ground_opts_default();
    o.eos = 7;
    o.max_new = 6;
    o.n_beams = 4;
    o.group = 1;
    REQUIRE(gr_ground_generate(lm, pp, plens, 3, &o, a, la) == GR_OK);
    o.group = 3;
    REQUIRE(gr_ground_generate(lm, pp, plens, 3, &o, b, lb) == GR_OK);
    for (int u = 0; u < 3; u++) {
        CHECK_EQ_INT(la[u], lb[u]);
        CHECK(la[u] <= 6);
        if (la[u] == lb[u]) CHECK(!memcmp(a[u], b[u], sizeof(int32_t) * (size_t)la[u]));
        for (int k = 0; k < la[u]; k++) CHECK(a[u][k] != 7);
        gr_free(a[u]);
        gr_free(b[u]);
    }
    gr_lm_free(lm);
}

/* ---- (c) grounding ---- */

#define NI 6
static const int32_t items[NI][4] = {{5, 6}, {5, 6, 8}, {9, 10, 11}, {12}, {5, 7, 13, 14}, {15, 16}};
static const int64_t item_len[NI] = {2, 3, 3, 1, 4, 2};

static void ground_pool(gr_pool pool)
{
    gr_lm *lm = make_lm(GR_ARCH_LLAMA);
    REQUIRE(lm);
    const int32_t *ip[NI];
    for (int i = 0; i < NI; i++) ip[i] = items[i];
    gr_grounder *g = gr_grounder_init(lm, ip, item_len, NI, pool);
    REQUIRE(g);
    CHECK_EQ_INT(gr_grounder_n_items(g), NI);
    /* generations: item 1 exactly, item 3 exactly, a prefix of item 1 (invalid),
     * an unknown sequence, an empty one */
    int32_t g2[] = {5}, g3[] = {3, 4, 22, 23};
    const int32_t *gen[5] = {items[1], items[3], g2, g3, NULL};
    int64_t gl[5] = {3, 1, 1, 4, 0};
    float dist[5 * NI], sc[5 * NI];
    int valid[5], n_bad = -1;
    REQUIRE(gr_ground_distances(g, gen, gl, 5, dist, valid, &n_bad) == GR_OK);
    CHECK_EQ_INT(valid[0], 1);
    CHECK_EQ_INT(valid[1], 1);
    CHECK_EQ_INT(valid[2], 0);
    CHECK_EQ_INT(valid[3], 0);
    CHECK_EQ_INT(valid[4], 0);
    CHECK_EQ_INT(n_bad, 3);
    /* distances against a direct computation */
    float ie[NI][16], qe[4][16];
    for (int i = 0; i < NI; i++) {
        gr_lm_batch b = {items[i], NULL, NULL, (int32_t[2]){0, (int32_t)item_len[i]}, 1, (int)item_len[i]};
        REQUIRE(gr_lm_hidden(lm, &b, pool, ie[i]) == GR_OK);
    }
    for (int q = 0; q < 4; q++) {
        gr_lm_batch b = {gen[q], NULL, NULL, (int32_t[2]){0, (int32_t)gl[q]}, 1, (int)gl[q]};
        REQUIRE(gr_lm_hidden(lm, &b, pool, qe[q]) == GR_OK);
    }
    for (int q = 0; q < 4; q++)
        for (int i = 0; i < NI; i++) {
            double s = 0.0;
            for (int c = 0; c < 16; c++) s += ((double)qe[q][c] - ie[i][c]) * ((double)qe[q][c] - ie[i][c]);
            CHECK_NEAR(dist[q * NI + i], sqrt(s), 2e-3 * fmax(1.0, sqrt(s)));
        }
    for (int i = 0; i < NI; i++) CHECK(isinf(dist[4 * NI + i]));
    CHECK(dist[0 * NI + 1] < 1e-2);
    CHECK(dist[1 * NI + 3] < 1e-2);
    /* gamma 0: the reproduced item is first with score 0 (d~ = 0) */
    float prior[NI] = {10, 3, 50, 1, 7, 2};
    REQUIRE(gr_ground_score(g, gen, gl, 5, NULL, NULL, 0.0f, sc, valid, &n_bad) == GR_OK);
    CHECK_EQ_INT(n_bad, 3);
    for (int q = 0; q < 2; q++) {
        int want = q == 0 ? 1 : 3;
        for (int i = 0; i < NI; i++)
            if (i != want) CHECK(sc[q * NI + want] > sc[q * NI + i]);
        CHECK_NEAR(sc[q * NI + want], 0.0, 1e-6);
    }
    for (int x = 0; x < 5 * NI; x++) CHECK(sc[x] <= 0.0f && sc[x] >= -1.0f);
    /* ... and stays first at any gamma; the empty generation follows the prior */
    REQUIRE(gr_ground_score(g, gen, gl, 5, prior, NULL, 5.0f, sc, NULL, NULL) == GR_OK);
    for (int i = 0; i < NI; i++)
        if (i != 1) CHECK(sc[1] > sc[i]);
    for (int i = 0; i < NI; i++)
        for (int j = 0; j < NI; j++)
            if (prior[i] > prior[j]) CHECK(sc[4 * NI + i] > sc[4 * NI + j]);
    gr_grounder_free(g);
    gr_lm_free(lm);
}

static void test_ground(void)
{
    ground_pool(GR_POOL_LAST);
    ground_pool(GR_POOL_MEAN);
}

/* ---- (d) the formula by hand ---- */

static void order_of(const float *s, int n, int *ord)
{
    for (int i = 0; i < n; i++) ord[i] = i;
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && s[ord[j]] > s[ord[j - 1]]; j--) { int t = ord[j]; ord[j] = ord[j - 1]; ord[j - 1] = t; }
}

static void test_formula(void)
{
    /* d = 1, 2, 2.2, 3 -> d~ = 0, .5, .6, 1; prior 0, 0, 100, 50 -> p~ = 0, 0, 1, .5 */
    const float d[4] = {1.0f, 2.0f, 2.2f, 3.0f}, prior[4] = {0, 0, 100, 50};
    float s[4];
    int ord[4];
    REQUIRE(gr_ground_adjust(d, 1, 4, prior, NULL, 0.0f, s) == GR_OK);
    CHECK_NEAR(s[0], 0.0, 1e-7);
    CHECK_NEAR(s[1], -0.5, 1e-6);
    CHECK_NEAR(s[2], -0.6, 1e-6);
    CHECK_NEAR(s[3], -1.0, 1e-6);
    order_of(s, 4, ord);
    CHECK(ord[0] == 0 && ord[1] == 1 && ord[2] == 2 && ord[3] == 3);
    REQUIRE(gr_ground_adjust(d, 1, 4, prior, NULL, 1.0f, s) == GR_OK);
    CHECK_NEAR(s[2], -0.3, 1e-6);
    CHECK_NEAR(s[3], -1.0 / 1.5, 1e-6);
    order_of(s, 4, ord);
    CHECK(ord[0] == 0 && ord[1] == 2 && ord[2] == 1 && ord[3] == 3); /* the popular item moved up */
    REQUIRE(gr_ground_adjust(d, 1, 4, prior, NULL, 3.0f, s) == GR_OK);
    CHECK_NEAR(s[2], -0.075, 1e-6);
    CHECK_NEAR(s[3], -1.0 / 3.375, 1e-6);
    order_of(s, 4, ord);
    CHECK(ord[0] == 0 && ord[1] == 2 && ord[2] == 3 && ord[3] == 1);
    /* popularity as count / sum(count) gives the same p~ */
    float pn[4] = {0, 0, 100.0f / 150, 50.0f / 150}, s2[4];
    REQUIRE(gr_ground_adjust(d, 1, 4, pn, NULL, 3.0f, s2) == GR_OK);
    for (int i = 0; i < 4; i++) CHECK_NEAR(s2[i], s[i], 1e-6);
    /* CF rows: per-query min-max; row 1 favours item 1 */
    float d2[8] = {1.0f, 2.0f, 2.2f, 3.0f, 1.0f, 2.0f, 2.2f, 3.0f};
    float cf[8] = {-5, -5, 5, 0, 3, 9, 3, 3}, s3[8];
    REQUIRE(gr_ground_adjust(d2, 2, 4, NULL, cf, 3.0f, s3) == GR_OK);
    for (int i = 0; i < 4; i++) CHECK_NEAR(s3[i], s[i], 1e-6);
    CHECK_NEAR(s3[5], -0.5 / 8.0, 1e-6);
    CHECK_NEAR(s3[6], -0.6, 1e-6);
    float d4[8];
    memcpy(d4, d2, sizeof d4);
    REQUIRE(gr_ground_adjust(d4, 2, 4, NULL, cf, 3.0f, d4) == GR_OK); /* in place */
    for (int i = 0; i < 8; i++) CHECK_NEAR(d4[i], s3[i], 1e-7);
    /* in place, a constant distance row (prior decides), no prior */
    float d3[4] = {2, 2, 2, 2};
    REQUIRE(gr_ground_adjust(d3, 1, 4, prior, NULL, 1.0f, d3) == GR_OK);
    CHECK_NEAR(d3[0], -1.0, 1e-6);
    CHECK_NEAR(d3[2], -0.5, 1e-6);
    CHECK_NEAR(d3[3], -1.0 / 1.5, 1e-6);
    REQUIRE(gr_ground_adjust(d, 1, 4, NULL, NULL, 4.0f, s) == GR_OK);
    CHECK_NEAR(s[1], -0.5, 1e-6);
    /* errors */
    CHECK(gr_ground_adjust(d, 1, 4, prior, cf, 1.0f, s) == GR_ERR);
    CHECK_HAS(gr_error_message(), "not both");
    CHECK(gr_ground_adjust(d, 1, 4, prior, NULL, -1.0f, s) == GR_ERR);
    CHECK_HAS(gr_error_message(), "gamma");
    float pnan[4] = {0, NAN, 1, 2};
    CHECK(gr_ground_adjust(d, 1, 4, pnan, NULL, 1.0f, s) == GR_ERR);
    CHECK_HAS(gr_error_message(), "item 1");
    float cfbad[8] = {0, 0, 0, 0, 0, INFINITY, 0, 0};
    CHECK(gr_ground_adjust(d2, 2, 4, NULL, cfbad, 1.0f, s3) == GR_ERR);
    CHECK_HAS(gr_error_message(), "CF row 1");
}

/* ---- (e) errors ---- */

static void test_errors(void)
{
    gr_lm *lm = make_lm(GR_ARCH_LLAMA);
    REQUIRE(lm);
    const int32_t *ip[NI];
    for (int i = 0; i < NI; i++) ip[i] = items[i];
    CHECK(gr_grounder_init(lm, ip, item_len, 0, GR_POOL_LAST) == NULL);
    CHECK_HAS(gr_error_message(), "n_items");
    int32_t bad[2] = {5, V};
    const int32_t *ib[2] = {items[0], bad};
    int64_t lb[2] = {2, 2};
    CHECK(gr_grounder_init(lm, ib, lb, 2, GR_POOL_LAST) == NULL);
    CHECK_HAS(gr_error_message(), "item 1 token 1");
    lb[1] = 0;
    CHECK(gr_grounder_init(lm, ib, lb, 2, GR_POOL_LAST) == NULL);
    CHECK_HAS(gr_error_message(), "item 1 has 0 tokens");
    lb[1] = MAXT + 1;
    CHECK(gr_grounder_init(lm, ib, lb, 2, GR_POOL_LAST) == NULL);
    CHECK(gr_grounder_init(lm, ip, item_len, NI, (gr_pool)5) == NULL);
    CHECK_HAS(gr_error_message(), "pooling");
    /* duplicate items are fine */
    const int32_t *idup[3] = {items[0], items[0], items[2]};
    int64_t ldup[3] = {2, 2, 3};
    gr_grounder *g = gr_grounder_init(lm, idup, ldup, 3, GR_POOL_LAST);
    REQUIRE(g);
    const int32_t *gen[1] = {bad};
    int64_t gl[1] = {2};
    float sc[3];
    int valid[1] = {-1}, nb = -1;
    CHECK(gr_ground_score(g, gen, gl, 1, NULL, NULL, 0.0f, sc, valid, &nb) == GR_ERR);
    CHECK_HAS(gr_error_message(), "generation 0 token 1");
    gl[0] = MAXT + 1;
    CHECK(gr_ground_score(g, gen, gl, 1, NULL, NULL, 0.0f, sc, valid, &nb) == GR_ERR);
    CHECK(gr_ground_score(g, gen, gl, 1, NULL, NULL, -2.0f, sc, valid, &nb) == GR_ERR);
    gen[0] = items[0];
    gl[0] = 2;
    REQUIRE(gr_ground_score(g, gen, gl, 1, NULL, NULL, 0.0f, sc, valid, &nb) == GR_OK);
    CHECK_EQ_INT(valid[0], 1);
    CHECK_EQ_INT(nb, 0);
    CHECK_NEAR(sc[0], sc[1], 1e-3);
    CHECK(sc[0] > sc[2] && sc[1] > sc[2]);
    gr_grounder_free(g);
    /* generation options and prompts */
    const int32_t *pp[1] = {prompts_data[0]};
    int32_t *ids[1] = {(int32_t *)1};
    int64_t len[1];
    gr_ground_opts o = gr_ground_opts_default();
    CHECK(gr_ground_generate(lm, pp, plens, 1, &o, ids, len) == GR_ERR); /* eos unset */
    CHECK_HAS(gr_error_message(), "eos");
    CHECK(ids[0] == NULL);
    o.eos = 1;
    o.max_new = 0;
    CHECK(gr_ground_generate(lm, pp, plens, 1, &o, ids, len) == GR_ERR);
    o.max_new = 4;
    o.n_beams = 0;
    CHECK(gr_ground_generate(lm, pp, plens, 1, &o, ids, len) == GR_ERR);
    o.n_beams = 1;
    int32_t bp[2] = {2, V + 3};
    const int32_t *bpp[1] = {bp};
    int64_t bl = 2;
    CHECK(gr_ground_generate(lm, bpp, &bl, 1, &o, ids, len) == GR_ERR);
    CHECK_HAS(gr_error_message(), "prompt 0 token 1");
    bl = MAXT;
    CHECK(gr_ground_generate(lm, pp, &bl, 1, &o, ids, len) == GR_ERR);
    bl = 0;
    CHECK(gr_ground_generate(lm, pp, &bl, 1, &o, ids, len) == GR_ERR);
    CHECK(gr_ground_generate(lm, pp, plens, 0, &o, ids, len) == GR_OK);
    gr_lm_free(lm);
}

int main(void)
{
    GR_RUN(test_hidden);
    GR_RUN(test_greedy);
    GR_RUN(test_beam);
    GR_RUN(test_ground);
    GR_RUN(test_formula);
    GR_RUN(test_errors);
    return gr_test_finish();
}
