/* Tokenizers: byte-level BPE and SentencePiece BPE against third-party
 * vectors (llama.cpp vocab tests, GPT-2/tiktoken vectors, llama2.c), the
 * GPT-2 pre-tokenizer, round trips, GGUF export and BPE training. */
#include "gr_test.h"
#include "genrec/common.h"
#include "genrec/gguf.h"
#include "genrec/json.h"
#include "genrec/rng.h"
#include "genrec/tokenizer.h"
#include "tok/unicode.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* GPT-2 byte -> unicode alphabet, written out independently of the library. */
static uint32_t tok_byte_to_cp_test(unsigned char b)
{
    int printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    if (printable) return b;
    uint32_t n = 0;
    for (unsigned x = 0; x < b; x++) n += !((x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || x >= 0xAE);
    return 256 + n;
}

/* ids of text as one space-separated string (static buffer) */
static const char *ids_str(const int32_t *ids, int64_t n)
{
    static char buf[8192];
    size_t k = 0;
    buf[0] = '\0';
    for (int64_t i = 0; i < n && k < sizeof buf - 16; i++) k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%d", i ? " " : "", ids[i]);
    return buf;
}

static const char *enc_str(const gr_tokenizer *t, const char *text, int bos)
{
    int64_t n;
    int32_t *ids = gr_tokenizer_encode(t, text, strlen(text), bos, &n);
    if (!ids) return "(error)";
    const char *s = ids_str(ids, n);
    gr_free(ids);
    return s;
}

/* decode(encode(text)) == text */
static int round_trips(const gr_tokenizer *t, const char *text, size_t len)
{
    int64_t n;
    int32_t *ids = gr_tokenizer_encode(t, text, len, 1, &n);
    if (!ids) return 0;
    size_t dl;
    char *d = gr_tokenizer_decode(t, ids, n, &dl);
    int ok = d && dl == len && !memcmp(d, text, len);
    gr_free(ids);
    gr_free(d);
    return ok;
}

/* llama.cpp's .inp/.out vocab tests: ZERO mismatches allowed. */
static void run_llama_cpp_vectors(const char *name)
{
    char rel[256];
    snprintf(rel, sizeof rel, "models/tokenizers/llama.cpp/ggml-vocab-%s.gguf", name);
    const char *gpath = gr_test_shared(rel);
    if (!gpath) { gr_test_skip("../shared/models/tokenizers/llama.cpp absent"); return; }
    char inp_path[4200], out_path[4200];
    snprintf(inp_path, sizeof inp_path, "%s.inp", gpath);
    snprintf(out_path, sizeof out_path, "%s.out", gpath);
    gr_tokenizer *t = gr_tokenizer_load(gpath);
    REQUIRE(t);
    char *inp = gr_test_read_file(inp_path, NULL), *out = gr_test_read_file(out_path, NULL);
    REQUIRE(inp && out);
    const char *sep = "\n__ggml_vocab_test__\n";
    int cases = 0, mismatches = 0, trips = 0;
    char *p = inp, *o = out;
    for (char *q; (q = strstr(p, sep)); p = q + strlen(sep)) {
        char *eol = strchr(o, '\n');
        REQUIRE(eol);
        *eol = '\0';
        int64_t n;
        int32_t *ids = gr_tokenizer_encode(t, p, (size_t)(q - p), 0, &n);
        REQUIRE(ids);
        /* expected: whitespace-separated ints */
        int64_t k = 0;
        int same = 1;
        for (char *s = o, *e; *s; s = e) {
            long v = strtol(s, &e, 10);
            if (e == s) break;
            if (k >= n || ids[k] != v) same = 0;
            k++;
        }
        if (k != n) same = 0;
        if (!same) {
            mismatches++;
            fprintf(stderr, "  %s mismatch on \"%.*s\":\n    want%s\n    got  %s\n", name, (int)(q - p), p, o, ids_str(ids, n));
        }
        trips += round_trips(t, p, (size_t)(q - p));
        gr_free(ids);
        cases++;
        o = eol + 1;
    }
    printf("  %s: %d cases, %d mismatches, %d round trips\n", name, cases, mismatches, trips);
    CHECK(cases >= 40);
    CHECK_EQ_INT(mismatches, 0);
    CHECK_EQ_INT(trips, cases);
    free(inp);
    free(out);
    gr_tokenizer_free(t);
}

static void test_llama_cpp_gpt2(void) { run_llama_cpp_vectors("gpt-2"); }
static void test_llama_cpp_spm(void) { run_llama_cpp_vectors("llama-spm"); }

/* llama2.c's test.c vectors (Llama 2 vocabulary, with BOS) on the llama-spm vocab. */
static void test_llama2c_vectors_on_llama_vocab(void)
{
    const char *gpath = gr_test_shared("models/tokenizers/llama.cpp/ggml-vocab-llama-spm.gguf");
    if (!gpath) { gr_test_skip("../shared absent"); return; }
    gr_tokenizer *t = gr_tokenizer_load(gpath);
    REQUIRE(t);
    CHECK_EQ_INT(gr_tokenizer_kind(t), GR_TOK_SPM);
    CHECK_EQ_INT(gr_tokenizer_n_vocab(t), 32000);
    CHECK_EQ_INT(gr_tokenizer_bos(t), 1);
    CHECK_EQ_INT(gr_tokenizer_eos(t), 2);
    CHECK(gr_tokenizer_wants_bos(t));
    CHECK_STR(enc_str(t, "", 1), "1");
    CHECK_STR(enc_str(t, "I believe the meaning of life is", 1), "1 306 4658 278 6593 310 2834 338");
    CHECK_STR(enc_str(t, "Simply put, the theory of relativity states that ", 1),
              "1 3439 17632 1925 29892 278 6368 310 14215 537 5922 393 29871");
    CHECK_STR(enc_str(t, "A brief message congratulating the team on the launch:\n\n        Hi everyone,\n\n        I just ", 1),
              "1 319 11473 2643 378 629 271 18099 278 3815 373 278 6826 29901 13 13 4706 6324 14332 29892 13 13 4706 306 925 29871");
    CHECK_STR(enc_str(t, "Translate English to French:\n\n        sea otter => loutre de mer\n        peppermint => menthe poivrée\n"
                         "        plush girafe => girafe peluche\n        cheese =>", 1),
              "1 4103 9632 4223 304 5176 29901 13 13 4706 7205 4932 357 1149 301 449 276 316 2778 13 4706 1236 407 837 524 1149 "
              "6042 354 772 440 29878 1318 13 4706 715 1878 330 3055 1725 1149 330 3055 1725 4639 28754 13 4706 923 968 1149");
    /* pieces: byte tokens and the U+2581 space */
    size_t len;
    const char *pc = gr_tokenizer_piece(t, 13, &len); /* <0x0A> */
    CHECK(pc && len == 1 && pc[0] == '\n');
    pc = gr_tokenizer_piece(t, 15043, &len); /* "▁Hello" */
    CHECK(pc && len == 6 && !memcmp(pc, " Hello", 6));
    CHECK_STR(gr_tokenizer_token(t, 15043), "\xE2\x96\x81" "Hello");
    CHECK(gr_tokenizer_piece(t, 32000, &len) == NULL);
    gr_tokenizer_free(t);
}

/* GPT-2 encoder.json + vocab.bpe with tiktoken / GPT-3-Encoder vectors. */
static void test_gpt2_bpe_files(void)
{
    const char *enc = gr_test_shared("models/tokenizers/gpt2-bpe/encoder.json");
    const char *bpe = gr_test_shared("models/tokenizers/gpt2-bpe/vocab.bpe");
    const char *vec = gr_test_shared("models/tokenizers/gpt2-bpe/gpt2_tokenizer_vectors.json");
    if (!enc || !bpe || !vec) { gr_test_skip("../shared/models/tokenizers/gpt2-bpe absent"); return; }
    gr_tokenizer *t = gr_tokenizer_load_gpt2(enc, bpe);
    REQUIRE(t);
    CHECK_EQ_INT(gr_tokenizer_n_vocab(t), 50257);
    CHECK_EQ_INT(gr_tokenizer_n_merges(t), 50000);
    CHECK_EQ_INT(gr_tokenizer_eos(t), 50256);
    gr_json_doc *doc = gr_json_load(vec);
    REQUIRE(doc);
    const gr_json *cases = gr_json_get(gr_json_root(doc), "cases");
    REQUIRE(cases && cases->type == GR_JSON_ARRAY);
    int mismatches = 0;
    for (size_t i = 0; i < cases->n; i++) {
        const gr_json *c = &cases->u.items[i], *text = gr_json_get(c, "text"), *want = gr_json_get(c, "expected_ids");
        REQUIRE(text && want && want->type == GR_JSON_ARRAY);
        int64_t n;
        int32_t *ids = gr_tokenizer_encode(t, text->u.str, text->n, 0, &n);
        REQUIRE(ids);
        int same = (size_t)n == want->n;
        for (int64_t k = 0; same && k < n; k++) same = ids[k] == want->u.items[k].u.num.i;
        if (!same) { mismatches++; fprintf(stderr, "  gpt2 mismatch on \"%s\": got %s\n", text->u.str, ids_str(ids, n)); }
        CHECK(round_trips(t, text->u.str, text->n));
        gr_free(ids);
    }
    CHECK(cases->n >= 20);
    CHECK_EQ_INT(mismatches, 0);
    /* allowed_special=all: the caller splits at <|endoftext|> and inserts its id */
    const gr_json *sc = gr_json_get(gr_json_root(doc), "special_case");
    const char *stext = gr_json_str(gr_json_get(sc, "text"));
    const gr_json *swant = gr_json_get(sc, "expected_ids_allowed_special_all");
    REQUIRE(stext && swant);
    const char *at = strstr(stext, "<|endoftext|>");
    REQUIRE(at);
    int64_t n;
    int32_t *ids = gr_tokenizer_encode(t, stext, (size_t)(at - stext), 0, &n);
    REQUIRE(ids && n + 1 == (int64_t)swant->n);
    for (int64_t k = 0; k < n; k++) CHECK_EQ_INT(ids[k], swant->u.items[k].u.num.i);
    CHECK_EQ_INT(gr_tokenizer_find(t, "<|endoftext|>", 13), swant->u.items[n].u.num.i);
    gr_free(ids);
    /* special tokens are not parsed from text */
    CHECK(strcmp(enc_str(t, "<|endoftext|>", 0), "50256") != 0);
    gr_json_free(doc);
    gr_tokenizer_free(t);
}

/* llama2.c tok512.bin: "Once upon a time" exactly as llama2.c's encode()
 * produces it (ids taken from llama2.c run.c's encode on this file). */
static void test_tok512_llama2c(void)
{
    const char *bin = gr_test_shared("models/stories260K/tok512.bin");
    const char *gg = gr_test_shared("models/stories260K/stories260K.gguf");
    if (!bin || !gg) { gr_test_skip("../shared/models/stories260K absent"); return; }
    gr_tokenizer *t = gr_tokenizer_load(bin);
    REQUIRE(t);
    CHECK_EQ_INT(gr_tokenizer_n_vocab(t), 512);
    CHECK_EQ_INT(gr_tokenizer_bos(t), 1);
    CHECK_STR(enc_str(t, "Once upon a time", 1), "1 403 407 261 378");
    CHECK_STR(enc_str(t, "Hello world", 1), "1 346 306 414 263 304 341");
    CHECK_STR(enc_str(t, "The little girl's cat jumped! 123", 1),
              "1 291 376 298 315 421 439 419 280 294 410 449 425 423 427 266 443 410 475 479 472");
    CHECK_STR(enc_str(t, "h\xC3\xA9llo w\xC3\xB6rld \xF0\x9F\xA6\x99", 1), "1 270 485 306 414 263 198 185 420 341 410 243 162 169 156");
    CHECK_STR(enc_str(t, "  two  spaces", 1), "1 410 410 259 424 414 410 262 427 412 331 419");
    /* the GGUF export of the same model carries the same tokenizer */
    gr_tokenizer *g = gr_tokenizer_load(gg);
    REQUIRE(g);
    CHECK_EQ_INT(gr_tokenizer_n_vocab(g), 512);
    const char *texts[] = {"Once upon a time", "Hello world", "The little girl's cat jumped! 123", "Lily and Tom\nplayed.",
                           "h\xC3\xA9llo w\xC3\xB6rld \xF0\x9F\xA6\x99", "", " ", "\t\t x"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        char a[4096];
        snprintf(a, sizeof a, "%s", enc_str(t, texts[i], 1));
        CHECK_STR(enc_str(g, texts[i], 1), a);
        CHECK(round_trips(t, texts[i], strlen(texts[i])));
    }
    gr_tokenizer_free(g);
    gr_tokenizer_free(t);
}

/* tokenizer.json and vocab.json + merges.txt of the same HF model agree. */
static void test_hf_tokenizer_json(void)
{
    const char *tj = gr_test_shared("models/tiny-random-gpt2/tokenizer.json");
    const char *vj = gr_test_shared("models/tiny-random-gpt2/vocab.json");
    const char *mt = gr_test_shared("models/tiny-random-gpt2/merges.txt");
    if (!tj || !vj || !mt) { gr_test_skip("../shared/models/tiny-random-gpt2 absent"); return; }
    gr_tokenizer *a = gr_tokenizer_load(tj), *b = gr_tokenizer_load_gpt2(vj, mt);
    REQUIRE(a && b);
    CHECK_EQ_INT(gr_tokenizer_n_vocab(a), 1000);
    CHECK_EQ_INT(gr_tokenizer_bos(a), 0);
    CHECK_EQ_INT(gr_tokenizer_eos(a), 0);
    CHECK_EQ_INT(gr_tokenizer_token_type(a, 0), GR_TOKEN_CONTROL);
    CHECK(gr_tokenizer_n_merges(a) > 700);
    CHECK_EQ_INT(gr_tokenizer_n_merges(a), gr_tokenizer_n_merges(b));
    const char *texts[] = {"Hello world, this is a test.", " The quick brown fox's 42 jumps!!", "na\xC3\xAFve caf\xC3\xA9 \xE2\x82\xAC 3.14\n\n  x"};
    for (size_t i = 0; i < 3; i++) {
        char want[4096];
        snprintf(want, sizeof want, "%s", enc_str(b, texts[i], 0));
        CHECK_STR(enc_str(a, texts[i], 0), want);
        CHECK(round_trips(a, texts[i], strlen(texts[i])));
    }
    /* "the" is a single token in this vocab (merge "Ġt he" -> "Ġthe") */
    int64_t n;
    int32_t *ids = gr_tokenizer_encode(a, " the", 4, 0, &n);
    REQUIRE(ids);
    CHECK_EQ_INT(n, 1);
    CHECK_STR(gr_tokenizer_token(a, ids[0]), "\xC4\xA0the");
    gr_free(ids);
    /* the directory form finds tokenizer.json */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", tj);
    *strrchr(dir, '/') = '\0';
    gr_tokenizer *c = gr_tokenizer_load(dir);
    CHECK(c != NULL);
    gr_tokenizer_free(c);
    gr_tokenizer_free(a);
    gr_tokenizer_free(b);
}

/* Pre-tokenizer pieces as "|"-joined text. */
static const char *pieces(const char *text)
{
    static char buf[1024];
    size_t n, k = 0, start = 0;
    size_t *ends = gr_pretok_gpt2(text, strlen(text), &n);
    if (!ends) return "(error)";
    for (size_t i = 0; i < n; i++) {
        k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%.*s", i ? "|" : "", (int)(ends[i] - start), text + start);
        start = ends[i];
    }
    buf[k] = '\0';
    gr_free(ends);
    return buf;
}

static void test_pretokenizer(void)
{
    CHECK_STR(pieces("Hello world"), "Hello| world");
    CHECK_STR(pieces("I'm don't you'll we've they're he'd"), "I|'m| don|'t| you|'ll| we|'ve| they|'re| he|'d");
    CHECK_STR(pieces("   Hello"), "  | Hello");
    CHECK_STR(pieces("a  \n\nb"), "a|  \n|\n|b");
    CHECK_STR(pieces("x   "), "x|   ");
    CHECK_STR(pieces("abc123 456!!? ?x"), "abc|123| 456|!!?| ?|x");
    CHECK_STR(pieces("\xD0\xBD\xD0\xB5\xD1\x89\xD0\xBE \xD0\xBD\xD0\xB0"), "\xD0\xBD\xD0\xB5\xD1\x89\xD0\xBE| \xD0\xBD\xD0\xB0");
    CHECK_STR(pieces("\xC2\xBD x"), "\xC2\xBD| x"); /* ½ is \p{N} (No) */
    CHECK_STR(pieces("a\xFF\xFE b"), "a|\xFF\xFE| b"); /* invalid bytes: "other" */
    CHECK_STR(pieces("'S"), "'|S"); /* contractions are case-sensitive */
    CHECK_STR(pieces(""), "");
    CHECK_EQ_INT(gr_uc_class('A'), GR_UC_LETTER);
    CHECK_EQ_INT(gr_uc_class(0x4E2D), GR_UC_LETTER);  /* 中 */
    CHECK_EQ_INT(gr_uc_class(0x0663), GR_UC_NUMBER);  /* Arabic-Indic 3 */
    CHECK_EQ_INT(gr_uc_class(0x3000), GR_UC_SPACE);
    CHECK_EQ_INT(gr_uc_class(0x1F600), 0);            /* emoji */
}

/* Random byte strings (valid and invalid UTF-8) round-trip exactly through
 * byte-level BPE, and valid UTF-8 through SPM byte fallback. */
static void test_round_trip_random(void)
{
    const char *bpe = gr_test_shared("models/tokenizers/llama.cpp/ggml-vocab-gpt-2.gguf");
    const char *spm = gr_test_shared("models/tokenizers/llama.cpp/ggml-vocab-llama-spm.gguf");
    if (!bpe || !spm) { gr_test_skip("../shared absent"); return; }
    gr_tokenizer *b = gr_tokenizer_load(bpe), *s = gr_tokenizer_load(spm);
    REQUIRE(b && s);
    gr_rng r;
    gr_rng_seed(&r, 7);
    static const uint32_t cps[] = {'a', 'Z', ' ', '\n', '\t', '\'', '0', '!', 0xE9, 0x416, 0x4E2D, 0x2581 + 1, 0x1F999, 0x200D, 0xFFFD, 0};
    int ok_b = 0, ok_s = 0, n_cases = 300;
    for (int c = 0; c < n_cases; c++) {
        char buf[256];
        size_t n = 0, want = gr_rng_below(&r, 60);
        for (size_t i = 0; i < want; i++) {
            if (c % 3 == 0) buf[n++] = (char)gr_rng_below(&r, 256); /* arbitrary bytes */
            else n += gr_utf8_encode(cps[gr_rng_below(&r, sizeof cps / sizeof cps[0])], buf + n);
        }
        ok_b += round_trips(b, buf, n);
        ok_s += round_trips(s, buf, n);
    }
    CHECK_EQ_INT(ok_b, n_cases);
    CHECK_EQ_INT(ok_s, n_cases);
    gr_tokenizer_free(b);
    gr_tokenizer_free(s);
}

/* Tokenizers survive a GGUF round trip with identical encodings. */
static void test_gguf_export(void)
{
    const char *paths[] = {gr_test_shared("models/tokenizers/llama.cpp/ggml-vocab-gpt-2.gguf"),
                           gr_test_shared("models/stories260K/tok512.bin")};
    if (!paths[0] || !paths[1]) { gr_test_skip("../shared absent"); return; }
    const char *text = "Once upon a time, the llama's 3 friends said \"h\xC3\xA9llo\"!\n";
    for (int i = 0; i < 2; i++) {
        gr_tokenizer *t = gr_tokenizer_load(paths[i]);
        REQUIRE(t);
        gr_gguf_builder *b = gr_gguf_builder_new();
        REQUIRE(b);
        CHECK_EQ_INT(gr_gguf_set_str(b, "general.architecture", "llama"), GR_OK);
        CHECK_EQ_INT(gr_tokenizer_to_gguf(t, b), GR_OK);
        char out[512];
        snprintf(out, sizeof out, "%s/tok%d.gguf", gr_test_tmpdir(), i);
        CHECK_EQ_INT(gr_gguf_write(b, out), GR_OK);
        gr_gguf_builder_free(b);
        if (i == 1) gr_test_save_seed(out, "tok512_spm.gguf");
        gr_tokenizer *u = gr_tokenizer_load(out);
        REQUIRE(u);
        CHECK_EQ_INT(gr_tokenizer_n_vocab(u), gr_tokenizer_n_vocab(t));
        CHECK_EQ_INT(gr_tokenizer_n_merges(u), gr_tokenizer_n_merges(t));
        CHECK_EQ_INT(gr_tokenizer_bos(u), gr_tokenizer_bos(t));
        char want[4096];
        snprintf(want, sizeof want, "%s", enc_str(t, text, 1));
        CHECK_STR(enc_str(u, text, 1), want);
        gr_tokenizer_free(u);
        gr_tokenizer_free(t);
    }
}

/* Errors: missing files and malformed inputs are reported, not crashes. */
static void test_load_errors(void)
{
    CHECK(gr_tokenizer_load("/nonexistent/tok.bin") == NULL);
    CHECK_HAS(gr_error_message(), "/nonexistent/tok.bin");
    const char *p = gr_test_write_file("bad.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []},"
                                                   " \"pre_tokenizer\": {\"type\": \"Whitespace\"}}");
    CHECK(gr_tokenizer_load(p) == NULL);
    CHECK_HAS(gr_error_message(), "ByteLevel");
    char bin[512];
    snprintf(bin, sizeof bin, "%s/trunc.bin", gr_test_tmpdir());
    FILE *f = fopen(bin, "wb");
    REQUIRE(f);
    fwrite("\x10\x00\x00\x00\x00\x00\x00\x00\x05\x00\x00\x00" "ab", 1, 14, f);
    fclose(f);
    CHECK(gr_tokenizer_load(bin) == NULL);
    CHECK_HAS(gr_error_message(), "token[0].len");
}

/* Train a byte-level BPE on a small corpus: frequent words become single
 * tokens, encoding round-trips, training is deterministic, GGUF export works. */
static void test_bpe_train(void)
{
    const char *words[] = {"the", "cat", "sat", "on", "mat", "and", "the", "dog", "ran", "to", "the", "park", "\n"};
    char *corpus = malloc(200000);
    REQUIRE(corpus);
    gr_rng r;
    gr_rng_seed(&r, 1);
    size_t n = 0;
    while (n < 150000) {
        const char *w = words[gr_rng_below(&r, sizeof words / sizeof words[0])];
        n += (size_t)snprintf(corpus + n, 200000 - n, "%s%s", n && w[0] != '\n' ? " " : "", w);
    }
    const char *specials[] = {"<|endoftext|>"};
    gr_bpe_train_opts o = {.vocab_size = 300, .min_frequency = 2, .specials = specials, .n_specials = 1};
    double t0 = gr_time_now();
    gr_tokenizer *t = gr_bpe_train(corpus, n, &o);
    double dt = gr_time_now() - t0;
    REQUIRE(t);
    printf("  trained %d tokens (%" PRId64 " merges) on %zu bytes in %.3f s\n", gr_tokenizer_n_vocab(t),
           gr_tokenizer_n_merges(t), n, dt);
    CHECK(gr_tokenizer_n_vocab(t) <= 300);
    CHECK_EQ_INT(gr_tokenizer_n_vocab(t), 256 + gr_tokenizer_n_merges(t) + 1);
    CHECK_EQ_INT(gr_tokenizer_bos(t), gr_tokenizer_n_vocab(t) - 1);
    CHECK_EQ_INT(gr_tokenizer_token_type(t, gr_tokenizer_bos(t)), GR_TOKEN_CONTROL);
    /* every word of the corpus is one token with its leading space */
    CHECK_EQ_INT(strlen(enc_str(t, " the park", 0)) > 0, 1);
    int64_t k;
    int32_t *ids = gr_tokenizer_encode(t, " the cat sat on the mat", 23, 0, &k);
    REQUIRE(ids);
    CHECK_EQ_INT(k, 6);
    gr_free(ids);
    CHECK(round_trips(t, corpus, 5000));
    CHECK(round_trips(t, "unseen w\xC3\xB6rds \xF0\x9F\xA6\x99 \xFF", 20));
    /* deterministic */
    gr_tokenizer *t2 = gr_bpe_train(corpus, n, &o);
    REQUIRE(t2);
    int same = gr_tokenizer_n_vocab(t) == gr_tokenizer_n_vocab(t2);
    for (int32_t i = 0; same && i < gr_tokenizer_n_vocab(t); i++) same = !strcmp(gr_tokenizer_token(t, i), gr_tokenizer_token(t2, i));
    CHECK(same);
    gr_tokenizer_free(t2);
    /* saved into GGUF and reloaded: same encoding */
    gr_gguf_builder *b = gr_gguf_builder_new();
    REQUIRE(b);
    CHECK_EQ_INT(gr_gguf_set_str(b, "general.architecture", "gpt2"), GR_OK);
    CHECK_EQ_INT(gr_tokenizer_to_gguf(t, b), GR_OK);
    char path[512];
    snprintf(path, sizeof path, "%s/trained.gguf", gr_test_tmpdir());
    CHECK_EQ_INT(gr_gguf_write(b, path), GR_OK);
    gr_gguf_builder_free(b);
    gr_test_save_seed(path, "trained_bpe.gguf");
    gr_tokenizer *u = gr_tokenizer_load(path);
    REQUIRE(u);
    char want[4096];
    snprintf(want, sizeof want, "%s", enc_str(t, "the dog sat on the park mat", 0));
    CHECK_STR(enc_str(u, "the dog sat on the park mat", 0), want);
    gr_tokenizer_free(u);
    /* bad options */
    gr_bpe_train_opts bad = {.vocab_size = 100};
    CHECK(gr_bpe_train(corpus, n, &bad) == NULL);
    CHECK_HAS(gr_error_message(), "vocab_size");
    gr_tokenizer_free(t);
    free(corpus);
}

/* Naive BPE trainer (full recount each step) to check the incremental one. */
static int naive_train(const char *text, size_t len, int vocab, char toks[][64], int *n_merges)
{
    enum { MAXV = 512 };
    static int64_t cnt[MAXV][MAXV];
    size_t np, start = 0;
    size_t *ends = gr_pretok_gpt2(text, len, &np);
    int32_t *sym = malloc(len * sizeof(int32_t));
    size_t *wo = malloc((np + 1) * sizeof(size_t)), *wl = malloc((np + 1) * sizeof(size_t));
    for (size_t i = 0, k = 0; i < np; start = ends[i], i++) {
        wo[i] = k;
        wl[i] = ends[i] - start;
        for (size_t j = start; j < ends[i]; j++) sym[k++] = (unsigned char)text[j];
    }
    int n_tok = 256;
    *n_merges = 0;
    for (int b = 0; b < 256; b++) {
        char u[8];
        size_t n = gr_utf8_encode(tok_byte_to_cp_test((unsigned char)b), u);
        memcpy(toks[b], u, n);
        toks[b][n] = 0;
    }
    while (n_tok + 1 < vocab && n_tok < MAXV) {
        memset(cnt, 0, sizeof cnt);
        for (size_t w = 0; w < np; w++)
            for (size_t j = 0; j + 1 < wl[w]; j++) cnt[sym[wo[w] + j]][sym[wo[w] + j + 1]]++;
        int64_t best = 0;
        int bl = -1, br = -1;
        for (int l = 0; l < n_tok; l++)
            for (int r = 0; r < n_tok; r++)
                if (cnt[l][r] > best) { best = cnt[l][r]; bl = l; br = r; }
        if (best < 2) break;
        char m[64];
        snprintf(m, sizeof m, "%s%s", toks[bl], toks[br]);
        int res = -1;
        for (int i = 0; i < n_tok; i++) if (!strcmp(toks[i], m)) res = i;
        if (res < 0) { res = n_tok++; strcpy(toks[res], m); }
        for (size_t w = 0; w < np; w++) {
            int32_t *s = sym + wo[w];
            size_t o = 0;
            for (size_t j = 0; j < wl[w]; j++) {
                if (j + 1 < wl[w] && s[j] == bl && s[j + 1] == br) { s[o++] = res; j++; }
                else s[o++] = s[j];
            }
            wl[w] = o;
        }
        (*n_merges)++;
    }
    free(sym); free(wo); free(wl); gr_free(ends);
    return n_tok;
}

static void test_bpe_train_vs_naive(void)
{
    gr_rng r;
    gr_rng_seed(&r, 3);
    size_t n = 0;
    char *corpus = malloc(40000);
    REQUIRE(corpus);
    while (n < 30000) {
        int wl = 1 + (int)gr_rng_below(&r, 6);
        corpus[n++] = gr_rng_below(&r, 10) ? ' ' : '\n';
        for (int i = 0; i < wl; i++) corpus[n++] = (char)("aabcde"[gr_rng_below(&r, 6)] - (gr_rng_below(&r, 20) == 0 ? 32 : 0));
    }
    static char ref[512][64];
    int ref_merges;
    int ref_n = naive_train(corpus, n, 400, ref, &ref_merges);
    gr_bpe_train_opts o = {.vocab_size = 400, .min_frequency = 2, .specials = NULL, .n_specials = 0};
    const char *sp[] = {"<|endoftext|>"};
    o.specials = sp;
    o.n_specials = 1;
    gr_tokenizer *t = gr_bpe_train(corpus, n, &o);
    REQUIRE(t);
    printf("  incremental: %d tokens, %" PRId64 " merges; naive: %d tokens, %d merges\n", gr_tokenizer_n_vocab(t),
           gr_tokenizer_n_merges(t), ref_n, ref_merges);
    CHECK(ref_merges > 100);
    CHECK_EQ_INT(gr_tokenizer_n_merges(t), ref_merges);
    CHECK_EQ_INT(gr_tokenizer_n_vocab(t), ref_n + 1);
    int same = 1;
    for (int i = 0; i < ref_n && same; i++) {
        same = !strcmp(gr_tokenizer_token(t, i), ref[i]);
        if (!same) fprintf(stderr, "  token %d: '%s' vs naive '%s'\n", i, gr_tokenizer_token(t, i), ref[i]);
    }
    CHECK(same);
    CHECK(round_trips(t, corpus, n));
    gr_tokenizer_free(t);
    free(corpus);
}

/* The CLI: genrec tokenize --model FILE [--no-bos] (skipped when the
 * program has not been built). */
static void test_cli(void)
{
    const char *bin = getenv("GENREC_BIN");
    const char *gg = gr_test_shared("models/tokenizers/llama.cpp/ggml-vocab-llama-spm.gguf");
    FILE *probe = bin ? fopen(bin, "rb") : NULL;
    if (!probe || !gg) { if (probe) fclose(probe); gr_test_skip("genrec program or ../shared absent"); return; }
    fclose(probe);
    const char *in = gr_test_write_file("cli_in.txt", "Hello world");
    char cmd[8192], out[256];
    const char *flags[2] = {"", " --no-bos"}, *want[2] = {"1 15043 3186\n", "15043 3186\n"};
    for (int i = 0; i < 2; i++) {
        snprintf(cmd, sizeof cmd, "'%s' tokenize --model '%s'%s < '%s'", bin, gg, flags[i], in);
        FILE *p = popen(cmd, "r");
        REQUIRE(p);
        size_t n = fread(out, 1, sizeof out - 1, p);
        out[n] = 0;
        CHECK_EQ_INT(pclose(p), 0);
        CHECK_STR(out, want[i]);
    }
    snprintf(cmd, sizeof cmd, "'%s' tokenize --model /nonexistent 2>/dev/null < '%s'", bin, in);
    FILE *p = popen(cmd, "r");
    REQUIRE(p);
    CHECK(pclose(p) != 0);
}

int main(void)
{
    GR_RUN(test_pretokenizer);
    GR_RUN(test_llama_cpp_gpt2);
    GR_RUN(test_llama_cpp_spm);
    GR_RUN(test_llama2c_vectors_on_llama_vocab);
    GR_RUN(test_gpt2_bpe_files);
    GR_RUN(test_tok512_llama2c);
    GR_RUN(test_hf_tokenizer_json);
    GR_RUN(test_round_trip_random);
    GR_RUN(test_gguf_export);
    GR_RUN(test_load_errors);
    GR_RUN(test_bpe_train);
    GR_RUN(test_bpe_train_vs_naive);
    GR_RUN(test_cli);
    return gr_test_finish();
}
