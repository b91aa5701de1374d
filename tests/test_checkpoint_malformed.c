/* Checkpoint importers on malformed input: every case must fail with an
 * error naming the problem (checked by a substring), never crash. Covers the
 * safetensors container, Hugging Face configs and tensor sets, llama2.c
 * headers, and GGUF checkpoints. */
#include "gr_test.h"
#include "ckpt_testutil.h"

#include "genrec/checkpoint.h"
#include "genrec/common.h"
#include "genrec/gguf.h"

#include <stdlib.h>
#include <string.h>

/* gr_st_open_memory on header text + n data bytes fails with a message containing want. */
static void st_fails(const char *header, size_t n_data, const char *want, int line)
{
    size_t len;
    unsigned char *d = st_raw(header, n_data, &len);
    gr_error_clear();
    gr_st *st = gr_st_open_memory(d, len, "bad.safetensors");
    if (st) gr_test_fail(__FILE__, line, "accepted: %s", header);
    else if (!strstr(gr_error_message(), want) || !strstr(gr_error_message(), "bad.safetensors"))
        gr_test_fail(__FILE__, line, "error \"%s\" lacks \"%s\"", gr_error_message(), want);
    gr_st_close(st);
    free(d);
}
#define ST_FAILS(h, n, want) st_fails(h, n, want, __LINE__)

