/*
 * bench/bench_attention_cuda.c — the CUDA attention kernels on Scout's head
 * shapes (40 query heads over 8 KV heads of dim 128), for a GPU machine
 * (bench/attention_gpu.sh runs it next to PyTorch's SDPA).
 *
 *   bench_attention_cuda [--prefill N,N,...] [--decode N,N,...] [--chunk C] [--reps R]
 *
 * prefill: N bf16 queries at positions 0..N-1 over N tokens of bf16 pages
 * (64 tokens each), causal and chunked-causal (chunk C, default 8192);
 * TFLOP/s counts 4 * head_dim flops per visible (query head, key) pair —
 * the convention FlashAttention's benchmarks use for causal attention.
 * decode: one query at position N-1, per page format; GB/s counts the
 * page bytes (codes + scales + headers) of the 8 KV heads a call reads.
 * Times: each launch is synchronized and timed by the host clock, median
 * of R after one warm-up (sizes from 256K: one call, warmed by the smaller
 * sizes before it). Without a CUDA build or a device it says so and
 * exits 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attention/attention_cuda.h"
#include "core/core_impl.h"
#include "tome/device.h"

#define NH 40
#define NKV 8
#define HD 128

static uint64_t g_rng = 99;
static uint16_t rnd_bf16(void)
{
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return tome_kv_f32_to_bf16((float)((double)(g_rng >> 40) / 16777216.0) * 2.0f - 1.0f);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#define TRY(x)                                                              \
    do {                                                                    \
        if ((x) != TOME_OK) {                                               \
            fprintf(stderr, "bench_attention_cuda: %s\n", tome_last_error()); \
            exit(1);                                                        \
        }                                                                   \
    } while (0)

/* Device pages for positions [0, n) in format fmt: random codes, scales
 * near 1/levels (the values do not change the work done). */
typedef struct dev_pages {
    void *blob, *table;
    tome_attn_cuda_kv kv;
    double bytes;
} dev_pages;

static void pages_make(dev_pages *d, int fmt, int64_t n)
{
    memset(d, 0, sizeof *d);
    tome_kv_layout L;
    if (tome_kv_layout_init(&L, fmt, 64, NKV, HD, 32) != 0) {
        fprintf(stderr, "bench_attention_cuda: bad layout\n");
        exit(1);
    }
    const int64_t n_pages = n / 64; /* n is a multiple of 64 here */
    const size_t pb = L.page_bytes, host_pages = 256;
    uint8_t *h = malloc(pb * host_pages);
    for (size_t i = 0; i < pb * host_pages; i += 2) {
        uint16_t v = rnd_bf16();
        memcpy(h + i, &v, 2);
    }
    if (tome_kv_fmt_scaled(fmt)) /* sane fp16 scales (0x2000 ~ 0.0078) and zeros */
        for (size_t pg = 0; pg < host_pages; pg++)
            for (uint32_t off = L.ks_off; off < pb; off += 2) {
                uint16_t v = 0x2000;
                memcpy(h + pg * pb + off, &v, 2);
            }
    TRY(tome_attn_cuda_malloc(&d->blob, pb * (size_t)n_pages));
    TRY(tome_attn_cuda_malloc(&d->table, sizeof(void *) * (size_t)n_pages));
    for (int64_t pg = 0; pg < n_pages; pg += (int64_t)host_pages) {
        size_t m = (size_t)(n_pages - pg) < host_pages ? (size_t)(n_pages - pg) : host_pages;
        TRY(tome_attn_cuda_upload((uint8_t *)d->blob + (size_t)pg * pb, h, m * pb));
    }
    const uint8_t **ptrs = malloc(sizeof *ptrs * (size_t)n_pages);
    for (int64_t pg = 0; pg < n_pages; pg++) ptrs[pg] = (const uint8_t *)d->blob + (size_t)pg * pb;
    TRY(tome_attn_cuda_upload(d->table, ptrs, sizeof *ptrs * (size_t)n_pages));
    free(ptrs);
    free(h);
    d->kv.pages = (const uint8_t *const *)d->table;
    d->kv.n_pages = n_pages;
    d->kv.layout = L;
    d->kv.tail_p0 = n_pages * 64;
    d->bytes = (double)pb * (double)n_pages;
}

static void pages_free(dev_pages *d)
{
    tome_attn_cuda_free(d->blob);
    tome_attn_cuda_free(d->table);
}

static double timed(tome_attn_cuda_params *p, int decode, int reps, int warm)
{
    double t[64];
    if (reps > 64) reps = 64;
    if (warm) {
        TRY(decode ? tome_attn_cuda_decode(p) : tome_attn_cuda_prefill(p));
        TRY(tome_attn_cuda_sync());
    }
    for (int r = 0; r < reps; r++) {
        double t0 = tome_now();
        TRY(decode ? tome_attn_cuda_decode(p) : tome_attn_cuda_prefill(p));
        TRY(tome_attn_cuda_sync());
        t[r] = tome_now() - t0;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp_d);
    return t[reps / 2];
}

static int parse_list(const char *s, int64_t *out, int max)
{
    int n = 0;
    while (*s && n < max) {
        char *end;
        out[n++] = strtoll(s, &end, 10);
        s = *end == ',' ? end + 1 : end;
        if (end == s && *s) break;
    }
    return n;
}

