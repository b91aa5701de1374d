/* GGUF v3: conversions, write -> read round trips, the real stories260K.gguf,
 * and malformed files (each must be an error naming the problem).
 *
 * With GENREC_WRITE_FUZZ_CORPUS=DIR set, the small valid files written here
 * are also copied into DIR (used to regenerate fuzz/corpus/gguf). */
#include "gr_test.h"
#include "genrec/common.h"
#include "genrec/gguf.h"
#include "genrec/rng.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------------------ */

/* A byte buffer to hand-craft (malformed) files. */
typedef struct buf { unsigned char d[4096]; size_t n; } buf;
static void b_u32(buf *b, uint32_t v) { memcpy(b->d + b->n, &v, 4); b->n += 4; }
static void b_u64(buf *b, uint64_t v) { memcpy(b->d + b->n, &v, 8); b->n += 8; }
static void b_u8(buf *b, uint8_t v) { b->d[b->n++] = v; }
static void b_str(buf *b, const char *s) { b_u64(b, strlen(s)); memcpy(b->d + b->n, s, strlen(s)); b->n += strlen(s); }
static void b_hdr(buf *b, uint64_t nt, uint64_t nkv) { b->n = 0; memcpy(b->d, "GGUF", 4); b->n = 4; b_u32(b, 3); b_u64(b, nt); b_u64(b, nkv); }
static void b_pad(buf *b, size_t a) { while (b->n % a) b->d[b->n++] = 0; }
/* tensor info: name, 1 dim of ne0, type, offset */
static void b_tensor1(buf *b, const char *name, uint64_t ne0, uint32_t type, uint64_t off)
{
    b_str(b, name); b_u32(b, 1); b_u64(b, ne0); b_u32(b, type); b_u64(b, off);
}

/* Expect opening the bytes to fail with a message containing `want`. */
static void expect_bad(const buf *b, const char *want, int line)
{
    gr_error_clear();
    gr_gguf *g = gr_gguf_open_memory(b->d, b->n, "crafted.gguf");
    if (g) { gr_test_fail(__FILE__, line, "malformed file accepted (wanted error '%s')", want); gr_gguf_close(g); return; }
    if (!strstr(gr_error_message(), want) || !strstr(gr_error_message(), "crafted.gguf"))
        gr_test_fail(__FILE__, line, "error \"%s\" lacks \"%s\"", gr_error_message(), want);
}
#define EXPECT_BAD(b, want) expect_bad(b, want, __LINE__)

/* ---- conversions ---------------------------------------------------------------------- */

static void test_fp16_bf16(void)
{
    /* every non-NaN half survives f16 -> f32 -> f16 */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = gr_fp16_to_fp32((uint16_t)h);
        if (f != f) { bad += gr_fp32_to_fp16(f) >> 10 != h >> 10; continue; } /* NaN stays NaN */
        bad += gr_fp32_to_fp16(f) != h;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(gr_fp32_to_fp16(1.0f), 0x3C00);
    CHECK_EQ_INT(gr_fp32_to_fp16(65504.0f), 0x7BFF);
    CHECK_EQ_INT(gr_fp32_to_fp16(65520.0f), 0x7C00);      /* ties to even -> inf */
    CHECK_EQ_INT(gr_fp32_to_fp16(65519.99f), 0x7BFF);
    CHECK_EQ_INT(gr_fp32_to_fp16(5.9604645e-8f), 0x0001);  /* smallest subnormal */
    CHECK_EQ_INT(gr_fp32_to_fp16(2.9802322e-8f), 0x0000);  /* half of it: ties to even -> 0 */
    CHECK_EQ_INT(gr_fp32_to_fp16(-0.0f), 0x8000);
    CHECK_EQ_INT(gr_fp32_to_fp16(1.0f + 1.0f / 2048), 0x3C00); /* tie -> even */
    CHECK_EQ_INT(gr_fp32_to_fp16(1.0f + 3.0f / 2048), 0x3C02);
#if defined(__FLT16_MAX__) && !defined(__clang__)
    /* compare with the compiler's correctly rounded conversion */
    gr_rng r;
    gr_rng_seed(&r, 5);
    int diff = 0;
    for (int i = 0; i < 200000; i++) {
        uint32_t x = (uint32_t)gr_rng_u64(&r);
        if (i & 1) x = (x & 0x8FFFFFFFu) | 0x30000000u; /* near the half range */
        float f;
        memcpy(&f, &x, 4);
        if (f != f) continue;
        _Float16 h = (_Float16)f;
        uint16_t hb;
        memcpy(&hb, &h, 2);
        diff += gr_fp32_to_fp16(f) != hb;
    }
    CHECK_EQ_INT(diff, 0);
#endif
    CHECK_EQ_INT(gr_fp32_to_bf16(1.0f), 0x3F80);
    float f;
    uint32_t x = 0x3F808000u; /* exactly halfway between 0x3F80 and 0x3F81: to even */
    memcpy(&f, &x, 4);
    CHECK_EQ_INT(gr_fp32_to_bf16(f), 0x3F80);
    x = 0x3F818000u;
    memcpy(&f, &x, 4);
    CHECK_EQ_INT(gr_fp32_to_bf16(f), 0x3F82);
    x = 0x7F800001u; /* signalling NaN -> quiet NaN */
    memcpy(&f, &x, 4);
    CHECK((gr_fp32_to_bf16(f) & 0x7FC0) == 0x7FC0);
    CHECK(gr_bf16_to_fp32(0x3F80) == 1.0f);
}

