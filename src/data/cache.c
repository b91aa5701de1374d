/* Versioned binary dataset cache.
 *
 * Layout (all integers little-endian):
 *   "GRDS"  u32 version (1)  u32 flags (bit0 has_time, bit1 has_rating)
 *   i32 n_users  i32 n_items  i64 n_inter
 *   str name  str format                               (str = u32 length + bytes)
 *   str user_key[n_users]
 *   str item_key[n_items] item_title[..] item_genres[..] item_brand[..] item_text[..]
 *   i64 user_off[n_users+1]  i32 inter_item[n_inter]  i64 inter_time[n_inter]
 *   f32 inter_rating[n_inter]                          (only when has_rating)
 *   u32 crc32 of everything before it
 * Written atomically (gr_afile). Reading checks every length against the bytes left, the CRC, that strings
 * are valid UTF-8 without NUL, that user_off is monotone from 0 to n_inter and
 * that every item id is in range.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/text.h"
#include "genrec/dataset.h"

#define CACHE_VERSION 1u

/* ---- writing ---------------------------------------------------------------------- */

typedef struct { FILE *f; uint32_t crc; int err; } wbuf;

static void put(wbuf *w, const void *p, size_t n)
{
    if (w->err || n == 0) return;
    if (fwrite(p, 1, n, w->f) != n) w->err = 1;
    w->crc = gr_crc32(w->crc, p, n);
}
static void put_u32(wbuf *w, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16), (unsigned char)(v >> 24)};
    put(w, b, 4);
}
static void put_u64(wbuf *w, uint64_t v)
{
    put_u32(w, (uint32_t)v);
    put_u32(w, (uint32_t)(v >> 32));
}
static void put_str(wbuf *w, const char *s)
{
    size_t n = strlen(s);
    put_u32(w, (uint32_t)n);
    put(w, s, n);
}
static void put_strs(wbuf *w, char **a, int32_t n)
{
    for (int32_t i = 0; i < n; i++) put_str(w, a[i]);
}

int gr_dataset_save_cache(const gr_dataset *d, const char *path)
{
    gr_afile a;
    if (gr_afile_open(&a, path) != GR_OK) return GR_ERR;
    wbuf w = {a.f, 0, 0};
    put(&w, "GRDS", 4);
    put_u32(&w, CACHE_VERSION);
    put_u32(&w, (uint32_t)((d->has_time ? 1 : 0) | (d->has_rating && d->inter_rating ? 2 : 0)));
    put_u32(&w, (uint32_t)d->n_users);
    put_u32(&w, (uint32_t)d->n_items);
    put_u64(&w, (uint64_t)d->n_inter);
    put_str(&w, d->name ? d->name : "");
    put_str(&w, d->format ? d->format : "");
    put_strs(&w, d->user_key, d->n_users);
    put_strs(&w, d->item_key, d->n_items);
    put_strs(&w, d->item_title, d->n_items);
    put_strs(&w, d->item_genres, d->n_items);
    put_strs(&w, d->item_brand, d->n_items);
    put_strs(&w, d->item_text, d->n_items);
    for (int32_t u = 0; u <= d->n_users; u++) put_u64(&w, (uint64_t)d->user_off[u]);
    for (int64_t k = 0; k < d->n_inter; k++) put_u32(&w, (uint32_t)d->inter_item[k]);
    for (int64_t k = 0; k < d->n_inter; k++) put_u64(&w, (uint64_t)d->inter_time[k]);
    if (d->has_rating && d->inter_rating)
        for (int64_t k = 0; k < d->n_inter; k++) {
            uint32_t v;
            memcpy(&v, &d->inter_rating[k], 4);
            put_u32(&w, v);
        }
    put_u32(&w, w.crc);
    return gr_afile_commit(&a); /* a short write left a.f in error: commit reports it */
}

/* ---- reading ---------------------------------------------------------------------- */

typedef struct { const unsigned char *p; size_t n, pos; const char *path; } rbuf;

static int need(rbuf *r, size_t n, const char *what)
{
    if (n > r->n - r->pos)
        return gr_errorf("%s: cache truncated or corrupt: %s needs %zu bytes at offset %zu, only %zu left",
                         r->path, what, n, r->pos, r->n - r->pos);
    return GR_OK;
}
static uint32_t get_u32(rbuf *r)
{
    const unsigned char *b = r->p + r->pos;
    r->pos += 4;
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}
static uint64_t get_u64(rbuf *r)
{
    uint64_t lo = get_u32(r);
    return lo | (uint64_t)get_u32(r) << 32;
}
static char *get_str(rbuf *r, const char *what, int64_t idx)
{
    if (need(r, 4, what) != GR_OK) return NULL;
    uint32_t n = get_u32(r);
    if (need(r, n, what) != GR_OK) return NULL;
    const char *s = (const char *)r->p + r->pos;
    if (memchr(s, '\0', n) || !gr_utf8_valid(s, n, NULL)) {
        gr_errorf("%s: cache corrupt: %s %lld is not valid UTF-8 text", r->path, what, (long long)idx);
        return NULL;
    }
    r->pos += n;
    return gr_strndup(s, n);
}
static char **get_strs(rbuf *r, int32_t n, const char *what)
{
    /* every string takes at least 4 bytes: bound n before allocating */
    if (need(r, (size_t)n * 4, what) != GR_OK) return NULL;
    char **a = calloc((size_t)n + 1, sizeof *a);
    if (!a) { gr_errorf("%s: out of memory", r->path); return NULL; }
    for (int32_t i = 0; i < n; i++)
        if (!(a[i] = get_str(r, what, i))) {
            for (int32_t j = 0; j < i; j++) free(a[j]);
            free(a);
            return NULL;
        }
    return a;
}

