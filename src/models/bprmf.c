/* BPR-MF (Rendle et al., UAI 2009): matrix factorisation trained with the
 * Bayesian Personalised Ranking loss on sampled (user, positive, negative)
 * triples.
 *
 *   score(u, i) = P[u]·Q[i] + B[i]      (users without training data: B[i])
 *
 * Training: every epoch shuffles all training interactions (u, i); each gets
 * `neg` negatives drawn uniformly from the items not in u's training
 * sequence (exactly, by index arithmetic on the sorted seen list - no
 * rejection loop). Mini-batches of `batch` positives minimise the mean BPR
 * loss plus L2 (bprmf_internal.h) with lazy Adam: only rows touched by the
 * batch are updated, with the global step count for bias correction.
 * Parallelism: the epoch's negative sampling (one RNG stream per triple,
 * forked from the epoch's stream) and the per-triple gradients run under
 * OpenMP, gradients are scattered serially in triple order, and the Adam row
 * updates are independent - so results are identical for a given seed
 * whatever the thread count. (Per-batch regions need BPRMF_PAR_MIN floats
 * of work, so the default batch of 1024 x dim 64 trains serially apart from
 * the sampling; larger batches or dims use all threads.) Early stopping: every eval_every epochs ctx->validate gives
 * NDCG@10; after `patience` evaluations without improvement training stops
 * and the best parameters are restored.
 *
 * Parameter slab layout (params, grads, Adam m and v alike):
 *   P [n_users, dim] | Q [n_items, dim] | B [n_items]
 */
#ifdef __AVX__
#include <immintrin.h>
#endif
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "baseline_params.h"
#include "bprmf_internal.h"
#include "genrec/gemm.h"
#include "genrec/model.h"
#include "genrec/rng.h"

/* Per-mini-batch OpenMP regions run only with at least this many floats of
 * work: below it the fork/join (and, on a busy machine, waiting for a
 * descheduled thread at the barrier) costs more than it saves. */
#define BPRMF_PAR_MIN (1 << 18)

typedef struct bprmf_model {
    /* hyperparameters */
    int dim, epochs, neg, batch, eval_every, patience;
    double lr, reg, init_std;
    /* trained state */
    int32_t n_users, n_items;
    float *params;        /* slab, layout above */
    float *P, *Q, *B;     /* views into params */
    uint8_t *has_train;   /* [n_users] 1 if the user has training interactions */
} bprmf_model;

/* ---- loss and gradient ----------------------------------------------------- */

static inline double softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }

/* One triple: writes o[0..3dim) = dL/d(pu, qi, qj) and returns x (the
 * score difference); *sq gets the squared norm for the L2 term. */
static float triple_grad(int dim, const float *restrict pu, const float *restrict qi,
                         const float *restrict qj, float bi, float bj, float reg,
                         float *restrict o, float *sq_out)
{
    float x = 0, sq = 0;
#pragma omp simd reduction(+ : x, sq)
    for (int d = 0; d < dim; d++) {
        x += pu[d] * (qi[d] - qj[d]);
        sq += pu[d] * pu[d] + qi[d] * qi[d] + qj[d] * qj[d];
    }
    x += bi - bj;
    *sq_out = sq + bi * bi + bj * bj;
    /* dL/dx of softplus(-x) = -sigmoid(-x) */
    float g = (float)(-1.0 / (1.0 + exp((double)x)));
#pragma omp simd
    for (int d = 0; d < dim; d++) {
        o[d] = g * (qi[d] - qj[d]) + reg * pu[d];
        o[dim + d] = g * pu[d] + reg * qi[d];
        o[2 * dim + d] = -g * pu[d] + reg * qj[d];
    }
    o[3 * dim] = g;
    return x;
}

/* dst[0..n) += s * src[0..n) */
static inline void axpy(int n, float s, const float *restrict src, float *restrict dst)
{
#pragma omp simd
    for (int d = 0; d < n; d++) dst[d] += s * src[d];
}

