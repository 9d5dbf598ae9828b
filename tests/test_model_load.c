/*
 * tests/test_model_load.c — config derivations and loader validation: every
 * malformed input gets TOME_ERR_* with a message naming the file / tensor.
 */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_impl.h"
#include "model/quant_impl.h"
#include "tome/model.h"
#include "tt.h"

static const char *golden_dir(const char *name)
{
    static char rel[256];
    snprintf(rel, sizeof rel, "tests/golden/model/%s", name);
    return tt_source_path(rel);
}

/* ------------------------------------------------------------ config */
static void test_config_scout(void)
{
    tome_model_config_t c;
    TT_OK(tome_model_config_load(tt_shared_path("llama4/scout-text-config.json"), &c));
    TT_EQ_INT(c.multimodal, 1);
    TT_EQ_INT(c.n_layers, 48);
    TT_EQ_INT(c.n_heads, 40);
    TT_EQ_INT(c.n_kv_heads, 8);
    TT_EQ_INT(c.head_dim, 128);
    TT_EQ_INT(c.n_experts, 16);
    TT_EQ_INT(c.attention_chunk_size, 8192);
    TT_EQ_INT(c.attn_temperature_tuning, 1); /* given as the int 4 */
    TT_EQ_INT(c.rope_llama3, 1);
    TT_NEAR(c.rope_factor, 8.0, 0);
    TT_NEAR(c.rope_original_max_pos, 8192, 0);
    TT_EQ_INT(c.n_eos, 3);
    TT_EQ_INT(c.eos_token_ids[1], 200007);
    TT_EQ_INT(c.bos_token_id, 200000);
    int n_rope = 0, n_moe = 0;
    for (int l = 0; l < 48; l++) n_rope += c.use_rope[l], n_moe += c.is_moe[l];
    TT_EQ_INT(n_rope, 36);
    TT_EQ_INT(n_moe, 48);
    TT_EQ_INT(c.use_rope[3], 0);
    TT_EQ_INT(c.use_rope[4], 1);
}

