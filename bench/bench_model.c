/*
 * bench/bench_model.c — prefill and decode speed of the CPU model.
 *
 *   bench_model MODEL_DIR [--weights bf16|int8|int4] [--dummy] [--prompt P]
 *               [--decode N] [--ubatch U] [--threads T] [--reps R] [--device cpu|cuda]
 *
 * Prefill: P token ids (deterministic pseudo-random) in micro-batches of U,
 * logits of the last position only. Decode: N single-token steps after it
 * (greedy), logits each step. Prints the best of R repetitions as one line
 * per phase: wall tokens/s, and tokens per CPU-second of the process (all
 * threads), which stays meaningful on a shared, loaded machine. --warmup W
 * runs W unmeasured repetitions first (the first touches every page of the
 * mapped weights: tens of thousands of page faults).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core_impl.h"
#include "tome/model.h"

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_model MODEL_DIR [--weights bf16|int8|int4] [--dummy] [--prompt P] "
                        "[--decode N] [--ubatch U] [--threads T] [--reps R] [--warmup W]\n");
        return 2;
    }
    tome_model_opts o = {0};
    int P = 512, N = 64, U = 512, R = 3, W = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(a, "--weights")) {
            o.weights = !strcmp(v, "int8") ? TOME_WEIGHTS_INT8 : !strcmp(v, "int4") ? TOME_WEIGHTS_INT4 : TOME_WEIGHTS_NATIVE;
            i++;
        } else if (!strcmp(a, "--dummy")) {
            o.load_dummy = 1;
        } else if (!strcmp(a, "--prompt")) {
            P = atoi(v), i++;
        } else if (!strcmp(a, "--decode")) {
            N = atoi(v), i++;
        } else if (!strcmp(a, "--ubatch")) {
            U = atoi(v), i++;
        } else if (!strcmp(a, "--threads")) {
            o.n_threads = atoi(v), i++;
        } else if (!strcmp(a, "--reps")) {
            R = atoi(v), i++;
        } else if (!strcmp(a, "--warmup")) {
            W = atoi(v), i++;
        } else if (!strcmp(a, "--device")) {
            o.device = !strcmp(v, "cuda") ? TOME_DEVICE_CUDA : TOME_DEVICE_CPU, i++;
        }
    }
    double t0 = tome_now();
    tome_model_t *m = NULL;
    if (tome_model_open(argv[1], &o, &m) != TOME_OK) {
        fprintf(stderr, "bench_model: %s\n", tome_last_error());
        return 1;
    }
    double t_load = tome_now() - t0;
    const tome_model_config_t *c = tome_model_get_config(m);
    int32_t *ids = malloc((size_t)P * sizeof *ids);
    float *logits = malloc((size_t)c->vocab_size * sizeof(float));
    uint64_t s = 1;
    for (int i = 0; i < P; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        ids[i] = (int32_t)((s >> 33) % (uint64_t)c->vocab_size);
    }
    double best_pf = 1e30, best_dec = 1e30, cpu_pf = 1e30, cpu_dec = 1e30;
    tome_sampler smp;
    tome_sampler_params sp = {0};
    tome_sampler_init(&smp, &sp);
    for (int r = -W; r < R; r++) {
        tome_session_t *sess = NULL;
        if (tome_session_open(m, P + N + 1, U, &sess) != TOME_OK) {
            fprintf(stderr, "bench_model: %s\n", tome_last_error());
            return 1;
        }
        double a = tome_now(), ca = cpu_now();
        if (tome_session_eval(sess, ids, (size_t)P, 0, logits) != TOME_OK) {
            fprintf(stderr, "bench_model: %s\n", tome_last_error());
            return 1;
        }
        double b = tome_now(), cb = cpu_now();
        for (int i = 0; i < N; i++) {
            int32_t id;
            tome_sampler_pick(&smp, logits, (size_t)c->vocab_size, &id);
            if (tome_session_eval(sess, &id, 1, 0, logits) != TOME_OK) {
                fprintf(stderr, "bench_model: %s\n", tome_last_error());
                return 1;
            }
        }
        double e = tome_now(), ce = cpu_now();
        tome_session_free(sess);
        if (r < 0) continue; /* warm-up */
        if (cb - ca < cpu_pf) cpu_pf = cb - ca;
        if (ce - cb < cpu_dec) cpu_dec = ce - cb;
        if (b - a < best_pf) best_pf = b - a;
        if (e - b < best_dec) best_dec = e - b;
    }
    printf("model %s: %d layers, hidden %lld, %d experts, vocab %lld, weights %s, %.1f MB weights, load %.2f s, threads %d\n",
           argv[1], c->n_layers, (long long)c->hidden_size, c->n_experts, (long long)c->vocab_size,
           o.weights == TOME_WEIGHTS_INT8 ? "int8" : o.weights == TOME_WEIGHTS_INT4 ? "int4" : "native",
           (double)tome_model_weight_bytes(m) / 1e6, t_load, o.n_threads ? o.n_threads : tome_num_threads());
    printf("prefill %d tokens (ubatch %d): %.3f s, %.1f tokens/s (CPU time %.3f s: %.1f tokens per CPU-second)\n", P,
           U, best_pf, P / best_pf, cpu_pf, P / cpu_pf);
    printf("decode %d tokens: %.3f s, %.2f tokens/s (CPU time %.3f s: %.1f tokens per CPU-second)\n", N, best_dec,
           N / best_dec, cpu_dec, N / cpu_dec);
    tome_sampler_free(&smp);
    free(ids);
    free(logits);
    tome_model_free(m);
    return 0;
}
