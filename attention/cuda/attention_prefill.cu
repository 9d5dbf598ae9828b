/*
 * attention/cuda/attention_prefill.cu — prefill attention on bf16 tensor
 * cores (mma.sync.m16n8k16, fp32 accumulate; sm_80 and later), reading the
 * paged quantized KV layout of kvcache/kv_layout.h (contract in
 * attention/attention_cuda.h).
 *
 * Block = 4 warps = 64 rows x one KV head. Rows are (query, head) pairs of
 * the KV head's group: row R of the grid is query R / rep, head
 * g*rep + R % rep, so the group's heads share every K/V tile (GQA). Warp w
 * owns rows 16w..16w+15; lane (g = lane/4, t = lane%4) holds rows g and g+8
 * of them, as the mma fragments lay them out.
 *
 * Per 64-key tile: the block dequantizes K into Ks[key][dim] and V
 * transposed into Vt[dim][key] (bf16, shared memory, rows padded by 16
 * bytes against bank conflicts); each warp computes S = Q K^T (16x64, Q
 * fragments kept in registers for the whole kernel), masks (causal /
 * chunked from q_pos), runs the online softmax in base 2 (scale*log2 e
 * folded into the scores), reuses the S accumulators as the A operand of
 * O += P V (16x128, fp32 in registers). Tiles the block's rows cannot see
 * are never visited: the key range is [min lo, max pos] over its rows.
 *
 * Not yet: cp.async / TMA double buffering of the tile loads, a Hopper
 * wgmma path (HOPPER.md) — see docs/attention.md. These kernels are
 * compiled in CI but were not run on a GPU in this change.
 */
#include "attn_cuda_common.cuh"

#include <climits>
#include <math.h>

#define PF_D 128
#define PF_BM 64
#define PF_BN 64
#define PF_THREADS 128

struct prefill_args {
    const uint16_t *q;
    uint16_t *out;
    float *lse;
    const int64_t *q_pos;
    size_t q_stride, out_stride;
    int64_t n_rows; /* n_q * rep */
    int rep;
    int64_t chunk;
    float scale_log2; /* scale * log2(e) */
    attn_kv_dev kv;
};

