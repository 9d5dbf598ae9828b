/*
 * bench/bench_walk.c — tome_walk speed: walk a tree (gitignore rules on),
 * then read every reported file, and print files/s and MB/s.
 *
 *   bench_walk [-r REPEATS] [-j THREADS] [--no-read] [--text] DIR
 *
 * Each repeat walks the whole tree, then reads the files on THREADS
 * threads (default: tome_num_threads()). The best and the median of the
 * repeats are printed; the first repeat warms the page cache.
 * --text also times, on one thread, the per-file text steps of a pack:
 * read + tome_text_detect + tome_text_to_utf8, tome_redact, tome_outline
 * (best of the repeats for each step).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ingest/ingest_impl.h"

typedef struct files {
    char **paths;
    uint64_t *sizes;
    size_t n, cap, skipped;
    uint64_t bytes;
} files;

static tome_status on_entry(void *ud, const tome_walk_entry *e)
{
    files *f = ud;
    if (e->skip_reason) {
        f->skipped++;
        return TOME_OK;
    }
    if (f->n == f->cap) {
        size_t nc = f->cap ? 2 * f->cap : 1024;
        char **np = realloc(f->paths, nc * sizeof *np);
        if (!np) return tome_set_error(TOME_ERR_NOMEM, "bench: out of memory");
        f->paths = np;
        uint64_t *ns = realloc(f->sizes, nc * sizeof *ns);
        if (!ns) return tome_set_error(TOME_ERR_NOMEM, "bench: out of memory");
        f->sizes = ns;
        f->cap = nc;
    }
    f->paths[f->n] = strdup(e->fs_path);
    if (!f->paths[f->n]) return tome_set_error(TOME_ERR_NOMEM, "bench: out of memory");
    f->sizes[f->n] = e->size;
    f->bytes += e->size;
    f->n++;
    return TOME_OK;
}

static void files_free(files *f)
{
    for (size_t i = 0; i < f->n; i++) free(f->paths[i]);
    free(f->paths);
    free(f->sizes);
    memset(f, 0, sizeof *f);
}

typedef struct read_ctx {
    files *f;
    char **bufs; /* one per thread */
    uint64_t read_bytes[256];
} read_ctx;

