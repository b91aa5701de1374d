/* llama2.c legacy (version 0) checkpoints: 7 x int32 header, then fp32
 * weights in llama2.c's order (see genrec/checkpoint.h). Every size is
 * computed with overflow-checked 64-bit arithmetic and the file length must
 * match the header exactly before anything is allocated. */
#include "checkpoint_internal.h"

#include "genrec/common.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define L2C_HEADER_BYTES 28
#define L2C_MAGIC_V1 0x616b3432u /* "ak42": llama2.c export versions 1 and 2 */

/* a * b + c into *out (all uint64); 0 on overflow. */
static int mul_add(uint64_t a, uint64_t b, uint64_t c, uint64_t *out)
{
    uint64_t p;
    if (__builtin_mul_overflow(a, b, &p) || __builtin_add_overflow(p, c, out)) return 0;
    return 1;
}

/* Copy a (L, rows, cols) stack of fp32 matrices into per-layer tensors. */
typedef struct l2c_reader {
    const unsigned char *p;   /* next weight byte */
    ckpt_builder *b;
    int L;
} l2c_reader;

static int take(l2c_reader *r, const char *gg, int per_layer, int64_t rows, int64_t cols, const char *src)
{
    int64_t shape[2] = {rows, cols};
    int ndim = cols ? 2 : 1;
    if (!cols) shape[1] = 1;
    int64_t n = rows * (cols ? cols : 1);
    for (int l = 0; l < (per_layer ? r->L : 1); l++) {
        char name[GR_CKPT_MAX_NAME];
        if (per_layer) snprintf(name, sizeof name, "blk.%d.%s", l, gg);
        else snprintf(name, sizeof name, "%s", gg);
        float *dst = ckb_add(r->b, name, ndim, shape, src);
        if (!dst) return GR_ERR;
        memcpy(dst, r->p, (size_t)n * sizeof(float));
        r->p += (size_t)n * sizeof(float);
    }
    return GR_OK;
}

