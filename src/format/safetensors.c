/* A hardened safetensors reader: u64 header length, JSON header, data
 * region. Everything is validated at open (see genrec/checkpoint.h); tensor
 * data pointers point into the mapping or the caller's buffer. */
#include "checkpoint_internal.h"

#include "genrec/common.h"
#include "genrec/json.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gr_st {
    char *name;
    ckpt_map map;              /* when opened from a file */
    const unsigned char *data; /* the data region */
    uint64_t data_size;
    gr_json_doc *doc;
    const gr_json *meta;       /* "__metadata__" object or NULL */
    gr_st_tensor *t;
    int64_t n;
    int64_t *by_name;          /* tensor indices sorted by name */
};

static const struct { const char *name; size_t size; } dtypes[GR_ST_DTYPE_COUNT] = {
    {"BOOL", 1}, {"U8", 1}, {"I8", 1}, {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"I16", 2}, {"U16", 2},
    {"F16", 2}, {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4}, {"F64", 8}, {"I64", 8}, {"U64", 8},
};

const char *gr_st_dtype_name(gr_st_dtype t) { return (unsigned)t < GR_ST_DTYPE_COUNT ? dtypes[t].name : "?"; }
size_t gr_st_dtype_size(gr_st_dtype t) { return (unsigned)t < GR_ST_DTYPE_COUNT ? dtypes[t].size : 0; }

/* An integer JSON number >= 0 into *out; 0 when it is not one. */
static int json_u64(const gr_json *v, uint64_t *out)
{
    if (!v || v->type != GR_JSON_NUMBER || !v->u.num.is_int || v->u.num.i < 0) return 0;
    *out = (uint64_t)v->u.num.i;
    return 1;
}

static _Thread_local const gr_st *sort_st; /* qsort context during open */
static int cmp_name(const void *a, const void *b)
{
    return strcmp(sort_st->t[*(const int64_t *)a].name, sort_st->t[*(const int64_t *)b].name);
}
static int cmp_begin(const void *a, const void *b)
{
    const gr_st_tensor *x = &sort_st->t[*(const int64_t *)a], *y = &sort_st->t[*(const int64_t *)b];
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : 0;
}

/* Validate one tensor entry into *t. */
static int parse_tensor(gr_st *st, const gr_json *m, gr_st_tensor *t)
{
    const char *nm = st->name, *key = m->key;
    if (m->type != GR_JSON_OBJECT) return gr_errorf("%s: header: tensor '%s': not a JSON object", nm, key);
    t->name = key;
    const gr_json *dt = gr_json_get(m, "dtype"), *sh = gr_json_get(m, "shape"), *off = gr_json_get(m, "data_offsets");
    const char *ds = gr_json_str(dt);
    if (!ds) return gr_errorf("%s: header: tensor '%s': field 'dtype' missing or not a string", nm, key);
    int k = 0;
    while (k < GR_ST_DTYPE_COUNT && strcmp(ds, dtypes[k].name)) k++;
    if (k == GR_ST_DTYPE_COUNT || strlen(ds) != dt->n)
        return gr_errorf("%s: header: tensor '%s': field 'dtype': unknown dtype '%.32s'", nm, key, ds);
    t->dtype = (gr_st_dtype)k;
    if (!sh || sh->type != GR_JSON_ARRAY) return gr_errorf("%s: header: tensor '%s': field 'shape' missing or not an array", nm, key);
    if (sh->n > GR_ST_MAX_DIMS)
        return gr_errorf("%s: header: tensor '%s': field 'shape': %zu dims, at most %d supported", nm, key, sh->n, GR_ST_MAX_DIMS);
    t->ndim = (int)sh->n;
    uint64_t n = 1;
    for (size_t i = 0; i < sh->n; i++) {
        const gr_json *v = &sh->u.items[i];
        uint64_t d;
        if (v->type == GR_JSON_NUMBER && v->u.num.is_int && v->u.num.i <= 0)
            return gr_errorf("%s: header: tensor '%s': field 'shape': dimension %zu is %" PRId64 ": must be >= 1",
                             nm, key, i, v->u.num.i);
        if (!json_u64(v, &d)) return gr_errorf("%s: header: tensor '%s': field 'shape': dimension %zu is not an integer", nm, key, i);
        if (__builtin_mul_overflow(n, d, &n) || n > (uint64_t)INT64_MAX)
            return gr_errorf("%s: header: tensor '%s': field 'shape': element count overflows", nm, key);
        t->shape[i] = (int64_t)d;
    }
    t->n = (int64_t)n;
    if (!off || off->type != GR_JSON_ARRAY || off->n != 2 || !json_u64(&off->u.items[0], &t->begin) ||
        !json_u64(&off->u.items[1], &t->end))
        return gr_errorf("%s: header: tensor '%s': field 'data_offsets' must be [begin, end] non-negative integers", nm, key);
    if (t->begin > t->end || t->end > st->data_size)
        return gr_errorf("%s: header: tensor '%s': field 'data_offsets' [%" PRIu64 ", %" PRIu64
                         "] outside the data region (%" PRIu64 " bytes)", nm, key, t->begin, t->end, st->data_size);
    uint64_t bytes;
    if (__builtin_mul_overflow(n, (uint64_t)dtypes[k].size, &bytes) || bytes != t->end - t->begin)
        return gr_errorf("%s: header: tensor '%s': shape has %" PRIu64 " %s elements but data_offsets span %" PRIu64
                         " bytes (wrong size)", nm, key, n, dtypes[k].name, t->end - t->begin);
    t->data = st->data + t->begin;
    return GR_OK;
}

