/*
 * model/gpu_plan.c — host-side plans of the CUDA backend (gpu_plan.h):
 * packing weights into their GPU layout and the device-memory plan. Plain C,
 * no CUDA: tested on the CPU by tests/test_gpu_plan.c and used by
 * model/cuda/backend_cuda.cu (weights are packed on the host, copied once).
 */
#include "model/gpu_plan.h"

#include <string.h>

#include "core/error_impl.h"
#include "kvcache/kv_layout.h"

tome_dtype tome_gpu_wt_dtype(const tome_wt *w)
{
    switch (w->dtype) {
    case TOME_DT_BF16: return TOME_DT_BF16;
    case TOME_DT_Q8: return TOME_DT_Q8;
    case TOME_DT_Q4: return TOME_DT_Q4;
    default: return TOME_DT_F32; /* f32 stays, f16 widens exactly */
    }
}

size_t tome_gpu_wt_bytes(const tome_wt *w)
{
    switch (tome_gpu_wt_dtype(w)) {
    case TOME_DT_BF16: return (size_t)w->n_out * (size_t)w->n_in * 2;
    case TOME_DT_Q8: return tome_gpu_q_bytes(8, w->n_out, w->n_in);
    case TOME_DT_Q4: return tome_gpu_q_bytes(4, w->n_out, w->n_in);
    default: return (size_t)w->n_out * (size_t)w->n_in * 4;
    }
}

tome_status tome_gpu_wt_pack(const tome_wt *w, void *dst)
{
    const int64_t n_out = w->n_out, n_in = w->n_in;
    const tome_dtype dt = tome_gpu_wt_dtype(w);
    if (dt == TOME_DT_Q8 || dt == TOME_DT_Q4) {
        if (w->layout != TOME_W_OUT_IN || n_in % TOME_QGROUP != 0)
            return tome_set_error(TOME_ERR_INVALID_ARG, "gpu pack: quantized [%lld][%lld] must be OUT_IN rows of %d-value blocks",
                                  (long long)n_out, (long long)n_in, TOME_QGROUP);
        const int bits = dt == TOME_DT_Q8 ? 8 : 4;
        const size_t nb = (size_t)(n_in / TOME_QGROUP);
        uint8_t *codes = dst;
        uint16_t *sc = (uint16_t *)(void *)((uint8_t *)dst + tome_gpu_q_scales_off(bits, n_out, n_in));
        memset(codes, 0, tome_gpu_q_scales_off(bits, n_out, n_in));
        for (int64_t r = 0; r < n_out; r++) {
            for (size_t b = 0; b < nb; b++) {
                size_t gi = (size_t)r * nb + b;
                if (bits == 8) {
                    const tome_block_q8 *q = (const tome_block_q8 *)w->data + gi;
                    sc[gi] = tome_gpu_f2h(q->d);
                    memcpy(codes + gi * TOME_QGROUP, q->q, TOME_QGROUP);
                } else {
                    const tome_block_q4 *q = (const tome_block_q4 *)w->data + gi;
                    sc[gi] = tome_gpu_f2h(q->d);
                    memcpy(codes + gi * (TOME_QGROUP / 2), q->q, TOME_QGROUP / 2);
                }
            }
        }
        return TOME_OK;
    }
    if (dt == TOME_DT_BF16) {
        uint16_t *o = dst;
        const uint16_t *s = w->data;
        if (w->layout == TOME_W_OUT_IN) {
            memcpy(o, s, (size_t)n_out * (size_t)n_in * 2);
        } else { /* [n_in][n_out] -> [n_out][n_in] */
            for (int64_t k = 0; k < n_in; k++)
                for (int64_t r = 0; r < n_out; r++) o[(size_t)r * (size_t)n_in + (size_t)k] = s[(size_t)k * (size_t)n_out + (size_t)r];
        }
        return TOME_OK;
    }
    float *o = dst;
    for (int64_t r = 0; r < n_out; r++) tome_wt_row_f32(w, r, o + (size_t)r * (size_t)n_in);
    return TOME_OK;
}

/* bytes of a [n_out][n_in] matrix in weights format wf on the GPU */
static uint64_t mat_bytes(tome_weights_format wf, int64_t n_out, int64_t n_in, int quant)
{
    if (!quant || wf == TOME_WEIGHTS_NATIVE || n_in % TOME_QGROUP != 0) return (uint64_t)n_out * (uint64_t)n_in * 2;
    return tome_gpu_q_bytes(wf == TOME_WEIGHTS_INT8 ? 8 : 4, n_out, n_in);
}

