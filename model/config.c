/*
 * model/config.c — config.json → tome_model_config_t.
 *
 * Accepts the text-only flavour (model_type "llama4_text", fields at the top
 * level) and the multimodal wrapper ("llama4", the text model's fields under
 * "text_config"; tie_word_embeddings may sit at the top level). Applies the
 * defaults and derivations of transformers' Llama4TextConfig:
 *   - num_key_value_heads null → num_attention_heads (absent → 8)
 *   - head_dim null → hidden_size / num_attention_heads (absent → 128)
 *   - no_rope_layers absent or empty → [int((l+1) % no_rope_layer_interval != 0)]
 *     (1 = the layer uses RoPE and the chunked mask; 0 = NoPE, global mask)
 *   - moe_layers absent/null → range(step-1, n_layers, step) with
 *     step = interleave_moe_layer_step
 *   - rope: "rope_parameters" (transformers 5) or "rope_scaling" + "rope_theta"
 *     (older files, Scout's); type "llama3" gets factor / low_freq_factor /
 *     high_freq_factor / original_max_position_embeddings
 *   - attn_temperature_tuning: a bool or an int (Scout ships 4); nonzero = on
 *   - eos_token_id: an int or a list
 *   - layer_types (the mask of each layer) must agree with no_rope_layers:
 *     chunked_attention on RoPE layers, full_attention on NoPE layers
 * Errors name the file and the field.
 */
#include "tome/model.h"

#include <jansson.h>
#include <math.h>
#include <string.h>

#include "core/core_impl.h"

static int get_num(json_t *o, const char *key, double *out)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (json_is_integer(v)) *out = (double)json_integer_value(v);
    else if (json_is_real(v)) *out = json_real_value(v);
    else if (json_is_boolean(v)) *out = json_is_true(v) ? 1.0 : 0.0;
    else return -1;
    return 1;
}

/* Reads an integer field; absent/null keeps *out. */
static tome_status get_int(json_t *o, const char *key, const char *what, int64_t *out)
{
    double d;
    int r = json_is_boolean(json_object_get(o, key)) ? -1 : get_num(o, key, &d);
    if (r < 0 || (r > 0 && (d != floor(d) || fabs(d) > 9.0e15)))
        return tome_set_error(TOME_ERR_FORMAT, "%s: field '%s' is not an integer", what, key);
    if (r > 0) *out = (int64_t)d;
    return TOME_OK;
}

static tome_status get_real(json_t *o, const char *key, const char *what, double *out)
{
    double d;
    int r = get_num(o, key, &d);
    if (r < 0) return tome_set_error(TOME_ERR_FORMAT, "%s: field '%s' is not a number", what, key);
    if (r > 0) *out = d;
    return TOME_OK;
}

static tome_status parse_rope(json_t *tc, const char *what, tome_model_config_t *c)
{
    json_t *rp = json_object_get(tc, "rope_parameters");
    json_t *rs = json_object_get(tc, "rope_scaling");
    TOME_FORWARD(get_real(tc, "rope_theta", what, &c->rope_theta));
    if (rp && !json_is_null(rp) && !json_is_object(rp))
        return tome_set_error(TOME_ERR_FORMAT, "%s: rope_parameters is not an object", what);
    json_t *r = (rp && json_is_object(rp)) ? rp : rs;
    if (!r || json_is_null(r)) return TOME_OK;
    if (!json_is_object(r)) return tome_set_error(TOME_ERR_FORMAT, "%s: rope_scaling is not an object", what);
    TOME_FORWARD(get_real(r, "rope_theta", what, &c->rope_theta));
    json_t *t = json_object_get(r, "rope_type");
    if (!t) t = json_object_get(r, "type");
    const char *type = (t && json_is_string(t)) ? json_string_value(t) : "default";
    if (!strcmp(type, "default")) return TOME_OK;
    if (strcmp(type, "llama3") != 0)
        return tome_set_error(TOME_ERR_UNSUPPORTED, "%s: rope type '%s' is not supported (default, llama3)",
                              what, type);
    c->rope_llama3 = 1;
    c->rope_factor = c->rope_low_freq_factor = c->rope_high_freq_factor = c->rope_original_max_pos = NAN;
    TOME_FORWARD(get_real(r, "factor", what, &c->rope_factor));
    TOME_FORWARD(get_real(r, "low_freq_factor", what, &c->rope_low_freq_factor));
    TOME_FORWARD(get_real(r, "high_freq_factor", what, &c->rope_high_freq_factor));
    c->rope_original_max_pos = (double)c->max_position_embeddings;
    TOME_FORWARD(get_real(r, "original_max_position_embeddings", what, &c->rope_original_max_pos));
    if (isnan(c->rope_factor) || isnan(c->rope_low_freq_factor) || isnan(c->rope_high_freq_factor))
        return tome_set_error(TOME_ERR_FORMAT,
                              "%s: llama3 rope scaling needs factor, low_freq_factor and high_freq_factor", what);
    if (!(c->rope_high_freq_factor > c->rope_low_freq_factor) || !(c->rope_low_freq_factor > 0) ||
        !(c->rope_factor > 0))
        return tome_set_error(TOME_ERR_FORMAT, "%s: llama3 rope scaling needs 0 < low_freq_factor < high_freq_factor",
                              what);
    return TOME_OK;
}

