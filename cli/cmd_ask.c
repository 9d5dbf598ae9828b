/*
 * cli/cmd_ask.c — `tome ask`: one question over a pack (or sources packed on
 * the fly), answered by the model; the answer is streamed to stdout and every
 * "path:line" citation in it is checked against the pack (tome/chat.h).
 *
 * The prompt is [pack ids][tome_chat_tail]; with --context CTX.tkv (a
 * `tome prefill` snapshot of the same model, tokenizer and pack) the pack's
 * ids are not evaluated again: the session's KV cache is replaced by the
 * snapshot (model/forward_impl.h: the session owns `kv`) and only the tail
 * is prefilled.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/core_impl.h"
#include "kvcache/kvcache_impl.h"
#include "model/forward_impl.h"
#include "tome/chat.h"
#include "tome/model.h"
#include "tome/pack.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: tome ask --model DIR (--pack P.tpk | SRC...) [options] \"question\"\n"
               "  -m, --model DIR        model directory (config.json + safetensors)\n"
               "  -p, --pack P.tpk       the documents, packed by tome pack\n"
               "  SRC...                 or directories / archives / documents, packed on the fly\n"
               "  -c, --context CTX.tkv  KV snapshot of the pack from tome prefill (skips its prefill)\n"
               "  -t, --tokenizer PATH   default: $TOME_TOKENIZER, then the model directory\n"
               "  -n N                   answer tokens at most (default 512)\n"
               "      --system TEXT      replace the system prompt\n"
               "      --kv FMT           KV format without --context: f32 bf16 fp8 int8 int4 int2 (default bf16)\n"
               "      --json             print one JSON object: answer, citations (valid or not), timings\n"
               "      --ubatch N, --threads N, --weights bf16|int8|int4\n");
}

static int kv_fmt(const char *s)
{
    static const char *n[] = {"f32", "bf16", "fp8", "int8", "int4", "int2"};
    for (int i = 0; i < 6; i++)
        if (!strcmp(s, n[i])) return i;
    return -1;
}

/* Evaluates ids with a progress line on a TTY; logits of the last token. */
static tome_status prefill(tome_session_t *s, const int32_t *ids, size_t n, float *logits, int tty, size_t base,
                           size_t total, double t0, size_t first)
{
    double last = 0;
    const size_t piece = 4096;
    for (size_t d = 0; d < n;) {
        size_t nb = n - d < piece ? n - d : piece;
        TOME_FORWARD(tome_session_eval(s, ids + d, nb, 0, d + nb == n ? logits : NULL));
        d += nb;
        double now = tome_now();
        if (tty && (now - last > 0.25 || d == n)) {
            last = now;
            double rate = (double)(base + d - first) / (now - t0 + 1e-9);
            tome_kv_stats ks;
            tome_kv_get_stats(s->kv, &ks);
            fprintf(stderr, "\r\033[Kprefill %zu / %zu tokens  %.0f tok/s  ETA %.0f s  KV RAM %.1f MB disk %.1f MB",
                    base + d, total, rate, (double)(total - base - d) / (rate + 1e-9), (double)ks.bytes_ram / 1048576.0,
                    (double)ks.bytes_disk / 1048576.0);
            fflush(stderr);
        }
    }
    if (tty) fprintf(stderr, "\r\033[K");
    return TOME_OK;
}

/* A JSON string of any bytes (an answer cut inside a character, a non-UTF-8
 * path): invalid sequences become U+FFFD instead of dropping the field. */
static json_t *json_clean(const char *s, size_t n)
{
    char *c = tome_chat_clean_utf8(s ? s : "", s ? n : 0);
    json_t *j = json_string(c ? c : "");
    free(c);
    return j;
}

