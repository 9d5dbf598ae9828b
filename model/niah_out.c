/*
 * model/niah_out.c — the NIAH grid written out: JSON (meta + one object per
 * cell; a multivalue cell also lists its expected_values), CSV (one row per
 * cell; multivalue: expected = the values joined by ";", right / asked =
 * values found / values), and an SVG heatmap (rows = context lengths,
 * columns = needle depths, colour red → yellow → green by score, the score
 * printed in each cell, labelled axes) that opens in any browser. All files
 * are written atomically; text is built in a tome_buf first.
 */
#include "core/core_impl.h"
#include "core/error_impl.h"
#include "ingest/unicode_impl.h"
#include "tome/niah.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tome_niah_parse_tokens(const char *s, int64_t *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || !(v > 0)) return -1; /* NaN too */
    if (*end == 'k' || *end == 'K') v *= 1024, end++;
    else if (*end == 'm' || *end == 'M') v *= 1024 * 1024, end++;
    if (*end) return -1;
    if (v > 1e12) return -1;
    *out = (int64_t)llround(v);
    return 0;
}

void tome_niah_format_tokens(int64_t n, char *buf, size_t cap)
{
    if (n >= 1048576 && n % 1048576 == 0) snprintf(buf, cap, "%lldM", (long long)(n / 1048576));
    else if (n >= 1048576 && (n * 10) % 1048576 == 0) snprintf(buf, cap, "%.1fM", (double)n / 1048576);
    else if (n >= 1024 && n % 1024 == 0) snprintf(buf, cap, "%lldK", (long long)(n / 1024));
    else snprintf(buf, cap, "%lld", (long long)n);
}

static tome_status write_all(const char *path, const tome_buf *b)
{
    tome_atomic_file *f = NULL;
    TOME_FORWARD(tome_atomic_open(path, &f));
    tome_status st = tome_atomic_write(f, b->data ? b->data : "", b->len);
    if (st != TOME_OK) {
        tome_atomic_abort(f);
        return st;
    }
    return tome_atomic_commit(f);
}

/* s as valid UTF-8 (NUL-terminated in out): a byte that does not begin a
 * well-formed sequence becomes U+FFFD — paths and a real model's answers may
 * hold any bytes, and JSON strings and XML text must not. With xml, the
 * characters XML 1.0 forbids (controls other than tab/newline/CR, U+FFFE/F)
 * become U+FFFD too. */
static void clean_utf8(const char *s, int xml, tome_buf *out)
{
    static const char repl[] = "\xEF\xBF\xBD";
    size_t n = s ? strlen(s) : 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = tome_utf8_decode((const uint8_t *)s + i, n - i, &cp);
        int bad = l == 0 || (xml && ((cp < 0x20 && cp != 9 && cp != 10 && cp != 13) || cp == 0xFFFE || cp == 0xFFFF));
        if (bad) tome_buf_append(out, repl, 3);
        else tome_buf_append(out, s + i, l);
        i += l ? l : 1;
    }
    tome_buf_append(out, "", 1);
}

static json_t *json_str(const char *s)
{
    tome_buf u = {0};
    clean_utf8(s, 0, &u);
    json_t *j = json_string(u.data ? u.data : "");
    tome_buf_free(&u);
    return j;
}

