/*
 * tests/test_attention_pages.h — random KV pages in the shared layout
 * (kvcache/kv_layout.h) for the attention tests: sealed pages of any
 * format plus an open page of float rows, served through the attention
 * params' view_at hook; and their fp32 equivalent (every value dequantized
 * by kv_layout.h's own tome_kv_value). Header-only, static functions.
 */
#ifndef TOME_TEST_ATTENTION_PAGES_H
#define TOME_TEST_ATTENTION_PAGES_H

#include <stdlib.h>
#include <string.h>

#include "core/error_impl.h"
#include "kvcache/kv_layout.h"
#include "tt.h"

/* ------------------------------------------------------------ random */
static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

static inline uint64_t rnd_u64(void)
{
    uint64_t z = (g_rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline float rnd_f(float lo, float hi) { return lo + (hi - lo) * (float)((double)(rnd_u64() >> 40) / 16777216.0); }

/* ------------------------------------------------------------ test pages */
/* Positions [0, n_pos) of one (layer, seq): n_sealed pages of T rows in
 * format fmt, then float rows for the rest (the open page). */
typedef struct test_kv {
    tome_kv_layout L;
    int fmt, T, H, D, G;
    int64_t n_pos, n_sealed;
    uint8_t **pages;          /* [n_sealed] sealed blocks                    */
    float *tail_k, *tail_v;   /* [n_pos - n_sealed*T][H*D]                   */
    int fail_at;              /* >= 0: view of that position fails           */
} test_kv;

static inline void test_kv_free(test_kv *t)
{
    for (int64_t i = 0; t->pages && i < t->n_sealed; i++) free(t->pages[i]);
    free(t->pages);
    free(t->tail_k);
    free(t->tail_v);
    memset(t, 0, sizeof *t);
}

static inline void fill_codes(uint8_t *dst, size_t n, int fmt)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t b = (uint8_t)rnd_u64();
        if (fmt == TOME_KV_FP8 && (b & 0x7f) == 0x7f) b = (uint8_t)(b ^ 0x01); /* no NaN codes */
        dst[i] = b;
    }
}

/* Random data: values are N(0,1)-like floats, codes uniform, scales such
 * that dequantized values are O(1). */
static inline void test_kv_make(test_kv *t, int fmt, int T, int H, int D, int64_t n_pos, int64_t n_sealed)
{
    memset(t, 0, sizeof *t);
    t->fmt = fmt;
    t->T = T;
    t->H = H;
    t->D = D;
    t->G = D;
    while (t->G > 32 || D % t->G != 0) t->G--; /* largest divisor of D up to 32 */
    t->n_pos = n_pos;
    t->n_sealed = n_sealed;
    t->fail_at = -1;
    TT_CHECK(tome_kv_layout_init(&t->L, fmt, T, H, D, t->G) == 0);
    const int HD = H * D;
    t->pages = calloc((size_t)n_sealed + 1, sizeof *t->pages);
    for (int64_t pg = 0; pg < n_sealed; pg++) {
        uint8_t *b = calloc(1, t->L.page_bytes);
        t->pages[pg] = b;
        tome_kv_page_hdr h = {.magic = TOME_KV_PAGE_MAGIC, .fmt = (uint16_t)fmt, .group = (uint16_t)t->G,
                              .page_tokens = (uint32_t)T, .n_tokens = (uint32_t)T, .p0 = pg * T,
                              .n_kv_heads = (uint16_t)H, .head_dim = (uint16_t)D};
        memcpy(b, &h, sizeof h);
        for (int kv = 0; kv < 2; kv++) {
            uint8_t *codes = b + (kv ? t->L.v_off : t->L.k_off);
            if (fmt == TOME_KV_F32 || fmt == TOME_KV_BF16) {
                for (int r = 0; r < T; r++)
                    for (int c = 0; c < HD; c++) {
                        float f = rnd_f(-2, 2);
                        if (fmt == TOME_KV_F32) memcpy(codes + ((size_t)r * HD + c) * 4, &f, 4);
                        else {
                            uint16_t bf = tome_kv_f32_to_bf16(f);
                            memcpy(codes + ((size_t)r * HD + c) * 2, &bf, 2);
                        }
                    }
            } else {
                fill_codes(codes, (size_t)T * t->L.row_bytes, fmt);
            }
        }
        if (tome_kv_fmt_scaled(fmt)) {
            const float smax = fmt == TOME_KV_FP8 ? 0.01f : 4.0f / (float)tome_kv_fmt_levels(fmt);
            uint16_t *ks = (uint16_t *)(void *)(b + t->L.ks_off), *kz = (uint16_t *)(void *)(b + t->L.kz_off);
            uint16_t *vs = (uint16_t *)(void *)(b + t->L.vs_off), *vz = (uint16_t *)(void *)(b + t->L.vz_off);
            for (int c = 0; c < HD; c++) {
                ks[c] = tome_kv_f32_to_f16(rnd_f(0.2f, 1.0f) * smax);
                kz[c] = tome_kv_f32_to_f16(rnd_f(-2, 0));
            }
            for (int i = 0; i < T * t->L.groups_row; i++) {
                vs[i] = tome_kv_f32_to_f16(rnd_f(0.2f, 1.0f) * smax);
                vz[i] = tome_kv_f32_to_f16(rnd_f(-2, 0));
            }
        }
    }
    const int64_t n_tail = n_pos - n_sealed * T;
    t->tail_k = malloc(((size_t)n_tail + 1) * (size_t)HD * sizeof(float));
    t->tail_v = malloc(((size_t)n_tail + 1) * (size_t)HD * sizeof(float));
    for (int64_t i = 0; i < n_tail * HD; i++) {
        t->tail_k[i] = rnd_f(-2, 2);
        t->tail_v[i] = rnd_f(-2, 2);
    }
}

