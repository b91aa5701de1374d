/* Incremental decoding for the language model (decode.h): embed the new
 * tokens, run the engine's cached forward, and compute the vocabulary logits
 * of the last new token of each sequence only. */
#include "genrec/decode.h"
#include "lm_internal.h"

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
    return gr_xent_logits(lm->h, lm->C, lm->pos, n_seq, gr_tfm_head(lm->tfm, 0), NULL, lm->V, lm->C, logits);
}
