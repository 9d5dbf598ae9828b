/* tests/test_archive.c — ingest/archive.c on archives written by libarchive:
 * every format, nesting and its cap, display paths, unsafe members, bombs,
 * truncation and corruption. */
#include <stdlib.h>
#include <string.h>

#include "arch_fixtures.h"
#include "ingest/ingest_impl.h"
#include "tt.h"

/* ------------------------------------------------------------ collector */
typedef struct got {
    size_t n;
    char *path[4096];
    char *data[4096];
    size_t len[4096];
    char *reason[4096];
    int stop_after; /* >0: return TOME_ERR_INTERRUPTED at that entry */
} got;

static tome_status collect(void *ud, const tome_archive_entry *e)
{
    got *g = ud;
    if (g->n >= 4096)
        return TOME_OK;
    g->path[g->n] = strdup(e->path);
    g->reason[g->n] = e->skip_reason ? strdup(e->skip_reason) : NULL;
    g->data[g->n] = NULL;
    g->len[g->n] = e->len;
    if (!e->skip_reason) {
        g->data[g->n] = malloc(e->len + 1);
        memcpy(g->data[g->n], e->data, e->len);
        g->data[g->n][e->len] = 0;
    }
    g->n++;
    if (g->stop_after && (int)g->n == g->stop_after)
        return tome_set_error(TOME_ERR_INTERRUPTED, "stop");
    return TOME_OK;
}

static got *got_new(void) { return calloc(1, sizeof(got)); }
static void got_free(got *g)
{
    for (size_t i = 0; i < g->n; i++) {
        free(g->path[i]);
        free(g->data[i]);
        free(g->reason[i]);
    }
    free(g);
}

/* Index of the entry with this path, or -1. */
static int find(const got *g, const char *path)
{
    for (size_t i = 0; i < g->n; i++)
        if (strcmp(g->path[i], path) == 0)
            return (int)i;
    return -1;
}

static int n_data(const got *g)
{
    int k = 0;
    for (size_t i = 0; i < g->n; i++)
        k += g->reason[i] == NULL;
    return k;
}

static tome_status read_all(const char *name, fx_bytes b, const tome_archive_limits *lim, got *g)
{
    return tome_archive_read(name, b.data, b.len, lim, 0, collect, g);
}

/* Pseudo-random printable text that compresses poorly. */
static char *noise(size_t n, unsigned seed)
{
    char *p = malloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (char)(33 + (seed >> 16) % 90);
    }
    p[n] = 0;
    return p;
}

static const char k_readme[] = "# Demo\nHello, archive.\n";
static const char k_main[] = "int main(void) { return 0; }\n";

/* ------------------------------------------------------------ cases */
static void test_defaults(void)
{
    tome_archive_limits lim;
    tome_archive_limits_default(&lim);
    TT_EQ_INT(lim.max_depth, 4);
    TT_EQ_INT(lim.max_entry_bytes, 64u << 20);
    TT_EQ_INT(lim.max_total_bytes, 4ull << 30);
    TT_NEAR(lim.max_ratio, 200.0, 1e-9);
    TT_EQ_INT(lim.max_entries, 1000000);
}

