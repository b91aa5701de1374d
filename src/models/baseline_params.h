/* Private helper for the classic baselines (pop, bprmf, bm25): reject
 * unknown "NAME.*" hyperparameter keys so that a typo is an error rather than
 * a silently ignored setting. */
#ifndef GENREC_BASELINE_PARAMS_H
#define GENREC_BASELINE_PARAMS_H
#include <string.h>

#include "genrec/common.h"

/* Check every "key=value" of p whose key starts with prefix (e.g. "bprmf.")
 * against the NULL-terminated list known. GR_OK, or GR_ERR with a message
 * naming the first unknown key and the accepted ones. p may be NULL. */
static inline int baseline_params_check(const gr_params *p, const char *prefix,
                                        const char *const *known)
{
    if (!p) return GR_OK;
    size_t pl = strlen(prefix);
    for (int i = 0; i < p->n; i++) {
        const char *kv = p->kv[i];
        if (!kv || strncmp(kv, prefix, pl) != 0) continue;
        const char *eq = strchr(kv, '=');
        size_t kl = eq ? (size_t)(eq - kv) : strlen(kv);
        int ok = 0;
        for (int j = 0; known[j] && !ok; j++)
            ok = strlen(known[j]) == kl && strncmp(known[j], kv, kl) == 0;
        if (!ok) {
            char list[512] = "";
            size_t used = 0;
            for (int j = 0; known[j] && used < sizeof list; j++) {
                int w = snprintf(list + used, sizeof list - used, "%s%s", j ? ", " : "", known[j]);
                if (w < 0) break;
                used += (size_t)w;
            }
            return gr_errorf("parameter '%.*s': unknown key for model '%.*s' (known: %s)",
                             (int)kl, kv, (int)(pl - 1), prefix, known[0] ? list : "none");
        }
    }
    return GR_OK;
}

#endif
