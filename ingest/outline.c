/*
 * ingest/outline.c — tome_outline: the lines that summarise a file
 * (signatures, type declarations, headings), with their original line
 * numbers, for files the pack degrades from full text to outline.
 *
 * The language comes from the file name (extension or well-known name such
 * as Makefile, Dockerfile, CMakeLists.txt), else from a "#!" line. Each
 * language has one PCRE2 pattern (alternatives, compiled once, JIT) that a
 * line must match to be kept. Line-based heuristics, deterministic; what
 * they add beyond a regex per line:
 *   - C-family languages: lines that start inside a block comment are
 *     skipped (a rough comment tracker that knows string literals);
 *     C/C++ keep only column-0 declarations and definitions;
 *   - Python: lines inside triple-quoted strings are skipped;
 *   - Markdown: ATX ("# x") and setext (text underlined with === / ---)
 *     headings, ignoring fenced code blocks;
 *   - reStructuredText: a title followed by an underline of one repeated
 *     punctuation character at least as long as the title;
 *   - AsciiDoc: "= x" headings outside ---- / .... blocks;
 *   - unknown text: the first non-empty line and every non-indented line
 *     that follows an empty line (paragraph starts, top-level definitions).
 * Each outline line is reported as (1-based line, byte offset, length
 * without the line end; a "\r" before "\n" is not counted).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "ingest/ingest_impl.h"

typedef enum lang {
    L_TEXT = 0, /* fallback, no pattern */
    L_C,
    L_PYTHON,
    L_GO,
    L_RUST,
    L_JAVA, /* Java, Kotlin, C#, Swift, Dart, Scala */
    L_JS,
    L_RUBY,
    L_PHP,
    L_SHELL,
    L_LUA,
    L_PERL,
    L_SQL,
    L_PROTO,
    L_MAKE,
    L_CMAKE,
    L_DOCKER,
    L_YAML,
    L_TOML, /* TOML, INI, cfg */
    L_TEX,
    L_ORG,
    L_HTML,
    L_MARKDOWN, /* handled in code */
    L_RST,      /* handled in code */
    L_ADOC,     /* pattern + block tracking */
    L_COUNT
} lang;

