/* The evaluation path: fake oracle / reverse-oracle / id-order models through
 * gr_eval_queries under loo, ts and c20; batching; error propagation; the fit
 * context; JSON and table output; `genrec eval` error paths and a small run
 * (when the binary and ../shared are available). */
#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "genrec/eval.h"
#include "genrec/rng.h"
#include "gr_test.h"

/* ---- a small random dataset ---------------------------------------------- */

enum { DU = 40, DI = 100, DMAX = 16 };
static int64_t d_off[DU + 1];
static int32_t d_items[DU * DMAX];
static int64_t d_times[DU * DMAX];
static gr_dataset ds;

static const gr_dataset *dataset(void)
{
    if (ds.n_users) return &ds;
    gr_rng r;
    gr_rng_seed(&r, 3);
    int64_t k = 0;
    for (int u = 0; u < DU; u++) {
        d_off[u] = k;
        int len = u == 7 ? 2 : 3 + (int)gr_rng_below(&r, DMAX - 3); /* user 7: training only */
        for (int i = 0; i < len; i++) {
            d_items[k] = (int32_t)gr_rng_below(&r, DI);
            d_times[k] = 1000 + (int64_t)gr_rng_below(&r, 500) + 10 * i;
            if (i && d_times[k] < d_times[k - 1]) d_times[k] = d_times[k - 1];
            k++;
        }
    }
    d_off[DU] = k;
    ds.name = "tiny \"q\"";
    ds.format = "synth";
    ds.n_users = DU;
    ds.n_items = DI;
    ds.n_inter = k;
    ds.user_off = d_off;
    ds.inter_item = d_items;
    ds.inter_time = d_times;
    ds.has_time = 1;
    return &ds;
}

/* ---- fake models ------------------------------------------------------------ */

typedef struct fake {
    int kind;           /* 0 oracle, 1 reverse oracle, 2 score = -item id, 3 fails */
    double valid_seen;  /* what ctx->validate returned during fit */
    int calls;          /* score() calls */
} fake;

static int fake_fit(gr_model *m, const gr_split *s, gr_fit_ctx *ctx)
{
    fake *f = m->impl;
    m->n_items = s->n_items;
    f->valid_seen = ctx && ctx->validate ? ctx->validate(ctx, m) : -2.0;
    return GR_OK;
}

static int fake_score(gr_model *m, const gr_query *q, int n, float *scores)
{
    fake *f = m->impl;
    f->calls++;
    if (f->kind == 3) return gr_errorf("boom");
    for (int r = 0; r < n; r++) {
        float *row = scores + (size_t)r * (size_t)m->n_items;
        for (int j = 0; j < m->n_items; j++) row[j] = f->kind == 2 ? (float)-j : 0.0f;
        if (f->kind == 0) row[q[r].target] = 1.0f;
        if (f->kind == 1) row[q[r].target] = -1.0f;
    }
    return GR_OK;
}

static const gr_model_ops fake_ops = {"fake", fake_fit, fake_score, NULL};

static gr_model fake_model(fake *f, int kind)
{
    memset(f, 0, sizeof *f);
    f->kind = kind;
    gr_model m = {&fake_ops, DI, f, 0, 0, 0};
    return m;
}

static gr_split *split(gr_protocol p)
{
    gr_split_opts o = gr_split_opts_default(p);
    return gr_split_build(dataset(), &o);
}

/* ---- gr_eval_queries --------------------------------------------------------- */

