/* GGUF v3 reader, hardened by construction: every read goes through a bounded
 * cursor that returns an error, every count is capped and overflow-checked
 * before anything is allocated, and all validation is done at open time. */
#include "genrec/gguf.h"
#include "genrec/common.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- arena: owned copies of strings and arrays ------------------------------------ */

typedef struct chunk { struct chunk *next; size_t used, cap; _Alignas(16) unsigned char data[]; } chunk;

struct gr_gguf {
    const uint8_t *base;
    size_t size;
    void *map;       /* mmap'd region (munmap on close) */
    void *heap;      /* read() fallback buffer */
    char *name;
    uint32_t version, alignment;
    uint64_t data_offset;
    int64_t n_kv, n_tensors;
    gr_gguf_kv *kv;
    gr_gguf_tensor *tensors;
    int64_t *kv_ht, *t_ht;  /* open addressing: index or -1 */
    size_t kv_cap, t_cap;
    chunk *chunks;
};

static void *arena_alloc(gr_gguf *g, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (!g->chunks || g->chunks->cap - g->chunks->used < n) {
        size_t cap = g->chunks ? g->chunks->cap * 2 : 16384; /* grow geometrically */
        if (cap > ((size_t)4 << 20)) cap = (size_t)4 << 20;
        if (cap < n) cap = n;
        chunk *c = malloc(sizeof(chunk) + cap);
        if (!c) { gr_errorf("out of memory allocating %zu bytes", cap); return NULL; }
        c->next = g->chunks;
        c->used = 0;
        c->cap = cap;
        g->chunks = c;
    }
    void *p = g->chunks->data + g->chunks->used;
    g->chunks->used += n;
    return p;
}

/* ---- hashing ------------------------------------------------------------------------ */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static size_t ht_capacity(int64_t n)
{
    size_t cap = 16;
    while (cap < (size_t)n * 2) cap <<= 1;
    return cap;
}

/* Index of name in the table, or -1; names(i) gives the string of entry i. */
#define HT_FIND(ht, cap, nm, getname, out)                                        \
    do {                                                                          \
        (out) = -1;                                                               \
        for (size_t _h = hash_str(nm) & ((cap) - 1);; _h = (_h + 1) & ((cap) - 1)) { \
            int64_t _i = (ht)[_h];                                                \
            if (_i < 0) break;                                                    \
            if (!strcmp(getname(_i), (nm))) { (out) = _i; break; }                \
        }                                                                         \
    } while (0)

/* ---- cursor --------------------------------------------------------------------------- */

typedef struct cursor { const uint8_t *p; size_t size, off; const char *name; } cursor;

static int cur_fail(const cursor *c, size_t off, const char *field, const char *fmt, ...) GR_PRINTF(4, 5);
static int cur_fail(const cursor *c, size_t off, const char *field, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return gr_errorf("%s: offset %zu: field '%s': %s", c->name, off, field, what);
}

static int rd(cursor *c, void *dst, size_t n, const char *field)
{
    if (n > c->size - c->off)
        return cur_fail(c, c->off, field, "truncated file (need %" PRIu64 " bytes, %" PRIu64 " left)",
                        (uint64_t)n, (uint64_t)(c->size - c->off));
    memcpy(dst, c->p + c->off, n);
    c->off += n;
    return GR_OK;
}

static int rd_u32(cursor *c, uint32_t *v, const char *f) { return rd(c, v, 4, f); }
static int rd_u64(cursor *c, uint64_t *v, const char *f) { return rd(c, v, 8, f); }

/* Read a length-prefixed string into the arena (NUL-terminated). */
static int rd_str(gr_gguf *g, cursor *c, const char *field, uint64_t max, char **out, uint64_t *len)
{
    size_t at = c->off;
    uint64_t n = 0;
    if (rd_u64(c, &n, field)) return GR_ERR;
    if (n > max) return cur_fail(c, at, field, "string length %" PRIu64 " exceeds the limit %" PRIu64, n, max);
    if (n > c->size - c->off)
        return cur_fail(c, at, field, "string length %" PRIu64 " runs past the end of the file (%" PRIu64 " bytes left)",
                        n, (uint64_t)(c->size - c->off));
    char *s = arena_alloc(g, (size_t)n + 1);
    if (!s) return GR_ERR;
    memcpy(s, c->p + c->off, (size_t)n);
    s[n] = '\0';
    c->off += (size_t)n;
    *out = s;
    if (len) *len = n;
    return GR_OK;
}

