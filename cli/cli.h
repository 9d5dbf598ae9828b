/*
 * cli/cli.h — shared pieces of the tome command-line tool.
 *
 * Each subcommand lives in cli/cmd_<name>.c as `int tome_cmd_<name>(int argc,
 * char **argv)` (argv[0] is the subcommand name) and is listed in the table in
 * cli/main.c. Commands return a process exit code from the table below; only
 * cli/ prints errors and exits.
 */
#ifndef TOME_CLI_H
#define TOME_CLI_H

#include <jansson.h>

#include "tome/status.h"

enum {
    TOME_EXIT_OK = 0,
    TOME_EXIT_FAIL = 1,     /* the command ran and the answer is "no" (e.g. cite: no such line), or an internal error */
    TOME_EXIT_USAGE = 2,    /* bad command line                                      */
    TOME_EXIT_INPUT = 3,    /* malformed, corrupt or unsupported input file          */
    TOME_EXIT_IO = 4,       /* a file could not be opened, read or written           */
    TOME_EXIT_LIMIT = 5,    /* a size/memory/token budget or the disk ran out        */
    TOME_EXIT_MISMATCH = 6, /* snapshot/pack/model identities disagree               */
    TOME_EXIT_DEVICE = 7    /* GPU error                                             */
};

/* Exit code for a failed library status. */
int tome_cli_exit_code(tome_status st);

/* Print "tome: error: <tome_last_error()>" (or the status name) to stderr and
 * return tome_cli_exit_code(st). */
int tome_cli_fail(tome_status st);

/* Print "tome <cmd>: <msg>" and the hint to run --help; returns TOME_EXIT_USAGE. */
int tome_cli_usage_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Parse a non-negative integer with optional K/M/G suffix (1024-based for
 * bytes when binary != 0, 1000-based otherwise). Returns 0 on success. */
int tome_cli_parse_u64(const char *s, int binary, unsigned long long *out);

/* A pack path or reason as a JSON string: JSON strings must be UTF-8, so a
 * string that is not gets control and non-ASCII bytes escaped as \xNN (as
 * the manifest prints them). Never NULL: json_null() when out of memory.
 * (cli/cmd_inspect.c) */
json_t *tome_cli_json_path(const char *p);
/* A file path for JSON output: its display form (tome_path_display), so
 * names that differ only in invalid bytes never print the same. */
json_t *tome_cli_json_display_path(const char *p);

/* Subcommands (one file each, cli/cmd_<name>.c). */
int tome_cmd_tokenize(int argc, char **argv);   /* cli/cmd_tokenize.c */
int tome_cmd_detokenize(int argc, char **argv); /* cli/cmd_tokenize.c */
int tome_cmd_pack(int argc, char **argv);       /* cli/cmd_pack.c */
int tome_cmd_inspect(int argc, char **argv);    /* cli/cmd_inspect.c */
int tome_cmd_locate(int argc, char **argv);     /* cli/cmd_inspect.c */
int tome_cmd_cite(int argc, char **argv);       /* cli/cmd_inspect.c */
int tome_cmd_score(int argc, char **argv);      /* cli/cmd_model.c */
int tome_cmd_generate(int argc, char **argv);   /* cli/cmd_model.c */
int tome_cmd_mkmodel(int argc, char **argv);    /* cli/cmd_model.c */
int tome_cmd_prefill(int argc, char **argv);    /* cli/cmd_prefill.c */
int tome_cmd_niah(int argc, char **argv);       /* cli/cmd_niah.c */
int tome_cmd_ask(int argc, char **argv);        /* cli/cmd_ask.c */
int tome_cmd_report(int argc, char **argv);     /* cli/cmd_report.c */

#endif /* TOME_CLI_H */
