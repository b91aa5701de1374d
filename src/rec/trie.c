/* Token trie over item sequences (see include/genrec/trie.h). */
#include "genrec/trie.h"

#include <string.h>

#include "rec/rec_internal.h"

#define TRIE_MAGIC 0x47525452
#define TRIE_VERSION 1
#define TRIE_HEADER 6

void gr_trie_free(gr_trie *tr)
{
    if (!tr) return;
    gr_free(tr->child_off);
    gr_free(tr->child_tok);
    gr_free(tr->child_node);
    gr_free(tr->item_lo);
    gr_free(tr->item_hi);
    gr_free(tr->order);
    gr_free(tr->item_leaf);
    gr_free(tr);
}

/* Allocate a trie's arrays for n_nodes nodes and n_items items. */
static gr_trie *trie_alloc(int32_t n_nodes, int32_t n_items)
{
    gr_trie *tr = gr_calloc(1, sizeof *tr);
    if (!tr) return NULL;
    size_t nn = (size_t)n_nodes, ne = n_nodes > 1 ? (size_t)n_nodes - 1 : 1, ni = n_items > 0 ? (size_t)n_items : 1;
    tr->n_nodes = n_nodes;
    tr->n_items = n_items;
    tr->child_off = gr_alloc(nn + 1, sizeof(int32_t));
    tr->child_tok = gr_alloc(ne, sizeof(int32_t));
    tr->child_node = gr_alloc(ne, sizeof(int32_t));
    tr->item_lo = gr_alloc(nn, sizeof(int32_t));
    tr->item_hi = gr_alloc(nn, sizeof(int32_t));
    tr->order = gr_alloc(ni, sizeof(int32_t));
    tr->item_leaf = gr_alloc(ni, sizeof(int32_t));
    if (!tr->child_off || !tr->child_tok || !tr->child_node || !tr->item_lo || !tr->item_hi || !tr->order ||
        !tr->item_leaf) {
        gr_trie_free(tr);
        return NULL;
    }
    return tr;
}

typedef struct sort_ctx {
    const int64_t *off;
    const int32_t *ids;
    const double *pop;
} sort_ctx;

/* Lexicographic order of sequences; equal sequences: higher pop, then smaller id. */
static int seq_less(const sort_ctx *c, int32_t a, int32_t b)
{
    int64_t la = c->off[a + 1] - c->off[a], lb = c->off[b + 1] - c->off[b];
    const int32_t *x = c->ids + c->off[a], *y = c->ids + c->off[b];
    int64_t m = la < lb ? la : lb;
    for (int64_t k = 0; k < m; k++)
        if (x[k] != y[k]) return x[k] < y[k];
    if (la != lb) return la < lb;
    if (c->pop && c->pop[a] != c->pop[b]) return c->pop[a] > c->pop[b];
    return a < b;
}

/* Stable bottom-up merge sort of a[0..n) with tmp scratch. */
static void merge_sort(const sort_ctx *c, int32_t *a, int32_t *tmp, int32_t n)
{
    for (int64_t w = 1; w < n; w *= 2) {
        for (int64_t lo = 0; lo < n; lo += 2 * w) {
            int64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            int64_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) tmp[k++] = seq_less(c, a[j], a[i]) ? a[j++] : a[i++];
            while (i < mid) tmp[k++] = a[i++];
            while (j < hi) tmp[k++] = a[j++];
        }
        memcpy(a, tmp, (size_t)n * sizeof *a);
    }
}