static tome_status read_one(void *vctx, size_t i, int t)
{
    read_ctx *c = vctx;
    int fd = open(c->f->paths[i], O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return TOME_OK; /* vanished meanwhile: not the benchmark's business */
    for (;;) {
        ssize_t r = read(fd, c->bufs[t], 1 << 20);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        c->read_bytes[t & 255] += (uint64_t)r;
    }
    close(fd);
    return TOME_OK;
}

/* One pass of the text steps over all files; seconds per step in sec[3]. */
static tome_status text_steps(const files *f, double sec[3], size_t *n_text, uint64_t *text_bytes,
                              size_t *n_redacted, size_t *n_outline)
{
    tome_buf *txt = calloc(f->n ? f->n : 1, sizeof *txt);
    if (!txt) return tome_set_error(TOME_ERR_NOMEM, "bench: out of memory");
    tome_status st = TOME_OK;
    *n_text = 0;
    *text_bytes = 0;
    *n_redacted = 0;
    *n_outline = 0;
    double t0 = tome_now();
    for (size_t i = 0; i < f->n && st == TOME_OK; i++) {
        tome_buf raw = {0};
        if (tome_read_file(f->paths[i], 0, &raw) != TOME_OK) continue;
        tome_encoding e = tome_text_detect((const uint8_t *)raw.data, raw.len);
        if (e != TOME_ENC_BINARY) {
            st = tome_text_to_utf8((const uint8_t *)raw.data, raw.len, e, &txt[i]);
            if (!txt[i].data) st = st ? st : tome_buf_append(&txt[i], "", 0);
            (*n_text)++;
            *text_bytes += raw.len;
        }
        tome_buf_free(&raw);
    }
    double t1 = tome_now();
    for (size_t i = 0; i < f->n && st == TOME_OK; i++) {
        if (!txt[i].data) continue;
        tome_redaction *red = NULL;
        size_t n = 0;
        st = tome_redact(f->paths[i], &txt[i], &red, &n);
        *n_redacted += n;
        free(red);
    }
    double t2 = tome_now();
    for (size_t i = 0; i < f->n && st == TOME_OK; i++) {
        if (!txt[i].data) continue;
        tome_outline_line *ol = NULL;
        size_t n = 0;
        st = tome_outline(f->paths[i], txt[i].data, txt[i].len, &ol, &n);
        *n_outline += n;
        free(ol);
    }
    double t3 = tome_now();
    sec[0] = t1 - t0;
    sec[1] = t2 - t1;
    sec[2] = t3 - t2;
    for (size_t i = 0; i < f->n; i++) tome_buf_free(&txt[i]);
    free(txt);
    return st;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int repeats = 5, threads = 0, do_read = 1, do_text = 0;
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-r") == 0 && i + 1 < argc) repeats = atoi(argv[++i]);
        else if (strcmp(argv[i], "-j") == 0 && i + 1 < argc) threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--no-read") == 0) do_read = 0;
        else if (strcmp(argv[i], "--text") == 0) do_text = 1;
        else if (argv[i][0] != '-' && !dir) dir = argv[i];
        else {
            fprintf(stderr, "usage: bench_walk [-r REPEATS] [-j THREADS] [--no-read] [--text] DIR\n");
            return 2;
        }
    }
    if (!dir) {
        fprintf(stderr, "usage: bench_walk [-r REPEATS] [-j THREADS] [--no-read] [--text] DIR\n");
        return 2;
    }
    if (repeats < 1) repeats = 1;
    if (threads <= 0) threads = tome_num_threads();
    if (threads > 256) threads = 256;

    double *walk_s = calloc((size_t)repeats, sizeof *walk_s);
    double *read_s = calloc((size_t)repeats, sizeof *read_s);
    char **bufs = calloc((size_t)threads, sizeof *bufs);
    if (!walk_s || !read_s || !bufs) return 1;
    for (int t = 0; t < threads; t++)
        if (!(bufs[t] = malloc(1 << 20))) return 1;

    size_t n_files = 0, n_skipped = 0;
    uint64_t bytes = 0;
    double best_text[3] = {1e30, 1e30, 1e30};
    size_t n_text = 0, n_red = 0, n_ol = 0;
    uint64_t text_bytes = 0;
    for (int r = 0; r < repeats; r++) {
        files f = {0};
        double t0 = tome_now();
        tome_status st = tome_walk(dir, NULL, on_entry, &f);
        double t1 = tome_now();
        if (st != TOME_OK) {
            fprintf(stderr, "bench_walk: %s\n", tome_last_error());
            return 1;
        }
        walk_s[r] = t1 - t0;
        if (do_read) {
            read_ctx c = {&f, bufs, {0}};
            st = tome_parallel_for(f.n, threads, read_one, &c);
            if (st != TOME_OK) {
                fprintf(stderr, "bench_walk: %s\n", tome_last_error());
                return 1;
            }
            read_s[r] = tome_now() - t1;
        }
        if (do_text) {
            double sec[3] = {0, 0, 0};
            st = text_steps(&f, sec, &n_text, &text_bytes, &n_red, &n_ol);
            if (st != TOME_OK) {
                fprintf(stderr, "bench_walk: %s\n", tome_last_error());
                return 1;
            }
            for (int k = 0; k < 3; k++)
                if (sec[k] < best_text[k]) best_text[k] = sec[k];
        }
        n_files = f.n;
        n_skipped = f.skipped;
        bytes = f.bytes;
        files_free(&f);
    }
    double *tot = calloc((size_t)repeats, sizeof *tot);
    if (!tot) return 1;
    for (int r = 0; r < repeats; r++) tot[r] = walk_s[r] + read_s[r];
    qsort(walk_s, (size_t)repeats, sizeof *walk_s, cmp_double);
    qsort(tot, (size_t)repeats, sizeof *tot, cmp_double);
    double mb = (double)bytes / 1e6;
    printf("tree: %s\nfiles: %zu reported, %zu skipped (listed only), %.1f MB\n", dir, n_files, n_skipped, mb);
    printf("walk only:   best %.2f ms, median %.2f ms  (%.0f files/s)\n", walk_s[0] * 1e3,
           walk_s[repeats / 2] * 1e3, (double)n_files / walk_s[0]);
    if (do_read)
        printf("walk + read: best %.2f ms, median %.2f ms  (%.0f files/s, %.0f MB/s, %d threads)\n",
               tot[0] * 1e3, tot[repeats / 2] * 1e3, (double)n_files / tot[0], mb / tot[0], threads);
    if (do_text) {
        double tmb = (double)text_bytes / 1e6;
        static const char *const step[3] = {"read+detect+utf8", "redact", "outline"};
        printf("text files: %zu, %.1f MB (1 thread, best of %d)\n", n_text, tmb, repeats);
        for (int k = 0; k < 3; k++)
            printf("  %-17s %8.1f ms  %7.0f MB/s\n", step[k], best_text[k] * 1e3, tmb / best_text[k]);
        printf("  redactions: %zu, outline lines: %zu\n", n_red, n_ol);
    }
    printf("repeats: %d (page cache warm after the first)\n", repeats);
    for (int t = 0; t < threads; t++) free(bufs[t]);
    free(bufs);
    free(walk_s);
    free(read_s);
    free(tot);
    return 0;
}
