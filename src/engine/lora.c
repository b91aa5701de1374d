/* LoRA adapters on the transformer engine (genrec/lora.h): config checks,
 * the adapter slab and its views, the forward/backward hooks transformer.c
 * calls per site, merging, and GGUF save/load.
 *
 * Slab layout, per layer: the A matrices of the layer's targets (in target
 * order), then their B matrices. The A's of the targets that share a site
 * (q|k|v on ln1, up|gate on ln2) are therefore adjacent, one (R, in) block
 * with R = r * (targets at the site), so a site's down-projection u = x A^T
 * (N, R), its dA and its dx are one GEMM each; only B is per target:
 *   forward   u = x A^T;  y[:, rows_j] += s u_j B_j^T
 *   backward  du_j = s dy_j B_j;  dB_j += s dy_j^T u_j;
 *             dA += du^T x;  dx += du A
 * The hooks run inside the passes' single parallel region (par.h): every
 * thread of the team calls them and their GEMMs are shared by the team;
 * gr_lora_merge opens one region for all its products.
 */
#include "genrec/lora.h"
#include "tfm_internal.h"
#include "genrec/gemm.h"
#include "genrec/gguf.h"
#include "par.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const target_names[GR_LORA_N_TARGETS] = {
    "attn_q", "attn_k", "attn_v", "attn_output", "ffn_up", "ffn_gate", "ffn_down"};

typedef struct lora_site {     /* one site of one layer */
    int n_t;                   /* adapted targets here (0: nothing to do) */
    int in, ldy, R;            /* input width, output row stride, n_t * r */
    int64_t a_off;             /* (R, in) stacked A's in the slab */
    int64_t u_off;             /* u (N, R) at act + u_off * N (train) */
    int row0[3], out[3];       /* per target: first row in the fused output, rows */
    int64_t b_off[3];          /* per target: B (out, r) in the slab */
} lora_site;

struct gr_lora {
    gr_lora_config cfg;
    float scale;
    int n_layer;
    int64_t n_params;
    float *params, *grads;
    gr_tfm_param_view *views;
    int n_views;
    char *names;
    lora_site *sites;          /* n_layer * TFM_N_SITES */
    int64_t u_per_layer;       /* sum of R over a layer's sites */
    int max_R;
    float *act;                /* u of every layer's sites for backward (n_layer *
                                  u_per_layer * cap_N), u of the inference forward
                                  (u_per_layer * cap_N), du (cap_N, max_R) */
    int64_t cap_N;
};

/* Geometry of target t in model m. */
typedef struct tgt_geo { int site, in, out, row0; } tgt_geo;

static tgt_geo geo(const gr_tfm *m, int t)
{
    int kv = m->KVH * m->HS;
    switch (t) {
    case 0: return (tgt_geo){TFM_SITE_QKV, m->C, m->C, 0};
    case 1: return (tgt_geo){TFM_SITE_QKV, m->C, kv, m->C};
    case 2: return (tgt_geo){TFM_SITE_QKV, m->C, kv, m->C + kv};
    case 3: return (tgt_geo){TFM_SITE_O, m->C, m->C, 0};
    case 4: return (tgt_geo){TFM_SITE_UP, m->C, m->F, 0};
    case 5: return (tgt_geo){TFM_SITE_UP, m->C, m->F, m->F};
    default: return (tgt_geo){TFM_SITE_DOWN, m->F, m->C, 0};
    }
}

static int site_ldy(const gr_tfm *m, int site)
{
    return site == TFM_SITE_QKV ? m->QKV : site == TFM_SITE_UP ? m->FW : m->C;
}

static float *site_weight(gr_tfm *m, int l, int site)
{
    const tfm_layer *p = &m->lp[l];
    return site == TFM_SITE_QKV ? p->wqkv : site == TFM_SITE_O ? p->wo : site == TFM_SITE_UP ? p->wup : p->wdown;
}

const char *gr_lora_target_name(int i)
{
    return i >= 0 && i < GR_LORA_N_TARGETS ? target_names[i] : NULL;
}

