/*
 * kvcache/kv_snapshot.c — saving a whole KV cache to a .tkv file and loading
 * it back (tome prefill -o, tome ask --context, prefill checkpoints).
 *
 * File layout (little-endian; offsets in the header):
 *
 *   +---------------------------------------------+ 0
 *   | header, 512 bytes (tome_kv_snap_hdr)         |  magic "TOMEKVS1", version,
 *   |                                             |  identity (model, tokenizer,
 *   |                                             |  pack hashes), layout numbers,
 *   |                                             |  n_done / n_total, section
 *   |                                             |  offsets, file length,
 *   |                                             |  XXH3-64 of the header
 *   +---------------------------------------------+ table_off
 *   | windows  int64 [n_layers]                   |
 *   | streams  snap_stream [n_layers * n_seqs]    |  chunk, base, len, open_p0,
 *   |                                             |  n_pages, float rows, their
 *   |                                             |  offset and XXH3-64
 *   +---------------------------------------------+ floats_off
 *   | float rows of every stream: sink pages      |
 *   | (K then V per page), recent pages (same),    |
 *   | then the open page's rows (K rows, V rows)   |
 *   +---------------------------------------------+ pages_off (4096-aligned)
 *   | sealed pages, page_bytes each, stream by     |  each page carries its own
 *   | stream in position order                     |  XXH3-64 (kv_layout.h)
 *   +---------------------------------------------+ trailer_off
 *   | trailer: "TKVSEND\0", file length, XXH3-64   |
 *   | of the table                                 |
 *   +---------------------------------------------+ file_bytes
 *
 * Sealed pages are copied byte for byte (from RAM, the page file or the
 * device), so a loaded cache reads exactly like the saved one. Saving goes
 * through tome_atomic_* (temp file, fsync, rename): a failure at any point
 * — disk full, RLIMIT_FSIZE, an unreadable page — leaves the previous file
 * at `path` untouched and no temp file behind.
 *
 * Loading checks, in order, and names what failed: the magic and version,
 * the header checksum, the file length (truncated), the table checksum,
 * the identity against the caller's (model / tokenizer / pack:
 * TOME_ERR_MISMATCH), each float blob's checksum and each page's checksum
 * and position (TOME_ERR_FORMAT). The loaded cache gets the saved layout
 * and the caller's tiers (budgets, disk directory, device).
 *
 * Loading fast: each page's tier is decided from the budgets first (no
 * I/O); pages bound for host RAM are read with large preads straight into
 * one slab of the pool (huge-page aligned) and verified in place, the runs
 * spread over all cores; device pages go through one buffer; pages past the
 * RAM budget stay where they are: disk-tier pages pointing into this file
 * (the cache keeps a descriptor), verified when read. Version 2 added the
 * recent pages (a count per stream record, the window in the header).
 */
#include "kvcache/kvcache_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "core/core_impl.h"
#include "core/error_impl.h"
#include "kvcache/kv_cache_impl.h"

#define SNAP_MAGIC "TOMEKVS1"
#define SNAP_END "TKVSEND"
#define SNAP_VERSION 2u /* 2: recent pages (float rows of the newest full pages) */

typedef struct snap_hdr {
    char magic[8];
    uint32_t version, header_bytes;
    uint64_t checksum;          /* XXH3-64 of the 512 bytes with this field 0 */
    char model_hash[40], tokenizer_hash[40], pack_hash[40];
    int32_t fmt, page_tokens, group, n_layers, n_kv_heads, head_dim, n_seqs, reserved0;
    int64_t max_tokens, sink, n_done, n_total;
    uint64_t page_bytes, n_pages, table_off, floats_off, pages_off, trailer_off, file_bytes;
    int64_t recent_pages;
    uint8_t pad[512 - 8 - 8 - 8 - 120 - 32 - 32 - 56 - 8];
} snap_hdr;
_Static_assert(sizeof(snap_hdr) == 512, "snapshot header is 512 bytes");

typedef struct snap_stream {
    int64_t chunk, base, len, open_p0;
    uint64_t n_pages, n_sink_pages, n_open_rows;
    uint64_t floats_off, floats_bytes, floats_xxh;
    uint64_t n_recent_pages;    /* the last pages before the open page, as float rows */
} snap_stream;
_Static_assert(sizeof(snap_stream) == 88, "snapshot stream record is 88 bytes");

typedef struct snap_trailer {
    char magic[8];
    uint64_t file_bytes, table_xxh;
} snap_trailer;

