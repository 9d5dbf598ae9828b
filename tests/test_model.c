/*
 * tests/test_model.c — the Llama 4 text model against transformers' goldens
 * (tests/golden/model/, made by tools/make_model_goldens.py), config
 * derivations, sampling, quantization error, mkmodel and dummy weights.
 * Loader validation cases live in test_model_load.c.
 */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tome/model.h"
#include "tt.h"

/* Reads a float32 .npy [rows][cols]; returns malloc'd data or NULL. */
static float *read_npy(const char *path, size_t *rows, size_t *cols)
{
    size_t len;
    char *b = tt_read_file(path, &len);
    if (!b || len < 10 || memcmp(b, "\x93NUMPY", 6) != 0) {
        free(b);
        return NULL;
    }
    size_t hl = (size_t)(uint8_t)b[8] | ((size_t)(uint8_t)b[9] << 8);
    const char *shape = strstr(b + 10, "'shape': (");
    if (!shape || !strstr(b + 10, "'<f4'")) {
        free(b);
        return NULL;
    }
    *rows = strtoul(shape + 10, (char **)&shape, 10);
    *cols = strtoul(shape + 1, NULL, 10);
    if (10 + hl + *rows * *cols * 4 > len) {
        free(b);
        return NULL;
    }
    float *out = malloc(*rows * *cols * sizeof(float));
    memcpy(out, b + 10 + hl, *rows * *cols * sizeof(float));
    free(b);
    return out;
}

typedef struct golden {
    int32_t ids[256], prompt[64], greedy[128];
    size_t n_ids, n_prompt, n_greedy;
    float *logits;
    size_t rows, cols;
    double max_abs;
} golden;

static int load_golden(const char *name, golden *g)
{
    memset(g, 0, sizeof *g);
    char rel[256];
    snprintf(rel, sizeof rel, "tests/golden/model/%s/golden.json", name);
    json_error_t e;
    json_t *j = json_load_file(tt_source_path(rel), 0, &e);
    if (!j) return -1;
    json_t *a;
    size_t i;
    json_t *v;
    a = json_object_get(j, "ids");
    json_array_foreach(a, i, v) g->ids[g->n_ids++] = (int32_t)json_integer_value(v);
    a = json_object_get(j, "prompt");
    json_array_foreach(a, i, v) g->prompt[g->n_prompt++] = (int32_t)json_integer_value(v);
    a = json_object_get(j, "greedy");
    json_array_foreach(a, i, v) g->greedy[g->n_greedy++] = (int32_t)json_integer_value(v);
    json_decref(j);
    snprintf(rel, sizeof rel, "tests/golden/model/%s/logits.npy", name);
    g->logits = read_npy(tt_source_path(rel), &g->rows, &g->cols);
    if (!g->logits) return -1;
    for (size_t k = 0; k < g->rows * g->cols; k++)
        if (fabs(g->logits[k]) > g->max_abs) g->max_abs = fabs(g->logits[k]);
    return 0;
}

static const char *model_dir(const char *name)
{
    static char rel[256];
    snprintf(rel, sizeof rel, "tests/golden/model/%s", name);
    return tt_source_path(rel);
}

/* max |ours - golden| / max|golden| over all positions */
static double logits_err(tome_model_t *m, const golden *g, int ubatch)
{
    tome_session_t *s = NULL;
    TT_OK(tome_session_open(m, 256, ubatch, &s));
    if (!s) return 1e9;
    float *lg = malloc(g->n_ids * g->cols * sizeof(float));
    TT_OK(tome_session_eval(s, g->ids, g->n_ids, 1, lg));
    double err = 0;
    for (size_t k = 0; k < g->n_ids * g->cols; k++) err = fmax(err, fabs(lg[k] - g->logits[k]));
    free(lg);
    tome_session_free(s);
    return err / g->max_abs;
}

static void check_golden(const char *name)
{
    golden g;
    TT_CHECK(load_golden(name, &g) == 0);
    if (!g.logits) return;
    TT_EQ_INT(g.rows, g.n_ids);
    tome_model_t *m = NULL;
    TT_OK(tome_model_open(model_dir(name), NULL, &m));
    if (!m) return;
    TT_EQ_INT(tome_model_get_config(m)->vocab_size, g.cols);
    /* whole sequence in one micro-batch (split only at chunk boundaries), and in odd micro-batches */
    int ubatches[] = {512, 5, 1};
    for (size_t u = 0; u < sizeof ubatches / sizeof ubatches[0]; u++) {
        double err = logits_err(m, &g, ubatches[u]);
        printf("  %s ubatch %d: max logit error %.3g x max|logit|\n", name, ubatches[u], err);
        if (!(err <= 1e-3)) tt_fail(__FILE__, __LINE__, "%s ubatch %d: logits error %g x max|logit|", name, ubatches[u], err);
    }
    /* 64 greedy tokens identical */
    tome_session_t *s = NULL;
    TT_OK(tome_session_open(m, 256, 0, &s));
    tome_sampler smp;
    tome_sampler_params sp = {.temperature = 0};
    tome_sampler_init(&smp, &sp);
    int32_t out[128];
    size_t n_out = 0;
    /* goldens do not stop at eos: generate token by token the same way */
    float *lg = malloc(g.cols * sizeof(float));
    TT_OK(tome_session_eval(s, g.prompt, g.n_prompt, 0, lg));
    for (size_t i = 0; i < g.n_greedy; i++) {
        int32_t id;
        TT_OK(tome_sampler_pick(&smp, lg, g.cols, &id));
        out[n_out++] = id;
        TT_OK(tome_session_eval(s, &id, 1, 0, lg));
    }
    size_t same = 0;
    while (same < g.n_greedy && out[same] == g.greedy[same]) same++;
    if (same != g.n_greedy) tt_fail(__FILE__, __LINE__, "%s: greedy tokens differ at step %zu of %zu", name, same, g.n_greedy);
    TT_EQ_INT(g.n_greedy, 64);
    free(lg);
    tome_sampler_free(&smp);
    tome_session_free(s);
    tome_model_free(m);
    free(g.logits);
}

static void test_golden_chunked_gqa(void) { check_golden("chunked_gqa"); }
static void test_golden_mm_wrapper(void) { check_golden("mm_wrapper"); }
static void test_golden_dense_shard(void) { check_golden("dense_shard"); }

int main(void)
{
    TT_RUN(test_golden_chunked_gqa);
    TT_RUN(test_golden_mm_wrapper);
    TT_RUN(test_golden_dense_shard);
    return tt_finish();
}
