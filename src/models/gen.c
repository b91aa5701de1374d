/* "gen" and "gen-sid": generative recommendation (issue 4). A small Llama
 * trained from scratch on the split writes the next item as tokens: its
 * title ("gen") or its semantic ID ("gen-sid"); gen_items.c builds the
 * vocabulary, answers and trie of each. Scores come from trie-constrained
 * beam search over real items (D3: summed full-vocabulary log-probabilities,
 * divided by length^lambda), optionally mixed with a classic model's item
 * probabilities at every step (the D3 collaborative assistant).
 *
 * Prompt = BOS followed by the answers of the last history items, so a
 * user's whole training sequence BOS a1 a2 ... an (ai = answer tokens of
 * item i) contains the prompt of every prefix: the SFT sample "history
 * s[0..i) -> answer s[i]" with an answer-only loss is exactly position i of
 * that sequence. Training therefore runs on packed windows of ctx tokens of
 * each user's sequence (a window starts at an item boundary with BOS; windows
 * overlap by up to half a context, and the overlapping items carry no loss
 * the second time), which computes the loss of every prefix sample once per
 * epoch at the cost of one pass over the sequence instead of one pass per
 * prefix.
 *
 * Training: the generic trainer (AdamW, warmup + cosine, clipping). An
 * epoch is one pass over the windows, or the fewest whole passes that make
 * round_steps optimizer steps. After every epoch the model is evaluated on
 * the validation queries with the real decoder (ctx->validate -> score -> beam search, assistant off); training
 * stops after `patience` epochs without a better NDCG@10 and the best
 * parameters return.
 *
 * Assistant (NAME.assist = g): g = 1 turns it off (the default); g in [0, 1)
 * mixes SASRec-CE's softmax probabilities into every step with weight 1 - g;
 * g < 0 chooses g on validation from {1, 0.8, 0.6, 0.4, 0.2}. SASRec is
 * trained on the same split with the list's sasrec.* parameters (as the
 * stand-alone "sasrec" model of the same run) and its early stopping.
 *
 * Scoring: the last max_hist history items that fit the context with the
 * longest item; the returned items get their beam scores (strictly
 * decreasing), every other item -INFINITY (so metrics at K > beams are
 * omitted, gr_model.max_k).
 *
 * Hyperparameters (NAME.KEY=VALUE, NAME = gen or gen-sid): dim 128, layers
 * 2, heads 4, ff 0 (= 3 x dim, SwiGLU), ctx 256, vocab 0 (titles: auto, see
 * gen_items.c), dropout 0.1, lr 2e-3, wd 0.01, batch 4096 (tokens per step),
 * epochs 20, round_steps 100, patience 3, beams 20, lambda 0, max_hist 50,
 * assist 1, seed_offset 0; gen-sid also sid_levels 3, sid_k 0 (rule of semid.h),
 * sid_dim 64, sid_emb 2 (text + collaborative embeddings, gen_items.c).
 *
 * Grounding (NAME.ground = 1, gen_ground.c): free generation mapped to items
 * by embedding distance with a popularity adjustment (BIGRec); ground_gamma
 * -1 (chosen on validation), ground_pool 0 (last token; 1 = mean),
 * ground_beams 1 (greedy). Training and its early stopping are the same as
 * for beam decoding.
 *
 * NAME.load = FILE (load_fitted): start from a model saved by `genrec train`
 * instead of training, to evaluate decoding variants of one trained model.
 *
 * Pretrained base ("gen" only; parse_base): gen.base = a GGUF, llama2.c .bin
 * or safetensors model (Llama or GPT-2) with its own tokenizer (found beside
 * it, or gen.base_tokenizer), fine-tuned instead of a model trained from
 * scratch; its shape fixes dim/layers/heads/ff/ctx/vocab/dropout (setting
 * them is an error). gen.template = compact | d3 | bigrec (genrec/itemtext.h;
 * default d3 with a base, compact without), gen.category = the templates'
 * {cat}. Compact prompts train on the packed windows above; an instruction
 * template trains on one SFT sample per training prefix (gr_sft_build: the
 * template's prompt of the last max_hist items, default the template's 10,
 * then the answer, loss on the answer only), or on gen.sft_samples of them
 * drawn by seed (BIGRec's few-shot setting). gen.lora = r trains LoRA
 * adapters (gen.lora_alpha, default 2r; gen.lora_targets, default
 * attn_q,attn_v as BIGRec) on the frozen base instead of every weight, and
 * merges them into the base after training. Defaults with a base are D3's
 * SFT settings: lr 3e-4, epochs 3, patience 1.
 *
 * Semantic IDs from a language model ("gen-sid"): gen-sid.text_model = a
 * model file (and gen-sid.text_tokenizer) embeds every item's text (mean of
 * its final hidden states, centred, L2-normalised) in place of the TF-IDF
 * text embedding (gen_items.c); the model itself is not trained or kept.
 *
 * Item text ("gen"): the title (default), gen.with_genres = 1 appends
 * " [G1, G2]", gen.with_brand = 1 " by BRAND", gen.strip_year = 1 removes a
 * trailing "(1995)" (gr_itemtext_opts); the texts trained on are saved. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "baseline_params.h"
#include "gen_internal.h"
#include "genrec/beam.h"
#include "genrec/lora.h"
#include "genrec/train.h"

void gen_state_free(gen_model *g)
{
    gr_itemtext_free(g->it); g->it = NULL;
    gr_semid_free(g->sid); g->sid = NULL;
    gr_lm_free(g->lm); g->lm = NULL;
    gr_trie_free(g->tr); g->tr = NULL;
    if (g->ans) for (int32_t i = 0; i < g->n_items; i++) gr_free(g->ans[i]);
    gr_free(g->ans); g->ans = NULL;
    gr_free(g->ans_len); g->ans_len = NULL;
    gr_free(g->pop); g->pop = NULL;
    gr_free(g->woff); gr_free(g->wtok); gr_free(g->wtgt); gr_free(g->order);
    g->woff = NULL; g->wtok = g->wtgt = NULL; g->order = NULL;
    gr_free(g->btok); gr_free(g->btgt); gr_free(g->boff);
    g->btok = g->btgt = g->boff = NULL;
    gr_free(g->best); g->best = NULL;
    gen_ground_free(g);
    g->fitted = 0;
}

/* Cut every user's training sequence into windows (see the top). */
static int build_windows_packed(gen_model *g, const gr_split *sp)
{
    int64_t cap_tok = 0, cap_win = 0;
    /* upper bounds: every item at most twice, one BOS per window */
    for (int32_t u = 0; u < sp->n_users; u++)
        for (int64_t k = sp->train_off[u]; k < sp->train_off[u + 1]; k++) cap_tok += 2 * g->ans_len[sp->train_item[k]] + 2;
    cap_win = sp->train_off[sp->n_users] + sp->n_users + 1;
    g->woff = gr_alloc((size_t)cap_win + 1, sizeof(int64_t));
    g->wtok = gr_alloc((size_t)cap_tok + 1, sizeof(int32_t));
    g->wtgt = gr_alloc((size_t)cap_tok + 1, sizeof(int32_t));
    if (!g->woff || !g->wtok || !g->wtgt) return GR_ERR;
    int64_t nt = 0, nw = 0;
    g->woff[0] = 0;
    for (int32_t u = 0; u < sp->n_users; u++) {
        const int32_t *s = sp->train_item + sp->train_off[u];
        int64_t L = sp->train_off[u + 1] - sp->train_off[u], done = 0;
        while (done < L) {
            /* context: items before `done` whose tokens fit in half a window */
            int64_t a = done, used = 1;
            while (a > 0 && used + g->ans_len[s[a - 1]] <= g->ctx / 2) used += g->ans_len[s[--a]];
            if (used + g->ans_len[s[done]] > g->ctx) { a = done; used = 1; } /* a long item: no context */
            int64_t b = done;
            /* b > done: build_items checked ctx >= the longest item + 2 */
            while (b < L && used + g->ans_len[s[b]] <= g->ctx) used += g->ans_len[s[b++]];
            g->wtok[nt] = g->bos;
            g->wtgt[nt++] = -1;
            for (int64_t k = a; k < b; k++) {
                const int32_t *t = g->ans[s[k]];
                for (int64_t j = 0; j < g->ans_len[s[k]]; j++) {
                    /* the token before t[j] predicts it when item k carries loss */
                    g->wtgt[nt - 1] = k >= done ? t[j] : -1;
                    g->wtok[nt] = t[j];
                    g->wtgt[nt++] = -1;
                }
            }
            g->woff[++nw] = nt;
            done = b;
        }
    }
    g->n_win = nw;
    return GR_OK;
}

