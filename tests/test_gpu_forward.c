/*
 * tests/test_gpu_forward.c — the device path of the forward pass, on the
 * CPU. A backend that fills the DEVICE slots of backend_impl.h with host
 * memory (an "emulated device") runs the model goldens through exactly the
 * code a GPU session runs in forward.c and moe.c: weights packed into the
 * GPU layouts of gpu_plan.h and read back through tome_gpu_q_get, experts
 * contiguous at the aligned stride, scratch sized by session_open_device
 * (malloc'd exactly, so ASan sees any overrun), positions read from
 * "device" memory, the device KV cache (rings for chunked layers), the
 * last-layer row compaction through `copy`, MoE routing + grouping plan +
 * gather / grouped GEMMs / combine as backend_cuda.cu does them, logits
 * coming down in chunks. Its logits must match the CPU backend's (1e-4
 * relative for bf16/f32 weights: only summation order differs; 5e-3 for
 * int8/int4, whose GPU scales are f16 roundings of the CPU's f32 scales)
 * and greedy tokens must agree.
 * What it cannot check is the CUDA kernels themselves
 * (tests/test_backend_cuda.c, on a GPU).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/backend_impl.h"
#include "model/forward_impl.h"
#include "model/gpu_plan.h"
#include "tests/tt.h"

static const tome_backend *g_cpu;

/* ------------------------------------------------------------ weights in GPU layouts */
static float wget(const tome_wt *w, int64_t r, int64_t k)
{
    switch (w->dtype) {
    case TOME_DT_Q8: return tome_gpu_q_get(w->data, 8, w->n_out, w->n_in, r, k);
    case TOME_DT_Q4: return tome_gpu_q_get(w->data, 4, w->n_out, w->n_in, r, k);
    case TOME_DT_BF16: return tome_bf16_to_f32(((const uint16_t *)w->data)[r * w->n_in + k]);
    default: return ((const float *)w->data)[r * w->n_in + k];
    }
}

static size_t stride_of(const tome_wt *w) /* as backend_cuda.cu's dev_wt_bytes */
{
    size_t b;
    switch (w->dtype) {
    case TOME_DT_BF16: b = (size_t)w->n_out * (size_t)w->n_in * 2; break;
    case TOME_DT_Q8: b = tome_gpu_q_bytes(8, w->n_out, w->n_in); break;
    case TOME_DT_Q4: b = tome_gpu_q_bytes(4, w->n_out, w->n_in); break;
    default: b = (size_t)w->n_out * (size_t)w->n_in * 4; break;
    }
    return tome_gpu_align(b);
}

/* y[r][j] = x[r]·W[j] for rows r of [r0, r1), y rows ldy apart */
static void mm_rows(const tome_wt *w, const float *x, size_t ldx, int64_t r0, int64_t r1, float *y, size_t ldy)
{
    float *row = malloc((size_t)w->n_in * sizeof(float));
    for (int64_t j = 0; row && j < w->n_out; j++) {
        for (int64_t k = 0; k < w->n_in; k++) row[k] = wget(w, j, k);
        for (int64_t i = r0; i < r1; i++) {
            float acc = 0;
            for (int64_t k = 0; k < w->n_in; k++) acc += row[k] * x[(size_t)i * ldx + (size_t)k];
            y[(size_t)i * ldy + (size_t)j] = acc;
        }
    }
    free(row);
}

static tome_status em_matmul(const tome_wt *w, const float *x, size_t n, size_t ldx, float *y)
{
    mm_rows(w, x, ldx, 0, (int64_t)n, y, (size_t)w->n_out);
    return TOME_OK;
}

static tome_status em_embed(const tome_wt *w, const int32_t *ids, size_t n, float *out)
{
    for (size_t i = 0; i < n; i++)
        for (int64_t k = 0; k < w->n_in; k++) out[i * (size_t)w->n_in + (size_t)k] = wget(w, ids[i], k);
    return TOME_OK;
}

/* ------------------------------------------------------------ upload */
typedef struct em_priv {
    void **a;
    size_t n;
} em_priv;

