/*
 * tests/test_kvcache_snapshot.c — KV snapshots (kvcache/kv_snapshot.c):
 * save/load equality across tiers, a save of a loaded cache is the same file,
 * corrupt / truncated / mismatched files refused with a message naming the
 * part, an unwritable directory, a simulated full disk (RLIMIT_FSIZE in a
 * child) that leaves the previous snapshot intact, and a prefill-like writer
 * SIGKILLed after a checkpoint whose resumed result equals an uninterrupted
 * run byte for byte.
 */
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/error_impl.h"
#include "kvcache/kvcache_impl.h"
#include "tt.h"

enum { H = 2, D = 16, HD = H * D, T = 16, NL = 3, NS = 2 };
static const int64_t k_window[NL] = {32, 0, 0};

/* Deterministic K/V for (layer, seq, position). */
static void row(int layer, int seq, int64_t p, float *k, float *v)
{
    uint64_t z = (uint64_t)p * 0x9e3779b97f4a7c15ull ^ (uint64_t)(layer * 131 + seq) * 0xbf58476d1ce4e5b9ull;
    for (int c = 0; c < HD; c++) {
        z ^= z >> 29;
        z *= 0x94d049bb133111ebull;
        z ^= z >> 32;
        float u = (float)((double)(z >> 40) / 16777216.0) - 0.5f;
        k[c] = (c % 7 == 3 ? 12.0f : 1.0f) * u + (c % 7 == 3 ? 3.0f : 0.0f);
        v[c] = u * 2.0f;
    }
}

static tome_kv_params params(int fmt, uint64_t ram_budget, const char *disk_dir)
{
    tome_kv_params p = {.n_layers = NL, .n_kv_heads = H, .head_dim = D, .n_seqs = NS, .max_tokens = 2000,
                        .window = k_window, .fmt = fmt, .page_tokens = T, .sink_tokens = 16, .recent_tokens = 16,
                        .ram_budget = ram_budget, .disk_dir = disk_dir};
    return p;
}

/* Writes positions [from, to) of every layer and sequence in 8-row steps
 * (cut at chunk ends, as the forward pass does). */
static void feed(tome_kvcache *kv, int64_t from, int64_t to)
{
    float k[8 * HD], v[8 * HD];
    for (int64_t p = from; p < to;) {
        int64_t n = to - p < 8 ? to - p : 8;
        if (32 - p % 32 < n) n = 32 - p % 32;
        for (int s = 0; s < NS; s++)
            for (int l = 0; l < NL; l++) {
                for (int64_t i = 0; i < n; i++) row(l, s, p + i, k + i * HD, v + i * HD);
                TT_OK(tome_kv_write(kv, l, s, p, (size_t)n, k, v));
            }
        p += n;
    }
}

static tome_kv_snapshot_meta meta_of(int64_t done, int64_t total)
{
    tome_kv_snapshot_meta m;
    memset(&m, 0, sizeof m);
    strcpy(m.id.model_hash, "0123456789abcdef0123456789abcdef");
    strcpy(m.id.tokenizer_hash, "11112222333344445555666677778888");
    strcpy(m.id.pack_hash, "aaaabbbbccccddddeeeeffff00001111");
    m.n_done = done;
    m.n_total = total;
    return m;
}

/* Every readable span of two caches is bit-equal. */
static void same_cache(const tome_kvcache *a, const tome_kvcache *b, int64_t n)
{
    for (int l = 0; l < NL; l++)
        for (int s = 0; s < NS; s++) {
            TT_EQ_INT(tome_kv_len(a, l, s), tome_kv_len(b, l, s));
            int64_t lo = k_window[l] ? ((n - 1) / k_window[l]) * k_window[l] : 0;
            for (int64_t p = lo; p < n;) {
                tome_kv_span x, y;
                TT_OK(tome_kv_span_at(a, l, s, p, n, &x));
                if (tt_case_failed) return;
                float kx[T * HD], vx[T * HD];
                size_t rows = (size_t)(x.p1 - x.p0);
                memcpy(kx, x.k, rows * HD * sizeof(float));
                memcpy(vx, x.v, rows * HD * sizeof(float));
                TT_OK(tome_kv_span_at(b, l, s, p, n, &y));
                if (tt_case_failed) return;
                TT_EQ_INT(x.p1, y.p1);
                TT_CHECK(memcmp(kx, y.k, rows * HD * sizeof(float)) == 0);
                TT_CHECK(memcmp(vx, y.v, rows * HD * sizeof(float)) == 0);
                p = x.p1;
            }
        }
}

