/* Loader building blocks: text cleaning, field splitting, the line reader,
 * the JSON-lines parser, the string map and the dataset builder. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "data/strmap.h"
#include "data/table.h"
#include "data/text.h"
#include "genrec/dataset.h"
#include "gr_test.h"

static const char *clean(const char *s, gr_enc enc)
{
    static char buf[256];
    char *c = gr_text_clean(s, strlen(s), enc, "f", 1, "x");
    snprintf(buf, sizeof buf, "%s", c ? c : "(null)");
    gr_free(c);
    return buf;
}

static void test_text_clean(void)
{
    CHECK_STR(clean("  a \t b\n\nc  ", GR_ENC_UTF8), "a b c");
    CHECK_STR(clean("&amp;&quot;&lt;&gt;&#39;&apos;", GR_ENC_UTF8), "&\"<>''");
    CHECK_STR(clean("caf&eacute; &#233; &#xE9; &#XE9;", GR_ENC_UTF8), "caf\xc3\xa9 \xc3\xa9 \xc3\xa9 \xc3\xa9");
    CHECK_STR(clean("a&nbsp;&nbsp;b", GR_ENC_UTF8), "a b");
    CHECK_STR(clean("x &mdash; y&hellip;", GR_ENC_UTF8), "x \xe2\x80\x94 y\xe2\x80\xa6");
    CHECK_STR(clean("&#128512;", GR_ENC_UTF8), "\xf0\x9f\x98\x80");
    /* left alone: no ';', unknown names, empty numbers */
    CHECK_STR(clean("AT&T & Co &foo; &#; &#x; &amp", GR_ENC_UTF8), "AT&T & Co &foo; &#; &#x; &amp");
    /* invalid code points become U+FFFD */
    CHECK_STR(clean("&#0;&#xD800;&#x110000;", GR_ENC_UTF8), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    /* decoded whitespace is normalised too */
    CHECK_STR(clean("a&#10;&#9; b", GR_ENC_UTF8), "a b");
    CHECK_STR(clean("\xe9t\xe9", GR_ENC_LATIN1), "\xc3\xa9t\xc3\xa9");
    CHECK_STR(clean("\xc3\xa9t\xc3\xa9", GR_ENC_LATIN1), "\xc3\xa9t\xc3\xa9"); /* already UTF-8: kept */
    CHECK_STR(clean("\xe9t\xe9", GR_ENC_UTF8), "(null)");
    CHECK_HAS(gr_error_message(), "f:1: field 'x': invalid UTF-8 at byte 1");
}

static void test_utf8(void)
{
    size_t bad = 99;
    const char *ok = "abc \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
    CHECK(gr_utf8_valid(ok, strlen(ok), &bad));
    CHECK(!gr_utf8_valid(ok, strlen(ok) - 1, &bad)); /* cut inside the last character */
    CHECK_EQ_INT(bad, 11);
    CHECK(!gr_utf8_valid("ab\xc0\xaf", 4, &bad)); /* overlong */
    CHECK_EQ_INT(bad, 2);
    CHECK(!gr_utf8_valid("\xed\xa0\x80", 3, &bad)); /* surrogate */
    CHECK(!gr_utf8_valid("\xf4\x90\x80\x80", 4, &bad)); /* > U+10FFFF */
    CHECK(!gr_utf8_valid("a\xe2\x82", 3, &bad)); /* truncated */
    CHECK_EQ_INT(bad, 1);
    CHECK(!gr_utf8_valid("\x80", 1, NULL));
    char *s = gr_latin1_to_utf8("\xff\x41", 2);
    CHECK_STR(s, "\xc3\xbf" "A");
    gr_free(s);
}

static void test_fields(void)
{
    char line[] = "a,\"b,c\",\"d \"\"e\"\"\",,\"\"";
    char *f[8];
    int n = gr_fields_split(line, strlen(line), ',', 1, f, 8, "p", 3);
    CHECK_EQ_INT(n, 5);
    if (n == 5) {
        CHECK_STR(f[0], "a");
        CHECK_STR(f[1], "b,c");
        CHECK_STR(f[2], "d \"e\"");
        CHECK_STR(f[3], "");
        CHECK_STR(f[4], "");
    }
    char l2[] = "x\ty\t";
    CHECK_EQ_INT(gr_fields_split(l2, strlen(l2), '\t', 0, f, 1, "p", 1), 3); /* counts beyond max */
    CHECK_STR(f[0], "x");
    char l3[] = "a,\"b";
    CHECK_EQ_INT(gr_fields_split(l3, strlen(l3), ',', 1, f, 8, "p", 7), -1);
    CHECK_HAS(gr_error_message(), "p:7: field 2: broken quoting");
    char l4[] = "1::Title: A::B::Drama";
    CHECK_EQ_INT(gr_fields_split_str(l4, "::", f, 8), 4);
    CHECK_STR(f[1], "Title: A");
    char *const hdr[] = {"userId", "MovieID"};
    static const char *const names[] = {"movieid", NULL};
    CHECK_EQ_INT(gr_fields_find(hdr, 2, names), 1);
}

