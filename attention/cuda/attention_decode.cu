/*
 * attention/cuda/attention_decode.cu — split-KV decode attention
 * (flash-decoding) over the paged quantized KV (kv_layout.h), and the small
 * device-memory helpers of attention_cuda.h.
 *
 * Pass 1, grid (n_splits, kv heads, queries), 4 warps: the block takes one
 * slice of its query's visible range (whole 64-key tiles) and all rep heads
 * of the KV head's group. Lane l holds dims 4l..4l+3 of q for every head
 * (pre-scaled by scale*log2 e) and of the accumulators; warp w walks keys
 * w, w+4, ... of the slice: each key is read once (4 channels of K and V
 * per lane: coalesced 8-byte loads for bf16, 2 bytes for int4), its score
 * for every head is a warp all-reduce, and each (warp, head) keeps a
 * running max / sum / accumulator in base 2. The four warps are merged
 * through shared memory and the block writes (m, l, acc[128]) per head to
 * the workspace.
 * Pass 2, grid (queries, heads), 128 threads (one per dim): merges the
 * slices by log-sum-exp, writes bf16 out and lse.
 *
 * Compiled in CI; not run on a GPU in this change (docs/attention.md).
 */
#include "attn_cuda_common.cuh"

#include <math.h>

#define DC_D 128
#define DC_WARPS 4
#define DC_REP_MAX 8

struct decode_args {
    const uint16_t *q;
    const int64_t *q_pos;
    size_t q_stride;
    int rep, n_splits;
    int64_t chunk;
    float scale_log2;
    float *part; /* [n_q][n_kv][n_splits][rep][2 + D] */
    attn_kv_dev kv;
};

__global__ void __launch_bounds__(DC_WARPS * 32) attn_decode_split_kernel(const decode_args a)
{
    __shared__ float sm_m[DC_WARPS][DC_REP_MAX], sm_l[DC_WARPS][DC_REP_MAX];
    __shared__ float sm_acc[DC_WARPS][DC_REP_MAX][DC_D];

    const int split = blockIdx.x, kvh = blockIdx.y, n_kv = gridDim.y;
    const size_t qi = blockIdx.z;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, rep = a.rep;
    const int64_t pos = a.q_pos[qi];
    const int64_t lo = a.chunk > 0 ? pos / a.chunk * a.chunk : 0, hi = pos + 1;
    int64_t len = (hi - lo + a.n_splits - 1) / a.n_splits;
    len = (len + 63) / 64 * 64;
    int64_t k0 = lo + (int64_t)split * len, k1 = k0 + len < hi ? k0 + len : hi;
    /* keys outside what the pages hold are never read */
    const int64_t kv_end = a.kv.tail_p0 + a.kv.n_tail;
    k0 = k0 > a.kv.base ? k0 : a.kv.base;
    k1 = k1 < kv_end ? k1 : kv_end;

    float q[DC_REP_MAX][4], acc[DC_REP_MAX][4], m[DC_REP_MAX], l[DC_REP_MAX];
#pragma unroll
    for (int r = 0; r < DC_REP_MAX; r++) {
        m[r] = -INFINITY;
        l[r] = 0.f;
#pragma unroll
        for (int e = 0; e < 4; e++) {
            acc[r][e] = 0.f;
            q[r][e] = 0.f;
        }
        if (r < rep) {
            const uint16_t *qr = a.q + qi * a.q_stride + (size_t)(kvh * rep + r) * DC_D + lane * 4;
            const uint2 u = *reinterpret_cast<const uint2 *>(qr);
            q[r][0] = __uint_as_float(u.x << 16) * a.scale_log2;
            q[r][1] = __uint_as_float(u.x & 0xffff0000u) * a.scale_log2;
            q[r][2] = __uint_as_float(u.y << 16) * a.scale_log2;
            q[r][3] = __uint_as_float(u.y & 0xffff0000u) * a.scale_log2;
        }
    }

    for (int64_t key = k0 + warp; key < k1; key += DC_WARPS) {
        float kf[4], vf[4];
        attn_kv_load<4>(a.kv, key, 0, kvh * DC_D + lane * 4, kf);
        attn_kv_load<4>(a.kv, key, 1, kvh * DC_D + lane * 4, vf);
#pragma unroll
        for (int r = 0; r < DC_REP_MAX; r++) {
            if (r >= rep) break;
            float s = q[r][0] * kf[0] + q[r][1] * kf[1] + q[r][2] * kf[2] + q[r][3] * kf[3];
#pragma unroll
            for (int off = 16; off > 0; off /= 2) s += __shfl_xor_sync(0xffffffffu, s, off);
            const float m_new = fmaxf(m[r], s);
            const float c = exp2f(m[r] - m_new), pj = exp2f(s - m_new);
            l[r] = l[r] * c + pj;
#pragma unroll
            for (int e = 0; e < 4; e++) acc[r][e] = acc[r][e] * c + pj * vf[e];
            m[r] = m_new;
        }
    }

    /* merge the warps */
#pragma unroll
    for (int r = 0; r < DC_REP_MAX; r++) {
        if (r >= rep) break;
        if (lane == 0) {
            sm_m[warp][r] = m[r];
            sm_l[warp][r] = l[r];
        }
#pragma unroll
        for (int e = 0; e < 4; e++) sm_acc[warp][r][lane * 4 + e] = acc[r][e];
    }
    __syncthreads();
    for (int idx = threadIdx.x; idx < rep * DC_D; idx += DC_WARPS * 32) {
        const int r = idx / DC_D, d = idx % DC_D;
        float M = -INFINITY;
        for (int w = 0; w < DC_WARPS; w++) M = fmaxf(M, sm_m[w][r]);
        float L = 0.f, A = 0.f;
        for (int w = 0; w < DC_WARPS; w++) {
            const float e = sm_l[w][r] > 0.f ? exp2f(sm_m[w][r] - M) : 0.f;
            L += sm_l[w][r] * e;
            A += sm_acc[w][r][d] * e;
        }
        float *dst = a.part + ((((size_t)qi * n_kv + kvh) * a.n_splits + split) * rep + r) * (2 + DC_D);
        if (d == 0) {
            dst[0] = M;
            dst[1] = L;
        }
        dst[2 + d] = A;
    }
}

