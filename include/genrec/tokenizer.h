/* Tokenizers: byte-level BPE (GPT-2) and SentencePiece-style BPE (llama).
 *
 * One gr_tokenizer type covers both:
 *   - GR_TOK_BPE: GPT-2 byte-level BPE. Text is split by the GPT-2
 *     pre-tokenizer regex (implemented by hand), each piece's bytes are mapped
 *     to the byte-to-unicode alphabet and merged by merge rank. Encoding then
 *     decoding gives back the exact input bytes, valid UTF-8 or not.
 *   - GR_TOK_SPM: SentencePiece BPE as in llama.cpp's llm_tokenizer_spm and
 *     llama2.c: spaces become U+2581, a dummy-prefix space is added, pieces are
 *     merged greedily by score, characters outside the vocab fall back to
 *     <0xNN> byte tokens. Round-trips any input through byte fallback (the
 *     decoder drops the dummy-prefix space).
 *
 * Loaders: GGUF metadata (tokenizer.ggml.*), GPT-2 encoder.json + vocab.bpe,
 * Hugging Face tokenizer.json (BPE model with a ByteLevel pre-tokenizer), and
 * llama2.c tokenizer.bin. gr_tokenizer_load() picks one from the path.
 *
 * A loaded tokenizer is immutable; encode/decode may run concurrently on it.
 * Special tokens in the input text are never parsed: "<s>" is plain text.
 */
#ifndef GENREC_TOKENIZER_H
#define GENREC_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "genrec/gguf.h"

typedef enum gr_tok_kind { GR_TOK_BPE = 1, GR_TOK_SPM = 2 } gr_tok_kind;

/* Token types (tokenizer.ggml.token_type). */
enum {
    GR_TOKEN_NORMAL = 1, GR_TOKEN_UNKNOWN = 2, GR_TOKEN_CONTROL = 3,
    GR_TOKEN_USER_DEFINED = 4, GR_TOKEN_UNUSED = 5, GR_TOKEN_BYTE = 6
};

typedef struct gr_tokenizer gr_tokenizer;

/* Load from a path: a GGUF file (by magic), a llama2.c tokenizer.bin, a HF
 * tokenizer.json (*.json), or a directory holding encoder.json + vocab.bpe
 * (or tokenizer.json). NULL with an error on failure. */
gr_tokenizer *gr_tokenizer_load(const char *path);
/* From the tokenizer.ggml.* keys of an open GGUF (model "gpt2" or "llama").
 * Copies everything it needs: g may be closed afterwards. */
gr_tokenizer *gr_tokenizer_from_gguf(const gr_gguf *g);
/* GPT-2's encoder.json + vocab.bpe. */
gr_tokenizer *gr_tokenizer_load_gpt2(const char *encoder_json, const char *vocab_bpe);
/* A Hugging Face tokenizer.json with a byte-level BPE model. bos/eos come from
 * a tokenizer_config.json next to it when present, else "<|endoftext|>". */
gr_tokenizer *gr_tokenizer_load_hf_json(const char *path);
/* A llama2.c tokenizer.bin (int32 max_token_length, then per token f32
 * score, int32 length, bytes). Spaces are stored as U+2581 internally like
 * GGUF llama vocabularies; bos = 1, eos = 2. */
gr_tokenizer *gr_tokenizer_load_llama2c(const char *path);
void gr_tokenizer_free(gr_tokenizer *t);

/* Encode len bytes of text. Prepends the BOS token when add_bos is set and
 * the tokenizer has one. Returns a malloc'd array of *n_ids ids (free with
 * gr_free; non-NULL even when *n_ids == 0), or NULL with an error (OOM). */
int32_t *gr_tokenizer_encode(const gr_tokenizer *t, const char *text, size_t len, int add_bos, int64_t *n_ids);

/* The bytes a token decodes to (byte tokens -> one byte, U+2581 -> space,
 * byte-level alphabet -> raw bytes; control tokens -> their text), and its
 * length. NULL for an id out of range. Owned by the tokenizer. */
const char *gr_tokenizer_piece(const gr_tokenizer *t, int32_t id, size_t *len);
/* Decode a sequence: concatenated pieces, control tokens skipped, and for SPM
 * with a dummy prefix the leading space of the first piece dropped.
 * malloc'd, NUL-terminated (free with gr_free); *len may be NULL. */
char *gr_tokenizer_decode(const gr_tokenizer *t, const int32_t *ids, int64_t n, size_t *len);

gr_tok_kind gr_tokenizer_kind(const gr_tokenizer *t);
int32_t gr_tokenizer_n_vocab(const gr_tokenizer *t);
/* Vocabulary entry as stored (byte-level alphabet / U+2581 form), NUL-terminated. */
const char *gr_tokenizer_token(const gr_tokenizer *t, int32_t id);
float gr_tokenizer_score(const gr_tokenizer *t, int32_t id);
int gr_tokenizer_token_type(const gr_tokenizer *t, int32_t id);
/* Id of the vocabulary entry equal to text[0..len), or -1. */
int32_t gr_tokenizer_find(const gr_tokenizer *t, const char *text, size_t len);
/* Special ids (-1 when absent). */
int32_t gr_tokenizer_bos(const gr_tokenizer *t);
int32_t gr_tokenizer_eos(const gr_tokenizer *t);
/* Whether the vocabulary asks for BOS/EOS to be added by default
 * (tokenizer.ggml.add_bos_token / add_eos_token; SPM defaults to BOS). */
int gr_tokenizer_wants_bos(const gr_tokenizer *t);
int gr_tokenizer_wants_eos(const gr_tokenizer *t);
int64_t gr_tokenizer_n_merges(const gr_tokenizer *t);

/* Store the tokenizer as tokenizer.ggml.* keys (model, pre, tokens, scores,
 * token_type, merges, special ids, add_* flags) into a GGUF builder. */
int gr_tokenizer_to_gguf(const gr_tokenizer *t, gr_gguf_builder *b);

/* GPT-2 pre-tokenizer: split text into pieces following
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * Bytes that are not valid UTF-8 count as [^\s\p{L}\p{N}]. Writes piece end
 * offsets (exclusive, strictly increasing, last == len) into a malloc'd
 * array (free with gr_free). NULL with an error on OOM. */
size_t *gr_pretok_gpt2(const char *text, size_t len, size_t *n_pieces);

/* ---- training ------------------------------------------------------------------- */

typedef struct gr_bpe_train_opts {
    int32_t vocab_size;      /* target size incl. 256 byte tokens and specials */
    int64_t min_frequency;   /* stop when the best pair occurs fewer times (default 2) */
    const char *const *specials; /* control tokens appended after the merges, e.g. "<|endoftext|>" */
    int n_specials;
} gr_bpe_train_opts;

/* Train a byte-level BPE vocabulary on text[0..len): count GPT-2 pre-tokenized
 * words, then repeatedly merge the most frequent adjacent pair (ties: smaller
 * left id, then smaller right id) with incremental pair-count updates, until
 * vocab_size is reached or the best pair is rarer than min_frequency. Token
 * ids: 0..255 the bytes (GPT-2 alphabet text), then new tokens in merge
 * order (a merge whose text already exists reuses that token), then the
 * specials (the first one is bos and eos). Returns a GR_TOK_BPE tokenizer or
 * NULL with an error. */
gr_tokenizer *gr_bpe_train(const char *text, size_t len, const gr_bpe_train_opts *opts);

#endif
