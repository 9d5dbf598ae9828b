/*
 * tests/test_e2e.c — the synthetic retrieval model through the real loader,
 * forward pass, KV cache and attention (model/synthetic.c), and the NIAH
 * library (model/niah.c, niah_out.c) on small grids.
 */
#include <stdlib.h>
#include <string.h>

#include "tome/chat.h"
#include "tome/model.h"
#include "tome/pack.h"
#include "tome/report.h"
#include "tome/niah.h"
#include "tome/tokenizer.h"
#include "tt.h"

static tome_tokenizer_t *g_tok;
static char g_model[4096];

static void test_alphabet_ids_match_tokenizer(void)
{
    const char *const *words;
    const int32_t *ids;
    size_t n = tome_synthetic_alphabet(&words, &ids);
    TT_CHECK(n >= 40);
    for (size_t i = 0; i < n; i++) {
        char text[64];
        snprintf(text, sizeof text, " %s", words[i]);
        tome_tokens_t t = {0};
        TT_OK(tome_tokenizer_encode(g_tok, text, strlen(text), NULL, &t));
        TT_EQ_INT(t.n, 1);
        if (t.n == 1) TT_EQ_INT(t.ids[0], ids[i]);
        for (size_t j = 0; j < i; j++) TT_CHECK(ids[j] != ids[i]);
        tome_tokens_free(&t);
    }
}

/* Greedy continuation of ids through the real session API. */
static size_t greedy(tome_model_t *m, const int32_t *ids, size_t n, int32_t *out, size_t max_new, int ubatch)
{
    tome_session_t *s = NULL;
    TT_OK(tome_session_open(m, (int64_t)(n + max_new + 1), ubatch, &s));
    if (!s) return 0;
    tome_sampler smp;
    tome_sampler_params sp = {.temperature = 0};
    tome_sampler_init(&smp, &sp);
    size_t n_out = 0;
    TT_OK(tome_generate(s, ids, n, max_new, &smp, out, &n_out));
    tome_sampler_free(&smp);
    tome_session_free(s);
    return n_out;
}

static void test_model_loads_with_llama4_shape(void)
{
    tome_model_t *m = NULL;
    TT_OK(tome_model_open(g_model, NULL, &m));
    if (!m) return;
    const tome_model_config_t *c = tome_model_get_config(m);
    TT_EQ_INT(c->vocab_size, 202048);
    TT_EQ_INT(c->n_layers, 2);
    TT_EQ_INT(c->use_rope[0], 1); /* chunked RoPE layer */
    TT_EQ_INT(c->use_rope[1], 0); /* global NoPE layer  */
    TT_CHECK(c->attention_chunk_size > 0);
    TT_CHECK(c->use_qk_norm && c->attn_temperature_tuning);
    tome_model_free(m);
}

/* filler id (a plain word that is not in the alphabet) */
#define F 1815

static void test_retrieves_value_across_chunks(void)
{
    tome_model_t *m = NULL;
    TT_OK(tome_model_open(g_model, NULL, &m));
    if (!m) return;
    const int32_t *a;
    tome_synthetic_alphabet(NULL, &a);
    const int32_t eot = 200008;
    /* needle "k1 k2 v1 v2 v3" twice, 7 tokens apart, placed so that v1 of the
     * first copy is the first token of a 64-token chunk (layer 0 cannot link
     * it to k2 there; the second copy must carry the answer), then filler
     * across several chunks, then the key. */
    for (int shift = 0; shift < 3; shift++) {
        int32_t ids[600];
        size_t n = 0;
        size_t start = 64 - 2 - (size_t)shift; /* k1 k2 end right before position 64 when shift = 0 */
        while (n < start) ids[n++] = F;
        int32_t needle[5] = {a[3], a[7], a[11], a[19], a[23]};
        for (int r = 0; r < 2; r++) {
            for (int i = 0; i < 5; i++) ids[n++] = needle[i];
            ids[n++] = F, ids[n++] = F;
        }
        while (n < 500) ids[n++] = F;
        ids[n++] = a[3], ids[n++] = a[7];
        int32_t out[8];
        size_t n_out = greedy(m, ids, n, out, 8, shift == 2 ? 5 : 512);
        TT_EQ_INT(n_out, 4);
        if (n_out == 4) {
            TT_EQ_INT(out[0], a[11]);
            TT_EQ_INT(out[1], a[19]);
            TT_EQ_INT(out[2], a[23]);
            TT_EQ_INT(out[3], eot);
        }
    }
    /* a key the context never saw: nothing to copy, the model ends the turn */
    int32_t ids[200];
    for (int i = 0; i < 200; i++) ids[i] = F;
    ids[100] = a[1], ids[101] = a[2];
    ids[199] = a[30];
    int32_t out[4];
    size_t n_out = greedy(m, ids, 200, out, 4, 512);
    TT_EQ_INT(n_out, 1);
    if (n_out) TT_EQ_INT(out[0], eot);
    tome_model_free(m);
}

