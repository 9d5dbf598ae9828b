/*
 * ingest/pretok.c — hand-written scanner for the o200k pre-tokenizer pattern
 * (see pretok_impl.h for the pattern) and tome_tokenizer_safe_split.
 *
 * How each alternative of the pattern resolves under backtracking, for a piece
 * starting at character c0 (A = [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}],
 * B = [\p{Ll}\p{Lm}\p{Lo}\p{M}], P = [^\r\n\p{L}\p{N}], Q = [^\s\p{L}\p{N}]):
 *
 *  1. P? A* B+ C?   The optional prefix is tried first (when c0 is in P),
 *     then without it. A* B+ from j: let k end the run of A from j; if the
 *     character at k is in B, B+ runs to the end of the B run from k;
 *     otherwise A* gives characters back and the match ends right after the
 *     last B character inside the A run (if there is none, no match).
 *  2. P? A+ B* C?   Same prefix order; the A run (non-empty), then the B run.
 *     C is the contraction group, tried after either: ' followed by s, t, m,
 *     d, re, ve, ll, case-insensitive; tiktoken's regex also folds U+017F
 *     (long s) to s (tools/gen_unicode_tables.py checks that this is the only
 *     non-ASCII fold).
 *  3. \p{N}{1,3}
 *  4. ' '? Q+ [\r\n/]*   (the space is taken only when a Q character follows)
 *  5. \s* [\r\n]+   The whitespace run from c0; if it holds \r or \n, the
 *     match ends right after the last \r/\n in the run.
 *  6. \s+(?!\S)     Otherwise: the run up to the end of text, or all but its
 *     last character when it is followed by a non-space and has >= 2 chars;
 *  7. \s+           else the one-character run.
 * Every character starts some alternative, so pieces tile the text.
 */
#include "ingest/pretok_impl.h"

#include "ingest/unicode_impl.h"
#include "tome/tokenizer.h"

const char tome_pretok_pattern[] =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+"
    "[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+"
    "[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* ---- the ASCII fast path's dispatch (pretok_impl.h) */
#define Q TOME_PT_Q
#define L TOME_PT_L
#define D TOME_PT_D
#define SP TOME_PT_SP
#define WS TOME_PT_WS
#define NL TOME_PT_NL
#define HI TOME_PT_HIGH
const uint8_t tome_pt_kind[256] = {
    Q, Q, Q, Q, Q, Q, Q, Q, Q, WS, NL, WS, WS, NL, Q, Q,
    Q, Q, Q, Q, Q, Q, Q, Q, Q, Q, Q, Q, Q, Q, Q, Q,
    SP, Q, Q, Q, Q, Q, Q, Q, Q, Q, Q, Q, Q, Q, Q, Q,
    D, D, D, D, D, D, D, D, D, D, Q, Q, Q, Q, Q, Q,
    Q, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L,
    L, L, L, L, L, L, L, L, L, L, L, Q, Q, Q, Q, Q,
    Q, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L,
    L, L, L, L, L, L, L, L, L, L, L, Q, Q, Q, Q, Q,
    HI, HI, HI, HI, HI, HI, HI, HI, HI, HI, HI, HI, HI, HI, HI, HI,
    HI, HI, HI, HI, HI, HI, HI, HI, HI, HI, HI, HI, HI, HI, HI, HI,
    HI, HI, HI, HI, HI, HI, HI, HI, HI, HI, HI, HI, HI, HI, HI, HI,
    HI, HI, HI, HI, HI, HI, HI, HI, HI, HI, HI, HI, HI, HI, HI, HI,
    HI, HI, HI, HI, HI, HI, HI, HI, HI, HI, HI, HI, HI, HI, HI, HI,
    HI, HI, HI, HI, HI, HI, HI, HI, HI, HI, HI, HI, HI, HI, HI, HI,
    HI, HI, HI, HI, HI, HI, HI, HI, HI, HI, HI, HI, HI, HI, HI, HI,
    HI, HI, HI, HI, HI, HI, HI, HI, HI, HI, HI, HI, HI, HI, HI, HI,
};
#undef Q
#undef L
#undef D
#undef SP
#undef WS
#undef NL
#undef HI

