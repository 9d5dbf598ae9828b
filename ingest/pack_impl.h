/*
 * ingest/pack_impl.h — the in-memory manifest shared by the pack builder
 * (pack_build.c), the renderer (pack_render.c) and the .tpk writer/reader
 * (pack_format.c). docs/pack-format.md describes the bytes on disk.
 *
 * A manifest is an array of tome_pack_entry, one per file in pack order
 * (rendered files first in the order they appear in the text, then files
 * that are only listed/skipped, by path). Every pointer inside an entry is
 * owned by the entry (malloc'd) and freed by tome_pack_entry_clear().
 *
 * Line table: the rendered block of a file is split at '\n' into rendered
 * lines r = 0..n_rlines-1; line_off[r] is the byte offset of line r from the
 * start of the block and line_tok[r] the index (from the block's first
 * token) of the first token that *starts* at or after that offset. Runs map
 * rendered lines to original lines: rendered lines [rline, rline+count) are
 * original lines [oline, oline+count), each preceded in the rendering by
 * `prefix` bytes (a line-number prefix); rendered lines in no run are
 * structural (headers, footers, page markers).
 */
#ifndef TOME_PACK_IMPL_H
#define TOME_PACK_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "core/core_impl.h"
#include "tome/pack.h"

typedef struct tome_pack_run {
    uint32_t rline;  /* first rendered line (0-based, within the block) */
    uint32_t oline;  /* first original line (1-based)                  */
    uint32_t count;
    uint32_t prefix; /* bytes of line-number prefix on each line        */
} tome_pack_run;

typedef struct tome_pack_anchor {
    uint32_t oline;  /* first original line the anchor covers */
    uint32_t kind;   /* tome_anchor_kind */
    uint32_t number;
} tome_pack_anchor;

typedef struct tome_pack_entry {
    char *path;          /* raw display path */
    uint32_t status;     /* tome_file_status */
    char *reason;        /* "" or why skipped/degraded */
    int64_t alias_of;    /* -1 or index of the stored copy */
    uint64_t size, n_lines;
    uint64_t text_offset, text_len, tok_start, tok_count, full_tokens;
    int full_lower;      /* full_tokens is a lower bound: counted at least, not tokenized (never a full file) */
    char *encoding;
    uint8_t hash[16];    /* XXH3-128 of the source bytes (canonical big-endian) */
    uint32_t n_redact;
    uint32_t *redact_lines;
    char **redact_kinds;
    uint32_t n_runs;
    tome_pack_run *runs;
    uint32_t n_rlines;
    uint32_t *line_off;  /* [n_rlines] */
    uint32_t *line_tok;  /* [n_rlines] */
    uint32_t n_anchors;
    tome_pack_anchor *anchors;
} tome_pack_entry;

void tome_pack_entry_clear(tome_pack_entry *e); /* frees members, zeroes; NULL ok */

/* Pack-level settings stored with the manifest. */
typedef struct tome_pack_meta {
    uint32_t format;       /* tome_pack_format */
    uint32_t line_numbers;
    uint64_t budget;
} tome_pack_meta;

/* ---------------------------------------------------------- writer */
typedef struct tome_pack_writer tome_pack_writer;

/* OK when out_path is absent, empty or an earlier pack; INVALID_ARG (named)
 * for a directory, a device or a file of other content, so that a pack never
 * replaces a source ("tome pack a.c -o a.c") or /dev/null. */
tome_status tome_pack_check_output(const char *out_path);

/* Opens out_path atomically and writes a placeholder header. */
tome_status tome_pack_writer_open(const char *out_path, int zstd_level, int n_threads,
                                  tome_pack_writer **out);
/* Appends the ids of n_text bytes of rendered text (streamed through zstd;
 * the text is stored as the dictionary of the tokens used, at finish). */
tome_status tome_pack_writer_add(tome_pack_writer *w, size_t n_text, const int32_t *ids, size_t n_ids);
/* Writes the text (dictionary of the tokens used, from tt) and manifest
 * sections and the header, commits (rename); frees w
 * in all cases. *pack_bytes: size of the file; content: the header's
 * content hash (either may be NULL). */
typedef struct tome_pack_toktab tome_pack_toktab;
tome_status tome_pack_writer_finish(tome_pack_writer *w, const tome_pack_toktab *tt, const tome_pack_meta *meta,
                                    const tome_pack_entry *entries, size_t n_entries,
                                    const char tokenizer_hash[33], uint64_t *pack_bytes,
                                    uint8_t content[16]);
void tome_pack_writer_abort(tome_pack_writer *w); /* NULL ok; removes the temp file */

/* ---------------------------------------------------------- reader */
/* Opens a pack held in memory (borrowed: data must outlive the pack). name is
 * used in messages. no_checksums skips the checksum and file-size checks so
 * that a fuzzer reaches the parser behind them; every other check stays. */
