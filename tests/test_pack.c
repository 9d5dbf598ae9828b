/*
 * tests/test_pack.c — the pack builder, the .tpk format and its reader.
 *
 * Packs are built from temporary trees with the real walker, text, archive,
 * redaction, outline and tokenizer code, then checked: ids equal a one-shot
 * encode of the rendered text, every token locates to the right original
 * line, byte-identical output across runs and thread counts, dedup aliases,
 * budget degradation order, skip reasons, corrupt-pack rejection at many
 * offsets, and atomic output when writing fails.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include <zstd.h>

#include "ingest/pack_impl.h"
#include "tt.h"
#include "tome/pack.h"
#include "tome/tokenizer.h"

static tome_tokenizer_t *g_tok;

static tome_tokenizer_t *tok(void)
{
    if (!g_tok) {
        tome_status st = tome_tokenizer_open(tt_shared_path("llama4/tokenizer.model"), &g_tok);
        if (st) tt_fail(__FILE__, __LINE__, "tokenizer: %s", tome_last_error());
    }
    return g_tok;
}

static char *path_in(const char *dir, const char *rel)
{
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    if (snprintf(buf[k], sizeof buf[k], "%s/%s", dir, rel) >= (int)sizeof buf[k]) buf[k][0] = 0;
    return buf[k];
}

static void put(const char *dir, const char *rel, const char *text)
{
    TT_CHECK(tt_write_file(path_in(dir, rel), text, strlen(text)) == 0);
}

/* A header of n prototypes at dir/rel: its outline is all of it. */
static void put_protos(const char *dir, const char *rel, int n)
{
    static char body[40000];
    size_t o = 0;
    for (int k = 0; k < n && o + 64 < sizeof body; k++)
        o += (size_t)snprintf(body + o, sizeof body - o, "int proto_%d(int a, int b);\n", k);
    body[o] = 0;
    put(dir, rel, body);
}

/* A small repository: docs, sources, a duplicate, a binary, a secret. */
static const char *make_repo(void)
{
    static char dir[1024];
    (void)!snprintf(dir, sizeof dir, "%s/repo%d", tt_tmpdir(), rand());
    put(dir, "README.md", "# Demo\n\nA demo repository.\n\n## Usage\n\nRun `demo`.\n");
    put(dir, "src/main.c",
        "#include <stdio.h>\n\n#include \"util.h\"\n\nint main(int argc, char **argv)\n{\n"
        "    (void)argv;\n    printf(\"%d\\n\", add(argc, 2));\n    return 0;\n}\n");
    put(dir, "src/util.c", "#include \"util.h\"\n\nint add(int a, int b)\n{\n    return a + b;\n}\n\n"
                           "int mul(int a, int b)\n{\n    return a * b;\n}\n");
    put(dir, "src/util.h", "#ifndef UTIL_H\n#define UTIL_H\nint add(int a, int b);\nint mul(int a, int b);\n#endif\n");
    put(dir, "src/copy_of_util.c", "#include \"util.h\"\n\nint add(int a, int b)\n{\n    return a + b;\n}\n\n"
                                   "int mul(int a, int b)\n{\n    return a * b;\n}\n");
    put(dir, "tests/test_util.c", "#include \"util.h\"\nint main(void) { return add(1, 1) != 2; }\n");
    put(dir, "notes.txt", "no newline at the end");
    put(dir, "empty.txt", "");
    put(dir, "config/key.pem",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgHcTz6sE2I2yPB\n"
        "aFDrBz9vFqU4yQkXhbQpZ0Zl1uVQbq2ds3nR7Hq5r8cQ3JzJx5vQm6pQp1Lq7cQm\n-----END RSA PRIVATE KEY-----\n");
    static const unsigned char bin[] = {0x7f, 'E', 'L', 'F', 0, 0, 1, 2, 3, 0, 0, 0, 9, 9};
    TT_CHECK(tt_write_file(path_in(dir, "bin/tool"), bin, sizeof bin) == 0);
    put(dir, "latin1.txt", "caf\xe9 cr\xe8me\n");
    return dir;
}

static tome_status build(const char *src, const char *out, int threads, uint64_t budget, int line_numbers,
                         tome_pack_format fmt)
{
    tome_pack_opts o;
    tome_pack_opts_default(&o);
    o.tok = tok();
    o.n_threads = threads;
    o.line_numbers = line_numbers;
    o.format = fmt;
    if (budget) o.budget = budget;
    const char *srcs[] = {src};
    return tome_pack_build(srcs, 1, &o, out, NULL);
}

/* Whether files a and b hold the same bytes (both readable). */
static int same_bytes(const char *a, const char *b)
{
    size_t la, lb;
    char *x = tt_read_file(a, &la), *y = tt_read_file(b, &lb);
    int same = x && y && la == lb && !memcmp(x, y, la);
    free(x);
    free(y);
    return same;
}

static tome_pack_opts opts_with(int threads)
{
    tome_pack_opts o;
    tome_pack_opts_default(&o);
    o.tok = tok();
    o.n_threads = threads;
    return o;
}

/* dir packed into out with no budget to speak of, opened (NULL on failure). */
static tome_pack_t *pack_unbounded(const char *dir, const char *out)
{
    const char *srcs[] = {dir};
    tome_pack_opts o = opts_with(2);
    o.budget = 1u << 30;
    tome_pack_t *p = NULL;
    TT_OK(tome_pack_build(srcs, 1, &o, out, NULL));
    TT_OK(tome_pack_open(out, &p));
    return p;
}

static int find_file(tome_pack_t *p, const char *path)
{
    for (size_t i = 0; i < tome_pack_n_files(p); i++) {
        tome_pack_file f;
        tome_pack_get_file(p, i, &f);
        if (!strcmp(f.path, path)) return (int)i;
    }
    return -1;
}

/* The n-th (1-based) line of a file on disk, without '\n'; malloc'd. */
static char *disk_line(const char *path, uint32_t line)
{
    size_t len;
    char *d = tt_read_file(path, &len);
    if (!d) return NULL;
    char *s = d;
    for (uint32_t l = 1; l < line && s; l++) {
        s = memchr(s, '\n', len - (size_t)(s - d));
        if (s) s++;
    }
    char *r = NULL;
    if (s && s <= d + len) {
        char *e = memchr(s, '\n', len - (size_t)(s - d));
        r = strndup(s, e ? (size_t)(e - s) : len - (size_t)(s - d));
    }
    free(d);
    return r;
}

/* Checks ids == encode(text) and that every token in a file block locates to
 * a rendered line that is exactly (prefix +) the original line on disk. */
static void check_pack(const char *pack, const char *srcdir, int check_lines)
{
    tome_pack_t *p = NULL;
    TT_OK(tome_pack_open(pack, &p));
    if (!p) return;
    const char *text;
    size_t tlen;
    const int32_t *ids;
    size_t n_ids;
    TT_OK(tome_pack_text(p, &text, &tlen));
    TT_OK(tome_pack_ids(p, &ids, &n_ids));
    tome_tokens_t once = {0};
    TT_OK(tome_tokenizer_encode(tok(), text, tlen, NULL, &once));
    TT_EQ_INT(once.n, n_ids);
    TT_CHECK(once.n == n_ids && memcmp(once.ids, ids, n_ids * sizeof *ids) == 0);
    tome_tokens_free(&once);
    TT_CHECK(tlen > 0 && text[tlen - 1] == '\n');
    /* the documents part of a prompt: after text ending in '\n' and before a
     * question, the ids of the whole prompt are prefix + pack + question ids */
    {
        static const char pre[] = "<|header_start|>system<|header_end|>\n\nAnswer from these files, cite path:line.\n";
        static const char post[] = "Which function adds two numbers?";
        size_t np = sizeof pre - 1, nq = sizeof post - 1;
        char *all = malloc(np + tlen + nq);
        memcpy(all, pre, np);
        memcpy(all + np, text, tlen);
        memcpy(all + np + tlen, post, nq);
        tome_tokens_t whole = {0}, a = {0}, c = {0};
        TT_OK(tome_tokenizer_encode(tok(), all, np + tlen + nq, NULL, &whole));
        TT_OK(tome_tokenizer_encode(tok(), pre, np, NULL, &a));
        TT_OK(tome_tokenizer_encode(tok(), post, nq, NULL, &c));
        TT_EQ_INT(whole.n, a.n + n_ids + c.n);
        TT_CHECK(whole.n == a.n + n_ids + c.n && !memcmp(whole.ids, a.ids, a.n * sizeof *ids) &&
                 !memcmp(whole.ids + a.n, ids, n_ids * sizeof *ids) &&
                 !memcmp(whole.ids + a.n + n_ids, c.ids, c.n * sizeof *ids));
        tome_tokens_free(&whole);
        tome_tokens_free(&a);
        tome_tokens_free(&c);
        free(all);
    }
    tome_pack_info info;
    tome_pack_get_info(p, &info);
    TT_EQ_INT(info.n_tokens, n_ids);
    char th[33];
    tome_tokenizer_hash(tok(), th);
    TT_EQ_STR(info.tokenizer_hash, th);
    /* token → line */
    size_t off = 0, bad = 0, checked = 0;
    for (size_t t = 0; t < n_ids; t++) {
        size_t len;
        const char *tb = tome_tokenizer_token_bytes(tok(), ids[t], &len);
        TT_CHECK(tb && !memcmp(text + off, tb, len));
        tome_pack_loc loc;
        TT_OK(tome_pack_locate(p, t, &loc));
        if (check_lines && loc.file >= 0 && loc.line > 0) {
            tome_pack_file f;
            tome_pack_get_file(p, (size_t)loc.file, &f);
            if (f.n_redactions == 0 && !strcmp(f.encoding, "utf-8") && f.status != TOME_FILE_ALIAS) {
                TT_CHECK(off >= f.text_offset && off < f.text_offset + f.text_len);
                size_t ls = off;
                while (ls > 0 && text[ls - 1] != '\n') ls--;
                const char *le = memchr(text + off, '\n', tlen - off);
                size_t rlen = (size_t)(le - (text + ls));
                char *orig = disk_line(path_in(srcdir, f.path), loc.line);
                checked++;
                if (!orig || rlen < strlen(orig) || memcmp(text + ls + rlen - strlen(orig), orig, strlen(orig)) != 0) {
                    if (bad++ < 5)
                        tt_fail(__FILE__, __LINE__, "token %zu -> %s:%u: rendered '%.*s' vs original '%s'", t, f.path,
                                loc.line, (int)rlen, text + ls, orig ? orig : "(none)");
                }
                free(orig);
            }
        }
        off += len;
    }
    TT_EQ_INT(off, tlen);
    if (check_lines) TT_CHECK(checked > 0);
    tome_pack_loc loc;
    TT_STATUS(tome_pack_locate(p, n_ids, &loc), TOME_ERR_NOT_FOUND);
    tome_pack_free(p);
}