static int rd_value(gr_gguf *g, cursor *c, gr_gguf_kv *kv, const char *field)
{
    size_t at = c->off;
    if (kv->type == GR_GGUF_STRING) {
        char *s;
        if (rd_str(g, c, field, GR_GGUF_MAX_STRING, &s, &kv->n)) return GR_ERR;
        kv->v.str = s;
        return GR_OK;
    }
    if (kv->type == GR_GGUF_ARRAY) {
        uint32_t et = 0;
        uint64_t n = 0;
        if (rd_u32(c, &et, field) || rd_u64(c, &n, field)) return GR_ERR;
        if (et == GR_GGUF_ARRAY) return cur_fail(c, at, field, "nested arrays are not supported");
        if (et >= GR_GGUF_TYPE_COUNT) return cur_fail(c, at, field, "unknown array element type %u", et);
        if (n > GR_GGUF_MAX_ARRAY)
            return cur_fail(c, at, field, "array length %" PRIu64 " exceeds the limit %" PRIu64, n, GR_GGUF_MAX_ARRAY);
        kv->arr_type = (gr_gguf_type)et;
        kv->n = n;
        size_t left = c->size - c->off;
        if (et == GR_GGUF_STRING) {
            if (n > left / 8)
                return cur_fail(c, at, field, "array of %" PRIu64 " strings runs past the end of the file (%" PRIu64 " bytes left)",
                                n, left);
            char **strs = arena_alloc(g, (size_t)n * sizeof(char *) + 1);
            uint64_t *lens = arena_alloc(g, (size_t)n * sizeof(uint64_t) + 1);
            if (!strs || !lens) return GR_ERR;
            for (uint64_t i = 0; i < n; i++)
                if (rd_str(g, c, field, GR_GGUF_MAX_STRING, &strs[i], &lens[i])) return GR_ERR;
            kv->v.strs = (const char *const *)strs;
            kv->str_lens = lens;
            return GR_OK;
        }
        size_t es = gr_gguf_type_size((gr_gguf_type)et);
        if (n > left / es)
            return cur_fail(c, at, field, "array of %" PRIu64 " elements runs past the end of the file (%" PRIu64 " bytes left)",
                            n, left);
        uint8_t *a = arena_alloc(g, (size_t)n * es + 1);
        if (!a) return GR_ERR;
        memcpy(a, c->p + c->off, (size_t)n * es);
        if (et == GR_GGUF_BOOL)
            for (uint64_t i = 0; i < n; i++)
                if (a[i] > 1) return cur_fail(c, c->off + i, field, "bool array element %" PRIu64 " is %u, not 0 or 1", i, (unsigned)a[i]);
        c->off += (size_t)n * es;
        kv->v.arr = a;
        return GR_OK;
    }
    size_t es = gr_gguf_type_size(kv->type);
    if (rd(c, &kv->v, es, field)) return GR_ERR;
    if (kv->type == GR_GGUF_BOOL && kv->v.b > 1)
        return cur_fail(c, at, field, "bool value is %u, not 0 or 1", (unsigned)kv->v.b);
    return GR_OK;
}

static const char *kv_name(const gr_gguf *g, int64_t i) { return g->kv[i].key; }
static const char *t_name(const gr_gguf *g, int64_t i) { return g->tensors[i].name; }
#define KV_NAME(i) kv_name(g, i)
#define T_NAME(i) t_name(g, i)