__global__ void attn_decode_merge_kernel(const float *part, int n_splits, int rep, uint16_t *out, size_t out_stride,
                                         float *lse)
{
    const size_t qi = blockIdx.x;
    const int h = blockIdx.y, n_heads = gridDim.y, d = threadIdx.x, kvh = h / rep, r = h % rep, n_kv = n_heads / rep;
    const size_t stride = (size_t)rep * (2 + DC_D);
    const float *base = part + (((size_t)qi * n_kv + kvh) * n_splits * rep + r) * (2 + DC_D);
    float M = -INFINITY;
    for (int s = 0; s < n_splits; s++)
        if (base[s * stride + 1] > 0.f) M = fmaxf(M, base[s * stride]);
    float L = 0.f, A = 0.f;
    for (int s = 0; s < n_splits; s++) {
        const float *pt = base + s * stride;
        if (!(pt[1] > 0.f)) continue;
        const float e = exp2f(pt[0] - M);
        L += pt[1] * e;
        A += pt[2 + d] * e;
    }
    out[qi * out_stride + (size_t)h * DC_D + d] = __bfloat16_as_ushort(__float2bfloat16_rn(L > 0.f ? A / L : 0.f));
    if (lse && d == 0) lse[qi * n_heads + h] = L > 0.f ? (M + log2f(L)) * 0.69314718055994531f : -INFINITY;
}

static int decode_splits(const tome_attn_cuda_params *p)
{
    if (p->n_splits > 0) return p->n_splits;
    int dev = 0, sms = 108;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) {
        cudaGetLastError();
        sms = 108;
    }
    const int64_t ctx = p->kv.tail_p0 + p->kv.n_tail - p->kv.base; /* longest visible range */
    const int64_t blocks = (int64_t)p->n_q * p->n_kv_heads;
    int64_t ns = (4 * (int64_t)sms + blocks - 1) / (blocks > 0 ? blocks : 1);
    const int64_t most = (ctx + 255) / 256; /* slices of at least 256 keys */
    if (ns > most) ns = most;
    if (ns > 1024) ns = 1024;
    return ns < 1 ? 1 : (int)ns;
}

