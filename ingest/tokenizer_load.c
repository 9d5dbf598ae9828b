/*
 * ingest/tokenizer_load.c — the two tokenizer file formats.
 *
 * tiktoken (`tokenizer.model`): one line per ordinary token, "<base64 bytes>
 * <rank>", ranks a permutation of 0..N-1 (any line order; empty lines
 * skipped, as tiktoken's loader does). Special tokens are not in the file;
 * Llama 4's 2,048 (tokenizer_specials.c) follow as ids N..N+2047, as in Meta's
 * reference tokenizer.
 *
 * Hugging Face (`tokenizer.json`): model.type "BPE" whose vocab maps
 * GPT-2 byte-level strings (every byte shown as one printable code point) to
 * ids 0..N-1, and added_tokens holding the special tokens with ids N.. in a
 * contiguous range. The pre-tokenizer must be the o200k Split regex followed
 * by a ByteLevel step without its own regex, and there must be no
 * normalizer: anything else would tokenize differently, so it is refused as
 * unsupported. The merge list is not read: for a vocabulary converted from
 * tiktoken ranks (which is what transformers' TikTokenConverter writes), merge
 * priority is the id of the merged token, which is the rank tome uses.
 *
 * Both loaders fill blob/tok_off/tok_len in id order and set n_ranks;
 * tome_tokenizer_finish (tokenizer.c) builds the rest.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/core_impl.h"
#include "ingest/pretok_impl.h"
#include "ingest/tokenizer_impl.h"

/* ------------------------------------------------------------ tiktoken */
/* base64 digit values, -1 for anything else */
static const int8_t k_b64[256] = {
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 62,
    -1, -1, -1, 63, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, -1, -1, -1, -1, -1, -1, -1, 0,
    1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
    23, 24, 25, -1, -1, -1, -1, -1, -1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38,
    39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, -1, -1, -1, -1, -1,
    /* 128..255 */
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
};

static inline int8_t b64_val(uint8_t c) { return k_b64[c]; }

/* Strict base64 (with '=' padding) of s[0..n) into out; returns the decoded
 * length or -1. out must hold n / 4 * 3 bytes. */
static long b64_decode(const uint8_t *s, size_t n, uint8_t *out)
{
    if (n == 0 || n % 4) return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int8_t a = b64_val(s[i]), b = b64_val(s[i + 1]);
        if (a < 0 || b < 0) return -1;
        out[o++] = (uint8_t)((a << 2) | (b >> 4));
        if (s[i + 2] == '=') {
            if (i + 4 != n || s[i + 3] != '=' || (b & 0x0F)) return -1;
            break;
        }
        int8_t c = b64_val(s[i + 2]);
        if (c < 0) return -1;
        out[o++] = (uint8_t)(((b & 0x0F) << 4) | (c >> 2));
        if (s[i + 3] == '=') {
            if (i + 4 != n || (c & 0x03)) return -1;
            break;
        }
        int8_t d = b64_val(s[i + 3]);
        if (d < 0) return -1;
        out[o++] = (uint8_t)(((c & 0x03) << 6) | d);
    }
    return (long)o;
}

static tome_status add_llama4_specials(struct tome_tokenizer *tok, size_t *cap_tokens, size_t *cap_blob)
{
    char name[96];
    for (size_t i = 0; i < tome_llama4_special_count(); i++) {
        tome_llama4_special_name(i, name, sizeof name);
        TOME_FORWARD(tome_tokenizer_push_token(tok, name, strlen(name), cap_tokens, cap_blob));
    }
    return TOME_OK;
}