static void test_every_format(void)
{
    static const struct { const char *fmt, *filter, *name; } cases[] = {
        {"zip", NULL, "t.zip"},        {"pax", "gzip", "t.tar.gz"},  {"ustar", "bzip2", "t.tar.bz2"},
        {"gnutar", "xz", "t.tar.xz"},  {"pax", "zstd", "t.tar.zst"}, {"ustar", NULL, "t.tar"},
        {"7zip", NULL, "t.7z"},        {"cpio", NULL, "t.cpio"},     {"cpio", "gzip", "t.cpio.gz"},
        {"ar", NULL, "t.a"},           {"iso9660", NULL, "t.iso"},
    };
    fx_member m[] = {{"README.md", k_readme, sizeof k_readme - 1},
                     {"src/", NULL, 0, FX_DIR},
                     {"src/main.c", k_main, sizeof k_main - 1}};
    for (size_t c = 0; c < TOME_ARRAY_LEN(cases); c++) {
        int is_ar = strcmp(cases[c].fmt, "ar") == 0; /* ar has no directories */
        fx_member am[] = {{"README.md", k_readme, sizeof k_readme - 1},
                          {"main.c", k_main, sizeof k_main - 1}};
        fx_bytes b = is_ar ? fx_archive("ar", NULL, NULL, am, 2)
                           : fx_archive(cases[c].fmt, cases[c].filter, NULL, m, 3);
        TT_CHECK(tome_archive_sniff(b.data, b.len));
        got *g = got_new();
        TT_OK(read_all(cases[c].name, b, NULL, g));
        char want[64];
        snprintf(want, sizeof want, "%s!/README.md", cases[c].name);
        int i = find(g, want);
        if (i < 0 || g->n != 2)
            for (size_t k = 0; k < g->n; k++)
                fprintf(stderr, "  format %s: '%s' %s\n", cases[c].name, g->path[k],
                        g->reason[k] ? g->reason[k] : "");
        TT_CHECK(i >= 0);
        TT_EQ_INT(g->n, 2);
        if (i >= 0)
            TT_EQ_STR(g->data[i], k_readme);
        snprintf(want, sizeof want, "%s!/%s", cases[c].name, is_ar ? "main.c" : "src/main.c");
        i = find(g, want);
        TT_CHECK(i >= 0);
        if (i >= 0)
            TT_EQ_STR(g->data[i], k_main);
        got_free(g);
        free(b.data);
    }
}

static void test_sniff(void)
{
    const char *text = "just some text, not an archive at all\n";
    TT_CHECK(!tome_archive_sniff((const uint8_t *)text, strlen(text)));
    TT_CHECK(!tome_archive_sniff(NULL, 0));
    TT_CHECK(!tome_archive_sniff((const uint8_t *)"PK", 2));
    uint8_t zeros[1024] = {0};
    TT_CHECK(!tome_archive_sniff(zeros, sizeof zeros));
    /* a DOCX is a zip, but a document */
    const char *ct = "<Types/>", *doc = "<w:document/>";
    fx_member dm[] = {{"[Content_Types].xml", ct, strlen(ct)}, {"word/document.xml", doc, strlen(doc)}};
    fx_bytes d = fx_archive("zip", NULL, NULL, dm, 2);
    TT_CHECK(!tome_archive_sniff(d.data, d.len));
    free(d.data);
    fx_member m[] = {{"a.txt", "a", 1}};
    fx_bytes z = fx_archive("zip", NULL, NULL, m, 1);
    TT_CHECK(tome_archive_sniff(z.data, z.len));
    free(z.data);
}

static void test_single_compressed_file(void)
{
    const char *txt = "line one\nline two\n";
    fx_member m[] = {{"data", txt, strlen(txt)}};
    fx_bytes b = fx_archive("raw", "gzip", NULL, m, 1);
    TT_CHECK(tome_archive_sniff(b.data, b.len));
    got *g = got_new();
    TT_OK(read_all("logs/notes.txt.gz", b, NULL, g));
    TT_EQ_INT(g->n, 1);
    TT_EQ_STR(g->path[0], "logs/notes.txt.gz!/notes.txt");
    TT_EQ_STR(g->data[0], txt);
    got_free(g);
    free(b.data);
}

static void test_not_an_archive(void)
{
    const char *txt = "hello\n";
    got *g = got_new();
    TT_OK(tome_archive_read("hello.txt", (const uint8_t *)txt, strlen(txt), NULL, 0, collect, g));
    TT_EQ_INT(g->n, 1);
    TT_EQ_STR(g->path[0], "hello.txt");
    TT_CONTAINS(g->reason[0], "not a readable archive");
    got_free(g);
}

/* outer.zip ⊃ mid.tar.gz ⊃ inner.zip ⊃ deep.c */
static fx_bytes nested3(void)
{
    fx_member in[] = {{"deep.c", k_main, sizeof k_main - 1}};
    fx_bytes inner = fx_archive("zip", NULL, NULL, in, 1);
    fx_member mid[] = {{"inner.zip", inner.data, inner.len}, {"mid.txt", "mid\n", 4}};
    fx_bytes midb = fx_archive("pax", "gzip", NULL, mid, 2);
    fx_member out[] = {{"README.md", k_readme, sizeof k_readme - 1},
                       {"pkg/mid.tar.gz", midb.data, midb.len}};
    fx_bytes o = fx_archive("zip", NULL, NULL, out, 2);
    free(inner.data);
    free(midb.data);
    return o;
}