static tome_status parse_layer_list(json_t *a, const char *key, const char *what, int n_layers, int as_flags,
                                    uint8_t *flags)
{
    if (!json_is_array(a)) return tome_set_error(TOME_ERR_FORMAT, "%s: '%s' is not a list", what, key);
    size_t n = json_array_size(a);
    if (as_flags && n < (size_t)n_layers)
        return tome_set_error(TOME_ERR_FORMAT, "%s: '%s' has %zu entries for %d layers", what, key, n, n_layers);
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(a, i);
        if (!json_is_integer(v) && !json_is_boolean(v))
            return tome_set_error(TOME_ERR_FORMAT, "%s: '%s'[%zu] is not an integer", what, key, i);
        long long x = json_is_boolean(v) ? json_is_true(v) : json_integer_value(v);
        if (as_flags) {
            if (i < (size_t)n_layers) flags[i] = x != 0;
        } else {
            if (x < 0 || x >= n_layers)
                return tome_set_error(TOME_ERR_FORMAT, "%s: '%s'[%zu] = %lld is not a layer index (0..%d)", what,
                                      key, i, x, n_layers - 1);
            flags[x] = 1;
        }
    }
    return TOME_OK;
}

static tome_status parse_text(json_t *tc, json_t *top, const char *what, tome_model_config_t *c)
{
    memset(c, 0, sizeof *c);
    /* transformers' defaults (Llama4TextConfig) */
    c->vocab_size = 202048;
    c->hidden_size = 5120;
    c->intermediate_size = 8192;
    c->intermediate_size_mlp = 16384;
    /* absent → the dataclass defaults (8 kv heads, head_dim 128); null → derived below */
    int64_t n_layers = 48, n_heads = 40, n_kv = 8, head_dim = 128, n_exp = 16, k = 1;
    c->rms_norm_eps = 1e-5;
    c->rope_theta = 500000.0;
    c->attention_chunk_size = 8192;
    c->attn_temperature_tuning = 1;
    c->floor_scale = 8192;
    c->attn_scale = 0.1;
    c->use_qk_norm = 1;
    c->max_position_embeddings = 4096 * 32;
    int64_t bos = 1, interval = 4, step = 1;

    TOME_FORWARD(get_int(tc, "vocab_size", what, &c->vocab_size));
    TOME_FORWARD(get_int(tc, "hidden_size", what, &c->hidden_size));
    TOME_FORWARD(get_int(tc, "intermediate_size", what, &c->intermediate_size));
    TOME_FORWARD(get_int(tc, "intermediate_size_mlp", what, &c->intermediate_size_mlp));
    TOME_FORWARD(get_int(tc, "num_hidden_layers", what, &n_layers));
    TOME_FORWARD(get_int(tc, "num_attention_heads", what, &n_heads));
    const int kv_null = json_is_null(json_object_get(tc, "num_key_value_heads"));
    const int hd_null = json_is_null(json_object_get(tc, "head_dim"));
    if (!kv_null) TOME_FORWARD(get_int(tc, "num_key_value_heads", what, &n_kv));
    if (!hd_null) TOME_FORWARD(get_int(tc, "head_dim", what, &head_dim));
    TOME_FORWARD(get_int(tc, "num_local_experts", what, &n_exp));
    TOME_FORWARD(get_int(tc, "num_experts_per_tok", what, &k));
    TOME_FORWARD(get_int(tc, "max_position_embeddings", what, &c->max_position_embeddings));
    TOME_FORWARD(get_real(tc, "rms_norm_eps", what, &c->rms_norm_eps));
    TOME_FORWARD(get_real(tc, "floor_scale", what, &c->floor_scale));
    TOME_FORWARD(get_real(tc, "attn_scale", what, &c->attn_scale));
    TOME_FORWARD(get_int(tc, "no_rope_layer_interval", what, &interval));
    TOME_FORWARD(get_int(tc, "interleave_moe_layer_step", what, &step));
    TOME_FORWARD(get_int(tc, "bos_token_id", what, &bos));
    json_t *chunk = json_object_get(tc, "attention_chunk_size");
    if (chunk && json_is_null(chunk)) c->attention_chunk_size = 0;
    else TOME_FORWARD(get_int(tc, "attention_chunk_size", what, &c->attention_chunk_size));
    double d = 1;
    if (get_num(tc, "attn_temperature_tuning", &d) < 0)
        return tome_set_error(TOME_ERR_FORMAT, "%s: attn_temperature_tuning is not a bool or int", what);
    c->attn_temperature_tuning = d != 0;
    d = 1;
    if (get_num(tc, "use_qk_norm", &d) < 0)
        return tome_set_error(TOME_ERR_FORMAT, "%s: use_qk_norm is not a bool", what);
    c->use_qk_norm = d != 0;
    d = 0;
    json_t *tie_in = (!json_object_get(tc, "tie_word_embeddings") && top) ? top : tc;
    if (get_num(tie_in, "tie_word_embeddings", &d) < 0)
        return tome_set_error(TOME_ERR_FORMAT, "%s: tie_word_embeddings is not a bool", what);
    c->tie_word_embeddings = d != 0;
    d = 0;
    if (get_num(tc, "attention_bias", &d) < 0)
        return tome_set_error(TOME_ERR_FORMAT, "%s: attention_bias is not a bool", what);
    if (d != 0) return tome_set_error(TOME_ERR_UNSUPPORTED, "%s: attention_bias=true is not supported", what);
    json_t *act = json_object_get(tc, "hidden_act");
    if (act && !json_is_null(act) && !json_is_string(act))
        return tome_set_error(TOME_ERR_FORMAT, "%s: hidden_act is not a string", what);
    if (act && json_is_string(act) && strcmp(json_string_value(act), "silu") != 0)
        return tome_set_error(TOME_ERR_UNSUPPORTED, "%s: hidden_act '%s' is not supported (silu)", what,
                              json_string_value(act));
    if (c->rms_norm_eps < 0)
        return tome_set_error(TOME_ERR_FORMAT, "%s: rms_norm_eps %g is negative", what, c->rms_norm_eps);

    if (n_layers <= 0 || n_layers > TOME_MAX_LAYERS)
        return tome_set_error(TOME_ERR_FORMAT, "%s: num_hidden_layers %lld out of range (1..%d)", what,
                              (long long)n_layers, TOME_MAX_LAYERS);
    if (n_heads <= 0 || n_heads > 4096)
        return tome_set_error(TOME_ERR_FORMAT, "%s: num_attention_heads %lld out of range", what, (long long)n_heads);
    if (kv_null) n_kv = n_heads;
    if (n_kv <= 0 || n_heads % n_kv != 0)
        return tome_set_error(TOME_ERR_FORMAT, "%s: num_attention_heads %lld is not a multiple of num_key_value_heads %lld",
                              what, (long long)n_heads, (long long)n_kv);
    if (c->hidden_size <= 0 || c->vocab_size <= 0 || c->intermediate_size <= 0 || c->intermediate_size_mlp <= 0 ||
        c->hidden_size > (1 << 20) || c->vocab_size > (1 << 24))
        return tome_set_error(TOME_ERR_FORMAT, "%s: hidden_size, vocab_size and intermediate sizes must be positive",
                              what);
    if (hd_null) head_dim = c->hidden_size / n_heads;
    if (head_dim <= 0 || head_dim % 2 != 0 || head_dim > 4096)
        return tome_set_error(TOME_ERR_FORMAT, "%s: head_dim %lld must be positive and even", what, (long long)head_dim);
    if (n_exp <= 0 || n_exp > 4096 || k <= 0 || k > n_exp)
        return tome_set_error(TOME_ERR_FORMAT, "%s: num_local_experts %lld / num_experts_per_tok %lld out of range",
                              what, (long long)n_exp, (long long)k);
    if (c->attention_chunk_size < 0)
        return tome_set_error(TOME_ERR_FORMAT, "%s: attention_chunk_size is negative", what);
    if (c->attn_temperature_tuning && !(c->floor_scale > 0))
        return tome_set_error(TOME_ERR_FORMAT, "%s: floor_scale must be positive", what);
    c->n_layers = (int)n_layers;
    c->n_heads = (int)n_heads;
    c->n_kv_heads = (int)n_kv;
    c->head_dim = (int)head_dim;
    c->n_experts = (int)n_exp;
    c->n_experts_per_tok = (int)k;

    json_t *nr = json_object_get(tc, "no_rope_layers");
    if (nr && !json_is_null(nr) && !(json_is_array(nr) && json_array_size(nr) == 0)) {
        TOME_FORWARD(parse_layer_list(nr, "no_rope_layers", what, c->n_layers, 1, c->use_rope));
    } else {
        if (interval <= 0)
            return tome_set_error(TOME_ERR_FORMAT, "%s: no_rope_layer_interval must be positive", what);
        for (int l = 0; l < c->n_layers; l++) c->use_rope[l] = ((l + 1) % interval) != 0;
    }
    /* transformers picks each layer's mask by layer_types (derived from no_rope_layers when absent) and its
     * RoPE by no_rope_layers; tome ties the chunked mask to RoPE, so a file where the two disagree is refused */
    json_t *lt = json_object_get(tc, "layer_types");
    if (lt && !json_is_null(lt)) {
        if (!json_is_array(lt) || json_array_size(lt) != (size_t)c->n_layers)
            return tome_set_error(TOME_ERR_FORMAT, "%s: 'layer_types' is not a list of %d strings", what, c->n_layers);
        for (int l = 0; l < c->n_layers; l++) {
            const char *t = json_string_value(json_array_get(lt, (size_t)l));
            if (!t) return tome_set_error(TOME_ERR_FORMAT, "%s: 'layer_types'[%d] is not a string", what, l);
            int chunked = !strcmp(t, "chunked_attention");
            if (!chunked && strcmp(t, "full_attention") != 0 && strcmp(t, "attention") != 0)
                return tome_set_error(TOME_ERR_UNSUPPORTED,
                                      "%s: 'layer_types'[%d] = '%s' is not supported (chunked_attention, full_attention)",
                                      what, l, t);
            if (chunked != c->use_rope[l])
                return tome_set_error(TOME_ERR_UNSUPPORTED,
                                      "%s: 'layer_types'[%d] = '%s' but no_rope_layers makes layer %d a %s layer; "
                                      "tome supports the chunked mask on RoPE layers only",
                                      what, l, t, l, c->use_rope[l] ? "RoPE" : "NoPE");
        }
    }
    json_t *ml = json_object_get(tc, "moe_layers");
    if (ml && !json_is_null(ml)) {
        TOME_FORWARD(parse_layer_list(ml, "moe_layers", what, c->n_layers, 0, c->is_moe));
    } else {
        if (step <= 0) return tome_set_error(TOME_ERR_FORMAT, "%s: interleave_moe_layer_step must be positive", what);
        for (int64_t l = step - 1; l < c->n_layers; l += step) c->is_moe[l] = 1;
    }
    TOME_FORWARD(parse_rope(tc, what, c));

    c->bos_token_id = (bos >= 0 && bos < c->vocab_size) ? (int32_t)bos : -1;
    json_t *eos = json_object_get(tc, "eos_token_id");
    if (eos && json_is_integer(eos)) {
        c->eos_token_ids[c->n_eos++] = (int32_t)json_integer_value(eos);
    } else if (eos && json_is_array(eos)) {
        for (size_t i = 0; i < json_array_size(eos) && c->n_eos < TOME_MAX_EOS; i++) {
            json_t *e = json_array_get(eos, i);
            if (!json_is_integer(e))
                return tome_set_error(TOME_ERR_FORMAT, "%s: eos_token_id[%zu] is not an integer", what, i);
            c->eos_token_ids[c->n_eos++] = (int32_t)json_integer_value(e);
        }
    } else if (!eos) {
        c->eos_token_ids[c->n_eos++] = 2;
    } else if (!json_is_null(eos)) {
        return tome_set_error(TOME_ERR_FORMAT, "%s: eos_token_id is not an integer or a list of integers", what);
    }
    return TOME_OK;
}

