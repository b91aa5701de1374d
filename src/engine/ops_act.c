/* Activations: GELU (tanh approximation), ReLU, SwiGLU (ops.h); bodies of
 * orphaned worksharing run by GR_PAR_RUN (par.h). */
#include "genrec/ops.h"
#include "par.h"
#include "vmath.h"

#include <math.h>

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_C 0.044715f
#define SIG_CHUNK 64 /* sigmoid/tanh computed in chunks on the stack */

/* GELU in chunks: u = k (x + c x^3) on the stack, tanh vectorised. */
static void gelu_forward_body(float *out, const float *inp, int64_t n)
{
    int64_t nchunk = (n + SIG_CHUNK - 1) / SIG_CHUNK;
#pragma omp for schedule(dynamic, 64)
    for (int64_t b = 0; b < nchunk; b++) {
        int64_t i0 = b * SIG_CHUNK;
        int w = n - i0 < SIG_CHUNK ? (int)(n - i0) : SIG_CHUNK;
        const float *x = inp + i0;
        float t[SIG_CHUNK];
#pragma omp simd
        for (int j = 0; j < w; j++) t[j] = GELU_K * (x[j] + GELU_C * x[j] * x[j] * x[j]);
        gr_vtanh(t, t, w);
#pragma omp simd
        for (int j = 0; j < w; j++) out[i0 + j] = 0.5f * x[j] * (1.0f + t[j]);
    }
}

void gr_gelu_forward(float *out, const float *inp, int64_t n)
{
    GR_PAR_RUN(gr_ops_threads((double)n * 16), gelu_forward_body(out, inp, n));
}

static void gelu_backward_body(float *dinp, const float *inp, const float *dout, int64_t n)
{
    int64_t nchunk = (n + SIG_CHUNK - 1) / SIG_CHUNK;
#pragma omp for schedule(dynamic, 64)
    for (int64_t b = 0; b < nchunk; b++) {
        int64_t i0 = b * SIG_CHUNK;
        int w = n - i0 < SIG_CHUNK ? (int)(n - i0) : SIG_CHUNK;
        const float *x = inp + i0;
        float t[SIG_CHUNK];
#pragma omp simd
        for (int j = 0; j < w; j++) t[j] = GELU_K * (x[j] + GELU_C * x[j] * x[j] * x[j]);
        gr_vtanh(t, t, w);
#pragma omp simd
        for (int j = 0; j < w; j++) {
            float sech2 = 1.0f - t[j] * t[j];
            float g = 0.5f * (1.0f + t[j]) +
                      0.5f * x[j] * sech2 * GELU_K * (1.0f + 3.0f * GELU_C * x[j] * x[j]);
            dinp[i0 + j] += g * dout[i0 + j];
        }
    }
}

void gr_gelu_backward(float *dinp, const float *inp, const float *dout, int64_t n)
{
    GR_PAR_RUN(gr_ops_threads((double)n * 16), gelu_backward_body(dinp, inp, dout, n));
}

static void relu_forward_body(float *out, const float *inp, int64_t n)
{
#pragma omp for simd schedule(dynamic, GR_FLAT_CHUNK)
    for (int64_t i = 0; i < n; i++) out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}

void gr_relu_forward(float *out, const float *inp, int64_t n)
{
    GR_PAR_RUN(gr_ops_threads((double)n), relu_forward_body(out, inp, n));
}

static void relu_backward_body(float *dinp, const float *inp, const float *dout, int64_t n)
{
#pragma omp for simd schedule(dynamic, GR_FLAT_CHUNK)
    for (int64_t i = 0; i < n; i++) dinp[i] += inp[i] > 0.0f ? dout[i] : 0.0f;
}

void gr_relu_backward(float *dinp, const float *inp, const float *dout, int64_t n)
{
    GR_PAR_RUN(gr_ops_threads((double)n), relu_backward_body(dinp, inp, dout, n));
}

static void swiglu_forward_body(float *out, const float *inp, int N, int F)
{
#pragma omp for schedule(dynamic, gr_row_chunk(F))
    for (int i = 0; i < N; i++) {
        const float *up = inp + (size_t)i * 2 * F, *gate = up + F;
        float *o = out + (size_t)i * F;
        float sig[SIG_CHUNK];
        for (int j0 = 0; j0 < F; j0 += SIG_CHUNK) {
            int w = F - j0 < SIG_CHUNK ? F - j0 : SIG_CHUNK;
            gr_vsigmoid(sig, gate + j0, w);
#pragma omp simd
            for (int j = 0; j < w; j++) o[j0 + j] = up[j0 + j] * (gate[j0 + j] * sig[j]);
        }
    }
}

void gr_swiglu_forward(float *out, const float *inp, int N, int F)
{
    GR_PAR_RUN(gr_ops_threads((double)N * F * 8), swiglu_forward_body(out, inp, N, F));
}

static void swiglu_backward_body(float *dinp, const float *inp, const float *dout, int N, int F)
{
#pragma omp for schedule(dynamic, gr_row_chunk(F))
    for (int i = 0; i < N; i++) {
        const float *up = inp + (size_t)i * 2 * F, *gate = up + F, *dy = dout + (size_t)i * F;
        float *dup = dinp + (size_t)i * 2 * F, *dgate = dup + F;
        float sigv[SIG_CHUNK];
        for (int j0 = 0; j0 < F; j0 += SIG_CHUNK) {
            int w = F - j0 < SIG_CHUNK ? F - j0 : SIG_CHUNK;
            gr_vsigmoid(sigv, gate + j0, w);
#pragma omp simd
            for (int jj = 0; jj < w; jj++) {
                int j = j0 + jj;
                float g = gate[j], sig = sigv[jj];
                dup[j] += dy[j] * (g * sig);
                dgate[j] += dy[j] * up[j] * sig * (1.0f + g * (1.0f - sig));
            }
        }
    }
}

void gr_swiglu_backward(float *dinp, const float *inp, const float *dout, int N, int F)
{
    GR_PAR_RUN(gr_ops_threads((double)N * F * 10), swiglu_backward_body(dinp, inp, dout, N, F));
}
