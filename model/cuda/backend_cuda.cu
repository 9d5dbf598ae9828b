/*
 * model/cuda/backend_cuda.cu — the CUDA backend of the forward pass (the
 * table of model/backend_impl.h; design in docs/cuda.md).
 *
 * Memory: weights are packed on the host into the GPU layouts of
 * gpu_plan.h (dense OUT_IN bf16 / f32, quantized codes + scales planes) and
 * copied once (model_upload); a layer's experts are one allocation, expert e
 * at a 256-aligned stride. Activations are f32 device buffers owned by the
 * session; everything runs on one stream.
 *
 * Matmul y = x·Wᵀ:
 *   - few rows (decode, small experts): a SIMT kernel, one warp per output
 *     feature, 4 input rows per pass, each lane dequantizing 8 weights at a
 *     time (16/8/4-byte loads of bf16/int8/int4 codes + one scale) — the
 *     weight bytes are read once, which is what decode is bound by;
 *   - many rows (prefill): tensor cores through cuBLAS GemmEx, bf16 inputs,
 *     f32 accumulate and output: the activations are rounded to bf16 into a
 *     scratch; quantized weights are dequantized to bf16 a tile of rows at a
 *     time (≤ 128 MiB) and multiplied tile by tile; f32 weights use SGEMM.
 * MoE (tome_moe_args): router top-k + sigmoid per token (tome_moe_route, the
 * code the CPU tests check), the grouping plan (tome_moe_plan, one thread:
 * counting sort), gather-and-scale, grouped gate_up GEMM (one launch over all
 * experts, blockIdx.z = expert, rows read from the plan's offsets), SwiGLU,
 * grouped down GEMM, combine per token. Prefill with many rows instead reads
 * the E+1 offsets back and runs one cuBLAS GEMM per expert.
 * Attention: K/V rows per layer on the device, f32 (or bf16 with
 * TOME_CUDA_KV=bf16: half the bytes; global layers: every position;
 * chunked layers: a ring of one chunk), split-KV kernel (grid:
 * query x head x split; each block's warps walk keys with online softmax),
 * then a log-sum-exp merge. Positions are read from device memory, so a
 * decode step is a fixed sequence of launches: it is captured once as a CUDA
 * graph and replayed (forward.c). Prefill micro-batches of head_dim 128
 * over f32 rows go to the bf16 tensor-core kernel of attention/cuda instead.
 *
 * Errors: every CUDA / cuBLAS call is checked; a failure becomes a
 * tome_status naming the call and file:line. Slots that return void record
 * the first failure, and `sync` returns it. Nothing aborts.
 */
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlfcn.h>

/* ------------------------------------------------------------ cuBLAS, opened lazily
 * cuBLAS (libcublas + libcublasLt, ~700 MB of shared objects) is not linked:
 * linked, the loader maps and relocates it at every start of every command
 * (tome pack, tokenize...), ~0.25 s and ~200 MB of RSS that nothing uses.
 * It is dlopen'ed the first time the CUDA backend starts, and the handful
 * of entry points used here are called through this table. */
static struct {
    void *lib;
    decltype(&cublasCreate_v2) create;
    decltype(&cublasSetStream_v2) set_stream;
    decltype(&cublasSetWorkspace_v2) set_workspace;
    decltype(&cublasSgemm_v2) sgemm;
    cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void *,
                              const void *, cudaDataType, int, const void *, cudaDataType, int, const void *, void *,
                              cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t); /* the extern "C" one */
    decltype(&cublasGetStatusString) status_string;
} g_cb;

#define TOME_STR2(x) #x
#define TOME_STR(x) TOME_STR2(x)
static int cublas_open(char *why, size_t why_len)
{
    if (g_cb.lib) return 1;
    const char *names[] = {"libcublas.so." TOME_STR(CUBLAS_VER_MAJOR), "libcublas.so"};
    void *h = NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !h; i++) h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(why, why_len, "cannot load cuBLAS (%s): %s", names[0], dlerror());
        return 0;
    }
    struct {
        void **slot;
        const char *sym;
    } want[] = {{(void **)&g_cb.create, "cublasCreate_v2"},          {(void **)&g_cb.set_stream, "cublasSetStream_v2"},
                {(void **)&g_cb.set_workspace, "cublasSetWorkspace_v2"}, {(void **)&g_cb.sgemm, "cublasSgemm_v2"},
                {(void **)&g_cb.gemm_ex, "cublasGemmEx"},               {(void **)&g_cb.status_string, "cublasGetStatusString"}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        *want[i].slot = dlsym(h, want[i].sym);
        if (!*want[i].slot) {
            snprintf(why, why_len, "cuBLAS (%s) lacks %s", names[0], want[i].sym);
            dlclose(h);
            memset(&g_cb, 0, sizeof g_cb);
            return 0;
        }
    }
    g_cb.lib = h;
    return 1;
}
#undef cublasCreate
#undef cublasSetStream
#undef cublasSetWorkspace
#undef cublasSgemm
#define cublasCreate(...) g_cb.create(__VA_ARGS__)
#define cublasSetStream(...) g_cb.set_stream(__VA_ARGS__)
#define cublasSetWorkspace(...) g_cb.set_workspace(__VA_ARGS__)
#define cublasSgemm(...) g_cb.sgemm(__VA_ARGS__)
#define cublasGemmEx(...) g_cb.gemm_ex(__VA_ARGS__)
#define cublasGetStatusString(e) (g_cb.status_string ? g_cb.status_string(e) : "cuBLAS not loaded")

extern "C" {
#include "attention/attention_cuda.h"
#include "core/error_impl.h"
#include "model/backend_impl.h"
}
#include "model/gpu_plan.h"

/* ------------------------------------------------------------ errors */
static tome_status g_pending = TOME_OK;
static char g_pending_msg[512];

