/* libFuzzer target: any byte string round-trips exactly through a trained
 * byte-level BPE and through a SentencePiece vocabulary with byte fallback,
 * and the GPT-2 pre-tokenizer always tiles its input. */
#include "genrec/common.h"
#include "genrec/tokenizer.h"
#include "tok/tok_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static gr_tokenizer *bpe, *spm;

static void setup(void)
{
    static const char corpus[] =
        "Once upon a time, there was a little girl named Lily. She liked to play outside in the park with her dog. "
        "One day, the dog's ball rolled into the pond! \"Oh no,\" said Lily. 123 456 7890 caf\xC3\xA9 na\xC3\xAFve \xE4\xB8\xAD\xE6\x96\x87\n\n";
    char text[sizeof corpus * 20];
    size_t n = 0;
    for (int i = 0; i < 20; i++) { memcpy(text + n, corpus, sizeof corpus - 1); n += sizeof corpus - 1; }
    gr_bpe_train_opts o = {.vocab_size = 400, .min_frequency = 2, .specials = NULL, .n_specials = 0};
    bpe = gr_bpe_train(text, n, &o);
    /* SPM: <unk> <s> </s>, 256 byte tokens, then some pieces with scores */
    static const char *pieces[] = {"\xE2\x96\x81", "\xE2\x96\x81t", "he", "\xE2\x96\x81the", ("\xE2\x96\x81" "a"), "in",
                                   "e", "t", "h", "a", "n", "i", "o", "\xE2\x96\x81\xE2\x96\x81", "er", "\xC3\xA9"};
    int np = (int)(sizeof pieces / sizeof pieces[0]);
    spm = tok_new(GR_TOK_SPM, 259 + np);
    if (!bpe || !spm) abort();
    tok_set(spm, 0, "<unk>", 5, 0, GR_TOKEN_UNKNOWN);
    tok_set(spm, 1, "<s>", 3, 0, GR_TOKEN_CONTROL);
    tok_set(spm, 2, "</s>", 4, 0, GR_TOKEN_CONTROL);
    for (int b = 0; b < 256; b++) {
        char s[8];
        snprintf(s, sizeof s, "<0x%02X>", b);
        tok_set(spm, 3 + b, s, 6, 0, GR_TOKEN_BYTE);
    }
    for (int i = 0; i < np; i++) tok_set(spm, 259 + i, pieces[i], strlen(pieces[i]), -(float)i, GR_TOKEN_NORMAL);
    if (tok_index(spm)) abort();
    spm->bos = 1;
    spm->eos = 2;
    spm->unk = 0;
}

static void check_round_trip(const gr_tokenizer *t, const char *s, size_t n)
{
    int64_t k;
    int32_t *ids = gr_tokenizer_encode(t, s, n, 1, &k);
    if (!ids) abort();
    size_t dl;
    char *d = gr_tokenizer_decode(t, ids, k, &dl);
    if (!d || dl != n || memcmp(d, s, n)) abort();
    gr_free(d);
    gr_free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!bpe) setup();
    const char *s = (const char *)data;
    size_t np;
    size_t *ends = gr_pretok_gpt2(s, size, &np);
    if (!ends) abort();
    for (size_t i = 0; i < np; i++)
        if ((i ? ends[i] <= ends[i - 1] : ends[i] == 0) || (i + 1 == np && ends[i] != size)) abort();
    if (!np && size) abort();
    gr_free(ends);
    check_round_trip(bpe, s, size);
    /* SPM maps U+2581 to a space, so only inputs without it round-trip */
    if (!memmem(s, size, "\xE2\x96\x81", 3)) check_round_trip(spm, s, size);
    return 0;
}
