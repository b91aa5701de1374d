/* Memory accounting for training: what the engine's buffers hold, and the
 * process's peak resident set, so benchmarks can compare the peak against
 * params + grads + AdamW moments + activations. */
#ifndef GENREC_MEMSTAT_H
#define GENREC_MEMSTAT_H

#include <stddef.h>
#include <stdint.h>

#include "genrec/lm.h"
#include "genrec/transformer.h"

/* Bytes currently allocated for m's activations and backward buffers
 * (activation slab, attention probabilities, attention scratch, dropout
 * masks, per-batch position/offset copies), as reserved by the allocator. */
size_t gr_tfm_activation_bytes(const gr_tfm *m);

/* Bytes of lm's own scratch outside the transformer (embeddings in/out,
 * their gradients, positions, logit chunks, cross-entropy workspace). */
size_t gr_lm_scratch_bytes(const gr_lm *lm);

/* Peak resident set size of this process (VmHWM from /proc/self/status) and
 * the current one (VmRSS), in bytes; 0 when unavailable. */
size_t gr_mem_peak_rss(void);
size_t gr_mem_rss(void);

#endif
