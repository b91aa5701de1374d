/* Incremental decoding for the transformer engine (decode.h): the KV cache
 * with shared prefixes, beam copy/reorder, and the cached forward pass.
 *
 * Storage: K and V are each one array of (layer, slot) blocks of (max_T,
 * kvd) floats, kvd = KVH*HS, row-major: one row per position, so that
 * appending a token, copying a beam's rows and a decoding step's reads of
 * its own few rows all touch contiguous memory (a transposed layout put each
 * of a short own segment's kvd elements on a cache line of its own, and the
 * scalar loops over them dominated beam search). A single query's scores
 * are dot products along key rows and its output axpys of value rows; query
 * blocks (prefill) read them as ordinary strided GEMM operands. Row r of a
 * slot's block holds position base + r, where base is the length of the
 * prefix the slot reads from its root slot (0 for a root).
 *
 * Cached forward over a packed batch of N new tokens: every per-token part of
 * the block (norms, the fused QKV projection, the output projection, the FFN,
 * residuals) runs once over all N rows, so single-token steps of many
 * sequences share one GEMM per projection (gr_linear_forward; for N <= 4
 * rows, dot products with the weight rows instead, see linear_fwd; the
 * weights may be read from a bf16 or packed snapshot held by the cache,
 * set_weights). Attention is parallel over (run, head) units: the new
 * queries of a sequence read the prefix keys of the root slot and the slot's
 * own keys (written just before, after RoPE) in two segments; a block of
 * query rows uses GEMMs for the scores and the weighted sum of values, a
 * single query row (the decoding step) uses dot products and axpys directly,
 * and a run of single-query beams reading the same prefix (group_sequences)
 * is attended together with two GEMMs over the prefix, packed once per root
 * (attend_beams, pack_prefix). LoRA adapters attached to the model (lora.c)
 * are applied through the same hooks as in gr_tfm_forward. Like
 * gr_tfm_forward, the pass runs in one parallel region (par.h) whose team
 * calls every op (a small step, e.g. one sequence, runs on the calling
 * thread without a region).
 */
#include "genrec/decode.h"
#include "tfm_internal.h"
#include "genrec/gemm.h"
#include "genrec/ops.h"
#include "par.h"
#include "vmath.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#define KV_BQ 128 /* query rows per attention block (bounds the per-thread scratch) */
#define GR_KV_MAX_LAYERS 256 /* layers a weight copy (set_weights) can hold */

struct gr_kv_cache {
    int n_layer, n_slots, max_T, KVH, HS, kvd;
    float *k, *v;               /* (n_layer, n_slots, max_T, kvd), row-major */
    int32_t *len, *base, *root; /* per slot; root -1 for a root slot */
    int32_t *readers;           /* per slot: slots whose root it is */
    int32_t *mark;              /* per slot scratch (duplicate checks) */
    int32_t mark_gen;
    /* reorder scratch */
    float *tmp;
    size_t cap_tmp;
    int32_t *tmp_meta;          /* (n_slots, 4) */
    /* forward scratch */
    int64_t cap_N;
    float *ws, *res, *ln, *qkv, *atty, *branch, *fch, *fact;
    int32_t *pos;
    int32_t *grp;               /* runs of sequences attended together (group_sequences) */
    /* per root slot: its prefix [0, pk_base) packed for the beams' GEMMs
     * (pack_prefix), pk_base 0 = none; dropped when the slot's rows change */
    float **pk;
    size_t *pk_cap;
    int32_t *pk_base;
    /* a copy of a model's decoding weights (set_weights): bf16 values
     * (w16) or packed fp32 panels (wpk), one at a time; per layer qkv, o,
     * up, down, then the head at w_off[4 * n_layer] */
    const gr_tfm *w_model;
    uint16_t *w16;
    float *wpk;
    size_t w_off[4 * GR_KV_MAX_LAYERS + 1];
    int32_t n_grp, cap_grp;
    float *scr;
    size_t cap_scr;
};

/* ---- the cache ---------------------------------------------------------------- */

gr_kv_cache *gr_kv_cache_init(const gr_tfm_config *cfg, int n_slots, int max_T)
{
    if (!cfg) { gr_errorf("kv cache: config is NULL"); return NULL; }
    int NH = cfg->n_head, KVH = cfg->n_kv_head ? cfg->n_kv_head : cfg->n_head;
    if (cfg->n_layer < 1 || NH < 1 || cfg->d_model < 1 || cfg->d_model % NH || KVH < 1 || NH % KVH) {
        gr_errorf("kv cache: bad transformer config (n_layer %d, d_model %d, n_head %d, n_kv_head %d)",
                  cfg->n_layer, cfg->d_model, NH, cfg->n_kv_head);
        return NULL;
    }
    if (n_slots < 1) { gr_errorf("kv cache: n_slots (%d) must be >= 1", n_slots); return NULL; }
    if (max_T < 1) { gr_errorf("kv cache: max_T (%d) must be >= 1", max_T); return NULL; }
    gr_kv_cache *c = gr_calloc(1, sizeof *c);
    if (!c) return NULL;
    c->n_layer = cfg->n_layer;
    c->n_slots = n_slots;
    c->max_T = max_T;
    c->KVH = KVH;
    c->HS = cfg->d_model / NH;
    c->kvd = KVH * c->HS;
    double total = (double)c->n_layer * n_slots * max_T * c->kvd;
    if (total > 1e12) {
        gr_errorf("kv cache: %d layers x %d slots x %d rows x %d is too large", c->n_layer, n_slots, max_T, c->kvd);
        gr_free(c);
        return NULL;
    }
    size_t n = (size_t)total;
    c->k = gr_alloc(n, sizeof(float));
    c->v = gr_alloc(n, sizeof(float));
    c->len = gr_calloc((size_t)n_slots, sizeof(int32_t));
    c->base = gr_calloc((size_t)n_slots, sizeof(int32_t));
    c->root = gr_alloc((size_t)n_slots, sizeof(int32_t));
    c->readers = gr_calloc((size_t)n_slots, sizeof(int32_t));
    c->mark = gr_calloc((size_t)n_slots, sizeof(int32_t));
    c->tmp_meta = gr_alloc((size_t)n_slots * 4, sizeof(int32_t));
    c->pk = gr_calloc((size_t)n_slots, sizeof(float *));
    c->pk_cap = gr_calloc((size_t)n_slots, sizeof(size_t));
    c->pk_base = gr_calloc((size_t)n_slots, sizeof(int32_t));
    if (!c->pk || !c->pk_cap || !c->pk_base || !c->k || !c->v || !c->len || !c->base || !c->root || !c->readers || !c->mark || !c->tmp_meta) {
        gr_error_prefix("kv cache (%d slots x %d rows): ", n_slots, max_T);
        gr_kv_cache_free(c);
        return NULL;
    }
    for (int s = 0; s < n_slots; s++) c->root[s] = -1;
    return c;
}

