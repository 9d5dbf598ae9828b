/*
 * model/mkmodel.c — writes random-weight checkpoints in Hugging Face format
 * (config.json + bf16 safetensors, sharded with model.safetensors.index.json
 * when larger than the shard size), the input of tests and benchmarks.
 *
 * Presets:
 *   tiny   ~1M parameters: 4 layers (chunked ×3 + one global), MoE and dense
 *          interleaved, GQA 2, chunk 16, llama3 rope, temperature tuning
 *   small  ~100M parameters, Scout-shaped (every layer MoE, 16 experts,
 *          top-1, GQA 4, 3 chunked : 1 global), vocab 32000 — the benchmark model
 *   scout  Llama 4 Scout's text config (../shared/llama4/scout-text-config.json
 *          shape, ~109B parameters: hundreds of GB — use with care)
 * Values: N(0, 0.02²)-like from a splitmix stream seeded by seed and the
 * tensor name, rounded to bf16; norms are 1. Deterministic.
 */
#include "model/model_impl.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model/quant_impl.h"
#include "tome/niah.h"

static const char *TINY_CONFIG =
    "{\"architectures\":[\"Llama4ForCausalLM\"],\"model_type\":\"llama4_text\",\"vocab_size\":512,"
    "\"hidden_size\":64,\"intermediate_size\":64,\"intermediate_size_mlp\":128,\"num_hidden_layers\":4,"
    "\"num_attention_heads\":4,\"num_key_value_heads\":2,\"head_dim\":16,\"num_local_experts\":4,"
    "\"num_experts_per_tok\":1,\"interleave_moe_layer_step\":2,\"attention_chunk_size\":16,"
    "\"attn_temperature_tuning\":true,\"floor_scale\":8,\"attn_scale\":0.1,\"use_qk_norm\":true,"
    "\"rms_norm_eps\":1e-05,\"max_position_embeddings\":4096,\"no_rope_layer_interval\":4,"
    "\"rope_parameters\":{\"rope_type\":\"llama3\",\"rope_theta\":10000.0,\"factor\":8.0,\"low_freq_factor\":1.0,"
    "\"high_freq_factor\":4.0,\"original_max_position_embeddings\":256},\"bos_token_id\":1,"
    "\"eos_token_id\":[2],\"tie_word_embeddings\":false,\"hidden_act\":\"silu\",\"dtype\":\"bfloat16\"}\n";

static const char *SMALL_CONFIG =
    "{\"architectures\":[\"Llama4ForCausalLM\"],\"model_type\":\"llama4_text\",\"vocab_size\":32000,"
    "\"hidden_size\":512,\"intermediate_size\":256,\"intermediate_size_mlp\":1024,\"num_hidden_layers\":8,"
    "\"num_attention_heads\":8,\"num_key_value_heads\":2,\"head_dim\":64,\"num_local_experts\":16,"
    "\"num_experts_per_tok\":1,\"interleave_moe_layer_step\":1,\"attention_chunk_size\":8192,"
    "\"attn_temperature_tuning\":true,\"floor_scale\":8192,\"attn_scale\":0.1,\"use_qk_norm\":true,"
    "\"rms_norm_eps\":1e-05,\"max_position_embeddings\":131072,\"no_rope_layer_interval\":4,"
    "\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8.0,\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,"
    "\"original_max_position_embeddings\":8192},\"rope_theta\":500000.0,\"bos_token_id\":1,"
    "\"eos_token_id\":[2],\"tie_word_embeddings\":false,\"hidden_act\":\"silu\",\"torch_dtype\":\"bfloat16\"}\n";

static const char *SCOUT_CONFIG =
    "{\"architectures\":[\"Llama4ForConditionalGeneration\"],\"model_type\":\"llama4\",\"tie_word_embeddings\":false,"
    "\"text_config\":{\"model_type\":\"llama4_text\",\"attention_bias\":false,\"attention_chunk_size\":8192,"
    "\"attn_scale\":0.1,\"attn_temperature_tuning\":4,\"bos_token_id\":200000,\"eos_token_id\":[200001,200007,200008],"
    "\"pad_token_id\":200018,\"floor_scale\":8192,\"head_dim\":128,\"hidden_act\":\"silu\",\"hidden_size\":5120,"
    "\"interleave_moe_layer_step\":1,\"intermediate_size\":8192,\"intermediate_size_mlp\":16384,"
    "\"max_position_embeddings\":10485760,\"no_rope_layer_interval\":4,\"num_attention_heads\":40,"
    "\"num_experts_per_tok\":1,\"num_hidden_layers\":48,\"num_key_value_heads\":8,\"num_local_experts\":16,"
    "\"rms_norm_eps\":1e-05,\"rope_scaling\":{\"factor\":8.0,\"high_freq_factor\":4.0,\"low_freq_factor\":1.0,"
    "\"original_max_position_embeddings\":8192,\"rope_type\":\"llama3\"},\"rope_theta\":500000.0,"
    "\"torch_dtype\":\"bfloat16\",\"use_qk_norm\":true,\"vocab_size\":202048}}\n";

