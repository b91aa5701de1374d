/* Files and paths: whole-file reads, mkdir -p, path joining and splitting. */
#include "genrec/common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

char *gr_read_file(const char *path, size_t max, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) { gr_errorf("%s: cannot open: %s", path, strerror(errno)); return NULL; }
    if (!max) max = SIZE_MAX - 1;
    struct stat st;
    size_t cap = 1 << 16, n = 0;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= 0) {
        if ((uint64_t)st.st_size > max) {
            fclose(f);
            gr_errorf("%s: larger than %zu bytes", path, max);
            return NULL;
        }
        cap = (size_t)st.st_size + 1; /* exact: one read, then EOF */
    }
    char *buf = malloc(cap);
    if (!buf) { fclose(f); gr_errorf("%s: out of memory reading %zu bytes", path, cap); return NULL; }
    for (;;) {
        if (n + 1 == cap) { /* full: at the end of a regular file, or it grew, or it is a pipe */
            int c = fgetc(f);
            if (c == EOF) break;
            if (n >= max) {
                free(buf);
                fclose(f);
                gr_errorf("%s: larger than %zu bytes", path, max);
                return NULL;
            }
            size_t nc = cap > max / 2 ? max + 1 : 2 * cap;
            char *nb = realloc(buf, nc);
            if (!nb) { free(buf); fclose(f); gr_errorf("%s: out of memory reading %zu bytes", path, nc); return NULL; }
            buf = nb;
            cap = nc;
            buf[n++] = (char)c;
            continue;
        }
        size_t r = fread(buf + n, 1, cap - 1 - n, f);
        n += r;
        if (r == 0) break;
    }
    if (ferror(f)) {
        int e = errno;
        free(buf);
        fclose(f);
        gr_errorf("%s: read error: %s", path, e ? strerror(e) : "I/O error");
        return NULL;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

int gr_mkdirs(const char *dir)
{
    if (!dir || !*dir) return gr_errorf("cannot create a directory with an empty name");
    size_t n = strlen(dir);
    char *buf = gr_strdup(dir);
    if (!buf) return GR_ERR;
    int rc = GR_OK;
    for (size_t i = 1; i <= n && rc == GR_OK; i++) {
        if (buf[i] != '/' && buf[i] != '\0') continue;
        char c = buf[i];
        buf[i] = '\0';
        struct stat st;
        if (stat(buf, &st) != 0) {
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                rc = gr_errorf("%s: cannot create directory: %s", buf, strerror(errno));
        } else if (!S_ISDIR(st.st_mode)) {
            rc = gr_errorf("%s: exists and is not a directory", buf);
        }
        buf[i] = c;
    }
    free(buf);
    return rc;
}

char *gr_path_join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    while (la > 1 && a[la - 1] == '/') la--;
    char *p = malloc(la + lb + 2);
    if (!p) { gr_errorf("out of memory joining paths"); return NULL; }
    memcpy(p, a, la);
    p[la] = '/';
    memcpy(p + la + 1, b, lb + 1);
    return p;
}

int gr_path_is_file(const char *path)
{
    struct stat st;
    return path && stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int gr_path_is_dir(const char *path)
{
    struct stat st;
    return path && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

char *gr_path_find(const char *dir, const char *name)
{
    char *p = gr_path_join(dir, name);
    if (!p) return NULL;
    if (gr_path_is_file(p)) return p;
    size_t n = strlen(p);
    char *q = realloc(p, n + 4);
    if (!q) { free(p); gr_errorf("out of memory"); return NULL; }
    memcpy(q + n, ".gz", 4);
    if (gr_path_is_file(q)) return q;
    free(q);
    return NULL;
}

int gr_str_ends(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && memcmp(s + a - b, suf, b) == 0;
}

char *gr_path_stem(const char *path, const char *const *suffixes)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    size_t s = n;
    while (s > 0 && path[s - 1] != '/') s--;
    char *b = gr_strndup(path + s, n - s);
    if (!b) return NULL;
    for (const char *const *x = suffixes; x && *x; x++)
        if (gr_str_ends(b, *x) && strlen(b) > strlen(*x)) {
            b[strlen(b) - strlen(*x)] = '\0';
            break;
        }
    return b;
}

char *gr_path_dir(const char *path)
{
    const char *s = strrchr(path, '/');
    if (!s) return gr_strdup(".");
    if (s == path) return gr_strdup("/");
    return gr_strndup(path, (size_t)(s - path));
}
