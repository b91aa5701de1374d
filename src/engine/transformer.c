/* The transformer engine (transformer.h): config validation, the parameter
 * and gradient slabs with named views, activation buffers, and the
 * forward/backward passes over packed batches built from ops.h.
 *
 * Activations kept for backward, per layer l (N tokens):
 *   ln1 (N,C) + mean/rstd (N)   qkv (N,QKV) after RoPE   att (N*Tb*NH)
 *   atty (N,C)   res_mid (N,C)   ln2 (N,C) + mean/rstd   fch (N,FW)
 *   fact (N,F)   res_out (N,C)   [dropout masks (N,C) bytes x 2]
 * with QKV = C + 2*KVH*HS and FW = F (2F for SwiGLU: [up | gate]). The block
 * input of layer 0 is x0 = dropout(x + pos_embd[pos]); of layer l > 0 it is
 * res_out of layer l-1. Inference (train=0) uses one layer slot for every
 * layer, updating the residual stream in place.
 *
 * LoRA (lora.c, genrec/lora.h): when adapters are attached (m->lora), each
 * of the four linear sites calls a tfm_lora_forward / tfm_lora_backward hook
 * right after the base layer; with m->frozen, backward passes NULL for every
 * base-parameter gradient (weights, biases, norms, positions), so only dx
 * and the adapter gradients are computed. With no adapters and frozen == 0
 * the passes are exactly the plain ones.
 *
 * Threads: each pass runs in ONE OpenMP parallel region (GR_PAR_PASS,
 * par.h): every thread of the team walks the same sequence of ops and the
 * ops share their work with orphaned worksharing, so a pass pays one barrier
 * per op instead of a fork/join per op. Validation and allocation happen
 * before the region (errors never occur inside it). The team size comes
 * from the pass's total work (tfm_pass_threads); small passes run on the
 * calling thread without any region.
 */
#include "genrec/transformer.h"
#include "tfm_internal.h"
#include "genrec/gemm.h"
#include "genrec/lora.h"
#include "genrec/ops.h"
#include "par.h"
#include "vmath.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- config and parameters --------------------------------------------------- */

static int config_check(gr_tfm_config *c)
{
#define BAD(...) return gr_errorf("transformer config: " __VA_ARGS__)
    if (c->n_layer < 1) BAD("field 'n_layer' (%d) must be >= 1", c->n_layer);
    if (c->d_model < 1) BAD("field 'd_model' (%d) must be >= 1", c->d_model);
    if (c->n_head < 1) BAD("field 'n_head' (%d) must be >= 1", c->n_head);
    if (c->d_model % c->n_head) BAD("field 'n_head' (%d) must divide d_model (%d)", c->n_head, c->d_model);
    if (c->n_kv_head == 0) c->n_kv_head = c->n_head;
    if (c->n_kv_head < 1 || c->n_head % c->n_kv_head)
        BAD("field 'n_kv_head' (%d) must be >= 1 and divide n_head (%d)", c->n_kv_head, c->n_head);
    if (c->d_ff < 1) BAD("field 'd_ff' (%d) must be >= 1", c->d_ff);
    if (c->max_T < 1) BAD("field 'max_T' (%d) must be >= 1", c->max_T);
    if ((unsigned)c->norm > GR_NORM_RMS) BAD("field 'norm' (%d) is not a gr_norm_type", (int)c->norm);
    if ((unsigned)c->act > GR_ACT_SWIGLU) BAD("field 'act' (%d) is not a gr_act_type", (int)c->act);
    if ((unsigned)c->pos > GR_POS_NONE) BAD("field 'pos' (%d) is not a gr_pos_type", (int)c->pos);
    if (!(c->norm_eps > 0.0f) || !isfinite(c->norm_eps)) BAD("field 'norm_eps' (%g) must be > 0", (double)c->norm_eps);
    if (c->pos == GR_POS_ROPE) {
        if ((c->d_model / c->n_head) % 2) BAD("field 'n_head': RoPE needs an even head size, got %d", c->d_model / c->n_head);
        if (!(c->rope_theta > 0.0f) || !isfinite(c->rope_theta)) BAD("field 'rope_theta' (%g) must be > 0", (double)c->rope_theta);
    }
    if (!(c->dropout >= 0.0f && c->dropout < 1.0f)) BAD("field 'dropout' (%g) must be in [0, 1)", (double)c->dropout);
    if (c->vocab < 0 || c->vocab > (1 << 24)) BAD("field 'vocab' (%d) must be in [0, 2^24]", c->vocab);
    if (c->vocab == 0) c->tied = 0;
    c->tied = c->tied != 0;
    double big = (double)c->d_model * c->d_ff * 3 + 4.0 * c->d_model * c->d_model + 2.0 * c->vocab * c->d_model / c->n_layer;
    if (big * c->n_layer > 4e9 || (double)c->max_T * c->d_model > 4e9)
        BAD("d_model %d, d_ff %d, n_layer %d, max_T %d: too many parameters", c->d_model, c->d_ff, c->n_layer, c->max_T);
    return GR_OK;
#undef BAD
}