static void test_roundtrip_and_locate(void)
{
    const char *dir = make_repo();
    for (int fmt = 0; fmt < 3; fmt++)
        for (int ln = 0; ln < 2; ln++) {
            char out[1100];
            (void)!snprintf(out, sizeof out, "%s/p_%d_%d.tpk", tt_tmpdir(), fmt, ln);
            TT_OK(build(dir, out, 2, 0, ln, (tome_pack_format)fmt));
            check_pack(out, dir, 1);
        }
}

static void test_manifest_statuses(void)
{
    const char *dir = make_repo();
    char out[1100];
    (void)!snprintf(out, sizeof out, "%s/m.tpk", tt_tmpdir());
    TT_OK(build(dir, out, 2, 0, 0, TOME_PACK_XML));
    tome_pack_t *p = NULL;
    TT_OK(tome_pack_open(out, &p));
    if (!p) return;
    tome_pack_file f;
    int readme = find_file(p, "README.md");
    TT_EQ_INT(readme, 0); /* README first */
    int bin = find_file(p, "bin/tool");
    TT_CHECK(bin >= 0);
    if (bin >= 0) {
        tome_pack_get_file(p, (size_t)bin, &f);
        TT_EQ_INT(f.status, TOME_FILE_SKIPPED);
        TT_CONTAINS(f.reason, "binary");
        TT_EQ_INT(f.tok_count, 0);
    }
    /* dedup: util.c and copy_of_util.c: the first in order is stored */
    int a = find_file(p, "src/copy_of_util.c"), b = find_file(p, "src/util.c");
    TT_CHECK(a >= 0 && b >= 0);
    if (a >= 0 && b >= 0) {
        tome_pack_file fa, fb;
        tome_pack_get_file(p, (size_t)a, &fa);
        tome_pack_get_file(p, (size_t)b, &fb);
        TT_EQ_INT(fa.status, TOME_FILE_FULL);
        TT_EQ_INT(fb.status, TOME_FILE_ALIAS);
        TT_EQ_INT(fb.alias_of, a);
        TT_EQ_STR(fa.content_hash, fb.content_hash);
        const char *text;
        size_t len;
        TT_OK(tome_pack_text(p, &text, &len));
        TT_CONTAINS(text, "<file path=\"src/util.c\" alias-of=\"src/copy_of_util.c\"/>");
        /* citing the alias gives the stored copy's lines */
        char *c = NULL;
        size_t cl;
        TT_OK(tome_pack_cite(p, "src/util.c:3", &c, &cl));
        TT_EQ_STR(c, "int add(int a, int b)\n");
        free(c);
    }
    /* the private key is redacted, the file kept */
    int key = find_file(p, "config/key.pem");
    TT_CHECK(key >= 0);
    if (key >= 0) {
        tome_pack_get_file(p, (size_t)key, &f);
        TT_EQ_INT(f.status, TOME_FILE_FULL);
        TT_CHECK(f.n_redactions >= 1);
        const char *text;
        size_t len;
        TT_OK(tome_pack_text(p, &text, &len));
        TT_CHECK(!strstr(text, "MIIEowIBAAKCAQEA0Z3VS5JJcds3xfn"));
        TT_CONTAINS(text, "[REDACTED:");
    }
    int l1 = find_file(p, "latin1.txt");
    if (l1 >= 0) {
        tome_pack_get_file(p, (size_t)l1, &f);
        TT_EQ_STR(f.encoding, "latin-1");
        char *c = NULL;
        size_t cl;
        TT_OK(tome_pack_cite(p, "latin1.txt:1", &c, &cl));
        TT_EQ_STR(c, "caf\xc3\xa9 cr\xc3\xa8me\n");
        free(c);
    }
    int nn = find_file(p, "notes.txt");
    TT_CHECK(nn >= 0);
    char *c = NULL;
    size_t cl;
    TT_OK(tome_pack_cite(p, "notes.txt:1", &c, &cl));
    TT_EQ_STR(c, "no newline at the end\n");
    free(c);
    tome_pack_free(p);
}

static void test_cite(void)
{
    const char *dir = make_repo();
    char out[1100];
    (void)!snprintf(out, sizeof out, "%s/c.tpk", tt_tmpdir());
    TT_OK(build(dir, out, 2, 0, 1, TOME_PACK_MARKDOWN));
    tome_pack_t *p = NULL;
    TT_OK(tome_pack_open(out, &p));
    if (!p) return;
    char *c = NULL;
    size_t n;
    TT_OK(tome_pack_cite(p, "src/main.c:5-6", &c, &n));
    TT_EQ_STR(c, "int main(int argc, char **argv)\n{\n");
    free(c);
    c = NULL;
    TT_OK(tome_pack_cite(p, "README.md:1", &c, &n));
    TT_EQ_STR(c, "# Demo\n");
    free(c);
    c = NULL;
    TT_STATUS(tome_pack_cite(p, "src/main.c:11", &c, &n), TOME_ERR_NOT_FOUND); /* 10 lines */
    TT_STATUS(tome_pack_cite(p, "src/nope.c:1", &c, &n), TOME_ERR_NOT_FOUND);
    TT_STATUS(tome_pack_cite(p, "bin/tool:1", &c, &n), TOME_ERR_NOT_FOUND);
    TT_STATUS(tome_pack_cite(p, "src/main.c:0", &c, &n), TOME_ERR_INVALID_ARG);
    TT_STATUS(tome_pack_cite(p, "src/main.c:3-2", &c, &n), TOME_ERR_INVALID_ARG);
    TT_STATUS(tome_pack_cite(p, "src/main.c", &c, &n), TOME_ERR_INVALID_ARG);
    TT_CHECK(c == NULL);
    tome_pack_free(p);
}

static void test_deterministic(void)
{
    const char *dir = make_repo();
    char a[1100], b[1100], d[1100];
    (void)!snprintf(a, sizeof a, "%s/d1.tpk", tt_tmpdir());
    (void)!snprintf(b, sizeof b, "%s/d2.tpk", tt_tmpdir());
    (void)!snprintf(d, sizeof d, "%s/d3.tpk", tt_tmpdir());
    TT_OK(build(dir, a, 1, 0, 0, TOME_PACK_XML));
    TT_OK(build(dir, b, 2, 0, 0, TOME_PACK_XML));
    TT_OK(build(dir, d, 7, 0, 0, TOME_PACK_XML));
    /* no id cache: every file is read and tokenized again when written */
    char e[1100];
    (void)!snprintf(e, sizeof e, "%s/d4.tpk", tt_tmpdir());
    tome_pack_opts o;
    tome_pack_opts_default(&o);
    o.tok = tok();
    o.cache_ids = 1;
    const char *srcs[] = {dir};
    TT_OK(tome_pack_build(srcs, 1, &o, e, NULL));
    size_t le;
    char *w = tt_read_file(e, &le);
    size_t la, lb, ld;
    char *x = tt_read_file(a, &la), *y = tt_read_file(b, &lb), *z = tt_read_file(d, &ld);
    TT_CHECK(x && y && z && la == lb && la == ld && !memcmp(x, y, la) && !memcmp(x, z, la));
    TT_CHECK(w && le == la && !memcmp(x, w, la));
    free(w);
    free(x);
    free(y);
    free(z);
}

