/*
 * ingest/doc_docx.c — DOCX and ODT paragraphs, through libarchive + libxml2.
 *
 * The one XML member that holds the body (DOCX word/document.xml, ODT
 * content.xml) is decompressed into memory with a size cap and a ratio cap
 * (doc_impl.h), then parsed by libxml2 with no network, no DTD loading and
 * no entity substitution (XML_PARSE_NOENT is never set; entity reference
 * nodes are skipped, so a billion-laughs document expands nothing), and with
 * libxml2's default depth and text-node limits (XML_PARSE_HUGE is not set).
 *
 * Output: one line per non-empty paragraph, in document order, each preceded
 * by an anchor numbered 1, 2, ... over those paragraphs: TOME_ANCHOR_HEADING
 * for headings (DOCX: the paragraph style's outline level or name from
 * word/styles.xml, else a "Title"/"HeadingN" style id or a direct outlineLvl;
 * ODT: text:h), whose
 * line is prefixed with Markdown '#'s so outlines find them, else
 * TOME_ANCHOR_PARAGRAPH. A table row is one paragraph: its cells joined with
 * " | ". Line breaks inside a paragraph become '\n', tabs '\t'; list items
 * (ODT text:list, DOCX paragraphs with w:numPr) are prefixed with "- ",
 * indented two spaces per nesting level. The text may not grow past 4x the XML + 1 MiB
 * (ODT's <text:s text:c="N"/> expands). Elements are matched by local name (prefixes vary
 * between producers); DOCX mc:Fallback (a copy of mc:Choice, e.g. of a text
 * box), deleted text, the old place of moved text (w:moveFrom; it is read at
 * its w:moveTo), field codes and ODT annotations are skipped.
 *
 * Notes, headers and footers come after the body, so the body's paragraph
 * numbers do not depend on them: a footnote or endnote reference in the
 * text becomes "[footnote N]" / "[endnote N]" (DOCX: the note's id; ODT: its
 * citation), and each note is then a paragraph "[footnote N] text..." (DOCX
 * word/footnotes.xml and word/endnotes.xml, separator notes left out; ODT
 * text:note bodies, in order). Then the paragraphs of headers and footers,
 * each prefixed "[header] " / "[footer] " (DOCX word/headerN.xml and
 * word/footerN.xml, N = 1..64; ODT the master pages of styles.xml), each
 * distinct text once (the first-page, even and default headers usually
 * repeat each other). A broken or over-cap notes/header part leaves the
 * line "[tome: word/footnotes.xml not read: why]" instead of failing the
 * document; the ratio cap applies to each part and the size cap
 * (TOME_DOC_MAX_XML_BYTES) to all parts together, so 128 header parts of
 * 64 MB each cannot make one document decompress gigabytes.
 */
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ingest/doc_impl.h"

static pthread_once_t g_xml_once = PTHREAD_ONCE_INIT;
static void xml_init(void) { xmlInitParser(); }

static int is(const xmlNode *n, const char *local)
{
    return n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, local) == 0;
}

static const xmlChar *attr_local(const xmlNode *n, const char *local)
{
    for (const xmlAttr *a = n->properties; a; a = a->next)
        if (strcmp((const char *)a->name, local) == 0 && a->children &&
            a->children->type == XML_TEXT_NODE)
            return a->children->content;
    return NULL;
}

/* A paragraph style that makes headings (DOCX word/styles.xml). */
typedef struct style_level {
    char id[64];
    int level;
} style_level;
#define TOME_DOCX_MAX_STYLES 4096

