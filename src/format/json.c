/* Strict, bounded JSON parser with an arena-allocated DOM (see json.h). */
#include "genrec/json.h"
#include "genrec/common.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct jchunk { struct jchunk *next; size_t used, cap; _Alignas(16) unsigned char data[]; } jchunk;

struct gr_json_doc {
    gr_json root;
    jchunk *chunks;
    size_t chunk_size;  /* size of the next chunk: small for small texts (one JSON-lines record) */
};

typedef struct parser {
    const unsigned char *s;
    size_t len, pos;
    const char *name;
    gr_json_doc *doc;
    gr_json *stack;     /* children being collected, shared by all levels */
    size_t sp, scap;
    char *sbuf;         /* string decode buffer */
    size_t scap2;
    int64_t first_line; /* line number of the text's first line */
    int lenient;        /* gr_json_opts.lenient_escapes */
} parser;

static void *jalloc(gr_json_doc *d, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (!n) n = 16;
    if (!d->chunks || d->chunks->cap - d->chunks->used < n) {
        size_t cap = n > d->chunk_size ? n : d->chunk_size;
        d->chunk_size = 65536;
        jchunk *c = malloc(sizeof(jchunk) + cap);
        if (!c) { gr_errorf("json: out of memory"); return NULL; }
        c->next = d->chunks;
        c->used = 0;
        c->cap = cap;
        d->chunks = c;
    }
    void *p = d->chunks->data + d->chunks->used;
    d->chunks->used += n;
    return p;
}

static int fail(parser *p, const char *fmt, ...) GR_PRINTF(2, 3);
static int fail(parser *p, const char *fmt, ...)
{
    int64_t line = p->first_line;
    size_t col = 1;
    for (size_t i = 0; i < p->pos && i < p->len; i++) {
        if (p->s[i] == '\n') { line++; col = 1; }
        else if ((p->s[i] & 0xC0) != 0x80) col++;
    }
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return gr_errorf("%s:%lld:%zu: %s", p->name, (long long)line, col, msg);
}

static const char single_quote_msg[] =
    "single-quoted string: this looks like python-dict text (Python's repr); only strict JSON is accepted "
    "(convert with json.dumps(ast.literal_eval(...)))";

static void skip_ws(parser *p)
{
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static int push(parser *p, const gr_json *v)
{
    if (p->sp == p->scap) {
        size_t cap = p->scap ? 2 * p->scap : 64;
        gr_json *ns = realloc(p->stack, cap * sizeof *ns);
        if (!ns) return gr_errorf("json: out of memory");
        p->stack = ns;
        p->scap = cap;
    }
    p->stack[p->sp++] = *v;
    return GR_OK;
}

static int sbuf_put(parser *p, size_t *n, const void *b, size_t k)
{
    if (*n + k + 1 > p->scap2) {
        size_t cap = p->scap2 ? p->scap2 : 256;
        while (cap < *n + k + 1) cap *= 2;
        char *nb = realloc(p->sbuf, cap);
        if (!nb) return gr_errorf("json: out of memory");
        p->sbuf = nb;
        p->scap2 = cap;
    }
    memcpy(p->sbuf + *n, b, k);
    *n += k;
    return GR_OK;
}

static int hex4(parser *p, uint32_t *out)
{
    if (p->len - p->pos < 4) return fail(p, "truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = p->s[p->pos + i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= c - '0';
        else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
        else { p->pos += i; return fail(p, "bad hex digit in \\u escape"); }
    }
    p->pos += 4;
    *out = v;
    return GR_OK;
}

/* Parse a string at p->pos (which is '"'); result copied into the arena. */
static int parse_string(parser *p, const char **out, size_t *out_len)
{
    size_t n = 0;
    p->pos++;
    for (;;) {
        if (p->pos >= p->len) return fail(p, "unterminated string");
        unsigned char c = p->s[p->pos];
        if (c == '"') { p->pos++; break; }
        if (c < 0x20) return fail(p, "control character 0x%02x in string", c);
        if (c == '\\') {
            if (p->pos + 1 >= p->len) return fail(p, "unterminated escape");
            unsigned char e = p->s[p->pos + 1];
            const char *simple = NULL;
            switch (e) {
            case '"': simple = "\""; break;
            case '\\': simple = "\\"; break;
            case '/': simple = "/"; break;
            case 'b': simple = "\b"; break;
            case 'f': simple = "\f"; break;
            case 'n': simple = "\n"; break;
            case 'r': simple = "\r"; break;
            case 't': simple = "\t"; break;
            case 'u': break;
            default: p->pos++; return fail(p, "invalid escape '\\%c'", e >= 0x20 && e < 0x7f ? e : '?');
            }
            if (simple) {
                if (sbuf_put(p, &n, simple, 1)) return GR_ERR;
                p->pos += 2;
                continue;
            }
            p->pos += 2;
            uint32_t cp;
            if (hex4(p, &cp)) return GR_ERR;
            if (cp >= 0xDC00 && cp <= 0xDFFF) {
                if (!p->lenient) { p->pos -= 6; return fail(p, "lone low surrogate \\u%04X", cp); }
                cp = 0xFFFD;
            } else if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t lo = 0;
                int paired = p->len - p->pos >= 6 && p->s[p->pos] == '\\' && p->s[p->pos + 1] == 'u';
                if (!paired && !p->lenient) return fail(p, "high surrogate \\u%04X not followed by a low surrogate", cp);
                if (paired) {
                    p->pos += 2;
                    if (hex4(p, &lo)) return GR_ERR;
                    if (lo < 0xDC00 || lo > 0xDFFF) {
                        p->pos -= 6;
                        if (!p->lenient) return fail(p, "\\u%04X is not a low surrogate", lo);
                        paired = 0; /* decode the next escape on its own */
                    }
                }
                cp = paired ? 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00) : 0xFFFD;
            }
            if (cp == 0 && p->lenient) cp = 0xFFFD;
            char u[4];
            if (sbuf_put(p, &n, u, gr_utf8_encode(cp, u))) return GR_ERR;
            continue;
        }
        /* run of plain bytes */
        size_t start = p->pos, i = p->pos;
        const unsigned char *t = p->s;
        for (;;) {
            while (i < p->len && t[i] >= 0x20 && t[i] < 0x80 && t[i] != '"' && t[i] != '\\') i++;
            if (i >= p->len || t[i] < 0x80) break;
            uint32_t cp;
            size_t k = gr_utf8_decode(t + i, p->len - i, &cp);
            if (cp == GR_UTF8_INVALID) { p->pos = i; return fail(p, "invalid UTF-8 byte 0x%02x in string", t[i]); }
            i += k;
        }
        p->pos = i;
        if (n == 0 && p->pos < p->len && p->s[p->pos] == '"') { /* no escapes: copy straight from the text */
            n = p->pos - start;
            p->pos++;
            char *s = jalloc(p->doc, n + 1);
            if (!s) return GR_ERR;
            memcpy(s, p->s + start, n);
            s[n] = '\0';
            *out = s;
            *out_len = n;
            return GR_OK;
        }
        if (sbuf_put(p, &n, p->s + start, p->pos - start)) return GR_ERR;
    }
    char *s = jalloc(p->doc, n + 1);
    if (!s) return GR_ERR;
    if (n) memcpy(s, p->sbuf, n);
    s[n] = '\0';
    *out = s;
    *out_len = n;
    return GR_OK;
}

