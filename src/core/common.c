/* Error reporting, allocation, timing, logging, threads and parameters. */
#include "genrec/common.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- errors ---------------------------------------------------------------- */

static _Thread_local char err_buf[1024];

int gr_errorf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_buf, sizeof err_buf, fmt, ap);
    va_end(ap);
    return GR_ERR;
}

int gr_error_prefix(const char *fmt, ...)
{
    char old[sizeof err_buf];
    memcpy(old, err_buf, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err_buf, sizeof err_buf, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof err_buf)
        snprintf(err_buf + n, sizeof err_buf - (size_t)n, "%s", old);
    return GR_ERR;
}

const char *gr_error_message(void) { return err_buf; }
void gr_error_clear(void) { err_buf[0] = '\0'; }

/* ---- allocation -------------------------------------------------------------- */

void *gr_alloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) {
        gr_errorf("allocation of %zu x %zu bytes overflows", n, size);
        return NULL;
    }
    size_t bytes = n * size;
    bytes = (bytes + 63) & ~(size_t)63;
    if (bytes == 0) bytes = 64;
    void *p = aligned_alloc(64, bytes);
    if (!p) gr_errorf("out of memory allocating %zu bytes", bytes);
    return p;
}

void *gr_calloc(size_t n, size_t size)
{
    void *p = gr_alloc(n, size);
    if (p) memset(p, 0, n * size);
    return p;
}

void *gr_realloc(void *p, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) {
        gr_errorf("allocation of %zu x %zu bytes overflows", n, size);
        return NULL;
    }
    size_t bytes = n * size;
    void *q = realloc(p, bytes ? bytes : 1);
    if (!q) gr_errorf("out of memory allocating %zu bytes", n * size);
    return q;
}

void gr_free(void *p) { free(p); }

char *gr_strndup(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d) { gr_errorf("out of memory copying a string of %zu bytes", n); return NULL; }
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *gr_strdup(const char *s) { return gr_strndup(s, strlen(s)); }

/* ---- time and logging --------------------------------------------------------- */

static double clock_seconds(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double gr_time_now(void) { return clock_seconds(CLOCK_MONOTONIC); }
double gr_cpu_time(void) { return clock_seconds(CLOCK_PROCESS_CPUTIME_ID); }

int gr_verbosity = 1;

void gr_log(int level, const char *fmt, ...)
{
    if (level > gr_verbosity) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fflush(stderr);
}

/* ---- threads --------------------------------------------------------------------- */

static int n_threads_set;

int gr_threads_get(void)
{
    if (n_threads_set > 0) return n_threads_set;
    const char *e = getenv("GENREC_THREADS");
    if (e && atoi(e) > 0) return atoi(e);
    int n = omp_get_num_procs();
    return n > 0 ? n : 1;
}

void gr_threads_set(int n)
{
    n_threads_set = n > 0 ? n : 0;
    omp_set_num_threads(gr_threads_get());
}

/* ---- parameters ---------------------------------------------------------------------- */

static const char *params_find(const gr_params *p, const char *key)
{
    if (!p) return NULL;
    size_t kl = strlen(key);
    const char *found = NULL;
    for (int i = 0; i < p->n; i++)   /* last one wins */
        if (strncmp(p->kv[i], key, kl) == 0 && p->kv[i][kl] == '=') found = p->kv[i] + kl + 1;
    return found;
}

int gr_params_int(const gr_params *p, const char *key, int64_t def, int64_t *out)
{
    *out = def;
    const char *v = params_find(p, key);
    if (!v) return GR_OK;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end) return gr_errorf("parameter %s: '%s' is not an integer", key, v);
    *out = x;
    return GR_OK;
}

int gr_params_float(const gr_params *p, const char *key, double def, double *out)
{
    *out = def;
    const char *v = params_find(p, key);
    if (!v) return GR_OK;
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(x)) return gr_errorf("parameter %s: '%s' is not a number", key, v);
    *out = x;
    return GR_OK;
}

const char *gr_params_str(const gr_params *p, const char *key, const char *def)
{
    const char *v = params_find(p, key);
    return v ? v : def;
}
