/* Saved generative models (gr_model_save / gr_model_load): a tiny gen and a
 * tiny gen-sid score bit for bit the same after a save/load round trip, the
 * catalogue holds the dataset's items and whole user sequences, recommend
 * returns k unseen items (growing the beams when needed), other models are
 * refused, and corrupt files (truncated, wrong genrec.model, ids out of
 * range in the trie, answers and users, hyperparameters that contradict the
 * tensors) fail with a message naming the file and the field.
 *
 * With GENREC_WRITE_FUZZ_CORPUS=DIR the tiny models are written to DIR as
 * seeds for fuzz/corpus/genmodel/. */
#include "gr_test.h"
#include "genrec/gguf.h"
#include "genrec/model.h"
#include "genrec/synth.h"
#include "models/gen_internal.h"

#include <stdlib.h>

static gr_dataset *world(void)
{
    gr_synth_opts so = gr_synth_opts_default();
    so.n_users = 120;
    so.n_items = 40;
    so.per_user = 12;
    so.seed = 11;
    gr_synth_world *w = gr_synth_generate(&so);
    if (!w) return NULL;
    gr_dataset *d = gr_synth_to_dataset(w);
    gr_synth_free(w);
    return d;
}

/* round_steps 0/1: one pass per epoch (1 step is always less than a pass) */
static const char *kv_gen[] = {"gen.dim=16", "gen.layers=1", "gen.heads=2", "gen.ctx=64", "gen.epochs=2",
                               "gen.round_steps=0", "gen.beams=6", "gen.batch=512", "gen.lr=5e-3", "gen.vocab=300"};
/* the D3 instruction prompt (a model trained from scratch on SFT samples; the
 * fine-tuning keys that need a base are in test_gen_finetune.c) */
static const char *kv_d3[] = {"gen.dim=16", "gen.layers=1", "gen.heads=2", "gen.ctx=160", "gen.epochs=1",
                              "gen.round_steps=0", "gen.beams=6", "gen.batch=1024", "gen.lr=5e-3", "gen.vocab=300",
                              "gen.template=d3", "gen.category=games", "gen.max_hist=3", "gen.with_genres=1"};
static const char *kv_sid[] = {"gen-sid.dim=16", "gen-sid.layers=1", "gen-sid.heads=2", "gen-sid.ctx=32",
                               "gen-sid.epochs=2", "gen-sid.round_steps=1", "gen-sid.beams=6", "gen-sid.batch=512",
                               "gen-sid.lr=5e-3", "gen-sid.sid_dim=8", "gen-sid.sid_levels=2"};

#define NQ 12

static gr_model *fit(const char *name, const char **kv, int nkv, const gr_split *s)
{
    gr_params p = {kv, nkv};
    gr_model *m = gr_model_create(name, &p);
    if (!m) { fprintf(stderr, "create: %s\n", gr_error_message()); return NULL; }
    if (m->ops->fit(m, s, NULL) != GR_OK) {
        fprintf(stderr, "fit: %s\n", gr_error_message());
        gr_model_free(m);
        return NULL;
    }
    return m;
}