gr_trie *gr_trie_build(const int64_t *off, const int32_t *ids, int32_t n_items, const double *pop)
{
    if (n_items < 0 || !off || (n_items > 0 && !ids)) {
        gr_errorf("trie: bad input (n_items = %d)", (int)n_items);
        return NULL;
    }
    int64_t total = 0;
    for (int32_t i = 0; i < n_items; i++) {
        int64_t len = off[i + 1] - off[i];
        if (len <= 0) {
            gr_errorf("trie: item %d has an empty token sequence", (int)i);
            return NULL;
        }
        for (int64_t k = off[i]; k < off[i + 1]; k++)
            if (ids[k] < 0) {
                gr_errorf("trie: item %d: negative token id %d", (int)i, (int)ids[k]);
                return NULL;
            }
        total += len;
    }
    if (total >= INT32_MAX) {
        gr_errorf("trie: %lld tokens in all: more than INT32_MAX nodes possible", (long long)total);
        return NULL;
    }
    int32_t *sorted = gr_alloc(n_items > 0 ? (size_t)n_items : 1, sizeof *sorted);
    int32_t *tmp = gr_alloc(n_items > 0 ? (size_t)n_items : 1, sizeof *tmp);
    int32_t *e_par = gr_alloc((size_t)total + 1, sizeof *e_par);
    int32_t *e_tok = gr_alloc((size_t)total + 1, sizeof *e_tok);
    int32_t *lo = gr_alloc((size_t)total + 1, sizeof *lo);
    int32_t *hi = gr_alloc((size_t)total + 1, sizeof *hi);
    int32_t *path = NULL;
    gr_trie *tr = NULL;
    if (!sorted || !tmp || !e_par || !e_tok || !lo || !hi) goto done;
    for (int32_t i = 0; i < n_items; i++) sorted[i] = i;
    sort_ctx c = {off, ids, pop};
    merge_sort(&c, sorted, tmp, n_items);
    int64_t maxlen = 0;
    for (int32_t i = 0; i < n_items; i++)
        if (off[i + 1] - off[i] > maxlen) maxlen = off[i + 1] - off[i];
    path = gr_alloc((size_t)maxlen + 1, sizeof *path);
    if (!path) goto done;
    /* nodes in pre-order: a new node for every position past the common prefix */
    int32_t n_nodes = 1;
    path[0] = 0;
    lo[0] = 0;
    hi[0] = n_items;
    int64_t prev_len = 0;
    for (int32_t k = 0; k < n_items; k++) {
        int32_t it = sorted[k];
        const int32_t *s = ids + off[it];
        int64_t len = off[it + 1] - off[it], lcp = 0;
        if (k > 0) {
            const int32_t *p = ids + off[sorted[k - 1]];
            while (lcp < len && lcp < prev_len && p[lcp] == s[lcp]) lcp++;
            if (lcp == prev_len && len > prev_len) {
                gr_errorf("trie: the sequence of item %d is a strict prefix of the sequence of item %d "
                          "(sequences must end with an end marker that occurs nowhere else)", (int)sorted[k - 1], (int)it);
                goto done;
            }
        }
        for (int64_t d = k > 0 ? lcp : 0; d < len; d++) {
            int32_t u = n_nodes++;
            e_par[u] = path[d];
            e_tok[u] = s[d];
            lo[u] = k;
            path[d + 1] = u;
        }
        for (int64_t d = 0; d <= len; d++) hi[path[d]] = k + 1;
        prev_len = len;
    }
    tr = trie_alloc(n_nodes, n_items);
    if (!tr) goto done;
    tr->max_depth = (int32_t)maxlen;
    /* edges grouped by parent (counting sort, stable: tokens stay ascending) */
    memset(tr->child_off, 0, ((size_t)n_nodes + 1) * sizeof(int32_t));
    for (int32_t u = 1; u < n_nodes; u++) tr->child_off[e_par[u] + 1]++;
    for (int32_t u = 0; u < n_nodes; u++) tr->child_off[u + 1] += tr->child_off[u];
    int32_t *cur = gr_alloc((size_t)n_nodes, sizeof *cur);
    if (!cur) {
        gr_trie_free(tr);
        tr = NULL;
        goto done;
    }
    memcpy(cur, tr->child_off, (size_t)n_nodes * sizeof *cur);
    for (int32_t u = 1; u < n_nodes; u++) {
        int32_t e = cur[e_par[u]]++;
        tr->child_tok[e] = e_tok[u];
        tr->child_node[e] = u;
    }
    gr_free(cur);
    memcpy(tr->item_lo, lo, (size_t)n_nodes * sizeof *lo);
    memcpy(tr->item_hi, hi, (size_t)n_nodes * sizeof *hi);
    if (n_items > 0) memcpy(tr->order, sorted, (size_t)n_items * sizeof *sorted);
    /* each item's leaf: walk its sequence */
    for (int32_t i = 0; i < n_items; i++) tr->item_leaf[i] = gr_trie_walk(tr, ids + off[i], off[i + 1] - off[i]);
done:
    gr_free(sorted);
    gr_free(tmp);
    gr_free(e_par);
    gr_free(e_tok);
    gr_free(lo);
    gr_free(hi);
    gr_free(path);
    return tr;
}

