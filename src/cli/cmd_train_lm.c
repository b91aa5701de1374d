/* genrec train-lm: train (or fine-tune) a GPT-2 / Llama language model on a
 * UTF-8 text file and save it as one GGUF file. */
#include "cli.h"
#include "commands.h"
#include "genrec/common.h"
#include "genrec/lm.h"
#include "genrec/lm_io.h"
#include "genrec/lm_train.h"
#include "genrec/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UNSET_I INT64_MIN
#define ISSET_I(x) ((x) != UNSET_I)
#define ISSET_F(x) (!isnan(x))

static const char *CMD = "train-lm";

static int usage_err(const char *msg)
{
    fprintf(stderr, "genrec %s: %s (see genrec %s --help)\n", CMD, msg, CMD);
    return 2;
}

static int runtime_err(const char *what)
{
    fprintf(stderr, "genrec %s: %s%s%s\n", CMD, what ? what : "", what ? ": " : "", gr_error_message());
    return 1;
}

/* An integer flag in [lo, hi]; "" when fine, else the message in buf. */
static int check_range(const char *flag, int64_t v, int64_t lo, int64_t hi)
{
    if (v >= lo && v <= hi) return 0;
    char msg[160];
    snprintf(msg, sizeof msg, "--%s %lld is out of range [%lld, %lld]", flag, (long long)v, (long long)lo, (long long)hi);
    usage_err(msg);
    return 1;
}

