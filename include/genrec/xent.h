/* Fused output classifier + softmax cross-entropy, shared by SASRec (items)
 * and the language model (vocabulary).
 *
 * Given hidden states h (N, C) and a weight matrix W (V, C) (item or token
 * embeddings, usually tied to the input embeddings), logits = h·Wᵀ (+ bias),
 * and the loss is the mean over non-ignored rows (target >= 0) of
 * -log softmax(logits)[target]. The (N, V) logits matrix is never built:
 * rows are processed in chunks (gathering the non-ignored rows), each chunk's
 * logits are turned into dlogits in place, and the gradients are accumulated
 * with two more GEMMs (dh += dlogits·W, dW += dlogitsᵀ·h). Cost: 3 GEMMs of
 * N·V·C plus one vectorised exp per logit; memory: chunk·V floats.
 *
 * The sampled variant replaces the full softmax by the positive plus K
 * negatives drawn uniformly (shared by a chunk of rows; a negative equal to a
 * row's positive is masked out for that row), optionally with cosine logits
 * divided by a temperature (the HSTU configuration: K = 128, tau = 0.05).
 *
 * All gradient outputs are accumulated (+=), following the llm.c contract.
 * Results are deterministic for a given thread count.
 */
#ifndef GENREC_XENT_H
#define GENREC_XENT_H
#include <stdint.h>
#include "genrec/common.h"
#include "genrec/rng.h"

/* Reusable scratch memory, so a training loop does not allocate. Zero-
 * initialise (gr_xent_ws ws = {0};) and release with gr_xent_ws_free(). It
 * grows on demand; `chunk` (rows per chunk, 0 = automatic) may be set by the
 * caller before the first call. */
typedef struct gr_xent_ws {
    int chunk;        /* rows per chunk; 0 = choose from V (about 8 MB of logits, 32..512 rows) */
    int shared;       /* 1: never give threads private dW copies (see gr_xent_full) */
    float *buf;       /* scratch floats */
    int64_t cap;      /* floats in buf */
    int32_t *idx;     /* scratch ints (row indices, negatives) */
    int64_t icap;
    double *dbuf;     /* per-row losses (deterministic reduction) */
    int64_t dcap;
} gr_xent_ws;

/* Free the scratch buffers (chunk and shared are kept). NULL is fine. */
void gr_xent_ws_free(gr_xent_ws *ws);

/* Full softmax cross-entropy over all V classes.
 *   h      (N, C)  hidden states
 *   W      (V, C)  class embeddings
 *   bias   (V)     or NULL
 *   target (N)     class id in [0, V), or -1 (any negative) = ignore the row
 *   loss_out       mean loss over non-ignored rows (0 when all are ignored); may be NULL
 *   dh     (N, C)  += dloss/dh, or NULL
 *   dW     (V, C)  += dloss/dW, or NULL
 *   dbias  (V)     += dloss/dbias, or NULL (ignored when bias is NULL)
 * When dh, dW and dbias are all NULL only the loss is computed (one GEMM).
 * Returns GR_OK, or GR_ERR with a message on a bad argument (target >= V,
 * non-positive sizes) or when scratch memory cannot be allocated. Allocates
 * and frees its own scratch; use gr_xent_full() in loops. */
int gr_xent_forward_backward(const float *h, const float *W, const float *bias,
                             const int32_t *target, int N, int V, int C,
                             float *loss_out, float *dh, float *dW, float *dbias);

/* Same as gr_xent_forward_backward() with caller-owned scratch ws.
 * Threads: with T = gr_threads_get() > 1 threads, chunks are processed in
 * parallel, each thread accumulating dW into a private (C, V) copy that is
 * summed in a fixed order at the end, when T * V * C floats fit in 256 MB
 * and ws->shared is 0; otherwise chunks go one at a time with threaded
 * GEMMs. Either way the result depends only on the inputs, ws->chunk and T. */
int gr_xent_full(gr_xent_ws *ws, const float *h, const float *W, const float *bias,
                 const int32_t *target, int N, int V, int C,
                 float *loss_out, float *dh, float *dW, float *dbias);

/* Options of the sampled softmax. */
typedef struct gr_xent_sampled_opts {
    int n_neg;          /* K negatives per chunk, drawn uniformly from [0, V) with replacement */
    int cosine;         /* 1: logits = cos(h, W[i]) / temperature (L2 norms, eps 1e-6) */
    float temperature;  /* divides the logits (cosine or dot); <= 0 means 1 */
} gr_xent_sampled_opts;

/* Sampled softmax cross-entropy: per row, softmax over {positive} plus the
 * chunk's K negatives with any negative equal to the row's positive masked.
 * Arguments as gr_xent_full(); rng draws the negatives (a deterministic
 * stream for a given seed, chunk size and N). Rows per chunk is ws->chunk or
 * 256. GR_ERR on bad arguments (n_neg < 1) or allocation failure. */
int gr_xent_sampled(gr_xent_ws *ws, const gr_xent_sampled_opts *o, gr_rng *rng,
                    const float *h, const float *W, const float *bias,
                    const int32_t *target, int N, int V, int C,
                    float *loss_out, float *dh, float *dW, float *dbias);

/* Scoring helper: out (n, V) = h[rows[i]]·Wᵀ (+ bias) for i in [0, n).
 * rows may be NULL (rows 0..n-1 of h). h has ldh floats per row (>= C).
 * Never fails for valid pointers; returns GR_ERR only on bad sizes. */
int gr_xent_logits(const float *h, int ldh, const int32_t *rows, int n,
                   const float *W, const float *bias, int V, int C, float *out);

/* exp() of n floats in place, vectorised (AVX2 when available); max relative
 * error about 2e-7 for inputs in [-87, 88]; below -87 gives 0. Exposed for
 * the softmaxes of the attention and the tests. */
void gr_vexpf(float *x, int64_t n);

#endif
