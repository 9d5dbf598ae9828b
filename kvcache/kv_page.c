/*
 * kvcache/kv_page.c — seal (quantize) and open (dequantize) one KV page.
 *
 * Layout and formats: kv_layout.h. K is quantized per channel over the
 * page's T rows, V per row in groups of G channels. Integer formats are
 * asymmetric: zero = min rounded to fp16, scale = (max - zero) / levels
 * rounded to fp16 and nudged up one fp16 step when the rounding would make
 * max unreachable; codes are round((x - zero) / scale) clamped to the code
 * range. fp8 is symmetric: scale = absmax / 448, code = e4m3(x / scale).
 * Everything is computed with the stored (fp16) scales so that dequantizing
 * reproduces exactly what the encoder assumed.
 */
#include "kvcache/kv_page_impl.h"

#include <math.h>
#include <string.h>
#include <xxhash.h>

#include "core/error_impl.h"

uint64_t tome_kv_page_checksum(const tome_kv_layout *L, const uint8_t *page)
{
    return XXH3_64bits(page + 8, (size_t)L->page_bytes - 8);
}

/* fp16 scale/zero for values in [lo, hi] with `levels` steps. */
static void int_params(float lo, float hi, int levels, uint16_t *s_out, uint16_t *z_out, float *sf, float *zf)
{
    uint16_t zh = tome_kv_f32_to_f16(lo);
    float z = tome_kv_f16_to_f32(zh);
    if (z > lo) { /* keep lo reachable: step the zero down */
        zh = (zh & 0x8000u) ? (uint16_t)(zh + 1) : (zh == 0 ? (uint16_t)0x8001u : (uint16_t)(zh - 1));
        z = tome_kv_f16_to_f32(zh);
    }
    float s = (hi - z) / (float)levels;
    uint16_t sh = tome_kv_f32_to_f16(s > 0 ? s : 0);
    float sv = tome_kv_f16_to_f32(sh);
    if (hi > z && (sv == 0 || sv * (float)levels + z < hi) && sh < 0x7bffu) {
        sh++;
        sv = tome_kv_f16_to_f32(sh);
    }
    *s_out = sh;
    *z_out = zh;
    *sf = sv;
    *zf = z;
}

/* inv: 1 / scale (0 when the scale is 0) */
static inline uint32_t int_code(float x, float inv, float z, int levels)
{
    if (!(inv > 0)) return 0;
    float q = (x - z) * inv;
    q = rintf(q);
    if (!(q > 0)) return 0; /* also NaN */
    if (q > (float)levels) return (uint32_t)levels;
    return (uint32_t)q;
}

static inline void put_code(uint8_t *row, int bits, int c, uint32_t code)
{
    if (bits == 8)
        row[c] = (uint8_t)code;
    else if (bits == 4)
        row[c >> 1] |= (uint8_t)(code << ((c & 1) * 4));
    else
        row[c >> 2] |= (uint8_t)(code << ((c & 3) * 2));
}

static void put_f16(uint8_t *base, size_t i, uint16_t h) { memcpy(base + 2 * i, &h, 2); }

