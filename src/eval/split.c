/* Evaluation protocols (loo, ts, c20): build a gr_split from a dataset.
 * The exact rules are documented in include/genrec/split.h. */
#include "genrec/split.h"

#include <stdlib.h>
#include <string.h>

#include "genrec/rng.h"

/* Owned buffers behind the queries' hist/cand pointers. */
typedef struct split_store {
    int32_t *seq;   /* [n_inter] copy of every user's sequence (CSR as the dataset) */
    int32_t *cand;  /* c20: candidate lists of valid then test queries */
} split_store;

gr_split_opts gr_split_opts_default(gr_protocol p)
{
    gr_split_opts o;
    memset(&o, 0, sizeof o);
    o.protocol = p;
    o.max_hist = p == GR_PROTOCOL_TS ? 10 : 0;
    o.n_cand = 20;
    o.seed = 42;
    return o;
}

int gr_protocol_parse(const char *s, gr_protocol *out)
{
    if (s && !strcmp(s, "loo")) { *out = GR_PROTOCOL_LOO; return GR_OK; }
    if (s && !strcmp(s, "ts")) { *out = GR_PROTOCOL_TS; return GR_OK; }
    if (s && !strcmp(s, "c20")) { *out = GR_PROTOCOL_C20; return GR_OK; }
    return gr_errorf("unknown protocol '%s' (expected loo, ts or c20)", s ? s : "(null)");
}

const char *gr_protocol_name(gr_protocol p)
{
    switch (p) {
    case GR_PROTOCOL_LOO: return "loo";
    case GR_PROTOCOL_TS: return "ts";
    case GR_PROTOCOL_C20: return "c20";
    }
    return "?";
}

void gr_split_free(gr_split *s)
{
    if (!s) return;
    split_store *st = s->storage;
    if (st) {
        gr_free(st->seq);
        gr_free(st->cand);
        gr_free(st);
    }
    gr_free(s->train_off);
    gr_free(s->train_item);
    gr_free(s->train_time);
    gr_free(s->valid);
    gr_free(s->test);
    gr_free(s);
}

/* Check the dataset invariants the protocols rely on. */
static int check_dataset(const gr_dataset *d)
{
    if (!d) return gr_errorf("split: dataset is NULL");
    const char *nm = d->name ? d->name : "dataset";
    if (d->n_users < 0 || d->n_items < 0 || d->n_inter < 0)
        return gr_errorf("split: %s: negative size (users %d, items %d, interactions %lld)", nm,
                         (int)d->n_users, (int)d->n_items, (long long)d->n_inter);
    if (d->n_inter > 0 && (!d->user_off || !d->inter_item || !d->inter_time))
        return gr_errorf("split: %s: interaction arrays missing", nm);
    if (!d->user_off) return d->n_users == 0 ? GR_OK : gr_errorf("split: %s: field 'user_off' missing", nm);
    if (d->user_off[0] != 0) return gr_errorf("split: %s: field 'user_off[0]' is %lld, not 0", nm, (long long)d->user_off[0]);
    for (int32_t u = 0; u < d->n_users; u++) {
        int64_t a = d->user_off[u], b = d->user_off[u + 1];
        if (b < a || b > d->n_inter)
            return gr_errorf("split: %s: field 'user_off[%d]' = %lld out of order or beyond %lld interactions",
                             nm, (int)u + 1, (long long)b, (long long)d->n_inter);
        for (int64_t k = a; k < b; k++) {
            if (d->inter_item[k] < 0 || d->inter_item[k] >= d->n_items)
                return gr_errorf("split: %s: interaction %lld: field 'item' = %d outside [0, %d)", nm,
                                 (long long)k, (int)d->inter_item[k], (int)d->n_items);
            if (k > a && d->inter_time[k] < d->inter_time[k - 1])
                return gr_errorf("split: %s: user %d: interaction %lld: field 'time' goes backwards "
                                 "(%lld after %lld); sequences must be in time order", nm, (int)u,
                                 (long long)k, (long long)d->inter_time[k], (long long)d->inter_time[k - 1]);
        }
    }
    if (d->user_off[d->n_users] != d->n_inter)
        return gr_errorf("split: %s: field 'user_off[n_users]' = %lld but n_inter = %lld", nm,
                         (long long)d->user_off[d->n_users], (long long)d->n_inter);
    return GR_OK;
}

