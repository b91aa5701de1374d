/* Rotary positions and causal multi-head / grouped-query self-attention on
 * packed variable-length sequences (ops.h).
 *
 * Attention works per (sequence, head) with GEMMs over blocks of ATT_BQ
 * query rows (usually the whole sequence): rows [r0, r1) only need keys
 * [0, r1), and the triangular GEMM variants skip the 6x16 tiles above the
 * causal diagonal (scores) and the zero upper triangle of the probabilities
 * (products with P and dS), so causal attention costs about half of a full
 * T x T one. Work units are (sequence, head) in
 * forward and (sequence, kv head) in backward (so dK/dV of a kv head shared
 * by several query heads are written by one thread); units are handed out
 * dynamically, and each unit's arithmetic does not depend on which thread
 * runs it, so results are deterministic. The ops are bodies of orphaned
 * worksharing run by GR_PAR_RUN (par.h): by the calling pass's team or a
 * region of their own; a unit runs serial GEMMs only.
 */
#include "genrec/ops.h"
#include "genrec/common.h"
#include "genrec/gemm.h"
#include "gemm_kernels.h"
#include "par.h"
#include "vmath.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#define ATT_BQ 256 /* query rows per block (bounds the per-thread scratch) */

/* ---- RoPE ------------------------------------------------------------------ */

void gr_rope_table(float *cs, int maxT, int HS, float theta)
{
    int half = HS / 2;
    for (int p = 0; p < maxT; p++)
        for (int i = 0; i < half; i++) {
            double freq = pow((double)theta, -2.0 * i / (double)HS);
            double a = (double)p * freq;
            cs[((size_t)p * half + i) * 2] = (float)cos(a);
            cs[((size_t)p * half + i) * 2 + 1] = (float)sin(a);
        }
}

/* Rotate by +angle (dir = 1) or -angle (dir = -1). */
static void rope_rotate_body(float *x, int ld, const int32_t *pos, const float *cs, int N,
                             int n_heads, int HS, float dir)
{
    int half = HS / 2;
#pragma omp for schedule(dynamic, gr_row_chunk(n_heads * HS))
    for (int t = 0; t < N; t++) {
        const float *c = cs + (size_t)pos[t] * half * 2;
        float *row = x + (size_t)t * ld;
        for (int h = 0; h < n_heads; h++) {
            float *v = row + (size_t)h * HS;
            for (int i = 0; i < half; i++) {
                float co = c[2 * i], si = dir * c[2 * i + 1];
                float x0 = v[2 * i], x1 = v[2 * i + 1];
                v[2 * i] = x0 * co - x1 * si;
                v[2 * i + 1] = x0 * si + x1 * co;
            }
        }
    }
}

static void rope_rotate(float *x, int ld, const int32_t *pos, const float *cs, int N,
                        int n_heads, int HS, float dir)
{
    GR_PAR_RUN(gr_ops_threads((double)N * n_heads * HS * 3),
               rope_rotate_body(x, ld, pos, cs, N, n_heads, HS, dir));
}

void gr_rope_forward(float *x, int ld, const int32_t *pos, const float *cs,
                     int N, int n_heads, int HS)
{
    rope_rotate(x, ld, pos, cs, N, n_heads, HS, 1.0f);
}

void gr_rope_backward(float *dx, int ld, const int32_t *pos, const float *cs,
                      int N, int n_heads, int HS)
{
    rope_rotate(dx, ld, pos, cs, N, n_heads, HS, -1.0f);
}

/* ---- attention ----------------------------------------------------------- */

static int longest(const int32_t *seq_off, int n_seq)
{
    int tb = 0;
    for (int s = 0; s < n_seq; s++)
        if (seq_off[s + 1] - seq_off[s] > tb) tb = seq_off[s + 1] - seq_off[s];
    return tb;
}

size_t gr_attention_att_size(const int32_t *seq_off, int n_seq, int NH)
{
    return (size_t)(seq_off[n_seq] - seq_off[0]) * (size_t)longest(seq_off, n_seq) * (size_t)NH;
}