static void test_budget_degrades_lowest_priority_first(void)
{
    char dir[1024];
    (void)!snprintf(dir, sizeof dir, "%s/budget", tt_tmpdir());
    put(dir, "README.md", "# Budget test\n\nThe readme stays whole.\n");
    char big[20000];
    size_t o = 0;
    for (int i = 0; i < 120 && o + 200 < sizeof big; i++)
        o += (size_t)snprintf(big + o, sizeof big - o, "int function_%d(int x)\n{\n    return x * %d + %d;\n}\n\n", i,
                              i, i * 7);
    put(dir, "src/core.c", big);
    put(dir, "tests/test_core.c", big);
    o = 0;
    for (int i = 0; i < 300 && o + 100 < sizeof big; i++)
        o += (size_t)snprintf(big + o, sizeof big - o, "\"pkg-%d\": \"1.%d.%d\",\n", i, i, i * 3);
    put(dir, "package-lock.json", big);
    char full[1100], small[1100];
    (void)!snprintf(full, sizeof full, "%s/full.tpk", tt_tmpdir());
    (void)!snprintf(small, sizeof small, "%s/small.tpk", tt_tmpdir());
    TT_OK(build(dir, full, 2, 0, 0, TOME_PACK_XML));
    tome_pack_t *p = NULL;
    TT_OK(tome_pack_open(full, &p));
    if (!p) return;
    tome_pack_info info;
    tome_pack_get_info(p, &info);
    uint64_t all = info.n_tokens;
    tome_pack_file lock;
    tome_pack_get_file(p, (size_t)find_file(p, "package-lock.json"), &lock);
    tome_pack_free(p);
    /* just below the full size: only the lowest-priority file (the lockfile) degrades */
    uint64_t budget = all - lock.full_tokens / 2;
    TT_OK(build(dir, small, 2, budget, 0, TOME_PACK_XML));
    check_pack(small, dir, 1);
    TT_OK(tome_pack_open(small, &p));
    if (!p) return;
    tome_pack_get_info(p, &info);
    TT_CHECK(info.n_tokens <= budget);
    tome_pack_file f;
    tome_pack_get_file(p, (size_t)find_file(p, "package-lock.json"), &f);
    TT_CHECK(f.status == TOME_FILE_OUTLINE || f.status == TOME_FILE_LISTED);
    TT_CONTAINS(f.reason, "budget");
    tome_pack_get_file(p, (size_t)find_file(p, "src/core.c"), &f);
    TT_EQ_INT(f.status, TOME_FILE_FULL);
    tome_pack_get_file(p, (size_t)find_file(p, "tests/test_core.c"), &f);
    TT_EQ_INT(f.status, TOME_FILE_ALIAS); /* same content as src/core.c */
    tome_pack_free(p);
    /* a tight budget: everything degrades, lower priorities first and further */
    TT_OK(build(dir, small, 2, 600, 0, TOME_PACK_XML));
    {   /* same pack when nothing is cached: outlines are re-read and re-tokenized */
        char nocache[1100];
        (void)!snprintf(nocache, sizeof nocache, "%s/small_nocache.tpk", tt_tmpdir());
        tome_pack_opts nc;
        tome_pack_opts_default(&nc);
        nc.tok = tok();
        nc.budget = 600;
        nc.cache_ids = 1;
        const char *srcs[] = {dir};
        TT_OK(tome_pack_build(srcs, 1, &nc, nocache, NULL));
        TT_CHECK(same_bytes(small, nocache));
        check_pack(nocache, dir, 1);
    }
    TT_OK(tome_pack_open(small, &p));
    if (!p) return;
    tome_pack_get_info(p, &info);
    TT_CHECK(info.n_tokens <= 600);
    tome_pack_get_file(p, 0, &f);
    TT_EQ_STR(f.path, "README.md");
    TT_CHECK(f.status == TOME_FILE_FULL || f.status == TOME_FILE_OUTLINE);
    /* a file worse off than a lower-priority one could not have been restored
     * to full text within the budget (the refill pass goes by priority) */
    int worst = 0;
    for (size_t i = 0; i < tome_pack_n_files(p); i++) {
        tome_pack_get_file(p, i, &f);
        if (f.status > TOME_FILE_LISTED) continue;
        if ((int)f.status > worst) worst = (int)f.status;
        for (size_t j = i + 1; j < tome_pack_n_files(p); j++) {
            tome_pack_file g;
            tome_pack_get_file(p, j, &g);
            if (g.status <= TOME_FILE_LISTED && g.status < f.status)
                TT_CHECK(info.n_tokens - f.tok_count + f.full_tokens > 600);
        }
    }
    TT_CHECK(worst > 0);
    char *c = NULL;
    size_t cl;
    tome_pack_get_file(p, (size_t)find_file(p, "src/core.c"), &f);
    if (f.status == TOME_FILE_OUTLINE) {
        TT_OK(tome_pack_cite(p, "src/core.c:1", &c, &cl)); /* a signature line is in the outline */
        free(c);
        c = NULL;
        TT_STATUS(tome_pack_cite(p, "src/core.c:3", &c, &cl), TOME_ERR_NOT_FOUND); /* a body line is not */
    }
    tome_pack_free(p);
    /* too small for even the tree */
    TT_STATUS(build(dir, small, 2, 5, 0, TOME_PACK_XML), TOME_ERR_LIMIT);
}

static void test_skip_reasons(void)
{
    char dir[1024];
    (void)!snprintf(dir, sizeof dir, "%s/skips", tt_tmpdir());
    put(dir, "ok.c", "int ok;\n");
    char *big = malloc(5000);
    memset(big, 'a', 4999);
    big[4999] = 0;
    put(dir, "huge.txt", big);
    free(big);
    TT_EQ_INT(mkfifo(path_in(dir, "pipe"), 0600), 0);
    put(dir, "secret.txt", "hidden\n");
    int unreadable = geteuid() != 0 && chmod(path_in(dir, "secret.txt"), 0) == 0;
    char out[1100];
    (void)!snprintf(out, sizeof out, "%s/s.tpk", tt_tmpdir());
    tome_pack_opts o;
    tome_pack_opts_default(&o);
    o.tok = tok();
    o.max_file_bytes = 4096;
    const char *srcs[] = {dir};
    TT_OK(tome_pack_build(srcs, 1, &o, out, NULL));
    tome_pack_t *p = NULL;
    TT_OK(tome_pack_open(out, &p));
    if (!p) return;
    tome_pack_file f;
    int i = find_file(p, "huge.txt");
    TT_CHECK(i >= 0);
    if (i >= 0) {
        tome_pack_get_file(p, (size_t)i, &f);
        TT_EQ_INT(f.status, TOME_FILE_SKIPPED);
        TT_CONTAINS(f.reason, "large");
    }
    i = find_file(p, "pipe");
    if (i >= 0) { /* the walker may list it or leave it out; never read it */
        tome_pack_get_file(p, (size_t)i, &f);
        TT_EQ_INT(f.status, TOME_FILE_SKIPPED);
    }
    if (unreadable) {
        i = find_file(p, "secret.txt");
        TT_CHECK(i >= 0);
        if (i >= 0) {
            tome_pack_get_file(p, (size_t)i, &f);
            TT_EQ_INT(f.status, TOME_FILE_SKIPPED);
        }
        chmod(path_in(dir, "secret.txt"), 0644);
    }
    TT_CHECK(find_file(p, "ok.c") >= 0);
    tome_pack_free(p);
}

/* A tar.gz with a good member, a "../" member and an absolute one. */
static void write_tar(const char *path)
{
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    archive_write_add_filter_gzip(a);
    TT_EQ_INT(archive_write_open_filename(a, path), ARCHIVE_OK);
    const char *names[] = {"pkg/hello.c", "../evil.c", "/etc/abs.c", "pkg/README.md"};
    const char *bodies[] = {"int hello(void)\n{\n    return 1;\n}\n", "evil\n", "abs\n", "# Pkg\n\nInside.\n"};
    for (int i = 0; i < 4; i++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, names[i]);
        archive_entry_set_size(e, (la_int64_t)strlen(bodies[i]));
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_write_header(a, e);
        archive_write_data(a, bodies[i], strlen(bodies[i]));
        archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
}

static void test_archive_members(void)
{
    char dir[1024];
    (void)!snprintf(dir, sizeof dir, "%s/arch", tt_tmpdir());
    put(dir, "top.c", "int top;\n");
    write_tar(path_in(dir, "bundle.tar.gz"));
    char out[1100];
    (void)!snprintf(out, sizeof out, "%s/a.tpk", tt_tmpdir());
    TT_OK(build(dir, out, 2, 0, 0, TOME_PACK_XML));
    tome_pack_t *p = NULL;
    TT_OK(tome_pack_open(out, &p));
    if (!p) return;
    int h = find_file(p, "bundle.tar.gz!/pkg/hello.c");
    TT_CHECK(h >= 0);
    char *c = NULL;
    size_t cl;
    TT_OK(tome_pack_cite(p, "bundle.tar.gz!/pkg/hello.c:1", &c, &cl));
    TT_EQ_STR(c, "int hello(void)\n");
    free(c);
    /* no member escapes: none is packed as text, each is listed with a reason */
    for (size_t i = 0; i < tome_pack_n_files(p); i++) {
        tome_pack_file f;
        tome_pack_get_file(p, i, &f);
        if (strstr(f.path, "evil") || strstr(f.path, "abs.c")) {
            TT_EQ_INT(f.status, TOME_FILE_SKIPPED);
            TT_CHECK(*f.reason);
        }
    }
    TT_CHECK(access(path_in(tt_tmpdir(), "evil.c"), F_OK) != 0);
    tome_pack_free(p);
    check_pack(out, dir, 0);
}

