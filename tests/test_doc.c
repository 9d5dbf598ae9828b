/* tests/test_doc.c — ingest/doc*.c: sniffing, PDF pages (poppler), DOCX and
 * ODT paragraphs (libxml2 over libarchive), HTML to text; corrupt input and
 * silence on stderr; the sample contracts from scripts/make_samples.py. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arch_fixtures.h"
#include "ingest/ingest_impl.h"
#include "tt.h"

/* ------------------------------------------------------------ helpers */
static const char k_ct[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n"
    "<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">"
    "<Default Extension=\"xml\" ContentType=\"application/xml\"/></Types>";

static fx_bytes make_docx(const char *body)
{
    char *xml = malloc(strlen(body) + 1024);
    sprintf(xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n"
            "<w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\" "
            "xmlns:mc=\"http://schemas.openxmlformats.org/markup-compatibility/2006\">"
            "<w:body>%s<w:sectPr/></w:body></w:document>",
            body);
    fx_member m[] = {{"[Content_Types].xml", k_ct, strlen(k_ct)},
                     {"_rels/.rels", "<Relationships/>", 16},
                     {"word/document.xml", xml, strlen(xml)}};
    fx_bytes b = fx_archive("zip", NULL, NULL, m, 3);
    free(xml);
    return b;
}

static fx_bytes make_odt(const char *body)
{
    char *xml = malloc(strlen(body) + 1024);
    sprintf(xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<office:document-content xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\" "
            "xmlns:text=\"urn:oasis:names:tc:opendocument:xmlns:text:1.0\" "
            "xmlns:table=\"urn:oasis:names:tc:opendocument:xmlns:table:1.0\">"
            "<office:body><office:text>%s</office:text></office:body></office:document-content>",
            body);
    const char *mt = "application/vnd.oasis.opendocument.text";
    fx_member m[] = {{"mimetype", mt, strlen(mt)},
                     {"content.xml", xml, strlen(xml)},
                     {"META-INF/manifest.xml", "<manifest/>", 11}};
    /* the mimetype member must be stored, not deflated */
    fx_bytes b = fx_archive("zip", NULL, "zip:compression=store", m, 3);
    free(xml);
    return b;
}

/* Runs fn with stderr redirected to a file; returns the bytes written there. */
static size_t stderr_bytes_during(void (*fn)(void *), void *ctx)
{
    char path[512];
    snprintf(path, sizeof path, "%s/stderr.txt", tt_tmpdir());
    fflush(stderr);
    int saved = dup(2);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    dup2(fd, 2);
    close(fd);
    fn(ctx);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    size_t n = 0;
    char *s = tt_read_file(path, &n);
    if (n)
        fprintf(stderr, "  unexpected stderr: %.200s\n", s);
    free(s);
    return n;
}

static int anchor_at_text(const tome_doc_text *d, size_t i, const char *want)
{
    if (i >= d->n_anchors)
        return 0;
    const char *t = d->text.data + d->anchors[i].offset;
    return strncmp(t, want, strlen(want)) == 0;
}

/* ------------------------------------------------------------ sniff */
static void test_sniff(void)
{
    const char *pages[] = {"hello"};
    fx_bytes pdf = fx_pdf(pages, 1);
    TT_EQ_INT(tome_doc_sniff("x.bin", pdf.data, pdf.len), TOME_DOC_PDF);
    /* a program that writes PDFs is not a PDF; junk before the header is
     * accepted only for a file named .pdf */
    const char *py = "import io\n\nHEADER = b\"%PDF-1.4\\n\"\n";
    TT_EQ_INT(tome_doc_sniff("gen.py", (const uint8_t *)py, strlen(py)), TOME_DOC_NONE);
    TT_EQ_INT(tome_doc_sniff("scan.pdf", (const uint8_t *)py, strlen(py)), TOME_DOC_PDF);
    fx_bytes docx = make_docx("<w:p><w:r><w:t>x</w:t></w:r></w:p>");
    TT_EQ_INT(tome_doc_sniff("x", docx.data, docx.len), TOME_DOC_DOCX);
    TT_CHECK(!tome_archive_sniff(docx.data, docx.len));
    fx_bytes odt = make_odt("<text:p>x</text:p>");
    TT_EQ_INT(tome_doc_sniff("x", odt.data, odt.len), TOME_DOC_ODT);
    TT_CHECK(!tome_archive_sniff(odt.data, odt.len));
    const char *h1 = "  <!DOCTYPE html><html><body>x</body></html>";
    TT_EQ_INT(tome_doc_sniff("page", (const uint8_t *)h1, strlen(h1)), TOME_DOC_HTML);
    const char *h2 = "<div>fragment</div>";
    TT_EQ_INT(tome_doc_sniff("frag.html", (const uint8_t *)h2, strlen(h2)), TOME_DOC_HTML);
    TT_EQ_INT(tome_doc_sniff("frag.txt", (const uint8_t *)h2, strlen(h2)), TOME_DOC_NONE);
    const char *c = "/* emits \"<html>\" */\nint x;\n";
    TT_EQ_INT(tome_doc_sniff("gen.c", (const uint8_t *)c, strlen(c)), TOME_DOC_NONE);
    /* an XLSX is neither a document tome extracts nor an archive */
    fx_member xm[] = {{"[Content_Types].xml", k_ct, strlen(k_ct)}, {"xl/workbook.xml", "<w/>", 4}};
    fx_bytes xlsx = fx_archive("zip", NULL, NULL, xm, 2);
    TT_EQ_INT(tome_doc_sniff("a.xlsx", xlsx.data, xlsx.len), TOME_DOC_NONE);
    TT_CHECK(!tome_archive_sniff(xlsx.data, xlsx.len));
    /* a plain zip is neither */
    fx_member zm[] = {{"a.txt", "a", 1}};
    fx_bytes zip = fx_archive("zip", NULL, NULL, zm, 1);
    TT_EQ_INT(tome_doc_sniff("a.zip", zip.data, zip.len), TOME_DOC_NONE);
    free(pdf.data), free(docx.data), free(odt.data), free(xlsx.data), free(zip.data);
}

/* ------------------------------------------------------------ PDF */
static void test_pdf_pages(void)
{
    const char *pages[] = {"MASTER SERVICES AGREEMENT\nClause 1. Scope of services.",
                           "Clause 2. Fees are due within 30 days.", "",
                           "Clause 3. Termination for convenience."};
    fx_bytes pdf = fx_pdf(pages, 4);
    tome_doc_text d;
    TT_OK(tome_doc_extract(TOME_DOC_PDF, "msa.pdf", pdf.data, pdf.len, &d));
    TT_EQ_INT(d.n_anchors, 4);
    for (size_t i = 0; i < d.n_anchors && i < 4; i++) {
        TT_EQ_INT(d.anchors[i].kind, TOME_ANCHOR_PAGE);
        TT_EQ_INT(d.anchors[i].number, i + 1);
        if (i)
            TT_CHECK(d.anchors[i].offset > d.anchors[i - 1].offset);
    }
    TT_CHECK(anchor_at_text(&d, 0, "MASTER SERVICES AGREEMENT\nClause 1."));
    TT_CHECK(anchor_at_text(&d, 1, "Clause 2. Fees"));
    TT_CHECK(anchor_at_text(&d, 3, "Clause 3. Termination"));
    TT_CHECK(d.text.len && d.text.data[d.text.len - 1] == '\n');
    TT_CHECK(!memchr(d.text.data, '\r', d.text.len) && !memchr(d.text.data, '\f', d.text.len));
    tome_doc_text_free(&d);
    tome_doc_text_free(NULL);
    free(pdf.data);
}

typedef struct pdf_damage { fx_bytes pdf; int ok, failed, bad_msg; } pdf_damage;

static void damage_pdf(void *ctx)
{
    pdf_damage *p = ctx;
    unsigned seed = 17;
    for (int round = 0; round < 120; round++) {
        size_t len = p->pdf.len;
        unsigned char *copy = malloc(len);
        memcpy(copy, p->pdf.data, len);
        if (round < 40) {
            len = len * (size_t)(round + 1) / 41; /* truncated */
        } else {
            for (int k = 0; k < 1 + round % 8; k++) { /* bit flips */
                seed = seed * 1103515245u + 12345u;
                copy[(seed >> 8) % len] ^= (unsigned char)(1u << ((seed >> 4) % 8));
            }
        }
        tome_doc_text d;
        tome_status st = tome_doc_extract(TOME_DOC_PDF, "cut.pdf", copy, len, &d);
        if (st == TOME_OK) {
            p->ok++;
        } else {
            p->failed++;
            if (!strstr(tome_last_error(), "cut.pdf"))
                p->bad_msg++;
            if (d.text.data || d.anchors)
                p->bad_msg++;
        }
        tome_doc_text_free(&d);
        free(copy);
    }
}

static void test_pdf_corrupt_quiet(void)
{
    const char *pages[] = {"one", "two", "three"};
    pdf_damage p = {.pdf = fx_pdf(pages, 3)};
    TT_EQ_INT(stderr_bytes_during(damage_pdf, &p), 0);
    TT_CHECK(p.failed > 0); /* most truncations lose the xref and catalog */
    TT_EQ_INT(p.bad_msg, 0);
    tome_doc_text d;
    TT_STATUS(tome_doc_extract(TOME_DOC_PDF, "empty.pdf", (const uint8_t *)"", 0, &d), TOME_ERR_FORMAT);
    TT_CONTAINS(tome_last_error(), "empty.pdf");
    const char *junk = "%PDF-1.7\nthis is not a pdf at all\n";
    TT_STATUS(tome_doc_extract(TOME_DOC_PDF, "junk.pdf", (const uint8_t *)junk, strlen(junk), &d),
              TOME_ERR_FORMAT);
    TT_CONTAINS(tome_last_error(), "junk.pdf");
    free(p.pdf.data);
}

static void test_pdf_encrypted(void)
{
    const char *pages[] = {"confidential"};
    fx_bytes pdf = fx_pdf_ex(pages, 1, 1);
    tome_doc_text d;
    TT_STATUS(tome_doc_extract(TOME_DOC_PDF, "locked.pdf", pdf.data, pdf.len, &d), TOME_ERR_UNSUPPORTED);
    TT_CONTAINS(tome_last_error(), "locked.pdf: encrypted PDF");
    TT_CHECK(d.text.data == NULL && d.n_anchors == 0);
    free(pdf.data);
}

/* ------------------------------------------------------------ DOCX */
static void test_docx_paragraphs(void)
{
    fx_bytes b = make_docx(
        "<w:p><w:pPr><w:pStyle w:val=\"Title\"/></w:pPr><w:r><w:t>Master Services Agreement</w:t></w:r></w:p>"
        "<w:p><w:r><w:t xml:space=\"preserve\">This agreement is between </w:t></w:r>"
        "<w:r><w:rPr><w:b/></w:rPr><w:t>Acme &amp; Co</w:t></w:r><w:r><w:t>.</w:t></w:r></w:p>"
        "<w:p/>"
        "<w:p><w:pPr><w:pStyle w:val=\"Heading1\"/></w:pPr><w:r><w:t>1. Fees</w:t></w:r></w:p>"
        "<w:p><w:r><w:t>Amount:</w:t><w:tab/><w:t>100 EUR</w:t><w:br/><w:t>per month</w:t></w:r></w:p>"
        "<w:tbl><w:tr><w:tc><w:p><w:r><w:t>Service</w:t></w:r></w:p></w:tc>"
        "<w:tc><w:p><w:r><w:t>Price</w:t></w:r></w:p></w:tc></w:tr>"
        "<w:tr><w:tc><w:p><w:r><w:t>Hosting</w:t></w:r></w:p></w:tc>"
        "<w:tc><w:p><w:r><w:t>40</w:t></w:r></w:p></w:tc></w:tr></w:tbl>"
        "<w:p><w:pPr><w:pStyle w:val=\"Heading2\"/></w:pPr><w:r><w:t>1.1 Late payment</w:t></w:r></w:p>"
        "<w:p><w:r><mc:AlternateContent><mc:Choice><w:t>shown</w:t></mc:Choice>"
        "<mc:Fallback><w:t>HIDDEN</w:t></mc:Fallback></mc:AlternateContent>"
        "<w:del><w:r><w:delText>deleted</w:delText></w:r></w:del>"
        "<w:instrText>PAGE</w:instrText></w:r></w:p>");
    TT_EQ_INT(tome_doc_sniff("msa.docx", b.data, b.len), TOME_DOC_DOCX);
    tome_doc_text d;
    TT_OK(tome_doc_extract(TOME_DOC_DOCX, "msa.docx", b.data, b.len, &d));
    TT_EQ_STR(d.text.data,
              "# Master Services Agreement\n"
              "This agreement is between Acme & Co.\n"
              "# 1. Fees\n"
              "Amount:\t100 EUR\nper month\n"
              "Service | Price\n"
              "Hosting | 40\n"
              "## 1.1 Late payment\n"
              "shown\n");
    TT_EQ_INT(d.n_anchors, 8);
    static const uint32_t kinds[] = {TOME_ANCHOR_HEADING, TOME_ANCHOR_PARAGRAPH, TOME_ANCHOR_HEADING,
                                     TOME_ANCHOR_PARAGRAPH, TOME_ANCHOR_PARAGRAPH, TOME_ANCHOR_PARAGRAPH,
                                     TOME_ANCHOR_HEADING, TOME_ANCHOR_PARAGRAPH};
    for (size_t i = 0; i < d.n_anchors && i < 8; i++) {
        TT_EQ_INT(d.anchors[i].kind, kinds[i]);
        TT_EQ_INT(d.anchors[i].number, i + 1);
    }
    TT_CHECK(anchor_at_text(&d, 2, "# 1. Fees"));
    TT_CHECK(anchor_at_text(&d, 5, "Hosting | 40"));
    tome_doc_text_free(&d);
    free(b.data);
}

static void test_docx_notes_headers_and_part_cap(void)
{
#define W_NS "xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\""
    const char *doc = "<?xml version=\"1.0\"?><w:document " W_NS "><w:body>"
                      "<w:p><w:r><w:t>Claim</w:t></w:r><w:r><w:endnoteReference w:id=\"2\"/></w:r></w:p>"
                      "<w:p><w:pPr><w:numPr><w:ilvl w:val=\"1\"/><w:numId w:val=\"3\"/></w:numPr></w:pPr><w:r><w:t>deep item</w:t></w:r></w:p>"
                      "<w:p><w:pPr><w:numPr><w:numId w:val=\"0\"/></w:numPr></w:pPr><w:r><w:t>not a list</w:t></w:r>"
                      "<w:moveFrom w:id=\"7\"><w:r><w:t> MOVED</w:t></w:r></w:moveFrom></w:p>"
                      "<w:p><w:moveTo w:id=\"8\"><w:r><w:t>moved here</w:t></w:r></w:moveTo></w:p>"
                      "</w:body></w:document>";
    const char *endn = "<?xml version=\"1.0\"?><w:endnotes " W_NS ">"
                       "<w:endnote w:type=\"separator\" w:id=\"0\"><w:p><w:r><w:t>sep</w:t></w:r></w:p></w:endnote>"
                       "<w:endnote w:id=\"2\"><w:p><w:r><w:t>End text.</w:t></w:r></w:p></w:endnote></w:endnotes>";
    const char *ftr = "<?xml version=\"1.0\"?><w:ftr " W_NS "><w:p><w:r><w:t>Page footer</w:t></w:r></w:p></w:ftr>";
    /* three 25 MB headers (each under the ratio cap): two fit the document's
     * 64 MB of XML together, the third does not and leaves a note */
    size_t big = (size_t)25 << 20;
    char *hdr = malloc(big + 256);
    TT_CHECK(hdr != NULL);
    if (!hdr) return;
    int k = sprintf(hdr, "<?xml version=\"1.0\"?><w:hdr " W_NS "><w:p><w:r><w:t>");
    memset(hdr + k, ' ', big);
    strcpy(hdr + k + big, "H</w:t></w:r></w:p></w:hdr>");
    fx_member m[] = {{"[Content_Types].xml", k_ct, strlen(k_ct)},
                     {"word/document.xml", doc, strlen(doc)},
                     {"word/endnotes.xml", endn, strlen(endn)},
                     {"word/header1.xml", hdr, strlen(hdr)},
                     {"word/header2.xml", hdr, strlen(hdr)},
                     {"word/header3.xml", hdr, strlen(hdr)},
                     {"word/footer1.xml", ftr, strlen(ftr)}};
    fx_bytes b = fx_archive("zip", NULL, NULL, m, 7);
    free(hdr);
    tome_doc_text d;
    TT_OK(tome_doc_extract(TOME_DOC_DOCX, "n.docx", b.data, b.len, &d));
    const char *t = d.text.data ? d.text.data : "";
    TT_CHECK(strncmp(t, "Claim[endnote 2]\n  - deep item\nnot a list\nmoved here\n[endnote 2] End text.\n[header] ", 84) == 0);
    TT_CHECK(!strstr(t, "header2.xml not read"));
    TT_CONTAINS(t, "[tome: word/header3.xml not read: ");
    TT_CHECK(strstr(t, "[footer] Page footer\n") != NULL);
    TT_CHECK(!strstr(t, "sep"));
    TT_CHECK(d.text.len < ((size_t)51 << 20)); /* two headers' spaces, not three */
    tome_doc_text_free(&d);
    free(b.data);
#undef W_NS
}

static void test_docx_styles_part(void)
{
    /* heading styles come from word/styles.xml: a localized id named
     * "heading 1", a custom style with an outline level, and a style whose
     * id looks like a heading but which styles.xml defines as body text */
    const char *styles =
        "<?xml version=\"1.0\"?><w:styles xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\">"
        "<w:style w:type=\"paragraph\" w:styleId=\"berschrift1\"><w:name w:val=\"heading 1\"/></w:style>"
        "<w:style w:type=\"paragraph\" w:styleId=\"ClauseTitle\"><w:name w:val=\"Clause Title\"/>"
        "<w:pPr><w:outlineLvl w:val=\"1\"/></w:pPr></w:style>"
        "<w:style w:type=\"paragraph\" w:styleId=\"Heading3\"><w:name w:val=\"Fancy body\"/></w:style>"
        "</w:styles>";
    const char *doc =
        "<?xml version=\"1.0\"?><w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\"><w:body>"
        "<w:p><w:pPr><w:pStyle w:val=\"berschrift1\"/></w:pPr><w:r><w:t>Vertrag</w:t></w:r></w:p>"
        "<w:p><w:pPr><w:pStyle w:val=\"ClauseTitle\"/></w:pPr><w:r><w:t>Fees</w:t></w:r></w:p>"
        "<w:p><w:pPr><w:pStyle w:val=\"Heading3\"/></w:pPr><w:r><w:t>body</w:t></w:r></w:p>"
        "</w:body></w:document>";
    fx_member m[] = {{"[Content_Types].xml", k_ct, strlen(k_ct)},
                     {"word/styles.xml", styles, strlen(styles)},
                     {"word/document.xml", doc, strlen(doc)}};
    fx_bytes b = fx_archive("zip", NULL, NULL, m, 3);
    tome_doc_text d;
    TT_OK(tome_doc_extract(TOME_DOC_DOCX, "de.docx", b.data, b.len, &d));
    TT_EQ_STR(d.text.data, "# Vertrag\n## Fees\nbody\n");
    TT_EQ_INT(d.n_anchors, 3);
    if (d.n_anchors == 3) {
        TT_EQ_INT(d.anchors[0].kind, TOME_ANCHOR_HEADING);
        TT_EQ_INT(d.anchors[1].kind, TOME_ANCHOR_HEADING);
        TT_EQ_INT(d.anchors[2].kind, TOME_ANCHOR_PARAGRAPH);
    }
    tome_doc_text_free(&d);
    free(b.data);
}

static void test_docx_bad(void)
{
    tome_doc_text d;
    /* no word/document.xml */
    fx_member m[] = {{"[Content_Types].xml", k_ct, strlen(k_ct)}};
    fx_bytes z = fx_archive("zip", NULL, NULL, m, 1);
    TT_STATUS(tome_doc_extract(TOME_DOC_DOCX, "a.docx", z.data, z.len, &d), TOME_ERR_NOT_FOUND);
    TT_CONTAINS(tome_last_error(), "a.docx");
    free(z.data);
    /* broken XML */
    fx_bytes b = make_docx("<w:p><w:r><w:t>unclosed</w:r></w:p>");
    TT_STATUS(tome_doc_extract(TOME_DOC_DOCX, "b.docx", b.data, b.len, &d), TOME_ERR_FORMAT);
    TT_CONTAINS(tome_last_error(), "b.docx: word/document.xml");
    TT_CHECK(!strchr(tome_last_error(), '\n'));
    free(b.data);
    /* not a zip at all */
    TT_CHECK(tome_doc_extract(TOME_DOC_DOCX, "c.docx", (const uint8_t *)"PK\3\4junk", 9, &d) != TOME_OK);
    TT_CONTAINS(tome_last_error(), "c.docx");
}

static void test_docx_no_entity_expansion(void)
{
    /* billion laughs: nothing may be expanded, and it must finish at once */
    const char *xml =
        "<?xml version=\"1.0\"?>\n<!DOCTYPE w:document [\n"
        "<!ENTITY a \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\">\n"
        "<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">\n"
        "<!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">\n"
        "<!ENTITY d \"&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;\">\n"
        "<!ENTITY e \"&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;\">\n"
        "<!ENTITY f \"&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;\">\n"
        "<!ENTITY g \"&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;\">\n"
        "<!ENTITY x SYSTEM \"file:///etc/passwd\">\n"
        "]>\n<w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\">"
        "<w:body><w:p><w:r><w:t>before &g; &x; after</w:t></w:r></w:p></w:body></w:document>";
    fx_member m[] = {{"[Content_Types].xml", k_ct, strlen(k_ct)}, {"word/document.xml", xml, strlen(xml)}};
    fx_bytes b = fx_archive("zip", NULL, NULL, m, 2);
    tome_doc_text d;
    tome_status st = tome_doc_extract(TOME_DOC_DOCX, "lol.docx", b.data, b.len, &d);
    if (st == TOME_OK) {
        TT_CHECK(d.text.len < 200);
        TT_CHECK(!strstr(d.text.data, "aaaa"));
        TT_CHECK(!strstr(d.text.data, "root:"));
        TT_CONTAINS(d.text.data, "before");
    } else {
        TT_EQ_INT(st, TOME_ERR_FORMAT);
    }
    tome_doc_text_free(&d);
    free(b.data);
}

/* ------------------------------------------------------------ ODT */
static void test_odt_paragraphs(void)
{
    fx_bytes b = make_odt(
        "<text:sequence-decls><text:sequence-decl text:name=\"Table\"/></text:sequence-decls>"
        "<text:h text:outline-level=\"1\">Data Processing Addendum</text:h>"
        "<text:p>The processor<text:s text:c=\"3\"/>shall<text:tab/>act<text:line-break/>only "
        "on <text:span>documented</text:span> instructions.</text:p>"
        "<text:p/>"
        "<text:h text:outline-level=\"2\">Sub-processors</text:h>"
        "<text:list><text:list-item><text:p>First item</text:p></text:list-item>"
        "<text:list-item><text:p>Second<text:note><text:note-body><text:p>NOTE</text:p>"
        "</text:note-body></text:note> item</text:p></text:list-item></text:list>"
        "<table:table><table:table-row><table:table-cell><text:p>Party</text:p></table:table-cell>"
        "<table:table-cell><text:p>Role</text:p></table:table-cell></table:table-row>"
        "<table:table-row><table:table-cell><text:p>Nimbus</text:p></table:table-cell>"
        "<table:table-cell><text:p>Processor</text:p></table:table-cell></table:table-row></table:table>");
    tome_doc_text d;
    TT_OK(tome_doc_extract(TOME_DOC_ODT, "dpa.odt", b.data, b.len, &d));
    TT_EQ_STR(d.text.data,
              "# Data Processing Addendum\n"
              "The processor   shall\tact\nonly on documented instructions.\n"
              "## Sub-processors\n"
              "- First item\n"
              "- Second[footnote 1] item\n"
              "Party | Role\n"
              "Nimbus | Processor\n"
              "[footnote 1] NOTE\n"); /* notes after the body, numbered by order without a citation */
    TT_EQ_INT(d.n_anchors, 8);
    if (d.n_anchors == 8) {
        TT_EQ_INT(d.anchors[0].kind, TOME_ANCHOR_HEADING);
        TT_EQ_INT(d.anchors[2].kind, TOME_ANCHOR_HEADING);
        TT_EQ_INT(d.anchors[2].number, 3);
        TT_EQ_INT(d.anchors[3].kind, TOME_ANCHOR_PARAGRAPH);
        TT_CHECK(anchor_at_text(&d, 4, "- Second[footnote 1] item"));
        TT_CHECK(anchor_at_text(&d, 7, "[footnote 1] NOTE"));
    }
    tome_doc_text_free(&d);
    free(b.data);
}

/* ------------------------------------------------------------ HTML */
static void test_html_text(void)
{
    const char *h =
        "<!DOCTYPE html>\n<html><head><title>T</title><style>p{color:red}</style>"
        "<script>var x = '<p>no</p>';</script></head>\n<body>\n"
        "<h1>Terms   of\n Service</h1>\n"
        "<p>Hello,\n   <b>world</b> &amp; caf&eacute; &#8212; ok.</p>"
        "<pre>  keep   this\n    indentation\n</pre>"
        "<ul><li>one</li><li>two <i>2</i></li><li></li></ul>"
        "<h2></h2>"
        "<table><tr><th>k</th><th>v</th></tr><tr><td>a</td><td>1</td></tr></table>"
        "line<br>break<div>block</div>"
        "<noscript>nojs</noscript><h2>End</h2></body></html>";
    tome_doc_text d;
    TT_EQ_INT(tome_doc_sniff("t.html", (const uint8_t *)h, strlen(h)), TOME_DOC_HTML);
    TT_OK(tome_doc_extract(TOME_DOC_HTML, "t.html", (const uint8_t *)h, strlen(h), &d));
    TT_EQ_STR(d.text.data,
              "# Terms of Service\n"
              "Hello, world & caf\xc3\xa9 \xe2\x80\x94 ok.\n"
              "  keep   this\n    indentation\n"
              "- one\n- two 2\n"
              "k | v\n"
              "a | 1\n"
              "line\nbreak\n"
              "block\n"
              "## End\n");
    TT_EQ_INT(d.n_anchors, 2);
    if (d.n_anchors == 2) {
        TT_EQ_INT(d.anchors[0].kind, TOME_ANCHOR_HEADING);
        TT_EQ_INT(d.anchors[0].number, 1);
        TT_CHECK(anchor_at_text(&d, 1, "## End"));
    }
    tome_doc_text_free(&d);
}

static void test_html_latin1_and_deep(void)
{
    const char *h = "<html><head><meta charset=\"iso-8859-1\"></head><body><p>caf\xe9</p></body></html>";
    tome_doc_text d;
    TT_OK(tome_doc_extract(TOME_DOC_HTML, "l.html", (const uint8_t *)h, strlen(h), &d));
    TT_EQ_STR(d.text.data, "caf\xc3\xa9\n");
    tome_doc_text_free(&d);
    /* deep nesting: text comes through at a sane depth, and absurd depth
     * (libxml2 gives up on it) neither crashes nor exhausts the stack */
    for (size_t n = 100; n <= 100000; n *= 1000) {
    char *deep = malloc(n * 11 + 64);
    char *p = deep;
    p += sprintf(p, "<html><body>");
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "<div><span>");
    p += sprintf(p, "bottom</body></html>");
    TT_OK(tome_doc_extract(TOME_DOC_HTML, "deep.html", (const uint8_t *)deep, (size_t)(p - deep), &d));
    if (n == 100)
        TT_CONTAINS(d.text.data, "bottom");
    else
        TT_CONTAINS(d.text.data, "[tome: HTML cut here");
    tome_doc_text_free(&d);
    free(deep);
    }
    TT_OK(tome_doc_extract(TOME_DOC_HTML, "empty.html", (const uint8_t *)"", 0, &d));
    TT_EQ_STR(d.text.data, "");
    tome_doc_text_free(&d);
}

