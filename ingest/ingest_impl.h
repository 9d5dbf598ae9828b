/*
 * ingest/ingest_impl.h — contracts between the ingest pieces.
 *
 *   walk.c / gitignore.c   directory trees → relative paths, with git's ignore
 *                          rules, .tomeignore, --include/--exclude globs
 *   archive.c              zip, tar.{gz,bz2,xz,zst}, 7z, ... (libarchive) →
 *                          entries "outer.zip!/inner/file.c", nested archives
 *   doc_*.c                PDF (poppler), DOCX/ODT (libxml2 over the archive
 *                          reader), HTML → UTF-8 text + anchors (page, paragraph)
 *   text.c                 encoding detection (UTF-8, UTF-16 with BOM, Latin-1,
 *                          binary) and conversion to UTF-8
 *   redact.c               secrets → "[REDACTED:<kind>]" markers, newlines kept
 *   outline.c              signatures / headings of a file, with line numbers
 *   pack_*.c               the builder and the .tpk format (include/tome/pack.h)
 *
 * Ownership: every callback receives borrowed pointers valid only for the
 * duration of the call; the callee copies what it keeps. Display paths are
 * raw bytes with '/' separators (they may contain invalid UTF-8 or control
 * characters; renderers escape them, see tome_path_escape()).
 *
 * Errors: a problem with one file or entry is *not* a failure of the walk:
 * it is reported through the callback with skip_reason set, and the walk goes
 * on. A returned error status means the whole source is unusable (e.g. the
 * root does not exist) or the callback asked to stop by returning non-OK.
 *
 * Notes (walk/text/redact/outline): tome_text_to_utf8 and tome_path_escape
 * append to *out. A symlink to a regular file inside the walk root is
 * reported as a file whose fs_path is the resolved target; other symlinks
 * are listed with a skip_reason (walk.c's design comment has the list).
 * gitignore-syntax matching for other pieces (e.g. --include/--exclude on
 * archive members): ingest/gitignore_impl.h (tome_ignore_list_*,
 * tome_wildmatch). tome_outline_line.len excludes a "\r" before the "\n".
 */
#ifndef TOME_INGEST_IMPL_H
#define TOME_INGEST_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "core/core_impl.h"

/* ------------------------------------------------------------ walk */
typedef struct tome_walk_opts {
    const char *const *include; /* NULL-terminated globs (gitignore syntax); NULL/empty: everything */
    const char *const *exclude; /* NULL-terminated globs (gitignore syntax)                         */
    int no_gitignore;           /* ignore .gitignore / .git/info/exclude                           */
    int no_tomeignore;          /* ignore .tomeignore files                                         */
    int no_default_ignores;     /* do not skip .git/, node_modules/ etc. by default                 */
    uint64_t max_file_bytes;    /* files larger than this are reported skipped ("too large")        */
} tome_walk_opts;

/* One file found by the walker. fs_path is openable; rel_path is the display
 * path relative to the walk root. skip_reason == NULL: a regular file to read;
 * otherwise a short reason ("symlink outside tree", "fifo", "too large: ...",
 * "unreadable: Permission denied", "symlink loop") and the entry is only listed. */
typedef struct tome_walk_entry {
    const char *rel_path;
    const char *fs_path;
    uint64_t size;
    int64_t mtime;
    const char *skip_reason;
} tome_walk_entry;

typedef tome_status (*tome_walk_cb)(void *ud, const tome_walk_entry *e);

/* Walks root (a directory) depth-first in byte-wise sorted order. Ignored
 * files are not reported at all; unusable ones are reported with a reason.
 * Never follows a symlink that leaves root, detects loops, never opens FIFOs,
 * sockets or devices. */
tome_status tome_walk(const char *root, const tome_walk_opts *opts, tome_walk_cb cb, void *ud);

