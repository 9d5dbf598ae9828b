/*
 * model/niah.c — the needle-in-a-haystack grid (tome/niah.h): haystack,
 * needles, prompts, one session per cell through the real forward pass,
 * scoring. Outputs (JSON, CSV, SVG) are in niah_out.c.
 *
 * Haystack: the text of the files under haystack_dir (recursively, sorted by
 * path), or by default every file in /usr/share/common-licenses then
 * /usr/share/doc/<pkg>/copyright — decoded as the packer decodes text
 * (UTF-16 / Latin-1 to UTF-8, binary files skipped), tokenized once, only as
 * far as the longest cell needs, and read cyclically when the text is
 * shorter than that (a directory without text is refused). Lengths are
 * checked against the needles and the model before the first cell.
 *
 * A cell of length L and depth d: the prompt is
 *   <|begin_of_text|><|header_start|>user<|header_end|>\n\n
 *   haystack[0..B) with the needles inserted at sentence boundaries
 *   \n\nQuestion: ... What is it?<|eot|><|header_start|>assistant<|header_end|>\n\n
 *   The passphrase is: K
 * where B makes the whole prompt exactly L tokens. The asked needle goes to
 * the first sentence boundary at or after d·B (else the last before it);
 * distractors (multikey, multiquery) to seeded random depths. Key and value
 * words are drawn (seeded per cell) from the synthetic alphabet, never from
 * words that occur in the haystack, all distinct within a prompt, so the
 * question has one answer.
 *
 * Multivalue (RULER's third variant): the n needles all carry the asked key
 * (the first needle's) with n distinct values, the first at the cell's depth,
 * the others at seeded random depths (the same draws as the other variants);
 * the question asks for every value and the answer may run to n·ANSWER_MAX
 * tokens. Score = values found / n: exact-token containment (the value's
 * three ids appear in a row among the generated ids) or normalized
 * containment of the value text in the answer.
 *
 * Memory: the prompt of a cell is built whole (4 bytes a token) and freed
 * before the next cell; the session's KV cache is opened with the format,
 * RAM budget and spill directory asked for.
 */
#include "model/forward_impl.h"
#include "ingest/ingest_impl.h"
#include "tome/chat.h"
#include "tome/niah.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define ANSWER_MAX 8 /* new tokens per question (multivalue: per value) */

/* ------------------------------------------------------------ haystack */
typedef struct hay {
    tome_tokens_t t;
    size_t n_files;
} hay;

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

typedef struct strlist {
    char **v;
    size_t n, cap;
} strlist;

static tome_status strlist_add(strlist *l, const char *s)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        char **v = realloc(l->v, cap * sizeof *v);
        if (!v) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
        l->v = v, l->cap = cap;
    }
    if (!(l->v[l->n] = strdup(s))) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    l->n++;
    return TOME_OK;
}

