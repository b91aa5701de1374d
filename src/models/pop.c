/* Pop: score every item by its number of interactions in the training
 * sequences (all users). The same row for every query; ties are broken by
 * item id in the evaluator. No hyperparameters ("pop.*" keys are errors). */
#include <stdlib.h>
#include <string.h>

#include "baseline_params.h"
#include "genrec/model.h"

typedef struct pop_model {
    float *count; /* [n_items] training interaction counts */
} pop_model;

static int pop_fit(gr_model *m, const gr_split *s, gr_fit_ctx *ctx)
{
    (void)ctx;
    pop_model *pm = m->impl;
    if (!s || s->n_items < 0 || s->n_users < 0 || !s->train_off)
        return gr_errorf("pop: fit: split has no training data");
    float *c = gr_calloc((size_t)s->n_items + 1, sizeof *c);
    if (!c) return gr_error_prefix("pop: fit: ");
    int64_t n = s->train_off[s->n_users];
    for (int64_t k = 0; k < n; k++) {
        int32_t it = s->train_item[k];
        if (it < 0 || it >= s->n_items) {
            gr_free(c);
            return gr_errorf("pop: fit: training interaction %lld has item id %d outside [0, %d)",
                             (long long)k, (int)it, (int)s->n_items);
        }
        c[it] += 1.0f;
    }
    gr_free(pm->count);
    pm->count = c;
    m->n_items = s->n_items;
    return GR_OK;
}

static int pop_score(gr_model *m, const gr_query *q, int n, float *scores)
{
    (void)q;
    pop_model *pm = m->impl;
    if (!pm->count) return gr_errorf("pop: score called before fit");
    size_t row = (size_t)m->n_items;
    for (int r = 0; r < n; r++) memcpy(scores + (size_t)r * row, pm->count, row * sizeof *scores);
    return GR_OK;
}

static void pop_destroy(gr_model *m)
{
    pop_model *pm = m->impl;
    if (pm) gr_free(pm->count);
    gr_free(pm);
}

static const gr_model_ops pop_ops = {"pop", pop_fit, pop_score, pop_destroy};

/* Create an unfitted Pop model. p may be NULL; any "pop.*" key is an error
 * (Pop has no hyperparameters). Returns NULL + message on error; free with
 * gr_model_free(). */
gr_model *gr_pop_create(const gr_params *p)
{
    static const char *const known[] = {NULL};
    if (baseline_params_check(p, "pop.", known) != GR_OK) return NULL;
    gr_model *m = gr_calloc(1, sizeof *m);
    pop_model *pm = gr_calloc(1, sizeof *pm);
    if (!m || !pm) {
        gr_free(m);
        gr_free(pm);
        return NULL;
    }
    m->ops = &pop_ops;
    m->impl = pm;
    return m;
}
