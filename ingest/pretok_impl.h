/*
 * ingest/pretok_impl.h — the Llama 4 (o200k) pre-tokenizer: a hand-written
 * scanner that splits text into the same pieces as tiktoken's regex
 *
 *   [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?
 *  |[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?
 *  |\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
 *
 * (leftmost-first alternation, greedy quantifiers, matches taken one after
 * the other from the start as Rust's find_iter does). Invalid UTF-8 bytes are
 * characters of class 0, see ingest/unicode_impl.h.
 */
#ifndef TOME_PRETOK_IMPL_H
#define TOME_PRETOK_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "ingest/unicode_impl.h"

/* The pattern above as a string (also the identity used by tokenizer.json). */
extern const char tome_pretok_pattern[];

/* End (exclusive) of the piece that starts at s[i], i < n. Always > i. */
size_t tome_pretok_next(const uint8_t *s, size_t n, size_t i);

/* The pieces of the ASCII text from s[p] (p must start a piece) found 64
 * bytes at a time with bit masks: writes the ends of up to 60 consecutive
 * pieces to ends[] and returns how many (0: none could be decided here: a
 * piece of 60+ bytes, a byte >= 0x80 near p, fewer than 64 bytes left, or no
 * SSE2). *resume: where trying again is worth it (past the bytes >= 0x80
 * near p; else the last end, or p). Same pieces as tome_pretok_next. */
size_t tome_pretok_bulk(const uint8_t *s, size_t n, size_t p, size_t *ends, size_t *resume);

/* The ASCII fast path, inline for the encoder's loop (pretok.c has the
 * reasoning behind each alternative). */
#define TOME_PRETOK_NO_MATCH ((size_t)-1)

static inline int tome_pretok_lower_ascii(int c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

/* (?i:'s|'t|'re|'ve|'m|'ll|'d)? at e. */
static inline size_t tome_pretok_contraction(const uint8_t *s, size_t n, size_t e)
{
    if (e + 1 >= n || s[e] != '\'') return e;
    int c1 = tome_pretok_lower_ascii(s[e + 1]);
    if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return e + 2;
    if (s[e + 1] == 0xC5 && e + 2 < n && s[e + 2] == 0xBF) return e + 3; /* U+017F long s */
    if (e + 2 >= n) return e;
    int c2 = tome_pretok_lower_ascii(s[e + 2]);
    if ((c1 == 'r' || c1 == 'v') && c2 == 'e') return e + 3;
    if (c1 == 'l' && c2 == 'l') return e + 3;
    return e;
}

/* SIMD helpers for the ASCII fast path: with SSE2 (every x86-64) a run of
 * one class is measured 16 bytes at a time from bit masks (one count of
 * trailing zeros instead of a loop whose exit the branch predictor misses
 * once per piece). Other targets use the scalar loops below, which are the
 * reference: the SIMD branches only ever answer when the run ends inside the
 * 16-byte window (else they fall through to the scalar code). */
#if defined(__SSE2__)
#include <emmintrin.h>
#define TOME_PRETOK_SSE2 1
/* Bit k set when byte k of v lies in [lo, hi] (unsigned, hi - lo < 128). */
static inline unsigned tome_pt_in(__m128i v, int lo, int hi)
{
    __m128i t = _mm_add_epi8(v, _mm_set1_epi8((char)(0x80 - lo)));
    return (unsigned)_mm_movemask_epi8(_mm_cmplt_epi8(t, _mm_set1_epi8((char)(-128 + (hi - lo + 1)))));
}
static inline unsigned tome_pt_eq(__m128i v, int c)
{
    return (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8((char)c)));
}
/* ASCII \s: U+0009..U+000D and U+0020 (tools/gen_unicode_tables.py tables). */
static inline unsigned tome_pt_space(__m128i v) { return tome_pt_in(v, 0x09, 0x0D) | tome_pt_eq(v, ' '); }
#endif

/* Kinds of bytes for the fast path's first step (tome_pt_kind in pretok.c):
 * the kind of the first byte and of the next one pick the alternative in
 * one table look-up (one jump instead of a chain of tests, each of which the
 * branch predictor would miss on some pieces). */
