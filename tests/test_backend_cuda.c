/*
 * tests/test_backend_cuda.c — the CUDA backend against the CPU backend
 * (issue 8): on the model goldens (tests/golden/model/) and a Scout-shaped
 * small model with dummy weights, for bf16 / int8 / int4 weights:
 *   - logits of every position, whole prompt and odd micro-batches (1 =
 *     decode steps through the captured graph): max |cuda - cpu| / max |cpu|
 *     <= 1e-2;
 *   - the same with TOME_CUDA_BLAS_MIN_ROWS=2 so the cuBLAS GEMMs and the
 *     per-expert MoE path run on the tiny shapes too;
 *   - 32 greedy tokens identical;
 *   - logits with bf16 K/V rows on the device (TOME_CUDA_KV=bf16) too.
 * Without a CUDA build or device it prints "skipped: no CUDA device" and
 * returns 77 (SKIP_RETURN_CODE in tests/CMakeLists.txt).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/tt.h"
#include "tome/device.h"
#include "tome/model.h"

#define SKIP 77

static const char *golden_dir(const char *name)
{
    static char rel[256];
    snprintf(rel, sizeof rel, "tests/golden/model/%s", name);
    return tt_source_path(rel);
}

static float *all_logits(tome_model_t *m, const int32_t *ids, size_t n, int ubatch)
{
    tome_session_t *s = NULL;
    TT_OK(tome_session_open(m, 512, ubatch, &s));
    if (!s) return NULL;
    size_t V = (size_t)tome_model_get_config(m)->vocab_size;
    float *lg = malloc(n * V * sizeof(float));
    TT_OK(tome_session_eval(s, ids, n, 1, lg));
    tome_session_free(s);
    return lg;
}

static void greedy(tome_model_t *m, const int32_t *prompt, size_t n, int32_t *out, size_t n_new)
{
    tome_session_t *s = NULL;
    TT_OK(tome_session_open(m, 512, 0, &s));
    if (!s) return;
    size_t V = (size_t)tome_model_get_config(m)->vocab_size;
    float *lg = malloc(V * sizeof(float));
    tome_sampler smp;
    tome_sampler_params sp = {.temperature = 0};
    tome_sampler_init(&smp, &sp);
    TT_OK(tome_session_eval(s, prompt, n, 0, lg));
    for (size_t i = 0; i < n_new; i++) {
        TT_OK(tome_sampler_pick(&smp, lg, V, &out[i]));
        TT_OK(tome_session_eval(s, &out[i], 1, 0, lg));
    }
    tome_sampler_free(&smp);
    free(lg);
    tome_session_free(s);
}

static void compare(const char *what, const char *dir, tome_model_opts o, size_t n_ids)
{
    tome_model_t *cpu = NULL, *gpu = NULL;
    o.device = TOME_DEVICE_CPU;
    TT_OK(tome_model_open(dir, &o, &cpu));
    o.device = TOME_DEVICE_CUDA;
    TT_OK(tome_model_open(dir, &o, &gpu));
    if (!cpu || !gpu) {
        tome_model_free(cpu), tome_model_free(gpu);
        return;
    }
    const tome_model_config_t *c = tome_model_get_config(cpu);
    int32_t ids[256];
    uint64_t r = 7;
    for (size_t i = 0; i < n_ids; i++) {
        r = r * 6364136223846793005ULL + 1442695040888963407ULL;
        ids[i] = (int32_t)((r >> 33) % (uint64_t)c->vocab_size);
    }
    const size_t V = (size_t)c->vocab_size;
    const char *blas[] = {NULL, "2"};
    int ubatches[] = {512, 5, 1};
    float *ref = all_logits(cpu, ids, n_ids, 512);
    double amax = 0;
    for (size_t k = 0; ref && k < n_ids * V; k++) amax = fmax(amax, fabs(ref[k]));
    for (int b = 0; b < 2 && ref; b++) {
        if (blas[b]) setenv("TOME_CUDA_BLAS_MIN_ROWS", blas[b], 1);
        else unsetenv("TOME_CUDA_BLAS_MIN_ROWS");
        for (size_t u = 0; u < sizeof ubatches / sizeof ubatches[0]; u++) {
            float *lg = all_logits(gpu, ids, n_ids, ubatches[u]);
            if (!lg) continue;
            double err = 0;
            for (size_t k = 0; k < n_ids * V; k++) err = fmax(err, fabs((double)lg[k] - ref[k]));
            err /= amax;
            printf("  %s ubatch %d%s: max |cuda - cpu| / max|cpu| = %.3g\n", what, ubatches[u],
                   blas[b] ? " (cuBLAS from 2 rows)" : "", err);
            if (!(err <= 1e-2)) tt_fail(__FILE__, __LINE__, "%s ubatch %d: relative error %g", what, ubatches[u], err);
            free(lg);
        }
    }
    unsetenv("TOME_CUDA_BLAS_MIN_ROWS");
    /* bf16 K/V rows on the device (what the long-context benchmark uses) */
    setenv("TOME_CUDA_KV", "bf16", 1);
    float *lb = ref ? all_logits(gpu, ids, n_ids, 512) : NULL;
    unsetenv("TOME_CUDA_KV");
    if (lb) {
        double err = 0;
        for (size_t k = 0; k < n_ids * V; k++) err = fmax(err, fabs((double)lb[k] - ref[k]));
        err /= amax;
        printf("  %s bf16 KV: max |cuda - cpu| / max|cpu| = %.3g\n", what, err);
        if (!(err <= 1e-2)) tt_fail(__FILE__, __LINE__, "%s bf16 KV: relative error %g", what, err);
        free(lb);
    }
    int32_t a[32], g[32];
    greedy(cpu, ids, 8, a, 32);
    greedy(gpu, ids, 8, g, 32);
    size_t same = 0;
    while (same < 32 && a[same] == g[same]) same++;
    if (same != 32) tt_fail(__FILE__, __LINE__, "%s: greedy tokens differ at step %zu of 32", what, same);
    free(ref);
    tome_model_free(cpu);
    tome_model_free(gpu);
}

