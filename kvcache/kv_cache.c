/*
 * kvcache/kv_cache.c — the paged, quantized, tiered KV cache behind
 * kvcache_impl.h.
 *
 * Streams. Every (layer, sequence) is a stream: a list of pages in position
 * order plus one open page. Page j of a stream holds positions
 * [base + j*T, base + (j+1)*T), base being 0 on a global layer and the start
 * of the chunk held on a chunked layer. Rows arrive in the open page (float32,
 * [T][HD] for K and as much for V); when it fills it is sealed — quantized
 * into a fixed-size block (kv_layout.h) — and placed in a tier. The first
 * `sink` positions of a global layer are kept as float rows instead of being
 * sealed (attention sinks stay exact). The newest < T positions are always
 * the open page's float rows; with recent_pages R > 0 the R full pages before
 * them stay float too (TOME_KV_TIER_RECENT, a ring of R pages per stream,
 * page j in slot j % R) and page j is sealed when page j + R arrives, into
 * the same bytes it would have had at once.
 *
 *   stream (layer l, seq s):  [p0 p1 p2 ... pn-1 | open: r rows float32]
 *                               |   |        |
 *                         RAM block | ...   disk (offset, zstd length)
 *
 * Layer policy. A chunked layer (window C) holds one chunk: the first write of
 * a new chunk releases the stream's pages back to the pool and restarts it at
 * base = chunk start, so its memory is ceil(C/T) pages whatever the context
 * length. A global layer keeps every page.
 *
 * Pool and tiers. Sealed RAM pages are fixed-size blocks cut from slabs and
 * recycled through a free list. Placement at seal time, in order:
 *   1. device tier, while its budget lasts (a slot filled by a backend:
 *      tome_kv_device_ops; absent on CPU builds and untested here);
 *   2. host RAM, while ram_budget lasts; the pages of chunked layers are
 *      reserved up front (open fails when ram_budget cannot hold one chunk of
 *      every chunked layer) and always stay in RAM;
 *   3. the page file in disk_dir: the page is zstd-compressed (stored raw
 *      when zstd saves less than 5%, as on int8/int4 codes) and appended to
 *      an unlinked temporary file (one per cache); otherwise TOME_ERR_LIMIT.
 * Pages never move after placement: the oldest positions fill the fast tiers
 * and later ones spill, so attention, which reads positions in increasing
 * order, streams RAM pages first and then disk pages in file order;
 * tome_kv_prefetch queues a range for the read-ahead thread (kv_prefetch.c)
 * and it and every disk read ask the kernel to read ahead (posix_fadvise
 * WILLNEED) the next pages of the file. tome_kv_set_device_allocator
 * installs, shrinks or removes the device tier later; device pages then go
 * back to RAM (newest page index first). Disk pages may also lie in a
 * loaded snapshot file (disk_snap; kv_snapshot.c), read in place.
 *
 * Reads. view_at returns a zero-copy view of a RAM page or the float rows;
 * a disk page is pread into a per-thread buffer, decompressed and its
 * checksum verified (a mismatch is TOME_ERR_FORMAT naming layer, page and
 * offset). span_at returns float rows: for a quantized page it dequantizes
 * into per-thread buffers, memoized per page until the cache changes (the
 * epoch counter). Per-thread buffers belong to the cache (a list under a
 * mutex) and are found through a small thread-local table keyed by the
 * cache's serial number; tome_kv_free frees them all.
 *
 * Who frees what: the cache owns slabs, streams, the page file descriptor
 * and thread buffers; callers own nothing returned by reads.
 */
#include "kvcache/kv_cache_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zstd.h>

#include "core/error_impl.h"

enum { SLAB_PAGES = 32 };

static atomic_uint_fast64_t g_serial = 1;

/* ------------------------------------------------------------ pool */
static uint8_t *pool_get(tome_kvcache *kv)
{
    if (!kv->free_list) {
        size_t pb = kv->L.page_bytes;
        if (kv->n_slabs == kv->cap_slabs) {
            size_t nc = kv->cap_slabs ? 2 * kv->cap_slabs : 16;
            uint8_t **ns = realloc(kv->slabs, nc * sizeof *ns);
            if (!ns) return NULL;
            kv->slabs = ns;
            kv->cap_slabs = nc;
        }
        uint8_t *slab = aligned_alloc(64, ((pb * SLAB_PAGES) + 63) & ~(size_t)63);
        if (!slab) return NULL;
        kv->slabs[kv->n_slabs++] = slab;
        kv->pool_bytes += pb * SLAB_PAGES;
        for (int i = SLAB_PAGES - 1; i >= 0; i--) {
            uint8_t *b = slab + (size_t)i * pb;
            memcpy(b, &kv->free_list, sizeof(uint8_t *));
            kv->free_list = b;
        }
    }
    uint8_t *b = kv->free_list;
    memcpy(&kv->free_list, b, sizeof(uint8_t *));
    return b;
}

static void pool_put(tome_kvcache *kv, uint8_t *b)
{
    memcpy(b, &kv->free_list, sizeof(uint8_t *));
    kv->free_list = b;
}

/* ------------------------------------------------------------ pages */
static void page_release(tome_kvcache *kv, tome_kv_page *pg)
{
    switch (pg->tier) {
    case TOME_KV_TIER_RAM:
        pool_put(kv, pg->ram);
        kv->ram_used -= kv->L.page_bytes;
        if (pg->chunked) kv->ram_chunked_used -= kv->L.page_bytes;
        kv->n_ram--;
        break;
    case TOME_KV_TIER_DISK:
        if (pg->disk_snap) { /* lies in the loaded snapshot: nothing to free */
            kv->n_disk--;
            kv->n_snap--;
            break;
        }
        kv->disk_live -= pg->disk_len;
        kv->disk_live_raw -= kv->L.page_bytes;
        kv->n_disk--;
        break;
    case TOME_KV_TIER_DEVICE:
        kv->p.device->free(kv->p.device->ctx, pg->dev);
        kv->dev_used -= kv->L.page_bytes;
        kv->n_dev--;
        break;
    default: break;
    }
    memset(pg, 0, sizeof *pg);
    if (kv->n_disk == kv->n_snap && kv->disk_fd >= 0 && kv->disk_end > 0) {
        /* nothing live in the page file: start it over */
        if (ftruncate(kv->disk_fd, 0) == 0) kv->disk_end = 0;
    }
}