enum {
    TOME_PT_Q,     /* ASCII, not letter, digit or space */
    TOME_PT_L,     /* A-Z a-z */
    TOME_PT_D,     /* 0-9 */
    TOME_PT_SP,    /* ' ' */
    TOME_PT_WS,    /* \t \v \f */
    TOME_PT_NL,    /* \r \n */
    TOME_PT_HIGH,  /* >= 0x80: the general scanner decides */
    TOME_PT_END,   /* (no next byte) */
    TOME_PT_KINDS
};
enum { TOME_PT_A_WORD0, TOME_PT_A_WORD1, TOME_PT_A_DIGITS, TOME_PT_A_PUNCT, TOME_PT_A_SPACE, TOME_PT_A_LONE,
       TOME_PT_A_SLOW };
extern const uint8_t tome_pt_kind[256];
/* action of (kind of s[i], kind of s[i + 1]) */
extern const uint8_t tome_pt_action[TOME_PT_KINDS][TOME_PT_KINDS];

/* Fast path for pieces made only of ASCII: returns TOME_PRETOK_NO_MATCH as soon as it
 * meets a byte >= 0x80 it would have to classify, and the general scanner
 * below takes over. In ASCII, A = upper case, B = lower case, no marks, so
 * alternatives 1-2 reduce to: optional prefix, upper-case run, lower-case
 * run (at least one letter), contraction. */
static inline __attribute__((always_inline)) size_t tome_pretok_ascii(const uint8_t *s, size_t n, size_t i)
{
    const uint8_t *T = tome_uc_blocks[0]; /* classes of U+0000..U+00FF; used for bytes < 0x80 only */
    uint8_t b;
    size_t e, j;
    unsigned k1 = i + 1 < n ? tome_pt_kind[s[i + 1]] : TOME_PT_END;
    switch (tome_pt_action[tome_pt_kind[s[i]]][k1]) {
    case TOME_PT_A_WORD0:
        j = i;
        goto word;
    case TOME_PT_A_WORD1: /* a prefix character (not \r, \n), then letters */
        j = i + 1;
        goto word;
    case TOME_PT_A_DIGITS:
        e = i + 1;
        while (e < n && e < i + 3) {
            b = s[e];
            if (b >= 0x80) return TOME_PRETOK_NO_MATCH;
            if (!(T[b] & TOME_UC_NUMBER)) break;
            e++;
        }
        return e;
    case TOME_PT_A_LONE: /* a lone last character is a piece of its own */
        return i + 1;
    case TOME_PT_A_SLOW:
        return TOME_PRETOK_NO_MATCH;
    case TOME_PT_A_PUNCT:
        break;
    default: /* TOME_PT_A_SPACE */
        goto space;
    }
    /* ' '? Q+ [\r\n/]*  (Q+ starts at i + 1: s[i] is Q, or the space before a Q) */
    e = i + 1;
#ifdef TOME_PRETOK_SSE2
    if (i + 17 <= n) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i + 1));
        unsigned stop = tome_pt_in(_mm_or_si128(v, _mm_set1_epi8(0x20)), 'a', 'z') | tome_pt_in(v, '0', '9') |
                        tome_pt_space(v) | (unsigned)_mm_movemask_epi8(v); /* letters, digits, spaces, non-ASCII */
        unsigned r = (unsigned)__builtin_ctz(stop | 0x10000u);
        if (r < 16) {
            if (s[i + 1 + r] >= 0x80) return TOME_PRETOK_NO_MATCH;
            unsigned tail = tome_pt_eq(v, '\r') | tome_pt_eq(v, '\n') | tome_pt_eq(v, '/');
            unsigned t = r + (unsigned)__builtin_ctz(~(tail >> r)); /* [\r\n/]* */
            if (t < 16) return i + 1 + t;
            e = i + 1 + t;
            goto punct_tail;
        }
    }
#endif
    while (e < n) {
        b = s[e];
        if (b >= 0x80) return TOME_PRETOK_NO_MATCH;
        if (T[b] & (TOME_UC_SPACE | TOME_UC_LETTER | TOME_UC_NUMBER)) break;
        e++;
    }
