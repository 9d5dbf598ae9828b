/*
 * kvcache/kvcache_impl.h — the interface between the forward pass / attention
 * and the KV cache.
 *
 * The forward pass writes K and V of n new tokens of one (layer, sequence) at
 * consecutive positions; attention reads a position range [p0, p1) of a
 * (layer, sequence) page by page: tome_kv_span_at(p, p1) returns the span
 * that holds position p — a contiguous block of K rows and V rows for the
 * positions [span.p0, span.p1) with span.p0 == p and span.p1 <= p1. Attention
 * code loops "while (p < p1) { span_at(p); ...; p = span.p1; }" and never
 * assumes more than one span is valid at a time (a paged or tiered cache may
 * reuse the memory of the previous span: a span is valid until the next call
 * on the same cache).
 *
 * Row layout inside a span: K row of position p is
 * k[(p - span.p0) * row_stride + kv_head * head_dim + d], the same for V;
 * values are float32 in this implementation (a quantized cache reports its
 * format in span.fmt and attention dequantizes; issue 5).
 *
 * Per-layer policy: window[l] == 0 keeps every position (global / NoPE
 * layers); window[l] == C > 0 keeps only the current C-position chunk
 * (chunked RoPE layers): writing a position of a new chunk recycles the
 * memory, and reading a position of an earlier chunk is an error. Writes of
 * one call never cross a chunk boundary on such a layer (the forward pass
 * splits micro-batches at multiples of the chunk size).
 *
 * The implementation is kv_cache.c: a paged, quantized, tiered cache (its
 * design comment says how). The page layout and tome_kv_view, the zero-copy
 * per-page read for quantized attention kernels, are in kv_layout.h.
 *
 * Threads: writes, clear, snapshot and tier moves happen on one thread while
 * no read runs; reads (span_at, view_at) may run on many threads at once.
 * A span or view returned to a thread stays valid until that thread's next
 * read of the same cache (reads of pages that are not in host RAM, and
 * float spans of quantized pages, use per-thread buffers the cache owns).
 */
#ifndef TOME_KVCACHE_IMPL_H
#define TOME_KVCACHE_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "kvcache/kv_layout.h"
#include "tome/status.h"

typedef struct tome_kvcache tome_kvcache;

/* Device tier (optional slot): a backend that owns device memory. Absent
 * (NULL) on CPU builds; sealed pages then live in host RAM and on disk. */
typedef struct tome_kv_device_ops {
    void *ctx;
    /* device block of n bytes, or NULL when the device is full */
    void *(*alloc)(void *ctx, size_t n);
    void (*free)(void *ctx, void *dev);
    tome_status (*upload)(void *ctx, void *dev, const void *host, size_t n);
    tome_status (*download)(void *ctx, void *host, const void *dev, size_t n);
} tome_kv_device_ops;

typedef struct tome_kv_params {
    int n_layers;
    int n_kv_heads;
    int head_dim;
    int n_seqs;              /* sequences held at once                       */
    int64_t max_tokens;      /* capacity per sequence of a global layer      */
    const int64_t *window;   /* [n_layers]: 0 = keep all, C = one C-chunk    */
    /* --- issue 5 additions; zero means the default named ---------------- */
    int fmt;                 /* TOME_KV_* of sealed pages; 0: F32 (exact)    */
    int page_tokens;         /* T; 0: TOME_KV_PAGE_TOKENS_DEFAULT            */
    int group;               /* V group G; 0: min(32, head_dim)              */
    int64_t sink_tokens;     /* first positions of global layers kept float32
                                (rounded up to whole pages); 0: none          */
    uint64_t ram_budget;     /* bytes of sealed pages in host RAM; 0: no cap */
    const char *disk_dir;    /* spill directory for the zstd page file; NULL:
                                no disk tier (over budget is an error)        */
    uint64_t disk_budget;    /* bytes in the page file; 0: no cap            */
    int zstd_level;          /* 0: 1                                         */
    const tome_kv_device_ops *device; /* NULL: no device tier            */
    uint64_t device_budget;  /* bytes of sealed pages on the device          */
    int64_t recent_tokens;   /* newest positions kept float32 besides the open
                                page, rounded up to whole pages: a page is
                                sealed only when this many newer positions
                                exist; 0: none (only the open page)          */
    int prefetch_pages;      /* disk pages a background thread reads ahead
                                after tome_kv_prefetch; 0: 8; < 0: none     */
} tome_kv_params;

typedef struct tome_kv_span {
    int64_t p0, p1;          /* positions [p0, p1)                           */
    const float *k, *v;      /* row of p0; rows row_stride floats apart      */
    size_t row_stride;       /* floats between consecutive positions         */
    int fmt;                 /* TOME_KV_F32 (spans are always float rows)    */
} tome_kv_span;

tome_status tome_kv_open(const tome_kv_params *p, tome_kvcache **out);
void tome_kv_free(tome_kvcache *kv); /* NULL ok */

/* Writes n rows (k, v: [n][n_kv_heads * head_dim]) at positions pos..pos+n-1. */
tome_status tome_kv_write(tome_kvcache *kv, int layer, int seq, int64_t pos, size_t n, const float *k,
                          const float *v);
/* The span holding position p, clipped to p_end. */
tome_status tome_kv_span_at(const tome_kvcache *kv, int layer, int seq, int64_t p, int64_t p_end,
                            tome_kv_span *out);
