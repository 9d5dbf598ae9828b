/*
 * model/synthetic.c — the hand-set "retrieval" checkpoint (`tome mkmodel
 * --preset retrieval`): a Llama 4 text model whose weights are written by
 * hand so that, asked for a key, it emits the value that followed the key in
 * its context. It is an ordinary Hugging Face checkpoint (config.json +
 * model.safetensors through the same writer mkmodel uses) and runs through the
 * real loader, forward pass, KV cache and attention; nothing knows it is
 * synthetic. docs/synthetic-model.md explains the construction at length.
 *
 * Other shapes (tome_synthetic_write_shape): wider hidden / heads / more
 * layers / other chunks / larger vocab, with the limits check_shape names.
 *
 * Default shape: vocab 202048 (Llama 4's ids), hidden 128, 2 layers, 1 head of 64
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
    SYN_EOT = 200008,
    SYN_MAX_CHUNK = 8192 /* longest chunk the previous-token head was checked on (docs): head_dim >= 128 */
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

size_t tome_synthetic_alphabet(const char *const **words, const int32_t **ids)
{
    if (words) *words = WORDS;
    if (ids) *ids = WORD_IDS;
    return SYN_N;
}

static void put(uint16_t *w, size_t cols, size_t r, size_t c, float v) { w[r * cols + c] = tome_f32_to_bf16(v); }

void tome_synthetic_shape_default(tome_synthetic_shape *sh)
{
    *sh = (tome_synthetic_shape){.hidden = SYN_H, .n_layers = 2, .n_heads = 1, .n_kv_heads = 1, .head_dim = SYN_HD,
                                 .chunk = 64, .vocab = SYN_VOCAB};
}

tome_status tome_synthetic_shape_parse(const char *spec, tome_synthetic_shape *sh)
{
    tome_synthetic_shape_default(sh);
    if (!spec || !*spec) return TOME_OK;
    char buf[512];
    if (strlen(spec) >= sizeof buf) return tome_set_error(TOME_ERR_INVALID_ARG, "synthetic shape '%s': too long", spec);
    snprintf(buf, sizeof buf, "%s", spec);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(t, '='), *end = NULL;
        long long v = eq ? strtoll(eq + 1, &end, 10) : 0;
        if (!eq || end == eq + 1 || *end || v <= 0 || v > (1LL << 40))
            return tome_set_error(TOME_ERR_INVALID_ARG, "synthetic shape: '%s' is not key=positive-integer", t);
        *eq = 0;
        if (!strcmp(t, "hidden")) sh->hidden = v;
        else if (!strcmp(t, "layers")) sh->n_layers = (int)(v < 100000 ? v : 100000);
        else if (!strcmp(t, "heads")) sh->n_heads = (int)(v < 100000 ? v : 100000);
        else if (!strcmp(t, "kv_heads")) sh->n_kv_heads = (int)(v < 100000 ? v : 100000);
        else if (!strcmp(t, "head_dim")) sh->head_dim = v;
        else if (!strcmp(t, "chunk")) sh->chunk = v;
        else if (!strcmp(t, "vocab")) sh->vocab = v;
        else
            return tome_set_error(TOME_ERR_INVALID_ARG,
                                  "synthetic shape: unknown key '%s' (hidden, layers, heads, kv_heads, head_dim, chunk, "
                                  "vocab)",
                                  t);
    }
    return TOME_OK;
}

/* The limits of the construction (docs/synthetic-model.md, "Other shapes"):
 * each is what the circuit needs, or how far it was checked to retrieve. */