/* Walk the slab layout once; with m->views == NULL only count. */
typedef struct layout { gr_tfm *m; int64_t off; int nv; size_t name_len; } layout;

static int64_t add_view(layout *L, const char *name, int ndim, int64_t d0, int64_t d1)
{
    int64_t off = L->off, size = ndim == 1 ? d0 : d0 * d1;
    if (L->m->views) {
        gr_tfm_param_view *v = &L->m->views[L->nv];
        char *dst = L->m->names + L->name_len;
        strcpy(dst, name);
        v->name = dst;
        v->offset = off;
        v->ndim = ndim;
        v->shape[0] = d0;
        v->shape[1] = ndim > 1 ? d1 : 0;
        v->shape[2] = v->shape[3] = 0;
    }
    L->name_len += strlen(name) + 1;
    L->nv++;
    L->off += size;
    return off;
}

/* Lay out the slab; fills offsets into lp (as offsets cast later). */
static void build_layout(gr_tfm *m, layout *L, int64_t (*offs)[12], int64_t *glob)
{
    const gr_tfm_config *c = &m->cfg;
    char nm[64];
    int has_nb = c->norm == GR_NORM_LAYER, kv = m->KVH * m->HS, sw = c->act == GR_ACT_SWIGLU;
    glob[3] = c->vocab > 0 ? add_view(L, "token_embd.weight", 2, c->vocab, m->C) : -1;
    glob[0] = c->pos == GR_POS_LEARNED ? add_view(L, "pos_embd", 2, c->max_T, m->C) : -1;
    for (int l = 0; l < c->n_layer; l++) {
        int64_t *o = offs ? offs[l] : (int64_t[12]){0};
#define V(i, suffix, nd, a, b) (snprintf(nm, sizeof nm, "blk.%d." suffix, l), o[i] = add_view(L, nm, nd, a, b))
        V(0, "attn_norm.weight", 1, m->C, 0);
        if (has_nb) V(1, "attn_norm.bias", 1, m->C, 0); else o[1] = -1;
        V(2, "attn_q.weight", 2, m->C, m->C);
        add_view(L, (snprintf(nm, sizeof nm, "blk.%d.attn_k.weight", l), nm), 2, kv, m->C);
        add_view(L, (snprintf(nm, sizeof nm, "blk.%d.attn_v.weight", l), nm), 2, kv, m->C);
        if (c->bias) {
            V(3, "attn_q.bias", 1, m->C, 0);
            add_view(L, (snprintf(nm, sizeof nm, "blk.%d.attn_k.bias", l), nm), 1, kv, 0);
            add_view(L, (snprintf(nm, sizeof nm, "blk.%d.attn_v.bias", l), nm), 1, kv, 0);
        } else o[3] = -1;
        V(4, "attn_output.weight", 2, m->C, m->C);
        if (c->bias) V(5, "attn_output.bias", 1, m->C, 0); else o[5] = -1;
        V(6, "ffn_norm.weight", 1, m->C, 0);
        if (has_nb) V(7, "ffn_norm.bias", 1, m->C, 0); else o[7] = -1;
        V(8, "ffn_up.weight", 2, m->F, m->C);
        if (sw) add_view(L, (snprintf(nm, sizeof nm, "blk.%d.ffn_gate.weight", l), nm), 2, m->F, m->C);
        if (c->bias) {
            V(9, "ffn_up.bias", 1, m->F, 0);
            if (sw) add_view(L, (snprintf(nm, sizeof nm, "blk.%d.ffn_gate.bias", l), nm), 1, m->F, 0);
        } else o[9] = -1;
        V(10, "ffn_down.weight", 2, m->C, m->F);
        if (c->bias) V(11, "ffn_down.bias", 1, m->C, 0); else o[11] = -1;
#undef V
    }
    if (c->final_norm) {
        glob[1] = add_view(L, "output_norm.weight", 1, m->C, 0);
        glob[2] = has_nb ? add_view(L, "output_norm.bias", 1, m->C, 0) : -1;
    } else {
        glob[1] = glob[2] = -1;
    }
    glob[4] = c->vocab > 0 && !c->tied ? add_view(L, "output.weight", 2, c->vocab, m->C) : -1;
}

