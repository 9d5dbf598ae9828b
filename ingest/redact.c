/*
 * ingest/redact.c — tome_redact: secrets in text → "[REDACTED:<kind>]".
 *
 * Rules are PCRE2 patterns (compiled once, JIT when available, byte mode so
 * invalid UTF-8 never makes a match fail), each with a kind, the capture
 * group that holds the secret, and a scope:
 *
 *   kind            what                                            scope
 *   private-key     PEM / OpenSSH / PGP private key blocks          all files
 *                   (also a truncated block: BEGIN + base64 lines)
 *   aws-access-key  AKIA/ASIA/... + 16                              all
 *   aws-secret-key  40 base64 chars assigned to an aws*secret* key  all
 *   github-token    ghp_ gho_ ghu_ ghs_ ghr_ github_pat_            all
 *   gitlab-token    glpat-                                          all
 *   slack-token     xoxb- xoxp- xoxa- xoxo- xoxs- xoxr-; webhooks   all
 *   google-api-key  AIza + 35                                       all
 *   stripe-key      sk_live_ sk_test_ rk_live_ rk_test_             all
 *   jwt             eyJ... . eyJ... . sig                           all
 *   url-password    the password of scheme://user:password@host     all
 *   password/secret a value assigned to a key ending in password,   config files
 *                   secret, token, api_key, ... (placeholders like
 *                   ${VAR}, {{ x }}, <x>, booleans, null are kept)
 *   high-entropy    a long base64/hex literal assigned to a key     all but lock
 *                   that names a secret (key, token, secret, auth,  files; unquoted
 *                   salt, ...): Shannon entropy ≥ 3.7 bits/char     values only in
 *                   (base64, ≥ 20 chars, upper+lower+digits; any    config files
 *                   mix at ≥ 4.3) or ≥ 3.0 (hex, ≥ 32 chars, with
 *                   digits and letters); keys naming hashes
 *                   (sha, hash, checksum, integrity, digest, public,
 *                   fingerprint, commit, ...) and UUID values are kept
 *
 * Config files: .env, .env.*, *.env, *.ini, *.cfg, *.conf, *.cnf, *.yaml,
 * *.yml, *.toml, *.json, *.json5, *.properties, *.tfvars, .npmrc, .pypirc,
 * .netrc, credentials, docker-compose*. Lock files (package-lock.json,
 * yarn.lock, Cargo.lock, go.sum, *.lock, ...) get only the token-shaped and
 * key-block rules: their hashes are not secrets.
 *
 * Overlaps: all matches are collected, sorted by start (longer first), and
 * the earliest wins; later overlapping ones are dropped. Replacement keeps
 * every '\r' and '\n' of the secret after the marker, so line numbers of
 * all following text are unchanged (a 27-line PEM key becomes the marker
 * plus 26 empty lines).
 *
 * Every pattern starts with a literal or a line anchor and all repetitions
 * around the key names are bounded, so matching stays linear on minified or
 * base64-heavy files.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "ingest/ingest_impl.h"

enum { SCOPE_ALL = 0, SCOPE_CONFIG = 1, SCOPE_NOT_LOCK = 2 };
enum { CHECK_NONE = 0, CHECK_URL = 1, CHECK_CONFIG_VALUE = 2, CHECK_ENTROPY = 3 };

typedef struct rule {
    const char *kind;
    const char *pattern;
    int scope;
    int check;
} rule;

/* The secret is the first capture group that is set, or the whole match
 * when the pattern has no groups. */