/* ------------------------------------------------------------ archives */
typedef struct tome_archive_limits {
    int max_depth;             /* nesting depth of archives inside archives (default 4)            */
    uint64_t max_entry_bytes;  /* one entry's uncompressed size (default 64 MiB)                   */
    uint64_t max_total_bytes;  /* all entries of one top-level archive (default 4 GiB)             */
    double max_ratio;          /* uncompressed / compressed bytes of one archive (default 200)     */
    uint64_t max_entries;      /* entries in one archive (default 1,000,000)                       */
} tome_archive_limits;

void tome_archive_limits_default(tome_archive_limits *lim);

/* One archive member. path is the full display path ("a.zip!/dir/f.c",
 * nested: "a.zip!/b.tar.gz!/f.c"). data/len: the member's bytes when
 * skip_reason == NULL. Members with "../", absolute paths, links, devices,
 * encrypted data, or over a limit are reported with a skip_reason and no data. */
typedef struct tome_archive_entry {
    const char *path;
    const uint8_t *data;
    size_t len;
    int64_t mtime;
    const char *skip_reason;
    /* a hard link to another member: that member's path (as path is
     * written, "outer.tar!/dir/file"); skip_reason is set too (the link has
     * no data of its own), for readers that do not follow links. The target
     * may itself be a link, or come later in the archive (cpio stores the
     * data of a group of links with its last name). */
    const char *link_to;
} tome_archive_entry;

typedef tome_status (*tome_archive_cb)(void *ud, const tome_archive_entry *e);

/* Nonzero when data looks like an archive format tome reads (by content, not
 * name). Documents that are zip files (DOCX, ODT, XLSX...) are *not* archives
 * for this purpose: tome_doc_sniff claims them first. */
int tome_archive_sniff(const uint8_t *data, size_t len);

/* Reads every member of the archive in data. Nested archives are expanded up
 * to lim->max_depth; depth is the current depth (0 for a top-level file).
 * A corrupt or truncated archive reports the members read so far, then one
 * entry for the archive itself with a skip_reason naming what is wrong. */
tome_status tome_archive_read(const char *display_path, const uint8_t *data, size_t len,
                              const tome_archive_limits *lim, int depth,
                              tome_archive_cb cb, void *ud);

/* ------------------------------------------------------------ documents */
typedef enum tome_doc_kind {
    TOME_DOC_NONE = 0,
    TOME_DOC_PDF,
    TOME_DOC_DOCX,
    TOME_DOC_ODT,
    TOME_DOC_HTML
} tome_doc_kind;

typedef enum tome_anchor_kind {
    TOME_ANCHOR_PAGE = 1,      /* PDF page, 1-based                         */
    TOME_ANCHOR_PARAGRAPH = 2, /* DOCX/ODT paragraph, 1-based               */
    TOME_ANCHOR_HEADING = 3    /* a heading paragraph (number = paragraph)  */
} tome_anchor_kind;

typedef struct tome_anchor {
    uint64_t offset; /* byte offset in the extracted UTF-8 text where it starts */
    uint32_t kind;   /* tome_anchor_kind */
    uint32_t number;
} tome_anchor;

typedef struct tome_doc_text {
    tome_buf text;        /* UTF-8, '\n' line ends                 */
    tome_anchor *anchors; /* sorted by offset; malloc'd            */
    size_t n_anchors;
    uint64_t *heads;      /* offsets of heading lines the document
                           * names apart from its text (a PDF's
                           * bookmarks), sorted, distinct; malloc'd */
    size_t n_heads;
} tome_doc_text;

/* Kind of document by content (magic bytes, zip member names, markup);
 * path is only a tie-breaker (e.g. ".html"). */
tome_doc_kind tome_doc_sniff(const char *path, const uint8_t *data, size_t len);
tome_status tome_doc_extract(tome_doc_kind kind, const char *path, const uint8_t *data, size_t len,
                             tome_doc_text *out);
void tome_doc_text_free(tome_doc_text *d); /* NULL ok */

/* ------------------------------------------------------------ text */
typedef enum tome_encoding {
    TOME_ENC_UTF8 = 0,
    TOME_ENC_UTF8_BOM,
    TOME_ENC_UTF16LE,
    TOME_ENC_UTF16BE,
    TOME_ENC_LATIN1,
    TOME_ENC_BINARY,
    TOME_ENC_UTF8_LOSSY /* UTF-8 with a few invalid bytes: converted, those become U+FFFD */
} tome_encoding;