static void strlist_free(strlist *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* Regular files under dir, recursively (depth ≤ 8), unsorted. */
static tome_status list_files(const char *dir, int depth, strlist *out)
{
    DIR *d = opendir(dir);
    if (!d) return tome_set_errno(TOME_ERR_IO, errno, "haystack: %s", dir);
    tome_status st = TOME_OK;
    struct dirent *e;
    char path[4096];
    while (st == TOME_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (stat(path, &sb) != 0) continue;
        if (S_ISDIR(sb.st_mode) && depth < 8) st = list_files(path, depth + 1, out);
        else if (S_ISREG(sb.st_mode)) st = strlist_add(out, path);
    }
    closedir(d);
    return st;
}

static tome_status hay_load(const char *dir, const tome_tokenizer_t *tok, size_t need, hay *h, char *desc,
                            size_t desc_cap)
{
    strlist files = {0};
    tome_status st = TOME_OK;
    struct stat dsb;
    if (dir && stat(dir, &dsb) == 0 && S_ISREG(dsb.st_mode)) {
        st = strlist_add(&files, dir); /* one text file is a haystack too */
        snprintf(desc, desc_cap, "%s", dir);
    } else if (dir) {
        st = list_files(dir, 0, &files);
        if (st == TOME_OK && files.n > 1) qsort(files.v, files.n, sizeof *files.v, cmp_str);
        snprintf(desc, desc_cap, "%s", dir);
    } else {
        strlist lic = {0}, docs = {0};
        if (list_files("/usr/share/common-licenses", 7, &lic) == TOME_OK && lic.n > 1) qsort(lic.v, lic.n, sizeof *lic.v, cmp_str);
        DIR *d = opendir("/usr/share/doc");
        if (d) {
            struct dirent *e;
            char path[4096];
            while (st == TOME_OK && (e = readdir(d)) != NULL) {
                if (e->d_name[0] == '.') continue;
                snprintf(path, sizeof path, "/usr/share/doc/%s/copyright", e->d_name);
                struct stat sb;
                if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) st = strlist_add(&docs, path);
            }
            closedir(d);
            if (docs.n > 1) qsort(docs.v, docs.n, sizeof *docs.v, cmp_str);
        }
        for (size_t i = 0; i < lic.n && st == TOME_OK; i++) st = strlist_add(&files, lic.v[i]);
        for (size_t i = 0; i < docs.n && st == TOME_OK; i++) st = strlist_add(&files, docs.v[i]);
        strlist_free(&lic);
        strlist_free(&docs);
        snprintf(desc, desc_cap, "/usr/share/common-licenses + /usr/share/doc/*/copyright");
    }
    tome_encode_opts eo = {.n_threads = tome_num_threads()};
    size_t n_binary = 0;
    for (size_t i = 0; i < files.n && st == TOME_OK && h->t.n < need; i++) {
        tome_buf b = {0}, u = {0};
        if (tome_read_file(files.v[i], 0, &b) != TOME_OK) continue; /* unreadable: skip */
        /* text by content, as the packer decides it: UTF-16 and Latin-1 are
         * converted to UTF-8, binary files (e.g. changelog.gz) are skipped */
        tome_encoding enc = b.len > 0 ? tome_text_detect((const uint8_t *)b.data, b.len) : TOME_ENC_BINARY;
        if (b.len > 0 && enc == TOME_ENC_BINARY) n_binary++;
        if (enc != TOME_ENC_BINARY && tome_text_to_utf8((const uint8_t *)b.data, b.len, enc, &u) == TOME_OK && u.len > 0) {
            st = tome_tokenizer_encode(tok, (const char *)u.data, u.len, &eo, &h->t);
            static const char sep[] = "\n\n";
            if (st == TOME_OK) st = tome_tokenizer_encode(tok, sep, 2, &eo, &h->t);
            h->n_files++;
        }
        tome_buf_free(&u);
        tome_buf_free(&b);
    }
    /* a short haystack is repeated; only one without any text is refused */
    if (st == TOME_OK && h->t.n == 0)
        st = tome_set_error(TOME_ERR_INVALID_ARG,
                            "haystack: %s holds no text (%zu files, %zu binary); give --haystack a directory of "
                            "text files",
                            desc, files.n, n_binary);
    strlist_free(&files);
    return st;
}

static int32_t hay_at(const hay *h, size_t i) { return h->t.ids[i % h->t.n]; }

/* A sentence ends before index i when token i-1 (its trailing whitespace
 * aside) ends in . ! or ?, or holds a blank line. */
static int is_boundary(const hay *h, const tome_tokenizer_t *tok, size_t i)
{
    if (i == 0) return 1;
    size_t len;
    const char *b = tome_tokenizer_token_bytes(tok, hay_at(h, i - 1), &len);
    if (!b) return 0;
    int nl = 0;
    while (len > 0 && isspace((unsigned char)b[len - 1])) nl += b[--len] == '\n';
    if (nl >= 2) return 1;
    return len > 0 && (b[len - 1] == '.' || b[len - 1] == '!' || b[len - 1] == '?');
}

static size_t find_boundary(const hay *h, const tome_tokenizer_t *tok, size_t target, size_t budget)
{
    for (size_t i = target; i <= budget && i < target + 8192; i++)
        if (is_boundary(h, tok, i)) return i;
    for (size_t i = target; i > 0 && i + 8192 > target; i--)
        if (is_boundary(h, tok, i)) return i;
    return target;
}

/* ------------------------------------------------------------ prompts */
typedef struct needle {
    int32_t key[2], val[3];
    size_t pos;            /* haystack index it is inserted before */
    int asked;
    tome_tokens_t ids;     /* the needle sentence                   */
} needle;

