/* Items as text, prompts and supervised fine-tuning (SFT) samples for
 * generative recommendation (issue 4).
 *
 * An item is written as a short text rendered from its dataset fields (by
 * default its title; optionally with genres and brand, and without the
 * trailing " (1995)" year of MovieLens titles), or as any other string per
 * item (a semantic ID such as "<a_12><b_200><c_7><d_0>", see semid.h). A
 * gr_itemtext holds one string per item; every prompt function takes one,
 * so the same templates serve titles and semantic IDs.
 *
 * A prompt template (gr_prompt_tmpl) writes a user's last max_hist items and
 * ends with an answer marker; the answer is the target item's text followed by
 * the end marker (the tokenizer's EOS token id; in text form the caller
 * appends whatever it writes for EOS).
 *
 * Tokenization contract (the trie in trie.h relies on it). A training or
 * inference sequence is always
 *
 *     encode(instruction, BOS?) ++ encode(prompt body) ++ encode(answer) ++ [EOS]
 *
 * where each encode() runs on its own (no merges across the pieces). The
 * answer is never tokenized together with the prompt: with BPE, tokenizing
 * "...### Response: \n" + "\"Title\"\n" in one go can merge across the
 * boundary and give other ids than tokenizing the answer alone, and then a
 * trie built from the items' answers would not contain the trained target.
 * Training (gr_sft_build), the trie (gr_trie_build_answers) and decoding must
 * all use gr_prompt_encode / gr_answer_encode. With piecewise = 1 the prompt
 * body is tokenized piece by piece too (each history item on its own, cached),
 * which makes building many samples fast.
 */
#ifndef GENREC_ITEMTEXT_H
#define GENREC_ITEMTEXT_H
#include <stdint.h>

#include "genrec/dataset.h"
#include "genrec/split.h"
#include "genrec/tokenizer.h"

/* How to render an item from its dataset fields. Zero-initialised = title only. */
typedef struct gr_itemtext_opts {
    int with_genres;  /* append " [G1, G2]" (genres '|'-joined in the dataset) when the item has any */
    int with_brand;   /* append " by BRAND" when the item has a brand/studio/artist */
    int with_text;    /* append ". " + the first max_text_chars bytes of item_text (cut at a word) */
    int strip_year;   /* remove a trailing " (dddd)" year (and a trailing ", The"-style article is kept) */
    int32_t max_text_chars; /* for with_text; 0 = 200 */
} gr_itemtext_opts;

/* One text per item (valid UTF-8, never NULL, may be shared between items
 * only by value). Owned by whoever built it; free with gr_itemtext_free(). */
typedef struct gr_itemtext {
    int32_t n;     /* number of items */
    char **text;   /* [n] */
} gr_itemtext;

/* Remove a trailing year "(dddd)" (with the whitespace before it, and any
 * trailing whitespace after it) from s[0..n) in place; returns the new length
 * (s is NUL-terminated at it). "Toy Story (1995)" -> "Toy Story"; a title
 * that is only a year, or has no such suffix, is left as it is. */
size_t gr_itemtext_strip_year(char *s, size_t n);

/* Render item's text from d's fields under o (NULL = title only). An empty
 * title becomes "item KEY" so that every item has a non-empty text. Returns a
 * new string (free with gr_free) or NULL + error (bad item id, OOM). */
char *gr_itemtext_render(const gr_dataset *d, int32_t item, const gr_itemtext_opts *o);

/* Render every item of d. NULL + error on OOM. */
gr_itemtext *gr_itemtext_build(const gr_dataset *d, const gr_itemtext_opts *o);

/* A gr_itemtext holding copies of n strings (e.g. semantic-ID renderings).
 * NULL + error on OOM or a NULL string. */
gr_itemtext *gr_itemtext_from_strings(char *const *strs, int32_t n);

/* Free a gr_itemtext and its strings. NULL is fine. */
void gr_itemtext_free(gr_itemtext *t);

