#include "gr_test.h"

#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int gr_test_cur_failed;
static int n_pass, n_fail, n_skip, cur_skipped;
static const char *cur_name = "";

void gr_test_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "FAIL %s (%s:%d): ", cur_name, file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    gr_test_cur_failed++;
}

void gr_test_skip(const char *why)
{
    printf("SKIP %s: %s\n", cur_name, why);
    cur_skipped = 1;
}

void gr_test_run(const char *name, void (*fn)(void))
{
    cur_name = name;
    gr_test_cur_failed = 0;
    cur_skipped = 0;
    fn();
    if (gr_test_cur_failed) { n_fail++; printf("not ok %s\n", name); }
    else if (cur_skipped) n_skip++;
    else { n_pass++; printf("ok %s\n", name); }
    fflush(stdout);
}

int gr_test_finish(void)
{
    printf("%d passed, %d failed, %d skipped\n", n_pass, n_fail, n_skip);
    if (n_fail) return 1;
    if (n_skip && !n_pass) return 77;
    return 0;
}

const char *gr_test_shared(const char *rel)
{
    static char buf[8][4096];
    static int slot;
    const char *root = getenv("GENREC_SHARED");
    if (!root) root = "../shared";
    char *b = buf[slot++ & 7];
    snprintf(b, sizeof buf[0], "%s/%s", root, rel);
    struct stat st;
    return stat(b, &st) == 0 ? b : NULL;
}

const char *gr_test_tmpdir(void)
{
    static char dir[256];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/genrec-test-XXXXXX");
        if (!mkdtemp(dir)) { perror("mkdtemp"); exit(1); }
    }
    return dir;
}

const char *gr_test_path(const char *name)
{
    static char buf[8][512];
    static int slot;
    char *b = buf[slot++ & 7];
    snprintf(b, sizeof buf[0], "%s/%s", gr_test_tmpdir(), name);
    return b;
}

const char *gr_test_write_file(const char *name, const char *text)
{
    const char *b = gr_test_path(name);
    FILE *f = fopen(b, "wb");
    if (!f) { perror(b); exit(1); }
    fwrite(text, 1, strlen(text), f);
    fclose(f);
    return b;
}

char *gr_test_read_file(const char *path, size_t *len)
{
    char saved[1024]; /* keep the library's error message for the test to check */
    snprintf(saved, sizeof saved, "%s", gr_error_message());
    size_t n;
    char *b = gr_read_file(path, 0, &n);
    if (b && len) *len = n;
    gr_errorf("%s", saved);
    return b;
}

const char *gr_test_read_text(const char *path)
{
    static char *ring[4];
    static int slot;
    char **b = &ring[slot++ & 3];
    free(*b);
    *b = gr_test_read_file(path, NULL);
    return *b;
}

void gr_test_save_seed(const char *path, const char *name)
{
    const char *dir = getenv("GENREC_WRITE_FUZZ_CORPUS");
    if (!dir) return;
    size_t n;
    char *d = gr_test_read_file(path, &n), out[1024];
    snprintf(out, sizeof out, "%s/%s", dir, name);
    FILE *f = fopen(out, "wb");
    if (d && f) fwrite(d, 1, n, f);
    if (f) fclose(f);
    free(d);
}

int32_t gr_test_item_of(const gr_dataset *d, const char *key)
{
    for (int32_t i = 0; i < d->n_items; i++)
        if (!strcmp(d->item_key[i], key)) return i;
    return -1;
}

int32_t gr_test_user_of(const gr_dataset *d, const char *key)
{
    for (int32_t u = 0; u < d->n_users; u++)
        if (!strcmp(d->user_key[u], key)) return u;
    return -1;
}
