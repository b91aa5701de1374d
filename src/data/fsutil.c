/* Path helpers for the loaders. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/loaders.h"

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
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int gr_path_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
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

char *gr_text_first_sentence(const char *text)
{
    const char *d = strstr(text, ". ");
    if (!d) {
        size_t n = strlen(text);
        if (n > 0 && text[n - 1] == '.') return gr_strndup(text, n - 1);
        return gr_strdup(text);
    }
    return gr_strndup(text, (size_t)(d - text));
}
