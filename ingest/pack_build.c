/*
 * ingest/pack_build.c — tome_pack_build: sources → one exact, addressable pack.
 *
 * Phases:
 *   1. scan     walk every source (tome_walk for directories, a plain file is
 *               one item) into a list of items: display path, openable path,
 *               size, or a skip reason from the walker.
 *   2. prepare  in parallel (tome_parallel_for over disk items): read, expand
 *               archives (members become items of their own), extract
 *               documents, detect the encoding and convert to UTF-8, redact,
 *               hash the source bytes, render the full block (tokenized) and
 *               the outline block (kept as text; tokenized in plan only for
 *               files the budget degrades; made now only for archive members
 *               and, when the input looks over budget, the lowest-priority
 *               files (mark_early_outlines): plan reads any other file it
 *               degrades again). Over budget, the lowest-priority files
 *               whose estimated tokens cover the estimated excess are counted
 *               at least (tome_tokenizer_count_at_least: pieces, no BPE)
 *               instead of tokenized: they are most likely degraded.
 *               Full-block ids are kept (copied into
 *               pack_arena.c's chunks) while the cache holds fewer than
 *               CACHE_IDS ids (archive members always; disk files are re-read
 *               later otherwise); the text itself is dropped (it is the
 *               decoding of the ids).
 *   3. plan     sort by (priority tier, path, source order); make paths
 *               unique (later entries of one name: "name#2", skipped); dedup
 *               by content hash + encoding (the
 *               first copy in order is stored, later copies become aliases);
 *               fit the budget: degrade from the lowest priority upwards,
 *               full → outline (→ listed when a file has no outline), then
 *               outline → listed, then aliases → listed, re-rendering the tree
 *               until the total fits. A file counted at least adds its lower
 *               bound to the sums, so "over budget" is certain; wherever the
 *               bound leaves a decision in doubt (the total may fit, is the
 *               outline smaller, would it fit again) the file is read and
 *               tokenized first (count_exactly): the pack is the one exact
 *               counts give, and the manifest flags the bounds left.
 *   4. emit     open block + tree, then file blocks in order, in batches:
 *               blocks whose ids are not cached are re-read, re-rendered and
 *               re-tokenized in parallel; each block's line table is derived
 *               from its ids (token byte lengths); the ids stream into the
 *               .tpk writer (the text is stored as the dictionary of the
 *               tokens used); then the close block and the manifest.
 *
 * Determinism: nothing in the output depends on thread scheduling or time:
 * items are sorted before anything is written, and blocks are tokenized
 * independently (every block boundary is a safe split, checked here).
 *
 * Memory: per file metadata + cached ids (bounded) + one batch of blocks.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "ingest/doc_impl.h"
#include "ingest/ingest_impl.h"
#include "ingest/pack_impl.h"

#define CACHE_IDS (24u << 20)       /* full-block ids kept from prepare to emit */
#define DEFAULT_MAX_FILE (16u << 20) /* bytes */
#define MAX_PIECE (256u << 10)       /* bytes in one pre-tokenizer piece */
#define EMIT_BATCH 256

typedef struct item {
    char *path;     /* display path */
    char *fs_path;  /* openable path (disk files), NULL for archive members */
    uint64_t size;
    char *skip;     /* skip reason or NULL */
    char *link_to;  /* archive members: a hard link to this member's path */
    int linked;     /* a hard link resolved to its target: an alias of it */
    int container;  /* an archive that was expanded: not in the manifest */
    int member;     /* from inside an archive */
    int named;      /* a file named directly as a source (not found by a walk) */
    uint64_t seq;   /* (scan index + 1) << 32 | member ordinal: ties between equal paths */
    uint32_t n_members; /* containers: members reported so far */
    int tier;
    int tier_known;         /* tier set before reading (mark_early_outlines) */
    int outl_early;         /* outline made while reading (lowest priorities when over budget) */
    int lazy;               /* most likely degraded: full block counted at least, not tokenized (mark_early_outlines) */
    int full_lazy;          /* full_tokens is still a lower bound (tome_tokenizer_count_at_least) */
    int counted_later;      /* was full_lazy, counted exactly by plan */
    int full_in_arena;      /* full.ids lie in the builder's arena: not freed alone */
    /* prepare */
    int ok;                 /* textual, processed */
    uint8_t hash[16];
    const char *encoding;
    uint64_t n_lines;
    uint32_t n_redact;
    tome_redaction *redact; /* kinds are static strings */
    tome_pack_anchor *anchors;
    uint32_t n_anchors;
    tome_tokens_t full;     /* cached full-block ids (may be empty when evicted) */
    int full_cached;
    tome_pack_run *full_runs;
    uint32_t n_full_runs;
    uint64_t full_tokens;
    tome_tokens_t outl;     /* outline-block ids (may be empty when evicted) */
    uint64_t outl_tokens;   /* tokens of the outline block; 0: no outline (or not yet counted) */
    int outl_cached;
    char *outl_text;        /* the rendered outline block until it is tokenized (plan) */
    size_t outl_len;
    int outl_reread;        /* has an outline that was not kept (cache full): read again */
    int outl_changed;       /* ... and the file had changed when read again: none */
    tome_pack_run *outl_runs;
    uint32_t n_outl_runs;
    tome_tokens_t alias;    /* alias-block ids */
    /* plan */
    uint32_t status;
    int64_t alias_of;
    int64_t dup_of;         /* the stored copy for duplicates, even when listed */
    const char *degrade;    /* static reason for degraded files */
} item;

typedef struct builder {
    const tome_pack_opts *o;
    const tome_tokenizer_t *tok; /* o->tok, or the one loaded from o->tok_path */
    uint32_t fmt;
    item **items;
    size_t n, cap;
    pthread_mutex_t mu;
    size_t cached_ids;        /* under mu */
    int outlines_late;        /* the budget will likely not be reached: disk files' outlines wait for plan */
    uint64_t bytes_read;      /* under mu */
    uint64_t done;            /* under mu (progress) */
    double last_progress;
    const char *cur_source_prefix;
    tome_pack_arena *ar;      /* kept full-block ids (pack_arena.c) */
} builder;

/* Lets go of the full block's ids (in the arena they stay until the end). */
static void full_release(item *it)
{
    if (it->full_in_arena) it->full = (tome_tokens_t){0};
    else tome_tokens_free(&it->full);
    it->full_in_arena = 0;
}

static void item_free(item *it)
{
    if (!it) return;
    free(it->path);
    free(it->fs_path);
    free(it->skip);
    free(it->link_to);
    free(it->redact);
    free(it->anchors);
    full_release(it);
    free(it->full_runs);
    tome_tokens_free(&it->outl);
    free(it->outl_runs);
    free(it->outl_text);
    tome_tokens_free(&it->alias);
    free(it);
}

void tome_pack_opts_default(tome_pack_opts *o)
{
    memset(o, 0, sizeof *o);
    o->format = TOME_PACK_XML;
    o->budget = TOME_PACK_DEFAULT_BUDGET;
}

static void progress(builder *b, const char *phase, uint64_t done, uint64_t total, int force)
{
    if (!b->o->progress) return;
    double now = tome_now();
    if (!force && now - b->last_progress < 0.05) return;
    b->last_progress = now;
    tome_pack_progress p = {phase, done, total};
    b->o->progress(b->o->progress_ud, &p);
}

/* ------------------------------------------------------------ priority tiers */
/* ------------------------------------------------------------ items */
static tome_status add_item(builder *b, const char *path, const char *fs_path, uint64_t size, const char *skip,
                            int member, item **out)
{
    item *it = calloc(1, sizeof *it);
    if (!it) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    it->path = strdup(path);
    it->fs_path = fs_path ? strdup(fs_path) : NULL;
    it->skip = skip ? strdup(skip) : NULL;
    it->size = size;
    it->member = member;
    it->alias_of = -1;
    it->dup_of = -1;
    if (!it->path || (fs_path && !it->fs_path) || (skip && !it->skip)) {
        item_free(it);
        return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    }
    pthread_mutex_lock(&b->mu);
    if (b->n == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 256;
        item **ni = realloc(b->items, nc * sizeof *ni);
        if (!ni) {
            pthread_mutex_unlock(&b->mu);
            item_free(it);
            return tome_set_error(TOME_ERR_NOMEM, "out of memory");
        }
        b->items = ni;
        b->cap = nc;
    }
    b->items[b->n++] = it;
    it->seq = (uint64_t)b->n << 32; /* members: replaced by the caller */
    pthread_mutex_unlock(&b->mu);
    if (out) *out = it;
    return TOME_OK;
}

typedef struct walk_ctx {
    builder *b;
    const char *prefix; /* "" or "name/" */
} walk_ctx;

/* True when fs_path is one of the files to leave out (same inode, checked
 * only when the base names match, so most files cost no stat). */
static int left_out(const builder *b, const char *fs_path)
{
    const char *const *lo = b->o->leave_out;
    if (!lo) return 0;
    const char *base = strrchr(fs_path, '/');
    base = base ? base + 1 : fs_path;
    for (size_t k = 0; lo[k]; k++) {
        const char *lb = strrchr(lo[k], '/');
        lb = lb ? lb + 1 : lo[k];
        struct stat x, y;
        if (!strcmp(base, lb) && stat(fs_path, &x) == 0 && stat(lo[k], &y) == 0 && x.st_dev == y.st_dev &&
            x.st_ino == y.st_ino)
            return 1;
    }
    return 0;
}

