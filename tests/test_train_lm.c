/* Language-model training: GGUF save/load round trip, the generic trainer
 * (schedule, accumulation, clipping, bit-identical resume, corrupt
 * checkpoints), text data and batches, and `genrec train-lm` end to end. */
#include "gr_test.h"

#include "genrec/gguf.h"
#include "genrec/lm.h"
#include "genrec/lm_io.h"
#include "genrec/lm_train.h"
#include "genrec/rng.h"
#include "genrec/train.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* Patterned sentences: "<name> <verb> <object> and then <name> <verb> <object> again."
 * in paragraphs of 5 lines. */
static char *pattern_text(int n_sent, uint64_t seed, size_t *len)
{
    static const char *names[] = {"alice", "bob", "carol", "dave", "erin", "frank"};
    static const char *verbs[] = {"likes", "buys", "watches", "reads", "rates"};
    static const char *objs[] = {"the red book", "a blue movie", "some green tea", "the old song", "a new game"};
    gr_rng r;
    gr_rng_seed(&r, seed);
    size_t cap = (size_t)n_sent * 96 + 16, n = 0;
    char *s = malloc(cap);
    for (int i = 0; i < n_sent; i++) {
        const char *a = names[gr_rng_below(&r, 6)], *v = verbs[gr_rng_below(&r, 5)], *o = objs[gr_rng_below(&r, 5)];
        n += (size_t)snprintf(s + n, cap - n, "%s %s %s and then %s %s %s again.\n%s", a, v, o, a, v, o,
                              i % 5 == 4 ? "\n" : "");
    }
    *len = n;
    return s;
}

static gr_lm *small_lm(gr_arch arch, int tied, gr_tokenizer *tok, int V, int T, float dropout, uint64_t seed)
{
    gr_tfm_config c;
    int llama = arch == GR_ARCH_LLAMA;
    gr_lm_config_preset(&c, arch, 2, 32, 4, llama ? 2 : 4, llama ? 64 : 128, T, V);
    c.tied = tied;
    c.dropout = dropout;
    gr_lm *lm = gr_lm_init(arch, &c, seed);
    if (lm && tok && gr_lm_set_tokenizer(lm, tok) != GR_OK) { gr_lm_free(lm); return NULL; }
    return lm;
}

/* ---- save / load ----------------------------------------------------------------------- */