static float *at(float *slab, int64_t off) { return off < 0 ? NULL : slab + off; }

static void set_layer_views(tfm_layer *dst, float *slab, const int64_t *o)
{
    dst->attn_norm_w = at(slab, o[0]); dst->attn_norm_b = at(slab, o[1]);
    dst->wqkv = at(slab, o[2]); dst->bqkv = at(slab, o[3]);
    dst->wo = at(slab, o[4]); dst->bo = at(slab, o[5]);
    dst->ffn_norm_w = at(slab, o[6]); dst->ffn_norm_b = at(slab, o[7]);
    dst->wup = at(slab, o[8]); dst->bup = at(slab, o[9]);
    dst->wdown = at(slab, o[10]); dst->bdown = at(slab, o[11]);
}

gr_tfm *gr_tfm_init(const gr_tfm_config *cfg, uint64_t seed)
{
    if (!cfg) { gr_errorf("transformer config: NULL"); return NULL; }
    gr_tfm_config c = *cfg;
    if (config_check(&c) != GR_OK) return NULL;
    gr_tfm *m = gr_calloc(1, sizeof *m);
    if (!m) return NULL;
    m->cfg = c;
    m->C = c.d_model; m->NH = c.n_head; m->KVH = c.n_kv_head; m->HS = c.d_model / c.n_head;
    m->F = c.d_ff; m->QKV = m->C + 2 * m->KVH * m->HS;
    m->FW = c.act == GR_ACT_SWIGLU ? 2 * m->F : m->F;
    layout L = {m, 0, 0, 0};
    int64_t glob[5];
    build_layout(m, &L, NULL, glob); /* count */
    m->n_params = L.off;
    m->n_views = L.nv;
    m->views = gr_calloc((size_t)L.nv, sizeof *m->views);
    m->names = gr_alloc(L.name_len, 1);
    int64_t (*offs)[12] = gr_alloc((size_t)c.n_layer, sizeof *offs);
    m->params = gr_alloc((size_t)m->n_params, sizeof(float));
    m->grads = gr_calloc((size_t)m->n_params, sizeof(float));
    m->lp = gr_alloc((size_t)c.n_layer, sizeof *m->lp);
    m->lg = gr_alloc((size_t)c.n_layer, sizeof *m->lg);
    if (c.pos == GR_POS_ROPE) m->rope_cs = gr_alloc((size_t)c.max_T * m->HS, sizeof(float));
    if (!m->views || !m->names || !offs || !m->params || !m->grads || !m->lp || !m->lg ||
        (c.pos == GR_POS_ROPE && !m->rope_cs)) {
        gr_free(offs);
        gr_tfm_free(m);
        return NULL;
    }
    L = (layout){m, 0, 0, 0};
    build_layout(m, &L, offs, glob);
    for (int l = 0; l < c.n_layer; l++) {
        set_layer_views(&m->lp[l], m->params, offs[l]);
        set_layer_views(&m->lg[l], m->grads, offs[l]);
    }
    gr_free(offs);
    m->pos_embd = at(m->params, glob[0]); m->g_pos_embd = at(m->grads, glob[0]);
    m->out_norm_w = at(m->params, glob[1]); m->g_out_norm_w = at(m->grads, glob[1]);
    m->out_norm_b = at(m->params, glob[2]); m->g_out_norm_b = at(m->grads, glob[2]);
    m->tok_embd = at(m->params, glob[3]); m->g_tok_embd = at(m->grads, glob[3]);
    m->head = c.tied ? m->tok_embd : at(m->params, glob[4]);
    m->g_head = c.tied ? m->g_tok_embd : at(m->grads, glob[4]);
    if (m->rope_cs) gr_rope_table(m->rope_cs, c.max_T, m->HS, c.rope_theta);
    /* init: matrices ~ N(0, 0.02), norm weights 1, biases 0 (views in order) */
    gr_rng r;
    gr_rng_seed(&r, seed);
    for (int v = 0; v < m->n_views; v++) {
        const gr_tfm_param_view *pv = &m->views[v];
        float *p = m->params + pv->offset;
        int64_t n = pv->ndim == 1 ? pv->shape[0] : pv->shape[0] * pv->shape[1];
        int is_norm_w = strstr(pv->name, "norm.weight") != NULL;
        for (int64_t i = 0; i < n; i++)
            p[i] = pv->ndim == 2 ? (float)(0.02 * gr_rng_normal(&r)) : is_norm_w ? 1.0f : 0.0f;
    }
    return m;
}

