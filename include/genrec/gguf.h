/* GGUF v3 files: a hardened reader and an atomic writer.
 *
 * Reader: gr_gguf_open() maps a file read-only (gr_gguf_open_memory() reads a
 * caller's buffer) and validates everything up front with a bounded cursor:
 * magic and version, string/array length caps, no nested arrays, bool 0/1,
 * duplicate keys and tensor names, n_dims <= 4, overflow-checked element
 * counts and byte sizes, ne[0] a multiple of the type's block size,
 * general.alignment (u32, power of two, <= 1 MiB; default 32), every tensor
 * offset aligned, sequential (as ggml requires) and inside the file. Any
 * violation is an error naming the field and the byte offset; nothing is
 * asserted. After a successful open all metadata is copied into owned memory
 * (strings NUL-terminated, numeric arrays naturally aligned), and tensor data
 * pointers point into the mapping.
 *
 * Writer: a gr_gguf_builder collects key/values and tensors; gr_gguf_write()
 * writes temp file + fsync + rename, with general.alignment honoured,
 * sequential aligned offsets and zero padding, and never nested arrays.
 *
 * Byte order: GGUF is little-endian and so is every host genrec supports.
 */
#ifndef GENREC_GGUF_H
#define GENREC_GGUF_H

#include <stddef.h>
#include <stdint.h>

/* Metadata value types (u32 on disk). */
typedef enum gr_gguf_type {
    GR_GGUF_U8 = 0, GR_GGUF_I8 = 1, GR_GGUF_U16 = 2, GR_GGUF_I16 = 3,
    GR_GGUF_U32 = 4, GR_GGUF_I32 = 5, GR_GGUF_F32 = 6, GR_GGUF_BOOL = 7,
    GR_GGUF_STRING = 8, GR_GGUF_ARRAY = 9, GR_GGUF_U64 = 10, GR_GGUF_I64 = 11,
    GR_GGUF_F64 = 12,
    GR_GGUF_TYPE_COUNT
} gr_gguf_type;

/* Tensor element types (ggml_type numbering). The reader knows the sizes of
 * the types listed here; conversion to/from f32 exists for F32, F16, BF16 and
 * Q8_0 only. */
typedef enum gr_ggml_type {
    GR_GGML_F32 = 0, GR_GGML_F16 = 1, GR_GGML_Q4_0 = 2, GR_GGML_Q4_1 = 3,
    GR_GGML_Q5_0 = 6, GR_GGML_Q5_1 = 7, GR_GGML_Q8_0 = 8, GR_GGML_Q8_1 = 9,
    GR_GGML_Q2_K = 10, GR_GGML_Q3_K = 11, GR_GGML_Q4_K = 12, GR_GGML_Q5_K = 13,
    GR_GGML_Q6_K = 14, GR_GGML_Q8_K = 15, GR_GGML_I8 = 24, GR_GGML_I16 = 25,
    GR_GGML_I32 = 26, GR_GGML_I64 = 27, GR_GGML_F64 = 28, GR_GGML_BF16 = 30
} gr_ggml_type;

#define GR_GGUF_VERSION 3
#define GR_GGUF_DEFAULT_ALIGNMENT 32
#define GR_GGUF_MAX_DIMS 4
#define GR_GGUF_MAX_NAME 64                       /* tensor name bytes incl. NUL (ggml) */
#define GR_GGUF_MAX_KEY 65535                     /* key bytes */
#define GR_GGUF_MAX_STRING ((uint64_t)64 << 20)   /* one string value: 64 MiB */
#define GR_GGUF_MAX_ARRAY ((uint64_t)1 << 28)     /* elements in one array */
#define GR_GGUF_MAX_ALIGNMENT (1u << 20)
#define GR_QK8_0 32                               /* Q8_0 block: f16 d + 32 x i8 = 34 bytes */

/* Name of a metadata type ("u32", "string", ...) or "?" when unknown. */
const char *gr_gguf_type_name(gr_gguf_type t);
/* Bytes of one value of a fixed-size metadata type (u8 .. f64, bool); 0 for
 * string, array and unknown types. */
