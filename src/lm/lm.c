/* The language model (lm.h): construction, loading, and the full-sequence
 * passes (training step, evaluation loss, sequence log-probabilities,
 * logits). Incremental decoding with a KV cache lives in lm_decode.c. */
#include "lm_internal.h"
#include "genrec/lora.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void gr_lm_config_preset(gr_tfm_config *cfg, gr_arch arch, int n_layer, int d_model,
                         int n_head, int n_kv_head, int d_ff, int max_T, int vocab)
{
    memset(cfg, 0, sizeof *cfg);
    int gpt2 = arch == GR_ARCH_GPT2;
    cfg->n_layer = n_layer;
    cfg->d_model = d_model;
    cfg->n_head = n_head;
    cfg->n_kv_head = n_kv_head;
    cfg->d_ff = d_ff;
    cfg->max_T = max_T;
    cfg->norm = gpt2 ? GR_NORM_LAYER : GR_NORM_RMS;
    cfg->act = gpt2 ? GR_ACT_GELU_TANH : GR_ACT_SWIGLU;
    cfg->pos = gpt2 ? GR_POS_LEARNED : GR_POS_ROPE;
    cfg->bias = gpt2;
    cfg->final_norm = 1;
    cfg->norm_eps = 1e-5f;
    cfg->rope_theta = 10000.0f;
    cfg->vocab = vocab;
    cfg->tied = gpt2;
}

gr_lm *gr_lm_init(gr_arch arch, const gr_tfm_config *cfg, uint64_t seed)
{
    if (!cfg || cfg->vocab <= 0) {
        gr_errorf("language model config: field 'vocab' (%d) must be > 0", cfg ? cfg->vocab : 0);
        return NULL;
    }
    if (arch != GR_ARCH_GPT2 && arch != GR_ARCH_LLAMA) {
        gr_errorf("language model config: unknown architecture %d", (int)arch);
        return NULL;
    }
    gr_lm *lm = gr_calloc(1, sizeof *lm);
    if (!lm) return NULL;
    lm->arch = arch;
    lm->tfm = gr_tfm_init(cfg, seed);
    if (!lm->tfm) { gr_free(lm); return NULL; }
    lm->V = cfg->vocab;
    lm->C = cfg->d_model;
    return lm;
}

gr_lm *gr_lm_from_ckpt(const gr_ckpt *ck)
{
    gr_tfm_config cfg;
    gr_ckpt_tfm_config(ck, &cfg);
    cfg.vocab = ck->vocab;
    cfg.tied = ck->tied;
    gr_lm *lm = gr_lm_init(ck->arch, &cfg, 0);
    if (!lm) return NULL;
    const gr_tfm_param_view *views;
    int nv = gr_tfm_param_views(lm->tfm, &views);
    float *params = gr_tfm_params(lm->tfm);
    int64_t covered = 0;
    for (int i = 0; i < ck->n_tensors; i++) {
        const gr_ckpt_tensor *t = &ck->tensors[i];
        const char *nm = strcmp(t->name, "position_embd.weight") ? t->name : "pos_embd";
        const gr_tfm_param_view *v = NULL;
        for (int j = 0; j < nv && !v; j++)
            if (!strcmp(views[j].name, nm)) v = &views[j];
        int64_t n = v ? (v->ndim == 1 ? v->shape[0] : v->shape[0] * v->shape[1]) : -1;
        if (!v || n != t->n) {
            gr_errorf("%s checkpoint: tensor '%s' (%lld values) does not fit the model (%s)",
                      ck->format, t->name, (long long)t->n, v ? "wrong size" : "no such parameter");
            gr_lm_free(lm);
            return NULL;
        }
        memcpy(params + v->offset, t->data, sizeof(float) * (size_t)n);
        covered += n;
    }
    if (covered != gr_tfm_n_params(lm->tfm)) {
        gr_errorf("%s checkpoint: its tensors cover %lld of the model's %lld parameters", ck->format,
                  (long long)covered, (long long)gr_tfm_n_params(lm->tfm));
        gr_lm_free(lm);
        return NULL;
    }
    return lm;
}

static int has_gguf_magic(const char *p)
{
    char magic[4] = {0};
    FILE *f = fopen(p, "rb");
    if (!f) return 0;
    size_t got = fread(magic, 1, 4, f);
    fclose(f);
    return got == 4 && !memcmp(magic, "GGUF", 4);
}

