/*
 * attention/attention_cpu.c — the CPU attention over the paged, quantized KV
 * cache (contract in attention_impl.h; inner loop in attn_simd_*.h).
 *
 * Work items. Queries are cut into blocks of bq consecutive query indices
 * (bq * rep ~ 128 rows, rep = n_heads / n_kv_heads; more rows per tile
 * means fewer passes over the pages); an item is one block
 * against one KV head, so every K/V tile is dequantized once for all the
 * block's rows of all the head's query heads (GQA). Items go to the compute
 * pool (model/pool_impl.h) and need no locks: each writes its own output
 * rows.
 *
 * One item: the rows' queries are copied, scaled and zero-padded to hdp (the
 * head dim rounded up to 8) into per-thread scratch. The union of the
 * block's visible ranges is walked page view by page view (tome_kv_view_at,
 * or the caller's view_at); each view is cut into tiles of ATTN_TK keys that
 * are dequantized (F32, BF16, FP8 e4m3 with per-channel K / per-token-group
 * V scales, INT8/4/2 with scale and zero point; kv_layout.h) into
 *   kt [hdp][ATTN_TK]   K transposed,   v [ATTN_TK][hdp],
 * and handed to the tile kernel with each row's visible columns: causal
 * [0, pos], chunked [floor(pos/C)*C, pos], clipped to the tile. A tile no
 * row sees is not loaded. Rows keep a running max m, sum l and fp32
 * accumulator acc (online softmax); out = acc / l, lse = m + log l.
 *
 * Decode split (flash-decoding on the CPU). When queries x kv heads are too
 * few to fill the threads (one query per sequence at decode) and the context
 * is long, each query's range is cut into n_splits pieces of whole tiles;
 * an item is (query, kv head, piece) and leaves its (m, l, acc) in a
 * partials buffer. The pieces are merged afterwards by log-sum-exp:
 *   M = max m_s,  L = sum l_s e^(m_s - M),  out = sum acc_s e^(m_s - M) / L.
 *
 * Errors (a page read that fails, a view whose format or shape does not
 * match) stop the work: the first failing item (lowest index) is redone on
 * the calling thread so its message reaches the caller.
 *
 * Memory: per-thread scratch from the pool (q rows, m, l, acc, one tile),
 * plus the partials buffer of a split call (freed before return).
 */
#include "attention/attention_impl.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attention/attn_simd_impl.h"
#include "core/core_impl.h"
#include "core/error_impl.h"
#include "model/pool_impl.h"

#define ATTN_ROWS_TARGET 128 /* query rows (queries x heads of a group) per item */

typedef struct attn_ctx {
    const tome_attn_params *p;
    attn_kernels kern;
    int rep, hd, hdp, bq, n_splits;
    int rowk;                 /* few rows per item: K tiles row-major (tile_rowk) */
    int ng;                   /* kv heads per item: all when rowk, else 1      */
    float scale;
    size_t n_blocks;          /* query blocks                                  */
    float *part;              /* split partials [n_q][n_kv][n_splits][rep][2 + hdp] */
    size_t scratch_bytes;
    float e4m3[256];          /* FP8 code -> float                             */
    atomic_int failed;
    atomic_size_t first_bad;
} attn_ctx;

/* Scratch sections, each a multiple of 8 floats. */
typedef struct attn_scratch {
    float *q, *m, *l, *acc, *kt, *v, *s, *ks, *kz;
    int *lo, *hi;
    int64_t *qlo, *qhi;
} attn_scratch;

static size_t up8(size_t n) { return (n + 7) & ~(size_t)7; }

static size_t scratch_layout(const attn_ctx *c, attn_scratch *s, void *base)
{
    const size_t rows = (size_t)c->bq * (size_t)c->rep * (size_t)c->ng, hdp = (size_t)c->hdp;
    size_t off = 0;
    float *b = base;
#define TAKE(field, type, n)                                  \
    do {                                                      \
        if (s) s->field = (type *)(void *)(b ? b + off : NULL); \
        off += up8((size_t)(n) * sizeof(type) / sizeof(float)); \
    } while (0)
    TAKE(q, float, rows * hdp);
    TAKE(m, float, rows);
    TAKE(l, float, rows);
    TAKE(acc, float, rows * hdp);
    const size_t ng = (size_t)c->ng;
    TAKE(kt, float, hdp * ATTN_TK * ng);
    TAKE(v, float, ATTN_TK * hdp * ng);
    TAKE(s, float, ATTN_TK);
    TAKE(ks, float, hdp * ng);
    TAKE(kz, float, hdp * ng);
    TAKE(lo, int, rows);
    TAKE(hi, int, rows);
    TAKE(qlo, int64_t, c->bq);
    TAKE(qhi, int64_t, c->bq);
#undef TAKE
    return off * sizeof(float) + 32;
}

