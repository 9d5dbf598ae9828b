/*
 * ingest/tokenizer.c — encode, decode and the BPE merge of the Llama 4
 * tokenizer (see include/tome/tokenizer.h for the contract and
 * ingest/tokenizer_impl.h for the memory layout; loading is in
 * tokenizer_load.c, the pre-tokenizer in pretok.c).
 *
 * Encoding = split the text into pieces with tome_pretok_next (the o200k
 * pattern), then for each piece: if its bytes are one rank, emit it (the
 * common case: most words); otherwise run byte-pair merging: start from single
 * bytes and repeatedly merge the adjacent pair whose concatenation has the
 * lowest rank (leftmost on ties) until no pair is a rank — exactly tiktoken's
 * byte_pair_encode. Adjacent parts are contiguous in the piece, so a pair's
 * bytes are a slice of the input and no copy is made for lookups.
 * Pieces up to BPE_SMALL bytes use tiktoken's O(n^2) array scan (fast for
 * short pieces); longer ones use a min-heap of (rank, offset) over a linked
 * list, O(n log n), which picks the same merges in the same order.
 * In front of all this, a per-thread piece cache answers ~96% of pieces of
 * mixed text with one hash and one compare; a miss prefetches the rank-table
 * slots BPE will probe (docs/tokenizer.md, "Speed", has the why of each
 * part).
 *
 * Special tokens (allow_special) are found first, leftmost (longest at the
 * same position), and the text between them is encoded on its own, as
 * tiktoken does. Multi-threaded encode splits the text only at positions
 * where tome_tokenizer_safe_split holds, encodes the chunks in parallel
 * (tome_parallel_for) and concatenates.
 */
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <xxhash.h>

#include "core/core_impl.h"
#include "ingest/pretok_impl.h"
#include "ingest/unicode_impl.h"
#include "ingest/tokenizer_impl.h"

#define BPE_SMALL 32

static atomic_uint_fast64_t g_serial; /* gives each opened tokenizer a distinct serial */
#define RANK_NONE INT32_MAX

/* ------------------------------------------------------------ hashing */
/* hash_bytes: the hash of the specials' table (8-byte little-endian words,
 * the last one zero-padded). The rank table and the piece cache use
 * hash_words/hash_key below. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define TOME_LE 1
#else
#define TOME_LE 0
#endif

static inline uint64_t load_tail(const uint8_t *p, size_t n) /* n in 1..8, zero-padded */
{
    uint64_t v = 0;
#if TOME_LE
    memcpy(&v, p, n);
#else
    for (size_t i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
#endif
    return v;
}

static inline uint64_t hash_mix(uint64_t h, uint64_t w)
{
    h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 29);
}

static inline uint64_t hash_final(uint64_t h)
{
    h ^= h >> 31;
    h *= 0xd6e8feb86659fd93ull;
    return h ^ (h >> 32);
}

static inline uint64_t hash_bytes(const uint8_t *p, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ ((uint64_t)n * 0xff51afd7ed558ccdull);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
#if !TOME_LE
        w = load_tail(p, 7) | ((uint64_t)p[7] << 56);
#endif
        h = hash_mix(h, w);
        p += 8;
        n -= 8;
    }
    if (n) h = hash_mix(h, load_tail(p, n));
    return hash_final(h);
}

static inline uint64_t rd64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline int bytes_equal(const uint8_t *a, const uint8_t *b, size_t len)
{
    while (len >= 8) {
        if (rd64(a) != rd64(b)) return 0;
        a += 8;
        b += 8;
        len -= 8;
    }
    while (len--)
        if (*a++ != *b++) return 0;
    return 1;
}

static inline int32_t table_find_h(const struct tome_tokenizer *tok, const uint64_t *table, size_t mask,
                                   const uint8_t *s, size_t len, uint64_t h)
{
    uint64_t tag = h & 0xFFFFFFFF00000000ull;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        uint64_t e = table[i];
        if (!e) return -1;
        if ((e & 0xFFFFFFFF00000000ull) == tag) {
            uint32_t id = (uint32_t)e - 1;
            if (tok->tok_len[id] == len && bytes_equal(tok->blob + tok->tok_off[id], s, len))
                return (int32_t)id;
        }
    }
}

static inline int32_t table_find(const struct tome_tokenizer *tok, const uint64_t *table, size_t mask,
                                 const uint8_t *s, size_t len)
{
    return table_find_h(tok, table, mask, s, len, hash_bytes(s, len));
}

/* The hash of the rank table and the piece cache: the key's first two
 * 8-byte words (zero-padded little-endian), its length, then any further
 * words. Multiplying puts every key bit into the top bits (the slot index:
 * h >> shift); the final shift folds them into the low bits (the tag). A
 * key of up to 16 bytes costs two multiplies and no loop. */
static const uint64_t k_mask_lo[17] = {0, 0xFFull, 0xFFFFull, 0xFFFFFFull, 0xFFFFFFFFull, 0xFFFFFFFFFFull,
                                       0xFFFFFFFFFFFFull, 0xFFFFFFFFFFFFFFull, ~0ull, ~0ull, ~0ull, ~0ull,
                                       ~0ull, ~0ull, ~0ull, ~0ull, ~0ull};
static const uint64_t k_mask_hi[17] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFFull, 0xFFFFull, 0xFFFFFFull,
                                       0xFFFFFFFFull, 0xFFFFFFFFFFull, 0xFFFFFFFFFFFFull,
                                       0xFFFFFFFFFFFFFFull, ~0ull};

static inline uint64_t hash_words(uint64_t w0, uint64_t w1, size_t len)
{
    uint64_t h = ((w0 ^ 0x9E3779B97F4A7C15ull) * 0xbf58476d1ce4e5b9ull) ^ ((w1 + len) * 0x94d049bb133111ebull);
    return h ^ (h >> 29);
}

static inline uint64_t hash_more(uint64_t h, const uint8_t *p, size_t n) /* words past the first 16 bytes */
{
    while (n) {
        size_t k = n < 8 ? n : 8;
        h = ((h << 23 | h >> 41) ^ load_tail(p, k)) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 29;
        p += k;
        n -= k;
    }
    return h;
}

/* Key words of s[0..len) (zero-padded); whole-word loads when s + 16 stays
 * inside the buffer that ends at end. */
static inline void key_words(const uint8_t *s, size_t len, const uint8_t *end, uint64_t *w0, uint64_t *w1)
{
#if TOME_LE
    if ((size_t)(end - s) >= 16) {
        size_t l = len < 16 ? len : 16;
        *w0 = rd64(s) & k_mask_lo[l];
        *w1 = rd64(s + 8) & k_mask_hi[l];
        return;
    }
#else
    (void)end;
#endif
    *w0 = load_tail(s, len < 8 ? len : 8);
    *w1 = len > 8 ? load_tail(s + 8, len < 16 ? len - 8 : 8) : 0;
}

static inline uint64_t hash_key(const uint8_t *s, size_t len, const uint8_t *end, uint64_t *w0_out)
{
    uint64_t w0, w1;
    key_words(s, len, end, &w0, &w1);
    *w0_out = w0;
    uint64_t h = hash_words(w0, w1, len);
    return len > 16 ? hash_more(h, s + 16, len - 16) : h;
}

/* A Bloom filter over the ranks' hashes in front of the rank table: 2^21
 * bits (256 KiB, in L2), 2 bits a rank (3% false positives for Llama 4's
 * 200k). Half of the look-ups BPE makes are of byte strings that are no
 * token (git/git: 1.03M of 2.06M); each cost a probe of the 8 MiB table,
 * an L3 or memory access. */
#define TOME_BLOOM_BITS (1u << 21)
static inline uint64_t bloom_b1(uint64_t h) { return (h >> 16) & (TOME_BLOOM_BITS - 1); }
static inline uint64_t bloom_b2(uint64_t h) { return (h >> 37) & (TOME_BLOOM_BITS - 1); }
static inline int bloom_maybe(const struct tome_tokenizer *tok, uint64_t h)
{
    uint64_t a = bloom_b1(h), b = bloom_b2(h);
    return (tok->bloom[a >> 6] >> (a & 63)) & (tok->bloom[b >> 6] >> (b & 63)) & 1;
}