typedef struct walk {
    style_level *styles; /* DOCX heading styles, from word/styles.xml */
    size_t n_styles;
    tome_doc_builder b;
    tome_buf para;     /* text of the paragraph being collected */
    uint32_t n_par;    /* paragraphs emitted so far             */
    size_t max_text;   /* output cap (text:s c="N" can expand)  */
    int odt;
    const char *part_prefix; /* "[header] " etc. before every paragraph */
    char note_prefix[48];    /* "[footnote N] " before the next paragraph */
    int in_notes;            /* writing notes: references inside are dropped */
    const xmlNode **notes;   /* ODT notes met in the body, in order */
    size_t n_notes, cap_notes;
    char **seen;             /* header/footer paragraphs already written */
    size_t n_seen;
    size_t xml_left;         /* decompressed XML the remaining parts may still use */
} walk;
#define TOME_DOCX_MAX_PARTS 64   /* word/header1..64.xml, footer1..64.xml */
#define TOME_DOC_MAX_SEEN 256    /* distinct header/footer paragraphs remembered */

static int blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n')
            return 0;
    return 1;
}

/* Emits w->para as one paragraph (if it has any text) and clears it. */
static tome_status emit(walk *w, int heading, const char *prefix)
{
    tome_status st = TOME_OK;
    if (w->b.out->text.len + w->para.len > w->max_text)
        return tome_set_error(TOME_ERR_LIMIT, "text expands to more than %zu bytes", w->max_text);
    if (w->para.len && !blank(w->para.data, w->para.len) && w->part_prefix) {
        /* header/footer: each distinct text once */
        for (size_t k = 0; k < w->n_seen; k++)
            if (strlen(w->seen[k]) == w->para.len && memcmp(w->seen[k], w->para.data, w->para.len) == 0) {
                w->para.len = 0;
                return TOME_OK;
            }
        if (w->n_seen < TOME_DOC_MAX_SEEN) {
            if (!w->seen && !(w->seen = calloc(TOME_DOC_MAX_SEEN, sizeof *w->seen)))
                return tome_set_error(TOME_ERR_NOMEM, "out of memory");
            if (!(w->seen[w->n_seen] = strndup(w->para.data, w->para.len)))
                return tome_set_error(TOME_ERR_NOMEM, "out of memory");
            w->n_seen++;
        }
    }
    if (w->para.len && !blank(w->para.data, w->para.len)) {
        w->n_par++;
        st = tome_doc_anchor(&w->b, heading ? TOME_ANCHOR_HEADING : TOME_ANCHOR_PARAGRAPH, w->n_par);
        if (st == TOME_OK && heading) {
            char h[8];
            int lvl = heading > 6 ? 6 : heading;
            memset(h, '#', (size_t)lvl);
            h[lvl] = ' ';
            st = tome_doc_put(&w->b, h, (size_t)lvl + 1);
        }
        if (st == TOME_OK && w->part_prefix)
            st = tome_doc_put(&w->b, w->part_prefix, strlen(w->part_prefix));
        if (st == TOME_OK && w->note_prefix[0]) {
            st = tome_doc_put(&w->b, w->note_prefix, strlen(w->note_prefix));
            w->note_prefix[0] = '\0';
        }
        if (st == TOME_OK && prefix)
            st = tome_doc_put(&w->b, prefix, strlen(prefix));
        if (st == TOME_OK)
            st = tome_doc_put(&w->b, w->para.data, w->para.len);
        if (st == TOME_OK)
            st = tome_doc_newline(&w->b);
    }
    w->para.len = 0;
    return st;
}

/* The character data directly under n (a DOCX w:t). */
static tome_status put_text(tome_buf *b, const xmlNode *n)
{
    for (const xmlNode *c = n->children; c; c = c->next)
        if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) && c->content)
            TOME_FORWARD(tome_buf_append(b, c->content, strlen((const char *)c->content)));
    return TOME_OK;
}

/* All character data below n, in order. */
static tome_status collect_text(tome_buf *b, const xmlNode *n)
{
    for (const xmlNode *c = n->children; c; c = c->next) {
        if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) && c->content)
            TOME_FORWARD(tome_buf_append(b, c->content, strlen((const char *)c->content)));
        else if (c->type == XML_ELEMENT_NODE)
            TOME_FORWARD(collect_text(b, c));
    }
    return TOME_OK;
}

