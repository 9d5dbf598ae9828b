/*
 * model/chat.c — the prompt tail of a question over a pack and the citation
 * scanner (tome/chat.h). The scanner is a hand-written pass over the answer:
 * a candidate is a maximal run of path characters [A-Za-z0-9_./+@#=-] that
 * contains '/' or '.', followed by ':' and digits, optionally '-' and digits.
 * Checking is delegated to tome_pack_cite, the pack's own checker.
 */
#include "tome/chat.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/error_impl.h"
#include "ingest/unicode_impl.h"
#include "ingest/ingest_impl.h"

const char *const TOME_CHAT_SYSTEM =
    "You are tome, a careful reviewer of code repositories and document archives. The user's files were given "
    "above, each block starting with its path. Answer from those files only. Support every claim with a citation "
    "of the form path:line or path:first-last, using the paths and original line numbers exactly as they appear "
    "above. If the files do not contain the answer, say so.";

tome_status tome_chat_tail(const tome_tokenizer_t *tok, const char *system, const char *question, tome_tokens_t *out)
{
    tome_encode_opts sp = {.allow_special = 1}, plain = {0};
    static const char h1[] = "<|eot|><|header_start|>system<|header_end|>\n\n";
    static const char h2[] = "<|eot|><|header_start|>user<|header_end|>\n\n";
    static const char h3[] = "<|eot|><|header_start|>assistant<|header_end|>\n\n";
    if (!system) system = TOME_CHAT_SYSTEM;
    TOME_FORWARD(tome_tokenizer_encode(tok, h1, sizeof h1 - 1, &sp, out));
    /* user text never turns into special tokens */
    TOME_FORWARD(tome_tokenizer_encode(tok, system, strlen(system), &plain, out));
    TOME_FORWARD(tome_tokenizer_encode(tok, h2, sizeof h2 - 1, &sp, out));
    TOME_FORWARD(tome_tokenizer_encode(tok, question, strlen(question), &plain, out));
    return tome_tokenizer_encode(tok, h3, sizeof h3 - 1, &sp, out);
}

static int path_char(unsigned char c)
{
    return isalnum(c) || c == '_' || c == '.' || c == '/' || c == '-' || c == '+' || c == '@' || c == '#' ||
           c == '=' || c >= 0x80;
}

/* path character at a[i]: also the '!' of an archive member path "x.zip!/y" */
static int path_char_at(const char *a, size_t len, size_t i)
{
    return path_char((unsigned char)a[i]) || (a[i] == '!' && i + 1 < len && a[i + 1] == '/');
}

/* The pack's paths (raw and escaped), sorted, for exact look-ups of the
 * candidate starts of a citation. */
typedef struct pathset {
    char **v;
    size_t n;
} pathset;

static int cmp_cstr(const void *x, const void *y) { return strcmp(*(char *const *)x, *(char *const *)y); }

static void pathset_free(pathset *ps)
{
    for (size_t i = 0; i < ps->n; i++) free(ps->v[i]);
    free(ps->v);
    memset(ps, 0, sizeof *ps);
}

static tome_status pathset_build(tome_pack_t *p, pathset *ps)
{
    size_t nf = tome_pack_n_files(p);
    memset(ps, 0, sizeof *ps);
    if (!(ps->v = calloc(2 * nf + 1, sizeof *ps->v))) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < nf; i++) {
        tome_pack_file f;
        if (tome_pack_get_file(p, i, &f) != TOME_OK || !f.path) continue;
        tome_buf b = {0};
        if (!(ps->v[ps->n] = strdup(f.path))) goto nomem;
        ps->n++;
        if (tome_path_escape(f.path, &b) == TOME_OK && b.data && strcmp(b.data, f.path)) {
            ps->v[ps->n] = strndup(b.data, b.len);
            if (!ps->v[ps->n]) {
                tome_buf_free(&b);
                goto nomem;
            }
            ps->n++;
        }
        tome_buf_free(&b);
    }
    qsort(ps->v, ps->n, sizeof *ps->v, cmp_cstr);
    return TOME_OK;
