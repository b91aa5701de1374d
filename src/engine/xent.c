/* Fused classifier + softmax cross-entropy (full and sampled), computed in
 * row chunks so the (N, V) logits matrix is never materialised. See
 * include/genrec/xent.h for the contract. */
#include "genrec/xent.h"
#include "genrec/gemm.h"

#include <math.h>
#include <omp.h>
#include <string.h>
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define XENT_AVX2 1
#endif

/* ---- vectorised exp --------------------------------------------------------
 * Cephes-style: exp(x) = 2^n * p(r), n = round(x log2 e), r = x - n ln 2
 * (ln 2 split in two parts), p a degree-7 polynomial. */

#define EXP_HI 88.3762626647949f
#define EXP_LO (-88.3762626647949f)
#define LOG2EF 1.44269504088896341f
#define EXP_C1 0.693359375f
#define EXP_C2 (-2.12194440e-4f)
#define EXP_P0 1.9875691500E-4f
#define EXP_P1 1.3981999507E-3f
#define EXP_P2 8.3334519073E-3f
#define EXP_P3 4.1665795894E-2f
#define EXP_P4 1.6666665459E-1f
#define EXP_P5 5.0000001201E-1f

static inline float exp_scalar(float x)
{
    if (x > EXP_HI) x = EXP_HI;
    if (x < EXP_LO) x = EXP_LO;
    float fx = floorf(x * LOG2EF + 0.5f);
    x = x - fx * EXP_C1 - fx * EXP_C2;
    float z = x * x;
    float y = EXP_P0;
    y = y * x + EXP_P1;
    y = y * x + EXP_P2;
    y = y * x + EXP_P3;
    y = y * x + EXP_P4;
    y = y * x + EXP_P5;
    y = y * z + x + 1.0f;
    int32_t e = ((int32_t)fx + 127) << 23;
    float p2;
    memcpy(&p2, &e, sizeof p2);
    return y * p2;
}

#ifdef XENT_AVX2
static inline __m256 exp_avx2(__m256 x)
{
    x = _mm256_min_ps(x, _mm256_set1_ps(EXP_HI));
    x = _mm256_max_ps(x, _mm256_set1_ps(EXP_LO));
    __m256 fx = _mm256_fmadd_ps(x, _mm256_set1_ps(LOG2EF), _mm256_set1_ps(0.5f));
    fx = _mm256_floor_ps(fx);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(EXP_C1), x);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(EXP_C2), x);
    __m256 z = _mm256_mul_ps(x, x);
    __m256 y = _mm256_set1_ps(EXP_P0);
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(EXP_P1));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(EXP_P2));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(EXP_P3));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(EXP_P4));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(EXP_P5));
    y = _mm256_fmadd_ps(y, z, _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_cvttps_epi32(fx);
    e = _mm256_slli_epi32(_mm256_add_epi32(e, _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}
#endif

void gr_vexpf(float *x, int64_t n)
{
    int64_t i = 0;
#ifdef XENT_AVX2
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, exp_avx2(_mm256_loadu_ps(x + i)));
#endif
    for (; i < n; i++) x[i] = exp_scalar(x[i]);
}

/* x[i] = exp(x[i] - m); returns the sum of the results. */
static float exp_shift_sum(float *x, int n, float m)
{
    int i = 0;
    float s = 0.0f;
#ifdef XENT_AVX2
    __m256 vm = _mm256_set1_ps(m), acc = _mm256_setzero_ps();
    for (; i + 8 <= n; i += 8) {
        __m256 e = exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        _mm256_storeu_ps(x + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, acc);
    s = ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]));
#endif
    for (; i < n; i++) { x[i] = exp_scalar(x[i] - m); s += x[i]; }
    return s;
}

