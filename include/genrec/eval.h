/* One evaluation path for every model: full ranking (or the c20 candidate
 * list), HR@K, NDCG@K for K in {1,5,10,20,50} and MRR.
 *
 * Rank of the target (0-based) = number of items scoring strictly higher,
 * plus the number of items with an equal score and a smaller item id (ties are
 * broken deterministically, never in the target's favour by accident of
 * order). With exclude_seen (default on) the items of the query's history are
 * removed from the ranking, except the target itself. Under c20 only the
 * query's candidates take part. A NaN score counts as -INFINITY.
 * NDCG@K = 1/log2(rank+2) if rank < K else 0; HR@K = [rank < K];
 * MRR = 1/(rank+1) (uncut; cut at max_k when max_k > 0, see gr_metrics).
 * Every metric is the mean over the queries.
 */
#ifndef GENREC_EVAL_H
#define GENREC_EVAL_H
#include <stdio.h>

#include "genrec/model.h"

#define GR_EVAL_NK 5
extern const int gr_eval_ks[GR_EVAL_NK]; /* 1, 5, 10, 20, 50 */

typedef struct gr_metrics {
    double hr[GR_EVAL_NK];
    double ndcg[GR_EVAL_NK];
    double mrr;
    int64_t n;              /* queries scored */
    int max_k;              /* metrics at K > max_k are not defined (0 = all defined):
                               a generative model that returns only its top max_k
                               (beam) items; they are omitted from JSON and tables,
                               and MRR counts 0 for rank >= max_k */
} gr_metrics;

typedef struct gr_eval_opts {
    int exclude_seen;   /* default 1 */
    int batch;          /* queries scored per model call (default 256; reduced so
                           that batch x n_items floats stay <= 256 MiB) */
    int max_k;          /* default 0 (full ranking); see gr_metrics.max_k */
} gr_eval_opts;

/* Defaults: exclude_seen 1, batch 256, max_k 0. */
gr_eval_opts gr_eval_opts_default(void);

/* Reset *m to "no queries yet" (all zero). */
void gr_metrics_init(gr_metrics *m);

/* Add n queries with 0-based ranks rank[0..n) to the means in *m (so
 * metrics computed in several pieces equal one computation over all).
 * max_k > 0 marks metrics at K > max_k undefined (the smaller max_k wins when
 * pieces differ). Ranks < 0 are treated as "not found" (no hit, MRR 0). */
void gr_metrics_add_ranks(gr_metrics *m, const int64_t *rank, int64_t n, int max_k);

/* Merge the metrics of another set of queries (from) into *into (query-
 * weighted means, n summed, smaller non-zero max_k kept). */
void gr_metrics_merge(gr_metrics *into, const gr_metrics *from);

/* Score queries q[0..n) with model m and add their metrics to *out (which
 * must have been initialised with gr_metrics_init or hold earlier results).
 * The model's score() is called from this thread on batches of opts->batch
 * queries (it may parallelise inside); ranks are computed in parallel over
 * queries with OpenMP. Memory: one batch x n_items float buffer. opts may be
 * NULL (defaults). GR_ERR + message if the model fails, the model's n_items
 * differs from the split's, or memory runs out; *out is unchanged then. */
int gr_eval_queries(gr_model *m, const gr_split *s, const gr_query *q, int64_t n,
                    const gr_eval_opts *opts, gr_metrics *out);

/* Rank (0-based) of target among scores[0..n_items) with the rules above.
 * seen/n_seen: items to exclude (may contain the target, which is kept;
 * duplicates and out-of-range ids are ignored). cand/n_cand: when cand is not
 * NULL only these items (distinct ids) take part, else all items do.
 * Returns -1 + message if target is outside [0, n_items) or memory runs out. */
int64_t gr_eval_rank(const float *scores, int32_t n_items, int32_t target,
                     const int32_t *seen, int32_t n_seen,
                     const int32_t *cand, int32_t n_cand);

/* A gr_fit_ctx whose validate() scores s->valid with these options (NULL =
 * defaults) and returns NDCG@10, or -1 on error (message set). validate is
 * NULL when s has no validation queries. s must outlive the context. The
 * context owns nothing and needs no freeing (its small private state is kept
 * in a process-wide table shared by equal (s, opts) pairs). */
gr_fit_ctx gr_eval_fit_ctx(const gr_split *s, const gr_eval_opts *opts, uint64_t seed, int verbose);

/* Result of one model run, as printed and written to JSON. */
typedef struct gr_eval_result {
    char model[64];
    gr_metrics test;
    double valid_ndcg10;    /* NAN when there was no validation (JSON null) */
    double train_seconds, eval_seconds;
    double invalid_rate;    /* generative models (those that count n_returned): share of the items (or,
                               when grounding, of the generations) returned on the
                               test queries that are not catalogue items; NAN otherwise
                               (JSON: the key is omitted) */
} gr_eval_result;

/* Write the results of one `genrec eval` run to path atomically (temp file +
 * rename), exactly:
 *   {"dataset":"<name>", "protocol":"loo", "results":[
 *     {"model":"pop", "metrics":{"HR@1":…, …, "HR@50":…, "NDCG@1":…, …,
 *      "NDCG@50":…, "MRR":…}, "valid_ndcg10":…, "train_seconds":…,
 *      "eval_seconds":…}, …], "n_test":…, "seed":…}
 * Generative models' "metrics" also hold "invalid_rate" (see gr_eval_result).
 * Keys HR@K/NDCG@K with K > test.max_k are omitted when max_k > 0; a
 * non-finite number is written as null. GR_OK, or GR_ERR + message naming the
 * file on an I/O error (the old file, if any, is left intact). */
int gr_eval_write_json_run(const char *path, const char *dataset, const char *protocol,
                           const gr_eval_result *r, int n, int64_t n_test, uint64_t seed);

/* Same as gr_eval_write_json_run() with n_test = the largest r[i].test.n and
 * without the "seed" key. */
int gr_eval_write_json(const char *path, const char *dataset, const char *protocol,
                       const gr_eval_result *r, int n);

/* Print a results table (HR/NDCG@{1,5,10,20,50}, MRR, validation NDCG@10,
 * times) to f; undefined metrics (K > max_k) print as "-". */
void gr_eval_print_table(FILE *f, const gr_eval_result *r, int n);

/* Fit m on s (early-stopping through the validation fit context), then score
 * the validation and test queries; fills *r (name, metrics, timings). The
 * caller keeps ownership of m. GR_ERR + message prefixed with the model name. */
int gr_eval_run_model(gr_model *m, const char *name, const gr_split *s, const gr_eval_opts *eo,
                      uint64_t seed, int verbose, gr_eval_result *r);

#endif
