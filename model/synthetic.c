/*
 * model/synthetic.c — the hand-set "retrieval" checkpoint (`tome mkmodel
 * --preset retrieval`): a Llama 4 text model whose weights are written by
 * hand so that, asked for a key, it emits the value that followed the key in
 * its context. It is an ordinary Hugging Face checkpoint (config.json +
 * model.safetensors through the same writer mkmodel uses) and runs through the
 * real loader, forward pass, KV cache and attention; nothing knows it is
 * synthetic. docs/synthetic-model.md explains the construction at length.
 *
 * Shape: vocab 202048 (Llama 4's ids), hidden 128, 2 layers, 1 head of 64
 * dims (n_kv_heads 1), dense FFN (moe_layers []), attention_chunk_size 64,
 * no_rope_layers [1, 0]: layer 0 is a chunked RoPE layer with QK-norm, layer
 * 1 the global NoPE layer with temperature tuning (Scout's 3:1 interleave
 * shrunk to 1:1).
 *
 * Residual stream (128 dims):
 *   [0]          1 for every token ("bias" direction)
 *   [1]          1 for tokens outside the alphabet (keeps |x| constant)
 *   A [8, 48)    one-hot identity of the token when it is one of the 40
 *                alphabet words (tome_synthetic_words)
 *   B [48, 88)   written by layer 0: identity of the previous token
 *   C [88, 128)  written by layer 1: identity of the token that followed the
 *                current token earlier in the context
 *
 * Layer 0 (previous-token head): q and k depend on dim 0 only, so after RoPE
 * and QK-norm the score of a query at p for a key at p' is
 * sqrt(64)·Σ_j a_j cos(θ_j (p - p' - 1)) / Σ_j a_j — largest at p' = p - 1.
 * v copies A; o writes it (× 1/16) into B.
 * Layer 1 (induction head): q = 12·A (the current token), k = B - A/2
 * (each position's previous token, minus its own identity: at the first
 * position of a chunk layer 0 sees only the token itself, B = A/2 there, and
 * without the correction a token would find itself), v = A (each position's
 * own token), o writes it (× 1/8) into C. A query for token t lands on the positions right after
 * earlier occurrences of t and copies those positions' tokens.
 * lm_head: alphabet word i reads C[i]; <|eot|> reads dim 0 with half that
 * weight, so the model says <|eot|> when nothing was copied. FFN weights are
 * zero.
 */
#include "model/model_impl.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model/quant_impl.h"
#include "tome/niah.h"

enum {
    SYN_H = 128,
    SYN_HD = 64,
    SYN_I = 32,
    SYN_N = 40, /* alphabet size */
    SYN_A = 8,
    SYN_B = 48,
    SYN_C = 88,
    SYN_PAIRS = 12, /* RoPE pairs the previous-token head uses */
    SYN_EOT = 200008
};
#define SYN_VOCAB 202048

/* Single Llama 4 tokens (with their leading space) that do not occur as words
 * in /usr/share/common-licenses or /usr/share/doc/x/copyright. Ids checked
 * against the tokenizer by tests/test_e2e.c. */
static const char *const WORDS[SYN_N] = {
    "amber", "copper", "violet", "glacier", "canyon", "lantern", "pepper", "marble", "cobalt", "maple",
    "coral", "lemon", "quartz", "jasmine", "lobster", "mango", "cherry", "comet", "ginger", "kettle",
    "tiger", "rabbit", "pumpkin", "salmon", "olive", "avocado", "banana", "peach", "plum", "grape",
    "melon", "coconut", "almond", "peanut", "squid", "shrimp", "zebra", "llama", "panda", "violin"};
static const int32_t WORD_IDS[SYN_N] = {
    174397, 29377, 118868, 152700, 166877, 160942, 43360, 70967, 133588, 120451, 105191, 48379, 99869, 170844,
    180189, 123026, 89686, 65060, 91805, 174736, 119452, 74550, 101618, 69822, 60790, 127893, 80487, 113351,
    106621, 90499, 188162, 71946, 86954, 100162, 182572, 90539, 162431, 72394, 199743, 125495};

