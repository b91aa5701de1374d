/* The Unicode classes used by the GPT-2 pre-tokenizer (internal to src/tok).
 * UTF-8 decoding/encoding (gr_utf8_decode, GR_UTF8_INVALID, ...) is in
 * genrec/common.h. */
#ifndef GENREC_TOK_UNICODE_H
#define GENREC_TOK_UNICODE_H

#include <stddef.h>
#include <stdint.h>

#include "genrec/common.h"

enum { GR_UC_LETTER = 1, GR_UC_NUMBER = 2, GR_UC_SPACE = 4 };

typedef struct gr_uc_range { uint32_t lo, hi; uint8_t cls; } gr_uc_range;
extern const gr_uc_range gr_uc_ranges[];
extern const int gr_uc_n_ranges;
extern const char gr_unicode_version[];

/* Class of a code point: GR_UC_LETTER, GR_UC_NUMBER, GR_UC_SPACE or 0. */
int gr_uc_class(uint32_t cp);

#endif