static float row_max(const float *x, int n)
{
    int i = 0;
    float m = -INFINITY;
#ifdef XENT_AVX2
    __m256 a = _mm256_set1_ps(-INFINITY), b = a;
    for (; i + 16 <= n; i += 16) {
        a = _mm256_max_ps(a, _mm256_loadu_ps(x + i));
        b = _mm256_max_ps(b, _mm256_loadu_ps(x + i + 8));
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, _mm256_max_ps(a, b));
    for (int k = 0; k < 8; k++) m = lanes[k] > m ? lanes[k] : m;
#endif
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

static void row_scale(float *x, int n, float a)
{
#pragma omp simd
    for (int i = 0; i < n; i++) x[i] *= a;
}

/* ---- scratch ---------------------------------------------------------------- */

void gr_xent_ws_free(gr_xent_ws *ws)
{
    if (!ws) return;
    gr_free(ws->buf);
    gr_free(ws->idx);
    gr_free(ws->dbuf);
    int chunk = ws->chunk, shared = ws->shared;
    memset(ws, 0, sizeof *ws);
    ws->chunk = chunk; /* the caller's settings survive */
    ws->shared = shared;
}

static int ws_reserve(gr_xent_ws *ws, int64_t nf, int64_t ni, int64_t nd)
{
    if (nf > ws->cap) {
        gr_free(ws->buf);
        ws->buf = gr_alloc((size_t)nf, sizeof(float));
        ws->cap = ws->buf ? nf : 0;
        if (!ws->buf) return gr_error_prefix("xent scratch: ");
    }
    if (ni > ws->icap) {
        gr_free(ws->idx);
        ws->idx = gr_alloc((size_t)ni, sizeof(int32_t));
        ws->icap = ws->idx ? ni : 0;
        if (!ws->idx) return gr_error_prefix("xent scratch: ");
    }
    if (nd > ws->dcap) {
        gr_free(ws->dbuf);
        ws->dbuf = gr_alloc((size_t)nd, sizeof(double));
        ws->dcap = ws->dbuf ? nd : 0;
        if (!ws->dbuf) return gr_error_prefix("xent scratch: ");
    }
    return GR_OK;
}

static int check_args(const char *fn, const int32_t *target, int N, int V, int C, int64_t *n_valid)
{
    if (N < 0 || V <= 0 || C <= 0)
        return gr_errorf("%s: bad sizes N=%d V=%d C=%d", fn, N, V, C);
    int64_t nv = 0;
    for (int i = 0; i < N; i++) {
        if (target[i] >= V)
            return gr_errorf("%s: target[%d] = %d is out of range [0, %d)", fn, i, (int)target[i], V);
        if (target[i] >= 0) nv++;
    }
    *n_valid = nv;
    return GR_OK;
}

/* Collect up to `chunk` non-ignored rows starting at *r; returns the count. */
static int next_rows(const int32_t *target, int N, int *r, int chunk, int32_t *rows)
{
    int n = 0;
    while (*r < N && n < chunk) {
        if (target[*r] >= 0) rows[n++] = *r;
        (*r)++;
    }
    return n;
}

static int auto_chunk(int V)
{
    int64_t c = ((int64_t)1 << 21) / V; /* about 8 MB of logits per thread (measured best for V ~ 10k) */
    if (c < 32) c = 32;
    if (c > 512) c = 512;
    return (int)c;
}

/* GEMM used here: OpenBLAS, one BLAS thread per caller thread (the library's
 * thread policy, see gemm.h); measured faster than the AVX2 kernel on these
 * skinny shapes (one dimension = C). nt = 1 inside the per-thread loop. */
static void xgemm(int nt, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *Cm, int ldc)
{
    gr_gemm_ex(GR_GEMM_BLAS, nt, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, Cm, ldc);
}

/* Shared state of one gr_xent_full call. */
typedef struct full_job {
    const float *h, *W, *bias;
    const int32_t *target, *rows;  /* rows: the non-ignored row ids, in order */
    int64_t n_valid;
    int V, C, chunk, backward;
    float scale;
    float *dh;
    double *row_loss;              /* [n_valid] */
} full_job;

/* Process rows[lo, lo+n) with scratch L (n, V), hc/dhc (n, C); accumulate
 * dlogitsᵀ·h into accT (C, V) (beta = 0 on first use) and column sums of
 * dlogits into accb (V) if non-NULL. nt threads for the GEMMs/softmax. */
static void full_chunk(const full_job *J, int64_t lo, int n, float *L, float *hc, float *dhc,
                       float *accT, int first, float *accb, int nt)
{
    const int V = J->V, C = J->C;
    const int32_t *rows = J->rows + lo;
    const int contiguous = rows[n - 1] - rows[0] == n - 1;
    const float *hx = J->h + (int64_t)rows[0] * C;
    if (!contiguous) {
        for (int i = 0; i < n; i++) memcpy(hc + (int64_t)i * C, J->h + (int64_t)rows[i] * C, sizeof(float) * C);
        hx = hc;
    }
    xgemm(nt, 0, 1, n, V, C, 1.0f, hx, C, J->W, C, 0.0f, L, V);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int i = 0; i < n; i++) {
        float *l = L + (int64_t)i * V;
        const int t = J->target[rows[i]];
        if (J->bias) {
            const float *b = J->bias;
#pragma omp simd
            for (int v = 0; v < V; v++) l[v] += b[v];
        }
        const float lt = l[t];
        const float m = row_max(l, V);
        const float s = exp_shift_sum(l, V, m);
        J->row_loss[lo + i] = log((double)s) + (double)m - (double)lt;
        if (J->backward) {
            row_scale(l, V, J->scale / s);
            l[t] -= J->scale;
        }
    }
    if (!J->backward) return;
    if (accb) {
        if (first) memset(accb, 0, sizeof(float) * V);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
        for (int v = 0; v < V; v++) {
            float acc = 0.0f;
            for (int i = 0; i < n; i++) acc += L[(int64_t)i * V + v];
            accb[v] += acc;
        }
    }
    if (J->dh) {
        if (contiguous) {
            xgemm(nt, 0, 0, n, C, V, 1.0f, L, V, J->W, C, 1.0f, J->dh + (int64_t)rows[0] * C, C);
        } else {
            xgemm(nt, 0, 0, n, C, V, 1.0f, L, V, J->W, C, 0.0f, dhc, C);
            for (int i = 0; i < n; i++) {
                float *d = J->dh + (int64_t)rows[i] * C;
                const float *x = dhc + (int64_t)i * C;
                for (int c = 0; c < C; c++) d[c] += x[c];
            }
        }
    }
    if (accT) /* (C, V) += hᵀ·dlogits: a GEMM with contiguous operands */
        xgemm(nt, 1, 0, C, V, n, 1.0f, hx, C, L, V, first ? 0.0f : 1.0f, accT, V);
}