const char *tome_encoding_name(tome_encoding enc);

/* Decide by content: NUL bytes / control-byte density → binary; BOMs; valid
 * UTF-8; otherwise Latin-1 when it is plausible text, else binary. */
tome_encoding tome_text_detect(const uint8_t *data, size_t len);

/* 1 when data is binary to tome_text_detect but looks like text in a legacy
 * encoding it does not decode (no NUL, few control bytes, bytes >= 0x80). */
int tome_text_legacy_8bit(const uint8_t *data, size_t len);

/* Makes r (NULL ok) one line in place: control characters become spaces,
 * trailing spaces go (skip reasons quote library messages). */
void tome_text_one_line(char *r);

/* Converts to UTF-8 (BOM dropped, "\r\n" kept as is). */
tome_status tome_text_to_utf8(const uint8_t *data, size_t len, tome_encoding enc, tome_buf *out);

/* Escapes a display path for output: invalid UTF-8 bytes and control
 * characters become \xNN; the rest is copied. */
tome_status tome_path_escape(const char *path, tome_buf *out);

/* ------------------------------------------------------------ redaction */
typedef struct tome_redaction {
    uint32_t line;     /* 1-based line of the secret in the original text */
    const char *kind;  /* static string: "private-key", "aws-access-key", "github-token", "password", "high-entropy", ... */
} tome_redaction;

/* Replaces secrets in text in place with "[REDACTED:<kind>]" (multi-line
 * secrets such as PEM keys keep their newlines so line numbers do not move).
 * path lets config files (.env, *.yaml, *.ini, ...) get the password rules.
 * *out / *n_out: malloc'd list of what was redacted (may be NULL/0). */
tome_status tome_redact(const char *path, tome_buf *text, tome_redaction **out, size_t *n_out);

/* ------------------------------------------------------------ outline */
typedef struct tome_outline_line {
    uint32_t line;   /* 1-based line number in the text */
    size_t offset;   /* byte offset of the line in the text */
    size_t len;      /* bytes of the line, without the newline */
} tome_outline_line;

/* The lines of text that make its outline: function/type signatures for
 * source code (by language from the path), headings for Markdown/docs.
 * *out is malloc'd. */
tome_status tome_outline(const char *path, const char *text, size_t len,
                         tome_outline_line **out, size_t *n_out);

/* The outline of an extracted document: the lines of its headings (heads:
 * offsets found by the extraction, e.g. a PDF's bookmarks; or its
 * TOME_ANCHOR_HEADING anchors), else the first line with text of each page
 * that is not a running header; n_out 0 when none applies. Anchors and
 * heads sorted by offset. *out is malloc'd. */
tome_status tome_outline_doc(const char *text, size_t len, const tome_anchor *anchors, size_t n_anchors,
                             const uint64_t *heads, size_t n_heads, tome_outline_line **out, size_t *n_out);

/* For each page anchor (TOME_ANCHOR_PAGE) of text, first[k] = the offset of
 * its first line with text that is not a running header or footer (a line
 * that, digits ignored, is among the first three text lines of half of the
 * pages, 3 or more); UINT64_MAX for other anchors and pages without such a
 * line. first has n_anchors entries. */
tome_status tome_outline_page_firsts(const char *text, size_t len, const tome_anchor *anchors, size_t n_anchors,
                                     uint64_t *first);

/* ------------------------------------------------------------ pack sources */
/* Opens a disk source of `tome pack` read-only, without blocking on a FIFO
 * or taking a terminal; a path past PATH_MAX is opened one component at a
 * time (pack_open.c). Returns the fd, or -1 with errno set. */
int tome_pack_open_source(const char *path);
/* strerror_r's text for err (buf: room for it). */
const char *tome_pack_errno_text(int err, char *buf, size_t n);

#endif /* TOME_INGEST_IMPL_H */
