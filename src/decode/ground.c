/* BIGRec-style grounding (ground.h): unconstrained generation (greedy or
 * beam search) for groups of prompts, item and generation embeddings from
 * pooled final hidden states, Euclidean distances through one GEMM, and the
 * popularity / collaborative adjustment (1 + p~)^(-gamma) * d~. */
#include "decode/decode_internal.h"
#include "genrec/ground.h"
#include "genrec/decode.h"
#include "genrec/gemm.h"
#include "genrec/trie.h"
#include "genrec/xent.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

gr_ground_opts gr_ground_opts_default(void)
{
    gr_ground_opts o = {0};
    o.eos = -1;
    o.max_new = 64;
    o.n_beams = 1;
    o.lambda = 1.0f;
    o.group = 16;
    return o;
}

/* ---- stage 1: generation ------------------------------------------------------- */

/* the best K tokens of each row by logit (descending, ties to the lower id)
 * with their log-probabilities; lse (n) and scratch (n, V) are work space */
static void row_topk(const float *logits, int n, int V, int K, float *scratch, double *lse, int32_t *top_tok,
                     double *top_lp)
{
    gr_decode_row_lse(logits, n, V, lse, scratch);
#pragma omp parallel for schedule(static) if ((int64_t)n * V > 65536)
    for (int r = 0; r < n; r++) {
        const float *z = logits + (int64_t)r * V;
        int32_t *tt = top_tok + (int64_t)r * K;
        double *tl = top_lp + (int64_t)r * K;
        int m = 0;
        for (int v = 0; v < V; v++) {
            if (m == K && !(z[v] > z[tt[K - 1]])) continue;
            int j = m < K ? m++ : K - 1;
            while (j > 0 && z[v] > z[tt[j - 1]]) { tt[j] = tt[j - 1]; j--; }
            tt[j] = v;
        }
        for (int j = 0; j < K; j++) tl[j] = (double)z[tt[j]] - lse[r];
    }
}

typedef struct gbeam { int32_t slot, row, len; double score; } gbeam;
typedef struct gcand { double score; int32_t parent, tok; } gcand;
typedef struct ghyp { double score; int32_t len, seq; } ghyp;

static int gcand_cmp(const void *a, const void *b)
{
    const gcand *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    if (x->parent != y->parent) return x->parent < y->parent ? -1 : 1;
    return x->tok < y->tok ? -1 : x->tok > y->tok;
}

typedef struct gen_ws {
    int G, B, K, V, max_new;
    gr_kv_cache *cache;
    float *logits, *scratch;     /* (G*B, V) */
    int32_t *top_tok;            /* (G*B, K) */
    double *top_lp, *lse;        /* (G*B, K), (G*B) */
    int32_t *tok, *slot, *off, *dst, *src;
    gcand *cands;                /* (B*K) */
    /* per user u: live beams [B], their tokens [B][max_new] (double-buffered),
     * finished hypotheses [B] with tokens [B][max_new] */
    gbeam *live, *next;
    int32_t *hist, *hist2, *done_tok;
    ghyp *done;
    int *n_live, *n_done, *finished, *lim;
} gen_ws;

static double norm_len(double s, int len, float lambda)
{
    return lambda == 0.0f ? s : s / pow((double)(len > 0 ? len : 1), (double)lambda);
}

/* keep the best B hypotheses of user u; tokens copied from toks[0..len) */
static void add_hyp(gen_ws *w, int u, double score, const int32_t *toks, int len)
{
    ghyp *d = w->done + (int64_t)u * w->B;
    int nd = w->n_done[u], at;
    if (nd < w->B) {
        at = nd;
        w->n_done[u]++;
    } else {
        at = 0;
        for (int i = 1; i < nd; i++)
            if (d[i].score < d[at].score) at = i;
        if (!(score > d[at].score)) return;
    }
    int32_t seq = u * w->B + at;
    memcpy(w->done_tok + (int64_t)seq * w->max_new, toks, sizeof(int32_t) * (size_t)len);
    d[at] = (ghyp){score, len, seq};
}

