/* gr_dataset_load: pick a loader (format detection or opts->format), load,
 * then gr_dataset_prepare.
 *
 * Detection, first match wins:
 *   file  *.grds or starting with "GRDS"               -> cache
 *         u.data, u.item, u.genre                      -> ml-100k (its directory)
 *         ratings.dat, movies.dat                      -> ml-dat  (its directory)
 *         ratings.csv, movies.csv                      -> ml-csv  (its directory)
 *         *.train.inter / *.valid.inter / *.test.inter -> recbole-seq
 *         *.inter                                      -> recbole
 *         *.json / *.jsonl (optionally .gz)            -> amazon
 *         anything else                                -> csv
 *   dir   u.data -> ml-100k; ratings.dat -> ml-dat; ratings.csv -> ml-csv;
 *         *.{train,valid,test}.inter -> recbole-seq; *.inter -> recbole;
 *         interactions.csv|tsv -> csv; *.json[l][.gz] -> amazon.
 * (".gz" variants of the MovieLens and csv files are accepted too.) */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "data/loaders.h"

static const char *const formats[] = {"ml-100k", "ml-dat", "ml-csv", "recbole", "recbole-seq", "amazon", "csv", "cache", NULL};

static int has_magic(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    char m[4];
    int ok = fread(m, 1, 4, f) == 4 && !memcmp(m, "GRDS", 4);
    fclose(f);
    return ok;
}

static int name_is(const char *base, const char *want)
{
    size_t n = strlen(want);
    return !strncmp(base, want, n) && (base[n] == '\0' || !strcmp(base + n, ".gz"));
}

int gr_name_is_split_inter(const char *nm)
{
    return strstr(nm, ".train.inter") || strstr(nm, ".valid.inter") || strstr(nm, ".test.inter");
}

int gr_name_is_json(const char *nm)
{
    return gr_str_ends(nm, ".json") || gr_str_ends(nm, ".json.gz") || gr_str_ends(nm, ".jsonl") ||
           gr_str_ends(nm, ".jsonl.gz");
}

static const char *detect_file(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (gr_str_ends(base, ".grds") || has_magic(path)) return "cache";
    if (name_is(base, "u.data") || name_is(base, "u.item") || name_is(base, "u.genre")) return "ml-100k";
    if (name_is(base, "ratings.dat") || name_is(base, "movies.dat")) return "ml-dat";
    if (name_is(base, "ratings.csv") || name_is(base, "movies.csv")) return "ml-csv";
    if (gr_name_is_split_inter(base)) return "recbole-seq";
    if (gr_str_ends(base, ".inter") || gr_str_ends(base, ".inter.gz")) return "recbole";
    if (gr_name_is_json(base)) return "amazon";
    return "csv";
}

static const char *detect_dir(const char *path)
{
    static const struct { const char *file, *fmt; } fixed[] = {
        {"u.data", "ml-100k"}, {"ratings.dat", "ml-dat"}, {"ratings.csv", "ml-csv"},
    };
    for (size_t k = 0; k < sizeof fixed / sizeof fixed[0]; k++) {
        char *p = gr_path_find(path, fixed[k].file);
        if (p) { free(p); return fixed[k].fmt; }
    }
    DIR *dp = opendir(path);
    if (!dp) return NULL;
    int seq = 0, atomic = 0, json = 0;
    struct dirent *e;
    while ((e = readdir(dp))) {
        const char *nm = e->d_name;
        if (gr_name_is_split_inter(nm)) seq = 1;
        else if (gr_str_ends(nm, ".inter") || gr_str_ends(nm, ".inter.gz")) atomic = 1;
        else if (gr_name_is_json(nm)) json = 1;
    }
    closedir(dp);
    if (seq) return "recbole-seq";
    if (atomic) return "recbole";
    char *p = gr_path_find(path, "interactions.csv");
    if (!p) p = gr_path_find(path, "interactions.tsv");
    if (p) { free(p); return "csv"; }
    if (json) return "amazon";
    return NULL;
}

/* Directory the MovieLens loaders want: PATH itself or the file's directory. */
static char *ml_dir(const char *path)
{
    return gr_path_is_dir(path) ? gr_strdup(path) : gr_path_dir(path);
}

gr_dataset *gr_dataset_load(const char *path, const gr_load_opts *opts)
{
    gr_load_opts def = gr_load_opts_default();
    if (!opts) opts = &def;
    if (!path || !path[0]) { gr_errorf("dataset path is empty"); return NULL; }
    int is_dir = gr_path_is_dir(path);
    if (!is_dir && !gr_path_is_file(path)) {
        gr_errorf("%s: no such file or directory", path);
        return NULL;
    }
    const char *fmt = opts->format;
    if (!fmt || !fmt[0] || !strcmp(fmt, "auto")) {
        fmt = is_dir ? detect_dir(path) : detect_file(path);
        if (!fmt) {
            gr_errorf("%s: unknown dataset layout: looked for u.data (ml-100k), ratings.dat (ml-dat), "
                      "ratings.csv (ml-csv), NAME.{train,valid,test}.inter (recbole-seq), NAME.inter (recbole), "
                      "interactions.csv|tsv (csv), *.json[.gz] (amazon); or pass a file or --format", path);
            return NULL;
        }
    } else {
        int ok = 0;
        for (int k = 0; formats[k]; k++) ok |= !strcmp(formats[k], fmt);
        if (!ok) {
            gr_errorf("unknown dataset format '%s' (auto, ml-100k, ml-dat, ml-csv, recbole, recbole-seq, amazon, "
                      "csv, cache)", fmt);
            return NULL;
        }
    }
    gr_dataset *d = NULL;
    if (!strcmp(fmt, "cache")) {
        d = gr_dataset_load_cache(path);
    } else if (!strncmp(fmt, "ml-", 3)) {
        char *dir = ml_dir(path);
        if (!dir) return NULL;
        if (!strcmp(fmt, "ml-100k")) d = gr_load_ml100k(dir);
        else if (!strcmp(fmt, "ml-dat")) d = gr_load_mldat(dir);
        else d = gr_load_mlcsv(dir);
        free(dir);
    } else if (!strcmp(fmt, "recbole")) {
        d = gr_load_recbole(path);
    } else if (!strcmp(fmt, "recbole-seq")) {
        d = gr_load_recbole_seq(path);
    } else if (!strcmp(fmt, "amazon")) {
        d = gr_load_amazon(path);
    } else {
        d = gr_load_csv(path);
    }
    if (!d) return NULL;
    if (gr_dataset_prepare(d, opts) != GR_OK) {
        gr_dataset_free(d);
        return NULL;
    }
    if (d->n_inter == 0) {
        gr_errorf("%s: no interactions left after preparing (min rating %g, dedup %s, %d-core)", path,
                  (double)opts->min_rating, opts->dedup ? "on" : "off", opts->kcore);
        gr_dataset_free(d);
        return NULL;
    }
    return d;
}
