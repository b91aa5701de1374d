/* Item text rendering, prompt templates (byte-exact), token encoding and SFT
 * samples with their loss masks, on a small hand-built dataset. */
#include <stdlib.h>
#include <string.h>

#include "gr_test.h"
#include "genrec/itemtext.h"
#include "genrec/split.h"
#include "genrec/tokenizer.h"

/* Items 1..5 (dense ids 0..4 in first-appearance order); item 4 repeats
 * item 1's title; item 5 has no title. */
static gr_dataset *small_dataset(void)
{
    gr_builder *b = gr_builder_init("small", "test");
    if (!b) return NULL;
    const char *seq[3][6] = {{"1", "2", "3", "4", "5", "2"}, {"2", "3", "1", NULL}, {"3", "1", "2", "4", NULL}};
    int64_t t = 100;
    for (int u = 0; u < 3; u++) {
        char uk[16];
        snprintf(uk, sizeof uk, "u%d", u);
        for (int k = 0; k < 6 && seq[u][k]; k++)
            if (gr_builder_add(b, uk, seq[u][k], t++, 4.0f)) goto fail;
    }
    if (gr_builder_item_text(b, "1", "Toy Story (1995)", "Animation|Children's|Comedy", "Pixar", "A cowboy doll is threatened by a new spaceman figure.") ||
        gr_builder_item_text(b, "2", "Heat (1995)", "Action|Crime|Thriller", NULL, NULL) ||
        gr_builder_item_text(b, "3", "Casino (1995)", "Crime|Drama", "Universal", NULL) ||
        gr_builder_item_text(b, "4", "Toy Story (1995)", "Animation", NULL, NULL))
        goto fail;
    return gr_builder_finish(b);
fail:
    gr_builder_free(b);
    return NULL;
}

static void test_strip_year(void)
{
    char a[] = "Toy Story (1995)", b[] = "Scream of Stone (Schrei aus Stein) (1991)  ", c[] = "(1995)",
         d[] = "Heat", e[] = "Se7en (19a5)", f[] = "Blade Runner(1982)";
    CHECK_EQ_INT(gr_itemtext_strip_year(a, strlen(a)), 9);
    CHECK_STR(a, "Toy Story");
    gr_itemtext_strip_year(b, strlen(b));
    CHECK_STR(b, "Scream of Stone (Schrei aus Stein)");
    CHECK_EQ_INT(gr_itemtext_strip_year(c, strlen(c)), 6); /* only a year: kept */
    CHECK_STR(c, "(1995)");
    gr_itemtext_strip_year(d, strlen(d));
    CHECK_STR(d, "Heat");
    gr_itemtext_strip_year(e, strlen(e));
    CHECK_STR(e, "Se7en (19a5)");
    gr_itemtext_strip_year(f, strlen(f));
    CHECK_STR(f, "Blade Runner");
}

static void test_render(void)
{
    gr_dataset *d = small_dataset();
    REQUIRE(d);
    REQUIRE(d->n_items == 5);
    int32_t toy = gr_test_item_of(d, "1"), heat = gr_test_item_of(d, "2"), none = gr_test_item_of(d, "5");
    char *s = gr_itemtext_render(d, toy, NULL);
    CHECK_STR(s, "Toy Story (1995)");
    gr_free(s);
    gr_itemtext_opts o = {.strip_year = 1};
    s = gr_itemtext_render(d, toy, &o);
    CHECK_STR(s, "Toy Story");
    gr_free(s);
    o = (gr_itemtext_opts){.with_genres = 1, .with_brand = 1, .strip_year = 1};
    s = gr_itemtext_render(d, toy, &o);
    CHECK_STR(s, "Toy Story [Animation, Children's, Comedy] by Pixar");
    gr_free(s);
    s = gr_itemtext_render(d, heat, &o); /* no brand: no " by " */
    CHECK_STR(s, "Heat [Action, Crime, Thriller]");
    gr_free(s);
    o = (gr_itemtext_opts){.with_text = 1, .max_text_chars = 20};
    s = gr_itemtext_render(d, toy, &o);
    CHECK_STR(s, "Toy Story (1995). A cowboy doll is");
    gr_free(s);
    s = gr_itemtext_render(d, none, NULL);
    CHECK_STR(s, "item 5");
    gr_free(s);
    CHECK(gr_itemtext_render(d, 99, NULL) == NULL);
    CHECK_HAS(gr_error_message(), "out of range");
    gr_dataset_free(d);
}