/* Visible range of query i: [lo, hi). */
static void q_range(const tome_attn_params *p, size_t i, int64_t *lo, int64_t *hi)
{
    const int64_t pos = p->q_pos[i];
    *lo = p->chunk > 0 ? (pos / p->chunk) * p->chunk : 0;
    *hi = pos + 1;
}

static tome_status get_view(const tome_attn_params *p, int64_t at, int64_t end, tome_kv_view *w)
{
    memset(w, 0, sizeof *w);
    if (p->view_at) TOME_FORWARD(p->view_at(p->view_ctx, at, end, w));
    else TOME_FORWARD(tome_kv_view_at(p->kv, p->layer, p->seq, at, end, w));
    if (w->p0 != at || w->p1 <= w->p0 || w->p1 > end || w->page_p0 > w->p0)
        return tome_set_error(TOME_ERR_INTERNAL, "attention: layer %d seq %d: page view for position %lld covers [%lld, %lld)",
                              p->layer, p->seq, (long long)at, (long long)w->p0, (long long)w->p1);
    if (w->n_kv_heads != p->n_kv_heads || w->head_dim != p->head_dim || w->on_device)
        return tome_set_error(TOME_ERR_INVALID_ARG,
                              "attention: layer %d seq %d position %lld: page has %d kv heads of %d dims%s, want %d of %d",
                              p->layer, p->seq, (long long)at, w->n_kv_heads, w->head_dim,
                              w->on_device ? " on the device" : "", p->n_kv_heads, p->head_dim);
    if (w->fmt < 0 || w->fmt >= TOME_KV_N_FORMATS ||
        (tome_kv_fmt_scaled(w->fmt) && (!w->k_scale || !w->v_scale || w->group <= 0 || w->head_dim % w->group != 0 ||
                                        (w->fmt != TOME_KV_FP8 && (!w->k_zero || !w->v_zero)))))
        return tome_set_error(TOME_ERR_FORMAT, "attention: layer %d seq %d position %lld: page format %d is unknown or lacks scales",
                              p->layer, p->seq, (long long)at, w->fmt);
    return TOME_OK;
}

static inline float ld_f32(const uint8_t *row, int ch)
{
    float f;
    memcpy(&f, row + (size_t)ch * 4, 4);
    return f;
}

static inline float ld_bf16(const uint8_t *row, int ch)
{
    uint16_t h;
    memcpy(&h, row + (size_t)ch * 2, 2);
    return tome_kv_bf16_to_f32(h);
}

/* K of rows [r0, r0 + n) into kt, transposed in blocks of 8 keys so that
 * every kt row receives 8 consecutive floats per block (the stores stay in
 * few cache lines); VALUE reads channel ch of K row `row` (d = ch - c0). */
#define ATTN_KT_BLOCKED(VALUE)                                                                   \
    for (int j0 = 0; j0 < n; j0 += 8) {                                                          \
        const int nj = n - j0 < 8 ? n - j0 : 8;                                                  \
        const uint8_t *kr[8];                                                                    \
        for (int e = 0; e < 8; e++) kr[e] = w->k + (size_t)(r0 + j0 + (e < nj ? e : 0)) * w->row_bytes; \
        for (int d = 0; d < D; d++) {                                                            \
            float *dst = kt + (size_t)d * ATTN_TK + j0;                                          \
            const int ch = c0 + d;                                                               \
            for (int e = 0; e < nj; e++) {                                                       \
                const uint8_t *row = kr[e];                                                      \
                dst[e] = (VALUE);                                                                \
            }                                                                                    \
        }                                                                                        \
    }

