/*
 * model/weights.c — binds checkpoint tensors to the model's weight slots.
 *
 * Names follow transformers' Llama4ForCausalLM ("model.layers.N.…",
 * "lm_head.weight"), optionally under "language_model." (the multimodal
 * checkpoint Scout ships; its vision tensors are never looked at). Every
 * tensor's shape is checked against the config before use; a missing tensor
 * or a wrong shape is TOME_ERR_FORMAT naming the tensor, its file and both
 * shapes.
 *
 * Storage: native weights (bf16/f16/f32) are views into the mapped files.
 * Norm vectors are converted to f32 (owned, tiny). With --weights int8|int4
 * every matmul weight whose input dimension is a multiple of TOME_QGROUP is
 * quantized on load into owned OUT_IN block rows (quant_impl.h); the router
 * and the embedding table stay native. The fused experts are split into one
 * view per expert: gate_up [E][H][2I] gives an IN_OUT matrix H → 2I (gate
 * columns first), down [E][I][H] an IN_OUT matrix I → H.
 *
 * Dummy weights (--load-format dummy) are generated deterministically from
 * the seed and the tensor name, bf16, std 0.02 (norms 1), no files read.
 */
#include "model/model_impl.h"

#include <stdlib.h>
#include <string.h>

#include "model/pool_impl.h"
#include "model/quant_impl.h"

static void *own(tome_model_t *m, size_t bytes)
{
    if (m->n_owned == m->cap_owned) {
        size_t nc = m->cap_owned ? 2 * m->cap_owned : 64;
        void **np = realloc(m->owned, nc * sizeof *np);
        if (!np) return NULL;
        m->owned = np;
        m->cap_owned = nc;
    }
    void *p = malloc(bytes ? bytes : 1);
    if (p) {
        m->owned[m->n_owned++] = p;
        m->owned_bytes += bytes;
    }
    return p;
}