void tome_kv_page_seal_scalar(const tome_kv_layout *L, const float *k, const float *v, int64_t p0, int layer, int seq,
                       uint8_t *page)
{
    const int T = L->page_tokens, HD = L->hd, G = L->group, fmt = L->fmt, bits = L->bits;
    memset(page, 0, L->page_bytes);
    tome_kv_page_hdr h = {0};
    h.magic = TOME_KV_PAGE_MAGIC;
    h.fmt = (uint16_t)fmt;
    h.group = (uint16_t)G;
    h.page_tokens = (uint32_t)T;
    h.n_tokens = (uint32_t)T;
    h.p0 = p0;
    h.n_kv_heads = (uint16_t)L->n_kv_heads;
    h.head_dim = (uint16_t)L->head_dim;
    h.layer = (uint32_t)layer;
    h.seq = (uint32_t)seq;
    uint8_t *K = page + L->k_off, *V = page + L->v_off;
    const size_t n = (size_t)T * (size_t)HD;
    if (fmt == TOME_KV_F32) {
        memcpy(K, k, n * 4);
        memcpy(V, v, n * 4);
    } else if (fmt == TOME_KV_BF16) {
        for (size_t i = 0; i < n; i++) {
            uint16_t a = tome_kv_f32_to_bf16(k[i]), b = tome_kv_f32_to_bf16(v[i]);
            memcpy(K + 2 * i, &a, 2);
            memcpy(V + 2 * i, &b, 2);
        }
    } else {
        const int levels = tome_kv_fmt_levels(fmt);
        uint8_t *ks = page + L->ks_off, *kz = page + L->kz_off, *vs = page + L->vs_off, *vz = page + L->vz_off;
        /* K: per channel over the T rows, channels in blocks of KB */
        enum { KB = 512 };
        float lo[KB], hi[KB], sf[KB], zf[KB], inv[KB];
        for (int c0 = 0; c0 < HD; c0 += KB) {
            const int cn = HD - c0 < KB ? HD - c0 : KB;
            for (int c = 0; c < cn; c++) {
                lo[c] = INFINITY;
                hi[c] = -INFINITY;
            }
            for (int r = 0; r < T; r++) {
                const float *x = k + (size_t)r * HD + c0;
                for (int c = 0; c < cn; c++) {
                    lo[c] = x[c] < lo[c] ? x[c] : lo[c];
                    hi[c] = x[c] > hi[c] ? x[c] : hi[c];
                }
            }
            for (int c = 0; c < cn; c++) {
                uint16_t sh, zh;
                if (fmt == TOME_KV_FP8) {
                    float a = fmaxf(fabsf(lo[c]), fabsf(hi[c]));
                    sh = tome_kv_f32_to_f16(a / 448.0f);
                    sf[c] = tome_kv_f16_to_f32(sh);
                    if (a > 0 && (sf[c] == 0 || sf[c] * 448.0f < a) && sh < 0x7bffu) sf[c] = tome_kv_f16_to_f32(++sh);
                    zh = 0;
                    zf[c] = 0;
                } else {
                    int_params(lo[c], hi[c], levels, &sh, &zh, &sf[c], &zf[c]);
                }
                inv[c] = sf[c] > 0 ? 1.0f / sf[c] : 0.0f;
                put_f16(ks, (size_t)(c0 + c), sh);
                put_f16(kz, (size_t)(c0 + c), zh);
            }
            for (int r = 0; r < T; r++) {
                const float *x = k + (size_t)r * HD + c0;
                uint8_t *row = K + (size_t)r * L->row_bytes;
                if (fmt == TOME_KV_FP8)
                    for (int c = 0; c < cn; c++) row[c0 + c] = inv[c] > 0 ? tome_kv_f32_to_e4m3(x[c] * inv[c]) : 0;
                else
                    for (int c = 0; c < cn; c++) put_code(row, bits, c0 + c, int_code(x[c], inv[c], zf[c], levels));
            }
        }
        /* V: per row, per group of G channels */
        for (int r = 0; r < T; r++) {
            const float *x = v + (size_t)r * HD;
            uint8_t *row = V + (size_t)r * L->row_bytes;
            for (int g = 0; g < L->groups_row; g++) {
                float glo = INFINITY, ghi = -INFINITY;
                for (int c = g * G; c < (g + 1) * G; c++) {
                    if (x[c] < glo) glo = x[c];
                    if (x[c] > ghi) ghi = x[c];
                }
                uint16_t sh, zh;
                float gs, gz;
                if (fmt == TOME_KV_FP8) {
                    float a = fmaxf(fabsf(glo), fabsf(ghi));
                    sh = tome_kv_f32_to_f16(a / 448.0f);
                    gs = tome_kv_f16_to_f32(sh);
                    if (a > 0 && (gs == 0 || gs * 448.0f < a) && sh < 0x7bffu) gs = tome_kv_f16_to_f32(++sh);
                    zh = 0;
                    float gi = gs > 0 ? 1.0f / gs : 0;
                    for (int c = g * G; c < (g + 1) * G; c++) row[c] = gs > 0 ? tome_kv_f32_to_e4m3(x[c] * gi) : 0;
                } else {
                    int_params(glo, ghi, levels, &sh, &zh, &gs, &gz);
                    float gi = gs > 0 ? 1.0f / gs : 0.0f;
                    for (int c = g * G; c < (g + 1) * G; c++) put_code(row, bits, c, int_code(x[c], gi, gz, levels));
                }
                size_t si = (size_t)r * (size_t)L->groups_row + (size_t)g;
                put_f16(vs, si, sh);
                put_f16(vz, si, zh);
            }
        }
    }
    memcpy(page, &h, sizeof h);
    h.checksum = tome_kv_page_checksum(L, page);
    memcpy(page, &h.checksum, 8);
}