void gr_kv_cache_free(gr_kv_cache *c)
{
    if (!c) return;
    gr_free(c->k); gr_free(c->v); gr_free(c->len); gr_free(c->base); gr_free(c->root);
    gr_free(c->readers); gr_free(c->mark); gr_free(c->tmp); gr_free(c->tmp_meta);
    gr_free(c->ws); gr_free(c->pos); gr_free(c->scr); gr_free(c->grp);
    if (c->pk)
        for (int s = 0; s < c->n_slots; s++) gr_free(c->pk[s]);
    gr_free(c->pk); gr_free(c->pk_cap); gr_free(c->pk_base);
    gr_free(c->w16); gr_free(c->wpk);
    gr_free(c);
}

int gr_kv_cache_n_slots(const gr_kv_cache *c) { return c->n_slots; }
int gr_kv_cache_max_T(const gr_kv_cache *c) { return c->max_T; }
static int in_range(const gr_kv_cache *c, int s) { return s >= 0 && s < c->n_slots; }
int gr_kv_cache_len(const gr_kv_cache *c, int s) { return in_range(c, s) ? c->len[s] : -1; }
int gr_kv_cache_prefix_len(const gr_kv_cache *c, int s) { return in_range(c, s) ? c->base[s] : -1; }
int gr_kv_cache_prefix_slot(const gr_kv_cache *c, int s) { return in_range(c, s) ? c->root[s] : -1; }
int gr_kv_cache_n_readers(const gr_kv_cache *c, int s) { return in_range(c, s) ? c->readers[s] : 0; }

/* The (max_T, kvd) block of slot s in layer l of K or V (row-major:
 * element (r, d) at + r * kvd + d). */
static float *kv_slot(const gr_kv_cache *c, float *kv, int l, int s)
{
    return kv + ((size_t)l * c->n_slots + (size_t)s) * c->max_T * c->kvd;
}

static void set_meta(gr_kv_cache *c, int s, int len, int base, int root)
{
    c->pk_base[s] = 0; /* the slot's rows are replaced */
    if (c->root[s] >= 0) c->readers[c->root[s]]--;
    if (base == 0) root = -1;
    c->len[s] = len;
    c->base[s] = root >= 0 ? base : 0;
    c->root[s] = root;
    if (root >= 0) c->readers[root]++;
}

int gr_kv_cache_clear_slot(gr_kv_cache *c, int slot)
{
    if (!in_range(c, slot)) return gr_errorf("kv cache: slot %d outside [0, %d)", slot, c->n_slots);
    if (c->readers[slot])
        return gr_errorf("kv cache: slot %d cannot be cleared: %d slot(s) read a prefix from it", slot,
                         c->readers[slot]);
    set_meta(c, slot, 0, 0, -1);
    return GR_OK;
}

void gr_kv_cache_clear(gr_kv_cache *c)
{
    for (int s = 0; s < c->n_slots; s++) {
        c->len[s] = c->base[s] = c->readers[s] = c->pk_base[s] = 0;
        c->root[s] = -1;
    }
}

/* Copy n own rows of slot src (from storage row 0) to slot dst, every layer. */
static void copy_own(gr_kv_cache *c, int dst, int src, int n)
{
    if (n <= 0 || dst == src) return;
    const size_t bytes = sizeof(float) * (size_t)n * c->kvd;
    for (int l = 0; l < c->n_layer; l++) {
        memcpy(kv_slot(c, c->k, l, dst), kv_slot(c, c->k, l, src), bytes);
        memcpy(kv_slot(c, c->v, l, dst), kv_slot(c, c->v, l, src), bytes);
    }
}

int gr_kv_cache_share_prefix(gr_kv_cache *c, int dst, int src, int len)
{
    if (!in_range(c, dst) || !in_range(c, src))
        return gr_errorf("kv cache share_prefix: slot %d or %d outside [0, %d)", dst, src, c->n_slots);
    if (dst == src) return gr_errorf("kv cache share_prefix: dst and src are both slot %d", dst);
    if (len < 0 || len > c->len[src])
        return gr_errorf("kv cache share_prefix: len %d outside [0, len(slot %d) = %d]", len, src, c->len[src]);
    if (c->readers[dst])
        return gr_errorf("kv cache share_prefix: slot %d is read by %d other slot(s) and cannot be overwritten",
                         dst, c->readers[dst]);
    if (c->root[src] < 0) {
        set_meta(c, dst, len, len, len > 0 ? src : -1);
        return GR_OK;
    }
    int b = c->base[src], r = c->root[src];
    if (len <= b) {
        set_meta(c, dst, len, len, r);
    } else {
        copy_own(c, dst, src, len - b);
        set_meta(c, dst, len, b, r);
    }
    return GR_OK;
}

