/*
 * ingest/doc_html.c — HTML to plain text with heading anchors (libxml2).
 *
 * libxml2's HTML parser builds the tree (no network, errors and warnings off;
 * it decodes entities). Bytes that are valid UTF-8 are parsed as UTF-8;
 * anything else is left to libxml2's detection (BOM, <meta charset>).
 * Documents nested deeper than libxml2's limit (256) are cut there, with a
 * note line at the end of the text saying so.
 * The tree is then walked without recursion (parent/next pointers), because
 * HTML nesting depth is not bounded by the parser:
 *   - script, style, head (with its title), noscript, template, svg, math,
 *     iframe, object, select and comments produce nothing;
 *   - block elements (p, div, li, tr, h1-h6, pre, table, section, ...) start
 *     and end lines; br is a line break; td/th cells are joined with " | ";
 *     list items start with "- ";
 *   - text outside <pre> has its whitespace collapsed; inside <pre> it is
 *     kept verbatim;
 *   - each h1..h6 gets a TOME_ANCHOR_HEADING anchor whose number is its
 *     paragraph (non-empty line-block) ordinal, and is written with
 *     Markdown '#'s so outlines find it.
 */
#include <libxml/HTMLparser.h>
#include <libxml/tree.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>

#include "ingest/doc_impl.h"

static pthread_once_t g_html_once = PTHREAD_ONCE_INIT;
static void html_init(void) { xmlInitParser(); }

static int in_list(const char *name, const char *const *list)
{
    for (; *list; list++)
        if (strcasecmp(name, *list) == 0)
            return 1;
    return 0;
}

static const char *const k_skip[] = {"script", "style", "head", "noscript", "template", "svg",
                                     "math", "iframe", "object", "select", "title", NULL};
static const char *const k_block[] = {
    "address", "article", "aside", "blockquote", "body", "caption", "center", "dd", "details",
    "dialog", "dir", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form",
    "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "html", "legend", "li", "main", "menu",
    "nav", "ol", "p", "pre", "section", "summary", "table", "tbody", "thead", "tfoot", "tr",
    "ul", NULL};

typedef struct html_walk {
    tome_doc_builder b;
    uint32_t n_par; /* non-empty blocks ended so far */
    int pre;        /* depth of <pre> elements       */
    int cells;      /* cells started in the current row */
} html_walk;

static tome_status end_block(html_walk *w)
{
    if (w->b.line_has_text)
        w->n_par++;
    return tome_doc_newline(&w->b);
}

static int heading_level(const char *name)
{
    if ((name[0] == 'h' || name[0] == 'H') && name[1] >= '1' && name[1] <= '6' && name[2] == '\0')
        return name[1] - '0';
    return 0;
}

/* Returns 1 when the walker should descend into n. */
static tome_status enter(html_walk *w, const xmlNode *n, int *descend)
{
    *descend = 0;
    if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) {
        if (!n->content)
            return TOME_OK;
        size_t k = strlen((const char *)n->content);
        if (w->pre)
            return tome_doc_put(&w->b, (const char *)n->content, k);
        return tome_doc_put_collapsed(&w->b, (const char *)n->content, k);
    }
    if (n->type != XML_ELEMENT_NODE && n->type != XML_HTML_DOCUMENT_NODE &&
        n->type != XML_DOCUMENT_NODE)
        return TOME_OK;
    if (n->type != XML_ELEMENT_NODE) {
        *descend = 1;
        return TOME_OK;
    }
    const char *name = (const char *)n->name;
    if (in_list(name, k_skip))
        return TOME_OK;
    *descend = 1;
    if (strcasecmp(name, "br") == 0) {
        /* a hard line break, even on an empty line inside <pre> */
        if (w->pre)
            return tome_doc_put(&w->b, "\n", 1);
        return end_block(w);
    }
    if (strcasecmp(name, "td") == 0 || strcasecmp(name, "th") == 0) {
        if (w->cells++ > 0 && w->b.line_has_text)
            TOME_FORWARD(tome_doc_put(&w->b, " | ", 3));
        w->b.pending_space = 0;
        return TOME_OK;
    }
    if (!in_list(name, k_block))
        return TOME_OK;
    TOME_FORWARD(end_block(w));
    if (strcasecmp(name, "tr") == 0)
        w->cells = 0;
    int lvl = heading_level(name);
    if (lvl) {
        char h[8];
        memset(h, '#', (size_t)lvl);
        h[lvl] = ' ';
        TOME_FORWARD(tome_doc_anchor(&w->b, TOME_ANCHOR_HEADING, w->n_par + 1));
        TOME_FORWARD(tome_doc_put(&w->b, h, (size_t)lvl + 1));
        w->b.line_has_text = 0; /* "## " alone is not text yet */
    } else if (strcasecmp(name, "li") == 0) {
        TOME_FORWARD(tome_doc_put(&w->b, "- ", 2));
        w->b.line_has_text = 0;
    } else if (strcasecmp(name, "pre") == 0) {
        w->pre++;
    }
    return TOME_OK;
}

