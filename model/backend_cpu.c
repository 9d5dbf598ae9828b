/*
 * model/backend_cpu.c — the CPU reference backend (table in backend_impl.h).
 *
 * Matmul: the output columns are cut into tiles of `nb` weight rows; each
 * thread converts one tile of the weight (bf16 / f16 / int8 / int4 → f32,
 * into a per-thread buffer of nb × n_in floats, about 256 KiB so it stays in
 * L2) and multiplies it with OpenBLAS sgemm (single-threaded inside; the
 * threads are ours, pool.c). F32 weights in OUT_IN layout are used in place.
 * The whole weight is never converted at once.
 */
#include "model/backend_impl.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/pool_impl.h"
#include "model/quant_impl.h"

static int g_threads = 1;

void tome_backend_cpu_set_threads(int n)
{
    g_threads = n > 0 ? n : 1;
    openblas_set_num_threads(1);
}

/* ---------------------------------------------------------------- bf16 kernels
 * AVX2/FMA versions are compiled with a target attribute and chosen at run
 * time, so the build needs no -march flag. */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define TOME_X86 1
__attribute__((target("avx2,fma"))) static void bf16_to_f32_avx2(const uint16_t *s, float *d, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(s + i)));
        _mm256_storeu_ps(d + i, _mm256_castsi256_ps(_mm256_slli_epi32(v, 16)));
    }
    for (; i < n; i++) d[i] = tome_bf16_to_f32(s[i]);
}

/* y[j] = dot(W[j, :], x) for j in [0, cnt) of an OUT_IN bf16 matrix */
__attribute__((target("avx2,fma"))) static void gemv_bf16_avx2(const uint16_t *w, size_t n_in, size_t cnt,
                                                               const float *x, float *y)
{
    for (size_t j = 0; j < cnt; j++) {
        const uint16_t *r = w + j * n_in;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        size_t k = 0;
        for (; k + 16 <= n_in; k += 16) {
            __m256 w0 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(r + k))), 16));
            __m256 w1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(r + k + 8))), 16));
            a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + k), a0);
            a1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + k + 8), a1);
        }
        a0 = _mm256_add_ps(a0, a1);
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(a0), _mm256_extractf128_ps(a0, 1));
        h = _mm_hadd_ps(h, h);
        h = _mm_hadd_ps(h, h);
        float acc = _mm_cvtss_f32(h);
        for (; k < n_in; k++) acc += tome_bf16_to_f32(r[k]) * x[k];
        y[j] = acc;
    }
}

/* y[0..cnt) = Σ_k x[k] · W[k, j0 .. j0+cnt) of an IN_OUT bf16 matrix [n_in][n_out] */
__attribute__((target("avx2,fma"))) static void axpy_bf16_avx2(const uint16_t *w, size_t n_in, size_t n_out, size_t j0,
                                                               size_t cnt, const float *x, float *y)
{
    memset(y, 0, cnt * sizeof(float));
    for (size_t k = 0; k < n_in; k++) {
        const uint16_t *r = w + k * n_out + j0;
        __m256 xk = _mm256_set1_ps(x[k]);
        size_t j = 0;
        for (; j + 8 <= cnt; j += 8) {
            __m256 wv = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(r + j))), 16));
            _mm256_storeu_ps(y + j, _mm256_fmadd_ps(wv, xk, _mm256_loadu_ps(y + j)));
        }
        for (; j < cnt; j++) y[j] += x[k] * tome_bf16_to_f32(r[j]);
    }
}

static inline float hsum256(__m256 a) __attribute__((target("avx2,fma")));
static inline float hsum256(__m256 a)
{
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    h = _mm_hadd_ps(h, h);
    h = _mm_hadd_ps(h, h);
    return _mm_cvtss_f32(h);
}

