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
    /* device backends (backend_impl.h): the buffers above are device memory,
     * sel/rows hold 3*ub*K ints (sel, order, where) and f1/f2/xin ub*K rows */
    int on_device;
    void *dkv;                           /* the backend's KV cache                            */
    int32_t *dids, *dplan;               /* [ub] token ids, [2E+1] expert plan                */
    int64_t *hpos;                       /* [ub] host copy of the positions                   */
    float *dlogits;                      /* [logit_rows][V]                                   */
    size_t logit_rows;
    void *graph;                         /* captured decode step (n == 1, one logits row)     */
    int graph_failed;                    /* capture refused once: run decode uncaptured       */
};

/* out[n][H] = FFN of layer l (dense or MoE) applied to h[n][H]. */
tome_status tome_ffn_forward(tome_session_t *s, int l, const float *h, size_t n, float *out);

#endif /* TOME_FORWARD_IMPL_H */