static void roundtrip(gr_arch arch, int tied)
{
    size_t len;
    char *text = pattern_text(200, 1, &len);
    gr_tokenizer *tok = gr_lm_train_tokenizer(text, len, 300);
    REQUIRE(tok);
    int V = gr_tokenizer_n_vocab(tok) + 3; /* a model vocabulary larger than the tokenizer's is fine */
    gr_lm *lm = small_lm(arch, tied, tok, V, 16, 0.0f, 7);
    REQUIRE(lm);
    gr_tfm *m = gr_lm_tfm(lm);
    int64_t n = gr_tfm_n_params(m);
    float *p = gr_tfm_params(m);
    gr_rng r;
    gr_rng_seed(&r, 3);
    for (int64_t i = 0; i < n; i++) p[i] += (float)gr_rng_normal(&r) * 0.1f; /* norms and biases non-trivial */
    const char *path = gr_test_path(arch == GR_ARCH_LLAMA ? "rt_llama.gguf" : "rt_gpt2.gguf");
    const char *kv[2] = {"train.lr=0.001", "note=hello"};
    gr_params meta = {kv, 2};
    gr_lm_save_opts so = {GR_GGML_F32, "test model", 123, &meta};
    REQUIRE(gr_lm_save(lm, path, &so) == GR_OK);

    gr_lm *back = gr_lm_load(path, NULL);
    REQUIRE(back);
    const gr_tfm_config *a = gr_lm_config(lm), *b = gr_lm_config(back);
    CHECK_EQ_INT(gr_lm_arch(back), arch);
    CHECK_EQ_INT(b->n_layer, a->n_layer);
    CHECK_EQ_INT(b->d_model, a->d_model);
    CHECK_EQ_INT(b->n_head, a->n_head);
    CHECK_EQ_INT(b->n_kv_head, a->n_kv_head);
    CHECK_EQ_INT(b->d_ff, a->d_ff);
    CHECK_EQ_INT(b->max_T, a->max_T);
    CHECK_EQ_INT(b->vocab, a->vocab);
    CHECK_EQ_INT(b->tied, a->tied);
    CHECK(b->norm_eps == a->norm_eps);
    CHECK(b->rope_theta == a->rope_theta);
    REQUIRE(gr_tfm_n_params(gr_lm_tfm(back)) == n);
    CHECK(memcmp(gr_tfm_params(gr_lm_tfm(back)), p, sizeof(float) * (size_t)n) == 0);
    REQUIRE(gr_lm_tokenizer(back));
    CHECK_EQ_INT(gr_tokenizer_n_vocab(gr_lm_tokenizer(back)), gr_tokenizer_n_vocab(tok));
    CHECK_EQ_INT(gr_tokenizer_eos(gr_lm_tokenizer(back)), gr_tokenizer_eos(tok));
    int64_t n1, n2;
    int32_t *i1 = gr_tokenizer_encode(tok, text, 300, 0, &n1), *i2 = gr_tokenizer_encode(gr_lm_tokenizer(back), text, 300, 0, &n2);
    REQUIRE(i1 && i2);
    CHECK(n1 == n2 && !memcmp(i1, i2, sizeof(int32_t) * (size_t)n1));
    gr_free(i1);
    gr_free(i2);

    /* the keys llama.cpp reads, and genrec's */
    gr_gguf *g = gr_gguf_open(path);
    REQUIRE(g);
    const char *s;
    REQUIRE(gr_gguf_get_str(g, "general.architecture", &s, NULL) == GR_OK);
    CHECK_STR(s, arch == GR_ARCH_LLAMA ? "llama" : "gpt2");
    int64_t v;
    char key[96];
    snprintf(key, sizeof key, "%s.block_count", s);
    CHECK(gr_gguf_get_int(g, key, &v) == GR_OK && v == 2);
    snprintf(key, sizeof key, "%s.attention.head_count_kv", s);
    CHECK(gr_gguf_get_int(g, key, &v) == GR_OK && v == a->n_kv_head);
    CHECK(gr_gguf_get_int(g, "genrec.step", &v) == GR_OK && v == 123);
    CHECK(gr_gguf_get_str(g, "genrec.train.lr", &s, NULL) == GR_OK && !strcmp(s, "0.001"));
    CHECK(gr_gguf_get_str(g, "general.name", &s, NULL) == GR_OK && !strcmp(s, "test model"));
    CHECK((gr_gguf_find_tensor(g, "output.weight") != NULL) == !tied);
    CHECK((gr_gguf_find_tensor(g, "position_embd.weight") != NULL) == (arch == GR_ARCH_GPT2));
    const gr_gguf_tensor *q = gr_gguf_find_tensor(g, "blk.1.attn_k.weight");
    CHECK(q && q->ne[0] == 32 && q->ne[1] == a->n_kv_head * 8);
    /* the description alone rebuilds the same architecture */
    gr_lm *meta_lm = gr_lm_from_gguf_meta(g, path);
    REQUIRE(meta_lm);
    CHECK_EQ_INT(gr_tfm_n_params(gr_lm_tfm(meta_lm)), n);
    CHECK(gr_lm_tokenizer(meta_lm) != NULL);
    gr_lm_free(meta_lm);
    gr_gguf_close(g);

    /* F16 / BF16: matrices converted, norms exact */
    for (int k = 0; k < 2; k++) {
        gr_lm_save_opts o16 = {k ? GR_GGML_BF16 : GR_GGML_F16, NULL, -1, NULL};
        const char *p16 = gr_test_path(k ? "rt_bf16.gguf" : "rt_f16.gguf");
        REQUIRE(gr_lm_save(lm, p16, &o16) == GR_OK);
        gr_lm *h = gr_lm_load(p16, NULL);
        REQUIRE(h);
        const float *ph = gr_tfm_params(gr_lm_tfm(h));
        double tol = k ? 1.0 / 128 : 1.0 / 1024, worst = 0;
        for (int64_t i = 0; i < n; i++) {
            double e = fabs((double)ph[i] - p[i]) / fmax(fabs((double)p[i]), 1e-3);
            if (e > worst) worst = e;
        }
        CHECK(worst <= tol);
        const float *nw = gr_tfm_param(gr_lm_tfm(h), "blk.0.attn_norm.weight");
        CHECK(nw && !memcmp(nw, gr_tfm_param(m, "blk.0.attn_norm.weight"), 32 * sizeof(float)));
        gr_lm_free(h);
    }
    gr_lm_free(back);
    gr_lm_free(lm);
    free(text);
}