static inline int32_t rank_find(const struct tome_tokenizer *tok, const uint8_t *s, size_t len, uint64_t h,
                                uint64_t w0)
{
    if (!bloom_maybe(tok, h)) return -1;
    uint16_t tag = (uint16_t)h;
    for (size_t i = (size_t)(h >> tok->rtab_shift);; i = (i + 1) & tok->rtab_mask) {
        const struct tome_rank_slot *e = &tok->rtab[i];
        if (!e->id1) return -1;
        if (e->tag == tag && e->len == len && e->key8 == w0) {
            uint32_t id = e->id1 - 1;
            if (len <= 8 || bytes_equal(tok->blob + tok->tok_off[id] + 8, s + 8, len - 8)) return (int32_t)id;
        }
    }
}

/* Id of the rank s[0..len), where s lies in a buffer ending at end. */
static inline int32_t lookup_in(const struct tome_tokenizer *tok, const uint8_t *s, size_t len,
                                const uint8_t *end)
{
    if (len <= 2) {
        if (len == 2) return tok->pair_id[(s[0] << 8) | s[1]];
        return len == 1 ? tok->byte_id[s[0]] : -1;
    }
    if (len > tok->max_rank_len) return -1;
    uint64_t w0, h = hash_key(s, len, end, &w0);
    return rank_find(tok, s, len, h, w0);
}

int32_t tome_tokenizer_lookup(const struct tome_tokenizer *tok, const uint8_t *s, size_t len)
{
    return lookup_in(tok, s, len, s + len);
}

/* Zeroed memory for the rank table. It is 8 MiB for Llama 4 and probed at
 * random, so with 4 KiB pages nearly every probe also misses the TLB; on
 * Linux it asks for transparent huge pages (2 MiB-aligned, madvise), which
 * the kernel may grant or not: the contents are the same either way. */
static void *table_alloc(size_t bytes)
{
#if defined(MADV_HUGEPAGE)
    const size_t huge = (size_t)2 << 20;
    if (bytes >= huge) {
        void *p = NULL;
        size_t len = (bytes + huge - 1) / huge * huge;
        if (posix_memalign(&p, huge, len) != 0) return NULL;
        (void)madvise(p, len, MADV_HUGEPAGE); /* advice only */
        memset(p, 0, bytes);
        return p;
    }
#endif
    return calloc(1, bytes);
}

static tome_status rank_table_build(struct tome_tokenizer *tok, const char *what)
{
    size_t cap = 16;
    while (cap < (size_t)tok->n_ranks * 2) cap <<= 1;
    tok->rtab = table_alloc(cap * sizeof *tok->rtab);
    tok->bloom = calloc(TOME_BLOOM_BITS / 64, sizeof *tok->bloom);
    if (!tok->rtab || !tok->bloom)
        return tome_set_error(TOME_ERR_NOMEM, "%s: out of memory for the token table", what);
    tok->rtab_mask = cap - 1;
    tok->rtab_shift = 64;
    for (size_t c = cap; c > 1; c >>= 1) tok->rtab_shift--;
    /* Inserts go in batches: hash a batch and prefetch its slots first, so
     * the cache misses of the (random) slots overlap instead of queueing. */
    enum { BATCH = 32 };
    uint64_t hs[BATCH], ws[BATCH];
    const uint8_t *blob_end = tok->blob + tok->blob_len;
    for (uint32_t id = 0; id < tok->n_ranks; id++) {
        if (id % BATCH == 0) {
            for (uint32_t k = 0; k < BATCH && id + k < tok->n_ranks; k++) {
                hs[k] = hash_key(tok->blob + tok->tok_off[id + k], tok->tok_len[id + k], blob_end, &ws[k]);
                __builtin_prefetch(&tok->rtab[hs[k] >> tok->rtab_shift], 1);
            }
        }
        const uint8_t *s = tok->blob + tok->tok_off[id];
        size_t len = tok->tok_len[id];
        uint64_t h = hs[id % BATCH];
        uint64_t w0 = ws[id % BATCH];
        size_t i = (size_t)(h >> tok->rtab_shift);
        for (; tok->rtab[i].id1; i = (i + 1) & tok->rtab_mask) {
            const struct tome_rank_slot *e = &tok->rtab[i];
            uint32_t other = e->id1 - 1;
            if (e->tag == (uint16_t)h && e->len == len && e->key8 == w0 &&
                (len <= 8 || memcmp(tok->blob + tok->tok_off[other] + 8, s + 8, len - 8) == 0))
                return tome_set_error(TOME_ERR_FORMAT, "%s: token %u has the same bytes as token %u", what, id,
                                      other);
        }
        uint64_t a = bloom_b1(h), bb = bloom_b2(h);
        tok->bloom[a >> 6] |= 1ull << (a & 63);
        tok->bloom[bb >> 6] |= 1ull << (bb & 63);
        tok->rtab[i].key8 = w0;
        tok->rtab[i].id1 = id + 1;
        tok->rtab[i].len = (uint16_t)len;
        tok->rtab[i].tag = (uint16_t)h;
    }
    return TOME_OK;
}

static tome_status table_build(const struct tome_tokenizer *tok, uint32_t first, uint32_t count,
                               uint64_t **out, size_t *out_mask, const char *what)
{
    size_t cap = 16;
    while (cap < (size_t)count * 2) cap <<= 1;
    uint64_t *t = calloc(cap, sizeof *t);
    if (!t) return tome_set_error(TOME_ERR_NOMEM, "%s: out of memory for the token table", what);
    size_t mask = cap - 1;
    for (uint32_t k = 0; k < count; k++) {
        uint32_t id = first + k;
        const uint8_t *s = tok->blob + tok->tok_off[id];
        size_t len = tok->tok_len[id];
        uint64_t h = hash_bytes(s, len);
        uint64_t tag = h & 0xFFFFFFFF00000000ull;
        size_t i = (size_t)h & mask;
        for (;; i = (i + 1) & mask) {
            uint64_t e = t[i];
            if (!e) break;
            if ((e & 0xFFFFFFFF00000000ull) == tag) {
                uint32_t other = (uint32_t)e - 1;
                if (tok->tok_len[other] == len && memcmp(tok->blob + tok->tok_off[other], s, len) == 0) {
                    free(t);
                    return tome_set_error(TOME_ERR_FORMAT, "%s: token %u has the same bytes as token %u",
                                          what, id, other);
                }
            }
        }
        t[i] = tag | (uint64_t)(id + 1);
    }
    *out = t;
    *out_mask = mask;
    return TOME_OK;
}

/* ------------------------------------------------------------ building */
tome_status tome_tokenizer_push_token(struct tome_tokenizer *tok, const void *bytes, size_t len,
                                      size_t *cap_tokens, size_t *cap_blob)
{
    if (len == 0 || len > UINT16_MAX)
        return tome_set_error(TOME_ERR_FORMAT, "token %u has length %zu (must be 1..65535 bytes)",
                              tok->vocab_size, len);
    if (tok->vocab_size == *cap_tokens) {
        size_t nc = *cap_tokens ? *cap_tokens * 2 : 4096;
        uint32_t *o = realloc(tok->tok_off, nc * sizeof *o);
        if (!o) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
        tok->tok_off = o;
        uint16_t *l = realloc(tok->tok_len, nc * sizeof *l);
        if (!l) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
        tok->tok_len = l;
        *cap_tokens = nc;
    }
    if (tok->blob_len + len > *cap_blob) {
        size_t nc = *cap_blob ? *cap_blob * 2 : 1 << 20;
        while (nc < tok->blob_len + len) nc *= 2;
        if (nc > UINT32_MAX) return tome_set_error(TOME_ERR_LIMIT, "token bytes exceed 4 GiB");
        uint8_t *b = realloc(tok->blob, nc);
        if (!b) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
        tok->blob = b;
        *cap_blob = nc;
    }
    memcpy(tok->blob + tok->blob_len, bytes, len);
    tok->tok_off[tok->vocab_size] = (uint32_t)tok->blob_len;
    tok->tok_len[tok->vocab_size] = (uint16_t)len;
    tok->blob_len += len;
    tok->vocab_size++;
    return TOME_OK;
}