static tome_status cuda_err(const char *call, cudaError_t e, const char *file, int line)
{
    return tome_set_error(TOME_ERR_DEVICE, "%s: %s (%s) at %s:%d", call, cudaGetErrorString(e), cudaGetErrorName(e),
                          file, line);
}
static tome_status cublas_err(const char *call, cublasStatus_t e, const char *file, int line)
{
    return tome_set_error(TOME_ERR_DEVICE, "%s: %s at %s:%d", call, cublasGetStatusString(e), file, line);
}
static void note(cudaError_t e, const char *call, const char *file, int line)
{
    if (e == cudaSuccess || g_pending != TOME_OK) return;
    g_pending = TOME_ERR_DEVICE;
    snprintf(g_pending_msg, sizeof g_pending_msg, "%s: %s (%s) at %s:%d", call, cudaGetErrorString(e),
             cudaGetErrorName(e), file, line);
}
#define CK(call)                                                                   \
    do {                                                                           \
        cudaError_t e_ = (call);                                                   \
        if (e_ != cudaSuccess) return cuda_err(#call, e_, __FILE__, __LINE__);     \
    } while (0)
#define CKB(call)                                                                  \
    do {                                                                           \
        cublasStatus_t e_ = (call);                                                \
        if (e_ != CUBLAS_STATUS_SUCCESS) return cublas_err(#call, e_, __FILE__, __LINE__); \
    } while (0)
#define LAUNCHED(name) CK(cudaGetLastError())
#define LAUNCHED_VOID(name) note(cudaGetLastError(), name, __FILE__, __LINE__)

/* ------------------------------------------------------------ state */
static cudaStream_t g_stream;
static cublasHandle_t g_blas;
static void *g_blas_ws;
static uint16_t *g_xb;   /* bf16 activations for GemmEx */
static size_t g_xb_cap;  /* elements */
static uint16_t *g_wt;   /* bf16 dequantized weight tile */
static size_t g_wt_cap;  /* elements */
static float *g_attn_ws; /* split-KV partials */
static size_t g_attn_ws_cap; /* floats */

#define TILE_BYTES ((size_t)128 << 20)
#define BLAS_MIN_ROWS 32 /* from this many rows a matmul goes to the tensor cores */

/* rows from which a matmul takes the cuBLAS path: BLAS_MIN_ROWS, or
 * TOME_CUDA_BLAS_MIN_ROWS (tests set it low to cover that path on tiny
 * models; 0 = never) */
static int64_t blas_min_rows(void)
{
    const char *e = getenv("TOME_CUDA_BLAS_MIN_ROWS");
    if (!e || !*e) return BLAS_MIN_ROWS;
    long long v = atoll(e);
    return v <= 0 ? INT64_MAX : (int64_t)v;
}
#define ATTN_ENTRIES 4096 /* (query, head, split) partials the workspace holds at least */

static int capturing(void)
{
    cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
    if (cudaStreamIsCapturing(g_stream, &cs) != cudaSuccess) return 0;
    return cs != cudaStreamCaptureStatusNone;
}

template <typename T> static tome_status grow(T **p, size_t *cap, size_t need)
{
    if (*cap >= need) return TOME_OK;
    if (capturing())
        return tome_set_error(TOME_ERR_DEVICE, "cuda: a %zu-element scratch would have to grow inside a graph capture", need);
    if (*p) CK(cudaFree(*p));
    *p = NULL;
    *cap = 0;
    CK(cudaMalloc((void **)p, need * sizeof(T)));
    *cap = need;
    return TOME_OK;
}

/* ------------------------------------------------------------ weight loads */
enum { DT_F32 = 0, DT_BF16 = 1, DT_Q8 = 2, DT_Q4 = 3 };

static int kdt(tome_dtype d)
{
    switch (d) {
    case TOME_DT_BF16: return DT_BF16;
    case TOME_DT_Q8: return DT_Q8;
    case TOME_DT_Q4: return DT_Q4;
    default: return DT_F32;
    }
}

/* bytes of a device weight view (gpu_plan.h layout), 256-aligned */
static size_t dev_wt_bytes(const tome_wt *w)
{
    size_t b;
    switch (kdt(w->dtype)) {
    case DT_BF16: b = (size_t)w->n_out * (size_t)w->n_in * 2; break;
    case DT_Q8: b = tome_gpu_q_bytes(8, w->n_out, w->n_in); break;
    case DT_Q4: b = tome_gpu_q_bytes(4, w->n_out, w->n_in); break;
    default: b = (size_t)w->n_out * (size_t)w->n_in * 4; break;
    }
    return tome_gpu_align(b);
}

__device__ __forceinline__ float bf_lo(uint32_t u) { return __uint_as_float(u << 16); }
__device__ __forceinline__ float bf_hi(uint32_t u) { return __uint_as_float(u & 0xffff0000u); }

/* w[0..8) = W[r][k .. k+8) (k a multiple of 8; sc: scales plane for Q8/Q4) */
template <int DT>
__device__ __forceinline__ void load8(const uint8_t *W, const uint16_t *sc, int64_t n_in, int64_t r, int64_t k, float w[8])
{
    if (DT == DT_F32) {
        const float4 *p = (const float4 *)((const float *)W + r * n_in + k);
        float4 a = __ldg(p), b = __ldg(p + 1);
        w[0] = a.x, w[1] = a.y, w[2] = a.z, w[3] = a.w, w[4] = b.x, w[5] = b.y, w[6] = b.z, w[7] = b.w;
    } else if (DT == DT_BF16) {
        uint4 u = __ldg((const uint4 *)((const uint16_t *)W + r * n_in + k));
        w[0] = bf_lo(u.x), w[1] = bf_hi(u.x), w[2] = bf_lo(u.y), w[3] = bf_hi(u.y);
        w[4] = bf_lo(u.z), w[5] = bf_hi(u.z), w[6] = bf_lo(u.w), w[7] = bf_hi(u.w);
    } else if (DT == DT_Q8) {
        float d = __half2float(__ushort_as_half(__ldg(sc + r * (n_in / TOME_QGROUP) + k / TOME_QGROUP)));
        uint2 u = __ldg((const uint2 *)(W + r * n_in + k));
#pragma unroll
        for (int i = 0; i < 4; i++) {
            w[i] = d * (float)(int8_t)(u.x >> (8 * i));
            w[4 + i] = d * (float)(int8_t)(u.y >> (8 * i));
        }
    } else {
        float d = __half2float(__ushort_as_half(__ldg(sc + r * (n_in / TOME_QGROUP) + k / TOME_QGROUP)));
        uint32_t u = __ldg((const uint32_t *)(W + (r * n_in + k) / 2));
#pragma unroll
        for (int i = 0; i < 8; i++) w[i] = d * (float)((int)((u >> (4 * i)) & 15u) - 8);
    }
}

template <int DT> __device__ __forceinline__ const uint16_t *scales_of(const uint8_t *W, int64_t n_out, int64_t n_in)
{
    if (DT == DT_Q8) return (const uint16_t *)(W + tome_gpu_q_scales_off(8, n_out, n_in));
    if (DT == DT_Q4) return (const uint16_t *)(W + tome_gpu_q_scales_off(4, n_out, n_in));
    return nullptr;
}

/* ------------------------------------------------------------ SIMT matmul */
#define MM_WARPS 8
#define MM_R 4

/* y[r][j] = x[r]·W[j] for rows r of [0, n), or with goff (grouped) rows
 * [goff[e], goff[e+1]) against expert e = blockIdx.z at W + e*e_stride. */
template <int DT>
__global__ void __launch_bounds__(MM_WARPS * 32)
    k_matmul(const uint8_t *W, int64_t n_out, int64_t n_in, size_t e_stride, const float *x, int64_t ldx, float *y,
             int64_t ldy, int64_t n, const int32_t *goff)
{
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int64_t j = (int64_t)blockIdx.x * MM_WARPS + warp;
    if (j >= n_out) return;
    int64_t r0 = 0, r1 = n;
    if (goff) {
        r0 = goff[blockIdx.z];
        r1 = goff[blockIdx.z + 1];
        W += (size_t)blockIdx.z * e_stride;
    }
    const uint16_t *sc = scales_of<DT>(W, n_out, n_in);
    for (int64_t rb = r0 + (int64_t)blockIdx.y * MM_R; rb < r1; rb += (int64_t)gridDim.y * MM_R) {
        float acc[MM_R];
#pragma unroll
        for (int t = 0; t < MM_R; t++) acc[t] = 0.f;
        for (int64_t k = (int64_t)lane * 8; k < n_in; k += 256) {
            float w[8];
            load8<DT>(W, sc, n_in, j, k, w);
#pragma unroll
            for (int t = 0; t < MM_R; t++) {
                if (rb + t < r1) {
                    const float4 *xp = (const float4 *)(x + (rb + t) * ldx + k);
                    float4 a = xp[0], b = xp[1];
                    acc[t] += w[0] * a.x + w[1] * a.y + w[2] * a.z + w[3] * a.w + w[4] * b.x + w[5] * b.y +
                              w[6] * b.z + w[7] * b.w;
                }
            }
        }
#pragma unroll
        for (int t = 0; t < MM_R; t++) {
            float v = acc[t];
#pragma unroll
            for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
            if (lane == 0 && rb + t < r1) y[(rb + t) * ldy + j] = v;
        }
    }
}

/* dst[r][k] (bf16) = W[j0 + r][k] for r < cnt (8 values per thread) */
template <int DT>
__global__ void k_dequant_bf16(const uint8_t *W, int64_t n_out, int64_t n_in, int64_t j0, int64_t cnt, __nv_bfloat16 *dst)
{
    const int64_t per_row = n_in / 8, total = cnt * per_row;
    const uint16_t *sc = scales_of<DT>(W, n_out, n_in);
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = t / per_row, k = (t % per_row) * 8;
        float w[8];
        load8<DT>(W, sc, n_in, j0 + r, k, w);
#pragma unroll
        for (int i = 0; i < 8; i++) dst[r * n_in + k + i] = __float2bfloat16_rn(w[i]);
    }
}

__global__ void k_f32_to_bf16(const float *x, int64_t n, int64_t cols, int64_t ldx, __nv_bfloat16 *out)
{
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < n * cols; t += (int64_t)gridDim.x * blockDim.x)
        out[t] = __float2bfloat16_rn(x[(t / cols) * ldx + t % cols]);
}

static unsigned blocks_for(int64_t n, int threads)
{
    int64_t b = (n + threads - 1) / threads;
    if (b < 1) b = 1;
    if (b > 65535 * 8) b = 65535 * 8;
    return (unsigned)b;
}

