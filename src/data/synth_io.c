/* Files of the synthetic world: interactions.csv, items.csv and truth.bin
 * (the complete world, reloadable with gr_synth_load). Every file is written
 * atomically (gr_afile). The truth.bin layout is documented in docs/SYNTH.md. */
#include "synth_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define TRUTH_MAGIC "GRSYNTH1"
#define TRUTH_VERSION 1u
#define TRUTH_ENDIAN 0x01020304u

/* ---- output files (atomic, gr_afile) ------------------------------------------------ */

typedef struct outfile {
    gr_afile a;
    uint32_t crc;   /* running CRC-32 of everything written (truth.bin) */
    int err;
} outfile;

static int out_open(outfile *o, const char *dir, const char *name)
{
    memset(o, 0, sizeof *o);
    char *path = gr_path_join(dir, name);
    if (!path) return GR_ERR;
    int rc = gr_afile_open(&o->a, path);
    free(path);
    return rc;
}

static void out_write(outfile *o, const void *p, size_t n)
{
    if (o->err || n == 0) return;
    if (fwrite(p, 1, n, o->a.f) != n) { o->err = 1; return; }
    o->crc = gr_crc32(o->crc, p, n);
}

static void out_str(outfile *o, const char *s) { out_write(o, s, strlen(s)); }

/* Finish: flush, sync and rename into place; a failed write earlier left the
 * stream in error, so the commit reports it and removes the temporary. */
static int out_close(outfile *o) { return gr_afile_commit(&o->a); }

/* ---- CSV ------------------------------------------------------------------------------------ */

static void csv_field(outfile *o, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) { out_str(o, s); return; }
    out_write(o, "\"", 1);
    for (const char *p = s; *p; p++) {
        if (*p == '"') out_write(o, "\"\"", 2);
        else out_write(o, p, 1);
    }
    out_write(o, "\"", 1);
}

static int write_interactions(const gr_synth_world *w, const char *dir)
{
    outfile o;
    if (out_open(&o, dir, "interactions.csv")) return GR_ERR;
    out_str(&o, "user,item,timestamp,rating\n");
    char line[96];
    for (int32_t u = 0; u < w->n_users; u++)
        for (int64_t k = w->user_off[u]; k < w->user_off[u + 1]; k++) {
            int n = snprintf(line, sizeof line, "%d,%d,%lld,%d\n", u + 1, w->inter_item[k] + 1,
                             (long long)w->inter_time[k], (int)w->inter_rating[k]);
            out_write(&o, line, (size_t)n);
        }
    return out_close(&o);
}

static int write_items(const gr_synth_world *w, const char *dir)
{
    outfile o;
    if (out_open(&o, dir, "items.csv")) return GR_ERR;
    out_str(&o, "item,title,genres,brand\n");
    char id[24];
    for (int32_t i = 0; i < w->n_items; i++) {
        snprintf(id, sizeof id, "%d,", i + 1);
        out_str(&o, id);
        csv_field(&o, w->item_title[i]);
        out_write(&o, ",", 1);
        csv_field(&o, w->item_genres[i]);
        out_write(&o, ",", 1);
        csv_field(&o, w->studio_name[w->item_studio[i]]);
        out_write(&o, "\n", 1);
    }
    return out_close(&o);
}

/* ---- truth.bin -------------------------------------------------------------------------------- */

#define W_SCALAR(o, x) do { __typeof__(x) _v = (x); out_write((o), &_v, sizeof _v); } while (0)

static void write_strings(outfile *o, char *const *s, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        uint32_t len = (uint32_t)strlen(s[i]);
        W_SCALAR(o, len);
        out_write(o, s[i], len);
    }
}

