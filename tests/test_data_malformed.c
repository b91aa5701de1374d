/* Malformed dataset files: every case must return NULL (never crash) with a
 * message naming the file, the line and the field. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "gr_test.h"
#include "genrec/dataset.h"
#include "genrec/json.h"

static int case_no;

/* A fresh directory tmpdir/cN; returns its path. */
static const char *fresh(void)
{
    static char dir[512];
    snprintf(dir, sizeof dir, "%s/c%d", gr_test_tmpdir(), ++case_no);
    mkdir(dir, 0755);
    return dir;
}

static void put(const char *dir, const char *name, const char *text, size_t len)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (!f) { perror(p); exit(1); }
    fwrite(text, 1, len, f);
    fclose(f);
}
#define PUT(dir, name, lit) put(dir, name, lit, sizeof(lit) - 1)

/* Load DIR (format F or auto) and expect failure whose message contains all
 * of the given substrings. */
static void expect_fail(const char *dir, const char *fmt, const char *a, const char *b, const char *c,
                        const char *d, int line)
{
    gr_load_opts o = gr_load_opts_default();
    o.format = fmt;
    gr_error_clear();
    gr_dataset *ds = gr_dataset_load(dir, &o);
    if (ds) {
        gr_test_fail(__FILE__, line, "loading %s succeeded, expected an error", dir);
        gr_dataset_free(ds);
        return;
    }
    const char *m = gr_error_message();
    if (getenv("GR_TEST_VERBOSE")) printf("  %s\n", m);
    const char *want[4] = {a, b, c, d};
    for (int k = 0; k < 4; k++)
        if (want[k] && !strstr(m, want[k]))
            gr_test_fail(__FILE__, line, "message \"%s\" lacks \"%s\"", m, want[k]);
}
#define FAIL4(dir, fmt, a, b, c, d) expect_fail(dir, fmt, a, b, c, d, __LINE__)

static void test_field_count(void)
{
    const char *d = fresh();
    PUT(d, "u.data", "1\t2\t3\t4\n1\t2\t3\n");
    FAIL4(d, NULL, "u.data:2:", "fields", "found 3", NULL);
    d = fresh();
    PUT(d, "ratings.dat", "1::2::3::4\n1::2::3::4::5\n");
    FAIL4(d, NULL, "ratings.dat:2:", "fields", "found 5", NULL);
    d = fresh();
    PUT(d, "ratings.csv", "userId,movieId,rating,timestamp\n1,2,3,4\n\n1,2\n");
    FAIL4(d, NULL, "ratings.csv:4:", "fields", "found 2", NULL);
    d = fresh();
    PUT(d, "x.inter", "user_id:token\titem_id:token\n1\t2\n1\t2\t3\n");
    FAIL4(d, NULL, "x.inter:3:", "fields", "found 3", NULL);
    d = fresh();
    PUT(d, "u.data", "1\t2\t3\t4\n");
    PUT(d, "u.item", "1|Title|||url|0|1\n");
    FAIL4(d, NULL, "u.item:1:", "24", "fields", "found 7");
}

static void test_bad_numbers(void)
{
    const char *d = fresh();
    PUT(d, "u.data", "1\t2\t3\t4\nabc\t2\t3\t4\n");
    FAIL4(d, NULL, "u.data:2:", "field 'user'", "'abc' is not an integer", NULL);
    d = fresh();
    PUT(d, "u.data", "1\t2x\t3\t4\n");
    FAIL4(d, NULL, "u.data:1:", "field 'item'", "2x", NULL);
    d = fresh();
    PUT(d, "u.data", "1\t2\t3\t4\n1\t2\t3\t1998-01-01\n");
    FAIL4(d, NULL, "u.data:2:", "field 'timestamp'", "not an integer", NULL);
    d = fresh();
    PUT(d, "ratings.dat", "1::2::five::4\n");
    FAIL4(d, NULL, "ratings.dat:1:", "field 'Rating'", "not a number", NULL);
    d = fresh();
    PUT(d, "ratings.csv", "userId,movieId,rating,timestamp\n1,2,nan,4\n");
    FAIL4(d, NULL, "ratings.csv:2:", "field 'rating'", "not a number", NULL);
    d = fresh();
    PUT(d, "interactions.csv", "user,item,timestamp\nu,i,12abc\n");
    FAIL4(d, NULL, "interactions.csv:2:", "field 'timestamp'", "not a timestamp", NULL);
    d = fresh();
    PUT(d, "x.inter", "user_id:token\titem_id:token\trating:float\n1\t2\t1e999\n");
    FAIL4(d, NULL, "x.inter:2:", "field 'rating'", NULL, NULL);
    d = fresh();
    PUT(d, "ratings.csv", "userId,movieId,rating,timestamp\n-1,2,3,4\n");
    FAIL4(d, NULL, "ratings.csv:2:", "field 'userId'", "negative", NULL);
    d = fresh();
    PUT(d, "u.data", "1\t2\t3\t99999999999999999999\n");
    FAIL4(d, NULL, "u.data:1:", "field 'timestamp'", NULL, NULL);
}