static void test_q8_0(void)
{
    enum { N = 32 * 64 };
    float x[N], y[N];
    unsigned char q[N / 32 * 34];
    gr_rng r;
    gr_rng_seed(&r, 9);
    for (int i = 0; i < N; i++) x[i] = (float)(gr_rng_normal(&r) * (1 + i / 256));
    x[5] = 0;
    for (int i = 32; i < 64; i++) x[i] = 0; /* an all-zero block */
    CHECK_EQ_INT(gr_ggml_from_f32(GR_GGML_Q8_0, x, q, N), GR_OK);
    CHECK_EQ_INT(gr_ggml_to_f32(GR_GGML_Q8_0, q, y, N), GR_OK);
    int bad = 0;
    double nmse_num = 0, nmse_den = 0;
    for (int b = 0; b < N / 32; b++) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[b * 32 + j]));
        for (int j = 0; j < 32; j++) {
            double e = fabs((double)x[b * 32 + j] - y[b * 32 + j]);
            bad += e > 0.57 * amax / 127 + 1e-12;
            nmse_num += e * e;
            nmse_den += (double)x[b * 32 + j] * x[b * 32 + j];
        }
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(nmse_num / nmse_den < 1e-4);
    for (int i = 32; i < 64; i++) CHECK(y[i] == 0.0f);
    CHECK_EQ_INT(gr_ggml_from_f32(GR_GGML_Q8_0, x, q, 33), GR_ERR);
    CHECK_HAS(gr_error_message(), "multiple of 32");
    CHECK_EQ_INT(gr_ggml_to_f32(GR_GGML_Q4_K, q, y, 256), GR_ERR);
    size_t nb;
    CHECK_EQ_INT(gr_ggml_nbytes(GR_GGML_Q8_0, 64, &nb), GR_OK);
    CHECK_EQ_INT(nb, 68);
    CHECK_EQ_INT(gr_ggml_nbytes(GR_GGML_BF16, 3, &nb), GR_OK);
    CHECK_EQ_INT(nb, 6);
    CHECK_EQ_INT(gr_ggml_nbytes(GR_GGML_F64, INT64_MAX, &nb), GR_ERR);
    CHECK_HAS(gr_error_message(), "overflow");
}

/* ---- round trip ----------------------------------------------------------------------------- */

