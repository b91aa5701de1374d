/* Shared helpers for genrec subcommands: a tiny declarative option parser
 * that also prints --help, so every flag is documented in one place. */
#ifndef GENREC_CLI_H
#define GENREC_CLI_H
#include <stdint.h>
#include "genrec/common.h"
#include "genrec/dataset.h"
#include "genrec/split.h"

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
 * --help (prints usage, returns 1), "--name value" and "--name=value"; an
 * option with a one-letter name may also be given as "-k value" / "-k=value".
 * Positional arguments are an error unless pos/npos is given.
 * Returns 0 ok, 1 help printed, -1 error printed to stderr. */
int cli_parse(int argc, char **argv, const char *cmd, const char *summary,
              const cli_opt *opts, const char **pos, int *npos);

void cli_print_help(FILE *f, const char *cmd, const char *summary, const cli_opt *opts);

/* Common flags: --threads N, --seed S, --quiet/--verbose handled by each command via these. */
void cli_apply_threads(int64_t threads);

/* --beams N for a generative model: append "MODEL.beams=N" to params unless
 * params already sets MODEL.beams (an explicit --param wins); beams = -1
 * means not given. buf (>= 48 bytes) holds the appended string and must
 * outlive params. Prints "genrec CMD: ..." and returns GR_ERR when N is
 * outside [1, 1024] or params is full. */
int cli_beams_param(const char *cmd, int64_t beams, const char *model, cli_list *params, char *buf, size_t cap);

/* The dataset and split options shared by genrec eval and genrec train. */
typedef struct cli_split_args {
    const char *data, *format, *protocol;
    int64_t seed, threads, max_hist, kcore;
    double min_rating;
    int include_seen, no_dedup;
} cli_split_args;

/* protocol "loo", seed 42, max_hist -1 (the protocol's default), the rest 0/NULL. */
cli_split_args cli_split_args_default(void);

/* Their option-table entries, spliced into a command's cli_opt table. */
#define CLI_SPLIT_OPTS(a)                                                                                         \
    {"data", CLI_STR, "PATH", "dataset directory or file (required)", &(a).data},                                \
    {"format", CLI_STR, "F", "dataset format (default: detect from PATH; see genrec info --help)", &(a).format}, \
    {"protocol", CLI_STR, "P", "loo | ts | c20 (default loo)", &(a).protocol},                                   \
    {"seed", CLI_INT, "S", "seed for model training and c20 negatives (default 42)", &(a).seed},                 \
    {"threads", CLI_INT, "N", "compute threads (default: all cores, or GENREC_THREADS)", &(a).threads},          \
    {"max-hist", CLI_INT, "N", "cut query histories to the last N items (default: 10 for ts, 0 = all otherwise)", \
     &(a).max_hist},                                                                                              \
    {"include-seen", CLI_FLAG, NULL, "rank history items too (default: exclude them)", &(a).include_seen},      \
    {"min-rating", CLI_FLOAT, "R", "keep interactions with rating >= R (default 0 = all)", &(a).min_rating},      \
    {"kcore", CLI_INT, "K", "iterated K-core filter on users and items (default 0 = off)", &(a).kcore},          \
    {"no-dedup", CLI_FLAG, NULL, "keep repeated (user, item) interactions (default: keep the first only)",       \
     &(a).no_dedup}

/* Usage checks of a (--data given, a known protocol into *proto, numbers
 * not negative). On a usage error prints "genrec CMD: ..." to stderr and
 * returns GR_ERR. */
int cli_split_args_check(const char *cmd, const cli_split_args *a, gr_protocol *proto);

/* Load and split as a asks (cli_load_split below). */
int cli_split_args_load(const char *cmd, const cli_split_args *a, gr_protocol proto, gr_dataset **d,
                        gr_split **s);

/* Load the dataset at data with lo and build its split with so, as genrec
 * eval does, logging one summary line (gr_log level 1). On failure prints
 * "genrec CMD: message" to stderr and returns GR_ERR (*d and *s NULL);
 * otherwise the caller frees *s (first) and *d. */
int cli_load_split(const char *cmd, const char *data, const gr_load_opts *lo, const gr_split_opts *so,
                   gr_dataset **d, gr_split **s);

#endif
