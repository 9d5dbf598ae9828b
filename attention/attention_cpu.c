/*
 * attention/attention_cpu.c — the CPU reference attention (see
 * attention_impl.h for the contract).
 *
 * Work items are (query, kv_head) pairs spread over the compute thread pool
 * (model/pool_impl.h). For one
 * item the group of n_heads/n_kv_heads query heads walks the visible range
 * span by span; per key it updates, for each head, the running max m, the
 * running sum l and the accumulator acc (fp32):
 *   s = scale * q.k;  m' = max(m, s);  acc = acc*exp(m-m') + exp(s-m')*v;
 *   l = l*exp(m-m') + exp(s-m')
 * and finally out = acc / l. Issue 6 extends this file (tiles, quantized
 * pages, decode split across threads with a log-sum-exp merge).
 */
#include "attention/attention_impl.h"

#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error_impl.h"
#include "model/pool_impl.h"

static tome_status attend_one(const tome_attn_params *p, size_t i, int g, float *scratch)
{
    const int rep = p->n_heads / p->n_kv_heads, hd = p->head_dim;
    const float scale = p->scale > 0 ? p->scale : 1.0f / sqrtf((float)hd);
    float *m = scratch, *l = m + rep, *acc = l + rep;
    for (int r = 0; r < rep; r++) {
        m[r] = -INFINITY;
        l[r] = 0;
    }
    memset(acc, 0, (size_t)rep * (size_t)hd * sizeof(float));
    const int64_t pos = p->q_pos[i];
    const int64_t lo = p->chunk > 0 ? (pos / p->chunk) * p->chunk : 0, hi = pos + 1;
    const float *q0 = p->q + i * p->q_stride + (size_t)g * (size_t)rep * (size_t)hd;
    int64_t at = lo;
    while (at < hi) {
        tome_kv_span sp;
        TOME_FORWARD(tome_kv_span_at(p->kv, p->layer, p->seq, at, hi, &sp));
        for (int64_t t = sp.p0; t < sp.p1; t++) {
            const float *k = sp.k + (size_t)(t - sp.p0) * sp.row_stride + (size_t)g * (size_t)hd;
            const float *v = sp.v + (size_t)(t - sp.p0) * sp.row_stride + (size_t)g * (size_t)hd;
            for (int r = 0; r < rep; r++) {
                const float *q = q0 + (size_t)r * (size_t)hd;
                float s = 0;
                for (int d = 0; d < hd; d++) s += q[d] * k[d];
                s *= scale;
                float *a = acc + (size_t)r * (size_t)hd;
                if (s > m[r]) {
                    float c = expf(m[r] - s);
                    l[r] = l[r] * c + 1.0f;
                    for (int d = 0; d < hd; d++) a[d] = a[d] * c + v[d];
                    m[r] = s;
                } else {
                    float e = expf(s - m[r]);
                    l[r] += e;
                    for (int d = 0; d < hd; d++) a[d] += e * v[d];
                }
            }
        }
        at = sp.p1;
    }
    float *o = p->out + i * p->out_stride + (size_t)g * (size_t)rep * (size_t)hd;
    for (int r = 0; r < rep; r++) {
        float inv = l[r] > 0 ? 1.0f / l[r] : 0.0f;
        for (int d = 0; d < hd; d++) o[(size_t)r * (size_t)hd + d] = acc[(size_t)r * (size_t)hd + d] * inv;
    }
    return TOME_OK;
}

typedef struct attn_job {
    const tome_attn_params *p;
    size_t scratch_floats;
    atomic_int failed;
    atomic_size_t first_bad;
} attn_job;

static void attn_item(void *vctx, size_t it, int tid)
{
    attn_job *j = vctx;
    const tome_attn_params *p = j->p;
    float *scratch = tome_pool_scratch(tid, j->scratch_floats * sizeof(float));
    if (!scratch || attend_one(p, it / (size_t)p->n_kv_heads, (int)(it % (size_t)p->n_kv_heads), scratch) != TOME_OK) {
        size_t cur = atomic_load(&j->first_bad);
        while (it < cur && !atomic_compare_exchange_weak(&j->first_bad, &cur, it)) {
        }
        atomic_store(&j->failed, 1);
    }
}

tome_status tome_attention_cpu(const tome_attn_params *p)
{
    if (p->n_kv_heads <= 0 || p->n_heads % p->n_kv_heads != 0 || p->head_dim <= 0)
        return tome_set_error(TOME_ERR_INVALID_ARG, "attention: %d heads over %d kv heads", p->n_heads, p->n_kv_heads);
    const int rep = p->n_heads / p->n_kv_heads;
    attn_job j = {.p = p, .scratch_floats = (size_t)rep * (2 + (size_t)p->head_dim)};
    atomic_init(&j.failed, 0);
    atomic_init(&j.first_bad, SIZE_MAX);
    const size_t n_items = p->n_q * (size_t)p->n_kv_heads;
    /* rough work estimate: queries x (mean) visible keys x heads x dims */
    double work = 0;
    for (size_t i = 0; i < p->n_q; i++)
        work += (double)(p->chunk > 0 ? p->q_pos[i] % p->chunk + 1 : p->q_pos[i] + 1);
    work *= (double)p->n_heads * (double)p->head_dim;
    tome_pool_run(work < (double)(1 << 18) ? 1 : p->n_threads, n_items, attn_item, &j);
    if (!atomic_load(&j.failed)) return TOME_OK;
    /* redo the first failing item here so that its message lands on this thread */
    size_t it = atomic_load(&j.first_bad);
    float *scratch = malloc(j.scratch_floats * sizeof(float));
    if (!scratch) return tome_set_error(TOME_ERR_NOMEM, "attention: out of memory");
    tome_status st = attend_one(p, it / (size_t)p->n_kv_heads, (int)(it % (size_t)p->n_kv_heads), scratch);
    free(scratch);
    return st != TOME_OK ? st : tome_set_error(TOME_ERR_NOMEM, "attention: out of memory for scratch");
}