static int files_equal(const char *a, const char *b)
{
    size_t na, nb;
    char *x = tt_read_file(a, &na), *y = tt_read_file(b, &nb);
    int eq = x && y && na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return eq;
}

/* A fresh subdirectory of tt_tmpdir() (shared by the whole process). */
static const char *subdir(const char *name)
{
    static char buf[8][512];
    static int next;
    char *b = buf[next++ % 8];
    snprintf(b, 512, "%s/%s", tt_tmpdir(), name);
    mkdir(b, 0700);
    return b;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        if (e->d_name[0] != '.') n++;
    if (d) closedir(d);
    return n;
}

static void test_save_load_equal_across_tiers(void)
{
    const char *dir = subdir("tiers");
    char p1[512], p2[512], p3[512];
    snprintf(p1, sizeof p1, "%s/a.tkv", dir);
    snprintf(p2, sizeof p2, "%s/b.tkv", dir);
    snprintf(p3, sizeof p3, "%s/c.tkv", dir);
    const int64_t n = 16 * 20 + 7;
    for (int fmt = TOME_KV_F32; fmt < TOME_KV_N_FORMATS; fmt++) {
        tome_kvcache *ref, *spill, *back;
        tome_kv_params p = params(fmt, 0, NULL);
        TT_OK(tome_kv_open(&p, &ref));
        feed(ref, 0, n);
        const uint64_t pb = tome_kv_page_layout(ref)->page_bytes;
        p = params(fmt, pb * (4 + 6), subdir("spill")); /* chunk pages + 6 more: the rest spills */
        TT_OK(tome_kv_open(&p, &spill));
        feed(spill, 0, n);
        tome_kv_stats st;
        tome_kv_get_stats(spill, &st);
        TT_CHECK(st.pages_disk > 0);
        tome_kv_snapshot_meta m = meta_of(n, n);
        TT_OK(tome_kv_snapshot_save(ref, p1, &m));
        TT_OK(tome_kv_snapshot_save(spill, p2, &m));
        TT_CHECK(files_equal(p1, p2)); /* tiers do not show in the file */
        /* load with a tight budget (spills again), compare, save again */
        tome_kv_snapshot_info info;
        TT_OK(tome_kv_snapshot_load(p1, &m.id, &p, &back, &info));
        if (!back) continue;
        TT_EQ_INT(info.n_done, n);
        TT_EQ_INT(info.fmt, fmt);
        same_cache(ref, back, n);
        TT_OK(tome_kv_snapshot_save(back, p3, &m));
        TT_CHECK(files_equal(p1, p3));
        /* a loaded cache keeps going like the original */
        feed(ref, n, n + 40);
        feed(back, n, n + 40);
        same_cache(ref, back, n + 40);
        tome_kv_free(ref);
        tome_kv_free(spill);
        tome_kv_free(back);
    }
    TT_EQ_INT(count_entries(dir), 3); /* no temp files */
}

/* Copies src to dst with a byte changed / the length cut. */
static void mutate(const char *src, const char *dst, long at, int xor_byte, long new_len)
{
    size_t n;
    char *b = tt_read_file(src, &n);
    TT_CHECK(b != NULL);
    if (!b) return;
    if (at >= 0 && (size_t)at < n) b[at] ^= (char)xor_byte;
    TT_EQ_INT(tt_write_file(dst, b, new_len >= 0 ? (size_t)new_len : n), 0);
    free(b);
}

