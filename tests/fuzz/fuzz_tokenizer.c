/*
 * tests/fuzz/fuzz_tokenizer.c — libFuzzer target for the tokenizer.
 *
 * For any input bytes: encode must succeed; decode(encode(x)) == x with and
 * without special-token parsing; a multi-threaded encode (forced to split by
 * repeating the input past the parallel threshold; inputs starting "T!")
 * equals the single-thread one; and at every safe split point found in the input, encoding the two
 * halves gives the ids of the whole; and the bulk scanner (tome_pretok_bulk)
 * finds the same pieces as the one-piece scanner; and
 * tome_tokenizer_count_at_least never exceeds the number of ids. The tokenizer comes from
 * $TOME_TOKENIZER (default ../shared/llama4/tokenizer.model relative to the
 * working directory). Run by bench/fuzz_tokenizer.sh, not by ctest.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/pretok_impl.h"
#include "tome/tokenizer.h"

static tome_tokenizer_t *g_tok;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *path = getenv("TOME_TOKENIZER");
    if (!path) path = "../shared/llama4/tokenizer.model";
    if (tome_tokenizer_open(path, &g_tok) != TOME_OK) {
        fprintf(stderr, "fuzz_tokenizer: %s (set TOME_TOKENIZER)\n", tome_last_error());
        abort();
    }
    return 0;
}

static void encode(const char *s, size_t n, int special, int threads, tome_tokens_t *out)
{
    tome_encode_opts o = {.allow_special = special, .n_threads = threads};
    if (tome_tokenizer_encode(g_tok, s, n, &o, out) != TOME_OK) {
        fprintf(stderr, "encode failed: %s\n", tome_last_error());
        abort();
    }
}

static int same(const tome_tokens_t *a, const tome_tokens_t *b)
{
    return a->n == b->n && (a->n == 0 || memcmp(a->ids, b->ids, a->n * sizeof(int32_t)) == 0);
}

/* Pieces found by the bulk scanner where it can (else one at a time) equal
 * those of the one-piece scanner. */
static void check_bulk(const uint8_t *s, size_t n)
{
    size_t i = 0, p = 0;
    tome_pretok_iter it = {0};
    while (i < n) {
        i = tome_pretok_next(s, n, i);
        size_t e = tome_pretok_iter_next(&it, s, n, p);
        if (e != i) {
            fprintf(stderr, "bulk scanner: piece from %zu ends at %zu, not %zu\n", p, e, i);
            abort();
        }
        p = e;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    check_bulk(data, size);
    for (int special = 0; special < 2; special++) {
        tome_tokens_t t = {0};
        encode(s, size, special, 1, &t);
        char *out = NULL;
        size_t len = 0;
        if (tome_tokenizer_decode(g_tok, t.ids, t.n, &out, &len) != TOME_OK || len != size ||
            (size && memcmp(out, data, size) != 0))
            abort();
        free(out);
        /* the cheap count is a lower bound (exact for specials or a cut tail) */
        tome_encode_opts co = {.allow_special = special};
        uint64_t lo = 0;
        if (tome_tokenizer_count_at_least(g_tok, s, size, &co, &lo) != TOME_OK || lo > t.n) {
            fprintf(stderr, "count_at_least %llu over the %zu ids\n", (unsigned long long)lo, t.n);
            abort();
        }
        /* safe split points inside the input */
        size_t checked = 0;
        for (size_t pos = 1; pos < size && checked < 8; pos++) {
            if (!tome_tokenizer_safe_split(s, size, pos)) continue;
            checked++;
            tome_tokens_t two = {0};
            encode(s, pos, special, 1, &two);
            encode(s + pos, size - pos, special, 1, &two);
            if (!same(&t, &two)) {
                fprintf(stderr, "safe split at %zu changed the ids\n", pos);
                abort();
            }
            tome_tokens_free(&two);
        }
        tome_tokens_free(&t);
    }
    /* threads: repeat the input (with newlines so there are split points)
     * past the parallel threshold now and then */
    if (size > 1 && data[0] == 'T' && data[1] == '!') {
        size_t reps = (600u * 1024u) / (size + 1) + 1, n = reps * (size + 1);
        char *big = malloc(n);
        if (!big) return 0;
        for (size_t r = 0; r < reps; r++) {
            memcpy(big + r * (size + 1), data, size);
            big[r * (size + 1) + size] = '\n';
        }
        tome_tokens_t a = {0}, b = {0};
        encode(big, n, 0, 1, &a);
        encode(big, n, 0, 3, &b);
        if (!same(&a, &b)) abort();
        tome_tokens_free(&a);
        tome_tokens_free(&b);
        free(big);
    }
    return 0;
}
