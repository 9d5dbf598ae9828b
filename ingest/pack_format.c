/*
 * ingest/pack_format.c — the .tpk file: writer and validating reader.
 *
 * Layout (all integers little-endian; docs/pack-format.md is the reference):
 *
 *   [header 128 bytes][section table 40 bytes x n][IDS][TEXT][MANIFEST]
 *
 *   header:  0 magic "TOMEPACK" | 8 u32 version | 12 u32 header_size
 *           16 u32 n_sections   | 20 u32 flags  | 24 u64 n_tokens
 *           32 u64 n_text_bytes | 40 u64 n_files | 48 u8[16] content hash
 *           64 char[32] tokenizer hash (hex) | 96 u64 file size
 *          104 u8[16] zero | 120 u64 XXH3-64 of bytes [0,120) + section table
 *   section: u32 id | u32 codec (1 = zstd, 2 = zstd token dictionary) | u64 offset
 *            | u64 stored size | u64 raw size | u64 XXH3-64 of the stored bytes
 *   (the table lists TEXT, IDS, MANIFEST; the file holds IDS first)
 *
 * Writer: the header is a placeholder until finish(). IDS (2 or 3 bytes an id)
 * are streamed through a zstd compressor straight into the (temporary)
 * output file, and a bit per id records which ids occur. At finish, TEXT is
 * the dictionary of those ids (their bytes, from the tokenizer): the text is
 * the ids' bytes in order, so it costs no compression of its own. MANIFEST
 * is serialised into memory, compressed and appended; then the header is
 * written at offset 0 and the file committed with tome_atomic_commit (fsync
 * + rename). Memory: the manifest and the dictionary; never the text or ids.
 *
 * Reader: maps the file, checks magic/version/sizes, the header checksum,
 * each section's bounds and checksum, decompresses and parses the manifest
 * with bounds checks on every field. IDS are decompressed on first use (and
 * checked against the content hash), TEXT built from them and its dictionary
 * on first use, after its length is checked. Every error names the file and
 * the section.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>
#include <zstd.h>

#include "ingest/ingest_impl.h"
#include "ingest/pack_impl.h"

#define HDR_SIZE 128u
#define SEC_SIZE 40u
#define N_SECTIONS 3u
enum { SEC_TEXT = 1, SEC_IDS = 2, SEC_MANIFEST = 3 };
enum { CODEC_ZSTD = 1, CODEC_TOKDICT = 2 }; /* TOKDICT: zstd of a token dictionary (TEXT) */
#define TOKDICT_MAX_ENTRY 65536u /* no vocabulary has a token this long (Llama 4's longest: 113 bytes) */
static const char *const g_sec_names[] = {"?", "text", "ids", "manifest"};

/* ------------------------------------------------------------ little-endian helpers */
static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

void tome_pack_entry_clear(tome_pack_entry *e)
{
    if (!e) return;
    free(e->path);
    free(e->reason);
    free(e->encoding);
    free(e->redact_lines);
    for (uint32_t i = 0; i < e->n_redact && e->redact_kinds; i++) free(e->redact_kinds[i]);
    free(e->redact_kinds);
    free(e->runs);
    free(e->line_off);
    free(e->line_tok);
    free(e->anchors);
    memset(e, 0, sizeof *e);
}

const char *tome_file_status_name(tome_file_status s)
{
    switch (s) {
    case TOME_FILE_FULL: return "full";
    case TOME_FILE_OUTLINE: return "outline";
    case TOME_FILE_LISTED: return "listed";
    case TOME_FILE_ALIAS: return "alias";
    case TOME_FILE_SKIPPED: return "skipped";
    }
    return "?";
}

/* ------------------------------------------------------------ varint manifest */
/* LEB128 into room the caller reserved (at most 10 bytes); returns the end */
static inline uint8_t *var_at(uint8_t *o, uint64_t v)
{
    while (v >= 0x80) {
        *o++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *o++ = (uint8_t)v;
    return o;
}
static tome_status put_var(tome_buf *b, uint64_t v)
{
    TOME_FORWARD(tome_buf_reserve(b, 10));
    b->len = (size_t)(var_at((uint8_t *)b->data + b->len, v) - (uint8_t *)b->data);
    b->data[b->len] = '\0';
    return TOME_OK;
}
static tome_status put_str(tome_buf *b, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    TOME_FORWARD(put_var(b, n));
    return tome_buf_append(b, s ? s : "", n);
}

/* Entries [from, to) of the manifest; from 0 with the manifest's head. */
static tome_status manifest_serialize(const tome_pack_meta *meta, const tome_pack_entry *es, size_t n,
                                      size_t from, size_t to, tome_buf *b)
{
    if (from == 0) {
        TOME_FORWARD(put_var(b, meta->format));
        TOME_FORWARD(put_var(b, meta->line_numbers));
        TOME_FORWARD(put_var(b, meta->budget));
        TOME_FORWARD(put_var(b, n));
    }
    for (size_t i = from; i < to; i++) {
        const tome_pack_entry *e = &es[i];
        TOME_FORWARD(put_str(b, e->path));
        TOME_FORWARD(put_var(b, e->status));
        TOME_FORWARD(put_str(b, e->reason));
        TOME_FORWARD(put_var(b, (uint64_t)(e->alias_of + 1)));
        uint64_t nums[] = {e->size, e->n_lines, e->text_offset, e->text_len, e->tok_start, e->tok_count,
                           e->full_tokens << 1 | (e->full_lower != 0)};
        for (size_t k = 0; k < TOME_ARRAY_LEN(nums); k++) TOME_FORWARD(put_var(b, nums[k]));
        TOME_FORWARD(put_str(b, e->encoding));
        TOME_FORWARD(tome_buf_append(b, e->hash, 16));
        TOME_FORWARD(put_var(b, e->n_redact));
        for (uint32_t k = 0; k < e->n_redact; k++) {
            TOME_FORWARD(put_var(b, e->redact_lines[k]));
            TOME_FORWARD(put_str(b, e->redact_kinds[k]));
        }
        TOME_FORWARD(put_var(b, e->n_runs));
        for (uint32_t k = 0; k < e->n_runs; k++) {
            TOME_FORWARD(put_var(b, e->runs[k].rline));
            TOME_FORWARD(put_var(b, e->runs[k].oline));
            TOME_FORWARD(put_var(b, e->runs[k].count));
            TOME_FORWARD(put_var(b, e->runs[k].prefix));
        }
        TOME_FORWARD(put_var(b, e->n_rlines));
        /* the line table (most of the manifest): room for all of it at once */
        if (e->n_rlines) TOME_FORWARD(tome_buf_reserve(b, (size_t)e->n_rlines * 10));
        uint8_t *o = (uint8_t *)b->data + b->len;
        for (uint32_t k = 0; k < e->n_rlines; k++) {
            o = var_at(o, k ? e->line_off[k] - e->line_off[k - 1] : e->line_off[k]);
            o = var_at(o, k ? e->line_tok[k] - e->line_tok[k - 1] : e->line_tok[k]);
        }
        b->len = (size_t)(o - (uint8_t *)b->data);
        if (b->data) b->data[b->len] = '\0';
        TOME_FORWARD(put_var(b, e->n_anchors));
        for (uint32_t k = 0; k < e->n_anchors; k++) {
            TOME_FORWARD(put_var(b, e->anchors[k].oline));
            TOME_FORWARD(put_var(b, e->anchors[k].kind));
            TOME_FORWARD(put_var(b, e->anchors[k].number));
        }
    }
    return TOME_OK;
}

typedef struct rd {
    const uint8_t *p, *end, *start;
    const char *file;
    const char *section; /* NULL: "manifest" */
} rd;

static tome_status rd_fail(const rd *r, const char *what)
{
    return tome_set_error(TOME_ERR_FORMAT, "%s: section %s: %s at byte %zu", r->file,
                          r->section ? r->section : "manifest", what, (size_t)(r->p - r->start));
}
static tome_status get_var(rd *r, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) return rd_fail(r, "truncated varint");
        uint8_t c = *r->p++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *out = v;
            return TOME_OK;
        }
    }
    return rd_fail(r, "overlong varint");
}
static tome_status get_var32(rd *r, uint32_t *out)
{
    uint64_t v = 0;
    TOME_FORWARD(get_var(r, &v));
    if (v > UINT32_MAX) return rd_fail(r, "value out of range");
    *out = (uint32_t)v;
    return TOME_OK;
}
static tome_status get_str(rd *r, char **out)
{
    uint64_t n = 0;
    TOME_FORWARD(get_var(r, &n));
    if (n > (uint64_t)(r->end - r->p)) return rd_fail(r, "string past end");
    char *s = malloc(n + 1);
    if (!s) return tome_set_error(TOME_ERR_NOMEM, "%s: out of memory", r->file);
    memcpy(s, r->p, n);
    s[n] = 0;
    r->p += n;
    *out = s;
    return TOME_OK;
}