/* Channels [c0, c0 + D) of K (is_v 0) or V rows [r0, r0 + n) of view w,
 * dequantized row-major into out[j*hdp + d]; ks/kz: K's scale and zero of
 * those channels (scaled formats). The same floats as tome_kv_value. */
static void load_rows(const attn_ctx *c, const tome_kv_view *w, int is_v, int c0, int D, int r0, int n, float *out,
                      size_t hdp, const float *ks, const float *kz)
{
    const int fmt = w->fmt, bits = w->bits;
    const uint8_t *base = is_v ? w->v : w->k;
    const int G = w->group > 0 ? w->group : D, gpr = w->group > 0 ? w->n_kv_heads * w->head_dim / G : 0;
    for (int j = 0; j < n; j++) {
        const int r = r0 + j;
        const uint8_t *row = base + (size_t)r * w->row_bytes;
        float *o = out + (size_t)j * hdp;
        if (fmt == TOME_KV_F32) {
            memcpy(o, row + (size_t)c0 * 4, (size_t)D * 4);
            continue;
        }
        if (fmt == TOME_KV_BF16) {
            if (D % 8 == 0) c->kern.bf16_row(row + (size_t)c0 * 2, o, D);
            else
                for (int d = 0; d < D; d++) o[d] = ld_bf16(row, c0 + d);
            continue;
        }
        /* codes as floats */
        const int vec = D % 8 == 0 && (G % 8 == 0 || !is_v);
        if (fmt == TOME_KV_FP8) {
            for (int d = 0; d < D; d++) o[d] = c->e4m3[row[c0 + d]];
        } else if (bits == 8) {
            if (vec) c->kern.u8_row(row + c0, o, D);
            else
                for (int d = 0; d < D; d++) o[d] = (float)row[c0 + d];
        } else if (bits == 4 && c0 % 2 == 0 && D % 2 == 0) {
            const uint8_t *b = row + c0 / 2;
            for (int d = 0; d < D; d += 2) {
                o[d] = (float)(b[d / 2] & 15u);
                o[d + 1] = (float)(b[d / 2] >> 4);
            }
        } else if (bits == 2 && c0 % 4 == 0 && D % 4 == 0) {
            const uint8_t *b = row + c0 / 4;
            for (int d = 0; d < D; d += 4) {
                const unsigned x = b[d / 4];
                o[d] = (float)(x & 3u);
                o[d + 1] = (float)((x >> 2) & 3u);
                o[d + 2] = (float)((x >> 4) & 3u);
                o[d + 3] = (float)(x >> 6);
            }
        } else {
            for (int d = 0; d < D; d++) o[d] = (float)tome_kv_code(row, bits, c0 + d);
        }
        /* scales: K per channel, V per group of G channels of this row */
        if (!is_v) {
            if (vec) c->kern.affine_row(o, ks, fmt == TOME_KV_FP8 ? NULL : kz, D);
            else if (fmt == TOME_KV_FP8)
                for (int d = 0; d < D; d++) o[d] = o[d] * ks[d];
            else
                for (int d = 0; d < D; d++) o[d] = o[d] * ks[d] + kz[d];
        } else {
            const uint16_t *vsr = w->v_scale + (size_t)r * (size_t)gpr + (size_t)(c0 / G);
            for (int d0 = 0; d0 < D; d0 += G) {
                const float vs = tome_kv_f16_to_f32(vsr[d0 / G]);
                if (vec) {
                    const float vz = fmt == TOME_KV_FP8 ? 0.0f
                                     : tome_kv_f16_to_f32(w->v_zero[(size_t)r * (size_t)gpr + (size_t)((c0 + d0) / G)]);
                    c->kern.affine_const(o + d0, vs, vz, fmt != TOME_KV_FP8, G);
                } else if (fmt == TOME_KV_FP8) {
                    for (int d = d0; d < d0 + G; d++) o[d] = o[d] * vs;
                } else {
                    const float vz = tome_kv_f16_to_f32(w->v_zero[(size_t)r * (size_t)gpr + (size_t)((c0 + d0) / G)]);
                    for (int d = d0; d < d0 + G; d++) o[d] = o[d] * vs + vz;
                }
            }
        }
    }
}