/* Forgets every position of seq. */
void tome_kv_clear(tome_kvcache *kv, int seq);
/* Bytes of K/V storage allocated. */
uint64_t tome_kv_bytes(const tome_kvcache *kv);

/* ---------------------------------------------------------- issue 5 */
/* The page view holding position p, clipped to p_end and to the page: the
 * codes and scales of a sealed page (zero-copy when the page is in host
 * RAM) or float rows (open page, sinks). Same range rules as span_at. */
tome_status tome_kv_view_at(const tome_kvcache *kv, int layer, int seq, int64_t p, int64_t p_end,
                            tome_kv_view *out);

/* The layout of sealed pages of this cache. */
const tome_kv_layout *tome_kv_page_layout(const tome_kvcache *kv);

/* Positions written of (layer, seq) (the next position expected). */
int64_t tome_kv_len(const tome_kvcache *kv, int layer, int seq);

typedef struct tome_kv_stats {
    uint64_t pages_sealed;      /* sealed pages held                         */
    uint64_t pages_ram, pages_disk, pages_device;
    uint64_t bytes_ram;         /* sealed pages in RAM + float rows          */
    uint64_t bytes_disk;        /* compressed bytes in the page file         */
    uint64_t bytes_disk_raw;    /* the same pages uncompressed               */
    uint64_t bytes_device;
    uint64_t spills, reloads;   /* pages written to / read from disk         */
    uint64_t pages_snapshot;    /* disk pages read in place from the loaded
                                   snapshot file (counted in pages_disk too) */
    uint64_t prefetch_hits;     /* disk reads served by the read-ahead thread */
    uint64_t prefetch_misses;   /* disk reads it had not prepared            */
} tome_kv_stats;
void tome_kv_get_stats(const tome_kvcache *kv, tome_kv_stats *out);

/* Installs, changes or removes (ops NULL) the device tier of an open cache:
 * the backend's allocator (copied) and a byte budget for sealed pages on
 * the device. Pages sealed from now on go to the device while the budget
 * lasts (global layers; oldest positions first, as pages are sealed). When
 * the budget shrinks below what the device holds, or the ops change or are
 * removed, device pages are moved back — highest page index first — to host
 * RAM (or, over the RAM budget, the disk tier), each verified against its
 * checksum on the way. Not while reads run (a write-side call). */
tome_status tome_kv_set_device_allocator(tome_kvcache *kv, const tome_kv_device_ops *ops, uint64_t budget);

/* Hint: attention will read (layer, seq) positions [p0, p1) next, in order;
 * pages of that range on the disk tier are read, decompressed and verified
 * ahead by a background thread (kv_prefetch.c) and the kernel is asked to
 * read ahead (posix_fadvise), so disk reads overlap attention's work. One
 * range at a time per cache: a new call replaces the previous one. */
void tome_kv_prefetch(const tome_kvcache *kv, int layer, int seq, int64_t p0, int64_t p1);
/* Waits until the read-ahead thread has prepared what it may (the first
 * pages of the last range, up to its depth); for tests and benchmarks. */
void tome_kv_prefetch_wait(const tome_kvcache *kv);

/* ---------------------------------------------------------- snapshots */
/* Identity of what produced a cache: hex hashes (32 characters + NUL; ""
 * unknown). Model: tome_model_hash; tokenizer: tome_tokenizer_hash; pack:
 * the pack's content hash. */
typedef struct tome_kv_identity {
    char model_hash[33];
    char tokenizer_hash[33];
    char pack_hash[33];
} tome_kv_identity;

typedef struct tome_kv_snapshot_meta {
    tome_kv_identity id;
    int64_t n_done;          /* positions prefilled                          */
    int64_t n_total;         /* positions the prefill is for (complete when
                                n_done == n_total)                           */
} tome_kv_snapshot_meta;

typedef struct tome_kv_snapshot_info {
    tome_kv_identity id;
    int64_t n_done, n_total;
    int fmt, page_tokens, n_layers, n_kv_heads, head_dim, n_seqs;
    int64_t max_tokens;
    uint64_t n_pages, file_bytes;
} tome_kv_snapshot_info;

/* Writes the whole cache (every sequence, every tier) to path atomically
 * (kv_snapshot.c: format and guarantees). On failure path is untouched. */
tome_status tome_kv_snapshot_save(const tome_kvcache *kv, const char *path, const tome_kv_snapshot_meta *meta);

/* Reads and checks a snapshot's header (not its pages). */
tome_status tome_kv_snapshot_info_read(const char *path, tome_kv_snapshot_info *info);

/* Loads a snapshot into a new cache. expect (may be NULL; "" fields are not
 * checked) must match the stored identity (TOME_ERR_MISMATCH naming model,
 * tokenizer or pack). tiers (may be NULL) gives ram_budget, disk_dir,
 * disk_budget, zstd_level and device, and max_tokens when it asks for more
 * room than the snapshot was saved with (positions a question appends); the
 * layout comes from the file.
 * Corrupt or truncated files: TOME_ERR_FORMAT naming the part at fault. */
tome_status tome_kv_snapshot_load(const char *path, const tome_kv_identity *expect, const tome_kv_params *tiers,
                                  tome_kvcache **out, tome_kv_snapshot_info *info);

#endif /* TOME_KVCACHE_IMPL_H */
