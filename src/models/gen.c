/* "gen": generative recommendation with items as text (issue 4), trained
 * from scratch on the split and decoded with trie-constrained beam search.
 *
 * Items: the title (gr_itemtext_build); the answer of an item is
 * encode(" " + title) followed by the end marker EOS (gr_answer_encode with
 * the compact template). A byte-level BPE vocabulary is trained on the
 * catalogue's texts (gr_rec_corpus + gr_bpe_train).
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
 * Model: a small Llama (RMSNorm, RoPE, SwiGLU) through gr_lm, trained with
 * the generic trainer (AdamW, warmup + cosine, clipping). After every epoch
 * the model is evaluated on the validation queries with the real decoder
 * (ctx->validate -> score -> constrained beam search); training stops after
 * `patience` epochs without a better NDCG@10 and the best parameters return.
 *
 * Scoring: the last max_hist history items that fit the context with the
 * longest item; gr_beam_search with `beams` beams (length exponent lambda);
 * the returned items get decreasing scores, every other item -INFINITY.
 *
 * Hyperparameters (gen.KEY=VALUE): dim 128, layers 2, heads 4, ff 0 (= 3 x
 * dim, SwiGLU), ctx 256, vocab 0 (auto: the next power of two >= n_items,
 * clamped to [512, 4096]), dropout 0.1, lr 2e-3, wd 0.01, batch 4096
 * (tokens per step), epochs 20, patience 3, beams 20, lambda 0, max_hist 50,
 * seed_offset 0. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "baseline_params.h"
#include "genrec/beam.h"
#include "genrec/itemtext.h"
#include "genrec/lm.h"
#include "genrec/model.h"
#include "genrec/train.h"
#include "genrec/trie.h"

typedef struct gen_model {
    /* hyperparameters */
    int dim, layers, heads, ff, ctx, vocab, batch, epochs, patience, beams, max_hist;
    float dropout, lr, wd, lambda;
    int64_t seed_offset;
    /* fitted state */
    int fitted;
    int32_t n_items;
    gr_itemtext *it;
    gr_prompt_tmpl tmpl;
    gr_lm *lm;
    gr_trie *tr;
    int32_t **ans;           /* [n_items] answer ids (tokens + EOS) */
    int64_t *ans_len;
    int32_t bos;
    /* training windows: window w is wtok[woff[w] .. woff[w+1]), targets wtgt */
    int64_t n_win, *woff;
    int32_t *wtok, *wtgt;
    int64_t *order, cursor;
    int32_t *btok, *btgt, *boff;
    int64_t bcap;
    gr_rng rng;
    float *best;
    int epochs_run, best_epoch;
} gen_model;

static void free_state(gen_model *g)
{
    gr_itemtext_free(g->it); g->it = NULL;
    gr_lm_free(g->lm); g->lm = NULL;
    gr_trie_free(g->tr); g->tr = NULL;
    if (g->ans) for (int32_t i = 0; i < g->n_items; i++) gr_free(g->ans[i]);
    gr_free(g->ans); g->ans = NULL;
    gr_free(g->ans_len); g->ans_len = NULL;
    gr_free(g->woff); gr_free(g->wtok); gr_free(g->wtgt); gr_free(g->order);
    g->woff = NULL; g->wtok = g->wtgt = NULL; g->order = NULL;
    gr_free(g->btok); gr_free(g->btgt); gr_free(g->boff);
    g->btok = g->btgt = g->boff = NULL;
    gr_free(g->best); g->best = NULL;
    g->fitted = 0;
}