static const char *CONFIG =
    "{\"architectures\":[\"Llama4ForCausalLM\"],\"model_type\":\"llama4_text\",\"vocab_size\":202048,"
    "\"hidden_size\":128,\"intermediate_size\":32,\"intermediate_size_mlp\":32,\"num_hidden_layers\":2,"
    "\"num_attention_heads\":1,\"num_key_value_heads\":1,\"head_dim\":64,\"num_local_experts\":1,"
    "\"num_experts_per_tok\":1,\"interleave_moe_layer_step\":1,\"moe_layers\":[],\"no_rope_layers\":[1,0],"
    "\"attention_chunk_size\":64,\"attn_temperature_tuning\":true,\"floor_scale\":8192,\"attn_scale\":0.1,"
    "\"use_qk_norm\":true,\"rms_norm_eps\":1e-05,\"max_position_embeddings\":16777216,"
    "\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8.0,\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,"
    "\"original_max_position_embeddings\":8192},\"rope_theta\":8.0,\"bos_token_id\":200000,"
    "\"eos_token_id\":[200001,200007,200008],\"pad_token_id\":200018,\"tie_word_embeddings\":false,"
    "\"hidden_act\":\"silu\",\"torch_dtype\":\"bfloat16\"}\n";

size_t tome_synthetic_alphabet(const char *const **words, const int32_t **ids)
{
    if (words) *words = WORDS;
    if (ids) *ids = WORD_IDS;
    return SYN_N;
}

static void put(uint16_t *w, size_t cols, size_t r, size_t c, float v) { w[r * cols + c] = tome_f32_to_bf16(v); }

tome_status tome_synthetic_write(const char *dir)
{
    tome_model_config_t cfg;
    TOME_FORWARD(tome_model_config_parse(CONFIG, strlen(CONFIG), "retrieval preset", &cfg));
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) return tome_set_errno(TOME_ERR_IO, errno, "%s", dir);

    const size_t V = SYN_VOCAB, H = SYN_H, HD = SYN_HD, I = SYN_I;
    /* one zeroed arena for every tensor, carved in order */
    const size_t n_big = V * H, n_qkv = HD * H, n_ffn = I * H, n_vec = H;
    const size_t total = 2 * n_big + 2 * (4 * n_qkv + 3 * n_ffn + 2 * n_vec) + n_vec;
    uint16_t *arena = calloc(total, sizeof *arena);
    if (!arena) return tome_set_error(TOME_ERR_NOMEM, "retrieval preset: out of memory (%zu bytes)", total * 2);
    uint16_t *p = arena;
#define TAKE(n) (p += (n), p - (n))
    uint16_t *embed = TAKE(n_big), *lm_head = TAKE(n_big), *final_norm = TAKE(n_vec);
    uint16_t *q[2], *k[2], *v[2], *o[2], *gate[2], *up[2], *down[2], *n_in[2], *n_post[2];
    for (int l = 0; l < 2; l++) {
        q[l] = TAKE(n_qkv), k[l] = TAKE(n_qkv), v[l] = TAKE(n_qkv), o[l] = TAKE(n_qkv);
        gate[l] = TAKE(n_ffn), up[l] = TAKE(n_ffn), down[l] = TAKE(n_ffn);
        n_in[l] = TAKE(n_vec), n_post[l] = TAKE(n_vec);
    }
