/*
 * tests/test_attention_cuda.c — the CUDA attention kernels (attention/cuda/)
 * against the CPU attention on the same pages: bf16 tensor-core prefill
 * (causal and chunked, GQA 5:1, every KV format, pages + open float rows)
 * and split-KV decode (auto and forced splits). Tolerance: relative L2
 * error 2e-2 for prefill (bf16 K/V tiles and bf16 P), 1e-2 for decode (fp32
 * math, bf16 output); lse within 2e-2.
 *
 * Without a CUDA build or without a device every case says "skipped" and
 * passes: the CPU path has its own tests (test_attention.c). A build
 * without CUDA must report TOME_ERR_UNSUPPORTED from every entry point.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attention/attention_cuda.h"
#include "attention/attention_impl.h"
#include "test_attention_pages.h"
#include "tome/device.h"
#include "tt.h"

static int g_have_device = -1;

/* Nonzero when the kernels can run; otherwise says "skipped" for the case. */
static int have_device(const char *case_name)
{
    if (g_have_device < 0) {
        int n = 0;
        g_have_device = tome_build_has_cuda() && tome_device_count(&n) == TOME_OK && n > 0;
    }
    if (!g_have_device) {
        printf("  SKIPPED %s: %s\n", case_name, tome_build_has_cuda() ? "no CUDA device" : "build without CUDA");
        fflush(stdout);
    }
    return g_have_device;
}

static uint16_t to_bf16(float f) { return tome_kv_f32_to_bf16(f); }
static float from_bf16(uint16_t h) { return tome_kv_bf16_to_f32(h); }

/* The pages of t on the device. */
typedef struct dev_kv {
    void *blob, *table, *tk, *tv;
    tome_attn_cuda_kv kv;
} dev_kv;

static tome_status dev_kv_upload(const test_kv *t, dev_kv *d)
{
    memset(d, 0, sizeof *d);
    const size_t pb = t->L.page_bytes, HD = (size_t)t->H * (size_t)t->D;
    const int64_t n_tail = t->n_pos - t->n_sealed * t->T;
    TOME_FORWARD(tome_attn_cuda_malloc(&d->blob, pb * (size_t)t->n_sealed));
    TOME_FORWARD(tome_attn_cuda_malloc(&d->table, sizeof(void *) * (size_t)(t->n_sealed + 1)));
    TOME_FORWARD(tome_attn_cuda_malloc(&d->tk, HD * sizeof(float) * (size_t)(n_tail + 1)));
    TOME_FORWARD(tome_attn_cuda_malloc(&d->tv, HD * sizeof(float) * (size_t)(n_tail + 1)));
    const uint8_t **ptrs = malloc(sizeof *ptrs * (size_t)(t->n_sealed + 1));
    for (int64_t i = 0; i < t->n_sealed; i++) {
        TOME_FORWARD(tome_attn_cuda_upload((uint8_t *)d->blob + (size_t)i * pb, t->pages[i], pb));
        ptrs[i] = (const uint8_t *)d->blob + (size_t)i * pb;
    }
    tome_status st = tome_attn_cuda_upload(d->table, ptrs, sizeof *ptrs * (size_t)t->n_sealed);
    free(ptrs);
    TOME_FORWARD(st);
    TOME_FORWARD(tome_attn_cuda_upload(d->tk, t->tail_k, HD * sizeof(float) * (size_t)n_tail));
    TOME_FORWARD(tome_attn_cuda_upload(d->tv, t->tail_v, HD * sizeof(float) * (size_t)n_tail));
    d->kv.pages = (const uint8_t *const *)d->table;
    d->kv.n_pages = t->n_sealed;
    d->kv.base = 0;
    d->kv.layout = t->L;
    d->kv.tail_k = d->tk;
    d->kv.tail_v = d->tv;
    d->kv.tail_p0 = t->n_sealed * t->T;
    d->kv.n_tail = n_tail;
    return TOME_OK;
}

static void dev_kv_free(dev_kv *d)
{
    tome_attn_cuda_free(d->blob);
    tome_attn_cuda_free(d->table);
    tome_attn_cuda_free(d->tk);
    tome_attn_cuda_free(d->tv);
}

/* Run one configuration on CPU and GPU; returns the relative L2 error of the
 * GPU output (INFINITY on failure). */