tome_status tome_tokenizer_finish(struct tome_tokenizer *tok, const char *what)
{
    if (tok->n_ranks == 0) return tome_set_error(TOME_ERR_FORMAT, "%s: no tokens", what);
    for (uint32_t id = 0; id < tok->n_ranks; id++)
        if (tok->tok_len[id] > tok->max_rank_len) tok->max_rank_len = tok->tok_len[id];
    TOME_FORWARD(rank_table_build(tok, what));
    tok->pair_id = malloc(65536 * sizeof *tok->pair_id);
    if (!tok->pair_id) return tome_set_error(TOME_ERR_NOMEM, "%s: out of memory", what);
    memset(tok->pair_id, 0xff, 65536 * sizeof *tok->pair_id); /* -1 */
    for (int b = 0; b < 256; b++) tok->byte_id[b] = -1;
    for (uint32_t id = 0; id < tok->n_ranks; id++) {
        const uint8_t *t = tok->blob + tok->tok_off[id];
        if (tok->tok_len[id] == 2) tok->pair_id[(t[0] << 8) | t[1]] = (int32_t)id;
        if (tok->tok_len[id] == 1) tok->byte_id[t[0]] = (int32_t)id;
    }
    for (int b = 0; b < 256; b++) {
        if (tok->byte_id[b] < 0)
            return tome_set_error(TOME_ERR_FORMAT,
                                  "%s: byte 0x%02x has no token (a byte-level BPE needs all 256; "
                                  "is the file truncated?)", what, b);
    }
    uint32_t n_spec = tok->vocab_size - tok->n_ranks;
    tok->spec_min_len = UINT16_MAX;
    tok->spec_max_len = 0;
    if (n_spec) {
        TOME_FORWARD(table_build(tok, tok->n_ranks, n_spec, &tok->spec_table, &tok->spec_mask, what));
        for (uint32_t id = tok->n_ranks; id < tok->vocab_size; id++) {
            const uint8_t *s = tok->blob + tok->tok_off[id];
            uint16_t len = tok->tok_len[id];
            tok->spec_first[s[0]] = 1;
            if (len < tok->spec_min_len) tok->spec_min_len = len;
            if (len > tok->spec_max_len) tok->spec_max_len = len;
            if (memchr(s, '\n', len)) tok->spec_has_newline = 1;
        }
    }
    tok->serial = atomic_fetch_add(&g_serial, 1) + 1;
    tok->bos_id = tome_tokenizer_special_id(tok, "<|begin_of_text|>");
    tok->eos_id = tome_tokenizer_special_id(tok, "<|end_of_text|>");
    tok->eom_id = tome_tokenizer_special_id(tok, "<|eom|>");
    tok->eot_id = tome_tokenizer_special_id(tok, "<|eot|>");

    /* identity: pattern, number of ranks, then every id's bytes in order */
    XXH3_state_t *st = XXH3_createState();
    if (!st) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    XXH3_128bits_reset(st);
    static const char magic[] = "tome-tokenizer-v2";
    XXH3_128bits_update(st, magic, sizeof magic);
    XXH3_128bits_update(st, tome_pretok_pattern, strlen(tome_pretok_pattern));
    uint32_t counts[2] = {tok->n_ranks, tok->vocab_size};
    XXH3_128bits_update(st, counts, sizeof counts);
    /* all lengths, then all bytes in id order (one update when the blob is
     * already in id order, as after loading a sorted tokenizer.model) */
    XXH3_128bits_update(st, tok->tok_len, (size_t)tok->vocab_size * sizeof tok->tok_len[0]);
    int contiguous = 1;
    for (uint32_t id = 0, off = 0; id < tok->vocab_size && contiguous; id++) {
        contiguous = tok->tok_off[id] == off;
        off += tok->tok_len[id];
    }
    if (contiguous) {
        size_t total = tok->vocab_size ? (size_t)tok->tok_off[tok->vocab_size - 1] + tok->tok_len[tok->vocab_size - 1] : 0;
        XXH3_128bits_update(st, tok->blob, total);
    } else {
        for (uint32_t id = 0; id < tok->vocab_size; id++)
            XXH3_128bits_update(st, tok->blob + tok->tok_off[id], tok->tok_len[id]);
    }
    XXH128_hash_t h = XXH3_128bits_digest(st);
    XXH3_freeState(st);
    snprintf(tok->hash_hex, sizeof tok->hash_hex, "%016llx%016llx", (unsigned long long)h.high64,
             (unsigned long long)h.low64);
    return TOME_OK;
}

/* ------------------------------------------------------------ open/free */
static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

tome_status tome_tokenizer_open(const char *path, tome_tokenizer_t **out)
{
    if (!path || !out) return tome_set_error(TOME_ERR_INVALID_ARG, "tokenizer_open: NULL argument");
    *out = NULL;
    tome_buf file_path = {0};
    tome_buf data = {0};
    tome_status st = TOME_OK;
    if (is_dir(path)) {
        static const char *const names[] = {"tokenizer.model", "tokenizer.json"};
        for (size_t i = 0; i < TOME_ARRAY_LEN(names) && !file_path.len; i++) {
            tome_buf p = {0};
            st = tome_buf_appendf(&p, "%s/%s", path, names[i]);
            if (st) {
                tome_buf_free(&p);
                return st;
            }
            if (is_file(p.data))
                file_path = p;
            else
                tome_buf_free(&p);
        }
        if (!file_path.len)
            return tome_set_error(TOME_ERR_NOT_FOUND,
                                  "%s: directory holds neither tokenizer.model nor tokenizer.json", path);
    } else {
        TOME_FORWARD(tome_buf_append(&file_path, path, strlen(path)));
    }
    struct tome_tokenizer *tok = calloc(1, sizeof *tok);
    if (!tok) {
        tome_buf_free(&file_path);
        return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    }
    st = tome_read_file(file_path.data, (uint64_t)1 << 30, &data);
    if (st) goto fail;
    size_t i = 0;
    while (i < data.len && (data.data[i] == ' ' || data.data[i] == '\t' || data.data[i] == '\n' ||
                            data.data[i] == '\r'))
        i++;
    if (i == data.len) {
        st = tome_set_error(TOME_ERR_FORMAT, "%s: empty tokenizer file", file_path.data);
        goto fail;
    }
    if (data.data[i] == '{')
        st = tome_tokenizer_load_hf_json(file_path.data, data.data, data.len, tok);
    else
        st = tome_tokenizer_load_tiktoken(file_path.data, data.data, data.len, tok);
    if (st) goto fail;
    st = tome_tokenizer_finish(tok, file_path.data);
    if (st) goto fail;
    tome_buf_free(&data);
    tome_buf_free(&file_path);
    *out = tok;
    return TOME_OK;
fail:
    tome_buf_free(&data);
    tome_buf_free(&file_path);
    tome_tokenizer_free(tok);
    return st;
}

void tome_tokenizer_free(tome_tokenizer_t *tok)
{
    if (!tok) return;
    free(tok->blob);
    free(tok->tok_off);
    free(tok->tok_len);
    free(tok->rtab);
    free(tok->bloom);
    free(tok->spec_table);
    free(tok->pair_id);
    free(tok);
}

void tome_tokens_free(tome_tokens_t *t)
{
    if (!t) return;
    free(t->ids);
    t->ids = NULL;
    t->n = t->cap = 0;
}

