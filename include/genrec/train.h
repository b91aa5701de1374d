/* A generic training loop over one parameter slab: the language model now,
 * LoRA adapters and SASRec later. The model-specific part is a small table of
 * callbacks (gr_train_task): compute one micro-batch's loss and ACCUMULATE
 * its gradient into the gradient slab, compute a validation loss, and
 * save/restore the task's own state (data cursor, model description) in a
 * training checkpoint.
 *
 * One optimizer step (gr_trainer_step):
 *   zero the gradient slab; k = accum micro-batches (each adds the gradient
 *   of its mean loss); scale the gradients by 1/k; global L2 norm (double,
 *   summed in a fixed order) and clipping to cfg.clip; learning rate from the
 *   schedule (linear warmup over cfg.warmup steps to cfg.lr, then cosine decay
 *   to cfg.min_lr at cfg.steps); AdamW (gr_adamw_step) with the decay mask.
 *   The step's loss is the mean of the k micro-batch losses.
 *
 * Training checkpoints are GGUF files (written atomically) holding the
 * parameters, the AdamW moments and step count, the step, the trainer's RNG
 * state, the optimizer/schedule settings and whatever the task adds (its
 * data cursor). Resuming from one and training on gives exactly the losses
 * (bit for bit) of an uninterrupted run with the same thread count.
 *
 * Determinism: for a given thread count and task, everything here is
 * deterministic. A gr_trainer is not thread-safe.
 */
#ifndef GENREC_TRAIN_H
#define GENREC_TRAIN_H

#include <stdint.h>

#include "genrec/common.h"
#include "genrec/gguf.h"
#include "genrec/rng.h"

typedef struct gr_train_config {
    int64_t steps;          /* total optimizer steps (> 0) */
    int accum;              /* micro-batches per step (>= 1) */
    float lr, min_lr;       /* peak and final learning rates (0 <= min_lr <= lr) */
    int64_t warmup;         /* linear warmup steps (>= 0) */
    float beta1, beta2, eps, weight_decay;
    float clip;             /* clip the global gradient norm to this; 0 = no clipping */
    uint64_t seed;          /* the trainer's RNG (handed to the task: dropout, sampling) */
    int64_t log_every;      /* progress on stderr: every N steps when stderr is not a TTY
                               (a \r-updated line on a TTY); 0 = silent */
    int64_t valid_every;    /* validation every N steps and after the last; 0 = never */
    int64_t ckpt_every;     /* with ckpt_path: checkpoint every N steps and after the last */
    const char *ckpt_path;  /* NULL = no checkpoints */
} gr_train_config;

/* Defaults: steps 1000, accum 1, lr 1e-3, min_lr 1e-4, warmup 0, betas 0.9 /
 * 0.95, eps 1e-8, weight_decay 0.1, clip 1.0, seed 1337, log_every 10,
 * valid_every 0, ckpt_every 0, ckpt_path NULL. */
void gr_train_config_default(gr_train_config *c);

/* Learning rate for 0-based step s under cfg's schedule: lr * (s+1)/warmup
 * during warmup, then min_lr + (lr - min_lr) * (1 + cos(pi * p)) / 2 with p =
 * (s - warmup) / (steps - warmup) clamped to [0, 1]. */
float gr_train_lr_at(const gr_train_config *cfg, int64_t step);

/* The model-specific part. Only micro_batch is required. */
typedef struct gr_train_task {
    void *ctx;
    /* Forward + backward on the next training micro-batch: ADD the gradient
     * of its mean loss into the gradient slab, set *loss (its mean loss) and
     * *n_tokens (tokens processed, for tokens/s). rng is the trainer's. */
    int (*micro_batch)(void *ctx, gr_rng *rng, float *loss, int64_t *n_tokens);
    /* Mean validation loss (must not touch the gradient slab's meaning for
     * the next step: the trainer zeroes it at each step's start anyway). */
    int (*valid_loss)(void *ctx, double *loss);
    /* Add the task's state (data cursor, model description) to a training
     * checkpoint being written; keys should be task-specific (not
     * "genrec.train.*"). */
    int (*save_state)(void *ctx, gr_gguf_builder *b);
    /* Restore it from a checkpoint being loaded (path for messages). */
    int (*load_state)(void *ctx, const gr_gguf *g, const char *path);
    /* Called after every step and every validation (may be NULL). */
    void (*on_step)(void *ctx, int64_t step, float loss, float lr, float grad_norm);
    void (*on_valid)(void *ctx, int64_t step, double loss);
} gr_train_task;

typedef struct gr_trainer gr_trainer;

/* A trainer over params/grads[0..n) (borrowed: they must outlive it) with
 * AdamW moments of its own. decay_mask (n bytes; 1 = decay) is copied; NULL =
 * decay everything. The task table is copied. NULL + error naming the bad
 * config field or on OOM. */
gr_trainer *gr_trainer_new(const gr_train_config *cfg, float *params, float *grads, int64_t n,
                           const uint8_t *decay_mask, const gr_train_task *task);
void gr_trainer_free(gr_trainer *t);

/* One optimizer step (see the top). *loss (may be NULL) = the step's mean
 * loss. GR_ERR + error when the task fails or the loss is not finite (the
 * parameters are then not updated). */
int gr_trainer_step(gr_trainer *t, float *loss);

/* Steps until cfg.steps, with progress, validation and checkpoints as
 * configured. GR_ERR + error on the first failure. */
int gr_trainer_run(gr_trainer *t);
/* The same, but stop after step `stop` (clamped to cfg.steps), validating
 * and checkpointing there as at the end: a long run cut into slices
 * (resumed with gr_trainer_load) follows the same schedule as one run. */
int gr_trainer_run_until(gr_trainer *t, int64_t stop);

/* The task's validation loss (GR_ERR when it has none). */
int gr_trainer_validate(gr_trainer *t, double *loss);

/* Write / read a training checkpoint (see the top). Loading checks that
 * the parameter count matches, and restores the parameters (into the
 * borrowed slab), moments, step, RNG and the task's state; the schedule and
 * optimizer settings in the file replace cfg's except cfg.steps,
 * log/valid/ckpt settings, which stay as given. GR_ERR + error naming path
 * and the field on a malformed or mismatched file (nothing is changed
 * then, except possibly the task's state). */
int gr_trainer_save(gr_trainer *t, const char *path);
int gr_trainer_load(gr_trainer *t, const char *path);
/* The same from an open file (name for messages). */
int gr_trainer_load_gguf(gr_trainer *t, const gr_gguf *g, const char *name);

/* Read the optimizer/schedule settings (and steps) stored in a training
 * checkpoint into *cfg, leaving other fields alone. GR_ERR + error. */
int gr_train_config_from_gguf(const gr_gguf *g, const char *name, gr_train_config *cfg);

/* Steps done so far, the configuration in use, the last validation loss
 * (NAN before any), the last step's loss and gradient norm. */
int64_t gr_trainer_step_count(const gr_trainer *t);
const gr_train_config *gr_trainer_config(const gr_trainer *t);
double gr_trainer_last_valid(const gr_trainer *t);
float gr_trainer_last_loss(const gr_trainer *t);
float gr_trainer_last_grad_norm(const gr_trainer *t);

#endif
