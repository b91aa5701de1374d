/* Unicode class lookup (tables in unicode_tables.c). */
#include "tok/unicode.h"

int gr_uc_class(uint32_t cp)
{
    if (cp < 0x80) {
        if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) return GR_UC_LETTER;
        if (cp >= '0' && cp <= '9') return GR_UC_NUMBER;
        if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D)) return GR_UC_SPACE;
        return 0;
    }
    int lo = 0, hi = gr_uc_n_ranges - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < gr_uc_ranges[mid].lo) hi = mid - 1;
        else if (cp > gr_uc_ranges[mid].hi) lo = mid + 1;
        else return gr_uc_ranges[mid].cls;
    }
    return 0;
}
