/* Line reader (plain/gzip), field splitters, text cleaning, number parsing,
 * first sentences. UTF-8 decoding itself is in src/core/utf8.c. */
#include "data/text.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "genrec/common.h"

/* ---- line reader ------------------------------------------------------------- */

#define READ_CHUNK ((size_t)1 << 18)

struct gr_lines {
    gzFile gz;
    char *path;
    char *buf;            /* raw chunk from gzread */
    size_t buf_len, buf_pos;
    char *line;           /* assembled line / record */
    size_t line_len, line_cap;
    int64_t lineno;       /* physical lines consumed */
    int64_t rec_line;     /* first line of the last returned line/record */
    int eof, first;
    int pending_err;      /* zlib error seen after a partial read */
    char pending_msg[256];
};

gr_lines *gr_lines_open(const char *path)
{
    gr_lines *r = calloc(1, sizeof *r);
    if (!r) { gr_errorf("%s: out of memory", path); return NULL; }
    r->path = gr_strdup(path);
    r->buf = malloc(READ_CHUNK);
    r->line_cap = 4096;
    r->line = malloc(r->line_cap);
    if (!r->path || !r->buf || !r->line) {
        gr_errorf("%s: out of memory", path);
        gr_lines_close(r);
        return NULL;
    }
    errno = 0;
    r->gz = gzopen(path, "rb");
    if (!r->gz) {
        gr_errorf("%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
        gr_lines_close(r);
        return NULL;
    }
    gzbuffer(r->gz, 1 << 17);
    r->first = 1;
    return r;
}

void gr_lines_close(gr_lines *r)
{
    if (!r) return;
    if (r->gz) gzclose(r->gz);
    free(r->path);
    free(r->buf);
    free(r->line);
    free(r);
}

const char *gr_lines_path(const gr_lines *r) { return r->path; }
int64_t gr_lines_lineno(const gr_lines *r) { return r->rec_line; }

/* Record a zlib error for the current position. */
static int gz_fail(gr_lines *r, int errnum, const char *msg)
{
    long long ln = (long long)r->lineno + 1;
    if (errnum == Z_ERRNO) return gr_errorf("%s:%lld: read error: %s", r->path, ln, strerror(errno));
    if (errnum == Z_BUF_ERROR)
        return gr_errorf("%s:%lld: truncated gzip file (unexpected end of compressed data)", r->path, ln);
    if (msg) { /* zlib prefixes its message with the path */
        size_t pl = strlen(r->path);
        if (!strncmp(msg, r->path, pl) && !strncmp(msg + pl, ": ", 2)) msg += pl + 2;
    }
    return gr_errorf("%s:%lld: corrupt gzip data: %s", r->path, ln, msg && *msg ? msg : "unknown zlib error");
}

/* Refill buf. Returns bytes read (>0), 0 at a clean end, -1 on error. Data
 * decoded before a gzip error is delivered first; the error comes with the
 * next refill, so its line number is where the damage starts. */
static int refill(gr_lines *r)
{
    if (r->pending_err) return gz_fail(r, r->pending_err, r->pending_msg[0] ? r->pending_msg : NULL), -1;
    if (r->eof) return 0;
    int n = gzread(r->gz, r->buf, (unsigned)READ_CHUNK);
    int errnum = Z_OK;
    const char *msg = gzerror(r->gz, &errnum);
    if (n < 0 || (errnum != Z_OK && errnum != Z_STREAM_END)) {
        if (n > 0) {
            r->pending_err = errnum == Z_OK ? Z_DATA_ERROR : errnum;
            snprintf(r->pending_msg, sizeof r->pending_msg, "%s", msg ? msg : "");
        } else {
            gz_fail(r, errnum == Z_OK ? Z_DATA_ERROR : errnum, msg);
            return -1;
        }
    }
    if (n == 0) { r->eof = 1; return 0; }
    r->buf_len = (size_t)n;
    r->buf_pos = 0;
    return n;
}

static int line_append(gr_lines *r, const char *s, size_t n)
{
    if (r->line_len + n + 1 > GR_LINE_MAX) {
        return gr_errorf("%s:%lld: line longer than %zu bytes (not a text file?)", r->path,
                         (long long)r->lineno + 1, GR_LINE_MAX);
    }
    if (r->line_len + n + 1 > r->line_cap) {
        size_t cap = r->line_cap;
        while (cap < r->line_len + n + 1) cap *= 2;
        char *p = realloc(r->line, cap);
        if (!p) return gr_errorf("%s: out of memory", r->path);
        r->line = p;
        r->line_cap = cap;
    }
    memcpy(r->line + r->line_len, s, n);
    r->line_len += n;
    r->line[r->line_len] = '\0';
    return GR_OK;
}

/* Append the next physical line to r->line. 1 ok, 0 EOF (nothing read), -1 error. */
static int read_physical(gr_lines *r)
{
    size_t start = r->line_len;
    int got = 0;
    for (;;) {
        if (r->buf_pos >= r->buf_len) {
            int n = refill(r);
            if (n < 0) return -1;
            if (n == 0) {
                if (!got) return 0;
                break;
            }
        }
        const char *s = r->buf + r->buf_pos;
        size_t avail = r->buf_len - r->buf_pos;
        const char *nl = memchr(s, '\n', avail);
        size_t take = nl ? (size_t)(nl - s) : avail;
        got = 1;
        if (memchr(s, '\0', take))
            return gr_errorf("%s:%lld: NUL byte in text (binary or UTF-16 file?)", r->path,
                             (long long)r->lineno + 1);
        if (line_append(r, s, take) != GR_OK) return -1;
        r->buf_pos += take + (nl ? 1 : 0);
        if (nl) break;
    }
    r->lineno++;
    if (r->first) {
        r->first = 0;
        if (r->line_len - start >= 3 && !memcmp(r->line + start, "\xEF\xBB\xBF", 3)) {
            memmove(r->line + start, r->line + start + 3, r->line_len - start - 3 + 1);
            r->line_len -= 3;
        }
    }
    if (r->line_len > start && r->line[r->line_len - 1] == '\r') r->line[--r->line_len] = '\0';
    return 1;
}

int gr_lines_next(gr_lines *r, char **line, size_t *len)
{
    r->line_len = 0;
    r->line[0] = '\0';
    int rc = read_physical(r);
    if (rc <= 0) return rc;
    r->rec_line = r->lineno;
    *line = r->line;
    *len = r->line_len;
    return 1;
}

/* Scan s[0..n) updating the RFC-4180 state: *inq = inside a quoted field,
 * *at_start = at the start of a field, *field = 1-based field number. */
static void quote_scan(const char *s, size_t n, char delim, int *inq, int *at_start, int *field)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (*inq) {
            if (c == '"') {
                if (i + 1 < n && s[i + 1] == '"') i++;
                else *inq = 0;
            }
        } else if (c == delim) {
            *at_start = 1;
            (*field)++;
            continue;
        } else if (c == '"' && *at_start) {
            *inq = 1;
        }
        *at_start = 0;
    }
}