int gr_lora_parse_targets(const char *list, unsigned *mask)
{
    *mask = 0;
    if (!list) return gr_errorf("lora targets: NULL list");
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        while (n && *p == ' ') { p++; n--; }
        while (n && p[n - 1] == ' ') n--;
        int found = -1;
        if (n == 3 && !strncmp(p, "all", 3)) {
            *mask |= GR_LORA_ALL;
            found = 1;
        }
        for (int i = 0; i < GR_LORA_N_TARGETS && found < 0; i++)
            if (strlen(target_names[i]) == n && !strncmp(p, target_names[i], n)) {
                *mask |= 1u << i;
                found = 1;
            }
        if (found < 0) {
            *mask = 0;
            return gr_errorf("lora targets: unknown target '%.*s' (known: attn_q, attn_k, attn_v, "
                             "attn_output, ffn_up, ffn_gate, ffn_down, all)", (int)n, p);
        }
        p = e ? e + 1 : p + n;
    }
    if (!*mask) return gr_errorf("lora targets: empty list");
    return GR_OK;
}

/* Validate cfg against m; resolves ALL into *out. */
static int config_check(const gr_tfm *m, const gr_lora_config *cfg, gr_lora_config *out)
{
#define BAD(...) return gr_errorf("lora config: " __VA_ARGS__)
    if (!cfg) BAD("NULL");
    *out = *cfg;
    int swiglu = m->cfg.act == GR_ACT_SWIGLU;
    if (cfg->targets & ~(unsigned)GR_LORA_ALL)
        BAD("field 'targets' (0x%x) has unknown target bits 0x%x", cfg->targets, cfg->targets & ~(unsigned)GR_LORA_ALL);
    if (!cfg->targets) BAD("field 'targets' is empty");
    if (cfg->targets == (unsigned)GR_LORA_ALL && !swiglu) out->targets &= ~(unsigned)GR_LORA_FFN_GATE;
    if ((out->targets & GR_LORA_FFN_GATE) && !swiglu)
        BAD("field 'targets': ffn_gate needs a SwiGLU model (this one has no gate projection)");
    if (cfg->rank < 1) BAD("field 'rank' (%d) must be >= 1", cfg->rank);
    if (!(cfg->alpha > 0.0f) || !isfinite(cfg->alpha)) BAD("field 'alpha' (%g) must be > 0", (double)cfg->alpha);
    for (int t = 0; t < GR_LORA_N_TARGETS; t++) {
        if (!(out->targets & (1u << t))) continue;
        tgt_geo g = geo(m, t);
        int lim = g.in < g.out ? g.in : g.out;
        if (cfg->rank > lim)
            BAD("field 'rank' (%d) exceeds target %s's dims (%d x %d): at most %d", cfg->rank,
                target_names[t], g.out, g.in, lim);
    }
    return GR_OK;
#undef BAD
}

/* Lay out the slab (views == NULL: count only). */
static void layout(gr_lora *lo, const gr_tfm *m, int64_t *n_params, int *n_views, size_t *name_len)
{
    int64_t off = 0;
    int nv = 0;
    size_t nl = 0;
    const int r = lo->cfg.rank;
    char nm[64];
    lo->u_per_layer = 0;
    lo->max_R = 0;
    for (int l = 0; l < lo->n_layer; l++) {
        lora_site *S = lo->sites ? lo->sites + (size_t)l * TFM_N_SITES : NULL;
        if (S) memset(S, 0, sizeof *S * TFM_N_SITES);
        for (int pass = 0; pass < 2; pass++) /* A's, then B's */
            for (int t = 0; t < GR_LORA_N_TARGETS; t++) {
                if (!(lo->cfg.targets & (1u << t))) continue;
                tgt_geo g = geo(m, t);
                int64_t d0 = pass ? g.out : r, d1 = pass ? r : g.in;
                snprintf(nm, sizeof nm, "blk.%d.%s.lora_%c", l, target_names[t], pass ? 'b' : 'a');
                if (lo->views) {
                    gr_tfm_param_view *v = &lo->views[nv];
                    strcpy(lo->names + nl, nm);
                    v->name = lo->names + nl;
                    v->offset = off;
                    v->ndim = 2;
                    v->shape[0] = d0; v->shape[1] = d1; v->shape[2] = v->shape[3] = 0;
                }
                if (S) {
                    lora_site *s = &S[g.site];
                    if (!pass) {
                        if (!s->n_t) s->a_off = off;
                        s->in = g.in;
                        s->ldy = site_ldy(m, g.site);
                        s->row0[s->n_t] = g.row0;
                        s->out[s->n_t] = g.out;
                        s->n_t++;
                        s->R += r;
                    } else {
                        for (int j = 0; j < s->n_t; j++)
                            if (s->row0[j] == g.row0) s->b_off[j] = off;
                    }
                }
                off += d0 * d1;
                nv++;
                nl += strlen(nm) + 1;
            }
        if (S) {
            int64_t u = 0;
            for (int s = 0; s < TFM_N_SITES; s++) {
                S[s].u_off = u; /* within the layer; the layer's block is added at use */
                u += S[s].R;
                if (S[s].R > lo->max_R) lo->max_R = S[s].R;
            }
            lo->u_per_layer = u;
        }
    }
    *n_params = off;
    *n_views = nv;
    *name_len = nl;
}