static void test_nested_paths(void)
{
    fx_bytes o = nested3();
    got *g = got_new();
    TT_OK(read_all("outer.zip", o, NULL, g));
    TT_EQ_INT(g->n, 3);
    TT_CHECK(find(g, "outer.zip!/README.md") >= 0);
    TT_CHECK(find(g, "outer.zip!/pkg/mid.tar.gz!/mid.txt") >= 0);
    int i = find(g, "outer.zip!/pkg/mid.tar.gz!/inner.zip!/deep.c");
    TT_CHECK(i >= 0);
    if (i >= 0)
        TT_EQ_STR(g->data[i], k_main);
    got_free(g);
    free(o.data);
}

static void test_nested_depth_cap(void)
{
    fx_bytes o = nested3();
    tome_archive_limits lim;
    tome_archive_limits_default(&lim);
    lim.max_depth = 1;
    got *g = got_new();
    TT_OK(read_all("outer.zip", o, &lim, g));
    TT_CHECK(find(g, "outer.zip!/pkg/mid.tar.gz!/mid.txt") >= 0);
    int i = find(g, "outer.zip!/pkg/mid.tar.gz!/inner.zip");
    TT_CHECK(i >= 0);
    if (i >= 0)
        TT_CONTAINS(g->reason[i], "nested archive too deep");
    TT_EQ_INT(find(g, "outer.zip!/pkg/mid.tar.gz!/inner.zip!/deep.c"), -1);
    got_free(g);
    lim.max_depth = 0;
    g = got_new();
    TT_OK(read_all("outer.zip", o, &lim, g));
    TT_EQ_INT(g->n, 2);
    i = find(g, "outer.zip!/pkg/mid.tar.gz");
    TT_CHECK(i >= 0 && g->reason[i] != NULL);
    got_free(g);
    free(o.data);
}

static void test_unsafe_paths(void)
{
    fx_member m[] = {{"../evil.sh", "x", 1},
                     {"a/../../escape.txt", "x", 1},
                     {"/etc/passwd", "x", 1},
                     {"C:\\Windows\\win.ini", "x", 1},
                     {"ok/./fine.txt", "fine\n", 5},
                     {"weird\x01name\xff.txt", "w", 1}};
    fx_bytes b = fx_archive("pax", NULL, NULL, m, TOME_ARRAY_LEN(m));
    got *g = got_new();
    TT_OK(read_all("t.tar", b, NULL, g));
    TT_EQ_INT(g->n, 6);
    int i = find(g, "t.tar!/../evil.sh");
    TT_CHECK(i >= 0 && g->reason[i] && strstr(g->reason[i], "traversal"));
    i = find(g, "t.tar!/a/../../escape.txt");
    TT_CHECK(i >= 0 && g->reason[i] && strstr(g->reason[i], "traversal"));
    i = find(g, "t.tar!//etc/passwd");
    TT_CHECK(i >= 0 && g->reason[i] && strstr(g->reason[i], "absolute"));
    i = find(g, "t.tar!/C:\\Windows\\win.ini");
    TT_CHECK(i >= 0 && g->reason[i] && strstr(g->reason[i], "absolute"));
    i = find(g, "t.tar!/ok/fine.txt");
    TT_CHECK(i >= 0 && g->reason[i] == NULL);
    /* odd bytes in names are passed through raw (renderers escape them) */
    i = find(g, "t.tar!/weird\x01name\xff.txt");
    TT_CHECK(i >= 0 && g->reason[i] == NULL);
    TT_EQ_INT(n_data(g), 2);
    got_free(g);
    free(b.data);
}