tome_status tome_kv_page_verify(const tome_kv_layout *L, const uint8_t *page, int64_t expect_p0, const char *what)
{
    tome_kv_page_hdr h;
    memcpy(&h, page, sizeof h);
    if (h.magic != TOME_KV_PAGE_MAGIC)
        return tome_set_error(TOME_ERR_FORMAT, "%s: not a KV page (bad magic 0x%08x)", what, (unsigned)h.magic);
    if (h.fmt != (uint16_t)L->fmt || h.page_tokens != (uint32_t)L->page_tokens || h.group != (uint16_t)L->group ||
        h.n_kv_heads != (uint16_t)L->n_kv_heads || h.head_dim != (uint16_t)L->head_dim)
        return tome_set_error(TOME_ERR_FORMAT, "%s: page header disagrees with the cache layout (format %u, %u tokens)",
                              what, (unsigned)h.fmt, (unsigned)h.page_tokens);
    uint64_t want = tome_kv_page_checksum(L, page);
    if (want != h.checksum)
        return tome_set_error(TOME_ERR_FORMAT, "%s: checksum mismatch (stored %016llx, computed %016llx)", what,
                              (unsigned long long)h.checksum, (unsigned long long)want);
    if (expect_p0 >= 0 && h.p0 != expect_p0)
        return tome_set_error(TOME_ERR_FORMAT, "%s: page holds position %lld, expected %lld", what, (long long)h.p0,
                              (long long)expect_p0);
    return TOME_OK;
}

void tome_kv_page_view(const tome_kv_layout *L, const uint8_t *page, tome_kv_view *w)
{
    memset(w, 0, sizeof *w);
    const tome_kv_page_hdr *h = (const tome_kv_page_hdr *)(const void *)page;
    w->page_p0 = h->p0;
    w->p0 = h->p0;
    w->p1 = h->p0 + L->page_tokens;
    w->fmt = L->fmt;
    w->page_tokens = L->page_tokens;
    w->n_kv_heads = L->n_kv_heads;
    w->head_dim = L->head_dim;
    w->group = L->group;
    w->bits = L->bits;
    w->row_bytes = L->row_bytes;
    w->k = page + L->k_off;
    w->v = page + L->v_off;
    if (tome_kv_fmt_scaled(L->fmt)) {
        w->k_scale = (const uint16_t *)(const void *)(page + L->ks_off);
        w->k_zero = (const uint16_t *)(const void *)(page + L->kz_off);
        w->v_scale = (const uint16_t *)(const void *)(page + L->vs_off);
        w->v_zero = (const uint16_t *)(const void *)(page + L->vz_off);
    }
    w->hdr = h;
}

static inline float get_f16(const uint8_t *base, size_t i)
{
    uint16_t h;
    memcpy(&h, base + 2 * i, 2);
    return tome_kv_f16_to_f32(h);
}

