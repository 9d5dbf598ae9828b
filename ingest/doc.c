/*
 * ingest/doc.c — which document a file is, and the shared extraction helpers.
 *
 * tome_doc_sniff decides by content: "%PDF-" at the start; a zip whose
 * directory holds word/document.xml (DOCX) or whose "mimetype" member says
 * application/vnd.oasis.opendocument.text (ODT); markup that starts with a
 * doctype/<html> (or any markup in a file named .html/.htm/.xhtml). Zip
 * directories are probed by parsing the central directory in place (never
 * decompressing), with every offset bounds-checked, so the sniffers are cheap
 * and safe on hostile bytes.
 *
 * tome_doc_builder (doc_impl.h) is how every extractor writes: text goes to
 * out->text (UTF-8, '\n' line ends, no NUL bytes), anchors to out->anchors in
 * increasing offset order. An extractor that fails leaves out empty: the
 * caller owns *out and frees it with tome_doc_text_free either way.
 */
#include <archive.h>
#include <archive_entry.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ingest/doc_impl.h"

/* ------------------------------------------------------------ zip probing */
static uint32_t rd16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Calls fn(ctx, name, name_len) for each member name; stops when fn returns
 * nonzero and returns that value. Central directory first; when it is absent
 * or damaged, the chain of local headers from offset 0. */
typedef int (*zip_name_fn)(void *ctx, const uint8_t *name, size_t n);

static int zip_each_name(const uint8_t *d, size_t len, zip_name_fn fn, void *ctx)
{
    if (len < 22)
        return 0;
    size_t lo = len > 22 + 65535 ? len - 22 - 65535 : 0;
    for (size_t i = len - 22 + 1; i-- > lo;) {
        if (memcmp(d + i, "PK\x05\x06", 4) != 0)
            continue;
        uint32_t count = rd16(d + i + 10);
        uint32_t cd_off = rd32(d + i + 16);
        size_t p = cd_off;
        int ok = 1;
        for (uint32_t k = 0; k < count && ok; k++) {
            if (p > len || len - p < 46 || memcmp(d + p, "PK\x01\x02", 4) != 0) {
                ok = 0;
                break;
            }
            size_t n = rd16(d + p + 28), extra = rd16(d + p + 30), comment = rd16(d + p + 32);
            if (len - p - 46 < n)
                break;
            int r = fn(ctx, d + p + 46, n);
            if (r)
                return r;
            p += 46 + n + extra + comment;
        }
        if (ok)
            return 0;
        break; /* damaged directory: try the local headers */
    }
    size_t p = 0;
    for (int k = 0; k < 4096; k++) {
        if (p > len || len - p < 30 || memcmp(d + p, "PK\x03\x04", 4) != 0)
            return 0;
        uint32_t flags = rd16(d + p + 6), csize = rd32(d + p + 18);
        size_t n = rd16(d + p + 26), extra = rd16(d + p + 28);
        if (len - p - 30 < n)
            return 0;
        int r = fn(ctx, d + p + 30, n);
        if (r)
            return r;
        if (flags & 8)
            return 0; /* sizes follow the data: cannot hop without inflating */
        size_t step = 30 + n + extra + (size_t)csize;
        if (step > len - p)
            return 0;
        p += step;
    }
    return 0;
}

int tome_zip_has_eocd(const uint8_t *d, size_t len)
{
    if (!d || len < 22)
        return 0;
    size_t lo = len > 22 + 65535 ? len - 22 - 65535 : 0;
    for (size_t i = len - 22 + 1; i-- > lo;) {
        /* the record's comment must fit in the file (junk may follow it) */
        if (memcmp(d + i, "PK\x05\x06", 4) == 0 && i + 22 + rd16(d + i + 20) <= len)
            return 1;
    }
    return 0;
}

static int name_equals(void *ctx, const uint8_t *name, size_t n)
{
    const char *want = ctx;
    return strlen(want) == n && memcmp(want, name, n) == 0;
}

int tome_zip_has_member(const uint8_t *data, size_t len, const char *name)
{
    if (!data || len < 4 || memcmp(data, "PK", 2) != 0)
        return 0;
    return zip_each_name(data, len, name_equals, (void *)name);
}

/* The OpenDocument "mimetype" member is stored first, uncompressed, so its
 * content sits right after its local header; returns the type or NULL. */
