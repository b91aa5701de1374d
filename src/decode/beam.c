/* Trie-constrained beam search (beam.h). Users are decoded in groups: the
 * group's prompts are prefilled in one batch (one KV-cache root slot per
 * user), each user's beams share their root's rows, and every step decodes
 * all live beams of the group as one batch. */
#include "decode/decode_internal.h"
#include "genrec/beam.h"
#include "genrec/decode.h"
#include "genrec/xent.h"
#include "engine/vmath.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

gr_beam_opts gr_beam_opts_default(void)
{
    gr_beam_opts o = {0};
    o.n_beams = 20;
    o.lambda = 0.0f;
    o.group = 16;
    o.cf_gamma = 1.0f;
    return o;
}

typedef struct beam { int32_t node, len, slot, row, tok; double score; } beam;
typedef struct cand { double score; int32_t parent, tok, node; } cand;
typedef struct fin { double score; int32_t node; } fin;

typedef struct user_state {
    beam *live;      /* [B] */
    int n_live;
    beam *next;      /* [B] the next step's beams (expand_user) */
    int n_next;
    fin *done;       /* [B] finished hypotheses (at most B are kept) */
    int n_done;
    int finished;    /* search over */
    double *cf_sum;  /* [n_nodes] or NULL */
} user_state;

static int cand_cmp(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    if (x->parent != y->parent) return x->parent < y->parent ? -1 : 1;
    return x->tok < y->tok ? -1 : x->tok > y->tok;
}

static int fin_cmp(const void *a, const void *b)
{
    const fin *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->node < y->node ? -1 : x->node > y->node;
}

void gr_decode_row_lse(const float *logits, int n, int V, double *lse, float *scratch)
{
#pragma omp parallel for schedule(static) if ((int64_t)n * V > 65536)
    for (int r = 0; r < n; r++) {
        const float *z = logits + (int64_t)r * V;
        float *e = scratch + (int64_t)r * V;
        /* vectorised max and exp-sum (8 running sums; a serial double sum
         * over the vocabulary cost as much as the exps) */
        float mx = gr_vmax(z, V);
        memcpy(e, z, sizeof(float) * (size_t)V);
        lse[r] = mx + log((double)gr_vexp_shift_sum(e, V, mx));
    }
}

static double norm_score(double s, int len, float lambda)
{
    return lambda == 0.0f ? s : s / pow((double)(len > 0 ? len : 1), (double)lambda);
}

/* Add a finished hypothesis, keeping the best B. */
static void add_done(user_state *u, int B, double score, int32_t node)
{
    if (u->n_done < B) {
        u->done[u->n_done++] = (fin){score, node};
        return;
    }
    int worst = 0;
    for (int i = 1; i < u->n_done; i++)
        if (fin_cmp(&u->done[i], &u->done[worst]) > 0) worst = i;
    fin f = {score, node};
    if (fin_cmp(&f, &u->done[worst]) < 0) u->done[worst] = f;
}

static double worst_done(const user_state *u)
{
    double w = INFINITY;
    for (int i = 0; i < u->n_done; i++) w = fmin(w, u->done[i].score);
    return w;
}

typedef struct group_ws {
    gr_kv_cache *cache;
    float *logits;      /* (rows, V) */
    float *scratch;     /* (rows, V) */
    double *lse;
    int64_t cap_rows;
    cand **cands;       /* per thread */
    int64_t *cap_cands;
    int n_cands;        /* threads with a buffer */
    user_state *us;
    beam *live_mem, *next_mem;
    fin *done_mem;
    double *cf_mem;
    int32_t *tok, *slot, *off, *dst, *src;
    int V;              /* vocabulary (rows of logits) */
} group_ws;

static int grow_rows(group_ws *w, int64_t rows, int V)
{
    if (rows <= w->cap_rows) return GR_OK;
    gr_free(w->logits); gr_free(w->lse); gr_free(w->scratch);
    w->logits = gr_alloc((size_t)rows * (size_t)V, sizeof(float));
    w->scratch = gr_alloc((size_t)rows * (size_t)V, sizeof(float));
    w->lse = gr_alloc((size_t)rows, sizeof(double));
    if (!w->logits || !w->lse || !w->scratch) { w->cap_rows = 0; return gr_error_prefix("beam search logits: "); }
    w->cap_rows = rows;
    return GR_OK;
}

int32_t *gr_decode_pack_prompts(const int32_t *const *prompts, const int64_t *plen, int G, int slots_per_user,
                                int32_t *off, int32_t *slot, int64_t *n_tokens)
{
    int64_t N = 0;
    for (int u = 0; u < G; u++) N += plen[u];
    int32_t *ptok = gr_alloc((size_t)N + 1, sizeof(int32_t));
    if (!ptok) return NULL;
    off[0] = 0;
    for (int u = 0; u < G; u++) {
        memcpy(ptok + off[u], prompts[u], sizeof(int32_t) * (size_t)plen[u]);
        off[u + 1] = off[u] + (int32_t)plen[u];
        slot[u] = u * slots_per_user;
    }
    *n_tokens = N;
    return ptok;
}

