/* k-means, RQ-KMeans semantic IDs and their tokens (see include/genrec/semid.h). */
#include "genrec/semid.h"

#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "genrec/gemm.h"

#define KM_BLOCK 512

gr_semid_opts gr_semid_opts_default(void)
{
    gr_semid_opts o = {0};
    o.n_levels = 3;
    o.K = 0;
    o.iters = 30;
    o.init_sample = 20000;
    o.seed = 42;
    return o;
}

int32_t gr_semid_default_k(int64_t n_items)
{
    double want = 4.0 * cbrt((double)(n_items > 0 ? n_items : 1));
    int32_t k = 2;
    while (k < 256 && (double)k < want) k *= 2;
    return k;
}

/* Assign every row of x to its nearest centroid; dist[i] = squared distance.
 * Returns the number of rows whose assignment changed. */
static int64_t km_assign(const float *x, const float *xx, int64_t n, int32_t dim, const float *c, int32_t K,
                         int32_t *assign, float *dist, float *scratch, int nt)
{
    float *cc = scratch; /* [K] then per-thread blocks of KM_BLOCK x K */
    for (int32_t k = 0; k < K; k++) {
        double s = 0;
        for (int32_t j = 0; j < dim; j++) s += (double)c[(int64_t)k * dim + j] * c[(int64_t)k * dim + j];
        cc[k] = (float)s;
    }
    int64_t nb = (n + KM_BLOCK - 1) / KM_BLOCK, changes = 0;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) reduction(+ : changes)
    for (int64_t b = 0; b < nb; b++) {
        float *S = scratch + K + (int64_t)omp_get_thread_num() * KM_BLOCK * K;
        int64_t r0 = b * KM_BLOCK, m = n - r0 < KM_BLOCK ? n - r0 : KM_BLOCK;
        gr_gemm_serial(0, 1, (int)m, K, dim, 1.0f, x + r0 * dim, dim, c, dim, 0.0f, S, K);
        for (int64_t r = 0; r < m; r++) {
            const float *s = S + r * K;
            int32_t best = 0;
            float bd = FLT_MAX;
            for (int32_t k = 0; k < K; k++) {
                float d = cc[k] - 2.0f * s[k];
                if (d < bd) {
                    bd = d;
                    best = k;
                }
            }
            float d = xx[r0 + r] + bd;
            dist[r0 + r] = d > 0 ? d : 0;
            if (assign[r0 + r] != best) changes++;
            assign[r0 + r] = best;
        }
    }
    return changes;
}

/* Squared distance between two rows. */
static double sqdist(const float *a, const float *b, int32_t dim)
{
    double s = 0;
    for (int32_t j = 0; j < dim; j++) {
        double t = (double)a[j] - b[j];
        s += t * t;
    }
    return s;
}

/* k-means++ seeding on the rows idx[0..m) of x. */
static void km_init(const float *x, int32_t dim, const int64_t *idx, int64_t m, int32_t K, gr_rng *rng, float *c,
                    double *d2)
{
    int64_t first = idx[gr_rng_below(rng, (uint64_t)m)];
    memcpy(c, x + first * dim, (size_t)dim * sizeof *c);
    for (int64_t i = 0; i < m; i++) d2[i] = sqdist(x + idx[i] * dim, c, dim);
    for (int32_t k = 1; k < K; k++) {
        double tot = 0;
        for (int64_t i = 0; i < m; i++) tot += d2[i];
        int64_t pick;
        if (tot <= 0) {
            pick = (int64_t)gr_rng_below(rng, (uint64_t)m);
        } else {
            double r = gr_rng_double(rng) * tot, acc = 0;
            pick = m - 1;
            for (int64_t i = 0; i < m; i++) {
                acc += d2[i];
                if (acc > r && d2[i] > 0) {
                    pick = i;
                    break;
                }
            }
        }
        float *ck = c + (int64_t)k * dim;
        memcpy(ck, x + idx[pick] * dim, (size_t)dim * sizeof *c);
        for (int64_t i = 0; i < m; i++) {
            double d = sqdist(x + idx[i] * dim, ck, dim);
            if (d < d2[i]) d2[i] = d;
        }
    }
}

