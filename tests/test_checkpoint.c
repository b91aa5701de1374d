/* Checkpoint importers on valid input: llama2.c .bin, Hugging Face
 * safetensors (Llama and GPT-2 layouts) and GGUF; the real stories260K
 * (.bin vs .gguf, bit-identical) and tiny-random-gpt2 (q/k/v split and
 * transposes checked against the raw safetensors bytes) from ../shared;
 * synthetic files written here; RoPE un-permutation checked semantically.
 * Malformed files are in test_checkpoint_malformed.c.
 *
 * With GENREC_WRITE_FUZZ_CORPUS=DIR set, seed files for the fuzz targets are
 * written to DIR/safetensors/ and DIR/llama2c/ (used to regenerate
 * fuzz/corpus/{safetensors,llama2c}). */
#include "gr_test.h"
#include "ckpt_testutil.h"

#include "genrec/checkpoint.h"
#include "genrec/common.h"
#include "genrec/gguf.h"
#include "genrec/tokenizer.h"
#include "genrec/transformer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *tmp_path(const char *name)
{
    static char buf[8][512];
    static int slot;
    char *b = buf[slot++ & 7];
    snprintf(b, sizeof buf[0], "%s/%s", gr_test_tmpdir(), name);
    return b;
}

/* t == expected values exactly. */
static int same_values(const gr_ckpt_tensor *t, const float *want, int64_t n)
{
    return t && t->n == n && !memcmp(t->data, want, (size_t)n * sizeof(float));
}

/* ---- llama2.c ------------------------------------------------------------------------------ */

static void test_llama2c_synthetic(void)
{
    int32_t h[7] = {8, 12, 2, 2, 1, 10, 4};
    size_t len;
    unsigned char *d = make_llama2c(h, &len);
    gr_ckpt *ck = gr_ckpt_load_llama2c_memory(d, len, "synthetic.bin");
    REQUIRE(ck);
    CHECK(ck->arch == GR_ARCH_LLAMA);
    CHECK_EQ_INT(ck->d_model, 8);
    CHECK_EQ_INT(ck->d_ff, 12);
    CHECK_EQ_INT(ck->n_layer, 2);
    CHECK_EQ_INT(ck->n_head, 2);
    CHECK_EQ_INT(ck->n_kv_head, 1);
    CHECK_EQ_INT(ck->vocab, 10);
    CHECK_EQ_INT(ck->max_T, 4);
    CHECK(ck->tied);
    CHECK_EQ_INT(ck->n_tensors, 2 + 2 * 9);
    CHECK_STR(ck->format, "llama2c");
    CHECK_NEAR(ck->norm_eps, 1e-5, 1e-12);
    CHECK_NEAR(ck->rope_theta, 10000.0, 0);
    CHECK_STR(ck->tensors[0].name, "token_embd.weight");
    CHECK_STR(ck->tensors[ck->n_tensors - 1].name, "output_norm.weight");
    CHECK(!gr_ckpt_find(ck, "output.weight"));
    /* layer 1 of each stacked array */
    struct { const char *gg, *arr; int64_t n; } m[] = {
        {"blk.1.attn_norm.weight", "rms_att_weight", 8}, {"blk.1.attn_q.weight", "wq", 64},
        {"blk.1.attn_k.weight", "wk", 32}, {"blk.1.attn_v.weight", "wv", 32}, {"blk.1.attn_output.weight", "wo", 64},
        {"blk.1.ffn_norm.weight", "rms_ffn_weight", 8}, {"blk.1.ffn_gate.weight", "w1", 96},
        {"blk.1.ffn_down.weight", "w2", 96}, {"blk.1.ffn_up.weight", "w3", 96},
    };
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
        const gr_ckpt_tensor *t = gr_ckpt_find(ck, m[i].gg);
        REQUIRE(t);
        CHECK_EQ_INT(t->n, m[i].n);
        int ok = 1;
        for (int64_t k = 0; k < t->n; k++) ok &= t->data[k] == hv(m[i].arr, m[i].n + k);
        if (!ok) gr_test_fail(__FILE__, __LINE__, "%s != layer 1 of %s", m[i].gg, m[i].arr);
    }
    const gr_ckpt_tensor *k = gr_ckpt_find(ck, "blk.0.attn_k.weight");
    REQUIRE(k);
    CHECK_EQ_INT(k->shape[0], 4);
    CHECK_EQ_INT(k->shape[1], 8);
    const gr_ckpt_tensor *dn = gr_ckpt_find(ck, "blk.0.ffn_down.weight");
    REQUIRE(dn);
    CHECK_EQ_INT(dn->shape[0], 8);
    CHECK_EQ_INT(dn->shape[1], 12);
    const gr_ckpt_tensor *fn = gr_ckpt_find(ck, "output_norm.weight");
    REQUIRE(fn);
    CHECK(fn->data[3] == hv("rms_final_weight", 3));
    gr_ckpt_free(ck);
    free(d);

    /* untied: wcls follows the freq_cis tables; through the file API */
    h[5] = -10;
    d = make_llama2c(h, &len);
    const char *path = tmp_path("untied.bin");
    REQUIRE(write_bytes(path, d, len) == 0);
    ck = gr_ckpt_load(path);
    REQUIRE(ck);
    CHECK(!ck->tied);
    CHECK_EQ_INT(ck->vocab, 10);
    CHECK_EQ_INT(ck->n_tensors, 3 + 2 * 9);
    const gr_ckpt_tensor *o = gr_ckpt_find(ck, "output.weight");
    REQUIRE(o);
    CHECK_STR(ck->tensors[ck->n_tensors - 1].name, "output.weight");
    CHECK(o->data[0] == hv("wcls", 0) && o->data[79] == hv("wcls", 79));
    gr_ckpt_free(ck);

    /* untied in the header but wcls == the embedding: loaded as tied */
    float *f = (float *)(d + 28);
    memcpy(f + (len - 28) / 4 - 80, f, 80 * sizeof(float));
    ck = gr_ckpt_load_llama2c_memory(d, len, "copy.bin");
    REQUIRE(ck);
    CHECK(ck->tied);
    CHECK(!gr_ckpt_find(ck, "output.weight"));
    gr_ckpt_free(ck);
    free(d);
}

