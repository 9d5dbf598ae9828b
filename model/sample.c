/*
 * model/sample.c — token sampling and the generation loop.
 *
 * Greedy when temperature <= 0 (argmax, the lowest id wins a tie, like
 * torch.argmax). Otherwise: logits / temperature → keep the top_k highest
 * (top_k > 0) → softmax → keep the smallest prefix (by descending
 * probability) whose mass reaches top_p (0 < top_p < 1) → renormalise → draw
 * with a xorshift64* generator seeded from `seed` (same seed, same tokens).
 * Scratch arrays grow with the vocabulary and belong to the sampler.
 */
#include "model/forward_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void tome_sampler_init(tome_sampler *s, const tome_sampler_params *p)
{
    memset(s, 0, sizeof *s);
    s->p = *p;
    s->rng = p->seed * 0x9e3779b97f4a7c15ULL + 0x2545f4914f6cdd1dULL;
    if (!s->rng) s->rng = 1;
}

void tome_sampler_free(tome_sampler *s)
{
    if (!s) return;
    free(s->probs);
    free(s->idx);
    s->probs = NULL;
    s->idx = NULL;
    s->cap = 0;
}

static double next_uniform(tome_sampler *s)
{
    uint64_t x = s->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    s->rng = x;
    return (double)((x * 0x2545f4914f6cdd1dULL) >> 11) * (1.0 / 9007199254740992.0);
}

static const float *g_sort_logits;
static int cmp_desc(const void *a, const void *b)
{
    int32_t i = *(const int32_t *)a, j = *(const int32_t *)b;
    float x = g_sort_logits[i], y = g_sort_logits[j];
    return x > y ? -1 : x < y ? 1 : (i < j ? -1 : i > j);
}

tome_status tome_sampler_pick(tome_sampler *s, const float *logits, size_t vocab, int32_t *out)
{
    if (vocab == 0) return tome_set_error(TOME_ERR_INVALID_ARG, "sampler: empty vocabulary");
    if (s->p.temperature <= 0) {
        size_t best = 0;
        for (size_t i = 1; i < vocab; i++)
            if (logits[i] > logits[best]) best = i;
        *out = (int32_t)best;
        return TOME_OK;
    }
    if (s->cap < vocab) {
        float *p = realloc(s->probs, vocab * sizeof *p);
        if (p) s->probs = p;
        int32_t *ix = realloc(s->idx, vocab * sizeof *ix);
        if (ix) s->idx = ix;
        if (!p || !ix) return tome_set_error(TOME_ERR_NOMEM, "sampler: out of memory");
        s->cap = vocab;
    }
    for (size_t i = 0; i < vocab; i++) s->idx[i] = (int32_t)i;
    /* not thread-safe qsort context; sampling runs on the caller's thread */
    g_sort_logits = logits;
    qsort(s->idx, vocab, sizeof *s->idx, cmp_desc);
    size_t n = vocab;
    if (s->p.top_k > 0 && (size_t)s->p.top_k < n) n = (size_t)s->p.top_k;
    const float inv_t = 1.0f / s->p.temperature, mx = logits[s->idx[0]] * inv_t;
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        s->probs[i] = expf(logits[s->idx[i]] * inv_t - mx);
        sum += s->probs[i];
    }
    if (s->p.top_p > 0 && s->p.top_p < 1) {
        double acc = 0;
        size_t keep = n;
        for (size_t i = 0; i < n; i++) {
            acc += s->probs[i] / sum;
            if (acc >= s->p.top_p) {
                keep = i + 1;
                break;
            }
        }
        n = keep;
        sum = 0;
        for (size_t i = 0; i < n; i++) sum += s->probs[i];
    }
    double r = next_uniform(s) * sum, acc = 0;
    for (size_t i = 0; i < n; i++) {
        acc += s->probs[i];
        if (r < acc) {
            *out = s->idx[i];
            return TOME_OK;
        }
    }
    *out = s->idx[n - 1];
    return TOME_OK;
}

tome_status tome_generate(tome_session_t *s, const int32_t *prompt, size_t n_prompt, size_t n_new,
                          tome_sampler *smp, int32_t *out, size_t *n_out)
{
    *n_out = 0;
    if (n_prompt == 0) return tome_set_error(TOME_ERR_INVALID_ARG, "generate: empty prompt");
    const size_t V = (size_t)s->m->cfg.vocab_size;
    float *logits = malloc(V * sizeof(float));
    if (!logits) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    tome_status st = tome_session_eval(s, prompt, n_prompt, 0, logits);
    for (size_t i = 0; i < n_new && st == TOME_OK; i++) {
        int32_t id;
        st = tome_sampler_pick(smp, logits, V, &id);
        if (st != TOME_OK) break;
        out[(*n_out)++] = id;
        if (tome_model_is_eos(s->m, id) || i + 1 == n_new) break;
        st = tome_session_eval(s, &id, 1, 0, logits);
    }
    free(logits);
    return st;
}
