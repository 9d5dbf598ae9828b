/*
 * ingest/archive.c — archive members from memory, through libarchive.
 *
 * Design. An archive is always read from a memory buffer (the walker maps the
 * file; a nested archive is a member already read into memory), so nothing is
 * ever extracted to disk and no member path is ever used to open a file: a
 * member's name only becomes a display path "outer.zip!/dir/f.c". Each
 * regular member is decompressed into one growable buffer that stops at the
 * per-entry cap, whatever the header claims, and is handed to the callback;
 * the buffer is reused for the next member. A member that is itself an
 * archive (by content, tome_archive_sniff) is read recursively up to
 * lim->max_depth, its members named "outer.zip!/inner.tar.gz!/f.c".
 *
 * Formats: tar (all variants), zip, 7z, cpio, ar, iso9660, cab, rar, rar5,
 * xar, lha, under the in-process filters gzip, bzip2, xz/lzma/lzip, zstd,
 * lz4 and compress. libarchive's "mtree" format is never enabled (it reads
 * files named in the archive from disk), nor "empty". The "raw" format is
 * enabled so that a single compressed file "notes.txt.gz" is read as the
 * one-member archive "notes.txt.gz!/notes.txt"; raw without a compression
 * filter is refused (it would make every file an archive).
 *
 * Bad input is reported, never fatal: a member with an absolute or "../" path,
 * a link, a device, encrypted data or over a cap gets a skip_reason and no
 * data; a corrupt or truncated archive reports the members read so far, then
 * one entry for the archive itself naming the entry and libarchive's error;
 * an archive without any entry (an empty tar, a .gz of zeros that reads as
 * one) is one entry for itself: "empty archive: no entries".
 * Bomb defences, all measured on decompressed bytes as they come out:
 *   - max_entry_bytes per member (the rest of that member is skipped);
 *   - max_total_bytes over everything read below one top-level archive,
 *     nested archives included (the archive stops there);
 *   - max_ratio: bytes out of one archive / its compressed size, and bytes
 *     out below the top-level archive / the top-level compressed size (the
 *     42.zip defence: every level may look harmless on its own), once more
 *     than TOME_ARCHIVE_RATIO_FLOOR bytes came out (reading stops there);
 *   - max_entries per archive, max_depth of nesting.
 * Member names: libarchive converts names it knows to be UTF-8 (zip's UTF-8
 * flag, pax headers, 7z) to the current locale and gives NULL when that
 * fails, which it always does for a non-ASCII name under the C locale every
 * program starts in. tome_archive_read therefore switches the calling thread
 * (uselocale, never the process) to LC_CTYPE C.UTF-8 while it reads, so such
 * names come out as their UTF-8 bytes; names of unknown charset (a zip
 * without the flag, old tar headers) come out as their raw bytes, escaped
 * where they are displayed.
 * The returned status is an error only for bad arguments, memory exhaustion,
 * or a callback that returned non-OK (that status is passed through).
 */
#include <archive.h>
#include <archive_entry.h>
#include <ctype.h>
#include <locale.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/doc_impl.h"
#include "ingest/ingest_impl.h"

/* Below this many bytes out, the ratio cap does not apply: a 300-byte zip of
 * 100 KB of source text is not a bomb. */
#define TOME_ARCHIVE_RATIO_FLOOR ((uint64_t)1 << 20)
#define TOME_ARCHIVE_CHUNK ((size_t)64 << 10)
#define TOME_ARCHIVE_MAX_FAILED_HEADERS 64

void tome_archive_limits_default(tome_archive_limits *lim)
{
    lim->max_depth = 4;
    lim->max_entry_bytes = (uint64_t)64 << 20;
    lim->max_total_bytes = (uint64_t)4 << 30;
    lim->max_ratio = 200.0;
    lim->max_entries = 1000000;
}