static tome_niah_result *grid(tome_niah_variant v, int kv_fmt, const int64_t *lengths, size_t nl)
{
    static const double depths[] = {0, 0.5, 1.0};
    tome_niah_opts o = {.model_dir = g_model, .tok = g_tok, .lengths = lengths, .n_lengths = nl,
                        .depths = depths, .n_depths = 3, .variant = v, .n_needles = 3, .exact = 1,
                        .kv_fmt = kv_fmt, .seed = 7};
    tome_niah_result *r = NULL;
    TT_OK(tome_niah_run(&o, &r));
    return r;
}

static void test_niah_grid_all_retrieved(void)
{
    static const int64_t lengths[] = {600, 2048};
    struct { tome_niah_variant v; int kv; } runs[] = {
        {TOME_NIAH_SINGLE, 0}, {TOME_NIAH_SINGLE, 1 /* bf16 */}, {TOME_NIAH_SINGLE, 3 /* int8 */},
        {TOME_NIAH_SINGLE, 4 /* int4 */}, {TOME_NIAH_MULTIKEY, 4}, {TOME_NIAH_MULTIQUERY, 0}};
    for (size_t k = 0; k < sizeof runs / sizeof runs[0]; k++) {
        tome_niah_result *r = grid(runs[k].v, runs[k].kv, lengths, 2);
        if (!r) continue;
        for (size_t i = 0; i < 6; i++) {
            const tome_niah_cell *c = &r->cells[i];
            if (c->score != 1.0)
                tt_fail(__FILE__, __LINE__, "variant %d kv %d: length %lld depth %.2f score %.2f answer '%s' want '%s'",
                        (int)runs[k].v, runs[k].kv, (long long)c->length, c->depth, c->score, c->answer,
                        c->expected);
            TT_EQ_INT(c->n_asked, runs[k].v == TOME_NIAH_MULTIQUERY ? 3 : 1);
            TT_CHECK(c->needle_pos >= 0 && c->needle_pos < c->length);
        }
        /* depth 0 puts the needle near the start, depth 1 near the end */
        TT_CHECK(r->cells[0].needle_pos < r->cells[2].needle_pos);
        tome_niah_result_free(r);
    }
}

static void test_niah_outputs(void)
{
    static const int64_t lengths[] = {700};
    tome_niah_result *r = grid(TOME_NIAH_SINGLE, 0, lengths, 1);
    if (!r) return;
    char p[4096];
    const char *d = tt_tmpdir();
    snprintf(p, sizeof p, "%s/g.json", d);
    TT_OK(tome_niah_write_json(r, p));
    char *j = tt_read_file(p, NULL);
    TT_CHECK(j && strstr(j, "\"mean_score\": 1.0") && strstr(j, "\"length\": 700"));
    free(j);
    snprintf(p, sizeof p, "%s/g.csv", d);
    TT_OK(tome_niah_write_csv(r, p));
    char *c = tt_read_file(p, NULL);
    TT_CHECK(c && !strncmp(c, "length,depth,", 13));
    size_t lines = 0;
    for (char *q = c; q && *q; q++) lines += *q == '\n';
    TT_EQ_INT(lines, 4);
    free(c);
    snprintf(p, sizeof p, "%s/g.svg", d);
    TT_OK(tome_niah_write_svg(r, p));
    char *s = tt_read_file(p, NULL);
    TT_CHECK(s && strstr(s, "<svg") && strstr(s, "</svg>") && strstr(s, ">50%<") &&
             strstr(s, "context length (tokens)") && strstr(s, ">700<"));
    free(s);
    tome_niah_result_free(r);
}

static void test_niah_contains_and_tokens(void)
{
    TT_CHECK(tome_niah_contains("The passphrase is: Copper, violet-glacier.", " copper violet glacier"));
    TT_CHECK(!tome_niah_contains("copper violet", "copper violet glacier"));
    int64_t v;
    TT_CHECK(tome_niah_parse_tokens("64K", &v) == 0 && v == 65536);
    TT_CHECK(tome_niah_parse_tokens("1M", &v) == 0 && v == 1048576);
    TT_CHECK(tome_niah_parse_tokens("1.5k", &v) == 0 && v == 1536);
    TT_CHECK(tome_niah_parse_tokens("12x", &v) != 0);
    char b[16];
    tome_niah_format_tokens(1048576, b, sizeof b);
    TT_EQ_STR(b, "1M");
    tome_niah_format_tokens(65536, b, sizeof b);
    TT_EQ_STR(b, "64K");
}

