/*
 * attention/attn_simd.c — builds of the tile kernel (attn_simd_body.h) for
 * the baseline instruction set and, with GCC on x86-64, for AVX2+FMA behind
 * a run-time CPU check (contract in attn_simd_impl.h). The two builds
 * compute the same function; they differ in rounding only where FMA fuses a
 * multiply-add.
 */
#include "attention/attn_simd_impl.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define ATTN_HAVE_AVX2_BUILD 1
#include <immintrin.h>
#endif

typedef float vf8 __attribute__((vector_size(32)));
typedef int32_t vi8 __attribute__((vector_size(32)));

/* declarations for -Wmissing-prototypes */
void attn_exp_generic(float *x, int n);
void attn_tile_generic(const attn_tile_args *a);
void attn_tile_rowk_generic(const attn_tile_args *a);
void attn_bf16_row_generic(const uint8_t *src, float *dst, int n);
void attn_u8_row_generic(const uint8_t *src, float *dst, int n);
void attn_affine_row_generic(float *o, const float *s, const float *z, int n);
void attn_affine_const_generic(float *o, float s, float z, int has_z, int n);

#define ATTN_FN(name) name##_generic
#include "attention/attn_simd_body.h"
#undef ATTN_FN

#ifdef ATTN_HAVE_AVX2_BUILD
void attn_exp_avx2(float *x, int n);
void attn_tile_avx2(const attn_tile_args *a);
void attn_tile_rowk_avx2(const attn_tile_args *a);
void attn_bf16_row_avx2(const uint8_t *src, float *dst, int n);
void attn_u8_row_avx2(const uint8_t *src, float *dst, int n);
void attn_affine_row_avx2(float *o, const float *s, const float *z, int n);
void attn_affine_const_avx2(float *o, float s, float z, int has_z, int n);
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define ATTN_FN(name) name##_avx2
#include "attention/attn_simd_body.h"
#undef ATTN_FN
#pragma GCC pop_options
#endif

attn_tile_fn attn_tile_select(const char **name)
{
    attn_kernels k;
    attn_kernels_select(&k);
    if (name) *name = k.name;
    return k.tile;
}

void attn_kernels_select(attn_kernels *k)
{
#ifdef ATTN_HAVE_AVX2_BUILD
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        k->name = "avx2";
        k->tile = attn_tile_avx2;
        k->tile_rowk = attn_tile_rowk_avx2;
        k->bf16_row = attn_bf16_row_avx2;
        k->u8_row = attn_u8_row_avx2;
        k->affine_row = attn_affine_row_avx2;
        k->affine_const = attn_affine_const_avx2;
        return;
    }
#endif
    k->name = "generic";
    k->tile = attn_tile_generic;
    k->tile_rowk = attn_tile_rowk_generic;
    k->bf16_row = attn_bf16_row_generic;
    k->u8_row = attn_u8_row_generic;
    k->affine_row = attn_affine_row_generic;
    k->affine_const = attn_affine_const_generic;
}