size_t gr_gguf_type_size(gr_gguf_type t);
/* Name of a tensor type ("f32", "q8_0", ...) or NULL when unknown. */
const char *gr_ggml_type_name(gr_ggml_type t);
/* Elements per block and bytes per block of a tensor type; 0 when unknown. */
int64_t gr_ggml_blck_size(gr_ggml_type t);
size_t gr_ggml_type_size(gr_ggml_type t);
/* Bytes for n elements of type t (n must be a multiple of the block size);
 * returns GR_ERR with an error on overflow / bad n / unknown type. */
int gr_ggml_nbytes(gr_ggml_type t, int64_t n, size_t *out);

/* Scalar conversions: IEEE half and bfloat16, round-to-nearest-even, NaN kept
 * (quieted). */
uint16_t gr_fp32_to_fp16(float f);
float gr_fp16_to_fp32(uint16_t h);
uint16_t gr_fp32_to_bf16(float f);
float gr_bf16_to_fp32(uint16_t h);

/* Convert n elements between f32 and a tensor type (F32, F16, BF16, Q8_0;
 * Q8_0 needs n % 32 == 0 and quantizes like ggml's reference: d = amax/127,
 * q = roundf(x/d)). GR_ERR (and an error) on an unsupported type or bad n. */
int gr_ggml_to_f32(gr_ggml_type t, const void *src, float *dst, int64_t n);
int gr_ggml_from_f32(gr_ggml_type t, const float *src, void *dst, int64_t n);

/* ---- reader ------------------------------------------------------------------ */

/* One metadata key/value of an open file. All pointers are owned by the
 * gr_gguf and live until gr_gguf_close(). */
typedef struct gr_gguf_kv {
    const char *key;          /* NUL-terminated */
    gr_gguf_type type;
    gr_gguf_type arr_type;    /* element type when type == ARRAY */
    uint64_t n;               /* ARRAY: element count; STRING: byte length */
    union {
        uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32;
        float f32; uint8_t b; uint64_t u64; int64_t i64; double f64;
        const char *str;          /* STRING: NUL-terminated copy (n bytes) */
        const void *arr;          /* numeric/bool ARRAY: n packed, aligned elements */
        const char *const *strs;  /* ARRAY of STRING: n NUL-terminated strings */
    } v;
    const uint64_t *str_lens;     /* ARRAY of STRING: the n byte lengths */
} gr_gguf_kv;

/* One tensor of an open file. */
typedef struct gr_gguf_tensor {
    const char *name;
    gr_ggml_type type;
    uint32_t n_dims;
    int64_t ne[GR_GGUF_MAX_DIMS]; /* ggml order: ne[0] contiguous; unused dims = 1 */
    int64_t n_elements;
    uint64_t offset;              /* relative to the data section */
    size_t n_bytes;
    const void *data;             /* inside the mapping (read-only) */
} gr_gguf_tensor;

typedef struct gr_gguf gr_gguf;

/* Open and fully validate a GGUF file (mmap, read-only; falls back to read()).
 * Returns NULL with an error "path: offset N: field 'x': problem" on failure.
 * Free with gr_gguf_close(). */
gr_gguf *gr_gguf_open(const char *path);
/* The same over a caller's buffer, which must outlive the returned object
 * (tensor data points into it). `name` is used in error messages. */
gr_gguf *gr_gguf_open_memory(const void *data, size_t size, const char *name);
/* Release everything (NULL is fine). */
void gr_gguf_close(gr_gguf *g);

uint32_t gr_gguf_version(const gr_gguf *g);
uint32_t gr_gguf_alignment(const gr_gguf *g);
/* File offset of the data section (aligned). */
uint64_t gr_gguf_data_offset(const gr_gguf *g);
int64_t gr_gguf_n_kv(const gr_gguf *g);
/* i in [0, n_kv), in file order; NULL when out of range. */
const gr_gguf_kv *gr_gguf_kv_at(const gr_gguf *g, int64_t i);
/* The key/value named key, or NULL (no error recorded) when absent. */
const gr_gguf_kv *gr_gguf_find(const gr_gguf *g, const char *key);

/* Typed getters. Each returns GR_OK and sets *out, or GR_ERR with an error
 * naming the key when the key is absent or holds an incompatible type.
 * get_int accepts every integer type (u64 must fit in int64), get_float
 * f32/f64, get_bool bool, get_str string (*len may be NULL). */