static void test_oracles(void)
{
    for (int p = 0; p < 3; p++) {
        gr_split *s = split((gr_protocol)p);
        REQUIRE(s && s->n_test > 0);
        fake f;
        gr_model m = fake_model(&f, 0);
        gr_metrics mt;
        gr_metrics_init(&mt);
        REQUIRE(gr_eval_queries(&m, s, s->test, s->n_test, NULL, &mt) == GR_OK);
        CHECK_EQ_INT(mt.n, s->n_test);
        for (int k = 0; k < GR_EVAL_NK; k++) {
            CHECK_NEAR(mt.hr[k], 1.0, 1e-12);
            CHECK_NEAR(mt.ndcg[k], 1.0, 1e-12);
        }
        CHECK_NEAR(mt.mrr, 1.0, 1e-12);

        m = fake_model(&f, 1);
        gr_metrics_init(&mt);
        REQUIRE(gr_eval_queries(&m, s, s->test, s->n_test, NULL, &mt) == GR_OK);
        CHECK_NEAR(mt.hr[0], 0.0, 0);
        if (p == GR_PROTOCOL_C20) {
            /* last among its 20 candidates */
            CHECK_NEAR(mt.hr[2], 0.0, 0);
            CHECK_NEAR(mt.hr[3], 1.0, 1e-12);
            CHECK_NEAR(mt.ndcg[3], 1.0 / log2(21.0), 1e-12);
            CHECK_NEAR(mt.mrr, 1.0 / 20, 1e-12);
        } else {
            /* last among >= 100 - 15 items */
            CHECK_NEAR(mt.hr[4], 0.0, 0);
            CHECK(mt.mrr < 1.0 / 80);
        }
        gr_split_free(s);
    }
}

/* score = -id: the target's rank is the number of allowed smaller ids. */
static void test_id_order_and_batches(void)
{
    gr_split *s = split(GR_PROTOCOL_LOO);
    REQUIRE(s);
    int64_t *want = malloc((size_t)s->n_test * sizeof *want), *want_in = malloc((size_t)s->n_test * sizeof *want);
    REQUIRE(want && want_in);
    for (int64_t i = 0; i < s->n_test; i++) {
        const gr_query *q = &s->test[i];
        int64_t r = q->target;
        for (int32_t j = 0; j < q->target; j++) {
            int seen = 0;
            for (int32_t k = 0; k < q->hist_len; k++) seen |= q->hist[k] == j;
            r -= seen;
        }
        want[i] = r;
        want_in[i] = q->target;
    }
    gr_metrics exp_ex, exp_in;
    gr_metrics_init(&exp_ex);
    gr_metrics_init(&exp_in);
    gr_metrics_add_ranks(&exp_ex, want, s->n_test, 0);
    gr_metrics_add_ranks(&exp_in, want_in, s->n_test, 0);
    CHECK(exp_ex.mrr > exp_in.mrr); /* exclusion matters on this data */

    int batches[] = {1, 3, 7, 256};
    for (int b = 0; b < 4; b++) {
        fake f;
        gr_model m = fake_model(&f, 2);
        gr_eval_opts o = gr_eval_opts_default();
        o.batch = batches[b];
        gr_metrics mt;
        gr_metrics_init(&mt);
        REQUIRE(gr_eval_queries(&m, s, s->test, s->n_test, &o, &mt) == GR_OK);
        CHECK_EQ_INT(f.calls, (s->n_test + batches[b] - 1) / batches[b]);
        CHECK_EQ_INT(mt.n, s->n_test);
        for (int k = 0; k < GR_EVAL_NK; k++) {
            CHECK_NEAR(mt.hr[k], exp_ex.hr[k], 1e-12);
            CHECK_NEAR(mt.ndcg[k], exp_ex.ndcg[k], 1e-12);
        }
        CHECK_NEAR(mt.mrr, exp_ex.mrr, 1e-12);
        o.exclude_seen = 0;
        gr_metrics_init(&mt);
        REQUIRE(gr_eval_queries(&m, s, s->test, s->n_test, &o, &mt) == GR_OK);
        CHECK_NEAR(mt.mrr, exp_in.mrr, 1e-12);
        CHECK_NEAR(mt.ndcg[2], exp_in.ndcg[2], 1e-12);
    }
    /* accumulating two halves into one gr_metrics equals one call */
    fake f;
    gr_model m = fake_model(&f, 2);
    gr_metrics mt;
    gr_metrics_init(&mt);
    int64_t h = s->n_test / 2;
    REQUIRE(gr_eval_queries(&m, s, s->test, h, NULL, &mt) == GR_OK);
    REQUIRE(gr_eval_queries(&m, s, s->test + h, s->n_test - h, NULL, &mt) == GR_OK);
    CHECK_EQ_INT(mt.n, s->n_test);
    CHECK_NEAR(mt.mrr, exp_ex.mrr, 1e-12);
    /* max_k is carried into the metrics */
    gr_eval_opts o = gr_eval_opts_default();
    o.max_k = 10;
    gr_metrics_init(&mt);
    REQUIRE(gr_eval_queries(&m, s, s->test, s->n_test, &o, &mt) == GR_OK);
    CHECK_EQ_INT(mt.max_k, 10);
    free(want);
    free(want_in);
    gr_split_free(s);
}