/* ---- stories260K: .bin and .gguf --------------------------------------------------------- */

static void test_stories260k(void)
{
    const char *bin = gr_test_shared("models/stories260K/stories260K.bin");
    const char *gguf = gr_test_shared("models/stories260K/stories260K.gguf");
    if (!bin || !gguf) { gr_test_skip("../shared/models/stories260K absent"); return; }
    double t0 = gr_time_now();
    gr_ckpt *a = gr_ckpt_load(bin);
    double t1 = gr_time_now();
    gr_ckpt *b = gr_ckpt_load(gguf);
    double t2 = gr_time_now();
    if (!a || !b) fprintf(stderr, "error: %s\n", gr_error_message());
    REQUIRE(a && b);
    printf("stories260K: .bin loaded in %.2f ms, .gguf in %.2f ms\n", (t1 - t0) * 1e3, (t2 - t1) * 1e3);
    for (int i = 0; i < 2; i++) {
        gr_ckpt *ck = i ? b : a;
        CHECK(ck->arch == GR_ARCH_LLAMA);
        CHECK_EQ_INT(ck->d_model, 64);
        CHECK_EQ_INT(ck->d_ff, 172);
        CHECK_EQ_INT(ck->n_layer, 5);
        CHECK_EQ_INT(ck->n_head, 8);
        CHECK_EQ_INT(ck->n_kv_head, 4);
        CHECK_EQ_INT(ck->vocab, 512);
        CHECK(ck->tied); /* the .gguf stores a bit-identical copy as output.weight */
        CHECK_NEAR(ck->norm_eps, 1e-5, 1e-10);
        CHECK_NEAR(ck->rope_theta, 10000.0, 0);
        CHECK_EQ_INT(ck->n_tensors, 47);
    }
    CHECK_EQ_INT(a->max_T, 512);
    CHECK_EQ_INT(b->max_T, 2048); /* what the .gguf says */
    CHECK_STR(a->format, "llama2c");
    CHECK_STR(b->format, "gguf");
    int identical = 0;
    for (int i = 0; i < a->n_tensors && i < b->n_tensors; i++) {
        const gr_ckpt_tensor *x = &a->tensors[i], *y = &b->tensors[i];
        CHECK_STR(x->name, y->name);
        int ok = x->ndim == y->ndim && x->shape[0] == y->shape[0] && x->shape[1] == y->shape[1] && x->n == y->n &&
                 !memcmp(x->data, y->data, (size_t)x->n * sizeof(float));
        if (!ok) gr_test_fail(__FILE__, __LINE__, "tensor %s differs between .bin and .gguf", x->name);
        identical += ok;
    }
    CHECK_EQ_INT(identical, 47);
    const gr_ckpt_tensor *q = gr_ckpt_find(a, "blk.4.attn_k.weight");
    REQUIRE(q);
    CHECK_EQ_INT(q->shape[0], 32);
    CHECK_EQ_INT(q->shape[1], 64);
    /* the first embedding value is the float right after the header */
    size_t len;
    unsigned char *raw = read_bytes(bin, &len);
    REQUIRE(raw);
    float e0;
    memcpy(&e0, raw + 28, 4);
    CHECK(a->tensors[0].data[0] == e0);
    free(raw);
    gr_ckpt_free(a);
    gr_ckpt_free(b);
}

/* ---- tiny-random-gpt2 ----------------------------------------------------------------------- */

/* data_offsets[0] of tensor `name`, read from the header text directly. */
static long long raw_offset(const unsigned char *file, const char *name)
{
    uint64_t hl;
    memcpy(&hl, file, 8);
    char *hdr = malloc(hl + 1);
    memcpy(hdr, file + 8, hl);
    hdr[hl] = 0;
    char key[160];
    snprintf(key, sizeof key, "\"%s\"", name);
    long long b = -1, e = -1;
    char *p = strstr(hdr, key);
    if (p) p = strstr(p, "\"data_offsets\":[");
    if (p) sscanf(p, "\"data_offsets\":[%lld,%lld]", &b, &e);
    free(hdr);
    return b < 0 ? -1 : (long long)(8 + hl) + b;
}

static float raw_f32(const unsigned char *file, long long off, int64_t i)
{
    float v;
    memcpy(&v, file + off + 4 * i, 4);
    return v;
}