static void test_corrupt_truncated_mismatched_refused(void)
{
    const char *dir = subdir("corrupt");
    char good[512], bad[512];
    snprintf(good, sizeof good, "%s/good.tkv", dir);
    snprintf(bad, sizeof bad, "%s/bad.tkv", dir);
    tome_kv_params p = params(TOME_KV_INT4, 0, NULL);
    tome_kvcache *kv, *back = NULL;
    TT_OK(tome_kv_open(&p, &kv));
    feed(kv, 0, 200);
    tome_kv_snapshot_meta m = meta_of(200, 300);
    TT_OK(tome_kv_snapshot_save(kv, good, &m));
    tome_kv_snapshot_info info;
    TT_OK(tome_kv_snapshot_info_read(good, &info));
    TT_EQ_INT(info.n_done, 200);
    TT_EQ_INT(info.n_total, 300);
    const long len = (long)info.file_bytes;
    const long pages_at = len - 24 - (long)(info.n_pages * tome_kv_page_layout(kv)->page_bytes); /* page area */
    struct {
        long at, cut;
        tome_status st;
        const char *msg;
    } cases[] = {
        {0, -1, TOME_ERR_FORMAT, "bad magic"},
        {100, -1, TOME_ERR_FORMAT, "corrupt header"},
        {-1, len - 100, TOME_ERR_FORMAT, "truncated"},
        {-1, 300, TOME_ERR_FORMAT, "truncated"},
        {-1, 10, TOME_ERR_FORMAT, "truncated"},
        {512 + 8 * NL + 10, -1, TOME_ERR_FORMAT, "stream table"},
        {len - 20, -1, TOME_ERR_FORMAT, "trailer"},
    };
    for (size_t i = 0; i < TOME_ARRAY_LEN(cases); i++) {
        mutate(good, bad, cases[i].at, 0x41, cases[i].cut);
        TT_STATUS(tome_kv_snapshot_load(bad, &m.id, NULL, &back, NULL), cases[i].st);
        TT_CONTAINS(tome_last_error(), cases[i].msg);
        TT_CONTAINS(tome_last_error(), bad);
        TT_CHECK(back == NULL);
    }
    /* a flipped byte inside the float rows and inside a sealed page */
    mutate(good, bad, 512 + 8 * NL + 88 * NL * NS + 40, 0x08, -1); /* 88-byte stream records (version 2) */
    TT_STATUS(tome_kv_snapshot_load(bad, &m.id, NULL, &back, NULL), TOME_ERR_FORMAT);
    TT_CONTAINS(tome_last_error(), "float rows corrupt");
    mutate(good, bad, pages_at + 3000, 0x08, -1);
    TT_STATUS(tome_kv_snapshot_load(bad, &m.id, NULL, &back, NULL), TOME_ERR_FORMAT);
    TT_CONTAINS(tome_last_error(), "page");
    TT_CONTAINS(tome_last_error(), "checksum mismatch");
    /* identities */
    tome_kv_identity id = m.id;
    id.model_hash[0] = 'f';
    TT_STATUS(tome_kv_snapshot_load(good, &id, NULL, &back, NULL), TOME_ERR_MISMATCH);
    TT_CONTAINS(tome_last_error(), "another model");
    id = m.id;
    id.tokenizer_hash[5] = 'f';
    TT_STATUS(tome_kv_snapshot_load(good, &id, NULL, &back, NULL), TOME_ERR_MISMATCH);
    TT_CONTAINS(tome_last_error(), "another tokenizer");
    id = m.id;
    id.pack_hash[31] = '9';
    TT_STATUS(tome_kv_snapshot_load(good, &id, NULL, &back, NULL), TOME_ERR_MISMATCH);
    TT_CONTAINS(tome_last_error(), "another pack");
    /* unchecked fields pass */
    id = m.id;
    id.pack_hash[0] = 0;
    TT_OK(tome_kv_snapshot_load(good, &id, NULL, &back, NULL));
    tome_kv_free(back);
    back = NULL;
    /* missing file, unwritable directory */
    TT_STATUS(tome_kv_snapshot_load("/nonexistent/x.tkv", NULL, NULL, &back, NULL), TOME_ERR_NOT_FOUND);
    tome_status s = tome_kv_snapshot_save(kv, "/nonexistent/dir/x.tkv", &m);
    TT_CHECK(s == TOME_ERR_IO || s == TOME_ERR_NOT_FOUND);
    TT_CONTAINS(tome_last_error(), "/nonexistent/dir");
    tome_kv_free(kv);
}

/* Any single flipped byte anywhere is refused, or (padding) loads the same
 * cache; never a crash (run under ASan). */
static void test_random_flips(void)
{
    const char *dir = subdir("flips");
    char good[512], bad[512];
    snprintf(good, sizeof good, "%s/good.tkv", dir);
    snprintf(bad, sizeof bad, "%s/bad.tkv", dir);
    tome_kv_params p = params(TOME_KV_INT8, 0, NULL);
    tome_kvcache *kv, *back = NULL;
    TT_OK(tome_kv_open(&p, &kv));
    feed(kv, 0, 100);
    tome_kv_snapshot_meta m = meta_of(100, 100);
    TT_OK(tome_kv_snapshot_save(kv, good, &m));
    size_t n;
    char *orig = tt_read_file(good, &n);
    TT_CHECK(orig != NULL);
    int refused = 0;
    uint64_t z = 12345;
    for (int i = 0; i < 150 && orig; i++) {
        z = z * 6364136223846793005ull + 1442695040888963407ull;
        size_t at = (size_t)(z >> 33) % n;
        orig[at] ^= (char)(1u << ((z >> 20) & 7));
        TT_EQ_INT(tt_write_file(bad, orig, n), 0);
        orig[at] ^= (char)(1u << ((z >> 20) & 7));
        tome_status st = tome_kv_snapshot_load(bad, &m.id, NULL, &back, NULL);
        if (st != TOME_OK) {
            TT_CHECK(st == TOME_ERR_FORMAT || st == TOME_ERR_UNSUPPORTED || st == TOME_ERR_MISMATCH);
            TT_CHECK(back == NULL);
            refused++;
        } else {
            same_cache(kv, back, 100);
            tome_kv_free(back);
            back = NULL;
        }
    }
    TT_CHECK(refused > 100);
    free(orig);
    tome_kv_free(kv);
}