/* Save, load, compare scores bit for bit and the catalogue with the dataset. */
static void round_trip(const char *name, const char **kv, int nkv, const char *file)
{
    gr_dataset *d = world();
    REQUIRE(d);
    gr_split *s = gr_split_build(d, NULL);
    REQUIRE(s);
    gr_model *m = fit(name, kv, nkv, s);
    REQUIRE(m);
    const int64_t nsc = (int64_t)NQ * s->n_items;
    float *sc1 = malloc(sizeof(float) * (size_t)nsc), *sc2 = malloc(sizeof(float) * (size_t)nsc);
    REQUIRE(sc1 && sc2);
    REQUIRE(s->n_test >= NQ);
    REQUIRE(m->ops->score(m, s->test, NQ, sc1) == GR_OK);
    const char *path = gr_test_path(file);
    if (gr_model_save(m, s, path) != GR_OK) fprintf(stderr, "save: %s\n", gr_error_message());
    REQUIRE(gr_path_is_file(path));
    size_t fsize = 0;
    free(gr_test_read_file(path, &fsize));
    printf("  %s: %zu bytes\n", file, fsize);
    gr_test_save_seed(path, file);
    gr_gguf *gf = gr_gguf_open(path); /* the training schedule is recorded */
    REQUIRE(gf);
    int64_t rs = -1;
    CHECK(gr_gguf_get_int(gf, "genrec.gen.round_steps", &rs) == GR_OK);
    CHECK_EQ_INT(rs, strcmp(name, "gen-sid") ? 0 : 1);
    gr_gguf_close(gf);

    gr_rec_catalog *cat = NULL;
    gr_model *m2 = gr_model_load(path, &cat);
    if (!m2) fprintf(stderr, "load: %s\n", gr_error_message());
    REQUIRE(m2);
    REQUIRE(cat);
    CHECK_STR(m2->ops->name, name);
    CHECK_EQ_INT(m2->n_items, s->n_items);
    CHECK_EQ_INT(m2->max_k, 6);
    for (int64_t i = 0; i < nsc; i++) sc2[i] = 0.0f;
    REQUIRE(m2->ops->score(m2, s->test, NQ, sc2) == GR_OK);
    CHECK(memcmp(sc1, sc2, sizeof(float) * (size_t)nsc) == 0); /* bit for bit */
    int finite = 0;
    for (int64_t i = 0; i < nsc; i++) finite += isfinite(sc2[i]);
    CHECK(finite >= NQ);

    /* the catalogue */
    CHECK_STR(cat->model, name);
    CHECK_STR(cat->protocol, "loo");
    CHECK_EQ_INT(cat->n_items, d->n_items);
    CHECK_EQ_INT(cat->n_users, d->n_users);
    for (int32_t i = 0; i < d->n_items; i++) CHECK_STR(cat->item_key[i], d->item_key[i]);
    /* the text trained on: the title (normalised), or with genres appended (with_genres) */
    CHECK(strstr(d->item_title[3], cat->item_title[3]) != NULL || strstr(cat->item_title[3], d->item_title[3]) != NULL);
    for (int32_t u = 0; u <= d->n_users; u++) CHECK_EQ_INT(cat->user_off[u], d->user_off[u]);
    CHECK(memcmp(cat->user_item, d->inter_item, sizeof(int32_t) * (size_t)d->n_inter) == 0);
    for (int32_t u = 0; u < d->n_users; u += 17) CHECK_EQ_INT(gr_rec_catalog_user(cat, d->user_key[u]), u);
    CHECK_EQ_INT(gr_rec_catalog_user(cat, "no such user"), -1);
    CHECK_EQ_INT(gr_rec_catalog_item(cat, d->item_key[7]), 7);
    CHECK_EQ_INT(gr_rec_catalog_item(cat, "no such item"), -1);
    if (!strcmp(name, "gen-sid")) {
        REQUIRE(cat->item_sid);
        CHECK(!strncmp(cat->item_sid[0], "<a_", 3) && strstr(cat->item_sid[0], "<c_"));
    } else {
        CHECK(cat->item_sid == NULL);
    }

    /* recommend: k unseen items, best first */
    const int32_t u = 2, *h = cat->user_item + cat->user_off[u];
    const int32_t nh = (int32_t)(cat->user_off[u + 1] - cat->user_off[u]);
    int32_t items[16];
    float scores[16];
    int n = 0;
    REQUIRE(gr_model_recommend(m2, h, nh, 5, 1, items, scores, &n) == GR_OK);
    CHECK_EQ_INT(n, 5);
    for (int i = 0; i < n; i++) {
        CHECK(items[i] >= 0 && items[i] < cat->n_items);
        for (int32_t j = 0; j < nh; j++) CHECK(items[i] != h[j]);
        if (i) CHECK(scores[i] <= scores[i - 1]);
    }
    /* more than the beams: the beams grow for the call, then are restored */
    REQUIRE(gr_model_recommend(m2, h, nh, 14, 1, items, scores, &n) == GR_OK);
    CHECK_EQ_INT(n, 14);
    CHECK_EQ_INT(m2->max_k, 6);
    CHECK(gr_model_recommend(m2, h, nh, 0, 1, items, scores, &n) == GR_ERR);
    int32_t bad = cat->n_items;
    CHECK(gr_model_recommend(m2, &bad, 1, 5, 1, items, scores, &n) == GR_ERR);
    CHECK_HAS(gr_error_message(), "outside");
    CHECK(gr_model_set_beams(m2, 0) == GR_ERR);
    REQUIRE(gr_model_set_beams(m2, 3) == GR_OK);
    CHECK_EQ_INT(m2->max_k, 3);

    gr_rec_catalog_free(cat);
    gr_model_free(m2);
    gr_model_free(m);
    free(sc1);
    free(sc2);
    gr_split_free(s);
    gr_dataset_free(d);
}

