/* The generic training loop (genrec/train.h): gradient accumulation,
 * global-norm clipping, warmup + cosine schedule, AdamW, progress,
 * validation and resumable checkpoints. */
#include "genrec/train.h"

#include "genrec/transformer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct gr_trainer {
    gr_train_config cfg;
    float *params, *grads;
    int64_t n;
    uint8_t *mask;          /* NULL = decay everything */
    gr_train_task task;
    gr_adamw opt;
    gr_rng rng;
    int64_t step;
    double last_valid;
    float last_loss, last_norm;
    int64_t last_tokens;    /* tokens of the last step (progress) */
};

void gr_train_config_default(gr_train_config *c)
{
    memset(c, 0, sizeof *c);
    c->steps = 1000;
    c->accum = 1;
    c->lr = 1e-3f;
    c->min_lr = 1e-4f;
    c->beta1 = 0.9f;
    c->beta2 = 0.95f;
    c->eps = 1e-8f;
    c->weight_decay = 0.1f;
    c->clip = 1.0f;
    c->seed = 1337;
    c->log_every = 10;
}

float gr_train_lr_at(const gr_train_config *c, int64_t s)
{
    if (s < c->warmup) return (float)((double)c->lr * (double)(s + 1) / (double)c->warmup);
    int64_t span = c->steps - c->warmup;
    double p = span > 0 ? (double)(s - c->warmup) / (double)span : 1.0;
    if (p < 0.0) p = 0.0;
    if (p > 1.0) p = 1.0;
    return (float)((double)c->min_lr + ((double)c->lr - (double)c->min_lr) * 0.5 * (1.0 + cos(M_PI * p)));
}

static int check_config(const gr_train_config *c)
{
#define BAD(...) return gr_errorf("training config: " __VA_ARGS__)
    if (c->steps <= 0) BAD("field 'steps' (%lld) must be > 0", (long long)c->steps);
    if (c->accum < 1) BAD("field 'accum' (%d) must be >= 1", c->accum);
    if (!(c->lr >= 0.0f) || !isfinite(c->lr)) BAD("field 'lr' (%g) must be >= 0", (double)c->lr);
    if (!(c->min_lr >= 0.0f && c->min_lr <= c->lr)) BAD("field 'min_lr' (%g) must be in [0, lr = %g]", (double)c->min_lr, (double)c->lr);
    if (c->warmup < 0) BAD("field 'warmup' (%lld) must be >= 0", (long long)c->warmup);
    if (!(c->clip >= 0.0f) || !isfinite(c->clip)) BAD("field 'clip' (%g) must be >= 0", (double)c->clip);
    if (c->log_every < 0) BAD("field 'log_every' must be >= 0");
    if (c->valid_every < 0) BAD("field 'valid_every' must be >= 0");
    if (c->ckpt_every < 0) BAD("field 'ckpt_every' must be >= 0");
#undef BAD
    return GR_OK;
}

gr_trainer *gr_trainer_new(const gr_train_config *cfg, float *params, float *grads, int64_t n,
                           const uint8_t *decay_mask, const gr_train_task *task)
{
    if (check_config(cfg) != GR_OK) return NULL;
    if (!task || !task->micro_batch) { gr_errorf("trainer: the task has no micro_batch callback"); return NULL; }
    if (n < 0 || (n > 0 && (!params || !grads))) { gr_errorf("trainer: no parameter or gradient slab"); return NULL; }
    gr_trainer *t = gr_calloc(1, sizeof *t);
    if (!t) return NULL;
    t->cfg = *cfg;
    t->params = params;
    t->grads = grads;
    t->n = n;
    t->task = *task;
    t->last_valid = NAN;
    t->last_loss = NAN;
    if (decay_mask) {
        t->mask = gr_alloc((size_t)(n > 0 ? n : 1), 1);
        if (!t->mask) { gr_free(t); return NULL; }
        memcpy(t->mask, decay_mask, (size_t)n);
    }
    if (gr_adamw_init(&t->opt, n, cfg->lr, cfg->beta1, cfg->beta2, cfg->eps, cfg->weight_decay) != GR_OK) {
        gr_error_prefix("training config: ");
        gr_trainer_free(t);
        return NULL;
    }
    gr_rng_seed(&t->rng, cfg->seed);
    return t;
}

