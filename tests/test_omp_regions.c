/* One OpenMP region per pass (src/engine/par.h): gr_tfm_forward,
 * gr_tfm_backward, gr_tfm_forward_cached and the LoRA paths give
 * bit-identical results run twice, with pass regions on and off (the
 * previous one-region-per-op behaviour), and (with the own GEMM kernel,
 * whose results do not depend on the split) with 1 and 2 threads. The
 * shapes are large enough that the passes run on a team of 2 threads, and
 * the decoding batches cover both the GEMM and the small-N row path. */
#include "tfm_testutil.h"
#include "genrec/decode.h"
#include "genrec/gemm.h"
#include "genrec/lora.h"
#include "genrec/ops.h"

#define N_SLOTS 16
#define PROMPT 20
#define STEPS 3

/* Everything a run produces, concatenated. */
typedef struct run_out { float *v; size_t n, cap; } run_out;

static void put(run_out *r, const float *p, size_t n)
{
    if (r->n + n > r->cap) {
        r->cap = (r->n + n) * 2;
        r->v = realloc(r->v, sizeof(float) * r->cap);
    }
    memcpy(r->v + r->n, p, sizeof(float) * n);
    r->n += n;
}

static gr_tfm_config cfg_big(int llama)
{
    gr_tfm_config c = llama ? cfg_llama() : cfg_gpt2();
    c.d_model = 64;
    c.d_ff = llama ? 128 : 256;
    c.max_T = 64;
    if (!llama) c.dropout = 0.1f;
    return c;
}

/* Cached decoding: a prompt prefilled into slot 0 and shared by every
 * slot, then STEPS steps of N_SLOTS tokens (GEMM path) and of 3 tokens
 * (row path), every output appended to r. */
static void run_cached(gr_tfm *m, const gr_tfm_config *cfg, run_out *r)
{
    const int C = cfg->d_model;
    gr_kv_cache *kc = gr_kv_cache_init(cfg, N_SLOTS, cfg->max_T);
    REQUIRE(kc);
    float *x = malloc(sizeof(float) * PROMPT * C), *out = malloc(sizeof(float) * PROMPT * C);
    gr_rng g;
    gr_rng_seed(&g, 5);
    for (int i = 0; i < PROMPT * C; i++) x[i] = (float)gr_rng_normal(&g);
    int32_t slot0 = 0, off[N_SLOTS + 1] = {0, PROMPT}, slots[N_SLOTS];
    CHECK(gr_tfm_forward_cached(m, kc, x, &slot0, off, 1, PROMPT, out) == GR_OK);
    put(r, out, (size_t)PROMPT * C);
    for (int s = 1; s < N_SLOTS; s++) CHECK(gr_kv_cache_share_prefix(kc, s, 0, PROMPT) == GR_OK);
    for (int step = 0; step < STEPS; step++) {
        int n = step == STEPS - 1 ? 3 : N_SLOTS;
        for (int s = 0; s < n; s++) { slots[s] = s; off[s + 1] = s + 1; }
        for (int i = 0; i < n * C; i++) x[i] = (float)gr_rng_normal(&g);
        CHECK(gr_tfm_forward_cached(m, kc, x, slots, off, n, n, out) == GR_OK);
        put(r, out, (size_t)n * C);
    }
    free(x);
    free(out);
    gr_kv_cache_free(kc);
}

/* Forward + backward, then the same with LoRA adapters on a frozen base,
 * cached decoding with the adapters, and the merged weights. */