/* Per-thread candidate buffers: nt of at least n each. */
static int grow_cands(group_ws *w, int nt, int64_t n)
{
    if (nt > w->n_cands) {
        cand **c = gr_calloc((size_t)nt, sizeof *c);
        int64_t *cap = gr_calloc((size_t)nt, sizeof *cap);
        if (!c || !cap) { gr_free(c); gr_free(cap); return gr_error_prefix("beam search candidates: "); }
        for (int t = 0; t < w->n_cands; t++) { c[t] = w->cands[t]; cap[t] = w->cap_cands[t]; }
        gr_free(w->cands); gr_free(w->cap_cands);
        w->cands = c;
        w->cap_cands = cap;
        w->n_cands = nt;
    }
    for (int t = 0; t < nt; t++)
        if (n > w->cap_cands[t]) {
            gr_free(w->cands[t]);
            w->cands[t] = gr_alloc((size_t)n, sizeof(cand));
            w->cap_cands[t] = w->cands[t] ? n : 0;
            if (!w->cands[t]) return gr_error_prefix("beam search candidates: ");
        }
    return GR_OK;
}

/* One step of user u: every live beam expanded along its trie children
 * (scores: g log p_LM + (1 - g) log of the assistant's share, see top),
 * the best B kept in us->next (finished hypotheses into us->done), or the
 * search over. Touches only u's state and cands (the caller's per-thread
 * buffer, large enough). */
static void expand_user(const gr_trie *tr, const gr_beam_opts *o, int has_cf, double g, group_ws *w, int u,
                        cand *cands)
{
    const int B = o->n_beams, V = w->V;
    user_state *us = &w->us[u];
    int64_t nc = 0;
    for (int i = 0; i < us->n_live; i++) {
        const beam *b = &us->live[i];
        const float *z = w->logits + (int64_t)b->row * V;
        double lse = w->lse[b->row];
        for (int32_t e = tr->child_off[b->node]; e < tr->child_off[b->node + 1]; e++) {
            int32_t t = tr->child_tok[e], child = tr->child_node[e];
            double lp = (double)z[t] - lse, sc = g * lp;
            if (has_cf && g < 1.0) {
                double pc = us->cf_sum[child], pn = us->cf_sum[b->node];
                sc += (1.0 - g) * (pn > 0.0 ? log(pc > 0.0 ? pc / pn : 1e-30) : 0.0);
            }
            cands[nc++] = (cand){b->score + sc, i, t, child};
        }
    }
    qsort(cands, (size_t)nc, sizeof(cand), cand_cmp);
    beam *nl = us->next;
    int n_next = 0;
    for (int64_t k = 0; k < nc && n_next < B; k++) {
        const cand *c = &cands[k];
        const beam *par = &us->live[c->parent];
        if (gr_trie_is_leaf(tr, c->node)) {
            if (k < B) add_done(us, B, norm_score(c->score, par->len + 1, o->lambda), c->node);
            continue;
        }
        /* slot: the parent's for now (its KV rows are inherited by the caller) */
        nl[n_next++] = (beam){c->node, par->len + 1, par->slot, -1, c->tok, c->score};
    }
    /* stop when nothing can beat the B finished items */
    int stop = n_next == 0;
    if (!stop && us->n_done >= B) {
        double best = -INFINITY;
        for (int i = 0; i < n_next; i++) best = fmax(best, norm_score(nl[i].score, nl[i].len, o->lambda));
        if (best <= worst_done(us)) stop = 1;
    }
    us->n_next = stop ? 0 : n_next;
    if (stop) { us->finished = 1; us->n_live = 0; }
}