static tome_status disk_open(tome_kvcache *kv)
{
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/tome-kv-XXXXXX", kv->disk_dir);
    if (n < 0 || (size_t)n >= sizeof path)
        return tome_set_error(TOME_ERR_INVALID_ARG, "kv cache: disk directory name too long");
    int fd = mkstemp(path);
    if (fd < 0)
        return tome_set_errno(tome_status_from_errno(errno), errno, "kv cache: cannot create the page file in %s",
                              kv->disk_dir);
    unlink(path);
    kv->disk_fd = fd;
    return TOME_OK;
}

/* Writes the sealed page to the page file. */
static tome_status disk_put(tome_kvcache *kv, const uint8_t *page, tome_kv_page *pg)
{
    if (kv->disk_fd < 0) TOME_FORWARD(disk_open(kv));
    size_t zn = ZSTD_compress(kv->zbuf, kv->zcap, page, kv->L.page_bytes, kv->zstd_level);
    if (ZSTD_isError(zn))
        return tome_set_error(TOME_ERR_INTERNAL, "kv cache: zstd: %s", ZSTD_getErrorName(zn));
    const uint8_t *src = kv->zbuf;
    int raw = 0;
    if (zn * 20 >= (size_t)kv->L.page_bytes * 19) { /* zstd saves < 5% (quantized codes): store as is, read with no decompression */
        src = page;
        zn = kv->L.page_bytes;
        raw = 1;
    }
    if (kv->p.disk_budget && kv->disk_end + zn > kv->p.disk_budget)
        return tome_set_error(TOME_ERR_LIMIT,
                              "kv cache: the disk budget of %llu bytes is full (%llu pages in %s); raise the budget "
                              "or choose a smaller KV format",
                              (unsigned long long)kv->p.disk_budget, (unsigned long long)kv->n_disk, kv->disk_dir);
    size_t done = 0;
    while (done < zn) {
        ssize_t w = pwrite(kv->disk_fd, src + done, zn - done, (off_t)(kv->disk_end + done));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int e = w < 0 ? errno : ENOSPC;
            return tome_set_errno(tome_status_from_errno(e), e, "kv cache: writing the page file in %s at offset %llu",
                                  kv->disk_dir, (unsigned long long)(kv->disk_end + done));
        }
        done += (size_t)w;
    }
    pg->tier = TOME_KV_TIER_DISK;
    pg->disk_off = kv->disk_end;
    pg->disk_len = (uint32_t)zn;
    pg->disk_raw = (uint8_t)raw;
    kv->disk_end += zn;
    kv->disk_live += zn;
    kv->disk_live_raw += kv->L.page_bytes;
    kv->n_disk++;
    kv->spills++;
    return TOME_OK;
}

tome_status tome_kv_place_page(tome_kvcache *kv, const uint8_t *page, int chunked, tome_kv_page *pg)
{
    const uint64_t pb = kv->L.page_bytes;
    memset(pg, 0, sizeof *pg);
    pg->chunked = (uint8_t)chunked;
    if (!chunked && kv->p.device && kv->dev_used + pb <= kv->p.device_budget) {
        void *d = kv->p.device->alloc(kv->p.device->ctx, pb);
        if (d) {
            tome_status st = kv->p.device->upload(kv->p.device->ctx, d, page, pb);
            if (st != TOME_OK) {
                kv->p.device->free(kv->p.device->ctx, d);
                return st;
            }
            pg->tier = TOME_KV_TIER_DEVICE;
            pg->dev = d;
            kv->dev_used += pb;
            kv->n_dev++;
            return TOME_OK;
        }
    }
    int ram_ok = chunked || !kv->p.ram_budget || kv->ram_used - kv->ram_chunked_used + pb <= kv->ram_global_budget;
    if (ram_ok) {
        uint8_t *b = pool_get(kv);
        if (!b) return tome_set_error(TOME_ERR_NOMEM, "kv cache: out of memory for a %llu-byte page", (unsigned long long)pb);
        memcpy(b, page, pb);
        pg->tier = TOME_KV_TIER_RAM;
        pg->ram = b;
        kv->ram_used += pb;
        if (chunked) kv->ram_chunked_used += pb;
        kv->n_ram++;
        return TOME_OK;
    }
    if (!kv->disk_dir)
        return tome_set_error(TOME_ERR_LIMIT,
                              "kv cache: the RAM budget of %llu bytes is full (%llu pages of %llu bytes) and there is "
                              "no disk tier (give a disk directory or a larger budget)",
                              (unsigned long long)kv->p.ram_budget, (unsigned long long)kv->n_ram,
                              (unsigned long long)pb);
    return disk_put(kv, page, pg);
}

int tome_kv_place_tier(const tome_kvcache *kv, int chunked, uint64_t *sim_dev, uint64_t *sim_ram)
{
    const uint64_t pb = kv->L.page_bytes;
    if (!chunked && kv->p.device && *sim_dev + pb <= kv->p.device_budget) {
        *sim_dev += pb;
        return TOME_KV_TIER_DEVICE;
    }
    if (chunked) return TOME_KV_TIER_RAM;
    if (!kv->p.ram_budget || *sim_ram + pb <= kv->ram_global_budget) {
        *sim_ram += pb;
        return TOME_KV_TIER_RAM;
    }
    return TOME_KV_TIER_DISK;
}