static double gpu_vs_cpu(const test_kv *t, int n_heads, int64_t chunk, size_t n_q, const int64_t *pos, int decode,
                         int n_splits, double *lse_err)
{
    const int n_kv = t->H, D = t->D;
    const size_t Q = (size_t)n_heads * (size_t)D;
    float *qf = malloc(n_q * Q * sizeof(float)), *ref = malloc(n_q * Q * sizeof(float));
    float *ref_lse = malloc(n_q * (size_t)n_heads * sizeof(float)), *lse = malloc(n_q * (size_t)n_heads * sizeof(float));
    uint16_t *qh = malloc(n_q * Q * 2), *oh = malloc(n_q * Q * 2);
    for (size_t i = 0; i < n_q * Q; i++) {
        qh[i] = to_bf16(rnd_f(-2, 2));
        qf[i] = from_bf16(qh[i]);
    }
    double err = INFINITY;
    tome_attn_params cp = {.q = qf, .q_stride = Q, .out = ref, .out_stride = Q, .q_pos = pos, .n_q = n_q,
                           .n_heads = n_heads, .n_kv_heads = n_kv, .head_dim = D, .chunk = chunk,
                           .view_at = test_view_at, .view_ctx = (void *)t, .lse = ref_lse};
    TT_OK(tome_attention_cpu(&cp));
    dev_kv d;
    void *dq = NULL, *dout = NULL, *dpos = NULL, *dlse = NULL, *ws = NULL;
    tome_status st = dev_kv_upload(t, &d);
    if (st == TOME_OK) st = tome_attn_cuda_malloc(&dq, n_q * Q * 2);
    if (st == TOME_OK) st = tome_attn_cuda_malloc(&dout, n_q * Q * 2);
    if (st == TOME_OK) st = tome_attn_cuda_malloc(&dpos, n_q * sizeof(int64_t));
    if (st == TOME_OK) st = tome_attn_cuda_malloc(&dlse, n_q * (size_t)n_heads * sizeof(float));
    if (st == TOME_OK) st = tome_attn_cuda_upload(dq, qh, n_q * Q * 2);
    if (st == TOME_OK) st = tome_attn_cuda_upload(dpos, pos, n_q * sizeof(int64_t));
    tome_attn_cuda_params gp = {.q = dq, .q_stride = Q, .out = dout, .out_stride = Q, .lse = dlse, .q_pos = dpos,
                                .n_q = n_q, .n_heads = n_heads, .n_kv_heads = n_kv, .head_dim = D, .chunk = chunk,
                                .kv = d.kv, .n_splits = n_splits};
    if (st == TOME_OK && decode) {
        gp.workspace_bytes = tome_attn_cuda_decode_workspace(&gp);
        st = tome_attn_cuda_malloc(&ws, gp.workspace_bytes);
        gp.workspace = ws;
    }
    if (st == TOME_OK) {
        memset(oh, 0xff, n_q * Q * 2); /* NaN poison */
        st = tome_attn_cuda_upload(dout, oh, n_q * Q * 2);
    }
    if (st == TOME_OK) st = decode ? tome_attn_cuda_decode(&gp) : tome_attn_cuda_prefill(&gp);
    if (st == TOME_OK) st = tome_attn_cuda_sync();
    if (st == TOME_OK) st = tome_attn_cuda_download(oh, dout, n_q * Q * 2);
    if (st == TOME_OK) st = tome_attn_cuda_download(lse, dlse, n_q * (size_t)n_heads * sizeof(float));
    TT_OK(st);
    if (st == TOME_OK) {
        double num = 0, den = 0, le = 0;
        for (size_t i = 0; i < n_q * Q; i++) {
            const double g = from_bf16(oh[i]), dd = g - ref[i];
            num += isnan(g) ? INFINITY : dd * dd;
            den += (double)ref[i] * ref[i];
        }
        for (size_t i = 0; i < n_q * (size_t)n_heads; i++) {
            const double e = fabs((double)lse[i] - ref_lse[i]);
            le = e > le || isnan(e) ? (isnan(e) ? INFINITY : e) : le;
        }
        err = sqrt(num / den);
        *lse_err = le;
    }
    tome_attn_cuda_free(ws);
    tome_attn_cuda_free(dq);
    tome_attn_cuda_free(dout);
    tome_attn_cuda_free(dpos);
    tome_attn_cuda_free(dlse);
    dev_kv_free(&d);
    free(qf);
    free(ref);
    free(ref_lse);
    free(lse);
    free(qh);
    free(oh);
    return err;
}

