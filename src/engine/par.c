/* The engine's one-region-per-pass machinery (par.h): the team mark, the
 * pass switch, the pass thread count and the collective copy/zero helpers. */
#include "par.h"
#include "genrec/common.h"
#include "vmath.h"

#include <stdlib.h>
#include <string.h>

_Thread_local int gr_par_team_level;

/* -1: not decided yet (read GENREC_PASS_REGION on first use) */
static int pass_region = -1;

void gr_ops_set_pass_region(int on) { __atomic_store_n(&pass_region, on != 0, __ATOMIC_RELAXED); }

int gr_ops_pass_region(void)
{
    int v = __atomic_load_n(&pass_region, __ATOMIC_RELAXED);
    if (v < 0) {
        const char *e = getenv("GENREC_PASS_REGION");
        v = !(e && !strcmp(e, "0"));
        int expected = -1;
        __atomic_compare_exchange_n(&pass_region, &expected, v, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
        v = __atomic_load_n(&pass_region, __ATOMIC_RELAXED);
    }
    return v;
}

int gr_par_pass_threads(double work, int n_ops)
{
    return gr_ops_threads(work / (n_ops > 0 ? n_ops : 1));
}

static void copy_body(float *dst, const float *src, int64_t n)
{
#pragma omp for simd schedule(dynamic, GR_FLAT_CHUNK)
    for (int64_t i = 0; i < n; i++) dst[i] = src[i];
}

static void zero_body(float *p, int64_t n)
{
#pragma omp for simd schedule(dynamic, GR_FLAT_CHUNK)
    for (int64_t i = 0; i < n; i++) p[i] = 0.0f;
}

/* Parallel fill/copy of activation-sized arrays (a serial memset would leave
 * the other threads idle). */
void gr_par_copy(float *dst, const float *src, int64_t n)
{
    GR_PAR_RUN(gr_ops_threads((double)n), copy_body(dst, src, n));
}

void gr_par_zero(float *p, int64_t n)
{
    GR_PAR_RUN(gr_ops_threads((double)n), zero_body(p, n));
}
