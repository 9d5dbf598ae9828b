/*
 * tests/test_gpu_plan.c — the host-side logic of the CUDA backend, on the
 * CPU (model/gpu_plan.h): MoE routing and the expert grouping plan (the
 * code the GPU kernels run), packing weights into the GPU layouts (every
 * element equal to the CPU's view of it), and the device-memory plan on
 * Scout's real config.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvcache/kv_layout.h"
#include "model/gpu_plan.h"
#include "tests/tt.h"

static uint64_t g_rng = 12345;
static uint32_t rnd(void)
{
    g_rng = g_rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(g_rng >> 33);
}
static float rndf(void) { return (float)rnd() / 2147483648.0f - 1.0f; }

/* routing: top-k by value, the lower index wins a tie, sigmoid scores */
static void test_route(void)
{
    for (int trial = 0; trial < 200; trial++) {
        int E = 2 + (int)(rnd() % 15), K = 1 + (int)(rnd() % (E < 4 ? E : 4));
        float r[16];
        for (int e = 0; e < E; e++) r[e] = (float)((int)(rnd() % 5) - 2) * 0.5f; /* many ties */
        int32_t sel[4];
        float score[4];
        tome_moe_route(r, E, K, sel, score);
        int used[16] = {0};
        for (int j = 0; j < K; j++) {
            TT_CHECK(sel[j] >= 0 && sel[j] < E && !used[sel[j]]);
            used[sel[j]] = 1;
            TT_NEAR(score[j], 1.0f / (1.0f + expf(-r[sel[j]])), 1e-7);
            /* nothing unselected beats it, and an equal one has a higher index */
            for (int e = 0; e < E; e++) {
                if (used[e]) continue;
                TT_CHECK(r[e] < r[sel[j]] || (r[e] == r[sel[j]] && e > sel[j]));
            }
            if (j > 0) TT_CHECK(r[sel[j]] < r[sel[j - 1]] || (r[sel[j]] == r[sel[j - 1]] && sel[j] > sel[j - 1]));
        }
    }
}

/* grouping: a stable counting sort of routed slots by expert */
static void test_plan(void)
{
    for (int trial = 0; trial < 100; trial++) {
        int E = 1 + (int)(rnd() % 16);
        int32_t n = (int32_t)(rnd() % 300);
        int32_t *sel = malloc(((size_t)n + 1) * sizeof *sel), *order = malloc(((size_t)n + 1) * 4),
                *where = malloc(((size_t)n + 1) * 4), off[17], cur[16], cnt[16] = {0};
        for (int32_t i = 0; i < n; i++) sel[i] = (int32_t)(rnd() % (uint32_t)E), cnt[sel[i]]++;
        int32_t big = tome_moe_plan(sel, n, E, off, cur, order, where);
        int32_t want_big = 0;
        TT_EQ_INT(off[0], 0);
        for (int e = 0; e < E; e++) {
            TT_EQ_INT(off[e + 1] - off[e], cnt[e]);
            if (cnt[e] > want_big) want_big = cnt[e];
            for (int32_t r = off[e]; r < off[e + 1]; r++) {
                TT_EQ_INT(sel[order[r]], e);
                if (r > off[e]) TT_CHECK(order[r] > order[r - 1]); /* token order kept */
            }
        }
        TT_EQ_INT(big, want_big);
        for (int32_t i = 0; i < n; i++) TT_EQ_INT(order[where[i]], i);
        if (n > 0) {
            sel[n / 2] = E; /* out of range */
            TT_EQ_INT(tome_moe_plan(sel, n, E, off, cur, order, where), -1);
        }
        free(sel), free(order), free(where);
    }
}

/* every element of a packed matrix equals the CPU's row view of the original */
static void check_pack(const tome_wt *w)
{
    size_t bytes = tome_gpu_wt_bytes(w);
    uint8_t *p = malloc(bytes);
    TT_OK(tome_gpu_wt_pack(w, p));
    tome_dtype dt = tome_gpu_wt_dtype(w);
    float *row = malloc((size_t)w->n_in * sizeof(float));
    size_t bad = 0;
    for (int64_t r = 0; r < w->n_out; r++) {
        tome_wt_row_f32(w, r, row);
        for (int64_t k = 0; k < w->n_in; k++) {
            float g;
            if (dt == TOME_DT_Q8 || dt == TOME_DT_Q4) g = tome_gpu_q_get(p, dt == TOME_DT_Q8 ? 8 : 4, w->n_out, w->n_in, r, k);
            else if (dt == TOME_DT_BF16) g = tome_bf16_to_f32(((const uint16_t *)p)[r * w->n_in + k]);
            else g = ((const float *)p)[r * w->n_in + k];
            if (dt == TOME_DT_Q8 || dt == TOME_DT_Q4) /* the scale is stored as f16: 11 significant bits */
                bad += !(fabsf(g - row[k]) <= fabsf(row[k]) * (1.0f / 2048.0f));
            else
                bad += memcmp(&g, &row[k], 4) != 0;
        }
    }
    if (bad) tt_fail(__FILE__, __LINE__, "%s [%lld][%lld] layout %d: %zu elements differ", tome_dtype_name(w->dtype),
                     (long long)w->n_out, (long long)w->n_in, w->layout, bad);
    free(row);
    free(p);
}

