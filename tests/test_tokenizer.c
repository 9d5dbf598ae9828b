/*
 * tests/test_tokenizer.c — the Llama 4 tokenizer: loading (and its errors),
 * special tokens, BOS/EOS, decode of any ids, invalid UTF-8, the safe_split
 * property and multi-threaded == single-threaded encoding.
 *
 * Bit-exactness against Python tiktoken is tests/test_tokenizer_ref.py; it
 * runs this binary in helper mode:
 *   test_tokenizer --encode-hex TOKENIZER < cases > ids
 * each input line "<o|s> <hex bytes>" (o: ordinary, s: allow specials), each
 * output line the ids separated by spaces ("ERR <message>" on failure).
 */
#include <stdlib.h>
#include <string.h>

#include "core/core_impl.h"
#include "ingest/pretok_impl.h"
#include "tome/tokenizer.h"
#include "tt.h"

static tome_tokenizer_t *g_tok;

static const char *model_path(void) { return tt_shared_path("llama4/tokenizer.model"); }

static tome_tokenizer_t *tok(void)
{
    if (!g_tok) {
        tome_status st = tome_tokenizer_open(model_path(), &g_tok);
        if (st) {
            fprintf(stderr, "cannot open %s: %s\n", model_path(), tome_last_error());
            exit(1);
        }
    }
    return g_tok;
}

static tome_tokens_t enc(const char *s, size_t n, int special, int threads)
{
    tome_tokens_t t = {0};
    tome_encode_opts o = {.allow_special = special, .n_threads = threads};
    TT_OK(tome_tokenizer_encode(tok(), s, n, &o, &t));
    return t;
}

static int same_ids(const tome_tokens_t *a, const tome_tokens_t *b)
{
    return a->n == b->n && (a->n == 0 || memcmp(a->ids, b->ids, a->n * sizeof(int32_t)) == 0);
}

/* decode(encode(s)) == s */
static void check_roundtrip(const char *s, size_t n)
{
    tome_tokens_t t = enc(s, n, 0, 1);
    char *out = NULL;
    size_t len = 0;
    TT_OK(tome_tokenizer_decode(tok(), t.ids, t.n, &out, &len));
    TT_EQ_INT(len, n);
    TT_CHECK(len == n && memcmp(out, s, n) == 0);
    free(out);
    tome_tokens_free(&t);
}

/* ------------------------------------------------------------ helper mode */
static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int encode_hex_mode(const char *tok_path)
{
    tome_tokenizer_t *t = NULL;
    if (tome_tokenizer_open(tok_path, &t)) {
        fprintf(stderr, "open: %s\n", tome_last_error());
        return 1;
    }
    size_t cap = 0;
    char *line = NULL;
    ssize_t got;
    char *buf = NULL;
    while ((got = getline(&line, &cap, stdin)) > 0) {
        size_t n = (size_t)got;
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
        if (n < 2) continue;
        int special = line[0] == 's';
        size_t nb = (n - 2) / 2;
        buf = realloc(buf, nb + 1);
        for (size_t i = 0; i < nb; i++)
            buf[i] = (char)(hexval(line[2 + 2 * i]) * 16 + hexval(line[3 + 2 * i]));
        tome_tokens_t ids = {0};
        tome_encode_opts o = {.allow_special = special};
        if (tome_tokenizer_encode(t, buf, nb, &o, &ids)) {
            printf("ERR %s\n", tome_last_error());
        } else {
            for (size_t i = 0; i < ids.n; i++) printf(i ? " %d" : "%d", (int)ids.ids[i]);
            printf("\n");
        }
        tome_tokens_free(&ids);
    }
    free(line);
    free(buf);
    tome_tokenizer_free(t);
    return 0;
}

/* ------------------------------------------------------------ cases */
static void test_open_model(void)
{
    tome_tokenizer_t *t = tok();
    TT_EQ_INT(tome_tokenizer_vocab_size(t), 202048);
    TT_EQ_INT(tome_tokenizer_bos_id(t), 200000);
    TT_EQ_INT(tome_tokenizer_eos_id(t), 200001);
    TT_EQ_INT(tome_tokenizer_special_id(t, "<|eot|>"), 200008);
    TT_EQ_INT(tome_tokenizer_special_id(t, "<|eom|>"), 200007);
    TT_EQ_INT(tome_tokenizer_special_id(t, "<|header_start|>"), 200005);
    TT_EQ_INT(tome_tokenizer_special_id(t, "<|python_start|>"), 200016);
    TT_EQ_INT(tome_tokenizer_special_id(t, "<|text_post_train_reserved_special_token_8|>"), 200019);
    TT_EQ_INT(tome_tokenizer_special_id(t, "<|image_start|>"), 200080);
    TT_EQ_INT(tome_tokenizer_special_id(t, "<|patch|>"), 200092);
    TT_EQ_INT(tome_tokenizer_special_id(t, "<|vision_reserved_special_token_1047|>"), 201133);
    TT_EQ_INT(tome_tokenizer_special_id(t, "<|reasoning_reserved_special_token_0|>"), 201134);
    TT_EQ_INT(tome_tokenizer_special_id(t, "<|reserved_special_token_903|>"), 202047);
    TT_EQ_INT(tome_tokenizer_special_id(t, "<|no_such_token|>"), -1);
    TT_CHECK(tome_tokenizer_is_stop(t, 200001));
    TT_CHECK(tome_tokenizer_is_stop(t, 200007));
    TT_CHECK(tome_tokenizer_is_stop(t, 200008));
    TT_CHECK(!tome_tokenizer_is_stop(t, 200000));
    TT_CHECK(!tome_tokenizer_is_stop(t, 13));
    size_t len = 0;
    TT_CHECK(tome_tokenizer_token_bytes(t, 202048, &len) == NULL);
    TT_CHECK(tome_tokenizer_token_bytes(t, -1, &len) == NULL);
    const char *b = tome_tokenizer_token_bytes(t, 200008, &len);
    TT_CHECK(b && len == 7 && memcmp(b, "<|eot|>", 7) == 0);
    char h1[33], h2[33];
    tome_tokenizer_hash(t, h1);
    TT_EQ_INT(strlen(h1), 32);
    /* a model directory opens the same tokenizer */
    tome_tokenizer_t *t2 = NULL;
    TT_OK(tome_tokenizer_open(tt_shared_path("llama4"), &t2));
    tome_tokenizer_hash(t2, h2);
    TT_EQ_STR(h1, h2);
    tome_tokenizer_free(t2);
    tome_tokenizer_free(NULL);
}