nomem:
    pathset_free(ps);
    return tome_set_error(TOME_ERR_NOMEM, "out of memory");
}

/* Whether s[0..n) is a path of the pack, or such a path + "#page=N". */
static int pathset_has(const pathset *ps, const char *s, size_t n)
{
    for (int pass = 0; pass < 2; pass++) {
        size_t lo = 0, hi = ps->n;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            const char *v = ps->v[mid];
            size_t vl = strlen(v);
            int c = memcmp(s, v, n < vl ? n : vl);
            if (c == 0) c = n < vl ? -1 : n > vl;
            if (c == 0) return 1;
            if (c < 0) hi = mid;
            else lo = mid + 1;
        }
        /* strip a trailing "#page=N" and try again */
        size_t d = n;
        while (d > 0 && isdigit((unsigned char)s[d - 1])) d--;
        if (pass || d == n || d < 6 || memcmp(s + d - 6, "#page=", 6)) break;
        n = d - 6;
    }
    return 0;
}

void tome_citations_free(tome_citation *c, size_t n)
{
    if (!c) return;
    for (size_t i = 0; i < n; i++) free(c[i].text), free(c[i].reason), free(c[i].lines);
    free(c);
}

tome_status tome_chat_citations(tome_pack_t *pack, const char *a, size_t len, tome_citation **out, size_t *n_out)
{
    *out = NULL, *n_out = 0;
    tome_citation *v = NULL;
    size_t n = 0, cap = 0;
    size_t i = 0, prev_end = 0;
    pathset ps = {0};
    if (pack) TOME_FORWARD(pathset_build(pack, &ps));
    tome_status st = TOME_OK;
    while (i < len) {
        if (!path_char_at(a, len, i) || (i > 0 && path_char_at(a, len, i - 1))) {
            i++;
            continue;
        }
        size_t s = i;
        int has_sep = 0;
        while (i < len && path_char_at(a, len, i)) has_sep |= a[i] == '/' || a[i] == '.', i++;
        if (!(i < len && a[i] == ':' && i + 1 < len && isdigit((unsigned char)a[i + 1]))) continue;
        size_t colon = i;
        /* The run of path characters is the citation's path unless a longer
         * text before the colon names a file of the pack exactly: paths with
         * spaces or ':' ("my dir/a b.txt:3"), archive members
         * ("x.zip!/dir/f.txt:3"), or a run glued to punctuation such as a
         * curly quote ("“src/a.c:3”"). The longest such match wins; the
         * search stays on the line and within 1 KiB. */
        int found = 0;
        if (pack) {
            size_t lim = colon > 1024 ? colon - 1024 : 0;
            if (lim < prev_end) lim = prev_end;
            for (size_t k = colon; k-- > lim && a[k] != '\n';) {
                if (((unsigned char)a[k] & 0xC0) == 0x80 || isspace((unsigned char)a[k])) continue;
                if (pathset_has(&ps, a + k, colon - k)) s = k, found = 1;
            }
        }
        if (!has_sep && !found) continue;
        size_t j = colon + 1;
        while (j < len && isdigit((unsigned char)a[j])) j++;
        size_t dash = 0, dash_len = 0;
        if (j + 1 < len && a[j] == '-' && isdigit((unsigned char)a[j + 1])) dash = j, dash_len = 1;
        /* an en dash (U+2013), as models often write ranges */
        else if (j + 3 < len && !memcmp(a + j, "\xE2\x80\x93", 3) && isdigit((unsigned char)a[j + 3]))
            dash = j, dash_len = 3;
        if (dash_len) {
            j += dash_len;
            while (j < len && isdigit((unsigned char)a[j])) j++;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 8;
            tome_citation *nv = realloc(v, cap * sizeof *nv);
            if (!nv) {
                st = tome_set_error(TOME_ERR_NOMEM, "out of memory");
                break;
            }
            v = nv;
        }
        tome_citation *c = &v[n];
        memset(c, 0, sizeof *c);
        c->offset = s;
        c->length = j - s;
        /* the text as found, with an en dash written as '-' */
        tome_buf t = {0};
        if (dash_len) {
            tome_buf_append(&t, a + s, dash - s);
            tome_buf_append(&t, "-", 1);
            tome_buf_append(&t, a + dash + dash_len, j - dash - dash_len);
        } else {
            tome_buf_append(&t, a + s, j - s);
        }
        c->text = t.data ? strndup(t.data, t.len) : NULL;
        tome_buf_free(&t);
        if (!c->text) {
            st = tome_set_error(TOME_ERR_NOMEM, "out of memory");
            break;
        }
        n++;
        if (pack) {
            char *lines = NULL;
            size_t ll = 0;
            tome_status cs = tome_pack_cite(pack, c->text, &lines, &ll);
            if (cs == TOME_OK) {
                c->valid = 1;
                c->lines = lines;
            } else if (cs == TOME_ERR_NOT_FOUND || cs == TOME_ERR_INVALID_ARG) {
                c->reason = strdup(tome_last_error());
            } else {
                st = cs;
                break;
            }
        }
        i = prev_end = j;
    }
    pathset_free(&ps);
    if (st != TOME_OK) {
        tome_citations_free(v, n);
        return st;
    }
    *out = v, *n_out = n;
    return TOME_OK;
}

