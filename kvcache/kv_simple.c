/*
 * kvcache/kv_simple.c — a simple contiguous fp32 KV cache (the placeholder
 * that issue 5 replaces with the paged, quantized, tiered cache; the
 * interface is kvcache_impl.h).
 *
 * Layout: per (layer, sequence) one K array and one V array of `slots` rows
 * of n_kv_heads * head_dim floats. Global layers (window 0) have
 * slots = max_tokens and position p lives in row p. Chunked layers (window
 * C) have slots = min(C, max_tokens) and keep the current chunk only:
 * position p lives in row p % C, and `chunk[layer][seq]` records which chunk
 * the rows hold (-1: none). A layer's whole range is one span, so attention
 * sees a single page per read; its code is page-based all the same.
 */
#include "kvcache/kvcache_impl.h"

#include <stdlib.h>
#include <string.h>

#include "core/error_impl.h"

struct tome_kvcache {
    tome_kv_params p;
    int64_t *window;   /* [n_layers]               */
    int64_t *slots;    /* [n_layers]               */
    float **k, **v;    /* [n_layers * n_seqs]      */
    int64_t *chunk;    /* [n_layers * n_seqs]      */
    int64_t *len;      /* [n_layers * n_seqs]: positions written (next expected) */
    size_t row;        /* floats per position      */
    uint64_t bytes;
};

void tome_kv_free(tome_kvcache *kv)
{
    if (!kv) return;
    size_t n = (size_t)kv->p.n_layers * (size_t)kv->p.n_seqs;
    for (size_t i = 0; kv->k && i < n; i++) {
        free(kv->k[i]);
        free(kv->v[i]);
    }
    free(kv->k);
    free(kv->v);
    free(kv->chunk);
    free(kv->len);
    free(kv->window);
    free(kv->slots);
    free(kv);
}

tome_status tome_kv_open(const tome_kv_params *p, tome_kvcache **out)
{
    *out = NULL;
    if (p->n_layers <= 0 || p->n_kv_heads <= 0 || p->head_dim <= 0 || p->n_seqs <= 0 || p->max_tokens <= 0)
        return tome_set_error(TOME_ERR_INVALID_ARG, "kv cache: layers, heads, head_dim, sequences and capacity must be positive");
    tome_kvcache *kv = calloc(1, sizeof *kv);
    if (!kv) return tome_set_error(TOME_ERR_NOMEM, "kv cache: out of memory");
    kv->p = *p;
    kv->row = (size_t)p->n_kv_heads * (size_t)p->head_dim;
    size_t n = (size_t)p->n_layers * (size_t)p->n_seqs;
    kv->window = calloc((size_t)p->n_layers, sizeof *kv->window);
    kv->slots = calloc((size_t)p->n_layers, sizeof *kv->slots);
    kv->k = calloc(n, sizeof *kv->k);
    kv->v = calloc(n, sizeof *kv->v);
    kv->chunk = calloc(n, sizeof *kv->chunk);
    kv->len = calloc(n, sizeof *kv->len);
    if (!kv->window || !kv->slots || !kv->k || !kv->v || !kv->chunk || !kv->len) goto oom;
    for (int l = 0; l < p->n_layers; l++) {
        int64_t w = p->window ? p->window[l] : 0;
        kv->window[l] = w;
        kv->slots[l] = (w > 0 && w < p->max_tokens) ? w : p->max_tokens;
        for (int s = 0; s < p->n_seqs; s++) {
            size_t i = (size_t)l * (size_t)p->n_seqs + (size_t)s;
            size_t nb = (size_t)kv->slots[l] * kv->row * sizeof(float);
            kv->k[i] = malloc(nb);
            kv->v[i] = malloc(nb);
            if (!kv->k[i] || !kv->v[i]) goto oom;
            kv->bytes += 2 * nb;
            kv->chunk[i] = -1;
        }
    }
    p = NULL;
    kv->p.window = NULL;
    *out = kv;
    return TOME_OK;
oom:
    tome_kv_free(kv);
    return tome_set_error(TOME_ERR_NOMEM, "kv cache: out of memory");
}