/* Templated prompts: one window per SFT sample (gr_sft_build: the template's
 * prompt of the sample's last max_hist items, then the answer; loss on the
 * answer only), over every prefix of the training sequences, or sft_samples
 * of them drawn with g's rng. */
static int build_windows_sft(gen_model *g, const gr_split *sp)
{
    int64_t nq = 0;
    gr_query *q = gr_rec_train_queries(sp, g->max_hist, &nq);
    if (!q) return GR_ERR;
    if (g->sft_samples > 0 && nq > g->sft_samples) {
        /* a seeded partial Fisher-Yates shuffle picks the subset, kept in its original order */
        int64_t *idx = gr_alloc((size_t)nq, sizeof(int64_t));
        if (!idx) { gr_free(q); return GR_ERR; }
        for (int64_t i = 0; i < nq; i++) idx[i] = i;
        for (int64_t i = 0; i < g->sft_samples; i++) {
            int64_t j = i + (int64_t)gr_rng_below(&g->rng, (uint64_t)(nq - i));
            int64_t t = idx[i]; idx[i] = idx[j]; idx[j] = t;
        }
        uint8_t *keep = gr_calloc((size_t)nq, 1);
        if (!keep) { gr_free(idx); gr_free(q); return GR_ERR; }
        for (int64_t i = 0; i < g->sft_samples; i++) keep[idx[i]] = 1;
        int64_t k = 0;
        for (int64_t i = 0; i < nq; i++) if (keep[i]) q[k++] = q[i];
        nq = k;
        gr_free(keep);
        gr_free(idx);
    }
    gr_sft_set *ss = gr_sft_build(q, nq, &g->tmpl, gr_lm_tokenizer(g->lm), g->it, g->ctx);
    gr_free(q);
    if (!ss) return GR_ERR;
    const int64_t ntok = ss->off[ss->n];
    g->woff = gr_alloc((size_t)ss->n + 1, sizeof(int64_t));
    g->wtok = gr_alloc((size_t)ntok + 1, sizeof(int32_t));
    g->wtgt = gr_alloc((size_t)ntok + 1, sizeof(int32_t));
    if (!g->woff || !g->wtok || !g->wtgt) { gr_sft_free(ss); return GR_ERR; }
    memcpy(g->woff, ss->off, sizeof(int64_t) * (size_t)(ss->n + 1));
    memcpy(g->wtok, ss->ids, sizeof(int32_t) * (size_t)ntok);
    for (int64_t w = 0; w < ss->n; w++)
        for (int64_t j = ss->off[w]; j < ss->off[w + 1]; j++)
            /* the token before an answer token predicts it */
            g->wtgt[j] = j + 1 < ss->off[w + 1] && ss->mask[j + 1] ? ss->ids[j + 1] : -1;
    g->n_win = ss->n;
    gr_sft_free(ss);
    return GR_OK;
}

