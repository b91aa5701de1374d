/* Delimited tables for the loaders (see table.h). */
#include "data/table.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *delim_name(const gr_table *t, char *buf, size_t n)
{
    if (!strcmp(t->delim, "\t")) return "TAB";
    if (!strcmp(t->delim, ",")) return "comma";
    snprintf(buf, n, "'%s'", t->delim);
    return buf;
}

void gr_table_close(gr_table *t)
{
    gr_lines_close(t->r);
    if (t->head)
        for (int i = 0; i < t->nf; i++) free(t->head[i]);
    free(t->head);
    t->r = NULL;
    t->head = NULL;
}

/* Split the line in place into t->f; returns the field count or -1. */
static int split(gr_table *t, char *line, size_t len)
{
    if (t->delim[1]) return gr_fields_split_str(line, t->delim, t->f, GR_TABLE_MAXF);
    return gr_fields_split(line, len, t->delim[0], t->quote, t->f, GR_TABLE_MAXF, t->path, t->ln);
}

/* The next line or RFC-4180 record: 1, 0 at the end, -1 on error. */
static int next_line(gr_table *t, char **line, size_t *len)
{
    int rc = t->quote ? gr_lines_next_record(t->r, t->delim[0], line, len) : gr_lines_next(t->r, line, len);
    if (rc == 1) t->ln = gr_lines_lineno(t->r);
    return rc;
}

int gr_table_open(gr_table *t, const char *path, const char *delim, int quote, int header)
{
    memset(t, 0, sizeof *t);
    if (delim && (!delim[0] || strlen(delim) >= sizeof t->delim || (quote && delim[1])))
        return gr_errorf("%s: bad table delimiter", path);
    if (delim) strcpy(t->delim, delim);
    t->quote = quote;
    if (!(t->r = gr_lines_open(path))) return GR_ERR;
    t->path = gr_lines_path(t->r);
    if (!header) return GR_OK;
    char *line;
    size_t len;
    /* an unknown delimiter is detected from the first physical line */
    int rc = delim ? next_line(t, &line, &len) : gr_lines_next(t->r, &line, &len);
    t->ln = 1;
    if (rc == 0) gr_errorf("%s:1: field 'header': empty file (a header line is required)", path);
    if (rc <= 0) goto fail;
    if (!delim) strcpy(t->delim, memchr(line, '\t', len) ? "\t" : ",");
    int n = split(t, line, len);
    if (n < 0) goto fail;
    if (n > GR_TABLE_MAXF) {
        gr_errorf("%s:1: header has %d fields (at most %d)", path, n, GR_TABLE_MAXF);
        goto fail;
    }
    if (!(t->head = calloc((size_t)n, sizeof *t->head))) { gr_errorf("%s: out of memory", path); goto fail; }
    t->nf = n;
    for (int i = 0; i < n; i++)
        if (!(t->head[i] = gr_strdup(t->f[i]))) goto fail;
    snprintf(t->shape, sizeof t->shape, "as in the header");
    return GR_OK;
fail:
    gr_table_close(t);
    return GR_ERR;
}

void gr_table_expect(gr_table *t, int nf, const char *shape)
{
    t->nf = nf;
    snprintf(t->shape, sizeof t->shape, "%s", shape ? shape : "");
}

int gr_table_next(gr_table *t)
{
    char *line;
    size_t len;
    for (;;) {
        int rc = next_line(t, &line, &len);
        if (rc <= 0) return rc;
        if (len == 0) continue;
        t->n = split(t, line, len);
        if (t->n < 0) return -1;
        if (t->nf && t->n != t->nf) {
            char buf[16];
            gr_errorf("%s:%lld: expected %d %s-separated fields %s, found %d", t->path, (long long)t->ln, t->nf,
                      delim_name(t, buf, sizeof buf), t->shape, t->n);
            return -1;
        }
        return 1;
    }
}

int gr_table_col(const gr_table *t, const char *const *names, int required)
{
    int c = t->head ? gr_fields_find(t->head, t->nf, names) : -1;
    if (c < 0 && required) gr_errorf("%s:1: field '%s': column missing from the header", t->path, names[0]);
    return c;
}

/* ---- ids ---------------------------------------------------------------------------------- */

int gr_parse_id(const char *s, char *out, size_t outn, const char *path, int64_t ln, const char *field)
{
    size_t n = 0;
    while (s[n] >= '0' && s[n] <= '9') n++;
    if (n > 0 && n < 19 && n < outn && !s[n] && (s[0] != '0' || n == 1)) { /* already canonical */
        memcpy(out, s, n + 1);
        return GR_OK;
    }
    int64_t v;
    if (gr_parse_i64(s, &v, path, ln, field) != GR_OK) return GR_ERR;
    if (v < 0) return gr_errorf("%s:%lld: field '%s': id %lld is negative", path, (long long)ln, field, (long long)v);
    snprintf(out, outn, "%lld", (long long)v);
    return GR_OK;
}

