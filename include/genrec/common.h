/* genrec common definitions: error reporting, allocation, parameters, timing.
 *
 * Error contract (used by every library function):
 *   - functions that can fail return int: GR_OK (0) on success, GR_ERR (-1) on
 *     failure, or a pointer that is NULL on failure;
 *   - on failure they first record a human-readable message naming what and
 *     where (file:line, field) with gr_errorf(); the caller reads it with
 *     gr_error_message(). The message is thread-local and stays until the next
 *     gr_errorf() on the same thread.
 *   - library code never calls exit() or abort() for bad input.
 */
#ifndef GENREC_COMMON_H
#define GENREC_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define GR_OK 0
#define GR_ERR (-1)

#if defined(__GNUC__)
#define GR_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define GR_PRINTF(a, b)
#endif

/* Record an error message (printf-style) for this thread; returns GR_ERR so a
 * caller can write `return gr_errorf("%s:%d: bad field", path, line);`. */
int gr_errorf(const char *fmt, ...) GR_PRINTF(1, 2);

/* Prefix the current error message with more context ("loading X: " + old). */
int gr_error_prefix(const char *fmt, ...) GR_PRINTF(1, 2);

/* The last error message recorded on this thread ("" if none). */
const char *gr_error_message(void);

/* Clear the thread's error message. */
void gr_error_clear(void);

/* Allocation that records an error on failure and returns NULL. Sizes are
 * overflow-checked (n * size). Memory from gr_alloc is 64-byte aligned and is
 * released with gr_free. gr_calloc zeroes. */
void *gr_alloc(size_t n, size_t size);
void *gr_calloc(size_t n, size_t size);
void *gr_realloc(void *p, size_t n, size_t size); /* not aligned; free with gr_free */
void gr_free(void *p);
char *gr_strdup(const char *s);             /* NULL + error on OOM */
char *gr_strndup(const char *s, size_t n);  /* NULL + error on OOM */

/* Monotonic wall clock in seconds. */
double gr_time_now(void);
/* CPU time of the whole process (all threads) in seconds. */
double gr_cpu_time(void);

/* Verbosity for progress output on stderr: 0 quiet, 1 normal (default), 2 debug. */
extern int gr_verbosity;
void gr_log(int level, const char *fmt, ...) GR_PRINTF(2, 3);

/* Number of compute threads used by library kernels (default: physical cores,
 * i.e. omp_get_num_procs()). gr_threads_set(0) restores the default. */
int gr_threads_get(void);
void gr_threads_set(int n);

/* ---- key=value parameters ------------------------------------------------
 * Models and commands take their hyperparameters as a list of "key=value"
 * strings (e.g. "sasrec.dim=64"). The list does not own the strings. */
typedef struct gr_params {
    const char **kv;
    int n;
} gr_params;

/* Look up key; return the default when absent. On a malformed value record an
 * error, store the default in *out and return GR_ERR. */
int gr_params_int(const gr_params *p, const char *key, int64_t def, int64_t *out);
int gr_params_float(const gr_params *p, const char *key, double def, double *out);
const char *gr_params_str(const gr_params *p, const char *key, const char *def);


/* ---- atomic file writes -----------------------------------------------------
 * Every artifact genrec writes (caches, checkpoints, GGUF, JSON results, split
 * exports) goes through this: the data is written to a temporary file in the
 * destination directory, flushed, fsync'ed, renamed over the destination and
 * the directory is synced, so a reader never sees a partial file and a crash
 * never loses the previous version.
 *
 *   gr_afile a;
 *   if (gr_afile_open(&a, path)) return GR_ERR;
 *   fprintf(a.f, ...);
 *   return gr_afile_commit(&a);   // or gr_afile_abort(&a) to discard
 */
typedef struct gr_afile {
    FILE *f;      /* write here */
    char *path;   /* destination (owned) */
    char *tmp;    /* temporary name (owned) */
} gr_afile;

/* Create the temporary file next to path (mode 0644, a 1 MiB stdio buffer).
 * GR_ERR + message naming path. */
int gr_afile_open(gr_afile *a, const char *path);
/* Flush, sync, close and rename into place; frees a's strings. On any error
 * (including a write error on a.f earlier) the temporary is removed, the
 * destination is untouched, and GR_ERR + message naming path is returned. */
int gr_afile_commit(gr_afile *a);
/* Close and remove the temporary; the destination is untouched. */
void gr_afile_abort(gr_afile *a);

/* ---- files and paths (src/core/fs.c) ------------------------------------------ */

/* Read the whole file at path into a new buffer (free with gr_free), with a
 * NUL byte after the data (not counted in *len). A file larger than max
 * bytes (0: no limit) is an error. NULL + "PATH: cannot open: ..." / "PATH:
 * read error: ..." / "PATH: larger than MAX bytes" on failure. */
char *gr_read_file(const char *path, size_t max, size_t *len);

/* Create directory dir and any missing parents (mkdir -p, mode 0755). An
 * existing directory is fine; an existing non-directory is an error. */
int gr_mkdirs(const char *dir);

/* a + "/" + b (trailing slashes of a dropped), newly allocated (free); NULL +
 * error on out of memory. */
char *gr_path_join(const char *a, const char *b);
/* 1 if path is an existing regular file / directory, else 0. */
int gr_path_is_file(const char *path);
int gr_path_is_dir(const char *path);
/* dir/name if it is a file, else dir/name.gz if that is a file, else NULL
 * (no error recorded unless out of memory). Newly allocated. */
char *gr_path_find(const char *dir, const char *name);
/* Last component of path without trailing slashes and without the first of
 * the given suffixes (NULL-terminated list, may be NULL) that it ends with,
 * newly allocated; NULL + error on out of memory. */
char *gr_path_stem(const char *path, const char *const *suffixes);
/* Directory part of path ("." when none, "/" for the root), newly allocated. */
char *gr_path_dir(const char *path);
/* 1 if s ends with suf. */
int gr_str_ends(const char *s, const char *suf);

/* CRC-32 (zlib's) of data[0..n), continuing from crc (start with 0):
 * gr_crc32(gr_crc32(0, a, na), b, nb) == gr_crc32(0, a+b, na+nb). */
uint32_t gr_crc32(uint32_t crc, const void *data, size_t n);

/* ---- UTF-8 (src/core/utf8.c): the one decoder/validator --------------------- */

/* Code point gr_utf8_decode returns for a byte that does not start a valid
 * sequence (outside Unicode, so it never collides with a real character). */
#define GR_UTF8_INVALID 0x110000u

/* Decode one code point from s[0..n) (n >= 1). Returns the bytes consumed
 * (1..4). Invalid, overlong, surrogate (U+D800..DFFF), above-U+10FFFF and
 * truncated sequences consume exactly one byte and give GR_UTF8_INVALID, so
 * every byte string decodes losslessly. */
size_t gr_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* Encode cp into out (room for 4 bytes); returns 1..4, or 0 if cp is above
 * U+10FFFF. Surrogates are encoded as they are: callers that need valid
 * UTF-8 map them (and NUL, if unwanted) to U+FFFD first. */
size_t gr_utf8_encode(uint32_t cp, char *out);

/* Byte length of the sequence a lead byte announces (1 for ASCII,
 * continuation or invalid bytes), like llama.cpp's unicode_len_utf8. */
size_t gr_utf8_len(unsigned char lead);

/* 1 if s[0..n) is valid UTF-8 (every sequence decodes, see gr_utf8_decode),
 * else 0 and *bad (if not NULL) = offset of the first bad byte. */
int gr_utf8_valid(const char *s, size_t n, size_t *bad);

#endif