/* A save that hits the file-size limit fails with TOME_ERR_NOSPACE and
 * leaves the previous snapshot as it was, with no temp file. */
static void test_disk_full_keeps_previous(void)
{
    const char *dir = subdir("full");
    char path[512];
    snprintf(path, sizeof path, "%s/ctx.tkv", dir);
    tome_kv_params p = params(TOME_KV_BF16, 0, NULL);
    tome_kvcache *kv;
    TT_OK(tome_kv_open(&p, &kv));
    feed(kv, 0, 64);
    tome_kv_snapshot_meta m = meta_of(64, 1000);
    TT_OK(tome_kv_snapshot_save(kv, path, &m));
    size_t n0;
    char *orig = tt_read_file(path, &n0);
    TT_CHECK(orig != NULL);
    feed(kv, 64, 1000);
    m.n_done = 1000;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {.rlim_cur = n0 + 1000, .rlim_max = n0 + 1000};
        setrlimit(RLIMIT_FSIZE, &rl);
        tome_status st = tome_kv_snapshot_save(kv, path, &m);
        const char *msg = tome_last_error();
        _exit(st == TOME_ERR_NOSPACE && strstr(msg, path) ? 0 : 10 + (int)st);
    }
    int ws = 0;
    TT_CHECK(waitpid(pid, &ws, 0) == pid);
    TT_CHECK(WIFEXITED(ws));
    TT_EQ_INT(WEXITSTATUS(ws), 0);
    size_t n1;
    char *now = tt_read_file(path, &n1);
    TT_CHECK(now && n1 == n0 && memcmp(now, orig, n0) == 0);
    TT_EQ_INT(count_entries(dir), 1);
    tome_kvcache *back = NULL;
    tome_kv_snapshot_info info;
    TT_OK(tome_kv_snapshot_load(path, &m.id, NULL, &back, &info));
    TT_EQ_INT(info.n_done, 64);
    tome_kv_free(back);
    free(orig);
    free(now);
    tome_kv_free(kv);
}

/* Writer: feeds [start, total), checkpointing every `every` positions;
 * SIGKILLs itself after `kill_after` checkpoints (0: never). */
static void prefill_like(tome_kvcache *kv, const char *path, int64_t start, int64_t total, int64_t every, int kill_after)
{
    int n = 0;
    for (int64_t p = start; p < total;) {
        int64_t e = p + every < total ? p + every : total;
        feed(kv, p, e);
        p = e;
        tome_kv_snapshot_meta m = meta_of(p, total);
        TT_OK(tome_kv_snapshot_save(kv, path, &m));
        if (kill_after && ++n == kill_after) kill(getpid(), SIGKILL);
    }
}

static void test_kill9_resume_equals_uninterrupted(void)
{
    const char *dir = subdir("kill");
    char full[512], part[512];
    snprintf(full, sizeof full, "%s/full.tkv", dir);
    snprintf(part, sizeof part, "%s/part.tkv", dir);
    const int64_t total = 600, every = 96;
    tome_kv_params p = params(TOME_KV_INT4, 0, NULL);
    tome_kvcache *kv;
    TT_OK(tome_kv_open(&p, &kv));
    prefill_like(kv, full, 0, total, every, 0);
    tome_kv_free(kv);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        tome_kvcache *c;
        tome_kv_params q = params(TOME_KV_INT4, 0, NULL);
        if (tome_kv_open(&q, &c) != TOME_OK) _exit(3);
        prefill_like(c, part, 0, total, every, 3);
        _exit(4); /* not reached */
    }
    int ws = 0;
    TT_CHECK(waitpid(pid, &ws, 0) == pid);
    TT_CHECK(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);
    /* resume from the checkpoint the killed writer left */
    tome_kv_snapshot_info info;
    tome_kv_snapshot_meta m = meta_of(0, total);
    tome_kvcache *c = NULL;
    TT_OK(tome_kv_snapshot_load(part, &m.id, &p, &c, &info));
    if (!c) return;
    TT_EQ_INT(info.n_done, 3 * every);
    TT_EQ_INT(info.n_total, total);
    prefill_like(c, part, info.n_done, total, every, 0);
    TT_CHECK(files_equal(full, part));
    tome_kv_free(c);
}

