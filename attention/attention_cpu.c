/*
 * attention/attention_cpu.c — the CPU reference attention (see
 * attention_impl.h for the contract).
 *
 * Work items are (query, kv_head) pairs spread over threads (OpenMP). For one
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
#include <stdlib.h>
#include <string.h>

#include "core/error_impl.h"

#ifdef _OPENMP
#include <omp.h>
#endif

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

tome_status tome_attention_cpu(const tome_attn_params *p)
{
    if (p->n_kv_heads <= 0 || p->n_heads % p->n_kv_heads != 0 || p->head_dim <= 0)
        return tome_set_error(TOME_ERR_INVALID_ARG, "attention: %d heads over %d kv heads", p->n_heads, p->n_kv_heads);
    const int rep = p->n_heads / p->n_kv_heads;
    const long n_items = (long)p->n_q * p->n_kv_heads;
    const size_t scratch_floats = (size_t)rep * (2 + (size_t)p->head_dim);
    tome_status st = TOME_OK;
    int n_threads = p->n_threads;
#ifdef _OPENMP
    if (n_threads <= 0) n_threads = omp_get_max_threads();
    if (n_items < 2) n_threads = 1;
#pragma omp parallel num_threads(n_threads)
#endif
    {
        float *scratch = malloc(scratch_floats * sizeof(float));
        tome_status my = scratch ? TOME_OK : tome_set_error(TOME_ERR_NOMEM, "attention: out of memory");
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 4)
#endif
        for (long it = 0; it < n_items; it++) {
            if (my != TOME_OK) continue;
            my = attend_one(p, (size_t)(it / p->n_kv_heads), (int)(it % p->n_kv_heads), scratch);
        }
        free(scratch);
        if (my != TOME_OK) {
#ifdef _OPENMP
#pragma omp critical
#endif
            if (st == TOME_OK) st = my;
        }
    }
    (void)n_threads;
    return st;
}
