/*
 * ingest/pack_decode.c — a block's length, line table and edge bytes from
 * its token ids.
 *
 * The builder keeps only ids between reading a file and writing it (the text
 * is their decoding, and the pack stores it as a dictionary of the tokens
 * used: pack_format.c), so a block written needs only its length, line table
 * and first and last bytes from its ids (tome_pack_decode_lines). The table
 * (tome_pack_toktab) holds a byte per vocabulary token: its length (127: look
 * it up) and a "contains a newline" flag, 200 KB for Llama 4, in L2. A token
 * then costs one read of it, and the line table (pack_impl.h: line_off /
 * line_tok) needs no look at the bytes of tokens without a newline; those
 * come from the tokenizer (tome_tokenizer_token_bytes).
 */
#include <stdlib.h>
#include <string.h>

#include "ingest/pack_impl.h"

#define LK_LONG 127  /* length byte: 127 or more (ask the tokenizer) */
#define LK_NL 0x80   /* the token holds a newline */

struct tome_pack_toktab {
    const tome_tokenizer_t *tok;
    uint8_t *lk; /* [n]: length (LK_LONG: 127 or more) | LK_NL */
    size_t n;
};

void tome_pack_toktab_free(tome_pack_toktab *t)
{
    if (!t) return;
    free(t->lk);
    free(t);
}

tome_status tome_pack_toktab_open(const tome_tokenizer_t *tok, tome_pack_toktab **out)
{
    *out = NULL;
    tome_pack_toktab *t = calloc(1, sizeof *t);
    size_t n = tome_tokenizer_vocab_size(tok);
    if (t) t->lk = malloc(n ? n : 1);
    if (!t || !t->lk) {
        tome_pack_toktab_free(t);
        return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        const char *s = tome_tokenizer_token_bytes(tok, (int32_t)i, &len);
        t->lk[i] = (uint8_t)((len < LK_LONG ? len : LK_LONG) | (len && memchr(s, '\n', len) ? LK_NL : 0));
    }
    t->tok = tok;
    t->n = n;
    *out = t;
    return TOME_OK;
}

static inline const char *tok_bytes(const tome_pack_toktab *tt, uint32_t id, size_t *len)
{
    return tome_tokenizer_token_bytes(tt->tok, (int32_t)id, len);
}

typedef struct dec_block {
    uint32_t *line_off, *line_tok;
    size_t len; /* bytes of the block's text */
} dec_block;

static tome_status grow_lines(dec_block *bl, size_t *cap_lines)
{
    *cap_lines *= 2;
    uint32_t *a = realloc(bl->line_off, *cap_lines * sizeof *a);
    if (a) bl->line_off = a;
    uint32_t *c = realloc(bl->line_tok, *cap_lines * sizeof *c);
    if (c) bl->line_tok = c;
    if (!a || !c) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    return TOME_OK;
}

static tome_status decode(const tome_pack_toktab *tt, const int32_t *ids, size_t n_ids, dec_block *bl,
                          uint32_t *n_rlines)
{
    size_t cap_lines = 64;
    bl->line_off = malloc(cap_lines * sizeof *bl->line_off);
    bl->line_tok = malloc(cap_lines * sizeof *bl->line_tok);
    if (!bl->line_off || !bl->line_tok) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    uint32_t n = 0;
    int pending = 1; /* a line starts at the current offset */
    size_t len_text = 0;
    for (size_t i = 0; i < n_ids; i++) {
        uint32_t id = (uint32_t)ids[i];
        if (id >= tt->n) return tome_set_error(TOME_ERR_INTERNAL, "token id %d has no bytes", ids[i]);
        uint8_t c = tt->lk[id];
        size_t len = c & ~LK_NL;
        if (len == LK_LONG) tok_bytes(tt, id, &len);
        size_t off = len_text;
        len_text += len;
        if (!(c & LK_NL)) {
            if (!pending) continue;
            if (n + 1 >= cap_lines) TOME_FORWARD(grow_lines(bl, &cap_lines));
            bl->line_off[n] = (uint32_t)off;
            bl->line_tok[n] = (uint32_t)i;
            n++;
            pending = 0;
            continue;
        }
        const char *s = tok_bytes(tt, id, &len);
        for (const char *q = memchr(s, '\n', len); q; q = memchr(q + 1, '\n', len - (size_t)(q + 1 - s))) {
            if (n + 2 >= cap_lines) TOME_FORWARD(grow_lines(bl, &cap_lines));
            if (pending) { /* the line starting at this token's first byte */
                bl->line_off[n] = (uint32_t)off;
                bl->line_tok[n] = (uint32_t)i;
                n++;
                pending = 0;
            }
            /* a newline inside or at the end of token i: the next line's first
             * token is the first one starting at or after it */
            size_t nl_end = off + (size_t)(q - s) + 1;
            if (nl_end == off + len) {
                pending = 1; /* starts with token i+1 */
                break;
            }
            bl->line_off[n] = (uint32_t)nl_end;
            bl->line_tok[n] = (uint32_t)(i + 1);
            n++;
        }
    }
    if (len_text > UINT32_MAX) return tome_set_error(TOME_ERR_LIMIT, "a block of %zu bytes is over 4 GiB", len_text);
    bl->len = len_text;
    *n_rlines = n;
    return TOME_OK;
}

/* The first (head) and last (tail) up to TOME_PACK_EDGE bytes of the text of
 * ids[0..n_ids), from the tokens at each end. */
static void edges(const tome_pack_toktab *tt, const int32_t *ids, size_t n_ids, size_t len_text,
                  tome_pack_edges *ed)
{
    size_t h = 0;
    for (size_t i = 0; i < n_ids && h < TOME_PACK_EDGE; i++) {
        size_t l;
        const char *b = tok_bytes(tt, (uint32_t)ids[i], &l);
        size_t k = l < TOME_PACK_EDGE - h ? l : TOME_PACK_EDGE - h;
        memcpy(ed->head + h, b, k);
        h += k;
    }
    ed->head_len = h;
    size_t want = len_text < TOME_PACK_EDGE ? len_text : TOME_PACK_EDGE, t = 0;
    for (size_t i = n_ids; i-- > 0 && t < want;) {
        size_t l;
        const char *b = tok_bytes(tt, (uint32_t)ids[i], &l);
        size_t k = l < want - t ? l : want - t; /* the last k bytes of this token */
        memcpy(ed->tail + want - t - k, b + l - k, k);
        t += k;
    }
    ed->tail_len = want;
}

tome_status tome_pack_decode_lines(const tome_pack_toktab *tt, const int32_t *ids, size_t n_ids, uint64_t *text_len,
                                   uint32_t **line_off, uint32_t **line_tok, uint32_t *n_rlines,
                                   tome_pack_edges *ed)
{
    dec_block bl = {NULL, NULL, 0};
    *n_rlines = 0;
    tome_status st = decode(tt, ids, n_ids, &bl, n_rlines);
    *line_off = bl.line_off;
    *line_tok = bl.line_tok;
    *text_len = bl.len;
    if (!st) edges(tt, ids, n_ids, bl.len, ed);
    return st;
}

size_t tome_pack_toktab_size(const tome_pack_toktab *tt) { return tt->n; }

const char *tome_pack_toktab_bytes(const tome_pack_toktab *tt, int32_t id, size_t *len)
{
    if (id < 0 || (size_t)id >= tt->n) {
        *len = 0;
        return NULL;
    }
    return tok_bytes(tt, (uint32_t)id, len);
}

