/*
 * model/backend_impl.h — the table of operations the forward pass is written
 * against (ggml-style). backend_cpu.c is the reference; a CUDA backend
 * (issue 8) will be a second table tested against it. Slots marked OPTIONAL
 * may be NULL: the forward pass then composes them from required slots.
 *
 * All activations are f32 row-major [rows][cols]. Weight matrices are tome_wt
 * views (model_impl.h) in any dtype; `matmul` computes y = x · Wᵀ in the
 * nn.Linear sense whatever the stored layout (OUT_IN or IN_OUT).
 */
#ifndef TOME_BACKEND_IMPL_H
#define TOME_BACKEND_IMPL_H

#include "attention/attention_impl.h"
#include "model/model_impl.h"

typedef struct tome_backend {
    const char *name;
    /* y[n][w->n_out] = x[n][w->n_in] · Wᵀ  (rows of x are ldx floats apart) */
    tome_status (*matmul)(const tome_wt *w, const float *x, size_t n, size_t ldx, float *y);
    /* y[i] = x[i] / rms(x[i]) (* weight when weight != NULL), rows of dim;
     * weight == NULL is Llama 4's QK-norm (L2Norm without weight). In place ok. */
    void (*rmsnorm)(const float *x, size_t n_rows, size_t dim, const float *weight, float eps, float *y);
    /* RoPE on interleaved pairs (x[2i], x[2i+1]) as complex multiplication by
     * exp(i * pos * inv_freq[i]); x: [n][n_heads*head_dim], in place. */
    void (*rope)(float *x, size_t n, int n_heads, int head_dim, const int64_t *pos, const float *inv_freq);
    /* x[i][:] *= s[i] */
    void (*scale_rows)(float *x, size_t n, size_t dim, const float *s);
    /* g = silu(g) * u, elementwise over n values */
    void (*swiglu)(float *g, const float *u, size_t n);
    /* out[i] = embedding row ids[i] (f32) */
    tome_status (*embed)(const tome_wt *w, const int32_t *ids, size_t n, float *out);
    /* y += x over n values */
    void (*add)(float *y, const float *x, size_t n);
    /* attention over the KV cache (attention_impl.h) */
    tome_status (*attention)(const tome_attn_params *p);
    /* OPTIONAL: fused RoPE + QK-norm; NULL = rope then rmsnorm(weight NULL) */
    void (*rope_qknorm)(float *x, size_t n, int n_heads, int head_dim, const int64_t *pos, const float *inv_freq,
                        float eps);
} tome_backend;

const tome_backend *tome_backend_cpu(void);
/* Called once per model: n_threads for the CPU kernels. */
void tome_backend_cpu_set_threads(int n_threads);

#endif /* TOME_BACKEND_IMPL_H */
