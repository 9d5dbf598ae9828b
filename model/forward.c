/*
 * model/forward.c — opening a model and the forward pass (written once
 * against the backend table, backend_impl.h).
 *
 * Per micro-batch of n tokens at positions pos..pos+n-1 (one sequence):
 *   x = embed(ids)
 *   for each layer l:
 *     h = RMSNorm(x) · attn_norm
 *     q, k, v = h·Wqᵀ, h·Wkᵀ, h·Wvᵀ
 *     RoPE layer (use_rope[l]): q, k rotated (interleaved pairs), then
 *         QK-norm (L2 norm without weight, eps = rms_norm_eps) when use_qk_norm
 *     NoPE layer with temperature tuning: q *= log1p(floor((pos+1)/floor_scale))*attn_scale + 1
 *     K/V → cache; attention (chunked-causal on RoPE layers, causal on NoPE)
 *     x += attn·Woᵀ
 *     x += FFN(RMSNorm(x) · ffn_norm)        (moe.c: dense or MoE)
 *   logits = RMSNorm(x) · norm · lm_headᵀ    (only the rows asked for)
 * In the last layer the rows nobody needs are dropped right after their K/V
 * are written (their attention and FFN outputs would be thrown away).
 * Micro-batches never cross a multiple of attention_chunk_size, so a
 * chunked layer's cache only ever holds one chunk (kvcache_impl.h).
 *
 * Device backends (opts.device, backend_impl.h): the same code runs with
 * the weights of m->dev and the session's scratch in device memory; per
 * micro-batch the ids and positions go up, the logits rows come down, and
 * a one-token step with one logits row is captured once as a graph and
 * replayed (the positions it reads are device memory it re-reads).
 */
#include "model/forward_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