#undef TAKE
    for (size_t d = 0; d < H; d++) {
        final_norm[d] = tome_f32_to_bf16(1.0f);
        for (int l = 0; l < 2; l++) n_in[l][d] = n_post[l][d] = tome_f32_to_bf16(1.0f);
    }
    /* embeddings: bias + (identity or filler) */
    for (size_t t = 0; t < V; t++) {
        put(embed, H, t, 0, 1.0f);
        put(embed, H, t, 1, 1.0f);
    }
    for (int i = 0; i < SYN_N; i++) {
        put(embed, H, (size_t)WORD_IDS[i], 1, 0.0f);
        put(embed, H, (size_t)WORD_IDS[i], SYN_A + (size_t)i, 1.0f);
    }
    /* layer 0: previous-token head. Pair j (interleaved dims 2j, 2j+1) gets
     * energy a_j ∝ 1/(j+1); q is k's pair rotated by -θ_j so that the RoPE
     * score peaks at a distance of exactly one position. */
    float inv_freq[SYN_HD / 2];
    tome_model_rope_inv_freq(&cfg, inv_freq);
    for (int j = 0; j < SYN_PAIRS; j++) {
        float r = sqrtf(1.0f / (float)(j + 1));
        put(q[0], H, 2 * (size_t)j, 0, r * cosf(inv_freq[j]));
        put(q[0], H, 2 * (size_t)j + 1, 0, -r * sinf(inv_freq[j]));
        put(k[0], H, 2 * (size_t)j, 0, r);
    }
    for (int i = 0; i < SYN_N; i++) {
        put(v[0], H, (size_t)i, SYN_A + (size_t)i, 1.0f);      /* v = A          */
        put(o[0], HD, SYN_B + (size_t)i, (size_t)i, 1.0f / 16); /* B += v / 16    */
        /* layer 1: induction head */
        put(q[1], H, (size_t)i, SYN_A + (size_t)i, 12.0f);      /* q = 12 A       */
        put(k[1], H, (size_t)i, SYN_B + (size_t)i, 1.0f);       /* k = B - A/2    */
        put(k[1], H, (size_t)i, SYN_A + (size_t)i, -0.5f);
        put(v[1], H, (size_t)i, SYN_A + (size_t)i, 1.0f);       /* v = A          */
        put(o[1], HD, SYN_C + (size_t)i, (size_t)i, 1.0f / 8);  /* C += v / 8     */
        put(lm_head, H, (size_t)WORD_IDS[i], SYN_C + (size_t)i, 1.0f);
    }
    put(lm_head, H, SYN_EOT, 0, 0.5f);

    enum { NT = 1 + 1 + 1 + 2 * 9 };
    tome_st_out t[NT];
    char names[NT][96];
    size_t n = 0;
#define OUT(ptr, r, c, ...)                                                                                 \
    do {                                                                                                    \
        snprintf(names[n], sizeof names[n], __VA_ARGS__);                                                   \
        t[n] = (tome_st_out){.name = names[n], .dtype = TOME_DT_BF16, .ndim = (c) ? 2 : 1, .data = (ptr)}; \
        t[n].shape[0] = (int64_t)(r), t[n].shape[1] = (int64_t)(c);                                         \
        n++;                                                                                                \
    } while (0)
    OUT(embed, V, H, "model.embed_tokens.weight");
    OUT(lm_head, V, H, "lm_head.weight");
    OUT(final_norm, H, 0, "model.norm.weight");
    for (int l = 0; l < 2; l++) {
        OUT(n_in[l], H, 0, "model.layers.%d.input_layernorm.weight", l);
        OUT(n_post[l], H, 0, "model.layers.%d.post_attention_layernorm.weight", l);
        OUT(q[l], HD, H, "model.layers.%d.self_attn.q_proj.weight", l);
        OUT(k[l], HD, H, "model.layers.%d.self_attn.k_proj.weight", l);
        OUT(v[l], HD, H, "model.layers.%d.self_attn.v_proj.weight", l);
        OUT(o[l], H, HD, "model.layers.%d.self_attn.o_proj.weight", l);
        OUT(gate[l], I, H, "model.layers.%d.feed_forward.gate_proj.weight", l);
        OUT(up[l], I, H, "model.layers.%d.feed_forward.up_proj.weight", l);
        OUT(down[l], H, I, "model.layers.%d.feed_forward.down_proj.weight", l);
    }
#undef OUT
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    tome_status st = tome_st_write(path, t, n);
    free(arena);
    if (st != TOME_OK) return st;
    snprintf(path, sizeof path, "%s/config.json", dir);
    tome_atomic_file *f = NULL;
    TOME_FORWARD(tome_atomic_open(path, &f));
    st = tome_atomic_write(f, CONFIG, strlen(CONFIG));
    if (st != TOME_OK) {
        tome_atomic_abort(f);
        return st;
    }
    return tome_atomic_commit(f);
}