static void test_save_gpt2(void) { roundtrip(GR_ARCH_GPT2, 1); }
static void test_save_llama(void) { roundtrip(GR_ARCH_LLAMA, 0); }

static void test_save_errors(void)
{
    gr_lm *lm = small_lm(GR_ARCH_GPT2, 1, NULL, 300, 8, 0.0f, 1);
    REQUIRE(lm);
    gr_lm_save_opts q = {GR_GGML_Q4_0, NULL, -1, NULL};
    CHECK(gr_lm_save(lm, gr_test_path("bad.gguf"), &q) == GR_ERR);
    CHECK(gr_lm_save(lm, "/nonexistent-dir/x.gguf", NULL) == GR_ERR);
    CHECK_HAS(gr_error_message(), "/nonexistent-dir/x.gguf");
    /* no tokenizer: still a loadable model */
    REQUIRE(gr_lm_save(lm, gr_test_path("notok.gguf"), NULL) == GR_OK);
    gr_lm *b = gr_lm_load(gr_test_path("notok.gguf"), NULL);
    CHECK(b && !gr_lm_tokenizer(b));
    gr_lm_free(b);
    gr_lm_free(lm);
}

/* ---- schedule, accumulation, clipping ---------------------------------------------------- */

static void test_schedule(void)
{
    gr_train_config c;
    gr_train_config_default(&c);
    c.steps = 110;
    c.warmup = 10;
    c.lr = 1.0f;
    c.min_lr = 0.1f;
    CHECK_NEAR(gr_train_lr_at(&c, 0), 0.1, 1e-7);
    CHECK_NEAR(gr_train_lr_at(&c, 9), 1.0, 1e-7);
    CHECK_NEAR(gr_train_lr_at(&c, 10), 1.0, 1e-7);
    CHECK_NEAR(gr_train_lr_at(&c, 60), 0.55, 1e-6);
    CHECK_NEAR(gr_train_lr_at(&c, 110), 0.1, 1e-7);
    for (int s = 11; s < 110; s++) CHECK(gr_train_lr_at(&c, s) <= gr_train_lr_at(&c, s - 1));
    c.min_lr = 2.0f;
    CHECK(gr_trainer_new(&c, NULL, NULL, 0, NULL, &(gr_train_task){0}) == NULL);
    CHECK_HAS(gr_error_message(), "min_lr");
}

/* Toy task: loss_k = 0.5 * |x - c_k|^2 / n with c_k alternating. */
typedef struct toy { float *x, *g; int n, k; } toy;
static const float toy_c[2][4] = {{1, 2, 3, 4}, {-3, 0, 5, 1}};
static int toy_micro(void *ctx, gr_rng *rng, float *loss, int64_t *nt)
{
    (void)rng;
    toy *t = ctx;
    const float *c = toy_c[t->k++ % 2];
    double l = 0;
    for (int i = 0; i < t->n; i++) {
        l += 0.5 * (t->x[i] - c[i]) * (t->x[i] - c[i]);
        t->g[i] += t->x[i] - c[i];
    }
    *loss = (float)l;
    *nt = 1;
    return GR_OK;
}

