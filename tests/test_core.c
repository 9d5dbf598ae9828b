/* tests/test_core.c — error model, buffers, atomic files, parallel-for. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <signal.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/core_impl.h"
#include "tt.h"

static void test_error_message_names_context(void)
{
    tome_status s = tome_set_error(TOME_ERR_FORMAT, "%s: bad byte at offset %d", "a.bin", 17);
    TT_EQ_INT(s, TOME_ERR_FORMAT);
    TT_EQ_STR(tome_last_error(), "a.bin: bad byte at offset 17");
    tome_error_prefix(s, "pack %s", "x.tpk");
    TT_EQ_STR(tome_last_error(), "pack x.tpk: a.bin: bad byte at offset 17");
    tome_clear_error();
    TT_EQ_STR(tome_last_error(), "");
    TT_EQ_STR(tome_status_name(TOME_ERR_NOSPACE), "no space");
}

static void test_error_long_message_truncated(void)
{
    char big[5000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    tome_set_error(TOME_ERR_IO, "%s", big);
    size_t n = strlen(tome_last_error());
    TT_CHECK(n < 2048);
    TT_CHECK(strcmp(tome_last_error() + n - 3, "...") == 0);
}

static void test_errno_mapping(void)
{
    TT_EQ_INT(tome_status_from_errno(ENOSPC), TOME_ERR_NOSPACE);
    TT_EQ_INT(tome_status_from_errno(EFBIG), TOME_ERR_NOSPACE);
    TT_EQ_INT(tome_status_from_errno(ENOENT), TOME_ERR_NOT_FOUND);
    TT_EQ_INT(tome_status_from_errno(EACCES), TOME_ERR_IO);
    tome_set_errno(TOME_ERR_IO, ENOENT, "%s: cannot open", "f");
    TT_EQ_STR(tome_last_error(), "f: cannot open: No such file or directory");
}

static void *thread_sets_error(void *arg)
{
    tome_set_error(TOME_ERR_LIMIT, "other thread");
    return arg;
}

static void test_error_is_thread_local(void)
{
    tome_set_error(TOME_ERR_FORMAT, "main thread");
    pthread_t th;
    pthread_create(&th, NULL, thread_sets_error, NULL);
    pthread_join(th, NULL);
    TT_EQ_STR(tome_last_error(), "main thread");
}

static void test_buf(void)
{
    tome_buf b = {0};
    for (int i = 0; i < 1000; i++) TT_OK(tome_buf_appendf(&b, "%d,", i));
    TT_EQ_INT(b.len, strlen(b.data));
    TT_CHECK(strncmp(b.data, "0,1,2,", 6) == 0);
    TT_CHECK(strcmp(b.data + b.len - 4, "999,") == 0);
    tome_buf_free(&b);
    TT_CHECK(b.data == NULL && b.len == 0);
    tome_buf_free(NULL);
}

static void test_read_file_errors_name_path(void)
{
    tome_buf b = {0};
    TT_STATUS(tome_read_file("/nonexistent/zz", 0, &b), TOME_ERR_NOT_FOUND);
    TT_CONTAINS(tome_last_error(), "/nonexistent/zz");
    char p[4096];
    snprintf(p, sizeof p, "%s/ten", tt_tmpdir());
    TT_CHECK(tt_write_file(p, "0123456789", 10) == 0);
    TT_STATUS(tome_read_file(p, 5, &b), TOME_ERR_LIMIT);
    TT_CONTAINS(tome_last_error(), "ten");
    TT_OK(tome_read_file(p, 0, &b));
    TT_EQ_INT(b.len, 10);
    TT_EQ_STR(b.data, "0123456789");
    TT_STATUS(tome_read_file(tt_tmpdir(), 0, &b), TOME_ERR_INVALID_ARG);
    tome_buf_free(&b);
}

static void test_mmap(void)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/m", tt_tmpdir());
    TT_CHECK(tt_write_file(p, "abc", 3) == 0);
    tome_mmap m;
    TT_OK(tome_mmap_open(p, &m));
    TT_EQ_INT(m.len, 3);
    TT_CHECK(m.data && memcmp(m.data, "abc", 3) == 0);
    tome_mmap_close(&m);
    tome_mmap_close(&m);
    snprintf(p, sizeof p, "%s/empty", tt_tmpdir());
    TT_CHECK(tt_write_file(p, "", 0) == 0);
    TT_OK(tome_mmap_open(p, &m));
    TT_EQ_INT(m.len, 0);
    tome_mmap_close(&m);
}

static int count_entries(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", dir);
    FILE *f = popen(cmd, "r");
    int n = -1;
    if (f) { if (fscanf(f, "%d", &n) != 1) n = -1; pclose(f); }
    return n;
}

static void test_atomic_commit_and_abort(void)
{
    char dir[4096], p[4200];
    snprintf(dir, sizeof dir, "%s/atomic", tt_tmpdir());
    mkdir(dir, 0755);
    snprintf(p, sizeof p, "%s/out", dir);
    TT_CHECK(tt_write_file(p, "old", 3) == 0);

    tome_atomic_file *f;
    TT_OK(tome_atomic_open(p, &f));
    TT_OK(tome_atomic_write(f, "new contents", 12));
    tome_atomic_abort(f);
    size_t n;
    char *s = tt_read_file(p, &n);
    TT_EQ_STR(s, "old");
    free(s);
    TT_EQ_INT(count_entries(dir), 1);

    TT_OK(tome_atomic_open(p, &f));
    TT_OK(tome_atomic_write(f, "new contents", 12));
    TT_OK(tome_atomic_commit(f));
    s = tt_read_file(p, &n);
    TT_EQ_STR(s, "new contents");
    free(s);
    TT_EQ_INT(count_entries(dir), 1);

    TT_STATUS(tome_atomic_open("/nonexistent-dir/x", &f), TOME_ERR_NOT_FOUND);
    TT_CONTAINS(tome_last_error(), "/nonexistent-dir/x");
}

/* A file-size limit makes writes fail like a full disk: the old file must
 * survive untouched and no temp file may remain. */