static const char *const g_patterns[L_COUNT] = {
    [L_C] = "^(?:template\\s*<.*>\\s*)?(?:typedef|struct|union|enum|class|namespace)\\b"
            "|^#\\s*define\\s+\\w+\\("
            "|^(?!(?:if|for|while|switch|return|else|do|case|goto|sizeof|extern\\s+\"C\"\\s*\\{)\\b)"
            "(?:[A-Za-z_][\\w\\s\\*&:<>,~\\[\\]]*?[\\s\\*&])?~?[A-Za-z_][\\w:~]*\\s*\\(",
    [L_PYTHON] = "^\\s*(?:async\\s+)?def\\s+\\w+|^\\s*class\\s+\\w+",
    [L_GO] = "^(?:func|type|package)\\b",
    [L_RUST] = "^\\s*(?:pub(?:\\([^)]*\\))?\\s+)?(?:(?:async|unsafe|const|default|extern(?:\\s+\"[^\"]*\")?)\\s+)*"
               "(?:(?:fn|struct|enum|trait|impl|mod|type|union)\\b|macro_rules!)",
    [L_JAVA] = "^\\s*(?:@\\w+(?:\\([^)]*\\))?\\s+)*(?:(?:public|private|protected|internal|fileprivate|static|final|"
               "abstract|sealed|open|data|inline|partial|override|readonly|unsafe|async|virtual|new|annotation|"
               "companion|inner|value|case|implicit|lazy|mutating)\\s+)*"
               "(?:class|interface|enum|record|struct|object|trait|namespace|fun|func|def|extension|protocol|init)\\b"
               "|^\\s*(?:@\\w+(?:\\([^)]*\\))?\\s+)*(?:(?:public|private|protected|internal|static|final|abstract|"
               "synchronized|native|override|virtual|async|extern|unsafe|default)\\s+)+"
               "(?!return\\b|new\\b)[\\w<>\\[\\],.?\\s]*?\\b\\w+\\s*\\(",
    [L_JS] = "^\\s*(?:export\\s+)?(?:default\\s+)?(?:async\\s+)?function\\b"
             "|^\\s*(?:export\\s+)?(?:default\\s+)?(?:abstract\\s+)?(?:declare\\s+)?"
             "(?:class|interface|enum|namespace|module)\\s+[\\w$]"
             "|^\\s*(?:export\\s+)?(?:declare\\s+)?type\\s+[\\w$]+\\s*(?:<[^=]*>)?\\s*="
             "|^\\s*(?:export\\s+)?(?:const|let|var)\\s+[\\w$]+\\s*(?::[^=]+)?=\\s*(?:async\\s+)?"
             "(?:function\\b|\\([^)]*\\)\\s*(?::[^=]+)?=>|[\\w$]+\\s*=>)"
             "|^\\s+(?:(?:public|private|protected|static|async|readonly|override|abstract|get|set)\\s+)*"
             "(?!(?:if|for|while|switch|catch|function|return|with)\\b)[\\w$]+\\s*\\([^)]*\\)\\s*(?::[^{]+)?\\{\\s*$",
    [L_RUBY] = "^\\s*(?:def|class|module)\\s",
    [L_PHP] = "^\\s*(?:(?:abstract|final|public|private|protected|static|readonly)\\s+)*"
              "(?:function|class|interface|trait|enum|namespace)\\s+\\w",
    [L_SHELL] = "^\\s*(?:function\\s+[\\w.:-]+|[\\w.:-]+\\s*\\(\\s*\\))",
    [L_LUA] = "^\\s*(?:local\\s+)?function\\b",
    [L_PERL] = "^\\s*(?:sub|package)\\s+\\w",
    [L_SQL] = "(?i)^\\s*(?:CREATE|ALTER)\\s+(?:OR\\s+REPLACE\\s+)?(?:TEMP(?:ORARY)?\\s+)?"
              "(?:TABLE|VIEW|FUNCTION|PROCEDURE|INDEX|UNIQUE\\s+INDEX|TRIGGER|TYPE|SCHEMA|MATERIALIZED\\s+VIEW)\\b",
    [L_PROTO] = "^\\s*(?:message|service|rpc|enum|package)\\s",
    [L_MAKE] = "^[A-Za-z0-9_.%/$(){}-][^:=#\\t]*::?(?!=)",
    [L_CMAKE] = "(?i)^\\s*(?:function|macro|project|add_library|add_executable)\\s*\\(",
    [L_DOCKER] = "(?i)^\\s*(?:FROM|ENTRYPOINT|CMD)\\s",
    [L_YAML] = "^(?:---|[A-Za-z_\"'][^:#]*:(?:\\s|$))",
    [L_TOML] = "^\\s*\\[[^\\]]+\\]",
    [L_TEX] = "^\\s*\\\\(?:part|chapter|section|subsection|subsubsection|paragraph)\\*?\\{",
    [L_ORG] = "^\\*+\\s",
    [L_HTML] = "(?i)<h[1-6][\\s>]|<title>",
    [L_ADOC] = "^(?:={1,6}|#{1,6})\\s+\\S",
};

static pcre2_code *g_code[L_COUNT];
static int g_failed;
static char g_msg[256];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void compile_all(void)
{
    for (int i = 0; i < L_COUNT; i++) {
        if (!g_patterns[i]) continue;
        int err;
        PCRE2_SIZE off;
        g_code[i] = pcre2_compile((PCRE2_SPTR)g_patterns[i], PCRE2_ZERO_TERMINATED, 0, &err, &off, NULL);
        if (!g_code[i]) {
            PCRE2_UCHAR m[160];
            pcre2_get_error_message(err, m, sizeof m);
            snprintf(g_msg, sizeof g_msg, "outline: pattern %d at offset %zu: %s", i, (size_t)off, (const char *)m);
            g_failed = 1;
            return;
        }
        pcre2_jit_compile(g_code[i], PCRE2_JIT_COMPLETE);
    }
}

/* ------------------------------------------------------------ language */

typedef struct ext_lang {
    const char *ext;
    lang l;
} ext_lang;

