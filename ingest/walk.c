/*
 * ingest/walk.c — tome_walk: a directory tree → sorted relative paths, with
 * git's ignore rules.
 *
 * Traversal. Depth-first; every directory is opened with
 * openat(parent_fd, name, O_DIRECTORY|O_NOFOLLOW) and its entries are
 * fstatat()'d relative to that fd, so no path is re-resolved per file and a
 * directory swapped for a symlink mid-walk is not followed. The entries of
 * one directory are read whole, then sorted the way git sorts paths (bytes,
 * with a directory compared as "name/"), so the output order equals
 * `git ls-files` order and is independent of readdir order. Each entry is
 * stat'ed just before it is handled (a file deleted meanwhile is reported
 * "vanished").
 *
 * Ignore rules (gitignore.c has the pattern syntax). For a path the first
 * group that has a matching pattern decides, in this order:
 *   1. default ignores (unless no_default_ignores): directories .git, .hg,
 *      .svn, .bzr, node_modules, bower_components, __pycache__, .venv, .tox,
 *      .mypy_cache, .pytest_cache, .ruff_cache, .gradle, .next, .nuxt and
 *      the files .DS_Store, Thumbs.db; always excluded.
 *   2. --exclude globs (relative to root; "!glob" forces a path back in);
 *   3. per-directory .gitignore + .tomeignore (.tomeignore lines come after
 *      the .gitignore lines of the same directory, so they win), deepest
 *      directory first, last matching line wins within one directory;
 *   4. .git/info/exclude of the enclosing repository.
 * When root lies inside a git work tree (a ".git" found in root or an
 * ancestor), the .gitignore files of the ancestors down to root apply too,
 * with their own bases, exactly as git would apply them in that repository.
 * .gitignore files are applied whether or not the tree is a git checkout
 * (like yek/repomix). The user's global core.excludesFile is not read: the
 * result must not depend on who runs tome. An excluded directory is never
 * entered, so nothing under it can be re-included (git's rule).
 * --include globs: when given, a file is reported only when the last
 * matching include pattern for the file itself, or else for its nearest
 * ancestor directory that has one, is not negated ("src/" includes all of
 * src). Ignore files are read with O_NOFOLLOW|O_NONBLOCK and must be
 * regular files (git ≥ 2.32 does not follow symlinked .gitignore either).
 *
 * Special files. Never followed out of root, never opened:
 *   - symlink to a regular file inside root: reported as a file; fs_path is
 *     the resolved target (the pack dedups the content by hash);
 *   - symlink to a directory inside root: listed, "symlink to directory"
 *     (not followed: no duplicates, no loops);
 *   - symlink leaving root: "symlink outside tree"; dangling: "broken
 *     symlink"; a cycle of links: "symlink loop";
 *   - FIFOs, sockets, devices: "fifo", "socket", "device";
 *   - a directory reached twice through bind mounts: "directory loop";
 *   - an unopenable directory: "unreadable directory: <errno text>", one
 *     entry with the directory's path; an unreadable file: "unreadable:
 *     <errno text>"; a file over max_file_bytes: "too large: N bytes (cap M)".
 *
 * Memory: the current path lives in one buffer "<top>/<prefix><rel>" that
 * grows and shrinks with the recursion; one sorted name array per open
 * directory level; one ignore list per directory level that has patterns.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ingest/gitignore_impl.h"
#include "ingest/ingest_impl.h"

typedef struct dir_id {
    dev_t dev;
    ino_t ino;
} dir_id;

typedef struct walker {
    const tome_walk_opts *o;
    tome_walk_cb cb;
    void *ud;

    char *root_real;      /* realpath(root)                                   */
    size_t root_len;
    tome_buf full;        /* "<top>/<mpath>": the current path                */
    size_t top_len;       /* bytes of "<top>/" at the start of full           */
    size_t prefix_len;    /* bytes of "<prefix>" (root relative to top, "a/b/") */

    tome_ignore_list cmdl_exclude;
    tome_ignore_list cmdl_include;
    int have_include;
    tome_ignore_list info_exclude;
    int have_info_exclude;

    tome_ignore_list **stack; /* per-directory lists, outermost first */
    size_t n_stack, cap_stack;

    dir_id *dirs;         /* directories on the current recursion path */
    size_t n_dirs, cap_dirs;

    char reason[256];
} walker;