/* ------------------------------------------------------------ accessors */
const char *tome_tokenizer_token_bytes(const tome_tokenizer_t *tok, int32_t id, size_t *len)
{
    if (!tok || id < 0 || (uint32_t)id >= tok->vocab_size) {
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = tok->tok_len[id];
    return (const char *)tok->blob + tok->tok_off[id];
}

size_t tome_tokenizer_vocab_size(const tome_tokenizer_t *tok) { return tok ? tok->vocab_size : 0; }

int32_t tome_tokenizer_special_id(const tome_tokenizer_t *tok, const char *name)
{
    if (!tok || !name || !tok->spec_table) return -1;
    return table_find(tok, tok->spec_table, tok->spec_mask, (const uint8_t *)name, strlen(name));
}

int32_t tome_tokenizer_bos_id(const tome_tokenizer_t *tok) { return tok ? tok->bos_id : -1; }
int32_t tome_tokenizer_eos_id(const tome_tokenizer_t *tok) { return tok ? tok->eos_id : -1; }

int tome_tokenizer_is_stop(const tome_tokenizer_t *tok, int32_t id)
{
    return tok && id >= 0 && (id == tok->eos_id || id == tok->eom_id || id == tok->eot_id);
}

void tome_tokenizer_hash(const tome_tokenizer_t *tok, char out_hex[33])
{
    if (!tok) {
        out_hex[0] = '\0';
        return;
    }
    memcpy(out_hex, tok->hash_hex, 33);
}

/* ------------------------------------------------------------ output */
static tome_status tokens_reserve(tome_tokens_t *out, size_t extra)
{
    if (out->n + extra <= out->cap) return TOME_OK;
    size_t nc = out->cap ? out->cap * 2 : 256;
    while (nc < out->n + extra) nc *= 2;
    int32_t *p = realloc(out->ids, nc * sizeof *p);
    if (!p) return tome_set_error(TOME_ERR_NOMEM, "encode: out of memory for %zu tokens", nc);
    out->ids = p;
    out->cap = nc;
    return TOME_OK;
}

static inline tome_status tokens_push(tome_tokens_t *out, int32_t id)
{
    if (out->n == out->cap) TOME_FORWARD(tokens_reserve(out, 1));
    out->ids[out->n++] = id;
    return TOME_OK;
}

/* ------------------------------------------------------------ BPE */
/* BPE asks the rank table about the bytes of adjacent parts, round after
 * round, each round waiting for the answers of the last; the table is
 * megabytes large and every probe is likely a cache miss, so a piece costs
 * about one memory latency per merge. bpe_prefetch starts the loads of the
 * slots of every substring of 3..maxl bytes at once (the early rounds ask
 * exactly those), so the latencies overlap instead of adding up. */
static inline void bpe_prefetch(const struct tome_tokenizer *tok, const uint8_t *s, size_t len,
                                const uint8_t *end, size_t maxl)
{
    for (size_t l = 3; l <= maxl && l < len; l++)
        for (size_t k = 0; k + l <= len; k++) {
            uint64_t w0, w1;
            key_words(s + k, l, end, &w0, &w1);
            __builtin_prefetch(&tok->rtab[hash_words(w0, w1, l) >> tok->rtab_shift]);
        }
}

static inline int32_t pair_rank(const struct tome_tokenizer *tok, const uint8_t *s, size_t a, size_t b,
                                const uint8_t *end)
{
    int32_t id = b - a == 2 ? tok->pair_id[(s[a] << 8) | s[a + 1]] : lookup_in(tok, s + a, b - a, end);
    return id < 0 ? RANK_NONE : id;
}

/* tiktoken's scan over a linked list of parts (a piece of at most
 * BPE_SMALL bytes): a part is named by its start offset k, nxt[k] is the
 * start of the next part (len after the last), prv[k] of the previous one,
 * rank[k] the rank of the pair (part k, next part) or RANK_NONE, pid[k] the
 * id of part k (a part is always a rank: a byte, or the merge that made it).
 * Each round merges the leftmost pair of lowest rank, as tiktoken does;
 * unlinking a part instead of shifting arrays keeps a round to one scan. */
static tome_status bpe_small(const struct tome_tokenizer *tok, const uint8_t *s, size_t len,
                             const uint8_t *end, tome_tokens_t *out)
{
    uint8_t nxt[BPE_SMALL], prv[BPE_SMALL];
    int32_t rank[BPE_SMALL], pid[BPE_SMALL];
    for (size_t k = 0; k < len; k++) {
        nxt[k] = (uint8_t)(k + 1);
        prv[k] = (uint8_t)(k ? k - 1 : 0);
        pid[k] = tok->byte_id[s[k]];
    }
    for (size_t k = 0; k + 1 < len; k++) rank[k] = pair_rank(tok, s, k, k + 2, end);
    rank[len - 1] = RANK_NONE;
    size_t m = len; /* number of parts */
    while (m > 1) {
        int32_t best = RANK_NONE;
        size_t bi = 0;
        for (size_t k = 0; k < len; k = nxt[k])
            if (rank[k] < best) {
                best = rank[k];
                bi = k;
            }
        if (best == RANK_NONE) break;
        /* merge part bi with the next one */
        size_t q = nxt[bi], r = nxt[q];
        nxt[bi] = (uint8_t)r;
        pid[bi] = best;
        m--;
        if (r < len) {
            prv[r] = (uint8_t)bi;
            rank[bi] = pair_rank(tok, s, bi, nxt[r], end);
        } else {
            rank[bi] = RANK_NONE;
        }
        if (bi > 0) {
            size_t p = prv[bi];
            rank[p] = pair_rank(tok, s, p, r, end);
        }
    }
    TOME_FORWARD(tokens_reserve(out, m));
    int32_t *o = out->ids + out->n;
    for (size_t k = 0; k < len; k = nxt[k]) *o++ = pid[k];
    out->n += m;
    return TOME_OK;
}

/* Heap of (rank << 32 | part start offset); min first. */
static void heap_push(uint64_t *h, size_t *n, uint64_t v)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p] <= v) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = v;
}

static uint64_t heap_pop(uint64_t *h, size_t *n)
{
    uint64_t top = h[0], v = h[--(*n)];
    size_t i = 0, cnt = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= cnt) break;
        if (c + 1 < cnt && h[c + 1] < h[c]) c++;
        if (h[c] >= v) break;
        h[i] = h[c];
        i = c;
    }
    if (cnt) h[i] = v;
    return top;
}

static tome_status bpe_large(const struct tome_tokenizer *tok, const uint8_t *s, size_t len,
                             const uint8_t *end, tome_tokens_t *out)
{
    if (len >= UINT32_MAX) return tome_set_error(TOME_ERR_LIMIT, "encode: a %zu-byte piece", len);
    /* Parts are identified by their start offset o: nxt[o] = start of the
     * next part (len for the last), prv[o] = start of the previous one, rk[o]
     * = rank of the pair (o, next part) or RANK_NONE, dead[o] once merged
     * into its left neighbour. Heap entries whose rank no longer matches
     * rk[o] are stale and skipped. pid[o] = id of the part at o. */
    int32_t *pid = malloc(len * sizeof *pid);
    uint32_t *nxt = malloc(len * sizeof *nxt);
    uint32_t *prv = malloc(len * sizeof *prv);
    int32_t *rk = malloc(len * sizeof *rk);
    uint8_t *dead = calloc(len, 1);
    uint64_t *heap = malloc(len * 3 * sizeof *heap); /* <= len initial + 2 per merge */
    tome_status st = TOME_OK;
    if (!pid || !nxt || !prv || !rk || !dead || !heap) {
        st = tome_set_error(TOME_ERR_NOMEM, "encode: out of memory for a %zu-byte piece", len);
        goto done;
    }
    size_t hn = 0;
    for (size_t o = 0; o < len; o++) {
        pid[o] = tok->byte_id[s[o]];
        nxt[o] = (uint32_t)(o + 1);
        prv[o] = (uint32_t)(o ? o - 1 : 0);
        rk[o] = o + 2 <= len ? pair_rank(tok, s, o, o + 2, end) : RANK_NONE;
        if (rk[o] != RANK_NONE) heap_push(heap, &hn, ((uint64_t)(uint32_t)rk[o] << 32) | o);
    }
    while (hn) {
        uint64_t e = heap_pop(heap, &hn);
        uint32_t o = (uint32_t)e;
        int32_t r = (int32_t)(e >> 32);
        if (dead[o] || rk[o] != r) continue; /* stale */
        /* merge part o with the next part */
        uint32_t q = nxt[o];
        dead[q] = 1;
        pid[o] = r;
        nxt[o] = nxt[q];
        if (nxt[o] < len) prv[nxt[o]] = o;
        rk[o] = nxt[o] < len ? pair_rank(tok, s, o, nxt[nxt[o]], end) : RANK_NONE;
        if (rk[o] != RANK_NONE) heap_push(heap, &hn, ((uint64_t)(uint32_t)rk[o] << 32) | o);
        if (o > 0) {
            uint32_t p = prv[o];
            rk[p] = pair_rank(tok, s, p, nxt[o], end);
            if (rk[p] != RANK_NONE) heap_push(heap, &hn, ((uint64_t)(uint32_t)rk[p] << 32) | p);
        }
    }
    for (uint32_t o = 0; o < len; o = nxt[o]) {
        st = tokens_push(out, pid[o]);
        if (st) goto done;
    }
done:
    free(pid);
    free(nxt);
    free(prv);
    free(rk);
    free(dead);
    free(heap);
    return st;
}

