/* `genrec train` and `genrec recommend` end to end on a small synthetic
 * world: train a tiny gen model for one epoch, save it, recommend for a
 * stored user (K lines of real items), for a history of ids and titles, as
 * JSON; bad inputs give the documented exit statuses and messages; `genrec
 * eval --beams` is validated. */
#include "gr_test.h"

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *bin_path(void)
{
    const char *bin = getenv("GENREC_BIN");
    return bin && access(bin, X_OK) == 0 ? bin : NULL;
}

/* Run `genrec ARGS`; *out / *err get stdout / stderr (framework ring buffer). */
static int run(const char *args, const char **out, const char **err)
{
    char cmd[8192], o[600], e[600];
    snprintf(o, sizeof o, "%s/cli.out", gr_test_tmpdir());
    snprintf(e, sizeof e, "%s/cli.err", gr_test_tmpdir());
    snprintf(cmd, sizeof cmd, "OMP_WAIT_POLICY=passive '%s' %s >'%s' 2>'%s'", bin_path(), args, o, e);
    int st = system(cmd);
    if (out) *out = gr_test_read_text(o);
    if (err) *err = gr_test_read_text(e);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; s && *s; s++) n += *s == '\n';
    return n;
}

static void test_train_recommend(void)
{
    if (!bin_path()) { gr_test_skip("genrec binary not built (GENREC_BIN)"); return; }
    const char *tmp = gr_test_tmpdir(), *out, *err;
    char args[4096], model[600];
    snprintf(model, sizeof model, "%s/m.gguf", tmp);
    snprintf(args, sizeof args, "synth --out '%s/w' --users 80 --items 40 --per-user 10 --seed 3", tmp);
    REQUIRE(run(args, NULL, NULL) == 0);

    /* usage errors before any work */
    CHECK_EQ_INT(run("train --model gen --out x.gguf", NULL, &err), 2);
    CHECK_HAS(err, "--data");
    snprintf(args, sizeof args, "train --data '%s/w' --model pop --out '%s'", tmp, model);
    CHECK_EQ_INT(run(args, NULL, &err), 2);
    CHECK_HAS(err, "model 'pop' cannot be trained and saved");
    snprintf(args, sizeof args, "train --data '%s/w' --model gen --param gen.nope=1 --out '%s'", tmp, model);
    CHECK_EQ_INT(run(args, NULL, &err), 2);
    CHECK_HAS(err, "gen.nope");
    snprintf(args, sizeof args, "train --data '%s/w' --model gen --out '%s/no/such/dir/m.gguf' --quiet", tmp, tmp);
    CHECK_EQ_INT(run(args, NULL, &err), 1);
    CHECK_HAS(err, "does not exist");
    CHECK_EQ_INT(run("train --help", &out, NULL), 0);
    CHECK_HAS(out, "--param");
    CHECK_HAS(out, "--out FILE.gguf");

    snprintf(args, sizeof args,
             "train --data '%s/w' --model gen --param gen.epochs=1 --param gen.round_steps=0 --param gen.dim=16 "
             "--param gen.layers=1 --param gen.heads=2 --param gen.ctx=64 --param gen.batch=512 --param gen.vocab=300 --beams 8 "
             "--threads 2 --quiet --out '%s'", tmp, model);
    int rc = run(args, &out, &err);
    if (rc) fprintf(stderr, "%s", err ? err : "");
    REQUIRE(rc == 0);
    CHECK_HAS(out, "valid NDCG@10");
    CHECK_HAS(out, "test NDCG@10");
    CHECK_HAS(out, "HR@10");
    CHECK_HAS(out, "model saved to");
    REQUIRE(gr_path_is_file(model));

    /* a stored user: 5 lines "rank<TAB>item<TAB>title<TAB>score", real items */
    snprintf(args, sizeof args, "recommend --model '%s' --user 1 -k 5 --threads 2", model);
    rc = run(args, &out, &err);
    if (rc) fprintf(stderr, "%s", err ? err : "");
    REQUIRE(rc == 0);
    REQUIRE(out);
    CHECK_EQ_INT(count_lines(out), 5);
    char items_csv[700];
    snprintf(items_csv, sizeof items_csv, "%s/w/items.csv", tmp);
    char *items = gr_test_read_file(items_csv, NULL);
    REQUIRE(items);
    char first_item[64] = "";
    const char *line = out;
    for (int r = 1; r <= 5 && line && *line; r++) {
        int rank = 0, tabs = 0;
        char key[64] = "";
        CHECK(sscanf(line, "%d\t%63[^\t]", &rank, key) == 2);
        CHECK_EQ_INT(rank, r);
        for (const char *p = line; *p && *p != '\n'; p++) tabs += *p == '\t';
        CHECK_EQ_INT(tabs, 3);
        char needle[80];
        snprintf(needle, sizeof needle, "\n%s,", key);
        CHECK(strstr(items, needle) != NULL); /* a real item id of the catalogue */
        if (r == 1) snprintf(first_item, sizeof first_item, "%s", key);
        line = strchr(line, '\n');
        if (line) line++;
    }
    free(items);

    /* a history by id, and the same as JSON; -k larger than the beams */
    snprintf(args, sizeof args, "recommend --model '%s' --history '%s' -k 12 --threads 2", model, first_item);
    CHECK_EQ_INT(run(args, &out, NULL), 0);
    CHECK_EQ_INT(count_lines(out), 12);
    snprintf(args, sizeof args, "recommend --model '%s' --user 1 --history '%s' -k 3 --json --threads 2", model,
             first_item);
    CHECK_EQ_INT(run(args, &out, NULL), 0);
    CHECK_HAS(out, "{\"model\":\"gen\", \"user\":\"1\", \"history\":[");
    CHECK_HAS(out, "\"items\":[{\"rank\":1, \"item\":");
    CHECK(out && !strstr(out, "\"rank\":4"));

    /* bad inputs */
    snprintf(args, sizeof args, "recommend --model '%s' --user no-such-user", model);
    CHECK_EQ_INT(run(args, NULL, &err), 1);
    CHECK_HAS(err, "unknown user 'no-such-user'");
    snprintf(args, sizeof args, "recommend --model '%s' --history '%s;Not A Title'", model, first_item);
    CHECK_EQ_INT(run(args, NULL, &err), 1);
    CHECK_HAS(err, "unknown item 'Not A Title'");
    snprintf(args, sizeof args, "recommend --model '%s/w/items.csv' --user 1", tmp);
    CHECK_EQ_INT(run(args, NULL, &err), 1);
    CHECK_HAS(err, "items.csv");
    snprintf(args, sizeof args, "recommend --model '%s'", model);
    CHECK_EQ_INT(run(args, NULL, &err), 2);
    CHECK_HAS(err, "--user");
    snprintf(args, sizeof args, "recommend --model '%s' --user 1 -k 0", model);
    CHECK_EQ_INT(run(args, NULL, NULL), 2);
    snprintf(args, sizeof args, "recommend --model '%s' --user 1 --beams 5000", model);
    CHECK_EQ_INT(run(args, NULL, NULL), 2);
    CHECK_EQ_INT(run("recommend --help", &out, NULL), 0);
    CHECK_HAS(out, "-k K");
    CHECK_HAS(out, "--json");

    /* genrec eval --beams */
    CHECK_EQ_INT(run("eval --help", &out, NULL), 0);
    CHECK_HAS(out, "--beams N");
    snprintf(args, sizeof args, "eval --data '%s/w' --models pop --beams 0", tmp);
    CHECK_EQ_INT(run(args, NULL, &err), 2);
    CHECK_HAS(err, "--beams");
    snprintf(args, sizeof args, "eval --data '%s/w' --models pop --beams 7 --quiet", tmp);
    CHECK_EQ_INT(run(args, &out, NULL), 0);
    CHECK_HAS(out, "pop");
}

int main(void)
{
    GR_RUN(test_train_recommend);
    return gr_test_finish();
}