void tfm_lora_free(gr_lora *lo)
{
    if (!lo) return;
    gr_free(lo->params); gr_free(lo->grads); gr_free(lo->views); gr_free(lo->names);
    gr_free(lo->sites); gr_free(lo->act);
    gr_free(lo);
}

gr_lora *gr_lora_attach(gr_tfm *m, const gr_lora_config *cfg)
{
    if (!m) { gr_errorf("lora attach: NULL model"); return NULL; }
    if (m->lora) {
        gr_errorf("lora attach: the model already has adapters (merge or detach them first)");
        return NULL;
    }
    gr_lora_config c;
    if (config_check(m, cfg, &c) != GR_OK) return NULL;
    gr_lora *lo = gr_calloc(1, sizeof *lo);
    if (!lo) return NULL;
    lo->cfg = c;
    lo->scale = c.alpha / (float)c.rank;
    lo->n_layer = m->cfg.n_layer;
    size_t name_len;
    layout(lo, m, &lo->n_params, &lo->n_views, &name_len);
    lo->params = gr_alloc((size_t)lo->n_params, sizeof(float));
    lo->grads = gr_calloc((size_t)lo->n_params, sizeof(float));
    lo->views = gr_calloc((size_t)lo->n_views, sizeof *lo->views);
    lo->names = gr_alloc(name_len, 1);
    lo->sites = gr_calloc((size_t)lo->n_layer * TFM_N_SITES, sizeof *lo->sites);
    if (!lo->params || !lo->grads || !lo->views || !lo->names || !lo->sites) {
        tfm_lora_free(lo);
        gr_error_prefix("lora attach: ");
        return NULL;
    }
    layout(lo, m, &lo->n_params, &lo->n_views, &name_len);
    /* A ~ U(-1/sqrt(in), 1/sqrt(in)) (kaiming_uniform_ with a = sqrt(5), as
     * PEFT), B = 0: the adapted model starts equal to the base */
    gr_rng rng;
    gr_rng_seed(&rng, c.seed);
    for (int v = 0; v < lo->n_views; v++) {
        const gr_tfm_param_view *pv = &lo->views[v];
        float *p = lo->params + pv->offset;
        int64_t n = pv->shape[0] * pv->shape[1];
        int is_a = pv->name[strlen(pv->name) - 1] == 'a';
        double bound = 1.0 / sqrt((double)pv->shape[1]);
        for (int64_t i = 0; i < n; i++) p[i] = is_a ? (float)((2.0 * gr_rng_double(&rng) - 1.0) * bound) : 0.0f;
    }
    m->lora = lo;
    m->train_ready = 0; /* a pending backward would lack the adapters' activations */
    return lo;
}

gr_lora *gr_tfm_lora(gr_tfm *m) { return m ? m->lora : NULL; }

void gr_lora_detach(gr_tfm *m)
{
    if (!m) return;
    tfm_lora_free(m->lora);
    m->lora = NULL;
    m->train_ready = 0; /* the last forward's adapter activations are gone */
}

/* The merge's products, run by one team (par.h): W[rows_j] (out, in) +=
 * s B_j (out, r) A_j (r, in) for every target of every site. */
static void merge_body(gr_tfm *m)
{
    const gr_lora *lo = m->lora;
    const int r = lo->cfg.rank;
    for (int l = 0; l < lo->n_layer; l++)
        for (int si = 0; si < TFM_N_SITES; si++) {
            const lora_site *s = &lo->sites[(size_t)l * TFM_N_SITES + si];
            float *W = site_weight(m, l, si);
            for (int j = 0; j < s->n_t; j++)
                gr_gemm(0, 0, s->out[j], s->in, r, lo->scale, lo->params + s->b_off[j], r,
                        lo->params + s->a_off + (int64_t)j * r * s->in, s->in, 1.0f,
                        W + (int64_t)s->row0[j] * s->in, s->in);
        }
}