static tome_status check_shape(const tome_synthetic_shape *sh)
{
    if (sh->hidden < SYN_H || sh->hidden > 16384)
        return tome_set_error(TOME_ERR_INVALID_ARG,
                              "synthetic model: hidden %lld is out of range: the residual stream needs %d dims (bias, "
                              "filler, 3 x %d alphabet subspaces) and at most 16384 are built",
                              (long long)sh->hidden, SYN_H, SYN_N);
    if (sh->head_dim < SYN_HD || sh->head_dim > 512 || sh->head_dim % 2)
        return tome_set_error(TOME_ERR_INVALID_ARG,
                              "synthetic model: head_dim %lld is out of range (even, %d..512): the previous-token "
                              "head uses %d RoPE pairs and the value copy %d dims, and smaller QK-normed heads "
                              "were not checked",
                              (long long)sh->head_dim, SYN_HD, SYN_PAIRS, SYN_N);
    if (sh->n_layers < 2 || sh->n_layers > TOME_MAX_LAYERS)
        return tome_set_error(TOME_ERR_INVALID_ARG,
                              "synthetic model: %d layers is out of range (2..%d: a previous-token layer and an "
                              "induction layer at least)",
                              sh->n_layers, TOME_MAX_LAYERS);
    if (sh->n_heads < 1 || sh->n_kv_heads < 1 || sh->n_heads % sh->n_kv_heads || sh->n_heads > 128)
        return tome_set_error(TOME_ERR_INVALID_ARG,
                              "synthetic model: heads %d / kv_heads %d: kv_heads must divide heads (at most 128)",
                              sh->n_heads, sh->n_kv_heads);
    /* checked with tome niah: head_dim 64 retrieves with chunks up to 1024
     * and misses from 2048; head_dim 128 (Scout's) retrieves at 8192 */
    const int64_t max_chunk = sh->head_dim >= 128 ? SYN_MAX_CHUNK : 1024;
    if (sh->chunk < 8 || sh->chunk > max_chunk)
        return tome_set_error(TOME_ERR_INVALID_ARG,
                              "synthetic model: chunk %lld is out of range (8..%lld with head_dim %lld; 8..%d needs "
                              "head_dim >= 128): in a longer chunk the previous-token head's softmax spreads over "
                              "too many positions to pick one",
                              (long long)sh->chunk, (long long)max_chunk, (long long)sh->head_dim, SYN_MAX_CHUNK);
    if (sh->vocab < SYN_VOCAB || sh->vocab > (1 << 22))
        return tome_set_error(TOME_ERR_INVALID_ARG,
                              "synthetic model: vocab %lld is out of range (%d..%d): every Llama 4 token id must be "
                              "inside it",
                              (long long)sh->vocab, SYN_VOCAB, 1 << 22);
    return TOME_OK;
}

tome_status tome_synthetic_write(const char *dir)
{
    tome_synthetic_shape sh;
    tome_synthetic_shape_default(&sh);
    return tome_synthetic_write_shape(dir, &sh);
}

tome_status tome_synthetic_write_shape(const char *dir, const tome_synthetic_shape *sh)
{
    TOME_FORWARD(check_shape(sh));
    const int NL = sh->n_layers, NH = sh->n_heads, NKV = sh->n_kv_heads;
    const size_t V = (size_t)sh->vocab, H = (size_t)sh->hidden, HD = (size_t)sh->head_dim, I = SYN_I;
    /* rope_theta keeps the pair frequencies of the 64-dim head:
     * theta^(-2j/HD) = 8^(-2j/64) */
    const double theta = pow(8.0, (double)HD / 64.0);
    /* config.json: a faithful llama4_text config of this shape; layer 0 is a
     * chunked RoPE layer, the last a global NoPE layer, any between are
     * RoPE layers with zero weights (the residual passes through) */
    tome_buf cj = {0};
    tome_buf_appendf(&cj,
                     "{\"architectures\":[\"Llama4ForCausalLM\"],\"model_type\":\"llama4_text\",\"vocab_size\":%lld,"
                     "\"hidden_size\":%lld,\"intermediate_size\":%d,\"intermediate_size_mlp\":%d,"
                     "\"num_hidden_layers\":%d,\"num_attention_heads\":%d,\"num_key_value_heads\":%d,\"head_dim\":%lld,"
                     "\"num_local_experts\":1,\"num_experts_per_tok\":1,\"interleave_moe_layer_step\":1,"
                     "\"moe_layers\":[],\"no_rope_layers\":[",
                     (long long)V, (long long)H, SYN_I, SYN_I, NL, NH, NKV, (long long)HD);
    for (int l = 0; l < NL; l++) tome_buf_appendf(&cj, "%s%d", l ? "," : "", l == NL - 1 ? 0 : 1);
    tome_buf_appendf(&cj,
                     "],\"attention_chunk_size\":%lld,\"attn_temperature_tuning\":true,\"floor_scale\":8192,"
                     "\"attn_scale\":0.1,\"use_qk_norm\":true,\"rms_norm_eps\":1e-05,"
                     "\"max_position_embeddings\":16777216,\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8.0,"
                     "\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,\"original_max_position_embeddings\":8192},"
                     "\"rope_theta\":%.17g,\"bos_token_id\":200000,\"eos_token_id\":[200001,200007,200008],"
                     "\"pad_token_id\":200018,\"tie_word_embeddings\":false,\"hidden_act\":\"silu\","
                     "\"torch_dtype\":\"bfloat16\"}\n",
                     (long long)sh->chunk, theta);
    if (!cj.data) return tome_set_error(TOME_ERR_NOMEM, "retrieval preset: out of memory");
    tome_model_config_t cfg;
    tome_status st = tome_model_config_parse(cj.data, cj.len, "retrieval preset", &cfg);
    if (st != TOME_OK) {
        tome_buf_free(&cj);
        return st;
    }
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        tome_buf_free(&cj);
        return tome_set_errno(TOME_ERR_IO, errno, "%s", dir);
    }

    /* one zeroed arena for every tensor, carved in order */
    const size_t n_big = V * H, n_q = (size_t)NH * HD * H, n_kv = (size_t)NKV * HD * H, n_ffn = I * H, n_vec = H;
    const size_t per_layer = 2 * n_q + 2 * n_kv + 3 * n_ffn + 2 * n_vec;
    const size_t total = 2 * n_big + (size_t)NL * per_layer + n_vec;
    uint16_t *arena = calloc(total, sizeof *arena);
    size_t NT = 3 + 9 * (size_t)NL;
    tome_st_out *t = calloc(NT, sizeof *t);
    char(*names)[96] = calloc(NT, sizeof *names);
    uint16_t **lw = calloc(9 * (size_t)NL, sizeof *lw);
    if (!arena || !t || !names || !lw) {
        free(arena), free(t), free(names), free(lw);
        tome_buf_free(&cj);
        return tome_set_error(TOME_ERR_NOMEM, "retrieval preset: out of memory (%zu bytes)", total * 2);
    }
    uint16_t *p = arena;