/* Tokenizer, answers, trie. */
static int build_items(gen_model *g, const gr_split *sp)
{
    g->n_items = sp->n_items;
    g->it = gr_itemtext_build(sp->data, NULL);
    if (!g->it) return GR_ERR;
    g->tmpl = gr_prompt_tmpl_compact();
    size_t len;
    char *corpus = gr_rec_corpus(&g->tmpl, g->it, &len);
    if (!corpus) return GR_ERR;
    int V = g->vocab;
    if (V <= 0) {
        V = 512;
        while (V < sp->n_items && V < 4096) V *= 2;
    }
    const char *specials[1] = {"<|endoftext|>"};
    gr_bpe_train_opts bo = {V, 2, specials, 1};
    gr_tokenizer *tok = gr_bpe_train(corpus, len, &bo);
    gr_free(corpus);
    if (!tok) return GR_ERR;
    g->bos = gr_tokenizer_bos(tok);
    gr_tfm_config c;
    int ff = g->ff > 0 ? g->ff : 3 * g->dim;
    gr_lm_config_preset(&c, GR_ARCH_LLAMA, g->layers, g->dim, g->heads, 0, ff, g->ctx, gr_tokenizer_n_vocab(tok));
    c.dropout = g->dropout;
    c.tied = 1;
    g->lm = gr_lm_init(GR_ARCH_LLAMA, &c, gr_rng_u64(&g->rng));
    if (!g->lm) { gr_tokenizer_free(tok); return GR_ERR; }
    if (gr_lm_set_tokenizer(g->lm, tok) != GR_OK) { gr_tokenizer_free(tok); return GR_ERR; }
    g->ans = gr_calloc((size_t)g->n_items, sizeof *g->ans);
    g->ans_len = gr_calloc((size_t)g->n_items, sizeof *g->ans_len);
    if (!g->ans || !g->ans_len) return GR_ERR;
    for (int32_t i = 0; i < g->n_items; i++) {
        g->ans[i] = gr_answer_encode(&g->tmpl, tok, g->it, i, &g->ans_len[i]);
        if (!g->ans[i]) return GR_ERR;
    }
    double *pop = gr_rec_train_counts(sp);
    if (!pop) return GR_ERR;
    g->tr = gr_trie_build_answers(&g->tmpl, tok, g->it, pop);
    gr_free(pop);
    if (!g->tr) return GR_ERR;
    if (gr_trie_check_answers(g->tr, &g->tmpl, tok, g->it, NULL) != GR_OK) return GR_ERR;
    if (g->tr->max_depth + 2 > g->ctx)
        return gr_errorf("gen: the longest item takes %d tokens; ctx (%d) is too small", g->tr->max_depth, g->ctx);
    return GR_OK;
}

/* Cut every user's training sequence into windows (see the top). */
static int build_windows(gen_model *g, const gr_split *sp)
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