/* ---- full softmax --------------------------------------------------------------- */

/* Total size of the per-thread dW copies beyond which they are not used. */
#define XENT_PRIVATE_MAX ((int64_t)64 << 20) /* floats = 256 MB */

int gr_xent_full(gr_xent_ws *ws, const float *h, const float *W, const float *bias,
                 const int32_t *target, int N, int V, int C,
                 float *loss_out, float *dh, float *dW, float *dbias)
{
    int64_t n_valid;
    if (loss_out) *loss_out = 0.0f;
    if (check_args("gr_xent_full", target, N, V, C, &n_valid)) return GR_ERR;
    if (n_valid == 0) return GR_OK;
    if (!bias) dbias = NULL;
    full_job J = {h, W, bias, target, NULL, n_valid, V, C, 0, dh || dW || dbias,
                  (float)(1.0 / (double)n_valid), dh, NULL};
    const int chunk = ws->chunk > 0 ? ws->chunk : auto_chunk(V);
    J.chunk = chunk;
    const int64_t n_chunks = (n_valid + chunk - 1) / chunk;
    int nt = gr_threads_get();
    if (nt > n_chunks) nt = (int)n_chunks;
    const int64_t accw = dW ? (int64_t)C * V : 0, accbw = dbias ? V : 0;
    /* parallel over chunks (one private dW copy per thread) when it fits,
     * else chunks in turn with threaded GEMMs */
    const int private = nt > 1 && !ws->shared && nt * (accw + accbw) <= XENT_PRIVATE_MAX;
    const int ncopy = private ? nt : 1;
    const int64_t per = (int64_t)chunk * V + 2 * (int64_t)chunk * C;
    if (ws_reserve(ws, per * ncopy + (accw + accbw) * ncopy, N, n_valid)) return GR_ERR;
    int32_t *rows = ws->idx;
    for (int i = 0, r = 0; r < N;) i += next_rows(target, N, &r, N, rows + i);
    J.rows = rows;
    J.row_loss = ws->dbuf;
    float *acc = ws->buf + per * ncopy;

    if (private) {
#pragma omp parallel num_threads(nt)
        {
            const int t = omp_get_thread_num();
            float *L = ws->buf + per * t, *hc = L + (int64_t)chunk * V, *dhc = hc + (int64_t)chunk * C;
            float *accT = dW ? acc + (accw + accbw) * t : NULL;
            float *accb = dbias ? acc + (accw + accbw) * t + accw : NULL;
            int first = 1;
            for (int64_t k = t; k < n_chunks; k += nt) {
                const int64_t lo = k * chunk;
                const int n = (int)(n_valid - lo < chunk ? n_valid - lo : chunk);
                full_chunk(&J, lo, n, L, hc, dhc, accT, first, accb, 1);
                first = 0;
            }
        }
    } else {
        float *L = ws->buf, *hc = L + (int64_t)chunk * V, *dhc = hc + (int64_t)chunk * C;
        for (int64_t k = 0; k < n_chunks; k++) {
            const int64_t lo = k * chunk;
            const int n = (int)(n_valid - lo < chunk ? n_valid - lo : chunk);
            full_chunk(&J, lo, n, L, hc, dhc, dW ? acc : NULL, k == 0, dbias ? acc + accw : NULL, nt);
        }
    }
    if (J.backward) { /* dW (V, C) += Σ_t accT_tᵀ, dbias += Σ_t accb_t, fixed order */
        const int nth = gr_threads_get();
        const int64_t stride = accw + accbw;
        if (dW) {
#pragma omp parallel for num_threads(nth) schedule(static)
            for (int v = 0; v < V; v++)
                for (int c = 0; c < C; c++) {
                    float s = 0.0f;
                    for (int t = 0; t < ncopy; t++) s += acc[stride * t + (int64_t)c * V + v];
                    dW[(int64_t)v * C + c] += s;
                }
        }
        if (dbias)
            for (int v = 0; v < V; v++) {
                float s = 0.0f;
                for (int t = 0; t < ncopy; t++) s += acc[stride * t + accw + v];
                dbias[v] += s;
            }
    }
    double loss_sum = 0.0;
    for (int64_t i = 0; i < n_valid; i++) loss_sum += J.row_loss[i];
    if (loss_out) *loss_out = (float)(loss_sum / (double)n_valid);
    return GR_OK;
}

