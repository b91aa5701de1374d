/* genrec recommend: load a model saved by genrec train and print the top K
 * items for a stored user or for a history given on the command line. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "genrec/json.h"
#include "genrec/model.h"

static const char recommend_summary[] =
    "Recommend items with a model saved by `genrec train`.\n"
    "\n"
    "--user ID uses the user's whole interaction sequence stored in the model file;\n"
    "--history \"ITEM;ITEM;...\" gives a history (oldest first), each ITEM an item id of\n"
    "the dataset or an exact title (ids win; of several items with one title the first).\n"
    "With both, the --history items follow the user's sequence. Items of the history are\n"
    "not recommended (unless --include-seen).\n"
    "Output: K lines \"RANK<TAB>ITEM<TAB>TITLE<TAB>SCORE\" (gen-sid adds<TAB>SEMANTIC_ID),\n"
    "best first; fewer when the model ranks fewer items. A generative model scores the\n"
    "items its beam search returns by rank (beams, beams - 1, ...); when its beams find\n"
    "fewer than K new items the search is repeated with more beams (up to 1024).\n"
    "With --json one JSON object {\"model\", \"user\", \"history\":[ITEM...], \"items\":\n"
    "[{\"rank\", \"item\", \"title\", \"score\"}...]} instead.\n"
    "Exit status: 0 ok, 1 runtime error (model file, unknown user or item), 2 usage error.";


/* Append the ';'-separated items of list (trimmed; empty pieces skipped) to
 * hist; prints a message and returns -1 for an unknown item. */
static int parse_history(const gr_rec_catalog *c, const char *list, int32_t *hist, int32_t *n)
{
    char *buf = gr_strdup(list);
    if (!buf) { fprintf(stderr, "genrec recommend: %s\n", gr_error_message()); return -1; }
    int rc = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
        while (*tok == ' ' || *tok == '\t') tok++;
        char *end = tok + strlen(tok);
        while (end > tok && (end[-1] == ' ' || end[-1] == '\t')) *--end = '\0';
        if (!*tok) continue;
        int32_t it = gr_rec_catalog_item(c, tok);
        if (it < 0) {
            fprintf(stderr, "genrec recommend: --history: unknown item '%s' (neither an item id nor an exact title "
                            "of the model's %d items)\n", tok, (int)c->n_items);
            rc = -1;
            break;
        }
        hist[(*n)++] = it;
    }
    gr_free(buf);
    return rc;
}

