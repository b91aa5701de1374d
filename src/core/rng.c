/* xoshiro256** (Blackman & Vigna) seeded through splitmix64. */
#include "genrec/rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void gr_rng_seed(gr_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t gr_rng_u64(gr_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t gr_rng_below(gr_rng *r, uint64_t n)
{
    /* Lemire's nearly divisionless method. */
    unsigned __int128 m = (unsigned __int128)gr_rng_u64(r) * n;
    uint64_t l = (uint64_t)m;
    if (l < n) {
        uint64_t t = -n % n;
        while (l < t) {
            m = (unsigned __int128)gr_rng_u64(r) * n;
            l = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

float gr_rng_float(gr_rng *r) { return (float)(gr_rng_u64(r) >> 40) * 0x1.0p-24f; }
double gr_rng_double(gr_rng *r) { return (double)(gr_rng_u64(r) >> 11) * 0x1.0p-53; }

double gr_rng_normal(gr_rng *r)
{
    double u1 = gr_rng_double(r), u2 = gr_rng_double(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

gr_rng gr_rng_fork(const gr_rng *r, uint64_t stream)
{
    gr_rng out;
    uint64_t x = r->s[0] ^ rotl(r->s[1], 13) ^ (stream * 0xd1342543de82ef95ULL + 1);
    for (int i = 0; i < 4; i++) out.s[i] = splitmix64(&x);
    return out;
}

void gr_rng_shuffle_i32(gr_rng *r, int32_t *a, int64_t n)
{
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)gr_rng_below(r, (uint64_t)i + 1);
        int32_t t = a[i]; a[i] = a[j]; a[j] = t;
    }
}