tome_status tome_kv_ram_bulk(tome_kvcache *kv, size_t n, uint8_t **base)
{
    const size_t pb = kv->L.page_bytes;
    *base = NULL;
    if (n == 0) return TOME_OK;
    if (kv->n_slabs == kv->cap_slabs) {
        size_t nc = kv->cap_slabs ? 2 * kv->cap_slabs : 16;
        uint8_t **ns = realloc(kv->slabs, nc * sizeof *ns);
        if (!ns) return tome_set_error(TOME_ERR_NOMEM, "kv cache: out of memory");
        kv->slabs = ns;
        kv->cap_slabs = nc;
    }
    /* 2 MiB-aligned so that the kernel can back it with huge pages (one
     * fault per 2 MiB instead of per 4 KiB while a snapshot is read in) */
    const size_t huge = (size_t)2 << 20;
    size_t bytes = n <= (SIZE_MAX - huge) / pb ? (pb * n + huge - 1) & ~(huge - 1) : 0;
    uint8_t *slab = bytes ? aligned_alloc(huge, bytes) : NULL;
    if (!slab)
        return tome_set_error(TOME_ERR_NOMEM, "kv cache: out of memory for %zu pages of %zu bytes", n, pb);
#ifdef MADV_HUGEPAGE
    (void)madvise(slab, bytes, MADV_HUGEPAGE);
#endif
    kv->slabs[kv->n_slabs++] = slab;
    kv->pool_bytes += (uint64_t)pb * n;
    *base = slab;
    return TOME_OK;
}

void tome_kv_adopt_ram(tome_kvcache *kv, uint8_t *block, int chunked, tome_kv_page *pg)
{
    const uint64_t pb = kv->L.page_bytes;
    memset(pg, 0, sizeof *pg);
    pg->chunked = (uint8_t)chunked;
    pg->tier = TOME_KV_TIER_RAM;
    pg->ram = block;
    kv->ram_used += pb;
    if (chunked) kv->ram_chunked_used += pb;
    kv->n_ram++;
}

void tome_kv_adopt_snap(tome_kvcache *kv, uint64_t off, int chunked, tome_kv_page *pg)
{
    memset(pg, 0, sizeof *pg);
    pg->chunked = (uint8_t)chunked;
    pg->tier = TOME_KV_TIER_DISK;
    pg->disk_snap = 1;
    pg->disk_raw = 1;
    pg->disk_len = kv->L.page_bytes;
    pg->disk_off = off;
    kv->n_disk++;
    kv->n_snap++;
}

/* Moves device page pg back to the host (RAM, else disk). */
static tome_status device_evict(tome_kvcache *kv, tome_kv_page *pg, int layer, size_t j, int64_t p0)
{
    const uint64_t pb = kv->L.page_bytes;
    TOME_FORWARD(kv->p.device->download(kv->p.device->ctx, kv->seal_buf, pg->dev, pb));
    char what[128];
    snprintf(what, sizeof what, "kv cache: layer %d page %zu (device)", layer, j);
    TOME_FORWARD(tome_kv_page_verify(&kv->L, kv->seal_buf, p0, what));
    const tome_kv_device_ops *dev = kv->p.device;
    tome_kv_page np;
    kv->p.device = NULL; /* place on the host tiers only */
    tome_status st = tome_kv_place_page(kv, kv->seal_buf, pg->chunked, &np);
    kv->p.device = dev;
    TOME_FORWARD(tome_error_prefix(st, "layer %d", layer));
    dev->free(dev->ctx, pg->dev);
    kv->dev_used -= pb;
    kv->n_dev--;
    *pg = np;
    return TOME_OK;
}

tome_status tome_kv_set_device_allocator(tome_kvcache *kv, const tome_kv_device_ops *ops, uint64_t budget)
{
    if (ops && (!ops->alloc || !ops->free || !ops->upload || !ops->download))
        return tome_set_error(TOME_ERR_INVALID_ARG, "kv cache: device tier ops incomplete");
    kv->epoch++;
    const int same = ops && kv->p.device && memcmp(ops, &kv->dev_ops, sizeof *ops) == 0;
    const uint64_t keep = same ? budget : 0;
    const size_t nst = (size_t)kv->p.n_layers * (size_t)kv->p.n_seqs;
    size_t maxp = 0;
    for (size_t i = 0; i < nst; i++)
        if (kv->st[i].n_pages > maxp) maxp = kv->st[i].n_pages;
    for (size_t j = maxp; j-- > 0 && kv->dev_used > keep;)
        for (size_t i = nst; i-- > 0 && kv->dev_used > keep;) {
            tome_kv_stream *s = &kv->st[i];
            if (j >= s->n_pages || s->pages[j].tier != TOME_KV_TIER_DEVICE) continue;
            TOME_FORWARD(device_evict(kv, &s->pages[j], (int)(i / (size_t)kv->p.n_seqs), j,
                                      s->base + (int64_t)j * kv->L.page_tokens));
        }
    if (ops) {
        kv->dev_ops = *ops;
        kv->p.device = &kv->dev_ops;
    } else {
        kv->p.device = NULL;
    }
    kv->p.device_budget = budget;
    return TOME_OK;
}

/* ------------------------------------------------------------ streams */
static tome_kv_stream *stream(const tome_kvcache *kv, int layer, int seq)
{
    return &kv->st[(size_t)layer * (size_t)kv->p.n_seqs + (size_t)seq];
}

static void stream_drop_pages(tome_kvcache *kv, tome_kv_stream *s, size_t from)
{
    for (size_t j = from; j < s->n_pages; j++) page_release(kv, &s->pages[j]);
    if (s->n_pages > from) s->n_pages = from;
}

static void stream_reset(tome_kvcache *kv, tome_kv_stream *s, int64_t base)
{
    stream_drop_pages(kv, s, 0);
    s->base = base;
    s->len = base;
    s->open_p0 = base;
}

tome_status tome_kv_stream_push(tome_kvcache *kv, tome_kv_stream *s, const tome_kv_page *pg)
{
    if (s->n_pages == s->cap_pages) {
        size_t nc = s->cap_pages ? 2 * s->cap_pages : 16;
        tome_kv_page *np = realloc(s->pages, nc * sizeof *np);
        if (!np) return tome_set_error(TOME_ERR_NOMEM, "kv cache: out of memory for a page table");
        s->pages = np;
        s->cap_pages = nc;
    }
    s->pages[s->n_pages++] = *pg;
    return TOME_OK;
}