/* One group of G users: prompts[0..G). */
static int search_group(gr_lm *lm, const gr_trie *tr, const int32_t *const *prompts,
                        const int64_t *plen, int G, const gr_beam_opts *o, const float *cf,
                        int max_hits, gr_beam_hit *hits, int *n_hits, group_ws *w)
{
    const int B = o->n_beams, V = gr_lm_vocab(lm);
    const int S = B + 1; /* slots per user: root + B beams */
    gr_kv_cache_clear(w->cache);
    /* ---- prefill every prompt into its user's root slot ---- */
    int64_t N;
    int32_t *ptok = gr_decode_pack_prompts(prompts, plen, G, S, w->off, w->slot, &N);
    if (!ptok) return GR_ERR;
    if (grow_rows(w, (int64_t)G * B, V) != GR_OK) { gr_free(ptok); return GR_ERR; }
    int rc = gr_lm_decode_step(lm, w->cache, ptok, w->slot, w->off, G, (int)N, w->logits);
    gr_free(ptok);
    if (rc != GR_OK) return GR_ERR;
    gr_decode_row_lse(w->logits, G, V, w->lse, w->scratch);
    for (int u = 0; u < G; u++) {
        user_state *us = &w->us[u];
        us->n_live = 1;
        us->live[0] = (beam){0, 0, u * S, u, -1, 0.0};
        us->n_done = 0;
        us->finished = 0;
        if (cf && us->cf_sum) gr_trie_node_sums(tr, cf + (int64_t)u * tr->n_items, us->cf_sum);
    }
    const double g = cf ? o->cf_gamma : 1.0;
    /* ---- steps ---- */
    for (int step = 0; step <= tr->max_depth; step++) {
        /* expand every user's beams in parallel (candidates in per-thread
         * buffers), then give the new beams their slots in order */
        int64_t max_nc = 0;
        for (int u = 0; u < G; u++) {
            user_state *us = &w->us[u];
            if (us->finished) continue;
            int64_t nc = 0;
            for (int i = 0; i < us->n_live; i++) nc += tr->child_off[us->live[i].node + 1] - tr->child_off[us->live[i].node];
            if (nc > max_nc) max_nc = nc;
        }
        int nt = gr_threads_get();
        if (nt > G) nt = G;
        if (grow_cands(w, nt, max_nc) != GR_OK) return GR_ERR;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
        for (int u = 0; u < G; u++)
            if (!w->us[u].finished) expand_user(tr, o, cf != NULL, g, w, u, w->cands[omp_get_thread_num()]);
        int n_dec = 0, n_re = 0;
        for (int u = 0; u < G; u++) {
            user_state *us = &w->us[u];
            if (us->finished) continue;
            /* new beams take this user's beam slots; they inherit the parent's KV rows */
            beam *nl = us->next;
            for (int i = 0; i < us->n_next; i++) {
                int dst = u * S + 1 + i, src = nl[i].slot;
                if (src == u * S) {
                    int rc2 = o->naive ? gr_kv_cache_copy(w->cache, dst, src)
                                       : gr_kv_cache_share_prefix(w->cache, dst, src, gr_kv_cache_len(w->cache, src));
                    if (rc2 != GR_OK) return GR_ERR;
                } else {
                    w->dst[n_re] = dst;
                    w->src[n_re] = src;
                    n_re++;
                }
                w->tok[n_dec] = nl[i].tok;
                w->slot[n_dec] = dst;
                nl[i].slot = dst;
                nl[i].row = n_dec;
                n_dec++;
            }
            memcpy(us->live, nl, sizeof(beam) * (size_t)us->n_next);
            us->n_live = us->n_next;
        }
        if (n_dec == 0) break;
        if (n_re > 0 && gr_kv_cache_reorder(w->cache, w->dst, w->src, n_re) != GR_OK) return GR_ERR;
        for (int i = 0; i <= n_dec; i++) w->off[i] = i;
        if (o->naive) { /* one call per beam */
            int32_t off1[2] = {0, 1};
            for (int i = 0; i < n_dec; i++)
                if (gr_lm_decode_step(lm, w->cache, w->tok + i, w->slot + i, off1, 1, 1,
                                      w->logits + (int64_t)i * V) != GR_OK)
                    return GR_ERR;
        } else if (gr_lm_decode_step(lm, w->cache, w->tok, w->slot, w->off, n_dec, n_dec, w->logits) != GR_OK) {
            return GR_ERR;
        }
        gr_decode_row_lse(w->logits, n_dec, V, w->lse, w->scratch);
    }
    /* ---- results: finished hypotheses best first, leaves expanded to items ---- */
    for (int u = 0; u < G; u++) {
        user_state *us = &w->us[u];
        qsort(us->done, (size_t)us->n_done, sizeof(fin), fin_cmp);
        int n = 0;
        for (int i = 0; i < us->n_done && n < max_hits; i++) {
            const int32_t *items;
            int32_t ni = gr_trie_items(tr, us->done[i].node, &items);
            for (int32_t j = 0; j < ni && n < max_hits; j++)
                hits[(int64_t)u * max_hits + n++] = (gr_beam_hit){items[j], (float)us->done[i].score};
        }
        n_hits[u] = n;
    }
    return GR_OK;
}