/* Fill a query whose target is position pos of user u's sequence. */
static void make_query(gr_query *q, const gr_dataset *d, const int32_t *seq, int32_t u, int64_t pos,
                       int32_t max_hist)
{
    int64_t off = d->user_off[u];
    int64_t len = pos; /* items before the target */
    if (max_hist > 0 && len > max_hist) len = max_hist;
    memset(q, 0, sizeof *q);
    q->user = u;
    q->target = seq[off + pos];
    q->hist_len = (int32_t)len;
    q->hist = seq + off + pos - len;
    q->time = d->inter_time[off + pos];
}

/* Set train_off/train_item/train_time from per-user prefix lengths keep[u]. */
static int fill_train(gr_split *s, const gr_dataset *d, const int64_t *keep)
{
    s->train_off = gr_alloc((size_t)d->n_users + 1, sizeof *s->train_off);
    if (!s->train_off) return GR_ERR;
    s->train_off[0] = 0;
    for (int32_t u = 0; u < d->n_users; u++) s->train_off[u + 1] = s->train_off[u] + keep[u];
    int64_t n = s->train_off[d->n_users];
    s->train_item = gr_alloc((size_t)n, sizeof *s->train_item);
    s->train_time = gr_alloc((size_t)n, sizeof *s->train_time);
    if (!s->train_item || !s->train_time) return GR_ERR;
    for (int32_t u = 0; u < d->n_users; u++) {
        int64_t o = d->user_off[u], t = s->train_off[u];
        if (keep[u] == 0) continue;
        memcpy(s->train_item + t, d->inter_item + o, (size_t)keep[u] * sizeof *s->train_item);
        memcpy(s->train_time + t, d->inter_time + o, (size_t)keep[u] * sizeof *s->train_time);
    }
    return GR_OK;
}

/* loo / c20 queries and training prefixes. */
static int build_loo(gr_split *s, const gr_dataset *d, const int32_t *seq, int64_t *keep)
{
    int64_t nq = 0;
    for (int32_t u = 0; u < d->n_users; u++) {
        int64_t n = d->user_off[u + 1] - d->user_off[u];
        keep[u] = n >= 3 ? n - 2 : n;
        nq += n >= 3;
    }
    s->valid = gr_calloc((size_t)nq, sizeof *s->valid);
    s->test = gr_calloc((size_t)nq, sizeof *s->test);
    if (!s->valid || !s->test) return GR_ERR;
    int64_t k = 0;
    for (int32_t u = 0; u < d->n_users; u++) {
        int64_t n = d->user_off[u + 1] - d->user_off[u];
        if (n < 3) continue;
        make_query(&s->valid[k], d, seq, u, n - 2, s->max_hist);
        make_query(&s->test[k], d, seq, u, n - 1, s->max_hist);
        k++;
    }
    s->n_valid = s->n_test = nq;
    return fill_train(s, d, keep);
}

typedef struct ts_sample { int64_t time; int32_t user; int32_t pos; } ts_sample;

static int ts_cmp(const void *pa, const void *pb)
{
    const ts_sample *a = pa, *b = pb;
    if (a->time != b->time) return a->time < b->time ? -1 : 1;
    if (a->user != b->user) return a->user < b->user ? -1 : 1;
    return (a->pos > b->pos) - (a->pos < b->pos);
}

