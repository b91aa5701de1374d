/* The recommender model interface. Every model (Pop, BPR-MF, BM25, SASRec,
 * and later the generative models) implements it, and every model is scored
 * through the same evaluation path (genrec/eval.h).
 *
 * Life cycle: gr_model_create(name, params) -> fit(split, ctx) -> score(...)
 * -> gr_model_free(). A model must not read valid/test targets during fit
 * except through ctx->validate (early stopping on validation NDCG@10).
 */
#ifndef GENREC_MODEL_H
#define GENREC_MODEL_H
#include "genrec/split.h"

typedef struct gr_model gr_model;

/* What fit() may use besides the split's training data. */
typedef struct gr_fit_ctx {
    /* Evaluate the model as it is now on the validation queries; returns
     * NDCG@10 (>= 0) or a negative value on error. NULL when no validation. */
    double (*validate)(struct gr_fit_ctx *ctx, gr_model *m);
    void *eval_state;   /* private to the evaluator */
    uint64_t seed;
    int verbose;        /* print progress (epoch, loss, validation metric, time) */
} gr_fit_ctx;

typedef struct gr_model_ops {
    const char *name;
    /* Train on s (training sequences only). GR_OK or GR_ERR + message. */
    int (*fit)(gr_model *m, const gr_split *s, gr_fit_ctx *ctx);
    /* Score all items for n queries: scores is [n, n_items], row-major, higher
     * is better. Items a model cannot return get -INFINITY. */
    int (*score)(gr_model *m, const gr_query *q, int n, float *scores);
    void (*destroy)(gr_model *m);
} gr_model_ops;

struct gr_model {
    const gr_model_ops *ops;
    int32_t n_items;
    void *impl;             /* model-specific state */
    int max_k;              /* the model ranks only its top max_k items (a
                               generative model: its beams); 0 = full ranking.
                               The evaluator omits metrics at K > max_k. */
    int64_t n_returned;     /* generative models: items returned by score() so far */
    int64_t n_invalid;      /* ... of which not real catalogue items (invalid_rate) */
};

/* Create a model by name ("pop", "bprmf", "bm25", "sasrec", ...) with
 * hyperparameters from params (keys "NAME.key=value"; unknown keys for this
 * model are an error). NULL + message if the name is unknown. */
gr_model *gr_model_create(const char *name, const gr_params *params);
void gr_model_free(gr_model *m);

/* List of registered model names, NULL-terminated. */
const char *const *gr_model_names(void);

/* Constructors, one per model (called by gr_model_create). */
gr_model *gr_pop_create(const gr_params *p);
gr_model *gr_bprmf_create(const gr_params *p);
gr_model *gr_bm25_create(const gr_params *p);
gr_model *gr_sasrec_create(const gr_params *p);
gr_model *gr_gen_create(const gr_params *p);
gr_model *gr_gen_sid_create(const gr_params *p);

/* ---- saved models (issue 4): one GGUF file per fitted generative model ------ */

/* What a saved model knows about its world besides the model itself: the
 * item table and every user's whole interaction sequence, for printing
 * recommendations and for recommending to a known user. All arrays are owned
 * by the catalogue (free it with gr_rec_catalog_free). */
typedef struct gr_rec_catalog {
    char model[16];         /* "gen" or "gen-sid" */
    char *dataset;          /* dataset name the model was trained on ("" if unknown) */
    char *protocol;         /* "loo", "ts", "c20" ("" if unknown) */
    int32_t n_items;
    char **item_key;        /* [n_items] original item ids */
    char **item_title;      /* [n_items] titles as the model was trained on them */
    char **item_sid;        /* [n_items] gen-sid: semantic ID "<a_12><b_3><c_7><d_0>"; else NULL */
    int32_t n_users;
    char **user_key;        /* [n_users] original user ids */
    int64_t *user_off;      /* [n_users+1] user u's items are user_item[user_off[u] .. user_off[u+1]) */
    int32_t *user_item;     /* all interactions of every user, oldest first (the dataset's order) */
} gr_rec_catalog;

/* Save a fitted "gen" or "gen-sid" model m, trained on split s, as ONE GGUF
 * file at path, written atomically (temp file + fsync + rename; a failure
 * leaves any previous file untouched). The file holds the language model
 * (F32, llama.cpp's "llama" keys and tensors, plus its tokenizer for "gen"),
 * genrec.model = "gen" | "gen-sid", every hyperparameter as genrec.gen.*,
 * the item table (genrec.items.*: keys from s->data, titles, popularity,
 * answer token ids in CSR form), the serialized trie (genrec.trie), for
 * gen-sid the semantic-ID codes (genrec.sid.*), and the users' keys and whole
 * interaction sequences from s->data (genrec.users.*). The CF assistant
 * (NAME.assist) is not saved. m and s are not modified. GR_ERR + message for
 * another model ("model X cannot be saved"), an unfitted model, a split that
 * does not match the model, or an I/O error naming path. */
int gr_model_save(gr_model *m, const gr_split *s, const char *path);

/* Load a model saved by gr_model_save: a fitted gen / gen-sid model that
 * scores exactly (bit for bit) as the saved one did, assistant off (the CF
 * assistant is not saved; NAME.assist reads as 1). Everything read is
 * validated (hyperparameter ranges, the language model's shapes against the
 * hyperparameters, string counts, UTF-8, ids in range, the trie via
 * gr_trie_deserialize, every answer walking the trie to its own leaf, the
 * title answers re-tokenized, semantic-ID codes), so a corrupt or hostile
 * file gives NULL + a message naming path and the field, never a crash.
 * When cat is not NULL it receives the file's catalogue (the caller frees it
 * with gr_rec_catalog_free; NULL on error). Free the model with
 * gr_model_free. */
gr_model *gr_model_load(const char *path, gr_rec_catalog **cat);

/* The same from a caller's buffer (which need only live during the call);
 * name is used in messages. */
gr_model *gr_model_load_memory(const void *data, size_t size, const char *name, gr_rec_catalog **cat);

/* Free a catalogue and everything it owns (NULL is fine). */
void gr_rec_catalog_free(gr_rec_catalog *c);

/* Dense id of the user with key `key`, or -1 (no error recorded). */
int32_t gr_rec_catalog_user(const gr_rec_catalog *c, const char *key);

/* Dense id of an item given its key, or else its exact title (the smallest
 * id when several items share that title), or -1 (no error recorded). */
int32_t gr_rec_catalog_item(const gr_rec_catalog *c, const char *key_or_title);

/* Set the beam width of a fitted or loaded gen / gen-sid model (1 .. 1024;
 * also its max_k). GR_ERR + message for another model or a bad width. */
int gr_model_set_beams(gr_model *m, int beams);

/* The top k items for one history hist[0..n_hist) (dense item ids, oldest
 * first) through the model's own score(): items[0..*n_out) best first (ties:
 * smaller id first) with their scores; items scored -INFINITY are never
 * returned, and with exclude_seen the history items are not either. A
 * generative model (gen, gen-sid) whose beams return fewer than k eligible
 * items is re-decoded with doubled beams (up to 1024) and then restored. items
 * and scores hold k entries (scores may be NULL). GR_ERR + message on a bad
 * id, k < 1, or a model error. */
int gr_model_recommend(gr_model *m, const int32_t *hist, int32_t n_hist, int k, int exclude_seen,
                       int32_t *items, float *scores, int *n_out);

#endif