static tome_status on_walk(void *ud, const tome_walk_entry *e)
{
    walk_ctx *w = ud;
    if (left_out(w->b, e->fs_path)) return TOME_OK;
    tome_buf p = {0};
    TOME_FORWARD(tome_buf_appendf(&p, "%s%s", w->prefix, e->rel_path));
    tome_status st = add_item(w->b, p.data, e->fs_path, e->size, e->skip_reason, 0, NULL);
    tome_buf_free(&p);
    return st;
}

/* ------------------------------------------------------------ processing one file */
typedef struct proc {
    tome_buf text;             /* UTF-8 content */
    tome_anchor *anchors;      /* document anchors (byte offsets) */
    size_t n_anchors;
    uint64_t *heads;           /* heading offsets apart from anchors (PDF bookmarks) */
    size_t n_heads;
    tome_redaction *redact;
    size_t n_redact;
    const char *encoding;
    const char *kind;          /* document kind name or NULL */
    tome_render_line *lines;
    size_t n_lines;
} proc;

static void proc_free(proc *p)
{
    tome_buf_free(&p->text);
    free(p->anchors);
    free(p->heads);
    free(p->redact);
    free(p->lines);
    memset(p, 0, sizeof *p);
}

static const char *doc_kind_name(tome_doc_kind k)
{
    switch (k) {
    case TOME_DOC_PDF: return "pdf";
    case TOME_DOC_DOCX: return "docx";
    case TOME_DOC_ODT: return "odt";
    case TOME_DOC_HTML: return "html";
    default: return NULL;
    }
}

/* Turns source bytes into UTF-8 lines. Returns TOME_OK with *skip set (malloc'd)
 * when the file is not packable; an error status only for out-of-memory. */
/* Whether an HTML file is packed as extracted text (tome_pack_html). */
static int html_as_text(const builder *b, const item *it)
{
    switch (b->o->html) {
    case TOME_PACK_HTML_SOURCE: return 0;
    case TOME_PACK_HTML_TEXT: return 1;
    default: return it->member || it->named;
    }
}

static tome_status add_line(proc *p, size_t *cap, size_t s, size_t e)
{
    if (p->n_lines == *cap) {
        size_t nc = *cap * 2;
        tome_render_line *l = realloc(p->lines, nc * sizeof *l);
        if (!l) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
        p->lines = l;
        *cap = nc;
    }
    p->lines[p->n_lines] = (tome_render_line){p->text.data + s, e - s, (uint32_t)(p->n_lines + 1)};
    p->n_lines++;
    return TOME_OK;
}

/* The text's lines (split at '\n'; a last line without one counts), found
 * 16 bytes at a time where SSE2 is there: one memchr call a line cost more
 * than the scan on code of ~30-byte lines. */
static tome_status split_lines(proc *p)
{
    const char *t = p->text.data;
    size_t len = p->text.len, cap = len / 32 + 16, s = 0, i = 0;
    p->n_lines = 0;
    p->lines = malloc(cap * sizeof *p->lines);
    if (!p->lines) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
#if defined(__SSE2__)
    const __m128i nl = _mm_set1_epi8('\n');
    for (; i + 16 <= len; i += 16) {
        unsigned m = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(const void *)(t + i)), nl));
        for (; m; m &= m - 1) {
            size_t e = i + (size_t)__builtin_ctz(m);
            TOME_FORWARD(add_line(p, &cap, s, e));
            s = e + 1;
        }
    }
#endif
    for (const char *q; i < len && (q = memchr(t + i, '\n', len - i)) != NULL; i = s) {
        size_t e = (size_t)(q - t);
        TOME_FORWARD(add_line(p, &cap, s, e));
        s = e + 1;
    }
    if (s < len) TOME_FORWARD(add_line(p, &cap, s, len));
    return TOME_OK;
}

static tome_status process_bytes(const builder *b, const item *it, const uint8_t *data, size_t len, proc *p,
                                 char **skip)
{
    *skip = NULL;
    const char *path = it->path;
    tome_doc_kind dk = tome_doc_sniff(path, data, len);
    if (dk == TOME_DOC_HTML && !html_as_text(b, it)) dk = TOME_DOC_NONE; /* markup, packed as text */
    if (dk != TOME_DOC_NONE) {
        tome_doc_text d = {0};
        tome_status st = tome_doc_extract(dk, path, data, len, &d);
        if (st) {
            if (st == TOME_ERR_NOMEM) return st;
            tome_buf r = {0};
            const char *why = tome_last_error();
            size_t plen = strlen(path);
            if (strncmp(why, path, plen) == 0 && why[plen] == ':' && why[plen + 1] == ' ')
                why += plen + 2; /* the entry is this path already: "docx: word/document.xml is ..." */
            tome_buf_appendf(&r, "%s: %s", doc_kind_name(dk), why);
            *skip = r.data ? r.data : strdup("document could not be read");
            tome_doc_text_free(&d);
            return TOME_OK;
        }
        p->text = d.text;
        d.text = (tome_buf){0};
        p->anchors = d.anchors;
        p->n_anchors = d.n_anchors;
        d.anchors = NULL;
        p->heads = d.heads;
        p->n_heads = d.n_heads;
        d.heads = NULL;
        tome_doc_text_free(&d);
        p->kind = doc_kind_name(dk);
        p->encoding = p->kind;
    } else {
        tome_encoding enc = tome_text_detect(data, len);
        const char *office = enc == TOME_ENC_BINARY ? tome_doc_unsupported_office(data, len) : NULL;
        if (office) {
            tome_buf r = {0};
            tome_buf_appendf(&r, "unsupported document: %s; tome extracts text from PDF, DOCX, ODT and HTML", office);
            *skip = r.data;
            return *skip ? TOME_OK : tome_set_error(TOME_ERR_NOMEM, "out of memory");
        }
        if (enc == TOME_ENC_BINARY) {
            *skip = strdup(tome_text_legacy_8bit(data, len)
                               ? "unsupported text encoding (not UTF-8, UTF-16 or Latin-1; e.g. Shift-JIS, "
                                 "GBK, KOI8-R): convert it to UTF-8"
                               : "binary");
            return *skip ? TOME_OK : tome_set_error(TOME_ERR_NOMEM, "out of memory");
        }
        /* valid UTF-8 without a BOM (tome_text_detect checked every byte)
         * is copied as is; the rest is converted */
        tome_status st = enc == TOME_ENC_UTF8 ? tome_buf_append(&p->text, data, len)
                                              : tome_text_to_utf8(data, len, enc, &p->text);
        if (st) {
            if (st == TOME_ERR_NOMEM) return st;
            tome_buf r = {0};
            tome_buf_appendf(&r, "bad %s text: %s", tome_encoding_name(enc), tome_last_error());
            *skip = r.data ? r.data : strdup("bad text");
            return TOME_OK;
        }
        p->encoding = tome_encoding_name(enc);
    }
    if (!p->text.data) TOME_FORWARD(tome_buf_append(&p->text, "", 0));
    /* Classic Mac OS line ends: a text whose only line breaks are '\r' would
     * be one line; its '\r's become '\n' so its lines can be cited as an
     * editor numbers them ('\r\n' and a stray '\r' next to '\n' stay). */
    if (!p->kind && p->text.len && !memchr(p->text.data, '\n', p->text.len))
        for (char *c = memchr(p->text.data, '\r', p->text.len); c;
             c = memchr(c + 1, '\r', p->text.len - (size_t)(c + 1 - p->text.data)))
            *c = '\n';
    if (!b->o->no_redact) TOME_FORWARD(tome_redact(path, &p->text, &p->redact, &p->n_redact));
    return split_lines(p);
}

/* Document anchors as original line numbers. */
static tome_status anchors_to_lines(const proc *p, tome_pack_anchor **out, uint32_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    if (!p->n_anchors) return TOME_OK;
    tome_pack_anchor *a = malloc(p->n_anchors * sizeof *a);
    if (!a) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    size_t li = 0;
    uint32_t n = 0;
    for (size_t k = 0; k < p->n_anchors; k++) {
        uint64_t off = p->anchors[k].offset;
        while (li + 1 < p->n_lines && (uint64_t)(p->lines[li + 1].text - p->text.data) <= off) li++;
        uint32_t oline = p->n_lines ? p->lines[li].oline : 1;
        if (n && a[n - 1].oline > oline) continue;
        a[n++] = (tome_pack_anchor){oline, p->anchors[k].kind, p->anchors[k].number};
    }
    *out = a;
    *n_out = n;
    return TOME_OK;
}

/* p reallocated to n elements (p itself when n is 0 or realloc fails). */
static uint32_t *shrink_u32(uint32_t *p, size_t n)
{
    uint32_t *q = p && n ? realloc(p, n * sizeof *q) : NULL;
    return q ? q : p;
}

static tome_status encode_block(const builder *b, const tome_buf *text, tome_tokens_t *ids)
{
    /* one piece (a run of spaces, letters or punctuation without a break)
     * over MAX_PIECE fails: its BPE would cost ~0.5 s and ~40 bytes of memory
     * per byte; the file is skipped with that reason (prepare_text) */
    tome_encode_opts eo = {.max_piece_bytes = MAX_PIECE};
    tome_status st = tome_tokenizer_encode(b->tok, text->data ? text->data : "", text->len, &eo, ids);
    /* The encoder reserves ahead (at least 256 ids, then doubling). Blocks are
     * kept until the pack is written, so the slack is given back: 100,000
     * small files held ~1 KB each of unused ids (130 MB of peak RSS). */
    if (!st && ids->cap - ids->n > 64 && ids->cap - ids->n > ids->n / 8) {
        int32_t *fit = realloc(ids->ids, (ids->n ? ids->n : 1) * sizeof *fit);
        if (fit) {
            ids->ids = fit;
            ids->cap = ids->n ? ids->n : 1;
        }
    }
    return st;
}

