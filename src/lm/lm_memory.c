/* Scratch memory of a language model (genrec/memstat.h). */
#include "genrec/memstat.h"
#include "lm_internal.h"

#include <malloc.h>

static size_t usable(const void *p) { return p ? malloc_usable_size((void *)p) : 0; }

size_t gr_lm_scratch_bytes(const gr_lm *lm)
{
    return usable(lm->x) + usable(lm->h) + usable(lm->dh) + usable(lm->pos) + usable(lm->logit_buf) +
           usable(lm->xent.buf) + usable(lm->xent.idx) + usable(lm->xent.dbuf);
}