/* Prompt ids of a history: BOS + the answers of its last items that fit. */
static int32_t *make_prompt(const gen_model *g, const gr_query *q, int64_t *n)
{
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

static int gen_score(gr_model *m, const gr_query *q, int n, float *scores)
{
    gen_model *g = m->impl;
    if (!g->fitted) return gr_errorf("gen: score called before fit");
    for (int i = 0; i < n; i++)
        for (int32_t j = 0; j < q[i].hist_len; j++)
            if (q[i].hist[j] < 0 || q[i].hist[j] >= g->n_items)
                return gr_errorf("gen: score: query %d has history item %d outside [0, %d)", i, q[i].hist[j], g->n_items);
    int32_t **pr = gr_calloc((size_t)n + 1, sizeof(int32_t *));
    int64_t *pl = gr_alloc((size_t)n + 1, sizeof(int64_t));
    gr_beam_hit *hits = gr_alloc((size_t)n * g->beams + 1, sizeof(gr_beam_hit));
    int *nh = gr_alloc((size_t)n + 1, sizeof(int));
    int rc = GR_ERR;
    if (!pr || !pl || !hits || !nh) goto out;
    for (int i = 0; i < n; i++)
        if (!(pr[i] = make_prompt(g, &q[i], &pl[i]))) goto out;
    gr_beam_opts o = gr_beam_opts_default();
    o.n_beams = g->beams;
    o.lambda = g->lambda;
    if (gr_beam_search(g->lm, g->tr, (const int32_t *const *)pr, pl, n, &o, g->beams, hits, nh) != GR_OK) goto out;
    for (int i = 0; i < n; i++) {
        float *row = scores + (int64_t)i * g->n_items;
        for (int32_t j = 0; j < g->n_items; j++) row[j] = -INFINITY;
        for (int k = 0; k < nh[i]; k++) row[hits[(int64_t)i * g->beams + k].item] = (float)(g->beams - k);
    }
    rc = GR_OK;
out:
    if (pr) for (int i = 0; i < n; i++) gr_free(pr[i]);
    gr_free(pr); gr_free(pl); gr_free(hits); gr_free(nh);
    return rc == GR_OK ? GR_OK : gr_error_prefix("gen: score: ");
}

static int gen_fit(gr_model *m, const gr_split *sp, gr_fit_ctx *ctx)
{
    gen_model *g = m->impl;
    free_state(g);
    if (!sp || !sp->data || sp->n_items <= 0) return gr_errorf("gen: fit: the split has no dataset with item texts");
    const uint64_t seed = (ctx ? ctx->seed : 42) + (uint64_t)g->seed_offset;
    const int verbose = ctx && ctx->verbose;
    gr_rng_seed(&g->rng, seed);
    double t0 = gr_time_now();
    if (build_items(g, sp) != GR_OK || build_windows(g, sp) != GR_OK) {
        free_state(g);
        return gr_error_prefix("gen: fit: ");
    }
    m->n_items = sp->n_items;
    g->fitted = 1;
    gr_tfm *tfm = gr_lm_tfm(g->lm);
    const int64_t np = gr_tfm_n_params(tfm), ntok = g->woff[g->n_win];
    const int64_t steps_per_epoch = (ntok + g->batch - 1) / g->batch;
    if (verbose)
        gr_log(1, "gen: %d items, vocab %d, trie %d nodes (depth %d), %lld windows / %lld tokens, %lld parameters "
               "(%.1fs)\n", (int)g->n_items, gr_lm_vocab(g->lm), (int)g->tr->n_nodes, (int)g->tr->max_depth,
               (long long)g->n_win, (long long)ntok, (long long)np, gr_time_now() - t0);
    uint8_t *mask = gr_alloc((size_t)np, 1);
    g->best = gr_alloc((size_t)np, sizeof(float));
    if (!mask || !g->best) { gr_free(mask); return gr_error_prefix("gen: fit: "); }
    gr_tfm_decay_mask(tfm, mask);
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
    gr_trainer *tr = gr_trainer_new(&tc, gr_tfm_params(tfm), gr_tfm_grads(tfm), np, mask, &task);
    gr_free(mask);
    if (!tr) return gr_error_prefix("gen: fit: ");
    double best = -1.0;
    int bad = 0, rc = GR_OK;
    g->epochs_run = g->best_epoch = 0;
    for (int ep = 1; ep <= g->epochs; ep++) {
        double te = gr_time_now();
        /* an epoch = steps_per_epoch steps (about one pass: the micro-batch
         * callback reshuffles whenever it has used every window) */
        if (gr_trainer_run_until(tr, (int64_t)ep * steps_per_epoch) != GR_OK) { rc = GR_ERR; break; }
        g->epochs_run = ep;
        double t1 = gr_time_now(), v = -1.0;
        if (ctx && ctx->validate) {
            v = ctx->validate(ctx, m);
            if (v < 0) { rc = gr_error_prefix("gen: validation after epoch %d: ", ep); break; }
            if (v > best) {
                best = v;
                g->best_epoch = ep;
                bad = 0;
                memcpy(g->best, gr_tfm_params(tfm), sizeof(float) * (size_t)np);
            } else {
                bad++;
            }
        }
        if (verbose)
            gr_log(1, "gen: epoch %d last loss %.4f valid NDCG@10 %.4f%s (%.1fs train, %.1fs valid)\n", ep,
                   (double)gr_trainer_last_loss(tr), v, g->best_epoch == ep ? " *" : "", t1 - te, gr_time_now() - t1);
        if (bad >= g->patience) break;
    }
    gr_trainer_free(tr);
    if (rc != GR_OK) return rc;
    if (g->best_epoch > 0) {
        memcpy(gr_tfm_params(tfm), g->best, sizeof(float) * (size_t)np);
        if (verbose) gr_log(1, "gen: restored epoch %d (valid NDCG@10 %.4f)\n", g->best_epoch, best);
    }
    /* the windows are only needed for training */
    gr_free(g->woff); gr_free(g->wtok); gr_free(g->wtgt); gr_free(g->order);
    g->woff = NULL; g->wtok = g->wtgt = NULL; g->order = NULL;
    return GR_OK;
}

static void gen_destroy(gr_model *m)
{
    gen_model *g = m->impl;
    if (g) free_state(g);
    gr_free(g);
}

static const gr_model_ops gen_ops = {"gen", gen_fit, gen_score, gen_destroy};

gr_model *gr_gen_create(const gr_params *p)
{
    static const char *const known[] = {"gen.dim", "gen.layers", "gen.heads", "gen.ff", "gen.ctx", "gen.vocab",
                                        "gen.dropout", "gen.lr", "gen.wd", "gen.batch", "gen.epochs",
                                        "gen.patience", "gen.beams", "gen.lambda", "gen.max_hist",
                                        "gen.seed_offset", NULL};
    if (baseline_params_check(p, "gen.", known) != GR_OK) return NULL;
    int64_t dim, layers, heads, ff, ctx, vocab, batch, epochs, patience, beams, max_hist, seed_offset;
    double dropout, lr, wd, lambda;
    if (gr_params_int(p, "gen.dim", 128, &dim) || gr_params_int(p, "gen.layers", 2, &layers) ||
        gr_params_int(p, "gen.heads", 4, &heads) || gr_params_int(p, "gen.ff", 0, &ff) ||
        gr_params_int(p, "gen.ctx", 256, &ctx) || gr_params_int(p, "gen.vocab", 0, &vocab) ||
        gr_params_int(p, "gen.batch", 4096, &batch) || gr_params_int(p, "gen.epochs", 20, &epochs) ||
        gr_params_int(p, "gen.patience", 3, &patience) || gr_params_int(p, "gen.beams", 20, &beams) ||
        gr_params_int(p, "gen.max_hist", 50, &max_hist) || gr_params_int(p, "gen.seed_offset", 0, &seed_offset) ||
        gr_params_float(p, "gen.dropout", 0.1, &dropout) || gr_params_float(p, "gen.lr", 2e-3, &lr) ||
        gr_params_float(p, "gen.wd", 0.01, &wd) || gr_params_float(p, "gen.lambda", 0.0, &lambda))
        return NULL;
#define RANGE(v, lo, hi, name) if ((v) < (lo) || (v) > (hi)) { gr_errorf("parameter 'gen." name "' (%g) must be in [%g, %g]", (double)(v), (double)(lo), (double)(hi)); return NULL; }
    RANGE(dim, 8, 4096, "dim") RANGE(layers, 1, 64, "layers") RANGE(heads, 1, 64, "heads") RANGE(ff, 0, 65536, "ff")
    RANGE(ctx, 16, 8192, "ctx") RANGE(vocab, 0, 1 << 20, "vocab") RANGE(batch, 16, 1 << 24, "batch")
    RANGE(epochs, 1, 100000, "epochs") RANGE(patience, 1, 100000, "patience") RANGE(beams, 1, 1024, "beams")
    RANGE(max_hist, 1, 1 << 20, "max_hist") RANGE(dropout, 0.0, 0.99, "dropout") RANGE(lr, 0.0, 1.0, "lr")
    RANGE(wd, 0.0, 10.0, "wd") RANGE(lambda, 0.0, 10.0, "lambda")
#undef RANGE
    if (dim % heads) { gr_errorf("parameter 'gen.heads' (%lld) must divide gen.dim (%lld)", (long long)heads, (long long)dim); return NULL; }
    gr_model *m = gr_calloc(1, sizeof *m);
    gen_model *g = gr_calloc(1, sizeof *g);
    if (!m || !g) { gr_free(m); gr_free(g); return NULL; }
    g->dim = (int)dim; g->layers = (int)layers; g->heads = (int)heads; g->ff = (int)ff; g->ctx = (int)ctx;
    g->vocab = (int)vocab; g->batch = (int)batch; g->epochs = (int)epochs; g->patience = (int)patience;
    g->beams = (int)beams; g->max_hist = (int)max_hist; g->seed_offset = seed_offset;
    g->dropout = (float)dropout; g->lr = (float)lr; g->wd = (float)wd; g->lambda = (float)lambda;
    m->ops = &gen_ops;
    m->impl = g;
    m->max_k = g->beams;
    return m;
}