/* Tokenizes an outline block. An outline line can hold a piece over
 * MAX_PIECE where the full block did not (a long line gets a prefix): then
 * the file has no outline (*has = 0), which is no reason to fail the pack. */
static tome_status encode_outline(const builder *b, const tome_buf *blk, tome_tokens_t *ids, int *has)
{
    tome_status st = encode_block(b, blk, ids);
    *has = st != TOME_ERR_LIMIT;
    if (st != TOME_ERR_LIMIT) return st;
    tome_tokens_free(ids);
    return TOME_OK;
}

static tome_status render_full(const builder *b, const item *it, const proc *p, tome_buf *out, tome_pack_run **runs,
                               uint32_t *n_runs)
{
    tome_render_file rf = {it->path, TOME_FILE_FULL, p->n_lines, p->kind, p->lines, p->n_lines,
                           it->anchors, it->n_anchors, b->o->line_numbers};
    return tome_pack_render_file(out, b->fmt, &rf, runs, n_runs);
}

/* Renders the outline block of a processed file into blk (replacing the
 * item's outline runs); *has = 0 when the file has no usable outline. */
static tome_status render_outline(const builder *b, item *it, const proc *p, tome_buf *blk, int *has)
{
    tome_outline_line *ol = NULL;
    size_t n_ol = 0;
    *has = 0;
    if (p->kind && p->n_anchors) /* a document: its headings, or each page's first line */
        TOME_FORWARD(tome_outline_doc(p->text.data, p->text.len, p->anchors, p->n_anchors, p->heads, p->n_heads,
                                      &ol, &n_ol));
    if (!n_ol) {
        free(ol);
        ol = NULL;
        TOME_FORWARD(tome_outline(it->path, p->text.data, p->text.len, &ol, &n_ol));
    }
    tome_render_line *olines = n_ol ? malloc(n_ol * sizeof *olines) : NULL;
    tome_status st = TOME_OK;
    if (n_ol && !olines) st = tome_set_error(TOME_ERR_NOMEM, "out of memory");
    for (size_t k = 0; k < n_ol && !st; k++) {
        if (ol[k].offset > p->text.len || ol[k].len > p->text.len - ol[k].offset || ol[k].line == 0 ||
            ol[k].line > p->n_lines || (k && ol[k].line <= ol[k - 1].line)) {
            n_ol = 0; /* an outline we cannot map back is no outline */
            break;
        }
        olines[k] = (tome_render_line){p->text.data + ol[k].offset, ol[k].len, ol[k].line};
        /* a line of the outline never spans lines in the pack */
        const char *nl = memchr(olines[k].text, '\n', olines[k].len);
        if (nl) olines[k].len = (size_t)(nl - olines[k].text);
    }
    if (!st && n_ol) {
        tome_render_file rf = {it->path, TOME_FILE_OUTLINE, p->n_lines, p->kind, olines, n_ol,
                               it->anchors, it->n_anchors, 1};
        free(it->outl_runs);
        it->outl_runs = NULL;
        st = tome_pack_render_file(blk, b->fmt, &rf, &it->outl_runs, &it->n_outl_runs);
        if (!st) *has = 1;
    }
    free(ol);
    free(olines);
    return st;
}

/* A block with a piece over MAX_PIECE bytes (tome_last_error says which):
 * the file is skipped with that reason. */
static tome_status not_tokenized(item *it)
{
    char why[400];
    const char *m = tome_last_error(), *piece = strstr(m, "a piece of");
    snprintf(why, sizeof why, "not tokenized: %s", piece ? piece : m);
    tome_tokens_free(&it->full);
    it->full_tokens = 0;
    it->skip = strdup(why);
    return it->skip ? TOME_OK : tome_set_error(TOME_ERR_NOMEM, "out of memory");
}

/* Whether ids (or text counted as cost ids) of a file may stay in memory
 * until it is written: the cache holds up to CACHE_IDS (archive members
 * always: they cannot be read again alone). */
static int cache_room(builder *b, const item *it, size_t cost)
{
    pthread_mutex_lock(&b->mu);
    int keep = it->member || b->cached_ids + cost <= (b->o->cache_ids ? b->o->cache_ids : CACHE_IDS);
    if (keep) b->cached_ids += cost;
    pthread_mutex_unlock(&b->mu);
    return keep;
}

/* Everything prepare keeps about one processed file. */
static tome_status prepare_text(builder *b, item *it, const uint8_t *data, size_t len)
{
    proc p = {0};
    char *skip = NULL;
    tome_buf blk = {0};
    tome_status st = process_bytes(b, it, data, len, &p, &skip);
    if (st || skip) {
        it->skip = skip;
        goto done;
    }
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(data, len));
    memcpy(it->hash, c.digest, 16);
    it->encoding = p.encoding;
    it->n_lines = p.n_lines;
    it->redact = p.redact;
    it->n_redact = (uint32_t)p.n_redact;
    p.redact = NULL;
    if ((st = anchors_to_lines(&p, &it->anchors, &it->n_anchors))) goto done;
    /* full block */
    if ((st = render_full(b, it, &p, &blk, &it->full_runs, &it->n_full_runs))) goto done;
    if (it->lazy && !p.kind) {
        /* most likely degraded: counted at least (a third of the cost of
         * tokenizing), exactly only if plan needs the count */
        tome_encode_opts eo = {.max_piece_bytes = MAX_PIECE};
        st = tome_tokenizer_count_at_least(b->tok, blk.data ? blk.data : "", blk.len, &eo, &it->full_tokens);
        if (st == TOME_ERR_LIMIT) {
            st = not_tokenized(it);
            goto done;
        }
        if (st) goto done;
        it->full_lazy = 1;
        goto outline;
    }
    if ((st = encode_block(b, &blk, &it->full)) == TOME_ERR_LIMIT) {
        st = not_tokenized(it);
        goto done;
    }
    if (st) goto done;
    it->full_tokens = it->full.n;
    int keep = cache_room(b, it, it->full.n);
    if (keep) it->full_cached = 1;
    else tome_tokens_free(&it->full);
    int32_t *kept = keep && it->full.n && b->ar ? tome_pack_arena_take(b->ar, it->full.n * sizeof *kept) : NULL;
    if (kept) {
        memcpy(kept, it->full.ids, it->full.n * sizeof *kept);
        free(it->full.ids);
        it->full.ids = kept;
        it->full.cap = it->full.n;
        it->full_in_arena = 1;
    }
outline:
    /* outline block: not now when the budget will likely not be reached
     * (plan reads the file again in the rare case it is) */
    if ((b->outlines_late || !it->outl_early) && !it->member) {
        it->outl_reread = 1;
        it->ok = 1;
        goto done;
    }
    blk.len = 0;
    int has_outline = 0;
    if ((st = render_outline(b, it, &p, &blk, &has_outline))) goto done;
    if (has_outline) { /* kept as text: tokenized only if the budget needs it (plan) */
        keep = cache_room(b, it, blk.len / 4 + 1); /* counted like ids (about 4 bytes per token) */
        if (!keep) {
            it->outl_reread = 1;
            it->ok = 1;
            goto done;
        }
        it->outl_text = malloc(blk.len + 1); /* exact size: the render buffer is freed */
        if (!it->outl_text) {
            st = tome_set_error(TOME_ERR_NOMEM, "out of memory");
            goto done;
        }
        memcpy(it->outl_text, blk.data, blk.len + 1);
        it->outl_len = blk.len;
    }
    it->ok = 1;
done:
    tome_buf_free(&blk);
    proc_free(&p);
    return st;
}

typedef struct member_ctx {
    builder *b;
    item *container;
} member_ctx;

static tome_status on_member(void *ud, const tome_archive_entry *e)
{
    member_ctx *mc = ud;
    item *it = NULL, *c = mc->container;
    if (!strcmp(e->path, c->path)) {
        /* the reader's entry for the archive itself (corrupt, truncated,
         * stopped by a cap): the archive's own entry carries the reason */
        char *r = strdup(e->skip_reason ? e->skip_reason : "bad archive");
        if (!r) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
        free(c->skip);
        c->skip = r;
        c->container = 0;
        return TOME_OK;
    }
    TOME_FORWARD(add_item(mc->b, e->path, NULL, e->len, e->skip_reason, 1, &it));
    it->seq = (c->seq & ~(uint64_t)UINT32_MAX) | ++c->n_members;
    if (e->link_to && !(it->link_to = strdup(e->link_to))) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    if (e->skip_reason) return TOME_OK;
    return prepare_text(mc->b, it, e->data, e->len);
}

/* Reads a disk source whole (at most the file cap). A source that cannot be
 * read is not an error: *skip gets the reason, which names what failed and
 * why but not the path (the entry's own path says which file; an absolute
 * path would make the pack depend on where the tree lies). */
static tome_status read_source(const builder *b, const item *it, tome_buf *data, char **skip)
{
    *skip = NULL;
    uint64_t cap = b->o->max_file_bytes ? b->o->max_file_bytes : DEFAULT_MAX_FILE;
    tome_buf r = {0};
    char eb[256];
    struct stat st;
    data->len = 0;
    int fd = tome_pack_open_source(it->fs_path);
    if (fd < 0) {
        tome_buf_appendf(&r, "unreadable: %s", tome_pack_errno_text(errno, eb, sizeof eb));
        goto skipped;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        tome_buf_appendf(&r, "not a regular file (changed since the walk)");
        goto skipped;
    }
    if ((uint64_t)st.st_size > cap) {
        tome_buf_appendf(&r, "too large: over %llu bytes", (unsigned long long)cap);
        goto skipped;
    }
    if (tome_buf_reserve(data, (size_t)st.st_size + 1)) goto nomem;
    for (;;) {
        if (data->cap - data->len < 2 && tome_buf_reserve(data, 65536)) goto nomem;
        ssize_t n = read(fd, data->data + data->len, data->cap - data->len - 1);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            tome_buf_appendf(&r, "unreadable: read failed at byte %zu: %s", data->len,
                             tome_pack_errno_text(errno, eb, sizeof eb));
            goto skipped;
        }
        if (n == 0) break;
        data->len += (size_t)n;
        if (data->len > cap) {
            tome_buf_appendf(&r, "too large: over %llu bytes", (unsigned long long)cap);
            goto skipped;
        }
    }
    data->data[data->len] = '\0';
    close(fd);
    return TOME_OK;