/* ------------------------------------------------------------ sniffing */
static int has_prefix(const uint8_t *d, size_t len, const void *magic, size_t n)
{
    return len >= n && memcmp(d, magic, n) == 0;
}

/* A tar header block: either "ustar" magic or a valid v7 header checksum. */
static int looks_like_tar(const uint8_t *d, size_t len)
{
    if (len < 512)
        return 0;
    if (memcmp(d + 257, "ustar", 5) == 0)
        return 1;
    /* v7: the checksum field (octal, 148..155) equals the byte sum of the
     * block with the field counted as spaces; the name must be non-empty. */
    if (d[0] == 0)
        return 0;
    unsigned long want = 0;
    int digits = 0;
    for (int i = 148; i < 156; i++) {
        if (d[i] >= '0' && d[i] <= '7') {
            want = want * 8 + (unsigned long)(d[i] - '0');
            digits++;
        } else if (d[i] != ' ' && d[i] != 0) {
            return 0;
        }
    }
    if (digits == 0)
        return 0;
    unsigned long sum = 0;
    for (int i = 0; i < 512; i++)
        sum += (i >= 148 && i < 156) ? ' ' : d[i];
    return sum == want;
}

/* The header of a legacy .lzma ("LZMA alone") stream, which has no magic:
 * the properties byte of the usual lc=3 lp=0 pb=2 (0x5D), a dictionary size
 * that is a power of two from 64 KiB to 1 GiB (what lzma/xz/7z write), then the
 * uncompressed size, unknown (all 0xFF) or below 2^40. */
static int looks_like_lzma_alone(const uint8_t *d, size_t len)
{
    if (len < 14 || d[0] != 0x5D)
        return 0;
    uint32_t dict = (uint32_t)d[1] | (uint32_t)d[2] << 8 | (uint32_t)d[3] << 16 | (uint32_t)d[4] << 24;
    if (dict < (1u << 16) || dict > (1u << 30) || (dict & (dict - 1)))
        return 0;
    int unknown = 1;
    for (int i = 5; i < 13; i++)
        unknown &= d[i] == 0xFF;
    return unknown || (d[10] == 0 && d[11] == 0 && d[12] == 0);
}

int tome_archive_sniff(const uint8_t *d, size_t len)
{
    if (!d || len < 4)
        return 0;
    if (has_prefix(d, len, "PK\x03\x04", 4) || has_prefix(d, len, "PK\x05\x06", 4) ||
        has_prefix(d, len, "PK\x07\x08", 4)) {
        /* DOCX/ODT/XLSX... are documents, not archives. */
        if (tome_zip_is_office(d, len))
            return 0;
        return 1;
    }
    if (has_prefix(d, len, "\x1f\x8b", 2) ||                      /* gzip     */
        has_prefix(d, len, "BZh", 3) ||                           /* bzip2    */
        has_prefix(d, len, "\xfd" "7zXZ\x00", 6) ||               /* xz       */
        has_prefix(d, len, "\x28\xb5\x2f\xfd", 4) ||              /* zstd     */
        has_prefix(d, len, "\x04\x22\x4d\x18", 4) ||              /* lz4      */
        has_prefix(d, len, "LZIP", 4) ||                          /* lzip     */
        has_prefix(d, len, "\x1f\x9d", 2) ||                      /* compress */
        has_prefix(d, len, "7z\xbc\xaf\x27\x1c", 6) ||            /* 7z       */
        has_prefix(d, len, "!<arch>\n", 8) ||                     /* ar       */
        has_prefix(d, len, "070707", 6) || has_prefix(d, len, "070701", 6) ||
        has_prefix(d, len, "070702", 6) ||                        /* cpio     */
        has_prefix(d, len, "Rar!\x1a\x07", 6) ||                  /* rar      */
        has_prefix(d, len, "MSCF\0\0\0\0", 8) ||                  /* cab      */
        has_prefix(d, len, "xar!", 4))                            /* xar      */
        return 1;
    if (looks_like_lzma_alone(d, len))
        return 1;
    if (looks_like_tar(d, len))
        return 1;
    if (len >= 32774 && memcmp(d + 32769, "CD001", 5) == 0)      /* iso9660  */
        return 1;
    return 0;
}

