/*
 * attention/attention_impl.h — attention over the KV cache (CPU reference).
 *
 * One params struct per kernel family (flash-attention style). Queries arrive
 * already RoPE'd / QK-normed / temperature-scaled by the model. For query i
 * at position q_pos[i] the visible keys are [lo, q_pos[i]] with lo = 0 on a
 * global layer (chunk == 0) and lo = floor(q_pos[i] / chunk) * chunk on a
 * chunked layer. GQA: query head h uses KV head h / (n_heads / n_kv_heads);
 * the heads of one KV head are processed together so each K/V row is read
 * once. Softmax is online (running max and sum), accumulated in fp32, with
 * scale 1/sqrt(head_dim) unless `scale` is given. K/V are read page by page
 * through tome_kv_span_at (kvcache_impl.h).
 */
#ifndef TOME_ATTENTION_IMPL_H
#define TOME_ATTENTION_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "kvcache/kvcache_impl.h"

typedef struct tome_attn_params {
    const float *q;        /* [n_q][q_stride]: head h at q + i*q_stride + h*head_dim */
    size_t q_stride;
    float *out;            /* [n_q][out_stride], same head layout                    */
    size_t out_stride;
    const int64_t *q_pos;  /* [n_q] absolute positions (non-decreasing not required) */
    size_t n_q;
    int n_heads, n_kv_heads, head_dim;
    int64_t chunk;         /* 0: causal; C: chunked causal                           */
    float scale;           /* 0: 1/sqrt(head_dim)                                    */
    /* paged KV */
    const tome_kvcache *kv;
    int layer, seq;
    int n_threads;         /* 0: all                                                 */
} tome_attn_params;

tome_status tome_attention_cpu(const tome_attn_params *p);

#endif /* TOME_ATTENTION_IMPL_H */