static int parse_number(parser *p, gr_json *v)
{
    size_t start = p->pos;
    const unsigned char *s = p->s;
    size_t i = p->pos;
    int is_int = 1;
    if (i < p->len && s[i] == '-') i++;
    if (i >= p->len || s[i] < '0' || s[i] > '9') { p->pos = i; return fail(p, "invalid number"); }
    if (s[i] == '0') {
        i++;
        if (i < p->len && s[i] >= '0' && s[i] <= '9') { p->pos = i; return fail(p, "leading zero in number"); }
    } else {
        while (i < p->len && s[i] >= '0' && s[i] <= '9') i++;
    }
    if (i < p->len && s[i] == '.') {
        is_int = 0;
        i++;
        if (i >= p->len || s[i] < '0' || s[i] > '9') { p->pos = i; return fail(p, "digit expected after '.'"); }
        while (i < p->len && s[i] >= '0' && s[i] <= '9') i++;
    }
    if (i < p->len && (s[i] == 'e' || s[i] == 'E')) {
        is_int = 0;
        i++;
        if (i < p->len && (s[i] == '+' || s[i] == '-')) i++;
        if (i >= p->len || s[i] < '0' || s[i] > '9') { p->pos = i; return fail(p, "digit expected in exponent"); }
        while (i < p->len && s[i] >= '0' && s[i] <= '9') i++;
    }
    size_t n = i - start;
    char small[64], *buf = small;
    if (n >= sizeof small) {
        buf = malloc(n + 1);
        if (!buf) return gr_errorf("json: out of memory");
    }
    memcpy(buf, s + start, n);
    buf[n] = '\0';
    v->type = GR_JSON_NUMBER;
    v->u.num.d = strtod(buf, NULL);
    v->u.num.is_int = 0;
    v->u.num.i = 0;
    if (is_int) {
        errno = 0;
        long long x = strtoll(buf, NULL, 10);
        if (!errno) { v->u.num.i = x; v->u.num.is_int = 1; }
    }
    if (buf != small) free(buf);
    p->pos = i;
    return GR_OK;
}

static int parse_value(parser *p, gr_json *v, int depth);