/* ------------------------------------------------------------ reading */
typedef struct arc_state {
    const tome_archive_limits *lim;
    tome_archive_cb cb;
    void *ud;
    size_t top_len;     /* compressed size of the top-level archive       */
    uint64_t total_out; /* bytes decompressed below the top-level archive */
    int total_hit;      /* a total cap was reached: everything stops      */
    char why[512];      /* ... and why, repeated on every enclosing level */
} arc_state;

static tome_status arc_read(arc_state *st, const char *display, const uint8_t *data, size_t len,
                            int depth);

static tome_status report(arc_state *st, const char *path, int64_t mtime, const char *reason,
                          const uint8_t *data, size_t len)
{
    tome_archive_entry e = {.path = path, .data = reason ? NULL : data,
                            .len = reason ? 0 : len, .mtime = mtime, .skip_reason = reason};
    return st->cb(st->ud, &e);
}

/* A hard link: "hardlink to ..." as its skip reason, link_to its target. */
static tome_status report_link(arc_state *st, const char *path, int64_t mtime, const char *target)
{
    char reason[600];
    snprintf(reason, sizeof reason, "hardlink to %.500s (its content is packed under that name)", target);
    tome_archive_entry e = {.path = path, .mtime = mtime, .skip_reason = reason, .link_to = target};
    return st->cb(st->ud, &e);
}

/* Empty members with more than one link, held back until the archive ends.
 * cpio (newc/crc, as GNU cpio writes it) stores the data of a group of
 * hard links once, with the *last* name; the earlier names come first,
 * empty, and libarchive reports the last one as a hard link to the first. That last entry's data is the
 * content of every name: the held-back name becomes a link to it. What is
 * still held back at the end is a truly empty file. */
typedef struct held {
    char **path;
    int64_t *mtime;
    size_t n, cap;
} held;

static int held_add(held *h, const char *path, int64_t mtime)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 8;
        char **p = realloc(h->path, cap * sizeof *p);
        if (!p) return -1;
        h->path = p;
        int64_t *m = realloc(h->mtime, cap * sizeof *m);
        if (!m) return -1;
        h->mtime = m;
        h->cap = cap;
    }
    if (!(h->path[h->n] = strdup(path))) return -1;
    h->mtime[h->n++] = mtime;
    return 0;
}

/* Reports the held-back name `name` (if held) as a link to `target`. */
static tome_status held_link(arc_state *st, held *h, const char *name, const char *target)
{
    for (size_t i = 0; i < h->n; i++) {
        if (strcmp(h->path[i], name) != 0) continue;
        tome_status rc = report_link(st, h->path[i], h->mtime[i], target);
        free(h->path[i]);
        h->path[i] = h->path[h->n - 1];
        h->mtime[i] = h->mtime[h->n - 1];
        h->n--;
        return rc;
    }
    return TOME_OK;
}

static tome_status held_flush(arc_state *st, held *h, tome_status rc)
{
    static const uint8_t none[1];
    for (size_t i = 0; i < h->n; i++) {
        if (rc == TOME_OK) rc = report(st, h->path[i], h->mtime[i], NULL, none, 0);
        free(h->path[i]);
    }
    free(h->path);
    free(h->mtime);
    *h = (held){0};
    return rc;
}

/* Why a member name is unsafe, or NULL. Both '/' and '\\' count as separators
 * (zips made on Windows use either). */
