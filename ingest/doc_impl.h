/*
 * ingest/doc_impl.h — private helpers shared by archive.c and doc_*.c.
 *
 *  - zip directory probing without decompressing anything (used by the
 *    sniffers: a DOCX/ODT/XLSX is a zip, but it is a document, not an archive);
 *  - reading one named member of an in-memory zip through libarchive with a
 *    size cap (DOCX word/document.xml, ODT content.xml);
 *  - tome_doc_builder: the UTF-8 text under construction plus its anchors,
 *    so every extractor emits text and anchors the same way;
 *  - the per-format extractors called by tome_doc_extract (doc.c).
 *
 * Nothing here writes to disk; every buffer is owned by its caller.
 */
#ifndef TOME_DOC_IMPL_H
#define TOME_DOC_IMPL_H

#include "ingest/ingest_impl.h"

/* Largest XML member (document.xml / content.xml) a DOCX/ODT may have after
 * decompression, and the largest ratio of that to the whole file's size. */
#define TOME_DOC_MAX_XML_BYTES ((size_t)64 << 20)
#define TOME_DOC_MAX_XML_RATIO 400.0

/* Nonzero when the zip in data has a member called name (looked up in the
 * central directory, or in the local headers when the directory is missing). */
int tome_zip_has_member(const uint8_t *data, size_t len, const char *name);

/* Nonzero when the zip in data ends with an end-of-central-directory record
 * (a zip cut short loses it; its members can still be read one by one). */
int tome_zip_has_eocd(const uint8_t *data, size_t len);

/* Nonzero when data is a zip that is an office document of any kind (OOXML:
 * "[Content_Types].xml"; OpenDocument: a "mimetype" member naming an
 * application/vnd.oasis.opendocument.* type). */
int tome_zip_is_office(const uint8_t *data, size_t len);

/* What an office zip is when tome does not extract its text (XLSX, PPTX,
 * ODS, ODP...): a static description, or NULL (not one of those). */
const char *tome_doc_unsupported_office(const uint8_t *data, size_t len);

/* Reads member name of the zip in data into out (NUL-terminated). Refuses
 * (TOME_ERR_LIMIT) more than max_bytes, measured while decompressing.
 * TOME_ERR_NOT_FOUND when there is no such member; errors name path. */
tome_status tome_zip_read_member(const char *path, const uint8_t *data, size_t len,
                                 const char *name, size_t max_bytes, tome_buf *out);

/* ------------------------------------------------------------ text builder */
typedef struct tome_doc_builder {
    tome_doc_text *out;
    size_t cap_anchors;
    int line_has_text;  /* something other than spaces since the last '\n' */
    int pending_space;  /* collapsed whitespace waiting for the next word   */
} tome_doc_builder;

/* Appends an anchor at the current end of the text. */
tome_status tome_doc_anchor(tome_doc_builder *b, tome_anchor_kind kind, uint32_t number);
/* Appends bytes verbatim (no collapsing), dropping NUL and '\r' (a "\r\n" or
 * lone '\r' becomes '\n'). */
tome_status tome_doc_put(tome_doc_builder *b, const char *s, size_t n);
/* Appends text with HTML-style whitespace collapsing: runs of spaces, tabs and
 * newlines become one space, none at the start of a line. */
tome_status tome_doc_put_collapsed(tome_doc_builder *b, const char *s, size_t n);
/* Ends the current line if it has text (pending whitespace is dropped). */
tome_status tome_doc_newline(tome_doc_builder *b);

/* ------------------------------------------------------------ extractors */
tome_status tome_doc_pdf_extract(const char *path, const uint8_t *data, size_t len, tome_doc_text *out);
tome_status tome_doc_docx_extract(const char *path, const uint8_t *data, size_t len, tome_doc_text *out);
tome_status tome_doc_odt_extract(const char *path, const uint8_t *data, size_t len, tome_doc_text *out);
tome_status tome_doc_html_extract(const char *path, const uint8_t *data, size_t len, tome_doc_text *out);

#endif /* TOME_DOC_IMPL_H */