/* ---- prompt templates ------------------------------------------------------ */

typedef struct gr_prompt_tmpl {
    const char *name;
    const char *instruction; /* first prompt segment, tokenized on its own (BOS before it); "" = none */
    const char *header;      /* start of the prompt body, before the history */
    const char *item_open;   /* before each history item's text */
    const char *item_close;  /* after each history item's text */
    const char *item_sep;    /* between two history items */
    const char *footer;      /* after the history: ends the prompt (the answer marker) */
    const char *answer_open; /* answer = answer_open + target text + answer_close, then EOS */
    const char *answer_close;
    const char *category;    /* replaces every "{cat}" in instruction/header/footer; NULL = "items" */
    int32_t max_hist;        /* the prompt shows the last max_hist history items (0 = all) */
    int add_bos;             /* 1: BOS before the prompt (if the tokenizer has one); 0: no;
                                -1: as the tokenizer asks (gr_tokenizer_wants_bos) */
    int piecewise;           /* 1: tokenize header, each "item_open text item_close", each
                                separator and the footer on their own (fast, cached);
                                0: tokenize the prompt body as one text */
} gr_prompt_tmpl;

/* Compact template for small models trained from scratch: the history as one
 * line per item, then the answer marker "=>", then the answer:
 *     " Toy Story\n Heat\n=>" + " Casino" + EOS
 * Every item text is preceded by a space in the history and in the answer, so
 * with a GPT-2-style pre-tokenizer an item has the same tokens in both places.
 * max_hist 20, BOS on, piecewise. */
gr_prompt_tmpl gr_prompt_tmpl_compact(void);

/* The D3 / "Decoding Matters" prompt (SAI990323/DecodingMatters, code/dataset.py,
 * byte-exact, typos included; category e.g. "toys and games", NULL = "items"):
 *   instruction: "Below is an instruction that describes a task, paired with an input that
 *     provides further context. Write a response that appropriately completes the request. \n\n
 *     ### Instruction:\nGiven a list of {cat} the user recetenly enjoy, please write a new
 *     {cat} that the user may bought\n"
 *   body: "### User Input: \nThe user has palyed the following {cat}s before: \"t1\", \"t2\"
 *     \n\n### Response: \n"
 *   answer: "\"" title "\"\n" + EOS
 * max_hist 10, BOS on (D3 encodes the instruction with bos=True), not piecewise. */
gr_prompt_tmpl gr_prompt_tmpl_d3(const char *category);

/* The BIGRec movie prompt (SAI990323/BIGRec, Alpaca template of inference.py
 * with the movie instruction and input of data/movie/process.ipynb):
 *   "Below is an instruction that describes a task, paired with an input that provides further
 *   context. Write a response that appropriately completes the request.  \n\n### Instruction:\n
 *   Given a list of movies the user has watched before, please recommend a new movie that the
 *   user likes to the user.\n\n### Input:\nThe user has watched the following movies
 *   before:\"t1\", \"t2\"\n \n\n### Response:\n"   answer: "\"" title "\"" + EOS
 * max_hist 10, BOS as the tokenizer asks, not piecewise. */
gr_prompt_tmpl gr_prompt_tmpl_bigrec(void);

/* Select a template by name: "compact", "d3", "bigrec". GR_ERR + message
 * listing the names otherwise. category as for gr_prompt_tmpl_d3. */
int gr_prompt_tmpl_by_name(const char *name, const char *category, gr_prompt_tmpl *out);

/* The prompt text for the history hist[0..n) (oldest first; only the last
 * max_hist are shown): instruction + header + items + footer. New string
 * (gr_free) or NULL + error on a bad item id / OOM. */
char *gr_prompt_text(const gr_prompt_tmpl *t, const gr_itemtext *it, const int32_t *hist, int32_t n);

/* The answer text for item (answer_open + text + answer_close, no EOS). New
 * string or NULL + error. */
