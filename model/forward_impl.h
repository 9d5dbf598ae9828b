/*
 * model/forward_impl.h — the session (one sequence, its KV cache and the
 * scratch of one micro-batch), shared by forward.c, moe.c and sample.c.
 */
#ifndef TOME_FORWARD_IMPL_H
#define TOME_FORWARD_IMPL_H

#include "kvcache/kvcache_impl.h"
#include "model/backend_impl.h"
#include "model/model_impl.h"

struct tome_session {
    tome_model_t *m;
    tome_kvcache *kv;
    int64_t pos;        /* tokens consumed */
    int64_t max_tokens;
    int ubatch;         /* micro-batch size (rows of every scratch buffer) */
    /* scratch, ubatch rows each */
    float *x, *h, *q, *k, *v, *att, *o;  /* [ub][H], [ub][H], [ub][Q], [ub][KV] x2, [ub][Q], [ub][H] */
    float *f1, *f2;                      /* [ub][max(I_mlp, 2I)]                              */
    float *xin;                          /* [ub*K][H]: tokens gathered for one expert          */
    float *router;                       /* [ub][E]                                           */
    float *score;                        /* [ub*K]                                            */
    int32_t *sel, *rows;                 /* [ub*K]                                            */
    int64_t *posv;                       /* [ub]                                              */
    float *tscale;                       /* [ub]                                              */
};

/* out[n][H] = FFN of layer l (dense or MoE) applied to h[n][H]. */
tome_status tome_ffn_forward(tome_session_t *s, int l, const float *h, size_t n, float *out);

#endif /* TOME_FORWARD_IMPL_H */