static void test_tiny_random_gpt2(void)
{
    const char *dir = gr_test_shared("models/tiny-random-gpt2");
    const char *stp = gr_test_shared("models/tiny-random-gpt2/model.safetensors");
    if (!dir || !stp) { gr_test_skip("../shared/models/tiny-random-gpt2 absent"); return; }
    gr_ckpt *ck = gr_ckpt_load(dir);
    if (!ck) fprintf(stderr, "error: %s\n", gr_error_message());
    REQUIRE(ck);
    CHECK(ck->arch == GR_ARCH_GPT2);
    CHECK_EQ_INT(ck->d_model, 32);
    CHECK_EQ_INT(ck->n_layer, 5);
    CHECK_EQ_INT(ck->n_head, 4);
    CHECK_EQ_INT(ck->n_kv_head, 4);
    CHECK_EQ_INT(ck->d_ff, 128);
    CHECK_EQ_INT(ck->vocab, 1000);
    CHECK_EQ_INT(ck->max_T, 512);
    CHECK_NEAR(ck->norm_eps, 1e-5, 1e-10);
    CHECK(ck->tied);
    CHECK_EQ_INT(ck->n_tensors, 84);
    CHECK_STR(ck->format, "safetensors");
    size_t len;
    unsigned char *raw = read_bytes(stp, &len);
    REQUIRE(raw);
    const int C = 32, F = 128;
    int bad = 0;
    for (int l = 0; l < 5; l += 3) {
        char nm[128], gg[64];
        snprintf(nm, sizeof nm, "transformer.h.%d.attn.c_attn.weight", l);
        long long w = raw_offset(raw, nm);
        snprintf(nm, sizeof nm, "transformer.h.%d.attn.c_attn.bias", l);
        long long bb = raw_offset(raw, nm);
        REQUIRE(w > 0 && bb > 0);
        static const char *const part[3] = {"attn_q", "attn_k", "attn_v"};
        for (int p = 0; p < 3; p++) {
            snprintf(gg, sizeof gg, "blk.%d.%s.weight", l, part[p]);
            const gr_ckpt_tensor *t = gr_ckpt_find(ck, gg);
            REQUIRE(t && t->shape[0] == C && t->shape[1] == C);
            for (int o = 0; o < C; o++)
                for (int i = 0; i < C; i++) bad += t->data[o * C + i] != raw_f32(raw, w, (int64_t)i * 3 * C + p * C + o);
            snprintf(gg, sizeof gg, "blk.%d.%s.bias", l, part[p]);
            t = gr_ckpt_find(ck, gg);
            REQUIRE(t && t->n == C);
            for (int o = 0; o < C; o++) bad += t->data[o] != raw_f32(raw, bb, p * C + o);
        }
        /* Conv1D transposes: c_proj [C, C], c_fc [C, F] -> up [F, C], mlp.c_proj [F, C] -> down [C, F] */
        struct { const char *hf, *gg; int in, out; } tr[] = {
            {"attn.c_proj.weight", "attn_output.weight", C, C}, {"mlp.c_fc.weight", "ffn_up.weight", C, F},
            {"mlp.c_proj.weight", "ffn_down.weight", F, C},
        };
        for (int k = 0; k < 3; k++) {
            snprintf(nm, sizeof nm, "transformer.h.%d.%s", l, tr[k].hf);
            snprintf(gg, sizeof gg, "blk.%d.%s", l, tr[k].gg);
            long long off = raw_offset(raw, nm);
            const gr_ckpt_tensor *t = gr_ckpt_find(ck, gg);
            REQUIRE(off > 0 && t && t->shape[0] == tr[k].out && t->shape[1] == tr[k].in);
            for (int o = 0; o < tr[k].out; o++)
                for (int i = 0; i < tr[k].in; i++)
                    bad += t->data[o * tr[k].in + i] != raw_f32(raw, off, (int64_t)i * tr[k].out + o);
        }
    }
    CHECK_EQ_INT(bad, 0);
    long long wte = raw_offset(raw, "transformer.wte.weight"), wpe = raw_offset(raw, "transformer.wpe.weight");
    const gr_ckpt_tensor *te = gr_ckpt_find(ck, "token_embd.weight"), *pe = gr_ckpt_find(ck, "position_embd.weight");
    REQUIRE(wte > 0 && wpe > 0 && te && pe);
    CHECK(!memcmp(te->data, raw + wte, 1000 * 32 * 4));
    CHECK(!memcmp(pe->data, raw + wpe, 512 * 32 * 4));
    free(raw);
    gr_ckpt_free(ck);
}

/* ---- synthetic Llama safetensors: dtypes, tying, RoPE un-permutation ------------------------- */

static const hf_spec llama_spec = {32, 2, 4, 2, 64, 40, 128};

/* Attention score of query head h at position pq against its kv head at pk,
 * after RoPE: neox = rotate halves (HF), else adjacent pairs. */
static double rope_score(const float *Wq, const float *Wk, const double *x, const hf_spec *s, int h, int pq, int pk,
                         int neox, double theta)
{
    int C = s->C, HS = C / s->NH, g = h / (s->NH / s->KVH);
    double q[64], k[64];
    for (int r = 0; r < HS; r++) {
        q[r] = k[r] = 0;
        for (int c = 0; c < C; c++) {
            q[r] += (double)Wq[(int64_t)(h * HS + r) * C + c] * x[c];
            k[r] += (double)Wk[(int64_t)(g * HS + r) * C + c] * x[C + c];
        }
    }
    for (int i = 0; i < HS / 2; i++) {
        int a = neox ? i : 2 * i, b = neox ? i + HS / 2 : 2 * i + 1;
        double f = pow(theta, -2.0 * i / HS), cq = cos(pq * f), sq = sin(pq * f), ck = cos(pk * f), sk = sin(pk * f);
        double q0 = q[a], q1 = q[b], k0 = k[a], k1 = k[b];
        q[a] = q0 * cq - q1 * sq; q[b] = q1 * cq + q0 * sq;
        k[a] = k0 * ck - k1 * sk; k[b] = k1 * ck + k0 * sk;
    }
    double dot = 0;
    for (int r = 0; r < HS; r++) dot += q[r] * k[r];
    return dot;
}

static void check_llama_values(const gr_ckpt *ck, const hf_spec *s, const char *pf)
{
    int C = s->C, HS = C / s->NH;
    char nm[160], gg[64];
    int bad = 0;
    for (int l = 0; l < s->L; l++) {
        static const char *const direct[][2] = {{"input_layernorm.weight", "attn_norm.weight"},
            {"self_attn.v_proj.weight", "attn_v.weight"}, {"self_attn.o_proj.weight", "attn_output.weight"},
            {"post_attention_layernorm.weight", "ffn_norm.weight"}, {"mlp.gate_proj.weight", "ffn_gate.weight"},
            {"mlp.up_proj.weight", "ffn_up.weight"}, {"mlp.down_proj.weight", "ffn_down.weight"}};
        for (int k = 0; k < 7; k++) {
            snprintf(nm, sizeof nm, "%slayers.%d.%s", pf, l, direct[k][0]);
            snprintf(gg, sizeof gg, "blk.%d.%s", l, direct[k][1]);
            const gr_ckpt_tensor *t = gr_ckpt_find(ck, gg);
            if (!t) { bad++; continue; }
            for (int64_t i = 0; i < t->n; i++) bad += t->data[i] != hv(nm, i);
        }
        /* q/k: loaded row h*HS + 2i + j == HF row h*HS + j*HS/2 + i */
        for (int qk = 0; qk < 2; qk++) {
            snprintf(nm, sizeof nm, "%slayers.%d.self_attn.%s_proj.weight", pf, l, qk ? "k" : "q");
            snprintf(gg, sizeof gg, "blk.%d.attn_%s.weight", l, qk ? "k" : "q");
            const gr_ckpt_tensor *t = gr_ckpt_find(ck, gg);
            int heads = qk ? s->KVH : s->NH;
            if (!t || t->shape[0] != (int64_t)heads * HS) { bad++; continue; }
            for (int h = 0; h < heads; h++)
                for (int i = 0; i < HS / 2; i++)
                    for (int j = 0; j < 2; j++)
                        for (int c = 0; c < C; c++)
                            bad += t->data[(int64_t)(h * HS + 2 * i + j) * C + c] != hv(nm, (int64_t)(h * HS + j * HS / 2 + i) * C + c);
        }
    }
    snprintf(nm, sizeof nm, "%sembed_tokens.weight", pf);
    const gr_ckpt_tensor *t = gr_ckpt_find(ck, "token_embd.weight");
    REQUIRE(t);
    for (int64_t i = 0; i < t->n; i++) bad += t->data[i] != hv(nm, i);
    CHECK_EQ_INT(bad, 0);
}

