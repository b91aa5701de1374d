/* Trie-constrained beam search: turn a language model's continuation of a
 * prompt into a ranked list of REAL items (D3, "Decoding Matters").
 *
 * Each beam walks the item trie (trie.h): at every step it may only take a
 * child token of its node, and it finishes when it reaches a leaf (the end
 * marker). A beam's score is the sum of its tokens' log-probabilities under
 * the model over the FULL vocabulary (log-softmax of the logits, not
 * renormalised over the allowed children), and a finished item's score is
 * that sum divided by length^lambda (lambda = 0 by default, as in D3: no
 * length normalisation; lambda = 1 averages). No temperature, top-k or top-p.
 *
 * Selection per step follows Hugging Face's beam search: the expansions of
 * all live beams are ranked by score; a finished expansion ranked among the
 * first n_beams joins the finished list, and the best unfinished expansions
 * (up to n_beams) become the next live beams. Search ends when no beam is
 * live, or when n_beams items are finished and no live beam can still beat
 * the worst of them (exact for lambda = 0, where scores only fall).
 *
 * Collaborative assistant (D3): with a per-user item probability vector
 * p_CF (e.g. SASRec's softmax), each step's token score becomes
 *     g * log p_LM(t) + (1 - g) * log( S(child t) / S(node) )
 * where S(u) = sum of p_CF over the items below trie node u (so the CF term
 * is p_CF renormalised over the siblings).
 *
 * Efficiency: the prompts of a group of users are prefilled once in one
 * batch; every user's beams share their prompt's KV rows (prefix sharing in
 * the KV cache, decode.h) and all live beams of all users in the group
 * advance as one batched decoding step per token.
 */
#ifndef GENREC_BEAM_H
#define GENREC_BEAM_H

#include <stdint.h>

#include "genrec/lm.h"
#include "genrec/trie.h"

typedef struct gr_beam_opts {
    int n_beams;          /* beams per user (default 20) */
    float lambda;         /* length normalisation exponent (default 0) */
    int group;            /* users decoded together (default 16) */
    /* collaborative assistant: cf_prob (n_users, trie items) or NULL */
    const float *cf_prob;
    float cf_gamma;       /* g in [0, 1]: weight of the language model (1 = LM only) */
    int naive;            /* benchmarks only: every beam gets its own copy of the prompt's
                             KV rows and is decoded by its own call (no prefix sharing, no
                             batching); same results */
} gr_beam_opts;

/* Defaults: 20 beams, lambda 0, group 16, no assistant (gamma 1). */
gr_beam_opts gr_beam_opts_default(void);

/* One ranked result. */
typedef struct gr_beam_hit {
    int32_t item;
    float score;          /* the hypothesis score (items sharing a leaf share it) */
} gr_beam_hit;

/* Decode n_users prompts (prompt u = prompts[u][0 .. prompt_len[u]), token
 * ids ending where the answer starts, e.g. gr_prompt_encode) and write each
 * user's top max_hits distinct items, best first, into hits[u * max_hits
 * ...] and their count into n_hits[u] (at most max_hits; fewer when the
 * beams found fewer items). Items sharing one leaf (same text) are listed in
 * the trie's order (most popular first) with the same score. max_hits may
 * exceed n_beams only through such shared leaves. GR_ERR + error on bad
 * options, a prompt longer than the model's context minus the trie depth, a
 * token outside the vocabulary, or OOM. */
int gr_beam_search(gr_lm *lm, const gr_trie *tr, const int32_t *const *prompts,
                   const int64_t *prompt_len, int n_users, const gr_beam_opts *o,
                   int max_hits, gr_beam_hit *hits, int *n_hits);

#endif
