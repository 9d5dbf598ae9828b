/*
 * kvcache/kvcache_impl.h — the interface between the forward pass / attention
 * and the KV cache.
 *
 * The forward pass writes K and V of n new tokens of one (layer, sequence) at
 * consecutive positions; attention reads a position range [p0, p1) of a
 * (layer, sequence) page by page: tome_kv_span_at(p, p1) returns the span
 * that holds position p — a contiguous block of K rows and V rows for the
 * positions [span.p0, span.p1) with span.p0 == p and span.p1 <= p1. Attention
 * code loops "while (p < p1) { span_at(p); ...; p = span.p1; }" and never
 * assumes more than one span is valid at a time (a paged or tiered cache may
 * reuse the memory of the previous span: a span is valid until the next call
 * on the same cache).
 *
 * Row layout inside a span: K row of position p is
 * k[(p - span.p0) * row_stride + kv_head * head_dim + d], the same for V;
 * values are float32 in this implementation (a quantized cache reports its
 * format in span.fmt and attention dequantizes; issue 5).
 *
 * Per-layer policy: window[l] == 0 keeps every position (global / NoPE
 * layers); window[l] == C > 0 keeps only the current C-position chunk
 * (chunked RoPE layers): writing a position of a new chunk recycles the
 * memory, and reading a position of an earlier chunk is an error. Writes of
 * one call never cross a chunk boundary on such a layer (the forward pass
 * splits micro-batches at multiples of the chunk size).
 *
 * The only implementation today is kv_simple.c (contiguous fp32); issue 5
 * replaces it with a paged, quantized, tiered cache behind this interface.
 */
#ifndef TOME_KVCACHE_IMPL_H
#define TOME_KVCACHE_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "tome/status.h"

typedef struct tome_kvcache tome_kvcache;

typedef struct tome_kv_params {
    int n_layers;
    int n_kv_heads;
    int head_dim;
    int n_seqs;              /* sequences held at once                       */
    int64_t max_tokens;      /* capacity per sequence of a global layer      */
    const int64_t *window;   /* [n_layers]: 0 = keep all, C = one C-chunk    */
} tome_kv_params;

enum { TOME_KV_F32 = 0 };

typedef struct tome_kv_span {
    int64_t p0, p1;          /* positions [p0, p1)                           */
    const float *k, *v;      /* row of p0; rows row_stride floats apart      */
    size_t row_stride;       /* floats between consecutive positions         */
    int fmt;                 /* TOME_KV_F32                                  */
} tome_kv_span;

tome_status tome_kv_open(const tome_kv_params *p, tome_kvcache **out);
void tome_kv_free(tome_kvcache *kv); /* NULL ok */

/* Writes n rows (k, v: [n][n_kv_heads * head_dim]) at positions pos..pos+n-1. */
tome_status tome_kv_write(tome_kvcache *kv, int layer, int seq, int64_t pos, size_t n, const float *k,
                          const float *v);
/* The span holding position p, clipped to p_end. */
tome_status tome_kv_span_at(const tome_kvcache *kv, int layer, int seq, int64_t p, int64_t p_end,
                            tome_kv_span *out);
/* Forgets every position of seq. */
void tome_kv_clear(tome_kvcache *kv, int seq);
/* Bytes of K/V storage allocated. */
uint64_t tome_kv_bytes(const tome_kvcache *kv);

#endif /* TOME_KVCACHE_IMPL_H */
