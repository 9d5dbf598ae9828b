/*
 * tome/model.h — the Llama 4 (Scout architecture) text model: configuration,
 * weights, forward pass, sampling.
 *
 * A model is opened from a Hugging Face model directory (config.json plus
 * model.safetensors or sharded model-*-of-*.safetensors with
 * model.safetensors.index.json). Both config flavours are accepted: the
 * text-only `llama4_text` and the multimodal wrapper `llama4` whose text
 * model lives under "text_config" (tensor names then carry the
 * "language_model." prefix; vision tensors are ignored). The semantics follow
 * Hugging Face transformers' Llama4ForCausalLM exactly; docs/model.md lists
 * the derivations.
 *
 * A tome_model_t is immutable after open and may be shared by sessions on one
 * thread at a time (the forward pass uses all threads itself). A session
 * (tome_session_t) owns the KV cache of one sequence.
 */
#ifndef TOME_MODEL_H
#define TOME_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "tome/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TOME_MAX_LAYERS 256
#define TOME_MAX_EOS 8

/* The text model's configuration after transformers' defaults and
 * derivations have been applied. */
typedef struct tome_model_config {
    int64_t vocab_size;
    int64_t hidden_size;
    int64_t intermediate_size;     /* per expert (and shared expert)        */
    int64_t intermediate_size_mlp; /* dense FFN layers                      */
    int n_layers;
    int n_heads;
    int n_kv_heads;
    int head_dim;
    int n_experts;         /* num_local_experts                              */
    int n_experts_per_tok; /* top-k (1 for Scout)                            */
    double rms_norm_eps;
    double rope_theta;
    int rope_llama3;       /* rope_scaling / rope_parameters of type llama3  */
    double rope_factor, rope_low_freq_factor, rope_high_freq_factor;
    double rope_original_max_pos;
    int64_t attention_chunk_size; /* 0: no chunking                          */
    int attn_temperature_tuning;  /* bool (ints > 0 count as true)           */
    double floor_scale;
    double attn_scale;
    int use_qk_norm;
    int tie_word_embeddings;
    int64_t max_position_embeddings;
    uint8_t use_rope[TOME_MAX_LAYERS]; /* no_rope_layers[l]: 1 = RoPE (chunked) layer, 0 = NoPE (global) */
    uint8_t is_moe[TOME_MAX_LAYERS];   /* layer l in moe_layers                                        */
    int32_t bos_token_id;              /* -1 if none                                                   */
    int32_t eos_token_ids[TOME_MAX_EOS];
    int n_eos;
    int multimodal;                    /* config.json was the `llama4` wrapper                          */
} tome_model_config_t;

/* Parses <dir>/config.json (or a config.json path) and applies defaults. */
tome_status tome_model_config_load(const char *path, tome_model_config_t *out);
/* Same from JSON text; `what` names the source in error messages. */
tome_status tome_model_config_parse(const char *json, size_t len, const char *what,
                                    tome_model_config_t *out);
/* Inverse frequencies of RoPE (head_dim/2 floats) with llama3 scaling. */
void tome_model_rope_inv_freq(const tome_model_config_t *cfg, float *inv_freq);

typedef enum tome_weights_format {
    TOME_WEIGHTS_NATIVE = 0, /* as stored (bf16/f16/f32), converted on the fly */
    TOME_WEIGHTS_INT8 = 1,   /* group-wise int8 quantized on load              */
    TOME_WEIGHTS_INT4 = 2    /* group-wise int4 quantized on load              */
} tome_weights_format;

typedef struct tome_model_opts {
    tome_weights_format weights;
    int load_dummy;      /* --load-format dummy: random weights from the config, no files */
    uint64_t dummy_seed;
    int n_threads;       /* 0: tome_num_threads()                                          */
    int device;          /* TOME_DEVICE_CPU (0) or TOME_DEVICE_CUDA: the backend that runs it */
} tome_model_opts;

enum { TOME_DEVICE_CPU = 0, TOME_DEVICE_CUDA = 1 };

typedef struct tome_model tome_model_t;

/* dir: a model directory. opts may be NULL (native weights, all threads). */
tome_status tome_model_open(const char *dir, const tome_model_opts *opts, tome_model_t **out);
void tome_model_free(tome_model_t *m); /* NULL ok */
const tome_model_config_t *tome_model_get_config(const tome_model_t *m);
/* Bytes of weight storage the model uses (mapped + owned). */
uint64_t tome_model_weight_bytes(const tome_model_t *m);
/* Identity of the model as opened (config, weight files, weight format) as
 * 32 hex characters + NUL; KV snapshots are tied to it (model/model_hash.c). */
tome_status tome_model_hash(const tome_model_t *m, char out[33]);

/* ------------------------------------------------------------ sessions */
typedef struct tome_session tome_session_t;

/* max_tokens: capacity of the sequence (positions 0..max_tokens-1).
 * ubatch: tokens per prefill micro-batch (0: 512). */
tome_status tome_session_open(tome_model_t *m, int64_t max_tokens, int ubatch, tome_session_t **out);
void tome_session_free(tome_session_t *s); /* NULL ok */
int64_t tome_session_pos(const tome_session_t *s); /* tokens consumed so far */
void tome_session_reset(tome_session_t *s);

/* Appends ids[0..n) to the sequence. Logits: when logits != NULL,
 * logits_all != 0 writes [n][vocab] floats, else only the last token's
 * [vocab]. Positions whose logits are not asked for skip the last layer's
 * attention and FFN. */
tome_status tome_session_eval(tome_session_t *s, const int32_t *ids, size_t n, int logits_all,
                              float *logits);

/* ------------------------------------------------------------ sampling */
typedef struct tome_sampler_params {
    float temperature; /* <= 0: greedy                     */
    int top_k;         /* <= 0: off                        */
    float top_p;       /* >= 1 or <= 0: off                */
    uint64_t seed;
} tome_sampler_params;

typedef struct tome_sampler {
    tome_sampler_params p;
    uint64_t rng;          /* xoshiro-style state from seed */
    float *probs;          /* scratch, vocab entries        */
    int32_t *idx;          /* scratch                       */
    size_t cap;
} tome_sampler;

void tome_sampler_init(tome_sampler *s, const tome_sampler_params *p);
void tome_sampler_free(tome_sampler *s); /* frees scratch; NULL ok */
/* Picks a token from logits[0..vocab) (logits are not modified). */
tome_status tome_sampler_pick(tome_sampler *s, const float *logits, size_t vocab, int32_t *out);
int tome_model_is_eos(const tome_model_t *m, int32_t id);

/* Greedy/sampled generation: evaluates prompt, then produces up to n_new
 * tokens into out (stops after an eos id, which is included). */
tome_status tome_generate(tome_session_t *s, const int32_t *prompt, size_t n_prompt, size_t n_new,
                          tome_sampler *smp, int32_t *out, size_t *n_out);

/* ------------------------------------------------------------ checkpoints */
/* Writes a random-weight Hugging Face checkpoint (config.json + bf16
 * safetensors, sharded above shard_bytes, 0: 2 GiB) for preset "tiny",
 * "small" (~100M, Scout-shaped) or "scout" into dir (created).
 * Deterministic in seed. config_only: write config.json alone (for
 * --load-format dummy runs of shapes too large to write). */
tome_status tome_mkmodel(const char *preset, uint64_t seed, const char *dir, uint64_t shard_bytes, int config_only);

/* Writes a float32 .npy array of shape [rows][cols]. */
tome_status tome_write_npy_f32(const char *path, const float *data, size_t rows, size_t cols);

#ifdef __cplusplus
}
#endif
#endif /* TOME_MODEL_H */