int gr_xent_forward_backward(const float *h, const float *W, const float *bias,
                             const int32_t *target, int N, int V, int C,
                             float *loss_out, float *dh, float *dW, float *dbias)
{
    gr_xent_ws ws = {0};
    int rc = gr_xent_full(&ws, h, W, bias, target, N, V, C, loss_out, dh, dW, dbias);
    gr_xent_ws_free(&ws);
    return rc;
}

/* ---- sampled softmax -------------------------------------------------------------- */

/* u = x / max(|x|, eps); returns the divisor. */
static float normalize_into(float *u, const float *x, int C)
{
    double s = 0.0;
    for (int c = 0; c < C; c++) s += (double)x[c] * x[c];
    float r = (float)sqrt(s);
    if (r < 1e-6f) r = 1e-6f;
    float inv = 1.0f / r;
    for (int c = 0; c < C; c++) u[c] = x[c] * inv;
    return r;
}

/* Backward of u = x / max(|x|, eps): dx += (du - u (u·du)) / r (the
 * projection term vanishes when the eps clamp is active). */
static void normalize_backward(float *dx, const float *du, const float *u, float r, int C)
{
    float proj = 0.0f;
    if (r > 1e-6f)
        for (int c = 0; c < C; c++) proj += u[c] * du[c];
    float inv = 1.0f / r;
    for (int c = 0; c < C; c++) dx[c] += (du[c] - u[c] * proj) * inv;
}

