/*
 * bench/bench_kvcache.c — the KV cache's numbers (BENCHMARKS.md, KV section):
 *
 *   layout    bytes per token per layer for every format at Scout's shape
 *             (8 KV heads x 128 dims) and several page sizes, and the Scout
 *             capacity table (80 GB GPU + N GB RAM)
 *   speed     single-thread seal (quantize) and dequantize throughput (GB/s
 *             of float32 K+V), zstd level 1 compress / decompress of sealed
 *             pages (GB/s of page bytes) and the compression ratio per format,
 *             on K with outlier channels and gaussian V
 *   disk      read bandwidth of the disk tier: a cache whose pages are all in
 *             the page file, read in order through tome_kv_span_at
 *   model     on a model directory (-m DIR, e.g. tests/golden/model/
 *             chunked_gqa): logits of a sequence with each KV format against
 *             the float32 cache — relative L2 error of the logits and top-1
 *             agreement (teacher-forced, against the bf16 cache as the issue
 *             asks) — and the attention-output error on the model's own
 *             K/V (queries: the model's keys of other positions, a proxy)
 *
 * usage: bench_kvcache [-m MODEL_DIR] [-n TOKENS] [-r REPEATS] [-s SECTIONS] [-k SINK] [-w RECENT] [-R]
 *   -k / -w: sink_tokens / recent_tokens of the caches of the model section;
 *   -R: teacher-force random tokens instead of the model's greedy continuation
 *   SECTIONS: comma-separated subset of layout,speed,disk,snap,model (default:
 *   all; model only with -m). Threads: TOME_THREADS (snapshot load).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zstd.h>

#include "attention/attention_impl.h"
#include "core/core_impl.h"
#include "kvcache/kv_page_impl.h"
#include "kvcache/kvcache_impl.h"
#include "model/forward_impl.h"
#include "tome/model.h"

static const char *g_fmt[TOME_KV_N_FORMATS] = {"f32", "bf16", "fp8", "int8", "int4", "int2"};

static uint64_t g_rng = 0x853c49e6748fea9bull;
static double rnd(void)
{
    uint64_t z = (g_rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (double)((z ^ (z >> 31)) >> 11) / 9007199254740992.0;
}
static float gauss(void)
{
    double u = rnd() + 1e-12, v = rnd();
    return (float)(sqrt(-2 * log(u)) * cos(6.283185307179586 * v));
}

static void fill(float *k, float *v, size_t rows, int HD)
{
    for (size_t r = 0; r < rows; r++)
        for (int c = 0; c < HD; c++) {
            int out = c % 13 == 5;
            k[r * (size_t)HD + c] = (out ? 4.0f : 0.0f) + (out ? 15.0f : 1.0f) * gauss();
            v[r * (size_t)HD + c] = gauss();
        }
}

/* ------------------------------------------------------------ layout */
static void bench_layout(void)
{
    printf("## bytes per token per layer, Scout shape (8 KV heads x 128 dims, K+V)\n\n");
    printf("| format | T=16 | T=32 | T=64 | T=128 | T=256 |\n|---|---:|---:|---:|---:|---:|\n");
    for (int f = 0; f < TOME_KV_N_FORMATS; f++) {
        printf("| %s |", g_fmt[f]);
        for (int T = 16; T <= 256; T *= 2) {
            tome_kv_layout L = {0};
            tome_kv_layout_init(&L, f, T, 8, 128, 32);
            printf(" %.1f |", (double)L.page_bytes / T);
        }
        printf("\n");
    }
    /* capacity: 12 global layers keep every token; 36 chunked layers keep 8192 tokens */
    printf("\n## Scout capacity (T=64): tokens of context that fit\n\n");
    printf("KV memory = GPU memory left for KV + host RAM budget; global layers 12, chunked 36 x 8192 tokens in the same format\n\n");
    printf("| format | bytes/token (12 global layers) | chunked layers (fixed) | 20 GB GPU only | 20 GB + 64 GB RAM | 20 GB + 128 GB RAM | 20 GB + 256 GB RAM | 20 GB + 512 GB RAM |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int f = 1; f < TOME_KV_N_FORMATS; f++) {
        tome_kv_layout L = {0};
        tome_kv_layout_init(&L, f, 64, 8, 128, 32);
        double per_tok = 12.0 * L.page_bytes / 64.0;
        double chunked = 36.0 * 8192 * L.page_bytes / 64.0;
        printf("| %s | %.0f | %.2f GB |", g_fmt[f], per_tok, chunked / 1e9);
        double ram[] = {0, 64, 128, 256, 512};
        for (int i = 0; i < 5; i++) {
            double avail = (20.0 + ram[i]) * 1e9 - chunked;
            printf(" %.2fM |", avail / per_tok / 1e6);
        }
        printf("\n");
    }
    printf("\n");
}

