/*
 * kvcache/kv_layout.h — the byte layout of one KV page, defined once for C
 * and CUDA (the contract between kvcache/ and attention/).
 *
 * A page holds K and V of `page_tokens` (T) consecutive positions of one
 * (layer, sequence), for all n_kv_heads (H) heads of head_dim (D) values;
 * HD = H * D values per position for K and as many for V. A page is either
 *
 *   - "open": the newest positions of a (layer, sequence), fewer than T of
 *     them, kept unquantized as float32 rows while they arrive (a K channel
 *     scale needs all T tokens of the page); or
 *   - "sealed": full (T rows), quantized into one fixed-size block of
 *     tome_kv_layout.page_bytes bytes, drawn below; a sealed page never
 *     changes, carries a checksum over its bytes, and is what moves between
 *     the tiers (device, host RAM, zstd page file on disk) and into
 *     snapshots, byte for byte.
 *
 * Sealed page (offsets from the start of the block; every section starts on
 * a 16-byte boundary; row r holds position hdr.p0 + r):
 *
 *   +------------------------------+ 0
 *   | tome_kv_page_hdr (64 bytes)  |   checksum, magic, fmt, T, p0, ...
 *   +------------------------------+ k_off = 64
 *   | K codes  [T][row_bytes]      |   row r: HD codes, channel c = h*D + d
 *   +------------------------------+ v_off
 *   | V codes  [T][row_bytes]      |   same row layout as K
 *   +------------------------------+ ks_off   (quantized formats only)
 *   | K scale  fp16 [HD]           |   per channel c over the page's T tokens
 *   | K zero   fp16 [HD]           |   (kz_off = ks_off + 2*HD, padded)
 *   +------------------------------+ vs_off
 *   | V scale  fp16 [T][HD/G]      |   per token r, per group j of G channels
 *   | V zero   fp16 [T][HD/G]      |   (vz_off)
 *   +------------------------------+ page_bytes
 *
 * Codes per format (row_bytes = HD * bits / 8):
 *
 *   F32   32 bits  IEEE float, value = code                 (no scales)
 *   BF16  16 bits  bfloat16, value = code                   (no scales)
 *   FP8    8 bits  e4m3 (bias 7, max 448, no inf), value = e4m3(code)*scale
 *                  (symmetric: zero is stored as 0)
 *   INT8   8 bits  unsigned, value = code * scale + zero    (asymmetric)
 *   INT4   4 bits  two codes per byte, channel c in byte c/2, low nibble for
 *                  even c; value = code * scale + zero
 *   INT2   2 bits  four codes per byte, channel c in byte c/4 at bit
 *                  2*(c%4); value = code * scale + zero
 *
 * K is quantized per channel within the page (scale/zero per channel c over
 * the T tokens: key outliers live in channels — KIVI, KVQuant), V per token
 * in groups of G consecutive channels of one head (G divides D). For a K row
 * this lets attention fold the scale into the query:
 *   q.k = sum_c (q_c*ks_c) * code_c + sum_c q_c*kz_c.
 * Scales and zero points are IEEE half floats stored with the page.
 *
 * Checksum: hdr.checksum is XXH3-64 (seed 0) of bytes [8, page_bytes) of
 * the block, i.e. everything after the checksum field, header included.
 *
 * Unquantized rows: open pages, and the first `sink` positions of global
 * layers when the cache keeps sinks, are float32 rows; attention sees them
 * as a view with fmt == TOME_KV_F32 (k_scale == NULL). The newest tokens
 * are therefore always exact.
 *
 * tome_kv_view is what attention receives for one page (kvcache_impl.h:
 * tome_kv_view_at): the position range it covers, the format, pointers to
 * the codes and scales, and the layout numbers. Its pointers are host
 * pointers (on_device == 0) or, for the device tier, device pointers.
 *
 * Stability: this header is shared with attention/ (C and CUDA); fields and
 * constants are only ever added, never moved or renumbered.
 */
#ifndef TOME_KV_LAYOUT_H
#define TOME_KV_LAYOUT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__CUDACC__)
#define TOME_KV_HD static inline __host__ __device__
#else
#define TOME_KV_HD static inline
#endif

#if defined(__cplusplus)
#define TOME_KV_STATIC_ASSERT(c, m) static_assert(c, m)
#else
#define TOME_KV_STATIC_ASSERT(c, m) _Static_assert(c, m)
#endif

/* ------------------------------------------------------------ formats */
enum {
    TOME_KV_F32 = 0,
    TOME_KV_BF16 = 1,
    TOME_KV_FP8 = 2, /* e4m3 */
    TOME_KV_INT8 = 3,
    TOME_KV_INT4 = 4,
    TOME_KV_INT2 = 5,
    TOME_KV_N_FORMATS = 6
};

