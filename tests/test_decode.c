/* Incremental decoding (decode.h): the KV-cached forward against the full
 * forward (GPT-2 and Llama configs with grouped-query attention, several
 * slots, chunked prefill, prefix sharing, copy and beam reorder, long chunks
 * crossing the attention block size), the cache's error contracts, the
 * language model's decoding step on a real model (stories260K) against
 * gr_lm_logits, and the sampler (greedy, nucleus, temperature frequencies,
 * determinism). */
#include "gr_test.h"
#include "genrec/decode.h"
#include "genrec/lm.h"
#include "genrec/gemm.h"
#include "genrec/lora.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- a logical sequence: its input rows, replayed through gr_tfm_forward ---- */

#define MAXROWS 400
typedef struct seqrows { int T; float *x; } seqrows;

static gr_rng g_rng;

static void seq_init(seqrows *s, int C) { s->T = 0; s->x = calloc((size_t)MAXROWS * C, sizeof(float)); }
static void seq_free(seqrows *s) { free(s->x); s->x = NULL; }
static void seq_copy(seqrows *d, const seqrows *s, int T, int C)
{
    d->T = T;
    memcpy(d->x, s->x, sizeof(float) * (size_t)T * C);
}
/* append n random rows; returns where they start */
static int seq_grow(seqrows *s, int n, int C)
{
    int at = s->T;
    for (int i = 0; i < n * C; i++) s->x[(size_t)at * C + i] = (float)gr_rng_normal(&g_rng);
    s->T += n;
    return at;
}

/* max |full forward rows [from, T) - got| over the rows */
static double ref_diff(gr_tfm *m, const seqrows *s, int from, const float *got, int C)
{
    float *out = malloc(sizeof(float) * (size_t)s->T * C);
    int32_t *pos = malloc(sizeof(int32_t) * (size_t)s->T);
    for (int i = 0; i < s->T; i++) pos[i] = i;
    int32_t off[2] = {0, s->T};
    double worst = 1e9;
    if (gr_tfm_forward(m, s->x, pos, off, 1, s->T, out, 0, NULL) == GR_OK) {
        worst = 0.0;
        for (int i = from; i < s->T; i++)
            for (int c = 0; c < C; c++) {
                double d = fabs((double)out[(size_t)i * C + c] - got[(size_t)(i - from) * C + c]);
                if (d != d) d = 1e9;
                if (d > worst) worst = d;
            }
    }
    free(out);
    free(pos);
    return worst;
}

/* A batch under construction: for each entry, a slot, the sequence, how
 * many of its last rows are new. */
typedef struct batch { int n; int32_t slots[16]; seqrows *seq[16]; int nnew[16]; } batch;

static void batch_add(batch *b, int slot, seqrows *s, int nnew)
{
    b->slots[b->n] = slot; b->seq[b->n] = s; b->nnew[b->n] = nnew; b->n++;
}

/* Run the batch through the cache and compare with full forwards. */
static double run_batch(gr_tfm *m, gr_kv_cache *c, const batch *b, int C)
{
    int32_t off[17];
    off[0] = 0;
    for (int i = 0; i < b->n; i++) off[i + 1] = off[i] + b->nnew[i];
    int N = off[b->n];
    float *x = malloc(sizeof(float) * (size_t)(N > 0 ? N : 1) * C), *out = malloc(sizeof(float) * (size_t)(N > 0 ? N : 1) * C);
    for (int i = 0; i < b->n; i++)
        memcpy(x + (size_t)off[i] * C, b->seq[i]->x + (size_t)(b->seq[i]->T - b->nnew[i]) * C,
               sizeof(float) * (size_t)b->nnew[i] * C);
    double worst = 0.0;
    if (gr_tfm_forward_cached(m, c, x, b->slots, off, b->n, N, out) != GR_OK) {
        gr_test_fail(__FILE__, __LINE__, "forward_cached: %s", gr_error_message());
        worst = 1e9;
    } else {
        for (int i = 0; i < b->n; i++) {
            if (!b->nnew[i]) continue;
            double d = ref_diff(m, b->seq[i], b->seq[i]->T - b->nnew[i], out + (size_t)off[i] * C, C);
            if (d > worst) worst = d;
            CHECK_EQ_INT(gr_kv_cache_len(c, b->slots[i]), b->seq[i]->T);
        }
    }
    free(x);
    free(out);
    return worst;
}

static gr_tfm *make_model(int llama, int max_T)
{
    gr_tfm_config c;
    memset(&c, 0, sizeof c);
    c.n_layer = 2;
    c.d_model = 16;
    c.n_head = 4;
    c.n_kv_head = llama ? 2 : 4;
    c.d_ff = 24;
    c.max_T = max_T;
    c.norm = llama ? GR_NORM_RMS : GR_NORM_LAYER;
    c.act = llama ? GR_ACT_SWIGLU : GR_ACT_GELU_TANH;
    c.pos = llama ? GR_POS_ROPE : GR_POS_LEARNED;
    c.bias = !llama;
    c.final_norm = 1;
    c.norm_eps = 1e-5f;
    c.rope_theta = 10000.0f;
    gr_tfm *m = gr_tfm_init(&c, 11);
    if (!m) return NULL;
    /* larger weights so attention is far from uniform */
    float *p = gr_tfm_params(m);
    gr_rng r;
    gr_rng_seed(&r, 5);
    for (int64_t i = 0; i < gr_tfm_n_params(m); i++) p[i] += (float)(0.25 * gr_rng_normal(&r));
    return m;
}