static void test_config_defaults(void)
{
    const char *j = "{\"model_type\":\"llama4_text\",\"hidden_size\":64,\"num_hidden_layers\":8,"
                    "\"num_attention_heads\":4,\"interleave_moe_layer_step\":2,\"no_rope_layer_interval\":3,"
                    "\"num_key_value_heads\":null,\"head_dim\":null,\"attention_chunk_size\":null,"
                    "\"attn_temperature_tuning\":false,\"rope_scaling\":null}";
    tome_model_config_t c;
    TT_OK(tome_model_config_parse(j, strlen(j), "t", &c));
    TT_EQ_INT(c.head_dim, 16);
    TT_EQ_INT(c.n_kv_heads, 4);
    TT_EQ_INT(c.attention_chunk_size, 0);
    TT_EQ_INT(c.attn_temperature_tuning, 0);
    TT_EQ_INT(c.rope_llama3, 0);
    TT_NEAR(c.rope_theta, 500000.0, 0);
    TT_EQ_INT(c.vocab_size, 202048);
    /* moe_layers = range(1, 8, 2); no_rope_layers = (l+1) % 3 != 0 */
    for (int l = 0; l < 8; l++) {
        TT_EQ_INT(c.is_moe[l], l % 2 == 1);
        TT_EQ_INT(c.use_rope[l], (l + 1) % 3 != 0);
    }
    TT_EQ_INT(c.eos_token_ids[0], 2);
    /* absent (not null): Llama4TextConfig's own defaults, 8 kv heads and head_dim 128, not derived */
    const char *absent = "{\"model_type\":\"llama4_text\",\"hidden_size\":64,\"num_attention_heads\":16}";
    TT_OK(tome_model_config_parse(absent, strlen(absent), "t", &c));
    TT_EQ_INT(c.head_dim, 128);
    TT_EQ_INT(c.n_kv_heads, 8);
    const char *bad[] = {
        "{\"model_type\":\"llama4_text\",\"num_attention_heads\":6,\"num_key_value_heads\":4}",
        "{\"model_type\":\"gpt2\"}",
        "{\"model_type\":\"llama4\"}",
        "{\"model_type\":\"llama4_text\",\"hidden_size\":\"big\"}",
        "{\"model_type\":\"llama4_text\",\"rope_scaling\":{\"rope_type\":\"yarn\",\"factor\":2}}",
        "{\"model_type\":\"llama4_text\",\"num_hidden_layers\":2,\"moe_layers\":[5]}",
        "{\"model_type\":\"llama4_text\",\"num_hidden_layers\":4,\"no_rope_layers\":[1,1]}",
        "{\"model_type\":",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tome_status st = tome_model_config_parse(bad[i], strlen(bad[i]), "bad.json", &c);
        if (st == TOME_OK) tt_fail(__FILE__, __LINE__, "bad config %zu accepted", i);
        TT_CONTAINS(tome_last_error(), "bad.json");
    }
    /* wrong-typed or contradictory fields: refused, the message names the field */
    static const struct {
        const char *json, *needle;
    } bad_field[] = {
        {"{\"head_dim\":-1}", "head_dim"},
        {"{\"num_key_value_heads\":-1}", "num_key_value_heads"},
        {"{\"rope_parameters\":\"llama3\"}", "rope_parameters"},
        {"{\"eos_token_id\":\"2\"}", "eos_token_id"},
        {"{\"tie_word_embeddings\":\"yes\"}", "tie_word_embeddings"},
        {"{\"attention_bias\":\"no\"}", "attention_bias"},
        {"{\"hidden_act\":[1]}", "hidden_act"},
        {"{\"attention_chunk_size\":true}", "attention_chunk_size"},
        {"{\"rms_norm_eps\":-1}", "rms_norm_eps"},
        {"{\"num_hidden_layers\":2,\"no_rope_layers\":[1,0],\"layer_types\":[\"full_attention\",\"full_attention\"]}",
         "'layer_types'[0] = 'full_attention'"},
        {"{\"num_hidden_layers\":2,\"layer_types\":[\"sliding_attention\",\"full_attention\"]}", "sliding_attention"},
        {"{\"num_hidden_layers\":2,\"layer_types\":[\"chunked_attention\"]}", "layer_types"},
    };
    for (size_t i = 0; i < sizeof bad_field / sizeof bad_field[0]; i++) {
        tome_status st = tome_model_config_parse(bad_field[i].json, strlen(bad_field[i].json), "bad.json", &c);
        if (st == TOME_OK) tt_fail(__FILE__, __LINE__, "bad config '%s' accepted", bad_field[i].json);
        TT_CONTAINS(tome_last_error(), "bad.json");
        TT_CONTAINS(tome_last_error(), bad_field[i].needle);
    }
    const char *agree = "{\"num_hidden_layers\":2,\"no_rope_layers\":[1,0],"
                        "\"layer_types\":[\"chunked_attention\",\"full_attention\"],\"tie_word_embeddings\":1}";
    TT_OK(tome_model_config_parse(agree, strlen(agree), "t", &c));
    TT_EQ_INT(c.tie_word_embeddings, 1);
}

static void test_rope_llama3_bands(void)
{
    /* chunked_gqa: theta 1e4, head_dim 16, original 256, low 1, high 4, factor 8:
     * wavelengths 6.3, 19.9, 62.8 (high: unchanged), 198.7 (medium: smoothed), >= 628 (low: / 8) */
    tome_model_config_t c;
    TT_OK(tome_model_config_load(golden_dir("chunked_gqa"), &c));
    float f[8];
    tome_model_rope_inv_freq(&c, f);
    int bands[3] = {0, 0, 0};
    for (int i = 0; i < 8; i++) {
        double base = 1.0 / pow(10000.0, (double)(2 * i) / 16.0), wl = 2 * M_PI / base;
        double want;
        if (wl < 64) want = base, bands[0]++;
        else if (wl > 256) want = base / 8, bands[2]++;
        else {
            double sm = (256.0 / wl - 1.0) / 3.0;
            want = (1 - sm) * base / 8 + sm * base;
            bands[1]++;
        }
        TT_NEAR(f[i], want, 1e-6 * want);
    }
    TT_EQ_INT(bands[0], 3);
    TT_EQ_INT(bands[1], 1);
    TT_EQ_INT(bands[2], 4);
}