#define TOME_KV_PAGE_MAGIC 0x504b5654u /* "TVKP" little-endian */
#define TOME_KV_PAGE_TOKENS_DEFAULT 64 /* T; see BENCHMARKS.md (bench_kvcache) */
#define TOME_KV_PAGE_TOKENS_MIN 8      /* T is a multiple of 8 in [8, 4096]    */
#define TOME_KV_PAGE_TOKENS_MAX 4096
#define TOME_KV_GROUP_DEFAULT 32       /* G: V channels per scale (or D if smaller) */
#define TOME_KV_ALIGN 16               /* section alignment inside a page      */

/* ------------------------------------------------------------ page header */
typedef struct tome_kv_page_hdr {
    uint64_t checksum;     /* XXH3-64 of bytes [8, page_bytes)                 */
    uint32_t magic;        /* TOME_KV_PAGE_MAGIC                               */
    uint16_t fmt;          /* TOME_KV_*                                        */
    uint16_t group;        /* G                                                */
    uint32_t page_tokens;  /* T                                                */
    uint32_t n_tokens;     /* valid rows (== T for a sealed page)              */
    int64_t p0;            /* position of row 0                                */
    uint16_t n_kv_heads;   /* H                                                */
    uint16_t head_dim;     /* D                                                */
    uint32_t layer;
    uint32_t seq;
    uint32_t reserved[5];  /* zero                                             */
} tome_kv_page_hdr;

TOME_KV_STATIC_ASSERT(sizeof(tome_kv_page_hdr) == 64, "page header is 64 bytes");
TOME_KV_STATIC_ASSERT(offsetof(tome_kv_page_hdr, magic) == 8, "checksum covers bytes from offset 8");
TOME_KV_STATIC_ASSERT(offsetof(tome_kv_page_hdr, p0) == 24, "p0 at offset 24");
TOME_KV_STATIC_ASSERT(sizeof(uint16_t) == 2 && sizeof(float) == 4, "fp16 scales and fp32 rows");

/* ------------------------------------------------------------ layout */
typedef struct tome_kv_layout {
    int32_t fmt, page_tokens, n_kv_heads, head_dim, group;
    int32_t bits;         /* bits per code                                     */
    int32_t hd;           /* H * D                                             */
    int32_t groups_row;   /* HD / G: V scales per row                          */
    uint32_t row_bytes;   /* HD * bits / 8                                     */
    uint32_t k_off, v_off, ks_off, kz_off, vs_off, vz_off; /* 0 when absent    */
    uint32_t page_bytes;  /* whole sealed page, a multiple of TOME_KV_ALIGN    */
} tome_kv_layout;

TOME_KV_HD int tome_kv_fmt_bits(int fmt)
{
    switch (fmt) {
    case TOME_KV_F32: return 32;
    case TOME_KV_BF16: return 16;
    case TOME_KV_FP8: return 8;
    case TOME_KV_INT8: return 8;
    case TOME_KV_INT4: return 4;
    case TOME_KV_INT2: return 2;
    default: return 0;
    }
}

/* Formats with per-page scales. */
TOME_KV_HD int tome_kv_fmt_scaled(int fmt) { return fmt >= TOME_KV_FP8 && fmt <= TOME_KV_INT2; }

/* Largest code of an integer format: 255, 15, 3. */
TOME_KV_HD int tome_kv_fmt_levels(int fmt) { return (1 << tome_kv_fmt_bits(fmt)) - 1; }

TOME_KV_HD uint32_t tome_kv_align(uint32_t n) { return (n + (TOME_KV_ALIGN - 1)) & ~(uint32_t)(TOME_KV_ALIGN - 1); }

/* Fills L; returns 0, or -1 when the numbers cannot form a page (unknown
 * format, T not a multiple of 8 in range, G not dividing D, HD*bits not a
 * whole number of bytes, a page over 2 GiB). */
