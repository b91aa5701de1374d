/* TF-IDF item vectors reduced by a randomized truncated SVD (LSA): the
 * content embeddings semantic IDs use when no language model exists (see
 * gr_semid_tfidf_embed in include/genrec/semid.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/strmap.h"
#include "genrec/gemm.h"
#include "genrec/rng.h"
#include "genrec/semid.h"
#include "rec/rec_internal.h"

/* Sparse n x V matrix in CSR (rows = items) and CSC form. */
typedef struct spmat {
    int64_t n, V;
    int64_t *row_off;  /* [n+1] */
    int32_t *col;      /* [nnz] */
    float *val;        /* [nnz] */
    int64_t *col_off;  /* [V+1] */
    int32_t *row;      /* [nnz] */
    float *cval;       /* [nnz] */
} spmat;

static void spmat_free(spmat *a)
{
    gr_free(a->row_off);
    gr_free(a->col);
    gr_free(a->val);
    gr_free(a->col_off);
    gr_free(a->row);
    gr_free(a->cval);
}

/* Fill a's CSC arrays (col_off, row, cval: allocated, col_off zeroed) from
 * its CSR arrays. GR_ERR on OOM. */
static int spmat_fill_csc(spmat *a)
{
    const int64_t n = a->n, V = a->V, nnz = a->row_off[n];
    for (int64_t k = 0; k < nnz; k++) a->col_off[a->col[k] + 1]++;
    for (int64_t w = 0; w < V; w++) a->col_off[w + 1] += a->col_off[w];
    int64_t *cur = gr_alloc((size_t)V + 1, sizeof *cur);
    if (!cur) return GR_ERR;
    memcpy(cur, a->col_off, (size_t)V * sizeof *cur);
    for (int64_t i = 0; i < n; i++)
        for (int64_t k = a->row_off[i]; k < a->row_off[i + 1]; k++) {
            int64_t p = cur[a->col[k]]++;
            a->row[p] = (int32_t)i;
            a->cval[p] = a->val[k];
        }
    gr_free(cur);
    return GR_OK;
}

static int is_word_byte(unsigned char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80; }

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return x < y ? -1 : x > y;
}

