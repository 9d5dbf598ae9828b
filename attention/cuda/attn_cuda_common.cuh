/*
 * attention/cuda/attn_cuda_common.cuh — shared pieces of the CUDA attention
 * kernels: the device-side view of the paged KV (kv_layout.h pages plus the
 * open page's float rows), dequantization of 4 or 8 consecutive channels of
 * one position, bf16 packing, the mma.sync wrapper, and the host-side error
 * check that turns a CUDA error into a tome_status.
 */
#ifndef TOME_ATTN_CUDA_COMMON_CUH
#define TOME_ATTN_CUDA_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdint.h>

extern "C" {
#include "attention/attention_cuda.h"
#include "core/error_impl.h"
}

#define ATTN_CU_TRY(call, what)                                                                             \
    do {                                                                                                    \
        cudaError_t e_ = (call);                                                                            \
        if (e_ != cudaSuccess) {                                                                            \
            cudaGetLastError();                                                                             \
            return tome_set_error(TOME_ERR_DEVICE, "attention (CUDA): %s: %s", what, cudaGetErrorString(e_)); \
        }                                                                                                   \
    } while (0)

/* The paged KV as the kernels see it (plain values: passed by value). */
struct attn_kv_dev {
    const uint8_t *const *pages;
    const float *tail_k, *tail_v;
    int64_t base, tail_p0, n_tail;
    int fmt, T, bits, G, hd, groups_row;
    uint32_t row_bytes, k_off, v_off, ks_off, kz_off, vs_off, vz_off;
};

static inline attn_kv_dev attn_kv_dev_from(const tome_attn_cuda_kv *kv)
{
    attn_kv_dev d;
    d.pages = kv->pages;
    d.tail_k = kv->tail_k;
    d.tail_v = kv->tail_v;
    d.base = kv->base;
    d.tail_p0 = kv->tail_p0;
    d.n_tail = kv->n_tail;
    d.fmt = kv->layout.fmt;
    d.T = kv->layout.page_tokens;
    d.bits = kv->layout.bits;
    d.G = kv->layout.group;
    d.hd = kv->layout.hd;
    d.groups_row = kv->layout.groups_row;
    d.row_bytes = kv->layout.row_bytes;
    d.k_off = kv->layout.k_off;
    d.v_off = kv->layout.v_off;
    d.ks_off = kv->layout.ks_off;
    d.kz_off = kv->layout.kz_off;
    d.vs_off = kv->layout.vs_off;
    d.vz_off = kv->layout.vz_off;
    return d;
}

__device__ __forceinline__ float attn_h2f(uint16_t h) { return __half2float(__ushort_as_half(h)); }

/* N (4 or 8) consecutive channels [c0, c0 + N) of K (is_v 0) or V of
 * position t, dequantized to float. c0 is a multiple of N. */