static tome_status launch_simt(const tome_wt *w, const float *x, int64_t n, int64_t ldx, float *y, int64_t ldy,
                               const int32_t *goff, int groups, int64_t rows_bound)
{
    if (w->n_in % 8 != 0 || ldx % 4 != 0)
        return tome_set_error(TOME_ERR_UNSUPPORTED, "cuda matmul: n_in %lld and the input stride %lld must be multiples of 8 and 4",
                              (long long)w->n_in, (long long)ldx);
    int64_t gy = (rows_bound + MM_R - 1) / MM_R;
    if (gy < 1) gy = 1;
    if (gy > 1024) gy = 1024;
    dim3 grid((unsigned)((w->n_out + MM_WARPS - 1) / MM_WARPS), (unsigned)gy, (unsigned)groups);
    const uint8_t *W = (const uint8_t *)w->data;
    size_t es = dev_wt_bytes(w);
    switch (kdt(w->dtype)) {
    case DT_F32: k_matmul<DT_F32><<<grid, MM_WARPS * 32, 0, g_stream>>>(W, w->n_out, w->n_in, es, x, ldx, y, ldy, n, goff); break;
    case DT_BF16: k_matmul<DT_BF16><<<grid, MM_WARPS * 32, 0, g_stream>>>(W, w->n_out, w->n_in, es, x, ldx, y, ldy, n, goff); break;
    case DT_Q8: k_matmul<DT_Q8><<<grid, MM_WARPS * 32, 0, g_stream>>>(W, w->n_out, w->n_in, es, x, ldx, y, ldy, n, goff); break;
    default: k_matmul<DT_Q4><<<grid, MM_WARPS * 32, 0, g_stream>>>(W, w->n_out, w->n_in, es, x, ldx, y, ldy, n, goff); break;
    }
    LAUNCHED("k_matmul");
    return TOME_OK;
}

/* y = x·Wᵀ on the tensor cores (n rows, no grouping) */
static tome_status matmul_blas(const tome_wt *w, const float *x, int64_t n, int64_t ldx, float *y, int64_t ldy)
{
    const float one = 1.0f, zero = 0.0f;
    const int64_t n_out = w->n_out, n_in = w->n_in;
    const int dt = kdt(w->dtype);
    if (dt == DT_F32) {
        CKB(cublasSgemm(g_blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)n_out, (int)n, (int)n_in, &one, (const float *)w->data,
                        (int)n_in, x, (int)ldx, &zero, y, (int)ldy));
        return TOME_OK;
    }
    TOME_FORWARD(grow(&g_xb, &g_xb_cap, (size_t)(n * n_in)));
    k_f32_to_bf16<<<blocks_for(n * n_in, 256), 256, 0, g_stream>>>(x, n, n_in, ldx, (__nv_bfloat16 *)g_xb);
    LAUNCHED("k_f32_to_bf16");
    if (dt == DT_BF16) {
        CKB(cublasGemmEx(g_blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)n_out, (int)n, (int)n_in, &one, w->data, CUDA_R_16BF,
                         (int)n_in, g_xb, CUDA_R_16BF, (int)n_in, &zero, y, CUDA_R_32F, (int)ldy, CUBLAS_COMPUTE_32F,
                         CUBLAS_GEMM_DEFAULT));
        return TOME_OK;
    }
    int64_t rows = (int64_t)(TILE_BYTES / 2 / (size_t)n_in);
    if (rows < 1) rows = 1;
    if (rows > n_out) rows = n_out;
    TOME_FORWARD(grow(&g_wt, &g_wt_cap, (size_t)(rows * n_in)));
    const uint8_t *W = (const uint8_t *)w->data;
    for (int64_t j0 = 0; j0 < n_out; j0 += rows) {
        int64_t cnt = n_out - j0 < rows ? n_out - j0 : rows;
        unsigned nbk = blocks_for(cnt * n_in / 8, 256);
        if (dt == DT_Q8) k_dequant_bf16<DT_Q8><<<nbk, 256, 0, g_stream>>>(W, n_out, n_in, j0, cnt, (__nv_bfloat16 *)g_wt);
        else k_dequant_bf16<DT_Q4><<<nbk, 256, 0, g_stream>>>(W, n_out, n_in, j0, cnt, (__nv_bfloat16 *)g_wt);
        LAUNCHED("k_dequant_bf16");
        CKB(cublasGemmEx(g_blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)cnt, (int)n, (int)n_in, &one, g_wt, CUDA_R_16BF,
                         (int)n_in, g_xb, CUDA_R_16BF, (int)n_in, &zero, y + j0, CUDA_R_32F, (int)ldy,
                         CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    }
    return TOME_OK;
}

static tome_status mm(const tome_wt *w, const float *x, int64_t n, int64_t ldx, float *y, int64_t ldy)
{
    if (n <= 0) return TOME_OK;
    if (n >= blas_min_rows() && !capturing()) return matmul_blas(w, x, n, ldx, y, ldy);
    return launch_simt(w, x, n, ldx, y, ldy, NULL, 1, n);
}

static tome_status cu_matmul(const tome_wt *w, const float *x, size_t n, size_t ldx, float *y)
{
    return mm(w, x, (int64_t)n, (int64_t)ldx, y, w->n_out);
}

/* ------------------------------------------------------------ elementwise */
__global__ void k_rmsnorm(const float *x, int64_t dim, const float *weight, float eps, float *y)
{
    __shared__ float part[32];
    const float *a = x + (int64_t)blockIdx.x * dim;
    float *b = y + (int64_t)blockIdx.x * dim;
    float ss = 0;
    for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) ss += a[d] * a[d];
    for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = ss;
    __syncthreads();
    if (threadIdx.x < 32) {
        float v = threadIdx.x < (blockDim.x >> 5) ? part[threadIdx.x] : 0.f;
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
        if (threadIdx.x == 0) part[0] = v;
    }
    __syncthreads();
    const float r = 1.0f / sqrtf(part[0] / (float)dim + eps);
    for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) b[d] = weight ? (a[d] * r) * weight[d] : a[d] * r;
}

static void cu_rmsnorm(const float *x, size_t n_rows, size_t dim, const float *weight, float eps, float *y)
{
    if (!n_rows) return;
    int threads = dim >= 1024 ? 1024 : dim >= 256 ? 256 : 64;
    k_rmsnorm<<<(unsigned)n_rows, threads, 0, g_stream>>>(x, (int64_t)dim, weight, eps, y);
    LAUNCHED_VOID("k_rmsnorm");
}

/* RoPE (interleaved pairs) and, with norm, QK-norm (L2 over the head, eps):
 * one warp per (row, head); pairs f = lane + 32t. */
template <int PPL>
__global__ void k_rope_norm(float *x, int64_t n, int n_heads, int head_dim, const int64_t *pos, const float *inv_freq,
                            int norm, float eps)
{
    const int64_t wid = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    const int lane = threadIdx.x & 31;
    if (wid >= n * n_heads) return;
    const int64_t i = wid / n_heads;
    float *p = x + wid * head_dim;
    const int half = head_dim / 2;
    float a[PPL], b[PPL], ss = 0;
#pragma unroll
    for (int t = 0; t < PPL; t++) {
        int f = lane + 32 * t;
        a[t] = b[t] = 0;
        if (f < half) {
            float ang = (float)pos[i] * inv_freq[f];
            float c = (float)cos((double)ang), s = (float)sin((double)ang);
            float u = p[2 * f], v = p[2 * f + 1];
            a[t] = u * c - v * s;
            b[t] = u * s + v * c;
            ss += a[t] * a[t] + b[t] * b[t];
        }
    }
    float r = 1.0f;
    if (norm) {
        for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
        r = 1.0f / sqrtf(ss / (float)head_dim + eps);
    }
#pragma unroll
    for (int t = 0; t < PPL; t++) {
        int f = lane + 32 * t;
        if (f < half) {
            p[2 * f] = a[t] * r;
            p[2 * f + 1] = b[t] * r;
        }
    }
}