/* ------------------------------------------------------------ DOCX */
static tome_status docx_inline(walk *w, const xmlNode *n)
{
    for (const xmlNode *c = n->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (is(c, "t"))
            TOME_FORWARD(put_text(&w->para, c));
        else if (is(c, "tab") || is(c, "ptab"))
            TOME_FORWARD(tome_buf_putc(&w->para, '\t'));
        else if (is(c, "br") || is(c, "cr"))
            TOME_FORWARD(tome_buf_putc(&w->para, '\n'));
        else if (is(c, "noBreakHyphen"))
            TOME_FORWARD(tome_buf_putc(&w->para, '-'));
        else if (is(c, "footnoteReference") || is(c, "endnoteReference")) {
            const xmlChar *id = attr_local(c, "id");
            if (id && !w->in_notes)
                TOME_FORWARD(tome_buf_appendf(&w->para, "[%s %.16s]", is(c, "footnoteReference") ? "footnote" : "endnote",
                                              (const char *)id));
        }
        else if (is(c, "pPr") || is(c, "rPr") || is(c, "instrText") || is(c, "delText") ||
                 is(c, "Fallback") || is(c, "del") || is(c, "moveFrom") || is(c, "commentReference"))
            continue; /* moveFrom: tracked move, the text is also under its moveTo */
        else if (is(c, "p")) { /* a paragraph nested in a text box or cell */
            if (w->para.len && w->para.data[w->para.len - 1] != ' ')
                TOME_FORWARD(tome_buf_putc(&w->para, ' '));
            TOME_FORWARD(docx_inline(w, c));
        } else
            TOME_FORWARD(docx_inline(w, c));
    }
    return TOME_OK;
}

/* Heading level named by a style id or name: "Title" 1, "Heading N" /
 * "headingN" N; else 0. */
static int name_level(const char *s)
{
    if (strcasecmp(s, "Title") == 0)
        return 1;
    if (strncasecmp(s, "heading", 7) != 0)
        return 0;
    s += 7;
    while (*s == ' ')
        s++;
    int lvl = atoi(s);
    return lvl >= 1 && lvl <= 9 ? lvl : 0;
}

/* Heading level of a w:p: its style's level (styles.xml: outline level or
 * name, so localized style ids such as "berschrift1" work), else the style
 * id itself, else a direct outlineLvl; 0 for body text. */
static int docx_heading(const walk *w, const xmlNode *p)
{
    for (const xmlNode *c = p->children; c; c = c->next) {
        if (!is(c, "pPr"))
            continue;
        for (const xmlNode *d = c->children; d; d = d->next) {
            const xmlChar *v = (d->type == XML_ELEMENT_NODE) ? attr_local(d, "val") : NULL;
            if (!v)
                continue;
            const char *s = (const char *)v;
            if (is(d, "pStyle")) {
                for (size_t k = 0; k < w->n_styles; k++)
                    if (strcmp(w->styles[k].id, s) == 0)
                        return w->styles[k].level;
                int lvl = name_level(s);
                if (lvl)
                    return lvl;
            } else if (is(d, "outlineLvl")) {
                int lvl = atoi(s);
                if (lvl >= 0 && lvl <= 8)
                    return lvl + 1;
            }
        }
    }
    return 0;
}

/* List level (0..8) of a numbered or bulleted w:p (w:numPr with a numId
 * other than 0), else -1. */
static int docx_list_level(const xmlNode *p)
{
    for (const xmlNode *c = p->children; c; c = c->next) {
        if (!is(c, "pPr"))
            continue;
        for (const xmlNode *d = c->children; d; d = d->next) {
            if (!is(d, "numPr"))
                continue;
            int lvl = 0, num = -1;
            for (const xmlNode *e = d->children; e; e = e->next) {
                const xmlChar *v = attr_local(e, "val");
                if (v && is(e, "ilvl"))
                    lvl = atoi((const char *)v);
                else if (v && is(e, "numId"))
                    num = atoi((const char *)v);
            }
            if (num == 0)
                return -1;
            return lvl < 0 ? 0 : lvl > 8 ? 8 : lvl;
        }
    }
    return -1;
}

