/* The language model as a gr_trainer task (genrec/lm_train.h). */
#include "genrec/lm_io.h"
#include "genrec/lm_train.h"

#include <math.h>
#include <string.h>

int gr_lm_task_init(gr_lm_task *t, gr_lm *lm, const gr_lm_data *d, int B, int T, uint64_t seed)
{
    memset(t, 0, sizeof *t);
    t->lm = lm;
    if (T > gr_lm_config(lm)->max_T)
        return gr_errorf("language-model training: sequence length %d exceeds the model's context %d", T,
                         gr_lm_config(lm)->max_T);
    if (gr_lm_loader_init(&t->train, d->tokens, d->n_train, B, T, d->sep, 1, seed) != GR_OK)
        return gr_error_prefix("training part: ");
    int64_t nv = d->n_tokens - d->n_train;
    if (nv >= 2) {
        int Tv = nv - 1 < T ? (int)(nv - 1) : T;
        if (gr_lm_loader_init(&t->valid, d->tokens + d->n_train, nv, B, Tv, d->sep, 0, 0) != GR_OK) {
            gr_lm_loader_free(&t->train);
            return gr_error_prefix("validation part: ");
        }
        t->has_valid = 1;
    }
    return GR_OK;
}

void gr_lm_task_free(gr_lm_task *t)
{
    if (!t) return;
    gr_lm_loader_free(&t->train);
    gr_lm_loader_free(&t->valid);
    memset(t, 0, sizeof *t);
}

static int task_micro(void *ctx, gr_rng *rng, float *loss, int64_t *n_tokens)
{
    gr_lm_task *t = ctx;
    const gr_lm_batch *b;
    if (gr_lm_loader_next(&t->train, 0, &b) != GR_OK) return GR_ERR;
    *n_tokens = b->N;
    return gr_lm_forward_backward(t->lm, b, loss, rng);
}

static int task_valid(void *ctx, double *loss)
{
    gr_lm_task *t = ctx;
    if (!t->has_valid) return gr_errorf("no validation data");
    t->valid.index = 0;
    t->valid.epoch = 0;
    double s = 0.0;
    int64_t n = 0, left = t->max_valid_windows > 0 ? t->max_valid_windows : INT64_MAX;
    while (left > 0) {
        const gr_lm_batch *b;
        int cap = left < t->valid.B ? (int)left : t->valid.B;
        if (gr_lm_loader_next(&t->valid, cap, &b) != GR_OK) return GR_ERR;
        if (!b) break;
        double bs;
        int64_t bn;
        if (gr_lm_eval_loss(t->lm, b, &bs, &bn) != GR_OK) return GR_ERR;
        s += bs;
        n += bn;
        left -= b->N / t->valid.T;
    }
    *loss = n > 0 ? s / (double)n : NAN;
    return GR_OK;
}

static int task_save(void *ctx, gr_gguf_builder *b)
{
    gr_lm_task *t = ctx;
    if (gr_lm_to_gguf(t->lm, b, GR_GGML_F32, 0) != GR_OK) return GR_ERR;
    int rc = gr_gguf_set_i64(b, "genrec.data.epoch", t->train.epoch);
    rc = rc ? rc : gr_gguf_set_i64(b, "genrec.data.index", t->train.index);
    rc = rc ? rc : gr_gguf_set_i64(b, "genrec.data.windows", t->train.n_windows);
    rc = rc ? rc : gr_gguf_set_u32(b, "genrec.data.batch", (uint32_t)t->train.B);
    rc = rc ? rc : gr_gguf_set_u32(b, "genrec.data.ctx", (uint32_t)t->train.T);
    rc = rc ? rc : gr_gguf_set_u64(b, "genrec.data.seed", t->train.seed);
    return rc;
}

static int get(const gr_gguf *g, const char *name, const char *key, int64_t *v)
{
    return gr_gguf_get_int(g, key, v) ? gr_error_prefix("%s: ", name) : GR_OK;
}

static int task_load(void *ctx, const gr_gguf *g, const char *name)
{
    gr_lm_task *t = ctx;
    int64_t epoch, index, nw, B, T, seed;
    if (get(g, name, "genrec.data.epoch", &epoch) || get(g, name, "genrec.data.index", &index) ||
        get(g, name, "genrec.data.windows", &nw) || get(g, name, "genrec.data.batch", &B) ||
        get(g, name, "genrec.data.ctx", &T) || get(g, name, "genrec.data.seed", &seed))
        return GR_ERR;
    if (B != t->train.B || T != t->train.T)
        return gr_errorf("%s: the checkpoint was trained with batches of %lld x %lld tokens, not %d x %d", name,
                         (long long)B, (long long)T, t->train.B, t->train.T);
    if (nw != t->train.n_windows)
        return gr_errorf("%s: the checkpoint's training data had %lld windows, this data has %lld (different text or "
                         "tokenizer?)", name, (long long)nw, (long long)t->train.n_windows);
    if ((uint64_t)seed != t->train.seed)
        return gr_errorf("%s: field 'genrec.data.seed' = %llu differs from the seed in use (%llu)", name,
                         (unsigned long long)seed, (unsigned long long)t->train.seed);
    if (gr_lm_loader_seek(&t->train, epoch, index) != GR_OK) return gr_error_prefix("%s: ", name);
    return GR_OK;
}

gr_train_task gr_lm_task_callbacks(gr_lm_task *t)
{
    gr_train_task k;
    memset(&k, 0, sizeof k);
    k.ctx = t;
    k.micro_batch = task_micro;
    k.valid_loss = t->has_valid ? task_valid : NULL;
    k.save_state = task_save;
    k.load_state = task_load;
    return k;
}
