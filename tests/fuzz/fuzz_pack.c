/*
 * tests/fuzz/fuzz_pack.c — libFuzzer target over the .tpk reader
 * (ingest/pack_format.c): open, manifest parse, text/ids decompression,
 * locate, format_loc and cite on arbitrary bytes.
 *
 * Two modes, by the input's first bytes:
 *  - "TOMEPACK...": a whole pack, opened with checksums and the file-size
 *    check switched off (tome_pack_open_mem(..., no_checksums = 1)), so that
 *    mutations reach the sections instead of stopping at a checksum;
 *  - anything else: the raw (uncompressed) manifest; the harness wraps it in
 *    a pack with a fixed text of 4000 bytes and 1000 ids, so the fuzzer works
 *    on the manifest parser directly rather than on zstd frames.
 * Every other validation stays on. Property: no crash, no sanitizer report,
 * no leak, a message with every error.
 *
 * Build: CC=clang cmake -S . -B build-fuzz -DTOME_FUZZ=ON -DTOME_CUDA=OFF
 *        cmake --build build-fuzz --target fuzz_pack
 * Seeds: packs from `tome pack` (e.g. of scripts/make_samples.py output and
 *        a small source tree), then: build-fuzz/fuzz_pack CORPUS_DIR -max_total_time=120
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "ingest/pack_impl.h"

static void le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* The 4th varint of the manifest (the entry count), or 0. */
static uint64_t entry_count(const uint8_t *d, size_t n)
{
    size_t pos = 0;
    uint64_t v = 0;
    for (int k = 0; k < 4; k++) {
        v = 0;
        for (int sh = 0; pos < n && sh < 64; sh += 7) {
            uint8_t c = d[pos++];
            v |= (uint64_t)(c & 0x7f) << sh;
            if (!(c & 0x80)) break;
        }
    }
    return v;
}

/* Wraps a raw manifest into a pack (no checksums); malloc'd. */
static uint8_t *wrap_manifest(const uint8_t *m, size_t mlen, size_t *out_len)
{
    enum { NIDS = 1000, NTEXT = 4 * NIDS };
    /* format 3: the text is a token dictionary (here one entry: id 0 is
     * "abc\n") and the ids (2 bytes each below 2^15, all 0) */
    static const uint8_t text[] = {1, 0, 4, 'a', 'b', 'c', '\n'};
    static uint8_t ids[NIDS * 2];
    memset(ids, 0, sizeof ids);
    size_t cap = 248 + ZSTD_compressBound(sizeof text) + ZSTD_compressBound(sizeof ids) + ZSTD_compressBound(mlen);
    uint8_t *f = calloc(1, cap);
    if (!f) return NULL;
    size_t off = 248, sz[3];
    const void *src[3] = {text, ids, m};
    size_t raw[3] = {sizeof text, sizeof ids, mlen};
    for (int i = 0; i < 3; i++) {
        sz[i] = ZSTD_compress(f + off, cap - off, src[i], raw[i], 1);
        if (ZSTD_isError(sz[i])) {
            free(f);
            return NULL;
        }
        uint8_t *t = f + 128 + 40 * i;
        le32(t, (uint32_t)i + 1);
        le32(t + 4, i == 0 ? 2 : 1); /* text: token dictionary; ids, manifest: zstd */
        le64(t + 8, off);
        le64(t + 16, sz[i]);
        le64(t + 24, raw[i]);
        off += sz[i];
    }
    memcpy(f, "TOMEPACK", 8);
    le32(f + 8, TOME_PACK_VERSION);
    le32(f + 12, 248);
    le32(f + 16, 3);
    le64(f + 24, NIDS);
    le64(f + 32, NTEXT);
    le64(f + 40, entry_count(m, mlen));
    le64(f + 96, off);
    *out_len = off;
    return f;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tome_pack_t *p = NULL;
    uint8_t *wrapped = NULL;
    if (size < 8 || memcmp(data, "TOMEPACK", 8) != 0) {
        wrapped = wrap_manifest(data, size, &size);
        if (!wrapped) return 0;
        data = wrapped;
    }
    tome_status st = tome_pack_open_mem("fuzz.tpk", data, size, 1, &p);
    if (st) {
        free(wrapped);
        if (!*tome_last_error()) abort(); /* every error carries a message */
        return 0;
    }
    size_t n = tome_pack_n_files(p);
    for (size_t i = 0; i < n && i < 64; i++) {
        tome_pack_file f;
        if (tome_pack_get_file(p, i, &f)) abort();
        tome_pack_loc loc = {(int64_t)i, (uint32_t)(f.n_lines ? 1 : 0), 0, 0};
        char *s = NULL;
        if (!tome_pack_format_loc(p, &loc, &s)) free(s);
        char cit[256];
        snprintf(cit, sizeof cit, "%.200s:1-3", f.path);
        char *c = NULL;
        size_t cl = 0;
        if (!tome_pack_cite(p, cit, &c, &cl)) free(c);
    }
    const char *text;
    size_t tlen;
    const int32_t *ids;
    size_t nids;
    (void)tome_pack_text(p, &text, &tlen);
    if (!tome_pack_ids(p, &ids, &nids)) {
        tome_pack_info info;
        tome_pack_get_info(p, &info);
        uint64_t probes[] = {0, info.n_tokens / 3, info.n_tokens / 2, info.n_tokens ? info.n_tokens - 1 : 0,
                             info.n_tokens};
        for (size_t k = 0; k < sizeof probes / sizeof *probes; k++) {
            tome_pack_loc loc;
            if (!tome_pack_locate(p, probes[k], &loc)) {
                char *s = NULL;
                if (!tome_pack_format_loc(p, &loc, &s)) free(s);
            }
        }
    }
    tome_pack_free(p);
    free(wrapped);
    return 0;
}
