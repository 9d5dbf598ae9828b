/*
 * model/cpu_kernels.h — the inner loops of the CPU backend (backend_cpu.c):
 * single-row products with weights in their stored dtype (decode), bf16
 * conversion, RMSNorm, RoPE.
 *
 * Every kernel has a portable scalar version and, on x86-64, an AVX2/FMA
 * version compiled with a target attribute and chosen at run time
 * (__builtin_cpu_supports), so the build needs no -march flag and runs on any
 * x86-64 or aarch64. tome_cpu_force_isa lets tests run both paths in one
 * process.
 *
 * The products read each weight once, in the order it is stored, convert
 * bf16 → f32 in registers (a shift) and prefetch 2 KiB ahead, so decode runs
 * at the speed the memory delivers the weights (measured on the 2-core VM:
 * interleaving 4 rows 1 KiB apart without prefetch ran at a third of the
 * speed of one sequential stream once the weights came from DRAM):
 *   gemv rows (OUT_IN, nn.Linear, int8 / int4 blocks): one row at a time,
 *     32 values per step into 2 accumulators.
 *   gemv cols (IN_OUT, the fused experts' [in][out]): an axpy loop, y (in
 *     L1) gathering one input row at a time, each column summing over k in
 *     order (two rows per pass, two streams, was slower from DRAM too).
 * Sums are f32; their order differs from a plain loop only by rounding.
 */
#ifndef TOME_CPU_KERNELS_H
#define TOME_CPU_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "model/quant_impl.h"

enum { TOME_ISA_SCALAR = 0, TOME_ISA_AVX2 = 1 };

/* The instruction set the kernels use: the best the CPU has, unless forced. */
int tome_cpu_isa(void);
/* Tests: force TOME_ISA_SCALAR (or AVX2 where present); -1 = automatic. Not
 * thread-safe against kernels running at the same time. */
void tome_cpu_force_isa(int isa);

void tome_k_bf16_to_f32(const uint16_t *s, float *d, size_t n);

/* y[j] = Σ_k W[j][k]·x[k] for j < cnt; W: cnt rows of n_in bf16 (OUT_IN). */
void tome_k_gemv_bf16(const uint16_t *w, size_t n_in, size_t cnt, const float *x, float *y);
/* y[j] = Σ_k W[k][j0+j]·x[k] for j < cnt; W: [n_in][n_out] bf16 (IN_OUT). */
void tome_k_gemv_bf16_t(const uint16_t *w, size_t n_in, size_t n_out, size_t j0, size_t cnt, const float *x,
                        float *y);
/* Rows of quantized blocks (n_in a multiple of TOME_QGROUP), OUT_IN. */
void tome_k_gemv_q8(const tome_block_q8 *w, size_t n_in, size_t cnt, const float *x, float *y);
void tome_k_gemv_q4(const tome_block_q4 *w, size_t n_in, size_t cnt, const float *x, float *y);

/* y[i] = x[i] / sqrt(mean(x[i]²) + eps) (* weight), rows of dim; in place ok. */
void tome_k_rmsnorm(const float *x, size_t n_rows, size_t dim, const float *weight, float eps, float *y);

/* y[i] += x[i] */
void tome_k_add(float *y, const float *x, size_t n);

/* g[i] = silu(g[i]) · u[i] = g[i] / (1 + e^-g[i]) · u[i] (AVX2: a polynomial
 * e^x within ~2 ulp of expf, arguments clamped to [-87, 88]). */
void tome_k_swiglu(float *g, const float *u, size_t n);

/* RoPE of one row of n_heads heads (interleaved pairs) by cos/sin tables of
 * half = head_dim/2 values; then, when qk_norm, each head divided by its RMS
 * (eps) — Llama 4's QK-norm. */
void tome_k_rope_row(float *x, int n_heads, int head_dim, const float *cs, const float *sn, int qk_norm, float eps);

#endif /* TOME_CPU_KERNELS_H */
