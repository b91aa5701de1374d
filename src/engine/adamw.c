/* AdamW over a flat slab, step for step the arithmetic of
 * torch.optim.AdamW (single-tensor path):
 *   p *= 1 - lr * wd                       (only where decay_mask is 1)
 *   m = m + (1 - beta1) * (g - m)          (lerp)
 *   v = v * beta2 + (1 - beta2) * g * g    (addcmul)
 *   p += (-lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 * with the scalar factors formed in double and rounded to float, as torch
 * does with Python-float hyperparameters, and the same operation order.
 */
#include "genrec/transformer.h"
#include "genrec/ops.h"
#include "vmath.h"

#include <math.h>
#include <string.h>

int gr_adamw_init(gr_adamw *opt, int64_t n, float lr, float beta1, float beta2,
                  float eps, float weight_decay)
{
    memset(opt, 0, sizeof *opt);
    if (n < 0) return gr_errorf("adamw: n (%lld) must be >= 0", (long long)n);
    if (!(lr >= 0.0f)) return gr_errorf("adamw: field 'lr' (%g) must be >= 0", (double)lr);
    if (!(beta1 >= 0.0f && beta1 < 1.0f)) return gr_errorf("adamw: field 'beta1' (%g) must be in [0, 1)", (double)beta1);
    if (!(beta2 >= 0.0f && beta2 < 1.0f)) return gr_errorf("adamw: field 'beta2' (%g) must be in [0, 1)", (double)beta2);
    if (!(eps > 0.0f)) return gr_errorf("adamw: field 'eps' (%g) must be > 0", (double)eps);
    if (!(weight_decay >= 0.0f)) return gr_errorf("adamw: field 'weight_decay' (%g) must be >= 0", (double)weight_decay);
    opt->m = gr_calloc((size_t)(n > 0 ? n : 1), sizeof(float));
    opt->v = gr_calloc((size_t)(n > 0 ? n : 1), sizeof(float));
    if (!opt->m || !opt->v) {
        gr_adamw_free(opt);
        return gr_error_prefix("adamw moments for %lld parameters: ", (long long)n);
    }
    opt->n = n;
    opt->lr = lr;
    opt->beta1 = beta1;
    opt->beta2 = beta2;
    opt->eps = eps;
    opt->weight_decay = weight_decay;
    return GR_OK;
}

void gr_adamw_step(gr_adamw *opt, float *params, const float *grads, const uint8_t *decay_mask)
{
    opt->t++;
    const float lr = opt->lr, b1 = opt->beta1, b2 = opt->beta2, eps = opt->eps;
    const float decay = (float)(1.0 - (double)lr * opt->weight_decay);
    const float w1 = (float)(1.0 - (double)b1), w2 = (float)(1.0 - (double)b2);
    /* torch computes the corrections in Python floats (double) */
    double bc1 = 1.0 - pow((double)b1, (double)opt->t);
    double bc2 = 1.0 - pow((double)b2, (double)opt->t);
    const float step_size = (float)(lr / bc1);
    const float bc2_sqrt = (float)sqrt(bc2);
    float *m = opt->m, *v = opt->v;
    int64_t n = opt->n;
    int nt = gr_ops_threads((double)n * 8);
#pragma omp parallel for num_threads(nt) schedule(dynamic, GR_FLAT_CHUNK)
    for (int64_t i = 0; i < n; i++) {
        float g = grads[i], p = params[i];
        if (!decay_mask || decay_mask[i]) p *= decay;
        float mi = m[i] + w1 * (g - m[i]);
        float vi = v[i] * b2 + w2 * g * g;
        m[i] = mi;
        v[i] = vi;
        float denom = sqrtf(vi) / bc2_sqrt + eps;
        params[i] = p + (-step_size * mi) / denom;
    }
}

void gr_adamw_free(gr_adamw *opt)
{
    if (!opt) return;
    gr_free(opt->m);
    gr_free(opt->v);
    opt->m = opt->v = NULL;
    opt->n = 0;
}
