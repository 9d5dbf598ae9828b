/*
 * model/cpu_kernels.c — scalar and AVX2/FMA versions of the CPU backend's
 * inner loops (design in cpu_kernels.h).
 *
 * The AVX2 functions carry __attribute__((target("avx2,fma"))) and are only
 * called after __builtin_cpu_supports said yes; everything else is plain C.
 * -DTOME_NO_SIMD compiles the scalar versions alone (what aarch64 gets).
 */
#include "model/cpu_kernels.h"

#include <math.h>
#include <string.h>

static int g_forced = -1;

void tome_cpu_force_isa(int isa) { g_forced = isa; }

#if defined(__x86_64__) && defined(__GNUC__) && !defined(TOME_NO_SIMD)
#include <immintrin.h>
#define TOME_X86 1
static int detect_isa(void)
{
    static int v = -1;
    if (v < 0) v = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? TOME_ISA_AVX2 : TOME_ISA_SCALAR;
    return v;
}
#else
#define TOME_X86 0
static int detect_isa(void) { return TOME_ISA_SCALAR; }
#endif

int tome_cpu_isa(void)
{
    int best = detect_isa();
    if (g_forced >= 0 && g_forced < best) return g_forced;
    return best;
}

/* ================================================================ scalar */
static void bf16_to_f32_c(const uint16_t *s, float *d, size_t n)
{
    for (size_t i = 0; i < n; i++) d[i] = tome_bf16_to_f32(s[i]);
}

static float dot_bf16_c(const uint16_t *r, const float *x, size_t n)
{
    float acc[8] = {0};
    size_t k = 0;
    for (; k + 8 <= n; k += 8)
        for (int i = 0; i < 8; i++) acc[i] += tome_bf16_to_f32(r[k + (size_t)i]) * x[k + (size_t)i];
    float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; k < n; k++) s += tome_bf16_to_f32(r[k]) * x[k];
    return s;
}

static void gemv_bf16_c(const uint16_t *w, size_t n_in, size_t cnt, const float *x, float *y)
{
    for (size_t j = 0; j < cnt; j++) y[j] = dot_bf16_c(w + j * n_in, x, n_in);
}

static void gemv_bf16_t_c(const uint16_t *w, size_t n_in, size_t n_out, size_t j0, size_t cnt, const float *x,
                          float *y)
{
    memset(y, 0, cnt * sizeof(float));
    for (size_t k = 0; k < n_in; k++) {
        const uint16_t *r = w + k * n_out + j0;
        const float xk = x[k];
        for (size_t j = 0; j < cnt; j++) y[j] += tome_bf16_to_f32(r[j]) * xk;
    }
}

static void gemv_q8_c(const tome_block_q8 *w, size_t n_in, size_t cnt, const float *x, float *y)
{
    const size_t nb = n_in / TOME_QGROUP;
    for (size_t j = 0; j < cnt; j++) {
        const tome_block_q8 *b = w + j * nb;
        float acc = 0;
        for (size_t k = 0; k < nb; k++) {
            const float *xk = x + k * TOME_QGROUP;
            float s = 0;
            for (int i = 0; i < TOME_QGROUP; i++) s += (float)b[k].q[i] * xk[i];
            acc += b[k].d * s;
        }
        y[j] = acc;
    }
}

static void gemv_q4_c(const tome_block_q4 *w, size_t n_in, size_t cnt, const float *x, float *y)
{
    const size_t nb = n_in / TOME_QGROUP;
    for (size_t j = 0; j < cnt; j++) {
        const tome_block_q4 *b = w + j * nb;
        float acc = 0;
        for (size_t k = 0; k < nb; k++) {
            const float *xk = x + k * TOME_QGROUP;
            float s = 0;
            for (int i = 0; i < TOME_QGROUP / 2; i++) {
                s += (float)((int)(b[k].q[i] & 15) - 8) * xk[2 * i];
                s += (float)((int)(b[k].q[i] >> 4) - 8) * xk[2 * i + 1];
            }
            acc += b[k].d * s;
        }
        y[j] = acc;
    }
}

static float sumsq_c(const float *a, size_t n)
{
    float acc[8] = {0};
    size_t d = 0;
    for (; d + 8 <= n; d += 8)
        for (int i = 0; i < 8; i++) acc[i] += a[d + (size_t)i] * a[d + (size_t)i];
    float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; d < n; d++) s += a[d] * a[d];
    return s;
}