int gr_kv_cache_copy(gr_kv_cache *c, int dst, int src)
{
    int32_t d = dst, s = src;
    if (in_range(c, dst) && dst == src) return GR_OK;
    return gr_kv_cache_reorder(c, &d, &s, 1);
}

int gr_kv_cache_reorder(gr_kv_cache *c, const int32_t *dst, const int32_t *src, int n)
{
    if (n < 0 || (n > 0 && (!dst || !src))) return gr_errorf("kv cache reorder: bad arguments (n = %d)", n);
    if (++c->mark_gen == INT32_MAX) {
        memset(c->mark, 0, sizeof(int32_t) * (size_t)c->n_slots);
        c->mark_gen = 1;
    }
    const int32_t gen = c->mark_gen;
    for (int i = 0; i < n; i++) {
        if (!in_range(c, dst[i]) || !in_range(c, src[i]))
            return gr_errorf("kv cache reorder: entry %d: slot %d or %d outside [0, %d)", i, dst[i], src[i],
                             c->n_slots);
        if (c->mark[dst[i]] == gen) return gr_errorf("kv cache reorder: slot %d is a destination twice", dst[i]);
        c->mark[dst[i]] = gen;
    }
    for (int i = 0; i < n; i++)
        if (dst[i] != src[i] && c->readers[dst[i]])
            return gr_errorf("kv cache reorder: slot %d is read by %d other slot(s) and cannot be overwritten",
                             dst[i], c->readers[dst[i]]);
    /* Rows of a source that is itself rewritten (a non-identity destination)
     * go through the scratch buffer; the others are copied directly. Mark
     * rewritten slots with -gen. */
    for (int i = 0; i < n; i++) c->mark[dst[i]] = dst[i] != src[i] ? -gen : gen;
    size_t need = 0, per_row = (size_t)c->kvd * 2 * (size_t)c->n_layer;
    for (int i = 0; i < n; i++)
        if (dst[i] != src[i] && c->mark[src[i]] == -gen) need += (size_t)(c->len[src[i]] - c->base[src[i]]) * per_row;
    if (need > c->cap_tmp) {
        gr_free(c->tmp);
        c->tmp = gr_alloc(need, sizeof(float));
        c->cap_tmp = c->tmp ? need : 0;
        if (!c->tmp) return gr_error_prefix("kv cache reorder: ");
    }
    /* gather: meta of every source, rows of rewritten sources */
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        int s = src[i];
        int32_t *mt = c->tmp_meta + 4 * (size_t)i;
        mt[0] = c->len[s]; mt[1] = c->base[s]; mt[2] = c->root[s]; mt[3] = -1;
        if (dst[i] == src[i] || c->mark[s] != -gen) continue;
        mt[3] = (int32_t)(off / per_row);
        size_t n_el = (size_t)(c->len[s] - c->base[s]) * c->kvd;
        for (int l = 0; l < c->n_layer; l++) {
            memcpy(c->tmp + off, kv_slot(c, c->k, l, s), sizeof(float) * n_el); off += n_el;
            memcpy(c->tmp + off, kv_slot(c, c->v, l, s), sizeof(float) * n_el); off += n_el;
        }
    }
    /* scatter */
    for (int i = 0; i < n; i++) {
        int d = dst[i], s = src[i];
        if (d == s) continue;
        const int32_t *mt = c->tmp_meta + 4 * (size_t)i;
        size_t rows = (size_t)(mt[0] - mt[1]);
        if (mt[3] < 0) {
            copy_own(c, d, s, (int)rows);
        } else {
            size_t o = (size_t)mt[3] * per_row, n_el = rows * c->kvd;
            for (int l = 0; l < c->n_layer; l++) {
                memcpy(kv_slot(c, c->k, l, d), c->tmp + o, sizeof(float) * n_el); o += n_el;
                memcpy(kv_slot(c, c->v, l, d), c->tmp + o, sizeof(float) * n_el); o += n_el;
            }
        }
        set_meta(c, d, mt[0], mt[1], mt[2]);
    }
    return GR_OK;
}

/* ---- bf16 decoding weights ------------------------------------------------------------ */

/* Snapshot m's projection weights and head into c: bf16 values (packed 0)
 * or packed fp32 panels for gr_gemm_packed (packed 1). */