static void test_llama_safetensors(void)
{
    const hf_spec *s = &llama_spec;
    char cfg[2048];
    size_t len;
    /* F32, untied (lm_head present), "model." prefix */
    hf_opts o = {0};
    o.lm_head = 1;
    unsigned char *d = make_llama_st(s, &o, &len);
    llama_config(cfg, sizeof cfg, s, 0);
    gr_ckpt *ck = gr_ckpt_load_safetensors_memory(d, len, cfg, strlen(cfg), "llama.safetensors");
    if (!ck) fprintf(stderr, "error: %s\n", gr_error_message());
    REQUIRE(ck);
    CHECK(ck->arch == GR_ARCH_LLAMA);
    CHECK_EQ_INT(ck->d_model, 32);
    CHECK_EQ_INT(ck->n_kv_head, 2);
    CHECK_EQ_INT(ck->d_ff, 64);
    CHECK_EQ_INT(ck->vocab, 40);
    CHECK_EQ_INT(ck->max_T, 128);
    CHECK_NEAR(ck->norm_eps, 1e-6, 1e-12);
    CHECK_NEAR(ck->rope_theta, 500000.0, 0);
    CHECK(!ck->tied);
    CHECK_EQ_INT(ck->n_tensors, 3 + 2 * 9);
    check_llama_values(ck, s, "model.");
    const gr_ckpt_tensor *out = gr_ckpt_find(ck, "output.weight");
    REQUIRE(out);
    CHECK(out->data[5] == hv("lm_head.weight", 5));

    /* RoPE semantics: HF weights with rotate-halves RoPE give the same attention
     * scores as the loaded weights with adjacent-pair RoPE. */
    double x[64];
    for (int i = 0; i < 64; i++) x[i] = sin(0.37 * i + 0.1);
    float *wq = malloc(32 * 32 * sizeof(float)), *wk = malloc(16 * 32 * sizeof(float));
    for (int i = 0; i < 32 * 32; i++) wq[i] = hv("model.layers.1.self_attn.q_proj.weight", i);
    for (int i = 0; i < 16 * 32; i++) wk[i] = hv("model.layers.1.self_attn.k_proj.weight", i);
    const gr_ckpt_tensor *lq = gr_ckpt_find(ck, "blk.1.attn_q.weight"), *lk = gr_ckpt_find(ck, "blk.1.attn_k.weight");
    REQUIRE(lq && lk);
    double worst = 0, scale = 0;
    int pos[][2] = {{0, 0}, {5, 3}, {17, 17}, {100, 2}, {127, 64}};
    for (int h = 0; h < 4; h++)
        for (int p = 0; p < 5; p++) {
            double a = rope_score(wq, wk, x, s, h, pos[p][0], pos[p][1], 1, 500000.0);
            double b = rope_score(lq->data, lk->data, x, s, h, pos[p][0], pos[p][1], 0, 500000.0);
            worst = fmax(worst, fabs(a - b));
            scale = fmax(scale, fabs(a));
        }
    CHECK(scale > 0.1);
    CHECK(worst < 1e-9 * scale);
    /* ... and without un-permuting they would differ */
    double naive = fabs(rope_score(wq, wk, x, s, 1, 5, 3, 1, 500000.0) - rope_score(wq, wk, x, s, 1, 5, 3, 0, 500000.0));
    CHECK(naive > 1e-3);
    free(wq);
    free(wk);
    gr_ckpt_free(ck);
    free(d);

    /* BF16, tied, no prefix */
    hf_opts ob = {0};
    ob.dtype = "BF16";
    ob.no_prefix = 1;
    d = make_llama_st(s, &ob, &len);
    llama_config(cfg, sizeof cfg, s, 1);
    ck = gr_ckpt_load_safetensors_memory(d, len, cfg, strlen(cfg), "llama_bf16.safetensors");
    if (!ck) fprintf(stderr, "error: %s\n", gr_error_message());
    REQUIRE(ck);
    CHECK(ck->tied);
    CHECK_EQ_INT(ck->n_tensors, 2 + 2 * 9);
    CHECK(!gr_ckpt_find(ck, "output.weight"));
    check_llama_values(ck, s, "");
    gr_ckpt_free(ck);
    free(d);

    /* F16, config untied but lm_head is a copy of the embeddings: loaded as tied */
    hf_opts oh = {0};
    oh.dtype = "F16";
    oh.lm_head_copy = 1;
    d = make_llama_st(s, &oh, &len);
    llama_config(cfg, sizeof cfg, s, 0);
    ck = gr_ckpt_load_safetensors_memory(d, len, cfg, strlen(cfg), "llama_f16.safetensors");
    REQUIRE(ck);
    CHECK(ck->tied);
    check_llama_values(ck, s, "model.");
    gr_ckpt_free(ck);
    free(d);
}

/* ---- synthetic GPT-2 safetensors ------------------------------------------------------------- */

static const hf_spec gpt2_spec = {8, 2, 2, 2, 16, 11, 6};