/* the scales plane's half conversion: every half round-trips and decodes as
 * the CPU's tome_f16_to_f32; floats round to the nearest half (ties to even) */
static void test_half(void)
{
    size_t bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7c00u) == 0x7c00u && (h & 0x3ffu)) continue; /* NaN payloads */
        float f = tome_gpu_h2f((uint16_t)h);
        float ref = tome_f16_to_f32((uint16_t)h);
        if (memcmp(&f, &ref, 4) != 0) bad++;
        if ((h & 0x7fffu) < 0x7c00u && tome_gpu_f2h(f) != h) bad++;
    }
    TT_EQ_INT(bad, 0);
    uint64_t s = 99;
    for (int i = 0; i < 200000; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t u = (uint32_t)(s >> 32);
        u = (u & 0x80000000u) | (0x33000000u + (u & 0x7fffffffu) % (0x477fe000u - 0x33000000u)); /* ~2^-25 .. 65504 */
        float f;
        memcpy(&f, &u, 4);
        uint16_t h = tome_gpu_f2h(f);
        double e = fabs((double)tome_gpu_h2f(h) - f);
        /* no other half is closer */
        uint16_t up = (uint16_t)(h + 1), dn = (uint16_t)(h - 1);
        if ((up & 0x7fffu) < 0x7c00u && fabs((double)tome_gpu_h2f(up) - f) < e) bad++;
        if ((h & 0x7fffu) != 0 && fabs((double)tome_gpu_h2f(dn) - f) < e) bad++;
#if defined(__FLT16_MAX__) && defined(__x86_64__)
        _Float16 r = (_Float16)f; /* the compiler's conversion, round to nearest even */
        uint16_t rb;
        memcpy(&rb, &r, 2);
        if (rb != h) bad++;
#endif
    }
    TT_EQ_INT(bad, 0);
    TT_EQ_INT(tome_gpu_f2h(1e9f), 0x7bff);  /* saturates */
    TT_EQ_INT(tome_gpu_f2h(-1e9f), 0xfbff);
    TT_EQ_INT(tome_gpu_f2h(1e-9f), 0);      /* below half the smallest subnormal */
}

static void test_pack(void)
{
    const int64_t n_out = 40, n_in = 96;
    float *f = malloc((size_t)(n_out * n_in) * sizeof(float));
    uint16_t *b = malloc((size_t)(n_out * n_in) * 2);
    for (int64_t i = 0; i < n_out * n_in; i++) f[i] = rndf() * (i % 7 == 0 ? 3.0f : 0.05f), b[i] = tome_f32_to_bf16(f[i]);
    tome_block_q8 *q8 = malloc((size_t)(n_out * n_in / TOME_QGROUP) * sizeof *q8);
    tome_block_q4 *q4 = malloc((size_t)(n_out * n_in / TOME_QGROUP) * sizeof *q4);
    for (int64_t r = 0; r < n_out; r++) {
        tome_quant_q8_row(f + r * n_in, (size_t)n_in, q8 + r * (n_in / TOME_QGROUP));
        tome_quant_q4_row(f + r * n_in, (size_t)n_in, q4 + r * (n_in / TOME_QGROUP));
    }
    tome_wt w[] = {
        {.dtype = TOME_DT_F32, .layout = TOME_W_OUT_IN, .n_out = n_out, .n_in = n_in, .data = f},
        {.dtype = TOME_DT_F32, .layout = TOME_W_IN_OUT, .n_out = n_in, .n_in = n_out, .data = f},
        {.dtype = TOME_DT_BF16, .layout = TOME_W_OUT_IN, .n_out = n_out, .n_in = n_in, .data = b},
        {.dtype = TOME_DT_BF16, .layout = TOME_W_IN_OUT, .n_out = n_in, .n_in = n_out, .data = b},
        {.dtype = TOME_DT_Q8, .layout = TOME_W_OUT_IN, .n_out = n_out, .n_in = n_in, .data = q8},
        {.dtype = TOME_DT_Q4, .layout = TOME_W_OUT_IN, .n_out = n_out, .n_in = n_in, .data = q4},
    };
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) check_pack(&w[i]);
    /* sizes: codes plane, 256-aligned, then one f16 scale per group */
    TT_EQ_INT(tome_gpu_wt_bytes(&w[5]), tome_gpu_align((size_t)(n_out * n_in / 2)) + (size_t)(n_out * n_in / 32) * 2);
    TT_EQ_INT(tome_gpu_wt_bytes(&w[4]), tome_gpu_align((size_t)(n_out * n_in)) + (size_t)(n_out * n_in / 32) * 2);
    TT_EQ_INT(tome_gpu_wt_bytes(&w[3]), (size_t)(n_out * n_in * 2));
    /* a quantized IN_OUT view cannot be packed */
    tome_wt bad = w[5];
    bad.layout = TOME_W_IN_OUT;
    uint8_t *p = malloc(tome_gpu_wt_bytes(&bad));
    TT_STATUS(tome_gpu_wt_pack(&bad, p), TOME_ERR_INVALID_ARG);
    free(p), free(f), free(b), free(q8), free(q4);
}

