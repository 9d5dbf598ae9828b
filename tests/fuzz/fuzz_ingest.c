/*
 * tests/fuzz/fuzz_ingest.c — libFuzzer target over the archive and document
 * readers (ingest/archive.c, ingest/doc*.c).
 *
 * Every input goes through tome_archive_read (whether or not it sniffs as an
 * archive, so the refusal paths are covered too) and through
 * tome_doc_sniff/tome_doc_extract; every member the archive reader delivers
 * is sniffed and extracted as a document as well, which is how the pack
 * builder uses them. Limits are lowered so that one input stays fast and
 * small; the properties checked are the library's own: no crash, no
 * sanitizer report, no leak, anchors sorted and inside the text, and a
 * message on every error.
 *
 * Build: CC=clang cmake -S . -B build-fuzz -DTOME_FUZZ=ON -DTOME_CUDA=OFF
 *        cmake --build build-fuzz --target fuzz_ingest
 * Run:   bench/fuzz_ingest.sh [seconds]
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/ingest_impl.h"

static void check_doc(const tome_doc_text *d)
{
    for (size_t i = 0; i < d->n_anchors; i++) {
        if (d->anchors[i].offset > d->text.len)
            abort();
        if (i && d->anchors[i].offset < d->anchors[i - 1].offset)
            abort();
    }
    if (d->text.data && memchr(d->text.data, '\0', d->text.len))
        abort();
}

static void try_doc(const char *path, const uint8_t *data, size_t len)
{
    tome_doc_kind k = tome_doc_sniff(path, data, len);
    if (k == TOME_DOC_NONE)
        return;
    tome_doc_text d;
    tome_status st = tome_doc_extract(k, path, data, len, &d);
    if (st == TOME_OK)
        check_doc(&d);
    else if (!tome_last_error()[0] || d.text.data || d.anchors)
        abort(); /* an error always has a message and leaves nothing behind */
    tome_doc_text_free(&d);
}

static tome_status on_entry(void *ud, const tome_archive_entry *e)
{
    (void)ud;
    if (!e->path || (!e->skip_reason && !e->data && e->len))
        abort();
    if (!e->skip_reason)
        try_doc(e->path, e->data, e->len);
    return TOME_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tome_archive_limits lim;
    tome_archive_limits_default(&lim);
    lim.max_depth = 3;
    lim.max_entry_bytes = 1u << 20;
    lim.max_total_bytes = 8u << 20;
    lim.max_entries = 2000;
    (void)tome_archive_sniff(data, size);
    if (tome_archive_read("fuzz.bin", data, size, &lim, 0, on_entry, NULL) != TOME_OK)
        abort(); /* only the callback or memory exhaustion may fail it */
    try_doc("fuzz.html", data, size);
    return 0;
}