static void run_all(int llama, run_out *r)
{
    gr_tfm_config cfg = cfg_big(llama);
    gr_tfm *m = make_model(&cfg, 11);
    REQUIRE(m);
    const int lens[3] = {40, 24, 33};
    batch b;
    make_batch(&b, lens, 3, cfg.d_model, cfg.max_T, 0, 3);
    float *out = malloc(sizeof(float) * (size_t)b.N * b.C), *dx = malloc(sizeof(float) * (size_t)b.N * b.C);
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            gr_lora_config lc = {.rank = 4, .alpha = 8.0f, .targets = GR_LORA_ALL, .seed = 9};
            gr_lora *lo = gr_lora_attach(m, &lc);
            REQUIRE(lo);
            float *lp = gr_lora_params(lo); /* B starts at 0: make the adapters act */
            for (int64_t i = 0; i < gr_lora_n_params(lo); i++) lp[i] += 0.05f * (float)((i * 7919) % 13 - 6);
            gr_tfm_set_frozen(m, 1);
        }
        gr_tfm_zero_grad(m);
        CHECK(isfinite(loss(m, &b, out)));
        CHECK(gr_tfm_backward(m, b.R, dx) == GR_OK);
        put(r, out, (size_t)b.N * b.C);
        put(r, dx, (size_t)b.N * b.C);
        if (pass == 0) put(r, gr_tfm_grads(m), (size_t)gr_tfm_n_params(m));
        else put(r, gr_lora_grads(gr_tfm_lora(m)), (size_t)gr_lora_n_params(gr_tfm_lora(m)));
        run_cached(m, &cfg, r);
    }
    gr_lora_merge(m);
    put(r, gr_tfm_params(m), (size_t)gr_tfm_n_params(m));
    free(out);
    free(dx);
    free_batch(&b);
    gr_tfm_free(m);
}

static int same(const run_out *a, const run_out *b)
{
    return a->n == b->n && !memcmp(a->v, b->v, sizeof(float) * a->n);
}

static void check_arch(int llama)
{
    run_out ref = {0};
    gr_threads_set(1);
    gr_ops_set_pass_region(0);
    run_all(llama, &ref);
    REQUIRE(ref.n > 0);
    for (int threads = 1; threads <= 2; threads++)
        for (int region = 0; region <= 1; region++) {
            gr_threads_set(threads);
            gr_ops_set_pass_region(region);
            run_out a = {0}, b = {0};
            run_all(llama, &a);
            run_all(llama, &b);
            if (!same(&a, &b))
                gr_test_fail(__FILE__, __LINE__, "%s, %d threads, pass regions %d: two runs differ",
                             llama ? "llama" : "gpt2", threads, region);
            /* the own GEMM kernel's results do not depend on the split, so
             * neither do the passes'; OpenBLAS's (no AVX2) may */
            if (gr_gemm_have_avx2() && !same(&a, &ref))
                gr_test_fail(__FILE__, __LINE__, "%s, %d threads, pass regions %d: differs from 1 thread, no pass regions",
                             llama ? "llama" : "gpt2", threads, region);
            free(a.v);
            free(b.v);
        }
    free(ref.v);
    gr_threads_set(0);
    gr_ops_set_pass_region(1);
}

static void test_gpt2(void) { check_arch(0); }
static void test_llama(void) { check_arch(1); }

/* The ops and gr_gemm still work called from inside another parallel
 * region (serially on each thread) and alone. */
static void test_ops_inside_foreign_region(void)
{
    enum { N = 37, C = 48, OC = 80 };
    float *x = malloc(sizeof(float) * N * C), *w = malloc(sizeof(float) * OC * C);
    float *ref = malloc(sizeof(float) * N * OC), *got = malloc(sizeof(float) * 4 * N * OC);
    for (int i = 0; i < N * C; i++) x[i] = (float)((i * 37) % 11) - 5.0f;
    for (int i = 0; i < OC * C; i++) w[i] = (float)((i * 13) % 7) - 3.0f;
    gr_threads_set(2);
    gr_linear_forward(ref, x, w, NULL, N, C, OC);
    gr_rmsnorm_forward(ref, NULL, ref, w, N, OC, 1e-5f);
    int ok = 1;
#pragma omp parallel for num_threads(2) schedule(static)
    for (int t = 0; t < 4; t++) {
        float *o = got + (size_t)t * N * OC;
        gr_linear_forward(o, x, w, NULL, N, C, OC);
        gr_rmsnorm_forward(o, NULL, o, w, N, OC, 1e-5f);
    }
    for (int t = 0; t < 4; t++) ok &= !memcmp(got + (size_t)t * N * OC, ref, sizeof(float) * N * OC);
    CHECK(ok);
    gr_threads_set(0);
    free(x); free(w); free(ref); free(got);
}

int main(void)
{
    GR_RUN(test_gpt2);
    GR_RUN(test_llama);
    GR_RUN(test_ops_inside_foreign_region);
    return gr_test_finish();
}