/* The open page is full: seal it (or keep it as sink rows). */
static tome_status stream_seal(tome_kvcache *kv, int layer, int seq, tome_kv_stream *s)
{
    const size_t T = (size_t)kv->L.page_tokens, HD = (size_t)kv->L.hd;
    tome_kv_page pg = {0};
    size_t j = s->n_pages;
    if (!s->chunked && (int64_t)((j + 1) * T) <= kv->sink) {
        memcpy(s->sink_k + j * T * HD, s->open_k, T * HD * sizeof(float));
        memcpy(s->sink_v + j * T * HD, s->open_v, T * HD * sizeof(float));
        pg.tier = TOME_KV_TIER_SINK;
    } else if (kv->recent_pages > 0) {
        /* page j joins the recent ring; page j - R leaves it: seal that one */
        const size_t R = (size_t)kv->recent_pages;
        if (j >= R && s->pages[j - R].tier == TOME_KV_TIER_RECENT) {
            tome_kv_page old = {0};
            tome_kv_page_seal(&kv->L, tome_kv_recent_k(kv, s, j - R), tome_kv_recent_v(kv, s, j - R),
                              s->base + (int64_t)((j - R) * T), layer, seq, kv->seal_buf);
            TOME_FORWARD(tome_error_prefix(tome_kv_place_page(kv, kv->seal_buf, s->chunked, &old), "layer %d", layer));
            s->pages[j - R] = old;
        }
        memcpy(tome_kv_recent_k(kv, s, j), s->open_k, T * HD * sizeof(float));
        memcpy(tome_kv_recent_v(kv, s, j), s->open_v, T * HD * sizeof(float));
        pg.tier = TOME_KV_TIER_RECENT;
    } else {
        tome_kv_page_seal(&kv->L, s->open_k, s->open_v, s->open_p0, layer, seq, kv->seal_buf);
        TOME_FORWARD(tome_error_prefix(tome_kv_place_page(kv, kv->seal_buf, s->chunked, &pg), "layer %d", layer));
    }
    tome_status st = tome_kv_stream_push(kv, s, &pg);
    if (st != TOME_OK) {
        page_release(kv, &pg);
        return st;
    }
    s->open_p0 += (int64_t)T;
    return TOME_OK;
}

/* Float rows of page j of s, rows [0, T), into ko/vo (for unsealing). */
static tome_status page_rows(const tome_kvcache *kv, const tome_kv_stream *s, size_t j, int layer, float *ko, float *vo);

/* Drops positions >= pos (pos < s->len, pos >= s->base). */
static tome_status stream_truncate(tome_kvcache *kv, int layer, tome_kv_stream *s, int64_t pos)
{
    const int64_t T = kv->L.page_tokens;
    if (pos < s->open_p0) {
        size_t j = (size_t)((pos - s->base) / T);
        TOME_FORWARD(page_rows(kv, s, j, layer, s->open_k, s->open_v));
        stream_drop_pages(kv, s, j);
        s->open_p0 = s->base + (int64_t)j * T;
    }
    s->len = pos;
    return TOME_OK;
}

/* ------------------------------------------------------------ open / free */
static tome_status check_params(const tome_kv_params *p)
{
    if (p->n_layers <= 0 || p->n_kv_heads <= 0 || p->head_dim <= 0 || p->n_seqs <= 0 || p->max_tokens <= 0)
        return tome_set_error(TOME_ERR_INVALID_ARG,
                              "kv cache: layers, heads, head_dim, sequences and capacity must be positive");
    if (p->fmt < 0 || p->fmt >= TOME_KV_N_FORMATS)
        return tome_set_error(TOME_ERR_INVALID_ARG, "kv cache: unknown KV format %d", p->fmt);
    if (p->sink_tokens < 0) return tome_set_error(TOME_ERR_INVALID_ARG, "kv cache: negative sink_tokens");
    if (p->device && (!p->device->alloc || !p->device->free || !p->device->upload || !p->device->download))
        return tome_set_error(TOME_ERR_INVALID_ARG, "kv cache: device tier ops incomplete");
    return TOME_OK;
}

void tome_kv_free(tome_kvcache *kv)
{
    if (!kv) return;
    tome_kv_pf_free(kv);
    size_t n = (size_t)kv->p.n_layers * (size_t)kv->p.n_seqs;
    for (size_t i = 0; kv->st && i < n; i++) {
        tome_kv_stream *s = &kv->st[i];
        for (size_t j = 0; j < s->n_pages; j++)
            if (s->pages[j].tier == TOME_KV_TIER_DEVICE) kv->p.device->free(kv->p.device->ctx, s->pages[j].dev);
        free(s->pages);
        free(s->open_k);
        free(s->open_v);
        free(s->sink_k);
        free(s->sink_v);
        free(s->rec_k);
        free(s->rec_v);
    }
    free(kv->st);
    for (size_t i = 0; i < kv->n_slabs; i++) free(kv->slabs[i]);
    free(kv->slabs);
    for (tome_kv_tbuf *b = kv->tbufs, *nx; b; b = nx) {
        nx = b->next;
        free(b->page);
        free(b->z);
        free(b->fk);
        free(b->fv);
        free(b);
    }
    if (kv->tlock_init) pthread_mutex_destroy(&kv->tlock);
    if (kv->disk_fd >= 0) close(kv->disk_fd);
    if (kv->snap_fd >= 0) close(kv->snap_fd);
    free(kv->disk_dir);
    free(kv->window);
    free(kv->seal_buf);
    free(kv->zbuf);
    free(kv);
}