int gr_lines_next_record(gr_lines *r, char delim, char **rec, size_t *len)
{
    r->line_len = 0;
    r->line[0] = '\0';
    int rc = read_physical(r);
    if (rc <= 0) return rc;
    r->rec_line = r->lineno;
    int inq = 0, at_start = 1, field = 1;
    size_t scanned = 0;
    for (;;) {
        quote_scan(r->line + scanned, r->line_len - scanned, delim, &inq, &at_start, &field);
        if (!inq) break;
        if (line_append(r, "\n", 1) != GR_OK) return -1;
        scanned = r->line_len;
        rc = read_physical(r);
        if (rc < 0) return -1;
        if (rc == 0)
            return gr_errorf("%s:%lld: field %d: broken quoting: the quoted field opened on this line is never "
                             "closed", r->path, (long long)r->rec_line, field);
    }
    *rec = r->line;
    *len = r->line_len;
    return 1;
}

/* ---- field splitting ------------------------------------------------------------ */

int gr_fields_split(char *line, size_t len, char delim, int quote, char **out, int max,
                    const char *path, int64_t lineno)
{
    char *p = line, *end = line + len;
    int n = 0;
    for (;;) {
        char *fs = p, *w = p;
        if (quote && p < end && *p == '"') {
            p++;
            for (;;) {
                if (p >= end) {
                    gr_errorf("%s:%lld: field %d: broken quoting: unterminated quoted field", path,
                              (long long)lineno, n + 1);
                    return -1;
                }
                if (*p == '"') {
                    if (p + 1 < end && p[1] == '"') { *w++ = '"'; p += 2; }
                    else { p++; break; }
                } else {
                    *w++ = *p++;
                }
            }
            if (p < end && *p != delim) {
                gr_errorf("%s:%lld: field %d: broken quoting: text after the closing quote", path,
                          (long long)lineno, n + 1);
                return -1;
            }
        } else {
            char *d = memchr(p, delim, (size_t)(end - p));
            p = d ? d : end;
            w = p;
        }
        if (n < max) out[n] = fs;
        n++;
        int more = p < end;
        *w = '\0';
        if (!more) break;
        p++;
    }
    return n;
}

