/*
 * ingest/doc_pdf.c — PDF text with one anchor per page, through poppler-glib.
 *
 * The bytes are wrapped in a GBytes that borrows the caller's buffer (the
 * document never outlives this call). Each page's text (poppler's reading
 * order, UTF-8) is appended after a TOME_ANCHOR_PAGE anchor numbered from 1;
 * a page always ends with '\n', so every page anchor has its own offset. A
 * page without any text (a scan, an image, a blank page) is the line
 * "[tome: no text on this page (an image or scan?)]", so a reader of the
 * pack knows the page exists and why nothing of it can be quoted.
 *
 * poppler's page text joins two runs of one line with nothing when the gap
 * between them is wide (table cells, a label and its value, two columns:
 * "NameValue", "Fee100"). separate_runs puts a tab there: with the page's
 * text layout (one rectangle per character of that same text), two
 * neighbouring non-space characters on one line whose gap is wider than
 * 0.6 x the character height get '\t' between them. If the layout does not
 * match the text character for character, the text is kept as it is.
 *
 * Bookmarks (the document outline) become heading offsets (out->heads):
 * the line of its page that holds a bookmark's title (among its first 256),
 * else the page's first line with text; a PDF degraded to outline shows
 * those lines. At most 5,000 bookmarks, 6 levels deep, are read.
 *
 * poppler and glib log syntax errors of broken PDFs to stderr by default;
 * library code must not print, so the "Poppler" log domain gets a handler that drops messages (installed once, thread-safe).
 * Encrypted PDFs that need a password are TOME_ERR_UNSUPPORTED; unparsable
 * ones TOME_ERR_FORMAT, both naming the path and poppler's message.
 */
#include <dlfcn.h>
#include <glib.h>
#include <math.h>
#include <poppler.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "ingest/doc_impl.h"

/* poppler-glib is loaded by the first PDF read (dlopen of its soname, set by
 * CMake): linked, it and the ~40 libraries it pulls in (cairo, NSS, X11,
 * fontconfig, ...) cost every tome command ~7 ms of start-up (12 -> 5 ms for
 * `tome --version`), and most runs read no PDF. glib is linked as usual. */
#ifndef TOME_POPPLER_SONAME
#define TOME_POPPLER_SONAME "libpoppler-glib.so.8"
#endif
#define POP_FNS(X)                                                                                                   \
    X(action_free) X(dest_free) X(document_find_dest) X(document_get_n_pages) X(document_get_page)                  \
    X(document_new_from_bytes) X(index_iter_free) X(index_iter_get_action) X(index_iter_get_child)                  \
    X(index_iter_new) X(index_iter_next) X(page_get_text) X(page_get_text_layout) X(error_quark)
static struct {
#define X(f) __typeof__(&poppler_##f) f;
    POP_FNS(X)
#undef X
} g_pop;
static int g_pop_ok;
static char g_pop_err[512];
static pthread_once_t g_pop_once = PTHREAD_ONCE_INIT;