int gr_kmeans(const float *x, int64_t n, int32_t dim, int32_t K, int32_t iters, int32_t init_sample,
              gr_rng *rng, float *centroids, int32_t *assign, double *distortion)
{
    if (!x || n < 1 || dim < 1 || K < 1 || !rng || !centroids || !assign)
        return gr_errorf("kmeans: bad arguments (n %lld, dim %d, K %d)", (long long)n, (int)dim, (int)K);
    int nt = gr_threads_get();
    int64_t m = init_sample > 0 && init_sample < n ? init_sample : n;
    int64_t *idx = gr_alloc((size_t)n, sizeof *idx);
    double *d2 = gr_alloc((size_t)n, sizeof *d2);
    float *xx = gr_alloc((size_t)n, sizeof *xx);
    float *dist = gr_alloc((size_t)n, sizeof *dist);
    float *scratch = gr_alloc((size_t)K + (size_t)nt * KM_BLOCK * (size_t)K, sizeof *scratch);
    double *sum = gr_alloc((size_t)K * (size_t)dim, sizeof *sum);
    int64_t *cnt = gr_alloc((size_t)K, sizeof *cnt);
    int rc = GR_ERR;
    if (!idx || !d2 || !xx || !dist || !scratch || !sum || !cnt) goto done;
    for (int64_t i = 0; i < n; i++) {
        idx[i] = i;
        double s = 0;
        for (int32_t j = 0; j < dim; j++) s += (double)x[i * dim + j] * x[i * dim + j];
        xx[i] = (float)s;
    }
    for (int64_t i = 0; i < m; i++) { /* partial Fisher-Yates: a uniform sample of m rows */
        int64_t j = i + (int64_t)gr_rng_below(rng, (uint64_t)(n - i));
        int64_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
    km_init(x, dim, idx, m, K, rng, centroids, d2);
    for (int64_t i = 0; i < n; i++) assign[i] = -1;
    for (int32_t it = 0; it < (iters > 0 ? iters : 0); it++) {
        int64_t changes = km_assign(x, xx, n, dim, centroids, K, assign, dist, scratch, nt);
        if (it > 0 && changes == 0) break;
        memset(sum, 0, (size_t)K * (size_t)dim * sizeof *sum);
        memset(cnt, 0, (size_t)K * sizeof *cnt);
        for (int64_t i = 0; i < n; i++) {
            double *s = sum + (int64_t)assign[i] * dim;
            for (int32_t j = 0; j < dim; j++) s[j] += x[i * dim + j];
            cnt[assign[i]]++;
        }
        for (int32_t k = 0; k < K; k++) {
            if (cnt[k] > 0) {
                for (int32_t j = 0; j < dim; j++) centroids[(int64_t)k * dim + j] = (float)(sum[(int64_t)k * dim + j] / (double)cnt[k]);
                continue;
            }
            /* empty cluster: move it onto the point farthest from its centroid */
            int64_t far = -1;
            float fd = 0;
            for (int64_t i = 0; i < n; i++)
                if (dist[i] > fd && cnt[assign[i]] > 1) {
                    fd = dist[i];
                    far = i;
                }
            if (far < 0) continue; /* every point sits on a centroid: fewer distinct points than K */
            memcpy(centroids + (int64_t)k * dim, x + far * dim, (size_t)dim * sizeof *centroids);
            cnt[assign[far]]--;
            cnt[k] = 1;
            dist[far] = 0;
            assign[far] = k;
        }
    }
    km_assign(x, xx, n, dim, centroids, K, assign, dist, scratch, nt);
    if (distortion) {
        double s = 0;
        for (int64_t i = 0; i < n; i++) s += dist[i];
        *distortion = s / (double)n;
    }
    rc = GR_OK;
done:
    gr_free(idx);
    gr_free(d2);
    gr_free(xx);
    gr_free(dist);
    gr_free(scratch);
    gr_free(sum);
    gr_free(cnt);
    return rc;
}

void gr_semid_free(gr_semid *s)
{
    if (!s) return;
    gr_free(s->codes);
    gr_free(s->codebooks);
    gr_free(s);
}

/* An item's L codes (zero padded) and id, for grouping by codes. */
typedef struct code_key {
    int32_t c[GR_SEMID_MAX_LEVELS];
    int32_t id;
} code_key;

static int cmp_codes(const void *pa, const void *pb)
{
    const code_key *x = pa, *y = pb;
    for (int32_t l = 0; l < GR_SEMID_MAX_LEVELS; l++)
        if (x->c[l] != y->c[l]) return x->c[l] < y->c[l] ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

gr_semid *gr_semid_build(const float *emb, int64_t n, int32_t dim, const gr_semid_opts *o)
{
    gr_semid_opts def = gr_semid_opts_default();
    if (!o) o = &def;
    if (!emb || n < 1 || n > INT32_MAX || dim < 1) {
        gr_errorf("semid: bad embeddings (n %lld, dim %d)", (long long)n, (int)dim);
        return NULL;
    }
    if (o->n_levels < 1 || o->n_levels > GR_SEMID_MAX_LEVELS) {
        gr_errorf("semid: n_levels %d not in [1, %d]", (int)o->n_levels, GR_SEMID_MAX_LEVELS);
        return NULL;
    }
    int32_t K = o->K ? o->K : gr_semid_default_k(n);
    if (K < 2 || K > 65536) {
        gr_errorf("semid: K %d not in [2, 65536]", (int)K);
        return NULL;
    }
    int32_t L = o->n_levels, stride = L + 1;
    gr_semid *s = gr_calloc(1, sizeof *s);
    float *res = gr_alloc((size_t)n * (size_t)dim, sizeof *res);
    int32_t *assign = gr_alloc((size_t)n, sizeof *assign);
    code_key *ord = gr_calloc((size_t)n, sizeof *ord);
    uint8_t *used = gr_alloc((size_t)K, 1);
    if (!s || !res || !assign || !ord || !used) goto fail;
    s->n_items = (int32_t)n;
    s->n_levels = L;
    s->K = K;
    s->dim = dim;
    s->codes = gr_alloc((size_t)n * (size_t)stride, sizeof *s->codes);
    s->codebooks = gr_alloc((size_t)L * (size_t)K * (size_t)dim, sizeof *s->codebooks);
    if (!s->codes || !s->codebooks) goto fail;
    memcpy(res, emb, (size_t)n * (size_t)dim * sizeof *res);
    double d0 = 0;
    for (int64_t i = 0; i < n * dim; i++) d0 += (double)res[i] * res[i];
    s->distortion0 = d0 / (double)n;
    gr_rng base;
    gr_rng_seed(&base, o->seed);
    int32_t Keff = (int64_t)K > n ? (int32_t)n : K; /* never more centroids than items */
    for (int32_t l = 0; l < L; l++) {
        gr_rng r = gr_rng_fork(&base, (uint64_t)l);
        float *cb = s->codebooks + (int64_t)l * K * dim;
        memset(cb, 0, (size_t)K * (size_t)dim * sizeof *cb);
        if (gr_kmeans(res, n, dim, Keff, o->iters, o->init_sample, &r, cb, assign, &s->distortion[l])) {
            gr_error_prefix("semid level %d: ", (int)l);
            goto fail;
        }
        memset(used, 0, (size_t)K);
        int32_t n_used = 0;
        for (int64_t i = 0; i < n; i++) {
            int32_t k = assign[i];
            s->codes[i * stride + l] = k;
            n_used += !used[k];
            used[k] = 1;
            const float *c = cb + (int64_t)k * dim;
            for (int32_t j = 0; j < dim; j++) res[i * dim + j] -= c[j];
        }
        s->usage[l] = (double)n_used / K;
    }
    /* collision codes: items sharing their L codes get 0, 1, 2, ... in id order */
    for (int64_t i = 0; i < n; i++) {
        ord[i].id = (int32_t)i;
        memcpy(ord[i].c, s->codes + i * stride, (size_t)L * sizeof *s->codes);
    }
    qsort(ord, (size_t)n, sizeof *ord, cmp_codes);
    int64_t in_collision = 0, start = 0;
    s->max_group = 0;
    s->n_ids = 0;
    for (int64_t k = 0; k <= n; k++) {
        if (k < n && k > start && !memcmp(ord[k].c, ord[start].c, sizeof ord[k].c))
            continue;
        if (k > start) {
            int64_t g = k - start;
            for (int64_t j = start; j < k; j++) s->codes[(int64_t)ord[j].id * stride + L] = (int32_t)(j - start);
            if (g > 1) in_collision += g;
            if (g > s->max_group) s->max_group = (int32_t)g;
            s->n_ids++;
        }
        start = k;
    }
    s->n_dup_codes = s->max_group;
    s->collision_rate = (double)in_collision / (double)n;
    gr_free(res);
    gr_free(assign);
    gr_free(ord);
    gr_free(used);
    return s;
fail:
    gr_semid_free(s);
    gr_free(res);
    gr_free(assign);
    gr_free(ord);
    gr_free(used);
    return NULL;
}

int gr_semid_render(const gr_semid *s, int32_t item, char *buf, size_t cap)
{
    if (!s || item < 0 || item >= s->n_items) {
        gr_errorf("semid: item id %d out of range [0, %d)", (int)item, s ? (int)s->n_items : 0);
        return -1;
    }
    size_t len = 0;
    const int32_t *c = s->codes + (int64_t)item * (s->n_levels + 1);
    if (cap) buf[0] = 0;
    for (int32_t l = 0; l <= s->n_levels; l++) {
        int w = snprintf(buf + len, cap > len ? cap - len : 0, "<%c_%d>", 'a' + l, (int)c[l]);
        if (w < 0 || len + (size_t)w >= cap) {
            gr_errorf("semid: buffer of %zu bytes too small for item %d's ID", cap, (int)item);
            return -1;
        }
        len += (size_t)w;
    }
    return (int)len;
}

gr_itemtext *gr_semid_itemtext(const gr_semid *s)
{
    char **strs = gr_calloc((size_t)s->n_items + 1, sizeof *strs);
    if (!strs) return NULL;
    gr_itemtext *t = NULL;
    char buf[16 * (GR_SEMID_MAX_LEVELS + 1)];
    int32_t i;
    for (i = 0; i < s->n_items; i++) {
        if (gr_semid_render(s, i, buf, sizeof buf) < 0 || !(strs[i] = gr_strdup(buf))) break;
    }
    if (i == s->n_items) t = gr_itemtext_from_strings(strs, s->n_items);
    for (int32_t k = 0; k < s->n_items; k++) gr_free(strs[k]);
    gr_free(strs);
    return t;
}

int32_t gr_semid_n_tokens(const gr_semid *s) { return s->n_levels * s->K + s->n_dup_codes; }

void gr_semid_tokens_free(char **tokens, int32_t n)
{
    if (!tokens) return;
    for (int32_t i = 0; i < n; i++) gr_free(tokens[i]);
    gr_free(tokens);
}

char **gr_semid_tokens(const gr_semid *s, int32_t *n)
{
    int32_t total = gr_semid_n_tokens(s);
    char **t = gr_calloc((size_t)total + 1, sizeof *t);
    if (!t) return NULL;
    char buf[32];
    for (int32_t j = 0; j < total; j++) {
        int32_t l = j < s->n_levels * s->K ? j / s->K : s->n_levels;
        int32_t code = j < s->n_levels * s->K ? j % s->K : j - s->n_levels * s->K;
        snprintf(buf, sizeof buf, "<%c_%d>", 'a' + l, (int)code);
        if (!(t[j] = gr_strdup(buf))) {
            gr_semid_tokens_free(t, total);
            return NULL;
        }
    }
    *n = total;
    return t;
}

int gr_semid_item_tokens(const gr_semid *s, int32_t item, int32_t base, int32_t *out)
{
    if (!s || item < 0 || item >= s->n_items) {
        gr_errorf("semid: item id %d out of range [0, %d)", (int)item, s ? (int)s->n_items : 0);
        return -1;
    }
    const int32_t *c = s->codes + (int64_t)item * (s->n_levels + 1);
    for (int32_t l = 0; l < s->n_levels; l++) out[l] = base + l * s->K + c[l];
    out[s->n_levels] = base + s->n_levels * s->K + c[s->n_levels];
    return s->n_levels + 1;
}

void gr_semid_print_report(const gr_semid *s, FILE *f)
{
    fprintf(f, "semantic IDs: %d items, %d levels x K=%d (+%d collision codes), dim %d\n", (int)s->n_items,
            (int)s->n_levels, (int)s->K, (int)s->n_dup_codes, (int)s->dim);
    fprintf(f, "  mean squared norm before level 1: %.4f\n", s->distortion0);
    for (int32_t l = 0; l < s->n_levels; l++)
        fprintf(f, "  level %c: codebook usage %.1f%% (%d of %d codes), residual %.4f\n", 'a' + l,
                100.0 * s->usage[l], (int)lround(s->usage[l] * s->K), (int)s->K, s->distortion[l]);
    fprintf(f, "  distinct %d-code IDs: %lld; collision rate %.2f%% of items; largest collision group %d\n",
            (int)s->n_levels, (long long)s->n_ids, 100.0 * s->collision_rate, (int)s->max_group);
}
