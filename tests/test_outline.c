/* tests/test_outline.c — outlines per language: the kept lines and their
 * original line numbers, offsets and lengths. */
#include <stdlib.h>
#include <string.h>

#include "ingest/ingest_impl.h"
#include "tt.h"

/* Outline lines v[0..n) of text as "line:content\n" lines (frees v). */
static char *lines_str(const char *text, tome_outline_line *v, size_t n)
{
    tome_buf b = {0};
    for (size_t i = 0; i < n; i++) {
        TT_CHECK(v[i].offset + v[i].len <= strlen(text));
        tome_buf_appendf(&b, "%u:%.*s\n", v[i].line, (int)v[i].len, text + v[i].offset);
    }
    free(v);
    if (!b.data) tome_buf_append(&b, "", 0);
    return b.data;
}

/* Outline of text as "line:content\n" lines. */
static char *outline_str(const char *path, const char *text)
{
    tome_outline_line *v = NULL;
    size_t n = 0;
    if (tome_outline(path, text, strlen(text), &v, &n) != TOME_OK) {
        tt_fail(__FILE__, __LINE__, "tome_outline(%s): %s", path, tome_last_error());
        return NULL;
    }
    return lines_str(text, v, n);
}

static void expect(const char *path, const char *text, const char *want)
{
    char *got = outline_str(path, text);
    TT_EQ_STR(got, want);
    free(got);
}

static void test_c(void)
{
    expect("src/x.c",
           "/*\n * main(void) in a comment\n */\n#include <stdio.h>\n#define MAX(a, b) ((a) > (b) ? (a) : (b))\n"
           "#define N 3\n\ntypedef struct point {\n    int x;\n} point;\n\nstatic int\nadd(int a, int b)\n{\n"
           "    if (a) return foo(a);\n    return a + b;\n}\n\nint main(void) { return 0; }\n"
           "const char *s = \"/* not a comment\";\nvoid after_string(void);\n",
           "5:#define MAX(a, b) ((a) > (b) ? (a) : (b))\n8:typedef struct point {\n13:add(int a, int b)\n"
           "19:int main(void) { return 0; }\n21:void after_string(void);\n");
    expect("a.hpp", "namespace tome {\ntemplate <typename T> class Vec {\n  void push(T x);\n};\n}\n",
           "1:namespace tome {\n2:template <typename T> class Vec {\n");
}

static void test_python(void)
{
    expect("m.py",
           "\"\"\"Module doc.\n\ndef not_this(): pass\n\"\"\"\nimport os\n\n\nclass A(Base):\n    \"\"\"Doc.\"\"\"\n"
           "    def method(self, x):\n        return x\n\n    async def run(self):\n        pass\n\n"
           "def top(a, b=1):\n    pass\n",
           "8:class A(Base):\n10:    def method(self, x):\n13:    async def run(self):\n16:def top(a, b=1):\n");
}

static void test_go_rust_java_js(void)
{
    expect("main.go", "package main\n\nimport \"fmt\"\n\ntype T struct{}\n\nfunc (t T) Run() error {\n\treturn nil\n}\n",
           "1:package main\n5:type T struct{}\n7:func (t T) Run() error {\n");
    expect("lib.rs",
           "use std::io;\n\npub struct Pack { n: usize }\n\nimpl Pack {\n    pub fn new() -> Self { todo!() }\n"
           "    fn private(&self) {}\n}\n\npub(crate) async fn go() {}\nmacro_rules! m { () => {} }\n",
           "3:pub struct Pack { n: usize }\n5:impl Pack {\n6:    pub fn new() -> Self { todo!() }\n"
           "7:    fn private(&self) {}\n10:pub(crate) async fn go() {}\n11:macro_rules! m { () => {} }\n");
    expect("A.java",
           "package x;\n\npublic final class A extends B {\n    private int n = compute(1);\n"
           "    @Override\n    public static List<String> names(int k) {\n        return null;\n    }\n"
           "    interface I {}\n}\n",
           "3:public final class A extends B {\n6:    public static List<String> names(int k) {\n9:    interface I {}\n");
    expect("k.kt", "data class P(val x: Int)\n\nfun main() {\n    println(1)\n}\n",
           "1:data class P(val x: Int)\n3:fun main() {\n");
    expect("app.ts",
           "import x from 'y';\n\nexport interface Opts { a: number }\nexport type Id = string;\n"
           "export const handler = async (req: Req) => {\n  if (x) {\n  }\n};\n"
           "export default class Server {\n  constructor(port: number) {\n  }\n  async listen(): Promise<void> {\n  }\n}\n"
           "function plain(a) {\n}\nconst notfn = 3;\n",
           "3:export interface Opts { a: number }\n4:export type Id = string;\n"
           "5:export const handler = async (req: Req) => {\n9:export default class Server {\n"
           "10:  constructor(port: number) {\n12:  async listen(): Promise<void> {\n15:function plain(a) {\n");
}