static int set_weights(gr_kv_cache *c, const gr_tfm *m, int packed)
{
    const char *what = packed ? "packed weights" : "bf16 weights";
    if (!c || !m) return gr_errorf("%s: cache or model is NULL", what);
    const int L = m->cfg.n_layer, C = m->C;
    if (L != c->n_layer || m->KVH != c->KVH || m->HS != c->HS)
        return gr_errorf("%s: the cache was made for another configuration", what);
    if (L > GR_KV_MAX_LAYERS) return gr_errorf("%s: %d layers (at most %d)", what, L, GR_KV_MAX_LAYERS);
    /* the matrices W (OC, IC) in order; out = in W^T */
    const int nm = 4 * L + (m->head && m->cfg.vocab > 0);
    const float *W[4 * GR_KV_MAX_LAYERS + 1];
    int OC[4 * GR_KV_MAX_LAYERS + 1], IC[4 * GR_KV_MAX_LAYERS + 1];
    for (int l = 0; l < L; l++) {
        const tfm_layer *p = &m->lp[l];
        W[4 * l + 0] = p->wqkv;  OC[4 * l + 0] = m->QKV; IC[4 * l + 0] = C;
        W[4 * l + 1] = p->wo;    OC[4 * l + 1] = C;      IC[4 * l + 1] = C;
        W[4 * l + 2] = p->wup;   OC[4 * l + 2] = m->FW;  IC[4 * l + 2] = C;
        W[4 * l + 3] = p->wdown; OC[4 * l + 3] = C;      IC[4 * l + 3] = m->F;
    }
    if (nm > 4 * L) { W[4 * L] = m->head; OC[4 * L] = m->cfg.vocab; IC[4 * L] = C; }
    size_t off[4 * GR_KV_MAX_LAYERS + 1], n = 0;
    for (int k = 0; k < nm; k++) {
        off[k] = n;
        n += packed ? gr_gemm_pack_b_size(OC[k], IC[k]) : (size_t)OC[k] * IC[k];
    }
    if (nm == 4 * L) off[4 * L] = n;
    void *w = gr_alloc(n + 1, packed ? sizeof(float) : sizeof(uint16_t));
    if (!w) return gr_error_prefix("%s (%zu values): ", what, n);
    for (int k = 0; k < nm; k++) {
        if (packed) gr_gemm_pack_b(1, OC[k], IC[k], W[k], IC[k], (float *)w + off[k]);
        else gr_f32_to_bf16_n(W[k], (uint16_t *)w + off[k], (size_t)OC[k] * IC[k]);
    }
    gr_kv_cache_drop_weights(c);
    if (packed) c->wpk = w;
    else c->w16 = w;
    memcpy(c->w_off, off, sizeof(size_t) * (size_t)(4 * L + 1));
    c->w_model = m;
    return GR_OK;
}

int gr_kv_cache_set_bf16_weights(gr_kv_cache *c, const gr_tfm *m) { return set_weights(c, m, 0); }
int gr_kv_cache_set_packed_weights(gr_kv_cache *c, const gr_tfm *m) { return set_weights(c, m, 1); }

void gr_kv_cache_drop_weights(gr_kv_cache *c)
{
    if (!c) return;
    gr_free(c->w16);
    gr_free(c->wpk);
    c->w16 = NULL;
    c->wpk = NULL;
    c->w_model = NULL;
}

const float *gr_kv_cache_packed_head(const gr_kv_cache *c, const gr_tfm *m)
{
    if (!c || !m || c->w_model != m || !c->wpk || !m->head || m->cfg.vocab <= 0) return NULL;
    return c->wpk + c->w_off[4 * m->cfg.n_layer];
}

const uint16_t *gr_kv_cache_bf16_head(const gr_kv_cache *c, const gr_tfm *m)
{
    if (!c || !m || c->w_model != m || !c->w16 || !m->head || m->cfg.vocab <= 0) return NULL;
    return c->w16 + c->w_off[4 * m->cfg.n_layer];
}

/* ---- the cached forward --------------------------------------------------------------- */

static int ensure_ws(gr_kv_cache *c, const gr_tfm *m, int64_t N, size_t scr_n)
{
    if (N > c->cap_N) {
        int64_t n = N;
        size_t C = (size_t)m->C, per = 4 * C + (size_t)m->QKV + (size_t)m->FW + (size_t)m->F;
        per = (per + 15) & ~(size_t)15;
        gr_free(c->ws); gr_free(c->pos);
        c->ws = gr_alloc((size_t)n * per + 16 * 8, sizeof(float));
        c->pos = gr_alloc((size_t)n, sizeof(int32_t));
        if (!c->ws || !c->pos) {
            gr_free(c->ws); gr_free(c->pos);
            c->ws = NULL; c->pos = NULL; c->cap_N = 0;
            return gr_error_prefix("cached forward scratch for %lld tokens: ", (long long)n);
        }
        float *p = c->ws;
#define TAKE(ptr, k) do { (ptr) = p; p += (((size_t)n * (k)) + 15) & ~(size_t)15; } while (0)
        TAKE(c->res, C); TAKE(c->ln, C); TAKE(c->qkv, (size_t)m->QKV); TAKE(c->atty, C);
        TAKE(c->branch, C); TAKE(c->fch, (size_t)m->FW); TAKE(c->fact, (size_t)m->F);
#undef TAKE
        c->cap_N = n;
    }
    if (scr_n > c->cap_scr) {
        gr_free(c->scr);
        c->scr = gr_alloc(scr_n, sizeof(float));
        c->cap_scr = c->scr ? scr_n : 0;
        if (!c->scr) return gr_error_prefix("cached attention scratch: ");
    }
    return GR_OK;
}

/* Rows of a few tokens (the decoding step of one or a few sequences): a
 * GEMM would pack the whole weight matrix for each call, which costs as much
 * as the product itself, so take dot products with the weight rows directly
 * (llama2.c's matmul), in parallel over output channels for large layers;
 * up to GR_DECODE_DOT_ROWS rows. */

static void add_bias_rows(float *out, const float *b, int N, int OC)
{
#pragma omp for schedule(static)
    for (int i = 0; i < N; i++)
        for (int o = 0; o < OC; o++) out[(size_t)i * OC + o] += b[o];
}

static void linear_rows(float *out, const float *inp, const float *w, const uint16_t *w16, const float *b, int N,
                        int C, int OC)
{
#pragma omp for schedule(static)
    for (int o = 0; o < OC; o++) {
        const float *wr = w + (size_t)o * C;
        for (int i = 0; i < N; i++)
            out[(size_t)i * OC + o] = (b ? b[o] : 0.0f) + (w16 ? gr_vdot_bf16(inp + (size_t)i * C, w16 + (size_t)o * C, C)
                                                             : gr_vdot(inp + (size_t)i * C, wr, C));
    }
}