#define TOL 2e-5

static void cache_vs_full(int llama)
{
    const int C = 16;
    gr_rng_seed(&g_rng, 100 + llama);
    gr_tfm *m = make_model(llama, 64);
    REQUIRE(m);
    gr_kv_cache *c = gr_kv_cache_init(gr_tfm_get_config(m), 8, 20);
    REQUIRE(c);
    seqrows P, A, B1, B2, B3, B4, B5, tmp;
    seqrows *all[] = {&P, &A, &B1, &B2, &B3, &B4, &B5, &tmp};
    for (int i = 0; i < 8; i++) seq_init(all[i], C);
    double worst = 0.0, d;
    /* 1. chunked prefill of a prompt P (slot 0) batched with another
     *    sequence A (slot 4) */
    batch b = {0};
    seq_grow(&P, 4, C); seq_grow(&A, 6, C);
    batch_add(&b, 0, &P, 4); batch_add(&b, 4, &A, 6);
    d = run_batch(m, c, &b, C); worst = d > worst ? d : worst;
    b.n = 0;
    seq_grow(&P, 3, C);
    batch_add(&b, 0, &P, 3);
    d = run_batch(m, c, &b, C); worst = d > worst ? d : worst;
    /* 2. beams share the prompt: two at full length, one branching at 5 */
    REQUIRE(gr_kv_cache_share_prefix(c, 1, 0, 7) == GR_OK);
    REQUIRE(gr_kv_cache_share_prefix(c, 2, 0, 7) == GR_OK);
    REQUIRE(gr_kv_cache_share_prefix(c, 3, 0, 5) == GR_OK);
    CHECK_EQ_INT(gr_kv_cache_n_readers(c, 0), 3);
    CHECK_EQ_INT(gr_kv_cache_prefix_len(c, 3), 5);
    CHECK_EQ_INT(gr_kv_cache_prefix_slot(c, 3), 0);
    seq_copy(&B1, &P, 7, C); seq_copy(&B2, &P, 7, C); seq_copy(&B3, &P, 5, C);
    /* 3. one step mixing single tokens, a diverging chunk, and A's rest */
    b.n = 0;
    seq_grow(&B1, 1, C); seq_grow(&B2, 1, C); seq_grow(&B3, 3, C); seq_grow(&A, 4, C);
    batch_add(&b, 1, &B1, 1); batch_add(&b, 3, &B3, 3); batch_add(&b, 2, &B2, 1); batch_add(&b, 4, &A, 4);
    d = run_batch(m, c, &b, C); worst = d > worst ? d : worst;
    /* the prompt slot can still grow (rows past the shared ones) */
    b.n = 0;
    seq_grow(&P, 2, C);
    batch_add(&b, 0, &P, 2);
    d = run_batch(m, c, &b, C); worst = d > worst ? d : worst;
    /* 4. two decoding steps for the beams in one batch each */
    for (int step = 0; step < 2; step++) {
        b.n = 0;
        seq_grow(&B1, 1, C); seq_grow(&B2, 1, C); seq_grow(&B3, 1, C);
        batch_add(&b, 2, &B2, 1); batch_add(&b, 1, &B1, 1); batch_add(&b, 3, &B3, 1);
        d = run_batch(m, c, &b, C); worst = d > worst ? d : worst;
    }
    /* 5. beam reorder: new 1 <- old 2, new 2 <- old 2, new 3 <- old 1 */
    int32_t dst[3] = {1, 2, 3}, src[3] = {2, 2, 1};
    REQUIRE(gr_kv_cache_reorder(c, dst, src, 3) == GR_OK);
    seq_copy(&tmp, &B1, B1.T, C);
    seq_copy(&B1, &B2, B2.T, C);
    seq_copy(&B3, &tmp, tmp.T, C);
    CHECK_EQ_INT(gr_kv_cache_n_readers(c, 0), 3);
    CHECK_EQ_INT(gr_kv_cache_prefix_len(c, 3), 7);
    b.n = 0;
    seq_grow(&B1, 1, C); seq_grow(&B2, 2, C); seq_grow(&B3, 1, C);
    batch_add(&b, 1, &B1, 1); batch_add(&b, 2, &B2, 2); batch_add(&b, 3, &B3, 1);
    d = run_batch(m, c, &b, C); worst = d > worst ? d : worst;
    /* 6. copy and share from a slot that has a prefix itself (slot 5 reads
     *    the prompt's rows and gets a copy of B3's own rows up to 8) */
    REQUIRE(gr_kv_cache_copy(c, 6, 3) == GR_OK);
    seq_copy(&tmp, &B3, B3.T, C);
    REQUIRE(gr_kv_cache_share_prefix(c, 5, 3, 8) == GR_OK);
    CHECK_EQ_INT(gr_kv_cache_prefix_slot(c, 5), 0);
    CHECK_EQ_INT(gr_kv_cache_prefix_len(c, 5), 7);
    seq_copy(&B4, &B3, 8, C);
    b.n = 0;
    seq_grow(&B4, 2, C); seq_grow(&tmp, 1, C); seq_grow(&B3, 1, C);
    batch_add(&b, 5, &B4, 2); batch_add(&b, 6, &tmp, 1); batch_add(&b, 3, &B3, 1);
    d = run_batch(m, c, &b, C); worst = d > worst ? d : worst;
    /* 6b. beams of one prompt whose own rows differ in length (0 new rows
     *     for B5, 4 for B1 and B2) in one run: the grouped attention reads
     *     the shared prefix with one GEMM for all three */
    REQUIRE(gr_kv_cache_share_prefix(c, 7, 0, 7) == GR_OK);
    seq_copy(&B5, &P, 7, C);
    b.n = 0;
    seq_grow(&B5, 1, C); seq_grow(&B1, 1, C); seq_grow(&B2, 1, C);
    batch_add(&b, 7, &B5, 1); batch_add(&b, 1, &B1, 1); batch_add(&b, 2, &B2, 1);
    d = run_batch(m, c, &b, C); worst = d > worst ? d : worst;
    /* 7. a slot cleared and reused as an independent root; an empty
     *    sequence in the batch is allowed */
    REQUIRE(gr_kv_cache_clear_slot(c, 6) == GR_OK);
    CHECK_EQ_INT(gr_kv_cache_len(c, 6), 0);
    tmp.T = 0;
    b.n = 0;
    seq_grow(&tmp, 5, C);
    batch_add(&b, 6, &tmp, 5); batch_add(&b, 1, &B1, 0);
    d = run_batch(m, c, &b, C); worst = d > worst ? d : worst;
    printf("  %s: worst |cached - full| = %.2e\n", llama ? "llama (GQA 4/2, RoPE)" : "gpt2 (learned positions)", worst);
    CHECK(worst < TOL);
    CHECK_EQ_INT(gr_kv_cache_n_readers(c, 0), 5); /* slots 1, 2, 3, 5, 7 */
    for (int i = 0; i < 8; i++) seq_free(all[i]);
    gr_kv_cache_free(c);
    gr_tfm_free(m);
}

