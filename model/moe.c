/*
 * model/moe.c — the feed-forward block: dense SwiGLU MLP, or Llama 4's MoE.
 *
 * MoE (transformers' Llama4TextMoe): router logits = h · Wrᵀ; per token the
 * top-k experts (first index wins a tie); the sigmoid of each selected logit
 * scales the expert's *input* (not its output); every expert is a SwiGLU
 * whose gate and up projections are fused (H → 2I, gate columns first); the
 * shared expert (a SwiGLU MLP of size I) sees the unscaled input; the block's
 * output is shared + Σ experts. Tokens are grouped by expert (gather, one
 * matmul per expert over its tokens, scatter-add back), so each expert's
 * weights are read once per micro-batch.
 *
 * On a device backend (backend_impl.h) the routed part is one `moe` call
 * on the device: routing, the grouping plan, gather, grouped GEMMs and the
 * combine all stay in device memory (model/cuda/backend_cuda.cu).
 */
#include "model/forward_impl.h"

#include <math.h>
#include <string.h>

/* out[n][H] = down(silu(gate(h)) * up(h)) */
static tome_status mlp(const tome_backend *be, const tome_wt *gate, const tome_wt *up, const tome_wt *down,
                       const float *h, size_t n, size_t H, float *g, float *u, float *out)
{
    TOME_FORWARD(be->matmul(gate, h, n, H, g));
    TOME_FORWARD(be->matmul(up, h, n, H, u));
    be->swiglu(g, u, n * (size_t)gate->n_out);
    return be->matmul(down, g, n, (size_t)gate->n_out, out);
}

tome_status tome_ffn_forward(tome_session_t *s, int l, const float *h, size_t n, float *out)
{
    const tome_model_t *m = s->m;
    const tome_model_config_t *c = &m->cfg;
    const tome_backend *be = m->be;
    const tome_layer_w *L = s->on_device ? &m->dev->layers[l] : &m->layers[l];
    const size_t H = (size_t)c->hidden_size;
    TOME_FORWARD(mlp(be, &L->gate, &L->up, &L->down, h, n, H, s->f1, s->f2, out));
    if (!c->is_moe[l]) return TOME_OK;

    const int E = c->n_experts, K = c->n_experts_per_tok;
    const size_t I = (size_t)c->intermediate_size;
    TOME_FORWARD(be->matmul(&L->router, h, n, H, s->router));
    if (s->on_device) {
        const size_t nk = n * (size_t)K;
        tome_moe_args a = {.L = L, .h = h, .router = s->router, .n = n, .H = (int64_t)H, .I = (int64_t)I, .E = E,
                           .K = K, .sel = s->sel, .order = s->rows, .where = s->rows + nk, .plan = s->dplan,
                           .score = s->score, .xin = s->xin, .f1 = s->f1, .f2 = s->f2, .out = out};
        return be->moe(&a);
    }
    /* top-k per token: sel[i*K + j] = expert, score[i*K + j] = sigmoid(logit) */
    for (size_t i = 0; i < n; i++) {
        const float *r = s->router + i * (size_t)E;
        for (int j = 0; j < K; j++) {
            int best = -1;
            for (int e = 0; e < E; e++) {
                int taken = 0;
                for (int t = 0; t < j; t++) taken |= s->sel[i * (size_t)K + (size_t)t] == e;
                if (!taken && (best < 0 || r[e] > r[best])) best = e;
            }
            s->sel[i * (size_t)K + (size_t)j] = best;
            s->score[i * (size_t)K + (size_t)j] = 1.0f / (1.0f + expf(-r[best]));
        }
    }
    for (int e = 0; e < E; e++) {
        size_t cnt = 0;
        for (size_t i = 0; i < n * (size_t)K; i++) {
            if (s->sel[i] != e) continue;
            size_t tok = i / (size_t)K;
            const float *src = h + tok * H;
            float *dst = s->xin + cnt * H, sc = s->score[i];
            for (size_t d = 0; d < H; d++) dst[d] = src[d] * sc;
            s->rows[cnt++] = (int32_t)tok;
        }
        if (!cnt) continue;
        TOME_FORWARD(be->matmul(&L->exp_gate[e], s->xin, cnt, H, s->f1)); /* [cnt][2I] */
        for (size_t j = 0; j < cnt; j++) {
            memcpy(s->f2 + j * I, s->f1 + j * 2 * I, I * sizeof(float));
            be->swiglu(s->f2 + j * I, s->f1 + j * 2 * I + I, I);
        }
        TOME_FORWARD(be->matmul(&L->exp_down[e], s->f2, cnt, I, s->xin)); /* [cnt][H] */
        for (size_t j = 0; j < cnt; j++) be->add(out + (size_t)s->rows[j] * H, s->xin + j * H, H);
    }
    return TOME_OK;
}
