/*
 * bench/bench_attention.c — CPU attention throughput on Scout's head shapes
 * (40 query heads over 8 KV heads of dim 128) through the KV cache API.
 *
 *   bench_attention [--prefill N] [--chunk C] [--decode N] [--threads T] [--reps R]
 *
 * prefill: N queries at positions 0..N-1 against an fp32 cache of N tokens,
 * causal (global layer) and, when C > 0, chunked-causal with chunk C;
 * reports GFLOP/s counting 4 * head_dim flops per visible (query head, key)
 * pair. decode: one query at position N-1 of an N-token cache, per KV page
 * format, context split over the threads; reports ms per call and the
 * bandwidth of the bytes of K/V a call must read (pages as stored: codes +
 * scales + headers). Best and median wall time of R repeats, and the rate
 * per second of process CPU time (all threads; on a shared, loaded machine
 * the wall time mostly measures the other tenants). Default: --prefill 2048
 * --chunk 1024 --decode 32768 --reps 5.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attention/attention_impl.h"
#include "core/core_impl.h"
#include "kvcache/kv_layout.h"
#include "tome/status.h"


#define NH 40
#define NKV 8
#define HD 128

static uint64_t g_rng = 12345;
static float rnd(void)
{
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(g_rng >> 40) / 16777216.0) * 2.0f - 1.0f;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static tome_kvcache *make_cache(int fmt, int64_t n, int64_t chunk)
{
    int64_t window[1] = {chunk};
    tome_kv_params kp = {.n_layers = 1, .n_kv_heads = NKV, .head_dim = HD, .n_seqs = 1, .max_tokens = n,
                         .window = window, .fmt = fmt};
    tome_kvcache *kv = NULL;
    if (tome_kv_open(&kp, &kv) != TOME_OK) {
        fprintf(stderr, "bench_attention: %s\n", tome_last_error());
        return NULL;
    }
    const size_t batch = 4096, row = (size_t)NKV * HD;
    float *k = malloc(batch * row * sizeof(float)), *v = malloc(batch * row * sizeof(float));
    for (size_t i = 0; i < batch * row; i++) {
        k[i] = rnd();
        v[i] = rnd();
    }
    int64_t start = chunk > 0 ? (n - 1) / chunk * chunk : 0; /* a chunked layer holds the last chunk */
    for (int64_t p = start; p < n;) {
        size_t m = (size_t)(n - p) < batch ? (size_t)(n - p) : batch;
        if (chunk > 0 && (int64_t)m > chunk - p % chunk) m = (size_t)(chunk - p % chunk);
        if (tome_kv_write(kv, 0, 0, p, m, k, v) != TOME_OK) {
            fprintf(stderr, "bench_attention: %s\n", tome_last_error());
            tome_kv_free(kv);
            kv = NULL;
            break;
        }
        p += (int64_t)m;
    }
    free(k);
    free(v);
    return kv;
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Best wall time of reps calls; *median the median wall time, *cpu the
 * best process CPU time (all threads) of a call. */
static double run(tome_attn_params *p, int reps, double *median, double *cpu)
{
    double t[64], c[64];
    if (reps > 64) reps = 64;
    for (int r = 0; r < reps; r++) {
        double t0 = tome_now(), c0 = cpu_now();
        if (tome_attention_cpu(p) != TOME_OK) {
            fprintf(stderr, "bench_attention: %s\n", tome_last_error());
            return NAN;
        }
        t[r] = tome_now() - t0;
        c[r] = cpu_now() - c0;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp_d);
    qsort(c, (size_t)reps, sizeof *c, cmp_d);
    *median = t[reps / 2];
    *cpu = c[0];
    return t[0];
}