static void test_links_and_devices(void)
{
    fx_member m[] = {{"target.txt", "t\n", 2},
                     {"link-out", NULL, 0, FX_SYMLINK, "/etc/shadow"},
                     {"link-in", NULL, 0, FX_SYMLINK, "target.txt"},
                     {"hard", NULL, 0, FX_HARDLINK, "target.txt"},
                     {"dev/tty", NULL, 0, FX_CHR},
                     {"pipe", NULL, 0, FX_FIFO}};
    fx_bytes b = fx_archive("pax", "gzip", NULL, m, TOME_ARRAY_LEN(m));
    got *g = got_new();
    TT_OK(read_all("l.tgz", b, NULL, g));
    TT_EQ_INT(g->n, 6);
    TT_EQ_INT(n_data(g), 1);
    int i = find(g, "l.tgz!/link-out");
    TT_CHECK(i >= 0 && g->reason[i] && strstr(g->reason[i], "symlink"));
    i = find(g, "l.tgz!/link-in");
    TT_CHECK(i >= 0 && g->reason[i] && strstr(g->reason[i], "symlink"));
    i = find(g, "l.tgz!/hard");
    TT_CHECK(i >= 0 && g->reason[i] && strstr(g->reason[i], "hardlink to l.tgz!/target.txt"));
    i = find(g, "l.tgz!/dev/tty");
    TT_CHECK(i >= 0 && g->reason[i] && strstr(g->reason[i], "device"));
    i = find(g, "l.tgz!/pipe");
    TT_CHECK(i >= 0 && g->reason[i] && strstr(g->reason[i], "fifo"));
    got_free(g);
    free(b.data);
}

static void test_encrypted_zip(void)
{
    fx_member m[] = {{"secret.txt", "top secret\n", 11}, {"b.txt", "bbb\n", 4}};
    fx_bytes b = fx_archive("zip", NULL, "zip:encryption=zipcrypt", m, 2);
    got *g = got_new();
    TT_OK(read_all("e.zip", b, NULL, g));
    TT_EQ_INT(g->n, 2);
    for (size_t i = 0; i < g->n; i++)
        TT_CHECK(g->reason[i] && strstr(g->reason[i], "encrypted"));
    got_free(g);
    free(b.data);
    b = fx_archive("zip", NULL, "zip:encryption=aes256", m, 2);
    g = got_new();
    TT_OK(read_all("e2.zip", b, NULL, g));
    TT_EQ_INT(n_data(g), 0);
    TT_CHECK(g->n >= 1 && g->reason[0] && strstr(g->reason[0], "encrypted"));
    got_free(g);
    free(b.data);
}

static void test_entry_cap_measured(void)
{
    /* a gzip stream declares no size: the cap must be found while reading */
    size_t n = 3u << 20;
    char *big = noise(n, 7);
    fx_member m[] = {{"data", big, n}};
    fx_bytes b = fx_archive("raw", "gzip", NULL, m, 1);
    tome_archive_limits lim;
    tome_archive_limits_default(&lim);
    lim.max_entry_bytes = 1u << 20;
    got *g = got_new();
    TT_OK(read_all("big.log.gz", b, &lim, g));
    TT_EQ_INT(g->n, 1);
    TT_CHECK(g->reason[0] && strstr(g->reason[0], "too large"));
    got_free(g);
    free(b.data);
    /* in a tar the next member is still read */
    fx_member t[] = {{"big.bin", big, n}, {"small.txt", "small\n", 6}};
    b = fx_archive("pax", "gzip", NULL, t, 2);
    g = got_new();
    TT_OK(read_all("t.tar.gz", b, &lim, g));
    TT_EQ_INT(g->n, 2);
    int i = find(g, "t.tar.gz!/big.bin");
    TT_CHECK(i >= 0 && g->reason[i] && strstr(g->reason[i], "too large"));
    i = find(g, "t.tar.gz!/small.txt");
    TT_CHECK(i >= 0 && g->reason[i] == NULL);
    got_free(g);
    free(b.data);
    free(big);
}

static void test_zip_bomb_ratio(void)
{
    size_t n = 8u << 20; /* 8 MiB of zeros deflate to ~8 KiB */
    char *zeros = calloc(1, n);
    fx_member m[] = {{"a.txt", "first\n", 6}, {"zeros.bin", zeros, n}, {"after.txt", "after\n", 6}};
    fx_bytes b = fx_archive("zip", NULL, NULL, m, 3);
    got *g = got_new();
    TT_OK(read_all("bomb.zip", b, NULL, g)); /* default caps: ratio 200 */
    TT_CHECK(find(g, "bomb.zip!/a.txt") >= 0);
    int i = find(g, "bomb.zip!/zeros.bin");
    TT_CHECK(i >= 0 && g->reason[i] && strstr(g->reason[i], "bomb"));
    i = find(g, "bomb.zip");
    TT_CHECK(i >= 0 && g->reason[i] && strstr(g->reason[i], "ratio"));
    got_free(g);
    free(b.data);
    free(zeros);
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v, p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16), p[3] = (unsigned char)(v >> 24);
}