static void test_accum_clip(void)
{
    float x[4] = {0, 0, 0, 0}, g[4];
    toy ctx = {x, g, 4, 0};
    gr_train_task task = {0};
    task.ctx = &ctx;
    task.micro_batch = toy_micro;
    gr_train_config c;
    gr_train_config_default(&c);
    c.steps = 10;
    c.accum = 2;
    c.lr = 0.5f;
    c.min_lr = 0.5f;
    c.clip = 1.0f;
    c.weight_decay = 0.0f;
    c.log_every = 0;
    gr_trainer *t = gr_trainer_new(&c, x, g, 4, NULL, &task);
    REQUIRE(t);
    float loss;
    REQUIRE(gr_trainer_step(t, &loss) == GR_OK);
    /* mean gradient = x - mean(c) = -(-1, 1, 4, 2.5); norm = sqrt(1+1+16+6.25) */
    double gn = sqrt(1 + 1 + 16 + 6.25);
    CHECK_NEAR(gr_trainer_last_grad_norm(t), gn, 1e-5);
    CHECK_NEAR(loss, 0.5 * ((1 + 4 + 9 + 16) + (9 + 0 + 25 + 1)) / 2.0, 1e-5);
    /* first AdamW step moves each coordinate by ~lr * sign(g) whatever the scale */
    const float want[4] = {-0.5f, 0.5f, 0.5f, 0.5f};
    for (int i = 0; i < 4; i++) CHECK_NEAR(x[i], want[i], 1e-4);
    CHECK_EQ_INT(gr_trainer_step_count(t), 1);
    /* a diverging task is an error, and the parameters are left alone */
    gr_trainer_free(t);
}

/* ---- data and batches -------------------------------------------------------------------- */

static void test_data_batches(void)
{
    size_t len;
    char *text = pattern_text(100, 2, &len);
    gr_tokenizer *tok = gr_lm_train_tokenizer(text, len, 300);
    REQUIRE(tok);
    gr_lm_data d;
    REQUIRE(gr_lm_data_from_text(&d, text, len, tok, GR_LM_DOCS_PARAGRAPH, 0.1) == GR_OK);
    CHECK_EQ_INT(d.n_docs, 20);
    CHECK(d.sep == gr_tokenizer_eos(tok) && d.sep >= 256);
    CHECK(d.tokens[0] == d.sep);
    CHECK(d.tokens[d.n_train] == d.sep); /* the cut is at a document start */
    CHECK(d.n_train > d.n_tokens * 8 / 10 && d.n_train < d.n_tokens);
    /* decoding the stream gives back the text without blank lines */
    int64_t seps = 0;
    for (int64_t i = 0; i < d.n_tokens; i++) seps += d.tokens[i] == d.sep;
    CHECK_EQ_INT(seps, 20);

    gr_lm_loader L;
    REQUIRE(gr_lm_loader_init(&L, d.tokens, d.n_train, 3, 16, d.sep, 1, 5) == GR_OK);
    int64_t nw = L.n_windows;
    CHECK_EQ_INT(nw, (d.n_train - 1) / 16);
    /* one epoch covers every window once; targets are the next tokens; sequences split at separators */
    int *seen = calloc((size_t)nw, sizeof(int));
    int64_t got = 0;
    while (L.epoch == 0) {
        const gr_lm_batch *b;
        REQUIRE(gr_lm_loader_next(&L, 0, &b) == GR_OK);
        CHECK_EQ_INT(b->N, 48);
        for (int s = 0; s < b->n_seq; s++) {
            int a = b->seq_off[s], e = b->seq_off[s + 1];
            CHECK(e > a);
            if (a % 16) CHECK(b->tokens[a] == d.sep);
            for (int i = a + 1; i < e; i++) CHECK(b->tokens[i] != d.sep || i % 16 == 0);
        }
        for (int w = 0; w < 3 && got < nw; w++, got++) {
            const int32_t *tk = b->tokens + w * 16;
            int64_t start = -1;
            for (int64_t k = 0; k < nw && start < 0; k++)
                if (!memcmp(d.tokens + k * 16, tk, 16 * sizeof(int32_t)) && !seen[k]) start = k;
            CHECK(start >= 0);
            if (start >= 0) {
                seen[start] = 1;
                CHECK(!memcmp(b->targets + w * 16, d.tokens + start * 16 + 1, 16 * sizeof(int32_t)));
            }
        }
    }
    for (int64_t k = 0; k < nw; k++) CHECK(seen[k]);
    free(seen);
    /* the order is a function of (seed, epoch, index) */
    const gr_lm_batch *b1, *b2;
    REQUIRE(gr_lm_loader_seek(&L, 3, 2) == GR_OK);
    REQUIRE(gr_lm_loader_next(&L, 0, &b1) == GR_OK);
    int32_t first[48];
    memcpy(first, b1->tokens, sizeof first);
    gr_lm_loader L2;
    REQUIRE(gr_lm_loader_init(&L2, d.tokens, d.n_train, 3, 16, d.sep, 1, 5) == GR_OK);
    REQUIRE(gr_lm_loader_seek(&L2, 3, 2) == GR_OK);
    REQUIRE(gr_lm_loader_next(&L2, 0, &b2) == GR_OK);
    CHECK(!memcmp(first, b2->tokens, sizeof first));
    CHECK(gr_lm_loader_seek(&L2, 0, nw) == GR_ERR);
    gr_lm_loader_free(&L2);
    gr_lm_loader_free(&L);
    /* too little data */
    CHECK(gr_lm_loader_init(&L, d.tokens, 10, 2, 16, d.sep, 1, 5) == GR_ERR);
    CHECK_HAS(gr_error_message(), "too few");
    gr_lm_data_free(&d);
    /* line documents, no tokenizer specials */
    REQUIRE(gr_lm_data_from_text(&d, text, len, tok, GR_LM_DOCS_LINE, 0.0) == GR_OK);
    CHECK_EQ_INT(d.n_docs, 100);
    CHECK_EQ_INT(d.n_train, d.n_tokens);
    gr_lm_data_free(&d);
    gr_tokenizer_free(tok);
    free(text);
}