static const ext_lang g_exts[] = {
    {"c", L_C}, {"h", L_C}, {"cc", L_C}, {"cpp", L_C}, {"cxx", L_C}, {"c++", L_C}, {"hpp", L_C},
    {"hh", L_C}, {"hxx", L_C}, {"h++", L_C}, {"inl", L_C}, {"ipp", L_C}, {"m", L_C}, {"mm", L_C},
    {"cu", L_C}, {"cuh", L_C},
    {"py", L_PYTHON}, {"pyi", L_PYTHON}, {"pyw", L_PYTHON},
    {"go", L_GO}, {"rs", L_RUST},
    {"java", L_JAVA}, {"kt", L_JAVA}, {"kts", L_JAVA}, {"cs", L_JAVA}, {"swift", L_JAVA},
    {"dart", L_JAVA}, {"scala", L_JAVA}, {"sc", L_JAVA}, {"groovy", L_JAVA},
    {"js", L_JS}, {"mjs", L_JS}, {"cjs", L_JS}, {"jsx", L_JS}, {"ts", L_JS}, {"tsx", L_JS},
    {"mts", L_JS}, {"cts", L_JS}, {"vue", L_JS}, {"svelte", L_JS},
    {"rb", L_RUBY}, {"rake", L_RUBY}, {"gemspec", L_RUBY},
    {"php", L_PHP},
    {"sh", L_SHELL}, {"bash", L_SHELL}, {"zsh", L_SHELL}, {"ksh", L_SHELL},
    {"lua", L_LUA}, {"pl", L_PERL}, {"pm", L_PERL},
    {"sql", L_SQL}, {"proto", L_PROTO},
    {"mk", L_MAKE}, {"cmake", L_CMAKE},
    {"yaml", L_YAML}, {"yml", L_YAML},
    {"toml", L_TOML}, {"ini", L_TOML}, {"cfg", L_TOML},
    {"tex", L_TEX}, {"org", L_ORG}, {"html", L_HTML}, {"htm", L_HTML}, {"xhtml", L_HTML},
    {"md", L_MARKDOWN}, {"markdown", L_MARKDOWN}, {"mdx", L_MARKDOWN}, {"mkd", L_MARKDOWN},
    {"rst", L_RST}, {"adoc", L_ADOC}, {"asciidoc", L_ADOC}, {"asc", L_ADOC},
};

static lang lang_of(const char *path, const char *text, size_t len)
{
    const char *base = path ? strrchr(path, '/') : NULL;
    base = base ? base + 1 : (path ? path : "");
    if (strcmp(base, "Makefile") == 0 || strcmp(base, "makefile") == 0 || strcmp(base, "GNUmakefile") == 0)
        return L_MAKE;
    if (strcmp(base, "CMakeLists.txt") == 0) return L_CMAKE;
    if (strcmp(base, "Dockerfile") == 0 || strncmp(base, "Dockerfile.", 11) == 0 ||
        strcmp(base, "Containerfile") == 0)
        return L_DOCKER;
    if (strcmp(base, "Rakefile") == 0 || strcmp(base, "Gemfile") == 0) return L_RUBY;
    const char *dot = strrchr(base, '.');
    if (dot && dot != base) {
        for (size_t i = 0; i < TOME_ARRAY_LEN(g_exts); i++)
            if (strcasecmp(dot + 1, g_exts[i].ext) == 0) return g_exts[i].l;
    }
    if (len > 2 && text[0] == '#' && text[1] == '!') {
        const char *nl = memchr(text, '\n', len);
        size_t n = nl ? (size_t)(nl - text) : len;
        char line[256];
        if (n >= sizeof line) n = sizeof line - 1;
        memcpy(line, text, n);
        line[n] = '\0';
        if (strstr(line, "python")) return L_PYTHON;
        if (strstr(line, "node") || strstr(line, "deno")) return L_JS;
        if (strstr(line, "ruby")) return L_RUBY;
        if (strstr(line, "perl")) return L_PERL;
        if (strstr(line, "php")) return L_PHP;
        if (strstr(line, "lua")) return L_LUA;
        if (strstr(line, "sh")) return L_SHELL;
    }
    return L_TEXT;
}

static int c_family(lang l)
{
    return l == L_C || l == L_JAVA || l == L_JS || l == L_GO || l == L_RUST || l == L_PHP || l == L_PROTO;
}

/* ------------------------------------------------------------ output */

typedef struct outv {
    tome_outline_line *v;
    size_t n, cap;
} outv;