static const rule g_rules[] = {
    {"private-key",
     "-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----"
     "[A-Za-z0-9+/=\\s:,.\\-\"'\\\\]{32,}?"
     "-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----",
     SCOPE_ALL, CHECK_NONE},
    {"private-key",
     "-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----(?:\\r?\\n[A-Za-z0-9+/=:,\\- ]{16,})+",
     SCOPE_ALL, CHECK_NONE},
    {"aws-access-key", "\\b(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}\\b", SCOPE_ALL, CHECK_NONE},
    {"aws-secret-key",
     "(?i:aws)[A-Za-z0-9_.\\-]{0,30}(?i:secret|sk)[A-Za-z0-9_.\\-]{0,30}[\"']?[ \\t]*(?::=|=>|[:=])[ \\t]*"
     "[\"']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])",
     SCOPE_ALL, CHECK_NONE},
    {"github-token", "\\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\\b", SCOPE_ALL,
     CHECK_NONE},
    {"gitlab-token", "\\bglpat-[A-Za-z0-9_\\-]{20,}", SCOPE_ALL, CHECK_NONE},
    {"slack-token", "\\bxox[abposr]-[A-Za-z0-9\\-]{10,}", SCOPE_ALL, CHECK_NONE},
    {"slack-webhook", "https://hooks\\.slack\\.com/services/[A-Za-z0-9_/]{20,}", SCOPE_ALL, CHECK_NONE},
    {"google-api-key", "\\bAIza[0-9A-Za-z_\\-]{35}(?![0-9A-Za-z_\\-])", SCOPE_ALL, CHECK_NONE},
    {"stripe-key", "\\b(?:sk|rk)_(?:live|test)_[0-9a-zA-Z]{16,}\\b", SCOPE_ALL, CHECK_NONE},
    {"jwt", "\\beyJ[A-Za-z0-9_\\-]{10,}\\.eyJ[A-Za-z0-9_\\-]{10,}\\.[A-Za-z0-9_\\-]{10,}", SCOPE_ALL,
     CHECK_NONE},
    {"url-password",
     "\\b[A-Za-z][A-Za-z0-9+.\\-]{1,20}://[^\\s:/@'\"<>]{1,128}:([^\\s:/@'\"<>]{1,256})@[A-Za-z0-9.\\-\\[\\]]+",
     SCOPE_ALL, CHECK_URL},
    {"password",
     "(?im)^[ \\t]*(?:-[ \\t]+)?(?:export[ \\t]+)?[\"']?[A-Za-z0-9_.\\-]{0,64}?"
     "(?:password|passwd|passphrase|pwd|secret|api[_.\\-]?key|apikey|access[_.\\-]?key|"
     "auth[_.\\-]?token|access[_.\\-]?token|refresh[_.\\-]?token|token|private[_.\\-]?key|credentials?)"
     "[\"']?[ \\t]*[:=][ \\t]*(?:\"([^\"\\r\\n]+)\"|'([^'\\r\\n]+)'|([^\\s\"'#;,]+))",
     SCOPE_CONFIG, CHECK_CONFIG_VALUE},
    {"high-entropy",
     "(?i:key|secret|token|passw(?:or)?d|pwd|auth|credential|private|signature|salt|cookie|session)"
     "[A-Za-z0-9_.\\-]{0,40}[\"']?[ \\t]*(?::=|=>|[:=])[ \\t]*"
     "(?:[\"'`]([A-Za-z0-9+/=_\\-]{20,512}+)[\"'`]|([A-Za-z0-9+/=_\\-]{20,512}+)(?![A-Za-z0-9+/=_\\-]))",
     SCOPE_NOT_LOCK, CHECK_ENTROPY},
};
#define N_RULES (sizeof g_rules / sizeof g_rules[0])

static pcre2_code *g_code[N_RULES];
static int g_init_failed;
static char g_init_msg[256];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void compile_rules(void)
{
    for (size_t i = 0; i < N_RULES; i++) {
        int err;
        PCRE2_SIZE off;
        g_code[i] = pcre2_compile((PCRE2_SPTR)g_rules[i].pattern, PCRE2_ZERO_TERMINATED, 0, &err, &off, NULL);
        if (!g_code[i]) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(err, msg, sizeof msg);
            snprintf(g_init_msg, sizeof g_init_msg, "redact: rule %zu (%s) at offset %zu: %s", i,
                     g_rules[i].kind, (size_t)off, (const char *)msg);
            g_init_failed = 1;
            return;
        }
        pcre2_jit_compile(g_code[i], PCRE2_JIT_COMPLETE); /* falls back to the interpreter */
    }
}

