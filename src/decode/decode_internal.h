/* Private helpers shared by the decoders in src/decode. */
#ifndef GENREC_DECODE_INTERNAL_H
#define GENREC_DECODE_INTERNAL_H

/* log-sum-exp of each of n rows of V logits into lse (n): vectorised exp
 * into scratch ((n, V) floats), summed in double; OpenMP over rows when the
 * work is large. */
void gr_decode_row_lse(const float *logits, int n, int V, double *lse, float *scratch);

#endif
