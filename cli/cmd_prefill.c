/*
 * cli/cmd_prefill.c — tome prefill: run a pack's tokens through the model
 * once and save the KV cache as a snapshot (.tkv) that `tome ask --context`
 * starts from.
 *
 * Resumable: every --checkpoint-every tokens the cache is saved to the
 * output path (atomically, marked partial: n_done < n_total). Run the same
 * command again after a crash or kill -9 and it loads the checkpoint and goes
 * on from there. The tokens are fed one natural micro-batch at a time (the
 * split tome_session_eval would make: at most --ubatch tokens, never across
 * an attention-chunk boundary), and checkpoints fall on those splits, so a
 * resumed run computes exactly the micro-batches of an uninterrupted one and
 * its final snapshot is the same, byte for byte.
 *
 * The session's KV cache is replaced by one with the chosen format and
 * tiers (model/forward_impl.h: the session owns `kv`).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/core_impl.h"
#include "kvcache/kvcache_impl.h"
#include "model/forward_impl.h"
#include "tome/model.h"
#include "tome/pack.h"

static int parse_fmt(const char *s)
{
    static const char *names[TOME_KV_N_FORMATS] = {"f32", "bf16", "fp8", "int8", "int4", "int2"};
    for (int i = 0; i < TOME_KV_N_FORMATS; i++)
        if (!strcmp(s, names[i])) return i;
    if (!strcmp(s, "e4m3")) return TOME_KV_FP8;
    return -1;
}

static const char *fmt_name(int f)
{
    static const char *names[TOME_KV_N_FORMATS] = {"f32", "bf16", "fp8", "int8", "int4", "int2"};
    return f >= 0 && f < TOME_KV_N_FORMATS ? names[f] : "?";
}

#define PREFILL_HELP                                                                                             \
    "usage: tome prefill --model DIR --pack P.tpk -o CTX.tkv [options]\n"                                        \
    "  runs the pack's tokens through the model and saves the KV cache (resumable: rerun the same\n"            \
    "  command after a crash and it continues from the last checkpoint)\n"                                      \
    "options:\n"                                                                                                 \
    "  --kv FMT              KV format: bf16 (default), fp8, int8, int4, int2, f32\n"                          \
    "  --ram-budget SIZE     host RAM for sealed KV pages (e.g. 64G; default: no cap)\n"                        \
    "  --disk-dir DIR        spill pages over the budget to a zstd page file in DIR\n"                          \
    "  --checkpoint-every N  save a checkpoint every N tokens (default 65536; 0: only at the end)\n"            \
    "  --page-tokens T       tokens per KV page (multiple of 8; default 64)\n"                                  \
    "  --sink N              keep the first N positions of global layers unquantized (default: 64 for\n"     \
    "                        fp8/int8/int4/int2, else 0)\n"                                                    \
    "  --recent N            keep the newest N positions of every layer unquantized besides the open page\n"  \
    "                        (default: 256 for fp8/int8/int4/int2, else 0)\n"                                  \
    "  --fresh               ignore an existing checkpoint at -o and start over\n"                              \
    "  --weights bf16|int8|int4, --load-format dummy, --seed S, --threads N, --ubatch N\n"

int tome_cmd_prefill(int argc, char **argv)
{
    const char *model_dir = NULL, *pack_path = NULL, *out = NULL, *disk_dir = NULL;
    tome_model_opts mo = {0};
    int fmt = TOME_KV_BF16, fresh = 0, ubatch = 0;
    unsigned long long ram_budget = 0, every = 65536, page_tokens = 0, sink = ~0ull, recent = ~0ull;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        unsigned long long v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(PREFILL_HELP, stdout);
            return TOME_EXIT_OK;
        } else if (!strcmp(a, "--model") && more) {
            model_dir = argv[++i];
        } else if (!strcmp(a, "--pack") && more) {
            pack_path = argv[++i];
        } else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && more) {
            out = argv[++i];
        } else if (!strcmp(a, "--kv") && more) {
            if ((fmt = parse_fmt(argv[++i])) < 0)
                return tome_cli_usage_error("prefill", "--kv: '%s' is not bf16, fp8, int8, int4, int2 or f32", argv[i]);
        } else if (!strcmp(a, "--ram-budget") && more) {
            if (tome_cli_parse_u64(argv[++i], 1, &ram_budget) != 0 || !ram_budget)
                return tome_cli_usage_error("prefill", "--ram-budget needs a positive size");
        } else if (!strcmp(a, "--disk-dir") && more) {
            disk_dir = argv[++i];
        } else if (!strcmp(a, "--checkpoint-every") && more) {
            if (tome_cli_parse_u64(argv[++i], 0, &every) != 0)
                return tome_cli_usage_error("prefill", "--checkpoint-every needs a number of tokens");
        } else if (!strcmp(a, "--page-tokens") && more) {
            if (tome_cli_parse_u64(argv[++i], 0, &page_tokens) != 0 || page_tokens > 4096)
                return tome_cli_usage_error("prefill", "--page-tokens needs a multiple of 8 up to 4096");
        } else if (!strcmp(a, "--sink") && more) {
            if (tome_cli_parse_u64(argv[++i], 0, &sink) != 0)
                return tome_cli_usage_error("prefill", "--sink needs a number of positions");
        } else if (!strcmp(a, "--recent") && more) {
            if (tome_cli_parse_u64(argv[++i], 0, &recent) != 0)
                return tome_cli_usage_error("prefill", "--recent needs a number of positions");
        } else if (!strcmp(a, "--fresh")) {
            fresh = 1;
        } else if (!strcmp(a, "--weights") && more) {
            const char *w = argv[++i];
            if (!strcmp(w, "bf16") || !strcmp(w, "native")) mo.weights = TOME_WEIGHTS_NATIVE;
            else if (!strcmp(w, "int8")) mo.weights = TOME_WEIGHTS_INT8;
            else if (!strcmp(w, "int4")) mo.weights = TOME_WEIGHTS_INT4;
            else return tome_cli_usage_error("prefill", "--weights: '%s' is not bf16, int8 or int4", w);
        } else if (!strcmp(a, "--load-format") && more) {
            mo.load_dummy = !strcmp(argv[++i], "dummy");
        } else if (!strcmp(a, "--seed") && more) {
            if (tome_cli_parse_u64(argv[++i], 0, &v) != 0) return tome_cli_usage_error("prefill", "--seed needs a number");
            mo.dummy_seed = v;
        } else if (!strcmp(a, "--threads") && more) {
            if (tome_cli_parse_u64(argv[++i], 0, &v) != 0 || !v)
                return tome_cli_usage_error("prefill", "--threads needs a positive number");
            mo.n_threads = v > 1024 ? 1024 : (int)v;
        } else if (!strcmp(a, "--ubatch") && more) {
            if (tome_cli_parse_u64(argv[++i], 0, &v) != 0 || !v || v > 65536)
                return tome_cli_usage_error("prefill", "--ubatch needs a number in 1..65536");
            ubatch = (int)v;
        } else {
            return tome_cli_usage_error("prefill", "unknown or incomplete option '%s'", a);
        }
    }
    if (!model_dir || !pack_path || !out) return tome_cli_usage_error("prefill", "--model, --pack and -o are required");
    {
        /* -o names a snapshot: an existing file there is resumed, or with
         * --fresh replaced, only when it is one (or empty) — never the pack,
         * a weight file or anything else */
        char magic[8];
        size_t got;
        tome_out_state os = tome_output_probe(out, magic, sizeof magic, &got);
        if (os == TOME_OUT_DIR || os == TOME_OUT_SPECIAL ||
            (os == TOME_OUT_FILE && (got != sizeof magic || memcmp(magic, "TOMEKVS1", 8) != 0)))
            return tome_cli_usage_error("prefill", "%s exists and is not a KV snapshot: refusing to replace it "
                                        "(remove it or choose another -o)", out);
    }

    /* test hook: SIGKILL this process right after writing checkpoint N */
    const char *kill_env = getenv("TOME_TEST_PREFILL_KILL_AFTER");
    long kill_after = kill_env ? strtol(kill_env, NULL, 10) : 0;

    tome_pack_t *pack = NULL;
    tome_model_t *m = NULL;
    tome_session_t *s = NULL;
    tome_kvcache *kv = NULL;
    const int32_t *ids = NULL;
    size_t n_ids = 0;
    tome_pack_info pi;
    tome_kv_snapshot_meta meta;
    memset(&meta, 0, sizeof meta);
    tome_status st = tome_pack_open(pack_path, &pack);
    if (st == TOME_OK) st = tome_pack_ids(pack, &ids, &n_ids);
    if (st == TOME_OK) {
        tome_pack_get_info(pack, &pi);
        snprintf(meta.id.pack_hash, sizeof meta.id.pack_hash, "%s", pi.content_hash);
        snprintf(meta.id.tokenizer_hash, sizeof meta.id.tokenizer_hash, "%s", pi.tokenizer_hash);
        if (n_ids == 0) st = tome_set_error(TOME_ERR_INVALID_ARG, "pack %s holds no tokens", pack_path);
    }
    if (st == TOME_OK) st = tome_model_open(model_dir, &mo, &m);
    if (st == TOME_OK) st = tome_model_hash(m, meta.id.model_hash);
    const tome_model_config_t *c = m ? tome_model_get_config(m) : NULL;
    if (st == TOME_OK && (int64_t)n_ids > c->max_position_embeddings && c->max_position_embeddings > 0)
        fprintf(stderr, "tome prefill: note: %zu tokens exceed the model's max_position_embeddings (%lld)\n", n_ids,
                (long long)c->max_position_embeddings);
    if (st == TOME_OK) st = tome_session_open(m, (int64_t)n_ids, ubatch, &s);
    meta.n_total = (int64_t)n_ids;

    /* quantized formats keep sinks and a recent window in float32 by default
     * (BENCHMARKS.md: top-1 agreement of int8 with a bf16 cache) */
    const int scaled = tome_kv_fmt_scaled(fmt);
    if (sink == ~0ull) sink = scaled ? 64 : 0;
    if (recent == ~0ull) recent = scaled ? 256 : 0;
    tome_kv_params kp = {0};
    int64_t window[TOME_MAX_LAYERS];
    if (st == TOME_OK) {
        for (int l = 0; l < c->n_layers; l++) window[l] = c->use_rope[l] ? c->attention_chunk_size : 0;
        kp = (tome_kv_params){.n_layers = c->n_layers, .n_kv_heads = c->n_kv_heads, .head_dim = c->head_dim,
                              .n_seqs = 1, .max_tokens = (int64_t)n_ids, .window = window, .fmt = fmt,
                              .page_tokens = (int)page_tokens, .sink_tokens = (int64_t)sink,
                              .recent_tokens = (int64_t)recent,
                              .ram_budget = ram_budget, .disk_dir = disk_dir};
    }
    /* resume from a checkpoint at -o, or start */
    struct stat sb;
    int64_t start = 0;
    if (st == TOME_OK && !fresh && stat(out, &sb) == 0) {
        tome_kv_snapshot_info info;
        st = tome_kv_snapshot_load(out, &meta.id, &kp, &kv, &info);
        if (st != TOME_OK) {
            st = tome_error_prefix(st, "cannot resume (use --fresh to start over)");
        } else if (info.fmt != fmt || (page_tokens && info.page_tokens != (int)page_tokens) ||
                   info.n_layers != c->n_layers || info.max_tokens != (int64_t)n_ids || info.n_total != (int64_t)n_ids) {
            st = tome_set_error(TOME_ERR_MISMATCH,
                                "snapshot %s holds a %s cache of %d-token pages for %lld tokens; this run asks for %s "
                                "over %zu tokens (use --fresh to start over)",
                                out, fmt_name(info.fmt), info.page_tokens, (long long)info.n_total, fmt_name(fmt), n_ids);
        } else if (info.n_done == info.n_total) {
            fprintf(stderr, "tome prefill: %s is already complete (%lld tokens)\n", out, (long long)info.n_done);
            tome_kv_free(kv);
            tome_session_free(s);
            tome_model_free(m);
            tome_pack_free(pack);
            return TOME_EXIT_OK;
        } else {
            start = info.n_done;
            fprintf(stderr, "tome prefill: resuming %s at token %lld of %lld\n", out, (long long)start,
                    (long long)info.n_total);
        }
    } else if (st == TOME_OK) {
        st = tome_kv_open(&kp, &kv);
    }
    if (st == TOME_OK) {
        tome_kv_free(s->kv);
        s->kv = kv;
        kv = NULL;
        s->pos = start;
    }
    /* feed natural micro-batches; checkpoint on their boundaries */
    double t0 = tome_now(), t_last = t0;
    int64_t pos = start, last_ckpt = start;
    long n_ckpt = 0;
    const int64_t C = c ? c->attention_chunk_size : 0;
    while (st == TOME_OK && pos < (int64_t)n_ids) {
        int64_t nb = (int64_t)n_ids - pos;
        if (nb > s->ubatch) nb = s->ubatch;
        if (C > 0 && nb > C - pos % C) nb = C - pos % C;
        st = tome_session_eval(s, ids + pos, (size_t)nb, 0, NULL);
        if (st != TOME_OK) break;
        pos += nb;
        if (every && pos - last_ckpt >= (int64_t)every && pos < (int64_t)n_ids) {
            meta.n_done = pos;
            st = tome_kv_snapshot_save(s->kv, out, &meta);
            if (st != TOME_OK) {
                st = tome_error_prefix(st, "checkpoint at token %lld", (long long)pos);
                break;
            }
            last_ckpt = pos;
            n_ckpt++;
            if (kill_after > 0 && n_ckpt >= kill_after) kill(getpid(), SIGKILL);
        }
        double now = tome_now();
        if (now - t_last > 5) {
            fprintf(stderr, "tome prefill: %lld / %zu tokens (%.0f tokens/s)\n", (long long)pos, n_ids,
                    (double)(pos - start) / (now - t0));
            t_last = now;
        }
    }
    if (st == TOME_OK) {
        meta.n_done = pos;
        st = tome_kv_snapshot_save(s->kv, out, &meta);
    }
    int rc = TOME_EXIT_OK;
    if (st == TOME_OK) {
        double dt = tome_now() - t0;
        tome_kv_stats kst;
        tome_kv_get_stats(s->kv, &kst);
        tome_kv_snapshot_info info;
        memset(&info, 0, sizeof info);
        (void)tome_kv_snapshot_info_read(out, &info);
        fprintf(stderr,
                "tome prefill: %lld tokens (%lld new) in %.2f s (%.1f tokens/s), KV %s: %llu pages (%llu in RAM, %llu on "
                "disk), snapshot %s (%llu bytes)\n",
                (long long)pos, (long long)(pos - start), dt, dt > 0 ? (double)(pos - start) / dt : 0.0, fmt_name(fmt),
                (unsigned long long)kst.pages_sealed, (unsigned long long)kst.pages_ram,
                (unsigned long long)kst.pages_disk, out, (unsigned long long)info.file_bytes);
    } else {
        rc = tome_cli_fail(st);
    }
    tome_kv_free(kv);
    tome_session_free(s);
    tome_model_free(m);
    tome_pack_free(pack);
    return rc;
}
