/* genrec train: train one generative recommender (gen or gen-sid) from
 * scratch on a dataset split, early-stopping on validation NDCG@10 through
 * the real decoder, report validation and test metrics, and save one GGUF
 * holding the model, tokenizer, item table, trie and users (gr_model_save). */
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "genrec/dataset.h"
#include "genrec/eval.h"
#include "genrec/model.h"
#include "genrec/split.h"

static const char train_summary[] =
    "Train a generative recommender on a dataset and save it as one GGUF file.\n"
    "\n"
    "The dataset is loaded and split exactly as `genrec eval` does (same flags and\n"
    "defaults). The model (gen: items written as their titles in a BPE vocabulary\n"
    "trained on the catalogue; gen-sid: items written as semantic IDs) is trained from\n"
    "scratch on the training sequences; after every epoch it is evaluated on the\n"
    "validation queries with the real trie-constrained beam search, training stops after\n"
    "NAME.patience epochs without a better NDCG@10, and the best epoch's weights are\n"
    "kept. Validation NDCG@10 and test NDCG@10/HR@10 are printed on stdout (seen items\n"
    "excluded as in genrec eval). The file holds the language model (llama GGUF, F32),\n"
    "its tokenizer (gen), every hyperparameter, the item table (ids, titles, answer\n"
    "tokens), the trie, semantic IDs (gen-sid), and every user's whole interaction\n"
    "sequence, so `genrec recommend --model FILE --user ID` works without the dataset.\n"
    "The CF assistant (NAME.assist) is not saved: a loaded model decodes without it.\n"
    "\n"
    "Hyperparameters: --param NAME.key=value (repeatable), e.g. --param gen.epochs=5\n"
    "--param gen.dim=64; see genrec eval --help and docs for the keys.\n"
    "Exit status: 0 ok, 1 runtime error (dataset, training, writing), 2 usage error.";

