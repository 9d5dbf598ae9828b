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
    size_t i = 0;
    while (i < len) {
        if (!path_char((unsigned char)a[i]) || (i > 0 && path_char((unsigned char)a[i - 1]))) {
            i++;
            continue;
        }
        size_t s = i;
        int has_sep = 0;
        while (i < len && path_char((unsigned char)a[i])) has_sep |= a[i] == '/' || a[i] == '.', i++;
        size_t e = i;
        /* a trailing '.' or '-' is punctuation, not part of the path */
        if (!(i < len && a[i] == ':' && i + 1 < len && isdigit((unsigned char)a[i + 1])) || !has_sep) continue;
        size_t j = i + 1;
        while (j < len && isdigit((unsigned char)a[j])) j++;
        if (j + 1 < len && a[j] == '-' && isdigit((unsigned char)a[j + 1])) {
            j++;
            while (j < len && isdigit((unsigned char)a[j])) j++;
        }
        (void)e;
        if (n == cap) {
            cap = cap ? 2 * cap : 8;
            tome_citation *nv = realloc(v, cap * sizeof *nv);
            if (!nv) {
                tome_citations_free(v, n);
                return tome_set_error(TOME_ERR_NOMEM, "out of memory");
            }
            v = nv;
        }
        tome_citation *c = &v[n];
        memset(c, 0, sizeof *c);
        c->offset = s;
        c->text = strndup(a + s, j - s);
        if (!c->text) {
            tome_citations_free(v, n);
            return tome_set_error(TOME_ERR_NOMEM, "out of memory");
        }
        n++;
        if (pack) {
            char *lines = NULL;
            size_t ll = 0;
            tome_status st = tome_pack_cite(pack, c->text, &lines, &ll);
            if (st == TOME_OK) {
                c->valid = 1;
                c->lines = lines;
            } else if (st == TOME_ERR_NOT_FOUND || st == TOME_ERR_INVALID_ARG) {
                c->reason = strdup(tome_last_error());
            } else {
                tome_citations_free(v, n);
                return st;
            }
        }
        i = j;
    }
    *out = v, *n_out = n;
    return TOME_OK;
}