static void roundtrip(uint32_t alignment, const char *seed_name)
{
    gr_gguf_builder *b = gr_gguf_builder_new();
    REQUIRE(b);
    CHECK_EQ_INT(gr_gguf_set_str(b, "general.architecture", "llama"), GR_OK);
    if (alignment) CHECK_EQ_INT(gr_gguf_set_u32(b, "general.alignment", alignment), GR_OK);
    CHECK_EQ_INT(gr_gguf_set_u8(b, "t.u8", 200), GR_OK);
    CHECK_EQ_INT(gr_gguf_set_i8(b, "t.i8", -100), GR_OK);
    CHECK_EQ_INT(gr_gguf_set_u16(b, "t.u16", 60000), GR_OK);
    CHECK_EQ_INT(gr_gguf_set_i16(b, "t.i16", -30000), GR_OK);
    CHECK_EQ_INT(gr_gguf_set_u32(b, "t.u32", 4000000000u), GR_OK);
    CHECK_EQ_INT(gr_gguf_set_i32(b, "t.i32", -2000000000), GR_OK);
    CHECK_EQ_INT(gr_gguf_set_f32(b, "t.f32", 1e-5f), GR_OK);
    CHECK_EQ_INT(gr_gguf_set_bool(b, "t.bool", 1), GR_OK);
    CHECK_EQ_INT(gr_gguf_set_u64(b, "t.u64", UINT64_MAX), GR_OK);
    CHECK_EQ_INT(gr_gguf_set_i64(b, "t.i64", INT64_MIN), GR_OK);
    CHECK_EQ_INT(gr_gguf_set_f64(b, "t.f64", 3.141592653589793), GR_OK);
    CHECK_EQ_INT(gr_gguf_set_strn(b, "t.str", "a\0b\xC3\xA9", 5), GR_OK);
    CHECK_EQ_INT(gr_gguf_set_str(b, "t.empty", ""), GR_OK);
    CHECK_EQ_INT(gr_gguf_set_i32(b, "t.replaced", 1), GR_OK);
    CHECK_EQ_INT(gr_gguf_set_i32(b, "t.replaced", 2), GR_OK);
    int32_t ai[5] = {1, -2, 3, -4, 5};
    float af[3] = {0.5f, -1.0f, 1e30f};
    uint8_t ab[4] = {1, 0, 0, 1};
    double ad[2] = {1e-300, -2.5};
    uint16_t au[3] = {1, 2, 65535};
    CHECK_EQ_INT(gr_gguf_set_arr(b, "a.i32", GR_GGUF_I32, ai, 5), GR_OK);
    CHECK_EQ_INT(gr_gguf_set_arr(b, "a.f32", GR_GGUF_F32, af, 3), GR_OK);
    CHECK_EQ_INT(gr_gguf_set_arr(b, "a.bool", GR_GGUF_BOOL, ab, 4), GR_OK);
    CHECK_EQ_INT(gr_gguf_set_arr(b, "a.f64", GR_GGUF_F64, ad, 2), GR_OK);
    CHECK_EQ_INT(gr_gguf_set_arr(b, "a.u16", GR_GGUF_U16, au, 3), GR_OK);
    CHECK_EQ_INT(gr_gguf_set_arr(b, "a.empty", GR_GGUF_U8, NULL, 0), GR_OK);
    const char *strs[3] = {"x", "", "\xE2\x96\x81hello"};
    CHECK_EQ_INT(gr_gguf_set_arr_str(b, "a.str", strs, NULL, 3), GR_OK);
    ab[1] = 2;
    CHECK_EQ_INT(gr_gguf_set_arr(b, "a.badbool", GR_GGUF_BOOL, ab, 4), GR_ERR);
    CHECK_EQ_INT(gr_gguf_set_arr(b, "a.nested", GR_GGUF_ARRAY, ab, 1), GR_ERR);

    enum { R = 3, C = 64 };
    float w[R * C];
    for (int i = 0; i < R * C; i++) w[i] = (float)sin(i * 0.37) * (float)(1 + i % 7);
    int64_t ne2[2] = {C, R}, ne1[1] = {5}, ne4[4] = {32, 1, 2, 3};
    float w5[5] = {1, 2, 3, 4, 5};
    uint16_t raw16[R * C];
    for (int i = 0; i < R * C; i++) raw16[i] = (uint16_t)(i * 2654435761u >> 16);
    CHECK_EQ_INT(gr_gguf_add_tensor_f32(b, "w.f32", GR_GGML_F32, 2, ne2, w), GR_OK);
    CHECK_EQ_INT(gr_gguf_add_tensor_f32(b, "w.f16", GR_GGML_F16, 2, ne2, w), GR_OK);
    CHECK_EQ_INT(gr_gguf_add_tensor_f32(b, "w.bf16", GR_GGML_BF16, 2, ne2, w), GR_OK);
    CHECK_EQ_INT(gr_gguf_add_tensor_f32(b, "w.q8_0", GR_GGML_Q8_0, 2, ne2, w), GR_OK);
    CHECK_EQ_INT(gr_gguf_add_tensor_f32(b, "v.odd", GR_GGML_F32, 1, ne1, w5), GR_OK);
    CHECK_EQ_INT(gr_gguf_add_tensor(b, "raw.f16", GR_GGML_F16, 2, ne2, raw16, sizeof raw16), GR_OK);
    CHECK_EQ_INT(gr_gguf_add_tensor_f32(b, "w.4d", GR_GGML_BF16, 4, ne4, w), GR_OK);
    /* builder-side validation */
    CHECK_EQ_INT(gr_gguf_add_tensor_f32(b, "w.f32", GR_GGML_F32, 2, ne2, w), GR_ERR);
    CHECK_HAS(gr_error_message(), "duplicate");
    CHECK_EQ_INT(gr_gguf_add_tensor_f32(b, "bad.q8", GR_GGML_Q8_0, 1, ne1, w5), GR_ERR);
    CHECK_HAS(gr_error_message(), "block size");
    CHECK_EQ_INT(gr_gguf_add_tensor(b, "bad.size", GR_GGML_F16, 2, ne2, raw16, 10), GR_ERR);
    CHECK_EQ_INT(gr_gguf_add_tensor(b, "bad.dims", GR_GGML_F32, 5, ne4, w, 4), GR_ERR);

    const char *path = gr_test_path(seed_name);
    REQUIRE(gr_gguf_write(b, path) == GR_OK);
    gr_gguf_builder_free(b);
    gr_test_save_seed(path, seed_name);

    gr_gguf *g = gr_gguf_open(path);
    REQUIRE(g);
    uint32_t a = alignment ? alignment : 32;
    CHECK_EQ_INT(gr_gguf_alignment(g), a);
    CHECK_EQ_INT(gr_gguf_version(g), 3);
    int64_t iv;
    double dv;
    int bv;
    const char *sv;
    size_t sl;
    CHECK(gr_gguf_get_int(g, "t.u8", &iv) == GR_OK && iv == 200);
    CHECK(gr_gguf_get_int(g, "t.i8", &iv) == GR_OK && iv == -100);
    CHECK(gr_gguf_get_int(g, "t.u16", &iv) == GR_OK && iv == 60000);
    CHECK(gr_gguf_get_int(g, "t.i16", &iv) == GR_OK && iv == -30000);
    CHECK(gr_gguf_get_int(g, "t.u32", &iv) == GR_OK && iv == 4000000000ll);
    CHECK(gr_gguf_get_int(g, "t.i32", &iv) == GR_OK && iv == -2000000000);
    CHECK(gr_gguf_get_int(g, "t.i64", &iv) == GR_OK && iv == INT64_MIN);
    CHECK(gr_gguf_get_int(g, "t.replaced", &iv) == GR_OK && iv == 2);
    CHECK_EQ_INT(gr_gguf_get_int(g, "t.u64", &iv), GR_ERR); /* does not fit int64 */
    CHECK(gr_gguf_find(g, "t.u64")->v.u64 == UINT64_MAX);
    CHECK(gr_gguf_get_float(g, "t.f32", &dv) == GR_OK && (float)dv == 1e-5f);
    CHECK(gr_gguf_get_float(g, "t.f64", &dv) == GR_OK && dv == 3.141592653589793);
    CHECK(gr_gguf_get_bool(g, "t.bool", &bv) == GR_OK && bv == 1);
    CHECK(gr_gguf_get_str(g, "t.str", &sv, &sl) == GR_OK && sl == 5 && !memcmp(sv, "a\0b\xC3\xA9", 5));
    CHECK(gr_gguf_get_str(g, "t.empty", &sv, &sl) == GR_OK && sl == 0 && sv[0] == 0);
    CHECK_EQ_INT(gr_gguf_get_str(g, "t.u8", &sv, &sl), GR_ERR);
    CHECK_HAS(gr_error_message(), "t.u8");
    CHECK_EQ_INT(gr_gguf_get_int(g, "missing.key", &iv), GR_ERR);
    CHECK_HAS(gr_error_message(), "missing.key");
    const gr_gguf_kv *kv = gr_gguf_get_arr(g, "a.i32", GR_GGUF_I32);
    CHECK(kv && kv->n == 5 && !memcmp(kv->v.arr, ai, sizeof ai));
    kv = gr_gguf_get_arr(g, "a.f32", GR_GGUF_F32);
    CHECK(kv && kv->n == 3 && !memcmp(kv->v.arr, af, sizeof af));
    kv = gr_gguf_get_arr(g, "a.f64", GR_GGUF_F64);
    CHECK(kv && kv->n == 2 && !memcmp(kv->v.arr, ad, sizeof ad));
    kv = gr_gguf_get_arr(g, "a.u16", GR_GGUF_U16);
    CHECK(kv && kv->n == 3 && !memcmp(kv->v.arr, au, sizeof au));
    kv = gr_gguf_get_arr(g, "a.bool", GR_GGUF_BOOL);
    CHECK(kv && kv->n == 4 && ((const uint8_t *)kv->v.arr)[3] == 1);
    kv = gr_gguf_get_arr(g, "a.empty", GR_GGUF_U8);
    CHECK(kv && kv->n == 0);
    kv = gr_gguf_get_arr(g, "a.str", GR_GGUF_STRING);
    CHECK(kv && kv->n == 3 && !strcmp(kv->v.strs[2], "\xE2\x96\x81hello") && kv->str_lens[1] == 0);
    CHECK(gr_gguf_get_arr(g, "a.str", GR_GGUF_I32) == NULL);
    CHECK_HAS(gr_error_message(), "array of string");
    CHECK(gr_gguf_find(g, "a.badbool") == NULL);
    CHECK_EQ_INT(gr_gguf_n_kv(g), 22 + (alignment ? 1 : 0) + 1); /* + quantization_version */
    CHECK(gr_gguf_get_int(g, "general.quantization_version", &iv) == GR_OK && iv == 2);

    CHECK_EQ_INT(gr_gguf_n_tensors(g), 7);
    const gr_gguf_tensor *t;
    for (int64_t i = 0; i < gr_gguf_n_tensors(g); i++) {
        t = gr_gguf_tensor_at(g, i);
        CHECK((gr_gguf_data_offset(g) + t->offset) % a == 0);
    }
    /* bit-identical to the converted bytes */
    unsigned char conv[R * C * 4];
    float back[R * C];
    t = gr_gguf_find_tensor(g, "w.f32");
    CHECK(t && t->type == GR_GGML_F32 && t->n_dims == 2 && t->ne[0] == C && t->ne[1] == R && t->ne[2] == 1);
    CHECK(t && t->n_bytes == sizeof w && !memcmp(t->data, w, sizeof w));
    gr_gguf_type_name(GR_GGUF_F32);
    const gr_ggml_type types[3] = {GR_GGML_F16, GR_GGML_BF16, GR_GGML_Q8_0};
    const char *names[3] = {"w.f16", "w.bf16", "w.q8_0"};
    for (int k = 0; k < 3; k++) {
        t = gr_gguf_find_tensor(g, names[k]);
        REQUIRE(t && t->type == types[k] && t->n_elements == R * C);
        size_t nb;
        gr_ggml_nbytes(types[k], R * C, &nb);
        CHECK_EQ_INT(t->n_bytes, nb);
        gr_ggml_from_f32(types[k], w, conv, R * C);
        CHECK(!memcmp(t->data, conv, nb));
        CHECK_EQ_INT(gr_ggml_to_f32(t->type, t->data, back, R * C), GR_OK);
        double maxerr = 0;
        for (int i = 0; i < R * C; i++) maxerr = fmax(maxerr, fabs(back[i] - w[i]));
        CHECK(maxerr < (k == 0 ? 4e-3 : k == 1 ? 3e-2 : 4e-2));
    }
    t = gr_gguf_find_tensor(g, "raw.f16");
    CHECK(t && !memcmp(t->data, raw16, sizeof raw16));
    t = gr_gguf_find_tensor(g, "v.odd");
    CHECK(t && t->n_bytes == 20 && !memcmp(t->data, w5, 20));
    t = gr_gguf_find_tensor(g, "w.4d");
    CHECK(t && t->n_dims == 4 && t->ne[3] == 3 && t->n_elements == 192);
    CHECK(gr_gguf_find_tensor(g, "nope") == NULL);

    /* copy every kv into a new builder: identical bytes for the metadata */
    gr_gguf_builder *b2 = gr_gguf_builder_new();
    for (int64_t i = 0; i < gr_gguf_n_kv(g); i++) CHECK_EQ_INT(gr_gguf_set_kv(b2, gr_gguf_kv_at(g, i)), GR_OK);
    for (int64_t i = 0; i < gr_gguf_n_tensors(g); i++) {
        t = gr_gguf_tensor_at(g, i);
        CHECK_EQ_INT(gr_gguf_add_tensor(b2, t->name, t->type, t->n_dims, t->ne, t->data, t->n_bytes), GR_OK);
    }
    const char *path2 = gr_test_path("copy.gguf");
    CHECK_EQ_INT(gr_gguf_write(b2, path2), GR_OK);
    gr_gguf_builder_free(b2);
    size_t n1, n2;
    char *d1 = gr_test_read_file(path, &n1), *d2 = gr_test_read_file(path2, &n2);
    CHECK(d1 && d2 && n1 == n2 && !memcmp(d1, d2, n1));
    free(d1);
    free(d2);
    gr_gguf_close(g);
}