/* Allocates count elements of size sz after checking that at least
 * count * min_bytes bytes remain (so a corrupt count cannot allocate much). */
static tome_status rd_alloc(rd *r, uint64_t count, size_t sz, size_t min_bytes, void **out)
{
    if (count > (uint64_t)(r->end - r->p) / (min_bytes ? min_bytes : 1)) return rd_fail(r, "count past end");
    *out = NULL;
    if (!count) return TOME_OK;
    *out = calloc(count, sz);
    if (!*out) return tome_set_error(TOME_ERR_NOMEM, "%s: out of memory", r->file);
    return TOME_OK;
}

static tome_status manifest_parse_entry(rd *r, tome_pack_entry *e, size_t idx, size_t n_entries,
                                        uint64_t n_tokens, uint64_t n_text)
{
    uint64_t v;
    TOME_FORWARD(get_str(r, &e->path));
    TOME_FORWARD(get_var32(r, &e->status));
    if (e->status > TOME_FILE_SKIPPED) return rd_fail(r, "bad file status");
    TOME_FORWARD(get_str(r, &e->reason));
    TOME_FORWARD(get_var(r, &v));
    if (v > n_entries) return rd_fail(r, "alias index out of range");
    e->alias_of = (int64_t)v - 1;
    if ((e->status == TOME_FILE_ALIAS) != (e->alias_of >= 0) || e->alias_of == (int64_t)idx)
        return rd_fail(r, "bad alias");
    uint64_t *nums[] = {&e->size, &e->n_lines, &e->text_offset, &e->text_len, &e->tok_start, &e->tok_count,
                        &e->full_tokens};
    for (size_t k = 0; k < TOME_ARRAY_LEN(nums); k++) TOME_FORWARD(get_var(r, nums[k]));
    e->full_lower = (int)(e->full_tokens & 1);
    e->full_tokens >>= 1;
    if (e->full_lower && e->status == TOME_FILE_FULL) return rd_fail(r, "full file with a lower-bound token count");
    if (e->text_offset > n_text || e->text_len > n_text - e->text_offset) return rd_fail(r, "text range out of bounds");
    if (e->tok_start > n_tokens || e->tok_count > n_tokens - e->tok_start) return rd_fail(r, "token range out of bounds");
    TOME_FORWARD(get_str(r, &e->encoding));
    if (r->end - r->p < 16) return rd_fail(r, "truncated hash");
    memcpy(e->hash, r->p, 16);
    r->p += 16;
    TOME_FORWARD(get_var(r, &v));
    void *tmp;
    TOME_FORWARD(rd_alloc(r, v, sizeof(uint32_t), 2, &tmp));
    e->redact_lines = tmp;
    TOME_FORWARD(rd_alloc(r, v, sizeof(char *), 2, &tmp));
    e->redact_kinds = tmp;
    e->n_redact = (uint32_t)v;
    for (uint32_t k = 0; k < e->n_redact; k++) {
        TOME_FORWARD(get_var32(r, &e->redact_lines[k]));
        TOME_FORWARD(get_str(r, &e->redact_kinds[k]));
    }
    TOME_FORWARD(get_var(r, &v));
    TOME_FORWARD(rd_alloc(r, v, sizeof(tome_pack_run), 4, &tmp));
    e->runs = tmp;
    e->n_runs = (uint32_t)v;
    for (uint32_t k = 0; k < e->n_runs; k++) {
        TOME_FORWARD(get_var32(r, &e->runs[k].rline));
        TOME_FORWARD(get_var32(r, &e->runs[k].oline));
        TOME_FORWARD(get_var32(r, &e->runs[k].count));
        TOME_FORWARD(get_var32(r, &e->runs[k].prefix));
    }
    TOME_FORWARD(get_var(r, &v));
    TOME_FORWARD(rd_alloc(r, v, sizeof(uint32_t), 2, &tmp));
    e->line_off = tmp;
    TOME_FORWARD(rd_alloc(r, v, sizeof(uint32_t), 2, &tmp));
    e->line_tok = tmp;
    e->n_rlines = (uint32_t)v;
    uint64_t off = 0, tok = 0;
    for (uint32_t k = 0; k < e->n_rlines; k++) {
        uint64_t d1, d2;
        TOME_FORWARD(get_var(r, &d1));
        TOME_FORWARD(get_var(r, &d2));
        off += d1;
        tok += d2;
        if (off > e->text_len || (k && off <= e->line_off[k - 1]) || (e->text_len && off >= e->text_len))
            return rd_fail(r, "line offset out of range");
        if (tok > e->tok_count) return rd_fail(r, "line token out of range");
        e->line_off[k] = (uint32_t)off;
        e->line_tok[k] = (uint32_t)tok;
    }
    for (uint32_t k = 0; k < e->n_runs; k++) {
        const tome_pack_run *ru = &e->runs[k];
        if ((uint64_t)ru->rline + ru->count > e->n_rlines || ru->oline == 0 ||
            (uint64_t)ru->oline + ru->count - 1 > e->n_lines || (k && ru->rline < e->runs[k - 1].rline + e->runs[k - 1].count))
            return rd_fail(r, "line run out of range");
    }
    TOME_FORWARD(get_var(r, &v));
    TOME_FORWARD(rd_alloc(r, v, sizeof(tome_pack_anchor), 3, &tmp));
    e->anchors = tmp;
    e->n_anchors = (uint32_t)v;
    for (uint32_t k = 0; k < e->n_anchors; k++) {
        TOME_FORWARD(get_var32(r, &e->anchors[k].oline));
        TOME_FORWARD(get_var32(r, &e->anchors[k].kind));
        TOME_FORWARD(get_var32(r, &e->anchors[k].number));
        if (k && e->anchors[k].oline < e->anchors[k - 1].oline) return rd_fail(r, "anchors out of order");
    }
    return TOME_OK;
}

/* ------------------------------------------------------------ writer */
struct tome_pack_writer {
    tome_atomic_file *af;
    ZSTD_CCtx *cids;
    XXH3_state_t *ids_sum;  /* XXH3-64 of the stored (compressed) ids */
    XXH3_state_t *content;  /* XXH3-128 over raw ids + raw manifest */
    uint64_t ids_stored, ids_raw, text_raw, n_ids;
    uint64_t *used;         /* bit per token id that occurs in the text */
    int n_threads;          /* zstd workers; the end runs on up to 2 threads */
    size_t used_words;
    uint8_t outbuf[1 << 16];
};

static tome_status zerr(size_t rc, const char *what)
{
    return tome_set_error(TOME_ERR_INTERNAL, "zstd %s: %s", what, ZSTD_getErrorName(rc));
}