/* Dequantize keys/values of rows [r0, r0 + n) of view w, kv heads
 * [g, g + ngh) (ngh > 1: row-major K, rows ngh*hd apart), into the tile (kt transposed, v row-major, both hdp wide; padding untouched).
 * The float values are exactly kv_layout.h's tome_kv_value. */
static void load_tile(const attn_ctx *c, const tome_kv_view *w, int g, int ngh, int r0, int n, attn_scratch *s)
{
    const int D = c->hd, c0 = g * D, nch = ngh * D;
    const size_t ld = ngh == 1 ? (size_t)c->hdp : (size_t)nch; /* ngh > 1 only when hd == hdp */
    float *kt = s->kt;
    const int fmt = w->fmt, bits = w->bits;
    const float *ks = s->ks, *kz = s->kz;
    if (tome_kv_fmt_scaled(fmt))
        for (int d = 0; d < nch; d++) {
            s->ks[d] = tome_kv_f16_to_f32(w->k_scale[c0 + d]);
            s->kz[d] = fmt == TOME_KV_FP8 ? 0.0f : tome_kv_f16_to_f32(w->k_zero[c0 + d]);
        }
    load_rows(c, w, 1, c0, nch, r0, n, s->v, ld, ks, kz);
    if (c->rowk) {
        load_rows(c, w, 0, c0, nch, r0, n, kt, ld, ks, kz);
        return;
    }
    if (fmt == TOME_KV_F32) ATTN_KT_BLOCKED(ld_f32(row, ch))
    else if (fmt == TOME_KV_BF16) ATTN_KT_BLOCKED(ld_bf16(row, ch))
    else if (fmt == TOME_KV_FP8) ATTN_KT_BLOCKED(c->e4m3[row[ch]] * ks[d])
    else if (bits == 8) ATTN_KT_BLOCKED((float)row[ch] * ks[d] + kz[d])
    else ATTN_KT_BLOCKED((float)tome_kv_code(row, bits, ch) * ks[d] + kz[d])
}
#undef ATTN_KT_BLOCKED

/* Queries [i0, i1) (at most bq), kv heads [g0, g0 + ng), keys clipped to
 * [klo, khi): leaves m, l, acc (unnormalised) in s for rows
 * (gi * nq + qi) * rep + r. With several heads per item (decode), every
 * page view is read once for all of them, tile by tile. */