static int parse(gr_gguf *g)
{
    cursor c = {g->base, g->size, 0, g->name};
    char field[160];
    uint32_t magic = 0;
    if (rd_u32(&c, &magic, "magic")) return GR_ERR;
    if (memcmp(&magic, "GGUF", 4))
        return cur_fail(&c, 0, "magic", "bad magic 0x%08x (expected \"GGUF\")", magic);
    if (rd_u32(&c, &g->version, "version")) return GR_ERR;
    if (g->version == 1) return cur_fail(&c, 4, "version", "GGUF version 1 is not supported");
    if ((g->version & 0xffff) == 0 && g->version)
        return cur_fail(&c, 4, "version", "version 0x%08x looks byte-swapped (big-endian file?)", g->version);
    if (g->version != 2 && g->version != 3)
        return cur_fail(&c, 4, "version", "unsupported version %u", g->version);
    uint64_t nt = 0, nkv = 0;
    if (rd_u64(&c, &nt, "tensor_count") || rd_u64(&c, &nkv, "kv_count")) return GR_ERR;
    /* every kv needs >= 13 bytes and every tensor info >= 24: reject huge counts before allocating */
    if (nkv > (c.size - c.off) / 13)
        return cur_fail(&c, 16, "kv_count", "%" PRIu64 " key/values cannot fit in the %" PRIu64 " bytes left", nkv, c.size - c.off);
    if (nt > (c.size - c.off) / 24)
        return cur_fail(&c, 8, "tensor_count", "%" PRIu64 " tensors cannot fit in the %" PRIu64 " bytes left", nt, c.size - c.off);
    g->n_kv = (int64_t)nkv;
    g->n_tensors = (int64_t)nt;
    g->kv = calloc(nkv ? nkv : 1, sizeof *g->kv);
    g->tensors = calloc(nt ? nt : 1, sizeof *g->tensors);
    g->kv_cap = ht_capacity(g->n_kv);
    g->t_cap = ht_capacity(g->n_tensors);
    g->kv_ht = malloc(g->kv_cap * sizeof(int64_t));
    g->t_ht = malloc(g->t_cap * sizeof(int64_t));
    if (!g->kv || !g->tensors || !g->kv_ht || !g->t_ht) return gr_errorf("%s: out of memory", g->name);
    memset(g->kv_ht, 0xff, g->kv_cap * sizeof(int64_t));
    memset(g->t_ht, 0xff, g->t_cap * sizeof(int64_t));

    for (int64_t i = 0; i < g->n_kv; i++) {
        gr_gguf_kv *kv = &g->kv[i];
        size_t at = c.off;
        char *key;
        uint32_t type = 0;
        snprintf(field, sizeof field, "kv[%" PRId64 "].key", i);
        if (rd_str(g, &c, field, GR_GGUF_MAX_KEY, &key, NULL)) return GR_ERR;
        if (!key[0]) return cur_fail(&c, at, field, "empty key");
        if (strlen(key) != (size_t)(c.off - at - 8)) return cur_fail(&c, at, field, "key contains a NUL byte");
        kv->key = key;
        int64_t dup;
        HT_FIND(g->kv_ht, g->kv_cap, key, KV_NAME, dup);
        if (dup >= 0) return gr_errorf("%s: offset %zu: field 'kv[%" PRId64 "].key': duplicate key '%.200s'", g->name, at, i, key);
        snprintf(field, sizeof field, "%.120s", key);
        size_t tat = c.off;
        if (rd_u32(&c, &type, field)) return GR_ERR;
        if (type >= GR_GGUF_TYPE_COUNT) return cur_fail(&c, tat, field, "unknown value type %u", type);
        kv->type = (gr_gguf_type)type;
        if (rd_value(g, &c, kv, field)) return GR_ERR;
        size_t h = hash_str(key) & (g->kv_cap - 1);
        while (g->kv_ht[h] >= 0) h = (h + 1) & (g->kv_cap - 1);
        g->kv_ht[h] = i;
    }

    g->alignment = GR_GGUF_DEFAULT_ALIGNMENT;
    const gr_gguf_kv *al = gr_gguf_find(g, "general.alignment");
    if (al) {
        if (al->type != GR_GGUF_U32)
            return gr_errorf("%s: field 'general.alignment': must be u32, found %s", g->name, gr_gguf_type_name(al->type));
        uint32_t a = al->v.u32;
        if (a == 0 || (a & (a - 1)) || a > GR_GGUF_MAX_ALIGNMENT)
            return gr_errorf("%s: field 'general.alignment': %u is not a power of two in [1, %u]", g->name, a,
                             GR_GGUF_MAX_ALIGNMENT);
        g->alignment = a;
    }

    for (int64_t i = 0; i < g->n_tensors; i++) {
        gr_gguf_tensor *t = &g->tensors[i];
        size_t at = c.off;
        char *name;
        uint64_t nlen;
        snprintf(field, sizeof field, "tensor[%" PRId64 "].name", i);
        if (rd_str(g, &c, field, GR_GGUF_MAX_NAME - 1, &name, &nlen)) return GR_ERR;
        if (strlen(name) != nlen) return cur_fail(&c, at, field, "name contains a NUL byte");
        t->name = name;
        int64_t dup;
        HT_FIND(g->t_ht, g->t_cap, name, T_NAME, dup);
        if (dup >= 0) return gr_errorf("%s: offset %zu: field '%s': duplicate tensor name '%s'", g->name, at, field, name);
        size_t h = hash_str(name) & (g->t_cap - 1);
        while (g->t_ht[h] >= 0) h = (h + 1) & (g->t_cap - 1);
        g->t_ht[h] = i;

        snprintf(field, sizeof field, "%s.n_dims", name);
        at = c.off;
        if (rd_u32(&c, &t->n_dims, field)) return GR_ERR;
        if (t->n_dims > GR_GGUF_MAX_DIMS)
            return cur_fail(&c, at, field, "n_dims %u exceeds %d", t->n_dims, GR_GGUF_MAX_DIMS);
        int64_t nel = 1;
        for (int d = 0; d < GR_GGUF_MAX_DIMS; d++) t->ne[d] = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) {
            uint64_t v = 0;
            snprintf(field, sizeof field, "%s.ne[%u]", name, d);
            at = c.off;
            if (rd_u64(&c, &v, field)) return GR_ERR;
            if (v > (uint64_t)INT64_MAX) return cur_fail(&c, at, field, "dimension %" PRIu64 " is negative as int64", v);
            t->ne[d] = (int64_t)v;
            if (v && nel > INT64_MAX / (int64_t)v)
                return cur_fail(&c, at, field, "element count overflows int64 (dimension %" PRIu64 ")", v);
            nel *= (int64_t)v;
        }
        t->n_elements = nel;
        uint32_t type = 0;
        snprintf(field, sizeof field, "%s.type", name);
        at = c.off;
        if (rd_u32(&c, &type, field)) return GR_ERR;
        t->type = (gr_ggml_type)type;
        int64_t blck = gr_ggml_blck_size(t->type);
        if (!blck) return cur_fail(&c, at, field, "unknown tensor type %u", type);
        if (t->ne[0] % blck)
            return cur_fail(&c, at, field, "ne[0] = %" PRIu64 " is not a multiple of the block size %" PRIu64,
                            (uint64_t)t->ne[0], (uint64_t)blck);
        if (gr_ggml_nbytes(t->type, nel, &t->n_bytes))
            return gr_error_prefix("%s: offset %zu: field '%s': ", g->name, at, field);
        snprintf(field, sizeof field, "%s.offset", name);
        if (rd_u64(&c, &t->offset, field)) return GR_ERR;
    }

    /* data section: aligned start, sequential aligned offsets, everything inside the file */
    uint64_t a = g->alignment;
    uint64_t data_off = ((uint64_t)c.off + a - 1) / a * a;
    g->data_offset = data_off;
    uint64_t expect = 0;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        gr_gguf_tensor *t = &g->tensors[i];
        snprintf(field, sizeof field, "%s.offset", t->name);
        if (t->offset % a)
            return gr_errorf("%s: field '%s': offset %" PRIu64 " is not a multiple of the alignment %" PRIu64,
                             g->name, field, t->offset, a);
        if (t->offset != expect)
            return gr_errorf("%s: field '%s': offset %" PRIu64 " is not sequential (expected %" PRIu64 ")",
                             g->name, field, t->offset, expect);
        if (t->offset > g->size || data_off > g->size - t->offset || t->n_bytes > g->size - data_off - t->offset)
            return gr_errorf("%s: field '%s': tensor data [%" PRIu64 ", +%zu) at file offset %" PRIu64
                             " lies beyond the end of the file (%zu bytes)",
                             g->name, field, t->offset, t->n_bytes, data_off, g->size);
        t->data = g->base + data_off + t->offset;
        uint64_t padded = ((uint64_t)t->n_bytes + a - 1) / a * a;
        expect = t->offset + padded;
    }
    return GR_OK;
}