int main(int argc, char **argv)
{
    int64_t pre[8] = {8192, 65536, 262144, 1048576}, dec[8] = {131072, 1048576}, chunk = 8192;
    int n_pre = 4, n_dec = 2, reps = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--prefill")) n_pre = parse_list(argv[i + 1], pre, 8);
        else if (!strcmp(argv[i], "--decode")) n_dec = parse_list(argv[i + 1], dec, 8);
        else if (!strcmp(argv[i], "--chunk")) chunk = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "usage: bench_attention_cuda [--prefill N,..] [--decode N,..] [--chunk C] [--reps R]\n");
            return 2;
        }
    }
    int n_dev = 0;
    if (!tome_build_has_cuda() || tome_device_count(&n_dev) != TOME_OK || n_dev == 0) {
        printf("bench_attention_cuda: no CUDA device (%s)\n", tome_build_has_cuda() ? tome_last_error() : "build without CUDA");
        return 0;
    }
    tome_device_info info;
    TRY(tome_device_get_info(0, &info));
    printf("tome attention CUDA on %s (sm_%d%d), %d q heads / %d kv heads, dim %d\n", info.name, info.cc_major,
           info.cc_minor, NH, NKV, HD);

    for (int k = 0; k < n_pre; k++) {
        const int64_t n = (pre[k] + 63) / 64 * 64;
        const size_t Q = (size_t)NH * HD, block = 65536;
        dev_pages d;
        pages_make(&d, TOME_KV_BF16, n);
        void *dq = NULL, *dout = NULL, *dpos = NULL;
        TRY(tome_attn_cuda_malloc(&dq, (size_t)n * Q * 2));
        TRY(tome_attn_cuda_malloc(&dout, (size_t)n * Q * 2));
        TRY(tome_attn_cuda_malloc(&dpos, (size_t)n * 8));
        uint16_t *hq = malloc(block * Q * 2);
        int64_t *hp = malloc((size_t)n * 8);
        for (size_t i = 0; i < block * Q; i++) hq[i] = rnd_bf16();
        for (int64_t i = 0; i < n; i++) hp[i] = i;
        for (int64_t i = 0; i < n; i += (int64_t)block) {
            size_t m = (size_t)(n - i) < block ? (size_t)(n - i) : block;
            TRY(tome_attn_cuda_upload((uint16_t *)dq + (size_t)i * Q, hq, m * Q * 2));
        }
        TRY(tome_attn_cuda_upload(dpos, hp, (size_t)n * 8));
        for (int pass = 0; pass < 2; pass++) {
            const int64_t c = pass ? chunk : 0;
            double pairs = 0;
            for (int64_t i = 0; i < n; i++) pairs += (double)(i - (c > 0 ? i / c * c : 0) + 1);
            tome_attn_cuda_params p = {.q = dq, .q_stride = Q, .out = dout, .out_stride = Q, .q_pos = dpos,
                                       .n_q = (size_t)n, .n_heads = NH, .n_kv_heads = NKV, .head_dim = HD,
                                       .chunk = c, .kv = d.kv};
            const double t = timed(&p, 0, n >= 262144 ? 1 : reps, n < 262144); /* large: one timed call, warm from smaller sizes */
            printf("tome prefill %-7s N=%-8lld %10.2f ms %8.1f TFLOP/s\n", c ? "chunked" : "causal", (long long)n,
                   t * 1e3, pairs * NH * HD * 4.0 / t * 1e-12);
            fflush(stdout);
        }
        free(hq);
        free(hp);
        tome_attn_cuda_free(dq);
        tome_attn_cuda_free(dout);
        tome_attn_cuda_free(dpos);
        pages_free(&d);
    }

    static const char *names[] = {"f32", "bf16", "fp8", "int8", "int4", "int2"};
    for (int k = 0; k < n_dec; k++) {
        const int64_t n = (dec[k] + 63) / 64 * 64, last = n - 1;
        for (int fmt = TOME_KV_BF16; fmt < TOME_KV_N_FORMATS; fmt++) {
            dev_pages d;
            pages_make(&d, fmt, n);
            void *dq = NULL, *dout = NULL, *dpos = NULL, *ws = NULL;
            uint16_t hq[NH * HD];
            for (int i = 0; i < NH * HD; i++) hq[i] = rnd_bf16();
            TRY(tome_attn_cuda_malloc(&dq, sizeof hq));
            TRY(tome_attn_cuda_malloc(&dout, sizeof hq));
            TRY(tome_attn_cuda_malloc(&dpos, 8));
            TRY(tome_attn_cuda_upload(dq, hq, sizeof hq));
            TRY(tome_attn_cuda_upload(dpos, &last, 8));
            tome_attn_cuda_params p = {.q = dq, .q_stride = NH * HD, .out = dout, .out_stride = NH * HD,
                                       .q_pos = dpos, .n_q = 1, .n_heads = NH, .n_kv_heads = NKV, .head_dim = HD,
                                       .kv = d.kv};
            p.workspace_bytes = tome_attn_cuda_decode_workspace(&p);
            TRY(tome_attn_cuda_malloc(&ws, p.workspace_bytes));
            p.workspace = ws;
            const double t = timed(&p, 1, reps * 4, 1);
            printf("tome decode  %-7s N=%-8lld %10.3f ms %8.1f GB/s\n", names[fmt], (long long)n, t * 1e3,
                   d.bytes / t * 1e-9);
            fflush(stdout);
            tome_attn_cuda_free(ws);
            tome_attn_cuda_free(dq);
            tome_attn_cuda_free(dout);
            tome_attn_cuda_free(dpos);
            pages_free(&d);
        }
    }
    return 0;
}
