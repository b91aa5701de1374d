/* libFuzzer target: the strict JSON parser never crashes, and on success
 * every node is well formed. */
#include "genrec/common.h"
#include "genrec/json.h"

#include <stdlib.h>
#include <string.h>

static size_t walk(const gr_json *v, int depth)
{
    if (depth > GR_JSON_MAX_DEPTH) abort();
    size_t n = 1;
    if (v->type == GR_JSON_STRING && v->u.str[v->n] != '\0') abort();
    if (v->type == GR_JSON_ARRAY || v->type == GR_JSON_OBJECT)
        for (size_t i = 0; i < v->n; i++) {
            if ((v->type == GR_JSON_OBJECT) != (v->u.items[i].key != NULL)) abort();
            n += walk(&v->u.items[i], depth + 1);
        }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gr_json_doc *d = gr_json_parse((const char *)data, size, "fuzz.json");
    if (!d) {
        if (!strstr(gr_error_message(), "fuzz.json")) abort();
        return 0;
    }
    walk(gr_json_root(d), 0);
    gr_json_free(d);
    return 0;
}
