/* The one evaluation path: score queries in batches through the model,
 * rank targets in parallel, accumulate metrics; the fit context used for
 * early stopping; JSON and table output of a run. */
#include "genrec/json.h"
#include "genrec/eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

gr_eval_opts gr_eval_opts_default(void)
{
    gr_eval_opts o;
    memset(&o, 0, sizeof o);
    o.exclude_seen = 1;
    o.batch = 256;
    o.max_k = 0;
    return o;
}

/* At most this many floats in the score buffer (256 MiB). */
#define EVAL_MAX_BUFFER_FLOATS ((int64_t)1 << 26)

int gr_eval_queries(gr_model *m, const gr_split *s, const gr_query *q, int64_t n,
                    const gr_eval_opts *opts, gr_metrics *out)
{
    gr_eval_opts o = opts ? *opts : gr_eval_opts_default();
    if (!m || !m->ops || !m->ops->score) return gr_errorf("eval: model is NULL or has no score()");
    const char *name = m->ops->name ? m->ops->name : "?";
    int32_t n_items = s ? s->n_items : m->n_items;
    if (s && m->n_items != 0 && m->n_items != s->n_items)
        return gr_errorf("eval: model %s has %d items but the split has %d", name, (int)m->n_items,
                         (int)s->n_items);
    if (n_items <= 0 && n > 0) return gr_errorf("eval: no items to rank");
    if (n > 0 && !q) return gr_errorf("eval: %lld queries but no query array", (long long)n);
    for (int64_t i = 0; i < n; i++)
        if (q[i].target < 0 || q[i].target >= n_items)
            return gr_errorf("eval: query %lld (user %d): target item %d outside [0, %d)", (long long)i,
                             (int)q[i].user, (int)q[i].target, (int)n_items);

    gr_metrics acc;
    gr_metrics_init(&acc);
    acc.max_k = o.max_k > 0 ? o.max_k : 0;
    if (n <= 0) { gr_metrics_merge(out, &acc); return GR_OK; }

    int64_t batch = o.batch > 0 ? o.batch : 256;
    int64_t cap = EVAL_MAX_BUFFER_FLOATS / n_items;
    if (cap < 1) cap = 1;
    if (batch > cap) batch = cap;
    if (batch > n) batch = n;
    float *scores = gr_alloc((size_t)batch * (size_t)n_items, sizeof *scores);
    int64_t *ranks = gr_alloc((size_t)batch, sizeof *ranks);
    if (!scores || !ranks) {
        gr_free(scores);
        gr_free(ranks);
        return gr_error_prefix("eval: ");
    }
    int nt = gr_threads_get();
    int rc = GR_OK;
    for (int64_t i = 0; i < n && rc == GR_OK; i += batch) {
        int nb = (int)(n - i < batch ? n - i : batch);
        if (m->ops->score(m, q + i, nb, scores) != GR_OK) {
            rc = gr_error_prefix("eval: model %s: score (queries %lld..%lld): ", name, (long long)i,
                                 (long long)(i + nb - 1));
            break;
        }
        const gr_query *qb = q + i;
        const int excl = o.exclude_seen;
#pragma omp parallel for schedule(dynamic, 8) num_threads(nt)
        for (int j = 0; j < nb; j++) {
            const gr_query *qq = &qb[j];
            ranks[j] = gr_eval_rank(scores + (size_t)j * (size_t)n_items, n_items, qq->target,
                                    excl ? qq->hist : NULL, excl ? qq->hist_len : 0,
                                    qq->cand, qq->cand ? qq->n_cand : 0);
        }
        for (int j = 0; j < nb; j++) {
            if (ranks[j] >= 0) continue;
            /* error messages are per thread: recompute here to record it */
            const gr_query *qq = &qb[j];
            gr_eval_rank(scores + (size_t)j * (size_t)n_items, n_items, qq->target, excl ? qq->hist : NULL,
                         excl ? qq->hist_len : 0, qq->cand, qq->cand ? qq->n_cand : 0);
            rc = gr_error_prefix("eval: query %lld: ", (long long)(i + j));
            break;
        }
        if (rc == GR_OK) gr_metrics_add_ranks(&acc, ranks, nb, o.max_k);
    }
    gr_free(scores);
    gr_free(ranks);
    if (rc == GR_OK) gr_metrics_merge(out, &acc);
    return rc;
}