static void test_safetensors_container(void)
{
    /* a valid baseline */
    size_t len;
    unsigned char *d = st_raw("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                              "\"b\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[8,16]}}  ", 16, &len);
    gr_st *st = gr_st_open_memory(d, len, "ok");
    REQUIRE(st);
    CHECK_EQ_INT(gr_st_n_tensors(st), 2);
    float f[4];
    CHECK(gr_st_to_f32(gr_st_find(st, "b"), f) == GR_OK);
    gr_st_close(st);

    /* truncated: the header length itself, the header, the data */
    gr_error_clear();
    CHECK(!gr_st_open_memory(d, 5, "bad.safetensors"));
    CHECK_HAS(gr_error_message(), "truncated");
    CHECK(!gr_st_open_memory(d, 30, "bad.safetensors"));
    CHECK_HAS(gr_error_message(), "runs past the end");
    CHECK(!gr_st_open_memory(d, len - 3, "bad.safetensors"));
    CHECK_HAS(gr_error_message(), "outside the data region");
    CHECK(!gr_st_open_memory(NULL, 0, "bad.safetensors"));
    CHECK_HAS(gr_error_message(), "truncated");
    uint64_t huge = (uint64_t)1 << 40;
    memcpy(d, &huge, 8);
    CHECK(!gr_st_open_memory(d, len, "bad.safetensors"));
    CHECK_HAS(gr_error_message(), "exceeds");
    huge = UINT64_MAX;
    memcpy(d, &huge, 8);
    CHECK(!gr_st_open_memory(d, len, "bad.safetensors"));
    CHECK_HAS(gr_error_message(), "exceeds");
    free(d);

    ST_FAILS("{\"a\": {\"dtype\":", 0, "header");
    ST_FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],}}", 8, "header");
    ST_FAILS("[1, 2]", 0, "not a JSON object");
    ST_FAILS("{\"a\":[1]}", 0, "not a JSON object");
    ST_FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,100]}}", 16, "outside the data region");
    ST_FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 16, "outside the data region");
    ST_FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
             "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 16, "overlap");
    ST_FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 16, "wrong size");
    ST_FAILS("{\"a\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[0,8]}}", 16, "wrong size");
    ST_FAILS("{\"a\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 16, "unknown dtype 'F33'");
    ST_FAILS("{\"a\":{\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 16, "unknown dtype");
    ST_FAILS("{\"a\":{\"dtype\":7,\"shape\":[2],\"data_offsets\":[0,8]}}", 16, "'dtype'");
    ST_FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 16, "dimension 0 is -2");
    ST_FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,0],\"data_offsets\":[0,0]}}", 16, "dimension 1 is 0");
    ST_FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 16, "not an integer");
    ST_FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,8]}}", 16,
             "overflows");
    ST_FAILS("{\"a\":{\"dtype\":\"F64\",\"shape\":[2305843009213693952],\"data_offsets\":[0,8]}}", 16, "wrong size");
    ST_FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],\"data_offsets\":[0,8]}}", 16, "9 dims");
    ST_FAILS("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 16, "'shape'");
    ST_FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 16, "'data_offsets'");
    ST_FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 16, "'data_offsets'");
    ST_FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 16, "'data_offsets'");
    ST_FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0.0,8]}}", 16, "'data_offsets'");
    ST_FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
             "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16, "duplicate tensor 'a'");
    ST_FAILS("{\"\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 16, "empty");
    ST_FAILS("{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 16, "NUL");
    ST_FAILS("{\"__metadata__\":{\"format\":3}}", 0, "__metadata__");
    ST_FAILS("{\"__metadata__\":[]}", 0, "__metadata__");
    ST_FAILS("{\"__metadata__\":{},\"__metadata__\":{}}", 0, "duplicate '__metadata__'");
    ST_FAILS("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}\x01", 16, "header");

    /* non-float dtypes parse but do not convert */
    d = st_raw("{\"i\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,8]}}", 8, &len);
    st = gr_st_open_memory(d, len, "ok");
    REQUIRE(st);
    const gr_st_tensor *t = gr_st_find(st, "i");
    REQUIRE(t);
    CHECK_EQ_INT(t->ndim, 0);
    CHECK_EQ_INT(t->n, 1);
    CHECK(gr_st_to_f32(t, f) == GR_ERR);
    CHECK_HAS(gr_error_message(), "I64");
    gr_st_close(st);
    free(d);
}

/* ---- Hugging Face configs and tensor sets ------------------------------------------------------------ */

static const hf_spec ls = {16, 2, 4, 2, 24, 20, 32};

static void hf_fails(const unsigned char *d, size_t len, const char *cfg, const char *want, int line)
{
    gr_error_clear();
    gr_ckpt *ck = gr_ckpt_load_safetensors_memory(d, len, cfg, strlen(cfg), "bad.safetensors");
    if (ck) gr_test_fail(__FILE__, line, "accepted (expected \"%s\")", want);
    else if (!strstr(gr_error_message(), want))
        gr_test_fail(__FILE__, line, "error \"%s\" lacks \"%s\"", gr_error_message(), want);
    gr_ckpt_free(ck);
}
#define HF_FAILS(d, len, cfg, want) hf_fails(d, len, cfg, want, __LINE__)

/* Generate a Llama file with options o and expect the error want. */
static void llama_fails(const hf_opts *o, const char *want, int line)
{
    char cfg[2048];
    size_t len;
    unsigned char *d = make_llama_st(&ls, o, &len);
    llama_config(cfg, sizeof cfg, &ls, !o->lm_head);
    hf_fails(d, len, cfg, want, line);
    free(d);
}

static void test_hf_tensors(void)
{
    hf_opts o = {0};
    o.skip = "model.layers.1.mlp.down_proj.weight";
    llama_fails(&o, "missing tensor 'blk.1.ffn_down.weight' ('model.layers.1.mlp.down_proj.weight')", __LINE__);
    o = (hf_opts){0};
    o.skip = "model.embed_tokens.weight";
    llama_fails(&o, "missing tensor 'token_embd.weight'", __LINE__);
    o = (hf_opts){0};
    o.lm_head = 1;
    o.skip = "lm_head.weight";
    llama_fails(&o, "missing tensor 'output.weight' ('lm_head.weight') (the head is not tied", __LINE__);
    o = (hf_opts){0};
    o.bad_shape = "model.layers.0.self_attn.k_proj.weight";
    llama_fails(&o, "tensor 'model.layers.0.self_attn.k_proj.weight' (blk.0.attn_k.weight): shape [9, 16], expected [8, 16]",
                __LINE__);
    o = (hf_opts){0};
    o.bad_shape = "model.norm.weight";
    llama_fails(&o, "shape [17], expected [16]", __LINE__);
    o = (hf_opts){0};
    o.extra = "model.layers.0.self_attn.q_norm.weight";
    llama_fails(&o, "tensor 'model.layers.0.self_attn.q_norm.weight': unknown name", __LINE__);
    o.extra = "model.layers.2.input_layernorm.weight";
    llama_fails(&o, "unknown name", __LINE__);
    o.extra = "model.layers.01.input_layernorm.weight";
    llama_fails(&o, "unknown name", __LINE__);
    o.extra = "norm.weight";
    llama_fails(&o, "tensor 'norm.weight': duplicate", __LINE__);
    o.extra = "model.layers.1.self_attn.rotary_emb.inv_freq"; /* a known buffer: skipped, so the file loads */
    {
        char cfg[2048];
        size_t len;
        unsigned char *d = make_llama_st(&ls, &o, &len);
        llama_config(cfg, sizeof cfg, &ls, 1);
        gr_ckpt *ck = gr_ckpt_load_safetensors_memory(d, len, cfg, strlen(cfg), "ok");
        CHECK(ck != NULL);
        gr_ckpt_free(ck);
        free(d);
    }
    o.extra = "model.layers.0.extra";
    o.extra_dtype = "I32";
    llama_fails(&o, "dtype I32 is not a float type", __LINE__);

    /* GPT-2: bad c_attn shape, unknown names, buffers skipped */
    const hf_spec gs = {8, 2, 2, 2, 16, 11, 6};
    char cfg[2048];
    gpt2_config(cfg, sizeof cfg, &gs);
    size_t len;
    hf_opts g = {0};
    g.bad_shape = "transformer.h.1.attn.c_attn.weight";
    unsigned char *d = make_gpt2_st(&gs, &g, &len);
    HF_FAILS(d, len, cfg, "tensor 'transformer.h.1.attn.c_attn.weight': shape does not match [n_embd, 3*n_embd]");
    free(d);
    g = (hf_opts){0};
    g.bad_shape = "transformer.h.0.mlp.c_fc.weight";
    d = make_gpt2_st(&gs, &g, &len);
    HF_FAILS(d, len, cfg, "(blk.0.ffn_up.weight): shape [16, 9], expected [16, 8]");
    free(d);
    g = (hf_opts){0};
    g.skip = "transformer.h.1.attn.c_attn.bias";
    d = make_gpt2_st(&gs, &g, &len);
    HF_FAILS(d, len, cfg, "missing tensor 'blk.1.attn_q.bias' ('transformer.h.1.attn.c_attn.bias')");
    free(d);
    g = (hf_opts){0};
    g.extra = "transformer.h.0.attn.masked_bias";
    d = make_gpt2_st(&gs, &g, &len);
    gr_ckpt *ck = gr_ckpt_load_safetensors_memory(d, len, cfg, strlen(cfg), "ok");
    CHECK(ck != NULL);
    gr_ckpt_free(ck);
    free(d);
    g.extra = "transformer.h.0.attn.c_attn";
    d = make_gpt2_st(&gs, &g, &len);
    HF_FAILS(d, len, cfg, "unknown name");
    /* the GPT-2 file with a Llama config: names do not map */
    char lcfg[2048];
    llama_config(lcfg, sizeof lcfg, &ls, 1);
    HF_FAILS(d, len, lcfg, "unknown name");
    /* and a corrupt container is reported as such */
    HF_FAILS(d, 7, cfg, "truncated");
    free(d);
}

static void test_hf_config(void)
{
    hf_opts o = {0};
    size_t len;
    unsigned char *d = make_llama_st(&ls, &o, &len);
    const char *base = "\"model_type\":\"llama\",\"hidden_size\":16,\"num_hidden_layers\":2,\"num_attention_heads\":4,"
                       "\"num_key_value_heads\":2,\"intermediate_size\":24,\"vocab_size\":20,"
                       "\"max_position_embeddings\":32,\"tie_word_embeddings\":true";
    char cfg[2048];
#define CFG(extra, want) do { snprintf(cfg, sizeof cfg, "{%s%s}", base, extra); HF_FAILS(d, len, cfg, want); } while (0)
    snprintf(cfg, sizeof cfg, "{%s}", base);
    gr_ckpt *ck = gr_ckpt_load_safetensors_memory(d, len, cfg, strlen(cfg), "ok");
    CHECK(ck != NULL);
    gr_ckpt_free(ck);
    CFG(",\"rope_scaling\":{\"rope_type\":\"llama3\"}", "rope_scaling");
    CFG(",\"hidden_act\":\"gelu\"", "field 'hidden_act' = 'gelu'");
    CFG(",\"attention_bias\":true", "attention_bias");
    CFG(",\"mlp_bias\":true", "mlp_bias");
    CFG(",\"head_dim\":8", "head_dim");
    CFG(",\"rope_theta\":-1", "rope_theta");
    CFG(",\"rms_norm_eps\":0", "rms_norm_eps");
    snprintf(cfg, sizeof cfg, "{%s}", base);
    memcpy(strstr(cfg, "true"), "1   ", 4);
    HF_FAILS(d, len, cfg, "field 'tie_word_embeddings' must be true or false");
    HF_FAILS(d, len, "{\"model_type\":\"bert\"}", "field 'model_type' = 'bert'");
    HF_FAILS(d, len, "{\"hidden_size\":16}", "'model_type' is missing");
    HF_FAILS(d, len, "[]", "not a JSON object");
    HF_FAILS(d, len, "{\"model_type\":\"llama\",", "config.json");
    HF_FAILS(d, len, "", "config.json");
    HF_FAILS(d, len, "{\"model_type\":\"llama\",\"num_hidden_layers\":2}", "field 'hidden_size' is missing");
    snprintf(cfg, sizeof cfg, "{%s}", base);
    char *p = strstr(cfg, "\"num_attention_heads\":4");
    p[22] = '3';
    HF_FAILS(d, len, cfg, "field 'n_head' = 3: does not divide d_model");
    snprintf(cfg, sizeof cfg, "{%s}", base);
    p = strstr(cfg, "\"num_key_value_heads\":2");
    p[22] = '3';
    HF_FAILS(d, len, cfg, "field 'n_kv_head' = 3: does not divide n_head");
    snprintf(cfg, sizeof cfg, "{%s}", base);
    p = strstr(cfg, "\"num_hidden_layers\":2");
    memcpy(p + 20, "9", 1);
    HF_FAILS(d, len, cfg, "missing tensor 'blk.2.attn_norm.weight'");
    HF_FAILS(d, len, "{\"model_type\":\"llama\",\"hidden_size\":16,\"num_hidden_layers\":99999,\"num_attention_heads\":4,"
             "\"intermediate_size\":24,\"vocab_size\":20,\"max_position_embeddings\":32}", "field 'n_layer' = 99999");
    HF_FAILS(d, len, "{\"model_type\":\"llama\",\"hidden_size\":-16}", "field 'hidden_size' = -16");
    HF_FAILS(d, len, "{\"model_type\":\"llama\",\"hidden_size\":1.5}", "field 'hidden_size' must be an integer");
    HF_FAILS(d, len, "{\"model_type\":\"llama\",\"hidden_size\":99999999999}", "field 'hidden_size'");
    free(d);
    /* GPT-2 specifics */
    const hf_spec gs = {8, 1, 2, 2, 32, 11, 6};
    d = make_gpt2_st(&gs, &o, &len);
    HF_FAILS(d, len, "{\"model_type\":\"gpt2\",\"n_embd\":8,\"n_layer\":1,\"n_head\":2,\"vocab_size\":11,"
             "\"n_positions\":6,\"activation_function\":\"relu\"}", "activation_function");
    snprintf(cfg, sizeof cfg, "{\"model_type\":\"gpt2\",\"n_embd\":8,\"n_layer\":1,\"n_head\":2,\"vocab_size\":11,"
             "\"n_positions\":6,\"n_inner\":null}");
    ck = gr_ckpt_load_safetensors_memory(d, len, cfg, strlen(cfg), "ok"); /* n_inner null -> 4 * n_embd */
    CHECK(ck && ck->d_ff == 32);
    gr_ckpt_free(ck);
    HF_FAILS(d, len, "{\"model_type\":\"gpt2\",\"n_embd\":8,\"n_layer\":1,\"n_head\":2,\"vocab_size\":11,"
             "\"n_positions\":7}", "(position_embd.weight): shape [6, 8], expected [7, 8]");
    HF_FAILS(d, len, "{\"model_type\":\"gpt2\",\"n_embd\":8,\"n_layer\":1,\"n_head\":2,\"vocab_size\":11,"
             "\"n_positions\":6,\"tie_word_embeddings\":false}", "missing tensor 'output.weight'");
    free(d);
#undef CFG
}

/* ---- llama2.c --------------------------------------------------------------------------------------- */

static void l2c_fails(const void *d, size_t n, const char *want, int line)
{
    gr_error_clear();
    gr_ckpt *ck = gr_ckpt_load_llama2c_memory(d, n, "bad.bin");
    if (ck) gr_test_fail(__FILE__, line, "accepted (expected \"%s\")", want);
    else if (!strstr(gr_error_message(), want) || !strstr(gr_error_message(), "bad.bin"))
        gr_test_fail(__FILE__, line, "error \"%s\" lacks \"%s\"", gr_error_message(), want);
    gr_ckpt_free(ck);
}
#define L2C_FAILS(d, n, want) l2c_fails(d, n, want, __LINE__)

static void hdr_fails(int32_t a, int32_t b, int32_t c, int32_t dd, int32_t e, int32_t f, int32_t g, const char *want, int line)
{
    unsigned char buf[64] = {0};
    int32_t h[7] = {a, b, c, dd, e, f, g};
    memcpy(buf, h, 28);
    l2c_fails(buf, sizeof buf, want, line);
}
#define HDR_FAILS(a, b, c, d, e, f, g, want) hdr_fails(a, b, c, d, e, f, g, want, __LINE__)

static void test_llama2c_malformed(void)
{
    int32_t h[7] = {8, 12, 2, 2, 1, 10, 4};
    size_t len;
    unsigned char *d = make_llama2c(h, &len);
    gr_ckpt *ck = gr_ckpt_load_llama2c_memory(d, len, "ok.bin");
    CHECK(ck != NULL);
    gr_ckpt_free(ck);
    L2C_FAILS(d, 10, "truncated header: 10 bytes");
    L2C_FAILS(NULL, 0, "truncated header");
    L2C_FAILS(d, len - 4, "(truncated)");
    L2C_FAILS(d, 100, "file is 100 bytes but the header");
    unsigned char *big = calloc(len + 8, 1);
    memcpy(big, d, len);
    L2C_FAILS(big, len + 1, "trailing data");
    free(big);
    free(d);
    HDR_FAILS(0, 12, 2, 2, 1, 10, 4, "header field 'dim' = 0");
    HDR_FAILS(8, -12, 2, 2, 1, 10, 4, "header field 'hidden_dim' = -12");
    HDR_FAILS(8, 12, -1, 2, 1, 10, 4, "header field 'n_layers' = -1");
    HDR_FAILS(8, 12, 2, 0, 1, 10, 4, "header field 'n_heads' = 0");
    HDR_FAILS(8, 12, 2, 2, 0, 10, 4, "header field 'n_kv_heads' = 0");
    HDR_FAILS(8, 12, 2, 2, 1, 0, 4, "header field 'vocab_size' = 0");
    HDR_FAILS(8, 12, 2, 2, 1, INT32_MIN, 4, "header field 'vocab_size'");
    HDR_FAILS(8, 12, 2, 2, 1, 10, 0, "header field 'seq_len' = 0");
    HDR_FAILS(8, 12, 2, 3, 1, 10, 4, "'n_heads' = 3 does not divide dim 8");
    HDR_FAILS(8, 12, 2, 2, 3, 10, 4, "'n_kv_heads' = 3 does not divide n_heads 2");
    HDR_FAILS(8, 12, 2, 8, 8, 10, 4, "head size 1");
    /* absurd sizes: products overflow 64 bits, or just dwarf the file */
    HDR_FAILS(1 << 30, INT32_MAX, INT32_MAX, 2, 2, -INT32_MAX, INT32_MAX, "more than 2^64 bytes");
    HDR_FAILS(65536, 1 << 30, 1 << 30, 2, 2, 1 << 30, 1 << 30, "more than 2^64 bytes");
    HDR_FAILS(1 << 30, 1 << 30, 1000, 2, 1, 32000, 1 << 30, "implies");
    HDR_FAILS(4096, 11008, 32, 32, 32, -32000, 4096, "file is 64 bytes but the header (dim 4096");
    int32_t magic[7] = {0x616b3432, 1};
    L2C_FAILS(magic, 28, "version 1/2");
}

/* ---- GGUF checkpoints ---------------------------------------------------------------------------------- */

static void gguf_fails(gr_gguf_builder *b, const char *want, int line)
{
    char path[600];
    snprintf(path, sizeof path, "%s/bad.gguf", gr_test_tmpdir());
    if (gr_gguf_write(b, path)) { gr_test_fail(__FILE__, line, "write: %s", gr_error_message()); return; }
    gr_error_clear();
    gr_ckpt *ck = gr_ckpt_load(path);
    if (ck) gr_test_fail(__FILE__, line, "accepted (expected \"%s\")", want);
    else if (!strstr(gr_error_message(), want))
        gr_test_fail(__FILE__, line, "error \"%s\" lacks \"%s\"", gr_error_message(), want);
    gr_ckpt_free(ck);
}
#define GGUF_FAILS(b, want) gguf_fails(b, want, __LINE__)

/* A 1-layer llama GGUF with dim 32 (all tensors present, F32). */
static gr_gguf_builder *llama_gguf(float *buf, const char *skip)
{
    gr_gguf_builder *b = gr_gguf_builder_new();
    gr_gguf_set_str(b, "general.architecture", "llama");
    gr_gguf_set_u32(b, "llama.context_length", 64);
    gr_gguf_set_u32(b, "llama.embedding_length", 32);
    gr_gguf_set_u32(b, "llama.block_count", 1);
    gr_gguf_set_u32(b, "llama.feed_forward_length", 64);
    gr_gguf_set_u32(b, "llama.attention.head_count", 4);
    gr_gguf_set_u32(b, "llama.attention.head_count_kv", 2);
    gr_gguf_set_f32(b, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    static const struct { const char *n; int64_t ne0, ne1; } t[] = {
        {"token_embd.weight", 32, 10}, {"blk.0.attn_norm.weight", 32, 0}, {"blk.0.attn_q.weight", 32, 32},
        {"blk.0.attn_k.weight", 32, 16}, {"blk.0.attn_v.weight", 32, 16}, {"blk.0.attn_output.weight", 32, 32},
        {"blk.0.ffn_norm.weight", 32, 0}, {"blk.0.ffn_gate.weight", 32, 64}, {"blk.0.ffn_up.weight", 32, 64},
        {"blk.0.ffn_down.weight", 64, 32}, {"output_norm.weight", 32, 0},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        if (skip && !strcmp(skip, t[i].n)) continue;
        int64_t ne[2] = {t[i].ne0, t[i].ne1};
        gr_gguf_add_tensor_f32(b, t[i].n, GR_GGML_F32, t[i].ne1 ? 2 : 1, ne, buf);
    }
    return b;
}

static void test_gguf_malformed(void)
{
    float *buf = calloc(64 * 64, sizeof(float));
    char path[600];
    snprintf(path, sizeof path, "%s/ok.gguf", gr_test_tmpdir());
    gr_gguf_builder *b = llama_gguf(buf, NULL);
    REQUIRE(gr_gguf_write(b, path) == GR_OK);
    gr_gguf_builder_free(b);
    gr_ckpt *ck = gr_ckpt_load(path);
    CHECK(ck && ck->tied && ck->n_kv_head == 2 && ck->rope_theta == 10000.0f);
    gr_ckpt_free(ck);

    b = llama_gguf(buf, "blk.0.ffn_up.weight");
    GGUF_FAILS(b, "missing tensor 'blk.0.ffn_up.weight'");
    gr_gguf_builder_free(b);
    b = llama_gguf(buf, "token_embd.weight");
    GGUF_FAILS(b, "missing tensor 'token_embd.weight'");
    gr_gguf_builder_free(b);
    b = llama_gguf(buf, "blk.0.attn_k.weight");
    int64_t ne[2] = {32, 17};
    gr_gguf_add_tensor_f32(b, "blk.0.attn_k.weight", GR_GGML_F32, 2, ne, buf);
    GGUF_FAILS(b, "(blk.0.attn_k.weight): shape [17, 32], expected [16, 32]");
    gr_gguf_builder_free(b);
    b = llama_gguf(buf, NULL);
    ne[0] = 32; ne[1] = 10;
    gr_gguf_add_tensor_f32(b, "position_embd.weight", GR_GGML_F32, 2, ne, buf);
    GGUF_FAILS(b, "a llama model with 1 layers has no such tensor");
    gr_gguf_builder_free(b);
    b = llama_gguf(buf, NULL);
    gr_gguf_add_tensor_f32(b, "blk.0.attn_qkv.weight", GR_GGML_F32, 2, ne, buf);
    GGUF_FAILS(b, "ggml shape does not match");
    gr_gguf_builder_free(b);
    b = llama_gguf(buf, NULL);
    gr_gguf_set_u32(b, "llama.rope.dimension_count", 4);
    GGUF_FAILS(b, "partial RoPE");
    gr_gguf_builder_free(b);
    b = llama_gguf(buf, NULL);
    gr_gguf_set_str(b, "general.architecture", "bert");
    GGUF_FAILS(b, "'general.architecture' = 'bert'");
    gr_gguf_builder_free(b);
    b = llama_gguf(buf, NULL);
    gr_gguf_set_str(b, "llama.block_count", "one");
    GGUF_FAILS(b, "llama.block_count");
    gr_gguf_builder_free(b);
    b = llama_gguf(buf, NULL);
    gr_gguf_set_i32(b, "llama.attention.head_count", -4);
    GGUF_FAILS(b, "'llama.attention.head_count' = -4");
    gr_gguf_builder_free(b);
    b = llama_gguf(buf, NULL);
    gr_gguf_set_u32(b, "llama.block_count", 2);
    GGUF_FAILS(b, "missing tensor 'blk.1.attn_norm.weight'");
    gr_gguf_builder_free(b);
    b = llama_gguf(buf, "blk.0.ffn_down.weight");
    ne[0] = 64; ne[1] = 32;
    gr_gguf_add_tensor(b, "blk.0.ffn_down.weight", GR_GGML_I32, 2, ne, buf, 64 * 32 * 4);
    GGUF_FAILS(b, "blk.0.ffn_down.weight");
    gr_gguf_builder_free(b);
    b = gr_gguf_builder_new();
    GGUF_FAILS(b, "general.architecture");
    gr_gguf_builder_free(b);
    free(buf);
}

int main(void)
{
    GR_RUN(test_safetensors_container);
    GR_RUN(test_hf_tensors);
    GR_RUN(test_hf_config);
    GR_RUN(test_llama2c_malformed);
    GR_RUN(test_gguf_malformed);
    return gr_test_finish();
}
