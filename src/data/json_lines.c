/* Strict, bounded recursive-descent JSON parser (see json_lines.h). */
#include "data/json_lines.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/text.h"
#include "genrec/common.h"

typedef struct {
    gr_jl_doc *d;
    const char *s;
    size_t n, i;
    const char *path;
    int64_t line;
    int depth;
} jp;

void gr_jl_init(gr_jl_doc *d) { memset(d, 0, sizeof *d); }

void gr_jl_free(gr_jl_doc *d)
{
    free(d->node);
    free(d->arena);
    memset(d, 0, sizeof *d);
}

static int jerr(jp *p, const char *what)
{
    return gr_errorf("%s:%lld:%zu: invalid JSON: %s", p->path, (long long)p->line, p->i + 1, what);
}

static void ws(jp *p)
{
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r'))
        p->i++;
}

static int32_t new_node(jp *p, gr_jl_type t)
{
    gr_jl_doc *d = p->d;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 256;
        if (cap > INT32_MAX) { jerr(p, "too many values"); return -1; }
        gr_jl *q = realloc(d->node, cap * sizeof *q);
        if (!q) { gr_errorf("%s:%lld: out of memory parsing JSON", p->path, (long long)p->line); return -1; }
        d->node = q;
        d->cap = cap;
    }
    gr_jl *v = &d->node[d->n];
    v->type = t;
    v->key = v->str = v->child = v->next = -1;
    v->num = 0;
    return (int32_t)d->n++;
}

