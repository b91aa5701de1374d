/* Private helpers shared by the decoders in src/decode. */
#ifndef GENREC_DECODE_INTERNAL_H
#define GENREC_DECODE_INTERNAL_H
#include <stdint.h>

/* log-sum-exp of each of n rows of V logits into lse (n): vectorised exp
 * into scratch ((n, V) floats), summed in double; OpenMP over rows when the
 * work is large. */
void gr_decode_row_lse(const float *logits, int n, int V, double *lse, float *scratch);

/* Concatenate the G prompts (prompts[u][0 .. plen[u])) into one new array
 * (gr_free) of *n_tokens ids for one prefill step: off[u] .. off[u+1] are
 * prompt u's rows (off has G + 1 entries) and slot[u] = u * slots_per_user
 * its KV-cache slot. NULL on OOM. */
int32_t *gr_decode_pack_prompts(const int32_t *const *prompts, const int64_t *plen, int G, int slots_per_user,
                                int32_t *off, int32_t *slot, int64_t *n_tokens);

#endif