void gr_tfm_free(gr_tfm *m)
{
    if (!m) return;
    gr_free(m->params); gr_free(m->grads); gr_free(m->lp); gr_free(m->lg);
    gr_free(m->views); gr_free(m->names); gr_free(m->rope_cs);
    gr_free(m->act_mem); gr_free(m->att_mem); gr_free(m->scratch); gr_free(m->mask_mem);
    gr_free(m->acts); gr_free(m->pos); gr_free(m->seq_off);
    tfm_lora_free(m->lora);
    gr_free(m);
}

const gr_tfm_config *gr_tfm_get_config(const gr_tfm *m) { return &m->cfg; }
int64_t gr_tfm_n_params(const gr_tfm *m) { return m->n_params; }
float *gr_tfm_params(gr_tfm *m) { return m->params; }
float *gr_tfm_grads(gr_tfm *m) { return m->grads; }
void gr_tfm_zero_grad(gr_tfm *m)
{
    memset(m->grads, 0, sizeof(float) * (size_t)m->n_params);
    if (m->lora) gr_lora_zero_grad(m->lora);
}

int gr_tfm_param_views(const gr_tfm *m, const gr_tfm_param_view **views)
{
    *views = m->views;
    return m->n_views;
}

static const gr_tfm_param_view *find_view(const gr_tfm *m, const char *name)
{
    for (int v = 0; v < m->n_views; v++)
        if (!strcmp(m->views[v].name, name)) return &m->views[v];
    gr_errorf("transformer: no parameter named '%s'", name ? name : "(null)");
    return NULL;
}

float *gr_tfm_param(gr_tfm *m, const char *name)
{
    const gr_tfm_param_view *v = find_view(m, name);
    return v ? m->params + v->offset : NULL;
}

float *gr_tfm_grad(gr_tfm *m, const char *name)
{
    const gr_tfm_param_view *v = find_view(m, name);
    return v ? m->grads + v->offset : NULL;
}

float *gr_tfm_embd(gr_tfm *m, int grad) { return grad ? m->g_tok_embd : m->tok_embd; }
float *gr_tfm_head(gr_tfm *m, int grad) { return grad ? m->g_head : m->head; }

void gr_tfm_decay_mask(const gr_tfm *m, uint8_t *mask)
{
    for (int v = 0; v < m->n_views; v++) {
        const gr_tfm_param_view *pv = &m->views[v];
        int64_t n = pv->ndim == 1 ? pv->shape[0] : pv->shape[0] * pv->shape[1];
        memset(mask + pv->offset, pv->ndim == 2, (size_t)n);
    }
}

/* ---- activation memory ---------------------------------------------------------- */

/* Carve the activation slab for N tokens and `slots` layer slots; with
 * base == NULL only count floats. Returns the float count. */
static size_t carve(gr_tfm *m, float *base, int64_t N, int slots)
{
    size_t off = 0;
    const size_t C = (size_t)m->C;
#define TAKE(ptr, n) do { size_t n_ = (size_t)(n); if (base) (ptr) = base + off; \
                          off += (n_ + 15) & ~(size_t)15; } while (0)
    for (int s = 0; s < slots; s++) {
        tfm_acts *a = base ? &m->acts[s] : &(tfm_acts){0};
        TAKE(a->ln1, N * C); TAKE(a->ln1_mean, N); TAKE(a->ln1_rstd, N);
        TAKE(a->qkv, N * m->QKV); TAKE(a->atty, N * C); TAKE(a->res_mid, N * C);
        TAKE(a->ln2, N * C); TAKE(a->ln2_mean, N); TAKE(a->ln2_rstd, N);
        TAKE(a->fch, N * m->FW); TAKE(a->fact, N * m->F); TAKE(a->res_out, N * C);
    }
    TAKE(m->x0, N * C); TAKE(m->lnf, N * C); TAKE(m->lnf_mean, N); TAKE(m->lnf_rstd, N);
    TAKE(m->branch, N * C);
    TAKE(m->dres, N * C); TAKE(m->dA, N * C); TAKE(m->dqkv, N * m->QKV);
    TAKE(m->dfch, N * m->FW); TAKE(m->dfact, N * m->F); TAKE(m->dbranch, N * C);