/* ------------------------------------------------------------ speed */
/* CPU time of the calling thread: the throughput per core, whatever the
 * machine's load (wall time on a shared 2-core VM varies several-fold) */
static double thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void bench_speed(int reps)
{
    const int T = 64, H = 8, D = 128, HD = H * D, NP = 64;
    float *k = malloc(sizeof(float) * (size_t)NP * T * HD), *v = malloc(sizeof(float) * (size_t)NP * T * HD);
    float *o = malloc(sizeof(float) * (size_t)T * HD);
    fill(k, v, (size_t)NP * T, HD);
    printf("## single-thread throughput (Scout shape, T=64, %d pages of K with outlier channels + gaussian V)\n\n", NP);
    printf("GB/s per CPU-second of the thread (CLOCK_THREAD_CPUTIME_ID), best of %d; 'scalar' = the plain reference "
           "code (tome_kv_page_seal_scalar / _dequant_scalar, the code before vectorization), same bytes\n\n", reps);
    printf("| format | page bytes | seal GB/s (f32 in) | scalar seal | dequant GB/s (f32 out) | scalar dequant | zstd-1 ratio | compress GB/s | decompress GB/s |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int f = 0; f < TOME_KV_N_FORMATS; f++) {
        tome_kv_layout L = {0};
        tome_kv_layout_init(&L, f, T, H, D, 32);
        uint8_t *pages = malloc((size_t)L.page_bytes * NP);
        size_t zcap = ZSTD_compressBound(L.page_bytes);
        uint8_t *z = malloc(zcap * NP);
        size_t *zn = malloc(sizeof(size_t) * NP);
        double best_seal = 1e9, best_deq = 1e9, best_c = 1e9, best_d = 1e9, zsum = 0, best_ss = 1e9, best_sd = 1e9;
        for (int r = 0; r < reps; r++) {
            double s0 = thread_cpu();
            for (int p = 0; p < NP; p++)
                tome_kv_page_seal_scalar(&L, k + (size_t)p * T * HD, v + (size_t)p * T * HD, (int64_t)p * T, 0, 0,
                                         pages + (size_t)p * L.page_bytes);
            double s1 = thread_cpu();
            for (int p = 0; p < NP; p++) {
                tome_kv_page_dequant_scalar(&L, pages + (size_t)p * L.page_bytes, 0, 0, T, o);
                tome_kv_page_dequant_scalar(&L, pages + (size_t)p * L.page_bytes, 1, 0, T, o);
            }
            double s2 = thread_cpu();
            if (s1 - s0 < best_ss) best_ss = s1 - s0;
            if (s2 - s1 < best_sd) best_sd = s2 - s1;
            double t0 = thread_cpu();
            for (int p = 0; p < NP; p++)
                tome_kv_page_seal(&L, k + (size_t)p * T * HD, v + (size_t)p * T * HD, (int64_t)p * T, 0, 0,
                                  pages + (size_t)p * L.page_bytes);
            double t1 = thread_cpu();
            for (int p = 0; p < NP; p++) {
                tome_kv_page_dequant(&L, pages + (size_t)p * L.page_bytes, 0, 0, T, o);
                tome_kv_page_dequant(&L, pages + (size_t)p * L.page_bytes, 1, 0, T, o);
            }
            double t2 = thread_cpu();
            zsum = 0;
            for (int p = 0; p < NP; p++) {
                zn[p] = ZSTD_compress(z + (size_t)p * zcap, zcap, pages + (size_t)p * L.page_bytes, L.page_bytes, 1);
                zsum += (double)zn[p];
            }
            double t3 = thread_cpu();
            for (int p = 0; p < NP; p++)
                ZSTD_decompress(pages + (size_t)p * L.page_bytes, L.page_bytes, z + (size_t)p * zcap, zn[p]);
            double t4 = thread_cpu();
            if (t1 - t0 < best_seal) best_seal = t1 - t0;
            if (t2 - t1 < best_deq) best_deq = t2 - t1;
            if (t3 - t2 < best_c) best_c = t3 - t2;
            if (t4 - t3 < best_d) best_d = t4 - t3;
        }
        double fbytes = 2.0 * NP * T * HD * 4, pbytes = (double)NP * L.page_bytes;
        printf("| %s | %u | %.2f | %.2f | %.2f | %.2f | %.3f | %.2f | %.2f |\n", g_fmt[f], L.page_bytes,
               fbytes / best_seal / 1e9, fbytes / best_ss / 1e9, fbytes / best_deq / 1e9, fbytes / best_sd / 1e9,
               pbytes / zsum, pbytes / best_c / 1e9, pbytes / best_d / 1e9);
        free(pages), free(z), free(zn);
    }
    printf("\n");
    free(k), free(v), free(o);
}

