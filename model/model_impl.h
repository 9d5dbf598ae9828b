/*
 * model/model_impl.h — contracts between the pieces of model/.
 *
 *   safetensors.c  reads (mmaps) safetensors files / sharded sets, validates
 *                  headers, and writes them (mkmodel, tests)
 *   weights.c      binds tensors to the model's weight slots, checks shapes
 *                  against the config, quantizes on load, dummy weights
 *   forward.c      the forward pass, written once against the backend table
 *                  (backend_impl.h); sessions own a KV cache (kvcache_impl.h)
 *   moe.c          MoE routing and per-expert grouping
 *   sample.c       sampling and generation
 *
 * Weight matrices (tome_wt) are views: data points into a mapped file or
 * into memory the model owns (quantized or dummy weights); never copied whole
 * otherwise. Layout OUT_IN is nn.Linear's [n_out][n_in]; layout IN_OUT is the
 * fused experts' [n_in][n_out] (gate_up_proj, down_proj). Quantized weights
 * are always OUT_IN rows of blocks (quant_impl.h).
 */
#ifndef TOME_MODEL_IMPL_H
#define TOME_MODEL_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "core/core_impl.h"
#include "tome/model.h"

typedef enum tome_dtype {
    TOME_DT_F32 = 0,
    TOME_DT_F16 = 1,
    TOME_DT_BF16 = 2,
    TOME_DT_Q8 = 3, /* tome_block_q8 rows */
    TOME_DT_Q4 = 4  /* tome_block_q4 rows */
} tome_dtype;

const char *tome_dtype_name(tome_dtype dt);
size_t tome_dtype_size(tome_dtype dt); /* bytes per element; 0 for block types */

/* ------------------------------------------------------------ safetensors */
typedef struct tome_st_tensor {
    char *name;
    tome_dtype dtype;
    int ndim;
    int64_t shape[4];
    const uint8_t *data; /* into the file's map; valid while the set is open */
    uint64_t nbytes;
    int file;            /* index into tome_st_set.paths                     */
} tome_st_tensor;

typedef struct tome_st_set {
    int n_files;
    char **paths;
    tome_mmap *maps;
    tome_st_tensor *t; /* sorted by name */
    size_t n;
} tome_st_set;

/* Opens <dir>/model.safetensors.index.json and its shards, or
 * <dir>/model.safetensors, or a single .safetensors path. */
tome_status tome_st_open(const char *path, tome_st_set *out);
/* Parses one mapped file's header and appends its tensors. */
tome_status tome_st_parse_file(tome_st_set *set, int file_index);
void tome_st_close(tome_st_set *s); /* NULL ok, zeroes s */
const tome_st_tensor *tome_st_find(const tome_st_set *s, const char *name);

/* Writer: tensors given by name/dtype/shape/data; one file. */
typedef struct tome_st_out {
    const char *name;
    tome_dtype dtype;
    int ndim;
    int64_t shape[4];
    const void *data;
} tome_st_out;
tome_status tome_st_write(const char *path, const tome_st_out *t, size_t n);

/* ------------------------------------------------------------ weights */
enum { TOME_W_OUT_IN = 0, TOME_W_IN_OUT = 1 };

typedef struct tome_wt {
    tome_dtype dtype;
    int layout;         /* TOME_W_OUT_IN or TOME_W_IN_OUT */
    int64_t n_out, n_in;
    const void *data;
} tome_wt;

typedef struct tome_layer_w {
    float *attn_norm, *ffn_norm;  /* [hidden] f32, owned               */
    tome_wt wq, wk, wv, wo;       /* [nh*hd][H], [nkv*hd][H] x2, [H][nh*hd] */
    /* dense FFN (is_moe == 0) or shared expert (is_moe == 1) */
    tome_wt gate, up, down;       /* [I][H], [I][H], [H][I]            */
    /* MoE */
    tome_wt router;               /* [E][H]                            */
    tome_wt *exp_gate, *exp_up;   /* per expert, [I][H] views          */
    tome_wt *exp_down;            /* per expert, [H][I] views          */
} tome_layer_w;

struct tome_model {
    tome_model_config_t cfg;
    tome_model_opts opts;
    char *dir;
    tome_st_set st;
    tome_wt embed;     /* [V][H] */
    tome_wt lm_head;   /* [V][H] */
    float *final_norm; /* [H], owned */
    tome_layer_w *layers;
    float *inv_freq;   /* [head_dim/2] */
    /* owned storage for quantized / dummy / converted weights */
    void **owned;
    size_t n_owned, cap_owned;
    uint64_t owned_bytes, mapped_bytes;
    const struct tome_backend *be;
    struct tome_dev_model *dev; /* device copies of the weights (backend_impl.h); NULL on the CPU */
    int n_threads;
};

tome_status tome_weights_load(tome_model_t *m);    /* fills embed..layers */
void tome_weights_free(tome_model_t *m);
/* Reads row r of any weight matrix in OUT_IN order as f32 (n_in values). */
void tome_wt_row_f32(const tome_wt *w, int64_t r, float *out);

#endif /* TOME_MODEL_IMPL_H */
