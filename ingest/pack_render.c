/*
 * ingest/pack_render.c — the text renderings of a pack: xml, markdown, plain.
 *
 * A pack's text is a sequence of blocks: open, tree, one block per rendered
 * file (full, outline or alias), close. Every block starts with a
 * punctuation character ('<', '#', '=') and ends with '\n', which makes
 * every block boundary a safe split for the Llama 4 pre-tokenizer: the
 * builder tokenizes blocks independently (and in parallel) and the
 * concatenated ids equal the ids of the whole text (checked by
 * tome_tokenizer_safe_split in the builder and by tests).
 *
 *   xml:       <pack tool="tome" format="1">      markdown: # Repository pack (tome)
 *              <tree> ... </tree>                            ## Files + fenced tree
 *              <file path="a.c" lines="12">                  ## File: a.c (12 lines)
 *              ...original lines...                          ```` fenced lines ````
 *              </file>
 *              <file path="b.c" alias-of="a.c"/>             ## File: b.c = a.c
 *              </pack>
 *   plain:     ==== pack (tome) ==== / ==== file: a.c (12 lines) ==== / ==== end ====
 *
 * File contents are not escaped (the model sees the bytes of the file); paths
 * are escaped with tome_path_escape and, in xml, as attribute values.
 * Line-number prefixes are "%*u| " with the width of the file's line count;
 * outline blocks always carry them. Page anchors of documents render as a
 * structural line before the first line of the page.
 */
#include <stdlib.h>
#include <string.h>

#include "ingest/ingest_impl.h"
#include "ingest/pack_impl.h"

tome_status tome_pack_display_path(tome_buf *out, const char *path, int xml)
{
    tome_buf esc = {0};
    TOME_FORWARD(tome_path_escape(path, &esc));
    tome_status st = TOME_OK;
    if (!xml) {
        st = tome_buf_append(out, esc.data ? esc.data : "", esc.len);
    } else {
        for (size_t i = 0; i < esc.len && !st; i++) {
            char c = esc.data[i];
            switch (c) {
            case '&': st = tome_buf_append(out, "&amp;", 5); break;
            case '<': st = tome_buf_append(out, "&lt;", 4); break;
            case '>': st = tome_buf_append(out, "&gt;", 4); break;
            case '"': st = tome_buf_append(out, "&quot;", 6); break;
            default: st = tome_buf_putc(out, c);
            }
        }
    }
    tome_buf_free(&esc);
    return st;
}

tome_status tome_pack_render_open(tome_buf *out, uint32_t fmt, uint64_t n_files)
{
    (void)n_files; /* not rendered: the header stays stable when files are added */
    switch (fmt) {
    case TOME_PACK_XML: return tome_buf_appendf(out, "<pack tool=\"tome\" format=\"%u\">\n", TOME_PACK_VERSION);
    case TOME_PACK_MARKDOWN: return tome_buf_appendf(out, "# Repository pack (tome)\n\n");
    default: return tome_buf_appendf(out, "==== pack (tome) ====\n");
    }
}

tome_status tome_pack_render_close(tome_buf *out, uint32_t fmt)
{
    switch (fmt) {
    case TOME_PACK_XML: return tome_buf_appendf(out, "</pack>\n");
    case TOME_PACK_MARKDOWN: return tome_buf_appendf(out, "## End of pack\n");
    default: return tome_buf_appendf(out, "==== end of pack ====\n");
    }
}

/* Splits path into components at '/' (an archive member "a.zip!/x" gives
 * "a.zip!" and "x"). Returns the number of components, at most max. */
static size_t split_path(const char *p, const char **comp, size_t *clen, size_t max)
{
    size_t n = 0;
    const char *s = p;
    for (;;) {
        const char *slash = strchr(s, '/');
        size_t len = slash ? (size_t)(slash - s) : strlen(s);
        if (len && n < max) {
            comp[n] = s;
            clen[n] = len;
            n++;
        }
        if (!slash) break;
        s = slash + 1;
    }
    return n;
}

static tome_status put_name(tome_buf *out, uint32_t fmt, const char *s, size_t n)
{
    char *tmp = strndup(s, n);
    if (!tmp) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    tome_status st = tome_pack_display_path(out, tmp, fmt == TOME_PACK_XML);
    free(tmp);
    return st;
}

#define MAX_DEPTH 256

