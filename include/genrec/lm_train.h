/* Language-model training data and the LM side of the generic trainer
 * (genrec/train.h).
 *
 * Text data: a UTF-8 file is cut into documents (paragraphs separated by
 * blank lines, single lines, or the whole file), each document tokenized on
 * its own, and the token stream laid out as  SEP doc SEP doc ...  where SEP
 * is the tokenizer's end-of-text token (when it has one). The stream is split
 * into a training part and a validation part (the last valid_frac of the
 * tokens, moved to the next document boundary when one is near).
 *
 * Batches (gr_lm_loader): the stream is cut into windows of T+1 tokens
 * (window w starts at token w*T); a batch is B windows, packed end to end
 * (N = B*T rows, no padding); targets are the next tokens. Inside a window a
 * new sequence starts at every SEP token, so attention never crosses a
 * document boundary and positions restart at 0 for each document. Training
 * windows come in a fresh random order every epoch (from the seed and the
 * epoch number); validation windows in file order. The cursor (epoch,
 * index) is all the state there is, so a checkpoint restores it exactly.
 */
#ifndef GENREC_LM_TRAIN_H
#define GENREC_LM_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "genrec/lm.h"
#include "genrec/tokenizer.h"
#include "genrec/train.h"

typedef enum gr_lm_docs {
    GR_LM_DOCS_PARAGRAPH = 0,  /* documents are separated by blank lines */
    GR_LM_DOCS_LINE,           /* every non-empty line is a document */
    GR_LM_DOCS_NONE            /* the whole text is one document */
} gr_lm_docs;

typedef struct gr_lm_data {
    int32_t *tokens;      /* the stream (owned, gr_free) */
    int64_t n_tokens;
    int64_t n_train;      /* train = tokens[0, n_train), valid = tokens[n_train, n_tokens) */
    int64_t n_docs;
    int32_t sep;          /* separator token, -1 = none */
} gr_lm_data;

/* Tokenize text[0..len) with tok into d (see the top). valid_frac in [0,
 * 0.5]. GR_ERR + error on invalid arguments or OOM; d is then empty. */
int gr_lm_data_from_text(gr_lm_data *d, const char *text, size_t len, const gr_tokenizer *tok,
                         gr_lm_docs docs, double valid_frac);
void gr_lm_data_free(gr_lm_data *d);

/* A byte-level BPE tokenizer trained on text (gr_bpe_train) with
 * vocab_size entries at most, including the 256 bytes and one special
 * "<|endoftext|>" (bos/eos, the document separator). NULL + error. */
gr_tokenizer *gr_lm_train_tokenizer(const char *text, size_t len, int32_t vocab_size);

typedef struct gr_lm_loader {
    const int32_t *tokens;   /* borrowed stream part */
    int64_t n;
    int B, T;
    int32_t sep;
    int shuffle;
    uint64_t seed;
    int64_t n_windows;
    int64_t epoch, index;    /* the cursor */
    int32_t *perm;           /* order of this epoch (shuffle) */
    int64_t perm_epoch;      /* epoch perm was made for (-1: none) */
    int32_t *tok, *tgt, *seq_off;
    gr_lm_batch batch;
} gr_lm_loader;

/* A loader over tokens[0..n) (borrowed) with B windows of T tokens per batch;
 * shuffle = random window order per epoch from seed. Needs n >= T + 1.
 * GR_ERR + error. */
int gr_lm_loader_init(gr_lm_loader *L, const int32_t *tokens, int64_t n, int B, int T, int32_t sep,
                      int shuffle, uint64_t seed);
void gr_lm_loader_free(gr_lm_loader *L);
/* The next batch of B windows (wrapping into the next epoch), or with
 * max_windows > 0 at most that many windows without wrapping (validation:
 * *out = NULL at the end of the epoch). The batch is owned by L and valid
 * until the next call. GR_ERR on OOM. */
int gr_lm_loader_next(gr_lm_loader *L, int max_windows, const gr_lm_batch **out);
/* Move the cursor (validated: GR_ERR when index >= n_windows or epoch < 0). */
int gr_lm_loader_seek(gr_lm_loader *L, int64_t epoch, int64_t index);

/* The LM task for gr_trainer: the model, training and validation loaders. */
typedef struct gr_lm_task {
    gr_lm *lm;
    gr_lm_loader train, valid;
    int has_valid;
    int64_t max_valid_windows; /* cap on windows per validation (0 = all) */
} gr_lm_task;

/* Set up the task over data d (borrowed) for lm (borrowed) with B x T
 * batches, the training order from seed. Validation is skipped when the
 * validation part has fewer than 2 tokens; its windows are min(T, n_valid -
 * 1) long. GR_ERR + error (too little data for T, ...). */
int gr_lm_task_init(gr_lm_task *t, gr_lm *lm, const gr_lm_data *d, int B, int T, uint64_t seed);
void gr_lm_task_free(gr_lm_task *t);
/* The callback table for gr_trainer_new (ctx = t). save_state writes the
 * model description (gr_lm_to_gguf without tensors, tokenizer included) and
 * the cursor (genrec.data.*); load_state checks the data shape (B, T,
 * window count, seed) and restores the cursor. */
gr_train_task gr_lm_task_callbacks(gr_lm_task *t);

#endif
