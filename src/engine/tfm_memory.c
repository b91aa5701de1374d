/* Activation memory of a transformer (genrec/memstat.h). */
#include "genrec/memstat.h"
#include "tfm_internal.h"

#include <malloc.h>
#include <stdio.h>
#include <string.h>

static size_t usable(const void *p) { return p ? malloc_usable_size((void *)p) : 0; }

size_t gr_tfm_activation_bytes(const gr_tfm *m)
{
    return usable(m->act_mem) + usable(m->att_mem) + usable(m->scratch) + usable(m->mask_mem) + usable(m->acts) +
           usable(m->pos) + usable(m->seq_off);
}

static size_t status_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    size_t kb = 0, n = strlen(field);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, field, n) && line[n] == ':') {
            unsigned long long v;
            if (sscanf(line + n + 1, "%llu", &v) == 1) kb = (size_t)v;
            break;
        }
    fclose(f);
    return kb * 1024;
}

size_t gr_mem_peak_rss(void) { return status_kb("VmHWM"); }
size_t gr_mem_rss(void) { return status_kb("VmRSS"); }
