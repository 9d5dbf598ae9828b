/*
 * model/quant.c — group-wise int8/int4 weight quantization (layout in
 * quant_impl.h) and the f16 conversion. Pure functions, no allocation.
 */
#include "model/quant_impl.h"

#include <math.h>
#include <string.h>

/* round half away from zero, like roundf, but inlinable and vectorizable */
static inline float round_away(float x) { return x >= 0 ? (float)(int)(x + 0.5f) : -(float)(int)(0.5f - x); }

float tome_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    union { uint32_t u; float f; } v;
    if (exp == 0) {
        float f = ldexpf((float)man, -24);
        return sign ? -f : f;
    }
    if (exp == 31) v.u = sign | 0x7f800000u | (man << 13);
    else v.u = sign | ((exp + 112) << 23) | (man << 13);
    return v.f;
}

void tome_quant_q8_row(const float *x, size_t n, tome_block_q8 *out)
{
    for (size_t b = 0; b < n / TOME_QGROUP; b++) {
        const float *v = x + b * TOME_QGROUP;
        float amax = 0;
        for (int i = 0; i < TOME_QGROUP; i++) amax = fmaxf(amax, fabsf(v[i]));
        float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
        out[b].d = d;
        for (int i = 0; i < TOME_QGROUP; i++) {
            float q = round_away(v[i] * id);
            out[b].q[i] = (int8_t)(q > 127 ? 127 : q < -127 ? -127 : q);
        }
    }
}

/* int4: the scale is searched: candidates d = amax / m for m in {7, 7.5, 6.5}
 * (values clamped to [-8, 7]); the one with the smallest squared error wins.
 * Round-to-nearest with d = amax / 7 is the first candidate, so the search
 * never does worse than it. */
static float q4_sse(const float *v, float d)
{
    float id = d > 0 ? 1.0f / d : 0.0f, e = 0;
    for (int i = 0; i < TOME_QGROUP; i++) {
        float q = round_away(v[i] * id);
        q = q < -8 ? -8 : q > 7 ? 7 : q;
        float r = v[i] - q * d;
        e += r * r;
    }
    return e;
}

void tome_quant_q4_row(const float *x, size_t n, tome_block_q4 *out)
{
    for (size_t b = 0; b < n / TOME_QGROUP; b++) {
        const float *v = x + b * TOME_QGROUP;
        float amax = 0;
        for (int i = 0; i < TOME_QGROUP; i++) amax = fmaxf(amax, fabsf(v[i]));
        float d = amax / 7.0f, best = q4_sse(v, d);
        static const float cand[] = {7.5f, 6.5f};
        for (int k = 0; k < 2 && amax > 0; k++) {
            float dk = amax / cand[k], e = q4_sse(v, dk);
            if (e < best) best = e, d = dk;
        }
        float id = d > 0 ? 1.0f / d : 0.0f;
        out[b].d = d;
        for (int i = 0; i < TOME_QGROUP; i += 2) {
            int q0 = (int)round_away(v[i] * id), q1 = (int)round_away(v[i + 1] * id);
            q0 = q0 < -8 ? -8 : q0 > 7 ? 7 : q0;
            q1 = q1 < -8 ? -8 : q1 > 7 ? 7 : q1;
            out[b].q[i / 2] = (uint8_t)((q0 + 8) | ((q1 + 8) << 4));
        }
    }
}

void tome_dequant_q8_row(const tome_block_q8 *b, size_t n, float *out)
{
    for (size_t k = 0; k < n / TOME_QGROUP; k++) {
        float d = b[k].d;
        for (int i = 0; i < TOME_QGROUP; i++) out[k * TOME_QGROUP + i] = d * (float)b[k].q[i];
    }
}

void tome_dequant_q4_row(const tome_block_q4 *b, size_t n, float *out)
{
    for (size_t k = 0; k < n / TOME_QGROUP; k++) {
        float d = b[k].d;
        float *o = out + k * TOME_QGROUP;
        for (int i = 0; i < TOME_QGROUP / 2; i++) {
            uint8_t q = b[k].q[i];
            o[2 * i] = d * (float)((int)(q & 15) - 8);
            o[2 * i + 1] = d * (float)((int)(q >> 4) - 8);
        }
    }
}