static tome_status leave(html_walk *w, const xmlNode *n)
{
    if (n->type != XML_ELEMENT_NODE)
        return TOME_OK;
    const char *name = (const char *)n->name;
    if (in_list(name, k_skip) || !in_list(name, k_block))
        return TOME_OK;
    if (strcasecmp(name, "pre") == 0 && w->pre > 0) {
        w->pre--;
        /* end the last pre line even if it is only blanks */
        const tome_buf *tx = &w->b.out->text;
        w->b.line_has_text = tx->len && tx->data[tx->len - 1] != '\n';
    }
    int lvl = heading_level(name);
    tome_buf *t = &w->b.out->text;
    if (lvl && !w->b.line_has_text) {
        /* an empty heading: take back its "## " and its anchor */
        if (t->len >= (size_t)lvl + 1 && memcmp(t->data + t->len - lvl - 1, "######", (size_t)lvl) == 0) {
            t->len -= (size_t)lvl + 1;
            t->data[t->len] = '\0';
        }
        tome_doc_text *o = w->b.out;
        if (o->n_anchors && o->anchors[o->n_anchors - 1].offset == t->len)
            o->n_anchors--;
        return TOME_OK;
    }
    if (!lvl && strcasecmp(name, "li") == 0 && !w->b.line_has_text && t->len >= 2 &&
        memcmp(t->data + t->len - 2, "- ", 2) == 0) {
        t->len -= 2; /* an empty list item */
        t->data[t->len] = '\0';
        return TOME_OK;
    }
    return end_block(w);
}

static int valid_utf8(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t k = (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2 : (c & 0xf8) == 0xf0 ? 3 : 0;
        if (!k || c == 0xc0 || c == 0xc1 || c > 0xf4 || n - i <= k)
            return 0;
        for (size_t j = 1; j <= k; j++)
            if ((s[i + j] & 0xc0) != 0x80)
                return 0;
        i += k + 1;
    }
    return 1;
}

tome_status tome_doc_html_extract(const char *path, const uint8_t *data, size_t len, tome_doc_text *out)
{
    pthread_once(&g_html_once, html_init);
    if (len > (size_t)0x7fffffff)
        return tome_set_error(TOME_ERR_LIMIT, "%s: HTML larger than 2 GiB", path);
    if (len == 0)
        return TOME_OK;
    const char *enc = valid_utf8(data, len) ? "UTF-8" : NULL;
    htmlParserCtxtPtr ctxt = htmlNewParserCtxt();
    if (!ctxt)
        return tome_set_error(TOME_ERR_NOMEM, "%s: cannot allocate an HTML parser", path);
    htmlDocPtr doc = htmlCtxtReadMemory(ctxt, (const char *)data, (int)len, NULL, enc,
                                        HTML_PARSE_NONET | HTML_PARSE_NOERROR |
                                            HTML_PARSE_NOWARNING | HTML_PARSE_COMPACT);
    /* libxml2 halts (instate EOF + internal error) at its depth limit */
    int halted = ctxt->instate == XML_PARSER_EOF && ctxt->errNo == XML_ERR_INTERNAL_ERROR;
    htmlFreeParserCtxt(ctxt);
    if (!doc)
        return tome_set_error(TOME_ERR_FORMAT, "%s: unparsable HTML", path);

    html_walk w = {.b = {.out = out}};
    tome_status st = TOME_OK;
    const xmlNode *root = (const xmlNode *)doc;
    const xmlNode *n = root;
    while (n && st == TOME_OK) {
        int descend = 0;
        st = enter(&w, n, &descend);
        if (st != TOME_OK)
            break;
        if (descend && n->children) {
            n = n->children;
            continue;
        }
        if (descend)
            st = leave(&w, n);
        /* climb until a next sibling exists, leaving every finished parent */
        while (n && st == TOME_OK) {
            if (n == root) {
                n = NULL;
                break;
            }
            if (n->next) {
                n = n->next;
                break;
            }
            n = n->parent;
            if (n && n != root)
                st = leave(&w, n);
        }
    }
    if (st == TOME_OK)
        st = end_block(&w);
    if (st == TOME_OK && halted) {
        static const char note[] = "[tome: HTML cut here: nested deeper than the parser's limit]\n";
        st = tome_doc_put(&w.b, note, sizeof note - 1);
    }
    xmlFreeDoc(doc);
    return st;
}