tome_status tome_tokenizer_load_tiktoken(const char *path, const char *data, size_t len,
                                         struct tome_tokenizer *tok)
{
    const uint8_t *s = (const uint8_t *)data, *end = s + len;
    size_t n_lines = 0;
    for (const uint8_t *p = s; p < end;) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        n_lines++;
        p = nl ? nl + 1 : end;
    }
    size_t cap_tokens = n_lines + 2048 + 1, cap_blob = len; /* decoded bytes < file size */
    tok->tok_off = malloc(cap_tokens * sizeof *tok->tok_off);
    tok->tok_len = malloc(cap_tokens * sizeof *tok->tok_len);
    tok->blob = malloc(cap_blob + 4096 * 48);
    cap_blob += 4096 * 48;
    uint32_t *line_rank = malloc((n_lines + 1) * sizeof *line_rank);
    uint8_t *seen = calloc(n_lines + 1, 1);
    tome_status st = TOME_OK;
    if (!tok->tok_off || !tok->tok_len || !tok->blob || !line_rank || !seen) {
        st = tome_set_error(TOME_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    size_t line_no = 0, n = 0;
    for (const uint8_t *p = s; p < end;) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        const uint8_t *le = nl ? nl : end;
        line_no++;
        const uint8_t *next = nl ? nl + 1 : end;
        if (le > p && le[-1] == '\r') le--;
        if (le == p) {
            p = next;
            continue;
        }
        const uint8_t *sp = memchr(p, ' ', (size_t)(le - p));
        if (!sp) {
            st = tome_set_error(TOME_ERR_FORMAT, "%s:%zu: expected \"<base64> <rank>\"%s", path, line_no,
                                next == end ? " (file truncated?)" : "");
            goto done;
        }
        long blen = b64_decode(p, (size_t)(sp - p), tok->blob + tok->blob_len);
        if (blen <= 0 || blen > UINT16_MAX) {
            st = tome_set_error(TOME_ERR_FORMAT, "%s:%zu: invalid base64 token \"%.*s\"", path, line_no,
                                (int)((sp - p) > 40 ? 40 : (sp - p)), (const char *)p);
            goto done;
        }
        uint64_t rank = 0;
        const uint8_t *q = sp + 1;
        if (q == le) {
            st = tome_set_error(TOME_ERR_FORMAT, "%s:%zu: missing rank%s", path, line_no,
                                next == end ? " (file truncated?)" : "");
            goto done;
        }
        for (; q < le; q++) {
            if (*q < '0' || *q > '9' || rank > 0xFFFFFFFFull) {
                st = tome_set_error(TOME_ERR_FORMAT, "%s:%zu: invalid rank \"%.*s\"", path, line_no,
                                    (int)((le - sp - 1) > 20 ? 20 : (le - sp - 1)), (const char *)sp + 1);
                goto done;
            }
            rank = rank * 10 + (uint64_t)(*q - '0');
        }
        if (rank >= n_lines) {
            st = tome_set_error(TOME_ERR_FORMAT,
                                "%s:%zu: rank %llu out of range: the file has %zu lines, so ranks must be "
                                "0..%zu (file truncated?)", path, line_no, (unsigned long long)rank, n_lines,
                                n_lines - 1);
            goto done;
        }
        if (seen[rank]) {
            st = tome_set_error(TOME_ERR_FORMAT, "%s:%zu: rank %llu appears twice", path, line_no,
                                (unsigned long long)rank);
            goto done;
        }
        seen[rank] = 1;
        line_rank[n] = (uint32_t)rank;
        tok->tok_off[n] = (uint32_t)tok->blob_len;
        tok->tok_len[n] = (uint16_t)blen;
        tok->blob_len += (size_t)blen;
        n++;
        p = next;
    }
    if (n == 0) {
        st = tome_set_error(TOME_ERR_FORMAT, "%s: no tokens", path);
        goto done;
    }
    for (size_t r = 0; r < n; r++)
        if (!seen[r]) {
            st = tome_set_error(TOME_ERR_FORMAT, "%s: rank %zu is missing (ranks must be 0..%zu)", path, r,
                                n - 1);
            goto done;
        }
    /* put tokens in rank order (a no-op for Meta's file, which is sorted) */
    int sorted = 1;
    for (size_t k = 0; k < n && sorted; k++) sorted = line_rank[k] == k;
    if (!sorted) {
        uint32_t *off = malloc(n * sizeof *off);
        uint16_t *ln = malloc(n * sizeof *ln);
        if (!off || !ln) {
            free(off);
            free(ln);
            st = tome_set_error(TOME_ERR_NOMEM, "%s: out of memory", path);
            goto done;
        }
        for (size_t k = 0; k < n; k++) {
            off[line_rank[k]] = tok->tok_off[k];
            ln[line_rank[k]] = tok->tok_len[k];
        }
        memcpy(tok->tok_off, off, n * sizeof *off);
        memcpy(tok->tok_len, ln, n * sizeof *ln);
        free(off);
        free(ln);
    }
    tok->n_ranks = (uint32_t)n;
    tok->vocab_size = (uint32_t)n;
    st = add_llama4_specials(tok, &cap_tokens, &cap_blob);
    if (st) tome_error_prefix(st, "%s", path);
done:
    free(line_rank);
    free(seen);
    return st;
}