/* out (N, OC) = inp (N, C) W^T + b with the fp32 weights, their bf16 copy
 * w16 (gr_kv_cache_set_bf16_weights) or their packed copy wp
 * (gr_kv_cache_set_packed_weights: the same bits as W, without packing W
 * at every call) when the cache holds one. */
static void linear_fwd(float *out, const float *inp, const float *w, const uint16_t *w16, const float *wp,
                       const float *b, int N, int C, int OC)
{
    if (N <= GR_DECODE_DOT_ROWS) {
        GR_PAR_RUN(gr_ops_threads((double)N * C * OC), linear_rows(out, inp, w, w16, b, N, C, OC));
    } else if (wp) {
        gr_gemm_packed(0, N, OC, C, 1.0f, inp, C, wp, b, 0.0f, out, OC); /* shared by the team, as gr_gemm */
    } else if (!w16) {
        gr_linear_forward(out, inp, w, b, N, C, OC);
    } else {
        gr_gemm_bf16(0, 1, N, OC, C, 1.0f, inp, C, w16, C, 0.0f, out, OC);
        if (b) GR_PAR_RUN(gr_ops_threads((double)N * OC), add_bias_rows(out, b, N, OC));
    }
}

static void norm_fwd(const gr_tfm *m, float *out, const float *inp, const float *w, const float *b, int N)
{
    if (m->cfg.norm == GR_NORM_RMS) gr_rmsnorm_forward(out, NULL, inp, w, N, m->C, m->cfg.norm_eps);
    else gr_layernorm_forward(out, NULL, NULL, inp, w, b, N, m->C, m->cfg.norm_eps);
}

/* One (sequence, head) unit of attention: nq new queries (rows of q, ld
 * ldq) at positions L0 .. L0+nq-1. Keys and values (positions, HS), row
 * stride ldk: prefix positions [0, base) at kp / vp, own positions [0,
 * L0+nq-base) at ko / vo. y (nq, HS), ld ldy. A single query's scores are
 * dot products with the key rows and its output a sum of value rows scaled
 * by the probabilities; query blocks use GEMMs. */
static void attend(float *y, int ldy, const float *q, int ldq, const float *kp, const float *vp,
                   const float *ko, const float *vo, int ldk, int base, int L0, int nq, int HS,
                   float scale, float *S)
{
    if (nq == 1) {
        int T = L0 + 1, own = T - base;
        float *So = S + base;
        for (int j = 0; j < base; j++) S[j] = scale * gr_vdot(q, kp + (size_t)j * ldk, HS);
        for (int j = 0; j < own; j++) So[j] = scale * gr_vdot(q, ko + (size_t)j * ldk, HS);
        float mx = gr_vmax(S, T);
        float inv = 1.0f / gr_vexp_shift_sum(S, T, mx);
        for (int d = 0; d < HS; d++) y[d] = 0.0f;
        for (int j = 0; j < base; j++) {
            const float p = S[j], *vr = vp + (size_t)j * ldk;
#pragma omp simd
            for (int d = 0; d < HS; d++) y[d] += p * vr[d];
        }
        for (int j = 0; j < own; j++) {
            const float p = So[j], *vr = vo + (size_t)j * ldk;
#pragma omp simd
            for (int d = 0; d < HS; d++) y[d] += p * vr[d];
        }
#pragma omp simd
        for (int d = 0; d < HS; d++) y[d] *= inv;
        return;
    }
    for (int r0 = 0; r0 < nq; r0 += KV_BQ) {
        int rb = nq - r0 < KV_BQ ? nq - r0 : KV_BQ;
        int kmax = L0 + r0 + rb; /* keys the block's last query sees */
        const float *qb = q + (size_t)r0 * ldq;
        float *yb = y + (size_t)r0 * ldy;
        /* S (rb, keys) = Q (rb, HS) K^T, K stored (keys, HS) */
        if (base > 0) gr_gemm_serial(0, 1, rb, base, HS, scale, qb, ldq, kp, ldk, 0.0f, S, kmax);
        gr_gemm_serial(0, 1, rb, kmax - base, HS, scale, qb, ldq, ko, ldk, 0.0f, S + base, kmax);
        for (int ii = 0; ii < rb; ii++) {
            float *row = S + (size_t)ii * kmax;
            int T = L0 + r0 + ii + 1;
            float mx = gr_vmax(row, T);
            float inv = 1.0f / gr_vexp_shift_sum(row, T, mx);
#pragma omp simd
            for (int j = 0; j < T; j++) row[j] *= inv;
            for (int j = T; j < kmax; j++) row[j] = 0.0f;
        }
        /* Y (rb, HS) = P (rb, keys) V (keys, HS) */
        if (base > 0) gr_gemm_serial(0, 0, rb, HS, base, 1.0f, S, kmax, vp, ldk, 0.0f, yb, ldy);
        gr_gemm_serial(0, 0, rb, HS, kmax - base, 1.0f, S + base, kmax, vo, ldk, base > 0 ? 1.0f : 0.0f, yb, ldy);
    }
}