__global__ void __launch_bounds__(PF_THREADS) attn_prefill_kernel(const prefill_args a)
{
    __shared__ __align__(16) uint16_t Ks[PF_BN][PF_D + 8];
    __shared__ __align__(16) uint16_t Vt[PF_D][PF_BN + 8];
    __shared__ long long s_lo, s_hi;

    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
    const int kvh = blockIdx.y;
    const int64_t row0 = (int64_t)blockIdx.x * PF_BM + warp * 16;

    if (tid == 0) {
        s_lo = LLONG_MAX;
        s_hi = LLONG_MIN;
    }
    __syncthreads();

    /* this thread's two rows */
    int64_t lo[2], hi[2];
    bool valid[2];
    const uint16_t *qrow[2];
    int64_t qi[2];
    int head[2];
#pragma unroll
    for (int h = 0; h < 2; h++) {
        const int64_t R = row0 + g + 8 * h;
        valid[h] = R < a.n_rows;
        qi[h] = valid[h] ? R / a.rep : 0;
        head[h] = kvh * a.rep + (int)(valid[h] ? R % a.rep : 0);
        const int64_t pos = valid[h] ? a.q_pos[qi[h]] : 0;
        lo[h] = a.chunk > 0 ? pos / a.chunk * a.chunk : 0;
        hi[h] = valid[h] ? pos + 1 : 0;
        qrow[h] = a.q + (size_t)qi[h] * a.q_stride + (size_t)head[h] * PF_D;
        if (valid[h]) {
            atomicMin(&s_lo, (long long)lo[h]);
            atomicMax(&s_hi, (long long)hi[h]);
        }
    }

    /* Q fragments for the 8 k-steps of 16 dims */
    uint32_t qf[8][4];
#pragma unroll
    for (int ks = 0; ks < 8; ks++) {
        const int c = ks * 16 + 2 * t;
        qf[ks][0] = valid[0] ? *reinterpret_cast<const uint32_t *>(qrow[0] + c) : 0u;
        qf[ks][1] = valid[1] ? *reinterpret_cast<const uint32_t *>(qrow[1] + c) : 0u;
        qf[ks][2] = valid[0] ? *reinterpret_cast<const uint32_t *>(qrow[0] + c + 8) : 0u;
        qf[ks][3] = valid[1] ? *reinterpret_cast<const uint32_t *>(qrow[1] + c + 8) : 0u;
    }

    float o[16][4];
#pragma unroll
    for (int dn = 0; dn < 16; dn++) o[dn][0] = o[dn][1] = o[dn][2] = o[dn][3] = 0.f;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};

    __syncthreads();
    /* keys outside what the pages hold are never read (and never visible) */
    const int64_t kv_end = a.kv.tail_p0 + a.kv.n_tail;
    const int64_t klo = s_lo > a.kv.base ? s_lo : a.kv.base, khi = s_hi < kv_end ? s_hi : kv_end;

    for (int64_t t0 = klo; t0 < khi; t0 += PF_BN) {
        __syncthreads(); /* the previous tile is consumed */
        /* dequantize 64 keys x 128 dims of K and V: 1024 chunks of 8 channels */
#pragma unroll 2
        for (int it = 0; it < PF_BN * PF_D / 8 / PF_THREADS; it++) {
            const int item = it * PF_THREADS + tid, key = item / (PF_D / 8), c8 = (item % (PF_D / 8)) * 8;
            const int64_t pos = t0 + key;
            float kf[8], vf[8];
            if (pos < khi) {
                attn_kv_load<8>(a.kv, pos, 0, kvh * PF_D + c8, kf);
                attn_kv_load<8>(a.kv, pos, 1, kvh * PF_D + c8, vf);
            } else {
#pragma unroll
                for (int e = 0; e < 8; e++) kf[e] = vf[e] = 0.f;
            }
            uint4 kw;
            kw.x = attn_pack_bf16(kf[0], kf[1]);
            kw.y = attn_pack_bf16(kf[2], kf[3]);
            kw.z = attn_pack_bf16(kf[4], kf[5]);
            kw.w = attn_pack_bf16(kf[6], kf[7]);
            *reinterpret_cast<uint4 *>(&Ks[key][c8]) = kw;
#pragma unroll
            for (int e = 0; e < 8; e++) Vt[c8 + e][key] = __bfloat16_as_ushort(__float2bfloat16_rn(vf[e]));
        }
        __syncthreads();

        /* S = Q K^T for this warp's 16 rows x 64 keys */
        float s[8][4];
#pragma unroll
        for (int nt = 0; nt < 8; nt++) {
            s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
#pragma unroll
            for (int ks = 0; ks < 8; ks++) {
                const uint32_t b0 = *reinterpret_cast<const uint32_t *>(&Ks[nt * 8 + g][ks * 16 + 2 * t]);
                const uint32_t b1 = *reinterpret_cast<const uint32_t *>(&Ks[nt * 8 + g][ks * 16 + 8 + 2 * t]);
                attn_mma_bf16(s[nt], qf[ks], b0, b1);
            }
        }

        /* mask, scale, online softmax (base 2) */
        float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
        for (int nt = 0; nt < 8; nt++) {
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int h = e / 2;
                const int64_t key = t0 + nt * 8 + 2 * t + (e & 1);
                const bool vis = key >= lo[h] && key < hi[h] && key < khi;
                s[nt][e] = vis ? s[nt][e] * a.scale_log2 : -INFINITY;
                mx[h] = fmaxf(mx[h], s[nt][e]);
            }
        }
        float corr[2];
#pragma unroll
        for (int h = 0; h < 2; h++) {
            mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 1));
            mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 2));
            const float m_new = fmaxf(m[h], mx[h]);
            const float m_use = m_new == -INFINITY ? 0.f : m_new;
            corr[h] = exp2f(m[h] - m_use);
            m[h] = m_new;
            mx[h] = m_use;
        }
        float rs[2] = {0.f, 0.f};
#pragma unroll
        for (int nt = 0; nt < 8; nt++) {
#pragma unroll
            for (int e = 0; e < 4; e++) {
                s[nt][e] = exp2f(s[nt][e] - mx[e / 2]);
                rs[e / 2] += s[nt][e];
            }
        }