/* Reads the heading styles of word/styles.xml into w->styles. Optional: a
 * missing or broken styles part just means no style table. */
static void load_styles(walk *w, const char *path, const uint8_t *data, size_t len)
{
    tome_buf xml = {0};
    if (tome_zip_read_member(path, data, len, "word/styles.xml", (size_t)8 << 20, &xml) != TOME_OK ||
        xml.len == 0) {
        tome_buf_free(&xml);
        tome_clear_error();
        return;
    }
    xmlDoc *doc = xmlReadMemory(xml.data, (int)xml.len, "styles.xml", NULL,
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    const xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
    for (const xmlNode *st = root ? root->children : NULL; st; st = st->next) {
        if (!is(st, "style") || w->n_styles >= TOME_DOCX_MAX_STYLES)
            continue;
        const xmlChar *id = attr_local(st, "styleId");
        if (!id || strlen((const char *)id) >= sizeof w->styles[0].id)
            continue;
        int level = 0;
        for (const xmlNode *c = st->children; c && !level; c = c->next) {
            if (is(c, "pPr")) {
                for (const xmlNode *d = c->children; d; d = d->next) {
                    const xmlChar *v = is(d, "outlineLvl") ? attr_local(d, "val") : NULL;
                    if (v && atoi((const char *)v) >= 0 && atoi((const char *)v) <= 8)
                        level = atoi((const char *)v) + 1;
                }
            } else if (is(c, "name")) {
                const xmlChar *v = attr_local(c, "val");
                if (v)
                    level = name_level((const char *)v);
            }
        }
        if (!w->styles && !(w->styles = calloc(TOME_DOCX_MAX_STYLES, sizeof *w->styles)))
            break;
        snprintf(w->styles[w->n_styles].id, sizeof w->styles[0].id, "%s", (const char *)id);
        w->styles[w->n_styles++].level = level; /* level 0 too: the style is body text */
    }
    if (doc)
        xmlFreeDoc(doc);
    tome_buf_free(&xml);
}

static tome_status docx_cell_text(walk *w, const xmlNode *tc)
{
    return docx_inline(w, tc);
}

static tome_status docx_table(walk *w, const xmlNode *tbl);

static tome_status docx_row(walk *w, const xmlNode *tr)
{
    int first = 1;
    for (const xmlNode *c = tr->children; c; c = c->next) {
        const xmlNode *tc = c;
        if (is(c, "sdt")) /* a content control wrapping a cell */
            for (const xmlNode *d = c->children; d; d = d->next)
                if (is(d, "sdtContent"))
                    for (tc = d->children; tc && !is(tc, "tc"); tc = tc->next)
                        ;
        if (!tc || !is(tc, "tc"))
            continue;
        if (!first)
            TOME_FORWARD(tome_buf_append(&w->para, " | ", 3));
        first = 0;
        TOME_FORWARD(docx_cell_text(w, tc));
    }
    return emit(w, 0, NULL);
}

static tome_status docx_table(walk *w, const xmlNode *tbl)
{
    for (const xmlNode *c = tbl->children; c; c = c->next) {
        if (is(c, "tr"))
            TOME_FORWARD(docx_row(w, c));
        else if (is(c, "sdt") || is(c, "sdtContent") || is(c, "customXml"))
            TOME_FORWARD(docx_table(w, c));
    }
    return TOME_OK;
}

static tome_status docx_block(walk *w, const xmlNode *n)
{
    for (const xmlNode *c = n->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE || is(c, "sectPr") || is(c, "del") || is(c, "moveFrom"))
            continue;
        if (is(c, "p")) {
            TOME_FORWARD(docx_inline(w, c));
            int lvl = docx_heading(w, c), item = lvl ? -1 : docx_list_level(c);
            char pre[2 * 9 + 3];
            if (item >= 0) {
                memset(pre, ' ', 2 * (size_t)item);
                memcpy(pre + 2 * item, "- ", 3);
            }
            TOME_FORWARD(emit(w, lvl, item >= 0 ? pre : NULL));
        } else if (is(c, "tbl")) {
            TOME_FORWARD(docx_table(w, c));
        } else {
            TOME_FORWARD(docx_block(w, c)); /* body, sdt, sdtContent, customXml... */
        }
    }
    return TOME_OK;
}

