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
 * Speed (matching stays linear on minified or base64-heavy files): token
 * patterns start with a literal; the URL rule is anchored on "://" and its
 * scheme checked in C; the key-name rules take the name possessively from
 * its first character (lookbehind) and test the key words in C; the
 * high-entropy rule runs only on small windows around an '=' / ':' (found
 * with memchr) that is followed by a long value run with a digit. On a
 * checkout of git/git (48 MB of text) all rules together take ~0.3 s on one
 * core of the shared 2-core VM.
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
    int key_group; /* capture group holding the key name (0: none)         */
} rule;

/* The secret is the first capture group after key_group that is set, or
 * the whole match when there is none. Patterns that look at key names
 * start only at the beginning of a name (lookbehind) and take the name
 * possessively, so each byte is visited a bounded number of times; the
 * key-word tests happen in C on the captured name. */
#define KEYCH "A-Za-z0-9_.\\-"
#define VALCH "A-Za-z0-9+/=_\\-"
static const rule g_rules[] = {
    {"private-key",
     "-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----"
     "(?:[A-Za-z0-9+/=\\s:,.\"'\\\\]|-(?!----)){32,}+" /* never crosses a "-----" */
     "-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----",
     SCOPE_ALL, CHECK_NONE, 0},
    {"private-key",
     "-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----(?:\\r?\\n[A-Za-z-]{1,32}: [^\\r\\n]*)*"
     "(?:\\r?\\n[A-Za-z0-9+/=]{16,}+\\r?(?=\\n|$))+",
     SCOPE_ALL, CHECK_NONE, 0},
    {"aws-access-key", "\\b(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}\\b", SCOPE_ALL, CHECK_NONE, 0},
    {"aws-secret-key",
     "(?i:aws)[" KEYCH "]{0,30}(?i:secret|sk)[" KEYCH "]{0,30}+[\"']?[ \\t]*(?::=|=>|[:=])[ \\t]*"
     "[\"']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])",
     SCOPE_ALL, CHECK_NONE, 0},
    {"github-token", "\\b(?:gh[pousr]_[A-Za-z0-9]{36,255}+|github_pat_[A-Za-z0-9_]{22,255}+)\\b", SCOPE_ALL,
     CHECK_NONE, 0},
    {"gitlab-token", "\\bglpat-[A-Za-z0-9_\\-]{20,}", SCOPE_ALL, CHECK_NONE, 0},
    {"slack-token", "\\bxox[abposr]-[A-Za-z0-9\\-]{10,}", SCOPE_ALL, CHECK_NONE, 0},
    {"slack-webhook", "https://hooks\\.slack\\.com/services/[A-Za-z0-9_/]{20,}", SCOPE_ALL, CHECK_NONE, 0},
    {"google-api-key", "AIza[0-9A-Za-z_\\-]{35}(?![0-9A-Za-z_\\-])", SCOPE_ALL, CHECK_NONE, 0},
    {"stripe-key", "\\b(?:sk|rk)_(?:live|test)_[0-9a-zA-Z]{16,}+\\b", SCOPE_ALL, CHECK_NONE, 0},
    {"jwt", "(?<![A-Za-z0-9_\\-])eyJ[A-Za-z0-9_\\-]{10,}+\\.eyJ[A-Za-z0-9_\\-]{10,}+\\.[A-Za-z0-9_\\-]{10,}+", SCOPE_ALL,
     CHECK_NONE, 0},
    /* anchored on the literal "://"; the scheme before it is checked in C */
    {"url-password", "://[^\\s:/@'\"<>]{1,128}+:([^\\s:/@'\"<>]{1,256}+)@[A-Za-z0-9.\\-\\[\\]]", SCOPE_ALL,
     CHECK_URL, 0},
    {"password",
     "(?m)^[ \\t]*(?:-[ \\t]+)?(?:export[ \\t]+)?[\"']?([" KEYCH "]{1,80}+)[\"']?[ \\t]*[:=][ \\t]*"
     "(?:\"([^\"\\r\\n]+)\"|'([^'\\r\\n]+)'|([^\\s\"'#;,]+))",
     SCOPE_CONFIG, CHECK_CONFIG_VALUE, 1},
    {"high-entropy",
     "(?<![" KEYCH "])([" KEYCH "]{1,80}+)[\"']?[ \\t]*(?::=|=>|[:=])[ \\t]*"
     "(?:[\"'`]([" VALCH "]{20,512}+)[\"'`]|([" VALCH "]{20,512}+)(?![" VALCH "]))",
     SCOPE_NOT_LOCK, CHECK_ENTROPY, 1},
};
#define N_RULES (sizeof g_rules / sizeof g_rules[0])