static int build_windows(gen_model *g, const gr_split *sp)
{
    if ((gen_templated(g) ? build_windows_sft(g, sp) : build_windows_packed(g, sp)) != GR_OK) return GR_ERR;
    const int64_t nw = g->n_win;
    if (nw < 1) return gr_errorf("the split has no training samples");
    for (int64_t w = 0; w < nw; w++)
        if (g->woff[w + 1] - g->woff[w] > g->ctx)
            return gr_errorf("training sample %lld has %lld tokens, more than ctx %d", (long long)w,
                             (long long)(g->woff[w + 1] - g->woff[w]), g->ctx);
    g->order = gr_alloc((size_t)nw + 1, sizeof(int64_t));
    if (!g->order) return GR_ERR;
    for (int64_t w = 0; w < nw; w++) g->order[w] = w;
    g->cursor = nw; /* shuffle at the first micro-batch */
    g->bcap = g->batch + g->ctx;
    g->btok = gr_alloc((size_t)g->bcap, sizeof(int32_t));
    g->btgt = gr_alloc((size_t)g->bcap, sizeof(int32_t));
    g->boff = gr_alloc((size_t)g->bcap + 1, sizeof(int32_t));
    return g->btok && g->btgt && g->boff ? GR_OK : GR_ERR;
}

static void shuffle_windows(gen_model *g)
{
    for (int64_t i = g->n_win - 1; i > 0; i--) {
        int64_t j = (int64_t)(gr_rng_below(&g->rng, (uint64_t)(i + 1)));
        int64_t t = g->order[i]; g->order[i] = g->order[j]; g->order[j] = t;
    }
    g->cursor = 0;
}

/* Trainer callback: the next windows of this epoch, up to `batch` tokens. */
static int gen_micro_batch(void *ctx, gr_rng *rng, float *loss, int64_t *n_tokens)
{
    gen_model *g = ctx;
    if (g->cursor >= g->n_win) shuffle_windows(g);
    int N = 0, n_seq = 0;
    g->boff[0] = 0;
    while (g->cursor < g->n_win) {
        int64_t w = g->order[g->cursor];
        int64_t len = g->woff[w + 1] - g->woff[w];
        if (n_seq > 0 && N + len > g->batch) break;
        memcpy(g->btok + N, g->wtok + g->woff[w], sizeof(int32_t) * (size_t)len);
        memcpy(g->btgt + N, g->wtgt + g->woff[w], sizeof(int32_t) * (size_t)len);
        N += (int)len;
        g->boff[++n_seq] = N;
        g->cursor++;
    }
    gr_lm_batch b = {g->btok, g->btgt, NULL, g->boff, n_seq, N};
    *n_tokens = N;
    return gr_lm_forward_backward(g->lm, &b, loss, rng);
}

/* Templated prompt ids (gen_internal.h): the last max_hist items, the
 * oldest dropped until the prompt fits beside the longest answer; if even
 * the history-free prompt is too long, its tokens after the first are cut
 * from the left (as gr_sft_build does for training). */
static int32_t *make_prompt_tmpl(const gen_model *g, const gr_query *q, int64_t *n)
{
    const int64_t budget = g->ctx - g->tr->max_depth;
    gr_prompt_tmpl t = g->tmpl;
    t.max_hist = g->max_hist;
    int32_t shown = q->hist_len < g->max_hist ? q->hist_len : g->max_hist;
    for (;;) {
        int32_t *p = gr_prompt_encode(&t, gr_lm_tokenizer(g->lm), g->it, q->hist + (q->hist_len - shown), shown, n);
        if (!p) return NULL;
        if (*n <= budget) return p;
        if (shown > 0) {
            gr_free(p);
            shown--;
            continue;
        }
        const int64_t cut = *n - budget;
        memmove(p + 1, p + 1 + cut, sizeof(int32_t) * (size_t)(*n - 1 - cut));
        *n = budget;
        return p;
    }
}

/* Prompt ids of a history: BOS + the answers of its last items that fit. */
int32_t *gen_make_prompt(const gen_model *g, const gr_query *q, int64_t *n)
{
    if (gen_templated(g)) return make_prompt_tmpl(g, q, n);
    int64_t budget = g->ctx - g->tr->max_depth - 1, used = 1;
    int32_t a = q->hist_len;
    while (a > 0 && q->hist_len - a < g->max_hist && used + g->ans_len[q->hist[a - 1]] <= budget)
        used += g->ans_len[q->hist[--a]];
    int32_t *p = gr_alloc((size_t)used, sizeof(int32_t));
    if (!p) return NULL;
    int64_t k = 0;
    p[k++] = g->bos;
    for (int32_t i = a; i < q->hist_len; i++) {
        memcpy(p + k, g->ans[q->hist[i]], sizeof(int32_t) * (size_t)g->ans_len[q->hist[i]]);
        k += g->ans_len[q->hist[i]];
    }
    *n = k;
    return p;
}

/* Row-wise softmax of the assistant's scores, in place ([n, n_items]);
 * -INFINITY scores get probability 0. */
static void softmax_rows(float *s, int n, int32_t n_items)
{
    for (int i = 0; i < n; i++) {
        float *r = s + (int64_t)i * n_items, mx = -INFINITY;
        for (int32_t j = 0; j < n_items; j++) if (r[j] > mx) mx = r[j];
        double z = 0.0;
        for (int32_t j = 0; j < n_items; j++) z += (r[j] = isfinite(mx) && r[j] > -INFINITY ? expf(r[j] - mx) : 0.0f);
        float inv = z > 0 ? (float)(1.0 / z) : 0.0f;
        for (int32_t j = 0; j < n_items; j++) r[j] *= inv;
    }
}

