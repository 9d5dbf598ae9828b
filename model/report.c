/*
 * model/report.c — task templates and rendering for `tome report`
 * (tome/report.h). The templates are plain questions written for this
 * project; every one asks for path:line citations, which the caller checks
 * against the pack (tome_chat_citations) before rendering.
 *
 * HTML layout: header (task, sources, model), a findings table (one row per
 * item: title, severity for compliance, valid / invalid citations), then one
 * section per item with the answer, whose citations are links to <pre>
 * blocks at the end holding the cited lines as the pack has them. Everything
 * is escaped; the page has inline CSS only.
 */
#include "tome/report.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/core_impl.h"
#include "core/error_impl.h"
#include "ingest/unicode_impl.h"

static const struct {
    const char *title, *question;
} REFACTOR[] = {
    {"Module map",
     "List the modules of this code base (directories or groups of files), what each one is responsible for, "
     "and its main entry points. Cite path:line for each."},
    {"Dependency hot spots",
     "Which files or functions are depended on by the most other parts of the code, or tie otherwise separate "
     "modules together? Name each hot spot, who depends on it, and why it is risky to change. Cite path:line."},
    {"Dead code",
     "Find functions, types, files or configuration that nothing uses or that can never run. For each, cite "
     "path:line of the definition and say how you know it is unused."},
    {"Migration plan",
     "Propose a step-by-step refactoring plan for this code base: order of the steps, what each step changes, "
     "what tests protect it, and the risks. Cite path:line for every place a step touches."},
};

static tome_status add_item(tome_report *r, const char *title, const char *question)
{
    tome_report_item *v = realloc(r->items, (r->n_items + 1) * sizeof *v);
    if (!v) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    r->items = v;
    tome_report_item *it = &v[r->n_items];
    memset(it, 0, sizeof *it);
    it->title = strdup(title);
    it->question = strdup(question);
    r->n_items++;
    if (!it->title || !it->question) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    return TOME_OK;
}

static tome_status flush(tome_report *r, tome_buf *clause, int *n)
{
    char title[32];
    snprintf(title, sizeof title, "Clause %d", ++*n);
    tome_buf q = {0};
    tome_status st = tome_buf_appendf(&q,
                                      "Policy clause: \"%s\"\nCheck this clause against the documents. Start your "
                                      "answer with \"Severity: high\", \"medium\", \"low\" or \"none\" (none: the "
                                      "documents comply), then list each finding with a path:line citation.",
                                      clause->data);
    if (st == TOME_OK) st = add_item(r, title, q.data);
    tome_buf_free(&q);
    clause->len = 0;
    return st;
}

tome_status tome_report_plan(tome_report *r, const char *task, const char *policy)
{
    if (!strcmp(task, "refactor")) {
        for (size_t i = 0; i < sizeof REFACTOR / sizeof REFACTOR[0]; i++)
            TOME_FORWARD(add_item(r, REFACTOR[i].title, REFACTOR[i].question));
        return TOME_OK;
    }
    if (strcmp(task, "compliance") != 0)
        return tome_set_error(TOME_ERR_INVALID_ARG, "report: unknown task '%s' (refactor, compliance)", task);
    if (!policy) return tome_set_error(TOME_ERR_INVALID_ARG, "report: the compliance task needs a policy (--policy FILE)");
    /* clauses: paragraphs separated by blank lines; a list item ("- ", "* ",
     * "1. ", "1) ") starts a clause of its own; "#" headings are skipped */
    int n = 0;
    tome_buf clause = {0};
    tome_status st = TOME_OK;
    for (const char *p = policy; st == TOME_OK;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        size_t k = 0;
        while (k < len && isspace((unsigned char)p[k])) k++;
        int blank = k == len, heading = !blank && p[k] == '#';
        size_t body = k;
        int item = 0;
        if (!blank && (p[k] == '-' || p[k] == '*') && k + 1 < len && p[k + 1] == ' ') item = 1, body = k + 2;
        size_t d = k;
        while (d < len && isdigit((unsigned char)p[d])) d++;
        if (!blank && d > k && d - k <= 3 && d + 1 < len && (p[d] == '.' || p[d] == ')') && p[d + 1] == ' ')
            item = 1, body = d + 2;
        if ((blank || heading || item) && clause.len > 0) st = flush(r, &clause, &n);
        if (st == TOME_OK && !blank && !heading) {
            if (clause.len) st = tome_buf_putc(&clause, ' ');
            if (st == TOME_OK) st = tome_buf_append(&clause, p + body, len - body);
        }
        if (!e) break;
        p = e + 1;
    }
    if (st == TOME_OK && clause.len > 0) st = flush(r, &clause, &n);
    tome_buf_free(&clause);
    if (st == TOME_OK && n == 0) st = tome_set_error(TOME_ERR_INVALID_ARG, "report: the policy holds no clauses");
    return st;
}

