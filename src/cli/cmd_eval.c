/* genrec eval: load a dataset, build a protocol split, train and score each
 * model through the one evaluation path, print a table and write JSON. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "genrec/dataset.h"
#include "genrec/eval.h"
#include "genrec/model.h"
#include "genrec/split.h"

#define EVAL_MAX_MODELS 32

static const char eval_summary[] =
    "Train and evaluate models under one protocol, all through the same ranking code.\n"
    "\n"
    "Protocols:\n"
    "  loo  leave-one-out per user: last item = test, second to last = validation,\n"
    "       the rest = training (users with < 3 interactions: training only). Full ranking.\n"
    "  ts   every (previous <= max-hist items -> next item) sample, sorted globally by\n"
    "       target time (ties: user, position), split 80/10/10. Full ranking.\n"
    "  c20  as loo, but the target is ranked among itself + 19 negatives sampled\n"
    "       (seeded) from items the user never interacted with.\n"
    "Metrics: HR@K and NDCG@K for K = 1, 5, 10, 20, 50, and MRR; rank ties go to the\n"
    "smaller item id. Each model is trained on train (early stopping on validation\n"
    "NDCG@10 where the model supports it) and scored once on test.\n"
    "\n"
    "Seen items: by default the items in a query's history are removed from its\n"
    "ranking (the target is always kept). With deduplicated data a seen item can never\n"
    "be the target, so leaving them in only penalises models that score familiar items\n"
    "high. Published full-ranking numbers that \"exclude nothing\" (e.g. HSTU's P-LOO\n"
    "tables) need --include-seen.\n"
    "\n"
    "Hyperparameters: --param MODEL.key=value (repeatable), e.g. --param sasrec.dim=64;\n"
    "an unknown model or key is an error. Output: a table on stdout, progress on stderr,\n"
    "and with --out a JSON file {\"dataset\", \"protocol\", \"results\":[{\"model\",\n"
    "\"metrics\", \"valid_ndcg10\", \"train_seconds\", \"eval_seconds\"}], \"n_test\", \"seed\"}.\n"
    "Exit status: 0 ok, 1 runtime error (dataset, training, output), 2 usage error.";

/* Split "a,b,c" into names (pointers into buf, which is modified). */
static int split_models(char *buf, const char **names, int cap)
{
    int n = 0;
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        while (*tok == ' ') tok++;
        char *end = tok + strlen(tok);
        while (end > tok && end[-1] == ' ') *--end = '\0';
        if (!*tok) continue;
        if (n >= cap) return -1;
        names[n++] = tok;
    }
    return n;
}

static int known_model(const char *name)
{
    for (const char *const *p = gr_model_names(); *p; p++)
        if (!strcmp(*p, name)) return 1;
    return 0;
}

