/* SASRec trained with full softmax cross-entropy ("SASRec+", Klenitskiy &
 * Vasilev, RecSys'23) on the shared transformer engine.
 *
 * Model: item embeddings E (n_items, C), normal(0, 0.02), scaled by sqrt(C)
 * at the input; learned positions; `layers` pre-LN blocks (1 head by
 * default, ReLU FFN of width `ff` = C like the original's two 1x1 convs,
 * biases, dropout on the input and on each residual branch); final
 * LayerNorm; logits tied to E (no output bias). Init of the blocks: the
 * engine's (normal(0, 0.02), norms 1, biases 0).
 *
 * Training: the sample of user u is the last max_len + 1 items of u's
 * training sequence: inputs s[0..L-2], targets s[1..L-1], loss at every
 * position (mean over the batch's positions). Sequences are packed without
 * padding; input j of a sequence of n inputs has position max_len - n + j,
 * so the last input item is always at max_len - 1 (as the original, where
 * sequences are left-padded). Each epoch shuffles the users with >= 2
 * training items and cuts them into batches of `batch` sequences. AdamW
 * (betas 0.9/0.98, eps 1e-8, weight decay `wd` on matrices). After every
 * `eval_every` epochs the model is scored on the validation queries through
 * ctx->validate; training stops after `patience` evaluations without a better
 * NDCG@10 and the best parameters are restored.
 *
 * max_len = 0 (the default) derives it from the data: the 95th percentile
 * (nearest rank) of (training sequence length - 1) over users with >= 2
 * training items, rounded up to a multiple of 8, clamped to [8, 200]; this
 * gives 200 on MovieLens (the original setting) and shorter on Amazon-like
 * data.
 *
 * Scoring: the last max_len items of each query history (inference mode),
 * the last hidden state times Eᵀ; a query with an empty history gets all
 * scores 0. With loss=cosine the items are ranked by cosine (E normalised).
 *
 * Loss variants: ce (full softmax, default), sampled (uniform negatives
 * shared by a chunk of rows, dot products / temperature), cosine (the HSTU
 * configuration: sampled with cosine logits / temperature, 0.05).
 *
 * Hyperparameters (sasrec.KEY=VALUE): dim 64, layers 2, heads 1, ff (0 = dim),
 * max_len 0 (auto), dropout 0.2, lr 2e-3, wd 0, batch 128, epochs 200,
 * patience 10, eval_every 1, loss ce, negatives 128, temperature (1 for
 * sampled, 0.05 for cosine), seed_offset 0 (added to ctx->seed).
 * Deterministic for a given ctx->seed and thread count. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "baseline_params.h"
#include "genrec/model.h"
#include "genrec/transformer.h"
#include "genrec/xent.h"

enum { LOSS_CE = 0, LOSS_SAMPLED, LOSS_COSINE };

typedef struct sasrec {
    /* hyperparameters */
    int dim, layers, heads, ff, max_len_param, batch, epochs, patience, eval_every, loss, negatives;
    float dropout, lr, wd, temperature;
    int64_t seed_offset;
    /* fitted state */
    int fitted, max_len;
    int32_t n_items;
    gr_tfm *tfm;
    float *emb, *demb;              /* (n_items, C) */
    gr_adamw opt_t, opt_e;
    uint8_t *decay_t;               /* weight-decay mask of the transformer slab */
    float *best_t, *best_e;         /* best-validation snapshot */
    /* batch buffers: cap_tok tokens, cap_seq sequences */
    int cap_tok, cap_seq;
    float *x, *h, *dh;              /* (cap_tok, C) */
    int32_t *tok, *pos, *tgt, *seq_off, *rows;
    gr_xent_ws xws;
    gr_rng rng;
    /* last fit, for benchmarks and tests */
    int epochs_run, best_epoch;
} sasrec;

