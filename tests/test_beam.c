/* Trie-constrained beam search (beam.h) against brute force: with as many
 * beams as items the search is exhaustive, so every item must come back with
 * exactly its sequence log-probability (gr_lm_seq_logprob of prompt +
 * answer), in order; fewer beams return a correctly scored, ordered subset;
 * the D3 assistant with g = 0 ranks by the CF distribution alone; lambda = 1
 * divides by length; group sizes do not change results. */
#include "gr_test.h"
#include "genrec/beam.h"

#include <stdlib.h>

#define V 24
#define END 1
#define N_ITEMS 9

/* item token sequences (each ends with END; shared prefixes on purpose) */
static const int32_t seqs[N_ITEMS][5] = {
    {5, 6, END}, {5, 7, END}, {5, 6, 8, END}, {9, END}, {9, 10, 11, END},
    {12, END}, {5, 7, 13, 14, END}, {15, 16, END}, {9, 10, 17, END},
};

static gr_trie *make_trie(void)
{
    int64_t off[N_ITEMS + 1] = {0};
    int32_t ids[64];
    for (int i = 0; i < N_ITEMS; i++) {
        int n = 0;
        while (seqs[i][n] != END) ids[off[i] + n] = seqs[i][n], n++;
        ids[off[i] + n++] = END;
        off[i + 1] = off[i] + n;
    }
    return gr_trie_build(off, ids, N_ITEMS, NULL);
}

static gr_lm *make_lm(gr_arch arch)
{
    gr_tfm_config c;
    gr_lm_config_preset(&c, arch, 2, 16, 4, 2, 32, 64, V);
    gr_lm *lm = gr_lm_init(arch, &c, 3);
    float *p = gr_tfm_params(gr_lm_tfm(lm));
    gr_rng r;
    gr_rng_seed(&r, 11);
    for (int64_t i = 0; i < gr_tfm_n_params(gr_lm_tfm(lm)); i++) p[i] += (float)(0.5 * gr_rng_normal(&r));
    return lm;
}

static int seq_len(int i)
{
    int n = 0;
    while (seqs[i][n] != END) n++;
    return n + 1;
}

/* exact log p(item | prompt) for every item */
static void brute(gr_lm *lm, const int32_t *prompt, int plen, double *lp)
{
    for (int i = 0; i < N_ITEMS; i++) {
        int32_t tok[64], tgt[64];
        int n = 0, L = seq_len(i);
        for (int t = 0; t < plen; t++) tok[n++] = prompt[t];
        for (int t = 0; t < L - 1; t++) tok[n++] = seqs[i][t];
        for (int t = 0; t < n; t++) tgt[t] = -1;
        for (int t = 0; t < L; t++) tgt[plen - 1 + t] = t < L - 1 ? seqs[i][t] : END;
        gr_lm_batch b = {tok, tgt, NULL, (int32_t[2]){0, n}, 1, n};
        if (gr_lm_seq_logprob(lm, &b, &lp[i]) != GR_OK) lp[i] = NAN;
    }
}

static const int32_t prompts_data[3][6] = {{2, 3, 4, 20, 21, 22}, {2, 19, 18}, {2, 4, 4, 4, 3}};
static const int64_t plens[3] = {6, 3, 5};

static void run(gr_lm *lm, const gr_trie *tr, const gr_beam_opts *o, int k, gr_beam_hit *hits, int *n_hits)
{
    const int32_t *pp[3] = {prompts_data[0], prompts_data[1], prompts_data[2]};
    if (gr_beam_search(lm, tr, pp, plens, 3, o, k, hits, n_hits) != GR_OK)
        gr_test_fail(__FILE__, __LINE__, "beam search: %s", gr_error_message());
}

