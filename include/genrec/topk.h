/* Heap-based top-k selection over score rows, with seen-item masking.
 *
 * Used by `genrec recommend`, the demo and any caller that needs the k best
 * items of a [n_items] score row without sorting the whole catalogue
 * (O(n_items log k)).
 *
 * Order of the result: score descending; equal scores by smaller item id
 * first - the same tie rule as the evaluator (genrec/eval.h), so the item at
 * position r of a top-k list has rank r in gr_eval_rank() terms.
 * Items whose score is NaN or -INFINITY ("the model cannot return this item")
 * and excluded items are never returned; when fewer than k items remain the
 * list is shorter (and the batch form pads with item -1, score -INFINITY).
 */
#ifndef GENREC_TOPK_H
#define GENREC_TOPK_H
#include <stdint.h>
#include "genrec/split.h"

/* The k best items of scores[0..n_items). exclude[0..n_exclude) lists items to
 * skip (any order, duplicates and out-of-range ids are ignored; may be NULL
 * when n_exclude == 0). Writes up to k items (best first) to out_items and, if
 * out_scores is not NULL, their scores. Returns the number written (0..k), or
 * -1 with an error message when k < 0, n_items < 0 or memory runs out
 * (only an exclude list longer than 512 items allocates). The caller owns all
 * buffers; out_items (used as the heap while scanning) must not overlap
 * scores or exclude. */
int32_t gr_topk(const float *scores, int32_t n_items, int32_t k,
                const int32_t *exclude, int32_t n_exclude,
                int32_t *out_items, float *out_scores);

/* Top-k for n score rows at once (scores is [n, n_items] row-major, e.g. the
 * output of a model's score()), in parallel over rows. With exclude_seen the
 * items of q[r].hist are skipped for row r (q may be NULL when exclude_seen
 * is 0). out_items is [n, k] (and out_scores, if not NULL, [n, k]); rows
 * with fewer than k eligible items are padded with -1 / -INFINITY. Returns
 * GR_OK, or GR_ERR with a message on bad arguments or out of memory. */
int gr_topk_batch(const float *scores, int n, int32_t n_items, int32_t k,
                  const gr_query *q, int exclude_seen,
                  int32_t *out_items, float *out_scores);

#endif
