/* pack_open.c — opening a disk source of `tome pack` for reading.
 *
 * Design: the walker reaches deep trees through directory fds, so a source
 * path can be longer than PATH_MAX; open(2) then fails with ENAMETOOLONG and
 * the path is opened one component at a time with openat(2), each step a
 * directory. The flags never block (a file replaced by a FIFO since the walk)
 * and never make a terminal the controlling one. The text of an errno for
 * the skip reason of a source that cannot be read. Split out of
 * pack_build.c, which reads the sources, to keep that file to its size.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "ingest/ingest_impl.h"

/* (see ingest_impl.h) Opens a disk source read-only. A path past PATH_MAX (a deep tree, which the
 * walker reached through directory fds) is opened one component at a time
 * with openat. O_NONBLOCK|O_NOCTTY: a file replaced by a FIFO or a terminal
 * since the walk must not block the open (it is then refused by type).
 * Returns the fd, or -1 with errno set. */
int tome_pack_open_source(const char *path)
{
    const int flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
    int fd = open(path, flags);
    if (fd >= 0 || errno != ENAMETOOLONG) return fd;
    int dfd = open(path[0] == '/' ? "/" : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    const char *p = path;
    while (dfd >= 0) {
        while (*p == '/') p++;
        const char *slash = strchr(p, '/');
        char name[NAME_MAX + 1];
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n > NAME_MAX || n == 0) {
            close(dfd);
            errno = n ? ENAMETOOLONG : EISDIR;
            return -1;
        }
        memcpy(name, p, n);
        name[n] = '\0';
        int nfd = openat(dfd, name, slash ? O_RDONLY | O_DIRECTORY | O_CLOEXEC : flags);
        int e = errno;
        close(dfd);
        errno = e;
        if (!slash) return nfd;
        dfd = nfd;
        p = slash + 1;
    }
    return -1;
}

const char *tome_pack_errno_text(int err, char *buf, size_t n)
{
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
    return strerror_r(err, buf, n);
#else
    return strerror_r(err, buf, n) == 0 ? buf : "unknown error";
#endif
}
