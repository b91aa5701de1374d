/* genrec demo: the whole story on the embedded synthetic world.
 *
 * 1. generate a seeded synthetic world (readable titles, users with tastes,
 *    popularity and sequel habits) - no download needed;
 * 2. split it leave-one-out and train + evaluate the classic baselines and a
 *    generative recommender on the one evaluation path (Pop, BPR-MF, BM25,
 *    SASRec-CE, gen-sid: a small Llama writing semantic IDs, decoded by
 *    trie-constrained beam search);
 * 3. because the world keeps each user's true preferences, score every
 *    model's top-10 against the true next-item distribution as well;
 * 4. show a few users' recent histories with SASRec's and the generative
 *    model's recommended titles.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "genrec/eval.h"
#include "genrec/synth.h"
#include "genrec/topk.h"

#define DEMO_TOPK 10

static const char demo_summary[] =
    "Run the whole story on the embedded synthetic world: generate it, evaluate Pop, BPR-MF, BM25, SASRec-CE and\n"
    "the generative recommender gen-sid under leave-one-out full ranking, score each model against the world's\n"
    "true preferences, and show a few users' histories with their recommended titles.";

/* Mean true probability that the user's next item is in the model's top-10
 * (the expectation of HR@10 under the world's own next-item distribution). */
static int true_hit_mass(const gr_synth_world *w, gr_model *m, const gr_split *s, int64_t n_users, double *out)
{
    int32_t n_items = s->n_items;
    float *scores = gr_alloc((size_t)n_items, sizeof *scores);
    double *probs = gr_alloc((size_t)n_items, sizeof *probs);
    int32_t top[DEMO_TOPK];
    double sum = 0;
    int64_t n = 0;
    int rc = GR_OK;
    if (!scores || !probs) { rc = GR_ERR; goto done; }
    for (int64_t i = 0; i < s->n_test && n < n_users; i++) {
        const gr_query *q = &s->test[i];
        if (m->ops->score(m, q, 1, scores) != GR_OK) { rc = GR_ERR; goto done; }
        int32_t k = gr_topk(scores, n_items, DEMO_TOPK, q->hist, q->hist_len, top, NULL);
        if (k < 0 || gr_synth_next_dist(w, q->user, q->hist, q->hist_len, probs) != GR_OK) { rc = GR_ERR; goto done; }
        double mass = 0;
        for (int32_t j = 0; j < k; j++) mass += probs[top[j]];
        sum += mass;
        n++;
    }
    *out = n ? sum / (double)n : 0;
done:
    gr_free(scores);
    gr_free(probs);
    return rc;
}

/* A few test users: their last items, the true next one, and the top 5 of
 * each model in ms (names in names; NULL entries are skipped). */
static void show_users(const gr_synth_world *w, gr_model *const *ms, const char *const *names, int n_m,
                       const gr_split *s, int n_show)
{
    float *scores = gr_alloc((size_t)s->n_items, sizeof *scores);
    if (!scores) return;
    int32_t top[5];
    for (int u = 0; u < n_show && u < s->n_test; u++) {
        const gr_query *q = &s->test[(int64_t)u * (s->n_test / n_show)];
        printf("\nuser %d - last watched:\n", (int)q->user + 1);
        int32_t from = q->hist_len > 5 ? q->hist_len - 5 : 0;
        for (int32_t j = from; j < q->hist_len; j++) printf("    %s\n", w->item_title[q->hist[j]]);
        printf("  actually watched next: %s\n", w->item_title[q->target]);
        for (int i = 0; i < n_m; i++) {
            if (!ms[i]) continue;
            if (ms[i]->ops->score(ms[i], q, 1, scores) != GR_OK) break;
            int32_t k = gr_topk(scores, s->n_items, 5, q->hist, q->hist_len, top, NULL);
            printf("  %s recommends:\n", names[i]);
            for (int32_t j = 0; j < k; j++)
                if (isfinite(scores[top[j]]))
                    printf("   %d. %s%s\n", j + 1, w->item_title[top[j]], top[j] == q->target ? "   <- hit" : "");
        }
    }
    gr_free(scores);
}

