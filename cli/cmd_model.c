/*
 * cli/cmd_model.c — `tome score`, `tome generate`, `tome mkmodel`.
 *
 *   tome score --model DIR --ids 1,2,3 --logits-out F.npy [model options]
 *       runs the prompt through the model and writes float32 [tokens, vocab]
 *       logits (all positions) as a NumPy .npy file.
 *   tome generate --model DIR (--prompt TEXT | --ids LIST) [-n N] [--chat]
 *                 [--system TEXT] [--temperature T] [--top-k K] [--top-p P]
 *                 [--seed S] [--print-ids] [--stats] [model options]
 *       greedy by default; stops on the config's eos ids (and the
 *       tokenizer's <|eot|>/<|eom|>). --prompt needs a tokenizer in DIR
 *       (or -t PATH); --ids does not, and prints ids.
 *   tome mkmodel --preset tiny|small|scout [--seed S] -o DIR
 *                [--shard-size BYTES] [--config-only]
 * Model options: --weights bf16|int8|int4, --load-format auto|dummy,
 * --ubatch N (prefill micro-batch, default 512), --threads N, --ctx N,
 * --device cpu|cuda (default: $TOME_DEVICE, else cpu; cuda in a build
 * without CUDA or on a machine without a GPU is an error, not a fallback).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/core_impl.h"
#include "tome/model.h"
#include "tome/tokenizer.h"

typedef struct model_args {
    const char *dir;
    tome_model_opts opts;
    int ubatch;
    unsigned long long ctx;
    int device_set; /* --device given (wins over TOME_DEVICE) */
} model_args;

static int set_device(const char *cmd, const char *d, model_args *ma)
{
    if (!strcmp(d, "cpu")) ma->opts.device = TOME_DEVICE_CPU;
    else if (!strcmp(d, "cuda") || !strcmp(d, "gpu")) ma->opts.device = TOME_DEVICE_CUDA;
    else return tome_cli_usage_error(cmd, "--device / TOME_DEVICE: '%s' is not cpu or cuda", d), -1;
    return 0;
}

/* TOME_DEVICE when --device was not given; 0 ok, -1 bad value. */
static int resolve_device(const char *cmd, model_args *ma)
{
    const char *e = getenv("TOME_DEVICE");
    if (ma->device_set || !e || !*e) return 0;
    return set_device(cmd, e, ma);
}

/* Returns 1 if argv[*i] was a model option (consumed), 0 if not, -1 on error. */
static int parse_model_opt(const char *cmd, int argc, char **argv, int *i, model_args *ma)
{
    const char *a = argv[*i];
    unsigned long long v;
    if (!strcmp(a, "--model") || !strcmp(a, "-m")) {
        if (++*i >= argc) return tome_cli_usage_error(cmd, "%s needs a directory", a), -1;
        ma->dir = argv[*i];
    } else if (!strcmp(a, "--weights")) {
        if (++*i >= argc) return tome_cli_usage_error(cmd, "--weights needs bf16|int8|int4"), -1;
        const char *w = argv[*i];
        if (!strcmp(w, "bf16") || !strcmp(w, "native")) ma->opts.weights = TOME_WEIGHTS_NATIVE;
        else if (!strcmp(w, "int8")) ma->opts.weights = TOME_WEIGHTS_INT8;
        else if (!strcmp(w, "int4")) ma->opts.weights = TOME_WEIGHTS_INT4;
        else return tome_cli_usage_error(cmd, "--weights: '%s' is not bf16, int8 or int4", w), -1;
    } else if (!strcmp(a, "--device")) {
        if (++*i >= argc) return tome_cli_usage_error(cmd, "--device needs cpu|cuda"), -1;
        if (set_device(cmd, argv[*i], ma) != 0) return -1;
        ma->device_set = 1;
    } else if (!strcmp(a, "--load-format")) {
        if (++*i >= argc) return tome_cli_usage_error(cmd, "--load-format needs auto|dummy"), -1;
        if (!strcmp(argv[*i], "dummy")) ma->opts.load_dummy = 1;
        else if (!strcmp(argv[*i], "auto") || !strcmp(argv[*i], "safetensors")) ma->opts.load_dummy = 0;
        else return tome_cli_usage_error(cmd, "--load-format: '%s' is not auto or dummy", argv[*i]), -1;
    } else if (!strcmp(a, "--ubatch") || !strcmp(a, "--threads") || !strcmp(a, "--ctx")) {
        if (++*i >= argc || tome_cli_parse_u64(argv[*i], 0, &v) != 0 || v == 0 || v > (1ULL << 34))
            return tome_cli_usage_error(cmd, "%s needs a positive number", a), -1;
        if (!strcmp(a, "--ubatch")) ma->ubatch = v > 65536 ? 65536 : (int)v;
        else if (!strcmp(a, "--threads")) ma->opts.n_threads = v > 1024 ? 1024 : (int)v;
        else ma->ctx = v;
    } else {
        return 0;
    }
    return 1;
}