/* Build the TF-IDF matrix of it's texts (see semid.h for the weighting). */
static int tfidf_build(const gr_itemtext *it, spmat *a)
{
    memset(a, 0, sizeof *a);
    int64_t n = it->n, total = 0;
    for (int64_t i = 0; i < n; i++) total += (int64_t)strlen(it->text[i]) + 1;
    char *low = gr_alloc((size_t)total + 1, 1);
    int64_t *toff = gr_alloc((size_t)n + 1, sizeof *toff);
    gr_strmap map;
    gr_strmap_init(&map);
    gr_ivec df = {0}, last = {0}, words = {0}, col = {0}, keep = {0};
    gr_ivec tf = {0};
    int64_t *roff = gr_alloc((size_t)n + 1, sizeof *roff);
    int rc = GR_ERR;
    if (!low || !toff || !roff) goto done;
    toff[0] = 0;
    for (int64_t i = 0; i < n; i++) {
        const char *s = it->text[i];
        size_t len = strlen(s);
        for (size_t k = 0; k < len; k++) low[toff[i] + (int64_t)k] = (char)((s[k] >= 'A' && s[k] <= 'Z') ? s[k] + 32 : s[k]);
        low[toff[i] + (int64_t)len] = 0;
        toff[i + 1] = toff[i] + (int64_t)len + 1;
    }
    /* words per item, sorted, with counts */
    roff[0] = 0;
    for (int64_t i = 0; i < n; i++) {
        words.n = 0;
        const char *s = low + toff[i];
        size_t len = (size_t)(toff[i + 1] - toff[i] - 1);
        for (size_t k = 0; k < len;) {
            if (!is_word_byte((unsigned char)s[k])) {
                k++;
                continue;
            }
            size_t e = k;
            while (e < len && is_word_byte((unsigned char)s[e])) e++;
            if (e - k >= 2) {
                int32_t id = gr_strmap_put(&map, s + k, e - k, (int32_t)df.n);
                if (id == -2) goto done;
                if (id == (int32_t)df.n) {
                    int32_t zero = 0, minus = -1;
                    if (gr_ivec_add(&df, &zero, 1) || gr_ivec_add(&last, &minus, 1)) goto done;
                }
                if (gr_ivec_add(&words, &id, 1)) goto done;
            }
            k = e;
        }
        if (words.n) qsort(words.p, (size_t)words.n, sizeof *words.p, cmp_i32);
        for (int64_t k = 0; k < words.n;) {
            int64_t e = k;
            while (e < words.n && words.p[e] == words.p[k]) e++;
            int32_t w = words.p[k], c = (int32_t)(e - k);
            if (gr_ivec_add(&col, &w, 1) || gr_ivec_add(&tf, &c, 1)) goto done;
            if (last.p[w] != (int32_t)i) {
                last.p[w] = (int32_t)i;
                df.p[w]++;
            }
            k = e;
        }
        roff[i + 1] = col.n;
    }
    /* keep words that occur in >= 2 items */
    int32_t V = 0;
    for (int64_t w = 0; w < df.n; w++) {
        int32_t id = df.p[w] >= 2 ? V++ : -1;
        if (gr_ivec_add(&keep, &id, 1)) goto done;
    }
    if (V == 0) {
        gr_errorf("tfidf: no word occurs in two items: nothing to embed");
        goto done;
    }
    a->n = n;
    a->V = V;
    int64_t nnz = 0;
    for (int64_t k = 0; k < col.n; k++) nnz += keep.p[col.p[k]] >= 0;
    size_t nz1 = nnz > 0 ? (size_t)nnz : 1;
    a->row_off = gr_alloc((size_t)n + 1, sizeof *a->row_off);
    a->col = gr_alloc(nz1, sizeof *a->col);
    a->val = gr_alloc(nz1, sizeof *a->val);
    a->col_off = gr_calloc((size_t)V + 1, sizeof *a->col_off);
    a->row = gr_alloc(nz1, sizeof *a->row);
    a->cval = gr_alloc(nz1, sizeof *a->cval);
    if (!a->row_off || !a->col || !a->val || !a->col_off || !a->row || !a->cval) goto done;
    int64_t z = 0;
    a->row_off[0] = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t z0 = z;
        double norm = 0;
        for (int64_t k = roff[i]; k < roff[i + 1]; k++) {
            int32_t w = keep.p[col.p[k]];
            if (w < 0) continue;
            double idf = log((1.0 + (double)n) / (1.0 + df.p[col.p[k]])) + 1.0;
            double v = (1.0 + log((double)tf.p[k])) * idf;
            a->col[z] = w;
            a->val[z] = (float)v;
            norm += v * v;
            z++;
        }
        norm = sqrt(norm);
        for (int64_t k = z0; k < z && norm > 0; k++) a->val[k] = (float)(a->val[k] / norm);
        a->row_off[i + 1] = z;
    }
    if (spmat_fill_csc(a) != GR_OK) goto done;
    rc = GR_OK;
done:
    if (rc) spmat_free(a);
    gr_free(low);
    gr_free(toff);
    gr_free(roff);
    gr_strmap_free(&map);
    gr_free(df.p);
    gr_free(last.p);
    gr_free(words.p);
    gr_free(col.p);
    gr_free(tf.p);
    gr_free(keep.p);
    return rc;
}

/* Y (n x c) = A X, X (V x c). */
static void sp_mul(const spmat *a, const float *x, int32_t c, float *y)
{
#pragma omp parallel for schedule(static) num_threads(gr_threads_get())
    for (int64_t i = 0; i < a->n; i++) {
        float *yi = y + i * c;
        memset(yi, 0, (size_t)c * sizeof *yi);
        for (int64_t k = a->row_off[i]; k < a->row_off[i + 1]; k++) {
            const float *xr = x + (int64_t)a->col[k] * c;
            float v = a->val[k];
            for (int32_t j = 0; j < c; j++) yi[j] += v * xr[j];
        }
    }
}

