/* GGUF v3 writer: a builder of key/values (kept in their on-disk encoding)
 * and tensors, written atomically (gr_afile). */
#include "genrec/common.h"
#include "genrec/gguf.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

typedef struct wkv {
    char *key;
    gr_gguf_type type;
    uint8_t *blob;   /* the value as written after the type field */
    size_t len;
} wkv;

typedef struct wtensor {
    char *name;
    gr_ggml_type type;
    uint32_t n_dims;
    int64_t ne[GR_GGUF_MAX_DIMS];
    const void *data;
    size_t nbytes;
    void *owned;
} wtensor;

struct gr_gguf_builder {
    wkv *kv;
    int64_t n_kv, cap_kv;
    wtensor *t;
    int64_t n_t, cap_t;
};

gr_gguf_builder *gr_gguf_builder_new(void)
{
    gr_gguf_builder *b = calloc(1, sizeof *b);
    if (!b) gr_errorf("out of memory");
    return b;
}

void gr_gguf_builder_free(gr_gguf_builder *b)
{
    if (!b) return;
    for (int64_t i = 0; i < b->n_kv; i++) { free(b->kv[i].key); free(b->kv[i].blob); }
    for (int64_t i = 0; i < b->n_t; i++) { free(b->t[i].name); gr_free(b->t[i].owned); }
    free(b->kv);
    free(b->t);
    free(b);
}

/* ---- key/values ------------------------------------------------------------------- */

/* Take ownership of blob and store it under key (replacing an existing value). */
static int put(gr_gguf_builder *b, const char *key, gr_gguf_type type, uint8_t *blob, size_t len)
{
    size_t kl = key ? strlen(key) : 0;
    if (!kl || kl > GR_GGUF_MAX_KEY) {
        free(blob);
        return gr_errorf("gguf writer: key '%.64s' must be 1..%d bytes", key ? key : "(null)", GR_GGUF_MAX_KEY);
    }
    for (int64_t i = 0; i < b->n_kv; i++)
        if (!strcmp(b->kv[i].key, key)) {
            free(b->kv[i].blob);
            b->kv[i].type = type;
            b->kv[i].blob = blob;
            b->kv[i].len = len;
            return GR_OK;
        }
    if (b->n_kv == b->cap_kv) {
        int64_t cap = b->cap_kv ? 2 * b->cap_kv : 16;
        wkv *nk = realloc(b->kv, (size_t)cap * sizeof *nk);
        if (!nk) { free(blob); return gr_errorf("out of memory"); }
        b->kv = nk;
        b->cap_kv = cap;
    }
    char *k = gr_strdup(key);
    if (!k) { free(blob); return GR_ERR; }
    b->kv[b->n_kv++] = (wkv){k, type, blob, len};
    return GR_OK;
}

static int put_scalar(gr_gguf_builder *b, const char *key, gr_gguf_type type, const void *v, size_t n)
{
    uint8_t *blob = malloc(n);
    if (!blob) return gr_errorf("out of memory");
    memcpy(blob, v, n);
    return put(b, key, type, blob, n);
}

int gr_gguf_set_u8(gr_gguf_builder *b, const char *k, uint8_t v) { return put_scalar(b, k, GR_GGUF_U8, &v, 1); }
int gr_gguf_set_i8(gr_gguf_builder *b, const char *k, int8_t v) { return put_scalar(b, k, GR_GGUF_I8, &v, 1); }
int gr_gguf_set_u16(gr_gguf_builder *b, const char *k, uint16_t v) { return put_scalar(b, k, GR_GGUF_U16, &v, 2); }
int gr_gguf_set_i16(gr_gguf_builder *b, const char *k, int16_t v) { return put_scalar(b, k, GR_GGUF_I16, &v, 2); }
int gr_gguf_set_u32(gr_gguf_builder *b, const char *k, uint32_t v) { return put_scalar(b, k, GR_GGUF_U32, &v, 4); }
int gr_gguf_set_i32(gr_gguf_builder *b, const char *k, int32_t v) { return put_scalar(b, k, GR_GGUF_I32, &v, 4); }
int gr_gguf_set_f32(gr_gguf_builder *b, const char *k, float v) { return put_scalar(b, k, GR_GGUF_F32, &v, 4); }
int gr_gguf_set_u64(gr_gguf_builder *b, const char *k, uint64_t v) { return put_scalar(b, k, GR_GGUF_U64, &v, 8); }
int gr_gguf_set_i64(gr_gguf_builder *b, const char *k, int64_t v) { return put_scalar(b, k, GR_GGUF_I64, &v, 8); }
int gr_gguf_set_f64(gr_gguf_builder *b, const char *k, double v) { return put_scalar(b, k, GR_GGUF_F64, &v, 8); }