static void test_prefill(void)
{
    if (!have_device("prefill vs CPU")) return;
    static const char *names[] = {"f32", "bf16", "fp8", "int8", "int4", "int2"};
    const int64_t n = 1000; /* 15 pages of 64 + 40 float rows */
    int64_t *pos = malloc((size_t)n * sizeof *pos);
    for (int64_t i = 0; i < n; i++) pos[i] = i;
    for (int fmt = 0; fmt < TOME_KV_N_FORMATS; fmt++) {
        test_kv t;
        test_kv_make(&t, fmt, 64, 2, 128, n, 15);
        for (int k = 0; k < 2; k++) {
            double le = 0, e = gpu_vs_cpu(&t, 10, k ? 300 : 0, (size_t)n, pos, 0, 0, &le);
            printf("  prefill %-5s %-7s rel err %.2e  lse err %.2e\n", names[fmt], k ? "chunked" : "causal", e, le);
            if (!(e <= 2e-2) || !(le <= 2e-2)) tt_fail(__FILE__, __LINE__, "prefill %s: error %g / lse %g", names[fmt], e, le);
        }
        test_kv_free(&t);
    }
    /* a subset of query positions, unsorted */
    test_kv t;
    test_kv_make(&t, TOME_KV_INT4, 64, 2, 128, n, 15);
    const int64_t pick[] = {999, 3, 640, 64, 63, 500, 0};
    double le = 0, e = gpu_vs_cpu(&t, 10, 0, 7, pick, 0, 0, &le);
    TT_CHECK(e <= 2e-2 && le <= 2e-2);
    test_kv_free(&t);
    free(pos);
}

static void test_decode(void)
{
    if (!have_device("decode vs CPU")) return;
    const int64_t n = 20000;
    for (int fmt = 0; fmt < TOME_KV_N_FORMATS; fmt++) {
        test_kv t;
        test_kv_make(&t, fmt, 64, 2, 128, n, n / 64 - 1);
        const int64_t pos[2] = {n - 1, 12345};
        const int splits[3] = {0, 1, 7};
        for (int k = 0; k < 3; k++) {
            double le = 0, e = gpu_vs_cpu(&t, 10, k == 2 ? 8192 : 0, 2, pos, 1, splits[k], &le);
            printf("  decode fmt %d splits %d rel err %.2e  lse err %.2e\n", fmt, splits[k], e, le);
            if (!(e <= 1e-2) || !(le <= 2e-2)) tt_fail(__FILE__, __LINE__, "decode fmt %d: error %g / lse %g", fmt, e, le);
        }
        test_kv_free(&t);
    }
}

static void test_errors(void)
{
    tome_attn_cuda_params p = {0};
    if (!tome_build_has_cuda()) {
        TT_STATUS(tome_attn_cuda_prefill(&p), TOME_ERR_UNSUPPORTED);
        TT_STATUS(tome_attn_cuda_decode(&p), TOME_ERR_UNSUPPORTED);
        void *d = (void *)1;
        TT_STATUS(tome_attn_cuda_malloc(&d, 16), TOME_ERR_UNSUPPORTED);
        TT_CHECK(d == NULL);
        return;
    }
    /* argument checks run before any device call */
    p.head_dim = 64;
    TT_STATUS(tome_attn_cuda_prefill(&p), TOME_ERR_UNSUPPORTED);
    TT_CONTAINS(tome_last_error(), "head_dim 64");
    p.head_dim = 128;
    p.n_heads = 10;
    p.n_kv_heads = 3;
    TT_STATUS(tome_attn_cuda_decode(&p), TOME_ERR_INVALID_ARG);
    if (!have_device("device error reporting")) return;
    /* a device error comes back as a status: an impossible allocation */
    void *d = NULL;
    TT_STATUS(tome_attn_cuda_malloc(&d, (size_t)1 << 62), TOME_ERR_DEVICE);
    TT_CONTAINS(tome_last_error(), "cudaMalloc");
}

int main(void)
{
    TT_RUN(test_errors);
    TT_RUN(test_prefill);
    TT_RUN(test_decode);
    return tt_finish();
}