static void exhaustive(gr_arch arch)
{
    gr_lm *lm = make_lm(arch);
    gr_trie *tr = make_trie();
    REQUIRE(lm && tr);
    gr_beam_opts o = gr_beam_opts_default();
    o.n_beams = N_ITEMS;
    o.group = 2;
    gr_beam_hit hits[3 * N_ITEMS];
    int n_hits[3];
    run(lm, tr, &o, N_ITEMS, hits, n_hits);
    for (int u = 0; u < 3; u++) {
        double lp[N_ITEMS];
        brute(lm, prompts_data[u], (int)plens[u], lp);
        CHECK_EQ_INT(n_hits[u], N_ITEMS);
        int seen[N_ITEMS] = {0};
        for (int j = 0; j < n_hits[u]; j++) {
            const gr_beam_hit *h = &hits[u * N_ITEMS + j];
            REQUIRE(h->item >= 0 && h->item < N_ITEMS);
            CHECK(!seen[h->item]);
            seen[h->item] = 1;
            CHECK_NEAR(h->score, lp[h->item], 2e-4);
            if (j) CHECK(hits[u * N_ITEMS + j - 1].score >= h->score);
        }
    }
    /* fewer beams: an ordered subset with exact scores; groups of 1 or 16 agree */
    gr_beam_hit h3[3 * 4], h3b[3 * 4];
    int n3[3], n3b[3];
    o.n_beams = 3;
    o.group = 1;
    run(lm, tr, &o, 4, h3, n3);
    o.group = 16;
    o.naive = 1; /* private prompt copies, one call per beam: the same results */
    run(lm, tr, &o, 4, h3b, n3b);
    o.naive = 0;
    for (int u = 0; u < 3; u++) {
        double lp[N_ITEMS];
        brute(lm, prompts_data[u], (int)plens[u], lp);
        CHECK(n3[u] >= 1 && n3[u] <= 3);
        CHECK_EQ_INT(n3[u], n3b[u]);
        for (int j = 0; j < n3[u]; j++) {
            CHECK_NEAR(h3[u * 4 + j].score, lp[h3[u * 4 + j].item], 2e-4);
            CHECK_EQ_INT(h3[u * 4 + j].item, h3b[u * 4 + j].item);
        }
        /* beam search is not exact: its best can only be as good as the true best */
        CHECK(h3[u * 4].score <= hits[u * N_ITEMS].score + 1e-5);
    }
    /* lambda = 1: scores are log-probabilities divided by the length */
    o.n_beams = N_ITEMS;
    o.lambda = 1.0f;
    run(lm, tr, &o, N_ITEMS, hits, n_hits);
    double lp[N_ITEMS];
    brute(lm, prompts_data[1], (int)plens[1], lp);
    for (int j = 0; j < n_hits[1]; j++) {
        const gr_beam_hit *h = &hits[N_ITEMS + j];
        CHECK_NEAR(h->score, lp[h->item] / seq_len(h->item), 1e-4);
    }
    gr_trie_free(tr);
    gr_lm_free(lm);
}

static void test_exhaustive_llama(void) { exhaustive(GR_ARCH_LLAMA); }
static void test_exhaustive_gpt2(void) { exhaustive(GR_ARCH_GPT2); }

static void test_assistant(void)
{
    gr_lm *lm = make_lm(GR_ARCH_LLAMA);
    gr_trie *tr = make_trie();
    REQUIRE(lm && tr);
    float cf[3 * N_ITEMS];
    for (int u = 0; u < 3; u++)
        for (int i = 0; i < N_ITEMS; i++) cf[u * N_ITEMS + i] = (float)((i * 7 + u * 3) % N_ITEMS + 1);
    for (int u = 0; u < 3; u++) {
        double s = 0;
        for (int i = 0; i < N_ITEMS; i++) s += cf[u * N_ITEMS + i];
        for (int i = 0; i < N_ITEMS; i++) cf[u * N_ITEMS + i] /= (float)s;
    }
    gr_beam_opts o = gr_beam_opts_default();
    o.n_beams = N_ITEMS;
    o.cf_prob = cf;
    o.cf_gamma = 0.0f; /* CF only: score = log p_CF(item) */
    gr_beam_hit hits[3 * N_ITEMS];
    int n_hits[3];
    run(lm, tr, &o, N_ITEMS, hits, n_hits);
    for (int u = 0; u < 3; u++) {
        CHECK_EQ_INT(n_hits[u], N_ITEMS);
        for (int j = 0; j < n_hits[u]; j++)
            CHECK_NEAR(hits[u * N_ITEMS + j].score, log(cf[u * N_ITEMS + hits[u * N_ITEMS + j].item]), 1e-5);
    }
    /* g = 1 is the plain search */
    gr_beam_hit plain[3 * N_ITEMS];
    int np[3];
    o.cf_gamma = 1.0f;
    run(lm, tr, &o, N_ITEMS, hits, n_hits);
    o.cf_prob = NULL;
    run(lm, tr, &o, N_ITEMS, plain, np);
    for (int j = 0; j < N_ITEMS; j++) CHECK_EQ_INT(hits[j].item, plain[j].item);
    /* bad options are errors */
    o.n_beams = 0;
    const int32_t *pp[1] = {prompts_data[0]};
    CHECK(gr_beam_search(lm, tr, pp, plens, 1, &o, 5, hits, n_hits) == GR_ERR);
    CHECK_HAS(gr_error_message(), "n_beams");
    o = gr_beam_opts_default();
    int64_t too_long = 64;
    CHECK(gr_beam_search(lm, tr, pp, &too_long, 1, &o, 5, hits, n_hits) == GR_ERR);
    CHECK_HAS(gr_error_message(), "context");
    gr_trie_free(tr);
    gr_lm_free(lm);
}

int main(void)
{
    GR_RUN(test_exhaustive_llama);
    GR_RUN(test_exhaustive_gpt2);
    GR_RUN(test_assistant);
    return gr_test_finish();
}