/* ---- fit context ---------------------------------------------------------
 * The state behind a gr_fit_ctx (split + options) lives in a process-wide
 * list, shared by equal (split, options) pairs, so a context can be copied
 * freely and never needs freeing. */

typedef struct fit_state {
    const gr_split *s;
    gr_eval_opts o;
    struct fit_state *next;
} fit_state;

static fit_state *fit_states;

static double fit_validate(gr_fit_ctx *ctx, gr_model *m)
{
    const fit_state *st = ctx ? ctx->eval_state : NULL;
    if (!st || !st->s) { gr_errorf("eval: validate: context has no split"); return -1.0; }
    gr_metrics mm;
    gr_metrics_init(&mm);
    double t0 = gr_time_now();
    if (gr_eval_queries(m, st->s, st->s->valid, st->s->n_valid, &st->o, &mm) != GR_OK) {
        gr_error_prefix("validation: ");
        return -1.0;
    }
    gr_log(2, "  validation: %lld queries, NDCG@10 %.4f, HR@10 %.4f (%.2fs)\n", (long long)mm.n, mm.ndcg[2],
           mm.hr[2], gr_time_now() - t0);
    return mm.ndcg[2];
}

gr_fit_ctx gr_eval_fit_ctx(const gr_split *s, const gr_eval_opts *opts, uint64_t seed, int verbose)
{
    gr_fit_ctx c;
    memset(&c, 0, sizeof c);
    c.seed = seed;
    c.verbose = verbose;
    if (!s || s->n_valid <= 0 || !s->valid) return c;
    gr_eval_opts o = opts ? *opts : gr_eval_opts_default();
    fit_state *st = NULL;
#pragma omp critical(gr_eval_fit_states)
    {
        for (fit_state *p = fit_states; p && !st; p = p->next)
            if (p->s == s && p->o.exclude_seen == o.exclude_seen && p->o.batch == o.batch && p->o.max_k == o.max_k)
                st = p;
        if (!st && (st = malloc(sizeof *st)) != NULL) {
            st->s = s;
            st->o = o;
            st->next = fit_states;
            fit_states = st;
        }
    }
    if (!st) {
        gr_log(1, "eval: out of memory for the validation context: training without validation\n");
        return c;
    }
    c.eval_state = st;
    c.validate = fit_validate;
    return c;
}

/* ---- output ---------------------------------------------------------------- */


static void json_num(FILE *f, double v, int decimals)
{
    if (isfinite(v)) fprintf(f, "%.*f", decimals, v);
    else fputs("null", f);
}

