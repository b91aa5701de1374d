/* libFuzzer target: the safetensors reader and the Hugging Face importer on
 * top of it. Input: byte 0 selects the config.json (0 a tiny GPT-2, 1 a tiny
 * Llama with an lm_head, 2 the same Llama tied, 3 the config comes from the
 * input: u16 little-endian length + that many bytes of JSON); the rest is the
 * safetensors file. Seeds in fuzz/corpus/safetensors are written by
 * tests/test_checkpoint.c (GENREC_WRITE_FUZZ_CORPUS). Nothing may crash, every
 * rejection must say why, and everything accepted must be readable in
 * bounds. */
#include "genrec/checkpoint.h"
#include "genrec/common.h"

#include <stdlib.h>
#include <string.h>

static volatile uint64_t sink;

static const char *const configs[3] = {
    "{\"model_type\":\"gpt2\",\"activation_function\":\"gelu_new\",\"n_embd\":8,\"n_layer\":1,\"n_head\":2,"
    "\"n_inner\":16,\"vocab_size\":11,\"n_positions\":6,\"n_ctx\":6,\"layer_norm_epsilon\":1e-05}",
    "{\"model_type\":\"llama\",\"hidden_size\":8,\"num_hidden_layers\":1,\"num_attention_heads\":2,"
    "\"num_key_value_heads\":1,\"intermediate_size\":12,\"vocab_size\":11,\"max_position_embeddings\":16,"
    "\"rms_norm_eps\":1e-06,\"rope_theta\":500000.0,\"tie_word_embeddings\":false,\"hidden_act\":\"silu\"}",
    "{\"model_type\":\"llama\",\"hidden_size\":8,\"num_hidden_layers\":1,\"num_attention_heads\":2,"
    "\"num_key_value_heads\":1,\"intermediate_size\":12,\"vocab_size\":11,\"max_position_embeddings\":16,"
    "\"rms_norm_eps\":1e-06,\"rope_theta\":500000.0,\"tie_word_embeddings\":true,\"hidden_act\":\"silu\"}",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int sel = data[0] & 3;
    const uint8_t *st = data + 1;
    size_t st_size = size - 1;
    const char *cfg = sel < 3 ? configs[sel] : NULL;
    size_t cfg_len = cfg ? strlen(cfg) : 0;
    if (sel == 3) {
        if (st_size < 2) return 0;
        uint16_t n;
        memcpy(&n, st, 2);
        if (n > st_size - 2) return 0;
        cfg = (const char *)st + 2;
        cfg_len = n;
        st += 2 + n;
        st_size -= 2 + (size_t)n;
    }

    /* the container */
    uint64_t acc = 0;
    gr_error_clear();
    gr_st *s = gr_st_open_memory(st, st_size, "fuzz.safetensors");
    if (!s) {
        if (!gr_error_message()[0]) abort();
    } else {
        for (int64_t i = 0; i < gr_st_n_tensors(s); i++) {
            const gr_st_tensor *t = gr_st_tensor_at(s, i);
            if (gr_st_find(s, t->name) != t) abort();
            if (t->end < t->begin || (uint64_t)t->n * gr_st_dtype_size(t->dtype) != t->end - t->begin) abort();
            const uint8_t *p = t->data;
            acc += p[0] + p[t->end - t->begin - 1]; /* in bounds (every tensor has >= 1 element) */
            if (t->n <= 4096) {
                float *f = malloc((size_t)t->n * sizeof(float));
                if (f && gr_st_to_f32(t, f) == GR_OK) acc += f[0] != f[0];
                free(f);
            }
        }
        (void)gr_st_metadata(s, "format");
        gr_st_close(s);
    }

    /* the importer */
    gr_error_clear();
    gr_ckpt *ck = gr_ckpt_load_safetensors_memory(st, st_size, cfg, cfg_len, "fuzz.safetensors");
    if (!ck) {
        if (!gr_error_message()[0]) abort();
    } else {
        for (int i = 0; i < ck->n_tensors; i++) {
            const gr_ckpt_tensor *t = &ck->tensors[i];
            if (gr_ckpt_find(ck, t->name) != t || t->n != t->shape[0] * t->shape[1]) abort();
            acc += (uint64_t)(t->data[0] != t->data[t->n - 1]);
        }
        if (ck->tied == (gr_ckpt_find(ck, "output.weight") != NULL)) abort();
        gr_ckpt_free(ck);
    }
    sink = acc;
    return 0;
}