double bprmf_batch_loss_grad(int dim, const float *P, const float *Q, const float *B,
                             const int32_t *u, const int32_t *i, const int32_t *j, int64_t n,
                             float reg, float *gP, float *gQ, float *gB, float *buf)
{
    if (n <= 0) return 0.0;
    const int64_t stride = 3 * (int64_t)dim + 2;
#pragma omp parallel for schedule(static) num_threads(gr_threads_get()) if (n * dim >= BPRMF_PAR_MIN)
    for (int64_t t = 0; t < n; t++) {
        float *o = buf + t * stride;
        if (j[t] < 0) { o[3 * dim] = 0; o[3 * dim + 1] = 0; continue; }
        float sq;
        float x = triple_grad(dim, P + (int64_t)u[t] * dim, Q + (int64_t)i[t] * dim,
                              Q + (int64_t)j[t] * dim, B[i[t]], B[j[t]], reg, o, &sq);
        o[3 * dim + 1] = (float)(softplus(-(double)x) + 0.5 * reg * sq);
    }
    const float s = 1.0f / (float)n;
    double loss = 0;
    for (int64_t t = 0; t < n; t++) {
        const float *o = buf + t * stride;
        loss += o[3 * dim + 1];
        if (j[t] < 0) continue;
        axpy(dim, s, o, gP + (int64_t)u[t] * dim);
        axpy(dim, s, o + dim, gQ + (int64_t)i[t] * dim);
        axpy(dim, s, o + 2 * dim, gQ + (int64_t)j[t] * dim);
        float g = o[3 * dim];
        gB[i[t]] += s * (g + reg * B[i[t]]);
        gB[j[t]] += s * (-g + reg * B[j[t]]);
    }
    return loss / (double)n;
}

/* ---- negative sampling ---------------------------------------------------- */

/* The r-th unseen item is r + k with k the number of seen items below it =
 * the smallest k with seen[k] - k > r (seen[k] - k is non-decreasing). */
int32_t bprmf_sample_negative(gr_rng *rng, int32_t n_items, const int32_t *seen, int32_t ns)
{
    if (ns >= n_items) return -1;
    int32_t r = (int32_t)gr_rng_below(rng, (uint64_t)(n_items - ns));
    int32_t lo = 0, hi = ns; /* first k in [0, ns] with seen[k] - k > r */
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        if (seen[mid] - mid > r) hi = mid; else lo = mid + 1;
    }
    return r + lo;
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* ---- training ------------------------------------------------------------- */

typedef struct bprmf_train {
    int64_t n_par;
    float *grad, *m, *v, *best;
    int64_t *seen_off; int32_t *seen;      /* per-user sorted unique training items */
    int32_t *pos_u, *pos_i, *perm;          /* all training interactions, epoch order */
    int32_t *bu, *bi, *bj;                  /* the epoch's triples, in batch order */
    float *buf;                             /* per-triple gradients of one batch */
    uint8_t *tu, *ti; int32_t *rows;        /* touched rows of a batch */
} bprmf_train;

static void bprmf_train_free(bprmf_train *t)
{
    gr_free(t->grad); gr_free(t->m); gr_free(t->v); gr_free(t->best);
    gr_free(t->seen_off); gr_free(t->seen);
    gr_free(t->pos_u); gr_free(t->pos_i); gr_free(t->perm);
    gr_free(t->bu); gr_free(t->bi); gr_free(t->bj); gr_free(t->buf);
    gr_free(t->tu); gr_free(t->ti); gr_free(t->rows);
}

/* Adam on n contiguous parameters; zeroes their gradients. The AVX path does
 * the same operations 8 lanes at a time (sqrtf cannot vectorise while it may
 * set errno). */
static void adam_span(float *restrict w, float *restrict g, float *restrict m, float *restrict v,
                      int n, float lr, float c1, float c2)
{
    const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
    int d = 0;
#ifdef __AVX__
    const __m256 vb1 = _mm256_set1_ps(b1), vb2 = _mm256_set1_ps(b2), va1 = _mm256_set1_ps(1 - b1),
                 va2 = _mm256_set1_ps(1 - b2), vc1 = _mm256_set1_ps(c1), vc2 = _mm256_set1_ps(c2),
                 vlr = _mm256_set1_ps(lr), veps = _mm256_set1_ps(eps);
    for (; d + 8 <= n; d += 8) {
        __m256 gd = _mm256_loadu_ps(g + d);
        __m256 md = _mm256_add_ps(_mm256_mul_ps(vb1, _mm256_loadu_ps(m + d)), _mm256_mul_ps(va1, gd));
        __m256 vd = _mm256_add_ps(_mm256_mul_ps(vb2, _mm256_loadu_ps(v + d)),
                                  _mm256_mul_ps(_mm256_mul_ps(va2, gd), gd));
        __m256 den = _mm256_add_ps(_mm256_sqrt_ps(_mm256_mul_ps(vd, vc2)), veps);
        __m256 step = _mm256_div_ps(_mm256_mul_ps(vlr, _mm256_mul_ps(md, vc1)), den);
        _mm256_storeu_ps(m + d, md);
        _mm256_storeu_ps(v + d, vd);
        _mm256_storeu_ps(w + d, _mm256_sub_ps(_mm256_loadu_ps(w + d), step));
        _mm256_storeu_ps(g + d, _mm256_setzero_ps());
    }
#endif
    for (; d < n; d++) {
        float gd = g[d];
        m[d] = b1 * m[d] + (1 - b1) * gd;
        v[d] = b2 * v[d] + (1 - b2) * gd * gd;
        w[d] -= lr * (m[d] * c1) / (sqrtf(v[d] * c2) + eps);
        g[d] = 0;
    }
}

