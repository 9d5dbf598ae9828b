/*
 * cli/cmd_inspect.c — reading packs: `tome inspect PACK` (manifest listing),
 * `tome locate PACK TOKEN...` (token index → path:line) and `tome cite PACK
 * "path:line[-line]"` (the cited source text; exit 1 when it does not exist).
 * All the logic is in the library (tome/pack.h); this file prints.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "tome/pack.h"

static const char *fmt_name(tome_pack_format f)
{
    return f == TOME_PACK_XML ? "xml" : f == TOME_PACK_MARKDOWN ? "markdown" : "plain";
}

json_t *tome_cli_json_path(const char *p)
{
    json_t *s = json_string(p);
    if (s) return s;
    size_t n = strlen(p);
    char *e = malloc(4 * n + 1), *q = e;
    if (!e) return json_null();
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x20 || c >= 0x80) q += sprintf(q, "\\x%02x", c);
        else *q++ = (char)c;
    }
    *q = 0;
    s = json_string(e);
    free(e);
    return s ? s : json_null();
}

json_t *tome_cli_json_display_path(const char *p)
{
    char *d = NULL;
    if (tome_path_display(p, &d)) return tome_cli_json_path(p);
    json_t *s = tome_cli_json_path(d);
    free(d);
    return s;
}

int tome_cmd_inspect(int argc, char **argv)
{
    int json = 0;
    const char *path = NULL;
    int dashdash = 0; /* after "--" every word is the pack's path */
    for (int i = 1; i < argc; i++) {
        if (!dashdash && !strcmp(argv[i], "--")) dashdash = 1;
        else if (dashdash) {
            if (path) return tome_cli_usage_error("inspect", "more than one pack given");
            path = argv[i];
        } else if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: tome inspect PACK.tpk [--json]\n\n"
                   "Lists the pack's identity and manifest: for every file its status (full, outline,\n"
                   "listed, alias, skipped), tokens, lines, bytes and the reason when not full.\n");
            return TOME_EXIT_OK;
        } else if (argv[i][0] == '-') return tome_cli_usage_error("inspect", "unknown option '%s'", argv[i]);
        else if (!path) path = argv[i];
        else return tome_cli_usage_error("inspect", "more than one pack given");
    }
    if (!path) return tome_cli_usage_error("inspect", "no pack given");
    tome_pack_t *p;
    tome_status st = tome_pack_open(path, &p);
    if (st) return tome_cli_fail(st);
    tome_pack_info info;
    tome_pack_get_info(p, &info);
    size_t n = tome_pack_n_files(p);
    if (json) {
        json_t *o = json_object(), *files = json_array();
        json_object_set_new(o, "pack", tome_cli_json_path(path));
        json_object_set_new(o, "version", json_integer(info.version));
        json_object_set_new(o, "format", json_string(fmt_name(info.format)));
        json_object_set_new(o, "tokens", json_integer((json_int_t)info.n_tokens));
        json_object_set_new(o, "text_bytes", json_integer((json_int_t)info.n_text_bytes));
        json_object_set_new(o, "budget", json_integer((json_int_t)info.budget));
        json_object_set_new(o, "line_numbers", json_boolean(info.line_numbers));
        json_object_set_new(o, "content_hash", json_string(info.content_hash));
        json_object_set_new(o, "tokenizer_hash", json_string(info.tokenizer_hash));
        for (size_t i = 0; i < n; i++) {
            tome_pack_file f;
            tome_pack_get_file(p, i, &f);
            json_t *fj = json_object();
            json_object_set_new(fj, "path", tome_cli_json_display_path(f.path));
            json_object_set_new(fj, "status", json_string(tome_file_status_name(f.status)));
            json_object_set_new(fj, "reason", tome_cli_json_path(f.reason));
            if (f.alias_of >= 0) {
                tome_pack_file a;
                tome_pack_get_file(p, (size_t)f.alias_of, &a);
                json_object_set_new(fj, "alias_of", tome_cli_json_display_path(a.path));
            }
            json_object_set_new(fj, "bytes", json_integer((json_int_t)f.size));
            json_object_set_new(fj, "lines", json_integer((json_int_t)f.n_lines));
            json_object_set_new(fj, "encoding", tome_cli_json_path(f.encoding));
            json_object_set_new(fj, "content_hash", json_string(f.content_hash));
            json_object_set_new(fj, "text_offset", json_integer((json_int_t)f.text_offset));
            json_object_set_new(fj, "text_bytes", json_integer((json_int_t)f.text_len));
            json_object_set_new(fj, "token_start", json_integer((json_int_t)f.tok_start));
            json_object_set_new(fj, "tokens", json_integer((json_int_t)f.tok_count));
            json_object_set_new(fj, "full_tokens", json_integer((json_int_t)f.full_tokens));
            json_object_set_new(fj, "full_tokens_exact", json_boolean(!f.full_tokens_lower));
            json_t *red = json_array();
            size_t nr;
            const uint32_t *lines;
            const char *const *kinds;
            tome_pack_get_redactions(p, i, &nr, &lines, &kinds);
            for (size_t r = 0; r < nr; r++) {
                json_t *k = json_object();
                json_object_set_new(k, "line", json_integer(lines[r]));
                json_object_set_new(k, "kind", tome_cli_json_path(kinds[r]));
                json_array_append_new(red, k);
            }
            json_object_set_new(fj, "redactions", red);
            json_t *anc = json_array();
            for (size_t k = 0, na = tome_pack_n_anchors(p, i); k < na; k++) {
                uint32_t line, kind, num;
                if (tome_pack_get_anchor(p, i, k, &line, &kind, &num) != TOME_OK) break;
                json_t *a = json_object();
                json_object_set_new(a, "line", json_integer(line));
                json_object_set_new(a, "kind", json_string(kind == 1 ? "page" : kind == 2 ? "paragraph" : kind == 3 ? "heading" : "?"));
                json_object_set_new(a, "number", json_integer(num));
                json_array_append_new(anc, a);
            }
            json_object_set_new(fj, "anchors", anc);
            json_array_append_new(files, fj);
        }
        json_object_set_new(o, "files", files);
        json_dumpf(o, stdout, JSON_INDENT(1) | JSON_ENSURE_ASCII);
        fputc('\n', stdout);
        json_decref(o);
    } else {
        printf("pack %s: version %u, %s, %llu files, %llu tokens (budget %llu), %llu bytes of text\n", path,
               info.version, fmt_name(info.format), (unsigned long long)n, (unsigned long long)info.n_tokens,
               (unsigned long long)info.budget, (unsigned long long)info.n_text_bytes);
        printf("content %s  tokenizer %s\n", info.content_hash, info.tokenizer_hash);
        printf("%-8s %10s %8s %10s  %s\n", "status", "tokens", "lines", "bytes", "path");
        for (size_t i = 0; i < n; i++) {
            tome_pack_file f;
            tome_pack_get_file(p, i, &f);
            tome_pack_loc loc = {(int64_t)i, 0, 0, 0};
            char *dp = NULL;
            tome_pack_format_loc(p, &loc, &dp);
            printf("%-8s %10llu %8llu %10llu  %s", tome_file_status_name(f.status), (unsigned long long)f.tok_count,
                   (unsigned long long)f.n_lines, (unsigned long long)f.size, dp ? dp : "?");
            free(dp);
            if (f.alias_of >= 0) {
                loc.file = f.alias_of;
                tome_pack_format_loc(p, &loc, &dp);
                printf("  (same as %s)", dp ? dp : "?");
                free(dp);
            } else if (*f.reason) {
                printf("  (%s)", f.reason);
            }
            if (f.n_redactions) printf("  [%llu redacted]", (unsigned long long)f.n_redactions);
            putchar('\n');
        }
    }
    tome_pack_free(p);
    return TOME_EXIT_OK;
}

