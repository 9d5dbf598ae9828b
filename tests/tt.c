/* tests/tt.c — implementation of the test harness declared in tt.h. */
#include "tt.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int tt_case_failed;
static int g_passed, g_failed;
static char g_tmpdir[4096];

void tt_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "  FAIL %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    tt_case_failed = 1;
}

void tt_run(const char *name, void (*fn)(void))
{
    tt_case_failed = 0;
    tome_clear_error();
    fn();
    if (tt_case_failed) {
        g_failed++;
        fprintf(stderr, "[FAIL] %s\n", name);
    } else {
        g_passed++;
        fprintf(stderr, "[ ok ] %s\n", name);
    }
}

int tt_finish(void)
{
    if (g_tmpdir[0] && !getenv("TT_KEEP_TMP"))
        tt_system("rm -rf '%s'", g_tmpdir);
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return (v && *v) ? v : fallback;
}

const char *tt_source_path(const char *rel)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", env_or("TOME_SOURCE_DIR", "."), rel);
    return buf;
}

const char *tt_shared_path(const char *rel)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", env_or("TOME_SHARED_DIR", "../shared"), rel);
    return buf;
}

const char *tt_tmpdir(void)
{
    if (!g_tmpdir[0]) {
        snprintf(g_tmpdir, sizeof g_tmpdir, "%s/tome-test-XXXXXX", env_or("TMPDIR", "/tmp"));
        if (!mkdtemp(g_tmpdir)) {
            fprintf(stderr, "mkdtemp failed: %s\n", strerror(errno));
            exit(2);
        }
    }
    return g_tmpdir;
}

char *tt_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            char *nb = realloc(buf, cap + 1);
            if (!nb) { free(buf); fclose(f); return NULL; }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        if (r == 0) break;
        n += r;
    }
    fclose(f);
    buf[n] = '\0';
    if (len) *len = n;
    return buf;
}

int tt_write_file(const char *path, const void *data, size_t len)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    for (char *p = dir + 1; *p; p++) {
        if (*p == '/') { *p = '\0'; mkdir(dir, 0755); *p = '/'; }
    }
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = fwrite(data, 1, len, f) == len;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

int tt_system(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    if (rc == -1) return -1;
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}
