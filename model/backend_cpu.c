/*
 * model/backend_cpu.c — the CPU reference backend (table in backend_impl.h).
 *
 * Matmul: the output columns are cut into tiles of `nb` weight rows; each
 * thread converts one tile of the weight (bf16 / f16 / int8 / int4 → f32,
 * into a per-thread buffer of nb × n_in floats, about 256 KiB so it stays in
 * L2) and multiplies it with OpenBLAS sgemm (single-threaded inside; the
 * threads are ours, pool.c). F32 weights in OUT_IN layout are used in place.
 * The whole weight is never converted at once.
 *
 * Decode (one row of x): bf16 / int8 / int4 weights are read in place by the
 * kernels of cpu_kernels.c (conversion in registers), the output cut into
 * chunks across the pool's threads. RMSNorm, RoPE and the fused RoPE +
 * QK-norm use the vectorised kernels too; RoPE's cos/sin table is computed
 * once per micro-batch (see rope_table).
 */
#include "model/backend_impl.h"
#include "tome/device.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "model/cpu_kernels.h"
#include "model/pool_impl.h"
#include "model/quant_impl.h"

static int g_threads = 1;

void tome_backend_cpu_set_threads(int n)
{
    g_threads = n > 0 ? n : 1;
    openblas_set_num_threads(1);
}

/* OpenBLAS's pthreads build starts its thread pool when the library is
 * loaded, and the idle pool thread spins on sched_yield for about 0.1 s: on
 * 2 cores, `tome pack` lost ~0.1 s of CPU and ~0.05 s of wall time to it.
 * tome never runs a BLAS call on OpenBLAS's threads (one thread per call,
 * above), so main() stops the pool first thing. blas_thread_shutdown_ is
 * OpenBLAS's own (its fork handler); weak, so another BLAS links too. */
extern int blas_thread_shutdown_(void) __attribute__((weak));

void tome_blas_single_thread(void)
{
    openblas_set_num_threads(1);
    if (blas_thread_shutdown_) blas_thread_shutdown_();
}

static void bf16_to_f32(const uint16_t *s, float *d, size_t n) { tome_k_bf16_to_f32(s, d, n); }

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

/* ---------------------------------------------------------------- decode
 * One row of x (n == 1) and a weight the kernels read in its stored dtype:
 * the work is cut into contiguous pieces of the matrix (output rows of
 * OUT_IN / quantized weights, input rows of IN_OUT ones) handed to the pool;
 * matrices under GEMV_PAR_BYTES stay on the calling thread. */
#define GEMV_PAR_BYTES (96u << 10)

typedef struct gemv_job {
    const tome_wt *w;
    const float *x;
    float *y;
    size_t chunk;  /* output rows per item; or, with part, input rows per item */
    float *part;   /* IN_OUT split along the input: [items][n_out] partial sums */
} gemv_job;

static void gemv_item(void *vctx, size_t it, int tid)
{
    (void)tid;
    const gemv_job *j = vctx;
    const tome_wt *w = j->w;
    const size_t n_in = (size_t)w->n_in, n_out = (size_t)w->n_out;
    if (j->part) { /* input rows [k0, k0+cnt) of an IN_OUT matrix: one contiguous piece */
        const size_t k0 = it * j->chunk, cnt = n_in - k0 < j->chunk ? n_in - k0 : j->chunk;
        tome_k_gemv_bf16_t((const uint16_t *)w->data + k0 * n_out, cnt, n_out, 0, n_out, j->x + k0,
                           j->part + it * n_out);
        return;
    }
    const size_t j0 = it * j->chunk, cnt = n_out - j0 < j->chunk ? n_out - j0 : j->chunk;
    switch (w->dtype) {
    case TOME_DT_BF16:
        if (w->layout == TOME_W_OUT_IN)
            tome_k_gemv_bf16((const uint16_t *)w->data + j0 * n_in, n_in, cnt, j->x, j->y + j0);
        else
            tome_k_gemv_bf16_t((const uint16_t *)w->data, n_in, n_out, j0, cnt, j->x, j->y + j0);
        break;
    case TOME_DT_Q8:
        tome_k_gemv_q8((const tome_block_q8 *)w->data + j0 * (n_in / TOME_QGROUP), n_in, cnt, j->x, j->y + j0);
        break;
    case TOME_DT_Q4:
        tome_k_gemv_q4((const tome_block_q4 *)w->data + j0 * (n_in / TOME_QGROUP), n_in, cnt, j->x, j->y + j0);
        break;
    default: break;
    }
}