size_t gr_attention_scratch_size(const int32_t *seq_off, int n_seq)
{
    int tb = longest(seq_off, n_seq);
    int bq = tb < ATT_BQ ? tb : ATT_BQ;
    return (size_t)gr_threads_get() * (size_t)bq * (size_t)tb;
}

static void attention_fwd(float *out, float *att, float *scratch, const float *qkv,
                          const int32_t *seq_off, int n_seq, int NH, int KVH, int HS, int Tb)
{
    int bqmax = Tb < ATT_BQ ? Tb : ATT_BQ;
    int C = NH * HS, ld = (NH + 2 * KVH) * HS, grp = NH / KVH;
    float scale = 1.0f / sqrtf((float)HS);
    int units = n_seq * NH;
#pragma omp for schedule(dynamic, 1)
    for (int u = 0; u < units; u++) {
        int s = u / NH, h = u % NH, g = h / grp;
        int off = seq_off[s], T = seq_off[s + 1] - off;
        if (T <= 0) continue;
        const float *q = qkv + (size_t)off * ld + (size_t)h * HS;
        const float *k = qkv + (size_t)off * ld + C + (size_t)g * HS;
        const float *v = qkv + (size_t)off * ld + C + (size_t)(KVH + g) * HS;
        float *P = att ? att + (size_t)(off - seq_off[0]) * Tb * NH + (size_t)h * T * T : NULL;
        float *scr = P ? NULL : scratch + (size_t)omp_get_thread_num() * bqmax * Tb;
        for (int r0 = 0; r0 < T; r0 += ATT_BQ) {
            int rb = T - r0 < ATT_BQ ? T - r0 : ATT_BQ, r1 = r0 + rb;
            float *S = P ? P + (size_t)r0 * T : scr;
            int ldS = P ? T : r1;
            /* S (rb, r1) = scale * Q[r0:r1] K[0:r1]^T, causal part only */
            gr_gemm_tri_serial(GR_TRI_C_LOWER, r0, 0, 1, rb, r1, HS, scale, q + (size_t)r0 * ld, ld,
                               k, ld, 0.0f, S, ldS);
            for (int ii = 0; ii < rb; ii++) {
                int i = r0 + ii;
                float *row = S + (size_t)ii * ldS;
                float mx = gr_vmax(row, i + 1);
                float sum = gr_vexp_shift_sum(row, i + 1, mx);
                float inv = 1.0f / sum;
#pragma omp simd
                for (int j = 0; j <= i; j++) row[j] *= inv;
                int jend = P ? T : r1;
                for (int j = i + 1; j < jend; j++) row[j] = 0.0f;
            }
            /* Y[r0:r1] (rb, HS) = P[r0:r1, 0:r1] V[0:r1] (P lower-triangular) */
            gr_gemm_tri_serial(GR_TRI_A_LOWER, r0, 0, 0, rb, HS, r1, 1.0f, S, ldS, v, ld, 0.0f,
                               out + (size_t)(off + r0) * C + (size_t)h * HS, C);
        }
    }
}

void gr_attention_forward(float *out, float *att, float *scratch, const float *qkv,
                          const int32_t *seq_off, int n_seq, int NH, int KVH, int HS)
{
    int Tb = longest(seq_off, n_seq), N = seq_off[n_seq] - seq_off[0];
    GR_PAR_RUN(gr_ops_threads((double)N * Tb * NH * HS * 2.0),
               attention_fwd(out, att, scratch, qkv, seq_off, n_seq, NH, KVH, HS, Tb));
}