static int write_truth(const gr_synth_world *w, const char *dir)
{
    outfile o;
    if (out_open(&o, dir, "truth.bin")) return GR_ERR;
    const gr_synth_opts *p = &w->opts;
    size_t ni = (size_t)w->n_items, nu = (size_t)w->n_users, nx = (size_t)w->n_inter;
    out_write(&o, TRUTH_MAGIC, 8);
    W_SCALAR(&o, (uint32_t)TRUTH_VERSION);
    W_SCALAR(&o, (uint32_t)TRUTH_ENDIAN);
    W_SCALAR(&o, p->seed);
    W_SCALAR(&o, p->n_users);
    W_SCALAR(&o, p->n_items);
    W_SCALAR(&o, p->per_user);
    W_SCALAR(&o, p->min_per_user);
    W_SCALAR(&o, p->n_genres);
    W_SCALAR(&o, p->dim);
    double d[] = {p->franchise_frac, p->zipf, p->p_sequel, p->sequel_decay, p->sequel_gate,
                  p->momentum, p->drift, p->gamma, p->eta, p->dup_title_rate};
    out_write(&o, d, sizeof d);
    W_SCALAR(&o, p->t_start);
    W_SCALAR(&o, p->span_days);
    int32_t sizes[] = {w->n_users, w->n_items, w->n_genres, w->n_themes, w->n_studios, w->n_franchises, w->dim};
    out_write(&o, sizes, sizeof sizes);
    W_SCALAR(&o, w->n_inter);
    write_strings(&o, w->genre_name, w->n_genres);
    write_strings(&o, w->studio_name, w->n_studios);
    write_strings(&o, w->item_title, w->n_items);
    write_strings(&o, w->item_genres, w->n_items);
    out_write(&o, w->item_genre, ni * 4);
    out_write(&o, w->item_theme, ni * 4);
    out_write(&o, w->item_genre_mask, ni * 4);
    out_write(&o, w->item_studio, ni * 4);
    out_write(&o, w->item_franchise, ni * 4);
    out_write(&o, w->item_part, ni * 4);
    out_write(&o, w->item_prev, ni * 4);
    out_write(&o, w->item_next, ni * 4);
    out_write(&o, w->item_year, ni * 4);
    out_write(&o, w->item_pop, ni * 4);
    out_write(&o, w->item_era, ni * 4);
    out_write(&o, w->item_vec, ni * (size_t)w->dim * 4);
    out_write(&o, w->user_theta0, nu * (size_t)w->n_themes * 4);
    out_write(&o, w->user_theta1, nu * (size_t)w->n_themes * 4);
    out_write(&o, w->user_vec, nu * (size_t)w->dim * 4);
    out_write(&o, w->user_era, nu * 4);
    out_write(&o, w->user_off, (nu + 1) * 8);
    out_write(&o, w->inter_item, nx * 4);
    out_write(&o, w->inter_time, nx * 8);
    out_write(&o, w->inter_rating, nx * 4);
    uint32_t crc = o.crc;
    out_write(&o, &crc, 4);
    return out_close(&o);
}

int gr_synth_write(const gr_synth_world *w, const char *dir)
{
    if (!w || !dir) return gr_errorf("synth: write: no world or directory");
    if (gr_mkdirs(dir)) return GR_ERR;
    if (write_items(w, dir) || write_interactions(w, dir) || write_truth(w, dir)) return GR_ERR;
    return GR_OK;
}

/* ---- load -------------------------------------------------------------------------------------------- */

typedef struct reader {
    const unsigned char *p;
    size_t n, off;
    const char *path;
    int err;
} reader;

/* Copy n bytes into dst; on a short file record an error naming the field. */
static int rd(reader *r, void *dst, size_t n, const char *field)
{
    if (r->err) return GR_ERR;
    if (n > r->n - r->off) {
        r->err = 1;
        return gr_errorf("%s: field '%s' at offset %zu: file truncated", r->path, field, r->off);
    }
    memcpy(dst, r->p + r->off, n);
    r->off += n;
    return GR_OK;
}