static void dequant_impl(const tome_kv_layout *L, const uint8_t *page, int is_v, int r0, int r1, float *out, int fast)
{
    const int HD = L->hd, G = L->group, fmt = L->fmt;
    const uint8_t *D = page + (is_v ? L->v_off : L->k_off);
    if (fmt == TOME_KV_F32) {
        memcpy(out, D + (size_t)r0 * L->row_bytes, (size_t)(r1 - r0) * L->row_bytes);
        return;
    }
    if (fmt == TOME_KV_BF16) {
        for (int r = r0; r < r1; r++) {
            const uint8_t *row = D + (size_t)r * L->row_bytes;
            float *o = out + (size_t)(r - r0) * HD;
            for (int c = 0; c < HD; c++) {
                uint16_t b;
                memcpy(&b, row + 2 * c, 2);
                o[c] = tome_kv_bf16_to_f32(b);
            }
        }
        return;
    }
    /* unpack a row's codes to bytes, then value = lut[code] * scale + zero with
     * K scales per channel (converted once per call, in blocks) and V scales
     * per group of G channels */
    enum { CB = 2048 };
    float lut[256], sc[CB], zc[CB];
    uint8_t codes[CB];
    if (fmt == TOME_KV_FP8)
        for (int i = 0; i < 256; i++) lut[i] = tome_kv_e4m3_to_f32((uint8_t)i);
    else
        for (int i = 0; i < 256; i++) lut[i] = (float)i;
    const uint8_t *S = page + (is_v ? L->vs_off : L->ks_off), *Z = page + (is_v ? L->vz_off : L->kz_off);
    const int bits = L->bits;
    /* blocks of whole groups and whole bytes: a multiple of 4*G channels */
    const int cb = HD <= CB ? HD : (CB / (4 * G)) * 4 * G;
    if (cb == 0) { /* huge groups: the generic path */
        tome_kv_view w;
        tome_kv_page_view(L, page, &w);
        for (int r = r0; r < r1; r++) tome_kv_dequant_row(&w, is_v, r, 0, HD, out + (size_t)(r - r0) * HD);
        return;
    }
    for (int c0 = 0; c0 < HD; c0 += cb) {
        const int cn = HD - c0 < cb ? HD - c0 : cb;
        if (!is_v)
            for (int c = 0; c < cn; c++) {
                sc[c] = get_f16(S, (size_t)(c0 + c));
                zc[c] = get_f16(Z, (size_t)(c0 + c));
            }
        for (int r = r0; r < r1; r++) {
            const uint8_t *row = D + (size_t)r * L->row_bytes;
            float *o = out + (size_t)(r - r0) * HD + c0;
            if (bits == 8) {
                memcpy(codes, row + c0, (size_t)cn);
            } else if (bits == 4) {
                const uint8_t *b = row + c0 / 2;
                for (int i = 0; i < cn / 2; i++) {
                    codes[2 * i] = b[i] & 0xf;
                    codes[2 * i + 1] = b[i] >> 4;
                }
            } else {
                const uint8_t *b = row + c0 / 4;
                for (int i = 0; i < cn / 4; i++) {
                    codes[4 * i] = b[i] & 3;
                    codes[4 * i + 1] = (b[i] >> 2) & 3;
                    codes[4 * i + 2] = (b[i] >> 4) & 3;
                    codes[4 * i + 3] = b[i] >> 6;
                }
            }
            if (fast && fmt != TOME_KV_FP8) { /* (float)code == lut[code]: vectorizes */
                if (!is_v) {
                    for (int c = 0; c < cn; c++) o[c] = (float)codes[c] * sc[c] + zc[c];
                } else {
                    for (int g0 = 0; g0 < cn; g0 += G) {
                        size_t si = (size_t)r * (size_t)L->groups_row + (size_t)((c0 + g0) / G);
                        const float s = get_f16(S, si), z = get_f16(Z, si);
                        for (int c = g0; c < g0 + G; c++) o[c] = (float)codes[c] * s + z;
                    }
                }
            } else if (!is_v) {
                for (int c = 0; c < cn; c++) o[c] = lut[codes[c]] * sc[c] + zc[c];
            } else {
                for (int g0 = 0; g0 < cn; g0 += G) {
                    size_t si = (size_t)r * (size_t)L->groups_row + (size_t)((c0 + g0) / G);
                    const float s = get_f16(S, si), z = get_f16(Z, si);
                    for (int c = g0; c < g0 + G; c++) o[c] = lut[codes[c]] * s + z;
                }
            }
        }
    }
}


