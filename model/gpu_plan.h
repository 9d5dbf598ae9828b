/*
 * model/gpu_plan.h — the host-side logic of the CUDA backend, in plain C so
 * that the CPU tests check it (tests/test_gpu_plan.c). Shared by
 * model/gpu_plan.c, model/cuda/backend_cuda.cu and the tests.
 *
 *   routing + grouping   tome_moe_route / tome_moe_plan are __host__
 *                        __device__ inline: the CUDA routing kernel runs the
 *                        very code the CPU tests check. Routing is moe.c's
 *                        rule (top-k, first index wins a tie, sigmoid of the
 *                        selected logit); the plan is a stable counting sort
 *                        of the n*K routed slots by expert.
 *   GPU weight layouts   dense weights on the device are OUT_IN rows, bf16
 *                        when stored bf16, else f32 (f16 widens exactly);
 *                        quantized weights (quant_impl.h blocks) are
 *                        repacked into codes + scales planes so that a warp
 *                        reads 16-byte runs of codes:
 *                          codes  [n_out][n_in]   int8 (Q8)  or
 *                                 [n_out][n_in/2] bytes (Q4: value+8, low
 *                                                 nibble = even index)
 *                          scales [n_out][n_in/TOME_QGROUP] f16 (the CPU's
 *                                 f32 scale rounded to nearest even, so int4
 *                                 is 4.5 bits a weight: Scout's experts fit
 *                                 in ~60 GB), starting at
 *                                 tome_gpu_q_scales_off() (256-aligned)
 *                        tome_gpu_q_get() is the one definition of an element.
 *   memory plan          which weights / KV fit on one GPU for a context:
 *                        tome_gpu_plan_make().
 */
#ifndef TOME_GPU_PLAN_H
#define TOME_GPU_PLAN_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "model/quant_impl.h"

#ifdef __CUDACC__
#define TOME_GPU_HD __host__ __device__ static inline
#else
#define TOME_GPU_HD static inline
#endif

/* The facts both sides rely on (checked at compile time in C and CUDA). */
#define TOME_GPU_ALIGN 256
#if defined(__cplusplus)
static_assert(TOME_QGROUP == 32, "GPU kernels assume 32-value groups (one warp lane per group of 8 codes x4)");
static_assert(TOME_QGROUP % 8 == 0, "a lane dequantizes 8 codes at a time inside one group");
#else
_Static_assert(TOME_QGROUP == 32, "GPU kernels assume 32-value groups (one warp lane per group of 8 codes x4)");
_Static_assert(TOME_QGROUP % 8 == 0, "a lane dequantizes 8 codes at a time inside one group");
#endif

/* ------------------------------------------------------------ MoE routing */
/* Top-k of one token's router logits r[E]: sel[j] expert, score[j] = sigmoid(r[sel[j]]). */
TOME_GPU_HD void tome_moe_route(const float *r, int E, int K, int32_t *sel, float *score)
{
    for (int j = 0; j < K; j++) {
        int best = -1;
        for (int e = 0; e < E; e++) {
            int taken = 0;
            for (int t = 0; t < j; t++) taken |= sel[t] == e;
            if (!taken && (best < 0 || r[e] > r[best])) best = e;
        }
        sel[j] = best;
        score[j] = 1.0f / (1.0f + expf(-r[best]));
    }
}

/* Stable grouping of n_slots routed slots (slot i*K + j = token i's j-th
 * expert sel[slot]) by expert:
 *   offsets[E+1]    rows of expert e are sorted rows [offsets[e], offsets[e+1])
 *   order[n_slots]  sorted row -> slot (slots of one expert in token order)
 *   where[n_slots]  slot -> sorted row
 * cursor: E ints of scratch. Returns the largest group. Slots whose expert
 * is out of range are an error: returns -1. */
TOME_GPU_HD int32_t tome_moe_plan(const int32_t *sel, int32_t n_slots, int E, int32_t *offsets, int32_t *cursor,
                                  int32_t *order, int32_t *where)
{
    for (int e = 0; e <= E; e++) offsets[e] = 0;
    for (int32_t i = 0; i < n_slots; i++) {
        if (sel[i] < 0 || sel[i] >= E) return -1;
        offsets[sel[i] + 1]++;
    }
    int32_t biggest = 0;
    for (int e = 0; e < E; e++) {
        if (offsets[e + 1] > biggest) biggest = offsets[e + 1];
        offsets[e + 1] += offsets[e];
        cursor[e] = offsets[e];
    }
    for (int32_t i = 0; i < n_slots; i++) {
        int32_t r = cursor[sel[i]]++;
        order[r] = i;
        where[i] = r;
    }
    return biggest;
}

/* ------------------------------------------------------------ GPU weight layout */
TOME_GPU_HD size_t tome_gpu_align(size_t n) { return (n + (TOME_GPU_ALIGN - 1)) & ~(size_t)(TOME_GPU_ALIGN - 1); }

/* IEEE half <-> float for the scales plane (host and device, no intrinsics).
 * f2h rounds to nearest even and saturates at ±65504 (a scale never needs
 * infinity); subnormal halves are kept. */
