/* Open-addressing (linear probing) string -> int32 hash map. */
#include "data/strmap.h"

#include <string.h>

#include "genrec/common.h"

uint64_t gr_strhash(const char *s, size_t n)
{
    /* FNV-1a over 8-byte words, then a strong final mix (splitmix64). */
    uint64_t h = 0xcbf29ce484222325ULL ^ (uint64_t)n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        h = (h ^ w) * 0x100000001b3ULL;
        h ^= h >> 29;
    }
    for (; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
    h ^= h >> 30; h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27; h *= 0x94d049bb133111ebULL;
    return h ^ (h >> 31);
}

void gr_strmap_init(gr_strmap *m) { memset(m, 0, sizeof *m); }

void gr_strmap_free(gr_strmap *m)
{
    gr_free(m->slot);
    memset(m, 0, sizeof *m);
}

static uint64_t key_prefix(const char *s, size_t n)
{
    uint64_t p = 0;
    memcpy(&p, s, n < 8 ? n : 8);
    return p;
}

static size_t find_slot(const gr_strmap *m, const char *s, size_t n, uint64_t h)
{
    size_t mask = m->cap - 1, i = (size_t)h & mask;
    uint32_t h32 = (uint32_t)(h >> 32);
    uint64_t pre = key_prefix(s, n);
    for (;;) {
        const gr_strmap_slot *e = &m->slot[i];
        if (!e->key) return i;
        if (e->hash == h32 && e->klen == n && e->prefix == pre && (n <= 8 || memcmp(e->key + 8, s + 8, n - 8) == 0))
            return i;
        i = (i + 1) & mask;
    }
}

int32_t gr_strmap_get(const gr_strmap *m, const char *s, size_t n)
{
    if (!m->cap) return -1;
    size_t i = find_slot(m, s, n, gr_strhash(s, n));
    return m->slot[i].key ? m->slot[i].val : -1;
}

static int grow(gr_strmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 1024;
    gr_strmap nm = {0};
    nm.cap = cap;
    nm.slot = gr_calloc(cap, sizeof *nm.slot);
    if (!nm.slot) return GR_ERR;
    for (size_t j = 0; j < m->cap; j++) {
        const gr_strmap_slot *e = &m->slot[j];
        if (!e->key) continue;
        size_t mask = cap - 1, i = (size_t)gr_strhash(e->key, e->klen) & mask;
        while (nm.slot[i].key) i = (i + 1) & mask;
        nm.slot[i] = *e;
    }
    nm.n = m->n;
    gr_strmap_free(m);
    *m = nm;
    return GR_OK;
}

int32_t gr_strmap_put(gr_strmap *m, const char *s, size_t n, int32_t v)
{
    if (n > UINT32_MAX) { gr_errorf("hash map key of %zu bytes is too long", n); return -2; }
    if ((m->n + 1) * 4 > m->cap * 3 && grow(m) != GR_OK) return -2;
    uint64_t h = gr_strhash(s, n);
    size_t i = find_slot(m, s, n, h);
    gr_strmap_slot *e = &m->slot[i];
    if (e->key) return e->val;
    e->key = s;
    e->prefix = key_prefix(s, n);
    e->klen = (uint32_t)n;
    e->hash = (uint32_t)(h >> 32);
    e->val = v;
    m->n++;
    return v;
}