#define TAKE(n) (p += (n), p - (n))
    uint16_t *embed = TAKE(n_big), *lm_head = TAKE(n_big), *final_norm = TAKE(n_vec);
    /* per layer l: lw[9l + 0..8] = q k v o gate up down n_in n_post */
    for (int l = 0; l < NL; l++) {
        uint16_t **w = lw + 9 * l;
        w[0] = TAKE(n_q), w[1] = TAKE(n_kv), w[2] = TAKE(n_kv), w[3] = TAKE(n_q);
        w[4] = TAKE(n_ffn), w[5] = TAKE(n_ffn), w[6] = TAKE(n_ffn), w[7] = TAKE(n_vec), w[8] = TAKE(n_vec);
    }
#undef TAKE
    for (size_t d = 0; d < H; d++) {
        final_norm[d] = tome_f32_to_bf16(1.0f);
        for (int l = 0; l < NL; l++) lw[9 * l + 7][d] = lw[9 * l + 8][d] = tome_f32_to_bf16(1.0f);
    }
    /* embeddings: bias + (identity or filler) */
    for (size_t tk = 0; tk < V; tk++) {
        put(embed, H, tk, 0, 1.0f);
        put(embed, H, tk, 1, 1.0f);
    }
    for (int i = 0; i < SYN_N; i++) {
        put(embed, H, (size_t)WORD_IDS[i], 1, 0.0f);
        put(embed, H, (size_t)WORD_IDS[i], SYN_A + (size_t)i, 1.0f);
    }
    /* Input RMSNorm multiplies a token's (bias + one-hot) row by
     * sqrt(H / 2): 8 at H = 128. Weights that read the normed stream are
     * scaled by g = sqrt(128 / H) so every activation is what it is at
     * H = 128; the induction query also by sqrt(HD / 64) against the
     * 1/sqrt(HD) attention scale. Head 0 (and its kv head 0) carries the
     * circuit; other heads are zero and add nothing. */
    const float g = sqrtf((float)SYN_H / (float)H), gq = sqrtf((float)HD / (float)SYN_HD);
    uint16_t *q0 = lw[0], *k0 = lw[1], *v0 = lw[2], *o0 = lw[3];
    const size_t L1 = 9 * (size_t)(NL - 1);
    uint16_t *q1 = lw[L1 + 0], *k1 = lw[L1 + 1], *v1 = lw[L1 + 2], *o1 = lw[L1 + 3];
    const size_t OC = (size_t)NH * HD; /* o_proj columns */
    /* layer 0: previous-token head. Pair j (interleaved dims 2j, 2j+1) gets
     * energy a_j ∝ 1/(j+1); q is k's pair rotated by -θ_j so that the RoPE
     * score peaks at a distance of exactly one position. (q and k are
     * QK-normed, so their scale does not matter.) */
    float *inv_freq = malloc(HD / 2 * sizeof *inv_freq);
    if (!inv_freq) {
        free(arena), free(t), free(names), free(lw);
        tome_buf_free(&cj);
        return tome_set_error(TOME_ERR_NOMEM, "retrieval preset: out of memory");
    }
    tome_model_rope_inv_freq(&cfg, inv_freq);
    for (int j = 0; j < SYN_PAIRS; j++) {
        float r = sqrtf(1.0f / (float)(j + 1));
        put(q0, H, 2 * (size_t)j, 0, r * cosf(inv_freq[j]));
        put(q0, H, 2 * (size_t)j + 1, 0, -r * sinf(inv_freq[j]));
        put(k0, H, 2 * (size_t)j, 0, r);
    }
    free(inv_freq);
    for (int i = 0; i < SYN_N; i++) {
        put(v0, H, (size_t)i, SYN_A + (size_t)i, g);                /* v = A          */
        put(o0, OC, SYN_B + (size_t)i, (size_t)i, 1.0f / 16);        /* B += v / 16    */
        /* last layer: induction head */
        put(q1, H, (size_t)i, SYN_A + (size_t)i, 12.0f * g * gq);    /* q = 12 A       */
        put(k1, H, (size_t)i, SYN_B + (size_t)i, g);                 /* k = B - A/2    */
        put(k1, H, (size_t)i, SYN_A + (size_t)i, -0.5f * g);
        put(v1, H, (size_t)i, SYN_A + (size_t)i, g);                 /* v = A          */
        put(o1, OC, SYN_C + (size_t)i, (size_t)i, 1.0f / 8);         /* C += v / 8     */
        put(lm_head, H, (size_t)WORD_IDS[i], SYN_C + (size_t)i, 1.0f);
    }
    put(lm_head, H, SYN_EOT, 0, 0.5f);

    size_t n = 0;
