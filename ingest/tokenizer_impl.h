/*
 * ingest/tokenizer_impl.h — the inside of tome_tokenizer_t, shared by
 * tokenizer.c (encode/decode/BPE) and tokenizer_load.c (file formats).
 *
 * Memory layout (all owned by the tokenizer, freed by tome_tokenizer_free):
 *   blob        every token's bytes back to back: ranks 0..n_ranks-1, then the
 *               special tokens' names; tok_off[id]/tok_len[id] index it for all
 *               vocab_size ids.
 *   rtab        open-addressing hash map (linear probing, power-of-two size,
 *               load <= 0.5, slot = top bits of the hash) from a rank's bytes
 *               to its id. A 16-byte slot
 *               holds the token's first 8 bytes (zero-padded), its length, 16
 *               hash bits and id + 1 (0 = empty), so a lookup of a token of up
 *               to 8 bytes touches one cache line and never the blob.
 *   spec_table  for the specials: slots (hash >> 32) << 32 | (id + 1).
 *   pair_id     direct table of the two-byte tokens (most BPE lookups).
 *   specials    ids n_ranks..vocab_size-1 (their bytes are the names), found
 *               by name through spec_table (special_id and encode).
 * Encode also keeps a per-thread cache of recent pieces (tokenizer.c).
 * Immutable after open, so threads share it freely.
 */
#ifndef TOME_TOKENIZER_IMPL_H
#define TOME_TOKENIZER_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "tome/tokenizer.h"

struct tome_rank_slot {
    uint64_t key8;  /* first 8 bytes of the token, zero-padded (little-endian word) */
    uint32_t id1;   /* id + 1; 0 = empty slot */
    uint16_t len;   /* token length in bytes */
    uint16_t tag;   /* hash >> 48 */
};

struct tome_tokenizer {
    uint8_t *blob;
    size_t blob_len;
    uint32_t *tok_off; /* (vocab_size) */
    uint16_t *tok_len; /* (vocab_size) */
    uint32_t n_ranks;  /* ordinary BPE tokens: ids 0..n_ranks-1 */
    uint32_t vocab_size;
    uint16_t max_rank_len; /* longest ordinary token, bytes */

    struct tome_rank_slot *rtab; /* (rtab_mask + 1) slots over ranks, see below */
    size_t rtab_mask;
    unsigned rtab_shift;  /* 64 - log2(rtab_mask + 1): a key's slot is hash >> rtab_shift */
    uint64_t *bloom;      /* (TOME_BLOOM_BITS / 64) words: 2 bits a rank, from its hash */
    int32_t byte_id[256]; /* id of each single byte */
    int32_t *pair_id;     /* (65536) id of each two-byte string, -1 if none */

    uint64_t *spec_table; /* (spec_mask + 1) slots over specials */
    size_t spec_mask;
    uint8_t spec_first[256]; /* nonzero: some special starts with this byte */
    uint16_t spec_min_len, spec_max_len;
    int spec_has_newline; /* some special contains '\n': no parallel split with specials */

    int32_t bos_id, eos_id, eom_id, eot_id;
    uint64_t serial; /* distinct per opened tokenizer (keys the per-thread piece cache) */
    char hash_hex[33];
};

/* Build the tokenizer from ranks already in blob/tok_off/tok_len (ids 0..n_ranks-1)
 * and special names (appended by this call): hash tables, byte ids, special
 * ids, identity hash. `what` names the file for messages. Takes ownership of
 * nothing; on failure the caller frees tok. */
tome_status tome_tokenizer_finish(struct tome_tokenizer *tok, const char *what);

/* Append one token's bytes to the blob (growing it); id = next index. */
tome_status tome_tokenizer_push_token(struct tome_tokenizer *tok, const void *bytes, size_t len,
                                      size_t *cap_tokens, size_t *cap_blob);

/* Llama 4's special token names, in id order from n_ranks (2048 names). */
size_t tome_llama4_special_count(void);
void tome_llama4_special_name(size_t index, char *buf, size_t cap);

/* Id of the rank whose bytes are s[0..len), or -1. */
int32_t tome_tokenizer_lookup(const struct tome_tokenizer *tok, const uint8_t *s, size_t len);

tome_status tome_tokenizer_load_tiktoken(const char *path, const char *data, size_t len,
                                         struct tome_tokenizer *tok);
tome_status tome_tokenizer_load_hf_json(const char *path, const char *data, size_t len,
                                        struct tome_tokenizer *tok);

#endif /* TOME_TOKENIZER_IMPL_H */
