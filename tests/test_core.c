/* Core utilities: errors, parameters, RNG, atomic writes, files and paths,
 * CRC-32, UTF-8. */
#include "gr_test.h"
#include "genrec/common.h"
#include "genrec/rng.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void test_errors(void)
{
    CHECK_EQ_INT(gr_errorf("bad %s at %d", "field", 3), GR_ERR);
    CHECK_STR(gr_error_message(), "bad field at 3");
    gr_error_prefix("x.csv:%d: ", 7);
    CHECK_STR(gr_error_message(), "x.csv:7: bad field at 3");
    CHECK(gr_alloc((size_t)1 << 62, 16) == NULL);
    CHECK_HAS(gr_error_message(), "overflows");
}

static void test_params(void)
{
    const char *kv[] = {"a.x=3", "a.y=0.5", "a.x=4", "a.bad=1z"};
    gr_params p = {kv, 4};
    int64_t i; double d;
    CHECK_EQ_INT(gr_params_int(&p, "a.x", 1, &i), GR_OK);
    CHECK_EQ_INT(i, 4);
    CHECK_EQ_INT(gr_params_float(&p, "a.y", 1, &d), GR_OK);
    CHECK_NEAR(d, 0.5, 0);
    CHECK_EQ_INT(gr_params_int(&p, "a.z", 9, &i), GR_OK);
    CHECK_EQ_INT(i, 9);
    CHECK_EQ_INT(gr_params_int(&p, "a.bad", 9, &i), GR_ERR);
    CHECK_HAS(gr_error_message(), "a.bad");
}

static void test_rng(void)
{
    gr_rng a, b;
    gr_rng_seed(&a, 42);
    gr_rng_seed(&b, 42);
    for (int i = 0; i < 100; i++) CHECK(gr_rng_u64(&a) == gr_rng_u64(&b));
    /* uniformity of gr_rng_below: chi-square over 10 bins */
    int bins[10] = {0};
    for (int i = 0; i < 100000; i++) bins[gr_rng_below(&a, 10)]++;
    double chi = 0;
    for (int i = 0; i < 10; i++) chi += (bins[i] - 10000.0) * (bins[i] - 10000.0) / 10000.0;
    CHECK(chi < 30.0); /* p ~ 4e-4 at 9 dof */
    double s = 0, s2 = 0;
    for (int i = 0; i < 100000; i++) { double x = gr_rng_normal(&a); s += x; s2 += x * x; }
    CHECK_NEAR(s / 100000, 0.0, 0.02);
    CHECK_NEAR(s2 / 100000, 1.0, 0.02);
}

static void test_afile(void)
{
    const char *dir = gr_test_tmpdir();
    char path[600];
    snprintf(path, sizeof path, "%s/out.txt", dir);
    gr_afile a;
    REQUIRE(gr_afile_open(&a, path) == GR_OK);
    fputs("first", a.f);
    CHECK_EQ_INT(gr_afile_commit(&a), GR_OK);
    /* an aborted rewrite leaves the old content */
    REQUIRE(gr_afile_open(&a, path) == GR_OK);
    fputs("second", a.f);
    gr_afile_abort(&a);
    char buf[32] = {0};
    FILE *f = fopen(path, "rb");
    REQUIRE(f != NULL);
    CHECK(fread(buf, 1, sizeof buf - 1, f) == 5);
    fclose(f);
    CHECK_STR(buf, "first");
    /* a directory that does not exist is an error naming the path */
    CHECK_EQ_INT(gr_afile_open(&a, "/nonexistent-dir/x.txt"), GR_ERR);
    CHECK_HAS(gr_error_message(), "/nonexistent-dir/x.txt");
}

