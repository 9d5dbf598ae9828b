/* money.h — integer cents, parsing and formatting. */
#ifndef LL_MONEY_H
#define LL_MONEY_H

#include <stdint.h>
#include <stdio.h>

typedef int64_t ll_money;

/* "12.34", "-5", "1,250.00" -> cents. Returns 0 on success. */
static inline int ll_money_parse(const char *s, ll_money *out)
{
    int neg = 0, frac_digits = -1;
    int64_t v = 0;
    if (*s == '-') { neg = 1; s++; }
    for (; *s && *s != ' ' && *s != '\n'; s++) {
        if (*s == ',') continue;
        if (*s == '.') { if (frac_digits >= 0) return -1; frac_digits = 0; continue; }
        if (*s < '0' || *s > '9') return -1;
        if (frac_digits >= 2) return -1;
        v = v * 10 + (*s - '0');
        if (frac_digits >= 0) frac_digits++;
    }
    if (frac_digits < 0) frac_digits = 0;
    while (frac_digits++ < 2) v *= 10;
    *out = neg ? -v : v;
    return 0;
}

static inline void ll_money_format(ll_money m, char *buf, size_t cap)
{
    const char *sign = m < 0 ? "-" : "";
    if (m < 0) m = -m;
    snprintf(buf, cap, "%s%lld.%02lld", sign, (long long)(m / 100), (long long)(m % 100));
}

#endif