static void test_goldens(void)
{
    const char *names[] = {"chunked_gqa", "mm_wrapper", "dense_shard"};
    const tome_weights_format wf[] = {TOME_WEIGHTS_NATIVE, TOME_WEIGHTS_INT8, TOME_WEIGHTS_INT4};
    const char *wn[] = {"bf16", "int8", "int4"};
    for (size_t i = 0; i < 3; i++)
        for (size_t w = 0; w < 3; w++) {
            char what[128];
            snprintf(what, sizeof what, "%s %s", names[i], wn[w]);
            tome_model_opts o = {.weights = wf[w]};
            compare(what, golden_dir(names[i]), o, 64);
        }
}

/* Scout-shaped (every layer MoE, 16 experts, head_dim 64, GQA 4), dummy int4 weights */
static void test_small_int4(void)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/small", tt_tmpdir());
    TT_OK(tome_mkmodel("small", 1, dir, 0, 1));
    tome_model_opts o = {.weights = TOME_WEIGHTS_INT4, .load_dummy = 1, .dummy_seed = 3};
    compare("small int4 (dummy)", dir, o, 96);
}

/* head_dim 128 with 64-token chunks: prefill micro-batches of 64 rows take the
 * tensor-core attention kernel (attention/cuda/attention_prefill.cu) */
static void test_head128_mma(void)
{
    static const char cfg[] =
        "{\"architectures\":[\"Llama4ForCausalLM\"],\"model_type\":\"llama4_text\",\"vocab_size\":1024,"
        "\"hidden_size\":256,\"intermediate_size\":128,\"intermediate_size_mlp\":512,\"num_hidden_layers\":4,"
        "\"num_attention_heads\":4,\"num_key_value_heads\":2,\"head_dim\":128,\"num_local_experts\":4,"
        "\"num_experts_per_tok\":1,\"interleave_moe_layer_step\":2,\"attention_chunk_size\":64,"
        "\"attn_temperature_tuning\":true,\"floor_scale\":32,\"attn_scale\":0.1,\"use_qk_norm\":true,"
        "\"rms_norm_eps\":1e-05,\"max_position_embeddings\":4096,\"no_rope_layer_interval\":4,"
        "\"rope_theta\":500000.0,\"bos_token_id\":1,\"eos_token_id\":[2],\"tie_word_embeddings\":false}\n";
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/h128", tt_tmpdir());
    TT_CHECK(tt_system("mkdir -p '%s'", dir) == 0);
    snprintf(path, sizeof path, "%s/config.json", dir);
    TT_CHECK(tt_write_file(path, cfg, sizeof cfg - 1) == 0);
    tome_model_opts o = {.weights = TOME_WEIGHTS_INT8, .load_dummy = 1, .dummy_seed = 5};
    compare("head_dim 128 int8 (dummy, mma prefill)", dir, o, 160);
}

int main(void)
{
    int n = 0;
    if (!tome_build_has_cuda() || tome_device_count(&n) != TOME_OK || n == 0) {
        printf("skipped: no CUDA device (%s)\n", tome_build_has_cuda() ? "none found" : "this build has no CUDA");
        return SKIP;
    }
    TT_RUN(test_goldens);
    TT_RUN(test_small_int4);
    TT_RUN(test_head128_mma);
    return tt_finish();
}
