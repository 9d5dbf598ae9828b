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

/* Fast path for pieces made only of ASCII: returns TOME_PRETOK_NO_MATCH as soon as it
 * meets a byte >= 0x80 it would have to classify, and the general scanner
 * below takes over. In ASCII, A = upper case, B = lower case, no marks, so
 * alternatives 1-2 reduce to: optional prefix, upper-case run, lower-case
 * run (at least one letter), contraction. */
static inline size_t tome_pretok_ascii(const uint8_t *s, size_t n, size_t i)
{
    const uint8_t *T = tome_uc_blocks[0]; /* classes of U+0000..U+00FF; used for bytes < 0x80 only */
    uint8_t c0 = s[i], b;
    unsigned k0 = T[c0];
    size_t e, j;
    if (k0 & TOME_UC_LETTER) {
        j = i;
        goto word;
    }
    if (k0 & TOME_UC_NUMBER) {
        e = i + 1;
        while (e < n && e < i + 3) {
            b = s[e];
            if (b >= 0x80) return TOME_PRETOK_NO_MATCH;
            if (!(T[b] & TOME_UC_NUMBER)) break;
            e++;
        }
        return e;
    }
    if (i + 1 >= n) return i + 1; /* a lone last character is a piece of its own */
    b = s[i + 1];
    if (b >= 0x80) return TOME_PRETOK_NO_MATCH;
    if (c0 != '\r' && c0 != '\n' && (T[b] & TOME_UC_LETTER)) {
        j = i + 1;
        goto word;
    }
    if (!(k0 & TOME_UC_SPACE) || (c0 == ' ' && !(T[b] & (TOME_UC_SPACE | TOME_UC_LETTER | TOME_UC_NUMBER)))) {
        /* ' '? Q+ [\r\n/]* */
        e = i + 1;
        while (e < n) {
            b = s[e];
            if (b >= 0x80) return TOME_PRETOK_NO_MATCH;
            if (T[b] & (TOME_UC_SPACE | TOME_UC_LETTER | TOME_UC_NUMBER)) break;
            e++;
        }
        while (e < n && (s[e] == '\r' || s[e] == '\n' || s[e] == '/')) e++;
        return e;
    }
    /* whitespace run */
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
static inline size_t tome_pretok_next_fast(const uint8_t *s, size_t n, size_t i)
{
    if (s[i] < 0x80) {
        size_t e = tome_pretok_ascii(s, n, i);
        if (e != TOME_PRETOK_NO_MATCH) return e;
    }
    return tome_pretok_next(s, n, i);
}

#endif /* TOME_PRETOK_IMPL_H */