static pcre2_code *g_code[N_RULES];
static int g_init_failed;
static char g_init_msg[256];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void init_valch(void);

static void compile_rules(void)
{
    init_valch();
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

/* The key name lowercased without '_', '-', '.' (at most 127 bytes). */
static size_t norm_key(const char *k, size_t n, char *out)
{
    size_t m = 0;
    for (size_t i = 0; i < n && m < 127; i++) {
        char c = k[i];
        if (c == '_' || c == '-' || c == '.') continue;
        out[m++] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    out[m] = '\0';
    return m;
}

/* Config rule: the key's last word names a secret. */
static int key_names_secret(const char *k, size_t n)
{
    char nk[128];
    size_t m = norm_key(k, n, nk);
    static const char *const ends[] = {"password", "passwd", "passphrase", "pwd", "secret", "apikey",
                                       "accesskey", "token", "privatekey", "credential", "credentials"};
    for (size_t i = 0; i < TOME_ARRAY_LEN(ends); i++) {
        size_t e = strlen(ends[i]);
        if (m >= e && memcmp(nk + m - e, ends[i], e) == 0) return 1;
    }
    return 0;
}

static int high_entropy_ok(const char *key, size_t key_len, const char *v, size_t n, int unquoted, int config)
{
    if (unquoted && !config) return 0;
    char nk[128];
    norm_key(key, key_len, nk);
    static const char *const secretish[] = {"key", "secret", "token", "passwd", "password", "pwd", "auth",
                                            "credential", "private", "signature", "salt", "cookie", "session"};
    int named = 0;
    for (size_t i = 0; i < TOME_ARRAY_LEN(secretish) && !named; i++) named = strstr(nk, secretish[i]) != NULL;
    if (!named) return 0;
    static const char *const hashy[] = {"hash", "sha", "md5", "checksum", "digest", "integrity",
                                        "commit", "fingerprint", "etag", "public", "pubkey",
                                        "publishable", "uuid", "guid", "revision", "version"};
    for (size_t i = 0; i < TOME_ARRAY_LEN(hashy); i++)
        if (strstr(nk, hashy[i])) return 0;
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

/* "scheme" just before "://" at pos: a letter, then letters, digits, + . - */
static int scheme_before(const char *s, size_t pos)
{
    size_t a = pos;
    while (a > 0 && pos - a < 32) {
        char c = s[a - 1];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '.' ||
            c == '-')
            a--;
        else
            break;
    }
    while (a < pos && !((s[a] >= 'A' && s[a] <= 'Z') || (s[a] >= 'a' && s[a] <= 'z'))) a++;
    return pos - a >= 2;
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

typedef struct scan_ctx {
    const char *s;
    int config;
    pcre2_match_data *md;
    hit *hits;
    size_t n_hits, cap_hits;
} scan_ctx;

/* Runs rule r over s[pos, subj_len) (lookbehinds may see bytes before pos). */
static tome_status scan_range(scan_ctx *c, size_t r, size_t subj_len, size_t pos)
{
    const rule *ru = &g_rules[r];
    const char *s = c->s;
    pcre2_match_data *md = c->md;
    int config = c->config;
    while (pos < subj_len) {
        int rc = pcre2_match(g_code[r], (PCRE2_SPTR)s, subj_len, pos, 0, md, NULL);
        if (rc < 0) {
            if (rc != PCRE2_ERROR_NOMATCH) {
                /* e.g. a match limit on a pathological line: skip this rule, keep going */
            }
            break;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t m0 = ov[0], m1 = ov[1];
        size_t a = m0, b = m1;
        size_t ka = 0, kb = 0;
        int group = 0;
        if (ru->key_group && ru->key_group < rc && ov[2 * ru->key_group] != PCRE2_UNSET) {
            ka = ov[2 * ru->key_group];
            kb = ov[2 * ru->key_group + 1];
        }
        for (int g = ru->key_group + 1; g < rc; g++) {
            if (ov[2 * g] != PCRE2_UNSET) {
                a = ov[2 * g];
                b = ov[2 * g + 1];
                group = g - ru->key_group; /* 1-based among the value groups */
                break;
            }
        }
        int ok = 1;
        const char *kind = ru->kind;
        if (ru->check == CHECK_URL) {
            ok = scheme_before(s, m0) && !is_placeholder(s + a, b - a) && s[a] != '{';
        } else if (ru->check == CHECK_CONFIG_VALUE) {
            ok = key_names_secret(s + ka, kb - ka) && !is_placeholder(s + a, b - a) && b - a >= 3;
            kind = (contains_ci(s + ka, kb - ka, "pass") || contains_ci(s + ka, kb - ka, "pwd")) ? "password"
                                                                                                 : "secret";
        } else if (ru->check == CHECK_ENTROPY) {
            ok = high_entropy_ok(s + ka, kb - ka, s + a, b - a, group == 2, config);
        }
        if (ok && b > a) {
            hit h = {a, b, r, kind};
            TOME_FORWARD(add_hit(&c->hits, &c->n_hits, &c->cap_hits, h));
        }
        pos = m1 > m0 ? m1 : m0 + 1;
    }
    return TOME_OK;
}

static unsigned char g_valch[256];
static void init_valch(void)
{
    const char *v = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=_-";
    for (; *v; v++) g_valch[(unsigned char)*v] = (*v >= '0' && *v <= '9') ? 2 : 1;
}

/* The high-entropy rule only runs near an assignment operator ('=' or ':',
 * found with memchr) that is followed by optional spaces / a quote and a
 * run of >= 20 value characters containing a digit (the rule's checks need
 * one): on a window from up to 200 bytes before the operator (not before
 * its line) to one byte after the run. */
static tome_status scan_windows(scan_ctx *c, size_t r, size_t len)
{
    const unsigned char *u = (const unsigned char *)c->s;
    static const char ops[2] = {'=', ':'};
    for (int o = 0; o < 2; o++) {
        size_t done_to = 0; /* windows already scanned end here */
        const unsigned char *p = u;
        while ((p = memchr(p, ops[o], len - (size_t)(p - u))) != NULL) {
            size_t op = (size_t)(p - u);
            p++;
            size_t q = op + 1;
            if (q < len && (u[q] == '=' || u[q] == '>')) q++;
            while (q < len && (u[q] == ' ' || u[q] == '\t')) q++;
            if (q < len && (u[q] == '"' || u[q] == '\'' || u[q] == '`')) q++;
            size_t rs = q;
            unsigned any = 0;
            while (q < len && g_valch[u[q]]) any |= g_valch[u[q++]];
            /* no operator inside this run can start a value: go past it
             * (keeps a long run of '='-containing base64 linear) */
            if (q > op + 1) p = u + q;
            if (q - rs < 20 || q - rs > 512 || !(any & 2)) continue;
            size_t we = q < len ? q + 1 : len;
            if (we <= done_to) continue;
            size_t ws = op > 200 ? op - 200 : 0;
            for (size_t k = op; k > ws; k--) {
                if (u[k - 1] == '\n') {
                    ws = k;
                    break;
                }
            }
            TOME_FORWARD(scan_range(c, r, we, ws));
            done_to = we;
        }
    }
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
    size_t n_hits = 0;
    tome_status st = TOME_OK;
    pcre2_match_data *md = pcre2_match_data_create(8, NULL);
    if (!md) return tome_set_error(TOME_ERR_NOMEM, "redact: out of memory");

    scan_ctx c = {s, config, md, NULL, 0, 0};
    for (size_t r = 0; r < N_RULES && st == TOME_OK; r++) {
        const rule *ru = &g_rules[r];
        if (ru->scope == SCOPE_CONFIG && (!config || lock)) continue;
        if (ru->scope == SCOPE_NOT_LOCK && lock) continue;
        st = ru->check == CHECK_ENTROPY ? scan_windows(&c, r, len) : scan_range(&c, r, len, 0);
    }
    hits = c.hits;
    n_hits = c.n_hits;
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