/* Z (V x c) = A^T Y, Y (n x c). */
static void sp_mul_t(const spmat *a, const float *y, int32_t c, float *z)
{
#pragma omp parallel for schedule(static) num_threads(gr_threads_get())
    for (int64_t w = 0; w < a->V; w++) {
        float *zw = z + w * c;
        memset(zw, 0, (size_t)c * sizeof *zw);
        for (int64_t k = a->col_off[w]; k < a->col_off[w + 1]; k++) {
            const float *yr = y + (int64_t)a->row[k] * c;
            float v = a->cval[k];
            for (int32_t j = 0; j < c; j++) zw[j] += v * yr[j];
        }
    }
}

/* Cyclic Jacobi eigen-decomposition of the symmetric m x m matrix s
 * (destroyed): eigenvalues w[m], eigenvectors in the columns of v (m x m),
 * sorted by decreasing eigenvalue. */
static void jacobi_eig(double *s, int32_t m, double *w, double *v)
{
    for (int32_t i = 0; i < m; i++)
        for (int32_t j = 0; j < m; j++) v[i * m + j] = i == j;
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0, diag = 0;
        for (int32_t p = 0; p < m; p++) {
            diag += s[p * m + p] * s[p * m + p];
            for (int32_t q = p + 1; q < m; q++) off += s[p * m + q] * s[p * m + q];
        }
        if (off <= 1e-30 * (diag > 0 ? diag : 1)) break;
        for (int32_t p = 0; p < m; p++)
            for (int32_t q = p + 1; q < m; q++) {
                double apq = s[p * m + q];
                if (fabs(apq) < 1e-300) continue;
                double theta = (s[q * m + q] - s[p * m + p]) / (2 * apq);
                double t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1));
                double c = 1 / sqrt(t * t + 1), sn = t * c;
                for (int32_t k = 0; k < m; k++) {
                    double akp = s[k * m + p], akq = s[k * m + q];
                    s[k * m + p] = c * akp - sn * akq;
                    s[k * m + q] = sn * akp + c * akq;
                }
                for (int32_t k = 0; k < m; k++) {
                    double apk = s[p * m + k], aqk = s[q * m + k];
                    s[p * m + k] = c * apk - sn * aqk;
                    s[q * m + k] = sn * apk + c * aqk;
                }
                for (int32_t k = 0; k < m; k++) {
                    double vkp = v[k * m + p], vkq = v[k * m + q];
                    v[k * m + p] = c * vkp - sn * vkq;
                    v[k * m + q] = sn * vkp + c * vkq;
                }
            }
    }
    for (int32_t i = 0; i < m; i++) w[i] = s[i * m + i];
    /* selection sort by decreasing eigenvalue (m is small) */
    for (int32_t i = 0; i < m; i++) {
        int32_t b = i;
        for (int32_t j = i + 1; j < m; j++)
            if (w[j] > w[b]) b = j;
        if (b == i) continue;
        double t = w[i];
        w[i] = w[b];
        w[b] = t;
        for (int32_t k = 0; k < m; k++) {
            t = v[k * m + i];
            v[k * m + i] = v[k * m + b];
            v[k * m + b] = t;
        }
    }
}

/* Orthonormalise the columns of y (rows x *c) in place: G = Y^T Y = W L W^T,
 * Y <- Y W L^-1/2 over the eigenvalues above 1e-9 * max (fewer columns when
 * Y is rank deficient; *c is updated). Twice, for accuracy. */
