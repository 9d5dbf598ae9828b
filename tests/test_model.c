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

#include "model/quant_impl.h"
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

/* int8 / int4 weights: logits error against the bf16 weights' goldens. The
 * bounds are loose regression guards; docs/model.md records measured values. */
static void check_quant(tome_weights_format fmt, double bound, const char *what)
{
    const char *names[] = {"chunked_gqa", "mm_wrapper", "dense_shard"};
    for (size_t i = 0; i < 3; i++) {
        golden g;
        TT_CHECK(load_golden(names[i], &g) == 0);
        tome_model_opts o = {.weights = fmt};
        tome_model_t *m = NULL;
        TT_OK(tome_model_open(model_dir(names[i]), &o, &m));
        if (m && g.logits) {
            /* decode (1-token micro-batches: fused quantized gemv) == prefill (dequantized tiles + sgemm) */
            size_t nl = g.n_ids * g.cols;
            float *a = malloc(nl * sizeof(float)), *b = malloc(nl * sizeof(float));
            int ubs[2] = {0, 1};
            float *dst[2] = {a, b};
            for (int k = 0; k < 2; k++) {
                tome_session_t *s = NULL;
                TT_OK(tome_session_open(m, 256, ubs[k], &s));
                TT_OK(tome_session_eval(s, g.ids, g.n_ids, 1, dst[k]));
                tome_session_free(s);
            }
            double d = 0;
            for (size_t k = 0; k < nl; k++) d = fmax(d, fabs(a[k] - b[k]));
            if (!(d <= 1e-4 * g.max_abs))
                tt_fail(__FILE__, __LINE__, "%s %s: decode vs prefill logits differ by %g", names[i], what, d);
            free(a);
            free(b);
            double err = logits_err(m, &g, 0);
            printf("  %s %s: max logit error %.4f x max|logit|\n", names[i], what, err);
            if (!(err < bound)) tt_fail(__FILE__, __LINE__, "%s %s: error %g >= %g", names[i], what, err, bound);
            if (!(err > 0)) tt_fail(__FILE__, __LINE__, "%s %s: no quantization happened", names[i], what);
        }
        tome_model_free(m);
        free(g.logits);
    }
}
static void test_quant_int8(void) { check_quant(TOME_WEIGHTS_INT8, 0.2, "int8"); }
static void test_quant_int4(void) { check_quant(TOME_WEIGHTS_INT4, 1.0, "int4"); }

/* Block level: relative RMS error of a quantized Gaussian row, and exactness
 * on values already on the grid. */
static void test_quant_blocks(void)
{
    enum { N = 4096 };
    static float x[N], y[N];
    static tome_block_q8 b8[N / TOME_QGROUP];
    static tome_block_q4 b4[N / TOME_QGROUP];
    uint64_t st = 12345;
    for (int i = 0; i < N; i++) {
        double u = 0;
        for (int k = 0; k < 4; k++) {
            st = st * 6364136223846793005ULL + 1442695040888963407ULL;
            u += (double)(st >> 11) / 9007199254740992.0;
        }
        x[i] = (float)(u - 2.0);
    }
    double e8 = 0, e4 = 0, n2 = 0;
    tome_quant_q8_row(x, N, b8);
    tome_dequant_q8_row(b8, N, y);
    for (int i = 0; i < N; i++) e8 += (x[i] - y[i]) * (x[i] - y[i]), n2 += x[i] * x[i];
    tome_quant_q4_row(x, N, b4);
    tome_dequant_q4_row(b4, N, y);
    for (int i = 0; i < N; i++) e4 += (x[i] - y[i]) * (x[i] - y[i]);
    printf("  weight rel. RMS error: int8 %.5f, int4 %.4f\n", sqrt(e8 / n2), sqrt(e4 / n2));
    TT_CHECK(sqrt(e8 / n2) < 0.01);
    TT_CHECK(sqrt(e4 / n2) < 0.15);
    for (int i = 0; i < TOME_QGROUP; i++) x[i] = (float)(i % 15) - 7.0f; /* on the int4 grid, amax 7 */
    tome_quant_q4_row(x, TOME_QGROUP, b4);
    tome_dequant_q4_row(b4, TOME_QGROUP, y);
    for (int i = 0; i < TOME_QGROUP; i++) TT_NEAR(y[i], x[i], 1e-6);
}

static void test_sampling(void)
{
    float lg[6] = {0.1f, 2.0f, 1.9f, -1.0f, 2.0f, 0.5f};
    tome_sampler s;
    tome_sampler_params p = {.temperature = 0};
    tome_sampler_init(&s, &p);
    int32_t id;
    TT_OK(tome_sampler_pick(&s, lg, 6, &id));
    TT_EQ_INT(id, 1); /* first of the tied maxima, like torch.argmax */
    tome_sampler_free(&s);
    /* top_k = 1 is greedy whatever the temperature */
    p = (tome_sampler_params){.temperature = 5, .top_k = 1, .seed = 3};
    tome_sampler_init(&s, &p);
    for (int i = 0; i < 20; i++) {
        TT_OK(tome_sampler_pick(&s, lg, 6, &id));
        TT_EQ_INT(id, 1);
    }
    tome_sampler_free(&s);
    /* same seed, same draws; top_p 0.5 keeps only {1, 4, 2}-ish mass; counts follow the probabilities */
    int32_t a[200], b[200];
    int counts[6] = {0};
    for (int rep = 0; rep < 2; rep++) {
        p = (tome_sampler_params){.temperature = 1.0f, .seed = 42};
        tome_sampler_init(&s, &p);
        for (int i = 0; i < 200; i++) TT_OK(tome_sampler_pick(&s, lg, 6, rep ? &b[i] : &a[i]));
        tome_sampler_free(&s);
    }
    TT_CHECK(memcmp(a, b, sizeof a) == 0);
    for (int i = 0; i < 200; i++) counts[a[i]]++;
    TT_CHECK(counts[3] < counts[1]); /* logit -1 far less likely than logit 2 */
    TT_CHECK(counts[1] > 20 && counts[4] > 20 && counts[2] > 20);
    p = (tome_sampler_params){.temperature = 1.0f, .top_p = 0.3f, .seed = 7};
    tome_sampler_init(&s, &p);
    for (int i = 0; i < 100; i++) {
        TT_OK(tome_sampler_pick(&s, lg, 6, &id));
        TT_CHECK(id == 1 || id == 4); /* the two top tokens hold > 30 % of the mass together */
    }
    tome_sampler_free(&s);
}

