/* Item text rendering and prompt templates (see include/genrec/itemtext.h). */
#include "genrec/itemtext.h"

#include <ctype.h>
#include <string.h>

#include "rec/rec_internal.h"


size_t gr_itemtext_strip_year(char *s, size_t n)
{
    size_t e = n;
    while (e > 0 && isspace((unsigned char)s[e - 1])) e--;
    if (e >= 6 && s[e - 1] == ')' && s[e - 6] == '(' && isdigit((unsigned char)s[e - 5]) &&
        isdigit((unsigned char)s[e - 4]) && isdigit((unsigned char)s[e - 3]) && isdigit((unsigned char)s[e - 2])) {
        size_t k = e - 6;
        while (k > 0 && isspace((unsigned char)s[k - 1])) k--;
        if (k > 0) {
            s[k] = 0;
            return k;
        }
    }
    return n;
}

/* Append up to max bytes of text, cut at the last space within the limit (or
 * at a UTF-8 boundary when there is none). */
static int add_cut(gr_sbuf *b, const char *text, size_t max)
{
    size_t n = strlen(text);
    if (n > max) {
        size_t k = max;
        while (k > 0 && text[k] != ' ') k--;
        if (k == 0) {
            k = max;
            while (k > 0 && ((unsigned char)text[k] & 0xC0) == 0x80) k--;
        }
        n = k;
    }
    return gr_sbuf_add(b, text, n);
}

char *gr_itemtext_render(const gr_dataset *d, int32_t item, const gr_itemtext_opts *o)
{
    if (!d || item < 0 || item >= d->n_items) {
        gr_errorf("itemtext: item id %d out of range [0, %d)", (int)item, d ? (int)d->n_items : 0);
        return NULL;
    }
    gr_itemtext_opts def = {0};
    if (!o) o = &def;
    gr_sbuf b = {0};
    const char *title = d->item_title && d->item_title[item] ? d->item_title[item] : "";
    int ok = 1;
    if (!title[0]) {
        ok = !gr_sbuf_adds(&b, "item ") && !gr_sbuf_adds(&b, d->item_key[item]);
    } else {
        ok = !gr_sbuf_adds(&b, title);
        if (ok && o->strip_year) b.n = gr_itemtext_strip_year(b.p, b.n);
    }
    const char *genres = d->item_genres && d->item_genres[item] ? d->item_genres[item] : "";
    if (ok && o->with_genres && genres[0]) {
        ok = !gr_sbuf_adds(&b, " [");
        for (const char *g = genres; ok && *g; g++)
            ok = *g == '|' ? !gr_sbuf_adds(&b, ", ") : !gr_sbuf_add(&b, g, 1);
        ok = ok && !gr_sbuf_adds(&b, "]");
    }
    const char *brand = d->item_brand && d->item_brand[item] ? d->item_brand[item] : "";
    if (ok && o->with_brand && brand[0]) ok = !gr_sbuf_adds(&b, " by ") && !gr_sbuf_adds(&b, brand);
    const char *text = d->item_text && d->item_text[item] ? d->item_text[item] : "";
    if (ok && o->with_text && text[0])
        ok = !gr_sbuf_adds(&b, ". ") && !add_cut(&b, text, o->max_text_chars > 0 ? (size_t)o->max_text_chars : 200);
    if (!ok) {
        gr_free(b.p);
        return NULL;
    }
    return gr_sbuf_finish(&b);
}

void gr_itemtext_free(gr_itemtext *t)
{
    if (!t) return;
    if (t->text)
        for (int32_t i = 0; i < t->n; i++) gr_free(t->text[i]);
    gr_free(t->text);
    gr_free(t);
}

static gr_itemtext *itemtext_new(int32_t n)
{
    gr_itemtext *t = gr_calloc(1, sizeof *t);
    if (!t) return NULL;
    t->n = n;
    t->text = gr_calloc(n > 0 ? (size_t)n : 1, sizeof *t->text);
    if (!t->text) {
        gr_free(t);
        return NULL;
    }
    return t;
}

