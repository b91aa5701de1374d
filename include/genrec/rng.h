/* Deterministic pseudo-random numbers (xoshiro256** seeded by splitmix64).
 * The same seed gives the same stream on every platform. Not thread-safe:
 * give each thread its own gr_rng (gr_rng_fork). */
#ifndef GENREC_RNG_H
#define GENREC_RNG_H
#include <stdint.h>

typedef struct gr_rng { uint64_t s[4]; } gr_rng;

void gr_rng_seed(gr_rng *r, uint64_t seed);
uint64_t gr_rng_u64(gr_rng *r);
/* Uniform in [0, n) without modulo bias; n > 0. */
uint64_t gr_rng_below(gr_rng *r, uint64_t n);
/* Uniform float/double in [0, 1). */
float gr_rng_float(gr_rng *r);
double gr_rng_double(gr_rng *r);
/* Standard normal (Box-Muller). */
double gr_rng_normal(gr_rng *r);
/* A new independent stream derived from r and a stream index. */
gr_rng gr_rng_fork(const gr_rng *r, uint64_t stream);
/* Fisher-Yates shuffle of n int32 values. */
void gr_rng_shuffle_i32(gr_rng *r, int32_t *a, int64_t n);

#endif