static double worst_hyp(const gen_ws *w, int u)
{
    const ghyp *d = w->done + (int64_t)u * w->B;
    double s = INFINITY;
    for (int i = 0; i < w->n_done[u]; i++) s = fmin(s, d[i].score);
    return s;
}

/* One group of G prompts. Greedy (B == 1): slot u per user. Beams: slots
 * u*S (root, the prompt) and u*S+1 .. u*S+B (beams), S = B+1. */
static int generate_group(gr_lm *lm, const int32_t *const *prompts, const int64_t *plen, int G,
                          const gr_ground_opts *o, int32_t **out_ids, int64_t *out_len, gen_ws *w)
{
    const int B = o->n_beams, V = w->V, K = w->K, M = w->max_new, greedy = B == 1;
    const int S = greedy ? 1 : B + 1;
    const int max_T = gr_lm_config(lm)->max_T;
    gr_kv_cache_clear(w->cache);
    int64_t N;
    int32_t *ptok = gr_decode_pack_prompts(prompts, plen, G, S, w->off, w->slot, &N);
    if (!ptok) return GR_ERR;
    for (int u = 0; u < G; u++) {
        /* the j-th new token (1-based) comes from position plen + j - 2 */
        int64_t room = (int64_t)max_T - plen[u] + 1;
        w->lim[u] = (int)(room < M ? room : M);
        w->n_live[u] = 1;
        w->n_done[u] = 0;
        w->finished[u] = 0;
        w->live[(int64_t)u * B] = (gbeam){u * S, u, 0, 0.0};
    }
    int rc = gr_lm_decode_step(lm, w->cache, ptok, w->slot, w->off, G, (int)N, w->logits);
    gr_free(ptok);
    if (rc != GR_OK) return GR_ERR;
    int n_rows = G;
    for (;;) {
        int n_dec = 0, n_re = 0;
        if (greedy) {
            for (int u = 0; u < G; u++) {
                if (w->finished[u]) continue;
                gbeam *b = &w->live[u];
                int32_t t = gr_argmax(w->logits + (int64_t)b->row * V, V);
                int32_t *h = w->hist + (int64_t)u * M;
                if (t == o->eos) { w->finished[u] = 1; continue; }
                h[b->len++] = t;
                if (b->len >= w->lim[u]) { w->finished[u] = 1; continue; }
                w->tok[n_dec] = t;
                w->slot[n_dec] = b->slot;
                b->row = n_dec++;
            }
        } else {
            row_topk(w->logits, n_rows, V, K, w->scratch, w->lse, w->top_tok, w->top_lp);
            for (int u = 0; u < G; u++) {
                if (w->finished[u]) continue;
                gbeam *live = w->live + (int64_t)u * B, *next = w->next + (int64_t)u * B;
                int32_t *hist = w->hist + (int64_t)u * B * M, *hist2 = w->hist2 + (int64_t)u * B * M;
                int nc = 0;
                for (int i = 0; i < w->n_live[u]; i++) {
                    const gbeam *b = &live[i];
                    for (int j = 0; j < K; j++)
                        w->cands[nc++] = (gcand){b->score + w->top_lp[(int64_t)b->row * K + j], i,
                                                 w->top_tok[(int64_t)b->row * K + j]};
                }
                qsort(w->cands, (size_t)nc, sizeof(gcand), gcand_cmp);
                int n_next = 0;
                for (int k = 0; k < nc && n_next < B; k++) {
                    const gcand *c = &w->cands[k];
                    const gbeam *par = &live[c->parent];
                    const int32_t *ph = hist + (int64_t)c->parent * M;
                    if (c->tok == o->eos) {
                        if (k < B) add_hyp(w, u, norm_len(c->score, par->len + 1, o->lambda), ph, par->len);
                        continue;
                    }
                    int32_t *nh = hist2 + (int64_t)n_next * M;
                    memcpy(nh, ph, sizeof(int32_t) * (size_t)par->len);
                    nh[par->len] = c->tok;
                    next[n_next++] = (gbeam){par->slot, -1, par->len + 1, c->score};
                }
                /* swap the token histories */
                memcpy(hist, hist2, sizeof(int32_t) * (size_t)n_next * M);
                int stop = n_next == 0;
                if (!stop && next[0].len >= w->lim[u]) { /* length limit: live beams count as finished */
                    for (int i = 0; i < n_next; i++)
                        add_hyp(w, u, norm_len(next[i].score, next[i].len, o->lambda), hist + (int64_t)i * M,
                                next[i].len);
                    stop = 1;
                }
                if (!stop && w->n_done[u] >= B &&
                    norm_len(next[0].score, next[0].len, o->lambda) <= worst_hyp(w, u))
                    stop = 1;
                if (stop) { w->finished[u] = 1; w->n_live[u] = 0; continue; }
                for (int i = 0; i < n_next; i++) {
                    int dst = u * S + 1 + i, src = next[i].slot;
                    if (src == u * S) {
                        if (gr_kv_cache_share_prefix(w->cache, dst, src, gr_kv_cache_len(w->cache, src)) != GR_OK)
                            return GR_ERR;
                    } else {
                        w->dst[n_re] = dst;
                        w->src[n_re] = src;
                        n_re++;
                    }
                    w->tok[n_dec] = hist[(int64_t)i * M + next[i].len - 1];
                    w->slot[n_dec] = dst;
                    next[i].slot = dst;
                    next[i].row = n_dec++;
                }
                memcpy(live, next, sizeof(gbeam) * (size_t)n_next);
                w->n_live[u] = n_next;
            }
        }
        if (n_dec == 0) break;
        if (n_re > 0 && gr_kv_cache_reorder(w->cache, w->dst, w->src, n_re) != GR_OK) return GR_ERR;
        for (int i = 0; i <= n_dec; i++) w->off[i] = i;
        if (gr_lm_decode_step(lm, w->cache, w->tok, w->slot, w->off, n_dec, n_dec, w->logits) != GR_OK)
            return GR_ERR;
        n_rows = n_dec;
    }
    /* results */
    for (int u = 0; u < G; u++) {
        const int32_t *src = NULL;
        int len = 0;
        if (greedy) {
            src = w->hist + (int64_t)u * M;
            len = w->live[u].len;
        } else {
            const ghyp *d = w->done + (int64_t)u * B;
            int best = -1;
            for (int i = 0; i < w->n_done[u]; i++)
                if (best < 0 || d[i].score > d[best].score) best = i;
            if (best >= 0) {
                src = w->done_tok + (int64_t)d[best].seq * M;
                len = d[best].len;
            }
        }
        out_ids[u] = gr_alloc((size_t)(len > 0 ? len : 1), sizeof(int32_t));
        if (!out_ids[u]) return gr_error_prefix("generation output: ");
        if (len > 0) memcpy(out_ids[u], src, sizeof(int32_t) * (size_t)len);
        out_len[u] = len;
    }
    return GR_OK;
}