tome_status tome_pack_open_mem(const char *name, const uint8_t *data, size_t len, int no_checksums,
                               tome_pack_t **out);
/* A pack object over the manifest just written to path (tome_pack_build_open),
 * without reading it back: takes es[0..n) (on success and on failure). Text
 * and ids are read from the file on first use, checked as by tome_pack_open. */
tome_status tome_pack_adopt(const char *path, const tome_pack_meta *meta, tome_pack_entry *es, size_t n,
                            uint64_t n_tokens, uint64_t n_text_bytes, const uint8_t content[16],
                            const char tokenizer_hash[33], tome_pack_t **out);

/* ---------------------------------------------------------- arena (pack_arena.c) */
/* Memory handed out from 32 MiB huge-page-advised chunks, all freed at once
 * (the ids kept between reading and writing). take: thread-safe, 64-byte
 * aligned, NULL when out of memory. */
typedef struct tome_pack_arena tome_pack_arena;
tome_status tome_pack_arena_new(tome_pack_arena **out);
void *tome_pack_arena_take(tome_pack_arena *a, size_t bytes);
void tome_pack_arena_free(tome_pack_arena *a); /* NULL ok */

/* ---------------------------------------------------------- decode (pack_decode.c) */
tome_status tome_pack_toktab_open(const tome_tokenizer_t *tok, tome_pack_toktab **out);
void tome_pack_toktab_free(tome_pack_toktab *t); /* NULL ok */
/* The line table of the block of ids[0..n_ids) (*line_off / *line_tok,
 * malloc'd, *n_rlines entries; set even on error, for the caller to free),
 * the length of its text, and its first and last TOME_PACK_EDGE bytes (for
 * boundary checks), without writing the text. */
#define TOME_PACK_EDGE 64
typedef struct tome_pack_edges {
    char head[TOME_PACK_EDGE], tail[TOME_PACK_EDGE];
    size_t head_len, tail_len;
} tome_pack_edges;
tome_status tome_pack_decode_lines(const tome_pack_toktab *tt, const int32_t *ids, size_t n_ids, uint64_t *text_len,
                                   uint32_t **line_off, uint32_t **line_tok, uint32_t *n_rlines,
                                   tome_pack_edges *ed);
/* Number of ids in the table; the bytes of one (NULL when out of range). */
size_t tome_pack_toktab_size(const tome_pack_toktab *tt);
const char *tome_pack_toktab_bytes(const tome_pack_toktab *tt, int32_t id, size_t *len);

/* ---------------------------------------------------------- render */
/* Renders block pieces for format fmt. All append to out. */
tome_status tome_pack_render_open(tome_buf *out, uint32_t fmt, uint64_t n_files);
tome_status tome_pack_render_close(tome_buf *out, uint32_t fmt);
/* Tree of the entries all[order[0..n)] (order sorted by path), each marked
 * with its status when not full. */
tome_status tome_pack_render_tree(tome_buf *out, uint32_t fmt, const tome_pack_entry *all,
                                  const size_t *order, size_t n);

/* Per-line description of a file's content for rendering. */
typedef struct tome_render_line {
    const char *text;  /* line bytes, without '\n' */
    size_t len;
    uint32_t oline;    /* original line number (1-based) */
} tome_render_line;

/* Renders one file block: header, lines (with optional "N| " prefixes; outline
 * blocks always carry numbers), page markers before lines that start an
 * anchor of kind page, footer. Fills runs (malloc'd) for the line table. */
typedef struct tome_render_file {
    const char *path;
    uint32_t status;            /* FULL or OUTLINE */
    uint64_t n_lines;           /* original lines */
    const char *kind;           /* "pdf", ... or NULL */
    const tome_render_line *lines;
    size_t n;
    const tome_pack_anchor *anchors; /* sorted by oline; page markers */
    size_t n_anchors;
    int line_numbers;
} tome_render_file;

tome_status tome_pack_render_file(tome_buf *out, uint32_t fmt, const tome_render_file *f,
                                  tome_pack_run **runs, uint32_t *n_runs);
tome_status tome_pack_render_alias(tome_buf *out, uint32_t fmt, const char *path, const char *target);

/* Display path: escaped (tome_path_escape) then, for xml, attribute-escaped. */
tome_status tome_pack_display_path(tome_buf *out, const char *path, int xml_attr);

/* Priority tier of a file path (lower first): the first --priority glob
 * (prio, NULL-terminated, may be NULL) it matches, else the number of globs
 * plus a default tier from the path (ingest/pack_priority.c). */
int tome_pack_path_tier(const char *path, const char *const *prio);

#endif /* TOME_PACK_IMPL_H */