int cmd_eval(int argc, char **argv)
{
    const char *models = "pop,bprmf,bm25,sasrec";
    const char *out = NULL, *export_dir = NULL;
    int64_t beams = -1;
    int quiet = 0;
    cli_split_args sa = cli_split_args_default();
    cli_list params;
    memset(&params, 0, sizeof params);
    const cli_opt opts[] = {
        CLI_SPLIT_OPTS(sa),
        {"models", CLI_STR, "LIST", "comma-separated models (default pop,bprmf,bm25,sasrec)", &models},
        {"out", CLI_STR, "FILE.json", "write results as JSON (atomically; default: none)", &out},
        {"param", CLI_LIST, "KEY=VALUE", "model hyperparameter MODEL.key=value (repeatable)", &params},
        {"beams", CLI_INT, "N", "beams of the generative models gen and gen-sid (default 20; an explicit "
         "--param gen.beams=... wins)", &beams},
        {"export-split", CLI_STR, "DIR", "also write the split as text files into DIR (train/valid/test/meta.txt)",
         &export_dir},
        {"quiet", CLI_FLAG, NULL, "no progress output on stderr (the table is still printed)", &quiet},
        {NULL, 0, NULL, NULL, NULL},
    };
    int prc = cli_parse(argc, argv, "eval", eval_summary, opts, NULL, NULL);
    if (prc == 1) return 0;
    if (prc < 0) return 2;

    /* ---- usage checks (exit 2) before any work ---- */
    gr_protocol proto;
    if (cli_split_args_check("eval", &sa, &proto) != GR_OK) return 2;
    char *model_buf = gr_strdup(models);
    const char *names[EVAL_MAX_MODELS];
    int n_models = model_buf ? split_models(model_buf, names, EVAL_MAX_MODELS) : -1;
    if (n_models <= 0) {
        fprintf(stderr, "genrec eval: --models: expected 1 to %d comma-separated names\n", EVAL_MAX_MODELS);
        gr_free(model_buf);
        return 2;
    }
    for (int i = 0; i < n_models; i++)
        if (!known_model(names[i])) {
            fprintf(stderr, "genrec eval: --models: unknown model '%s' (known:", names[i]);
            for (const char *const *p = gr_model_names(); *p; p++) fprintf(stderr, " %s", *p);
            fprintf(stderr, ")\n");
            gr_free(model_buf);
            return 2;
        }
    /* --beams N = gen.beams=N and gen-sid.beams=N unless given with --param */
    char beam_kv[2][48];
    if (cli_beams_param("eval", beams, "gen", &params, beam_kv[0], sizeof beam_kv[0]) != GR_OK ||
        cli_beams_param("eval", beams, "gen-sid", &params, beam_kv[1], sizeof beam_kv[1]) != GR_OK) {
        gr_free(model_buf);
        return 2;
    }
    gr_params gp = {params.v, params.n};
    gr_model *mods[EVAL_MAX_MODELS] = {0};
    for (int i = 0; i < n_models; i++) {
        mods[i] = gr_model_create(names[i], &gp);
        if (!mods[i]) {
            fprintf(stderr, "genrec eval: --param: %s\n", gr_error_message());
            for (int j = 0; j < i; j++) gr_model_free(mods[j]);
            gr_free(model_buf);
            return 2;
        }
    }

    /* ---- the run (errors exit 1) ---- */
    gr_verbosity = quiet ? 0 : 1;
    cli_apply_threads(sa.threads);
    int status = 0;
    gr_dataset *d = NULL;
    gr_split *s = NULL;
    gr_eval_result *res = gr_calloc((size_t)n_models, sizeof *res);
    int n_res = 0;
    if (!res) { fprintf(stderr, "genrec eval: %s\n", gr_error_message()); status = 1; goto done; }

    if (cli_split_args_load("eval", &sa, proto, &d, &s) != GR_OK) { status = 1; goto done; }
    if (export_dir) {
        if (gr_split_export(s, export_dir) != GR_OK) {
            fprintf(stderr, "genrec eval: --export-split: %s\n", gr_error_message());
            status = 1;
            goto done;
        }
        gr_log(1, "split written to %s/\n", export_dir);
    }

    gr_eval_opts eo = gr_eval_opts_default();
    eo.exclude_seen = !sa.include_seen;
    for (int i = 0; i < n_models; i++) {
        gr_model *m = mods[i];
        gr_eval_result *r = &res[n_res];
        gr_log(1, "[%s] training...\n", names[i]);
        if (gr_eval_run_model(m, names[i], s, &eo, (uint64_t)sa.seed, !quiet, r) != GR_OK) {
            fprintf(stderr, "genrec eval: %s\n", gr_error_message());
            status = 1;
            goto next;
        }
        n_res++;
    next:
        gr_model_free(m);
        mods[i] = NULL;
    }

    printf("%s, protocol %s, %lld test queries, seed %lld%s\n", d->name ? d->name : sa.data, gr_protocol_name(proto),
           (long long)s->n_test, (long long)sa.seed, sa.include_seen ? ", seen items ranked" : "");
    gr_eval_print_table(stdout, res, n_res);
    fflush(stdout);
    if (out) {
        if (gr_eval_write_json_run(out, d->name ? d->name : sa.data, gr_protocol_name(proto), res, n_res, s->n_test,
                                   (uint64_t)sa.seed) != GR_OK) {
            fprintf(stderr, "genrec eval: --out: %s\n", gr_error_message());
            status = 1;
        } else {
            gr_log(1, "results written to %s\n", out);
        }
    }

done:
    for (int i = 0; i < n_models; i++) gr_model_free(mods[i]);
    gr_split_free(s);
    gr_dataset_free(d);
    gr_free(res);
    gr_free(model_buf);
    return status;
}