int gr_ground_generate(gr_lm *lm, const int32_t *const *prompts, const int64_t *prompt_len, int n,
                       const gr_ground_opts *opts, int32_t **out_ids, int64_t *out_len)
{
    if (n > 0 && out_ids)
        for (int u = 0; u < n; u++) out_ids[u] = NULL;
    if (!lm) return gr_errorf("grounding generation: model is NULL");
    if (n <= 0) return GR_OK;
    if (!prompts || !prompt_len || !out_ids || !out_len || !opts)
        return gr_errorf("grounding generation: NULL prompts, lengths, options or outputs");
    gr_ground_opts o = *opts;
    const int V = gr_lm_vocab(lm), max_T = gr_lm_config(lm)->max_T;
    if (o.eos < 0 || o.eos >= V)
        return gr_errorf("grounding generation: option 'eos' (%d) must be a token id in [0, %d)", (int)o.eos, V);
    if (o.max_new < 1) return gr_errorf("grounding generation: option 'max_new' (%d) must be >= 1", o.max_new);
    if (o.n_beams < 1 || o.n_beams > 256)
        return gr_errorf("grounding generation: option 'n_beams' (%d) must be in [1, 256]", o.n_beams);
    if (o.n_beams > 1 && (!(o.lambda >= 0.0f) || !isfinite(o.lambda)))
        return gr_errorf("grounding generation: option 'lambda' (%g) must be >= 0", (double)o.lambda);
    if (o.group < 1) o.group = 1;
    int64_t max_prompt = 0;
    for (int u = 0; u < n; u++) {
        if (!prompts[u] || prompt_len[u] < 1) return gr_errorf("grounding generation: prompt %d is empty", u);
        if (prompt_len[u] >= max_T)
            return gr_errorf("grounding generation: prompt %d (%lld tokens) leaves no room in the model's context "
                             "of %d", u, (long long)prompt_len[u], max_T);
        for (int64_t t = 0; t < prompt_len[u]; t++)
            if (prompts[u][t] < 0 || prompts[u][t] >= V)
                return gr_errorf("grounding generation: prompt %d token %lld (%d) is outside the vocabulary [0, %d)",
                                 u, (long long)t, (int)prompts[u][t], V);
        if (prompt_len[u] > max_prompt) max_prompt = prompt_len[u];
    }
    const int B = o.n_beams, G = o.group < n ? o.group : n, greedy = B == 1;
    const int S = greedy ? 1 : B + 1, M = o.max_new < max_T ? o.max_new : max_T;
    o.max_new = M;
    const int64_t rows = (int64_t)G * B;
    gen_ws w = {0};
    w.G = G; w.B = B; w.V = V; w.max_new = M;
    w.K = 2 * B < V ? 2 * B : V;
    int capT = greedy ? (int)max_prompt + M : (int)(max_prompt > M ? max_prompt : M);
    int rc = GR_ERR;
    w.cache = gr_lm_kv_cache_init(lm, G * S, capT);
    /* the weights do not change during the search: pack them once (an
     * optimisation only, so an OOM here just decodes without it) */
    if (w.cache && gr_kv_cache_set_packed_weights(w.cache, gr_lm_tfm(lm)) != GR_OK) gr_error_clear();
    w.logits = gr_alloc((size_t)rows * (size_t)V, sizeof(float));
    w.tok = gr_alloc((size_t)rows + 1, sizeof(int32_t));
    w.slot = gr_alloc((size_t)rows + 1, sizeof(int32_t));
    w.off = gr_alloc((size_t)rows + 2, sizeof(int32_t));
    w.dst = gr_alloc((size_t)rows + 1, sizeof(int32_t));
    w.src = gr_alloc((size_t)rows + 1, sizeof(int32_t));
    w.live = gr_alloc((size_t)rows, sizeof(gbeam));
    w.hist = gr_alloc((size_t)rows * (size_t)M, sizeof(int32_t));
    w.n_live = gr_alloc((size_t)G, sizeof(int));
    w.n_done = gr_alloc((size_t)G, sizeof(int));
    w.finished = gr_alloc((size_t)G, sizeof(int));
    w.lim = gr_alloc((size_t)G, sizeof(int));
    int ok = w.cache && w.logits && w.tok && w.slot && w.off && w.dst && w.src && w.live && w.hist && w.n_live &&
             w.n_done && w.finished && w.lim;
    if (ok && !greedy) {
        w.scratch = gr_alloc((size_t)rows * (size_t)V, sizeof(float));
        w.top_tok = gr_alloc((size_t)rows * (size_t)w.K, sizeof(int32_t));
        w.top_lp = gr_alloc((size_t)rows * (size_t)w.K, sizeof(double));
        w.lse = gr_alloc((size_t)rows, sizeof(double));
        w.cands = gr_alloc((size_t)B * (size_t)w.K, sizeof(gcand));
        w.next = gr_alloc((size_t)rows, sizeof(gbeam));
        w.hist2 = gr_alloc((size_t)rows * (size_t)M, sizeof(int32_t));
        w.done_tok = gr_alloc((size_t)rows * (size_t)M, sizeof(int32_t));
        w.done = gr_alloc((size_t)rows, sizeof(ghyp));
        ok = w.scratch && w.top_tok && w.top_lp && w.lse && w.cands && w.next && w.hist2 && w.done_tok && w.done;
    }
    if (!ok) {
        gr_error_prefix("grounding generation workspace: ");
        goto out;
    }
    for (int u0 = 0; u0 < n; u0 += G) {
        int g = n - u0 < G ? n - u0 : G;
        if (generate_group(lm, prompts + u0, prompt_len + u0, g, &o, out_ids + u0, out_len + u0, &w) != GR_OK)
            goto out;
    }
    rc = GR_OK;
out:
    if (rc != GR_OK)
        for (int u = 0; u < n; u++) { gr_free(out_ids[u]); out_ids[u] = NULL; }
    gr_kv_cache_free(w.cache);
    gr_free(w.logits); gr_free(w.scratch); gr_free(w.top_tok); gr_free(w.top_lp); gr_free(w.lse);
    gr_free(w.tok); gr_free(w.slot); gr_free(w.off); gr_free(w.dst); gr_free(w.src); gr_free(w.cands);
    gr_free(w.live); gr_free(w.next); gr_free(w.hist); gr_free(w.hist2); gr_free(w.done_tok); gr_free(w.done);
    gr_free(w.n_live); gr_free(w.n_done); gr_free(w.finished); gr_free(w.lim);
    return rc;
}