/* Rows: kind of s[i]; columns: kind of s[i + 1] (Q L D SP WS NL HIGH END).
 * A letter or digit starts its own alternative whatever follows; a byte
 * >= 0x80 anywhere in the first two goes to the general scanner (it may be a
 * letter, a mark or a space); a prefix character (Q or a space other than
 * \r \n) before a letter starts alternatives 1-2 at i + 1; Q, or ' ' before
 * Q, starts ' '? Q+; any other space starts a whitespace run; the last byte
 * of the text alone is a piece. */
#define W0 TOME_PT_A_WORD0
#define W1 TOME_PT_A_WORD1
#define DG TOME_PT_A_DIGITS
#define PU TOME_PT_A_PUNCT
#define SR TOME_PT_A_SPACE
#define LO TOME_PT_A_LONE
#define SL TOME_PT_A_SLOW
const uint8_t tome_pt_action[TOME_PT_KINDS][TOME_PT_KINDS] = {
    /*           Q   L   D   SP  WS  NL  HIGH END */
    /* Q    */ {PU, W1, PU, PU, PU, PU, SL, LO},
    /* L    */ {W0, W0, W0, W0, W0, W0, W0, W0},
    /* D    */ {DG, DG, DG, DG, DG, DG, DG, DG},
    /* SP   */ {PU, W1, SR, SR, SR, SR, SL, LO},
    /* WS   */ {SR, W1, SR, SR, SR, SR, SL, LO},
    /* NL   */ {SR, SR, SR, SR, SR, SR, SL, LO},
    /* HIGH */ {SL, SL, SL, SL, SL, SL, SL, SL},
    /* END  */ {SL, SL, SL, SL, SL, SL, SL, SL},
};
#undef W0
#undef W1
#undef DG
#undef PU
#undef SR
#undef LO
#undef SL

#define NO_MATCH TOME_PRETOK_NO_MATCH
#define C_A TOME_UC_UPPERISH
#define C_B TOME_UC_LOWERISH
#define C_LN (TOME_UC_LETTER | TOME_UC_NUMBER)
#define C_WLN (TOME_UC_SPACE | TOME_UC_LETTER | TOME_UC_NUMBER)

/* Class of the character at s[i] (i < n); its length in *len. */
static inline __attribute__((always_inline)) unsigned cls_at(const uint8_t *s, size_t n, size_t i, size_t *len)
{
    uint8_t b = s[i];
    if (b < 0x80) {
        *len = 1;
        return tome_uc_blocks[0][b];
    }
    uint32_t cp;
    return tome_utf8_class(s + i, n - i, len, &cp);
}

static inline int is_prefix(const uint8_t *s, size_t i, unsigned cls)
{
    /* P = [^\r\n\p{L}\p{N}] */
    return !(cls & C_LN) && s[i] != '\r' && s[i] != '\n';
}

/* A* B+ starting at j: end of the match or NO_MATCH. */
static size_t match_astar_bplus(const uint8_t *s, size_t n, size_t j)
{
    size_t k = j, last_b_end = NO_MATCH, len;
    unsigned cls = 0;
    while (k < n) {
        cls = cls_at(s, n, k, &len);
        if (!(cls & C_A)) break;
        if (cls & C_B) last_b_end = k + len;
        k += len;
    }
    if (k < n && (cls & C_B)) {
        /* A run stopped at a B-only character: B+ runs from k. */
        k += len;
        while (k < n) {
            cls = cls_at(s, n, k, &len);
            if (!(cls & C_B)) break;
            k += len;
        }
        return k;
    }
    return last_b_end;
}

/* A+ B* starting at j: end of the match or NO_MATCH. */
static size_t match_aplus_bstar(const uint8_t *s, size_t n, size_t j)
{
    size_t k = j, len;
    while (k < n) {
        unsigned cls = cls_at(s, n, k, &len);
        if (!(cls & C_A)) break;
        k += len;
    }
    if (k == j) return NO_MATCH;
    while (k < n) {
        unsigned cls = cls_at(s, n, k, &len);
        if (!(cls & C_B)) break;
        k += len;
    }
    return k;
}