static void test_lying_size_header(void)
{
    /* a zip whose headers claim 100 bytes for a member that inflates to
     * 3 MiB: whatever libarchive makes of it, nothing over the cap arrives */
    size_t n = 3u << 20;
    char *zeros = calloc(1, n);
    fx_member m[] = {{"liar.bin", zeros, n}, {"next.txt", "next\n", 5}};
    fx_bytes b = fx_archive("zip", NULL, NULL, m, 2);
    int patched = 0;
    for (size_t i = 0; i + 46 <= b.len; i++) {
        if (memcmp(b.data + i, "PK\1\2", 4) == 0 && memcmp(b.data + i + 46, "liar.bin", 8) == 0) {
            put32(b.data + i + 24, 100); /* central directory: uncompressed size */
            patched++;
        } else if (memcmp(b.data + i, "PK\3\4", 4) == 0 && memcmp(b.data + i + 30, "liar.bin", 8) == 0) {
            if (b.data[i + 22] | b.data[i + 23] | b.data[i + 24] | b.data[i + 25])
                put32(b.data + i + 22, 100);
        } else if (memcmp(b.data + i, "PK\7\x08", 4) == 0 && patched == 0) {
            put32(b.data + i + 12, 100); /* data descriptor of the first member */
        }
    }
    TT_EQ_INT(patched, 1);
    tome_archive_limits lim;
    tome_archive_limits_default(&lim);
    lim.max_entry_bytes = 1u << 20;
    got *g = got_new();
    TT_OK(read_all("liar.zip", b, &lim, g));
    TT_CHECK(g->n >= 1);
    for (size_t i = 0; i < g->n; i++)
        TT_CHECK(g->reason[i] != NULL || g->len[i] <= lim.max_entry_bytes);
    int i = find(g, "liar.zip!/liar.bin");
    TT_CHECK(i >= 0 && (g->reason[i] != NULL || g->len[i] <= 100));
    got_free(g);
    free(b.data);
    free(zeros);
}

static void test_total_cap_and_entry_count(void)
{
    char *chunk = noise(100000, 3);
    fx_member m[40];
    char names[40][16];
    for (int i = 0; i < 40; i++) {
        snprintf(names[i], sizeof names[i], "f%02d.txt", i);
        m[i] = (fx_member){names[i], chunk, 100000};
    }
    fx_bytes b = fx_archive("zip", NULL, NULL, m, 40);
    tome_archive_limits lim;
    tome_archive_limits_default(&lim);
    lim.max_total_bytes = 1000000; /* ten members fit */
    got *g = got_new();
    TT_OK(read_all("many.zip", b, &lim, g));
    TT_EQ_INT(n_data(g), 10);
    int i = find(g, "many.zip");
    TT_CHECK(i >= 0 && g->reason[i] && strstr(g->reason[i], "total"));
    got_free(g);

    tome_archive_limits_default(&lim);
    lim.max_entries = 5;
    g = got_new();
    TT_OK(read_all("many.zip", b, &lim, g));
    TT_EQ_INT(n_data(g), 5);
    i = find(g, "many.zip");
    TT_CHECK(i >= 0 && g->reason[i] && strstr(g->reason[i], "entries"));
    got_free(g);
    free(b.data);
    free(chunk);
}

