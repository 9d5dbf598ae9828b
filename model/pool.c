/*
 * model/pool.c — the compute thread pool (see pool_impl.h).
 *
 * A job is published as one 64-bit word: (generation << 32) | next item.
 * Anyone — the caller or a worker — claims an item with a compare-and-swap
 * that only succeeds while the word still carries the job's generation and
 * items remain, so a worker that wakes late (descheduled on a loaded machine)
 * can never take an item of a later job (the caller first closes the old
 * generation — next = 0xffffffff — before it writes the new job's fields),
 * and the caller never waits for a
 * worker that has not started: it claims whatever is left itself, then waits
 * only for items that are actually running (`done` reaching n_items).
 *
 * Hand-off cost matters for decode (a few dozen small products per token):
 * workers spin on the word for SPIN_NS after their last item (pause
 * instructions, a sched_yield now and then), then sleep on a condition
 * variable; the caller signals it only when a worker sleeps (`sleepers`,
 * sequentially consistent with the word, so a wake-up cannot be lost).
 * Every atomic is sequentially consistent: on x86 the loads cost the same as
 * acquire / relaxed ones, and with weaker orders ThreadSanitizer reported a
 * worker's reads of a job's context racing with the caller's writes of it
 * (a stress test of 3000 jobs; clean with seq_cst).
 */
#include "model/pool_impl.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "core/core_impl.h"

#define POOL_MAX 256
#define SPIN_NS 300000 /* a worker spins this long after its last item before sleeping */

typedef struct pool {
    pthread_mutex_t run_lock; /* one job at a time                   */
    pthread_mutex_t mu;       /* sleep / wake                        */
    pthread_cond_t wake;
    atomic_int sleepers;
    int n_workers;            /* started worker threads (ids 1..)    */
    /* current job: fields written by the caller before the word */
    _Atomic(tome_pool_fn) fn;
    _Atomic(void *) ctx;
    atomic_size_t n_items;
    atomic_int n_threads;
    atomic_uint_least64_t word; /* generation << 32 | next item */
    atomic_size_t done;
    uint32_t start_gen[POOL_MAX]; /* generation current when worker tid was created */
    /* scratch per thread id */
    void *scratch[POOL_MAX];
    size_t scratch_cap[POOL_MAX];
} pool;

static pool g_pool = {.run_lock = PTHREAD_MUTEX_INITIALIZER, .mu = PTHREAD_MUTEX_INITIALIZER,
                      .wake = PTHREAD_COND_INITIALIZER};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Runs items of generation gen until none are left. */
static void work(pool *p, uint32_t gen, tome_pool_fn fn, void *ctx, size_t n, int tid)
{
    uint64_t w = atomic_load(&p->word);
    for (;;) {
        if ((uint32_t)(w >> 32) != gen || (w & 0xffffffffu) >= n) return;
        if (!atomic_compare_exchange_weak(&p->word, &w, w + 1))
            continue;
        fn(ctx, (size_t)(w & 0xffffffffu), tid);
        atomic_fetch_add(&p->done, 1);
        w = atomic_load(&p->word);
    }
}

static void *worker(void *arg)
{
    pool *p = &g_pool;
    int tid = (int)(intptr_t)arg;
    uint32_t seen = p->start_gen[tid]; /* written before pthread_create */
    for (;;) {
        /* wait for a new generation: spin, then sleep */
        uint64_t t0 = 0;
        unsigned spins = 0;
        while ((uint32_t)(atomic_load(&p->word) >> 32) == seen) {
            cpu_relax();
            if ((++spins & 255) != 0) continue;
            uint64_t t = now_ns();
            if (!t0) t0 = t;
            if (t - t0 > SPIN_NS) {
                atomic_fetch_add(&p->sleepers, 1);
                pthread_mutex_lock(&p->mu);
                while ((uint32_t)(atomic_load(&p->word) >> 32) == seen) pthread_cond_wait(&p->wake, &p->mu);
                pthread_mutex_unlock(&p->mu);
                atomic_fetch_sub(&p->sleepers, 1);
                break;
            }
            if ((spins & 4095) == 0) sched_yield();
        }
        uint64_t w = atomic_load(&p->word);
        uint32_t gen = (uint32_t)(w >> 32);
        seen = gen;
        /* these may already belong to a later job: then every claim fails */
        tome_pool_fn fn = atomic_load(&p->fn);
        void *ctx = atomic_load(&p->ctx);
        size_t n = atomic_load(&p->n_items);
        int nt = atomic_load(&p->n_threads);
        if (tid < nt) work(p, gen, fn, ctx, n, tid);
    }
    return NULL;
}

void *tome_pool_scratch(int tid, size_t bytes)
{
    pool *p = &g_pool;
    if (tid < 0 || tid >= POOL_MAX) return NULL;
    if (p->scratch_cap[tid] < bytes) {
        void *n = realloc(p->scratch[tid], bytes);
        if (!n) return NULL;
        p->scratch[tid] = n;
        p->scratch_cap[tid] = bytes;
    }
    return p->scratch[tid];
}

int tome_pool_run(int n_threads, size_t n_items, tome_pool_fn fn, void *ctx)
{
    pool *p = &g_pool;
    if (n_threads <= 0) n_threads = tome_num_threads();
    if (n_threads > POOL_MAX) n_threads = POOL_MAX;
    if ((size_t)n_threads > n_items) n_threads = (int)n_items;
    if (n_threads <= 1 || n_items > 0xffffffffu) {
        for (size_t i = 0; i < n_items; i++) fn(ctx, i, 0);
        return 0;
    }
    pthread_mutex_lock(&p->run_lock);
    int rc = 0;
    while (p->n_workers < n_threads - 1) {
        pthread_t th;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        p->start_gen[p->n_workers + 1] = (uint32_t)(atomic_load(&p->word) >> 32);
        int e = pthread_create(&th, &attr, worker, (void *)(intptr_t)(p->n_workers + 1));
        pthread_attr_destroy(&attr);
        if (e != 0) {
            rc = -1;
            break;
        }
        p->n_workers++;
    }
    if (n_threads - 1 > p->n_workers) n_threads = p->n_workers + 1;
    /* Close the previous generation before its fields are overwritten: a
     * worker that read the previous word (all items claimed, next == n_prev)
     * and then this job's larger n_items would otherwise win a claim of the
     * old generation and run item n_prev of this job, which this job then
     * runs again. With next = 0xffffffff no claim of the old generation can
     * succeed (n_items <= 0xffffffff here), and the generation is unchanged,
     * so no worker wakes for it. */
    atomic_store(&p->word, (atomic_load(&p->word) & 0xffffffff00000000u) | 0xffffffffu);
    atomic_store(&p->fn, fn);
    atomic_store(&p->ctx, ctx);
    atomic_store(&p->n_items, n_items);
    atomic_store(&p->n_threads, n_threads);
    atomic_store(&p->done, 0);
    uint32_t gen = (uint32_t)(atomic_load(&p->word) >> 32) + 1;
    atomic_store(&p->word, (uint64_t)gen << 32); /* seq_cst: ordered before the sleepers check */
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
    }
    work(p, gen, fn, ctx, n_items, 0);
    /* every item is claimed; wait for those still running on workers */
    unsigned spins = 0;
    while (atomic_load(&p->done) < n_items) {
        cpu_relax();
        if ((++spins & 1023) == 0) sched_yield();
    }
    pthread_mutex_unlock(&p->run_lock);
    return rc;
}
