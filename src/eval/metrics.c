/* Ranking metrics: the rank of a target under the evaluator's tie and
 * exclusion rules, and HR@K / NDCG@K / MRR accumulated as means
 * (definitions in include/genrec/eval.h). */
#include "genrec/eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const int gr_eval_ks[GR_EVAL_NK] = {1, 5, 10, 20, 50};

void gr_metrics_init(gr_metrics *m)
{
    memset(m, 0, sizeof *m);
}

/* Does item j (score sj) rank above the target t (score st, NaN already
 * mapped to -INFINITY)? Higher score, or equal score and smaller id. */
static inline int beats(float sj, int32_t j, float st, int32_t t)
{
    if (isnan(sj)) sj = -INFINITY;
    return sj > st || (sj == st && j < t);
}

/* Number of s[0..n) >= st (ge) or > st. Written as fixed 16-wide blocks so
 * that gcc -O2 (very cheap cost model) vectorises it: ~10x faster. */
static int64_t count_above(const float *s, int32_t n, float st, int ge)
{
    int64_t c = 0;
    int32_t j = 0;
    if (ge) {
        for (; j + 16 <= n; j += 16) {
            int32_t b = 0;
            for (int k = 0; k < 16; k++) b += s[j + k] >= st;
            c += b;
        }
        for (; j < n; j++) c += s[j] >= st;
    } else {
        for (; j + 16 <= n; j += 16) {
            int32_t b = 0;
            for (int k = 0; k < 16; k++) b += s[j + k] > st;
            c += b;
        }
        for (; j < n; j++) c += s[j] > st;
    }
    return c;
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

int64_t gr_eval_rank(const float *scores, int32_t n_items, int32_t target,
                     const int32_t *seen, int32_t n_seen,
                     const int32_t *cand, int32_t n_cand)
{
    if (!scores || target < 0 || target >= n_items) {
        gr_errorf("eval: rank: target item %d outside [0, %d)", (int)target, (int)n_items);
        return -1;
    }
    if (!seen) n_seen = 0;
    float st = scores[target];
    if (isnan(st)) st = -INFINITY;
    const int32_t t = target;
    int64_t r = 0;

    if (cand) {
        /* c20: only the candidates take part; a candidate in seen is skipped */
        for (int32_t i = 0; i < n_cand; i++) {
            int32_t c = cand[i];
            if (c == t || c < 0 || c >= n_items || !beats(scores[c], c, st, t)) continue;
            int excluded = 0;
            for (int32_t k = 0; k < n_seen && !excluded; k++) excluded = seen[k] == c;
            r += !excluded;
        }
        return r;
    }

    /* Full ranking. Items before t win ties, items after t must be strictly
     * higher. NaN compares false, i.e. ranks as -INFINITY, except that a
     * NaN before t ties with a -INFINITY target: handled by the special case. */
    if (st == -INFINITY) r = t;
    else r = count_above(scores, t, st, 1);
    r += count_above(scores + t + 1, n_items - t - 1, st, 0);
    if (n_seen <= 0) return r;

    /* Remove each distinct seen item (other than the target) that was counted. */
    int32_t stackbuf[256];
    int32_t *u = n_seen <= 256 ? stackbuf : gr_alloc((size_t)n_seen, sizeof *u);
    if (!u) return -1;
    memcpy(u, seen, (size_t)n_seen * sizeof *u);
    qsort(u, (size_t)n_seen, sizeof *u, cmp_i32);
    for (int32_t k = 0; k < n_seen; k++) {
        int32_t j = u[k];
        if ((k > 0 && u[k - 1] == j) || j == t || j < 0 || j >= n_items) continue;
        if (beats(scores[j], j, st, t)) r--;
    }
    if (u != stackbuf) gr_free(u);
    return r;
}

void gr_metrics_merge(gr_metrics *into, const gr_metrics *from)
{
    if (from->max_k > 0 && (into->max_k == 0 || from->max_k < into->max_k)) into->max_k = from->max_k;
    if (from->n <= 0) return;
    double a = (double)into->n, b = (double)from->n, tot = a + b;
    for (int k = 0; k < GR_EVAL_NK; k++) {
        into->hr[k] = (into->hr[k] * a + from->hr[k] * b) / tot;
        into->ndcg[k] = (into->ndcg[k] * a + from->ndcg[k] * b) / tot;
    }
    into->mrr = (into->mrr * a + from->mrr * b) / tot;
    into->n += from->n;
}

void gr_metrics_add_ranks(gr_metrics *m, const int64_t *rank, int64_t n, int max_k)
{
    gr_metrics piece;
    gr_metrics_init(&piece);
    piece.max_k = max_k > 0 ? max_k : 0;
    double hr[GR_EVAL_NK] = {0}, nd[GR_EVAL_NK] = {0}, mrr = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t r = rank[i];
        if (r < 0) continue;
        double g = 1.0 / log2((double)r + 2.0);
        for (int k = 0; k < GR_EVAL_NK; k++)
            if (r < gr_eval_ks[k]) { hr[k] += 1.0; nd[k] += g; }
        if (max_k <= 0 || r < max_k) mrr += 1.0 / ((double)r + 1.0);
    }
    if (n > 0) {
        for (int k = 0; k < GR_EVAL_NK; k++) {
            piece.hr[k] = hr[k] / (double)n;
            piece.ndcg[k] = nd[k] / (double)n;
        }
        piece.mrr = mrr / (double)n;
        piece.n = n;
    }
    gr_metrics_merge(m, &piece);
}