tome_status tome_model_config_parse(const char *text, size_t len, const char *what, tome_model_config_t *out)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, 0, &jerr);
    if (!root)
        return tome_set_error(TOME_ERR_FORMAT, "%s: bad JSON at line %d column %d: %s", what, jerr.line, jerr.column,
                              jerr.text);
    tome_status st = TOME_OK;
    if (!json_is_object(root)) {
        st = tome_set_error(TOME_ERR_FORMAT, "%s: top level is not a JSON object", what);
        goto done;
    }
    json_t *mt = json_object_get(root, "model_type");
    const char *type = (mt && json_is_string(mt)) ? json_string_value(mt) : "llama4_text";
    json_t *tc = json_object_get(root, "text_config");
    if (!strcmp(type, "llama4") || (tc && json_is_object(tc))) {
        if (!tc || !json_is_object(tc)) {
            st = tome_set_error(TOME_ERR_FORMAT, "%s: model_type llama4 without a text_config object", what);
            goto done;
        }
        st = parse_text(tc, root, what, out);
        out->multimodal = 1;
    } else if (!strcmp(type, "llama4_text")) {
        st = parse_text(root, NULL, what, out);
    } else {
        st = tome_set_error(TOME_ERR_UNSUPPORTED, "%s: model_type '%s' is not a Llama 4 model (llama4, llama4_text)",
                            what, type);
    }