static void test_templates(void)
{
    gr_dataset *d = small_dataset();
    REQUIRE(d);
    gr_itemtext *it = gr_itemtext_build(d, NULL);
    REQUIRE(it);
    int32_t h[3] = {gr_test_item_of(d, "1"), gr_test_item_of(d, "2"), gr_test_item_of(d, "3")};
    gr_prompt_tmpl c = gr_prompt_tmpl_compact();
    char *p = gr_prompt_text(&c, it, h, 2);
    CHECK_STR(p, " Toy Story (1995)\n Heat (1995)\n=>");
    gr_free(p);
    p = gr_answer_text(&c, it, h[2]);
    CHECK_STR(p, " Casino (1995)");
    gr_free(p);
    c.max_hist = 1; /* only the last item is shown */
    p = gr_prompt_text(&c, it, h, 3);
    CHECK_STR(p, " Casino (1995)\n=>");
    gr_free(p);

    gr_prompt_tmpl t = gr_prompt_tmpl_d3("movies");
    p = gr_prompt_text(&t, it, h, 2);
    CHECK_STR(p, "Below is an instruction that describes a task, paired with an input that provides further context. "
                 "Write a response that appropriately completes the request. \n\n### Instruction:\nGiven a list of movies "
                 "the user recetenly enjoy, please write a new movies that the user may bought\n### User Input: \nThe user "
                 "has palyed the following moviess before: \"Toy Story (1995)\", \"Heat (1995)\"\n\n### Response: \n");
    gr_free(p);
    p = gr_answer_text(&t, it, h[2]);
    CHECK_STR(p, "\"Casino (1995)\"\n");
    gr_free(p);

    t = gr_prompt_tmpl_bigrec();
    p = gr_prompt_text(&t, it, h, 2);
    CHECK_STR(p, "Below is an instruction that describes a task, paired with an input that provides further context. "
                 "Write a response that appropriately completes the request.  \n\n### Instruction:\nGiven a list of movies "
                 "the user has watched before, please recommend a new movie that the user likes to the user.\n\n### Input:\n"
                 "The user has watched the following movies before:\"Toy Story (1995)\", \"Heat (1995)\"\n \n\n### Response:\n");
    gr_free(p);
    p = gr_answer_text(&t, it, h[2]);
    CHECK_STR(p, "\"Casino (1995)\"");
    gr_free(p);

    CHECK_EQ_INT(gr_prompt_tmpl_by_name("d3", "toys and games", &t), GR_OK);
    CHECK_STR(t.name, "d3");
    CHECK_STR(t.category, "toys and games");
    CHECK_EQ_INT(gr_prompt_tmpl_by_name("nope", NULL, &t), GR_ERR);
    CHECK_HAS(gr_error_message(), "compact");
    int32_t bad = 7;
    CHECK(gr_prompt_text(&t, it, &bad, 1) == NULL);
    CHECK_HAS(gr_error_message(), "out of range");
    gr_itemtext_free(it);
    gr_dataset_free(d);
}

/* A byte-level BPE trained on the corpus of the template. */
static gr_tokenizer *train_tok(const gr_prompt_tmpl *t, const gr_itemtext *it)
{
    size_t n;
    char *corpus = gr_rec_corpus(t, it, &n);
    if (!corpus) return NULL;
    const char *specials[] = {"<|endoftext|>"};
    gr_bpe_train_opts o = {.vocab_size = 400, .min_frequency = 2, .specials = specials, .n_specials = 1};
    gr_tokenizer *tok = gr_bpe_train(corpus, n, &o);
    gr_free(corpus);
    return tok;
}

