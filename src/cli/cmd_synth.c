/* genrec synth: generate the synthetic world, print a summary and write
 * interactions.csv, items.csv and truth.bin. */
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "genrec/synth.h"

static const char synth_summary[] =
    "Generate the synthetic recommendation world (deterministic for a given seed and\n"
    "options, for any thread count): a movie-like catalogue whose titles are built from\n"
    "genre/theme vocabularies (with franchises of numbered sequels), users with drifting\n"
    "tastes over themes, latent preferences, Zipf-like popularity and sequel habits.\n"
    "Prints a summary; with --out writes DIR/interactions.csv (user,item,timestamp,rating),\n"
    "DIR/items.csv (item,title,genres,brand) and DIR/truth.bin (the whole world with each\n"
    "user's true preferences; see docs/SYNTH.md), each atomically.\n"
    "Scale: the defaults give ~60k interactions; e.g. --users 10000 --items 10000\n"
    "--per-user 100 gives ~1M in a few seconds.\n"
    "Exit status: 0 ok, 1 runtime error, 2 usage error.";

int cmd_synth(int argc, char **argv)
{
    gr_synth_opts o = gr_synth_opts_default();
    const char *out = NULL;
    int64_t seed = (int64_t)o.seed, users = o.n_users, items = o.n_items, min_per_user = -1, genres = o.n_genres;
    int64_t dim = o.dim, threads = 0;
    double per_user = o.per_user, franchise = o.franchise_frac, zipf = o.zipf, sequel = o.p_sequel;
    double momentum = o.momentum, drift = o.drift, gamma = o.gamma, span = o.span_days;
    int quiet = 0;
    const cli_opt opts[] = {
        {"out", CLI_STR, "DIR", "write the files into DIR (created if missing; default: print only)", &out},
        {"seed", CLI_INT, "S", "random seed (default 42)", &seed},
        {"users", CLI_INT, "N", "number of users (default 1000)", &users},
        {"items", CLI_INT, "N", "number of items (default 1500, at least 20)", &items},
        {"per-user", CLI_FLOAT, "X", "mean interactions per user (default 60; capped at items/2)", &per_user},
        {"min-per-user", CLI_INT, "N", "shortest history (default 5, or per-user if smaller)", &min_per_user},
        {"genres", CLI_INT, "N", "number of genres, 2..12 (default 12)", &genres},
        {"dim", CLI_INT, "N", "latent taste dimension, 1..64 (default 8)", &dim},
        {"franchise-frac", CLI_FLOAT, "F", "share of items in franchises (default 0.2)", &franchise},
        {"zipf", CLI_FLOAT, "F", "popularity exponent (default 1.1)", &zipf},
        {"sequel", CLI_FLOAT, "P", "chance to watch part k+1 right after part k (default 0.5)", &sequel},
        {"momentum", CLI_FLOAT, "M", "weight of the last item's theme in the next choice (default 0.35)", &momentum},
        {"drift", CLI_FLOAT, "D", "share of taste drifting to a new genre over a history (default 0.35)", &drift},
        {"gamma", CLI_FLOAT, "G", "strength of latent (id-only) preferences (default 1.5)", &gamma},
        {"span-days", CLI_FLOAT, "D", "users start within 85% of this many days from 2000-01-01 (default 1095)", &span},
        {"threads", CLI_INT, "N", "threads (default: all cores; the output does not depend on it)", &threads},
        {"quiet", CLI_FLAG, NULL, "print nothing but errors", &quiet},
        {NULL, 0, NULL, NULL, NULL},
    };
    int rc = cli_parse(argc, argv, "synth", synth_summary, opts, NULL, NULL);
    if (rc) return rc > 0 ? 0 : 2;
    cli_apply_threads(threads);
    if (users < 1 || users > INT32_MAX || items < 1 || items > INT32_MAX || genres < 1 || genres > 64 || dim < 1 ||
        dim > 1024 || seed < 0) {
        fprintf(stderr, "genrec synth: --users, --items, --genres, --dim and --seed must be positive and in range\n");
        return 2;
    }
    o.seed = (uint64_t)seed;
    o.n_users = (int32_t)users;
    o.n_items = (int32_t)items;
    o.per_user = per_user;
    if (min_per_user >= 0) o.min_per_user = min_per_user > INT32_MAX ? INT32_MAX : (int32_t)min_per_user;
    else if (per_user < o.min_per_user) o.min_per_user = per_user >= 1 ? (int32_t)per_user : 1;
    o.n_genres = (int32_t)genres;
    o.dim = (int32_t)dim;
    o.franchise_frac = franchise;
    o.zipf = zipf;
    o.p_sequel = sequel;
    o.momentum = momentum;
    o.drift = drift;
    o.gamma = gamma;
    o.span_days = span;

    double t0 = gr_time_now();
    gr_synth_world *w = gr_synth_generate(&o);
    if (!w) {
        fprintf(stderr, "genrec synth: %s\n", gr_error_message());
        return strstr(gr_error_message(), "options") ? 2 : 1;
    }
    double t1 = gr_time_now();
    if (!quiet) {
        gr_synth_print_summary(w, stdout);
        printf("  generated in %.2f s\n", t1 - t0);
    }
    if (out) {
        if (gr_synth_write(w, out)) {
            fprintf(stderr, "genrec synth: %s\n", gr_error_message());
            gr_synth_free(w);
            return 1;
        }
        if (!quiet) printf("  wrote %s/{interactions.csv,items.csv,truth.bin} in %.2f s\n", out, gr_time_now() - t1);
    } else if (!quiet) {
        printf("  (no --out: nothing written)\n");
    }
    gr_synth_free(w);
    return 0;
}