gr_itemtext *gr_itemtext_build(const gr_dataset *d, const gr_itemtext_opts *o)
{
    if (!d) {
        gr_errorf("itemtext: no dataset");
        return NULL;
    }
    gr_itemtext *t = itemtext_new(d->n_items);
    if (!t) return NULL;
    for (int32_t i = 0; i < d->n_items; i++)
        if (!(t->text[i] = gr_itemtext_render(d, i, o))) {
            gr_itemtext_free(t);
            return NULL;
        }
    return t;
}

gr_itemtext *gr_itemtext_from_strings(char *const *strs, int32_t n)
{
    if (n < 0 || (n > 0 && !strs)) {
        gr_errorf("itemtext: bad string list (n = %d)", (int)n);
        return NULL;
    }
    gr_itemtext *t = itemtext_new(n);
    if (!t) return NULL;
    for (int32_t i = 0; i < n; i++) {
        if (!strs[i]) {
            gr_errorf("itemtext: string %d is NULL", (int)i);
            gr_itemtext_free(t);
            return NULL;
        }
        if (!(t->text[i] = gr_strdup(strs[i]))) {
            gr_itemtext_free(t);
            return NULL;
        }
    }
    return t;
}

/* ---- templates ---------------------------------------------------------------- */

gr_prompt_tmpl gr_prompt_tmpl_compact(void)
{
    gr_prompt_tmpl t = {0};
    t.name = "compact";
    t.instruction = "";
    t.header = "";
    t.item_open = " ";
    t.item_close = "\n";
    t.item_sep = "";
    t.footer = "=>";
    t.answer_open = " ";
    t.answer_close = "";
    t.category = NULL;
    t.max_hist = 20;
    t.add_bos = 1;
    t.piecewise = 1;
    return t;
}

gr_prompt_tmpl gr_prompt_tmpl_d3(const char *category)
{
    gr_prompt_tmpl t = {0};
    t.name = "d3";
    t.instruction = "Below is an instruction that describes a task, paired with an input that provides further "
                    "context. Write a response that appropriately completes the request. \n\n"
                    "### Instruction:\n"
                    "Given a list of {cat} the user recetenly enjoy, please write a new {cat} that the user may bought\n";
    t.header = "### User Input: \nThe user has palyed the following {cat}s before: ";
    t.item_open = "\"";
    t.item_close = "\"";
    t.item_sep = ", ";
    t.footer = "\n\n### Response: \n";
    t.answer_open = "\"";
    t.answer_close = "\"\n";
    t.category = category;
    t.max_hist = 10;
    t.add_bos = 1;
    t.piecewise = 0;
    return t;
}

gr_prompt_tmpl gr_prompt_tmpl_bigrec(void)
{
    gr_prompt_tmpl t = {0};
    t.name = "bigrec";
    t.instruction = "";
    t.header = "Below is an instruction that describes a task, paired with an input that provides further "
               "context. Write a response that appropriately completes the request.  \n\n"
               "### Instruction:\n"
               "Given a list of movies the user has watched before, please recommend a new movie that the user "
               "likes to the user.\n\n"
               "### Input:\n"
               "The user has watched the following movies before:";
    t.item_open = "\"";
    t.item_close = "\"";
    t.item_sep = ", ";
    t.footer = "\n \n\n### Response:\n";
    t.answer_open = "\"";
    t.answer_close = "\"";
    t.category = NULL;
    t.max_hist = 10;
    t.add_bos = -1;
    t.piecewise = 0;
    return t;
}

int gr_prompt_tmpl_by_name(const char *name, const char *category, gr_prompt_tmpl *out)
{
    if (name && !strcmp(name, "compact")) *out = gr_prompt_tmpl_compact();
    else if (name && !strcmp(name, "d3")) *out = gr_prompt_tmpl_d3(category);
    else if (name && !strcmp(name, "bigrec")) *out = gr_prompt_tmpl_bigrec();
    else return gr_errorf("prompt template '%s': unknown (use compact, d3 or bigrec)", name ? name : "(null)");
    if (category && strcmp(out->name, "bigrec")) out->category = category;
    return GR_OK;
}