static void test_files(void)
{
    const char *dir = gr_test_tmpdir();
    char path[600];
    /* gr_afile writes ordinary 0644 files */
    snprintf(path, sizeof path, "%s/mode.txt", dir);
    gr_afile a;
    REQUIRE(gr_afile_open(&a, path) == GR_OK);
    fputs("0123456789", a.f);
    REQUIRE(gr_afile_commit(&a) == GR_OK);
    struct stat st;
    REQUIRE(stat(path, &st) == 0);
    CHECK_EQ_INT(st.st_mode & 0777, 0644);
    /* gr_read_file: contents + NUL, the size limit, errors naming the path */
    size_t n = 0;
    char *b = gr_read_file(path, 0, &n);
    REQUIRE(b);
    CHECK_EQ_INT(n, 10);
    CHECK_STR(b, "0123456789");
    gr_free(b);
    b = gr_read_file(path, 10, &n);
    CHECK(b && n == 10);
    gr_free(b);
    CHECK(gr_read_file(path, 9, &n) == NULL);
    CHECK_HAS(gr_error_message(), "larger than 9 bytes");
    CHECK(gr_read_file("/nonexistent/f", 0, &n) == NULL);
    CHECK_HAS(gr_error_message(), "/nonexistent/f: cannot open");
    CHECK(gr_read_file(dir, 0, &n) == NULL); /* a directory */
    CHECK_HAS(gr_error_message(), dir);
    /* gr_mkdirs: nested, idempotent, a file in the way is an error */
    char deep[700];
    snprintf(deep, sizeof deep, "%s/x/y/z/", dir);
    CHECK_EQ_INT(gr_mkdirs(deep), GR_OK);
    CHECK_EQ_INT(gr_mkdirs(deep), GR_OK);
    CHECK(gr_path_is_dir(deep) && !gr_path_is_file(deep));
    snprintf(deep, sizeof deep, "%s/mode.txt/sub", dir);
    CHECK_EQ_INT(gr_mkdirs(deep), GR_ERR);
    CHECK_HAS(gr_error_message(), "not a directory");
    /* paths */
    char *j = gr_path_join("a/b//", "c.txt");
    CHECK_STR(j, "a/b/c.txt");
    free(j);
    static const char *const sfx[] = {".inter.gz", ".inter", NULL};
    char *st1 = gr_path_stem("/d/toy.inter.gz", sfx), *st2 = gr_path_stem("/d/dir/", NULL), *st3 = gr_path_stem(".inter", sfx);
    CHECK_STR(st1, "toy");
    CHECK_STR(st2, "dir");
    CHECK_STR(st3, ".inter"); /* never empty */
    free(st1); free(st2); free(st3);
    char *d1 = gr_path_dir("a/b/c"), *d2 = gr_path_dir("c"), *d3 = gr_path_dir("/c");
    CHECK_STR(d1, "a/b");
    CHECK_STR(d2, ".");
    CHECK_STR(d3, "/");
    free(d1); free(d2); free(d3);
    CHECK(gr_str_ends("x.json.gz", ".gz") && !gr_str_ends("gz", ".gz"));
    gr_test_write_file("f.csv.gz", "x");
    char *found = gr_path_find(dir, "f.csv");
    CHECK(found && gr_str_ends(found, "/f.csv.gz"));
    free(found);
    CHECK(gr_path_find(dir, "none.csv") == NULL);
}

static void test_crc32(void)
{
    CHECK_EQ_INT(gr_crc32(0, "123456789", 9), 0xCBF43926u); /* the CRC-32 check value */
    CHECK_EQ_INT(gr_crc32(gr_crc32(0, "1234", 4), "56789", 5), 0xCBF43926u);
    CHECK_EQ_INT(gr_crc32(0, "", 0), 0);
}

static void test_utf8(void)
{
    uint32_t cp;
    CHECK_EQ_INT(gr_utf8_decode((const unsigned char *)"\xC3\xA9", 2, &cp), 2);
    CHECK_EQ_INT(cp, 0xE9);
    CHECK_EQ_INT(gr_utf8_decode((const unsigned char *)"\xF0\x9F\x98\x80", 4, &cp), 4);
    CHECK_EQ_INT(cp, 0x1F600);
    /* invalid: overlong, surrogate, above U+10FFFF, truncated, lone continuation */
    static const char *const bad[] = {"\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xE2\x82", "\x80"};
    for (int k = 0; k < 5; k++) {
        CHECK_EQ_INT(gr_utf8_decode((const unsigned char *)bad[k], strlen(bad[k]), &cp), 1);
        CHECK_EQ_INT(cp, GR_UTF8_INVALID);
    }
    char out[4];
    CHECK_EQ_INT(gr_utf8_encode(0x20AC, out), 3);
    CHECK(!memcmp(out, "\xE2\x82\xAC", 3));
    CHECK_EQ_INT(gr_utf8_encode(0x110000, out), 0);
    CHECK_EQ_INT(gr_utf8_len(0xF0), 4);
    CHECK_EQ_INT(gr_utf8_len('a'), 1);
    size_t at = 99;
    CHECK(gr_utf8_valid("a\xC3\xA9\xF0\x9F\x98\x80", 7, &at));
    CHECK(!gr_utf8_valid("ab\xC3", 3, &at));
    CHECK_EQ_INT(at, 2);
    /* every code point round-trips through encode + decode */
    int bad_rt = 0;
    for (uint32_t c = 0; c <= 0x10FFFF; c += (c < 0x3000 ? 1 : 97)) {
        if (c >= 0xD800 && c <= 0xDFFF) continue;
        size_t k = gr_utf8_encode(c, out);
        uint32_t back;
        bad_rt += gr_utf8_decode((const unsigned char *)out, k, &back) != k || back != c || !gr_utf8_valid(out, k, NULL);
    }
    CHECK_EQ_INT(bad_rt, 0);
}

int main(void)
{
    GR_RUN(test_afile);
    GR_RUN(test_errors);
    GR_RUN(test_params);
    GR_RUN(test_rng);
    GR_RUN(test_files);
    GR_RUN(test_crc32);
    GR_RUN(test_utf8);
    return gr_test_finish();
}