static void rope_launch(float *x, size_t n, int n_heads, int head_dim, const int64_t *pos, const float *inv_freq,
                        int norm, float eps)
{
    if (!n) return;
    int64_t warps = (int64_t)n * n_heads;
    unsigned blocks = (unsigned)((warps * 32 + 255) / 256);
    int half = head_dim / 2;
    if (half <= 32) k_rope_norm<1><<<blocks, 256, 0, g_stream>>>(x, (int64_t)n, n_heads, head_dim, pos, inv_freq, norm, eps);
    else if (half <= 64) k_rope_norm<2><<<blocks, 256, 0, g_stream>>>(x, (int64_t)n, n_heads, head_dim, pos, inv_freq, norm, eps);
    else if (half <= 128) k_rope_norm<4><<<blocks, 256, 0, g_stream>>>(x, (int64_t)n, n_heads, head_dim, pos, inv_freq, norm, eps);
    else {
        note(cudaErrorInvalidValue, "rope: head_dim above 256", __FILE__, __LINE__);
        return;
    }
    LAUNCHED_VOID("k_rope_norm");
}

static void cu_rope(float *x, size_t n, int n_heads, int head_dim, const int64_t *pos, const float *inv_freq)
{
    rope_launch(x, n, n_heads, head_dim, pos, inv_freq, 0, 0.f);
}
static void cu_rope_qknorm(float *x, size_t n, int n_heads, int head_dim, const int64_t *pos, const float *inv_freq,
                           float eps)
{
    rope_launch(x, n, n_heads, head_dim, pos, inv_freq, 1, eps);
}

__global__ void k_scale_rows(float *x, int64_t n, int64_t dim, const float *s)
{
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < n * dim; t += (int64_t)gridDim.x * blockDim.x)
        x[t] *= s[t / dim];
}
static void cu_scale_rows(float *x, size_t n, size_t dim, const float *s)
{
    if (!n) return;
    k_scale_rows<<<blocks_for((int64_t)(n * dim), 256), 256, 0, g_stream>>>(x, (int64_t)n, (int64_t)dim, s);
    LAUNCHED_VOID("k_scale_rows");
}

__global__ void k_temp_scale(float *q, int64_t n, int64_t dim, const int64_t *pos, float fs, float as)
{
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < n * dim; t += (int64_t)gridDim.x * blockDim.x) {
        float s = log1pf(floorf(((float)pos[t / dim] + 1.0f) / fs)) * as + 1.0f;
        q[t] *= s;
    }
}
static void cu_temp_scale(float *q, size_t n, size_t dim, const int64_t *pos, float fs, float as)
{
    if (!n) return;
    k_temp_scale<<<blocks_for((int64_t)(n * dim), 256), 256, 0, g_stream>>>(q, (int64_t)n, (int64_t)dim, pos, fs, as);
    LAUNCHED_VOID("k_temp_scale");
}

__global__ void k_swiglu(float *g, const float *u, int64_t n)
{
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < n; t += (int64_t)gridDim.x * blockDim.x)
        g[t] = g[t] / (1.0f + expf(-g[t])) * u[t];
}
static void cu_swiglu(float *g, const float *u, size_t n)
{
    if (!n) return;
    k_swiglu<<<blocks_for((int64_t)n, 256), 256, 0, g_stream>>>(g, u, (int64_t)n);
    LAUNCHED_VOID("k_swiglu");
}

__global__ void k_add(float *y, const float *x, int64_t n)
{
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < n; t += (int64_t)gridDim.x * blockDim.x)
        y[t] += x[t];
}
static void cu_add(float *y, const float *x, size_t n)
{
    if (!n) return;
    k_add<<<blocks_for((int64_t)n, 256), 256, 0, g_stream>>>(y, x, (int64_t)n);
    LAUNCHED_VOID("k_add");
}

/* out[i] = row ids[i] of W (any device dtype) as f32; ids in device memory */
__global__ void k_embed(const uint8_t *W, int dt, int64_t n_out, int64_t n_in, const int32_t *ids, int64_t n, float *out)
{
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < n * n_in; t += (int64_t)gridDim.x * blockDim.x) {
        int64_t i = t / n_in, k = t % n_in, r = ids[i];
        if (r < 0 || r >= n_out) {
            out[t] = 0;
            continue;
        }
        float v;
        if (dt == DT_F32) v = ((const float *)W)[r * n_in + k];
        else if (dt == DT_BF16) v = __uint_as_float((uint32_t)((const uint16_t *)W)[r * n_in + k] << 16);
        else v = tome_gpu_q_get(W, dt == DT_Q8 ? 8 : 4, n_out, n_in, r, k);
        out[t] = v;
    }
}
static tome_status cu_embed(const tome_wt *w, const int32_t *ids, size_t n, float *out)
{
    if (!n) return TOME_OK;
    k_embed<<<blocks_for((int64_t)n * w->n_in, 256), 256, 0, g_stream>>>((const uint8_t *)w->data, kdt(w->dtype),
                                                                          w->n_out, w->n_in, ids, (int64_t)n, out);
    LAUNCHED("k_embed");
    return TOME_OK;
}

/* ------------------------------------------------------------ memory */
static tome_status cu_alloc(void **p, size_t bytes)
{
    *p = NULL;
    CK(cudaMalloc(p, bytes ? bytes : 1));
    return TOME_OK;
}
static void cu_free(void *p)
{
    if (p) note(cudaFree(p), "cudaFree", __FILE__, __LINE__);
}
static tome_status cu_upload(void *dst, const void *src, size_t bytes)
{
    if (!bytes) return TOME_OK;
    CK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, g_stream));
    return TOME_OK;
}
static tome_status cu_download(void *dst, const void *src, size_t bytes)
{
    if (!bytes) return TOME_OK;
    CK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, g_stream));
    CK(cudaStreamSynchronize(g_stream));
    return TOME_OK;
}
static void cu_copy(void *dst, const void *src, size_t bytes)
{
    if (bytes) note(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, g_stream), "cudaMemcpyAsync D2D", __FILE__, __LINE__);
}
static tome_status cu_sync(void)
{
    if (!capturing()) CK(cudaStreamSynchronize(g_stream));
    CK(cudaGetLastError());
    if (g_pending != TOME_OK) {
        tome_status st = g_pending;
        g_pending = TOME_OK;
        return tome_set_error(st, "%s", g_pending_msg);
    }
    return TOME_OK;
}

/* ------------------------------------------------------------ KV cache + attention */
typedef struct dev_kv {
    int n_layers, kvd, head_dim;
    int64_t max_tokens;
    int64_t window[TOME_MAX_LAYERS]; /* 0: every position; C: ring of C rows */
    int bf16;                        /* rows stored bf16 (TOME_CUDA_KV=bf16), else f32 */
    void *k[TOME_MAX_LAYERS], *v[TOME_MAX_LAYERS];
    /* split-KV partials of up to ATTN_ENTRIES (query, head, split) triples:
     * fixed for the session's life, so a captured decode graph may use it
     * (larger prefills use the growable g_attn_ws, never inside a graph) */
    float *ws;
    int64_t pos0, n; /* the micro-batch being run (kv_seek), host view */
    int n_kv_heads;
    uint8_t on_host[TOME_MAX_LAYERS]; /* rows in mapped pinned host memory (read over PCIe) */
    uint64_t host_bytes;
} dev_kv;

static void kv_release(dev_kv *kv, int l)
{
    if (kv->on_host[l]) {
        if (kv->k[l]) note(cudaFreeHost(kv->k[l]), "cudaFreeHost", __FILE__, __LINE__);
        if (kv->v[l]) note(cudaFreeHost(kv->v[l]), "cudaFreeHost", __FILE__, __LINE__);
    } else {
        cu_free(kv->k[l]);
        cu_free(kv->v[l]);
    }
    kv->k[l] = kv->v[l] = NULL;
}

/* rows of one layer in mapped pinned host memory: the kernels read them
 * through the same pointer (unified addressing), at PCIe speed */
static tome_status host_rows(void **p, size_t bytes)
{
    *p = NULL;
    CK(cudaHostAlloc(p, bytes ? bytes : 1, cudaHostAllocMapped | cudaHostAllocPortable));
    void *d = NULL;
    cudaError_t e = cudaHostGetDevicePointer(&d, *p, 0);
    if (e != cudaSuccess || d != *p) {
        note(cudaFreeHost(*p), "cudaFreeHost", __FILE__, __LINE__);
        *p = NULL;
        if (e != cudaSuccess) return cuda_err("cudaHostGetDevicePointer", e, __FILE__, __LINE__);
        return tome_set_error(TOME_ERR_UNSUPPORTED, "cuda kv: mapped host memory without unified addressing");
    }
    return TOME_OK;
}