static const char *const g_default_dirs[] = {
    ".git", ".hg", ".svn", ".bzr", "node_modules", "bower_components", "__pycache__",
    ".venv", ".tox", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".gradle", ".next", ".nuxt",
};
static const char *const g_default_files[] = {".DS_Store", "Thumbs.db"};

static int default_ignored(const char *name, int is_dir)
{
    if (is_dir) {
        for (size_t i = 0; i < TOME_ARRAY_LEN(g_default_dirs); i++)
            if (strcmp(name, g_default_dirs[i]) == 0) return 1;
    } else {
        for (size_t i = 0; i < TOME_ARRAY_LEN(g_default_files); i++)
            if (strcmp(name, g_default_files[i]) == 0) return 1;
    }
    return 0;
}

static const char *mpath(const walker *w) { return w->full.data + w->top_len; }
static size_t mpath_len(const walker *w) { return w->full.len - w->top_len; }

static int is_ignored(const walker *w, const char *name, int is_dir)
{
    if (!w->o->no_default_ignores && default_ignored(name, is_dir)) return 1;
    const char *p = mpath(w);
    size_t n = mpath_len(w);
    int r = tome_ignore_list_match(&w->cmdl_exclude, p, n, name, is_dir);
    if (r) return r == TOME_IGN_EXCLUDED;
    for (size_t i = w->n_stack; i-- > 0;) {
        r = tome_ignore_list_match(w->stack[i], p, n, name, is_dir);
        if (r) return r == TOME_IGN_EXCLUDED;
    }
    if (w->have_info_exclude) {
        r = tome_ignore_list_match(&w->info_exclude, p, n, name, is_dir);
        if (r) return r == TOME_IGN_EXCLUDED;
    }
    return 0;
}

/* ------------------------------------------------------------ ignore files */

/* Reads a small regular file relative to dirfd without following symlinks
 * or blocking on FIFOs. Returns 0 and fills *out, or -1 (absent/unusable). */
static int read_small_file_at(int dirfd, const char *name, tome_buf *out)
{
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (64 << 20)) {
        close(fd);
        return -1;
    }
    out->len = 0;
    for (;;) {
        if (tome_buf_reserve(out, 65536) != TOME_OK) {
            close(fd);
            return -1;
        }
        ssize_t r = read(fd, out->data + out->len, 65536);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            close(fd);
            return -1;
        }
        if (r == 0) break;
        out->len += (size_t)r;
    }
    out->data[out->len] = '\0';
    close(fd);
    return 0;
}

/* Loads .gitignore / .tomeignore of the directory open as dirfd, whose path
 * relative to top is base (ending in '/', or ""). present: bit 0 / bit 1 when
 * the listing showed the file (saves two failing opens per directory).
 * *out is NULL when the directory has no patterns. */
static tome_status load_dir_lists(const walker *w, int dirfd, const char *base, size_t base_len,
                                  unsigned present, tome_ignore_list **out)
{
    *out = NULL;
    tome_buf text = {0};
    tome_ignore_list *l = NULL;
    tome_status st = TOME_OK;
    const char *names[2] = {w->o->no_gitignore ? NULL : ".gitignore",
                            w->o->no_tomeignore ? NULL : ".tomeignore"};
    for (int i = 0; i < 2; i++) {
        if (!names[i] || !(present & (1u << i)) || read_small_file_at(dirfd, names[i], &text) != 0)
            continue;
        if (!l) {
            l = calloc(1, sizeof *l);
            if (!l) {
                st = tome_set_error(TOME_ERR_NOMEM, "walk: out of memory");
                goto done;
            }
            st = tome_ignore_list_init(l, base, base_len);
            if (st != TOME_OK) goto done;
        }
        st = tome_ignore_list_parse(l, text.data, text.len);
        if (st != TOME_OK) goto done;
    }
done:
    tome_buf_free(&text);
    if (st != TOME_OK || (l && l->n == 0)) {
        tome_ignore_list_free(l);
        free(l);
        l = NULL;
    }
    *out = l;
    return st;
}