/* ------------------------------------------------------------ file kinds */

static const char *basename_of(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static int ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

static int is_lock_file(const char *name)
{
    static const char *const names[] = {"package-lock.json", "npm-shrinkwrap.json", "pnpm-lock.yaml",
                                        "go.sum", "packages.lock.json", "yarn.lock", "Cargo.lock",
                                        "poetry.lock", "Pipfile.lock", "composer.lock", "Gemfile.lock"};
    for (size_t i = 0; i < TOME_ARRAY_LEN(names); i++)
        if (strcmp(name, names[i]) == 0) return 1;
    return ends_with(name, ".lock");
}

static int is_config_file(const char *name)
{
    if (strcmp(name, ".env") == 0 || strncmp(name, ".env.", 5) == 0 || ends_with(name, ".env")) return 1;
    static const char *const names[] = {".npmrc", ".pypirc", ".netrc", "credentials", ".git-credentials",
                                        ".dockercfg", ".htpasswd", ".s3cfg", ".boto"};
    for (size_t i = 0; i < TOME_ARRAY_LEN(names); i++)
        if (strcmp(name, names[i]) == 0) return 1;
    if (strncmp(name, "docker-compose", 14) == 0) return 1;
    static const char *const exts[] = {".ini", ".cfg", ".conf", ".cnf", ".yaml", ".yml", ".toml",
                                       ".json", ".json5", ".properties", ".tfvars", ".config"};
    for (size_t i = 0; i < TOME_ARRAY_LEN(exts); i++)
        if (ends_with(name, exts[i])) return 1;
    return 0;
}

/* ------------------------------------------------------------ checks */

static double entropy_bits(const char *s, size_t n)
{
    unsigned counts[256] = {0};
    for (size_t i = 0; i < n; i++) counts[(unsigned char)s[i]]++;
    double h = 0;
    for (int c = 0; c < 256; c++) {
        if (!counts[c]) continue;
        double p = (double)counts[c] / (double)n;
        h -= p * log2(p);
    }
    return h;
}

static int ieq(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && strncasecmp(s, lit, n) == 0;
}

static int is_placeholder(const char *v, size_t n)
{
    if (n == 0) return 1;
    if (v[0] == '$' || v[0] == '<' || v[0] == '%' || v[0] == '!' || v[0] == '@' || v[0] == '*' ||
        (n >= 2 && v[0] == '{' && v[1] == '{'))
        return 1;
    static const char *const words[] = {"null", "none", "nil", "true", "false", "yes", "no",
                                        "undefined", "required", "optional", "empty", "string", "str"};
    for (size_t i = 0; i < TOME_ARRAY_LEN(words); i++)
        if (ieq(v, n, words[i])) return 1;
    int all_x = 1, all_digit = n <= 5;
    for (size_t i = 0; i < n; i++) {
        if (v[i] != 'x' && v[i] != 'X' && v[i] != '*' && v[i] != '.') all_x = 0;
        if (v[i] < '0' || v[i] > '9') all_digit = 0;
    }
    return all_x || all_digit;
}

static int contains_ci(const char *s, size_t n, const char *lit)
{
    size_t m = strlen(lit);
    for (size_t i = 0; i + m <= n; i++)
        if (strncasecmp(s + i, lit, m) == 0) return 1;
    return 0;
}

static int is_uuid(const char *v, size_t n)
{
    if (n != 36) return 0;
    for (size_t i = 0; i < n; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        char c = v[i];
        int hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        if (dash ? c != '-' : !hex) return 0;
    }
    return 1;
}

/* The key name around the match start: identifier characters before it,
 * and up to the assignment after it. */
static void key_span(const char *text, size_t start, size_t end, size_t *ks, size_t *ke)
{
    size_t a = start;
    while (a > 0 && start - a < 64) {
        char c = text[a - 1];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
            c == '-' || c == '.')
            a--;
        else
            break;
    }
    size_t b = start;
    while (b < end) {
        char c = text[b];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
            c == '-' || c == '.')
            b++;
        else
            break;
    }
    *ks = a;
    *ke = b;
}

