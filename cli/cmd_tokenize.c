/*
 * cli/cmd_tokenize.c — `tome tokenize` and `tome detokenize`.
 *
 *   tome tokenize -t TOKENIZER [--count] [--bos] [--eos] [--special]
 *                 [--threads N] [FILE|-]
 *       prints the token ids of FILE (or stdin), one per line, or only their
 *       number with --count. --special turns "<|eot|>" etc. in the text into
 *       special tokens (otherwise they are ordinary text).
 *   tome detokenize -t TOKENIZER [FILE|-]
 *       reads ids (whitespace or comma separated) and writes the bytes they
 *       stand for to stdout.
 * TOKENIZER is a tokenizer.model, a tokenizer.json or a directory holding one.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/core_impl.h"
#include "tome/tokenizer.h"

static tome_status read_input(const char *path, tome_buf *out)
{
    if (path && strcmp(path, "-") != 0) return tome_read_file(path, 0, out);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0) TOME_FORWARD(tome_buf_append(out, chunk, n));
    if (ferror(stdin)) return tome_set_errno(TOME_ERR_IO, errno, "stdin");
    if (!out->data) TOME_FORWARD(tome_buf_reserve(out, 1));
    return TOME_OK;
}

static void usage_tokenize(FILE *f)
{
    fprintf(f, "usage: tome tokenize -t TOKENIZER [--count] [--bos] [--eos] [--special] [--threads N] [FILE|-]\n"
               "  prints the Llama 4 token ids of FILE (default stdin), one per line\n"
               "  -t, --tokenizer PATH  tokenizer.model, tokenizer.json or a directory holding one\n"
               "  --count               print only the number of tokens\n"
               "  --bos / --eos         add <|begin_of_text|> / <|end_of_text|>\n"
               "  --special             parse special tokens such as <|eot|> in the text\n"
               "  --threads N           encode with N threads (same ids; default 1)\n");
}

int tome_cmd_tokenize(int argc, char **argv)
{
    const char *tok_path = NULL, *in_path = NULL;
    int count = 0;
    tome_encode_opts opts = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage_tokenize(stdout);
            return TOME_EXIT_OK;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--tokenizer")) {
            if (++i >= argc) return tome_cli_usage_error("tokenize", "%s needs a path", a);
            tok_path = argv[i];
        } else if (!strcmp(a, "--count")) {
            count = 1;
        } else if (!strcmp(a, "--bos")) {
            opts.add_bos = 1;
        } else if (!strcmp(a, "--eos")) {
            opts.add_eos = 1;
        } else if (!strcmp(a, "--special")) {
            opts.allow_special = 1;
        } else if (!strcmp(a, "--threads")) {
            unsigned long long v;
            if (++i >= argc || tome_cli_parse_u64(argv[i], 0, &v) || v > 4096)
                return tome_cli_usage_error("tokenize", "--threads needs a number (1..4096)");
            opts.n_threads = (int)v;
        } else if (a[0] == '-' && a[1] != '\0') {
            return tome_cli_usage_error("tokenize", "unknown option '%s'", a);
        } else if (!in_path) {
            in_path = a;
        } else {
            return tome_cli_usage_error("tokenize", "more than one input file");
        }
    }
    if (!tok_path) return tome_cli_usage_error("tokenize", "-t TOKENIZER is required");
    tome_tokenizer_t *tok = NULL;
    tome_status st = tome_tokenizer_open(tok_path, &tok);
    if (st) return tome_cli_fail(st);
    tome_buf in = {0};
    tome_tokens_t ids = {0};
    st = read_input(in_path, &in);
    if (!st) st = tome_tokenizer_encode(tok, in.data, in.len, &opts, &ids);
    int rc = TOME_EXIT_OK;
    if (st) {
        rc = tome_cli_fail(st);
    } else if (count) {
        printf("%zu\n", ids.n);
    } else {
        for (size_t i = 0; i < ids.n; i++) printf("%d\n", (int)ids.ids[i]);
    }
    if (!rc && (fflush(stdout) != 0 || ferror(stdout))) {
        fprintf(stderr, "tome: error: writing to stdout failed\n");
        rc = TOME_EXIT_IO;
    }
    tome_tokens_free(&ids);
    tome_buf_free(&in);
    tome_tokenizer_free(tok);
    return rc;
}

int tome_cmd_detokenize(int argc, char **argv)
{
    const char *tok_path = NULL, *in_path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("usage: tome detokenize -t TOKENIZER [FILE|-]\n"
                   "  reads token ids (separated by whitespace or commas) and writes their bytes\n");
            return TOME_EXIT_OK;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--tokenizer")) {
            if (++i >= argc) return tome_cli_usage_error("detokenize", "%s needs a path", a);
            tok_path = argv[i];
        } else if (a[0] == '-' && a[1] != '\0') {
            return tome_cli_usage_error("detokenize", "unknown option '%s'", a);
        } else if (!in_path) {
            in_path = a;
        } else {
            return tome_cli_usage_error("detokenize", "more than one input file");
        }
    }
    if (!tok_path) return tome_cli_usage_error("detokenize", "-t TOKENIZER is required");
    tome_tokenizer_t *tok = NULL;
    tome_status st = tome_tokenizer_open(tok_path, &tok);
    if (st) return tome_cli_fail(st);
    tome_buf in = {0};
    tome_tokens_t ids = {0};
    char *bytes = NULL;
    size_t n_bytes = 0;
    int rc = TOME_EXIT_OK;
    st = read_input(in_path, &in);
    for (size_t i = 0; !st && i < in.len;) {
        char c = in.data[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',') {
            i++;
            continue;
        }
        char *end = NULL;
        errno = 0;
        long v = strtol(in.data + i, &end, 10);
        if (end == in.data + i || errno || v < 0 || v > INT32_MAX ||
            (*end && !strchr(" \t\r\n,", *end))) {
            st = tome_set_error(TOME_ERR_FORMAT, "%s: byte %zu: not a token id",
                                in_path ? in_path : "stdin", i);
            break;
        }
        if (ids.n == ids.cap) {
            size_t nc = ids.cap ? ids.cap * 2 : 1024;
            int32_t *p = realloc(ids.ids, nc * sizeof *p);
            if (!p) {
                st = tome_set_error(TOME_ERR_NOMEM, "out of memory");
                break;
            }
            ids.ids = p;
            ids.cap = nc;
        }
        ids.ids[ids.n++] = (int32_t)v;
        i = (size_t)(end - in.data);
    }
    if (!st) {
        st = tome_tokenizer_decode(tok, ids.ids, ids.n, &bytes, &n_bytes);
        if (st == TOME_ERR_INVALID_ARG) st = TOME_ERR_FORMAT; /* an id outside the vocabulary: bad input */
    }
    if (st) {
        rc = tome_cli_fail(st);
    } else if ((n_bytes && fwrite(bytes, 1, n_bytes, stdout) != n_bytes) || fflush(stdout) != 0) {
        fprintf(stderr, "tome: error: writing to stdout failed\n");
        rc = TOME_EXIT_IO;
    }
    free(bytes);
    tome_tokens_free(&ids);
    tome_buf_free(&in);
    tome_tokenizer_free(tok);
    return rc;
}