static tome_status push_list(walker *w, tome_ignore_list *l)
{
    if (w->n_stack == w->cap_stack) {
        size_t nc = w->cap_stack ? 2 * w->cap_stack : 16;
        tome_ignore_list **ns = realloc(w->stack, nc * sizeof *ns);
        if (!ns) {
            tome_ignore_list_free(l);
            free(l);
            return tome_set_error(TOME_ERR_NOMEM, "walk: out of memory");
        }
        w->stack = ns;
        w->cap_stack = nc;
    }
    w->stack[w->n_stack++] = l;
    return TOME_OK;
}

static void pop_lists(walker *w, size_t to)
{
    while (w->n_stack > to) {
        tome_ignore_list *l = w->stack[--w->n_stack];
        tome_ignore_list_free(l);
        free(l);
    }
}

/* ------------------------------------------------------------ reporting */

static tome_status report(walker *w, const char *fs_path, uint64_t size, int64_t mtime,
                          const char *reason)
{
    tome_walk_entry e;
    e.rel_path = mpath(w) + w->prefix_len;
    e.fs_path = fs_path;
    e.size = size;
    e.mtime = mtime;
    e.skip_reason = reason;
    return w->cb(w->ud, &e);
}

static const char *errno_reason(walker *w, const char *what, int err)
{
    snprintf(w->reason, sizeof w->reason, "%s: %s", what, strerror(err));
    return w->reason;
}

/* Include filter: TOME_IGN_* for this path alone. */
static int include_state(const walker *w, const char *name, int is_dir)
{
    return tome_ignore_list_match(&w->cmdl_include, mpath(w), mpath_len(w), name, is_dir);
}

static int file_included(const walker *w, const char *name, int parent_state)
{
    if (!w->have_include) return 1;
    int r = include_state(w, name, 0);
    if (r == TOME_IGN_NONE) r = parent_state;
    return r == TOME_IGN_EXCLUDED; /* "excluded" from the include list = matched */
}

static tome_status handle_regular(walker *w, int dirfd, const char *name, const struct stat *st,
                                  const char *fs_path)
{
    uint64_t size = (uint64_t)st->st_size;
    int64_t mtime = (int64_t)st->st_mtime;
    if (w->o->max_file_bytes && size > w->o->max_file_bytes) {
        snprintf(w->reason, sizeof w->reason, "too large: %llu bytes (cap %llu)",
                 (unsigned long long)size, (unsigned long long)w->o->max_file_bytes);
        return report(w, fs_path, size, mtime, w->reason);
    }
    /* Permission bits that may deny us: ask the kernel (root passes). */
    if ((st->st_mode & 0444) != 0444 &&
        faccessat(dirfd, name, R_OK, AT_EACCESS) != 0)
        return report(w, fs_path, size, mtime, errno_reason(w, "unreadable", errno));
    return report(w, fs_path, size, mtime, NULL);
}

static tome_status handle_symlink(walker *w, const struct stat *lst)
{
    char *target = realpath(w->full.data, NULL);
    if (!target) {
        int err = errno;
        const char *why = err == ELOOP ? "symlink loop"
                          : err == ENOENT || err == ENOTDIR ? "broken symlink"
                                                            : errno_reason(w, "unreadable symlink", err);
        return report(w, w->full.data, 0, (int64_t)lst->st_mtime, why);
    }
    tome_status s;
    int inside = strncmp(target, w->root_real, w->root_len) == 0 &&
                 (target[w->root_len] == '/' || target[w->root_len] == '\0' ||
                  (w->root_len == 1 && w->root_real[0] == '/'));
    struct stat st;
    if (!inside) {
        s = report(w, w->full.data, 0, (int64_t)lst->st_mtime, "symlink outside tree");
    } else if (stat(target, &st) != 0) {
        s = report(w, w->full.data, 0, (int64_t)lst->st_mtime, errno_reason(w, "unreadable", errno));
    } else if (S_ISDIR(st.st_mode)) {
        s = report(w, target, 0, (int64_t)st.st_mtime, "symlink to directory");
    } else if (S_ISREG(st.st_mode)) {
        s = handle_regular(w, AT_FDCWD, target, &st, target);
    } else {
        s = report(w, target, 0, (int64_t)st.st_mtime,
                   S_ISFIFO(st.st_mode) ? "fifo" : S_ISSOCK(st.st_mode) ? "socket" : "device");
    }
    free(target);
    return s;
}