static void test_broken_quoting(void)
{
    const char *d = fresh();
    PUT(d, "ratings.csv", "userId,movieId,rating,timestamp\n1,2,3,4\n");
    PUT(d, "movies.csv", "movieId,title,genres\n2,\"Ok, fine\",Drama\n3,\"Bad\"x,Drama\n");
    FAIL4(d, NULL, "movies.csv:3:", "field 2", "broken quoting", NULL);
    d = fresh();
    PUT(d, "ratings.csv", "userId,movieId,rating,timestamp\n1,2,3,4\n");
    PUT(d, "movies.csv", "movieId,title,genres\n2,\"Never closed,Drama\n3,x,y\n");
    FAIL4(d, NULL, "movies.csv:2:", "field 2", "broken quoting", "never closed");
    d = fresh();
    PUT(d, "interactions.csv", "user,item\n\"u1\"\"\",i\n\"u2\" ,i\n");
    FAIL4(d, NULL, "interactions.csv:3:", "field 1", "broken quoting", NULL);
}

static void write_gz(const char *dir, const char *name, const char *text, size_t cut)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    gzFile g = gzopen(p, "wb");
    gzwrite(g, text, (unsigned)strlen(text));
    gzclose(g);
    if (cut) {
        struct stat st;
        stat(p, &st);
        if (truncate(p, st.st_size - (off_t)cut) != 0) perror("truncate");
    }
}

static void test_gzip(void)
{
    char big[20000];
    size_t w = 0;
    for (int i = 0; w + 64 < sizeof big; i++)
        w += (size_t)snprintf(big + w, sizeof big - w, "{\"reviewerID\": \"U%d\", \"asin\": \"I%d\", \"unixReviewTime\": %d}\n",
                              i % 97, i % 31, i);
    const char *d = fresh();
    write_gz(d, "reviews.json.gz", big, 200);
    FAIL4(d, NULL, "reviews.json.gz:", "truncated gzip", NULL, NULL);
    /* the gzip trailer (CRC) cut off only */
    d = fresh();
    write_gz(d, "reviews.json.gz", big, 4);
    FAIL4(d, NULL, "reviews.json.gz:", "gzip", NULL, NULL);
    /* corrupt data: flip bytes in the middle */
    d = fresh();
    write_gz(d, "u.data.gz", "1\t2\t3\t4\n1\t3\t3\t5\n2\t3\t4\t5\n", 0);
    char p[1024];
    snprintf(p, sizeof p, "%s/u.data.gz", d);
    FILE *f = fopen(p, "r+b");
    fseek(f, 12, SEEK_SET);
    fputc(0xFF, f);
    fputc(0x00, f);
    fputc(0xAA, f);
    fclose(f);
    FAIL4(d, NULL, "u.data.gz:", "gzip", NULL, NULL);
}

static void test_invalid_utf8(void)
{
    const char *d = fresh();
    PUT(d, "ratings.csv", "userId,movieId,rating,timestamp\n1,2,3,4\n");
    PUT(d, "movies.csv", "movieId,title,genres\n2,Caf\xe9 (1995),Drama\n");
    FAIL4(d, NULL, "movies.csv:2:", "field 'title'", "invalid UTF-8", NULL);
    d = fresh();
    PUT(d, "x.inter", "user_id:token\titem_id:token\nu\xff\t1\n");
    FAIL4(d, NULL, "x.inter:2:", "field 'user_id'", "invalid UTF-8", NULL);
    d = fresh();
    PUT(d, "r.json", "{\"reviewerID\": \"A\xc3(\", \"asin\": \"B\", \"unixReviewTime\": 1}\n");
    FAIL4(d, NULL, "r.json:1:", "invalid UTF-8", NULL, NULL);
    /* Latin-1 formats never reject bytes: converted instead */
    d = fresh();
    PUT(d, "u.data", "1\t2\t3\t4\n");
    PUT(d, "u.item", "2|Caf\xe9|||u|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n");
    gr_dataset *ds = gr_dataset_load(d, NULL);
    REQUIRE(ds);
    CHECK_STR(ds->item_title[0], "Caf\xc3\xa9");
    gr_dataset_free(ds);
}