static gr_gguf *finish_open(gr_gguf *g)
{
    if (parse(g) == GR_OK) return g;
    gr_gguf_close(g);
    return NULL;
}

gr_gguf *gr_gguf_open_memory(const void *data, size_t size, const char *name)
{
    gr_gguf *g = calloc(1, sizeof *g);
    if (!g) { gr_errorf("out of memory"); return NULL; }
    g->name = gr_strdup(name ? name : "<memory>");
    if (!g->name) { free(g); return NULL; }
    g->base = data;
    g->size = data ? size : 0;
    return finish_open(g);
}

gr_gguf *gr_gguf_open(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) { gr_errorf("%s: cannot open: %s", path, strerror(errno)); return NULL; }
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        gr_errorf("%s: not a regular file", path);
        close(fd);
        return NULL;
    }
    gr_gguf *g = calloc(1, sizeof *g);
    if (!g || !(g->name = gr_strdup(path))) { free(g); close(fd); gr_errorf("out of memory"); return NULL; }
    g->size = (size_t)st.st_size;
    if (g->size) {
        void *m = mmap(NULL, g->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m != MAP_FAILED) {
            g->map = m;
            g->base = m;
        } else {
            g->heap = gr_alloc(g->size, 1);
            size_t got = 0;
            while (g->heap && got < g->size) {
                ssize_t r = read(fd, (char *)g->heap + got, g->size - got);
                if (r <= 0) { if (r < 0 && errno == EINTR) continue; break; }
                got += (size_t)r;
            }
            if (!g->heap || got < g->size) {
                gr_errorf("%s: cannot read %zu bytes", path, g->size);
                close(fd);
                gr_gguf_close(g);
                return NULL;
            }
            g->base = g->heap;
        }
    }
    close(fd);
    return finish_open(g);
}

