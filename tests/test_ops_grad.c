/* Finite-difference gradient checks for every op in ops.h, plus direct
 * checks of forward semantics against naive double-precision loops.
 *
 * Loss L = sum_i out[i] * R[i] with a fixed random R, so dout = R. Each input
 * element x is perturbed by +-eps and dL/dx = (L+ - L-) / 2eps is computed in
 * double from the float32 op; the analytic gradient (from backward with
 * dout = R, accumulated onto a non-zero start value to test "+=") must match
 * to tol * max|numeric gradient|. */
#include "gr_test.h"
#include "genrec/common.h"
#include "genrec/ops.h"
#include "genrec/rng.h"

#include <math.h>
#include <stdlib.h>

static gr_rng rng;

static float *randv(int64_t n, float scale)
{
    float *x = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    for (int64_t i = 0; i < n; i++) x[i] = scale * (float)(gr_rng_double(&rng) * 2.0 - 1.0);
    return x;
}

static float *zerov(int64_t n) { return calloc((size_t)(n > 0 ? n : 1), sizeof(float)); }

typedef void (*fwd_fn)(void *ctx, float *out);
typedef struct { float *x; float *g; int64_t n; const char *name; } tref;

static double loss_of(fwd_fn f, void *ctx, float *out, const float *R, int64_t nout)
{
    f(ctx, out);
    double L = 0;
    for (int64_t i = 0; i < nout; i++) L += (double)out[i] * R[i];
    return L;
}

/* g holds (start + analytic) where start = 0.5 was put there before backward. */
static void check_grads(const char *what, fwd_fn f, void *ctx, float *out, const float *R,
                        int64_t nout, tref *ts, int nts, double eps, double tol)
{
    for (int t = 0; t < nts; t++) {
        double maxnum = 0, maxdiff = 0;
        int64_t step = ts[t].n > 400 ? ts[t].n / 200 : 1; /* at most ~400 probes */
        for (int64_t i = 0; i < ts[t].n; i += step) {
            float x0 = ts[t].x[i];
            ts[t].x[i] = (float)(x0 + eps);
            double hp = (double)ts[t].x[i] - x0;
            double Lp = loss_of(f, ctx, out, R, nout);
            ts[t].x[i] = (float)(x0 - eps);
            double hm = x0 - (double)ts[t].x[i];
            double Lm = loss_of(f, ctx, out, R, nout);
            ts[t].x[i] = x0;
            double num = (Lp - Lm) / (hp + hm);
            double ana = (double)ts[t].g[i] - 0.5;
            if (fabs(num) > maxnum) maxnum = fabs(num);
            if (fabs(num - ana) > maxdiff) maxdiff = fabs(num - ana);
        }
        if (getenv("GR_TEST_VERBOSE")) printf("  %s d/d%s: rel err %.2e (max %.3g)\n", what, ts[t].name, maxdiff / maxnum, maxnum);
        if (!(maxnum > 1e-4)) gr_test_fail(__FILE__, __LINE__, "%s: d/d%s is ~0 everywhere (%g): test is vacuous", what, ts[t].name, maxnum);
        if (!(maxdiff <= tol * maxnum))
            gr_test_fail(__FILE__, __LINE__, "%s: d/d%s max |num-ana| %g > %g * max|num| %g", what, ts[t].name, maxdiff, tol, maxnum);
    }
    f(ctx, out);
}

static float *grad_start(int64_t n)
{
    float *g = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    for (int64_t i = 0; i < n; i++) g[i] = 0.5f;
    return g;
}

/* ---- linear ---------------------------------------------------------------- */
typedef struct { float *x, *w, *b; int N, C, OC; } lin_ctx;
static void lin_fwd(void *c, float *out)
{
    lin_ctx *l = c;
    gr_linear_forward(out, l->x, l->w, l->b, l->N, l->C, l->OC);
}