int main(int argc, char **argv)
{
    int64_t n_pre = 2048, chunk = 1024, n_dec = 32768;
    int threads = 0, reps = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--prefill")) n_pre = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--chunk")) chunk = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--decode")) n_dec = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "usage: bench_attention [--prefill N] [--chunk C] [--decode N] [--threads T] [--reps R]\n");
            return 2;
        }
    }
    if (reps < 1) reps = 1;
    printf("attention CPU, %d q heads / %d kv heads, dim %d, threads %d, inner loop %s\n", NH, NKV, HD,
           threads > 0 ? threads : tome_num_threads(), tome_attention_cpu_isa());

    if (n_pre > 0) {
        const size_t Q = (size_t)NH * HD;
        float *q = malloc((size_t)n_pre * Q * sizeof(float)), *out = malloc((size_t)n_pre * Q * sizeof(float));
        int64_t *pos = malloc((size_t)n_pre * sizeof *pos);
        for (size_t i = 0; i < (size_t)n_pre * Q; i++) q[i] = rnd();
        for (int64_t i = 0; i < n_pre; i++) pos[i] = i;
        for (int pass = 0; pass < 2; pass++) {
            const int64_t c = pass ? chunk : 0;
            if (pass && chunk <= 0) break;
            tome_kvcache *kv = make_cache(TOME_KV_F32, n_pre, 0);
            if (!kv) return 1;
            double pairs = 0;
            for (int64_t i = 0; i < n_pre; i++) pairs += (double)(i - (c > 0 ? i / c * c : 0) + 1);
            const double flops = pairs * NH * HD * 4.0;
            tome_attn_params p = {.q = q, .q_stride = Q, .out = out, .out_stride = Q, .q_pos = pos,
                                  .n_q = (size_t)n_pre, .n_heads = NH, .n_kv_heads = NKV, .head_dim = HD,
                                  .chunk = c, .kv = kv, .n_threads = threads};
            double med, cpu, best = run(&p, reps, &med, &cpu);
            printf("prefill %-8s N=%-7lld  best %8.1f ms  median %8.1f ms  %6.1f GFLOP/s  (%6.1f GFLOP per CPU-s)\n",
                   c ? "chunked" : "causal", (long long)n_pre, best * 1e3, med * 1e3, flops / best * 1e-9,
                   flops / cpu * 1e-9);
            tome_kv_free(kv);
        }
        free(q);
        free(out);
        free(pos);
    }

    if (n_dec > 0) {
        static const char *names[] = {"f32", "bf16", "fp8", "int8", "int4", "int2"};
        float q[NH * HD], out[NH * HD];
        for (int i = 0; i < NH * HD; i++) q[i] = rnd();
        const int64_t pos = n_dec - 1;
        for (int fmt = 0; fmt < TOME_KV_N_FORMATS; fmt++) {
            tome_kvcache *kv = make_cache(fmt, n_dec, 0);
            if (!kv) return 1;
            tome_kv_layout L;
            double bytes;
            if (fmt != TOME_KV_F32 && tome_kv_layout_init(&L, fmt, TOME_KV_PAGE_TOKENS_DEFAULT, NKV, HD, 32) == 0)
                bytes = (double)n_dec / L.page_tokens * L.page_bytes;
            else
                bytes = (double)n_dec * NKV * HD * 2 * 4;
            tome_attn_params p = {.q = q, .q_stride = NH * HD, .out = out, .out_stride = NH * HD, .q_pos = &pos,
                                  .n_q = 1, .n_heads = NH, .n_kv_heads = NKV, .head_dim = HD, .kv = kv,
                                  .n_threads = threads};
            double med, cpu, best = run(&p, reps, &med, &cpu);
            printf("decode  %-8s N=%-7lld  best %8.2f ms  median %8.2f ms  %6.2f GB/s of K/V pages  (%6.2f GB per CPU-s)\n",
                   names[fmt], (long long)n_dec, best * 1e3, med * 1e3, bytes / best * 1e-9, bytes / cpu * 1e-9);
            tome_kv_free(kv);
        }
    }
    return 0;
}