static void *keep(em_priv *pv, size_t bytes)
{
    void *p = aligned_alloc(TOME_GPU_ALIGN, tome_gpu_align(bytes ? bytes : 1));
    void **na = realloc(pv->a, (pv->n + 1) * sizeof *na);
    if (!p || !na) {
        free(p);
        if (na) pv->a = na;
        return NULL;
    }
    pv->a = na;
    pv->a[pv->n++] = p;
    return p;
}

static tome_status put(em_priv *pv, const tome_wt *w, uint8_t *dst, tome_wt *dv)
{
    TOME_FORWARD(tome_gpu_wt_pack(w, dst));
    *dv = (tome_wt){.dtype = tome_gpu_wt_dtype(w), .layout = TOME_W_OUT_IN, .n_out = w->n_out, .n_in = w->n_in, .data = dst};
    (void)pv;
    return TOME_OK;
}

static tome_status one(em_priv *pv, const tome_wt *w, tome_wt *dv)
{
    uint8_t *d = keep(pv, tome_gpu_wt_bytes(w));
    if (!d) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    return put(pv, w, d, dv);
}

static tome_status vec(em_priv *pv, const float *v, size_t n, float **out)
{
    *out = keep(pv, n * sizeof(float));
    if (!*out) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    memcpy(*out, v, n * sizeof(float));
    return TOME_OK;
}

static tome_status experts(em_priv *pv, const tome_wt *hw, int E, tome_wt *dv)
{
    size_t es = tome_gpu_align(tome_gpu_wt_bytes(&hw[0]));
    uint8_t *d = keep(pv, es * (size_t)E);
    if (!d) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    for (int e = 0; e < E; e++) TOME_FORWARD(put(pv, &hw[e], d + (size_t)e * es, &dv[e]));
    return TOME_OK;
}

static void em_release(tome_model_t *m)
{
    tome_dev_model *dm = m->dev;
    if (!dm) return;
    em_priv *pv = dm->priv;
    for (size_t i = 0; pv && i < pv->n; i++) free(pv->a[i]);
    if (pv) free(pv->a);
    free(pv);
    for (int l = 0; dm->layers && l < m->cfg.n_layers; l++) free(dm->layers[l].exp_gate);
    free(dm->layers);
    free(dm);
    m->dev = NULL;
}

static tome_status em_upload(tome_model_t *m)
{
    const tome_model_config_t *c = &m->cfg;
    tome_dev_model *dm = calloc(1, sizeof *dm);
    if (!dm) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    m->dev = dm;
    dm->priv = calloc(1, sizeof(em_priv));
    dm->layers = calloc((size_t)c->n_layers, sizeof *dm->layers);
    if (!dm->priv || !dm->layers) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    em_priv *pv = dm->priv;
    const size_t H = (size_t)c->hidden_size;
    TOME_FORWARD(one(pv, &m->embed, &dm->embed));
    TOME_FORWARD(one(pv, &m->lm_head, &dm->lm_head));
    TOME_FORWARD(vec(pv, m->final_norm, H, &dm->final_norm));
    TOME_FORWARD(vec(pv, m->inv_freq, (size_t)c->head_dim / 2, &dm->inv_freq));
    for (int l = 0; l < c->n_layers; l++) {
        const tome_layer_w *L = &m->layers[l];
        tome_layer_w *D = &dm->layers[l];
        TOME_FORWARD(vec(pv, L->attn_norm, H, &D->attn_norm));
        TOME_FORWARD(vec(pv, L->ffn_norm, H, &D->ffn_norm));
        const tome_wt *src[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->gate, &L->up, &L->down};
        tome_wt *dst[] = {&D->wq, &D->wk, &D->wv, &D->wo, &D->gate, &D->up, &D->down};
        for (int i = 0; i < 7; i++) TOME_FORWARD(one(pv, src[i], dst[i]));
        if (!c->is_moe[l]) continue;
        TOME_FORWARD(one(pv, &L->router, &D->router));
        D->exp_gate = calloc((size_t)c->n_experts * 2, sizeof(tome_wt));
        if (!D->exp_gate) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
        D->exp_down = D->exp_gate + c->n_experts;
        TOME_FORWARD(experts(pv, L->exp_gate, c->n_experts, D->exp_gate));
        TOME_FORWARD(experts(pv, L->exp_down, c->n_experts, D->exp_down));
    }
    return TOME_OK;
}