static void cu_kv_free(void *p)
{
    dev_kv *kv = (dev_kv *)p;
    if (!kv) return;
    for (int l = 0; l < kv->n_layers; l++) kv_release(kv, l);
    cu_free(kv->ws);
    free(kv);
}

static tome_status cu_kv_open(const tome_kv_params *p, void **out)
{
    *out = NULL;
    if (p->n_layers > TOME_MAX_LAYERS) return tome_set_error(TOME_ERR_LIMIT, "cuda kv: %d layers", p->n_layers);
    dev_kv *kv = (dev_kv *)calloc(1, sizeof *kv);
    if (!kv) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    kv->n_layers = p->n_layers;
    kv->head_dim = p->head_dim;
    kv->kvd = p->n_kv_heads * p->head_dim;
    kv->max_tokens = p->max_tokens;
    kv->n_kv_heads = p->n_kv_heads;
    const char *kvf = getenv("TOME_CUDA_KV");
    kv->bf16 = kvf && !strcmp(kvf, "bf16");
    tome_status st = TOME_OK;
    /* Placement (the plan of gpu_plan.h): the chunked layers' rings first,
     * then the global layers in order while they fit in free GPU memory
     * minus a reserve for scratch; the rest go to mapped pinned host memory
     * unless TOME_CUDA_KV_HOST=0, which makes "does not fit" an error
     * naming the bytes. */
    const char *hv = getenv("TOME_CUDA_KV_HOST");
    const int host_ok = !(hv && !strcmp(hv, "0"));
    const uint64_t reserve = (uint64_t)1 << 30;
    size_t fr = 0, tot = 0;
    if (cudaMemGetInfo(&fr, &tot) != cudaSuccess) fr = 0;
    uint64_t room = fr > reserve ? fr - reserve : 0;
    for (int pass = 0; pass < 2 && st == TOME_OK; pass++) {
        for (int l = 0; l < p->n_layers && st == TOME_OK; l++) {
            int64_t w = p->window ? p->window[l] : 0;
            kv->window[l] = w > 0 && w < p->max_tokens ? w : 0;
            if ((pass == 0) != (kv->window[l] > 0)) continue; /* rings, then full layers */
            int64_t rows = kv->window[l] ? kv->window[l] : p->max_tokens;
            size_t bytes = (size_t)rows * (size_t)kv->kvd * (kv->bf16 ? 2 : 4);
            if (2ull * bytes <= room) {
                room -= 2ull * bytes;
                st = cu_alloc(&kv->k[l], bytes);
                if (st == TOME_OK) st = cu_alloc(&kv->v[l], bytes);
            } else if (host_ok) {
                kv->on_host[l] = 1;
                kv->host_bytes += 2ull * bytes;
                st = host_rows(&kv->k[l], bytes);
                if (st == TOME_OK) st = host_rows(&kv->v[l], bytes);
            } else {
                st = tome_set_error(TOME_ERR_LIMIT,
                                    "cuda kv: %lld tokens: layer %d's %.2f GB of %s K/V rows do not fit (%.2f GB of the "
                                    "GPU's memory free, TOME_CUDA_KV_HOST=0)%s",
                                    (long long)p->max_tokens, l, 2.0 * (double)bytes / 1e9, kv->bf16 ? "bf16" : "f32",
                                    (double)fr / 1e9, kv->bf16 ? "" : "; TOME_CUDA_KV=bf16 halves it");
                break; /* the message names the bytes already */
            }
            if (st != TOME_OK) {
                char why[512];
                snprintf(why, sizeof why, "%s", tome_last_error());
                st = tome_set_error(TOME_ERR_DEVICE, "cuda kv: layer %d, %lld rows of %d values%s: %s", l,
                                    (long long)rows, kv->kvd, kv->on_host[l] ? " in pinned host memory" : "", why);
            }
        }
    }
    if (st == TOME_OK) st = cu_alloc((void **)&kv->ws, (size_t)ATTN_ENTRIES * (size_t)(p->head_dim + 2) * sizeof(float));
    if (st != TOME_OK) {
        cu_kv_free(kv);
        return st;
    }
    *out = kv;
    return TOME_OK;
}

__device__ __forceinline__ void kv_put(float *p, float x) { *p = x; }
__device__ __forceinline__ void kv_put(__nv_bfloat16 *p, float x) { *p = __float2bfloat16_rn(x); }
__device__ __forceinline__ float kv_get(const float *p) { return *p; }
__device__ __forceinline__ float kv_get(const __nv_bfloat16 *p) { return __bfloat162float(*p); }

template <typename T>
__global__ void k_kv_write(T *K, T *V, int64_t window, int kvd, const int64_t *pos, int64_t n, const float *k,
                           const float *v)
{
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < n * kvd; t += (int64_t)gridDim.x * blockDim.x) {
        int64_t i = t / kvd, c = t % kvd, p = pos[i];
        int64_t slot = window ? p % window : p;
        kv_put(K + slot * kvd + c, k[t]);
        kv_put(V + slot * kvd + c, v[t]);
    }
}

static tome_status cu_kv_write(void *p, int layer, const int64_t *pos, size_t n, const float *k, const float *v)
{
    dev_kv *kv = (dev_kv *)p;
    if (!n) return TOME_OK;
    const unsigned nb = blocks_for((int64_t)n * kv->kvd, 256);
    if (kv->bf16)
        k_kv_write<__nv_bfloat16><<<nb, 256, 0, g_stream>>>((__nv_bfloat16 *)kv->k[layer], (__nv_bfloat16 *)kv->v[layer],
                                                             kv->window[layer], kv->kvd, pos, (int64_t)n, k, v);
    else
        k_kv_write<float><<<nb, 256, 0, g_stream>>>((float *)kv->k[layer], (float *)kv->v[layer], kv->window[layer],
                                                     kv->kvd, pos, (int64_t)n, k, v);
    LAUNCHED("k_kv_write");
    return TOME_OK;
}

#define ATTN_WARPS 4
/* Partial attention of (query i, head h) = blockIdx.x over split blockIdx.y
 * of its visible keys; ws[(qh*S + s)*(hd+2)] = m, l, acc[hd]. DPL: head
 * dims per lane (d = lane + 32t). */
template <int DPL, typename T>
__global__ void __launch_bounds__(ATTN_WARPS * 32)
    k_attn_split(const float *q, int64_t q_stride, const T *K, const T *V, int kvd, int64_t window,
                 const int64_t *qpos, int n_heads, int rep, int hd, float scale, int64_t chunk, int S, float *ws)
{
    __shared__ float sm[ATTN_WARPS], sl[ATTN_WARPS], sacc[ATTN_WARPS][DPL * 32];
    const int64_t qh = blockIdx.x;
    const int64_t i = qh / n_heads;
    const int h = (int)(qh % n_heads), g = h / rep, s = blockIdx.y;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int64_t p = qpos[i], lo = chunk > 0 ? (p / chunk) * chunk : 0;
    const int64_t len = p - lo + 1, per = (len + S - 1) / S;
    const int64_t a = lo + (int64_t)s * per, b = a + per < p + 1 ? a + per : p + 1;
    float qr[DPL], acc[DPL];
#pragma unroll
    for (int t = 0; t < DPL; t++) {
        int d = lane + 32 * t;
        qr[t] = d < hd ? q[i * q_stride + (int64_t)h * hd + d] * scale : 0.f;
        acc[t] = 0.f;
    }
    float m = -INFINITY, l = 0.f;
    for (int64_t j = a + warp; j < b; j += ATTN_WARPS) {
        const int64_t slot = window ? j % window : j;
        const T *kr = K + slot * kvd + (int64_t)g * hd, *vr = V + slot * kvd + (int64_t)g * hd;
        float dot = 0.f;
#pragma unroll
        for (int t = 0; t < DPL; t++) {
            int d = lane + 32 * t;
            if (d < hd) dot += qr[t] * kv_get(kr + d);
        }
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
        float mn = fmaxf(m, dot), corr = expf(m - mn), pj = expf(dot - mn);
        l = l * corr + pj;
#pragma unroll
        for (int t = 0; t < DPL; t++) {
            int d = lane + 32 * t;
            acc[t] = acc[t] * corr + (d < hd ? pj * kv_get(vr + d) : 0.f);
        }
        m = mn;
    }
    if (lane == 0) sm[warp] = m, sl[warp] = l;
#pragma unroll
    for (int t = 0; t < DPL; t++) sacc[warp][lane + 32 * t] = acc[t];
    __syncthreads();
    if (warp != 0) return;
    float M = -INFINITY;
    for (int w = 0; w < ATTN_WARPS; w++) M = fmaxf(M, sm[w]);
    float L = 0.f, o[DPL];
#pragma unroll
    for (int t = 0; t < DPL; t++) o[t] = 0.f;
    for (int w = 0; w < ATTN_WARPS; w++) {
        float f = sm[w] == -INFINITY ? 0.f : expf(sm[w] - M);
        L += sl[w] * f;
#pragma unroll
        for (int t = 0; t < DPL; t++) o[t] += sacc[w][lane + 32 * t] * f;
    }
    float *dst = ws + ((int64_t)qh * S + s) * (hd + 2);
    if (lane == 0) dst[0] = M, dst[1] = L;
#pragma unroll
    for (int t = 0; t < DPL; t++) {
        int d = lane + 32 * t;
        if (d < hd) dst[2 + d] = o[t];
    }
}