static void test_linear(void)
{
    lin_ctx l = {0, 0, 0, 9, 13, 19};
    l.x = randv(l.N * l.C, 1); l.w = randv(l.OC * l.C, 1); l.b = randv(l.OC, 1);
    float *out = zerov(l.N * l.OC), *R = randv(l.N * l.OC, 1);
    lin_fwd(&l, out);
    double maxd = 0;
    for (int i = 0; i < l.N; i++)
        for (int o = 0; o < l.OC; o++) {
            double s = l.b[o];
            for (int c = 0; c < l.C; c++) s += (double)l.x[i * l.C + c] * l.w[o * l.C + c];
            maxd = fmax(maxd, fabs(s - out[i * l.OC + o]));
        }
    CHECK(maxd < 1e-5);
    float *gx = grad_start(l.N * l.C), *gw = grad_start(l.OC * l.C), *gb = grad_start(l.OC);
    gr_linear_backward(gx, gw, gb, R, l.x, l.w, l.N, l.C, l.OC);
    tref ts[] = {{l.x, gx, l.N * l.C, "x"}, {l.w, gw, l.OC * l.C, "w"}, {l.b, gb, l.OC, "b"}};
    check_grads("linear", lin_fwd, &l, out, R, l.N * l.OC, ts, 3, 1e-2, 2e-4);
    free(l.x); free(l.w); free(l.b); free(out); free(R); free(gx); free(gw); free(gb);
}

/* ---- positions + residual ----------------------------------------------------- */
typedef struct { float *x, *wpe, *b; int32_t *pos; int N, C; } pos_ctx;
static void pos_fwd(void *c, float *out)
{
    pos_ctx *p = c;
    gr_pos_embd_forward(out, p->x, p->wpe, p->pos, p->N, p->C);
    gr_residual_forward(out, out, p->b, (int64_t)p->N * p->C);
}

static void test_pos_residual(void)
{
    pos_ctx p = {0, 0, 0, 0, 11, 6};
    int maxT = 5;
    p.x = randv(p.N * p.C, 1); p.wpe = randv(maxT * p.C, 1); p.b = randv(p.N * p.C, 1);
    int32_t pos[11] = {0, 1, 2, 3, 4, 2, 2, 0, 4, 1, 3};
    p.pos = pos;
    float *out = zerov(p.N * p.C), *R = randv(p.N * p.C, 1);
    float *gx = grad_start(p.N * p.C), *gw = grad_start(maxT * p.C), *gb = grad_start(p.N * p.C);
    /* backward of out = (x + wpe[pos]) + b: dx = db = dout, dwpe scattered */
    gr_residual_backward(gx, gb, R, (int64_t)p.N * p.C);
    gr_pos_embd_backward(gw, R, p.pos, p.N, p.C);
    tref ts[] = {{p.x, gx, p.N * p.C, "x"}, {p.wpe, gw, maxT * p.C, "wpe"}, {p.b, gb, p.N * p.C, "b"}};
    check_grads("pos+residual", pos_fwd, &p, out, R, p.N * p.C, ts, 3, 1e-2, 1e-4);
    free(p.x); free(p.wpe); free(p.b); free(out); free(R); free(gx); free(gw); free(gb);
}

/* ---- norms -------------------------------------------------------------------- */
typedef struct { float *x, *w, *b, *mean, *rstd; int N, C, rms; } norm_ctx;
static void norm_fwd(void *c, float *out)
{
    norm_ctx *n = c;
    if (n->rms) gr_rmsnorm_forward(out, n->rstd, n->x, n->w, n->N, n->C, 1e-5f);
    else gr_layernorm_forward(out, n->mean, n->rstd, n->x, n->w, n->b, n->N, n->C, 1e-5f);
}