/* y[j] = dot(dequant(row j), x) for rows of int8 blocks */
__attribute__((target("avx2,fma"))) static void gemv_q8_avx2(const tome_block_q8 *w, size_t n_in, size_t cnt,
                                                             const float *x, float *y)
{
    const size_t nb = n_in / TOME_QGROUP;
    for (size_t j = 0; j < cnt; j++) {
        const tome_block_q8 *b = w + j * nb;
        __m256 acc = _mm256_setzero_ps();
        for (size_t k = 0; k < nb; k++) {
            const float *xk = x + k * TOME_QGROUP;
            __m128i q = _mm_loadu_si128((const __m128i *)b[k].q), q2 = _mm_loadu_si128((const __m128i *)(b[k].q + 16));
            __m256 s = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), _mm256_loadu_ps(xk));
            s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q, 8))), _mm256_loadu_ps(xk + 8), s);
            s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q2)), _mm256_loadu_ps(xk + 16), s);
            s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q2, 8))), _mm256_loadu_ps(xk + 24), s);
            acc = _mm256_fmadd_ps(_mm256_set1_ps(b[k].d), s, acc);
        }
        y[j] = hsum256(acc);
    }
}

/* y[j] = dot(dequant(row j), x) for rows of int4 blocks (element 2i in the
 * low nibble of byte i, 2i+1 in the high nibble) */
__attribute__((target("avx2,fma"))) static void gemv_q4_avx2(const tome_block_q4 *w, size_t n_in, size_t cnt,
                                                             const float *x, float *y)
{
    const size_t nb = n_in / TOME_QGROUP;
    const __m128i mask = _mm_set1_epi8(15), eight = _mm_set1_epi8(8);
    for (size_t j = 0; j < cnt; j++) {
        const tome_block_q4 *b = w + j * nb;
        __m256 acc = _mm256_setzero_ps();
        for (size_t k = 0; k < nb; k++) {
            const float *xk = x + k * TOME_QGROUP;
            __m128i raw = _mm_loadu_si128((const __m128i *)b[k].q);
            __m128i lo = _mm_sub_epi8(_mm_and_si128(raw, mask), eight);
            __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(raw, 4), mask), eight);
            __m128i v0 = _mm_unpacklo_epi8(lo, hi), v1 = _mm_unpackhi_epi8(lo, hi); /* elements 0..15, 16..31 */
            __m256 s = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v0)), _mm256_loadu_ps(xk));
            s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(v0, 8))), _mm256_loadu_ps(xk + 8), s);
            s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v1)), _mm256_loadu_ps(xk + 16), s);
            s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(v1, 8))), _mm256_loadu_ps(xk + 24), s);
            acc = _mm256_fmadd_ps(_mm256_set1_ps(b[k].d), s, acc);
        }
        y[j] = hsum256(acc);
    }
}

static int have_avx2(void)
{
    static int v = -1;
    if (v < 0) v = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return v;
}
#else
#define TOME_X86 0
static int have_avx2(void) { return 0; }
#endif

static void bf16_to_f32(const uint16_t *s, float *d, size_t n)
{
#if TOME_X86
    if (have_avx2()) {
        bf16_to_f32_avx2(s, d, n);
        return;
    }
#endif
    for (size_t i = 0; i < n; i++) d[i] = tome_bf16_to_f32(s[i]);
}

void tome_wt_row_f32(const tome_wt *w, int64_t r, float *out)
{
    /* row r of the OUT_IN view: n_in values */
    const int64_t n_in = w->n_in, n_out = w->n_out;
    if (w->layout == TOME_W_IN_OUT) {
        for (int64_t k = 0; k < n_in; k++) {
            size_t i = (size_t)(k * n_out + r);
            switch (w->dtype) {
            case TOME_DT_F32: out[k] = ((const float *)w->data)[i]; break;
            case TOME_DT_BF16: out[k] = tome_bf16_to_f32(((const uint16_t *)w->data)[i]); break;
            case TOME_DT_F16: out[k] = tome_f16_to_f32(((const uint16_t *)w->data)[i]); break;
            default: out[k] = 0; break;
            }
        }
        return;
    }
    size_t base = (size_t)r * (size_t)n_in;
    switch (w->dtype) {
    case TOME_DT_F32: memcpy(out, (const float *)w->data + base, (size_t)n_in * sizeof(float)); break;
    case TOME_DT_BF16: bf16_to_f32((const uint16_t *)w->data + base, out, (size_t)n_in); break;
    case TOME_DT_F16: {
        const uint16_t *s = (const uint16_t *)w->data + base;
        for (int64_t k = 0; k < n_in; k++) out[k] = tome_f16_to_f32(s[k]);
        break;
    }
    case TOME_DT_Q8:
        tome_dequant_q8_row((const tome_block_q8 *)w->data + (size_t)r * (size_t)(n_in / TOME_QGROUP), (size_t)n_in, out);
        break;
    case TOME_DT_Q4:
        tome_dequant_q4_row((const tome_block_q4 *)w->data + (size_t)r * (size_t)(n_in / TOME_QGROUP), (size_t)n_in, out);
        break;
    }
}