/* ------------------------------------------------------------ piece cache */
/* A per-thread cache (8 MiB, 2-way set-associative, on huge pages where
 * Linux grants them) from short pieces (<= PC_KEY bytes) to their ids
 * (<= PC_IDS), so frequent words skip the big hash table (which does not fit
 * in cache) and BPE. An entry is 32 bytes: the piece as two zero-padded
 * words, its length and id count, and the ids; a hit costs one 64-bit hash,
 * one compare of three words and one copy. A set is one 64-byte line: a new
 * entry goes to way 0 and the older one moves to way 1. In front of it, a
 * small direct-mapped "hot" table (256 KiB, fits L2) holds the pieces last
 * used, so the most frequent words (Zipf) never reach the large table and
 * only the others cost a prefetched load from L3 or memory. The cache lives
 * in thread-specific data, freed when the thread ends, and is cleared when
 * used with another tokenizer (told apart by a serial number given at
 * open). */
#define PC_BITS 18
#define PC_KEY 16
#define PC_IDS 4
#define PC_HOT_BITS 13
/* ids are < 2^24 (the cache is off for larger vocabularies): the top byte of
 * w[0] holds the piece's length (0 = empty), of w[1] the number of ids, so a
 * hit copies all four slots with one masked 16-byte move */
typedef struct pc_entry {
    uint64_t w0, w1;    /* the piece's bytes, zero-padded */
    uint32_t w[PC_IDS]; /* ids, low 24 bits */
} pc_entry;
#define PC_LEN(ce) ((ce)->w[0] >> 24)
#define PC_N(ce) ((ce)->w[1] >> 24)
/* The second level: pieces that the first cannot hold (longer than PC_KEY
 * bytes, up to LC_KEY, or more than PC_IDS ids, up to LC_IDS) in a smaller
 * direct-mapped table keyed by the 64-bit hash and checked byte for byte:
 * long runs of '-', '*', '=' or spaces and long words would otherwise go
 * through BPE every time they occur. */
#define LC_BITS 12
#define LC_KEY 128
#define LC_IDS 30
typedef struct lc_entry {
    uint64_t h;
    uint16_t len, n_ids; /* len 0 = empty */
    int32_t ids[LC_IDS];
    uint8_t key[LC_KEY];
} lc_entry;
/* The middle level: pieces of PC_KEY+1..MC_KEY bytes (runs of spaces,
 * long identifiers) with up to MC_IDS ids, direct-mapped, one 64-byte line
 * an entry: the key as four zero-padded words, the ids with the length and
 * id count in the top bytes of the first two (as in pc_entry). */
#define MC_BITS 14
#define MC_KEY 32
#define MC_IDS 8
typedef struct mc_entry {
    uint64_t w[4];
    uint32_t ids[MC_IDS];
} mc_entry;
#define PC_ROOM 8 /* most ids a cache hit writes (MC_IDS; PC_IDS is fewer) */
typedef struct piece_cache {
    uint64_t serial;
    _Alignas(64) pc_entry e[1u << PC_BITS]; /* 2-way sets: e[2 s], e[2 s + 1] share a cache line */
    _Alignas(64) pc_entry hot[1u << PC_HOT_BITS];
    _Alignas(64) mc_entry mid[1u << MC_BITS];
    lc_entry l[1u << LC_BITS];
} piece_cache;

static pthread_key_t g_pc_key;
static pthread_once_t g_pc_once = PTHREAD_ONCE_INIT;
static int g_pc_ok;

static void pc_make_key(void) { g_pc_ok = pthread_key_create(&g_pc_key, free) == 0; }

static piece_cache *pc_get(const struct tome_tokenizer *tok)
{
    if (tok->vocab_size >= (1u << 24)) return NULL; /* ids would not fit the entries */
    pthread_once(&g_pc_once, pc_make_key);
    if (!g_pc_ok) return NULL;
    piece_cache *pc = pthread_getspecific(g_pc_key);
    if (!pc) {
        /* zeroed: no entry is ever read uninitialised; on huge pages like
         * the rank table (it is probed at random: with 4 KiB pages every
         * look-up would miss the TLB too) */
        pc = table_alloc(sizeof *pc);
        if (!pc) return NULL;
        if (pthread_setspecific(g_pc_key, pc) != 0) {
            free(pc);
            return NULL;
        }
        pc->serial = 0;
    }
    if (pc->serial != tok->serial) {
        for (size_t i = 0; i < TOME_ARRAY_LEN(pc->e); i++) pc->e[i].w[0] = 0;
        for (size_t i = 0; i < TOME_ARRAY_LEN(pc->hot); i++) pc->hot[i].w[0] = 0;
        for (size_t i = 0; i < TOME_ARRAY_LEN(pc->mid); i++) pc->mid[i].ids[0] = 0;
        for (size_t i = 0; i < TOME_ARRAY_LEN(pc->l); i++) pc->l[i].len = 0;
        pc->serial = tok->serial;
    }
    return pc;
}

static inline void copy_ids(int32_t *dst, const uint32_t *w)
{
#ifdef TOME_PRETOK_SSE2
    __m128i v = _mm_and_si128(_mm_loadu_si128((const __m128i *)(const void *)w), _mm_set1_epi32(0xFFFFFF));
    _mm_storeu_si128((__m128i *)(void *)dst, v);
#else
    for (int j = 0; j < PC_IDS; j++) dst[j] = (int32_t)(w[j] & 0xFFFFFF);
#endif
}

#define PC_SLOT(h) ((size_t)((h) >> (64 - PC_BITS)) & ~(size_t)1) /* way 0 of the set */

/* Whether entry e holds the piece with key words w0, w1 and length len. */
static inline int pc_holds(const pc_entry *e, uint64_t w0, uint64_t w1, size_t len)
{
    return ((e->w0 ^ w0) | (e->w1 ^ w1) | (PC_LEN(e) ^ len)) == 0;
}
#define PC_HOT(h) ((size_t)(h) & ((1u << PC_HOT_BITS) - 1))
#define MC_SLOT(h) ((size_t)((h) >> (64 - MC_BITS)))

/* Encode one piece s[0..len) (s inside a buffer ending at end) without the
 * cache: one hash-table lookup, else BPE. */
static tome_status encode_piece(const struct tome_tokenizer *tok, const uint8_t *s, size_t len,
                                const uint8_t *end, tome_tokens_t *out)
{
    int32_t id = lookup_in(tok, s, len, end);
    if (id >= 0) return tokens_push(out, id);
    return len <= BPE_SMALL ? bpe_small(tok, s, len, end, out) : bpe_large(tok, s, len, end, out);
}

/* BPE of a piece (not itself a rank) through the second-level cache; pc may
 * be NULL. h = hash_key(s, len). */
