/*
 * attention/attention_cuda.h — the CUDA attention kernels (attention/cuda/),
 * callable from C. One params struct per kernel family, flash-attention
 * style: pointers, strides, sizes, then the paged-KV section.
 *
 * Paged KV on the device (the layout of kvcache/kv_layout.h, byte for byte
 * the pages the CPU reads): positions [base, tail_p0) are sealed pages,
 * pages[j] holding [base + j*T, base + (j+1)*T) in format layout.fmt with
 * its scales; positions [tail_p0, tail_p0 + n_tail) are the open page's
 * float32 rows (tail_k, tail_v: [n_tail][H*D]). All pointers, the page
 * table included, are device pointers.
 *
 * Kernels (attention_prefill.cu, attention_decode.cu):
 *   prefill — bf16 tensor cores (mma.sync m16n8k16, fp32 accumulate),
 *     sm_80+. A block owns 64 rows = (query, head) pairs of one KV head (the
 *     rep = n_heads/n_kv_heads heads of a group packed along M, so every K/V
 *     tile is dequantized into shared memory once for all of them) and walks
 *     64-key tiles with online softmax; causal or chunked-causal mask from
 *     q_pos; output bf16 and optional lse.
 *   decode — split-KV (flash-decoding): grid (n_splits, kv heads, queries);
 *     each block reduces a slice of the context for the group's heads into
 *     (m, l, acc) partials in the workspace, a second kernel merges them by
 *     log-sum-exp.
 * Queries are bf16 (already RoPE'd / normed / temperature-scaled), scale
 * 1/sqrt(head_dim) unless given; head_dim must be 128 (Scout) for now.
 *
 * Every CUDA call is checked; failures come back as TOME_ERR_DEVICE with the
 * CUDA error string, never an abort. In a build without CUDA every function
 * returns TOME_ERR_UNSUPPORTED (attention_cuda_stub.c).
 */
#ifndef TOME_ATTENTION_CUDA_H
#define TOME_ATTENTION_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "kvcache/kv_layout.h"
#include "tome/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tome_attn_cuda_kv {
    const uint8_t *const *pages; /* [n_pages] sealed pages (device)             */
    int64_t n_pages;
    int64_t base;                /* position of row 0 of pages[0]               */
    tome_kv_layout layout;       /* of the sealed pages (tome_kv_layout_init)   */
    const float *tail_k, *tail_v; /* [n_tail][H*D] float rows                   */
    int64_t tail_p0, n_tail;     /* tail_p0 == base + n_pages * T               */
} tome_attn_cuda_kv;

typedef struct tome_attn_cuda_params {
    const uint16_t *q;      /* bf16 [n_q][q_stride]: head h at h*head_dim        */
    size_t q_stride;        /* elements                                          */
    uint16_t *out;          /* bf16 [n_q][out_stride]                            */
    size_t out_stride;
    float *lse;             /* optional [n_q][n_heads], natural log              */
    const int64_t *q_pos;   /* [n_q] absolute positions                          */
    size_t n_q;
    int n_heads, n_kv_heads, head_dim;
    int64_t chunk;          /* 0 causal, C chunked-causal                        */
    float scale;            /* 0: 1/sqrt(head_dim)                               */
    tome_attn_cuda_kv kv;
    /* decode only */
    int n_splits;           /* 0: enough to fill the device                      */
    void *workspace;        /* tome_attn_cuda_decode_workspace() bytes           */
    size_t workspace_bytes;
    void *stream;           /* cudaStream_t; NULL: default stream                */
} tome_attn_cuda_params;

tome_status tome_attn_cuda_prefill(const tome_attn_cuda_params *p);
tome_status tome_attn_cuda_decode(const tome_attn_cuda_params *p);
/* Workspace bytes tome_attn_cuda_decode needs for p (its n_splits resolved). */
size_t tome_attn_cuda_decode_workspace(const tome_attn_cuda_params *p);

/* Small device-memory helpers for tests and benchmarks. */
tome_status tome_attn_cuda_malloc(void **dev, size_t n);
void tome_attn_cuda_free(void *dev); /* NULL ok */
tome_status tome_attn_cuda_upload(void *dev, const void *host, size_t n);
tome_status tome_attn_cuda_download(void *host, const void *dev, size_t n);
tome_status tome_attn_cuda_sync(void);

#ifdef __cplusplus
}
#endif
#endif /* TOME_ATTENTION_CUDA_H */
