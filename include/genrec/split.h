/* Evaluation protocols: turn a dataset into training data and validation /
 * test queries. One representation for every protocol and every model.
 *
 *   loo : leave-one-out per user: last item = test target, second to last =
 *         validation target, the rest = training sequence. Full ranking.
 *   ts  : every (history of at most max_hist items -> next item) sample, sorted
 *         globally by target time (stable: user order, then position), split
 *         80/10/10 into train / valid / test. Full ranking. A user's training
 *         sequence is the prefix of items whose samples fall in train.
 *   c20 : like loo, but each query ranks only its target + 19 negatives sampled
 *         (seeded) from items not in the user's history.
 */
#ifndef GENREC_SPLIT_H
#define GENREC_SPLIT_H
#include "genrec/dataset.h"

typedef enum gr_protocol {
    GR_PROTOCOL_LOO = 0,
    GR_PROTOCOL_TS,
    GR_PROTOCOL_C20,
} gr_protocol;

/* One ranking query: the user's history (oldest first) and the held-out target. */
typedef struct gr_query {
    int32_t user;
    int32_t target;
    int32_t hist_len;
    const int32_t *hist;   /* points into the split's storage */
    int64_t time;          /* target time (or order index) */
    const int32_t *cand;   /* c20: n_cand candidate items (target included), else NULL */
    int32_t n_cand;
} gr_query;

typedef struct gr_split {
    gr_protocol protocol;
    const gr_dataset *data;  /* not owned */
    int32_t n_users, n_items;
    /* Training sequences per user, oldest first (CSR). May be empty. */
    int64_t *train_off;      /* [n_users+1] */
    int32_t *train_item;     /* [train_off[n_users]] */
    int64_t *train_time;     /* [train_off[n_users]] */
    gr_query *valid; int64_t n_valid;
    gr_query *test;  int64_t n_test;
    int32_t max_hist;        /* histories in queries are cut to the last max_hist items (0 = all) */
    void *storage;           /* owned buffers behind hist/cand pointers */
} gr_split;

typedef struct gr_split_opts {
    gr_protocol protocol;
    int32_t max_hist;   /* ts: history length (default 10); loo/c20: 0 = full history */
    int32_t n_cand;     /* c20: candidates per query including the target (default 20) */
    uint64_t seed;      /* c20 negative sampling */
} gr_split_opts;

gr_split_opts gr_split_opts_default(gr_protocol p);
int gr_protocol_parse(const char *s, gr_protocol *out); /* "loo"|"ts"|"c20" */
const char *gr_protocol_name(gr_protocol p);

/* Build a split. Users with fewer than 3 interactions contribute only
 * training data under loo/c20. Returns NULL + error on failure. */
gr_split *gr_split_build(const gr_dataset *d, const gr_split_opts *opts);
void gr_split_free(gr_split *s);

#endif