void gr_lora_merge(gr_tfm *m)
{
    if (!m || !m->lora) return;
    const gr_lora *lo = m->lora;
    double work = 0.0;
    int n_ops = 0;
    for (size_t i = 0; i < (size_t)lo->n_layer * TFM_N_SITES; i++)
        for (int j = 0; j < lo->sites[i].n_t; j++, n_ops++)
            work += (double)lo->sites[i].out[j] * lo->sites[i].in * lo->cfg.rank;
    GR_PAR_PASS(gr_par_pass_threads(work, n_ops), merge_body(m));
    gr_lora_detach(m);
}

const gr_lora_config *gr_lora_get_config(const gr_lora *l) { return &l->cfg; }
float gr_lora_scale(const gr_lora *l) { return l->scale; }
int64_t gr_lora_n_params(const gr_lora *l) { return l->n_params; }
float *gr_lora_params(gr_lora *l) { return l->params; }
float *gr_lora_grads(gr_lora *l) { return l->grads; }
void gr_lora_zero_grad(gr_lora *l) { memset(l->grads, 0, sizeof(float) * (size_t)l->n_params); }

int gr_lora_views(const gr_lora *l, const gr_tfm_param_view **views)
{
    *views = l->views;
    return l->n_views;
}

static const gr_tfm_param_view *find_view(const gr_lora *l, const char *name)
{
    for (int v = 0; v < l->n_views; v++)
        if (!strcmp(l->views[v].name, name)) return &l->views[v];
    gr_errorf("lora: no adapter tensor named '%s'", name ? name : "(null)");
    return NULL;
}

float *gr_lora_param(gr_lora *l, const char *name)
{
    const gr_tfm_param_view *v = find_view(l, name);
    return v ? l->params + v->offset : NULL;
}

float *gr_lora_grad(gr_lora *l, const char *name)
{
    const gr_tfm_param_view *v = find_view(l, name);
    return v ? l->grads + v->offset : NULL;
}

void gr_lora_decay_mask(const gr_lora *l, uint8_t *mask) { memset(mask, 1, (size_t)l->n_params); }

void gr_tfm_set_frozen(gr_tfm *m, int frozen) { m->frozen = frozen != 0; }
int gr_tfm_frozen(const gr_tfm *m) { return m->frozen; }

/* ---- hooks -------------------------------------------------------------------- */

int tfm_lora_reserve(gr_tfm *m, int64_t N)
{
    gr_lora *lo = m->lora;
    if (N <= lo->cap_N) return GR_OK;
    gr_free(lo->act);
    lo->cap_N = 0;
    m->train_ready = 0; /* the kept activations are gone */
    lo->act = gr_alloc((size_t)N * (size_t)(lo->u_per_layer * (lo->n_layer + 1) + lo->max_R), sizeof(float));
    if (!lo->act) return gr_error_prefix("lora activations for %lld tokens: ", (long long)N);
    lo->cap_N = N;
    return GR_OK;
}

/* u of site s: layer l's own (train) or the shared inference one (l = -1),
 * so an inference or cached forward between a training forward and its
 * backward does not disturb what backward needs */
static float *site_u(const gr_lora *lo, const lora_site *s, int l)
{
    int64_t slot = l >= 0 ? l : lo->n_layer;
    return lo->act + (size_t)lo->cap_N * (size_t)(slot * lo->u_per_layer + s->u_off);
}

void tfm_lora_forward(gr_tfm *m, int l, int site, const float *inp, float *out, int N, int train)
{
    const gr_lora *lo = m->lora;
    const lora_site *s = &lo->sites[(size_t)l * TFM_N_SITES + site];
    if (!s->n_t) return;
    const int r = lo->cfg.rank;
    float *u = site_u(lo, s, train ? l : -1);
    gr_gemm(0, 1, N, s->R, s->in, 1.0f, inp, s->in, lo->params + s->a_off, s->in, 0.0f, u, s->R);
    for (int j = 0; j < s->n_t; j++)
        gr_gemm(0, 1, N, s->out[j], r, lo->scale, u + (int64_t)j * r, s->R, lo->params + s->b_off[j], r,
                1.0f, out + s->row0[j], s->ldy);
}