#undef TAKE
    return off;
}

static int ensure_capacity(gr_tfm *m, int64_t N, int slots, size_t att_per_slot,
                           size_t scratch_n)
{
    if (N > m->cap_N || slots > m->cap_slots) {
        int64_t n = N > m->cap_N ? N : m->cap_N;
        int sl = slots > m->cap_slots ? slots : m->cap_slots;
        gr_free(m->act_mem); gr_free(m->mask_mem); gr_free(m->acts);
        m->act_mem = NULL; m->mask_mem = NULL; m->acts = NULL;
        m->cap_N = 0; m->cap_slots = 0; m->train_ready = 0;
        size_t nf = carve(m, NULL, n, sl);
        m->act_mem = gr_alloc(nf, sizeof(float));
        m->acts = gr_calloc((size_t)sl, sizeof *m->acts);
        size_t nmask = m->cfg.dropout > 0.0f ? (size_t)n * m->C * (size_t)(1 + 2 * sl) : 1;
        m->mask_mem = gr_alloc(nmask, 1);
        if (!m->act_mem || !m->acts || !m->mask_mem) return gr_error_prefix("transformer activations for %lld tokens: ", (long long)n);
        carve(m, m->act_mem, n, sl);
        if (m->cfg.dropout > 0.0f) {
            size_t nc = (size_t)n * m->C;
            m->mask0 = m->mask_mem;
            for (int s = 0; s < sl; s++) {
                m->acts[s].mask_attn = m->mask_mem + nc * (size_t)(1 + 2 * s);
                m->acts[s].mask_ffn = m->mask_mem + nc * (size_t)(2 + 2 * s);
            }
        }
        m->cap_N = n;
        m->cap_slots = sl;
        m->cap_att = 0; /* slots moved: re-point att below */
    }
    if (att_per_slot > m->cap_att || !m->att_mem) {
        size_t per = att_per_slot > m->cap_att ? att_per_slot : m->cap_att;
        gr_free(m->att_mem);
        m->train_ready = 0;
        m->att_mem = gr_alloc(per * (size_t)m->cap_slots + 1, sizeof(float));
        if (!m->att_mem) { m->cap_att = 0; return gr_error_prefix("transformer attention probabilities: "); }
        m->cap_att = per;
    }
    for (int s = 0; s < m->cap_slots; s++) m->acts[s].att = m->att_mem + m->cap_att * (size_t)s;
    if (scratch_n > m->cap_scratch) {
        gr_free(m->scratch);
        m->scratch = gr_alloc(scratch_n, sizeof(float));
        if (!m->scratch) { m->cap_scratch = 0; return gr_error_prefix("transformer attention scratch: "); }
        m->cap_scratch = scratch_n;
    }
    return GR_OK;
}

/* ---- forward / backward ----------------------------------------------------------- */

int tfm_pass_threads(const gr_tfm *m, int64_t N, double att_work)
{
    const double C = m->C;
    double lin = C * m->QKV + C * C + C * m->FW + (double)m->F * C; /* multiply-adds per token */
    double work = m->cfg.n_layer * ((double)N * (lin + 16.0 * (4.0 * C + m->FW)) + att_work);
    return gr_par_pass_threads(work, 12 * m->cfg.n_layer + 3);
}

/* Linear backward that SETS dinp (N, C) = dout (N, OC) W (OC, C) instead of
 * accumulating (saves zeroing it), and accumulates dW, db. */
static void linear_backward_set(float *dinp, float *dw, float *db, const float *dout,
                                const float *inp, const float *w, int N, int C, int OC)
{
    gr_gemm(0, 0, N, C, OC, 1.0f, dout, OC, w, C, 0.0f, dinp, C);
    gr_linear_backward(NULL, dw, db, dout, inp, w, N, C, OC);
}

static void norm_forward(const gr_tfm *m, float *out, float *mean, float *rstd,
                         const float *inp, const float *w, const float *b, int N)
{
    if (m->cfg.norm == GR_NORM_RMS) gr_rmsnorm_forward(out, rstd, inp, w, N, m->C, m->cfg.norm_eps);
    else gr_layernorm_forward(out, mean, rstd, inp, w, b, N, m->C, m->cfg.norm_eps);
}