/* ------------------------------------------------------------ fast paths
 *
 * The same arithmetic as the scalar functions above, written as
 * branch-free loops over arrays that gcc vectorizes (SSE2 on any x86-64;
 * checked with -fopt-info-vec), so the page bytes are identical:
 *
 *   - K min/max per channel over the rows: element-wise, the same order.
 *   - V min/max per group: a reduction in 8 lanes. The minimum of a set of
 *     non-NaN floats does not depend on the order, except between +0 and -0
 *     (which of them the scalar loop keeps depends on the order), so a group
 *     whose min or max is zero is recomputed in the scalar order.
 *   - codes: round((x - z) * inv) clamped to [0, levels] equals the scalar
 *     rintf-then-clamp (rint is monotone and the bounds are integers); after
 *     the clamp, rint is (q + 1.5*2^23) - 1.5*2^23 (round to nearest even).
 *     inv == 0 gives q = 0 or NaN, both code 0, as in the scalar code.
 *   - e4m3: the scalar rounding as integer arithmetic on the float's bits
 *     (normal range) or the magic-number rint (subnormal range), selected.
 */
#define KV_MAGIC 12582912.0f /* 1.5 * 2^23 */

void tome_kv_page_dequant_scalar(const tome_kv_layout *L, const uint8_t *page, int is_v, int r0, int r1, float *out)
{
    dequant_impl(L, page, is_v, r0, r1, out, 0);
}

void tome_kv_page_dequant(const tome_kv_layout *L, const uint8_t *page, int is_v, int r0, int r1, float *out)
{
    dequant_impl(L, page, is_v, r0, r1, out, 1);
}

static inline uint8_t e4m3_fast(float f)
{
    uint32_t u = tome_kv_f32_as_u32(f), au = u & 0x7fffffffu, sign = (u >> 24) & 0x80u;
    float a = tome_kv_u32_as_f32(au);
    uint32_t bn = ((au + 0x7ffffu + ((au >> 20) & 1u)) >> 20) - 960u; /* (e - 120) << 3 | m >> 20, rounded */
    float qs = a * 512.0f;
    qs = qs < 8.0f ? qs : 8.0f;
    uint32_t bs = (uint32_t)(int32_t)((qs + KV_MAGIC) - KV_MAGIC);
    uint32_t b = a < 0.015625f ? bs : bn;
    b = b > 0x7eu ? 0x7eu : b;
    b |= sign;
    return (uint8_t)(au > 0x7f800000u ? 0x7fu : b);
}

uint8_t tome_kv_f32_to_e4m3_fast(float f) { return e4m3_fast(f); }

/* codes of n values x with per-channel inverse scales and zeros (K) */
static void int_codes(const float *x, const float *inv, const float *z, int n, float levels, uint8_t *out)
{
    for (int c = 0; c < n; c++) {
        float q = (x[c] - z[c]) * inv[c];
        q = q > 0.0f ? q : 0.0f;
        q = q < levels ? q : levels;
        out[c] = (uint8_t)(int32_t)((q + KV_MAGIC) - KV_MAGIC);
    }
}

/* the same with one inverse scale and zero (a V group) */
static void int_codes1(const float *x, float inv, float z, int n, float levels, uint8_t *out)
{
    for (int c = 0; c < n; c++) {
        float q = (x[c] - z) * inv;
        q = q > 0.0f ? q : 0.0f;
        q = q < levels ? q : levels;
        out[c] = (uint8_t)(int32_t)((q + KV_MAGIC) - KV_MAGIC);
    }
}