static void norm_case(int rms, int with_bias)
{
    norm_ctx n = {0, 0, 0, 0, 0, 7, 37, rms};
    n.x = randv(n.N * n.C, 2); n.w = randv(n.C, 1); n.b = with_bias ? randv(n.C, 1) : NULL;
    n.mean = zerov(n.N); n.rstd = zerov(n.N);
    float *out = zerov(n.N * n.C), *R = randv(n.N * n.C, 1);
    norm_fwd(&n, out);
    /* forward against a double-precision formula */
    double maxd = 0;
    for (int i = 0; i < n.N; i++) {
        double m = 0, v = 0, ss = 0;
        for (int c = 0; c < n.C; c++) { m += n.x[i * n.C + c]; ss += (double)n.x[i * n.C + c] * n.x[i * n.C + c]; }
        m /= n.C;
        for (int c = 0; c < n.C; c++) v += (n.x[i * n.C + c] - m) * (n.x[i * n.C + c] - m);
        v /= n.C;
        for (int c = 0; c < n.C; c++) {
            double y = rms ? n.x[i * n.C + c] / sqrt(ss / n.C + 1e-5) * n.w[c]
                           : (n.x[i * n.C + c] - m) / sqrt(v + 1e-5) * n.w[c] + (n.b ? n.b[c] : 0);
            maxd = fmax(maxd, fabs(y - out[i * n.C + c]));
        }
    }
    CHECK(maxd < 1e-5);
    float *gx = grad_start(n.N * n.C), *gw = grad_start(n.C), *gb = grad_start(n.C);
    if (rms) gr_rmsnorm_backward(gx, gw, R, n.x, n.w, n.rstd, n.N, n.C);
    else gr_layernorm_backward(gx, gw, n.b ? gb : NULL, R, n.x, n.w, n.mean, n.rstd, n.N, n.C);
    tref ts[] = {{n.x, gx, n.N * n.C, "x"}, {n.w, gw, n.C, "w"}, {n.b, gb, n.C, "b"}};
    check_grads(rms ? "rmsnorm" : "layernorm", norm_fwd, &n, out, R, n.N * n.C, ts, n.b ? 3 : 2, 1e-2, 5e-4);
    free(n.x); free(n.w); free(n.b); free(n.mean); free(n.rstd); free(out); free(R);
    free(gx); free(gw); free(gb);
}

static void test_layernorm(void) { norm_case(0, 1); norm_case(0, 0); }
static void test_rmsnorm(void) { norm_case(1, 0); }

/* ---- activations ------------------------------------------------------------ */
typedef struct { float *x; int64_t n; int kind; int N, F; } act_ctx;
static void act_fwd(void *c, float *out)
{
    act_ctx *a = c;
    if (a->kind == 0) gr_gelu_forward(out, a->x, a->n);
    else if (a->kind == 1) gr_relu_forward(out, a->x, a->n);
    else gr_swiglu_forward(out, a->x, a->N, a->F);
}

static void act_case(int kind)
{
    act_ctx a = {0, 0, kind, 6, 11};
    a.n = kind == 2 ? (int64_t)a.N * 2 * a.F : 300;
    int64_t nout = kind == 2 ? (int64_t)a.N * a.F : a.n;
    a.x = randv(a.n, 3);
    if (kind == 1) /* keep ReLU inputs away from the kink */
        for (int64_t i = 0; i < a.n; i++) if (fabsf(a.x[i]) < 0.05f) a.x[i] = 0.3f;
    float *out = zerov(nout), *R = randv(nout, 1), *g = grad_start(a.n);
    act_fwd(&a, out);
    double maxd = 0;
    for (int64_t i = 0; i < nout; i++) {
        double y;
        if (kind == 0) { double x = a.x[i]; y = 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))); }
        else if (kind == 1) y = a.x[i] > 0 ? a.x[i] : 0;
        else {
            int64_t r = i / a.F, j = i % a.F;
            double up = a.x[r * 2 * a.F + j], gt = a.x[r * 2 * a.F + a.F + j];
            y = up * gt / (1 + exp(-gt));
        }
        maxd = fmax(maxd, fabs(y - out[i]));
    }
    CHECK(maxd < 1e-5);
    if (kind == 0) gr_gelu_backward(g, a.x, R, a.n);
    else if (kind == 1) gr_relu_backward(g, a.x, R, a.n);
    else gr_swiglu_backward(g, a.x, R, a.N, a.F);
    tref ts[] = {{a.x, g, a.n, "x"}};
    const char *names[] = {"gelu", "relu", "swiglu"};
    check_grads(names[kind], act_fwd, &a, out, R, nout, ts, 1, 1e-3, 1e-3);
    free(a.x); free(out); free(R); free(g);
}