static void norm_backward(const gr_tfm *m, float *dinp, float *dw, float *db, const float *dout,
                          const float *inp, const float *w, const float *mean,
                          const float *rstd, int N)
{
    if (m->cfg.norm == GR_NORM_RMS) gr_rmsnorm_backward(dinp, dw, dout, inp, w, rstd, N, m->C);
    else gr_layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, N, m->C);
}

static int check_batch(const gr_tfm *m, const int32_t *pos, const int32_t *seq_off,
                       int n_seq, int N)
{
    if (N < 0 || n_seq < 0) return gr_errorf("transformer forward: N (%d) and n_seq (%d) must be >= 0", N, n_seq);
    if (!seq_off) return gr_errorf("transformer forward: seq_off is NULL");
    if (seq_off[0] != 0) return gr_errorf("transformer forward: seq_off[0] is %d, must be 0", seq_off[0]);
    for (int s = 0; s < n_seq; s++)
        if (seq_off[s + 1] < seq_off[s])
            return gr_errorf("transformer forward: seq_off[%d] (%d) < seq_off[%d] (%d)", s + 1, seq_off[s + 1], s, seq_off[s]);
    if (seq_off[n_seq] != N)
        return gr_errorf("transformer forward: seq_off[n_seq=%d] is %d, must equal N (%d)", n_seq, seq_off[n_seq], N);
    if (m->cfg.pos != GR_POS_NONE) {
        if (!pos && N > 0) return gr_errorf("transformer forward: pos is NULL");
        for (int i = 0; i < N; i++)
            if (pos[i] < 0 || pos[i] >= m->cfg.max_T)
                return gr_errorf("transformer forward: pos[%d] = %d outside [0, max_T=%d)", i, pos[i], m->cfg.max_T);
    }
    return GR_OK;
}

/* The forward's ops, run by the pass's team (or alone, see GR_PAR_PASS). */
static void forward_body(gr_tfm *m, const float *x, const int32_t *pos, const int32_t *seq_off,
                         int n_seq, int N, float *out, int train, gr_rng *rng)
{
    const gr_tfm_config *c = &m->cfg;
    int drop = train && c->dropout > 0.0f;
    const int C = m->C;
    const int64_t NC = (int64_t)N * C;
    /* x0 = dropout(x + pos_embd[pos]) */
    if (c->pos == GR_POS_LEARNED) gr_pos_embd_forward(m->x0, x, m->pos_embd, pos, N, C);
    else gr_par_copy(m->x0, x, NC);
    if (drop) gr_dropout_forward(m->x0, m->mask0, m->x0, NC, c->dropout, rng);
    const float *res_in = m->x0;
    for (int l = 0; l < c->n_layer; l++) {
        tfm_acts *a = &m->acts[train ? l : 0];
        const tfm_layer *p = &m->lp[l];
        /* attention branch */
        norm_forward(m, a->ln1, a->ln1_mean, a->ln1_rstd, res_in, p->attn_norm_w, p->attn_norm_b, N);
        gr_linear_forward(a->qkv, a->ln1, p->wqkv, p->bqkv, N, C, m->QKV);
        if (m->lora) tfm_lora_forward(m, l, TFM_SITE_QKV, a->ln1, a->qkv, N, train);
        if (c->pos == GR_POS_ROPE) {
            gr_rope_forward(a->qkv, m->QKV, pos, m->rope_cs, N, m->NH, m->HS);
            gr_rope_forward(a->qkv + C, m->QKV, pos, m->rope_cs, N, m->KVH, m->HS);
        }
        gr_attention_forward(a->atty, train ? a->att : NULL, m->scratch, a->qkv, seq_off, n_seq,
                             m->NH, m->KVH, m->HS);
        gr_linear_forward(m->branch, a->atty, p->wo, p->bo, N, C, C);
        if (m->lora) tfm_lora_forward(m, l, TFM_SITE_O, a->atty, m->branch, N, train);
        if (drop) gr_dropout_forward(m->branch, a->mask_attn, m->branch, NC, c->dropout, rng);
        gr_residual_forward(a->res_mid, res_in, m->branch, NC);
        /* FFN branch */
        norm_forward(m, a->ln2, a->ln2_mean, a->ln2_rstd, a->res_mid, p->ffn_norm_w, p->ffn_norm_b, N);
        gr_linear_forward(a->fch, a->ln2, p->wup, p->bup, N, C, m->FW);
        if (m->lora) tfm_lora_forward(m, l, TFM_SITE_UP, a->ln2, a->fch, N, train);
        if (c->act == GR_ACT_SWIGLU) gr_swiglu_forward(a->fact, a->fch, N, m->F);
        else if (c->act == GR_ACT_RELU) gr_relu_forward(a->fact, a->fch, (int64_t)N * m->F);
        else gr_gelu_forward(a->fact, a->fch, (int64_t)N * m->F);
        gr_linear_forward(m->branch, a->fact, p->wdown, p->bdown, N, m->F, C);
        if (m->lora) tfm_lora_forward(m, l, TFM_SITE_DOWN, a->fact, m->branch, N, train);
        if (drop) gr_dropout_forward(m->branch, a->mask_ffn, m->branch, NC, c->dropout, rng);
        gr_residual_forward(a->res_out, a->res_mid, m->branch, NC);
        res_in = a->res_out;
    }
    if (c->final_norm)
        norm_forward(m, train ? m->lnf : out, m->lnf_mean, m->lnf_rstd, res_in, m->out_norm_w, m->out_norm_b, N);
    if (!c->final_norm || train) gr_par_copy(out, c->final_norm ? m->lnf : res_in, NC);
}