/* The tokenizer that comes with a model path, or NULL (no error) if none. */
static gr_tokenizer *implied_tokenizer(const char *model_path)
{
    char *cand = NULL;
    if (gr_path_is_dir(model_path)) {
        cand = gr_strdup(model_path);
    } else if (has_gguf_magic(model_path)) {
        cand = gr_strdup(model_path);
    } else {
        /* a tokenizer.bin (llama2.c) or tokenizer.json next to the file */
        const char *slash = strrchr(model_path, '/');
        size_t dl = slash ? (size_t)(slash - model_path) : 1;
        char *dir = gr_alloc(dl + 1, 1);
        if (!dir) return NULL;
        memcpy(dir, slash ? model_path : ".", dl);
        dir[dl] = 0;
        const char *names[2] = {"tokenizer.bin", "tokenizer.json"};
        for (int i = 0; i < 2 && !cand; i++) {
            char *p = gr_path_join(dir, names[i]);
            if (p && gr_path_is_file(p)) cand = p;
            else free(p);
        }
        gr_free(dir);
    }
    if (!cand) return NULL;
    gr_tokenizer *t = gr_tokenizer_load(cand);
    free(cand);
    return t; /* a GGUF without tokenizer keys gives NULL: fine */
}

gr_lm *gr_lm_load(const char *model_path, const char *tokenizer_path)
{
    if (!model_path) { gr_errorf("language model: no model path"); return NULL; }
    gr_ckpt *ck = gr_ckpt_load(model_path);
    if (!ck) return NULL;
    gr_lm *lm = gr_lm_from_ckpt(ck);
    gr_ckpt_free(ck);
    if (!lm) { gr_error_prefix("%s: ", model_path); return NULL; }
    gr_tokenizer *tok = NULL;
    if (tokenizer_path) {
        tok = gr_tokenizer_load(tokenizer_path);
        if (!tok) { gr_lm_free(lm); return NULL; }
    } else {
        tok = implied_tokenizer(model_path);
    }
    if (tok && gr_lm_set_tokenizer(lm, tok) != GR_OK) {
        gr_tokenizer_free(tok);
        gr_error_prefix("%s: ", tokenizer_path ? tokenizer_path : model_path);
        gr_lm_free(lm);
        return NULL;
    }
    return lm;
}

void gr_lm_free(gr_lm *lm)
{
    if (!lm) return;
    gr_tfm_free(lm->tfm);
    gr_tokenizer_free(lm->tok);
    gr_free(lm->x); gr_free(lm->h); gr_free(lm->dh); gr_free(lm->pos); gr_free(lm->logit_buf);
    gr_xent_ws_free(&lm->xent);
    gr_free(lm);
}

gr_tfm *gr_lm_tfm(gr_lm *lm) { return lm->tfm; }
const gr_tfm_config *gr_lm_config(const gr_lm *lm) { return gr_tfm_get_config(lm->tfm); }
gr_arch gr_lm_arch(const gr_lm *lm) { return lm->arch; }
int gr_lm_vocab(const gr_lm *lm) { return lm->V; }
const gr_tokenizer *gr_lm_tokenizer(const gr_lm *lm) { return lm->tok; }

int gr_lm_set_tokenizer(gr_lm *lm, gr_tokenizer *tok)
{
    if (tok && gr_tokenizer_n_vocab(tok) > lm->V)
        return gr_errorf("tokenizer has %d tokens but the model's vocabulary is %d",
                         (int)gr_tokenizer_n_vocab(tok), lm->V);
    gr_tokenizer_free(lm->tok);
    lm->tok = tok;
    return GR_OK;
}

/* ---- scratch and embedding ----------------------------------------------------- */

int gr_lm_reserve(gr_lm *lm, int64_t N)
{
    if (N <= lm->cap) return GR_OK;
    gr_free(lm->x); gr_free(lm->h); gr_free(lm->dh); gr_free(lm->pos);
    size_t nc = (size_t)N * (size_t)lm->C;
    lm->x = gr_alloc(nc, sizeof(float));
    lm->h = gr_alloc(nc, sizeof(float));
    lm->dh = gr_alloc(nc, sizeof(float));
    lm->pos = gr_alloc((size_t)N, sizeof(int32_t));
    if (!lm->x || !lm->h || !lm->dh || !lm->pos) {
        lm->cap = 0;
        return gr_error_prefix("language model scratch for %lld tokens: ", (long long)N);
    }
    lm->cap = N;
    return GR_OK;
}