nomem:
    if (fd >= 0) close(fd);
    return tome_set_error(TOME_ERR_NOMEM, "out of memory reading %s", it->path);
skipped:
    if (fd >= 0) close(fd);
    data->len = 0;
    *skip = r.data;
    return r.data ? TOME_OK : tome_set_error(TOME_ERR_NOMEM, "out of memory");
}

typedef struct prep_ctx {
    builder *b;
    item **work;
    size_t n;
} prep_ctx;

static tome_status prepare_one(void *ctx, size_t i, int thread_index)
{
    prep_ctx *pc = ctx;
    builder *b = pc->b;
    item *it = pc->work[i];
    tome_buf data = {0};
    char *skip = NULL;
    tome_status st = read_source(b, it, &data, &skip);
    if (st) return st;
    if (skip) {
        it->skip = skip;
    } else {
        pthread_mutex_lock(&b->mu);
        b->bytes_read += data.len;
        pthread_mutex_unlock(&b->mu);
        const uint8_t *d = (const uint8_t *)(data.data ? data.data : "");
        if (tome_archive_sniff(d, data.len)) {
            tome_archive_limits lim;
            tome_archive_limits_default(&lim);
            member_ctx mc = {b, it};
            it->container = 1;
            st = tome_archive_read(it->path, d, data.len, &lim, 0, on_member, &mc);
            if (st && st != TOME_ERR_NOMEM) { /* unusable archive: listed with the reason */
                tome_buf r = {0};
                tome_buf_appendf(&r, "bad archive: %s", tome_last_error());
                it->container = 0;
                free(it->skip);
                it->skip = r.data ? r.data : strdup("bad archive");
                st = TOME_OK;
            }
        } else {
            st = prepare_text(b, it, d, data.len);
        }
    }
    tome_buf_free(&data);
    pthread_mutex_lock(&b->mu);
    b->done++;
    if (thread_index == 0) progress(b, "read", b->done, pc->n, 0);
    pthread_mutex_unlock(&b->mu);
    return st;
}

static int cmp_size_desc(const void *x, const void *y)
{
    const item *a = *(item *const *)x, *b = *(item *const *)y;
    if (a->size != b->size) return a->size > b->size ? -1 : 1;
    return strcmp(a->path, b->path);
}

/* ------------------------------------------------------------ plan */
static int cmp_items(const void *x, const void *y);

/* Every path in the manifest is unique (cite and locate name files by path).
 * Items are sorted by (tier, path, seq), so copies of one path are adjacent
 * and in source order: an archive that holds two members of one name (a tar
 * appended to, a damaged or crafted zip) or a file reached from two sources.
 * The first keeps the path; each later one is renamed "path#2", "path#3", ...
 * and recorded as skipped, then the items are sorted again. */
static tome_status unique_paths(item **items, size_t n)
{
    int renamed = 0;
    for (size_t i = 1; i < n; i++) {
        size_t k = 1;
        while (i < n && !strcmp(items[i]->path, items[i - k]->path)) {
            item *it = items[i];
            tome_buf p = {0}, r = {0};
            tome_status st = tome_buf_appendf(&p, "%s#%zu", it->path, k + 1);
            if (!st) st = tome_buf_appendf(&r, "duplicate path: entry %zu named '%s' (the first one is packed)",
                                           k + 1, it->path);
            if (st) {
                tome_buf_free(&p);
                tome_buf_free(&r);
                return st;
            }
            free(it->path);
            it->path = p.data;
            free(it->skip);
            it->skip = r.data;
            free(it->link_to); /* a later link of that name is not one either */
            it->link_to = NULL;
            it->ok = 0;
            renamed = 1;
            i++;
            k++;
        }
    }
    if (renamed) qsort(items, n, sizeof *items, cmp_items);
    return TOME_OK;
}

static int cmp_items(const void *x, const void *y)
{
    const item *a = *(item *const *)x, *b = *(item *const *)y;
    if (a->tier != b->tier) return a->tier < b->tier ? -1 : 1;
    int c = strcmp(a->path, b->path);
    if (c) return c;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static int cmp_paths(const void *x, const void *y, void *ctx)
{
    item **items = ctx;
    return strcmp(items[*(const size_t *)x]->path, items[*(const size_t *)y]->path);
}

/* Dedup key: the source bytes' hash and how they were read (the same bytes
 * packed as HTML markup and as extracted HTML text are different content). */
static int same_content(const item *a, const item *b)
{
    int c = memcmp(a->hash, b->hash, 16);
    if (c) return c;
    return strcmp(a->encoding ? a->encoding : "", b->encoding ? b->encoding : "");
}

static int cmp_hash(const void *x, const void *y, void *ctx)
{
    item **items = ctx;
    size_t i = *(const size_t *)x, j = *(const size_t *)y;
    int c = same_content(items[i], items[j]);
    if (c) return c;
    /* a hard link has no text of its own: never the stored copy */
    if (items[i]->linked != items[j]->linked) return items[i]->linked - items[j]->linked;
    return i < j ? -1 : i > j;
}

/* The item named path, or NULL. by_path: the items' indices sorted by path. */
static item *item_named(item **items, size_t n, const size_t *by_path, const char *path)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(items[by_path[mid]]->path, path) < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && !strcmp(items[by_path[lo]]->path, path) ? items[by_path[lo]] : NULL;
}

static void set_skip(item *it, tome_buf *r)
{
    if (!r->data) return; /* (out of memory: the archive's reason stays) */
    tome_text_one_line(r->data);
    free(it->skip);
    it->skip = r->data;
    *r = (tome_buf){0};
}

/* Hard links inside archives whose target was packed become aliases of it
 * (plan's dedup then lists them like any identical copy); a link to a link
 * is followed to the member that holds the data (tar extracts such chains;
 * cpio's groups of links are reported that way). The others get a reason
 * that says why the link's content is not in the pack: its target is not a
 * file of the archive, is not packed, or the links make a loop. */
#define TOME_MAX_LINK_HOPS 64
static void resolve_links(item **items, size_t n, const size_t *by_path)
{
    for (size_t i = 0; i < n; i++) {
        item *it = items[i];
        if (!it->link_to || it->linked) continue;
        const char *name = it->link_to;
        const item *t = NULL;
        tome_buf r = {0};
        int hops = 0;
        for (;;) {
            t = item_named(items, n, by_path, name);
            if (!t) {
                (void)tome_buf_appendf(&r, "hardlink to %s, which is not a file of the archive", it->link_to);
                break;
            }
            if (t == it || ++hops > TOME_MAX_LINK_HOPS) {
                (void)tome_buf_appendf(&r, "hardlink to %s: the links make a loop", it->link_to);
                break;
            }
            if (!t->link_to) break;
            name = t->link_to; /* a link to a link */
        }
        if (r.data || !t) {
            set_skip(it, &r);
            continue;
        }
        if (!t->ok) {
            if (t->skip) { /* say why the link's content is not in the pack either */
                (void)tome_buf_appendf(&r, "hardlink to %s, which is not packed (%s)", t->path, t->skip);
                set_skip(it, &r);
            }
            continue;
        }
        memcpy(it->hash, t->hash, 16);
        it->encoding = t->encoding;
        it->size = t->size;
        it->n_lines = t->n_lines;
        it->full_tokens = t->full_tokens;
        free(it->skip);
        it->skip = NULL;
        it->linked = it->ok = 1;
    }
}

static tome_status encode_str(const builder *b, const tome_buf *s, uint64_t *n_tokens, tome_tokens_t *keep)
{
    tome_tokens_t t = {0};
    tome_status st = encode_block(b, s, &t);
    if (!st) *n_tokens = t.n;
    if (!st && keep) *keep = t;
    else tome_tokens_free(&t);
    return st;
}

/* Builds the manifest entries' view needed by the tree renderer. */
static tome_status render_tree(const builder *b, tome_pack_entry *es, const size_t *by_path, size_t n,
                               tome_buf *out)
{
    out->len = 0;
    return tome_pack_render_tree(out, b->fmt, es, by_path, n);
}

/* Reads a disk file again, checks that it is the file prepared (same
 * hash), and renders and tokenizes its full (full != 0) or outline block
 * into ids. *changed: the file is gone, unreadable or changed since, and ids
 * stay empty; *has = 0: the file has no outline (now). Only the item's own
 * runs are written: items may be redone in parallel. */
static tome_status redo_block(const builder *b, item *it, int full, tome_tokens_t *ids, int *changed, int *has)
{
    tome_buf data = {0}, blk = {0};
    char *skip = NULL;
    proc p = {0};
    *has = 1;
    tome_status st = read_source(b, it, &data, &skip);
    if (!st && !skip) {
        XXH128_canonical_t c;
        XXH128_canonicalFromHash(&c, XXH3_128bits(data.data ? data.data : "", data.len));
        if (memcmp(c.digest, it->hash, 16) != 0) skip = strdup("changed");
    }
    if (!st && !skip) st = process_bytes(b, it, (const uint8_t *)(data.data ? data.data : ""), data.len, &p, &skip);
    if (!st && !skip && full) {
        free(it->full_runs);
        it->full_runs = NULL;
        st = render_full(b, it, &p, &blk, &it->full_runs, &it->n_full_runs);
    } else if (!st && !skip) {
        st = render_outline(b, it, &p, &blk, has);
    }
    if (!st && !skip && *has) st = full ? encode_block(b, &blk, ids) : encode_outline(b, &blk, ids, has);
    *changed = skip != NULL;
    free(skip);
    tome_buf_free(&blk);
    proc_free(&p);
    tome_buf_free(&data);
    return st;
}