static int parse_ids(const char *cmd, const char *s, tome_tokens_t *out)
{
    const char *p = s;
    while (*p) {
        while (*p == ',' || *p == ' ' || *p == '\n' || *p == '\t') p++;
        if (!*p) break;
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v > 0x7fffffff)
            return tome_cli_usage_error(cmd, "--ids: '%s' is not a list of non-negative integers", s);
        if (out->n == out->cap) {
            size_t nc = out->cap ? 2 * out->cap : 64;
            int32_t *n = realloc(out->ids, nc * sizeof *n);
            if (!n) return tome_cli_usage_error(cmd, "out of memory");
            out->ids = n;
            out->cap = nc;
        }
        out->ids[out->n++] = (int32_t)v;
        p = end;
    }
    if (out->n == 0) return tome_cli_usage_error(cmd, "--ids: no token ids given");
    return 0;
}

static const char MODEL_OPTS_HELP[] =
    "  --weights bf16|int8|int4  weight storage (int8/int4: group-wise quantized on load)\n"
    "  --load-format auto|dummy  dummy: random weights from config.json, no weight files\n"
    "  --seed S                  seed of dummy weights / sampling (default 0)\n"
    "  --ubatch N                prefill micro-batch in tokens (default 512)\n"
    "  --threads N               CPU threads (default: all)\n"
    "  --ctx N                   KV capacity in tokens (default: prompt + new tokens)\n"
    "  --device cpu|cuda         backend (default: $TOME_DEVICE, else cpu)\n";

int tome_cmd_score(int argc, char **argv)
{
    model_args ma = {0};
    const char *out_path = NULL;
    tome_tokens_t ids = {0};
    int rc = TOME_EXIT_OK;
    for (int i = 1; i < argc; i++) {
        int r = parse_model_opt("score", argc, argv, &i, &ma);
        if (r < 0) {
            tome_tokens_free(&ids);
            return TOME_EXIT_USAGE;
        }
        if (r) continue;
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("usage: tome score --model DIR --ids 1,2,3 --logits-out F.npy [options]\n"
                   "  writes float32 [tokens, vocab] logits of every position (NumPy .npy)\n%s",
                   MODEL_OPTS_HELP);
            tome_tokens_free(&ids);
            return TOME_EXIT_OK;
        } else if (!strcmp(a, "--ids") && i + 1 < argc) {
            if (parse_ids("score", argv[++i], &ids) != 0) {
                tome_tokens_free(&ids);
                return TOME_EXIT_USAGE;
            }
        } else if ((!strcmp(a, "--logits-out") || !strcmp(a, "-o")) && i + 1 < argc) {
            out_path = argv[++i];
        } else if (!strcmp(a, "--seed") && i + 1 < argc) {
            ma.opts.dummy_seed = strtoull(argv[++i], NULL, 10);
        } else {
            tome_tokens_free(&ids);
            return tome_cli_usage_error("score", "unknown or incomplete option '%s'", a);
        }
    }
    if (!ma.dir || !ids.n || !out_path) {
        tome_tokens_free(&ids);
        return tome_cli_usage_error("score", "--model, --ids and --logits-out are required");
    }
    if (resolve_device("score", &ma) != 0) {
        tome_tokens_free(&ids);
        return TOME_EXIT_USAGE;
    }
    tome_model_t *m = NULL;
    tome_session_t *s = NULL;
    float *logits = NULL;
    tome_status st = tome_model_open(ma.dir, &ma.opts, &m);
    if (st == TOME_OK) st = tome_session_open(m, (int64_t)(ma.ctx ? ma.ctx : ids.n), ma.ubatch, &s);
    size_t V = m ? (size_t)tome_model_get_config(m)->vocab_size : 0;
    if (st == TOME_OK && !(logits = malloc(ids.n * V * sizeof(float))))
        st = tome_set_error(TOME_ERR_NOMEM, "out of memory for %zu x %zu logits", ids.n, V);
    double t0 = tome_now();
    if (st == TOME_OK) st = tome_session_eval(s, ids.ids, ids.n, 1, logits);
    double dt = tome_now() - t0;
    if (st == TOME_OK) st = tome_write_npy_f32(out_path, logits, ids.n, V);
    if (st == TOME_OK)
        fprintf(stderr, "tome score: %zu tokens in %.3f s (%.1f tokens/s), logits [%zu, %zu] -> %s\n", ids.n, dt,
                (double)ids.n / dt, ids.n, V, out_path);
    else
        rc = tome_cli_fail(st);
    free(logits);
    tome_session_free(s);
    tome_model_free(m);
    tome_tokens_free(&ids);
    return rc;
}