static void test_gelu(void) { act_case(0); }
static void test_relu(void) { act_case(1); }
static void test_swiglu(void) { act_case(2); }

/* ---- dropout ---------------------------------------------------------------- */
typedef struct { float *x; uint8_t *mask; int64_t n; float p; } drop_ctx;
static void drop_fwd(void *c, float *out)
{
    drop_ctx *d = c;
    gr_dropout_apply(out, d->mask, d->x, d->n, d->p);
}

static void test_dropout(void)
{
    int64_t n = 100003;
    float p = 0.3f;
    float *x = randv(n, 1), *y1 = zerov(n), *y2 = zerov(n);
    uint8_t *m1 = malloc((size_t)n), *m2 = malloc((size_t)n);
    gr_rng r1, r2;
    gr_rng_seed(&r1, 9);
    gr_rng_seed(&r2, 9);
    gr_threads_set(1);
    gr_dropout_forward(y1, m1, x, n, p, &r1);
    gr_threads_set(2);
    gr_dropout_forward(y2, m2, x, n, p, &r2);
    gr_threads_set(0);
    CHECK(memcmp(m1, m2, (size_t)n) == 0); /* same seed, any thread count */
    CHECK(memcmp(y1, y2, sizeof(float) * (size_t)n) == 0);
    int64_t kept = 0;
    int scaled_ok = 1;
    for (int64_t i = 0; i < n; i++) {
        kept += m1[i];
        if (m1[i] ? fabsf(y1[i] - x[i] / (1 - p)) > 1e-6f : y1[i] != 0.0f) scaled_ok = 0;
    }
    CHECK(scaled_ok);
    CHECK_NEAR((double)kept / n, 1 - p, 0.01);
    gr_dropout_forward(y2, m2, x, n, p, &r1); /* next draw: a different mask */
    CHECK(memcmp(m1, m2, (size_t)n) != 0);
    /* gradient with the mask fixed */
    drop_ctx d = {x, m1, 257, p};
    float *R = randv(257, 1), *g = grad_start(257), *out = zerov(257);
    gr_dropout_backward(g, R, m1, 257, p);
    tref ts[] = {{x, g, 257, "x"}};
    check_grads("dropout", drop_fwd, &d, out, R, 257, ts, 1, 1e-2, 1e-4);
    /* p = 0 is the identity */
    gr_dropout_forward(y1, m1, x, n, 0.0f, &r1);
    CHECK(memcmp(y1, x, sizeof(float) * (size_t)n) == 0);
    free(x); free(y1); free(y2); free(m1); free(m2); free(R); free(g); free(out);
}

/* ---- RoPE -------------------------------------------------------------------- */
typedef struct { float *x, *cs; int32_t *pos; int N, ld, nh, HS; float *tmp; } rope_ctx;
static void rope_fwd(void *c, float *out)
{
    rope_ctx *r = c;
    memcpy(out, r->x, sizeof(float) * (size_t)r->N * r->ld);
    gr_rope_forward(out + 2, r->ld, r->pos, r->cs, r->N, r->nh, r->HS); /* heads start at column 2 */
}