static void test_known_ids(void)
{
    /* ids checked against Python tiktoken with the same ranks and pattern */
    const char *s = "Hello, world! Don't you LOVE it's 12345 tokens?  \n\n  x\n";
    static const int32_t want[] = {19873, 24, 3817, 13, 27611, 650, 123320, 5749, 220, 7235,
                                   2127, 22274, 43, 22762, 220, 831, 198};
    (void)want;
    tome_tokens_t t = enc(s, strlen(s), 0, 1);
    TT_EQ_INT(t.n, TOME_ARRAY_LEN(want));
    for (size_t i = 0; i < t.n && i < TOME_ARRAY_LEN(want); i++) TT_EQ_INT(t.ids[i], want[i]);
    tome_tokens_free(&t);
}


/* ------------------------------------------------------------ loading errors */
static const char *write_tmp(const char *name, const void *data, size_t len)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", tt_tmpdir(), name);
    if (tt_write_file(path, data, len) != 0) tt_fail(__FILE__, __LINE__, "cannot write %s", path);
    return path;
}

/* first n_lines lines of tokenizer.model, the last one cut after cut_last bytes (0: whole) */
static char *model_head(size_t n_lines, size_t cut_last, size_t *len)
{
    size_t flen = 0;
    char *all = tt_read_file(model_path(), &flen);
    if (!all) return NULL;
    size_t pos = 0, line = 0;
    while (pos < flen && line < n_lines - 1) {
        if (all[pos] == '\n') line++;
        pos++;
    }
    size_t end = pos;
    while (end < flen && all[end] != '\n') end++;
    *len = cut_last ? pos + cut_last : end + 1;
    return all;
}

static void expect_open_error(const char *path, tome_status want, const char *needle)
{
    tome_tokenizer_t *t = (tome_tokenizer_t *)0x1;
    TT_STATUS(tome_tokenizer_open(path, &t), want);
    TT_CHECK(t == NULL);
    TT_CONTAINS(tome_last_error(), needle);
}

static void test_open_errors(void)
{
    expect_open_error("/nonexistent/dir/tokenizer.model", TOME_ERR_NOT_FOUND, "/nonexistent/dir/tokenizer.model");
    expect_open_error(tt_tmpdir(), TOME_ERR_NOT_FOUND, "neither tokenizer.model nor tokenizer.json");
    expect_open_error(write_tmp("empty.model", "", 0), TOME_ERR_FORMAT, "empty tokenizer file");
    expect_open_error(write_tmp("b64.model", "QQ== 0\n!!!! 1\n", 14), TOME_ERR_FORMAT, "b64.model:2: invalid base64");
    expect_open_error(write_tmp("norank.model", "QQ== 0\nQg==\n", 12), TOME_ERR_FORMAT, "norank.model:2:");
    expect_open_error(write_tmp("dup.model", "QQ== 0\nQg== 0\n", 14), TOME_ERR_FORMAT, "rank 0 appears twice");
    expect_open_error(write_tmp("big.model", "QQ== 0\nQg== 7\n", 14), TOME_ERR_FORMAT, "big.model:2: rank 7 out of range");
    expect_open_error(write_tmp("rank.model", "QQ== x1\n", 8), TOME_ERR_FORMAT, "invalid rank");
    /* the same bytes twice */
    expect_open_error(write_tmp("same.model", "QQ== 0\nQQ== 1\n", 14), TOME_ERR_FORMAT, "same bytes");

    size_t len = 0;
    char *head = model_head(1000, 0, &len); /* whole lines: a valid smaller vocabulary */
    TT_CHECK(head != NULL);
    if (!head) return;
    tome_tokenizer_t *t = NULL;
    TT_OK(tome_tokenizer_open(write_tmp("head1000.model", head, len), &t));
    TT_EQ_INT(tome_tokenizer_vocab_size(t), 1000 + 2048);
    TT_EQ_INT(tome_tokenizer_bos_id(t), 1000);
    tome_tokenizer_free(t);
    /* truncated in the middle of a line */
    free(head);
    head = model_head(1000, 3, &len);
    expect_open_error(write_tmp("cut.model", head, len), TOME_ERR_FORMAT, "cut.model:1000:");
    TT_CONTAINS(tome_last_error(), "truncated");
    free(head);
    head = model_head(1000, 6, &len); /* "<b64> 9" of a longer rank */
    expect_open_error(write_tmp("cut2.model", head, len), TOME_ERR_FORMAT, "cut2.model:1000:");
    free(head);
    /* fewer lines than the 256 single bytes */
    head = model_head(100, 0, &len);
    expect_open_error(write_tmp("head100.model", head, len), TOME_ERR_FORMAT, "has no token");
    free(head);
}