int cmd_train_lm(int argc, char **argv)
{
    const char *data = NULL, *arch_s = NULL, *out = NULL, *ckpt = NULL, *resume = NULL, *init = NULL;
    const char *tok_path = NULL, *docs_s = NULL, *dtype_s = NULL;
    int64_t layers = UNSET_I, dim = UNSET_I, heads = UNSET_I, kv_heads = UNSET_I, ff = UNSET_I, ctx = UNSET_I,
            vocab = UNSET_I, steps = UNSET_I, batch = UNSET_I, accum = UNSET_I, warmup = UNSET_I, seed = UNSET_I,
            threads = 0, stop_after = 0, valid_every = UNSET_I, ckpt_every = UNSET_I, log_every = 10, valid_windows = 256;
    double lr = NAN, min_lr = NAN, wd = NAN, clip = NAN, valid_frac = 0.1, dropout = 0.0;
    int quiet = 0;
    const cli_opt opts[] = {
        {"data", CLI_STR, "FILE.txt", "UTF-8 training text (required)", &data},
        {"out", CLI_STR, "FILE.gguf", "where to save the trained model: one GGUF with the tokenizer (required)", &out},
        {"arch", CLI_STR, "gpt2|llama", "architecture of a new model (default gpt2)", &arch_s},
        {"layers", CLI_INT, "L", "transformer blocks (default 2)", &layers},
        {"dim", CLI_INT, "C", "model width d_model (default 128)", &dim},
        {"heads", CLI_INT, "H", "attention heads; must divide --dim (default 4)", &heads},
        {"kv-heads", CLI_INT, "K", "key/value heads (Llama grouped-query attention); must divide --heads (default = heads)", &kv_heads},
        {"ff", CLI_INT, "F", "feed-forward width (default 4*dim for gpt2, 8/3*dim rounded up to 32 for llama)", &ff},
        {"ctx", CLI_INT, "T", "context length = training sequence length (default 128; with --init the model's, at most 128)", &ctx},
        {"vocab", CLI_INT, "V", "BPE vocabulary size to train on the text (default 512; with --tokenizer: the tokenizer's)", &vocab},
        {"tokenizer", CLI_STR, "FILE", "use this tokenizer (GGUF, tokenizer.json, .bin) instead of training a BPE", &tok_path},
        {"docs", CLI_STR, "paragraph|line|none", "what a document is: blank-line separated paragraphs (default), lines, the whole file", &docs_s},
        {"valid-frac", CLI_FLOAT, "X", "fraction of the tokens held out for validation, in [0, 0.5] (default 0.1)", &valid_frac},
        {"steps", CLI_INT, "N", "optimizer steps (default 200)", &steps},
        {"batch", CLI_INT, "B", "sequences per micro-batch (default 8)", &batch},
        {"accum", CLI_INT, "K", "micro-batches per step (gradient accumulation; default 1)", &accum},
        {"lr", CLI_FLOAT, "LR", "peak learning rate (default 2e-3; 1e-4 with --init)", &lr},
        {"min-lr", CLI_FLOAT, "LR", "final learning rate of the cosine decay (default lr/10)", &min_lr},
        {"warmup", CLI_INT, "W", "linear warmup steps (default steps/20)", &warmup},
        {"wd", CLI_FLOAT, "X", "AdamW weight decay on matrices (default 0.1)", &wd},
        {"clip", CLI_FLOAT, "X", "clip the global gradient norm to X; 0 = off (default 1.0)", &clip},
        {"dropout", CLI_FLOAT, "P", "dropout on the residual branches, in [0, 1) (default 0)", &dropout},
        {"seed", CLI_INT, "S", "seed for the initial weights, the batch order and dropout (default 1337)", &seed},
        {"threads", CLI_INT, "N", "compute threads (default: all cores)", &threads},
        {"valid-every", CLI_INT, "N", "validation loss every N steps and at the end; 0 = only at the end (default 50)", &valid_every},
        {"valid-windows", CLI_INT, "N", "at most N windows of --ctx tokens per validation; 0 = all (default 256)", &valid_windows},
        {"log-every", CLI_INT, "N", "progress line every N steps when stderr is not a terminal (default 10)", &log_every},
        {"checkpoint", CLI_STR, "FILE", "write a training checkpoint (weights, AdamW state, step, RNG, data cursor) here", &ckpt},
        {"checkpoint-every", CLI_INT, "N", "checkpoint every N steps and at the end (default 100; needs --checkpoint)", &ckpt_every},
        {"stop-after", CLI_INT, "N", "stop after step N of --steps (checkpoint and save there; resume later); 0 = run to the end", &stop_after},
        {"resume", CLI_STR, "FILE", "continue from a training checkpoint (model, tokenizer, schedule and batch shape come from it)", &resume},
        {"init", CLI_STR, "FILE.gguf", "fine-tune this pretrained model (any gr_lm_load format) instead of a new one", &init},
        {"dtype", CLI_STR, "f32|f16|bf16", "tensor type of the saved matrices (default f32)", &dtype_s},
        {"quiet", CLI_FLAG, NULL, "no progress output", &quiet},
        {NULL, CLI_FLAG, NULL, NULL, NULL},
    };
    int rc = cli_parse(argc, argv, CMD,
                       "Train a GPT-2 or Llama language model on a UTF-8 text file (or fine-tune one with --init,\n"
                       "or continue a run with --resume) and save it as one GGUF file that `genrec generate` and\n"
                       "llama.cpp-style loaders read. Without --tokenizer a byte-level BPE of --vocab tokens is\n"
                       "trained on the text first and saved in the GGUF. Documents are packed into --batch x --ctx\n"
                       "token batches without padding. Training is deterministic for a given --seed and --threads,\n"
                       "and resuming a checkpoint continues the exact same run.",
                       opts, NULL, NULL);
    if (rc) return rc > 0 ? 0 : 2;
    if (quiet) gr_verbosity = 0;

    /* ---- validate flags ---- */
    if (!data) return usage_err("--data FILE.txt is required");
    if (!out) return usage_err("--out FILE.gguf is required");
    if (resume && init) return usage_err("--resume and --init cannot be combined");
    int model_flags = arch_s || ISSET_I(layers) || ISSET_I(dim) || ISSET_I(heads) || ISSET_I(kv_heads) || ISSET_I(ff) ||
                      (ISSET_I(vocab) && !tok_path);
    if ((resume || init) && model_flags)
        return usage_err(resume ? "--resume takes the model from the checkpoint: drop --arch/--layers/--dim/--heads/--kv-heads/--ff/--vocab"
                                : "--init takes the model from the file: drop --arch/--layers/--dim/--heads/--kv-heads/--ff/--vocab");
    if ((resume || init) && tok_path) return usage_err("--tokenizer cannot be combined with --resume or --init (the model brings its own)");
    gr_arch arch = GR_ARCH_GPT2;
    if (arch_s) {
        if (!strcmp(arch_s, "gpt2")) arch = GR_ARCH_GPT2;
        else if (!strcmp(arch_s, "llama")) arch = GR_ARCH_LLAMA;
        else return usage_err("--arch must be gpt2 or llama");
    }
    gr_lm_docs docs = GR_LM_DOCS_PARAGRAPH;
    if (docs_s) {
        if (!strcmp(docs_s, "paragraph")) docs = GR_LM_DOCS_PARAGRAPH;
        else if (!strcmp(docs_s, "line")) docs = GR_LM_DOCS_LINE;
        else if (!strcmp(docs_s, "none")) docs = GR_LM_DOCS_NONE;
        else return usage_err("--docs must be paragraph, line or none");
    }
    gr_ggml_type dtype = GR_GGML_F32;
    if (dtype_s) {
        if (!strcmp(dtype_s, "f32")) dtype = GR_GGML_F32;
        else if (!strcmp(dtype_s, "f16")) dtype = GR_GGML_F16;
        else if (!strcmp(dtype_s, "bf16")) dtype = GR_GGML_BF16;
        else return usage_err("--dtype must be f32, f16 or bf16");
    }
    if (!(valid_frac >= 0.0 && valid_frac <= 0.5)) return usage_err("--valid-frac must be in [0, 0.5]");
    if (!(dropout >= 0.0 && dropout < 1.0)) return usage_err("--dropout must be in [0, 1)");
    if (ISSET_F(lr) && !(lr >= 0.0)) return usage_err("--lr must be >= 0");
    if (ISSET_F(min_lr) && !(min_lr >= 0.0)) return usage_err("--min-lr must be >= 0");
    if (ISSET_F(wd) && !(wd >= 0.0)) return usage_err("--wd must be >= 0");
    if (ISSET_F(clip) && !(clip >= 0.0)) return usage_err("--clip must be >= 0 (0 = off)");
    if (ISSET_I(layers) && check_range("layers", layers, 1, 1024)) return 2;
    if (ISSET_I(dim) && check_range("dim", dim, 1, 1 << 16)) return 2;
    if (ISSET_I(heads) && check_range("heads", heads, 1, 1024)) return 2;
    if (ISSET_I(kv_heads) && check_range("kv-heads", kv_heads, 1, 1024)) return 2;
    if (ISSET_I(ff) && check_range("ff", ff, 1, 1 << 20)) return 2;
    if (ISSET_I(ctx) && check_range("ctx", ctx, 1, 1 << 16)) return 2;
    if (ISSET_I(vocab) && check_range("vocab", vocab, 257, 1 << 20)) return 2;
    if (ISSET_I(steps) && check_range("steps", steps, 1, INT64_C(1) << 40)) return 2;
    if (ISSET_I(batch) && check_range("batch", batch, 1, 1 << 16)) return 2;
    if (ISSET_I(accum) && check_range("accum", accum, 1, 1 << 16)) return 2;
    if (ISSET_I(warmup) && check_range("warmup", warmup, 0, INT64_C(1) << 40)) return 2;
    if (ISSET_I(seed) && check_range("seed", seed, 0, INT64_MAX)) return 2;
    if (check_range("threads", threads, 0, 4096)) return 2;
    if (check_range("stop-after", stop_after, 0, INT64_C(1) << 40)) return 2;
    if (ISSET_I(valid_every) && check_range("valid-every", valid_every, 0, INT64_C(1) << 40)) return 2;
    if (check_range("valid-windows", valid_windows, 0, INT64_C(1) << 40)) return 2;
    if (check_range("log-every", log_every, 1, INT64_C(1) << 40)) return 2;
    if (ISSET_I(ckpt_every)) {
        if (!ckpt) return usage_err("--checkpoint-every needs --checkpoint FILE");
        if (check_range("checkpoint-every", ckpt_every, 1, INT64_C(1) << 40)) return 2;
    }
    if (!ISSET_I(dim)) dim = 128;
    if (!ISSET_I(heads)) heads = 4;
    if (!ISSET_I(kv_heads)) kv_heads = heads;
    if (!resume && !init) {
        if (dim % heads) return usage_err("--heads must divide --dim");
        if (heads % kv_heads) return usage_err("--kv-heads must divide --heads");
        if (arch == GR_ARCH_GPT2 && kv_heads != heads) return usage_err("--kv-heads is for --arch llama (GPT-2 has as many kv heads as heads)");
        if (arch == GR_ARCH_LLAMA && (dim / heads) % 2) return usage_err("--arch llama needs an even head size (--dim / --heads) for RoPE");
    }
    cli_apply_threads(threads);

    /* ---- text ---- */
    size_t text_len;
    char *text = gr_read_file(data, 0, &text_len);
    if (!text) return runtime_err(NULL);

    gr_lm *lm = NULL;
    gr_gguf *rg = NULL;
    gr_train_config tc;
    gr_train_config_default(&tc);
    int64_t B = 8, T = 128;
    uint64_t sd = 1337;
    int ret = 1;
    gr_lm_data d;
    memset(&d, 0, sizeof d);
    gr_lm_task task;
    memset(&task, 0, sizeof task);
    gr_trainer *tr = NULL;
    double t_start = gr_time_now();

    if (resume) {
        rg = gr_gguf_open(resume);
        if (!rg) { runtime_err("--resume"); goto done; }
        if (gr_train_config_from_gguf(rg, resume, &tc) != GR_OK) { runtime_err("--resume"); goto done; }
        int64_t b, t, s;
        if (gr_gguf_get_int(rg, "genrec.data.batch", &b) || gr_gguf_get_int(rg, "genrec.data.ctx", &t) ||
            gr_gguf_get_int(rg, "genrec.data.seed", &s)) {
            gr_error_prefix("%s: ", resume);
            runtime_err("--resume");
            goto done;
        }
        B = b; T = t; sd = (uint64_t)s;
        lm = gr_lm_from_gguf_meta(rg, resume);
        if (!lm) { runtime_err("--resume"); goto done; }
        if (!gr_lm_tokenizer(lm)) { fprintf(stderr, "genrec %s: %s: the checkpoint holds no tokenizer\n", CMD, resume); goto done; }
    } else if (init) {
        lm = gr_lm_load(init, NULL);
        if (!lm) { runtime_err("--init"); goto done; }
        if (!gr_lm_tokenizer(lm)) {
            fprintf(stderr, "genrec %s: %s: the model comes without a tokenizer (put one in the GGUF)\n", CMD, init);
            goto done;
        }
        T = gr_lm_config(lm)->max_T < 128 ? gr_lm_config(lm)->max_T : 128;
        tc.lr = 1e-4f;
    } else {
        gr_tokenizer *tok;
        if (tok_path) {
            tok = gr_tokenizer_load(tok_path);
            if (!tok) { runtime_err("--tokenizer"); goto done; }
        } else {
            int32_t V = ISSET_I(vocab) ? (int32_t)vocab : 512;
            if (gr_verbosity > 0) fprintf(stderr, "training a byte-level BPE of %d tokens on %s (%zu bytes)\n", (int)V, data, text_len);
            tok = gr_lm_train_tokenizer(text, text_len, V);
            if (!tok) { runtime_err("BPE training"); goto done; }
        }
        int V = gr_tokenizer_n_vocab(tok);
        if (tok_path && ISSET_I(vocab)) {
            if (vocab < V) {
                gr_tokenizer_free(tok);
                fprintf(stderr, "genrec %s: --vocab %lld is smaller than the tokenizer's %d tokens\n", CMD, (long long)vocab, V);
                ret = 2;
                goto done;
            }
            V = (int)vocab;
        }
        int Tm = ISSET_I(ctx) ? (int)ctx : 128;
        int F = ISSET_I(ff) ? (int)ff : arch == GR_ARCH_GPT2 ? 4 * (int)dim : ((8 * (int)dim / 3 + 31) / 32) * 32;
        gr_tfm_config cfg;
        gr_lm_config_preset(&cfg, arch, ISSET_I(layers) ? (int)layers : 2, (int)dim, (int)heads, (int)kv_heads, F, Tm, V);
        cfg.dropout = (float)dropout;
        lm = gr_lm_init(arch, &cfg, ISSET_I(seed) ? (uint64_t)seed : 1337);
        if (!lm) { gr_tokenizer_free(tok); runtime_err("model"); goto done; }
        if (gr_lm_set_tokenizer(lm, tok) != GR_OK) { gr_tokenizer_free(tok); runtime_err("model"); goto done; }
        T = Tm;
    }
    if (dropout > 0.0 && (resume || init))
        fprintf(stderr, "genrec %s: note: --dropout only applies to new models; ignored\n", CMD);

    /* flags override defaults (and, with --resume, the checkpoint's settings) */
    if (ISSET_I(ctx)) T = ctx;
    if (ISSET_I(batch)) B = batch;
    if (ISSET_I(seed)) { sd = (uint64_t)seed; tc.seed = sd; }
    else if (!resume) tc.seed = sd;
    if (ISSET_I(steps)) tc.steps = steps;
    else if (!resume) tc.steps = 200;
    if (ISSET_I(accum)) tc.accum = (int)accum;
    if (ISSET_F(lr)) tc.lr = (float)lr;
    else if (!resume && !init) tc.lr = 2e-3f;
    if (ISSET_F(min_lr)) tc.min_lr = (float)min_lr;
    else if (!resume) tc.min_lr = tc.lr / 10.0f;
    if (ISSET_I(warmup)) tc.warmup = warmup;
    else if (!resume) tc.warmup = tc.steps / 20;
    if (ISSET_F(wd)) tc.weight_decay = (float)wd;
    if (ISSET_F(clip)) tc.clip = (float)clip;
    tc.log_every = quiet ? 0 : log_every;
    tc.valid_every = ISSET_I(valid_every) ? (valid_every > 0 ? valid_every : INT64_MAX) : 50; /* the last step always validates */
    tc.ckpt_path = ckpt;
    tc.ckpt_every = ISSET_I(ckpt_every) ? ckpt_every : 100;
    if (T > gr_lm_config(lm)->max_T) {
        fprintf(stderr, "genrec %s: --ctx %lld exceeds the model's context length %d\n", CMD, (long long)T, gr_lm_config(lm)->max_T);
        ret = 2;
        goto done;
    }
    if (tc.min_lr > tc.lr) {
        fprintf(stderr, "genrec %s: --min-lr %g is larger than --lr %g\n", CMD, (double)tc.min_lr, (double)tc.lr);
        ret = 2;
        goto done;
    }

    /* ---- data ---- */
    if (gr_lm_data_from_text(&d, text, text_len, gr_lm_tokenizer(lm), docs, valid_frac) != GR_OK) {
        gr_error_prefix("%s: ", data);
        runtime_err(NULL);
        goto done;
    }
    free(text);
    text = NULL;
    if (gr_lm_task_init(&task, lm, &d, (int)B, (int)T, sd) != GR_OK) {
        gr_error_prefix("%s: ", data);
        runtime_err(NULL);
        goto done;
    }
    task.max_valid_windows = valid_windows;
    gr_tfm *m = gr_lm_tfm(lm);
    int64_t np = gr_tfm_n_params(m);
    uint8_t *mask = gr_alloc((size_t)np, 1);
    if (!mask) { runtime_err(NULL); goto done; }
    gr_tfm_decay_mask(m, mask);
    gr_train_task cb = gr_lm_task_callbacks(&task);
    tr = gr_trainer_new(&tc, gr_tfm_params(m), gr_tfm_grads(m), np, mask, &cb);
    gr_free(mask);
    if (!tr) { runtime_err(NULL); goto done; }
    if (rg) {
        if (gr_trainer_load_gguf(tr, rg, resume) != GR_OK) { runtime_err("--resume"); goto done; }
        gr_gguf_close(rg);
        rg = NULL;
    }
    if (gr_verbosity > 0) {
        const gr_tfm_config *c = gr_lm_config(lm);
        fprintf(stderr, "%s: %lld documents, %lld tokens (%lld train, %lld valid), vocab %d\n", data, (long long)d.n_docs,
                (long long)d.n_tokens, (long long)d.n_train, (long long)(d.n_tokens - d.n_train), gr_lm_vocab(lm));
        fprintf(stderr, "model: %s, %d layers, dim %d, %d heads (%d kv), ff %d, ctx %d: %.2fM parameters\n",
                gr_arch_name(gr_lm_arch(lm)), c->n_layer, c->d_model, c->n_head, c->n_kv_head, c->d_ff, c->max_T,
                (double)np / 1e6);
        fprintf(stderr, "training: steps %lld (from %lld), batch %lld x %lld x accum %d, lr %g -> %g, warmup %lld, wd %g, "
                        "clip %g, seed %llu, %d threads\n",
                (long long)tc.steps, (long long)gr_trainer_step_count(tr), (long long)B, (long long)T, tc.accum,
                (double)tc.lr, (double)tc.min_lr, (long long)tc.warmup, (double)tc.weight_decay, (double)tc.clip,
                (unsigned long long)tc.seed, gr_threads_get());
    }
    int64_t stop = stop_after > 0 && stop_after < tc.steps ? stop_after : tc.steps;
    if (gr_trainer_step_count(tr) < stop && gr_trainer_run_until(tr, stop) != GR_OK) { runtime_err("training"); goto done; }

    /* ---- save ---- */
    {
        char kv[10][96];
        const char *kvp[10];
        int nkv = 0;
        snprintf(kv[nkv++], sizeof kv[0], "train.steps=%lld", (long long)gr_trainer_step_count(tr));
        snprintf(kv[nkv++], sizeof kv[0], "train.batch=%lld", (long long)B);
        snprintf(kv[nkv++], sizeof kv[0], "train.ctx=%lld", (long long)T);
        snprintf(kv[nkv++], sizeof kv[0], "train.accum=%d", gr_trainer_config(tr)->accum);
        snprintf(kv[nkv++], sizeof kv[0], "train.lr=%g", (double)gr_trainer_config(tr)->lr);
        snprintf(kv[nkv++], sizeof kv[0], "train.min_lr=%g", (double)gr_trainer_config(tr)->min_lr);
        snprintf(kv[nkv++], sizeof kv[0], "train.seed=%llu", (unsigned long long)sd);
        snprintf(kv[nkv++], sizeof kv[0], "train.loss=%.6g", (double)gr_trainer_last_loss(tr));
        snprintf(kv[nkv++], sizeof kv[0], "train.valid_loss=%.6g", gr_trainer_last_valid(tr));
        snprintf(kv[nkv++], sizeof kv[0], "train.tokens=%lld", (long long)d.n_tokens);
        for (int i = 0; i < nkv; i++) kvp[i] = kv[i];
        gr_params meta = {kvp, nkv};
        gr_lm_save_opts so = {dtype, NULL, gr_trainer_step_count(tr), &meta};
        if (gr_lm_save(lm, out, &so) != GR_OK) { runtime_err("--out"); goto done; }
    }
    if (gr_verbosity > 0)
        fprintf(stderr, "saved %s (step %lld, train loss %.4f, valid loss %.4f) in %.1f s\n", out,
                (long long)gr_trainer_step_count(tr), (double)gr_trainer_last_loss(tr), gr_trainer_last_valid(tr),
                gr_time_now() - t_start);
    ret = 0;
done:
    gr_trainer_free(tr);
    gr_lm_task_free(&task);
    gr_lm_data_free(&d);
    gr_lm_free(lm);
    gr_gguf_close(rg);
    free(text);
    return ret;
}
