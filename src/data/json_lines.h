/* Internal: a small, strict, bounded JSON parser for JSON-lines files (one
 * value per line), enough for Amazon review data.
 *
 * Supports objects, arrays, strings (all escapes including \uXXXX and
 * surrogate pairs; raw bytes must be valid UTF-8; raw control characters are
 * an error), numbers (JSON grammar), true, false, null. Nesting is limited to
 * GR_JL_MAX_DEPTH. Lone surrogates and \u0000 decode to U+FFFD. Single-quoted
 * (python-dict style) input is rejected with a message saying so.
 * Errors name "PATH:LINE:COLUMN". */
#ifndef GENREC_DATA_JSON_LINES_H
#define GENREC_DATA_JSON_LINES_H
#include <stddef.h>
#include <stdint.h>

#define GR_JL_MAX_DEPTH 64

typedef enum gr_jl_type {
    GR_JL_NULL = 0, GR_JL_FALSE, GR_JL_TRUE, GR_JL_NUMBER, GR_JL_STRING, GR_JL_ARRAY, GR_JL_OBJECT
} gr_jl_type;

typedef struct gr_jl {
    gr_jl_type type;
    int32_t key;    /* offset of this member's key in the string arena, -1 if not a member */
    int32_t str;    /* STRING: decoded text, NUMBER: the literal; offset in the arena */
    int32_t child;  /* first child node index (ARRAY/OBJECT), -1 if none */
    int32_t next;   /* next sibling node index, -1 if none */
    double num;     /* NUMBER */
} gr_jl;

typedef struct gr_jl_doc {
    gr_jl *node;
    size_t n, cap;
    char *arena;
    size_t alen, acap;
} gr_jl_doc;

/* Initialise / free a reusable document (parse after parse reuses memory). */
void gr_jl_init(gr_jl_doc *d);
void gr_jl_free(gr_jl_doc *d);

/* Parse s[0..n) as exactly one JSON value (surrounding white space allowed).
 * Returns the root node or NULL with an error "PATH:LINE:COL: ...". Nodes and
 * strings stay valid until the next parse or gr_jl_free. */
const gr_jl *gr_jl_parse(gr_jl_doc *d, const char *s, size_t n, const char *path, int64_t line);

/* Member KEY of object O (the last one if repeated), or NULL. */
const gr_jl *gr_jl_get(const gr_jl_doc *d, const gr_jl *o, const char *key);
/* First child / next sibling, or NULL. */
const gr_jl *gr_jl_first(const gr_jl_doc *d, const gr_jl *v);
const gr_jl *gr_jl_next(const gr_jl_doc *d, const gr_jl *v);
/* Decoded string of a STRING node (or the literal of a NUMBER), NUL-terminated. */
const char *gr_jl_str(const gr_jl_doc *d, const gr_jl *v);
/* Byte length of the decoded string of V. */
size_t gr_jl_len(const gr_jl_doc *d, const gr_jl *v);

#endif