static void test_errors(void)
{
    gr_split *s = split(GR_PROTOCOL_LOO);
    REQUIRE(s);
    fake f;
    gr_model m = fake_model(&f, 3);
    gr_metrics mt;
    gr_metrics_init(&mt);
    mt.n = 5; /* untouched on error */
    CHECK_EQ_INT(gr_eval_queries(&m, s, s->test, s->n_test, NULL, &mt), GR_ERR);
    CHECK_HAS(gr_error_message(), "fake");
    CHECK_HAS(gr_error_message(), "boom");
    CHECK_EQ_INT(mt.n, 5);
    m = fake_model(&f, 0);
    m.n_items = DI + 1;
    CHECK_EQ_INT(gr_eval_queries(&m, s, s->test, s->n_test, NULL, &mt), GR_ERR);
    CHECK_HAS(gr_error_message(), "items");
    gr_query bad = s->test[0];
    bad.target = DI;
    m.n_items = DI;
    CHECK_EQ_INT(gr_eval_queries(&m, s, &bad, 1, NULL, &mt), GR_ERR);
    CHECK_HAS(gr_error_message(), "target");
    CHECK_EQ_INT(gr_eval_queries(&m, s, s->test, 0, NULL, &mt), GR_OK); /* nothing to do */
    CHECK_EQ_INT(mt.n, 5);
    gr_split_free(s);
}

static void test_fit_ctx(void)
{
    gr_split *s = split(GR_PROTOCOL_LOO);
    REQUIRE(s && s->n_valid > 0);
    gr_fit_ctx c = gr_eval_fit_ctx(s, NULL, 17, 0);
    CHECK(c.validate != NULL);
    CHECK_EQ_INT(c.seed, 17);
    gr_fit_ctx c2 = gr_eval_fit_ctx(s, NULL, 18, 1);
    CHECK(c2.eval_state == c.eval_state); /* shared state, nothing to free */
    fake f;
    gr_model m = fake_model(&f, 0);
    REQUIRE(m.ops->fit(&m, s, &c) == GR_OK);
    CHECK_NEAR(f.valid_seen, 1.0, 1e-12);
    CHECK(f.calls > 0);
    m = fake_model(&f, 1);
    REQUIRE(m.ops->fit(&m, s, &c) == GR_OK);
    CHECK_NEAR(f.valid_seen, 0.0, 0);
    m = fake_model(&f, 3);
    REQUIRE(m.ops->fit(&m, s, &c) == GR_OK);
    CHECK(f.valid_seen < 0);
    CHECK_HAS(gr_error_message(), "boom");
    gr_split_free(s);

    /* no validation queries: validate is NULL */
    int64_t off[2] = {0, 2};
    int32_t it[2] = {0, 1};
    int64_t tm[2] = {0, 1};
    gr_dataset d = {0};
    d.n_users = 1;
    d.n_items = 2;
    d.n_inter = 2;
    d.user_off = off;
    d.inter_item = it;
    d.inter_time = tm;
    s = gr_split_build(&d, NULL);
    REQUIRE(s);
    c = gr_eval_fit_ctx(s, NULL, 1, 0);
    CHECK(c.validate == NULL);
    gr_split_free(s);
}

/* ---- output ------------------------------------------------------------------ */

