/*
 * tests/test_e2e_cite.c — the citation scanner of tome ask / tome report
 * (model/chat.c) on answers a real model writes: paths with spaces, Unicode
 * and ':', archive members ("x.zip!/inner/f.txt:3"), paths that are prefixes
 * of other paths, top-level names without '.' or '/', ranges with an en
 * dash, curly quotes glued to the path, out-of-range and malformed lines.
 */
#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tome/chat.h"
#include "tome/pack.h"
#include "tome/tokenizer.h"
#include "tt.h"

static tome_tokenizer_t *g_tok;
static char g_root[4096];

static void put(const char *rel, const char *text)
{
    char p[8192];
    snprintf(p, sizeof p, "%s/%s", g_root, rel);
    /* parents */
    for (char *s = p + strlen(g_root) + 1; (s = strchr(s, '/')) != NULL; s++) {
        *s = 0;
        mkdir(p, 0777);
        *s = '/';
    }
    FILE *f = fopen(p, "wb");
    TT_CHECK(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

static void put_zip(const char *rel, const char *member, const char *text)
{
    char p[8192];
    snprintf(p, sizeof p, "%s/%s", g_root, rel);
    struct archive *a = archive_write_new();
    archive_write_set_format_zip(a);
    TT_CHECK(archive_write_open_filename(a, p) == ARCHIVE_OK);
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, member);
    archive_entry_set_size(e, (la_int64_t)strlen(text));
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_write_header(a, e);
    archive_write_data(a, text, strlen(text));
    archive_entry_free(e);
    archive_write_close(a);
    archive_write_free(a);
}

typedef struct want {
    const char *text;
    int valid;
} want;

static void check(tome_pack_t *p, const char *ans, const want *w, size_t nw)
{
    tome_citation *c = NULL;
    size_t n = 0;
    TT_OK(tome_chat_citations(p, ans, strlen(ans), &c, &n));
    TT_EQ_INT(n, nw);
    for (size_t i = 0; i < n && i < nw; i++) {
        TT_EQ_STR(c[i].text, w[i].text);
        TT_EQ_INT(c[i].valid, w[i].valid);
        if (c[i].valid != w[i].valid) fprintf(stderr, "  %s: %s\n", c[i].text, c[i].reason ? c[i].reason : "valid");
        if (!c[i].valid) TT_CHECK(c[i].reason && *c[i].reason);
        if (c[i].valid) TT_CHECK(c[i].lines && *c[i].lines);
    }
    tome_citations_free(c, n);
}

static void test_tricky_citations(void)
{
    snprintf(g_root, sizeof g_root, "%s/cite-src", tt_tmpdir());
    mkdir(g_root, 0777);
    put("my dir/a b.txt", "one\ntwo\nthree\n");
    put("\xe6\x97\xa5\xe6\x9c\xac/\xe3\x83\x95\xe3\x82\xa1\xe3\x82\xa4\xe3\x83\xab.txt", "alpha\nbeta\n");
    put("src/a.c", "int a;\n");
    put("src/a.cc", "int a;\nint b;\nint c;\n");
    put("Makefile", "all:\n\ttrue\n");
    put("x/a:b.txt", "colon\nin\nname\n");
    put_zip("arch.zip", "inner/file.txt", "z1\nz2\nz3\nz4\n");
    char pk[8192];
    snprintf(pk, sizeof pk, "%s/cite.tpk", tt_tmpdir());
    tome_pack_opts po;
    tome_pack_opts_default(&po);
    po.tok = g_tok;
    const char *src[] = {g_root};
    TT_OK(tome_pack_build(src, 1, &po, pk, NULL));
    tome_pack_t *p = NULL;
    TT_OK(tome_pack_open(pk, &p));
    if (!p) return;

    /* spaces and Unicode in paths */
    check(p, "See my dir/a b.txt:2 and \xe6\x97\xa5\xe6\x9c\xac/\xe3\x83\x95\xe3\x82\xa1\xe3\x82\xa4\xe3\x83\xab.txt:1-2.",
          (want[]){{"my dir/a b.txt:2", 1},
                   {"\xe6\x97\xa5\xe6\x9c\xac/\xe3\x83\x95\xe3\x82\xa1\xe3\x82\xa4\xe3\x83\xab.txt:1-2", 1}},
          2);
    /* archive members */
    check(p, "The clause is in arch.zip!/inner/file.txt:3 (also arch.zip!/inner/file.txt:2-9).",
          (want[]){{"arch.zip!/inner/file.txt:3", 1}, {"arch.zip!/inner/file.txt:2-9", 0}}, 2);
    /* prefixes of other paths: src/a.c has 1 line, src/a.cc 3 */
    check(p, "src/a.c:1, src/a.cc:3, src/a.c:3, src/a:1", (want[]){{"src/a.c:1", 1}, {"src/a.cc:3", 1}, {"src/a.c:3", 0}, {"src/a:1", 0}},
          4);
    /* a top-level name with no '.' or '/', a ':' inside a name */
    check(p, "Build rules: Makefile:1-2; odd name x/a:b.txt:3. Not a citation: Makefile: 3",
          (want[]){{"Makefile:1-2", 1}, {"x/a:b.txt:3", 1}}, 2);
    /* an en dash range, curly quotes and an em dash glued to the path */
    check(p, "Lines \xe2\x80\x9cmy dir/a b.txt:1\xe2\x80\x93" "3\xe2\x80\x9d and \xe2\x80\x94src/a.cc:2",
          (want[]){{"my dir/a b.txt:1-3", 1}, {"src/a.cc:2", 1}}, 2);
    /* out of range and malformed lines are invalid with a reason */
    check(p, "src/a.cc:0 src/a.cc:3-2 src/a.cc:99999999999 src/a.cc:4",
          (want[]){{"src/a.cc:0", 0}, {"src/a.cc:3-2", 0}, {"src/a.cc:99999999999", 0}, {"src/a.cc:4", 0}}, 4);
    tome_pack_free(p);
}

int main(void)
{
    const char *tp = getenv("TOME_TOKENIZER");
    if (!tp || !*tp) tp = tt_shared_path("llama4/tokenizer.model");
    if (tome_tokenizer_open(tp, &g_tok) != TOME_OK) {
        fprintf(stderr, "test_e2e_cite: no tokenizer at %s: %s\n", tp, tome_last_error());
        return 1;
    }
    TT_RUN(test_tricky_citations);
    tome_tokenizer_free(g_tok);
    return tt_finish();
}