/* ------------------------------------------------------------ directories */

typedef struct dent {
    size_t name_off; /* into the names buffer */
    size_t name_len;
    unsigned char is_dir; /* by d_type; DT_UNKNOWN resolved with fstatat */
} dent;

/* git's order: bytes, a directory compared as if its name ended in '/'. */
static int dent_cmp_with(const char *names, const dent *a, const dent *b)
{
    size_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
    int c = memcmp(names + a->name_off, names + b->name_off, n);
    if (c) return c;
    unsigned ca = a->name_len > n ? (unsigned char)names[a->name_off + n] : (a->is_dir ? '/' : 0);
    unsigned cb = b->name_len > n ? (unsigned char)names[b->name_off + n] : (b->is_dir ? '/' : 0);
    return (int)ca - (int)cb;
}

/* qsort has no context argument in C11; a merge sort with one keeps this
 * reentrant and thread-safe. */
static void dent_sort(dent *v, dent *tmp, size_t n, const char *names)
{
    if (n < 2) return;
    if (n <= 16) {
        for (size_t i = 1; i < n; i++) {
            dent x = v[i];
            size_t j = i;
            while (j > 0 && dent_cmp_with(names, &v[j - 1], &x) > 0) {
                v[j] = v[j - 1];
                j--;
            }
            v[j] = x;
        }
        return;
    }
    size_t h = n / 2;
    dent_sort(v, tmp, h, names);
    dent_sort(v + h, tmp, n - h, names);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) tmp[k++] = dent_cmp_with(names, &v[j], &v[i]) < 0 ? v[j++] : v[i++];
    while (i < h) tmp[k++] = v[i++];
    while (j < n) tmp[k++] = v[j++];
    memcpy(v, tmp, n * sizeof *v);
}

static tome_status walk_dir(walker *w, int fd, int parent_include);

/* w->full always ends in '/' while a directory is being listed. */
static tome_status path_push(walker *w, const char *name, size_t n)
{
    return tome_buf_append(&w->full, name, n);
}

static tome_status handle_entry(walker *w, int dfd, const char *name, size_t name_len,
                                int dtype_dir, int parent_include)
{
    size_t saved = w->full.len;
    TOME_FORWARD(path_push(w, name, name_len));
    tome_status s = TOME_OK;
    struct stat st;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        int err = errno;
        if (!is_ignored(w, name, dtype_dir) &&
            (dtype_dir || file_included(w, name, parent_include)))
            s = report(w, w->full.data, 0, 0,
                       err == ENOENT ? "vanished" : errno_reason(w, "unreadable", err));
        goto out;
    }
    int is_dir = S_ISDIR(st.st_mode);
    if (is_ignored(w, name, is_dir)) goto out;
    if (is_dir) {
        int inc = parent_include;
        if (w->have_include) {
            int r = include_state(w, name, 1);
            if (r != TOME_IGN_NONE) inc = r;
        }
        for (size_t i = 0; i < w->n_dirs; i++) {
            if (w->dirs[i].dev == st.st_dev && w->dirs[i].ino == st.st_ino) {
                s = report(w, w->full.data, 0, (int64_t)st.st_mtime, "directory loop");
                goto out;
            }
        }
        int cfd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (cfd < 0) {
            s = report(w, w->full.data, 0, (int64_t)st.st_mtime,
                       errno_reason(w, "unreadable directory", errno));
            goto out;
        }
        if (w->n_dirs == w->cap_dirs) {
            size_t nc = w->cap_dirs ? 2 * w->cap_dirs : 32;
            dir_id *nd = realloc(w->dirs, nc * sizeof *nd);
            if (!nd) {
                close(cfd);
                s = tome_set_error(TOME_ERR_NOMEM, "walk: out of memory");
                goto out;
            }
            w->dirs = nd;
            w->cap_dirs = nc;
        }
        w->dirs[w->n_dirs].dev = st.st_dev;
        w->dirs[w->n_dirs].ino = st.st_ino;
        w->n_dirs++;
        TOME_FORWARD(tome_buf_putc(&w->full, '/'));
        s = walk_dir(w, cfd, inc); /* closes cfd */
        w->n_dirs--;
        goto out;
    }
    if (!file_included(w, name, parent_include)) goto out;
    if (S_ISREG(st.st_mode)) {
        s = handle_regular(w, dfd, name, &st, w->full.data);
    } else if (S_ISLNK(st.st_mode)) {
        s = handle_symlink(w, &st);
    } else {
        s = report(w, w->full.data, 0, (int64_t)st.st_mtime,
                   S_ISFIFO(st.st_mode) ? "fifo" : S_ISSOCK(st.st_mode) ? "socket" : "device");
    }
