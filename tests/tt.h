/*
 * tests/tt.h — the test harness: many small named cases per file.
 *
 *   static void test_roundtrip(void) { TT_CHECK(x == 1); TT_EQ_INT(a, b); }
 *   int main(void) { TT_RUN(test_roundtrip); return tt_finish(); }
 *
 * A failed check prints file:line and the expression, marks the case failed
 * and carries on. tt_finish() prints "N passed, N failed" (cases) and returns
 * the process exit code. Paths to test data come from the environment that
 * ctest sets (tests/CMakeLists.txt), with fallbacks relative to the source.
 */
#ifndef TOME_TT_H
#define TOME_TT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "tome/status.h"

extern int tt_case_failed;

void tt_fail(const char *file, int line, const char *fmt, ...);
void tt_run(const char *name, void (*fn)(void));
int tt_finish(void);

/* Absolute path of a file under the source tree / ../shared. Returned string
 * is static storage, valid until the next call of the same function. */
const char *tt_source_path(const char *rel);
const char *tt_shared_path(const char *rel);
/* A fresh empty directory under $TMPDIR, removed by tt_finish(). */
const char *tt_tmpdir(void);
/* Read a whole file into malloc'd memory (NUL-terminated); NULL on failure. */
char *tt_read_file(const char *path, size_t *len);
/* Write bytes to path (creating parent directories); 0 on success. */
int tt_write_file(const char *path, const void *data, size_t len);
/* Run a shell command; returns its exit status (or -1). */
int tt_system(const char *fmt, ...);

#define TT_RUN(fn) tt_run(#fn, fn)

#define TT_CHECK(cond) \
    do { if (!(cond)) tt_fail(__FILE__, __LINE__, "check failed: %s", #cond); } while (0)

#define TT_OK(expr) \
    do { tome_status tt_st_ = (expr); if (tt_st_ != TOME_OK) \
        tt_fail(__FILE__, __LINE__, "%s returned %s: %s", #expr, \
                tome_status_name(tt_st_), tome_last_error()); } while (0)

#define TT_STATUS(expr, want) \
    do { tome_status tt_st_ = (expr); if (tt_st_ != (want)) \
        tt_fail(__FILE__, __LINE__, "%s returned %s, want %s (%s)", #expr, \
                tome_status_name(tt_st_), tome_status_name(want), tome_last_error()); } while (0)

#define TT_EQ_INT(a, b) \
    do { long long tt_a_ = (long long)(a), tt_b_ = (long long)(b); if (tt_a_ != tt_b_) \
        tt_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, tt_a_, tt_b_); } while (0)

#define TT_EQ_STR(a, b) \
    do { const char *tt_a_ = (a), *tt_b_ = (b); \
        if (!tt_a_ || !tt_b_ || strcmp(tt_a_, tt_b_) != 0) \
        tt_fail(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", #a, #b, \
                tt_a_ ? tt_a_ : "(null)", tt_b_ ? tt_b_ : "(null)"); } while (0)

#define TT_CONTAINS(hay, needle) \
    do { const char *tt_h_ = (hay), *tt_n_ = (needle); \
        if (!tt_h_ || !strstr(tt_h_, tt_n_)) \
        tt_fail(__FILE__, __LINE__, "\"%s\" does not contain \"%s\"", \
                tt_h_ ? tt_h_ : "(null)", tt_n_); } while (0)

#define TT_NEAR(a, b, tol) \
    do { double tt_a_ = (double)(a), tt_b_ = (double)(b); \
        if (!(tt_a_ - tt_b_ <= (tol) && tt_b_ - tt_a_ <= (tol))) \
        tt_fail(__FILE__, __LINE__, "%s ~ %s: %g vs %g (tol %g)", #a, #b, tt_a_, tt_b_, (double)(tol)); } while (0)

#endif /* TOME_TT_H */