/* Notes (word/footnotes.xml, word/endnotes.xml), one paragraph or more
 * each, the first prefixed "[footnote N] "; separator notes have a w:type. */
static tome_status docx_notes(walk *w, const xmlNode *root, const char *kind)
{
    for (const xmlNode *c = root ? root->children : NULL; c; c = c->next) {
        const xmlChar *type = attr_local(c, "type"), *id = attr_local(c, "id");
        if (!(is(c, "footnote") || is(c, "endnote")) || !id || (type && strcmp((const char *)type, "normal") != 0))
            continue;
        snprintf(w->note_prefix, sizeof w->note_prefix, "[%s %.16s] ", kind, (const char *)id);
        TOME_FORWARD(docx_block(w, c));
        w->note_prefix[0] = '\0';
    }
    return TOME_OK;
}

/* ------------------------------------------------------------ ODT */
static tome_status odt_inline(walk *w, const xmlNode *n)
{
    for (const xmlNode *c = n->children; c; c = c->next) {
        if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) {
            if (!c->content)
                continue;
            for (const xmlChar *s = c->content; *s; s++) {
                char ch = (char)*s;
                TOME_FORWARD(tome_buf_putc(&w->para, (ch == '\n' || ch == '\t' || ch == '\r') ? ' ' : ch));
            }
            continue;
        }
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (is(c, "s")) {
            const xmlChar *cnt = attr_local(c, "c");
            int k = cnt ? atoi((const char *)cnt) : 1;
            if (k < 1)
                k = 1;
            if (k > 1000)
                k = 1000;
            if (w->para.len + (size_t)k > w->max_text)
                return tome_set_error(TOME_ERR_LIMIT, "text expands to more than %zu bytes",
                                      w->max_text);
            for (int i = 0; i < k; i++)
                TOME_FORWARD(tome_buf_putc(&w->para, ' '));
        } else if (is(c, "tab")) {
            TOME_FORWARD(tome_buf_putc(&w->para, '\t'));
        } else if (is(c, "line-break")) {
            TOME_FORWARD(tome_buf_putc(&w->para, '\n'));
        } else if (is(c, "note")) {
            if (w->in_notes)
                continue;
            const xmlChar *cls = attr_local(c, "note-class");
            int endnote = cls && strcmp((const char *)cls, "endnote") == 0;
            tome_buf cit = {0};
            for (const xmlNode *d = c->children; d; d = d->next)
                if (is(d, "note-citation"))
                    TOME_FORWARD(collect_text(&cit, d));
            /* a note without a citation is numbered by its order */
            tome_status st = cit.len ? tome_buf_appendf(&w->para, "[%s %.16s]", endnote ? "endnote" : "footnote", cit.data)
                                     : tome_buf_appendf(&w->para, "[%s %zu]", endnote ? "endnote" : "footnote", w->n_notes + 1);
            tome_buf_free(&cit);
            TOME_FORWARD(st);
            if (w->n_notes == w->cap_notes) {
                size_t cap = w->cap_notes ? 2 * w->cap_notes : 16;
                const xmlNode **nn = realloc(w->notes, cap * sizeof *nn);
                if (!nn)
                    return tome_set_error(TOME_ERR_NOMEM, "out of memory");
                w->notes = nn;
                w->cap_notes = cap;
            }
            w->notes[w->n_notes++] = c;
        } else if (is(c, "annotation") || is(c, "annotation-end") || is(c, "tracked-changes")) {
            continue;
        } else if (is(c, "p") || is(c, "h")) {
            if (w->para.len && w->para.data[w->para.len - 1] != ' ')
                TOME_FORWARD(tome_buf_putc(&w->para, ' '));
            TOME_FORWARD(odt_inline(w, c));
        } else {
            TOME_FORWARD(odt_inline(w, c));
        }
    }
    return TOME_OK;
}