static void test_gen_round_trip(void)
{
    round_trip("gen", kv_gen, (int)(sizeof kv_gen / sizeof kv_gen[0]), "tiny_gen.gguf");
}

static void test_gen_d3_round_trip(void)
{
    round_trip("gen", kv_d3, (int)(sizeof kv_d3 / sizeof kv_d3[0]), "tiny_gen_d3.gguf");
    gr_model *m = gr_model_load(gr_test_path("tiny_gen_d3.gguf"), NULL);
    REQUIRE(m);
    const gen_model *g = m->impl;
    CHECK_STR(g->tmpl.name, "d3");
    CHECK_STR(g->tmpl.category, "games");
    CHECK_EQ_INT(g->max_hist, 3);
    CHECK_EQ_INT(g->with_genres, 1);
    gr_model_free(m);
}

static void test_gen_sid_round_trip(void)
{
    round_trip("gen-sid", kv_sid, (int)(sizeof kv_sid / sizeof kv_sid[0]), "tiny_gen_sid.gguf");
}

static void test_other_models_refused(void)
{
    gr_dataset *d = world();
    REQUIRE(d);
    gr_split *s = gr_split_build(d, NULL);
    REQUIRE(s);
    gr_model *pop = gr_model_create("pop", NULL);
    REQUIRE(pop);
    REQUIRE(pop->ops->fit(pop, s, NULL) == GR_OK);
    CHECK(gr_model_save(pop, s, gr_test_path("pop.gguf")) == GR_ERR);
    CHECK_HAS(gr_error_message(), "model pop cannot be saved");
    CHECK(!gr_path_is_file(gr_test_path("pop.gguf")));
    CHECK(gr_model_set_beams(pop, 5) == GR_ERR);
    /* recommend works for any model through its score() */
    int32_t items[5], h[2] = {0, 1};
    int n = 0;
    REQUIRE(gr_model_recommend(pop, h, 2, 5, 1, items, NULL, &n) == GR_OK);
    CHECK_EQ_INT(n, 5);
    for (int i = 0; i < n; i++) CHECK(items[i] != 0 && items[i] != 1);
    gr_model_free(pop);
    /* an unfitted gen model */
    gr_params p = {kv_gen, (int)(sizeof kv_gen / sizeof kv_gen[0])};
    gr_model *g = gr_model_create("gen", &p);
    REQUIRE(g);
    CHECK(gr_model_save(g, s, gr_test_path("unfitted.gguf")) == GR_ERR);
    CHECK_HAS(gr_error_message(), "not fitted");
    gr_model_free(g);
    /* not a model file at all */
    CHECK(gr_model_load(gr_test_path("does-not-exist.gguf"), NULL) == NULL);
    CHECK_HAS(gr_error_message(), "does-not-exist.gguf");
    gr_split_free(s);
    gr_dataset_free(d);
}

/* ---- corrupt files ------------------------------------------------------------------ */

typedef void (*edit_fn)(gr_gguf_builder *b, const gr_gguf *g);

/* Copy src into dst with every key/value (but skip, when not NULL) and
 * tensor, then apply edit (when not NULL). */