static tome_status emit(outv *o, uint32_t line, size_t off, size_t len)
{
    if (o->n == o->cap) {
        size_t nc = o->cap ? 2 * o->cap : 32;
        tome_outline_line *nv = realloc(o->v, nc * sizeof *nv);
        if (!nv) return tome_set_error(TOME_ERR_NOMEM, "outline: out of memory");
        o->v = nv;
        o->cap = nc;
    }
    o->v[o->n].line = line;
    o->v[o->n].offset = off;
    o->v[o->n].len = len;
    o->n++;
    return TOME_OK;
}

static int blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\f' && s[i] != '\v') return 0;
    return 1;
}

static size_t indent_of(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
    return i;
}

/* "*" + "/" ends a block comment; a "/" + "*" outside strings opens one. */
static int update_c_comment(const char *s, size_t n, int in_comment)
{
    char quote = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_comment) {
            if (c == '*' && i + 1 < n && s[i + 1] == '/') {
                in_comment = 0;
                i++;
            }
            continue;
        }
        if (quote) {
            if (c == '\\') i++;
            else if (c == quote) quote = 0;
            continue;
        }
        if (c == '"' || c == '\'' || c == '`') quote = c;
        else if (c == '/' && i + 1 < n && s[i + 1] == '/') break;
        else if (c == '/' && i + 1 < n && s[i + 1] == '*') {
            in_comment = 1;
            i++;
        }
    }
    return in_comment;
}

static int count_triple_quotes(const char *s, size_t n)
{
    int k = 0;
    for (size_t i = 0; i + 2 < n; i++) {
        if ((s[i] == '"' || s[i] == '\'') && s[i + 1] == s[i] && s[i + 2] == s[i]) {
            k++;
            i += 2;
        }
    }
    return k;
}

static int is_md_fence(const char *s, size_t n, char *fch)
{
    size_t i = 0;
    while (i < n && i < 3 && s[i] == ' ') i++;
    if (i + 3 <= n && (s[i] == '`' || s[i] == '~') && s[i + 1] == s[i] && s[i + 2] == s[i]) {
        *fch = s[i];
        return 1;
    }
    return 0;
}

static int is_md_atx(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && i < 3 && s[i] == ' ') i++;
    size_t h = 0;
    while (i + h < n && s[i + h] == '#') h++;
    return h >= 1 && h <= 6 && (i + h == n || s[i + h] == ' ' || s[i + h] == '\t');
}

/* A setext underline ("===" or "---", up to 3 leading spaces). */
static int is_md_setext(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && i < 3 && s[i] == ' ') i++;
    if (i >= n || (s[i] != '=' && s[i] != '-')) return 0;
    char c = s[i];
    size_t k = 0;
    while (i < n && s[i] == c) {
        i++;
        k++;
    }
    return k >= 1 && blank(s + i, n - i);
}

static int is_md_block_start(const char *s, size_t n)
{
    size_t i = indent_of(s, n);
    if (i >= 4) return 1; /* indented code */
    if (i < n && (s[i] == '-' || s[i] == '*' || s[i] == '+' || s[i] == '>' || s[i] == '|')) return 1;
    return 0;
}

static int is_rst_underline(const char *s, size_t n, size_t *len)
{
    static const char punct[] = "=-~^\"'`#*+<>:._!$%&,/;?@[\\]{|}";
    if (n < 3 || !strchr(punct, s[0]) || s[0] == '\0') return 0;
    size_t k = 0;
    while (k < n && s[k] == s[0]) k++;
    if (k < 3 || !blank(s + k, n - k)) return 0;
    *len = k;
    return 1;
}

/* Cheap tests that rule a line out before the regex runs (most lines of a
 * file are not outline lines; a pcre2_match call per line is the cost). */
