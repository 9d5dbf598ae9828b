/*
 * model/backend_impl.h — the table of operations the forward pass is written
 * against (ggml-style). backend_cpu.c is the reference; the CUDA backend
 * (model/cuda/backend_cuda.cu, issue 8) is a second table tested against it
 * (tests/test_backend_cuda.c). Slots marked OPTIONAL may be NULL: the
 * forward pass then composes them from required slots.
 *
 * All activations are f32 row-major [rows][cols]. Weight matrices are tome_wt
 * views (model_impl.h) in any dtype; `matmul` computes y = x · Wᵀ in the
 * nn.Linear sense whatever the stored layout (OUT_IN or IN_OUT).
 *
 * Memory spaces. Every pointer a slot takes lives in the backend's memory:
 * host memory for the CPU, device memory for CUDA. A backend whose memory is
 * not the host's sets the DEVICE slots below (the CPU leaves them NULL, and
 * forward.c then runs exactly the code it always ran — bit-identical). With
 * a device backend forward.c keeps the whole layer stack resident:
 *   - weights are uploaded once by model_upload into m->dev (tome_dev_model:
 *     the same tome_wt / tome_layer_w views, data pointing at device memory
 *     in the GPU layouts of gpu_plan.h; a layer's experts are contiguous,
 *     expert e at exp_gate[0].data + e * (bytes of one expert));
 *   - the session's scratch (x, h, q, k, v, …) is allocated with buf_alloc;
 *   - per micro-batch only the token ids and their positions go up (upload)
 *     and only the logits rows asked for come down (download);
 *   - the KV cache is the backend's (kv_open / kv_write / attention_dev),
 *     positions read from device memory so a decode step can be captured
 *     once as a graph (graph_begin / graph_end) and replayed (graph_launch).
 * Slots returning void queue work and cannot fail on the CPU; a device
 * backend records the first failure of such a slot (the CUDA call, file and
 * line) and returns it from `sync`, which forward.c calls once per
 * micro-batch.
 */
#ifndef TOME_BACKEND_IMPL_H
#define TOME_BACKEND_IMPL_H

#include "attention/attention_impl.h"
#include "model/model_impl.h"

struct tome_moe_args;

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

    /* ---- OPTIONAL, DEVICE backends only (NULL on the CPU; see the top) ---- */
    /* m->dev = device copies of m's weights (formats of gpu_plan.h) */
    tome_status (*model_upload)(tome_model_t *m);
    void (*model_release)(tome_model_t *m);
    tome_status (*buf_alloc)(void **p, size_t bytes);
    void (*buf_free)(void *p); /* NULL ok */
    tome_status (*upload)(void *dst, const void *src_host, size_t bytes);
    tome_status (*download)(void *dst_host, const void *src, size_t bytes);
    void (*copy)(void *dst, const void *src, size_t bytes); /* within the backend's memory */
    /* waits for the queued work; the first error of the void slots since the last sync */
    tome_status (*sync)(void);
    /* the backend's KV cache: p as for tome_kv_open (n_seqs 1) */
    tome_status (*kv_open)(const tome_kv_params *p, void **kv);
    void (*kv_free)(void *kv);
    /* the host's view of the micro-batch about to run: positions pos0 .. pos0+n-1
     * (called outside any graph capture; kernels still read device positions) */
    void (*kv_seek)(void *kv, int64_t pos0, size_t n);
    /* rows k[i], v[i] ([n][n_kv_heads*head_dim]) at positions pos[i] (backend memory) */
    tome_status (*kv_write)(void *kv, int layer, const int64_t *pos, size_t n, const float *k, const float *v);
    /* attention over the backend's cache (p->kv is ignored) */
    tome_status (*attention_dev)(void *kv, const tome_attn_params *p);
    /* q[i][:] *= log1p(floor((pos[i]+1)/floor_scale)) * attn_scale + 1 (temperature tuning) */
    void (*temp_scale)(float *q, size_t n, size_t dim, const int64_t *pos, float floor_scale, float attn_scale);
    /* routed experts of one MoE layer, added into out (tome_moe_args) */
    tome_status (*moe)(const struct tome_moe_args *a);
    /* decode graphs: everything queued between begin and end is recorded,
     * not run; launch replays it (device inputs updated in place first) */
    tome_status (*graph_begin)(void);
    tome_status (*graph_end)(void **graph);
    tome_status (*graph_launch)(void *graph);
    void (*graph_free)(void *graph); /* NULL ok */
} tome_backend;

/* One MoE layer's routed experts on a device backend. Pointers in the
 * backend's memory; scratch sized for n_tokens * K routed rows. */
typedef struct tome_moe_args {
    const tome_layer_w *L;  /* device views (experts contiguous)            */
    const float *h;         /* [n][H] FFN input                              */
    const float *router;    /* [n][E] router logits                          */
    size_t n;
    int64_t H, I;
    int E, K;
    int32_t *sel, *order, *where, *plan; /* [n*K] x3, plan: [2E+1]         */
    float *score;           /* [n*K]                                         */
    float *xin;             /* [n*K][max(H, I)]                               */
    float *f1;              /* [n*K][2I]                                     */
    float *f2;              /* [n*K][I]                                      */
    float *out;             /* [n][H], += Σ experts                           */
} tome_moe_args;

/* Device-resident copies of a model's weights (backend_impl.h, top). */
typedef struct tome_dev_model {
    tome_wt embed, lm_head;
    float *final_norm;     /* [H]             */
    float *inv_freq;       /* [head_dim/2]    */
    tome_layer_w *layers;  /* host array of device views */
    void *priv;            /* the backend's bookkeeping  */
} tome_dev_model;

const tome_backend *tome_backend_cpu(void);
/* The CUDA backend (model/cuda/backend_cuda.cu), initialised on device 0;
 * NULL with the reason in tome_last_error() when the build has no CUDA
 * (model/backend_cuda_stub.c) or no device is usable. */
const tome_backend *tome_backend_cuda(void);
/* Called once per model: n_threads for the CPU kernels. */
void tome_backend_cpu_set_threads(int n_threads);

#endif /* TOME_BACKEND_IMPL_H */
