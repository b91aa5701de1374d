/* Internal: delimited tables, the shared front end of the MovieLens, RecBole
 * and generic CSV loaders.
 *
 * A gr_table reads a plain or gzip text file (gr_lines) row by row: empty
 * lines are skipped, each row is split at a delimiter (one byte, or a string
 * such as MovieLens' "::"), optionally with RFC-4180 quoting (then a quoted
 * field may span lines). With a header, the first line names the columns and
 * every row must have as many fields; without one, gr_table_expect can fix
 * the count. On top of that, gr_table_read_interactions and
 * gr_table_read_item_text turn rows into a gr_builder's interactions and
 * item text. Every error names PATH:LINE and the field. */
#ifndef GENREC_DATA_TABLE_H
#define GENREC_DATA_TABLE_H
#include <stdint.h>

#include "data/text.h"
#include "genrec/dataset.h"

#define GR_TABLE_MAXF 256 /* fields kept per row (and at most this many header fields) */

typedef struct gr_table {
    gr_lines *r;
    const char *path;        /* the file (owned by r) */
    char delim[4];           /* "\t", ",", "|", "::" */
    int quote;               /* RFC-4180 quoting */
    int nf;                  /* fields every row must have; 0: any */
    char shape[96];          /* the expected fields, for count errors ("as in the header") */
    char **head;             /* header names [nf] (owned; a caller may edit them in place), or NULL */
    int n;                   /* fields in the current row (may exceed GR_TABLE_MAXF) */
    char *f[GR_TABLE_MAXF];  /* the current row's fields, valid until the next gr_table_next */
    int64_t ln;              /* line of the current row (its first line) */
} gr_table;

/* Open PATH. DELIM is the delimiter, or NULL with a header to detect it: TAB
 * if the header line has one, else comma. QUOTE: RFC-4180 quoting. HEADER:
 * the first line names the columns (an empty file is then an error). On
 * failure the table is left closed and GR_ERR is returned with an error. */
int gr_table_open(gr_table *t, const char *path, const char *delim, int quote, int header);

/* Without a header: every row must have NF fields; SHAPE describes them in
 * the error, e.g. "(user item rating timestamp)". */
void gr_table_expect(gr_table *t, int nf, const char *shape);

/* Read the next non-empty row into t->f / t->n / t->ln. Returns 1, 0 at the
 * end of the file, or -1 on an error (I/O, broken quoting, field count). */
int gr_table_next(gr_table *t);

/* Index of the header column named one of NAMES (NULL-terminated, ASCII
 * case-insensitive), or -1. A REQUIRED column that is missing records
 * "PATH:1: field 'NAMES[0]': column missing from the header". */
int gr_table_col(const gr_table *t, const char *const *names, int required);

/* Close the table (a closed or zeroed table is fine). */
void gr_table_close(gr_table *t);

/* ---- rows -> dataset builder ------------------------------------------------------ */

/* The columns of an interaction table and how to read them. */
typedef struct gr_inter_cols {
    int col[4];           /* user, item, time, rating; time and rating may be -1 (absent) */
    const char *name[4];  /* their field names in messages */
    int numeric_ids;      /* ids must be non-negative integers and are kept in canonical decimal
                             form ("007" -> "7"; MovieLens); otherwise any non-empty UTF-8 */
    int int_time;         /* timestamps must be integers (else decimals are truncated) */
} gr_inter_cols;

/* Find the interaction columns of a table with a header: NAMES[k] lists the
 * accepted names of the user, item, time and rating columns (user and item
 * required); c->name[k] = NAMES[k][0]; numeric_ids and int_time are 0.
 * GR_ERR with "column missing" when user or item is absent. */
int gr_table_inter_cols(const gr_table *t, const char *const *const names[4], gr_inter_cols *c);

/* Add every remaining row of T to B as one interaction. Without a time column
 * the time is the row's position (file order); without a rating column the
 * rating is NAN. No rows at all is an error "PATH:LINE: field 'USER': no
 * interaction records found (empty file?)". GR_OK or GR_ERR. */
int gr_table_read_interactions(gr_table *t, gr_builder *b, const gr_inter_cols *c);

/* Item text from every remaining row of T: column ID holds the item id, TXT
 * the title, genres, brand and text columns (-1: absent), cleaned as UTF-8.
 * Rows of items without interactions are skipped. SEQ_GENRES: the genres
 * column is a space-separated token list, joined by '|'. DERIVE_TITLE:
 * without a title column the text's first sentence becomes the title. */
int gr_table_read_item_text(gr_table *t, gr_builder *b, int id, const int txt[4], int seq_genres, int derive_title);

/* A MovieLens-style id: a non-negative integer, written to OUT (OUTN bytes)
 * in canonical decimal form. Errors name PATH:LN and FIELD. */
int gr_parse_id(const char *s, char *out, size_t outn, const char *path, int64_t ln, const char *field);

/* A string id (user, item, token): non-empty and valid UTF-8. */
int gr_check_id(const char *s, const char *path, int64_t ln, const char *field);

#endif
