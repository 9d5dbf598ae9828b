/*
 * cli/cmd_pack.c — `tome pack SRC... -o OUT.tpk`: build a pack, print a
 * summary on stderr (or JSON on stdout), optionally write the text rendering.
 *
 * The summary is computed from the written pack (reopened with the
 * validating reader), so what is reported is exactly what is in the file.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cli.h"
#include "core/core_impl.h"
#include "ingest/unicode_impl.h"
#include "core/error_impl.h"
#include "tome/pack.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: tome pack SRC... -o OUT.tpk [options]\n"
            "\n"
            "Packs directories, archives (zip, tar.*, 7z), documents (PDF, DOCX, ODT, HTML) and\n"
            "files into one prompt for Llama 4 Scout with exact token counts and a way back\n"
            "from every token to its file and line (see tome inspect / locate / cite).\n"
            "\n"
            "options:\n"
            "  -o, --output FILE      the pack to write (.tpk); written atomically\n"
            "  -t, --tokenizer PATH   tokenizer.model, tokenizer.json or a model directory\n"
            "                         (default: $TOME_TOKENIZER, then --model, then\n"
            "                         $XDG_DATA_HOME/tome/tokenizer.model)\n"
            "      --model DIR        model directory holding the tokenizer\n"
            "      --format F         xml (default), markdown or plain\n"
            "      --render FILE      also write the rendered text to FILE\n"
            "  -r                     write the rendering next to OUT: OUT.xml / OUT.md / OUT.txt\n"
            "      --line-numbers     prefix content lines with their original line number\n"
            "      --budget N         token budget (default 10485760 = Scout's context, K/M ok);\n"
            "                         over it, files degrade from the lowest priority:\n"
            "                         full text -> outline -> listed only\n"
            "      --exact-counts     count the full text of degraded files exactly too\n"
            "                         (default: the files most likely degraded are counted\n"
            "                         at least, exactly only where the budget needs it)\n"
            "      --priority GLOB    pack matching files first (repeatable, first = highest)\n"
            "      --include GLOB     only files matching (repeatable, gitignore syntax)\n"
            "      --exclude GLOB     skip files matching (repeatable, gitignore syntax)\n"
            "      --no-gitignore     do not apply .gitignore / .git/info/exclude\n"
            "      --no-redact        keep secrets (default: replaced by [REDACTED:kind])\n"
            "      --html MODE        auto (default): HTML found in a directory is packed as\n"
            "                         markup (source), HTML in an archive or named directly\n"
            "                         as its extracted text; source / text: always that way\n"
            "      --max-file-size N  skip files larger than N bytes (default 16M)\n"
            "      --threads N        worker threads (default: all cores)\n"
            "      --json             print the summary as JSON on stdout\n"
            "  -q, --quiet            no summary on stderr\n"
            "\n"
            "Order: tree first, then by priority: README, docs, entry points, build/config,\n"
            "other sources, tests, then volatile files (lockfiles, changelogs, generated,\n"
            "vendored, test data) last, so that a KV prefix survives small edits.\n");
}

typedef struct strv {
    const char **v;
    size_t n;
} strv;

static int strv_push(strv *s, const char *x)
{
    const char **nv = realloc(s->v, (s->n + 2) * sizeof *nv);
    if (!nv) return -1;
    s->v = nv;
    s->v[s->n++] = x;
    s->v[s->n] = NULL;
    return 0;
}

/* Finds the tokenizer: -t, $TOME_TOKENIZER, --model, $XDG_DATA_HOME/tome. */
static int find_tokenizer(const char *t, const char *model, char *buf, size_t cap)
{
    if (t && *t) return snprintf(buf, cap, "%s", t), 0;
    const char *env = getenv("TOME_TOKENIZER");
    if (env && *env) return snprintf(buf, cap, "%s", env), 0;
    if (model && *model) return snprintf(buf, cap, "%s", model), 0;
    const char *xdg = getenv("XDG_DATA_HOME");
    const char *home = getenv("HOME");
    if (xdg && *xdg) snprintf(buf, cap, "%s/tome/tokenizer.model", xdg);
    else if (home && *home) snprintf(buf, cap, "%s/.local/share/tome/tokenizer.model", home);
    else return -1;
    return access(buf, R_OK) == 0 ? 0 : -1;
}