static const char *unsafe_name(const char *p)
{
    if (p[0] == '/' || p[0] == '\\')
        return "absolute path";
    if (isalpha((unsigned char)p[0]) && p[1] == ':')
        return "absolute path (drive letter)";
    const char *c = p;
    while (*c) {
        size_t n = strcspn(c, "/\\");
        if (n == 2 && c[0] == '.' && c[1] == '.')
            return "path traversal (..)";
        c += n;
        if (*c)
            c++;
    }
    return NULL;
}

/* Appends p to out without "./" and empty components or a trailing '/'. */
static tome_status append_clean_name(tome_buf *out, const char *p)
{
    int first = 1;
    while (*p) {
        size_t n = strcspn(p, "/");
        if (!(n == 0 || (n == 1 && p[0] == '.'))) {
            if (!first)
                TOME_FORWARD(tome_buf_putc(out, '/'));
            TOME_FORWARD(tome_buf_append(out, p, n));
            first = 0;
        }
        p += n;
        if (*p)
            p++;
    }
    return TOME_OK;
}

/* The member name of a single compressed file: the last path component of
 * the display path without its compression suffix ("a/notes.txt.gz" →
 * "notes.txt", "x.tgz" → "x.tar"). */
static tome_status raw_member_name(const char *display, tome_buf *out)
{
    const char *base = display;
    for (const char *c = display; *c; c++)
        if (*c == '/')
            base = c + 1;
    size_t n = strlen(base);
    static const char *const sfx[] = {".gz", ".bz2", ".xz", ".zst", ".lz4", ".lz", ".lzma", ".Z", ".z"};
    if (n > 4 && (strcmp(base + n - 4, ".tgz") == 0 || strcmp(base + n - 4, ".tbz") == 0 ||
                  strcmp(base + n - 4, ".txz") == 0)) {
        TOME_FORWARD(tome_buf_append(out, base, n - 4));
        return tome_buf_append(out, ".tar", 4);
    }
    for (size_t i = 0; i < TOME_ARRAY_LEN(sfx); i++) {
        size_t k = strlen(sfx[i]);
        if (n > k && strcmp(base + n - k, sfx[i]) == 0)
            return tome_buf_append(out, base, n - k);
    }
    return tome_buf_append(out, n ? base : "data", n ? n : 4);
}

static struct archive *arc_new(void)
{
    struct archive *a = archive_read_new();
    if (!a)
        return NULL;
    archive_read_support_filter_gzip(a);
    archive_read_support_filter_bzip2(a);
    archive_read_support_filter_xz(a);
    archive_read_support_filter_lzma(a);
    archive_read_support_filter_lzip(a);
    archive_read_support_filter_zstd(a);
    archive_read_support_filter_lz4(a);
    archive_read_support_filter_compress(a);
    archive_read_support_format_tar(a);
    archive_read_support_format_gnutar(a);
    archive_read_support_format_zip(a);
    archive_read_support_format_7zip(a);
    archive_read_support_format_cpio(a);
    archive_read_support_format_ar(a);
    archive_read_support_format_iso9660(a);
    archive_read_support_format_cab(a);
    archive_read_support_format_rar(a);
    archive_read_support_format_rar5(a);
    archive_read_support_format_xar(a);
    archive_read_support_format_lha(a);
    archive_read_support_format_raw(a);
    return a;
}

static const char *arc_err(struct archive *a)
{
    const char *m = archive_error_string(a);
    return m && *m ? m : "unknown libarchive error";
}

/* The archive-level skip entry: "<what> after N entries (at 'name'): msg". */
static tome_status report_archive(arc_state *st, const char *display, const char *what,
                                  uint64_t n_entries, const char *at, const char *msg)
{
    char reason[768];
    const char *noun = n_entries == 1 ? "entry" : "entries";
    if (at && *at)
        snprintf(reason, sizeof reason, "%s after %llu %s (at '%s'): %s", what,
                 (unsigned long long)n_entries, noun, at, msg);
    else
        snprintf(reason, sizeof reason, "%s after %llu %s: %s", what,
                 (unsigned long long)n_entries, noun, msg);
    return report(st, display, 0, reason, NULL, 0);
}

