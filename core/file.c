/*
 * core/file.c — whole-file reads, read-only maps, atomic writes.
 *
 * Atomic writes: data goes to a temp file beside the target (same directory,
 * so rename(2) is atomic on POSIX file systems); commit = fflush + fsync +
 * rename + fsync of the directory. Any failure removes the temp file, so a
 * full disk or a crash can leave at most a stray "*.tmp.*" file, never a
 * partial file under the final name, and never touches an existing target.
 */
#include "core/core_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

tome_status tome_read_file(const char *path, uint64_t max_bytes, tome_buf *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return tome_set_errno(tome_status_from_errno(errno), errno, "%s: cannot open", path);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return tome_set_errno(TOME_ERR_IO, e, "%s: cannot stat", path);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return tome_set_error(TOME_ERR_INVALID_ARG, "%s: not a regular file", path);
    }
    if (max_bytes && (uint64_t)st.st_size > max_bytes) {
        close(fd);
        return tome_set_error(TOME_ERR_LIMIT, "%s: %lld bytes is over the limit of %llu bytes", path,
                              (long long)st.st_size, (unsigned long long)max_bytes);
    }
    out->len = 0;
    tome_status s = tome_buf_reserve(out, (size_t)st.st_size);
    if (s != TOME_OK) { close(fd); return s; }
    for (;;) {
        if (out->cap == out->len) {
            if (max_bytes && out->len >= max_bytes) {
                close(fd);
                return tome_set_error(TOME_ERR_LIMIT, "%s: grew past the limit of %llu bytes while read",
                                      path, (unsigned long long)max_bytes);
            }
            s = tome_buf_reserve(out, 65536);
            if (s != TOME_OK) { close(fd); return s; }
        }
        ssize_t r = read(fd, out->data + out->len, out->cap - out->len);
        if (r < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            close(fd);
            return tome_set_errno(TOME_ERR_IO, e, "%s: read failed at byte %zu", path, out->len);
        }
        if (r == 0) break;
        out->len += (size_t)r;
    }
    out->data[out->len] = '\0';
    close(fd);
    return TOME_OK;
}

tome_status tome_mmap_open(const char *path, tome_mmap *out)
{
    out->data = NULL;
    out->len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return tome_set_errno(tome_status_from_errno(errno), errno, "%s: cannot open", path);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return tome_set_errno(TOME_ERR_IO, e, "%s: cannot stat", path);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return tome_set_error(TOME_ERR_INVALID_ARG, "%s: not a regular file", path);
    }
    if (st.st_size == 0) { close(fd); return TOME_OK; }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED) return tome_set_errno(TOME_ERR_IO, e, "%s: cannot map", path);
    out->data = p;
    out->len = (size_t)st.st_size;
    return TOME_OK;
}

void tome_mmap_close(tome_mmap *m)
{
    if (!m || !m->data) return;
    munmap((void *)m->data, m->len);
    m->data = NULL;
    m->len = 0;
}

struct tome_atomic_file {
    FILE *fp;
    char *path;
    char *tmp;
    tome_status err; /* first write error, sticky */
    uint64_t unsynced; /* bytes written since write-back was last started */
};

/* Write-back of a large output starts while it is still being written (Linux
 * sync_file_range, which does not wait), so the fsync of the commit waits for
 * the last MB instead of the whole file (a 12 MB pack: every 8 MB -> every
 * 1 MB, perf stat means 3-6 ms less in 3 rounds; the fsync's floor, ~11 ms
 * on this VM, is the inode and the disk's flush). */
#define WRITEBACK_EVERY (1u << 20)

static atomic_uint g_tmp_counter;

