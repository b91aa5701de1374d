/* libFuzzer target: the strict JSON parser never crashes, and on success
 * every node is well formed. The same bytes parsed with lenient escapes (as
 * the JSON-lines loaders do) are accepted whenever the strict parse is, and
 * then every string is valid UTF-8 without NUL bytes. */
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

/* Lenient documents: keys and strings are valid UTF-8 without NUL. */
static void walk_lenient(const gr_json *v)
{
    if (v->key && (strlen(v->key) != v->key_len || !gr_utf8_valid(v->key, v->key_len, NULL))) abort();
    if (v->type == GR_JSON_STRING && (strlen(v->u.str) != v->n || !gr_utf8_valid(v->u.str, v->n, NULL))) abort();
    if (v->type == GR_JSON_ARRAY || v->type == GR_JSON_OBJECT)
        for (size_t i = 0; i < v->n; i++) walk_lenient(&v->u.items[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gr_json_doc *d = gr_json_parse((const char *)data, size, "fuzz.json");
    if (!d && !strstr(gr_error_message(), "fuzz.json")) abort();
    if (d) walk(gr_json_root(d), 0);
    gr_json_opts o = {.first_line = 7, .lenient_escapes = 1};
    gr_json_doc *l = gr_json_parse_ex((const char *)data, size, "fuzz.jsonl", &o);
    if (d && !l) abort();
    if (!l && strncmp(gr_error_message(), "fuzz.jsonl:", 11)) abort();
    if (l) {
        walk(gr_json_root(l), 0);
        walk_lenient(gr_json_root(l));
    }
    gr_json_free(d);
    gr_json_free(l);
    return 0;
}