/* ================================================================ AVX2 */
#if TOME_X86
#define AVX2 __attribute__((target("avx2,fma")))
#define BF8(p) _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(p))), 16))

static inline float hsum8(__m256 a) AVX2;
static inline float hsum8(__m256 a)
{
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

AVX2 static void bf16_to_f32_avx2(const uint16_t *s, float *d, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(d + i, BF8(s + i));
    for (; i < n; i++) d[i] = tome_bf16_to_f32(s[i]);
}

/* Software prefetch this far ahead of the loads: the hardware prefetcher
 * alone left single-row products at ~9 GB/s from DRAM on the 2-core VM,
 * 2 KiB ahead gave 11-15 GB/s (a prefetch never faults, even past the end). */
#ifndef PF_AHEAD
#define PF_AHEAD 2048
#endif

AVX2 static void gemv_bf16_avx2(const uint16_t *w, size_t n_in, size_t cnt, const float *x, float *y)
{
    for (size_t j = 0; j < cnt; j++) {
        const uint16_t *r = w + j * n_in;
        /* 4 accumulators: one FMA each per step, so the 4-cycle FMA latency
         * allows 64 bytes of weights per ~4 cycles */
        __m256 a = _mm256_setzero_ps(), b = a, c = a, d = a;
        size_t k = 0;
        for (; k + 32 <= n_in; k += 32) {
            _mm_prefetch((const char *)(r + k) + PF_AHEAD, _MM_HINT_T0);
            a = _mm256_fmadd_ps(BF8(r + k), _mm256_loadu_ps(x + k), a);
            b = _mm256_fmadd_ps(BF8(r + k + 8), _mm256_loadu_ps(x + k + 8), b);
            c = _mm256_fmadd_ps(BF8(r + k + 16), _mm256_loadu_ps(x + k + 16), c);
            d = _mm256_fmadd_ps(BF8(r + k + 24), _mm256_loadu_ps(x + k + 24), d);
        }
        for (; k + 8 <= n_in; k += 8) a = _mm256_fmadd_ps(BF8(r + k), _mm256_loadu_ps(x + k), a);
        float t = hsum8(_mm256_add_ps(_mm256_add_ps(a, b), _mm256_add_ps(c, d)));
        for (; k < n_in; k++) t += tome_bf16_to_f32(r[k]) * x[k];
        y[j] = t;
    }
}

/* IN_OUT: y (in L1) accumulates one input row at a time, each column summing
 * over k in order (an axpy loop); one sequential stream plus prefetch. */
AVX2 static void gemv_bf16_t_avx2(const uint16_t *w, size_t n_in, size_t n_out, size_t j0, size_t cnt,
                                  const float *x, float *y)
{
    memset(y, 0, cnt * sizeof(float));
    const size_t cnt8 = cnt / 8 * 8;
    for (size_t k = 0; k < n_in; k++) {
        const uint16_t *r = w + k * n_out + j0;
        const __m256 xk = _mm256_broadcast_ss(x + k);
        size_t j = 0;
        for (; j < cnt8; j += 8) {
            if ((j & 31) == 0) _mm_prefetch((const char *)(r + j) + PF_AHEAD, _MM_HINT_T0);
            _mm256_storeu_ps(y + j, _mm256_fmadd_ps(BF8(r + j), xk, _mm256_loadu_ps(y + j)));
        }
        for (; j < cnt; j++) y[j] += tome_bf16_to_f32(r[j]) * x[k];
    }
}

/* Σ over one block of 32 of q (as f32) · x, the four 8-wide products summed in order */
static inline __m256 q8_dot(const tome_block_q8 *b, __m256 x0, __m256 x1, __m256 x2, __m256 x3) AVX2;
static inline __m256 q8_dot(const tome_block_q8 *b, __m256 x0, __m256 x1, __m256 x2, __m256 x3)
{
    __m128i q = _mm_loadu_si128((const __m128i *)b->q), q2 = _mm_loadu_si128((const __m128i *)(b->q + 16));
    __m256 s = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), x0);
    s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q, 8))), x1, s);
    s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q2)), x2, s);
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q2, 8))), x3, s);
}

