/* Incremental decoding for the language model (decode.h): embed the new
 * tokens, run the engine's cached forward, and compute the vocabulary logits
 * of the last new token of each sequence only. */
#include "genrec/decode.h"
#include "lm_internal.h"
#include "engine/vmath.h"
#include "genrec/gemm.h"
#include "genrec/ops.h"

#include <string.h>

/* Logits of a few rows (single-stream decoding): dot products with the
 * head's rows (its bf16 copy W16 when the cache holds one), in parallel over
 * the vocabulary. A GEMM would pack the whole head at every call, which
 * costs more than the product for a handful of rows (GR_DECODE_DOT_ROWS). */

static void logits_rows(const gr_lm *lm, const float *W, const uint16_t *W16, int n, float *out)
{
    const int V = lm->V, C = lm->C;
    const int nt = gr_ops_threads((double)n * V * C);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int v = 0; v < V; v++)
        for (int i = 0; i < n; i++) {
            const float *x = lm->h + (size_t)lm->pos[i] * C;
            out[(size_t)i * V + v] = W16 ? gr_vdot_bf16(x, W16 + (size_t)v * C, C) : gr_vdot(x, W + (size_t)v * C, C);
        }
}

gr_kv_cache *gr_lm_kv_cache_init(const gr_lm *lm, int n_slots, int max_T)
{
    if (!lm) { gr_errorf("kv cache: language model is NULL"); return NULL; }
    return gr_kv_cache_init(gr_lm_config(lm), n_slots, max_T);
}

int gr_lm_decode_step(gr_lm *lm, gr_kv_cache *c, const int32_t *tokens, const int32_t *slots,
                      const int32_t *seq_off, int n_seq, int N, float *logits)
{
    if (!lm || !c) return gr_errorf("decode step: model or cache is NULL");
    if (N < 0 || n_seq < 0 || !seq_off || (N > 0 && !tokens))
        return gr_errorf("decode step: malformed batch (N %d, n_seq %d, NULL tokens or seq_off)", N, n_seq);
    if (seq_off[0] != 0 || seq_off[n_seq] != N)
        return gr_errorf("decode step: seq_off must run from 0 to N (%d)", N);
    if (logits)
        for (int s = 0; s < n_seq; s++)
            if (seq_off[s + 1] <= seq_off[s])
                return gr_errorf("decode step: sequence %d has no new token to take logits from", s);
    if (gr_lm_reserve(lm, N > 0 ? N : 1) != GR_OK) return GR_ERR;
    if (gr_lm_embed(lm, tokens, N, lm->x) != GR_OK) return GR_ERR;
    if (gr_tfm_forward_cached(lm->tfm, c, lm->x, slots, seq_off, n_seq, N, lm->h) != GR_OK) return GR_ERR;
    if (!logits || n_seq == 0) return GR_OK;
    /* N >= n_seq here (no empty sequence), so lm->pos can hold the rows */
    for (int s = 0; s < n_seq; s++) lm->pos[s] = seq_off[s + 1] - 1;
    const float *W = gr_tfm_head(lm->tfm, 0);
    const uint16_t *W16 = gr_kv_cache_bf16_head(c, lm->tfm);
    if (n_seq <= GR_DECODE_DOT_ROWS) {
        logits_rows(lm, W, W16, n_seq, logits);
        return GR_OK;
    }
    const float *Wp = gr_kv_cache_packed_head(c, lm->tfm);
    if (!W16 && !Wp) return gr_xent_logits(lm->h, lm->C, lm->pos, n_seq, W, NULL, lm->V, lm->C, logits);
    float *tmp = gr_alloc((size_t)n_seq * (size_t)lm->C, sizeof(float));
    if (!tmp) return gr_error_prefix("decode step logits: ");
    for (int s = 0; s < n_seq; s++)
        memcpy(tmp + (size_t)s * lm->C, lm->h + (size_t)lm->pos[s] * lm->C, sizeof(float) * (size_t)lm->C);
    if (Wp) gr_gemm_packed(0, n_seq, lm->V, lm->C, 1.0f, tmp, lm->C, Wp, NULL, 0.0f, logits, lm->V);
    else gr_gemm_bf16(0, 1, n_seq, lm->V, lm->C, 1.0f, tmp, lm->C, W16, lm->C, 0.0f, logits, lm->V);
    gr_free(tmp);
    return GR_OK;
}