__global__ void k_attn_merge(const float *ws, int S, int hd, int n_heads, float *out, int64_t out_stride)
{
    const int64_t qh = blockIdx.x, i = qh / n_heads;
    const int h = (int)(qh % n_heads);
    const float *src = ws + qh * S * (hd + 2);
    float M = -INFINITY;
    for (int s = 0; s < S; s++) M = fmaxf(M, src[(int64_t)s * (hd + 2)]);
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float L = 0.f, o = 0.f;
        for (int s = 0; s < S; s++) {
            const float *e = src + (int64_t)s * (hd + 2);
            float f = e[0] == -INFINITY ? 0.f : expf(e[0] - M);
            L += e[1] * f;
            o += e[2 + d] * f;
        }
        out[i * out_stride + (int64_t)h * hd + d] = L > 0 ? o / L : 0.f;
    }
}

static void cu_kv_seek(void *p, int64_t pos0, size_t n)
{
    dev_kv *kv = (dev_kv *)p;
    kv->pos0 = pos0;
    kv->n = (int64_t)n;
}

__global__ void k_bf16_to_f32(const __nv_bfloat16 *x, int64_t n, int64_t cols, float *out, int64_t ldo)
{
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < n * cols; t += (int64_t)gridDim.x * blockDim.x)
        out[(t / cols) * ldo + t % cols] = __bfloat162float(x[t]);
}

static uint16_t *g_qb, *g_ob; /* bf16 q / out of the tensor-core prefill */
static size_t g_qb_cap, g_ob_cap;

/* Prefill micro-batches of head_dim 128 over f32 rows: the bf16 mma.sync
 * kernel of attention/cuda (attention_cuda.h) reading the rows as its float
 * "tail" — global layer: positions [0, end); chunked layer: the ring from
 * the chunk's start. TOME_CUDA_MMA_ATTN=0 turns it off. */
static int use_mma(const dev_kv *kv, const tome_attn_params *p)
{
    const char *e = getenv("TOME_CUDA_MMA_ATTN");
    return p->head_dim == 128 && p->n_q >= 64 && !kv->bf16 && kv->n > 0 && !capturing() && !(e && !strcmp(e, "0"));
}

static tome_status attention_mma(dev_kv *kv, const tome_attn_params *p)
{
    const int64_t Q = (int64_t)p->n_heads * p->head_dim, n = (int64_t)p->n_q, l = p->layer;
    const int64_t end = kv->pos0 + kv->n, lo = p->chunk > 0 ? ((end - 1) / p->chunk) * p->chunk : 0;
    if (p->chunk > 0 && kv->pos0 < lo)
        return tome_set_error(TOME_ERR_INTERNAL, "cuda attention: micro-batch [%lld, %lld) crosses a chunk boundary",
                              (long long)kv->pos0, (long long)end);
    TOME_FORWARD(grow(&g_qb, &g_qb_cap, (size_t)(n * Q)));
    TOME_FORWARD(grow(&g_ob, &g_ob_cap, (size_t)(n * Q)));
    k_f32_to_bf16<<<blocks_for(n * Q, 256), 256, 0, g_stream>>>(p->q, n, Q, (int64_t)p->q_stride, (__nv_bfloat16 *)g_qb);
    LAUNCHED("k_f32_to_bf16");
    tome_attn_cuda_params a;
    memset(&a, 0, sizeof a);
    a.q = g_qb;
    a.q_stride = (size_t)Q;
    a.out = g_ob;
    a.out_stride = (size_t)Q;
    a.q_pos = p->q_pos;
    a.n_q = p->n_q;
    a.n_heads = p->n_heads;
    a.n_kv_heads = p->n_kv_heads;
    a.head_dim = p->head_dim;
    a.chunk = p->chunk;
    a.scale = p->scale;
    if (tome_kv_layout_init(&a.kv.layout, TOME_KV_F32, TOME_KV_PAGE_TOKENS_DEFAULT, p->n_kv_heads, p->head_dim,
                            p->head_dim < TOME_KV_GROUP_DEFAULT ? p->head_dim : TOME_KV_GROUP_DEFAULT) != 0)
        return tome_set_error(TOME_ERR_INTERNAL, "cuda attention: no f32 page layout for %d x %d", p->n_kv_heads, p->head_dim);
    a.kv.pages = NULL;
    a.kv.n_pages = 0;
    a.kv.base = lo;
    a.kv.tail_p0 = lo;
    a.kv.n_tail = end - lo;
    /* a ring holds the chunk from slot 0; full storage holds position p at row p */
    const size_t first = kv->window[l] ? 0 : (size_t)lo * (size_t)kv->kvd;
    a.kv.tail_k = (const float *)kv->k[l] + first;
    a.kv.tail_v = (const float *)kv->v[l] + first;
    a.stream = (void *)g_stream;
    TOME_FORWARD(tome_attn_cuda_prefill(&a));
    k_bf16_to_f32<<<blocks_for(n * Q, 256), 256, 0, g_stream>>>((const __nv_bfloat16 *)g_ob, n, Q, p->out,
                                                                 (int64_t)p->out_stride);
    LAUNCHED("k_bf16_to_f32");
    return TOME_OK;
}

static tome_status cu_attention_dev(void *pkv, const tome_attn_params *p)
{
    dev_kv *kv = (dev_kv *)pkv;
    if (!p->n_q) return TOME_OK;
    if (use_mma(kv, p)) return attention_mma(kv, p);
    const int hd = p->head_dim, l = p->layer;
    if (hd > 256 || p->n_heads % p->n_kv_heads != 0)
        return tome_set_error(TOME_ERR_UNSUPPORTED, "cuda attention: head_dim %d (at most 256), %d heads over %d kv heads", hd,
                              p->n_heads, p->n_kv_heads);
    if (p->chunk > 0 && kv->window[l] > 0 && kv->window[l] != p->chunk)
        return tome_set_error(TOME_ERR_INVALID_ARG, "cuda attention: layer %d window %lld != chunk %lld", l,
                              (long long)kv->window[l], (long long)p->chunk);
    const int64_t pairs = (int64_t)p->n_q * p->n_heads;
    int S = pairs >= ATTN_ENTRIES ? 1 : (int)(ATTN_ENTRIES / pairs);
    if (S > 64) S = 64;
    float *ws = kv->ws;
    if (pairs * S > ATTN_ENTRIES || hd != kv->head_dim) {
        TOME_FORWARD(grow(&g_attn_ws, &g_attn_ws_cap, (size_t)(pairs * S) * (size_t)(hd + 2)));
        ws = g_attn_ws;
    }
    const float scale = p->scale > 0 ? p->scale : 1.0f / sqrtf((float)hd);
    const int rep = p->n_heads / p->n_kv_heads;
    dim3 grid((unsigned)pairs, (unsigned)S);
#define ATTN_LAUNCH_T(D, T)                                                                                    \
    k_attn_split<D, T><<<grid, ATTN_WARPS * 32, 0, g_stream>>>(p->q, (int64_t)p->q_stride, (const T *)kv->k[l],   \
                                                               (const T *)kv->v[l], kv->kvd, kv->window[l], p->q_pos, \
                                                               p->n_heads, rep, hd, scale, p->chunk, S, ws)
#define ATTN_LAUNCH(D)                                  \
    do {                                                \
        if (kv->bf16) ATTN_LAUNCH_T(D, __nv_bfloat16);  \
        else ATTN_LAUNCH_T(D, float);                   \
    } while (0)
    if (hd <= 32) ATTN_LAUNCH(1);
    else if (hd <= 64) ATTN_LAUNCH(2);
    else if (hd <= 128) ATTN_LAUNCH(4);
    else ATTN_LAUNCH(8);
#undef ATTN_LAUNCH
#undef ATTN_LAUNCH_T
    LAUNCHED("k_attn_split");
    k_attn_merge<<<(unsigned)pairs, hd < 128 ? 32 : 128, 0, g_stream>>>(ws, S, hd, p->n_heads, p->out,
                                                                         (int64_t)p->out_stride);
    LAUNCHED("k_attn_merge");
    return TOME_OK;
}