static void put_cp(char *a, size_t *w, uint32_t cp)
{
    if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
    if (cp < 0x80) a[(*w)++] = (char)cp;
    else if (cp < 0x800) {
        a[(*w)++] = (char)(0xC0 | (cp >> 6));
        a[(*w)++] = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        a[(*w)++] = (char)(0xE0 | (cp >> 12));
        a[(*w)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        a[(*w)++] = (char)(0x80 | (cp & 0x3F));
    } else {
        a[(*w)++] = (char)(0xF0 | (cp >> 18));
        a[(*w)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
        a[(*w)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        a[(*w)++] = (char)(0x80 | (cp & 0x3F));
    }
}

static int hex4(jp *p, size_t at, uint32_t *out)
{
    if (at + 4 > p->n) return 0;
    uint32_t v = 0;
    for (size_t k = 0; k < 4; k++) {
        char c = p->s[at + k];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
        else return 0;
    }
    *out = v;
    return 1;
}

/* Parse a string at p->i == '"' into the arena; returns its offset or -1.
 * The arena is sized for the whole input, so decoded text always fits. */
static int32_t parse_string(jp *p)
{
    char *a = p->d->arena;
    size_t w = p->d->alen, start = w;
    p->i++;
    for (;;) {
        if (p->i >= p->n) { jerr(p, "unterminated string"); return -1; }
        unsigned char c = (unsigned char)p->s[p->i];
        if (c == '"') { p->i++; break; }
        if (c < 0x20) { jerr(p, "raw control character in string (must be escaped)"); return -1; }
        if (c == '\\') {
            if (p->i + 1 >= p->n) { jerr(p, "unterminated escape"); return -1; }
            char e = p->s[p->i + 1];
            const char *m = strchr("\"\\/bfnrt", e);
            if (e && m) {
                static const char out[] = "\"\\/\b\f\n\r\t";
                a[w++] = out[m - "\"\\/bfnrt"];
                p->i += 2;
                continue;
            }
            if (e != 'u') { p->i++; jerr(p, "invalid escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)"); return -1; }
            uint32_t cp;
            if (!hex4(p, p->i + 2, &cp)) { p->i += 2; jerr(p, "\\u needs 4 hex digits"); return -1; }
            p->i += 6;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t lo;
                if (p->i + 1 < p->n && p->s[p->i] == '\\' && p->s[p->i + 1] == 'u' && hex4(p, p->i + 2, &lo) &&
                    lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    p->i += 6;
                }
            }
            put_cp(a, &w, cp);
            continue;
        }
        if (c < 0x80) { a[w++] = (char)c; p->i++; continue; }
        /* a raw multi-byte sequence: validate it */
        size_t k = (c >= 0xF0) ? 4 : (c >= 0xE0) ? 3 : 2;
        if (p->i + k > p->n || !gr_utf8_valid(p->s + p->i, k, NULL)) { jerr(p, "invalid UTF-8 in string"); return -1; }
        memcpy(a + w, p->s + p->i, k);
        w += k;
        p->i += k;
    }
    a[w++] = '\0';
    p->d->alen = w;
    return (int32_t)start;
}

static int32_t parse_value(jp *p);

static int32_t parse_number(jp *p)
{
    size_t b = p->i;
    const char *s = p->s;
    if (p->i < p->n && s[p->i] == '-') p->i++;
    if (p->i >= p->n || s[p->i] < '0' || s[p->i] > '9') { jerr(p, "invalid number"); return -1; }
    if (s[p->i] == '0') p->i++;
    else while (p->i < p->n && s[p->i] >= '0' && s[p->i] <= '9') p->i++;
    if (p->i < p->n && s[p->i] == '.') {
        p->i++;
        if (p->i >= p->n || s[p->i] < '0' || s[p->i] > '9') { jerr(p, "digit expected after '.'"); return -1; }
        while (p->i < p->n && s[p->i] >= '0' && s[p->i] <= '9') p->i++;
    }
    if (p->i < p->n && (s[p->i] == 'e' || s[p->i] == 'E')) {
        p->i++;
        if (p->i < p->n && (s[p->i] == '+' || s[p->i] == '-')) p->i++;
        if (p->i >= p->n || s[p->i] < '0' || s[p->i] > '9') { jerr(p, "digit expected in exponent"); return -1; }
        while (p->i < p->n && s[p->i] >= '0' && s[p->i] <= '9') p->i++;
    }
    int32_t id = new_node(p, GR_JL_NUMBER);
    if (id < 0) return -1;
    char *a = p->d->arena;
    size_t len = p->i - b, off = p->d->alen;
    memcpy(a + off, s + b, len);
    a[off + len] = '\0';
    p->d->alen += len + 1;
    double v = strtod(a + off, NULL);
    if (!isfinite(v)) { p->i = b; jerr(p, "number out of range"); return -1; }
    p->d->node[id].str = (int32_t)off;
    p->d->node[id].num = v;
    return id;
}

static int literal(jp *p, const char *lit)
{
    size_t l = strlen(lit);
    if (p->i + l <= p->n && !memcmp(p->s + p->i, lit, l)) { p->i += l; return 1; }
    return 0;
}

static int32_t parse_container(jp *p, int is_obj)
{
    if (++p->depth > GR_JL_MAX_DEPTH) { jerr(p, "nesting deeper than 64"); return -1; }
    int32_t id = new_node(p, is_obj ? GR_JL_OBJECT : GR_JL_ARRAY), last = -1;
    if (id < 0) return -1;
    char close = is_obj ? '}' : ']';
    p->i++;
    ws(p);
    if (p->i < p->n && p->s[p->i] == close) { p->i++; p->depth--; return id; }
    for (;;) {
        int32_t key = -1;
        if (is_obj) {
            ws(p);
            if (p->i < p->n && p->s[p->i] == '\'') {
                jerr(p, "single-quoted key: this looks like a python-dict line; only strict JSON is accepted "
                        "(convert with json.dumps(ast.literal_eval(line)))");
                return -1;
            }
            if (p->i >= p->n || p->s[p->i] != '"') { jerr(p, "object key (a string) expected"); return -1; }
            if ((key = parse_string(p)) < 0) return -1;
            ws(p);
            if (p->i >= p->n || p->s[p->i] != ':') { jerr(p, "':' expected after the key"); return -1; }
            p->i++;
        }
        int32_t v = parse_value(p);
        if (v < 0) return -1;
        p->d->node[v].key = key;
        if (last < 0) p->d->node[id].child = v;
        else p->d->node[last].next = v;
        last = v;
        ws(p);
        if (p->i < p->n && p->s[p->i] == ',') { p->i++; continue; }
        if (p->i < p->n && p->s[p->i] == close) { p->i++; break; }
        jerr(p, is_obj ? "',' or '}' expected" : "',' or ']' expected");
        return -1;
    }
    p->depth--;
    return id;
}

static int32_t parse_value(jp *p)
{
    ws(p);
    if (p->i >= p->n) { jerr(p, "value expected"); return -1; }
    char c = p->s[p->i];
    switch (c) {
    case '{': return parse_container(p, 1);
    case '[': return parse_container(p, 0);
    case '"': {
        int32_t id = new_node(p, GR_JL_STRING);
        if (id < 0) return -1;
        int32_t s = parse_string(p);
        if (s < 0) return -1;
        p->d->node[id].str = s;
        return id;
    }
    case '\'':
        jerr(p, "single-quoted string: this looks like a python-dict line; only strict JSON is accepted "
                "(convert with json.dumps(ast.literal_eval(line)))");
        return -1;
    default: break;
    }
    if (c == '-' || (c >= '0' && c <= '9')) return parse_number(p);
    if (literal(p, "true")) return new_node(p, GR_JL_TRUE);
    if (literal(p, "false")) return new_node(p, GR_JL_FALSE);
    if (literal(p, "null")) return new_node(p, GR_JL_NULL);
    jerr(p, "value expected (object, array, string, number, true, false, null)");
    return -1;
}

const gr_jl *gr_jl_parse(gr_jl_doc *d, const char *s, size_t n, const char *path, int64_t line)
{
    if (n > (size_t)INT32_MAX / 2) {
        gr_errorf("%s:%lld:1: JSON line too long (%zu bytes)", path, (long long)line, n);
        return NULL;
    }
    d->n = 0;
    d->alen = 0;
    if (d->acap < n + 16) {
        char *a = realloc(d->arena, n + 16);
        if (!a) { gr_errorf("%s:%lld: out of memory parsing JSON", path, (long long)line); return NULL; }
        d->arena = a;
        d->acap = n + 16;
    }
    jp p = {d, s, n, 0, path, line, 0};
    int32_t root = parse_value(&p);
    if (root < 0) return NULL;
    ws(&p);
    if (p.i != p.n) { jerr(&p, "trailing characters after the value"); return NULL; }
    return &d->node[root];
}

const gr_jl *gr_jl_get(const gr_jl_doc *d, const gr_jl *o, const char *key)
{
    if (!o || o->type != GR_JL_OBJECT) return NULL;
    const gr_jl *found = NULL;
    for (int32_t c = o->child; c >= 0; c = d->node[c].next)
        if (d->node[c].key >= 0 && !strcmp(d->arena + d->node[c].key, key)) found = &d->node[c];
    return found;
}

const gr_jl *gr_jl_first(const gr_jl_doc *d, const gr_jl *v)
{
    return v && v->child >= 0 ? &d->node[v->child] : NULL;
}

const gr_jl *gr_jl_next(const gr_jl_doc *d, const gr_jl *v)
{
    return v && v->next >= 0 ? &d->node[v->next] : NULL;
}

const char *gr_jl_str(const gr_jl_doc *d, const gr_jl *v)
{
    return v && v->str >= 0 ? d->arena + v->str : "";
}

size_t gr_jl_len(const gr_jl_doc *d, const gr_jl *v)
{
    return strlen(gr_jl_str(d, v));
}