static void test_json_and_table(void)
{
    gr_eval_result r[2];
    memset(r, 0, sizeof r);
    snprintf(r[0].model, sizeof r[0].model, "pop");
    const int64_t ranks[4] = {0, 3, 12, 70};
    gr_metrics_add_ranks(&r[0].test, ranks, 4, 0);
    r[0].valid_ndcg10 = 0.25;
    r[0].train_seconds = 1.5;
    r[0].eval_seconds = 0.125;
    r[0].invalid_rate = NAN; /* a classic model: no key */
    snprintf(r[1].model, sizeof r[1].model, "beam");
    gr_metrics_add_ranks(&r[1].test, ranks, 4, 10);
    r[1].valid_ndcg10 = NAN;
    r[1].invalid_rate = 0.25;
    char path[512];
    snprintf(path, sizeof path, "%s/res.json", gr_test_tmpdir());
    REQUIRE(gr_eval_write_json_run(path, "ml \"x\"", "loo", r, 2, 4, 7) == GR_OK);
    const char *j = gr_test_read_text(path);
    REQUIRE(j);
    CHECK(!strncmp(j, "{\"dataset\":\"ml \\\"x\\\"\", \"protocol\":\"loo\", \"results\":[", 48));
    CHECK_HAS(j, "{\"model\":\"pop\", \"metrics\":{\"HR@1\":0.250000, \"HR@5\":0.500000, \"HR@10\":0.500000, "
                 "\"HR@20\":0.750000, \"HR@50\":0.750000, \"NDCG@1\":0.250000,");
    CHECK_HAS(j, "\"MRR\":0.335252}, \"valid_ndcg10\":0.250000, \"train_seconds\":1.500, \"eval_seconds\":0.125}");
    CHECK_HAS(j, "\"n_test\":4, \"seed\":7}");
    const char *beam = strstr(j, "\"model\":\"beam\"");
    REQUIRE(beam);
    CHECK_HAS(beam, "\"HR@10\":");
    CHECK(!strstr(beam, "HR@20") && !strstr(beam, "HR@50") && !strstr(beam, "NDCG@20"));
    CHECK_HAS(beam, "\"MRR\":0.312500, \"invalid_rate\":0.250000}");
    CHECK(strstr(j, "invalid_rate") == strstr(beam, "invalid_rate")); /* not in pop's metrics */
    CHECK_HAS(beam, "\"NDCG@10\":");
    CHECK_HAS(beam, "\"valid_ndcg10\":null");
    /* every brace/bracket balanced */
    int depth = 0, ok = 1, in_str = 0;
    for (const char *p = j; *p; p++) {
        if (in_str) { if (*p == '\\') p++; else if (*p == '"') in_str = 0; continue; }
        if (*p == '"') in_str = 1;
        else if (*p == '{' || *p == '[') depth++;
        else if (*p == '}' || *p == ']') ok &= --depth >= 0;
    }
    CHECK(ok && depth == 0 && !in_str);
    if (access("/usr/bin/python3", X_OK) == 0) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd,
                 "/usr/bin/python3 -c \"import json,sys; d=json.load(open(sys.argv[1])); "
                 "assert d['seed']==7 and d['n_test']==4 and d['results'][0]['metrics']['HR@50']==0.75 "
                 "and d['results'][1]['valid_ndcg10'] is None and 'HR@20' not in d['results'][1]['metrics']\" %s",
                 path);
        CHECK_EQ_INT(system(cmd), 0);
    }
    /* no temp file left behind; a bad path fails and names it */
    DIR *dh = opendir(gr_test_tmpdir());
    REQUIRE(dh);
    int leftovers = 0;
    for (struct dirent *e; (e = readdir(dh)) != NULL;) leftovers += strstr(e->d_name, ".tmp") != NULL;
    closedir(dh);
    CHECK_EQ_INT(leftovers, 0);
    char bad[600];
    snprintf(bad, sizeof bad, "%s/no/such/dir/r.json", gr_test_tmpdir());
    CHECK_EQ_INT(gr_eval_write_json_run(bad, "d", "loo", r, 2, 4, 7), GR_ERR);
    CHECK_HAS(gr_error_message(), "no/such/dir/r.json");
    /* the seedless form */
    REQUIRE(gr_eval_write_json(path, "d", "ts", r, 1) == GR_OK);
    j = gr_test_read_text(path);
    CHECK_HAS(j, "\"n_test\":4}");
    CHECK(!strstr(j, "seed"));

    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    REQUIRE(f);
    gr_eval_print_table(f, r, 2);
    fclose(f);
    CHECK_HAS(buf, "NDCG@50");
    CHECK_HAS(buf, "pop");
    CHECK_HAS(buf, "0.2500");
    const char *bl = strstr(buf, "beam");
    CHECK(bl && strstr(bl, " - "));
    free(buf);
}

/* ---- the genrec binary ---------------------------------------------------------- */