static void test_numbers(void)
{
    int64_t v;
    float x;
    CHECK(gr_parse_i64(" 42 ", &v, "p", 1, "n") == GR_OK && v == 42);
    CHECK(gr_parse_i64("-9223372036854775808", &v, "p", 1, "n") == GR_OK && v == INT64_MIN);
    CHECK(gr_parse_i64("9223372036854775808", &v, "p", 1, "n") == GR_ERR);
    CHECK(gr_parse_i64("", &v, "p", 1, "n") == GR_ERR);
    CHECK(gr_parse_i64("0x10", &v, "p", 1, "n") == GR_ERR);
    CHECK(gr_parse_float("4.5", &x, "p", 1, "r") == GR_OK && x == 4.5f);
    CHECK(gr_parse_float("-1e-3", &x, "p", 1, "r") == GR_OK);
    CHECK(gr_parse_float("inf", &x, "p", 1, "r") == GR_ERR);
    CHECK(gr_parse_float("0x1p3", &x, "p", 1, "r") == GR_ERR);
    CHECK(gr_parse_float(".", &x, "p", 1, "r") == GR_ERR);
    CHECK(gr_parse_float("1e40", &x, "p", 1, "r") == GR_ERR);
    CHECK(gr_parse_time("978300760.0", &v, "p", 1, "t") == GR_OK && v == 978300760);
    CHECK(gr_parse_time("1238536800001", &v, "p", 1, "t") == GR_OK && v == 1238536800001LL);
    CHECK(gr_parse_time("1e10", &v, "p", 1, "t") == GR_OK && v == 10000000000LL);
    CHECK(gr_parse_time("1e19", &v, "p", 1, "t") == GR_ERR);
    CHECK_HAS(gr_error_message(), "p:1: field 't': '1e19' is not a timestamp");
}

static void test_line_reader(void)
{
    const char *p = gr_test_write_file("lines.txt", "\xef\xbb\xbfone\r\ntwo\n\n\"a\nb\",c\nlast");
    gr_lines *r = gr_lines_open(p);
    REQUIRE(r);
    char *line;
    size_t len;
    CHECK(gr_lines_next(r, &line, &len) == 1);
    CHECK_STR(line, "one"); /* BOM and CR removed */
    CHECK(gr_lines_next(r, &line, &len) == 1);
    CHECK_STR(line, "two");
    CHECK(gr_lines_next(r, &line, &len) == 1);
    CHECK_EQ_INT(len, 0);
    CHECK(gr_lines_next_record(r, ',', &line, &len) == 1);
    CHECK_STR(line, "\"a\nb\",c");
    CHECK_EQ_INT(gr_lines_lineno(r), 4);
    CHECK(gr_lines_next(r, &line, &len) == 1);
    CHECK_STR(line, "last");
    CHECK_EQ_INT(gr_lines_lineno(r), 6);
    CHECK(gr_lines_next(r, &line, &len) == 0);
    gr_lines_close(r);

    /* gzip, with a line longer than the read chunk */
    char gzp[600];
    snprintf(gzp, sizeof gzp, "%s/long.gz", gr_test_tmpdir());
    gzFile g = gzopen(gzp, "wb");
    size_t big = 700000;
    char *s = malloc(big + 1);
    memset(s, 'x', big);
    s[big] = '\0';
    gzputs(g, "h\n");
    gzputs(g, s);
    gzputs(g, "\nend\n");
    gzclose(g);
    r = gr_lines_open(gzp);
    REQUIRE(r);
    CHECK(gr_lines_next(r, &line, &len) == 1 && !strcmp(line, "h"));
    CHECK(gr_lines_next(r, &line, &len) == 1 && len == big && line[big - 1] == 'x');
    CHECK(gr_lines_next(r, &line, &len) == 1 && !strcmp(line, "end"));
    CHECK(gr_lines_next(r, &line, &len) == 0);
    gr_lines_close(r);
    free(s);
    CHECK(gr_lines_open("/nonexistent/x") == NULL);
    CHECK_HAS(gr_error_message(), "/nonexistent/x: cannot open");
}