static tome_status encode_bpe_cached(const struct tome_tokenizer *tok, piece_cache *pc, const uint8_t *s,
                                     size_t len, uint64_t h, const uint8_t *end, tome_tokens_t *out)
{
    lc_entry *le = NULL;
    if (pc && len <= LC_KEY) {
        le = &pc->l[h >> (64 - LC_BITS)];
        if (le->h == h && le->len == len && memcmp(le->key, s, len) == 0) {
            TOME_FORWARD(tokens_reserve(out, le->n_ids));
            memcpy(out->ids + out->n, le->ids, le->n_ids * sizeof(int32_t));
            out->n += le->n_ids;
            return TOME_OK;
        }
    }
    size_t before = out->n;
    if (len > PC_KEY) bpe_prefetch(tok, s, len, end, 4); /* (pieces up to PC_KEY bytes: done on the miss) */
    TOME_FORWARD(len <= BPE_SMALL ? bpe_small(tok, s, len, end, out) : bpe_large(tok, s, len, end, out));
    size_t k = out->n - before;
    if (le && k <= LC_IDS) {
        le->h = h;
        le->len = (uint16_t)len;
        le->n_ids = (uint16_t)k;
        memcpy(le->ids, out->ids + before, k * sizeof(int32_t));
        memcpy(le->key, s, len);
    }
    return TOME_OK;
}

/* A piece longer than PC_KEY: one rank, else BPE through the second-level
 * cache. */
static __attribute__((noinline)) tome_status encode_piece_long(const struct tome_tokenizer *tok, piece_cache *pc,
                                                               const uint8_t *s, size_t len, const uint8_t *end,
                                                               tome_tokens_t *out)
{
    uint64_t w0, h = hash_key(s, len, end, &w0);
    if (len <= tok->max_rank_len) {
        int32_t id = rank_find(tok, s, len, h, w0);
        if (id >= 0) return tokens_push(out, id);
    }
    return encode_bpe_cached(tok, pc, s, len, h, end, out);
}

/* A cache miss for a piece of 2..PC_KEY bytes with key words w0, w1 and hash
 * h: look it up in the rank table, else BPE; then remember the result in ce
 * when it has at most PC_IDS ids. */
static __attribute__((noinline)) tome_status encode_piece_miss(const struct tome_tokenizer *tok, piece_cache *pc,
                                                               pc_entry *ce, const uint8_t *s, size_t len,
                                                               uint64_t h, uint64_t w0, uint64_t w1,
                                                               const uint8_t *end, tome_tokens_t *out)
{
    size_t before = out->n;
    /* half of these pieces are no rank: start BPE's loads along with the
     * lookup of the whole piece */
    if (len >= 4) bpe_prefetch(tok, s, len, end, 8);
    int32_t id = len == 2 ? tok->pair_id[(s[0] << 8) | s[1]] : len > tok->max_rank_len ? -1
                                                                : rank_find(tok, s, len, h, w0);
    if (id >= 0)
        TOME_FORWARD(tokens_push(out, id));
    else
        TOME_FORWARD(bpe_small(tok, s, len, end, out)); /* (len <= PC_KEY: no second level) */
    size_t k = out->n - before;
    if (k <= PC_IDS) {
        ce[1] = ce[0]; /* the set's older entry goes, the newer moves to way 1 */
        ce->w0 = w0;
        ce->w1 = w1;
        for (size_t j = 0; j < PC_IDS; j++) ce->w[j] = j < k ? (uint32_t)out->ids[before + j] : 0;
        ce->w[0] |= (uint32_t)len << 24;
        ce->w[1] |= (uint32_t)k << 24;
        pc->hot[PC_HOT(h)] = *ce;
    }
    return TOME_OK;
}

/* A piece longer than the caller's limit (tome_encode_opts.max_piece_bytes):
 * BPE of one piece costs time and memory in proportion to its length. */
static __attribute__((noinline)) tome_status piece_too_long(const uint8_t *s, size_t at, size_t len, size_t maxp)
{
    return tome_set_error(TOME_ERR_LIMIT,
                          "encode: a piece of %zu bytes (a run of one kind of character without a break, "
                          "starting with byte 0x%02x) is over the limit of %zu bytes",
                          len, s[at], maxp);
}

/* maxp: longest piece allowed (0: any). last_begin (may be NULL): set to the
 * index in out of the first token of the last piece encoded. */
static tome_status encode_ordinary(const struct tome_tokenizer *tok, const uint8_t *s, size_t n, size_t maxp,
                                   tome_tokens_t *out, size_t *last_begin)
{
    if (n == 0) return TOME_OK;
    piece_cache *pc = pc_get(tok);
    const uint8_t *end = s + n;
    /* room for about one id per 3 bytes up front (mixed text averages 3.2
     * bytes per token), so a large input is not copied by repeated growth */
    if (out->cap - out->n < n / 3 + 64) TOME_FORWARD(tokens_reserve(out, n / 3 + 64));
    /* the output in locals (stores through out->ids could alias out->n) */
    if (!pc) { /* no memory for the cache: the plain way */
        size_t i = 0, begin = out->n;
        while (i < n) {
            size_t e = tome_pretok_next_fast(s, n, i);
            begin = out->n;
            if (maxp && e - i > maxp) return piece_too_long(s, i, e - i, maxp);
            TOME_FORWARD(encode_piece(tok, s + i, e - i, end, out));
            i = e;
        }
        if (last_begin) *last_begin = begin;
        return TOME_OK;
    }
    int32_t *ids = out->ids;
    size_t on = out->n, cap = out->cap;
    size_t i = 0, begin = on;
    /* Pieces go in batches: first the pre-tokenizer finds the bounds of up
     * to PC_BATCH pieces, computes their words and hashes and prefetches
     * their cache entries; then the batch is looked up. The cache is larger
     * than L1/L2, so its latency then overlaps a whole batch of scanning
     * instead of adding to every piece, and the two loops stay small. */
    enum { PC_BATCH = 32 };
    size_t bo[PC_BATCH];
    uint32_t bl[PC_BATCH];
    uint64_t bw0[PC_BATCH], bw1[PC_BATCH], bw2[PC_BATCH], bw3[PC_BATCH], bh[PC_BATCH];
    size_t blong[PC_BATCH]; /* length of a piece over PC_KEY bytes */
    tome_pretok_iter pi = {0};
    while (i < n) {
        size_t nb = 0, p = i;
        do {
            size_t e = tome_pretok_iter_next(&pi, s, n, p);
            size_t l = e - p;
            if (__builtin_expect(maxp && l > maxp, 0)) {
                out->n = on;
                return piece_too_long(s, p, l, maxp);
            }
            bo[nb] = p;
            bl[nb] = l <= PC_KEY ? (uint32_t)l : 0;
            if (l <= PC_KEY) {
                key_words(s + p, l, end, &bw0[nb], &bw1[nb]);
                bh[nb] = hash_words(bw0[nb], bw1[nb], l);
                const pc_entry *he = &pc->hot[PC_HOT(bh[nb])];
                if (!pc_holds(he, bw0[nb], bw1[nb], l)) __builtin_prefetch(&pc->e[PC_SLOT(bh[nb])]);
            } else {
                blong[nb] = l;
                if (l <= MC_KEY) { /* the middle level's key, hash and line */
                    key_words(s + p, 16, end, &bw0[nb], &bw1[nb]);
                    key_words(s + p + 16, l - 16, end, &bw2[nb], &bw3[nb]);
                    bh[nb] = hash_words(bw0[nb] ^ bw2[nb], bw1[nb] ^ (bw3[nb] * 0x9E3779B97F4A7C15ull), l);
                    __builtin_prefetch(&pc->mid[MC_SLOT(bh[nb])]);
                }
            }
            nb++;
            p = e;
        } while (nb < PC_BATCH && p < n);
        if (cap - on < PC_BATCH * PC_ROOM) {
            out->n = on;
            TOME_FORWARD(tokens_reserve(out, (n - i) / 8 + PC_BATCH * PC_ROOM));
            ids = out->ids;
            cap = out->cap;
        }
        for (size_t j = 0; j < nb; j++) {
            const uint8_t *ps = s + bo[j];
            size_t len = bl[j];
            begin = on;
            if (len) {
                /* the hot path: one compare, one copy */
                pc_entry *he = &pc->hot[PC_HOT(bh[j])];
                if (pc_holds(he, bw0[j], bw1[j], len)) {
                    copy_ids(ids + on, he->w); /* capacity checked above */
                    on += PC_N(he);
                    continue;
                }
                /* (kept as separate branches: one select over the three
                 * tables measured ~8% slower on the warm benchmark) */
                pc_entry *ce = &pc->e[PC_SLOT(bh[j])];
                if (pc_holds(ce, bw0[j], bw1[j], len)) {
                    copy_ids(ids + on, ce->w);
                    on += PC_N(ce);
                    *he = *ce;
                    continue;
                }
                if (pc_holds(ce + 1, bw0[j], bw1[j], len)) {
                    copy_ids(ids + on, ce[1].w);
                    on += PC_N(&ce[1]);
                    *he = ce[1];
                    continue;
                }
                out->n = on;
                TOME_FORWARD(encode_piece_miss(tok, pc, ce, ps, len, bh[j], bw0[j], bw1[j], end, out));
            } else {
                size_t L = blong[j];
                mc_entry *me = L <= MC_KEY ? &pc->mid[MC_SLOT(bh[j])] : NULL;
                if (me && ((me->w[0] ^ bw0[j]) | (me->w[1] ^ bw1[j]) | (me->w[2] ^ bw2[j]) | (me->w[3] ^ bw3[j]) |
                           ((me->ids[0] >> 24) ^ L)) == 0) {
                    copy_ids(ids + on, me->ids); /* room for PC_ROOM ids checked */
                    copy_ids(ids + on + 4, me->ids + 4);
                    on += me->ids[1] >> 24;
                    continue;
                }
                out->n = on;
                TOME_FORWARD(encode_piece_long(tok, pc, ps, L, end, out));
                size_t k = out->n - on;
                if (me && k <= MC_IDS) {
                    me->w[0] = bw0[j];
                    me->w[1] = bw1[j];
                    me->w[2] = bw2[j];
                    me->w[3] = bw3[j];
                    for (size_t q = 0; q < MC_IDS; q++) me->ids[q] = q < k ? (uint32_t)out->ids[on + q] : 0;
                    me->ids[0] |= (uint32_t)L << 24;
                    me->ids[1] |= (uint32_t)k << 24;
                }
            }
            ids = out->ids;
            on = out->n;
            cap = out->cap;
            if (cap - on < (nb - j) * PC_ROOM) { /* room for the rest of the batch: a miss may add many ids */
                TOME_FORWARD(tokens_reserve(out, (n - i) / 8 + PC_BATCH * PC_ROOM));
                ids = out->ids;
                cap = out->cap;
            }
        }
        i = p;
    }
    out->n = on;
    if (last_begin) *last_begin = begin;
    return TOME_OK;
}

