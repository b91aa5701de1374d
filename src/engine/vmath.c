/* Vectorised exp (Cephes-style range reduction + degree-5 polynomial, as in
 * the classic avx_mathfun) with a scalar fallback; see vmath.h. */
#include "vmath.h"
#include "gemm_kernels.h"

#include <immintrin.h>
#include <math.h>

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