tome_status tome_kv_open(const tome_kv_params *p, tome_kvcache **out)
{
    *out = NULL;
    TOME_FORWARD(check_params(p));
    tome_kvcache *kv = calloc(1, sizeof *kv);
    if (!kv) return tome_set_error(TOME_ERR_NOMEM, "kv cache: out of memory");
    kv->disk_fd = -1;
    kv->snap_fd = -1;
    kv->p = *p;
    kv->p.window = NULL;
    kv->p.disk_dir = NULL;
    if (p->device) {
        kv->dev_ops = *p->device;
        kv->p.device = &kv->dev_ops;
    }
    kv->serial = atomic_fetch_add(&g_serial, 1);
    tome_status st = TOME_OK;
    int T = p->page_tokens ? p->page_tokens : TOME_KV_PAGE_TOKENS_DEFAULT;
    int G = p->group ? p->group : (p->head_dim < TOME_KV_GROUP_DEFAULT ? p->head_dim : TOME_KV_GROUP_DEFAULT);
    if (tome_kv_layout_init(&kv->L, p->fmt, T, p->n_kv_heads, p->head_dim, G) != 0) {
        tome_kv_free(kv);
        return tome_set_error(TOME_ERR_INVALID_ARG,
                              "kv cache: no page layout for format %d, %d tokens per page (a multiple of 8 in "
                              "[8, 4096]), %d heads of %d dims, V group %d (must divide head_dim)",
                              p->fmt, T, p->n_kv_heads, p->head_dim, G);
    }
    kv->sink = p->sink_tokens ? ((p->sink_tokens + T - 1) / T) * T : 0;
    if (p->recent_tokens < 0) {
        tome_kv_free(kv);
        return tome_set_error(TOME_ERR_INVALID_ARG, "kv cache: negative recent_tokens");
    }
    kv->recent_pages = (p->recent_tokens + T - 1) / T;
    if (kv->recent_pages > p->max_tokens / T + 1) kv->recent_pages = p->max_tokens / T + 1;
    kv->zstd_level = p->zstd_level ? p->zstd_level : 1;
    if (pthread_mutex_init(&kv->tlock, NULL) != 0) {
        tome_kv_free(kv);
        return tome_set_error(TOME_ERR_NOMEM, "kv cache: cannot create a mutex");
    }
    kv->tlock_init = 1;
    const size_t nst = (size_t)p->n_layers * (size_t)p->n_seqs, HD = (size_t)kv->L.hd;
    kv->window = calloc((size_t)p->n_layers, sizeof *kv->window);
    kv->st = calloc(nst, sizeof *kv->st);
    kv->seal_buf = aligned_alloc(64, ((size_t)kv->L.page_bytes + 63) & ~(size_t)63);
    kv->zcap = ZSTD_compressBound(kv->L.page_bytes);
    kv->zbuf = malloc(kv->zcap);
    if (!kv->window || !kv->st || !kv->seal_buf || !kv->zbuf) goto oom;
    uint64_t chunk_pages = 0;
    for (int l = 0; l < p->n_layers; l++) {
        int64_t w = p->window ? p->window[l] : 0;
        if (w < 0) {
            tome_kv_free(kv);
            return tome_set_error(TOME_ERR_INVALID_ARG, "kv cache: layer %d: negative window", l);
        }
        if (w >= p->max_tokens) w = 0; /* a chunk as long as the context is just a global layer */
        kv->window[l] = w;
        if (w > 0) chunk_pages += (uint64_t)(w / T) * (uint64_t)p->n_seqs;
        for (int s = 0; s < p->n_seqs; s++) {
            tome_kv_stream *S = stream(kv, l, s);
            S->chunked = w > 0;
            S->chunk = -1;
            S->open_k = malloc((size_t)T * HD * sizeof(float));
            S->open_v = malloc((size_t)T * HD * sizeof(float));
            if (!S->open_k || !S->open_v) goto oom;
            kv->float_bytes += 2 * (size_t)T * HD * sizeof(float);
            if (kv->recent_pages > 0) {
                size_t rb = (size_t)kv->recent_pages * (size_t)T * HD * sizeof(float);
                S->rec_k = malloc(rb);
                S->rec_v = malloc(rb);
                if (!S->rec_k || !S->rec_v) goto oom;
                kv->float_bytes += 2 * rb;
            }
            if (!S->chunked && kv->sink > 0) {
                int64_t sk = kv->sink < p->max_tokens ? kv->sink : ((p->max_tokens + T - 1) / T) * T;
                S->sink_k = malloc((size_t)sk * HD * sizeof(float));
                S->sink_v = malloc((size_t)sk * HD * sizeof(float));
                if (!S->sink_k || !S->sink_v) goto oom;
                kv->float_bytes += 2 * (size_t)sk * HD * sizeof(float);
            }
        }
    }
    kv->ram_chunk_reserve = chunk_pages * kv->L.page_bytes;
    if (p->ram_budget) {
        if (p->ram_budget < kv->ram_chunk_reserve) {
            st = tome_set_error(TOME_ERR_LIMIT,
                                "kv cache: a RAM budget of %llu bytes cannot hold one chunk of every chunked layer "
                                "(%llu bytes needed in this format)",
                                (unsigned long long)p->ram_budget, (unsigned long long)kv->ram_chunk_reserve);
            tome_kv_free(kv);
            return st;
        }
        kv->ram_global_budget = p->ram_budget - kv->ram_chunk_reserve;
    }
    if (p->disk_dir) {
        kv->disk_dir = strdup(p->disk_dir);
        if (!kv->disk_dir) goto oom;
        if (access(kv->disk_dir, W_OK | X_OK) != 0) {
            int e = errno;
            st = tome_set_errno(TOME_ERR_IO, e, "kv cache: disk directory %s is not writable", p->disk_dir);
            tome_kv_free(kv);
            return st;
        }
    }
    *out = kv;
    return TOME_OK;
oom:
    tome_kv_free(kv);
    return tome_set_error(TOME_ERR_NOMEM, "kv cache: out of memory");
}

