/* Transformer building blocks on plain float arrays (llm.c's contract).
 *
 * Every op is a forward/backward pair of plain functions with no hidden
 * state. Shapes are given in comments with fixed letters: N tokens (a packed
 * batch: sequence s is rows [seq_off[s], seq_off[s+1])), C channels, OC
 * output channels, F FFN width, NH query heads, KVH key/value heads, HS head
 * size, T a sequence length. All matrices are row-major.
 *
 * Backward functions ACCUMULATE (+=) into every gradient they are given
 * (dinp, dweight, dbias, ...); the caller zeroes gradients once per step.
 * Gradient pointers documented "may be NULL" are skipped.
 *
 * Threads: called from serial code, each op runs at most one OpenMP
 * parallel region with gr_threads_get() threads (serially for small inputs),
 * and serially when called from inside a parallel region. The transformer
 * passes instead open ONE region per pass and call every op from all of its
 * threads, the op sharing its work with orphaned worksharing (`omp for`), so
 * a pass does not fork and join once per op; src/engine/par.h describes the
 * mechanism (GR_PAR_RUN) and its rules. Results are deterministic for a
 * given thread count and identical either way; ops that reduce over tokens
 * (weight/bias gradients, positions) sum in a fixed order that does not
 * depend on the thread count.
 * None of them can fail: the few that use a small temporary (partial sums of
 * norm and bias gradients, O(16*C) floats) fall back to a slower
 * allocation-free path with identical results if malloc fails.
 */
#ifndef GENREC_OPS_H
#define GENREC_OPS_H
#include <stddef.h>
#include <stdint.h>
#include "genrec/rng.h"

/* ---- linear ---------------------------------------------------------------
 * inp (N, C), weight (OC, C) (PyTorch layout), bias (OC) or NULL
 * -> out (N, OC) = inp weight^T + bias. out must not alias inp. */
void gr_linear_forward(float *out, const float *inp, const float *weight,
                       const float *bias, int N, int C, int OC);
/* dinp (N, C) += dout weight; dweight (OC, C) += dout^T inp;
 * dbias (OC) += column sums of dout. dinp, dweight, dbias may be NULL. */
void gr_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, int N, int C, int OC);

/* ---- learned positions ----------------------------------------------------
 * out (N, C) = inp (N, C) + wpe[pos[i]] with wpe (maxT, C); out may equal inp.
 * pos[i] must be in [0, maxT) (checked by the caller). */
void gr_pos_embd_forward(float *out, const float *inp, const float *wpe,
                         const int32_t *pos, int N, int C);
/* dwpe[pos[i]] += dout[i] (the gradient w.r.t. inp is dout itself). */
void gr_pos_embd_backward(float *dwpe, const float *dout, const int32_t *pos, int N, int C);

/* ---- normalisation ---------------------------------------------------------
 * LayerNorm over the last dim: out = (inp - mean) * rstd * weight + bias.
 * inp (N, C), weight (C), bias (C) or NULL -> out (N, C), mean (N), rstd (N)
 * (mean/rstd may be NULL when no backward follows). out may equal inp only
 * when no backward follows. */
void gr_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                          const float *weight, const float *bias, int N, int C, float eps);
/* dinp (N, C) +=, dweight (C) +=, dbias (C) += (dbias may be NULL). */
void gr_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                           const float *inp, const float *weight, const float *mean,
                           const float *rstd, int N, int C);
/* RMSNorm (Llama): out = inp * rstd * weight, rstd = 1/sqrt(mean(inp^2) + eps).
 * rstd (N) may be NULL when no backward follows. */
void gr_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight,
                        int N, int C, float eps);
void gr_rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp,
                         const float *weight, const float *rstd, int N, int C);

/* ---- activations (elementwise over n values; out may equal inp) ---------- */
/* GELU, tanh approximation (GPT-2's gelu_new / torch approximate="tanh"). */
void gr_gelu_forward(float *out, const float *inp, int64_t n);
void gr_gelu_backward(float *dinp, const float *inp, const float *dout, int64_t n);
void gr_relu_forward(float *out, const float *inp, int64_t n);
void gr_relu_backward(float *dinp, const float *inp, const float *dout, int64_t n);
/* SwiGLU (Llama FFN): inp (N, 2F) holds [up | gate] per row (the fused
 * output of ffn_up and ffn_gate) -> out (N, F) = up * silu(gate). */
void gr_swiglu_forward(float *out, const float *inp, int N, int F);
/* dinp (N, 2F) += d[up | gate]. */
void gr_swiglu_backward(float *dinp, const float *inp, const float *dout, int N, int F);

