/* libFuzzer target: the GGUF reader (and the tokenizer loader on top of it)
 * must reject or accept any byte string without crashing, and everything it
 * accepts must be readable within bounds. */
#include "genrec/common.h"
#include "genrec/gguf.h"
#include "genrec/tokenizer.h"

#include <stdlib.h>
#include <string.h>

static volatile uint64_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gr_gguf *g = gr_gguf_open_memory(data, size, "fuzz.gguf");
    if (!g) {
        if (!gr_error_message()[0]) abort(); /* every failure must say why */
        return 0;
    }
    uint64_t acc = 0;
    for (int64_t i = 0; i < gr_gguf_n_kv(g); i++) {
        const gr_gguf_kv *kv = gr_gguf_kv_at(g, i);
        if (gr_gguf_find(g, kv->key) != kv) abort();
        acc += strlen(kv->key);
        if (kv->type == GR_GGUF_STRING) acc += kv->n ? (uint8_t)kv->v.str[kv->n - 1] : 0;
        if (kv->type == GR_GGUF_ARRAY && kv->arr_type == GR_GGUF_STRING)
            for (uint64_t k = 0; k < kv->n; k++) acc += kv->str_lens[k] ? (uint8_t)kv->v.strs[k][kv->str_lens[k] - 1] : 0;
        else if (kv->type == GR_GGUF_ARRAY && kv->n) acc += ((const uint8_t *)kv->v.arr)[0];
        int64_t iv;
        double dv;
        (void)gr_gguf_get_int(g, kv->key, &iv);
        (void)gr_gguf_get_float(g, kv->key, &dv);
    }
    for (int64_t i = 0; i < gr_gguf_n_tensors(g); i++) {
        const gr_gguf_tensor *t = gr_gguf_tensor_at(g, i);
        if (gr_gguf_find_tensor(g, t->name) != t) abort();
        const uint8_t *p = t->data;
        if (t->n_bytes) acc += p[0] + p[t->n_bytes - 1]; /* must be in bounds */
        if (t->n_elements > 0 && t->n_elements <= 4096) {
            float *f = malloc((size_t)t->n_elements * sizeof(float));
            if (f && gr_ggml_to_f32(t->type, t->data, f, t->n_elements) == GR_OK) acc += (uint64_t)(f[0] != f[0]);
            free(f);
        }
    }
    gr_tokenizer *tok = gr_tokenizer_from_gguf(g);
    if (tok) {
        int64_t n;
        int32_t *ids = gr_tokenizer_encode(tok, "Hello w\xC3\xB6rld 123 's  \n", 21, 1, &n);
        if (ids) {
            char *d = gr_tokenizer_decode(tok, ids, n, NULL);
            gr_free(d);
            gr_free(ids);
        }
        gr_tokenizer_free(tok);
    }
    sink = acc;
    gr_gguf_close(g);
    return 0;
}
