/*
 * model/quant_impl.h — the weight block layouts, declared once for C and CUDA.
 *
 * Weight-only quantization is group-wise along the input (reduction)
 * dimension: every run of TOME_QGROUP consecutive input values of one output
 * row shares one float scale. Symmetric, round-to-nearest:
 *   int8: q = round(x / d), d = max|x| / 127, q in [-127, 127]
 *   int4: q = round(x / d), q in [-8, 7], d = max|x| / m with m in {7, 7.5, 6.5}
 *         chosen per group for the least squared error (m = 7 first); stored
 *         q+8, two per byte, low nibble = even index
 * A quantized matrix [n_out][n_in] is n_out rows of n_in/TOME_QGROUP blocks
 * (n_in must be a multiple of TOME_QGROUP). Scales are f32 so that the error
 * comes from the integer grid only (measured in docs/model.md).
 */
#ifndef TOME_QUANT_IMPL_H
#define TOME_QUANT_IMPL_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#define TOME_QGROUP 32

typedef struct tome_block_q8 {
    float d;                  /* scale            */
    int8_t q[TOME_QGROUP];    /* values           */
} tome_block_q8;

typedef struct tome_block_q4 {
    float d;                      /* scale                               */
    uint8_t q[TOME_QGROUP / 2];   /* (q+8) pairs, low nibble first       */
} tome_block_q4;

static_assert(sizeof(tome_block_q8) == 36, "q8 block layout");
static_assert(sizeof(tome_block_q4) == 20, "q4 block layout");

/* Quantize n (multiple of TOME_QGROUP) floats into blocks. */
void tome_quant_q8_row(const float *x, size_t n, tome_block_q8 *out);
void tome_quant_q4_row(const float *x, size_t n, tome_block_q4 *out);
/* Dequantize n values of a row. */
void tome_dequant_q8_row(const tome_block_q8 *b, size_t n, float *out);
void tome_dequant_q4_row(const tome_block_q4 *b, size_t n, float *out);

/* Scalar conversions. */
static inline float tome_bf16_to_f32(uint16_t h)
{
    union { uint32_t u; float f; } v;
    v.u = (uint32_t)h << 16;
    return v.f;
}
static inline uint16_t tome_f32_to_bf16(float f) /* round to nearest even */
{
    union { uint32_t u; float f; } v;
    v.f = f;
    if ((v.u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((v.u >> 16) | 0x40);
    v.u += 0x7fffu + ((v.u >> 16) & 1u);
    return (uint16_t)(v.u >> 16);
}
float tome_f16_to_f32(uint16_t h);

#endif /* TOME_QUANT_IMPL_H */