static void test_atomic_disk_full_keeps_old_file(void)
{
    char dir[4096], p[4200];
    snprintf(dir, sizeof dir, "%s/full", tt_tmpdir());
    mkdir(dir, 0755);
    snprintf(p, sizeof p, "%s/out", dir);
    TT_CHECK(tt_write_file(p, "previous", 8) == 0);

    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {4096, 4096};
        setrlimit(RLIMIT_FSIZE, &rl);
        tome_atomic_file *f;
        if (tome_atomic_open(p, &f) != TOME_OK) _exit(10);
        static char block[1 << 16];
        tome_status s = TOME_OK;
        for (int i = 0; i < 4 && s == TOME_OK; i++) s = tome_atomic_write(f, block, sizeof block);
        tome_status c = tome_atomic_commit(f);
        if (c == TOME_OK) _exit(11);
        if (c != TOME_ERR_NOSPACE) _exit(12);
        if (!strstr(tome_last_error(), p)) _exit(13);
        _exit(0);
    }
    int wst = 0;
    waitpid(pid, &wst, 0);
    TT_CHECK(WIFEXITED(wst));
    TT_EQ_INT(WEXITSTATUS(wst), 0);
    size_t n;
    char *s = tt_read_file(p, &n);
    TT_EQ_STR(s, "previous");
    free(s);
    TT_EQ_INT(count_entries(dir), 1);
}

typedef struct { _Atomic long sum; int fail_at; } par_state;

static tome_status par_add(void *ctx, size_t item, int thread_index)
{
    par_state *ps = ctx;
    (void)thread_index;
    if ((int)item == ps->fail_at) return tome_set_error(TOME_ERR_FORMAT, "item %zu is bad", item);
    ps->sum += (long)item;
    return TOME_OK;
}

static void test_parallel_for(void)
{
    par_state ps = {0, -1};
    TT_OK(tome_parallel_for(1000, 4, par_add, &ps));
    TT_EQ_INT(ps.sum, 999L * 1000 / 2);
    ps.sum = 0;
    ps.fail_at = 10;
    TT_STATUS(tome_parallel_for(1000, 3, par_add, &ps), TOME_ERR_FORMAT);
    TT_EQ_STR(tome_last_error(), "item 10 is bad");
    TT_OK(tome_parallel_for(0, 4, par_add, &ps));
}

