/* The common part of the checkpoint importers: file mapping, the builder
 * that checks names/shapes/completeness, gr_ckpt queries and format
 * detection (gr_ckpt_load). */
#include "checkpoint_internal.h"

#include "genrec/common.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- file mapping ----------------------------------------------------------------------- */

int ckpt_map_file(const char *path, ckpt_map *m)
{
    memset(m, 0, sizeof *m);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return gr_errorf("%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        close(fd);
        return gr_errorf("%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        return gr_errorf("%s: file too large", path);
    }
    m->size = (size_t)st.st_size;
    if (m->size) {
        void *p = mmap(NULL, m->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p != MAP_FAILED) {
            m->map = p;
            m->data = p;
        } else {
            m->heap = gr_alloc(m->size, 1);
            size_t got = 0;
            while (m->heap && got < m->size) {
                ssize_t r = read(fd, (char *)m->heap + got, m->size - got);
                if (r <= 0) { if (r < 0 && errno == EINTR) continue; break; }
                got += (size_t)r;
            }
            if (!m->heap || got < m->size) {
                close(fd);
                gr_free(m->heap);
                memset(m, 0, sizeof *m);
                return gr_errorf("%s: cannot read %zu bytes", path, (size_t)st.st_size);
            }
            m->data = m->heap;
        }
    }
    close(fd);
    return GR_OK;
}

void ckpt_unmap(ckpt_map *m)
{
    if (m->map) munmap(m->map, m->size);
    gr_free(m->heap);
    memset(m, 0, sizeof *m);
}

/* ---- canonical names and slots -----------------------------------------------------------
 * Slots: 0 token_embd.weight, 1 position_embd.weight, then NK per layer in the
 * order below, then output_norm.weight, output_norm.bias, output.weight. */

enum { K_ATTN_NORM_W, K_ATTN_NORM_B, K_Q_W, K_K_W, K_V_W, K_Q_B, K_K_B, K_V_B, K_O_W, K_O_B,
       K_FFN_NORM_W, K_FFN_NORM_B, K_UP_W, K_GATE_W, K_UP_B, K_DOWN_W, K_DOWN_B, NK };

static const char *const kind_names[NK] = {
    "attn_norm.weight", "attn_norm.bias", "attn_q.weight", "attn_k.weight", "attn_v.weight",
    "attn_q.bias", "attn_k.bias", "attn_v.bias", "attn_output.weight", "attn_output.bias",
    "ffn_norm.weight", "ffn_norm.bias", "ffn_up.weight", "ffn_gate.weight", "ffn_up.bias",
    "ffn_down.weight", "ffn_down.bias",
};

static const char *const global_names[5] = {
    "token_embd.weight", "position_embd.weight", "output_norm.weight", "output_norm.bias", "output.weight",
};

static int n_slots_for(int n_layer) { return 5 + n_layer * NK; }

/* Slot of a canonical name, or -1. */
static int slot_of(const gr_ckpt *ck, const char *nm)
{
    int L = ck->n_layer, tail = 2 + L * NK;
    if (!strcmp(nm, global_names[0])) return 0;
    if (!strcmp(nm, global_names[1])) return 1;
    for (int g = 2; g < 5; g++)
        if (!strcmp(nm, global_names[g])) return tail + g - 2;
    if (strncmp(nm, "blk.", 4)) return -1;
    const char *p = nm + 4;
    if (*p < '0' || *p > '9' || (p[0] == '0' && p[1] >= '0' && p[1] <= '9')) return -1;
    long l = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        l = l * 10 + (*p - '0');
        if (l >= L) return -1;
    }
    if (*p != '.') return -1;
    for (int k = 0; k < NK; k++)
        if (!strcmp(p + 1, kind_names[k])) return 2 + (int)l * NK + k;
    return -1;
}

static void slot_name(const gr_ckpt *ck, int s, char *buf, size_t n)
{
    int tail = 2 + ck->n_layer * NK;
    if (s < 2) snprintf(buf, n, "%s", global_names[s]);
    else if (s >= tail) snprintf(buf, n, "%s", global_names[2 + s - tail]);
    else snprintf(buf, n, "blk.%d.%s", (s - 2) / NK, kind_names[(s - 2) % NK]);
}