/* Appends a special token by name; -1 when the tokenizer lacks it. */
static tome_status push_special(const tome_tokenizer_t *tok, const char *name, tome_tokens_t *out)
{
    int32_t id = tome_tokenizer_special_id(tok, name);
    if (id < 0) return tome_set_error(TOME_ERR_NOT_FOUND, "tokenizer has no %s token", name);
    if (out->n == out->cap) {
        size_t nc = out->cap ? 2 * out->cap : 64;
        int32_t *n = realloc(out->ids, nc * sizeof *n);
        if (!n) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
        out->ids = n;
        out->cap = nc;
    }
    out->ids[out->n++] = id;
    return TOME_OK;
}

/* Llama 4 chat format:
 * <|begin_of_text|>[<|header_start|>system<|header_end|>\n\nSYS<|eot|>]
 * <|header_start|>user<|header_end|>\n\nPROMPT<|eot|><|header_start|>assistant<|header_end|>\n\n */
static tome_status chat_prompt(const tome_tokenizer_t *tok, const char *sys, const char *user, tome_tokens_t *out)
{
    tome_encode_opts plain = {0};
    TOME_FORWARD(push_special(tok, "<|begin_of_text|>", out));
    if (sys) {
        TOME_FORWARD(push_special(tok, "<|header_start|>", out));
        TOME_FORWARD(tome_tokenizer_encode(tok, "system", 6, &plain, out));
        TOME_FORWARD(push_special(tok, "<|header_end|>", out));
        TOME_FORWARD(tome_tokenizer_encode(tok, "\n\n", 2, &plain, out));
        TOME_FORWARD(tome_tokenizer_encode(tok, sys, strlen(sys), &plain, out));
        TOME_FORWARD(push_special(tok, "<|eot|>", out));
    }
    TOME_FORWARD(push_special(tok, "<|header_start|>", out));
    TOME_FORWARD(tome_tokenizer_encode(tok, "user", 4, &plain, out));
    TOME_FORWARD(push_special(tok, "<|header_end|>", out));
    TOME_FORWARD(tome_tokenizer_encode(tok, "\n\n", 2, &plain, out));
    TOME_FORWARD(tome_tokenizer_encode(tok, user, strlen(user), &plain, out));
    TOME_FORWARD(push_special(tok, "<|eot|>", out));
    TOME_FORWARD(push_special(tok, "<|header_start|>", out));
    TOME_FORWARD(tome_tokenizer_encode(tok, "assistant", 9, &plain, out));
    TOME_FORWARD(push_special(tok, "<|header_end|>", out));
    return tome_tokenizer_encode(tok, "\n\n", 2, &plain, out);
}

