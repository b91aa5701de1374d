/* Internal: vectorised exp for softmax and activations (vmath.c). */
#ifndef GENREC_ENGINE_VMATH_H
#define GENREC_ENGINE_VMATH_H

/* x[j] = exp(x[j] - shift) for j < n; returns the sum of the new values.
 * AVX2 polynomial (relative error < 3e-7) when the CPU has AVX2/FMA, else
 * expf. Arguments below -87 give 0. */
float gr_vexp_shift_sum(float *x, int n, float shift);

/* y[j] = 1 / (1 + exp(-x[j])) (logistic sigmoid), same dispatch. */
void gr_vsigmoid(float *y, const float *x, int n);

#endif