/* Longest special token starting at s[0..n), or -1; *len its length. */
static int32_t special_at(const struct tome_tokenizer *tok, const uint8_t *s, size_t n, size_t *len)
{
    size_t max = tok->spec_max_len < n ? tok->spec_max_len : n;
    for (size_t l = max; l >= tok->spec_min_len && l > 0; l--) {
        int32_t id = table_find(tok, tok->spec_table, tok->spec_mask, s, l);
        if (id >= 0) {
            *len = l;
            return id;
        }
    }
    return -1;
}

/* last_begin (may be NULL): index in out of the first token of the last
 * ordinary piece, SIZE_MAX when the range ends with a special token or is
 * empty. */
static tome_status encode_range(const struct tome_tokenizer *tok, const uint8_t *s, size_t n,
                                int allow_special, size_t maxp, tome_tokens_t *out, size_t *last_begin)
{
    if (last_begin) *last_begin = SIZE_MAX;
    if (!allow_special || tok->vocab_size == tok->n_ranks) return encode_ordinary(tok, s, n, maxp, out, last_begin);
    size_t seg = 0;
    for (size_t p = 0; p < n; p++) {
        if (!tok->spec_first[s[p]]) continue;
        size_t l;
        int32_t id = special_at(tok, s + p, n - p, &l);
        if (id < 0) continue;
        TOME_FORWARD(encode_ordinary(tok, s + seg, p - seg, maxp, out, NULL));
        TOME_FORWARD(tokens_push(out, id));
        seg = p + l;
        p = seg - 1;
    }
    return encode_ordinary(tok, s + seg, n - seg, maxp, out, last_begin);
}

/* ------------------------------------------------------------ parallel */
typedef struct par_job {
    const struct tome_tokenizer *tok;
    const uint8_t *s;
    const size_t *cut; /* (n_chunks + 1) */
    tome_tokens_t *parts;
    int allow_special;
    size_t maxp;
} par_job;

static tome_status par_chunk(void *ctx, size_t item, int thread_index)
{
    (void)thread_index;
    par_job *j = ctx;
    return encode_range(j->tok, j->s + j->cut[item], j->cut[item + 1] - j->cut[item], j->allow_special, j->maxp,
                        &j->parts[item], NULL);
}

/* Second pass: each part's ids copied to its place in the output (dst[k] =
 * where part k starts), in parallel too, so no thread copies the whole
 * output alone. */
typedef struct par_copy {
    tome_tokens_t *parts;
    int32_t **dst;
} par_copy;

static tome_status par_copy_part(void *ctx, size_t item, int thread_index)
{
    (void)thread_index;
    par_copy *c = ctx;
    if (c->parts[item].n) memcpy(c->dst[item], c->parts[item].ids, c->parts[item].n * sizeof(int32_t));
    tome_tokens_free(&c->parts[item]);
    return TOME_OK;
}

#define PAR_MIN_CHUNK (256u * 1024u)

static tome_status encode_parallel(const struct tome_tokenizer *tok, const uint8_t *s, size_t n,
                                   int allow_special, size_t maxp, int n_threads, tome_tokens_t *out)
{
    size_t want = (size_t)n_threads * 4;
    if (want > n / PAR_MIN_CHUNK) want = n / PAR_MIN_CHUNK;
    if (want < 2) return encode_range(tok, s, n, allow_special, maxp, out, NULL);
    size_t *cut = malloc((want + 1) * sizeof *cut);
    if (!cut) return tome_set_error(TOME_ERR_NOMEM, "encode: out of memory");
    size_t nc = 0;
    cut[nc++] = 0;
    for (size_t k = 1; k < want; k++) {
        size_t target = n / want * k;
        if (target <= cut[nc - 1]) continue;
        /* next safe position at or after target */
        size_t p = target;
        while (p < n) {
            const uint8_t *nl = memchr(s + p, '\n', n - p);
            if (!nl) {
                p = n;
                break;
            }
            p = (size_t)(nl - s) + 1;
            if (tome_tokenizer_safe_split((const char *)s, n, p)) break;
        }
        if (p >= n) break;
        if (p > cut[nc - 1]) cut[nc++] = p;
    }
    cut[nc] = n;
    tome_status st = TOME_OK;
    tome_tokens_t *parts = calloc(nc, sizeof *parts);
    if (!parts) {
        free(cut);
        return tome_set_error(TOME_ERR_NOMEM, "encode: out of memory");
    }
    par_job job = {tok, s, cut, parts, allow_special, maxp};
    st = tome_parallel_for(nc, n_threads, par_chunk, &job);
    if (!st) {
        size_t total = 0;
        for (size_t k = 0; k < nc; k++) total += parts[k].n;
        st = tokens_reserve(out, total);
        int32_t **dst = st ? NULL : malloc(nc * sizeof *dst);
        if (!st && !dst) st = tome_set_error(TOME_ERR_NOMEM, "encode: out of memory");
        if (!st) {
            for (size_t k = 0, at = out->n; k < nc; k++) {
                dst[k] = out->ids + at;
                at += parts[k].n;
            }
            par_copy pcopy = {parts, dst};
            st = tome_parallel_for(nc, n_threads, par_copy_part, &pcopy);
            if (!st) out->n += total;
        }
        free(dst);
    }
    for (size_t k = 0; k < nc; k++) tome_tokens_free(&parts[k]);
    free(parts);
    free(cut);
    return st;
}

/* ------------------------------------------------------------ truncated UTF-8 */
static size_t trailing_incomplete(const uint8_t *s, size_t n) { return tome_utf8_trailing_incomplete(s, n); }

static int token_all_space(const struct tome_tokenizer *tok, int32_t id)
{
    if (id < 0 || (uint32_t)id >= tok->n_ranks) return 0;
    const uint8_t *b = tok->blob + tok->tok_off[id];
    for (size_t i = 0; i < tok->tok_len[id]; i++)
        if (b[i] != ' ' && b[i] != '\n' && b[i] != '\t') return 0;
    return 1;
}