static void test_generate_stops_at_eos(void)
{
    /* chunked_gqa's eos ids are 2 and 3: generation stops after one of them or at n */
    tome_model_t *m = NULL;
    TT_OK(tome_model_open(model_dir("chunked_gqa"), NULL, &m));
    if (!m) return;
    TT_CHECK(tome_model_is_eos(m, 2) && tome_model_is_eos(m, 3) && !tome_model_is_eos(m, 4));
    tome_session_t *s = NULL;
    TT_OK(tome_session_open(m, 200, 0, &s));
    tome_sampler smp;
    tome_sampler_params p = {.temperature = 1.5f, .seed = 9};
    tome_sampler_init(&smp, &p);
    int32_t prompt[3] = {5, 6, 7}, out[100];
    size_t n = 0;
    TT_OK(tome_generate(s, prompt, 3, 100, &smp, out, &n));
    TT_CHECK(n >= 1 && n <= 100);
    for (size_t i = 0; i + 1 < n; i++) TT_CHECK(!tome_model_is_eos(m, out[i]));
    TT_CHECK(n == 100 || tome_model_is_eos(m, out[n - 1]));
    TT_EQ_INT(tome_session_pos(s), 3 + (int64_t)n - 1);
    /* capacity is enforced */
    tome_session_reset(s);
    int32_t big[201] = {0};
    TT_STATUS(tome_session_eval(s, big, 201, 0, NULL), TOME_ERR_LIMIT);
    int32_t bad = 9999;
    TT_STATUS(tome_session_eval(s, &bad, 1, 0, NULL), TOME_ERR_INVALID_ARG);
    tome_sampler_free(&smp);
    tome_session_free(s);
    tome_model_free(m);
}

static void test_mkmodel_and_dummy(void)
{
    char dir[1024], dir2[1024];
    snprintf(dir, sizeof dir, "%s/tiny", tt_tmpdir());
    snprintf(dir2, sizeof dir2, "%s/tiny_sharded", tt_tmpdir());
    TT_OK(tome_mkmodel("tiny", 5, dir, 0, 0));
    TT_OK(tome_mkmodel("tiny", 5, dir2, 40000, 0)); /* forces several shards + index */
    char p[1100];
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir2);
    size_t len;
    char *idx = tt_read_file(p, &len);
    TT_CHECK(idx != NULL);
    free(idx);
    TT_STATUS(tome_mkmodel("huge", 5, dir, 0, 0), TOME_ERR_INVALID_ARG);
    /* the same weights whether sharded or not, and the same as dummy weights with that seed */
    tome_model_t *a = NULL, *b = NULL, *c = NULL;
    TT_OK(tome_model_open(dir, NULL, &a));
    TT_OK(tome_model_open(dir2, NULL, &b));
    tome_model_opts o = {.load_dummy = 1, .dummy_seed = 5};
    TT_OK(tome_model_open(dir, &o, &c));
    if (!a || !b || !c) goto out;
    {
        const size_t V = 512;
        float *la = malloc(V * 20 * sizeof(float)), *lb = malloc(V * 20 * sizeof(float)),
              *lc = malloc(V * 20 * sizeof(float));
        int32_t ids[20];
        for (int i = 0; i < 20; i++) ids[i] = (int32_t)(i * 37 % 512);
        tome_model_t *ms[3] = {a, b, c};
        float *ls[3] = {la, lb, lc};
        for (int k = 0; k < 3; k++) {
            tome_session_t *s = NULL;
            TT_OK(tome_session_open(ms[k], 64, 7, &s));
            TT_OK(tome_session_eval(s, ids, 20, 1, ls[k]));
            tome_session_free(s);
        }
        TT_CHECK(memcmp(la, lb, V * 20 * sizeof(float)) == 0);
        double d = 0;
        for (size_t i = 0; i < V * 20; i++) d = fmax(d, fabs(la[i] - lc[i]));
        /* dummy weights are random too, but not the checkpoint's: only check they are finite and differ */
        TT_CHECK(d > 0 && isfinite(d));
        free(la), free(lb), free(lc);
    }
out:
    tome_model_free(a);
    tome_model_free(b);
    tome_model_free(c);
}

int main(void)
{
    TT_RUN(test_golden_chunked_gqa);
    TT_RUN(test_golden_mm_wrapper);
    TT_RUN(test_golden_dense_shard);
    TT_RUN(test_quant_blocks);
    TT_RUN(test_quant_int8);
    TT_RUN(test_quant_int4);
    TT_RUN(test_sampling);
    TT_RUN(test_generate_stops_at_eos);
    TT_RUN(test_mkmodel_and_dummy);
    return tt_finish();
}
