/* libFuzzer target: the llama2.c checkpoint reader must reject or accept any
 * byte string without crashing, every rejection must say why, and every
 * accepted checkpoint must be internally consistent and readable in bounds. */
#include "genrec/checkpoint.h"
#include "genrec/common.h"

#include <stdlib.h>
#include <string.h>

static volatile float sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gr_error_clear();
    gr_ckpt *ck = gr_ckpt_load_llama2c_memory(data, size, "fuzz.bin");
    if (!ck) {
        if (!gr_error_message()[0]) abort();
        return 0;
    }
    if (ck->arch != GR_ARCH_LLAMA || ck->n_tensors < 2) abort();
    float acc = 0;
    int64_t total = 0;
    for (int i = 0; i < ck->n_tensors; i++) {
        const gr_ckpt_tensor *t = &ck->tensors[i];
        if (gr_ckpt_find(ck, t->name) != t) abort();
        if (t->n != t->shape[0] * t->shape[1] || t->n < 1) abort();
        acc += t->data[0] + t->data[t->n - 1];
        total += t->n;
    }
    /* the file holds exactly these weights plus the header and RoPE tables */
    if ((uint64_t)total * 4 + 28 > size) abort();
    if (ck->tied == (gr_ckpt_find(ck, "output.weight") != NULL)) abort();
    gr_tfm_config cfg;
    gr_ckpt_tfm_config(ck, &cfg);
    sink = acc;
    gr_ckpt_free(ck);
    return 0;
}