static int gen_score(gr_model *m, const gr_query *q, int n, float *scores)
{
    gen_model *g = m->impl;
    if (!g->fitted) return gr_errorf("%s: score called before fit", g->name);
    if (g->decode == GEN_DECODE_GROUND && !g->training) return gen_ground_score(m, q, n, scores);
    for (int i = 0; i < n; i++)
        for (int32_t j = 0; j < q[i].hist_len; j++)
            if (q[i].hist[j] < 0 || q[i].hist[j] >= g->n_items)
                return gr_errorf("score: query %d has history item %d outside [0, %d)", i, q[i].hist[j], g->n_items);
    int32_t **pr = gr_calloc((size_t)n + 1, sizeof(int32_t *));
    int64_t *pl = gr_alloc((size_t)n + 1, sizeof(int64_t));
    gr_beam_hit *hits = gr_alloc((size_t)n * g->beams + 1, sizeof(gr_beam_hit));
    int *nh = gr_alloc((size_t)n + 1, sizeof(int));
    const int assist = g->cf && !g->training && g->assist >= 0.0f && g->assist < 1.0f;
    float *cf = assist ? gr_alloc((size_t)n * (size_t)g->n_items, sizeof(float)) : NULL;
    int rc = GR_ERR;
    if (!pr || !pl || !hits || !nh || (assist && !cf)) goto out;
    for (int i = 0; i < n; i++)
        if (!(pr[i] = gen_make_prompt(g, &q[i], &pl[i]))) goto out;
    gr_beam_opts o = gr_beam_opts_default();
    o.n_beams = g->beams;
    o.lambda = g->lambda;
    if (assist) {
        if (g->cf->ops->score(g->cf, q, n, cf) != GR_OK) goto out;
        softmax_rows(cf, n, g->n_items);
        o.cf_prob = cf;
        o.cf_gamma = g->assist;
    }
    if (gr_beam_search(g->lm, g->tr, (const int32_t *const *)pr, pl, n, &o, g->beams, hits, nh) != GR_OK) goto out;
    for (int i = 0; i < n; i++) {
        float *row = scores + (int64_t)i * g->n_items;
        for (int32_t j = 0; j < g->n_items; j++) row[j] = -INFINITY;
        /* the hypothesis score (sum of log-probabilities / len^lambda), made
         * strictly decreasing so that items sharing a leaf keep the trie's
         * order (most popular first) in every ranking */
        float prev = INFINITY;
        for (int k = 0; k < nh[i]; k++) {
            float sc = hits[(int64_t)i * g->beams + k].score;
            if (!(sc < prev)) sc = nextafterf(prev, -INFINITY);
            row[hits[(int64_t)i * g->beams + k].item] = prev = sc;
        }
        m->n_returned += nh[i]; /* trie leaves are real items: never invalid */
    }
    rc = GR_OK;
out:
    if (pr) for (int i = 0; i < n; i++) gr_free(pr[i]);
    gr_free(pr); gr_free(pl); gr_free(hits); gr_free(nh); gr_free(cf);
    return rc == GR_OK ? GR_OK : gr_error_prefix("score: ");
}

/* Train the assistant's SASRec on the split (its own defaults and early
 * stopping through ctx), then choose g on validation when assist < 0. */
static int fit_assistant(gr_model *m, gen_model *g, const gr_split *sp, gr_fit_ctx *ctx, double lm_valid)
{
    const int verbose = ctx && ctx->verbose;
    if (verbose) gr_log(1, "%s assist: training SASRec-CE for the assistant\n", g->name);
    if (g->cf->ops->fit(g->cf, sp, ctx) != GR_OK) return gr_error_prefix("assistant: ");
    if (g->assist >= 0.0f) return GR_OK;
    if (!ctx || !ctx->validate) { g->assist = 1.0f; return GR_OK; }
    static const float grid[] = {0.8f, 0.6f, 0.4f, 0.2f};
    float best_g = 1.0f;
    double best = lm_valid;
    for (size_t i = 0; i < sizeof grid / sizeof grid[0]; i++) {
        g->assist = grid[i];
        double v = ctx->validate(ctx, m);
        if (v < 0) return gr_error_prefix("assistant: validation at g = %.1f: ", (double)grid[i]);
        if (verbose) gr_log(1, "%s assist: g = %.1f valid NDCG@10 %.4f\n", g->name, (double)grid[i], v);
        if (v > best) { best = v; best_g = grid[i]; }
    }
    g->assist = best_g;
    if (verbose) gr_log(1, "%s assist: chose g = %.1f (valid NDCG@10 %.4f; LM alone %.4f)\n", g->name,
                        (double)best_g, best, lm_valid);
    return GR_OK;
}

/* After the language model: the assistant, grounding's gamma. lm_valid is
 * the model's validation NDCG@10 alone (< 0: unknown, measured if needed). */
static int finish_fit(gr_model *m, gen_model *g, const gr_split *sp, gr_fit_ctx *ctx, double lm_valid)
{
    if (g->assist != 1.0f) {
        if (lm_valid < 0 && g->assist < 0 && ctx && ctx->validate) {
            const float a = g->assist;
            g->assist = 1.0f;
            lm_valid = ctx->validate(ctx, m);
            g->assist = a;
            if (lm_valid < 0) return gr_error_prefix("fit: validation: ");
        }
        if (fit_assistant(m, g, sp, ctx, lm_valid) != GR_OK) return gr_error_prefix("fit: ");
    }
    if (g->decode == GEN_DECODE_GROUND && gen_ground_choose_gamma(m, g, ctx) != GR_OK) return gr_error_prefix("fit: ");
    return GR_OK;
}