/* Longest run of backticks in s (NULL: 0). */
static size_t backtick_run(const char *s)
{
    size_t best = 0, run = 0;
    for (; s && *s; s++) {
        run = *s == '`' ? run + 1 : 0;
        if (run > best) best = run;
    }
    return best;
}

tome_status tome_pack_render_tree(tome_buf *out, uint32_t fmt, const tome_pack_entry *all, const size_t *order,
                                  size_t n)
{
    /* markdown: the tree's fence is longer than any backtick run in a path
     * or reason, so a file named "```" cannot close it early */
    size_t fence = 0;
    if (fmt == TOME_PACK_MARKDOWN) {
        for (size_t i = 0; i < n; i++) {
            size_t a = backtick_run(all[order[i]].path), r = backtick_run(all[order[i]].reason);
            if (a > fence) fence = a;
            if (r > fence) fence = r;
        }
        fence = fence < 3 ? 3 : fence + 1;
    }
    switch (fmt) {
    case TOME_PACK_XML: TOME_FORWARD(tome_buf_appendf(out, "<tree>\n")); break;
    case TOME_PACK_MARKDOWN:
        TOME_FORWARD(tome_buf_appendf(out, "## Files\n\n"));
        for (size_t k = 0; k < fence; k++) TOME_FORWARD(tome_buf_putc(out, '`'));
        TOME_FORWARD(tome_buf_putc(out, '\n'));
        break;
    default: TOME_FORWARD(tome_buf_appendf(out, "==== files ====\n"));
    }
    const char *prev[MAX_DEPTH], *cur[MAX_DEPTH];
    size_t prevl[MAX_DEPTH], curl[MAX_DEPTH], np = 0;
    int xml = fmt == TOME_PACK_XML;
    for (size_t i = 0; i < n; i++) {
        const tome_pack_entry *e = &all[order[i]];
        size_t nc = split_path(e->path, cur, curl, MAX_DEPTH);
        if (!nc) continue;
        size_t common = 0; /* leading directories shared with the previous path */
        while (common + 1 < nc && common + 1 < np && curl[common] == prevl[common] &&
               !memcmp(cur[common], prev[common], curl[common]))
            common++;
        for (size_t d = common; d + 1 < nc; d++) {
            for (size_t k = 0; k < d; k++) TOME_FORWARD(tome_buf_append(out, "  ", 2));
            TOME_FORWARD(put_name(out, fmt, cur[d], curl[d]));
            TOME_FORWARD(tome_buf_append(out, "/\n", 2));
        }
        for (size_t k = 0; k + 1 < nc; k++) TOME_FORWARD(tome_buf_append(out, "  ", 2));
        TOME_FORWARD(put_name(out, fmt, cur[nc - 1], curl[nc - 1]));
        switch (e->status) {
        case TOME_FILE_FULL: break;
        case TOME_FILE_ALIAS:
            TOME_FORWARD(tome_buf_append(out, " [same as ", 10));
            TOME_FORWARD(tome_pack_display_path(out, all[e->alias_of].path, xml));
            TOME_FORWARD(tome_buf_append(out, "]", 1));
            break;
        case TOME_FILE_OUTLINE: TOME_FORWARD(tome_buf_append(out, " [outline]", 10)); break;
        case TOME_FILE_LISTED: TOME_FORWARD(tome_buf_append(out, " [listed only]", 14)); break;
        default:
            TOME_FORWARD(tome_buf_append(out, " [skipped: ", 11));
            TOME_FORWARD(tome_pack_display_path(out, e->reason ? e->reason : "", xml));
            TOME_FORWARD(tome_buf_append(out, "]", 1));
        }
        TOME_FORWARD(tome_buf_putc(out, '\n'));
        memcpy(prev, cur, nc * sizeof *cur);
        memcpy(prevl, curl, nc * sizeof *curl);
        np = nc;
    }
    switch (fmt) {
    case TOME_PACK_XML: return tome_buf_appendf(out, "</tree>\n");
    case TOME_PACK_MARKDOWN:
        for (size_t k = 0; k < fence; k++) TOME_FORWARD(tome_buf_putc(out, '`'));
        return tome_buf_appendf(out, "\n\n");
    default: return TOME_OK;
    }
}

static unsigned digits(uint64_t v)
{
    unsigned d = 1;
    while (v >= 10) {
        v /= 10;
        d++;
    }
    return d;
}