done:
    json_decref(root);
    return st;
}

tome_status tome_model_config_load(const char *path, tome_model_config_t *out)
{
    tome_buf b = {0};
    char file[4096];
    size_t pl = strlen(path);
    if (pl >= 12 && !strcmp(path + pl - 11, "config.json")) snprintf(file, sizeof file, "%s", path);
    else snprintf(file, sizeof file, "%s/config.json", path);
    TOME_FORWARD(tome_read_file(file, 16u << 20, &b));
    tome_status st = tome_model_config_parse(b.data, b.len, file, out);
    tome_buf_free(&b);
    return st;
}

void tome_model_rope_inv_freq(const tome_model_config_t *c, float *inv_freq)
{
    /* transformers computes these in float32: base ** (arange(0, dim, 2) / dim) */
    int dim = c->head_dim;
    for (int i = 0; i < dim / 2; i++) {
        float e = (float)(2 * i) / (float)dim;
        float f = (float)(1.0 / pow(c->rope_theta, (double)e));
        if (c->rope_llama3) {
            double old = c->rope_original_max_pos;
            double low_wl = old / c->rope_low_freq_factor, high_wl = old / c->rope_high_freq_factor;
            float wl = (float)(2.0 * M_PI) / f;
            float g = f;
            if (wl > low_wl) g = f / (float)c->rope_factor;
            if (!(wl < high_wl) && !(wl > low_wl)) {
                float smooth = (float)(((float)old / wl - c->rope_low_freq_factor) /
                                       (c->rope_high_freq_factor - c->rope_low_freq_factor));
                g = (1.0f - smooth) * g / (float)c->rope_factor + smooth * g;
            }
            f = g;
        }
        inv_freq[i] = f;
    }
}
