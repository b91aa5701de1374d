/* Token trie: exact structure on a hand-built case, brute-force checks of
 * children, item sets and node sums on random sequences, duplicates,
 * serialisation round trip and corruption, and answer tries built with a
 * trained BPE (boundary-safe: every answer lies on a trie path). */
#include <stdlib.h>
#include <string.h>

#include "gr_test.h"
#include "genrec/itemtext.h"
#include "genrec/rng.h"
#include "genrec/synth.h"
#include "genrec/tokenizer.h"
#include "genrec/trie.h"

static void test_small(void)
{
    /* item 0: 5 1 9; item 1: 5 2 9; item 2: 5 1 9 (same as 0); item 3: 7 9 */
    int32_t ids[] = {5, 1, 9, 5, 2, 9, 5, 1, 9, 7, 9};
    int64_t off[] = {0, 3, 6, 9, 11};
    double pop[] = {1, 5, 3, 0};
    gr_trie *tr = gr_trie_build(off, ids, 4, pop);
    REQUIRE(tr);
    CHECK_EQ_INT(tr->n_nodes, 8);
    CHECK_EQ_INT(tr->max_depth, 3);
    const int32_t *tk, *nd;
    REQUIRE(gr_trie_children(tr, 0, &tk, &nd) == 2);
    CHECK_EQ_INT(tk[0], 5);
    CHECK_EQ_INT(tk[1], 7);
    int32_t n5 = gr_trie_child(tr, 0, 5);
    REQUIRE(n5 > 0);
    REQUIRE(gr_trie_children(tr, n5, &tk, NULL) == 2);
    CHECK_EQ_INT(tk[0], 1);
    CHECK_EQ_INT(tk[1], 2);
    CHECK_EQ_INT(gr_trie_child(tr, n5, 3), -1);
    CHECK_EQ_INT(gr_trie_items(tr, n5, NULL), 3);
    CHECK(!gr_trie_is_leaf(tr, n5));
    int32_t leaf = gr_trie_walk(tr, ids, 3);
    REQUIRE(leaf > 0);
    CHECK(gr_trie_is_leaf(tr, leaf));
    const int32_t *items;
    REQUIRE(gr_trie_items(tr, leaf, &items) == 2);
    CHECK_EQ_INT(items[0], 2); /* more popular first */
    CHECK_EQ_INT(items[1], 0);
    CHECK_EQ_INT(tr->item_leaf[0], leaf);
    CHECK_EQ_INT(tr->item_leaf[2], leaf);
    CHECK_EQ_INT(gr_trie_walk(tr, (int32_t[]){7, 8}, 2), -1);
    CHECK_EQ_INT(gr_trie_items(tr, 0, NULL), 4);
    float val[] = {0.1f, 0.2f, 0.3f, 0.4f};
    double sums[8];
    gr_trie_node_sums(tr, val, sums);
    CHECK_NEAR(sums[0], 1.0, 1e-6);
    CHECK_NEAR(sums[n5], 0.6, 1e-6);
    CHECK_NEAR(sums[leaf], 0.4, 1e-6);
    CHECK_NEAR(sums[gr_trie_child(tr, 0, 7)], 0.4, 1e-6);
    /* without pop: ties by id */
    gr_trie *t2 = gr_trie_build(off, ids, 4, NULL);
    REQUIRE(t2);
    REQUIRE(gr_trie_items(t2, gr_trie_walk(t2, ids, 3), &items) == 2);
    CHECK_EQ_INT(items[0], 0);
    gr_trie_free(t2);
    gr_trie_free(tr);
    /* errors */
    int32_t pre[] = {1, 2, 1, 2, 3};
    int64_t poff[] = {0, 2, 5};
    CHECK(gr_trie_build(poff, pre, 2, NULL) == NULL);
    CHECK_HAS(gr_error_message(), "prefix");
    int64_t eoff[] = {0, 2, 2};
    CHECK(gr_trie_build(eoff, pre, 2, NULL) == NULL);
    CHECK_HAS(gr_error_message(), "empty");
    int32_t neg[] = {1, -3};
    int64_t noff[] = {0, 2};
    CHECK(gr_trie_build(noff, neg, 1, NULL) == NULL);
    CHECK_HAS(gr_error_message(), "negative");
}

