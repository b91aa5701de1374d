/* Internal: vectorised exp for softmax and activations (vmath.c). */
#ifndef GENREC_ENGINE_VMATH_H
#define GENREC_ENGINE_VMATH_H
#include <stdint.h>

/* x[j] = exp(x[j] - shift) for j < n; returns the sum of the new values.
 * AVX2 polynomial (relative error < 3e-7) when the CPU has AVX2/FMA, else
 * expf. Arguments below -87 give 0. */
float gr_vexp_shift_sum(float *x, int n, float shift);

/* y[j] = 1 / (1 + exp(-x[j])) (logistic sigmoid), same dispatch. */
void gr_vsigmoid(float *y, const float *x, int n);

/* y[j] = tanh(x[j]) (absolute error < 2e-7), same dispatch; y may equal x. */
void gr_vtanh(float *y, const float *x, int n);

/* sum x[j] * w[j] for j < n with bf16 w (the upper 16 bits of an fp32),
 * widened in registers (AVX2) or one by one; 16 running sums combined in a
 * fixed order. For decoding with bf16 weights (decode.h). */
float gr_vdot_bf16(const float *x, const uint16_t *w, int n);

/* Work sharing: loops are split into chunks handed out dynamically, so a
 * thread that is descheduled (shared machine) or slower does not hold the
 * others at the barrier. Elementwise and per-row work does not depend on
 * which thread runs it, so results stay deterministic. */
#define GR_FLAT_CHUNK 8192 /* elements per chunk of flat loops */
/* rows per chunk of per-row loops over rows of C elements (~4K elements) */
static inline int gr_row_chunk(int C) { return C >= 4096 ? 1 : 4096 / (C > 0 ? C : 1); }

/* Reductions with 8 independent partial sums (vectorisable without
 * -ffast-math), combined in a fixed order: deterministic, and ~8x faster
 * than a single serial accumulator on short rows. */
static inline float gr_vsum(const float *x, int n)
{
    float a[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) a[j] += x[i + j];
    float s = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
    for (; i < n; i++) s += x[i];
    return s;
}

/* sum (x - m)^2 */
static inline float gr_vsumsq_centered(const float *x, float m, int n)
{
    float a[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) {
            float d = x[i + j] - m;
            a[j] += d * d;
        }
    float s = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
    for (; i < n; i++) s += (x[i] - m) * (x[i] - m);
    return s;
}

/* sum x * y */
static inline float gr_vdot(const float *x, const float *y, int n)
{
    float a[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) a[j] += x[i + j] * y[i + j];
    float s = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
    for (; i < n; i++) s += x[i] * y[i];
    return s;
}

/* max of x[0..n), n >= 1 */
static inline float gr_vmax(const float *x, int n)
{
    float a[8];
    int i = 0;
    for (int j = 0; j < 8; j++) a[j] = x[0];
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) a[j] = x[i + j] > a[j] ? x[i + j] : a[j];
    float s = a[0];
    for (int j = 1; j < 8; j++) s = a[j] > s ? a[j] : s;
    for (; i < n; i++) s = x[i] > s ? x[i] : s;
    return s;
}

#endif