gr_ckpt *gr_ckpt_load_llama2c_memory(const void *data, size_t size, const char *name)
{
    if (!name) name = "<llama2.c>";
    const unsigned char *d = data;
    if (!d || size < L2C_HEADER_BYTES) {
        gr_errorf("%s: truncated header: %zu bytes, a llama2.c checkpoint starts with 28", name, d ? size : 0);
        return NULL;
    }
    int32_t h[7];
    memcpy(h, d, sizeof h);
    if ((uint32_t)h[0] == L2C_MAGIC_V1) {
        gr_errorf("%s: llama2.c export version 1/2 (magic \"ak42\") is not supported; export with --version 0", name);
        return NULL;
    }
    static const char *const field[7] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
    for (int i = 0; i < 7; i++) {
        if (i == 5 ? h[i] == 0 || h[i] == INT32_MIN : h[i] <= 0) {
            gr_errorf("%s: offset %d: header field '%s' = %" PRId32 ": must be %s", name, 4 * i, field[i], h[i],
                      i == 5 ? "non-zero (negative means an untied classifier)" : "> 0");
            return NULL;
        }
    }
    int64_t dim = h[0], hidden = h[1], L = h[2], nh = h[3], nkv = h[4], seq = h[6];
    int tied = h[5] > 0;
    int64_t vocab = tied ? h[5] : -(int64_t)h[5];
    if (dim % nh) { gr_errorf("%s: header field 'n_heads' = %" PRId64 " does not divide dim %" PRId64, name, nh, dim); return NULL; }
    if (nkv > nh || nh % nkv) {
        gr_errorf("%s: header field 'n_kv_heads' = %" PRId64 " does not divide n_heads %" PRId64, name, nkv, nh);
        return NULL;
    }
    int64_t hs = dim / nh, kv_dim = nkv * hs;
    if (hs % 2) { gr_errorf("%s: head size %" PRId64 " (dim / n_heads) is odd: RoPE needs pairs", name, hs); return NULL; }

    /* Elements, in file order; all factors are < 2^31 so each product of two fits, but sums and
     * triple products are checked. */
    uint64_t U = (uint64_t)L, D = (uint64_t)dim, H = (uint64_t)hidden, V = (uint64_t)vocab, KV = (uint64_t)kv_dim;
    uint64_t n = 0, per = 0;
    int ok = mul_add(V, D, 0, &n)                                         /* token_embedding */
          && mul_add(D, D, 0, &per) && mul_add(U, per, 0, &per)          /* wq / wo per layer */
          && mul_add(2, per, n, &n)
          && mul_add(KV, D, 0, &per) && mul_add(U, per, 0, &per)         /* wk, wv */
          && mul_add(2, per, n, &n)
          && mul_add(H, D, 0, &per) && mul_add(U, per, 0, &per)          /* w1, w2, w3 */
          && mul_add(3, per, n, &n)
          && mul_add(U, D, 0, &per) && mul_add(2, per, n, &n)            /* rms_att, rms_ffn */
          && mul_add(1, D, n, &n)                                        /* rms_final */
          && mul_add((uint64_t)seq, (uint64_t)hs, n, &n)                 /* freq_cis real + imag */
          && (tied || mul_add(V, D, n, &n))                              /* wcls */
          && mul_add(n, 4, L2C_HEADER_BYTES, &n);
    if (!ok) {
        gr_errorf("%s: header (dim %" PRId64 ", hidden_dim %" PRId64 ", n_layers %" PRId64 ", vocab %" PRId64
                  ", seq_len %" PRId64 ") implies more than 2^64 bytes", name, dim, hidden, L, vocab, seq);
        return NULL;
    }
    if ((uint64_t)size != n) {
        gr_errorf("%s: file is %zu bytes but the header (dim %" PRId64 ", hidden_dim %" PRId64 ", n_layers %" PRId64
                  ", n_heads %" PRId64 ", n_kv_heads %" PRId64 ", vocab_size %" PRId32 ", seq_len %" PRId64
                  ") implies %" PRIu64 " bytes%s", name, size, dim, hidden, L, nh, nkv, h[5], seq, n,
                  (uint64_t)size < n ? " (truncated)" : " (trailing data or a wrong header)");
        return NULL;
    }

    gr_ckpt hp = {0};
    hp.arch = GR_ARCH_LLAMA;
    hp.n_layer = (int)L;
    hp.d_model = (int)dim;
    hp.n_head = (int)nh;
    hp.n_kv_head = (int)nkv;
    hp.d_ff = (int)hidden;
    hp.vocab = (int)vocab;
    hp.max_T = (int)seq;
    hp.norm_eps = 1e-5f;
    hp.rope_theta = 10000.0f;
    hp.tied = tied;
    ckpt_builder b;
    if (ckb_init(&b, &hp, "llama2c", name)) return NULL;
    l2c_reader r = {d + L2C_HEADER_BYTES, &b, (int)L};
    int rc = take(&r, "token_embd.weight", 0, vocab, dim, "token_embedding_table")
          || take(&r, "attn_norm.weight", 1, dim, 0, "rms_att_weight")
          || take(&r, "attn_q.weight", 1, dim, dim, "wq")
          || take(&r, "attn_k.weight", 1, kv_dim, dim, "wk")
          || take(&r, "attn_v.weight", 1, kv_dim, dim, "wv")
          || take(&r, "attn_output.weight", 1, dim, dim, "wo")
          || take(&r, "ffn_norm.weight", 1, dim, 0, "rms_ffn_weight")
          || take(&r, "ffn_gate.weight", 1, hidden, dim, "w1")
          || take(&r, "ffn_down.weight", 1, dim, hidden, "w2")
          || take(&r, "ffn_up.weight", 1, hidden, dim, "w3")
          || take(&r, "output_norm.weight", 0, dim, 0, "rms_final_weight");
    if (!rc) {
        r.p += (size_t)seq * (size_t)hs * sizeof(float); /* freq_cis_real, freq_cis_imag */
        if (!tied) rc = take(&r, "output.weight", 0, vocab, dim, "wcls");
    }
    if (rc) { ckb_abort(&b); return NULL; }
    return ckb_finish(&b);
}

gr_ckpt *gr_ckpt_load_llama2c(const char *path)
{
    ckpt_map m;
    if (ckpt_map_file(path, &m)) return NULL;
    gr_ckpt *ck = gr_ckpt_load_llama2c_memory(m.data, m.size, path);
    ckpt_unmap(&m);
    return ck;
}
