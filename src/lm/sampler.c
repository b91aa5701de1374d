/* Token sampling (decode.h): greedy argmax, temperature, and top-p
 * (nucleus) sampling with the project's seeded rng, following llama2.c's
 * sampler, including its cutoff trick: a token with probability below
 * (1 - top_p) / (V - 1) is never needed to exceed the mass top_p (all such
 * tokens together hold at most 1 - top_p), so it is dropped before sorting. */
#include "genrec/decode.h"

#include <math.h>
#include <string.h>

int32_t gr_argmax(const float *x, int n)
{
    int32_t best = -1;
    for (int i = 0; i < n; i++)
        if (x[i] == x[i] && (best < 0 || x[i] > x[best])) best = i;
    return best < 0 ? 0 : best;
}

int gr_sampler_init(gr_sampler *s, int V, float temperature, float top_p, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    if (V < 1) return gr_errorf("sampler: vocabulary size %d must be >= 1", V);
    if (!(temperature >= 0.0f) || !isfinite(temperature))
        return gr_errorf("sampler: temperature %g must be a number >= 0", (double)temperature);
    if (!(top_p > 0.0f && top_p <= 1.0f))
        return gr_errorf("sampler: top_p %g must be in (0, 1]", (double)top_p);
    s->work = gr_alloc((size_t)V * 2, sizeof(float));
    s->iwork = gr_alloc((size_t)V * 2, sizeof(int32_t));
    if (!s->work || !s->iwork) {
        gr_sampler_free(s);
        return gr_error_prefix("sampler: ");
    }
    s->V = V;
    s->temperature = temperature;
    s->top_p = top_p;
    gr_rng_seed(&s->rng, seed);
    return GR_OK;
}

void gr_sampler_free(gr_sampler *s)
{
    if (!s) return;
    gr_free(s->work);
    gr_free(s->iwork);
    s->work = NULL;
    s->iwork = NULL;
}

/* prob[i] = softmax(logits / temperature)[i]. */
static void softmax_t(float *prob, const float *logits, int V, float temperature)
{
    float mx = logits[gr_argmax(logits, V)];
    double sum = 0.0;
    for (int i = 0; i < V; i++) {
        float e = expf((logits[i] - mx) / temperature);
        prob[i] = e;
        sum += e;
    }
    float inv = (float)(1.0 / sum);
    for (int i = 0; i < V; i++) prob[i] *= inv;
}

static int before(const float *p, int32_t a, int32_t b) { return p[a] > p[b] || (p[a] == p[b] && a < b); }

/* Merge sort of ids[0..n) by probability, descending, ties to the lower id
 * (deterministic and stable whatever the input order). */
static void sort_ids(int32_t *ids, int32_t *tmp, int n, const float *p)
{
    if (n <= 16) {
        for (int i = 1; i < n; i++) {
            int32_t v = ids[i];
            int j = i;
            while (j > 0 && before(p, v, ids[j - 1])) { ids[j] = ids[j - 1]; j--; }
            ids[j] = v;
        }
        return;
    }
    int h = n / 2;
    sort_ids(ids, tmp, h, p);
    sort_ids(ids + h, tmp, n - h, p);
    int i = 0, j = h, k = 0;
    while (i < h && j < n) tmp[k++] = before(p, ids[j], ids[i]) ? ids[j++] : ids[i++];
    while (i < h) tmp[k++] = ids[i++];
    while (j < n) tmp[k++] = ids[j++];
    memcpy(ids, tmp, sizeof(int32_t) * (size_t)n);
}

int gr_sampler_nucleus(gr_sampler *s, const float *logits, const int32_t **ids_out, const float **prob_out)
{
    const int V = s->V;
    float *p = s->work, *q = s->work + V;
    int32_t *ids = s->iwork, *tmp = s->iwork + V;
    softmax_t(p, logits, V, s->temperature > 0.0f ? s->temperature : 1.0f);
    int cut = s->top_p < 1.0f, n = 0;
    float cutoff = cut && V > 1 ? (1.0f - s->top_p) / (float)(V - 1) : 0.0f;
    for (int i = 0; i < V; i++)
        if (p[i] >= cutoff) ids[n++] = i;
    sort_ids(ids, tmp, n, p);
    int keep = n;
    if (cut) {
        double cum = 0.0;
        for (int i = 0; i < n; i++) {
            cum += p[ids[i]];
            if (cum > s->top_p) { keep = i + 1; break; }
        }
    }
    double mass = 0.0;
    for (int i = 0; i < keep; i++) mass += p[ids[i]];
    for (int i = 0; i < keep; i++) q[i] = (float)(p[ids[i]] / mass);
    *ids_out = ids;
    *prob_out = q;
    return keep;
}

int32_t gr_sampler_sample(gr_sampler *s, const float *logits)
{
    if (s->temperature == 0.0f) return gr_argmax(logits, s->V);
    float coin = gr_rng_float(&s->rng);
    const int V = s->V;
    if (s->top_p >= 1.0f) {
        /* multinomial over everything in id order, no sort needed */
        float *p = s->work;
        softmax_t(p, logits, V, s->temperature);
        float cdf = 0.0f;
        int32_t last = 0;
        for (int i = 0; i < V; i++) {
            if (p[i] > 0.0f) last = i;
            cdf += p[i];
            if (coin < cdf) return i;
        }
        return last; /* rounding left the cdf below coin */
    }
    const int32_t *ids;
    const float *prob;
    int n = gr_sampler_nucleus(s, logits, &ids, &prob);
    float cdf = 0.0f;
    for (int i = 0; i < n; i++) {
        cdf += prob[i];
        if (coin < cdf) return ids[i];
    }
    return ids[n - 1];
}