/* GPT-2 byte-level alphabet, written out independently of the loader. */
static void byte_level_char(int b, char out[3])
{
    int printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    int cp = b;
    if (!printable) {
        int k = 0;
        for (int x = 0; x < b; x++)
            if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255))) k++;
        cp = 256 + k;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        out[2] = 0;
    }
}

extern const char tome_pretok_pattern[];

/* A tokenizer.json with the 256 bytes plus "ab" (id 256) and one special. */
static char *tiny_json(const char *model_type, const char *pattern, const char *extra_vocab)
{
    tome_buf b = {0};
    tome_buf_appendf(&b, "{\"version\":\"1.0\",\"added_tokens\":[{\"id\":257,\"content\":\"<|x|>\",\"special\":true}],"
                         "\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":["
                         "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"");
    for (const char *p = pattern; *p; p++) {
        if (*p == '\\' || *p == '"') tome_buf_putc(&b, '\\');
        tome_buf_putc(&b, *p);
    }
    tome_buf_appendf(&b, "\"},\"behavior\":\"Isolated\",\"invert\":false},{\"type\":\"ByteLevel\","
                         "\"add_prefix_space\":false,\"trim_offsets\":true,\"use_regex\":false}]},"
                         "\"model\":{\"type\":\"%s\",\"vocab\":{", model_type);
    for (int i = 0; i < 256; i++) {
        char c[3];
        byte_level_char(i, c);
        if (c[0] == '"' || c[0] == '\\')
            tome_buf_appendf(&b, "\"\\%s\":%d,", c, i);
        else
            tome_buf_appendf(&b, "\"%s\":%d,", c, i);
    }
    tome_buf_appendf(&b, "%s\"ab\":256},\"merges\":[[\"a\",\"b\"]]}}", extra_vocab);
    return b.data;
}

static void test_json_loader(void)
{
    char *j = tiny_json("BPE", tome_pretok_pattern, "");
    tome_tokenizer_t *t = NULL;
    TT_OK(tome_tokenizer_open(write_tmp("tiny.json", j, strlen(j)), &t));
    if (t) {
        TT_EQ_INT(tome_tokenizer_vocab_size(t), 258);
        TT_EQ_INT(tome_tokenizer_special_id(t, "<|x|>"), 257);
        tome_tokens_t ids = {0};
        tome_encode_opts o = {.allow_special = 1};
        TT_OK(tome_tokenizer_encode(t, "abc<|x|>\xff", 9, &o, &ids));
        TT_EQ_INT(ids.n, 4);
        if (ids.n == 4) {
            TT_EQ_INT(ids.ids[0], 256);
            TT_EQ_INT(ids.ids[1], 'c');
            TT_EQ_INT(ids.ids[2], 257);
            TT_EQ_INT(ids.ids[3], 255);
        }
        char h1[33], h2[33];
        tome_tokenizer_hash(t, h1);
        tome_tokenizer_hash(tok(), h2);
        TT_CHECK(strcmp(h1, h2) != 0);
        tome_tokens_free(&ids);
        tome_tokenizer_free(t);
    }
    /* a directory holding only tokenizer.json */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/jsondir", tt_tmpdir());
    char path[4200];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    TT_CHECK(tt_write_file(path, j, strlen(j)) == 0);
    TT_OK(tome_tokenizer_open(dir, &t));
    tome_tokenizer_free(t);
    free(j);

    j = tiny_json("WordPiece", tome_pretok_pattern, "");
    expect_open_error(write_tmp("wp.json", j, strlen(j)), TOME_ERR_UNSUPPORTED, "only BPE");
    free(j);
    j = tiny_json("BPE", "\\s+|\\S+", "");
    expect_open_error(write_tmp("pat.json", j, strlen(j)), TOME_ERR_UNSUPPORTED, "o200k");
    free(j);
    j = tiny_json("BPE", tome_pretok_pattern, "\"\xe4\xb8\xad\":300,");
    expect_open_error(write_tmp("bl.json", j, strlen(j)), TOME_ERR_FORMAT, "bl.json: model.vocab");
    free(j);
    j = tiny_json("BPE", tome_pretok_pattern, "");
    size_t half = strlen(j) / 2;
    expect_open_error(write_tmp("trunc.json", j, half), TOME_ERR_FORMAT, "trunc.json:");
    TT_CONTAINS(tome_last_error(), "invalid JSON");
    free(j);
}

/* ------------------------------------------------------------ behaviour */
static void test_special_tokens(void)
{
    const char *s = "a<|eot|>b<|begin_of_text|><|reserved_special_token_903|><|nope|>";
    tome_tokens_t plain = enc(s, strlen(s), 0, 1), sp = enc(s, strlen(s), 1, 1);
    for (size_t i = 0; i < plain.n; i++) TT_CHECK(plain.ids[i] < 200000);
    int n_special = 0;
    for (size_t i = 0; i < sp.n; i++) n_special += sp.ids[i] >= 200000;
    TT_EQ_INT(n_special, 3);
    TT_CHECK(sp.n >= 5 && sp.ids[1] == 200008 && sp.ids[3] == 200000 && sp.ids[4] == 202047);
    /* decoding either gives the text back */
    char *out = NULL;
    size_t len = 0;
    TT_OK(tome_tokenizer_decode(tok(), sp.ids, sp.n, &out, &len));
    TT_CHECK(len == strlen(s) && memcmp(out, s, len) == 0);
    free(out);
    tome_tokens_free(&plain);
    tome_tokens_free(&sp);
}

static void test_bos_eos(void)
{
    tome_tokens_t t = {0};
    tome_encode_opts o = {.add_bos = 1, .add_eos = 1};
    TT_OK(tome_tokenizer_encode(tok(), "", 0, &o, &t));
    TT_EQ_INT(t.n, 2);
    TT_EQ_INT(t.ids[0], 200000);
    TT_EQ_INT(t.ids[1], 200001);
    TT_OK(tome_tokenizer_encode(tok(), "hi", 2, &o, &t)); /* appends */
    TT_EQ_INT(t.n, 5);
    TT_EQ_INT(t.ids[2], 200000);
    TT_EQ_INT(t.ids[4], 200001);
    tome_tokens_free(&t);
    TT_OK(tome_tokenizer_encode(tok(), NULL, 0, NULL, &t));
    TT_EQ_INT(t.n, 0);
    TT_STATUS(tome_tokenizer_encode(tok(), NULL, 3, NULL, &t), TOME_ERR_INVALID_ARG);
    tome_tokens_free(&t);
    tome_tokens_free(NULL);
}

static void test_decode_any_ids(void)
{
    size_t n = tome_tokenizer_vocab_size(tok());
    int32_t *ids = malloc(n * sizeof *ids);
    size_t want = 0;
    for (size_t i = 0; i < n; i++) {
        ids[i] = (int32_t)(n - 1 - i);
        size_t l = 0;
        TT_CHECK(tome_tokenizer_token_bytes(tok(), ids[i], &l) != NULL);
        want += l;
    }
    char *out = NULL;
    size_t len = 0;
    TT_OK(tome_tokenizer_decode(tok(), ids, n, &out, &len));
    TT_EQ_INT(len, want);
    /* appends to what is there */
    TT_OK(tome_tokenizer_decode(tok(), ids + n - 3, 3, &out, &len));
    TT_EQ_INT(len, want + 3);
    int32_t bad[3] = {5, 202048, 7};
    TT_STATUS(tome_tokenizer_decode(tok(), bad, 3, &out, &len), TOME_ERR_INVALID_ARG);
    TT_CONTAINS(tome_last_error(), "index 1");
    bad[1] = -4;
    TT_STATUS(tome_tokenizer_decode(tok(), bad, 3, &out, &len), TOME_ERR_INVALID_ARG);
    TT_EQ_INT(len, want + 3); /* unchanged on error */
    free(out);
    free(ids);
}

static uint64_t g_rng = 88172645463325252ull;
static uint64_t rnd(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

static void test_invalid_utf8_roundtrip(void)
{
    check_roundtrip("\xff", 1);
    check_roundtrip("abc\xe4\xbd", 5);       /* cut inside the last character */
    check_roundtrip("\xed\xa0\x80 x \xc0\xaf", 9); /* surrogate, overlong */
    tome_tokens_t t = enc("\xff", 1, 0, 1);
    size_t l;
    const char *b = t.n == 1 ? tome_tokenizer_token_bytes(tok(), t.ids[0], &l) : NULL;
    TT_CHECK(b && l == 1 && (unsigned char)b[0] == 0xff);
    tome_tokens_free(&t);
    char buf[300];
    for (int r = 0; r < 3000; r++) {
        size_t n = rnd() % sizeof buf;
        for (size_t i = 0; i < n; i++) {
            uint64_t x = rnd();
            buf[i] = (x & 3) == 0 ? (char)(x >> 8) : "a \n\xe4\xb8\xad\xc3\xa9'\r9/!"[(x >> 8) % 14];
        }
        check_roundtrip(buf, n);
    }
}

/* Texts with more ids than the encoder reserves up front (about one per 3
 * bytes: NUL bytes are one id each) and, between pieces the cache holds,
 * long pieces of many ids (random letters), so the output has to grow in
 * the middle of a batch of pieces; every prefix length lands the end of the
 * reserved room somewhere else. Under ASan an id written past the room is
 * caught (the fuzzer found one such overflow). */
static void test_output_growth_mid_batch(void)
{
    char buf[2048];
    size_t n = 0;
    while (n + 40 < sizeof buf) {
        uint64_t x = rnd();
        if (x % 4 == 0) {
            size_t w = 17 + (x >> 8) % 20; /* a long word: many ids, never cached whole */
            for (size_t k = 0; k < w; k++) buf[n++] = (char)("bcdfghjklmnpqrstvwxzQZX"[rnd() % 23]);
            buf[n++] = ' ';
        } else if (x % 4 == 1) {
            memcpy(buf + n, "\0\0\0 ", 4);
            n += 4;
        } else {
            memcpy(buf + n, "\xd8\xad\xd8\xa7 ab ", 9);
            n += 9;
        }
    }
    for (size_t len = 1; len <= n; len += 1 + rnd() % 7) check_roundtrip(buf, len);
    /* appending to ids already there: the room left is whatever the first
     * encode's growth left over (what the fuzzer's input below hit first) */
    for (size_t cut = 1; cut < n; cut += 1 + rnd() % 5) {
        tome_tokens_t t = {0};
        TT_OK(tome_tokenizer_encode(tok(), buf, cut, NULL, &t));
        TT_OK(tome_tokenizer_encode(tok(), buf + cut, n - cut, NULL, &t));
        char *out = NULL;
        size_t len = 0;
        TT_OK(tome_tokenizer_decode(tok(), t.ids, t.n, &out, &len));
        TT_CHECK(len == n && memcmp(out, buf, n) == 0);
        free(out);
        tome_tokens_free(&t);
    }
    /* the fuzzer's input (tests/fuzz/crashes/), as the fuzz target runs it:
     * whole, then split at safe points and appended, with and without
     * special tokens */
    size_t fn = 0;
    char *f = tt_read_file(tt_source_path("tests/fuzz/crashes/tokenizer-batch-growth.bin"), &fn);
    TT_CHECK(f != NULL);
    for (int special = 0; f && special < 2; special++) {
        tome_encode_opts o = {.allow_special = special, .n_threads = 1};
        tome_tokens_t whole = {0};
        TT_OK(tome_tokenizer_encode(tok(), f, fn, &o, &whole));
        for (size_t pos = 1; pos < fn; pos++) {
            if (!tome_tokenizer_safe_split(f, fn, pos)) continue;
            tome_tokens_t two = {0};
            TT_OK(tome_tokenizer_encode(tok(), f, pos, &o, &two));
            TT_OK(tome_tokenizer_encode(tok(), f + pos, fn - pos, &o, &two));
            TT_CHECK(two.n == whole.n && memcmp(two.ids, whole.ids, whole.n * sizeof(int32_t)) == 0);
            tome_tokens_free(&two);
        }
        tome_tokens_free(&whole);
    }
    free(f);
}

/* max_piece_bytes: a piece over the limit fails with TOME_ERR_LIMIT (single
 * and multi-thread, with and without the piece cache's long-piece path),
 * one at the limit is encoded exactly as without a limit */
static void test_max_piece_bytes(void)
{
    size_t n = 600000;
    char *t = malloc(n);
    TT_CHECK(t != NULL);
    if (!t) return;
    for (size_t i = 0; i < n; i++) t[i] = "ab cd\n"[i % 6];
    memset(t + 300000, ' ', 5000); /* with the space after it: one piece of 5,000 spaces (the last goes with "cd") */
    for (int threads = 1; threads <= 2; threads++) {
        tome_encode_opts o = {.n_threads = threads, .max_piece_bytes = 4999};
        tome_tokens_t ids = {0}, ref = {0};
        TT_EQ_INT(tome_tokenizer_encode(tok(), t, n, &o, &ids), TOME_ERR_LIMIT);
        TT_CONTAINS(tome_last_error(), "a piece of 5000 bytes");
        TT_CONTAINS(tome_last_error(), "0x20");
        tome_tokens_free(&ids);
        o.max_piece_bytes = 5000;
        TT_OK(tome_tokenizer_encode(tok(), t, n, &o, &ids));
        o.max_piece_bytes = 0;
        TT_OK(tome_tokenizer_encode(tok(), t, n, &o, &ref));
        TT_CHECK(ids.n == ref.n && memcmp(ids.ids, ref.ids, ref.n * sizeof(int32_t)) == 0);
        tome_tokens_free(&ids);
        tome_tokens_free(&ref);
    }
    /* short pieces pass a short limit; a piece just over it fails even when
     * the piece cache already holds it (encoded before without a limit) */
    tome_encode_opts o = {.max_piece_bytes = 16};
    tome_tokens_t ids = {0};
    TT_OK(tome_tokenizer_encode(tok(), "hello, world: short pieces only\n", 32, &o, &ids));
    tome_tokens_free(&ids);
    static const char *cached[] = {" internationalization", " abcdefghijklmnopqrstuvwxyzab", " Hello"};
    for (size_t k = 0; k < 3; k++) {
        size_t l = strlen(cached[k]);
        TT_OK(tome_tokenizer_encode(tok(), cached[k], l, NULL, &ids)); /* now in the cache */
        tome_tokens_free(&ids);
        o.max_piece_bytes = l - 1;
        TT_EQ_INT(tome_tokenizer_encode(tok(), cached[k], l, &o, &ids), TOME_ERR_LIMIT);
        tome_tokens_free(&ids);
        o.max_piece_bytes = l;
        TT_OK(tome_tokenizer_encode(tok(), cached[k], l, &o, &ids));
        tome_tokens_free(&ids);
    }
    /* a run of letters, and an input cut inside a character (the
     * truncated-text path), over the limit */
    memset(t, 'q', 3000);
    memcpy(t + 3000, "\xe4\xbd", 2);
    o.max_piece_bytes = 1000;
    TT_EQ_INT(tome_tokenizer_encode(tok(), t, 3000, &o, &ids), TOME_ERR_LIMIT);
    tome_tokens_free(&ids);
    TT_EQ_INT(tome_tokenizer_encode(tok(), t, 3002, &o, &ids), TOME_ERR_LIMIT);
    tome_tokens_free(&ids);
    free(t);
}

/* a few MB of mixed text: the golden corpus in many copies, with random
 * edits and random bytes, so lines start with every kind of character */
static char *mixed_text(size_t target, size_t *len)
{
    static const char *files[] = {"english.txt", "code_c.c", "code_py.py", "code_rust_go_js.txt", "cjk.txt",
                                  "rtl.txt", "emoji.txt", "combining.txt", "runs.txt", "specials.txt"};
    tome_buf b = {0};
    char *data[10];
    size_t lens[10];
    for (int i = 0; i < 10; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "tests/golden/tokenizer/%s", files[i]);
        data[i] = tt_read_file(tt_source_path(rel), &lens[i]);
        if (!data[i]) {
            tt_fail(__FILE__, __LINE__, "cannot read %s", rel);
            return NULL;
        }
    }
    static const char *seps[] = {"\n", "\n\n", "\r\n", "\n  ", "\n/", "\n\t", " ", "", "\n\xc2\xa0", "\n\xff"};
    while (b.len < target) {
        int f = (int)(rnd() % 10);
        size_t a = rnd() % lens[f], e = a + rnd() % (lens[f] - a + 1);
        tome_buf_append(&b, data[f] + a, e - a);
        const char *sep = seps[rnd() % 10];
        tome_buf_append(&b, sep, strlen(sep));
        if (rnd() % 8 == 0) {
            char junk[4];
            for (int k = 0; k < 4; k++) junk[k] = (char)rnd();
            tome_buf_append(&b, junk, rnd() % 4);
        }
    }
    for (int i = 0; i < 10; i++) free(data[i]);
    *len = b.len;
    return b.data;
}

/* The bulk scanner (64 bytes of ASCII at a time, bit masks) against the
 * one-piece scanner: random strings over the characters each rule of the
 * pattern turns on (case changes, contractions in any case and after one
 * another, digit runs, spaces/tabs/\v/\f before letters and punctuation,
 * \r\n runs, punctuation followed by \r \n / tails, control characters) and
 * some non-ASCII ones (letters, NBSP, an Arabic digit, the long s of the
 * contractions, a dash), each drawn from a random subset so that every rule
 * meets every neighbour, in single characters and runs; and the golden
 * corpus. The piece ends must be identical. */
static void pieces_both_ways(const uint8_t *s, size_t n, size_t *a, size_t *b, size_t *na, size_t *nb,
                             size_t *n_bulk)
{
    size_t i = 0;
    *na = *nb = 0;
    while (i < n) a[(*na)++] = i = tome_pretok_next(s, n, i);
    size_t p = 0;
    tome_pretok_iter it = {0};
    while (p < n) {
        size_t e = tome_pretok_iter_next(&it, s, n, p);
        if (it.qh == 1) { /* a bulk window was just read (later calls pop its queue: qh > 1) */
            TT_CHECK(it.qn <= 60);
            *n_bulk += it.qn;
        }
        TT_CHECK(e > p && e <= n);
        if (e <= p || e > n) return;
        b[(*nb)++] = p = e;
    }
}

/* tome_tokenizer_count_at_least: never over the ids encode gives (golden
 * texts in many scripts, invalid UTF-8, random bytes), close to them on real
 * text and code, exact with specials or a cut-off last character, and the same
 * piece limit as encode. */
static void test_count_at_least(void)
{
    static const char *golden[] = {"english.txt", "code_c.c", "code_py.py", "code_rust_go_js.txt", "cjk.txt",
                                   "emoji.txt", "combining.txt", "rtl.txt", "runs.txt"};
    uint64_t lo_sum = 0, n_sum = 0;
    for (size_t g = 0; g < TOME_ARRAY_LEN(golden); g++) {
        char rel[128];
        (void)!snprintf(rel, sizeof rel, "tests/golden/tokenizer/%s", golden[g]);
        size_t n;
        char *t = tt_read_file(tt_source_path(rel), &n);
        TT_CHECK(t != NULL);
        if (!t) continue;
        tome_tokens_t ids = enc(t, n, 0, 1);
        uint64_t lo = 0;
        TT_OK(tome_tokenizer_count_at_least(tok(), t, n, NULL, &lo));
        TT_CHECK(lo <= ids.n);
        if (g < 4) { /* text and code; the bound is looser for scripts without spaces (cjk: 0.3) */
            lo_sum += lo;
            n_sum += ids.n;
        }
        tome_encode_opts o = {.add_bos = 1, .add_eos = 1};
        uint64_t lo2 = 0;
        TT_OK(tome_tokenizer_count_at_least(tok(), t, n, &o, &lo2));
        TT_EQ_INT(lo2, lo + 2);
        tome_tokens_free(&ids);
        free(t);
    }
    TT_CHECK(lo_sum * 10 >= n_sum * 8); /* a bound worth having there: within 20% */
    char buf[4096];
    for (int round = 0; round < 200; round++) {
        size_t n = (size_t)(rnd() % sizeof buf);
        for (size_t i = 0; i < n; i++) {
            uint64_t r = rnd();
            buf[i] = round % 2 ? (char)r : " \nab9.\xc3\xa9\xe4\xbd\xa0\xf0\x9f\x98"[r % 15];
        }
        tome_tokens_t ids = enc(buf, n, 0, 1);
        uint64_t lo = 0;
        TT_OK(tome_tokenizer_count_at_least(tok(), buf, n, NULL, &lo));
        TT_CHECK(lo <= ids.n);
        tome_tokens_free(&ids);
    }
    /* exact where the text is encoded: specials allowed, a cut character */
    static const char sp[] = "a<|begin_of_text|>b c\n<|eot|>";
    tome_tokens_t ids = enc(sp, sizeof sp - 1, 1, 1);
    tome_encode_opts o = {.allow_special = 1};
    uint64_t lo = 0;
    TT_OK(tome_tokenizer_count_at_least(tok(), sp, sizeof sp - 1, &o, &lo));
    TT_EQ_INT(lo, ids.n);
    tome_tokens_free(&ids);
    static const char cut[] = "hello w\xe4\xbd";
    ids = enc(cut, sizeof cut - 1, 0, 1);
    TT_OK(tome_tokenizer_count_at_least(tok(), cut, sizeof cut - 1, NULL, &lo));
    TT_EQ_INT(lo, ids.n);
    tome_tokens_free(&ids);
    /* the piece limit, as in encode */
    char run[3000];
    memset(run, 'q', sizeof run);
    o = (tome_encode_opts){.max_piece_bytes = 1000};
    TT_EQ_INT(tome_tokenizer_count_at_least(tok(), run, sizeof run, &o, &lo), TOME_ERR_LIMIT);
    TT_CONTAINS(tome_last_error(), "a piece of 3000 bytes");
    o.max_piece_bytes = 3000;
    TT_OK(tome_tokenizer_count_at_least(tok(), run, sizeof run, &o, &lo));
    TT_CHECK(lo >= 2 && lo <= 3000);
}

static void test_bulk_scanner(void)
{
    static const char *alpha[] = {"a", "b", "s", "t", "m", "d", "r", "e", "v", "l", "S", "T", "M", "D", "R", "E", "V",
                                  "L", "A", "Z", "x", "X", "0", "1", "9", " ", " ", "\t", "\n", "\r", "\v", "\f", "'",
                                  "/", ".", ";", "{", "(", "-", "=", "\x01", "\x1c", "\x7f", "\xc3\xa9", "\xc2\xa0",
                                  "\xe4\xb8\xad", "\xd9\xa3", "\xc5\xbf", "\xe2\x80\x94"};
    enum { N_ALPHA = sizeof alpha / sizeof *alpha, MAXN = 1024 };
    uint8_t buf[MAXN + 64];
    size_t *a = malloc(2 * (MAXN + 64) * sizeof *a), *b = a + MAXN + 64;
    if (!a) return;
    size_t n_bulk = 0, n_pieces = 0, fails = 0;
    for (int it = 0; it < 60000 && fails < 3; it++) {
        uint64_t subset = rnd();
        if (rnd() % 2) subset |= subset >> 1;
        subset |= 1; /* never empty */
        int ascii_only = rnd() % 4 != 0;
        size_t n = 0, target = 64 + rnd() % 700;
        while (n < target) {
            unsigned ai = rnd() % N_ALPHA;
            if (!(subset >> ai & 1) || (ascii_only && (uint8_t)alpha[ai][0] >= 0x80)) continue;
            size_t l = strlen(alpha[ai]), reps = rnd() % 5 == 0 ? 1 + rnd() % 8 : 1;
            for (size_t k = 0; k < reps && n + l <= MAXN; k++, n += l) memcpy(buf + n, alpha[ai], l);
            if (n + 4 > MAXN) break;
        }
        size_t na, nb;
        pieces_both_ways(buf, n, a, b, &na, &nb, &n_bulk);
        n_pieces += na;
        if (na != nb || memcmp(a, b, na * sizeof *a) != 0) {
            size_t k = 0;
            while (k < na && k < nb && a[k] == b[k]) k++;
            tt_fail(__FILE__, __LINE__, "bulk scanner: case %d, piece %zu: ends at %zu, not %zu", it, k,
                    k < nb ? b[k] : 0, k < na ? a[k] : 0);
            fails++;
        }
    }
    /* the golden corpus, whole */
    size_t n = 0;
    char *text = mixed_text(200000, &n);
    size_t *ga = text ? malloc(2 * (n + 1) * sizeof *ga) : NULL;
    if (ga) {
        size_t na, nb;
        pieces_both_ways((const uint8_t *)text, n, ga, ga + n + 1, &na, &nb, &n_bulk);
        TT_CHECK(na == nb && memcmp(ga, ga + n + 1, na * sizeof *ga) == 0);
    }
    free(ga);
    free(text);
    /* the bulk scanner did most of the work (else this test tests little) */
    TT_CHECK(n_bulk > n_pieces / 2);
    free(a);
}

static void test_safe_split_property(void)
{
    size_t n = 0;
    char *text = mixed_text(30000, &n);
    if (!text) return;
    TT_CHECK(tome_tokenizer_safe_split(text, n, 0));
    TT_CHECK(tome_tokenizer_safe_split(text, n, n));
    TT_CHECK(!tome_tokenizer_safe_split(text, n, n + 1));
    TT_CHECK(tome_tokenizer_safe_split("a\nb", 3, 2));
    TT_CHECK(!tome_tokenizer_safe_split("a\n\nb", 4, 2));
    TT_CHECK(!tome_tokenizer_safe_split("a\n/b", 4, 2));
    TT_CHECK(!tome_tokenizer_safe_split("a\n \nb", 5, 2));
    TT_CHECK(tome_tokenizer_safe_split("a\n  b", 5, 2));
    TT_CHECK(!tome_tokenizer_safe_split("ab", 2, 1));
    tome_tokens_t whole = enc(text, n, 0, 1);
    tome_tokens_t whole_sp = enc(text, n, 1, 1);
    size_t n_safe = 0, n_checked = 0;
    for (size_t pos = 1; pos < n && n_checked < 150; pos++) {
        if (!tome_tokenizer_safe_split(text, n, pos)) continue;
        n_safe++;
        if (n_safe % 3) continue; /* check a spread sample */
        n_checked++;
        for (int sp = 0; sp < 2; sp++) {
            tome_tokens_t a = {0};
            tome_encode_opts o = {.allow_special = sp};
            TT_OK(tome_tokenizer_encode(tok(), text, pos, &o, &a));
            TT_OK(tome_tokenizer_encode(tok(), text + pos, n - pos, &o, &a));
            if (!same_ids(&a, sp ? &whole_sp : &whole)) {
                tt_fail(__FILE__, __LINE__, "split at %zu (special=%d) changes the ids", pos, sp);
                n_checked = 150;
            }
            tome_tokens_free(&a);
        }
    }
    TT_CHECK(n_checked >= 100); /* the property is not vacuous */
    /* texts that end inside a character: every safe position still holds */
    static const char *const cut[] = {"a\n \xe4", "a\n\xe4\xb8", "x\n\t\t\n \xf0\x9f", "y \n\nz\n  w\n\xe2",
                                      "p\n\n\n\xc3", "q\n \n\t\xe4\xb8"};
    for (size_t c = 0; c < TOME_ARRAY_LEN(cut); c++) {
        size_t m = strlen(cut[c]);
        tome_tokens_t w = enc(cut[c], m, 0, 1);
        for (size_t pos = 0; pos <= m; pos++) {
            if (!tome_tokenizer_safe_split(cut[c], m, pos)) continue;
            tome_tokens_t a = {0};
            TT_OK(tome_tokenizer_encode(tok(), cut[c], pos, NULL, &a));
            TT_OK(tome_tokenizer_encode(tok(), cut[c] + pos, m - pos, NULL, &a));
            if (!same_ids(&a, &w)) tt_fail(__FILE__, __LINE__, "cut text %zu: split at %zu changes the ids", c, pos);
            tome_tokens_free(&a);
        }
        tome_tokens_free(&w);
    }
    TT_CHECK(!tome_tokenizer_safe_split("a\n \xe4", 4, 2));
    TT_CHECK(tome_tokenizer_safe_split("a\nb \xe4", 5, 2));
    tome_tokens_free(&whole);
    tome_tokens_free(&whole_sp);
    free(text);
}

static void test_threads_match_single(void)
{
    size_t n = 0;
    char *text = mixed_text(3u << 19, &n);
    if (!text) return;
    for (int sp = 0; sp < 2; sp++) {
        tome_tokens_t one = enc(text, n, sp, 1);
        for (int threads = 2; threads <= 5; threads += 3) {
            tome_tokens_t many = enc(text, n, sp, threads);
            TT_CHECK(same_ids(&one, &many));
            tome_tokens_free(&many);
        }
        /* the same with the text cut inside a character at the end */
        tome_tokens_free(&one);
        size_t m = n;
        memcpy(text + m - 2, "\xe4\xb8", 2);
        one = enc(text, m, sp, 1);
        tome_tokens_t many = enc(text, m, sp, 4);
        TT_CHECK(same_ids(&one, &many));
        tome_tokens_free(&many);
        tome_tokens_free(&one);
    }
    free(text);
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--encode-hex")) return encode_hex_mode(argv[2]);
    TT_RUN(test_open_model);
    TT_RUN(test_known_ids);
    TT_RUN(test_open_errors);
    TT_RUN(test_json_loader);
    TT_RUN(test_special_tokens);
    TT_RUN(test_bos_eos);
    TT_RUN(test_decode_any_ids);
    TT_RUN(test_invalid_utf8_roundtrip);
    TT_RUN(test_output_growth_mid_batch);
    TT_RUN(test_max_piece_bytes);
    TT_RUN(test_safe_split_property);
    TT_RUN(test_bulk_scanner);
    TT_RUN(test_count_at_least);
    TT_RUN(test_threads_match_single);
    tome_tokenizer_free(g_tok);
    return tt_finish();
}