static int ids_equal(const int32_t *a, const int32_t *b, int64_t n)
{
    return n == 0 || !memcmp(a, b, (size_t)n * sizeof *a);
}

/* Encoding follows the contract; SFT samples = prompt ids ++ answer ids with
 * a mask exactly on the answer; every prefix of each training sequence. */
static void check_sft(const gr_prompt_tmpl *t, gr_protocol proto)
{
    gr_dataset *d = small_dataset();
    REQUIRE(d);
    gr_itemtext *it = gr_itemtext_build(d, NULL);
    REQUIRE(it);
    gr_tokenizer *tok = train_tok(t, it);
    REQUIRE(tok);
    int32_t eos = gr_tokenizer_eos(tok);
    REQUIRE(eos >= 0);
    /* corpus holds items and the template */
    char *corpus = gr_rec_corpus(t, it, NULL);
    REQUIRE(corpus);
    CHECK_HAS(corpus, "Casino (1995)");
    CHECK_HAS(corpus, t->footer);
    gr_free(corpus);
    /* prompt and answer decode back to their texts */
    int32_t h[2] = {0, 1};
    int64_t np, na;
    int32_t *pid = gr_prompt_encode(t, tok, it, h, 2, &np);
    int32_t *aid = gr_answer_encode(t, tok, it, 2, &na);
    REQUIRE(pid && aid);
    CHECK_EQ_INT(pid[0], gr_tokenizer_bos(tok)); /* BOS on */
    CHECK_EQ_INT(aid[na - 1], eos);
    char *ptxt = gr_prompt_text(t, it, h, 2), *atxt = gr_answer_text(t, it, 2);
    char *pdec = gr_tokenizer_decode(tok, pid, np, NULL), *adec = gr_tokenizer_decode(tok, aid, na, NULL);
    CHECK_STR(pdec, ptxt);
    CHECK_STR(adec, atxt);
    gr_free(ptxt);
    gr_free(atxt);
    gr_free(pdec);
    gr_free(adec);
    gr_free(pid);
    gr_free(aid);

    gr_split_opts so = gr_split_opts_default(proto);
    gr_split *s = gr_split_build(d, &so);
    REQUIRE(s);
    int64_t nq, want = 0;
    gr_query *q = gr_rec_train_queries(s, 0, &nq);
    REQUIRE(q);
    for (int32_t u = 0; u < s->n_users; u++) {
        int64_t len = s->train_off[u + 1] - s->train_off[u];
        want += len > 1 ? len - 1 : 0;
    }
    CHECK_EQ_INT(nq, want);
    int bad_q = 0;
    for (int64_t k = 0; k < nq; k++) { /* history + target = a prefix of the user's training sequence */
        const int32_t *seq = s->train_item + s->train_off[q[k].user];
        bad_q += q[k].hist != seq || seq[q[k].hist_len] != q[k].target;
    }
    CHECK_EQ_INT(bad_q, 0);
    gr_sft_set *ss = gr_sft_build(q, nq, t, tok, it, 0);
    REQUIRE(ss);
    CHECK_EQ_INT(ss->n, nq);
    int bad = 0;
    for (int64_t k = 0; k < ss->n; k++) {
        int64_t o = ss->off[k], len = ss->off[k + 1] - o;
        int32_t pl = ss->prompt_len[k];
        for (int64_t j = 0; j < len; j++) bad += ss->mask[o + j] != (j >= pl);
        int32_t *p = gr_prompt_encode(t, tok, it, q[k].hist, q[k].hist_len, &np);
        int32_t *a = gr_answer_encode(t, tok, it, q[k].target, &na);
        bad += !p || !a || np != pl || na != len - pl || !ids_equal(ss->ids + o, p, np) || !ids_equal(ss->ids + o + pl, a, na);
        bad += ss->ids[o + len - 1] != eos || ss->target[k] != q[k].target || ss->user[k] != q[k].user;
        gr_free(p);
        gr_free(a);
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(ss->n_shortened, 0);
    gr_sft_free(ss);

    /* a length cap drops the oldest history items; the answer stays whole */
    int32_t cap = 0;
    for (int32_t i = 0; i < it->n; i++) {
        int32_t *a = gr_answer_encode(t, tok, it, i, &na);
        REQUIRE(a);
        if ((int32_t)na > cap) cap = (int32_t)na;
        gr_free(a);
    }
    int64_t pe;
    int32_t *empty = gr_prompt_encode(t, tok, it, NULL, 0, &pe);
    REQUIRE(empty);
    gr_free(empty);
    cap += (int32_t)pe + 3; /* room for the empty prompt and a few tokens */
    ss = gr_sft_build(q, nq, t, tok, it, cap);
    REQUIRE(ss);
    bad = 0;
    for (int64_t k = 0; k < ss->n; k++) {
        int64_t o = ss->off[k], len = ss->off[k + 1] - o;
        int32_t pl = ss->prompt_len[k];
        bad += len > cap || ss->hist_used[k] > q[k].hist_len;
        for (int64_t j = 0; j < len; j++) bad += ss->mask[o + j] != (j >= pl);
        int32_t *a = gr_answer_encode(t, tok, it, q[k].target, &na);
        bad += !a || na != len - pl || !ids_equal(ss->ids + o + pl, a, na);
        int32_t *p = gr_prompt_encode(t, tok, it, q[k].hist + q[k].hist_len - ss->hist_used[k], ss->hist_used[k], &np);
        bad += !p || np != pl || !ids_equal(ss->ids + o, p, np);
        gr_free(a);
        gr_free(p);
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(ss->n_shortened > 0);
    CHECK_EQ_INT(ss->n_cut, 0);
    printf("  %s/%s: %lld samples, %lld shortened to fit %d tokens\n", t->name, gr_protocol_name(proto),
           (long long)ss->n, (long long)ss->n_shortened, (int)cap);
    gr_sft_free(ss);
    /* bad input */
    gr_query badq = q[0];
    badq.target = 99;
    CHECK(gr_sft_build(&badq, 1, t, tok, it, 0) == NULL);
    CHECK_HAS(gr_error_message(), "target item 99");
    gr_free(q);
    gr_split_free(s);
    gr_tokenizer_free(tok);
    gr_itemtext_free(it);
    gr_dataset_free(d);
}

static void test_sft_compact_loo(void)
{
    gr_prompt_tmpl t = gr_prompt_tmpl_compact();
    check_sft(&t, GR_PROTOCOL_LOO);
}

static void test_sft_d3_ts(void)
{
    gr_prompt_tmpl t = gr_prompt_tmpl_d3("movies");
    check_sft(&t, GR_PROTOCOL_TS);
}

static void test_train_queries_max_hist(void)
{
    gr_dataset *d = small_dataset();
    REQUIRE(d);
    gr_split *s = gr_split_build(d, NULL);
    REQUIRE(s);
    int64_t n;
    gr_query *q = gr_rec_train_queries(s, 2, &n);
    REQUIRE(q);
    int bad = 0;
    for (int64_t k = 0; k < n; k++) bad += q[k].hist_len > 2 || q[k].hist[q[k].hist_len] != q[k].target;
    CHECK_EQ_INT(bad, 0);
    double *cnt = gr_rec_train_counts(s);
    REQUIRE(cnt);
    double tot = 0;
    for (int32_t i = 0; i < s->n_items; i++) tot += cnt[i];
    CHECK_EQ_INT((int64_t)tot, s->train_off[s->n_users]);
    gr_free(cnt);
    gr_free(q);
    gr_split_free(s);
    gr_dataset_free(d);
}

int main(void)
{
    GR_RUN(test_strip_year);
    GR_RUN(test_render);
    GR_RUN(test_templates);
    GR_RUN(test_sft_compact_loo);
    GR_RUN(test_sft_d3_ts);
    GR_RUN(test_train_queries_max_hist);
    return gr_test_finish();
}