/* NAME.load = FILE: take the language model, vocabulary, answers and trie
 * of a model saved by gr_model_save (same model kind, same items in the same
 * order) instead of training; decoding settings (beams, lambda, assist,
 * ground...) come from the current parameters. Lets decoding variants be
 * evaluated on one trained model. */
static int load_fitted(gr_model *m, gen_model *g, const gr_split *sp)
{
    gr_rec_catalog *cat = NULL;
    gr_model *lm = gr_model_load(g->load, &cat);
    if (!lm) return GR_ERR;
    gen_model *h = lm->impl;
    int rc = GR_ERR;
    if (h->items != g->items) {
        gr_errorf("%s: %s: the file holds a %s model", g->load, g->prefix, h->name);
        goto out;
    }
    if (cat->n_items != sp->n_items) {
        gr_errorf("%s: the model has %d items, the dataset %d", g->load, (int)cat->n_items, (int)sp->n_items);
        goto out;
    }
    for (int32_t i = 0; i < sp->n_items; i++)
        if (strcmp(cat->item_key[i], sp->data->item_key[i])) {
            gr_errorf("%s: item %d is '%.40s' in the model but '%.40s' in the dataset", g->load, (int)i,
                      cat->item_key[i], sp->data->item_key[i]);
            goto out;
        }
    g->pop = gr_rec_train_counts(sp);
    if (!g->pop) goto out;
    g->n_items = h->n_items;
    g->lm = h->lm; h->lm = NULL;
    g->tr = h->tr; h->tr = NULL;
    g->ans = h->ans; h->ans = NULL;
    g->ans_len = h->ans_len; h->ans_len = NULL;
    g->it = h->it; h->it = NULL;
    g->sid = h->sid; h->sid = NULL;
    /* the prompt template is part of training: the file's, whatever the parameters say */
    gr_free(g->category); g->category = h->category; h->category = NULL;
    gr_free(g->base); g->base = h->base; h->base = NULL;
    g->tmpl = h->tmpl;
    g->tmpl.category = g->category;
    if (!g->max_hist_set) g->max_hist = h->max_hist;
    g->kv_heads = h->kv_heads;
    g->lora_rank = h->lora_rank; g->lora_alpha = h->lora_alpha; g->sft_samples = h->sft_samples;
    g->with_genres = h->with_genres; g->with_brand = h->with_brand; g->strip_year = h->strip_year;
    g->bos = h->bos;
    g->eos = h->eos;
    g->dim = h->dim; g->layers = h->layers; g->heads = h->heads; g->ff = h->ff; g->ctx = h->ctx;
    g->vocab = h->vocab; g->sid_levels = h->sid_levels; g->sid_k = h->sid_k; g->sid_dim = h->sid_dim;
    g->sid_emb = h->sid_emb;
    g->epochs_run = h->epochs_run;
    g->best_epoch = h->best_epoch;
    g->fitted = 1;
    g->version++;
    m->n_items = g->n_items;
    rc = GR_OK;
out:
    gr_rec_catalog_free(cat);
    gr_model_free(lm);
    return rc;
}