static void test_gpt2_safetensors(void)
{
    const hf_spec *s = &gpt2_spec;
    char cfg[1024];
    gpt2_config(cfg, sizeof cfg, s);
    for (int variant = 0; variant < 2; variant++) {
        hf_opts o = {0};
        o.no_prefix = variant;
        o.dtype = variant ? "F16" : "F32";
        o.lm_head = variant; /* tied config: an lm_head is ignored */
        size_t len;
        unsigned char *d = make_gpt2_st(s, &o, &len);
        gr_ckpt *ck = gr_ckpt_load_safetensors_memory(d, len, cfg, strlen(cfg), "gpt2.safetensors");
        if (!ck) fprintf(stderr, "error: %s\n", gr_error_message());
        REQUIRE(ck);
        CHECK(ck->arch == GR_ARCH_GPT2 && ck->tied);
        CHECK_EQ_INT(ck->d_ff, 16);
        CHECK_EQ_INT(ck->max_T, 6);
        CHECK_EQ_INT(ck->n_tensors, 4 + 2 * 16);
        CHECK(ck->rope_theta == 0.0f);
        const char *pf = variant ? "" : "transformer.";
        char nm[128];
        int bad = 0, C = 8, F = 16;
        snprintf(nm, sizeof nm, "%sh.1.attn.c_attn.weight", pf);
        const gr_ckpt_tensor *v = gr_ckpt_find(ck, "blk.1.attn_v.weight");
        REQUIRE(v);
        for (int o2 = 0; o2 < C; o2++)
            for (int i = 0; i < C; i++) bad += v->data[o2 * C + i] != hv(nm, i * 3 * C + 2 * C + o2);
        snprintf(nm, sizeof nm, "%sh.1.attn.c_attn.bias", pf);
        const gr_ckpt_tensor *kb = gr_ckpt_find(ck, "blk.1.attn_k.bias");
        REQUIRE(kb);
        for (int o2 = 0; o2 < C; o2++) bad += kb->data[o2] != hv(nm, C + o2);
        snprintf(nm, sizeof nm, "%sh.0.mlp.c_fc.weight", pf);
        const gr_ckpt_tensor *up = gr_ckpt_find(ck, "blk.0.ffn_up.weight");
        REQUIRE(up && up->shape[0] == F && up->shape[1] == C);
        for (int f = 0; f < F; f++)
            for (int i = 0; i < C; i++) bad += up->data[f * C + i] != hv(nm, i * F + f);
        snprintf(nm, sizeof nm, "%sln_f.bias", pf);
        const gr_ckpt_tensor *lb = gr_ckpt_find(ck, "output_norm.bias");
        REQUIRE(lb);
        for (int i = 0; i < C; i++) bad += lb->data[i] != hv(nm, i);
        CHECK_EQ_INT(bad, 0);
        CHECK_STR(ck->tensors[1].name, "position_embd.weight");
        CHECK_STR(ck->tensors[ck->n_tensors - 1].name, "output_norm.bias");
        gr_ckpt_free(ck);
        free(d);
    }
    /* gr_st reader details: metadata, find, dtype names */
    hf_opts o = {0};
    size_t len;
    unsigned char *d = make_gpt2_st(s, &o, &len);
    gr_st *st = gr_st_open_memory(d, len, "m");
    REQUIRE(st);
    CHECK_STR(gr_st_metadata(st, "format"), "pt");
    CHECK(!gr_st_metadata(st, "nope"));
    CHECK_EQ_INT(gr_st_n_tensors(st), 2 + 2 * 12 + 2);
    const gr_st_tensor *t = gr_st_find(st, "transformer.h.1.mlp.c_fc.weight");
    REQUIRE(t);
    CHECK(t->dtype == GR_ST_F32 && t->ndim == 2 && t->shape[0] == 8 && t->shape[1] == 16 && t->n == 128);
    CHECK(gr_st_tensor_at(st, 0) && !gr_st_tensor_at(st, 99) && !gr_st_find(st, "x"));
    CHECK_STR(gr_st_dtype_name(GR_ST_BF16), "BF16");
    CHECK_EQ_INT(gr_st_dtype_size(GR_ST_F64), 8);
    gr_st_close(st);
    free(d);
}

/* ---- GGUF round trips (fused attn_qkv, F16, Q8_0) ----------------------------------------- */

/* Write ck as a llama.cpp-style GGUF: 2-D weights as wtype, 1-D as F32,
 * q/k/v fused into attn_qkv when fuse. */
static int ckpt_to_gguf(const gr_ckpt *ck, const char *path, gr_ggml_type wtype, int fuse)
{
    gr_gguf_builder *b = gr_gguf_builder_new();
    const char *a = gr_arch_name(ck->arch);
    char k[128];
#define KEY(s) (snprintf(k, sizeof k, "%s.%s", a, s), k)
    gr_gguf_set_str(b, "general.architecture", a);
    gr_gguf_set_u32(b, KEY("context_length"), (uint32_t)ck->max_T);
    gr_gguf_set_u32(b, KEY("embedding_length"), (uint32_t)ck->d_model);
    gr_gguf_set_u32(b, KEY("block_count"), (uint32_t)ck->n_layer);
    gr_gguf_set_u32(b, KEY("feed_forward_length"), (uint32_t)ck->d_ff);
    gr_gguf_set_u32(b, KEY("attention.head_count"), (uint32_t)ck->n_head);
    if (ck->arch == GR_ARCH_LLAMA) {
        gr_gguf_set_u32(b, KEY("attention.head_count_kv"), (uint32_t)ck->n_kv_head);
        gr_gguf_set_f32(b, KEY("attention.layer_norm_rms_epsilon"), ck->norm_eps);
        gr_gguf_set_f32(b, KEY("rope.freq_base"), ck->rope_theta);
        gr_gguf_set_u32(b, KEY("rope.dimension_count"), (uint32_t)(ck->d_model / ck->n_head));
    } else {
        gr_gguf_set_f32(b, KEY("attention.layer_norm_epsilon"), ck->norm_eps);
    }
#undef KEY
    float *fused[2 * GR_CKPT_MAX_LAYERS] = {0};
    int nf = 0, rc = 0;
    for (int i = 0; i < ck->n_tensors && !rc; i++) {
        const gr_ckpt_tensor *t = &ck->tensors[i];
        int64_t ne[2] = {t->ndim == 2 ? t->shape[1] : t->shape[0], t->shape[0]};
        gr_ggml_type ty = t->ndim == 2 ? wtype : GR_GGML_F32;
        if (fuse && (strstr(t->name, ".attn_k.") || strstr(t->name, ".attn_v."))) continue;
        if (fuse && strstr(t->name, ".attn_q.")) {
            char kn[64], vn[64], qn[64];
            int l = atoi(t->name + 4);
            const char *suf = strrchr(t->name, '.');
            snprintf(kn, sizeof kn, "blk.%d.attn_k%s", l, suf);
            snprintf(vn, sizeof vn, "blk.%d.attn_v%s", l, suf);
            snprintf(qn, sizeof qn, "blk.%d.attn_qkv%s", l, suf);
            const gr_ckpt_tensor *kt = gr_ckpt_find(ck, kn), *vt = gr_ckpt_find(ck, vn);
            float *f = fused[nf++] = malloc((size_t)(t->n + kt->n + vt->n) * sizeof(float));
            memcpy(f, t->data, (size_t)t->n * 4);
            memcpy(f + t->n, kt->data, (size_t)kt->n * 4);
            memcpy(f + t->n + kt->n, vt->data, (size_t)vt->n * 4);
            if (t->ndim == 2) ne[1] = t->shape[0] + kt->shape[0] + vt->shape[0];
            else ne[0] = t->shape[0] + kt->shape[0] + vt->shape[0];
            rc = gr_gguf_add_tensor_f32(b, qn, ty, (uint32_t)t->ndim, ne, f);
            continue;
        }
        rc = gr_gguf_add_tensor_f32(b, t->name, ty, (uint32_t)t->ndim, ne, t->data);
    }
    if (!rc) rc = gr_gguf_write(b, path);
    gr_gguf_builder_free(b);
    for (int i = 0; i < nf; i++) free(fused[i]);
    return rc;
}

