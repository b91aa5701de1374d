/* GGUF metadata/tensor type tables and f32 <-> f16/bf16/q8_0 conversions. */
#include "genrec/common.h"
#include "genrec/gguf.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

static const char *const kv_type_names[GR_GGUF_TYPE_COUNT] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
};

const char *gr_gguf_type_name(gr_gguf_type t)
{
    return (unsigned)t < GR_GGUF_TYPE_COUNT ? kv_type_names[t] : "?";
}

size_t gr_gguf_type_size(gr_gguf_type t)
{
    switch (t) {
    case GR_GGUF_U8: case GR_GGUF_I8: case GR_GGUF_BOOL: return 1;
    case GR_GGUF_U16: case GR_GGUF_I16: return 2;
    case GR_GGUF_U32: case GR_GGUF_I32: case GR_GGUF_F32: return 4;
    case GR_GGUF_U64: case GR_GGUF_I64: case GR_GGUF_F64: return 8;
    default: return 0;
    }
}

typedef struct type_info { int id; const char *name; int64_t blck; size_t size; } type_info;

static const type_info tensor_types[] = {
    {GR_GGML_F32, "f32", 1, 4},     {GR_GGML_F16, "f16", 1, 2},     {GR_GGML_Q4_0, "q4_0", 32, 18},
    {GR_GGML_Q4_1, "q4_1", 32, 20}, {GR_GGML_Q5_0, "q5_0", 32, 22}, {GR_GGML_Q5_1, "q5_1", 32, 24},
    {GR_GGML_Q8_0, "q8_0", 32, 34}, {GR_GGML_Q8_1, "q8_1", 32, 36}, {GR_GGML_Q2_K, "q2_K", 256, 84},
    {GR_GGML_Q3_K, "q3_K", 256, 110}, {GR_GGML_Q4_K, "q4_K", 256, 144}, {GR_GGML_Q5_K, "q5_K", 256, 176},
    {GR_GGML_Q6_K, "q6_K", 256, 210}, {GR_GGML_Q8_K, "q8_K", 256, 292}, {GR_GGML_I8, "i8", 1, 1},
    {GR_GGML_I16, "i16", 1, 2},     {GR_GGML_I32, "i32", 1, 4},     {GR_GGML_I64, "i64", 1, 8},
    {GR_GGML_F64, "f64", 1, 8},     {GR_GGML_BF16, "bf16", 1, 2},
};

static const type_info *tinfo(gr_ggml_type t)
{
    for (size_t i = 0; i < sizeof tensor_types / sizeof tensor_types[0]; i++)
        if (tensor_types[i].id == (int)t) return &tensor_types[i];
    return NULL;
}

const char *gr_ggml_type_name(gr_ggml_type t) { const type_info *i = tinfo(t); return i ? i->name : NULL; }
int64_t gr_ggml_blck_size(gr_ggml_type t) { const type_info *i = tinfo(t); return i ? i->blck : 0; }
size_t gr_ggml_type_size(gr_ggml_type t) { const type_info *i = tinfo(t); return i ? i->size : 0; }

int gr_ggml_nbytes(gr_ggml_type t, int64_t n, size_t *out)
{
    const type_info *i = tinfo(t);
    *out = 0;
    if (!i) return gr_errorf("unknown tensor type %d", (int)t);
    if (n < 0 || n % i->blck) return gr_errorf("%" PRId64 " elements is not a multiple of the %s block size %" PRId64,
                                                n, i->name, i->blck);
    uint64_t blocks = (uint64_t)(n / i->blck);
    if (blocks > SIZE_MAX / i->size) return gr_errorf("%" PRId64 " elements of %s overflow size_t", n, i->name);
    *out = (size_t)blocks * i->size;
    return GR_OK;
}

/* ---- scalar conversions --------------------------------------------------------- */

uint16_t gr_fp32_to_fp16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu)); /* NaN, quiet */
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);                        /* >= 65520: inf */
    if (ax >= 0x38800000u) {                                                            /* normal */
        uint32_t h = (((ax >> 23) - 112u) << 10) | ((ax >> 13) & 0x3ffu);
        uint32_t rem = ax & 0x1fffu;
        if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++;
        return (uint16_t)(sign | h);
    }
    if (ax <= 0x33000000u) return (uint16_t)sign; /* <= 2^-25 rounds to (signed) zero */
    uint32_t e = ax >> 23, mant = (ax & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126u - e; /* 14..24 */
    uint32_t h = mant >> shift, rem = mant & ((1u << shift) - 1u), half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (h & 1u))) h++;
    return (uint16_t)(sign | h);
}