/* ndim and shape of slot s for ck's architecture; 0 when it has none. */
static int slot_shape(const gr_ckpt *ck, int s, int64_t shape[2])
{
    int64_t C = ck->d_model, F = ck->d_ff, V = ck->vocab, T = ck->max_T;
    int64_t KV = (int64_t)ck->n_kv_head * (C / ck->n_head);
    int gpt2 = ck->arch == GR_ARCH_GPT2, tail = 2 + ck->n_layer * NK;
    shape[0] = shape[1] = 1;
    if (s == 0) { shape[0] = V; shape[1] = C; return 2; }
    if (s == 1) { if (!gpt2) return 0; shape[0] = T; shape[1] = C; return 2; }
    if (s == tail) { shape[0] = C; return 1; }
    if (s == tail + 1) { if (!gpt2) return 0; shape[0] = C; return 1; }
    if (s == tail + 2) { shape[0] = V; shape[1] = C; return 2; }
    if (s < 0 || s > tail + 2) return 0;
    int k = (s - 2) % NK;
    static const unsigned char in_gpt2[NK] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1};
    static const unsigned char in_llama[NK] = {1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1, 0, 1, 1, 0, 1, 0};
    if (!(gpt2 ? in_gpt2 : in_llama)[k]) return 0;
    switch (k) {
    case K_ATTN_NORM_W: case K_ATTN_NORM_B: case K_Q_B: case K_O_B:
    case K_FFN_NORM_W: case K_FFN_NORM_B: case K_DOWN_B: shape[0] = C; return 1;
    case K_K_B: case K_V_B: shape[0] = KV; return 1;
    case K_UP_B: shape[0] = F; return 1;
    case K_Q_W: case K_O_W: shape[0] = C; shape[1] = C; return 2;
    case K_K_W: case K_V_W: shape[0] = KV; shape[1] = C; return 2;
    case K_UP_W: case K_GATE_W: shape[0] = F; shape[1] = C; return 2;
    case K_DOWN_W: shape[0] = C; shape[1] = F; return 2;
    default: return 0;
    }
}

/* ---- builder ------------------------------------------------------------------------------ */

static int bad_hp(const char *name, const char *field, int64_t v, const char *why)
{
    return gr_errorf("%s: field '%s' = %" PRId64 ": %s", name, field, v, why);
}

int ckb_init(ckpt_builder *b, const gr_ckpt *hp, const char *format, const char *name)
{
    memset(b, 0, sizeof *b);
    b->name = name ? name : "<checkpoint>";
    const char *nm = b->name;
    if (hp->arch != GR_ARCH_GPT2 && hp->arch != GR_ARCH_LLAMA) return bad_hp(nm, "arch", hp->arch, "unknown architecture");
    if (hp->n_layer < 1 || hp->n_layer > GR_CKPT_MAX_LAYERS) return bad_hp(nm, "n_layer", hp->n_layer, "must be in [1, 4096]");
    struct { const char *f; int v; } dims[] = {{"d_model", hp->d_model}, {"n_head", hp->n_head},
        {"n_kv_head", hp->n_kv_head}, {"d_ff", hp->d_ff}, {"vocab", hp->vocab}, {"max_T", hp->max_T}};
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
        if (dims[i].v < 1 || dims[i].v > GR_CKPT_MAX_DIM) return bad_hp(nm, dims[i].f, dims[i].v, "must be in [1, 2^24]");
    if (hp->d_model % hp->n_head) return bad_hp(nm, "n_head", hp->n_head, "does not divide d_model");
    if (hp->n_head % hp->n_kv_head) return bad_hp(nm, "n_kv_head", hp->n_kv_head, "does not divide n_head");
    if (hp->arch == GR_ARCH_GPT2 && hp->n_kv_head != hp->n_head) return bad_hp(nm, "n_kv_head", hp->n_kv_head, "must equal n_head for GPT-2");
    if (hp->arch == GR_ARCH_LLAMA && (hp->d_model / hp->n_head) % 2)
        return bad_hp(nm, "n_head", hp->n_head, "gives an odd head size (RoPE needs pairs)");
    if (!(hp->norm_eps > 0.0f && hp->norm_eps < 1.0f))
        return gr_errorf("%s: field 'norm_eps' = %g: must be in (0, 1)", nm, (double)hp->norm_eps);
    if (hp->arch == GR_ARCH_LLAMA && !(hp->rope_theta > 0.0f && isfinite(hp->rope_theta)))
        return gr_errorf("%s: field 'rope_theta' = %g: must be finite and > 0", nm, (double)hp->rope_theta);
    b->ck = calloc(1, sizeof *b->ck);
    if (!b->ck) return gr_errorf("%s: out of memory", nm);
    *b->ck = *hp;
    b->ck->format = format;
    b->ck->n_tensors = 0;
    b->ck->tensors = NULL;
    if (b->ck->arch == GR_ARCH_GPT2) b->ck->rope_theta = 0.0f;
    b->n_slots = n_slots_for(hp->n_layer);
    b->slots = calloc((size_t)b->n_slots, sizeof *b->slots);
    if (!b->slots) { free(b->ck); b->ck = NULL; return gr_errorf("%s: out of memory", nm); }
    return GR_OK;
}