/* Lazy Adam on the rows touched by the last batch (user rows < n_users, item
 * rows = n_users + item: factors and bias); zeroes their gradients. */
static void bprmf_adam_rows(bprmf_model *bm, bprmf_train *t, int32_t n_rows, double lr, int64_t step)
{
    const int dim = bm->dim;
    const float c1 = (float)(1.0 / (1.0 - pow(0.9, (double)step)));
    const float c2 = (float)(1.0 / (1.0 - pow(0.999, (double)step)));
    const int64_t q_off = (int64_t)bm->n_users * dim, b_off = q_off + (int64_t)bm->n_items * dim;
    float *w = bm->params, *g = t->grad, *m = t->m, *v = t->v;
#pragma omp parallel for schedule(static) num_threads(gr_threads_get()) if ((int64_t)n_rows * dim >= BPRMF_PAR_MIN)
    for (int32_t r = 0; r < n_rows; r++) {
        int32_t row = t->rows[r];
        if (row < bm->n_users) {
            int64_t off = (int64_t)row * dim;
            adam_span(w + off, g + off, m + off, v + off, dim, (float)lr, c1, c2);
        } else {
            int64_t off = q_off + (int64_t)(row - bm->n_users) * dim, ob = b_off + (row - bm->n_users);
            adam_span(w + off, g + off, m + off, v + off, dim, (float)lr, c1, c2);
            adam_span(w + ob, g + ob, m + ob, v + ob, 1, (float)lr, c1, c2);
        }
    }
}

static int bprmf_alloc_train(bprmf_model *bm, const gr_split *s, bprmf_train *t)
{
    const int32_t nu = s->n_users, ni = s->n_items;
    const int64_t n_pos = s->train_off[nu], n_tri = n_pos * bm->neg + 1,
                  nb = (n_pos < bm->batch ? n_pos + 1 : bm->batch) * (int64_t)bm->neg;
    t->n_par = ((int64_t)nu + ni) * bm->dim + ni;
    t->grad = gr_calloc((size_t)t->n_par, sizeof(float));
    t->m = gr_calloc((size_t)t->n_par, sizeof(float));
    t->v = gr_calloc((size_t)t->n_par, sizeof(float));
    t->best = gr_alloc((size_t)t->n_par, sizeof(float));
    t->seen_off = gr_alloc((size_t)nu + 1, sizeof(int64_t));
    t->seen = gr_alloc((size_t)n_pos + 1, sizeof(int32_t));
    t->pos_u = gr_alloc((size_t)n_pos + 1, sizeof(int32_t));
    t->pos_i = gr_alloc((size_t)n_pos + 1, sizeof(int32_t));
    t->perm = gr_alloc((size_t)n_pos + 1, sizeof(int32_t));
    t->bu = gr_alloc((size_t)n_tri, sizeof(int32_t));
    t->bi = gr_alloc((size_t)n_tri, sizeof(int32_t));
    t->bj = gr_alloc((size_t)n_tri, sizeof(int32_t));
    t->buf = gr_alloc((size_t)nb * (size_t)(3 * bm->dim + 2), sizeof(float));
    t->tu = gr_calloc((size_t)nu + 1, sizeof(uint8_t));
    t->ti = gr_calloc((size_t)ni + 1, sizeof(uint8_t));
    t->rows = gr_alloc((size_t)nu + (size_t)ni + 1, sizeof(int32_t));
    if (!t->grad || !t->m || !t->v || !t->best || !t->seen_off || !t->seen || !t->pos_u ||
        !t->pos_i || !t->perm || !t->bu || !t->bi || !t->bj || !t->buf || !t->tu || !t->ti || !t->rows)
        return GR_ERR;
    int64_t ns = 0, np = 0;
    for (int32_t u = 0; u < nu; u++) {
        t->seen_off[u] = ns;
        int64_t a = s->train_off[u], b = s->train_off[u + 1];
        for (int64_t k = a; k < b; k++) {
            t->pos_u[np] = u;
            t->pos_i[np++] = s->train_item[k];
            t->seen[ns + (k - a)] = s->train_item[k];
        }
        qsort(t->seen + ns, (size_t)(b - a), sizeof(int32_t), cmp_i32);
        int64_t w = ns;
        for (int64_t k = ns; k < ns + (b - a); k++)
            if (k == ns || t->seen[k] != t->seen[w - 1]) t->seen[w++] = t->seen[k];
        ns = w;
        bm->has_train[u] = b > a;
    }
    t->seen_off[nu] = ns;
    for (int64_t k = 0; k < n_pos; k++) t->perm[k] = (int32_t)k;
    return GR_OK;
}

