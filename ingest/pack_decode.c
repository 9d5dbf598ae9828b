/*
 * ingest/pack_decode.c — a block's text and line table from its token ids.
 *
 * The builder keeps only ids between reading a file and writing it (the text
 * is their decoding, and the pack stores it as a dictionary of the tokens
 * used: pack_format.c), so a block written needs only its length, line table
 * and first and last bytes from its ids (tome_pack_decode_lines). The table
 * (tome_pack_toktab) holds a 16-byte entry per vocabulary token: its bytes
 * inline when they fit in 14 (almost every token), its length and a
 * "contains a newline" flag. A token then costs one table read, and the
 * line table (pack_impl.h:
 * line_off / line_tok) needs no scan of tokens without a newline. Longer
 * tokens point into a blob. Built once per pack from
 * tome_tokenizer_token_bytes (~3 MB).
 */
#include <stdlib.h>
#include <string.h>

#include "ingest/pack_impl.h"

#define TOK_INLINE 14
#define TOK_NL 1
#define TOK_LONG 2
typedef struct tok_ent {
    char b[TOK_INLINE]; /* bytes, or (TOK_LONG) a uint32 offset into blob */
    uint8_t len;        /* bytes of the token when not TOK_LONG */
    uint8_t flags;
} tok_ent;

struct tome_pack_toktab {
    tok_ent *ent;
    uint8_t *lk;        /* [n]: length (127: see long_len) | 0x80 when it holds a newline: 200 KB
                           for Llama 4, in L2, where ent (3 MB) is in L3 at best */
    uint32_t *long_len; /* [n]: lengths (all tokens) */
    char *blob;         /* bytes of the long tokens */
    size_t n;
};

void tome_pack_toktab_free(tome_pack_toktab *t)
{
    if (!t) return;
    free(t->ent);
    free(t->lk);
    free(t->long_len);
    free(t->blob);
    free(t);
}

static tome_status toktab_fill(const tome_tokenizer_t *tok, tome_pack_toktab *t)
{
    size_t n = tome_tokenizer_vocab_size(tok), total = 0;
    t->ent = calloc(n ? n : 1, sizeof *t->ent);
    t->long_len = malloc((n ? n : 1) * sizeof *t->long_len);
    t->lk = malloc(n ? n : 1);
    if (!t->ent || !t->long_len || !t->lk) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        tome_tokenizer_token_bytes(tok, (int32_t)i, &len);
        if (len > UINT32_MAX / 2) return tome_set_error(TOME_ERR_INTERNAL, "token %zu is %zu bytes long", i, len);
        if (len > TOK_INLINE) total += len;
    }
    t->blob = malloc(total + 1);
    if (!t->blob) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    uint32_t off = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        const char *s = tome_tokenizer_token_bytes(tok, (int32_t)i, &len);
        tok_ent *e = &t->ent[i];
        e->flags = (uint8_t)(len && memchr(s, '\n', len) != NULL ? TOK_NL : 0);
        t->long_len[i] = (uint32_t)len;
        t->lk[i] = (uint8_t)((len < 127 ? len : 127) | (e->flags & TOK_NL ? 0x80 : 0));
        if (len <= TOK_INLINE) {
            if (len) memcpy(e->b, s, len);
            e->len = (uint8_t)len;
        } else {
            memcpy(t->blob + off, s, len);
            memcpy(e->b, &off, sizeof off);
            e->flags |= TOK_LONG;
            off += (uint32_t)len;
        }
    }
    t->n = n;
    return TOME_OK;
}

tome_status tome_pack_toktab_open(const tome_tokenizer_t *tok, tome_pack_toktab **out)
{
    *out = NULL;
    tome_pack_toktab *t = calloc(1, sizeof *t);
    if (!t) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    tome_status st = toktab_fill(tok, t);
    if (st) {
        tome_pack_toktab_free(t);
        return st;
    }
    *out = t;
    return TOME_OK;
}

typedef struct dec_block {
    uint32_t *line_off, *line_tok;
    size_t len; /* bytes of the block's text */
} dec_block;

static inline const char *tok_bytes(const tome_pack_toktab *tt, uint32_t id, size_t *len)
{
    const tok_ent *e = &tt->ent[id];
    if (!(e->flags & TOK_LONG)) {
        *len = e->len;
        return e->b;
    }
    uint32_t bo;
    memcpy(&bo, e->b, sizeof bo);
    *len = tt->long_len[id];
    return tt->blob + bo;
}

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
        size_t len = c & 0x7f;
        if (len == 127) len = tt->long_len[id];
        size_t off = len_text;
        len_text += len;
        if (!(c & 0x80)) {
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