static void test_citations_checked_against_pack(void)
{
    char pk[4096];
    snprintf(pk, sizeof pk, "%s/s.tpk", tt_tmpdir());
    tome_pack_opts po;
    tome_pack_opts_default(&po);
    po.tok = g_tok;
    const char *src[] = {tt_source_path("samples/repo")};
    TT_OK(tome_pack_build(src, 1, &po, pk, NULL));
    tome_pack_t *p = NULL;
    TT_OK(tome_pack_open(pk, &p));
    if (!p) return;
    const char *ans = "The ledger is described in README.md:1-3 (see `README.md:99999`), and in nope/x.c:3. "
                      "Version 1.2: not a citation; time 10:30 neither.";
    tome_citation *c = NULL;
    size_t n = 0;
    TT_OK(tome_chat_citations(p, ans, strlen(ans), &c, &n));
    TT_EQ_INT(n, 3);
    if (n == 3) {
        TT_EQ_STR(c[0].text, "README.md:1-3");
        TT_EQ_INT(c[0].valid, 1);
        TT_CHECK(c[0].lines && strlen(c[0].lines) > 0);
        TT_EQ_INT(c[0].offset, strstr(ans, "README.md:1-3") - ans);
        TT_EQ_STR(c[1].text, "README.md:99999");
        TT_EQ_INT(c[1].valid, 0);
        TT_CHECK(c[1].reason != NULL);
        TT_EQ_STR(c[2].text, "nope/x.c:3");
        TT_EQ_INT(c[2].valid, 0);
    }
    tome_citations_free(c, n);
    /* without a pack: found, not checked */
    TT_OK(tome_chat_citations(NULL, "a/b.c:7-9.", 10, &c, &n));
    TT_EQ_INT(n, 1);
    if (n == 1) TT_EQ_STR(c[0].text, "a/b.c:7-9");
    tome_citations_free(c, n);
    /* the prompt tail ends with the assistant header */
    tome_tokens_t t = {0};
    TT_OK(tome_chat_tail(g_tok, NULL, "Where is <|eot|> handled?", &t));
    TT_CHECK(t.n > 10);
    if (t.n > 10) {
        TT_EQ_INT(t.ids[0], tome_tokenizer_special_id(g_tok, "<|eot|>"));
        TT_EQ_INT(t.ids[t.n - 2], tome_tokenizer_special_id(g_tok, "<|header_end|>"));
        /* the user's "<|eot|>" stays text: exactly 3 <|eot|> ids in the tail */
        int n_eot = 0;
        for (size_t i = 0; i < t.n; i++) n_eot += t.ids[i] == tome_tokenizer_special_id(g_tok, "<|eot|>");
        TT_EQ_INT(n_eot, 3);
    }
    tome_tokens_free(&t);
    tome_pack_free(p);
}