/* b's tensors == a's after a round trip through type ty (2-D) / F32 (1-D). */
static int same_after(const gr_ckpt *a, const gr_ckpt *b, gr_ggml_type ty)
{
    if (a->n_tensors != b->n_tensors) return 0;
    int ok = 1;
    for (int i = 0; i < a->n_tensors; i++) {
        const gr_ckpt_tensor *x = &a->tensors[i], *y = gr_ckpt_find(b, x->name);
        if (!y || y->n != x->n || y->shape[0] != x->shape[0]) { ok = 0; continue; }
        float *want = malloc((size_t)x->n * sizeof(float));
        if (x->ndim == 2 && ty != GR_GGML_F32) {
            size_t nb;
            gr_ggml_nbytes(ty, x->n, &nb);
            void *q = malloc(nb);
            gr_ggml_from_f32(ty, x->data, q, x->n);
            gr_ggml_to_f32(ty, q, want, x->n);
            free(q);
        } else memcpy(want, x->data, (size_t)x->n * sizeof(float));
        ok &= same_values(y, want, x->n);
        free(want);
    }
    return ok;
}

static void test_gguf_roundtrip(void)
{
    char cfg[2048];
    size_t len;
    hf_opts o = {0};
    unsigned char *d = make_gpt2_st(&gpt2_spec, &o, &len);
    gpt2_config(cfg, sizeof cfg, &gpt2_spec);
    gr_ckpt *g = gr_ckpt_load_safetensors_memory(d, len, cfg, strlen(cfg), "gpt2");
    free(d);
    REQUIRE(g);
    const char *p1 = tmp_path("gpt2_f16.gguf");
    REQUIRE(ckpt_to_gguf(g, p1, GR_GGML_F16, 1) == GR_OK);
    gr_ckpt *g2 = gr_ckpt_load(p1);
    if (!g2) fprintf(stderr, "error: %s\n", gr_error_message());
    REQUIRE(g2);
    CHECK(g2->arch == GR_ARCH_GPT2 && g2->tied && g2->d_ff == 16 && g2->max_T == 6 && g2->vocab == 11);
    CHECK(same_after(g, g2, GR_GGML_F16));
    gr_ckpt_free(g2);

    o.lm_head = 1;
    d = make_llama_st(&llama_spec, &o, &len);
    llama_config(cfg, sizeof cfg, &llama_spec, 0);
    gr_ckpt *l = gr_ckpt_load_safetensors_memory(d, len, cfg, strlen(cfg), "llama");
    free(d);
    REQUIRE(l);
    static const struct { gr_ggml_type t; int fuse; } v[] = {{GR_GGML_Q8_0, 0}, {GR_GGML_BF16, 1}, {GR_GGML_F32, 0}};
    for (int i = 0; i < 3; i++) {
        const char *p2 = tmp_path("llama.gguf");
        REQUIRE(ckpt_to_gguf(l, p2, v[i].t, v[i].fuse) == GR_OK);
        gr_ckpt *l2 = gr_ckpt_load_gguf(p2);
        if (!l2) fprintf(stderr, "error: %s\n", gr_error_message());
        REQUIRE(l2);
        CHECK(l2->arch == GR_ARCH_LLAMA && !l2->tied && l2->n_kv_head == 2 && l2->rope_theta == 500000.0f);
        CHECK(same_after(l, l2, v[i].t));
        gr_ckpt_free(l2);
    }
    gr_ckpt_free(l);
    gr_ckpt_free(g);
}

/* ---- format detection and the transformer config ------------------------------------------- */

static void test_load_dispatch(void)
{
    char cfg[2048];
    size_t len;
    hf_opts o = {0};
    unsigned char *d = make_llama_st(&llama_spec, &o, &len);
    llama_config(cfg, sizeof cfg, &llama_spec, 1);
    char dir[600];
    snprintf(dir, sizeof dir, "%s/hf_llama", gr_test_tmpdir());
    mkdir(dir, 0700);
    const char *stp = tmp_path("hf_llama/model.safetensors"), *cfp = tmp_path("hf_llama/config.json");
    REQUIRE(write_bytes(stp, d, len) == 0 && write_bytes(cfp, cfg, strlen(cfg)) == 0);
    /* a safetensors file without the extension is sniffed */
    const char *noext = tmp_path("hf_llama/weights");
    REQUIRE(write_bytes(noext, d, len) == 0);
    free(d);
    const char *paths[] = {dir, stp, noext};
    for (int i = 0; i < 3; i++) {
        gr_ckpt *ck = gr_ckpt_load(paths[i]);
        if (!ck) fprintf(stderr, "error: %s\n", gr_error_message());
        REQUIRE(ck);
        CHECK(ck->arch == GR_ARCH_LLAMA && ck->tied && ck->n_layer == 2);
        gr_ckpt_free(ck);
    }
    gr_ckpt *ck = gr_ckpt_load_safetensors(stp, cfp);
    CHECK(ck != NULL);
    gr_ckpt_free(ck);

    CHECK(!gr_ckpt_load(tmp_path("does-not-exist")));
    CHECK_HAS(gr_error_message(), "cannot open");
    CHECK(!gr_ckpt_load(gr_test_tmpdir()));
    CHECK_HAS(gr_error_message(), "no model.safetensors");
    const char *txt = gr_test_write_file("notes.txt", "hello, this is not a checkpoint");
    CHECK(!gr_ckpt_load(txt));
    CHECK_HAS(gr_error_message(), "unknown checkpoint format");
    /* a directory missing config.json */
    char dir2[600];
    snprintf(dir2, sizeof dir2, "%s/no_config", gr_test_tmpdir());
    mkdir(dir2, 0700);
    REQUIRE(write_bytes(tmp_path("no_config/model.safetensors"), "\0\0\0\0\0\0\0\0", 8) == 0);
    CHECK(!gr_ckpt_load(dir2));
    CHECK_HAS(gr_error_message(), "config.json");
    CHECK_STR(gr_arch_name(GR_ARCH_GPT2), "gpt2");
    CHECK_STR(gr_arch_name((gr_arch)7), "?");
}