static tome_status odt_block(walk *w, const xmlNode *n, int in_list);

static tome_status odt_rows(walk *w, const xmlNode *n)
{
    for (const xmlNode *c = n->children; c; c = c->next) {
        if (is(c, "table-row")) {
            int first = 1;
            for (const xmlNode *cell = c->children; cell; cell = cell->next) {
                if (!is(cell, "table-cell"))
                    continue;
                if (!first)
                    TOME_FORWARD(tome_buf_append(&w->para, " | ", 3));
                first = 0;
                TOME_FORWARD(odt_inline(w, cell));
            }
            TOME_FORWARD(emit(w, 0, NULL));
        } else if (is(c, "table-header-rows") || is(c, "table-rows") || is(c, "table-row-group")) {
            TOME_FORWARD(odt_rows(w, c));
        }
    }
    return TOME_OK;
}

static tome_status odt_block(walk *w, const xmlNode *n, int in_list)
{
    for (const xmlNode *c = n->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE || is(c, "tracked-changes") || is(c, "sequence-decls") ||
            is(c, "forms") || is(c, "variable-decls") || is(c, "user-field-decls"))
            continue;
        if (is(c, "p") || is(c, "h")) {
            int lvl = 0;
            if (is(c, "h")) {
                const xmlChar *l = attr_local(c, "outline-level");
                lvl = l ? atoi((const char *)l) : 1;
                if (lvl < 1)
                    lvl = 1;
            }
            TOME_FORWARD(odt_inline(w, c));
            char pre[2 * 9 + 3];
            int depth = in_list > 9 ? 9 : in_list;
            if (depth) {
                memset(pre, ' ', 2 * (size_t)(depth - 1));
                memcpy(pre + 2 * (depth - 1), "- ", 3);
            }
            TOME_FORWARD(emit(w, lvl, depth && !lvl ? pre : NULL));
        } else if (is(c, "list")) {
            TOME_FORWARD(odt_block(w, c, in_list + 1));
        } else if (is(c, "list-item") || is(c, "list-header")) {
            TOME_FORWARD(odt_block(w, c, in_list ? in_list : 1));
        } else if (is(c, "table")) {
            TOME_FORWARD(odt_rows(w, c));
        } else {
            TOME_FORWARD(odt_block(w, c, in_list)); /* body, text, section, frame... */
        }
    }
    return TOME_OK;
}

/* The bodies of the notes met in the body, in order. */
static tome_status odt_notes(walk *w)
{
    w->in_notes = 1;
    for (size_t k = 0; k < w->n_notes; k++) {
        const xmlNode *note = w->notes[k];
        const xmlChar *cls = attr_local(note, "note-class");
        tome_buf cit = {0};
        for (const xmlNode *d = note->children; d; d = d->next)
            if (is(d, "note-citation"))
                TOME_FORWARD(collect_text(&cit, d));
        const char *kind = cls && strcmp((const char *)cls, "endnote") == 0 ? "endnote" : "footnote";
        if (cit.len)
            snprintf(w->note_prefix, sizeof w->note_prefix, "[%s %.16s] ", kind, cit.data);
        else
            snprintf(w->note_prefix, sizeof w->note_prefix, "[%s %zu] ", kind, k + 1);
        tome_buf_free(&cit);
        for (const xmlNode *d = note->children; d; d = d->next)
            if (is(d, "note-body"))
                TOME_FORWARD(odt_block(w, d, 0));
        w->note_prefix[0] = '\0';
    }
    return TOME_OK;
}

