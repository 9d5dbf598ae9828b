/*
 * kvcache/kv_prefetch.c — read-ahead of disk-tier pages on a background
 * thread, in the order attention reads them.
 *
 * tome_kv_prefetch(kv, layer, seq, p0, p1) says "positions [p0, p1) of this
 * stream are read next, in increasing order". The pages of that range that
 * live on the disk tier (the page file or the loaded snapshot) are queued
 * — as copies of their page-table entries (offset, length, raw or zstd,
 * position), so the thread never touches the page table — and one thread
 * per cache reads, decompresses and verifies them into a ring of
 * TOME_KV_PF_SLOTS page buffers, staying at most that many pages ahead of
 * the reader. A read of a disk page (kv_cache.c, page_bytes) first asks the
 * ring: a ready page is copied out (waiting if it is being loaded), anything
 * else is read synchronously as before (a page the thread has not started
 * is read by the reader itself, and the thread skips past it: a reader
 * never waits for the thread to be scheduled). A prefetched page is only used when
 * its key (stream, page index, cache epoch) matches, so writes, which bump
 * the epoch, invalidate the ring; the thread only reads file descriptors
 * that stay open for the cache's life. A page that fails its checksum in
 * the thread is simply not offered: the synchronous read then reports it
 * with the usual message.
 *
 * The thread starts on the first tome_kv_prefetch that finds disk pages
 * (params.prefetch_pages < 0 turns it off) and is joined by tome_kv_free.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "core/error_impl.h"
#include "kvcache/kv_cache_impl.h"

enum { PF_EMPTY = 0, PF_LOADING, PF_READY, PF_BAD };

typedef struct pf_item {
    size_t j;
    uint64_t off;
    uint32_t len;
    uint8_t raw, snap;
    int64_t p0;
} pf_item;

typedef struct pf_slot {
    uint8_t *page, *z;
    int state;
    const tome_kv_stream *s;
    size_t j;
    uint64_t epoch;
} pf_slot;

struct tome_kv_pf {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int quit, depth, busy;
    const tome_kv_stream *s;   /* stream of the queue                        */
    uint64_t epoch;            /* cache epoch when queued                    */
    pf_item *items;
    size_t n_items, cap_items, next;
    size_t read_j;             /* reader's next page index in s              */
    pf_slot *slots;            /* [depth], page j in slot j % depth          */
    uint64_t hits, misses;
};

