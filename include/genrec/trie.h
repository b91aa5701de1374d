/* A token trie over every item's answer sequence, for constrained decoding
 * (beam search may only follow trie edges) and for the D3 collaborative
 * assistant (sums of an item-probability vector over the items below a node).
 *
 * Each item contributes one token sequence, normally its answer ids
 * (gr_answer_encode: answer text tokens + the EOS end marker, tokenized on
 * their own exactly as in training, see itemtext.h). Items whose sequences
 * are identical (same title) share one leaf; a leaf lists its items most
 * popular first, then by id. No sequence may be a strict prefix of another
 * (an end marker that occurs only at the end guarantees it).
 *
 * Layout (compact CSR, all int32): nodes are numbered in pre-order (depth
 * first, children by ascending token id), node 0 is the root, so every child
 * has a larger id than its parent and a reverse scan over the nodes visits
 * children before parents (post-order accumulation in O(nodes + items)). The
 * items below node u are order[item_lo[u] .. item_hi[u]): a contiguous range
 * of the items sorted in trie order. The struct is read-only for users;
 * gr_trie_serialize / gr_trie_deserialize turn it into one flat int32 array
 * (to be stored in a GGUF) and back.
 */
#ifndef GENREC_TRIE_H
#define GENREC_TRIE_H
#include <stdint.h>

#include "genrec/itemtext.h"
#include "genrec/tokenizer.h"

typedef struct gr_trie {
    int32_t n_nodes;     /* >= 1 */
    int32_t n_items;
    int32_t max_depth;   /* longest sequence (tokens) */
    int32_t *child_off;  /* [n_nodes+1] node u's edges are child_off[u] .. child_off[u+1] */
    int32_t *child_tok;  /* [n_nodes-1] edge token ids, strictly ascending within a node */
    int32_t *child_node; /* [n_nodes-1] edge target nodes */
    int32_t *item_lo;    /* [n_nodes] */
    int32_t *item_hi;    /* [n_nodes] */
    int32_t *order;      /* [n_items] item ids in trie order */
    int32_t *item_leaf;  /* [n_items] the leaf each item's sequence ends at */
} gr_trie;

/* Build a trie from n_items sequences in CSR form: item i's tokens are
 * ids[off[i] .. off[i+1]). pop (optional, [n_items]) orders the items that
 * share a leaf (higher first; ties and pop == NULL: smaller id first).
 * Returns a new trie (free with gr_trie_free) or NULL + error naming the item
 * for an empty sequence, a negative token id, a sequence that is a strict
 * prefix of another, more than INT32_MAX nodes, or OOM. */
gr_trie *gr_trie_build(const int64_t *off, const int32_t *ids, int32_t n_items, const double *pop);

/* Build the trie of every item's answer under template t (gr_answer_encode
 * with tok, so answer tokens + EOS). pop as above. NULL + error. */
gr_trie *gr_trie_build_answers(const gr_prompt_tmpl *t, const gr_tokenizer *tok, const gr_itemtext *it,
                               const double *pop);

/* Verify that every item's answer ids, as training puts them after the
 * prompt (gr_answer_encode), walk from the root to a leaf that lists the
 * item. GR_OK, or GR_ERR + a message naming the first item that fails. If
 * joint_differs is not NULL it receives the number of items whose answer ids
 * would differ if the answer were tokenized together with the prompt text
 * (encode(prompt of an empty history + answer) does not end with the
 * separately encoded answer): how much the separate tokenization matters for
 * this tokenizer and template. (The prompt's own tail may tokenize
 * differently at the end of a text than before more text, e.g. GPT-2 splits
 * " \n" + "\"" into " ", "\n", "\"" but keeps a final " \n" whole; that does
 * not count here, and training is consistent either way because prompts are
 * always encoded on their own.) */
int gr_trie_check_answers(const gr_trie *tr, const gr_prompt_tmpl *t, const gr_tokenizer *tok,
                          const gr_itemtext *it, int64_t *joint_differs);

/* Free a trie. NULL is fine. */
void gr_trie_free(gr_trie *tr);

/* Children of node: *toks and *nodes (either may be NULL) point at the
 * node's edge arrays (owned by the trie). Returns their count, or -1 for a
 * node id out of range. */
int32_t gr_trie_children(const gr_trie *tr, int32_t node, const int32_t **toks, const int32_t **nodes);

/* The child of node along token tok (binary search), or -1 when there is
 * none or node is out of range. */
int32_t gr_trie_child(const gr_trie *tr, int32_t node, int32_t tok);

/* Follow ids[0..n) from the root: the node reached, or -1 if some token has
 * no edge. */
int32_t gr_trie_walk(const gr_trie *tr, const int32_t *ids, int64_t n);

/* 1 if node is a leaf (a complete item sequence: the end marker was
 * reached), 0 otherwise (and for an id out of range). */
int gr_trie_is_leaf(const gr_trie *tr, int32_t node);

/* The items below node (at a leaf: the items it stands for, most popular
 * first): *items points into the trie (may be NULL). Returns their count,
 * or -1 for a node id out of range. */
int32_t gr_trie_items(const gr_trie *tr, int32_t node, const int32_t **items);

/* node_sum[u] = sum of item_val[i] over the items i below node u, for every
 * node (node_sum has n_nodes entries; item_val n_items). One reverse pass
 * over the nodes in double precision, O(nodes + items); no cancellation. */
void gr_trie_node_sums(const gr_trie *tr, const float *item_val, double *node_sum);

/* The trie as one flat int32 array: a 6-value header (magic 0x47525452
 * "GRTR", version 1, n_nodes, n_items, max_depth, n_edges) then child_off,
 * child_tok, child_node, item_lo, item_hi, order. Returns a new array
 * (gr_free) of *n values or NULL + error (OOM). */
int32_t *gr_trie_serialize(const gr_trie *tr, int64_t *n);

/* Rebuild a trie from a flat array made by gr_trie_serialize (copied; buf
 * may be freed afterwards). Every field is validated (header, sizes, tree
 * shape, ascending tokens, item ranges, order a permutation), so untrusted
 * input gives NULL + error naming the field rather than a broken trie. */
gr_trie *gr_trie_deserialize(const int32_t *buf, int64_t n);

#endif