/* Headers and footers of the master pages of styles.xml. */
static tome_status odt_master_pages(walk *w, const xmlNode *n)
{
    for (const xmlNode *c = n ? n->children : NULL; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        int hdr = is(c, "header") || is(c, "header-left") || is(c, "header-first");
        int ftr = is(c, "footer") || is(c, "footer-left") || is(c, "footer-first");
        if (hdr || ftr) {
            w->part_prefix = hdr ? "[header] " : "[footer] ";
            TOME_FORWARD(odt_block(w, c, 0));
            w->part_prefix = NULL;
        } else if (is(c, "master-styles") || is(c, "master-page")) {
            TOME_FORWARD(odt_master_pages(w, c));
        }
    }
    return TOME_OK;
}

/* ------------------------------------------------------------ common */
/* Reads member of the zip and parses it; *doc is NULL with an error status
 * when the member is missing, over the caps or not well-formed. */
static tome_status parse_part(const char *path, const uint8_t *data, size_t len, const char *member,
                              size_t *xml_left, xmlDoc **doc, size_t *xml_len)
{
    *doc = NULL;
    *xml_len = 0;
    tome_buf xml = {0};
    size_t cap = *xml_left;
    double by_ratio = TOME_DOC_MAX_XML_RATIO * (double)len;
    if (by_ratio < (double)(1 << 20))
        by_ratio = (double)(1 << 20);
    if (by_ratio < (double)cap)
        cap = (size_t)by_ratio;
    if (cap == 0) /* the parts before used up the document's XML cap */
        return tome_set_error(TOME_ERR_LIMIT, "%s: %s: the document's parts are over %zu bytes of XML together",
                              path, member, (size_t)TOME_DOC_MAX_XML_BYTES);
    tome_status st = tome_zip_read_member(path, data, len, member, cap, &xml);
    if (st != TOME_OK) {
        tome_buf_free(&xml);
        return st;
    }
    *xml_left -= xml.len < *xml_left ? xml.len : *xml_left;
    if (xml.len > (size_t)0x7fffffff) {
        tome_buf_free(&xml);
        return tome_set_error(TOME_ERR_LIMIT, "%s: %s too large", path, member);
    }
    *doc = xmlReadMemory(xml.data ? xml.data : "", (int)xml.len, member, NULL,
                         XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA);
    *xml_len = xml.len;
    tome_buf_free(&xml);
    if (!*doc) {
        const xmlError *e = xmlGetLastError();
        char msg[256] = "";
        if (e && e->message) {
            snprintf(msg, sizeof msg, "%s", e->message);
            msg[strcspn(msg, "\n")] = '\0'; /* libxml2 ends messages with '\n' */
        }
        return tome_set_error(TOME_ERR_FORMAT, "%s: %s is not well-formed XML: %s (line %d)", path,
                              member, *msg ? msg : "parse error", e ? e->line : 0);
    }
    return TOME_OK;
}

/* A notes/header/footer part after the body: a missing part is nothing; a
 * part that cannot be read leaves one "[tome: ...]" line (no anchor of its
 * own); memory exhaustion and the text cap stop the document. */