int ckb_expected(const ckpt_builder *b, const char *gg_name, int64_t shape[2])
{
    int s = slot_of(b->ck, gg_name);
    shape[0] = shape[1] = 0;
    return s < 0 ? 0 : slot_shape(b->ck, s, shape);
}

int ckb_has(const ckpt_builder *b, const char *gg_name)
{
    int s = slot_of(b->ck, gg_name);
    return s >= 0 && b->slots[s].data != NULL;
}

static void shape_str(char *buf, size_t n, int ndim, const int64_t *shape)
{
    size_t o = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && o < n; i++)
        o += (size_t)snprintf(buf + o, n - o, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (o < n) snprintf(buf + o, n - o, "]");
}

float *ckb_add(ckpt_builder *b, const char *gg_name, int ndim, const int64_t *shape, const char *src)
{
    int s = slot_of(b->ck, gg_name);
    int64_t want[2];
    int wnd = s < 0 ? 0 : slot_shape(b->ck, s, want);
    if (!src) src = gg_name;
    if (!wnd) {
        gr_errorf("%s: tensor '%s' (%s): a %s model with %d layers has no such tensor", b->name, src, gg_name,
                  gr_arch_name(b->ck->arch), b->ck->n_layer);
        return NULL;
    }
    if (b->ck->tied && s == b->n_slots - 1) {
        gr_errorf("%s: tensor '%s': an output head is present but the checkpoint says the head is tied", b->name, src);
        return NULL;
    }
    if (b->slots[s].data) {
        gr_errorf("%s: tensor '%s': duplicate (%s was already loaded)", b->name, src, gg_name);
        return NULL;
    }
    int same = ndim == wnd;
    for (int i = 0; same && i < ndim; i++) same = shape[i] == want[i];
    if (!same) {
        char got_s[128], want_s[64];
        if (ndim < 0 || ndim > 8) snprintf(got_s, sizeof got_s, "%d dims", ndim);
        else shape_str(got_s, sizeof got_s, ndim, shape);
        shape_str(want_s, sizeof want_s, wnd, want);
        gr_errorf("%s: tensor '%s' (%s): shape %s, expected %s", b->name, src, gg_name, got_s, want_s);
        return NULL;
    }
    gr_ckpt_tensor *t = &b->slots[s];
    int64_t n = want[0] * (wnd == 2 ? want[1] : 1);
    t->data = gr_alloc((size_t)n, sizeof(float));
    if (!t->data) {
        gr_error_prefix("%s: tensor '%s': ", b->name, src);
        return NULL;
    }
    slot_name(b->ck, s, t->name, sizeof t->name);
    t->ndim = wnd;
    t->shape[0] = want[0];
    t->shape[1] = wnd == 2 ? want[1] : 1;
    t->shape[2] = t->shape[3] = 1;
    t->n = n;
    return t->data;
}

void ckb_abort(ckpt_builder *b)
{
    if (b->slots)
        for (int s = 0; s < b->n_slots; s++) gr_free(b->slots[s].data);
    free(b->slots);
    free(b->ck);
    b->slots = NULL;
    b->ck = NULL;
}

gr_ckpt *ckb_finish(ckpt_builder *b)
{
    gr_ckpt *ck = b->ck;
    int out = b->n_slots - 1;
    gr_ckpt_tensor *emb = &b->slots[0], *head = &b->slots[out];
    if (head->data && emb->data && !memcmp(head->data, emb->data, (size_t)emb->n * sizeof(float))) {
        gr_free(head->data);
        head->data = NULL;
        ck->tied = 1;
    }
    int n = 0;
    for (int s = 0; s < b->n_slots; s++) {
        int64_t shape[2];
        int expected = slot_shape(ck, s, shape) && !(s == out && ck->tied);
        if (expected && !b->slots[s].data) {
            char nm[GR_CKPT_MAX_NAME], src[160] = "";
            slot_name(ck, s, nm, sizeof nm);
            if (b->hint) b->hint(ck, nm, src, sizeof src);
            gr_errorf("%s: missing tensor '%s'%s%s%s%s", b->name, nm, src[0] ? " ('" : "", src, src[0] ? "')" : "",
                      s == out ? " (the head is not tied to token_embd)" : "");
            ckb_abort(b);
            return NULL;
        }
        n += b->slots[s].data != NULL;
    }
    ck->tensors = gr_alloc((size_t)n, sizeof *ck->tensors);
    if (!ck->tensors) { ckb_abort(b); return NULL; }
    n = 0;
    for (int s = 0; s < b->n_slots; s++)
        if (b->slots[s].data) ck->tensors[n++] = b->slots[s];
    ck->n_tensors = n;
    free(b->slots);
    b->slots = NULL;
    b->ck = NULL;
    return ck;
}