static const char *odf_mimetype(const uint8_t *d, size_t len, size_t *n_out)
{
    if (len < 38 + 8 || memcmp(d, "PK\x03\x04", 4) != 0)
        return NULL;
    size_t n = rd16(d + 26), extra = rd16(d + 28);
    uint32_t method = rd16(d + 8), csize = rd32(d + 18);
    if (n != 8 || memcmp(d + 30, "mimetype", 8) != 0 || method != 0)
        return NULL;
    size_t off = 30 + n + extra;
    if (off > len || csize > len - off || csize > 256)
        return NULL;
    *n_out = csize;
    return (const char *)d + off;
}

static int prefix_n(const char *s, size_t n, const char *p)
{
    size_t k = strlen(p);
    return n >= k && memcmp(s, p, k) == 0;
}

const char *tome_doc_unsupported_office(const uint8_t *data, size_t len)
{
    size_t n = 0;
    const char *mt = odf_mimetype(data, len, &n);
    static const char odf[] = "application/vnd.oasis.opendocument.";
    if (mt && prefix_n(mt, n, odf) && !prefix_n(mt, n, "application/vnd.oasis.opendocument.text")) {
        size_t k = sizeof odf - 1;
        if (prefix_n(mt + k, n - k, "spreadsheet")) return "OpenDocument spreadsheet";
        if (prefix_n(mt + k, n - k, "presentation")) return "OpenDocument presentation";
        if (prefix_n(mt + k, n - k, "graphics")) return "OpenDocument drawing";
        return "OpenDocument file";
    }
    if (!tome_zip_has_member(data, len, "[Content_Types].xml")) return NULL;
    if (tome_zip_has_member(data, len, "xl/workbook.xml")) return "spreadsheet (XLSX)";
    if (tome_zip_has_member(data, len, "ppt/presentation.xml")) return "presentation (PPTX)";
    if (tome_zip_has_member(data, len, "visio/document.xml")) return "drawing (VSDX)";
    return NULL;
}

int tome_zip_is_office(const uint8_t *data, size_t len)
{
    size_t n = 0;
    const char *mt = odf_mimetype(data, len, &n);
    if (mt && prefix_n(mt, n, "application/vnd.oasis.opendocument."))
        return 1;
    return tome_zip_has_member(data, len, "[Content_Types].xml") &&
           (tome_zip_has_member(data, len, "word/document.xml") ||
            tome_zip_has_member(data, len, "xl/workbook.xml") ||
            tome_zip_has_member(data, len, "ppt/presentation.xml") ||
            tome_zip_has_member(data, len, "_rels/.rels"));
}

tome_status tome_zip_read_member(const char *path, const uint8_t *data, size_t len,
                                 const char *name, size_t max_bytes, tome_buf *out)
{
    tome_status rc = TOME_OK;
    struct archive *a = archive_read_new();
    if (!a)
        return tome_set_error(TOME_ERR_NOMEM, "%s: cannot allocate a zip reader", path);
    archive_read_support_format_zip(a);
    if (archive_read_open_memory(a, data, len) != ARCHIVE_OK) {
        rc = tome_set_error(TOME_ERR_FORMAT, "%s: not a readable zip: %s", path,
                            archive_error_string(a) ? archive_error_string(a) : "?");
        goto done;
    }
    for (;;) {
        struct archive_entry *ae;
        int r = archive_read_next_header(a, &ae);
        if (r == ARCHIVE_EOF) {
            rc = tome_set_error(TOME_ERR_NOT_FOUND, "%s: no member '%s'", path, name);
            goto done;
        }
        if (r < ARCHIVE_WARN) {
            rc = tome_set_error(TOME_ERR_FORMAT, "%s: corrupt zip before '%s': %s", path, name,
                                archive_error_string(a) ? archive_error_string(a) : "?");
            goto done;
        }
        const char *nm = archive_entry_pathname(ae);
        if (!nm || strcmp(nm, name) != 0)
            continue;
        if (archive_entry_is_encrypted(ae)) {
            rc = tome_set_error(TOME_ERR_UNSUPPORTED, "%s: member '%s' is encrypted", path, name);
            goto done;
        }
        out->len = 0;
        for (;;) {
            TOME_GOTO_IF(tome_buf_reserve(out, 65536) != TOME_OK, done, rc, TOME_ERR_NOMEM,
                         "%s: out of memory reading '%s'", path, name);
            la_ssize_t n = archive_read_data(a, out->data + out->len, 65536);
            if (n == 0)
                break;
            if (n < 0) {
                rc = tome_set_error(TOME_ERR_FORMAT, "%s: member '%s' is corrupt: %s", path, name,
                                    archive_error_string(a) ? archive_error_string(a) : "?");
                goto done;
            }
            out->len += (size_t)n;
            out->data[out->len] = '\0';
            if (out->len > max_bytes) {
                rc = tome_set_error(TOME_ERR_LIMIT, "%s: member '%s' is over %zu bytes decompressed",
                                    path, name, max_bytes);
                goto done;
            }
        }
        goto done;
    }
done:
    archive_read_free(a);
    return rc;
}

