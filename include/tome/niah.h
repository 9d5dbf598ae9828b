/*
 * tome/niah.h — needle-in-a-haystack evaluation and the synthetic retrieval
 * model it is proven with.
 *
 * The grid of the original harness: context lengths × needle depths, one
 * question per cell. A needle is a passphrase: a two-word key followed by a
 * three-word value, written twice in one sentence ("The secret passphrase
 * is: K V. Again, the passphrase is: K V."), inserted at a sentence boundary
 * of the haystack. The question ends with the assistant's turn already
 * started with "The passphrase is:" + K; the model must continue with V.
 * Variants (RULER-style): single; multikey (distractor needles with other
 * keys, one asked); multiquery (several needles, all asked in turn within the
 * same context, score = fraction answered); multivalue (n_needles needles
 * that share the asked key, each with its own value; the question asks for
 * all of them, score = fraction of the values found in the one answer).
 * Scoring: exact match of the generated ids for the synthetic model,
 * normalized containment of the value text for real models.
 *
 * Everything lives in the library; cli/cmd_niah.c only parses and prints.
 */
#ifndef TOME_NIAH_H
#define TOME_NIAH_H

#include <stddef.h>
#include <stdint.h>

#include "tome/status.h"
#include "tome/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ synthetic model */
/* Writes the hand-set retrieval checkpoint (docs/synthetic-model.md) into dir
 * (created): config.json + model.safetensors. */
tome_status tome_synthetic_write(const char *dir);
/* Other shapes of the same construction (docs/synthetic-model.md, "Other
 * shapes"): hidden ≥ 128, head_dim 64..512 (even), layers ≥ 2 (the first a
 * chunked RoPE layer, the last a global NoPE layer, zero layers between),
 * heads / kv_heads (the circuit in head 0), chunk 8..64, vocab ≥ 202048.
 * Out-of-range shapes fail with TOME_ERR_INVALID_ARG naming the limit. */
typedef struct tome_synthetic_shape {
    int64_t hidden, head_dim, chunk, vocab;
    int n_layers, n_heads, n_kv_heads;
} tome_synthetic_shape;
void tome_synthetic_shape_default(tome_synthetic_shape *sh);
/* "hidden=256,layers=4,heads=8,kv_heads=2,head_dim=128,chunk=32,vocab=202048"
 * (any subset; the rest default). */
tome_status tome_synthetic_shape_parse(const char *spec, tome_synthetic_shape *sh);
tome_status tome_synthetic_write_shape(const char *dir, const tome_synthetic_shape *sh);
/* The words (each one Llama 4 token with a leading space) the synthetic model
 * can retrieve, and their ids; returns how many. */
size_t tome_synthetic_alphabet(const char *const **words, const int32_t **ids);

/* ------------------------------------------------------------ grid */
typedef enum tome_niah_variant {
    TOME_NIAH_SINGLE = 0,
    TOME_NIAH_MULTIKEY = 1,  /* n_needles - 1 distractors                        */
    TOME_NIAH_MULTIQUERY = 2, /* n_needles needles, each asked                   */
    TOME_NIAH_MULTIVALUE = 3  /* n_needles needles, one key, all values asked     */
} tome_niah_variant;

typedef struct tome_niah_progress {
    size_t cell, n_cells;
    int64_t length;
    double depth;
    int64_t tokens_done, tokens_total;
    double seconds; /* since the cell started */
} tome_niah_progress;

typedef struct tome_niah_opts {
    const char *model_dir;
    const tome_tokenizer_t *tok;
    const char *haystack_dir;  /* NULL: text found on a Debian system (licenses)    */
    const int64_t *lengths;    /* tokens of the whole prompt                         */
    size_t n_lengths;
    const double *depths;      /* 0..1                                               */
    size_t n_depths;
    tome_niah_variant variant;
    int n_needles;             /* multikey / multiquery / multivalue (default 4)     */
    int exact;                 /* 1: exact match (synthetic), 0: containment         */
    int weights;               /* tome_weights_format                                */
    int kv_fmt;                /* TOME_KV_* (0: f32)                                 */
    uint64_t kv_ram_budget;    /* 0: no cap                                          */
    const char *kv_disk_dir;   /* spill directory (NULL: none)                       */
    int ubatch;                /* 0: 512                                             */
    int n_threads;             /* 0: all                                             */
    uint64_t seed;
    void (*progress)(const tome_niah_progress *p, void *ctx);
    void *progress_ctx;
} tome_niah_opts;

typedef struct tome_niah_cell {
    int64_t length;            /* prompt tokens                                      */
    double depth;
    int64_t needle_pos;        /* token index of the asked needle                    */
    double score;              /* 0..1                                               */
    int n_right, n_asked;
    char *expected, *answer;   /* of the first question (multivalue: the values
                                  joined by ";")                                     */
    double prefill_s, decode_s;
    uint64_t kv_bytes_ram, kv_bytes_disk;
    char **expected_values;    /* multivalue: the n_expected values, first = the
                                  needle at the cell's depth; NULL otherwise        */
    int n_expected;
} tome_niah_cell;

typedef struct tome_niah_result {
    tome_niah_cell *cells;     /* [n_lengths][n_depths], row-major                   */
    size_t n_lengths, n_depths;
    int64_t *lengths;
    double *depths;
    char model[512];
    char haystack[512];
    const char *variant;
    const char *scoring;
    const char *kv;
    double seconds;
    uint64_t peak_rss;         /* bytes (VmHWM)                                      */
} tome_niah_result;

tome_status tome_niah_run(const tome_niah_opts *o, tome_niah_result **out);
void tome_niah_result_free(tome_niah_result *r); /* NULL ok */

/* Outputs (written atomically). */
tome_status tome_niah_write_json(const tome_niah_result *r, const char *path);
tome_status tome_niah_write_csv(const tome_niah_result *r, const char *path);
tome_status tome_niah_write_svg(const tome_niah_result *r, const char *path);

/* Parses "1K", "64k", "1M", "1.5M", "4096" (K = 1024, M = 1024²). */
int tome_niah_parse_tokens(const char *s, int64_t *out);
/* Formats a token count as "64K", "1M", "1000". */
void tome_niah_format_tokens(int64_t n, char *buf, size_t cap);
/* Normalized containment: lowercase, non-alphanumerics → one space. */
int tome_niah_contains(const char *answer, const char *expected);

#ifdef __cplusplus
}
#endif
#endif /* TOME_NIAH_H */
