/*
 * core/error_impl.h — internal helpers for the error model (see tome/status.h).
 *
 * tome_set_error() formats a message into the calling thread's buffer and
 * returns the status, so error paths stay one line:
 *
 *     if (n > cap) return tome_set_error(TOME_ERR_FORMAT, "%s: ...", path);
 *
 * tome_error_prefix() prepends context to the current message on the way up
 * ("pack out.tpk: " + "section 3: checksum mismatch").
 */
#ifndef TOME_ERROR_IMPL_H
#define TOME_ERROR_IMPL_H

#include "tome/status.h"

#if defined(__GNUC__)
#define TOME_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define TOME_PRINTF(a, b)
#endif

/* Set this thread's message and return st. */
tome_status tome_set_error(tome_status st, const char *fmt, ...) TOME_PRINTF(2, 3);

/* Set the message to fmt... followed by ": " and strerror(errnum). */
tome_status tome_set_errno(tome_status st, int errnum, const char *fmt, ...) TOME_PRINTF(3, 4);

/* Prepend "fmt...: " to the current message; returns st unchanged. */
tome_status tome_error_prefix(tome_status st, const char *fmt, ...) TOME_PRINTF(2, 3);

/* Map an errno value from a failed write/open to a status (ENOSPC/EFBIG/EDQUOT
 * become TOME_ERR_NOSPACE, ENOMEM TOME_ERR_NOMEM, the rest TOME_ERR_IO). */
tome_status tome_status_from_errno(int errnum);

#define TOME_RETURN_IF(cond, st, ...) \
    do { if (cond) return tome_set_error((st), __VA_ARGS__); } while (0)

#define TOME_FORWARD(expr) \
    do { tome_status tome_fwd_st_ = (expr); if (tome_fwd_st_ != TOME_OK) return tome_fwd_st_; } while (0)

/* Jump to a cleanup label with st set (for functions that own resources). */
#define TOME_GOTO_IF(cond, label, stvar, st, ...) \
    do { if (cond) { (stvar) = tome_set_error((st), __VA_ARGS__); goto label; } } while (0)

#define TOME_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif /* TOME_ERROR_IMPL_H */