static float dotf(const float *a, const float *b, int C)
{
    float s = 0.0f;
    for (int c = 0; c < C; c++) s += a[c] * b[c];
    return s;
}

int gr_xent_sampled(gr_xent_ws *ws, const gr_xent_sampled_opts *o, gr_rng *rng,
                    const float *h, const float *W, const float *bias,
                    const int32_t *target, int N, int V, int C,
                    float *loss_out, float *dh, float *dW, float *dbias)
{
    int64_t n_valid;
    if (loss_out) *loss_out = 0.0f;
    if (!o || o->n_neg < 1) return gr_errorf("gr_xent_sampled: n_neg must be >= 1");
    if (check_args("gr_xent_sampled", target, N, V, C, &n_valid)) return GR_ERR;
    if (n_valid == 0) return GR_OK;
    if (!bias) dbias = NULL;
    const int K = o->n_neg, cosine = o->cosine != 0;
    const float inv_tau = o->temperature > 0 ? 1.0f / o->temperature : 1.0f;
    const int backward = dh || dW || dbias;
    const int chunk = ws->chunk > 0 ? ws->chunk : 256;
    const int64_t K1 = (int64_t)K + 1;
    /* layout: S (chunk, K+1) scores, U (chunk, C) rows (normalised if cosine),
     * P (chunk, C) positive class rows, WN (K, C) negatives, DU (chunk, C),
     * DP (chunk, C), DWN (K, C), hn / pn norms (chunk each), wnn (K) */
    const int64_t need = chunk * K1 + 4 * (int64_t)chunk * C + 2 * (int64_t)K * C + 2 * chunk + K;
    if (ws_reserve(ws, need, chunk + K, chunk)) return GR_ERR;
    float *S = ws->buf, *U = S + chunk * K1, *P = U + (int64_t)chunk * C, *WN = P + (int64_t)chunk * C;
    float *DU = WN + (int64_t)K * C, *DP = DU + (int64_t)chunk * C, *DWN = DP + (int64_t)chunk * C;
    float *hn = DWN + (int64_t)K * C, *pn = hn + chunk, *wnn = pn + chunk;
    int32_t *rows = ws->idx, *neg = ws->idx + chunk;
    double *row_loss = ws->dbuf;
    const float scale = (float)(1.0 / (double)n_valid);
    double loss_sum = 0.0;

    for (int r = 0; r < N;) {
        int n = next_rows(target, N, &r, chunk, rows);
        if (n == 0) break;
        for (int k = 0; k < K; k++) {
            neg[k] = (int32_t)gr_rng_below(rng, (uint64_t)V);
            const float *w = W + (int64_t)neg[k] * C;
            if (cosine) wnn[k] = normalize_into(WN + (int64_t)k * C, w, C);
            else memcpy(WN + (int64_t)k * C, w, sizeof(float) * C);
        }
        for (int i = 0; i < n; i++) {
            const float *x = h + (int64_t)rows[i] * C;
            const float *w = W + (int64_t)target[rows[i]] * C;
            if (cosine) {
                hn[i] = normalize_into(U + (int64_t)i * C, x, C);
                pn[i] = normalize_into(P + (int64_t)i * C, w, C);
            } else {
                memcpy(U + (int64_t)i * C, x, sizeof(float) * C);
                memcpy(P + (int64_t)i * C, w, sizeof(float) * C);
            }
        }
        /* negative scores into columns 1..K of S (row stride K+1) */
        gr_gemm(0, 1, n, K, C, inv_tau, U, C, WN, C, 0.0f, S + 1, (int)K1);
        for (int i = 0; i < n; i++) {
            float *s = S + i * K1;
            const int t = target[rows[i]];
            s[0] = dotf(U + (int64_t)i * C, P + (int64_t)i * C, C) * inv_tau + (bias ? bias[t] : 0.0f);
            for (int k = 0; k < K; k++) {
                if (neg[k] == t) s[1 + k] = -INFINITY;
                else if (bias) s[1 + k] += bias[neg[k]];
            }
            const float m = row_max(s, (int)K1);
            const float lt = s[0];
            float sum = exp_shift_sum(s, (int)K1, m);
            row_loss[i] = log((double)sum) + (double)m - (double)lt;
            if (backward) {
                row_scale(s, (int)K1, scale / sum);
                s[0] -= scale;
            }
        }
        for (int i = 0; i < n; i++) loss_sum += row_loss[i];
        if (!backward) continue;
        if (dbias)
            for (int i = 0; i < n; i++) {
                const float *s = S + i * K1;
                dbias[target[rows[i]]] += s[0];
                for (int k = 0; k < K; k++) dbias[neg[k]] += s[1 + k];
            }
        /* DU = inv_tau * (dS_neg · WN + dS_pos * P); DWN = inv_tau * dS_negᵀ · U; DP = inv_tau * dS_pos * U */
        gr_gemm(0, 0, n, C, K, inv_tau, S + 1, (int)K1, WN, C, 0.0f, DU, C);
        gr_gemm(1, 0, K, C, n, inv_tau, S + 1, (int)K1, U, C, 0.0f, DWN, C);
        for (int i = 0; i < n; i++) {
            const float g = S[i * K1] * inv_tau;
            float *du = DU + (int64_t)i * C, *dp = DP + (int64_t)i * C;
            const float *u = U + (int64_t)i * C, *p = P + (int64_t)i * C;
            for (int c = 0; c < C; c++) { du[c] += g * p[c]; dp[c] = g * u[c]; }
        }
        for (int i = 0; i < n; i++) {
            const int row = rows[i], t = target[row];
            if (dh) {
                float *d = dh + (int64_t)row * C;
                if (cosine) normalize_backward(d, DU + (int64_t)i * C, U + (int64_t)i * C, hn[i], C);
                else for (int c = 0; c < C; c++) d[c] += DU[(int64_t)i * C + c];
            }
            if (dW) {
                float *d = dW + (int64_t)t * C;
                if (cosine) normalize_backward(d, DP + (int64_t)i * C, P + (int64_t)i * C, pn[i], C);
                else for (int c = 0; c < C; c++) d[c] += DP[(int64_t)i * C + c];
            }
        }
        if (dW)
            for (int k = 0; k < K; k++) {
                float *d = dW + (int64_t)neg[k] * C;
                if (cosine) normalize_backward(d, DWN + (int64_t)k * C, WN + (int64_t)k * C, wnn[k], C);
                else for (int c = 0; c < C; c++) d[c] += DWN[(int64_t)k * C + c];
            }
    }
    if (loss_out) *loss_out = (float)(loss_sum / (double)n_valid);
    return GR_OK;
}