static int rd_array(reader *r, void **dst, size_t count, size_t size, const char *field)
{
    if (r->err) return GR_ERR;
    if (size && count > (r->n - r->off) / size) {
        r->err = 1;
        return gr_errorf("%s: field '%s' at offset %zu: file truncated", r->path, field, r->off);
    }
    *dst = gr_alloc(count, size);
    if (!*dst) { r->err = 1; return GR_ERR; }
    return rd(r, *dst, count * size, field);
}

static int rd_strings(reader *r, char ***dst, int64_t n, const char *field)
{
    if (r->err) return GR_ERR;
    if ((uint64_t)n > (r->n - r->off) / 4) {
        r->err = 1;
        return gr_errorf("%s: field '%s' at offset %zu: file truncated", r->path, field, r->off);
    }
    *dst = gr_calloc((size_t)n, sizeof(char *));
    if (!*dst) { r->err = 1; return GR_ERR; }
    for (int64_t i = 0; i < n; i++) {
        uint32_t len;
        if (rd(r, &len, 4, field)) return GR_ERR;
        if (len > r->n - r->off || memchr(r->p + r->off, 0, len)) {
            r->err = 1;
            return gr_errorf("%s: field '%s' [%lld] at offset %zu: bad string length %u", r->path, field,
                             (long long)i, r->off, len);
        }
        if (!((*dst)[i] = gr_strndup((const char *)r->p + r->off, len))) { r->err = 1; return GR_ERR; }
        r->off += len;
    }
    return GR_OK;
}

static int bad(const char *path, const char *field, int64_t idx, const char *what)
{
    return gr_errorf("%s: field '%s' [%lld]: %s", path, field, (long long)idx, what);
}

/* Check every invariant the sampler and the dataset rely on. */
static int validate(const gr_synth_world *w, const char *path)
{
    const int32_t ni = w->n_items, nu = w->n_users;
    for (int32_t i = 0; i < ni; i++) {
        if (w->item_genre[i] < 0 || w->item_genre[i] >= w->n_genres) return bad(path, "item_genre", i, "out of range");
        if (w->item_theme[i] / GR_SYNTH_THEMES_PER_GENRE != w->item_genre[i] || w->item_theme[i] < 0)
            return bad(path, "item_theme", i, "not a theme of the item's genre");
        if (w->item_studio[i] < 0 || w->item_studio[i] >= w->n_studios) return bad(path, "item_studio", i, "out of range");
        if (w->item_franchise[i] < -1 || w->item_franchise[i] >= w->n_franchises)
            return bad(path, "item_franchise", i, "out of range");
        int32_t p = w->item_prev[i], q = w->item_next[i];
        if (p < -1 || p >= ni || q < -1 || q >= ni || p == i || q == i)
            return bad(path, "item_prev/item_next", i, "out of range");
        if ((p >= 0 && w->item_next[p] != i) || (q >= 0 && w->item_prev[q] != i))
            return bad(path, "item_prev/item_next", i, "links are not mutual");
        if (!(w->item_pop[i] >= 0 && w->item_pop[i] <= 1)) return bad(path, "item_pop", i, "not a share in [0, 1]");
        if (!(w->item_era[i] >= -1 && w->item_era[i] <= 1)) return bad(path, "item_era", i, "outside [-1, 1]");
        for (int j = 0; j < w->dim; j++)
            if (!isfinite(w->item_vec[(size_t)i * w->dim + j])) return bad(path, "item_vec", i, "not finite");
    }
    double tsum[GR_SYNTH_MAX_GENRES * GR_SYNTH_THEMES_PER_GENRE] = {0};
    for (int32_t i = 0; i < ni; i++) tsum[w->item_theme[i]] += w->item_pop[i];
    for (int t = 0; t < w->n_themes; t++)
        if (tsum[t] > 1.001) return bad(path, "item_pop", t, "shares of a theme sum to more than 1");
    for (size_t k = 0; k < (size_t)nu * w->n_themes; k++)
        if (!(w->user_theta0[k] >= 0 && w->user_theta1[k] >= 0 && isfinite(w->user_theta0[k]) &&
              isfinite(w->user_theta1[k])))
            return bad(path, "user_theta", (int64_t)(k / (size_t)w->n_themes), "not a finite weight >= 0");
    for (size_t k = 0; k < (size_t)nu * w->dim; k++)
        if (!isfinite(w->user_vec[k])) return bad(path, "user_vec", (int64_t)(k / (size_t)w->dim), "not finite");
    if (w->user_off[0] != 0) return bad(path, "user_off", 0, "does not start at 0");
    for (int32_t u = 0; u < nu; u++) {
        if (!(w->user_era[u] >= -1 && w->user_era[u] <= 1)) return bad(path, "user_era", u, "outside [-1, 1]");
        if (w->user_off[u + 1] < w->user_off[u]) return bad(path, "user_off", u + 1, "decreasing");
        for (int64_t k = w->user_off[u] + 1; k < w->user_off[u + 1]; k++)
            if (w->inter_time[k] <= w->inter_time[k - 1]) return bad(path, "inter_time", k, "not increasing per user");
    }
    if (w->user_off[nu] != w->n_inter) return bad(path, "user_off", nu, "does not end at n_inter");
    for (int64_t k = 0; k < w->n_inter; k++) {
        if (w->inter_item[k] < 0 || w->inter_item[k] >= ni) return bad(path, "inter_item", k, "out of range");
        if (!(w->inter_rating[k] >= 1 && w->inter_rating[k] <= 5)) return bad(path, "inter_rating", k, "outside [1, 5]");
    }
    return GR_OK;
}