static void test_report_plan_and_render(void)
{
    tome_report r;
    memset(&r, 0, sizeof r);
    TT_OK(tome_report_plan(&r, "refactor", NULL));
    TT_EQ_INT(r.n_items, 4);
    tome_report_clear(&r);
    TT_STATUS(tome_report_plan(&r, "compliance", NULL), TOME_ERR_INVALID_ARG);
    tome_report_clear(&r);
    TT_STATUS(tome_report_plan(&r, "poetry", NULL), TOME_ERR_INVALID_ARG);
    tome_report_clear(&r);
    TT_OK(tome_report_plan(&r, "compliance", "# Policy\n\n1. No secrets\n   in the repo.\n2) Licenses on every file.\n\n"
                                             "A paragraph clause\nover two lines.\n- last item"));
    TT_EQ_INT(r.n_items, 4);
    if (r.n_items == 4) {
        TT_CHECK(strstr(r.items[0].question, "\"No secrets in the repo.\"") != NULL);
        TT_CHECK(strstr(r.items[1].question, "\"Licenses on every file.\"") != NULL);
        TT_CHECK(strstr(r.items[2].question, "\"A paragraph clause over two lines.\"") != NULL);
        TT_CHECK(strstr(r.items[3].question, "\"last item\"") != NULL);
    }
    TT_EQ_STR(tome_report_severity("Severity: Medium. One high-risk file."), "medium");
    TT_EQ_STR(tome_report_severity("This is low risk."), "low");
    TT_EQ_STR(tome_report_severity("nothing to say"), "unknown");
    /* render an answer with a valid and an invalid citation */
    char pk[4096];
    snprintf(pk, sizeof pk, "%s/r.tpk", tt_tmpdir());
    tome_pack_opts po;
    tome_pack_opts_default(&po);
    po.tok = g_tok;
    const char *src[] = {tt_source_path("samples/repo")};
    TT_OK(tome_pack_build(src, 1, &po, pk, NULL));
    tome_pack_t *p = NULL;
    TT_OK(tome_pack_open(pk, &p));
    if (p && r.n_items == 4) {
        r.task = strdup("compliance"), r.title = strdup("Review <1>"), r.sources = strdup("samples/repo");
        r.model = strdup("m");
        tome_report_item *it = &r.items[0];
        it->answer = strdup("Severity: high. See README.md:1-2 & README.md:99999.");
        it->severity = strdup(tome_report_severity(it->answer));
        TT_OK(tome_chat_citations(p, it->answer, strlen(it->answer), &it->cites, &it->n_cites));
        for (size_t i = 1; i < 4; i++) it[i].severity = strdup("unknown"), it[i].answer = strdup("");
        /* an en dash range, a control character and an answer cut inside a
         * UTF-8 character: the link spans the range as written, the page
         * stays valid UTF-8 */
        free(it[1].answer);
        it[1].answer = strdup("See README.md:1\xE2\x80\x93" "2 \x01 then caf\xC3");
        TT_OK(tome_chat_citations(p, it[1].answer, strlen(it[1].answer), &it[1].cites, &it[1].n_cites));
        char h[4096], m[4096];
        snprintf(h, sizeof h, "%s/r.html", tt_tmpdir());
        snprintf(m, sizeof m, "%s/r.md", tt_tmpdir());
        TT_OK(tome_report_render_html(&r, h));
        TT_OK(tome_report_render_md(&r, m));
        char *html = tt_read_file(h, NULL), *md = tt_read_file(m, NULL);
        TT_CHECK(html && strstr(html, "<title>Review &lt;1&gt;</title>"));
        TT_CHECK(html && strstr(html, "<a href=\"#cite-1-1\" class=\"ok\">README.md:1-2</a>"));
        TT_CHECK(html && strstr(html, "<p id=\"cite-1-1\">"));
        TT_CHECK(html && strstr(html, "See <a href=\"#cite-2-1\" class=\"ok\">README.md:1\xE2\x80\x93" "2</a> "
                                      "\xEF\xBF\xBD then caf\xEF\xBF\xBD</div>"));
        TT_CHECK(html && strstr(html, "title=\"invalid citation\">README.md:99999</span>"));
        TT_CHECK(html && strstr(html, "<td class=\"sev-high\">high</td><td class=\"ok\">1</td><td class=\"bad\">1</td>"));
        TT_CHECK(html && !strstr(html, "<script") && !strstr(html, "http://") && !strstr(html, "https://"));
        TT_CHECK(md && strstr(md, "| Clause 1 | high | 1 | 1 |") && strstr(md, "`README.md:99999` **invalid**"));
        free(html);
        free(md);
    }
    tome_pack_free(p);
    tome_report_clear(&r);
}

int main(void)
{
    const char *tp = getenv("TOME_TOKENIZER");
    if (!tp || !*tp) tp = tt_shared_path("llama4/tokenizer.model");
    tome_status st = tome_tokenizer_open(tp, &g_tok);
    if (st != TOME_OK) {
        fprintf(stderr, "test_e2e: no tokenizer at %s: %s\n", tp, tome_last_error());
        return 1;
    }
    snprintf(g_model, sizeof g_model, "%s/retrieval", tt_tmpdir());
    st = tome_mkmodel("retrieval", 0, g_model, 0, 0);
    if (st != TOME_OK) {
        fprintf(stderr, "test_e2e: mkmodel retrieval: %s\n", tome_last_error());
        return 1;
    }
    TT_RUN(test_alphabet_ids_match_tokenizer);
    TT_RUN(test_model_loads_with_llama4_shape);
    TT_RUN(test_retrieves_value_across_chunks);
    TT_RUN(test_niah_grid_all_retrieved);
    TT_RUN(test_niah_outputs);
    TT_RUN(test_niah_contains_and_tokens);
    TT_RUN(test_citations_checked_against_pack);
    TT_RUN(test_report_plan_and_render);
    tome_tokenizer_free(g_tok);
    return tt_finish();
}