int tome_cmd_generate(int argc, char **argv)
{
    model_args ma = {0};
    const char *prompt = NULL, *system = NULL, *tok_path = NULL;
    tome_tokens_t ids = {0};
    unsigned long long n_new = 64;
    int chat = 0, print_ids = 0, stats = 0;
    tome_sampler_params sp = {.temperature = 0, .top_k = 0, .top_p = 1.0f, .seed = 0};
    for (int i = 1; i < argc; i++) {
        int r = parse_model_opt("generate", argc, argv, &i, &ma);
        if (r < 0) goto usage_fail;
        if (r) continue;
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("usage: tome generate --model DIR (--prompt TEXT | --ids LIST) [-n N] [--chat] [options]\n"
                   "  --prompt TEXT       text prompt (needs a tokenizer in DIR, or -t PATH)\n"
                   "  --ids LIST          prompt as token ids (no tokenizer needed; prints ids)\n"
                   "  -n N                new tokens at most (default 64)\n"
                   "  --chat              Llama 4 chat format (user/assistant headers)\n"
                   "  --system TEXT       system message (with --chat)\n"
                   "  --temperature T     0 = greedy (default)\n"
                   "  --top-k K, --top-p P\n"
                   "  --print-ids         print token ids instead of text\n"
                   "  --stats             prefill and decode speed on stderr\n"
                   "  -t, --tokenizer P   tokenizer.model / tokenizer.json (default: DIR)\n%s",
                   MODEL_OPTS_HELP);
            tome_tokens_free(&ids);
            return TOME_EXIT_OK;
        } else if (!strcmp(a, "--prompt") && more) {
            prompt = argv[++i];
        } else if (!strcmp(a, "--system") && more) {
            system = argv[++i];
        } else if ((!strcmp(a, "-t") || !strcmp(a, "--tokenizer")) && more) {
            tok_path = argv[++i];
        } else if (!strcmp(a, "--ids") && more) {
            if (parse_ids("generate", argv[++i], &ids) != 0) goto usage_fail;
        } else if (!strcmp(a, "-n") && more) {
            if (tome_cli_parse_u64(argv[++i], 0, &n_new) != 0 || n_new > (1u << 24)) {
                tome_cli_usage_error("generate", "-n needs a number");
                goto usage_fail;
            }
        } else if (!strcmp(a, "--chat")) {
            chat = 1;
        } else if (!strcmp(a, "--print-ids")) {
            print_ids = 1;
        } else if (!strcmp(a, "--stats")) {
            stats = 1;
        } else if (!strcmp(a, "--temperature") && more) {
            sp.temperature = strtof(argv[++i], NULL);
        } else if (!strcmp(a, "--top-k") && more) {
            sp.top_k = atoi(argv[++i]);
        } else if (!strcmp(a, "--top-p") && more) {
            sp.top_p = strtof(argv[++i], NULL);
        } else if (!strcmp(a, "--seed") && more) {
            sp.seed = strtoull(argv[++i], NULL, 10);
            ma.opts.dummy_seed = sp.seed;
        } else {
            tome_cli_usage_error("generate", "unknown or incomplete option '%s'", a);
            goto usage_fail;
        }
    }
    if (!ma.dir || (!prompt && !ids.n) || (prompt && ids.n)) {
        tome_cli_usage_error("generate", "--model and one of --prompt / --ids are required");
        goto usage_fail;
    }
    if (resolve_device("generate", &ma) != 0) goto usage_fail;
    int rc = TOME_EXIT_OK;
    tome_status st = TOME_OK;
    tome_tokenizer_t *tok = NULL;
    tome_model_t *m = NULL;
    tome_session_t *s = NULL;
    tome_sampler smp;
    tome_sampler_init(&smp, &sp);
    float *logits = NULL;
    if (prompt || !print_ids) {
        tome_status ts = tome_tokenizer_open(tok_path ? tok_path : ma.dir, &tok);
        if (ts != TOME_OK && prompt) st = ts;
        if (ts != TOME_OK) print_ids = 1;
    }
    if (st == TOME_OK && prompt) {
        tome_encode_opts eo = {.add_bos = 1};
        st = chat ? chat_prompt(tok, system, prompt, &ids) : tome_tokenizer_encode(tok, prompt, strlen(prompt), &eo, &ids);
    }
    if (st == TOME_OK) st = tome_model_open(ma.dir, &ma.opts, &m);
    if (st == TOME_OK)
        st = tome_session_open(m, (int64_t)(ma.ctx ? ma.ctx : ids.n + n_new + 1), ma.ubatch, &s);
    size_t V = m ? (size_t)tome_model_get_config(m)->vocab_size : 0;
    if (st == TOME_OK && !(logits = malloc(V * sizeof(float)))) st = tome_set_error(TOME_ERR_NOMEM, "out of memory");
    double t0 = tome_now(), t_prefill = 0;
    size_t n_gen = 0;
    if (st == TOME_OK) st = tome_session_eval(s, ids.ids, ids.n, 0, logits);
    t_prefill = tome_now() - t0;
    double t1 = tome_now();
    for (size_t i = 0; i < n_new && st == TOME_OK; i++) {
        int32_t id;
        st = tome_sampler_pick(&smp, logits, V, &id);
        if (st != TOME_OK) break;
        n_gen++;
        if (print_ids) {
            printf("%s%d", i ? " " : "", (int)id);
        } else {
            size_t len = 0;
            const char *b = tome_tokenizer_token_bytes(tok, id, &len);
            if (b) fwrite(b, 1, len, stdout);
        }
        fflush(stdout);
        if (tome_model_is_eos(m, id) || (tok && tome_tokenizer_is_stop(tok, id)) || i + 1 == n_new) break;
        st = tome_session_eval(s, &id, 1, 0, logits);
    }
    double t_decode = tome_now() - t1;
    if (n_gen) printf("\n");
    if (st != TOME_OK) rc = tome_cli_fail(st);
    else if (stats)
        fprintf(stderr, "tome generate: prefill %zu tokens in %.3f s (%.1f tokens/s); decode %zu tokens in %.3f s (%.2f tokens/s)\n",
                ids.n, t_prefill, (double)ids.n / t_prefill, n_gen, t_decode,
                n_gen > 1 ? (double)(n_gen - 1) / t_decode : 0.0);
    free(logits);
    tome_sampler_free(&smp);
    tome_session_free(s);
    tome_model_free(m);
    tome_tokenizer_free(tok);
    tome_tokens_free(&ids);
    return rc;
