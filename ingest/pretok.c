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

/* ------------------------------------------------------------ bulk scanner */
/*
 * tome_pretok_bulk finds the pieces of up to 64 bytes of ASCII text at once:
 * class bit masks (bit k = byte p + k), then each rule of the pattern as bit
 * operations, so a piece costs a few instructions and no mispredicted branch
 * (the one-piece scanner above pays one or two a piece). It is only ever
 * asked to start where a piece starts: the pattern has no look-behind, so the
 * window is scanned as if the text began at p. The window ends at the first
 * byte >= 0x80 or after 64 bytes; position W (that end) is a "nothing"
 * character, so only the boundaries that nothing at or after W can change
 * are reported (see `cut`). With S the window's bytes and prev(x) = x << 1:
 *
 *   words     a letter run starts a piece, and a piece starts at every
 *             lower→upper change inside one (A* B+ | A+ B* in ASCII); a
 *             letter run's first letter joins the piece before it when that
 *             is a space or tab (always the last of its whitespace run, which
 *             always starts a piece) or a one-character punctuation piece;
 *   contractions  ' after a letter followed by s t m d / re ve ll (any case)
 *             ends the word after them, even inside a letter run;
 *   digits    a digit run starts a piece every three digits from its start;
 *   punctuation   a run of other characters starts a piece (' '? Q+), joined
 *             to a space right before it; when the run is followed by \r or
 *             \n, the piece takes the whole run of \r \n / after it (tail);
 *   whitespace    a run starts a piece (unless a tail took its start); one
 *             starts right after its last \r/\n; and, when what follows the
 *             last \r/\n is two or more spaces/tabs, at the last of them.
 */
#ifdef TOME_PRETOK_SSE2
static inline uint64_t bulk_mask(__m128i v0, __m128i v1, __m128i v2, __m128i v3,
                                 unsigned (*f)(__m128i, int, int), int lo, int hi)
{
    return (uint64_t)f(v0, lo, hi) | (uint64_t)f(v1, lo, hi) << 16 | (uint64_t)f(v2, lo, hi) << 32 |
           (uint64_t)f(v3, lo, hi) << 48;
}
static unsigned bulk_in(__m128i v, int lo, int hi) { return tome_pt_in(v, lo, hi); }
static unsigned bulk_eq(__m128i v, int c, int unused)
{
    (void)unused;
    return tome_pt_eq(v, c);
}