/* Append s with every "{cat}" replaced by cat. */
static int add_subst(gr_sbuf *b, const char *s, const char *cat)
{
    if (!s) return GR_OK;
    for (;;) {
        const char *p = strstr(s, "{cat}");
        if (!p) return gr_sbuf_adds(b, s);
        if (gr_sbuf_add(b, s, (size_t)(p - s)) || gr_sbuf_adds(b, cat)) return GR_ERR;
        s = p + 5;
    }
}

const char *gr_rec_tmpl_cat(const gr_prompt_tmpl *t) { return t->category ? t->category : "items"; }
static const char *nz(const char *s) { return s ? s : ""; }

static int check_item(const gr_itemtext *it, int32_t item, const char *what)
{
    if (!it || item < 0 || item >= it->n)
        return gr_errorf("prompt: %s item id %d out of range [0, %d)", what, (int)item, it ? (int)it->n : 0);
    return GR_OK;
}

/* The shown part of a history: its last max_hist items. */
static void shown(const gr_prompt_tmpl *t, const int32_t **hist, int32_t *n)
{
    if (t->max_hist > 0 && *n > t->max_hist) {
        *hist += *n - t->max_hist;
        *n = t->max_hist;
    }
}

/* Body text: header + items + footer (substituted). */
static int add_body(gr_sbuf *b, const gr_prompt_tmpl *t, const gr_itemtext *it, const int32_t *hist, int32_t n)
{
    const char *cat = gr_rec_tmpl_cat(t);
    if (add_subst(b, t->header, cat)) return GR_ERR;
    for (int32_t i = 0; i < n; i++) {
        if ((i && gr_sbuf_adds(b, nz(t->item_sep))) || gr_sbuf_adds(b, nz(t->item_open)) ||
            gr_sbuf_adds(b, it->text[hist[i]]) || gr_sbuf_adds(b, nz(t->item_close)))
            return GR_ERR;
    }
    return add_subst(b, t->footer, cat);
}

char *gr_prompt_text(const gr_prompt_tmpl *t, const gr_itemtext *it, const int32_t *hist, int32_t n)
{
    shown(t, &hist, &n);
    for (int32_t i = 0; i < n; i++)
        if (check_item(it, hist[i], "history")) return NULL;
    gr_sbuf b = {0};
    if (add_subst(&b, t->instruction, gr_rec_tmpl_cat(t)) || add_body(&b, t, it, hist, n)) {
        gr_free(b.p);
        return NULL;
    }
    return gr_sbuf_finish(&b);
}

char *gr_answer_text(const gr_prompt_tmpl *t, const gr_itemtext *it, int32_t item)
{
    if (check_item(it, item, "answer")) return NULL;
    gr_sbuf b = {0};
    if (gr_sbuf_adds(&b, nz(t->answer_open)) || gr_sbuf_adds(&b, it->text[item]) ||
        gr_sbuf_adds(&b, nz(t->answer_close))) {
        gr_free(b.p);
        return NULL;
    }
    return gr_sbuf_finish(&b);
}

char *gr_rec_corpus(const gr_prompt_tmpl *t, const gr_itemtext *it, size_t *len)
{
    gr_sbuf b = {0};
    const char *cat = gr_rec_tmpl_cat(t);
    int ok = 1;
    for (int32_t i = 0; ok && it && i < it->n; i++) {
        ok = !gr_sbuf_adds(&b, nz(t->answer_open)) && !gr_sbuf_adds(&b, it->text[i]) &&
             !gr_sbuf_adds(&b, nz(t->answer_close)) && !gr_sbuf_adds(&b, "\n") &&
             !gr_sbuf_adds(&b, nz(t->item_open)) && !gr_sbuf_adds(&b, it->text[i]) &&
             !gr_sbuf_adds(&b, nz(t->item_close)) && !gr_sbuf_adds(&b, nz(t->item_sep)) &&
             !gr_sbuf_adds(&b, "\n");
    }
    for (int r = 0; ok && r < 4; r++)
        ok = !add_subst(&b, t->instruction, cat) && !add_subst(&b, t->header, cat) &&
             !gr_sbuf_adds(&b, nz(t->item_sep)) && !add_subst(&b, t->footer, cat) && !gr_sbuf_adds(&b, "\n");
    if (!ok) {
        gr_free(b.p);
        return NULL;
    }
    if (len) *len = b.n;
    return gr_sbuf_finish(&b);
}

