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

/* The pattern above as a string (also the identity used by tokenizer.json). */
extern const char tome_pretok_pattern[];

/* End (exclusive) of the piece that starts at s[i], i < n. Always > i. */
size_t tome_pretok_next(const uint8_t *s, size_t n, size_t i);

#endif /* TOME_PRETOK_IMPL_H */
