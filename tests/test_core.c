/* Core utilities: errors, parameters, RNG. */
#include "gr_test.h"
#include "genrec/common.h"
#include "genrec/rng.h"

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

int main(void)
{
    GR_RUN(test_afile);
    GR_RUN(test_errors);
    GR_RUN(test_params);
    GR_RUN(test_rng);
    return gr_test_finish();
}