static void test_cache_gpt2(void) { cache_vs_full(0); }
static void test_cache_llama(void) { cache_vs_full(1); }

/* Chunks longer than the attention's query block, with and without a shared
 * prefix, and the same cache used with several threads or one. */
static void test_long_chunks(void)
{
    const int C = 16;
    for (int it = 0; it < 4; it++) {
        const int llama = it & 1, threads = 1 + (it >> 1);
        gr_threads_set(threads);
        gr_rng_seed(&g_rng, 7 + llama);
        gr_tfm *m = make_model(llama, 400);
        REQUIRE(m);
        gr_kv_cache *c = gr_kv_cache_init(gr_tfm_get_config(m), 3, 200);
        REQUIRE(c);
        seqrows P, Q;
        seq_init(&P, C); seq_init(&Q, C);
        batch b = {0};
        seq_grow(&P, 190, C);
        batch_add(&b, 0, &P, 190);
        double worst = run_batch(m, c, &b, C);
        REQUIRE(gr_kv_cache_share_prefix(c, 1, 0, 150) == GR_OK);
        seq_copy(&Q, &P, 150, C);
        b.n = 0;
        seq_grow(&Q, 170, C);
        batch_add(&b, 1, &Q, 170);
        double d = run_batch(m, c, &b, C);
        worst = d > worst ? d : worst;
        printf("  %s, %d thread%s: long chunks (190, then 150 shared + 170): worst %.2e\n", llama ? "llama" : "gpt2",
               threads, threads > 1 ? "s" : "", worst);
        CHECK(worst < TOL);
        seq_free(&P); seq_free(&Q);
        gr_kv_cache_free(c);
        gr_tfm_free(m);
    }
    gr_threads_set(0);
}

/* With LoRA adapters attached (non-zero B), the cached forward applies them
 * like gr_tfm_forward does. */
static void test_cache_lora(void)
{
    const int C = 16;
    for (int llama = 0; llama < 2; llama++) {
        gr_rng_seed(&g_rng, 31 + llama);
        gr_tfm *m = make_model(llama, 64);
        REQUIRE(m);
        gr_lora_config lc = {.rank = 2, .alpha = 4.0f, .targets = GR_LORA_ALL, .seed = 3};
        gr_lora *lo = gr_lora_attach(m, &lc);
        REQUIRE(lo);
        float *lp = gr_lora_params(lo);
        for (int64_t i = 0; i < gr_lora_n_params(lo); i++) lp[i] = (float)(0.3 * gr_rng_normal(&g_rng));
        gr_kv_cache *c = gr_kv_cache_init(gr_tfm_get_config(m), 3, 16);
        REQUIRE(c);
        seqrows P, Q;
        seq_init(&P, C); seq_init(&Q, C);
        batch b = {0};
        seq_grow(&P, 6, C);
        batch_add(&b, 0, &P, 6);
        double worst = run_batch(m, c, &b, C);
        REQUIRE(gr_kv_cache_share_prefix(c, 1, 0, 6) == GR_OK);
        seq_copy(&Q, &P, 6, C);
        for (int step = 0; step < 3; step++) {
            b.n = 0;
            seq_grow(&P, 1, C); seq_grow(&Q, 1 + step, C);
            batch_add(&b, 0, &P, 1); batch_add(&b, 1, &Q, 1 + step);
            double d = run_batch(m, c, &b, C);
            worst = d > worst ? d : worst;
        }
        /* the whole of P at once into slot 2; then, without the adapters,
         * the full forward differs: they mattered */
        b.n = 0;
        batch_add(&b, 2, &P, P.T);
        double d = run_batch(m, c, &b, C);
        worst = d > worst ? d : worst;
        float *out = malloc(sizeof(float) * (size_t)P.T * C);
        int32_t off[2] = {0, P.T}, s0 = 0;
        gr_kv_cache_clear(c);
        REQUIRE(gr_tfm_forward_cached(m, c, P.x, &s0, off, 1, P.T, out) == GR_OK);
        gr_lora_detach(m);
        CHECK(ref_diff(m, &P, 0, out, C) > 1e-2);
        printf("  %s + LoRA: worst |cached - full| = %.2e\n", llama ? "llama" : "gpt2", worst);
        CHECK(worst < TOL);
        free(out);
        seq_free(&P); seq_free(&Q);
        gr_kv_cache_free(c);
        gr_tfm_free(m);
    }
}

