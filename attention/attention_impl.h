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
 * through the cache's page views (kv_layout.h: every format is dequantized
 * on the fly, one K/V tile per group of query heads) — see attention_cpu.c
 * for the tiling, the decode split and the log-sum-exp merge.
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
    /* --- issue 6 additions; zero means the default named -------------------- */
    /* Page source: when set, pages are read through view_at(view_ctx, p, p_end)
     * (same contract as tome_kv_view_at) instead of the cache `kv`. */
    tome_status (*view_at)(void *view_ctx, int64_t p, int64_t p_end, tome_kv_view *out);
    void *view_ctx;
    float *lse;            /* optional [n_q][n_heads]: log sum_j exp(scale*q.k_j)
                              (natural log; -inf when nothing is visible)           */
    int n_splits;          /* split of each query's keys over threads (decode):
                              0 auto (when queries x kv heads cannot fill the
                              threads), 1 never, N forced                           */
} tome_attn_params;

/* Which build of the inner loop runs on this CPU ("avx2" or "generic"). */
const char *tome_attention_cpu_isa(void);

tome_status tome_attention_cpu(const tome_attn_params *p);

#endif /* TOME_ATTENTION_IMPL_H */
