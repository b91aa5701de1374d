/* Evaluation protocols: turn a dataset into training data and validation /
 * test queries. One representation for every protocol and every model.
 *
 *   loo : leave-one-out per user (sequence in time order, ties by file order):
 *         last item = test target, second to last = validation target, the
 *         rest = training sequence. Users with fewer than 3 interactions give
 *         training data only. Query histories are every item before the target
 *         (cut to the last max_hist items when max_hist > 0). Full ranking.
 *   ts  : one sample (user, history = the previous <= max_hist items (default
 *         10), target) for every position i >= 1 of every user's sequence.
 *         All N samples are sorted by target time with ties broken by user id,
 *         then position (a total order, so the result is deterministic). The
 *         first floor(8N/10) samples are train, the next floor(9N/10) -
 *         floor(8N/10) are valid, the remaining N - floor(9N/10) are test.
 *         A user's training sequence is the prefix of their sequence whose
 *         samples are in train, plus their first item (which has no sample).
 *         Validation/test histories are the real previous items, which may lie
 *         after the train cut-off (that is the protocol). Full ranking.
 *   c20 : like loo, but each validation/test query ranks only its candidates:
 *         the target + n_cand-1 (default 19) distinct negatives drawn uniformly
 *         from the items that are not in the user's whole sequence. Draws come
 *         from an RNG forked from (seed, user, valid|test), so they do not
 *         depend on other users. The candidate list is shuffled (the target is
 *         not always first). If fewer negatives exist, all of them are used.
 *
 * Queries are ordered by user id (loo, c20) or by the global time order (ts).
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

/* Defaults for protocol p: max_hist 10 for ts and 0 (full history) for
 * loo/c20, n_cand 20, seed 42. */
gr_split_opts gr_split_opts_default(gr_protocol p);

/* Parse "loo" | "ts" | "c20" into *out: GR_OK, or GR_ERR + message listing
 * the accepted names. */
int gr_protocol_parse(const char *s, gr_protocol *out);

/* "loo", "ts", "c20" (or "?" for an invalid value); a static string. */
const char *gr_protocol_name(gr_protocol p);

/* Build a split of d under opts (NULL = gr_split_opts_default(LOO)). The
 * dataset is checked first (user_off monotone, item ids in range, times
 * non-decreasing within a user). The split keeps a pointer to d (d must
 * outlive it) and owns copies of everything else. Returns NULL + error
 * message on a bad dataset, bad options or out of memory. Free with
 * gr_split_free(). */
gr_split *gr_split_build(const gr_dataset *d, const gr_split_opts *opts);

/* Free a split and all its buffers (not the dataset). NULL is fine. */
void gr_split_free(gr_split *s);

/* Write split s as text files into directory dir (created if missing; files
 * are replaced atomically), so another implementation (e.g. the PyTorch
 * reference SASRec) can train and evaluate on exactly the same data. All ids
 * are the dataset's dense 0-based ids; fields are separated by one space.
 *   meta.txt   one line: "n_users n_items"
 *   train.txt  one line per user u = 0..n_users-1: "u item item ..." (the
 *              training sequence, oldest first; just "u" when empty)
 *   valid.txt, test.txt  one line per query, in split order:
 *              "user target hist..." (history oldest first, as the model
 *              sees it); under c20 followed by " | cand..." (the n_cand
 *              candidates, target included, in the split's order).
 * Returns GR_OK, or GR_ERR + message naming the file on an I/O error. */
int gr_split_export(const gr_split *s, const char *dir);

#endif