/* ------------------------------------------------------------ writes */
tome_status tome_kv_write(tome_kvcache *kv, int layer, int seq, int64_t pos, size_t n, const float *k,
                          const float *v)
{
    if (layer < 0 || layer >= kv->p.n_layers || seq < 0 || seq >= kv->p.n_seqs || pos < 0)
        return tome_set_error(TOME_ERR_INVALID_ARG, "kv cache: layer %d / sequence %d / position %lld out of range",
                              layer, seq, (long long)pos);
    if (n == 0) return TOME_OK;
    kv->epoch++;
    tome_kv_stream *s = stream(kv, layer, seq);
    const int64_t w = kv->window[layer], end = pos + (int64_t)n, T = kv->L.page_tokens;
    const size_t HD = (size_t)kv->L.hd;
    if (end > kv->p.max_tokens)
        return tome_set_error(TOME_ERR_LIMIT, "kv cache: position %lld is past the capacity of %lld tokens",
                              (long long)(end - 1), (long long)kv->p.max_tokens);
    if (w > 0) {
        int64_t c = pos / w;
        if ((end - 1) / w != c)
            return tome_set_error(TOME_ERR_INVALID_ARG,
                                  "kv cache: layer %d: write of positions %lld..%lld crosses a %lld-token chunk boundary",
                                  layer, (long long)pos, (long long)(end - 1), (long long)w);
        if (c != s->chunk) { /* a new chunk recycles the stream's pages */
            if (pos != c * w)
                return tome_set_error(TOME_ERR_INVALID_ARG,
                                      "kv cache: layer %d: write at position %lld starts inside chunk %lld that the "
                                      "cache does not hold",
                                      layer, (long long)pos, (long long)c);
            stream_reset(kv, s, c * w);
            s->chunk = c;
        }
    }
    if (pos > s->len)
        return tome_set_error(TOME_ERR_INVALID_ARG, "kv cache: layer %d: write at position %lld leaves a gap after %lld",
                              layer, (long long)pos, (long long)s->len);
    if (pos < s->len) TOME_FORWARD(stream_truncate(kv, layer, s, pos));
    size_t done = 0;
    while (done < n) {
        int64_t r = s->len - s->open_p0;
        size_t m = (size_t)(T - r);
        if (w > 0) { /* a chunk's last page may be shorter than T */
            int64_t cend = (s->chunk + 1) * w;
            if ((int64_t)m > cend - s->len) m = (size_t)(cend - s->len);
        }
        if (m > n - done) m = n - done;
        memcpy(s->open_k + (size_t)r * HD, k + done * HD, m * HD * sizeof(float));
        memcpy(s->open_v + (size_t)r * HD, v + done * HD, m * HD * sizeof(float));
        s->len += (int64_t)m;
        done += m;
        if (s->len - s->open_p0 == T) TOME_FORWARD(stream_seal(kv, layer, seq, s));
    }
    return TOME_OK;
}

void tome_kv_clear(tome_kvcache *kv, int seq)
{
    kv->epoch++;
    for (int l = 0; l < kv->p.n_layers; l++) {
        tome_kv_stream *s = stream(kv, l, seq);
        stream_reset(kv, s, 0);
        s->chunk = -1;
    }
}

/* ------------------------------------------------------------ thread buffers */
static tome_kv_tbuf *tbuf_get(const tome_kvcache *ckv)
{
    tome_kvcache *kv = (tome_kvcache *)ckv;
    static _Thread_local struct {
        uint64_t serial;
        tome_kv_tbuf *b;
    } tl[4];
    static _Thread_local unsigned next;
    for (int i = 0; i < 4; i++)
        if (tl[i].serial == kv->serial) return tl[i].b;
    const size_t T = (size_t)kv->L.page_tokens, HD = (size_t)kv->L.hd;
    tome_kv_tbuf *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->page = aligned_alloc(64, ((size_t)kv->L.page_bytes + 63) & ~(size_t)63);
    b->z = malloc(kv->zcap);
    b->fk = malloc(T * HD * sizeof(float));
    b->fv = malloc(T * HD * sizeof(float));
    if (!b->page || !b->z || !b->fk || !b->fv) {
        free(b->page), free(b->z), free(b->fk), free(b->fv), free(b);
        return NULL;
    }
    b->page_epoch = b->f_epoch = UINT64_MAX;
    pthread_mutex_lock(&kv->tlock);
    b->next = kv->tbufs;
    kv->tbufs = b;
    pthread_mutex_unlock(&kv->tlock);
    unsigned i = next++ & 3u;
    tl[i].serial = kv->serial;
    tl[i].b = b;
    return b;
}

static void fadvise_next(const tome_kvcache *kv, const tome_kv_stream *s, size_t j, size_t n)
{
#ifdef POSIX_FADV_WILLNEED
    for (int snap = 0; snap < 2; snap++) {
        uint64_t lo = UINT64_MAX, hi = 0;
        for (size_t i = j; i < s->n_pages && i < j + n; i++) {
            const tome_kv_page *pg = &s->pages[i];
            if (pg->tier != TOME_KV_TIER_DISK || pg->disk_snap != snap) continue;
            if (pg->disk_off < lo) lo = pg->disk_off;
            if (pg->disk_off + pg->disk_len > hi) hi = pg->disk_off + pg->disk_len;
        }
        int fd = snap ? kv->snap_fd : kv->disk_fd;
        if (lo < hi && fd >= 0) (void)posix_fadvise(fd, (off_t)lo, (off_t)(hi - lo), POSIX_FADV_WILLNEED);
    }
#else
    (void)kv, (void)s, (void)j, (void)n;
#endif
}