char *gr_answer_text(const gr_prompt_tmpl *t, const gr_itemtext *it, int32_t item);

/* Token ids of the prompt for hist[0..n) under the contract above (BOS, then
 * the instruction, then the body, each tokenized on its own). Returns a new
 * array (gr_free) of *n_ids ids or NULL + error. */
int32_t *gr_prompt_encode(const gr_prompt_tmpl *t, const gr_tokenizer *tok, const gr_itemtext *it,
                          const int32_t *hist, int32_t n, int64_t *n_ids);

/* Token ids of item's answer: encode(answer text) followed by the EOS id.
 * NULL + error when the tokenizer has no EOS, on a bad id or OOM. */
int32_t *gr_answer_encode(const gr_prompt_tmpl *t, const gr_tokenizer *tok, const gr_itemtext *it,
                          int32_t item, int64_t *n_ids);

/* ---- training samples ---------------------------------------------------------- */

/* The training samples of split s as queries: for every user and every
 * position i >= 1 of the user's training sequence, history = the previous
 * (at most max_hist, 0 = all) items, target = item i. Under loo/c20 this is
 * every prefix of each training sequence; under ts these are exactly the
 * protocol's training samples (a user's training sequence is the prefix whose
 * samples are in train). hist points into s (s must outlive the result);
 * cand is NULL; time is the target's time. Ordered by user, then position.
 * Returns a new array (gr_free) of *n queries (non-NULL even when 0) or NULL
 * + error on OOM. */
gr_query *gr_rec_train_queries(const gr_split *s, int32_t max_hist, int64_t *n);

/* How often each item occurs in s's training sequences, as doubles (a
 * popularity for tie-breaking). New array [n_items] (gr_free) or NULL + error. */
double *gr_rec_train_counts(const gr_split *s);

/* Tokenized SFT samples: sample k is ids[off[k] .. off[k+1]) = prompt ids
 * (prompt_len[k] of them) followed by the answer ids (ending with EOS);
 * mask[j] = 1 exactly on answer tokens (the loss covers the answer only). */
typedef struct gr_sft_set {
    int64_t n;
    int64_t *off;        /* [n+1] */
    int32_t *ids;        /* [off[n]] */
    uint8_t *mask;       /* [off[n]] */
    int32_t *prompt_len; /* [n] */
    int32_t *user;       /* [n] */
    int32_t *target;     /* [n] */
    int32_t *hist_used;  /* [n] history items shown after fitting into max_len */
    int64_t n_shortened; /* samples whose history was cut to fit max_len */
    int64_t n_cut;       /* samples that still did not fit and lost prompt tokens on the left */
} gr_sft_set;

/* Build the SFT samples of queries q[0..nq) (e.g. from gr_rec_train_queries)
 * with template t, item texts it and tokenizer tok. With max_len > 0 a
 * sample longer than max_len tokens drops its oldest history items until it
 * fits; if even the prompt without history is too long, prompt tokens are cut
 * from the left (after BOS) so that the answer stays whole. Parallel over
 * samples (OpenMP), deterministic. NULL + error (bad ids, no EOS, OOM). Free
 * with gr_sft_free(). */
gr_sft_set *gr_sft_build(const gr_query *q, int64_t nq, const gr_prompt_tmpl *t,
                         const gr_tokenizer *tok, const gr_itemtext *it, int32_t max_len);

/* Free an SFT set. NULL is fine. */
void gr_sft_free(gr_sft_set *s);

/* Corpus text for training a byte-level BPE (gr_bpe_train) that will be used
 * with template t: every item text as it appears in an answer and in a
 * history, one per line, then the template's fixed text (instruction, header,
 * separators, footer, {cat} substituted) repeated 4 times so that its words
 * pass a min_frequency of 2. New NUL-terminated string (gr_free), *len its
 * length (may be NULL); NULL + error on OOM. */
char *gr_rec_corpus(const gr_prompt_tmpl *t, const gr_itemtext *it, size_t *len);

#endif