/* Random sequences over tokens 1..4 ending with the end marker 0. */
typedef struct rseqs {
    int32_t n;
    int64_t *off;
    int32_t *ids;
} rseqs;

static rseqs random_seqs(int32_t n, uint64_t seed)
{
    rseqs r = {n, malloc(((size_t)n + 1) * sizeof(int64_t)), malloc((size_t)n * 8 * sizeof(int32_t))};
    gr_rng g;
    gr_rng_seed(&g, seed);
    r.off[0] = 0;
    for (int32_t i = 0; i < n; i++) {
        int64_t o = r.off[i];
        if (i > 0 && gr_rng_below(&g, 5) == 0) { /* a duplicate of an earlier item */
            int32_t j = (int32_t)gr_rng_below(&g, (uint64_t)i);
            int64_t len = r.off[j + 1] - r.off[j];
            memcpy(r.ids + o, r.ids + r.off[j], (size_t)len * sizeof(int32_t));
            r.off[i + 1] = o + len;
            continue;
        }
        int len = 1 + (int)gr_rng_below(&g, 6);
        for (int k = 0; k < len; k++) r.ids[o + k] = 1 + (int32_t)gr_rng_below(&g, 4);
        r.ids[o + len] = 0;
        r.off[i + 1] = o + len + 1;
    }
    return r;
}

/* Does item i's sequence start with prefix p[0..d)? */
static int has_prefix(const rseqs *r, int32_t i, const int32_t *p, int d)
{
    if (r->off[i + 1] - r->off[i] < d) return 0;
    return d == 0 || !memcmp(r->ids + r->off[i], p, (size_t)d * sizeof *p);
}

typedef struct bf_ctx {
    const gr_trie *tr;
    const rseqs *r;
    const float *val;
    const double *sums;
    int bad, visited;
    int32_t path[16];
} bf_ctx;

/* Depth-first over the trie, checking each node against brute force. */
static void bf_visit(bf_ctx *c, int32_t u, int d)
{
    c->visited++;
    const rseqs *r = c->r;
    int has_next[5] = {0};
    int32_t cnt = 0;
    double sum = 0;
    for (int32_t i = 0; i < r->n; i++) {
        if (!has_prefix(r, i, c->path, d)) continue;
        cnt++;
        sum += c->val[i];
        if (r->off[i + 1] - r->off[i] > d) has_next[r->ids[r->off[i] + d]] = 1;
    }
    const int32_t *tk, *nd;
    int32_t nc = gr_trie_children(c->tr, u, &tk, &nd);
    int want = 0;
    for (int t = 0; t < 5; t++) want += has_next[t];
    c->bad += nc != want;
    for (int32_t e = 0; e < nc; e++) c->bad += tk[e] < 0 || tk[e] > 4 || !has_next[tk[e]];
    const int32_t *items;
    c->bad += gr_trie_items(c->tr, u, &items) != cnt;
    for (int32_t k = 0; k < cnt; k++) c->bad += !has_prefix(r, items[k], c->path, d);
    c->bad += fabs(c->sums[u] - sum) > 1e-9 * (1 + sum);
    c->bad += gr_trie_is_leaf(c->tr, u) != (nc == 0 && d > 0);
    for (int32_t e = 0; e < nc; e++) {
        c->path[d] = tk[e];
        bf_visit(c, nd[e], d + 1);
    }
}