void ckpt_unpermute_rows(float *dst, const float *src, int n_heads, int HS, int64_t cols)
{
    int half = HS / 2;
    for (int h = 0; h < n_heads; h++)
        for (int i = 0; i < half; i++)
            for (int j = 0; j < 2; j++)
                memcpy(dst + ((int64_t)h * HS + 2 * i + j) * cols, src + ((int64_t)h * HS + j * half + i) * cols,
                       (size_t)cols * sizeof(float));
}

/* ---- queries -------------------------------------------------------------------------------- */

const char *gr_arch_name(gr_arch a)
{
    return a == GR_ARCH_GPT2 ? "gpt2" : a == GR_ARCH_LLAMA ? "llama" : "?";
}

void gr_ckpt_free(gr_ckpt *ck)
{
    if (!ck) return;
    for (int i = 0; i < ck->n_tensors; i++) gr_free(ck->tensors[i].data);
    gr_free(ck->tensors);
    free(ck);
}

const gr_ckpt_tensor *gr_ckpt_find(const gr_ckpt *ck, const char *name)
{
    if (!ck || !name) return NULL;
    for (int i = 0; i < ck->n_tensors; i++)
        if (!strcmp(ck->tensors[i].name, name)) return &ck->tensors[i];
    return NULL;
}

void gr_ckpt_tfm_config(const gr_ckpt *ck, gr_tfm_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    int gpt2 = ck->arch == GR_ARCH_GPT2;
    cfg->n_layer = ck->n_layer;
    cfg->d_model = ck->d_model;
    cfg->n_head = ck->n_head;
    cfg->n_kv_head = ck->n_kv_head;
    cfg->d_ff = ck->d_ff;
    cfg->max_T = ck->max_T;
    cfg->norm = gpt2 ? GR_NORM_LAYER : GR_NORM_RMS;
    cfg->act = gpt2 ? GR_ACT_GELU_TANH : GR_ACT_SWIGLU;
    cfg->pos = gpt2 ? GR_POS_LEARNED : GR_POS_ROPE;
    cfg->bias = gpt2;
    cfg->final_norm = 1;
    cfg->norm_eps = ck->norm_eps;
    cfg->rope_theta = gpt2 ? 10000.0f : ck->rope_theta;
    cfg->dropout = 0.0f;
}

/* ---- format detection ------------------------------------------------------------------------ */

gr_ckpt *gr_ckpt_load(const char *path)
{
    struct stat st;
    if (!path || stat(path, &st)) {
        gr_errorf("%s: cannot open: %s", path ? path : "(null)", path ? strerror(errno) : "no path");
        return NULL;
    }
    if (S_ISDIR(st.st_mode)) {
        char *stp = gr_path_join(path, "model.safetensors"), *cfg = gr_path_join(path, "config.json");
        char *idx = gr_path_join(path, "model.safetensors.index.json");
        gr_ckpt *ck = NULL;
        if (stp && cfg && idx) {
            if (gr_path_is_file(stp)) ck = gr_ckpt_load_safetensors(stp, cfg);
            else if (gr_path_is_file(idx)) gr_errorf("%s: sharded safetensors checkpoints are not supported", path);
            else gr_errorf("%s: directory has no model.safetensors", path);
        }
        free(stp);
        free(cfg);
        free(idx);
        return ck;
    }
    unsigned char head[9] = {0};
    size_t got = 0;
    FILE *f = fopen(path, "rb");
    if (!f) { gr_errorf("%s: cannot open: %s", path, strerror(errno)); return NULL; }
    got = fread(head, 1, sizeof head, f);
    fclose(f);
    if (got >= 4 && !memcmp(head, "GGUF", 4)) return gr_ckpt_load_gguf(path);
    if (gr_str_ends(path, ".safetensors")) return gr_ckpt_load_safetensors(path, NULL);
    if (gr_str_ends(path, ".bin")) return gr_ckpt_load_llama2c(path);
    uint64_t hl = 0;
    memcpy(&hl, head, got >= 8 ? 8 : 0);
    if (got == 9 && head[8] == '{' && hl <= GR_ST_MAX_HEADER && hl + 8 <= (uint64_t)st.st_size)
        return gr_ckpt_load_safetensors(path, NULL);
    gr_errorf("%s: unknown checkpoint format (expected a GGUF file, a llama2.c .bin, a .safetensors file "
              "or a directory with model.safetensors and config.json)", path);
    return NULL;
}