/* Longest run of backticks in the lines, for a markdown fence longer than it. */
static size_t max_backticks(const tome_render_file *f)
{
    size_t best = 0;
    for (size_t i = 0; i < f->n; i++) {
        size_t run = 0;
        for (size_t k = 0; k < f->lines[i].len; k++) {
            run = f->lines[i].text[k] == '`' ? run + 1 : 0;
            if (run > best) best = run;
        }
    }
    return best;
}

static tome_status add_run(tome_pack_run **runs, uint32_t *n, uint32_t *cap, uint32_t rline, uint32_t oline,
                           uint32_t prefix)
{
    if (*n && (*runs)[*n - 1].rline + (*runs)[*n - 1].count == rline &&
        (*runs)[*n - 1].oline + (*runs)[*n - 1].count == oline && (*runs)[*n - 1].prefix == prefix) {
        (*runs)[*n - 1].count++;
        return TOME_OK;
    }
    if (*n == *cap) {
        uint32_t nc = *cap ? *cap * 2 : 8;
        tome_pack_run *r = realloc(*runs, nc * sizeof *r);
        if (!r) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
        *runs = r;
        *cap = nc;
    }
    (*runs)[(*n)++] = (tome_pack_run){rline, oline, 1, prefix};
    return TOME_OK;
}

static tome_status render_file(tome_buf *out, uint32_t fmt, const tome_render_file *f, tome_pack_run **runs,
                               uint32_t *n_runs, uint32_t *cap)
{
    uint32_t rline = 0;
    size_t fence = 0;
    switch (fmt) {
    case TOME_PACK_XML:
        TOME_FORWARD(tome_buf_appendf(out, "<file path=\""));
        TOME_FORWARD(tome_pack_display_path(out, f->path, 1));
        TOME_FORWARD(tome_buf_appendf(out, "\"%s%s%s lines=\"%llu\"%s>\n", f->kind ? " kind=\"" : "",
                                      f->kind ? f->kind : "", f->kind ? "\"" : "", (unsigned long long)f->n_lines,
                                      f->status == TOME_FILE_OUTLINE ? " status=\"outline\"" : ""));
        rline = 1;
        break;
    case TOME_PACK_MARKDOWN:
        TOME_FORWARD(tome_buf_appendf(out, "## File: "));
        TOME_FORWARD(tome_pack_display_path(out, f->path, 0));
        TOME_FORWARD(tome_buf_appendf(out, " (%s%s%llu lines%s)\n\n", f->kind ? f->kind : "", f->kind ? ", " : "",
                                      (unsigned long long)f->n_lines,
                                      f->status == TOME_FILE_OUTLINE ? ", outline only" : ""));
        fence = max_backticks(f) + 1;
        if (fence < 3) fence = 3;
        for (size_t k = 0; k < fence; k++) TOME_FORWARD(tome_buf_putc(out, '`'));
        TOME_FORWARD(tome_buf_putc(out, '\n'));
        rline = 3;
        break;
    default:
        TOME_FORWARD(tome_buf_appendf(out, "==== file: "));
        TOME_FORWARD(tome_pack_display_path(out, f->path, 0));
        TOME_FORWARD(tome_buf_appendf(out, " (%s%s%llu lines%s) ====\n", f->kind ? f->kind : "", f->kind ? ", " : "",
                                      (unsigned long long)f->n_lines,
                                      f->status == TOME_FILE_OUTLINE ? ", outline only" : ""));
        rline = 1;
    }
    int numbered = f->line_numbers || f->status == TOME_FILE_OUTLINE;
    unsigned width = digits(f->n_lines);
    size_t ai = 0;
    /* Fast path: unnumbered lines that lie back to back in one buffer (a
     * whole file split at '\n') and no page markers are one copy and one run;
     * the bytes are the same as line by line. */
    int contiguous = !numbered && !f->n_anchors && f->n > 0;
    for (size_t i = 1; contiguous && i < f->n; i++)
        contiguous = f->lines[i].text == f->lines[i - 1].text + f->lines[i - 1].len + 1 &&
                     f->lines[i].oline == f->lines[i - 1].oline + 1;
    if (contiguous) {
        const tome_render_line *last = &f->lines[f->n - 1];
        size_t span = (size_t)(last->text + last->len - f->lines[0].text);
        TOME_FORWARD(tome_buf_reserve(out, span + 1));
        TOME_FORWARD(tome_buf_append(out, f->lines[0].text, span));
        TOME_FORWARD(tome_buf_putc(out, '\n'));
        TOME_FORWARD(add_run(runs, n_runs, cap, rline, f->lines[0].oline, 0));
        (*runs)[*n_runs - 1].count += (uint32_t)(f->n - 1);
        rline += (uint32_t)f->n;
    }
    for (size_t i = 0; i < f->n && !contiguous; i++) {
        const tome_render_line *l = &f->lines[i];
        while (ai < f->n_anchors && f->anchors[ai].oline <= l->oline) {
            const tome_pack_anchor *a = &f->anchors[ai++];
            if (a->kind != TOME_ANCHOR_PAGE || a->oline < l->oline) continue;
            if (fmt == TOME_PACK_XML) TOME_FORWARD(tome_buf_appendf(out, "<page n=\"%u\"/>\n", a->number));
            else TOME_FORWARD(tome_buf_appendf(out, "--- page %u ---\n", a->number));
            rline++;
        }
        size_t before = out->len;
        if (numbered) { /* "%*u| " without printf */
            char num[32];
            unsigned nd = digits(l->oline), w = nd > width ? nd : width;
            uint32_t v = l->oline;
            for (unsigned k = w; k-- > 0;) {
                num[k] = (char)(k >= w - nd ? '0' + v % 10 : ' ');
                if (k >= w - nd) v /= 10;
            }
            num[w] = '|';
            num[w + 1] = ' ';
            TOME_FORWARD(tome_buf_append(out, num, w + 2));
        }
        uint32_t prefix = (uint32_t)(out->len - before);
        TOME_FORWARD(tome_buf_append(out, l->text, l->len));
        TOME_FORWARD(tome_buf_putc(out, '\n'));
        TOME_FORWARD(add_run(runs, n_runs, cap, rline, l->oline, prefix));
        rline++;
    }
    switch (fmt) {
    case TOME_PACK_XML: return tome_buf_appendf(out, "</file>\n");
    case TOME_PACK_MARKDOWN:
        for (size_t k = 0; k < fence; k++) TOME_FORWARD(tome_buf_putc(out, '`'));
        return tome_buf_append(out, "\n\n", 2);
    default: return tome_buf_appendf(out, "==== end of file ====\n");
    }
}