AVX2 static void gemv_q8_avx2(const tome_block_q8 *w, size_t n_in, size_t cnt, const float *x, float *y)
{
    const size_t nb = n_in / TOME_QGROUP;
    for (size_t j = 0; j < cnt; j++) {
        const tome_block_q8 *b = w + j * nb;
        /* even and odd blocks in two accumulators: halves the FMA latency chain */
        __m256 a0 = _mm256_setzero_ps(), a1 = a0;
        size_t k = 0;
        for (; k + 2 <= nb; k += 2) {
            const float *xk = x + k * TOME_QGROUP;
            _mm_prefetch((const char *)(b + k) + PF_AHEAD, _MM_HINT_T0);
            a0 = _mm256_fmadd_ps(_mm256_set1_ps(b[k].d),
                                 q8_dot(b + k, _mm256_loadu_ps(xk), _mm256_loadu_ps(xk + 8), _mm256_loadu_ps(xk + 16),
                                        _mm256_loadu_ps(xk + 24)),
                                 a0);
            a1 = _mm256_fmadd_ps(_mm256_set1_ps(b[k + 1].d),
                                 q8_dot(b + k + 1, _mm256_loadu_ps(xk + 32), _mm256_loadu_ps(xk + 40),
                                        _mm256_loadu_ps(xk + 48), _mm256_loadu_ps(xk + 56)),
                                 a1);
        }
        if (k < nb) {
            const float *xk = x + k * TOME_QGROUP;
            a0 = _mm256_fmadd_ps(_mm256_set1_ps(b[k].d),
                                 q8_dot(b + k, _mm256_loadu_ps(xk), _mm256_loadu_ps(xk + 8), _mm256_loadu_ps(xk + 16),
                                        _mm256_loadu_ps(xk + 24)),
                                 a0);
        }
        y[j] = hsum8(_mm256_add_ps(a0, a1));
    }
}

/* int4 block → the same 32 values as int8 in two registers (elements 0..15, 16..31) */
static inline void q4_unpack(const tome_block_q4 *b, __m128i *v0, __m128i *v1) AVX2;
static inline void q4_unpack(const tome_block_q4 *b, __m128i *v0, __m128i *v1)
{
    const __m128i mask = _mm_set1_epi8(15), eight = _mm_set1_epi8(8);
    __m128i raw = _mm_loadu_si128((const __m128i *)b->q);
    __m128i lo = _mm_sub_epi8(_mm_and_si128(raw, mask), eight);
    __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(raw, 4), mask), eight);
    *v0 = _mm_unpacklo_epi8(lo, hi);
    *v1 = _mm_unpackhi_epi8(lo, hi);
}

static inline __m256 q4_dot(const tome_block_q4 *b, __m256 x0, __m256 x1, __m256 x2, __m256 x3) AVX2;
static inline __m256 q4_dot(const tome_block_q4 *b, __m256 x0, __m256 x1, __m256 x2, __m256 x3)
{
    __m128i v0, v1;
    q4_unpack(b, &v0, &v1);
    __m256 s = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v0)), x0);
    s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(v0, 8))), x1, s);
    s = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v1)), x2, s);
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(v1, 8))), x3, s);
}

AVX2 static void gemv_q4_avx2(const tome_block_q4 *w, size_t n_in, size_t cnt, const float *x, float *y)
{
    const size_t nb = n_in / TOME_QGROUP;
    for (size_t j = 0; j < cnt; j++) {
        const tome_block_q4 *b = w + j * nb;
        /* even and odd blocks in two accumulators: halves the FMA latency chain */
        __m256 a0 = _mm256_setzero_ps(), a1 = a0;
        size_t k = 0;
        for (; k + 2 <= nb; k += 2) {
            const float *xk = x + k * TOME_QGROUP;
            _mm_prefetch((const char *)(b + k) + PF_AHEAD, _MM_HINT_T0);
            a0 = _mm256_fmadd_ps(_mm256_set1_ps(b[k].d),
                                 q4_dot(b + k, _mm256_loadu_ps(xk), _mm256_loadu_ps(xk + 8), _mm256_loadu_ps(xk + 16),
                                        _mm256_loadu_ps(xk + 24)),
                                 a0);
            a1 = _mm256_fmadd_ps(_mm256_set1_ps(b[k + 1].d),
                                 q4_dot(b + k + 1, _mm256_loadu_ps(xk + 32), _mm256_loadu_ps(xk + 40),
                                        _mm256_loadu_ps(xk + 48), _mm256_loadu_ps(xk + 56)),
                                 a1);
        }
        if (k < nb) {
            const float *xk = x + k * TOME_QGROUP;
            a0 = _mm256_fmadd_ps(_mm256_set1_ps(b[k].d),
                                 q4_dot(b + k, _mm256_loadu_ps(xk), _mm256_loadu_ps(xk + 8), _mm256_loadu_ps(xk + 16),
                                        _mm256_loadu_ps(xk + 24)),
                                 a0);
        }
        y[j] = hsum8(_mm256_add_ps(a0, a1));
    }
}