static const char *find_word(const char *s, const char *w)
{
    size_t n = strlen(w);
    for (const char *p = s; *p; p++)
        if (!strncasecmp(p, w, n) && (p == s || !isalpha((unsigned char)p[-1])) && !isalpha((unsigned char)p[n]))
            return p;
    return NULL;
}

const char *tome_report_severity(const char *answer)
{
    static const char *const W[] = {"high", "medium", "low", "none"};
    if (!answer) return "unknown";
    const char *from = find_word(answer, "severity");
    for (int pass = 0; pass < 2; pass++) {
        const char *base = pass == 0 ? from : answer;
        if (!base) continue;
        const char *best = NULL;
        int bi = -1;
        for (int i = 0; i < 4; i++) {
            const char *q = find_word(base, W[i]);
            if (q && (!best || q < best)) best = q, bi = i;
        }
        if (bi >= 0) return W[bi];
    }
    return "unknown";
}

/* HTML text of s[0..n) (up to a NUL): markup characters escaped; bytes that
 * are not well-formed UTF-8 (an answer cut inside a character, a Latin-1
 * path) and control characters other than tab / newline / CR become U+FFFD,
 * so the page is valid UTF-8 whatever the model wrote. */
static void esc(tome_buf *b, const char *s, size_t n)
{
    size_t len = 0;
    while (len < n && s[len]) len++;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t l = tome_utf8_decode((const uint8_t *)s + i, len - i, &cp);
        if (l == 0 || (cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') || cp == 0x7F) {
            tome_buf_append(b, "\xEF\xBF\xBD", 3);
            i += l ? l : 1;
            continue;
        }
        switch (s[i]) {
        case '<': tome_buf_appendf(b, "&lt;"); break;
        case '>': tome_buf_appendf(b, "&gt;"); break;
        case '&': tome_buf_appendf(b, "&amp;"); break;
        case '"': tome_buf_appendf(b, "&quot;"); break;
        case '\'': tome_buf_appendf(b, "&#39;"); break;
        default: tome_buf_append(b, s + i, l);
        }
        i += l;
    }
}

#define REPORT_MARK "<!-- tome report -->"

tome_status tome_report_check_output(const char *path)
{
    char head[512];
    size_t got;
    switch (tome_output_probe(path, head, sizeof head, &got)) {
    case TOME_OUT_ABSENT:
    case TOME_OUT_EMPTY: return TOME_OK;
    case TOME_OUT_DIR: return tome_set_error(TOME_ERR_INVALID_ARG, "%s is a directory, not a report file", path);
    case TOME_OUT_SPECIAL:
        return tome_set_error(TOME_ERR_INVALID_ARG, "%s is not a regular file: refusing to write a report over it", path);
    case TOME_OUT_FILE: break;
    }
    if (memmem(head, got, REPORT_MARK, strlen(REPORT_MARK))) return TOME_OK;
    return tome_set_error(TOME_ERR_INVALID_ARG,
                          "%s exists and is not a tome report: refusing to replace it (remove it or choose another "
                          "-o / --md)",
                          path);
}

