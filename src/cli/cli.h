/* Shared helpers for genrec subcommands: a tiny declarative option parser
 * that also prints --help, so every flag is documented in one place. */
#ifndef GENREC_CLI_H
#define GENREC_CLI_H
#include <stdint.h>
#include "genrec/common.h"

typedef enum cli_kind { CLI_FLAG = 0, CLI_STR, CLI_INT, CLI_FLOAT, CLI_LIST } cli_kind;

typedef struct cli_opt {
    const char *name;      /* long name without "--", e.g. "data" */
    cli_kind kind;
    const char *metavar;   /* e.g. "PATH" */
    const char *help;      /* one line; mention the default */
    void *out;             /* int* (FLAG), const char** (STR), int64_t* (INT), double* (FLOAT),
                              cli_list* (LIST: repeatable, collects values) */
} cli_opt;

typedef struct cli_list { const char *v[64]; int n; } cli_list;

/* Parse argv[1..argc) against opts (terminated by a {NULL} entry). Handles
 * --help (prints usage, returns 1), "--name value" and "--name=value".
 * Positional arguments are an error unless pos/npos is given.
 * Returns 0 ok, 1 help printed, -1 error printed to stderr. */
int cli_parse(int argc, char **argv, const char *cmd, const char *summary,
              const cli_opt *opts, const char **pos, int *npos);

void cli_print_help(FILE *f, const char *cmd, const char *summary, const cli_opt *opts);

/* Common flags: --threads N, --seed S, --quiet/--verbose handled by each command via these. */
void cli_apply_threads(int64_t threads);

#endif