static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

static void put_hash(char dst[40], const char *src)
{
    memset(dst, 0, 40);
    if (src) snprintf(dst, 40, "%s", src);
}

/* ------------------------------------------------------------ save */
static tome_status w(tome_atomic_file *f, const void *p, size_t n, const char *path)
{
    tome_status st = tome_atomic_write(f, p, n);
    return st == TOME_OK ? st : tome_error_prefix(st, "snapshot %s", path);
}

tome_status tome_kv_snapshot_save(const tome_kvcache *kv, const char *path, const tome_kv_snapshot_meta *meta)
{
    const tome_kv_layout *L = &kv->L;
    const size_t nst = (size_t)kv->p.n_layers * (size_t)kv->p.n_seqs, HD = (size_t)L->hd, T = (size_t)L->page_tokens;
    snap_stream *ss = calloc(nst ? nst : 1, sizeof *ss);
    if (!ss) return tome_set_error(TOME_ERR_NOMEM, "snapshot %s: out of memory", path);
    snap_hdr h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, SNAP_MAGIC, 8);
    h.version = SNAP_VERSION;
    h.header_bytes = sizeof h;
    put_hash(h.model_hash, meta->id.model_hash);
    put_hash(h.tokenizer_hash, meta->id.tokenizer_hash);
    put_hash(h.pack_hash, meta->id.pack_hash);
    h.fmt = L->fmt;
    h.page_tokens = L->page_tokens;
    h.group = L->group;
    h.n_layers = kv->p.n_layers;
    h.n_kv_heads = kv->p.n_kv_heads;
    h.head_dim = kv->p.head_dim;
    h.n_seqs = kv->p.n_seqs;
    h.max_tokens = kv->p.max_tokens;
    h.sink = kv->sink;
    h.recent_pages = kv->recent_pages;
    h.n_done = meta->n_done;
    h.n_total = meta->n_total;
    h.page_bytes = L->page_bytes;
    h.table_off = sizeof h;
    uint64_t off = h.table_off + 8 * (uint64_t)kv->p.n_layers + sizeof(snap_stream) * nst;
    h.floats_off = off;
    uint64_t n_pages = 0;
    for (size_t i = 0; i < nst; i++) {
        const tome_kv_stream *s = &kv->st[i];
        snap_stream *r = &ss[i];
        r->chunk = s->chunk;
        r->base = s->base;
        r->len = s->len;
        r->open_p0 = s->open_p0;
        r->n_pages = s->n_pages;
        for (size_t j = 0; j < s->n_pages; j++)
            if (s->pages[j].tier == TOME_KV_TIER_SINK) r->n_sink_pages++;
            else if (s->pages[j].tier == TOME_KV_TIER_RECENT) r->n_recent_pages++;
        r->n_open_rows = (uint64_t)(s->len - s->open_p0);
        r->floats_off = off;
        r->floats_bytes = ((r->n_sink_pages + r->n_recent_pages) * T + r->n_open_rows) * HD * 2 * sizeof(float);
        XXH3_state_t *x = XXH3_createState();
        if (!x) {
            free(ss);
            return tome_set_error(TOME_ERR_NOMEM, "snapshot %s: out of memory", path);
        }
        XXH3_64bits_reset(x);
        for (size_t j = 0; j < r->n_sink_pages; j++) {
            XXH3_64bits_update(x, s->sink_k + j * T * HD, T * HD * sizeof(float));
            XXH3_64bits_update(x, s->sink_v + j * T * HD, T * HD * sizeof(float));
        }
        for (size_t j = s->n_pages - r->n_recent_pages; j < s->n_pages; j++) {
            XXH3_64bits_update(x, tome_kv_recent_k(kv, s, j), T * HD * sizeof(float));
            XXH3_64bits_update(x, tome_kv_recent_v(kv, s, j), T * HD * sizeof(float));
        }
        XXH3_64bits_update(x, s->open_k, r->n_open_rows * HD * sizeof(float));
        XXH3_64bits_update(x, s->open_v, r->n_open_rows * HD * sizeof(float));
        r->floats_xxh = XXH3_64bits_digest(x);
        XXH3_freeState(x);
        off += r->floats_bytes;
        n_pages += s->n_pages - r->n_sink_pages - r->n_recent_pages;
    }
    h.n_pages = n_pages;
    h.pages_off = align_up(off, 4096);
    h.trailer_off = h.pages_off + n_pages * L->page_bytes;
    h.file_bytes = h.trailer_off + sizeof(snap_trailer);
    XXH3_state_t *tx = XXH3_createState();
    if (!tx) {
        free(ss);
        return tome_set_error(TOME_ERR_NOMEM, "snapshot %s: out of memory", path);
    }
    XXH3_64bits_reset(tx);
    XXH3_64bits_update(tx, kv->window, 8 * (size_t)kv->p.n_layers);
    XXH3_64bits_update(tx, ss, sizeof(snap_stream) * nst);
    snap_trailer tr;
    memset(&tr, 0, sizeof tr);
    memcpy(tr.magic, SNAP_END, 8);
    tr.file_bytes = h.file_bytes;
    tr.table_xxh = XXH3_64bits_digest(tx);
    XXH3_freeState(tx);
    h.checksum = 0;
    h.checksum = XXH3_64bits(&h, sizeof h);

    tome_atomic_file *f = NULL;
    tome_status st = tome_atomic_open(path, &f);
    if (st != TOME_OK) {
        free(ss);
        return tome_error_prefix(st, "snapshot");
    }
    static const uint8_t zeros[4096];
    tome_kv_tbuf *b = NULL;
    st = w(f, &h, sizeof h, path);
    if (st == TOME_OK) st = w(f, kv->window, 8 * (size_t)kv->p.n_layers, path);
    if (st == TOME_OK) st = w(f, ss, sizeof(snap_stream) * nst, path);
    for (size_t i = 0; i < nst && st == TOME_OK; i++) {
        const tome_kv_stream *s = &kv->st[i];
        for (size_t j = 0; j < ss[i].n_sink_pages && st == TOME_OK; j++) {
            st = w(f, s->sink_k + j * T * HD, T * HD * sizeof(float), path);
            if (st == TOME_OK) st = w(f, s->sink_v + j * T * HD, T * HD * sizeof(float), path);
        }
        for (size_t j = s->n_pages - ss[i].n_recent_pages; j < s->n_pages && st == TOME_OK; j++) {
            st = w(f, tome_kv_recent_k(kv, s, j), T * HD * sizeof(float), path);
            if (st == TOME_OK) st = w(f, tome_kv_recent_v(kv, s, j), T * HD * sizeof(float), path);
        }
        if (st == TOME_OK) st = w(f, s->open_k, ss[i].n_open_rows * HD * sizeof(float), path);
        if (st == TOME_OK) st = w(f, s->open_v, ss[i].n_open_rows * HD * sizeof(float), path);
    }
    if (st == TOME_OK) st = w(f, zeros, (size_t)(h.pages_off - off), path);
    for (size_t i = 0; i < nst && st == TOME_OK; i++) {
        const tome_kv_stream *s = &kv->st[i];
        for (size_t j = 0; j < s->n_pages && st == TOME_OK; j++) {
            if (s->pages[j].tier == TOME_KV_TIER_SINK || s->pages[j].tier == TOME_KV_TIER_RECENT) continue;
            const uint8_t *page;
            st = tome_kv_read_page(kv, s, j, (int)(i / (size_t)kv->p.n_seqs), &b, &page);
            if (st == TOME_OK) st = w(f, page, L->page_bytes, path);
        }
    }
    if (st == TOME_OK) st = w(f, &tr, sizeof tr, path);
    free(ss);
    if (st != TOME_OK) {
        tome_atomic_abort(f);
        return st;
    }
    st = tome_atomic_commit(f);
    return st == TOME_OK ? st : tome_error_prefix(st, "snapshot %s", path);
}

