/* Semantic IDs: items as short code sequences (TIGER-style), built by
 * residual k-means (RQ-KMeans) over item content embeddings.
 *
 * Level 1 clusters the embeddings into K codes (k-means++ initialisation with
 * a seeded gr_rng, then Lloyd iterations); level l clusters the residuals
 * left by levels 1..l-1. After L levels every item has L codes; items whose
 * L codes collide get a final code 0, 1, 2, ... (in item-id order) so every
 * item's ID is unique. An item is written as tokens "<a_12><b_200><c_7><d_0>"
 * (level letters a, b, c, ...; the last one is the collision code).
 *
 * Codebook size rule (gr_semid_default_k): K = the smallest power of two
 * >= 4 * cbrt(n_items), clamped to [2, 256]. With the default L = 3 that
 * gives K^3 >= 64 n_items possible IDs: room enough that collisions stay
 * rare although the residual levels share one codebook, while every code is
 * still used (ml-100k: 1,682 items -> K = 64; synth 1,500 -> 64; 10k items ->
 * 128; >= 262,144 items -> 256). With 2 * cbrt(n) the synthetic world had
 * 25% of its items in collisions against 8% with this rule.
 *
 * Embeddings: any caller matrix (n_items x dim, row-major), or, when there is
 * no language model, gr_semid_tfidf_embed(): TF-IDF of the item texts' words
 * reduced to dim dimensions by a randomized truncated SVD (LSA), rows
 * L2-normalised.
 */
#ifndef GENREC_SEMID_H
#define GENREC_SEMID_H
#include <stdint.h>
#include <stdio.h>

#include "genrec/itemtext.h"
#include "genrec/rng.h"

#define GR_SEMID_MAX_LEVELS 8

typedef struct gr_semid_opts {
    int32_t n_levels;    /* L, 1 .. GR_SEMID_MAX_LEVELS; default 3 */
    int32_t K;           /* codes per level, 2 .. 65536; 0 = gr_semid_default_k(n_items) */
    int32_t iters;       /* Lloyd iterations per level (stops early when nothing moves); default 30 */
    int32_t init_sample; /* k-means++ runs on at most this many random items; default 20000 */
    uint64_t seed;       /* default 42 */
} gr_semid_opts;

/* The defaults above. */
gr_semid_opts gr_semid_opts_default(void);

/* The codebook-size rule above for a catalogue of n_items. */
int32_t gr_semid_default_k(int64_t n_items);

typedef struct gr_semid {
    int32_t n_items, n_levels, K, dim;
    int32_t *codes;       /* [n_items * (n_levels + 1)]: item i's L codes, then its collision code */
    float *codebooks;     /* [n_levels * K * dim] level l's centroid k at ((l * K) + k) * dim */
    int32_t n_dup_codes;  /* number of collision codes = max_group */
    /* report */
    double usage[GR_SEMID_MAX_LEVELS];      /* fraction of the K codes that some item uses, per level */
    double distortion[GR_SEMID_MAX_LEVELS]; /* mean squared norm of the residual after each level */
    double distortion0;   /* mean squared norm of the embeddings (before level 1) */
    double collision_rate; /* share of items whose L codes equal another item's */
    int32_t max_group;    /* largest number of items sharing the same L codes */
    int64_t n_ids;        /* distinct L-code prefixes in use */
} gr_semid;

/* k-means on x (n x dim, row-major): k-means++ initialisation on at most
 * init_sample random rows (0 = all), then up to iters Lloyd iterations (stop
 * when no assignment changes). An empty cluster takes the point farthest
 * from its centroid. Writes centroids (K x dim), assign (n) and, if not NULL,
 * *distortion = mean squared distance to the assigned centroid. Distances
 * use gr_gemm; deterministic for a given rng state and thread count. With
 * fewer distinct points than K, the extra centroids repeat points and stay
 * unused. GR_ERR + error on bad sizes (n < 1, K < 1, dim < 1) or OOM. */