gr_trie *gr_trie_build_answers(const gr_prompt_tmpl *t, const gr_tokenizer *tok, const gr_itemtext *it,
                               const double *pop)
{
    if (!t || !tok || !it) {
        gr_errorf("trie: missing template, tokenizer or item texts");
        return NULL;
    }
    int64_t *off = gr_alloc((size_t)it->n + 1, sizeof *off);
    gr_ivec v = {0};
    gr_trie *tr = NULL;
    if (!off) return NULL;
    off[0] = 0;
    for (int32_t i = 0; i < it->n; i++) {
        int64_t k;
        int32_t *ids = gr_answer_encode(t, tok, it, i, &k);
        int rc = ids ? gr_ivec_add(&v, ids, k) : GR_ERR;
        gr_free(ids);
        if (rc) goto done;
        off[i + 1] = v.n;
    }
    tr = gr_trie_build(off, v.p, it->n, pop);
done:
    gr_free(off);
    gr_free(v.p);
    return tr;
}

int32_t gr_trie_children(const gr_trie *tr, int32_t node, const int32_t **toks, const int32_t **nodes)
{
    if (!tr || node < 0 || node >= tr->n_nodes) return -1;
    int32_t a = tr->child_off[node];
    if (toks) *toks = tr->child_tok + a;
    if (nodes) *nodes = tr->child_node + a;
    return tr->child_off[node + 1] - a;
}

int32_t gr_trie_child(const gr_trie *tr, int32_t node, int32_t tok)
{
    if (!tr || node < 0 || node >= tr->n_nodes) return -1;
    int32_t a = tr->child_off[node], b = tr->child_off[node + 1];
    while (a < b) {
        int32_t m = a + (b - a) / 2;
        if (tr->child_tok[m] < tok) a = m + 1;
        else b = m;
    }
    return a < tr->child_off[node + 1] && tr->child_tok[a] == tok ? tr->child_node[a] : -1;
}

int32_t gr_trie_walk(const gr_trie *tr, const int32_t *ids, int64_t n)
{
    int32_t u = 0;
    for (int64_t k = 0; k < n && u >= 0; k++) u = gr_trie_child(tr, u, ids[k]);
    return u;
}

int gr_trie_is_leaf(const gr_trie *tr, int32_t node)
{
    if (!tr || node < 0 || node >= tr->n_nodes) return 0;
    return tr->child_off[node + 1] == tr->child_off[node] && tr->item_hi[node] > tr->item_lo[node] && node > 0;
}

int32_t gr_trie_items(const gr_trie *tr, int32_t node, const int32_t **items)
{
    if (!tr || node < 0 || node >= tr->n_nodes) return -1;
    if (items) *items = tr->order + tr->item_lo[node];
    return tr->item_hi[node] - tr->item_lo[node];
}

void gr_trie_node_sums(const gr_trie *tr, const float *item_val, double *node_sum)
{
    for (int32_t u = tr->n_nodes - 1; u >= 0; u--) {
        double s = 0;
        int32_t a = tr->child_off[u], b = tr->child_off[u + 1];
        if (a == b) {
            for (int32_t k = tr->item_lo[u]; k < tr->item_hi[u]; k++) s += item_val[tr->order[k]];
        } else {
            for (int32_t e = a; e < b; e++) s += node_sum[tr->child_node[e]];
        }
        node_sum[u] = s;
    }
}