tome_status tome_pack_writer_open(const char *out_path, int zstd_level, int n_threads, tome_pack_writer **out)
{
    *out = NULL;
    tome_pack_writer *w = calloc(1, sizeof *w);
    if (!w) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    tome_status st = tome_atomic_open(out_path, &w->af);
    if (st) {
        free(w);
        return st;
    }
    w->n_threads = n_threads;
    w->cids = ZSTD_createCCtx();
    w->ids_sum = XXH3_createState();
    w->content = XXH3_createState();
    w->used_words = (1u << 18) / 64; /* grown for larger vocabularies */
    w->used = calloc(w->used_words, sizeof *w->used);
    if (!w->cids || !w->ids_sum || !w->content || !w->used) {
        tome_pack_writer_abort(w);
        return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    }
    XXH3_64bits_reset(w->ids_sum);
    XXH3_128bits_reset(w->content);
    ZSTD_CCtx_setParameter(w->cids, ZSTD_c_compressionLevel, zstd_level > 0 ? zstd_level : 1);
    /* zstd's multithreaded output does not depend on the worker count (any
     * count >= 1 gives the same bytes), so packs stay byte-identical; the
     * call fails harmlessly on a libzstd built without threads. */
    if (n_threads >= 1) {
        ZSTD_CCtx_setParameter(w->cids, ZSTD_c_nbWorkers, n_threads);
        ZSTD_CCtx_setParameter(w->cids, ZSTD_c_jobSize, 1 << 20); /* bounds zstd's buffers */
    }
    uint8_t zero[HDR_SIZE + SEC_SIZE * N_SECTIONS];
    memset(zero, 0, sizeof zero);
    st = tome_atomic_write(w->af, zero, sizeof zero);
    if (st) {
        tome_pack_writer_abort(w);
        return st;
    }
    *out = w;
    return TOME_OK;
}

/* The ids are compressed straight into the file (the first section there). */
static tome_status stream_ids(tome_pack_writer *w, const void *src, size_t n, ZSTD_EndDirective end)
{
    ZSTD_inBuffer in = {src, n, 0};
    for (;;) {
        ZSTD_outBuffer o = {w->outbuf, sizeof w->outbuf, 0};
        size_t rem = ZSTD_compressStream2(w->cids, &o, &in, end);
        if (ZSTD_isError(rem)) return zerr(rem, "ids");
        if (o.pos) {
            TOME_FORWARD(tome_atomic_write(w->af, w->outbuf, o.pos));
            XXH3_64bits_update(w->ids_sum, w->outbuf, o.pos);
            w->ids_stored += o.pos;
        }
        if (end == ZSTD_e_end ? rem == 0 : in.pos == in.size) return TOME_OK;
    }
}

/* The content hash covers the ids as little-endian int32 (format-independent
 * identity); the IDS section stores each id in 2 bytes (ids < 2^15, 83% of
 * git/git's) or 3 (ids < 2^23): a third less input for zstd than 3 each. */
static void hash_ids(XXH3_state_t *h, const int32_t *ids, size_t n)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    XXH3_128bits_update(h, ids, n * 4);
#else
    uint8_t le[4096];
    for (size_t i = 0; i < n;) {
        size_t k = 0;
        for (; i < n && k + 4 <= sizeof le; i++, k += 4) put_u32(le + k, (uint32_t)ids[i]);
        XXH3_128bits_update(h, le, k);
    }
#endif
}

static tome_status grow_used(tome_pack_writer *w, uint32_t v)
{
    size_t nw = w->used_words;
    while ((size_t)v / 64 >= nw) nw *= 2;
    uint64_t *u = realloc(w->used, nw * sizeof *u);
    if (!u) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    memset(u + w->used_words, 0, (nw - w->used_words) * sizeof *u);
    w->used = u;
    w->used_words = nw;
    return TOME_OK;
}

tome_status tome_pack_writer_add(tome_pack_writer *w, size_t n_text, const int32_t *ids, size_t n_ids)
{
    w->text_raw += n_text;
    hash_ids(w->content, ids, n_ids);
    uint8_t b[3 * 5461];
    for (size_t i = 0; i < n_ids;) {
        size_t k = 0;
        for (; i < n_ids && k + 3 <= sizeof b; i++) {
            uint32_t v = (uint32_t)ids[i];
            if (v >= (1u << 23)) return tome_set_error(TOME_ERR_INVALID_ARG, "token id %u is over 2^23", v);
            if (v / 64 >= w->used_words) TOME_FORWARD(grow_used(w, v));
            w->used[v / 64] |= 1ull << (v % 64);
            if (v < 0x8000) { /* 2 bytes, big-endian, top bit clear */
                b[k] = (uint8_t)(v >> 8);
                b[k + 1] = (uint8_t)v;
                k += 2;
            } else { /* 3 bytes, top bit set */
                b[k] = (uint8_t)(0x80 | v >> 16);
                b[k + 1] = (uint8_t)(v >> 8);
                b[k + 2] = (uint8_t)v;
                k += 3;
            }
        }
        w->ids_raw += k;
        TOME_FORWARD(stream_ids(w, b, k, ZSTD_e_continue));
    }
    w->n_ids += n_ids;
    return TOME_OK;
}

/* TEXT (codec 2, token dictionary): the bytes of every id that occurs, in
 * id order: varint count, then per id varint (gap to the previous id; the
 * first: the id itself) and varint length, then all the bytes. The text is
 * the concatenation of the entries of the ids, in order. */
static tome_status text_dictionary(const tome_pack_writer *w, const tome_pack_toktab *tt, tome_buf *out)
{
    uint64_t count = 0;
    for (size_t k = 0; k < w->used_words; k++) count += (uint64_t)__builtin_popcountll(w->used[k]);
    TOME_FORWARD(put_var(out, count));
    size_t bytes = 0;
    int64_t prev = -1;
    for (size_t k = 0; k < w->used_words; k++)
        for (uint64_t m = w->used[k]; m; m &= m - 1) {
            int64_t id = (int64_t)(k * 64 + (size_t)__builtin_ctzll(m));
            size_t len = 0;
            if (!tome_pack_toktab_bytes(tt, (int32_t)id, &len))
                return tome_set_error(TOME_ERR_INTERNAL, "token id %lld is not in the vocabulary", (long long)id);
            TOME_FORWARD(put_var(out, (uint64_t)(prev < 0 ? id : id - prev - 1)));
            TOME_FORWARD(put_var(out, len));
            bytes += len;
            prev = id;
        }
    TOME_FORWARD(tome_buf_reserve(out, bytes));
    for (size_t k = 0; k < w->used_words; k++)
        for (uint64_t m = w->used[k]; m; m &= m - 1) {
            size_t len = 0;
            const char *b = tome_pack_toktab_bytes(tt, (int32_t)(k * 64 + (size_t)__builtin_ctzll(m)), &len);
            TOME_FORWARD(tome_buf_append(out, b, len));
        }
    return TOME_OK;
}

void tome_pack_writer_abort(tome_pack_writer *w)
{
    if (!w) return;
    tome_atomic_abort(w->af);
    ZSTD_freeCCtx(w->cids);
    XXH3_freeState(w->ids_sum);
    XXH3_freeState(w->content);
    free(w->used);
    free(w);
}

/* The end of a pack, on two threads: the manifest in MAN_PARTS parts (split
 * where half its line tables lie, so the bytes depend only on the entries),
 * each serialised and compressed as its own zstd frame (ZSTD_decompress
 * reads concatenated frames as one stream), and the text dictionary built
 * and compressed. git/git: 3.6 MB of manifest and 0.4 MB of dictionary,
 * ~19 ms on one core. */
#define MAN_PARTS 2
typedef struct finish_job {
    tome_pack_writer *w;
    const tome_pack_toktab *tt;
    const tome_pack_meta *meta;
    const tome_pack_entry *es;
    size_t n, cut[MAN_PARTS + 1], n_parts;
    tome_buf raw[MAN_PARTS], z[MAN_PARTS];
    tome_buf dict, dictz;
} finish_job;

static tome_status zstd_into(tome_buf *out, const tome_buf *in, int level, const char *what)
{
    TOME_FORWARD(tome_buf_reserve(out, ZSTD_compressBound(in->len)));
    size_t zn = ZSTD_compress(out->data, out->cap, in->data ? in->data : "", in->len, level);
    if (ZSTD_isError(zn)) return zerr(zn, what);
    out->len = zn;
    return TOME_OK;
}

static tome_status finish_one(void *ctx, size_t i, int thread_index)
{
    finish_job *j = ctx;
    (void)thread_index;
    if (i == j->n_parts) { /* the text dictionary */
        TOME_FORWARD(text_dictionary(j->w, j->tt, &j->dict));
        return zstd_into(&j->dictz, &j->dict, 3, "text");
    }
    TOME_FORWARD(manifest_serialize(j->meta, j->es, j->n, j->cut[i], j->cut[i + 1], &j->raw[i]));
    return zstd_into(&j->z[i], &j->raw[i], 2, "manifest");
}