/* ------------------------------------------------------------ disk tier */
static void bench_disk(int reps)
{
    const int H = 8, D = 128, HD = H * D;
    const int64_t n = 16384;
    float *k = malloc(sizeof(float) * 1024 * HD), *v = malloc(sizeof(float) * 1024 * HD);
    fill(k, v, 1024, HD);
    printf("## disk tier: %lld tokens of one global layer (Scout shape), every page in the page file (/tmp), read in order\n\n",
           (long long)n);
    printf("GB/s of raw page bytes, best of %d; 'read-ahead' rows call tome_kv_prefetch first (background thread), "
           "'off' rows disable it (prefetch_pages -1); span_at dequantizes each page on the reading thread (the work "
           "attention would do) while the thread reads the next pages\n\n", reps);
    printf("'attention' = tome_attention_cpu, one decode query of Scout's 40 heads over all %lld positions, 1 thread "
           "(it calls tome_kv_prefetch itself)\n\n", (long long)n);
    printf("| format | read-ahead | pages | page file MB | raw MB | ratio | read (span_at, dequant) GB/s of pages | views (view_at) GB/s | attention GB/s of pages | hits |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int f = TOME_KV_BF16; f < TOME_KV_N_FORMATS * 2; f++) {
      const int fmt = f % TOME_KV_N_FORMATS, pf_on = f >= TOME_KV_N_FORMATS;
      if (fmt < TOME_KV_BF16) continue;
      {
        tome_kv_params kp = {.n_layers = 1, .n_kv_heads = H, .head_dim = D, .n_seqs = 1, .max_tokens = n, .fmt = fmt,
                             .ram_budget = 1, .disk_dir = "/tmp", .prefetch_pages = pf_on ? 0 : -1};
        tome_kvcache *kv;
        if (tome_kv_open(&kp, &kv) != TOME_OK) {
            printf("open: %s\n", tome_last_error());
            return;
        }
        for (int64_t p = 0; p < n; p += 1024)
            if (tome_kv_write(kv, 0, 0, p, 1024, k, v) != TOME_OK) printf("write: %s\n", tome_last_error());
        tome_kv_stats st;
        tome_kv_get_stats(kv, &st);
        double best = 1e9, bestv = 1e9, besta = 1e9;
        float *q = malloc(sizeof(float) * 40 * D), *out = malloc(sizeof(float) * 40 * D);
        for (int i = 0; i < 40 * D; i++) q[i] = 0.1f * gauss();
        const int64_t qpos = n - 1;
        tome_attn_params ap = {.q = q, .q_stride = (size_t)40 * D, .out = out, .out_stride = (size_t)40 * D,
                               .q_pos = &qpos, .n_q = 1, .n_heads = 40, .n_kv_heads = H, .head_dim = D, .kv = kv,
                               .n_threads = 1};
        for (int r = 0; r < reps; r++) {
            double t0 = tome_now();
            tome_kv_prefetch(kv, 0, 0, 0, n);
            for (int64_t p = 0; p < n;) {
                tome_kv_span sp;
                if (tome_kv_span_at(kv, 0, 0, p, n, &sp) != TOME_OK) {
                    printf("read: %s\n", tome_last_error());
                    break;
                }
                p = sp.p1;
            }
            double t1 = tome_now();
            tome_kv_prefetch(kv, 0, 0, 0, n);
            for (int64_t p = 0; p < n;) {
                tome_kv_view w;
                if (tome_kv_view_at(kv, 0, 0, p, n, &w) != TOME_OK) break;
                p = w.p1;
            }
            double t2 = tome_now();
            if (tome_attention_cpu(&ap) != TOME_OK) printf("attention: %s\n", tome_last_error());
            double t3 = tome_now();
            if (t1 - t0 < best) best = t1 - t0;
            if (t2 - t1 < bestv) bestv = t2 - t1;
            if (t3 - t2 < besta) besta = t3 - t2;
        }
        free(q), free(out);
        tome_kv_stats st2;
        tome_kv_get_stats(kv, &st2);
        printf("| %s | %s | %llu | %.1f | %.1f | %.3f | %.2f | %.2f | %.2f | %llu |\n", g_fmt[fmt], pf_on ? "on" : "off",
               (unsigned long long)st.pages_disk, st.bytes_disk / 1e6, st.bytes_disk_raw / 1e6,
               (double)st.bytes_disk_raw / (double)st.bytes_disk, st.bytes_disk_raw / best / 1e9,
               st.bytes_disk_raw / bestv / 1e9, st.bytes_disk_raw / besta / 1e9, (unsigned long long)st2.prefetch_hits);
        tome_kv_free(kv);
      }
    }
    printf("\n");
    free(k), free(v);
}

