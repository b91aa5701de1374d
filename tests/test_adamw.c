/* AdamW against torch.optim.AdamW: hard-coded values for a tiny case
 * (computed with torch 1.13, script below) and, when /usr/bin/python3 has
 * torch, a larger random case through tests/ref/transformer_ref.py.
 *
 * The hard-coded values came from:
 *   import torch, numpy as np
 *   p0 = [0.5, -1.0, 2.0, 0.0]; mask = [1, 1, 0, 1]
 *   G = [[0.1, -0.2, 0.3, 0.0], [0.05, 0.4, -0.1, 1.0], [-0.3, 0.2, 0.2, -0.5],
 *        [0.0, -0.1, 0.7, 0.25], [1.5, 0.01, -0.6, 0.3]]
 *   m = np.array(mask, bool)
 *   pd = torch.tensor(np.float32(p0)[m], requires_grad=True)
 *   pn = torch.tensor(np.float32(p0)[~m], requires_grad=True)
 *   opt = torch.optim.AdamW([{"params": [pd], "weight_decay": 0.1},
 *                            {"params": [pn], "weight_decay": 0.0}],
 *                           lr=0.01, betas=(0.9, 0.999), eps=1e-8)
 *   for t in range(5):
 *       g = np.float32(G[t]); pd.grad = torch.tensor(g[m]); pn.grad = torch.tensor(g[~m])
 *       opt.step()  # print pd, pn merged back in order
 */
#include "gr_test.h"
#include "genrec/common.h"
#include "genrec/rng.h"
#include "genrec/transformer.h"

#include <math.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define PY "/usr/bin/python3"

static void test_hardcoded_torch_values(void)
{
    float p[4] = {0.5f, -1.0f, 2.0f, 0.0f};
    const uint8_t mask[4] = {1, 1, 0, 1};
    const float G[5][4] = {{0.1f, -0.2f, 0.3f, 0.0f}, {0.05f, 0.4f, -0.1f, 1.0f},
                           {-0.3f, 0.2f, 0.2f, -0.5f}, {0.0f, -0.1f, 0.7f, 0.25f},
                           {1.5f, 0.01f, -0.6f, 0.3f}};
    const float expect[5][4] = {
        {0.489500016f, -0.989000022f, 1.99000001f, 0.0f},
        {0.479688704f, -0.991672099f, 1.9859978f, -0.00744136795f},
        {0.482681274f, -0.995872855f, 1.97996688f, -0.00972033013f},
        {0.48504284f, -0.997880816f, 1.97251379f, -0.0128074922f},
        {0.479724079f, -0.999530613f, 1.97078085f, -0.0167102478f},
    };
    gr_adamw opt;
    REQUIRE(gr_adamw_init(&opt, 4, 0.01f, 0.9f, 0.999f, 1e-8f, 0.1f) == GR_OK);
    for (int t = 0; t < 5; t++) {
        gr_adamw_step(&opt, p, G[t], mask);
        for (int i = 0; i < 4; i++) CHECK_NEAR(p[i], expect[t][i], 2e-7 * fmax(1.0, fabs(expect[t][i])));
    }
    CHECK_EQ_INT(opt.t, 5);
    gr_adamw_free(&opt);
    gr_adamw_free(&opt); /* idempotent */
}

/* Step 1 with wd = 0 moves every parameter with g != 0 by lr * sign(g)
 * (bias correction makes m/sqrt(v) = g/|g|); NULL mask = decay everything. */
static void test_first_step_and_mask(void)
{
    float p[3] = {1.0f, 1.0f, 1.0f}, g[3] = {3.0f, -0.001f, 0.0f};
    gr_adamw opt;
    REQUIRE(gr_adamw_init(&opt, 3, 0.1f, 0.9f, 0.99f, 1e-12f, 0.0f) == GR_OK);
    gr_adamw_step(&opt, p, g, NULL);
    CHECK_NEAR(p[0], 0.9, 1e-6);
    CHECK_NEAR(p[1], 1.1, 1e-5);
    CHECK_NEAR(p[2], 1.0, 0);
    gr_adamw_free(&opt);
    /* decoupled decay with zero gradient: p *= 1 - lr*wd, only where masked */
    float q[2] = {2.0f, 2.0f}, z[2] = {0.0f, 0.0f};
    const uint8_t mk[2] = {1, 0};
    REQUIRE(gr_adamw_init(&opt, 2, 0.1f, 0.9f, 0.999f, 1e-8f, 0.5f) == GR_OK);
    gr_adamw_step(&opt, q, z, mk);
    CHECK_NEAR(q[0], 2.0 * 0.95, 1e-6);
    CHECK_NEAR(q[1], 2.0, 0);
    gr_adamw_step(&opt, q, z, NULL);
    CHECK_NEAR(q[1], 2.0 * 0.95, 1e-6);
    gr_adamw_free(&opt);
}