static uint64_t block_tokens(const item *it)
{
    switch (it->status) {
    case TOME_FILE_FULL: return it->full_tokens;
    case TOME_FILE_OUTLINE: return it->outl_tokens;
    case TOME_FILE_ALIAS: return it->alias.n;
    default: return 0;
    }
}

/* ------------------------------------------------------------ emit */
typedef struct block {
    uint64_t text_len;      /* bytes of its rendered text (stored as ids) */
    tome_pack_edges ed;     /* its first and last bytes */
    tome_tokens_t ids;      /* points into the item when borrowed */
    const tome_tokens_t *use;
    tome_pack_run *runs;    /* owned copy */
    uint32_t n_runs;
    uint32_t *line_off, *line_tok;
    uint32_t n_rlines;
    const char *changed;    /* the file changed since prepare */
} block;

static void block_clear(block *bl)
{
    tome_tokens_free(&bl->ids);
    free(bl->runs);
    free(bl->line_off);
    free(bl->line_tok);
    memset(bl, 0, sizeof *bl);
}

typedef struct emit_ctx {
    builder *b;
    item **items;
    block *blocks;
    const tome_pack_toktab *tt;
} emit_ctx;

static tome_status emit_one(void *ctx, size_t i, int thread_index)
{
    emit_ctx *ec = ctx;
    builder *b = ec->b;
    item *it = ec->items[i];
    block *bl = &ec->blocks[i];
    (void)thread_index;
    const tome_pack_run *runs = NULL;
    uint32_t n_runs = 0;
    int full = it->status == TOME_FILE_FULL;
    switch (it->status) {
    case TOME_FILE_FULL:
    case TOME_FILE_OUTLINE:
        if (full ? it->full_cached : it->outl_cached) {
            bl->use = full ? &it->full : &it->outl;
        } else { /* evicted: read again, check it is the same file, render and tokenize again */
            int changed, has;
            if (full && it->full_lazy)
                return tome_set_error(TOME_ERR_INTERNAL, "%s: a full block was never counted", it->path);
            TOME_FORWARD(redo_block(b, it, full, &bl->ids, &changed, &has));
            if (changed || !has || bl->ids.n != (full ? it->full_tokens : it->outl_tokens)) {
                bl->changed = "changed while packing";
                return TOME_OK;
            }
            bl->use = &bl->ids;
        }
        runs = full ? it->full_runs : it->outl_runs;
        n_runs = full ? it->n_full_runs : it->n_outl_runs;
        break;
    case TOME_FILE_ALIAS: bl->use = &it->alias; break;
    default: return TOME_OK;
    }
    if (n_runs) {
        bl->runs = malloc(n_runs * sizeof *bl->runs);
        if (!bl->runs) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
        memcpy(bl->runs, runs, n_runs * sizeof *runs);
        bl->n_runs = n_runs;
    }
    return tome_pack_decode_lines(ec->tt, bl->use->ids, bl->use->n, &bl->text_len, &bl->line_off, &bl->line_tok,
                                  &bl->n_rlines, &bl->ed);
}

/* Checks that text ending with prev_tail may be followed by next_head without
 * changing tokenization (a small window around the boundary suffices for the
 * pre-tokenizer, which never looks past a newline followed by punctuation). */
static tome_status check_boundary(const char *prev, size_t prev_len, const char *next, size_t next_len)
{
    if (!prev_len || !next_len) return TOME_OK;
    char win[128];
    size_t a = prev_len < 48 ? prev_len : 48, c = next_len < 48 ? next_len : 48;
    memcpy(win, prev + prev_len - a, a);
    memcpy(win + a, next, c);
    if (!tome_tokenizer_safe_split(win, a + c, a))
        return tome_set_error(TOME_ERR_INTERNAL, "pack block boundary is not a safe tokenizer split");
    return TOME_OK;
}

static tome_status set_entry(tome_pack_entry *e, const item *it)
{
    e->path = strdup(it->path);
    e->status = it->status;
    e->reason = strdup(it->status == TOME_FILE_SKIPPED ? (it->skip ? it->skip : "skipped")
                                                       : (it->degrade ? it->degrade : ""));
    e->alias_of = it->alias_of;
    e->size = it->size;
    e->n_lines = it->n_lines;
    e->full_tokens = it->full_tokens;
    e->full_lower = it->full_lazy != 0;
    e->encoding = strdup(it->encoding ? it->encoding : "");
    memcpy(e->hash, it->hash, 16);
    if (!e->path || !e->reason || !e->encoding) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    if (it->n_redact) {
        e->redact_lines = malloc(it->n_redact * sizeof *e->redact_lines);
        e->redact_kinds = calloc(it->n_redact, sizeof *e->redact_kinds);
        if (!e->redact_lines || !e->redact_kinds) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
        e->n_redact = it->n_redact;
        for (uint32_t k = 0; k < it->n_redact; k++) {
            e->redact_lines[k] = it->redact[k].line;
            e->redact_kinds[k] = strdup(it->redact[k].kind ? it->redact[k].kind : "secret");
            if (!e->redact_kinds[k]) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
        }
    }
    if (it->n_anchors) {
        e->anchors = malloc(it->n_anchors * sizeof *e->anchors);
        if (!e->anchors) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
        memcpy(e->anchors, it->anchors, it->n_anchors * sizeof *e->anchors);
        e->n_anchors = it->n_anchors;
    }
    return TOME_OK;
}

/* ------------------------------------------------------------ build */
static tome_status scan_sources(builder *b, const char *const *sources, size_t n_sources)
{
    tome_walk_opts wo = {0};
    wo.include = b->o->include;
    wo.exclude = b->o->exclude;
    wo.no_gitignore = b->o->no_gitignore;
    wo.max_file_bytes = b->o->max_file_bytes ? b->o->max_file_bytes : DEFAULT_MAX_FILE;
    for (size_t i = 0; i < n_sources; i++) {
        const char *src = sources[i];
        struct stat sb;
        if (stat(src, &sb) != 0) return tome_set_errno(TOME_ERR_NOT_FOUND, errno, "source %s", src);
        /* display prefix: none for a single directory, its name otherwise */
        size_t sl = strlen(src);
        while (sl > 1 && src[sl - 1] == '/') sl--;
        const char *base = src + sl;
        while (base > src && base[-1] != '/') base--;
        size_t bl = (size_t)(src + sl - base);
        tome_buf prefix = {0};
        tome_status st = TOME_OK;
        if (S_ISDIR(sb.st_mode)) {
            if (n_sources > 1 && bl && !(bl == 1 && base[0] == '.'))
                st = tome_buf_appendf(&prefix, "%.*s/", (int)bl, base);
            if (!st) st = tome_buf_append(&prefix, "", 0);
            walk_ctx w = {b, prefix.data};
            if (!st) st = tome_walk(src, &wo, on_walk, &w);
        } else if (S_ISREG(sb.st_mode)) {
            st = tome_buf_appendf(&prefix, "%.*s", (int)bl, base);
            item *it = NULL;
            if (!st) st = add_item(b, prefix.data, src, (uint64_t)sb.st_size, NULL, 0, &it);
            if (!st) it->named = 1;
        } else {
            st = tome_set_error(TOME_ERR_INVALID_ARG, "source %s: not a directory or regular file", src);
        }
        tome_buf_free(&prefix);
        TOME_FORWARD(st);
    }
    return TOME_OK;
}

/* Tokenizes the outline block kept by prepare (once). Outline ids are always
 * kept: only files the budget degrades get here. */
static tome_status reread_outline(const builder *b, item *it)
{
    int changed, has;
    it->outl_reread = 0;
    TOME_FORWARD(redo_block(b, it, 0, &it->outl, &changed, &has));
    it->outl_changed = changed; /* no outline */
    if (!changed && has) {
        it->outl_tokens = it->outl.n;
        it->outl_cached = 1;
    }
    return TOME_OK;
}

static tome_status ensure_outline(const builder *b, item *it)
{
    if (it->outl_reread) return reread_outline(b, it);
    if (!it->outl_text) return TOME_OK;
    tome_buf blk = {it->outl_text, it->outl_len, it->outl_len};
    int has;
    TOME_FORWARD(encode_outline(b, &blk, &it->outl, &has)); /* (none: outl_tokens 0) */
    it->outl_tokens = it->outl.n;
    it->outl_cached = 1;
    free(it->outl_text);
    it->outl_text = NULL;
    return TOME_OK;
}

typedef struct outl_ctx {
    const builder *b;
    item **work;
} outl_ctx;

static tome_status outline_one(void *ctx, size_t i, int thread_index)
{
    outl_ctx *oc = ctx;
    (void)thread_index;
    return ensure_outline(oc->b, oc->work[i]);
}

/* Before degrading: tokenizes, in parallel, the outlines of the full files
 * the budget loop will reach first (from the lowest priority up, until their
 * full tokens cover 1.5 times the excess); any further one is tokenized when the
 * loop reaches it. */
