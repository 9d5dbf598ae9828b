/*
 * attention/attn_simd_impl.h — the inner loop of the CPU attention: one
 * dequantized K/V tile against a block of query rows, with online softmax.
 *
 * Tile layout (fp32, filled by attention_cpu.c from the cache's pages):
 *   kt [hd][ATTN_TK]  keys transposed: key j of the tile in column j, so the
 *                     scores of one row are ATTN_TK/8 independent vector FMAs
 *                     per dimension (no horizontal reductions);
 *   v  [ATTN_TK][hd]  values, one row per key.
 * hd is the head dimension rounded up to a multiple of 8 (the padding is
 * zero in q, kt and v, so it stays zero in acc). Columns past the tile's
 * key count are never visible (hi[r] <= n_keys).
 *
 * Row r (one query head of one query): q + r*hd, already multiplied by the
 * softmax scale; visible tile columns [lo[r], hi[r]) (empty: row skipped);
 * running max m[r], running sum l[r], unnormalised output acc + r*hd, all
 * fp32:  m' = max(m, max_j s_j);  p_j = exp(s_j - m');
 *        l = l*exp(m - m') + sum p_j;  acc = acc*exp(m - m') + sum p_j v_j.
 *
 * Two builds of the same body (attn_simd_body.h): GCC vector extensions
 * compiled for the baseline (SSE2 on x86-64) and for AVX2+FMA; the AVX2
 * one is picked at run time when the CPU has it (attn_tile_select).
 */
#ifndef TOME_ATTN_SIMD_IMPL_H
#define TOME_ATTN_SIMD_IMPL_H

#include <stddef.h>
#include <stdint.h>

#define ATTN_TK 64 /* keys per tile */

typedef struct attn_tile_args {
    const float *kt, *v;  /* tile, layout above                      */
    int hd;               /* padded head dim, multiple of 8           */
    int ld;               /* floats between rows of v (and of a row-major
                             K tile); 0: hd                           */
    int n_rows;
    const float *q;       /* [n_rows][hd], pre-scaled                 */
    const int *lo, *hi;   /* [n_rows] visible tile columns            */
    float *m, *l, *acc;   /* [n_rows], [n_rows], [n_rows][hd]         */
    float *s;             /* scratch [ATTN_TK], 32-byte aligned ok    */
} attn_tile_args;

typedef void (*attn_tile_fn)(const attn_tile_args *a);

/* One build's entry points: tile (kt transposed), tile_rowk (kt holds K
 * row-major [ATTN_TK][hd]: for blocks of few rows), and row helpers of the
 * dequantization (n a multiple of 8; multiply then add, never fused, so the
 * values equal tome_kv_value's). */
typedef struct attn_kernels {
    const char *name; /* "avx2" or "generic" */
    attn_tile_fn tile, tile_rowk;
    void (*bf16_row)(const uint8_t *src, float *dst, int n);
    void (*u8_row)(const uint8_t *src, float *dst, int n);            /* codes -> float */
    void (*affine_row)(float *o, const float *s, const float *z, int n); /* o*s[+z]    */
    void (*affine_const)(float *o, float s, float z, int has_z, int n);
} attn_kernels;

void attn_kernels_select(attn_kernels *k);
void attn_tile_rowk_generic(const attn_tile_args *a);
void attn_bf16_row_generic(const uint8_t *src, float *dst, int n);

/* The fastest build this CPU runs; *name (optional) gets "avx2" or "generic". */
attn_tile_fn attn_tile_select(const char **name);
/* The baseline build (tests compare both). */
void attn_tile_generic(const attn_tile_args *a);

/* exp(x) for n values in place (n any), the same approximation the tile
 * kernel uses (relative error < 3e-7 for x in [-87, 88]; 0 below). */
void attn_exp_generic(float *x, int n);

#endif /* TOME_ATTN_SIMD_IMPL_H */