int tome_cmd_locate(int argc, char **argv)
{
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        printf("usage: tome locate PACK.tpk TOKEN_INDEX...\n\n"
               "Prints where each token of the pack comes from: path:line, path#page=N:line for\n"
               "documents with pages, just path for a file block's header, (pack) for the tree.\n");
        return TOME_EXIT_OK;
    }
    if (argc < 3) return tome_cli_usage_error("locate", "expected PACK.tpk TOKEN_INDEX...");
    unsigned long long idx[1];
    for (int i = 2; i < argc; i++)
        if (tome_cli_parse_u64(argv[i], 0, idx)) return tome_cli_usage_error("locate", "bad token index '%s'", argv[i]);
    tome_pack_t *p;
    tome_status st = tome_pack_open(argv[1], &p);
    if (st) return tome_cli_fail(st);
    int rc = TOME_EXIT_OK;
    for (int i = 2; i < argc; i++) {
        tome_cli_parse_u64(argv[i], 0, idx);
        tome_pack_loc loc;
        char *s = NULL;
        st = tome_pack_locate(p, idx[0], &loc);
        if (!st) st = tome_pack_format_loc(p, &loc, &s);
        if (st) {
            rc = st == TOME_ERR_NOT_FOUND ? (fprintf(stderr, "tome: %s\n", tome_last_error()), TOME_EXIT_FAIL)
                                          : tome_cli_fail(st);
            break;
        }
        printf("%s\n", s);
        free(s);
    }
    tome_pack_free(p);
    return rc;
}

int tome_cmd_cite(int argc, char **argv)
{
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        printf("usage: tome cite PACK.tpk \"path:line[-line]\"...\n\n"
               "Prints the cited lines as they are in the pack. Exits 1 when a citation does\n"
               "not exist in the pack (no such file, line out of range, or the line was not\n"
               "packed because the file was degraded to an outline or listed only).\n"
               "Documents also accept path#page=N:line.\n");
        return TOME_EXIT_OK;
    }
    if (argc < 3) return tome_cli_usage_error("cite", "expected PACK.tpk \"path:line[-line]\"");
    tome_pack_t *p;
    tome_status st = tome_pack_open(argv[1], &p);
    if (st) return tome_cli_fail(st);
    int rc = TOME_EXIT_OK;
    for (int i = 2; i < argc; i++) {
        char *text = NULL;
        size_t len = 0;
        if (!strcmp(argv[i], "--")) continue; /* a separator, never a citation (no line) */
        st = tome_pack_cite(p, argv[i], &text, &len);
        if (st == TOME_ERR_NOT_FOUND) {
            fprintf(stderr, "tome: %s\n", tome_last_error());
            rc = TOME_EXIT_FAIL;
            continue;
        }
        if (st) {
            rc = st == TOME_ERR_INVALID_ARG ? tome_cli_usage_error("cite", "%s", tome_last_error()) : tome_cli_fail(st);
            break;
        }
        fwrite(text, 1, len, stdout);
        free(text);
    }
    tome_pack_free(p);
    return rc;
}