tome_status tome_niah_write_json(const tome_niah_result *r, const char *path)
{
    json_t *o = json_object(), *cells = json_array();
    if (!o || !cells) {
        json_decref(o), json_decref(cells);
        return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    }
    json_object_set_new(o, "model", json_str(r->model));
    json_object_set_new(o, "haystack", json_str(r->haystack));
    json_object_set_new(o, "variant", json_string(r->variant));
    json_object_set_new(o, "scoring", json_string(r->scoring));
    json_object_set_new(o, "kv", json_string(r->kv));
    json_object_set_new(o, "seconds", json_real(r->seconds));
    json_object_set_new(o, "peak_rss_bytes", json_integer((json_int_t)r->peak_rss));
    double sum = 0;
    size_t n = r->n_lengths * r->n_depths;
    for (size_t i = 0; i < n; i++) {
        const tome_niah_cell *c = &r->cells[i];
        sum += c->score;
        json_t *e = json_object();
        json_object_set_new(e, "length", json_integer(c->length));
        json_object_set_new(e, "depth", json_real(c->depth));
        json_object_set_new(e, "needle_pos", json_integer(c->needle_pos));
        json_object_set_new(e, "score", json_real(c->score));
        json_object_set_new(e, "right", json_integer(c->n_right));
        json_object_set_new(e, "asked", json_integer(c->n_asked));
        json_object_set_new(e, "expected", json_str(c->expected ? c->expected : ""));
        if (c->n_expected > 0) { /* multivalue: every value asked, in needle order */
            json_t *ev = json_array();
            for (int k = 0; k < c->n_expected; k++)
                json_array_append_new(ev, json_str(c->expected_values[k] ? c->expected_values[k] : ""));
            json_object_set_new(e, "expected_values", ev);
        }
        json_object_set_new(e, "answer", json_str(c->answer ? c->answer : ""));
        json_object_set_new(e, "prefill_s", json_real(c->prefill_s));
        json_object_set_new(e, "decode_s", json_real(c->decode_s));
        json_object_set_new(e, "kv_bytes_ram", json_integer((json_int_t)c->kv_bytes_ram));
        json_object_set_new(e, "kv_bytes_disk", json_integer((json_int_t)c->kv_bytes_disk));
        json_array_append_new(cells, e);
    }
    json_object_set_new(o, "mean_score", json_real(n ? sum / (double)n : 0));
    json_object_set_new(o, "cells", cells);
    char *text = json_dumps(o, JSON_INDENT(1) | JSON_ENSURE_ASCII);
    json_decref(o);
    if (!text) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    tome_buf b = {0};
    tome_status st = tome_buf_append(&b, text, strlen(text));
    free(text);
    if (st == TOME_OK) st = tome_buf_append(&b, "\n", 1);
    if (st == TOME_OK) st = write_all(path, &b);
    tome_buf_free(&b);
    return st;
}

static void csv_field(tome_buf *b, const char *s)
{
    tome_buf_putc(b, '"');
    for (; s && *s; s++) {
        if (*s == '"') tome_buf_putc(b, '"');
        tome_buf_putc(b, *s);
    }
    tome_buf_putc(b, '"');
}

tome_status tome_niah_write_csv(const tome_niah_result *r, const char *path)
{
    tome_buf b = {0};
    tome_buf_appendf(&b, "length,depth,needle_pos,score,right,asked,expected,answer,prefill_s,decode_s,kv_bytes_ram,"
                         "kv_bytes_disk\n");
    for (size_t i = 0; i < r->n_lengths * r->n_depths; i++) {
        const tome_niah_cell *c = &r->cells[i];
        tome_buf_appendf(&b, "%lld,%.4f,%lld,%.4f,%d,%d,", (long long)c->length, c->depth, (long long)c->needle_pos,
                         c->score, c->n_right, c->n_asked);
        csv_field(&b, c->expected);
        tome_buf_putc(&b, ',');
        csv_field(&b, c->answer);
        tome_buf_appendf(&b, ",%.3f,%.3f,%llu,%llu\n", c->prefill_s, c->decode_s,
                         (unsigned long long)c->kv_bytes_ram, (unsigned long long)c->kv_bytes_disk);
    }
    tome_status st = b.data ? write_all(path, &b) : tome_set_error(TOME_ERR_NOMEM, "out of memory");
    tome_buf_free(&b);
    return st;
}

/* red (0) → yellow (0.5) → green (1) */
static void score_rgb(double s, int *r, int *g, int *b)
{
    if (s < 0) s = 0;
    if (s > 1) s = 1;
    if (s < 0.5) *r = 215, *g = (int)(48 + (s / 0.5) * (200 - 48)), *b = 39;
    else *r = (int)(215 - ((s - 0.5) / 0.5) * (215 - 26)), *g = (int)(200 - ((s - 0.5) / 0.5) * (200 - 150)), *b = 39 + (int)(((s - 0.5) / 0.5) * 41);
}

static void xml_text(tome_buf *b, const char *s)
{
    tome_buf u = {0};
    clean_utf8(s, 1, &u);
    for (const char *p = u.data; p && *p; p++) {
        if (*p == '<') tome_buf_appendf(b, "&lt;");
        else if (*p == '>') tome_buf_appendf(b, "&gt;");
        else if (*p == '&') tome_buf_appendf(b, "&amp;");
        else if (*p == '"') tome_buf_appendf(b, "&quot;");
        else tome_buf_putc(b, *p);
    }
    tome_buf_free(&u);
}