AVX2 static float sumsq_avx2(const float *a, size_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    size_t d = 0;
    for (; d + 32 <= n; d += 32) {
        __m256 v0 = _mm256_loadu_ps(a + d), v1 = _mm256_loadu_ps(a + d + 8), v2 = _mm256_loadu_ps(a + d + 16),
               v3 = _mm256_loadu_ps(a + d + 24);
        s0 = _mm256_fmadd_ps(v0, v0, s0);
        s1 = _mm256_fmadd_ps(v1, v1, s1);
        s2 = _mm256_fmadd_ps(v2, v2, s2);
        s3 = _mm256_fmadd_ps(v3, v3, s3);
    }
    for (; d + 8 <= n; d += 8) {
        __m256 v = _mm256_loadu_ps(a + d);
        s0 = _mm256_fmadd_ps(v, v, s0);
    }
    float s = hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; d < n; d++) s += a[d] * a[d];
    return s;
}

AVX2 static void scale_avx2(const float *a, size_t n, float r, const float *w, float *b)
{
    const __m256 rv = _mm256_set1_ps(r);
    size_t d = 0;
    if (w) {
        for (; d + 8 <= n; d += 8)
            _mm256_storeu_ps(b + d, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(a + d), rv), _mm256_loadu_ps(w + d)));
        for (; d < n; d++) b[d] = (a[d] * r) * w[d];
    } else {
        for (; d + 8 <= n; d += 8) _mm256_storeu_ps(b + d, _mm256_mul_ps(_mm256_loadu_ps(a + d), rv));
        for (; d < n; d++) b[d] = a[d] * r;
    }
}

/* one head: interleaved pairs (a, b) → (a·c − b·s, a·s + b·c), half pairs */
AVX2 static void rope_head_avx2(float *p, const float *cs, const float *sn, int half)
{
    int f = 0;
    for (; f + 4 <= half; f += 4) {
        __m256 v = _mm256_loadu_ps(p + 2 * f); /* a0 b0 a1 b1 a2 b2 a3 b3 */
        __m128 c4 = _mm_loadu_ps(cs + f), s4 = _mm_loadu_ps(sn + f);
        /* c: c0 c0 c1 c1 ... ; s: s0 s0 s1 s1 ... */
        __m256 c = _mm256_set_m128(_mm_unpackhi_ps(c4, c4), _mm_unpacklo_ps(c4, c4));
        __m256 s = _mm256_set_m128(_mm_unpackhi_ps(s4, s4), _mm_unpacklo_ps(s4, s4));
        __m256 sw = _mm256_permute_ps(v, 0xB1); /* b0 a0 b1 a1 ... */
        /* even lanes: a·c − b·s ; odd lanes: b·c + a·s */
        _mm256_storeu_ps(p + 2 * f, _mm256_fmaddsub_ps(v, c, _mm256_mul_ps(sw, s)));
    }
    for (; f < half; f++) {
        float a = p[2 * f], b = p[2 * f + 1], c = cs[f], s = sn[f];
        p[2 * f] = a * c - b * s;
        p[2 * f + 1] = a * s + b * c;
    }
}
/* e^x for x in [-87, 88] (clamped): x = n·ln2 + r, |r| <= ln2/2, e^r by its
 * Taylor polynomial of degree 7 (truncation < 3e-9), times 2^n built in the
 * exponent field; within ~2 ulp of expf. */
static inline __m256 exp_avx2(__m256 x) AVX2;
static inline __m256 exp_avx2(__m256 x)
{
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.0f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.0f / 5040);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