static void test_cache_errors(void)
{
    gr_tfm *m = make_model(1, 12);
    REQUIRE(m);
    const gr_tfm_config *cfg = gr_tfm_get_config(m);
    CHECK(gr_kv_cache_init(cfg, 0, 4) == NULL);
    CHECK_HAS(gr_error_message(), "n_slots");
    CHECK(gr_kv_cache_init(cfg, 2, 0) == NULL);
    CHECK(gr_kv_cache_init(NULL, 2, 4) == NULL);
    gr_kv_cache *c = gr_kv_cache_init(cfg, 3, 8);
    REQUIRE(c);
    float x[16 * 10], out[16 * 10];
    for (int i = 0; i < 160; i++) x[i] = (float)((i * 37 % 11) - 5) * 0.1f;
    int32_t slots[2] = {0, 0}, off[3] = {0, 2, 3};
    CHECK(gr_tfm_forward_cached(m, c, x, slots, off, 2, 3, out) == GR_ERR);
    CHECK_HAS(gr_error_message(), "twice");
    slots[1] = 3;
    CHECK(gr_tfm_forward_cached(m, c, x, slots, off, 2, 3, out) == GR_ERR);
    CHECK_HAS(gr_error_message(), "outside");
    int32_t bad_off[3] = {0, 2, 1};
    slots[1] = 1;
    CHECK(gr_tfm_forward_cached(m, c, x, slots, bad_off, 2, 3, out) == GR_ERR);
    CHECK_EQ_INT(gr_kv_cache_len(c, 0), 0);
    CHECK_EQ_INT(gr_kv_cache_len(c, 1), 0);
    /* own capacity 8 */
    int32_t s0 = 0, o9[2] = {0, 9}, o8[2] = {0, 8}, o1[2] = {0, 1};
    CHECK(gr_tfm_forward_cached(m, c, x, &s0, o9, 1, 9, out) == GR_ERR);
    CHECK_HAS(gr_error_message(), "full");
    REQUIRE(gr_tfm_forward_cached(m, c, x, &s0, o8, 1, 8, out) == GR_OK);
    CHECK_EQ_INT(gr_kv_cache_len(c, 0), 8);
    /* a beam reading 8 rows can add 4 before the model's max_T (12) */
    REQUIRE(gr_kv_cache_share_prefix(c, 1, 0, 8) == GR_OK);
    int32_t s1 = 1, o4[2] = {0, 4}, o5[2] = {0, 5};
    CHECK(gr_tfm_forward_cached(m, c, x, &s1, o5, 1, 5, out) == GR_ERR);
    CHECK_HAS(gr_error_message(), "max_T");
    CHECK(gr_tfm_forward_cached(m, c, x, &s1, o4, 1, 4, out) == GR_OK);
    CHECK(gr_tfm_forward_cached(m, c, x, &s1, o1, 1, 1, out) == GR_ERR);
    /* referenced slots are protected */
    CHECK(gr_kv_cache_clear_slot(c, 0) == GR_ERR);
    CHECK_HAS(gr_error_message(), "read");
    CHECK(gr_kv_cache_copy(c, 0, 2) == GR_ERR);
    CHECK(gr_kv_cache_share_prefix(c, 0, 1, 3) == GR_ERR);
    CHECK(gr_kv_cache_share_prefix(c, 2, 0, 9) == GR_ERR);
    CHECK(gr_kv_cache_share_prefix(c, 2, 2, 0) == GR_ERR);
    int32_t d2[2] = {2, 2}, sr[2] = {0, 1};
    CHECK(gr_kv_cache_reorder(c, d2, sr, 2) == GR_ERR);
    CHECK_HAS(gr_error_message(), "twice");
    CHECK_EQ_INT(gr_kv_cache_len(c, 2), 0);
    CHECK(gr_kv_cache_copy(c, 2, 1) == GR_OK);
    CHECK_EQ_INT(gr_kv_cache_len(c, 2), 12);
    CHECK_EQ_INT(gr_kv_cache_n_readers(c, 0), 2);
    CHECK(gr_kv_cache_clear_slot(c, 1) == GR_OK);
    CHECK(gr_kv_cache_clear_slot(c, 2) == GR_OK);
    CHECK(gr_kv_cache_clear_slot(c, 0) == GR_OK);
    CHECK(gr_kv_cache_clear_slot(c, 5) == GR_ERR);
    CHECK_EQ_INT(gr_kv_cache_len(c, 5), -1);
    /* a cache for another configuration */
    gr_tfm_config other = *cfg;
    other.n_layer = 3;
    gr_kv_cache *c2 = gr_kv_cache_init(&other, 1, 4);
    REQUIRE(c2);
    CHECK(gr_tfm_forward_cached(m, c2, x, &s0, o1, 1, 1, out) == GR_ERR);
    CHECK_HAS(gr_error_message(), "another configuration");
    gr_kv_cache_free(c2);
    gr_kv_cache_free(c);
    gr_kv_cache_free(NULL);
    gr_tfm_free(m);
}