static int gemv_ok(const tome_wt *w)
{
    if (w->dtype == TOME_DT_BF16) return 1;
    return (w->dtype == TOME_DT_Q8 || w->dtype == TOME_DT_Q4) && w->layout == TOME_W_OUT_IN &&
           w->n_in % TOME_QGROUP == 0;
}

static void cpu_gemv(const tome_wt *w, const float *x, float *y)
{
    const size_t n_in = (size_t)w->n_in, n_out = (size_t)w->n_out;
    size_t bytes = w->dtype == TOME_DT_BF16   ? n_in * n_out * 2
                   : w->dtype == TOME_DT_Q8 ? n_out * (n_in / TOME_QGROUP) * sizeof(tome_block_q8)
                                            : n_out * (n_in / TOME_QGROUP) * sizeof(tome_block_q4);
    int threads = bytes >= GEMV_PAR_BYTES ? g_threads : 1;
    /* IN_OUT: split along the input, 2 pieces per thread, each a contiguous
     * part of the matrix (a split of the columns had every thread read half
     * of every row); the partial sums are added in piece order, so the result
     * does not depend on which thread ran what. */
    if (threads > 1 && w->layout == TOME_W_IN_OUT) {
        size_t items = 2 * (size_t)threads, chunk = (n_in + items - 1) / items;
        items = (n_in + chunk - 1) / chunk;
        float *part = malloc(items * n_out * sizeof(float));
        if (part) {
            gemv_job j = {.w = w, .x = x, .y = y, .chunk = chunk, .part = part};
            tome_pool_run(threads, items, gemv_item, &j);
            memcpy(y, part, n_out * sizeof(float));
            for (size_t t = 1; t < items; t++) tome_k_add(y, part + t * n_out, n_out);
            free(part);
            return;
        }
        threads = 1; /* out of memory for the partial sums: one thread */
    }
    /* OUT_IN: chunks of rows (contiguous), ~4 per thread so the caller can
     * take over a late worker's share, at most ~256 KiB. */
    size_t chunk = n_out;
    if (threads > 1) {
        chunk = (n_out + 4 * (size_t)threads - 1) / (4 * (size_t)threads);
        size_t cap = (256u << 10) / (bytes / n_out + 1);
        if (chunk > cap) chunk = cap;
        chunk = (chunk + 15) / 16 * 16;
        if (chunk > n_out) chunk = n_out;
    }
    gemv_job j = {.w = w, .x = x, .y = y, .chunk = chunk};
    tome_pool_run(threads, (n_out + chunk - 1) / chunk, gemv_item, &j);
}

static tome_status cpu_matmul(const tome_wt *w, const float *x, size_t n, size_t ldx, float *y)
{
    if (n == 0) return TOME_OK;
    if (n == 1 && gemv_ok(w)) {
        cpu_gemv(w, x, y);
        return TOME_OK;
    }
    const int64_t n_in = w->n_in, n_out = w->n_out;
    /* a tile of nb weight rows converted to f32 is ~256 KiB (L2-sized) */
    int64_t nb = (int64_t)(65536 / (n_in > 0 ? n_in : 1));
    if (nb < 16) nb = 16;
    nb = (nb + 7) / 8 * 8;
    if (nb > n_out) nb = n_out;
    mm_job j = {.w = w, .x = x, .n = n, .ldx = ldx, .y = y, .nb = nb};
    size_t n_tiles = (size_t)((n_out + nb - 1) / nb);
    /* small products stay on one thread: a dispatch costs more than it saves */
    double macs = (double)n * (double)n_in * (double)n_out;
    tome_pool_run(macs < (double)(1 << 18) ? 1 : g_threads, n_tiles, mm_tile, &j);
    if (j.failed)
        return tome_set_error(TOME_ERR_NOMEM, "matmul: out of memory for a %lld x %lld tile", (long long)nb,
                              (long long)n_in);
    return TOME_OK;
}

static void cpu_rmsnorm(const float *x, size_t n_rows, size_t dim, const float *weight, float eps, float *y)
{
    tome_k_rmsnorm(x, n_rows, dim, weight, eps, y);
}

/* ---------------------------------------------------------------- RoPE
 * cos/sin of the float32 angle pos·inv_freq (as transformers), one table of
 * [n][half] per micro-batch. The table is kept per calling thread and reused
 * while the positions and frequencies stay the same: q and k of every RoPE
 * layer of a micro-batch share it, so sincos runs once per (position,
 * frequency) instead of twice per RoPE layer. */
typedef struct rope_tab {
    int half;
    size_t n, cap;   /* rows held / allocated */
    float *inv;      /* [half]                */
    int64_t *pos;    /* [n]                   */
    float *cs, *sn;  /* [n][half] each        */
} rope_tab;