/* A RAM budget smaller than the snapshot leaves the rest of the pages in the
 * snapshot file itself (disk tier, no copy, no disk directory needed): reads
 * equal the saved cache, survive the file being replaced by a newer save,
 * and a corrupt page is refused when it is read, naming it. */
static void test_load_in_place(void)
{
    const char *dir = subdir("inplace");
    char path[512], copy[512];
    snprintf(path, sizeof path, "%s/a.tkv", dir);
    snprintf(copy, sizeof copy, "%s/b.tkv", dir);
    const int64_t n = 16 * 30 + 5;
    tome_kv_params p = params(TOME_KV_INT4, 0, NULL);
    tome_kvcache *ref, *back = NULL;
    TT_OK(tome_kv_open(&p, &ref));
    feed(ref, 0, n);
    const uint64_t pb = tome_kv_page_layout(ref)->page_bytes;
    tome_kv_snapshot_meta m = meta_of(n, n);
    TT_OK(tome_kv_snapshot_save(ref, path, &m));
    TT_OK(tome_kv_snapshot_save(ref, copy, &m));
    tome_kv_params tight = params(TOME_KV_INT4, pb * (4 + 3), NULL); /* chunk pages + 3 */
    TT_OK(tome_kv_snapshot_load(path, &m.id, &tight, &back, NULL));
    if (!back) return;
    tome_kv_stats st;
    tome_kv_get_stats(back, &st);
    TT_CHECK(st.pages_snapshot > 0);
    TT_EQ_INT(st.pages_snapshot, st.pages_disk);
    TT_EQ_INT(st.pages_ram, 3); /* the chunked layer holds no sealed page at n (its chunk just began) */
    same_cache(ref, back, n);
    /* the file is replaced (atomic rename) by a later save: still the old pages */
    tome_kvcache *other;
    TT_OK(tome_kv_open(&p, &other));
    feed(other, 0, 40);
    tome_kv_snapshot_meta m2 = meta_of(40, 40);
    TT_OK(tome_kv_snapshot_save(other, path, &m2));
    tome_kv_free(other);
    same_cache(ref, back, n);
    /* a loaded in-place cache saves to the same bytes */
    TT_OK(tome_kv_snapshot_save(back, path, &m));
    TT_CHECK(files_equal(path, copy));
    tome_kv_free(back);
    back = NULL;
    /* corrupt the last page's codes: an in-place load succeeds, the read fails */
    size_t len;
    char *bytes = tt_read_file(copy, &len);
    TT_CHECK(bytes != NULL && len > 200);
    if (!bytes) return;
    bytes[len - 24 - 100] ^= 0x10; /* the trailer is 24 bytes; before it the last page */
    TT_EQ_INT(tt_write_file(copy, bytes, len), 0);
    free(bytes);
    TT_STATUS(tome_kv_snapshot_load(copy, &m.id, NULL, &back, NULL), TOME_ERR_FORMAT); /* all in RAM: checked now */
    TT_CONTAINS(tome_last_error(), "page");
    TT_OK(tome_kv_snapshot_load(copy, &m.id, &tight, &back, NULL));
    if (!back) return;
    int bad = 0;
    for (int l = 1; l < NL; l++)
        for (int s = 0; s < NS; s++)
            for (int64_t q = 0; q < n;) {
                tome_kv_view w;
                tome_status rs = tome_kv_view_at(back, l, s, q, n, &w);
                if (rs != TOME_OK) {
                    TT_EQ_INT(rs, TOME_ERR_FORMAT);
                    TT_CONTAINS(tome_last_error(), "snapshot file");
                    bad++;
                    break;
                }
                q = w.p1;
            }
    TT_EQ_INT(bad, 1);
    tome_kv_free(back);
    tome_kv_free(ref);
}

int main(void)
{
    TT_RUN(test_save_load_equal_across_tiers);
    TT_RUN(test_corrupt_truncated_mismatched_refused);
    TT_RUN(test_random_flips);
    TT_RUN(test_load_in_place);
    TT_RUN(test_disk_full_keeps_previous);
    TT_RUN(test_kill9_resume_equals_uninterrupted);
    return tt_finish();
}