/* One epoch over all positives; returns the mean batch loss. */
static double bprmf_epoch(bprmf_model *bm, bprmf_train *t, int64_t n_pos, const gr_rng *erng,
                          int64_t *step)
{
    const int dim = bm->dim, neg = bm->neg;
    const int32_t nu = bm->n_users;
    float *gP = t->grad, *gQ = t->grad + (int64_t)nu * dim,
          *gB = t->grad + ((int64_t)nu + bm->n_items) * dim;
    gr_rng shuf = gr_rng_fork(erng, 0);
    gr_rng_shuffle_i32(&shuf, t->perm, n_pos);
    /* All triples of the epoch at once (one parallel region); triple k uses
     * its own RNG stream, so the draw does not depend on the thread count. */
    const int64_t n_tri = n_pos * neg;
#pragma omp parallel for schedule(static) num_threads(gr_threads_get()) if (n_tri > 16384)
    for (int64_t k = 0; k < n_tri; k++) {
        int32_t p = t->perm[k / neg], u = t->pos_u[p];
        gr_rng r = gr_rng_fork(erng, 1 + (uint64_t)k);
        t->bu[k] = u;
        t->bi[k] = t->pos_i[p];
        t->bj[k] = bprmf_sample_negative(&r, bm->n_items, t->seen + t->seen_off[u],
                                         (int32_t)(t->seen_off[u + 1] - t->seen_off[u]));
    }
    double loss_sum = 0;
    int64_t n_batches = 0;
    for (int64_t b0 = 0; b0 < n_pos; b0 += bm->batch) {
        int64_t np = n_pos - b0 < bm->batch ? n_pos - b0 : bm->batch, nt = np * neg;
        const int32_t *bu = t->bu + b0 * neg, *bi = t->bi + b0 * neg, *bj = t->bj + b0 * neg;
        loss_sum += bprmf_batch_loss_grad(dim, bm->P, bm->Q, bm->B, bu, bi, bj, nt, (float)bm->reg,
                                          gP, gQ, gB, t->buf);
        int32_t n_rows = 0;
        for (int64_t k = 0; k < nt; k++) {
            if (bj[k] < 0) continue;
            int32_t u = bu[k], i = bi[k], j = bj[k];
            if (!t->tu[u]) { t->tu[u] = 1; t->rows[n_rows++] = u; }
            if (!t->ti[i]) { t->ti[i] = 1; t->rows[n_rows++] = nu + i; }
            if (!t->ti[j]) { t->ti[j] = 1; t->rows[n_rows++] = nu + j; }
        }
        bprmf_adam_rows(bm, t, n_rows, bm->lr, ++*step);
        for (int32_t r = 0; r < n_rows; r++) {
            if (t->rows[r] < nu) t->tu[t->rows[r]] = 0;
            else t->ti[t->rows[r] - nu] = 0;
        }
        n_batches++;
    }
    return n_batches ? loss_sum / (double)n_batches : 0.0;
}