static pthread_key_t g_rope_key;
static pthread_once_t g_rope_once = PTHREAD_ONCE_INIT;
static int g_rope_key_ok;

static void rope_tab_free(void *v)
{
    rope_tab *t = v;
    if (!t) return;
    free(t->inv), free(t->pos), free(t->cs), free(t->sn);
    free(t);
}

static void rope_key_init(void) { g_rope_key_ok = pthread_key_create(&g_rope_key, rope_tab_free) == 0; }

static void rope_fill(float *cs, float *sn, size_t n, int half, const int64_t *pos, const float *inv_freq)
{
    for (size_t i = 0; i < n; i++)
        for (int f = 0; f < half; f++) {
            float ang = (float)pos[i] * inv_freq[f]; /* float32 product, as transformers */
            cs[i * (size_t)half + (size_t)f] = cosf(ang);
            sn[i * (size_t)half + (size_t)f] = sinf(ang);
        }
}

/* The table for these positions, or NULL (out of memory: compute per row). */
static const rope_tab *rope_table(size_t n, int half, const int64_t *pos, const float *inv_freq)
{
    pthread_once(&g_rope_once, rope_key_init);
    if (!g_rope_key_ok) return NULL;
    rope_tab *t = pthread_getspecific(g_rope_key);
    if (!t) {
        t = calloc(1, sizeof *t);
        if (!t || pthread_setspecific(g_rope_key, t) != 0) {
            free(t);
            return NULL;
        }
    }
    if (t->half == half && t->n == n && !memcmp(t->inv, inv_freq, (size_t)half * sizeof(float)) &&
        !memcmp(t->pos, pos, n * sizeof(int64_t)))
        return t;
    if (t->half != half || t->cap < n) {
        size_t cap = n > t->cap ? n : t->cap;
        float *inv = realloc(t->inv, (size_t)half * sizeof(float));
        if (inv) t->inv = inv;
        int64_t *pv = realloc(t->pos, cap * sizeof(int64_t));
        if (pv) t->pos = pv;
        float *cs = realloc(t->cs, cap * (size_t)half * sizeof(float));
        if (cs) t->cs = cs;
        float *sn = realloc(t->sn, cap * (size_t)half * sizeof(float));
        if (sn) t->sn = sn;
        if (!inv || !pv || !cs || !sn) {
            t->n = 0, t->half = 0;
            return NULL;
        }
        t->cap = cap;
    }
    t->half = half;
    t->n = n;
    memcpy(t->inv, inv_freq, (size_t)half * sizeof(float));
    memcpy(t->pos, pos, n * sizeof(int64_t));
    rope_fill(t->cs, t->sn, n, half, pos, inv_freq);
    return t;
}

static void rope_rows(float *x, size_t n, int n_heads, int head_dim, const int64_t *pos, const float *inv_freq,
                      int qk_norm, float eps)
{
    const int half = head_dim / 2;
    const size_t row = (size_t)n_heads * (size_t)head_dim;
    const rope_tab *t = rope_table(n, half, pos, inv_freq);
    float cs1[2048], sn1[2048]; /* config.c caps head_dim at 4096 */
    for (size_t i = 0; i < n; i++) {
        const float *cs, *sn;
        if (t) {
            cs = t->cs + i * (size_t)half, sn = t->sn + i * (size_t)half;
        } else {
            rope_fill(cs1, sn1, 1, half <= 2048 ? half : 2048, pos + i, inv_freq);
            cs = cs1, sn = sn1;
        }
        tome_k_rope_row(x + i * row, n_heads, head_dim, cs, sn, qk_norm, eps);
    }
}

static void cpu_rope(float *x, size_t n, int n_heads, int head_dim, const int64_t *pos, const float *inv_freq)
{
    rope_rows(x, n, n_heads, head_dim, pos, inv_freq, 0, 0.0f);
}

static void cpu_rope_qknorm(float *x, size_t n, int n_heads, int head_dim, const int64_t *pos, const float *inv_freq,
                            float eps)
{
    rope_rows(x, n, n_heads, head_dim, pos, inv_freq, 1, eps);
}

static void cpu_scale_rows(float *x, size_t n, size_t dim, const float *s)
{
    for (size_t i = 0; i < n; i++)
        for (size_t d = 0; d < dim; d++) x[i * dim + d] *= s[i];
}

static void cpu_swiglu(float *g, const float *u, size_t n) { tome_k_swiglu(g, u, n); }

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

static void cpu_add(float *y, const float *x, size_t n) { tome_k_add(y, x, n); }

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
    .rope_qknorm = cpu_rope_qknorm,
};

const tome_backend *tome_backend_cpu(void) { return &g_cpu; }