size_t tome_pretok_bulk(const uint8_t *s, size_t n, size_t p, size_t *ends, size_t *resume)
{
    *resume = p;
    if (n - p < 64) return 0;
    const uint8_t *w = s + p;
    __m128i v0 = _mm_loadu_si128((const __m128i *)(const void *)w);
    __m128i v1 = _mm_loadu_si128((const __m128i *)(const void *)(w + 16));
    __m128i v2 = _mm_loadu_si128((const __m128i *)(const void *)(w + 32));
    __m128i v3 = _mm_loadu_si128((const __m128i *)(const void *)(w + 48));
    uint64_t hi = (uint64_t)(unsigned)_mm_movemask_epi8(v0) | (uint64_t)(unsigned)_mm_movemask_epi8(v1) << 16 |
                  (uint64_t)(unsigned)_mm_movemask_epi8(v2) << 32 | (uint64_t)(unsigned)_mm_movemask_epi8(v3) << 48;
    unsigned W = hi ? (unsigned)__builtin_ctzll(hi) : 64;
    if (W < 12) { /* not worth it: the caller scans past the last byte >= 0x80 one piece at a time */
        *resume = p + 64 - (size_t)__builtin_clzll(hi);
        return 0;
    }
    uint64_t V = W == 64 ? ~0ull : (1ull << W) - 1;
    uint64_t U = bulk_mask(v0, v1, v2, v3, bulk_in, 'A', 'Z') & V;
    uint64_t Lo = bulk_mask(v0, v1, v2, v3, bulk_in, 'a', 'z') & V;
    uint64_t D = bulk_mask(v0, v1, v2, v3, bulk_in, '0', '9') & V;
    uint64_t S = bulk_mask(v0, v1, v2, v3, bulk_eq, ' ', 0) & V;
    uint64_t C9 = bulk_mask(v0, v1, v2, v3, bulk_in, 0x09, 0x0D) & V; /* \t \n \v \f \r */
    uint64_t N = (bulk_mask(v0, v1, v2, v3, bulk_eq, '\n', 0) | bulk_mask(v0, v1, v2, v3, bulk_eq, '\r', 0)) & V;
    uint64_t SL = bulk_mask(v0, v1, v2, v3, bulk_eq, '/', 0) & V;
    uint64_t AP = bulk_mask(v0, v1, v2, v3, bulk_eq, '\'', 0) & V;
    uint64_t Le = U | Lo, SP = S | C9, Wt = C9 & ~N;
    uint64_t Q = V & ~(Le | D | SP);

    /* tails: after a run of Q that is followed by \r or \n, the run of \r \n /
     * from there belongs to the punctuation piece (segmented prefix-OR) */
    uint64_t TL = N | SL;
    uint64_t X = (Q << 1) & ~Q & N;
    uint64_t TC = X, m = TL;
    TC |= (TC << 1) & m;
    m &= m << 1;
    TC |= (TC << 2) & m;
    m &= m << 2;
    TC |= (TC << 4) & m;
    m &= m << 4;
    TC |= (TC << 8) & m;
    m &= m << 8;
    TC |= (TC << 16) & m;
    m &= m << 16;
    TC |= (TC << 32) & m;
    uint64_t TE = (TC << 1) & ~TL;

    /* punctuation runs: a run's start, or where a tail stopped inside one */
    uint64_t QS = ((Q & ~(Q << 1)) | (TE & Q)) & ~TC;

    /* words */
    uint64_t LS = Le & ~(Le << 1);
    uint64_t CT = U & (Lo << 1);
    uint64_t PFX = S | Wt | (QS & ~(S << 1));
    uint64_t B = 1 | (LS & ~(PFX << 1)) | CT | (QS & ~(S << 1)) | TE;

    /* digits: a piece every three digits from the start of a run */
    uint64_t g = D & ~(D << 1), D3 = D & (D << 1) & (D << 2);
    for (uint64_t t = g; (t = (t << 3) & D3) != 0;) g |= t;
    B |= g;

    /* whitespace runs: h = "a \r or \n at or after this place in its run" */
    uint64_t h = N, r = SP;
    h |= (h >> 1) & r;
    r &= r >> 1;
    h |= (h >> 2) & r;
    r &= r >> 2;
    h |= (h >> 4) & r;
    r &= r >> 4;
    h |= (h >> 8) & r;
    r &= r >> 8;
    h |= (h >> 16) & r;
    r &= r >> 16;
    h |= (h >> 32) & r;
    uint64_t RS = SP & ~(SP << 1);
    uint64_t NB = (N & ~(h >> 1)) << 1;          /* right after the last \r/\n of a run */
    uint64_t T = SP & ~h;                        /* spaces and tabs after it */
    uint64_t LT2 = SP & ~(SP >> 1) & T & (T << 1); /* last of two or more of them */
    B |= (RS | NB | LT2) & ~TC;

    /* what nothing after W can change: bits below W - 4 (a contraction looks
     * 3 bytes ahead), and before a whitespace run that reaches W */
    unsigned cut = W - 4;
    if (SP >> (W - 1) & 1) { /* (that run's start is RS's highest bit) */
        unsigned last_rs = 63u - (unsigned)__builtin_clzll(RS);
        if (last_rs < cut) cut = last_rs;
    }

    /* contractions, left to right: the apostrophe and the letters after it
     * stay in the word; the next piece starts after them (an apostrophe right
     * after a contraction starts a piece of its own) */
    uint64_t CA = AP & (Le << 1) & ((1ull << cut) - 1);
    unsigned after = 0;
    while (CA) {
        unsigned k = (unsigned)__builtin_ctzll(CA);
        CA &= CA - 1;
        if (k < after) continue;
        int c1 = w[k + 1] | 0x20, c2 = w[k + 2] | 0x20;
        unsigned len = 0;
        if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') len = 2;
        else if (((c1 == 'r' || c1 == 'v') && c2 == 'e') || (c1 == 'l' && c2 == 'l')) len = 3;
        if (!len) continue;
        B &= ~(((1ull << len) - 1) << k);
        B |= 1ull << (k + len);
        after = k + len + 1;
    }

    /* report the pieces that end below the cut */
    uint64_t E = B & ((1ull << cut) - 1) & ~1ull;
    size_t cnt = 0;
    while (E) {
        ends[cnt++] = p + (size_t)__builtin_ctzll(E);
        E &= E - 1;
    }
    if (cnt) *resume = ends[cnt - 1];
    return cnt;
}
#else
size_t tome_pretok_bulk(const uint8_t *s, size_t n, size_t p, size_t *ends, size_t *resume)
{
    (void)s;
    (void)n;
    (void)ends;
    *resume = p;
    return 0;
}
#endif
