/*
 * ingest/gitignore.c — gitignore pattern parsing and git's glob matching.
 *
 * Semantics follow git's documentation (gitignore(5)) and its observable
 * behaviour (the tests use `git ls-files` as the oracle):
 *
 *  - a line starting with '#' is a comment, "\#" is a literal '#';
 *  - trailing spaces are dropped unless escaped with '\'; a CR before the LF
 *    is dropped; a UTF-8 BOM at the start of the file is skipped;
 *  - "!" negates, "\!" is a literal '!';
 *  - one trailing '/' makes the pattern match directories only;
 *  - a pattern with no other '/' matches the basename at any depth below the
 *    file's directory; with a '/' at the start or in the middle it is
 *    anchored to that directory (a leading '/' is dropped);
 *  - '*' and '?' do not match '/', "[...]" classes with ranges, "[!...]" /
 *    "[^...]" negation, "[:alpha:]"-style names and '\' escapes;
 *  - "**": "**" + "/" at the start matches in all directories, "/" + "**" at
 *    the end matches everything inside, "/" + "**" + "/" matches zero or more
 *    directories; any other "**" is an ordinary '*'.
 *  - within one list the last matching pattern wins.
 *
 * The matcher below is written from that specification: a recursive matcher
 * whose "abort" results prune the search the way git's does, so a pattern
 * with several stars stays linear-ish on long paths.
 */
#include <stdlib.h>
#include <string.h>

#include "ingest/gitignore_impl.h"

/* ------------------------------------------------------------ wildmatch */

enum { WM_MATCH = 0, WM_NOMATCH = 1, WM_ABORT_ALL = -1, WM_ABORT_TO_STARSTAR = -2 };