int gr_beam_search(gr_lm *lm, const gr_trie *tr, const int32_t *const *prompts,
                   const int64_t *prompt_len, int n_users, const gr_beam_opts *opts,
                   int max_hits, gr_beam_hit *hits, int *n_hits)
{
    gr_beam_opts o = opts ? *opts : gr_beam_opts_default();
    if (o.n_beams < 1 || o.n_beams > 1024) return gr_errorf("beam search: n_beams (%d) must be in [1, 1024]", o.n_beams);
    if (!(o.lambda >= 0.0f) || !isfinite(o.lambda)) return gr_errorf("beam search: lambda (%g) must be >= 0", (double)o.lambda);
    if (o.cf_prob && !(o.cf_gamma >= 0.0f && o.cf_gamma <= 1.0f))
        return gr_errorf("beam search: assistant weight gamma (%g) must be in [0, 1]", (double)o.cf_gamma);
    if (max_hits < 1) return gr_errorf("beam search: max_hits (%d) must be >= 1", max_hits);
    if (!tr || tr->n_nodes < 2) return gr_errorf("beam search: empty item trie");
    if (o.group < 1) o.group = 1;
    if (n_users <= 0) return GR_OK;
    const gr_tfm_config *cfg = gr_lm_config(lm);
    int64_t max_prompt = 0;
    for (int u = 0; u < n_users; u++) {
        if (prompt_len[u] < 1) return gr_errorf("beam search: prompt of user %d is empty", u);
        if (prompt_len[u] + tr->max_depth > cfg->max_T)
            return gr_errorf("beam search: prompt of user %d (%lld tokens) + the longest item (%d tokens) exceeds "
                             "the model's context of %d", u, (long long)prompt_len[u], tr->max_depth, cfg->max_T);
        if (prompt_len[u] > max_prompt) max_prompt = prompt_len[u];
    }
    int G = o.group < n_users ? o.group : n_users, B = o.n_beams, S = B + 1;
    int capT = (int)(max_prompt > tr->max_depth + 1 ? max_prompt : tr->max_depth + 1);
    if (o.naive) capT = (int)max_prompt + tr->max_depth + 1; /* beams hold a private prompt copy */
    group_ws w = {0};
    int rc = GR_ERR;
    w.cache = gr_lm_kv_cache_init(lm, G * S, capT);
    /* the weights do not change during the search: pack them once (an
     * optimisation only, so an OOM here just decodes without it) */
    if (w.cache && gr_kv_cache_set_packed_weights(w.cache, gr_lm_tfm(lm)) != GR_OK) gr_error_clear();
    w.us = gr_calloc((size_t)G, sizeof *w.us);
    w.live_mem = gr_alloc((size_t)G * B, sizeof(beam));
    w.next_mem = gr_alloc((size_t)G * B, sizeof(beam));
    w.V = gr_lm_vocab(lm);
    w.done_mem = gr_alloc((size_t)G * B, sizeof(fin));
    w.tok = gr_alloc((size_t)G * B + 1, sizeof(int32_t));
    w.slot = gr_alloc((size_t)G * B + 1, sizeof(int32_t));
    w.off = gr_alloc((size_t)G * B + 2, sizeof(int32_t));
    w.dst = gr_alloc((size_t)G * B + 1, sizeof(int32_t));
    w.src = gr_alloc((size_t)G * B + 1, sizeof(int32_t));
    if (o.cf_prob) w.cf_mem = gr_alloc((size_t)G * (size_t)tr->n_nodes, sizeof(double));
    if (!w.cache || !w.us || !w.live_mem || !w.next_mem || !w.done_mem || !w.tok || !w.slot || !w.off || !w.dst || !w.src ||
        (o.cf_prob && !w.cf_mem))
        goto out;
    for (int u = 0; u < G; u++) {
        w.us[u].live = w.live_mem + (int64_t)u * B;
        w.us[u].next = w.next_mem + (int64_t)u * B;
        w.us[u].done = w.done_mem + (int64_t)u * B;
        w.us[u].cf_sum = w.cf_mem ? w.cf_mem + (int64_t)u * tr->n_nodes : NULL;
    }
    for (int u0 = 0; u0 < n_users; u0 += G) {
        int g = n_users - u0 < G ? n_users - u0 : G;
        const float *cf = o.cf_prob ? o.cf_prob + (int64_t)u0 * tr->n_items : NULL;
        if (search_group(lm, tr, prompts + u0, prompt_len + u0, g, &o, cf, max_hits,
                         hits + (int64_t)u0 * max_hits, n_hits + u0, &w) != GR_OK)
            goto out;
    }
    rc = GR_OK;
out:
    gr_kv_cache_free(w.cache);
    gr_free(w.us); gr_free(w.live_mem); gr_free(w.done_mem); gr_free(w.tok); gr_free(w.slot);
    gr_free(w.off); gr_free(w.dst); gr_free(w.src); gr_free(w.cf_mem);
    gr_free(w.logits); gr_free(w.lse); gr_free(w.scratch); gr_free(w.next_mem);
    for (int t = 0; t < w.n_cands; t++) gr_free(w.cands[t]);
    gr_free(w.cands); gr_free(w.cap_cands);
    return rc;
}