template <int N>
__device__ __forceinline__ void attn_kv_load(const attn_kv_dev &kv, int64_t t, int is_v, int c0, float *out)
{
    if (t >= kv.tail_p0) {
        const float *src = (is_v ? kv.tail_v : kv.tail_k) + (size_t)(t - kv.tail_p0) * (size_t)kv.hd + c0;
#pragma unroll
        for (int e = 0; e < N; e += 4) {
            float4 f = *reinterpret_cast<const float4 *>(src + e);
            out[e] = f.x, out[e + 1] = f.y, out[e + 2] = f.z, out[e + 3] = f.w;
        }
        return;
    }
    const int64_t rel = t - kv.base;
    const uint8_t *page = kv.pages[rel / kv.T];
    const int r = (int)(rel % kv.T);
    const uint8_t *row = page + (is_v ? kv.v_off : kv.k_off) + (size_t)r * kv.row_bytes;
    switch (kv.fmt) {
    case TOME_KV_F32:
#pragma unroll
        for (int e = 0; e < N; e += 4) {
            float4 f = *reinterpret_cast<const float4 *>(row + (size_t)(c0 + e) * 4);
            out[e] = f.x, out[e + 1] = f.y, out[e + 2] = f.z, out[e + 3] = f.w;
        }
        return;
    case TOME_KV_BF16: {
        uint32_t w[N / 2];
        if (N == 8) {
            uint4 u = *reinterpret_cast<const uint4 *>(row + (size_t)c0 * 2);
            w[0] = u.x, w[1] = u.y, w[N / 2 > 2 ? 2 : 0] = u.z, w[N / 2 > 3 ? 3 : 0] = u.w;
        } else {
            uint2 u = *reinterpret_cast<const uint2 *>(row + (size_t)c0 * 2);
            w[0] = u.x, w[1] = u.y;
        }
#pragma unroll
        for (int e = 0; e < N / 2; e++) {
            out[2 * e] = __uint_as_float(w[e] << 16);
            out[2 * e + 1] = __uint_as_float(w[e] & 0xffff0000u);
        }
        return;
    }
    default: break;
    }
    /* scaled formats: gather the codes of the N channels */
    uint32_t codes[N];
    if (kv.bits == 8) {
        uint32_t w[N / 4];
        if (N == 8) {
            uint2 u = *reinterpret_cast<const uint2 *>(row + c0);
            w[0] = u.x, w[N / 4 > 1 ? 1 : 0] = u.y;
        } else {
            w[0] = *reinterpret_cast<const uint32_t *>(row + c0);
        }
#pragma unroll
        for (int e = 0; e < N; e++) codes[e] = (w[e / 4] >> (8 * (e % 4))) & 0xffu;
    } else if (kv.bits == 4) {
        uint32_t w = N == 8 ? *reinterpret_cast<const uint32_t *>(row + c0 / 2)
                            : (uint32_t)*reinterpret_cast<const uint16_t *>(row + c0 / 2);
#pragma unroll
        for (int e = 0; e < N; e++) codes[e] = (w >> (4 * e)) & 0xfu;
    } else {
        uint32_t w = N == 8 ? (uint32_t)*reinterpret_cast<const uint16_t *>(row + c0 / 4) : (uint32_t)row[c0 / 4];
#pragma unroll
        for (int e = 0; e < N; e++) codes[e] = (w >> (2 * e)) & 0x3u;
    }
    const uint16_t *sc, *zp;
    if (!is_v) {
        sc = reinterpret_cast<const uint16_t *>(page + kv.ks_off) + c0;
        zp = reinterpret_cast<const uint16_t *>(page + kv.kz_off) + c0;
    } else {
        sc = reinterpret_cast<const uint16_t *>(page + kv.vs_off) + (size_t)r * kv.groups_row;
        zp = reinterpret_cast<const uint16_t *>(page + kv.vz_off) + (size_t)r * kv.groups_row;
    }
#pragma unroll
    for (int e = 0; e < N; e++) {
        const int si = is_v ? (c0 + e) / kv.G : e;
        const float s = attn_h2f(sc[si]);
        if (kv.fmt == TOME_KV_FP8) out[e] = tome_kv_e4m3_to_f32((uint8_t)codes[e]) * s;
        else out[e] = (float)codes[e] * s + attn_h2f(zp[si]);
    }
}

__device__ __forceinline__ uint32_t attn_pack_bf16(float lo, float hi)
{
    __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&h);
}

/* D = A (16x16 bf16, row) * B (16x8 bf16, col) + D, fp32 accumulate. */
__device__ __forceinline__ void attn_mma_bf16(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1)
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/* Checks shared by both kernel families; 0 or an error already set. */
static inline tome_status attn_cuda_check_params(const tome_attn_cuda_params *p, const char *what)
{
    const tome_kv_layout *L = &p->kv.layout;
    if (p->head_dim != 128)
        return tome_set_error(TOME_ERR_UNSUPPORTED, "attention (CUDA) %s: head_dim %d (only 128 is built)", what, p->head_dim);
    if (p->n_kv_heads <= 0 || p->n_heads <= 0 || p->n_heads % p->n_kv_heads != 0)
        return tome_set_error(TOME_ERR_INVALID_ARG, "attention (CUDA) %s: %d heads over %d kv heads", what, p->n_heads,
                              p->n_kv_heads);
    if (!p->q || !p->out || !p->q_pos || (p->q_stride & 1) || ((uintptr_t)p->q & 3))
        return tome_set_error(TOME_ERR_INVALID_ARG, "attention (CUDA) %s: q/out/q_pos missing or q not 4-byte aligned", what);
    if (L->n_kv_heads != p->n_kv_heads || L->head_dim != p->head_dim || L->bits != tome_kv_fmt_bits(L->fmt) ||
        L->bits == 0 || L->page_tokens <= 0)
        return tome_set_error(TOME_ERR_INVALID_ARG, "attention (CUDA) %s: page layout (fmt %d, %d kv heads of %d) does not match",
                              what, L->fmt, L->n_kv_heads, L->head_dim);
    if ((p->kv.n_pages > 0 && !p->kv.pages) || (p->kv.n_tail > 0 && (!p->kv.tail_k || !p->kv.tail_v)) ||
        p->kv.tail_p0 != p->kv.base + p->kv.n_pages * L->page_tokens)
        return tome_set_error(TOME_ERR_INVALID_ARG, "attention (CUDA) %s: page table and tail rows do not line up", what);
    if (p->chunk < 0) return tome_set_error(TOME_ERR_INVALID_ARG, "attention (CUDA) %s: negative chunk", what);
    return TOME_OK;
}

#endif /* TOME_ATTN_CUDA_COMMON_CUH */