static void test_unknown_and_empty(void)
{
    const char *d = fresh();
    PUT(d, "notes.txt", "hello\n");
    FAIL4(d, NULL, "unknown dataset layout", "u.data", "ratings.csv", "interactions.csv");
    FAIL4(d, "nosuch", "unknown dataset format", "nosuch", NULL, NULL);
    char p[600];
    snprintf(p, sizeof p, "%s/missing", d);
    FAIL4(p, NULL, "missing", "no such file", NULL, NULL);
    d = fresh();
    PUT(d, "u.data", "");
    FAIL4(d, NULL, "u.data:1:", "field 'user'", "no interaction", NULL);
    d = fresh();
    PUT(d, "ratings.csv", "");
    FAIL4(d, NULL, "ratings.csv:1:", "header", "empty file", NULL);
    d = fresh();
    PUT(d, "ratings.csv", "userId,movieId,rating,timestamp\n");
    FAIL4(d, NULL, "ratings.csv:2:", "field 'user", "no interaction", NULL);
    d = fresh();
    PUT(d, "x.inter", "");
    FAIL4(d, NULL, "x.inter:1:", "header", "empty", NULL);
    d = fresh();
    PUT(d, "r.json", "\n\n");
    FAIL4(d, NULL, "r.json:3:", "field 'reviewerID'", "no review", NULL);
    d = fresh();
    PUT(d, "S.test.inter", "user_id:token\titem_id_list:token_seq\titem_id:token\n");
    FAIL4(d, NULL, "S.test.inter:2:", "field 'user_id'", "no interaction", NULL);
}

static void test_headers(void)
{
    const char *d = fresh();
    PUT(d, "ratings.csv", "user,movieId,rating\n1,2,3\n");
    FAIL4(d, NULL, "ratings.csv:1:", "field 'userId'", "missing", NULL);
    d = fresh();
    PUT(d, "x.inter", "user_id:token\titem_id:integer\n1\t2\n");
    FAIL4(d, NULL, "x.inter:1:", "field 'item_id'", "unknown type", NULL);
    d = fresh();
    PUT(d, "x.inter", "user_id\titem_id\n1\t2\n");
    FAIL4(d, NULL, "x.inter:1:", "field 1", "name:type", NULL);
    d = fresh();
    PUT(d, "x.inter", "user_id:token\ttimestamp:float\n1\t2\n");
    FAIL4(d, NULL, "x.inter:1:", "field 'item_id'", "missing", NULL);
    d = fresh();
    PUT(d, "S.test.inter", "user_id:token\titem_id:token\n1\t2\n");
    FAIL4(d, NULL, "S.test.inter:1:", "field 'item_id_list'", "missing", NULL);
    d = fresh();
    PUT(d, "S.test.inter", "user_id:token\titem_id_list:token_seq\titem_id:token\n1\t2  3\t4\n");
    FAIL4(d, NULL, "S.test.inter:2:", "field 'item_id_list'", "empty item", NULL);
}