/* ------------------------------------------------------------ safetensors validation */
static const char *write_st(const char *name, const char *header, size_t data_len, size_t declared_hlen)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", tt_tmpdir(), name);
    size_t hl = strlen(header);
    size_t total = 8 + hl + data_len;
    uint8_t *b = calloc(1, total);
    uint64_t dl = declared_hlen ? declared_hlen : hl;
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(dl >> (8 * i));
    memcpy(b + 8, header, hl);
    tt_write_file(path, b, total);
    free(b);
    return path;
}

static void expect_st_error(const char *path, tome_status want, const char *needle)
{
    tome_st_set s;
    TT_STATUS(tome_st_open(path, &s), want);
    TT_CONTAINS(tome_last_error(), needle);
    TT_CONTAINS(tome_last_error(), path);
}

static void test_st_valid_and_find(void)
{
    const char *p = write_st("ok.safetensors",
                             "{\"__metadata__\":{\"format\":\"pt\"},\"b\":{\"dtype\":\"F32\",\"shape\":[2],"
                             "\"data_offsets\":[8,16]},\"a\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[0,8]}}",
                             16, 0);
    tome_st_set s;
    TT_OK(tome_st_open(p, &s));
    TT_EQ_INT(s.n, 2);
    const tome_st_tensor *a = tome_st_find(&s, "a");
    TT_CHECK(a && a->dtype == TOME_DT_BF16 && a->shape[1] == 2 && a->nbytes == 8);
    TT_CHECK(tome_st_find(&s, "c") == NULL);
    tome_st_close(&s);
    tome_st_close(&s); /* closing twice is fine */
}

static void test_st_header_too_long(void)
{
    expect_st_error(write_st("long.safetensors", "{}", 0, 1000), TOME_ERR_FORMAT, "header length 1000");
    expect_st_error(write_st("short.safetensors", "", 0, 0), TOME_ERR_FORMAT, "");
}

static void test_st_bad_json(void)
{
    expect_st_error(write_st("json.safetensors", "{\"a\": [", 0, 0), TOME_ERR_FORMAT, "not valid JSON");
}