static void pack_codes(const uint8_t *codes, int n, int bits, uint8_t *row)
{
    if (bits == 8) {
        memcpy(row, codes, (size_t)n);
    } else if (bits == 4) {
        for (int i = 0; i < n / 2; i++) row[i] = (uint8_t)(codes[2 * i] | (codes[2 * i + 1] << 4));
        if (n & 1) row[n / 2] = codes[n - 1];
    } else {
        for (int i = 0; i < n / 4; i++)
            row[i] = (uint8_t)(codes[4 * i] | (codes[4 * i + 1] << 2) | (codes[4 * i + 2] << 4) | (codes[4 * i + 3] << 6));
        for (int c = n & ~3; c < n; c++) row[c >> 2] |= (uint8_t)(codes[c] << ((c & 3) * 2));
    }
}

/* min and max of x[0..n) in the scalar order's result (see above) */
static void minmax(const float *x, int n, float *lo_out, float *hi_out)
{
    float lo[8], hi[8];
    for (int l = 0; l < 8; l++) {
        lo[l] = INFINITY;
        hi[l] = -INFINITY;
    }
    int c = 0;
    for (; c + 8 <= n; c += 8)
        for (int l = 0; l < 8; l++) {
            lo[l] = x[c + l] < lo[l] ? x[c + l] : lo[l];
            hi[l] = x[c + l] > hi[l] ? x[c + l] : hi[l];
        }
    float glo = INFINITY, ghi = -INFINITY;
    for (int l = 0; l < 8; l++) {
        if (lo[l] < glo) glo = lo[l];
        if (hi[l] > ghi) ghi = hi[l];
    }
    for (; c < n; c++) {
        if (x[c] < glo) glo = x[c];
        if (x[c] > ghi) ghi = x[c];
    }
    if (glo == 0.0f || ghi == 0.0f) { /* +0 / -0: the scalar order decides */
        glo = INFINITY;
        ghi = -INFINITY;
        for (c = 0; c < n; c++) {
            if (x[c] < glo) glo = x[c];
            if (x[c] > ghi) ghi = x[c];
        }
    }
    *lo_out = glo;
    *hi_out = ghi;
}

static uint16_t fp8_scale(float lo, float hi, float *sf)
{
    float a = fmaxf(fabsf(lo), fabsf(hi));
    uint16_t sh = tome_kv_f32_to_f16(a / 448.0f);
    *sf = tome_kv_f16_to_f32(sh);
    if (a > 0 && (*sf == 0 || *sf * 448.0f < a) && sh < 0x7bffu) *sf = tome_kv_f16_to_f32(++sh);
    return sh;
}

