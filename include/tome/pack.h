/*
 * tome/pack.h — packs: a whole repository or archive as one exact prompt.
 *
 * tome_pack_build() walks sources (directories, archives, documents, single
 * files), renders every file into one text (xml, markdown or plain), encodes
 * it with the Llama 4 tokenizer and writes a `.tpk` file holding the rendered
 * text, its token ids and a manifest that maps every token back to the file
 * and original line it came from (docs/pack-format.md has the layout).
 *
 * The ids are the "documents part" of a Llama 4 prompt: they equal the ids of
 * encoding the whole rendered text in one call, the text starts with '<' (or
 * '#'/'=' for markdown/plain) and ends with '\n', so a caller that puts the
 * pack after text ending in '\n' and before text that does not start with
 * whitespace gets exactly the concatenated ids.
 *
 * A pack reader (tome_pack_t) is immutable after open except for the lazily
 * decompressed text and ids, which are loaded on first use (not thread-safe
 * until loaded; call tome_pack_text/tome_pack_ids once before sharing).
 */
#ifndef TOME_PACK_H
#define TOME_PACK_H

#include <stddef.h>
#include <stdint.h>

#include "tome/status.h"
#include "tome/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TOME_PACK_VERSION 4u /* 4: lower-bound flag on full_tokens; 3: text as a token dictionary, ids in 2-3 bytes (3, 2: text zstd, 1: 4-byte ids: no longer read) */
#define TOME_PACK_DEFAULT_BUDGET 10485760ull /* Llama 4 Scout context, tokens */

typedef enum tome_pack_format {
    TOME_PACK_XML = 0,
    TOME_PACK_MARKDOWN = 1,
    TOME_PACK_PLAIN = 2
} tome_pack_format;

/* What became of one file. */
typedef enum tome_file_status {
    TOME_FILE_FULL = 0,    /* whole text in the pack                              */
    TOME_FILE_OUTLINE = 1, /* degraded by the budget: signatures/headings only    */
    TOME_FILE_LISTED = 2,  /* degraded by the budget: only listed in the tree     */
    TOME_FILE_ALIAS = 3,   /* same content as another file (alias_of), stored once */
    TOME_FILE_SKIPPED = 4  /* not packable (binary, too large, bad entry, ...)    */
} tome_file_status;

const char *tome_file_status_name(tome_file_status s); /* "full", "outline", ... */

typedef struct tome_pack_progress {
    const char *phase;   /* "scan", "read", "write" */
    uint64_t done, total; /* items of the phase */
} tome_pack_progress;

/* HTML in a pack. AUTO (default): an HTML file found by walking a directory
 * is source code and is packed as markup (text); an HTML file inside an
 * archive, or named directly as a source, is a document and is packed as its
 * extracted text (with heading/paragraph anchors). SOURCE / TEXT force one
 * way for every HTML file. */
typedef enum tome_pack_html {
    TOME_PACK_HTML_AUTO = 0,
    TOME_PACK_HTML_SOURCE = 1,
    TOME_PACK_HTML_TEXT = 2
} tome_pack_html;

typedef struct tome_pack_opts {
    const tome_tokenizer_t *tok;   /* the tokenizer, or NULL and tok_path:           */
    const char *tok_path;          /* loaded by the build while it walks the sources  */
    tome_pack_format format;
    uint64_t budget;               /* tokens; 0: TOME_PACK_DEFAULT_BUDGET */
    int line_numbers;              /* prefix content lines with their original number */
    int no_redact;                 /* keep secrets (default: redact)                 */
    int no_gitignore;              /* do not apply .gitignore / .git/info/exclude     */
    const char *const *include;    /* NULL-terminated globs or NULL                   */
    const char *const *exclude;    /* NULL-terminated globs or NULL                   */
    const char *const *priority;   /* NULL-terminated globs: first = packed first     */
    uint64_t max_file_bytes;       /* 0: 16 MiB; bigger files are skipped              */
    int n_threads;                 /* 0: tome_num_threads()                           */
    int zstd_level;                /* 0: 1                                             */
    const char *const *leave_out; /* NULL-terminated file paths never packed (the
                                      output and its renderings), or NULL */
    int html;                      /* tome_pack_html: how .html/.htm files are packed  */
    int exact_counts;              /* also count the full text of every file degraded
                                      to fit the budget (slower); default: the files
                                      most likely degraded are counted at least
                                      (tome_pack_file.full_tokens_lower) */
    uint64_t cache_ids;            /* token ids kept between reading and writing files;
                                      0: 24M (96 MB). Files past it are read and
                                      tokenized again when written (bounded memory). */
    /* Called from the building thread only, at most every few milliseconds. */
    void (*progress)(void *ud, const tome_pack_progress *p);
    void *progress_ud;
} tome_pack_opts;