static int parse_header(gr_st *st, const unsigned char *base, size_t size)
{
    const char *nm = st->name;
    if (size < 8) return gr_errorf("%s: truncated: %zu bytes, the 8-byte header length is missing", nm, size);
    uint64_t hl;
    memcpy(&hl, base, 8);
    if (hl > GR_ST_MAX_HEADER)
        return gr_errorf("%s: header length %" PRIu64 " exceeds the %" PRIu64 "-byte cap", nm, hl, GR_ST_MAX_HEADER);
    if (hl > size - 8)
        return gr_errorf("%s: header length %" PRIu64 " runs past the end of the file (%zu bytes)", nm, hl, size);
    st->data = base + 8 + hl;
    st->data_size = size - 8 - hl;
    char jname[300];
    snprintf(jname, sizeof jname, "%s: header", nm);
    st->doc = gr_json_parse((const char *)base + 8, (size_t)hl, jname);
    if (!st->doc) return GR_ERR;
    const gr_json *root = gr_json_root(st->doc);
    if (root->type != GR_JSON_OBJECT) return gr_errorf("%s: header: not a JSON object", nm);
    st->t = calloc(root->n ? root->n : 1, sizeof *st->t);
    st->by_name = calloc(root->n ? root->n : 1, sizeof *st->by_name);
    if (!st->t || !st->by_name) return gr_errorf("%s: out of memory", nm);
    for (size_t i = 0; i < root->n; i++) {
        const gr_json *m = &root->u.items[i];
        if (!m->key_len || strlen(m->key) != m->key_len)
            return gr_errorf("%s: header: member %zu: tensor name is empty or contains a NUL byte", nm, i);
        if (!strcmp(m->key, "__metadata__")) {
            if (st->meta) return gr_errorf("%s: header: duplicate '__metadata__'", nm);
            if (m->type != GR_JSON_OBJECT) return gr_errorf("%s: header: '__metadata__' is not an object", nm);
            for (size_t j = 0; j < m->n; j++)
                if (m->u.items[j].type != GR_JSON_STRING)
                    return gr_errorf("%s: header: '__metadata__' value '%s' is not a string", nm, m->u.items[j].key);
            st->meta = m;
            continue;
        }
        if (parse_tensor(st, m, &st->t[st->n])) return GR_ERR;
        st->by_name[st->n] = st->n;
        st->n++;
    }
    sort_st = st;
    qsort(st->by_name, (size_t)st->n, sizeof *st->by_name, cmp_name);
    for (int64_t i = 1; i < st->n; i++)
        if (!strcmp(st->t[st->by_name[i]].name, st->t[st->by_name[i - 1]].name))
            return gr_errorf("%s: header: duplicate tensor '%s'", nm, st->t[st->by_name[i]].name);
    int64_t *by_off = malloc((size_t)(st->n ? st->n : 1) * sizeof *by_off);
    if (!by_off) return gr_errorf("%s: out of memory", nm);
    for (int64_t i = 0; i < st->n; i++) by_off[i] = i;
    qsort(by_off, (size_t)st->n, sizeof *by_off, cmp_begin);
    int rc = GR_OK;
    for (int64_t i = 1; i < st->n && !rc; i++) {
        const gr_st_tensor *a = &st->t[by_off[i - 1]], *b = &st->t[by_off[i]];
        if (b->begin < a->end)
            rc = gr_errorf("%s: header: tensors '%s' [%" PRIu64 ", %" PRIu64 ") and '%s' [%" PRIu64 ", %" PRIu64
                           ") overlap", nm, a->name, a->begin, a->end, b->name, b->begin, b->end);
    }
    free(by_off);
    return rc;
}