static int orthonormalise(float *y, int64_t rows, int32_t *c, float *tmp)
{
    for (int pass = 0; pass < 2; pass++) {
        int32_t m = *c;
        float *g = gr_alloc((size_t)m * m, sizeof *g);
        double *gd = gr_alloc((size_t)m * m, sizeof *gd), *w = gr_alloc((size_t)m, sizeof *w);
        double *v = gr_alloc((size_t)m * m, sizeof *v);
        float *t = gr_alloc((size_t)m * m, sizeof *t);
        int rc = GR_ERR;
        if (!g || !gd || !w || !v || !t) goto out;
        gr_gemm(1, 0, m, m, (int)rows, 1.0f, y, m, y, m, 0.0f, g, m);
        for (int64_t k = 0; k < (int64_t)m * m; k++) gd[k] = g[k];
        jacobi_eig(gd, m, w, v);
        int32_t r = 0;
        while (r < m && w[r] > 1e-9 * (w[0] > 0 ? w[0] : 1)) r++;
        if (r == 0) {
            rc = gr_errorf("tfidf: the sketch has rank 0");
            goto out;
        }
        for (int32_t i = 0; i < m; i++)
            for (int32_t j = 0; j < r; j++) t[i * r + j] = (float)(v[i * m + j] / sqrt(w[j]));
        gr_gemm(0, 0, (int)rows, r, m, 1.0f, y, m, t, r, 0.0f, tmp, r);
        memcpy(y, tmp, (size_t)rows * (size_t)r * sizeof *y);
        *c = r;
        rc = GR_OK;
    out:
        gr_free(g);
        gr_free(gd);
        gr_free(w);
        gr_free(v);
        gr_free(t);
        if (rc) return rc;
    }
    return GR_OK;
}

/* Randomized truncated SVD of a (n x V): U S of the top min(dim, rank)
 * directions, rows L2-normalised (see gr_semid_tfidf_embed). Frees a.
 * NULL + error. */
static float *svd_embed(spmat *ap, int32_t dim, uint64_t seed, int32_t *out_dim)
{
    spmat a = *ap;
    int64_t n = a.n, V = a.V;
    int32_t k = dim;
    if (k > V) k = (int32_t)V;
    if (k > n) k = (int32_t)n;
    int32_t c = k + 10;
    if (c > V) c = (int32_t)V;
    if (c > n) c = (int32_t)n;
    int64_t big = n > V ? n : V;
    float *y = gr_alloc((size_t)n * (size_t)c, sizeof *y);
    float *z = gr_alloc((size_t)V * (size_t)c, sizeof *z);
    float *tmp = gr_alloc((size_t)big * (size_t)c, sizeof *tmp);
    float *out = NULL, *t = NULL;
    double *m = NULL, *w = NULL, *v = NULL;
    if (!y || !z || !tmp) goto done;
    gr_rng r;
    gr_rng_seed(&r, seed);
    for (int64_t i = 0; i < V * c; i++) z[i] = (float)gr_rng_normal(&r);
    sp_mul(&a, z, c, y);
    for (int q = 0; q < 4; q++) {
        if (orthonormalise(y, n, &c, tmp)) goto done;
        sp_mul_t(&a, y, c, z);
        if (orthonormalise(z, V, &c, tmp)) goto done;
        sp_mul(&a, z, c, y);
    }
    if (orthonormalise(y, n, &c, tmp)) goto done; /* Q: n x c, orthonormal columns */
    sp_mul_t(&a, y, c, z);                        /* Z = A^T Q, so Z^T Z = B B^T with B = Q^T A */
    float *g = tmp;
    gr_gemm(1, 0, c, c, (int)V, 1.0f, z, c, z, c, 0.0f, g, c);
    m = gr_alloc((size_t)c * c, sizeof *m);
    w = gr_alloc((size_t)c, sizeof *w);
    v = gr_alloc((size_t)c * c, sizeof *v);
    if (!m || !w || !v) goto done;
    for (int64_t i = 0; i < (int64_t)c * c; i++) m[i] = g[i];
    jacobi_eig(m, c, w, v);
    if (k > c) k = c;
    t = gr_alloc((size_t)c * (size_t)k, sizeof *t);
    out = gr_alloc((size_t)n * (size_t)k, sizeof *out);
    if (!t || !out) {
        gr_free(out);
        out = NULL;
        goto done;
    }
    for (int32_t i = 0; i < c; i++)
        for (int32_t j = 0; j < k; j++) t[i * k + j] = (float)(v[i * c + j] * sqrt(w[j] > 0 ? w[j] : 0));
    gr_gemm(0, 0, (int)n, k, c, 1.0f, y, c, t, k, 0.0f, out, k); /* U S = Q W S */
    for (int64_t i = 0; i < n; i++) {
        double s = 0;
        for (int32_t j = 0; j < k; j++) s += (double)out[i * k + j] * out[i * k + j];
        float inv = s > 1e-20 ? (float)(1.0 / sqrt(s)) : 0.0f;
        for (int32_t j = 0; j < k; j++) out[i * k + j] *= inv;
    }
    *out_dim = k;
done:
    spmat_free(&a);
    gr_free(y);
    gr_free(z);
    gr_free(tmp);
    gr_free(t);
    gr_free(m);
    gr_free(w);
    gr_free(v);
    return out;
}

