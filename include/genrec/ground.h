/* BIGRec-style grounding: let the language model write an answer freely
 * (no trie), then map the text to catalogue items by the distance between
 * embeddings, optionally adjusted by popularity or a collaborative score
 * (BIGRec, "A Bi-Step Grounding Paradigm", SAI990323/BIGRec; see
 * docs REFERENCE-llm-rec.md section 2).
 *
 * Stage 1, generate (gr_ground_generate): greedy decoding by default, or an
 * unconstrained beam search returning the best sequence (BIGRec decodes with
 * 4 beams and grounds predict[0]). The prompts of a group are prefilled once
 * in one batch, beams share their prompt's KV rows, and every step advances
 * all live sequences of the group as one batched decoding step.
 *
 * Stage 2, ground (gr_grounder): every item's answer ids (the tokens the
 * model writes for it, without the end marker) and every generation are
 * embedded the same way, e(x) = the final hidden state (after the final
 * norm) of the last token (GR_POOL_LAST, BIGRec's choice) or the mean over
 * the tokens (GR_POOL_MEAN), each text on its own from position 0. BIGRec
 * embeds with the frozen, un-finetuned base LLM (LLaMA-7B); genrec's models
 * are trained from scratch, so the caller passes whichever model should
 * serve as the embedder (usually the same fine-tuned model, or its
 * checkpoint before fine-tuning). Then
 *
 *     d[q, i]  = || e(gen_q) - e(item_i) ||_2                (torch.cdist p=2)
 *     d~[q, i] = row-wise min-max of d                         (in [0, 1])
 *     p~[i]    = min-max over items of a prior (popularity counts; min-max of
 *                count / sum(count) is the same), or p~[q, i] = row-wise
 *                min-max of a per-query collaborative score (SASRec, ...)
 *     s[q, i]  = (1 + p~)^(-gamma) * d~,  ranked ascending
 *
 * gamma = 0 is pure embedding distance; larger gamma pulls popular (high
 * prior) items up. BIGRec picks gamma on validation per K from {0, 1, ...,
 * 99} (CF variant: {0, 0.01, ..., 0.99, 1, ..., 99}); gr_ground_distances
 * once + gr_ground_adjust per gamma does that cheaply. genrec's ranking
 * convention is "higher is better", so the returned scores are -s (in
 * [-1, 0]) and plug directly into a scores (n, n_items) matrix for the
 * evaluation. A generation whose ids equal some item's answer ids exactly is
 * "valid" (BIGRec reports how many are not).
 *
 * Distances are computed as sqrt(max(0, |a|^2 + |b|^2 - 2 a.b)) with one
 * gr_gemm per chunk of queries, on embeddings centred on the items' mean
 * (distances do not change; cancellation does shrink): the distance of a
 * generation to the item it reproduces is 0 up to rounding (about 1e-3 of
 * the embedding's norm at worst), far below the gaps between distinct items.
 *
 * Threads and ownership: a grounder borrows its model (which must outlive
 * it and is used again by the scoring calls) and owns the item embeddings
 * (n_items * d_model floats). Like gr_lm, one grounder and its model must
 * not be used from two threads at once; the work inside is OpenMP-parallel.
 */
#ifndef GENREC_GROUND_H
#define GENREC_GROUND_H

#include <stdint.h>

#include "genrec/lm.h"

/* ---- stage 1: unconstrained generation ----------------------------------------- */

typedef struct gr_ground_opts {
    int32_t eos;      /* end token: generation stops after it (excluded from the output); required */
    int max_new;      /* at most this many new tokens (default 64; BIGRec 128) */
    int n_beams;      /* 1 = greedy argmax (default); > 1 = beam search, best sequence returned */
    float lambda;     /* beams: a finished sequence scores sum(log p) / len^lambda, len = its new
                         tokens including the end token (default 1, Hugging Face's
                         length_penalty) */
    int group;        /* prompts decoded together (default 16) */
} gr_ground_opts;

/* Defaults: eos -1 (must be set), max_new 64, greedy, lambda 1, group 16. */
gr_ground_opts gr_ground_opts_default(void);