static void test_bad_hyperparameters(void)
{
    gr_adamw opt;
    CHECK(gr_adamw_init(&opt, 4, -1.0f, 0.9f, 0.999f, 1e-8f, 0.0f) == GR_ERR);
    CHECK_HAS(gr_error_message(), "'lr'");
    CHECK(gr_adamw_init(&opt, 4, 0.1f, 1.0f, 0.999f, 1e-8f, 0.0f) == GR_ERR);
    CHECK_HAS(gr_error_message(), "'beta1'");
    CHECK(gr_adamw_init(&opt, 4, 0.1f, 0.9f, -0.1f, 1e-8f, 0.0f) == GR_ERR);
    CHECK_HAS(gr_error_message(), "'beta2'");
    CHECK(gr_adamw_init(&opt, 4, 0.1f, 0.9f, 0.999f, 0.0f, 0.0f) == GR_ERR);
    CHECK_HAS(gr_error_message(), "'eps'");
    CHECK(gr_adamw_init(&opt, 4, 0.1f, 0.9f, 0.999f, 1e-8f, NAN) == GR_ERR);
    CHECK_HAS(gr_error_message(), "'weight_decay'");
    gr_adamw_free(&opt);
}

static void test_torch_random_case(void)
{
    if (access(PY, X_OK) != 0) {
        gr_test_skip(PY " not available: PyTorch AdamW comparison skipped");
        return;
    }
    const char *src = getenv("GENREC_SOURCE");
    if (!src) src = ".";
    const int64_t n = 1000;
    const int steps = 5;
    float lr = 3e-3f, b1 = 0.85f, b2 = 0.98f, eps = 1e-6f, wd = 0.05f;
    gr_rng r;
    gr_rng_seed(&r, 42);
    uint8_t *mask = malloc((size_t)n);
    float *p = malloc(sizeof(float) * (size_t)n), *g = malloc(sizeof(float) * (size_t)(steps * n));
    float *ref = malloc(sizeof(float) * (size_t)(steps * n));
    for (int64_t i = 0; i < n; i++) {
        mask[i] = gr_rng_below(&r, 3) != 0;
        p[i] = (float)gr_rng_normal(&r);
    }
    for (int64_t i = 0; i < steps * n; i++) g[i] = (float)(gr_rng_normal(&r) * (i % 7 == 0 ? 1e-4 : 1.0));
    char in[512], out[512], cmd[1400];
    snprintf(in, sizeof in, "%s/adamw.in", gr_test_tmpdir());
    snprintf(out, sizeof out, "%s/adamw.out", gr_test_tmpdir());
    FILE *f = fopen(in, "wb");
    REQUIRE(f);
    int32_t st = steps;
    float hp[5] = {lr, b1, b2, eps, wd};
    fwrite("GRADAMW1", 1, 8, f);
    fwrite(&n, 8, 1, f);
    fwrite(&st, 4, 1, f);
    fwrite(hp, 4, 5, f);
    fwrite(mask, 1, (size_t)n, f);
    fwrite(p, 4, (size_t)n, f);
    fwrite(g, 4, (size_t)(steps * n), f);
    fclose(f);
    snprintf(cmd, sizeof cmd, PY " %s/tests/ref/transformer_ref.py %s %s", src, in, out);
    int rc = system(cmd);
    if (rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 77) {
        gr_test_skip(PY " has no numpy/torch: PyTorch AdamW comparison skipped");
        free(mask); free(p); free(g); free(ref);
        return;
    }
    REQUIRE(rc == 0);
    f = fopen(out, "rb");
    REQUIRE(f);
    size_t got = fread(ref, 4, (size_t)(steps * n), f);
    fclose(f);
    REQUIRE(got == (size_t)(steps * n));
    gr_adamw opt;
    REQUIRE(gr_adamw_init(&opt, n, lr, b1, b2, eps, wd) == GR_OK);
    double worst = 0;
    for (int t = 0; t < steps; t++) {
        gr_adamw_step(&opt, p, g + t * n, mask);
        for (int64_t i = 0; i < n; i++)
            worst = fmax(worst, fabs((double)p[i] - ref[t * n + i]) / fmax(1.0, fabs(ref[t * n + i])));
    }
    if (getenv("GR_TEST_VERBOSE")) printf("  adamw vs torch: max rel diff %.3g\n", worst);
    CHECK(worst < 1e-6);
    gr_adamw_free(&opt);
    free(mask); free(p); free(g); free(ref);
}

int main(void)
{
    GR_RUN(test_hardcoded_torch_values);
    GR_RUN(test_first_step_and_mask);
    GR_RUN(test_bad_hyperparameters);
    GR_RUN(test_torch_random_case);
    return gr_test_finish();
}