tome_status tome_niah_write_svg(const tome_niah_result *r, const char *path)
{
    const int cw = 64, ch = 30, left = 96, top = 64, right = 120, bottom = 70;
    int W = left + (int)r->n_depths * cw + right;
    if (W < 600) W = 600; /* room for the title */
    int Hh = top + (int)r->n_lengths * ch + bottom;
    if (Hh < top + 11 * 12 + 24) Hh = top + 11 * 12 + 24; /* room for the legend */
    tome_buf b = {0};
    tome_buf_appendf(&b,
                     "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                     "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                     "font-family=\"DejaVu Sans, Arial, sans-serif\">\n"
                     "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
                     W, Hh, W, Hh);
    tome_buf_appendf(&b, "<text x=\"%d\" y=\"24\" font-size=\"15\" font-weight=\"bold\">Needle in a haystack: ",
                     left);
    xml_text(&b, r->variant);
    tome_buf_appendf(&b, ", KV %s, %s match</text>\n<text x=\"%d\" y=\"42\" font-size=\"11\" fill=\"#444\">model ",
                     r->kv, r->scoring, left);
    xml_text(&b, r->model);
    tome_buf_appendf(&b, "</text>\n");
    for (size_t i = 0; i < r->n_lengths; i++) {
        char lab[32];
        tome_niah_format_tokens(r->lengths[i], lab, sizeof lab);
        int y = top + (int)i * ch;
        tome_buf_appendf(&b, "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"end\">%s</text>\n", left - 8,
                         y + ch / 2 + 4, lab);
        for (size_t j = 0; j < r->n_depths; j++) {
            const tome_niah_cell *c = &r->cells[i * r->n_depths + j];
            int R, G, B2;
            score_rgb(c->score, &R, &G, &B2);
            int x = left + (int)j * cw;
            tome_buf_appendf(&b,
                             "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"rgb(%d,%d,%d)\" "
                             "stroke=\"white\"><title>length %lld, depth %.4g%%: score %.2f, ",
                             x, y, cw, ch, R, G, B2, (long long)c->length, 100 * c->depth, c->score);
            if (c->n_expected > 0) tome_buf_appendf(&b, "%d of %d values, ", c->n_right, c->n_expected);
            tome_buf_appendf(&b, "answer '");
            xml_text(&b, c->answer);
            tome_buf_appendf(&b, "'</title></rect>\n<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">"
                                 "%.2f</text>\n",
                             x + cw / 2, y + ch / 2 + 4, c->score);
        }
    }
    int yb = top + (int)r->n_lengths * ch;
    for (size_t j = 0; j < r->n_depths; j++)
        tome_buf_appendf(&b, "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\">%.4g%%</text>\n",
                         left + (int)j * cw + cw / 2, yb + 16, 100 * r->depths[j]);
    tome_buf_appendf(&b,
                     "<text x=\"%d\" y=\"%d\" font-size=\"13\" text-anchor=\"middle\">needle depth (%% of the "
                     "context)</text>\n"
                     "<text x=\"18\" y=\"%d\" font-size=\"13\" text-anchor=\"middle\" transform=\"rotate(-90 18 %d)\">"
                     "context length (tokens)</text>\n",
                     left + (int)r->n_depths * cw / 2, yb + 40, top + (int)r->n_lengths * ch / 2,
                     top + (int)r->n_lengths * ch / 2);
    /* legend */
    int lx = left + (int)r->n_depths * cw + 30;
    for (int k = 0; k <= 10; k++) {
        int R, G, B2;
        score_rgb(1.0 - k / 10.0, &R, &G, &B2);
        tome_buf_appendf(&b, "<rect x=\"%d\" y=\"%d\" width=\"18\" height=\"12\" fill=\"rgb(%d,%d,%d)\"/>\n", lx,
                         top + k * 12, R, G, B2);
    }
    tome_buf_appendf(&b,
                     "<text x=\"%d\" y=\"%d\" font-size=\"11\">1.0</text>\n<text x=\"%d\" y=\"%d\" "
                     "font-size=\"11\">0.0</text>\n<text x=\"%d\" y=\"%d\" font-size=\"11\">score</text>\n</svg>\n",
                     lx + 22, top + 10, lx + 22, top + 10 * 12 + 10, lx, top - 6);
    tome_status st = b.data ? write_all(path, &b) : tome_set_error(TOME_ERR_NOMEM, "out of memory");
    tome_buf_free(&b);
    return st;
}