/* ------------------------------------------------------------ load */
static tome_status check_header(const tome_mmap *m, const char *path, snap_hdr *h)
{
    if (m->len < sizeof *h)
        return tome_set_error(TOME_ERR_FORMAT, "snapshot %s: truncated (%zu bytes, the header alone is %zu)", path,
                              m->len, sizeof *h);
    memcpy(h, m->data, sizeof *h);
    if (memcmp(h->magic, SNAP_MAGIC, 8) != 0)
        return tome_set_error(TOME_ERR_FORMAT, "snapshot %s: not a tome KV snapshot (bad magic)", path);
    if (h->version != SNAP_VERSION)
        return tome_set_error(TOME_ERR_UNSUPPORTED, "snapshot %s: version %u, this tome reads version %u", path,
                              (unsigned)h->version, SNAP_VERSION);
    uint64_t want = h->checksum;
    h->checksum = 0;
    uint64_t got = XXH3_64bits(h, sizeof *h);
    h->checksum = want;
    if (got != want) return tome_set_error(TOME_ERR_FORMAT, "snapshot %s: corrupt header (checksum mismatch)", path);
    if (h->file_bytes != m->len)
        return tome_set_error(TOME_ERR_FORMAT, "snapshot %s: truncated or extended: %zu bytes, the header says %llu",
                              path, m->len, (unsigned long long)h->file_bytes);
    tome_kv_layout L;
    if (h->n_layers <= 0 || h->n_seqs <= 0 || h->n_layers > 100000 || h->n_seqs > 100000 ||
        tome_kv_layout_init(&L, h->fmt, h->page_tokens, h->n_kv_heads, h->head_dim, h->group) != 0 ||
        L.page_bytes != h->page_bytes || h->n_done < 0 || h->n_done > h->max_tokens)
        return tome_set_error(TOME_ERR_FORMAT, "snapshot %s: corrupt header (impossible layout numbers)", path);
    uint64_t nst = (uint64_t)h->n_layers * (uint64_t)h->n_seqs;
    if (h->table_off != sizeof *h || h->floats_off != h->table_off + 8 * (uint64_t)h->n_layers + sizeof(snap_stream) * nst ||
        h->pages_off < h->floats_off || h->trailer_off != h->pages_off + h->n_pages * h->page_bytes ||
        h->file_bytes != h->trailer_off + sizeof(snap_trailer))
        return tome_set_error(TOME_ERR_FORMAT, "snapshot %s: corrupt header (inconsistent section offsets)", path);
    snap_trailer tr;
    memcpy(&tr, m->data + h->trailer_off, sizeof tr);
    if (memcmp(tr.magic, SNAP_END, 8) != 0 || tr.file_bytes != h->file_bytes)
        return tome_set_error(TOME_ERR_FORMAT, "snapshot %s: corrupt trailer", path);
    uint64_t tx = XXH3_64bits(m->data + h->table_off, (size_t)(h->floats_off - h->table_off));
    if (tx != tr.table_xxh)
        return tome_set_error(TOME_ERR_FORMAT, "snapshot %s: corrupt stream table (checksum mismatch)", path);
    return TOME_OK;
}

