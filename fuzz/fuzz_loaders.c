/* libFuzzer target for every dataset loader.
 *
 * Input layout: byte 0 picks the format (low 3 bits), whether to also run
 * gr_dataset_prepare with a k-core and a cache round trip (bit 3) and whether
 * the rest is one file (bit 4: e.g. gzip data, which contains NUL bytes);
 * otherwise the rest is split at NUL bytes into up to three files. Files are
 * written into a private temp directory under the names that format reads
 * (see `layouts`). Loading must
 * never crash or leak, whatever the bytes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "genrec/dataset.h"

static const struct {
    const char *format;
    const char *file[3];
} layouts[8] = {
    {"ml-100k", {"u.data", "u.item", "u.genre"}},
    {"ml-dat", {"ratings.dat", "movies.dat", "tags.dat"}},
    {"ml-csv", {"ratings.csv", "movies.csv", "tags.csv"}},
    {"recbole", {"f.inter", "f.item", NULL}},
    {"recbole-seq", {"f.test.inter", "f.train.inter", "f.text"}},
    {"amazon", {"reviews.json", "meta_x.json", NULL}},
    {"csv", {"interactions.csv", "items.csv", NULL}},
    {"cache", {"c.grds", NULL, NULL}},
};

static char dir[64];
static const char *const all_names[] = {
    "u.data", "u.item", "u.genre", "ratings.dat", "movies.dat", "tags.dat", "ratings.csv", "movies.csv",
    "tags.csv", "f.inter", "f.item", "f.test.inter", "f.train.inter", "f.text", "reviews.json", "meta_x.json",
    "interactions.csv", "items.csv", "c.grds", "out.grds", NULL};

static void cleanup(void)
{
    char path[128];
    for (int k = 0; all_names[k]; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, all_names[k]);
        unlink(path);
    }
    rmdir(dir);
}

static void write_file(const char *name, const uint8_t *p, size_t n)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return;
    if (n) fwrite(p, 1, n, f);
    fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/genrec-fuzz-XXXXXX");
        if (!mkdtemp(dir)) return 0;
        atexit(cleanup);
    }
    if (size < 1) return 0;
    int sel = data[0] & 7, extra = (data[0] >> 3) & 1, whole = (data[0] >> 4) & 1;
    data++;
    size--;
    /* remove every file of the previous input */
    char path[128];
    for (int k = 0; all_names[k]; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, all_names[k]);
        unlink(path);
    }
    size_t pos = 0;
    for (int k = 0; k < 3 && layouts[sel].file[k]; k++) {
        if (k > 0 && pos > size) break;
        const uint8_t *start = data + pos;
        size_t left = size - pos;
        const uint8_t *nul = !whole && k < 2 && layouts[sel].file[k + 1] ? memchr(start, 0, left) : NULL;
        size_t n = nul ? (size_t)(nul - start) : left;
        write_file(layouts[sel].file[k], start, n);
        pos += n + 1;
    }
    gr_load_opts o = gr_load_opts_default();
    o.format = layouts[sel].format;
    if (extra) {
        o.kcore = 2;
        o.min_rating = 1.0f;
    }
    const char *target = dir;
    if (sel == 7) {
        snprintf(path, sizeof path, "%s/c.grds", dir);
        target = path;
    }
    gr_dataset *d = gr_dataset_load(target, &o);
    static int verbose = -1; /* GENREC_FUZZ_VERBOSE=1: say what each input did (corpus checks) */
    if (verbose < 0) verbose = getenv("GENREC_FUZZ_VERBOSE") != NULL;
    if (verbose) {
        if (d) fprintf(stderr, "%s: %d users, %d items, %lld interactions\n", o.format, d->n_users, d->n_items,
                       (long long)d->n_inter);
        else fprintf(stderr, "%s: error: %s\n", o.format, gr_error_message());
    }
    if (d) {
        if (extra) {
            char out[128];
            snprintf(out, sizeof out, "%s/out.grds", dir);
            if (gr_dataset_save_cache(d, out) == GR_OK) {
                gr_dataset *c = gr_dataset_load_cache(out);
                if (!c || c->n_inter != d->n_inter || c->n_items != d->n_items) abort(); /* round trip must hold */
                gr_dataset_free(c);
            }
            FILE *nul = fopen("/dev/null", "w");
            if (nul) {
                gr_dataset_print_summary(d, nul);
                fclose(nul);
            }
        }
        gr_dataset_free(d);
    } else {
        /* every failure must explain itself */
        if (!gr_error_message()[0]) abort();
    }
    gr_error_clear();
    return 0;
}