int gr_tfm_forward(gr_tfm *m, const float *x, const int32_t *pos,
                   const int32_t *seq_off, int n_seq, int N,
                   float *out, int train, gr_rng *rng)
{
    const gr_tfm_config *c = &m->cfg;
    m->train_ready = 0;
    if (check_batch(m, pos, seq_off, n_seq, N) != GR_OK) return GR_ERR;
    int drop = train && c->dropout > 0.0f;
    if (drop && !rng) return gr_errorf("transformer forward: dropout %g needs an rng", (double)c->dropout);
    if (N == 0) {
        m->N = 0; m->n_seq = n_seq;
        m->train_ready = train;
        return GR_OK;
    }
    int slots = train ? c->n_layer : 1;
    size_t att_n = train ? gr_attention_att_size(seq_off, n_seq, m->NH) : 0;
    if (ensure_capacity(m, N, slots, att_n, gr_attention_scratch_size(seq_off, n_seq)) != GR_OK)
        return GR_ERR;
    if (m->lora && tfm_lora_reserve(m, N) != GR_OK) return GR_ERR;
    if (train) { /* keep a copy of the batch layout for backward */
        if (n_seq + 1 > m->cap_seq) {
            gr_free(m->seq_off);
            m->seq_off = gr_alloc((size_t)n_seq + 1, sizeof(int32_t));
            m->cap_seq = m->seq_off ? n_seq + 1 : 0;
            if (!m->seq_off) return gr_error_prefix("transformer forward: ");
        }
        if (N > m->cap_pos) {
            gr_free(m->pos);
            m->pos = gr_alloc((size_t)N, sizeof(int32_t));
            m->cap_pos = m->pos ? N : 0;
            if (!m->pos) return gr_error_prefix("transformer forward: ");
        }
        memcpy(m->seq_off, seq_off, sizeof(int32_t) * ((size_t)n_seq + 1));
        if (pos) memcpy(m->pos, pos, sizeof(int32_t) * (size_t)N);
    }
    /* attention: N * Tb * C multiply-adds, twice (scores, values) */
    double att_work = (double)gr_attention_att_size(seq_off, n_seq, m->NH) * m->HS * 2.0;
    GR_PAR_PASS(tfm_pass_threads(m, N, att_work),
                forward_body(m, x, pos, seq_off, n_seq, N, out, train, rng));
    m->N = N;
    m->n_seq = n_seq;
    m->train_ready = train;
    return GR_OK;
}