static int parse_container(parser *p, gr_json *v, int depth, int is_obj)
{
    if (depth >= GR_JSON_MAX_DEPTH) return fail(p, "nesting deeper than %d", GR_JSON_MAX_DEPTH);
    size_t base = p->sp;
    char close = is_obj ? '}' : ']';
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
    } else {
        for (;;) {
            gr_json child;
            memset(&child, 0, sizeof child);
            skip_ws(p);
            if (is_obj) {
                if (p->pos < p->len && p->s[p->pos] == '\'') return fail(p, "%s", single_quote_msg);
                if (p->pos >= p->len || p->s[p->pos] != '"') return fail(p, "object key (a string) expected");
                if (parse_string(p, &child.key, &child.key_len)) return GR_ERR;
                skip_ws(p);
                if (p->pos >= p->len || p->s[p->pos] != ':') return fail(p, "':' expected after object key");
                p->pos++;
            }
            const char *key = child.key;
            size_t key_len = child.key_len;
            if (parse_value(p, &child, depth + 1)) return GR_ERR;
            child.key = key;
            child.key_len = key_len;
            if (push(p, &child)) return GR_ERR;
            skip_ws(p);
            if (p->pos >= p->len) return fail(p, "unterminated %s", is_obj ? "object" : "array");
            if (p->s[p->pos] == ',') { p->pos++; continue; }
            if (p->s[p->pos] == close) { p->pos++; break; }
            return fail(p, "',' or '%c' expected", close);
        }
    }
    size_t n = p->sp - base;
    gr_json *items = jalloc(p->doc, n * sizeof(gr_json));
    if (!items) return GR_ERR;
    if (n) memcpy(items, p->stack + base, n * sizeof(gr_json));
    p->sp = base;
    v->type = is_obj ? GR_JSON_OBJECT : GR_JSON_ARRAY;
    v->n = n;
    v->u.items = items;
    return GR_OK;
}

static int literal(parser *p, const char *word)
{
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n)) return fail(p, "invalid literal (expected '%s')", word);
    p->pos += n;
    return GR_OK;
}

static int parse_value(parser *p, gr_json *v, int depth)
{
    skip_ws(p);
    if (p->pos >= p->len) return fail(p, "value expected, found end of input");
    unsigned char c = p->s[p->pos];
    v->key = NULL;
    switch (c) {
    case '{': return parse_container(p, v, depth, 1);
    case '[': return parse_container(p, v, depth, 0);
    case '"': v->type = GR_JSON_STRING; return parse_string(p, &v->u.str, &v->n);
    case 't': v->type = GR_JSON_BOOL; v->u.boolean = 1; return literal(p, "true");
    case 'f': v->type = GR_JSON_BOOL; v->u.boolean = 0; return literal(p, "false");
    case 'n': v->type = GR_JSON_NULL; return literal(p, "null");
    case '\'': return fail(p, "%s", single_quote_msg);
    default:
        if (c == '-' || (c >= '0' && c <= '9')) return parse_number(p, v);
        return fail(p, "unexpected character '%c'", c >= 0x20 && c < 0x7f ? c : '?');
    }
}

gr_json_doc *gr_json_parse(const char *text, size_t len, const char *name)
{
    return gr_json_parse_ex(text, len, name, NULL);
}

gr_json_doc *gr_json_parse_ex(const char *text, size_t len, const char *name, const gr_json_opts *opts)
{
    if (!name) name = "<json>";
    if (len > GR_JSON_MAX_INPUT) { gr_errorf("%s: %zu bytes exceeds the JSON input limit", name, len); return NULL; }
    gr_json_doc *d = calloc(1, sizeof *d);
    if (!d) { gr_errorf("json: out of memory"); return NULL; }
    d->chunk_size = len < 16384 ? 4 * len + 1024 : 65536; /* the DOM of a short text fits one chunk */
    parser p = {(const unsigned char *)(text ? text : ""), text ? len : 0, 0, name, d, NULL, 0, 0, NULL, 0,
                opts && opts->first_line > 0 ? opts->first_line : 1, opts && opts->lenient_escapes};
    if (p.len >= 3 && !memcmp(p.s, "\xEF\xBB\xBF", 3)) p.pos = 3; /* tolerate a UTF-8 BOM */
    int rc = parse_value(&p, &d->root, 0);
    if (rc == GR_OK) {
        skip_ws(&p);
        if (p.pos < p.len) rc = fail(&p, "trailing characters after the JSON value");
    }
    free(p.stack);
    free(p.sbuf);
    if (rc != GR_OK) { gr_json_free(d); return NULL; }
    return d;
}

gr_json_doc *gr_json_load(const char *path)
{
    size_t n;
    char *buf = gr_read_file(path, GR_JSON_MAX_INPUT, &n);
    if (!buf) return NULL;
    gr_json_doc *d = gr_json_parse(buf, n, path);
    gr_free(buf);
    return d;
}

const gr_json *gr_json_root(const gr_json_doc *doc) { return &doc->root; }

void gr_json_free(gr_json_doc *doc)
{
    if (!doc) return;
    for (jchunk *c = doc->chunks, *n; c; c = n) { n = c->next; free(c); }
    free(doc);
}

const gr_json *gr_json_get(const gr_json *v, const char *key)
{
    if (!v || v->type != GR_JSON_OBJECT) return NULL;
    size_t kl = strlen(key);
    for (size_t i = 0; i < v->n; i++)
        if (v->u.items[i].key_len == kl && !memcmp(v->u.items[i].key, key, kl)) return &v->u.items[i];
    return NULL;
}

const char *gr_json_str(const gr_json *v)
{
    return v && v->type == GR_JSON_STRING ? v->u.str : NULL;
}

void gr_json_write_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p == '\n') fputs("\\n", f);
        else if (*p == '\t') fputs("\\t", f);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}