int gr_trie_check_answers(const gr_trie *tr, const gr_prompt_tmpl *t, const gr_tokenizer *tok,
                          const gr_itemtext *it, int64_t *joint_differs)
{
    if (!tr || !t || !tok || !it) return gr_errorf("trie check: missing trie, template, tokenizer or item texts");
    if (it->n != tr->n_items)
        return gr_errorf("trie check: %d item texts but the trie has %d items", (int)it->n, (int)tr->n_items);
    int64_t differs = 0;
    char *prompt = joint_differs ? gr_prompt_text(t, it, NULL, 0) : NULL;
    if (joint_differs && !prompt) return GR_ERR;
    int rc = GR_OK;
    for (int32_t i = 0; i < it->n && rc == GR_OK; i++) {
        int64_t n;
        int32_t *ids = gr_answer_encode(t, tok, it, i, &n);
        if (!ids) {
            rc = GR_ERR;
            break;
        }
        int32_t u = gr_trie_walk(tr, ids, n);
        const int32_t *items = NULL;
        int32_t cnt = gr_trie_items(tr, u, &items), found = 0;
        for (int32_t k = 0; k < cnt && !found; k++) found = items[k] == i;
        if (u < 0) rc = gr_errorf("trie check: item %d (\"%s\"): its answer ids leave the trie", (int)i, it->text[i]);
        else if (!gr_trie_is_leaf(tr, u))
            rc = gr_errorf("trie check: item %d (\"%s\"): its answer ids end at an inner node", (int)i, it->text[i]);
        else if (!found)
            rc = gr_errorf("trie check: item %d (\"%s\"): the leaf its answer reaches does not list it", (int)i, it->text[i]);
        if (rc == GR_OK && prompt) {
            /* the same answer tokenized together with the prompt text */
            char *ans = gr_answer_text(t, it, i);
            gr_sbuf b = {0};
            int64_t nj = 0;
            int32_t *joint = NULL;
            if (!ans || gr_sbuf_adds(&b, prompt) || gr_sbuf_adds(&b, ans) ||
                !(joint = gr_tokenizer_encode(tok, b.p, b.n, 0, &nj))) {
                rc = GR_ERR;
            } else {
                /* does the joint encoding end with the separately encoded answer (EOS aside)? */
                int same = nj >= n - 1 && !memcmp(joint + nj - (n - 1), ids, (size_t)(n - 1) * sizeof *ids);
                differs += !same;
            }
            gr_free(joint);
            gr_free(b.p);
            gr_free(ans);
        }
        gr_free(ids);
    }
    gr_free(prompt);
    if (joint_differs) *joint_differs = differs;
    return rc;
}

int32_t *gr_trie_serialize(const gr_trie *tr, int64_t *n)
{
    int64_t nn = tr->n_nodes, ne = nn - 1, ni = tr->n_items;
    int64_t len = TRIE_HEADER + (nn + 1) + 2 * ne + 2 * nn + ni;
    int32_t *b = gr_alloc((size_t)len, sizeof *b);
    if (!b) return NULL;
    int32_t *p = b;
    *p++ = TRIE_MAGIC;
    *p++ = TRIE_VERSION;
    *p++ = tr->n_nodes;
    *p++ = tr->n_items;
    *p++ = tr->max_depth;
    *p++ = (int32_t)ne;
#define PUT(arr, cnt) do { memcpy(p, (arr), (size_t)(cnt) * sizeof *p); p += (cnt); } while (0)
    PUT(tr->child_off, nn + 1);
    PUT(tr->child_tok, ne);
    PUT(tr->child_node, ne);
    PUT(tr->item_lo, nn);
    PUT(tr->item_hi, nn);
    PUT(tr->order, ni);
#undef PUT
    *n = len;
    return b;
}

