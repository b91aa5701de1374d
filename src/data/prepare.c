/* gr_dataset_prepare: rating threshold, dedup, iterated k-core, dense
 * renumbering. Deterministic: relative order of users, items and each user's
 * interactions is kept. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "genrec/dataset.h"

/* Keep the strings of kept entries (in order) and free the others. */
static void compact_strs(char **a, const int32_t *newid, int32_t n)
{
    for (int32_t i = 0; i < n; i++) {
        if (newid[i] < 0) { free(a[i]); a[i] = NULL; }
        else a[newid[i]] = a[i];
    }
}

int gr_dataset_prepare(gr_dataset *d, const gr_load_opts *opts)
{
    gr_load_opts def = gr_load_opts_default();
    if (!opts) opts = &def;
    if (opts->kcore < 0) return gr_errorf("prepare: kcore must be >= 0 (got %d)", opts->kcore);
    if (isnan(opts->min_rating)) return gr_errorf("prepare: min_rating is NaN");
    int64_t n = d->n_inter;
    uint8_t *keep = malloc((size_t)n + 1);
    int32_t *stamp = malloc(((size_t)d->n_items + 1) * sizeof *stamp);
    int64_t *ucnt = calloc((size_t)d->n_users + 1, sizeof *ucnt);
    int64_t *icnt = calloc((size_t)d->n_items + 1, sizeof *icnt);
    int32_t *unew = malloc(((size_t)d->n_users + 1) * sizeof *unew);
    int32_t *inew = malloc(((size_t)d->n_items + 1) * sizeof *inew);
    int rc = GR_ERR;
    if (!keep || !stamp || !ucnt || !icnt || !unew || !inew) {
        gr_errorf("prepare: out of memory");
        goto done;
    }
    memset(keep, 1, (size_t)n + 1);
    int64_t kept = n;
    if (d->has_rating && d->inter_rating && opts->min_rating > 0) {
        for (int64_t k = 0; k < n; k++)
            if (!(d->inter_rating[k] >= opts->min_rating)) { keep[k] = 0; kept--; }
    }
    if (opts->dedup) {
        for (int32_t i = 0; i < d->n_items; i++) stamp[i] = -1;
        for (int32_t u = 0; u < d->n_users; u++)
            for (int64_t k = d->user_off[u]; k < d->user_off[u + 1]; k++) {
                if (!keep[k]) continue;
                int32_t it = d->inter_item[k];
                if (stamp[it] == u) { keep[k] = 0; kept--; }
                else stamp[it] = u;
            }
    }
    for (;;) {
        memset(ucnt, 0, (size_t)d->n_users * sizeof *ucnt);
        memset(icnt, 0, (size_t)d->n_items * sizeof *icnt);
        for (int32_t u = 0; u < d->n_users; u++)
            for (int64_t k = d->user_off[u]; k < d->user_off[u + 1]; k++)
                if (keep[k]) { ucnt[u]++; icnt[d->inter_item[k]]++; }
        if (opts->kcore <= 1) break;
        int64_t dropped = 0;
        for (int32_t u = 0; u < d->n_users; u++)
            for (int64_t k = d->user_off[u]; k < d->user_off[u + 1]; k++)
                if (keep[k] && (ucnt[u] < opts->kcore || icnt[d->inter_item[k]] < opts->kcore)) {
                    keep[k] = 0;
                    dropped++;
                }
        kept -= dropped;
        if (!dropped) break;
    }
    int32_t nu = 0, ni = 0;
    for (int32_t u = 0; u < d->n_users; u++) unew[u] = ucnt[u] ? nu++ : -1;
    for (int32_t i = 0; i < d->n_items; i++) inew[i] = icnt[i] ? ni++ : -1;
    if (kept == n && nu == d->n_users && ni == d->n_items) { rc = GR_OK; goto done; }

    /* compact interactions in place (kept ones keep their order) */
    int64_t w = 0;
    for (int32_t u = 0; u < d->n_users; u++) {
        int64_t a = d->user_off[u], e = d->user_off[u + 1];
        if (unew[u] >= 0) d->user_off[unew[u]] = w;
        for (int64_t k = a; k < e; k++) {
            if (!keep[k]) continue;
            d->inter_item[w] = inew[d->inter_item[k]];
            d->inter_time[w] = d->inter_time[k];
            if (d->inter_rating) d->inter_rating[w] = d->inter_rating[k];
            w++;
        }
    }
    d->user_off[nu] = w;
    if (!d->has_time) { /* order index within each user stays 0..len-1 */
        for (int32_t u = 0; u < nu; u++)
            for (int64_t k = d->user_off[u]; k < d->user_off[u + 1]; k++) d->inter_time[k] = k - d->user_off[u];
    }
    compact_strs(d->user_key, unew, d->n_users);
    compact_strs(d->item_key, inew, d->n_items);
    compact_strs(d->item_title, inew, d->n_items);
    compact_strs(d->item_genres, inew, d->n_items);
    compact_strs(d->item_brand, inew, d->n_items);
    compact_strs(d->item_text, inew, d->n_items);
    d->n_users = nu;
    d->n_items = ni;
    d->n_inter = w;
    rc = GR_OK;
done:
    free(keep);
    free(stamp);
    free(ucnt);
    free(icnt);
    free(unew);
    free(inew);
    return rc;
}