void gr_gguf_close(gr_gguf *g)
{
    if (!g) return;
    if (g->map) munmap(g->map, g->size);
    gr_free(g->heap);
    for (chunk *c = g->chunks, *n; c; c = n) { n = c->next; free(c); }
    free(g->kv);
    free(g->tensors);
    free(g->kv_ht);
    free(g->t_ht);
    free(g->name);
    free(g);
}

/* ---- queries ------------------------------------------------------------------------------ */

uint32_t gr_gguf_version(const gr_gguf *g) { return g->version; }
uint32_t gr_gguf_alignment(const gr_gguf *g) { return g->alignment; }
uint64_t gr_gguf_data_offset(const gr_gguf *g) { return g->data_offset; }
int64_t gr_gguf_n_kv(const gr_gguf *g) { return g->n_kv; }
int64_t gr_gguf_n_tensors(const gr_gguf *g) { return g->n_tensors; }

const gr_gguf_kv *gr_gguf_kv_at(const gr_gguf *g, int64_t i)
{
    return i >= 0 && i < g->n_kv ? &g->kv[i] : NULL;
}

const gr_gguf_tensor *gr_gguf_tensor_at(const gr_gguf *g, int64_t i)
{
    return i >= 0 && i < g->n_tensors ? &g->tensors[i] : NULL;
}

