/* `genrec generate` and greedy decoding on real models: byte-exact llama2.c
 * outputs of stories260K (from the llama2.c .bin + tok512.bin and from the
 * GGUF), tiny-random-gpt2's greedy continuations asserted by onnxruntime's
 * tests (through the library's batched decoding path), the CLI on a GPT-2
 * safetensors folder against the library, seeded sampling, and flag
 * validation. */
#include "gr_test.h"
#include "genrec/decode.h"
#include "genrec/lm.h"

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *bin_path(void)
{
    const char *bin = getenv("GENREC_BIN");
    return bin && access(bin, X_OK) == 0 ? bin : NULL;
}

/* Run `genrec ARGS`, stdout to a file; returns the exit status, *out the
 * stdout (framework ring buffer) and the stderr in errbuf. */
static int run(const char *args, const char **out, const char **err)
{
    char cmd[8192], o[600], e[600];
    snprintf(o, sizeof o, "%s/gen.out", gr_test_tmpdir());
    snprintf(e, sizeof e, "%s/gen.err", gr_test_tmpdir());
    snprintf(cmd, sizeof cmd, "OMP_WAIT_POLICY=passive '%s' %s >'%s' 2>'%s'", bin_path(), args, o, e);
    int st = system(cmd);
    if (out) *out = gr_test_read_text(o);
    if (err) *err = gr_test_read_text(e);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_stories260k_exact(void)
{
    if (!bin_path()) { gr_test_skip("genrec binary not built (GENREC_BIN)"); return; }
    const char *dir = gr_test_shared("models/stories260K");
    if (!dir) { gr_test_skip("../shared/models/stories260K absent"); return; }
    static const struct { const char *file, *flags; } cases[] = {
        {"expected_greedy_n200.txt", "--temperature 0 --steps 200"},
        {"expected_greedy_n256_doc.txt", "--temperature 0 --steps 256"},
        {"expected_t0_n64_prompt_Once_upon_a_time.txt", "--temperature 0 --steps 64 --prompt 'Once upon a time'"},
    };
    char models[2][1400];
    snprintf(models[0], sizeof models[0], "'%s/stories260K.bin' --tokenizer '%s/tok512.bin'", dir, dir);
    snprintf(models[1], sizeof models[1], "'%s/stories260K.gguf'", dir);
    for (int m = 0; m < 2; m++)
        for (int i = 0; i < 3; i++) {
            char path[1200], args[4096];
            snprintf(path, sizeof path, "%s/%s", dir, cases[i].file);
            size_t elen;
            char *expect = gr_test_read_file(path, &elen);
            REQUIRE(expect);
            /* the files hold the text without llama2.c's final newline */
            snprintf(args, sizeof args, "generate --model %s %s --threads 1", models[m], cases[i].flags);
            const char *out, *err;
            int rc = run(args, &out, &err);
            CHECK_EQ_INT(rc, 0);
            REQUIRE(out);
            int same = strlen(out) == elen + 1 && !memcmp(out, expect, elen) && out[elen] == '\n';
            if (!same)
                gr_test_fail(__FILE__, __LINE__, "%s with %s:\n got: [%s]\nwant: [%s]\\n", cases[i].file,
                             m ? "gguf" : "bin", out, expect);
            CHECK_HAS(err, "achieved tok/s: ");
            free(expect);
        }
}

/* tiny-random-gpt2: both expected_greedy.json sequences, decoded together in
 * one cache (batched prefill of the two prompts, then one token each per
 * step), and again with a shared-prefix beam for the first one. */
static void test_tiny_gpt2_greedy(void)
{
    const char *dir = gr_test_shared("models/tiny-random-gpt2");
    if (!dir) { gr_test_skip("../shared/models/tiny-random-gpt2 absent"); return; }
    char path[1200];
    snprintf(path, sizeof path, "%s/expected_greedy.json", dir);
    /* the file's numbers, parsed by hand: two cases of 4 inputs and 10 outputs */
    char *js = gr_test_read_file(path, NULL);
    REQUIRE(js);
    int32_t nums[28];
    int nn = 0;
    const char *p = strstr(js, "\"greedy\"");
    REQUIRE(p);
    for (; *p && nn < 28; p++)
        if (*p >= '0' && *p <= '9') {
            nums[nn++] = (int32_t)strtol(p, (char **)&p, 10);
            p--;
        }
    free(js);
    REQUIRE(nn == 28);
    const int32_t *in[2] = {nums, nums + 14}, *want[2] = {nums + 4, nums + 18};
    gr_lm *lm = gr_lm_load(dir, NULL);
    REQUIRE(lm);
    CHECK_EQ_INT(gr_lm_arch(lm), GR_ARCH_GPT2);
    const int V = gr_lm_vocab(lm);
    gr_kv_cache *c = gr_lm_kv_cache_init(lm, 3, 16);
    REQUIRE(c);
    float *lg = malloc(sizeof(float) * 3 * V);
    int32_t got[3][10];
    for (int s = 0; s < 2; s++) memcpy(got[s], in[s], sizeof(int32_t) * 4);
    /* prefill both prompts but their last tokens; slot 2 shares slot 0's */
    int32_t toks[8] = {in[0][0], in[0][1], in[0][2], in[1][0], in[1][1], in[1][2]};
    int32_t slots[3] = {0, 1, 2}, off[4] = {0, 3, 6};
    REQUIRE(gr_lm_decode_step(lm, c, toks, slots, off, 2, 6, NULL) == GR_OK);
    REQUIRE(gr_kv_cache_share_prefix(c, 2, 0, 3) == GR_OK);
    memcpy(got[2], in[0], sizeof(int32_t) * 4);
    for (int len = 4; len < 10; len++) {
        int32_t t[3] = {got[0][len - 1], got[1][len - 1], got[2][len - 1]}, o[4] = {0, 1, 2, 3};
        REQUIRE(gr_lm_decode_step(lm, c, t, slots, o, 3, 3, lg) == GR_OK);
        for (int s = 0; s < 3; s++) got[s][len] = gr_argmax(lg + (size_t)s * V, V);
    }
    for (int s = 0; s < 3; s++) {
        const int32_t *w = want[s == 2 ? 0 : s];
        int same = !memcmp(got[s], w, sizeof(int32_t) * 10);
        if (!same) {
            char a[256] = "", b[256] = "";
            for (int i = 0; i < 10; i++) {
                snprintf(a + strlen(a), sizeof a - strlen(a), " %d", got[s][i]);
                snprintf(b + strlen(b), sizeof b - strlen(b), " %d", w[i]);
            }
            gr_test_fail(__FILE__, __LINE__, "sequence %d: got%s, want%s", s, a, b);
        }
    }
    free(lg);
    gr_kv_cache_free(c);
    gr_lm_free(lm);
}

/* The CLI on a GPT-2 folder prints the decoded bytes of the prompt (which
 * has no BOS) and of the greedy continuation (the library's result). */
static void test_cli_gpt2_folder(void)
{
    if (!bin_path()) { gr_test_skip("genrec binary not built (GENREC_BIN)"); return; }
    const char *dir = gr_test_shared("models/tiny-random-gpt2");
    if (!dir) { gr_test_skip("../shared/models/tiny-random-gpt2 absent"); return; }
    gr_lm *lm = gr_lm_load(dir, NULL);
    REQUIRE(lm);
    const gr_tokenizer *tok = gr_lm_tokenizer(lm);
    REQUIRE(tok);
    const char *prompt = "hello world, this is";
    int64_t n;
    int32_t *ids = gr_tokenizer_encode(tok, prompt, strlen(prompt), gr_tokenizer_wants_bos(tok), &n);
    REQUIRE(ids && n >= 2);
    const int steps = 24, V = gr_lm_vocab(lm);
    int32_t seq[64];
    memcpy(seq, ids, sizeof(int32_t) * (size_t)n);
    int len = (int)n;
    gr_kv_cache *c = gr_lm_kv_cache_init(lm, 1, steps);
    float *lg = malloc(sizeof(float) * V);
    int32_t slot = 0, off[2] = {0, len};
    REQUIRE(gr_lm_decode_step(lm, c, seq, &slot, off, 1, len, lg) == GR_OK);
    int32_t bos = gr_tokenizer_bos(tok);
    /* llama2.c's loop feeds positions 0 .. steps-1 and prints the token that
     * follows each: the sequence ends at steps + 1 tokens */
    while (len <= steps) {
        int32_t t = gr_argmax(lg, V);
        if (t == bos) break;
        seq[len++] = t;
        if (len == steps + 1) break;
        int32_t o1[2] = {0, 1};
        REQUIRE(gr_lm_decode_step(lm, c, &seq[len - 1], &slot, o1, 1, 1, lg) == GR_OK);
    }
    size_t dl;
    /* no BOS in a GPT-2 prompt: the whole prompt is printed */
    REQUIRE(seq[0] != bos);
    char *want = gr_tokenizer_decode(tok, seq, len, &dl);
    REQUIRE(want);
    char args[4096];
    snprintf(args, sizeof args, "generate --model '%s' --temperature 0 --steps %d --prompt '%s'", dir, steps, prompt);
    const char *out;
    CHECK_EQ_INT(run(args, &out, NULL), 0);
    REQUIRE(out);
    CHECK(strlen(out) == dl + 1 && !memcmp(out, want, dl) && out[dl] == '\n');
    gr_free(want);
    gr_free(ids);
    free(lg);
    gr_kv_cache_free(c);
    gr_lm_free(lm);
}

static void test_cli_sampling_and_flags(void)
{
    if (!bin_path()) { gr_test_skip("genrec binary not built (GENREC_BIN)"); return; }
    const char *gg = gr_test_shared("models/stories260K/stories260K.gguf");
    const char *out, *err;
    /* flag validation needs no model */
    CHECK_EQ_INT(run("generate --steps 10", NULL, &err), 2);
    CHECK_HAS(err, "--model");
    CHECK_EQ_INT(run("generate --model x --temperature abc", NULL, &err), 2);
    CHECK_HAS(err, "--temperature expects a number");
    CHECK_EQ_INT(run("generate --model x --temperature -0.5", NULL, &err), 2);
    CHECK_HAS(err, "--temperature must be >= 0");
    CHECK_EQ_INT(run("generate --model x --top-p 1.5", NULL, &err), 2);
    CHECK_HAS(err, "--top-p");
    CHECK_EQ_INT(run("generate --model x --steps -3", NULL, &err), 2);
    CHECK_HAS(err, "--steps");
    CHECK_EQ_INT(run("generate --model x --steps 1x", NULL, &err), 2);
    CHECK_EQ_INT(run("generate --model x --bogus", NULL, &err), 2);
    CHECK_EQ_INT(run("generate --help", &out, NULL), 0);
    CHECK_HAS(out, "--top-p");
    char args[4096];
    snprintf(args, sizeof args, "generate --model '%s/does-not-exist.bin'", gr_test_tmpdir());
    CHECK_EQ_INT(run(args, NULL, &err), 1);
    CHECK_HAS(err, "does-not-exist");
    if (!gg) { gr_test_skip("../shared/models/stories260K absent"); return; }
    /* a seed fixes the sample; another seed gives another story */
    snprintf(args, sizeof args, "generate --model '%s' --seed 42 --steps 100", gg);
    CHECK_EQ_INT(run(args, &out, NULL), 0);
    char *a = out ? strdup(out) : NULL;
    CHECK_EQ_INT(run(args, &out, NULL), 0);
    CHECK_STR(out, a);
    snprintf(args, sizeof args, "generate --model '%s' --seed 43 --steps 100 --temperature 1.2 --top-p 1", gg);
    CHECK_EQ_INT(run(args, &out, NULL), 0);
    CHECK(out && a && strcmp(out, a) != 0 && strlen(out) > 20);
    free(a);
    /* steps counts the prompt: 3 steps print the prompt's pieces 2 to 4 */
    snprintf(args, sizeof args, "generate --model '%s' --temperature 0 --steps 3 --prompt 'Once upon a time'", gg);
    CHECK_EQ_INT(run(args, &out, NULL), 0);
    CHECK_STR(out, "Once upon a\n");
    /* --steps 1: one forward from BOS, one sampled piece */
    snprintf(args, sizeof args, "generate --model '%s' --temperature 0 --steps 1", gg);
    CHECK_EQ_INT(run(args, &out, NULL), 0);
    CHECK_STR(out, "Once\n");
}

int main(void)
{
    GR_RUN(test_stories260k_exact);
    GR_RUN(test_tiny_gpt2_greedy);
    GR_RUN(test_cli_gpt2_folder);
    GR_RUN(test_cli_sampling_and_flags);
    return gr_test_finish();
}