static void fill_info(const snap_hdr *h, tome_kv_snapshot_info *info)
{
    memset(info, 0, sizeof *info);
    memcpy(info->id.model_hash, h->model_hash, 32);
    memcpy(info->id.tokenizer_hash, h->tokenizer_hash, 32);
    memcpy(info->id.pack_hash, h->pack_hash, 32);
    info->n_done = h->n_done;
    info->n_total = h->n_total;
    info->fmt = h->fmt;
    info->page_tokens = h->page_tokens;
    info->n_layers = h->n_layers;
    info->n_kv_heads = h->n_kv_heads;
    info->head_dim = h->head_dim;
    info->n_seqs = h->n_seqs;
    info->max_tokens = h->max_tokens;
    info->n_pages = h->n_pages;
    info->file_bytes = h->file_bytes;
}

tome_status tome_kv_snapshot_info_read(const char *path, tome_kv_snapshot_info *info)
{
    tome_mmap m = {0};
    TOME_FORWARD(tome_error_prefix(tome_mmap_open(path, &m), "snapshot"));
    snap_hdr h;
    tome_status st = check_header(&m, path, &h);
    if (st == TOME_OK) fill_info(&h, info);
    tome_mmap_close(&m);
    return st;
}

static tome_status check_id(const char *path, const char *what, const char *have, const char *want)
{
    if (!want || !*want) return TOME_OK;
    if (strncmp(have, want, 32) == 0) return TOME_OK;
    return tome_set_error(TOME_ERR_MISMATCH, "snapshot %s was made with another %s (%s %.32s, this one %.32s)", path,
                          what, what, *have ? have : "(none)", want);
}

/* Pages of a snapshot that go to host RAM are read straight into one slab
 * of the cache's pool with large preads and verified there, in parallel: a
 * segment is a run of pages consecutive in the file and in the slab. */
typedef struct load_page {
    int layer, seq;
    uint64_t j;     /* page index in its stream */
    int64_t p0;
} load_page;