/* ---- bit-identical resume -------------------------------------------------------------- */

typedef struct rec { float loss[256]; int n; } rec;
static rec *g_rec;
static void rec_step(void *ctx, int64_t step, float loss, float lr, float norm)
{
    (void)ctx; (void)lr; (void)norm;
    if (g_rec && step >= 1 && step <= 256) { g_rec->loss[step - 1] = loss; if (step > g_rec->n) g_rec->n = (int)step; }
}

/* An independent copy of tok (through a vocab-only GGUF). */
static gr_tokenizer *tok_copy(const gr_tokenizer *tok)
{
    gr_gguf_builder *b = gr_gguf_builder_new();
    const char *p = gr_test_path("tok.gguf");
    int ok = b && gr_gguf_set_str(b, "general.architecture", "gpt2") == GR_OK && gr_tokenizer_to_gguf(tok, b) == GR_OK &&
             gr_gguf_write(b, p) == GR_OK;
    gr_gguf_builder_free(b);
    return ok ? gr_tokenizer_load(p) : NULL;
}

typedef struct run { gr_lm *lm; gr_lm_task task; gr_trainer *tr; uint8_t *mask; } run;

static int run_open(run *r, gr_arch arch, const gr_lm_data *d, gr_tokenizer *tok, int steps, uint64_t init_seed)
{
    memset(r, 0, sizeof *r);
    gr_tokenizer *own = tok_copy(tok);
    if (!own) return GR_ERR;
    r->lm = small_lm(arch, arch == GR_ARCH_GPT2, own, gr_tokenizer_n_vocab(tok), 16, 0.1f, init_seed);
    if (!r->lm) { gr_tokenizer_free(own); return GR_ERR; }
    if (gr_lm_task_init(&r->task, r->lm, d, 3, 16, 11) != GR_OK) return GR_ERR;
    gr_train_task cb = gr_lm_task_callbacks(&r->task);
    cb.on_step = rec_step;
    gr_train_config c;
    gr_train_config_default(&c);
    c.steps = steps;
    c.accum = 2;
    c.lr = 3e-3f;
    c.min_lr = 3e-4f;
    c.warmup = 3;
    c.clip = 0.5f;
    c.log_every = 0;
    gr_tfm *m = gr_lm_tfm(r->lm);
    r->mask = malloc((size_t)gr_tfm_n_params(m));
    gr_tfm_decay_mask(m, r->mask);
    r->tr = gr_trainer_new(&c, gr_tfm_params(m), gr_tfm_grads(m), gr_tfm_n_params(m), r->mask, &cb);
    return r->tr ? GR_OK : GR_ERR;
}