tome_status tome_chat_check_vocab(const tome_model_t *m, const char *model_dir, const tome_tokenizer_t *tok,
                                  const char *tok_path)
{
    int64_t mv = tome_model_get_config(m)->vocab_size;
    size_t tv = tome_tokenizer_vocab_size(tok);
    if ((int64_t)tv > mv)
        return tome_set_error(TOME_ERR_MISMATCH,
                              "tokenizer%s%s has %zu ids but model %s has vocab_size %lld: give the model's own "
                              "tokenizer with -t",
                              tok_path ? " " : "", tok_path ? tok_path : "", tv, model_dir ? model_dir : "(given)",
                              (long long)mv);
    return TOME_OK;
}

uint64_t tome_chat_pack_budget(const tome_model_t *m, uint64_t rest)
{
    int64_t mp = tome_model_get_config(m)->max_position_embeddings;
    if (mp <= 0) return UINT64_MAX;
    return (uint64_t)mp > rest ? (uint64_t)mp - rest : 0;
}

tome_status tome_chat_check_length(const tome_model_t *m, const char *model_dir, const char *pack_desc,
                                   uint64_t pack_tokens, uint64_t rest)
{
    int64_t mp = tome_model_get_config(m)->max_position_embeddings;
    if (mp > 0 && pack_tokens + rest > (uint64_t)mp)
        return tome_set_error(TOME_ERR_LIMIT,
                              "%s holds %llu tokens; with the question and the answer (%llu) the prompt needs %llu "
                              "positions, over model %s's context of %lld (max_position_embeddings): pack with "
                              "--budget %lld or less, or ask for fewer answer tokens (-n)",
                              pack_desc, (unsigned long long)pack_tokens, (unsigned long long)rest,
                              (unsigned long long)(pack_tokens + rest), model_dir ? model_dir : "(given)",
                              (long long)mp, (long long)((uint64_t)mp > rest ? (uint64_t)mp - rest : 0));
    return TOME_OK;
}

char *tome_chat_clean_utf8(const char *s, size_t n)
{
    tome_buf b = {0};
    tome_status st = tome_buf_reserve(&b, n + 1);
    for (size_t i = 0; i < n && st == TOME_OK;) {
        uint32_t cp;
        size_t l = tome_utf8_decode((const uint8_t *)s + i, n - i, &cp);
        if (l == 0 || cp == 0) st = tome_buf_append(&b, "\xEF\xBF\xBD", 3);
        else st = tome_buf_append(&b, s + i, l);
        i += l ? l : 1;
    }
    if (st == TOME_OK && !b.data) st = tome_buf_append(&b, "", 0);
    if (st != TOME_OK || !b.data) {
        tome_buf_free(&b);
        return NULL;
    }
    return b.data;
}