void tfm_lora_backward(gr_tfm *m, int l, int site, const float *inp, const float *dout,
                       float *dinp, int N)
{
    gr_lora *lo = m->lora;
    const lora_site *s = &lo->sites[(size_t)l * TFM_N_SITES + site];
    if (!s->n_t) return;
    const int r = lo->cfg.rank;
    const float *u = site_u(lo, s, l);
    float *du = lo->act + (size_t)lo->cap_N * (size_t)(lo->u_per_layer * (lo->n_layer + 1));
    for (int j = 0; j < s->n_t; j++) {
        const float *dy = dout + s->row0[j];
        /* du_j (N, r) = s dy_j (N, out) B_j (out, r) */
        gr_gemm(0, 0, N, r, s->out[j], lo->scale, dy, s->ldy, lo->params + s->b_off[j], r, 0.0f,
                du + (int64_t)j * r, s->R);
        /* dB_j (out, r) += s dy_j^T u_j */
        gr_gemm(1, 0, s->out[j], r, N, lo->scale, dy, s->ldy, u + (int64_t)j * r, s->R, 1.0f,
                lo->grads + s->b_off[j], r);
    }
    /* dA (R, in) += du^T inp;  dinp (N, in) += du A */
    gr_gemm(1, 0, s->R, s->in, N, 1.0f, du, s->R, inp, s->in, 1.0f, lo->grads + s->a_off, s->in);
    gr_gemm(0, 0, N, s->in, s->R, 1.0f, du, s->R, lo->params + s->a_off, s->in, 1.0f, dinp, s->in);
}

/* ---- save / load ---------------------------------------------------------------- */

int gr_lora_save(gr_tfm *m, const char *path)
{
    if (!m || !m->lora) return gr_errorf("lora save: %s: the model has no adapters", path ? path : "(null)");
    if (!path) return gr_errorf("lora save: no path");
    const gr_lora *lo = m->lora;
    gr_gguf_builder *b = gr_gguf_builder_new();
    if (!b) return gr_error_prefix("lora save: %s: ", path);
    const char *tn[GR_LORA_N_TARGETS];
    uint64_t nt = 0;
    for (int t = 0; t < GR_LORA_N_TARGETS; t++)
        if (lo->cfg.targets & (1u << t)) tn[nt++] = target_names[t];
    const gr_tfm_config *c = &m->cfg;
    int rc = gr_gguf_set_str(b, "general.type", "adapter");
    rc = rc ? rc : gr_gguf_set_str(b, "adapter.type", "lora");
    rc = rc ? rc : gr_gguf_set_f32(b, "adapter.lora.alpha", lo->cfg.alpha);
    rc = rc ? rc : gr_gguf_set_u32(b, "genrec.lora.rank", (uint32_t)lo->cfg.rank);
    rc = rc ? rc : gr_gguf_set_arr_str(b, "genrec.lora.targets", tn, NULL, nt);
    rc = rc ? rc : gr_gguf_set_u32(b, "genrec.lora.n_layer", (uint32_t)c->n_layer);
    rc = rc ? rc : gr_gguf_set_u32(b, "genrec.lora.d_model", (uint32_t)c->d_model);
    rc = rc ? rc : gr_gguf_set_u32(b, "genrec.lora.n_head", (uint32_t)c->n_head);
    rc = rc ? rc : gr_gguf_set_u32(b, "genrec.lora.n_kv_head", (uint32_t)c->n_kv_head);
    rc = rc ? rc : gr_gguf_set_u32(b, "genrec.lora.d_ff", (uint32_t)c->d_ff);
    for (int v = 0; v < lo->n_views && !rc; v++) {
        const gr_tfm_param_view *pv = &lo->views[v];
        int64_t ne[2] = {pv->shape[1], pv->shape[0]}; /* ggml order */
        rc = gr_gguf_add_tensor_f32(b, pv->name, GR_GGML_F32, 2, ne, lo->params + pv->offset);
    }
    rc = rc ? rc : gr_gguf_write(b, path);
    gr_gguf_builder_free(b);
    return rc ? gr_error_prefix("lora save: %s: ", path) : GR_OK;
}

