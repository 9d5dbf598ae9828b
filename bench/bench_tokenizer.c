/*
 * bench/bench_tokenizer.c — tokenizer throughput and load time.
 *
 *   bench_tokenizer TOKENIZER TEXTFILE [THREADS...]
 *
 * Prints one line per measurement (load time, single-thread encode — wall
 * clock and per CPU-second, the latter less disturbed by a busy machine; best
 * of 3, and the first run alone, whose per-thread piece cache starts empty —,
 * then "unseen text": the text cut into 64 KB blocks at line ends, the cache
 * warmed on the even blocks and the odd ones timed, and the other way round,
 * with a fresh tokenizer (an empty cache) each time — the steady state of a
 * long run over new text of the same kind —, encode with each thread count
 * given, decode), best of 3 runs each; checks
 * that every multi-threaded encode gives exactly the single-thread ids.
 * bench/tokenizer_vs_tiktoken.py runs it next to Python tiktoken.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core_impl.h"
#include "tome/tokenizer.h"

static double thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s TOKENIZER TEXTFILE [THREADS...]\n", argv[0]);
        return 2;
    }
    double best_load = 1e9, best_load_cpu = 1e9;
    tome_tokenizer_t *tok = NULL;
    for (int r = 0; r < 5; r++) {
        double t0 = tome_now(), c0 = thread_cpu();
        if (tome_tokenizer_open(argv[1], &tok)) {
            fprintf(stderr, "open: %s\n", tome_last_error());
            return 1;
        }
        double dt = tome_now() - t0, dc = thread_cpu() - c0;
        if (dt < best_load) best_load = dt;
        if (dc < best_load_cpu) best_load_cpu = dc;
        if (r < 4) tome_tokenizer_free(tok);
    }
    printf("load        %8.1f ms  (%s, best of 5; %.1f ms CPU)\n", best_load * 1e3, argv[1],
           best_load_cpu * 1e3);
    tome_buf text = {0};
    if (tome_read_file(argv[2], 0, &text)) {
        fprintf(stderr, "read: %s\n", tome_last_error());
        return 1;
    }
    double mb = (double)text.len / 1e6;
    tome_tokens_t ref = {0};
    double best = 1e9, best_cpu = 1e9, first = 0, first_cpu = 0;
    for (int r = 0; r < 3; r++) {
        tome_tokens_t t = {0};
        double t0 = tome_now(), c0 = thread_cpu();
        if (tome_tokenizer_encode(tok, text.data, text.len, NULL, &t)) {
            fprintf(stderr, "encode: %s\n", tome_last_error());
            return 1;
        }
        double dt = tome_now() - t0, dc = thread_cpu() - c0;
        if (r == 0) {
            first = dt;
            first_cpu = dc;
        }
        if (dt < best) best = dt;
        if (dc < best_cpu) best_cpu = dc;
        tome_tokens_free(&ref);
        ref = t;
    }
    printf("encode 1T   %8.1f MB/s  (%.1f MB, %zu tokens, %.3f s; %.1f MB per CPU-second)\n", mb / best, mb,
           ref.n, best, mb / best_cpu);
    /* the first run starts with an empty piece cache (each thread keeps one
     * across calls): what a single pass over new text gets */
    printf("encode 1T first run %6.1f MB/s  (cold piece cache; %.1f MB per CPU-second)\n", mb / first,
           mb / first_cpu);
    {
        /* unseen text: halves of interleaved 64 KB blocks (cut after a
         * newline, so each half is text of the same kinds) */
        tome_buf half[2] = {{0}, {0}};
        size_t pos = 0;
        for (int k = 0; pos < text.len; k ^= 1) {
            size_t e = pos + 65536 < text.len ? pos + 65536 : text.len;
            while (e < text.len && text.data[e - 1] != '\n') e++;
            if (tome_buf_append(&half[k], text.data + pos, e - pos)) return 1;
            pos = e;
        }
        double t_unseen = 0, c_unseen = 0;
        size_t n_unseen = 0;
        for (int k = 0; k < 2; k++) {
            tome_tokenizer_t *fresh = NULL;
            if (tome_tokenizer_open(argv[1], &fresh)) {
                fprintf(stderr, "open: %s\n", tome_last_error());
                return 1;
            }
            tome_tokens_t w = {0}, t = {0};
            if (tome_tokenizer_encode(fresh, half[k].data, half[k].len, NULL, &w)) return 1; /* warm-up */
            double t0 = tome_now(), c0 = thread_cpu();
            if (tome_tokenizer_encode(fresh, half[!k].data, half[!k].len, NULL, &t)) return 1;
            t_unseen += tome_now() - t0;
            c_unseen += thread_cpu() - c0;
            n_unseen += half[!k].len;
            tome_tokens_free(&w);
            tome_tokens_free(&t);
            tome_tokenizer_free(fresh);
        }
        printf("encode 1T unseen text %6.1f MB/s  (cache warmed on the other half; %.1f MB per CPU-second)\n",
               (double)n_unseen / 1e6 / t_unseen, (double)n_unseen / 1e6 / c_unseen);
        tome_buf_free(&half[0]);
        tome_buf_free(&half[1]);
    }
    int rc = 0;
    for (int a = 3; a < argc; a++) {
        int nt = atoi(argv[a]);
        best = 1e9;
        for (int r = 0; r < 3; r++) {
            tome_tokens_t t = {0};
            tome_encode_opts o = {.n_threads = nt};
            double t0 = tome_now();
            if (tome_tokenizer_encode(tok, text.data, text.len, &o, &t)) {
                fprintf(stderr, "encode: %s\n", tome_last_error());
                return 1;
            }
            double dt = tome_now() - t0;
            if (dt < best) best = dt;
            if (t.n != ref.n || memcmp(t.ids, ref.ids, t.n * sizeof(int32_t)) != 0) {
                fprintf(stderr, "MISMATCH: %d threads gave different ids\n", nt);
                rc = 1;
            }
            tome_tokens_free(&t);
        }
        printf("encode %dT   %8.1f MB/s  (ids identical to 1T: %s)\n", nt, mb / best, rc ? "NO" : "yes");
    }
    char *out = NULL;
    size_t out_len = 0;
    double t0 = tome_now();
    if (tome_tokenizer_decode(tok, ref.ids, ref.n, &out, &out_len)) return 1;
    double dt = tome_now() - t0;
    printf("decode      %8.1f MB/s  (round trip %s)\n", mb / dt,
           out_len == text.len && memcmp(out, text.data, text.len) == 0 ? "exact" : "DIFFERS");
    free(out);
    tome_tokens_free(&ref);
    tome_buf_free(&text);
    tome_tokenizer_free(tok);
    return rc;
}