/* Every tensor a gr_ckpt holds (but the embeddings and the head) is a
 * parameter view of a transformer built from gr_ckpt_tfm_config, same shape. */
static void check_tfm_compat(const gr_ckpt *ck)
{
    gr_tfm_config cfg;
    gr_ckpt_tfm_config(ck, &cfg);
    gr_tfm *m = gr_tfm_init(&cfg, 1);
    if (!m) fprintf(stderr, "error: %s\n", gr_error_message());
    REQUIRE(m);
    const gr_tfm_param_view *views;
    int nv = gr_tfm_param_views(m, &views), matched = 0;
    for (int i = 0; i < ck->n_tensors; i++) {
        const gr_ckpt_tensor *t = &ck->tensors[i];
        if (!strcmp(t->name, "token_embd.weight") || !strcmp(t->name, "output.weight")) continue;
        const char *nm = strcmp(t->name, "position_embd.weight") ? t->name : "pos_embd";
        int found = 0;
        for (int v = 0; v < nv; v++) {
            if (strcmp(views[v].name, nm)) continue;
            found = views[v].ndim == t->ndim && views[v].shape[0] == t->shape[0] &&
                    (t->ndim == 1 || views[v].shape[1] == t->shape[1]);
        }
        if (!found) gr_test_fail(__FILE__, __LINE__, "%s has no matching transformer view", t->name);
        matched += found;
    }
    CHECK_EQ_INT(matched + 1 + !ck->tied, ck->n_tensors);
    int64_t n = 0;
    for (int i = 0; i < ck->n_tensors; i++) n += ck->tensors[i].n;
    int64_t head = ck->tied ? 0 : (int64_t)ck->vocab * ck->d_model;
    CHECK_EQ_INT(gr_tfm_n_params(m), n - (int64_t)ck->vocab * ck->d_model - head);
    gr_tfm_free(m);
}

static void test_tfm_config(void)
{
    char cfg[2048];
    size_t len;
    hf_opts o = {0};
    unsigned char *d = make_gpt2_st(&gpt2_spec, &o, &len);
    gpt2_config(cfg, sizeof cfg, &gpt2_spec);
    gr_ckpt *g = gr_ckpt_load_safetensors_memory(d, len, cfg, strlen(cfg), "gpt2");
    free(d);
    REQUIRE(g);
    gr_tfm_config c;
    gr_ckpt_tfm_config(g, &c);
    CHECK(c.norm == GR_NORM_LAYER && c.act == GR_ACT_GELU_TANH && c.pos == GR_POS_LEARNED && c.bias && c.final_norm);
    CHECK_EQ_INT(c.max_T, 6);
    check_tfm_compat(g);
    gr_ckpt_free(g);
    int32_t h[7] = {8, 12, 2, 2, 1, -10, 4};
    d = make_llama2c(h, &len);
    gr_ckpt *l = gr_ckpt_load_llama2c_memory(d, len, "l2c");
    free(d);
    REQUIRE(l);
    gr_ckpt_tfm_config(l, &c);
    CHECK(c.norm == GR_NORM_RMS && c.act == GR_ACT_SWIGLU && c.pos == GR_POS_ROPE && !c.bias);
    CHECK_EQ_INT(c.n_kv_head, 1);
    check_tfm_compat(l);
    gr_ckpt_free(l);
}

/* ---- end to end: imported weights in the transformer reproduce published greedy outputs ---- */

/* Load ck into a transformer (embedding and tied head kept here) and extend
 * ids[0..n) greedily up to n_max tokens, stopping if stop_id is produced.
 * Returns the new length, or -1 on error. */
static int greedy(const gr_ckpt *ck, int32_t *ids, int n, int n_max, int32_t stop_id)
{
    gr_tfm_config cfg;
    gr_ckpt_tfm_config(ck, &cfg);
    gr_tfm *m = gr_tfm_init(&cfg, 1);
    if (!m) return -1;
    for (int i = 0; i < ck->n_tensors; i++) {
        const gr_ckpt_tensor *t = &ck->tensors[i];
        if (!strcmp(t->name, "token_embd.weight")) continue;
        float *p = gr_tfm_param(m, strcmp(t->name, "position_embd.weight") ? t->name : "pos_embd");
        if (!p) { gr_tfm_free(m); return -1; }
        memcpy(p, t->data, (size_t)t->n * sizeof(float));
    }
    const gr_ckpt_tensor *E = gr_ckpt_find(ck, "token_embd.weight");
    int C = ck->d_model;
    float *x = malloc((size_t)n_max * C * sizeof(float)), *out = malloc((size_t)n_max * C * sizeof(float));
    int32_t *pos = malloc((size_t)n_max * sizeof(int32_t));
    while (n < n_max) {
        int32_t off[2] = {0, n};
        for (int t = 0; t < n; t++) {
            memcpy(x + (int64_t)t * C, E->data + (int64_t)ids[t] * C, (size_t)C * sizeof(float));
            pos[t] = t;
        }
        if (gr_tfm_forward(m, x, pos, off, 1, n, out, 0, NULL)) { n = -1; break; }
        int best = 0;
        double bv = -INFINITY;
        for (int v = 0; v < ck->vocab; v++) {
            double a = 0;
            for (int c = 0; c < C; c++) a += (double)out[(int64_t)(n - 1) * C + c] * E->data[(int64_t)v * C + c];
            if (a > bv) { bv = a; best = v; }
        }
        if (best == stop_id) break;
        ids[n++] = best;
    }
    free(x);
    free(out);
    free(pos);
    gr_tfm_free(m);
    return n;
}