static int pf_load(const tome_kvcache *kv, const pf_item *it, pf_slot *sl)
{
    const size_t pb = kv->L.page_bytes;
    int fd = it->snap ? kv->snap_fd : kv->disk_fd;
    uint8_t *dst = it->raw ? sl->page : sl->z;
    if (fd < 0 || it->len > (it->raw ? pb : kv->zcap)) return 0;
    size_t got = 0;
    while (got < it->len) {
        ssize_t r = pread(fd, dst + got, it->len - got, (off_t)(it->off + got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return 0;
        got += (size_t)r;
    }
    if (!it->raw) {
        size_t dn = ZSTD_decompress(sl->page, pb, sl->z, it->len);
        if (ZSTD_isError(dn) || dn != pb) return 0;
    }
    /* a bad page is not offered; the synchronous read reports it */
    return tome_kv_page_verify(&kv->L, sl->page, it->p0, "prefetch") == TOME_OK;
}

static void *pf_main(void *arg)
{
    const tome_kvcache *kv = arg;
    struct tome_kv_pf *pf = kv->pf;
    pthread_mutex_lock(&pf->mu);
    for (;;) {
        while (!pf->quit && !(pf->next < pf->n_items && pf->items[pf->next].j < pf->read_j + (size_t)pf->depth))
            pthread_cond_wait(&pf->cv, &pf->mu);
        if (pf->quit) break;
        pf_item it = pf->items[pf->next++];
        pf_slot *sl = &pf->slots[it.j % (size_t)pf->depth]; /* page it.j - depth: already passed */
        const tome_kv_stream *s = pf->s;
        const uint64_t epoch = pf->epoch;
        pf->busy = 1;
        sl->state = PF_LOADING;
        sl->s = s;
        sl->j = it.j;
        sl->epoch = epoch;
        pthread_mutex_unlock(&pf->mu);
        int ok = pf_load(kv, &it, sl);
        pthread_mutex_lock(&pf->mu);
        sl->state = ok ? PF_READY : PF_BAD;
        pf->busy = 0;
        pthread_cond_broadcast(&pf->cv);
    }
    pthread_mutex_unlock(&pf->mu);
    return NULL;
}

void tome_kv_pf_free(tome_kvcache *kv)
{
    struct tome_kv_pf *pf = kv->pf;
    if (!pf) return;
    pthread_mutex_lock(&pf->mu);
    pf->quit = 1;
    pthread_cond_broadcast(&pf->cv);
    pthread_mutex_unlock(&pf->mu);
    pthread_join(pf->th, NULL);
    for (int i = 0; i < pf->depth; i++) {
        free(pf->slots[i].page);
        free(pf->slots[i].z);
    }
    free(pf->slots);
    free(pf->items);
    pthread_mutex_destroy(&pf->mu);
    pthread_cond_destroy(&pf->cv);
    free(pf);
    kv->pf = NULL;
}

/* Creates the prefetcher (under kv->tlock); 0 when it cannot. */
static int pf_start(tome_kvcache *kv)
{
    const int depth = kv->p.prefetch_pages > 0 ? kv->p.prefetch_pages : TOME_KV_PF_SLOTS;
    struct tome_kv_pf *pf = calloc(1, sizeof *pf);
    if (!pf) return 0;
    pf->depth = depth;
    pf->slots = calloc((size_t)depth, sizeof *pf->slots);
    int ok = pf->slots != NULL;
    for (int i = 0; ok && i < depth; i++) {
        pf->slots[i].page = aligned_alloc(64, ((size_t)kv->L.page_bytes + 63) & ~(size_t)63);
        pf->slots[i].z = malloc(kv->zcap);
        ok = pf->slots[i].page && pf->slots[i].z;
    }
    if (ok && pthread_mutex_init(&pf->mu, NULL) != 0) ok = 0;
    if (ok && pthread_cond_init(&pf->cv, NULL) != 0) {
        pthread_mutex_destroy(&pf->mu);
        ok = 0;
    }
    if (ok) {
        kv->pf = pf;
        if (pthread_create(&pf->th, NULL, pf_main, kv) != 0) {
            kv->pf = NULL;
            pthread_mutex_destroy(&pf->mu);
            pthread_cond_destroy(&pf->cv);
            ok = 0;
        }
    }
    if (!ok) {
        for (int i = 0; pf->slots && i < depth; i++) {
            free(pf->slots[i].page);
            free(pf->slots[i].z);
        }
        free(pf->slots);
        free(pf);
        return 0;
    }
    return 1;
}

void tome_kv_pf_queue(const tome_kvcache *ckv, const tome_kv_stream *s, size_t j0, size_t j1)
{
    tome_kvcache *kv = (tome_kvcache *)ckv;
    if (kv->p.prefetch_pages < 0) return;
    if (j1 > s->n_pages) j1 = s->n_pages;
    size_t n = 0;
    for (size_t j = j0; j < j1; j++) n += s->pages[j].tier == TOME_KV_TIER_DISK;
    if (n == 0) return;
    pthread_mutex_lock(&kv->tlock);
    int ok = kv->pf != NULL || pf_start(kv);
    pthread_mutex_unlock(&kv->tlock);
    if (!ok) return;
    struct tome_kv_pf *pf = kv->pf;
    pthread_mutex_lock(&pf->mu);
    if (pf->cap_items < n) {
        pf_item *ni = realloc(pf->items, n * sizeof *ni);
        if (!ni) {
            pthread_mutex_unlock(&pf->mu);
            return;
        }
        pf->items = ni;
        pf->cap_items = n;
    }
    pf->n_items = 0;
    for (size_t j = j0; j < j1; j++) {
        const tome_kv_page *pg = &s->pages[j];
        if (pg->tier != TOME_KV_TIER_DISK) continue;
        pf->items[pf->n_items++] = (pf_item){.j = j, .off = pg->disk_off, .len = pg->disk_len, .raw = pg->disk_raw,
                                             .snap = pg->disk_snap,
                                             .p0 = s->base + (int64_t)j * kv->L.page_tokens};
    }
    pf->next = 0;
    pf->s = s;
    pf->epoch = kv->epoch;
    pf->read_j = j0;
    pthread_cond_broadcast(&pf->cv);
    pthread_mutex_unlock(&pf->mu);
}

int tome_kv_pf_take(const tome_kvcache *kv, const tome_kv_stream *s, size_t j, uint8_t *dst)
{
    struct tome_kv_pf *pf = kv->pf;
    if (!pf) return 0;
    int got = 0;
    pthread_mutex_lock(&pf->mu);
    if (pf->s == s && pf->epoch == kv->epoch) {
        pf_slot *sl = &pf->slots[j % (size_t)pf->depth];
        /* being loaded: wait (the work is under way on the other thread) */
        while (!pf->quit && pf->s == s && pf->epoch == kv->epoch && sl->state == PF_LOADING && sl->s == s &&
               sl->j == j && sl->epoch == kv->epoch)
            pthread_cond_wait(&pf->cv, &pf->mu);
        if (sl->state == PF_READY && sl->s == s && sl->j == j && sl->epoch == kv->epoch) {
            memcpy(dst, sl->page, kv->L.page_bytes);
            got = 1;
        }
        /* not started: the reader reads it itself (never waits for the thread
         * to be scheduled), and the thread skips what the reader passed */
        while (pf->next < pf->n_items && pf->items[pf->next].j <= j) pf->next++;
        if (j + 1 > pf->read_j) pf->read_j = j + 1;
        pthread_cond_broadcast(&pf->cv);
    }
    if (got)
        pf->hits++;
    else
        pf->misses++;
    pthread_mutex_unlock(&pf->mu);
    return got;
}

void tome_kv_prefetch_wait(const tome_kvcache *kv)
{
    struct tome_kv_pf *pf = kv->pf;
    if (!pf) return;
    pthread_mutex_lock(&pf->mu);
    while (!pf->quit && (pf->busy || (pf->next < pf->n_items && pf->items[pf->next].j < pf->read_j + (size_t)pf->depth)))
        pthread_cond_wait(&pf->cv, &pf->mu);
    pthread_mutex_unlock(&pf->mu);
}

void tome_kv_pf_stats(const tome_kvcache *kv, uint64_t *hits, uint64_t *misses)
{
    struct tome_kv_pf *pf = kv->pf;
    *hits = *misses = 0;
    if (!pf) return;
    pthread_mutex_lock(&pf->mu);
    *hits = pf->hits;
    *misses = pf->misses;
    pthread_mutex_unlock(&pf->mu);
}