static inline tome_status test_view_at(void *ctx, int64_t p, int64_t p_end, tome_kv_view *w)
{
    test_kv *t = ctx;
    if (p == t->fail_at) return tome_set_error(TOME_ERR_IO, "test pages: position %lld unreadable", (long long)p);
    if (p < 0 || p >= t->n_pos || p_end <= p)
        return tome_set_error(TOME_ERR_INVALID_ARG, "test pages: position %lld outside [0, %lld)", (long long)p,
                              (long long)t->n_pos);
    if (p_end > t->n_pos) p_end = t->n_pos;
    memset(w, 0, sizeof *w);
    w->n_kv_heads = t->H;
    w->head_dim = t->D;
    w->page_tokens = t->T;
    w->group = t->G;
    w->p0 = p;
    const int64_t pg = p / t->T;
    if (pg < t->n_sealed) {
        const uint8_t *b = t->pages[pg];
        w->page_p0 = pg * t->T;
        w->p1 = p_end < w->page_p0 + t->T ? p_end : w->page_p0 + t->T;
        w->fmt = t->fmt;
        w->bits = t->L.bits;
        w->row_bytes = t->L.row_bytes;
        w->k = b + t->L.k_off;
        w->v = b + t->L.v_off;
        if (tome_kv_fmt_scaled(t->fmt)) {
            w->k_scale = (const uint16_t *)(const void *)(b + t->L.ks_off);
            w->k_zero = (const uint16_t *)(const void *)(b + t->L.kz_off);
            w->v_scale = (const uint16_t *)(const void *)(b + t->L.vs_off);
            w->v_zero = (const uint16_t *)(const void *)(b + t->L.vz_off);
        }
        w->hdr = (const tome_kv_page_hdr *)(const void *)b;
    } else {
        w->page_p0 = t->n_sealed * t->T;
        w->p1 = p_end;
        w->fmt = TOME_KV_F32;
        w->bits = 32;
        w->row_bytes = (uint32_t)(t->H * t->D * 4);
        w->k = (const uint8_t *)t->tail_k;
        w->v = (const uint8_t *)t->tail_v;
    }
    return TOME_OK;
}

/* The fp32 equivalent of t: every value dequantized by kv_layout.h's
 * tome_kv_value, as float rows in pages of T2 tokens (all sealed F32). */
static inline void test_kv_dequant(const test_kv *t, int T2, test_kv *out)
{
    memset(out, 0, sizeof *out);
    const int HD = t->H * t->D;
    float *k = malloc((size_t)t->n_pos * HD * sizeof(float)), *v = malloc((size_t)t->n_pos * HD * sizeof(float));
    for (int64_t p = 0; p < t->n_pos;) {
        tome_kv_view w = {0};
        TT_OK(test_view_at((void *)t, p, t->n_pos, &w));
        for (int64_t q = w.p0; q < w.p1; q++)
            for (int c = 0; c < HD; c++) {
                k[q * HD + c] = tome_kv_value(&w, 0, (int)(q - w.page_p0), c);
                v[q * HD + c] = tome_kv_value(&w, 1, (int)(q - w.page_p0), c);
            }
        p = w.p1;
    }
    int64_t n_sealed = t->n_pos / T2;
    test_kv_make(out, TOME_KV_F32, T2, t->H, t->D, n_sealed * T2, n_sealed); /* shapes; data overwritten */
    free(out->tail_k);
    free(out->tail_v);
    out->n_pos = t->n_pos;
    for (int64_t pg = 0; pg < n_sealed; pg++) {
        memcpy(out->pages[pg] + out->L.k_off, k + pg * T2 * HD, (size_t)T2 * HD * 4);
        memcpy(out->pages[pg] + out->L.v_off, v + pg * T2 * HD, (size_t)T2 * HD * 4);
    }
    const int64_t n_tail = t->n_pos - n_sealed * T2;
    out->tail_k = malloc(((size_t)n_tail + 1) * HD * sizeof(float));
    out->tail_v = malloc(((size_t)n_tail + 1) * HD * sizeof(float));
    memcpy(out->tail_k, k + n_sealed * T2 * HD, (size_t)n_tail * HD * 4);
    memcpy(out->tail_v, v + n_sealed * T2 * HD, (size_t)n_tail * HD * 4);
    free(k);
    free(v);
}

#endif /* TOME_TEST_ATTENTION_PAGES_H */