/* The backward's ops, run by the pass's team (or alone, see GR_PAR_PASS). */
static void backward_body(gr_tfm *m, const float *dout, float *dx)
{
    const gr_tfm_config *c = &m->cfg;
    int N = m->N, C = m->C;
    int64_t NC = (int64_t)N * C;
    int drop = c->dropout > 0.0f;
    const float *res_last = m->acts[c->n_layer - 1].res_out;
    /* frozen base: every base-parameter gradient pointer is NULL (skipped) */
    static const tfm_layer no_grads;
    const int fz = m->frozen;
    if (c->final_norm) {
        gr_par_zero(m->dres, NC);
        norm_backward(m, m->dres, fz ? NULL : m->g_out_norm_w, fz ? NULL : m->g_out_norm_b, dout, res_last,
                      m->out_norm_w, m->lnf_mean, m->lnf_rstd, N);
    } else {
        gr_par_copy(m->dres, dout, NC);
    }
    for (int l = c->n_layer - 1; l >= 0; l--) {
        tfm_acts *a = &m->acts[l];
        const tfm_layer *p = &m->lp[l];
        const tfm_layer *g = fz ? &no_grads : &m->lg[l];
        const float *res_in = l == 0 ? m->x0 : m->acts[l - 1].res_out;
        /* res_out = res_mid + dropout(ffn): dres flows to res_mid unchanged */
        const float *dbr = m->dres;
        if (drop) {
            /* dropout backward, written (not accumulated) */
            gr_dropout_apply(m->dbranch, a->mask_ffn, m->dres, NC, c->dropout);
            dbr = m->dbranch;
        }
        linear_backward_set(m->dfact, g->wdown, g->bdown, dbr, a->fact, p->wdown, N, m->F, C);
        if (m->lora) tfm_lora_backward(m, l, TFM_SITE_DOWN, a->fact, dbr, m->dfact, N);
        gr_par_zero(m->dfch, (int64_t)N * m->FW);
        if (c->act == GR_ACT_SWIGLU) gr_swiglu_backward(m->dfch, a->fch, m->dfact, N, m->F);
        else if (c->act == GR_ACT_RELU) gr_relu_backward(m->dfch, a->fch, m->dfact, (int64_t)N * m->F);
        else gr_gelu_backward(m->dfch, a->fch, m->dfact, (int64_t)N * m->F);
        linear_backward_set(m->dA, g->wup, g->bup, m->dfch, a->ln2, p->wup, N, C, m->FW);
        if (m->lora) tfm_lora_backward(m, l, TFM_SITE_UP, a->ln2, m->dfch, m->dA, N);
        norm_backward(m, m->dres, g->ffn_norm_w, g->ffn_norm_b, m->dA, a->res_mid,
                      p->ffn_norm_w, a->ln2_mean, a->ln2_rstd, N);
        /* res_mid = res_in + dropout(attn) */
        dbr = m->dres;
        if (drop) {
            /* dropout backward, written (not accumulated) */
            gr_dropout_apply(m->dbranch, a->mask_attn, m->dres, NC, c->dropout);
            dbr = m->dbranch;
        }
        linear_backward_set(m->dA, g->wo, g->bo, dbr, a->atty, p->wo, N, C, C);
        if (m->lora) tfm_lora_backward(m, l, TFM_SITE_O, a->atty, dbr, m->dA, N);
        gr_par_zero(m->dqkv, (int64_t)N * m->QKV);
        gr_attention_backward(m->dqkv, m->scratch, m->dA, a->qkv, a->att, m->seq_off, m->n_seq,
                              m->NH, m->KVH, m->HS);
        if (c->pos == GR_POS_ROPE) {
            gr_rope_backward(m->dqkv, m->QKV, m->pos, m->rope_cs, N, m->NH, m->HS);
            gr_rope_backward(m->dqkv + C, m->QKV, m->pos, m->rope_cs, N, m->KVH, m->HS);
        }
        linear_backward_set(m->dA, g->wqkv, g->bqkv, m->dqkv, a->ln1, p->wqkv, N, C, m->QKV);
        if (m->lora) tfm_lora_backward(m, l, TFM_SITE_QKV, a->ln1, m->dqkv, m->dA, N);
        norm_backward(m, m->dres, g->attn_norm_w, g->attn_norm_b, m->dA, res_in,
                      p->attn_norm_w, a->ln1_mean, a->ln1_rstd, N);
    }
    /* x0 = dropout(x + pos_embd[pos]) */
    const float *dx0 = m->dres;
    if (drop) {
        /* dropout backward, written (not accumulated) */
        gr_dropout_apply(m->dbranch, m->mask0, m->dres, NC, c->dropout);
        dx0 = m->dbranch;
    }
    if (c->pos == GR_POS_LEARNED && !fz) gr_pos_embd_backward(m->g_pos_embd, dx0, m->pos, N, C);
    if (dx && dx != dx0) gr_par_copy(dx, dx0, NC);
}

int gr_tfm_backward(gr_tfm *m, const float *dout, float *dx)
{
    if (!m->train_ready) return gr_errorf("transformer backward: no train=1 forward to differentiate");
    m->train_ready = 0;
    int N = m->N;
    if (N == 0) return GR_OK;
    double att_work = (double)gr_attention_att_size(m->seq_off, m->n_seq, m->NH) * m->HS * 4.0;
    GR_PAR_PASS(tfm_pass_threads(m, N, att_work), backward_body(m, dout, dx));
    return GR_OK;
}