static void test_roundtrip_default_alignment(void) { roundtrip(0, "all_types.gguf"); }
static void test_roundtrip_alignment_64(void) { roundtrip(64, "all_types_align64.gguf"); }

static void test_writer_atomic(void)
{
    gr_gguf_builder *b = gr_gguf_builder_new();
    REQUIRE(b);
    CHECK_EQ_INT(gr_gguf_set_str(b, "general.architecture", "x"), GR_OK);
    const char *path = gr_test_path("atomic.gguf");
    CHECK_EQ_INT(gr_gguf_write(b, path), GR_OK);
    gr_test_save_seed(path, "minimal.gguf");
    size_t n0;
    char *before = gr_test_read_file(path, &n0);
    /* a failing write leaves the old file untouched */
    CHECK_EQ_INT(gr_gguf_set_u64(b, "general.alignment", 64), GR_OK);
    CHECK_EQ_INT(gr_gguf_write(b, path), GR_ERR);
    CHECK_HAS(gr_error_message(), "general.alignment");
    size_t n1;
    char *after = gr_test_read_file(path, &n1);
    CHECK(before && after && n0 == n1 && !memcmp(before, after, n0));
    free(before);
    free(after);
    CHECK_EQ_INT(gr_gguf_write(b, "/nonexistent-dir/x.gguf"), GR_ERR);
    CHECK_HAS(gr_error_message(), "/nonexistent-dir/x.gguf");
    gr_gguf_builder_free(b);
    /* no temporary files left behind */
    DIR *d = opendir(gr_test_tmpdir());
    REQUIRE(d);
    int tmps = 0;
    for (struct dirent *e; (e = readdir(d));) tmps += strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    CHECK_EQ_INT(tmps, 0);
}