static tome_status attend(const attn_ctx *c, size_t i0, size_t i1, int g0, int ng, int64_t klo, int64_t khi,
                          attn_scratch *s)
{
    const tome_attn_params *p = c->p;
    const int rep = c->rep, hd = c->hd, hdp = c->hdp;
    const int nq = (int)(i1 - i0), rows = nq * rep;
    int64_t ulo = INT64_MAX, uhi = INT64_MIN;
    for (int qi = 0; qi < nq; qi++) {
        int64_t lo, hi;
        q_range(p, i0 + (size_t)qi, &lo, &hi);
        lo = lo > klo ? lo : klo;
        hi = hi < khi ? hi : khi;
        s->qlo[qi] = lo;
        s->qhi[qi] = hi;
        if (lo < hi) {
            ulo = lo < ulo ? lo : ulo;
            uhi = hi > uhi ? hi : uhi;
        }
        for (int gi = 0; gi < ng; gi++) {
            const float *qs = p->q + (i0 + (size_t)qi) * p->q_stride + (size_t)(g0 + gi) * (size_t)rep * (size_t)hd;
            for (int r = 0; r < rep; r++) {
                float *qd = s->q + (size_t)((gi * nq + qi) * rep + r) * (size_t)hdp;
                for (int d = 0; d < hd; d++) qd[d] = qs[(size_t)r * (size_t)hd + (size_t)d] * c->scale;
                for (int d = hd; d < hdp; d++) qd[d] = 0;
            }
        }
    }
    for (int r = 0; r < rows * ng; r++) {
        s->m[r] = -INFINITY;
        s->l[r] = 0;
    }
    memset(s->acc, 0, (size_t)(rows * ng) * (size_t)hdp * sizeof(float));
    if (hdp > hd) { /* padding of the tile stays zero: loads write only [0, hd) */
        memset(s->kt, 0, (size_t)hdp * ATTN_TK * sizeof(float));
        memset(s->v, 0, (size_t)hdp * ATTN_TK * sizeof(float));
    }
    attn_tile_args ta = {.kt = s->kt, .v = s->v, .hd = hdp, .n_rows = rows, .lo = s->lo, .hi = s->hi, .s = s->s};
    int64_t at = ulo;
    while (at < uhi) {
        tome_kv_view w;
        TOME_FORWARD(get_view(p, at, uhi, &w));
        for (int64_t t0 = w.p0; t0 < w.p1; t0 += ATTN_TK) {
            const int n = (int)(w.p1 - t0 < ATTN_TK ? w.p1 - t0 : ATTN_TK);
            int any = 0;
            for (int qi = 0; qi < nq; qi++) {
                int64_t lo = s->qlo[qi] - t0, hi = s->qhi[qi] - t0;
                lo = lo < 0 ? 0 : lo > n ? n : lo;
                hi = hi < 0 ? 0 : hi > n ? n : hi;
                any |= lo < hi;
                for (int r = 0; r < rep; r++) {
                    s->lo[qi * rep + r] = (int)lo;
                    s->hi[qi * rep + r] = (int)hi;
                }
            }
            if (!any) continue;
            /* all heads of the item in one pass over the rows when their
             * slices pack without padding (decode), else head by head */
            const int whole = ng > 1 && hdp == hd;
            if (whole) load_tile(c, &w, g0, ng, (int)(t0 - w.page_p0), n, s);
            for (int gi = 0; gi < ng; gi++) {
                if (!whole) load_tile(c, &w, g0 + gi, 1, (int)(t0 - w.page_p0), n, s);
                const size_t r0 = (size_t)gi * (size_t)rows;
                ta.kt = s->kt + (whole ? (size_t)gi * (size_t)hd : 0);
                ta.v = s->v + (whole ? (size_t)gi * (size_t)hd : 0);
                ta.ld = whole ? ng * hd : hdp;
                ta.q = s->q + r0 * (size_t)hdp;
                ta.m = s->m + r0;
                ta.l = s->l + r0;
                ta.acc = s->acc + r0 * (size_t)hdp;
                (c->rowk ? c->kern.tile_rowk : c->kern.tile)(&ta);
            }
        }
        at = w.p1;
    }
    return TOME_OK;
}

static tome_status run_item(attn_ctx *c, size_t it, void *mem)
{
    const tome_attn_params *p = c->p;
    attn_scratch s;
    scratch_layout(c, &s, (void *)(((uintptr_t)mem + 31) & ~(uintptr_t)31));
    const int rep = c->rep, hd = c->hd, hdp = c->hdp, ng = c->ng;
    const size_t ngc = (size_t)(p->n_kv_heads / ng); /* head groups of ng kv heads */
    if (c->n_splits <= 1) {
        const size_t b = it / ngc;
        const int g0 = (int)(it % ngc) * ng;
        const size_t i0 = b * (size_t)c->bq, i1 = i0 + (size_t)c->bq < p->n_q ? i0 + (size_t)c->bq : p->n_q;
        const size_t nq = i1 - i0;
        TOME_FORWARD(attend(c, i0, i1, g0, ng, INT64_MIN, INT64_MAX, &s));
        for (int gi = 0; gi < ng; gi++) {
            for (size_t i = i0; i < i1; i++) {
                for (int r = 0; r < rep; r++) {
                    const size_t row = ((size_t)gi * nq + (i - i0)) * (size_t)rep + (size_t)r;
                    const size_t h = (size_t)((g0 + gi) * rep + r);
                    const float l = s.l[row], inv = l > 0 ? 1.0f / l : 0.0f;
                    float *o = p->out + i * p->out_stride + h * (size_t)hd;
                    const float *a = s.acc + row * (size_t)hdp;
                    for (int d = 0; d < hd; d++) o[d] = a[d] * inv;
                    if (p->lse) p->lse[i * (size_t)p->n_heads + h] = l > 0 ? s.m[row] + logf(l) : -INFINITY;
                }
            }
        }
        return TOME_OK;
    }
    /* split item: (query, head group, piece); partials [n_q][n_splits][n_heads][2 + hdp] */
    const size_t ns = (size_t)c->n_splits, piece = it % ns, i = it / ns / ngc;
    const int g0 = (int)(it / ns % ngc) * ng;
    int64_t lo, hi;
    q_range(p, i, &lo, &hi);
    int64_t len = (hi - lo + (int64_t)ns - 1) / (int64_t)ns;
    len = (len + ATTN_TK - 1) / ATTN_TK * ATTN_TK;
    const int64_t klo = lo + (int64_t)piece * len;
    TOME_FORWARD(attend(c, i, i + 1, g0, ng, klo, klo + len, &s));
    for (int gi = 0; gi < ng; gi++) {
        for (int r = 0; r < rep; r++) {
            const size_t row = (size_t)gi * (size_t)rep + (size_t)r, h = (size_t)((g0 + gi) * rep + r);
            float *dst = c->part + ((i * ns + piece) * (size_t)p->n_heads + h) * (size_t)(2 + hdp);
            dst[0] = s.m[row];
            dst[1] = s.l[row];
            memcpy(dst + 2, s.acc + row * (size_t)hdp, (size_t)hd * sizeof(float));
        }
    }
    return TOME_OK;
}