static tome_status cu_attention_host(const tome_attn_params *p)
{
    (void)p;
    return tome_set_error(TOME_ERR_UNSUPPORTED, "cuda: attention over a host KV cache; use attention_dev");
}

/* ------------------------------------------------------------ MoE */
__global__ void k_route(const float *router, int64_t n, int E, int K, int32_t *sel, float *score)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) tome_moe_route(router + i * E, E, K, sel + i * K, score + i * K);
}
__global__ void k_plan(const int32_t *sel, int32_t n_slots, int E, int32_t *plan, int32_t *order, int32_t *where)
{
    tome_moe_plan(sel, n_slots, E, plan, plan + E + 1, order, where);
}
__global__ void k_gather(const float *h, int64_t H, int K, const int32_t *order, const float *score, int64_t nk, float *xin)
{
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < nk * H; t += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = t / H, d = t % H, slot = order[r];
        xin[t] = h[(slot / K) * H + d] * score[slot];
    }
}
__global__ void k_swiglu_split(const float *f1, int64_t nk, int64_t I, float *f2)
{
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < nk * I; t += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = t / I, c = t % I;
        float g = f1[r * 2 * I + c], u = f1[r * 2 * I + I + c];
        f2[t] = g / (1.0f + expf(-g)) * u;
    }
}
__global__ void k_combine(const float *y, int64_t n, int64_t H, int K, const int32_t *where, float *out)
{
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < n * H; t += (int64_t)gridDim.x * blockDim.x) {
        int64_t i = t / H, d = t % H;
        float s = out[t];
        for (int j = 0; j < K; j++) s += y[(int64_t)where[i * K + j] * H + d];
        out[t] = s;
    }
}

/* grouped y[r] = x[r]·W_eᵀ for the rows r of each expert e (offsets in plan) */
static tome_status grouped(const tome_wt *w0, int E, const float *x, int64_t ldx, float *y, int64_t ldy,
                           const int32_t *plan, int64_t nk)
{
    if (nk >= blas_min_rows() && !capturing()) {
        int32_t off[257];
        if (E > 256) return tome_set_error(TOME_ERR_UNSUPPORTED, "cuda moe: %d experts (at most 256)", E);
        CK(cudaMemcpyAsync(off, plan, (size_t)(E + 1) * sizeof(int32_t), cudaMemcpyDeviceToHost, g_stream));
        CK(cudaStreamSynchronize(g_stream));
        const size_t es = dev_wt_bytes(w0);
        for (int e = 0; e < E; e++) {
            int64_t cnt = off[e + 1] - off[e];
            if (cnt <= 0) continue;
            tome_wt we = *w0;
            we.data = (const uint8_t *)w0->data + (size_t)e * es;
            TOME_FORWARD(mm(&we, x + off[e] * ldx, cnt, ldx, y + off[e] * ldy, ldy));
        }
        return TOME_OK;
    }
    return launch_simt(w0, x, nk, ldx, y, ldy, plan, E, nk);
}

static tome_status cu_moe(const tome_moe_args *a)
{
    const int64_t n = (int64_t)a->n, nk = n * a->K, H = a->H, I = a->I;
    if (!n) return TOME_OK;
    k_route<<<(unsigned)((n + 127) / 128), 128, 0, g_stream>>>(a->router, n, a->E, a->K, a->sel, a->score);
    LAUNCHED("k_route");
    k_plan<<<1, 1, 0, g_stream>>>(a->sel, (int32_t)nk, a->E, a->plan, a->order, a->where);
    LAUNCHED("k_plan");
    k_gather<<<blocks_for(nk * H, 256), 256, 0, g_stream>>>(a->h, H, a->K, a->order, a->score, nk, a->xin);
    LAUNCHED("k_gather");
    TOME_FORWARD(grouped(&a->L->exp_gate[0], a->E, a->xin, H, a->f1, 2 * I, a->plan, nk));
    k_swiglu_split<<<blocks_for(nk * I, 256), 256, 0, g_stream>>>(a->f1, nk, I, a->f2);
    LAUNCHED("k_swiglu_split");
    TOME_FORWARD(grouped(&a->L->exp_down[0], a->E, a->f2, I, a->xin, H, a->plan, nk));
    k_combine<<<blocks_for(n * H, 256), 256, 0, g_stream>>>(a->xin, n, H, a->K, a->where, a->out);
    LAUNCHED("k_combine");
    return TOME_OK;
}

/* ------------------------------------------------------------ graphs */
static tome_status cu_graph_begin(void)
{
    CK(cudaStreamBeginCapture(g_stream, cudaStreamCaptureModeThreadLocal));
    return TOME_OK;
}
static tome_status cu_graph_end(void **out)
{
    *out = NULL;
    cudaGraph_t g = NULL;
    CK(cudaStreamEndCapture(g_stream, &g));
    if (g_pending != TOME_OK) {
        note(cudaGraphDestroy(g), "cudaGraphDestroy", __FILE__, __LINE__);
        return cu_sync();
    }
    cudaGraphExec_t ex = NULL;
    cudaError_t e = cudaGraphInstantiate(&ex, g, 0);
    note(cudaGraphDestroy(g), "cudaGraphDestroy", __FILE__, __LINE__);
    if (e != cudaSuccess) return cuda_err("cudaGraphInstantiate", e, __FILE__, __LINE__);
    *out = (void *)ex;
    return TOME_OK;
}
static tome_status cu_graph_launch(void *g)
{
    CK(cudaGraphLaunch((cudaGraphExec_t)g, g_stream));
    return TOME_OK;
}
static void cu_graph_free(void *g)
{
    if (g) note(cudaGraphExecDestroy((cudaGraphExec_t)g), "cudaGraphExecDestroy", __FILE__, __LINE__);
}

/* ------------------------------------------------------------ weights */
typedef struct dev_priv {
    void **allocs;
    size_t n, cap;
    void *host;      /* packing buffer */
    size_t host_cap;
    uint64_t bytes;  /* device bytes of weights */
} dev_priv;

static tome_status track(dev_priv *pv, size_t bytes, void **out)
{
    if (pv->n == pv->cap) {
        size_t nc = pv->cap ? pv->cap * 2 : 256;
        void **na = (void **)realloc(pv->allocs, nc * sizeof(void *));
        if (!na) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
        pv->allocs = na, pv->cap = nc;
    }
    cudaError_t e = cudaMalloc(out, bytes ? bytes : 1);
    if (e != cudaSuccess) {
        size_t fr = 0, tot = 0;
        if (cudaMemGetInfo(&fr, &tot) != cudaSuccess) fr = 0;
        return tome_set_error(TOME_ERR_DEVICE, "cuda weights: cudaMalloc of %zu bytes after %llu MiB of weights (%zu MiB free): %s",
                              bytes, (unsigned long long)(pv->bytes >> 20), fr >> 20, cudaGetErrorString(e));
    }
    pv->allocs[pv->n++] = *out;
    pv->bytes += bytes;
    return TOME_OK;
}