static void test_rope(void)
{
    rope_ctx r = {0, 0, 0, 5, 2 + 3 * 8 + 1, 3, 8, 0};
    int maxT = 40;
    r.cs = zerov(maxT * r.HS);
    gr_rope_table(r.cs, maxT, r.HS, 10000.0f);
    int32_t pos[5] = {0, 1, 7, 39, 3};
    r.pos = pos;
    r.x = randv(r.N * r.ld, 1);
    float *out = zerov(r.N * r.ld), *R = randv(r.N * r.ld, 1);
    rope_fwd(&r, out);
    double maxd = 0;
    for (int t = 0; t < r.N; t++)
        for (int h = 0; h < r.nh; h++)
            for (int i = 0; i < r.HS / 2; i++) {
                const float *v = r.x + t * r.ld + 2 + h * r.HS;
                double a = pos[t] * pow(10000.0, -2.0 * i / r.HS);
                double y0 = v[2 * i] * cos(a) - v[2 * i + 1] * sin(a);
                double y1 = v[2 * i] * sin(a) + v[2 * i + 1] * cos(a);
                maxd = fmax(maxd, fabs(y0 - out[t * r.ld + 2 + h * r.HS + 2 * i]));
                maxd = fmax(maxd, fabs(y1 - out[t * r.ld + 2 + h * r.HS + 2 * i + 1]));
            }
    CHECK(maxd < 1e-5);
    CHECK_NEAR(out[0], r.x[0], 0); /* columns outside the heads untouched */
    CHECK_NEAR(out[r.ld - 1], r.x[r.ld - 1], 0);
    /* backward: dx = R with the head columns inverse-rotated (+0.5 start) */
    float *g = malloc(sizeof(float) * (size_t)r.N * r.ld);
    memcpy(g, R, sizeof(float) * (size_t)r.N * r.ld);
    gr_rope_backward(g + 2, r.ld, r.pos, r.cs, r.N, r.nh, r.HS);
    for (int i = 0; i < r.N * r.ld; i++) g[i] += 0.5f;
    tref ts[] = {{r.x, g, r.N * r.ld, "x"}};
    check_grads("rope", rope_fwd, &r, out, R, r.N * r.ld, ts, 1, 1e-2, 1e-4);
    free(r.cs); free(r.x); free(out); free(R); free(g);
}

/* ---- attention ----------------------------------------------------------------- */
typedef struct { float *qkv, *att, *scratch; const int32_t *off; int n_seq, NH, KVH, HS; } att_ctx;
static void att_fwd(void *c, float *out)
{
    att_ctx *a = c;
    gr_attention_forward(out, a->att, a->scratch, a->qkv, a->off, a->n_seq, a->NH, a->KVH, a->HS);
}

/* Naive packed causal attention in double. */
static double att_ref_maxdiff(const att_ctx *a, const float *out)
{
    int C = a->NH * a->HS, ld = (a->NH + 2 * a->KVH) * a->HS, grp = a->NH / a->KVH;
    double maxd = 0;
    for (int s = 0; s < a->n_seq; s++) {
        int o = a->off[s], T = a->off[s + 1] - o;
        for (int h = 0; h < a->NH; h++) {
            int g = h / grp;
            for (int i = 0; i < T; i++) {
                double w[512], mx = -1e300, sum = 0;
                for (int j = 0; j <= i; j++) {
                    double d = 0;
                    for (int e = 0; e < a->HS; e++)
                        d += (double)a->qkv[(o + i) * ld + h * a->HS + e] * a->qkv[(o + j) * ld + C + g * a->HS + e];
                    w[j] = d / sqrt(a->HS);
                    mx = fmax(mx, w[j]);
                }
                for (int j = 0; j <= i; j++) { w[j] = exp(w[j] - mx); sum += w[j]; }
                for (int e = 0; e < a->HS; e++) {
                    double y = 0;
                    for (int j = 0; j <= i; j++)
                        y += w[j] / sum * a->qkv[(o + j) * ld + C + (a->KVH + g) * a->HS + e];
                    maxd = fmax(maxd, fabs(y - out[(o + i) * C + h * a->HS + e]));
                }
            }
        }
    }
    return maxd;
}

