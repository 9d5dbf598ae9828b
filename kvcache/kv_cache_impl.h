/*
 * kvcache/kv_cache_impl.h — the cache's internal structures, shared by
 * kv_cache.c (pages, tiers, reads) and kv_snapshot.c (save/load). The design
 * is described at the top of kv_cache.c.
 */
#ifndef TOME_KV_CACHE_IMPL_H
#define TOME_KV_CACHE_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "kvcache/kv_page_impl.h"
#include "kvcache/kvcache_impl.h"

enum { TOME_KV_TIER_NONE = 0, TOME_KV_TIER_SINK, TOME_KV_TIER_RAM, TOME_KV_TIER_DISK, TOME_KV_TIER_DEVICE,
       TOME_KV_TIER_RECENT /* float rows in the stream's ring, sealed later */ };

typedef struct tome_kv_page {
    uint8_t tier;      /* TOME_KV_TIER_*                                  */
    uint8_t chunked;   /* belongs to a chunked layer (RAM reserve)         */
    uint8_t disk_raw;  /* DISK: stored uncompressed (zstd did not help)   */
    uint8_t disk_snap; /* DISK: the page lies in the loaded snapshot file
                          (snap_fd), not in the page file               */
    uint32_t disk_len; /* DISK: compressed bytes                          */
    uint64_t disk_off; /* DISK: offset in the page file                   */
    uint8_t *ram;      /* RAM: the sealed block (pool)                    */
    void *dev;         /* DEVICE: the backend's block                     */
} tome_kv_page;

typedef struct tome_kv_stream {
    int chunked;
    int64_t chunk;              /* chunk held (chunked layers), -1: none          */
    int64_t base;               /* position of page 0                             */
    int64_t len;                /* positions written: next expected position      */
    int64_t open_p0;            /* position of the open page's row 0              */
    tome_kv_page *pages;        /* [n_pages] sealed (or sink) pages               */
    size_t n_pages, cap_pages;
    float *open_k, *open_v;     /* [T][HD] rows [0, len - open_p0) valid          */
    float *sink_k, *sink_v;     /* [sink][HD] global layers with sinks            */
    float *rec_k, *rec_v;       /* [recent_pages][T][HD] ring: page j in slot
                                   j % recent_pages while it is RECENT          */
} tome_kv_stream;

/* Per-thread read buffers (owned by the cache, see kv_cache.c). */
typedef struct tome_kv_tbuf {
    struct tome_kv_tbuf *next;
    uint8_t *page;              /* a page read from disk / device                 */
    uint8_t *z;                 /* compressed bytes                               */
    float *fk, *fv;             /* [T][HD] dequantized page                       */
    uint64_t page_epoch, f_epoch;
    const tome_kv_stream *page_stream, *f_stream;
    size_t page_j, f_j;
} tome_kv_tbuf;

struct tome_kvcache {
    tome_kv_params p;           /* copy; window and disk_dir pointers cleared     */
    tome_kv_layout L;
    int64_t *window;            /* [n_layers]                                     */
    int64_t sink;               /* float positions kept on global layers          */
    int64_t recent_pages;       /* newest full pages kept float (every layer)     */
    int zstd_level;
    uint64_t serial;            /* unique per cache (thread-buffer lookup)        */
    uint64_t epoch;             /* bumped by every change                         */
    tome_kv_stream *st;         /* [n_layers * n_seqs]                            */
    uint8_t *seal_buf;          /* one page, for sealing                          */
    uint8_t *zbuf;              /* compressed page, zcap bytes                    */
    size_t zcap;
    /* pool */
    uint8_t **slabs;
    size_t n_slabs, cap_slabs;
    uint8_t *free_list;
    uint64_t pool_bytes, float_bytes;
    /* tiers */
    uint64_t ram_used, ram_chunked_used, ram_chunk_reserve, ram_global_budget, dev_used;
    uint64_t n_ram, n_disk, n_dev;
    uint64_t n_snap;            /* disk pages that lie in the snapshot (snap_fd)  */
    tome_kv_device_ops dev_ops; /* copy of the backend's ops (p.device points here) */
    struct tome_kv_pf *pf;      /* read-ahead thread (kv_prefetch.c), NULL until used */
    char *disk_dir;
    int disk_fd;                /* -1 until the first spill                        */
    int snap_fd;                /* snapshot whose pages back disk_snap pages, -1   */
    uint64_t disk_end, disk_live, disk_live_raw, spills;
    atomic_uint_fast64_t reloads;
    /* thread buffers */
    pthread_mutex_t tlock;
    int tlock_init;
    tome_kv_tbuf *tbufs;
};

/* Places a sealed page in the first tier with room (device, RAM, disk). */
tome_status tome_kv_place_page(tome_kvcache *kv, const uint8_t *page, int chunked, tome_kv_page *pg);
/* The bytes of sealed page j of s wherever it lives (RAM in place; disk and
 * device through the calling thread's buffer *b, found on first use). */
tome_status tome_kv_read_page(const tome_kvcache *kv, const tome_kv_stream *s, size_t j, int layer,
                              tome_kv_tbuf **b, const uint8_t **out);
/* Snapshot loading: where the next sealed page would be placed by
 * tome_kv_place_page (TOME_KV_TIER_DEVICE, _RAM, or _DISK), judged by the
 * budgets alone; *sim_dev / *sim_ram (start them at kv->dev_used and the
 * global RAM in use) are advanced as if it were placed. */
int tome_kv_place_tier(const tome_kvcache *kv, int chunked, uint64_t *sim_dev, uint64_t *sim_ram);
/* n consecutive page blocks in one new slab, owned by the cache (freed
 * blocks go to the pool's free list). */
tome_status tome_kv_ram_bulk(tome_kvcache *kv, size_t n, uint8_t **base);
/* Accounts block (filled or to be filled by the caller) as a RAM page. */
void tome_kv_adopt_ram(tome_kvcache *kv, uint8_t *block, int chunked, tome_kv_page *pg);
/* A disk-tier page that lies at offset off of the snapshot file kv->snap_fd
 * (verified when read, like every disk page). */
void tome_kv_adopt_snap(tome_kvcache *kv, uint64_t off, int chunked, tome_kv_page *pg);
/* Read-ahead (kv_prefetch.c). */
#define TOME_KV_PF_SLOTS 8
void tome_kv_pf_queue(const tome_kvcache *kv, const tome_kv_stream *s, size_t j0, size_t j1);
/* Copies prefetched page j of s into dst (verified): 1, or 0 when not there. */
int tome_kv_pf_take(const tome_kvcache *kv, const tome_kv_stream *s, size_t j, uint8_t *dst);
void tome_kv_pf_stats(const tome_kvcache *kv, uint64_t *hits, uint64_t *misses);
void tome_kv_pf_free(tome_kvcache *kv); /* joins the thread */

/* Float rows of a RECENT page j of s. */
static inline float *tome_kv_recent_k(const tome_kvcache *kv, const tome_kv_stream *s, size_t j)
{
    return s->rec_k + (j % (size_t)kv->recent_pages) * (size_t)kv->L.page_tokens * (size_t)kv->L.hd;
}
static inline float *tome_kv_recent_v(const tome_kvcache *kv, const tome_kv_stream *s, size_t j)
{
    return s->rec_v + (j % (size_t)kv->recent_pages) * (size_t)kv->L.page_tokens * (size_t)kv->L.hd;
}
/* Appends a page record to a stream's table. */
tome_status tome_kv_stream_push(tome_kvcache *kv, tome_kv_stream *s, const tome_kv_page *pg);

#endif /* TOME_KV_CACHE_IMPL_H */