int cmd_recommend(int argc, char **argv)
{
    const char *model = NULL, *user = NULL, *history = NULL;
    int64_t k = 10, beams = -1, threads = 0;
    int include_seen = 0, json = 0;
    const cli_opt opts[] = {
        {"model", CLI_STR, "FILE.gguf", "model saved by genrec train (required)", &model},
        {"user", CLI_STR, "ID", "recommend for this user of the training data (its whole sequence)", &user},
        {"history", CLI_STR, "\"I;I;...\"", "recommend after these items (ids or exact titles, oldest first)",
         &history},
        {"k", CLI_INT, "K", "number of items to print (default 10)", &k},
        {"beams", CLI_INT, "N", "beam width, 1..1024 (default: the model's, 20 unless trained otherwise)", &beams},
        {"include-seen", CLI_FLAG, NULL, "allow items of the history in the results (default: exclude them)",
         &include_seen},
        {"json", CLI_FLAG, NULL, "print one JSON object instead of lines", &json},
        {"threads", CLI_INT, "N", "compute threads (default: all cores, or GENREC_THREADS)", &threads},
        {NULL, 0, NULL, NULL, NULL},
    };
    int prc = cli_parse(argc, argv, "recommend", recommend_summary, opts, NULL, NULL);
    if (prc == 1) return 0;
    if (prc < 0) return 2;
    if (!model || !*model || (!user && !history)) {
        fprintf(stderr, "genrec recommend: --model FILE and --user ID or --history \"ITEM;...\" are required "
                        "(see genrec recommend --help)\n");
        return 2;
    }
    if (k < 1 || k > 100000 || threads < 0 || (beams != -1 && (beams < 1 || beams > 1024))) {
        fprintf(stderr, "genrec recommend: -k must be in [1, 100000], --beams in [1, 1024], --threads >= 0\n");
        return 2;
    }
    cli_apply_threads(threads);

    int status = 1;
    gr_rec_catalog *c = NULL;
    int32_t *hist = NULL, *items = NULL;
    float *scores = NULL;
    gr_model *m = gr_model_load(model, &c);
    if (!m) { fprintf(stderr, "genrec recommend: %s\n", gr_error_message()); goto done; }
    if (beams > 0 && gr_model_set_beams(m, (int)beams) != GR_OK) {
        fprintf(stderr, "genrec recommend: --beams: %s\n", gr_error_message());
        goto done;
    }
    int32_t u = -1;
    int64_t n_user = 0;
    if (user) {
        u = gr_rec_catalog_user(c, user);
        if (u < 0) {
            fprintf(stderr, "genrec recommend: --user: unknown user '%s' (the model knows %d users of %s)\n", user,
                    (int)c->n_users, *c->dataset ? c->dataset : "its training data");
            goto done;
        }
        n_user = c->user_off[u + 1] - c->user_off[u];
    }
    const size_t cap = (size_t)n_user + (history ? strlen(history) / 2 + 2 : 1);
    hist = gr_alloc(cap, sizeof(int32_t));
    items = gr_alloc((size_t)k, sizeof(int32_t));
    scores = gr_alloc((size_t)k, sizeof(float));
    if (!hist || !items || !scores) { fprintf(stderr, "genrec recommend: %s\n", gr_error_message()); goto done; }
    int32_t n_hist = 0;
    if (user) {
        memcpy(hist, c->user_item + c->user_off[u], sizeof(int32_t) * (size_t)n_user);
        n_hist = (int32_t)n_user;
    }
    if (history && parse_history(c, history, hist, &n_hist) != 0) goto done;
    int n = 0;
    if (gr_model_recommend(m, hist, n_hist, (int)k, !include_seen, items, scores, &n) != GR_OK) {
        fprintf(stderr, "genrec recommend: %s\n", gr_error_message());
        goto done;
    }
    if (json) {
        printf("{\"model\":");
        gr_json_write_str(stdout, c->model);
        printf(", \"user\":");
        if (user) gr_json_write_str(stdout, user);
        else printf("null");
        printf(", \"history\":[");
        for (int32_t i = 0; i < n_hist; i++) {
            if (i) printf(", ");
            gr_json_write_str(stdout, c->item_key[hist[i]]);
        }
        printf("], \"items\":[");
        for (int i = 0; i < n; i++) {
            printf("%s{\"rank\":%d, \"item\":", i ? ", " : "", i + 1);
            gr_json_write_str(stdout, c->item_key[items[i]]);
            printf(", \"title\":");
            gr_json_write_str(stdout, c->item_title[items[i]]);
            if (c->item_sid) {
                printf(", \"sid\":");
                gr_json_write_str(stdout, c->item_sid[items[i]]);
            }
            printf(", \"score\":%.9g}", (double)scores[i]);
        }
        printf("]}\n");
    } else {
        for (int i = 0; i < n; i++) {
            printf("%d\t%s\t%s\t%.6g", i + 1, c->item_key[items[i]], c->item_title[items[i]], (double)scores[i]);
            if (c->item_sid) printf("\t%s", c->item_sid[items[i]]);
            printf("\n");
        }
    }
    status = fflush(stdout) == 0 ? 0 : 1;
done:
    gr_free(hist);
    gr_free(items);
    gr_free(scores);
    gr_model_free(m);
    gr_rec_catalog_free(c);
    return status;
}