static void pop_load(void)
{
    void *h = dlopen(TOME_POPPLER_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(g_pop_err, sizeof g_pop_err, "%s", dlerror());
        return;
    }
#define X(f)                                                                                                         \
    if (!(*(void **)(void *)&g_pop.f = dlsym(h, "poppler_" #f))) {                                                   \
        snprintf(g_pop_err, sizeof g_pop_err, "%s: no symbol poppler_" #f, TOME_POPPLER_SONAME);                    \
        dlclose(h);                                                                                                  \
        return;                                                                                                      \
    }
    POP_FNS(X)
#undef X
    g_pop_ok = 1;
}
#define poppler_action_free g_pop.action_free
#define poppler_dest_free g_pop.dest_free
#define poppler_document_find_dest g_pop.document_find_dest
#define poppler_document_get_n_pages g_pop.document_get_n_pages
#define poppler_document_get_page g_pop.document_get_page
#define poppler_document_new_from_bytes g_pop.document_new_from_bytes
#define poppler_index_iter_free g_pop.index_iter_free
#define poppler_index_iter_get_action g_pop.index_iter_get_action
#define poppler_index_iter_get_child g_pop.index_iter_get_child
#define poppler_index_iter_new g_pop.index_iter_new
#define poppler_index_iter_next g_pop.index_iter_next
#define poppler_page_get_text g_pop.page_get_text
#define poppler_page_get_text_layout g_pop.page_get_text_layout
#undef POPPLER_ERROR
#define POPPLER_ERROR (g_pop.error_quark())

/* PDFs with more pages than this are cut (with a note in the text). */
#define TOME_PDF_MAX_PAGES 100000

static void drop_log(const gchar *domain, GLogLevelFlags level, const gchar *msg, gpointer ud)
{
    (void)domain, (void)level, (void)msg, (void)ud;
}

static pthread_once_t g_quiet_once = PTHREAD_ONCE_INIT;
/* poppler creates its process-wide GlobalParams lazily on the first document
 * it opens, without a lock: opening is serialized, page text is not. */
static pthread_mutex_t g_open_lock = PTHREAD_MUTEX_INITIALIZER;
static void quiet_poppler(void)
{
    GLogLevelFlags all = (GLogLevelFlags)(G_LOG_LEVEL_MASK | G_LOG_FLAG_FATAL | G_LOG_FLAG_RECURSION);
    g_log_set_handler("Poppler", all, drop_log, NULL);
}

/* txt with a tab between wide-apart runs of a line (see the top), newly
 * allocated (g_free), or NULL to keep txt. */
static char *separate_runs(PopplerPage *page, const char *txt)
{
    PopplerRectangle *r = NULL;
    guint n = 0;
    if (!g_utf8_validate(txt, -1, NULL) || !poppler_page_get_text_layout(page, &r, &n) || !r)
        return NULL;
    if ((glong)n != g_utf8_strlen(txt, -1)) {
        g_free(r);
        return NULL;
    }
    GString *out = g_string_sized_new(strlen(txt) + 64);
    gunichar prev = '\n';
    guint i = 0;
    int changed = 0;
    for (const char *p = txt; *p; p = g_utf8_next_char(p), i++) {
        gunichar c = g_utf8_get_char(p);
        if (i > 0 && !g_unichar_isspace(c) && !g_unichar_isspace(prev)) {
            const PopplerRectangle *a = &r[i - 1], *b = &r[i];
            double h = fabs(b->y2 - b->y1), gap = b->x1 - a->x2;
            if (h > 0 && fabs(b->y1 - a->y1) < 0.5 * h && gap > 0.6 * h) {
                g_string_append_c(out, '\t');
                changed = 1;
            }
        }
        g_string_append_len(out, p, g_utf8_next_char(p) - p);
        prev = c;
    }
    g_free(r);
    return g_string_free(out, !changed);
}

/* ---- bookmarks: where each one's title sits in the extracted text */
#define TOME_PDF_MAX_BOOKMARKS 5000
#define TOME_PDF_BOOKMARK_LINES 256 /* lines of its page searched for a title */
#define TOME_PDF_BOOKMARK_DEPTH 6

typedef struct bookmarks {
    int *page;   /* 1-based */
    char **title;
    size_t n, cap;
} bookmarks;

static void bm_free(bookmarks *bm)
{
    for (size_t i = 0; i < bm->n; i++) g_free(bm->title[i]);
    free(bm->page);
    free(bm->title);
}

static int bm_add(bookmarks *bm, int page, const char *title)
{
    if (bm->n == bm->cap) {
        size_t nc = bm->cap ? 2 * bm->cap : 32;
        int *p = realloc(bm->page, nc * sizeof *p);
        if (p) bm->page = p;
        char **t = realloc(bm->title, nc * sizeof *t);
        if (t) bm->title = t;
        if (!p || !t) return 0;
        bm->cap = nc;
    }
    bm->page[bm->n] = page;
    bm->title[bm->n++] = g_strdup(title ? title : "");
    return 1;
}

/* The outline tree in document order (depth-first), each item that jumps
 * to a page; named destinations are looked up. */
static int bm_collect(PopplerDocument *doc, PopplerIndexIter *it, int depth, bookmarks *bm)
{
    do {
        PopplerAction *act = poppler_index_iter_get_action(it);
        if (act && act->type == POPPLER_ACTION_GOTO_DEST && act->goto_dest.dest) {
            PopplerDest *d = act->goto_dest.dest, *named = NULL;
            if (d->type == POPPLER_DEST_NAMED && d->named_dest) d = named = poppler_document_find_dest(doc, d->named_dest);
            int ok = !d || d->page_num < 1 || bm_add(bm, d->page_num, act->any.title);
            if (named) poppler_dest_free(named);
            if (!ok) {
                poppler_action_free(act);
                return 0;
            }
        }
        if (act) poppler_action_free(act);
        if (depth < TOME_PDF_BOOKMARK_DEPTH && bm->n < TOME_PDF_MAX_BOOKMARKS) {
            PopplerIndexIter *child = poppler_index_iter_get_child(it);
            if (child) {
                int ok = bm_collect(doc, child, depth + 1, bm);
                poppler_index_iter_free(child);
                if (!ok) return 0;
            }
        }
    } while (bm->n < TOME_PDF_MAX_BOOKMARKS && poppler_index_iter_next(it));
    return 1;
}

/* s lower-cased (ASCII) with runs of whitespace as one space, trimmed; at
 * most max bytes (g_free). */
static char *squeeze(const char *s, size_t n, size_t max)
{
    GString *g = g_string_sized_new(n < max ? n : max);
    int sp = 0;
    for (size_t i = 0; i < n && g->len < max; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f') {
            sp = g->len > 0;
            continue;
        }
        if (sp) g_string_append_c(g, ' ');
        sp = 0;
        g_string_append_c(g, (char)(c < 0x80 ? g_ascii_tolower((char)c) : (char)c));
    }
    return g_string_free(g, FALSE);
}

static int cmp_off(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

/* out->heads: for each bookmark, the first line of its page that holds its
 * title (its first 48 bytes, whitespace and ASCII case ignored), else the
 * page's first line with text that is not a running header or footer (as
 * tome_outline_page_firsts says: a title that is not in the text, or is
 * drawn as an image, gave the running header of every page). Pages are
 * out's TOME_ANCHOR_PAGE anchors. */
static tome_status bm_place(const bookmarks *bm, tome_doc_text *out)
{
    if (!bm->n) return TOME_OK;
    uint64_t *h = malloc(bm->n * sizeof *h), *firsts = malloc((out->n_anchors ? out->n_anchors : 1) * sizeof *firsts);
    if (!h || !firsts) {
        free(h);
        free(firsts);
        return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    }
    tome_status st = tome_outline_page_firsts(out->text.data, out->text.len, out->anchors, out->n_anchors, firsts);
    if (st) {
        free(h);
        free(firsts);
        return st;
    }
    size_t n = 0;
    const char *t = out->text.data ? out->text.data : "";
    size_t len = out->text.len;
    for (size_t i = 0; i < bm->n; i++) {
        /* the page's anchor: page p's is anchor p - 1 (every page puts a
         * line, so none merge), else searched; a page past the cut has none */
        size_t k = (size_t)bm->page[i] - 1;
        if (k >= out->n_anchors || out->anchors[k].number != (uint32_t)bm->page[i])
            for (k = 0; k < out->n_anchors && out->anchors[k].number != (uint32_t)bm->page[i]; k++) {
            }
        if (k == out->n_anchors) continue;
        size_t start = (size_t)out->anchors[k].offset, end = len;
        for (size_t q = k + 1; q < out->n_anchors; q++)
            if (out->anchors[q].kind == TOME_ANCHOR_PAGE) {
                end = (size_t)out->anchors[q].offset;
                break;
            }
        char *want = squeeze(bm->title[i], strlen(bm->title[i]), 48);
        size_t found = (size_t)-1, lines = 0;
        for (size_t pos = start; pos < end && *want && found == (size_t)-1 && lines++ < TOME_PDF_BOOKMARK_LINES;) {
            const char *nl = memchr(t + pos, '\n', end - pos);
            size_t e = nl ? (size_t)(nl - t) : end;
            char *line = squeeze(t + pos, e - pos, 4096);
            if (*line && strstr(line, want)) found = pos;
            g_free(line);
            pos = e + 1;
        }
        g_free(want);
        if (found == (size_t)-1 && firsts[k] != UINT64_MAX) found = (size_t)firsts[k];
        if (found != (size_t)-1) h[n++] = found;
    }
    free(firsts);
    qsort(h, n, sizeof *h, cmp_off);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!m || h[m - 1] != h[i]) h[m++] = h[i];
    if (!m) {
        free(h);
        return TOME_OK;
    }
    out->heads = h;
    out->n_heads = m;
    return TOME_OK;
}

tome_status tome_doc_pdf_extract(const char *path, const uint8_t *data, size_t len, tome_doc_text *out)
{
    pthread_once(&g_pop_once, pop_load);
    if (!g_pop_ok)
        return tome_set_error(TOME_ERR_UNSUPPORTED, "%s: PDF support is not available (poppler-glib: %s)", path,
                              g_pop_err);
    pthread_once(&g_quiet_once, quiet_poppler);
    if (len == 0)
        return tome_set_error(TOME_ERR_FORMAT, "%s: empty PDF", path);

    GError *gerr = NULL;
    GBytes *bytes = g_bytes_new_static(data, len);
    pthread_mutex_lock(&g_open_lock);
    PopplerDocument *doc = poppler_document_new_from_bytes(bytes, NULL, &gerr);
    pthread_mutex_unlock(&g_open_lock);
    if (!doc) {
        tome_status st = TOME_ERR_FORMAT;
        const char *why = "corrupt or unsupported PDF";
        if (gerr && gerr->domain == POPPLER_ERROR && gerr->code == POPPLER_ERROR_ENCRYPTED) {
            st = TOME_ERR_UNSUPPORTED;
            why = "encrypted PDF (needs a password)";
        }
        st = tome_set_error(st, "%s: %s: %s", path, why, gerr && gerr->message ? gerr->message : "?");
        if (gerr)
            g_error_free(gerr);
        g_bytes_unref(bytes);
        return st;
    }

    tome_status rc = TOME_OK;
    tome_doc_builder b = {.out = out};
    int n_pages = poppler_document_get_n_pages(doc);
    int limit = n_pages > TOME_PDF_MAX_PAGES ? TOME_PDF_MAX_PAGES : n_pages;
    for (int i = 0; i < limit && rc == TOME_OK; i++) {
        rc = tome_doc_anchor(&b, TOME_ANCHOR_PAGE, (uint32_t)i + 1);
        if (rc != TOME_OK)
            break;
        PopplerPage *page = poppler_document_get_page(doc, i);
        if (!page) {
            static const char bad[] = "[tome: this page could not be read]\n";
            rc = tome_doc_put(&b, bad, sizeof bad - 1);
            continue;
        }
        char *txt = poppler_page_get_text(page);
        char *sep = txt ? separate_runs(page, txt) : NULL;
        if (sep) {
            g_free(txt);
            txt = sep;
        }
        size_t k = 0;
        while (txt && txt[k] && (txt[k] == ' ' || txt[k] == '\n' || txt[k] == '\r' || txt[k] == '\t' || txt[k] == '\f'))
            k++;
        if (!txt || !txt[k]) {
            static const char none[] = "[tome: no text on this page (an image or scan?)]\n";
            rc = tome_doc_put(&b, none, sizeof none - 1);
        } else {
            size_t n = strlen(txt);
            /* form feeds (page breaks inside the text) are not line content */
            for (size_t j = 0; j < n; j++)
                if (txt[j] == '\f')
                    txt[j] = '\n';
            rc = tome_doc_put(&b, txt, n);
            if (rc == TOME_OK && (n == 0 || txt[n - 1] != '\n'))
                rc = tome_doc_put(&b, "\n", 1);
        }
        g_free(txt);
        g_object_unref(page);
    }
    if (rc == TOME_OK && limit < n_pages) {
        char note[128];
        int k = snprintf(note, sizeof note, "[tome: PDF cut after %d of %d pages]\n", limit, n_pages);
        rc = tome_doc_put(&b, note, (size_t)k);
    }
    if (rc == TOME_OK) { /* bookmarks, for the outline of a degraded PDF */
        bookmarks bm = {0};
        PopplerIndexIter *it = poppler_index_iter_new(doc);
        int ok = !it || bm_collect(doc, it, 0, &bm);
        if (it) poppler_index_iter_free(it);
        rc = ok ? bm_place(&bm, out) : tome_set_error(TOME_ERR_NOMEM, "out of memory");
        bm_free(&bm);
    }
    g_object_unref(doc);
    g_bytes_unref(bytes);
    return rc;
}