static void run_close(run *r)
{
    gr_trainer_free(r->tr);
    gr_lm_task_free(&r->task);
    gr_lm_free(r->lm);
    free(r->mask);
}

static void resume_check(gr_arch arch)
{
    size_t len;
    char *text = pattern_text(150, 4, &len);
    gr_tokenizer *tok = gr_lm_train_tokenizer(text, len, 300);
    REQUIRE(tok);
    gr_lm_data d;
    REQUIRE(gr_lm_data_from_text(&d, text, len, tok, GR_LM_DOCS_PARAGRAPH, 0.1) == GR_OK);
    const int k = 12;
    rec full = {{0}, 0}, part = {{0}, 0};
    run a, b;
    /* uninterrupted: 2k steps */
    g_rec = &full;
    REQUIRE(run_open(&a, arch, &d, tok, 2 * k, 5) == GR_OK);
    REQUIRE(gr_trainer_run(a.tr) == GR_OK);
    /* k steps, checkpoint, throw everything away, resume into a model with other weights */
    g_rec = &part;
    REQUIRE(run_open(&b, arch, &d, tok, 2 * k, 5) == GR_OK);
    REQUIRE(gr_trainer_run_until(b.tr, k) == GR_OK);
    const char *ck = gr_test_path(arch == GR_ARCH_GPT2 ? "resume_gpt2.ckpt" : "resume_llama.ckpt");
    REQUIRE(gr_trainer_save(b.tr, ck) == GR_OK);
    run_close(&b);
    REQUIRE(run_open(&b, arch, &d, tok, 2 * k, 999) == GR_OK);
    REQUIRE(gr_trainer_load(b.tr, ck) == GR_OK);
    CHECK_EQ_INT(gr_trainer_step_count(b.tr), k);
    REQUIRE(gr_trainer_run(b.tr) == GR_OK);
    g_rec = NULL;
    CHECK_EQ_INT(full.n, 2 * k);
    CHECK_EQ_INT(part.n, 2 * k);
    int same = 0;
    for (int i = 0; i < 2 * k; i++) same += !memcmp(&full.loss[i], &part.loss[i], sizeof(float));
    CHECK_EQ_INT(same, 2 * k);
    CHECK(full.loss[2 * k - 1] < full.loss[0] - 1.0f);
    int64_t n = gr_tfm_n_params(gr_lm_tfm(a.lm));
    CHECK(!memcmp(gr_tfm_params(gr_lm_tfm(a.lm)), gr_tfm_params(gr_lm_tfm(b.lm)), sizeof(float) * (size_t)n));
    /* the checkpoint rebuilds the model description (and tokenizer) */
    gr_gguf *g = gr_gguf_open(ck);
    REQUIRE(g);
    gr_lm *meta = gr_lm_from_gguf_meta(g, ck);
    CHECK(meta && gr_tfm_n_params(gr_lm_tfm(meta)) == n && gr_lm_tokenizer(meta));
    gr_lm_free(meta);
    gr_gguf_close(g);

    /* corrupt checkpoints: errors naming the file, nothing changed */
    size_t cl;
    char *bytes = gr_test_read_file(ck, &cl);
    REQUIRE(bytes);
    float before = gr_tfm_params(gr_lm_tfm(b.lm))[0];
    const char *bad = gr_test_path("corrupt.ckpt");
    size_t cuts[3] = {cl / 2, 40, cl - 5};
    for (int i = 0; i < 3; i++) {
        FILE *f = fopen(bad, "wb");
        REQUIRE(f);
        fwrite(bytes, 1, cuts[i], f);
        fclose(f);
        CHECK(gr_trainer_load(b.tr, bad) == GR_ERR);
        CHECK_HAS(gr_error_message(), bad);
    }
    /* flipped header bytes */
    for (size_t off = 4; off < 64; off += 7) {
        char *c2 = malloc(cl);
        memcpy(c2, bytes, cl);
        c2[off] ^= 0x5a;
        FILE *f = fopen(bad, "wb");
        fwrite(c2, 1, cl, f);
        fclose(f);
        free(c2);
        if (gr_trainer_load(b.tr, bad) == GR_ERR) CHECK_HAS(gr_error_message(), bad);
    }
    CHECK(gr_tfm_params(gr_lm_tfm(b.lm))[0] == before);
    /* a model checkpoint is not a training checkpoint */
    REQUIRE(gr_lm_save(b.lm, gr_test_path("model.gguf"), NULL) == GR_OK);
    CHECK(gr_trainer_load(b.tr, gr_test_path("model.gguf")) == GR_ERR);
    CHECK_HAS(gr_error_message(), "not a genrec training checkpoint");
    free(bytes);
    run_close(&a);
    run_close(&b);
    gr_lm_data_free(&d);
    gr_tokenizer_free(tok);
    free(text);
}