static int quick_reject(lang l, const char *s, size_t n)
{
    size_t i = indent_of(s, n);
    char c0 = s[0], c = i < n ? s[i] : 0;
    switch (l) {
    case L_C:
        return !((c0 >= 'A' && c0 <= 'Z') || (c0 >= 'a' && c0 <= 'z') || c0 == '_' || c0 == '#' || c0 == '~');
    case L_GO:
        return c0 != 'f' && c0 != 't' && c0 != 'p';
    case L_PYTHON:
        return c != 'd' && c != 'c' && c != 'a';
    case L_SHELL:
        return !memchr(s, '(', n) && !(n - i >= 8 && memcmp(s + i, "function", 8) == 0);
    case L_ADOC:
        return c0 != '=' && c0 != '#';
    case L_TOML:
        return c != '[';
    case L_RUBY:
        return c != 'd' && c != 'c' && c != 'm';
    case L_YAML:
    case L_MAKE:
        return c0 == ' ' || c0 == '\t' || c0 == '#';
    default:
        return 0;
    }
}

/* ------------------------------------------------------------ main */

tome_status tome_outline(const char *path, const char *text, size_t len, tome_outline_line **out,
                         size_t *n_out)
{
    TOME_RETURN_IF(!out || !n_out || (!text && len), TOME_ERR_INVALID_ARG, "outline: bad arguments");
    *out = NULL;
    *n_out = 0;
    pthread_once(&g_once, compile_all);
    if (g_failed) return tome_set_error(TOME_ERR_INTERNAL, "%s", g_msg);

    lang l = lang_of(path, text, len);
    pcre2_code *re = g_code[l];
    pcre2_match_data *md = NULL;
    if (re) {
        md = pcre2_match_data_create(4, NULL);
        if (!md) return tome_set_error(TOME_ERR_NOMEM, "outline: out of memory");
    }

    outv o = {0};
    tome_status st = TOME_OK;
    int in_c_comment = 0, in_py_string = 0, in_fence = 0, in_adoc_block = 0;
    char fence_ch = 0;
    int prev_blank = 1;
    /* previous line, for setext / RST underlines */
    size_t prev_off = 0, prev_len = 0;
    uint32_t prev_line = 0;
    int prev_is_para = 0;
    int first_done = 0;

    uint32_t line = 0;
    for (size_t pos = 0; pos < len && st == TOME_OK;) {
        line++;
        const char *s = text + pos;
        const char *nl = memchr(s, '\n', len - pos);
        size_t raw = nl ? (size_t)(nl - s) : len - pos;
        size_t n = raw;
        if (n && s[n - 1] == '\r') n--;
        size_t off = pos;
        pos += raw + (nl ? 1 : 0);
        int is_blank = blank(s, n);

        switch (l) {
        case L_MARKDOWN: {
            char fc;
            if (is_md_fence(s, n, &fc)) {
                if (!in_fence) {
                    in_fence = 1;
                    fence_ch = fc;
                } else if (fc == fence_ch) {
                    in_fence = 0;
                }
                prev_is_para = 0;
                break;
            }
            if (in_fence) break;
            if (is_md_atx(s, n)) {
                st = emit(&o, line, off, n);
                prev_is_para = 0;
                break;
            }
            if (prev_is_para && is_md_setext(s, n)) {
                st = emit(&o, prev_line, prev_off, prev_len);
                prev_is_para = 0;
                break;
            }
            prev_is_para = !is_blank && !is_md_block_start(s, n);
            break;
        }
        case L_RST: {
            size_t ul;
            if (prev_is_para && is_rst_underline(s, n, &ul)) {
                size_t ind = indent_of(text + prev_off, prev_len);
                size_t tlen = prev_len - ind;
                while (tlen && (text[prev_off + ind + tlen - 1] == ' ')) tlen--;
                if (ul >= tlen && ind == 0) {
                    st = emit(&o, prev_line, prev_off, prev_len);
                    prev_is_para = 0;
                    break;
                }
            }
            size_t dummy;
            prev_is_para = !is_blank && !is_rst_underline(s, n, &dummy);
            break;
        }
        case L_TEXT:
            if (!is_blank && (!first_done || (prev_blank && indent_of(s, n) == 0))) {
                st = emit(&o, line, off, n);
                first_done = 1;
            }
            break;
        default: {
            int skip = 0;
            if (c_family(l)) {
                skip = in_c_comment;
                in_c_comment = update_c_comment(s, n, in_c_comment);
                if (skip && !in_c_comment) skip = 1; /* the closing line itself is comment text */
            } else if (l == L_PYTHON) {
                skip = in_py_string;
                if (count_triple_quotes(s, n) & 1) in_py_string = !in_py_string;
            } else if (l == L_ADOC) {
                if (n >= 4 && (memcmp(s, "----", 4) == 0 || memcmp(s, "....", 4) == 0)) {
                    size_t k = 0;
                    while (k < n && s[k] == s[0]) k++;
                    if (k == n) {
                        in_adoc_block = !in_adoc_block;
                        skip = 1;
                    }
                }
                skip = skip || in_adoc_block;
            }
            if (!skip && !is_blank && !quick_reject(l, s, n)) {
                int rc = pcre2_match(re, (PCRE2_SPTR)s, n, 0, 0, md, NULL);
                if (rc >= 0) st = emit(&o, line, off, n);
            }
            break;
        }
        }
        prev_blank = is_blank;
        if (l == L_MARKDOWN || l == L_RST) {
            prev_off = off;
            prev_len = n;
            prev_line = line;
        }
    }
    pcre2_match_data_free(md);
    if (st != TOME_OK) {
        free(o.v);
        return st;
    }
    *out = o.v;
    *n_out = o.n;
    return TOME_OK;
}