void tome_pack_opts_default(tome_pack_opts *o);

typedef struct tome_pack_stats {
    uint64_t n_files;        /* manifest entries (all statuses)   */
    uint64_t n_full, n_outline, n_listed, n_alias, n_skipped;
    uint64_t n_tokens;       /* ids in the pack                   */
    uint64_t n_text_bytes;   /* bytes of rendered text            */
    uint64_t bytes_read;     /* source bytes read                 */
    uint64_t n_redactions;
    uint64_t n_counted_at_least; /* files counted at least while read (most
                                    likely degraded; tome_pack_opts.exact_counts) */
    uint64_t n_counted_later;    /* ... of them counted exactly later: the
                                    budget needed their count */
    uint64_t pack_bytes;     /* size of the .tpk                  */
    double seconds;          /* wall time of the build            */
    double t_scan, t_read, t_plan, t_write; /* wall time of each phase: walk; read +
                                               convert + tokenize; order + budget; write */
} tome_pack_stats;

/* Builds a pack of sources[0..n_sources) (directories, archives, documents or
 * plain files) into out_path, atomically: on failure nothing is left under
 * out_path (an existing file there is untouched). Problems with single files
 * are not failures: they are recorded in the manifest with a reason. stats
 * may be NULL. */
tome_status tome_pack_build(const char *const *sources, size_t n_sources, const tome_pack_opts *opts,
                            const char *out_path, tome_pack_stats *stats);

typedef struct tome_pack tome_pack_t;
/* tome_pack_build, and *pack (freed with tome_pack_free) reads the pack just
 * written from the manifest still in memory: no read back of the file for a
 * summary. Its text and ids are read from the file on first use, with every
 * check of tome_pack_open. */
tome_status tome_pack_build_open(const char *const *sources, size_t n_sources, const tome_pack_opts *opts,
                                 const char *out_path, tome_pack_stats *stats, tome_pack_t **pack);

/* ------------------------------------------------------------ reader */

typedef struct tome_pack_info {
    uint32_t version;
    tome_pack_format format;
    uint64_t n_tokens, n_text_bytes, n_files;
    uint64_t budget;
    int line_numbers;
    char content_hash[33];   /* XXH3-128 of ids + manifest, hex */
    char tokenizer_hash[33]; /* tome_tokenizer_hash of the tokenizer used */
} tome_pack_info;

typedef struct tome_pack_file {
    const char *path;        /* raw display path (may hold invalid UTF-8); valid while the pack is open */
    tome_file_status status;
    const char *reason;      /* skip/degrade reason, "" when none */
    int64_t alias_of;        /* index of the stored copy for TOME_FILE_ALIAS, else -1 */
    uint64_t size;           /* source bytes */
    uint64_t n_lines;        /* lines of the (converted) original text */
    uint64_t text_offset, text_len; /* byte range of its block in the rendered text */
    uint64_t tok_start, tok_count;  /* token range of its block */
    uint64_t full_tokens;    /* tokens of the full block (also when degraded) */
    int full_tokens_lower;   /* full_tokens is a lower bound: a file counted at least,
                                not tokenized (a degraded one, or an alias or skipped
                                entry of such content; never a full file;
                                tome_pack_opts.exact_counts) */
    uint64_t n_redactions;
    const char *encoding;    /* "utf-8", "latin-1", ... or "pdf", "docx" ...; "" for skipped */
    char content_hash[33];   /* XXH3-128 of the source bytes, hex; "" for skipped */
} tome_pack_file;

