/* Internal: one OpenMP parallel region per pass (the engine's "teams").
 *
 * A pass (gr_tfm_forward, gr_tfm_backward, gr_tfm_forward_cached,
 * gr_lora_merge) opens ONE `omp parallel` region and every thread of that
 * team calls every op of the pass, in the same order, with the same
 * arguments. Inside an op the threads share the work with orphaned
 * worksharing (`omp for`, `omp single`); the implicit barrier at the end of
 * the op's last construct orders it before the next op. A pass thus pays one
 * fork/join plus one barrier per op instead of one fork/join per op.
 *
 * The same ops are also called from serial code and from inside other
 * code's parallel regions (SASRec, the LM, xent, tests), so each op body is
 * written once, as a function made only of orphaned worksharing (safe to run
 * by a whole team), and the public function runs it with GR_PAR_RUN(nt,
 * body(...)):
 *   - in a team (gr_par_in_team()): all threads of the team are calling the
 *     op together, so the body runs right here and its worksharing binds to
 *     the team; nt is ignored (the team's size was chosen by the pass);
 *   - otherwise the op is its own team: GR_PAR_RUN opens a region of nt
 *     threads (1 when called inside an active parallel region, as before) and
 *     runs the body there, or runs it directly as a team of one when nt is 1
 *     and the innermost team has one thread (no region at all).
 * A pass uses GR_PAR_PASS, the same with the switch of
 * gr_ops_set_pass_region(): off, the pass body runs on the calling thread
 * and every op opens its own region (the previous behaviour; same results).
 *
 * "In a team" is a thread-local mark, omp_get_level() + 1 of the region the
 * engine opened, set on every thread when the team starts running a body and
 * restored when it ends. An unrelated region (any other nesting level), or a
 * thread that is not in the team, does not match, so ops called from other
 * code's parallel loops still run serially on the calling thread.
 *
 * Rules for a body run by a team:
 *   - every thread makes the same sequence of collective calls; a value that
 *     must be the same on every thread but is not a pure function of the
 *     arguments (an rng draw, a malloc'ed buffer) is made in `omp single`
 *     and broadcast with copyprivate;
 *   - inside a worksharing loop's body only serial code may run
 *     (gr_gemm_serial, gr_gemm_tri_serial, vmath): a collective op there
 *     would nest worksharing in the same team (non-conforming, deadlocks);
 *   - per-thread scratch is indexed by omp_get_thread_num(), which is below
 *     the team size <= gr_threads_get(); the GEMM's packing buffers are per
 *     OS thread (pthread keys), so they do not depend on the team size;
 *   - determinism: a body's result must not depend on which thread runs
 *     which iteration. Rows and elementwise chunks may be handed out
 *     dynamically (a descheduled thread on a shared machine does not stall
 *     the others); reductions over rows use fixed parts summed in a fixed
 *     order (ops_norm.c, column_sums in ops.c), never `reduction` clauses
 *     or per-thread partials. So results do not depend on whether an op
 *     runs in a pass's team or its own region, and (with the own GEMM
 *     kernel) not even on the thread count.
 */
#ifndef GENREC_ENGINE_PAR_H
#define GENREC_ENGINE_PAR_H

#include "genrec/ops.h"

#include <omp.h>
#include <stdint.h>

/* omp_get_level() + 1 of the engine team this thread runs in, 0: none. */
extern _Thread_local int gr_par_team_level;

/* 1 when the calling thread runs a body together with its whole team. */
static inline int gr_par_in_team(void) { return gr_par_team_level == omp_get_level() + 1; }

/* Mark the calling thread as running in the innermost team; returns the
 * previous mark for gr_par_leave. */
static inline int gr_par_enter(void)
{
    int prev = gr_par_team_level;
    gr_par_team_level = omp_get_level() + 1;
    return prev;
}

static inline void gr_par_leave(int prev) { gr_par_team_level = prev; }

/* Run the statement (a call to an op body) by a team: the current one, else
 * a new region of nt threads (see above). */
#define GR_PAR_RUN(nt, ...)                                                     \
    do {                                                                         \
        if (gr_par_in_team()) {                                                  \
            __VA_ARGS__;                                                         \
        } else {                                                                 \
            int gr_par_nt_ = omp_in_parallel() ? 1 : (nt);                       \
            if (gr_par_nt_ <= 1 && omp_get_num_threads() == 1) {                 \
                int gr_par_prev_ = gr_par_enter();                               \
                __VA_ARGS__;                                                     \
                gr_par_leave(gr_par_prev_);                                      \
            } else {                                                             \
                _Pragma("omp parallel num_threads(gr_par_nt_)")                  \
                {                                                                \
                    int gr_par_prev_ = gr_par_enter();                           \
                    __VA_ARGS__;                                                 \
                    gr_par_leave(gr_par_prev_);                                  \
                }                                                                \
            }                                                                    \
        }                                                                        \
    } while (0)

/* A whole pass: GR_PAR_RUN when pass regions are on (the default), else the
 * statement on the calling thread (each op then opens its own region). */
#define GR_PAR_PASS(nt, ...)                                                    \
    do {                                                                         \
        if (gr_ops_pass_region()) GR_PAR_RUN(nt, __VA_ARGS__);                   \
        else { __VA_ARGS__; }                                                    \
    } while (0)

/* Threads for a pass of `work` elementary operations spread over `n_ops`
 * collective ops: the pass pays about one barrier per op, so it runs on
 * several threads only when the average op is worth it (the threshold of
 * gr_ops_threads), and on 1 inside another parallel region. */
int gr_par_pass_threads(double work, int n_ops);

/* Collective helpers (callable by a team or alone, like the ops):
 * dst (n) = src (n), p (n) = 0. */
void gr_par_copy(float *dst, const float *src, int64_t n);
void gr_par_zero(float *p, int64_t n);

#endif
