/*
 * bench/bench_scout_gpu.c — the arithmetic of Llama 4 Scout on one GPU
 * (issue 8), from the real config and tome's own layouts (model/gpu_plan.h,
 * kvcache/kv_layout.h). Runs anywhere (no GPU needed):
 *
 *   bench_scout_gpu CONFIG [--weights int4|int8|bf16] [--budget-gb G]
 *                   [--ubatch U] [--tflops T]
 *
 * Prints: parameters and GPU weight bytes; per KV format the bytes per
 * token (one layer, the 12 global layers), the chunked layers' windows, the
 * largest context whose KV stays on the GPU, and for 1M / 3.6M / 10M tokens
 * how many global layers stay on the GPU and the host RAM the rest needs;
 * the attention FLOP floor of a 1M-token prefill at T TFLOP/s. The GPU
 * timings come from bench_model --device cuda (bench/bench_scout_gpu.sh).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvcache/kv_layout.h"
#include "model/gpu_plan.h"

static const char *fmt_name(int f)
{
    static const char *n[] = {"f32", "bf16", "fp8", "int8", "int4", "int2"};
    return f >= 0 && f < 6 ? n[f] : "?";
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_scout_gpu CONFIG [--weights int4|int8|bf16] [--budget-gb G] [--ubatch U] [--tflops T]\n");
        return 2;
    }
    tome_weights_format wf = TOME_WEIGHTS_INT4;
    double budget_gb = 80.0, tflops = 800.0;
    int ubatch = 512;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--weights"))
            wf = !strcmp(argv[i + 1], "int8") ? TOME_WEIGHTS_INT8 : !strcmp(argv[i + 1], "bf16") ? TOME_WEIGHTS_NATIVE : TOME_WEIGHTS_INT4;
        else if (!strcmp(argv[i], "--budget-gb")) budget_gb = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--ubatch")) ubatch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--tflops")) tflops = atof(argv[i + 1]);
    }
    tome_model_config_t c;
    if (tome_model_config_load(argv[1], &c) != TOME_OK) {
        fprintf(stderr, "bench_scout_gpu: %s\n", tome_last_error());
        return 1;
    }
    const uint64_t budget = (uint64_t)(budget_gb * 1e9);
    const double H = (double)c.hidden_size, nq = c.n_heads, hd = c.head_dim;
    tome_gpu_mem_plan p;
    if (tome_gpu_plan_make(&c, wf, TOME_KV_BF16, 8192, ubatch, budget, &p) != TOME_OK) {
        fprintf(stderr, "bench_scout_gpu: %s\n", tome_last_error());
        return 1;
    }
    printf("config %s: %d layers (%d global NoPE, %d chunked RoPE, chunk %lld), hidden %.0f, %d q heads / %d kv heads x %d\n",
           argv[1], c.n_layers, p.n_global, p.n_chunked, (long long)c.attention_chunk_size, H, c.n_heads, c.n_kv_heads,
           c.head_dim);
    printf("weights %s on the GPU: %.2f GB (routed experts %.2f GB); GPU budget %.1f GB; scratch (ubatch %d) %.2f GB\n",
           wf == TOME_WEIGHTS_INT4 ? "int4" : wf == TOME_WEIGHTS_INT8 ? "int8" : "bf16", p.weight_bytes / 1e9,
           p.expert_bytes / 1e9, budget_gb, ubatch, p.scratch_bytes / 1e9);
    printf("\n| KV format | B/token/layer | B/token (%d global) | chunked windows | max context on GPU | 1M: global on GPU / host RAM | 3.6M | 10M |\n",
           p.n_global);
    printf("|---|---|---|---|---|---|---|---|\n");
    const int fmts[] = {TOME_KV_F32, TOME_KV_BF16, TOME_KV_FP8, TOME_KV_INT8, TOME_KV_INT4, TOME_KV_INT2};
    for (size_t i = 0; i < sizeof fmts / sizeof fmts[0]; i++) {
        tome_gpu_mem_plan q[3];
        const int64_t ctx[3] = {1 << 20, 3600000, 10000000};
        int ok = 1;
        for (int k = 0; k < 3 && ok; k++) ok = tome_gpu_plan_make(&c, wf, fmts[i], ctx[k], ubatch, budget, &q[k]) == TOME_OK;
        if (!ok) {
            printf("| %s | %s |\n", fmt_name(fmts[i]), tome_last_error());
            continue;
        }
        printf("| %s | %llu | %llu | %.2f GB | %lld | %d / %.1f GB | %d / %.1f GB | %d / %.1f GB |\n", fmt_name(fmts[i]),
               (unsigned long long)q[0].kv_token_layer, (unsigned long long)q[0].kv_token_global,
               q[0].kv_chunked_bytes / 1e9, (long long)q[0].max_ctx_gpu, q[0].global_on_gpu, q[0].kv_host_bytes / 1e9,
               q[1].global_on_gpu, q[1].kv_host_bytes / 1e9, q[2].global_on_gpu, q[2].kv_host_bytes / 1e9);
    }
    /* attention FLOPs of a prefill of N tokens: QKᵀ and PV are 2 * 2 * hd FLOPs
     * per (query, key, head); causal global layers see N²/2 pairs, chunked
     * layers N * C / 2 */
    const double N = 1048576.0, C = (double)c.attention_chunk_size;
    double glob = (double)p.n_global * 4.0 * hd * nq * N * N / 2.0;
    double chk = (double)p.n_chunked * 4.0 * hd * nq * N * C / 2.0;
    /* dense FLOPs: 2 per active parameter per token (top-1 expert + shared) */
    double active = 0;
    for (int l = 0; l < c.n_layers; l++) {
        active += H * hd * (2 * nq + 2 * c.n_kv_heads);
        if (c.is_moe[l]) active += 3 * H * (double)c.intermediate_size * (1 + c.n_experts_per_tok) + H * c.n_experts;
        else active += 3 * H * (double)c.intermediate_size_mlp;
    }
    active += H * (double)c.vocab_size;
    double dense = 2.0 * active * N;
    printf("\n1M-token prefill FLOPs: attention global %.3g + chunked %.3g = %.3g; dense (2 x %.2fB active params x N) %.3g\n",
           glob, chk, glob + chk, active / 1e9, dense);
    printf("floor at %.0f TFLOP/s: attention %.1f s (%.2f min), + dense %.1f s = %.2f min (target <= 5 min)\n", tflops,
           (glob + chk) / (tflops * 1e12), (glob + chk) / (tflops * 1e12) / 60.0, dense / (tflops * 1e12),
           (glob + chk + dense) / (tflops * 1e12) / 60.0);
    /* decode at context N: every step reads all the global KV once plus the active weights */
    tome_gpu_mem_plan d;
    for (int f = TOME_KV_BF16; f <= TOME_KV_INT4; f += 3) {
        if (tome_gpu_plan_make(&c, wf, f, 1 << 20, ubatch, budget, &d) != TOME_OK) continue;
        double active_w = (double)p.weight_bytes - (double)p.expert_bytes * (1.0 - (double)c.n_experts_per_tok / c.n_experts);
        double bytes = (double)d.kv_token_global * N + active_w;
        printf("decode at 1M, KV %s: %.1f GB read per token (KV %.1f GB + active weights %.1f GB) -> <= %.0f tokens/s at 3.35 TB/s (H100) / %.0f at 4.8 TB/s (H200)\n",
               fmt_name(f), bytes / 1e9, d.kv_token_global * N / 1e9, active_w / 1e9, 3.35e12 / bytes, 4.8e12 / bytes);
    }
    return 0;
}
