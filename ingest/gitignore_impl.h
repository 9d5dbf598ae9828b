/*
 * ingest/gitignore_impl.h — gitignore pattern lists and git's glob matcher
 * (internal to ingest/; used by walk.c, usable by anyone who needs a
 * gitignore-syntax glob, e.g. --include/--exclude on archive members).
 *
 * A tome_ignore_list holds the patterns of one file (.gitignore, .tomeignore,
 * .git/info/exclude, or the command line) together with its base: the
 * directory the file lives in, relative to the top of the matching space
 * ("" or "a/b/", always ending in '/'). Paths handed to the matcher are
 * relative to that same top, '/'-separated, without a trailing slash.
 */
#ifndef TOME_GITIGNORE_IMPL_H
#define TOME_GITIGNORE_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "core/core_impl.h"

enum {
    TOME_IGN_NEGATE = 1u << 0,    /* "!pattern"                                      */
    TOME_IGN_MUSTBEDIR = 1u << 1, /* "pattern/": only directories                    */
    TOME_IGN_NODIR = 1u << 2,     /* no '/' in the pattern: matches the basename     */
    TOME_IGN_LITERAL = 1u << 3,   /* no wildcard and no escape: plain compare        */
    TOME_IGN_ENDSWITH = 1u << 4   /* "*literal": suffix compare                      */
};

typedef struct tome_ignore_pattern {
    char *pat;      /* escapes kept; no '!', leading '/' or trailing '/'; pat[-1] is a
                     * '/' sentinel (the allocation starts there) */
    size_t len;
    size_t prefix;  /* bytes before the first wildcard or '\\' (a literal prefix) */
    uint32_t flags; /* TOME_IGN_* */
} tome_ignore_pattern;

typedef struct tome_ignore_list {
    tome_ignore_pattern *pats;
    size_t n, cap;
    char *base;     /* malloc'd, "" or "dir/sub/" */
    size_t base_len;
} tome_ignore_list;

/* Result of a match: the last matching pattern decides. */
enum { TOME_IGN_NONE = 0, TOME_IGN_EXCLUDED = 1, TOME_IGN_INCLUDED = 2 };

tome_status tome_ignore_list_init(tome_ignore_list *l, const char *base, size_t base_len);
/* Adds every pattern of a file's contents (UTF-8 BOM skipped, CRLF ok). */
tome_status tome_ignore_list_parse(tome_ignore_list *l, const char *buf, size_t len);
/* Adds one pattern line (comments and blank lines are ignored). */
tome_status tome_ignore_list_add(tome_ignore_list *l, const char *line, size_t len);
void tome_ignore_list_free(tome_ignore_list *l); /* NULL ok */

/* path: relative to the list's top ("a/b/c"); name: its last component
 * (a suffix of path). Returns TOME_IGN_NONE / _EXCLUDED / _INCLUDED (the last
 * matching pattern was negated). */
int tome_ignore_list_match(const tome_ignore_list *l, const char *path, size_t path_len,
                           const char *name, int is_dir);

/* git's wildmatch: 1 when text matches pat. pathname != 0: '*', '?' and
 * classes never match '/', and "**" between slashes matches any number of
 * directories (WM_PATHNAME). */
int tome_wildmatch(const char *pat, const char *text, int pathname);

#endif /* TOME_GITIGNORE_IMPL_H */
