/*
 * kvcache/kv_page_impl.h — sealing (quantizing) and opening (dequantizing)
 * one page; the layout is kv_layout.h. Used by kv_cache.c, kv_snapshot.c,
 * the tests and the benchmark.
 *
 * Sealing is deterministic: the same float rows give the same page bytes
 * (padding zeroed, scales rounded the same way), which is what makes a
 * resumed prefill equal an uninterrupted one bit for bit.
 */
#ifndef TOME_KV_PAGE_IMPL_H
#define TOME_KV_PAGE_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "kvcache/kv_layout.h"
#include "tome/status.h"

/* Quantize T float rows of K and V (k, v: [T][HD]) into page[L->page_bytes]
 * and set its header (p0, layer, seq) and checksum. */
void tome_kv_page_seal(const tome_kv_layout *L, const float *k, const float *v, int64_t p0, int layer, int seq,
                       uint8_t *page);

/* XXH3-64 of bytes [8, page_bytes). */
uint64_t tome_kv_page_checksum(const tome_kv_layout *L, const uint8_t *page);

/* Checks magic, format, sizes and checksum of a page read back from
 * somewhere; on failure sets a message naming `what` and returns
 * TOME_ERR_FORMAT. expect_p0 < 0: any p0. */
tome_status tome_kv_page_verify(const tome_kv_layout *L, const uint8_t *page, int64_t expect_p0, const char *what);

/* A view of the whole sealed page (p0..p0+T). */
void tome_kv_page_view(const tome_kv_layout *L, const uint8_t *page, tome_kv_view *out);

/* Dequantize rows [r0, r1) of K (is_v 0) or V (is_v 1) of a sealed page
 * into out[(r1 - r0)][HD]. */
void tome_kv_page_dequant(const tome_kv_layout *L, const uint8_t *page, int is_v, int r0, int r1, float *out);

/* The plain scalar code the two functions above are checked against bit
 * for bit (tests/test_kvcache.c); the functions above are the same
 * arithmetic written so that the compiler vectorizes it (kv_page.c). */
void tome_kv_page_seal_scalar(const tome_kv_layout *L, const float *k, const float *v, int64_t p0, int layer, int seq,
                              uint8_t *page);
/* The branch-free e4m3 encoder of the fast path (== tome_kv_f32_to_e4m3). */
uint8_t tome_kv_f32_to_e4m3_fast(float f);
void tome_kv_page_dequant_scalar(const tome_kv_layout *L, const uint8_t *page, int is_v, int r0, int r1, float *out);

#endif /* TOME_KV_PAGE_IMPL_H */