static void finish_job_free(finish_job *j)
{
    for (size_t i = 0; i < MAN_PARTS; i++) {
        tome_buf_free(&j->raw[i]);
        tome_buf_free(&j->z[i]);
    }
    tome_buf_free(&j->dict);
    tome_buf_free(&j->dictz);
}

tome_status tome_pack_writer_finish(tome_pack_writer *w, const tome_pack_toktab *tt, const tome_pack_meta *meta,
                                    const tome_pack_entry *entries, size_t n_entries,
                                    const char tokenizer_hash[33], uint64_t *pack_bytes,
                                    uint8_t content[16])
{
    finish_job j = {w, tt, meta, entries, n_entries, {0}, 1, {{0}}, {{0}}, {0}, {0}};
    uint64_t lines = 0, half = 0;
    for (size_t i = 0; i < n_entries; i++) lines += entries[i].n_rlines + 16;
    j.cut[1] = n_entries;
    if (lines >= (200u << 10) && n_entries >= 2) { /* a manifest of about 1 MB or more */
        j.n_parts = MAN_PARTS;
        size_t i = 0;
        for (; i + 1 < n_entries && half < lines / 2; i++) half += entries[i].n_rlines + 16;
        j.cut[1] = i;
        j.cut[2] = n_entries;
    }
    /* while zstd's workers finish the ids */
    tome_status st = tome_parallel_for(j.n_parts + 1, w->n_threads > 1 ? 2 : 1, finish_one, &j);
    if (!st) st = stream_ids(w, "", 0, ZSTD_e_end);
    if (!st) st = tome_atomic_write(w->af, j.dictz.data, j.dictz.len);
    for (size_t i = 0; i < j.n_parts && !st; i++) st = tome_atomic_write(w->af, j.z[i].data, j.z[i].len);
    if (st) goto fail;
    uint64_t man_raw = 0, man_stored = 0;
    XXH3_state_t *msum = XXH3_createState();
    if (!msum) {
        st = tome_set_error(TOME_ERR_NOMEM, "out of memory");
        goto fail;
    }
    XXH3_64bits_reset(msum);
    for (size_t i = 0; i < j.n_parts; i++) {
        XXH3_128bits_update(w->content, j.raw[i].data ? j.raw[i].data : "", j.raw[i].len);
        XXH3_64bits_update(msum, j.z[i].data ? j.z[i].data : "", j.z[i].len);
        man_raw += j.raw[i].len;
        man_stored += j.z[i].len;
    }
    uint64_t man_sum = XXH3_64bits_digest(msum);
    XXH3_freeState(msum);

    /* in the file: IDS (streamed first), TEXT, MANIFEST; the table lists them by id */
    uint8_t hdr[HDR_SIZE + SEC_SIZE * N_SECTIONS];
    memset(hdr, 0, sizeof hdr);
    uint64_t ids_off = sizeof hdr, text_off = ids_off + w->ids_stored, man_off = text_off + j.dictz.len;
    struct {
        uint32_t id, codec;
        uint64_t off, stored, raw, sum;
    } secs[N_SECTIONS] = {
        {SEC_TEXT, CODEC_TOKDICT, text_off, j.dictz.len, j.dict.len,
         XXH3_64bits(j.dictz.data ? j.dictz.data : "", j.dictz.len)},
        {SEC_IDS, CODEC_ZSTD, ids_off, w->ids_stored, w->ids_raw, XXH3_64bits_digest(w->ids_sum)},
        {SEC_MANIFEST, CODEC_ZSTD, man_off, man_stored, man_raw, man_sum},
    };
    uint64_t off = man_off + man_stored;
    for (uint32_t i = 0; i < N_SECTIONS; i++) {
        uint8_t *s = hdr + HDR_SIZE + SEC_SIZE * i;
        put_u32(s, secs[i].id);
        put_u32(s + 4, secs[i].codec);
        put_u64(s + 8, secs[i].off);
        put_u64(s + 16, secs[i].stored);
        put_u64(s + 24, secs[i].raw);
        put_u64(s + 32, secs[i].sum);
    }
    memcpy(hdr, "TOMEPACK", 8);
    put_u32(hdr + 8, TOME_PACK_VERSION);
    put_u32(hdr + 12, (uint32_t)sizeof hdr);
    put_u32(hdr + 16, N_SECTIONS);
    put_u32(hdr + 20, 0);
    put_u64(hdr + 24, w->n_ids);
    put_u64(hdr + 32, w->text_raw);
    put_u64(hdr + 40, n_entries);
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits_digest(w->content));
    memcpy(hdr + 48, c.digest, 16);
    memcpy(hdr + 64, tokenizer_hash, 32);
    put_u64(hdr + 96, off);
    {
        XXH3_state_t *hs = XXH3_createState();
        if (!hs) {
            st = tome_set_error(TOME_ERR_NOMEM, "out of memory");
            goto fail;
        }
        XXH3_64bits_reset(hs);
        XXH3_64bits_update(hs, hdr, 120);
        XXH3_64bits_update(hs, hdr + HDR_SIZE, SEC_SIZE * N_SECTIONS);
        put_u64(hdr + 120, XXH3_64bits_digest(hs));
        XXH3_freeState(hs);
    }
    FILE *fp = tome_atomic_stream(w->af);
    if (fflush(fp) != 0 || fseeko(fp, 0, SEEK_SET) != 0) {
        st = tome_set_errno(TOME_ERR_IO, errno, "writing pack header");
        goto fail;
    }
    if ((st = tome_atomic_write(w->af, hdr, sizeof hdr))) goto fail;
    st = tome_atomic_commit(w->af);
    w->af = NULL;
    if (st) goto fail;
    if (pack_bytes) *pack_bytes = off;
    if (content) memcpy(content, c.digest, 16);
    finish_job_free(&j);
    tome_pack_writer_abort(w);
    return TOME_OK;
fail:
    finish_job_free(&j);
    tome_pack_writer_abort(w);
    return st;
}

/* ------------------------------------------------------------ reader */
struct tome_pack {
    char *path;
    tome_mmap map;
    tome_pack_info info;
    tome_pack_meta meta;
    struct {
        uint64_t off, stored, raw;
    } sec[N_SECTIONS + 1];
    tome_pack_entry *entries;
    size_t n_entries;
    size_t *by_tok;     /* indices of entries with tok_count > 0, by tok_start */
    size_t n_by_tok;
    char *text;
    int32_t *ids;
    uint8_t *man_raw; /* the raw manifest, for the content hash check */
    size_t man_len;
    uint8_t content[16];
    int borrowed;     /* map points at the caller's memory (tome_pack_open_mem) */
    int no_checksums; /* fuzzing: skip checksum and file-size checks */
};

static void hex16(const uint8_t *h, char out[33])
{
    static const char dig[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = dig[h[i] >> 4];
        out[2 * i + 1] = dig[h[i] & 15];
    }
    out[32] = 0;
}

static tome_status decompress_section(tome_pack_t *p, int id, void *dst, size_t cap)
{
    const uint8_t *src = p->map.data + p->sec[id].off;
    size_t rc = ZSTD_decompress(dst, cap, src, p->sec[id].stored);
    if (ZSTD_isError(rc))
        return tome_set_error(TOME_ERR_FORMAT, "%s: section %s: corrupt compressed data (%s)", p->path,
                              g_sec_names[id], ZSTD_getErrorName(rc));
    if (rc != p->sec[id].raw)
        return tome_set_error(TOME_ERR_FORMAT, "%s: section %s: %zu bytes after decompression, header says %llu",
                              p->path, g_sec_names[id], rc, (unsigned long long)p->sec[id].raw);
    return TOME_OK;
}

static int cmp_tok_idx(const void *a, const void *b, void *ctx)
{
    const tome_pack_entry *es = ctx;
    uint64_t x = es[*(const size_t *)a].tok_start, y = es[*(const size_t *)b].tok_start;
    return x < y ? -1 : x > y;
}