static void test_json(void)
{
    const char *d = fresh();
    PUT(d, "r.json", "{'reviewerID': 'A', 'asin': 'B'}\n");
    FAIL4(d, NULL, "r.json:1:2:", "python-dict", "only strict JSON", NULL);
    d = fresh();
    PUT(d, "r.json", "{\"reviewerID\": \"A\", \"asin\": \"B\", \"unixReviewTime\": 1}\n{\"reviewerID\": \"A\",}\n");
    FAIL4(d, NULL, "r.json:2:20:", "object key", NULL, NULL);
    d = fresh();
    PUT(d, "r.json", "{\"reviewerID\": \"A\", \"asin\": \"B\"}\n");
    FAIL4(d, NULL, "r.json:1:", "field 'unixReviewTime'", "missing", NULL);
    d = fresh();
    PUT(d, "r.json", "{\"reviewerID\": \"A\", \"asin\": 5, \"unixReviewTime\": 1}\n");
    FAIL4(d, NULL, "r.json:1:", "field 'asin'", "string", NULL);
    d = fresh();
    PUT(d, "r.json", "{\"reviewerID\": \"A\", \"asin\": \"B\", \"unixReviewTime\": \"1\"}\n");
    FAIL4(d, NULL, "r.json:1:", "field 'unixReviewTime'", "must be a number", NULL);
    d = fresh();
    PUT(d, "r.json", "{\"reviewerID\": \"A\", \"asin\": \"B\", \"unixReviewTime\": 1e300}\n");
    FAIL4(d, NULL, "r.json:1:", "field 'unixReviewTime'", "not a timestamp", NULL);
    d = fresh();
    PUT(d, "r.json", "[1, 2]\n");
    FAIL4(d, NULL, "r.json:1:", "JSON object", NULL, NULL);
    d = fresh();
    char deep[GR_JSON_MAX_DEPTH + 16];
    memset(deep, '[', GR_JSON_MAX_DEPTH + 8);
    strcpy(deep + GR_JSON_MAX_DEPTH + 8, "\n");
    put(d, "r.json", deep, strlen(deep));
    FAIL4(d, NULL, "r.json:1:", "nesting", NULL, NULL);
    d = fresh();
    PUT(d, "r.json", "{\"reviewerID\": \"A\", \"asin\": \"B\", \"unixReviewTime\": 1, \"x\": \"a\tb\"}\n");
    FAIL4(d, NULL, "r.json:1:", "control character", NULL, NULL);
    d = fresh();
    PUT(d, "r.json", "{\"reviewerID\": \"A\", \"asin\": \"B\", \"unixReviewTime\": 1}\n");
    PUT(d, "meta_x.json", "{\"asin\": \"B\", \"title\": \"\\q\"}\n");
    FAIL4(d, NULL, "meta_x.json:1:", "invalid escape", NULL, NULL);
}

static void test_binary(void)
{
    const char *d = fresh();
    put(d, "u.data", "1\t2\t3\t4\n1\t2\0\t3\n", 15);
    FAIL4(d, NULL, "u.data:2:", "NUL byte", NULL, NULL);
}

static void test_cache_corrupt(void)
{
    const char *d = fresh();
    PUT(d, "interactions.csv", "user,item,timestamp,rating\na,x,1,5\nb,y,2,4\na,y,3,3\n");
    gr_dataset *ds = gr_dataset_load(d, NULL);
    REQUIRE(ds);
    char p[1024];
    snprintf(p, sizeof p, "%s/c.grds", d);
    REQUIRE(gr_dataset_save_cache(ds, p) == GR_OK);
    gr_dataset_free(ds);
    struct stat st;
    stat(p, &st);
    /* flip one byte in the payload */
    FILE *f = fopen(p, "r+b");
    fseek(f, 40, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 40, SEEK_SET);
    fputc(c ^ 0x55, f);
    fclose(f);
    FAIL4(p, NULL, "c.grds", "checksum", NULL, NULL);
    if (truncate(p, st.st_size / 2) != 0) perror("truncate");
    FAIL4(p, "cache", "c.grds", "corrupt", NULL, NULL);
    PUT(d, "bad.grds", "GRDS\x02\0\0\0xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    snprintf(p, sizeof p, "%s/bad.grds", d);
    FAIL4(p, NULL, "bad.grds", "version 2", NULL, NULL);
    PUT(d, "bad2.grds", "nope");
    snprintf(p, sizeof p, "%s/bad2.grds", d);
    FAIL4(p, NULL, "bad2.grds", "magic", NULL, NULL);
}

int main(void)
{
    GR_RUN(test_field_count);
    GR_RUN(test_bad_numbers);
    GR_RUN(test_broken_quoting);
    GR_RUN(test_gzip);
    GR_RUN(test_invalid_utf8);
    GR_RUN(test_unknown_and_empty);
    GR_RUN(test_headers);
    GR_RUN(test_json);
    GR_RUN(test_binary);
    GR_RUN(test_cache_corrupt);
    return gr_test_finish();
}