static tome_status extra_part(walk *w, const char *path, const uint8_t *data, size_t len,
                              const char *member, const char *kind)
{
    if (!tome_zip_has_member(data, len, member))
        return TOME_OK;
    xmlDoc *doc;
    size_t xml_len;
    tome_status st = parse_part(path, data, len, member, &w->xml_left, &doc, &xml_len);
    if (st == TOME_ERR_NOMEM)
        return st;
    if (st != TOME_OK) {
        const char *why = tome_last_error();
        size_t skip = strlen(path);
        if (strncmp(why, path, skip) == 0 && strncmp(why + skip, ": ", 2) == 0)
            why += skip + 2; /* the path is the file's own: not repeated */
        char line[400];
        int n = snprintf(line, sizeof line, "[tome: %s not read: %s]\n", member, why);
        if (n < 0)
            n = 0;
        if ((size_t)n >= sizeof line)
            n = (int)sizeof line - 1, line[n - 1] = '\n';
        tome_clear_error();
        return tome_doc_put(&w->b, line, (size_t)n);
    }
    w->max_text += 4 * xml_len;
    const xmlNode *root = xmlDocGetRootElement(doc);
    if (strcmp(kind, "styles") == 0) {
        w->in_notes = 1; /* a note in a header: its body is not read, so no marker either */
        st = odt_master_pages(w, root);
        w->in_notes = 0;
    } else if (strcmp(kind, "header") == 0 || strcmp(kind, "footer") == 0) {
        w->part_prefix = kind[0] == 'h' ? "[header] " : "[footer] ";
        st = root ? docx_block(w, root) : TOME_OK;
        w->part_prefix = NULL;
    } else {
        w->in_notes = 1;
        st = docx_notes(w, root, kind);
        w->in_notes = 0;
    }
    xmlFreeDoc(doc);
    return st;
}

static tome_status extract_xml(const char *path, const uint8_t *data, size_t len, const char *member,
                               int odt, tome_doc_text *out)
{
    pthread_once(&g_xml_once, xml_init);
    xmlDoc *doc;
    size_t xml_len, xml_left = TOME_DOC_MAX_XML_BYTES;
    tome_status st = parse_part(path, data, len, member, &xml_left, &doc, &xml_len);
    if (st != TOME_OK)
        return st;
    walk w = {.b = {.out = out}, .odt = odt, .max_text = 4 * xml_len + ((size_t)1 << 20), .xml_left = xml_left};
    const xmlNode *root = xmlDocGetRootElement(doc);
    if (!odt)
        load_styles(&w, path, data, len);
    if (root)
        st = odt ? odt_block(&w, root, 0) : docx_block(&w, root);
    if (st == TOME_OK && odt) {
        st = odt_notes(&w);
        if (st == TOME_OK)
            st = extra_part(&w, path, data, len, "styles.xml", "styles");
    } else if (st == TOME_OK) {
        st = extra_part(&w, path, data, len, "word/footnotes.xml", "footnote");
        if (st == TOME_OK)
            st = extra_part(&w, path, data, len, "word/endnotes.xml", "endnote");
        for (int k = 0; k < 2 * TOME_DOCX_MAX_PARTS && st == TOME_OK; k++) {
            char name[40];
            snprintf(name, sizeof name, "word/%s%d.xml", k < TOME_DOCX_MAX_PARTS ? "header" : "footer",
                     k % TOME_DOCX_MAX_PARTS + 1);
            st = extra_part(&w, path, data, len, name, k < TOME_DOCX_MAX_PARTS ? "header" : "footer");
        }
    }
    free(w.styles);
    for (size_t k = 0; k < w.n_seen; k++)
        free(w.seen[k]);
    free(w.seen);
    free(w.notes);
    if (st != TOME_OK)
        st = tome_error_prefix(st, "%s: %s", path, member);
    tome_buf_free(&w.para);
    xmlFreeDoc(doc);
    return st;
}

tome_status tome_doc_docx_extract(const char *path, const uint8_t *data, size_t len, tome_doc_text *out)
{
    return extract_xml(path, data, len, "word/document.xml", 0, out);
}

tome_status tome_doc_odt_extract(const char *path, const uint8_t *data, size_t len, tome_doc_text *out)
{
    return extract_xml(path, data, len, "content.xml", 1, out);
}
