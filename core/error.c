/*
 * core/error.c — thread-local error messages (design in tome/status.h).
 *
 * Each thread owns one fixed buffer; messages longer than it are truncated
 * with "..." so that formatting an error can never fail or allocate.
 */
#include "core/error_impl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define TOME_ERRBUF_BYTES 2048

static _Thread_local char g_msg[TOME_ERRBUF_BYTES];

const char *tome_status_name(tome_status st)
{
    switch (st) {
    case TOME_OK: return "ok";
    case TOME_ERR_INVALID_ARG: return "invalid argument";
    case TOME_ERR_NOMEM: return "out of memory";
    case TOME_ERR_IO: return "i/o error";
    case TOME_ERR_FORMAT: return "format error";
    case TOME_ERR_UNSUPPORTED: return "unsupported";
    case TOME_ERR_NOT_FOUND: return "not found";
    case TOME_ERR_LIMIT: return "limit exceeded";
    case TOME_ERR_MISMATCH: return "mismatch";
    case TOME_ERR_NOSPACE: return "no space";
    case TOME_ERR_DEVICE: return "device error";
    case TOME_ERR_INTERRUPTED: return "interrupted";
    case TOME_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

const char *tome_last_error(void) { return g_msg; }

void tome_clear_error(void) { g_msg[0] = '\0'; }

static void mark_truncated(int n)
{
    if (n >= TOME_ERRBUF_BYTES)
        memcpy(g_msg + TOME_ERRBUF_BYTES - 4, "...", 4);
}

tome_status tome_set_error(tome_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(g_msg, sizeof g_msg, fmt, ap);
    va_end(ap);
    if (n < 0) g_msg[0] = '\0';
    mark_truncated(n);
    return st;
}

tome_status tome_set_errno(tome_status st, int errnum, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(g_msg, sizeof g_msg, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0, g_msg[0] = '\0';
    if (n < TOME_ERRBUF_BYTES) {
        char eb[256];
        /* strerror is not thread-safe; strerror_r (XSI or GNU) is. */
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
        const char *es = strerror_r(errnum, eb, sizeof eb);
#else
        const char *es = strerror_r(errnum, eb, sizeof eb) == 0 ? eb : "unknown error";
#endif
        int m = snprintf(g_msg + n, sizeof g_msg - (size_t)n, ": %s", es);
        mark_truncated(n + m);
    } else {
        mark_truncated(n);
    }
    return st;
}

tome_status tome_error_prefix(tome_status st, const char *fmt, ...)
{
    char prefix[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    if (n < 0) return st;
    char old[TOME_ERRBUF_BYTES];
    memcpy(old, g_msg, sizeof old);
    int m = snprintf(g_msg, sizeof g_msg, "%s: %s", prefix, old);
    mark_truncated(m);
    return st;
}

tome_status tome_status_from_errno(int errnum)
{
    switch (errnum) {
    case ENOSPC:
    case EFBIG:
#ifdef EDQUOT
    case EDQUOT:
#endif
        return TOME_ERR_NOSPACE;
    case ENOMEM: return TOME_ERR_NOMEM;
    case ENOENT: return TOME_ERR_NOT_FOUND;
    default: return TOME_ERR_IO;
    }
}
