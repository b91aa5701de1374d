/* The generative recommenders' state ("gen": items as titles, "gen-sid":
 * items as semantic IDs), shared by gen.c (create, fit, score) and gen_io.c
 * (one GGUF file per fitted model). Private to src/models. */
#ifndef GENREC_GEN_INTERNAL_H
#define GENREC_GEN_INTERNAL_H
#include <stdint.h>
#include <string.h>

#include "genrec/itemtext.h"
#include "genrec/lm.h"
#include "genrec/model.h"
#include "genrec/rng.h"
#include "genrec/semid.h"
#include "genrec/trie.h"

/* How an item is written as tokens. */
typedef enum gen_items {
    GEN_ITEMS_TITLE = 0, /* its title, byte-level BPE trained on the catalogue, then EOS */
    GEN_ITEMS_SID = 1,   /* its semantic ID: L codes + a collision code, one token each */
} gen_items;

/* How scores are produced from the model. */
typedef enum gen_decode {
    GEN_DECODE_BEAM = 0,   /* trie-constrained beam search (D3), optional CF assistant */
    GEN_DECODE_GROUND = 1, /* free generation grounded to items by embeddings (BIGRec) */
} gen_decode;

typedef struct gen_model {
    /* hyperparameters (gen_params_*; stored in the model file) */
    gen_items items;
    gen_decode decode;
    int dim, layers, heads, ff, ctx, vocab, batch, epochs, round_steps, patience, beams, max_hist;
    float dropout, lr, wd, lambda;
    int sid_levels, sid_k, sid_dim;   /* semantic IDs: levels L, codes per level (0 = rule), embedding dim */
    int sid_emb;                      /* semantic IDs from 0 text, 1 collaborative, 2 both embeddings */
    float assist;                     /* g of the CF assistant: 1 = off, < 0 = chosen on validation */
    float ground_gamma;               /* popularity exponent of grounding, < 0 = chosen on validation */
    int ground_pool;                  /* GR_POOL_LAST or GR_POOL_MEAN (genrec/lm.h) */
    int ground_beams;                 /* grounding: 1 = greedy generation, > 1 = beam search */
    int64_t seed_offset;
    /* pretrained model (see gen.c): "gen" fine-tunes it (NULL: from scratch); "gen-sid" embeds the item
     * texts with it for the semantic IDs (NULL: TF-IDF) */
    char *base;                       /* gen.base / gen-sid.text_model: GGUF, llama2.c or safetensors (owned) */
    char *base_tok;                   /* gen.base_tokenizer / gen-sid.text_tokenizer, when not beside it (owned) */
    /* tmpl (below, fitted state) is chosen by NAME.template: compact (packed windows), d3, bigrec (SFT samples) */
    char *category;                   /* NAME.category: the templates' {cat} (owned; NULL = "items") */
    int kv_heads;                     /* the model's KV heads (0 = heads); set from the base */
    int lora_rank;                    /* NAME.lora: LoRA rank, 0 = full fine-tuning */
    float lora_alpha;                 /* NAME.lora_alpha (0 = 2 x rank) */
    unsigned lora_targets;            /* NAME.lora_targets: GR_LORA_* bits */
    int sft_samples;                  /* NAME.sft_samples: train on this many samples drawn by seed (0 = all) */
    int with_genres, with_brand, strip_year; /* NAME.*: how a title-mode item is written (gr_itemtext_opts) */
    int max_hist_set;                 /* max_hist was given (a loaded model keeps its own otherwise) */
    char *load;                       /* NAME.load: a saved model to start from instead of training (owned) */
    char name[16];                    /* "gen" or "gen-sid" */
    char prefix[24];                  /* name + ".": its parameter keys */

    /* fitted state */
    int fitted;
    int32_t n_items;
    gr_itemtext *it;     /* item titles (printing; the title mode's answers) */
    gr_prompt_tmpl tmpl;
    gr_semid *sid;       /* GEN_ITEMS_SID only */
    gr_lm *lm;
    gr_trie *tr;
    int32_t **ans;       /* [n_items] answer ids as the model writes them */
    int64_t *ans_len;
    int32_t bos;         /* first token of every prompt */
    int32_t eos;         /* end-of-answer token (title mode), -1 for semantic IDs */
    double *pop;         /* [n_items] training interaction counts */
    gr_model *cf;        /* the assistant's classic model (created with g, not saved), or NULL */

    /* training state */
    /* grounding state (gen.c): the grounder of the current weights, and the
     * validation queries' distances while gamma is being chosen */
    struct gr_grounder *gnd;
    int64_t version, gnd_version;     /* bumped whenever the weights change */
    int training;                     /* 1 while fit trains: score = beam search, assistant off */
    struct gen_gcache *gcache;
    int n_gcache, gcache_on;

    int64_t n_win, *woff;
    int32_t *wtok, *wtgt;
    int64_t *order, cursor;
    int32_t *btok, *btgt, *boff;
    int64_t bcap;
    gr_rng rng;
    float *best;
    int epochs_run, best_epoch;
} gen_model;

/* Free the fitted and training state of g (not g itself). */
void gen_state_free(gen_model *g);

/* Passes over the windows per epoch: 1, or the fewest whole passes that make
 * round_steps optimizer steps when a pass (steps_per_pass >= 1) is shorter. */
static inline int64_t gen_epoch_passes(int64_t steps_per_pass, int64_t round_steps)
{
    return round_steps > steps_per_pass ? (round_steps + steps_per_pass - 1) / steps_per_pass : 1;
}

/* gen_items.c: build the vocabulary, language model, answers and trie for
 * the split's items (it, tmpl, sid, lm, ans, ans_len, bos, eos, pop, tr).
 * GR_OK or GR_ERR + error; free partial state with gen_state_free. */
int gen_items_build(gen_model *g, const gr_split *sp);

/* 1 when prompts are rendered by an instruction template (SFT samples, one
 * per training prefix) instead of the compact packed form (BOS + answers). */
static inline int gen_templated(const gen_model *g)
{
    return g->tmpl.name && strcmp(g->tmpl.name, "compact") != 0;
}

/* gen.c: the prompt of query q: compact, BOS + the answers of its last
 * history items that fit beside the longest answer; templated, the template's
 * prompt of the last max_hist items, dropping the oldest until it fits. A new
 * array (gr_free) of *n ids, or NULL + error. */
int32_t *gen_make_prompt(const gen_model *g, const gr_query *q, int64_t *n);

/* gen_ground.c: grounded scoring (gen.ground = 1), the choice of gamma on
 * validation after training (ground_gamma < 0), and freeing its state. */
int gen_ground_score(gr_model *m, const gr_query *q, int n, float *scores);
int gen_ground_choose_gamma(gr_model *m, gen_model *g, gr_fit_ctx *ctx);
void gen_ground_free(gen_model *g);

/* gen_io.c (gr_model_save / gr_model_load in genrec/model.h) writes every
 * hyperparameter listed in its hp_fields table and the fitted state that
 * score() reads (lm, tr, ans, ans_len, it, sid, pop, bos, eos, tmpl); a new
 * field that score() needs must be saved and validated there too. A loaded
 * model has cf = NULL and assist = 1. */

#endif