static gr_st *finish_open(gr_st *st, const void *data, size_t size)
{
    if (parse_header(st, data, size)) {
        gr_st_close(st);
        return NULL;
    }
    return st;
}

gr_st *gr_st_open_memory(const void *data, size_t size, const char *name)
{
    gr_st *st = calloc(1, sizeof *st);
    if (!st || !(st->name = gr_strdup(name ? name : "<safetensors>"))) {
        free(st);
        gr_errorf("out of memory");
        return NULL;
    }
    return finish_open(st, data, data ? size : 0);
}

gr_st *gr_st_open(const char *path)
{
    gr_st *st = calloc(1, sizeof *st);
    if (!st || !(st->name = gr_strdup(path))) {
        free(st);
        gr_errorf("out of memory");
        return NULL;
    }
    if (ckpt_map_file(path, &st->map)) {
        gr_st_close(st);
        return NULL;
    }
    return finish_open(st, st->map.data, st->map.size);
}

void gr_st_close(gr_st *st)
{
    if (!st) return;
    ckpt_unmap(&st->map);
    gr_json_free(st->doc);
    free(st->t);
    free(st->by_name);
    free(st->name);
    free(st);
}

int64_t gr_st_n_tensors(const gr_st *st) { return st->n; }

const gr_st_tensor *gr_st_tensor_at(const gr_st *st, int64_t i)
{
    return i >= 0 && i < st->n ? &st->t[i] : NULL;
}

const gr_st_tensor *gr_st_find(const gr_st *st, const char *name)
{
    int64_t lo = 0, hi = st->n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = strcmp(st->t[st->by_name[mid]].name, name);
        if (!c) return &st->t[st->by_name[mid]];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

const char *gr_st_metadata(const gr_st *st, const char *key)
{
    return gr_json_str(gr_json_get(st->meta, key));
}

int gr_st_to_f32(const gr_st_tensor *t, float *dst)
{
    const unsigned char *p = t->data;
    switch (t->dtype) {
    case GR_ST_F32:
        memcpy(dst, p, (size_t)t->n * sizeof(float));
        return GR_OK;
    case GR_ST_F16:
    case GR_ST_BF16:
        for (int64_t i = 0; i < t->n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = t->dtype == GR_ST_F16 ? gr_fp16_to_fp32(h) : gr_bf16_to_fp32(h);
        }
        return GR_OK;
    case GR_ST_F64:
        for (int64_t i = 0; i < t->n; i++) {
            double v;
            memcpy(&v, p + 8 * i, 8);
            dst[i] = v > FLT_MAX ? INFINITY : v < -FLT_MAX ? -INFINITY : (float)v; /* NaN stays NaN */
        }
        return GR_OK;
    default:
        return gr_errorf("tensor '%s': dtype %s cannot be converted to F32 (F32, F16, BF16, F64 only)", t->name,
                         gr_st_dtype_name(t->dtype));
    }
}