static void test_random_bruteforce(void)
{
    rseqs r = random_seqs(400, 7);
    REQUIRE(r.off && r.ids);
    gr_trie *tr = gr_trie_build(r.off, r.ids, r.n, NULL);
    REQUIRE(tr);
    float *val = malloc((size_t)r.n * sizeof *val);
    double *sums = malloc((size_t)tr->n_nodes * sizeof *sums);
    REQUIRE(val && sums);
    gr_rng g;
    gr_rng_seed(&g, 3);
    for (int32_t i = 0; i < r.n; i++) val[i] = gr_rng_float(&g);
    gr_trie_node_sums(tr, val, sums);
    bf_ctx c = {tr, &r, val, sums, 0, 0, {0}};
    bf_visit(&c, 0, 0);
    CHECK_EQ_INT(c.bad, 0);
    CHECK_EQ_INT(c.visited, tr->n_nodes);
    /* every item reaches a leaf listing it; equal sequences share the leaf */
    int bad = 0, dup_leaves = 0;
    for (int32_t i = 0; i < r.n; i++) {
        int32_t u = gr_trie_walk(tr, r.ids + r.off[i], r.off[i + 1] - r.off[i]);
        const int32_t *items;
        int32_t n = gr_trie_items(tr, u, &items), found = 0;
        for (int32_t k = 0; k < n; k++) found += items[k] == i;
        bad += !gr_trie_is_leaf(tr, u) || found != 1 || tr->item_leaf[i] != u;
        dup_leaves += n > 1 && items[0] == i;
        for (int32_t k = 1; k < n; k++) bad += items[k] <= items[k - 1]; /* no pop: by id */
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(dup_leaves > 0);
    printf("  %d sequences -> %d nodes, %d leaves shared by several items\n", (int)r.n, (int)tr->n_nodes, dup_leaves);

    /* serialisation round trip */
    int64_t n;
    int32_t *buf = gr_trie_serialize(tr, &n);
    REQUIRE(buf);
    gr_trie *t2 = gr_trie_deserialize(buf, n);
    REQUIRE(t2);
    CHECK_EQ_INT(t2->n_nodes, tr->n_nodes);
    CHECK_EQ_INT(t2->max_depth, tr->max_depth);
    CHECK(!memcmp(t2->child_off, tr->child_off, ((size_t)tr->n_nodes + 1) * sizeof(int32_t)));
    CHECK(!memcmp(t2->child_tok, tr->child_tok, ((size_t)tr->n_nodes - 1) * sizeof(int32_t)));
    CHECK(!memcmp(t2->child_node, tr->child_node, ((size_t)tr->n_nodes - 1) * sizeof(int32_t)));
    CHECK(!memcmp(t2->order, tr->order, (size_t)r.n * sizeof(int32_t)));
    CHECK(!memcmp(t2->item_leaf, tr->item_leaf, (size_t)r.n * sizeof(int32_t)));
    gr_trie_free(t2);
    /* corruption is caught */
    CHECK(gr_trie_deserialize(buf, n - 1) == NULL);
    CHECK_HAS(gr_error_message(), "header implies");
    int64_t e0 = 6 + (tr->n_nodes + 1); /* first child_tok */
    int32_t keep = buf[e0];
    buf[e0] = buf[e0 + 1];
    CHECK(gr_trie_deserialize(buf, n) == NULL);
    CHECK_HAS(gr_error_message(), "ascending");
    buf[e0] = keep;
    int64_t nd0 = e0 + (tr->n_nodes - 1); /* first child_node */
    keep = buf[nd0];
    buf[nd0] = 0;
    CHECK(gr_trie_deserialize(buf, n) == NULL);
    buf[nd0] = keep;
    int64_t ord0 = n - r.n;
    keep = buf[ord0];
    buf[ord0] = buf[ord0 + 1];
    CHECK(gr_trie_deserialize(buf, n) == NULL);
    CHECK_HAS(gr_error_message(), "permutation");
    buf[ord0] = keep;
    buf[0] = 1;
    CHECK(gr_trie_deserialize(buf, n) == NULL);
    CHECK_HAS(gr_error_message(), "magic");
    gr_free(buf);
    free(val);
    free(sums);
    gr_trie_free(tr);
    free(r.off);
    free(r.ids);
}

/* Answer tries over the synthetic world's titles with a BPE trained on them:
 * every item's answer reaches a leaf that lists it; duplicate titles share a
 * leaf, most popular first. */
static void check_answers(const char *tmpl_name)
{
    gr_synth_opts so = gr_synth_opts_default();
    so.n_users = 300;
    so.n_items = 800;
    so.dup_title_rate = 0.05;
    gr_synth_world *w = gr_synth_generate(&so);
    REQUIRE(w);
    gr_dataset *d = gr_synth_to_dataset(w);
    REQUIRE(d);
    gr_itemtext_opts io = {.strip_year = 1}; /* remakes and sequels' years dropped: more shared titles */
    gr_itemtext *it = gr_itemtext_build(d, &io);
    REQUIRE(it);
    gr_prompt_tmpl t;
    REQUIRE(gr_prompt_tmpl_by_name(tmpl_name, "movies", &t) == GR_OK);
    size_t n;
    char *corpus = gr_rec_corpus(&t, it, &n);
    REQUIRE(corpus);
    const char *specials[] = {"<|endoftext|>"};
    gr_bpe_train_opts bo = {.vocab_size = 1200, .min_frequency = 2, .specials = specials, .n_specials = 1};
    gr_tokenizer *tok = gr_bpe_train(corpus, n, &bo);
    gr_free(corpus);
    REQUIRE(tok);
    double *pop = calloc((size_t)d->n_items, sizeof *pop);
    REQUIRE(pop);
    for (int64_t k = 0; k < d->n_inter; k++) pop[d->inter_item[k]] += 1;
    gr_trie *tr = gr_trie_build_answers(&t, tok, it, pop);
    REQUIRE(tr);
    int64_t differs = -1;
    CHECK_EQ_INT(gr_trie_check_answers(tr, &t, tok, it, &differs), GR_OK);
    int bad = 0, shared = 0;
    for (int32_t i = 0; i < it->n; i++) {
        const int32_t *items;
        int32_t m = gr_trie_items(tr, tr->item_leaf[i], &items);
        for (int32_t k = 0; k < m; k++) bad += strcmp(it->text[items[k]], it->text[i]) != 0;
        for (int32_t k = 1; k < m; k++)
            bad += pop[items[k]] > pop[items[k - 1]] || (pop[items[k]] == pop[items[k - 1]] && items[k] < items[k - 1]);
        shared += m > 1 && items[0] == i;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(shared > 0);
    CHECK_EQ_INT(differs, 0);
    printf("  %s: %d items, %d nodes, depth %d, %d shared leaves, %lld answers tokenize differently "
           "inside the prompt\n", tmpl_name, (int)it->n, (int)tr->n_nodes, (int)tr->max_depth, shared, (long long)differs);
    /* a tampered trie fails the check with the item named */
    int32_t leaf0 = tr->item_leaf[0];
    tr->child_tok[tr->child_off[0]] += 100000;
    CHECK_EQ_INT(gr_trie_check_answers(tr, &t, tok, it, NULL), GR_ERR);
    CHECK_HAS(gr_error_message(), "item");
    (void)leaf0;
    free(pop);
    gr_trie_free(tr);
    gr_tokenizer_free(tok);
    gr_itemtext_free(it);
    gr_dataset_free(d);
    gr_synth_free(w);
}

static void test_answers_compact(void) { check_answers("compact"); }
static void test_answers_d3(void) { check_answers("d3"); }

int main(void)
{
    GR_RUN(test_small);
    GR_RUN(test_random_bruteforce);
    GR_RUN(test_answers_compact);
    GR_RUN(test_answers_d3);
    return gr_test_finish();
}