int gr_check_id(const char *s, const char *path, int64_t ln, const char *field)
{
    size_t n = strlen(s), bad;
    if (n == 0) return gr_errorf("%s:%lld: field '%s': empty id", path, (long long)ln, field);
    if (!gr_utf8_valid(s, n, &bad))
        return gr_errorf("%s:%lld: field '%s': invalid UTF-8 at byte %zu", path, (long long)ln, field, bad + 1);
    return GR_OK;
}

/* ---- rows -> builder ------------------------------------------------------------------------ */

int gr_table_inter_cols(const gr_table *t, const char *const *const names[4], gr_inter_cols *c)
{
    memset(c, 0, sizeof *c);
    for (int k = 0; k < 4; k++) {
        c->name[k] = names[k][0];
        if ((c->col[k] = gr_table_col(t, names[k], k < 2)) < 0 && k < 2) return GR_ERR;
    }
    return GR_OK;
}

int gr_table_read_interactions(gr_table *t, gr_builder *b, const gr_inter_cols *c)
{
    char ubuf[32], ibuf[32];
    int64_t n = 0;
    int rc;
    while ((rc = gr_table_next(t)) == 1) {
        const char *u = t->f[c->col[0]], *it = t->f[c->col[1]];
        int64_t ts = n;
        float rating = NAN;
        if (c->numeric_ids) {
            if (gr_parse_id(u, ubuf, sizeof ubuf, t->path, t->ln, c->name[0]) ||
                gr_parse_id(it, ibuf, sizeof ibuf, t->path, t->ln, c->name[1]))
                return GR_ERR;
            u = ubuf;
            it = ibuf;
        } else if (gr_check_id(u, t->path, t->ln, c->name[0]) || gr_check_id(it, t->path, t->ln, c->name[1])) {
            return GR_ERR;
        }
        if (c->col[2] >= 0) {
            const char *s = t->f[c->col[2]];
            if ((c->int_time ? gr_parse_i64(s, &ts, t->path, t->ln, c->name[2])
                             : gr_parse_time(s, &ts, t->path, t->ln, c->name[2])) != GR_OK)
                return GR_ERR;
        }
        if (c->col[3] >= 0 && gr_parse_float(t->f[c->col[3]], &rating, t->path, t->ln, c->name[3]) != GR_OK)
            return GR_ERR;
        if (gr_builder_add(b, u, it, ts, rating) != GR_OK)
            return gr_error_prefix("%s:%lld: ", t->path, (long long)t->ln);
        n++;
    }
    if (rc < 0) return GR_ERR;
    if (n == 0)
        return gr_errorf("%s:%lld: field '%s': no interaction records found (empty file?)", t->path,
                         (long long)gr_lines_lineno(t->r) + 1, c->name[0]);
    return GR_OK;
}

int gr_table_read_item_text(gr_table *t, gr_builder *b, int id, const int txt[4], int seq_genres, int derive_title)
{
    int rc;
    while ((rc = gr_table_next(t)) == 1) {
        const char *item = t->f[id];
        if (gr_check_id(item, t->path, t->ln, t->head ? t->head[id] : "item_id") != GR_OK) return GR_ERR;
        if (!gr_builder_has_item(b, item)) continue; /* no interactions: skip its text */
        char *v[5] = {NULL, NULL, NULL, NULL, NULL}; /* title, genres, brand, text, derived title */
        int ok = GR_OK;
        for (int k = 0; k < 4 && ok == GR_OK; k++) {
            if (txt[k] < 0) continue;
            const char *s = t->f[txt[k]];
            if (!(v[k] = gr_text_clean(s, strlen(s), GR_ENC_UTF8, t->path, t->ln, t->head ? t->head[txt[k]] : "text")))
                ok = GR_ERR;
        }
        if (ok == GR_OK && seq_genres && v[1])
            for (char *p = v[1]; *p; p++)
                if (*p == ' ') *p = '|';
        if (ok == GR_OK && derive_title && txt[0] < 0 && v[3] && !(v[4] = gr_text_first_sentence(v[3]))) ok = GR_ERR;
        if (ok == GR_OK) ok = gr_builder_item_text(b, item, v[0] ? v[0] : v[4], v[1], v[2], v[3]);
        for (int k = 0; k < 5; k++) free(v[k]);
        if (ok != GR_OK) return GR_ERR;
    }
    return rc < 0 ? GR_ERR : GR_OK;
}
