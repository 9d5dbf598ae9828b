/*
 * tests/test_attention.c — the CPU attention (attention/) against a naive
 * float64 reference on random inputs: causal and chunked masks, GQA, page
 * and tile boundaries, odd lengths and head dims, query subsets, decode
 * split over threads (log-sum-exp merge), every KV page format against its
 * dequantized fp32 equivalent, a 64K-token context, the inner-loop builds,
 * and error reporting.
 *
 * Pages are built here from the shared layout (kvcache/kv_layout.h) and
 * served through the params' view_at hook, so the tests do not depend on
 * the cache's own policies; one case goes through the real cache API.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attention/attention_impl.h"
#include "attention/attn_simd_impl.h"
#include "core/error_impl.h"
#include "kvcache/kv_layout.h"
#include "test_attention_pages.h"
#include "tt.h"

/* ------------------------------------------------------------ reference */
typedef struct attn_case {
    int n_heads, n_kv, hd;
    int64_t chunk;
    size_t n_q;
    int64_t *pos;
    float *q, *out;
    double *ref, *ref_lse;
    float *lse;
} attn_case;

static void case_free(attn_case *c)
{
    free(c->pos);
    free(c->q);
    free(c->out);
    free(c->ref);
    free(c->ref_lse);
    free(c->lse);
    memset(c, 0, sizeof *c);
}

static void case_make(attn_case *c, int n_heads, int n_kv, int hd, int64_t chunk, size_t n_q, const int64_t *pos,
                      float q_amp)
{
    memset(c, 0, sizeof *c);
    c->n_heads = n_heads;
    c->n_kv = n_kv;
    c->hd = hd;
    c->chunk = chunk;
    c->n_q = n_q;
    c->pos = malloc(n_q * sizeof *c->pos);
    memcpy(c->pos, pos, n_q * sizeof *pos);
    const size_t Q = (size_t)n_heads * (size_t)hd;
    c->q = malloc(n_q * Q * sizeof(float));
    for (size_t i = 0; i < n_q * Q; i++) c->q[i] = rnd_f(-q_amp, q_amp);
    c->out = malloc(n_q * Q * sizeof(float));
    for (size_t i = 0; i < n_q * Q; i++) c->out[i] = NAN; /* poison: every element must be written */
    c->lse = malloc(n_q * (size_t)n_heads * sizeof(float));
    c->ref = calloc(n_q * Q, sizeof(double));
    c->ref_lse = calloc(n_q * (size_t)n_heads, sizeof(double));
}

/* Naive float64 attention over the dequantized values of t. */
static void case_reference(attn_case *c, const test_kv *t)
{
    const int HD = t->H * t->D, rep = c->n_heads / c->n_kv, hd = c->hd;
    float *kf = malloc((size_t)t->n_pos * HD * sizeof(float)), *vf = malloc((size_t)t->n_pos * HD * sizeof(float));
    for (int64_t p = 0; p < t->n_pos;) {
        tome_kv_view w = {0};
        TT_OK(test_view_at((void *)t, p, t->n_pos, &w));
        for (int64_t q = w.p0; q < w.p1; q++)
            for (int ch = 0; ch < HD; ch++) {
                kf[q * HD + ch] = tome_kv_value(&w, 0, (int)(q - w.page_p0), ch);
                vf[q * HD + ch] = tome_kv_value(&w, 1, (int)(q - w.page_p0), ch);
            }
        p = w.p1;
    }
    const double scale = 1.0 / sqrt((double)hd);
    double *s = malloc((size_t)t->n_pos * sizeof(double));
    for (size_t i = 0; i < c->n_q; i++) {
        const int64_t pos = c->pos[i], lo = c->chunk > 0 ? pos / c->chunk * c->chunk : 0;
        for (int h = 0; h < c->n_heads; h++) {
            const int g = h / rep;
            const float *q = c->q + (i * (size_t)c->n_heads + (size_t)h) * (size_t)hd;
            double mx = -INFINITY;
            for (int64_t j = lo; j <= pos; j++) {
                double d = 0;
                for (int e = 0; e < hd; e++) d += (double)q[e] * (double)kf[j * HD + g * hd + e];
                s[j] = d * scale;
                mx = s[j] > mx ? s[j] : mx;
            }
            double sum = 0;
            for (int64_t j = lo; j <= pos; j++) sum += exp(s[j] - mx);
            double *o = c->ref + (i * (size_t)c->n_heads + (size_t)h) * (size_t)hd;
            for (int64_t j = lo; j <= pos; j++) {
                const double pj = exp(s[j] - mx) / sum;
                for (int e = 0; e < hd; e++) o[e] += pj * (double)vf[j * HD + g * hd + e];
            }
            c->ref_lse[i * (size_t)c->n_heads + (size_t)h] = mx + log(sum);
        }
    }
    free(s);
    free(kf);
    free(vf);
}