int cmd_train(int argc, char **argv)
{
    const char *data = NULL, *format = NULL, *protocol = "loo", *model = NULL, *out = NULL;
    int64_t seed = 42, threads = 0, max_hist = -1, kcore = 0, beams = -1;
    double min_rating = 0;
    int include_seen = 0, no_dedup = 0, quiet = 0;
    cli_list params;
    memset(&params, 0, sizeof params);
    const cli_opt opts[] = {
        {"data", CLI_STR, "PATH", "dataset directory or file (required)", &data},
        {"format", CLI_STR, "F", "dataset format (default: detect from PATH; see genrec info --help)", &format},
        {"protocol", CLI_STR, "P", "loo | ts | c20 (default loo)", &protocol},
        {"model", CLI_STR, "NAME", "gen | gen-sid (required)", &model},
        {"param", CLI_LIST, "KEY=VALUE", "hyperparameter NAME.key=value (repeatable)", &params},
        {"beams", CLI_INT, "N", "beam width for validation, test and the saved model (default 20; "
         "--param NAME.beams wins)", &beams},
        {"seed", CLI_INT, "S", "seed for training (and c20 negatives) (default 42)", &seed},
        {"threads", CLI_INT, "N", "compute threads (default: all cores, or GENREC_THREADS)", &threads},
        {"out", CLI_STR, "FILE.gguf", "where to save the model (required; written atomically)", &out},
        {"max-hist", CLI_INT, "N", "cut query histories to the last N items (default: 10 for ts, 0 = all otherwise)",
         &max_hist},
        {"include-seen", CLI_FLAG, NULL, "rank history items too when measuring (default: exclude them)",
         &include_seen},
        {"min-rating", CLI_FLOAT, "R", "keep interactions with rating >= R (default 0 = all)", &min_rating},
        {"kcore", CLI_INT, "K", "iterated K-core filter on users and items (default 0 = off)", &kcore},
        {"no-dedup", CLI_FLAG, NULL, "keep repeated (user, item) interactions (default: keep the first only)",
         &no_dedup},
        {"quiet", CLI_FLAG, NULL, "no progress output on stderr (the metrics are still printed)", &quiet},
        {NULL, 0, NULL, NULL, NULL},
    };
    int prc = cli_parse(argc, argv, "train", train_summary, opts, NULL, NULL);
    if (prc == 1) return 0;
    if (prc < 0) return 2;

    /* ---- usage checks (exit 2) ---- */
    if (!data || !*data || !model || !out || !*out) {
        fprintf(stderr, "genrec train: --data PATH, --model NAME and --out FILE.gguf are required "
                        "(see genrec train --help)\n");
        return 2;
    }
    if (strcmp(model, "gen") && strcmp(model, "gen-sid")) {
        fprintf(stderr, "genrec train: --model: model '%s' cannot be trained and saved (gen or gen-sid)\n", model);
        return 2;
    }
    gr_protocol proto;
    if (gr_protocol_parse(protocol, &proto) != GR_OK) {
        fprintf(stderr, "genrec train: --protocol: %s\n", gr_error_message());
        return 2;
    }
    if (seed < 0 || threads < 0 || max_hist < -1 || max_hist > INT32_MAX || kcore < 0 || kcore > INT32_MAX ||
        min_rating < 0) {
        fprintf(stderr, "genrec train: --seed, --threads, --max-hist, --kcore and --min-rating must not be negative\n");
        return 2;
    }
    char beam_kv[48];
    if (cli_beams_param("train", beams, model, &params, beam_kv, sizeof beam_kv) != GR_OK) return 2;
    gr_params gp = {params.v, params.n};
    gr_model *m = gr_model_create(model, &gp);
    if (!m) {
        fprintf(stderr, "genrec train: --param: %s\n", gr_error_message());
        return 2;
    }

    /* ---- the run (errors exit 1) ---- */
    gr_verbosity = quiet ? 0 : 1;
    cli_apply_threads(threads);
    int status = 1;
    gr_dataset *d = NULL;
    gr_split *s = NULL;
    char *dir = gr_path_dir(out);
    if (!dir || !gr_path_is_dir(dir)) {
        fprintf(stderr, "genrec train: --out: directory '%s' does not exist\n", dir ? dir : out);
        goto done;
    }
    gr_load_opts lo = gr_load_opts_default();
    lo.format = format;
    lo.min_rating = (float)min_rating;
    lo.kcore = (int)kcore;
    lo.dedup = !no_dedup;
    gr_split_opts so = gr_split_opts_default(proto);
    if (max_hist >= 0) so.max_hist = (int32_t)max_hist;
    so.seed = (uint64_t)seed;
    if (cli_load_split("train", data, &lo, &so, &d, &s) != GR_OK) goto done;

    gr_eval_opts eo = gr_eval_opts_default();
    eo.exclude_seen = !include_seen;
    gr_eval_result r;
    memset(&r, 0, sizeof r);
    gr_log(1, "[%s] training...\n", model);
    if (gr_eval_run_model(m, model, s, &eo, (uint64_t)seed, !quiet, &r) != GR_OK) {
        fprintf(stderr, "genrec train: %s\n", gr_error_message());
        goto done;
    }
    printf("%s on %s, protocol %s, seed %lld: valid NDCG@10 %.4f; test NDCG@10 %.4f HR@10 %.4f "
           "(%lld test queries; train %.1fs)\n",
           model, d->name ? d->name : data, gr_protocol_name(proto), (long long)seed, r.valid_ndcg10,
           r.test.ndcg[2], r.test.hr[2], (long long)r.test.n, r.train_seconds);
    fflush(stdout);
    if (gr_model_save(m, s, out) != GR_OK) {
        fprintf(stderr, "genrec train: --out: %s\n", gr_error_message());
        goto done;
    }
    printf("model saved to %s\n", out);
    status = 0;

done:
    gr_free(dir);
    gr_model_free(m);
    gr_split_free(s);
    gr_dataset_free(d);
    return status;
}