/* A text that ends inside a character (tail = the incomplete bytes): as
 * tiktoken's encode_bytes does, encode the valid text, then take the tokens
 * of its last piece (extended backwards over tokens made only of spaces,
 * tabs and newlines), append the incomplete bytes to their bytes and
 * byte-pair-encode that as one piece. The text before the last safe split
 * point (or all of it) is encoded as usual. */
static tome_status encode_truncated(const struct tome_tokenizer *tok, const uint8_t *s, size_t n, size_t tail,
                                    const tome_encode_opts *o, int parallel, tome_tokens_t *out)
{
    size_t m = n - tail, base = out->n, p = 0;
    for (size_t q = m; q > 1;) {
        const uint8_t *nl = memrchr(s, '\n', q - 1);
        if (!nl) break;
        q = (size_t)(nl - s) + 1; /* q < m */
        if (tome_tokenizer_safe_split((const char *)s, m, q)) {
            p = q;
            break;
        }
        q--;
    }
    if (p > 0) {
        if (parallel)
            TOME_FORWARD(encode_parallel(tok, s, p, o->allow_special, o->max_piece_bytes, o->n_threads, out));
        else
            TOME_FORWARD(encode_range(tok, s, p, o->allow_special, o->max_piece_bytes, out, NULL));
    }
    size_t last = SIZE_MAX;
    TOME_FORWARD(encode_range(tok, s + p, m - p, o->allow_special, o->max_piece_bytes, out, &last));
    size_t begin = out->n;
    if (last != SIZE_MAX && last < out->n) {
        begin = last;
        if (token_all_space(tok, out->ids[begin]))
            while (begin > base && token_all_space(tok, out->ids[begin - 1])) begin--;
    }
    size_t len = tail;
    for (size_t i = begin; i < out->n; i++) len += tok->tok_len[out->ids[i]];
    uint8_t *buf = malloc(len);
    if (!buf) return tome_set_error(TOME_ERR_NOMEM, "encode: out of memory");
    size_t w = 0;
    for (size_t i = begin; i < out->n; i++) {
        memcpy(buf + w, tok->blob + tok->tok_off[out->ids[i]], tok->tok_len[out->ids[i]]);
        w += tok->tok_len[out->ids[i]];
    }
    memcpy(buf + w, s + m, tail);
    out->n = begin;
    tome_status st = o->max_piece_bytes && len > o->max_piece_bytes ? piece_too_long(buf, 0, len, o->max_piece_bytes)
                                                                    : encode_piece(tok, buf, len, buf + len, out);
    free(buf);
    return st;
}

/* ------------------------------------------------------------ public */
/* A lower bound on the ids of encode_ordinary: a piece gives one id when it
 * is a rank and at least two when it is not, and the Bloom filter in front of
 * the rank table tells most of the pieces that are not (a false positive
 * only lowers the bound). */
static tome_status count_ordinary(const struct tome_tokenizer *tok, const uint8_t *s, size_t n, size_t maxp,
                                  uint64_t *count)
{
    const uint8_t *end = s + n;
    uint64_t c = 0;
    tome_pretok_iter pi = {0};
    for (size_t p = 0; p < n;) {
        size_t e = tome_pretok_iter_next(&pi, s, n, p), l = e - p;
        if (__builtin_expect(maxp && l > maxp, 0)) return piece_too_long(s, p, l, maxp);
        if (l <= 1) c++;
        else if (l == 2) c += tok->pair_id[(s[p] << 8) | s[p + 1]] >= 0 ? 1 : 2;
        else if (l > tok->max_rank_len) c += 2;
        else {
            uint64_t w0, h = hash_key(s + p, l, end, &w0);
            c += bloom_maybe(tok, h) ? 1 : 2;
        }
        p = e;
    }
    *count = c;
    return TOME_OK;
}

/* *o = *opts (or the defaults), checked: the BOS/EOS asked for exist. */
static tome_status take_opts(const struct tome_tokenizer *tok, const tome_encode_opts *opts, tome_encode_opts *o,
                             const char *what)
{
    *o = opts ? *opts : (tome_encode_opts){0};
    if ((o->add_bos && tok->bos_id < 0) || (o->add_eos && tok->eos_id < 0))
        return tome_set_error(TOME_ERR_NOT_FOUND, "%s: this tokenizer has no %s token", what,
                              o->add_bos && tok->bos_id < 0 ? "<|begin_of_text|>" : "<|end_of_text|>");
    return TOME_OK;
}

tome_status tome_tokenizer_count_at_least(const tome_tokenizer_t *tok, const char *text, size_t n_bytes,
                                          const tome_encode_opts *opts, uint64_t *at_least)
{
    if (!tok || !at_least || (!text && n_bytes))
        return tome_set_error(TOME_ERR_INVALID_ARG, "count: NULL argument");
    tome_encode_opts o;
    TOME_FORWARD(take_opts(tok, opts, &o, "count"));
    const uint8_t *s = (const uint8_t *)text;
    if ((o.allow_special && tok->vocab_size != tok->n_ranks) || trailing_incomplete(s, n_bytes)) {
        /* specials or a cut-off last character: counted by encoding */
        tome_tokens_t t = {0};
        o.n_threads = 0;
        tome_status st = tome_tokenizer_encode(tok, text, n_bytes, &o, &t);
        *at_least = t.n;
        tome_tokens_free(&t);
        return st;
    }
    TOME_FORWARD(count_ordinary(tok, s, n_bytes, o.max_piece_bytes, at_least));
    *at_least += (o.add_bos != 0) + (o.add_eos != 0);
    return TOME_OK;
}

tome_status tome_tokenizer_encode(const tome_tokenizer_t *tok, const char *text, size_t n_bytes,
                                  const tome_encode_opts *opts, tome_tokens_t *out)
{
    if (!tok || !out || (!text && n_bytes))
        return tome_set_error(TOME_ERR_INVALID_ARG, "encode: NULL argument");
    tome_encode_opts o;
    TOME_FORWARD(take_opts(tok, opts, &o, "encode"));
    if (o.add_bos) TOME_FORWARD(tokens_push(out, tok->bos_id));
    const uint8_t *s = (const uint8_t *)text;
    int parallel = o.n_threads > 1 && !(o.allow_special && tok->spec_has_newline);
    size_t tail = trailing_incomplete(s, n_bytes);
    if (!tail) {
        if (parallel)
            TOME_FORWARD(encode_parallel(tok, s, n_bytes, o.allow_special, o.max_piece_bytes, o.n_threads, out));
        else
            TOME_FORWARD(encode_range(tok, s, n_bytes, o.allow_special, o.max_piece_bytes, out, NULL));
    } else {
        TOME_FORWARD(encode_truncated(tok, s, n_bytes, tail, &o, parallel, out));
    }
    if (o.add_eos) TOME_FORWARD(tokens_push(out, tok->eos_id));
    return TOME_OK;
}

tome_status tome_tokenizer_decode(const tome_tokenizer_t *tok, const int32_t *ids, size_t n,
                                  char **out_bytes, size_t *out_len)
{
    if (!tok || !out_bytes || !out_len || (!ids && n))
        return tome_set_error(TOME_ERR_INVALID_ARG, "decode: NULL argument");
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || (uint32_t)ids[i] >= tok->vocab_size)
            return tome_set_error(TOME_ERR_INVALID_ARG,
                                  "decode: id %ld at index %zu is outside the vocabulary (0..%u)",
                                  (long)ids[i], i, tok->vocab_size - 1);
        total += tok->tok_len[ids[i]];
    }
    char *p = realloc(*out_bytes, *out_len + total + 1);
    if (!p) return tome_set_error(TOME_ERR_NOMEM, "decode: out of memory for %zu bytes", total);
    *out_bytes = p;
    char *w = p + *out_len;
    for (size_t i = 0; i < n; i++) {
        memcpy(w, tok->blob + tok->tok_off[ids[i]], tok->tok_len[ids[i]]);
        w += tok->tok_len[ids[i]];
    }
    *w = '\0';
    *out_len += total;
    return TOME_OK;
}
