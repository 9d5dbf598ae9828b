/*
 * model/pool_impl.h — the compute thread pool of the CPU backend (model,
 * attention).
 *
 * One process-wide pool of worker threads, created on first use.
 * tome_pool_run hands items [0, n_items) out to the caller (thread 0) and up
 * to n_threads-1 workers and returns when all are done. Items are claimed
 * one at a time, so the caller takes over whatever a slow (descheduled)
 * worker has not started. Workers spin for a fraction of a millisecond after
 * a job (decode issues dozens of small jobs per token; a sleeping worker
 * costs tens of microseconds to wake) and then sleep on a condition variable,
 * so an idle or oversubscribed machine is not burnt by spinning threads — on
 * a shared 2-core VM OpenMP's default active wait made decode 10-30x slower.
 * Not reentrant: fn must not call tome_pool_run. Calls from several threads
 * at once are serialised by a mutex.
 *
 * Per-thread scratch: tome_pool_scratch(tid, bytes) returns a buffer owned by
 * the pool (grown on demand, kept for reuse; never freed before exit), valid
 * until the next call with the same tid.
 */
#ifndef TOME_POOL_IMPL_H
#define TOME_POOL_IMPL_H

#include <stddef.h>

typedef void (*tome_pool_fn)(void *ctx, size_t item, int tid);

/* n_threads <= 0: tome_num_threads(). Returns 0, or -1 when scratch or
 * threads could not be set up (then everything ran on the caller). */
int tome_pool_run(int n_threads, size_t n_items, tome_pool_fn fn, void *ctx);
void *tome_pool_scratch(int tid, size_t bytes); /* NULL on out of memory */

#endif /* TOME_POOL_IMPL_H */