out:
    w->full.len = saved;
    w->full.data[saved] = '\0';
    return s;
}

/* Walks the directory open as fd (takes ownership); w->full holds its path
 * ending in '/' (or the bare top for the root). */
static tome_status walk_dir(walker *w, int fd, int parent_include)
{
    DIR *d = fdopendir(fd);
    if (!d) {
        int err = errno;
        close(fd);
        return report(w, w->full.data, 0, 0, errno_reason(w, "unreadable directory", err));
    }
    tome_buf names = {0};
    dent *v = NULL, *tmp = NULL;
    size_t n = 0, cap = 0;
    tome_status s = TOME_OK;
    size_t stack_mark = w->n_stack;
    unsigned present = 0;
    int dfd = dirfd(d);

    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de) {
            if (errno) {
                s = report(w, w->full.data, 0, 0, errno_reason(w, "unreadable directory", errno));
                goto done;
            }
            break;
        }
        const char *nm = de->d_name;
        if (nm[0] == '.' && (nm[1] == '\0' || (nm[1] == '.' && nm[2] == '\0'))) continue;
        if (nm[0] == '.' && strcmp(nm, ".gitignore") == 0) present |= 1u;
        if (nm[0] == '.' && strcmp(nm, ".tomeignore") == 0) present |= 2u;
        if (n == cap) {
            size_t nc = cap ? 2 * cap : 64;
            dent *nv = realloc(v, nc * sizeof *nv);
            if (!nv) {
                s = tome_set_error(TOME_ERR_NOMEM, "walk: out of memory");
                goto done;
            }
            v = nv;
            cap = nc;
        }
        size_t len = strlen(nm);
        int is_dir;
        if (de->d_type == DT_UNKNOWN) {
            struct stat st;
            is_dir = fstatat(dfd, nm, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
        } else {
            is_dir = de->d_type == DT_DIR;
        }
        v[n].name_off = names.len;
        v[n].name_len = len;
        v[n].is_dir = (unsigned char)is_dir;
        s = tome_buf_append(&names, nm, len + 1);
        if (s != TOME_OK) goto done;
        n++;
    }
    if (n > 1) {
        tmp = malloc(n * sizeof *tmp);
        if (!tmp) {
            s = tome_set_error(TOME_ERR_NOMEM, "walk: out of memory");
            goto done;
        }
        dent_sort(v, tmp, n, names.data);
    }

    /* this directory's ignore files apply to its entries */
    {
        tome_ignore_list *l = NULL;
        s = load_dir_lists(w, dfd, mpath(w), mpath_len(w), present, &l);
        if (s != TOME_OK) goto done;
        if (l) {
            s = push_list(w, l);
            if (s != TOME_OK) goto done;
        }
    }
    for (size_t i = 0; i < n && s == TOME_OK; i++)
        s = handle_entry(w, dfd, names.data + v[i].name_off, v[i].name_len, v[i].is_dir,
                         parent_include);
done:
    pop_lists(w, stack_mark);
    free(tmp);
    free(v);
    tome_buf_free(&names);
    closedir(d);
    return s;
}

/* ------------------------------------------------------------ set-up */

static tome_status add_globs(tome_ignore_list *l, const char *const *globs, int *have)
{
    *have = 0;
    if (!globs) return TOME_OK;
    for (size_t i = 0; globs[i]; i++) {
        TOME_FORWARD(tome_ignore_list_add(l, globs[i], strlen(globs[i])));
        *have = 1;
    }
    return TOME_OK;
}

