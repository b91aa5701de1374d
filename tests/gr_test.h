/* genrec's small test framework (driven by CTest: one executable per file).
 *
 *   static void test_foo(void) { CHECK(1 + 1 == 2); CHECK_NEAR(x, 1.0, 1e-6); }
 *   int main(void) { GR_RUN(test_foo); return gr_test_finish(); }
 *
 * CHECK* record a failure (file:line and the expression) and continue;
 * REQUIRE* return from the current test function on failure. The program
 * exits 1 if any check failed, 0 otherwise, and 77 (CTest "skipped") when
 * gr_test_skip() was called and nothing failed. The last line printed is
 * "N passed, N failed" (tests, not checks).
 */
#ifndef GR_TEST_H
#define GR_TEST_H
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "genrec/dataset.h"

extern int gr_test_cur_failed;
void gr_test_fail(const char *file, int line, const char *fmt, ...);
void gr_test_run(const char *name, void (*fn)(void));
int gr_test_finish(void);
/* Mark the current test as skipped with a reason (e.g. ../shared absent). */
void gr_test_skip(const char *why);
/* Absolute path of a file under ../shared (from GENREC_SHARED), or NULL when
 * it does not exist. The returned string is static per call slot (ring of 8). */
const char *gr_test_shared(const char *rel);
/* Path of a fresh temporary directory for this test program. */
const char *gr_test_tmpdir(void);
/* Write text to tmpdir/name and return its path (ring of 8 static buffers). */
const char *gr_test_write_file(const char *name, const char *text);
/* tmpdir/name (nothing is created); ring of 8 static buffers. */
const char *gr_test_path(const char *name);
/* The whole file at path with a NUL after it (free with free), or NULL when
 * it cannot be read (no failure recorded); *len (if not NULL) = its size. */
char *gr_test_read_file(const char *path, size_t *len);
/* The whole file as text, in a ring of 4 buffers owned by the framework
 * (valid for the next 3 calls), or NULL when it cannot be read. */
const char *gr_test_read_text(const char *path);
/* With GENREC_WRITE_FUZZ_CORPUS=DIR set, copy the file at path to DIR/name
 * (seeds for fuzz/corpus/); otherwise do nothing. */
void gr_test_save_seed(const char *path, const char *name);
/* Dense id of the item / user with this key in d, or -1. */
int32_t gr_test_item_of(const gr_dataset *d, const char *key);
int32_t gr_test_user_of(const gr_dataset *d, const char *key);

#define GR_RUN(fn) gr_test_run(#fn, fn)

#define CHECK(c) do { if (!(c)) gr_test_fail(__FILE__, __LINE__, "CHECK(%s)", #c); } while (0)
#define REQUIRE(c) do { if (!(c)) { gr_test_fail(__FILE__, __LINE__, "REQUIRE(%s)", #c); return; } } while (0)
#define CHECK_EQ_INT(a, b) do { long long _a = (long long)(a), _b = (long long)(b); \
    if (_a != _b) gr_test_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, _a, _b); } while (0)
#define CHECK_NEAR(a, b, tol) do { double _a = (double)(a), _b = (double)(b); \
    if (!(fabs(_a - _b) <= (tol))) gr_test_fail(__FILE__, __LINE__, "%s ~ %s: %.9g vs %.9g (tol %g)", #a, #b, _a, _b, (double)(tol)); } while (0)
/* relative tolerance: |a-b| <= tol * max(1, |b|) */
#define CHECK_REL(a, b, tol) do { double _a = (double)(a), _b = (double)(b); \
    if (!(fabs(_a - _b) <= (tol) * fmax(1.0, fabs(_b)))) gr_test_fail(__FILE__, __LINE__, "%s ~ %s: %.9g vs %.9g (rel %g)", #a, #b, _a, _b, (double)(tol)); } while (0)
#define CHECK_STR(a, b) do { const char *_a = (a), *_b = (b); \
    if (!_a || !_b || strcmp(_a, _b)) gr_test_fail(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", #a, #b, _a ? _a : "(null)", _b ? _b : "(null)"); } while (0)
/* The string s contains sub. */
#define CHECK_HAS(s, sub) do { const char *_s = (s), *_u = (sub); \
    if (!_s || !strstr(_s, _u)) gr_test_fail(__FILE__, __LINE__, "\"%s\" contains \"%s\"", _s ? _s : "(null)", _u); } while (0)

#endif
