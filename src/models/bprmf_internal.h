/* BPR-MF internals exposed for tests (finite-difference gradient check). Not
 * part of the public API. */
#ifndef GENREC_BPRMF_INTERNAL_H
#define GENREC_BPRMF_INTERNAL_H
#include <stdint.h>

#include "genrec/rng.h"

/* Mean BPR loss of n triples (u[t], i[t], j[t]) for user factors P
 * [n_users, dim], item factors Q [n_items, dim] and item biases B [n_items]:
 *
 *   x_t  = P[u]·(Q[i] - Q[j]) + B[i] - B[j]
 *   L    = (1/n) Σ_t [ softplus(-x_t)
 *                      + reg/2 (|P[u]|² + |Q[i]|² + |Q[j]|² + B[i]² + B[j]²) ]
 *
 * Its gradient is ACCUMULATED (+=) into gP, gQ, gB (same shapes as P, Q, B).
 * Triples with j[t] < 0 (no negative available) are skipped but still count
 * in n. buf is scratch of n * (3*dim + 2) floats. The per-triple work runs in
 * parallel and the scatter is serial in triple order, so the result does not
 * depend on the number of threads. Returns the loss (0 when n == 0). */
double bprmf_batch_loss_grad(int dim, const float *P, const float *Q, const float *B,
                             const int32_t *u, const int32_t *i, const int32_t *j, int64_t n,
                             float reg, float *gP, float *gQ, float *gB, float *buf);

/* A uniform random item in [0, n_items) that is not in seen[0..ns) (sorted
 * ascending, unique), or -1 when every item is seen. Exact (no rejection
 * loop): draws r uniformly among the n_items - ns unseen items and returns
 * the r-th of them by binary search. */
int32_t bprmf_sample_negative(gr_rng *rng, int32_t n_items, const int32_t *seen, int32_t ns);

#endif