static int rewrite_skip(const char *src, const char *dst, edit_fn edit, const char *skip)
{
    gr_gguf *g = gr_gguf_open(src);
    if (!g) return GR_ERR;
    gr_gguf_builder *b = gr_gguf_builder_new();
    int rc = b ? GR_OK : GR_ERR;
    for (int64_t i = 0; i < gr_gguf_n_kv(g) && rc == GR_OK; i++)
        if (!skip || strcmp(gr_gguf_kv_at(g, i)->key, skip)) rc = gr_gguf_set_kv(b, gr_gguf_kv_at(g, i));
    for (int64_t i = 0; i < gr_gguf_n_tensors(g) && rc == GR_OK; i++) {
        const gr_gguf_tensor *t = gr_gguf_tensor_at(g, i);
        rc = gr_gguf_add_tensor(b, t->name, t->type, t->n_dims, t->ne, t->data, t->n_bytes);
    }
    if (rc == GR_OK && edit) edit(b, g);
    if (rc == GR_OK) rc = gr_gguf_write(b, dst);
    gr_gguf_builder_free(b);
    gr_gguf_close(g);
    return rc;
}

static int rewrite(const char *src, const char *dst, edit_fn edit) { return rewrite_skip(src, dst, edit, NULL); }

/* A copy of int32 array key with element i set to v. */
static void set_i32_elem(gr_gguf_builder *b, const gr_gguf *g, const char *key, int64_t i, int32_t v)
{
    const gr_gguf_kv *kv = gr_gguf_find(g, key);
    if (!kv || kv->type != GR_GGUF_ARRAY || (int64_t)kv->n <= i) return;
    int32_t *a = malloc(sizeof(int32_t) * kv->n);
    memcpy(a, kv->v.arr, sizeof(int32_t) * kv->n);
    a[i] = v;
    gr_gguf_set_arr(b, key, GR_GGUF_I32, a, kv->n);
    free(a);
}

static void e_model_name(gr_gguf_builder *b, const gr_gguf *g) { (void)g; gr_gguf_set_str(b, "genrec.model", "sasrec"); }
static void e_model_swap(gr_gguf_builder *b, const gr_gguf *g) { (void)g; gr_gguf_set_str(b, "genrec.model", "gen-sid"); }
static void e_no_model(gr_gguf_builder *b, const gr_gguf *g) { (void)g; gr_gguf_set_i32(b, "genrec.model", 3); }
static void e_ctx(gr_gguf_builder *b, const gr_gguf *g) { (void)g; gr_gguf_set_i32(b, "genrec.gen.ctx", 1 << 21); }
static void e_dim(gr_gguf_builder *b, const gr_gguf *g) { (void)g; gr_gguf_set_i32(b, "genrec.gen.dim", 32); }
static void e_beams(gr_gguf_builder *b, const gr_gguf *g) { (void)g; gr_gguf_set_i32(b, "genrec.gen.beams", -4); }
static void e_round(gr_gguf_builder *b, const gr_gguf *g) { (void)g; gr_gguf_set_i32(b, "genrec.gen.round_steps", -1); }
static void e_trie_item(gr_gguf_builder *b, const gr_gguf *g)
{
    const gr_gguf_kv *kv = gr_gguf_find(g, "genrec.trie");
    if (kv) set_i32_elem(b, g, "genrec.trie", (int64_t)kv->n - 1, 1000000); /* last entry of order[] */
}
static void e_trie_token(gr_gguf_builder *b, const gr_gguf *g)
{
    /* the last edge token of the root (header 6, child_off n_nodes+1): past the vocabulary */
    const gr_gguf_kv *kv = gr_gguf_find(g, "genrec.trie");
    if (!kv) return;
    const int32_t *t = kv->v.arr;
    int64_t nn = t[2], root_end = t[6 + 1];
    set_i32_elem(b, g, "genrec.trie", 6 + (nn + 1) + root_end - 1, 1 << 24);
}
static void e_answer(gr_gguf_builder *b, const gr_gguf *g) { set_i32_elem(b, g, "genrec.items.answer_ids", 0, 1 << 25); }
static void e_answer_swap(gr_gguf_builder *b, const gr_gguf *g)
{
    /* item 0's first token := item 1's: in range, but not item 0's leaf */
    const gr_gguf_kv *off = gr_gguf_find(g, "genrec.items.answer_off"), *ids = gr_gguf_find(g, "genrec.items.answer_ids");
    if (!off || !ids) return;
    const int64_t *o = off->v.arr;
    const int32_t *a = ids->v.arr;
    for (int64_t i = 1; i + 1 < (int64_t)off->n; i++)
        if (a[o[i]] != a[0]) { set_i32_elem(b, g, "genrec.items.answer_ids", 0, a[o[i]]); return; }
}
static void e_user_item(gr_gguf_builder *b, const gr_gguf *g) { set_i32_elem(b, g, "genrec.users.items", 5, -2); }
static void e_user_off(gr_gguf_builder *b, const gr_gguf *g)
{
    const gr_gguf_kv *kv = gr_gguf_find(g, "genrec.users.off");
    if (!kv) return;
    int64_t *a = malloc(sizeof(int64_t) * kv->n);
    memcpy(a, kv->v.arr, sizeof(int64_t) * kv->n);
    a[1] = a[kv->n - 1] + 10;
    gr_gguf_set_arr(b, "genrec.users.off", GR_GGUF_I64, a, kv->n);
    free(a);
}
static void e_titles(gr_gguf_builder *b, const gr_gguf *g)
{
    const gr_gguf_kv *kv = gr_gguf_find(g, "genrec.items.title");
    if (kv) gr_gguf_set_arr_str(b, "genrec.items.title", kv->v.strs, kv->str_lens, kv->n - 1);
}
static void e_title_text(gr_gguf_builder *b, const gr_gguf *g)
{
    const gr_gguf_kv *kv = gr_gguf_find(g, "genrec.items.title");
    if (!kv) return;
    const char **s = malloc(sizeof(char *) * kv->n);
    for (uint64_t i = 0; i < kv->n; i++) s[i] = kv->v.strs[i];
    s[0] = "A Different Title";
    gr_gguf_set_arr_str(b, "genrec.items.title", s, NULL, kv->n);
    free(s);
}
static void e_sid_code(gr_gguf_builder *b, const gr_gguf *g) { set_i32_elem(b, g, "genrec.sid.codes", 0, 1 << 20); }
static void e_sid_k(gr_gguf_builder *b, const gr_gguf *g) { (void)g; gr_gguf_set_i32(b, "genrec.sid.K", 3); }
static void e_pop(gr_gguf_builder *b, const gr_gguf *g)
{
    const gr_gguf_kv *kv = gr_gguf_find(g, "genrec.items.pop");
    if (!kv) return;
    double *a = malloc(sizeof(double) * kv->n);
    memcpy(a, kv->v.arr, sizeof(double) * kv->n);
    a[2] = NAN;
    gr_gguf_set_arr(b, "genrec.items.pop", GR_GGUF_F64, a, kv->n);
    free(a);
}

