/* genrec generate: sample text from a language model with the KV cache,
 * printing exactly what llama2.c's run prints (its generate() loop). */
#include "cli.h"
#include "commands.h"
#include "genrec/common.h"
#include "genrec/decode.h"
#include "genrec/lm.h"
#include "genrec/tokenizer.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* llama2.c's safe_printf for SentencePiece pieces: skip empty pieces and
 * single bytes that are neither printable nor whitespace. Byte-level BPE
 * pieces (GPT-2) are raw bytes of possibly partial UTF-8 and print as they
 * are. */
static void print_piece(const char *piece, size_t len, int spm)
{
    if (!piece || !len) return;
    if (spm && len == 1 && !(isprint((unsigned char)piece[0]) || isspace((unsigned char)piece[0]))) return;
    fwrite(piece, 1, len, stdout);
    fflush(stdout);
}

int cmd_generate(int argc, char **argv)
{
    const char *model = NULL, *tok_path = NULL, *prompt = NULL;
    double temperature = 1.0, top_p = 0.9;
    int64_t seed = -1, steps = 256, threads = 0;
    int seed_given, bf16 = 0;
    const cli_opt opts[] = {
        {"model", CLI_STR, "FILE", "model: GGUF, llama2.c .bin, or a safetensors file/folder (required)", &model},
        {"tokenizer", CLI_STR, "FILE", "tokenizer (default: the one in or next to the model)", &tok_path},
        {"prompt", CLI_STR, "TEXT", "text to continue (default: empty, start from BOS)", &prompt},
        {"temperature", CLI_FLOAT, "T", "sampling temperature >= 0, 0 = greedy (default 1.0)", &temperature},
        {"top-p", CLI_FLOAT, "P", "nucleus mass in [0, 1]; 0 or 1 = no cut (default 0.9)", &top_p},
        {"seed", CLI_INT, "S", "random seed (default: from the clock)", &seed},
        {"steps", CLI_INT, "N", "positions to run, prompt included; 0 = the model's context (default 256)", &steps},
        {"threads", CLI_INT, "N", "compute threads (default: all cores)", &threads},
        {"bf16", CLI_FLAG, NULL, "decode with a bf16 copy of the weights (half the memory traffic; "
         "default: fp32)", &bf16},
        {NULL, CLI_FLAG, NULL, NULL, NULL},
    };
    /* detect --seed by a sentinel that cannot be typed as a default */
    const int64_t unset = INT64_MIN;
    seed = unset;
    int rc = cli_parse(argc, argv, "generate",
                       "Generate text like llama2.c's run: start from BOS (when the vocabulary wants one) and the\n"
                       "prompt, print the prompt and each sampled piece, stop after --steps positions (prompt\n"
                       "included) or when BOS is produced; the speed (tok/s) goes to stderr.",
                       opts, NULL, NULL);
    if (rc) return rc > 0 ? 0 : 2;
    seed_given = seed != unset;
    if (!model) { fprintf(stderr, "genrec generate: --model FILE is required (see genrec generate --help)\n"); return 2; }
    if (!(temperature >= 0.0)) { fprintf(stderr, "genrec generate: --temperature must be >= 0, got %g\n", temperature); return 2; }
    if (!(top_p >= 0.0 && top_p <= 1.0)) { fprintf(stderr, "genrec generate: --top-p must be in [0, 1], got %g\n", top_p); return 2; }
    if (steps < 0) { fprintf(stderr, "genrec generate: --steps must be >= 0, got %lld\n", (long long)steps); return 2; }
    if (threads < 0) { fprintf(stderr, "genrec generate: --threads must be >= 0, got %lld\n", (long long)threads); return 2; }
    cli_apply_threads(threads);

    gr_lm *lm = gr_lm_load(model, tok_path);
    if (!lm) { fprintf(stderr, "genrec generate: %s\n", gr_error_message()); return 1; }
    const gr_tokenizer *tok = gr_lm_tokenizer(lm);
    if (!tok) {
        fprintf(stderr, "genrec generate: %s: no tokenizer found with the model; pass --tokenizer FILE\n", model);
        gr_lm_free(lm);
        return 1;
    }
    int max_T = gr_lm_config(lm)->max_T, V = gr_lm_vocab(lm);
    if (steps == 0 || steps > max_T) steps = max_T;
    int spm = gr_tokenizer_kind(tok) == GR_TOK_SPM;
    int32_t bos = gr_tokenizer_bos(tok);

    int status = 1;
    int64_t n_prompt = 0;
    const char *text = prompt ? prompt : "";
    int32_t *ptoks = gr_tokenizer_encode(tok, text, strlen(text), gr_tokenizer_wants_bos(tok), &n_prompt);
    gr_kv_cache *cache = NULL;
    float *logits = NULL;
    gr_sampler smp;
    memset(&smp, 0, sizeof smp);
    if (!ptoks) goto fail;
    if (n_prompt == 0) {
        if (bos < 0) {
            fprintf(stderr, "genrec generate: the prompt is empty and the tokenizer has no BOS token to start from\n");
            status = 2;
            goto done;
        }
        ptoks[0] = bos; /* encode's result has room for at least one id */
        n_prompt = 1;
    }
    for (int64_t i = 0; i < n_prompt; i++)
        if (ptoks[i] >= V) {
            fprintf(stderr, "genrec generate: prompt token %d is outside the model's vocabulary (%d)\n", ptoks[i], V);
            goto done;
        }
    cache = gr_lm_kv_cache_init(lm, 1, (int)steps);
    logits = gr_alloc((size_t)V, sizeof(float));
    uint64_t s = seed_given ? (uint64_t)seed : (uint64_t)time(NULL);
    if (cache && bf16 && gr_kv_cache_set_bf16_weights(cache, gr_lm_tfm(lm)) != GR_OK) goto fail;
    if (!cache || !logits ||
        gr_sampler_init(&smp, V, (float)temperature, top_p > 0.0 && top_p < 1.0 ? (float)top_p : 1.0f, s) != GR_OK)
        goto fail;

    /* llama2.c's loop: at position pos, feed token; the next token is the
     * next prompt token while there is one, else a sample. The prompt tokens
     * before the last one are fed in one chunk (no logits needed). */
    const int32_t slot = 0;
    int pos = 0;
    int32_t token = ptoks[0];
    double start = 0.0;
    int n_pre = (int)(n_prompt - 1 < steps ? n_prompt - 1 : steps);
    if (n_pre > 0) {
        int32_t off[2] = {0, n_pre};
        if (gr_lm_decode_step(lm, cache, ptoks, &slot, off, 1, n_pre, NULL) != GR_OK) goto fail;
        start = gr_time_now();
    }
    /* llama2.c never prints the first token (its BOS); a prompt that does not
     * start with BOS (GPT-2 vocabularies) prints its first token too */
    if (ptoks[0] != bos) {
        size_t len;
        const char *piece = gr_tokenizer_piece(tok, ptoks[0], &len);
        print_piece(piece, len, spm);
    }
    int stopped = 0;
    for (; pos < n_pre; pos++) {
        int32_t next = ptoks[pos + 1];
        if (next == bos) { stopped = 1; pos++; break; }
        size_t len;
        const char *piece = gr_tokenizer_piece(tok, next, &len);
        if (spm && token == bos && piece && len && piece[0] == ' ') { piece++; len--; }
        print_piece(piece, len, spm);
        token = next;
    }
    while (!stopped && pos < steps) {
        int32_t off[2] = {0, 1};
        if (gr_lm_decode_step(lm, cache, &token, &slot, off, 1, 1, logits) != GR_OK) goto fail;
        int32_t next = gr_sampler_sample(&smp, logits);
        pos++;
        if (next == bos) break;
        size_t len;
        const char *piece = gr_tokenizer_piece(tok, next, &len);
        if (spm && token == bos && piece && len && piece[0] == ' ') { piece++; len--; }
        print_piece(piece, len, spm);
        token = next;
        if (start == 0.0) start = gr_time_now();
    }
    printf("\n");
    if (fflush(stdout) != 0) { fprintf(stderr, "genrec generate: write error on stdout\n"); goto done; }
    if (pos > 1 && start > 0.0) {
        double el = gr_time_now() - start;
        fprintf(stderr, "achieved tok/s: %f\n", el > 0.0 ? (pos - 1) / el : 0.0);
    }
    status = 0;
    goto done;
fail:
    fprintf(stderr, "genrec generate: %s\n", gr_error_message());
    status = 1;
done:
    gr_sampler_free(&smp);
    gr_free(logits);
    gr_kv_cache_free(cache);
    gr_free(ptoks);
    gr_lm_free(lm);
    return status;
}