static void test_end_to_end(void)
{
    const char *gpt2 = gr_test_shared("models/tiny-random-gpt2");
    const char *bin = gr_test_shared("models/stories260K/stories260K.bin");
    const char *tokp = gr_test_shared("models/stories260K/tok512.bin");
    const char *want = gr_test_shared("models/stories260K/expected_greedy_n200.txt");
    if (!gpt2 || !bin || !tokp || !want) { gr_test_skip("../shared/models absent"); return; }
    /* tiny-random-gpt2: expected_greedy.json (onnxruntime's test vectors) */
    gr_ckpt *ck = gr_ckpt_load(gpt2);
    REQUIRE(ck);
    int32_t a[10] = {0, 0, 0, 52}, b[10] = {0, 0, 195, 731};
    const int32_t wa[10] = {0, 0, 0, 52, 204, 204, 204, 204, 204, 204}, wb[10] = {0, 0, 195, 731, 731, 114, 114, 114, 114, 114};
    CHECK_EQ_INT(greedy(ck, a, 4, 10, -1), 10);
    CHECK_EQ_INT(greedy(ck, b, 4, 10, -1), 10);
    CHECK(!memcmp(a, wa, sizeof a) && !memcmp(b, wb, sizeof b));
    gr_ckpt_free(ck);
    /* stories260K from BOS at temperature 0: a prefix of llama2.c's expected text */
    ck = gr_ckpt_load(bin);
    gr_tokenizer *tok = gr_tokenizer_load_llama2c(tokp);
    REQUIRE(ck && tok);
    int32_t ids[48] = {1};
    int n = greedy(ck, ids, 1, 48, 1);
    CHECK_EQ_INT(n, 48);
    size_t len, wlen;
    char *text = n > 1 ? gr_tokenizer_decode(tok, ids + 1, n - 1, &len) : NULL;
    unsigned char *exp = read_bytes(want, &wlen);
    REQUIRE(text && exp);
    const char *t = text[0] == ' ' ? text + 1 : text; /* llama2.c strips the space after BOS */
    if (strncmp(t, (const char *)exp, strlen(t)))
        gr_test_fail(__FILE__, __LINE__, "greedy text \"%s\" is not a prefix of the expected output", t);
    CHECK(strlen(t) > 100);
    gr_free(text);
    free(exp);
    gr_tokenizer_free(tok);
    gr_ckpt_free(ck);
}

/* ---- fuzz seeds ------------------------------------------------------------------------------------
 * fuzz_safetensors input: byte 0 selects the config (0 tiny GPT-2, 1 tiny Llama
 * untied, 2 tiny Llama tied, 3 config in the input: u16 length + JSON), the rest
 * is the safetensors file. These specs must match fuzz/fuzz_safetensors.c. */
static void save_seed(const char *sub, const char *name, const void *pre, size_t npre, const void *d, size_t n)
{
    const char *dir = getenv("GENREC_WRITE_FUZZ_CORPUS");
    if (!dir) return;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/%s", dir, sub, name);
    FILE *f = fopen(path, "wb");
    if (!f) { fprintf(stderr, "cannot write %s\n", path); return; }
    fwrite(pre, 1, npre, f);
    fwrite(d, 1, n, f);
    fclose(f);
}

static void test_fuzz_seeds(void)
{
    if (!getenv("GENREC_WRITE_FUZZ_CORPUS")) { gr_test_skip("GENREC_WRITE_FUZZ_CORPUS not set"); return; }
    const hf_spec g = {8, 1, 2, 2, 16, 11, 6}, l = {8, 1, 2, 1, 12, 11, 16};
    size_t len;
    hf_opts o = {0};
    unsigned char sel = 0, *d = make_gpt2_st(&g, &o, &len);
    save_seed("safetensors", "gpt2_f32.bin", &sel, 1, d, len);
    free(d);
    o.lm_head = 1;
    o.dtype = "F16";
    sel = 1;
    d = make_llama_st(&l, &o, &len);
    save_seed("safetensors", "llama_f16_untied.bin", &sel, 1, d, len);
    free(d);
    hf_opts ot = {0};
    ot.dtype = "BF16";
    ot.no_prefix = 1;
    sel = 2;
    d = make_llama_st(&l, &ot, &len);
    save_seed("safetensors", "llama_bf16_tied.bin", &sel, 1, d, len);
    free(d);
    char cfg[2048];
    unsigned char pre[3] = {3, 0, 0};
    gpt2_config(cfg, sizeof cfg, &g);
    uint16_t cl = (uint16_t)strlen(cfg);
    memcpy(pre + 1, &cl, 2);
    hf_opts og = {0};
    og.no_prefix = 1;
    d = make_gpt2_st(&g, &og, &len);
    unsigned char *both = malloc(cl + len);
    memcpy(both, cfg, cl);
    memcpy(both + cl, d, len);
    save_seed("safetensors", "config_gpt2.bin", pre, 3, both, cl + len);
    free(both);
    free(d);
    int32_t h[7] = {8, 12, 1, 2, 1, 11, 4};
    d = make_llama2c(h, &len);
    save_seed("llama2c", "tied.bin", "", 0, d, len);
    free(d);
    h[5] = -11;
    h[2] = 2;
    d = make_llama2c(h, &len);
    save_seed("llama2c", "untied.bin", "", 0, d, len);
    free(d);
}

int main(void)
{
    GR_RUN(test_llama2c_synthetic);
    GR_RUN(test_stories260k);
    GR_RUN(test_tiny_random_gpt2);
    GR_RUN(test_llama_safetensors);
    GR_RUN(test_gpt2_safetensors);
    GR_RUN(test_gguf_roundtrip);
    GR_RUN(test_load_dispatch);
    GR_RUN(test_tfm_config);
    GR_RUN(test_end_to_end);
    GR_RUN(test_fuzz_seeds);
    return gr_test_finish();
}