/* The outline of an extracted document. With headings — offsets given by
 * the extraction (a PDF's bookmarks: heads), or TOME_ANCHOR_HEADING anchors
 * (DOCX/ODT/HTML) — the lines that hold them. Otherwise, per page
 * (TOME_ANCHOR_PAGE), the first line with text that is not a running header:
 * a line that, with its digits ignored ("Page 3 of 40"), is among the first
 * three text lines of at least half of the pages (and of 3 or more). Nothing
 * (n_out 0) when neither applies: the caller uses tome_outline. */
static int blank_line(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\f') return 0;
    return 1;
}

static uint64_t line_key(const char *s, size_t n) /* FNV-1a of the line, digit runs as one '#', spaces trimmed */
{
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r')) n--;
    size_t i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
    uint64_t h = 0xcbf29ce484222325ull;
    for (int digit = 0; i < n; i++) {
        int d = s[i] >= '0' && s[i] <= '9';
        if (d && digit) continue;
        digit = d;
        h = (h ^ (uint8_t)(d ? '#' : s[i])) * 0x100000001b3ull;
    }
    return h;
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

static size_t line_start(const char *text, size_t off)
{
    while (off && text[off - 1] != '\n') off--;
    return off;
}

tome_status tome_outline_page_firsts(const char *text, size_t len, const tome_anchor *a, size_t n_a, uint64_t *first)
{
    TOME_RETURN_IF((!text && len) || (!a && n_a) || (!first && n_a), TOME_ERR_INVALID_ARG, "outline: bad arguments");
    size_t n_pages = 0, n_keys = 0;
    for (size_t k = 0; k < n_a; k++) {
        first[k] = UINT64_MAX;
        n_pages += a[k].kind == TOME_ANCHOR_PAGE && a[k].offset < len;
    }
    if (!n_pages) return TOME_OK;
    uint64_t *keys = malloc(3 * n_pages * sizeof *keys);
    if (!keys) return tome_set_error(TOME_ERR_NOMEM, "outline: out of memory");
    for (int pass = 0; pass < 2; pass++) {
        for (size_t k = 0; k < n_a; k++) {
            if (a[k].kind != TOME_ANCHOR_PAGE || a[k].offset >= len) continue;
            size_t end = len; /* the start of the line of the next page's anchor */
            for (size_t q = k + 1; q < n_a; q++)
                if (a[q].kind == TOME_ANCHOR_PAGE) {
                    if (a[q].offset < len) end = line_start(text, (size_t)a[q].offset);
                    break;
                }
            size_t seen = 0;
            for (size_t pos = line_start(text, (size_t)a[k].offset); pos < end;) {
                const char *nl = memchr(text + pos, '\n', len - pos);
                size_t e = nl ? (size_t)(nl - text) : len, next = nl ? e + 1 : len;
                if (blank_line(text + pos, e - pos)) {
                    pos = next;
                    continue;
                }
                uint64_t key = line_key(text + pos, e - pos);
                if (pass == 0) { /* the page's first three text lines, each key once */
                    int dup = 0;
                    for (size_t j = n_keys - seen; j < n_keys; j++) dup |= keys[j] == key;
                    if (!dup) keys[n_keys++] = key;
                    if (++seen == 3) break;
                    pos = next;
                    continue;
                }
                /* running: in the first lines of half of the pages (3+) */
                size_t lo = 0, hi = n_keys, cnt = 0;
                while (lo < hi) {
                    size_t mid = lo + (hi - lo) / 2;
                    if (keys[mid] < key) lo = mid + 1;
                    else hi = mid;
                }
                while (lo + cnt < n_keys && keys[lo + cnt] == key) cnt++;
                if (!(n_pages >= 3 && cnt >= 3 && cnt * 2 >= n_pages)) {
                    first[k] = pos;
                    break;
                }
                pos = next;
            }
        }
        if (pass == 0) qsort(keys, n_keys, sizeof *keys, cmp_u64); /* pass 1 counts in it */
    }
    free(keys);
    return TOME_OK;
}

/* Index of the line (ls: the lines' start offsets, ascending) that holds off. */
static size_t line_of(const size_t *ls, size_t n_ls, uint64_t off)
{
    size_t lo = 0, hi = n_ls;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ls[mid] <= off) lo = mid + 1;
        else hi = mid;
    }
    return lo ? lo - 1 : 0;
}