/* ------------------------------------------------------------ memory */
static tome_status em_alloc(void **p, size_t bytes)
{
    *p = malloc(bytes ? bytes : 1);
    return *p ? TOME_OK : tome_set_error(TOME_ERR_NOMEM, "out of memory");
}
static tome_status em_upload_buf(void *d, const void *s, size_t n)
{
    memcpy(d, s, n);
    return TOME_OK;
}
static void em_copy(void *d, const void *s, size_t n) { memmove(d, s, n); }
static tome_status em_sync(void) { return TOME_OK; }

/* ------------------------------------------------------------ KV + attention */
typedef struct em_kv {
    int n_layers, kvd;
    int64_t window[TOME_MAX_LAYERS];
    float *k[TOME_MAX_LAYERS], *v[TOME_MAX_LAYERS];
    int64_t pos0, n;
} em_kv;

static void em_kv_free(void *p)
{
    em_kv *kv = p;
    if (!kv) return;
    for (int l = 0; l < kv->n_layers; l++) free(kv->k[l]), free(kv->v[l]);
    free(kv);
}

static tome_status em_kv_open(const tome_kv_params *p, void **out)
{
    em_kv *kv = calloc(1, sizeof *kv);
    if (!kv) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    kv->n_layers = p->n_layers;
    kv->kvd = p->n_kv_heads * p->head_dim;
    for (int l = 0; l < p->n_layers; l++) {
        int64_t w = p->window ? p->window[l] : 0;
        kv->window[l] = w > 0 && w < p->max_tokens ? w : 0;
        size_t rows = (size_t)(kv->window[l] ? kv->window[l] : p->max_tokens);
        kv->k[l] = malloc(rows * (size_t)kv->kvd * sizeof(float));
        kv->v[l] = malloc(rows * (size_t)kv->kvd * sizeof(float));
        if (!kv->k[l] || !kv->v[l]) {
            em_kv_free(kv);
            return tome_set_error(TOME_ERR_NOMEM, "out of memory");
        }
    }
    *out = kv;
    return TOME_OK;
}

static void em_kv_seek(void *p, int64_t pos0, size_t n)
{
    em_kv *kv = p;
    kv->pos0 = pos0, kv->n = (int64_t)n;
}

static tome_status em_kv_write(void *p, int l, const int64_t *pos, size_t n, const float *k, const float *v)
{
    em_kv *kv = p;
    for (size_t i = 0; i < n; i++) {
        TT_CHECK(pos[i] >= kv->pos0 && pos[i] < kv->pos0 + kv->n); /* kv_seek saw this micro-batch */
        int64_t slot = kv->window[l] ? pos[i] % kv->window[l] : pos[i];
        memcpy(kv->k[l] + slot * kv->kvd, k + i * (size_t)kv->kvd, (size_t)kv->kvd * sizeof(float));
        memcpy(kv->v[l] + slot * kv->kvd, v + i * (size_t)kv->kvd, (size_t)kv->kvd * sizeof(float));
    }
    return TOME_OK;
}

static tome_status em_attention(void *pkv, const tome_attn_params *p)
{
    em_kv *kv = pkv;
    const int hd = p->head_dim, rep = p->n_heads / p->n_kv_heads, l = p->layer;
    const float scale = p->scale > 0 ? p->scale : 1.0f / sqrtf((float)hd);
    for (size_t i = 0; i < p->n_q; i++) {
        const int64_t pos = p->q_pos[i], lo = p->chunk > 0 ? pos / p->chunk * p->chunk : 0;
        for (int h = 0; h < p->n_heads; h++) {
            const float *q = p->q + i * p->q_stride + (size_t)h * (size_t)hd;
            float *o = p->out + i * p->out_stride + (size_t)h * (size_t)hd;
            double m = -INFINITY, sum = 0;
            for (int64_t j = lo; j <= pos; j++) {
                int64_t slot = kv->window[l] ? j % kv->window[l] : j;
                const float *k = kv->k[l] + slot * kv->kvd + (h / rep) * hd;
                double d = 0;
                for (int t = 0; t < hd; t++) d += (double)q[t] * k[t];
                if (d * scale > m) m = d * scale;
            }
            double acc[256] = {0};
            for (int64_t j = lo; j <= pos; j++) {
                int64_t slot = kv->window[l] ? j % kv->window[l] : j;
                const float *k = kv->k[l] + slot * kv->kvd + (h / rep) * hd, *v = kv->v[l] + slot * kv->kvd + (h / rep) * hd;
                double d = 0;
                for (int t = 0; t < hd; t++) d += (double)q[t] * k[t];
                double e = exp(d * scale - m);
                sum += e;
                for (int t = 0; t < hd; t++) acc[t] += e * v[t];
            }
            for (int t = 0; t < hd; t++) o[t] = (float)(acc[t] / sum);
        }
    }
    return TOME_OK;
}