static void test_scripts(void)
{
    expect("r.rb", "module M\n  class C\n    def go(x)\n    end\n  end\nend\n", "1:module M\n2:  class C\n3:    def go(x)\n");
    expect("i.php", "<?php\nnamespace App;\nfinal class U {\n    public function name(): string {}\n}\n",
           "2:namespace App;\n3:final class U {\n4:    public function name(): string {}\n");
    expect("run.sh", "#!/bin/sh\nset -e\nusage() {\n  echo hi\n}\nfunction build {\n  make\n}\n",
           "3:usage() {\n6:function build {\n");
    /* no extension: the shebang decides */
    expect("bin/tool", "#!/usr/bin/env python3\nimport sys\ndef main():\n    pass\n", "3:def main():\n");
    expect("Makefile", "CC = gcc\nall: tome\n\ntome: main.o\n\t$(CC) -o $@ $^\nX := 1\n", "2:all: tome\n4:tome: main.o\n");
}

static void test_markdown(void)
{
    expect("README.md",
           "# tome\n\nIntro text.\n\n## Install\n\n```sh\n# not a heading\nmake\n```\n\nUsage\n=====\n\n"
           "Details\n-------\n\n- item\n---\n\n~~~\n## fenced\n~~~\n#### Deep ####\n#nospace\n",
           "1:# tome\n5:## Install\n12:Usage\n15:Details\n24:#### Deep ####\n");
    /* CRLF: lengths exclude the \r */
    expect("w.md", "# A\r\ntext\r\n## B\r\n", "1:# A\n3:## B\n");
}

static void test_rst_adoc(void)
{
    expect("doc.rst",
           "=====\nTitle\n=====\n\nSection one\n-----------\n\nText.\n\nShort\n--\n\n.. code::\n\n   x\n",
           "2:Title\n5:Section one\n");
    expect("g.adoc", "= Guide\n\nText\n\n== Part\n\n----\n== inside listing\n----\n=== Sub\n",
           "1:= Guide\n5:== Part\n10:=== Sub\n");
}

static void test_fallback_and_edges(void)
{
    expect("notes.txt", "\n\nFirst line\ncontinues\n\n  indented para\n\nSecond para\nmore\n",
           "3:First line\n8:Second para\n");
    expect("x.unknown", "", "");
    expect("empty.c", "", "");
    expect("noeol.py", "def f():", "1:def f():\n");
    tome_outline_line *v = (tome_outline_line *)1;
    size_t n = 7;
    TT_OK(tome_outline("a.c", NULL, 0, &v, &n));
    TT_CHECK(v == NULL);
    TT_EQ_INT(n, 0);
    TT_STATUS(tome_outline("a.c", "x", 1, NULL, &n), TOME_ERR_INVALID_ARG);
    /* a real file of this project: deterministic and every line in range */
    size_t len = 0;
    char *src = tt_read_file(tt_source_path("ingest/walk.c"), &len);
    TT_CHECK(src != NULL);
    if (src) {
        tome_outline_line *a = NULL, *b = NULL;
        size_t na = 0, nb = 0;
        TT_OK(tome_outline("ingest/walk.c", src, len, &a, &na));
        TT_OK(tome_outline("ingest/walk.c", src, len, &b, &nb));
        TT_EQ_INT(na, nb);
        TT_CHECK(na > 10);
        for (size_t i = 0; i < na && i < nb; i++)
            TT_CHECK(a[i].line == b[i].line && a[i].offset == b[i].offset && a[i].len == b[i].len);
        int found = 0;
        for (size_t i = 0; i < na; i++) {
            TT_CHECK(a[i].offset + a[i].len <= len);
            if (a[i].len > 16 && memcmp(src + a[i].offset, "tome_status tome_walk(", 22) == 0) found = 1;
        }
        TT_CHECK(found);
        free(a);
        free(b);
        free(src);
    }
}