#pragma unroll
        for (int h = 0; h < 2; h++) {
            rs[h] += __shfl_xor_sync(0xffffffffu, rs[h], 1);
            rs[h] += __shfl_xor_sync(0xffffffffu, rs[h], 2);
            l[h] = l[h] * corr[h] + rs[h];
        }
#pragma unroll
        for (int dn = 0; dn < 16; dn++) {
            o[dn][0] *= corr[0];
            o[dn][1] *= corr[0];
            o[dn][2] *= corr[1];
            o[dn][3] *= corr[1];
        }

        /* O += P V: P's accumulators become A fragments (16 keys per k-step) */
#pragma unroll
        for (int kk = 0; kk < 4; kk++) {
            uint32_t pa[4];
            pa[0] = attn_pack_bf16(s[2 * kk][0], s[2 * kk][1]);
            pa[1] = attn_pack_bf16(s[2 * kk][2], s[2 * kk][3]);
            pa[2] = attn_pack_bf16(s[2 * kk + 1][0], s[2 * kk + 1][1]);
            pa[3] = attn_pack_bf16(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
            for (int dn = 0; dn < 16; dn++) {
                const uint32_t b0 = *reinterpret_cast<const uint32_t *>(&Vt[dn * 8 + g][kk * 16 + 2 * t]);
                const uint32_t b1 = *reinterpret_cast<const uint32_t *>(&Vt[dn * 8 + g][kk * 16 + 8 + 2 * t]);
                attn_mma_bf16(o[dn], pa, b0, b1);
            }
        }
    }

    /* out = O / l (bf16), lse = (m + log2 l) * ln 2 */
#pragma unroll
    for (int h = 0; h < 2; h++) {
        if (!valid[h]) continue;
        const float inv = l[h] > 0.f ? 1.f / l[h] : 0.f;
        uint16_t *orow = a.out + (size_t)qi[h] * a.out_stride + (size_t)head[h] * PF_D;
#pragma unroll
        for (int dn = 0; dn < 16; dn++)
            *reinterpret_cast<uint32_t *>(orow + dn * 8 + 2 * t) = attn_pack_bf16(o[dn][2 * h] * inv, o[dn][2 * h + 1] * inv);
        if (a.lse && t == 0) {
            const int n_heads = gridDim.y * a.rep;
            a.lse[(size_t)qi[h] * (size_t)n_heads + (size_t)head[h]] =
                l[h] > 0.f ? (m[h] + log2f(l[h])) * 0.69314718055994531f : -INFINITY;
        }
    }
}

extern "C" tome_status tome_attn_cuda_prefill(const tome_attn_cuda_params *p)
{
    TOME_FORWARD(attn_cuda_check_params(p, "prefill"));
    if (p->n_q == 0) return TOME_OK;
    if (((uintptr_t)p->out & 3) || (p->out_stride & 1))
        return tome_set_error(TOME_ERR_INVALID_ARG, "attention (CUDA) prefill: out not 4-byte aligned");
    prefill_args a;
    a.q = p->q;
    a.out = p->out;
    a.lse = p->lse;
    a.q_pos = p->q_pos;
    a.q_stride = p->q_stride;
    a.out_stride = p->out_stride;
    a.rep = p->n_heads / p->n_kv_heads;
    a.n_rows = (int64_t)p->n_q * a.rep;
    a.chunk = p->chunk;
    const float scale = p->scale > 0 ? p->scale : 1.0f / sqrtf((float)p->head_dim);
    a.scale_log2 = scale * 1.44269504088896341f;
    a.kv = attn_kv_dev_from(&p->kv);
    const int64_t blocks = (a.n_rows + PF_BM - 1) / PF_BM;
    if (blocks > 0x7fffffff || p->n_kv_heads > 65535)
        return tome_set_error(TOME_ERR_LIMIT, "attention (CUDA) prefill: %lld row blocks is too many for one launch",
                              (long long)blocks);
    dim3 grid((unsigned)blocks, (unsigned)p->n_kv_heads);
    attn_prefill_kernel<<<grid, PF_THREADS, 0, (cudaStream_t)p->stream>>>(a);
    ATTN_CU_TRY(cudaGetLastError(), "prefill launch");
    return TOME_OK;
}
