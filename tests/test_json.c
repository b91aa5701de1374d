/* The strict JSON parser: values, escapes, limits and error positions. */
#include "gr_test.h"
#include "genrec/common.h"
#include "genrec/json.h"

#include <stdlib.h>
#include <string.h>

static gr_json_doc *P(const char *s) { return gr_json_parse(s, strlen(s), "t.json"); }

/* The text must be rejected with an error containing `want`. */
static void bad(const char *s, const char *want, int line)
{
    gr_json_doc *d = P(s);
    if (d) { gr_test_fail(__FILE__, line, "accepted invalid JSON: %s", s); gr_json_free(d); return; }
    if (!strstr(gr_error_message(), want)) gr_test_fail(__FILE__, line, "error \"%s\" lacks \"%s\"", gr_error_message(), want);
}
#define BAD(s, w) bad(s, w, __LINE__)

static void test_values(void)
{
    gr_json_doc *d = P(" {\"a\": [1, -2.5e3, true, false, null, \"x\"], \"b\": {}, \"c\": [], \"n\": 0, \"big\": 12345678901234567890,"
                       " \"a\": 7} ");
    REQUIRE(d);
    const gr_json *r = gr_json_root(d);
    CHECK_EQ_INT(r->type, GR_JSON_OBJECT);
    CHECK_EQ_INT(r->n, 6);
    const gr_json *a = gr_json_get(r, "a");
    REQUIRE(a && a->type == GR_JSON_ARRAY && a->n == 6);
    CHECK(a->u.items[0].u.num.is_int && a->u.items[0].u.num.i == 1);
    CHECK(!a->u.items[1].u.num.is_int && a->u.items[1].u.num.d == -2500.0);
    CHECK(a->u.items[2].type == GR_JSON_BOOL && a->u.items[2].u.boolean == 1);
    CHECK(a->u.items[3].type == GR_JSON_BOOL && a->u.items[3].u.boolean == 0);
    CHECK(a->u.items[4].type == GR_JSON_NULL);
    CHECK_STR(gr_json_str(&a->u.items[5]), "x");
    CHECK(gr_json_get(r, "b")->n == 0 && gr_json_get(r, "c")->type == GR_JSON_ARRAY);
    const gr_json *big = gr_json_get(r, "big");
    CHECK(big && !big->u.num.is_int && big->u.num.d > 1.2e19); /* does not fit int64 */
    CHECK(gr_json_get(r, "zzz") == NULL);
    CHECK(gr_json_get(a, "a") == NULL);
    gr_json_free(d);
}

static void test_strings(void)
{
    gr_json_doc *d = P("[\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\", \"\\u00e9\\u4e2d\\ud83e\\udd99\", \"\\u0000z\", \"h\xC3\xA9\xF0\x9F\xA6\x99\"]");
    REQUIRE(d);
    const gr_json *r = gr_json_root(d);
    CHECK_STR(r->u.items[0].u.str, "a\"b\\c/d\b\f\n\r\t");
    CHECK_STR(r->u.items[1].u.str, "\xC3\xA9\xE4\xB8\xAD\xF0\x9F\xA6\x99");
    CHECK(r->u.items[2].n == 2 && r->u.items[2].u.str[0] == 0 && r->u.items[2].u.str[1] == 'z');
    CHECK_STR(r->u.items[3].u.str, "h\xC3\xA9\xF0\x9F\xA6\x99");
    gr_json_free(d);
}

static void test_errors(void)
{
    BAD("", "1:1: value expected");
    BAD("[1,]", "1:4: unexpected character ']'");
    BAD("{\"a\":1,}", "object key");
    BAD("[1 2]", "',' or ']' expected");
    BAD("01", "leading zero");
    BAD("1.", "digit expected after '.'");
    BAD("1e", "exponent");
    BAD("-", "invalid number");
    BAD("NaN", "unexpected character");
    BAD("tru", "expected 'true'");
    BAD("\"abc", "unterminated string");
    BAD("\"a\tb\"", "control character 0x09");
    BAD("\"\\x\"", "invalid escape");
    BAD("\"\\u12g4\"", "bad hex digit");
    BAD("\"\\ud800\"", "not followed by a low surrogate");
    BAD("\"\\udc00\"", "lone low surrogate");
    BAD("\"\\ud800\\u0041\"", "not a low surrogate");
    BAD("\"\xC3\"", "invalid UTF-8");
    BAD("\"\xED\xA0\x80\"", "invalid UTF-8"); /* encoded surrogate */
    BAD("\"\xC0\xAF\"", "invalid UTF-8");     /* overlong */
    BAD("[1] x", "trailing characters");
    BAD("{\"a\" 1}", "':' expected");
    BAD("{\n  \"a\": [1,\n   ?]}", "t.json:3:4:");
    /* depth limit */
    char deep[2 * GR_JSON_MAX_DEPTH + 8];
    memset(deep, '[', GR_JSON_MAX_DEPTH + 1);
    memset(deep + GR_JSON_MAX_DEPTH + 1, ']', GR_JSON_MAX_DEPTH + 1);
    deep[2 * GR_JSON_MAX_DEPTH + 2] = 0;
    BAD(deep, "nesting deeper");
    deep[0] = ' ';
    deep[2 * GR_JSON_MAX_DEPTH + 1] = 0;
    gr_json_doc *d = P(deep);
    CHECK(d != NULL);
    gr_json_free(d);
}