/* ---- stage 2: grounding ------------------------------------------------------- */

struct gr_grounder {
    gr_lm *lm;             /* borrowed */
    int32_t n_items;
    int C, V;
    gr_pool pool;
    float *emb;            /* (n_items, C), centred */
    float *en2;            /* (n_items) squared norms of emb rows */
    float *mu;             /* (C) the items' mean embedding */
    gr_trie *trie;         /* item ids + end sentinel V, for exact-match tests */
};

gr_grounder *gr_grounder_init(gr_lm *lm, const int32_t *const *item_ids, const int64_t *item_len,
                              int32_t n_items, gr_pool pool)
{
    if (!lm) { gr_errorf("grounder: model is NULL"); return NULL; }
    if (n_items < 1) { gr_errorf("grounder: n_items (%d) must be >= 1", (int)n_items); return NULL; }
    if (!item_ids || !item_len) { gr_errorf("grounder: NULL item ids or lengths"); return NULL; }
    if (pool != GR_POOL_LAST && pool != GR_POOL_MEAN) {
        gr_errorf("grounder: unknown pooling %d", (int)pool);
        return NULL;
    }
    const int V = gr_lm_vocab(lm), C = gr_lm_config(lm)->d_model, max_T = gr_lm_config(lm)->max_T;
    int64_t total = 0;
    for (int32_t i = 0; i < n_items; i++) {
        if (!item_ids[i] || item_len[i] < 1 || item_len[i] > max_T) {
            gr_errorf("grounder: item %d has %lld tokens (must be in [1, %d], the model's context)", (int)i,
                      (long long)item_len[i], max_T);
            return NULL;
        }
        for (int64_t t = 0; t < item_len[i]; t++)
            if (item_ids[i][t] < 0 || item_ids[i][t] >= V) {
                gr_errorf("grounder: item %d token %lld (%d) is outside the vocabulary [0, %d)", (int)i,
                          (long long)t, (int)item_ids[i][t], V);
                return NULL;
            }
        total += item_len[i] + 1;
    }
    gr_grounder *g = gr_calloc(1, sizeof *g);
    if (!g) return NULL;
    g->lm = lm;
    g->n_items = n_items;
    g->C = C;
    g->V = V;
    g->pool = pool;
    g->emb = gr_alloc((size_t)n_items * (size_t)C, sizeof(float));
    g->en2 = gr_alloc((size_t)n_items, sizeof(float));
    g->mu = gr_alloc((size_t)C, sizeof(float));
    int64_t *off = gr_alloc((size_t)n_items + 1, sizeof(int64_t));
    int32_t *ids = gr_alloc((size_t)total, sizeof(int32_t));
    double *acc = gr_calloc((size_t)C, sizeof(double));
    if (!g->emb || !g->en2 || !g->mu || !off || !ids || !acc) goto fail;
    /* exact-match trie: every item's ids followed by the sentinel V (so an
     * item that is a prefix of another is still its own leaf) */
    off[0] = 0;
    for (int32_t i = 0; i < n_items; i++) {
        memcpy(ids + off[i], item_ids[i], sizeof(int32_t) * (size_t)item_len[i]);
        ids[off[i] + item_len[i]] = V;
        off[i + 1] = off[i] + item_len[i] + 1;
    }
    g->trie = gr_trie_build(off, ids, n_items, NULL);
    if (!g->trie) goto fail;
    if (gr_lm_embed_seqs(lm, item_ids, item_len, n_items, pool, g->emb) != GR_OK) goto fail;
    for (int32_t i = 0; i < n_items; i++)
        for (int c = 0; c < C; c++) acc[c] += g->emb[(int64_t)i * C + c];
    for (int c = 0; c < C; c++) g->mu[c] = (float)(acc[c] / n_items);
#pragma omp parallel for schedule(static) if ((int64_t)n_items * C > 65536)
    for (int32_t i = 0; i < n_items; i++) {
        float *e = g->emb + (int64_t)i * C;
        double s = 0.0;
        for (int c = 0; c < C; c++) {
            e[c] -= g->mu[c];
            s += (double)e[c] * e[c];
        }
        g->en2[i] = (float)s;
    }
    gr_free(off); gr_free(ids); gr_free(acc);
    return g;
fail:
    gr_error_prefix("grounder (%d items): ", (int)n_items);
    gr_free(off); gr_free(ids); gr_free(acc);
    gr_grounder_free(g);
    return NULL;
}