/* Generate a continuation of each of n prompts (prompt u = prompts[u][0 ..
 * prompt_len[u]), token ids ending where the answer starts). Greedy: the
 * argmax token at every step. Beams (n_beams = B > 1): Hugging Face's beam
 * search over the full vocabulary without sampling: every step the best 2B
 * expansions of a prompt's live beams are ranked by the sum of token
 * log-probabilities; an end token ranked among the first B finishes a
 * hypothesis, the best B others live on; search stops when B hypotheses are
 * finished and no live beam's normalised score beats the worst of them, or
 * at the length limit (live beams then count as finished). Generation stops
 * at o->eos, after max_new tokens, or when the model's context (max_T) is
 * full, whichever comes first.
 * out_ids[u] receives a new array (the caller frees it with gr_free; never
 * NULL on success, even for an empty generation) of out_len[u] token ids,
 * the end token excluded. GR_ERR + error, with every out_ids[u] NULL, on bad
 * options (eos outside the vocabulary, max_new < 1, n_beams outside [1,
 * 256]), an empty prompt or one that fills the context, a token outside the
 * vocabulary, or OOM. */
int gr_ground_generate(gr_lm *lm, const int32_t *const *prompts, const int64_t *prompt_len, int n,
                       const gr_ground_opts *o, int32_t **out_ids, int64_t *out_len);

/* ---- stage 2: grounding -------------------------------------------------------- */

typedef struct gr_grounder gr_grounder;

/* Embed every item: item i's answer ids are item_ids[i][0 .. item_len[i])
 * (the tokens the model writes for it, end marker excluded, 1 <= len <=
 * max_T), pooled with pool, in batches. lm is borrowed (it must outlive the
 * grounder). Returns a new grounder (gr_grounder_free) or NULL + error
 * naming the item for n_items < 1, an empty or too long item, a token
 * outside the vocabulary, an unknown pool, or OOM. */
gr_grounder *gr_grounder_init(gr_lm *lm, const int32_t *const *item_ids, const int64_t *item_len,
                              int32_t n_items, gr_pool pool);

/* Free a grounder (not its model). NULL is fine. */
void gr_grounder_free(gr_grounder *g);

int32_t gr_grounder_n_items(const gr_grounder *g);
/* The item embeddings, (n_items, d_model), centred on their mean (owned by
 * g; distances between them are those of the raw embeddings). */
const float *gr_grounder_item_emb(const gr_grounder *g);

/* Embed n generations (gen_ids[q][0 .. gen_len[q]), end marker excluded)
 * like the items and write their Euclidean distances to every item into
 * dist (n, n_items, caller's). An empty generation has no embedding: its row
 * is all +INFINITY (gr_ground_adjust then leaves the ranking to the prior).
 * is_valid (n, or NULL) gets 1 where the generation equals some item's ids
 * exactly, else 0; *n_invalid (or NULL) their count of 0s. GR_ERR + error
 * naming the query for a generation longer than the model's context or with
 * a token outside the vocabulary, or OOM. */
int gr_ground_distances(gr_grounder *g, const int32_t *const *gen_ids, const int64_t *gen_len, int n,
                        float *dist, int *is_valid, int *n_invalid);

/* BIGRec's adjustment, for n queries over n_items items: scores (n,
 * n_items) = -(1 + p~)^(-gamma) * d~ (higher is better) from raw distances
 * dist (n, n_items; scores may equal dist). d~ is the row-wise min-max of
 * dist; a row that is constant or not all finite gets d~ = 1 everywhere (no
 * distance information: the prior alone decides). p~ is the min-max over
 * items of prior (n_items, e.g. popularity counts) or the row-wise min-max
 * of cf_rows (n, n_items); both NULL means no adjustment (p~ = 0), a
 * constant prior or row gives p~ = 0. GR_ERR + error if both prior and
 * cf_rows are given, gamma is negative or not finite, or a prior or CF value
 * is not finite (scores are then unspecified). */
int gr_ground_adjust(const float *dist, int n, int32_t n_items, const float *prior, const float *cf_rows,
                     float gamma, float *scores);

/* gr_ground_distances followed by gr_ground_adjust: scores (n, n_items),
 * higher is better; is_valid / n_invalid as in gr_ground_distances. GR_ERR +
 * error as there. */
int gr_ground_score(gr_grounder *g, const int32_t *const *gen_ids, const int64_t *gen_len, int n,
                    const float *prior, const float *cf_rows, float gamma, float *scores, int *is_valid,
                    int *n_invalid);

#endif