/* The bytes of sealed page j (RAM: in place; elsewhere: into b->page). */
static tome_status page_bytes(const tome_kvcache *ckv, const tome_kv_stream *s, size_t j, int layer,
                              tome_kv_tbuf *b, const uint8_t **out)
{
    tome_kvcache *kv = (tome_kvcache *)ckv;
    const tome_kv_page *pg = &s->pages[j];
    const int64_t pp0 = s->base + (int64_t)j * kv->L.page_tokens;
    if (pg->tier == TOME_KV_TIER_RAM) {
        *out = pg->ram;
        return TOME_OK;
    }
    if (b->page_epoch == kv->epoch && b->page_stream == s && b->page_j == j) {
        *out = b->page;
        return TOME_OK;
    }
    b->page_epoch = UINT64_MAX;
    if (pg->tier == TOME_KV_TIER_DEVICE) {
        TOME_FORWARD(kv->p.device->download(kv->p.device->ctx, b->page, pg->dev, kv->L.page_bytes));
        char what[128];
        snprintf(what, sizeof what, "kv cache: layer %d page %zu (device)", layer, j);
        TOME_FORWARD(tome_kv_page_verify(&kv->L, b->page, pp0, what));
    } else if (pg->tier == TOME_KV_TIER_DISK && tome_kv_pf_take(kv, s, j, b->page)) {
        atomic_fetch_add(&kv->reloads, 1); /* read ahead, decompressed and verified by the thread */
    } else if (pg->tier == TOME_KV_TIER_DISK) {
        size_t got = 0;
        uint8_t *dst = pg->disk_raw ? b->page : b->z;
        if (pg->disk_len > (pg->disk_raw ? kv->L.page_bytes : kv->zcap))
            return tome_set_error(TOME_ERR_FORMAT, "kv cache: layer %d page %zu: bad length %u in the page table", layer,
                                  j, (unsigned)pg->disk_len);
        while (got < pg->disk_len) {
            ssize_t r = pread(pg->disk_snap ? kv->snap_fd : kv->disk_fd, dst + got, pg->disk_len - got, (off_t)(pg->disk_off + got));
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) {
                int e = r < 0 ? errno : EIO;
                return tome_set_errno(TOME_ERR_IO, e, "kv cache: layer %d page %zu: reading the page file at offset %llu",
                                      layer, j, (unsigned long long)(pg->disk_off + got));
            }
            got += (size_t)r;
        }
        size_t dn = pg->disk_raw ? pg->disk_len : ZSTD_decompress(b->page, kv->L.page_bytes, b->z, pg->disk_len);
        if (ZSTD_isError(dn) || dn != kv->L.page_bytes)
            return tome_set_error(TOME_ERR_FORMAT, "kv cache: layer %d page %zu (page file offset %llu): %s", layer, j,
                                  (unsigned long long)pg->disk_off,
                                  ZSTD_isError(dn) ? ZSTD_getErrorName(dn) : "wrong decompressed size");
        char what[128];
        snprintf(what, sizeof what, "kv cache: layer %d page %zu (%s offset %llu)", layer, j,
                 pg->disk_snap ? "snapshot file" : "page file", (unsigned long long)pg->disk_off);
        TOME_FORWARD(tome_kv_page_verify(&kv->L, b->page, pp0, what));
        atomic_fetch_add(&kv->reloads, 1);
        fadvise_next(kv, s, j + 1, 4);
    } else {
        return tome_set_error(TOME_ERR_INTERNAL, "kv cache: layer %d page %zu has no storage", layer, j);
    }
    b->page_epoch = kv->epoch;
    b->page_stream = s;
    b->page_j = j;
    *out = b->page;
    return TOME_OK;
}

tome_status tome_kv_read_page(const tome_kvcache *kv, const tome_kv_stream *s, size_t j, int layer,
                              tome_kv_tbuf **b, const uint8_t **out)
{
    if (s->pages[j].tier == TOME_KV_TIER_RAM) {
        *out = s->pages[j].ram;
        return TOME_OK;
    }
    if (!*b) *b = tbuf_get(kv);
    if (!*b) return tome_set_error(TOME_ERR_NOMEM, "kv cache: out of memory for read buffers");
    return page_bytes(kv, s, j, layer, *b, out);
}

static tome_status page_rows(const tome_kvcache *kv, const tome_kv_stream *s, size_t j, int layer, float *ko, float *vo)
{
    const size_t T = (size_t)kv->L.page_tokens, HD = (size_t)kv->L.hd;
    const tome_kv_page *pg = &s->pages[j];
    if (pg->tier == TOME_KV_TIER_SINK) {
        memcpy(ko, s->sink_k + j * T * HD, T * HD * sizeof(float));
        memcpy(vo, s->sink_v + j * T * HD, T * HD * sizeof(float));
        return TOME_OK;
    }
    if (pg->tier == TOME_KV_TIER_RECENT) {
        memcpy(ko, tome_kv_recent_k(kv, s, j), T * HD * sizeof(float));
        memcpy(vo, tome_kv_recent_v(kv, s, j), T * HD * sizeof(float));
        return TOME_OK;
    }
    tome_kv_tbuf *b = tbuf_get(kv);
    if (!b) return tome_set_error(TOME_ERR_NOMEM, "kv cache: out of memory for read buffers");
    const uint8_t *page;
    TOME_FORWARD(page_bytes(kv, s, j, layer, b, &page));
    tome_kv_page_dequant(&kv->L, page, 0, 0, (int)T, ko);
    tome_kv_page_dequant(&kv->L, page, 1, 0, (int)T, vo);
    return TOME_OK;
}

/* ------------------------------------------------------------ reads */
static void float_view(const tome_kvcache *kv, const float *k, const float *v, int64_t page_p0, tome_kv_view *w)
{
    memset(w, 0, sizeof *w);
    w->page_p0 = page_p0;
    w->fmt = TOME_KV_F32;
    w->page_tokens = kv->L.page_tokens;
    w->n_kv_heads = kv->L.n_kv_heads;
    w->head_dim = kv->L.head_dim;
    w->group = kv->L.group;
    w->bits = 32;
    w->row_bytes = (uint32_t)kv->L.hd * 4u;
    w->k = (const uint8_t *)k;
    w->v = (const uint8_t *)v;
}

