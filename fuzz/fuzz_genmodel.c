/* libFuzzer target: gr_model_load_memory (a saved gen / gen-sid model file is
 * untrusted input) must reject any byte string with a message, never crash;
 * a model it accepts must recommend for a short history within bounds and
 * its catalogue must be consistent. Seeds: fuzz/corpus/genmodel/ (tiny
 * models written by tests/test_gen_io.c with GENREC_WRITE_FUZZ_CORPUS). */
#include "genrec/common.h"
#include "genrec/model.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gr_threads_set(1);
    gr_rec_catalog *cat = NULL;
    gr_model *m = gr_model_load_memory(data, size, "fuzz", &cat);
    if (!m) {
        if (cat || !gr_error_message()[0]) abort(); /* every failure must say why */
        return 0;
    }
    if (!cat || cat->n_items != m->n_items || cat->n_items < 1) abort();
    for (int32_t u = 0; u < cat->n_users; u++)
        if (cat->user_off[u] > cat->user_off[u + 1]) abort();
    for (int64_t k = 0; k < cat->user_off[cat->n_users]; k++)
        if (cat->user_item[k] < 0 || cat->user_item[k] >= cat->n_items) abort();
    /* the first user's last (up to) 3 items, or item 0 */
    int32_t hist[3] = {0, 0, 0}, nh = 1;
    if (cat->n_users > 0 && cat->user_off[1] > 0) {
        int64_t a = cat->user_off[1] > 3 ? cat->user_off[1] - 3 : 0;
        nh = (int32_t)(cat->user_off[1] - a);
        for (int32_t i = 0; i < nh; i++) hist[i] = cat->user_item[a + i];
    }
    if (gr_model_set_beams(m, 2) != GR_OK) abort();
    int32_t items[3];
    float scores[3];
    int n = 0;
    if (gr_model_recommend(m, hist, nh, 3, 1, items, scores, &n) == GR_OK) {
        for (int i = 0; i < n; i++)
            if (items[i] < 0 || items[i] >= cat->n_items) abort();
    } else if (!gr_error_message()[0]) {
        abort();
    }
    gr_rec_catalog_free(cat);
    gr_model_free(m);
    return 0;
}