static void test_resume_gpt2(void) { resume_check(GR_ARCH_GPT2); }
static void test_resume_llama(void) { resume_check(GR_ARCH_LLAMA); }

/* ---- the command line ------------------------------------------------------------------ */

static int sh(const char *fmt, ...) GR_PRINTF(1, 2);
static int sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static double gguf_num(const char *path, const char *key)
{
    gr_gguf *g = gr_gguf_open(path);
    if (!g) return NAN;
    const char *s;
    double v = NAN;
    if (gr_gguf_get_str(g, key, &s, NULL) == GR_OK) v = atof(s);
    gr_gguf_close(g);
    return v;
}

static void test_cli(void)
{
    const char *bin = getenv("GENREC_BIN");
    if (!bin) { gr_test_skip("GENREC_BIN not set"); return; }
    size_t len;
    char *text = pattern_text(1500, 9, &len);
    FILE *f = fopen(gr_test_path("pat.txt"), "wb");
    REQUIRE(f);
    fwrite(text, 1, len, f);
    fclose(f);
    free(text);
    char data[512], common[1024];
    snprintf(data, sizeof data, "%s", gr_test_path("pat.txt"));
    snprintf(common, sizeof common,
             "--data %s --layers 1 --dim 48 --heads 4 --ff 96 --ctx 32 --vocab 320 --batch 4 --steps 60 --lr 5e-3 "
             "--threads 2 --valid-every 30 --valid-windows 64 --quiet", data);
    char A[512], B[512], C[512], ck[512], lg[512];
    snprintf(A, sizeof A, "%s", gr_test_path("A.gguf"));
    snprintf(B, sizeof B, "%s", gr_test_path("B.gguf"));
    snprintf(C, sizeof C, "%s", gr_test_path("C.gguf"));
    snprintf(ck, sizeof ck, "%s", gr_test_path("cli.ckpt"));
    snprintf(lg, sizeof lg, "%s", gr_test_path("log.txt"));
    REQUIRE(sh("%s train-lm %s --arch llama --out %s 2>%s", bin, common, A, lg) == 0);
    /* learned: valid loss far below the unigram entropy of the tokens */
    gr_lm *lm = gr_lm_load(A, NULL);
    REQUIRE(lm && gr_lm_tokenizer(lm));
    CHECK_EQ_INT(gr_lm_arch(lm), GR_ARCH_LLAMA);
    char *t2 = gr_test_read_file(data, &len);
    gr_lm_data d;
    REQUIRE(gr_lm_data_from_text(&d, t2, len, gr_lm_tokenizer(lm), GR_LM_DOCS_PARAGRAPH, 0.0) == GR_OK);
    int V = gr_lm_vocab(lm);
    double *cnt = calloc((size_t)V, sizeof(double)), H = 0;
    for (int64_t i = 0; i < d.n_tokens; i++) cnt[d.tokens[i]] += 1;
    for (int v = 0; v < V; v++)
        if (cnt[v] > 0) H -= cnt[v] / d.n_tokens * log(cnt[v] / d.n_tokens);
    double vl = gguf_num(A, "genrec.train.valid_loss");
    printf("unigram entropy %.3f nats, valid loss %.3f\n", H, vl);
    CHECK(vl < 0.5 * H);
    free(cnt);
    free(t2);
    gr_lm_data_free(&d);

    /* stop at 30 with a checkpoint, resume to 60: the same weights as one run */
    REQUIRE(sh("%s train-lm %s --arch llama --stop-after 30 --checkpoint %s --out %s 2>%s", bin, common, ck, B, lg) == 0);
    REQUIRE(sh("%s train-lm --data %s --resume %s --threads 2 --valid-every 30 --valid-windows 64 --quiet --out %s 2>%s",
               bin, data, ck, C, lg) == 0);
    gr_lm *c = gr_lm_load(C, NULL);
    REQUIRE(c);
    int64_t n = gr_tfm_n_params(gr_lm_tfm(lm));
    REQUIRE(gr_tfm_n_params(gr_lm_tfm(c)) == n);
    CHECK(!memcmp(gr_tfm_params(gr_lm_tfm(lm)), gr_tfm_params(gr_lm_tfm(c)), sizeof(float) * (size_t)n));
    CHECK(gguf_num(A, "genrec.train.loss") == gguf_num(C, "genrec.train.loss"));
    gr_lm_free(c);
    gr_lm_free(lm);

    /* fine-tune from a model file */
    REQUIRE(sh("%s train-lm --data %s --init %s --steps 3 --ctx 16 --batch 2 --threads 2 --quiet --out %s 2>%s", bin,
               data, A, B, lg) == 0);

    /* errors: corrupt checkpoint, bad flags */
    size_t cl;
    char *bytes = gr_test_read_file(ck, &cl);
    REQUIRE(bytes);
    f = fopen(ck, "wb");
    fwrite(bytes, 1, cl / 3, f);
    fclose(f);
    free(bytes);
    CHECK(sh("%s train-lm --data %s --resume %s --quiet --out %s 2>%s", bin, data, ck, C, lg) == 1);
    CHECK_HAS(gr_test_read_text(lg), ck);
    CHECK(sh("%s train-lm --data %s --out %s --heads 5 2>%s", bin, data, C, lg) == 2);
    CHECK_HAS(gr_test_read_text(lg), "--heads");
    CHECK(sh("%s train-lm --data %s 2>%s", bin, data, lg) == 2);
    CHECK_HAS(gr_test_read_text(lg), "--out");
    CHECK(sh("%s train-lm --data %s --out %s --arch bert 2>%s", bin, data, C, lg) == 2);
    CHECK(sh("%s train-lm --data /nonexistent.txt --out %s 2>%s", bin, C, lg) == 1);
    CHECK_HAS(gr_test_read_text(lg), "/nonexistent.txt");
    const char *tiny = gr_test_write_file("tiny.txt", "hello world\n\nhello again\n");
    CHECK(sh("%s train-lm --data %s --out %s --vocab 300 --ctx 32 --steps 1 --quiet 2>%s", bin, tiny, C, lg) == 1);
    CHECK_HAS(gr_test_read_text(lg), "too few");
    CHECK(sh("%s train-lm --help >%s", bin, lg) == 0);
    CHECK_HAS(gr_test_read_text(lg), "--checkpoint-every");
}

int main(void)
{
    gr_threads_set(2);
    GR_RUN(test_save_gpt2);
    GR_RUN(test_save_llama);
    GR_RUN(test_save_errors);
    GR_RUN(test_schedule);
    GR_RUN(test_accum_clip);
    GR_RUN(test_data_batches);
    GR_RUN(test_resume_gpt2);
    GR_RUN(test_resume_llama);
    GR_RUN(test_cli);
    return gr_test_finish();
}