/* Decompresses the current member into buf, at most max+1 bytes; *arc_out
 * and st->total_out count what came out. Returns 0 ok, 1 over max, 2 read
 * error (message in err), 3 fatal read error, -1 out of memory; 4 / 5 / 6
 * when the total size cap / this archive's ratio cap / the overall ratio cap
 * trips. */
static int read_member(struct archive *a, arc_state *st, tome_buf *buf, uint64_t max,
                       uint64_t *arc_out, size_t arc_len, char *err, size_t err_cap)
{
    buf->len = 0;
    for (;;) {
        if (buf->cap - buf->len < TOME_ARCHIVE_CHUNK) {
            size_t want = buf->cap < TOME_ARCHIVE_CHUNK ? TOME_ARCHIVE_CHUNK : buf->cap;
            if (tome_buf_reserve(buf, want) != TOME_OK)
                return -1;
        }
        la_ssize_t n = archive_read_data(a, buf->data + buf->len, TOME_ARCHIVE_CHUNK);
        if (n == 0)
            break;
        if (n < 0) {
            snprintf(err, err_cap, "%s", arc_err(a));
            return n == ARCHIVE_FATAL ? 3 : 2;
        }
        buf->len += (size_t)n;
        buf->data[buf->len] = '\0';
        st->total_out += (uint64_t)n;
        *arc_out += (uint64_t)n;
        if (st->total_out > st->lim->max_total_bytes)
            return 4;
        if (*arc_out > TOME_ARCHIVE_RATIO_FLOOR &&
            (double)*arc_out > st->lim->max_ratio * (double)(arc_len ? arc_len : 1))
            return 5;
        if (st->total_out > TOME_ARCHIVE_RATIO_FLOOR &&
            (double)st->total_out > st->lim->max_ratio * (double)(st->top_len ? st->top_len : 1))
            return 6;
        if (buf->len > max)
            return 1;
    }
    return 0;
}