tome_status tome_gpu_plan_make(const tome_model_config_t *c, tome_weights_format wf, int kv_fmt, int64_t ctx,
                               int ubatch, uint64_t budget, tome_gpu_mem_plan *out)
{
    memset(out, 0, sizeof *out);
    if (ubatch <= 0) ubatch = 512;
    tome_kv_layout L;
    if (tome_kv_layout_init(&L, kv_fmt, TOME_KV_PAGE_TOKENS_DEFAULT, c->n_kv_heads, c->head_dim,
                            c->head_dim < TOME_KV_GROUP_DEFAULT ? c->head_dim : TOME_KV_GROUP_DEFAULT) != 0)
        return tome_set_error(TOME_ERR_INVALID_ARG, "gpu plan: KV format %d cannot hold %d heads x %d", kv_fmt,
                              c->n_kv_heads, c->head_dim);
    const int64_t H = c->hidden_size, Q = (int64_t)c->n_heads * c->head_dim,
                  KV = (int64_t)c->n_kv_heads * c->head_dim, E = c->n_experts, I = c->intermediate_size,
                  Im = c->intermediate_size_mlp, V = c->vocab_size;
    uint64_t wb = (uint64_t)V * (uint64_t)H * 2 + mat_bytes(wf, V, H, 1) + (uint64_t)H * 4; /* embed, lm_head, norm */
    for (int l = 0; l < c->n_layers; l++) {
        wb += (uint64_t)H * 8; /* two norms, f32 */
        wb += mat_bytes(wf, Q, H, 1) + 2 * mat_bytes(wf, KV, H, 1) + mat_bytes(wf, H, Q, 1);
        if (!c->is_moe[l]) {
            wb += 2 * mat_bytes(wf, Im, H, 1) + mat_bytes(wf, H, Im, 1);
        } else {
            uint64_t eb = (uint64_t)E * (mat_bytes(wf, 2 * I, H, 1) + mat_bytes(wf, H, I, 1));
            out->expert_bytes += eb;
            wb += eb + 2 * mat_bytes(wf, I, H, 1) + mat_bytes(wf, H, I, 1) + mat_bytes(wf, E, H, 0);
        }
        if (c->use_rope[l]) out->n_chunked++;
        else out->n_global++;
    }
    out->weight_bytes = wb;
    /* KV: sealed pages of T tokens; per-token bytes are page_bytes / T */
    out->kv_token_layer = (uint64_t)L.page_bytes / (uint64_t)L.page_tokens;
    out->kv_token_global = out->kv_token_layer * (uint64_t)out->n_global;
    int64_t window = c->attention_chunk_size > 0 ? c->attention_chunk_size : ctx;
    out->kv_chunked_bytes = out->kv_token_layer * (uint64_t)window * (uint64_t)out->n_chunked;
    /* scratch: x,h,o [ub][H], q,att [ub][Q], k,v [ub][KV], f1,f2 [ub][max(Im,2I)],
     * xin [ub*K][H], router [ub][E], logits [V], plus a 256 MiB dequantization
     * tile for the tensor-core GEMMs and the split-KV workspace */
    uint64_t ub = (uint64_t)ubatch, F = (uint64_t)(Im > 2 * I ? Im : 2 * I);
    out->scratch_bytes = 4 * ub * (3 * (uint64_t)H + 2 * (uint64_t)Q + 2 * (uint64_t)KV + 2 * F +
                                   (uint64_t)c->n_experts_per_tok * (uint64_t)H + (uint64_t)E) +
                         4 * (uint64_t)V + (256ull << 20) + (64ull << 20);
    uint64_t fixed = out->weight_bytes + out->scratch_bytes + out->kv_chunked_bytes;
    if (fixed > budget)
        return tome_set_error(TOME_ERR_LIMIT,
                              "gpu plan: weights (%llu MiB) + scratch (%llu MiB) + chunked KV (%llu MiB) exceed the %llu MiB budget",
                              (unsigned long long)(out->weight_bytes >> 20), (unsigned long long)(out->scratch_bytes >> 20),
                              (unsigned long long)(out->kv_chunked_bytes >> 20), (unsigned long long)(budget >> 20));
    uint64_t room = budget - fixed;
    out->max_ctx_gpu = out->kv_token_global ? (int64_t)(room / out->kv_token_global) : INT64_MAX;
    if (out->max_ctx_gpu > c->max_position_embeddings && c->max_position_embeddings > 0)
        out->max_ctx_gpu = c->max_position_embeddings;
    /* for ctx: keep whole global layers on the GPU while they fit, the rest in host RAM */
    uint64_t per_layer = out->kv_token_layer * (uint64_t)(ctx > 0 ? ctx : 0);
    for (int g = 0; g < out->n_global; g++) {
        if (out->kv_gpu_bytes + per_layer > room) break;
        out->kv_gpu_bytes += per_layer;
        out->global_on_gpu++;
    }
    out->kv_host_bytes = per_layer * (uint64_t)(out->n_global - out->global_on_gpu);
    out->gpu_total = fixed + out->kv_gpu_bytes;
    return TOME_OK;
}