static void attention_bwd(float *dqkv, float *scratch, const float *dout, const float *qkv,
                          const float *att, const int32_t *seq_off, int n_seq,
                          int NH, int KVH, int HS, int Tb)
{
    int bqmax = Tb < ATT_BQ ? Tb : ATT_BQ;
    int C = NH * HS, ld = (NH + 2 * KVH) * HS, grp = NH / KVH;
    float scale = 1.0f / sqrtf((float)HS);
    int units = n_seq * KVH;
#pragma omp for schedule(dynamic, 1)
    for (int u = 0; u < units; u++) {
        int s = u / KVH, g = u % KVH;
        int off = seq_off[s], T = seq_off[s + 1] - off;
        if (T <= 0) continue;
        const float *k = qkv + (size_t)off * ld + C + (size_t)g * HS;
        const float *v = qkv + (size_t)off * ld + C + (size_t)(KVH + g) * HS;
        float *dk = dqkv + (size_t)off * ld + C + (size_t)g * HS;
        float *dv = dqkv + (size_t)off * ld + C + (size_t)(KVH + g) * HS;
        float *dS = scratch + (size_t)omp_get_thread_num() * bqmax * Tb;
        for (int h = g * grp; h < (g + 1) * grp; h++) {
            const float *q = qkv + (size_t)off * ld + (size_t)h * HS;
            float *dq = dqkv + (size_t)off * ld + (size_t)h * HS;
            const float *dy = dout + (size_t)off * C + (size_t)h * HS;
            const float *P = att + (size_t)(off - seq_off[0]) * Tb * NH + (size_t)h * T * T;
            for (int r0 = 0; r0 < T; r0 += ATT_BQ) {
                int rb = T - r0 < ATT_BQ ? T - r0 : ATT_BQ, r1 = r0 + rb;
                const float *Pb = P + (size_t)r0 * T;
                /* dP (rb, r1) = dY[r0:r1] V[0:r1]^T, causal part only */
                gr_gemm_tri_serial(GR_TRI_C_LOWER, r0, 0, 1, rb, r1, HS, 1.0f, dy + (size_t)r0 * C, C,
                                   v, ld, 0.0f, dS, r1);
                /* dV[0:r1] += P[r0:r1, 0:r1]^T dY[r0:r1]; row j of P^T is zero
                 * before query j - r0 */
                gr_gemm_tri_serial(GR_TRI_A_UPPER, -r0, 1, 0, r1, HS, rb, 1.0f, Pb, T,
                                   dy + (size_t)r0 * C, C, 1.0f, dv, ld);
                /* dS = P * (dP - sum_j P dP) * scale, zero above the diagonal */
                for (int ii = 0; ii < rb; ii++) {
                    int i = r0 + ii;
                    const float *p = Pb + (size_t)ii * T;
                    float *d = dS + (size_t)ii * r1;
                    float dot = gr_vdot(p, d, i + 1);
#pragma omp simd
                    for (int j = 0; j <= i; j++) d[j] = p[j] * (d[j] - dot) * scale;
                    for (int j = i + 1; j < r1; j++) d[j] = 0.0f;
                }
                /* dQ[r0:r1] += dS K[0:r1];  dK[0:r1] += dS^T Q[r0:r1] */
                gr_gemm_tri_serial(GR_TRI_A_LOWER, r0, 0, 0, rb, HS, r1, 1.0f, dS, r1, k, ld, 1.0f,
                                   dq + (size_t)r0 * ld, ld);
                gr_gemm_tri_serial(GR_TRI_A_UPPER, -r0, 1, 0, r1, HS, rb, 1.0f, dS, r1,
                                   q + (size_t)r0 * ld, ld, 1.0f, dk, ld);
            }
        }
    }
}

void gr_attention_backward(float *dqkv, float *scratch, const float *dout, const float *qkv,
                           const float *att, const int32_t *seq_off, int n_seq,
                           int NH, int KVH, int HS)
{
    int Tb = longest(seq_off, n_seq), N = seq_off[n_seq] - seq_off[0];
    GR_PAR_RUN(gr_ops_threads((double)N * Tb * NH * HS * 4.0),
               attention_bwd(dqkv, scratch, dout, qkv, att, seq_off, n_seq, NH, KVH, HS, Tb));
}
