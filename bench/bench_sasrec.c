/* genrec side of the SASRec benchmark (bench/bench_sasrec.sh runs it next to
 * bench/sasrec_torch.py on the same split).
 *
 *   bench_sasrec DATA OUTDIR [options] [sasrec.key=value ...]
 *
 * DATA is a dataset path (any format gr_dataset_load reads) or
 * synth:USERS:ITEMS:PER_USER[:SEED] (the synthetic world). The leave-one-out
 * split is written to OUTDIR/split (gr_split_export) for the PyTorch
 * reference; then SASRec is trained with early stopping on validation
 * NDCG@10 and evaluated on the test queries. Prints one JSON object:
 * per-epoch training seconds (validation excluded), epochs run, best epoch,
 * valid/test HR@10 and NDCG@10.
 *
 * Options: --threads N (default 2), --seed S (default 42),
 *          --time-epochs N (train N epochs without validation; timing only),
 *          --no-export, --verbose.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "genrec/common.h"
#include "genrec/dataset.h"
#include "genrec/eval.h"
#include "genrec/model.h"
#include "genrec/split.h"
#include "genrec/synth.h"

/* Wraps the evaluator's validate() to time the training epochs between
 * validations. In timing mode it does not evaluate at all. */
typedef struct timing {
    gr_fit_ctx inner;
    double last_out;        /* when the previous validate() returned (or fit started) */
    double last_cpu;        /* process CPU time then */
    double epoch_s[100000];
    double epoch_cpu[100000];
    double valid[100000];   /* validation NDCG@10 after each epoch */
    int n;
    int timing_only;
} timing;
static timing T;


