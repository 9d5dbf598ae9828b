/* core/buf.c — growable byte buffer (see core/core_impl.h). */
#include "core/core_impl.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

tome_status tome_buf_reserve(tome_buf *b, size_t extra)
{
    if (b->cap - b->len >= extra && b->data) return TOME_OK;
    if (extra > SIZE_MAX / 2 - b->len)
        return tome_set_error(TOME_ERR_NOMEM, "buffer of %zu + %zu bytes is too large", b->len, extra);
    size_t need = b->len + extra;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap *= 2;
    char *p = realloc(b->data, cap + 1);
    if (!p) return tome_set_error(TOME_ERR_NOMEM, "out of memory growing a buffer to %zu bytes", cap);
    b->data = p;
    b->cap = cap;
    b->data[b->len] = '\0';
    return TOME_OK;
}

tome_status tome_buf_append(tome_buf *b, const void *data, size_t n)
{
    TOME_FORWARD(tome_buf_reserve(b, n));
    if (n) memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return TOME_OK;
}

tome_status tome_buf_putc(tome_buf *b, char c) { return tome_buf_append(b, &c, 1); }

tome_status tome_buf_appendf(tome_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return tome_set_error(TOME_ERR_INTERNAL, "bad format string '%s'", fmt);
    TOME_FORWARD(tome_buf_reserve(b, (size_t)n));
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return TOME_OK;
}

void tome_buf_free(tome_buf *b)
{
    if (!b) return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
