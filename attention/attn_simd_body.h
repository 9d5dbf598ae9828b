/*
 * attention/attn_simd_body.h — the body of the tile kernel (contract in
 * attn_simd_impl.h). Included by attn_simd.c once per instruction-set build
 * with ATTN_FN(name) naming the copy; no include guard on purpose.
 * Vectors are 8 floats (GCC vector extensions: two SSE registers in the
 * baseline build, one YMM register in the AVX2 build); loads and stores go
 * through memcpy so nothing needs alignment.
 */

#undef VFMA
#if defined(__FMA__) && defined(__AVX2__)
#define VFMA(acc, a, b) ((vf8)_mm256_fmadd_ps((__m256)(a), (__m256)(b), (__m256)(acc)))
#else
#define VFMA(acc, a, b) ((acc) + (a) * (b))
#endif

/* exp of 8 floats in place: n = round(x/ln2), r = x - n*ln2 (two-part ln2),
 * e^r by a degree-7 polynomial on [-ln2/2, ln2/2], times 2^n built in the
 * exponent bits. x below -87.3 (and -inf) gives 0. */
static inline void ATTN_FN(exp8)(float *x)
{
    vf8 v, z = {0};
    memcpy(&v, x, sizeof v);
    const vi8 under = v < (z - 87.3f);
    const vi8 over = v > (z + 88.3f);
    v = (vf8)(((vi8)v & ~under) | ((vi8)(z - 87.3f) & under));
    v = (vf8)(((vi8)v & ~over) | ((vi8)(z + 88.3f) & over));
    vf8 n = v * 1.44269504088896341f + 12582912.0f; /* + 1.5*2^23 rounds to an integer */
    n = n - 12582912.0f;
    vf8 r = v - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    vf8 y = z + 1.9875691500e-4f;
    y = VFMA(z + 1.3981999507e-3f, y, r);
    y = VFMA(z + 8.3334519073e-3f, y, r);
    y = VFMA(z + 4.1665795894e-2f, y, r);
    y = VFMA(z + 1.6666665459e-1f, y, r);
    y = VFMA(z + 5.0000001201e-1f, y, r);
    y = VFMA(r + 1.0f, y, r * r);
    vi8 e = (__builtin_convertvector(n, vi8) + 127) << 23;
    y = y * (vf8)e;
    y = (vf8)((vi8)y & ~under);
    memcpy(x, &y, sizeof y);
}

void ATTN_FN(attn_exp)(float *x, int n)
{
    int i = 0;
    for (; i + 8 <= n; i += 8) ATTN_FN(exp8)(x + i);
    if (i < n) {
        float t[8] = {0};
        memcpy(t, x + i, (size_t)(n - i) * sizeof *t);
        ATTN_FN(exp8)(t);
        memcpy(x + i, t, (size_t)(n - i) * sizeof *t);
    }
}

/* Online-softmax update of row r from its scores s[0..ATTN_TK) (visible
 * columns [lo, hi)), then acc = acc*corr + P V. */
static inline void ATTN_FN(softmax_pv)(const attn_tile_args *a, int r, int lo, int hi, float *s)
{
    const int hd = a->hd;
    const size_t ld = a->ld > 0 ? (size_t)a->ld : (size_t)hd;
    const vf8 z = {0};
    float mx = s[lo];
    for (int j = lo + 1; j < hi; j++) mx = s[j] > mx ? s[j] : mx;
    const float m_old = a->m[r];
    const float m_new = mx > m_old ? mx : m_old;
    const int g0 = lo & ~7, g1 = (hi + 7) & ~7;
    for (int j = g0; j < g1; j += 8) {
        vf8 x;
        memcpy(&x, s + j, sizeof x);
        x = x - m_new;
        memcpy(s + j, &x, sizeof x);
        ATTN_FN(exp8)(s + j);
    }
    float sum = 0;
    for (int j = lo; j < hi; j++) sum += s[j];
    const float corr = m_old == -INFINITY ? 0.0f : expf(m_old - m_new);
    a->m[r] = m_new;
    a->l[r] = a->l[r] * corr + sum;

    /* acc = acc*corr + P V, 64 (then 8) dimensions held in registers */
    float *o = a->acc + (size_t)r * (size_t)hd;
    const vf8 cv = z + corr;
    int d0 = 0;
    for (; d0 + 64 <= hd; d0 += 64) {
        vf8 ac[8];
        memcpy(ac, o + d0, sizeof ac);
#pragma GCC unroll 8
        for (int u = 0; u < 8; u++) ac[u] = ac[u] * cv;
        for (int j = lo; j < hi; j++) {
            const vf8 pj = z + s[j];
            const float *vr = a->v + (size_t)j * ld + d0;
#pragma GCC unroll 8
            for (int u = 0; u < 8; u++) {
                vf8 vv;
                memcpy(&vv, vr + 8 * u, sizeof vv);
                ac[u] = VFMA(ac[u], pj, vv);
            }
        }
        memcpy(o + d0, ac, sizeof ac);
    }
    for (; d0 < hd; d0 += 8) {
        vf8 ac;
        memcpy(&ac, o + d0, sizeof ac);
        ac = ac * cv;
        for (int j = lo; j < hi; j++) {
            vf8 vv;
            memcpy(&vv, a->v + (size_t)j * ld + d0, sizeof vv);
            ac = VFMA(ac, z + s[j], vv);
        }
        memcpy(o + d0, &ac, sizeof ac);
    }
}