static void test_st_bad_dtype(void)
{
    expect_st_error(write_st("dtype.safetensors", "{\"w\":{\"dtype\":\"I7\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, 0),
                    TOME_ERR_UNSUPPORTED, "dtype 'I7'");
}

static void test_st_offsets(void)
{
    expect_st_error(write_st("range.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, 0),
                    TOME_ERR_FORMAT, "tensor 'w' ends at byte");
    expect_st_error(write_st("size.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,12]}}", 16, 0),
                    TOME_ERR_FORMAT, "dtype and shape need 16");
    expect_st_error(write_st("overlap.safetensors",
                             "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                             "\"y\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, 0),
                    TOME_ERR_FORMAT, "overlap");
    /* a shape whose element count wraps around 2^64 */
    expect_st_error(write_st("wrap.safetensors",
                             "{\"w\":{\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776],\"data_offsets\":[0,0]}}",
                             0, 0),
                    TOME_ERR_FORMAT, "tensor 'w': shape too large");
    /* an empty tensor between the two must not hide the overlap */
    expect_st_error(write_st("overlap2.safetensors",
                             "{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                             "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
                             "\"y\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 16, 0),
                    TOME_ERR_FORMAT, "tensors 'x' and 'y' overlap at data offset 8");
}

/* Copies a golden model directory to a fresh temp dir. */
static const char *copy_model(const char *name, const char *to)
{
    static char dst[1024];
    snprintf(dst, sizeof dst, "%s/%s", tt_tmpdir(), to);
    TT_EQ_INT(tt_system("cp -r '%s' '%s'", golden_dir(name), dst), 0);
    return dst;
}

static void edit_config(const char *dir, const char *key, json_t *val, const char *remove)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/config.json", dir);
    json_error_t e;
    json_t *j = json_load_file(p, 0, &e);
    TT_CHECK(j != NULL);
    if (!j) return;
    if (key) json_object_set_new(j, key, val);
    if (remove) json_object_del(j, remove);
    json_dump_file(j, p, 0);
    json_decref(j);
}

static void expect_model_error(const char *dir, tome_status want, const char *needle)
{
    tome_model_t *m = NULL;
    TT_STATUS(tome_model_open(dir, NULL, &m), want);
    TT_CHECK(m == NULL);
    TT_CONTAINS(tome_last_error(), needle);
}

static void test_model_shape_mismatch(void)
{
    const char *d = copy_model("chunked_gqa", "shape");
    edit_config(d, "vocab_size", json_integer(500), NULL);
    expect_model_error(d, TOME_ERR_FORMAT, "model.embed_tokens.weight' has shape [512, 64], the config needs [500, 64]");
}

static void test_model_missing_tensor(void)
{
    const char *d = copy_model("chunked_gqa", "missing");
    edit_config(d, "num_hidden_layers", json_integer(5), "no_rope_layers");
    edit_config(d, NULL, NULL, "moe_layers");
    edit_config(d, NULL, NULL, "layer_types");
    expect_model_error(d, TOME_ERR_FORMAT, "tensor 'model.layers.4.input_layernorm.weight' is missing");
}

static void test_model_truncated_shard(void)
{
    const char *d = copy_model("dense_shard", "trunc");
    TT_EQ_INT(tt_system("truncate -s -10 '%s/model-00002-of-00004.safetensors'", d), 0);
    expect_model_error(d, TOME_ERR_FORMAT, "model-00002-of-00004.safetensors: tensor");
    TT_CONTAINS(tome_last_error(), "past the end of the file");
}

static void test_model_index_missing_shard(void)
{
    const char *d = copy_model("dense_shard", "noshard");
    TT_EQ_INT(tt_system("rm '%s/model-00003-of-00004.safetensors'", d), 0);
    expect_model_error(d, TOME_ERR_NOT_FOUND, "shard 'model-00003-of-00004.safetensors'");
    TT_CONTAINS(tome_last_error(), "model.safetensors.index.json");
}

static void test_model_index_bad_shard_name(void)
{
    const char *d = copy_model("dense_shard", "emptyshard");
    char p[1200];
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", d);
    json_error_t e;
    json_t *j = json_load_file(p, 0, &e);
    TT_CHECK(j != NULL);
    if (!j) return;
    json_object_set_new(json_object_get(j, "weight_map"), "model.norm.weight", json_string(""));
    json_dump_file(j, p, 0);
    json_decref(j);
    expect_model_error(d, TOME_ERR_FORMAT, "weight_map['model.norm.weight'] names '' outside the directory");
    TT_CONTAINS(tome_last_error(), "model.safetensors.index.json");
}

static void test_model_bad_config_json(void)
{
    const char *d = copy_model("chunked_gqa", "badcfg");
    char p[1200];
    snprintf(p, sizeof p, "%s/config.json", d);
    tt_write_file(p, "{\"model_type\": \"llama4_text\",", 30);
    expect_model_error(d, TOME_ERR_FORMAT, "config.json: bad JSON");
}

/* The same checkpoint stored as F32 and as F16 gives the same logits as the
 * BF16 original (F32: bit-identical values; F16: bf16 values of this model
 * fit f16's range, a few lose low bits in f16 subnormals). */
static void convert_dir(const char *dst, tome_dtype dt)
{
    tome_st_set in;
    TT_OK(tome_st_open(golden_dir("chunked_gqa"), &in));
    tome_st_out *o = calloc(in.n, sizeof *o);
    for (size_t i = 0; i < in.n; i++) {
        const tome_st_tensor *t = &in.t[i];
        size_t numel = t->nbytes / 2;
        void *d = malloc(numel * tome_dtype_size(dt));
        for (size_t k = 0; k < numel; k++) {
            float f = tome_bf16_to_f32(((const uint16_t *)t->data)[k]);
            if (dt == TOME_DT_F32) ((float *)d)[k] = f;
            else ((_Float16 *)d)[k] = (_Float16)f;
        }
        o[i] = (tome_st_out){.name = t->name, .dtype = dt, .ndim = t->ndim, .data = d};
        memcpy(o[i].shape, t->shape, sizeof o[i].shape);
    }
    char p[1200];
    TT_EQ_INT(tt_system("mkdir -p '%s' && cp '%s/config.json' '%s/'", dst, golden_dir("chunked_gqa"), dst), 0);
    snprintf(p, sizeof p, "%s/model.safetensors", dst);
    TT_OK(tome_st_write(p, o, in.n));
    for (size_t i = 0; i < in.n; i++) free((void *)o[i].data);
    free(o);
    tome_st_close(&in);
}

static void eval_dir(const char *dir, float *out)
{
    tome_model_t *m = NULL;
    TT_OK(tome_model_open(dir, NULL, &m));
    if (!m) return;
    tome_session_t *s = NULL;
    TT_OK(tome_session_open(m, 32, 0, &s));
    int32_t ids[20];
    for (int i = 0; i < 20; i++) ids[i] = 3 + i * 23;
    TT_OK(tome_session_eval(s, ids, 20, 1, out));
    tome_session_free(s);
    tome_model_free(m);
}

static void test_model_f32_f16_weights(void)
{
    char d32[1100], d16[1100];
    snprintf(d32, sizeof d32, "%s/f32", tt_tmpdir());
    snprintf(d16, sizeof d16, "%s/f16", tt_tmpdir());
    convert_dir(d32, TOME_DT_F32);
    convert_dir(d16, TOME_DT_F16);
    const size_t n = 20 * 512;
    float *a = calloc(n, 4), *b = calloc(n, 4), *c = calloc(n, 4);
    eval_dir(golden_dir("chunked_gqa"), a);
    eval_dir(d32, b);
    eval_dir(d16, c);
    double mx = 0, e32 = 0, e16 = 0;
    for (size_t i = 0; i < n; i++) {
        mx = fmax(mx, fabs(a[i]));
        e32 = fmax(e32, fabs(a[i] - b[i]));
        e16 = fmax(e16, fabs(a[i] - c[i]));
    }
    TT_CHECK(mx > 0);
    TT_CHECK(e32 <= 1e-6 * mx);
    TT_CHECK(e16 <= 1e-2 * mx);
    free(a), free(b), free(c);
}

int main(void)
{
    TT_RUN(test_config_scout);
    TT_RUN(test_config_defaults);
    TT_RUN(test_rope_llama3_bands);
    TT_RUN(test_st_valid_and_find);
    TT_RUN(test_st_header_too_long);
    TT_RUN(test_st_bad_json);
    TT_RUN(test_st_bad_dtype);
    TT_RUN(test_st_offsets);
    TT_RUN(test_model_shape_mismatch);
    TT_RUN(test_model_missing_tensor);
    TT_RUN(test_model_truncated_shard);
    TT_RUN(test_model_index_missing_shard);
    TT_RUN(test_model_index_bad_shard_name);
    TT_RUN(test_model_bad_config_json);
    TT_RUN(test_model_f32_f16_weights);
    return tt_finish();
}