static void em_temp_scale(float *q, size_t n, size_t dim, const int64_t *pos, float fs, float as)
{
    for (size_t i = 0; i < n; i++) {
        float s = log1pf(floorf(((float)pos[i] + 1.0f) / fs)) * as + 1.0f;
        for (size_t d = 0; d < dim; d++) q[i * dim + d] *= s;
    }
}

/* ------------------------------------------------------------ MoE, as cu_moe */
static void grouped(const tome_wt *w0, int E, const float *x, int64_t ldx, float *y, int64_t ldy, const int32_t *off)
{
    const size_t es = stride_of(w0);
    for (int e = 0; e < E; e++) {
        tome_wt we = *w0;
        we.data = (const uint8_t *)w0->data + (size_t)e * es;
        if (off[e + 1] > off[e]) mm_rows(&we, x, (size_t)ldx, off[e], off[e + 1], y, (size_t)ldy);
    }
}

static tome_status em_moe(const tome_moe_args *a)
{
    const int64_t n = (int64_t)a->n, nk = n * a->K, H = a->H, I = a->I;
    for (int64_t i = 0; i < n; i++) tome_moe_route(a->router + i * a->E, a->E, a->K, a->sel + i * a->K, a->score + i * a->K);
    TT_CHECK(tome_moe_plan(a->sel, (int32_t)nk, a->E, a->plan, a->plan + a->E + 1, a->order, a->where) >= 0);
    for (int64_t r = 0; r < nk; r++)
        for (int64_t d = 0; d < H; d++) a->xin[r * H + d] = a->h[(a->order[r] / a->K) * H + d] * a->score[a->order[r]];
    grouped(&a->L->exp_gate[0], a->E, a->xin, H, a->f1, 2 * I, a->plan);
    for (int64_t r = 0; r < nk; r++)
        for (int64_t c = 0; c < I; c++) {
            float g = a->f1[r * 2 * I + c], u = a->f1[r * 2 * I + I + c];
            a->f2[r * I + c] = g / (1.0f + expf(-g)) * u;
        }
    grouped(&a->L->exp_down[0], a->E, a->f2, I, a->xin, H, a->plan);
    for (int64_t i = 0; i < n; i++)
        for (int64_t d = 0; d < H; d++)
            for (int j = 0; j < a->K; j++) a->out[i * H + d] += a->xin[(int64_t)a->where[i * a->K + j] * H + d];
    return TOME_OK;
}

static tome_backend g_em;

static void init_em(void)
{
    g_cpu = tome_backend_cpu();
    g_em = *g_cpu; /* host math: rmsnorm, rope, swiglu, add, scale_rows */
    g_em.name = "emulated-device";
    g_em.matmul = em_matmul;
    g_em.embed = em_embed;
    g_em.rope_qknorm = NULL;
    g_em.model_upload = em_upload;
    g_em.model_release = em_release;
    g_em.buf_alloc = em_alloc;
    g_em.buf_free = free;
    g_em.upload = em_upload_buf;
    g_em.download = em_upload_buf;
    g_em.copy = em_copy;
    g_em.sync = em_sync;
    g_em.kv_open = em_kv_open;
    g_em.kv_free = em_kv_free;
    g_em.kv_seek = em_kv_seek;
    g_em.kv_write = em_kv_write;
    g_em.attention_dev = em_attention;
    g_em.temp_scale = em_temp_scale;
    g_em.moe = em_moe;
}

/* ------------------------------------------------------------ tests */
static float *logits_of(tome_model_t *m, const int32_t *ids, size_t n, int ubatch, int all)
{
    tome_session_t *s = NULL;
    TT_OK(tome_session_open(m, 256, ubatch, &s));
    if (!s) return NULL;
    size_t V = (size_t)m->cfg.vocab_size;
    float *lg = malloc((all ? n : 1) * V * sizeof(float));
    TT_OK(tome_session_eval(s, ids, n, all, lg));
    tome_session_free(s);
    return lg;
}