/* ------------------------------------------------------------ samples */
typedef struct sample_seen { int pdf_pages, docx_headings, text_files, skipped; } sample_seen;

static tome_status sample_cb(void *ud, const tome_archive_entry *e)
{
    sample_seen *s = ud;
    if (e->skip_reason) {
        fprintf(stderr, "  skipped %s: %s\n", e->path, e->skip_reason);
        s->skipped++;
        return TOME_OK;
    }
    tome_doc_kind k = tome_doc_sniff(e->path, e->data, e->len);
    if (k == TOME_DOC_NONE) {
        s->text_files++;
        return TOME_OK;
    }
    tome_doc_text d;
    TOME_FORWARD(tome_doc_extract(k, e->path, e->data, e->len, &d));
    for (size_t i = 0; i < d.n_anchors; i++) {
        if (k == TOME_DOC_PDF && d.anchors[i].kind == TOME_ANCHOR_PAGE)
            s->pdf_pages++;
        if (k == TOME_DOC_DOCX && d.anchors[i].kind == TOME_ANCHOR_HEADING)
            s->docx_headings++;
    }
    if (k == TOME_DOC_PDF && !strstr(d.text.data, "Agreement") && !strstr(d.text.data, "AGREEMENT"))
        s->skipped += 100;
    tome_doc_text_free(&d);
    return TOME_OK;
}