int gr_kmeans(const float *x, int64_t n, int32_t dim, int32_t K, int32_t iters, int32_t init_sample,
              gr_rng *rng, float *centroids, int32_t *assign, double *distortion);

/* RQ-KMeans semantic IDs for n items with embeddings emb (n x dim) under o
 * (NULL = defaults). Returns a new gr_semid (free with gr_semid_free) with
 * codes and the report filled in, or NULL + error. */
gr_semid *gr_semid_build(const float *emb, int64_t n, int32_t dim, const gr_semid_opts *o);

/* Free a gr_semid. NULL is fine. */
void gr_semid_free(gr_semid *s);

/* TF-IDF + truncated SVD item embeddings. Words are maximal runs of ASCII
 * letters/digits and non-ASCII bytes, lowercased, of at least 2 bytes; words
 * in fewer than 2 items are dropped; weight (1 + log tf) * (log((1 + n) /
 * (1 + df)) + 1), rows L2-normalised. A randomized SVD (Gaussian sketch of
 * dim + 10 columns, 4 power iterations with re-orthonormalisation, seeded)
 * keeps the top min(dim, rank) directions (*out_dim; rank <= min(vocabulary,
 * n), numerically zero directions dropped); an item's embedding is
 * its row of U * S, L2-normalised (all zero for an item without a kept
 * word). Returns a new n x *out_dim matrix (gr_free) or NULL + error (no
 * items, no word shared by two items, OOM). */
float *gr_semid_tfidf_embed(const gr_itemtext *it, int32_t dim, uint64_t seed, int32_t *out_dim);

/* Collaborative item embeddings: the truncated SVD (as above) of the item x
 * user matrix of n_users interaction lists (user u's items are
 * items[off[u] .. off[u+1]); an interaction weighs 1/sqrt(the user's count)),
 * rows L2-normalised; items nobody interacted with get all-zero rows.
 * Returns a new n_items x *out_dim matrix (gr_free) or NULL + error (an item
 * id out of range, no interactions, OOM). */
float *gr_semid_cf_embed(const int64_t *off, const int32_t *items, int32_t n_users, int32_t n_items, int32_t dim,
                         uint64_t seed, int32_t *out_dim);

/* Write item's semantic ID "<a_12><b_200><c_7><d_0>" into buf (cap bytes,
 * NUL-terminated). Returns its length, or -1 + error for a bad item or a
 * buffer that is too small (16 bytes per level are always enough). */
int gr_semid_render(const gr_semid *s, int32_t item, char *buf, size_t cap);

/* Every item's semantic ID as a gr_itemtext, for the prompt templates of
 * itemtext.h. NULL + error on OOM. */
gr_itemtext *gr_semid_itemtext(const gr_semid *s);

/* Number of new tokens: n_levels * K + n_dup_codes. */
int32_t gr_semid_n_tokens(const gr_semid *s);

/* All new token strings to add to a vocabulary, in this order: "<a_0>" ..
 * "<a_K-1>", "<b_0>" .. , then the collision codes "<d_0>" .. (for L = 3).
 * Token j of this list has id base + j once appended to a vocabulary at
 * base. Returns a new array of *n strings (free with gr_semid_tokens_free)
 * or NULL + error. */
char **gr_semid_tokens(const gr_semid *s, int32_t *n);
void gr_semid_tokens_free(char **tokens, int32_t n);

/* The L + 1 token ids of item's semantic ID when the list of
 * gr_semid_tokens starts at id base: out[l] = base + l * K + code_l,
 * out[L] = base + L * K + collision code. Returns L + 1, or -1 + error for a
 * bad item. */
int gr_semid_item_tokens(const gr_semid *s, int32_t item, int32_t base, int32_t *out);

/* Print the report: levels, K, codebook usage and distortion per level,
 * collision rate, largest collision group. */
void gr_semid_print_report(const gr_semid *s, FILE *f);

#endif