typedef struct load_seg {
    uint64_t off;   /* file offset of the first page */
    uint8_t *dst;   /* its block */
    size_t n;       /* pages */
    size_t first;   /* index into load_ctx.pages */
} load_seg;

typedef struct load_ctx {
    const tome_kv_layout *L;
    const char *path;
    int fd;
    load_seg *segs;
    load_page *pages;
} load_ctx;

enum { LOAD_SEG_BYTES = 8u << 20 };

static tome_status pread_all(int fd, uint8_t *dst, size_t n, uint64_t off, const char *path)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, dst + got, n - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int e = r < 0 ? errno : EIO;
            return tome_set_errno(TOME_ERR_IO, e, "snapshot %s: reading %zu bytes at offset %llu", path, n - got,
                                  (unsigned long long)(off + got));
        }
        got += (size_t)r;
    }
    return TOME_OK;
}

static tome_status load_seg_run(void *vctx, size_t item, int thread_index)
{
    (void)thread_index;
    const load_ctx *c = vctx;
    const load_seg *g = &c->segs[item];
    const size_t pb = c->L->page_bytes;
    TOME_FORWARD(pread_all(c->fd, g->dst, g->n * pb, g->off, c->path));
    for (size_t i = 0; i < g->n; i++) {
        const load_page *lp = &c->pages[g->first + i];
        const uint8_t *page = g->dst + i * pb;
        if (tome_kv_page_verify(c->L, page, lp->p0, "page") == TOME_OK) continue;
        char what[512]; /* again, for a message that names the page */
        snprintf(what, sizeof what, "snapshot %s: layer %d sequence %d page %llu", c->path, lp->layer, lp->seq,
                 (unsigned long long)lp->j);
        TOME_FORWARD(tome_kv_page_verify(c->L, page, lp->p0, what));
    }
    return TOME_OK;
}

