#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <stdio.h>

void cli_print_help(FILE *f, const char *cmd, const char *summary, const cli_opt *opts)
{
    fprintf(f, "usage: genrec %s [options]\n\n%s\n\noptions:\n", cmd, summary);
    for (const cli_opt *o = opts; o->name; o++) {
        char lhs[64];
        if (o->kind == CLI_FLAG) snprintf(lhs, sizeof lhs, "--%s", o->name);
        else snprintf(lhs, sizeof lhs, "--%s %s", o->name, o->metavar ? o->metavar : "X");
        fprintf(f, "  %-26s %s\n", lhs, o->help);
    }
    fprintf(f, "  %-26s %s\n", "--help", "show this help");
}

static int set_value(const cli_opt *o, const char *v, const char *cmd)
{
    char *end;
    switch (o->kind) {
    case CLI_STR: *(const char **)o->out = v; return 0;
    case CLI_INT: {
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (errno || end == v || *end) {
            fprintf(stderr, "genrec %s: --%s expects an integer, got '%s'\n", cmd, o->name, v);
            return -1;
        }
        *(int64_t *)o->out = x;
        return 0;
    }
    case CLI_FLOAT: {
        errno = 0;
        double x = strtod(v, &end);
        if (errno || end == v || *end || !isfinite(x)) {
            fprintf(stderr, "genrec %s: --%s expects a number, got '%s'\n", cmd, o->name, v);
            return -1;
        }
        *(double *)o->out = x;
        return 0;
    }
    case CLI_LIST: {
        cli_list *l = o->out;
        if (l->n >= 64) { fprintf(stderr, "genrec %s: too many --%s\n", cmd, o->name); return -1; }
        l->v[l->n++] = v;
        return 0;
    }
    case CLI_FLAG: break;
    }
    return -1;
}

int cli_parse(int argc, char **argv, const char *cmd, const char *summary,
              const cli_opt *opts, const char **pos, int *npos)
{
    int maxpos = npos ? *npos : 0;
    if (npos) *npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            cli_print_help(stdout, cmd, summary, opts);
            return 1;
        }
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            if (npos && *npos < maxpos) { pos[(*npos)++] = a; continue; }
            fprintf(stderr, "genrec %s: unexpected argument '%s' (see genrec %s --help)\n", cmd, a, cmd);
            return -1;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t nl = eq ? (size_t)(eq - name) : strlen(name);
        const cli_opt *o = NULL;
        for (const cli_opt *p = opts; p->name; p++)
            if (strlen(p->name) == nl && !strncmp(p->name, name, nl)) { o = p; break; }
        /* short aliases such as -k are spelled as options named "k" with one dash */
        if (!o) {
            fprintf(stderr, "genrec %s: unknown option '%.*s' (see genrec %s --help)\n", cmd, (int)nl + 2, a, cmd);
            return -1;
        }
        if (o->kind == CLI_FLAG) {
            if (eq) { fprintf(stderr, "genrec %s: --%s takes no value\n", cmd, o->name); return -1; }
            *(int *)o->out = 1;
            continue;
        }
        const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!v) { fprintf(stderr, "genrec %s: --%s needs a value (%s)\n", cmd, o->name, o->metavar ? o->metavar : "X"); return -1; }
        if (set_value(o, v, cmd)) return -1;
    }
    return 0;
}

void cli_apply_threads(int64_t threads)
{
    if (threads > 0) gr_threads_set((int)threads);
    else gr_threads_set(0);
}