static tome_status enc(const tome_tokenizer_t *tok, const char *s, tome_tokens_t *out)
{
    tome_encode_opts eo = {.allow_special = 1};
    return tome_tokenizer_encode(tok, s, strlen(s), &eo, out);
}

static tome_status push(tome_tokens_t *t, const int32_t *ids, size_t n)
{
    if (t->n + n > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->n + n) cap *= 2;
        int32_t *v = realloc(t->ids, cap * sizeof *v);
        if (!v) return tome_set_error(TOME_ERR_NOMEM, "out of memory for %zu tokens", cap);
        t->ids = v, t->cap = cap;
    }
    memcpy(t->ids + t->n, ids, n * sizeof *ids);
    t->n += n;
    return TOME_OK;
}

static tome_status needle_build(const tome_tokenizer_t *tok, needle *nd)
{
    TOME_FORWARD(enc(tok, "The secret passphrase is:", &nd->ids));
    TOME_FORWARD(push(&nd->ids, nd->key, 2));
    TOME_FORWARD(push(&nd->ids, nd->val, 3));
    TOME_FORWARD(enc(tok, ". Again, the passphrase is:", &nd->ids));
    TOME_FORWARD(push(&nd->ids, nd->key, 2));
    TOME_FORWARD(push(&nd->ids, nd->val, 3));
    return enc(tok, ". ", &nd->ids);
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static const char *PREFIX = "<|begin_of_text|><|header_start|>user<|header_end|>\n\n";
static const char *QUESTION = "\n\nQuestion: the text above hides a secret passphrase. What is it?<|eot|>"
                              "<|header_start|>assistant<|header_end|>\n\nThe passphrase is:";
static const char *QUESTION_MV = "\n\nQuestion: the text above hides several secret passphrases that start with "
                                 "the same two words. List all of them.<|eot|>"
                                 "<|header_start|>assistant<|header_end|>\n\nThe passphrases are:";
static const char *FOLLOWUP = "<|header_start|>user<|header_end|>\n\nAnd the other passphrase?<|eot|>"
                              "<|header_start|>assistant<|header_end|>\n\nThe passphrase is:";

/* Tokens of a prompt that are not haystack: prefix, question, the key that
 * starts the answer, and the needle sentences (their words are single
 * tokens, so the count does not depend on which). */
static tome_status prompt_overhead(const tome_tokenizer_t *tok, int n_needles, tome_niah_variant variant,
                                   size_t *out)
{
    tome_tokens_t t = {0};
    needle nd;
    memset(&nd, 0, sizeof nd);
    tome_status st = enc(tok, PREFIX, &t);
    if (st == TOME_OK) st = enc(tok, variant == TOME_NIAH_MULTIVALUE ? QUESTION_MV : QUESTION, &t);
    if (st == TOME_OK) st = needle_build(tok, &nd);
    *out = t.n + 2 + (size_t)n_needles * nd.ids.n;
    tome_tokens_free(&t);
    tome_tokens_free(&nd.ids);
    return st;
}

/* ------------------------------------------------------------ scoring */
static void normalize(const char *s, tome_buf *out)
{
    int space = 1;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || c >= 0x80) {
            tome_buf_append(out, (char[]){(char)tolower(c)}, 1);
            space = 0;
        } else if (!space) {
            tome_buf_append(out, " ", 1);
            space = 1;
        }
    }
    while (out->len > 0 && out->data[out->len - 1] == ' ') out->len--;
    tome_buf_append(out, "", 1);
}

int tome_niah_contains(const char *answer, const char *expected)
{
    tome_buf a = {0}, e = {0};
    normalize(answer, &a);
    normalize(expected, &e);
    int r = a.data && e.data && strstr(a.data, e.data) != NULL;
    tome_buf_free(&a);
    tome_buf_free(&e);
    return r;
}