/* Location of one token or line. */
typedef struct tome_pack_loc {
    int64_t file;            /* index, or -1 for tokens outside any file block (envelope, tree) */
    uint32_t line;           /* 1-based original line, 0 for structural lines of a block */
    uint32_t anchor_kind;    /* 0 none, 1 page, 2 paragraph, 3 heading (documents) */
    uint32_t anchor_number;
} tome_pack_loc;

/* Opens and validates a pack: magic, version, header and section checksums,
 * section bounds, manifest structure. Errors name the file and the section. */
tome_status tome_pack_open(const char *path, tome_pack_t **out);
void tome_pack_free(tome_pack_t *p); /* NULL ok */

void tome_pack_get_info(const tome_pack_t *p, tome_pack_info *out);
size_t tome_pack_n_files(const tome_pack_t *p);
tome_status tome_pack_get_file(const tome_pack_t *p, size_t i, tome_pack_file *out);
/* Redactions of file i: *n and for each k < *n, lines[k] and kinds[k]
 * (borrowed, valid while the pack is open). */
tome_status tome_pack_get_redactions(const tome_pack_t *p, size_t i, size_t *n,
                                     const uint32_t **lines, const char *const **kinds);

/* Document anchors of file i (pages, paragraphs, headings; none for code):
 * their number, and anchor k: the first original line it covers, its kind
 * (1 page, 2 paragraph, 3 heading) and its number. */
size_t tome_pack_n_anchors(const tome_pack_t *p, size_t i);
tome_status tome_pack_get_anchor(const tome_pack_t *p, size_t i, size_t k, uint32_t *line, uint32_t *kind,
                                 uint32_t *number);

/* Rendered text / ids, decompressed on first call and kept (borrowed). */
tome_status tome_pack_text(tome_pack_t *p, const char **text, size_t *len);
tome_status tome_pack_ids(tome_pack_t *p, const int32_t **ids, size_t *n);

/* The file and original line of token index tok (TOME_ERR_NOT_FOUND past the end). */
tome_status tome_pack_locate(const tome_pack_t *p, uint64_t tok, tome_pack_loc *out);
/* A path as tome shows it (pack text, summaries, `inspect`, JSON): bytes of
 * invalid UTF-8, control characters, C1 controls and bidirectional overrides
 * as "\xNN", and a backslash that would read as such an escape as "\x5c",
 * so two different names never show the same. *out is malloc'd. */
tome_status tome_path_display(const char *path, char **out);

/* Formats a location: "path:line", "path#page=N:line" for documents with page
 * anchors, "path" for structural lines, "(pack)" outside files. Paths are
 * escaped (tome_path_escape). *out is malloc'd. */
tome_status tome_pack_format_loc(const tome_pack_t *p, const tome_pack_loc *loc, char **out);

/* Checks a citation "path:line" or "path:first-last" (documents also accept
 * "path#page=N:line") against the pack and returns the cited lines as they
 * appear in the pack (without line-number prefixes), '\n'-terminated, in
 * *out (malloc'd). TOME_ERR_NOT_FOUND, with a message saying why, when the
 * file is not in the pack or a line is not in its rendered text (e.g. the
 * file was degraded to an outline); TOME_ERR_INVALID_ARG for a malformed
 * citation. */
tome_status tome_pack_cite(tome_pack_t *p, const char *citation, char **out, size_t *out_len);

/* Writes a text rendering of the pack (exactly its rendered text) to path. */
tome_status tome_pack_write_text(tome_pack_t *p, const char *path);

#ifdef __cplusplus
}
#endif
#endif /* TOME_PACK_H */