AVX2 static void swiglu_avx2(float *g, const float *u, size_t n)
{
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(g + i);
        __m256 e = exp_avx2(_mm256_sub_ps(zero, v));
        _mm256_storeu_ps(g + i, _mm256_mul_ps(_mm256_div_ps(v, _mm256_add_ps(one, e)), _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}
#endif /* TOME_X86 */

/* ================================================================ dispatch */
void tome_k_bf16_to_f32(const uint16_t *s, float *d, size_t n)
{
#if TOME_X86
    if (tome_cpu_isa() >= TOME_ISA_AVX2) {
        bf16_to_f32_avx2(s, d, n);
        return;
    }
#endif
    bf16_to_f32_c(s, d, n);
}

void tome_k_gemv_bf16(const uint16_t *w, size_t n_in, size_t cnt, const float *x, float *y)
{
#if TOME_X86
    if (tome_cpu_isa() >= TOME_ISA_AVX2) {
        gemv_bf16_avx2(w, n_in, cnt, x, y);
        return;
    }
#endif
    gemv_bf16_c(w, n_in, cnt, x, y);
}

void tome_k_gemv_bf16_t(const uint16_t *w, size_t n_in, size_t n_out, size_t j0, size_t cnt, const float *x,
                        float *y)
{
#if TOME_X86
    if (tome_cpu_isa() >= TOME_ISA_AVX2) {
        gemv_bf16_t_avx2(w, n_in, n_out, j0, cnt, x, y);
        return;
    }
#endif
    gemv_bf16_t_c(w, n_in, n_out, j0, cnt, x, y);
}

void tome_k_gemv_q8(const tome_block_q8 *w, size_t n_in, size_t cnt, const float *x, float *y)
{
#if TOME_X86
    if (tome_cpu_isa() >= TOME_ISA_AVX2) {
        gemv_q8_avx2(w, n_in, cnt, x, y);
        return;
    }
#endif
    gemv_q8_c(w, n_in, cnt, x, y);
}

void tome_k_gemv_q4(const tome_block_q4 *w, size_t n_in, size_t cnt, const float *x, float *y)
{
#if TOME_X86
    if (tome_cpu_isa() >= TOME_ISA_AVX2) {
        gemv_q4_avx2(w, n_in, cnt, x, y);
        return;
    }
#endif
    gemv_q4_c(w, n_in, cnt, x, y);
}

void tome_k_rmsnorm(const float *x, size_t n_rows, size_t dim, const float *weight, float eps, float *y)
{
    const int isa = tome_cpu_isa();
    for (size_t i = 0; i < n_rows; i++) {
        const float *a = x + i * dim;
        float *b = y + i * dim;
#if TOME_X86
        if (isa >= TOME_ISA_AVX2) {
            float r = 1.0f / sqrtf(sumsq_avx2(a, dim) / (float)dim + eps);
            scale_avx2(a, dim, r, weight, b);
            continue;
        }
#endif
        (void)isa;
        float r = 1.0f / sqrtf(sumsq_c(a, dim) / (float)dim + eps);
        if (weight)
            for (size_t d = 0; d < dim; d++) b[d] = (a[d] * r) * weight[d];
        else
            for (size_t d = 0; d < dim; d++) b[d] = a[d] * r;
    }
}

void tome_k_rope_row(float *x, int n_heads, int head_dim, const float *cs, const float *sn, int qk_norm, float eps)
{
    const int half = head_dim / 2;
    const int isa = tome_cpu_isa();
    for (int h = 0; h < n_heads; h++) {
        float *p = x + (size_t)h * (size_t)head_dim;
#if TOME_X86
        if (isa >= TOME_ISA_AVX2) {
            rope_head_avx2(p, cs, sn, half);
            if (qk_norm) {
                float r = 1.0f / sqrtf(sumsq_avx2(p, (size_t)head_dim) / (float)head_dim + eps);
                scale_avx2(p, (size_t)head_dim, r, NULL, p);
            }
            continue;
        }
#endif
        (void)isa;
        for (int f = 0; f < half; f++) {
            float a = p[2 * f], b = p[2 * f + 1], c = cs[f], s = sn[f];
            p[2 * f] = a * c - b * s;
            p[2 * f + 1] = a * s + b * c;
        }
        if (qk_norm) {
            float r = 1.0f / sqrtf(sumsq_c(p, (size_t)head_dim) / (float)head_dim + eps);
            for (int d = 0; d < head_dim; d++) p[d] *= r;
        }
    }
}

void tome_k_swiglu(float *g, const float *u, size_t n)
{
#if TOME_X86
    if (tome_cpu_isa() >= TOME_ISA_AVX2) {
        swiglu_avx2(g, u, n);
        return;
    }
#endif
    for (size_t i = 0; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

void tome_k_add(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] += x[i]; /* vectorised by the compiler */
}
