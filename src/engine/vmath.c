/* Vectorised exp (Cephes-style range reduction + degree-5 polynomial, as in
 * the classic avx_mathfun) with a scalar fallback; see vmath.h. */
#include "vmath.h"
#include "gemm_kernels.h"

#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

__attribute__((target("avx2,fma")))
static inline __m256 exp256(__m256 x)
{
    const __m256 hi = _mm256_set1_ps(88.3762626647949f), lo = _mm256_set1_ps(-87.0f);
    __m256 tiny = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    x = _mm256_min_ps(x, hi);
    x = _mm256_max_ps(x, lo);
    __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
    __m256 y = _mm256_set1_ps(1.9875691500e-4f);
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894e-2f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459e-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201e-1f));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
    y = _mm256_mul_ps(y, _mm256_castsi256_ps(e));
    return _mm256_andnot_ps(tiny, y);
}

__attribute__((target("avx2,fma")))
static float exp_shift_sum_avx2(float *x, int n, float shift)
{
    __m256 vs = _mm256_set1_ps(shift), acc = _mm256_setzero_ps();
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 y = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + j), vs));
        _mm256_storeu_ps(x + j, y);
        acc = _mm256_add_ps(acc, y);
    }
    float buf[8];
    _mm256_storeu_ps(buf, acc);
    float sum = ((buf[0] + buf[1]) + (buf[2] + buf[3])) + ((buf[4] + buf[5]) + (buf[6] + buf[7]));
    for (; j < n; j++) {
        float d = x[j] - shift;
        x[j] = d < -87.0f ? 0.0f : expf(d);
        sum += x[j];
    }
    return sum;
}

__attribute__((target("avx2,fma")))
static void sigmoid_avx2(float *y, const float *x, int n)
{
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 e = exp256(_mm256_sub_ps(zero, _mm256_loadu_ps(x + j)));
        _mm256_storeu_ps(y + j, _mm256_div_ps(one, _mm256_add_ps(one, e)));
    }
    for (; j < n; j++) y[j] = 1.0f / (1.0f + expf(-x[j]));
}

__attribute__((target("avx2,fma")))
static void tanh_avx2(float *y, const float *x, int n)
{
    /* tanh(u) = sign(u) * (1 - 2 / (exp(2|u|) + 1)); exp256 saturates at
     * 88, where the result is exactly +-1 in float anyway */
    const __m256 one = _mm256_set1_ps(1.0f), two = _mm256_set1_ps(2.0f);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 u = _mm256_loadu_ps(x + j);
        __m256 s = _mm256_and_ps(u, sign), a = _mm256_andnot_ps(sign, u);
        __m256 e = exp256(_mm256_mul_ps(two, a));
        __m256 t = _mm256_sub_ps(one, _mm256_div_ps(two, _mm256_add_ps(e, one)));
        _mm256_storeu_ps(y + j, _mm256_or_ps(t, s));
    }
    for (; j < n; j++) y[j] = tanhf(x[j]);
}

float gr_vexp_shift_sum(float *x, int n, float shift)
{
    if (gr_gemm_avx2_supported()) return exp_shift_sum_avx2(x, n, shift);
    float sum = 0.0f;
    for (int j = 0; j < n; j++) {
        x[j] = expf(x[j] - shift);
        sum += x[j];
    }
    return sum;
}

void gr_vsigmoid(float *y, const float *x, int n)
{
    if (gr_gemm_avx2_supported()) {
        sigmoid_avx2(y, x, n);
        return;
    }
    for (int j = 0; j < n; j++) y[j] = 1.0f / (1.0f + expf(-x[j]));
}

void gr_vtanh(float *y, const float *x, int n)
{
    if (gr_gemm_avx2_supported()) {
        tanh_avx2(y, x, n);
        return;
    }
    for (int j = 0; j < n; j++) y[j] = tanhf(x[j]);
}

static inline float bf16_widen(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* The 8 lane sums combined in a fixed order, then the tail from i. */
static float dot_bf16_finish(const float a[8], const float *x, const uint16_t *w, int i, int n)
{
    float s = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
    for (; i < n; i++) s += x[i] * bf16_widen(w[i]);
    return s;
}

/* 16 products per iteration in two accumulators, then 8 lanes and the tail
 * combined in a fixed order (the generic loop below sums in the same
 * order, so both paths agree up to FMA rounding). */
__attribute__((target("avx2,fma")))
static float dot_bf16_avx2(const float *x, const uint16_t *w, int n)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i w0 = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(w + i)));
        __m256i w1 = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(w + i + 8)));
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_castsi256_ps(_mm256_slli_epi32(w0, 16)), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_castsi256_ps(_mm256_slli_epi32(w1, 16)), a1);
    }
    for (; i + 8 <= n; i += 8) {
        __m256i w0 = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(w + i)));
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_castsi256_ps(_mm256_slli_epi32(w0, 16)), a0);
    }
    float a[8];
    _mm256_storeu_ps(a, _mm256_add_ps(a0, a1));
    return dot_bf16_finish(a, x, w, i, n);
}

float gr_vdot_bf16(const float *x, const uint16_t *w, int n)
{
    if (gr_gemm_avx2_supported()) return dot_bf16_avx2(x, w, n);
    float a[8] = {0}, b[8] = {0};
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 8; j++) {
            a[j] += x[i + j] * bf16_widen(w[i + j]);
            b[j] += x[i + 8 + j] * bf16_widen(w[i + 8 + j]);
        }
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) a[j] += x[i + j] * bf16_widen(w[i + j]);
    for (int j = 0; j < 8; j++) a[j] += b[j];
    return dot_bf16_finish(a, x, w, i, n);
}