static double timed_validate(gr_fit_ctx *ctx, gr_model *m)
{
    (void)ctx;
    double t = gr_time_now(), c = gr_cpu_time();
    if (T.n >= (int)(sizeof T.epoch_s / sizeof T.epoch_s[0])) return -1;
    T.epoch_cpu[T.n] = c - T.last_cpu;
    T.epoch_s[T.n++] = t - T.last_out;
    double v = T.timing_only ? 0.0 : T.inner.validate(&T.inner, m);
    T.valid[T.n - 1] = v;
    T.last_out = gr_time_now();
    T.last_cpu = gr_cpu_time();
    return v;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static gr_dataset *load_data(const char *spec)
{
    if (strncmp(spec, "synth:", 6) == 0) {
        gr_synth_opts o = gr_synth_opts_default();
        long long u = 0, i = 0, seed = 42;
        double per = 0;
        if (sscanf(spec + 6, "%lld:%lld:%lf:%lld", &u, &i, &per, &seed) < 3) {
            gr_errorf("%s: expected synth:USERS:ITEMS:PER_USER[:SEED]", spec);
            return NULL;
        }
        o.n_users = (int32_t)u;
        o.n_items = (int32_t)i;
        o.per_user = per;
        o.seed = (uint64_t)seed;
        gr_synth_world *w = gr_synth_generate(&o);
        if (!w) return NULL;
        gr_dataset *d = gr_synth_to_dataset(w);
        gr_synth_free(w);
        return d;
    }
    return gr_dataset_load(spec, NULL);
}

static void print_metrics(const char *name, const gr_metrics *m)
{
    printf("\"%s\": {\"HR@10\": %.6f, \"NDCG@10\": %.6f, \"HR@50\": %.6f, \"NDCG@50\": %.6f, \"n\": %lld}", name,
           m->hr[2], m->ndcg[2], m->hr[4], m->ndcg[4], (long long)m->n);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s DATA OUTDIR [--threads N] [--seed S] [--time-epochs N] [--no-export] "
                        "[--verbose] [sasrec.key=value ...]\n", argv[0]);
        return 2;
    }
    const char *data = argv[1], *out = argv[2];
    int threads = 2, time_epochs = 0, do_export = 1, verbose = 0;
    unsigned long long seed = 42;
    const char *kv[64];
    int nkv = 0;
    char epochs_kv[64], patience_kv[64];
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--time-epochs") && i + 1 < argc) time_epochs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-export")) do_export = 0;
        else if (!strcmp(argv[i], "--verbose")) verbose = 1;
        else if (nkv < 60) kv[nkv++] = argv[i];
    }
    if (time_epochs > 0) { /* appended last: the last value of a key wins */
        snprintf(epochs_kv, sizeof epochs_kv, "sasrec.epochs=%d", time_epochs);
        snprintf(patience_kv, sizeof patience_kv, "sasrec.patience=%d", time_epochs + 1);
        kv[nkv++] = epochs_kv;
        kv[nkv++] = patience_kv;
    }
    gr_threads_set(threads);
    gr_verbosity = verbose ? 1 : 0;

    double t0 = gr_time_now();
    gr_dataset *d = load_data(data);
    if (!d) { fprintf(stderr, "error: %s\n", gr_error_message()); return 1; }
    gr_split_opts so = gr_split_opts_default(GR_PROTOCOL_LOO);
    gr_split *s = gr_split_build(d, &so);
    if (!s) { fprintf(stderr, "error: %s\n", gr_error_message()); return 1; }
    if (do_export) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", out);
        if (gr_split_export(s, dir) != GR_OK) { /* OUTDIR itself may not exist yet */
            fprintf(stderr, "error: %s\n", gr_error_message());
            return 1;
        }
    }
    double t_data = gr_time_now() - t0;

    gr_params p = {kv, nkv};
    gr_model *m = gr_model_create("sasrec", &p);
    if (!m) { fprintf(stderr, "error: %s\n", gr_error_message()); return 1; }
    gr_eval_opts eo = gr_eval_opts_default();
    T.inner = gr_eval_fit_ctx(s, &eo, seed, verbose);
    T.timing_only = time_epochs > 0;
    gr_fit_ctx ctx = T.inner;
    ctx.validate = timed_validate;
    T.last_out = gr_time_now();
    T.last_cpu = gr_cpu_time();
    double tf = gr_time_now();
    if (m->ops->fit(m, s, &ctx) != GR_OK) { fprintf(stderr, "error: %s\n", gr_error_message()); return 1; }
    double fit_s = gr_time_now() - tf;

    double sorted[100000];
    memcpy(sorted, T.epoch_s, sizeof(double) * (size_t)T.n);
    qsort(sorted, (size_t)T.n, sizeof(double), cmp_double);
    int best = 0; /* first epoch with the highest validation NDCG@10 (what fit restores) */
    for (int i = 1; i < T.n; i++)
        if (T.valid[i] > T.valid[best]) best = i;
    printf("{\"impl\": \"genrec\", \"data\": \"%s\", \"threads\": %d, \"n_users\": %d, \"n_items\": %d, "
           "\"n_inter\": %lld, \"data_seconds\": %.3f, \"fit_seconds\": %.3f, \"epochs_run\": %d, "
           "\"best_epoch\": %d, \"epoch_seconds\": %.4f, \"epoch_seconds_all\": [",
           data, threads, (int)d->n_users, (int)d->n_items, (long long)d->n_inter, t_data, fit_s, T.n,
           time_epochs ? 0 : best + 1, T.n ? sorted[T.n / 2] : 0.0);
    for (int i = 0; i < T.n; i++) printf("%s%.4f", i ? ", " : "", T.epoch_s[i]);
    memcpy(sorted, T.epoch_cpu, sizeof(double) * (size_t)T.n);
    qsort(sorted, (size_t)T.n, sizeof(double), cmp_double);
    printf("], \"epoch_cpu_seconds\": %.4f", T.n ? sorted[T.n / 2] : 0.0);
    if (!time_epochs) {
        gr_metrics mv, mt;
        gr_metrics_init(&mv);
        gr_metrics_init(&mt);
        if (gr_eval_queries(m, s, s->valid, s->n_valid, &eo, &mv) != GR_OK ||
            gr_eval_queries(m, s, s->test, s->n_test, &eo, &mt) != GR_OK) {
            fprintf(stderr, "error: %s\n", gr_error_message());
            return 1;
        }
        printf(", ");
        print_metrics("valid", &mv);
        printf(", ");
        print_metrics("test", &mt);
    }
    printf("}\n");
    gr_model_free(m);
    gr_split_free(s);
    gr_dataset_free(d);
    return 0;
}