void ATTN_FN(attn_tile)(const attn_tile_args *a)
{
    const int hd = a->hd;
    float *s = a->s;
    const vf8 z = {0};
    for (int r = 0; r < a->n_rows; r++) {
        const int lo = a->lo[r], hi = a->hi[r];
        if (lo >= hi) continue;
        const float *q = a->q + (size_t)r * (size_t)hd;

        /* scores of the whole tile: sc[u] holds columns 8u..8u+7 */
        vf8 sc[ATTN_TK / 8];
#pragma GCC unroll 8
        for (int u = 0; u < ATTN_TK / 8; u++) sc[u] = z;
        for (int d = 0; d < hd; d++) {
            const float *kr = a->kt + (size_t)d * ATTN_TK;
            const vf8 qd = z + q[d];
#pragma GCC unroll 8
            for (int u = 0; u < ATTN_TK / 8; u++) {
                vf8 k;
                memcpy(&k, kr + 8 * u, sizeof k);
                sc[u] = VFMA(sc[u], qd, k);
            }
        }
        memcpy(s, sc, sizeof sc);
        ATTN_FN(softmax_pv)(a, r, lo, hi, s);
    }
}

/* The same with K row-major (a->kt is [ATTN_TK][hd]): one dot product per
 * visible key, for blocks of few rows (decode), where transposing the tile
 * would cost more than the scores. */
void ATTN_FN(attn_tile_rowk)(const attn_tile_args *a)
{
    const int hd = a->hd;
    const size_t ld = a->ld > 0 ? (size_t)a->ld : (size_t)hd;
    float *s = a->s;
    const vf8 z = {0};
    for (int r = 0; r < a->n_rows; r++) {
        const int lo = a->lo[r], hi = a->hi[r];
        if (lo >= hi) continue;
        const float *q = a->q + (size_t)r * (size_t)hd;
        for (int j = lo; j < hi; j++) {
            const float *kr = a->kt + (size_t)j * ld;
            vf8 s0 = z, s1 = z;
            int d = 0;
            for (; d + 16 <= hd; d += 16) {
                vf8 q0, q1, k0, k1;
                memcpy(&q0, q + d, sizeof q0);
                memcpy(&q1, q + d + 8, sizeof q1);
                memcpy(&k0, kr + d, sizeof k0);
                memcpy(&k1, kr + d + 8, sizeof k1);
                s0 = VFMA(s0, q0, k0);
                s1 = VFMA(s1, q1, k1);
            }
            for (; d < hd; d += 8) {
                vf8 q0, k0;
                memcpy(&q0, q + d, sizeof q0);
                memcpy(&k0, kr + d, sizeof k0);
                s0 = VFMA(s0, q0, k0);
            }
            s0 = s0 + s1;
            float t[8];
            memcpy(t, &s0, sizeof t);
            s[j] = ((t[0] + t[4]) + (t[1] + t[5])) + ((t[2] + t[6]) + (t[3] + t[7]));
        }
        ATTN_FN(softmax_pv)(a, r, lo, hi, s);
    }
}

/* bf16 -> float for n values (n a multiple of 8). */
void ATTN_FN(attn_bf16_row)(const uint8_t *src, float *dst, int n)
{
    typedef uint16_t vu16 __attribute__((vector_size(16)));
    for (int i = 0; i < n; i += 8) {
        vu16 h;
        memcpy(&h, src + (size_t)i * 2, sizeof h);
        vi8 w = __builtin_convertvector(h, vi8) << 16;
        memcpy(dst + i, &w, sizeof w);
    }
}

/* uint8 codes -> float for n values (n a multiple of 8). */
void ATTN_FN(attn_u8_row)(const uint8_t *src, float *dst, int n)
{
    typedef uint8_t vu8 __attribute__((vector_size(8)));
    for (int i = 0; i < n; i += 8) {
        vu8 b;
        memcpy(&b, src + i, sizeof b);
        vf8 f = __builtin_convertvector(b, vf8);
        memcpy(dst + i, &f, sizeof f);
    }
}

/* o = o*s + z per element (z NULL: o*s), n a multiple of 8; a multiply then
 * an add (no fused rounding), as kv_layout.h's tome_kv_value computes. */
void ATTN_FN(attn_affine_row)(float *o, const float *s, const float *z, int n)
{
    for (int i = 0; i < n; i += 8) {
        vf8 x, sv, zv = {0};
        memcpy(&x, o + i, sizeof x);
        memcpy(&sv, s + i, sizeof sv);
        x = x * sv;
        if (z) {
            memcpy(&zv, z + i, sizeof zv);
            x = x + zv;
        }
        memcpy(o + i, &x, sizeof x);
    }
}

/* o = o*s + z with scalars (has_z 0: o*s), n a multiple of 8. */
void ATTN_FN(attn_affine_const)(float *o, float s, float z, int has_z, int n)
{
    const vf8 zero = {0}, sv = zero + s, zv = zero + z;
    for (int i = 0; i < n; i += 8) {
        vf8 x;
        memcpy(&x, o + i, sizeof x);
        x = x * sv;
        if (has_z) x = x + zv;
        memcpy(o + i, &x, sizeof x);
    }
}
