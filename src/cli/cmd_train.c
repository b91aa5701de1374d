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
    "scratch on the training sequences, or (gen) a pretrained model is fine-tuned:\n"
    "--param gen.base=MODEL (GGUF, llama2.c .bin or safetensors; its own tokenizer, or\n"
    "gen.base_tokenizer=FILE) with the D3 instruction prompt (gen.template=d3|bigrec|\n"
    "compact, gen.category=movies), all weights or LoRA (gen.lora=8); see\n"
    "docs/GENERATIVE.md. After every epoch the model is evaluated on the\n"
    "validation queries with the real trie-constrained beam search, training stops after\n"
    "NAME.patience epochs without a better NDCG@10, and the best epoch's weights are\n"
    "kept. Validation NDCG@10 and test NDCG@10/HR@10 are printed on stdout (seen items\n"
    "excluded as in genrec eval). The file holds the language model (GGUF, F32),\n"
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
    const char *model = NULL, *out = NULL;
    int64_t beams = -1;
    int quiet = 0;
    cli_split_args sa = cli_split_args_default();
    cli_list params;
    memset(&params, 0, sizeof params);
    const cli_opt opts[] = {
        CLI_SPLIT_OPTS(sa),
        {"model", CLI_STR, "NAME", "gen | gen-sid (required)", &model},
        {"param", CLI_LIST, "KEY=VALUE", "hyperparameter NAME.key=value (repeatable)", &params},
        {"beams", CLI_INT, "N", "beam width for validation, test and the saved model (default 20; "
         "--param NAME.beams wins)", &beams},
        {"out", CLI_STR, "FILE.gguf", "where to save the model (required; written atomically)", &out},
        {"quiet", CLI_FLAG, NULL, "no progress output on stderr (the metrics are still printed)", &quiet},
        {NULL, 0, NULL, NULL, NULL},
    };
    int prc = cli_parse(argc, argv, "train", train_summary, opts, NULL, NULL);
    if (prc == 1) return 0;
    if (prc < 0) return 2;

    /* ---- usage checks (exit 2) ---- */
    gr_protocol proto;
    if (cli_split_args_check("train", &sa, &proto) != GR_OK) return 2;
    if (!model || !out || !*out) {
        fprintf(stderr, "genrec train: --model NAME and --out FILE.gguf are required (see genrec train --help)\n");
        return 2;
    }
    if (strcmp(model, "gen") && strcmp(model, "gen-sid")) {
        fprintf(stderr, "genrec train: --model: model '%s' cannot be trained and saved (gen or gen-sid)\n", model);
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
    cli_apply_threads(sa.threads);
    int status = 1;
    gr_dataset *d = NULL;
    gr_split *s = NULL;
    char *dir = gr_path_dir(out);
    if (!dir || !gr_path_is_dir(dir)) {
        fprintf(stderr, "genrec train: --out: directory '%s' does not exist\n", dir ? dir : out);
        goto done;
    }
    if (cli_split_args_load("train", &sa, proto, &d, &s) != GR_OK) goto done;

    gr_eval_opts eo = gr_eval_opts_default();
    eo.exclude_seen = !sa.include_seen;
    gr_eval_result r;
    memset(&r, 0, sizeof r);
    gr_log(1, "[%s] training...\n", model);
    if (gr_eval_run_model(m, model, s, &eo, (uint64_t)sa.seed, !quiet, &r) != GR_OK) {
        fprintf(stderr, "genrec train: %s\n", gr_error_message());
        goto done;
    }
    printf("%s on %s, protocol %s, seed %lld: valid NDCG@10 %.4f; test NDCG@10 %.4f HR@10 %.4f "
           "(%lld test queries; train %.1fs)\n",
           model, d->name ? d->name : sa.data, gr_protocol_name(proto), (long long)sa.seed, r.valid_ndcg10,
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