int gr_lm_embed(gr_lm *lm, const int32_t *tokens, int N, float *x)
{
    const float *E = gr_tfm_embd(lm->tfm, 0);
    const int C = lm->C;
    for (int i = 0; i < N; i++)
        if (tokens[i] < 0 || tokens[i] >= lm->V)
            return gr_errorf("language model: token %d at batch row %d is outside the vocabulary [0, %d)",
                             tokens[i], i, lm->V);
#pragma omp parallel for schedule(static) if (N * C > 65536)
    for (int i = 0; i < N; i++)
        memcpy(x + (int64_t)i * C, E + (int64_t)tokens[i] * C, sizeof(float) * (size_t)C);
    return GR_OK;
}

/* Check the batch, grow scratch, embed, and fill default positions.
 * Returns the positions to use. */
static const int32_t *prepare(gr_lm *lm, const gr_lm_batch *b)
{
    if (!b || !b->tokens || !b->seq_off || b->N < 0 || b->n_seq < 0) {
        gr_errorf("language model: malformed batch (NULL tokens/seq_off or negative sizes)");
        return NULL;
    }
    if (b->seq_off[0] != 0 || b->seq_off[b->n_seq] != b->N) {
        gr_errorf("language model: seq_off must run from 0 to N (%d)", b->N);
        return NULL;
    }
    if (gr_lm_reserve(lm, b->N > 0 ? b->N : 1) != GR_OK) return NULL;
    if (gr_lm_embed(lm, b->tokens, b->N, lm->x) != GR_OK) return NULL;
    if (b->targets)
        for (int i = 0; i < b->N; i++)
            if (b->targets[i] >= lm->V) {
                gr_errorf("language model: target %d at batch row %d is outside the vocabulary [0, %d)",
                          b->targets[i], i, lm->V);
                return NULL;
            }
    if (b->pos) return b->pos;
    for (int s = 0; s < b->n_seq; s++)
        for (int i = b->seq_off[s]; i < b->seq_off[s + 1]; i++) lm->pos[i] = i - b->seq_off[s];
    return lm->pos;
}

int gr_lm_forward_backward(gr_lm *lm, const gr_lm_batch *b, float *loss, gr_rng *rng)
{
    const int32_t *pos = prepare(lm, b);
    if (!pos) return GR_ERR;
    if (loss) *loss = 0.0f;
    if (b->N == 0) return GR_OK;
    const int C = lm->C, N = b->N;
    if (gr_tfm_forward(lm->tfm, lm->x, pos, b->seq_off, b->n_seq, N, lm->h, 1, rng) != GR_OK) return GR_ERR;
    memset(lm->dh, 0, sizeof(float) * (size_t)N * C);
    /* a frozen base (LoRA training): no embedding/head gradients either */
    const int frozen = gr_tfm_frozen(lm->tfm);
    float l = 0.0f;
    if (b->targets &&
        gr_xent_full(&lm->xent, lm->h, gr_tfm_head(lm->tfm, 0), NULL, b->targets, N, lm->V, C, &l,
                     lm->dh, frozen ? NULL : gr_tfm_head(lm->tfm, 1), NULL) != GR_OK)
        return GR_ERR;
    if (loss) *loss = l;
    if (gr_tfm_backward(lm->tfm, lm->dh, frozen ? NULL : lm->x) != GR_OK) return GR_ERR;
    if (frozen) return GR_OK;
    /* token_embd gradient: scatter-add dx rows (serial: repeated tokens) */
    float *gE = gr_tfm_embd(lm->tfm, 1);
    for (int i = 0; i < N; i++) {
        float *g = gE + (int64_t)b->tokens[i] * C;
        const float *d = lm->x + (int64_t)i * C;
        for (int c = 0; c < C; c++) g[c] += d[c];
    }
    return GR_OK;
}