TOME_KV_HD int tome_kv_layout_init(tome_kv_layout *L, int fmt, int page_tokens, int n_kv_heads, int head_dim,
                                   int group)
{
    int bits = tome_kv_fmt_bits(fmt);
    if (bits == 0 || page_tokens < TOME_KV_PAGE_TOKENS_MIN || page_tokens > TOME_KV_PAGE_TOKENS_MAX ||
        page_tokens % 8 != 0 || n_kv_heads <= 0 || n_kv_heads > 65535 || head_dim <= 0 || head_dim > 65535 ||
        group <= 0 || head_dim % group != 0)
        return -1;
    uint64_t hd = (uint64_t)n_kv_heads * (uint64_t)head_dim;
    if ((hd * (uint64_t)bits) % 8 != 0) return -1;
    uint64_t row = hd * (uint64_t)bits / 8, T = (uint64_t)page_tokens;
    uint64_t off = sizeof(tome_kv_page_hdr), k_off = off, v_off, ks = 0, kz = 0, vs = 0, vz = 0;
    off = (off + T * row + (TOME_KV_ALIGN - 1)) & ~(uint64_t)(TOME_KV_ALIGN - 1);
    v_off = off;
    off = (off + T * row + (TOME_KV_ALIGN - 1)) & ~(uint64_t)(TOME_KV_ALIGN - 1);
    if (tome_kv_fmt_scaled(fmt)) {
        uint64_t ng = T * (hd / (uint64_t)group);
        ks = off;
        off = (off + 2 * hd + (TOME_KV_ALIGN - 1)) & ~(uint64_t)(TOME_KV_ALIGN - 1);
        kz = off;
        off = (off + 2 * hd + (TOME_KV_ALIGN - 1)) & ~(uint64_t)(TOME_KV_ALIGN - 1);
        vs = off;
        off = (off + 2 * ng + (TOME_KV_ALIGN - 1)) & ~(uint64_t)(TOME_KV_ALIGN - 1);
        vz = off;
        off = (off + 2 * ng + (TOME_KV_ALIGN - 1)) & ~(uint64_t)(TOME_KV_ALIGN - 1);
    }
    if (off > 0x7fffffffu) return -1;
    L->fmt = fmt;
    L->page_tokens = page_tokens;
    L->n_kv_heads = n_kv_heads;
    L->head_dim = head_dim;
    L->group = group;
    L->bits = bits;
    L->hd = (int32_t)hd;
    L->groups_row = (int32_t)(hd / (uint64_t)group);
    L->row_bytes = (uint32_t)row;
    L->k_off = (uint32_t)k_off;
    L->v_off = (uint32_t)v_off;
    L->ks_off = (uint32_t)ks;
    L->kz_off = (uint32_t)kz;
    L->vs_off = (uint32_t)vs;
    L->vz_off = (uint32_t)vz;
    L->page_bytes = (uint32_t)off;
    return 0;
}

/* ------------------------------------------------------------ scalar codecs */
TOME_KV_HD float tome_kv_u32_as_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

TOME_KV_HD uint32_t tome_kv_f32_as_u32(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

TOME_KV_HD float tome_kv_bf16_to_f32(uint16_t h) { return tome_kv_u32_as_f32((uint32_t)h << 16); }

/* Round to nearest even; NaN stays NaN. */
TOME_KV_HD uint16_t tome_kv_f32_to_bf16(float f)
{
    uint32_t u = tome_kv_f32_as_u32(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* IEEE half -> float (exact). */
TOME_KV_HD float tome_kv_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0) {
        float v = (float)m * (1.0f / 16777216.0f); /* m * 2^-24 */
        return sign ? -v : v;
    }
    if (e == 31) return tome_kv_u32_as_f32(sign | 0x7f800000u | (m << 13));
    return tome_kv_u32_as_f32(sign | ((e + 112u) << 23) | (m << 13));
}

/* float -> IEEE half, round to nearest even, saturating to +-65504. */
TOME_KV_HD uint16_t tome_kv_f32_to_f16(float f)
{
    uint32_t u = tome_kv_f32_as_u32(f), sign = (u >> 16) & 0x8000u;
    float a = f < 0 ? -f : f;
    if (a != a) return (uint16_t)(sign | 0x7e00u);
    if (a >= 65520.0f) return (uint16_t)(sign | 0x7bffu);
    if (a < 6.103515625e-05f) { /* subnormal half: multiples of 2^-24 */
        float q = a * 16777216.0f;
        uint32_t m = (uint32_t)q;
        float r = q - (float)m;
        if (r > 0.5f || (r == 0.5f && (m & 1u))) m++;
        return (uint16_t)(sign | m);
    }
    uint32_t au = u & 0x7fffffffu;
    uint32_t e = (au >> 23) - 112u, m = au & 0x7fffffu;
    uint32_t h = (e << 10) | (m >> 13), rest = m & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) h++;
    if (h > 0x7bffu) h = 0x7bffu;
    return (uint16_t)(sign | h);
}

/* e4m3 (bias 7, 0x7f/0xff are NaN, max 448) -> float. */
TOME_KV_HD float tome_kv_e4m3_to_f32(uint8_t b)
{
    uint32_t e = (b >> 3) & 0xfu, m = b & 7u;
    float v;
    if ((b & 0x7fu) == 0x7fu) return tome_kv_u32_as_f32(0x7fc00000u);
    if (e == 0)
        v = (float)m * (1.0f / 512.0f); /* m * 2^-9 */
    else
        v = tome_kv_u32_as_f32(((e + 120u) << 23) | (m << 20));
    return (b & 0x80u) ? -v : v;
}