const gr_gguf_kv *gr_gguf_find(const gr_gguf *g, const char *key)
{
    if (!g->kv_ht) return NULL;
    int64_t i;
    HT_FIND(g->kv_ht, g->kv_cap, key, KV_NAME, i);
    return i >= 0 ? &g->kv[i] : NULL;
}

const gr_gguf_tensor *gr_gguf_find_tensor(const gr_gguf *g, const char *name)
{
    if (!g->t_ht) return NULL;
    int64_t i;
    HT_FIND(g->t_ht, g->t_cap, name, T_NAME, i);
    return i >= 0 ? &g->tensors[i] : NULL;
}

static const gr_gguf_kv *need(const gr_gguf *g, const char *key)
{
    const gr_gguf_kv *kv = gr_gguf_find(g, key);
    if (!kv) gr_errorf("%s: key '%s' is missing", g->name, key);
    return kv;
}

static int wrong_type(const gr_gguf *g, const gr_gguf_kv *kv, const char *want)
{
    return gr_errorf("%s: key '%s': expected %s, found %s", g->name, kv->key, want, gr_gguf_type_name(kv->type));
}

int gr_gguf_get_int(const gr_gguf *g, const char *key, int64_t *out)
{
    const gr_gguf_kv *kv = need(g, key);
    if (!kv) return GR_ERR;
    switch (kv->type) {
    case GR_GGUF_U8: *out = kv->v.u8; return GR_OK;
    case GR_GGUF_I8: *out = kv->v.i8; return GR_OK;
    case GR_GGUF_U16: *out = kv->v.u16; return GR_OK;
    case GR_GGUF_I16: *out = kv->v.i16; return GR_OK;
    case GR_GGUF_U32: *out = kv->v.u32; return GR_OK;
    case GR_GGUF_I32: *out = kv->v.i32; return GR_OK;
    case GR_GGUF_I64: *out = kv->v.i64; return GR_OK;
    case GR_GGUF_U64:
        if (kv->v.u64 > (uint64_t)INT64_MAX) return gr_errorf("%s: key '%s': %" PRIu64 " does not fit in int64", g->name, key, kv->v.u64);
        *out = (int64_t)kv->v.u64;
        return GR_OK;
    default: return wrong_type(g, kv, "an integer");
    }
}

int gr_gguf_get_float(const gr_gguf *g, const char *key, double *out)
{
    const gr_gguf_kv *kv = need(g, key);
    if (!kv) return GR_ERR;
    if (kv->type == GR_GGUF_F32) { *out = kv->v.f32; return GR_OK; }
    if (kv->type == GR_GGUF_F64) { *out = kv->v.f64; return GR_OK; }
    return wrong_type(g, kv, "f32 or f64");
}

int gr_gguf_get_bool(const gr_gguf *g, const char *key, int *out)
{
    const gr_gguf_kv *kv = need(g, key);
    if (!kv) return GR_ERR;
    if (kv->type != GR_GGUF_BOOL) return wrong_type(g, kv, "bool");
    *out = kv->v.b;
    return GR_OK;
}

int gr_gguf_get_str(const gr_gguf *g, const char *key, const char **out, size_t *len)
{
    const gr_gguf_kv *kv = need(g, key);
    if (!kv) return GR_ERR;
    if (kv->type != GR_GGUF_STRING) return wrong_type(g, kv, "string");
    *out = kv->v.str;
    if (len) *len = (size_t)kv->n;
    return GR_OK;
}

const gr_gguf_kv *gr_gguf_get_arr(const gr_gguf *g, const char *key, gr_gguf_type elem)
{
    const gr_gguf_kv *kv = need(g, key);
    if (!kv) return NULL;
    if (kv->type != GR_GGUF_ARRAY) { wrong_type(g, kv, "array"); return NULL; }
    if (elem != GR_GGUF_TYPE_COUNT && kv->arr_type != elem) {
        gr_errorf("%s: key '%s': expected an array of %s, found an array of %s", g->name, key,
                  gr_gguf_type_name(elem), gr_gguf_type_name(kv->arr_type));
        return NULL;
    }
    return kv;
}