/* ---- encoding ----------------------------------------------------------------- */

static int encode_add(gr_ivec *v, const gr_tokenizer *tok, const char *s, size_t n)
{
    if (!n) return GR_OK;
    int64_t k;
    int32_t *ids = gr_tokenizer_encode(tok, s, n, 0, &k);
    if (!ids) return GR_ERR;
    int rc = gr_ivec_add(v, ids, k);
    gr_free(ids);
    return rc;
}

int32_t gr_rec_prompt_bos(const gr_prompt_tmpl *t, const gr_tokenizer *tok)
{
    int want = t->add_bos < 0 ? gr_tokenizer_wants_bos(tok) : t->add_bos;
    return want ? gr_tokenizer_bos(tok) : -1;
}

int gr_rec_encode_subst(gr_ivec *v, const gr_tokenizer *tok, const char *s, const char *cat)
{
    gr_sbuf b = {0};
    if (add_subst(&b, s, cat)) {
        gr_free(b.p);
        return GR_ERR;
    }
    int rc = encode_add(v, tok, b.p ? b.p : "", b.n);
    gr_free(b.p);
    return rc;
}

int gr_rec_encode_item_piece(const gr_prompt_tmpl *t, const gr_tokenizer *tok, const gr_itemtext *it,
                             int32_t item, gr_ivec *v)
{
    gr_sbuf b = {0};
    if (gr_sbuf_adds(&b, nz(t->item_open)) || gr_sbuf_adds(&b, it->text[item]) ||
        gr_sbuf_adds(&b, nz(t->item_close))) {
        gr_free(b.p);
        return GR_ERR;
    }
    int rc = encode_add(v, tok, b.p, b.n);
    gr_free(b.p);
    return rc;
}

int32_t *gr_prompt_encode(const gr_prompt_tmpl *t, const gr_tokenizer *tok, const gr_itemtext *it,
                          const int32_t *hist, int32_t n, int64_t *n_ids)
{
    shown(t, &hist, &n);
    for (int32_t i = 0; i < n; i++)
        if (check_item(it, hist[i], "history")) return NULL;
    const char *cat = gr_rec_tmpl_cat(t);
    gr_ivec v = {0};
    int32_t bos = gr_rec_prompt_bos(t, tok);
    int ok = bos < 0 || !gr_ivec_add(&v, &bos, 1);
    ok = ok && !gr_rec_encode_subst(&v, tok, t->instruction, cat);
    if (ok && t->piecewise) {
        ok = !gr_rec_encode_subst(&v, tok, t->header, cat);
        for (int32_t i = 0; ok && i < n; i++) {
            if (i) ok = !encode_add(&v, tok, nz(t->item_sep), strlen(nz(t->item_sep)));
            ok = ok && !gr_rec_encode_item_piece(t, tok, it, hist[i], &v);
        }
        ok = ok && !gr_rec_encode_subst(&v, tok, t->footer, cat);
    } else if (ok) {
        gr_sbuf b = {0};
        ok = !add_body(&b, t, it, hist, n) && !encode_add(&v, tok, b.p ? b.p : "", b.n);
        gr_free(b.p);
    }
    if (ok && !v.p) {
        v.p = gr_alloc(1, sizeof *v.p);
        ok = v.p != NULL;
    }
    if (!ok) {
        gr_free(v.p);
        return NULL;
    }
    *n_ids = v.n;
    return v.p;
}

int32_t *gr_answer_encode(const gr_prompt_tmpl *t, const gr_tokenizer *tok, const gr_itemtext *it,
                          int32_t item, int64_t *n_ids)
{
    int32_t eos = gr_tokenizer_eos(tok);
    if (eos < 0) {
        gr_errorf("answer: the tokenizer has no EOS token to end the answer");
        return NULL;
    }
    char *s = gr_answer_text(t, it, item);
    if (!s) return NULL;
    gr_ivec v = {0};
    int ok = !encode_add(&v, tok, s, strlen(s)) && !gr_ivec_add(&v, &eos, 1);
    gr_free(s);
    if (!ok) {
        gr_free(v.p);
        return NULL;
    }
    *n_ids = v.n;
    return v.p;
}
