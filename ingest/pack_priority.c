/*
 * ingest/pack_priority.c — the order of files in a pack: priority tiers.
 *
 * A file's tier is the index of the first --priority glob it matches (the
 * glob is tried on the whole path and on the file name), else the number of
 * globs plus its default tier from its path: 0 root README, 1 docs, 2 entry
 * points, 3 build/config, 4 other source, 5 tests, 6 volatile (lockfiles,
 * changelogs, generated, vendored, test data, translations). Inside an
 * archive the path after the last "!/" counts. Files are then ordered by
 * (tier, path, source order) in pack_build.c, so stable, important content
 * comes first (and is the last to be degraded by the token budget).
 */
#include <fnmatch.h>
#include <string.h>
#include <strings.h>

#include "ingest/pack_impl.h"

static int ieq_prefix(const char *s, const char *pre) { return strncasecmp(s, pre, strlen(pre)) == 0; }

static int has_component(const char *path, const char *const *names)
{
    const char *s = path;
    for (;;) {
        const char *slash = strchr(s, '/');
        if (!slash) return 0; /* last component is the file name */
        size_t len = (size_t)(slash - s);
        for (size_t k = 0; names[k]; k++)
            if (strlen(names[k]) == len && !strncasecmp(s, names[k], len)) return 1;
        s = slash + 1;
    }
}

static int ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && !strcasecmp(s + n - m, suf);
}

/* Default order: 0 root README, 1 docs, 2 entry points, 3 build/config,
 * 4 other source, 5 tests, 6 volatile (lockfiles, changelogs, generated,
 * vendored, test data). --priority globs come before all of them. */
static int default_tier(const char *path)
{
    static const char *const volatile_dirs[] = {"vendor", "third_party", "third-party", "node_modules", "dist",
                                                "build", "testdata", "test-data", "fixtures", "__snapshots__",
                                                "generated", "po", "locale", "locales", "i18n", NULL};
    static const char *const test_dirs[] = {"test", "tests", "t", "spec", "specs", "__tests__", "testing", NULL};
    static const char *const doc_dirs[] = {"doc", "docs", "documentation", NULL};
    static const char *const volatile_names[] = {
        "package-lock.json", "yarn.lock", "pnpm-lock.yaml", "cargo.lock", "poetry.lock", "pipfile.lock",
        "go.sum", "composer.lock", "gemfile.lock", "uv.lock", "flake.lock", NULL};
    static const char *const config_names[] = {
        "makefile", "gnumakefile", "cmakelists.txt", "package.json", "cargo.toml", "pyproject.toml", "setup.py",
        "setup.cfg", "go.mod", "dockerfile", "meson.build", "configure.ac", "build", "build.bazel", "workspace",
        "tsconfig.json", "requirements.txt", "gemfile", "pom.xml", "build.gradle", NULL};
    static const char *const entry_stems[] = {"main.", "__main__.", "index.", "app.", "lib.rs", "mod.rs", "cli.",
                                              "server.", NULL};
    const char *inner = path;
    for (const char *q = strstr(path, "!/"); q; q = strstr(q + 2, "!/")) inner = q + 2;
    const char *base = strrchr(inner, '/');
    base = base ? base + 1 : inner;
    int root = base == inner;
    for (size_t k = 0; volatile_names[k]; k++)
        if (!strcasecmp(base, volatile_names[k])) return 6;
    if (ieq_prefix(base, "changelog") || ieq_prefix(base, "news") || ieq_prefix(base, "history") ||
        ends_with(base, ".min.js") || ends_with(base, ".min.css") || ends_with(base, ".map") ||
        ends_with(base, ".pb.go") || ends_with(base, "_pb2.py") || strstr(base, ".generated.") ||
        ends_with(base, ".po") || ends_with(base, ".pot") || ends_with(base, ".svg") ||
        has_component(inner, volatile_dirs))
        return 6;
    if (ieq_prefix(base, "readme")) return root ? 0 : 1;
    if (has_component(inner, test_dirs) || ieq_prefix(base, "test_") || strstr(base, "_test.") ||
        strstr(base, ".test.") || strstr(base, "_spec.") || strstr(base, ".spec."))
        return 5;
    if (has_component(inner, doc_dirs) || (root && (ieq_prefix(base, "license") || ieq_prefix(base, "contributing") ||
                                                    ends_with(base, ".md") || ends_with(base, ".rst"))))
        return 1;
    for (size_t k = 0; entry_stems[k]; k++)
        if (ieq_prefix(base, entry_stems[k])) return 2;
    for (size_t k = 0; config_names[k]; k++)
        if (!strcasecmp(base, config_names[k])) return 3;
    if (ends_with(base, ".toml") || ends_with(base, ".cmake") || ends_with(base, ".yaml") || ends_with(base, ".yml") ||
        ends_with(base, ".ini") || ends_with(base, ".cfg"))
        return 3;
    return 4;
}

int tome_pack_path_tier(const char *path, const char *const *prio)
{
    size_t np = 0;
    for (; prio && prio[np]; np++) {
    }
    for (size_t k = 0; k < np; k++) {
        const char *base = strrchr(path, '/');
        if (fnmatch(prio[k], path, 0) == 0 || (base && fnmatch(prio[k], base + 1, 0) == 0)) return (int)k;
    }
    return (int)np + default_tier(path);
}
