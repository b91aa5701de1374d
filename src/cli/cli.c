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
        const char *dash = o->name[0] && !o->name[1] ? "-" : "--"; /* one-letter options: -k */
        if (o->kind == CLI_FLAG) snprintf(lhs, sizeof lhs, "%s%s", dash, o->name);
        else snprintf(lhs, sizeof lhs, "%s%s %s", dash, o->name, o->metavar ? o->metavar : "X");
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
        /* a one-letter option may be spelled with one dash: -k 5 = --k 5 */
        char shortbuf[4];
        if (a[0] == '-' && a[1] && a[1] != '-' && (a[2] == '\0' || a[2] == '=')) {
            for (const cli_opt *p = opts; p->name; p++)
                if (p->name[0] == a[1] && p->name[1] == '\0') {
                    snprintf(shortbuf, sizeof shortbuf, "--%c", a[1]);
                    if (a[2] == '=') { /* -k=5 */
                        if (p->kind == CLI_FLAG) { fprintf(stderr, "genrec %s: -%c takes no value\n", cmd, a[1]); return -1; }
                        if (set_value(p, a + 3, cmd)) return -1;
                        goto next_arg;
                    }
                    a = shortbuf;
                    break;
                }
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
    next_arg:;
    }
    return 0;
}

void cli_apply_threads(int64_t threads)
{
    if (threads > 0) gr_threads_set((int)threads);
    else gr_threads_set(0);
}

int cli_load_split(const char *cmd, const char *data, const gr_load_opts *lo, const gr_split_opts *so,
                   gr_dataset **d, gr_split **s)
{
    *d = NULL;
    *s = NULL;
    double t0 = gr_time_now();
    *d = gr_dataset_load(data, lo);
    if (!*d) { fprintf(stderr, "genrec %s: %s\n", cmd, gr_error_message()); return GR_ERR; }
    *s = gr_split_build(*d, so);
    if (!*s) {
        fprintf(stderr, "genrec %s: %s\n", cmd, gr_error_message());
        gr_dataset_free(*d);
        *d = NULL;
        return GR_ERR;
    }
    const gr_dataset *ds = *d;
    const gr_split *sp = *s;
    gr_log(1, "%s: %d users, %d items, %lld interactions; %s: %lld train, %lld valid, %lld test queries (%.2fs)\n",
           ds->name ? ds->name : data, (int)ds->n_users, (int)ds->n_items, (long long)ds->n_inter,
           gr_protocol_name(sp->protocol), (long long)sp->train_off[sp->n_users], (long long)sp->n_valid,
           (long long)sp->n_test, gr_time_now() - t0);
    return GR_OK;
}

int cli_beams_param(const char *cmd, int64_t beams, const char *model, cli_list *params, char *buf, size_t cap)
{
    if (beams == -1) return GR_OK;
    if (beams < 1 || beams > 1024) {
        fprintf(stderr, "genrec %s: --beams must be in [1, 1024]\n", cmd);
        return GR_ERR;
    }
    char key[40];
    snprintf(key, sizeof key, "%s.beams=", model);
    for (int i = 0; i < params->n; i++)
        if (!strncmp(params->v[i], key, strlen(key))) return GR_OK;
    if (params->n >= (int)(sizeof params->v / sizeof params->v[0])) {
        fprintf(stderr, "genrec %s: too many --param\n", cmd);
        return GR_ERR;
    }
    snprintf(buf, cap, "%s%lld", key, (long long)beams);
    params->v[params->n++] = buf;
    return GR_OK;
}

cli_split_args cli_split_args_default(void)
{
    cli_split_args a;
    memset(&a, 0, sizeof a);
    a.protocol = "loo";
    a.seed = 42;
    a.max_hist = -1;
    return a;
}

int cli_split_args_check(const char *cmd, const cli_split_args *a, gr_protocol *proto)
{
    if (!a->data || !*a->data) {
        fprintf(stderr, "genrec %s: --data PATH is required (see genrec %s --help)\n", cmd, cmd);
        return GR_ERR;
    }
    if (gr_protocol_parse(a->protocol, proto) != GR_OK) {
        fprintf(stderr, "genrec %s: --protocol: %s\n", cmd, gr_error_message());
        return GR_ERR;
    }
    if (a->seed < 0 || a->threads < 0 || a->max_hist < -1 || a->max_hist > INT32_MAX || a->kcore < 0 ||
        a->kcore > INT32_MAX || a->min_rating < 0) {
        fprintf(stderr, "genrec %s: --seed, --threads, --max-hist, --kcore and --min-rating must not be negative\n",
                cmd);
        return GR_ERR;
    }
    return GR_OK;
}

int cli_split_args_load(const char *cmd, const cli_split_args *a, gr_protocol proto, gr_dataset **d,
                        gr_split **s)
{
    gr_load_opts lo = gr_load_opts_default();
    lo.format = a->format;
    lo.min_rating = (float)a->min_rating;
    lo.kcore = (int)a->kcore;
    lo.dedup = !a->no_dedup;
    gr_split_opts so = gr_split_opts_default(proto);
    if (a->max_hist >= 0) so.max_hist = (int32_t)a->max_hist;
    so.seed = (uint64_t)a->seed;
    return cli_load_split(cmd, a->data, &lo, &so, d, s);
}