static int class_name_matches(const unsigned char *name, size_t n, unsigned char c, int *ok)
{
#define CLS(str, expr) if (n == sizeof(str) - 1 && memcmp(name, str, n) == 0) { *ok = 1; return (expr); }
    CLS("alnum", (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
    CLS("alpha", (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
    CLS("blank", c == ' ' || c == '\t');
    CLS("cntrl", c < 0x20 || c == 0x7f);
    CLS("digit", c >= '0' && c <= '9');
    CLS("graph", c > 0x20 && c < 0x7f);
    CLS("lower", c >= 'a' && c <= 'z');
    CLS("print", c >= 0x20 && c < 0x7f);
    CLS("punct", c > 0x20 && c < 0x7f && !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')));
    CLS("space", c == ' ' || (c >= '\t' && c <= '\r'));
    CLS("upper", c >= 'A' && c <= 'Z');
    CLS("xdigit", (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'));
#undef CLS
    *ok = 0;
    return 0;
}

/* Matches the bracket expression starting at *pp (just past '[') against c.
 * On return *pp points at the closing ']'. Returns 1/0, or -1 when the
 * expression is malformed (unterminated, unknown class name): no match. */
static int match_bracket(const unsigned char **pp, unsigned char c)
{
    const unsigned char *p = *pp;
    int negated = 0, matched = 0;
    if (*p == '!' || *p == '^') { negated = 1; p++; }
    unsigned prev = 0;  /* previous literal, 0 when a range cannot start here */
    int first = 1;
    for (;; p++) {
        unsigned ch = *p;
        if (ch == '\0') return -1;
        if (ch == ']' && !first) break;
        first = 0;
        if (ch == '\\') {
            ch = *++p;
            if (ch == '\0') return -1;
            if (c == ch) matched = 1;
            prev = ch;
        } else if (ch == '-' && prev && p[1] && p[1] != ']') {
            unsigned hi = *++p;
            if (hi == '\\') {
                hi = *++p;
                if (hi == '\0') return -1;
            }
            if (c >= prev && c <= hi) matched = 1;
            prev = 0;
        } else if (ch == '[' && p[1] == ':') {
            const unsigned char *s = p + 2, *e = s;
            while (*e && *e != ']') e++;
            if (!*e) return -1;
            if (e == s || e[-1] != ':') {
                /* no ":]": the '[' is an ordinary member */
                if (c == '[') matched = 1;
                prev = '[';
                continue;
            }
            int ok;
            if (class_name_matches(s, (size_t)(e - 1 - s), c, &ok)) matched = 1;
            if (!ok) return -1;
            p = e;
            prev = 0;
        } else {
            if (c == ch) matched = 1;
            prev = ch;
        }
    }
    *pp = p;
    return matched != negated;
}

static int wm(const unsigned char *p, const unsigned char *t, int pathname)
{
    for (; *p; p++, t++) {
        unsigned char pc = *p, tc = *t;
        if (tc == '\0' && pc != '*') return WM_ABORT_ALL;
        switch (pc) {
        case '\\':
            pc = *++p;
            if (tc != pc) return WM_NOMATCH;
            continue;
        case '?':
            if (pathname && tc == '/') return WM_NOMATCH;
            continue;
        case '[': {
            const unsigned char *q = p + 1;
            int r = match_bracket(&q, tc);
            p = q;
            if (r < 0) return WM_ABORT_ALL;
            if (!r || (pathname && tc == '/')) return WM_NOMATCH;
            continue;
        }
        case '*': {
            int cross_slash = !pathname;
            if (p[1] == '*') {
                /* "**": special only between slashes or at the ends; the
                 * '/' sentinel in front of the pattern makes the start count */
                int before_ok = p[-1] == '/';
                while (p[1] == '*') p++;
                int after_ok = p[1] == '\0' || p[1] == '/' || (p[1] == '\\' && p[2] == '/');
                if (before_ok && after_ok) {
                    if (p[1] == '/' && wm(p + 2, t, pathname) == WM_MATCH) return WM_MATCH;
                    cross_slash = 1;
                }
            }
            p++; /* first pattern char after the stars */
            if (*p == '\0') {
                if (!cross_slash && strchr((const char *)t, '/')) return WM_NOMATCH;
                return WM_MATCH;
            }
            if (!cross_slash && *p == '/') {
                const char *slash = strchr((const char *)t, '/');
                if (!slash) return WM_NOMATCH;
                t = (const unsigned char *)slash;
                /* the loop's increments move past the '/' in both */
                continue;
            }
            for (;; t++) {
                tc = *t;
                if (tc == '\0') break;
                if (*p != '*' && *p != '?' && *p != '[' && *p != '\\') {
                    /* skip ahead to the next occurrence of the literal */
                    while ((tc = *t) != '\0' && (cross_slash || tc != '/')) {
                        if (tc == *p) break;
                        t++;
                    }
                    if (tc != *p) return WM_NOMATCH;
                }
                int r = wm(p, t, pathname);
                if (r != WM_NOMATCH) {
                    if (!cross_slash || r != WM_ABORT_TO_STARSTAR) return r;
                } else if (!cross_slash && tc == '/') {
                    return WM_ABORT_TO_STARSTAR;
                }
            }
            return WM_ABORT_ALL;
        }
        default:
            if (tc != pc) return WM_NOMATCH;
            continue;
        }
    }
    return *t ? WM_NOMATCH : WM_MATCH;
}

int tome_wildmatch(const char *pat, const char *text, int pathname)
{
    /* A '/' sentinel before the pattern makes a leading "**" count as
     * "at the start" without special cases in wm(). */
    size_t n = strlen(pat);
    char small[256];
    char *buf = n + 2 <= sizeof small ? small : malloc(n + 2);
    if (!buf) return 0;
    buf[0] = '/';
    memcpy(buf + 1, pat, n + 1);
    int r = wm((const unsigned char *)buf + 1, (const unsigned char *)text, pathname);
    if (buf != small) free(buf);
    return r == WM_MATCH;
}

/* ------------------------------------------------------------ lists */

tome_status tome_ignore_list_init(tome_ignore_list *l, const char *base, size_t base_len)
{
    memset(l, 0, sizeof *l);
    l->base = malloc(base_len + 1);
    if (!l->base) return tome_set_error(TOME_ERR_NOMEM, "ignore list: out of memory");
    memcpy(l->base, base, base_len);
    l->base[base_len] = '\0';
    l->base_len = base_len;
    return TOME_OK;
}

void tome_ignore_list_free(tome_ignore_list *l)
{
    if (!l) return;
    for (size_t i = 0; i < l->n; i++) free(l->pats[i].pat - 1);
    free(l->pats);
    free(l->base);
    memset(l, 0, sizeof *l);
}

static size_t literal_prefix(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == '*' || s[i] == '?' || s[i] == '[' || s[i] == '\\') return i;
    return n;
}

static int has_wildcard(const char *s, size_t n) { return literal_prefix(s, n) < n; }

tome_status tome_ignore_list_add(tome_ignore_list *l, const char *line, size_t len)
{
    if (len && line[len - 1] == '\r') len--;
    if (len == 0 || line[0] == '#') return TOME_OK;
    /* trailing spaces, unless escaped: scan so that "\\ " (an escaped
     * backslash) does not protect the space after it */
    size_t keep = 0;
    for (size_t i = 0; i < len; i++) {
        if (line[i] == '\\' && i + 1 < len) {
            i++;
            keep = i + 1;
        } else if (line[i] != ' ') {
            keep = i + 1;
        }
    }
    len = keep;
    uint32_t flags = 0;
    if (len && line[0] == '!') {
        flags |= TOME_IGN_NEGATE;
        line++;
        len--;
    }
    if (len && line[len - 1] == '/') {
        flags |= TOME_IGN_MUSTBEDIR;
        len--;
    }
    if (!memchr(line, '/', len)) {
        flags |= TOME_IGN_NODIR;
    } else if (line[0] == '/') {
        line++;
        len--;
    }
    if (len == 0) return TOME_OK;
    if (!has_wildcard(line, len)) flags |= TOME_IGN_LITERAL;
    else if ((flags & TOME_IGN_NODIR) && line[0] == '*' && !has_wildcard(line + 1, len - 1))
        flags |= TOME_IGN_ENDSWITH; /* basename only: "*" must not cross a slash */
    if (l->n == l->cap) {
        size_t nc = l->cap ? 2 * l->cap : 16;
        tome_ignore_pattern *np = realloc(l->pats, nc * sizeof *np);
        if (!np) return tome_set_error(TOME_ERR_NOMEM, "ignore list: out of memory");
        l->pats = np;
        l->cap = nc;
    }
    char *s = malloc(len + 2);
    if (!s) return tome_set_error(TOME_ERR_NOMEM, "ignore list: out of memory");
    s[0] = '/'; /* sentinel: a leading "**" counts as "at the start" */
    memcpy(s + 1, line, len);
    s[len + 1] = '\0';
    l->pats[l->n].pat = s + 1;
    l->pats[l->n].len = len;
    l->pats[l->n].prefix = literal_prefix(line, len);
    l->pats[l->n].flags = flags;
    l->n++;
    return TOME_OK;
}

tome_status tome_ignore_list_parse(tome_ignore_list *l, const char *buf, size_t len)
{
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) {
        buf += 3;
        len -= 3;
    }
    while (len) {
        const char *nl = memchr(buf, '\n', len);
        size_t n = nl ? (size_t)(nl - buf) : len;
        TOME_FORWARD(tome_ignore_list_add(l, buf, n));
        if (!nl) break;
        buf += n + 1;
        len -= n + 1;
    }
    return TOME_OK;
}

/* t/tn: the basename for NODIR patterns, else the path relative to the
 * list's base. */
static int pattern_matches(const tome_ignore_pattern *pt, const char *t, size_t tn)
{
    if (pt->flags & TOME_IGN_LITERAL) return pt->len == tn && pt->pat[0] == t[0] && memcmp(pt->pat, t, tn) == 0;
    if (pt->flags & TOME_IGN_ENDSWITH) {
        size_t sl = pt->len - 1;
        return sl <= tn && memcmp(t + tn - sl, pt->pat + 1, sl) == 0;
    }
    if (pt->prefix && (tn < pt->prefix || memcmp(pt->pat, t, pt->prefix) != 0)) return 0;
    return wm((const unsigned char *)pt->pat, (const unsigned char *)t, !(pt->flags & TOME_IGN_NODIR)) == WM_MATCH;
}

int tome_ignore_list_match(const tome_ignore_list *l, const char *path, size_t path_len,
                           const char *name, int is_dir)
{
    if (!l || l->n == 0) return TOME_IGN_NONE;
    size_t name_len = strlen(name);
    /* anchored patterns see the path relative to the list's directory */
    const char *rel = NULL;
    size_t rel_len = 0;
    if (path_len > l->base_len && memcmp(path, l->base, l->base_len) == 0) {
        rel = path + l->base_len;
        rel_len = path_len - l->base_len;
    }
    for (size_t i = l->n; i-- > 0;) {
        const tome_ignore_pattern *pt = &l->pats[i];
        if ((pt->flags & TOME_IGN_MUSTBEDIR) && !is_dir) continue;
        int m;
        if (pt->flags & TOME_IGN_NODIR) m = pattern_matches(pt, name, name_len);
        else m = rel && pattern_matches(pt, rel, rel_len);
        if (m) return (pt->flags & TOME_IGN_NEGATE) ? TOME_IGN_INCLUDED : TOME_IGN_EXCLUDED;
    }
    return TOME_IGN_NONE;
}