/* ------------------------------------------------------------ one cell */
static tome_status open_session(tome_model_t *m, const tome_niah_opts *o, int64_t cap, tome_session_t **out)
{
    TOME_FORWARD(tome_session_open(m, cap, o->ubatch, out));
    if (o->kv_fmt == 0 && o->kv_ram_budget == 0 && !o->kv_disk_dir) return TOME_OK;
    /* the session API has no KV options yet: reopen its cache with them */
    const tome_model_config_t *c = tome_model_get_config(m);
    int64_t window[TOME_MAX_LAYERS];
    for (int l = 0; l < c->n_layers; l++) window[l] = c->use_rope[l] ? c->attention_chunk_size : 0;
    tome_kv_params kp = {.n_layers = c->n_layers, .n_kv_heads = c->n_kv_heads, .head_dim = c->head_dim,
                         .n_seqs = 1, .max_tokens = cap, .window = window, .fmt = o->kv_fmt,
                         .ram_budget = o->kv_ram_budget, .disk_dir = o->kv_disk_dir};
    tome_kvcache *kv = NULL;
    tome_status st = tome_kv_open(&kp, &kv);
    if (st != TOME_OK) {
        tome_session_free(*out);
        *out = NULL;
        return st;
    }
    tome_kv_free((*out)->kv);
    (*out)->kv = kv;
    return TOME_OK;
}

