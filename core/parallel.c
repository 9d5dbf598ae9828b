/*
 * core/parallel.c — a parallel-for over a persistent pool of pthreads.
 *
 * Items are handed out one at a time from an atomic counter, so uneven items
 * (files of very different sizes) balance themselves. The first failing item
 * (lowest index) wins: its status is returned and its message copied to the
 * caller's thread-local error buffer.
 */
#include "core/core_impl.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int tome_num_threads(void)
{
    const char *e = getenv("TOME_THREADS");
    if (e && *e) {
        long v = strtol(e, NULL, 10);
        if (v > 0 && v < 4096) return (int)v;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

double tome_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct par_ctx {
    tome_parallel_fn fn;
    void *ctx;
    size_t n_items;
    atomic_size_t next;
    atomic_int stop;
    pthread_mutex_t mu;
    size_t err_item;
    tome_status err;
    char err_msg[2048];
} par_ctx;

typedef struct par_worker {
    par_ctx *pc;
    int index;
} par_worker;

static void *par_run(void *arg)
{
    par_worker *w = arg;
    par_ctx *pc = w->pc;
    while (!atomic_load(&pc->stop)) {
        size_t i = atomic_fetch_add(&pc->next, 1);
        if (i >= pc->n_items) break;
        tome_status s = pc->fn(pc->ctx, i, w->index);
        if (s != TOME_OK) {
            pthread_mutex_lock(&pc->mu);
            if (pc->err == TOME_OK || i < pc->err_item) {
                pc->err = s;
                pc->err_item = i;
                snprintf(pc->err_msg, sizeof pc->err_msg, "%s", tome_last_error());
            }
            pthread_mutex_unlock(&pc->mu);
            atomic_store(&pc->stop, 1);
        }
    }
    return NULL;
}

/* ---------------------------------------------------------------- pool
 * Worker threads are started on first use and kept for the life of the
 * process, so per-thread state (the tokenizer's piece cache, allocator
 * arenas) survives from one call to the next. One call at a time owns the
 * pool (try-lock): a nested or concurrent call starts its own threads, as
 * every call did before the pool existed. A child after fork() has no
 * workers; the atfork handler resets the pool there. */
#define POOL_MAX 256
static struct {
    pthread_mutex_t busy; /* held by the call that owns the pool  */
    pthread_mutex_t mu;   /* guards the fields below              */
    pthread_cond_t work, done;
    int n_workers;        /* workers 1..n_workers exist           */
    uint64_t gen;         /* job generation                       */
    par_ctx *job;
    int job_threads;      /* workers 1..job_threads-1 take part   */
    int remaining;
    uint64_t start_gen[POOL_MAX]; /* gen when worker i was started   */
} g_pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER,
            0, 0, NULL, 0, 0, {0}};
static pthread_once_t g_pool_once = PTHREAD_ONCE_INIT;

static void pool_atfork_child(void)
{
    pthread_mutex_init(&g_pool.busy, NULL);
    pthread_mutex_init(&g_pool.mu, NULL);
    pthread_cond_init(&g_pool.work, NULL);
    pthread_cond_init(&g_pool.done, NULL);
    g_pool.n_workers = 0;
    g_pool.job = NULL;
    g_pool.job_threads = 0;
    g_pool.remaining = 0;
}

static void pool_once(void) { pthread_atfork(NULL, NULL, pool_atfork_child); }

static void *pool_worker(void *arg)
{
    const int index = (int)(intptr_t)arg;
    pthread_mutex_lock(&g_pool.mu);
    uint64_t seen = g_pool.start_gen[index]; /* a job posted before this thread ran is still taken */
    for (;;) {
        while (g_pool.gen == seen) pthread_cond_wait(&g_pool.work, &g_pool.mu);
        seen = g_pool.gen;
        if (index >= g_pool.job_threads) continue;
        par_worker w = {.pc = g_pool.job, .index = index};
        pthread_mutex_unlock(&g_pool.mu);
        par_run(&w);
        pthread_mutex_lock(&g_pool.mu);
        if (--g_pool.remaining == 0) pthread_cond_signal(&g_pool.done);
    }
    return NULL;
}

/* Makes workers 1..n-1 exist (pool owned, mu not held); returns how many
 * threads the pool can run a job on (1 when none could be started). */
static int pool_grow(int n)
{
    if (n > POOL_MAX) n = POOL_MAX;
    while (g_pool.n_workers < n - 1) {
        pthread_t th;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        /* only the pool's owner (this caller) changes gen, and it posts
         * the next job after growing: the worker starts from this gen */
        pthread_mutex_lock(&g_pool.mu);
        g_pool.start_gen[g_pool.n_workers + 1] = g_pool.gen;
        pthread_mutex_unlock(&g_pool.mu);
        int rc = pthread_create(&th, &at, pool_worker, (void *)(intptr_t)(g_pool.n_workers + 1));
        pthread_attr_destroy(&at);
        if (rc != 0) break;
        pthread_mutex_lock(&g_pool.mu);
        g_pool.n_workers++;
        pthread_mutex_unlock(&g_pool.mu);
    }
    return g_pool.n_workers + 1 < n ? g_pool.n_workers + 1 : n;
}

tome_status tome_parallel_for(size_t n_items, int n_threads, tome_parallel_fn fn, void *ctx)
{
    if (n_items == 0) return TOME_OK;
    if (n_threads <= 0) n_threads = tome_num_threads();
    if ((size_t)n_threads > n_items) n_threads = (int)n_items;
    par_ctx pc;
    memset(&pc, 0, sizeof pc);
    pc.fn = fn;
    pc.ctx = ctx;
    pc.n_items = n_items;
    atomic_init(&pc.next, 0);
    atomic_init(&pc.stop, 0);
    pthread_mutex_init(&pc.mu, NULL);

    pthread_once(&g_pool_once, pool_once);
    if (n_threads > 1 && n_threads <= POOL_MAX && pthread_mutex_trylock(&g_pool.busy) == 0) {
        int nt = pool_grow(n_threads);
        pthread_mutex_lock(&g_pool.mu);
        g_pool.job = &pc;
        g_pool.job_threads = nt;
        g_pool.remaining = nt - 1;
        g_pool.gen++;
        pthread_cond_broadcast(&g_pool.work);
        pthread_mutex_unlock(&g_pool.mu);
        par_worker w0 = {.pc = &pc, .index = 0};
        par_run(&w0);
        pthread_mutex_lock(&g_pool.mu);
        while (g_pool.remaining > 0) pthread_cond_wait(&g_pool.done, &g_pool.mu);
        g_pool.job = NULL;
        pthread_mutex_unlock(&g_pool.mu);
        pthread_mutex_unlock(&g_pool.busy);
    } else {
        pthread_t *th = NULL;
        par_worker *ws = calloc((size_t)n_threads, sizeof *ws);
        if (n_threads > 1) th = calloc((size_t)n_threads, sizeof *th);
        if (!ws || (n_threads > 1 && !th)) {
            free(ws);
            free(th);
            pthread_mutex_destroy(&pc.mu);
            return tome_set_error(TOME_ERR_NOMEM, "out of memory starting %d threads", n_threads);
        }
        int started = 0;
        for (int t = 1; t < n_threads; t++) {
            ws[t].pc = &pc;
            ws[t].index = t;
            if (pthread_create(&th[t], NULL, par_run, &ws[t]) != 0) break;
            started = t;
        }
        ws[0].pc = &pc;
        ws[0].index = 0;
        par_run(&ws[0]);
        for (int t = 1; t <= started; t++) pthread_join(th[t], NULL);
        free(ws);
        free(th);
    }
    pthread_mutex_destroy(&pc.mu);
    if (pc.err != TOME_OK) return tome_set_error(pc.err, "%s", pc.err_msg);
    return TOME_OK;
}