float gr_fp16_to_fp32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu, x;
    if (e == 0x1f) x = sign | 0x7f800000u | (m << 13);
    else if (e) x = sign | ((e + 112u) << 23) | (m << 13);
    else if (!m) x = sign;
    else { /* subnormal: normalise */
        e = 113;
        while (!(m & 0x400u)) { m <<= 1; e--; }
        x = sign | (e << 23) | ((m & 0x3ffu) << 13);
    }
    float f;
    memcpy(&f, &x, 4);
    return f;
}

uint16_t gr_fp32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 64u); /* quiet NaN */
    return (uint16_t)((x + (0x7fffu + ((x >> 16) & 1u))) >> 16);
}

float gr_bf16_to_fp32(uint16_t h)
{
    uint32_t x = (uint32_t)h << 16;
    float f;
    memcpy(&f, &x, 4);
    return f;
}

/* ---- array conversions --------------------------------------------------------------- */

int gr_ggml_to_f32(gr_ggml_type t, const void *src, float *dst, int64_t n)
{
    const uint8_t *s = src;
    if (n < 0) return gr_errorf("negative element count %" PRId64, n);
    switch (t) {
    case GR_GGML_F32: memcpy(dst, src, (size_t)n * 4); return GR_OK;
    case GR_GGML_F16:
        for (int64_t i = 0; i < n; i++) { uint16_t h; memcpy(&h, s + 2 * i, 2); dst[i] = gr_fp16_to_fp32(h); }
        return GR_OK;
    case GR_GGML_BF16:
        for (int64_t i = 0; i < n; i++) { uint16_t h; memcpy(&h, s + 2 * i, 2); dst[i] = gr_bf16_to_fp32(h); }
        return GR_OK;
    case GR_GGML_Q8_0:
        if (n % GR_QK8_0) return gr_errorf("q8_0: %" PRId64 " elements is not a multiple of 32", n);
        for (int64_t b = 0; b < n / GR_QK8_0; b++) {
            const uint8_t *blk = s + 34 * b;
            uint16_t h;
            memcpy(&h, blk, 2);
            float d = gr_fp16_to_fp32(h);
            for (int j = 0; j < GR_QK8_0; j++) dst[b * GR_QK8_0 + j] = d * (float)(int8_t)blk[2 + j];
        }
        return GR_OK;
    default: break;
    }
    const char *nm = gr_ggml_type_name(t);
    return gr_errorf("conversion from tensor type %s (%d) to f32 is not supported", nm ? nm : "?", (int)t);
}

int gr_ggml_from_f32(gr_ggml_type t, const float *src, void *dst, int64_t n)
{
    uint8_t *d8 = dst;
    if (n < 0) return gr_errorf("negative element count %" PRId64, n);
    switch (t) {
    case GR_GGML_F32: memcpy(dst, src, (size_t)n * 4); return GR_OK;
    case GR_GGML_F16:
        for (int64_t i = 0; i < n; i++) { uint16_t h = gr_fp32_to_fp16(src[i]); memcpy(d8 + 2 * i, &h, 2); }
        return GR_OK;
    case GR_GGML_BF16:
        for (int64_t i = 0; i < n; i++) { uint16_t h = gr_fp32_to_bf16(src[i]); memcpy(d8 + 2 * i, &h, 2); }
        return GR_OK;
    case GR_GGML_Q8_0:
        if (n % GR_QK8_0) return gr_errorf("q8_0: %" PRId64 " elements is not a multiple of 32", n);
        for (int64_t b = 0; b < n / GR_QK8_0; b++) {
            const float *x = src + b * GR_QK8_0;
            uint8_t *blk = d8 + 34 * b;
            float amax = 0.0f;
            for (int j = 0; j < GR_QK8_0; j++) amax = fmaxf(amax, fabsf(x[j]));
            const float d = amax / 127.0f;
            const float id = d != 0.0f ? 1.0f / d : 0.0f;
            uint16_t h = gr_fp32_to_fp16(d);
            memcpy(blk, &h, 2);
            for (int j = 0; j < GR_QK8_0; j++) {
                float q = roundf(x[j] * id); /* NaN/inf inputs: clamp instead of an undefined cast */
                q = q != q ? 0.0f : fminf(127.0f, fmaxf(-127.0f, q));
                blk[2 + j] = (uint8_t)(int8_t)q;
            }
        }
        return GR_OK;
    default: break;
    }
    const char *nm = gr_ggml_type_name(t);
    return gr_errorf("conversion from f32 to tensor type %s (%d) is not supported", nm ? nm : "?", (int)t);
}