static int32_t argmax(const float *x, size_t n)
{
    size_t b = 0;
    for (size_t i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return (int32_t)b;
}

typedef struct cell_ctx {
    const tome_niah_opts *o;
    tome_model_t *m;
    const hay *h;
    const int32_t *alpha; /* usable alphabet ids */
    size_t n_alpha;
    size_t index, n_cells;
} cell_ctx;

/* Multivalue: one answer of up to n·ANSWER_MAX greedy tokens after the
 * prefilled prompt (logits of its last position), scored against every
 * needle's value; fills the cell's answer, expected, expected_values, score
 * and KV bytes. */
static tome_status mv_answer(cell_ctx *cx, tome_session_t *s, float *logits, const needle *nd, int n,
                             tome_niah_cell *cell)
{
    const tome_niah_opts *o = cx->o;
    const tome_tokenizer_t *tok = o->tok;
    const size_t V = (size_t)tome_model_get_config(cx->m)->vocab_size;
    const size_t gmax = (size_t)n * ANSWER_MAX;
    int32_t gen[8 * ANSWER_MAX];
    size_t ng = 0;
    tome_status st = TOME_OK;
    int32_t t = argmax(logits, V);
    while (ng < gmax) {
        gen[ng++] = t;
        if (tome_model_is_eos(cx->m, t) || ng == gmax) break;
        if ((st = tome_session_eval(s, &t, 1, 0, logits)) != TOME_OK) return st;
        t = argmax(logits, V);
    }
    size_t n_ans = ng > 0 && tome_model_is_eos(cx->m, gen[ng - 1]) ? ng - 1 : ng;
    char *a = NULL;
    size_t al = 0;
    tome_buf joined = {0};
    cell->expected_values = calloc((size_t)n, sizeof *cell->expected_values);
    if (!cell->expected_values) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    cell->n_expected = n;
    st = tome_tokenizer_decode(tok, gen, n_ans, &a, &al);
    if (st == TOME_OK) {
        char *a2 = realloc(a, al + 1);
        if (!a2) st = tome_set_error(TOME_ERR_NOMEM, "out of memory");
        else a = a2, a[al] = 0;
    }
    int found = 0;
    for (int k = 0; k < n && st == TOME_OK; k++) {
        char *e = NULL;
        size_t el = 0;
        st = tome_tokenizer_decode(tok, nd[k].val, 3, &e, &el);
        if (st != TOME_OK) break;
        char *e2 = realloc(e, el + 1);
        if (!e2) {
            free(e);
            st = tome_set_error(TOME_ERR_NOMEM, "out of memory");
            break;
        }
        e = e2, e[el] = 0;
        cell->expected_values[k] = e;
        int ok = 0;
        if (o->exact) {
            for (size_t i = 0; i + 3 <= n_ans && !ok; i++) ok = !memcmp(gen + i, nd[k].val, sizeof nd[k].val);
        } else {
            ok = tome_niah_contains(a, e);
        }
        found += ok;
        if (k > 0) st = tome_buf_append(&joined, ";", 1);
        if (st == TOME_OK) st = tome_buf_append(&joined, e, el);
    }
    if (st != TOME_OK) {
        free(a);
        tome_buf_free(&joined);
        return st;
    }
    cell->n_right = found;
    cell->n_asked = n;
    cell->score = (double)found / n;
    cell->answer = a;
    cell->expected = joined.data; /* tome_buf keeps it NUL-terminated */
    tome_kv_stats ks;
    tome_kv_get_stats(s->kv, &ks);
    cell->kv_bytes_ram = ks.bytes_ram;
    cell->kv_bytes_disk = ks.bytes_disk;
    return TOME_OK;
}

static tome_status run_cell(cell_ctx *cx, int64_t L, double depth, tome_niah_cell *cell)
{
    const tome_niah_opts *o = cx->o;
    const tome_tokenizer_t *tok = o->tok;
    const tome_model_config_t *mc = tome_model_get_config(cx->m);
    int n_needles = o->variant == TOME_NIAH_SINGLE ? 1 : (o->n_needles > 0 ? o->n_needles : 4);
    if ((size_t)n_needles * 5 > cx->n_alpha)
        return tome_set_error(TOME_ERR_INVALID_ARG, "niah: %d needles need %d distinct words, the alphabet has %zu",
                              n_needles, n_needles * 5, cx->n_alpha);
    uint64_t rs = o->seed * 0x100000001b3ULL + cx->index * 7919 + 17;
    /* draw 5·n distinct words */
    int32_t words[64];
    size_t nw = (size_t)n_needles * 5;
    int32_t pool[256];
    memcpy(pool, cx->alpha, cx->n_alpha * sizeof *pool);
    for (size_t i = 0; i < nw; i++) {
        size_t j = i + (size_t)(rng_next(&rs) % (cx->n_alpha - i));
        int32_t t = pool[i];
        pool[i] = pool[j], pool[j] = t;
        words[i] = pool[i];
    }
    tome_tokens_t pre = {0}, q = {0}, fu = {0}, prompt = {0};
    needle nd[8];
    memset(nd, 0, sizeof nd);
    float *logits = NULL;
    tome_session_t *s = NULL;
    char *answer = NULL, *expected = NULL;
    size_t alen = 0, elen = 0;
    const int multivalue = o->variant == TOME_NIAH_MULTIVALUE;
    tome_status st = enc(tok, PREFIX, &pre);
    if (st == TOME_OK) st = enc(tok, multivalue ? QUESTION_MV : QUESTION, &q);
    if (st == TOME_OK) st = enc(tok, FOLLOWUP, &fu);
    size_t fixed = pre.n + q.n + 2;
    for (int i = 0; i < n_needles && st == TOME_OK; i++) {
        /* multivalue: every needle carries the first needle's key */
        memcpy(nd[i].key, words + 5 * (multivalue ? 0 : i), 2 * sizeof(int32_t));
        memcpy(nd[i].val, words + 5 * i + 2, 3 * sizeof(int32_t));
        st = needle_build(tok, &nd[i]);
        fixed += nd[i].ids.n;
    }
    if (st != TOME_OK) goto done;
    if ((int64_t)fixed + 16 > L) {
        st = tome_set_error(TOME_ERR_INVALID_ARG, "niah: a %lld-token prompt is too short for %d needles and the question",
                            (long long)L, n_needles);
        goto done;
    }
    size_t B = (size_t)L - fixed;
    nd[0].asked = 1;
    nd[0].pos = find_boundary(cx->h, tok, (size_t)floor(depth * (double)B + 0.5), B);
    if (nd[0].pos > B) nd[0].pos = B;
    for (int i = 1; i < n_needles; i++) {
        nd[i].asked = o->variant == TOME_NIAH_MULTIQUERY;
        nd[i].pos = find_boundary(cx->h, tok, (size_t)(rng_next(&rs) % (B + 1)), B);
        if (nd[i].pos > B) nd[i].pos = B;
    }
    /* prompt: prefix, haystack with needles in position order, question, key */
    st = push(&prompt, pre.ids, pre.n);
    {
        int order[8];
        for (int i = 0; i < n_needles; i++) order[i] = i;
        for (int i = 1; i < n_needles; i++)
            for (int j = i; j > 0 && nd[order[j]].pos < nd[order[j - 1]].pos; j--) {
                int t = order[j];
                order[j] = order[j - 1], order[j - 1] = t;
            }
        size_t hp = 0;
        if (st == TOME_OK && prompt.cap < (size_t)L + 64) {
            int32_t *v = realloc(prompt.ids, ((size_t)L + 64) * sizeof *v);
            if (!v) st = tome_set_error(TOME_ERR_NOMEM, "niah: out of memory for a %lld-token prompt", (long long)L);
            else prompt.ids = v, prompt.cap = (size_t)L + 64;
        }
        for (int k = 0; k <= n_needles && st == TOME_OK; k++) {
            size_t until = k < n_needles ? nd[order[k]].pos : B;
            for (; hp < until; hp++) prompt.ids[prompt.n++] = hay_at(cx->h, hp);
            if (k < n_needles) {
                if (nd[order[k]].asked && order[k] == 0) cell->needle_pos = (int64_t)prompt.n;
                st = push(&prompt, nd[order[k]].ids.ids, nd[order[k]].ids.n);
            }
        }
    }
    if (st == TOME_OK) st = push(&prompt, q.ids, q.n);
    if (st == TOME_OK) st = push(&prompt, nd[0].key, 2);
    if (st != TOME_OK) goto done;

    /* prefill */
    int n_asked = o->variant == TOME_NIAH_MULTIQUERY ? n_needles : 1;
    int64_t cap = multivalue ? (int64_t)prompt.n + (int64_t)n_needles * ANSWER_MAX + 8
                             : (int64_t)prompt.n + (int64_t)n_asked * (ANSWER_MAX + (int64_t)fu.n + 2) + 8;
    const size_t V = (size_t)mc->vocab_size;
    logits = malloc(V * sizeof *logits);
    if (!logits) {
        st = tome_set_error(TOME_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((st = open_session(cx->m, o, cap, &s)) != TOME_OK) goto done;
    double t0 = tome_now();
    const size_t piece = 65536;
    for (size_t done_n = 0; done_n < prompt.n && st == TOME_OK;) {
        size_t nb = prompt.n - done_n < piece ? prompt.n - done_n : piece;
        st = tome_session_eval(s, prompt.ids + done_n, nb, 0, done_n + nb == prompt.n ? logits : NULL);
        done_n += nb;
        if (o->progress) {
            tome_niah_progress p = {.cell = cx->index, .n_cells = cx->n_cells, .length = L, .depth = depth,
                                    .tokens_done = (int64_t)done_n, .tokens_total = (int64_t)prompt.n,
                                    .seconds = tome_now() - t0};
            o->progress(&p, o->progress_ctx);
        }
    }
    if (st != TOME_OK) goto done;
    cell->prefill_s = tome_now() - t0;
    t0 = tome_now();
    if (multivalue) {
        st = mv_answer(cx, s, logits, nd, n_needles, cell);
        if (st == TOME_OK) cell->decode_s = tome_now() - t0;
        goto done;
    }
    /* questions */
    int right = 0;
    int qi = 0;
    for (int k = 0; k < n_needles && st == TOME_OK; k++) {
        if (!nd[k].asked) continue;
        if (qi > 0) {
            /* follow-up turn: <|eot|> closed the answer; ask for the next one */
            tome_tokens_t f = {0};
            st = push(&f, fu.ids, fu.n);
            if (st == TOME_OK) st = push(&f, nd[k].key, 2);
            if (st == TOME_OK) st = tome_session_eval(s, f.ids, f.n, 0, logits);
            tome_tokens_free(&f);
            if (st != TOME_OK) break;
        }
        int32_t gen[ANSWER_MAX];
        size_t ng = 0;
        int32_t t = argmax(logits, V);
        while (ng < ANSWER_MAX) {
            gen[ng++] = t;
            if (tome_model_is_eos(cx->m, t)) break;
            if ((st = tome_session_eval(s, &t, 1, 0, logits)) != TOME_OK) break;
            t = argmax(logits, V);
        }
        if (st != TOME_OK) break;
        if (!tome_model_is_eos(cx->m, gen[ng - 1])) {
            /* close the turn so a follow-up reads as one */
            int32_t eot = tome_tokenizer_special_id(tok, "<|eot|>");
            if (eot >= 0 && (st = tome_session_eval(s, &eot, 1, 0, NULL)) != TOME_OK) break;
        }
        size_t n_ans = ng > 0 && tome_model_is_eos(cx->m, gen[ng - 1]) ? ng - 1 : ng;
        char *a = NULL, *e = NULL;
        size_t al = 0, el = 0;
        st = tome_tokenizer_decode(tok, gen, n_ans, &a, &al);
        if (st == TOME_OK) st = tome_tokenizer_decode(tok, nd[k].val, 3, &e, &el);
        if (st == TOME_OK) {
            char *a2 = realloc(a, al + 1), *e2 = realloc(e, el + 1);
            if (a2) a = a2;
            if (e2) e = e2;
            if (!a2 || !e2) st = tome_set_error(TOME_ERR_NOMEM, "out of memory");
            else {
                a[al] = 0, e[el] = 0;
                int ok = o->exact ? (n_ans == 3 && !memcmp(gen, nd[k].val, sizeof nd[k].val))
                                  : tome_niah_contains(a, e);
                right += ok;
                if (qi == 0) {
                    answer = a, expected = e, alen = al, elen = el;
                    a = e = NULL;
                }
            }
        }
        free(a);
        free(e);
        qi++;
    }
    if (st != TOME_OK) goto done;
    cell->decode_s = tome_now() - t0;
    cell->n_right = right;
    cell->n_asked = qi;
    cell->score = qi ? (double)right / qi : 0;
    cell->answer = answer, cell->expected = expected;
    answer = expected = NULL;
    tome_kv_stats ks;
    tome_kv_get_stats(s->kv, &ks);
    cell->kv_bytes_ram = ks.bytes_ram;
    cell->kv_bytes_disk = ks.bytes_disk;
    (void)alen, (void)elen;
done:
    tome_session_free(s);
    free(logits);
    free(answer);
    free(expected);
    tome_tokens_free(&pre);
    tome_tokens_free(&q);
    tome_tokens_free(&fu);
    tome_tokens_free(&prompt);
    for (int i = 0; i < 8; i++) tome_tokens_free(&nd[i].ids);
    return st;
}

static uint64_t peak_rss(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    uint64_t kb = 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) kb = strtoull(line + 6, NULL, 10);
    fclose(f);
    return kb * 1024;
}

static const char *kv_name(int f)
{
    static const char *n[] = {"f32", "bf16", "fp8", "int8", "int4", "int2"};
    return f >= 0 && f < 6 ? n[f] : "?";
}

tome_status tome_niah_run(const tome_niah_opts *o, tome_niah_result **out)
{
    *out = NULL;
    if (!o->tok || !o->model_dir || o->n_lengths == 0 || o->n_depths == 0)
        return tome_set_error(TOME_ERR_INVALID_ARG, "niah: model, tokenizer, lengths and depths are required");
    if (o->n_needles > 8) return tome_set_error(TOME_ERR_INVALID_ARG, "niah: at most 8 needles");
    tome_niah_result *r = calloc(1, sizeof *r);
    if (!r) return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    r->n_lengths = o->n_lengths, r->n_depths = o->n_depths;
    r->cells = calloc(o->n_lengths * o->n_depths, sizeof *r->cells);
    r->lengths = malloc(o->n_lengths * sizeof *r->lengths);
    r->depths = malloc(o->n_depths * sizeof *r->depths);
    if (!r->cells || !r->lengths || !r->depths) {
        tome_niah_result_free(r);
        return tome_set_error(TOME_ERR_NOMEM, "out of memory");
    }
    memcpy(r->lengths, o->lengths, o->n_lengths * sizeof *r->lengths);
    memcpy(r->depths, o->depths, o->n_depths * sizeof *r->depths);
    snprintf(r->model, sizeof r->model, "%s", o->model_dir);
    r->variant = o->variant == TOME_NIAH_MULTIKEY     ? "multikey"
                 : o->variant == TOME_NIAH_MULTIQUERY ? "multiquery"
                 : o->variant == TOME_NIAH_MULTIVALUE ? "multivalue"
                                                      : "single";
    r->scoring = o->exact ? "exact" : "contains";
    r->kv = kv_name(o->kv_fmt);
    double t_start = tome_now();
    int64_t longest = 0;
    for (size_t i = 0; i < o->n_lengths; i++) longest = o->lengths[i] > longest ? o->lengths[i] : longest;
    hay h;
    memset(&h, 0, sizeof h);
    tome_model_t *m = NULL;
    tome_status st = TOME_OK;
    {
        tome_model_opts mo = {.weights = (tome_weights_format)o->weights, .n_threads = o->n_threads};
        st = tome_model_open(o->model_dir, &mo, &m);
    }
    if (st == TOME_OK) st = tome_chat_check_vocab(m, o->model_dir, o->tok, NULL);
    /* every length must fit the fixed parts and the model, checked before
     * the first cell so that a bad entry late in the list costs no run */
    if (st == TOME_OK) {
        size_t fixed = 0;
        int n_needles = o->variant == TOME_NIAH_SINGLE ? 1 : (o->n_needles > 0 ? o->n_needles : 4);
        st = prompt_overhead(o->tok, n_needles, o->variant, &fixed);
        int64_t max_pos = tome_model_get_config(m)->max_position_embeddings;
        /* room after the prompt: 64 a question (multivalue: one answer of
         * n_needles · ANSWER_MAX tokens fits in 64 too) */
        int n_asked = o->variant == TOME_NIAH_MULTIQUERY ? n_needles : 1;
        for (size_t i = 0; i < o->n_lengths && st == TOME_OK; i++) {
            int64_t L = o->lengths[i];
            if (L < (int64_t)fixed + 16)
                st = tome_set_error(TOME_ERR_INVALID_ARG,
                                    "niah: length %lld is too short: the question and %d needle%s take %zu tokens, "
                                    "so a prompt needs at least %zu",
                                    (long long)L, n_needles, n_needles == 1 ? "" : "s", fixed, fixed + 16);
            else if (max_pos > 0 && L + (int64_t)n_asked * 64 > max_pos)
                st = tome_set_error(TOME_ERR_INVALID_ARG,
                                    "niah: length %lld (+ answers) is over the model's max_position_embeddings %lld",
                                    (long long)L, (long long)max_pos);
        }
    }
    if (st == TOME_OK)
        st = hay_load(o->haystack_dir, o->tok, (size_t)longest + 1024, &h, r->haystack, sizeof r->haystack);
    /* alphabet words absent from the haystack */
    int32_t alpha[256];
    size_t n_alpha = 0;
    if (st == TOME_OK) {
        const int32_t *ids;
        size_t n = tome_synthetic_alphabet(NULL, &ids);
        size_t scan = h.t.n < (size_t)longest ? h.t.n : (size_t)longest;
        for (size_t i = 0; i < n && n_alpha < 256; i++) {
            int seen = 0;
            for (size_t j = 0; j < scan && !seen; j++) seen = h.t.ids[j] == ids[i];
            if (!seen) alpha[n_alpha++] = ids[i];
        }
    }
    cell_ctx cx = {.o = o, .m = m, .h = &h, .alpha = alpha, .n_alpha = n_alpha,
                   .n_cells = o->n_lengths * o->n_depths};
    for (size_t i = 0; i < o->n_lengths && st == TOME_OK; i++)
        for (size_t j = 0; j < o->n_depths && st == TOME_OK; j++) {
            tome_niah_cell *c = &r->cells[i * o->n_depths + j];
            c->length = o->lengths[i], c->depth = o->depths[j];
            cx.index = i * o->n_depths + j;
            st = run_cell(&cx, o->lengths[i], o->depths[j], c);
            if (st != TOME_OK)
                st = tome_error_prefix(st, "niah cell length %lld depth %.4g%%",
                                       (long long)o->lengths[i], 100 * o->depths[j]);
        }
    tome_model_free(m);
    tome_tokens_free(&h.t);
    r->seconds = tome_now() - t_start;
    r->peak_rss = peak_rss();
    if (st != TOME_OK) {
        tome_niah_result_free(r);
        return st;
    }
    *out = r;
    return TOME_OK;
}

void tome_niah_result_free(tome_niah_result *r)
{
    if (!r) return;
    if (r->cells)
        for (size_t i = 0; i < r->n_lengths * r->n_depths; i++) {
            tome_niah_cell *c = &r->cells[i];
            free(c->answer), free(c->expected);
            for (int k = 0; k < c->n_expected; k++) free(c->expected_values[k]);
            free(c->expected_values);
        }
    free(r->cells);
    free(r->lengths);
    free(r->depths);
    free(r);
}