tome_status tome_pack_render_file(tome_buf *out, uint32_t fmt, const tome_render_file *f, tome_pack_run **runs,
                                  uint32_t *n_runs)
{
    *runs = NULL;
    *n_runs = 0;
    uint32_t cap = 0;
    tome_status st = render_file(out, fmt, f, runs, n_runs, &cap);
    if (st) {
        free(*runs);
        *runs = NULL;
        *n_runs = 0;
    } else if (*n_runs && *n_runs < cap) { /* kept per file until the pack is written: no slack */
        tome_pack_run *fit = realloc(*runs, *n_runs * sizeof *fit);
        if (fit) *runs = fit;
    }
    return st;
}

tome_status tome_pack_render_alias(tome_buf *out, uint32_t fmt, const char *path, const char *target)
{
    switch (fmt) {
    case TOME_PACK_XML:
        TOME_FORWARD(tome_buf_appendf(out, "<file path=\""));
        TOME_FORWARD(tome_pack_display_path(out, path, 1));
        TOME_FORWARD(tome_buf_appendf(out, "\" alias-of=\""));
        TOME_FORWARD(tome_pack_display_path(out, target, 1));
        return tome_buf_appendf(out, "\"/>\n");
    case TOME_PACK_MARKDOWN:
        TOME_FORWARD(tome_buf_appendf(out, "## File: "));
        TOME_FORWARD(tome_pack_display_path(out, path, 0));
        TOME_FORWARD(tome_buf_appendf(out, " (same content as "));
        TOME_FORWARD(tome_pack_display_path(out, target, 0));
        return tome_buf_appendf(out, ")\n\n");
    default:
        TOME_FORWARD(tome_buf_appendf(out, "==== file: "));
        TOME_FORWARD(tome_pack_display_path(out, path, 0));
        TOME_FORWARD(tome_buf_appendf(out, " (same content as "));
        TOME_FORWARD(tome_pack_display_path(out, target, 0));
        return tome_buf_appendf(out, ") ====\n");
    }
}