/* Append the new K, V rows (after RoPE) of layer l to their slots. */
static void kv_append(gr_kv_cache *c, const gr_tfm *m, int l, const int32_t *slots,
                      const int32_t *seq_off, int n_seq)
{
    const int C = m->C, QKV = m->QKV, kvd = c->kvd;
#pragma omp for schedule(static)
    for (int s = 0; s < n_seq; s++) {
        int sl = slots[s], r0 = c->len[sl] - c->base[sl];
        for (int i = seq_off[s]; i < seq_off[s + 1]; i++) {
            const float *row = c->qkv + (size_t)i * QKV + C;
            size_t r = (size_t)(r0 + i - seq_off[s]) * kvd;
            memcpy(kv_slot(c, c->k, l, sl) + r, row, sizeof(float) * (size_t)kvd);
            memcpy(kv_slot(c, c->v, l, sl) + r, row + kvd, sizeof(float) * (size_t)kvd);
        }
    }
}

/* Offset in a root's packed prefix of (layer l, kv head g): per (l, g) the
 * keys as op(B) = K^T (HS x base) then the values (base x HS), each
 * gr_gemm_pack_b's layout (sizes multiples of 16 floats, so every part
 * stays aligned). */
static size_t pack_off(const gr_kv_cache *c, int base, int l, int g)
{
    size_t per = gr_gemm_pack_b_size(base, c->HS) + gr_gemm_pack_b_size(c->HS, base);
    return ((size_t)l * c->KVH + (size_t)g) * per;
}

/* Pack the prefix [0, base) of root slot rt for every layer and kv head, so
 * that the beams reading it skip packing it at every step. Best effort: on
 * OOM the beams pack it themselves (pk_base stays 0). */
static void pack_prefix(gr_kv_cache *c, int rt, int base)
{
    const int HS = c->HS;
    size_t need = pack_off(c, base, c->n_layer, 0);
    if (need > c->pk_cap[rt]) {
        gr_free(c->pk[rt]);
        c->pk[rt] = gr_alloc(need, sizeof(float));
        c->pk_cap[rt] = c->pk[rt] ? need : 0;
        if (!c->pk[rt]) {
            gr_error_clear();
            c->pk_base[rt] = 0;
            return;
        }
    }
    for (int l = 0; l < c->n_layer; l++)
        for (int g = 0; g < c->KVH; g++) {
            float *dk = c->pk[rt] + pack_off(c, base, l, g), *dv = dk + gr_gemm_pack_b_size(base, HS);
            gr_gemm_pack_b(1, base, HS, kv_slot(c, c->k, l, rt) + (size_t)g * HS, c->kvd, dk);
            gr_gemm_pack_b(0, HS, base, kv_slot(c, c->v, l, rt) + (size_t)g * HS, c->kvd, dv);
        }
    c->pk_base[rt] = base;
}

/* Attention of nb >= 2 single-query sequences (rows off .. off+nb-1 of the
 * batch) that read the same prefix [0, base) of one root slot: the beams of
 * one prompt. Their scores against the prefix and the prefix part of their
 * outputs are two GEMMs, so each prefix row is read once per step for all of
 * them instead of once per beam (the re-reads of the prompt's keys and
 * values were what bound beam search); their own rows are dot products and
 * axpys as in attend(). S: nb x ldS scratch, ldS >= every row's length. */
static void attend_beams(gr_kv_cache *c, const gr_tfm *m, int l, const int32_t *slots, int s0, int nb,
                         int off, int h, float *S, int ldS)
{
    const int C = m->C, QKV = m->QKV, HS = m->HS, kvd = c->kvd;
    const float scale = 1.0f / sqrtf((float)HS);
    const size_t go = (size_t)(h / (m->NH / m->KVH)) * HS;
    const int rt = c->root[slots[s0]], base = c->base[slots[s0]];
    const float *q0 = c->qkv + (size_t)off * QKV + (size_t)h * HS;
    float *y0 = c->atty + (size_t)off * C + (size_t)h * HS;
    const float *kp = kv_slot(c, c->k, l, rt) + go, *vp = kv_slot(c, c->v, l, rt) + go;
    const float *pkK = NULL, *pkV = NULL;
    if (c->pk_base[rt] == base) {
        pkK = c->pk[rt] + pack_off(c, base, l, (int)(go / HS));
        pkV = pkK + gr_gemm_pack_b_size(base, HS);
    }
    /* S[:, 0:base) = scale Q K_prefix^T */
    if (pkK) gr_gemm_packed_serial(0, nb, base, HS, scale, q0, QKV, pkK, 0.0f, S, ldS);
    else gr_gemm_serial(0, 1, nb, base, HS, scale, q0, QKV, kp, kvd, 0.0f, S, ldS);
    for (int b = 0; b < nb; b++) {
        const int sl = slots[s0 + b], own = c->len[sl] - base + 1; /* the new row is appended */
        const float *q = q0 + (size_t)b * QKV, *ko = kv_slot(c, c->k, l, sl) + go;
        float *row = S + (size_t)b * ldS;
        for (int j = 0; j < own; j++) row[base + j] = scale * gr_vdot(q, ko + (size_t)j * kvd, HS);
        const int T = base + own;
        float mx = gr_vmax(row, T);
        float inv = 1.0f / gr_vexp_shift_sum(row, T, mx);
#pragma omp simd
        for (int j = 0; j < T; j++) row[j] *= inv;
    }
    /* Y = P[:, 0:base) V_prefix, then each beam's own rows */
    if (pkV) gr_gemm_packed_serial(0, nb, HS, base, 1.0f, S, ldS, pkV, 0.0f, y0, C);
    else gr_gemm_serial(0, 0, nb, HS, base, 1.0f, S, ldS, vp, kvd, 0.0f, y0, C);
    for (int b = 0; b < nb; b++) {
        const int sl = slots[s0 + b], own = c->len[sl] - base + 1;
        const float *row = S + (size_t)b * ldS + base, *vo = kv_slot(c, c->v, l, sl) + go;
        float *y = y0 + (size_t)b * C;
        for (int j = 0; j < own; j++) {
            const float p = row[j], *vr = vo + (size_t)j * kvd;
#pragma omp simd
            for (int d = 0; d < HS; d++) y[d] += p * vr[d];
        }
    }
}