static int load_into(gr_tfm *m, const gr_gguf *g)
{
    const char *s;
    if (gr_gguf_get_str(g, "adapter.type", &s, NULL) != GR_OK) return GR_ERR;
    if (strcmp(s, "lora")) return gr_errorf("key 'adapter.type' is '%s', not 'lora'", s);
    double alpha;
    int64_t rank;
    if (gr_gguf_get_float(g, "adapter.lora.alpha", &alpha) != GR_OK) return GR_ERR;
    if (gr_gguf_get_int(g, "genrec.lora.rank", &rank) != GR_OK) return GR_ERR;
    if (rank < 1 || rank > (1 << 20)) return gr_errorf("key 'genrec.lora.rank' (%lld) out of range", (long long)rank);
    const gr_gguf_kv *tk = gr_gguf_get_arr(g, "genrec.lora.targets", GR_GGUF_STRING);
    if (!tk) return GR_ERR;
    unsigned mask = 0;
    for (uint64_t i = 0; i < tk->n; i++) {
        int found = 0;
        for (int t = 0; t < GR_LORA_N_TARGETS && !found; t++)
            if (!strcmp(tk->v.strs[i], target_names[t])) { mask |= 1u << t; found = 1; }
        if (!found) return gr_errorf("key 'genrec.lora.targets': unknown target '%s'", tk->v.strs[i]);
    }
    const gr_tfm_config *c = &m->cfg;
    const char *keys[5] = {"genrec.lora.n_layer", "genrec.lora.d_model", "genrec.lora.n_head",
                           "genrec.lora.n_kv_head", "genrec.lora.d_ff"};
    const int want[5] = {c->n_layer, c->d_model, c->n_head, c->n_kv_head, c->d_ff};
    for (int i = 0; i < 5; i++) {
        int64_t v;
        if (gr_gguf_get_int(g, keys[i], &v) != GR_OK) return GR_ERR;
        if (v != want[i])
            return gr_errorf("key '%s' is %lld but the base model has %d", keys[i], (long long)v, want[i]);
    }
    gr_lora_config cfg = {.rank = (int)rank, .alpha = (float)alpha, .targets = mask, .seed = 0};
    gr_lora *lo = gr_lora_attach(m, &cfg);
    if (!lo) return GR_ERR;
    if (gr_gguf_n_tensors(g) != lo->n_views) {
        gr_lora_detach(m);
        return gr_errorf("%lld tensors, but rank %d on these targets needs %d", (long long)gr_gguf_n_tensors(g),
                         lo->cfg.rank, lo->n_views);
    }
    for (int v = 0; v < lo->n_views; v++) {
        const gr_tfm_param_view *pv = &lo->views[v];
        const gr_gguf_tensor *t = gr_gguf_find_tensor(g, pv->name);
        int rc;
        if (!t) rc = gr_errorf("tensor '%s' is missing", pv->name);
        else if (t->n_dims != 2 || t->ne[0] != pv->shape[1] || t->ne[1] != pv->shape[0])
            rc = gr_errorf("tensor '%s': shape [%lld, %lld] (ggml order), expected [%lld, %lld]", pv->name,
                           (long long)t->ne[0], (long long)(t->n_dims > 1 ? t->ne[1] : 1),
                           (long long)pv->shape[1], (long long)pv->shape[0]);
        else rc = gr_ggml_to_f32(t->type, t->data, lo->params + pv->offset, t->n_elements);
        if (rc == GR_OK)
            for (int64_t i = 0; i < t->n_elements; i++)
                if (!isfinite(lo->params[pv->offset + i])) {
                    rc = gr_errorf("tensor '%s': non-finite value at %lld", pv->name, (long long)i);
                    break;
                }
        if (rc != GR_OK) { gr_lora_detach(m); return GR_ERR; }
    }
    return GR_OK;
}

gr_lora *gr_lora_load(gr_tfm *m, const char *path)
{
    if (!m || !path) { gr_errorf("lora load: NULL model or path"); return NULL; }
    if (m->lora) {
        gr_errorf("lora load: %s: the model already has adapters (merge or detach them first)", path);
        return NULL;
    }
    gr_gguf *g = gr_gguf_open(path);
    if (!g) return NULL;
    int rc = load_into(m, g);
    gr_gguf_close(g);
    if (rc != GR_OK) { gr_error_prefix("%s: ", path); return NULL; }
    return m->lora;
}