/* float -> e4m3, round to nearest even, saturating to +-448. */
TOME_KV_HD uint8_t tome_kv_f32_to_e4m3(float f)
{
    uint8_t sign = (uint8_t)((tome_kv_f32_as_u32(f) >> 24) & 0x80u);
    float a = f < 0 ? -f : f;
    if (a != a) return 0x7fu;
    if (a >= 448.0f) return (uint8_t)(sign | 0x7eu);
    if (a < 0.015625f) { /* subnormal: multiples of 2^-9 */
        float q = a * 512.0f;
        uint32_t m = (uint32_t)q;
        float r = q - (float)m;
        if (r > 0.5f || (r == 0.5f && (m & 1u))) m++;
        return (uint8_t)(sign | m); /* m == 8 is the smallest normal, 0x08 */
    }
    uint32_t u = tome_kv_f32_as_u32(a);
    uint32_t e = (u >> 23) - 120u, m = u & 0x7fffffu;
    uint32_t b = (e << 3) | (m >> 20), rest = m & 0xfffffu;
    if (rest > 0x80000u || (rest == 0x80000u && (b & 1u))) b++;
    if (b > 0x7eu) b = 0x7eu;
    return (uint8_t)(sign | b);
}

/* Code of channel c in a row of a 2/4/8-bit format. */
TOME_KV_HD uint32_t tome_kv_code(const uint8_t *row, int bits, int c)
{
    if (bits == 8) return row[c];
    if (bits == 4) return (row[c >> 1] >> ((c & 1) * 4)) & 0xfu;
    return (row[c >> 2] >> ((c & 3) * 2)) & 0x3u;
}

/* ------------------------------------------------------------ the view */
typedef struct tome_kv_view {
    int64_t p0, p1;            /* positions [p0, p1) this view covers          */
    int64_t page_p0;           /* position of row 0 (row of p: p - page_p0)    */
    int32_t fmt;               /* TOME_KV_*; F32 for open pages and sinks      */
    int32_t page_tokens, n_kv_heads, head_dim, group, bits;
    uint32_t row_bytes;        /* bytes between rows of k (and of v)           */
    const uint8_t *k, *v;      /* codes of row 0                               */
    const uint16_t *k_scale;   /* fp16 [HD], NULL unless tome_kv_fmt_scaled    */
    const uint16_t *k_zero;    /* fp16 [HD]                                    */
    const uint16_t *v_scale;   /* fp16 [T][HD / group]                         */
    const uint16_t *v_zero;    /* fp16 [T][HD / group]                         */
    const tome_kv_page_hdr *hdr; /* the sealed page, NULL for float rows       */
    int32_t on_device;         /* 1: pointers are device pointers              */
    int32_t reserved;
} tome_kv_view;

/* Value of K (is_v == 0) or V (is_v == 1), row r, channel c = h*D + d. */
TOME_KV_HD float tome_kv_value(const tome_kv_view *w, int is_v, int r, int c)
{
    const uint8_t *row = (is_v ? w->v : w->k) + (size_t)r * w->row_bytes;
    switch (w->fmt) {
    case TOME_KV_F32: {
        float f;
        memcpy(&f, row + (size_t)c * 4, 4);
        return f;
    }
    case TOME_KV_BF16: {
        uint16_t h;
        memcpy(&h, row + (size_t)c * 2, 2);
        return tome_kv_bf16_to_f32(h);
    }
    default: break;
    }
    int hd = w->n_kv_heads * w->head_dim;
    size_t si = is_v ? (size_t)r * (size_t)(hd / w->group) + (size_t)(c / w->group) : (size_t)c;
    float s = tome_kv_f16_to_f32((is_v ? w->v_scale : w->k_scale)[si]);
    if (w->fmt == TOME_KV_FP8) return tome_kv_e4m3_to_f32(row[c]) * s;
    float z = tome_kv_f16_to_f32((is_v ? w->v_zero : w->k_zero)[si]);
    return (float)tome_kv_code(row, w->bits, c) * s + z;
}

/* Dequantize channels [c0, c0 + n) of row r of K or V into out[n]. */
TOME_KV_HD void tome_kv_dequant_row(const tome_kv_view *w, int is_v, int r, int c0, int n, float *out)
{
    if (w->fmt == TOME_KV_F32) {
        memcpy(out, (is_v ? w->v : w->k) + (size_t)r * w->row_bytes + (size_t)c0 * 4, (size_t)n * 4);
        return;
    }
    for (int i = 0; i < n; i++) out[i] = tome_kv_value(w, is_v, r, c0 + i);
}

#endif /* TOME_KV_LAYOUT_H */