/* Split the batch into runs of consecutive sequences attended together:
 * single-query sequences reading the same prefix of the same root (at most
 * KV_BQ per run), every other sequence a run of its own; the prefix of a
 * run's root is packed (pack_prefix) unless it already is. Returns the
 * longest run, or -1 on OOM. */
static int group_sequences(gr_kv_cache *c, const int32_t *slots, const int32_t *seq_off, int n_seq)
{
    if (n_seq + 1 > c->cap_grp) {
        gr_free(c->grp);
        c->grp = gr_alloc((size_t)n_seq + 1, sizeof(int32_t));
        c->cap_grp = c->grp ? n_seq + 1 : 0;
        if (!c->grp) return -1;
    }
    int g = 0, longest = 1;
    c->grp[0] = 0;
    for (int s = 0; s < n_seq;) {
        int e = s + 1, sl = slots[s];
        if (seq_off[s + 1] - seq_off[s] == 1 && c->root[sl] >= 0 && c->base[sl] > 0)
            while (e < n_seq && e - s < KV_BQ && seq_off[e + 1] - seq_off[e] == 1 && c->root[slots[e]] == c->root[sl] &&
                   c->base[slots[e]] == c->base[sl])
                e++;
        if (e - s > longest) longest = e - s;
        if (e - s > 1 && c->pk_base[c->root[sl]] != c->base[sl]) pack_prefix(c, c->root[sl], c->base[sl]);
        c->grp[++g] = e;
        s = e;
    }
    c->n_grp = g;
    return longest;
}

/* Attention of layer l over (run, head) units (group_sequences); per-thread
 * score scratch of bq x maxL floats. */
static void cached_attention(gr_kv_cache *c, const gr_tfm *m, int l, const int32_t *slots,
                             const int32_t *seq_off, int bq, int maxL)
{
    const int C = m->C, QKV = m->QKV, NH = m->NH, HS = m->HS, grp = NH / m->KVH;
    const float scale = 1.0f / sqrtf((float)HS);
    const int units = c->n_grp * NH;
#pragma omp for schedule(dynamic, 1)
    for (int u = 0; u < units; u++) {
        int gi = u / NH, h = u % NH, g = h / grp;
        int s = c->grp[gi], nb = c->grp[gi + 1] - s;
        float *S = c->scr + (size_t)omp_get_thread_num() * bq * maxL;
        if (nb > 1) {
            attend_beams(c, m, l, slots, s, nb, seq_off[s], h, S, maxL);
            continue;
        }
        int off = seq_off[s], nq = seq_off[s + 1] - off;
        if (nq <= 0) continue;
        int sl = slots[s], base = c->base[sl], rt = c->root[sl];
        const size_t go = (size_t)g * HS;
        const float *kp = rt >= 0 ? kv_slot(c, c->k, l, rt) + go : NULL;
        const float *vp = rt >= 0 ? kv_slot(c, c->v, l, rt) + go : NULL;
        attend(c->atty + (size_t)off * C + (size_t)h * HS, C, c->qkv + (size_t)off * QKV + (size_t)h * HS, QKV,
               kp, vp, kv_slot(c, c->k, l, sl) + go, kv_slot(c, c->v, l, sl) + go, c->kvd, base, c->len[sl], nq, HS, scale, S);
    }
}

/* The cached forward's ops, run by the pass's team (or alone, see
 * GR_PAR_PASS); c->pos holds the new tokens' positions. att_work: one
 * layer's attention work. */
static void cached_body(gr_tfm *m, gr_kv_cache *c, const float *x, const int32_t *slots,
                        const int32_t *seq_off, int n_seq, int N, float *out, int bq, int maxL,
                        double att_work)
{
    const gr_tfm_config *cfg = &m->cfg;
    const int C = m->C, QKV = m->QKV, NH = m->NH, KVH = m->KVH, HS = m->HS;
    const int64_t NC = (int64_t)N * C;
    if (cfg->pos == GR_POS_LEARNED) gr_pos_embd_forward(c->res, x, m->pos_embd, c->pos, N, C);
    else gr_par_copy(c->res, x, NC);
    const int nt_att = gr_ops_threads(att_work);
    const uint16_t *w16 = c->w_model == m ? c->w16 : NULL;
    const float *wpk = c->w_model == m ? c->wpk : NULL;
#define W16(k) (w16 ? w16 + c->w_off[4 * l + (k)] : NULL)
#define WPK(k) (wpk ? wpk + c->w_off[4 * l + (k)] : NULL)
    for (int l = 0; l < cfg->n_layer; l++) {
        const tfm_layer *p = &m->lp[l];
        norm_fwd(m, c->ln, c->res, p->attn_norm_w, p->attn_norm_b, N);
        linear_fwd(c->qkv, c->ln, p->wqkv, W16(0), WPK(0), p->bqkv, N, C, QKV);
        if (m->lora) tfm_lora_forward(m, l, TFM_SITE_QKV, c->ln, c->qkv, N, 0);
        if (cfg->pos == GR_POS_ROPE) {
            gr_rope_forward(c->qkv, QKV, c->pos, m->rope_cs, N, NH, HS);
            gr_rope_forward(c->qkv + C, QKV, c->pos, m->rope_cs, N, KVH, HS);
        }
        GR_PAR_RUN(1, kv_append(c, m, l, slots, seq_off, n_seq));
        GR_PAR_RUN(nt_att, cached_attention(c, m, l, slots, seq_off, bq, maxL));
        linear_fwd(c->branch, c->atty, p->wo, W16(1), WPK(1), p->bo, N, C, C);
        if (m->lora) tfm_lora_forward(m, l, TFM_SITE_O, c->atty, c->branch, N, 0);
        gr_residual_forward(c->res, c->res, c->branch, NC);
        norm_fwd(m, c->ln, c->res, p->ffn_norm_w, p->ffn_norm_b, N);
        linear_fwd(c->fch, c->ln, p->wup, W16(2), WPK(2), p->bup, N, C, m->FW);
        if (m->lora) tfm_lora_forward(m, l, TFM_SITE_UP, c->ln, c->fch, N, 0);
        if (cfg->act == GR_ACT_SWIGLU) gr_swiglu_forward(c->fact, c->fch, N, m->F);
        else if (cfg->act == GR_ACT_RELU) gr_relu_forward(c->fact, c->fch, (int64_t)N * m->F);
        else gr_gelu_forward(c->fact, c->fch, (int64_t)N * m->F);
        linear_fwd(c->branch, c->fact, p->wdown, W16(3), WPK(3), p->bdown, N, m->F, C);
        if (m->lora) tfm_lora_forward(m, l, TFM_SITE_DOWN, c->fact, c->branch, N, 0);
        gr_residual_forward(c->res, c->res, c->branch, NC);
    }
#undef W16
#undef WPK
    if (cfg->final_norm) norm_fwd(m, out, c->res, m->out_norm_w, m->out_norm_b, N);
    else gr_par_copy(out, c->res, NC);
}

