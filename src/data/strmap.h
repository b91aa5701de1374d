/* Internal: an open-addressing hash map from byte strings to int32 values,
 * used by the loaders and the dataset builder (keys -> dense ids).
 *
 * The map does not own its keys: each key must stay valid and unchanged
 * while it is in the map (the builder stores keys in its own vectors). */
#ifndef GENREC_DATA_STRMAP_H
#define GENREC_DATA_STRMAP_H
#include <stddef.h>
#include <stdint.h>

typedef struct gr_strmap_slot {
    const char *key;     /* NULL = empty slot */
    uint64_t prefix;     /* the key's first 8 bytes (zero padded): keys up to 8
                            bytes compare without touching the key's memory */
    uint32_t klen;
    uint32_t hash;       /* high 32 bits of the hash (fast reject) */
    int32_t val;
} gr_strmap_slot;

typedef struct gr_strmap {
    gr_strmap_slot *slot; /* [cap]: one cache line read per probe */
    size_t cap;           /* power of two */
    size_t n;
} gr_strmap;

/* 64-bit hash of n bytes (deterministic on every platform). */
uint64_t gr_strhash(const char *s, size_t n);

/* Initialise an empty map (no allocation until the first insert). */
void gr_strmap_init(gr_strmap *m);
/* Release the map's tables (not the keys). */
void gr_strmap_free(gr_strmap *m);
/* Value stored for key s[0..n), or -1 when absent. */
int32_t gr_strmap_get(const gr_strmap *m, const char *s, size_t n);
/* Insert key s[0..n) -> v unless present. Returns the value now stored for the
 * key (v if it was inserted, the old value otherwise), or -2 with an error
 * recorded on OOM. The key pointer is kept, not copied. */
int32_t gr_strmap_put(gr_strmap *m, const char *s, size_t n, int32_t v);

#endif