/* ------------------------------------------------------------ tokenizer.json */
/* GPT-2 byte-level alphabet: printable bytes stand for themselves, the other
 * 68 bytes (0..32, 127..160, 173) for U+0100.. in byte order. */
static void byte_level_inverse(int16_t inv[324])
{
    for (int i = 0; i < 324; i++) inv[i] = -1;
    int extra = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        if (printable)
            inv[b] = (int16_t)b;
        else
            inv[256 + extra++] = (int16_t)b;
    }
}

/* Byte-level string (UTF-8) to bytes; returns the length or -1. */
static long byte_level_decode(const int16_t inv[324], const char *str, uint8_t *out, size_t cap)
{
    const uint8_t *s = (const uint8_t *)str;
    size_t n = strlen(str), o = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        if (s[i] < 0x80) {
            cp = s[i];
            i += 1;
        } else if ((s[i] & 0xE0) == 0xC0 && i + 1 < n) {
            cp = ((uint32_t)(s[i] & 0x1F) << 6) | (s[i + 1] & 0x3F);
            i += 2;
        } else {
            return -1; /* the alphabet stops at U+0143 */
        }
        if (cp >= 324 || inv[cp] < 0 || o >= cap) return -1;
        out[o++] = (uint8_t)inv[cp];
    }
    return (long)o;
}

static int pretokenizer_ok(json_t *pt, int *have_split)
{
    const char *type = json_string_value(json_object_get(pt, "type"));
    if (!type) return 0;
    if (!strcmp(type, "Sequence")) {
        json_t *list = json_object_get(pt, "pretokenizers"), *item;
        size_t i;
        if (!json_is_array(list)) return 0;
        json_array_foreach(list, i, item) if (!pretokenizer_ok(item, have_split)) return 0;
        return 1;
    }
    if (!strcmp(type, "Split")) {
        const char *re = json_string_value(json_object_get(json_object_get(pt, "pattern"), "Regex"));
        const char *beh = json_string_value(json_object_get(pt, "behavior"));
        if (!re || strcmp(re, tome_pretok_pattern) != 0) return 0;
        if (beh && strcmp(beh, "Isolated") != 0) return 0;
        if (json_is_true(json_object_get(pt, "invert"))) return 0;
        *have_split = 1;
        return 1;
    }
    if (!strcmp(type, "ByteLevel")) {
        return !json_is_true(json_object_get(pt, "use_regex")) &&
               !json_is_true(json_object_get(pt, "add_prefix_space"));
    }
    return 0;
}

typedef struct added_tok {
    long long id;
    const char *content;
} added_tok;

static int cmp_added(const void *a, const void *b)
{
    long long x = ((const added_tok *)a)->id, y = ((const added_tok *)b)->id;
    return (x > y) - (x < y);
}