static int gen_fit(gr_model *m, const gr_split *sp, gr_fit_ctx *ctx)
{
    gen_model *g = m->impl;
    gen_state_free(g);
    if (!sp || !sp->data || sp->n_items <= 0) return gr_errorf("fit: the split has no dataset with item texts");
    const uint64_t seed = (ctx ? ctx->seed : 42) + (uint64_t)g->seed_offset;
    const int verbose = ctx && ctx->verbose;
    gr_rng_seed(&g->rng, seed);
    if (g->load) {
        if (load_fitted(m, g, sp) != GR_OK) {
            gen_state_free(g);
            return gr_error_prefix("fit: ");
        }
        if (verbose) gr_log(1, "%s loaded from %s (trained %d epochs, best %d)\n", g->name, g->load, g->epochs_run,
                            g->best_epoch);
        return finish_fit(m, g, sp, ctx, -1.0);
    }
    double t0 = gr_time_now();
    if (gen_items_build(g, sp) != GR_OK || build_windows(g, sp) != GR_OK) {
        gen_state_free(g);
        return gr_error_prefix("fit: ");
    }
    m->n_items = sp->n_items;
    g->fitted = 1;
    gr_tfm *tfm = gr_lm_tfm(g->lm);
    /* LoRA (gen.lora = r): adapters on the frozen base are what is trained,
     * kept best and restored; they are merged into the base at the end */
    gr_lora *lora = NULL;
    if (g->lora_rank > 0) {
        gr_lora_config lc = {g->lora_rank, g->lora_alpha, g->lora_targets, gr_rng_u64(&g->rng)};
        if (!(lora = gr_lora_attach(tfm, &lc))) return gr_error_prefix("fit: gen.lora: ");
        gr_tfm_set_frozen(tfm, 1);
    }
    float *const params = lora ? gr_lora_params(lora) : gr_tfm_params(tfm);
    float *const grads = lora ? gr_lora_grads(lora) : gr_tfm_grads(tfm);
    const int64_t np = lora ? gr_lora_n_params(lora) : gr_tfm_n_params(tfm), ntok = g->woff[g->n_win];
    /* an "epoch" (the unit of validation, patience and the epoch cap) is one
     * pass over the windows, or as many passes as make round_steps optimizer
     * steps where a pass is shorter (small catalogues: a pass of Scientific's
     * semantic IDs is 15 steps), so the schedule and the number of
     * validations do not shrink with the dataset */
    const int64_t steps_per_pass = (ntok + g->batch - 1) / g->batch;
    const int64_t passes = gen_epoch_passes(steps_per_pass, g->round_steps);
    const int64_t steps_per_epoch = passes * steps_per_pass;
    if (verbose) {
        if (g->base && g->items == GEN_ITEMS_TITLE)
            gr_log(1, "%s fine-tuning %s (%s, %lld parameters) with the %s template, %s\n", g->name, g->base,
                   gr_lm_arch(g->lm) == GR_ARCH_LLAMA ? "llama" : "gpt2", (long long)gr_tfm_n_params(tfm),
                   g->tmpl.name, lora ? "LoRA" : "all weights");
        gr_log(1, "%s %d items, vocab %d, trie %d nodes (depth %d), %lld %s / %lld tokens, %lld %sparameters "
               "(%.1fs)\n", g->name, (int)g->n_items, gr_lm_vocab(g->lm), (int)g->tr->n_nodes,
               (int)g->tr->max_depth, (long long)g->n_win, gen_templated(g) ? "samples" : "windows", (long long)ntok,
               (long long)np, lora ? "trained (LoRA) " : "", gr_time_now() - t0);
        if (g->sid && g->base) gr_log(1, "%s semantic IDs over %s's embeddings of the item texts\n", g->name, g->base);
        if (g->sid) gr_semid_print_report(g->sid, stderr);
        gr_log(1, "%s epoch = %lld pass%s of %lld steps (round_steps %d), at most %d epochs, patience %d\n", g->name,
               (long long)passes, passes > 1 ? "es" : "", (long long)steps_per_pass, g->round_steps, g->epochs,
               g->patience);
    }
    uint8_t *mask = gr_alloc((size_t)np, 1);
    g->best = gr_alloc((size_t)np, sizeof(float));
    if (!mask || !g->best) { gr_free(mask); return gr_error_prefix("fit: "); }
    if (lora) gr_lora_decay_mask(lora, mask);
    else gr_tfm_decay_mask(tfm, mask);
    gr_train_config tc;
    gr_train_config_default(&tc);
    tc.steps = steps_per_epoch * g->epochs;
    tc.lr = g->lr;
    tc.min_lr = g->lr * 0.1f;
    tc.warmup = steps_per_epoch < 100 ? steps_per_epoch : 100;
    tc.weight_decay = g->wd;
    tc.beta2 = 0.98f;
    tc.clip = 1.0f;
    tc.seed = seed ^ 0x9e3779b97f4a7c15ULL;
    tc.log_every = verbose ? 25 : 0;
    gr_train_task task = {0};
    task.ctx = g;
    task.micro_batch = gen_micro_batch;
    gr_trainer *tr = gr_trainer_new(&tc, params, grads, np, mask, &task);
    gr_free(mask);
    if (!tr) return gr_error_prefix("fit: ");
    double best = -1.0;
    int bad = 0, rc = GR_OK;
    g->epochs_run = g->best_epoch = 0;
    g->training = 1; /* validate the language model alone (beam search, no assistant) */
    for (int ep = 1; ep <= g->epochs; ep++) {
        double te = gr_time_now();
        /* an epoch = steps_per_epoch steps (whole passes: the micro-batch
         * callback reshuffles whenever it has used every window) */
        if (gr_trainer_run_until(tr, (int64_t)ep * steps_per_epoch) != GR_OK) { rc = GR_ERR; break; }
        g->epochs_run = ep;
        g->version++;
        double t1 = gr_time_now(), v = -1.0;
        if (ctx && ctx->validate) {
            v = ctx->validate(ctx, m);
            if (v < 0) { rc = gr_error_prefix("validation after epoch %d: ", ep); break; }
            if (v > best) {
                best = v;
                g->best_epoch = ep;
                bad = 0;
                memcpy(g->best, params, sizeof(float) * (size_t)np);
            } else {
                bad++;
            }
        }
        if (verbose)
            gr_log(1, "%s epoch %d last loss %.4f valid NDCG@10 %.4f%s (%.1fs train, %.1fs valid)\n", g->name, ep,
                   (double)gr_trainer_last_loss(tr), v, g->best_epoch == ep ? " *" : "", t1 - te, gr_time_now() - t1);
        if (bad >= g->patience) break;
    }
    gr_trainer_free(tr);
    g->training = 0;
    if (rc != GR_OK) return rc;
    if (g->best_epoch > 0) {
        memcpy(params, g->best, sizeof(float) * (size_t)np);
        g->version++;
        if (verbose) gr_log(1, "%s restored epoch %d (valid NDCG@10 %.4f)\n", g->name, g->best_epoch, best);
    }
    if (lora) {
        /* one plain model from here on (decoding at the base's speed, saving) */
        gr_lora_merge(tfm);
        gr_tfm_set_frozen(tfm, 0);
        g->version++;
    }
    /* the windows are only needed for training */
    gr_free(g->woff); gr_free(g->wtok); gr_free(g->wtgt); gr_free(g->order); gr_free(g->best);
    g->woff = NULL; g->wtok = g->wtgt = NULL; g->order = NULL; g->best = NULL;
    return finish_fit(m, g, sp, ctx, best);
}

static void gen_destroy(gr_model *m)
{
    gen_model *g = m->impl;
    if (g) {
        gen_state_free(g);
        gr_model_free(g->cf);
        gr_free(g->load);
        gr_free(g->base);
        gr_free(g->base_tok);
        gr_free(g->category);
    }
    gr_free(g);
}