static void test_corrupt_packs_rejected(void)
{
    const char *dir = make_repo();
    char out[1100], bad[1100];
    (void)!snprintf(out, sizeof out, "%s/good.tpk", tt_tmpdir());
    (void)!snprintf(bad, sizeof bad, "%s/bad.tpk", tt_tmpdir());
    TT_OK(build(dir, out, 2, 0, 0, TOME_PACK_XML));
    size_t len;
    char *d = tt_read_file(out, &len);
    TT_CHECK(d && len > 200);
    if (!d) return;
    size_t step = len / 400 + 1, opened = 0;
    for (size_t off = 0; off < len; off += step) {
        for (int bit = 0; bit < 8; bit += 3) {
            d[off] ^= (char)(1 << bit);
            tt_write_file(bad, d, len);
            d[off] ^= (char)(1 << bit);
            tome_pack_t *p = NULL;
            tome_status st = tome_pack_open(bad, &p);
            if (st == TOME_OK) {
                opened++;
                tome_pack_free(p);
            } else {
                TT_CHECK(st == TOME_ERR_FORMAT || st == TOME_ERR_UNSUPPORTED);
                TT_CONTAINS(tome_last_error(), bad);
            }
        }
    }
    TT_EQ_INT(opened, 0); /* every byte is covered by a checksum */
    for (size_t cut = 0; cut < len; cut += step) {
        tt_write_file(bad, d, cut);
        tome_pack_t *p = NULL;
        tome_status st = tome_pack_open(bad, &p);
        TT_CHECK(st != TOME_OK);
        tome_pack_free(p);
    }
    /* appended garbage */
    char *ext = malloc(len + 3);
    memcpy(ext, d, len);
    memcpy(ext + len, "xyz", 3);
    tt_write_file(bad, ext, len + 3);
    tome_pack_t *p = NULL;
    TT_STATUS(tome_pack_open(bad, &p), TOME_ERR_FORMAT);
    free(ext);
    /* a future version is refused by version, not by checksum */
    d[8] = 99;
    tt_write_file(bad, d, len);
    TT_STATUS(tome_pack_open(bad, &p), TOME_ERR_UNSUPPORTED);
    TT_CONTAINS(tome_last_error(), "version");
    /* version 2 (text zstd-compressed) is refused by name, with what to do */
    d[8] = 2;
    tt_write_file(bad, d, len);
    TT_STATUS(tome_pack_open(bad, &p), TOME_ERR_UNSUPPORTED);
    TT_CONTAINS(tome_last_error(), "version 2");
    TT_CONTAINS(tome_last_error(), "pack the sources again");
    /* version 3 (no lower-bound flag on counts) is refused by name, with what to do */
    d[8] = 3;
    tt_write_file(bad, d, len);
    TT_STATUS(tome_pack_open(bad, &p), TOME_ERR_UNSUPPORTED);
    TT_CONTAINS(tome_last_error(), "version 3");
    TT_CONTAINS(tome_last_error(), "pack the sources again");
    /* version 1 (ids as 4 bytes) is refused by name, with what to do */
    d[8] = 1;
    tt_write_file(bad, d, len);
    TT_STATUS(tome_pack_open(bad, &p), TOME_ERR_UNSUPPORTED);
    TT_CONTAINS(tome_last_error(), "version 1");
    TT_CONTAINS(tome_last_error(), "pack the sources again");
    memcpy(d, "NOTAPACK", 8);
    tt_write_file(bad, d, len);
    TT_STATUS(tome_pack_open(bad, &p), TOME_ERR_FORMAT);
    TT_CONTAINS(tome_last_error(), "magic");
    free(d);
}

static void test_atomic_output(void)
{
    const char *dir = make_repo();
    char out[1100];
    /* output directory does not exist: error, nothing written */
    (void)!snprintf(out, sizeof out, "%s/no/such/dir/x.tpk", tt_tmpdir());
    TT_CHECK(build(dir, out, 2, 0, 0, TOME_PACK_XML) != TOME_OK);
    TT_CHECK(access(out, F_OK) != 0);
    /* a file-size limit hit mid-write: the old file stays, no temp is left */
    (void)!snprintf(out, sizeof out, "%s/atomic.tpk", tt_tmpdir());
    TT_CHECK(tt_write_file(out, "old", 3) == 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {1000, 1000};
        setrlimit(RLIMIT_FSIZE, &rl);
        tome_status st = build(dir, out, 1, 0, 0, TOME_PACK_XML);
        _exit(st == TOME_ERR_NOSPACE ? 0 : st == TOME_OK ? 1 : 2);
    }
    int ws = 0;
    waitpid(pid, &ws, 0);
    TT_CHECK(WIFEXITED(ws));
    TT_CHECK(WEXITSTATUS(ws) == 0 || WEXITSTATUS(ws) == 2);
    size_t len;
    char *d = tt_read_file(out, &len);
    TT_CHECK(d && len == 3 && !memcmp(d, "old", 3));
    free(d);
    TT_EQ_INT(tt_system("ls '%s' | grep -q 'atomic.tpk.tmp'", tt_tmpdir()), 1);
}