static void e_template(gr_gguf_builder *b, const gr_gguf *g) { (void)g; gr_gguf_set_str(b, "genrec.gen.template", "bogus"); }
static void e_template_swap(gr_gguf_builder *b, const gr_gguf *g) { (void)g; gr_gguf_set_str(b, "genrec.gen.template", "compact"); }
static void e_kv_heads(gr_gguf_builder *b, const gr_gguf *g) { (void)g; gr_gguf_set_i32(b, "genrec.gen.kv_heads", 3); }

static void expect_bad(const char *src, edit_fn edit, const char *field)
{
    char dst[600];
    snprintf(dst, sizeof dst, "%s", gr_test_path("bad.gguf"));
    if (rewrite(src, dst, edit) != GR_OK) fprintf(stderr, "rewrite: %s\n", gr_error_message());
    REQUIRE(gr_path_is_file(dst));
    gr_rec_catalog *cat = (gr_rec_catalog *)1;
    gr_model *m = gr_model_load(dst, &cat);
    CHECK(m == NULL);
    CHECK(cat == NULL);
    gr_model_free(m);
    printf("  rejected: %.200s\n", gr_error_message());
    CHECK_HAS(gr_error_message(), "bad.gguf");
    CHECK_HAS(gr_error_message(), field);
}