/* Finds the enclosing work tree: the deepest ancestor of root_real (root
 * included) that holds a ".git" entry. Returns its length in root_real, or
 * (size_t)-1 when there is none. */
static size_t find_top(const char *root_real)
{
    size_t n = strlen(root_real);
    char *p = malloc(n + 6);
    if (!p) return (size_t)-1;
    memcpy(p, root_real, n + 1);
    size_t len = n;
    for (;;) {
        struct stat st;
        memcpy(p + len, "/.git", 6);
        if (lstat(p, &st) == 0 && (S_ISDIR(st.st_mode) || S_ISREG(st.st_mode))) {
            free(p);
            return len;
        }
        if (len == 0) break;
        while (len > 0 && p[len - 1] != '/') len--;
        if (len > 0) len--; /* drop the '/' */
    }
    free(p);
    return (size_t)-1;
}

/* Path of the git directory's info/exclude for the work tree at top. */
static tome_status load_info_exclude(walker *w, const char *top, size_t top_len)
{
    tome_buf path = {0}, text = {0};
    tome_status s = tome_buf_appendf(&path, "%.*s/.git", (int)top_len, top);
    if (s != TOME_OK) goto out;
    struct stat st;
    if (lstat(path.data, &st) != 0) goto out;
    if (S_ISREG(st.st_mode)) {
        /* "gitdir: <path>" (worktrees, submodules); commondir holds info/ */
        if (read_small_file_at(AT_FDCWD, path.data, &text) != 0) goto out;
        if (text.len < 8 || memcmp(text.data, "gitdir: ", 8) != 0) goto out;
        size_t e = text.len;
        while (e > 8 && (text.data[e - 1] == '\n' || text.data[e - 1] == '\r')) e--;
        tome_buf gd = {0};
        if (text.data[8] == '/')
            s = tome_buf_appendf(&gd, "%.*s", (int)(e - 8), text.data + 8);
        else
            s = tome_buf_appendf(&gd, "%.*s/%.*s", (int)top_len, top, (int)(e - 8), text.data + 8);
        if (s != TOME_OK) goto out;
        tome_buf_free(&path);
        path = gd;
        tome_buf cd = {0};
        s = tome_buf_appendf(&cd, "%s/commondir", path.data);
        if (s != TOME_OK) goto out;
        if (read_small_file_at(AT_FDCWD, cd.data, &text) == 0) {
            e = text.len;
            while (e > 0 && (text.data[e - 1] == '\n' || text.data[e - 1] == '\r')) e--;
            cd.len = 0;
            if (e && text.data[0] == '/')
                s = tome_buf_appendf(&cd, "%.*s", (int)e, text.data);
            else
                s = tome_buf_appendf(&cd, "%s/%.*s", path.data, (int)e, text.data);
            if (s == TOME_OK) {
                tome_buf_free(&path);
                path = cd;
                cd = (tome_buf){0};
            }
        }
        tome_buf_free(&cd);
        if (s != TOME_OK) goto out;
    }
    s = tome_buf_append(&path, "/info/exclude", 13);
    if (s != TOME_OK) goto out;
    if (read_small_file_at(AT_FDCWD, path.data, &text) != 0) goto out;
    s = tome_ignore_list_init(&w->info_exclude, "", 0);
    if (s != TOME_OK) goto out;
    w->have_info_exclude = 1;
    s = tome_ignore_list_parse(&w->info_exclude, text.data, text.len);
out:
    tome_buf_free(&path);
    tome_buf_free(&text);
    return s;
}