static void attention_case(int NH, int KVH, int HS, const int32_t *off, int n_seq)
{
    att_ctx a = {0, 0, 0, off, n_seq, NH, KVH, HS};
    int N = off[n_seq], ld = (NH + 2 * KVH) * HS, C = NH * HS;
    a.qkv = randv((int64_t)N * ld, 1.5f);
    a.att = zerov((int64_t)gr_attention_att_size(off, n_seq, NH));
    a.scratch = zerov((int64_t)gr_attention_scratch_size(off, n_seq));
    float *out = zerov((int64_t)N * C), *out2 = zerov((int64_t)N * C), *R = randv((int64_t)N * C, 1);
    att_fwd(&a, out);
    CHECK(att_ref_maxdiff(&a, out) < 1e-5);
    /* inference path (no probabilities kept) gives the same output */
    gr_attention_forward(out2, NULL, a.scratch, a.qkv, off, n_seq, NH, KVH, HS);
    CHECK(memcmp(out, out2, sizeof(float) * (size_t)N * C) == 0);
    /* stored probabilities: rows sum to 1, zero above the diagonal */
    int Tb = 0;
    for (int s = 0; s < n_seq; s++) if (off[s + 1] - off[s] > Tb) Tb = off[s + 1] - off[s];
    int rows_ok = 1;
    for (int s = 0; s < n_seq; s++) {
        int T = off[s + 1] - off[s];
        for (int h = 0; h < NH; h++) {
            const float *P = a.att + (size_t)off[s] * Tb * NH + (size_t)h * T * T;
            for (int i = 0; i < T; i++) {
                double sum = 0;
                for (int j = 0; j < T; j++) {
                    if (j > i && P[i * T + j] != 0.0f) rows_ok = 0;
                    sum += P[i * T + j];
                }
                if (fabs(sum - 1) > 1e-5) rows_ok = 0;
            }
        }
    }
    CHECK(rows_ok);
    float *g = grad_start((int64_t)N * ld);
    gr_attention_backward(g, a.scratch, R, a.qkv, a.att, off, n_seq, NH, KVH, HS);
    tref ts[] = {{a.qkv, g, (int64_t)N * ld, "qkv"}};
    check_grads("attention", att_fwd, &a, out, R, (int64_t)N * C, ts, 1, 1e-2, 5e-4);
    free(a.qkv); free(a.att); free(a.scratch); free(out); free(out2); free(R); free(g);
}

static void test_attention_packed(void)
{
    const int32_t off[] = {0, 5, 6, 14};          /* lengths 5, 1, 8 */
    attention_case(2, 2, 4, off, 3);
}

static void test_attention_gqa(void)
{
    const int32_t off[] = {0, 3, 10, 10, 12};     /* lengths 3, 7, 0, 2 */
    attention_case(4, 2, 6, off, 4);
    attention_case(3, 1, 4, off, 4);              /* multi-query */
}

static void test_attention_long(void)
{
    const int32_t off[] = {0, 300, 303, 373};     /* 300 spans two 256-row query blocks */
    attention_case(2, 1, 4, off, 3);
}

int main(void)
{
    gr_rng_seed(&rng, 1234);
    GR_RUN(test_linear);
    GR_RUN(test_pos_residual);
    GR_RUN(test_layernorm);
    GR_RUN(test_rmsnorm);
    GR_RUN(test_gelu);
    GR_RUN(test_relu);
    GR_RUN(test_swiglu);
    GR_RUN(test_dropout);
    GR_RUN(test_rope);
    GR_RUN(test_attention_packed);
    GR_RUN(test_attention_gqa);
    GR_RUN(test_attention_long);
    return gr_test_finish();
}
