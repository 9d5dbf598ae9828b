/*
 * tome/tokenizer.h — the Llama 4 tokenizer (tiktoken-style byte-level BPE).
 *
 * Loads Meta's tiktoken-format `tokenizer.model` (lines "<base64> <rank>") or a
 * Hugging Face `tokenizer.json`, or a model directory holding either. Encoding
 * is bit-exact with Python tiktoken configured with the same ranks, the o200k
 * pre-tokenizer pattern and Llama 4's special tokens.
 *
 * A tokenizer is immutable after open and safe to share between threads.
 */
#ifndef TOME_TOKENIZER_H
#define TOME_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "tome/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tome_tokenizer tome_tokenizer_t;

/* Growable array of token ids; zero-initialise, free with tome_tokens_free. */
typedef struct tome_tokens {
    int32_t *ids;
    size_t n;
    size_t cap;
} tome_tokens_t;

void tome_tokens_free(tome_tokens_t *t); /* frees ids and zeroes t; NULL ok */

typedef struct tome_encode_opts {
    int allow_special; /* nonzero: "<|eot|>" etc. in the text become special ids;
                          zero: they are encoded as ordinary text (tiktoken's
                          allowed_special=() with disallowed_special=()) */
    int add_bos;       /* prepend <|begin_of_text|> */
    int add_eos;       /* append <|end_of_text|> */
    int n_threads;     /* 0 or 1: single thread; >1: split the input only where
                          the result cannot change and encode pieces in parallel */
    size_t max_piece_bytes; /* 0: any; else a pre-tokenizer piece longer than this
                          (a run of spaces, letters or punctuation without a
                          break: its BPE costs time and memory in proportion)
                          fails with TOME_ERR_LIMIT instead of being encoded */
} tome_encode_opts;

/* path: a tokenizer.model, a tokenizer.json, or a directory containing one. */
tome_status tome_tokenizer_open(const char *path, tome_tokenizer_t **out);
void tome_tokenizer_free(tome_tokenizer_t *tok); /* NULL ok */

/* Appends the ids of text[0..n_bytes) to out. Any bytes are accepted and
 * decode gives them back exactly. Valid UTF-8 is encoded exactly as tiktoken
 * does. Invalid UTF-8 (docs/tokenizer.md): a text cut inside its last
 * character is encoded exactly as tiktoken's encode_bytes does; every other
 * byte that does not begin a well-formed UTF-8 sequence is a one-byte
 * character of class "other" (like U+FFFD: not a letter, number or space)
 * for the pre-tokenizer, and BPE runs on the raw bytes. (tiktoken's
 * encode_bytes instead merges everything after the first invalid byte into
 * one piece; tome keeps the change local so results stay splittable.)
 * opts may be NULL (defaults: no specials, no BOS/EOS, single thread). */
tome_status tome_tokenizer_encode(const tome_tokenizer_t *tok, const char *text, size_t n_bytes,
                                  const tome_encode_opts *opts, tome_tokens_t *out);

/* A lower bound on the number of ids tome_tokenizer_encode gives for the
 * same text and opts, at a fraction of the cost: the pre-tokenizer's pieces,
 * one each for a piece that may be a rank and two for one that is not (no
 * BPE). A piece over opts->max_piece_bytes fails with TOME_ERR_LIMIT as in
 * encoding. With specials allowed, or when the text ends inside a UTF-8
 * sequence, the text is encoded and the count is exact. */
tome_status tome_tokenizer_count_at_least(const tome_tokenizer_t *tok, const char *text, size_t n_bytes,
                                          const tome_encode_opts *opts, uint64_t *at_least);

/* Appends the bytes of ids[0..n) to *out_bytes (malloc'd/realloc'd; *out_len
 * updated). Unknown ids are TOME_ERR_INVALID_ARG naming the index and id. */
tome_status tome_tokenizer_decode(const tome_tokenizer_t *tok, const int32_t *ids, size_t n,
                                  char **out_bytes, size_t *out_len);

/* Bytes of one token (not NUL-terminated); NULL for an id out of range. */
const char *tome_tokenizer_token_bytes(const tome_tokenizer_t *tok, int32_t id, size_t *len);

size_t tome_tokenizer_vocab_size(const tome_tokenizer_t *tok); /* 202048 for Llama 4 */
int32_t tome_tokenizer_special_id(const tome_tokenizer_t *tok, const char *name); /* -1 if absent */
int32_t tome_tokenizer_bos_id(const tome_tokenizer_t *tok);
int32_t tome_tokenizer_eos_id(const tome_tokenizer_t *tok);
int tome_tokenizer_is_stop(const tome_tokenizer_t *tok, int32_t id); /* end_of_text, eom, eot */

/* 128-bit identity of the vocabulary (ranks + specials + pattern), as 32 hex
 * chars + NUL, used by packs and KV snapshots to refuse a different tokenizer. */
void tome_tokenizer_hash(const tome_tokenizer_t *tok, char out_hex[33]);

/* True when encoding text[0..pos) and text[pos..n) separately and
 * concatenating gives the same ids as encoding text[0..n): a position the
 * parallel encoder and the pack builder may split at. Holds at 0, n, and
 * after a '\n' that is not followed by '/' nor by whitespace containing
 * another '\r'/'\n' (checked up to 256 bytes ahead), except when only
 * spaces, tabs and newlines separate pos from a character cut at the very
 * end of the text. With or without allow_special (no Llama 4 special token
 * contains '\n'). */
int tome_tokenizer_safe_split(const char *text, size_t n_bytes, size_t pos);

#ifdef __cplusplus
}
#endif
#endif /* TOME_TOKENIZER_H */