static int32_t argmax(const float *x, size_t n)
{
    size_t b = 0;
    for (size_t i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return (int32_t)b;
}

int tome_cmd_ask(int argc, char **argv)
{
    const char *model = NULL, *pack_path = NULL, *ctx = NULL, *tokp = NULL, *system = NULL;
    unsigned long long n_new = 512, ull;
    int json = 0, fmt = 1, ubatch = 0, threads = 0, weights = 0;
    enum { O_SYS = 256, O_KV, O_JSON, O_UB, O_THR, O_W };
    static const struct option lo[] = {{"model", required_argument, 0, 'm'},  {"pack", required_argument, 0, 'p'},
                                       {"context", required_argument, 0, 'c'}, {"tokenizer", required_argument, 0, 't'},
                                       {"system", required_argument, 0, O_SYS}, {"kv", required_argument, 0, O_KV},
                                       {"json", no_argument, 0, O_JSON},        {"ubatch", required_argument, 0, O_UB},
                                       {"threads", required_argument, 0, O_THR}, {"weights", required_argument, 0, O_W},
                                       {"help", no_argument, 0, 'h'},           {0, 0, 0, 0}};
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "m:p:c:t:n:h", lo, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'p': pack_path = optarg; break;
        case 'c': ctx = optarg; break;
        case 't': tokp = optarg; break;
        case 'n':
            if (tome_cli_parse_u64(optarg, 0, &n_new) || n_new < 1) return tome_cli_usage_error("ask", "bad -n '%s'", optarg);
            break;
        case O_SYS: system = optarg; break;
        case O_KV:
            if ((fmt = kv_fmt(optarg)) < 0) return tome_cli_usage_error("ask", "unknown --kv '%s'", optarg);
            break;
        case O_JSON: json = 1; break;
        case O_UB:
            if (tome_cli_parse_u64(optarg, 0, &ull) || ull < 1 || ull > 65536) return tome_cli_usage_error("ask", "bad --ubatch");
            ubatch = (int)ull;
            break;
        case O_THR:
            if (tome_cli_parse_u64(optarg, 0, &ull) || ull > 1024) return tome_cli_usage_error("ask", "bad --threads");
            threads = (int)ull;
            break;
        case O_W:
            if (!strcmp(optarg, "bf16") || !strcmp(optarg, "native")) weights = 0;
            else if (!strcmp(optarg, "int8")) weights = 1;
            else if (!strcmp(optarg, "int4")) weights = 2;
            else return tome_cli_usage_error("ask", "unknown --weights '%s'", optarg);
            break;
        case 'h': usage(stdout); return TOME_EXIT_OK;
        default: usage(stderr); return TOME_EXIT_USAGE;
        }
    }
    if (!model) return tome_cli_usage_error("ask", "--model DIR is required");
    if (optind >= argc) return tome_cli_usage_error("ask", "the question is missing");
    const char *question = argv[argc - 1];
    if (!question[strspn(question, " \t\r\n")]) return tome_cli_usage_error("ask", "the question is empty");
    int n_src = argc - 1 - optind;
    if (!pack_path && n_src == 0) return tome_cli_usage_error("ask", "give --pack P.tpk or sources to pack");
    if (pack_path && n_src > 0) return tome_cli_usage_error("ask", "give --pack or sources, not both");
    if (ctx && !pack_path) return tome_cli_usage_error("ask", "--context needs the --pack it was made from");
    if (!tokp || !*tokp) tokp = getenv("TOME_TOKENIZER");
    if (!tokp || !*tokp) tokp = model;

    tome_tokenizer_t *tok = NULL;
    tome_pack_t *pack = NULL;
    tome_model_t *m = NULL;
    tome_session_t *s = NULL;
    tome_tokens_t tail = {0};
    float *logits = NULL;
    tome_buf answer = {0};
    tome_citation *cites = NULL;
    size_t n_cites = 0;
    char tmp_pack[4096] = "";
    int tty = isatty(2) && !json;
    double t_prefill = 0, t_decode = 0;
    size_t n_gen = 0;
    const int32_t *ids = NULL;
    size_t n_ids = 0;
    int64_t from_ctx = 0;
    tome_status st = tome_tokenizer_open(tokp, &tok);
    if (st == TOME_OK) st = tome_chat_tail(tok, system, question, &tail);
    if (st == TOME_OK) {
        tome_model_opts mo = {.weights = (tome_weights_format)weights, .n_threads = threads};
        st = tome_model_open(model, &mo, &m);
    }
    if (st == TOME_OK) st = tome_chat_check_vocab(m, model, tok, tokp);
    if (st == TOME_OK && !pack_path) {
        const char *tmpdir = getenv("TMPDIR");
        snprintf(tmp_pack, sizeof tmp_pack, "%s/tome-ask-%ld.tpk", tmpdir && *tmpdir ? tmpdir : "/tmp", (long)getpid());
        tome_pack_opts po;
        tome_pack_opts_default(&po);
        po.tok = tok;
        po.line_numbers = 1;
        /* sources larger than the model's context degrade by priority to fit
         * it with the question and the answer */
        uint64_t budget = tome_chat_pack_budget(m, tail.n + n_new + 1);
        if (budget == 0)
            st = tome_set_error(TOME_ERR_LIMIT,
                                "model %s's context (max_position_embeddings) leaves no room for the sources after "
                                "the question (%zu tokens) and %llu answer tokens: ask for fewer (-n)",
                                model, tail.n, n_new);
        else if (budget < UINT64_MAX)
            po.budget = budget;
        if (st == TOME_OK) st = tome_pack_build((const char *const *)argv + optind, (size_t)n_src, &po, tmp_pack, NULL);
        pack_path = tmp_pack;
    }
    if (st == TOME_OK) st = tome_pack_open(pack_path, &pack);
    if (st == TOME_OK) st = tome_pack_ids(pack, &ids, &n_ids);
    if (st == TOME_OK)
        st = tome_chat_check_length(m, model, *tmp_pack ? "the packed sources" : pack_path, n_ids, tail.n + n_new + 1);
    const size_t total = n_ids + tail.n;
    const int64_t cap = (int64_t)(total + n_new + 1);
    if (st == TOME_OK) st = tome_session_open(m, cap, ubatch, &s);
    if (st == TOME_OK) {
        const tome_model_config_t *mc = tome_model_get_config(m);
        int64_t window[TOME_MAX_LAYERS];
        for (int l = 0; l < mc->n_layers; l++) window[l] = mc->use_rope[l] ? mc->attention_chunk_size : 0;
        tome_kv_params kp = {.n_layers = mc->n_layers, .n_kv_heads = mc->n_kv_heads, .head_dim = mc->head_dim,
                             .n_seqs = 1, .max_tokens = cap, .window = window, .fmt = fmt};
        tome_kvcache *kv = NULL;
        if (ctx) {
            tome_kv_identity want;
            memset(&want, 0, sizeof want);
            tome_pack_info pi;
            tome_pack_get_info(pack, &pi);
            snprintf(want.pack_hash, sizeof want.pack_hash, "%s", pi.content_hash);
            snprintf(want.tokenizer_hash, sizeof want.tokenizer_hash, "%s", pi.tokenizer_hash);
            st = tome_model_hash(m, want.model_hash);
            tome_kv_snapshot_info info;
            if (st == TOME_OK) st = tome_kv_snapshot_load(ctx, &want, &kp, &kv, &info);
            if (st == TOME_OK && info.n_done != (int64_t)n_ids)
                st = tome_set_error(TOME_ERR_MISMATCH, "%s: snapshot holds %lld of the pack's %zu tokens (finish it with tome prefill)",
                                    ctx, (long long)info.n_done, n_ids);
            from_ctx = info.n_done;
        } else {
            st = tome_kv_open(&kp, &kv);
        }
        if (st == TOME_OK) {
            tome_kv_free(s->kv);
            s->kv = kv;
            s->pos = from_ctx;
        } else {
            tome_kv_free(kv);
        }
    }
    if (st == TOME_OK) {
        logits = malloc((size_t)tome_model_get_config(m)->vocab_size * sizeof *logits);
        if (!logits) st = tome_set_error(TOME_ERR_NOMEM, "out of memory");
    }
    double t0 = tome_now();
    if (st == TOME_OK && !from_ctx) st = prefill(s, ids, n_ids, NULL, tty, 0, total, t0, 0);
    if (st == TOME_OK) st = prefill(s, tail.ids, tail.n, logits, tty, n_ids, total, t0, (size_t)from_ctx);
    t_prefill = tome_now() - t0;
    t0 = tome_now();
    const size_t V = m ? (size_t)tome_model_get_config(m)->vocab_size : 0;
    while (st == TOME_OK && n_gen < n_new) {
        int32_t t = argmax(logits, V);
        n_gen++;
        if (tome_model_is_eos(m, t) || tome_tokenizer_is_stop(tok, t)) break;
        size_t bl = 0;
        const char *b = tome_tokenizer_token_bytes(tok, t, &bl);
        if (b && bl) {
            st = tome_buf_append(&answer, b, bl);
            if (!json) fwrite(b, 1, bl, stdout), fflush(stdout);
        }
        if (st == TOME_OK) st = tome_session_eval(s, &t, 1, 0, logits);
    }
    t_decode = tome_now() - t0;
    if (st == TOME_OK) st = tome_chat_citations(pack, answer.data ? answer.data : "", answer.len, &cites, &n_cites);
    int rc = TOME_EXIT_OK;
    if (st == TOME_OK && json) {
        json_t *o = json_object(), *arr = json_array();
        json_object_set_new(o, "answer", json_clean(answer.data, answer.len));
        for (size_t i = 0; i < n_cites; i++) {
            json_t *e = json_object();
            json_object_set_new(e, "citation", json_clean(cites[i].text, strlen(cites[i].text)));
            json_object_set_new(e, "offset", json_integer((json_int_t)cites[i].offset));
            json_object_set_new(e, "valid", json_boolean(cites[i].valid));
            if (cites[i].lines) json_object_set_new(e, "lines", json_clean(cites[i].lines, strlen(cites[i].lines)));
            if (cites[i].reason) json_object_set_new(e, "reason", json_clean(cites[i].reason, strlen(cites[i].reason)));
            json_array_append_new(arr, e);
        }
        json_object_set_new(o, "citations", arr);
        json_object_set_new(o, "prompt_tokens", json_integer((json_int_t)total));
        json_object_set_new(o, "context_tokens_reused", json_integer(from_ctx));
        json_object_set_new(o, "answer_tokens", json_integer((json_int_t)n_gen));
        json_object_set_new(o, "prefill_s", json_real(t_prefill));
        json_object_set_new(o, "decode_s", json_real(t_decode));
        char *text = json_dumps(o, JSON_INDENT(1));
        if (text) puts(text);
        free(text);
        json_decref(o);
    } else if (st == TOME_OK) {
        printf("\n");
        if (n_cites) {
            size_t bad = 0;
            fprintf(stderr, "citations:\n");
            for (size_t i = 0; i < n_cites; i++) {
                fprintf(stderr, "  %-7s %s%s%s\n", cites[i].valid ? "valid" : "INVALID", cites[i].text,
                        cites[i].reason ? ": " : "", cites[i].reason ? cites[i].reason : "");
                bad += !cites[i].valid;
            }
            if (bad) fprintf(stderr, "%zu of %zu citations do not exist in the pack\n", bad, n_cites);
        }
        fprintf(stderr, "%zu prompt tokens (%lld from %s), %.2f s prefill, %zu answer tokens in %.2f s\n", total,
                (long long)from_ctx, ctx ? ctx : "no context", t_prefill, n_gen, t_decode);
    }
    if (st != TOME_OK) rc = tome_cli_fail(st);
    tome_citations_free(cites, n_cites);
    tome_buf_free(&answer);
    free(logits);
    tome_tokens_free(&tail);
    tome_session_free(s);
    tome_model_free(m);
    tome_pack_free(pack);
    tome_tokenizer_free(tok);
    if (*tmp_pack) unlink(tmp_pack);
    return rc;
}