gr_dataset *gr_dataset_load_cache(const char *path)
{
    size_t len = 0;
    unsigned char *buf = (unsigned char *)gr_read_file(path, 0, &len);
    if (!buf) return NULL;
    rbuf r = {buf, len, 0, path};
    gr_dataset *d = calloc(1, sizeof *d);
    if (!d) { gr_errorf("%s: out of memory", path); free(buf); return NULL; }
    if (len < 32 || memcmp(buf, "GRDS", 4) != 0) {
        gr_errorf("%s: not a genrec dataset cache (magic \"GRDS\" missing)", path);
        goto fail;
    }
    uint32_t crc_file;
    {
        const unsigned char *b = buf + len - 4;
        crc_file = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    }
    r.pos = 4;
    uint32_t version = get_u32(&r);
    if (version != CACHE_VERSION) {
        gr_errorf("%s: cache version %u is not supported (this build reads version %u); rebuild it with "
                  "genrec info --save-cache", path, version, CACHE_VERSION);
        goto fail;
    }
    if (gr_crc32(0, buf, len - 4) != crc_file) {
        gr_errorf("%s: cache corrupt: checksum mismatch", path);
        goto fail;
    }
    r.n = len - 4; /* the CRC is not payload */
    uint32_t flags = get_u32(&r);
    uint32_t nu = get_u32(&r), ni = get_u32(&r);
    uint64_t nr = get_u64(&r);
    if (flags > 3 || nu > INT32_MAX - 1 || ni > INT32_MAX - 1 || nr > (uint64_t)(r.n - r.pos) / 12) {
        gr_errorf("%s: cache corrupt: bad header (flags %u, %u users, %u items, %llu interactions)", path,
                  flags, nu, ni, (unsigned long long)nr);
        goto fail;
    }
    d->has_time = flags & 1;
    d->has_rating = (flags >> 1) & 1;
    if (!(d->name = get_str(&r, "name", 0)) || !(d->format = gr_strdup("cache"))) goto fail;
    {
        char *orig = get_str(&r, "format", 0);
        if (!orig) goto fail;
        free(orig);
    }
    if (!(d->user_key = get_strs(&r, (int32_t)nu, "user key"))) goto fail;
    d->n_users = (int32_t)nu;
    if (!(d->item_key = get_strs(&r, (int32_t)ni, "item key"))) goto fail;
    d->n_items = (int32_t)ni; /* from here on, gr_dataset_free frees n_items entries of each array */
    char ***txt[4] = {&d->item_title, &d->item_genres, &d->item_brand, &d->item_text};
    static const char *tn[4] = {"item title", "item genres", "item brand", "item text"};
    for (int f = 0; f < 4; f++) {
        *txt[f] = get_strs(&r, (int32_t)ni, tn[f]);
        if (!*txt[f]) {
            /* keep gr_dataset_free's invariant: all string arrays have n_items entries */
            for (int g = f; g < 4; g++) *txt[g] = calloc((size_t)ni + 1, sizeof(char *));
            goto fail;
        }
    }
    size_t need_bytes = ((size_t)nu + 1) * 8 + (size_t)nr * (12 + (d->has_rating ? 4 : 0));
    if (need(&r, need_bytes, "interaction arrays") != GR_OK) goto fail;
    if (r.n - r.pos != need_bytes) {
        gr_errorf("%s: cache corrupt: %zu unexpected bytes after the interaction arrays", path,
                  r.n - r.pos - need_bytes);
        goto fail;
    }
    d->n_inter = (int64_t)nr;
    d->user_off = gr_alloc((size_t)nu + 1, sizeof(int64_t));
    d->inter_item = gr_alloc((size_t)nr, sizeof(int32_t));
    d->inter_time = gr_alloc((size_t)nr, sizeof(int64_t));
    if (d->has_rating) d->inter_rating = gr_alloc((size_t)nr, sizeof(float));
    if (!d->user_off || !d->inter_item || !d->inter_time || (d->has_rating && !d->inter_rating)) goto fail;
    for (uint32_t u = 0; u <= nu; u++) {
        d->user_off[u] = (int64_t)get_u64(&r);
        if ((u == 0 && d->user_off[0] != 0) || (u > 0 && d->user_off[u] < d->user_off[u - 1]) ||
            d->user_off[u] > d->n_inter || (u == nu && d->user_off[u] != d->n_inter)) {
            gr_errorf("%s: cache corrupt: user offset %u is out of order", path, u);
            goto fail;
        }
    }
    for (uint64_t k = 0; k < nr; k++) {
        uint32_t it = get_u32(&r);
        if (it >= ni) {
            gr_errorf("%s: cache corrupt: interaction %llu has item %u >= %u items", path,
                      (unsigned long long)k, it, ni);
            goto fail;
        }
        d->inter_item[k] = (int32_t)it;
    }
    for (uint64_t k = 0; k < nr; k++) d->inter_time[k] = (int64_t)get_u64(&r);
    if (d->has_rating)
        for (uint64_t k = 0; k < nr; k++) {
            uint32_t v = get_u32(&r);
            memcpy(&d->inter_rating[k], &v, 4);
        }
    free(buf);
    return d;
fail:
    free(buf);
    gr_dataset_free(d);
    return NULL;
}