/* Converts weight rows [j0, j0+nb) of an IN_OUT matrix into tile[k][0..nb). */
static void tile_in_out(const tome_wt *w, int64_t j0, int64_t nb, float *tile)
{
    const int64_t n_in = w->n_in, n_out = w->n_out;
    for (int64_t k = 0; k < n_in; k++) {
        size_t base = (size_t)(k * n_out + j0);
        float *t = tile + (size_t)(k * nb);
        if (w->dtype == TOME_DT_BF16) {
            bf16_to_f32((const uint16_t *)w->data + base, t, (size_t)nb);
        } else if (w->dtype == TOME_DT_F16) {
            const uint16_t *s = (const uint16_t *)w->data + base;
            for (int64_t j = 0; j < nb; j++) t[j] = tome_f16_to_f32(s[j]);
        } else {
            memcpy(t, (const float *)w->data + base, (size_t)nb * sizeof(float));
        }
    }
}

typedef struct mm_job {
    const tome_wt *w;
    const float *x;
    size_t n, ldx;
    float *y;
    int64_t nb;
    int failed;
} mm_job;

static void mm_tile(void *vctx, size_t ti, int tid)
{
    mm_job *j = vctx;
    const tome_wt *w = j->w;
    const int64_t n_in = w->n_in, n_out = w->n_out, nb = j->nb;
    const int64_t j0 = (int64_t)ti * nb, cnt = n_out - j0 < nb ? n_out - j0 : nb;
    const int n = (int)j->n;
    const int direct = w->dtype == TOME_DT_F32 && w->layout == TOME_W_OUT_IN;
#if TOME_X86
    if (n == 1 && w->dtype == TOME_DT_BF16 && have_avx2()) { /* decode: no f32 tile */
        if (w->layout == TOME_W_OUT_IN)
            gemv_bf16_avx2((const uint16_t *)w->data + (size_t)j0 * (size_t)n_in, (size_t)n_in, (size_t)cnt, j->x,
                           j->y + j0);
        else
            axpy_bf16_avx2((const uint16_t *)w->data, (size_t)n_in, (size_t)n_out, (size_t)j0, (size_t)cnt, j->x,
                           j->y + j0);
        return;
    }
    if (n == 1 && (w->dtype == TOME_DT_Q8 || w->dtype == TOME_DT_Q4) && have_avx2()) {
        size_t nbk = (size_t)(n_in / TOME_QGROUP);
        if (w->dtype == TOME_DT_Q8)
            gemv_q8_avx2((const tome_block_q8 *)w->data + (size_t)j0 * nbk, (size_t)n_in, (size_t)cnt, j->x, j->y + j0);
        else
            gemv_q4_avx2((const tome_block_q4 *)w->data + (size_t)j0 * nbk, (size_t)n_in, (size_t)cnt, j->x, j->y + j0);
        return;
    }
#endif
    float *tile = direct ? NULL : tome_pool_scratch(tid, (size_t)nb * (size_t)n_in * sizeof(float));
    if (!direct && !tile) {
        j->failed = 1;
        return;
    }
    if (w->layout == TOME_W_IN_OUT) {
        tile_in_out(w, j0, cnt, tile);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, (int)cnt, (int)n_in, 1.0f, j->x, (int)j->ldx, tile,
                    (int)cnt, 0.0f, j->y + j0, (int)n_out);
        return;
    }
    const float *wt;
    if (direct) {
        wt = (const float *)w->data + (size_t)j0 * (size_t)n_in;
    } else {
        for (int64_t r = 0; r < cnt; r++) tome_wt_row_f32(w, j0 + r, tile + (size_t)(r * n_in));
        wt = tile;
    }
    if (n == 1)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)cnt, (int)n_in, 1.0f, wt, (int)n_in, j->x, 1, 0.0f, j->y + j0, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, (int)cnt, (int)n_in, 1.0f, j->x, (int)j->ldx, wt,
                    (int)n_in, 0.0f, j->y + j0, (int)n_out);
}