static tome_status write_buf(const char *path, tome_buf *b)
{
    if (!b->data) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    TOME_FORWARD(tome_report_check_output(path));
    tome_atomic_file *f = NULL;
    TOME_FORWARD(tome_atomic_open(path, &f));
    tome_status st = tome_atomic_write(f, b->data, b->len);
    if (st != TOME_OK) {
        tome_atomic_abort(f);
        return st;
    }
    return tome_atomic_commit(f);
}

static void counts(const tome_report_item *it, size_t *ok, size_t *bad)
{
    *ok = *bad = 0;
    for (size_t i = 0; i < it->n_cites; i++) it->cites[i].valid ? (*ok)++ : (*bad)++;
}

tome_status tome_report_render_md(const tome_report *r, const char *path)
{
    tome_buf b = {0};
    tome_buf_appendf(&b, "# %s\n\n" REPORT_MARK "\n\nTask: %s. Sources: %s. Model: %s.\n\n## Findings\n\n", r->title,
                     r->task, r->sources,
                     r->model);
    int comp = !strcmp(r->task, "compliance");
    tome_buf_appendf(&b, comp ? "| item | severity | valid citations | invalid citations |\n|---|---|---|---|\n"
                              : "| item | valid citations | invalid citations |\n|---|---|---|\n");
    for (size_t i = 0; i < r->n_items; i++) {
        size_t ok, bad;
        counts(&r->items[i], &ok, &bad);
        if (comp) tome_buf_appendf(&b, "| %s | %s | %zu | %zu |\n", r->items[i].title, r->items[i].severity, ok, bad);
        else tome_buf_appendf(&b, "| %s | %zu | %zu |\n", r->items[i].title, ok, bad);
    }
    for (size_t i = 0; i < r->n_items; i++) {
        const tome_report_item *it = &r->items[i];
        tome_buf_appendf(&b, "\n## %s\n\n> ", it->title);
        for (const char *q = it->question; *q; q++) q[0] == '\n' ? tome_buf_appendf(&b, "\n> ") : tome_buf_putc(&b, *q);
        tome_buf_appendf(&b, "\n\n%s\n", it->answer && *it->answer ? it->answer : "*(no answer)*");
        if (it->n_cites) tome_buf_appendf(&b, "\nCitations:\n\n");
        for (size_t k = 0; k < it->n_cites; k++) {
            const tome_citation *c = &it->cites[k];
            if (c->valid) tome_buf_appendf(&b, "- `%s` (valid)\n\n```\n%s```\n", c->text, c->lines ? c->lines : "");
            else tome_buf_appendf(&b, "- `%s` **invalid**: %s\n", c->text, c->reason ? c->reason : "");
        }
    }
    tome_status st = write_buf(path, &b);
    tome_buf_free(&b);
    return st;
}