static void json_write(FILE *f, const char *dataset, const char *protocol, const gr_eval_result *r, int n,
                       int64_t n_test, int with_seed, uint64_t seed)
{
    fputs("{\"dataset\":", f);
    gr_json_write_str(f, dataset);
    fputs(", \"protocol\":", f);
    gr_json_write_str(f, protocol);
    fputs(", \"results\":[", f);
    for (int i = 0; i < n; i++) {
        const gr_eval_result *x = &r[i];
        fputs(i ? ",\n  {\"model\":" : "\n  {\"model\":", f);
        gr_json_write_str(f, x->model);
        fputs(", \"metrics\":{", f);
        int first = 1;
        for (int pass = 0; pass < 2; pass++)
            for (int k = 0; k < GR_EVAL_NK; k++) {
                if (x->test.max_k > 0 && gr_eval_ks[k] > x->test.max_k) continue;
                fprintf(f, "%s\"%s@%d\":", first ? "" : ", ", pass ? "NDCG" : "HR", gr_eval_ks[k]);
                json_num(f, pass ? x->test.ndcg[k] : x->test.hr[k], 6);
                first = 0;
            }
        fprintf(f, "%s\"MRR\":", first ? "" : ", ");
        json_num(f, x->test.mrr, 6);
        if (isfinite(x->invalid_rate)) {
            fputs(", \"invalid_rate\":", f);
            json_num(f, x->invalid_rate, 6);
        }
        fputs("}, \"valid_ndcg10\":", f);
        json_num(f, x->valid_ndcg10, 6);
        fputs(", \"train_seconds\":", f);
        json_num(f, x->train_seconds, 3);
        fputs(", \"eval_seconds\":", f);
        json_num(f, x->eval_seconds, 3);
        fputc('}', f);
    }
    fprintf(f, "%s], \"n_test\":%lld", n ? "\n" : "", (long long)n_test);
    if (with_seed) fprintf(f, ", \"seed\":%llu", (unsigned long long)seed);
    fputs("}\n", f);
}

static int json_file(const char *path, const char *dataset, const char *protocol, const gr_eval_result *r,
                     int n, int64_t n_test, int with_seed, uint64_t seed)
{
    if (!path || !*path) return gr_errorf("eval: JSON output path is empty");
    gr_afile a;
    if (gr_afile_open(&a, path) != GR_OK) return GR_ERR;
    json_write(a.f, dataset, protocol, r, n, n_test, with_seed, seed);
    return gr_afile_commit(&a);
}

int gr_eval_write_json_run(const char *path, const char *dataset, const char *protocol,
                           const gr_eval_result *r, int n, int64_t n_test, uint64_t seed)
{
    return json_file(path, dataset, protocol, r, n, n_test, 1, seed);
}

int gr_eval_write_json(const char *path, const char *dataset, const char *protocol,
                       const gr_eval_result *r, int n)
{
    int64_t n_test = 0;
    for (int i = 0; i < n; i++)
        if (r[i].test.n > n_test) n_test = r[i].test.n;
    return json_file(path, dataset, protocol, r, n, n_test, 0, 0);
}

void gr_eval_print_table(FILE *f, const gr_eval_result *r, int n)
{
    fprintf(f, "%-12s", "model");
    for (int k = 0; k < GR_EVAL_NK; k++) {
        char h[16];
        snprintf(h, sizeof h, "HR@%d", gr_eval_ks[k]);
        fprintf(f, " %7s", h);
    }
    for (int k = 0; k < GR_EVAL_NK; k++) {
        char h[16];
        snprintf(h, sizeof h, "NDCG@%d", gr_eval_ks[k]);
        fprintf(f, " %7s", h);
    }
    fprintf(f, " %7s %8s %9s %8s %8s\n", "MRR", "vNDCG@10", "train_s", "eval_s", "invalid");
    for (int i = 0; i < n; i++) {
        const gr_eval_result *x = &r[i];
        fprintf(f, "%-12.12s", x->model);
        for (int pass = 0; pass < 2; pass++)
            for (int k = 0; k < GR_EVAL_NK; k++) {
                if (x->test.max_k > 0 && gr_eval_ks[k] > x->test.max_k) fprintf(f, " %7s", "-");
                else fprintf(f, " %7.4f", pass ? x->test.ndcg[k] : x->test.hr[k]);
            }
        fprintf(f, " %7.4f", x->test.mrr);
        if (isfinite(x->valid_ndcg10)) fprintf(f, " %8.4f", x->valid_ndcg10);
        else fprintf(f, " %8s", "-");
        fprintf(f, " %9.2f %8.2f", x->train_seconds, x->eval_seconds);
        if (isfinite(x->invalid_rate)) fprintf(f, " %8.4f\n", x->invalid_rate);
        else fprintf(f, " %8s\n", "-");
    }
}