static tome_status open_checked(tome_pack_t *p)
{
    const uint8_t *d = p->map.data;
    size_t len = p->map.len;
    const char *f = p->path;
    if (len < 8 || memcmp(d, "TOMEPACK", 8) != 0)
        return tome_set_error(TOME_ERR_FORMAT, "%s: not a tome pack (bad magic)", f);
    if (len < HDR_SIZE)
        return tome_set_error(TOME_ERR_FORMAT, "%s: header: truncated (%zu bytes)", f, len);
    uint32_t version = get_u32(d + 8);
    if (version >= 1 && version < TOME_PACK_VERSION)
        return tome_set_error(TOME_ERR_UNSUPPORTED,
                              "%s: header: pack version %u (written by an older tome) is no longer read; "
                              "pack the sources again with this tome (version %u)",
                              f, version, TOME_PACK_VERSION);
    if (version != TOME_PACK_VERSION)
        return tome_set_error(TOME_ERR_UNSUPPORTED, "%s: header: pack version %u, this tome reads version %u", f,
                              version, TOME_PACK_VERSION);
    uint32_t hsize = get_u32(d + 12), nsec = get_u32(d + 16);
    if (nsec != N_SECTIONS || hsize != HDR_SIZE + SEC_SIZE * nsec)
        return tome_set_error(TOME_ERR_FORMAT, "%s: header: bad section count %u / header size %u", f, nsec, hsize);
    if (len < hsize) return tome_set_error(TOME_ERR_FORMAT, "%s: section table: truncated", f);
    XXH3_state_t *hs = XXH3_createState();
    if (!hs) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    XXH3_64bits_reset(hs);
    XXH3_64bits_update(hs, d, 120);
    XXH3_64bits_update(hs, d + HDR_SIZE, SEC_SIZE * nsec);
    uint64_t sum = XXH3_64bits_digest(hs);
    XXH3_freeState(hs);
    if (!p->no_checksums && sum != get_u64(d + 120)) return tome_set_error(TOME_ERR_FORMAT, "%s: header: checksum mismatch", f);
    uint64_t fsize = get_u64(d + 96);
    if (!p->no_checksums && fsize != len)
        return tome_set_error(TOME_ERR_FORMAT, "%s: file is %zu bytes, header says %llu (truncated or extended)", f,
                              len, (unsigned long long)fsize);
    p->info.version = version;
    p->info.n_tokens = get_u64(d + 24);
    p->info.n_text_bytes = get_u64(d + 32);
    p->info.n_files = get_u64(d + 40);
    hex16(d + 48, p->info.content_hash);
    memcpy(p->info.tokenizer_hash, d + 64, 32);
    p->info.tokenizer_hash[32] = 0;
    for (uint32_t i = 0; i < nsec; i++) {
        const uint8_t *s = d + HDR_SIZE + SEC_SIZE * i;
        uint32_t id = get_u32(s);
        if (id != i + 1 || get_u32(s + 4) != (id == SEC_TEXT ? CODEC_TOKDICT : CODEC_ZSTD))
            return tome_set_error(TOME_ERR_FORMAT, "%s: section table entry %u: unknown section %u or codec", f, i, id);
        uint64_t off = get_u64(s + 8), stored = get_u64(s + 16), raw = get_u64(s + 24);
        if (off < hsize || off > len || stored > len - off)
            return tome_set_error(TOME_ERR_FORMAT, "%s: section %s: range %llu+%llu out of file (%zu bytes)", f,
                                  g_sec_names[id], (unsigned long long)off, (unsigned long long)stored, len);
        if (!p->no_checksums && XXH3_64bits(d + off, stored) != get_u64(s + 32))
            return tome_set_error(TOME_ERR_FORMAT, "%s: section %s: checksum mismatch", f, g_sec_names[id]);
        if (raw > stored * 40000 + 4096) /* beyond what zstd can expand to */
            return tome_set_error(TOME_ERR_FORMAT, "%s: section %s: impossible raw size %llu", f, g_sec_names[id],
                                  (unsigned long long)raw);
        p->sec[id].off = off;
        p->sec[id].stored = stored;
        p->sec[id].raw = raw;
    }
    /* the text is built from the ids and the dictionary: as for a zstd
     * section, no more than 40000 times what they store (a few hundred
     * bytes must not ask for gigabytes) */
    if (p->info.n_text_bytes > (p->sec[SEC_IDS].stored + p->sec[SEC_TEXT].stored) * 40000 + 4096)
        return tome_set_error(TOME_ERR_FORMAT, "%s: header: impossible text size %llu for sections of %llu bytes", f,
                              (unsigned long long)p->info.n_text_bytes,
                              (unsigned long long)(p->sec[SEC_IDS].stored + p->sec[SEC_TEXT].stored));
    if (p->sec[SEC_IDS].raw < p->info.n_tokens * 2 || p->sec[SEC_IDS].raw > p->info.n_tokens * 3 ||
        p->sec[SEC_TEXT].raw > (uint64_t)1 << 30 ||
        p->info.n_tokens > (uint64_t)1 << 40 || p->sec[SEC_MANIFEST].raw > (uint64_t)1 << 34)
        return tome_set_error(TOME_ERR_FORMAT, "%s: section sizes disagree with the header", f);
    /* manifest */
    size_t mraw = (size_t)p->sec[SEC_MANIFEST].raw;
    uint8_t *m = malloc(mraw ? mraw : 1);
    if (!m) return tome_set_error(TOME_ERR_NOMEM, "%s: out of memory for the manifest", f);
    tome_status st = decompress_section(p, SEC_MANIFEST, m, mraw);
    if (st) {
        free(m);
        return st;
    }
    rd r = {m, m + mraw, m, f, NULL};
    uint64_t v, n;
    if ((st = get_var(&r, &v))) goto out;
    p->meta.format = (uint32_t)v;
    if ((st = get_var(&r, &v))) goto out;
    p->meta.line_numbers = (uint32_t)v;
    if ((st = get_var(&r, &p->meta.budget))) goto out;
    if ((st = get_var(&r, &n))) goto out;
    if (p->meta.format > TOME_PACK_PLAIN) {
        st = rd_fail(&r, "unknown format");
        goto out;
    }
    if (n != p->info.n_files) {
        st = rd_fail(&r, "file count disagrees with the header");
        goto out;
    }
    void *tmp;
    if ((st = rd_alloc(&r, n, sizeof(tome_pack_entry), 16, &tmp))) goto out;
    p->entries = tmp;
    for (size_t i = 0; i < n; i++) {
        p->n_entries = i + 1;
        if ((st = manifest_parse_entry(&r, &p->entries[i], i, n, p->info.n_tokens, p->info.n_text_bytes))) goto out;
    }
    if (r.p != r.end) {
        st = rd_fail(&r, "trailing bytes");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if (p->entries[i].alias_of >= 0 && p->entries[p->entries[i].alias_of].status == TOME_FILE_ALIAS) {
            st = tome_set_error(TOME_ERR_FORMAT, "%s: section manifest: file %zu aliases an alias", f, i);
            goto out;
        }
    p->by_tok = malloc((n ? n : 1) * sizeof *p->by_tok);
    if (!p->by_tok) {
        st = tome_set_error(TOME_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if (p->entries[i].tok_count) p->by_tok[p->n_by_tok++] = i;
    qsort_r(p->by_tok, p->n_by_tok, sizeof *p->by_tok, cmp_tok_idx, p->entries);
    for (size_t k = 1; k < p->n_by_tok; k++) {
        const tome_pack_entry *a = &p->entries[p->by_tok[k - 1]], *b = &p->entries[p->by_tok[k]];
        if (a->tok_start + a->tok_count > b->tok_start) {
            st = tome_set_error(TOME_ERR_FORMAT, "%s: section manifest: token ranges of files overlap", f);
            goto out;
        }
    }
    p->info.format = (tome_pack_format)p->meta.format;
    p->info.budget = p->meta.budget;
    p->info.line_numbers = (int)p->meta.line_numbers;
    memcpy(p->content, d + 48, 16);
    p->man_raw = m;
    p->man_len = mraw;
    m = NULL;
out:
    free(m);
    return st;
}

tome_status tome_pack_open(const char *path, tome_pack_t **out)
{
    *out = NULL;
    tome_pack_t *p = calloc(1, sizeof *p);
    if (!p) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    p->path = strdup(path);
    if (!p->path) {
        free(p);
        return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    }
    tome_status st = tome_mmap_open(path, &p->map);
    if (!st) st = open_checked(p);
    if (st) {
        tome_pack_free(p);
        return st;
    }
    *out = p;
    return TOME_OK;
}

tome_status tome_pack_open_mem(const char *name, const uint8_t *data, size_t len, int no_checksums,
                               tome_pack_t **out)
{
    *out = NULL;
    tome_pack_t *p = calloc(1, sizeof *p);
    if (!p) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    p->path = strdup(name);
    p->borrowed = 1;
    p->no_checksums = no_checksums;
    p->map.data = data;
    p->map.len = len;
    tome_status st = p->path ? open_checked(p) : tome_set_error(TOME_ERR_NOMEM, "out of memory");
    if (st) {
        tome_pack_free(p);
        return st;
    }
    *out = p;
    return TOME_OK;
}

tome_status tome_pack_adopt(const char *path, const tome_pack_meta *meta, tome_pack_entry *es, size_t n,
                            uint64_t n_tokens, uint64_t n_text_bytes, const uint8_t content[16],
                            const char tokenizer_hash[33], tome_pack_t **out)
{
    *out = NULL;
    tome_pack_t *p = calloc(1, sizeof *p);
    if (!p) {
        for (size_t i = 0; i < n; i++) tome_pack_entry_clear(&es[i]);
        free(es);
        return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    }
    p->entries = es;
    p->n_entries = n;
    p->path = strdup(path);
    p->by_tok = malloc((n ? n : 1) * sizeof *p->by_tok);
    if (!p->path || !p->by_tok) {
        tome_pack_free(p);
        return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    }
    p->meta = *meta;
    p->info.version = TOME_PACK_VERSION;
    p->info.format = (tome_pack_format)meta->format;
    p->info.n_tokens = n_tokens;
    p->info.n_text_bytes = n_text_bytes;
    p->info.n_files = n;
    p->info.budget = meta->budget;
    p->info.line_numbers = (int)meta->line_numbers;
    hex16(content, p->info.content_hash);
    memcpy(p->info.tokenizer_hash, tokenizer_hash, 32);
    p->info.tokenizer_hash[32] = 0;
    memcpy(p->content, content, 16);
    for (size_t i = 0; i < n; i++)
        if (es[i].tok_count) p->by_tok[p->n_by_tok++] = i;
    qsort_r(p->by_tok, p->n_by_tok, sizeof *p->by_tok, cmp_tok_idx, p->entries);
    *out = p;
    return TOME_OK;
}

/* An adopted pack maps its file on the first read of text or ids: the file
 * is opened and checked as by tome_pack_open, and must be the one written
 * (same content hash). */
static tome_status load_sections(tome_pack_t *p)
{
    if (p->map.data || p->borrowed) return TOME_OK;
    tome_pack_t *q = NULL;
    TOME_FORWARD(tome_pack_open(p->path, &q));
    if (memcmp(q->content, p->content, 16) != 0) {
        tome_pack_free(q);
        return tome_set_error(TOME_ERR_FORMAT, "%s: the pack was replaced since it was written", p->path);
    }
    p->map = q->map;
    q->map = (tome_mmap){0};
    memcpy(p->sec, q->sec, sizeof p->sec);
    p->man_raw = q->man_raw;
    p->man_len = q->man_len;
    q->man_raw = NULL;
    tome_pack_free(q);
    return TOME_OK;
}

void tome_pack_free(tome_pack_t *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->n_entries; i++) tome_pack_entry_clear(&p->entries[i]);
    free(p->entries);
    free(p->by_tok);
    free(p->text);
    free(p->ids);
    free(p->man_raw);
    if (!p->borrowed) tome_mmap_close(&p->map);
    free(p->path);
    free(p);
}

void tome_pack_get_info(const tome_pack_t *p, tome_pack_info *out) { *out = p->info; }
size_t tome_pack_n_files(const tome_pack_t *p) { return p->n_entries; }

tome_status tome_pack_get_file(const tome_pack_t *p, size_t i, tome_pack_file *out)
{
    if (i >= p->n_entries) return tome_set_error(TOME_ERR_NOT_FOUND, "%s: no file %zu", p->path, i);
    const tome_pack_entry *e = &p->entries[i];
    memset(out, 0, sizeof *out);
    out->path = e->path;
    out->status = (tome_file_status)e->status;
    out->reason = e->reason;
    out->alias_of = e->alias_of;
    out->size = e->size;
    out->n_lines = e->n_lines;
    out->text_offset = e->text_offset;
    out->text_len = e->text_len;
    out->tok_start = e->tok_start;
    out->tok_count = e->tok_count;
    out->full_tokens = e->full_tokens;
    out->full_tokens_lower = e->full_lower;
    out->n_redactions = e->n_redact;
    out->encoding = e->encoding;
    if (e->status == TOME_FILE_SKIPPED) out->content_hash[0] = 0;
    else hex16(e->hash, out->content_hash);
    return TOME_OK;
}

tome_status tome_pack_get_redactions(const tome_pack_t *p, size_t i, size_t *n, const uint32_t **lines,
                                     const char *const **kinds)
{
    if (i >= p->n_entries) return tome_set_error(TOME_ERR_NOT_FOUND, "%s: no file %zu", p->path, i);
    *n = p->entries[i].n_redact;
    *lines = p->entries[i].redact_lines;
    *kinds = (const char *const *)p->entries[i].redact_kinds;
    return TOME_OK;
}

/* The output may replace an earlier pack or an empty file, never anything
 * else: "tome pack a.c -o a.c" (or -o naming a file of the packed tree)
 * would otherwise replace a source with the pack. A directory is refused
 * here with a clear message rather than at the final rename. */
tome_status tome_pack_check_output(const char *out_path)
{
    char magic[8];
    size_t got;
    switch (tome_output_probe(out_path, magic, sizeof magic, &got)) {
    case TOME_OUT_ABSENT:
    case TOME_OUT_EMPTY: return TOME_OK;
    case TOME_OUT_DIR:
        return tome_set_error(TOME_ERR_INVALID_ARG, "%s is a directory: -o names the pack file to write", out_path);
    case TOME_OUT_SPECIAL:
        return tome_set_error(TOME_ERR_INVALID_ARG, "%s is not a regular file: refusing to write the pack over it", out_path);
    case TOME_OUT_FILE: break;
    }
    if (got == sizeof magic && memcmp(magic, "TOMEPACK", 8) == 0) return TOME_OK;
    return tome_set_error(TOME_ERR_INVALID_ARG,
                          "%s exists and is not a tome pack: refusing to replace it (remove it or choose another -o)",
                          out_path);
}

size_t tome_pack_n_anchors(const tome_pack_t *p, size_t i)
{
    return i < p->n_entries ? p->entries[i].n_anchors : 0;
}

tome_status tome_pack_get_anchor(const tome_pack_t *p, size_t i, size_t k, uint32_t *line, uint32_t *kind,
                                 uint32_t *number)
{
    if (i >= p->n_entries || k >= p->entries[i].n_anchors)
        return tome_set_error(TOME_ERR_NOT_FOUND, "%s: no anchor %zu of file %zu", p->path, k, i);
    const tome_pack_anchor *a = &p->entries[i].anchors[k];
    *line = a->oline;
    *kind = a->kind;
    *number = a->number;
    return TOME_OK;
}

/* The text (*out, n bytes + NUL, malloc'd) from the token dictionary (TEXT)
 * and the ids (IDS, checked against the content hash first); its length is
 * checked against the header's before anything is allocated for it. */
static tome_status text_from_dictionary(tome_pack_t *p, size_t n, char **out)
{
    *out = NULL;
    char *t = NULL;
    const int32_t *ids;
    size_t n_ids;
    TOME_FORWARD(tome_pack_ids(p, &ids, &n_ids));
    size_t draw = (size_t)p->sec[SEC_TEXT].raw;
    uint8_t *d = malloc(draw ? draw : 1);
    if (!d) return tome_set_error(TOME_ERR_NOMEM, "%s: out of memory for the text dictionary", p->path);
    uint32_t *pid = NULL, *plen = NULL, *off = NULL, *len = NULL;
    tome_status st = decompress_section(p, SEC_TEXT, d, draw);
    rd r = {d, d + draw, d, p->path, "text"};
    uint64_t count = 0, v;
    if (!st) st = get_var(&r, &count);
    /* an entry takes at least 2 bytes (gap and length) */
    if (!st && (count > (1u << 24) || count > (uint64_t)(r.end - r.p) / 2))
        st = rd_fail(&r, "more entries than the section holds");
    if (!st) {
        pid = malloc((count ? count : 1) * sizeof *pid);
        plen = malloc((count ? count : 1) * sizeof *plen);
        if (!pid || !plen) st = tome_set_error(TOME_ERR_NOMEM, "%s: out of memory for the text dictionary", p->path);
    }
    uint64_t id = 0, total = 0;
    for (uint64_t k = 0; k < count && !st; k++) {
        if ((st = get_var(&r, &v))) break;
        if (v >= (1u << 24)) { /* ids increase: no wrap, and the last is the largest */
            st = rd_fail(&r, "token id out of range");
            break;
        }
        id = k ? id + v + 1 : v;
        if (id >= (1u << 24)) {
            st = rd_fail(&r, "token id out of range");
            break;
        }
        pid[k] = (uint32_t)id;
        if ((st = get_var(&r, &v))) break;
        if (v > TOKDICT_MAX_ENTRY || v > (size_t)(r.end - r.p)) {
            st = rd_fail(&r, "entry longer than any token or the section");
            break;
        }
        plen[k] = (uint32_t)v;
        total += v;
    }
    if (!st && total != (uint64_t)(r.end - r.p)) st = rd_fail(&r, "entry bytes do not fill the section");
    size_t n_tab = !st && count ? (size_t)pid[count - 1] + 1 : 1;
    if (!st) {
        off = malloc(n_tab * sizeof *off);
        len = malloc(n_tab * sizeof *len);
        if (!off || !len) st = tome_set_error(TOME_ERR_NOMEM, "%s: out of memory for the text dictionary", p->path);
    }
    if (!st) {
        memset(len, 0xff, n_tab * sizeof *len); /* UINT32_MAX: not in the dictionary */
        size_t o = (size_t)(r.p - d);
        for (uint64_t k = 0; k < count; k++) {
            off[pid[k]] = (uint32_t)o;
            len[pid[k]] = plen[k];
            o += plen[k];
        }
        uint64_t sum = 0;
        for (size_t i = 0; i < n_ids; i++) {
            uint32_t x = (uint32_t)ids[i];
            if (x >= n_tab || len[x] == UINT32_MAX) {
                st = tome_set_error(TOME_ERR_FORMAT, "%s: section text: token %zu (id %u) is not in the dictionary",
                                    p->path, i, x);
                break;
            }
            sum += len[x];
            if (sum > n) break; /* reported below; and no overflow */
        }
        if (!st && sum != n)
            st = tome_set_error(TOME_ERR_FORMAT, "%s: section text: %llu bytes, the header says %zu", p->path,
                                (unsigned long long)sum, n);
        if (!st && !(t = malloc(n + 1)))
            st = tome_set_error(TOME_ERR_NOMEM, "%s: out of memory for %zu bytes of text", p->path, n);
        if (!st) {
            size_t pos = 0;
            for (size_t i = 0; i < n_ids; i++) {
                uint32_t x = (uint32_t)ids[i];
                memcpy(t + pos, d + off[x], len[x]);
                pos += len[x];
            }
            t[n] = 0;
            *out = t;
        }
    }
    free(d);
    free(pid);
    free(plen);
    free(off);
    free(len);
    return st;
}

tome_status tome_pack_text(tome_pack_t *p, const char **text, size_t *len)
{
    if (!p->text) {
        TOME_FORWARD(load_sections(p));
        size_t n = (size_t)p->info.n_text_bytes;
        char *t = NULL;
        TOME_FORWARD(text_from_dictionary(p, n, &t));
        for (size_t i = 0; i < p->n_entries; i++) {
            const tome_pack_entry *e = &p->entries[i];
            if (e->text_len && (e->text_len && t[e->text_offset + e->text_len - 1] != '\n')) {
                free(t);
                return tome_set_error(TOME_ERR_FORMAT, "%s: section text: block of file %zu does not end a line",
                                      p->path, i);
            }
        }
        p->text = t;
    }
    *text = p->text;
    *len = (size_t)p->info.n_text_bytes;
    return TOME_OK;
}

tome_status tome_pack_ids(tome_pack_t *p, const int32_t **ids, size_t *n)
{
    if (!p->ids) {
        TOME_FORWARD(load_sections(p));
        size_t nt = (size_t)p->info.n_tokens, rn = (size_t)p->sec[SEC_IDS].raw;
        uint8_t *packed = malloc(rn + 1);
        int32_t *v = malloc(nt * 4 + 1);
        if (!packed || !v) {
            free(packed);
            free(v);
            return tome_set_error(TOME_ERR_NOMEM, "%s: out of memory for %zu ids", p->path, nt);
        }
        tome_status st = decompress_section(p, SEC_IDS, packed, rn);
        /* 2 bytes an id below 2^15 (top bit clear), else 3 (top bit set) */
        size_t q = 0;
        for (size_t i = 0; i < nt && !st; i++) {
            if (q + 2 > rn || ((packed[q] & 0x80) && q + 3 > rn)) {
                st = tome_set_error(TOME_ERR_FORMAT, "%s: section ids: id %zu of %zu is cut short", p->path, i, nt);
            } else if (packed[q] & 0x80) {
                v[i] = (int32_t)((uint32_t)(packed[q] & 0x7f) << 16 | (uint32_t)packed[q + 1] << 8 | packed[q + 2]);
                q += 3;
            } else {
                v[i] = (int32_t)((uint32_t)packed[q] << 8 | packed[q + 1]);
                q += 2;
            }
        }
        if (!st && q != rn)
            st = tome_set_error(TOME_ERR_FORMAT, "%s: section ids: %zu bytes after the last of %zu ids", p->path, rn - q,
                                nt);
        free(packed);
        if (st) {
            free(v);
            return st;
        }
        /* identity: XXH3-128 of the ids (little-endian int32) and the raw manifest */
        XXH3_state_t *hs = XXH3_createState();
        if (!hs) {
            free(v);
            return tome_set_error(TOME_ERR_NOMEM, "out of memory");
        }
        XXH3_128bits_reset(hs);
        hash_ids(hs, v, nt);
        XXH3_128bits_update(hs, p->man_raw ? p->man_raw : (const uint8_t *)"", p->man_len);
        XXH128_canonical_t c;
        XXH128_canonicalFromHash(&c, XXH3_128bits_digest(hs));
        XXH3_freeState(hs);
        if (!p->no_checksums && memcmp(c.digest, p->content, 16) != 0) {
            free(v);
            return tome_set_error(TOME_ERR_FORMAT, "%s: section ids: content hash mismatch", p->path);
        }
        p->ids = v;
    }
    *ids = p->ids;
    *n = (size_t)p->info.n_tokens;
    return TOME_OK;
}

/* ------------------------------------------------------------ locate / cite */
/* Runs are sorted by rline and do not overlap (checked on open). */
static const tome_pack_run *run_of_rline(const tome_pack_entry *e, uint32_t r)
{
    uint32_t lo = 0, hi = e->n_runs; /* first run with rline > r */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (e->runs[mid].rline <= r) lo = mid + 1;
        else hi = mid;
    }
    if (lo == 0) return NULL;
    const tome_pack_run *ru = &e->runs[lo - 1];
    return r < ru->rline + ru->count ? ru : NULL;
}

static void anchor_of(const tome_pack_entry *e, uint32_t oline, uint32_t kind_filter, tome_pack_loc *loc)
{
    for (uint32_t k = 0; k < e->n_anchors; k++) {
        if (e->anchors[k].oline > oline) break;
        if (!kind_filter || e->anchors[k].kind == kind_filter) {
            loc->anchor_kind = e->anchors[k].kind;
            loc->anchor_number = e->anchors[k].number;
        }
    }
}

tome_status tome_pack_locate(const tome_pack_t *p, uint64_t tok, tome_pack_loc *out)
{
    memset(out, 0, sizeof *out);
    out->file = -1;
    if (tok >= p->info.n_tokens)
        return tome_set_error(TOME_ERR_NOT_FOUND, "%s: token %llu is past the end (%llu tokens)", p->path,
                              (unsigned long long)tok, (unsigned long long)p->info.n_tokens);
    size_t lo = 0, hi = p->n_by_tok;
    while (lo < hi) { /* first entry with tok_start > tok */
        size_t mid = (lo + hi) / 2;
        if (p->entries[p->by_tok[mid]].tok_start <= tok) lo = mid + 1;
        else hi = mid;
    }
    if (lo == 0) return TOME_OK;
    size_t idx = p->by_tok[lo - 1];
    const tome_pack_entry *e = &p->entries[idx];
    if (tok >= e->tok_start + e->tok_count) return TOME_OK;
    out->file = (int64_t)idx;
    uint32_t rel = (uint32_t)(tok - e->tok_start);
    uint32_t l = 0, h = e->n_rlines; /* last rendered line with line_tok <= rel */
    while (l < h) {
        uint32_t mid = l + (h - l) / 2;
        if (e->line_tok[mid] <= rel) l = mid + 1;
        else h = mid;
    }
    if (l == 0) return TOME_OK;
    const tome_pack_run *ru = run_of_rline(e, l - 1);
    if (ru) {
        out->line = ru->oline + (l - 1 - ru->rline);
        anchor_of(e, out->line, 0, out);
    }
    return TOME_OK;
}

tome_status tome_path_display(const char *path, char **out)
{
    *out = NULL;
    tome_buf b = {0};
    tome_status st = tome_path_escape(path ? path : "", &b);
    if (!st) st = tome_buf_append(&b, "", 1);
    if (st) {
        tome_buf_free(&b);
        return st;
    }
    *out = b.data;
    return TOME_OK;
}

tome_status tome_pack_format_loc(const tome_pack_t *p, const tome_pack_loc *loc, char **out)
{
    *out = NULL;
    tome_buf b = {0};
    tome_status st = TOME_OK;
    if (loc->file < 0 || (size_t)loc->file >= p->n_entries) {
        st = tome_buf_appendf(&b, "(pack)");
    } else {
        const tome_pack_entry *e = &p->entries[loc->file];
        st = tome_path_escape(e->path, &b);
        if (!st && loc->line) {
            tome_pack_loc a = *loc;
            a.anchor_kind = 0;
            anchor_of(e, loc->line, TOME_ANCHOR_PAGE, &a);
            if (a.anchor_kind == TOME_ANCHOR_PAGE) st = tome_buf_appendf(&b, "#page=%u", a.anchor_number);
            if (!st) st = tome_buf_appendf(&b, ":%u", loc->line);
        }
    }
    if (!st && !b.data) st = tome_buf_append(&b, "", 0);
    if (st) {
        tome_buf_free(&b);
        return st;
    }
    *out = b.data;
    return TOME_OK;
}

static int parse_u32(const char *s, const char *end, uint32_t *out)
{
    if (s >= end) return -1;
    uint64_t v = 0;
    for (; s < end; s++) {
        if (*s < '0' || *s > '9') return -1;
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > UINT32_MAX) return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

/* Finds an entry whose escaped (as printed) or raw path equals path[0..n).
 * The printed form wins: "b\x01.c" names the file whose name holds byte 1,
 * as the tree and locate print it, not a file literally named so (which is
 * printed "b\x5cx01.c"). */
static int64_t find_path(const tome_pack_t *p, const char *path, size_t n)
{
    for (size_t i = 0; i < p->n_entries; i++) {
        tome_buf b = {0};
        int hit = !tome_path_escape(p->entries[i].path, &b) && b.len == n && !memcmp(b.data, path, n);
        tome_buf_free(&b);
        if (hit) return (int64_t)i;
    }
    for (size_t i = 0; i < p->n_entries; i++)
        if (strlen(p->entries[i].path) == n && !memcmp(p->entries[i].path, path, n)) return (int64_t)i;
    return -1;
}

tome_status tome_pack_cite(tome_pack_t *p, const char *cit, char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    const char *colon = strrchr(cit, ':');
    if (!colon || colon == cit)
        return tome_set_error(TOME_ERR_INVALID_ARG, "citation '%s': expected path:line or path:first-last", cit);
    const char *dash = strchr(colon + 1, '-');
    uint32_t first, last;
    if (parse_u32(colon + 1, dash ? dash : colon + strlen(colon), &first) ||
        (dash ? parse_u32(dash + 1, dash + strlen(dash), &last) : (last = first, 0)) || first == 0 || last < first)
        return tome_set_error(TOME_ERR_INVALID_ARG, "citation '%s': bad line range", cit);
    size_t plen = (size_t)(colon - cit);
    int64_t fi = find_path(p, cit, plen);
    uint32_t want_page = 0;
    if (fi < 0) { /* "path#page=N" */
        const char *hash = NULL;
        for (const char *q = cit; q + 6 <= colon; q++)
            if (!memcmp(q, "#page=", 6)) hash = q;
        if (hash && !parse_u32(hash + 6, colon, &want_page)) fi = find_path(p, cit, (size_t)(hash - cit));
    }
    if (fi < 0) return tome_set_error(TOME_ERR_NOT_FOUND, "citation '%s': no such file in the pack", cit);
    const tome_pack_entry *e = &p->entries[fi];
    if (e->status == TOME_FILE_ALIAS) e = &p->entries[e->alias_of];
    if (e->status != TOME_FILE_FULL && e->status != TOME_FILE_OUTLINE)
        return tome_set_error(TOME_ERR_NOT_FOUND, "citation '%s': the file is %s in the pack%s%s", cit,
                              tome_file_status_name((tome_file_status)e->status), *e->reason ? ": " : "", e->reason);
    if (last > e->n_lines)
        return tome_set_error(TOME_ERR_NOT_FOUND, "citation '%s': the file has %llu lines", cit,
                              (unsigned long long)e->n_lines);
    if (want_page) {
        tome_pack_loc a = {0};
        anchor_of(e, first, TOME_ANCHOR_PAGE, &a);
        if (a.anchor_number != want_page)
            return tome_set_error(TOME_ERR_NOT_FOUND, "citation '%s': line %u is on page %u, not page %u", cit, first,
                                  a.anchor_number, want_page);
    }
    const char *text;
    size_t tlen;
    TOME_FORWARD(tome_pack_text(p, &text, &tlen));
    tome_buf b = {0};
    for (uint32_t ol = first; ol <= last; ol++) {
        const tome_pack_run *ru = NULL;
        for (uint32_t k = 0; k < e->n_runs; k++)
            if (ol >= e->runs[k].oline && ol < e->runs[k].oline + e->runs[k].count) ru = &e->runs[k];
        if (!ru) {
            tome_buf_free(&b);
            return tome_set_error(TOME_ERR_NOT_FOUND, "citation '%s': line %u is not in the pack (file %s)", cit, ol,
                                  e->status == TOME_FILE_OUTLINE ? "degraded to an outline" : "block");
        }
        uint32_t r = ru->rline + (ol - ru->oline);
        uint64_t s = e->text_offset + e->line_off[r];
        uint64_t t = e->text_offset + (r + 1 < e->n_rlines ? e->line_off[r + 1] : e->text_len);
        s += ru->prefix;
        if (s > t) s = t;
        tome_status st = tome_buf_append(&b, text + s, (size_t)(t - s));
        if (!st && (!b.len || b.data[b.len - 1] != '\n')) st = tome_buf_putc(&b, '\n');
        if (st) {
            tome_buf_free(&b);
            return st;
        }
    }
    *out = b.data;
    *out_len = b.len;
    return TOME_OK;
}

tome_status tome_pack_write_text(tome_pack_t *p, const char *path)
{
    const char *text;
    size_t len;
    TOME_FORWARD(tome_pack_text(p, &text, &len));
    tome_atomic_file *f;
    TOME_FORWARD(tome_atomic_open(path, &f));
    tome_status st = tome_atomic_write(f, text, len);
    if (st) {
        tome_atomic_abort(f);
        return st;
    }
    return tome_atomic_commit(f);
}