int gr_gguf_set_bool(gr_gguf_builder *b, const char *k, int v)
{
    uint8_t x = v ? 1 : 0;
    return put_scalar(b, k, GR_GGUF_BOOL, &x, 1);
}

int gr_gguf_set_strn(gr_gguf_builder *b, const char *key, const char *s, size_t len)
{
    if (len > GR_GGUF_MAX_STRING) return gr_errorf("gguf writer: key '%s': string of %zu bytes is too long", key, len);
    uint8_t *blob = malloc(8 + len);
    if (!blob) return gr_errorf("out of memory");
    uint64_t n = len;
    memcpy(blob, &n, 8);
    if (len) memcpy(blob + 8, s, len);
    return put(b, key, GR_GGUF_STRING, blob, 8 + len);
}

int gr_gguf_set_str(gr_gguf_builder *b, const char *key, const char *s)
{
    return gr_gguf_set_strn(b, key, s, strlen(s));
}

int gr_gguf_set_arr(gr_gguf_builder *b, const char *key, gr_gguf_type elem, const void *data, uint64_t n)
{
    size_t es = gr_gguf_type_size(elem);
    if (!es) return gr_errorf("gguf writer: key '%s': array element type %s is not numeric", key, gr_gguf_type_name(elem));
    if (n > GR_GGUF_MAX_ARRAY) return gr_errorf("gguf writer: key '%s': array of %" PRIu64 " elements is too long", key, n);
    if (elem == GR_GGUF_BOOL)
        for (uint64_t i = 0; i < n; i++)
            if (((const uint8_t *)data)[i] > 1) return gr_errorf("gguf writer: key '%s': bool element %" PRIu64 " is not 0/1", key, i);
    size_t len = 12 + (size_t)n * es;
    uint8_t *blob = malloc(len);
    if (!blob) return gr_errorf("out of memory");
    uint32_t et = elem;
    memcpy(blob, &et, 4);
    memcpy(blob + 4, &n, 8);
    if (n) memcpy(blob + 12, data, (size_t)n * es);
    return put(b, key, GR_GGUF_ARRAY, blob, len);
}

int gr_gguf_set_arr_str(gr_gguf_builder *b, const char *key, const char *const *strs, const uint64_t *lens, uint64_t n)
{
    if (n > GR_GGUF_MAX_ARRAY) return gr_errorf("gguf writer: key '%s': array of %" PRIu64 " strings is too long", key, n);
    size_t len = 12;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t l = lens ? lens[i] : strlen(strs[i]);
        if (l > GR_GGUF_MAX_STRING) return gr_errorf("gguf writer: key '%s': string %" PRIu64 " is too long", key, i);
        len += 8 + (size_t)l;
    }
    uint8_t *blob = malloc(len);
    if (!blob) return gr_errorf("out of memory");
    uint32_t et = GR_GGUF_STRING;
    memcpy(blob, &et, 4);
    memcpy(blob + 4, &n, 8);
    size_t at = 12;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t l = lens ? lens[i] : strlen(strs[i]);
        memcpy(blob + at, &l, 8);
        if (l) memcpy(blob + at + 8, strs[i], (size_t)l);
        at += 8 + (size_t)l;
    }
    return put(b, key, GR_GGUF_ARRAY, blob, len);
}

int gr_gguf_set_kv(gr_gguf_builder *b, const gr_gguf_kv *kv)
{
    switch (kv->type) {
    case GR_GGUF_STRING: return gr_gguf_set_strn(b, kv->key, kv->v.str, (size_t)kv->n);
    case GR_GGUF_ARRAY:
        if (kv->arr_type == GR_GGUF_STRING) return gr_gguf_set_arr_str(b, kv->key, kv->v.strs, kv->str_lens, kv->n);
        return gr_gguf_set_arr(b, kv->key, kv->arr_type, kv->v.arr, kv->n);
    default: {
        size_t es = gr_gguf_type_size(kv->type);
        if (!es) return gr_errorf("gguf writer: key '%s': bad type %d", kv->key, (int)kv->type);
        return put_scalar(b, kv->key, kv->type, &kv->v, es);
    }
    }
}