/* ---- the real file ---------------------------------------------------------------------------------- */

static void test_stories260k(void)
{
    const char *gp = gr_test_shared("models/stories260K/stories260K.gguf");
    const char *bp = gr_test_shared("models/stories260K/stories260K.bin");
    if (!gp || !bp) { gr_test_skip("../shared/models/stories260K absent"); return; }
    gr_gguf *g = gr_gguf_open(gp);
    REQUIRE(g);
    CHECK_EQ_INT(gr_gguf_n_tensors(g), 48);
    CHECK_EQ_INT(gr_gguf_n_kv(g), 19);
    const char *arch;
    CHECK(gr_gguf_get_str(g, "general.architecture", &arch, NULL) == GR_OK && !strcmp(arch, "llama"));
    int64_t v;
    CHECK(gr_gguf_get_int(g, "llama.embedding_length", &v) == GR_OK && v == 64);
    CHECK(gr_gguf_get_int(g, "llama.feed_forward_length", &v) == GR_OK && v == 172);
    CHECK(gr_gguf_get_int(g, "llama.block_count", &v) == GR_OK && v == 5);
    CHECK(gr_gguf_get_int(g, "llama.attention.head_count", &v) == GR_OK && v == 8);
    CHECK(gr_gguf_get_int(g, "llama.attention.head_count_kv", &v) == GR_OK && v == 4);
    CHECK(gr_gguf_get_int(g, "llama.context_length", &v) == GR_OK && v == 2048);
    CHECK(gr_gguf_get_int(g, "tokenizer.ggml.bos_token_id", &v) == GR_OK && v == 1);
    double eps;
    CHECK(gr_gguf_get_float(g, "llama.attention.layer_norm_rms_epsilon", &eps) == GR_OK && fabs(eps - 1e-5) < 1e-10);
    const gr_gguf_kv *toks = gr_gguf_get_arr(g, "tokenizer.ggml.tokens", GR_GGUF_STRING);
    CHECK(toks && toks->n == 512 && !strcmp(toks->v.strs[1], "<s>"));
    int64_t total = 0;
    for (int64_t i = 0; i < 48; i++) {
        const gr_gguf_tensor *t = gr_gguf_tensor_at(g, i);
        CHECK(t->type == GR_GGML_F32);
        total += t->n_elements;
    }
    const gr_gguf_tensor *emb = gr_gguf_find_tensor(g, "token_embd.weight");
    REQUIRE(emb);
    CHECK(emb->n_dims == 2 && emb->ne[0] == 64 && emb->ne[1] == 512);
    const gr_gguf_tensor *q = gr_gguf_find_tensor(g, "blk.0.attn_k.weight");
    CHECK(q && q->ne[0] == 64 && q->ne[1] == 32);
    /* bit-identical to the llama2.c checkpoint: token embedding follows the 28-byte header */
    size_t bn;
    char *bin = gr_test_read_file(bp, &bn);
    REQUIRE(bin && bn > 28 + emb->n_bytes);
    CHECK(!memcmp(bin + 28, emb->data, emb->n_bytes));
    printf("  stories260K.gguf: %" PRId64 " tensors, %" PRId64 " parameters\n", gr_gguf_n_tensors(g), total);
    free(bin);
    gr_gguf_close(g);
}