void gr_grounder_free(gr_grounder *g)
{
    if (!g) return;
    gr_free(g->emb); gr_free(g->en2); gr_free(g->mu);
    gr_trie_free(g->trie);
    gr_free(g);
}

int32_t gr_grounder_n_items(const gr_grounder *g) { return g ? g->n_items : 0; }
const float *gr_grounder_item_emb(const gr_grounder *g) { return g ? g->emb : NULL; }

#define QUERY_CHUNK 256

int gr_ground_distances(gr_grounder *g, const int32_t *const *gen_ids, const int64_t *gen_len, int n,
                        float *dist, int *is_valid, int *n_invalid)
{
    if (n_invalid) *n_invalid = 0;
    if (!g) return gr_errorf("grounding: grounder is NULL");
    if (n <= 0) return GR_OK;
    if (!gen_ids || !gen_len || !dist) return gr_errorf("grounding: NULL generations, lengths or distances");
    const int C = g->C, V = g->V, max_T = gr_lm_config(g->lm)->max_T;
    const int32_t NI = g->n_items;
    for (int q = 0; q < n; q++) {
        if (gen_len[q] < 0 || gen_len[q] > max_T || (gen_len[q] > 0 && !gen_ids[q]))
            return gr_errorf("grounding: generation %d has %lld tokens (must be in [0, %d], the model's context)",
                             q, (long long)gen_len[q], max_T);
        for (int64_t t = 0; t < gen_len[q]; t++)
            if (gen_ids[q][t] < 0 || gen_ids[q][t] >= V)
                return gr_errorf("grounding: generation %d token %lld (%d) is outside the vocabulary [0, %d)", q,
                                 (long long)t, (int)gen_ids[q][t], V);
    }
    int bad = 0;
    for (int q = 0; q < n; q++) {
        int32_t node = gr_trie_walk(g->trie, gen_ids[q], gen_len[q]);
        int ok = node >= 0 && gr_trie_child(g->trie, node, V) >= 0;
        if (is_valid) is_valid[q] = ok;
        bad += !ok;
    }
    if (n_invalid) *n_invalid = bad;
    const int QC = n < QUERY_CHUNK ? n : QUERY_CHUNK;
    float *qe = gr_alloc((size_t)QC * (size_t)C, sizeof(float));
    float *qn2 = gr_alloc((size_t)QC, sizeof(float));
    const int32_t **ptr = gr_alloc((size_t)QC, sizeof(*ptr));
    int64_t *len = gr_alloc((size_t)QC, sizeof(int64_t));
    int32_t *at = gr_alloc((size_t)QC, sizeof(int32_t));
    int rc = GR_ERR;
    if (!qe || !qn2 || !ptr || !len || !at) { gr_error_prefix("grounding: "); goto out; }
    for (int q0 = 0; q0 < n; q0 += QC) {
        const int m = n - q0 < QC ? n - q0 : QC;
        int ne = 0;
        for (int r = 0; r < m; r++)
            if (gen_len[q0 + r] > 0) { ptr[ne] = gen_ids[q0 + r]; len[ne] = gen_len[q0 + r]; at[ne++] = r; }
        /* embed the non-empty ones into rows 0..ne, then move each to its row
         * (backwards: at[k] >= k) and zero the empty rows */
        if (ne > 0 && gr_lm_embed_seqs(g->lm, ptr, len, ne, g->pool, qe) != GR_OK) {
            gr_error_prefix("grounding generations %d..%d: ", q0, q0 + m - 1);
            goto out;
        }
        for (int k = ne - 1; k >= 0; k--)
            if (at[k] != k) memcpy(qe + (int64_t)at[k] * C, qe + (int64_t)k * C, sizeof(float) * (size_t)C);
        for (int r = 0; r < m; r++) {
            float *e = qe + (int64_t)r * C;
            double s = 0.0;
            if (gen_len[q0 + r] == 0) {
                memset(e, 0, sizeof(float) * (size_t)C);
            } else {
                for (int c = 0; c < C; c++) {
                    e[c] -= g->mu[c];
                    s += (double)e[c] * e[c];
                }
            }
            qn2[r] = (float)s;
        }
        float *D = dist + (int64_t)q0 * NI;
        gr_gemm(0, 1, m, NI, C, -2.0f, qe, C, g->emb, C, 0.0f, D, NI);
#pragma omp parallel for schedule(static) if ((int64_t)m * NI > 65536)
        for (int r = 0; r < m; r++) {
            float *d = D + (int64_t)r * NI;
            if (gen_len[q0 + r] == 0) {
                for (int32_t i = 0; i < NI; i++) d[i] = INFINITY;
                continue;
            }
            for (int32_t i = 0; i < NI; i++) {
                float v = d[i] + qn2[r] + g->en2[i];
                d[i] = v > 0.0f ? sqrtf(v) : 0.0f;
            }
        }
    }
    rc = GR_OK;
out:
    gr_free(qe); gr_free(qn2); gr_free(ptr); gr_free(len); gr_free(at);
    return rc;
}