static tome_status outline_prepass(const builder *b, item **items, size_t n, uint64_t excess)
{
    item **work = malloc((n ? n : 1) * sizeof *work);
    if (!work) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    size_t m = 0;
    uint64_t covered = 0;
    for (size_t k = n; k-- > 0 && covered < excess + excess / 2;) {
        item *it = items[k];
        if (it->status != TOME_FILE_FULL) continue;
        covered += it->full_tokens;
        if (it->outl_text || it->outl_reread) work[m++] = it;
    }
    outl_ctx oc = {b, work};
    tome_status st = tome_parallel_for(m, b->o->n_threads, outline_one, &oc);
    free(work);
    return st;
}

/* The budget loop's sums. Lazily counted files (full_lazy) that are FULL add
 * their lower bound to them, so "total > budget" is certain while "total <=
 * budget" is not until they are counted. */
typedef struct plan_sums {
    uint64_t files;   /* block tokens of the files */
    uint64_t total;   /* + envelope and tree */
    size_t lazy_full; /* FULL files whose full_tokens is a lower bound */
    size_t changed;   /* files count_exactly found changed (then skipped) */
} plan_sums;

typedef struct count_ctx {
    builder *b;
    item **work;
    int *changed;
} count_ctx;

static tome_status count_one(void *ctx, size_t i, int thread_index)
{
    count_ctx *cc = ctx;
    item *it = cc->work[i];
    int has;
    tome_tokens_t ids = {0};
    (void)thread_index;
    tome_status st = redo_block(cc->b, it, 1, &ids, &cc->changed[i], &has);
    if (!st && !cc->changed[i]) {
        it->full_tokens = ids.n;
        if (cache_room(cc->b, it, ids.n)) { /* kept: written if the file stays or becomes full */
            it->full = ids;
            it->full_cached = 1;
            ids = (tome_tokens_t){0};
        }
    }
    tome_tokens_free(&ids);
    return st;
}

/* Counts the lazily counted files work[0..m) exactly (tokenized in
 * parallel) and corrects the sums: a lower bound becomes the count; a file
 * that changed since it was read is skipped. */
static tome_status count_exactly(builder *b, item **work, size_t m, plan_sums *ps)
{
    if (!m) return TOME_OK;
    uint64_t *before = malloc(m * sizeof *before);
    int *changed = calloc(m, sizeof *changed);
    tome_status st = before && changed ? TOME_OK : tome_set_error(TOME_ERR_NOMEM, "out of memory");
    for (size_t k = 0; k < m && !st; k++) before[k] = block_tokens(work[k]);
    count_ctx cc = {b, work, changed};
    if (!st) st = tome_parallel_for(m, b->o->n_threads, count_one, &cc);
    for (size_t k = 0; k < m && !st; k++) {
        item *it = work[k];
        if (it->status == TOME_FILE_FULL) ps->lazy_full--;
        it->full_lazy = 0;
        it->counted_later = 1;
        if (changed[k]) {
            ps->changed++;
            it->status = TOME_FILE_SKIPPED;
            it->ok = 0;
            it->full_tokens = 0;
            free(it->skip);
            it->skip = strdup("changed while packing");
            if (!it->skip) st = tome_set_error(TOME_ERR_NOMEM, "out of memory");
        }
        ps->files = ps->files - before[k] + block_tokens(it);
        ps->total = ps->total - before[k] + block_tokens(it);
    }
    free(before);
    free(changed);
    return st;
}

/* Counts every FULL file still counted only at least. */
static tome_status count_lazy_full(builder *b, item **items, size_t n, plan_sums *ps)
{
    item **work = malloc((n ? n : 1) * sizeof *work);
    if (!work) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (items[i]->full_lazy && items[i]->status == TOME_FILE_FULL) work[m++] = items[i];
    tome_status st = count_exactly(b, work, m, ps);
    free(work);
    return st;
}

/* *over: whether the total is over the budget; when only the lower bounds
 * leave that in doubt, the files behind them are counted first. */
static tome_status over_budget(builder *b, item **items, size_t n, plan_sums *ps, uint64_t budget, int *over)
{
    if (ps->total <= budget && ps->lazy_full) TOME_FORWARD(count_lazy_full(b, items, n, ps));
    *over = ps->total > budget;
    return TOME_OK;
}

/* Aliases whose stored copy is not in the text (listed, or skipped: it
 * changed while packing) would point at nothing: they are listed too. */
static void list_orphan_aliases(item **items, size_t n, plan_sums *ps)
{
    for (size_t i = 0; i < n; i++) {
        item *it = items[i];
        if (it->status != TOME_FILE_ALIAS) continue;
        uint32_t ts = items[it->alias_of]->status;
        if (ts != TOME_FILE_LISTED && ts != TOME_FILE_SKIPPED) continue;
        ps->files -= it->alias.n;
        it->status = TOME_FILE_LISTED;
        it->alias_of = -1;
        it->degrade = ts == TOME_FILE_LISTED ? "budget: listed only (duplicate)"
                                             : "listed only (duplicate of a file that changed while packing)";
    }
}

static tome_status plan(builder *b, item **items, size_t n, tome_pack_entry *es, size_t *by_path,
                        const tome_buf *env_open, const tome_buf *env_close, tome_buf *tree)
{
    /* dedup: sort indices by (hash, order) */
    size_t *by_hash = malloc((n ? n : 1) * sizeof *by_hash);
    if (!by_hash) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (items[i]->ok) by_hash[m++] = i;
    qsort_r(by_hash, m, sizeof *by_hash, cmp_hash, items);
    tome_status st = TOME_OK;
    size_t f = 0; /* start of the current group of equal hashes */
    for (size_t k = 1; k < m && !st; k++) {
        item *a = items[by_hash[k]], *first = NULL;
        if (same_content(items[by_hash[k - 1]], a) != 0) {
            f = k;
            continue;
        }
        first = items[by_hash[f]];
        a->status = TOME_FILE_ALIAS;
        a->alias_of = a->dup_of = (int64_t)by_hash[f];
        tome_buf blk = {0};
        st = tome_pack_render_alias(&blk, b->fmt, a->path, first->path);
        if (!st) st = encode_block(b, &blk, &a->alias);
        tome_buf_free(&blk);
    }
    free(by_hash);
    TOME_FORWARD(st);
    for (size_t i = 0; i < n; i++) {
        item *it = items[i];
        if (!it->ok) it->status = TOME_FILE_SKIPPED;
        else if (it->status != TOME_FILE_ALIAS) it->status = TOME_FILE_FULL;
    }
    /* budget */
    uint64_t budget = b->o->budget ? b->o->budget : TOME_PACK_DEFAULT_BUDGET;
    uint64_t env = 0, tmp;
    TOME_FORWARD(encode_str(b, env_open, &tmp, NULL));
    env += tmp;
    TOME_FORWARD(encode_str(b, env_close, &tmp, NULL));
    env += tmp;
    plan_sums ps = {0, 0, 0, 0};
    for (size_t i = 0; i < n; i++) {
        ps.files += block_tokens(items[i]);
        if (items[i]->full_lazy && items[i]->status == TOME_FILE_FULL) ps.lazy_full++;
    }
    int degraded = 0, refilled = 0, prepass = 0;
    for (;;) {
        list_orphan_aliases(items, n, &ps); /* (count_exactly may have skipped a stored copy) */
        for (size_t i = 0; i < n; i++) {
            es[i].status = items[i]->status;
            es[i].alias_of = items[i]->alias_of;
            es[i].reason = items[i]->skip; /* (count_exactly may skip a file that changed) */
        }
        TOME_FORWARD(render_tree(b, es, by_path, n, tree));
        uint64_t tree_tokens;
        TOME_FORWARD(encode_str(b, tree, &tree_tokens, NULL));
        ps.total = env + tree_tokens + ps.files;
        if (ps.total <= budget && ps.lazy_full) { /* in doubt: count, then look again */
            TOME_FORWARD(count_lazy_full(b, items, n, &ps));
            continue;
        }
        uint64_t total = ps.total;
        if (total <= budget && (!degraded || refilled)) return TOME_OK;
        if (total > budget && !prepass) {
            prepass = 1;
            TOME_FORWARD(outline_prepass(b, items, n, total - budget));
        }
        if (total <= budget) {
            /* refill: degrading stopped only when the total fitted, so going
             * back in priority order, files that fit again are restored
             * (outline, then full). Tree markers only shrink, so the total
             * computed with the old tree is an upper bound; re-checked above. */
            refilled = 1;
            for (size_t i = 0; i < n; i++) {
                item *it = items[i];
                if (it->status != TOME_FILE_LISTED && it->status != TOME_FILE_OUTLINE) continue;
                if (!it->ok) continue;
                uint64_t cur = block_tokens(it);
                if (it->dup_of >= 0) {
                    uint32_t ts = items[it->dup_of]->status;
                    if ((ts == TOME_FILE_FULL || ts == TOME_FILE_OUTLINE) && total + it->alias.n <= budget) {
                        total += it->alias.n;
                        ps.files += it->alias.n;
                        it->status = TOME_FILE_ALIAS;
                        it->alias_of = it->dup_of;
                        it->degrade = NULL;
                    }
                    continue;
                }
                TOME_FORWARD(ensure_outline(b, it));
                if (it->full_lazy && ((it->status == TOME_FILE_LISTED && it->outl_tokens &&
                                       it->outl_tokens >= it->full_tokens && total - cur + it->outl_tokens <= budget) ||
                                      total - cur + it->full_tokens <= budget)) {
                    /* the lower bound cannot tell (it is not in the sums: the file is not full) */
                    ps.total = total;
                    TOME_FORWARD(count_exactly(b, &it, 1, &ps));
                    total = ps.total;
                    if (it->status == TOME_FILE_SKIPPED) continue;
                }
                if (it->status == TOME_FILE_LISTED && it->outl_tokens && it->outl_tokens < it->full_tokens &&
                    total - cur + it->outl_tokens <= budget) {
                    total = total - cur + it->outl_tokens;
                    ps.files = ps.files - cur + it->outl_tokens;
                    it->status = TOME_FILE_OUTLINE;
                    it->degrade = "budget: outline only";
                    cur = it->outl_tokens;
                }
                if (total - cur + it->full_tokens <= budget) {
                    total = total - cur + it->full_tokens;
                    ps.files = ps.files - cur + it->full_tokens;
                    it->status = TOME_FILE_FULL;
                    it->degrade = NULL;
                }
            }
            continue;
        }
        degraded = 1;
        int changed = 0;
        size_t changed_files = ps.changed; /* a file skipped as changed is a change of the round too */
        /* stage 1: full → outline (or listed); stage 2: outline → listed; stage 3: alias → listed */
        for (int stage = 1; stage <= 3; stage++) {
            for (size_t k = n; k-- > 0;) {
                int over;
                TOME_FORWARD(over_budget(b, items, n, &ps, budget, &over));
                if (!over) break;
                item *it = items[k];
                if (stage == 1 && it->status == TOME_FILE_FULL) {
                    TOME_FORWARD(ensure_outline(b, it));
                    if (it->full_lazy && it->outl_tokens && it->outl_tokens >= it->full_tokens) {
                        TOME_FORWARD(count_exactly(b, &it, 1, &ps)); /* is the outline smaller? */
                        if (it->status == TOME_FILE_SKIPPED) continue;
                    }
                }
                uint64_t before = block_tokens(it);
                if (stage == 1 && it->status == TOME_FILE_FULL) {
                    if (it->full_lazy) ps.lazy_full--; /* its lower bound leaves the sums */
                    if (it->outl_tokens && it->outl_tokens < it->full_tokens) {
                        it->status = TOME_FILE_OUTLINE;
                        it->degrade = "budget: outline only";
                    } else {
                        it->status = TOME_FILE_LISTED;
                        it->degrade = it->outl_changed ? "budget: listed only (changed while packing: no outline)"
                                                       : "budget: listed only (no outline)";
                    }
                } else if (stage == 2 && it->status == TOME_FILE_OUTLINE) {
                    it->status = TOME_FILE_LISTED;
                    it->degrade = "budget: listed only";
                } else if (stage == 3 && it->status == TOME_FILE_ALIAS) {
                    it->status = TOME_FILE_LISTED;
                    it->alias_of = -1;
                    it->degrade = "budget: listed only (duplicate)";
                } else {
                    continue;
                }
                changed = 1;
                ps.files = ps.files - before + block_tokens(it);
                ps.total = ps.total - before + block_tokens(it);
            }
        }
        if (!changed && ps.changed == changed_files)
            return tome_set_error(TOME_ERR_LIMIT,
                                  "token budget %llu is too small: the file tree alone takes %llu tokens",
                                  (unsigned long long)budget, (unsigned long long)(env + tree_tokens));
        list_orphan_aliases(items, n, &ps);
    }
}