int cmd_demo(int argc, char **argv)
{
    int64_t seed = 42, users = -1, items = -1, threads = 0;
    int quiet = 0;
    cli_list params = {0};
    const char *models_arg = "pop,bprmf,bm25,sasrec,gen-sid";
    cli_opt opts[] = {
        {"seed", CLI_INT, "S", "seed of the world and of training (default 42)", &seed},
        {"users", CLI_INT, "N", "users in the world (default 1000)", &users},
        {"items", CLI_INT, "N", "items in the world (default 1500)", &items},
        {"models", CLI_STR, "LIST", "models to compare (default pop,bprmf,bm25,sasrec,gen-sid)", &models_arg},
        {"param", CLI_LIST, "KEY=VALUE", "model hyperparameter, repeatable (see genrec eval --help); the demo caps sasrec.epochs=30, bprmf.epochs=40, gen-sid.epochs=5, gen.epochs=4", &params},
        {"threads", CLI_INT, "N", "compute threads (default: physical cores)", &threads},
        {"quiet", CLI_FLAG, NULL, "no training progress", &quiet},
        {NULL, 0, NULL, NULL, NULL},
    };
    int rc = cli_parse(argc, argv, "demo", demo_summary, opts, NULL, NULL);
    if (rc) return rc > 0 ? 0 : 2;
    cli_apply_threads(threads);
    gr_verbosity = quiet ? 0 : 1;

    gr_synth_opts so = gr_synth_opts_default();
    so.seed = (uint64_t)seed;
    if (users > 0) so.n_users = (int32_t)users;
    if (items > 0) so.n_items = (int32_t)items;
    int status = 1;
    gr_synth_world *w = NULL;
    gr_dataset *d = NULL;
    gr_split *s = NULL;
    gr_model *shown[2] = {NULL, NULL}; /* SASRec, the first generative model */
    const char *shown_names[2] = {"SASRec", NULL};
    char gen_name[32] = "";
    char names_buf[256];
    snprintf(names_buf, sizeof names_buf, "%s", models_arg);

    printf("== 1. the synthetic world (seed %lld)\n", (long long)seed);
    w = gr_synth_generate(&so);
    if (!w || !(d = gr_synth_to_dataset(w))) goto fail;
    gr_synth_print_summary(w, stdout);

    printf("\n== 2. leave-one-out, full ranking over all %d items, seen items excluded\n", (int)d->n_items);
    gr_split_opts spo = gr_split_opts_default(GR_PROTOCOL_LOO);
    if (!(s = gr_split_build(d, &spo))) goto fail;
    gr_eval_opts eo = gr_eval_opts_default();
    /* The demo caps training so the whole story (baselines and gen-sid) runs in
     * minutes on 2 cores, not measured quietly yet; user --param values come
     * later in the list and win. */
    const char *kv[80] = {"sasrec.epochs=30", "sasrec.patience=5", "bprmf.epochs=40", "gen-sid.epochs=5",
                          "gen-sid.patience=3", "gen.epochs=4", "gen.patience=2"};
    int n_kv = 7;
    if (params.n > (int)(sizeof kv / sizeof kv[0]) - n_kv) {
        gr_errorf("too many --param values (%d; at most %d)", params.n, (int)(sizeof kv / sizeof kv[0]) - n_kv);
        goto fail;
    }
    for (int i = 0; i < params.n; i++) kv[n_kv++] = params.v[i];
    gr_params p = {kv, n_kv};
    gr_eval_result res[8];
    double truth[8];
    int n_res = 0;
    for (char *tok = strtok(names_buf, ","); tok && n_res < 8; tok = strtok(NULL, ",")) {
        gr_model *m = gr_model_create(tok, &p);
        if (!m) goto fail;
        gr_log(1, "[%s] training...\n", tok);
        if (gr_eval_run_model(m, tok, s, &eo, (uint64_t)seed, !quiet, &res[n_res]) != GR_OK ||
            true_hit_mass(w, m, s, 300, &truth[n_res]) != GR_OK) {
            gr_model_free(m);
            goto fail;
        }
        n_res++;
        if (!strcmp(tok, "sasrec") && !shown[0]) shown[0] = m;
        else if (!strncmp(tok, "gen", 3) && !shown[1]) {
            shown[1] = m;
            snprintf(gen_name, sizeof gen_name, "%s", tok);
            shown_names[1] = gen_name;
        } else gr_model_free(m);
    }
    printf("\n");
    gr_eval_print_table(stdout, res, n_res);

    printf("\n== 3. against the world's true preferences: P(true next item in the top-10), first 300 test users\n");
    for (int i = 0; i < n_res; i++) printf("  %-8s %.4f\n", res[i].model, truth[i]);

    if (shown[0] || shown[1]) {
        printf("\n== 4. a few users");
        show_users(w, shown, shown_names, 2, s, 3);
    }
    printf("\nNext: `genrec eval --data PATH --protocol loo --models pop,bprmf,bm25,sasrec,gen,gen-sid` on real data,\n"
           "`genrec train` / `genrec recommend` for one generative model (README, docs/GENERATIVE.md).\n");
    status = 0;
    goto done;
fail:
    fprintf(stderr, "genrec demo: %s\n", gr_error_message());
done:
    gr_model_free(shown[0]);
    gr_model_free(shown[1]);
    gr_split_free(s);
    gr_dataset_free(d);
    gr_synth_free(w);
    return status;
}