static tome_status cpu_matmul(const tome_wt *w, const float *x, size_t n, size_t ldx, float *y)
{
    if (n == 0) return TOME_OK;
    const int64_t n_in = w->n_in, n_out = w->n_out;
    /* a tile of nb weight rows converted to f32 is ~256 KiB (L2-sized) */
    int64_t nb = (int64_t)(65536 / (n_in > 0 ? n_in : 1));
    if (nb < 16) nb = 16;
    nb = (nb + 7) / 8 * 8;
    if (nb > n_out) nb = n_out;
    mm_job j = {.w = w, .x = x, .n = n, .ldx = ldx, .y = y, .nb = nb};
    size_t n_tiles = (size_t)((n_out + nb - 1) / nb);
    /* small products (most of decode) stay on one thread: a dispatch costs more than it saves */
    double macs = (double)n * (double)n_in * (double)n_out;
    tome_pool_run(macs < (double)(1 << 20) ? 1 : g_threads, n_tiles, mm_tile, &j);
    if (j.failed)
        return tome_set_error(TOME_ERR_NOMEM, "matmul: out of memory for a %lld x %lld tile", (long long)nb,
                              (long long)n_in);
    return TOME_OK;
}

static void cpu_rmsnorm(const float *x, size_t n_rows, size_t dim, const float *weight, float eps, float *y)
{
    for (size_t i = 0; i < n_rows; i++) {
        const float *a = x + i * dim;
        float *b = y + i * dim;
        float ss = 0;
        for (size_t d = 0; d < dim; d++) ss += a[d] * a[d];
        float r = 1.0f / sqrtf(ss / (float)dim + eps);
        if (weight)
            for (size_t d = 0; d < dim; d++) b[d] = (a[d] * r) * weight[d];
        else
            for (size_t d = 0; d < dim; d++) b[d] = a[d] * r;
    }
}

static void cpu_rope(float *x, size_t n, int n_heads, int head_dim, const int64_t *pos, const float *inv_freq)
{
    const int half = head_dim / 2;
    for (size_t i = 0; i < n; i++) {
        for (int f = 0; f < half; f++) {
            float ang = (float)pos[i] * inv_freq[f]; /* float32 product, as transformers */
            float c = (float)cos((double)ang), s = (float)sin((double)ang);
            for (int h = 0; h < n_heads; h++) {
                float *p = x + i * (size_t)n_heads * (size_t)head_dim + (size_t)h * (size_t)head_dim + 2 * f;
                float a = p[0], b = p[1];
                p[0] = a * c - b * s;
                p[1] = a * s + b * c;
            }
        }
    }
}

static void cpu_scale_rows(float *x, size_t n, size_t dim, const float *s)
{
    for (size_t i = 0; i < n; i++)
        for (size_t d = 0; d < dim; d++) x[i * dim + d] *= s[i];
}

static void cpu_swiglu(float *g, const float *u, size_t n)
{
    for (size_t i = 0; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static tome_status cpu_embed(const tome_wt *w, const int32_t *ids, size_t n, float *out)
{
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= w->n_out)
            return tome_set_error(TOME_ERR_INVALID_ARG, "token %zu: id %d is outside the vocabulary (%lld)", i,
                                  (int)ids[i], (long long)w->n_out);
        tome_wt_row_f32(w, ids[i], out + i * (size_t)w->n_in);
    }
    return TOME_OK;
}

static void cpu_add(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

static const tome_backend g_cpu = {
    .name = "cpu",
    .matmul = cpu_matmul,
    .rmsnorm = cpu_rmsnorm,
    .rope = cpu_rope,
    .scale_rows = cpu_scale_rows,
    .swiglu = cpu_swiglu,
    .embed = cpu_embed,
    .add = cpu_add,
    .attention = tome_attention_cpu,
    .rope_qknorm = NULL,
};

const tome_backend *tome_backend_cpu(void) { return &g_cpu; }