static const gr_model_ops gen_ops = {"gen", gen_fit, gen_score, gen_destroy};
static const gr_model_ops gen_sid_ops = {"gen-sid", gen_fit, gen_score, gen_destroy};

/* Read NAME.KEY (g->prefix = "NAME.") into v (default def, range [lo, hi]). */
static int p_int(const gr_params *p, const gen_model *g, const char *key, int64_t def, int64_t lo, int64_t hi, int *v)
{
    char k[64];
    snprintf(k, sizeof k, "%s%s", g->prefix, key);
    int64_t x;
    if (gr_params_int(p, k, def, &x) != GR_OK) return GR_ERR;
    if (x < lo || x > hi) return gr_errorf("parameter '%s' (%lld) must be in [%lld, %lld]", k, (long long)x,
                                           (long long)lo, (long long)hi);
    *v = (int)x;
    return GR_OK;
}

static int p_float(const gr_params *p, const gen_model *g, const char *key, double def, double lo, double hi, float *v)
{
    char k[64];
    snprintf(k, sizeof k, "%s%s", g->prefix, key);
    double x;
    if (gr_params_float(p, k, def, &x) != GR_OK) return GR_ERR;
    if (!(x >= lo && x <= hi)) return gr_errorf("parameter '%s' (%g) must be in [%g, %g]", k, x, lo, hi);
    *v = (float)x;
    return GR_OK;
}

/* A string parameter NAME.key into *dst (owned copy; NULL when absent). */
static int p_str(const gr_params *p, const gen_model *g, const char *key, char **dst)
{
    char k[64];
    snprintf(k, sizeof k, "%s%s", g->prefix, key);
    const char *v = gr_params_str(p, k, NULL);
    *dst = NULL;
    if (!v) return GR_OK;
    if (!*v) return gr_errorf("parameter '%s' is empty", k);
    return (*dst = gr_strdup(v)) ? GR_OK : GR_ERR;
}

/* The pretrained-base, template and item-text keys of "gen" (see the top):
 * base, base_tokenizer, template, category, lora, lora_alpha, lora_targets,
 * sft_samples, with_genres, with_brand, strip_year. With a base the model's
 * shape comes from it, so the shape keys are refused. */
static int parse_base(const gr_params *p, gen_model *g)
{
    char *tn = NULL, *targets = NULL;
    if (p_str(p, g, "base", &g->base) || p_str(p, g, "base_tokenizer", &g->base_tok) ||
        p_str(p, g, "category", &g->category) || p_str(p, g, "template", &tn))
        return GR_ERR;
    int rc = gr_prompt_tmpl_by_name(tn ? tn : g->base ? "d3" : "compact", g->category, &g->tmpl);
    gr_free(tn);
    if (rc != GR_OK) return gr_error_prefix("parameter 'gen.template': ");
    if (g->base_tok && !g->base) return gr_errorf("parameter 'gen.base_tokenizer' needs gen.base");
    if (g->base) {
        static const char *const shape[] = {"gen.dim", "gen.layers", "gen.heads", "gen.ff", "gen.ctx", "gen.vocab",
                                            "gen.dropout", NULL};
        for (int i = 0; shape[i]; i++)
            if (gr_params_str(p, shape[i], NULL))
                return gr_errorf("parameter '%s' cannot be set with gen.base (the base model fixes it)", shape[i]);
    }
    if (p_int(p, g, "lora", 0, 0, 4096, &g->lora_rank) || p_float(p, g, "lora_alpha", 0.0, 0.0, 1e6, &g->lora_alpha) ||
        p_int(p, g, "sft_samples", 0, 0, 1 << 30, &g->sft_samples) ||
        p_int(p, g, "with_genres", 0, 0, 1, &g->with_genres) || p_int(p, g, "with_brand", 0, 0, 1, &g->with_brand) ||
        p_int(p, g, "strip_year", 0, 0, 1, &g->strip_year) || p_str(p, g, "lora_targets", &targets))
        return GR_ERR;
    if (g->lora_rank && !g->base) { gr_free(targets); return gr_errorf("parameter 'gen.lora' needs gen.base"); }
    rc = gr_lora_parse_targets(targets ? targets : "attn_q,attn_v", &g->lora_targets);
    gr_free(targets);
    if (rc != GR_OK) return gr_error_prefix("parameter 'gen.lora_targets': ");
    if (g->lora_alpha == 0.0f) g->lora_alpha = 2.0f * (float)g->lora_rank;
    return GR_OK;
}

