/* genrec info: load a dataset, print its summary, optionally save a cache. */
#include <math.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "genrec/dataset.h"

static const char info_summary[] =
    "Load a dataset (MovieLens 100K / 1M / 10M / latest CSV, RecBole atomic or sequential\n"
    "benchmark files, Amazon 2018 JSON lines, generic interactions.csv, or a binary cache),\n"
    "apply the rating threshold, dedup and k-core, and print a summary. The format is\n"
    "detected from the path unless --format is given; see docs/DATASETS.md.\n"
    "Exit status: 0 ok, 1 runtime error, 2 usage error.";

int cmd_info(int argc, char **argv)
{
    const char *data = NULL, *format = NULL, *save = NULL;
    double min_rating = 0;
    int64_t kcore = 0;
    int no_dedup = 0, quiet = 0;
    const cli_opt opts[] = {
        {"data", CLI_STR, "PATH", "dataset directory or file (required)", &data},
        {"format", CLI_STR, "F", "auto (default), ml-100k, ml-dat, ml-csv, recbole, recbole-seq, amazon, csv, cache",
         &format},
        {"min-rating", CLI_FLOAT, "R", "keep interactions rated >= R (default 0: keep all)", &min_rating},
        {"kcore", CLI_INT, "K", "iterated K-core on users and items (default 0: off)", &kcore},
        {"no-dedup", CLI_FLAG, NULL, "keep repeated (user, item) interactions (default: keep the first)", &no_dedup},
        {"save-cache", CLI_STR, "FILE", "write the prepared dataset as a binary cache (load it with --data FILE)",
         &save},
        {"quiet", CLI_FLAG, NULL, "print nothing but errors", &quiet},
        {NULL, 0, NULL, NULL, NULL},
    };
    int rc = cli_parse(argc, argv, "info", info_summary, opts, NULL, NULL);
    if (rc) return rc > 0 ? 0 : 2;
    if (!data) {
        fprintf(stderr, "genrec info: --data PATH is required (see genrec info --help)\n");
        return 2;
    }
    if (kcore < 0 || kcore > 1000000 || !(min_rating >= 0) || min_rating > 1e9) {
        fprintf(stderr, "genrec info: --kcore and --min-rating must be non-negative\n");
        return 2;
    }
    gr_load_opts lo = gr_load_opts_default();
    lo.format = format;
    lo.min_rating = (float)min_rating;
    lo.kcore = (int)kcore;
    lo.dedup = !no_dedup;
    double t0 = gr_time_now();
    gr_dataset *d = gr_dataset_load(data, &lo);
    if (!d) {
        fprintf(stderr, "genrec info: %s\n", gr_error_message());
        return strstr(gr_error_message(), "unknown dataset format") ? 2 : 1;
    }
    double t1 = gr_time_now();
    if (!quiet) {
        gr_dataset_print_summary(d, stdout);
        printf("  loaded in %.3f s (min rating %g, kcore %lld, dedup %s)\n", t1 - t0, min_rating,
               (long long)kcore, no_dedup ? "off" : "on");
    }
    if (save) {
        if (gr_dataset_save_cache(d, save) != GR_OK) {
            fprintf(stderr, "genrec info: %s\n", gr_error_message());
            gr_dataset_free(d);
            return 1;
        }
        if (!quiet) printf("  cache written to %s\n", save);
    }
    gr_dataset_free(d);
    return 0;
}