static tome_status view_at(const tome_kvcache *kv, int layer, int seq, int64_t p, int64_t p_end, tome_kv_view *out,
                           tome_kv_tbuf **bout, size_t *jout)
{
    if (layer < 0 || layer >= kv->p.n_layers || seq < 0 || seq >= kv->p.n_seqs)
        return tome_set_error(TOME_ERR_INVALID_ARG, "kv cache: layer %d / sequence %d out of range", layer, seq);
    const tome_kv_stream *s = stream(kv, layer, seq);
    const int64_t T = kv->L.page_tokens, HD = kv->L.hd, w = kv->window[layer];
    if (p < 0 || p >= p_end || p_end > s->len)
        return tome_set_error(TOME_ERR_INVALID_ARG, "kv cache: layer %d: read of [%lld, %lld) but %lld positions written",
                              layer, (long long)p, (long long)p_end, (long long)s->len);
    if (w > 0 && p / w != s->chunk)
        return tome_set_error(TOME_ERR_INVALID_ARG,
                              "kv cache: layer %d: position %lld is in chunk %lld, the cache holds chunk %lld", layer,
                              (long long)p, (long long)(p / w), (long long)s->chunk);
    *bout = NULL;
    *jout = SIZE_MAX;
    if (p >= s->open_p0) {
        float_view(kv, s->open_k, s->open_v, s->open_p0, out);
        out->p0 = p;
        out->p1 = p_end;
        return TOME_OK;
    }
    size_t j = (size_t)((p - s->base) / T);
    int64_t pp0 = s->base + (int64_t)j * T, pp1 = pp0 + T;
    const tome_kv_page *pg = &s->pages[j];
    if (pg->tier == TOME_KV_TIER_SINK) {
        float_view(kv, s->sink_k + (size_t)j * (size_t)(T * HD), s->sink_v + (size_t)j * (size_t)(T * HD), pp0, out);
    } else if (pg->tier == TOME_KV_TIER_RECENT) {
        float_view(kv, tome_kv_recent_k(kv, s, j), tome_kv_recent_v(kv, s, j), pp0, out);
    } else {
        tome_kv_tbuf *b = tbuf_get(kv);
        if (!b) return tome_set_error(TOME_ERR_NOMEM, "kv cache: out of memory for read buffers");
        const uint8_t *page;
        TOME_FORWARD(page_bytes(kv, s, j, layer, b, &page));
        tome_kv_page_view(&kv->L, page, out);
        *bout = b;
        *jout = j;
    }
    out->p0 = p;
    out->p1 = p_end < pp1 ? p_end : pp1;
    return TOME_OK;
}

tome_status tome_kv_view_at(const tome_kvcache *kv, int layer, int seq, int64_t p, int64_t p_end, tome_kv_view *out)
{
    tome_kv_tbuf *b;
    size_t j;
    return view_at(kv, layer, seq, p, p_end, out, &b, &j);
}

tome_status tome_kv_span_at(const tome_kvcache *kv, int layer, int seq, int64_t p, int64_t p_end, tome_kv_span *out)
{
    tome_kv_view w;
    tome_kv_tbuf *b;
    size_t j;
    TOME_FORWARD(view_at(kv, layer, seq, p, p_end, &w, &b, &j));
    const size_t HD = (size_t)kv->L.hd;
    out->p0 = w.p0;
    out->p1 = w.p1;
    out->row_stride = HD;
    out->fmt = TOME_KV_F32;
    if (w.fmt == TOME_KV_F32) { /* open rows, sinks, or a sealed F32 page: zero-copy */
        out->k = (const float *)(const void *)w.k + (size_t)(w.p0 - w.page_p0) * HD;
        out->v = (const float *)(const void *)w.v + (size_t)(w.p0 - w.page_p0) * HD;
        return TOME_OK;
    }
    const tome_kv_stream *s = stream(kv, layer, seq);
    if (!(b->f_epoch == kv->epoch && b->f_stream == s && b->f_j == j)) {
        const int T = kv->L.page_tokens;
        const uint8_t *page = (const uint8_t *)w.hdr;
        tome_kv_page_dequant(&kv->L, page, 0, 0, T, b->fk);
        tome_kv_page_dequant(&kv->L, page, 1, 0, T, b->fv);
        b->f_epoch = kv->epoch;
        b->f_stream = s;
        b->f_j = j;
    }
    out->k = b->fk + (size_t)(w.p0 - w.page_p0) * HD;
    out->v = b->fv + (size_t)(w.p0 - w.page_p0) * HD;
    return TOME_OK;
}

void tome_kv_prefetch(const tome_kvcache *kv, int layer, int seq, int64_t p0, int64_t p1)
{
    if (layer < 0 || layer >= kv->p.n_layers || seq < 0 || seq >= kv->p.n_seqs || (kv->disk_fd < 0 && kv->snap_fd < 0) ||
        p1 <= p0)
        return;
    const tome_kv_stream *s = stream(kv, layer, seq);
    if (p0 < s->base) p0 = s->base;
    if (p0 >= s->open_p0) return;
    const int64_t T = kv->L.page_tokens;
    size_t j0 = (size_t)((p0 - s->base) / T), j1 = (size_t)((p1 - s->base + T - 1) / T);
    fadvise_next(kv, s, j0, j1 - j0);
    tome_kv_pf_queue(kv, s, j0, j1);
}

/* ------------------------------------------------------------ queries */
uint64_t tome_kv_bytes(const tome_kvcache *kv) { return kv ? kv->pool_bytes + kv->float_bytes : 0; }

const tome_kv_layout *tome_kv_page_layout(const tome_kvcache *kv) { return &kv->L; }

int64_t tome_kv_len(const tome_kvcache *kv, int layer, int seq)
{
    if (layer < 0 || layer >= kv->p.n_layers || seq < 0 || seq >= kv->p.n_seqs) return 0;
    return stream(kv, layer, seq)->len;
}

void tome_kv_get_stats(const tome_kvcache *kv, tome_kv_stats *o)
{
    memset(o, 0, sizeof *o);
    o->pages_ram = kv->n_ram;
    o->pages_disk = kv->n_disk;
    o->pages_device = kv->n_dev;
    o->pages_sealed = kv->n_ram + kv->n_disk + kv->n_dev;
    o->bytes_ram = kv->ram_used + kv->float_bytes;
    o->bytes_disk = kv->disk_live;
    o->bytes_disk_raw = kv->disk_live_raw;
    o->bytes_device = kv->dev_used;
    o->spills = kv->spills;
    o->pages_snapshot = kv->n_snap;
    tome_kv_pf_stats(kv, &o->prefetch_hits, &o->prefetch_misses);
    o->reloads = atomic_load(&((tome_kvcache *)kv)->reloads);
}