typedef struct tensor_spec {
    char name[160];
    int ndim;
    int64_t shape[3];
    int norm;
} tensor_spec;

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static size_t list_tensors(const tome_model_config_t *c, const char *prefix, tensor_spec *t)
{
    size_t n = 0;
    const int64_t H = c->hidden_size, Q = (int64_t)c->n_heads * c->head_dim, KV = (int64_t)c->n_kv_heads * c->head_dim;
#define ADD(nd, a, b, cc, nm, ...)                                                               \
    do {                                                                                         \
        if (t) {                                                                                 \
            snprintf(t[n].name, sizeof t[n].name, "%s" nm, prefix, __VA_ARGS__);                 \
            t[n].ndim = nd, t[n].shape[0] = a, t[n].shape[1] = b, t[n].shape[2] = cc;            \
            t[n].norm = strstr(t[n].name, "norm") != NULL;                                       \
        }                                                                                        \
        n++;                                                                                     \
    } while (0)
    ADD(2, c->vocab_size, H, 0, "model.embed_tokens.weight%s", "");
    for (int l = 0; l < c->n_layers; l++) {
        ADD(1, H, 0, 0, "model.layers.%d.input_layernorm.weight", l);
        ADD(1, H, 0, 0, "model.layers.%d.post_attention_layernorm.weight", l);
        ADD(2, Q, H, 0, "model.layers.%d.self_attn.q_proj.weight", l);
        ADD(2, KV, H, 0, "model.layers.%d.self_attn.k_proj.weight", l);
        ADD(2, KV, H, 0, "model.layers.%d.self_attn.v_proj.weight", l);
        ADD(2, H, Q, 0, "model.layers.%d.self_attn.o_proj.weight", l);
        if (c->is_moe[l]) {
            int64_t I = c->intermediate_size, E = c->n_experts;
            ADD(2, E, H, 0, "model.layers.%d.feed_forward.router.weight", l);
            ADD(3, E, H, 2 * I, "model.layers.%d.feed_forward.experts.gate_up_proj", l);
            ADD(3, E, I, H, "model.layers.%d.feed_forward.experts.down_proj", l);
            ADD(2, I, H, 0, "model.layers.%d.feed_forward.shared_expert.gate_proj.weight", l);
            ADD(2, I, H, 0, "model.layers.%d.feed_forward.shared_expert.up_proj.weight", l);
            ADD(2, H, I, 0, "model.layers.%d.feed_forward.shared_expert.down_proj.weight", l);
        } else {
            int64_t I = c->intermediate_size_mlp;
            ADD(2, I, H, 0, "model.layers.%d.feed_forward.gate_proj.weight", l);
            ADD(2, I, H, 0, "model.layers.%d.feed_forward.up_proj.weight", l);
            ADD(2, H, I, 0, "model.layers.%d.feed_forward.down_proj.weight", l);
        }
    }
    ADD(1, H, 0, 0, "model.norm.weight%s", "");
    if (!c->tie_word_embeddings) ADD(2, c->vocab_size, H, 0, "lm_head.weight%s", "");
#undef ADD
    return n;
}

static uint64_t spec_bytes(const tensor_spec *t)
{
    uint64_t b = 2;
    for (int d = 0; d < t->ndim; d++) b *= (uint64_t)t->shape[d];
    return b;
}

static tome_status fill(const tensor_spec *t, uint64_t seed, uint16_t *p)
{
    uint64_t numel = spec_bytes(t) / 2, s = seed;
    for (const char *c = t->name; *c; c++) s = (s ^ (uint8_t)*c) * 1099511628211ULL;
    for (uint64_t i = 0; i < numel; i++) {
        if (t->norm) {
            p[i] = tome_f32_to_bf16(1.0f);
            continue;
        }
        double u = 0;
        for (int k = 0; k < 4; k++) u += (double)(splitmix(&s) >> 11) * (1.0 / 9007199254740992.0);
        p[i] = tome_f32_to_bf16((float)((u - 2.0) * 0.02 * 1.7320508));
    }
    return TOME_OK;
}

static tome_status write_shard(const char *path, const tensor_spec *t, size_t n, uint64_t seed)
{
    tome_st_out *o = calloc(n, sizeof *o);
    if (!o) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    tome_status st = TOME_OK;
    for (size_t i = 0; i < n && st == TOME_OK; i++) {
        uint16_t *p = malloc(spec_bytes(&t[i]));
        if (!p) {
            st = tome_set_error(TOME_ERR_NOMEM, "mkmodel: out of memory for '%s' (%llu bytes)", t[i].name,
                                (unsigned long long)spec_bytes(&t[i]));
            break;
        }
        fill(&t[i], seed, p);
        o[i] = (tome_st_out){.name = t[i].name, .dtype = TOME_DT_BF16, .ndim = t[i].ndim, .data = p};
        memcpy(o[i].shape, t[i].shape, sizeof t[i].shape);
    }
    if (st == TOME_OK) st = tome_st_write(path, o, n);
    for (size_t i = 0; i < n; i++) free((void *)o[i].data);
    free(o);
    return st;
}