static void test_multiple_sources_and_samples(void)
{
    const char *dir = make_repo();
    char second[1024];
    (void)!snprintf(second, sizeof second, "%s/other", tt_tmpdir());
    put(second, "lib.py", "def f(x):\n    return x + 1\n");
    char out[1100];
    (void)!snprintf(out, sizeof out, "%s/multi.tpk", tt_tmpdir());
    tome_pack_opts o;
    tome_pack_opts_default(&o);
    o.tok = tok();
    const char *srcs[] = {dir, second, path_in(dir, "README.md")};
    TT_OK(tome_pack_build(srcs, 3, &o, out, NULL));
    tome_pack_t *p = NULL;
    TT_OK(tome_pack_open(out, &p));
    if (p) {
        TT_CHECK(find_file(p, "other/lib.py") >= 0);
        char *c = NULL;
        size_t cl;
        TT_OK(tome_pack_cite(p, "other/lib.py:2", &c, &cl));
        TT_EQ_STR(c, "    return x + 1\n");
        free(c);
        tome_pack_free(p);
    }
    check_pack(out, tt_tmpdir(), 0);
    /* the bundled sample repository, when present */
    const char *samples = tt_source_path("samples/repo");
    struct stat sb;
    if (stat(samples, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        (void)!snprintf(out, sizeof out, "%s/samples.tpk", tt_tmpdir());
        TT_OK(build(samples, out, 2, 0, 0, TOME_PACK_XML));
        check_pack(out, samples, 0);
    }
}

typedef struct prog_log {
    int calls;
    uint64_t last_done, last_total;
    int saw_read, saw_write;
} prog_log;

static void on_prog(void *ud, const tome_pack_progress *p)
{
    prog_log *l = ud;
    l->calls++;
    l->last_done = p->done;
    l->last_total = p->total;
    if (!strcmp(p->phase, "read")) l->saw_read = 1;
    if (!strcmp(p->phase, "write")) l->saw_write = 1;
}

static void test_filters_progress_and_duplicate_paths(void)
{
    const char *dir = make_repo();
    char out[1100];
    (void)!snprintf(out, sizeof out, "%s/f.tpk", tt_tmpdir());
    tome_pack_opts o;
    tome_pack_opts_default(&o);
    o.tok = tok();
    const char *incl[] = {"src/", "README.md", NULL};
    const char *excl[] = {"*.h", NULL};
    o.include = incl;
    o.exclude = excl;
    prog_log pl = {0};
    o.progress = on_prog;
    o.progress_ud = &pl;
    const char *srcs[] = {dir};
    tome_pack_stats st;
    TT_OK(tome_pack_build(srcs, 1, &o, out, &st));
    TT_CHECK(pl.calls > 0 && pl.saw_read && pl.saw_write);
    TT_EQ_INT(pl.last_done, pl.last_total);
    tome_pack_t *p = NULL;
    TT_OK(tome_pack_open(out, &p));
    if (p) {
        TT_CHECK(find_file(p, "src/main.c") >= 0);
        TT_CHECK(find_file(p, "README.md") >= 0);
        TT_EQ_INT(find_file(p, "src/util.h"), -1);
        TT_EQ_INT(find_file(p, "notes.txt"), -1);
        TT_EQ_INT(tome_pack_n_files(p), st.n_files);
        tome_pack_info info;
        tome_pack_get_info(p, &info);
        TT_EQ_INT(info.n_tokens, st.n_tokens);
        tome_pack_free(p);
    }
    /* the same file given twice: one copy, the other listed as a duplicate path */
    const char *twice[] = {path_in(dir, "README.md"), path_in(dir, "README.md")};
    tome_pack_opts_default(&o);
    o.tok = tok();
    TT_OK(tome_pack_build(twice, 2, &o, out, NULL));
    TT_OK(tome_pack_open(out, &p));
    if (p) {
        TT_EQ_INT(tome_pack_n_files(p), 2);
        tome_pack_file a, b;
        tome_pack_get_file(p, 0, &a);
        tome_pack_get_file(p, 1, &b);
        TT_EQ_INT(a.status, TOME_FILE_FULL);
        TT_EQ_INT(b.status, TOME_FILE_SKIPPED);
        TT_CONTAINS(b.reason, "duplicate path");
        tome_pack_free(p);
    }
}

/* A plain tar of (name, body) pairs. */
static void write_plain_tar(const char *path, const char *const *names, const char *const *bodies, int n)
{
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    TT_EQ_INT(archive_write_open_filename(a, path), ARCHIVE_OK);
    for (int i = 0; i < n; i++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, names[i]);
        archive_entry_set_size(e, (la_int64_t)strlen(bodies[i]));
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_write_header(a, e);
        archive_write_data(a, bodies[i], strlen(bodies[i]));
        archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
}

static int count_path(tome_pack_t *p, const char *path)
{
    int n = 0;
    for (size_t i = 0; i < tome_pack_n_files(p); i++) {
        tome_pack_file f;
        tome_pack_get_file(p, i, &f);
        n += !strcmp(f.path, path);
    }
    return n;
}

/* Two members of one name (a tar appended to) and a truncated tar: every
 * path in the manifest is unique, the first member keeps the name (for any
 * thread count), and a damaged archive is one entry with its reason. */
static void test_archive_duplicate_members_and_damage(void)
{
    char dir[1024];
    (void)!snprintf(dir, sizeof dir, "%s/dupmem", tt_tmpdir());
    put(dir, "top.c", "int top;\n");
    const char *names[] = {"d/a.txt", "d/a.txt", "d/b.txt"};
    char big[3000];
    memset(big, 'x', sizeof big - 2);
    big[sizeof big - 2] = '\n';
    big[sizeof big - 1] = 0;
    const char *bodies[] = {"first copy\n", "second copy\n", big};
    write_plain_tar(path_in(dir, "dup.tar"), names, bodies, 3);
    size_t tl = 0;
    char *tar = tt_read_file(path_in(dir, "dup.tar"), &tl);
    TT_CHECK(tar && tl > 3 * 512 + 1024);
    if (!tar) return;
    /* cut inside d/b.txt's data: two members, then a truncated one */
    TT_CHECK(tt_write_file(path_in(dir, "cut.tar"), tar, 512 * 5 + 700) == 0);
    free(tar);
    char out1[1100], out2[1100];
    (void)!snprintf(out1, sizeof out1, "%s/dm1.tpk", tt_tmpdir());
    (void)!snprintf(out2, sizeof out2, "%s/dm2.tpk", tt_tmpdir());
    TT_OK(build(dir, out1, 1, 0, 0, TOME_PACK_XML));
    TT_OK(build(dir, out2, 2, 0, 0, TOME_PACK_XML));
    size_t l1 = 0, l2 = 0;
    char *b1 = tt_read_file(out1, &l1), *b2 = tt_read_file(out2, &l2);
    TT_CHECK(b1 && b2 && l1 == l2 && !memcmp(b1, b2, l1));
    free(b1);
    free(b2);
    tome_pack_t *p = NULL;
    TT_OK(tome_pack_open(out1, &p));
    if (!p) return;
    for (size_t i = 0; i < tome_pack_n_files(p); i++) {
        tome_pack_file f;
        tome_pack_get_file(p, i, &f);
        TT_EQ_INT(count_path(p, f.path), 1);
    }
    char *c = NULL;
    size_t cl;
    TT_OK(tome_pack_cite(p, "dup.tar!/d/a.txt:1", &c, &cl));
    TT_EQ_STR(c, "first copy\n");
    free(c);
    int k = find_file(p, "dup.tar!/d/a.txt#2");
    TT_CHECK(k >= 0);
    if (k >= 0) {
        tome_pack_file f;
        tome_pack_get_file(p, (size_t)k, &f);
        TT_EQ_INT(f.status, TOME_FILE_SKIPPED);
        TT_CONTAINS(f.reason, "duplicate path");
    }
    /* the truncated tar: its own entry once, skipped with the reader's reason
     * and the archive's size; the members before the damage are packed */
    TT_EQ_INT(count_path(p, "cut.tar"), 1);
    k = find_file(p, "cut.tar");
    if (k >= 0) {
        tome_pack_file f;
        tome_pack_get_file(p, (size_t)k, &f);
        TT_EQ_INT(f.status, TOME_FILE_SKIPPED);
        TT_CONTAINS(f.reason, "runcated");
        TT_EQ_INT(f.size, 512 * 5 + 700);
    }
    TT_CHECK(find_file(p, "cut.tar!/d/a.txt") >= 0);
    TT_CHECK(find_file(p, "cut.tar!/d/a.txt#2") >= 0);
    k = find_file(p, "cut.tar!/d/b.txt");
    TT_CHECK(k >= 0);
    if (k >= 0) {
        tome_pack_file f;
        tome_pack_get_file(p, (size_t)k, &f);
        TT_EQ_INT(f.status, TOME_FILE_SKIPPED);
    }
    tome_pack_free(p);
}

/* HTML: markup (source) when found by walking a directory, extracted text
 * inside an archive or when named directly (--html auto); --html source /
 * text force one way. The same bytes read both ways are not aliases. */
static void test_html_source_or_text(void)
{
    char dir[1024];
    (void)!snprintf(dir, sizeof dir, "%s/htmlrule", tt_tmpdir());
    const char *html = "<!DOCTYPE html>\n<html><body><h1>Title</h1>\n<p>Hello <b>world</b></p>\n</body></html>\n";
    put(dir, "site/index.html", html);
    put(dir, "page.html", html);
    const char *names[] = {"doc/page.html"};
    const char *bodies[] = {html};
    write_plain_tar(path_in(dir, "site/docs.tar"), names, bodies, 1);
    char out[1100];
    (void)!snprintf(out, sizeof out, "%s/h.tpk", tt_tmpdir());
    static const struct {
        int mode;
        const char *walked, *member, *named;
    } cases[] = {
        {TOME_PACK_HTML_AUTO, "utf-8", "html", "html"},
        {TOME_PACK_HTML_SOURCE, "utf-8", "utf-8", "utf-8"},
        {TOME_PACK_HTML_TEXT, "html", "html", "html"},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        tome_pack_opts o;
        tome_pack_opts_default(&o);
        o.tok = tok();
        o.html = cases[ci].mode;
        const char *srcs[] = {path_in(dir, "site"), path_in(dir, "page.html")};
        TT_OK(tome_pack_build(srcs, 2, &o, out, NULL));
        tome_pack_t *p = NULL;
        TT_OK(tome_pack_open(out, &p));
        if (!p) continue;
        const char *paths[] = {"site/index.html", "site/docs.tar!/doc/page.html", "page.html"};
        const char *want[] = {cases[ci].walked, cases[ci].member, cases[ci].named};
        for (int k = 0; k < 3; k++) {
            int i = find_file(p, paths[k]);
            TT_CHECK(i >= 0);
            if (i < 0) continue;
            tome_pack_file f;
            tome_pack_get_file(p, (size_t)i, &f);
            const char *enc = f.encoding;
            if (f.status == TOME_FILE_ALIAS) { /* an alias reads like its stored copy */
                tome_pack_file g;
                tome_pack_get_file(p, (size_t)f.alias_of, &g);
                enc = g.encoding;
            }
            TT_EQ_STR(enc, want[k]);
        }
        char *c = NULL;
        size_t cl;
        TT_OK(tome_pack_cite(p, "site/index.html:1", &c, &cl));
        if (c) TT_EQ_STR(c, cases[ci].mode == TOME_PACK_HTML_TEXT ? "# Title\n" : "<!DOCTYPE html>\n");
        free(c);
        tome_pack_free(p);
    }
    tome_pack_opts o;
    tome_pack_opts_default(&o);
    o.tok = tok();
    o.html = 7;
    const char *srcs[] = {dir};
    TT_CHECK(tome_pack_build(srcs, 1, &o, out, NULL) == TOME_ERR_INVALID_ARG);
}

/* A file that changes between reading and writing (its ids were not kept, so
 * it is read again when written): recorded as skipped, "changed while
 * packing"; the rest of the pack is unaffected. The change is made from the
 * progress callback at the end of the read phase (forced, so no timing). */
typedef struct mutate_ctx {
    const char *path;
    int done;
} mutate_ctx;

static void on_prog_mutate(void *ud, const tome_pack_progress *p)
{
    mutate_ctx *m = ud;
    if (!m->done && !strcmp(p->phase, "read") && p->total && p->done == p->total) {
        TT_CHECK(tt_write_file(m->path, "int changed;\n", 13) == 0);
        m->done = 1;
    }
}

static void test_file_changed_while_packing(void)
{
    const char *dir = make_repo();
    char out[1100];
    (void)!snprintf(out, sizeof out, "%s/chg.tpk", tt_tmpdir());
    tome_pack_opts o;
    tome_pack_opts_default(&o);
    o.tok = tok();
    o.cache_ids = 1; /* nothing kept: every file is read again when written */
    mutate_ctx m = {path_in(dir, "src/main.c"), 0};
    char keep[1100];
    (void)!snprintf(keep, sizeof keep, "%s", m.path);
    m.path = keep;
    o.progress = on_prog_mutate;
    o.progress_ud = &m;
    const char *srcs[] = {dir};
    TT_OK(tome_pack_build(srcs, 1, &o, out, NULL));
    TT_CHECK(m.done);
    tome_pack_t *p = NULL;
    TT_OK(tome_pack_open(out, &p));
    if (!p) return;
    int k = find_file(p, "src/main.c");
    TT_CHECK(k >= 0);
    if (k >= 0) {
        tome_pack_file f;
        tome_pack_get_file(p, (size_t)k, &f);
        TT_EQ_INT(f.status, TOME_FILE_SKIPPED);
        TT_EQ_STR(f.reason, "changed while packing");
        TT_EQ_INT(f.tok_count, 0);
    }
    char *c = NULL;
    size_t cl;
    TT_OK(tome_pack_cite(p, "src/util.h:3", &c, &cl));
    if (c) TT_EQ_STR(c, "int add(int a, int b);\n");
    free(c);
    c = NULL;
    TT_CHECK(tome_pack_cite(p, "src/main.c:1", &c, &cl) != TOME_OK);
    free(c);
    /* ids still equal a one-shot encode of the text */
    const char *text = NULL;
    size_t tl = 0;
    const int32_t *ids = NULL;
    size_t ni = 0;
    TT_OK(tome_pack_text(p, &text, &tl));
    TT_OK(tome_pack_ids(p, &ids, &ni));
    tome_tokens_t t = {0};
    TT_OK(tome_tokenizer_encode(tok(), text, tl, NULL, &t));
    TT_CHECK(t.n == ni && (!ni || !memcmp(t.ids, ids, ni * sizeof *ids)));
    tome_tokens_free(&t);
    tome_pack_free(p);
}

/* A file counted at least that changes before plan needs its exact count:
 * it is skipped ("changed while packing") and that is a change of the
 * budget round (not "budget too small"); its duplicate, an alias of it,
 * is listed instead of pointing at text that is not in the pack. */
static void test_lazy_file_changed(void)
{
    char dir[1024], out[1100];
    (void)!snprintf(dir, sizeof dir, "%s/lazychg", tt_tmpdir());
    (void)!snprintf(out, sizeof out, "%s/lazychg.tpk", tt_tmpdir());
    static char body[40000];
    size_t o = 0;
    o += (size_t)snprintf(body, sizeof body, "# Readme\n\n");
    for (int k = 0; k < 2000 && o + 40 < sizeof body; k++) o += (size_t)snprintf(body + o, sizeof body - o, "Some words here. ");
    put(dir, "README.md", body);
    put_protos(dir, "vendor/a.h", 300);
    put_protos(dir, "vendor/b.h", 300); /* a duplicate: an alias of a.h */
    tome_pack_t *p = pack_unbounded(dir, out);
    if (!p) return;
    tome_pack_file f;
    tome_pack_get_file(p, (size_t)find_file(p, "README.md"), &f);
    uint64_t readme = f.tok_count;
    tome_pack_free(p);
    const char *srcs[] = {dir};
    tome_pack_opts po = opts_with(2);
    char keep[1100];
    (void)!snprintf(keep, sizeof keep, "%s", path_in(dir, "vendor/a.h"));
    mutate_ctx m = {keep, 0};
    po.budget = readme + 300;
    po.progress = on_prog_mutate;
    po.progress_ud = &m;
    tome_pack_stats st;
    TT_OK(tome_pack_build(srcs, 1, &po, out, &st));
    TT_CHECK(m.done);
    TT_CHECK(st.n_counted_later > 0);
    TT_OK(tome_pack_open(out, &p));
    if (!p) return;
    tome_pack_get_file(p, (size_t)find_file(p, "vendor/a.h"), &f);
    TT_EQ_INT(f.status, TOME_FILE_SKIPPED);
    TT_EQ_STR(f.reason, "changed while packing");
    tome_pack_get_file(p, (size_t)find_file(p, "vendor/b.h"), &f);
    TT_EQ_INT(f.status, TOME_FILE_LISTED);
    TT_CONTAINS(f.reason, "changed while packing");
    TT_EQ_INT(f.alias_of, -1);
    tome_pack_get_file(p, (size_t)find_file(p, "README.md"), &f);
    TT_EQ_INT(f.status, TOME_FILE_FULL);
    const char *text = NULL;
    size_t tl = 0;
    TT_OK(tome_pack_text(p, &text, &tl));
    TT_CHECK(text && !strstr(text, "alias-of="));
    tome_pack_free(p);
}

/* A line of exactly MAX_PIECE (256 KiB) letters tokenizes in the full block,
 * but its outline line gets a prefix (" name") one byte over: that file has
 * no outline (listed when degraded) instead of failing the whole pack. */
static void test_outline_piece_over_limit(void)
{
    char dir[1024], out[1100];
    (void)!snprintf(dir, sizeof dir, "%s/olimit", tt_tmpdir());
    (void)!snprintf(out, sizeof out, "%s/olimit.tpk", tt_tmpdir());
    put(dir, "README.md", "# x\n\nA short readme.\n");
    size_t n = 262144;
    char *body = malloc(n + 4096);
    TT_CHECK(body != NULL);
    if (!body) return;
    memset(body, 'b', n);
    size_t o = n;
    o += (size_t)snprintf(body + o, 4096, "(void)\n{\n    return;\n}\n");
    for (int k = 0; k < 40; k++) o += (size_t)snprintf(body + o, n + 4096 - o, "int g%d(int a)\n{\n    return a;\n}\n", k);
    put(dir, "vendor/long.c", body);
    free(body);
    const char *srcs[] = {dir};
    tome_pack_opts po = opts_with(2);
    po.budget = 1000;
    TT_OK(tome_pack_build(srcs, 1, &po, out, NULL));
    tome_pack_t *p = NULL;
    TT_OK(tome_pack_open(out, &p));
    if (!p) return;
    tome_pack_file f;
    tome_pack_get_file(p, (size_t)find_file(p, "vendor/long.c"), &f);
    TT_EQ_INT(f.status, TOME_FILE_LISTED);
    TT_CONTAINS(f.reason, "no outline");
    tome_pack_free(p);
}

/* tome_pack_build_open's pack (the manifest kept from the build) reads the same
 * as the file opened again: every field, anchor, redaction and located token,
 * and text and ids read from the file on first use; a pack replaced since is
 * refused. */
static void test_build_open_matches_reopen(void)
{
    const char *dir = make_repo();
    char out[1100];
    (void)!snprintf(out, sizeof out, "%s/adopt.tpk", tt_tmpdir());
    tome_pack_opts o = opts_with(2);
    o.line_numbers = 1;
    const char *srcs[] = {dir};
    tome_pack_t *a = NULL, *b = NULL;
    TT_OK(tome_pack_build_open(srcs, 1, &o, out, NULL, &a));
    TT_OK(tome_pack_open(out, &b));
    if (!a || !b) return;
    tome_pack_info ia, ib;
    tome_pack_get_info(a, &ia);
    tome_pack_get_info(b, &ib);
    TT_CHECK(memcmp(&ia, &ib, sizeof ia) == 0);
    TT_EQ_INT(tome_pack_n_files(a), tome_pack_n_files(b));
    int redacted = 0;
    for (size_t i = 0; i < tome_pack_n_files(a) && i < tome_pack_n_files(b); i++) {
        tome_pack_file fa, fb;
        TT_OK(tome_pack_get_file(a, i, &fa));
        TT_OK(tome_pack_get_file(b, i, &fb));
        TT_EQ_STR(fa.path, fb.path);
        TT_EQ_STR(fa.reason, fb.reason);
        TT_EQ_STR(fa.encoding, fb.encoding);
        TT_EQ_STR(fa.content_hash, fb.content_hash);
        TT_CHECK(fa.status == fb.status && fa.alias_of == fb.alias_of && fa.size == fb.size &&
                 fa.n_lines == fb.n_lines && fa.text_offset == fb.text_offset && fa.text_len == fb.text_len &&
                 fa.tok_start == fb.tok_start && fa.tok_count == fb.tok_count &&
                 fa.full_tokens == fb.full_tokens && fa.n_redactions == fb.n_redactions);
        size_t na = 0, nb = 0;
        const uint32_t *la = NULL, *lb = NULL;
        const char *const *ka = NULL, *const *kb = NULL;
        TT_OK(tome_pack_get_redactions(a, i, &na, &la, &ka));
        TT_OK(tome_pack_get_redactions(b, i, &nb, &lb, &kb));
        TT_EQ_INT(na, nb);
        for (size_t k = 0; k < na && k < nb; k++) {
            TT_EQ_INT(la[k], lb[k]);
            TT_EQ_STR(ka[k], kb[k]);
        }
        redacted += na > 0;
        for (uint64_t t = fa.tok_start; t < fa.tok_start + fa.tok_count; t++) {
            tome_pack_loc x, y;
            TT_OK(tome_pack_locate(a, t, &x));
            TT_OK(tome_pack_locate(b, t, &y));
            TT_CHECK(x.file == y.file && x.line == y.line && x.anchor_kind == y.anchor_kind &&
                     x.anchor_number == y.anchor_number);
        }
    }
    TT_CHECK(redacted > 0); /* config/key.pem */
    const char *ta, *tb;
    size_t la, lb;
    const int32_t *da, *db;
    size_t na, nb;
    TT_OK(tome_pack_text(a, &ta, &la));
    TT_OK(tome_pack_text(b, &tb, &lb));
    TT_CHECK(la == lb && la > 0 && memcmp(ta, tb, la) == 0);
    TT_OK(tome_pack_ids(a, &da, &na));
    TT_OK(tome_pack_ids(b, &db, &nb));
    TT_CHECK(na == nb && na > 0 && memcmp(da, db, na * sizeof *da) == 0);
    tome_pack_free(a);
    tome_pack_free(b);
    /* replaced after the build: the adopted pack does not read the new file */
    TT_OK(tome_pack_build_open(srcs, 1, &o, out, NULL, &a));
    o.line_numbers = 0;
    TT_OK(tome_pack_build(srcs, 1, &o, out, NULL));
    if (!a) return;
    TT_CHECK(tome_pack_text(a, &ta, &la) == TOME_ERR_FORMAT);
    TT_CONTAINS(tome_last_error(), "replaced");
    TT_CONTAINS(tome_last_error(), out);
    tome_pack_free(a);
}

/* A manifest over about 1 MB is written as two zstd frames, split between
 * entries and compressed in parallel: the pack reads back whole (two files
 * of half a million lines; the last line of each cited). */
static void test_large_manifest(void)
{
    char dir[1024], out[1100];
    (void)!snprintf(dir, sizeof dir, "%s/bigman", tt_tmpdir());
    (void)!snprintf(out, sizeof out, "%s/bigman.tpk", tt_tmpdir());
    size_t n_lines = 500000;
    char *big = malloc(n_lines * 2 + 16);
    if (!big) return;
    for (size_t i = 0; i < n_lines; i++) {
        big[2 * i] = (char)('a' + i % 26);
        big[2 * i + 1] = '\n';
    }
    big[2 * n_lines] = 0;
    put(dir, "lines.txt", big);
    put(dir, "more/lines.txt", big);
    free(big);
    TT_OK(build(dir, out, 2, 0, 0, TOME_PACK_XML));
    tome_pack_t *p = NULL;
    TT_OK(tome_pack_open(out, &p));
    if (!p) return;
    tome_pack_file f;
    TT_OK(tome_pack_get_file(p, (size_t)find_file(p, "lines.txt"), &f));
    TT_EQ_INT(f.n_lines, n_lines);
    char *text = NULL;
    size_t len = 0;
    TT_OK(tome_pack_cite(p, "lines.txt:500000", &text, &len));
    TT_CHECK(text && len >= 1 && text[0] == (char)('a' + (n_lines - 1) % 26));
    free(text);
    text = NULL;
    TT_OK(tome_pack_cite(p, "more/lines.txt:500000", &text, &len));
    TT_CHECK(text && len >= 1 && text[0] == (char)('a' + (n_lines - 1) % 26));
    free(text);
    const int32_t *ids;
    size_t n;
    TT_OK(tome_pack_ids(p, &ids, &n)); /* content hash over ids + the whole manifest */
    tome_pack_free(p);
}

/* opts.tok_path: the build loads the tokenizer while it walks the sources;
 * the pack is byte for byte the one built with a loaded tokenizer. A bad
 * tokenizer fails with its own message and leaves nothing. */
static void test_tok_path(void)
{
    const char *dir = make_repo();
    char a[1100], b[1100], bad[1100], junk[1100];
    (void)!snprintf(a, sizeof a, "%s/tokp_a.tpk", tt_tmpdir());
    (void)!snprintf(b, sizeof b, "%s/tokp_b.tpk", tt_tmpdir());
    (void)!snprintf(bad, sizeof bad, "%s/tokp_bad.tpk", tt_tmpdir());
    (void)!snprintf(junk, sizeof junk, "%s/junk.model", tt_tmpdir());
    TT_OK(build(dir, a, 2, 0, 0, TOME_PACK_XML));
    tome_pack_opts o = opts_with(2);
    o.tok = NULL;
    o.tok_path = tt_shared_path("llama4/tokenizer.model");
    const char *srcs[] = {dir};
    TT_OK(tome_pack_build(srcs, 1, &o, b, NULL));
    TT_CHECK(same_bytes(a, b));
    TT_CHECK(tt_write_file(junk, "not a tokenizer\n", 16) == 0);
    o.tok_path = junk;
    TT_CHECK(tome_pack_build(srcs, 1, &o, bad, NULL) != TOME_OK);
    TT_CONTAINS(tome_last_error(), junk);
    TT_CHECK(access(bad, F_OK) != 0);
    o.tok_path = NULL;
    TT_CHECK(tome_pack_build(srcs, 1, &o, bad, NULL) == TOME_ERR_INVALID_ARG);
}

/* Over budget by more than estimated (dense code: ~2 bytes a token, the
 * estimate is 3.5): outlines are made while reading for the lowest-priority
 * files only, so plan reads the others again when it degrades them; the pack
 * is byte for byte the one where every outline is read again (cache off). */
static void test_outlines_beyond_estimate(void)
{
    char dir[1024], a[1100], b[1100];
    (void)!snprintf(dir, sizeof dir, "%s/dense", tt_tmpdir());
    (void)!snprintf(a, sizeof a, "%s/dense_a.tpk", tt_tmpdir());
    (void)!snprintf(b, sizeof b, "%s/dense_b.tpk", tt_tmpdir());
    char body[16384];
    for (int f = 0; f < 10; f++) {
        size_t o = 0;
        for (int k = 0; k < 60 && o + 200 < sizeof body; k++)
            o += (size_t)snprintf(body + o, sizeof body - o,
                                  "int f%d_%d(int a)\n{\n    return a^%d|7&1^5|2&%d^8|9&6-%d;\n}\n\n", f, k, k,
                                  f, k * 3);
        char rel[64];
        (void)!snprintf(rel, sizeof rel, "src/m%02d.c", f);
        put(dir, rel, body);
    }
    const char *srcs[] = {dir};
    tome_pack_opts o = opts_with(2);
    o.budget = 12000;
    TT_OK(tome_pack_build(srcs, 1, &o, a, NULL));
    o.cache_ids = 1;
    TT_OK(tome_pack_build(srcs, 1, &o, b, NULL));
    TT_CHECK(same_bytes(a, b));
    tome_pack_t *p = NULL;
    TT_OK(tome_pack_open(a, &p));
    if (!p) return;
    int outl = 0;
    for (size_t i = 0; i < tome_pack_n_files(p); i++) {
        tome_pack_file f;
        tome_pack_get_file(p, i, &f);
        outl += f.status == TOME_FILE_OUTLINE;
    }
    tome_pack_info info;
    tome_pack_get_info(p, &info);
    TT_CHECK(info.n_tokens <= 12000);
    TT_CHECK(outl >= 6); /* the estimate's suffix is ~3 files */
    tome_pack_free(p);
}

/* Over budget, the files most likely degraded are counted at least while
 * read (tome_tokenizer_count_at_least, no BPE) and exactly only where the
 * budget needs it. The pack must be the one exact counting gives: same text,
 * ids and statuses at every budget; the manifest's full_tokens of such a file
 * is flagged, at most the exact count, and never on a full file. The tree has
 * translations (lowest priority), files of long runs of spaces (few tokens
 * for their bytes: the estimate overshoots, so lazily counted files end up
 * full and must be counted late) and a file of prototypes (its outline is
 * all of it: whether the outline is smaller needs the exact count). */
static void test_lazy_counts_same_pack(void)
{
    char dir[1024], a[1100], b[1100];
    (void)!snprintf(dir, sizeof dir, "%s/lazy", tt_tmpdir());
    (void)!snprintf(a, sizeof a, "%s/lazy_a.tpk", tt_tmpdir());
    (void)!snprintf(b, sizeof b, "%s/lazy_b.tpk", tt_tmpdir());
    static char body[16384];
    char rel[64];
    put(dir, "README.md", "# Lazy\n\nCounting at least.\n");
    for (int f = 0; f < 5; f++) {
        size_t o = 0;
        for (int k = 0; k < 40; k++)
            o += (size_t)snprintf(body + o, sizeof body - o, "int f%d_%d(int a)\n{\n    return a * %d + %d;\n}\n\n",
                                  f, k, k, f);
        (void)!snprintf(rel, sizeof rel, "src/m%d.c", f);
        put(dir, rel, body);
    }
    for (int f = 0; f < 8; f++) {
        size_t o = 0;
        for (int k = 0; k < 60; k++)
            o += (size_t)snprintf(body + o, sizeof body - o,
                                  "#: src/m%d.c:%d\nmsgid \"message %d about %d files\"\n"
                                  "msgstr \"\xd1\x81\xd0\xbe\xd0\xbe\xd0\xb1\xd1\x89\xd0\xb5\xd0\xbd\xd0\xb8\xd0\xb5 %d "
                                  "\xc3\xbc" "ber %d Dateien\"\n\n", f, k, k, f * k, k, f);
        (void)!snprintf(rel, sizeof rel, "po/l%d.po", f);
        put(dir, rel, body);
    }
    for (int f = 0; f < 4; f++) {
        size_t o = 0;
        for (int k = 0; k < 90; k++) o += (size_t)snprintf(body + o, sizeof body - o, "%96s%d\n", "", k % 10 + f * 10);
        (void)!snprintf(rel, sizeof rel, "po/w%d.txt", f);
        put(dir, rel, body);
    }
    put_protos(dir, "po/zz_protos.h", 80);
    tome_pack_t *p = pack_unbounded(dir, a);
    if (!p) return;
    tome_pack_info info;
    tome_pack_get_info(p, &info);
    uint64_t all = info.n_tokens;
    tome_pack_free(p);
    const char *srcs[] = {dir};
    tome_pack_opts o = opts_with(2);
    const double frac[] = {0.999, 0.97, 0.9, 0.8, 0.65, 0.5, 0.35, 0.2};
    uint64_t at_least = 0, later = 0, flagged = 0;
    for (size_t t = 0; t < TOME_ARRAY_LEN(frac); t++) {
        tome_pack_stats sa, sb;
        o.budget = (uint64_t)(all * frac[t]);
        o.exact_counts = 0;
        TT_OK(tome_pack_build(srcs, 1, &o, a, &sa));
        { /* nothing cached: files counted late are read a third time when written */
            char c[1100];
            (void)!snprintf(c, sizeof c, "%s/lazy_c.tpk", tt_tmpdir());
            o.cache_ids = 1;
            TT_OK(tome_pack_build(srcs, 1, &o, c, NULL));
            o.cache_ids = 0;
            TT_CHECK(same_bytes(a, c));
        }
        o.exact_counts = 1;
        TT_OK(tome_pack_build(srcs, 1, &o, b, &sb));
        TT_EQ_INT(sb.n_counted_at_least, 0);
        at_least += sa.n_counted_at_least;
        later += sa.n_counted_later;
        tome_pack_t *pa = NULL, *pb = NULL;
        TT_OK(tome_pack_open(a, &pa));
        TT_OK(tome_pack_open(b, &pb));
        if (!pa || !pb) {
            tome_pack_free(pa);
            tome_pack_free(pb);
            return;
        }
        const char *ta, *tb;
        size_t la, lb, na, nb;
        const int32_t *ia, *ib;
        TT_OK(tome_pack_text(pa, &ta, &la));
        TT_OK(tome_pack_text(pb, &tb, &lb));
        TT_CHECK(la == lb && !memcmp(ta, tb, la));
        TT_OK(tome_pack_ids(pa, &ia, &na));
        TT_OK(tome_pack_ids(pb, &ib, &nb));
        TT_CHECK(na == nb && !memcmp(ia, ib, na * sizeof *ia));
        TT_CHECK(na <= o.budget);
        TT_EQ_INT(tome_pack_n_files(pa), tome_pack_n_files(pb));
        for (size_t i = 0; i < tome_pack_n_files(pa) && i < tome_pack_n_files(pb); i++) {
            tome_pack_file fa, fb;
            tome_pack_get_file(pa, i, &fa);
            tome_pack_get_file(pb, i, &fb);
            TT_EQ_STR(fa.path, fb.path);
            TT_EQ_INT(fa.status, fb.status);
            TT_EQ_STR(fa.reason, fb.reason);
            TT_CHECK(fa.tok_start == fb.tok_start && fa.tok_count == fb.tok_count);
            TT_CHECK(!fb.full_tokens_lower);
            if (fa.full_tokens_lower) {
                flagged++;
                TT_CHECK(fa.status != TOME_FILE_FULL);
                TT_CHECK(fa.full_tokens <= fb.full_tokens);
                TT_CHECK(fa.full_tokens * 10 >= fb.full_tokens * 7); /* a useful bound */
            } else {
                TT_CHECK(fa.full_tokens == fb.full_tokens);
            }
        }
        tome_pack_free(pa);
        tome_pack_free(pb);
    }
    TT_CHECK(at_least > 0);
    TT_CHECK(later > 0);   /* the budget needed some of them */
    TT_CHECK(flagged > 0); /* and left others counted at least */
}

static uint64_t rd_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}
static void wr_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static size_t rd_var(const unsigned char *p, uint64_t *v)
{
    size_t k = 0;
    *v = 0;
    for (int sh = 0;; sh += 7) {
        *v |= (uint64_t)(p[k] & 0x7f) << sh;
        if (!(p[k++] & 0x80)) return k;
    }
}