int gr_fields_split_str(char *line, const char *delim, char **out, int max)
{
    size_t dl = strlen(delim);
    int n = 0;
    char *p = line;
    for (;;) {
        char *d = dl ? strstr(p, delim) : NULL;
        if (n < max) out[n] = p;
        n++;
        if (!d) break;
        *d = '\0';
        p = d + dl;
    }
    return n;
}

int gr_fields_find(char *const *fields, int n, const char *const *names)
{
    for (const char *const *nm = names; *nm; nm++)
        for (int i = 0; i < n; i++)
            if (!strcasecmp(fields[i], *nm)) return i;
    return -1;
}

/* ---- text cleaning ------------------------------------------------------------------ */

char *gr_latin1_to_utf8(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t m = n;
    for (size_t i = 0; i < n; i++) m += s[i] >= 0x80;
    char *d = gr_alloc(m + 1, 1);
    if (!d) return NULL;
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x80) d[w++] = (char)s[i];
        else {
            d[w++] = (char)(0xC0 | (s[i] >> 6));
            d[w++] = (char)(0x80 | (s[i] & 0x3F));
        }
    }
    d[w] = '\0';
    return d;
}

static const struct { const char *name; uint32_t cp; } html_named[] = {
    {"amp", '&'}, {"quot", '"'}, {"lt", '<'}, {"gt", '>'}, {"apos", '\''},
    {"nbsp", 0xA0}, {"iexcl", 0xA1}, {"cent", 0xA2}, {"pound", 0xA3}, {"euro", 0x20AC},
    {"yen", 0xA5}, {"copy", 0xA9}, {"reg", 0xAE}, {"trade", 0x2122}, {"deg", 0xB0},
    {"plusmn", 0xB1}, {"micro", 0xB5}, {"middot", 0xB7}, {"frac12", 0xBD}, {"frac14", 0xBC},
    {"frac34", 0xBE}, {"times", 0xD7}, {"divide", 0xF7}, {"sup2", 0xB2}, {"sup3", 0xB3},
    {"laquo", 0xAB}, {"raquo", 0xBB}, {"iquest", 0xBF}, {"sect", 0xA7}, {"para", 0xB6},
    {"ndash", 0x2013}, {"mdash", 0x2014}, {"lsquo", 0x2018}, {"rsquo", 0x2019},
    {"ldquo", 0x201C}, {"rdquo", 0x201D}, {"hellip", 0x2026}, {"bull", 0x2022},
    {"Agrave", 0xC0}, {"Aacute", 0xC1}, {"Acirc", 0xC2}, {"Atilde", 0xC3}, {"Auml", 0xC4},
    {"Aring", 0xC5}, {"AElig", 0xC6}, {"Ccedil", 0xC7}, {"Egrave", 0xC8}, {"Eacute", 0xC9},
    {"Ecirc", 0xCA}, {"Euml", 0xCB}, {"Igrave", 0xCC}, {"Iacute", 0xCD}, {"Icirc", 0xCE},
    {"Iuml", 0xCF}, {"Ntilde", 0xD1}, {"Ograve", 0xD2}, {"Oacute", 0xD3}, {"Ocirc", 0xD4},
    {"Otilde", 0xD5}, {"Ouml", 0xD6}, {"Oslash", 0xD8}, {"Ugrave", 0xD9}, {"Uacute", 0xDA},
    {"Ucirc", 0xDB}, {"Uuml", 0xDC}, {"Yacute", 0xDD}, {"szlig", 0xDF},
    {"agrave", 0xE0}, {"aacute", 0xE1}, {"acirc", 0xE2}, {"atilde", 0xE3}, {"auml", 0xE4},
    {"aring", 0xE5}, {"aelig", 0xE6}, {"ccedil", 0xE7}, {"egrave", 0xE8}, {"eacute", 0xE9},
    {"ecirc", 0xEA}, {"euml", 0xEB}, {"igrave", 0xEC}, {"iacute", 0xED}, {"icirc", 0xEE},
    {"iuml", 0xEF}, {"ntilde", 0xF1}, {"ograve", 0xF2}, {"oacute", 0xF3}, {"ocirc", 0xF4},
    {"otilde", 0xF5}, {"ouml", 0xF6}, {"oslash", 0xF8}, {"ugrave", 0xF9}, {"uacute", 0xFA},
    {"ucirc", 0xFB}, {"uuml", 0xFC}, {"yacute", 0xFD}, {"yuml", 0xFF},
};