/* ---- tensors ---------------------------------------------------------------------------- */

static int check_shape(const char *name, gr_ggml_type type, uint32_t n_dims, const int64_t *ne, int64_t *nel)
{
    int64_t blck = gr_ggml_blck_size(type);
    if (!blck) return gr_errorf("gguf writer: tensor '%s': unknown type %d", name, (int)type);
    if (n_dims < 1 || n_dims > GR_GGUF_MAX_DIMS) return gr_errorf("gguf writer: tensor '%s': n_dims %u not in 1..4", name, n_dims);
    int64_t n = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] < 0) return gr_errorf("gguf writer: tensor '%s': ne[%u] = %" PRId64 " is negative", name, d, ne[d]);
        if (ne[d] && n > INT64_MAX / ne[d]) return gr_errorf("gguf writer: tensor '%s': element count overflows", name);
        n *= ne[d];
    }
    if (ne[0] % blck)
        return gr_errorf("gguf writer: tensor '%s': ne[0] = %" PRId64 " is not a multiple of the %s block size %" PRId64,
                         name, ne[0], gr_ggml_type_name(type), blck);
    *nel = n;
    return GR_OK;
}

static int add_tensor(gr_gguf_builder *b, const char *name, gr_ggml_type type, uint32_t n_dims, const int64_t *ne,
                      const void *data, size_t nbytes, void *owned)
{
    size_t nl = name ? strlen(name) : 0;
    if (!nl || nl >= GR_GGUF_MAX_NAME) {
        gr_free(owned);
        return gr_errorf("gguf writer: tensor name '%.80s' must be 1..%d bytes", name ? name : "(null)", GR_GGUF_MAX_NAME - 1);
    }
    for (int64_t i = 0; i < b->n_t; i++)
        if (!strcmp(b->t[i].name, name)) { gr_free(owned); return gr_errorf("gguf writer: duplicate tensor name '%s'", name); }
    if (b->n_t == b->cap_t) {
        int64_t cap = b->cap_t ? 2 * b->cap_t : 16;
        wtensor *nt = realloc(b->t, (size_t)cap * sizeof *nt);
        if (!nt) { gr_free(owned); return gr_errorf("out of memory"); }
        b->t = nt;
        b->cap_t = cap;
    }
    char *nm = gr_strdup(name);
    if (!nm) { gr_free(owned); return GR_ERR; }
    wtensor *t = &b->t[b->n_t++];
    *t = (wtensor){.name = nm, .type = type, .n_dims = n_dims, .data = data, .nbytes = nbytes, .owned = owned};
    for (int d = 0; d < GR_GGUF_MAX_DIMS; d++) t->ne[d] = (uint32_t)d < n_dims ? ne[d] : 1;
    return GR_OK;
}

int gr_gguf_add_tensor(gr_gguf_builder *b, const char *name, gr_ggml_type type, uint32_t n_dims, const int64_t *ne,
                       const void *data, size_t nbytes)
{
    int64_t nel;
    size_t want;
    if (check_shape(name, type, n_dims, ne, &nel) || gr_ggml_nbytes(type, nel, &want)) return GR_ERR;
    if (want != nbytes)
        return gr_errorf("gguf writer: tensor '%s': %zu data bytes given, the shape needs %zu", name, nbytes, want);
    if (nbytes && !data) return gr_errorf("gguf writer: tensor '%s': no data", name);
    return add_tensor(b, name, type, n_dims, ne, data, nbytes, NULL);
}

int gr_gguf_add_tensor_f32(gr_gguf_builder *b, const char *name, gr_ggml_type type, uint32_t n_dims, const int64_t *ne,
                           const float *data)
{
    int64_t nel;
    size_t nbytes;
    if (check_shape(name, type, n_dims, ne, &nel) || gr_ggml_nbytes(type, nel, &nbytes)) return GR_ERR;
    if (type == GR_GGML_F32) return add_tensor(b, name, type, n_dims, ne, data, nbytes, NULL);
    void *buf = gr_alloc(nbytes ? nbytes : 1, 1);
    if (!buf) return GR_ERR;
    if (gr_ggml_from_f32(type, data, buf, nel)) {
        gr_free(buf);
        return gr_error_prefix("gguf writer: tensor '%s': ", name);
    }
    return add_tensor(b, name, type, n_dims, ne, buf, nbytes, buf);
}

