/* One evaluation path for every model: full ranking (or the c20 candidate
 * list), HR@K, NDCG@K for K in {1,5,10,20,50} and MRR.
 *
 * Rank of the target (0-based) = number of items scoring strictly higher,
 * plus the number of items with an equal score and a smaller item id (ties are
 * broken deterministically, never in the target's favour by accident of
 * order). With exclude_seen (default on) the items of the query's history are
 * removed from the ranking, except the target itself.
 * NDCG@K = 1/log2(rank+2) if rank < K else 0; HR@K = [rank < K];
 * MRR = 1/(rank+1) (uncut).
 */
#ifndef GENREC_EVAL_H
#define GENREC_EVAL_H
#include "genrec/model.h"

#define GR_EVAL_NK 5
extern const int gr_eval_ks[GR_EVAL_NK]; /* 1, 5, 10, 20, 50 */

typedef struct gr_metrics {
    double hr[GR_EVAL_NK];
    double ndcg[GR_EVAL_NK];
    double mrr;
    int64_t n;              /* queries scored */
    int max_k;              /* metrics at K > max_k are not defined (0 = all defined) */
} gr_metrics;

typedef struct gr_eval_opts {
    int exclude_seen;   /* default 1 */
    int batch;          /* queries scored per model call (default 256) */
} gr_eval_opts;

gr_eval_opts gr_eval_opts_default(void);

/* Score queries q[0..n) with model m and accumulate metrics into *out.
 * GR_ERR if the model fails. */
int gr_eval_queries(gr_model *m, const gr_split *s, const gr_query *q, int64_t n,
                    const gr_eval_opts *opts, gr_metrics *out);

/* Rank (0-based) of target among scores[0..n_items) with the rules above.
 * seen/n_seen: items to exclude (may contain the target; it is kept). */
int64_t gr_eval_rank(const float *scores, int32_t n_items, int32_t target,
                     const int32_t *seen, int32_t n_seen,
                     const int32_t *cand, int32_t n_cand);

/* A gr_fit_ctx whose validate() scores s->valid with these options. */
gr_fit_ctx gr_eval_fit_ctx(const gr_split *s, const gr_eval_opts *opts, uint64_t seed, int verbose);

/* Result of one model run, as printed and written to JSON. */
typedef struct gr_eval_result {
    char model[64];
    gr_metrics test;
    double valid_ndcg10;
    double train_seconds, eval_seconds;
} gr_eval_result;

/* Write {"dataset":…, "protocol":…, "results":[…]} to path atomically. */
int gr_eval_write_json(const char *path, const char *dataset, const char *protocol,
                       const gr_eval_result *r, int n);
/* Print a results table (HR/NDCG@{1,5,10,20,50}, MRR, times). */
void gr_eval_print_table(FILE *f, const gr_eval_result *r, int n);

#endif