static gr_model *create(const gr_params *p, gen_items items)
{
    static const char *const known_gen[] = {"gen.dim", "gen.layers", "gen.heads", "gen.ff", "gen.ctx", "gen.vocab",
        "gen.dropout", "gen.lr", "gen.wd", "gen.batch", "gen.epochs", "gen.round_steps", "gen.patience", "gen.beams",
        "gen.lambda", "gen.max_hist", "gen.assist", "gen.seed_offset", "gen.ground", "gen.ground_gamma", "gen.ground_pool",
        "gen.ground_beams", "gen.load", "gen.base", "gen.base_tokenizer", "gen.template", "gen.category", "gen.lora",
        "gen.lora_alpha", "gen.lora_targets", "gen.sft_samples", "gen.with_genres", "gen.with_brand", "gen.strip_year",
        NULL};
    static const char *const known_sid[] = {"gen-sid.dim", "gen-sid.layers", "gen-sid.heads", "gen-sid.ff",
        "gen-sid.ctx", "gen-sid.dropout", "gen-sid.lr", "gen-sid.wd", "gen-sid.batch", "gen-sid.epochs",
        "gen-sid.round_steps", "gen-sid.patience", "gen-sid.beams", "gen-sid.lambda", "gen-sid.max_hist",
        "gen-sid.assist", "gen-sid.seed_offset", "gen-sid.sid_levels", "gen-sid.sid_k", "gen-sid.sid_dim",
        "gen-sid.sid_emb", "gen-sid.ground", "gen-sid.ground_gamma", "gen-sid.ground_pool", "gen-sid.ground_beams",
        "gen-sid.load", "gen-sid.text_model", "gen-sid.text_tokenizer", NULL};
    gen_model *g = gr_calloc(1, sizeof *g);
    gr_model *m = gr_calloc(1, sizeof *m);
    if (!m || !g) goto fail;
    g->items = items;
    snprintf(g->name, sizeof g->name, "%s", items == GEN_ITEMS_SID ? "gen-sid" : "gen");
    snprintf(g->prefix, sizeof g->prefix, "%s.", g->name);
    if (baseline_params_check(p, g->prefix, items == GEN_ITEMS_SID ? known_sid : known_gen) != GR_OK) goto fail;
    int seed_off = 0, ground = 0;
    if (items == GEN_ITEMS_TITLE && parse_base(p, g) != GR_OK) goto fail;
    if (items == GEN_ITEMS_SID &&
        (p_str(p, g, "text_model", &g->base) != GR_OK || p_str(p, g, "text_tokenizer", &g->base_tok) != GR_OK))
        goto fail;
    if (items == GEN_ITEMS_SID && g->base_tok && !g->base) {
        gr_errorf("parameter 'gen-sid.text_tokenizer' needs gen-sid.text_model");
        goto fail;
    }
    const int based = items == GEN_ITEMS_TITLE && g->base != NULL;
    if (p_int(p, g, "dim", 128, 8, 4096, &g->dim) || p_int(p, g, "layers", 2, 1, 64, &g->layers) ||
        p_int(p, g, "heads", 4, 1, 64, &g->heads) || p_int(p, g, "ff", 0, 0, 65536, &g->ff) ||
        p_int(p, g, "ctx", 256, 16, 8192, &g->ctx) || p_int(p, g, "vocab", 0, 0, 1 << 20, &g->vocab) ||
        p_int(p, g, "batch", 4096, 16, 1 << 24, &g->batch) || p_int(p, g, "epochs", based ? 3 : 20, 1, 100000, &g->epochs) ||
        p_int(p, g, "round_steps", 100, 0, 1 << 30, &g->round_steps) ||
        p_int(p, g, "patience", based ? 1 : 3, 1, 100000, &g->patience) || p_int(p, g, "beams", 20, 1, 1024, &g->beams) ||
        p_int(p, g, "max_hist", gen_templated(g) ? g->tmpl.max_hist : 50, 1, 1 << 20, &g->max_hist) ||
        p_int(p, g, "seed_offset", 0, 0, 1 << 30, &seed_off) ||
        p_int(p, g, "sid_levels", 3, 1, GR_SEMID_MAX_LEVELS, &g->sid_levels) ||
        p_int(p, g, "sid_k", 0, 0, 65536, &g->sid_k) || p_int(p, g, "sid_dim", 64, 2, 4096, &g->sid_dim) ||
        p_int(p, g, "sid_emb", 2, 0, 2, &g->sid_emb) || p_int(p, g, "ground", 0, 0, 1, &ground) ||
        p_int(p, g, "ground_pool", 0, 0, 1, &g->ground_pool) || p_int(p, g, "ground_beams", 1, 1, 256, &g->ground_beams) ||
        p_float(p, g, "ground_gamma", -1.0, -1.0, 1000.0, &g->ground_gamma) ||
        p_float(p, g, "dropout", 0.1, 0.0, 0.99, &g->dropout) || p_float(p, g, "lr", based ? 3e-4 : 2e-3, 0.0, 1.0, &g->lr) ||
        p_float(p, g, "wd", 0.01, 0.0, 10.0, &g->wd) || p_float(p, g, "lambda", 0.0, 0.0, 10.0, &g->lambda) ||
        p_float(p, g, "assist", 1.0, -1.0, 1.0, &g->assist))
        goto fail;
    {
        char mk[40];
        snprintf(mk, sizeof mk, "%smax_hist", g->prefix);
        g->max_hist_set = gr_params_str(p, mk, NULL) != NULL;
    }
    if (g->dim % g->heads) {
        gr_errorf("parameter '%sheads' (%d) must divide %sdim (%d)", g->prefix, g->heads, g->prefix, g->dim);
        goto fail;
    }
    if (p_str(p, g, "load", &g->load) != GR_OK) goto fail;
    if (g->sid_k == 1) { gr_errorf("parameter '%ssid_k' must be 0 (the rule) or >= 2", g->prefix); goto fail; }
    g->seed_offset = seed_off;
    g->decode = ground ? GEN_DECODE_GROUND : GEN_DECODE_BEAM;
    /* the assistant's SASRec takes the sasrec.* parameters of the same list */
    if (g->assist != 1.0f && !(g->cf = gr_model_create("sasrec", p))) goto fail;
    m->ops = items == GEN_ITEMS_SID ? &gen_sid_ops : &gen_ops;
    m->impl = g;
    m->max_k = g->decode == GEN_DECODE_GROUND ? 0 : g->beams; /* grounding ranks every item */
    return m;
fail:
    if (g) { gr_free(g->load); gr_free(g->base); gr_free(g->base_tok); gr_free(g->category); }
    gr_free(m);
    gr_free(g);
    return NULL;
}

gr_model *gr_gen_create(const gr_params *p)
{
    return create(p, GEN_ITEMS_TITLE);
}

gr_model *gr_gen_sid_create(const gr_params *p)
{
    return create(p, GEN_ITEMS_SID);
}