/* ------------------------------------------------------------ sniffing */
static int ends_with_ci(const char *s, const char *sfx)
{
    size_t n = strlen(s), k = strlen(sfx);
    return n >= k && strcasecmp(s + n - k, sfx) == 0;
}

/* Skips a BOM, whitespace and <!-- comments --> / <?xml ...?> at the start. */
static size_t skip_prolog(const uint8_t *d, size_t len)
{
    size_t i = 0;
    if (len >= 3 && memcmp(d, "\xef\xbb\xbf", 3) == 0)
        i = 3;
    for (int guard = 0; guard < 64; guard++) {
        while (i < len && isspace(d[i]))
            i++;
        const char *end = NULL;
        if (len - i >= 4 && memcmp(d + i, "<!--", 4) == 0)
            end = "-->";
        else if (len - i >= 2 && memcmp(d + i, "<?", 2) == 0)
            end = "?>";
        if (!end)
            break;
        const uint8_t *e = memmem(d + i, len - i, end, strlen(end));
        if (!e)
            return len;
        i = (size_t)(e - d) + strlen(end);
    }
    return i;
}

static int starts_ci(const uint8_t *d, size_t len, const char *p)
{
    size_t k = strlen(p);
    return len >= k && strncasecmp((const char *)d, p, k) == 0;
}

tome_doc_kind tome_doc_sniff(const char *path, const uint8_t *data, size_t len)
{
    if (!data || len < 4)
        return TOME_DOC_NONE;
    /* PDF: "%PDF-" at the start; readers accept it anywhere in the first
     * KiB, which tome only does for a file named .pdf (a source file that
     * writes PDFs may well contain the string near its top). */
    size_t scan = len < 1024 ? len : 1024;
    if (len >= 5 && memcmp(data, "%PDF-", 5) == 0)
        return TOME_DOC_PDF;
    if (path && ends_with_ci(path, ".pdf") && memmem(data, scan, "%PDF-", 5))
        return TOME_DOC_PDF;
    if (memcmp(data, "PK\x03\x04", 4) == 0 || memcmp(data, "PK\x05\x06", 4) == 0) {
        size_t n = 0;
        const char *mt = odf_mimetype(data, len, &n);
        if (mt)
            return prefix_n(mt, n, "application/vnd.oasis.opendocument.text") ? TOME_DOC_ODT
                                                                                : TOME_DOC_NONE;
        if (tome_zip_has_member(data, len, "word/document.xml"))
            return TOME_DOC_DOCX;
        return TOME_DOC_NONE;
    }
    if (len >= 4 && ((data[0] == 0xFF && data[1] == 0xFE) || (data[0] == 0xFE && data[1] == 0xFF)) &&
        !(data[2] == 0 && data[3] == 0)) {
        /* UTF-16 with a BOM (Windows "Unicode" saves): sniff its ASCII
         * transcription; the HTML parser reads the BOM itself */
        uint8_t a[512];
        size_t n = 0, le = data[0] == 0xFF;
        for (size_t k = 2; k + 1 < len && n < sizeof a; k += 2) {
            unsigned u = le ? (unsigned)data[k] | (unsigned)data[k + 1] << 8 : (unsigned)data[k] << 8 | data[k + 1];
            a[n++] = u && u < 0x80 ? (uint8_t)u : (uint8_t)'?';
        }
        size_t j = skip_prolog(a, n);
        if (starts_ci(a + j, n - j, "<!doctype html") || starts_ci(a + j, n - j, "<html") ||
            (path && (ends_with_ci(path, ".html") || ends_with_ci(path, ".htm") || ends_with_ci(path, ".xhtml")) &&
             j < n && a[j] == '<'))
            return TOME_DOC_HTML;
        return TOME_DOC_NONE;
    }
    size_t i = skip_prolog(data, len);
    if (starts_ci(data + i, len - i, "<!doctype html") || starts_ci(data + i, len - i, "<html"))
        return TOME_DOC_HTML;
    if (path && (ends_with_ci(path, ".html") || ends_with_ci(path, ".htm") ||
                 ends_with_ci(path, ".xhtml")) &&
        i < len && data[i] == '<' && !memchr(data, 0, len < 4096 ? len : 4096))
        return TOME_DOC_HTML;
    return TOME_DOC_NONE;
}