/* Inference forward into lm->h. */
static int forward_infer(gr_lm *lm, const gr_lm_batch *b)
{
    const int32_t *pos = prepare(lm, b);
    if (!pos) return GR_ERR;
    if (b->N == 0) return GR_OK;
    return gr_tfm_forward(lm->tfm, lm->x, pos, b->seq_off, b->n_seq, b->N, lm->h, 0, NULL);
}

#define LOGIT_CHUNK 64

static int reserve_logits(gr_lm *lm, int rows)
{
    if (rows <= lm->logit_rows) return GR_OK;
    gr_free(lm->logit_buf);
    lm->logit_buf = gr_alloc((size_t)rows * (size_t)lm->V, sizeof(float));
    lm->logit_rows = lm->logit_buf ? rows : 0;
    return lm->logit_buf ? GR_OK : gr_error_prefix("language model logits: ");
}

/* log p(target) for the rows with targets >= 0, in chunks of LOGIT_CHUNK:
 * calls back with (row, log-probability). */
static int target_logprobs(gr_lm *lm, const gr_lm_batch *b, double *out_per_row)
{
    if (reserve_logits(lm, LOGIT_CHUNK) != GR_OK) return GR_ERR;
    int32_t rows[LOGIT_CHUNK];
    const int V = lm->V;
    int i = 0;
    while (i < b->N) {
        int n = 0;
        for (; i < b->N && n < LOGIT_CHUNK; i++)
            if (b->targets[i] >= 0) rows[n++] = i;
        if (!n) break;
        if (gr_xent_logits(lm->h, lm->C, rows, n, gr_tfm_head(lm->tfm, 0), NULL, V, lm->C, lm->logit_buf) != GR_OK)
            return GR_ERR;
#pragma omp parallel for schedule(static) if (n * V > 65536)
        for (int r = 0; r < n; r++) {
            const float *z = lm->logit_buf + (int64_t)r * V;
            float mx = z[0];
            for (int v = 1; v < V; v++) mx = z[v] > mx ? z[v] : mx;
            double s = 0.0;
            for (int v = 0; v < V; v++) s += exp((double)z[v] - mx);
            out_per_row[rows[r]] = (double)z[b->targets[rows[r]]] - mx - log(s);
        }
    }
    return GR_OK;
}

static int per_row_logprobs(gr_lm *lm, const gr_lm_batch *b, double **lp_out)
{
    *lp_out = NULL;
    if (!b || !b->targets) return gr_errorf("language model: this call needs targets");
    if (forward_infer(lm, b) != GR_OK) return GR_ERR;
    double *lp = gr_calloc((size_t)(b->N > 0 ? b->N : 1), sizeof(double));
    if (!lp) return GR_ERR;
    if (b->N > 0 && target_logprobs(lm, b, lp) != GR_OK) { gr_free(lp); return GR_ERR; }
    *lp_out = lp;
    return GR_OK;
}

int gr_lm_eval_loss(gr_lm *lm, const gr_lm_batch *b, double *sum_nll, int64_t *n_targets)
{
    double *lp;
    if (per_row_logprobs(lm, b, &lp) != GR_OK) return GR_ERR;
    double s = 0.0;
    int64_t n = 0;
    for (int i = 0; i < b->N; i++)
        if (b->targets[i] >= 0) { s -= lp[i]; n++; }
    gr_free(lp);
    if (sum_nll) *sum_nll = s;
    if (n_targets) *n_targets = n;
    return GR_OK;
}

int gr_lm_seq_logprob(gr_lm *lm, const gr_lm_batch *b, double *out)
{
    double *lp;
    if (per_row_logprobs(lm, b, &lp) != GR_OK) return GR_ERR;
    for (int s = 0; s < b->n_seq; s++) {
        double acc = 0.0;
        for (int i = b->seq_off[s]; i < b->seq_off[s + 1]; i++)
            if (b->targets[i] >= 0) acc += lp[i];
        out[s] = acc;
    }
    gr_free(lp);
    return GR_OK;
}