#ifdef TOME_PRETOK_SSE2
punct_tail:
#endif
    while (e < n && (s[e] == '\r' || s[e] == '\n' || s[e] == '/')) e++;
    return e;
space:
    /* whitespace run (s[i] is a space, s[i + 1] exists) */
#ifdef TOME_PRETOK_SSE2
    if (i + 16 <= n) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        unsigned r = (unsigned)__builtin_ctz(~tome_pt_space(v)); /* <= 16 */
        if (r < 16) {
            if (s[i + r] >= 0x80) return TOME_PRETOK_NO_MATCH;
            unsigned nl = (tome_pt_eq(v, '\n') | tome_pt_eq(v, '\r')) & ((1u << r) - 1);
            if (nl) return i + 32 - (size_t)__builtin_clz(nl); /* just after the last \r or \n */
            return r >= 2 ? i + r - 1 : i + r;                   /* s[i + r] is not a space */
        }
    }
#endif
    {
        size_t k = i, last_nl_end = TOME_PRETOK_NO_MATCH;
        while (k < n) {
            b = s[k];
            if (b >= 0x80) return TOME_PRETOK_NO_MATCH;
            if (!(T[b] & TOME_UC_SPACE)) break;
            if (b == '\r' || b == '\n') last_nl_end = k + 1;
            k++;
        }
        if (last_nl_end != TOME_PRETOK_NO_MATCH) return last_nl_end;
        if (k == n) return k;
        return k - i >= 2 ? k - 1 : k;
    }
word:
#ifdef TOME_PRETOK_SSE2
    if (j + 16 <= n) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + j));
        unsigned up = tome_pt_in(v, 'A', 'Z'), lo = tome_pt_in(v, 'a', 'z');
        unsigned a = (unsigned)__builtin_ctz(~up);          /* upper-case run, <= 16 */
        unsigned r = a + (unsigned)__builtin_ctz(~(lo >> a)); /* then the lower-case run */
        if (r < 16) {
            if (s[j + r] >= 0x80) return TOME_PRETOK_NO_MATCH;
            return tome_pretok_contraction(s, n, j + r);
        }
    }
#endif
    e = j;
    while (e < n) {
        b = s[e];
        if (b >= 0x80) return TOME_PRETOK_NO_MATCH;
        if (!(T[b] & TOME_UC_UPPERISH)) break;
        e++;
    }
    while (e < n) {
        b = s[e];
        if (b >= 0x80) return TOME_PRETOK_NO_MATCH;
        if (!(T[b] & TOME_UC_LOWERISH)) break;
        e++;
    }
    return tome_pretok_contraction(s, n, e);
}

/* tome_pretok_next with the ASCII fast path inlined. */
static inline __attribute__((always_inline)) size_t tome_pretok_next_fast(const uint8_t *s, size_t n, size_t i)
{
    if (s[i] < 0x80) {
        size_t e = tome_pretok_ascii(s, n, i);
        if (e != TOME_PRETOK_NO_MATCH) return e;
    }
    return tome_pretok_next(s, n, i);
}

/* Pieces one after another, through the bulk scanner wherever it applies
 * (its ends are queued) and the one-piece scanner elsewhere. Start zeroed;
 * each call gives the end of the piece that starts at p, where p is 0 or the
 * end the previous call gave. */
typedef struct tome_pretok_iter {
    size_t q[64];
    size_t qh, qn, bulk_at;
} tome_pretok_iter;

static inline __attribute__((always_inline)) size_t tome_pretok_iter_next(tome_pretok_iter *it, const uint8_t *s,
                                                                          size_t n, size_t p)
{
    if (it->qh < it->qn) return it->q[it->qh++];
    if (p >= it->bulk_at && (it->qn = tome_pretok_bulk(s, n, p, it->q, &it->bulk_at)) != 0) {
        it->qh = 1;
        return it->q[0];
    }
    it->qh = it->qn = 0;
    return tome_pretok_next_fast(s, n, p);
}

#endif /* TOME_PRETOK_IMPL_H */
