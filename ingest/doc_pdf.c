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
 * poppler and glib log syntax errors of broken PDFs to stderr by default;
 * library code must not print, so the "Poppler" log domain gets a handler that drops messages (installed once, thread-safe).
 * Encrypted PDFs that need a password are TOME_ERR_UNSUPPORTED; unparsable
 * ones TOME_ERR_FORMAT, both naming the path and poppler's message.
 */
#include <glib.h>
#include <math.h>
#include <poppler.h>
#include <pthread.h>
#include <string.h>

#include "ingest/doc_impl.h"

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

tome_status tome_doc_pdf_extract(const char *path, const uint8_t *data, size_t len, tome_doc_text *out)
{
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
    g_object_unref(doc);
    g_bytes_unref(bytes);
    return rc;
}