/* Parse a reference at s[i] == '&'. On success returns the number of input
 * bytes consumed (including '&' and ';') and sets *cp; else 0. */
static size_t html_ref(const char *s, size_t n, size_t i, uint32_t *cp)
{
    size_t j = i + 1;
    if (j < n && s[j] == '#') {
        j++;
        int hex = 0;
        if (j < n && (s[j] == 'x' || s[j] == 'X')) { hex = 1; j++; }
        size_t d0 = j;
        uint32_t v = 0;
        while (j < n && j - d0 < 8) {
            char c = s[j];
            int dv;
            if (c >= '0' && c <= '9') dv = c - '0';
            else if (hex && c >= 'a' && c <= 'f') dv = c - 'a' + 10;
            else if (hex && c >= 'A' && c <= 'F') dv = c - 'A' + 10;
            else break;
            v = v * (hex ? 16u : 10u) + (uint32_t)dv;
            j++;
        }
        if (j == d0 || j >= n || s[j] != ';') return 0;
        *cp = v; /* invalid values become U+FFFD in gr_html_decode */
        if (v > 0x10FFFF) *cp = 0xFFFD;
        return j + 1 - i;
    }
    size_t k = j;
    while (k < n && k - j < 8 && ((s[k] >= 'a' && s[k] <= 'z') || (s[k] >= 'A' && s[k] <= 'Z') ||
                                  (s[k] >= '0' && s[k] <= '9')))
        k++;
    if (k == j || k >= n || s[k] != ';') return 0;
    for (size_t t = 0; t < sizeof html_named / sizeof html_named[0]; t++) {
        if (strlen(html_named[t].name) == k - j && !memcmp(html_named[t].name, s + j, k - j)) {
            *cp = html_named[t].cp;
            return k + 1 - i;
        }
    }
    return 0;
}

size_t gr_html_decode(char *s, size_t n)
{
    if (!memchr(s, '&', n)) return n;
    size_t r = 0, w = 0;
    while (r < n) {
        if (s[r] == '&') {
            uint32_t cp;
            size_t used = html_ref(s, n, r, &cp);
            char tmp[4];
            if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
            size_t k = used ? gr_utf8_encode(cp, tmp) : 0;
            if (used && k <= used) { /* always true: the shortest reference is 4 bytes */
                memcpy(s + w, tmp, k);
                w += k;
                r += used;
                continue;
            }
        }
        s[w++] = s[r++];
    }
    if (w < n) s[w] = '\0';
    return w;
}

size_t gr_ws_normalise(char *s, size_t n)
{
    size_t r = 0, w = 0;
    int pending = 0;
    while (r < n) {
        unsigned char c = (unsigned char)s[r];
        size_t ws = 0;
        if (c <= 0x20 || c == 0x7F) ws = 1;
        else if (c == 0xC2 && r + 1 < n && (unsigned char)s[r + 1] == 0xA0) ws = 2;
        if (ws) {
            pending = w > 0;
            r += ws;
            continue;
        }
        if (pending) { s[w++] = ' '; pending = 0; }
        s[w++] = s[r++];
    }
    s[w] = '\0';
    return w;
}

char *gr_text_clean(const char *s, size_t n, gr_enc enc, const char *path, int64_t lineno,
                    const char *field)
{
    size_t bad = 0;
    char *d;
    if (gr_utf8_valid(s, n, &bad)) {
        d = gr_strndup(s, n);
    } else if (enc == GR_ENC_LATIN1) {
        d = gr_latin1_to_utf8(s, n);
    } else {
        gr_errorf("%s:%lld: field '%s': invalid UTF-8 at byte %zu (byte 0x%02X)", path,
                  (long long)lineno, field, bad + 1, (unsigned)(unsigned char)s[bad]);
        return NULL;
    }
    if (!d) return NULL;
    size_t m = gr_html_decode(d, strlen(d));
    gr_ws_normalise(d, m);
    return d;
}

/* ---- numbers ---------------------------------------------------------------------------- */

const char *gr_quote_input(const char *s)
{
    static _Thread_local char ring[4][64];
    static _Thread_local int slot;
    char *b = ring[slot++ & 3];
    size_t w = 0;
    for (size_t i = 0; s[i] && w < 44; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7F && c != '\\') b[w++] = (char)c;
        else w += (size_t)snprintf(b + w, 64 - w, "\\x%02X", c);
    }
    if (strlen(s) > 40 && w < 44) { memcpy(b + w, "...", 3); w += 3; }
    b[w < 63 ? w : 63] = '\0';
    return b;
}