/* Rewrites a pack's TEXT section (the token dictionary) with edit() applied
 * to its raw bytes, appended at the end of the file (checksums off), and
 * returns tome_pack_text's status. */
static tome_status section_with(const char *path, int sec, void (*edit)(unsigned char *raw, size_t *len))
{
    size_t len;
    unsigned char *d = (unsigned char *)tt_read_file(path, &len);
    if (!d) return TOME_ERR_IO;
    unsigned char *t = d + 128 + 40 * (sec - 1); /* 1 TEXT, 2 IDS */
    uint64_t off = rd_le64(t + 8), stored = rd_le64(t + 16), raw = rd_le64(t + 24);
    unsigned char *dict = malloc(raw + 80000), *z = NULL;
    size_t got = ZSTD_decompress(dict, raw + 80000, d + off, stored);
    TT_CHECK(!ZSTD_isError(got) && got == raw);
    size_t nl = got;
    edit(dict, &nl);
    size_t zc = ZSTD_compressBound(nl);
    unsigned char *f = malloc(len + zc);
    memcpy(f, d, len);
    size_t zn = ZSTD_compress(f + len, zc, dict, nl, 3);
    TT_CHECK(!ZSTD_isError(zn));
    unsigned char *ft = f + 128 + 40 * (sec - 1);
    wr_le64(ft + 8, len);
    wr_le64(ft + 16, zn);
    wr_le64(ft + 24, nl);
    tome_pack_t *p = NULL;
    tome_status st = tome_pack_open_mem(path, f, len + zn, 1, &p);
    if (!st) {
        const char *text;
        size_t tl;
        st = tome_pack_text(p, &text, &tl); /* the ids first, then the dictionary */
    }
    tome_pack_free(p);
    free(f);
    free(z);
    free(dict);
    free(d);
    return st;
}