extern "C" size_t tome_attn_cuda_decode_workspace(const tome_attn_cuda_params *p)
{
    if (p->n_kv_heads <= 0 || p->n_heads % p->n_kv_heads != 0) return 0;
    return p->n_q * (size_t)p->n_kv_heads * (size_t)decode_splits(p) * (size_t)(p->n_heads / p->n_kv_heads) *
           (2 + DC_D) * sizeof(float);
}

extern "C" tome_status tome_attn_cuda_decode(const tome_attn_cuda_params *p)
{
    TOME_FORWARD(attn_cuda_check_params(p, "decode"));
    if (p->n_q == 0) return TOME_OK;
    const int rep = p->n_heads / p->n_kv_heads;
    if (rep > DC_REP_MAX)
        return tome_set_error(TOME_ERR_UNSUPPORTED, "attention (CUDA) decode: %d query heads per kv head (at most %d built)",
                              rep, DC_REP_MAX);
    if (((uintptr_t)p->q & 7) || (p->q_stride & 3))
        return tome_set_error(TOME_ERR_INVALID_ARG, "attention (CUDA) decode: q must be 8-byte aligned");
    const size_t need = tome_attn_cuda_decode_workspace(p);
    if (!p->workspace || p->workspace_bytes < need)
        return tome_set_error(TOME_ERR_INVALID_ARG, "attention (CUDA) decode: workspace of %zu bytes, need %zu",
                              p->workspace_bytes, need);
    if (p->n_q > 65535 || p->n_kv_heads > 65535 || p->n_heads > 65535)
        return tome_set_error(TOME_ERR_LIMIT, "attention (CUDA) decode: %zu queries is too many for one launch", p->n_q);
    decode_args a;
    a.q = p->q;
    a.q_pos = p->q_pos;
    a.q_stride = p->q_stride;
    a.rep = rep;
    a.n_splits = decode_splits(p);
    a.chunk = p->chunk;
    const float scale = p->scale > 0 ? p->scale : 1.0f / sqrtf((float)p->head_dim);
    a.scale_log2 = scale * 1.44269504088896341f;
    a.part = (float *)p->workspace;
    a.kv = attn_kv_dev_from(&p->kv);
    cudaStream_t st = (cudaStream_t)p->stream;
    attn_decode_split_kernel<<<dim3((unsigned)a.n_splits, (unsigned)p->n_kv_heads, (unsigned)p->n_q), DC_WARPS * 32, 0, st>>>(a);
    ATTN_CU_TRY(cudaGetLastError(), "decode launch");
    attn_decode_merge_kernel<<<dim3((unsigned)p->n_q, (unsigned)p->n_heads), DC_D, 0, st>>>(a.part, a.n_splits, rep, p->out,
                                                                                        p->out_stride, p->lse);
    ATTN_CU_TRY(cudaGetLastError(), "decode merge launch");
    return TOME_OK;
}

/* ------------------------------------------------------------ helpers */
extern "C" tome_status tome_attn_cuda_malloc(void **dev, size_t n)
{
    *dev = NULL;
    ATTN_CU_TRY(cudaMalloc(dev, n ? n : 1), "cudaMalloc");
    return TOME_OK;
}

extern "C" void tome_attn_cuda_free(void *dev)
{
    if (dev && cudaFree(dev) != cudaSuccess) cudaGetLastError();
}

extern "C" tome_status tome_attn_cuda_upload(void *dev, const void *host, size_t n)
{
    ATTN_CU_TRY(cudaMemcpy(dev, host, n, cudaMemcpyHostToDevice), "upload");
    return TOME_OK;
}

extern "C" tome_status tome_attn_cuda_download(void *host, const void *dev, size_t n)
{
    ATTN_CU_TRY(cudaMemcpy(host, dev, n, cudaMemcpyDeviceToHost), "download");
    return TOME_OK;
}

extern "C" tome_status tome_attn_cuda_sync(void)
{
    ATTN_CU_TRY(cudaDeviceSynchronize(), "synchronize");
    return TOME_OK;
}
