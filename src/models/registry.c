/* The model registry: maps model names to their constructors, and checks the
 * shape of "NAME.key=value" hyperparameters before a model sees them. */
#include <stdio.h>
#include <string.h>

#include "genrec/model.h"

typedef struct model_entry {
    const char *name;
    gr_model *(*create)(const gr_params *p);
} model_entry;

static const model_entry models[] = {
    {"pop", gr_pop_create},
    {"bprmf", gr_bprmf_create},
    {"bm25", gr_bm25_create},
    {"sasrec", gr_sasrec_create},
    {"gen", gr_gen_create},
    {"gen-sid", gr_gen_sid_create},
};
#define N_MODELS ((int)(sizeof models / sizeof models[0]))

static const char *const model_names[N_MODELS + 1] = {"pop", "bprmf", "bm25", "sasrec", "gen", "gen-sid", NULL};

const char *const *gr_model_names(void)
{
    return model_names;
}

/* "pop, bprmf, ..." for error messages. */
static const char *names_list(void)
{
    static _Thread_local char buf[256];
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < N_MODELS && used < sizeof buf; i++)
        used += (size_t)snprintf(buf + used, sizeof buf - used, "%s%s", i ? ", " : "", models[i].name);
    return buf;
}

static const model_entry *find_model(const char *name, size_t len)
{
    for (int i = 0; i < N_MODELS; i++)
        if (strlen(models[i].name) == len && !strncmp(models[i].name, name, len)) return &models[i];
    return NULL;
}

/* Every entry must be "NAME.key=value" with a registered NAME and a
 * non-empty key; the model itself rejects keys it does not know. */
static int check_params(const gr_params *p)
{
    if (!p) return GR_OK;
    if (p->n < 0 || (p->n > 0 && !p->kv)) return gr_errorf("parameters: bad list (n = %d)", p->n);
    for (int i = 0; i < p->n; i++) {
        const char *kv = p->kv[i];
        if (!kv) return gr_errorf("parameter %d is NULL", i);
        const char *eq = strchr(kv, '=');
        const char *dot = strchr(kv, '.');
        if (!eq || !dot || dot > eq || dot == kv || dot + 1 == eq)
            return gr_errorf("parameter '%s': expected MODEL.key=value (e.g. sasrec.dim=64)", kv);
        if (!find_model(kv, (size_t)(dot - kv)))
            return gr_errorf("parameter '%s': unknown model '%.*s' (models: %s)", kv,
                             (int)(dot - kv), kv, names_list());
    }
    return GR_OK;
}

gr_model *gr_model_create(const char *name, const gr_params *params)
{
    if (!name) { gr_errorf("model name is NULL"); return NULL; }
    const model_entry *e = find_model(name, strlen(name));
    if (!e) {
        gr_errorf("unknown model '%s' (models: %s)", name, names_list());
        return NULL;
    }
    if (check_params(params) != GR_OK) return NULL;
    gr_model *m = e->create(params);
    if (!m) {
        gr_error_prefix("model %s: ", name);
        return NULL;
    }
    return m;
}

void gr_model_free(gr_model *m)
{
    if (!m) return;
    if (m->ops && m->ops->destroy) m->ops->destroy(m);
    gr_free(m);
}