void gr_trainer_free(gr_trainer *t)
{
    if (!t) return;
    gr_adamw_free(&t->opt);
    gr_free(t->mask);
    gr_free(t);
}

int64_t gr_trainer_step_count(const gr_trainer *t) { return t->step; }
const gr_train_config *gr_trainer_config(const gr_trainer *t) { return &t->cfg; }
double gr_trainer_last_valid(const gr_trainer *t) { return t->last_valid; }
float gr_trainer_last_loss(const gr_trainer *t) { return t->last_loss; }
float gr_trainer_last_grad_norm(const gr_trainer *t) { return t->last_norm; }

/* ---- one step ------------------------------------------------------------------------ */

#define NORM_BLOCKS 64 /* fixed partition: the norm does not depend on the thread count */

/* Scale g by s (s != 1) and return the L2 norm of the result. */
static double scale_and_norm(float *g, int64_t n, float s)
{
    double part[NORM_BLOCKS];
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int b = 0; b < NORM_BLOCKS; b++) {
        int64_t lo = n * b / NORM_BLOCKS, hi = n * (b + 1) / NORM_BLOCKS;
        double acc = 0.0;
        if (s != 1.0f)
            for (int64_t i = lo; i < hi; i++) g[i] *= s;
        for (int64_t i = lo; i < hi; i++) acc += (double)g[i] * g[i];
        part[b] = acc;
    }
    double sum = 0.0;
    for (int b = 0; b < NORM_BLOCKS; b++) sum += part[b];
    return sqrt(sum);
}

static void scale(float *g, int64_t n, float s)
{
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) g[i] *= s;
}

int gr_trainer_step(gr_trainer *t, float *loss_out)
{
    if (t->n > 0) memset(t->grads, 0, sizeof(float) * (size_t)t->n);
    double loss_sum = 0.0;
    int64_t tokens = 0;
    for (int k = 0; k < t->cfg.accum; k++) {
        float l = 0.0f;
        int64_t nt = 0;
        if (t->task.micro_batch(t->task.ctx, &t->rng, &l, &nt) != GR_OK)
            return gr_error_prefix("step %lld, micro-batch %d: ", (long long)t->step + 1, k);
        loss_sum += l;
        tokens += nt;
    }
    t->last_tokens = tokens;
    float loss = (float)(loss_sum / t->cfg.accum);
    if (!isfinite(loss))
        return gr_errorf("step %lld: the loss is %g (diverged; try a lower --lr or --clip)", (long long)t->step + 1,
                         (double)loss);
    double norm = scale_and_norm(t->grads, t->n, 1.0f / (float)t->cfg.accum);
    if (!isfinite(norm))
        return gr_errorf("step %lld: the gradient norm is not finite (diverged)", (long long)t->step + 1);
    if (t->cfg.clip > 0.0f && norm > t->cfg.clip) scale(t->grads, t->n, (float)(t->cfg.clip / (norm + 1e-6)));
    float lr = gr_train_lr_at(&t->cfg, t->step);
    t->opt.lr = lr;
    gr_adamw_step(&t->opt, t->params, t->grads, t->mask);
    t->step++;
    t->last_loss = loss;
    t->last_norm = (float)norm;
    if (t->task.on_step) t->task.on_step(t->task.ctx, t->step, loss, lr, (float)norm);
    if (loss_out) *loss_out = loss;
    return GR_OK;
}

int gr_trainer_validate(gr_trainer *t, double *loss)
{
    if (!t->task.valid_loss) return gr_errorf("trainer: the task has no validation loss");
    double l;
    if (t->task.valid_loss(t->task.ctx, &l) != GR_OK) return gr_error_prefix("validation at step %lld: ", (long long)t->step);
    t->last_valid = l;
    if (t->task.on_valid) t->task.on_valid(t->task.ctx, t->step, l);
    if (loss) *loss = l;
    return GR_OK;
}