/* Scout (../shared/llama4/scout-text-config.json) on one 80 GB GPU */
static void test_mem_plan_scout(void)
{
    tome_model_config_t c;
    tome_status st = tome_model_config_load(tt_shared_path("llama4/scout-text-config.json"), &c);
    TT_OK(st);
    if (st != TOME_OK) return;
    TT_EQ_INT(c.n_layers, 48);
    tome_gpu_mem_plan p;
    const uint64_t GB = 1000000000ull, budget = 80 * GB;
    TT_OK(tome_gpu_plan_make(&c, TOME_WEIGHTS_INT4, TOME_KV_BF16, 1 << 20, 512, budget, &p));
    TT_EQ_INT(p.n_global, 12);
    TT_EQ_INT(p.n_chunked, 36);
    /* parameters: ~108.6B; int4 with one f16 scale per 32 values = 4.5 bits each, bf16 embedding */
    double params = 0;
    const double H = 5120, Q = 40 * 128, KV = 8 * 128, I = 8192, E = 16, V = 202048;
    params = 2 * V * H + 48 * (2 * H * Q + 2 * H * KV + 3 * H * I + E * 3 * H * I + E * H);
    printf("  Scout: %.1fB parameters, int4 GPU weights %.1f GB (experts %.1f GB), KV %llu B/token/layer (bf16)\n",
           params / 1e9, (double)p.weight_bytes / 1e9, (double)p.expert_bytes / 1e9,
           (unsigned long long)p.kv_token_layer);
    TT_CHECK(params > 107e9 && params < 110e9);
    double want = (params - 2 * V * H - 48 * E * H) * 0.5625 + V * H * 2 + 48 * E * H * 2;
    TT_CHECK(fabs((double)p.weight_bytes - want) / want < 0.01);
    /* bf16 K+V of 8 heads x 128 + the 64-byte page header per 64 tokens */
    TT_EQ_INT(p.kv_token_layer, 2 * 8 * 128 * 2 + 1);
    TT_EQ_INT(p.kv_token_global, 12 * p.kv_token_layer);
    TT_EQ_INT(p.kv_gpu_bytes + p.kv_host_bytes, 12ull * p.kv_token_layer * (1ull << 20));
    TT_CHECK(p.gpu_total <= budget);
    TT_CHECK(p.max_ctx_gpu > 0 && p.max_ctx_gpu < (1 << 20)); /* 1M bf16 KV (~51 GB) does not fit beside ~69 GB */
    TT_CHECK(p.global_on_gpu < 12);
    /* smaller KV formats hold more context; every format's plan is consistent */
    int64_t prev = 0;
    const int fmts[] = {TOME_KV_BF16, TOME_KV_FP8, TOME_KV_INT4, TOME_KV_INT2};
    for (size_t i = 0; i < 4; i++) {
        TT_OK(tome_gpu_plan_make(&c, TOME_WEIGHTS_INT4, fmts[i], 1 << 20, 512, budget, &p));
        TT_CHECK(p.max_ctx_gpu > prev);
        prev = p.max_ctx_gpu;
        /* longer contexts never keep more layers on the GPU */
        int last = 13;
        for (int64_t ctx = 1 << 13; ctx <= (1 << 24); ctx <<= 1) {
            TT_OK(tome_gpu_plan_make(&c, TOME_WEIGHTS_INT4, fmts[i], ctx, 512, budget, &p));
            TT_CHECK(p.global_on_gpu <= last);
            last = p.global_on_gpu;
            TT_CHECK(p.gpu_total <= budget);
        }
    }
    /* bf16 weights (~217 GB) do not fit */
    TT_STATUS(tome_gpu_plan_make(&c, TOME_WEIGHTS_NATIVE, TOME_KV_BF16, 8192, 512, budget, &p), TOME_ERR_LIMIT);
    TT_CONTAINS(tome_last_error(), "exceed");
}

int main(void)
{
    TT_RUN(test_route);
    TT_RUN(test_plan);
    TT_RUN(test_half);
    TT_RUN(test_pack);
    TT_RUN(test_mem_plan_scout);
    return tt_finish();
}