gr_synth_world *gr_synth_load(const char *path)
{
    char file[4096];
    struct stat st;
    if (!path) { gr_errorf("synth: load: no path"); return NULL; }
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) snprintf(file, sizeof file, "%s/truth.bin", path);
    else snprintf(file, sizeof file, "%s", path);
    size_t n = 0;
    unsigned char *buf = (unsigned char *)gr_read_file(file, 0, &n);
    if (!buf) return NULL;
    gr_synth_world *w = gr_calloc(1, sizeof *w);
    if (!w) { gr_free(buf); return NULL; }
    reader r = {buf, n, 0, file, 0};
    char magic[8];
    uint32_t version = 0, endian = 0;
    if (n < 8 + 4 || memcmp(buf, TRUTH_MAGIC, 8)) { gr_errorf("%s: not a synth truth file (bad magic)", file); goto fail; }
    uint32_t crc_stored;
    memcpy(&crc_stored, buf + n - 4, 4);
    uint32_t crc = gr_crc32(0, buf, n - 4);
    r.n = n - 4;
    rd(&r, magic, 8, "magic");
    rd(&r, &version, 4, "version");
    rd(&r, &endian, 4, "endian");
    if (r.err) goto fail;
    if (version != TRUTH_VERSION) { gr_errorf("%s: field 'version': %u is not supported (want %u)", file, version, TRUTH_VERSION); goto fail; }
    if (endian != TRUTH_ENDIAN) { gr_errorf("%s: field 'endian': written on a machine of other byte order", file); goto fail; }
    if (crc != crc_stored) { gr_errorf("%s: field 'crc32': checksum mismatch (file corrupt)", file); goto fail; }
    gr_synth_opts *p = &w->opts;
    rd(&r, &p->seed, 8, "seed");
    rd(&r, &p->n_users, 4, "n_users");
    rd(&r, &p->n_items, 4, "n_items");
    rd(&r, &p->per_user, 8, "per_user");
    rd(&r, &p->min_per_user, 4, "min_per_user");
    rd(&r, &p->n_genres, 4, "n_genres");
    rd(&r, &p->dim, 4, "dim");
    double d[10];
    rd(&r, d, sizeof d, "options");
    p->franchise_frac = d[0], p->zipf = d[1], p->p_sequel = d[2], p->sequel_decay = d[3], p->sequel_gate = d[4];
    p->momentum = d[5], p->drift = d[6], p->gamma = d[7], p->eta = d[8], p->dup_title_rate = d[9];
    rd(&r, &p->t_start, 8, "t_start");
    rd(&r, &p->span_days, 8, "span_days");
    int32_t sizes[7];
    rd(&r, sizes, sizeof sizes, "sizes");
    rd(&r, &w->n_inter, 8, "n_inter");
    if (r.err) goto fail;
    if (synth_check_opts(p)) { gr_error_prefix("%s: ", file); goto fail; }
    if (sizes[0] != p->n_users || sizes[1] != p->n_items || sizes[2] != p->n_genres ||
        sizes[3] != p->n_genres * GR_SYNTH_THEMES_PER_GENRE || sizes[6] != p->dim || sizes[4] < 1 ||
        sizes[4] > 1000000 || sizes[5] < 0 || sizes[5] > p->n_items || w->n_inter < 0 ||
        (uint64_t)w->n_inter > (uint64_t)(n / 16)) {
        gr_errorf("%s: field 'sizes': inconsistent with the options or the file size", file);
        goto fail;
    }
    w->n_users = sizes[0], w->n_items = sizes[1], w->n_genres = sizes[2], w->n_themes = sizes[3];
    w->n_studios = sizes[4], w->n_franchises = sizes[5], w->dim = sizes[6];
    size_t ni = (size_t)w->n_items, nu = (size_t)w->n_users, nx = (size_t)w->n_inter;
    /* rd_strings / rd_array check counts against the remaining bytes before
     * allocating, so a lying header cannot cause huge allocations */
    rd_strings(&r, &w->genre_name, w->n_genres, "genre_name");
    rd_strings(&r, &w->studio_name, w->n_studios, "studio_name");
    rd_strings(&r, &w->item_title, w->n_items, "item_title");
    rd_strings(&r, &w->item_genres, w->n_items, "item_genres");
    rd_array(&r, (void **)&w->item_genre, ni, 4, "item_genre");
    rd_array(&r, (void **)&w->item_theme, ni, 4, "item_theme");
    rd_array(&r, (void **)&w->item_genre_mask, ni, 4, "item_genre_mask");
    rd_array(&r, (void **)&w->item_studio, ni, 4, "item_studio");
    rd_array(&r, (void **)&w->item_franchise, ni, 4, "item_franchise");
    rd_array(&r, (void **)&w->item_part, ni, 4, "item_part");
    rd_array(&r, (void **)&w->item_prev, ni, 4, "item_prev");
    rd_array(&r, (void **)&w->item_next, ni, 4, "item_next");
    rd_array(&r, (void **)&w->item_year, ni, 4, "item_year");
    rd_array(&r, (void **)&w->item_pop, ni, 4, "item_pop");
    rd_array(&r, (void **)&w->item_era, ni, 4, "item_era");
    rd_array(&r, (void **)&w->item_vec, ni * (size_t)w->dim, 4, "item_vec");
    rd_array(&r, (void **)&w->user_theta0, nu * (size_t)w->n_themes, 4, "user_theta0");
    rd_array(&r, (void **)&w->user_theta1, nu * (size_t)w->n_themes, 4, "user_theta1");
    rd_array(&r, (void **)&w->user_vec, nu * (size_t)w->dim, 4, "user_vec");
    rd_array(&r, (void **)&w->user_era, nu, 4, "user_era");
    rd_array(&r, (void **)&w->user_off, nu + 1, 8, "user_off");
    rd_array(&r, (void **)&w->inter_item, nx, 4, "inter_item");
    rd_array(&r, (void **)&w->inter_time, nx, 8, "inter_time");
    rd_array(&r, (void **)&w->inter_rating, nx, 4, "inter_rating");
    if (r.err) goto fail;
    if (r.off != r.n) { gr_errorf("%s: %zu unexpected bytes after the last field", file, r.n - r.off); goto fail; }
    if (validate(w, file) || synth_build_index(w)) goto fail;
    gr_free(buf);
    return w;
fail:
    gr_free(buf);
    gr_synth_free(w);
    return NULL;
}
