/* One model run on a split: fit (with validation early stopping), then
 * validation and test metrics, timed. Shared by `genrec eval` and the demo. */
#include <math.h>
#include <stdio.h>

#include "genrec/eval.h"

int gr_eval_run_model(gr_model *m, const char *name, const gr_split *s, const gr_eval_opts *eo,
                      uint64_t seed, int verbose, gr_eval_result *r)
{
    snprintf(r->model, sizeof r->model, "%s", name);
    gr_eval_opts eo_model = *eo; /* a model that ranks only its top max_k items */
    if (m->max_k > 0 && (eo_model.max_k == 0 || m->max_k < eo_model.max_k)) eo_model.max_k = m->max_k;
    eo = &eo_model;
    gr_fit_ctx ctx = gr_eval_fit_ctx(s, eo, seed, verbose);
    double t0 = gr_time_now();
    if (m->ops->fit(m, s, &ctx) != GR_OK) return gr_error_prefix("model %s: fit: ", name);
    r->train_seconds = gr_time_now() - t0;

    r->valid_ndcg10 = NAN;
    if (s->n_valid > 0) {
        gr_metrics vm;
        gr_metrics_init(&vm);
        if (gr_eval_queries(m, s, s->valid, s->n_valid, eo, &vm) != GR_OK)
            return gr_error_prefix("model %s: validation: ", name);
        r->valid_ndcg10 = vm.ndcg[2];
    }
    gr_metrics_init(&r->test);
    const int64_t ret0 = m->n_returned, inv0 = m->n_invalid;
    double t1 = gr_time_now();
    if (gr_eval_queries(m, s, s->test, s->n_test, eo, &r->test) != GR_OK)
        return gr_error_prefix("model %s: test: ", name);
    r->eval_seconds = gr_time_now() - t1;
    r->invalid_rate = NAN;
    if (m->n_returned > ret0) /* only generative models count what they return */
        r->invalid_rate = (double)(m->n_invalid - inv0) / (double)(m->n_returned - ret0);
    gr_log(1, "[%s] test NDCG@10 %.4f HR@10 %.4f (train %.2fs, eval %.2fs)\n", name, r->test.ndcg[2],
           r->test.hr[2], r->train_seconds, r->eval_seconds);
    return GR_OK;
}