static int high_entropy_ok(const char *text, size_t mstart, const char *v, size_t n, int unquoted,
                           int config)
{
    if (unquoted && !config) return 0;
    size_t ks, ke;
    key_span(text, mstart, mstart + 64, &ks, &ke);
    static const char *const hashy[] = {"hash", "sha", "md5", "checksum", "digest", "integrity",
                                        "commit", "fingerprint", "etag", "public", "pubkey",
                                        "publishable", "uuid", "guid", "revision", "version"};
    for (size_t i = 0; i < TOME_ARRAY_LEN(hashy); i++)
        if (contains_ci(text + ks, ke - ks, hashy[i])) return 0;
    if (is_uuid(v, n)) return 0;
    int lower = 0, upper = 0, digit = 0, hex = 1;
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (c >= 'a' && c <= 'z') lower++;
        else if (c >= 'A' && c <= 'Z') upper++;
        else if (c >= '0' && c <= '9') digit++;
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) hex = 0;
    }
    double h = entropy_bits(v, n);
    if (hex) return n >= 32 && h >= 3.0 && digit && (lower || upper);
    /* mixed case and digits (random base64), or very high entropy; a
     * snake_case identifier with a version digit is neither */
    return n >= 20 && digit && ((upper && lower && h >= 3.7) || h >= 4.3);
}

/* ------------------------------------------------------------ matching */

typedef struct hit {
    size_t start, end; /* the secret's bytes */
    size_t rule;
    const char *kind;
} hit;

static int hit_cmp(const void *a, const void *b)
{
    const hit *x = a, *y = b;
    if (x->start != y->start) return x->start < y->start ? -1 : 1;
    if (x->end != y->end) return x->end > y->end ? -1 : 1;
    return x->rule < y->rule ? -1 : x->rule > y->rule;
}

static tome_status add_hit(hit **v, size_t *n, size_t *cap, hit h)
{
    if (*n == *cap) {
        size_t nc = *cap ? 2 * *cap : 16;
        hit *nv = realloc(*v, nc * sizeof *nv);
        if (!nv) return tome_set_error(TOME_ERR_NOMEM, "redact: out of memory");
        *v = nv;
        *cap = nc;
    }
    (*v)[(*n)++] = h;
    return TOME_OK;
}