static int bprmf_fit(gr_model *m, const gr_split *s, gr_fit_ctx *ctx)
{
    bprmf_model *bm = m->impl;
    if (!s || s->n_users < 0 || s->n_items <= 0 || !s->train_off || (s->train_off[s->n_users] && !s->train_item))
        return gr_errorf("bprmf: fit: split has no users/items or no training data");
    const int32_t nu = s->n_users, ni = s->n_items;
    const int64_t n_pos = s->train_off[nu];
    if (n_pos >= INT32_MAX) return gr_errorf("bprmf: fit: %lld training interactions (max %d)",
                                            (long long)n_pos, INT32_MAX - 1);
    for (int64_t k = 0; k < n_pos; k++)
        if (s->train_item[k] < 0 || s->train_item[k] >= ni)
            return gr_errorf("bprmf: fit: training interaction %lld has item id %d outside [0, %d)",
                             (long long)k, (int)s->train_item[k], (int)ni);
    const int dim = bm->dim;
    int64_t n_par = ((int64_t)nu + ni) * dim + ni;
    gr_free(bm->params); gr_free(bm->has_train);
    bm->params = gr_alloc((size_t)n_par, sizeof(float));
    bm->has_train = gr_calloc((size_t)nu + 1, 1);
    bprmf_train t = {0};
    if (!bm->params || !bm->has_train || bprmf_alloc_train(bm, s, &t) != GR_OK) {
        bprmf_train_free(&t);
        gr_free(bm->params); gr_free(bm->has_train);
        bm->params = NULL; bm->has_train = NULL;
        return gr_error_prefix("bprmf: fit: ");
    }
    bm->n_users = nu; bm->n_items = ni; m->n_items = ni;
    bm->P = bm->params; bm->Q = bm->params + (int64_t)nu * dim; bm->B = bm->Q + (int64_t)ni * dim;

    gr_rng base;
    gr_rng_seed(&base, ctx ? ctx->seed : 0);
    gr_rng init = gr_rng_fork(&base, 0);
    for (int64_t k = 0; k < ((int64_t)nu + ni) * dim; k++)
        bm->params[k] = (float)(bm->init_std * gr_rng_normal(&init));
    memset(bm->B, 0, (size_t)ni * sizeof(float));

    int verbose = ctx && ctx->verbose;
    int can_validate = ctx && ctx->validate && n_pos > 0;
    double best = -1, t0 = gr_time_now();
    int bad = 0, best_epoch = 0, ep;
    int64_t step = 0;
    for (ep = 1; ep <= bm->epochs && n_pos > 0; ep++) {
        gr_rng erng = gr_rng_fork(&base, 1 + (uint64_t)ep);
        double loss = bprmf_epoch(bm, &t, n_pos, &erng, &step);
        if (!can_validate || (ep % bm->eval_every && ep != bm->epochs)) {
            if (verbose && !can_validate)
                gr_log(1, "bprmf: epoch %d loss %.5f (%.1fs)\n", ep, loss, gr_time_now() - t0);
            continue;
        }
        double nd = ctx->validate(ctx, m);
        if (nd < 0) {
            bprmf_train_free(&t);
            return gr_error_prefix("bprmf: fit: validation at epoch %d: ", ep);
        }
        if (verbose)
            gr_log(1, "bprmf: epoch %d loss %.5f valid ndcg@10 %.5f%s (%.1fs)\n", ep, loss, nd,
                   nd > best ? " *" : "", gr_time_now() - t0);
        if (nd > best) {
            best = nd; best_epoch = ep; bad = 0;
            memcpy(t.best, bm->params, (size_t)n_par * sizeof(float));
        } else if (++bad >= bm->patience) {
            break;
        }
    }
    if (best_epoch > 0) memcpy(bm->params, t.best, (size_t)n_par * sizeof(float));
    if (verbose && best_epoch > 0)
        gr_log(1, "bprmf: best epoch %d valid ndcg@10 %.5f (%.1fs)\n", best_epoch, best, gr_time_now() - t0);
    bprmf_train_free(&t);
    return GR_OK;
}

/* ---- scoring -------------------------------------------------------------- */