static void check(const char *name, tome_weights_format wf)
{
    char rel[256];
    snprintf(rel, sizeof rel, "tests/golden/model/%s", name);
    tome_model_opts o = {.weights = wf, .n_threads = 1};
    tome_model_t *cpu = NULL, *dev = NULL;
    TT_OK(tome_model_open(tt_source_path(rel), &o, &cpu));
    TT_OK(tome_model_open(tt_source_path(rel), &o, &dev));
    if (!cpu || !dev) {
        tome_model_free(cpu), tome_model_free(dev);
        return;
    }
    dev->be = &g_em;
    TT_OK(g_em.model_upload(dev));
    const size_t V = (size_t)cpu->cfg.vocab_size, n = 24;
    int32_t ids[24];
    for (size_t i = 0; i < n; i++) ids[i] = (int32_t)((i * 37 + 11) % V);
    float *ref = logits_of(cpu, ids, n, 512, 1);
    double amax = 0;
    for (size_t k = 0; ref && k < n * V; k++) amax = fmax(amax, fabs(ref[k]));
    const int ub[] = {512, 5, 1};
    const double tol = wf == TOME_WEIGHTS_INT8 || wf == TOME_WEIGHTS_INT4 ? 5e-3 : 1e-4;
    for (size_t u = 0; ref && u < 3; u++) {
        float *lg = logits_of(dev, ids, n, ub[u], 1);
        double err = 0;
        for (size_t k = 0; lg && k < n * V; k++) err = fmax(err, fabs((double)lg[k] - ref[k]));
        err /= amax;
        printf("  %s wf %d ubatch %d: device path vs cpu %.3g\n", name, (int)wf, ub[u], err);
        if (!(err <= tol)) tt_fail(__FILE__, __LINE__, "%s wf %d ubatch %d: relative error %g", name, (int)wf, ub[u], err);
        free(lg);
    }
    /* last position only: the last layer drops the other rows (copy slot) */
    float *a = logits_of(cpu, ids, n, 512, 0), *b = logits_of(dev, ids, n, 512, 0);
    double err = 0;
    for (size_t k = 0; a && b && k < V; k++) err = fmax(err, fabs((double)a[k] - b[k]));
    if (!(err / amax <= tol)) tt_fail(__FILE__, __LINE__, "%s: last-row logits differ by %g", name, err / amax);
    free(a), free(b), free(ref);
    /* 32 greedy tokens */
    int32_t out[2][32];
    tome_model_t *ms[2] = {cpu, dev};
    for (int w = 0; w < 2; w++) {
        tome_session_t *s = NULL;
        TT_OK(tome_session_open(ms[w], 256, 0, &s));
        if (!s) break;
        float *lg = malloc(V * sizeof(float));
        tome_sampler smp;
        tome_sampler_params sp = {.temperature = 0};
        tome_sampler_init(&smp, &sp);
        TT_OK(tome_session_eval(s, ids, 8, 0, lg));
        for (int i = 0; i < 32; i++) {
            TT_OK(tome_sampler_pick(&smp, lg, V, &out[w][i]));
            TT_OK(tome_session_eval(s, &out[w][i], 1, 0, lg));
        }
        tome_sampler_free(&smp);
        free(lg);
        tome_session_free(s);
    }
    int same = 0;
    while (same < 32 && out[0][same] == out[1][same]) same++;
    if (same != 32) tt_fail(__FILE__, __LINE__, "%s: greedy tokens differ at step %d", name, same);
    tome_model_free(cpu);
    tome_model_free(dev);
}

static void test_device_path(void)
{
    check("chunked_gqa", TOME_WEIGHTS_NATIVE);
    check("chunked_gqa", TOME_WEIGHTS_INT8);
    check("chunked_gqa", TOME_WEIGHTS_INT4);
    check("mm_wrapper", TOME_WEIGHTS_INT4);
    check("dense_shard", TOME_WEIGHTS_NATIVE);
}

int main(void)
{
    init_em();
    TT_RUN(test_device_path);
    return tt_finish();
}
