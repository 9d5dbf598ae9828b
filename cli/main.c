/*
 * cli/main.c — entry point of the `tome` tool: dispatches to subcommands.
 */
#include <stdarg.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "tome/device.h"

#ifndef TOME_VERSION_STRING
#define TOME_VERSION_STRING "0.1.0"
#endif

typedef struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} command;

static const command g_commands[] = {
    /* name, function, one-line summary — keep in the order of the workflow */
    {"tokenize", tome_cmd_tokenize, "print the Llama 4 token ids of a file (or their count)"},
    {"detokenize", tome_cmd_detokenize, "turn token ids back into text"},
    {"pack", tome_cmd_pack, "pack directories, archives and documents into one exact prompt (.tpk)"},
    {"inspect", tome_cmd_inspect, "list a pack's manifest: files, status, tokens, reasons"},
    {"locate", tome_cmd_locate, "map a token index of a pack back to path:line"},
    {"cite", tome_cmd_cite, "print the source text of \"path:line[-line]\" from a pack (exit 1 if absent)"},
    {"score", tome_cmd_score, "run token ids through the model and write all-position logits (.npy)"},
    {"generate", tome_cmd_generate, "generate text with the model (greedy or sampled; --chat)"},
    {"mkmodel", tome_cmd_mkmodel, "write a random-weight Llama 4 checkpoint (tiny, small, scout)"},
    {"prefill", tome_cmd_prefill, "run a pack through the model once and save the KV cache (.tkv, resumable)"},
    {"ask", tome_cmd_ask, "ask a question over a pack (or sources); answer streamed, citations checked"},
    {"report", tome_cmd_report, "refactoring or compliance report over sources: Markdown + self-contained HTML"},
    {"niah", tome_cmd_niah, "needle-in-a-haystack grid (lengths x depths): JSON, CSV, SVG heatmap"},
    {NULL, NULL, NULL},
};

static void print_help(FILE *out)
{
    fprintf(out,
            "tome %s — Llama 4 Scout over whole repositories and archives, on one machine\n\n"
            "usage: tome <command> [options]   (tome <command> --help for its options)\n\ncommands:\n",
            TOME_VERSION_STRING);
    for (size_t i = 0; g_commands[i].name; i++)
        fprintf(out, "  %-12s %s\n", g_commands[i].name, g_commands[i].summary);
    fprintf(out,
            "\nexit codes:\n"
            "  0  success\n"
            "  1  failure: the answer is no (e.g. a citation that does not exist) or an internal error\n"
            "  2  usage error (bad command line)\n"
            "  3  bad input: a malformed, corrupt, truncated or unsupported file\n"
            "  4  i/o error: a file could not be opened, read or written\n"
            "  5  a limit was hit: size, token or memory budget, or the disk is full\n"
            "  6  mismatch: a snapshot or pack belongs to another model, tokenizer or pack\n"
            "  7  GPU (device) error\n"
            "\ntome never opens a network connection.\n");
}

int tome_cli_exit_code(tome_status st)
{
    switch (st) {
    case TOME_OK: return TOME_EXIT_OK;
    case TOME_ERR_INVALID_ARG: return TOME_EXIT_USAGE;
    case TOME_ERR_FORMAT:
    case TOME_ERR_UNSUPPORTED: return TOME_EXIT_INPUT;
    case TOME_ERR_IO:
    case TOME_ERR_NOT_FOUND: return TOME_EXIT_IO;
    case TOME_ERR_LIMIT:
    case TOME_ERR_NOSPACE:
    case TOME_ERR_NOMEM: return TOME_EXIT_LIMIT;
    case TOME_ERR_MISMATCH: return TOME_EXIT_MISMATCH;
    case TOME_ERR_DEVICE: return TOME_EXIT_DEVICE;
    default: return TOME_EXIT_FAIL;
    }
}

int tome_cli_fail(tome_status st)
{
    const char *msg = tome_last_error();
    fprintf(stderr, "tome: error: %s\n", (msg && *msg) ? msg : tome_status_name(st));
    return tome_cli_exit_code(st);
}

int tome_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "tome %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(run 'tome %s --help' for usage)\n", cmd);
    return TOME_EXIT_USAGE;
}

int tome_cli_parse_u64(const char *s, int binary, unsigned long long *out)
{
    if (!s || !*s || *s == '-' || *s == '+' || (*s >= '\t' && *s <= '\r') || *s == ' ') return -1; /* strtoull would skip space and negate '-' */
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || errno == ERANGE) return -1; /* past 2^64: not silently the maximum */
    unsigned long long mul = 1, k = binary ? 1024ULL : 1000ULL;
    switch (*end) {
    case '\0': break;
    case 'k': case 'K': mul = k; end++; break;
    case 'm': case 'M': mul = k * k; end++; break;
    case 'g': case 'G': mul = k * k * k; end++; break;
    default: return -1;
    }
    if (*end != '\0') return -1;
    if (mul > 1 && v > ~0ULL / mul) return -1;
    *out = v * mul;
    return 0;
}

int main(int argc, char **argv)
{
    tome_blas_single_thread();
    if (argc < 2) {
        print_help(stderr);
        return TOME_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        print_help(stdout);
        return TOME_EXIT_OK;
    }
    if (!strcmp(cmd, "--version")) {
        int n_dev = 0;
        tome_device_count(&n_dev);
        printf("tome %s\ncuda backend: %s\ncuda devices: %d%s%s\n", TOME_VERSION_STRING,
               tome_build_has_cuda() ? "built" : "not built", n_dev,
               n_dev == 0 ? " — " : "", n_dev == 0 ? tome_last_error() : "");
        for (int i = 0; i < n_dev; i++) {
            tome_device_info info;
            if (tome_device_get_info(i, &info) == TOME_OK)
                printf("  [%d] %s, compute capability %d.%d, %.1f GiB\n", i, info.name, info.cc_major,
                       info.cc_minor, (double)info.total_bytes / (1024.0 * 1024 * 1024));
        }
        return TOME_EXIT_OK;
    }
    for (size_t i = 0; g_commands[i].name; i++)
        if (!strcmp(cmd, g_commands[i].name)) return g_commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "tome: unknown command '%s'\n\n", cmd);
    print_help(stderr);
    return TOME_EXIT_USAGE;
}