tome_status tome_report_render_html(const tome_report *r, const char *path)
{
    tome_buf b = {0};
    int comp = !strcmp(r->task, "compliance");
    tome_buf_appendf(&b, "<!DOCTYPE html>\n" REPORT_MARK "\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>");
    esc(&b, r->title, (size_t)-1);
    tome_buf_appendf(&b,
                     "</title>\n<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.45}"
                     "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}"
                     "pre{background:#f6f6f6;padding:.6em;overflow-x:auto}.bad{color:#b00;font-weight:bold}"
                     ".ok{color:#070}.sev-high{background:#f8d0d0}.sev-medium{background:#fbe7c0}"
                     ".sev-low{background:#fdf7c8}.sev-none{background:#d8f0d8}blockquote{color:#555}"
                     ".answer{white-space:pre-wrap}</style></head><body>\n<h1>");
    esc(&b, r->title, (size_t)-1);
    tome_buf_appendf(&b, "</h1>\n<p>Task: <b>");
    esc(&b, r->task, (size_t)-1);
    tome_buf_appendf(&b, "</b>. Sources: ");
    esc(&b, r->sources, (size_t)-1);
    tome_buf_appendf(&b, ". Model: ");
    esc(&b, r->model, (size_t)-1);
    tome_buf_appendf(&b, ".</p>\n<h2>Findings</h2>\n<table><tr><th>item</th>%s<th>valid citations</th><th>invalid "
                         "citations</th></tr>\n",
                     comp ? "<th>severity</th>" : "");
    for (size_t i = 0; i < r->n_items; i++) {
        size_t ok, bad;
        counts(&r->items[i], &ok, &bad);
        tome_buf_appendf(&b, "<tr><td><a href=\"#item-%zu\">", i + 1);
        esc(&b, r->items[i].title, (size_t)-1);
        tome_buf_appendf(&b, "</a></td>");
        if (comp) tome_buf_appendf(&b, "<td class=\"sev-%s\">%s</td>", r->items[i].severity, r->items[i].severity);
        tome_buf_appendf(&b, "<td class=\"ok\">%zu</td><td%s>%zu</td></tr>\n", ok, bad ? " class=\"bad\"" : "", bad);
    }
    tome_buf_appendf(&b, "</table>\n");
    for (size_t i = 0; i < r->n_items; i++) {
        const tome_report_item *it = &r->items[i];
        tome_buf_appendf(&b, "<h2 id=\"item-%zu\">", i + 1);
        esc(&b, it->title, (size_t)-1);
        tome_buf_appendf(&b, "</h2>\n<blockquote>");
        esc(&b, it->question, (size_t)-1);
        tome_buf_appendf(&b, "</blockquote>\n<div class=\"answer\">");
        const char *a = it->answer ? it->answer : "";
        if (!*a) tome_buf_appendf(&b, "<i>(no answer)</i>");
        size_t pos = 0;
        for (size_t k = 0; k < it->n_cites; k++) {
            const tome_citation *c = &it->cites[k];
            if (c->offset < pos || c->offset + c->length > strlen(a)) continue;
            esc(&b, a + pos, c->offset - pos);
            if (c->valid) tome_buf_appendf(&b, "<a href=\"#cite-%zu-%zu\" class=\"ok\">", i + 1, k + 1);
            else tome_buf_appendf(&b, "<span class=\"bad\" title=\"invalid citation\">");
            esc(&b, a + c->offset, c->length); /* as the answer wrote it */
            tome_buf_appendf(&b, c->valid ? "</a>" : "</span>");
            pos = c->offset + c->length;
        }
        esc(&b, a + pos, (size_t)-1);
        tome_buf_appendf(&b, "</div>\n");
        for (size_t k = 0; k < it->n_cites; k++) {
            const tome_citation *c = &it->cites[k];
            if (c->valid) {
                tome_buf_appendf(&b, "<p id=\"cite-%zu-%zu\"><code>", i + 1, k + 1);
                esc(&b, c->text, (size_t)-1);
                tome_buf_appendf(&b, "</code></p><pre>");
                esc(&b, c->lines ? c->lines : "", (size_t)-1);
                tome_buf_appendf(&b, "</pre>\n");
            } else {
                tome_buf_appendf(&b, "<p class=\"bad\"><code>");
                esc(&b, c->text, (size_t)-1);
                tome_buf_appendf(&b, "</code> is not in the pack: ");
                esc(&b, c->reason ? c->reason : "", (size_t)-1);
                tome_buf_appendf(&b, "</p>\n");
            }
        }
    }
    tome_buf_appendf(&b, "<hr><p><small>Generated by tome. Citations were checked against the pack; the content of "
                         "the answers is the model's.</small></p>\n</body></html>\n");
    tome_status st = write_buf(path, &b);
    tome_buf_free(&b);
    return st;
}

void tome_report_clear(tome_report *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n_items; i++) {
        tome_report_item *it = &r->items[i];
        free(it->title), free(it->question), free(it->answer), free(it->severity);
        tome_citations_free(it->cites, it->n_cites);
    }
    free(r->items);
    free(r->task), free(r->title), free(r->sources), free(r->model);
    memset(r, 0, sizeof *r);
}