static void test_nested_bomb(void)
{
    /* 42.zip style: each level holds 8 copies of the level below; the leaf
     * holds 1 MiB of zeros. 8^3 leaves = 512 MiB if fully expanded. */
    size_t n = 1u << 20;
    char *zeros = calloc(1, n);
    fx_member leaf[] = {{"zeros", zeros, n}};
    fx_bytes level = fx_archive("zip", NULL, NULL, leaf, 1);
    for (int d = 0; d < 3; d++) {
        fx_member kids[8];
        char names[8][16];
        for (int k = 0; k < 8; k++) {
            snprintf(names[k], sizeof names[k], "l%d_%d.zip", d, k);
            kids[k] = (fx_member){names[k], level.data, level.len};
        }
        fx_bytes up = fx_archive("zip", NULL, NULL, kids, 8);
        free(level.data);
        level = up;
    }
    tome_archive_limits lim;
    tome_archive_limits_default(&lim);
    lim.max_total_bytes = 16u << 20;
    lim.max_ratio = 1e12; /* only the total cap is under test here */
    got *g = got_new();
    TT_OK(read_all("42.zip", level, &lim, g));
    TT_CHECK(n_data(g) <= 16);
    int i = find(g, "42.zip");
    TT_CHECK(i >= 0 && g->reason[i] && strstr(g->reason[i], "total"));
    got_free(g);
    /* and with default limits the ratio cap stops it */
    g = got_new();
    TT_OK(read_all("42.zip", level, NULL, g));
    TT_CHECK(n_data(g) < 512);
    TT_CHECK(g->n > 0 && g->reason[g->n - 1] != NULL);
    got_free(g);
    free(level.data);
    free(zeros);
}

static void test_truncated(void)
{
    char *mid = noise(200000, 11);
    fx_member m[] = {{"a.txt", "alpha\n", 6}, {"b.bin", mid, 200000}, {"c.txt", "gamma\n", 6}};
    static const struct { const char *fmt, *filter, *name; } cases[] = {
        {"pax", "gzip", "t.tar.gz"}, {"zip", NULL, "t.zip"}, {"7zip", NULL, "t.7z"},
        {"ustar", NULL, "t.tar"}, {"pax", "xz", "t.tar.xz"}};
    for (size_t c = 0; c < TOME_ARRAY_LEN(cases); c++) {
        fx_bytes b = fx_archive(cases[c].fmt, cases[c].filter, NULL, m, 3);
        for (int pct = 1; pct < 100; pct += 7) {
            size_t cut = b.len * (size_t)pct / 100;
            got *g = got_new();
            TT_OK(tome_archive_read(cases[c].name, b.data, cut, NULL, 0, collect, g));
            /* the whole archive is never delivered from a cut copy... */
            TT_CHECK(find(g, "t.zip!/c.txt") < 0 || strcmp(cases[c].name, "t.zip") == 0);
            /* ...and the damage is reported on the archive itself */
            char self[32];
            snprintf(self, sizeof self, "%s", cases[c].name);
            int i = find(g, self);
            if (!(i >= 0 && g->reason[i]))
                fprintf(stderr, "  %s cut at %d%%: no archive-level entry (%zu entries)\n",
                        cases[c].name, pct, g->n);
            TT_CHECK(i >= 0 && g->reason[i]);
            /* members ahead of the cut are delivered (streamable formats) */
            if (pct >= 60 && strcmp(cases[c].fmt, "7zip") != 0) {
                char a[32];
                snprintf(a, sizeof a, "%s!/a.txt", cases[c].name);
                int k = find(g, a);
                TT_CHECK(k >= 0 && g->reason[k] == NULL);
            }
            got_free(g);
        }
        free(b.data);
    }
    free(mid);
}

static void test_zip_cut_in_directory(void)
{
    fx_member m[] = {{"a.txt", "alpha\n", 6}, {"b.txt", "beta\n", 5}};
    fx_bytes b = fx_archive("zip", NULL, NULL, m, 2);
    size_t cd = 0;
    for (size_t i = 0; i + 4 <= b.len; i++)
        if (memcmp(b.data + i, "PK\1\2", 4) == 0) {
            cd = i;
            break;
        }
    TT_CHECK(cd > 0);
    got *g = got_new();
    TT_OK(tome_archive_read("cut.zip", b.data, cd + 10, NULL, 0, collect, g));
    TT_EQ_INT(n_data(g), 2);
    int i = find(g, "cut.zip");
    TT_CHECK(i >= 0 && g->reason[i] && strstr(g->reason[i], "truncated zip"));
    got_free(g);
    /* the whole zip has its directory: no such entry */
    g = got_new();
    TT_OK(tome_archive_read("whole.zip", b.data, b.len, NULL, 0, collect, g));
    TT_EQ_INT(g->n, 2);
    got_free(g);
    free(b.data);
}

