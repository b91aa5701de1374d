/* Internal text utilities shared by the dataset loaders:
 *
 *   - a line reader over plain or gzip files (zlib), which reports truncated
 *     or corrupt gzip streams, embedded NUL bytes and over-long lines, strips
 *     "\r\n" and a leading UTF-8 byte-order mark, and can join the physical
 *     lines of one RFC-4180 record (quoted fields may contain newlines);
 *   - field splitters: single-byte delimiter with optional RFC-4180 quoting,
 *     and multi-byte delimiters such as MovieLens' "::";
 *   - text cleaning: Latin-1 -> UTF-8, HTML entity decoding, whitespace
 *     normalisation (UTF-8 validation is gr_utf8_valid in common.h);
 *   - strict number parsing for ids, timestamps and ratings.
 *
 * Every function that can fail records an error naming path:line and the
 * field (gr_errorf) and returns GR_ERR / NULL / -1.
 */
#ifndef GENREC_DATA_TEXT_H
#define GENREC_DATA_TEXT_H
#include <stddef.h>
#include <stdint.h>

#include "genrec/common.h" /* gr_utf8_valid and the other UTF-8 helpers */

/* ---- line reader ----------------------------------------------------------- */

#define GR_LINE_MAX ((size_t)64 << 20) /* longest accepted line / record: 64 MiB */

typedef struct gr_lines gr_lines;

/* Open PATH for reading lines; gzip-compressed files are detected by their
 * magic bytes (any file name) and decompressed on the fly. NULL + error
 * ("PATH: cannot open: ...") on failure. Close with gr_lines_close. */
gr_lines *gr_lines_open(const char *path);

/* Read the next line. On success returns 1 and sets *line (NUL-terminated, no
 * line terminator, valid until the next call; the caller may modify it in
 * place) and *len. Returns 0 at end of file and -1 on an error (read error,
 * truncated/corrupt gzip, NUL byte, line over GR_LINE_MAX) with the error
 * naming PATH:LINE. */
int gr_lines_next(gr_lines *r, char **line, size_t *len);

/* Like gr_lines_next, but an RFC-4180 record: while a quoted field is still
 * open at the end of a physical line, the next line is appended (with "\n").
 * An unterminated quote at end of file is an error naming the record's first
 * line. Only double quotes at the start of a field (after DELIM or at the
 * start of the record) open a quoted field. */
int gr_lines_next_record(gr_lines *r, char delim, char **rec, size_t *len);

/* 1-based number of the first physical line of the last line/record returned. */
int64_t gr_lines_lineno(const gr_lines *r);

/* The path the reader was opened with. */
const char *gr_lines_path(const gr_lines *r);

/* Close the reader (NULL is fine). */
void gr_lines_close(gr_lines *r);

/* ---- field splitting --------------------------------------------------------- */

/* Split LINE (length LEN, modified in place) at the byte DELIM. With QUOTE != 0
 * fields may be RFC-4180 quoted ("a ""b"", c" -> a "b", c); a quote that is not
 * followed by DELIM or the end, or an unterminated quote, is an error naming
 * PATH:LINENO and the field number. Stores up to MAX field pointers in OUT
 * (NUL-terminated, quotes removed) and returns the total number of fields
 * (which may exceed MAX), or -1 on error. */
int gr_fields_split(char *line, size_t len, char delim, int quote, char **out, int max,
                    const char *path, int64_t lineno);

/* Split LINE in place at every occurrence of the string DELIM (e.g. "::").
 * Same return convention as gr_fields_split (never fails). */
int gr_fields_split_str(char *line, const char *delim, char **out, int max);

/* Index of the first field equal (ASCII case-insensitively) to one of NAMES
 * (NULL-terminated), or -1. Header fields are compared whole. */
int gr_fields_find(char *const *fields, int n, const char *const *names);

/* ---- text cleaning ---------------------------------------------------------- */

/* Source encodings of text fields. */
typedef enum gr_enc {
    GR_ENC_UTF8 = 0, /* must be valid UTF-8: invalid bytes are an error */
    GR_ENC_LATIN1,   /* MovieLens .dat/u.item files: a field that is valid UTF-8 is kept
                        as is (some releases were re-encoded); otherwise every byte is
                        read as ISO-8859-1 and converted, so no input is rejected */
} gr_enc;

/* Convert ISO-8859-1 bytes to a new UTF-8 string (caller frees with gr_free). */
char *gr_latin1_to_utf8(const char *s, size_t n);

/* Decode HTML character references in place: &amp; &quot; &lt; &gt; &apos;
 * &#39; &#NNN; &#xHH; and common named ones (&nbsp; &eacute; &mdash; ...).
 * Unknown names and references without ';' are left as they are; numeric
 * references to NUL, surrogates or above U+10FFFF become U+FFFD. The result
 * is never longer than the input. Returns the new length. */
size_t gr_html_decode(char *s, size_t n);

/* Normalise whitespace in place: ASCII control characters, spaces, tabs,
 * newlines and U+00A0 count as white space; runs collapse to one space;
 * leading and trailing white space is removed. Returns the new length. */
size_t gr_ws_normalise(char *s, size_t n);

/* Full cleaning of one text field: decode the encoding (see gr_enc), decode
 * HTML entities, normalise whitespace. Returns a new string (gr_free) or NULL
 * with an error "PATH:LINENO: field 'FIELD': invalid UTF-8 at byte K". */
char *gr_text_clean(const char *s, size_t n, gr_enc enc, const char *path, int64_t lineno,
                    const char *field);

/* Split "Title. Categories. Brand." style text: newly allocated copy of the
 * part before the first ". " (the whole string, without a final '.', when
 * there is none). NULL + error on out of memory. */
char *gr_text_first_sentence(const char *text);

/* ---- numbers -------------------------------------------------------------------- */

/* Strict parsers: the whole string must be the number (surrounding ASCII
 * spaces allowed). They return GR_OK or record
 * "PATH:LINENO: field 'FIELD': 'TEXT' is not a/an ..." and return GR_ERR. */
int gr_parse_i64(const char *s, int64_t *out, const char *path, int64_t lineno, const char *field);
int gr_parse_float(const char *s, float *out, const char *path, int64_t lineno, const char *field);
/* A timestamp: an integer, or a finite decimal/float (RecBole writes
 * "978300760.0"), truncated towards zero; must fit in int64. */
int gr_parse_time(const char *s, int64_t *out, const char *path, int64_t lineno, const char *field);

/* Copy S into the error message with non-printable bytes escaped and at most
 * ~40 characters (for quoting bad input in messages). Returns a static
 * thread-local buffer (ring of 4). */
const char *gr_quote_input(const char *s);

#endif