/* the pool: the same worker threads serve consecutive calls (per-thread
 * caches survive), a nested call from inside an item works, two calls from
 * two threads at once both complete, and a forked child can still use it */
static _Atomic long g_thread_ids;
static _Thread_local long t_thread_id; /* 0 until this thread first runs an item */

typedef struct {
    long who[8];
    _Atomic int seen[8];
    _Atomic long sum;
} pool_state;

static tome_status pool_mark(void *ctx, size_t item, int thread_index)
{
    pool_state *ps = ctx;
    if (!t_thread_id) t_thread_id = ++g_thread_ids;
    ps->who[thread_index] = t_thread_id;
    ps->seen[thread_index] = 1;
    ps->sum += (long)item;
    struct timespec ts = {0, 200000}; /* 0.2 ms: lets every worker take items */
    nanosleep(&ts, NULL);
    return TOME_OK;
}

static tome_status pool_nested(void *ctx, size_t item, int thread_index)
{
    (void)thread_index;
    par_state inner = {0, -1};
    tome_status st = tome_parallel_for(100, 2, par_add, &inner);
    if (st == TOME_OK && inner.sum != 99L * 100 / 2) st = tome_set_error(TOME_ERR_INTERNAL, "inner sum %ld", (long)inner.sum);
    ((par_state *)ctx)->sum += (long)item;
    return st;
}

static void *pool_thread(void *arg)
{
    par_state *ps = arg;
    for (int r = 0; r < 50; r++)
        if (tome_parallel_for(200, 2, par_add, ps) != TOME_OK) return (void *)1;
    return NULL;
}

static void test_parallel_pool(void)
{
    pool_state a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    TT_OK(tome_parallel_for(64, 3, pool_mark, &a));
    TT_OK(tome_parallel_for(64, 3, pool_mark, &b));
    TT_EQ_INT(a.sum, 63L * 64 / 2);
    TT_EQ_INT(b.sum, 63L * 64 / 2);
    for (int t = 1; t < 3; t++)
        if (a.seen[t] && b.seen[t]) TT_EQ_INT(a.who[t], b.who[t]); /* a thread that lives on */
    TT_CHECK(a.seen[1] || a.seen[2]);
    TT_CHECK(a.who[0] != a.who[1] && a.who[0] != a.who[2]);
    /* nested */
    par_state outer = {0, -1};
    TT_OK(tome_parallel_for(20, 2, pool_nested, &outer));
    TT_EQ_INT(outer.sum, 19L * 20 / 2);
    /* concurrent callers */
    par_state p1 = {0, -1}, p2 = {0, -1};
    pthread_t t1, t2;
    pthread_create(&t1, NULL, pool_thread, &p1);
    pthread_create(&t2, NULL, pool_thread, &p2);
    void *r1, *r2;
    pthread_join(t1, &r1);
    pthread_join(t2, &r2);
    TT_CHECK(r1 == NULL && r2 == NULL);
    TT_EQ_INT(p1.sum, 50L * 199 * 200 / 2);
    TT_EQ_INT(p2.sum, 50L * 199 * 200 / 2);
    /* fork: the child has no workers, the pool must not wait for them */
    pid_t pid = fork();
    if (pid == 0) {
        par_state c = {0, -1};
        alarm(20);
        int ok = tome_parallel_for(1000, 4, par_add, &c) == TOME_OK && c.sum == 999L * 1000 / 2;
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    TT_CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    TT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int main(void)
{
    TT_RUN(test_error_message_names_context);
    TT_RUN(test_error_long_message_truncated);
    TT_RUN(test_errno_mapping);
    TT_RUN(test_error_is_thread_local);
    TT_RUN(test_buf);
    TT_RUN(test_read_file_errors_name_path);
    TT_RUN(test_mmap);
    TT_RUN(test_atomic_commit_and_abort);
    TT_RUN(test_atomic_disk_full_keeps_old_file);
    TT_RUN(test_parallel_for);
    TT_RUN(test_parallel_pool);
    return tt_finish();
}