TOME_GPU_HD float tome_gpu_h2f(uint16_t h)
{
    union {
        uint32_t u;
        float f;
    } v;
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 31u, m = h & 0x3ffu;
    if (e == 0) {
        float x = (float)m * (1.0f / 16777216.0f); /* m · 2^-24 */
        return sign ? -x : x;
    }
    v.u = sign | (e == 31 ? (0xffu << 23) | (m << 13) : ((e - 15 + 127) << 23) | (m << 13));
    return v.f;
}
TOME_GPU_HD uint16_t tome_gpu_f2h(float f)
{
    union {
        uint32_t u;
        float f;
    } v;
    v.f = f;
    uint16_t sign = (uint16_t)((v.u >> 16) & 0x8000u);
    uint32_t a = v.u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);   /* NaN */
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7bffu);  /* ≥ 65520 (and inf): saturate */
    if (a < 0x38800000u) {                                     /* below 2^-14: subnormal half */
        v.u = a;
        return (uint16_t)(sign | (uint16_t)rintf(v.f * 16777216.0f));
    }
    uint32_t h = ((((a >> 23) - 127u + 15u) << 10) | ((a & 0x7fffffu) >> 13)), rem = a & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++;
    return (uint16_t)(sign | h);
}

/* Bytes of the codes plane of a [n_out][n_in] Q8 (bits 8) or Q4 (bits 4) matrix. */
TOME_GPU_HD size_t tome_gpu_q_codes_bytes(int bits, int64_t n_out, int64_t n_in)
{
    return (size_t)n_out * (size_t)n_in * (size_t)bits / 8;
}
TOME_GPU_HD size_t tome_gpu_q_scales_off(int bits, int64_t n_out, int64_t n_in)
{
    return tome_gpu_align(tome_gpu_q_codes_bytes(bits, n_out, n_in));
}
TOME_GPU_HD size_t tome_gpu_q_bytes(int bits, int64_t n_out, int64_t n_in)
{
    return tome_gpu_q_scales_off(bits, n_out, n_in) + (size_t)n_out * (size_t)(n_in / TOME_QGROUP) * sizeof(uint16_t);
}

/* Element (r, k) of a repacked quantized matrix. */
TOME_GPU_HD float tome_gpu_q_get(const uint8_t *packed, int bits, int64_t n_out, int64_t n_in, int64_t r, int64_t k)
{
    const uint16_t *sc = (const uint16_t *)(const void *)(packed + tome_gpu_q_scales_off(bits, n_out, n_in));
    float d = tome_gpu_h2f(sc[(size_t)r * (size_t)(n_in / TOME_QGROUP) + (size_t)(k / TOME_QGROUP)]);
    if (bits == 8) return d * (float)(int8_t)packed[(size_t)r * (size_t)n_in + (size_t)k];
    uint8_t b = packed[((size_t)r * (size_t)n_in + (size_t)k) / 2];
    int q = (k & 1) ? (b >> 4) : (b & 15);
    return d * (float)(q - 8);
}

#ifdef __cplusplus
extern "C" {
#endif
#include "model/model_impl.h"

/* Device dtype and bytes of weight w once uploaded (layout above). */
tome_dtype tome_gpu_wt_dtype(const tome_wt *w);
size_t tome_gpu_wt_bytes(const tome_wt *w);
/* Writes w in its GPU layout into dst (tome_gpu_wt_bytes(w) bytes, host
 * memory; the backend then copies it to the device). */
tome_status tome_gpu_wt_pack(const tome_wt *w, void *dst);

/* ------------------------------------------------------------ memory plan */
typedef struct tome_gpu_mem_plan {
    uint64_t weight_bytes;        /* every weight in its GPU layout                    */
    uint64_t expert_bytes;        /*   of which routed experts                         */
    uint64_t kv_token_global;     /* KV bytes per token summed over the global layers  */
    uint64_t kv_token_layer;      /* KV bytes per token of one layer                   */
    uint64_t kv_chunked_bytes;    /* the chunked layers' windows (one chunk each)      */
    uint64_t scratch_bytes;       /* activations of one micro-batch + workspaces       */
    int n_global, n_chunked;      /* layers                                            */
    int64_t max_ctx_gpu;          /* longest context whose whole KV fits beside the rest */
    /* for the context asked for: */
    int global_on_gpu;            /* global layers whose KV stays on the GPU (first ones) */
    uint64_t kv_gpu_bytes, kv_host_bytes; /* KV on the GPU, KV in host RAM (streamed)   */
    uint64_t gpu_total;           /* weights + scratch + chunked + kv_gpu              */
} tome_gpu_mem_plan;

/* Plan for config c with weights wf, KV format kv_fmt (TOME_KV_*, pages of
 * TOME_KV_PAGE_TOKENS_DEFAULT tokens), context ctx, micro-batch ubatch, on a
 * GPU with budget bytes usable. TOME_ERR_LIMIT when the weights alone do not fit. */
tome_status tome_gpu_plan_make(const tome_model_config_t *c, tome_weights_format wf, int kv_fmt, int64_t ctx,
                               int ubatch, uint64_t budget, tome_gpu_mem_plan *out);
#ifdef __cplusplus
}
#endif

#endif /* TOME_GPU_PLAN_H */