/* ---- the loop ------------------------------------------------------------------------ */

static void fmt_time(char *buf, size_t n, double s)
{
    if (!(s >= 0.0) || s > 1e7) { snprintf(buf, n, "?"); return; }
    long v = (long)(s + 0.5);
    if (v >= 3600) snprintf(buf, n, "%ld:%02ld:%02ld", v / 3600, v / 60 % 60, v % 60);
    else snprintf(buf, n, "%ld:%02ld", v / 60, v % 60);
}

int gr_trainer_run(gr_trainer *t) { return gr_trainer_run_until(t, t->cfg.steps); }

int gr_trainer_run_until(gr_trainer *t, int64_t stop)
{
    const gr_train_config *c = &t->cfg;
    if (stop > c->steps) stop = c->steps;
    int tty = isatty(fileno(stderr));
    int show = c->log_every > 0 && gr_verbosity > 0;
    double t0 = gr_time_now();
    int64_t step0 = t->step, tokens = 0;
    int dirty = 0; /* a \r line is on screen */
    while (t->step < stop) {
        float loss;
        if (gr_trainer_step(t, &loss) != GR_OK) {
            if (dirty) fputc('\n', stderr);
            return GR_ERR;
        }
        tokens += t->last_tokens;
        int last = t->step == stop;
        if (show && (tty || t->step % c->log_every == 0 || last || t->step == step0 + 1)) {
            double el = gr_time_now() - t0, per = el / (double)(t->step - step0);
            char eta[32], elapsed[32];
            fmt_time(eta, sizeof eta, per * (double)(c->steps - t->step));
            fmt_time(elapsed, sizeof elapsed, el);
            fprintf(stderr, "%sstep %lld/%lld | loss %.4f | lr %.3e | norm %.3f | %.0f tok/s | %s elapsed, ETA %s%s",
                    tty ? "\r" : "", (long long)t->step, (long long)c->steps, (double)loss,
                    (double)gr_train_lr_at(c, t->step - 1), (double)t->last_norm,
                    el > 0 ? (double)tokens / el : 0.0, elapsed, eta, tty ? "\033[K" : "\n");
            dirty = tty;
            fflush(stderr);
        }
        if (t->task.valid_loss && c->valid_every > 0 && (t->step % c->valid_every == 0 || last)) {
            double vl;
            if (gr_trainer_validate(t, &vl) != GR_OK) {
                if (dirty) fputc('\n', stderr);
                return GR_ERR;
            }
            if (gr_verbosity > 0) {
                fprintf(stderr, "%sstep %lld: valid loss %.4f (perplexity %.2f)\n", dirty ? "\n" : "",
                        (long long)t->step, vl, exp(vl));
                dirty = 0;
            }
        }
        if (c->ckpt_path && ((c->ckpt_every > 0 && t->step % c->ckpt_every == 0) || last)) {
            if (gr_trainer_save(t, c->ckpt_path) != GR_OK) {
                if (dirty) fputc('\n', stderr);
                return GR_ERR;
            }
        }
    }
    if (dirty) fputc('\n', stderr);
    return GR_OK;
}

/* ---- checkpoints ----------------------------------------------------------------------- */

#define CKPT_VERSION 1