#define OUT(ptr, r, c, ...)                                                                                 \
    do {                                                                                                    \
        snprintf(names[n], sizeof names[n], __VA_ARGS__);                                                   \
        t[n] = (tome_st_out){.name = names[n], .dtype = TOME_DT_BF16, .ndim = (c) != 0 ? 2 : 1, .data = (ptr)}; \
        t[n].shape[0] = (int64_t)(r), t[n].shape[1] = (int64_t)(c);                                         \
        n++;                                                                                                \
    } while (0)
    OUT(embed, V, H, "model.embed_tokens.weight");
    OUT(lm_head, V, H, "lm_head.weight");
    OUT(final_norm, H, 0, "model.norm.weight");
    for (int l = 0; l < NL; l++) {
        uint16_t **w = lw + 9 * l;
        OUT(w[7], H, 0, "model.layers.%d.input_layernorm.weight", l);
        OUT(w[8], H, 0, "model.layers.%d.post_attention_layernorm.weight", l);
        OUT(w[0], (size_t)NH * HD, H, "model.layers.%d.self_attn.q_proj.weight", l);
        OUT(w[1], (size_t)NKV * HD, H, "model.layers.%d.self_attn.k_proj.weight", l);
        OUT(w[2], (size_t)NKV * HD, H, "model.layers.%d.self_attn.v_proj.weight", l);
        OUT(w[3], H, (size_t)NH * HD, "model.layers.%d.self_attn.o_proj.weight", l);
        OUT(w[4], I, H, "model.layers.%d.feed_forward.gate_proj.weight", l);
        OUT(w[5], I, H, "model.layers.%d.feed_forward.up_proj.weight", l);
        OUT(w[6], H, I, "model.layers.%d.feed_forward.down_proj.weight", l);
    }
#undef OUT
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    st = tome_st_write(path, t, n);
    free(arena), free(t), free(names), free(lw);
    if (st == TOME_OK) {
        snprintf(path, sizeof path, "%s/config.json", dir);
        tome_atomic_file *f = NULL;
        st = tome_atomic_open(path, &f);
        if (st == TOME_OK) {
            st = tome_atomic_write(f, cj.data, cj.len);
            if (st != TOME_OK) tome_atomic_abort(f);
            else st = tome_atomic_commit(f);
        }
    }
    tome_buf_free(&cj);
    return st;
}