tome_status tome_atomic_open(const char *path, tome_atomic_file **out)
{
    *out = NULL;
    tome_atomic_file *f = calloc(1, sizeof *f);
    if (!f) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    size_t n = strlen(path) + 64;
    f->path = strdup(path);
    f->tmp = malloc(n);
    if (!f->path || !f->tmp) {
        tome_atomic_abort(f);
        return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    }
    snprintf(f->tmp, n, "%s.tmp.%ld.%u", path, (long)getpid(), atomic_fetch_add(&g_tmp_counter, 1));
    int fd = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        free(f->tmp);
        f->tmp = NULL;
        tome_atomic_abort(f);
        return tome_set_errno(tome_status_from_errno(e), e, "%s: cannot create output file", path);
    }
    f->fp = fdopen(fd, "wb");
    if (!f->fp) {
        close(fd);
        tome_atomic_abort(f);
        return tome_set_error(TOME_ERR_NOMEM, "%s: fdopen failed", path);
    }
    *out = f;
    return TOME_OK;
}

tome_status tome_atomic_write(tome_atomic_file *f, const void *data, size_t n)
{
    if (f->err != TOME_OK)
        return tome_set_error(f->err, "%s: an earlier write failed", f->path);
    if (n && fwrite(data, 1, n, f->fp) != n) {
        int e = errno;
        f->err = tome_status_from_errno(e);
        return tome_set_errno(f->err, e, "%s: write failed", f->path);
    }
#ifdef SYNC_FILE_RANGE_WRITE
    f->unsynced += n;
    if (f->unsynced >= WRITEBACK_EVERY) {
        f->unsynced = 0;
        if (fflush(f->fp) != 0) {
            int e = errno;
            f->err = tome_status_from_errno(e);
            return tome_set_errno(f->err, e, "%s: write failed", f->path);
        }
        (void)sync_file_range(fileno(f->fp), 0, 0, SYNC_FILE_RANGE_WRITE); /* a hint: errors show at fsync */
    }
#endif
    return TOME_OK;
}

FILE *tome_atomic_stream(tome_atomic_file *f) { return f->fp; }

tome_status tome_atomic_commit(tome_atomic_file *f)
{
    tome_status s = f->err;
    int e = 0;
    if (s != TOME_OK) {
        tome_set_error(s, "%s: not written: an earlier write failed", f->path);
    } else if (fflush(f->fp) != 0 || ferror(f->fp)) {
        e = errno;
        s = tome_set_errno(tome_status_from_errno(e), e, "%s: write failed", f->path);
    } else if (fsync(fileno(f->fp)) != 0) {
        e = errno;
        s = tome_set_errno(tome_status_from_errno(e), e, "%s: fsync failed", f->path);
    }
    if (fclose(f->fp) != 0 && s == TOME_OK) {
        e = errno;
        s = tome_set_errno(tome_status_from_errno(e), e, "%s: close failed", f->path);
    }
    f->fp = NULL;
    if (s == TOME_OK && rename(f->tmp, f->path) != 0) {
        e = errno;
        s = tome_set_errno(tome_status_from_errno(e), e, "%s: cannot rename temp file into place", f->path);
    }
    if (s == TOME_OK) {
        /* Make the rename durable. */
        char *d = strdup(f->path);
        if (d) {
            int dfd = open(dirname(d), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (dfd >= 0) { fsync(dfd); close(dfd); }
            free(d);
        }
        free(f->tmp);
        f->tmp = NULL;
    }
    tome_atomic_abort(f);
    return s;
}

void tome_atomic_abort(tome_atomic_file *f)
{
    if (!f) return;
    if (f->fp) fclose(f->fp);
    if (f->tmp) unlink(f->tmp);
    free(f->tmp);
    free(f->path);
    free(f);
}

tome_out_state tome_output_probe(const char *path, char *head, size_t cap, size_t *got)
{
    struct stat sb;
    *got = 0;
    if (stat(path, &sb) != 0) return TOME_OUT_ABSENT; /* (or unreachable: the writer says why) */
    if (S_ISDIR(sb.st_mode)) return TOME_OUT_DIR;
    if (!S_ISREG(sb.st_mode)) return TOME_OUT_SPECIAL;
    if (sb.st_size == 0) return TOME_OUT_EMPTY;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, head, cap);
        if (n > 0) *got = (size_t)n;
        close(fd);
    }
    return TOME_OUT_FILE;
}