static int run_cli(const char *args, const char *errfile)
{
    const char *bin = getenv("GENREC_BIN");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s >%s/cli.out 2>%s", bin, args, gr_test_tmpdir(), errfile);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_cli(void)
{
    const char *bin = getenv("GENREC_BIN");
    if (!bin || access(bin, X_OK) != 0) { gr_test_skip("genrec binary not built (GENREC_BIN)"); return; }
    char err[512], outp[512];
    snprintf(err, sizeof err, "%s/cli.err", gr_test_tmpdir());
    snprintf(outp, sizeof outp, "%s/cli.out", gr_test_tmpdir());
    CHECK_EQ_INT(run_cli("eval --help", err), 0);
    const char *h = gr_test_read_text(outp);
    CHECK_HAS(h, "--include-seen");
    CHECK_HAS(h, "--export-split");
    CHECK_HAS(h, "--max-hist");
    CHECK_HAS(h, "c20");
    CHECK_EQ_INT(run_cli("eval --protocol loo", err), 2);
    CHECK_HAS(gr_test_read_text(err), "--data");
    CHECK_EQ_INT(run_cli("eval --data x --protocol nope", err), 2);
    CHECK_HAS(gr_test_read_text(err), "unknown protocol 'nope'");
    CHECK_EQ_INT(run_cli("eval --data x --models pop,nosuch", err), 2);
    CHECK_HAS(gr_test_read_text(err), "unknown model 'nosuch'");
    CHECK_EQ_INT(run_cli("eval --data x --models pop --param bad", err), 2);
    CHECK_HAS(gr_test_read_text(err), "MODEL.key=value");
    CHECK_EQ_INT(run_cli("eval --data x --models pop --param nosuch.k=1", err), 2);
    CHECK_HAS(gr_test_read_text(err), "unknown model 'nosuch'");
    CHECK_EQ_INT(run_cli("eval --data x --models pop --param pop.k=1", err), 2);
    CHECK_HAS(gr_test_read_text(err), "pop.k");
    CHECK_EQ_INT(run_cli("eval --data x --seed abc", err), 2);
    CHECK_EQ_INT(run_cli("eval --data x --bogus", err), 2);
    char args[2048];
    snprintf(args, sizeof args, "eval --data %s/does-not-exist --models pop --quiet", gr_test_tmpdir());
    CHECK_EQ_INT(run_cli(args, err), 1);
    CHECK_HAS(gr_test_read_text(err), "does-not-exist");

    const char *ml = gr_test_shared("data/ml-100k");
    if (!ml) { gr_test_skip("../shared/data/ml-100k absent: skipping the small real run"); return; }
    char json[512], dir[512];
    snprintf(json, sizeof json, "%s/ml.json", gr_test_tmpdir());
    snprintf(dir, sizeof dir, "%s/mlsplit", gr_test_tmpdir());
    snprintf(args, sizeof args, "eval --data %s --protocol c20 --models pop --seed 5 --threads 2 --quiet --out %s "
             "--export-split %s", ml, json, dir);
    CHECK_EQ_INT(run_cli(args, err), 0);
    const char *j = gr_test_read_text(json);
    REQUIRE(j);
    CHECK_HAS(j, "\"protocol\":\"c20\"");
    CHECK_HAS(j, "{\"model\":\"pop\", \"metrics\":{\"HR@1\":");
    CHECK_HAS(j, "\"n_test\":943, \"seed\":5}");
    CHECK_HAS(j, "\"HR@20\":1.000000"); /* 20 candidates: everything is in the top 20 */
    char p[600];
    snprintf(p, sizeof p, "%s/meta.txt", dir);
    CHECK_STR(gr_test_read_text(p), "943 1682\n");
    snprintf(p, sizeof p, "%s/test.txt", dir);
    const char *t = gr_test_read_text(p);
    CHECK(t && strchr(t, '|'));
    CHECK_HAS(gr_test_read_text(outp), "pop");
}

int main(void)
{
    GR_RUN(test_oracles);
    GR_RUN(test_id_order_and_batches);
    GR_RUN(test_errors);
    GR_RUN(test_fit_ctx);
    GR_RUN(test_json_and_table);
    GR_RUN(test_cli);
    return gr_test_finish();
}