static tome_status case_run(attn_case *c, test_kv *t, int n_splits, int n_threads)
{
    tome_attn_params p = {.q = c->q, .q_stride = (size_t)c->n_heads * (size_t)c->hd, .out = c->out,
                          .out_stride = (size_t)c->n_heads * (size_t)c->hd, .q_pos = c->pos, .n_q = c->n_q,
                          .n_heads = c->n_heads, .n_kv_heads = c->n_kv, .head_dim = c->hd, .chunk = c->chunk,
                          .view_at = test_view_at, .view_ctx = t, .lse = c->lse, .n_splits = n_splits,
                          .n_threads = n_threads};
    return tome_attention_cpu(&p);
}

/* ||out - ref|| / ||ref|| over the whole output; NaN (unwritten) fails. */
static double case_rel_err(const attn_case *c)
{
    double num = 0, den = 0;
    const size_t n = c->n_q * (size_t)c->n_heads * (size_t)c->hd;
    for (size_t i = 0; i < n; i++) {
        if (isnan(c->out[i])) return INFINITY;
        const double d = (double)c->out[i] - c->ref[i];
        num += d * d;
        den += c->ref[i] * c->ref[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

static double case_lse_err(const attn_case *c)
{
    double worst = 0;
    for (size_t i = 0; i < c->n_q * (size_t)c->n_heads; i++) {
        const double e = fabs((double)c->lse[i] - c->ref_lse[i]) / (1 + fabs(c->ref_lse[i]));
        worst = e > worst || isnan(e) ? (isnan(e) ? INFINITY : e) : worst;
    }
    return worst;
}

static int64_t *all_positions(int64_t n)
{
    int64_t *p = malloc((size_t)n * sizeof *p);
    for (int64_t i = 0; i < n; i++) p[i] = i;
    return p;
}

/* One full check: random pages of fmt, queries at pos, vs the reference. */
static void check_case(const char *what, int fmt, int T, int n_heads, int n_kv, int hd, int64_t chunk, int64_t n_pos,
                       int64_t n_sealed, size_t n_q, const int64_t *pos, int n_splits, double tol)
{
    test_kv t;
    test_kv_make(&t, fmt, T, n_kv, hd, n_pos, n_sealed);
    attn_case c;
    case_make(&c, n_heads, n_kv, hd, chunk, n_q, pos, 1.5f);
    case_reference(&c, &t);
    TT_OK(case_run(&c, &t, n_splits, 0));
    const double err = case_rel_err(&c), lerr = case_lse_err(&c);
    if (!(err <= tol) || !(lerr <= tol))
        tt_fail(__FILE__, __LINE__, "%s: relative error %g, lse error %g (tolerance %g)", what, err, lerr, tol);
    case_free(&c);
    test_kv_free(&t);
}

/* ------------------------------------------------------------ cases */
static void test_causal_f32(void)
{
    int64_t *pos = all_positions(301);
    /* 4 sealed pages of 64 then 45 open rows; GQA 6 over 2 */
    check_case("causal f32", TOME_KV_F32, 64, 6, 2, 16, 0, 301, 4, 301, pos, 1, 1e-5);
    /* pages of 24 rows: tiles never line up with pages */
    check_case("causal f32 T=24", TOME_KV_F32, 24, 4, 4, 24, 0, 301, 12, 301, pos, 1, 1e-5);
    /* MHA, head dim not a multiple of 8 */
    check_case("causal f32 hd=12", TOME_KV_F32, 16, 3, 3, 12, 0, 97, 5, 97, pos, 1, 1e-5);
    free(pos);
}

static void test_chunked_f32(void)
{
    int64_t *pos = all_positions(333);
    check_case("chunked 40", TOME_KV_F32, 64, 4, 1, 32, 40, 333, 5, 333, pos, 1, 1e-5);
    check_case("chunked 64", TOME_KV_F32, 64, 10, 2, 8, 64, 333, 5, 333, pos, 1, 1e-5);
    check_case("chunked 1", TOME_KV_F32, 32, 2, 1, 16, 1, 100, 3, 100, pos, 1, 1e-5);
    free(pos);
}

static void test_head_dims(void)
{
    const int dims[] = {1, 8, 20, 64, 72, 128};
    const int64_t pos[] = {0, 1, 63, 64, 65, 127, 128, 199};
    for (size_t i = 0; i < sizeof dims / sizeof *dims; i++) {
        char what[64];
        snprintf(what, sizeof what, "head_dim %d", dims[i]);
        check_case(what, TOME_KV_F32, 32, 5, 1, dims[i], 0, 200, 6, 8, pos, 1, 1e-5);
    }
}

static void test_query_subset(void)
{
    /* unsorted subset: each row equals the same row of a full run bit for bit */
    test_kv t;
    test_kv_make(&t, TOME_KV_F32, 32, 2, 16, 150, 4);
    int64_t *pos = all_positions(150);
    attn_case full;
    case_make(&full, 4, 2, 16, 48, 150, pos, 1.5f);
    case_reference(&full, &t);
    TT_OK(case_run(&full, &t, 1, 0));
    TT_CHECK(case_rel_err(&full) <= 1e-5);
    const int64_t pick[] = {149, 5, 96, 47, 48, 0, 120};
    const size_t n = sizeof pick / sizeof *pick, Q = 4 * 16;
    attn_case sub;
    case_make(&sub, 4, 2, 16, 48, n, pick, 1.5f);
    for (size_t i = 0; i < n; i++) memcpy(sub.q + i * Q, full.q + (size_t)pick[i] * Q, Q * sizeof(float));
    TT_OK(case_run(&sub, &t, 1, 0));
    for (size_t i = 0; i < n; i++)
        if (memcmp(sub.out + i * Q, full.out + (size_t)pick[i] * Q, Q * sizeof(float)) != 0)
            tt_fail(__FILE__, __LINE__, "subset row %zu (position %lld) differs from the full run", i, (long long)pick[i]);
    case_free(&sub);
    case_free(&full);
    free(pos);
    test_kv_free(&t);
}

static void test_decode_split(void)
{
    /* one query at the end of a 5000-token context; GQA 5 over 2 */
    const int64_t n = 5000;
    test_kv t;
    test_kv_make(&t, TOME_KV_F32, 64, 2, 32, n, 70);
    const int64_t last = n - 1;
    attn_case one, split, autos, odd;
    case_make(&one, 10, 2, 32, 0, 1, &last, 1.5f);
    case_reference(&one, &t);
    TT_OK(case_run(&one, &t, 1, 0));
    TT_CHECK(case_rel_err(&one) <= 1e-5);
    TT_CHECK(case_lse_err(&one) <= 1e-5);
    case_make(&split, 10, 2, 32, 0, 1, &last, 1.5f);
    memcpy(split.q, one.q, 10 * 32 * sizeof(float));
    memcpy(split.ref, one.ref, 10 * 32 * sizeof(double));
    memcpy(split.ref_lse, one.ref_lse, 10 * sizeof(double));
    TT_OK(case_run(&split, &t, 7, 3));
    TT_CHECK(case_rel_err(&split) <= 1e-5);
    TT_CHECK(case_lse_err(&split) <= 1e-5);
    /* auto split on 4 threads: 2 kv heads cannot fill them */
    case_make(&autos, 10, 2, 32, 0, 1, &last, 1.5f);
    memcpy(autos.q, one.q, 10 * 32 * sizeof(float));
    memcpy(autos.ref, one.ref, 10 * 32 * sizeof(double));
    memcpy(autos.ref_lse, one.ref_lse, 10 * sizeof(double));
    TT_OK(case_run(&autos, &t, 0, 4));
    TT_CHECK(case_rel_err(&autos) <= 1e-5);
    /* more pieces than tiles: empty pieces merge as nothing; chunked mask */
    const int64_t p2 = 200;
    case_make(&odd, 10, 2, 32, 150, 1, &p2, 1.5f);
    case_reference(&odd, &t);
    TT_OK(case_run(&odd, &t, 9, 0));
    TT_CHECK(case_rel_err(&odd) <= 1e-5);
    TT_CHECK(case_lse_err(&odd) <= 1e-5);
    case_free(&one);
    case_free(&split);
    case_free(&autos);
    case_free(&odd);

    /* decode equals prefill's last row */
    const int64_t m = 700;
    int64_t *pos = all_positions(m);
    attn_case pre, dec;
    case_make(&pre, 10, 2, 32, 0, (size_t)m, pos, 1.5f);
    TT_OK(case_run(&pre, &t, 1, 0));
    case_make(&dec, 10, 2, 32, 0, 1, &pos[m - 1], 1.5f);
    memcpy(dec.q, pre.q + (size_t)(m - 1) * 320, 320 * sizeof(float));
    TT_OK(case_run(&dec, &t, 5, 0));
    double num = 0, den = 0;
    for (int i = 0; i < 320; i++) {
        const double d = (double)dec.out[i] - pre.out[(size_t)(m - 1) * 320 + (size_t)i];
        num += d * d;
        den += (double)dec.out[i] * dec.out[i];
    }
    TT_CHECK(sqrt(num / den) <= 1e-6);
    case_free(&pre);
    case_free(&dec);
    free(pos);
    test_kv_free(&t);
}

static void test_formats(void)
{
    static const char *names[] = {"f32", "bf16", "fp8", "int8", "int4", "int2"};
    const int64_t n = 397; /* 6 sealed pages of 64 + 13 float rows */
    int64_t *pos = all_positions(n);
    for (int fmt = TOME_KV_F32; fmt < TOME_KV_N_FORMATS; fmt++) {
        test_kv t, eq, eq2;
        test_kv_make(&t, fmt, 64, 2, 64, n, 6);
        test_kv_dequant(&t, 64, &eq);  /* same pages, fp32 */
        test_kv_dequant(&t, 40, &eq2); /* other page boundaries */
        attn_case a, b, c2;
        case_make(&a, 8, 2, 64, fmt % 2 ? 100 : 0, (size_t)n, pos, 1.0f);
        case_reference(&a, &t);
        TT_OK(case_run(&a, &t, 1, 0));
        case_make(&b, 8, 2, 64, a.chunk, (size_t)n, pos, 1.0f);
        memcpy(b.q, a.q, (size_t)n * 8 * 64 * sizeof(float));
        TT_OK(case_run(&b, &eq, 1, 0));
        case_make(&c2, 8, 2, 64, a.chunk, (size_t)n, pos, 1.0f);
        memcpy(c2.q, a.q, (size_t)n * 8 * 64 * sizeof(float));
        memcpy(c2.ref, a.ref, (size_t)n * 8 * 64 * sizeof(double));
        memcpy(c2.ref_lse, a.ref_lse, (size_t)n * 8 * sizeof(double));
        TT_OK(case_run(&c2, &eq2, 1, 0));
        const double err = case_rel_err(&a), err2 = case_rel_err(&c2);
        if (!(err <= 1e-5) || !(err2 <= 1e-5))
            tt_fail(__FILE__, __LINE__, "%s: relative error %g (quantized pages), %g (fp32 pages of 40)", names[fmt], err,
                    err2);
        /* same pages dequantized to fp32: the same tiles, the same bits */
        if (memcmp(a.out, b.out, (size_t)n * 8 * 64 * sizeof(float)) != 0)
            tt_fail(__FILE__, __LINE__, "%s: output differs from its dequantized fp32 equivalent", names[fmt]);
        /* decode shape (one query: row-major K tiles), also split */
        for (int split = 1; split <= 4; split += 3) {
            attn_case d1, d2;
            const int64_t last = n - 1;
            case_make(&d1, 8, 2, 64, a.chunk, 1, &last, 1.0f);
            memcpy(d1.q, a.q + (size_t)(n - 1) * 8 * 64, 8 * 64 * sizeof(float));
            memcpy(d1.ref, a.ref + (size_t)(n - 1) * 8 * 64, 8 * 64 * sizeof(double));
            memcpy(d1.ref_lse, a.ref_lse + (size_t)(n - 1) * 8, 8 * sizeof(double));
            TT_OK(case_run(&d1, &t, split, 0));
            case_make(&d2, 8, 2, 64, a.chunk, 1, &last, 1.0f);
            memcpy(d2.q, d1.q, 8 * 64 * sizeof(float));
            TT_OK(case_run(&d2, &eq, split, 0));
            if (!(case_rel_err(&d1) <= 1e-5) || !(case_lse_err(&d1) <= 1e-5) ||
                memcmp(d1.out, d2.out, 8 * 64 * sizeof(float)) != 0)
                tt_fail(__FILE__, __LINE__, "%s decode (split %d): error %g, or differs from the fp32 equivalent",
                        names[fmt], split, case_rel_err(&d1));
            case_free(&d1);
            case_free(&d2);
        }
        case_free(&a);
        case_free(&b);
        case_free(&c2);
        test_kv_free(&t);
        test_kv_free(&eq);
        test_kv_free(&eq2);
    }
    free(pos);
}

static void test_long_context(void)
{
    /* 64K + 37 tokens, one kv head of dim 128 (2 query heads), bf16 pages of
     * 256 with an open tail; a few queries, global and chunked (8192) */
    const int64_t n = 65536 + 37;
    test_kv t;
    test_kv_make(&t, TOME_KV_BF16, 256, 1, 128, n, n / 256);
    const int64_t pos[] = {n - 1, 65535, 40000, 8191, 8192};
    const int64_t chunks[] = {0, 8192};
    for (int k = 0; k < 2; k++) {
        attn_case c;
        case_make(&c, 2, 1, 128, chunks[k], 5, pos, 2.0f);
        case_reference(&c, &t);
        TT_OK(case_run(&c, &t, 1, 0));
        const double e1 = case_rel_err(&c);
        for (size_t i = 0; i < 5 * 2 * 128; i++) c.out[i] = NAN;
        TT_OK(case_run(&c, &t, 0, 2)); /* auto split: 5 queries cannot fill... splits if few */
        const double e2 = case_rel_err(&c);
        if (!(e1 <= 1e-5) || !(e2 <= 1e-5) || !(case_lse_err(&c) <= 1e-5))
            tt_fail(__FILE__, __LINE__, "64K chunk %lld: relative error %g / %g", (long long)chunks[k], e1, e2);
        case_free(&c);
    }
    test_kv_free(&t);
}

static void test_real_cache(void)
{
    /* through the cache itself (tome_kv_write, zero-copy page views): a
     * global and a chunked layer, pages of 16, several formats; the
     * reference reads the same values as float spans (the cache's own
     * dequantization, tome_kv_span_at) */
    const int H = 2, D = 16, n_heads = 4;
    const int64_t n = 150, C = 64;
    const int64_t window[2] = {0, C};
    const int fmts[] = {TOME_KV_F32, TOME_KV_BF16, TOME_KV_FP8, TOME_KV_INT4, TOME_KV_INT2};
    for (size_t fi = 0; fi < sizeof fmts / sizeof *fmts; fi++) {
        tome_kv_params kp = {.n_layers = 2, .n_kv_heads = H, .head_dim = D, .n_seqs = 1, .max_tokens = 256,
                             .window = window, .fmt = fmts[fi], .page_tokens = 16};
        tome_kvcache *kv = NULL;
        TT_OK(tome_kv_open(&kp, &kv));
        if (!kv) return;
        float *k = malloc((size_t)n * H * D * sizeof(float)), *v = malloc((size_t)n * H * D * sizeof(float));
        for (int64_t i = 0; i < n * H * D; i++) {
            k[i] = rnd_f(-2, 2);
            v[i] = rnd_f(-2, 2);
        }
        TT_OK(tome_kv_write(kv, 0, 0, 0, (size_t)n, k, v));
        /* chunked layer: the last chunk only (positions 128..149) */
        TT_OK(tome_kv_write(kv, 1, 0, 128, (size_t)(n - 128), k + 128 * H * D, v + 128 * H * D));
        const int64_t pos[] = {149, 0, 77, 128, 140, 15, 16};
        for (int layer = 0; layer < 2; layer++) {
            const int64_t lo = layer == 0 ? 0 : 128;
            /* reference values: float spans of the cache */
            test_kv t;
            test_kv_make(&t, TOME_KV_F32, 64, H, D, n, 0);
            for (int64_t at = lo; at < n;) {
                tome_kv_span sp;
                TT_OK(tome_kv_span_at(kv, layer, 0, at, n, &sp));
                if (sp.p1 <= at) break;
                for (int64_t q = sp.p0; q < sp.p1; q++) {
                    memcpy(t.tail_k + q * H * D, sp.k + (size_t)(q - sp.p0) * sp.row_stride, (size_t)H * D * 4);
                    memcpy(t.tail_v + q * H * D, sp.v + (size_t)(q - sp.p0) * sp.row_stride, (size_t)H * D * 4);
                }
                at = sp.p1;
            }
            const size_t nq = layer == 0 ? 7 : 2;
            const int64_t *pp = layer == 0 ? pos : pos + 3;
            attn_case c;
            case_make(&c, n_heads, H, D, layer == 0 ? 0 : C, nq, pp, 1.5f);
            case_reference(&c, &t);
            tome_attn_params p = {.q = c.q, .q_stride = (size_t)n_heads * D, .out = c.out,
                                  .out_stride = (size_t)n_heads * D, .q_pos = c.pos, .n_q = nq, .n_heads = n_heads,
                                  .n_kv_heads = H, .head_dim = D, .chunk = c.chunk, .kv = kv, .layer = layer,
                                  .lse = c.lse};
            TT_OK(tome_attention_cpu(&p));
            double e1 = case_rel_err(&c), le = case_lse_err(&c);
            /* split over threads, without lse */
            for (size_t i = 0; i < nq * (size_t)n_heads * D; i++) c.out[i] = NAN;
            p.lse = NULL;
            p.n_splits = 3;
            TT_OK(tome_attention_cpu(&p));
            double e2 = case_rel_err(&c);
            if (!(e1 <= 1e-5) || !(e2 <= 1e-5) || !(le <= 1e-5))
                tt_fail(__FILE__, __LINE__, "cache fmt %d layer %d: relative error %g / %g, lse %g", fmts[fi], layer, e1,
                        e2, le);
            case_free(&c);
            test_kv_free(&t);
        }
        /* a position of an earlier chunk is the cache's error, passed on */
        const int64_t old = 10;
        float q1[4 * 16] = {0}, o1[4 * 16];
        tome_attn_params p = {.q = q1, .q_stride = 64, .out = o1, .out_stride = 64, .q_pos = &old, .n_q = 1,
                              .n_heads = n_heads, .n_kv_heads = H, .head_dim = D, .chunk = C, .kv = kv, .layer = 1};
        TT_CHECK(tome_attention_cpu(&p) != TOME_OK);
        free(k);
        free(v);
        tome_kv_free(kv);
    }
}

static void test_errors(void)
{
    test_kv t;
    test_kv_make(&t, TOME_KV_INT4, 32, 2, 16, 100, 3);
    const int64_t pos[] = {10, 99};
    attn_case c;
    case_make(&c, 4, 2, 16, 0, 2, pos, 1.0f);
    tome_attn_params p = {.q = c.q, .q_stride = 64, .out = c.out, .out_stride = 64, .q_pos = c.pos, .n_q = 2,
                          .n_heads = 4, .n_kv_heads = 2, .head_dim = 16, .view_at = test_view_at, .view_ctx = &t};
    /* a page that cannot be read: the cache's message comes back */
    t.fail_at = 64;
    TT_STATUS(tome_attention_cpu(&p), TOME_ERR_IO);
    TT_CONTAINS(tome_last_error(), "position 64 unreadable");
    TT_STATUS(case_run(&c, &t, 3, 2), TOME_ERR_IO); /* split path too */
    t.fail_at = -1;
    /* shape mismatch between params and pages */
    p.n_heads = 2; /* same q row size (64 floats) */
    p.n_kv_heads = 1;
    p.head_dim = 32;
    TT_STATUS(tome_attention_cpu(&p), TOME_ERR_INVALID_ARG);
    TT_CONTAINS(tome_last_error(), "2 kv heads of 16 dims");
    p.n_heads = 4;
    p.n_kv_heads = 2;
    p.head_dim = 16;
    /* heads not a multiple of kv heads */
    p.n_heads = 3;
    TT_STATUS(tome_attention_cpu(&p), TOME_ERR_INVALID_ARG);
    p.n_heads = 4;
    /* unknown format in a view */
    t.fmt = 42;
    TT_STATUS(tome_attention_cpu(&p), TOME_ERR_FORMAT);
    TT_CONTAINS(tome_last_error(), "format 42");
    t.fmt = TOME_KV_INT4;
    /* negative position, missing cache */
    c.pos[0] = -1;
    TT_STATUS(tome_attention_cpu(&p), TOME_ERR_INVALID_ARG);
    c.pos[0] = 10;
    p.view_at = NULL;
    TT_STATUS(tome_attention_cpu(&p), TOME_ERR_INVALID_ARG);
    /* no queries: nothing to do */
    p.view_at = test_view_at;
    p.n_q = 0;
    TT_OK(tome_attention_cpu(&p));
    case_free(&c);
    test_kv_free(&t);
}

static void test_simd_builds(void)
{
    /* the exp approximation */
    float x[1000];
    for (int i = 0; i < 1000; i++) x[i] = -87.0f + 175.0f * (float)i / 999.0f;
    float y[1000];
    memcpy(y, x, sizeof x);
    attn_exp_generic(y, 997); /* odd count: the tail path */
    double worst = 0;
    for (int i = 0; i < 997; i++) {
        double e = fabs((double)y[i] - exp((double)x[i])) / exp((double)x[i]);
        worst = e > worst ? e : worst;
    }
    TT_CHECK(worst < 3e-7);
    TT_CHECK(y[997] == x[997]); /* untouched past n */
    float z[3] = {-INFINITY, -100.0f, 0.0f};
    attn_exp_generic(z, 3);
    TT_CHECK(z[0] == 0.0f && z[1] == 0.0f && z[2] == 1.0f);

    /* the selected build (AVX2 here when the CPU has it) equals the baseline within rounding */
    const char *name = NULL;
    attn_tile_fn best = attn_tile_select(&name);
    TT_CHECK(name != NULL && strcmp(name, tome_attention_cpu_isa()) == 0);
    const int hd = 72, rows = 7;
    float *kt = malloc((size_t)hd * ATTN_TK * sizeof(float)), *v = malloc((size_t)ATTN_TK * hd * sizeof(float));
    float *q = malloc((size_t)rows * hd * sizeof(float));
    float m[2][7], l[2][7], *acc[2], s[2][ATTN_TK];
    int lo[7], hi[7];
    for (int i = 0; i < hd * ATTN_TK; i++) {
        kt[i] = rnd_f(-1, 1);
        v[i] = rnd_f(-1, 1);
    }
    for (int i = 0; i < rows * hd; i++) q[i] = rnd_f(-1, 1);
    for (int r = 0; r < rows; r++) {
        lo[r] = r * 5;
        hi[r] = r == 3 ? lo[r] : ATTN_TK - r;
    }
    for (int b = 0; b < 2; b++) {
        acc[b] = malloc((size_t)rows * hd * sizeof(float));
        for (int r = 0; r < rows; r++) {
            m[b][r] = r == 0 ? -INFINITY : 0.5f;
            l[b][r] = r == 0 ? 0 : 2.0f;
        }
        for (int i = 0; i < rows * hd; i++) acc[b][i] = (float)((i * 37) % 11) * 0.1f;
    }
    for (int b = 0; b < 2; b++) {
        attn_tile_args a = {.kt = kt, .v = v, .hd = hd, .n_rows = rows, .q = q, .lo = lo, .hi = hi, .m = m[b],
                            .l = l[b], .acc = acc[b], .s = s[b]};
        (b ? best : attn_tile_generic)(&a);
    }
    double num = 0, den = 0;
    for (int i = 0; i < rows * hd; i++) {
        num += ((double)acc[0][i] - acc[1][i]) * ((double)acc[0][i] - acc[1][i]);
        den += (double)acc[0][i] * acc[0][i];
    }
    TT_CHECK(sqrt(num / den) < 1e-6);
    for (int r = 0; r < rows; r++) TT_NEAR(l[0][r], l[1][r], 1e-5 * l[0][r]);
    TT_CHECK(m[0][3] == 0.5f && l[0][3] == 2.0f); /* empty row untouched */

    /* row-major K (decode kernel) against the transposed one, both builds */
    attn_kernels kb;
    attn_kernels_select(&kb);
    float *krow = malloc((size_t)ATTN_TK * hd * sizeof(float));
    for (int j = 0; j < ATTN_TK; j++)
        for (int d = 0; d < hd; d++) krow[j * hd + d] = kt[d * ATTN_TK + j];
    for (int b = 0; b < 2; b++) {
        float mm[7], ll[7], *ac = malloc((size_t)rows * hd * sizeof(float));
        for (int r = 0; r < rows; r++) {
            mm[r] = r == 0 ? -INFINITY : 0.5f;
            ll[r] = r == 0 ? 0 : 2.0f;
        }
        for (int i = 0; i < rows * hd; i++) ac[i] = (float)((i * 37) % 11) * 0.1f;
        attn_tile_args a = {.kt = krow, .v = v, .hd = hd, .n_rows = rows, .q = q, .lo = lo, .hi = hi, .m = mm,
                            .l = ll, .acc = ac, .s = s[0]};
        (b ? kb.tile_rowk : attn_tile_rowk_generic)(&a);
        double nn = 0;
        for (int i = 0; i < rows * hd; i++) nn += ((double)ac[i] - acc[0][i]) * ((double)ac[i] - acc[0][i]);
        TT_CHECK(sqrt(nn / den) < 1e-6);
        for (int r = 0; r < rows; r++) TT_NEAR(ll[r], l[0][r], 1e-5 * l[0][r]);
        free(ac);
    }
    free(krow);
    /* bf16 rows */
    uint16_t hb[16];
    float fb[2][16];
    for (int i = 0; i < 16; i++) hb[i] = tome_kv_f32_to_bf16(rnd_f(-3, 3));
    attn_bf16_row_generic((const uint8_t *)hb, fb[0], 16);
    kb.bf16_row((const uint8_t *)hb, fb[1], 16);
    for (int i = 0; i < 16; i++) TT_CHECK(fb[0][i] == tome_kv_bf16_to_f32(hb[i]) && fb[1][i] == fb[0][i]);
    free(kt);
    free(v);
    free(q);
    free(acc[0]);
    free(acc[1]);
}

int main(void)
{
    TT_RUN(test_simd_builds);
    TT_RUN(test_causal_f32);
    TT_RUN(test_chunked_f32);
    TT_RUN(test_head_dims);
    TT_RUN(test_query_subset);
    TT_RUN(test_decode_split);
    TT_RUN(test_formats);
    TT_RUN(test_long_context);
    TT_RUN(test_real_cache);
    TT_RUN(test_errors);
    return tt_finish();
}