tome_status tome_model_open(const char *dir, const tome_model_opts *opts, tome_model_t **out)
{
    *out = NULL;
    tome_model_t *m = calloc(1, sizeof *m);
    if (!m) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    if (opts) m->opts = *opts;
    tome_status st = TOME_OK;
    m->dir = strdup(dir);
    if (!m->dir) {
        st = tome_set_error(TOME_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if ((st = tome_model_config_load(dir, &m->cfg)) != TOME_OK) goto fail;
    m->n_threads = m->opts.n_threads > 0 ? m->opts.n_threads : tome_num_threads();
    tome_backend_cpu_set_threads(m->n_threads);
    m->be = tome_backend_cpu();
    m->inv_freq = malloc((size_t)m->cfg.head_dim / 2 * sizeof(float));
    if (!m->inv_freq) {
        st = tome_set_error(TOME_ERR_NOMEM, "out of memory");
        goto fail;
    }
    tome_model_rope_inv_freq(&m->cfg, m->inv_freq);
    if (!m->opts.load_dummy) {
        if ((st = tome_st_open(dir, &m->st)) != TOME_OK) goto fail;
        for (int i = 0; i < m->st.n_files; i++) m->mapped_bytes += m->st.maps[i].len;
    }
    if ((st = tome_weights_load(m)) != TOME_OK) goto fail;
    if (m->opts.device == TOME_DEVICE_CUDA) {
        const tome_backend *be = tome_backend_cuda();
        if (!be) {
            char why[512];
            snprintf(why, sizeof why, "%s", tome_last_error());
            st = tome_set_error(TOME_ERR_UNSUPPORTED, "device cuda: %s", why);
            goto fail;
        }
        m->be = be;
        if ((st = be->model_upload(m)) != TOME_OK) goto fail;
    } else if (m->opts.device != TOME_DEVICE_CPU) {
        st = tome_set_error(TOME_ERR_INVALID_ARG, "unknown device %d", m->opts.device);
        goto fail;
    }
    *out = m;
    return TOME_OK;
fail:
    tome_model_free(m);
    return st;
}

void tome_model_free(tome_model_t *m)
{
    if (!m) return;
    if (m->dev && m->be && m->be->model_release) m->be->model_release(m);
    tome_weights_free(m);
    tome_st_close(&m->st);
    free(m->inv_freq);
    free(m->dir);
    free(m);
}

const tome_model_config_t *tome_model_get_config(const tome_model_t *m) { return &m->cfg; }

uint64_t tome_model_weight_bytes(const tome_model_t *m)
{
    /* quantized weights replace the mapped ones they were made from */
    return m->opts.weights != TOME_WEIGHTS_NATIVE || m->opts.load_dummy ? m->owned_bytes
                                                                         : m->mapped_bytes + m->owned_bytes;
}

int tome_model_is_eos(const tome_model_t *m, int32_t id)
{
    for (int i = 0; i < m->cfg.n_eos; i++)
        if (m->cfg.eos_token_ids[i] == id) return 1;
    return 0;
}

/* ------------------------------------------------------------ sessions */
void tome_session_free(tome_session_t *s)
{
    if (!s) return;
    tome_kv_free(s->kv);
    if (s->on_device) {
        const tome_backend *be = s->m->be;
        if (s->graph) be->graph_free(s->graph);
        if (s->dkv) be->kv_free(s->dkv);
        void *bufs[] = {s->x, s->h, s->q, s->k, s->v, s->att, s->o, s->f1, s->f2, s->xin, s->router,
                        s->score, s->sel, s->posv, s->tscale, s->dids, s->dplan, s->dlogits};
        for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) be->buf_free(bufs[i]);
        free(s->hpos);
        free(s);
        return;
    }
    free(s->x), free(s->h), free(s->q), free(s->k), free(s->v), free(s->att), free(s->o);
    free(s->f1), free(s->f2), free(s->xin), free(s->router), free(s->score), free(s->sel), free(s->rows);
    free(s->posv), free(s->tscale);
    free(s);
}

/* Scratch of a session on a device backend (the layout of forward_impl.h). */
static tome_status session_open_device(tome_session_t *s, const int64_t *window, size_t ub, size_t H, size_t Q,
                                       size_t KV, size_t K, size_t F)
{
    const tome_backend *be = s->m->be;
    const tome_model_config_t *c = &s->m->cfg;
    const size_t E = (size_t)c->n_experts, V = (size_t)c->vocab_size;
    size_t xw = H > (size_t)c->intermediate_size ? H : (size_t)c->intermediate_size;
    s->logit_rows = (64u << 20) / (V * sizeof(float));
    if (s->logit_rows < 1) s->logit_rows = 1;
    if (s->logit_rows > ub) s->logit_rows = ub;
    struct { void **p; size_t bytes; } b[] = {
        {(void **)&s->x, ub * H * 4},          {(void **)&s->h, ub * H * 4},
        {(void **)&s->o, ub * H * 4},          {(void **)&s->q, ub * Q * 4},
        {(void **)&s->att, ub * Q * 4},        {(void **)&s->k, ub * KV * 4},
        {(void **)&s->v, ub * KV * 4},         {(void **)&s->f1, ub * (K > 1 ? K : 1) * F * 4},
        {(void **)&s->f2, ub * (K > 1 ? K : 1) * F * 4}, {(void **)&s->xin, ub * K * xw * 4},
        {(void **)&s->router, ub * E * 4},     {(void **)&s->score, ub * K * 4},
        {(void **)&s->sel, 3 * ub * K * 4},    {(void **)&s->posv, ub * 8},
        {(void **)&s->tscale, ub * 4},         {(void **)&s->dids, ub * 4},
        {(void **)&s->dplan, (2 * E + 1) * 4}, {(void **)&s->dlogits, s->logit_rows * V * 4},
    };
    for (size_t i = 0; i < sizeof b / sizeof b[0]; i++) TOME_FORWARD(be->buf_alloc(b[i].p, b[i].bytes));
    s->rows = s->sel + ub * K; /* order, then where */
    s->hpos = malloc(ub * sizeof(int64_t));
    if (!s->hpos) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    tome_kv_params kp = {.n_layers = c->n_layers, .n_kv_heads = c->n_kv_heads, .head_dim = c->head_dim,
                         .n_seqs = 1, .max_tokens = s->max_tokens, .window = window};
    return be->kv_open(&kp, &s->dkv);
}

tome_status tome_session_open(tome_model_t *m, int64_t max_tokens, int ubatch, tome_session_t **out)
{
    *out = NULL;
    const tome_model_config_t *c = &m->cfg;
    if (max_tokens <= 0) return tome_set_error(TOME_ERR_INVALID_ARG, "session: max_tokens must be positive");
    if (ubatch <= 0) ubatch = 512;
    if (ubatch > max_tokens) ubatch = (int)max_tokens;
    tome_session_t *s = calloc(1, sizeof *s);
    if (!s) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    s->m = m;
    s->max_tokens = max_tokens;
    s->ubatch = ubatch;
    int64_t window[TOME_MAX_LAYERS];
    for (int l = 0; l < c->n_layers; l++) window[l] = c->use_rope[l] ? c->attention_chunk_size : 0;
    tome_kv_params kp = {.n_layers = c->n_layers, .n_kv_heads = c->n_kv_heads, .head_dim = c->head_dim,
                         .n_seqs = 1, .max_tokens = max_tokens, .window = window};
    tome_status st = tome_kv_open(&kp, &s->kv);
    if (st != TOME_OK) {
        free(s);
        return st;
    }
    const size_t ub = (size_t)ubatch, H = (size_t)c->hidden_size, Q = (size_t)c->n_heads * (size_t)c->head_dim,
                 KV = (size_t)c->n_kv_heads * (size_t)c->head_dim, K = (size_t)c->n_experts_per_tok;
    size_t F = (size_t)c->intermediate_size_mlp;
    if (2 * (size_t)c->intermediate_size > F) F = 2 * (size_t)c->intermediate_size;
    if (m->be->buf_alloc) {
        s->on_device = 1;
        if ((st = session_open_device(s, window, ub, H, Q, KV, K, F)) != TOME_OK) {
            tome_session_free(s);
            return st;
        }
        *out = s;
        return TOME_OK;
    }
    s->x = malloc(ub * H * sizeof(float));
    s->h = malloc(ub * H * sizeof(float));
    s->o = malloc(ub * H * sizeof(float));
    s->q = malloc(ub * Q * sizeof(float));
    s->att = malloc(ub * Q * sizeof(float));
    s->k = malloc(ub * KV * sizeof(float));
    s->v = malloc(ub * KV * sizeof(float));
    s->f1 = malloc(ub * F * sizeof(float));
    s->f2 = malloc(ub * F * sizeof(float));
    s->xin = malloc(ub * H * sizeof(float));
    s->router = malloc(ub * (size_t)c->n_experts * sizeof(float));
    s->score = malloc(ub * K * sizeof(float));
    s->sel = malloc(ub * K * sizeof(int32_t));
    s->rows = malloc(ub * K * sizeof(int32_t));
    s->posv = malloc(ub * sizeof(int64_t));
    s->tscale = malloc(ub * sizeof(float));
    if (!s->x || !s->h || !s->o || !s->q || !s->att || !s->k || !s->v || !s->f1 || !s->f2 || !s->xin || !s->router ||
        !s->score || !s->sel || !s->rows || !s->posv || !s->tscale) {
        tome_session_free(s);
        return tome_set_error(TOME_ERR_NOMEM, "session: out of memory for a %d-token micro-batch", ubatch);
    }
    *out = s;
    return TOME_OK;
}

int64_t tome_session_pos(const tome_session_t *s) { return s->pos; }

void tome_session_reset(tome_session_t *s)
{
    s->pos = 0;
    tome_kv_clear(s->kv, 0);
}

/* Copies within the backend's memory (memcpy on the CPU). */
static void be_copy(const tome_session_t *s, void *dst, const void *src, size_t bytes)
{
    if (s->on_device) s->m->be->copy(dst, src, bytes);
    else memcpy(dst, src, bytes);
}

/* The layer stack of one micro-batch: n tokens (embedded into s->x from
 * ids, backend memory) at positions s->posv (backend memory; s->hpos on the
 * host for a device backend). out_rows[0..n_out) (increasing) are the rows
 * whose logits are wanted: on the CPU they go to logits[j][vocab]; on a
 * device the first min(n_out, logit_rows) of them go to s->dlogits and the
 * normalised rows stay in s->h. Queues work only: no host round trip on a
 * device, so a decode step can be captured. */
static tome_status forward_layers(tome_session_t *s, const int32_t *ids, size_t n, const size_t *out_rows,
                                  size_t n_out, float *logits)
{
    tome_model_t *m = s->m;
    const tome_model_config_t *c = &m->cfg;
    const tome_backend *be = m->be;
    const int dev = s->on_device;
    const size_t H = (size_t)c->hidden_size, hd = (size_t)c->head_dim, Q = (size_t)c->n_heads * hd;
    const float eps = (float)c->rms_norm_eps;
    const tome_wt *embed = dev ? &m->dev->embed : &m->embed, *lm_head = dev ? &m->dev->lm_head : &m->lm_head;
    const float *inv_freq = dev ? m->dev->inv_freq : m->inv_freq, *final_norm = dev ? m->dev->final_norm : m->final_norm;
    TOME_FORWARD(be->embed(embed, ids, n, s->x));
    size_t rows = n;
    for (int l = 0; l < c->n_layers; l++) {
        const tome_layer_w *L = dev ? &m->dev->layers[l] : &m->layers[l];
        be->rmsnorm(s->x, rows, H, L->attn_norm, eps, s->h);
        TOME_FORWARD(be->matmul(&L->wq, s->h, rows, H, s->q));
        TOME_FORWARD(be->matmul(&L->wk, s->h, rows, H, s->k));
        TOME_FORWARD(be->matmul(&L->wv, s->h, rows, H, s->v));
        if (c->use_rope[l]) {
            if (be->rope_qknorm && c->use_qk_norm) {
                be->rope_qknorm(s->q, rows, c->n_heads, c->head_dim, s->posv, inv_freq, eps);
                be->rope_qknorm(s->k, rows, c->n_kv_heads, c->head_dim, s->posv, inv_freq, eps);
            } else {
                be->rope(s->q, rows, c->n_heads, c->head_dim, s->posv, inv_freq);
                be->rope(s->k, rows, c->n_kv_heads, c->head_dim, s->posv, inv_freq);
                if (c->use_qk_norm) {
                    be->rmsnorm(s->q, rows * (size_t)c->n_heads, hd, NULL, eps, s->q);
                    be->rmsnorm(s->k, rows * (size_t)c->n_kv_heads, hd, NULL, eps, s->k);
                }
            }
        } else if (c->attn_temperature_tuning) {
            if (be->temp_scale) {
                be->temp_scale(s->q, rows, Q, s->posv, (float)c->floor_scale, (float)c->attn_scale);
            } else {
                for (size_t i = 0; i < rows; i++)
                    s->tscale[i] = log1pf(floorf(((float)s->posv[i] + 1.0f) / (float)c->floor_scale)) *
                                       (float)c->attn_scale + 1.0f;
                be->scale_rows(s->q, rows, Q, s->tscale);
            }
        }
        if (dev) TOME_FORWARD(be->kv_write(s->dkv, l, s->posv, rows, s->k, s->v));
        else TOME_FORWARD(tome_kv_write(s->kv, l, 0, s->pos, rows, s->k, s->v));
        if (l == c->n_layers - 1 && n_out < rows) {
            /* last layer: keep only the rows whose logits are wanted */
            for (size_t j = 0; j < n_out; j++) {
                size_t r = out_rows[j];
                if (r == j) continue;
                be_copy(s, s->x + j * H, s->x + r * H, H * sizeof(float));
                be_copy(s, s->q + j * Q, s->q + r * Q, Q * sizeof(float));
                if (dev) be->copy(s->posv + j, s->posv + r, sizeof(int64_t));
                else s->posv[j] = s->posv[r];
            }
            rows = n_out;
            if (rows == 0) break;
        }
        tome_attn_params ap = {.q = s->q, .q_stride = Q, .out = s->att, .out_stride = Q, .q_pos = s->posv,
                               .n_q = rows, .n_heads = c->n_heads, .n_kv_heads = c->n_kv_heads,
                               .head_dim = c->head_dim, .chunk = c->use_rope[l] ? c->attention_chunk_size : 0,
                               .scale = 0, .kv = s->kv, .layer = l, .seq = 0, .n_threads = m->n_threads};
        if (dev) TOME_FORWARD(be->attention_dev(s->dkv, &ap));
        else TOME_FORWARD(be->attention(&ap));
        TOME_FORWARD(be->matmul(&L->wo, s->att, rows, Q, s->o));
        be->add(s->x, s->o, rows * H);
        be->rmsnorm(s->x, rows, H, L->ffn_norm, eps, s->h);
        TOME_FORWARD(tome_ffn_forward(s, l, s->h, rows, s->o));
        be->add(s->x, s->o, rows * H);
    }
    if (n_out == 0) return TOME_OK;
    be->rmsnorm(s->x, n_out, H, final_norm, eps, s->h);
    if (!dev) return be->matmul(lm_head, s->h, n_out, H, logits);
    return be->matmul(lm_head, s->h, n_out < s->logit_rows ? n_out : s->logit_rows, H, s->dlogits);
}

/* One micro-batch: n tokens at s->pos. out_rows[0..n_out) (increasing) are
 * the rows whose logits go to logits[j][vocab]. */
static tome_status forward_ubatch(tome_session_t *s, const int32_t *ids, size_t n, const size_t *out_rows,
                                  size_t n_out, float *logits)
{
    if (!s->on_device) {
        for (size_t i = 0; i < n; i++) s->posv[i] = s->pos + (int64_t)i;
        return forward_layers(s, ids, n, out_rows, n_out, logits);
    }
    const tome_backend *be = s->m->be;
    const size_t H = (size_t)s->m->cfg.hidden_size, V = (size_t)s->m->cfg.vocab_size;
    for (size_t i = 0; i < n; i++) s->hpos[i] = s->pos + (int64_t)i;
    TOME_FORWARD(be->upload(s->dids, ids, n * sizeof(int32_t)));
    TOME_FORWARD(be->upload(s->posv, s->hpos, n * sizeof(int64_t)));
    if (be->kv_seek) be->kv_seek(s->dkv, s->pos, n);
    tome_status st;
    if (n == 1 && n_out == 1 && be->graph_begin && !s->graph_failed && !getenv("TOME_NO_GRAPHS")) {
        if (!s->graph) {
            st = be->graph_begin();
            if (st == TOME_OK) {
                tome_status cap = forward_layers(s, s->dids, n, out_rows, n_out, NULL);
                st = be->graph_end(&s->graph);
                if (cap != TOME_OK) st = cap;
            }
            if (st != TOME_OK) { /* run it uncaptured from now on */
                if (s->graph) be->graph_free(s->graph);
                s->graph = NULL;
                s->graph_failed = 1;
                (void)be->sync();
            }
        }
        st = s->graph ? be->graph_launch(s->graph) : forward_layers(s, s->dids, n, out_rows, n_out, NULL);
    } else {
        st = forward_layers(s, s->dids, n, out_rows, n_out, NULL);
    }
    if (st == TOME_OK) st = be->sync();
    /* logits: the first logit_rows rows are in dlogits, the rest in chunks */
    for (size_t j0 = 0; st == TOME_OK && j0 < n_out; j0 += s->logit_rows) {
        size_t cnt = n_out - j0 < s->logit_rows ? n_out - j0 : s->logit_rows;
        if (j0 > 0) st = be->matmul(&s->m->dev->lm_head, s->h + j0 * H, cnt, H, s->dlogits);
        if (st == TOME_OK && logits) st = be->download(logits + j0 * V, s->dlogits, cnt * V * sizeof(float));
    }
    return st;
}

tome_status tome_session_eval(tome_session_t *s, const int32_t *ids, size_t n, int logits_all, float *logits)
{
    const tome_model_config_t *c = &s->m->cfg;
    if (s->pos + (int64_t)n > s->max_tokens)
        return tome_set_error(TOME_ERR_LIMIT, "session: %lld + %zu tokens exceed the capacity of %lld",
                              (long long)s->pos, n, (long long)s->max_tokens);
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= c->vocab_size)
            return tome_set_error(TOME_ERR_INVALID_ARG, "token %zu: id %d is outside the vocabulary (0..%lld)", i,
                                  (int)ids[i], (long long)c->vocab_size - 1);
    size_t *out_rows = malloc((size_t)s->ubatch * sizeof(size_t));
    if (!out_rows) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    tome_status st = TOME_OK;
    size_t done = 0;
    const size_t V = (size_t)c->vocab_size;
    while (done < n && st == TOME_OK) {
        size_t nb = n - done;
        if (nb > (size_t)s->ubatch) nb = (size_t)s->ubatch;
        int64_t C = c->attention_chunk_size;
        if (C > 0) {
            int64_t to_boundary = C - s->pos % C;
            if ((int64_t)nb > to_boundary) nb = (size_t)to_boundary;
        }
        size_t n_out = 0;
        float *dst = NULL;
        if (logits && logits_all) {
            for (size_t i = 0; i < nb; i++) out_rows[n_out++] = i;
            dst = logits + done * V;
        } else if (logits && done + nb == n) {
            out_rows[n_out++] = nb - 1;
            dst = logits;
        }
        st = forward_ubatch(s, ids + done, nb, out_rows, n_out, dst);
        if (st == TOME_OK) {
            s->pos += (int64_t)nb;
            done += nb;
        }
    }
    free(out_rows);
    return st;
}