/* ------------------------------------------------------------ snapshots */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void bench_snapshot(int reps)
{
    const int H = 8, D = 128, HD = H * D, NL = 4;
    const int64_t n = 32768;
    float *k = malloc(sizeof(float) * 1024 * HD), *v = malloc(sizeof(float) * 1024 * HD);
    fill(k, v, 1024, HD);
    printf("## snapshots: %d global layers x %lld tokens (Scout shape), save (atomic, fsync) and load to /tmp\n\n", NL,
           (long long)n);
    printf("threads: %d (TOME_THREADS); best of %d; CPU = user+sys of the process; 'in place' = RAM budget 1 byte, "
           "pages left in the snapshot file (disk tier, verified when read)\n\n", tome_num_threads(), reps);
    printf("| format | file MB | save s | save CPU s | save GB/s | load s | load CPU s | load GB/s | load s per 1M tokens x 12 layers (wall / CPU) | in-place load s |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int f = TOME_KV_BF16; f < TOME_KV_N_FORMATS; f += (f == TOME_KV_BF16 ? 2 : 1)) {
        tome_kv_params kp = {.n_layers = NL, .n_kv_heads = H, .head_dim = D, .n_seqs = 1, .max_tokens = n, .fmt = f};
        tome_kvcache *kv;
        if (tome_kv_open(&kp, &kv) != TOME_OK) return;
        for (int l = 0; l < NL; l++)
            for (int64_t p = 0; p < n; p += 1024) (void)tome_kv_write(kv, l, 0, p, 1024, k, v);
        tome_kv_snapshot_meta meta;
        memset(&meta, 0, sizeof meta);
        meta.n_done = meta.n_total = n;
        double bs = 1e9, bsc = 1e9, bl = 1e9, blc = 1e9, bi = 1e9;
        tome_kv_params inplace = {.ram_budget = 1};
        tome_kv_snapshot_info info;
        memset(&info, 0, sizeof info);
        for (int r = 0; r < reps; r++) {
            double t0 = tome_now(), c0 = cpu_now();
            if (tome_kv_snapshot_save(kv, "/tmp/bench_kvcache.tkv", &meta) != TOME_OK) printf("save: %s\n", tome_last_error());
            double t1 = tome_now(), c1 = cpu_now();
            tome_kvcache *back = NULL;
            if (tome_kv_snapshot_load("/tmp/bench_kvcache.tkv", NULL, NULL, &back, &info) != TOME_OK)
                printf("load: %s\n", tome_last_error());
            double t2 = tome_now(), c2 = cpu_now();
            tome_kv_free(back);
            back = NULL;
            double c3 = cpu_now(), t3 = tome_now();
            if (tome_kv_snapshot_load("/tmp/bench_kvcache.tkv", NULL, &inplace, &back, &info) != TOME_OK)
                printf("load in place: %s\n", tome_last_error());
            double t4 = tome_now();
            tome_kv_free(back);
            if (t1 - t0 < bs) bs = t1 - t0;
            if (c1 - c0 < bsc) bsc = c1 - c0;
            if (t2 - t1 < bl) bl = t2 - t1;
            if (c2 - c1 < blc) blc = c2 - c1;
            if (t4 - t3 < bi) bi = t4 - t3;
            (void)c3;
        }
        double mb = (double)info.file_bytes;
        printf("| %s | %.1f | %.3f | %.3f | %.2f | %.3f | %.3f | %.2f | %.1f / %.1f | %.4f |\n", g_fmt[f], mb / 1e6, bs, bsc,
               mb / bs / 1e9, bl, blc, mb / bl / 1e9, bl * (1e6 / (double)n) * (12.0 / NL),
               blc * (1e6 / (double)n) * (12.0 / NL), bi);
        tome_kv_free(kv);
    }
    remove("/tmp/bench_kvcache.tkv");
    printf("\n");
    free(k), free(v);
}

