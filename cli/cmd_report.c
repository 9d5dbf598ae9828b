/*
 * cli/cmd_report.c — `tome report`: a task template (tome/report.h) run as
 * several questions over one context. The sources are packed, the pack's ids
 * prefilled once into a cache with room for the longest question and answer,
 * and that cache saved as a snapshot (.tkv); each question then starts from
 * the snapshot (loaded again, so answers never see each other), prefills
 * only its own tail, and generates. Citations are checked against the pack;
 * the report is written as Markdown and as one self-contained HTML page.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/core_impl.h"
#include "core/error_impl.h"
#include "ingest/ingest_impl.h"
#include "kvcache/kvcache_impl.h"
#include "model/forward_impl.h"
#include "tome/chat.h"
#include "tome/model.h"
#include "tome/pack.h"
#include "tome/report.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: tome report --task refactor|compliance --model DIR SRC... [options] -o report.html\n"
               "  -m, --model DIR       model directory\n"
               "      --task T          refactor (module map, dependency hot spots, dead code, migration plan)\n"
               "                        or compliance (each clause of --policy checked against the documents)\n"
               "      --policy FILE     the policy (compliance): one clause per paragraph or list item\n"
               "  -o, --out FILE.html   the HTML report (default report.html); Markdown beside it (.md)\n"
               "      --md FILE.md      Markdown path\n"
               "  -t, --tokenizer PATH  default: $TOME_TOKENIZER, then the model directory\n"
               "  -n N                  answer tokens per question (default 768)\n"
               "      --kv FMT          KV format (default bf16)\n");
}

static int32_t argmax(const float *x, size_t n)
{
    size_t b = 0;
    for (size_t i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return (int32_t)b;
}

int tome_cmd_report(int argc, char **argv)
{
    const char *model = NULL, *task = NULL, *policy_path = NULL, *out = "report.html", *md = NULL, *tokp = NULL;
    unsigned long long n_new = 768;
    int fmt = 1;
    enum { O_TASK = 256, O_POL, O_MD, O_KV };
    static const struct option lo[] = {{"model", required_argument, 0, 'm'}, {"task", required_argument, 0, O_TASK},
                                       {"policy", required_argument, 0, O_POL}, {"out", required_argument, 0, 'o'},
                                       {"md", required_argument, 0, O_MD},     {"tokenizer", required_argument, 0, 't'},
                                       {"kv", required_argument, 0, O_KV},     {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
    static const char *fmts[] = {"f32", "bf16", "fp8", "int8", "int4", "int2"};
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "m:o:t:n:h", lo, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case O_TASK: task = optarg; break;
        case O_POL: policy_path = optarg; break;
        case 'o': out = optarg; break;
        case O_MD: md = optarg; break;
        case 't': tokp = optarg; break;
        case 'n':
            if (tome_cli_parse_u64(optarg, 0, &n_new) || n_new < 1) return tome_cli_usage_error("report", "bad -n");
            break;
        case O_KV:
            fmt = -1;
            for (int i = 0; i < 6; i++)
                if (!strcmp(optarg, fmts[i])) fmt = i;
            if (fmt < 0) return tome_cli_usage_error("report", "unknown --kv '%s'", optarg);
            break;
        case 'h': usage(stdout); return TOME_EXIT_OK;
        default: usage(stderr); return TOME_EXIT_USAGE;
        }
    }
    if (!model || !task) return tome_cli_usage_error("report", "--model and --task are required");
    if (optind >= argc) return tome_cli_usage_error("report", "give the sources to review");
    if (!tokp || !*tokp) tokp = getenv("TOME_TOKENIZER");
    if (!tokp || !*tokp) tokp = model;
    char md_path[4096];
    if (!md) {
        size_t l = strlen(out);
        snprintf(md_path, sizeof md_path, "%.*s.md", (int)(l > 5 && !strcmp(out + l - 5, ".html") ? l - 5 : l), out);
        md = md_path;
    }
    /* never over a source, the policy or a README: only an earlier report
     * (or an empty file) is replaced; checked before the model runs */
    if (!strcmp(out, md)) return tome_cli_usage_error("report", "-o and --md name the same file '%s'", out);
    if (tome_report_check_output(out) || tome_report_check_output(md))
        return tome_cli_usage_error("report", "%s", tome_last_error());

    tome_report rep;
    memset(&rep, 0, sizeof rep);
    tome_buf policy = {0}, srcs = {0};
    tome_tokenizer_t *tok = NULL;
    tome_pack_t *pack = NULL;
    tome_model_t *m = NULL;
    tome_session_t *s = NULL;
    float *logits = NULL;
    const int32_t *ids = NULL;
    size_t n_ids = 0;
    char tmp_pack[4096], tmp_ctx[4096];
    const char *tmpdir = getenv("TMPDIR");
    snprintf(tmp_pack, sizeof tmp_pack, "%s/tome-report-%ld.tpk", tmpdir && *tmpdir ? tmpdir : "/tmp", (long)getpid());
    snprintf(tmp_ctx, sizeof tmp_ctx, "%s/tome-report-%ld.tkv", tmpdir && *tmpdir ? tmpdir : "/tmp", (long)getpid());
    tome_status st = TOME_OK;
    if (policy_path) st = tome_read_file(policy_path, 1 << 20, &policy);
    if (st == TOME_OK && policy_path) {
        /* the policy's text as the packer reads text: UTF-16 / Latin-1
         * converted to UTF-8; a binary file is refused */
        tome_encoding enc = tome_text_detect((const uint8_t *)policy.data, policy.len);
        if (enc == TOME_ENC_BINARY && !memchr(policy.data, 0, policy.len)) {
            /* a stray control character in a short text is still a policy */
            char *clean = tome_chat_clean_utf8(policy.data, policy.len);
            enc = clean && strlen(clean) == policy.len ? TOME_ENC_UTF8 : TOME_ENC_LATIN1;
            free(clean);
        }
        tome_buf u = {0};
        if (policy.len > 0 && enc == TOME_ENC_BINARY)
            st = tome_set_error(TOME_ERR_INVALID_ARG, "%s: the policy is not a text file", policy_path);
        else if (policy.len > 0 && (st = tome_text_to_utf8((const uint8_t *)policy.data, policy.len, enc, &u)) == TOME_OK) {
            tome_buf_free(&policy);
            policy = u;
        }
        if (st == TOME_OK && !policy.data) st = tome_buf_append(&policy, "", 0);
    }
    if (st == TOME_OK) {
        st = tome_report_plan(&rep, task, policy.data);
        if (st != TOME_OK && policy_path) st = tome_error_prefix(st, "%s", policy_path);
    }
    for (int i = optind; i < argc && st == TOME_OK; i++) st = tome_buf_appendf(&srcs, "%s%s", i > optind ? ", " : "", argv[i]);
    if (st == TOME_OK) {
        rep.task = strdup(task);
        rep.title = strdup(!strcmp(task, "refactor") ? "Refactoring report" : "Compliance review");
        rep.sources = strdup(srcs.data);
        rep.model = strdup(model);
        if (!rep.task || !rep.title || !rep.sources || !rep.model) st = tome_set_error(TOME_ERR_NOMEM, "out of memory");
    }
    if (st == TOME_OK) st = tome_tokenizer_open(tokp, &tok);
    /* the longest tail decides the room after the pack */
    size_t max_tail = 0;
    for (size_t i = 0; i < rep.n_items && st == TOME_OK; i++) {
        tome_tokens_t t = {0};
        st = tome_chat_tail(tok, NULL, rep.items[i].question, &t);
        if (t.n > max_tail) max_tail = t.n;
        tome_tokens_free(&t);
    }
    if (st == TOME_OK) st = tome_model_open(model, NULL, &m);
    if (st == TOME_OK) st = tome_chat_check_vocab(m, model, tok, tokp);
    if (st == TOME_OK) {
        tome_pack_opts po;
        tome_pack_opts_default(&po);
        po.tok = tok;
        po.line_numbers = 1;
        /* sources larger than the model's context degrade by priority so that
         * the pack, the longest question and its answer fit */
        uint64_t budget = tome_chat_pack_budget(m, max_tail + n_new + 1);
        if (budget == 0)
            st = tome_set_error(TOME_ERR_LIMIT,
                                "model %s's context (max_position_embeddings) leaves no room for the sources after "
                                "the longest question (%zu tokens) and %llu answer tokens: ask for fewer (-n)%s",
                                model, max_tail, n_new, policy_path ? " or shorten the policy's clauses" : "");
        else if (budget < UINT64_MAX)
            po.budget = budget;
        if (st == TOME_OK)
            st = tome_pack_build((const char *const *)argv + optind, (size_t)(argc - optind), &po, tmp_pack, NULL);
    }
    if (st == TOME_OK) st = tome_pack_open(tmp_pack, &pack);
    if (st == TOME_OK) st = tome_pack_ids(pack, &ids, &n_ids);
    if (st == TOME_OK) st = tome_chat_check_length(m, model, "the packed sources", n_ids, max_tail + n_new + 1);
    const int64_t cap = (int64_t)(n_ids + max_tail + n_new + 1);
    if (st == TOME_OK) st = tome_session_open(m, cap, 0, &s);
    tome_kv_params kp = {0};
    int64_t window[TOME_MAX_LAYERS];
    if (st == TOME_OK) {
        const tome_model_config_t *mc = tome_model_get_config(m);
        for (int l = 0; l < mc->n_layers; l++) window[l] = mc->use_rope[l] ? mc->attention_chunk_size : 0;
        kp = (tome_kv_params){.n_layers = mc->n_layers, .n_kv_heads = mc->n_kv_heads, .head_dim = mc->head_dim,
                              .n_seqs = 1, .max_tokens = cap, .window = window, .fmt = fmt};
        tome_kvcache *kv = NULL;
        st = tome_kv_open(&kp, &kv);
        if (st == TOME_OK) tome_kv_free(s->kv), s->kv = kv;
        logits = malloc((size_t)mc->vocab_size * sizeof *logits);
        if (st == TOME_OK && !logits) st = tome_set_error(TOME_ERR_NOMEM, "out of memory");
    }
    /* the shared context: prefill once, save */
    tome_kv_snapshot_meta meta;
    memset(&meta, 0, sizeof meta);
    double t0 = tome_now();
    if (st == TOME_OK) st = tome_session_eval(s, ids, n_ids, 0, NULL);
    if (st == TOME_OK) {
        tome_pack_info pi;
        tome_pack_get_info(pack, &pi);
        snprintf(meta.id.pack_hash, sizeof meta.id.pack_hash, "%s", pi.content_hash);
        snprintf(meta.id.tokenizer_hash, sizeof meta.id.tokenizer_hash, "%s", pi.tokenizer_hash);
        st = tome_model_hash(m, meta.id.model_hash);
        meta.n_done = meta.n_total = (int64_t)n_ids;
    }
    if (st == TOME_OK) st = tome_kv_snapshot_save(s->kv, tmp_ctx, &meta);
    if (st == TOME_OK)
        fprintf(stderr, "tome report: %zu pack tokens prefilled in %.1f s; %zu questions\n", n_ids, tome_now() - t0,
                rep.n_items);
    const size_t V = m ? (size_t)tome_model_get_config(m)->vocab_size : 0;
    for (size_t i = 0; i < rep.n_items && st == TOME_OK; i++) {
        tome_report_item *it = &rep.items[i];
        tome_kvcache *kv = NULL;
        st = tome_kv_snapshot_load(tmp_ctx, &meta.id, &kp, &kv, NULL);
        if (st != TOME_OK) break;
        tome_kv_free(s->kv);
        s->kv = kv;
        s->pos = (int64_t)n_ids;
        tome_tokens_t t = {0};
        st = tome_chat_tail(tok, NULL, it->question, &t);
        if (st == TOME_OK) st = tome_session_eval(s, t.ids, t.n, 0, logits);
        tome_tokens_free(&t);
        tome_buf ans = {0};
        for (size_t g = 0; g < n_new && st == TOME_OK; g++) {
            int32_t id = argmax(logits, V);
            if (tome_model_is_eos(m, id) || tome_tokenizer_is_stop(tok, id)) break;
            size_t bl = 0;
            const char *bytes = tome_tokenizer_token_bytes(tok, id, &bl);
            if (bytes && bl) st = tome_buf_append(&ans, bytes, bl);
            if (st == TOME_OK) st = tome_session_eval(s, &id, 1, 0, logits);
        }
        it->answer = ans.data ? ans.data : strdup("");
        if (st == TOME_OK && !it->answer) st = tome_set_error(TOME_ERR_NOMEM, "out of memory");
        if (st == TOME_OK) st = tome_chat_citations(pack, it->answer, strlen(it->answer), &it->cites, &it->n_cites);
        if (st == TOME_OK && !strcmp(task, "compliance")) {
            it->severity = strdup(tome_report_severity(it->answer));
            if (!it->severity) st = tome_set_error(TOME_ERR_NOMEM, "out of memory");
        }
        if (st == TOME_OK) fprintf(stderr, "  %s: %zu characters, %zu citations\n", it->title, strlen(it->answer), it->n_cites);
    }
    if (st == TOME_OK) st = tome_report_render_html(&rep, out);
    if (st == TOME_OK) st = tome_report_render_md(&rep, md);
    int rc = TOME_EXIT_OK;
    if (st == TOME_OK) printf("wrote %s and %s\n", out, md);
    else rc = tome_cli_fail(st);
    free(logits);
    tome_session_free(s);
    tome_model_free(m);
    tome_pack_free(pack);
    tome_tokenizer_free(tok);
    tome_report_clear(&rep);
    tome_buf_free(&policy);
    tome_buf_free(&srcs);
    unlink(tmp_pack);
    unlink(tmp_ctx);
    return rc;
}