int gr_gguf_get_int(const gr_gguf *g, const char *key, int64_t *out);
int gr_gguf_get_float(const gr_gguf *g, const char *key, double *out);
int gr_gguf_get_bool(const gr_gguf *g, const char *key, int *out);
int gr_gguf_get_str(const gr_gguf *g, const char *key, const char **out, size_t *len);
/* Array getter: checks the element type (pass GR_GGUF_TYPE_COUNT to accept
 * any) and returns the kv so callers read v.arr / v.strs and n. */
const gr_gguf_kv *gr_gguf_get_arr(const gr_gguf *g, const char *key, gr_gguf_type elem);

int64_t gr_gguf_n_tensors(const gr_gguf *g);
/* i in [0, n_tensors), in file order; NULL when out of range. */
const gr_gguf_tensor *gr_gguf_tensor_at(const gr_gguf *g, int64_t i);
/* The tensor named name, or NULL (no error recorded). */
const gr_gguf_tensor *gr_gguf_find_tensor(const gr_gguf *g, const char *name);

/* ---- writer ------------------------------------------------------------------ */

typedef struct gr_gguf_builder gr_gguf_builder;

/* A new empty builder; NULL on OOM. Free with gr_gguf_builder_free(). */
gr_gguf_builder *gr_gguf_builder_new(void);
void gr_gguf_builder_free(gr_gguf_builder *b);

/* Set a scalar key (setting an existing key replaces it, keeping its place).
 * Keys must be 1..65535 bytes. Values are copied. */
int gr_gguf_set_u8(gr_gguf_builder *b, const char *key, uint8_t v);
int gr_gguf_set_i8(gr_gguf_builder *b, const char *key, int8_t v);
int gr_gguf_set_u16(gr_gguf_builder *b, const char *key, uint16_t v);
int gr_gguf_set_i16(gr_gguf_builder *b, const char *key, int16_t v);
int gr_gguf_set_u32(gr_gguf_builder *b, const char *key, uint32_t v);
int gr_gguf_set_i32(gr_gguf_builder *b, const char *key, int32_t v);
int gr_gguf_set_f32(gr_gguf_builder *b, const char *key, float v);
int gr_gguf_set_bool(gr_gguf_builder *b, const char *key, int v);
int gr_gguf_set_u64(gr_gguf_builder *b, const char *key, uint64_t v);
int gr_gguf_set_i64(gr_gguf_builder *b, const char *key, int64_t v);
int gr_gguf_set_f64(gr_gguf_builder *b, const char *key, double v);
/* String value of len bytes (may contain NUL); set_str uses strlen. */
int gr_gguf_set_strn(gr_gguf_builder *b, const char *key, const char *s, size_t len);
int gr_gguf_set_str(gr_gguf_builder *b, const char *key, const char *s);
/* Numeric or bool array of n elements of elem type (not STRING/ARRAY);
 * data is copied (bool elements must be 0/1). */
int gr_gguf_set_arr(gr_gguf_builder *b, const char *key, gr_gguf_type elem, const void *data, uint64_t n);
/* Array of n strings; lens may be NULL (then strlen). Copied. */
int gr_gguf_set_arr_str(gr_gguf_builder *b, const char *key, const char *const *strs,
                        const uint64_t *lens, uint64_t n);
/* Copy one key/value of an open file into the builder. */
int gr_gguf_set_kv(gr_gguf_builder *b, const gr_gguf_kv *kv);

/* Add a tensor whose bytes are already in `type` layout (nbytes must match
 * the shape). The data is BORROWED: it must stay valid until gr_gguf_write()
 * or gr_gguf_builder_free(). Names are 1..63 bytes and unique; 1..4 dims,
 * each >= 0, ne[0] a multiple of the block size. */
int gr_gguf_add_tensor(gr_gguf_builder *b, const char *name, gr_ggml_type type, uint32_t n_dims,
                       const int64_t *ne, const void *data, size_t nbytes);
/* Add a tensor converted from f32 into type (F32, F16, BF16, Q8_0); the
 * converted copy is owned by the builder (F32 data is borrowed as above). */
int gr_gguf_add_tensor_f32(gr_gguf_builder *b, const char *name, gr_ggml_type type, uint32_t n_dims,
                           const int64_t *ne, const float *data);

/* Write the file atomically: path.tmp.XXXXXX in the same directory, fsync,
 * rename over path. On error the temp file is removed and path is untouched.
 * Sets general.quantization_version = 2 when a quantized tensor is present
 * and the key is absent. */
int gr_gguf_write(gr_gguf_builder *b, const char *path);

#endif