/* ts: global time-ordered samples, split 80/10/10 by count. */
static int build_ts(gr_split *s, const gr_dataset *d, const int32_t *seq, int64_t *keep)
{
    int64_t N = 0;
    for (int32_t u = 0; u < d->n_users; u++) {
        int64_t n = d->user_off[u + 1] - d->user_off[u];
        if (n > 1) N += n - 1;
    }
    ts_sample *smp = gr_alloc((size_t)N, sizeof *smp);
    if (!smp) return GR_ERR;
    int64_t k = 0;
    for (int32_t u = 0; u < d->n_users; u++) {
        int64_t o = d->user_off[u], n = d->user_off[u + 1] - o;
        for (int64_t i = 1; i < n; i++) {
            smp[k].time = d->inter_time[o + i];
            smp[k].user = u;
            smp[k].pos = (int32_t)i;
            k++;
        }
    }
    qsort(smp, (size_t)N, sizeof *smp, ts_cmp);
    int64_t n_train = N * 8 / 10, n_tv = N * 9 / 10;
    s->n_valid = n_tv - n_train;
    s->n_test = N - n_tv;
    s->valid = gr_calloc((size_t)s->n_valid, sizeof *s->valid);
    s->test = gr_calloc((size_t)s->n_test, sizeof *s->test);
    if (!s->valid || !s->test) { gr_free(smp); return GR_ERR; }
    /* Within a user the samples are ordered by position (times never go
     * backwards), so the user's train samples are positions 1..c: the train
     * prefix is c + 1 items (the first item has no sample). */
    for (int32_t u = 0; u < d->n_users; u++) keep[u] = d->user_off[u + 1] > d->user_off[u] ? 1 : 0;
    for (int64_t j = 0; j < n_train; j++) keep[smp[j].user]++;
    for (int64_t j = n_train; j < N; j++) {
        gr_query *q = j < n_tv ? &s->valid[j - n_train] : &s->test[j - n_tv];
        make_query(q, d, seq, smp[j].user, smp[j].pos, s->max_hist);
    }
    gr_free(smp);
    return fill_train(s, d, keep);
}

/* c20: the candidates of one query: target + up to n_cand-1 distinct
 * negatives not in the user's sequence, shuffled. mark/stamp track excluded
 * items without clearing the array. Returns the number of candidates. */
static int32_t sample_cands(const gr_dataset *d, const int32_t *seq, int32_t u, int32_t target,
                            int32_t n_cand, gr_rng *rng, int32_t *mark, int32_t stamp,
                            int32_t *pool, int32_t *out)
{
    int64_t o = d->user_off[u], n = d->user_off[u + 1] - o;
    int32_t distinct = 0;
    for (int64_t i = 0; i < n; i++)
        if (mark[seq[o + i]] != stamp) { mark[seq[o + i]] = stamp; distinct++; }
    int32_t avail = d->n_items - distinct, want = n_cand - 1;
    int32_t m = 0;
    out[m++] = target;
    if (avail <= want || (int64_t)avail * 2 < d->n_items) {
        /* few items left: list them all and take a random subset */
        int32_t na = 0;
        for (int32_t it = 0; it < d->n_items; it++)
            if (mark[it] != stamp) pool[na++] = it;
        int32_t take = na < want ? na : want;
        for (int32_t i = 0; i < take; i++) { /* partial Fisher-Yates */
            int32_t j = i + (int32_t)gr_rng_below(rng, (uint64_t)(na - i));
            int32_t t = pool[i]; pool[i] = pool[j]; pool[j] = t;
            out[m++] = pool[i];
        }
    } else {
        /* most items are eligible: rejection sampling */
        while (m < n_cand) {
            int32_t it = (int32_t)gr_rng_below(rng, (uint64_t)d->n_items);
            if (mark[it] == stamp) continue;
            mark[it] = stamp;
            out[m++] = it;
        }
    }
    gr_rng_shuffle_i32(rng, out, m);
    return m;
}