/* Validate the arrays of tr (filled from untrusted input) and derive item_leaf. */
static int trie_validate(gr_trie *tr)
{
    int32_t nn = tr->n_nodes, ni = tr->n_items, ne = nn - 1;
    if (tr->child_off[0] != 0 || tr->child_off[nn] != ne)
        return gr_errorf("trie: child_off must start at 0 and end at n_edges = %d", (int)ne);
    for (int32_t u = 0; u < nn; u++) {
        int32_t a = tr->child_off[u], b = tr->child_off[u + 1];
        if (b < a) return gr_errorf("trie: child_off[%d] decreases", (int)(u + 1));
        if (tr->item_lo[u] < 0 || tr->item_hi[u] > ni || tr->item_lo[u] > tr->item_hi[u])
            return gr_errorf("trie: node %d: bad item range [%d, %d)", (int)u, (int)tr->item_lo[u], (int)tr->item_hi[u]);
        if (a == b && !(u == 0 && ni == 0) && tr->item_hi[u] <= tr->item_lo[u])
            return gr_errorf("trie: leaf %d lists no item", (int)u);
        int32_t next = tr->item_lo[u];
        for (int32_t e = a; e < b; e++) {
            int32_t v = tr->child_node[e];
            if (v <= u || v >= nn) return gr_errorf("trie: edge %d: child node %d not in (%d, %d)", (int)e, (int)v, (int)u, (int)nn);
            if (tr->child_tok[e] < 0 || (e > a && tr->child_tok[e] <= tr->child_tok[e - 1]))
                return gr_errorf("trie: edge %d: token ids must be >= 0 and ascending within a node", (int)e);
            if (tr->item_lo[v] != next) return gr_errorf("trie: node %d: item ranges of its children are not contiguous", (int)u);
            next = tr->item_hi[v];
        }
        if (a < b && next != tr->item_hi[u]) return gr_errorf("trie: node %d: children do not cover its items", (int)u);
    }
    if (tr->item_lo[0] != 0 || tr->item_hi[0] != ni) return gr_errorf("trie: the root must hold all %d items", (int)ni);
    /* every non-root node has exactly one parent */
    uint8_t *seen = gr_calloc((size_t)nn + (size_t)ni + 1, 1);
    if (!seen) return GR_ERR;
    int rc = GR_OK;
    for (int32_t e = 0; e < ne && rc == GR_OK; e++)
        if (seen[tr->child_node[e]]++) rc = gr_errorf("trie: node %d has two parents", (int)tr->child_node[e]);
    uint8_t *iseen = seen + nn;
    for (int32_t k = 0; k < ni && rc == GR_OK; k++) {
        int32_t i = tr->order[k];
        if (i < 0 || i >= ni || iseen[i]++) rc = gr_errorf("trie: order[%d] = %d: not a permutation of the items", (int)k, (int)i);
    }
    gr_free(seen);
    if (rc) return rc;
    int32_t maxd = 0;
    int32_t *depth = gr_alloc((size_t)nn, sizeof *depth);
    if (!depth) return GR_ERR;
    depth[0] = 0;
    for (int32_t u = 0; u < nn; u++) {
        if (depth[u] > maxd) maxd = depth[u];
        for (int32_t e = tr->child_off[u]; e < tr->child_off[u + 1]; e++) depth[tr->child_node[e]] = depth[u] + 1;
        if (tr->child_off[u] == tr->child_off[u + 1])
            for (int32_t k = tr->item_lo[u]; k < tr->item_hi[u]; k++) tr->item_leaf[tr->order[k]] = u;
    }
    gr_free(depth);
    if (maxd != tr->max_depth) return gr_errorf("trie: max_depth %d but the deepest node is at %d", (int)tr->max_depth, (int)maxd);
    return GR_OK;
}

gr_trie *gr_trie_deserialize(const int32_t *buf, int64_t n)
{
    if (!buf || n < TRIE_HEADER) {
        gr_errorf("trie: buffer of %lld values is shorter than the header", (long long)n);
        return NULL;
    }
    if (buf[0] != TRIE_MAGIC || buf[1] != TRIE_VERSION) {
        gr_errorf("trie: bad magic/version (%d, %d)", (int)buf[0], (int)buf[1]);
        return NULL;
    }
    int64_t nn = buf[2], ni = buf[3], ne = buf[5];
    if (nn < 1 || ni < 0 || ne != nn - 1 || buf[4] < 0) {
        gr_errorf("trie: bad header (n_nodes %lld, n_items %lld, n_edges %lld, max_depth %d)", (long long)nn,
                  (long long)ni, (long long)ne, (int)buf[4]);
        return NULL;
    }
    int64_t want = TRIE_HEADER + (nn + 1) + 2 * ne + 2 * nn + ni;
    if (n != want) {
        gr_errorf("trie: buffer has %lld values, the header implies %lld", (long long)n, (long long)want);
        return NULL;
    }
    gr_trie *tr = trie_alloc((int32_t)nn, (int32_t)ni);
    if (!tr) return NULL;
    tr->max_depth = buf[4];
    const int32_t *p = buf + TRIE_HEADER;
#define GET(arr, cnt) do { memcpy((arr), p, (size_t)(cnt) * sizeof *p); p += (cnt); } while (0)
    GET(tr->child_off, nn + 1);
    GET(tr->child_tok, ne);
    GET(tr->child_node, ne);
    GET(tr->item_lo, nn);
    GET(tr->item_hi, nn);
    GET(tr->order, ni);
#undef GET
    if (trie_validate(tr)) {
        gr_trie_free(tr);
        return NULL;
    }
    return tr;
}
