/*
 * model/pool.c — the compute thread pool (see pool_impl.h).
 *
 * State: a generation counter bumped per job; workers remember the last
 * generation they served. A job is {fn, ctx, n_items, n_threads, next item,
 * threads still running}. The caller publishes the job under the mutex,
 * broadcasts, works on items itself, then waits for `running` to reach 0.
 */
#include "model/pool_impl.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "core/core_impl.h"

#define POOL_MAX 256
#define SPIN_ITERS 2000

typedef struct pool {
    pthread_mutex_t run_lock; /* one job at a time                   */
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    atomic_ulong gen;
    int n_workers;            /* started worker threads (ids 1..)    */
    /* current job */
    tome_pool_fn fn;
    void *ctx;
    size_t n_items;
    int n_threads;
    atomic_size_t next;
    atomic_int running;
    unsigned long start_gen[POOL_MAX]; /* generation current when worker tid was created */
    /* scratch per thread id */
    void *scratch[POOL_MAX];
    size_t scratch_cap[POOL_MAX];
} pool;

static pool g_pool = {.run_lock = PTHREAD_MUTEX_INITIALIZER, .mu = PTHREAD_MUTEX_INITIALIZER,
                      .wake = PTHREAD_COND_INITIALIZER, .done = PTHREAD_COND_INITIALIZER};

static void work(pool *p, int tid)
{
    size_t i;
    while ((i = atomic_fetch_add(&p->next, 1)) < p->n_items) p->fn(p->ctx, i, tid);
}

static void *worker(void *arg)
{
    pool *p = &g_pool;
    int tid = (int)(intptr_t)arg;
    unsigned long seen = p->start_gen[tid]; /* written before pthread_create */
    for (;;) {
        int spins = 0;
        while (atomic_load(&p->gen) == seen && spins < SPIN_ITERS) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
            spins++;
        }
        pthread_mutex_lock(&p->mu);
        while (atomic_load(&p->gen) == seen) pthread_cond_wait(&p->wake, &p->mu);
        seen = atomic_load(&p->gen);
        int mine = tid < p->n_threads;
        pthread_mutex_unlock(&p->mu);
        if (!mine) continue;
        work(p, tid);
        if (atomic_fetch_sub(&p->running, 1) == 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
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
    if (n_threads <= 1) {
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
        p->start_gen[p->n_workers + 1] = atomic_load(&p->gen);
        int e = pthread_create(&th, &attr, worker, (void *)(intptr_t)(p->n_workers + 1));
        pthread_attr_destroy(&attr);
        if (e != 0) {
            rc = -1;
            break;
        }
        p->n_workers++;
    }
    if (n_threads - 1 > p->n_workers) n_threads = p->n_workers + 1;
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->n_items = n_items;
    p->n_threads = n_threads;
    atomic_store(&p->next, 0);
    atomic_store(&p->running, n_threads - 1);
    atomic_fetch_add(&p->gen, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    work(p, 0);
    int spins = 0;
    while (atomic_load(&p->running) > 0 && spins < SPIN_ITERS) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
        spins++;
    }
    pthread_mutex_lock(&p->mu);
    while (atomic_load(&p->running) > 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
    pthread_mutex_unlock(&p->run_lock);
    return rc;
}
