/*
 * core/parallel.c — a minimal parallel-for over pthreads.
 *
 * Items are handed out one at a time from an atomic counter, so uneven items
 * (files of very different sizes) balance themselves. The first failing item
 * (lowest index) wins: its status is returned and its message copied to the
 * caller's thread-local error buffer.
 */
#include "core/core_impl.h"

#include <pthread.h>
#include <stdatomic.h>
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
    pthread_mutex_destroy(&pc.mu);
    if (pc.err != TOME_OK) return tome_set_error(pc.err, "%s", pc.err_msg);
    return TOME_OK;
}
