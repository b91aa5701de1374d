/* Constrained beam search speed on a real catalogue (issue 4's decoding
 * target): every test user of a leave-one-out split decoded with B beams by
 * the batched, prefix-shared decoder, against the naive per-beam loop (each
 * beam its own prompt copy and its own decoding call) on the first users, in
 * the same process. The model is the gen recommender's default size with
 * random weights (decoding cost does not depend on training).
 *
 *   bench_beam DATA [--beams 20] [--threads 2] [--naive-users 48] [--dim 128] [--layers 2]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "genrec/beam.h"
#include "genrec/itemtext.h"
#include "genrec/split.h"

int main(int argc, char **argv)
{
    if (argc < 2) { fprintf(stderr, "usage: bench_beam DATA [--beams B] [--threads N] [--naive-users N] [--dim C] [--layers L]\n"); return 2; }
    int beams = 20, threads = 2, naive_users = 48, dim = 128, layers = 2, ctx = 256;
    for (int i = 2; i + 1 < argc; i += 2) {
        int v = atoi(argv[i + 1]);
        if (!strcmp(argv[i], "--beams")) beams = v;
        else if (!strcmp(argv[i], "--threads")) threads = v;
        else if (!strcmp(argv[i], "--naive-users")) naive_users = v;
        else if (!strcmp(argv[i], "--dim")) dim = v;
        else if (!strcmp(argv[i], "--layers")) layers = v;
        else { fprintf(stderr, "unknown flag %s\n", argv[i]); return 2; }
    }
    gr_threads_set(threads);
    gr_load_opts lo = gr_load_opts_default();
    gr_dataset *d = gr_dataset_load(argv[1], &lo);
    gr_split *s = d ? gr_split_build(d, NULL) : NULL;
    if (!s) { fprintf(stderr, "error: %s\n", gr_error_message()); return 1; }
    gr_itemtext *it = gr_itemtext_build(d, NULL);
    gr_prompt_tmpl t = gr_prompt_tmpl_compact();
    size_t len;
    char *corpus = gr_rec_corpus(&t, it, &len);
    int V = 512;
    while (V < s->n_items && V < 4096) V *= 2;
    const char *specials[1] = {"<|endoftext|>"};
    gr_bpe_train_opts bo = {V, 2, specials, 1};
    gr_tokenizer *tok = gr_bpe_train(corpus, len, &bo);
    gr_free(corpus);
    double *pop = gr_rec_train_counts(s);
    gr_trie *tr = gr_trie_build_answers(&t, tok, it, pop);
    gr_tfm_config c;
    gr_lm_config_preset(&c, GR_ARCH_LLAMA, layers, dim, 4, 0, 3 * dim, ctx, gr_tokenizer_n_vocab(tok));
    gr_lm *lm = gr_lm_init(GR_ARCH_LLAMA, &c, 1);
    if (!tr || !lm) { fprintf(stderr, "error: %s\n", gr_error_message()); return 1; }
    /* prompts: BOS + answers of the last history items that fit */
    int n = (int)s->n_test;
    int32_t **pr = calloc((size_t)n, sizeof *pr);
    int64_t *pl = calloc((size_t)n, sizeof *pl);
    int64_t tot = 0;
    for (int u = 0; u < n; u++) {
        const gr_query *q = &s->test[u];
        pr[u] = malloc(sizeof(int32_t) * (size_t)ctx);
        int64_t k = 0, budget = ctx - tr->max_depth - 1;
        pr[u][k++] = gr_tokenizer_bos(tok);
        int32_t a = q->hist_len, used = 1;
        while (a > 0) {
            int64_t nl;
            int32_t *ids = gr_answer_encode(&t, tok, it, q->hist[a - 1], &nl);
            int ok = used + nl <= budget;
            gr_free(ids);
            if (!ok) break;
            used += (int32_t)nl;
            a--;
        }
        for (int32_t i = a; i < q->hist_len; i++) {
            int64_t nl;
            int32_t *ids = gr_answer_encode(&t, tok, it, q->hist[i], &nl);
            memcpy(pr[u] + k, ids, sizeof(int32_t) * (size_t)nl);
            k += nl;
            gr_free(ids);
        }
        pl[u] = k;
        tot += k;
    }
    printf("data %s: %d test users, %d items, vocab %d, trie %d nodes (depth %d), mean prompt %.0f tokens, "
           "model d%d x %d layers, %d beams, %d threads\n", argv[1], n, (int)s->n_items, gr_tokenizer_n_vocab(tok),
           (int)tr->n_nodes, (int)tr->max_depth, (double)tot / n, dim, layers, beams, threads);
    gr_beam_hit *hits = malloc(sizeof *hits * (size_t)n * beams);
    int *nh = malloc(sizeof(int) * (size_t)n);
    gr_beam_opts o = gr_beam_opts_default();
    o.n_beams = beams;
    double t0 = gr_time_now(), c0 = gr_cpu_time();
    if (gr_beam_search(lm, tr, (const int32_t *const *)pr, pl, n, &o, beams, hits, nh)) { fprintf(stderr, "error: %s\n", gr_error_message()); return 1; }
    double tb = gr_time_now() - t0, cb = gr_cpu_time() - c0;
    int nn = naive_users < n ? naive_users : n;
    gr_beam_hit *h2 = malloc(sizeof *h2 * (size_t)nn * beams);
    int *nh2 = malloc(sizeof(int) * (size_t)nn);
    o.naive = 1;
    t0 = gr_time_now(); c0 = gr_cpu_time();
    if (gr_beam_search(lm, tr, (const int32_t *const *)pr, pl, nn, &o, beams, h2, nh2)) { fprintf(stderr, "error: %s\n", gr_error_message()); return 1; }
    double tn = gr_time_now() - t0, cn = gr_cpu_time() - c0;
    int same = 1;
    for (int u = 0; u < nn; u++) same &= nh2[u] == nh[u] && (nh[u] == 0 || h2[(int64_t)u * beams].item == hits[(int64_t)u * beams].item);
    printf("batched prefix-shared: %.1f users/s wall (%.1f users/s per CPU-second), %d users in %.2f s\n", n / tb, n / cb, n, tb);
    printf("naive per-beam loop:   %.1f users/s wall (%.1f users/s per CPU-second), %d users in %.2f s\n", nn / tn, nn / cn, nn, tn);
    printf("speedup (wall) %.2fx   (CPU) %.2fx   same results: %s\n", (nn / tn) > 0 ? (n / tb) / (nn / tn) : 0.0,
           (n / cb) / (nn / cn), same ? "yes" : "NO");
    return 0;
}