size_t tome_pretok_next(const uint8_t *s, size_t n, size_t i)
{
    if (s[i] < 0x80) {
        size_t e = tome_pretok_ascii(s, n, i);
        if (e != NO_MATCH) return e;
    }
    size_t len0, e;
    unsigned c0 = cls_at(s, n, i, &len0);

    /* ---- alternatives 1 and 2: letters (with an optional prefix) */
    int pre = is_prefix(s, i, c0);
    if (pre || (c0 & (C_A | C_B))) {
        if (pre && i + len0 < n) {
            e = match_astar_bplus(s, n, i + len0);
            if (e != NO_MATCH) return tome_pretok_contraction(s, n, e);
        }
        e = match_astar_bplus(s, n, i);
        if (e != NO_MATCH) return tome_pretok_contraction(s, n, e);
        if (pre && i + len0 < n) {
            e = match_aplus_bstar(s, n, i + len0);
            if (e != NO_MATCH) return tome_pretok_contraction(s, n, e);
        }
        e = match_aplus_bstar(s, n, i);
        if (e != NO_MATCH) return tome_pretok_contraction(s, n, e);
    }

    /* ---- alternative 3: \p{N}{1,3} */
    if (c0 & TOME_UC_NUMBER) {
        e = i + len0;
        for (int k = 1; k < 3 && e < n; k++) {
            size_t len;
            if (!(cls_at(s, n, e, &len) & TOME_UC_NUMBER)) break;
            e += len;
        }
        return e;
    }

    /* ---- alternative 4: ' '? Q+ [\r\n/]* */
    size_t q = NO_MATCH;
    if (!(c0 & C_WLN)) {
        q = i;
    } else if (s[i] == ' ' && i + 1 < n) {
        size_t len;
        if (!(cls_at(s, n, i + 1, &len) & C_WLN)) q = i + 1;
    }
    if (q != NO_MATCH) {
        e = q;
        while (e < n) {
            size_t len;
            if (cls_at(s, n, e, &len) & C_WLN) break;
            e += len;
        }
        while (e < n && (s[e] == '\r' || s[e] == '\n' || s[e] == '/')) e++;
        return e;
    }

    /* ---- alternatives 5-7: c0 is whitespace */
    size_t k = i, last_nl_end = NO_MATCH, last_start = i, n_chars = 0;
    while (k < n) {
        size_t len;
        if (!(cls_at(s, n, k, &len) & TOME_UC_SPACE)) break;
        if (s[k] == '\r' || s[k] == '\n') last_nl_end = k + 1;
        last_start = k;
        n_chars++;
        k += len;
    }
    if (last_nl_end != NO_MATCH) return last_nl_end;
    if (k == n) return k;
    if (n_chars >= 2) return last_start;
    return k;
}

/* See the header for the contract. Safe positions: 0, n, and any position
 * right after a '\n' where the text that follows does not start with '/' and
 * its leading whitespace (if any) holds no '\r' or '\n'. Why: the '\n' at
 * pos-1 is matched either by the [\r\n/]* tail of alternative 4 (which stops
 * at pos when the next character is not \r, \n or /) or by alternative 5
 * (which ends after the last \r/\n of the whitespace run — pos-1 when no
 * \r/\n follows in that run). Either way a piece ends exactly at pos, the
 * decision looked at nothing after pos except "not \r, \n, /" (which the end
 * of text also satisfies), and the pattern has no look-behind, so the scan
 * from pos is the same as a fresh scan. Special tokens never contain '\n'
 * (Llama 4's do not; the encoder checks), so a split never cuts one. One
 * exception is refused below: a text that ends inside a character. */
int tome_tokenizer_safe_split(const char *text, size_t n_bytes, size_t pos)
{
    if (pos == 0 || pos == n_bytes) return 1;
    if (!text || pos > n_bytes) return 0;
    const uint8_t *s = (const uint8_t *)text;
    if (s[pos - 1] != '\n' || s[pos] == '/') return 0;
    size_t k = pos, limit = pos + 256 < n_bytes ? pos + 256 : n_bytes;
    while (k < limit) {
        size_t len;
        if (s[k] == '\r' || s[k] == '\n') return 0;
        if (!(cls_at(s, n_bytes, k, &len) & TOME_UC_SPACE)) break;
        k += len;
    }
    if (k >= limit && k < n_bytes) return 0; /* a longer whitespace run is refused */
    /* A text cut inside its last character joins the tail to the last piece
     * and the whitespace-only tokens before it (tiktoken's encode_bytes
     * rule): refuse pos when only spaces, tabs and newlines separate it from
     * such a tail, since that extension could reach back across pos. */
    size_t tail = tome_utf8_trailing_incomplete(s, n_bytes);
    if (tail) {
        size_t j = pos;
        while (j < n_bytes - tail && (s[j] == ' ' || s[j] == '\t' || s[j] == '\n')) j++;
        if (j >= n_bytes - tail) return 0;
    }
    return 1;
}