/* ---- writing ---------------------------------------------------------------------------------- */

typedef struct wfile { FILE *f; const char *path; int err; } wfile; /* err: stop writing after a failure */

static void wr(wfile *w, const void *p, size_t n)
{
    if (w->err || !n) return;
    if (fwrite(p, 1, n, w->f) != n) w->err = 1;
}

static void wr_u32(wfile *w, uint32_t v) { wr(w, &v, 4); }
static void wr_u64(wfile *w, uint64_t v) { wr(w, &v, 8); }
static void wr_str(wfile *w, const char *s) { size_t n = strlen(s); wr_u64(w, n); wr(w, s, n); }

static void wr_pad(wfile *w, uint64_t *pos, uint64_t align)
{
    static const uint8_t zeros[256];
    uint64_t target = (*pos + align - 1) / align * align;
    while (*pos < target) {
        uint64_t n = target - *pos < sizeof zeros ? target - *pos : sizeof zeros;
        wr(w, zeros, (size_t)n);
        *pos += n;
    }
}

int gr_gguf_write(gr_gguf_builder *b, const char *path)
{
    uint32_t align = GR_GGUF_DEFAULT_ALIGNMENT;
    int quantized = 0;
    for (int64_t i = 0; i < b->n_t; i++)
        if (b->t[i].type != GR_GGML_F32 && b->t[i].type != GR_GGML_F16 && b->t[i].type != GR_GGML_BF16 &&
            b->t[i].type != GR_GGML_F64 && b->t[i].type < GR_GGML_I8)
            quantized = 1;
    int has_qv = 0;
    for (int64_t i = 0; i < b->n_kv; i++) {
        if (!strcmp(b->kv[i].key, "general.quantization_version")) has_qv = 1;
        if (strcmp(b->kv[i].key, "general.alignment")) continue;
        if (b->kv[i].type != GR_GGUF_U32) return gr_errorf("gguf writer: %s: general.alignment must be u32", path);
        memcpy(&align, b->kv[i].blob, 4);
        if (!align || (align & (align - 1)) || align > GR_GGUF_MAX_ALIGNMENT)
            return gr_errorf("gguf writer: %s: general.alignment %u is not a power of two <= %u", path, align, GR_GGUF_MAX_ALIGNMENT);
    }
    if (quantized && !has_qv && gr_gguf_set_u32(b, "general.quantization_version", 2)) return GR_ERR;

    gr_afile a;
    if (gr_afile_open(&a, path) != GR_OK) return GR_ERR;
    wfile w = {a.f, path, 0};
    uint64_t pos = 0;
    wr(&w, "GGUF", 4);
    wr_u32(&w, GR_GGUF_VERSION);
    wr_u64(&w, (uint64_t)b->n_t);
    wr_u64(&w, (uint64_t)b->n_kv);
    pos = 24;
    for (int64_t i = 0; i < b->n_kv; i++) {
        wr_str(&w, b->kv[i].key);
        wr_u32(&w, b->kv[i].type);
        wr(&w, b->kv[i].blob, b->kv[i].len);
        pos += 8 + strlen(b->kv[i].key) + 4 + b->kv[i].len;
    }
    uint64_t off = 0;
    for (int64_t i = 0; i < b->n_t; i++) {
        const wtensor *t = &b->t[i];
        wr_str(&w, t->name);
        wr_u32(&w, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++) wr_u64(&w, (uint64_t)t->ne[d]);
        wr_u32(&w, (uint32_t)t->type);
        wr_u64(&w, off);
        pos += 8 + strlen(t->name) + 4 + 8 * (uint64_t)t->n_dims + 4 + 8;
        off += ((uint64_t)t->nbytes + align - 1) / align * align;
    }
    if (b->n_t) wr_pad(&w, &pos, align);
    for (int64_t i = 0; i < b->n_t; i++) {
        wr(&w, b->t[i].data, b->t[i].nbytes);
        pos += b->t[i].nbytes;
        wr_pad(&w, &pos, align);
    }
    return gr_afile_commit(&a); /* a failed write left a.f in error: commit reports it */
}