/* Pushes the ignore lists of the directories from top down to root's parent. */
static tome_status load_ancestor_lists(walker *w)
{
    const char *pre = mpath(w);
    size_t plen = w->prefix_len;
    size_t i = 0;
    for (;;) {
        /* directory top/pre[0..i) */
        tome_buf dir = {0};
        tome_status s = tome_buf_appendf(&dir, "%.*s%.*s", (int)w->top_len, w->full.data, (int)i, pre);
        if (s != TOME_OK) return s;
        int fd = open(dir.data, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        tome_buf_free(&dir);
        if (fd >= 0) {
            tome_ignore_list *l = NULL;
            s = load_dir_lists(w, fd, pre, i, 3u, &l);
            close(fd);
            if (s != TOME_OK) return s;
            if (l) TOME_FORWARD(push_list(w, l));
        }
        /* next component */
        if (i >= plen) break;
        const char *sl = memchr(pre + i, '/', plen - i);
        if (!sl) break;
        i = (size_t)(sl - pre) + 1;
        if (i >= plen) break;
    }
    return TOME_OK;
}

tome_status tome_walk(const char *root, const tome_walk_opts *opts, tome_walk_cb cb, void *ud)
{
    TOME_RETURN_IF(!root || !cb, TOME_ERR_INVALID_ARG, "walk: no root or callback");
    static const tome_walk_opts defaults = {0};
    walker w;
    memset(&w, 0, sizeof w);
    w.o = opts ? opts : &defaults;
    w.cb = cb;
    w.ud = ud;
    tome_status s = TOME_OK;

    w.root_real = realpath(root, NULL);
    if (!w.root_real) return tome_set_errno(tome_status_from_errno(errno), errno, "%s", root);
    w.root_len = strlen(w.root_real);
    int fd = open(w.root_real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        s = tome_set_errno(errno == ENOTDIR ? TOME_ERR_INVALID_ARG : tome_status_from_errno(errno),
                           errno, "%s", root);
        free(w.root_real);
        return s;
    }

    /* full = "<top>/<prefix>" where prefix is root relative to the work tree */
    size_t top = w.o->no_gitignore ? (size_t)-1 : find_top(w.root_real);
    int in_repo = top != (size_t)-1;
    if (!in_repo) top = w.root_len;
    const char *top_str = w.root_real;
    size_t top_str_len = top;
    if (top_str_len == 1 && top_str[0] == '/') top_str_len = 0; /* the filesystem root */
    s = tome_buf_append(&w.full, top_str, top_str_len);
    if (s == TOME_OK) s = tome_buf_putc(&w.full, '/');
    w.top_len = w.full.len;
    if (s == TOME_OK && top < w.root_len) {
        s = tome_buf_append(&w.full, w.root_real + top + 1, w.root_len - top - 1);
        if (s == TOME_OK) s = tome_buf_putc(&w.full, '/');
    }
    w.prefix_len = w.full.len - w.top_len;
    if (s != TOME_OK) goto fail;

    s = tome_ignore_list_init(&w.cmdl_exclude, mpath(&w), w.prefix_len);
    if (s == TOME_OK) s = tome_ignore_list_init(&w.cmdl_include, mpath(&w), w.prefix_len);
    if (s != TOME_OK) goto fail;
    int dummy;
    s = add_globs(&w.cmdl_exclude, w.o->exclude, &dummy);
    if (s == TOME_OK) s = add_globs(&w.cmdl_include, w.o->include, &w.have_include);
    if (s != TOME_OK) goto fail;
    if (!w.o->no_gitignore && top < w.root_len) s = load_ancestor_lists(&w);
    if (s == TOME_OK && in_repo)
        s = load_info_exclude(&w, w.full.data, w.top_len ? w.top_len - 1 : 0);
    if (s != TOME_OK) goto fail;

    {
        struct stat st;
        if (fstat(fd, &st) == 0) {
            w.dirs = malloc(32 * sizeof *w.dirs);
            if (!w.dirs) {
                s = tome_set_error(TOME_ERR_NOMEM, "walk: out of memory");
                goto fail;
            }
            w.cap_dirs = 32;
            w.dirs[0].dev = st.st_dev;
            w.dirs[0].ino = st.st_ino;
            w.n_dirs = 1;
        }
    }
    s = walk_dir(&w, fd, TOME_IGN_NONE);
    fd = -1;
fail:
    if (fd >= 0) close(fd);
    pop_lists(&w, 0);
    free(w.stack);
    free(w.dirs);
    tome_ignore_list_free(&w.cmdl_exclude);
    tome_ignore_list_free(&w.cmdl_include);
    tome_ignore_list_free(&w.info_exclude);
    tome_buf_free(&w.full);
    free(w.root_real);
    return s;
}
