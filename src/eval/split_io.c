/* Export a split as plain text files (format in include/genrec/split.h) so
 * that reference implementations train and test on exactly the same data. */
#include "genrec/split.h"

#include <stdlib.h>
#include <string.h>

/* Open dir/name for an atomic write (gr_afile). */
static int open_out(gr_afile *a, const char *dir, const char *name, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", dir, name);
    return gr_afile_open(a, path);
}

static void write_queries(FILE *f, const gr_query *q, int64_t n, int with_cand)
{
    for (int64_t i = 0; i < n; i++) {
        fprintf(f, "%d %d", (int)q[i].user, (int)q[i].target);
        for (int32_t k = 0; k < q[i].hist_len; k++) fprintf(f, " %d", (int)q[i].hist[k]);
        if (with_cand) {
            fputs(" |", f);
            for (int32_t k = 0; q[i].cand && k < q[i].n_cand; k++) fprintf(f, " %d", (int)q[i].cand[k]);
        }
        fputc('\n', f);
    }
}

int gr_split_export(const gr_split *s, const char *dir)
{
    if (!s || !dir || !*dir) return gr_errorf("split export: no split or empty directory name");
    if (gr_mkdirs(dir) != GR_OK) return GR_ERR;

    size_t cap = strlen(dir) + 64;
    char *path = malloc(cap);
    if (!path) return gr_errorf("split export: out of memory");
    int rc = GR_ERR;
    gr_afile a;
    if (open_out(&a, dir, "meta.txt", path, cap) != GR_OK) goto done;
    fprintf(a.f, "%d %d\n", (int)s->n_users, (int)s->n_items);
    if (gr_afile_commit(&a) != GR_OK) goto done;

    if (open_out(&a, dir, "train.txt", path, cap) != GR_OK) goto done;
    for (int32_t u = 0; u < s->n_users; u++) {
        fprintf(a.f, "%d", (int)u);
        for (int64_t k = s->train_off[u]; k < s->train_off[u + 1]; k++) fprintf(a.f, " %d", (int)s->train_item[k]);
        fputc('\n', a.f);
    }
    if (gr_afile_commit(&a) != GR_OK) goto done;

    int with_cand = s->protocol == GR_PROTOCOL_C20;
    if (open_out(&a, dir, "valid.txt", path, cap) != GR_OK) goto done;
    write_queries(a.f, s->valid, s->n_valid, with_cand);
    if (gr_afile_commit(&a) != GR_OK) goto done;

    if (open_out(&a, dir, "test.txt", path, cap) != GR_OK) goto done;
    write_queries(a.f, s->test, s->n_test, with_cand);
    if (gr_afile_commit(&a) != GR_OK) goto done;
    rc = GR_OK;
done:
    free(path);
    return rc;
}