/* ---- the language model's decoding step on stories260K -------------------------- */

static void test_lm_decode_real(void)
{
    const char *bin = gr_test_shared("models/stories260K/stories260K.bin");
    const char *tk = gr_test_shared("models/stories260K/tok512.bin");
    if (!bin || !tk) { gr_test_skip("../shared/models/stories260K absent"); return; }
    gr_lm *lm = gr_lm_load(bin, tk);
    REQUIRE(lm);
    const int V = gr_lm_vocab(lm);
    const char *text = "Once upon a time";
    int64_t np;
    int32_t *pt = gr_tokenizer_encode(gr_lm_tokenizer(lm), text, strlen(text), 1, &np);
    REQUIRE(pt && np == 5);
    gr_kv_cache *c = gr_lm_kv_cache_init(lm, 4, 16);
    REQUIRE(c);
    /* prefill the prompt into slot 0 (no logits), then 3 beams */
    int32_t s0 = 0, off1[2] = {0, (int32_t)np - 1};
    REQUIRE(gr_lm_decode_step(lm, c, pt, &s0, off1, 1, (int)np - 1, NULL) == GR_OK);
    for (int b = 1; b <= 3; b++) REQUIRE(gr_kv_cache_share_prefix(c, b, 0, (int)np - 1) == GR_OK);
    int32_t seqs[3][16];
    int len = (int)np;
    for (int b = 0; b < 3; b++) memcpy(seqs[b], pt, sizeof(int32_t) * (size_t)np);
    float *lg = malloc(sizeof(float) * 3 * V), *ref = malloc(sizeof(float) * 3 * V);
    int32_t *all = malloc(sizeof(int32_t) * 3 * 16), offs[4];
    double worst = 0.0;
    int first = -1;
    for (int step = 0; step < 6; step++, len++) {
        int32_t toks[3], slots[3] = {1, 2, 3}, off[4] = {0, 1, 2, 3};
        for (int b = 0; b < 3; b++) toks[b] = seqs[b][len - 1];
        REQUIRE(gr_lm_decode_step(lm, c, toks, slots, off, 3, 3, lg) == GR_OK);
        /* full recompute of the three sequences */
        for (int b = 0; b < 3; b++) { memcpy(all + b * len, seqs[b], sizeof(int32_t) * (size_t)len); offs[b] = b * len; }
        offs[3] = 3 * len;
        gr_lm_batch bt = {all, NULL, NULL, offs, 3, 3 * len};
        REQUIRE(gr_lm_logits(lm, &bt, NULL, 3, ref) == GR_OK);
        for (int i = 0; i < 3 * V; i++) {
            double d = fabs((double)lg[i] - ref[i]);
            if (d > worst) worst = d;
        }
        /* beams take the 1st, 2nd, 3rd best token at the first step, then greedy */
        for (int b = 0; b < 3; b++) {
            float *z = lg + (size_t)b * V;
            int32_t t = gr_argmax(z, V);
            if (step == 0) {
                if (b == 0) first = t;
                for (int r = 0; r < b; r++) { z[t] = -INFINITY; t = gr_argmax(z, V); }
            }
            seqs[b][len] = t;
        }
    }
    printf("  stories260K: 3 beams sharing the prompt, 6 steps: worst |cached - full| logit %.2e\n", worst);
    CHECK(worst < 1e-4);
    size_t pl;
    const char *piece = gr_tokenizer_piece(gr_lm_tokenizer(lm), first, &pl);
    CHECK(piece && pl == 1 && piece[0] == ','); /* the published 96.9 % */
    free(lg); free(ref); free(all);
    gr_free(pt);
    gr_kv_cache_free(c);
    /* errors leave the cache unchanged */
    c = gr_lm_kv_cache_init(lm, 1, 4);
    REQUIRE(c);
    int32_t badtok = V, off[2] = {0, 1}, empty[2] = {0, 0};
    float z[1024];
    CHECK(gr_lm_decode_step(lm, c, &badtok, &s0, off, 1, 1, z) == GR_ERR);
    CHECK_HAS(gr_error_message(), "vocabulary");
    CHECK(gr_lm_decode_step(lm, c, &badtok, &s0, empty, 1, 0, z) == GR_ERR);
    CHECK(gr_lm_decode_step(lm, c, &badtok, &s0, empty, 1, 0, NULL) == GR_OK);
    CHECK_EQ_INT(gr_kv_cache_len(c, 0), 0);
    gr_kv_cache_free(c);
    gr_lm_free(lm);
}