/* Documents: the outline comes from the extraction's anchors. */
static char *doc_outline_str(const char *text, const tome_anchor *a, size_t n_a)
{
    tome_outline_line *v = NULL;
    size_t n = 0;
    if (tome_outline_doc(text, strlen(text), a, n_a, NULL, 0, &v, &n) != TOME_OK) {
        tt_fail(__FILE__, __LINE__, "tome_outline_doc: %s", tome_last_error());
        return NULL;
    }
    return lines_str(text, v, n);
}

static void test_documents(void)
{
    /* DOCX/ODT/HTML: the heading paragraphs, not the first line */
    const char *docx = "Preamble text.\n# Terms\nBody one.\r\nBody two.\n## Payment\nPay now.\n";
    tome_anchor h[] = {{0, TOME_ANCHOR_PARAGRAPH, 1}, {15, TOME_ANCHOR_HEADING, 2}, {23, TOME_ANCHOR_PARAGRAPH, 3},
                       {34, TOME_ANCHOR_PARAGRAPH, 4}, {44, TOME_ANCHOR_HEADING, 5}, {55, TOME_ANCHOR_PARAGRAPH, 6}};
    char *got = doc_outline_str(docx, h, TOME_ARRAY_LEN(h));
    TT_EQ_STR(got, "2:# Terms\n5:## Payment\n");
    free(got);
    /* PDF: each page's first line with text (blank lines skipped, not past
     * the page); a page that is only blank lines gives nothing */
    const char *pdf = "\n  \nTITLE ONE\nbody\n\n\n\t\nPAGE TWO\r\nmore\nlast page\n";
    tome_anchor pg[] = {{0, TOME_ANCHOR_PAGE, 1}, {20, TOME_ANCHOR_PAGE, 2}, {21, TOME_ANCHOR_PAGE, 3},
                        {38, TOME_ANCHOR_PAGE, 4}};
    got = doc_outline_str(pdf, pg, TOME_ARRAY_LEN(pg));
    TT_EQ_STR(got, "3:TITLE ONE\n8:PAGE TWO\n10:last page\n");
    free(got);
    /* running headers and footers ("Page N of M" with its digits ignored)
     * are not a page's title: the first other line is */
    const char *hdr = "ACME CONFIDENTIAL\nPage 1 of 3\nIntroduction\nbody\n"
                      "ACME CONFIDENTIAL\nPage 2 of 3\nPayment terms\nbody\n"
                      "ACME CONFIDENTIAL\nPage 3 of 3\n\nTermination\nbody\n";
    tome_anchor hp[] = {{0, TOME_ANCHOR_PAGE, 1}, {48, TOME_ANCHOR_PAGE, 2}, {97, TOME_ANCHOR_PAGE, 3}};
    got = doc_outline_str(hdr, hp, TOME_ARRAY_LEN(hp));
    TT_EQ_STR(got, "3:Introduction\n7:Payment terms\n12:Termination\n");
    free(got);
    /* two pages are too few to call a line a running header */
    got = doc_outline_str(hdr, hp, 2);
    TT_EQ_STR(got, "1:ACME CONFIDENTIAL\n5:ACME CONFIDENTIAL\n");
    free(got);
    /* headings found by the extraction (a PDF's bookmarks) come first */
    uint64_t heads[] = {78, 128};
    tome_outline_line *v = NULL;
    size_t n = 0;
    TT_OK(tome_outline_doc(hdr, strlen(hdr), hp, TOME_ARRAY_LEN(hp), heads, 2, &v, &n));
    TT_EQ_INT(n, 2);
    if (n == 2) {
        TT_EQ_INT(v[0].line, 7);
        TT_EQ_INT(v[1].line, 12);
    }
    free(v);
    /* paragraphs only: nothing here (the caller falls back to tome_outline) */
    got = doc_outline_str(docx, h, 1);
    TT_EQ_STR(got, "");
    free(got);
    got = doc_outline_str("", NULL, 0);
    TT_EQ_STR(got, "");
    free(got);
}

int main(void)
{
    TT_RUN(test_c);
    TT_RUN(test_python);
    TT_RUN(test_go_rust_java_js);
    TT_RUN(test_scripts);
    TT_RUN(test_markdown);
    TT_RUN(test_rst_adoc);
    TT_RUN(test_fallback_and_edges);
    TT_RUN(test_documents);
    return tt_finish();
}