int gr_tfm_forward_cached(gr_tfm *m, gr_kv_cache *c, const float *x, const int32_t *slots,
                          const int32_t *seq_off, int n_seq, int N, float *out)
{
    if (!m || !c) return gr_errorf("cached forward: model or cache is NULL");
    const gr_tfm_config *cfg = &m->cfg;
    if (c->n_layer != cfg->n_layer || c->KVH != m->KVH || c->HS != m->HS)
        return gr_errorf("cached forward: the cache was made for another configuration (%d layers, %d kv heads "
                         "of size %d; the model has %d, %d, %d)", c->n_layer, c->KVH, c->HS, cfg->n_layer, m->KVH, m->HS);
    if (N < 0 || n_seq < 0) return gr_errorf("cached forward: N (%d) and n_seq (%d) must be >= 0", N, n_seq);
    if (!seq_off || (n_seq > 0 && !slots)) return gr_errorf("cached forward: seq_off or slots is NULL");
    if (seq_off[0] != 0) return gr_errorf("cached forward: seq_off[0] is %d, must be 0", seq_off[0]);
    if (seq_off[n_seq] != N)
        return gr_errorf("cached forward: seq_off[n_seq=%d] is %d, must equal N (%d)", n_seq, seq_off[n_seq], N);
    if (N > 0 && (!x || !out)) return gr_errorf("cached forward: x or out is NULL");
    if (++c->mark_gen == INT32_MAX) {
        memset(c->mark, 0, sizeof(int32_t) * (size_t)c->n_slots);
        c->mark_gen = 1;
    }
    int maxL = 1, maxq = 1;
    double work = 0.0;
    for (int s = 0; s < n_seq; s++) {
        int nq = seq_off[s + 1] - seq_off[s], sl = slots[s];
        if (nq < 0)
            return gr_errorf("cached forward: seq_off[%d] (%d) < seq_off[%d] (%d)", s + 1, seq_off[s + 1], s, seq_off[s]);
        if (!in_range(c, sl)) return gr_errorf("cached forward: slots[%d] = %d outside [0, %d)", s, sl, c->n_slots);
        if (c->mark[sl] == c->mark_gen) return gr_errorf("cached forward: slot %d appears twice in the batch", sl);
        c->mark[sl] = c->mark_gen;
        if (c->len[sl] - c->base[sl] + nq > c->max_T)
            return gr_errorf("cached forward: slot %d is full (%d own rows + %d new > max_T %d of the cache)", sl,
                             c->len[sl] - c->base[sl], nq, c->max_T);
        if (cfg->pos != GR_POS_NONE && c->len[sl] + nq > cfg->max_T)
            return gr_errorf("cached forward: slot %d: positions up to %d reach the model's max_T (%d)", sl,
                             c->len[sl] + nq - 1, cfg->max_T);
        int L = c->len[sl] + nq;
        if (nq > 0 && L > maxL) maxL = L;
        if (nq > maxq) maxq = nq;
        work += (double)nq * L * m->C * 4.0;
    }
    if (N == 0) return GR_OK;
    int nthr = gr_threads_get();
    int bq = maxq < KV_BQ ? maxq : KV_BQ;
    int longest = group_sequences(c, slots, seq_off, n_seq);
    if (longest < 0) return gr_error_prefix("cached forward: ");
    if (longest > bq) bq = longest;
    if (ensure_ws(c, m, N, (size_t)nthr * (size_t)bq * (size_t)maxL) != GR_OK) return GR_ERR;
    if (m->lora && tfm_lora_reserve(m, N) != GR_OK) return GR_ERR;

    for (int s = 0; s < n_seq; s++)
        for (int i = seq_off[s]; i < seq_off[s + 1]; i++) c->pos[i] = c->len[slots[s]] + (i - seq_off[s]);
    GR_PAR_PASS(tfm_pass_threads(m, N, work), cached_body(m, c, x, slots, seq_off, n_seq, N, out, bq, maxL, work));
    for (int s = 0; s < n_seq; s++) c->len[slots[s]] += seq_off[s + 1] - seq_off[s];
    return GR_OK;
}
