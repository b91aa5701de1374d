/* The GPT-2 pre-tokenizer regex, implemented by hand:
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * The alternatives are tried in order at each position, exactly like a
 * backtracking regex engine would (the only backtracking case is \s+(?!\S),
 * which gives back the last whitespace when a non-space follows). */
#include "genrec/common.h"
#include "genrec/tokenizer.h"
#include "tok/unicode.h"

#include <stdlib.h>

typedef struct cps { uint32_t *cp; size_t *off; uint8_t *cls; size_t n; } cps;

#define CLS(i) ((i) < c.n ? c.cls[i] : 0xFF) /* 0xFF: past the end */

size_t *gr_pretok_gpt2(const char *text, size_t len, size_t *n_pieces)
{
    const unsigned char *s = (const unsigned char *)text;
    cps c = {malloc((len + 1) * sizeof(uint32_t)), malloc((len + 1) * sizeof(size_t)), malloc(len + 1), 0};
    size_t *ends = malloc((len + 1) * sizeof(size_t));
    *n_pieces = 0;
    if (!c.cp || !c.off || !c.cls || !ends) {
        free(c.cp); free(c.off); free(c.cls); free(ends);
        gr_errorf("pre-tokenizer: out of memory for %zu bytes", len);
        return NULL;
    }
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t k = gr_utf8_decode(s + i, len - i, &cp);
        c.cp[c.n] = cp;
        c.off[c.n] = i;
        c.cls[c.n] = (uint8_t)(cp == GR_UTF8_INVALID ? 0 : gr_uc_class(cp));
        c.n++;
        i += k;
    }
    c.off[c.n] = len;
    size_t np = 0, pos = 0;
    while (pos < c.n) {
        uint32_t ch = c.cp[pos];
        size_t end;
        /* contractions */
        if (ch == '\'' && pos + 1 < c.n) {
            uint32_t c1 = c.cp[pos + 1];
            if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') { end = pos + 2; goto emit; }
            if (pos + 2 < c.n) {
                uint32_t c2 = c.cp[pos + 2];
                if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) { end = pos + 3; goto emit; }
            }
        }
        {
            size_t p = pos + (ch == ' ');
            int cls = ch == ' ' ? CLS(pos + 1) : CLS(pos);
            if (cls == GR_UC_LETTER || cls == GR_UC_NUMBER) {      /* ' ?\p{L}+' and ' ?\p{N}+' */
                end = p;
                while (end < c.n && c.cls[end] == cls) end++;
                goto emit;
            }
            if (cls == 0) {                                         /* ' ?[^\s\p{L}\p{N}]+' */
                end = p;
                while (end < c.n && c.cls[end] == 0) end++;
                goto emit;
            }
            size_t k = 0;                                           /* whitespace */
            while (pos + k < c.n && c.cls[pos + k] == GR_UC_SPACE) k++;
            if (k > 1 && pos + k < c.n) { end = pos + k - 1; goto emit; } /* \s+(?!\S) */
            if (k > 0) { end = pos + k; goto emit; }                    /* \s+ */
            end = pos + 1;                                             /* not reachable */
        }
    emit:
        ends[np++] = c.off[end];
        pos = end;
    }
    free(c.cp);
    free(c.off);
    free(c.cls);
    *n_pieces = np;
    return ends;
}