/* min and max of x[0..n); returns 0 if some value is not finite */
static int finite_range(const float *x, int64_t n, float *lo, float *hi)
{
    float a = INFINITY, b = -INFINITY;
    int ok = 1;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) { ok = 0; continue; }
        a = x[i] < a ? x[i] : a;
        b = x[i] > b ? x[i] : b;
    }
    *lo = a;
    *hi = b;
    return ok;
}

int gr_ground_adjust(const float *dist, int n, int32_t n_items, const float *prior, const float *cf_rows,
                     float gamma, float *scores)
{
    if (n <= 0 || n_items <= 0) return GR_OK;
    if (!dist || !scores) return gr_errorf("grounding adjustment: NULL distances or scores");
    if (prior && cf_rows) return gr_errorf("grounding adjustment: give a prior or CF rows, not both");
    if (!(gamma >= 0.0f) || !isfinite(gamma))
        return gr_errorf("grounding adjustment: gamma (%g) must be finite and >= 0", (double)gamma);
    /* with a prior (or none) the factor (1 + p~)^(-gamma) depends on the item only */
    float *fac = NULL;
    if (!cf_rows && prior && gamma != 0.0f) {
        float plo, phi;
        if (!finite_range(prior, n_items, &plo, &phi)) {
            for (int32_t i = 0; i < n_items; i++)
                if (!isfinite(prior[i]))
                    return gr_errorf("grounding adjustment: prior of item %d (%g) is not finite", (int)i,
                                     (double)prior[i]);
        }
        if (phi > plo) {
            fac = gr_alloc((size_t)n_items, sizeof(float));
            if (!fac) return gr_error_prefix("grounding adjustment: ");
            const double pinv = 1.0 / ((double)phi - plo);
            for (int32_t i = 0; i < n_items; i++)
                fac[i] = (float)exp(-(double)gamma * log1p(((double)prior[i] - plo) * pinv));
        }
    } else if (prior) {
        for (int32_t i = 0; i < n_items; i++)
            if (!isfinite(prior[i]))
                return gr_errorf("grounding adjustment: prior of item %d (%g) is not finite", (int)i, (double)prior[i]);
    }
    int bad_row = -1;
#pragma omp parallel for schedule(static) if ((int64_t)n * n_items > 65536)
    for (int q = 0; q < n; q++) {
        const float *d = dist + (int64_t)q * n_items;
        float *s = scores + (int64_t)q * n_items;
        float lo, hi, clo = 0.0f, chi = 0.0f;
        const int dvar = finite_range(d, n_items, &lo, &hi) && hi > lo;
        const float dinv = dvar ? (float)(1.0 / ((double)hi - lo)) : 0.0f;
        const float *cf = cf_rows ? cf_rows + (int64_t)q * n_items : NULL;
        if (cf && !finite_range(cf, n_items, &clo, &chi)) {
#pragma omp critical(gr_ground_bad_row)
            if (bad_row < 0 || q < bad_row) bad_row = q;
            continue;
        }
        if (cf && gamma != 0.0f && chi > clo) {
            /* (1 + p~)^(-gamma) = exp(-gamma log1p(p~)), exponentiated in
             * vector passes over a stack chunk (scores may alias dist) */
            const float pinv = (float)(1.0 / ((double)chi - clo));
            float f[256];
            for (int32_t i0 = 0; i0 < n_items; i0 += 256) {
                const int m = n_items - i0 < 256 ? n_items - i0 : 256;
                for (int k = 0; k < m; k++) f[k] = -gamma * log1pf((cf[i0 + k] - clo) * pinv);
                gr_vexpf(f, m);
                for (int k = 0; k < m; k++) s[i0 + k] = -f[k] * (dvar ? (d[i0 + k] - lo) * dinv : 1.0f);
            }
        } else if (fac) {
            for (int32_t i = 0; i < n_items; i++) s[i] = -fac[i] * (dvar ? (d[i] - lo) * dinv : 1.0f);
        } else {
            for (int32_t i = 0; i < n_items; i++) s[i] = -(dvar ? (d[i] - lo) * dinv : 1.0f);
        }
    }
    gr_free(fac);
    if (bad_row >= 0)
        return gr_errorf("grounding adjustment: CF row %d has a value that is not finite", bad_row);
    return GR_OK;
}

int gr_ground_score(gr_grounder *g, const int32_t *const *gen_ids, const int64_t *gen_len, int n,
                    const float *prior, const float *cf_rows, float gamma, float *scores, int *is_valid,
                    int *n_invalid)
{
    if (prior && cf_rows) return gr_errorf("grounding: give a prior or CF rows, not both");
    if (!(gamma >= 0.0f) || !isfinite(gamma))
        return gr_errorf("grounding: gamma (%g) must be finite and >= 0", (double)gamma);
    if (gr_ground_distances(g, gen_ids, gen_len, n, scores, is_valid, n_invalid) != GR_OK) return GR_ERR;
    return gr_ground_adjust(scores, n, g->n_items, prior, cf_rows, gamma, scores);
}