static void test_corrupt_files(void)
{
    char gen[600], sid[600]; /* gr_test_path's buffers are a ring: keep copies */
    snprintf(gen, sizeof gen, "%s", gr_test_path("tiny_gen.gguf"));
    snprintf(sid, sizeof sid, "%s", gr_test_path("tiny_gen_sid.gguf"));
    if (!gr_path_is_file(gen) || !gr_path_is_file(sid)) { gr_test_skip("round trips failed"); return; }
    gr_model *ok = NULL;
    /* truncated: every prefix length class fails cleanly */
    size_t n;
    char *buf = gr_test_read_file(gen, &n);
    REQUIRE(buf);
    const size_t cuts[] = {0, 3, 24, n / 10, n / 2, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        const char *p = gr_test_path("trunc.gguf");
        FILE *f = fopen(p, "wb");
        REQUIRE(f);
        fwrite(buf, 1, cuts[i], f);
        fclose(f);
        CHECK((ok = gr_model_load(p, NULL)) == NULL);
        gr_model_free(ok);
        CHECK_HAS(gr_error_message(), "trunc.gguf");
        /* the same bytes from memory */
        CHECK((ok = gr_model_load_memory(buf, cuts[i], "mem", NULL)) == NULL);
        gr_model_free(ok);
        CHECK_HAS(gr_error_message(), "mem");
    }
    /* the whole buffer from memory loads */
    ok = gr_model_load_memory(buf, n, "mem", NULL);
    if (!ok) fprintf(stderr, "load_memory: %s\n", gr_error_message());
    CHECK(ok != NULL);
    gr_model_free(ok);
    free(buf);

    expect_bad(gen, e_model_name, "genrec.model");
    expect_bad(gen, e_model_swap, "genrec.gen.items");
    expect_bad(gen, e_no_model, "genrec.model");
    expect_bad(gen, e_ctx, "genrec.gen.ctx");
    expect_bad(gen, e_dim, "llama.embedding_length");
    expect_bad(gen, e_beams, "genrec.gen.beams");
    expect_bad(gen, e_round, "genrec.gen.round_steps");
    expect_bad(gen, e_template, "genrec.gen.template");
    expect_bad(gen, e_kv_heads, "genrec.gen.kv_heads");
    char d3[600];
    snprintf(d3, sizeof d3, "%s", gr_test_path("tiny_gen_d3.gguf"));
    if (gr_path_is_file(d3)) /* D3 answers ("title" + newline) are not the compact template's */
        expect_bad(d3, e_template_swap, "genrec.items.answer_ids");
    /* the epoch rule: whole passes making at least round_steps steps */
    CHECK_EQ_INT(gen_epoch_passes(15, 100), 7); /* Scientific's semantic IDs: 105 steps */
    CHECK_EQ_INT(gen_epoch_passes(80, 100), 2);
    CHECK_EQ_INT(gen_epoch_passes(100, 100), 1);
    CHECK_EQ_INT(gen_epoch_passes(154, 100), 1);
    CHECK_EQ_INT(gen_epoch_passes(1, 0), 1);
    /* a file from before round_steps existed loads, as one pass per epoch */
    const char *old = gr_test_path("old.gguf");
    REQUIRE(rewrite_skip(sid, old, NULL, "genrec.gen.round_steps") == GR_OK);
    CHECK((ok = gr_model_load(old, NULL)) != NULL);
    if (ok) CHECK_EQ_INT(((const gen_model *)ok->impl)->round_steps, 0);
    gr_model_free(ok);
    expect_bad(gen, e_trie_item, "genrec.trie");
    expect_bad(gen, e_trie_token, "genrec.trie");
    expect_bad(gen, e_answer, "genrec.items.answer_ids");
    expect_bad(gen, e_answer_swap, "genrec.items.answer_ids");
    expect_bad(gen, e_user_item, "genrec.users.items");
    expect_bad(gen, e_user_off, "genrec.users.off");
    expect_bad(gen, e_titles, "genrec.items.title");
    expect_bad(gen, e_title_text, "genrec.items.answer_ids");
    expect_bad(gen, e_pop, "genrec.items.pop");
    expect_bad(sid, e_sid_code, "genrec.sid.codes");
    expect_bad(sid, e_sid_k, "genrec.sid");
    expect_bad(sid, e_trie_item, "genrec.trie");
    expect_bad(sid, e_answer, "genrec.items.answer_ids");
}

int main(void)
{
    GR_RUN(test_gen_round_trip);
    GR_RUN(test_gen_d3_round_trip);
    GR_RUN(test_gen_sid_round_trip);
    GR_RUN(test_other_models_refused);
    GR_RUN(test_corrupt_files);
    return gr_test_finish();
}