/* ---- sampler --------------------------------------------------------------------- */

static void test_argmax_greedy(void)
{
    float x[6] = {0.5f, 2.0f, -1.0f, 2.0f, 1.0f, 2.0f};
    CHECK_EQ_INT(gr_argmax(x, 6), 1);
    x[0] = NAN;
    CHECK_EQ_INT(gr_argmax(x, 6), 1);
    float y[3] = {-INFINITY, -INFINITY, -INFINITY};
    CHECK_EQ_INT(gr_argmax(y, 3), 0);
    gr_sampler s;
    REQUIRE(gr_sampler_init(&s, 6, 0.0f, 0.9f, 1) == GR_OK);
    x[0] = 0.5f;
    for (int i = 0; i < 5; i++) CHECK_EQ_INT(gr_sampler_sample(&s, x), 1);
    gr_sampler_free(&s);
    CHECK(gr_sampler_init(&s, 6, -1.0f, 0.9f, 1) == GR_ERR);
    CHECK_HAS(gr_error_message(), "temperature");
    CHECK(gr_sampler_init(&s, 6, 1.0f, 0.0f, 1) == GR_ERR);
    CHECK(gr_sampler_init(&s, 6, 1.0f, 1.5f, 1) == GR_ERR);
    CHECK(gr_sampler_init(&s, 0, 1.0f, 0.5f, 1) == GR_ERR);
    gr_sampler_free(&s);
}

static void logits_of(float *z, const double *p, int n)
{
    for (int i = 0; i < n; i++) z[i] = (float)log(p[i]);
}

static void test_nucleus(void)
{
    /* probabilities 0.05 0.4 0.25 0.15 0.1 0.05 (ids 0 and 5 tie) */
    const double p[6] = {0.05, 0.4, 0.25, 0.15, 0.1, 0.05};
    float z[6];
    logits_of(z, p, 6);
    gr_sampler s;
    REQUIRE(gr_sampler_init(&s, 6, 1.0f, 0.6f, 3) == GR_OK);
    const int32_t *ids;
    const float *pr;
    /* cum: 0.4, 0.65 > 0.6 -> {1, 2} */
    int n = gr_sampler_nucleus(&s, z, &ids, &pr);
    REQUIRE(n == 2);
    CHECK_EQ_INT(ids[0], 1);
    CHECK_EQ_INT(ids[1], 2);
    CHECK_NEAR(pr[0], 0.4 / 0.65, 1e-6);
    CHECK_NEAR(pr[1], 0.25 / 0.65, 1e-6);
    s.top_p = 0.85f; /* 0.4 .25 .15 = 0.8, + .1 = 0.9 > 0.85 -> 4 */
    n = gr_sampler_nucleus(&s, z, &ids, &pr);
    CHECK_EQ_INT(n, 4);
    s.top_p = 0.97f; /* needs one of the two 0.05 tokens: the lower id */
    n = gr_sampler_nucleus(&s, z, &ids, &pr);
    REQUIRE(n == 6 || n == 5);
    CHECK_EQ_INT(n, 6); /* 0.95 + 0.05 (id 0) = 1.0 > 0.97 at the 6th */
    CHECK_EQ_INT(ids[4], 0);
    CHECK_EQ_INT(ids[5], 5);
    s.top_p = 0.93f;
    n = gr_sampler_nucleus(&s, z, &ids, &pr);
    CHECK_EQ_INT(n, 5);
    CHECK_EQ_INT(ids[4], 0);
    /* temperature sharpens before the cut: T = 0.5 squares the odds */
    s.temperature = 0.5f;
    s.top_p = 0.7f;
    n = gr_sampler_nucleus(&s, z, &ids, &pr);
    CHECK_EQ_INT(n, 2); /* .16/.26 = .615, then + .0625/.26 = .856 */
    s.top_p = 0.6f;
    n = gr_sampler_nucleus(&s, z, &ids, &pr);
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT(ids[0], 1);
    /* sampling with top-p: only nucleus tokens, in the renormalised ratio */
    s.temperature = 1.0f;
    s.top_p = 0.6f;
    int cnt[6] = {0}, draws = 40000;
    for (int i = 0; i < draws; i++) cnt[gr_sampler_sample(&s, z)]++;
    CHECK(cnt[0] + cnt[3] + cnt[4] + cnt[5] == 0);
    double f1 = (double)cnt[1] / draws, e1 = 0.4 / 0.65, sd = sqrt(e1 * (1 - e1) / draws);
    CHECK(fabs(f1 - e1) < 5 * sd);
    gr_sampler_free(&s);
}