tome_status tome_kv_write(tome_kvcache *kv, int layer, int seq, int64_t pos, size_t n, const float *k,
                          const float *v)
{
    if (layer < 0 || layer >= kv->p.n_layers || seq < 0 || seq >= kv->p.n_seqs || pos < 0)
        return tome_set_error(TOME_ERR_INVALID_ARG, "kv cache: layer %d / sequence %d / position %lld out of range",
                              layer, seq, (long long)pos);
    if (n == 0) return TOME_OK;
    size_t i = (size_t)layer * (size_t)kv->p.n_seqs + (size_t)seq;
    int64_t w = kv->window[layer], end = pos + (int64_t)n;
    if (end > kv->p.max_tokens)
        return tome_set_error(TOME_ERR_LIMIT, "kv cache: position %lld is past the capacity of %lld tokens",
                              (long long)(end - 1), (long long)kv->p.max_tokens);
    int64_t row0 = pos;
    if (w > 0) {
        int64_t c = pos / w;
        if ((end - 1) / w != c)
            return tome_set_error(TOME_ERR_INVALID_ARG,
                                  "kv cache: layer %d: write of positions %lld..%lld crosses a %lld-token chunk boundary",
                                  layer, (long long)pos, (long long)(end - 1), (long long)w);
        if (kv->chunk[i] != c) kv->chunk[i] = c; /* a new chunk recycles the rows */
        row0 = pos - c * w;
    }
    memcpy(kv->k[i] + (size_t)row0 * kv->row, k, n * kv->row * sizeof(float));
    memcpy(kv->v[i] + (size_t)row0 * kv->row, v, n * kv->row * sizeof(float));
    if (end > kv->len[i] || pos < kv->len[i]) kv->len[i] = end;
    return TOME_OK;
}

tome_status tome_kv_span_at(const tome_kvcache *kv, int layer, int seq, int64_t p, int64_t p_end, tome_kv_span *out)
{
    if (layer < 0 || layer >= kv->p.n_layers || seq < 0 || seq >= kv->p.n_seqs)
        return tome_set_error(TOME_ERR_INVALID_ARG, "kv cache: layer %d / sequence %d out of range", layer, seq);
    size_t i = (size_t)layer * (size_t)kv->p.n_seqs + (size_t)seq;
    int64_t w = kv->window[layer];
    if (p < 0 || p >= p_end || p_end > kv->len[i])
        return tome_set_error(TOME_ERR_INVALID_ARG, "kv cache: layer %d: read of [%lld, %lld) but %lld positions written",
                              layer, (long long)p, (long long)p_end, (long long)kv->len[i]);
    int64_t row0 = p, last = p_end;
    if (w > 0) {
        int64_t c = p / w;
        if (c != kv->chunk[i])
            return tome_set_error(TOME_ERR_INVALID_ARG,
                                  "kv cache: layer %d: position %lld is in chunk %lld, the cache holds chunk %lld", layer,
                                  (long long)p, (long long)c, (long long)kv->chunk[i]);
        row0 = p - c * w;
        if (last > (c + 1) * w) last = (c + 1) * w;
    }
    out->p0 = p;
    out->p1 = last;
    out->k = kv->k[i] + (size_t)row0 * kv->row;
    out->v = kv->v[i] + (size_t)row0 * kv->row;
    out->row_stride = kv->row;
    out->fmt = TOME_KV_F32;
    return TOME_OK;
}

void tome_kv_clear(tome_kvcache *kv, int seq)
{
    for (int l = 0; l < kv->p.n_layers; l++) {
        size_t i = (size_t)l * (size_t)kv->p.n_seqs + (size_t)seq;
        kv->len[i] = 0;
        kv->chunk[i] = -1;
    }
}

uint64_t tome_kv_bytes(const tome_kvcache *kv) { return kv ? kv->bytes : 0; }