float *gr_semid_tfidf_embed(const gr_itemtext *it, int32_t dim, uint64_t seed, int32_t *out_dim)
{
    if (!it || it->n < 1 || dim < 1) {
        gr_errorf("tfidf: need items and dim >= 1 (n %d, dim %d)", it ? (int)it->n : 0, (int)dim);
        return NULL;
    }
    spmat a;
    if (tfidf_build(it, &a)) return NULL;
    return svd_embed(&a, dim, seed, out_dim);
}

float *gr_semid_cf_embed(const int64_t *off, const int32_t *items, int32_t n_users, int32_t n_items, int32_t dim,
                         uint64_t seed, int32_t *out_dim)
{
    if (!off || n_users < 1 || n_items < 1 || dim < 1) {
        gr_errorf("cf embed: need users, items and dim >= 1 (users %d, items %d, dim %d)", (int)n_users,
                  (int)n_items, (int)dim);
        return NULL;
    }
    const int64_t nnz = off[n_users];
    spmat a;
    memset(&a, 0, sizeof a);
    a.n = n_items;
    a.V = n_users;
    a.row_off = gr_calloc((size_t)n_items + 1, sizeof *a.row_off);
    a.col = gr_alloc((size_t)nnz + 1, sizeof *a.col);
    a.val = gr_alloc((size_t)nnz + 1, sizeof *a.val);
    a.col_off = gr_calloc((size_t)n_users + 1, sizeof *a.col_off);
    a.row = gr_alloc((size_t)nnz + 1, sizeof *a.row);
    a.cval = gr_alloc((size_t)nnz + 1, sizeof *a.cval);
    int64_t *cur = gr_alloc((size_t)n_items + 1, sizeof *cur);
    if (!a.row_off || !a.col || !a.val || !a.col_off || !a.row || !a.cval || !cur) goto fail;
    for (int64_t k = 0; k < nnz; k++) {
        if (items[k] < 0 || items[k] >= n_items) {
            gr_errorf("cf embed: interaction %lld has item %d outside [0, %d)", (long long)k, items[k], n_items);
            goto fail;
        }
        a.row_off[items[k] + 1]++;
    }
    for (int32_t i = 0; i < n_items; i++) a.row_off[i + 1] += a.row_off[i];
    memcpy(cur, a.row_off, (size_t)n_items * sizeof *cur);
    for (int32_t u = 0; u < n_users; u++) {
        const int64_t d = off[u + 1] - off[u];
        for (int64_t k = off[u]; k < off[u + 1]; k++) {
            int64_t p = cur[items[k]]++;
            a.col[p] = u;
            a.val[p] = (float)(1.0 / sqrt((double)d)); /* heavy users count less */
        }
    }
    gr_free(cur);
    cur = NULL;
    if (spmat_fill_csc(&a) != GR_OK) goto fail;
    return svd_embed(&a, dim, seed, out_dim);
fail:
    gr_free(cur);
    spmat_free(&a);
    return NULL;
}