static void test_temperature_frequencies(void)
{
    const int V = 8, draws = 200000;
    float z[8] = {1.0f, 0.2f, -0.5f, 2.0f, 0.0f, -3.0f, 1.5f, 0.7f};
    const float temps[3] = {1.0f, 0.7f, 2.0f};
    for (int t = 0; t < 3; t++) {
        for (int nuc = 0; nuc < 2; nuc++) {
            /* top_p 1 (plain multinomial) and 0.999999 (the sorted path, nothing cut) */
            gr_sampler s;
            REQUIRE(gr_sampler_init(&s, V, temps[t], nuc ? 0.9999999f : 1.0f, 77 + t) == GR_OK);
            double e[8], sum = 0.0;
            for (int i = 0; i < V; i++) sum += e[i] = exp((double)z[i] / temps[t]);
            int cnt[8] = {0};
            for (int i = 0; i < draws; i++) cnt[gr_sampler_sample(&s, z)]++;
            double worst = 0.0;
            for (int i = 0; i < V; i++) {
                double p = e[i] / sum, f = (double)cnt[i] / draws, sd = sqrt(p * (1 - p) / draws);
                double zsc = fabs(f - p) / sd;
                if (zsc > worst) worst = zsc;
            }
            if (!(worst < 5.0))
                gr_test_fail(__FILE__, __LINE__, "T=%g top_p path %d: frequencies off softmax by %.1f sigma",
                             (double)temps[t], nuc, worst);
            gr_sampler_free(&s);
        }
    }
}

static void test_determinism(void)
{
    float z[50];
    for (int i = 0; i < 50; i++) z[i] = (float)sin(i * 1.3) * 2.0f;
    int32_t a[200], b[200], c[200];
    gr_sampler s;
    for (int run = 0; run < 3; run++) {
        REQUIRE(gr_sampler_init(&s, 50, 0.9f, 0.9f, run == 2 ? 43 : 42) == GR_OK);
        int32_t *o = run == 0 ? a : run == 1 ? b : c;
        for (int i = 0; i < 200; i++) o[i] = gr_sampler_sample(&s, z);
        gr_sampler_free(&s);
    }
    CHECK(!memcmp(a, b, sizeof a));
    CHECK(memcmp(a, c, sizeof a) != 0);
}

/* Largest |a - b| / (largest |b| + tiny) over n values. */
static double rel_diff(const float *a, const float *b, size_t n)
{
    double md = 0.0, mb = 1e-30;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= md)) md = isnan(d) ? INFINITY : d;
        if (fabs(b[i]) > mb) mb = fabs(b[i]);
    }
    return md / mb;
}

/* Prefill 9 tokens into slot 0, then (a) 3 single-token steps of that slot
 * (the dot-product paths), (b) one step of 6 sequences sharing its prefix
 * (the GEMM paths); logits of every call concatenated into out. */
static void bf16_run(gr_lm *lm, gr_kv_cache *c, float *out, int V)
{
    int32_t prompt[9] = {1, 5, 9, 2, 7, 7, 3, 11, 4}, off[7] = {0, 9}, slot[6] = {0};
    REQUIRE(gr_lm_decode_step(lm, c, prompt, slot, off, 1, 9, out) == GR_OK);
    out += V;
    for (int k = 0; k < 3; k++, out += V) {
        int32_t t = 6 + k, o1[2] = {0, 1};
        REQUIRE(gr_lm_decode_step(lm, c, &t, slot, o1, 1, 1, out) == GR_OK);
    }
    int32_t toks[6], slots[6];
    for (int b = 0; b < 6; b++) {
        REQUIRE(gr_kv_cache_share_prefix(c, 1 + b, 0, 12) == GR_OK);
        toks[b] = 10 + b;
        slots[b] = 1 + b;
        off[b + 1] = b + 1;
    }
    REQUIRE(gr_lm_decode_step(lm, c, toks, slots, off, 6, 6, out) == GR_OK);
}

/* bf16 decoding weights: with weights that are already bf16 values the bf16
 * copy gives the fp32 logits up to summation order; with ordinary weights it
 * differs by bf16 rounding only (and does differ: the copy is read);
 * dropping the copy restores the fp32 results exactly. */