static const char *skip_sp(const char *s) { while (*s == ' ') s++; return s; }

static int only_sp(const char *s) { return *skip_sp(s) == '\0'; }

int gr_parse_i64(const char *s, int64_t *out, const char *path, int64_t lineno, const char *field)
{
    const char *p = skip_sp(s);
    int neg = 0;
    if (*p == '+' || *p == '-') neg = *p++ == '-';
    if (*p < '0' || *p > '9') goto bad;
    uint64_t v = 0;
    while (*p >= '0' && *p <= '9') {
        uint64_t d = (uint64_t)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) goto bad;
        v = v * 10 + d;
        p++;
    }
    if (!only_sp(p)) goto bad;
    if (v > (uint64_t)INT64_MAX + (uint64_t)neg) goto bad;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return GR_OK;
bad:
    return gr_errorf("%s:%lld: field '%s': '%s' is not an integer", path, (long long)lineno, field,
                     gr_quote_input(s));
}

/* Decimal number grammar: [+-] digits [. digits] [eE [+-] digits] (digits on
 * at least one side of the point). Returns 1 if s matches (spaces allowed). */
static int decimal_syntax(const char *s)
{
    const char *p = skip_sp(s);
    if (*p == '+' || *p == '-') p++;
    int digits = 0;
    while (*p >= '0' && *p <= '9') { p++; digits++; }
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') { p++; digits++; }
    }
    if (!digits) return 0;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (*p < '0' || *p > '9') return 0;
        while (*p >= '0' && *p <= '9') p++;
    }
    return only_sp(p);
}

/* Fast exact path for plain decimals ("4", "4.5", "-0.25"): an integer
 * mantissa below 2^53 divided by an exact power of ten is correctly rounded,
 * i.e. the same double strtod returns. Returns 0 when not applicable. */
static int fast_decimal(const char *s, double *out)
{
    static const double p10[] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
    const char *p = s;
    int neg = 0, nd = 0, frac = 0, dot = 0;
    uint64_t m = 0;
    if (*p == '-' || *p == '+') neg = *p++ == '-';
    for (;; p++) {
        if (*p >= '0' && *p <= '9') {
            if (++nd > 15) return 0;
            m = m * 10 + (uint64_t)(*p - '0');
            frac += dot;
        } else if (*p == '.' && !dot) {
            dot = 1;
        } else {
            break;
        }
    }
    if (*p || nd == 0) return 0;
    double v = (double)m / p10[frac];
    *out = neg ? -v : v;
    return 1;
}

int gr_parse_float(const char *s, float *out, const char *path, int64_t lineno, const char *field)
{
    double v;
    if (fast_decimal(s, &v)) {
        *out = (float)v;
        return GR_OK;
    }
    if (!decimal_syntax(s)) goto bad;
    errno = 0;
    v = strtod(s, NULL);
    if (!isfinite(v) || fabs(v) > 3.0e38) goto bad;
    *out = (float)v;
    return GR_OK;
bad:
    return gr_errorf("%s:%lld: field '%s': '%s' is not a number", path, (long long)lineno, field,
                     gr_quote_input(s));
}

int gr_parse_time(const char *s, int64_t *out, const char *path, int64_t lineno, const char *field)
{
    const char *p = skip_sp(s);
    if (*p == '-' || *p == '+') p++;
    while (*p >= '0' && *p <= '9') p++;
    if (only_sp(p) && gr_parse_i64(s, out, path, lineno, field) == GR_OK) return GR_OK;
    if (!decimal_syntax(s)) goto bad;
    double v = strtod(s, NULL);
    if (!isfinite(v) || fabs(v) >= 9.2e18) goto bad;
    *out = (int64_t)v;
    return GR_OK;
bad:
    return gr_errorf("%s:%lld: field '%s': '%s' is not a timestamp (integer or decimal seconds)",
                     path, (long long)lineno, field, gr_quote_input(s));
}

/* ---- sentences ------------------------------------------------------------------------- */

char *gr_text_first_sentence(const char *text)
{
    const char *d = strstr(text, ". ");
    if (!d) {
        size_t n = strlen(text);
        if (n > 0 && text[n - 1] == '.') return gr_strndup(text, n - 1);
        return gr_strdup(text);
    }
    return gr_strndup(text, (size_t)(d - text));
}