static void pool_item(void *vctx, size_t it, int tid)
{
    attn_ctx *c = vctx;
    if (atomic_load(&c->failed)) return;
    void *mem = tome_pool_scratch(tid, c->scratch_bytes);
    if (!mem || run_item(c, it, mem) != TOME_OK) {
        size_t cur = atomic_load(&c->first_bad);
        while (it < cur && !atomic_compare_exchange_weak(&c->first_bad, &cur, it)) {
        }
        atomic_store(&c->failed, 1);
    }
}

static void merge_splits(const attn_ctx *c)
{
    const tome_attn_params *p = c->p;
    const int hd = c->hd, hdp = c->hdp, ns = c->n_splits;
    for (size_t i = 0; i < p->n_q; i++) {
        for (int h = 0; h < p->n_heads; h++) {
#define PART(k) (c->part + ((i * (size_t)ns + (size_t)(k)) * (size_t)p->n_heads + (size_t)h) * (size_t)(2 + hdp))
            float M = -INFINITY;
            for (int k = 0; k < ns; k++)
                if (PART(k)[1] > 0 && PART(k)[0] > M) M = PART(k)[0];
            float *o = p->out + i * p->out_stride + (size_t)h * (size_t)hd;
            for (int d = 0; d < hd; d++) o[d] = 0;
            float L = 0;
            for (int k = 0; k < ns; k++) {
                const float *pt = PART(k);
                if (!(pt[1] > 0)) continue;
                const float e = expf(pt[0] - M);
                L += pt[1] * e;
                for (int d = 0; d < hd; d++) o[d] += pt[2 + d] * e;
            }
#undef PART
            const float inv = L > 0 ? 1.0f / L : 0.0f;
            for (int d = 0; d < hd; d++) o[d] *= inv;
            if (p->lse) p->lse[i * (size_t)p->n_heads + (size_t)h] = L > 0 ? M + logf(L) : -INFINITY;
        }
    }
}

static attn_kernels g_kern;
static pthread_once_t g_kern_once = PTHREAD_ONCE_INIT;

static void kern_init(void) { attn_kernels_select(&g_kern); }

const char *tome_attention_cpu_isa(void)
{
    pthread_once(&g_kern_once, kern_init);
    return g_kern.name;
}

