/*
 * bench/bench_archive.c — tome_archive_read (+ document extraction) speed.
 *
 *   bench_archive [-r REPEATS] [--docs] FILE...
 *
 * Each FILE is mapped once; every repeat reads all of its members (nested
 * archives included, default limits) on one thread. With --docs every
 * member that sniffs as a document (PDF/DOCX/ODT/HTML) is also extracted,
 * and a FILE that is itself a document is extracted directly. Prints, per
 * file, the best and median wall time of the repeats, members, compressed
 * MB/s (input) and decompressed MB/s (output). One thread by design: the
 * pack builder runs one archive per worker.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/ingest_impl.h"

typedef struct stats {
    int docs;
    uint64_t members, skipped, bytes_out, doc_text;
} stats;

static tome_status on_member(void *ud, const tome_archive_entry *e)
{
    stats *s = ud;
    if (e->skip_reason) {
        s->skipped++;
        return TOME_OK;
    }
    s->members++;
    s->bytes_out += e->len;
    if (s->docs) {
        tome_doc_kind k = tome_doc_sniff(e->path, e->data, e->len);
        if (k != TOME_DOC_NONE) {
            tome_doc_text d;
            if (tome_doc_extract(k, e->path, e->data, e->len, &d) == TOME_OK)
                s->doc_text += d.text.len;
            tome_doc_text_free(&d);
        }
    }
    return TOME_OK;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int repeats = 5, docs = 0, first = 1;
    while (first < argc && argv[first][0] == '-') {
        if (strcmp(argv[first], "-r") == 0 && first + 1 < argc) {
            repeats = atoi(argv[first + 1]);
            first += 2;
        } else if (strcmp(argv[first], "--docs") == 0) {
            docs = 1;
            first++;
        } else {
            break;
        }
    }
    if (first >= argc || repeats < 1 || repeats > 1000) {
        fprintf(stderr, "usage: bench_archive [-r REPEATS] [--docs] FILE...\n");
        return 2;
    }
    for (int f = first; f < argc; f++) {
        tome_mmap m;
        if (tome_mmap_open(argv[f], &m) != TOME_OK) {
            fprintf(stderr, "bench_archive: %s\n", tome_last_error());
            return 1;
        }
        double *t = calloc((size_t)repeats, sizeof *t);
        stats s = {0};
        for (int r = 0; r < repeats; r++) {
            s = (stats){.docs = docs};
            double t0 = tome_now();
            tome_status st = TOME_OK;
            if (tome_archive_sniff(m.data, m.len)) {
                st = tome_archive_read(argv[f], m.data, m.len, NULL, 0, on_member, &s);
            } else {
                tome_archive_entry e = {.path = argv[f], .data = m.data, .len = m.len};
                s.docs = 1;
                st = on_member(&s, &e);
            }
            t[r] = tome_now() - t0;
            if (st != TOME_OK) {
                fprintf(stderr, "bench_archive: %s\n", tome_last_error());
                return 1;
            }
        }
        qsort(t, (size_t)repeats, sizeof *t, cmp_double);
        double best = t[0], median = t[repeats / 2];
        printf("%s: %llu members (%llu skipped), %.1f MB in, %.1f MB out%s: best %.3f s, median %.3f s, "
               "%.0f MB/s in, %.0f MB/s out",
               argv[f], (unsigned long long)s.members, (unsigned long long)s.skipped,
               (double)m.len / 1e6, (double)s.bytes_out / 1e6, docs ? " (docs extracted)" : "", best,
               median, (double)m.len / 1e6 / best, (double)s.bytes_out / 1e6 / best);
        if (s.doc_text)
            printf(", %.2f MB document text", (double)s.doc_text / 1e6);
        printf("\n");
        free(t);
        tome_mmap_close(&m);
    }
    return 0;
}