static int build_c20(gr_split *s, const gr_dataset *d, const int32_t *seq, split_store *st, int32_t n_cand,
                     uint64_t seed)
{
    int64_t nq = s->n_valid + s->n_test;
    st->cand = gr_alloc((size_t)nq * (size_t)n_cand, sizeof *st->cand);
    int32_t *mark = gr_alloc((size_t)d->n_items, sizeof *mark);
    int32_t *pool = gr_alloc((size_t)d->n_items, sizeof *pool);
    if (!st->cand || !mark || !pool) { gr_free(mark); gr_free(pool); return GR_ERR; }
    for (int32_t i = 0; i < d->n_items; i++) mark[i] = -1;
    gr_rng base;
    gr_rng_seed(&base, seed);
    int32_t stamp = 0;
    for (int which = 0; which < 2; which++) {
        gr_query *qs = which == 0 ? s->valid : s->test;
        int64_t n = which == 0 ? s->n_valid : s->n_test;
        for (int64_t k = 0; k < n; k++) {
            gr_query *q = &qs[k];
            gr_rng r = gr_rng_fork(&base, 2 * (uint64_t)q->user + (uint64_t)which);
            int32_t *out = st->cand + ((which == 0 ? 0 : s->n_valid) + k) * n_cand;
            if (stamp == INT32_MAX) {
                for (int32_t i = 0; i < d->n_items; i++) mark[i] = -1;
                stamp = 0;
            }
            q->n_cand = sample_cands(d, seq, q->user, q->target, n_cand, &r, mark, stamp++, pool, out);
            q->cand = out;
        }
    }
    gr_free(mark);
    gr_free(pool);
    return GR_OK;
}

gr_split *gr_split_build(const gr_dataset *d, const gr_split_opts *opts)
{
    gr_split_opts o = opts ? *opts : gr_split_opts_default(GR_PROTOCOL_LOO);
    if (o.protocol != GR_PROTOCOL_LOO && o.protocol != GR_PROTOCOL_TS && o.protocol != GR_PROTOCOL_C20) {
        gr_errorf("split: option 'protocol' = %d is not loo, ts or c20", (int)o.protocol);
        return NULL;
    }
    if (o.max_hist < 0) { gr_errorf("split: option 'max_hist' = %d is negative", (int)o.max_hist); return NULL; }
    if (o.protocol == GR_PROTOCOL_C20 && o.n_cand < 1) {
        gr_errorf("split: option 'n_cand' = %d must be >= 1", (int)o.n_cand);
        return NULL;
    }
    if (check_dataset(d) != GR_OK) return NULL;

    gr_split *s = gr_calloc(1, sizeof *s);
    split_store *st = gr_calloc(1, sizeof *st);
    int64_t *keep = gr_alloc((size_t)d->n_users + 1, sizeof *keep);
    if (!s || !st || !keep) goto fail;
    s->storage = st;
    s->protocol = o.protocol;
    s->data = d;
    s->n_users = d->n_users;
    s->n_items = d->n_items;
    s->max_hist = o.max_hist;
    st->seq = gr_alloc((size_t)d->n_inter, sizeof *st->seq);
    if (!st->seq) goto fail;
    if (d->n_inter) memcpy(st->seq, d->inter_item, (size_t)d->n_inter * sizeof *st->seq);

    int rc = o.protocol == GR_PROTOCOL_TS ? build_ts(s, d, st->seq, keep) : build_loo(s, d, st->seq, keep);
    if (rc != GR_OK) goto fail;
    if (o.protocol == GR_PROTOCOL_C20) {
        if (build_c20(s, d, st->seq, st, o.n_cand, o.seed) != GR_OK) goto fail;
    }
    gr_free(keep);
    return s;
fail:
    gr_error_prefix("split %s: ", gr_protocol_name(o.protocol));
    if (!s || !s->storage) gr_free(st);
    gr_free(keep);
    gr_split_free(s);
    return NULL;
}