/* Appends a block of n bytes of text (ed: its first and last bytes) and its
 * ids, after checking that it may follow the previous block's tail. */
static tome_status write_block(tome_pack_writer *w, size_t n, const tome_pack_edges *ed, const int32_t *ids,
                               size_t n_ids, uint64_t *text_off, uint64_t *tok_off, tome_pack_edges *prev)
{
    TOME_FORWARD(check_boundary(prev->tail, prev->tail_len, ed->head, ed->head_len));
    TOME_FORWARD(tome_pack_writer_add(w, n, ids, n_ids));
    *text_off += n;
    *tok_off += n_ids;
    if (n) {
        memcpy(prev->tail, ed->tail, ed->tail_len);
        prev->tail_len = ed->tail_len;
    }
    return TOME_OK;
}

/* Edges of a block held as text (the envelope and the tree). */
static void text_edges(const char *text, size_t n, tome_pack_edges *ed)
{
    ed->head_len = n < TOME_PACK_EDGE ? n : TOME_PACK_EDGE;
    ed->tail_len = ed->head_len;
    if (!n) return;
    memcpy(ed->head, text, ed->head_len);
    memcpy(ed->tail, text + n - ed->tail_len, ed->tail_len);
}

/* Likely over budget (an estimated E tokens over, at 3.5 bytes a token):
 * the budget loop degrades from the lowest priority up, so outlines are made
 * while reading only for the lowest-priority files whose estimated tokens
 * cover 2 E (+5% of the total); plan reads a file again in the rare case it
 * needs another outline. The pack is the same either way. git/git (1.3x
 * over): outlines for half of its bytes instead of all. */
static tome_status mark_early_outlines(builder *b, item **work, size_t n, uint64_t bytes)
{
    item **by = malloc((n ? n : 1) * sizeof *by);
    if (!by) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        by[i] = work[i];
        by[i]->tier = tome_pack_path_tier(by[i]->path, b->o->priority);
        by[i]->tier_known = 1;
    }
    qsort(by, n, sizeof *by, cmp_items);
    uint64_t budget = b->o->budget ? b->o->budget : TOME_PACK_DEFAULT_BUDGET;
    uint64_t est = bytes / 7 * 2, excess = est > budget ? est - budget : 0, want = 2 * excess + est / 20, got = 0;
    for (size_t k = n; k-- > 0 && got < want;) {
        uint64_t t = by[k]->size / 7 * 2 + 1;
        by[k]->outl_early = 1;
        /* and counted at least only, up to an estimated E: degrading saves
         * ~70% of a file, so these are most likely all degraded; plan counts
         * exactly any file whose lower bound leaves it in doubt */
        by[k]->lazy = !b->o->exact_counts && got + t <= excess;
        got += t;
    }
    free(by);
    return TOME_OK;
}

/* opts->tok_path: the tokenizer loads on a thread while the sources are
 * walked (both take ~10-20 ms on one core for a git/git-sized tree). */
typedef struct tok_loader {
    const char *path;
    tome_tokenizer_t *tok;
    tome_status st;
    char msg[1024];
} tok_loader;

static void *load_tokenizer(void *arg)
{
    tok_loader *l = arg;
    l->st = tome_tokenizer_open(l->path, &l->tok);
    if (l->st) snprintf(l->msg, sizeof l->msg, "%s", tome_last_error());
    return NULL;
}

tome_status tome_pack_build(const char *const *sources, size_t n_sources, const tome_pack_opts *opts,
                            const char *out_path, tome_pack_stats *stats)
{
    return tome_pack_build_open(sources, n_sources, opts, out_path, stats, NULL);
}