void tome_kv_page_seal(const tome_kv_layout *L, const float *k, const float *v, int64_t p0, int layer, int seq,
                       uint8_t *page)
{
    const int T = L->page_tokens, HD = L->hd, G = L->group, fmt = L->fmt, bits = L->bits;
    if (!tome_kv_fmt_scaled(fmt) || G > 4096) {
        tome_kv_page_seal_scalar(L, k, v, p0, layer, seq, page);
        return;
    }
    memset(page, 0, L->page_bytes);
    tome_kv_page_hdr h = {0};
    h.magic = TOME_KV_PAGE_MAGIC;
    h.fmt = (uint16_t)fmt;
    h.group = (uint16_t)G;
    h.page_tokens = (uint32_t)T;
    h.n_tokens = (uint32_t)T;
    h.p0 = p0;
    h.n_kv_heads = (uint16_t)L->n_kv_heads;
    h.head_dim = (uint16_t)L->head_dim;
    h.layer = (uint32_t)layer;
    h.seq = (uint32_t)seq;
    uint8_t *K = page + L->k_off, *V = page + L->v_off;
    const int levels = tome_kv_fmt_levels(fmt);
    const float flev = (float)levels;
    uint8_t *ks = page + L->ks_off, *kz = page + L->kz_off, *vs = page + L->vs_off, *vz = page + L->vz_off;
    enum { KB = 512 };
    float lo[KB], hi[KB], sf[KB], zf[KB], inv[KB];
    uint8_t codes[KB > 4096 ? KB : 4096];
    for (int c0 = 0; c0 < HD; c0 += KB) {
        const int cn = HD - c0 < KB ? HD - c0 : KB;
        for (int c = 0; c < cn; c++) {
            lo[c] = INFINITY;
            hi[c] = -INFINITY;
        }
        for (int r = 0; r < T; r++) {
            const float *x = k + (size_t)r * HD + c0;
            for (int c = 0; c < cn; c++) {
                lo[c] = x[c] < lo[c] ? x[c] : lo[c];
                hi[c] = x[c] > hi[c] ? x[c] : hi[c];
            }
        }
        for (int c = 0; c < cn; c++) {
            uint16_t sh, zh = 0;
            if (fmt == TOME_KV_FP8) {
                sh = fp8_scale(lo[c], hi[c], &sf[c]);
                zf[c] = 0;
            } else {
                int_params(lo[c], hi[c], levels, &sh, &zh, &sf[c], &zf[c]);
            }
            inv[c] = sf[c] > 0 ? 1.0f / sf[c] : 0.0f;
            put_f16(ks, (size_t)(c0 + c), sh);
            put_f16(kz, (size_t)(c0 + c), zh);
        }
        for (int r = 0; r < T; r++) {
            const float *x = k + (size_t)r * HD + c0;
            uint8_t *row = K + (size_t)r * L->row_bytes;
            if (fmt == TOME_KV_FP8) {
                for (int c = 0; c < cn; c++) {
                    uint8_t e = e4m3_fast(x[c] * inv[c]);
                    row[c0 + c] = inv[c] > 0 ? e : 0;
                }
            } else if ((c0 * bits) % 8 == 0) {
                int_codes(x, inv, zf, cn, flev, codes);
                pack_codes(codes, cn, bits, row + c0 * bits / 8);
            } else {
                int_codes(x, inv, zf, cn, flev, codes);
                for (int c = 0; c < cn; c++) put_code(row, bits, c0 + c, codes[c]);
            }
        }
    }
    /* V: per row, per group of G channels */
    for (int r = 0; r < T; r++) {
        const float *x = v + (size_t)r * HD;
        uint8_t *row = V + (size_t)r * L->row_bytes;
        for (int g = 0; g < L->groups_row; g++) {
            const float *xg = x + (size_t)g * G;
            float glo, ghi, gs, gz = 0;
            minmax(xg, G, &glo, &ghi);
            uint16_t sh, zh = 0;
            if (fmt == TOME_KV_FP8) {
                sh = fp8_scale(glo, ghi, &gs);
                float gi = gs > 0 ? 1.0f / gs : 0;
                if (gs > 0)
                    for (int c = 0; c < G; c++) row[g * G + c] = e4m3_fast(xg[c] * gi);
            } else {
                int_params(glo, ghi, levels, &sh, &zh, &gs, &gz);
                float gi = gs > 0 ? 1.0f / gs : 0.0f;
                int_codes1(xg, gi, gz, G, flev, codes);
                if ((g * G * bits) % 8 == 0 && (G * bits) % 8 == 0)
                    pack_codes(codes, G, bits, row + (size_t)g * G * bits / 8);
                else
                    for (int c = 0; c < G; c++) put_code(row, bits, g * G + c, codes[c]);
            }
            size_t si = (size_t)r * (size_t)L->groups_row + (size_t)g;
            put_f16(vs, si, sh);
            put_f16(vz, si, zh);
        }
    }
    memcpy(page, &h, sizeof h);
    h.checksum = tome_kv_page_checksum(L, page);
    memcpy(page, &h.checksum, 8);
}