/* ---- residual --------------------------------------------------------------
 * out (n) = a + b (out may equal a or b); backward: da += dout, db += dout
 * (either may be NULL). */
void gr_residual_forward(float *out, const float *a, const float *b, int64_t n);
void gr_residual_backward(float *da, float *db, const float *dout, int64_t n);

/* ---- dropout (training only) -----------------------------------------------
 * Inverted dropout: keep with probability 1-p and scale kept values by
 * 1/(1-p). mask (n bytes) records 1 = kept. Draws one 64-bit seed from rng;
 * element i's decision depends only on that seed and i (not on threads).
 * out may equal inp. p must be in [0, 1); p == 0 copies and sets mask to 1. */
void gr_dropout_forward(float *out, uint8_t *mask, const float *inp, int64_t n,
                        float p, gr_rng *rng);
/* Forward with a given mask: out = inp * mask / (1-p). */
void gr_dropout_apply(float *out, const uint8_t *mask, const float *inp, int64_t n, float p);
/* dinp += dout * mask / (1-p). */
void gr_dropout_backward(float *dinp, const float *dout, const uint8_t *mask, int64_t n, float p);

/* ---- rotary positions (RoPE, Llama: adjacent pairs) -------------------------
 * cs (maxT, HS/2, 2): cos and sin of pos * theta^(-2i/HS), computed in double.
 * HS must be even. */
void gr_rope_table(float *cs, int maxT, int HS, float theta);
/* Rotate, in place, n_heads heads of HS values per row: x (N, ld), head h at
 * columns [h*HS, (h+1)*HS) of each row (pass x offset to the q or k block).
 * Pair (2i, 2i+1) of token t is rotated by angle pos[t] * theta^(-2i/HS). */
void gr_rope_forward(float *x, int ld, const int32_t *pos, const float *cs,
                     int N, int n_heads, int HS);
/* Backward, in place: dx is rotated by the inverse angle (the rotation is
 * orthogonal), turning d(rotated) into d(unrotated). */
void gr_rope_backward(float *dx, int ld, const int32_t *pos, const float *cs,
                      int N, int n_heads, int HS);

/* ---- causal self-attention on a packed batch ------------------------------
 * qkv (N, (NH + 2*KVH)*HS): each row is [q (NH*HS) | k (KVH*HS) | v (KVH*HS)];
 * query head h uses kv head h / (NH/KVH) (grouped-query attention; KVH must
 * divide NH). Token i of sequence s attends to tokens of s at or before i,
 * scale 1/sqrt(HS). out (N, NH*HS) is the concatenation of the heads.
 *
 * att holds the softmax probabilities for backward: sequence s, head h is a
 * T_s x T_s block (row-major, zero above the diagonal) at float offset
 * seq_off[s] * Tb * NH + h * T_s * T_s, Tb = the longest sequence in the
 * batch; gr_attention_att_size() = N * Tb * NH floats, so memory is O(N*T),
 * never O(N^2). att may be NULL for inference (train == 0).
 * scratch needs gr_attention_scratch_size() floats (per-thread score rows). */
size_t gr_attention_att_size(const int32_t *seq_off, int n_seq, int NH);
size_t gr_attention_scratch_size(const int32_t *seq_off, int n_seq);
void gr_attention_forward(float *out, float *att, float *scratch, const float *qkv,
                          const int32_t *seq_off, int n_seq, int NH, int KVH, int HS);
/* dqkv (N, (NH+2KVH)*HS) += gradients w.r.t. q, k, v, given dout (N, NH*HS),
 * the forward's qkv and att. */
void gr_attention_backward(float *dqkv, float *scratch, const float *dout, const float *qkv,
                           const float *att, const int32_t *seq_off, int n_seq,
                           int NH, int KVH, int HS);

/* ---- shared helpers ------------------------------------------------------- */
/* Threads an op of `work` elementary operations should use (1 below a
 * threshold, 1 inside a parallel region, else gr_threads_get()). */
int gr_ops_threads(double work);

/* Passes (gr_tfm_forward, gr_tfm_backward, gr_tfm_forward_cached,
 * gr_lora_merge) run all their ops in one parallel region (on != 0, the
 * default) or call them from the calling thread, each op opening its own
 * region (on == 0: the behaviour before pass regions, for tests and
 * benchmarks; the results are identical). GENREC_PASS_REGION=0 in the
 * environment turns them off from the start. Not to be flipped while a pass
 * runs. Cannot fail. */
void gr_ops_set_pass_region(int on);
/* 1 when pass regions are on. */
int gr_ops_pass_region(void);

#endif