tome_status tome_pack_build_open(const char *const *sources, size_t n_sources, const tome_pack_opts *opts,
                                 const char *out_path, tome_pack_stats *stats, tome_pack_t **pack)
{
    if (pack) *pack = NULL;
    if (!opts || (!opts->tok && !opts->tok_path) || !out_path || (!sources && n_sources))
        return tome_set_error(TOME_ERR_INVALID_ARG, "tome_pack_build: missing tokenizer, sources or output path");
    if (opts->format > TOME_PACK_PLAIN) return tome_set_error(TOME_ERR_INVALID_ARG, "unknown pack format %d", opts->format);
    if (opts->html < TOME_PACK_HTML_AUTO || opts->html > TOME_PACK_HTML_TEXT)
        return tome_set_error(TOME_ERR_INVALID_ARG, "unknown html mode %d", opts->html);
    TOME_FORWARD(tome_pack_check_output(out_path));
    double t0 = tome_now();
    builder b = {0};
    b.o = opts;
    b.fmt = (uint32_t)opts->format;
    pthread_mutex_init(&b.mu, NULL);
    tome_status st = TOME_OK;
    tome_pack_entry *es = NULL;
    size_t *by_path = NULL;
    item **work = NULL, **items = NULL;
    block *blocks = NULL;
    tome_pack_writer *w = NULL;
    tome_buf env_open = {0}, env_close = {0}, tree = {0};
    tome_pack_toktab *tt = NULL;
    size_t n = 0;

    tok_loader tl = {opts->tok_path, NULL, TOME_OK, ""};
    pthread_t tl_thread;
    int tl_running = 0, tok_failed = 0;
    b.tok = opts->tok;
    if (!b.tok) {
        if (pthread_create(&tl_thread, NULL, load_tokenizer, &tl) == 0) tl_running = 1;
        else load_tokenizer(&tl);
    }
    progress(&b, "scan", 0, 0, 1);
    if ((st = scan_sources(&b, sources, n_sources))) goto out;
    if (tl_running) {
        pthread_join(tl_thread, NULL);
        tl_running = 0;
    }
    if (!b.tok) {
        if (tl.st) {
            st = tome_set_error(tl.st, "%s", tl.msg);
            tok_failed = 1;
            goto out;
        }
        b.tok = tl.tok;
    }
    double t1 = tome_now();
    /* prepare every readable disk item */
    size_t n_disk = b.n, n_work = 0;
    work = malloc((n_disk ? n_disk : 1) * sizeof *work);
    if (!work) {
        st = tome_set_error(TOME_ERR_NOMEM, "out of memory");
        goto out;
    }
    uint64_t bytes = 0;
    for (size_t i = 0; i < n_disk; i++)
        if (!b.items[i]->skip) {
            work[n_work++] = b.items[i];
            bytes += b.items[i]->size;
        }
    /* ~3.5 bytes a token: at 2 (+256 a file) under the budget, outlines are
     * most likely not needed (archives and documents may prove that wrong) */
    b.outlines_late = bytes / 2 + 256 * (uint64_t)n_work <= (opts->budget ? opts->budget : TOME_PACK_DEFAULT_BUDGET);
    if (!b.outlines_late && (st = mark_early_outlines(&b, work, n_work, bytes))) goto out;
    qsort(work, n_work, sizeof *work, cmp_size_desc); /* largest first: no long tail on one core */
    if ((st = tome_pack_arena_new(&b.ar))) goto out;
    progress(&b, "read", 0, n_work, 1);
    prep_ctx pc = {&b, work, n_work};
    if ((st = tome_parallel_for(n_work, opts->n_threads, prepare_one, &pc))) goto out;
    progress(&b, "read", n_work, n_work, 1);
    double t2 = tome_now();

    /* order: drop expanded containers, tier + path */
    items = malloc((b.n ? b.n : 1) * sizeof *items);
    if (!items) {
        st = tome_set_error(TOME_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < b.n; i++) {
        item *it = b.items[i];
        if (it->container) continue;
        if (!it->tier_known) it->tier = tome_pack_path_tier(it->path, opts->priority);
        items[n++] = it;
    }
    qsort(items, n, sizeof *items, cmp_items);
    if ((st = unique_paths(items, n))) goto out;
    es = calloc(n ? n : 1, sizeof *es);
    by_path = malloc((n ? n : 1) * sizeof *by_path);
    if (!es || !by_path) {
        st = tome_set_error(TOME_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        by_path[i] = i;
        es[i].path = items[i]->path; /* borrowed until set_entry below */
        tome_text_one_line(items[i]->skip);
        es[i].reason = items[i]->skip;
    }
    qsort_r(by_path, n, sizeof *by_path, cmp_paths, items);
    resolve_links(items, n, by_path);
    for (size_t i = 0; i < n; i++) es[i].reason = items[i]->skip; /* (a resolved link has none) */
    if ((st = tome_pack_render_open(&env_open, b.fmt, n))) goto out;
    if ((st = tome_pack_render_close(&env_close, b.fmt))) goto out;
    if ((st = plan(&b, items, n, es, by_path, &env_open, &env_close, &tree))) goto out;
    for (size_t i = 0; i < n; i++) { /* release ids that will not be written */
        item *it = items[i];
        if (it->status == TOME_FILE_FULL && it->full_lazy) {
            st = tome_set_error(TOME_ERR_INTERNAL, "%s: a full file was not counted", it->path);
            goto out;
        }
        if (it->status != TOME_FILE_FULL) full_release(it);
        if (it->status != TOME_FILE_OUTLINE) tome_tokens_free(&it->outl);
        free(it->outl_text);
        it->outl_text = NULL;
        es[i].path = NULL;
        es[i].reason = NULL;
        if ((st = set_entry(&es[i], it))) goto out;
    }

    /* emit */
    double t3 = tome_now();
    {
        /* zstd workers for the ids: one per core, up to 4 (each adds ~2 MB
         * of job buffers); with one, the workers ran dry while the blocks'
         * line tables were made and the write phase used ~1.3 of 2 cores
         * (git/git: 0.27 -> 0.25 s). The bytes do not depend on the count. */
        int nt = opts->n_threads > 0 ? opts->n_threads : tome_num_threads();
        if ((st = tome_pack_writer_open(out_path, opts->zstd_level, nt < 1 ? 1 : nt > 4 ? 4 : nt, &w))) goto out;
    }
    uint64_t text_off = 0, tok_off = 0;
    tome_pack_edges prev = {{0}, {0}, 0, 0}, ed;
    {
        tome_tokens_t t = {0};
        tome_buf hdr = {0};
        st = tome_buf_append(&hdr, env_open.data, env_open.len);
        if (!st) st = tome_buf_append(&hdr, tree.data, tree.len);
        if (!st) st = encode_block(&b, &hdr, &t);
        text_edges(hdr.data, hdr.len, &ed);
        if (!st) st = write_block(w, hdr.len, &ed, t.ids, t.n, &text_off, &tok_off, &prev);
        tome_tokens_free(&t);
        tome_buf_free(&hdr);
        if (st) goto out;
    }
    if ((st = tome_pack_toktab_open(b.tok, &tt))) goto out;
    blocks = calloc(EMIT_BATCH, sizeof *blocks);
    if (!blocks) {
        st = tome_set_error(TOME_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t s = 0; s < n; s += EMIT_BATCH) {
        size_t cnt = n - s < EMIT_BATCH ? n - s : EMIT_BATCH;
        emit_ctx ec = {&b, items + s, blocks, tt};
        st = tome_parallel_for(cnt, opts->n_threads, emit_one, &ec);
        for (size_t k = 0; k < cnt && !st; k++) {
            block *bl = &blocks[k];
            tome_pack_entry *e = &es[s + k];
            item *it = items[s + k];
            e->text_offset = text_off;
            e->tok_start = tok_off;
            if (bl->changed) {
                e->status = TOME_FILE_SKIPPED;
                free(e->reason);
                e->reason = strdup(bl->changed);
                if (!e->reason) st = tome_set_error(TOME_ERR_NOMEM, "out of memory");
                continue;
            }
            if (!bl->use) continue;
            st = write_block(w, (size_t)bl->text_len, &bl->ed, bl->use->ids, bl->use->n, &text_off, &tok_off, &prev);
            if (st) break;
            e->text_len = bl->text_len;
            e->tok_count = bl->use->n;
            e->runs = bl->runs;
            e->n_runs = bl->n_runs;
            /* kept for the manifest until the end: without the decoder's
             * slack (it starts at 64 lines, 512 bytes for a 2-line file) */
            e->line_off = shrink_u32(bl->line_off, bl->n_rlines);
            e->line_tok = shrink_u32(bl->line_tok, bl->n_rlines);
            e->n_rlines = bl->n_rlines;
            bl->runs = NULL;
            bl->line_off = bl->line_tok = NULL;
            /* free the ids as soon as they are written */
            full_release(it);
            tome_tokens_free(&it->outl);
            tome_tokens_free(&it->alias);
        }
        for (size_t k = 0; k < cnt; k++) block_clear(&blocks[k]);
        progress(&b, "write", s + cnt, n, 0);
        if (st) goto out;
    }
    {
        tome_tokens_t t = {0};
        st = encode_block(&b, &env_close, &t);
        text_edges(env_close.data, env_close.len, &ed);
        if (!st) st = write_block(w, env_close.len, &ed, t.ids, t.n, &text_off, &tok_off, &prev);
        tome_tokens_free(&t);
        if (st) goto out;
    }
    progress(&b, "write", n, n, 1);
    {
        tome_pack_meta meta = {b.fmt, (uint32_t)(opts->line_numbers != 0),
                               opts->budget ? opts->budget : TOME_PACK_DEFAULT_BUDGET};
        char th[33];
        tome_tokenizer_hash(b.tok, th);
        uint64_t pack_bytes = 0;
        uint8_t content[16];
        st = tome_pack_writer_finish(w, tt, &meta, es, n, th, &pack_bytes, content);
        w = NULL;
        if (st) goto out;
        if (stats) {
            memset(stats, 0, sizeof *stats);
            stats->n_files = n;
            for (size_t i = 0; i < n; i++) {
                switch (es[i].status) {
                case TOME_FILE_FULL: stats->n_full++; break;
                case TOME_FILE_OUTLINE: stats->n_outline++; break;
                case TOME_FILE_LISTED: stats->n_listed++; break;
                case TOME_FILE_ALIAS: stats->n_alias++; break;
                default: stats->n_skipped++;
                }
                stats->n_redactions += es[i].n_redact;
            }
            for (size_t i = 0; i < b.n; i++) {
                stats->n_counted_at_least += b.items[i]->full_lazy || b.items[i]->counted_later;
                stats->n_counted_later += b.items[i]->counted_later;
            }
            stats->n_tokens = tok_off;
            stats->n_text_bytes = text_off;
            stats->bytes_read = b.bytes_read;
            stats->pack_bytes = pack_bytes;
            stats->seconds = tome_now() - t0;
            stats->t_scan = t1 - t0;
            stats->t_read = t2 - t1;
            stats->t_plan = t3 - t2;
            stats->t_write = tome_now() - t3;
        }
        if (pack) { /* the caller's view of the pack just written: no read back */
            st = tome_pack_adopt(out_path, &meta, es, n, tok_off, text_off, content, th, pack);
            es = NULL;
            if (st) goto out;
        }
    }
out:
    if (tl_running) pthread_join(tl_thread, NULL);
    if (st && !tok_failed) { /* the output path once: the writer's errors already start with it */
        size_t olen = strlen(out_path);
        const char *m = tome_last_error();
        st = strncmp(m, out_path, olen) == 0 && m[olen] == ':' ? tome_error_prefix(st, "pack") : tome_error_prefix(st, "pack %s", out_path);
    }
    tome_pack_writer_abort(w);
    if (blocks)
        for (size_t k = 0; k < EMIT_BATCH; k++) block_clear(&blocks[k]);
    free(blocks);
    if (es)
        for (size_t i = 0; i < n; i++) {
            if (!es[i].encoding) { /* not yet owned (error before set_entry) */
                es[i].path = NULL;
                es[i].reason = NULL;
            }
            tome_pack_entry_clear(&es[i]);
        }
    free(es);
    free(by_path);
    free(work);
    free(items);
    for (size_t i = 0; i < b.n; i++) item_free(b.items[i]);
    free(b.items);
    tome_pack_arena_free(b.ar);
    tome_buf_free(&env_open);
    tome_buf_free(&env_close);
    tome_buf_free(&tree);
    tome_pack_toktab_free(tt);
    tome_tokenizer_free(tl.tok);
    pthread_mutex_destroy(&b.mu);
    return st;
}