static tome_status arc_read(arc_state *st, const char *display, const uint8_t *data, size_t len,
                            int depth)
{
    const tome_archive_limits *lim = st->lim;
    tome_status rc = TOME_OK;
    tome_buf path = {0}, content = {0}, last = {0}, link = {0};
    char reason[768], err[512];
    uint64_t n_entries = 0, arc_out = 0;
    int n_failed = 0;
    held hold = {0};

    struct archive *a = arc_new();
    if (!a)
        return tome_set_error(TOME_ERR_NOMEM, "%s: cannot allocate an archive reader", display);
    if (archive_read_open_memory(a, data, len) != ARCHIVE_OK) {
        rc = report_archive(st, display, "not a readable archive", 0, NULL, arc_err(a));
        goto done;
    }

    for (;;) {
        struct archive_entry *ae = NULL;
        int r = archive_read_next_header(a, &ae);
        if (r == ARCHIVE_EOF) {
            /* an archive without a single entry (an empty tar, or a .gz of
             * zeros, which reads as one) must still be listed, with why */
            if (n_entries == 0)
                rc = report(st, display, 0, "empty archive: no entries", NULL, 0);
            break;
        }
        if (r == ARCHIVE_RETRY) {
            if (++n_failed > TOME_ARCHIVE_MAX_FAILED_HEADERS) {
                rc = report_archive(st, display, "archive stopped", n_entries, last.data,
                                    "too many unreadable entries");
                goto done;
            }
            continue;
        }
        if (n_entries == 0 && (archive_format(a) & ARCHIVE_FORMAT_BASE_MASK) == ARCHIVE_FORMAT_RAW &&
            archive_filter_count(a) <= 1) {
            rc = report_archive(st, display, "not a readable archive", 0, NULL,
                                "no archive format or compression recognized");
            goto done;
        }
        if (r == ARCHIVE_FATAL || ae == NULL) {
            rc = report_archive(st, display, n_entries ? "corrupt or truncated archive"
                                                       : "not a readable archive",
                                n_entries, last.data, arc_err(a));
            goto done;
        }
        if (++n_entries > lim->max_entries) {
            snprintf(err, sizeof err, "more than %llu entries (entry cap)",
                     (unsigned long long)lim->max_entries);
            rc = report_archive(st, display, "archive stopped", n_entries - 1, NULL, err);
            goto done;
        }

        /* The display path of this member. */
        int is_raw = (archive_format(a) & ARCHIVE_FORMAT_BASE_MASK) == ARCHIVE_FORMAT_RAW;
        const char *name = archive_entry_pathname(ae);
        path.len = 0;
        if (tome_buf_append(&path, display, strlen(display)) != TOME_OK ||
            tome_buf_append(&path, "!/", 2) != TOME_OK)
            goto nomem;
        const char *skip = NULL;
        if (is_raw) {
            if (raw_member_name(display, &path) != TOME_OK)
                goto nomem;
        } else if (!name || !*name) {
            snprintf(reason, sizeof reason, "entry %llu has no readable name",
                     (unsigned long long)n_entries);
            if (tome_buf_appendf(&path, "#%llu", (unsigned long long)n_entries) != TOME_OK)
                goto nomem;
            skip = reason;
        } else {
            int is_ar = (archive_format(a) & ARCHIVE_FORMAT_BASE_MASK) == ARCHIVE_FORMAT_AR;
            /* ar's symbol table ("/", "/SYM64/") and GNU long-name table
             * ("//") are index data, not members with absolute names */
            skip = is_ar && (!strcmp(name, "/") || !strcmp(name, "//") || !strcmp(name, "/SYM64/"))
                       ? "ar symbol or name table (index data)"
                       : unsafe_name(name);
            if (skip) {
                /* Keep the raw name visible (renderers escape it). */
                if (tome_buf_append(&path, name, strlen(name)) != TOME_OK)
                    goto nomem;
            } else {
                size_t before = path.len;
                if (append_clean_name(&path, name) != TOME_OK)
                    goto nomem;
                if (path.len == before)
                    continue; /* "./" or "/" only: a directory */
            }
        }
        last.len = 0;
        if (tome_buf_append(&last, path.data + strlen(display) + 2,
                            path.len - strlen(display) - 2) != TOME_OK)
            goto nomem;
        int64_t mtime = archive_entry_mtime_is_set(ae) ? (int64_t)archive_entry_mtime(ae) : 0;

        if (r == ARCHIVE_FAILED) {
            snprintf(reason, sizeof reason, "unreadable entry: %s", arc_err(a));
            if ((rc = report(st, path.data, mtime, reason, NULL, 0)) != TOME_OK)
                goto done;
            if (++n_failed > TOME_ARCHIVE_MAX_FAILED_HEADERS) {
                rc = report_archive(st, display, "archive stopped", n_entries, last.data,
                                    "too many unreadable entries");
                goto done;
            }
            continue;
        }

        mode_t type = archive_entry_filetype(ae);
        link.len = 0;
        if (!skip) {
            size_t name_len = name ? strlen(name) : 0;
            if (type == AE_IFDIR || (!is_raw && name_len && name[name_len - 1] == '/'))
                continue;
            const char *hl = archive_entry_hardlink(ae);
            if (hl) {
                /* a hard link names an earlier member: its content is
                 * packed there (or the target was refused, with why) */
                const char *why = *hl ? unsafe_name(hl) : "empty target";
                tome_buf t = {0};
                if (!why && append_clean_name(&t, hl) != TOME_OK) {
                    tome_buf_free(&t);
                    goto nomem;
                }
                if (why) {
                    snprintf(reason, sizeof reason, "hardlink pointing outside the archive (%s; not followed)", why);
                    tome_buf_free(&t);
                    skip = reason;
                } else {
                    /* reported with the target's path: the pack lists it as
                     * an alias of that member */
                    tome_status ts = tome_buf_appendf(&link, "%s!/%.*s", display, (int)t.len, t.data ? t.data : "");
                    tome_buf_free(&t);
                    if (ts != TOME_OK) goto nomem;
                    /* a link that carries data (cpio) is read below */
                    if (!archive_entry_size_is_set(ae) || archive_entry_size(ae) <= 0) {
                        if ((rc = report_link(st, path.data, mtime, link.data)) != TOME_OK) goto done;
                        continue;
                    }
                }
            }
            else if (type == AE_IFLNK)
                skip = "symlink (not followed)";
            else if (type == AE_IFCHR || type == AE_IFBLK)
                skip = "device file";
            else if (type == AE_IFIFO)
                skip = "fifo";
            else if (type == AE_IFSOCK)
                skip = "socket";
            else if (type != AE_IFREG && type != 0)
                skip = "not a regular file";
            else if (archive_entry_is_encrypted(ae))
                skip = "encrypted";
            else if (type == AE_IFREG && !hl && archive_entry_nlink(ae) > 1 &&
                     archive_entry_size_is_set(ae) && archive_entry_size(ae) == 0) {
                if (held_add(&hold, path.data, mtime)) goto nomem;
                continue;
            } else if (archive_entry_size_is_set(ae) &&
                     (uint64_t)archive_entry_size(ae) > lim->max_entry_bytes) {
                snprintf(reason, sizeof reason, "too large: %lld bytes (cap %llu)",
                         (long long)archive_entry_size(ae), (unsigned long long)lim->max_entry_bytes);
                skip = reason;
            }
        }
        if (skip) {
            if ((rc = report(st, path.data, mtime, skip, NULL, 0)) != TOME_OK)
                goto done;
            continue;
        }

        int res = read_member(a, st, &content, lim->max_entry_bytes, &arc_out, len, err, sizeof err);
        if (res < 0)
            goto nomem;
        if (res == 4 || res == 5 || res == 6) {
            if (res == 6) {
                st->total_hit = 1;
                snprintf(err, sizeof err, "everything below the top-level archive decompressed to more than %.0f times its %zu bytes (ratio cap; possible nested zip bomb)",
                         lim->max_ratio, st->top_len);
            } else if (res == 4) {
                st->total_hit = 1;
                snprintf(err, sizeof err, "more than %llu bytes decompressed in all (total cap; possible zip bomb)",
                         (unsigned long long)lim->max_total_bytes);
            } else {
                snprintf(err, sizeof err, "decompressed more than %.0f times its %zu bytes (ratio cap; possible zip bomb)",
                         lim->max_ratio, len);
            }
            if ((rc = report(st, path.data, mtime, "archive stopped: size cap (possible zip bomb)",
                             NULL, 0)) != TOME_OK)
                goto done;
            if (st->total_hit)
                snprintf(st->why, sizeof st->why, "%s", err);
            rc = report_archive(st, display, "archive stopped", n_entries, last.data, err);
            goto done;
        }
        if (res == 1) {
            snprintf(reason, sizeof reason, "too large: over %llu bytes decompressed (cap)",
                     (unsigned long long)lim->max_entry_bytes);
            if ((rc = report(st, path.data, mtime, reason, NULL, 0)) != TOME_OK)
                goto done;
            continue;
        }
        if (res == 2 || res == 3) {
            const char *what = archive_entry_is_encrypted(ae) ? "encrypted" : "corrupt data";
            snprintf(reason, sizeof reason, "%s: %s", what, err);
            if ((rc = report(st, path.data, mtime, reason, NULL, 0)) != TOME_OK)
                goto done;
            if (res == 3) {
                rc = report_archive(st, display, "corrupt or truncated archive", n_entries,
                                    last.data, err);
                goto done;
            }
            continue;
        }

        if (link.len) {
            if (content.len == 0) { /* a size but no data: a plain link */
                if ((rc = report_link(st, path.data, mtime, link.data)) != TOME_OK) goto done;
                continue;
            }
            /* the data of a group of links: the held-back first name of the
             * group is a link to this member */
            if ((rc = held_link(st, &hold, link.data, path.data)) != TOME_OK) goto done;
        }

        /* A complete member: a nested archive, or data for the caller. */
        if (tome_archive_sniff((const uint8_t *)content.data, content.len)) {
            if (depth + 1 > lim->max_depth) {
                snprintf(reason, sizeof reason, "nested archive too deep (depth %d, cap %d)",
                         depth + 1, lim->max_depth);
                rc = report(st, path.data, mtime, reason, NULL, 0);
            } else {
                /* The child owns a copy of neither buffer: hand it ours and
                 * take a fresh one for the rest of this archive. */
                tome_buf inner = content, inner_path = path;
                content = (tome_buf){0};
                path = (tome_buf){0};
                rc = arc_read(st, inner_path.data, (const uint8_t *)inner.data, inner.len, depth + 1);
                tome_buf_free(&inner);
                tome_buf_free(&inner_path);
            }
            if (rc != TOME_OK)
                goto done;
            if (st->total_hit) {
                snprintf(err, sizeof err, "inside a nested archive: %.400s", st->why);
                rc = report_archive(st, display, "archive stopped", n_entries, last.data, err);
                goto done;
            }
            continue;
        }
        if ((rc = report(st, path.data, mtime, NULL, (const uint8_t *)content.data, content.len)) != TOME_OK)
            goto done;
    }
    /* libarchive reads a zip without its central directory from the local
     * headers and ends quietly where the directory would start: say so. */
    if ((archive_format(a) & ARCHIVE_FORMAT_BASE_MASK) == ARCHIVE_FORMAT_ZIP &&
        !tome_zip_has_eocd(data, len))
        rc = report_archive(st, display, "truncated zip", n_entries, last.data,
                            "no end of central directory record; members were read from their local headers");
    goto done;

nomem:
    rc = tome_set_error(TOME_ERR_NOMEM, "%s: out of memory reading the archive", display);
done:
    rc = held_flush(st, &hold, rc);
    archive_read_free(a);
    tome_buf_free(&link);
    tome_buf_free(&path);
    tome_buf_free(&content);
    tome_buf_free(&last);
    return rc;
}