static void edit_none(unsigned char *raw, size_t *len) { (void)raw, (void)len; }
static void edit_first_id(unsigned char *raw, size_t *len) /* every id one higher */
{
    uint64_t v;
    size_t k = rd_var(raw, &v); /* count */
    (void)len;
    TT_CHECK(raw[k] < 0x7f);
    raw[k]++;
}
static void edit_first_len(unsigned char *raw, size_t *len) /* entry 0 one byte longer, one byte more */
{
    uint64_t v;
    size_t k = rd_var(raw, &v);
    k += rd_var(raw + k, &v); /* gap of entry 0 */
    TT_CHECK(raw[k] < 0x7f);
    raw[k]++;
    raw[(*len)++] = 'x';
}
static void edit_truncate(unsigned char *raw, size_t *len) { (void)raw, *len -= 1; }
static void edit_grow(unsigned char *raw, size_t *len) { raw[(*len)++] = 0; }
static size_t put_var_le(unsigned char *o, uint64_t v)
{
    size_t k = 0;
    for (; v >= 0x80; v >>= 7) o[k++] = (unsigned char)(v | 0x80);
    o[k++] = (unsigned char)v;
    return k;
}
static void edit_wrap_gap(unsigned char *raw, size_t *len) /* id 1000, then a gap that wraps to id 5 */
{
    size_t k = put_var_le(raw, 2);
    k += put_var_le(raw + k, 1000);
    k += put_var_le(raw + k, 1);
    k += put_var_le(raw + k, (uint64_t)0 - 996);
    k += put_var_le(raw + k, 1);
    raw[k++] = 'a';
    raw[k++] = 'b';
    *len = k;
}
static void edit_huge_count(unsigned char *raw, size_t *len) { *len = put_var_le(raw, (1u << 24) + 1); }
static void edit_long_entry(unsigned char *raw, size_t *len) /* one entry longer than any token */
{
    size_t k = put_var_le(raw, 1);
    k += put_var_le(raw + k, 0);
    k += put_var_le(raw + k, 70000);
    memset(raw + k, 'x', 70000);
    *len = k + 70000;
}
static void edit_count(unsigned char *raw, size_t *len) /* a count past what follows */
{
    (void)len;
    raw[0] = 0xff;
    raw[1] = 0xff;
    raw[2] = 0x7f;
}

