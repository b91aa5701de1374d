/* Heap-based top-k over score rows with excluded (seen) items.
 *
 * The heap lives in the caller's out_items buffer and holds item ids; the
 * root is the worst kept item. Items are scanned in increasing id order, so a
 * candidate whose score equals the root's has a larger id than every kept
 * item and is therefore worse: "score > root score" is the whole admission
 * test. Excluded items are found by walking a sorted copy of the exclude list
 * alongside the scan. */
#include "genrec/topk.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "genrec/common.h"

/* a is worse than b: lower score, or equal score and larger id. */
static inline int topk_worse(const float *s, int32_t a, int32_t b)
{
    return s[a] < s[b] || (s[a] == s[b] && a > b);
}

static void topk_sift_down(const float *s, int32_t *h, int32_t n, int32_t i)
{
    for (;;) {
        int32_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && topk_worse(s, h[l], h[w])) w = l;
        if (r < n && topk_worse(s, h[r], h[w])) w = r;
        if (w == i) return;
        int32_t t = h[i]; h[i] = h[w]; h[w] = t;
        i = w;
    }
}

static void topk_sift_up(const float *s, int32_t *h, int32_t i)
{
    while (i > 0) {
        int32_t p = (i - 1) / 2;
        if (!topk_worse(s, h[i], h[p])) return;
        int32_t t = h[i]; h[i] = h[p]; h[p] = t;
        i = p;
    }
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

int32_t gr_topk(const float *scores, int32_t n_items, int32_t k,
                const int32_t *exclude, int32_t n_exclude,
                int32_t *out_items, float *out_scores)
{
    if (k < 0 || n_items < 0 || n_exclude < 0)
        return gr_errorf("gr_topk: bad arguments (k %d, n_items %d, n_exclude %d)",
                         (int)k, (int)n_items, (int)n_exclude);
    if (k == 0 || n_items == 0) return 0;

    int32_t stack_ex[512];
    int32_t *ex = stack_ex;
    if (n_exclude > (int32_t)(sizeof stack_ex / sizeof *stack_ex)) {
        ex = gr_alloc((size_t)n_exclude, sizeof *ex);
        if (!ex) return gr_error_prefix("gr_topk: ");
    }
    if (n_exclude) {
        memcpy(ex, exclude, (size_t)n_exclude * sizeof *ex);
        qsort(ex, (size_t)n_exclude, sizeof *ex, cmp_i32);
    }

    int32_t *h = out_items, n = 0, e = 0;
    for (int32_t it = 0; it < n_items; it++) {
        while (e < n_exclude && ex[e] < it) e++;
        if (e < n_exclude && ex[e] == it) continue;
        float v = scores[it];
        if (isnan(v) || v == -INFINITY) continue;
        if (n < k) {
            h[n] = it;
            topk_sift_up(scores, h, n);
            n++;
        } else if (v > scores[h[0]]) {
            h[0] = it;
            topk_sift_down(scores, h, n, 0);
        }
    }
    if (ex != stack_ex) gr_free(ex);

    /* Heap sort: move the worst to the back until the array is best-first. */
    for (int32_t m = n - 1; m > 0; m--) {
        int32_t t = h[0]; h[0] = h[m]; h[m] = t;
        topk_sift_down(scores, h, m, 0);
    }
    if (out_scores)
        for (int32_t r = 0; r < n; r++) out_scores[r] = scores[h[r]];
    return n;
}

int gr_topk_batch(const float *scores, int n, int32_t n_items, int32_t k,
                  const gr_query *q, int exclude_seen,
                  int32_t *out_items, float *out_scores)
{
    if (n < 0 || k < 0 || n_items < 0 || (exclude_seen && n > 0 && !q))
        return gr_errorf("gr_topk_batch: bad arguments (n %d, k %d, n_items %d%s)", n, (int)k,
                         (int)n_items, exclude_seen && !q ? ", exclude_seen without queries" : "");
    int failed = 0;
#pragma omp parallel for schedule(dynamic, 4) num_threads(gr_threads_get()) if (n > 8)
    for (int r = 0; r < n; r++) {
        const float *row = scores + (size_t)r * (size_t)n_items;
        int32_t *oi = out_items + (size_t)r * (size_t)k;
        float *os = out_scores ? out_scores + (size_t)r * (size_t)k : NULL;
        const int32_t *ex = exclude_seen ? q[r].hist : NULL;
        int32_t nex = exclude_seen ? q[r].hist_len : 0;
        int32_t got = gr_topk(row, n_items, k, ex, nex, oi, os);
        if (got < 0) {
#pragma omp atomic write
            failed = 1;
            got = 0;
        }
        for (int32_t j = got; j < k; j++) {
            oi[j] = -1;
            if (os) os[j] = -INFINITY;
        }
    }
    if (failed) return gr_errorf("gr_topk_batch: out of memory");
    return GR_OK;
}