static void test_corrupt_bytes(void)
{
    char *mid = noise(50000, 5);
    fx_member m[] = {{"a.txt", "alpha\n", 6}, {"b.bin", mid, 50000}, {"c.txt", "gamma\n", 6}};
    const char *fmts[][2] = {{"zip", NULL}, {"pax", "gzip"}, {"7zip", NULL}, {"pax", "bzip2"}};
    for (size_t c = 0; c < TOME_ARRAY_LEN(fmts); c++) {
        fx_bytes b = fx_archive(fmts[c][0], fmts[c][1], NULL, m, 3);
        unsigned seed = 99;
        for (int round = 0; round < 40; round++) {
            unsigned char *copy = malloc(b.len);
            memcpy(copy, b.data, b.len);
            for (int k = 0; k < 4; k++) {
                seed = seed * 1103515245u + 12345u;
                copy[(seed >> 8) % b.len] ^= (unsigned char)(1 + (seed >> 24) % 255);
            }
            got *g = got_new();
            TT_OK(tome_archive_read("x", copy, b.len, NULL, 0, collect, g));
            got_free(g);
            free(copy);
        }
        free(b.data);
    }
    free(mid);
}

static void test_corrupt_message_names_entry(void)
{
    char *mid = noise(200000, 13);
    fx_member m[] = {{"a.txt", "alpha\n", 6}, {"b.bin", mid, 200000}};
    fx_bytes b = fx_archive("pax", "gzip", NULL, m, 2);
    got *g = got_new();
    TT_OK(tome_archive_read("t.tar.gz", b.data, b.len / 2, NULL, 0, collect, g));
    int i = find(g, "t.tar.gz");
    TT_CHECK(i >= 0);
    if (i >= 0 && g->reason[i]) {
        TT_CONTAINS(g->reason[i], "truncated");
        TT_CONTAINS(g->reason[i], "b.bin");
    }
    got_free(g);
    free(b.data);
    free(mid);
}

static void test_documents_are_entries(void)
{
    const char *ct = "<Types/>", *doc = "<w:document/>";
    fx_member dm[] = {{"[Content_Types].xml", ct, strlen(ct)}, {"word/document.xml", doc, strlen(doc)}};
    fx_bytes d = fx_archive("zip", NULL, NULL, dm, 2);
    fx_member m[] = {{"contract.docx", d.data, d.len}};
    fx_bytes o = fx_archive("zip", NULL, NULL, m, 1);
    got *g = got_new();
    TT_OK(read_all("c.zip", o, NULL, g));
    TT_EQ_INT(g->n, 1);
    TT_EQ_STR(g->path[0], "c.zip!/contract.docx");
    TT_CHECK(g->reason[0] == NULL && g->len[0] == d.len);
    got_free(g);
    free(o.data);
    free(d.data);
}

static void test_callback_stops(void)
{
    fx_member m[] = {{"a", "a", 1}, {"b", "b", 1}, {"c", "c", 1}};
    fx_bytes b = fx_archive("zip", NULL, NULL, m, 3);
    got *g = got_new();
    g->stop_after = 2;
    TT_STATUS(read_all("s.zip", b, NULL, g), TOME_ERR_INTERRUPTED);
    TT_EQ_INT(g->n, 2);
    got_free(g);
    free(b.data);
}

int main(void)
{
    TT_RUN(test_defaults);
    TT_RUN(test_every_format);
    TT_RUN(test_sniff);
    TT_RUN(test_single_compressed_file);
    TT_RUN(test_not_an_archive);
    TT_RUN(test_nested_paths);
    TT_RUN(test_nested_depth_cap);
    TT_RUN(test_unsafe_paths);
    TT_RUN(test_links_and_devices);
    TT_RUN(test_encrypted_zip);
    TT_RUN(test_entry_cap_measured);
    TT_RUN(test_zip_bomb_ratio);
    TT_RUN(test_lying_size_header);
    TT_RUN(test_total_cap_and_entry_count);
    TT_RUN(test_nested_bomb);
    TT_RUN(test_truncated);
    TT_RUN(test_zip_cut_in_directory);
    TT_RUN(test_corrupt_bytes);
    TT_RUN(test_corrupt_message_names_entry);
    TT_RUN(test_documents_are_entries);
    TT_RUN(test_callback_stops);
    return tt_finish();
}
