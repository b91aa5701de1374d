/* A small strict JSON parser (RFC 8259) producing a read-only DOM.
 *
 * Strict: no comments, no trailing commas, no NaN/Infinity, no leading zeros,
 * no control characters in strings, input must be valid UTF-8, \u escapes
 * must form valid code points (surrogates only as proper pairs, unless
 * gr_json_opts.lenient_escapes). Limits:
 * nesting depth GR_JSON_MAX_DEPTH, input size GR_JSON_MAX_INPUT. Errors are
 * recorded with gr_errorf() as "name:line:column: problem".
 *
 * All nodes and strings live in the document's arena and are released
 * together by gr_json_free(). Duplicate object keys are kept in order;
 * gr_json_get() returns the first.
 */
#ifndef GENREC_JSON_H
#define GENREC_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define GR_JSON_MAX_DEPTH 512
#define GR_JSON_MAX_INPUT ((size_t)1 << 30)

typedef enum gr_json_type {
    GR_JSON_NULL = 0, GR_JSON_BOOL, GR_JSON_NUMBER, GR_JSON_STRING, GR_JSON_ARRAY, GR_JSON_OBJECT
} gr_json_type;

typedef struct gr_json gr_json;
struct gr_json {
    gr_json_type type;
    const char *key;      /* member of an OBJECT: its key (NUL-terminated), else NULL */
    size_t key_len;
    size_t n;             /* ARRAY/OBJECT: number of children; STRING: byte length */
    union {
        int boolean;
        struct { double d; int64_t i; int is_int; } num; /* is_int: an integer literal that fits int64 */
        const char *str;  /* NUL-terminated (may contain NUL bytes from \u0000: use n) */
        const gr_json *items; /* ARRAY elements / OBJECT members, n of them */
    } u;
};

typedef struct gr_json_doc gr_json_doc;

/* Parse len bytes of text. `name` (may be NULL) prefixes error messages.
 * Returns a document (free with gr_json_free) or NULL with an error. */
gr_json_doc *gr_json_parse(const char *text, size_t len, const char *name);
/* Options of gr_json_parse_ex; a zeroed struct (or NULL) is gr_json_parse. */
typedef struct gr_json_opts {
    int64_t first_line;  /* line number of the text's first line in messages (0 = 1), e.g. the
                            line of one record of a JSON-lines file */
    int lenient_escapes; /* 1: the escapes of unpaired surrogates (\uD800..\uDFFF) and of NUL
                            (\u0000) decode to U+FFFD instead of being an error / a NUL byte
                            (JSON-lines data written by Python's json.dumps may hold them) */
} gr_json_opts;

/* gr_json_parse with options (NULL = defaults); same ownership and errors. */
gr_json_doc *gr_json_parse_ex(const char *text, size_t len, const char *name, const gr_json_opts *opts);
/* Read and parse a whole file (at most GR_JSON_MAX_INPUT bytes). */
gr_json_doc *gr_json_load(const char *path);
/* The root value of a document. */
const gr_json *gr_json_root(const gr_json_doc *doc);
void gr_json_free(gr_json_doc *doc);

/* Member `key` of an object, or NULL if v is not an object or has no such key. */
const gr_json *gr_json_get(const gr_json *v, const char *key);
/* String value or NULL if v is NULL or not a string. */
const char *gr_json_str(const gr_json *v);

/* Write s (NULL = "") to f as a JSON string literal: quotes, backslash
 * escapes for '"', '\\', newline and tab, \u00XX for other control bytes;
 * other bytes (UTF-8) as they are. I/O errors are left to the caller's
 * ferror/fclose check. */
void gr_json_write_str(FILE *f, const char *s);

#endif