/* gr_table: delimiter detection, quoting across lines, header copies that
 * outlive the line buffer, field counts, columns; rows -> builder. */
static void test_table(void)
{
    gr_table t;
    /* the header's long names must survive reading longer rows (the line buffer grows) */
    char big[9000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    char *text = malloc(sizeof big + 256);
    REQUIRE(text);
    snprintf(text, sizeof big + 256, "User\tITEM\tt\n\nu1\t\"a\nb\"\t%s\nu2\ti\n", big);
    const char *p = gr_test_write_file("t.tsv", text);
    free(text);
    REQUIRE(gr_table_open(&t, p, NULL, 1, 1) == GR_OK);
    CHECK_STR(t.delim, "\t");
    static const char *const n_user[] = {"user", NULL}, *const n_item[] = {"item", NULL},
                             *const n_none[] = {"none", NULL};
    CHECK_EQ_INT(gr_table_col(&t, n_user, 1), 0); /* case-insensitive */
    CHECK_EQ_INT(gr_table_col(&t, n_none, 0), -1);
    CHECK_EQ_INT(gr_table_col(&t, n_none, 1), -1);
    CHECK_HAS(gr_error_message(), "t.tsv:1: field 'none': column missing");
    CHECK_EQ_INT(gr_table_next(&t), 1);
    CHECK_EQ_INT(t.ln, 3);
    CHECK_STR(t.f[1], "a\nb");
    CHECK_EQ_INT(strlen(t.f[2]), sizeof big - 1);
    CHECK_STR(t.head[0], "User");
    CHECK_EQ_INT(gr_table_col(&t, n_item, 1), 1);
    CHECK_EQ_INT(gr_table_next(&t), -1); /* 2 fields, the header has 3 */
    CHECK_HAS(gr_error_message(), "t.tsv:5: expected 3 TAB-separated fields as in the header, found 2");
    gr_table_close(&t);
    gr_table_close(&t); /* twice is fine */

    /* no header, a string delimiter, a fixed count */
    p = gr_test_write_file("t.dat", "1::2::3\n\n4::5::6::7\n");
    REQUIRE(gr_table_open(&t, p, "::", 0, 0) == GR_OK);
    gr_table_expect(&t, 3, "(a::b::c)");
    CHECK_EQ_INT(gr_table_next(&t), 1);
    CHECK(t.n == 3 && !strcmp(t.f[2], "3"));
    CHECK_EQ_INT(gr_table_next(&t), -1);
    CHECK_HAS(gr_error_message(), "t.dat:3: expected 3 '::'-separated fields (a::b::c), found 4");
    gr_table_close(&t);
    CHECK_EQ_INT(gr_table_open(&t, gr_test_write_file("e.csv", ""), NULL, 1, 1), GR_ERR);
    CHECK_HAS(gr_error_message(), "e.csv:1: field 'header': empty file");

    /* rows -> interactions: canonical numeric ids, integer times, file order without times */
    p = gr_test_write_file("r.csv", "rating,user,item\n4.5,007,10\n3,7,011\n");
    REQUIRE(gr_table_open(&t, p, NULL, 1, 1) == GR_OK);
    static const char *const n_time[] = {"time", NULL}, *const n_rating[] = {"rating", NULL};
    const char *const *const cols[4] = {n_user, n_item, n_time, n_rating};
    gr_inter_cols c;
    REQUIRE(gr_table_inter_cols(&t, cols, &c) == GR_OK);
    CHECK(c.col[0] == 1 && c.col[1] == 2 && c.col[2] == -1 && c.col[3] == 0);
    CHECK_STR(c.name[1], "item");
    c.numeric_ids = 1;
    gr_builder *b = gr_builder_init("r", "csv");
    REQUIRE(b);
    CHECK_EQ_INT(gr_table_read_interactions(&t, b, &c), GR_OK);
    gr_table_close(&t);
    gr_builder_set_flags(b, 0, 1);
    gr_dataset *d = gr_builder_finish(b);
    REQUIRE(d);
    CHECK_EQ_INT(d->n_users, 1);
    CHECK_STR(d->user_key[0], "7");
    CHECK_STR(d->item_key[1], "11");
    CHECK(d->inter_time[0] == 0 && d->inter_time[1] == 1);
    CHECK_NEAR(d->inter_rating[0], 4.5, 0);
    gr_dataset_free(d);
    /* no rows at all */
    p = gr_test_write_file("r0.csv", "user,item\n\n");
    REQUIRE(gr_table_open(&t, p, NULL, 1, 1) == GR_OK);
    REQUIRE(gr_table_inter_cols(&t, cols, &c) == GR_OK);
    b = gr_builder_init("r0", "csv");
    CHECK_EQ_INT(gr_table_read_interactions(&t, b, &c), GR_ERR);
    CHECK_HAS(gr_error_message(), "r0.csv:3: field 'user': no interaction records found");
    gr_builder_free(b);
    gr_table_close(&t);
}

static void test_strmap(void)
{
    gr_strmap m;
    gr_strmap_init(&m);
    static char keys[5000][16];
    for (int i = 0; i < 5000; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        CHECK_EQ_INT(gr_strmap_put(&m, keys[i], strlen(keys[i]), i), i);
    }
    CHECK_EQ_INT(gr_strmap_put(&m, "k7", 2, 99), 7); /* present: old value */
    int bad = 0;
    for (int i = 0; i < 5000; i++) bad += gr_strmap_get(&m, keys[i], strlen(keys[i])) != i;
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(gr_strmap_get(&m, "k5000", 5), -1);
    CHECK_EQ_INT(gr_strmap_get(&m, "k1", 1), -1); /* prefix */
    CHECK_EQ_INT((long long)m.n, 5000);
    gr_strmap_free(&m);
}

static void test_builder(void)
{
    gr_builder *b = gr_builder_init("t", "synth");
    REQUIRE(b);
    CHECK(gr_builder_item_text(b, "only-text", "T", NULL, NULL, NULL) == GR_OK);
    CHECK(gr_builder_item_text(b, "i2", "Two", "g", NULL, NULL) == GR_OK);
    CHECK(gr_builder_item_text(b, "i2", NULL, NULL, "br", NULL) == GR_OK); /* NULL keeps title */
    CHECK(gr_builder_item_text(b, "i2", "\xff", NULL, NULL, NULL) == GR_ERR);
    CHECK_HAS(gr_error_message(), "item 'i2': title is not valid UTF-8");
    CHECK(gr_builder_add(b, "u", "i1", 7, NAN) == GR_OK);
    CHECK(gr_builder_add(b, "u", "i2", 7, NAN) == GR_OK);
    CHECK(gr_builder_add(b, "v", "i3", 1, NAN) == GR_OK);
    CHECK(gr_builder_add(b, "u", "i3", 3, NAN) == GR_OK);
    CHECK(gr_builder_add(b, "u", "i4", 7, NAN) == GR_OK);
    gr_dataset *d = gr_builder_finish(b);
    REQUIRE(d);
    CHECK(!d->has_rating && d->inter_rating == NULL);
    CHECK_EQ_INT(d->n_items, 4);
    CHECK_EQ_INT(d->n_users, 2);
    /* u: i3 (t3), then the t7 ties in add order i1 i2 i4 */
    int32_t expect[4] = {2, 0, 1, 3};
    for (int k = 0; k < 4; k++) CHECK_EQ_INT(d->inter_item[k], expect[k]);
    CHECK_STR(d->item_key[1], "i2");
    CHECK_STR(d->item_title[1], "Two");
    CHECK_STR(d->item_genres[1], "g");
    CHECK_STR(d->item_brand[1], "br");
    CHECK_STR(d->item_text[1], "");
    gr_dataset_free(d);

    /* order only: times become positions */
    b = gr_builder_init("t", "x");
    gr_builder_set_flags(b, 0, 1);
    gr_builder_add(b, "u", "a", 100, 1);
    gr_builder_add(b, "u", "b", 50, 2);
    d = gr_builder_finish(b);
    REQUIRE(d);
    CHECK(d->has_rating && !d->has_time);
    CHECK_EQ_INT(d->inter_time[0], 0);
    CHECK_EQ_INT(d->inter_time[1], 1);
    CHECK_EQ_INT(d->inter_item[0], 1); /* b (time 50) first */
    gr_dataset_free(d);
    gr_builder_free(gr_builder_init("unused", "x"));
}

int main(void)
{
    GR_RUN(test_text_clean);
    GR_RUN(test_utf8);
    GR_RUN(test_fields);
    GR_RUN(test_numbers);
    GR_RUN(test_line_reader);
    GR_RUN(test_table);
    GR_RUN(test_strmap);
    GR_RUN(test_builder);
    return gr_test_finish();
}