static void test_bf16_weights(void)
{
    const int V = 40, NOUT = 10;
    gr_tfm_config cfg;
    gr_lm_config_preset(&cfg, GR_ARCH_LLAMA, 2, 64, 4, 2, 96, 32, V);
    gr_lm *lm = gr_lm_init(GR_ARCH_LLAMA, &cfg, 7);
    REQUIRE(lm);
    gr_tfm *m = gr_lm_tfm(lm);
    float *ref = malloc(sizeof(float) * NOUT * V), *got = malloc(sizeof(float) * NOUT * V);
    REQUIRE(ref && got);
    gr_kv_cache *c = gr_lm_kv_cache_init(lm, 8, 32);
    REQUIRE(c);
    CHECK(gr_kv_cache_bf16_head(c, m) == NULL);
    /* ordinary weights: fp32 reference, then bf16 */
    bf16_run(lm, c, ref, V);
    gr_kv_cache_clear(c);
    REQUIRE(gr_kv_cache_set_bf16_weights(c, m) == GR_OK);
    CHECK(gr_kv_cache_bf16_head(c, m) != NULL);
    bf16_run(lm, c, got, V);
    double d = rel_diff(got, ref, (size_t)NOUT * V);
    printf("  ordinary weights: bf16 vs fp32 logits rel diff %.2e\n", d);
    CHECK(d > 1e-6 && d < 3e-2); /* the copy is used, and it is close */
    gr_kv_cache_drop_weights(c);
    CHECK(gr_kv_cache_bf16_head(c, m) == NULL);
    gr_kv_cache_clear(c);
    bf16_run(lm, c, got, V);
    CHECK(memcmp(got, ref, sizeof(float) * NOUT * V) == 0);
    /* weights rounded to bf16 values: the copy holds exactly them */
    float *p = gr_tfm_params(m);
    for (int64_t i = 0; i < gr_tfm_n_params(m); i++) p[i] = gr_bf16_to_f32(gr_f32_to_bf16(p[i]));
    gr_kv_cache_clear(c);
    bf16_run(lm, c, ref, V);
    gr_kv_cache_clear(c);
    REQUIRE(gr_kv_cache_set_bf16_weights(c, m) == GR_OK);
    bf16_run(lm, c, got, V);
    double d0 = rel_diff(got, ref, V), da = rel_diff(got, ref, (size_t)NOUT * V);
    printf("  bf16-valued weights: prefill logits rel diff %.2e, all %.2e\n", d0, da);
    CHECK(d0 < 1e-6);
    CHECK(da < 1e-5);
    /* a cache of another configuration is refused */
    gr_tfm_config c2 = cfg;
    c2.n_layer = 1;
    gr_kv_cache *other = gr_kv_cache_init(&c2, 2, 8);
    REQUIRE(other);
    CHECK(gr_kv_cache_set_bf16_weights(other, m) == GR_ERR);
    gr_kv_cache_free(other);
    gr_kv_cache_free(c);
    gr_lm_free(lm);
    free(ref);
    free(got);

    /* a weight copy holds at most 256 layers: a deeper model is refused with
     * a message, and decodes on without a copy */
    gr_tfm_config deep;
    gr_lm_config_preset(&deep, GR_ARCH_LLAMA, 257, 8, 2, 1, 16, 8, 16);
    gr_lm *dl = gr_lm_init(GR_ARCH_LLAMA, &deep, 3);
    REQUIRE(dl);
    gr_kv_cache *dc = gr_lm_kv_cache_init(dl, 1, 8);
    REQUIRE(dc);
    CHECK(gr_kv_cache_set_bf16_weights(dc, gr_lm_tfm(dl)) == GR_ERR);
    CHECK_HAS(gr_error_message(), "257 layers");
    CHECK(gr_kv_cache_set_packed_weights(dc, gr_lm_tfm(dl)) == GR_ERR);
    CHECK(gr_kv_cache_bf16_head(dc, gr_lm_tfm(dl)) == NULL);
    gr_kv_cache_free(dc);
    gr_lm_free(dl);
}

/* Packed fp32 decoding weights: the same logits, bit for bit (AVX2: the
 * same kernel reads the same panels), for the prefill, single steps and a
 * batch of 6; the packed copy is dropped when bf16 is set. */
static void test_packed_weights(void)
{
    const int V = 40, NOUT = 10;
    gr_tfm_config cfg;
    gr_lm_config_preset(&cfg, GR_ARCH_GPT2, 2, 64, 4, 0, 96, 32, V); /* biases: the packed GEMM adds them */
    gr_lm *lm = gr_lm_init(GR_ARCH_GPT2, &cfg, 3);
    REQUIRE(lm);
    gr_tfm *m = gr_lm_tfm(lm);
    float *ref = malloc(sizeof(float) * NOUT * V), *got = malloc(sizeof(float) * NOUT * V);
    REQUIRE(ref && got);
    float *b = gr_tfm_param(m, "blk.0.ffn_up.bias");
    REQUIRE(b);
    for (int i = 0; i < 96; i++) b[i] = 0.01f * (float)(i % 7); /* nonzero biases */
    gr_kv_cache *c = gr_lm_kv_cache_init(lm, 8, 32);
    REQUIRE(c);
    bf16_run(lm, c, ref, V);
    gr_kv_cache_clear(c);
    REQUIRE(gr_kv_cache_set_packed_weights(c, m) == GR_OK);
    CHECK(gr_kv_cache_packed_head(c, m) != NULL);
    bf16_run(lm, c, got, V);
    double d = rel_diff(got, ref, (size_t)NOUT * V);
    printf("  packed weights vs fp32: rel diff %.2e\n", d);
    if (gr_gemm_have_avx2()) CHECK(memcmp(got, ref, sizeof(float) * NOUT * V) == 0);
    CHECK(d < 1e-6);
    REQUIRE(gr_kv_cache_set_bf16_weights(c, m) == GR_OK);
    CHECK(gr_kv_cache_packed_head(c, m) == NULL);
    CHECK(gr_kv_cache_bf16_head(c, m) != NULL);
    gr_kv_cache_free(c);
    gr_lm_free(lm);
    free(ref);
    free(got);
}

int main(void)
{
    GR_RUN(test_cache_gpt2);
    GR_RUN(test_cache_llama);
    GR_RUN(test_long_chunks);
    GR_RUN(test_cache_lora);
    GR_RUN(test_cache_errors);
    GR_RUN(test_lm_decode_real);
    GR_RUN(test_argmax_greedy);
    GR_RUN(test_nucleus);
    GR_RUN(test_temperature_frequencies);
    GR_RUN(test_determinism);
    GR_RUN(test_bf16_weights);
    GR_RUN(test_packed_weights);
    return gr_test_finish();
}