int gr_trainer_save(gr_trainer *t, const char *path)
{
    gr_gguf_builder *b = gr_gguf_builder_new();
    if (!b) return gr_errorf("%s: out of memory", path);
    const gr_train_config *c = &t->cfg;
    int rc = gr_gguf_set_str(b, "general.type", "genrec.train");
    rc = rc ? rc : gr_gguf_set_u32(b, "genrec.train.version", CKPT_VERSION);
    rc = rc ? rc : gr_gguf_set_u64(b, "genrec.train.step", (uint64_t)t->step);
    rc = rc ? rc : gr_gguf_set_u64(b, "genrec.train.n_params", (uint64_t)t->n);
    rc = rc ? rc : gr_gguf_set_i64(b, "genrec.train.adam_t", t->opt.t);
    rc = rc ? rc : gr_gguf_set_arr(b, "genrec.train.rng", GR_GGUF_U64, t->rng.s, 4);
    rc = rc ? rc : gr_gguf_set_i64(b, "genrec.train.steps", c->steps);
    rc = rc ? rc : gr_gguf_set_u32(b, "genrec.train.accum", (uint32_t)c->accum);
    rc = rc ? rc : gr_gguf_set_f32(b, "genrec.train.lr", c->lr);
    rc = rc ? rc : gr_gguf_set_f32(b, "genrec.train.min_lr", c->min_lr);
    rc = rc ? rc : gr_gguf_set_i64(b, "genrec.train.warmup", c->warmup);
    rc = rc ? rc : gr_gguf_set_f32(b, "genrec.train.beta1", c->beta1);
    rc = rc ? rc : gr_gguf_set_f32(b, "genrec.train.beta2", c->beta2);
    rc = rc ? rc : gr_gguf_set_f32(b, "genrec.train.eps", c->eps);
    rc = rc ? rc : gr_gguf_set_f32(b, "genrec.train.weight_decay", c->weight_decay);
    rc = rc ? rc : gr_gguf_set_f32(b, "genrec.train.clip", c->clip);
    rc = rc ? rc : gr_gguf_set_u64(b, "genrec.train.seed", c->seed);
    int64_t ne[1] = {t->n};
    if (!rc && t->n > 0) {
        rc = gr_gguf_add_tensor_f32(b, "train.params", GR_GGML_F32, 1, ne, t->params);
        rc = rc ? rc : gr_gguf_add_tensor_f32(b, "train.adam_m", GR_GGML_F32, 1, ne, t->opt.m);
        rc = rc ? rc : gr_gguf_add_tensor_f32(b, "train.adam_v", GR_GGML_F32, 1, ne, t->opt.v);
    }
    if (!rc && t->task.save_state) rc = t->task.save_state(t->task.ctx, b);
    if (rc) gr_error_prefix("%s: ", path);
    else rc = gr_gguf_write(b, path);
    gr_gguf_builder_free(b);
    return rc;
}

static int get_i64(const gr_gguf *g, const char *name, const char *key, int64_t *out)
{
    return gr_gguf_get_int(g, key, out) ? gr_error_prefix("%s: ", name) : GR_OK;
}

static int get_f32(const gr_gguf *g, const char *name, const char *key, float *out)
{
    double v;
    if (gr_gguf_get_float(g, key, &v)) return gr_error_prefix("%s: ", name);
    *out = (float)v;
    return GR_OK;
}

int gr_train_config_from_gguf(const gr_gguf *g, const char *name, gr_train_config *cfg)
{
    if (!name) name = "<gguf>";
    const char *type;
    if (gr_gguf_get_str(g, "general.type", &type, NULL) != GR_OK || strcmp(type, "genrec.train"))
        return gr_errorf("%s: not a genrec training checkpoint (field 'general.type' is not \"genrec.train\")", name);
    gr_train_config c = *cfg;
    int64_t steps, accum, warmup, seed;
    if (get_i64(g, name, "genrec.train.steps", &steps) || get_i64(g, name, "genrec.train.accum", &accum) ||
        get_i64(g, name, "genrec.train.warmup", &warmup) || get_i64(g, name, "genrec.train.seed", &seed) ||
        get_f32(g, name, "genrec.train.lr", &c.lr) || get_f32(g, name, "genrec.train.min_lr", &c.min_lr) ||
        get_f32(g, name, "genrec.train.beta1", &c.beta1) || get_f32(g, name, "genrec.train.beta2", &c.beta2) ||
        get_f32(g, name, "genrec.train.eps", &c.eps) || get_f32(g, name, "genrec.train.weight_decay", &c.weight_decay) ||
        get_f32(g, name, "genrec.train.clip", &c.clip))
        return GR_ERR;
    if (accum < 1 || accum > (1 << 30)) return gr_errorf("%s: field 'genrec.train.accum' = %lld is out of range", name, (long long)accum);
    c.steps = steps;
    c.accum = (int)accum;
    c.warmup = warmup;
    c.seed = (uint64_t)seed;
    if (check_config(&c) != GR_OK) return gr_error_prefix("%s: ", name);
    *cfg = c;
    return GR_OK;
}

