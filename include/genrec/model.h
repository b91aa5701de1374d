/* The recommender model interface. Every model (Pop, BPR-MF, BM25, SASRec,
 * and later the generative models) implements it, and every model is scored
 * through the same evaluation path (genrec/eval.h).
 *
 * Life cycle: gr_model_create(name, params) -> fit(split, ctx) -> score(...)
 * -> gr_model_free(). A model must not read valid/test targets during fit
 * except through ctx->validate (early stopping on validation NDCG@10).
 */
#ifndef GENREC_MODEL_H
#define GENREC_MODEL_H
#include "genrec/split.h"

typedef struct gr_model gr_model;

/* What fit() may use besides the split's training data. */
typedef struct gr_fit_ctx {
    /* Evaluate the model as it is now on the validation queries; returns
     * NDCG@10 (>= 0) or a negative value on error. NULL when no validation. */
    double (*validate)(struct gr_fit_ctx *ctx, gr_model *m);
    void *eval_state;   /* private to the evaluator */
    uint64_t seed;
    int verbose;        /* print progress (epoch, loss, validation metric, time) */
} gr_fit_ctx;

typedef struct gr_model_ops {
    const char *name;
    /* Train on s (training sequences only). GR_OK or GR_ERR + message. */
    int (*fit)(gr_model *m, const gr_split *s, gr_fit_ctx *ctx);
    /* Score all items for n queries: scores is [n, n_items], row-major, higher
     * is better. Items a model cannot return get -INFINITY. */
    int (*score)(gr_model *m, const gr_query *q, int n, float *scores);
    void (*destroy)(gr_model *m);
} gr_model_ops;

struct gr_model {
    const gr_model_ops *ops;
    int32_t n_items;
    void *impl;             /* model-specific state */
    int max_k;              /* the model ranks only its top max_k items (a
                               generative model: its beams); 0 = full ranking.
                               The evaluator omits metrics at K > max_k. */
    int64_t n_returned;     /* generative models: items returned by score() so far */
    int64_t n_invalid;      /* ... of which not real catalogue items (invalid_rate) */
};

/* Create a model by name ("pop", "bprmf", "bm25", "sasrec", ...) with
 * hyperparameters from params (keys "NAME.key=value"; unknown keys for this
 * model are an error). NULL + message if the name is unknown. */
gr_model *gr_model_create(const char *name, const gr_params *params);
void gr_model_free(gr_model *m);

/* List of registered model names, NULL-terminated. */
const char *const *gr_model_names(void);

/* Constructors, one per model (called by gr_model_create). */
gr_model *gr_pop_create(const gr_params *p);
gr_model *gr_bprmf_create(const gr_params *p);
gr_model *gr_bm25_create(const gr_params *p);
gr_model *gr_sasrec_create(const gr_params *p);
gr_model *gr_gen_create(const gr_params *p);
gr_model *gr_gen_sid_create(const gr_params *p);

#endif