usage_fail:
    tome_tokens_free(&ids);
    return TOME_EXIT_USAGE;
}

int tome_cmd_mkmodel(int argc, char **argv)
{
    const char *preset = NULL, *out = NULL;
    unsigned long long seed = 0, shard = 0;
    int config_only = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf("usage: tome mkmodel --preset tiny|small|scout [--seed S] -o DIR [--shard-size BYTES] [--config-only]\n"
                   "  writes a random-weight Hugging Face checkpoint (config.json + bf16 safetensors)\n"
                   "  tiny: ~1M parameters; small: ~100M, Scout-shaped; scout: Llama 4 Scout (~218 GB!)\n"
                   "  --config-only  write config.json alone (run it with --load-format dummy)\n");
            return TOME_EXIT_OK;
        } else if (!strcmp(a, "--preset") && more) {
            preset = argv[++i];
        } else if ((!strcmp(a, "-o") || !strcmp(a, "--out")) && more) {
            out = argv[++i];
        } else if (!strcmp(a, "--seed") && more) {
            if (tome_cli_parse_u64(argv[++i], 0, &seed) != 0) return tome_cli_usage_error("mkmodel", "--seed needs a number");
        } else if (!strcmp(a, "--shard-size") && more) {
            if (tome_cli_parse_u64(argv[++i], 1, &shard) != 0) return tome_cli_usage_error("mkmodel", "--shard-size needs a size");
        } else if (!strcmp(a, "--config-only")) {
            config_only = 1;
        } else {
            return tome_cli_usage_error("mkmodel", "unknown or incomplete option '%s'", a);
        }
    }
    if (!preset || !out) return tome_cli_usage_error("mkmodel", "--preset and -o are required");
    tome_status st = tome_mkmodel(preset, seed, out, shard, config_only);
    if (st != TOME_OK) return tome_cli_fail(st);
    return TOME_EXIT_OK;
}