tome_status tome_tokenizer_load_hf_json(const char *path, const char *data, size_t len,
                                        struct tome_tokenizer *tok)
{
    json_error_t jerr;
    json_t *root = json_loadb(data, len, 0, &jerr);
    if (!root)
        return tome_set_error(TOME_ERR_FORMAT, "%s:%d:%d: invalid JSON: %s", path, jerr.line, jerr.column,
                              jerr.text);
    tome_status st = TOME_OK;
    uint8_t *bytes = NULL;
    uint32_t *off = NULL;
    uint16_t *lens = NULL;
    added_tok *added = NULL;
    json_t *model = json_object_get(root, "model");
    const char *mtype = json_string_value(json_object_get(model, "type"));
    json_t *vocab = json_object_get(model, "vocab");
    if (!json_is_object(model) || !json_is_object(vocab)) {
        st = tome_set_error(TOME_ERR_FORMAT, "%s: no model.vocab object", path);
        goto done;
    }
    if (!mtype || strcmp(mtype, "BPE") != 0) {
        st = tome_set_error(TOME_ERR_UNSUPPORTED, "%s: model.type is \"%s\"; only BPE is supported", path,
                            mtype ? mtype : "(missing)");
        goto done;
    }
    json_t *norm = json_object_get(root, "normalizer");
    if (norm && !json_is_null(norm)) {
        st = tome_set_error(TOME_ERR_UNSUPPORTED, "%s: a normalizer is set; the Llama 4 tokenizer has none",
                            path);
        goto done;
    }
    int have_split = 0;
    json_t *pt = json_object_get(root, "pre_tokenizer");
    if (!pt || !pretokenizer_ok(pt, &have_split) || !have_split) {
        st = tome_set_error(TOME_ERR_UNSUPPORTED,
                            "%s: pre_tokenizer is not the o200k Split regex + ByteLevel(use_regex=false) "
                            "that tome implements", path);
        goto done;
    }
    size_t n = json_object_size(vocab);
    if (n == 0 || n > 0x7FFFFFFF) {
        st = tome_set_error(TOME_ERR_FORMAT, "%s: model.vocab is empty", path);
        goto done;
    }
    int16_t inv[324];
    byte_level_inverse(inv);
    size_t cap = n * 64 + 1024, used = 0;
    bytes = malloc(cap);
    off = malloc(n * sizeof *off);
    lens = calloc(n, sizeof *lens);
    if (!bytes || !off || !lens) {
        st = tome_set_error(TOME_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    const char *key;
    json_t *val;
    json_object_foreach(vocab, key, val)
    {
        if (!json_is_integer(val) || json_integer_value(val) < 0 || (size_t)json_integer_value(val) >= n) {
            st = tome_set_error(TOME_ERR_FORMAT, "%s: model.vocab[\"%s\"]: id must be an integer in 0..%zu",
                                path, key, n - 1);
            goto done;
        }
        size_t id = (size_t)json_integer_value(val);
        if (lens[id]) {
            st = tome_set_error(TOME_ERR_FORMAT, "%s: model.vocab: id %zu appears twice", path, id);
            goto done;
        }
        if (cap - used < 4096) {
            size_t nc = cap * 2;
            uint8_t *nb = realloc(bytes, nc);
            if (!nb) {
                st = tome_set_error(TOME_ERR_NOMEM, "%s: out of memory", path);
                goto done;
            }
            bytes = nb;
            cap = nc;
        }
        long bl = byte_level_decode(inv, key, bytes + used, cap - used < 65535 ? cap - used : 65535);
        if (bl <= 0) {
            st = tome_set_error(TOME_ERR_FORMAT,
                                "%s: model.vocab[\"%s\"] (id %zu) is not a byte-level BPE token", path, key, id);
            goto done;
        }
        off[id] = (uint32_t)used;
        lens[id] = (uint16_t)bl;
        used += (size_t)bl;
    }
    size_t cap_tokens = 0, cap_blob = 0;
    for (size_t id = 0; id < n; id++) {
        st = tome_tokenizer_push_token(tok, bytes + off[id], lens[id], &cap_tokens, &cap_blob);
        if (st) goto done;
    }
    tok->n_ranks = (uint32_t)n;
    json_t *arr = json_object_get(root, "added_tokens"), *item;
    size_t n_added = json_is_array(arr) ? json_array_size(arr) : 0, i;
    if (n_added) {
        added = calloc(n_added, sizeof *added);
        if (!added) {
            st = tome_set_error(TOME_ERR_NOMEM, "%s: out of memory", path);
            goto done;
        }
        json_array_foreach(arr, i, item)
        {
            json_t *jid = json_object_get(item, "id");
            added[i].content = json_string_value(json_object_get(item, "content"));
            added[i].id = json_is_integer(jid) ? json_integer_value(jid) : -1;
            if (!added[i].content || !added[i].content[0] || added[i].id < 0) {
                st = tome_set_error(TOME_ERR_FORMAT, "%s: added_tokens[%zu]: needs an id and a content", path,
                                    i);
                goto done;
            }
        }
        qsort(added, n_added, sizeof *added, cmp_added);
        for (i = 0; i < n_added; i++) {
            if (added[i].id != (long long)(n + i)) {
                st = tome_set_error(TOME_ERR_UNSUPPORTED,
                                    "%s: added token \"%s\" has id %lld; tome needs added tokens to take the "
                                    "ids right after the vocabulary (%zu..%zu) in order",
                                    path, added[i].content, added[i].id, n, n + n_added - 1);
                goto done;
            }
            st = tome_tokenizer_push_token(tok, added[i].content, strlen(added[i].content), &cap_tokens,
                                           &cap_blob);
            if (st) {
                tome_error_prefix(st, "%s: added_tokens", path);
                goto done;
            }
        }
    }
done:
    free(bytes);
    free(off);
    free(lens);
    free(added);
    json_decref(root);
    return st;
}