/* packs w (GPU layout) to dst + off on the device; the view *dv points there */
static tome_status put_wt(dev_priv *pv, const tome_wt *w, uint8_t *dst, tome_wt *dv)
{
    size_t bytes = tome_gpu_wt_bytes(w);
    if (w->n_in % 8 != 0)
        return tome_set_error(TOME_ERR_UNSUPPORTED, "cuda weights: [%lld][%lld]: n_in must be a multiple of 8",
                              (long long)w->n_out, (long long)w->n_in);
    if (pv->host_cap < bytes) {
        free(pv->host);
        pv->host = malloc(bytes);
        pv->host_cap = pv->host ? bytes : 0;
        if (!pv->host) return tome_set_error(TOME_ERR_NOMEM, "cuda weights: out of host memory packing %zu bytes", bytes);
    }
    TOME_FORWARD(tome_gpu_wt_pack(w, pv->host));
    CK(cudaMemcpy(dst, pv->host, bytes, cudaMemcpyHostToDevice));
    dv->dtype = tome_gpu_wt_dtype(w);
    dv->layout = TOME_W_OUT_IN;
    dv->n_out = w->n_out;
    dv->n_in = w->n_in;
    dv->data = dst;
    return TOME_OK;
}

static tome_status one_wt(dev_priv *pv, const tome_wt *w, tome_wt *dv)
{
    void *d = NULL;
    TOME_FORWARD(track(pv, tome_gpu_align(tome_gpu_wt_bytes(w)), &d));
    return put_wt(pv, w, (uint8_t *)d, dv);
}

static tome_status one_vec(dev_priv *pv, const float *v, size_t n, float **out)
{
    void *d = NULL;
    TOME_FORWARD(track(pv, n * sizeof(float), &d));
    CK(cudaMemcpy(d, v, n * sizeof(float), cudaMemcpyHostToDevice));
    *out = (float *)d;
    return TOME_OK;
}

/* all experts of one matrix kind in one allocation, 256-aligned stride */
static tome_status experts(dev_priv *pv, const tome_wt *hw, int E, tome_wt *dv)
{
    size_t es = tome_gpu_align(tome_gpu_wt_bytes(&hw[0]));
    void *d = NULL;
    TOME_FORWARD(track(pv, es * (size_t)E, &d));
    for (int e = 0; e < E; e++) {
        if (hw[e].dtype != hw[0].dtype || hw[e].n_out != hw[0].n_out || hw[e].n_in != hw[0].n_in)
            return tome_set_error(TOME_ERR_FORMAT, "cuda weights: expert %d differs from expert 0 in dtype or shape", e);
        TOME_FORWARD(put_wt(pv, &hw[e], (uint8_t *)d + (size_t)e * es, &dv[e]));
    }
    return TOME_OK;
}

static void cu_model_release(tome_model_t *m)
{
    tome_dev_model *dm = m->dev;
    if (!dm) return;
    dev_priv *pv = (dev_priv *)dm->priv;
    if (pv) {
        for (size_t i = 0; i < pv->n; i++) note(cudaFree(pv->allocs[i]), "cudaFree (weights)", __FILE__, __LINE__);
        free(pv->allocs);
        free(pv->host);
        free(pv);
    }
    if (dm->layers)
        for (int l = 0; l < m->cfg.n_layers; l++) free(dm->layers[l].exp_gate);
    free(dm->layers);
    free(dm);
    m->dev = NULL;
}

static tome_status cu_model_upload(tome_model_t *m)
{
    const tome_model_config_t *c = &m->cfg;
    tome_dev_model *dm = (tome_dev_model *)calloc(1, sizeof *dm);
    dev_priv *pv = (dev_priv *)calloc(1, sizeof *pv);
    tome_layer_w *layers = (tome_layer_w *)calloc((size_t)c->n_layers, sizeof *layers);
    if (!dm || !pv || !layers) {
        free(dm), free(pv), free(layers);
        return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    }
    dm->priv = pv;
    dm->layers = layers;
    m->dev = dm;
    const size_t H = (size_t)c->hidden_size;
    tome_status st = TOME_OK;
#define UP(expr)                                     \
    do {                                             \
        if ((st = (expr)) != TOME_OK) goto fail;     \
    } while (0)
    UP(one_wt(pv, &m->embed, &dm->embed));
    UP(one_wt(pv, &m->lm_head, &dm->lm_head));
    UP(one_vec(pv, m->final_norm, H, &dm->final_norm));
    UP(one_vec(pv, m->inv_freq, (size_t)c->head_dim / 2, &dm->inv_freq));
    for (int l = 0; l < c->n_layers; l++) {
        const tome_layer_w *L = &m->layers[l];
        tome_layer_w *D = &layers[l];
        UP(one_vec(pv, L->attn_norm, H, &D->attn_norm));
        UP(one_vec(pv, L->ffn_norm, H, &D->ffn_norm));
        UP(one_wt(pv, &L->wq, &D->wq));
        UP(one_wt(pv, &L->wk, &D->wk));
        UP(one_wt(pv, &L->wv, &D->wv));
        UP(one_wt(pv, &L->wo, &D->wo));
        UP(one_wt(pv, &L->gate, &D->gate));
        UP(one_wt(pv, &L->up, &D->up));
        UP(one_wt(pv, &L->down, &D->down));
        if (!c->is_moe[l]) continue;
        const int E = c->n_experts;
        UP(one_wt(pv, &L->router, &D->router));
        D->exp_gate = (tome_wt *)calloc((size_t)E * 2, sizeof(tome_wt));
        if (!D->exp_gate) {
            st = tome_set_error(TOME_ERR_NOMEM, "out of memory");
            goto fail;
        }
        D->exp_down = D->exp_gate + E;
        UP(experts(pv, L->exp_gate, E, D->exp_gate));
        UP(experts(pv, L->exp_down, E, D->exp_down));
    }
#undef UP
    free(pv->host);
    pv->host = NULL;
    pv->host_cap = 0;
    return TOME_OK;
fail:
    cu_model_release(m);
    return st;
}

/* ------------------------------------------------------------ the table */
static const tome_backend g_cuda = {
    .name = "cuda",
    .matmul = cu_matmul,
    .rmsnorm = cu_rmsnorm,
    .rope = cu_rope,
    .scale_rows = cu_scale_rows,
    .swiglu = cu_swiglu,
    .embed = cu_embed,
    .add = cu_add,
    .attention = cu_attention_host,
    .rope_qknorm = cu_rope_qknorm,
    .model_upload = cu_model_upload,
    .model_release = cu_model_release,
    .buf_alloc = cu_alloc,
    .buf_free = cu_free,
    .upload = cu_upload,
    .download = cu_download,
    .copy = cu_copy,
    .sync = cu_sync,
    .kv_open = cu_kv_open,
    .kv_free = cu_kv_free,
    .kv_seek = cu_kv_seek,
    .kv_write = cu_kv_write,
    .attention_dev = cu_attention_dev,
    .temp_scale = cu_temp_scale,
    .moe = cu_moe,
    .graph_begin = cu_graph_begin,
    .graph_end = cu_graph_end,
    .graph_launch = cu_graph_launch,
    .graph_free = cu_graph_free,
};

static int g_ready = 0; /* 1 ok, -1 failed */
static char g_why[512];

static tome_status init(void)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        cudaGetLastError();
        return tome_set_error(TOME_ERR_DEVICE, "no CUDA device: %s",
                              e != cudaSuccess ? cudaGetErrorString(e) : "cudaGetDeviceCount found 0 devices");
    }
    CK(cudaSetDevice(0));
    char why[300];
    if (!cublas_open(why, sizeof why)) return tome_set_error(TOME_ERR_DEVICE, "%s", why);
    CK(cudaStreamCreateWithFlags(&g_stream, cudaStreamNonBlocking));
    CKB(cublasCreate(&g_blas));
    CKB(cublasSetStream(g_blas, g_stream));
    const size_t ws = (size_t)32 << 20;
    CK(cudaMalloc(&g_blas_ws, ws));
    CKB(cublasSetWorkspace(g_blas, g_blas_ws, ws));
    return TOME_OK;
}

extern "C" const tome_backend *tome_backend_cuda(void)
{
    if (g_ready == 0) {
        tome_status st = init();
        g_ready = st == TOME_OK ? 1 : -1;
        if (st != TOME_OK) snprintf(g_why, sizeof g_why, "%s", tome_last_error());
    }
    if (g_ready < 0) {
        tome_set_error(TOME_ERR_DEVICE, "%s", g_why);
        return NULL;
    }
    return &g_cuda;
}