tome_status tome_attention_cpu(const tome_attn_params *p)
{
    if (p->n_kv_heads <= 0 || p->n_heads <= 0 || p->n_heads % p->n_kv_heads != 0 || p->head_dim <= 0 || p->head_dim > 4096)
        return tome_set_error(TOME_ERR_INVALID_ARG, "attention: %d heads over %d kv heads of dim %d", p->n_heads,
                              p->n_kv_heads, p->head_dim);
    if (!p->view_at && !p->kv) return tome_set_error(TOME_ERR_INVALID_ARG, "attention: no KV cache and no page source");
    if (p->chunk < 0) return tome_set_error(TOME_ERR_INVALID_ARG, "attention: negative chunk %lld", (long long)p->chunk);
    if (p->n_q == 0) return TOME_OK;
    int64_t maxlen = 0, all_lo = INT64_MAX, all_hi = 0;
    for (size_t i = 0; i < p->n_q; i++) {
        if (p->q_pos[i] < 0)
            return tome_set_error(TOME_ERR_INVALID_ARG, "attention: query %zu at negative position %lld", i,
                                  (long long)p->q_pos[i]);
        int64_t lo, hi;
        q_range(p, i, &lo, &hi);
        maxlen = hi - lo > maxlen ? hi - lo : maxlen;
        all_lo = lo < all_lo ? lo : all_lo;
        all_hi = hi > all_hi ? hi : all_hi;
    }
    if (!p->view_at) tome_kv_prefetch(p->kv, p->layer, p->seq, all_lo, all_hi); /* disk tier read-ahead */
    (void)tome_attention_cpu_isa();
    attn_ctx *c = calloc(1, sizeof *c);
    if (!c) return tome_set_error(TOME_ERR_NOMEM, "attention: out of memory");
    c->p = p;
    c->kern = g_kern;
    c->rep = p->n_heads / p->n_kv_heads;
    c->hd = p->head_dim;
    c->hdp = (p->head_dim + 7) & ~7;
    c->scale = p->scale > 0 ? p->scale : 1.0f / sqrtf((float)p->head_dim);
    for (int b = 0; b < 256; b++) c->e4m3[b] = tome_kv_e4m3_to_f32((uint8_t)b);
    c->bq = ATTN_ROWS_TARGET / c->rep > 0 ? ATTN_ROWS_TARGET / c->rep : 1;
    if ((size_t)c->bq > p->n_q) c->bq = (int)p->n_q;

    /* few rows per block (decode): K tiles row-major, all kv heads in one
     * item so each page is read once */
    c->rowk = c->bq * c->rep <= 8;
    c->ng = c->rowk ? p->n_kv_heads : 1;
    /* decode split: pieces of at least 4 tiles when the items leave threads idle */
    const int n_thr = p->n_threads > 0 ? p->n_threads : tome_num_threads();
    const size_t items_plain = (p->n_q + (size_t)c->bq - 1) / (size_t)c->bq * (size_t)(p->n_kv_heads / c->ng);
    int ns = 1;
    if (p->n_splits > 1) ns = p->n_splits;
    else if (p->n_splits == 0 && items_plain < 2 * (size_t)n_thr) {
        size_t want = (2 * (size_t)n_thr + items_plain - 1) / items_plain;
        int64_t most = maxlen / (4 * ATTN_TK);
        ns = (int)((int64_t)want < most ? (int64_t)want : most);
        if (ns < 1) ns = 1;
        if (ns > 256) ns = 256;
    }
    c->n_splits = ns;
    if (ns > 1) {
        c->bq = 1;
        c->rowk = c->rep <= 8;
        c->ng = c->rowk ? p->n_kv_heads : 1;
    }
    c->n_blocks = (p->n_q + (size_t)c->bq - 1) / (size_t)c->bq;
    c->scratch_bytes = scratch_layout(c, NULL, NULL);
    size_t n_items = c->n_blocks * (size_t)(p->n_kv_heads / c->ng) * (size_t)ns;
    if (ns > 1) {
        c->part = malloc(p->n_q * (size_t)ns * (size_t)p->n_heads * (size_t)(2 + c->hdp) * sizeof(float));
        if (!c->part) {
            free(c);
            return tome_set_error(TOME_ERR_NOMEM, "attention: out of memory for %d-way split partials", ns);
        }
    }
    atomic_init(&c->failed, 0);
    atomic_init(&c->first_bad, SIZE_MAX);
    tome_pool_run(p->n_threads, n_items, pool_item, c);
    tome_status st = TOME_OK;
    if (atomic_load(&c->failed)) {
        /* redo the first failing item here so that its message lands on this thread */
        void *mem = malloc(c->scratch_bytes);
        st = mem ? run_item(c, atomic_load(&c->first_bad), mem) : TOME_ERR_NOMEM;
        free(mem);
        if (st == TOME_OK || !mem) st = tome_set_error(TOME_ERR_NOMEM, "attention: out of memory for scratch");
    } else if (ns > 1) {
        merge_splits(c);
    }
    free(c->part);
    free(c);
    return st;
}