static const gr_gguf_tensor *slab_tensor(const gr_gguf *g, const char *name, const char *tn, int64_t n)
{
    const gr_gguf_tensor *x = gr_gguf_find_tensor(g, tn);
    if (!x) { gr_errorf("%s: tensor '%s' is missing", name, tn); return NULL; }
    if (x->type != GR_GGML_F32 || x->n_elements != n) {
        gr_errorf("%s: tensor '%s': expected %lld f32 values, found %lld %s", name, tn, (long long)n,
                  (long long)x->n_elements, gr_ggml_type_name(x->type) ? gr_ggml_type_name(x->type) : "?");
        return NULL;
    }
    return x;
}

int gr_trainer_load_gguf(gr_trainer *t, const gr_gguf *g, const char *name)
{
    if (!name) name = "<gguf>";
    gr_train_config c = t->cfg;
    if (gr_train_config_from_gguf(g, name, &c) != GR_OK) return GR_ERR;
    int64_t ver, step, n, adam_t;
    if (get_i64(g, name, "genrec.train.version", &ver)) return GR_ERR;
    if (ver != CKPT_VERSION) return gr_errorf("%s: field 'genrec.train.version' = %lld: this genrec reads version %d", name, (long long)ver, CKPT_VERSION);
    if (get_i64(g, name, "genrec.train.step", &step) || get_i64(g, name, "genrec.train.n_params", &n) ||
        get_i64(g, name, "genrec.train.adam_t", &adam_t))
        return GR_ERR;
    if (n != t->n)
        return gr_errorf("%s: field 'genrec.train.n_params' = %lld but the model being trained has %lld parameters",
                         name, (long long)n, (long long)t->n);
    if (step < 0 || adam_t < 0) return gr_errorf("%s: field 'genrec.train.step' / 'adam_t' is negative", name);
    const gr_gguf_kv *rng = gr_gguf_get_arr(g, "genrec.train.rng", GR_GGUF_U64);
    if (!rng) return gr_error_prefix("%s: ", name);
    if (rng->n != 4) return gr_errorf("%s: field 'genrec.train.rng': expected 4 values, found %llu", name, (unsigned long long)rng->n);
    const gr_gguf_tensor *tp = NULL, *tm = NULL, *tv = NULL;
    if (n > 0) {
        if (!(tp = slab_tensor(g, name, "train.params", n)) || !(tm = slab_tensor(g, name, "train.adam_m", n)) ||
            !(tv = slab_tensor(g, name, "train.adam_v", n)))
            return GR_ERR;
    }
    if (t->task.load_state && t->task.load_state(t->task.ctx, g, name) != GR_OK) return GR_ERR;
    /* everything checked: commit */
    if (n > 0) {
        memcpy(t->params, tp->data, sizeof(float) * (size_t)n);
        memcpy(t->opt.m, tm->data, sizeof(float) * (size_t)n);
        memcpy(t->opt.v, tv->data, sizeof(float) * (size_t)n);
    }
    c.steps = t->cfg.steps;
    c.log_every = t->cfg.log_every;
    c.valid_every = t->cfg.valid_every;
    c.ckpt_every = t->cfg.ckpt_every;
    c.ckpt_path = t->cfg.ckpt_path;
    t->cfg = c;
    t->opt.beta1 = c.beta1;
    t->opt.beta2 = c.beta2;
    t->opt.eps = c.eps;
    t->opt.weight_decay = c.weight_decay;
    t->opt.t = adam_t;
    memcpy(t->rng.s, rng->v.arr, sizeof t->rng.s);
    t->step = step;
    return GR_OK;
}

int gr_trainer_load(gr_trainer *t, const char *path)
{
    gr_gguf *g = gr_gguf_open(path);
    if (!g) return GR_ERR;
    int rc = gr_trainer_load_gguf(t, g, path);
    gr_gguf_close(g);
    return rc;
}