/* gr_json_parse_ex: line numbers of a JSON-lines record, lenient escapes. */
static void test_opts(void)
{
    const char *src = " {\"a\": [1, -2.5e1, \"x\\u00e9\\ud83d\\ude00\\n\"], \"b\": {\"c\": \"\\ud800\", \"d\": \"\\udc00z\","
                      " \"e\": \"\\ud800\\u0041\", \"z\": \"a\\u0000b\"}, \"a\": 7} ";
    gr_json_opts o = {.first_line = 3, .lenient_escapes = 1};
    gr_json_doc *d = gr_json_parse_ex(src, strlen(src), "f.json", &o);
    REQUIRE(d);
    const gr_json *r = gr_json_root(d), *a = gr_json_get(r, "a"), *b = gr_json_get(r, "b");
    REQUIRE(a && a->type == GR_JSON_ARRAY && b);
    CHECK(a->u.items[1].u.num.d == -25); /* the first of duplicate keys */
    CHECK_STR(a->u.items[2].u.str, "x\xc3\xa9\xf0\x9f\x98\x80\n");
    CHECK_STR(gr_json_str(gr_json_get(b, "c")), "\xef\xbf\xbd");  /* lone high surrogate */
    CHECK_STR(gr_json_str(gr_json_get(b, "d")), "\xef\xbf\xbdz"); /* lone low surrogate */
    CHECK_STR(gr_json_str(gr_json_get(b, "e")), "\xef\xbf\xbd" "A");
    const gr_json *z = gr_json_get(b, "z");
    CHECK(z && z->n == 5 && !strcmp(z->u.str, "a\xef\xbf\xbd" "b")); /* \u0000 -> U+FFFD */
    gr_json_free(d);
    /* the same text without options: the lone surrogate is an error */
    CHECK(gr_json_parse_ex(src, strlen(src), "f.json", NULL) == NULL);
    CHECK_HAS(gr_error_message(), "f.json:1:");
    static const char *const badv[] = {"{", "[1,]", "{\"a\" 1}", "01", "1.", "-", "\"abc", "tru", "{} x",
                                       "\"\\u12G4\"", "[1 2]", "{\"a\":1,}", "nan", "\"\x01\""};
    o.first_line = 9;
    for (size_t k = 0; k < sizeof badv / sizeof badv[0]; k++) {
        d = gr_json_parse_ex(badv[k], strlen(badv[k]), "f.json", &o);
        if (d) { gr_test_fail(__FILE__, __LINE__, "accepted %s", badv[k]); gr_json_free(d); }
        CHECK_HAS(gr_error_message(), "f.json:9:");
    }
    /* python-dict text gets a hint, at the quote's column */
    d = gr_json_parse_ex("{'a': 1}", 8, "f.json", &o);
    CHECK(d == NULL);
    CHECK_HAS(gr_error_message(), "f.json:9:2: single-quoted");
    CHECK_HAS(gr_error_message(), "only strict JSON");
}

static void test_file(void)
{
    const char *p = gr_test_write_file("v.json", "\xEF\xBB\xBF{\"k\": \"v\"}\n");
    gr_json_doc *d = gr_json_load(p);
    REQUIRE(d);
    CHECK_STR(gr_json_str(gr_json_get(gr_json_root(d), "k")), "v");
    gr_json_free(d);
    CHECK(gr_json_load("/nonexistent.json") == NULL);
    CHECK_HAS(gr_error_message(), "/nonexistent.json");
    const char *enc = gr_test_shared("models/tokenizers/gpt2-bpe/encoder.json");
    if (!enc) return;
    double t0 = gr_time_now();
    d = gr_json_load(enc);
    REQUIRE(d);
    printf("  encoder.json: %zu members parsed in %.3f s\n", gr_json_root(d)->n, gr_time_now() - t0);
    CHECK_EQ_INT(gr_json_root(d)->n, 50257);
    const gr_json *v = gr_json_get(gr_json_root(d), "\xC4\xA0the");
    CHECK(v && v->u.num.i == 262);
    gr_json_free(d);
}

int main(void)
{
    GR_RUN(test_values);
    GR_RUN(test_strings);
    GR_RUN(test_errors);
    GR_RUN(test_opts);
    GR_RUN(test_file);
    return gr_test_finish();
}