/* The output directory: created, or an existing one that is empty or was
 * made by mkmodel before (it holds the marker file). Anything else — a real
 * model's directory above all — is refused: mkmodel would replace its
 * config.json and weights. */
#define MKMODEL_MARK ".tome-mkmodel"
static tome_status prepare_dir(const char *dir)
{
    if (mkdir(dir, 0777) != 0) {
        if (errno != EEXIST) return tome_set_errno(TOME_ERR_IO, errno, "%s", dir);
        DIR *d = opendir(dir);
        if (!d) return tome_set_errno(TOME_ERR_IO, errno, "%s", dir);
        int foreign = 0, marked = 0;
        for (struct dirent *e; (e = readdir(d));) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            if (!strcmp(e->d_name, MKMODEL_MARK)) marked = 1;
            else foreign = 1;
        }
        closedir(d);
        if (foreign && !marked)
            return tome_set_error(TOME_ERR_INVALID_ARG,
                                  "mkmodel: %s exists and was not made by tome mkmodel: refusing to write a model "
                                  "into it (choose a new or empty directory)",
                                  dir);
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/" MKMODEL_MARK, dir);
    FILE *f = fopen(path, "w");
    if (!f || fputs("made by tome mkmodel; it may replace the files here\n", f) < 0 || fclose(f) != 0) {
        int e = errno;
        if (f) fclose(f);
        return tome_set_errno(TOME_ERR_IO, e, "%s", path);
    }
    return TOME_OK;
}

tome_status tome_mkmodel(const char *preset, uint64_t seed, const char *dir, uint64_t shard_bytes, int config_only)
{
    TOME_FORWARD(prepare_dir(dir));
    const char *cfg_text = !strcmp(preset, "tiny")    ? TINY_CONFIG
                           : !strcmp(preset, "small") ? SMALL_CONFIG
                           : !strcmp(preset, "scout") ? SCOUT_CONFIG
                                                      : NULL;
    if (!strcmp(preset, "retrieval")) return tome_synthetic_write(dir); /* model/synthetic.c */
    if (!cfg_text)
        return tome_set_error(TOME_ERR_INVALID_ARG, "mkmodel: unknown preset '%s' (tiny, small, scout, retrieval)", preset);
    if (shard_bytes == 0) shard_bytes = 2ULL << 30;
    tome_model_config_t c;
    TOME_FORWARD(tome_model_config_parse(cfg_text, strlen(cfg_text), preset, &c));
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    tome_atomic_file *f = NULL;
    TOME_FORWARD(tome_atomic_open(path, &f));
    tome_status st = tome_atomic_write(f, cfg_text, strlen(cfg_text));
    if (st != TOME_OK) {
        tome_atomic_abort(f);
        return st;
    }
    TOME_FORWARD(tome_atomic_commit(f));
    if (config_only) return TOME_OK;

    const char *prefix = c.multimodal ? "language_model." : "";
    size_t n = list_tensors(&c, prefix, NULL);
    tensor_spec *t = calloc(n, sizeof *t);
    size_t *shard_of = calloc(n, sizeof *shard_of);
    if (!t || !shard_of) {
        free(t);
        free(shard_of);
        return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    }
    list_tensors(&c, prefix, t);
    size_t n_shards = 1;
    uint64_t acc = 0, total = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t b = spec_bytes(&t[i]);
        if (acc > 0 && acc + b > shard_bytes) {
            n_shards++;
            acc = 0;
        }
        acc += b;
        total += b;
        shard_of[i] = n_shards - 1;
    }
    if (n_shards == 1) {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        st = write_shard(path, t, n, seed);
    } else {
        tome_buf idx = {0};
        st = tome_buf_appendf(&idx, "{\"metadata\":{\"total_size\":%llu},\"weight_map\":{", (unsigned long long)total);
        size_t first = 0;
        for (size_t sh = 0; sh < n_shards && st == TOME_OK; sh++) {
            size_t last = first;
            while (last < n && shard_of[last] == sh) last++;
            char name[128];
            snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", sh + 1, n_shards);
            snprintf(path, sizeof path, "%s/%s", dir, name);
            st = write_shard(path, t + first, last - first, seed);
            for (size_t i = first; i < last && st == TOME_OK; i++)
                st = tome_buf_appendf(&idx, "%s\"%s\":\"%s\"", i ? "," : "", t[i].name, name);
            first = last;
        }
        if (st == TOME_OK) st = tome_buf_appendf(&idx, "}}\n");
        if (st == TOME_OK) {
            snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
            st = tome_atomic_open(path, &f);
            if (st == TOME_OK) {
                st = tome_atomic_write(f, idx.data, idx.len);
                if (st == TOME_OK) st = tome_atomic_commit(f);
                else tome_atomic_abort(f);
            }
        }
        tome_buf_free(&idx);
    }
    free(t);
    free(shard_of);
    return st;
}
