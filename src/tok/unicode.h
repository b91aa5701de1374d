/* UTF-8 decoding/encoding and the Unicode classes used by the GPT-2
 * pre-tokenizer (internal to src/tok). */
#ifndef GENREC_TOK_UNICODE_H
#define GENREC_TOK_UNICODE_H

#include <stddef.h>
#include <stdint.h>

enum { GR_UC_LETTER = 1, GR_UC_NUMBER = 2, GR_UC_SPACE = 4 };

/* A code point returned for a byte that does not start a valid UTF-8
 * sequence: outside Unicode, class 0 ("other"). */
#define GR_UC_INVALID 0x110000u

typedef struct gr_uc_range { uint32_t lo, hi; uint8_t cls; } gr_uc_range;
extern const gr_uc_range gr_uc_ranges[];
extern const int gr_uc_n_ranges;
extern const char gr_unicode_version[];

/* Class of a code point: GR_UC_LETTER, GR_UC_NUMBER, GR_UC_SPACE or 0. */
int gr_uc_class(uint32_t cp);

/* Decode one code point from s[0..n) (n >= 1). Returns the bytes consumed
 * (1..4). Invalid/overlong/surrogate/truncated sequences consume exactly one
 * byte and give GR_UC_INVALID, so every byte string decodes losslessly. */
size_t gr_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* Encode cp (<= 0x10FFFF) into out; returns 1..4 (0 if cp is out of range). */
size_t gr_utf8_encode(uint32_t cp, char *out);

/* Byte length of the UTF-8 sequence a lead byte announces (1 for continuation
 * or invalid bytes), like llama.cpp's unicode_len_utf8. */
size_t gr_utf8_len(unsigned char lead);

#endif