tome_status tome_redact(const char *path, tome_buf *text, tome_redaction **out, size_t *n_out)
{
    TOME_RETURN_IF(!text, TOME_ERR_INVALID_ARG, "redact: no text");
    if (out) *out = NULL;
    if (n_out) *n_out = 0;
    pthread_once(&g_once, compile_rules);
    if (g_init_failed) return tome_set_error(TOME_ERR_INTERNAL, "%s", g_init_msg);
    if (!text->data || text->len == 0) return TOME_OK;

    const char *name = basename_of(path ? path : "");
    int config = is_config_file(name), lock = is_lock_file(name);
    const char *s = text->data;
    size_t len = text->len;

    hit *hits = NULL;
    size_t n_hits = 0, cap_hits = 0;
    tome_status st = TOME_OK;
    pcre2_match_data *md = pcre2_match_data_create(8, NULL);
    if (!md) return tome_set_error(TOME_ERR_NOMEM, "redact: out of memory");

    for (size_t r = 0; r < N_RULES && st == TOME_OK; r++) {
        const rule *ru = &g_rules[r];
        if (ru->scope == SCOPE_CONFIG && (!config || lock)) continue;
        if (ru->scope == SCOPE_NOT_LOCK && lock) continue;
        size_t pos = 0;
        while (pos < len) {
            int rc = pcre2_match(g_code[r], (PCRE2_SPTR)s, len, pos, 0, md, NULL);
            if (rc < 0) {
                if (rc != PCRE2_ERROR_NOMATCH) {
                    /* e.g. a match limit on a pathological line: skip this rule, keep going */
                }
                break;
            }
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            size_t m0 = ov[0], m1 = ov[1];
            size_t a = m0, b = m1;
            int group = 0;
            for (int g = 1; g < rc; g++) {
                if (ov[2 * g] != PCRE2_UNSET) {
                    a = ov[2 * g];
                    b = ov[2 * g + 1];
                    group = g;
                    break;
                }
            }
            int ok = 1;
            const char *kind = ru->kind;
            if (ru->check == CHECK_URL) {
                ok = !is_placeholder(s + a, b - a) && s[a] != '{';
            } else if (ru->check == CHECK_CONFIG_VALUE) {
                ok = !is_placeholder(s + a, b - a) && b - a >= 3;
                /* the key: from the first name character after the indent to the keyword end */
                size_t ks = m0;
                while (ks < a && (s[ks] == ' ' || s[ks] == '\t' || s[ks] == '-' || s[ks] == '"' || s[ks] == '\''))
                    ks++;
                if (ks + 7 <= a && strncasecmp(s + ks, "export", 6) == 0 && (s[ks + 6] == ' ' || s[ks + 6] == '\t'))
                    ks += 7;
                kind = (contains_ci(s + ks, a - ks, "pass") || contains_ci(s + ks, a - ks, "pwd")) ? "password"
                                                                                                 : "secret";
            } else if (ru->check == CHECK_ENTROPY) {
                ok = high_entropy_ok(s, m0, s + a, b - a, group == 2, config);
            }
            if (ok && b > a) {
                hit h = {a, b, r, kind};
                st = add_hit(&hits, &n_hits, &cap_hits, h);
                if (st != TOME_OK) break;
            }
            pos = m1 > m0 ? m1 : m0 + 1;
        }
    }
    pcre2_match_data_free(md);
    if (st != TOME_OK || n_hits == 0) {
        free(hits);
        return st;
    }

    qsort(hits, n_hits, sizeof *hits, hit_cmp);
    /* keep the earliest of overlapping hits */
    size_t kept = 0;
    size_t last_end = 0;
    for (size_t i = 0; i < n_hits; i++) {
        if (kept && hits[i].start < last_end) continue;
        hits[kept++] = hits[i];
        last_end = hits[i].end;
    }

    tome_buf nb = {0};
    tome_redaction *red = NULL;
    if (out) {
        red = malloc(kept * sizeof *red);
        if (!red) {
            free(hits);
            return tome_set_error(TOME_ERR_NOMEM, "redact: out of memory");
        }
    }
    st = tome_buf_reserve(&nb, len + kept * 24);
    size_t pos = 0;
    uint32_t line = 1;
    for (size_t i = 0; i < kept && st == TOME_OK; i++) {
        const hit *h = &hits[i];
        for (size_t k = pos; k < h->start; k++) line += s[k] == '\n';
        if (red) {
            red[i].line = line;
            red[i].kind = h->kind;
        }
        st = tome_buf_append(&nb, s + pos, h->start - pos);
        if (st == TOME_OK) st = tome_buf_appendf(&nb, "[REDACTED:%s]", h->kind);
        for (size_t k = h->start; k < h->end && st == TOME_OK; k++) {
            if (s[k] == '\n' || s[k] == '\r') st = tome_buf_putc(&nb, s[k]);
            line += s[k] == '\n';
        }
        pos = h->end;
    }
    if (st == TOME_OK) st = tome_buf_append(&nb, s + pos, len - pos);
    free(hits);
    if (st != TOME_OK) {
        tome_buf_free(&nb);
        free(red);
        return st;
    }
    tome_buf_free(text);
    *text = nb;
    if (out) *out = red;
    if (n_out) *n_out = kept;
    return TOME_OK;
}