/* ------------------------------------------------------------ model */
static double rel_l2(const float *a, const float *ref, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

static int argmax(const float *x, size_t n)
{
    size_t b = 0;
    for (size_t i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return (int)b;
}

static int64_t g_sink, g_recent; /* -k / -w: float32 positions kept (model section) */
static int g_random;              /* -R: the sequence is random tokens, not a greedy continuation */

static tome_status session_with(tome_model_t *m, int64_t n, int fmt, int T, tome_session_t **out)
{
    const tome_model_config_t *c = tome_model_get_config(m);
    TOME_FORWARD(tome_session_open(m, n, 64, out));
    int64_t window[TOME_MAX_LAYERS];
    for (int l = 0; l < c->n_layers; l++) window[l] = c->use_rope[l] ? c->attention_chunk_size : 0;
    tome_kv_params kp = {.n_layers = c->n_layers, .n_kv_heads = c->n_kv_heads, .head_dim = c->head_dim,
                         .n_seqs = 1, .max_tokens = n, .window = window, .fmt = fmt, .page_tokens = T,
                         .sink_tokens = g_sink, .recent_tokens = g_recent};
    tome_kvcache *kv;
    tome_status st = tome_kv_open(&kp, &kv);
    if (st != TOME_OK) return st;
    tome_kv_free((*out)->kv);
    (*out)->kv = kv;
    return TOME_OK;
}

static void attend(const float *q, const float *k, const float *v, size_t n, int D, size_t stride, float *out)
{
    double *s = malloc(n * sizeof(double)), mx = -1e300, l = 0;
    for (size_t t = 0; t < n; t++) {
        double d = 0;
        for (int i = 0; i < D; i++) d += (double)q[i] * k[t * stride + (size_t)i];
        s[t] = d / sqrt((double)D);
        if (s[t] > mx) mx = s[t];
    }
    for (size_t t = 0; t < n; t++) l += (s[t] = exp(s[t] - mx));
    for (int i = 0; i < D; i++) {
        double a = 0;
        for (size_t t = 0; t < n; t++) a += s[t] * v[t * stride + (size_t)i];
        out[i] = (float)(a / l);
    }
    free(s);
}

static void bench_model(const char *dir, int64_t n)
{
    tome_model_t *m = NULL;
    if (tome_model_open(dir, NULL, &m) != TOME_OK) {
        printf("model %s: %s\n", dir, tome_last_error());
        return;
    }
    const tome_model_config_t *c = tome_model_get_config(m);
    const size_t V = (size_t)c->vocab_size;
    /* the sequence: 32 random prompt tokens, then the model's own greedy
     * continuation with the float32 cache */
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)n);
    const int64_t n_prompt = n < 64 ? n / 2 : 32;
    for (int64_t i = 0; i < n; i++) ids[i] = (int32_t)(rnd() * (double)V);
    float *ref = malloc(sizeof(float) * (size_t)n * V), *bf = malloc(sizeof(float) * (size_t)n * V),
          *got = malloc(sizeof(float) * (size_t)n * V);
    const int T = 8;
    {
        tome_session_t *g = NULL;
        if (session_with(m, n, TOME_KV_F32, T, &g) != TOME_OK ||
            tome_session_eval(g, ids, (size_t)n_prompt, 0, got) != TOME_OK) {
            printf("eval: %s\n", tome_last_error());
            return;
        }
        for (int64_t i = n_prompt; i < n && !g_random; i++) {
            ids[i] = argmax(got, V);
            if (i + 1 < n && tome_session_eval(g, ids + i, 1, 0, got) != TOME_OK) {
                printf("eval: %s\n", tome_last_error());
                return;
            }
        }
        tome_session_free(g);
    }
    if (g_random) printf("## model %s: %lld random tokens (-R), agreement over the last %lld\n\n", dir, (long long)n, (long long)(n - n_prompt));
    printf("## model %s: %d random prompt tokens + %lld greedy tokens (float32 cache), %d-token pages, %lld sink + %lld "
           "recent positions of global layers in float32\n\n",
           dir, (int)n_prompt, (long long)(n - n_prompt), T, (long long)g_sink, (long long)g_recent);
    {
        size_t distinct = 0;
        for (int64_t i = n_prompt; i < n; i++) {
            int seen = 0;
            for (int64_t j = n_prompt; j < i && !seen; j++) seen = ids[j] == ids[i];
            distinct += !seen;
        }
        printf("After the prompt the sequence has %zu distinct tokens.\n\n", distinct);
    }
    printf("Teacher-forced over that sequence with each KV format; agreement = argmax equal at the %lld generated positions.\n\n",
           (long long)(n - n_prompt));
    printf("| format | logits rel. L2 error vs f32 cache | top-1 agreement vs bf16 cache | top-1 agreement vs f32 cache | attention-output rel. L2 error (global layer K/V) |\n|---|---:|---:|---:|---:|\n");
    /* the model's own K/V of its global layer(s), from the f32 cache */
    tome_session_t *s = NULL;
    if (session_with(m, n, TOME_KV_F32, T, &s) != TOME_OK || tome_session_eval(s, ids, (size_t)n, 1, ref) != TOME_OK) {
        printf("eval: %s\n", tome_last_error());
        return;
    }
    const int HD = c->n_kv_heads * c->head_dim;
    float *K = malloc(sizeof(float) * (size_t)n * HD), *Vv = malloc(sizeof(float) * (size_t)n * HD);
    int gl = -1;
    for (int l = 0; l < c->n_layers; l++)
        if (!c->use_rope[l]) gl = l;
    if (gl >= 0)
        for (int64_t p = 0; p < n;) {
            tome_kv_span sp;
            if (tome_kv_span_at(s->kv, gl, 0, p, n, &sp) != TOME_OK) break;
            memcpy(K + (size_t)p * HD, sp.k, sizeof(float) * (size_t)(sp.p1 - sp.p0) * HD);
            memcpy(Vv + (size_t)p * HD, sp.v, sizeof(float) * (size_t)(sp.p1 - sp.p0) * HD);
            p = sp.p1;
        }
    tome_session_free(s);
    s = NULL;
    for (int f = TOME_KV_BF16; f < TOME_KV_N_FORMATS; f++) {
        float *dst = f == TOME_KV_BF16 ? bf : got;
        if (session_with(m, n, f, T, &s) != TOME_OK || tome_session_eval(s, ids, (size_t)n, 1, dst) != TOME_OK) {
            printf("eval: %s\n", tome_last_error());
            return;
        }
        size_t agree = 0, agree32 = 0;
        for (int64_t i = n_prompt - 1; i < n - 1; i++) {
            int a = argmax(dst + (size_t)i * V, V);
            agree += a == argmax(bf + (size_t)i * V, V);
            agree32 += a == argmax(ref + (size_t)i * V, V);
        }
        /* attention output over the global layer's K/V, quantized through this format */
        double num = 0, den = 0;
        if (gl >= 0) {
            tome_kvcache *kv;
            tome_kv_params kp = {.n_layers = 1, .n_kv_heads = c->n_kv_heads, .head_dim = c->head_dim, .n_seqs = 1,
                                 .max_tokens = n, .fmt = f, .page_tokens = T};
            float *Kq = malloc(sizeof(float) * (size_t)n * HD), *Vq = malloc(sizeof(float) * (size_t)n * HD);
            if (tome_kv_open(&kp, &kv) == TOME_OK && tome_kv_write(kv, 0, 0, 0, (size_t)n, K, Vv) == TOME_OK) {
                for (int64_t p = 0; p < n;) {
                    tome_kv_span sp;
                    if (tome_kv_span_at(kv, 0, 0, p, n, &sp) != TOME_OK) break;
                    memcpy(Kq + (size_t)p * HD, sp.k, sizeof(float) * (size_t)(sp.p1 - sp.p0) * HD);
                    memcpy(Vq + (size_t)p * HD, sp.v, sizeof(float) * (size_t)(sp.p1 - sp.p0) * HD);
                    p = sp.p1;
                }
                float o1[512], o2[512];
                for (int qi = 0; qi < 32; qi++) {
                    int64_t qp = (int64_t)(rnd() * (double)n);
                    for (int h = 0; h < c->n_kv_heads; h++) {
                        const float *q = K + (size_t)qp * HD + (size_t)h * c->head_dim;
                        attend(q, K + (size_t)h * c->head_dim, Vv + (size_t)h * c->head_dim, (size_t)n, c->head_dim, (size_t)HD, o1);
                        attend(q, Kq + (size_t)h * c->head_dim, Vq + (size_t)h * c->head_dim, (size_t)n, c->head_dim, (size_t)HD, o2);
                        for (int i = 0; i < c->head_dim; i++) {
                            num += (double)(o2[i] - o1[i]) * (o2[i] - o1[i]);
                            den += (double)o1[i] * o1[i];
                        }
                    }
                }
            }
            tome_kv_free(kv);
            free(Kq), free(Vq);
        }
        printf("| %s | %.3g | %.2f%% | %.2f%% | %.3g |\n", g_fmt[f], rel_l2(dst, ref, (size_t)n * V),
               100.0 * (double)agree / (double)(n - n_prompt), 100.0 * (double)agree32 / (double)(n - n_prompt),
               den > 0 ? sqrt(num / den) : 0.0);
        tome_session_free(s);
        s = NULL;
    }
    printf("\n");
    free(K), free(Vv), free(ids), free(ref), free(bf), free(got);
    tome_model_free(m);
}

int main(int argc, char **argv)
{
    const char *model = NULL;
    int64_t n = 512;
    int reps = 3;
    const char *sec = "layout,speed,disk,snap,model";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-m") && i + 1 < argc) model = argv[++i];
        else if (!strcmp(argv[i], "-s") && i + 1 < argc) sec = argv[++i];
        else if (!strcmp(argv[i], "-k") && i + 1 < argc) g_sink = atoll(argv[++i]);
        else if (!strcmp(argv[i], "-w") && i + 1 < argc) g_recent = atoll(argv[++i]);
        else if (!strcmp(argv[i], "-R")) g_random = 1;
        else if (!strcmp(argv[i], "-n") && i + 1 < argc) n = atoll(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc) reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_kvcache [-m MODEL_DIR] [-n TOKENS] [-r REPEATS] [-s SECTIONS] [-k SINK] [-w RECENT] [-R]\n");
            return 2;
        }
    }
    if (strstr(sec, "layout")) bench_layout();
    if (strstr(sec, "speed")) bench_speed(reps);
    if (strstr(sec, "disk")) bench_disk(reps);
    if (strstr(sec, "snap")) bench_snapshot(reps);
    if (model && strstr(sec, "model")) bench_model(model, n);
    return 0;
}