/* ---- scoring ------------------------------------------------------------------------- */

int gr_xent_logits(const float *h, int ldh, const int32_t *rows, int n,
                   const float *W, const float *bias, int V, int C, float *out)
{
    if (n < 0 || V <= 0 || C <= 0 || ldh < C)
        return gr_errorf("gr_xent_logits: bad sizes n=%d V=%d C=%d ldh=%d", n, V, C, ldh);
    if (n == 0) return GR_OK;
    if (!rows) {
        gr_gemm(0, 1, n, V, C, 1.0f, h, ldh, W, C, 0.0f, out, V);
    } else {
        float *tmp = gr_alloc((size_t)n * (size_t)C, sizeof(float));
        if (!tmp) return gr_error_prefix("gr_xent_logits: ");
        for (int i = 0; i < n; i++) memcpy(tmp + (int64_t)i * C, h + (int64_t)rows[i] * ldh, sizeof(float) * C);
        gr_gemm(0, 1, n, V, C, 1.0f, tmp, C, W, C, 0.0f, out, V);
        gr_free(tmp);
    }
    if (bias)
        for (int i = 0; i < n; i++) {
            float *o = out + (int64_t)i * V;
            for (int v = 0; v < V; v++) o[v] += bias[v];
        }
    return GR_OK;
}