/* The text is the token dictionary (TEXT) read through the ids: a pack
 * whose dictionary lacks an id, has the wrong lengths, is cut short, claims
 * more entries than it holds, has ids that wrap or an entry longer than any
 * token, whose ids are a byte short or over, or whose header asks for more
 * text than its sections can make, is refused naming what is wrong, never
 * read or written past (crafted cases from a review, run under ASan in CI). */
static void test_text_dictionary_checked(void)
{
    const char *dir = make_repo();
    char out[1100];
    (void)!snprintf(out, sizeof out, "%s/dict.tpk", tt_tmpdir());
    TT_OK(build(dir, out, 2, 0, 0, TOME_PACK_MARKDOWN));
    TT_OK(section_with(out, 1, edit_none));
    TT_OK(section_with(out, 2, edit_none));
    void (*edits[])(unsigned char *, size_t *) = {edit_first_id,  edit_first_len,  edit_truncate,  edit_count,
                                                    edit_wrap_gap, edit_huge_count, edit_long_entry};
    for (size_t k = 0; k < sizeof edits / sizeof *edits; k++) {
        TT_STATUS(section_with(out, 1, edits[k]), TOME_ERR_FORMAT);
        TT_CONTAINS(tome_last_error(), "section text");
        TT_CONTAINS(tome_last_error(), out);
    }
    /* a header asking for far more text than the sections can make */
    {
        size_t len;
        unsigned char *d = (unsigned char *)tt_read_file(out, &len);
        if (d) {
            wr_le64(d + 32, (uint64_t)1 << 40);
            tome_pack_t *p = NULL;
            TT_STATUS(tome_pack_open_mem(out, d, len, 1, &p), TOME_ERR_FORMAT);
            TT_CONTAINS(tome_last_error(), "impossible text size");
            tome_pack_free(p);
            free(d);
        }
    }
    /* ids (2 or 3 bytes each) one byte short or one byte over */
    void (*id_edits[])(unsigned char *, size_t *) = {edit_truncate, edit_grow};
    for (size_t k = 0; k < 2; k++) {
        TT_STATUS(section_with(out, 2, id_edits[k]), TOME_ERR_FORMAT);
        TT_CONTAINS(tome_last_error(), "section ids");
    }
}

int main(void)
{
    srand(1);
    TT_RUN(test_roundtrip_and_locate);
    TT_RUN(test_manifest_statuses);
    TT_RUN(test_cite);
    TT_RUN(test_deterministic);
    TT_RUN(test_budget_degrades_lowest_priority_first);
    TT_RUN(test_skip_reasons);
    TT_RUN(test_archive_members);
    TT_RUN(test_corrupt_packs_rejected);
    TT_RUN(test_atomic_output);
    TT_RUN(test_multiple_sources_and_samples);
    TT_RUN(test_filters_progress_and_duplicate_paths);
    TT_RUN(test_archive_duplicate_members_and_damage);
    TT_RUN(test_html_source_or_text);
    TT_RUN(test_file_changed_while_packing);
    TT_RUN(test_build_open_matches_reopen);
    TT_RUN(test_large_manifest);
    TT_RUN(test_tok_path);
    TT_RUN(test_outlines_beyond_estimate);
    TT_RUN(test_lazy_counts_same_pack);
    TT_RUN(test_lazy_file_changed);
    TT_RUN(test_outline_piece_over_limit);
    TT_RUN(test_text_dictionary_checked);
    tome_tokenizer_free(g_tok);
    return tt_finish();
}
