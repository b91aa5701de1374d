/* Grounded decoding for the generative recommenders (NAME.ground = 1): the
 * model writes an answer freely (greedy, or ground_beams > 1 for an
 * unconstrained beam search), and the answer is mapped to every item by the
 * Euclidean distance between embeddings (genrec/ground.h: BIGRec), adjusted
 * by popularity: score = -(1 + p~)^(-gamma) * d~ with p~ the min-max of the
 * items' training counts. The embedder is the trained model itself (BIGRec
 * uses the frozen base LLM; genrec's models are trained from scratch).
 *
 * gamma (ground_gamma) < 0 is chosen on validation from GAMMAS after
 * training: the validation queries' distances are cached once, so each
 * candidate costs only a re-ranking. invalid_rate counts generations that
 * are not exactly some item's answer (the ranked items themselves are
 * always real items). */
#include <math.h>
#include <string.h>

#include "gen_internal.h"
#include "genrec/ground.h"

static const float GAMMAS[] = {0.0f, 0.25f, 0.5f, 1.0f, 2.0f, 4.0f, 8.0f, 16.0f, 32.0f, 64.0f};

typedef struct gen_gcache {
    const gr_query *q;
    int n;
    float *dist;   /* [n, n_items] */
    int n_invalid;
} gen_gcache;

void gen_ground_free(gen_model *g)
{
    gr_grounder_free(g->gnd);
    g->gnd = NULL;
    for (int i = 0; i < g->n_gcache; i++) gr_free(g->gcache[i].dist);
    gr_free(g->gcache);
    g->gcache = NULL;
    g->n_gcache = 0;
}

/* The grounder of the current weights (rebuilt after they changed). */
static int ensure_grounder(gen_model *g)
{
    if (g->gnd && g->gnd_version == g->version) return GR_OK;
    gr_grounder_free(g->gnd);
    int64_t *len = gr_alloc((size_t)g->n_items, sizeof(int64_t));
    if (!len) return GR_ERR;
    for (int32_t i = 0; i < g->n_items; i++) len[i] = g->ans_len[i] - (g->eos >= 0); /* without EOS */
    g->gnd = gr_grounder_init(g->lm, (const int32_t *const *)g->ans, len, g->n_items, (gr_pool)g->ground_pool);
    gr_free(len);
    if (!g->gnd) return GR_ERR;
    g->gnd_version = g->version;
    return GR_OK;
}

/* Distances of n queries' generations to every item into dist (n,
 * n_items); *n_invalid generations are not items. */
static int distances(gen_model *g, const gr_query *q, int n, float *dist, int *n_invalid)
{
    for (int i = 0; i < g->n_gcache; i++)
        if (g->gcache[i].q == q && g->gcache[i].n == n) {
            memcpy(dist, g->gcache[i].dist, sizeof(float) * (size_t)n * (size_t)g->n_items);
            *n_invalid = g->gcache[i].n_invalid;
            return GR_OK;
        }
    int32_t **pr = gr_calloc((size_t)n + 1, sizeof(int32_t *)), **gen = gr_calloc((size_t)n + 1, sizeof(int32_t *));
    int64_t *pl = gr_alloc((size_t)n + 1, sizeof(int64_t)), *gl = gr_alloc((size_t)n + 1, sizeof(int64_t));
    int rc = GR_ERR;
    if (!pr || !gen || !pl || !gl) goto out;
    for (int i = 0; i < n; i++)
        if (!(pr[i] = gen_make_prompt(g, &q[i], &pl[i]))) goto out;
    gr_ground_opts o = gr_ground_opts_default();
    /* semantic IDs have no end marker: BOS never follows a prompt, and every
     * ID has the trie's depth */
    o.eos = g->eos >= 0 ? g->eos : g->bos;
    o.max_new = g->tr->max_depth;
    o.n_beams = g->ground_beams;
    if (gr_ground_generate(g->lm, (const int32_t *const *)pr, pl, n, &o, gen, gl) != GR_OK) goto out;
    if (gr_ground_distances(g->gnd, (const int32_t *const *)gen, gl, n, dist, NULL, n_invalid) != GR_OK) goto out;
    if (g->gcache_on) {
        gen_gcache *c = gr_realloc(g->gcache, (size_t)g->n_gcache + 1, sizeof *c);
        if (!c) goto out;
        g->gcache = c;
        c += g->n_gcache;
        c->dist = gr_alloc((size_t)n * (size_t)g->n_items, sizeof(float));
        if (!c->dist) goto out;
        memcpy(c->dist, dist, sizeof(float) * (size_t)n * (size_t)g->n_items);
        c->q = q;
        c->n = n;
        c->n_invalid = *n_invalid;
        g->n_gcache++;
    }
    rc = GR_OK;
out:
    for (int i = 0; pr && i < n; i++) gr_free(pr[i]);
    for (int i = 0; gen && i < n; i++) gr_free(gen[i]);
    gr_free(pr); gr_free(gen); gr_free(pl); gr_free(gl);
    return rc;
}

int gen_ground_score(gr_model *m, const gr_query *q, int n, float *scores)
{
    gen_model *g = m->impl;
    if (ensure_grounder(g) != GR_OK) return gr_error_prefix("grounding: ");
    float *prior = gr_alloc((size_t)g->n_items, sizeof(float));
    if (!prior) return GR_ERR;
    for (int32_t i = 0; i < g->n_items; i++) prior[i] = (float)g->pop[i];
    int n_invalid = 0, rc = distances(g, q, n, scores, &n_invalid);
    if (rc == GR_OK) rc = gr_ground_adjust(scores, n, g->n_items, prior, NULL, g->ground_gamma, scores);
    gr_free(prior);
    if (rc != GR_OK) return gr_error_prefix("grounding: ");
    m->n_returned += n; /* one generation per query */
    m->n_invalid += n_invalid;
    return GR_OK;
}

int gen_ground_choose_gamma(gr_model *m, gen_model *g, gr_fit_ctx *ctx)
{
    const int verbose = ctx && ctx->verbose;
    if (g->ground_gamma >= 0.0f) return GR_OK;
    if (!ctx || !ctx->validate) { g->ground_gamma = 0.0f; return GR_OK; }
    g->gcache_on = 1;
    float best_g = 0.0f;
    double best = -1.0;
    int rc = GR_OK;
    for (size_t i = 0; i < sizeof GAMMAS / sizeof GAMMAS[0]; i++) {
        g->ground_gamma = GAMMAS[i];
        double v = ctx->validate(ctx, m);
        if (v < 0) { rc = gr_error_prefix("grounding: validation at gamma %g: ", (double)GAMMAS[i]); break; }
        if (verbose) gr_log(1, "%s ground: gamma %g valid NDCG@10 %.4f\n", g->name, (double)GAMMAS[i], v);
        if (v > best) { best = v; best_g = GAMMAS[i]; }
    }
    g->gcache_on = 0;
    for (int i = 0; i < g->n_gcache; i++) gr_free(g->gcache[i].dist);
    gr_free(g->gcache);
    g->gcache = NULL;
    g->n_gcache = 0;
    g->ground_gamma = best_g;
    if (verbose && rc == GR_OK) gr_log(1, "%s ground: chose gamma %g (valid NDCG@10 %.4f)\n", g->name, (double)best_g, best);
    return rc;
}
