/*
 * core/core_impl.h — small shared utilities every module uses.
 *
 *  - tome_buf: a growable byte buffer (owned data, NUL-terminated for text).
 *  - file helpers: read a whole file, map a file read-only, write a file
 *    atomically (temp file in the same directory, fsync, rename), so that a
 *    crash or a full disk never leaves a partial file under the final name.
 *  - tome_parallel_for: run fn(i) for i in [0, n) on up to n_threads threads.
 *  - tome_num_threads: the default thread count (TOME_THREADS or online CPUs).
 *
 * All functions report errors through tome_status + tome_last_error().
 */
#ifndef TOME_CORE_IMPL_H
#define TOME_CORE_IMPL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/error_impl.h"

/* ------------------------------------------------------------ buffers */
typedef struct tome_buf {
    char *data;  /* NULL or malloc'd; always NUL-terminated past len when non-NULL */
    size_t len;  /* bytes used */
    size_t cap;  /* bytes allocated, excluding the terminating NUL */
} tome_buf;

tome_status tome_buf_reserve(tome_buf *b, size_t extra);
tome_status tome_buf_append(tome_buf *b, const void *data, size_t n);
tome_status tome_buf_appendf(tome_buf *b, const char *fmt, ...) TOME_PRINTF(2, 3);
tome_status tome_buf_putc(tome_buf *b, char c);
void tome_buf_free(tome_buf *b); /* frees data and zeroes b; NULL ok */

/* ------------------------------------------------------------ files */
/* Read a whole file into *out (NUL-terminated). Errors name the path.
 * max_bytes: refuse (TOME_ERR_LIMIT) files larger than this; 0 = no cap. */
tome_status tome_read_file(const char *path, uint64_t max_bytes, tome_buf *out);

/* Read-only memory map of a whole file. An empty file maps to data=NULL, len=0. */
typedef struct tome_mmap {
    const uint8_t *data;
    size_t len;
} tome_mmap;
tome_status tome_mmap_open(const char *path, tome_mmap *out);
void tome_mmap_close(tome_mmap *m); /* NULL ok, and a zeroed map is ok */

/* Atomic file writer: writes go to "<path>.tmp.<pid>.<n>" next to path;
 * commit fsyncs and renames over path; abort (or a failed commit) removes the
 * temp file. After any write error the writer is dead and commit fails. */
typedef struct tome_atomic_file tome_atomic_file;
tome_status tome_atomic_open(const char *path, tome_atomic_file **out);
tome_status tome_atomic_write(tome_atomic_file *f, const void *data, size_t n);
FILE *tome_atomic_stream(tome_atomic_file *f);      /* for fseeko/ftello; do not fclose */
tome_status tome_atomic_commit(tome_atomic_file *f); /* frees f in all cases */
void tome_atomic_abort(tome_atomic_file *f);         /* frees f; NULL ok */

/* What an output path holds before a command replaces it, for the rule
 * every writer follows — replace only an absent or empty file or the
 * command's own earlier output, never a source, a directory or a device:
 * for a non-empty regular file, its first bytes (up to cap) are read into
 * head (*got of them) for the caller to recognise. */
typedef enum { TOME_OUT_ABSENT, TOME_OUT_EMPTY, TOME_OUT_FILE, TOME_OUT_DIR, TOME_OUT_SPECIAL } tome_out_state;
tome_out_state tome_output_probe(const char *path, char *head, size_t cap, size_t *got);

/* ------------------------------------------------------------ threads */
/* Default number of worker threads: $TOME_THREADS if set and > 0, else the
 * number of online CPUs (at least 1). */
int tome_num_threads(void);

/* Calls fn(ctx, i, thread_index) for every i in [0, n_items), distributing
 * items dynamically over min(n_threads, n_items) threads (n_threads <= 0:
 * tome_num_threads()). fn's return value: TOME_OK, or an error that stops the
 * remaining items; the first error (lowest item index) is returned and its
 * message is copied to the calling thread. */
typedef tome_status (*tome_parallel_fn)(void *ctx, size_t item, int thread_index);
tome_status tome_parallel_for(size_t n_items, int n_threads, tome_parallel_fn fn, void *ctx);

/* Monotonic clock in seconds. */
double tome_now(void);

#endif /* TOME_CORE_IMPL_H */