tome_status tome_outline_doc(const char *text, size_t len, const tome_anchor *a, size_t n_a, const uint64_t *heads,
                             size_t n_heads, tome_outline_line **out, size_t *n_out)
{
    TOME_RETURN_IF(!out || !n_out || (!text && len) || (!a && n_a) || (!heads && n_heads), TOME_ERR_INVALID_ARG,
                   "outline: bad arguments");
    *out = NULL;
    *n_out = 0;
    /* line starts (line k + 1 starts at ls[k]) */
    size_t n_ls = 0, cap = 64;
    size_t *ls = malloc(cap * sizeof *ls);
    uint64_t *offs = NULL; /* where the outline's lines are, ascending; UINT64_MAX: none */
    size_t n_offs = 0;
    outv o = {0};
    tome_status st = TOME_OK;
    if (!ls) return tome_set_error(TOME_ERR_NOMEM, "outline: out of memory");
    for (size_t pos = 0; pos < len;) {
        if (n_ls == cap) {
            size_t *g = realloc(ls, 2 * cap * sizeof *ls);
            if (!g) {
                st = tome_set_error(TOME_ERR_NOMEM, "outline: out of memory");
                goto done;
            }
            ls = g;
            cap *= 2;
        }
        ls[n_ls++] = pos;
        const char *nl = memchr(text + pos, '\n', len - pos);
        pos = nl ? (size_t)(nl - text) + 1 : len;
    }
    if (!n_ls || (!n_heads && !n_a)) goto done;
    /* the headings the extraction found, else the heading anchors, else the
     * first line of each page that is not a running header */
    offs = malloc((n_heads ? n_heads : n_a) * sizeof *offs);
    if (!offs) {
        st = tome_set_error(TOME_ERR_NOMEM, "outline: out of memory");
        goto done;
    }
    if (n_heads) {
        memcpy(offs, heads, n_heads * sizeof *offs);
        n_offs = n_heads;
    } else {
        for (size_t k = 0; k < n_a; k++)
            if (a[k].kind == TOME_ANCHOR_HEADING) offs[n_offs++] = a[k].offset;
        if (!n_offs) {
            if ((st = tome_outline_page_firsts(text, len, a, n_a, offs))) goto done;
            n_offs = n_a;
        }
    }
    for (size_t k = 0; k < n_offs; k++) {
        if (offs[k] >= len) continue; /* (UINT64_MAX: a page without such a line) */
        size_t l = line_of(ls, n_ls, offs[k]);
        size_t e = l + 1 < n_ls ? ls[l + 1] - 1 : text[len - 1] == '\n' ? len - 1 : len;
        if ((o.n && o.v[o.n - 1].line >= l + 1) || blank_line(text + ls[l], e - ls[l])) continue;
        if (e > ls[l] && text[e - 1] == '\r') e--;
        if ((st = emit(&o, (uint32_t)(l + 1), ls[l], e - ls[l]))) goto done;
    }
done:
    free(ls);
    free(offs);
    if (st) {
        free(o.v);
        return st;
    }
    *out = o.v;
    *n_out = o.n;
    return TOME_OK;
}
