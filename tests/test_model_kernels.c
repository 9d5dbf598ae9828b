/*
 * tests/test_model_kernels.c — the CPU backend's kernels (model/cpu_kernels.c:
 * GEMV in bf16 rows / columns, int8, int4; RMSNorm; SwiGLU; RoPE)
 * against plain double-precision references, on both the scalar and the
 * AVX2 path, for odd sizes (tails of every unrolled loop); the decode matmul
 * (chunks across threads, both weight layouts, int8/int4) against the
 * batched sgemm path; RoPE's cached cos/sin table when positions change; the
 * thread pool (every item exactly once, many short jobs in a row).
 */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "model/backend_impl.h"
#include "model/cpu_kernels.h"
#include "model/pool_impl.h"
#include "model/quant_impl.h"
#include "tt.h"

static uint64_t g_rng = 88172645463325252ull;
static float frand(void) /* uniform in [-1, 1) */
{
    g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17;
    return (float)((double)(g_rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static uint16_t *rand_bf16(size_t n)
{
    uint16_t *w = malloc(n * sizeof *w);
    for (size_t i = 0; i < n; i++) w[i] = tome_f32_to_bf16(frand());
    return w;
}

static float *rand_f32(size_t n)
{
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = frand();
    return x;
}

/* |got - want| <= 1e-5 · Σ|terms| + 1e-6 */
static int close_to(double got, double want, double mag) { return fabs(got - want) <= 1e-5 * mag + 1e-6; }

static const size_t SIZES[][2] = {{1, 1}, {3, 7}, {5, 8}, {7, 15}, {9, 16}, {13, 33}, {4, 40}, {17, 100}, {33, 512}, {6, 1031}};
#define N_SIZES (sizeof SIZES / sizeof SIZES[0])

/* 2 when the AVX2 path exists (tested after the scalar one), else 1 */
static int n_isas(void)
{
    tome_cpu_force_isa(-1);
    return tome_cpu_isa() >= TOME_ISA_AVX2 ? 2 : 1;
}

static void test_gemv_bf16_rows(void)
{
    for (int isa = 0, ni = n_isas(); isa < ni; isa++) {
        tome_cpu_force_isa(isa);
        for (size_t s = 0; s < N_SIZES; s++) {
            size_t cnt = SIZES[s][0], n_in = SIZES[s][1];
            uint16_t *w = rand_bf16(cnt * n_in);
            float *x = rand_f32(n_in), *y = malloc(cnt * sizeof(float));
            tome_k_gemv_bf16(w, n_in, cnt, x, y);
            for (size_t j = 0; j < cnt; j++) {
                double ref = 0, mag = 0;
                for (size_t k = 0; k < n_in; k++) {
                    double t = (double)tome_bf16_to_f32(w[j * n_in + k]) * x[k];
                    ref += t, mag += fabs(t);
                }
                if (!close_to(y[j], ref, mag)) {
                    tt_fail(__FILE__, __LINE__, "isa %d, %zu x %zu, row %zu: %g vs %g", isa, cnt, n_in, j, y[j], ref);
                    break;
                }
            }
            free(w), free(x), free(y);
        }
    }
    tome_cpu_force_isa(-1);
}

static void test_gemv_bf16_cols(void)
{
    /* W [n_in][n_out]; columns j0 .. j0+cnt */
    static const size_t C[][4] = {{1, 1, 0, 1}, {5, 9, 1, 7}, {16, 8, 0, 8}, {31, 40, 3, 33}, {64, 130, 64, 66}, {100, 97, 5, 91}};
    for (int isa = 0, ni = n_isas(); isa < ni; isa++) {
        tome_cpu_force_isa(isa);
        for (size_t s = 0; s < sizeof C / sizeof C[0]; s++) {
            size_t n_in = C[s][0], n_out = C[s][1], j0 = C[s][2], cnt = C[s][3];
            uint16_t *w = rand_bf16(n_in * n_out);
            float *x = rand_f32(n_in), *y = malloc(cnt * sizeof(float));
            tome_k_gemv_bf16_t(w, n_in, n_out, j0, cnt, x, y);
            for (size_t j = 0; j < cnt; j++) {
                double ref = 0, mag = 0;
                for (size_t k = 0; k < n_in; k++) {
                    double t = (double)tome_bf16_to_f32(w[k * n_out + j0 + j]) * x[k];
                    ref += t, mag += fabs(t);
                }
                if (!close_to(y[j], ref, mag)) {
                    tt_fail(__FILE__, __LINE__, "isa %d, [%zu][%zu] col %zu: %g vs %g", isa, n_in, n_out, j0 + j, y[j],
                            ref);
                    break;
                }
            }
            free(w), free(x), free(y);
        }
    }
    tome_cpu_force_isa(-1);
}

static void test_gemv_quant(void)
{
    static const size_t Q[][2] = {{1, 32}, {3, 64}, {5, 96}, {9, 512}, {2, 1024}};
    for (int isa = 0, ni = n_isas(); isa < ni; isa++) {
        tome_cpu_force_isa(isa);
        for (size_t s = 0; s < sizeof Q / sizeof Q[0]; s++) {
            size_t cnt = Q[s][0], n_in = Q[s][1], nb = n_in / TOME_QGROUP;
            float *wf = rand_f32(cnt * n_in), *x = rand_f32(n_in), *y8 = malloc(cnt * sizeof(float)),
                  *y4 = malloc(cnt * sizeof(float)), *row = malloc(n_in * sizeof(float));
            tome_block_q8 *b8 = malloc(cnt * nb * sizeof *b8);
            tome_block_q4 *b4 = malloc(cnt * nb * sizeof *b4);
            for (size_t j = 0; j < cnt; j++) {
                tome_quant_q8_row(wf + j * n_in, n_in, b8 + j * nb);
                tome_quant_q4_row(wf + j * n_in, n_in, b4 + j * nb);
            }
            tome_k_gemv_q8(b8, n_in, cnt, x, y8);
            tome_k_gemv_q4(b4, n_in, cnt, x, y4);
            for (size_t j = 0; j < cnt; j++) {
                for (int q = 0; q < 2; q++) {
                    if (q == 0)
                        tome_dequant_q8_row(b8 + j * nb, n_in, row);
                    else
                        tome_dequant_q4_row(b4 + j * nb, n_in, row);
                    double ref = 0, mag = 0;
                    for (size_t k = 0; k < n_in; k++) ref += (double)row[k] * x[k], mag += fabs((double)row[k] * x[k]);
                    float got = q == 0 ? y8[j] : y4[j];
                    if (!close_to(got, ref, mag))
                        tt_fail(__FILE__, __LINE__, "isa %d, int%d %zu x %zu row %zu: %g vs %g", isa, q ? 4 : 8, cnt,
                                n_in, j, got, ref);
                }
            }
            free(wf), free(x), free(y8), free(y4), free(row), free(b8), free(b4);
        }
    }
    tome_cpu_force_isa(-1);
}

static void test_rmsnorm(void)
{
    static const size_t D[] = {1, 7, 8, 31, 64, 100, 513};
    for (int isa = 0, ni = n_isas(); isa < ni; isa++) {
        tome_cpu_force_isa(isa);
        for (size_t s = 0; s < sizeof D / sizeof D[0]; s++) {
            size_t dim = D[s], rows = 3;
            float *x = rand_f32(rows * dim), *wt = rand_f32(dim), *y = malloc(rows * dim * sizeof(float));
            for (int use_w = 0; use_w < 2; use_w++) {
                tome_k_rmsnorm(x, rows, dim, use_w ? wt : NULL, 1e-5f, y);
                for (size_t i = 0; i < rows; i++) {
                    double ss = 0;
                    for (size_t d = 0; d < dim; d++) ss += (double)x[i * dim + d] * x[i * dim + d];
                    double r = 1.0 / sqrt(ss / (double)dim + 1e-5);
                    for (size_t d = 0; d < dim; d++) {
                        double want = x[i * dim + d] * r * (use_w ? wt[d] : 1.0);
                        if (fabs(y[i * dim + d] - want) > 1e-5 * (fabs(want) + 1)) {
                            tt_fail(__FILE__, __LINE__, "isa %d dim %zu w %d [%zu][%zu]: %g vs %g", isa, dim, use_w, i,
                                    d, y[i * dim + d], want);
                            d = dim, i = rows;
                        }
                    }
                }
            }
            /* in place */
            float *z = malloc(rows * dim * sizeof(float));
            memcpy(z, x, rows * dim * sizeof(float));
            tome_k_rmsnorm(z, rows, dim, wt, 1e-5f, z);
            tome_k_rmsnorm(x, rows, dim, wt, 1e-5f, y);
            TT_CHECK(memcmp(z, y, rows * dim * sizeof(float)) == 0);
            free(x), free(wt), free(y), free(z);
        }
    }
    tome_cpu_force_isa(-1);
}

static void test_swiglu(void)
{
    const size_t n = 1003;
    for (int isa = 0, ni = n_isas(); isa < ni; isa++) {
        tome_cpu_force_isa(isa);
        float *g = malloc(n * sizeof(float)), *u = rand_f32(n);
        for (size_t i = 0; i < n; i++) g[i] = i < 900 ? 12.0f * frand() : 100.0f * frand(); /* and the clamped range */
        g[0] = 0.0f, g[1] = -87.5f, g[2] = 88.5f, g[3] = 1e-20f;
        double *want = malloc(n * sizeof(double));
        for (size_t i = 0; i < n; i++) want[i] = (double)g[i] / (1.0 + exp(-(double)g[i])) * u[i];
        tome_k_swiglu(g, u, n);
        for (size_t i = 0; i < n; i++)
            if (fabs(g[i] - want[i]) > 5e-7 * fabs(want[i]) + 1e-30) {
                tt_fail(__FILE__, __LINE__, "isa %d [%zu]: %.9g vs %.9g", isa, i, g[i], want[i]);
                break;
            }
        free(g), free(u), free(want);
    }
    tome_cpu_force_isa(-1);
}

/* RoPE (+ QK-norm) in double, for one row */
static void rope_ref(const float *x, double *out, int n_heads, int hd, int64_t pos, const float *inv_freq, int qk)
{
    for (int h = 0; h < n_heads; h++) {
        const float *p = x + h * hd;
        double *o = out + h * hd, ss = 0;
        for (int f = 0; f < hd / 2; f++) {
            float ang = (float)pos * inv_freq[f];
            double c = cos((double)ang), s = sin((double)ang);
            o[2 * f] = p[2 * f] * c - p[2 * f + 1] * s;
            o[2 * f + 1] = p[2 * f] * s + p[2 * f + 1] * c;
        }
        for (int d = 0; d < hd; d++) ss += o[d] * o[d];
        if (qk)
            for (int d = 0; d < hd; d++) o[d] /= sqrt(ss / hd + 1e-5);
    }
}

static void test_rope(void)
{
    const tome_backend *be = tome_backend_cpu();
    static const int HD[] = {2, 6, 8, 64, 66};
    int64_t posA[5] = {0, 1, 2, 3, 4}, posB[5] = {7, 8, 9, 10, 11}, posC[5] = {100000, 9999999, 3, 5, 7};
    const int64_t *P[] = {posA, posB, posA, posC, posC};
    for (int isa = 0, ni = n_isas(); isa < ni; isa++) {
        tome_cpu_force_isa(isa);
        for (size_t s = 0; s < sizeof HD / sizeof HD[0]; s++) {
            int hd = HD[s], nh = 3;
            size_t n = 5, row = (size_t)nh * (size_t)hd;
            float inv[64];
            for (int f = 0; f < hd / 2; f++) inv[f] = powf(500000.0f, -2.0f * (float)f / (float)hd);
            /* positions change between calls: the cached table must follow */
            for (int c = 0; c < 5; c++) {
                int qk = c % 2;
                float *x = rand_f32(n * row);
                double *ref = malloc(n * row * sizeof(double));
                for (size_t i = 0; i < n; i++) rope_ref(x + i * row, ref + i * row, nh, hd, P[c][i], inv, qk);
                if (qk)
                    be->rope_qknorm(x, n, nh, hd, P[c], inv, 1e-5f);
                else
                    be->rope(x, n, nh, hd, P[c], inv);
                for (size_t i = 0; i < n * row; i++)
                    if (fabs(x[i] - ref[i]) > 2e-6 * (fabs(ref[i]) + 1)) {
                        tt_fail(__FILE__, __LINE__, "isa %d hd %d call %d qk %d value %zu: %g vs %g", isa, hd, c, qk, i,
                                x[i], ref[i]);
                        break;
                    }
                free(x), free(ref);
            }
        }
    }
    tome_cpu_force_isa(-1);
}

/* the decode path (n == 1: kernels, chunks across threads) against the batched path (n == 2: sgemm) */
static void test_matmul_decode(void)
{
    const tome_backend *be = tome_backend_cpu();
    tome_backend_cpu_set_threads(3);
    static const int64_t S[][2] = {{300, 200}, {257, 352}, {40, 64}};
    for (size_t s = 0; s < sizeof S / sizeof S[0]; s++) {
        int64_t n_out = S[s][0], n_in = S[s][1];
        uint16_t *wb = rand_bf16((size_t)(n_out * n_in));
        float *x = rand_f32(2 * (size_t)n_in), *y1 = malloc((size_t)n_out * sizeof(float)),
              *y2 = malloc(2 * (size_t)n_out * sizeof(float)), *wf = malloc((size_t)(n_out * n_in) * sizeof(float));
        size_t nb = (size_t)n_in / TOME_QGROUP;
        tome_block_q8 *b8 = malloc((size_t)n_out * nb * sizeof *b8);
        tome_block_q4 *b4 = malloc((size_t)n_out * nb * sizeof *b4);
        for (int64_t i = 0; i < n_out * n_in; i++) wf[i] = tome_bf16_to_f32(wb[i]);
        for (int64_t j = 0; j < n_out; j++) {
            tome_quant_q8_row(wf + j * n_in, (size_t)n_in, b8 + (size_t)j * nb);
            tome_quant_q4_row(wf + j * n_in, (size_t)n_in, b4 + (size_t)j * nb);
        }
        tome_wt ws[4] = {
            {.dtype = TOME_DT_BF16, .layout = TOME_W_OUT_IN, .n_out = n_out, .n_in = n_in, .data = wb},
            /* the same buffer read as [n_in][n_out]: another matrix, IN_OUT */
            {.dtype = TOME_DT_BF16, .layout = TOME_W_IN_OUT, .n_out = n_out, .n_in = n_in, .data = wb},
            {.dtype = TOME_DT_Q8, .layout = TOME_W_OUT_IN, .n_out = n_out, .n_in = n_in, .data = b8},
            {.dtype = TOME_DT_Q4, .layout = TOME_W_OUT_IN, .n_out = n_out, .n_in = n_in, .data = b4},
        };
        for (int v = 0; v < 4; v++) {
            for (int rep = 0; rep < 20; rep++) { /* many short jobs back to back */
                TT_OK(be->matmul(&ws[v], x + (size_t)n_in, 1, (size_t)n_in, y1));
                TT_OK(be->matmul(&ws[v], x, 2, (size_t)n_in, y2));
                for (int64_t j = 0; j < n_out; j++)
                    if (fabsf(y1[j] - y2[n_out + j]) > 1e-4f * (1 + fabsf(y2[n_out + j]))) {
                        tt_fail(__FILE__, __LINE__, "variant %d %lldx%lld rep %d out %lld: %g vs %g", v,
                                (long long)n_out, (long long)n_in, rep, (long long)j, y1[j], y2[n_out + j]);
                        rep = 20;
                        break;
                    }
            }
        }
        free(wb), free(x), free(y1), free(y2), free(wf), free(b8), free(b4);
    }
    tome_backend_cpu_set_threads(1);
}

typedef struct pool_ctx {
    atomic_int *hits;
    atomic_int bad_tid;
    int n_threads;
} pool_ctx;

static void pool_item(void *v, size_t i, int tid)
{
    pool_ctx *c = v;
    atomic_fetch_add(&c->hits[i], 1);
    if (tid < 0 || tid >= c->n_threads) atomic_store(&c->bad_tid, 1);
}

static void test_pool(void)
{
    atomic_int hits[257];
    for (int job = 0; job < 3000; job++) {
        size_t n = (size_t)(job * 37 % 257) + 1;
        int nt = 1 + job % 4;
        pool_ctx c = {.hits = hits, .n_threads = nt};
        atomic_init(&c.bad_tid, 0);
        for (size_t i = 0; i < n; i++) atomic_init(&hits[i], 0);
        tome_pool_run(nt, n, pool_item, &c);
        for (size_t i = 0; i < n; i++)
            if (atomic_load(&hits[i]) != 1) {
                tt_fail(__FILE__, __LINE__, "job %d (%zu items, %d threads): item %zu ran %d times", job, n, nt, i,
                        atomic_load(&hits[i]));
                return;
            }
        TT_CHECK(atomic_load(&c.bad_tid) == 0);
    }
}

int main(void)
{
    TT_RUN(test_gemv_bf16_rows);
    TT_RUN(test_gemv_bf16_cols);
    TT_RUN(test_gemv_quant);
    TT_RUN(test_rmsnorm);
    TT_RUN(test_swiglu);
    TT_RUN(test_rope);
    TT_RUN(test_matmul_decode);
    TT_RUN(test_pool);
    return tt_finish();
}