/* ------------------------------------------------------------ builder */
tome_status tome_doc_anchor(tome_doc_builder *b, tome_anchor_kind kind, uint32_t number)
{
    tome_doc_text *o = b->out;
    if (o->n_anchors && o->anchors[o->n_anchors - 1].offset == o->text.len &&
        o->anchors[o->n_anchors - 1].kind == (uint32_t)kind) {
        o->anchors[o->n_anchors - 1].number = number; /* nothing came between */
        return TOME_OK;
    }
    if (o->n_anchors == b->cap_anchors) {
        size_t cap = b->cap_anchors ? b->cap_anchors * 2 : 64;
        tome_anchor *p = realloc(o->anchors, cap * sizeof *p);
        if (!p)
            return tome_set_error(TOME_ERR_NOMEM, "out of memory for document anchors");
        o->anchors = p;
        b->cap_anchors = cap;
    }
    o->anchors[o->n_anchors++] = (tome_anchor){.offset = o->text.len, .kind = (uint32_t)kind,
                                               .number = number};
    return TOME_OK;
}

tome_status tome_doc_put(tome_doc_builder *b, const char *s, size_t n)
{
    tome_buf *t = &b->out->text;
    TOME_FORWARD(tome_buf_reserve(t, n));
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\0')
            continue;
        if (c == '\r') {
            if (i + 1 < n && s[i + 1] == '\n')
                continue;
            c = '\n';
        }
        t->data[t->len++] = c;
        if (c == '\n')
            b->line_has_text = 0;
        else if (c != ' ' && c != '\t')
            b->line_has_text = 1;
    }
    if (t->data)
        t->data[t->len] = '\0';
    b->pending_space = 0;
    return TOME_OK;
}

tome_status tome_doc_put_collapsed(tome_doc_builder *b, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' || s[i] == '\f' ||
            s[i] == '\v' || s[i] == '\0') {
            b->pending_space = 1;
            i++;
            continue;
        }
        size_t j = i;
        while (j < n && !(s[j] == ' ' || s[j] == '\t' || s[j] == '\n' || s[j] == '\r' ||
                          s[j] == '\f' || s[j] == '\v' || s[j] == '\0'))
            j++;
        if (b->pending_space && b->line_has_text)
            TOME_FORWARD(tome_buf_putc(&b->out->text, ' '));
        TOME_FORWARD(tome_doc_put(b, s + i, j - i));
        i = j;
    }
    return TOME_OK;
}

tome_status tome_doc_newline(tome_doc_builder *b)
{
    b->pending_space = 0;
    if (!b->line_has_text)
        return TOME_OK;
    /* trailing blanks of the line go */
    tome_buf *t = &b->out->text;
    while (t->len && (t->data[t->len - 1] == ' ' || t->data[t->len - 1] == '\t'))
        t->data[--t->len] = '\0';
    b->line_has_text = 0;
    return tome_buf_putc(t, '\n');
}

/* ------------------------------------------------------------ dispatch */
void tome_doc_text_free(tome_doc_text *d)
{
    if (!d)
        return;
    tome_buf_free(&d->text);
    free(d->anchors);
    d->anchors = NULL;
    d->n_anchors = 0;
    free(d->heads);
    d->heads = NULL;
    d->n_heads = 0;
}

tome_status tome_doc_extract(tome_doc_kind kind, const char *path, const uint8_t *data, size_t len,
                             tome_doc_text *out)
{
    if (!out || (!data && len))
        return tome_set_error(TOME_ERR_INVALID_ARG, "tome_doc_extract: missing argument");
    *out = (tome_doc_text){0};
    if (!path)
        path = "(document)";
    static const uint8_t empty[1];
    if (!data)
        data = empty;
    tome_status st;
    switch (kind) {
    case TOME_DOC_PDF: st = tome_doc_pdf_extract(path, data, len, out); break;
    case TOME_DOC_DOCX: st = tome_doc_docx_extract(path, data, len, out); break;
    case TOME_DOC_ODT: st = tome_doc_odt_extract(path, data, len, out); break;
    case TOME_DOC_HTML: st = tome_doc_html_extract(path, data, len, out); break;
    default:
        return tome_set_error(TOME_ERR_INVALID_ARG, "%s: not a document kind tome extracts", path);
    }
    if (st != TOME_OK) {
        tome_doc_text_free(out);
        return st;
    }
    if (!out->text.data) /* an empty document still has a (empty) string */
        TOME_FORWARD(tome_buf_reserve(&out->text, 1));
    return TOME_OK;
}