/* ---- malformed files ------------------------------------------------------------------------------ */

/* A small valid file: 2 kv (one u32 alignment 32), 2 f32 tensors of 4 and 8 elements. */
static void valid_file(buf *b)
{
    b_hdr(b, 2, 2);
    b_str(b, "general.architecture"); b_u32(b, GR_GGUF_STRING); b_str(b, "x");
    b_str(b, "general.alignment"); b_u32(b, GR_GGUF_U32); b_u32(b, 32);
    b_tensor1(b, "a", 4, GR_GGML_F32, 0);
    b_tensor1(b, "b", 8, GR_GGML_F32, 32);
    b_pad(b, 32);
    for (int i = 0; i < 64; i++) b_u8(b, (uint8_t)i);
}

static void test_malformed(void)
{
    buf b;
    valid_file(&b);
    gr_gguf *g = gr_gguf_open_memory(b.d, b.n, "crafted.gguf");
    REQUIRE(g);
    CHECK_EQ_INT(gr_gguf_n_tensors(g), 2);
    gr_gguf_close(g);

    /* every truncation of a valid file is an error, never a crash */
    int ok = 0;
    for (size_t n = 0; n < b.n; n++) {
        gr_gguf *t = gr_gguf_open_memory(b.d, n, "crafted.gguf");
        ok += t == NULL && (strstr(gr_error_message(), "truncated") || strstr(gr_error_message(), "beyond") ||
                            strstr(gr_error_message(), "cannot fit") || strstr(gr_error_message(), "past the end"));
        gr_gguf_close(t);
    }
    CHECK_EQ_INT(ok, (int)b.n);
    gr_gguf_open_memory(b.d, 100, "crafted.gguf");
    CHECK_HAS(gr_error_message(), "offset");

    buf c = b;
    memcpy(c.d, "GGUX", 4);
    EXPECT_BAD(&c, "bad magic");
    c = b; c.d[4] = 1; EXPECT_BAD(&c, "version 1");
    c = b; memset(c.d + 4, 0, 4); c.d[7] = 3; EXPECT_BAD(&c, "byte-swapped");
    c = b; c.d[4] = 9; EXPECT_BAD(&c, "unsupported version");
    /* huge counts */
    c = b; { uint64_t x = (uint64_t)1 << 60; memcpy(c.d + 16, &x, 8); } EXPECT_BAD(&c, "kv_count");
    c = b; { uint64_t x = (uint64_t)1 << 60; memcpy(c.d + 8, &x, 8); } EXPECT_BAD(&c, "tensor_count");
    /* huge key string length */
    c = b; { uint64_t x = (uint64_t)1 << 62; memcpy(c.d + 24, &x, 8); } EXPECT_BAD(&c, "string length");
    c = b; { uint64_t x = 70000; memcpy(c.d + 24, &x, 8); } EXPECT_BAD(&c, "exceeds the limit");

    /* hand-built variants */
    b_hdr(&c, 0, 2);
    b_str(&c, "k"); b_u32(&c, GR_GGUF_U8); b_u8(&c, 1);
    b_str(&c, "k"); b_u32(&c, GR_GGUF_U8); b_u8(&c, 2);
    EXPECT_BAD(&c, "duplicate key 'k'");
    b_hdr(&c, 0, 1);
    b_str(&c, "k"); b_u32(&c, GR_GGUF_BOOL); b_u8(&c, 2);
    EXPECT_BAD(&c, "bool value is 2");
    b_hdr(&c, 0, 1);
    b_str(&c, "k"); b_u32(&c, 13); b_u8(&c, 2);
    EXPECT_BAD(&c, "unknown value type 13");
    b_hdr(&c, 0, 1);
    b_str(&c, "k"); b_u32(&c, GR_GGUF_ARRAY); b_u32(&c, GR_GGUF_ARRAY); b_u64(&c, 1);
    EXPECT_BAD(&c, "nested arrays");
    b_hdr(&c, 0, 1);
    b_str(&c, "k"); b_u32(&c, GR_GGUF_ARRAY); b_u32(&c, GR_GGUF_U32); b_u64(&c, (uint64_t)1 << 27);
    EXPECT_BAD(&c, "runs past the end");
    b_hdr(&c, 0, 1);
    b_str(&c, "k"); b_u32(&c, GR_GGUF_ARRAY); b_u32(&c, GR_GGUF_STRING); b_u64(&c, (uint64_t)1 << 40);
    EXPECT_BAD(&c, "exceeds the limit");
    b_hdr(&c, 0, 1);
    b_str(&c, "general.alignment"); b_u32(&c, GR_GGUF_U64); b_u64(&c, 32);
    EXPECT_BAD(&c, "general.alignment': must be u32");
    b_hdr(&c, 0, 1);
    b_str(&c, "general.alignment"); b_u32(&c, GR_GGUF_U32); b_u32(&c, 48);
    EXPECT_BAD(&c, "not a power of two");
    b_hdr(&c, 1, 0);
    b_str(&c, "t"); b_u32(&c, 100); b_u64(&c, 1); b_u64(&c, 1); b_u64(&c, 1);
    EXPECT_BAD(&c, "n_dims 100");
    b_hdr(&c, 1, 0);
    b_str(&c, "t"); b_u32(&c, 2); b_u64(&c, (uint64_t)1 << 40); b_u64(&c, (uint64_t)1 << 40); b_u32(&c, 0); b_u64(&c, 0);
    EXPECT_BAD(&c, "overflows");
    b_hdr(&c, 1, 0);
    b_str(&c, "t"); b_u32(&c, 1); b_u64(&c, (uint64_t)1 << 63); b_u32(&c, 0); b_u64(&c, 0);
    EXPECT_BAD(&c, "negative");
    b_hdr(&c, 1, 0);
    b_str(&c, "t"); b_u32(&c, 2); b_u64(&c, (uint64_t)1 << 31); b_u64(&c, (uint64_t)1 << 31); b_u32(&c, GR_GGML_F32); b_u64(&c, 0);
    EXPECT_BAD(&c, "overflow size_t");
    b_hdr(&c, 1, 0);
    b_str(&c, "t"); b_u32(&c, 2); b_u64(&c, (uint64_t)1 << 20); b_u64(&c, (uint64_t)1 << 20); b_u32(&c, GR_GGML_F32); b_u64(&c, 0);
    EXPECT_BAD(&c, "beyond the end of the file");
    b_hdr(&c, 1, 0);
    b_tensor1(&c, "t", 4, 99, 0);
    EXPECT_BAD(&c, "unknown tensor type 99");
    b_hdr(&c, 1, 0);
    b_tensor1(&c, "t", 40, GR_GGML_Q8_0, 0);
    EXPECT_BAD(&c, "not a multiple of the block size 32");
    b_hdr(&c, 2, 0);
    b_tensor1(&c, "t", 4, GR_GGML_F32, 0);
    b_tensor1(&c, "t", 4, GR_GGML_F32, 32);
    EXPECT_BAD(&c, "duplicate tensor name 't'");
    b_hdr(&c, 1, 0);
    b_str(&c, "a-very-long-tensor-name-that-is-longer-than-sixty-three-bytes-in-total");
    EXPECT_BAD(&c, "exceeds the limit 63");
    /* offsets: beyond the file, misaligned, not sequential */
    c = b;
    {
        size_t off_b = 24 + (8 + 20 + 4 + 8 + 1) + (8 + 17 + 4 + 4) + (8 + 1 + 4 + 8 + 4 + 8) + (8 + 1 + 4 + 8 + 4);
        uint64_t x = 4096;
        memcpy(c.d + off_b, &x, 8);
        EXPECT_BAD(&c, "b.offset': offset 4096 is not sequential");
        x = 33;
        memcpy(c.d + off_b, &x, 8);
        EXPECT_BAD(&c, "not a multiple of the alignment 32");
        x = 32;
        memcpy(c.d + off_b, &x, 8);
        c.n -= 1; /* last tensor's data cut by one byte */
        EXPECT_BAD(&c, "beyond the end of the file");
    }
    b_hdr(&c, 1, 0);
    b_tensor1(&c, "t", 4, GR_GGML_F32, (uint64_t)1 << 62);
    b_pad(&c, 32);
    for (int i = 0; i < 16; i++) b_u8(&c, 0);
    EXPECT_BAD(&c, "not sequential");
    /* empty input / NULL */
    CHECK(gr_gguf_open_memory(NULL, 0, "crafted.gguf") == NULL);
    CHECK_HAS(gr_error_message(), "truncated");
    CHECK(gr_gguf_open("/nonexistent.gguf") == NULL);
    CHECK_HAS(gr_error_message(), "/nonexistent.gguf");
}

int main(void)
{
    GR_RUN(test_fp16_bf16);
    GR_RUN(test_q8_0);
    GR_RUN(test_roundtrip_default_alignment);
    GR_RUN(test_roundtrip_alignment_64);
    GR_RUN(test_writer_atomic);
    GR_RUN(test_stories260k);
    GR_RUN(test_malformed);
    return gr_test_finish();
}