static void free_state(sasrec *s)
{
    gr_tfm_free(s->tfm);
    s->tfm = NULL;
    gr_adamw_free(&s->opt_t);
    gr_adamw_free(&s->opt_e);
    float **fp[] = {&s->emb, &s->demb, &s->best_t, &s->best_e, &s->x, &s->h, &s->dh};
    for (size_t i = 0; i < sizeof fp / sizeof fp[0]; i++) { gr_free(*fp[i]); *fp[i] = NULL; }
    int32_t **ip[] = {&s->tok, &s->pos, &s->tgt, &s->seq_off, &s->rows};
    for (size_t i = 0; i < sizeof ip / sizeof ip[0]; i++) { gr_free(*ip[i]); *ip[i] = NULL; }
    gr_free(s->decay_t);
    s->decay_t = NULL;
    gr_xent_ws_free(&s->xws);
    s->fitted = 0;
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* The automatic max_len rule described at the top; -1 on OOM. */
static int auto_max_len(const gr_split *sp)
{
    int64_t n = 0;
    for (int32_t u = 0; u < sp->n_users; u++) n += sp->train_off[u + 1] - sp->train_off[u] >= 2;
    if (n == 0) return 8;
    int32_t *len = gr_alloc((size_t)n, sizeof(int32_t));
    if (!len) return -1;
    n = 0;
    for (int32_t u = 0; u < sp->n_users; u++) {
        int64_t l = sp->train_off[u + 1] - sp->train_off[u];
        if (l >= 2) len[n++] = (int32_t)(l - 1 > 1000000 ? 1000000 : l - 1);
    }
    qsort(len, (size_t)n, sizeof(int32_t), cmp_i32);
    int64_t k = (95 * n + 99) / 100 - 1;
    if (k >= n) k = n - 1;
    int v = (len[k] + 7) / 8 * 8;
    gr_free(len);
    return v < 8 ? 8 : v > 200 ? 200 : v;
}

/* Allocate parameters, optimiser state and batch buffers for sp. */
static int alloc_state(sasrec *s, const gr_split *sp, uint64_t seed)
{
    free_state(s);
    const int C = s->dim;
    s->n_items = sp->n_items;
    s->max_len = s->max_len_param > 0 ? s->max_len_param : auto_max_len(sp);
    if (s->max_len < 0) return GR_ERR;
    gr_tfm_config cfg = {0};
    cfg.n_layer = s->layers;
    cfg.d_model = C;
    cfg.n_head = s->heads;
    cfg.n_kv_head = s->heads;
    cfg.d_ff = s->ff > 0 ? s->ff : C;
    cfg.max_T = s->max_len;
    cfg.norm = GR_NORM_LAYER;
    cfg.act = GR_ACT_RELU;
    cfg.pos = GR_POS_LEARNED;
    cfg.bias = 1;
    cfg.final_norm = 1;
    cfg.norm_eps = 1e-5f;
    cfg.dropout = s->dropout;
    s->tfm = gr_tfm_init(&cfg, seed);
    if (!s->tfm) return GR_ERR;
    const int64_t np = gr_tfm_n_params(s->tfm), ne = (int64_t)s->n_items * C;
    s->cap_seq = s->batch;
    s->cap_tok = s->batch * s->max_len;
    s->emb = gr_alloc((size_t)ne, sizeof(float));
    s->demb = gr_alloc((size_t)ne, sizeof(float));
    s->best_t = gr_alloc((size_t)np, sizeof(float));
    s->best_e = gr_alloc((size_t)ne, sizeof(float));
    s->decay_t = gr_alloc((size_t)np, 1);
    s->x = gr_alloc((size_t)s->cap_tok * C, sizeof(float));
    s->h = gr_alloc((size_t)s->cap_tok * C, sizeof(float));
    s->dh = gr_alloc((size_t)s->cap_tok * C, sizeof(float));
    s->tok = gr_alloc((size_t)s->cap_tok, sizeof(int32_t));
    s->pos = gr_alloc((size_t)s->cap_tok, sizeof(int32_t));
    s->tgt = gr_alloc((size_t)s->cap_tok, sizeof(int32_t));
    s->seq_off = gr_alloc((size_t)s->cap_seq + 1, sizeof(int32_t));
    s->rows = gr_alloc((size_t)s->cap_seq, sizeof(int32_t));
    if (!s->emb || !s->demb || !s->best_t || !s->best_e || !s->decay_t || !s->x || !s->h || !s->dh ||
        !s->tok || !s->pos || !s->tgt || !s->seq_off || !s->rows)
        return GR_ERR;
    gr_rng r;
    gr_rng_seed(&r, seed ^ 0x5a5a5a5a5a5a5a5aULL);
    for (int64_t i = 0; i < ne; i++) s->emb[i] = (float)(0.02 * gr_rng_normal(&r));
    gr_tfm_decay_mask(s->tfm, s->decay_t);
    if (gr_adamw_init(&s->opt_t, np, s->lr, 0.9f, 0.98f, 1e-8f, s->wd) != GR_OK) return GR_ERR;
    if (gr_adamw_init(&s->opt_e, ne, s->lr, 0.9f, 0.98f, 1e-8f, s->wd) != GR_OK) return GR_ERR;
    gr_rng_seed(&s->rng, seed);
    s->xws.chunk = 0;
    return GR_OK;
}

/* x[i] = E[tok[i]] * sqrt(C) for i < N. */
static void embed(const sasrec *s, int N)
{
    const int C = s->dim;
    const float sc = sqrtf((float)C);
    for (int i = 0; i < N; i++) {
        const float *e = s->emb + (int64_t)s->tok[i] * C;
        float *x = s->x + (int64_t)i * C;
        for (int c = 0; c < C; c++) x[c] = e[c] * sc;
    }
}

/* Pack the training samples of users[0..n) into the batch buffers; returns N. */
static int build_train_batch(sasrec *s, const gr_split *sp, const int32_t *users, int n)
{
    int N = 0;
    s->seq_off[0] = 0;
    for (int b = 0; b < n; b++) {
        const int32_t u = users[b];
        const int64_t lo = sp->train_off[u], hi = sp->train_off[u + 1];
        int64_t L = hi - lo;
        if (L > s->max_len + 1) L = s->max_len + 1;
        const int32_t *it = sp->train_item + hi - L;
        const int n_in = (int)L - 1;
        for (int j = 0; j < n_in; j++) {
            s->tok[N + j] = it[j];
            s->tgt[N + j] = it[j + 1];
            s->pos[N + j] = s->max_len - n_in + j;
        }
        N += n_in;
        s->seq_off[b + 1] = N;
    }
    return N;
}

/* One optimisation step on the packed batch; *loss gets its mean loss. */
static int train_step(sasrec *s, int n_seq, int N, float *loss)
{
    const int C = s->dim;
    const int V = s->n_items;
    embed(s, N);
    if (gr_tfm_forward(s->tfm, s->x, s->pos, s->seq_off, n_seq, N, s->h, 1, &s->rng) != GR_OK) return GR_ERR;
    gr_tfm_zero_grad(s->tfm);
    memset(s->demb, 0, sizeof(float) * (size_t)V * C);
    memset(s->dh, 0, sizeof(float) * (size_t)N * C);
    int rc;
    if (s->loss == LOSS_CE) {
        rc = gr_xent_full(&s->xws, s->h, s->emb, NULL, s->tgt, N, V, C, loss, s->dh, s->demb, NULL);
    } else {
        gr_xent_sampled_opts o = {s->negatives, s->loss == LOSS_COSINE, s->temperature};
        rc = gr_xent_sampled(&s->xws, &o, &s->rng, s->h, s->emb, NULL, s->tgt, N, V, C, loss, s->dh,
                             s->demb, NULL);
    }
    if (rc != GR_OK) return GR_ERR;
    if (gr_tfm_backward(s->tfm, s->dh, s->dh) != GR_OK) return GR_ERR;
    const float sc = sqrtf((float)C);
    for (int i = 0; i < N; i++) { /* input embedding gradient (tied with the output) */
        float *d = s->demb + (int64_t)s->tok[i] * C;
        const float *g = s->dh + (int64_t)i * C;
        for (int c = 0; c < C; c++) d[c] += g[c] * sc;
    }
    gr_adamw_step(&s->opt_t, gr_tfm_params(s->tfm), gr_tfm_grads(s->tfm), s->decay_t);
    gr_adamw_step(&s->opt_e, s->emb, s->demb, NULL);
    return GR_OK;
}

static void snapshot(sasrec *s, int restore)
{
    const size_t np = (size_t)gr_tfm_n_params(s->tfm), ne = (size_t)s->n_items * s->dim;
    if (restore) {
        memcpy(gr_tfm_params(s->tfm), s->best_t, np * sizeof(float));
        memcpy(s->emb, s->best_e, ne * sizeof(float));
    } else {
        memcpy(s->best_t, gr_tfm_params(s->tfm), np * sizeof(float));
        memcpy(s->best_e, s->emb, ne * sizeof(float));
    }
}

static int check_split(const gr_split *sp)
{
    if (!sp || sp->n_users < 0 || sp->n_items <= 0 || !sp->train_off)
        return gr_errorf("sasrec: fit: split has no training data");
    const int64_t n = sp->train_off[sp->n_users];
    for (int64_t k = 0; k < n; k++)
        if (sp->train_item[k] < 0 || sp->train_item[k] >= sp->n_items)
            return gr_errorf("sasrec: fit: training interaction %lld has item id %d outside [0, %d)",
                             (long long)k, (int)sp->train_item[k], (int)sp->n_items);
    return GR_OK;
}

static int sasrec_fit(gr_model *m, const gr_split *sp, gr_fit_ctx *ctx)
{
    sasrec *s = m->impl;
    if (check_split(sp) != GR_OK) return GR_ERR;
    const uint64_t seed = (ctx ? ctx->seed : 42) + (uint64_t)s->seed_offset;
    const int verbose = ctx && ctx->verbose;
    if (alloc_state(s, sp, seed) != GR_OK) {
        free_state(s);
        return gr_error_prefix("sasrec: fit: ");
    }
    m->n_items = sp->n_items;
    s->fitted = 1;
    int32_t *users = gr_alloc((size_t)sp->n_users + 1, sizeof(int32_t));
    if (!users) return gr_error_prefix("sasrec: fit: ");
    int32_t n_users = 0;
    for (int32_t u = 0; u < sp->n_users; u++)
        if (sp->train_off[u + 1] - sp->train_off[u] >= 2) users[n_users++] = u;
    if (verbose)
        gr_log(1, "sasrec: %d users, %d items, dim %d, %d layers, max_len %d, %lld parameters\n",
               (int)n_users, (int)s->n_items, s->dim, s->layers, s->max_len,
               (long long)(gr_tfm_n_params(s->tfm) + (int64_t)s->n_items * s->dim));
    double best = -1.0;
    int bad = 0, rc = GR_OK;
    s->epochs_run = 0;
    s->best_epoch = 0;
    for (int ep = 1; ep <= s->epochs && n_users > 0; ep++) {
        double t0 = gr_time_now(), loss_sum = 0.0;
        int64_t n_tok = 0;
        gr_rng_shuffle_i32(&s->rng, users, n_users);
        for (int32_t b = 0; b < n_users; b += s->batch) {
            int n = n_users - b < s->batch ? n_users - b : s->batch;
            int N = build_train_batch(s, sp, users + b, n);
            float loss = 0.0f;
            if (train_step(s, n, N, &loss) != GR_OK) { rc = GR_ERR; break; }
            loss_sum += (double)loss * N;
            n_tok += N;
        }
        if (rc != GR_OK) break;
        s->epochs_run = ep;
        double t1 = gr_time_now(), v = -1.0;
        int evaluate = ctx && ctx->validate && (ep % s->eval_every == 0 || ep == s->epochs);
        if (evaluate) {
            v = ctx->validate(ctx, m);
            if (v < 0) { rc = gr_error_prefix("sasrec: validation after epoch %d: ", ep); break; }
            if (v > best) {
                best = v;
                s->best_epoch = ep;
                bad = 0;
                snapshot(s, 0);
            } else {
                bad++;
            }
        }
        if (verbose) {
            if (evaluate)
                gr_log(1, "sasrec: epoch %d loss %.4f valid NDCG@10 %.4f%s (%.2fs train, %.2fs valid)\n", ep,
                       loss_sum / (double)(n_tok ? n_tok : 1), v, s->best_epoch == ep ? " *" : "", t1 - t0,
                       gr_time_now() - t1);
            else
                gr_log(1, "sasrec: epoch %d loss %.4f (%.2fs)\n", ep, loss_sum / (double)(n_tok ? n_tok : 1),
                       t1 - t0);
        }
        if (evaluate && bad >= s->patience) break;
    }
    gr_free(users);
    if (rc != GR_OK) return rc;
    if (s->best_epoch > 0) {
        snapshot(s, 1);
        if (verbose)
            gr_log(1, "sasrec: restored epoch %d (valid NDCG@10 %.4f) after %d epochs\n", s->best_epoch, best,
                   s->epochs_run);
    }
    return GR_OK;
}

static int sasrec_score(gr_model *m, const gr_query *q, int n, float *scores)
{
    sasrec *s = m->impl;
    if (!s->fitted) return gr_errorf("sasrec: score called before fit");
    const int C = s->dim, V = s->n_items;
    const float *W = s->emb;
    float *Wn = NULL;
    if (s->loss == LOSS_COSINE) { /* rank by cosine: normalised item embeddings */
        Wn = gr_alloc((size_t)V * C, sizeof(float));
        if (!Wn) return gr_error_prefix("sasrec: score: ");
        for (int v = 0; v < V; v++) {
            const float *e = s->emb + (int64_t)v * C;
            double ss = 0.0;
            for (int c = 0; c < C; c++) ss += (double)e[c] * e[c];
            float inv = 1.0f / fmaxf((float)sqrt(ss), 1e-6f);
            for (int c = 0; c < C; c++) Wn[(int64_t)v * C + c] = e[c] * inv;
        }
        W = Wn;
    }
    int rc = GR_OK;
    for (int i = 0; i < n && rc == GR_OK;) {
        /* pack up to cap_seq non-empty histories */
        int n_seq = 0, N = 0;
        s->seq_off[0] = 0;
        while (i < n && n_seq < s->cap_seq) {
            const gr_query *qq = &q[i];
            if (qq->hist_len <= 0) {
                memset(scores + (int64_t)i * V, 0, sizeof(float) * V);
                i++;
                continue;
            }
            int L = qq->hist_len < s->max_len ? qq->hist_len : s->max_len;
            const int32_t *it = qq->hist + qq->hist_len - L;
            for (int j = 0; j < L; j++) {
                if (it[j] < 0 || it[j] >= V) {
                    rc = gr_errorf("sasrec: score: query %d has history item %d outside [0, %d)", i,
                                   (int)it[j], V);
                    break;
                }
                s->tok[N + j] = it[j];
                s->pos[N + j] = s->max_len - L + j;
            }
            if (rc != GR_OK) break;
            N += L;
            s->rows[n_seq] = N - 1;
            s->tgt[n_seq] = i; /* query index of this sequence */
            s->seq_off[++n_seq] = N;
            i++;
        }
        if (rc != GR_OK || n_seq == 0) continue;
        embed(s, N);
        if (gr_tfm_forward(s->tfm, s->x, s->pos, s->seq_off, n_seq, N, s->h, 0, NULL) != GR_OK) {
            rc = GR_ERR;
            break;
        }
        /* logits of the last position of each sequence; rows are written
         * directly into the query's score row */
        for (int k = 0; k < n_seq && rc == GR_OK;) {
            int k2 = k + 1; /* a run of consecutive query indices */
            while (k2 < n_seq && s->tgt[k2] == s->tgt[k2 - 1] + 1) k2++;
            rc = gr_xent_logits(s->h, C, s->rows + k, k2 - k, W, NULL, V, C, scores + (int64_t)s->tgt[k] * V);
            k = k2;
        }
    }
    gr_free(Wn);
    return rc;
}

static void sasrec_destroy(gr_model *m)
{
    sasrec *s = m->impl;
    if (!s) return;
    free_state(s);
    gr_free(s);
    m->impl = NULL;
}

static const gr_model_ops sasrec_ops = {"sasrec", sasrec_fit, sasrec_score, sasrec_destroy};

/* Read an integer parameter in [lo, hi]. */
static int param_int(const gr_params *p, const char *key, int64_t def, int64_t lo, int64_t hi, int *out)
{
    int64_t v;
    if (gr_params_int(p, key, def, &v) != GR_OK) return GR_ERR;
    if (v < lo || v > hi) return gr_errorf("parameter %s: %lld is outside [%lld, %lld]", key, (long long)v,
                                           (long long)lo, (long long)hi);
    *out = (int)v;
    return GR_OK;
}

static int param_float(const gr_params *p, const char *key, double def, double lo, double hi, float *out)
{
    double v;
    if (gr_params_float(p, key, def, &v) != GR_OK) return GR_ERR;
    if (!(v >= lo && v <= hi)) return gr_errorf("parameter %s: %g is outside [%g, %g]", key, v, lo, hi);
    *out = (float)v;
    return GR_OK;
}

/* Create an unfitted SASRec with hyperparameters from p (keys "sasrec.*",
 * listed at the top of this file; an unknown key or a value out of range is
 * an error). p may be NULL (all defaults). Returns NULL + message on error;
 * free with gr_model_free(). */
gr_model *gr_sasrec_create(const gr_params *p)
{
    static const char *const known[] = {
        "sasrec.dim", "sasrec.layers", "sasrec.heads", "sasrec.ff", "sasrec.max_len", "sasrec.dropout",
        "sasrec.lr", "sasrec.wd", "sasrec.batch", "sasrec.epochs", "sasrec.patience", "sasrec.eval_every",
        "sasrec.loss", "sasrec.negatives", "sasrec.temperature", "sasrec.seed_offset", NULL};
    if (baseline_params_check(p, "sasrec.", known) != GR_OK) return NULL;
    sasrec *s = gr_calloc(1, sizeof *s);
    if (!s) return NULL;
    int ok = param_int(p, "sasrec.dim", 64, 1, 4096, &s->dim) == GR_OK &&
             param_int(p, "sasrec.layers", 2, 1, 64, &s->layers) == GR_OK &&
             param_int(p, "sasrec.heads", 1, 1, 64, &s->heads) == GR_OK &&
             param_int(p, "sasrec.ff", 0, 0, 65536, &s->ff) == GR_OK &&
             param_int(p, "sasrec.max_len", 0, 0, 4096, &s->max_len_param) == GR_OK &&
             param_float(p, "sasrec.dropout", 0.2, 0.0, 0.95, &s->dropout) == GR_OK &&
             param_float(p, "sasrec.lr", 2e-3, 0.0, 10.0, &s->lr) == GR_OK &&
             param_float(p, "sasrec.wd", 0.0, 0.0, 10.0, &s->wd) == GR_OK &&
             param_int(p, "sasrec.batch", 128, 1, 65536, &s->batch) == GR_OK &&
             param_int(p, "sasrec.epochs", 200, 0, 1000000, &s->epochs) == GR_OK &&
             param_int(p, "sasrec.patience", 10, 1, 1000000, &s->patience) == GR_OK &&
             param_int(p, "sasrec.eval_every", 1, 1, 1000000, &s->eval_every) == GR_OK &&
             param_int(p, "sasrec.negatives", 128, 1, 1 << 20, &s->negatives) == GR_OK;
    const char *loss = ok ? gr_params_str(p, "sasrec.loss", "ce") : "ce";
    if (ok) {
        if (!strcmp(loss, "ce")) s->loss = LOSS_CE;
        else if (!strcmp(loss, "sampled")) s->loss = LOSS_SAMPLED;
        else if (!strcmp(loss, "cosine")) s->loss = LOSS_COSINE;
        else ok = gr_errorf("parameter sasrec.loss: '%s' is not one of ce, sampled, cosine", loss) == GR_OK;
    }
    ok = ok && param_float(p, "sasrec.temperature", s->loss == LOSS_COSINE ? 0.05 : 1.0, 1e-4, 1e4,
                           &s->temperature) == GR_OK;
    int64_t so = 0;
    ok = ok && gr_params_int(p, "sasrec.seed_offset", 0, &so) == GR_OK;
    s->seed_offset = so;
    if (ok && s->dim % s->heads != 0)
        ok = gr_errorf("parameter sasrec.heads: %d does not divide sasrec.dim = %d", s->heads, s->dim) == GR_OK;
    gr_model *m = ok ? gr_calloc(1, sizeof *m) : NULL;
    if (!m) {
        gr_free(s);
        return NULL;
    }
    m->ops = &sasrec_ops;
    m->impl = s;
    return m;
}
