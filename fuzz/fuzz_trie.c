/* libFuzzer target: gr_trie_deserialize (the item trie stored in a model
 * file is untrusted input) must reject or accept any int32 array without
 * crashing, and every trie it accepts must be walkable within bounds. */
#include "genrec/common.h"
#include "genrec/trie.h"

#include <stdlib.h>
#include <string.h>

static volatile int64_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t n = (int64_t)(size / sizeof(int32_t));
    int32_t *buf = malloc(sizeof(int32_t) * (size_t)(n > 0 ? n : 1));
    if (!buf) return 0;
    if (n) memcpy(buf, data, sizeof(int32_t) * (size_t)n);
    gr_trie *tr = gr_trie_deserialize(buf, n);
    free(buf);
    if (!tr) {
        if (!gr_error_message()[0]) abort(); /* every failure must say why */
        return 0;
    }
    int64_t acc = 0;
    for (int32_t u = 0; u < tr->n_nodes; u++) {
        const int32_t *toks, *nodes, *items;
        int32_t nc = gr_trie_children(tr, u, &toks, &nodes);
        for (int32_t k = 0; k < nc; k++) {
            if (nodes[k] <= u || nodes[k] >= tr->n_nodes) abort(); /* children after parents */
            if (gr_trie_child(tr, u, toks[k]) != nodes[k]) abort();
        }
        int32_t ni = gr_trie_items(tr, u, &items);
        for (int32_t k = 0; k < ni; k++) {
            if (items[k] < 0 || items[k] >= tr->n_items) abort();
            acc += items[k];
        }
        acc += gr_trie_is_leaf(tr, u);
    }
    /* a round trip gives the same array */
    int64_t m;
    int32_t *again = gr_trie_serialize(tr, &m);
    if (again) {
        gr_trie *tr2 = gr_trie_deserialize(again, m);
        if (!tr2 || tr2->n_nodes != tr->n_nodes || tr2->n_items != tr->n_items) abort();
        gr_trie_free(tr2);
        gr_free(again);
    }
    sink = acc;
    gr_trie_free(tr);
    return 0;
}