static void test_make_samples_contracts(void)
{
    const char *dir = tt_tmpdir();
    int rc = tt_system("python3 '%s' '%s' >/dev/null", tt_source_path("scripts/make_samples.py"), dir);
    TT_EQ_INT(rc, 0);
    char path[1024];
    snprintf(path, sizeof path, "%s/contracts.zip", dir);
    size_t len = 0;
    char *zip = tt_read_file(path, &len);
    TT_CHECK(zip != NULL);
    if (!zip)
        return;
    TT_CHECK(tome_archive_sniff((const uint8_t *)zip, len));
    sample_seen s = {0};
    TT_OK(tome_archive_read("contracts.zip", (const uint8_t *)zip, len, NULL, 0, sample_cb, &s));
    TT_CHECK(s.pdf_pages >= 2);
    TT_CHECK(s.docx_headings >= 2);
    TT_CHECK(s.text_files >= 1);
    TT_EQ_INT(s.skipped, 0);
    free(zip);
}

int main(void)
{
    TT_RUN(test_sniff);
    TT_RUN(test_pdf_pages);
    TT_RUN(test_pdf_corrupt_quiet);
    TT_RUN(test_pdf_encrypted);
    TT_RUN(test_docx_paragraphs);
    TT_RUN(test_docx_styles_part);
    TT_RUN(test_docx_notes_headers_and_part_cap);
    TT_RUN(test_docx_bad);
    TT_RUN(test_docx_no_entity_expansion);
    TT_RUN(test_odt_paragraphs);
    TT_RUN(test_html_text);
    TT_RUN(test_html_latin1_and_deep);
    TT_RUN(test_make_samples_contracts);
    return tt_finish();
}