/* LC_CTYPE C.UTF-8 for the reading thread (see "Member names" above);
 * created once, never freed (it lives as long as the process). */
static pthread_once_t g_utf8_once = PTHREAD_ONCE_INIT;
static locale_t g_utf8_locale;
static void utf8_locale_init(void)
{
    g_utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    if (!g_utf8_locale)
        g_utf8_locale = newlocale(LC_CTYPE_MASK, "en_US.UTF-8", (locale_t)0);
}

tome_status tome_archive_read(const char *display_path, const uint8_t *data, size_t len,
                              const tome_archive_limits *lim, int depth,
                              tome_archive_cb cb, void *ud)
{
    tome_archive_limits def;
    if (!display_path || !cb || (!data && len))
        return tome_set_error(TOME_ERR_INVALID_ARG, "tome_archive_read: missing argument");
    if (!lim) {
        tome_archive_limits_default(&def);
        lim = &def;
    }
    arc_state st = {.lim = lim, .cb = cb, .ud = ud, .top_len = len};
    static const uint8_t empty[1];
    pthread_once(&g_utf8_once, utf8_locale_init);
    locale_t prev = g_utf8_locale ? uselocale(g_utf8_locale) : (locale_t)0;
    tome_status rc = arc_read(&st, display_path, data ? data : empty, len, depth < 0 ? 0 : depth);
    if (prev)
        uselocale(prev);
    return rc;
}