static int bprmf_score(gr_model *m, const gr_query *q, int n, float *scores)
{
    bprmf_model *bm = m->impl;
    if (!bm->params) return gr_errorf("bprmf: score called before fit");
    if (n <= 0) return GR_OK;
    const int dim = bm->dim;
    const int32_t ni = bm->n_items;
    float *U = gr_calloc((size_t)n * (size_t)dim, sizeof(float));
    if (!U) return gr_error_prefix("bprmf: score: ");
    for (int r = 0; r < n; r++) {
        int32_t u = q[r].user;
        if (u >= 0 && u < bm->n_users && bm->has_train[u])
            memcpy(U + (size_t)r * dim, bm->P + (int64_t)u * dim, (size_t)dim * sizeof(float));
    }
    /* scores (n, ni) = U Q^T + item biases, through the engine's GEMM */
    gr_gemm_bias(0, 1, n, ni, dim, U, dim, bm->Q, dim, bm->B, scores, ni);
    gr_free(U);
    return GR_OK;
}

static void bprmf_destroy(gr_model *m)
{
    bprmf_model *bm = m->impl;
    if (bm) { gr_free(bm->params); gr_free(bm->has_train); }
    gr_free(bm);
}

static const gr_model_ops bprmf_ops = {"bprmf", bprmf_fit, bprmf_score, bprmf_destroy};

/* Create an unfitted BPR-MF model. Keys (defaults): bprmf.dim (64),
 * bprmf.epochs (200, cap), bprmf.lr (Adam, 0.005), bprmf.reg (L2, 0.01),
 * bprmf.neg (negatives per positive, 1), bprmf.batch (positives per
 * mini-batch, 1024), bprmf.init (normal init std, 0.1), bprmf.eval_every
 * (epochs between validations, 2), bprmf.patience (validations without
 * improvement before stopping, 10). lr and reg were chosen on validation
 * NDCG@10 averaged over ml-100k, ml-latest-small, lastfm and
 * amazon-scientific (loo); the same values serve every dataset. The seed
 * comes from the fit context. Returns NULL + message on an unknown "bprmf.*"
 * key or a bad value; free with gr_model_free(). */
gr_model *gr_bprmf_create(const gr_params *p)
{
    static const char *const known[] = {"bprmf.dim", "bprmf.epochs", "bprmf.lr", "bprmf.reg",
                                        "bprmf.neg", "bprmf.batch", "bprmf.init",
                                        "bprmf.eval_every", "bprmf.patience", NULL};
    if (baseline_params_check(p, "bprmf.", known) != GR_OK) return NULL;
    int64_t dim, epochs, neg, batch, eval_every, patience;
    double lr, reg, init;
    if (gr_params_int(p, "bprmf.dim", 64, &dim) || gr_params_int(p, "bprmf.epochs", 200, &epochs) ||
        gr_params_int(p, "bprmf.neg", 1, &neg) || gr_params_int(p, "bprmf.batch", 1024, &batch) ||
        gr_params_int(p, "bprmf.eval_every", 2, &eval_every) ||
        gr_params_int(p, "bprmf.patience", 10, &patience) ||
        gr_params_float(p, "bprmf.lr", 0.005, &lr) || gr_params_float(p, "bprmf.reg", 0.01, &reg) ||
        gr_params_float(p, "bprmf.init", 0.1, &init))
        return NULL;
    const char *bad = NULL;
    if (dim < 1 || dim > 4096) bad = "bprmf.dim (must be in 1..4096)";
    else if (epochs < 0 || epochs > 1000000) bad = "bprmf.epochs (must be in 0..1000000)";
    else if (neg < 1 || neg > 1000) bad = "bprmf.neg (must be in 1..1000)";
    else if (batch < 1 || batch > 1000000) bad = "bprmf.batch (must be in 1..1000000)";
    else if (eval_every < 1) bad = "bprmf.eval_every (must be >= 1)";
    else if (patience < 1) bad = "bprmf.patience (must be >= 1)";
    else if (!(lr > 0)) bad = "bprmf.lr (must be > 0)";
    else if (!(reg >= 0)) bad = "bprmf.reg (must be >= 0)";
    else if (!(init >= 0)) bad = "bprmf.init (must be >= 0)";
    if (bad) { gr_errorf("parameter %s", bad); return NULL; }
    gr_model *m = gr_calloc(1, sizeof *m);
    bprmf_model *bm = gr_calloc(1, sizeof *bm);
    if (!m || !bm) { gr_free(m); gr_free(bm); return NULL; }
    bm->dim = (int)dim; bm->epochs = (int)epochs; bm->neg = (int)neg; bm->batch = (int)batch;
    bm->eval_every = (int)eval_every; bm->patience = (int)patience;
    bm->lr = lr; bm->reg = reg; bm->init_std = init;
    m->ops = &bprmf_ops;
    m->impl = bm;
    return m;
}