typedef struct prog {
    int tty;
    double start;
    int shown;
} prog;

static void on_progress(void *ud, const tome_pack_progress *p)
{
    prog *pr = ud;
    if (!pr->tty) return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double t = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    if (!pr->start) pr->start = t;
    if (t - pr->start < 1.0) return; /* a bar only for runs over a second */
    int width = 30, fill = p->total ? (int)(width * (double)p->done / (double)p->total) : 0;
    if (fill > width) fill = width;
    fprintf(stderr, "\r%-5s [", p->phase);
    for (int i = 0; i < width; i++) fputc(i < fill ? '#' : ' ', stderr);
    fprintf(stderr, "] %llu/%llu   ", (unsigned long long)p->done, (unsigned long long)p->total);
    fflush(stderr);
    pr->shown = 1;
}

typedef struct topf {
    size_t idx;
    uint64_t tokens;
} topf;

static int cmp_top(const void *a, const void *b)
{
    const topf *x = a, *y = b;
    if (x->tokens != y->tokens) return x->tokens > y->tokens ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* A JSON string as jansson writes it with JSON_ENSURE_ASCII (a text that
 * is not UTF-8 goes through tome_cli_json_path's escaping first). */
static void put_json_str(tome_buf *b, const char *s)
{
    const uint8_t *u = (const uint8_t *)s;
    size_t n = strlen(s);
    uint32_t cp;
    for (size_t i = 0, k; i < n; i += k) /* valid UTF-8 (and no NUL, as a C string) */
        if (!(k = tome_utf8_decode(u + i, n - i, &cp))) goto fallback;
    tome_buf_putc(b, '"');
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            size_t j = i + 1;
            while (j < n && (unsigned char)s[j] >= 0x20 && (unsigned char)s[j] < 0x80 && s[j] != '"' && s[j] != '\\') j++;
            tome_buf_append(b, s + i, j - i);
            i = j;
            continue;
        }
        i += tome_utf8_decode(u + i, n - i, &cp); /* valid: checked above */
        switch (cp) {
        case '"': tome_buf_append(b, "\\\"", 2); break;
        case '\\': tome_buf_append(b, "\\\\", 2); break;
        case '\b': tome_buf_append(b, "\\b", 2); break;
        case '\f': tome_buf_append(b, "\\f", 2); break;
        case '\n': tome_buf_append(b, "\\n", 2); break;
        case '\r': tome_buf_append(b, "\\r", 2); break;
        case '\t': tome_buf_append(b, "\\t", 2); break;
        default:
            if (cp < 0x10000) {
                tome_buf_appendf(b, "\\u%04X", cp);
            } else {
                cp -= 0x10000;
                tome_buf_appendf(b, "\\u%04X\\u%04X", 0xD800 | (cp >> 10), 0xDC00 | (cp & 0x3FF));
            }
        }
    }
    tome_buf_putc(b, '"');
    return;
fallback:;
    json_t *j = tome_cli_json_path(s);
    char *d = json_dumps(j, JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
    tome_buf_append(b, d ? d : "null", d ? strlen(d) : 4);
    free(d);
    json_decref(j);
}

static void put_json_display_path(tome_buf *b, const char *p)
{
    char *d = NULL;
    if (tome_path_display(p, &d)) {
        put_json_str(b, p);
        return;
    }
    put_json_str(b, d);
    free(d);
}

/* One manifest entry, on one line (the manifest is streamed: building a
 * jansson object per file and dumping them took 16 ms for git/git's 4850). */
static void put_file_json(tome_buf *b, const tome_pack_t *pk, const tome_pack_file *f)
{
    tome_buf_appendf(b, "{\"status\": \"%s\", ", tome_file_status_name(f->status));
    if (*f->reason) {
        tome_buf_append(b, "\"reason\": ", 10);
        put_json_str(b, f->reason);
        tome_buf_append(b, ", ", 2);
    }
    tome_buf_appendf(b,
                     "\"tokens\": %llu, \"full_tokens\": %llu, \"full_tokens_exact\": %s, \"lines\": %llu, "
                     "\"bytes\": %llu, \"path\": ",
                     (unsigned long long)f->tok_count, (unsigned long long)f->full_tokens,
                     f->full_tokens_lower ? "false" : "true", (unsigned long long)f->n_lines,
                     (unsigned long long)f->size);
    put_json_display_path(b, f->path);
    if (f->alias_of >= 0) {
        tome_pack_file a;
        tome_pack_get_file(pk, (size_t)f->alias_of, &a);
        tome_buf_append(b, ", \"alias_of\": ", 14);
        put_json_display_path(b, a.path);
    }
    tome_buf_putc(b, '}');
}

static int summarize(tome_pack_t *pk, const tome_pack_stats *s, const char *out_path, int json, int quiet)
{
    tome_pack_info info;
    tome_pack_get_info(pk, &info);
    size_t n = tome_pack_n_files(pk);
    topf *top = calloc(n ? n : 1, sizeof *top);
    if (!top) return TOME_EXIT_FAIL;
    for (size_t i = 0; i < n; i++) {
        tome_pack_file f;
        tome_pack_get_file(pk, i, &f);
        top[i] = (topf){i, f.tok_count};
    }
    qsort(top, n, sizeof *top, cmp_top);
    size_t ntop = n < 10 ? n : 10;
    double mb = (double)s->bytes_read / 1e6;
    if (json) {
        json_t *o = json_object(), *topa = json_array(), *skipped = json_array(),
               *degraded = json_array(), *red = json_array();
        json_object_set_new(o, "pack", json_string(out_path));
        json_object_set_new(o, "version", json_integer(info.version));
        json_object_set_new(o, "files", json_integer((json_int_t)s->n_files));
        json_object_set_new(o, "full", json_integer((json_int_t)s->n_full));
        json_object_set_new(o, "outline", json_integer((json_int_t)s->n_outline));
        json_object_set_new(o, "listed", json_integer((json_int_t)s->n_listed));
        json_object_set_new(o, "aliases", json_integer((json_int_t)s->n_alias));
        json_object_set_new(o, "skipped_count", json_integer((json_int_t)s->n_skipped));
        json_object_set_new(o, "tokens", json_integer((json_int_t)s->n_tokens));
        json_object_set_new(o, "budget", json_integer((json_int_t)info.budget));
        json_object_set_new(o, "text_bytes", json_integer((json_int_t)s->n_text_bytes));
        json_object_set_new(o, "bytes_read", json_integer((json_int_t)s->bytes_read));
        json_object_set_new(o, "pack_bytes", json_integer((json_int_t)s->pack_bytes));
        json_object_set_new(o, "redactions", json_integer((json_int_t)s->n_redactions));
        json_object_set_new(o, "counted_at_least", json_integer((json_int_t)s->n_counted_at_least));
        json_object_set_new(o, "counted_later", json_integer((json_int_t)s->n_counted_later));
        json_object_set_new(o, "seconds", json_real(s->seconds));
        json_t *ph = json_object();
        json_object_set_new(ph, "scan", json_real(s->t_scan));
        json_object_set_new(ph, "read", json_real(s->t_read));
        json_object_set_new(ph, "plan", json_real(s->t_plan));
        json_object_set_new(ph, "write", json_real(s->t_write));
        json_object_set_new(o, "phase_seconds", ph);
        json_object_set_new(o, "mb_per_s", json_real(s->seconds > 0 ? mb / s->seconds : 0));
        json_object_set_new(o, "tokens_per_s", json_real(s->seconds > 0 ? (double)s->n_tokens / s->seconds : 0));
        json_object_set_new(o, "content_hash", json_string(info.content_hash));
        json_object_set_new(o, "tokenizer_hash", json_string(info.tokenizer_hash));
        for (size_t k = 0; k < ntop; k++) {
            tome_pack_file f;
            tome_pack_get_file(pk, top[k].idx, &f);
            json_t *t = json_object();
            json_object_set_new(t, "path", tome_cli_json_display_path(f.path));
            json_object_set_new(t, "tokens", json_integer((json_int_t)f.tok_count));
            json_array_append_new(topa, t);
        }
        tome_buf man = {0};
        for (size_t i = 0; i < n; i++) {
            tome_pack_file f;
            tome_pack_get_file(pk, i, &f);
            tome_buf_append(&man, i ? ",\n  " : "\n  ", i ? 4 : 3);
            put_file_json(&man, pk, &f);
            if (f.status == TOME_FILE_SKIPPED) {
                json_t *k = json_object();
                json_object_set_new(k, "path", tome_cli_json_display_path(f.path));
                json_object_set_new(k, "reason", tome_cli_json_path(f.reason));
                json_array_append_new(skipped, k);
            } else if (f.status == TOME_FILE_OUTLINE || (f.status == TOME_FILE_LISTED)) {
                json_t *k = json_object();
                json_object_set_new(k, "path", tome_cli_json_display_path(f.path));
                json_object_set_new(k, "status", json_string(tome_file_status_name(f.status)));
                json_object_set_new(k, "reason", tome_cli_json_path(f.reason));
                json_object_set_new(k, "full_tokens", json_integer((json_int_t)f.full_tokens));
                json_object_set_new(k, "full_tokens_exact", json_boolean(!f.full_tokens_lower));
                json_object_set_new(k, "tokens", json_integer((json_int_t)f.tok_count));
                json_array_append_new(degraded, k);
            }
            size_t nr;
            const uint32_t *lines;
            const char *const *kinds;
            tome_pack_get_redactions(pk, i, &nr, &lines, &kinds);
            for (size_t r = 0; r < nr; r++) {
                json_t *k = json_object();
                json_object_set_new(k, "path", tome_cli_json_display_path(f.path));
                json_object_set_new(k, "line", json_integer(lines[r]));
                json_object_set_new(k, "kind", json_string(kinds[r]));
                json_array_append_new(red, k);
            }
        }
        json_object_set_new(o, "top_files", topa);
        json_object_set_new(o, "skipped", skipped);
        json_object_set_new(o, "degraded", degraded);
        json_object_set_new(o, "redacted", red);
        /* the object, then the manifest (one entry a line) spliced in last */
        char *head = json_dumps(o, JSON_INDENT(1) | JSON_ENSURE_ASCII);
        size_t hl = head ? strlen(head) : 0;
        while (hl && head[hl - 1] != '}') hl--;
        if (hl) {
            fwrite(head, 1, hl - 1, stdout);
            fputs(",\n \"manifest\": [", stdout);
            if (man.len) fwrite(man.data, 1, man.len, stdout);
            fputs(n ? "\n ]\n}\n" : "]\n}\n", stdout);
        }
        free(head);
        tome_buf_free(&man);
        json_decref(o);
    }
    if (!quiet) {
        fprintf(stderr,
                "tome pack: %llu files (%llu full, %llu outline, %llu listed, %llu aliases, %llu skipped), "
                "%llu tokens of %llu budget\n",
                (unsigned long long)s->n_files, (unsigned long long)s->n_full, (unsigned long long)s->n_outline,
                (unsigned long long)s->n_listed, (unsigned long long)s->n_alias, (unsigned long long)s->n_skipped,
                (unsigned long long)s->n_tokens, (unsigned long long)info.budget);
        if (s->n_files == 0)
            fprintf(stderr, "  warning: no files: the sources are empty, or every file is ignored "
                            "(.gitignore, .tomeignore, --include/--exclude)\n");
        if (ntop) fprintf(stderr, "  top files by tokens:\n");
        for (size_t k = 0; k < ntop && top[k].tokens; k++) {
            tome_pack_file f;
            tome_pack_get_file(pk, top[k].idx, &f);
            tome_pack_loc loc = {(int64_t)top[k].idx, 0, 0, 0};
            char *p = NULL;
            tome_pack_format_loc(pk, &loc, &p);
            fprintf(stderr, "    %10llu  %s\n", (unsigned long long)f.tok_count, p ? p : f.path);
            free(p);
        }
        int hdr_s = 0, hdr_d = 0, lower = 0;
        for (int pass = 0; pass < 2; pass++)
            for (size_t i = 0; i < n; i++) {
                tome_pack_file f;
                tome_pack_get_file(pk, i, &f);
                int skip = f.status == TOME_FILE_SKIPPED;
                int deg = f.status == TOME_FILE_OUTLINE || f.status == TOME_FILE_LISTED;
                if ((pass == 0 && !skip) || (pass == 1 && !deg)) continue;
                int *cnt = pass == 0 ? &hdr_s : &hdr_d;
                lower += deg && f.full_tokens_lower;
                if (!(*cnt)++) fprintf(stderr, pass == 0 ? "  skipped:\n" : "  degraded to fit the budget:\n");
                if (*cnt > 15) continue; /* the rest: counted below, all in --json / tome inspect */
                tome_pack_loc loc = {(int64_t)i, 0, 0, 0};
                char *p = NULL;
                tome_pack_format_loc(pk, &loc, &p);
                if (skip) fprintf(stderr, "    %s: %s\n", p ? p : "?", f.reason);
                else
                    fprintf(stderr, "    %s: %s (%s%llu -> %llu tokens)\n", p ? p : "?", tome_file_status_name(f.status),
                            f.full_tokens_lower ? "at least " : "", (unsigned long long)f.full_tokens,
                            (unsigned long long)f.tok_count);
                free(p);
            }
        if (hdr_d > 15 || hdr_s > 15)
            fprintf(stderr, "  (%d skipped and %d degraded in all; tome inspect or --json lists every file)\n", hdr_s,
                    hdr_d);
        if (lower)
            fprintf(stderr, "  (the full text of %d degraded files was counted at least, not tokenized; "
                            "--exact-counts counts it)\n", lower);
        if (s->n_redactions) fprintf(stderr, "  redacted secrets: %llu (tome inspect --json lists them)\n",
                                     (unsigned long long)s->n_redactions);
        fprintf(stderr, "  %.2f s, %.1f MB read (%.1f MB/s), %.0f tokens/s; wrote %s (%llu bytes)\n", s->seconds, mb,
                s->seconds > 0 ? mb / s->seconds : 0.0, s->seconds > 0 ? (double)s->n_tokens / s->seconds : 0.0,
                out_path, (unsigned long long)s->pack_bytes);
    }
    free(top);
    return TOME_EXIT_OK;
}

/* The rendering may replace an earlier rendering or an empty file, never a
 * source (--render src/a.c would overwrite it, and leave it out of the
 * pack), the pack itself, a directory or a device. Checked before packing. */
static tome_status check_render_path(const char *rpath, const char *out)
{
    struct stat rs, os_;
    if (stat(rpath, &rs) != 0) return strcmp(rpath, out) ? TOME_OK : tome_set_error(TOME_ERR_INVALID_ARG, "--render %s is the pack itself", rpath);
    if (!strcmp(rpath, out) || (stat(out, &os_) == 0 && os_.st_dev == rs.st_dev && os_.st_ino == rs.st_ino))
        return tome_set_error(TOME_ERR_INVALID_ARG, "--render %s is the pack itself", rpath);
    static const char *const open_lines[] = {"<pack tool=\"tome\"", "# Repository pack (tome)", "==== pack (tome) ===="};
    char head[32];
    size_t got;
    switch (tome_output_probe(rpath, head, sizeof head, &got)) {
    case TOME_OUT_ABSENT:
    case TOME_OUT_EMPTY: return TOME_OK;
    case TOME_OUT_DIR:
        return tome_set_error(TOME_ERR_INVALID_ARG, "--render %s is a directory: it names the file to write", rpath);
    case TOME_OUT_SPECIAL:
        return tome_set_error(TOME_ERR_INVALID_ARG, "--render %s is not a regular file: refusing to replace it", rpath);
    case TOME_OUT_FILE: break;
    }
    for (size_t k = 0; k < sizeof open_lines / sizeof *open_lines; k++)
        if (got >= strlen(open_lines[k]) && !memcmp(head, open_lines[k], strlen(open_lines[k]))) return TOME_OK;
    return tome_set_error(TOME_ERR_INVALID_ARG,
                          "--render %s exists and is not a tome rendering: refusing to replace it (remove it or choose another file)",
                          rpath);
}

int tome_cmd_pack(int argc, char **argv)
{
    enum { O_MODEL = 256, O_FORMAT, O_RENDER, O_LINES, O_BUDGET, O_PRIO, O_INCL, O_EXCL, O_NOGIT, O_NORED, O_MAXF,
           O_THREADS, O_JSON, O_HTML, O_EXACT };
    static const struct option lopts[] = {
        {"output", required_argument, 0, 'o'},     {"tokenizer", required_argument, 0, 't'},
        {"model", required_argument, 0, O_MODEL},   {"format", required_argument, 0, O_FORMAT},
        {"render", required_argument, 0, O_RENDER}, {"line-numbers", no_argument, 0, O_LINES},
        {"budget", required_argument, 0, O_BUDGET}, {"priority", required_argument, 0, O_PRIO},
        {"include", required_argument, 0, O_INCL},  {"exclude", required_argument, 0, O_EXCL},
        {"no-gitignore", no_argument, 0, O_NOGIT},  {"no-redact", no_argument, 0, O_NORED},
        {"max-file-size", required_argument, 0, O_MAXF}, {"threads", required_argument, 0, O_THREADS},
        {"json", no_argument, 0, O_JSON},           {"quiet", no_argument, 0, 'q'},
        {"html", required_argument, 0, O_HTML},    {"exact-counts", no_argument, 0, O_EXACT},
        {"help", no_argument, 0, 'h'},              {0, 0, 0, 0}};
    tome_pack_opts o;
    tome_pack_opts_default(&o);
    const char *out = NULL, *tokp = NULL, *model = NULL, *render = NULL;
    int json = 0, quiet = 0, render_auto = 0, rc = TOME_EXIT_OK;
    strv incl = {0}, excl = {0}, prio = {0};
    unsigned long long v;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":o:t:rqh", lopts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 't': tokp = optarg; break;
        case 'r': render_auto = 1; break;
        case 'q': quiet = 1; break;
        case 'h': usage(stdout); rc = TOME_EXIT_OK; goto done_help;
        case O_MODEL: model = optarg; break;
        case O_FORMAT:
            if (!strcmp(optarg, "xml")) o.format = TOME_PACK_XML;
            else if (!strcmp(optarg, "markdown") || !strcmp(optarg, "md")) o.format = TOME_PACK_MARKDOWN;
            else if (!strcmp(optarg, "plain") || !strcmp(optarg, "text")) o.format = TOME_PACK_PLAIN;
            else return tome_cli_usage_error("pack", "unknown format '%s' (xml, markdown or plain)", optarg);
            break;
        case O_RENDER: render = optarg; break;
        case O_LINES: o.line_numbers = 1; break;
        case O_BUDGET:
            if (tome_cli_parse_u64(optarg, 0, &v) || v == 0)
                return tome_cli_usage_error("pack", "bad --budget '%s' (a number of tokens from 1 to 2^64-1; K/M ok)", optarg);
            o.budget = v;
            break;
        case O_PRIO: if (strv_push(&prio, optarg)) return TOME_EXIT_FAIL; break;
        case O_INCL: if (strv_push(&incl, optarg)) return TOME_EXIT_FAIL; break;
        case O_EXCL: if (strv_push(&excl, optarg)) return TOME_EXIT_FAIL; break;
        case O_NOGIT: o.no_gitignore = 1; break;
        case O_NORED: o.no_redact = 1; break;
        case O_EXACT: o.exact_counts = 1; break;
        case O_MAXF:
            if (tome_cli_parse_u64(optarg, 1, &v) || v == 0)
                return tome_cli_usage_error("pack", "bad --max-file-size '%s'", optarg);
            o.max_file_bytes = v;
            break;
        case O_THREADS:
            if (tome_cli_parse_u64(optarg, 0, &v) || v == 0 || v > 1024)
                return tome_cli_usage_error("pack", "bad --threads '%s'", optarg);
            o.n_threads = (int)v;
            break;
        case O_JSON: json = 1; break;
        case O_HTML:
            if (!strcmp(optarg, "auto")) o.html = TOME_PACK_HTML_AUTO;
            else if (!strcmp(optarg, "source")) o.html = TOME_PACK_HTML_SOURCE;
            else if (!strcmp(optarg, "text")) o.html = TOME_PACK_HTML_TEXT;
            else return tome_cli_usage_error("pack", "unknown --html mode '%s' (auto, source or text)", optarg);
            break;
        case ':': return tome_cli_usage_error("pack", "option '%s' needs a value", argv[optind - 1]);
        default: /* an unknown letter inside "-x.c" leaves optind on that word: name the letter */
            if (optopt > 0 && optopt < 128)
                return tome_cli_usage_error("pack", "unknown option '-%c' (a source whose name starts with '-': "
                                                    "write ./NAME or put it after --)", optopt);
            return tome_cli_usage_error("pack", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc) return tome_cli_usage_error("pack", "no source given");
    if (!out) return tome_cli_usage_error("pack", "no output given (-o OUT.tpk)");
    char tpath[4096];
    if (find_tokenizer(tokp, model, tpath, sizeof tpath))
        return fprintf(stderr, "tome: error: no tokenizer found: pass -t PATH (tokenizer.model, tokenizer.json or a "
                               "model directory), set TOME_TOKENIZER, or put tokenizer.model in "
                               "$XDG_DATA_HOME/tome/\n"),
               TOME_EXIT_USAGE;
    tome_status st = TOME_OK;
    o.tok_path = tpath; /* loaded while the sources are walked */
    o.include = incl.v;
    o.exclude = excl.v;
    o.priority = prio.v;
    /* never pack our own output (or its rendering) from an earlier run */
    char *rpath = NULL;
    if (render || render_auto) {
        if (render) {
            rpath = strdup(render);
        } else {
            const char *ext = o.format == TOME_PACK_XML ? ".xml" : o.format == TOME_PACK_MARKDOWN ? ".md" : ".txt";
            size_t n = strlen(out);
            if (n > 4 && !strcmp(out + n - 4, ".tpk")) n -= 4;
            rpath = malloc(n + 5);
            if (rpath) snprintf(rpath, n + 5, "%.*s%s", (int)n, out, ext);
        }
    }
    const char *leave[3] = {out, rpath, NULL};
    o.leave_out = leave;
    prog pr = {isatty(2) && !quiet, 0, 0};
    o.progress = on_progress;
    o.progress_ud = &pr;
    tome_pack_stats stats;
    if (rpath && (st = check_render_path(rpath, out))) {
        free(rpath);
        rc = tome_cli_fail(st);
        goto done_help;
    }
    tome_pack_t *pk = NULL;
    st = tome_pack_build_open((const char *const *)(argv + optind), (size_t)(argc - optind), &o, out, &stats, &pk);
    if (pr.shown) fprintf(stderr, "\r%60s\r", "");
    if (!st && (render || render_auto))
        st = rpath ? tome_pack_write_text(pk, rpath) : tome_set_error(TOME_ERR_NOMEM, "out of memory");
    if (st) rc = tome_cli_fail(st);
    else rc = summarize(pk, &stats, out, json, quiet);
    free(rpath);
    tome_pack_free(pk);
done_help:
    free(incl.v);
    free(excl.v);
    free(prio.v);
    return rc;
}