int gr_lm_logits(gr_lm *lm, const gr_lm_batch *b, const int32_t *rows, int n_rows, float *logits)
{
    if (forward_infer(lm, b) != GR_OK) return GR_ERR;
    int32_t *last = NULL;
    if (!rows) {
        if (n_rows != b->n_seq) return gr_errorf("language model logits: rows NULL needs n_rows == n_seq");
        last = gr_alloc((size_t)(n_rows > 0 ? n_rows : 1), sizeof(int32_t));
        if (!last) return GR_ERR;
        for (int s = 0; s < n_rows; s++) {
            if (b->seq_off[s + 1] == b->seq_off[s]) {
                gr_free(last);
                return gr_errorf("language model logits: sequence %d is empty", s);
            }
            last[s] = b->seq_off[s + 1] - 1;
        }
        rows = last;
    }
    for (int r = 0; r < n_rows; r++)
        if (rows[r] < 0 || rows[r] >= b->N) {
            gr_free(last);
            return gr_errorf("language model logits: row %d outside the batch (N = %d)", rows[r], b->N);
        }
    int rc = n_rows > 0 ? gr_xent_logits(lm->h, lm->C, rows, n_rows, gr_tfm_head(lm->tfm, 0), NULL,
                                         lm->V, lm->C, logits) : GR_OK;
    gr_free(last);
    return rc;
}

int gr_lm_hidden(gr_lm *lm, const gr_lm_batch *b, gr_pool pool, float *out)
{
    if (pool != GR_POOL_LAST && pool != GR_POOL_MEAN)
        return gr_errorf("language model hidden states: unknown pooling %d", (int)pool);
    if (b && b->seq_off && b->n_seq > 0 && b->seq_off[0] == 0 && b->seq_off[b->n_seq] == b->N)
        for (int s = 0; s < b->n_seq; s++)
            if (b->seq_off[s + 1] <= b->seq_off[s])
                return gr_errorf("language model hidden states: sequence %d is empty", s);
    gr_lm_batch nb;
    if (b) { nb = *b; nb.targets = NULL; b = &nb; }
    if (forward_infer(lm, b) != GR_OK) return GR_ERR;
    const int C = lm->C;
#pragma omp parallel for schedule(static) if ((int64_t)b->N * C > 65536)
    for (int s = 0; s < b->n_seq; s++) {
        float *o = out + (int64_t)s * C;
        const int lo = b->seq_off[s], hi = b->seq_off[s + 1];
        if (pool == GR_POOL_LAST) {
            memcpy(o, lm->h + (int64_t)(hi - 1) * C, sizeof(float) * (size_t)C);
            continue;
        }
        for (int c = 0; c < C; c++) {
            double acc = 0.0;
            for (int i = lo; i < hi; i++) acc += lm->h[(int64_t)i * C + c];
            o[c] = (float)(acc / (hi - lo));
        }
    }
    return GR_OK;
}

#define EMBED_TOKENS 4096  /* tokens per forward pass when embedding */

int gr_lm_embed_seqs(gr_lm *lm, const int32_t *const *seqs, const int64_t *len, int64_t n, gr_pool pool,
                     float *out)
{
    const int C = gr_lm_config(lm)->d_model, max_T = gr_lm_config(lm)->max_T;
    for (int64_t s = 0; s < n; s++)
        if (len[s] < 1 || len[s] > max_T)
            return gr_errorf("embedding: sequence %lld has %lld tokens (1 to %d)", (long long)s, (long long)len[s], max_T);
    const int64_t budget = EMBED_TOKENS > max_T ? EMBED_TOKENS : max_T;
    int32_t *tok = gr_alloc((size_t)budget, sizeof(int32_t));
    int32_t *off = gr_alloc((size_t)budget + 1, sizeof(int32_t));
    if (!tok || !off) { gr_free(tok); gr_free(off); return gr_error_prefix("embedding batch: "); }
    int rc = GR_OK;
    for (int64_t s0 = 0; s0 < n && rc == GR_OK;) {
        int64_t s = s0, N = 0;
        off[0] = 0;
        while (s < n && N + len[s] <= budget) {
            memcpy(tok + N, seqs[s], sizeof(int32_t) * (size_t)len[s]);
            N += len[s];
            off[s - s0 + 1] = (int32_t)N;
            s++;
        }
        gr_lm_batch b = {tok, NULL, NULL, off, (int)(s - s0), (int)N};
        rc = gr_lm_hidden(lm, &b, pool, out + s0 * C);
        s0 = s;
    }
    gr_free(tok);
    gr_free(off);
    return rc;
}