void tome_weights_free(tome_model_t *m)
{
    for (size_t i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    m->owned = NULL;
    m->n_owned = m->cap_owned = 0;
    if (m->layers)
        for (int l = 0; l < m->cfg.n_layers; l++) free(m->layers[l].exp_gate);
    free(m->layers);
    m->layers = NULL;
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ULL;
    return h;
}

typedef struct binder {
    tome_model_t *m;
    const char *prefix;
    char name[512];
} binder;

/* Finds tensor `name` (after the prefix) with the expected shape, or makes a
 * dummy one. On success *data points at its elements, *dt is its dtype. */
static tome_status find(binder *b, const char *name, int ndim, const int64_t *shape, const void **data,
                        tome_dtype *dt, int norm)
{
    tome_model_t *m = b->m;
    snprintf(b->name, sizeof b->name, "%s%s", b->prefix, name);
    if (m->opts.load_dummy) {
        uint64_t numel = 1;
        for (int d = 0; d < ndim; d++) numel *= (uint64_t)shape[d];
        uint16_t *p = own(m, numel * 2);
        if (!p) return tome_set_error(TOME_ERR_NOMEM, "dummy weights: out of memory for '%s'", b->name);
        uint64_t s = m->opts.dummy_seed ^ hash_name(name);
        for (uint64_t i = 0; i < numel; i++) {
            if (norm) {
                p[i] = tome_f32_to_bf16(1.0f);
                continue;
            }
            /* sum of 4 uniforms: roughly normal, std 0.02 */
            double u = 0;
            for (int k = 0; k < 4; k++) u += (double)(splitmix(&s) >> 11) * (1.0 / 9007199254740992.0);
            p[i] = tome_f32_to_bf16((float)((u - 2.0) * 0.02 * 1.7320508));
        }
        *data = p;
        *dt = TOME_DT_BF16;
        return TOME_OK;
    }
    const tome_st_tensor *t = tome_st_find(&m->st, b->name);
    if (!t) return tome_set_error(TOME_ERR_FORMAT, "%s: tensor '%s' is missing", m->dir, b->name);
    int ok = t->ndim == ndim;
    for (int d = 0; ok && d < ndim; d++) ok = t->shape[d] == shape[d];
    if (!ok) {
        char have[128] = "", want[128] = "";
        size_t hl = 0, wl = 0;
        for (int d = 0; d < t->ndim; d++)
            hl += (size_t)snprintf(have + hl, sizeof have - hl, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
        for (int d = 0; d < ndim; d++)
            wl += (size_t)snprintf(want + wl, sizeof want - wl, "%s%lld", d ? ", " : "", (long long)shape[d]);
        return tome_set_error(TOME_ERR_FORMAT, "%s: tensor '%s' has shape [%s], the config needs [%s]",
                              m->st.paths[t->file], b->name, have, want);
    }
    *data = t->data;
    *dt = t->dtype;
    return TOME_OK;
}

static tome_status load_vec(binder *b, const char *name, int64_t n, float **out)
{
    const void *data = NULL;
    tome_dtype dt = TOME_DT_F32;
    int64_t shape[1] = {n};
    TOME_FORWARD(find(b, name, 1, shape, &data, &dt, 1));
    float *v = own(b->m, (size_t)n * sizeof(float));
    if (!v) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    tome_wt w = {.dtype = dt, .layout = TOME_W_OUT_IN, .n_out = 1, .n_in = n, .data = data};
    tome_wt_row_f32(&w, 0, v);
    *out = v;
    return TOME_OK;
}

typedef struct qjob {
    const tome_wt *w;
    uint8_t *q;
    size_t row_bytes;
    int q4, failed;
} qjob;

#define QROWS 32 /* output rows per quantization item */

/* Item = rows [r0, r0 + QROWS): for IN_OUT matrices the input rows are read
 * contiguously (QROWS columns at a time) and transposed in scratch, so the
 * strided column walk never touches one cache line per value. */
static void quant_row(void *vctx, size_t item, int tid)
{
    qjob *j = vctx;
    const tome_wt *w = j->w;
    const size_t n_in = (size_t)w->n_in, r0 = item * QROWS;
    const size_t cnt = (size_t)w->n_out - r0 < QROWS ? (size_t)w->n_out - r0 : QROWS;
    float *rows = tome_pool_scratch(tid, (QROWS * n_in + QROWS) * sizeof(float));
    if (!rows) {
        j->failed = 1;
        return;
    }
    if (w->layout == TOME_W_IN_OUT) {
        float *line = rows + QROWS * n_in;
        const size_t es = tome_dtype_size(w->dtype);
        for (size_t k = 0; k < n_in; k++) {
            /* columns r0..r0+cnt of row k of the stored [n_in][n_out] matrix */
            tome_wt piece = {.dtype = w->dtype, .layout = TOME_W_OUT_IN, .n_out = 1, .n_in = (int64_t)cnt,
                             .data = (const uint8_t *)w->data + (k * (size_t)w->n_out + r0) * es};
            tome_wt_row_f32(&piece, 0, line);
            for (size_t r = 0; r < cnt; r++) rows[r * n_in + k] = line[r];
        }
    } else {
        for (size_t r = 0; r < cnt; r++) tome_wt_row_f32(w, (int64_t)(r0 + r), rows + r * n_in);
    }
    for (size_t r = 0; r < cnt; r++) {
        uint8_t *dst = j->q + (r0 + r) * j->row_bytes;
        if (j->q4) tome_quant_q4_row(rows + r * n_in, n_in, (tome_block_q4 *)dst);
        else tome_quant_q8_row(rows + r * n_in, n_in, (tome_block_q8 *)dst);
    }
}

static tome_status quantize(tome_model_t *m, tome_wt *w)
{
    if (m->opts.weights == TOME_WEIGHTS_NATIVE || w->n_in % TOME_QGROUP != 0) return TOME_OK;
    int q4 = m->opts.weights == TOME_WEIGHTS_INT4;
    size_t blocks = (size_t)(w->n_in / TOME_QGROUP);
    size_t row_bytes = blocks * (q4 ? sizeof(tome_block_q4) : sizeof(tome_block_q8));
    uint8_t *q = own(m, row_bytes * (size_t)w->n_out);
    if (!q) return tome_set_error(TOME_ERR_NOMEM, "quantize: out of memory");
    qjob j = {.w = w, .q = q, .row_bytes = row_bytes, .q4 = q4};
    tome_pool_run(m->n_threads, (size_t)((w->n_out + QROWS - 1) / QROWS), quant_row, &j);
    if (j.failed) return tome_set_error(TOME_ERR_NOMEM, "quantize: out of memory");
    w->dtype = q4 ? TOME_DT_Q4 : TOME_DT_Q8;
    w->layout = TOME_W_OUT_IN;
    w->data = q;
    return TOME_OK;
}

/* nn.Linear weight [n_out][n_in]. */
static tome_status load_linear(binder *b, const char *name, int64_t n_out, int64_t n_in, int quant, tome_wt *w)
{
    int64_t shape[2] = {n_out, n_in};
    tome_dtype dt = TOME_DT_F32;
    const void *data = NULL;
    TOME_FORWARD(find(b, name, 2, shape, &data, &dt, 0));
    *w = (tome_wt){.dtype = dt, .layout = TOME_W_OUT_IN, .n_out = n_out, .n_in = n_in, .data = data};
    return quant ? quantize(b->m, w) : TOME_OK;
}

static tome_status load_layer(binder *b, int l)
{
    tome_model_t *m = b->m;
    const tome_model_config_t *c = &m->cfg;
    tome_layer_w *L = &m->layers[l];
    const int64_t H = c->hidden_size, Q = (int64_t)c->n_heads * c->head_dim, KV = (int64_t)c->n_kv_heads * c->head_dim;
    char n[256];
#define NM(fmt) (snprintf(n, sizeof n, "model.layers.%d." fmt, l), n)
    TOME_FORWARD(load_vec(b, NM("input_layernorm.weight"), H, &L->attn_norm));
    TOME_FORWARD(load_vec(b, NM("post_attention_layernorm.weight"), H, &L->ffn_norm));
    TOME_FORWARD(load_linear(b, NM("self_attn.q_proj.weight"), Q, H, 1, &L->wq));
    TOME_FORWARD(load_linear(b, NM("self_attn.k_proj.weight"), KV, H, 1, &L->wk));
    TOME_FORWARD(load_linear(b, NM("self_attn.v_proj.weight"), KV, H, 1, &L->wv));
    TOME_FORWARD(load_linear(b, NM("self_attn.o_proj.weight"), H, Q, 1, &L->wo));
    if (!c->is_moe[l]) {
        const int64_t I = c->intermediate_size_mlp;
        TOME_FORWARD(load_linear(b, NM("feed_forward.gate_proj.weight"), I, H, 1, &L->gate));
        TOME_FORWARD(load_linear(b, NM("feed_forward.up_proj.weight"), I, H, 1, &L->up));
        TOME_FORWARD(load_linear(b, NM("feed_forward.down_proj.weight"), H, I, 1, &L->down));
        return TOME_OK;
    }
    const int64_t I = c->intermediate_size, E = c->n_experts;
    TOME_FORWARD(load_linear(b, NM("feed_forward.shared_expert.gate_proj.weight"), I, H, 1, &L->gate));
    TOME_FORWARD(load_linear(b, NM("feed_forward.shared_expert.up_proj.weight"), I, H, 1, &L->up));
    TOME_FORWARD(load_linear(b, NM("feed_forward.shared_expert.down_proj.weight"), H, I, 1, &L->down));
    TOME_FORWARD(load_linear(b, NM("feed_forward.router.weight"), E, H, 0, &L->router));
    L->exp_gate = calloc((size_t)E * 2, sizeof(tome_wt));
    if (!L->exp_gate) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    L->exp_up = NULL; /* gate and up are fused: exp_gate[e] is H → 2I */
    L->exp_down = L->exp_gate + E;
    const void *gu = NULL, *dn = NULL;
    tome_dtype gdt = TOME_DT_F32, ddt = TOME_DT_F32;
    int64_t sgu[3] = {E, H, 2 * I}, sdn[3] = {E, I, H};
    TOME_FORWARD(find(b, NM("feed_forward.experts.gate_up_proj"), 3, sgu, &gu, &gdt, 0));
    TOME_FORWARD(find(b, NM("feed_forward.experts.down_proj"), 3, sdn, &dn, &ddt, 0));
#undef NM
    for (int64_t e = 0; e < E; e++) {
        L->exp_gate[e] = (tome_wt){.dtype = gdt, .layout = TOME_W_IN_OUT, .n_out = 2 * I, .n_in = H,
                                   .data = (const uint8_t *)gu + (size_t)(e * H * 2 * I) * tome_dtype_size(gdt)};
        L->exp_down[e] = (tome_wt){.dtype = ddt, .layout = TOME_W_IN_OUT, .n_out = H, .n_in = I,
                                   .data = (const uint8_t *)dn + (size_t)(e * I * H) * tome_dtype_size(ddt)};
        TOME_FORWARD(quantize(m, &L->exp_gate[e]));
        TOME_FORWARD(quantize(m, &L->exp_down[e]));
    }
    return TOME_OK;
}

tome_status tome_weights_load(tome_model_t *m)
{
    const tome_model_config_t *c = &m->cfg;
    binder b = {.m = m, .prefix = ""};
    if (!m->opts.load_dummy && !tome_st_find(&m->st, "model.embed_tokens.weight") &&
        tome_st_find(&m->st, "language_model.model.embed_tokens.weight"))
        b.prefix = "language_model.";
    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    if (!m->layers) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    const int64_t V = c->vocab_size, H = c->hidden_size;
    TOME_FORWARD(load_linear(&b, "model.embed_tokens.weight", V, H, 0, &m->embed));
    TOME_FORWARD(load_vec(&b, "model.norm.weight", H, &m->final_norm));
    for (int l = 0; l < c->n_layers; l++) TOME_FORWARD(load_layer(&b, l));
    snprintf(b.name, sizeof b.name, "%slm_head.weight", b.prefix);
    if (!m->opts.load_dummy && c->tie_word_embeddings && !tome_st_find(&m->st, b.name)) {
        m->lm_head = m->embed;
        TOME_FORWARD(quantize(m, &m->lm_head));
    } else {
        TOME_FORWARD(load_linear(&b, "lm_head.weight", V, H, 1, &m->lm_head));
    }
    return TOME_OK;
}