tome_status tome_kv_snapshot_load(const char *path, const tome_kv_identity *expect, const tome_kv_params *tiers,
                                  tome_kvcache **out, tome_kv_snapshot_info *info)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return tome_set_errno(tome_status_from_errno(e), e, "snapshot: cannot open %s", path);
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return tome_set_errno(TOME_ERR_IO, e, "snapshot: cannot stat %s", path);
    }
    tome_mmap m = {0};
    if (sb.st_size > 0) {
        void *d = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (d == MAP_FAILED) {
            int e = errno;
            close(fd);
            return tome_set_errno(TOME_ERR_IO, e, "snapshot: cannot map %s", path);
        }
        m.data = d;
        m.len = (size_t)sb.st_size;
    }
    snap_hdr h;
    tome_kvcache *kv = NULL;
    int64_t *window = NULL;
    load_page *lpages = NULL;
    load_seg *segs = NULL;
    size_t n_segs = 0, n_bulk = 0;
    uint8_t *tmp = NULL;
    tome_status st = check_header(&m, path, &h);
    if (st == TOME_OK && expect) {
        st = check_id(path, "model", h.model_hash, expect->model_hash);
        if (st == TOME_OK) st = check_id(path, "tokenizer", h.tokenizer_hash, expect->tokenizer_hash);
        if (st == TOME_OK) st = check_id(path, "pack", h.pack_hash, expect->pack_hash);
    }
    if (st != TOME_OK) goto done;
    const size_t nst = (size_t)h.n_layers * (size_t)h.n_seqs;
    window = malloc(8 * (size_t)h.n_layers);
    if (!window) {
        st = tome_set_error(TOME_ERR_NOMEM, "snapshot %s: out of memory", path);
        goto done;
    }
    memcpy(window, m.data + h.table_off, 8 * (size_t)h.n_layers);
    tome_kv_params p = {0};
    if (tiers) p = *tiers;
    p.n_layers = h.n_layers;
    p.n_kv_heads = h.n_kv_heads;
    p.head_dim = h.head_dim;
    p.n_seqs = h.n_seqs;
    /* a caller may ask for room past the snapshot (the question and answer
     * that follow a saved context); never less than what was saved */
    p.max_tokens = tiers && tiers->max_tokens > h.max_tokens ? tiers->max_tokens : h.max_tokens;
    p.window = window;
    p.fmt = h.fmt;
    p.page_tokens = h.page_tokens;
    p.group = h.group;
    p.sink_tokens = h.sink;
    p.recent_tokens = h.recent_pages * h.page_tokens;
    st = tome_kv_open(&p, &kv);
    if (st != TOME_OK) goto done;
    const snap_stream *recs = (const snap_stream *)(const void *)(m.data + h.table_off + 8 * (size_t)h.n_layers);
    const size_t HD = (size_t)kv->L.hd, T = (size_t)kv->L.page_tokens, pb = kv->L.page_bytes;
    /* pass 1: check the records; count the pages that go to RAM */
    uint64_t sim_dev = kv->dev_used, sim_ram = kv->ram_used - kv->ram_chunked_used, page_i = 0;
    for (size_t i = 0; i < nst; i++) {
        snap_stream r;
        memcpy(&r, &recs[i], sizeof r);
        const int layer = (int)(i / (size_t)h.n_seqs), seq = (int)(i % (size_t)h.n_seqs);
        const int chunked = kv->st[i].chunked;
        int64_t nsealed = (int64_t)r.n_pages - (int64_t)r.n_sink_pages - (int64_t)r.n_recent_pages;
        if (r.n_recent_pages > (uint64_t)kv->recent_pages || h.recent_pages != kv->recent_pages || r.n_open_rows >= T || r.n_pages > (uint64_t)h.max_tokens / T + 1 || nsealed < 0 ||
            r.open_p0 != r.base + (int64_t)(r.n_pages * T) || r.len != r.open_p0 + (int64_t)r.n_open_rows ||
            r.len > h.max_tokens || (chunked ? (r.chunk >= 0 && r.base != r.chunk * window[layer]) : r.base != 0) ||
            (!chunked && (int64_t)(r.n_sink_pages * T) > kv->sink) || (chunked && r.n_sink_pages) ||
            r.floats_off < h.floats_off || r.floats_off > h.pages_off || r.floats_bytes > h.pages_off - r.floats_off ||
            r.floats_bytes != ((r.n_sink_pages + r.n_recent_pages) * T + r.n_open_rows) * HD * 2 * sizeof(float) ||
            page_i + (uint64_t)nsealed > h.n_pages) {
            st = tome_set_error(TOME_ERR_FORMAT, "snapshot %s: layer %d sequence %d: corrupt stream record", path, layer,
                                seq);
            goto done;
        }
        page_i += (uint64_t)nsealed;
        for (int64_t j = 0; j < nsealed; j++)
            if (tome_kv_place_tier(kv, chunked, &sim_dev, &sim_ram) == TOME_KV_TIER_RAM) n_bulk++;
    }
    if (page_i != h.n_pages) {
        st = tome_set_error(TOME_ERR_FORMAT, "snapshot %s: %llu pages stored, the streams use %llu", path,
                            (unsigned long long)h.n_pages, (unsigned long long)page_i);
        goto done;
    }
    uint8_t *bulk = NULL;
    st = tome_error_prefix(tome_kv_ram_bulk(kv, n_bulk, &bulk), "snapshot %s", path);
    if (st != TOME_OK) goto done;
    lpages = malloc((n_bulk ? n_bulk : 1) * sizeof *lpages);
    segs = malloc((n_bulk ? n_bulk : 1) * sizeof *segs);
    tmp = aligned_alloc(64, (pb + 63) & ~(size_t)63);
    if (!lpages || !segs || !tmp) {
        st = tome_set_error(TOME_ERR_NOMEM, "snapshot %s: out of memory", path);
        goto done;
    }
    /* pass 2: float rows, page records; device pages are placed now, RAM
     * pages are read below, the rest stay in the snapshot file */
    size_t used = 0;
    page_i = 0;
    for (size_t i = 0; i < nst && st == TOME_OK; i++) {
        snap_stream r;
        memcpy(&r, &recs[i], sizeof r);
        tome_kv_stream *s = &kv->st[i];
        const int layer = (int)(i / (size_t)h.n_seqs), seq = (int)(i % (size_t)h.n_seqs);
        const int64_t nsealed = (int64_t)r.n_pages - (int64_t)r.n_sink_pages - (int64_t)r.n_recent_pages;
        const uint8_t *fl = m.data + r.floats_off;
        if (XXH3_64bits(fl, (size_t)r.floats_bytes) != r.floats_xxh) {
            st = tome_set_error(TOME_ERR_FORMAT, "snapshot %s: layer %d sequence %d: float rows corrupt (checksum mismatch)",
                                path, layer, seq);
            break;
        }
        s->chunk = r.chunk;
        s->base = r.base;
        s->len = r.len;
        s->open_p0 = r.open_p0;
        for (size_t j = 0; j < r.n_sink_pages; j++) {
            memcpy(s->sink_k + j * T * HD, fl, T * HD * sizeof(float));
            fl += T * HD * sizeof(float);
            memcpy(s->sink_v + j * T * HD, fl, T * HD * sizeof(float));
            fl += T * HD * sizeof(float);
            tome_kv_page pg = {.tier = TOME_KV_TIER_SINK};
            st = tome_kv_stream_push(kv, s, &pg);
            if (st != TOME_OK) break;
        }
        if (st != TOME_OK) break;
        const uint8_t *recent = fl; /* pushed after the sealed pages */
        fl += r.n_recent_pages * 2 * T * HD * sizeof(float);
        memcpy(s->open_k, fl, r.n_open_rows * HD * sizeof(float));
        fl += r.n_open_rows * HD * sizeof(float);
        memcpy(s->open_v, fl, r.n_open_rows * HD * sizeof(float));
        for (int64_t j = 0; j < nsealed && st == TOME_OK; j++, page_i++) {
            const uint64_t off = h.pages_off + page_i * pb, jj = r.n_sink_pages + (uint64_t)j;
            const int64_t p0 = r.base + (int64_t)(jj * T);
            uint64_t d = kv->dev_used, ram = kv->ram_used - kv->ram_chunked_used;
            int tier = tome_kv_place_tier(kv, s->chunked, &d, &ram);
            tome_kv_page pg;
            if (tier == TOME_KV_TIER_RAM && used < n_bulk) {
                uint8_t *dst = bulk + used * pb;
                lpages[used] = (load_page){.layer = layer, .seq = seq, .j = jj, .p0 = p0};
                load_seg *g = n_segs ? &segs[n_segs - 1] : NULL;
                if (g && g->off + g->n * pb == off && g->dst + g->n * pb == dst && (g->n + 1) * pb <= LOAD_SEG_BYTES) {
                    g->n++;
                } else {
                    segs[n_segs++] = (load_seg){.off = off, .dst = dst, .n = 1, .first = used};
                }
                used++;
                tome_kv_adopt_ram(kv, dst, s->chunked, &pg);
            } else if (tier == TOME_KV_TIER_DISK) {
                if (kv->snap_fd < 0) {
                    kv->snap_fd = dup(fd);
                    if (kv->snap_fd < 0) {
                        int e = errno;
                        st = tome_set_errno(TOME_ERR_IO, e, "snapshot %s: cannot keep the file open", path);
                        break;
                    }
                }
                tome_kv_adopt_snap(kv, off, s->chunked, &pg);
            } else { /* the device (or RAM past what was counted): through a buffer */
                char what[512];
                snprintf(what, sizeof what, "snapshot %s: layer %d sequence %d page %llu", path, layer, seq,
                         (unsigned long long)jj);
                st = pread_all(fd, tmp, pb, off, path);
                if (st == TOME_OK) st = tome_kv_page_verify(&kv->L, tmp, p0, what);
                if (st == TOME_OK) st = tome_error_prefix(tome_kv_place_page(kv, tmp, s->chunked, &pg), "snapshot %s", path);
                if (st != TOME_OK) break;
            }
            st = tome_kv_stream_push(kv, s, &pg);
        }
        for (uint64_t k = 0; k < r.n_recent_pages && st == TOME_OK; k++) {
            const size_t j = s->n_pages;
            memcpy(tome_kv_recent_k(kv, s, j), recent, T * HD * sizeof(float));
            recent += T * HD * sizeof(float);
            memcpy(tome_kv_recent_v(kv, s, j), recent, T * HD * sizeof(float));
            recent += T * HD * sizeof(float);
            tome_kv_page pg = {.tier = TOME_KV_TIER_RECENT};
            st = tome_kv_stream_push(kv, s, &pg);
        }
    }
    if (st == TOME_OK && n_segs) {
        load_ctx c = {.L = &kv->L, .path = path, .fd = fd, .segs = segs, .pages = lpages};
        st = tome_parallel_for(n_segs, 0, load_seg_run, &c);
    }
    if (st == TOME_OK && info) fill_info(&h, info);
done:
    if (m.data) munmap((void *)m.data, m.len);
    close(fd);
    free(window);
    free(lpages);
    free(segs);
    free(tmp);
    if (st != TOME_OK) {
        tome_kv_free(kv);
        return st;
    }
    kv->epoch++;
    *out = kv;
    return TOME_OK;
}
