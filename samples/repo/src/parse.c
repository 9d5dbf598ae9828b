/* parse.c — the ledger text format (see docs/file-format.md).
 *
 *   2024-02-03 Corner Grocery
 *       Expenses:Food:Groceries     42.17
 *       Assets:Bank:Checking
 *
 * A transaction starts with a date at column 0; its postings are indented.
 * Lines starting with ';' are comments. At most one posting per transaction
 * may leave its amount out: ll_check fills it in. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger.h"

static int parse_date(const char *s, ll_txn *t)
{
    if (sscanf(s, "%4d-%2d-%2d", &t->year, &t->month, &t->day) != 3)
        return -1;
    if (t->month < 1 || t->month > 12 || t->day < 1 || t->day > 31)
        return -1;
    return 0;
}

static int add_posting(ll_txn *t, const char *line, char *err, size_t cap, int lineno)
{
    ll_posting p = {0};
    while (*line == ' ' || *line == '\t')
        line++;
    /* the account ends at two spaces, a tab, or the end of the line */
    size_t n = 0;
    while (line[n] && line[n] != '\n' && line[n] != '\t' && !(line[n] == ' ' && line[n + 1] == ' '))
        n++;
    if (n == 0 || n >= sizeof p.account) {
        snprintf(err, cap, "line %d: bad account name", lineno);
        return -1;
    }
    memcpy(p.account, line, n);
    const char *amt = line + n;
    while (*amt == ' ' || *amt == '\t')
        amt++;
    if (*amt && *amt != '\n' && *amt != ';') {
        if (ll_money_parse(amt, &p.amount) != 0) {
            snprintf(err, cap, "line %d: bad amount", lineno);
            return -1;
        }
        p.has_amount = 1;
    }
    ll_posting *grown = realloc(t->postings, (t->n_postings + 1) * sizeof *grown);
    if (!grown) {
        snprintf(err, cap, "line %d: out of memory", lineno);
        return -1;
    }
    t->postings = grown;
    t->postings[t->n_postings++] = p;
    return 0;
}

int ll_parse(const char *text, size_t len, ll_ledger *led, char *err, size_t cap)
{
    memset(led, 0, sizeof *led);
    int lineno = 0;
    const char *end = text + len;
    for (const char *line = text; line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        const char *next = nl ? nl + 1 : end;
        lineno++;
        if (*line == ';' || *line == '\n' || line == next) {
            line = next;
            continue;
        }
        if (isdigit((unsigned char)*line)) {
            ll_txn *grown = realloc(led->txns, (led->n_txns + 1) * sizeof *grown);
            if (!grown)
                return -1;
            led->txns = grown;
            ll_txn *t = &led->txns[led->n_txns++];
            memset(t, 0, sizeof *t);
            t->line = lineno;
            if (parse_date(line, t) != 0) {
                snprintf(err, cap, "line %d: bad date", lineno);
                return -1;
            }
            const char *payee = line + 10;
            while (*payee == ' ')
                payee++;
            size_t n = (size_t)(next - payee);
            while (n && (payee[n - 1] == '\n' || payee[n - 1] == ' '))
                n--;
            if (n >= sizeof t->payee)
                n = sizeof t->payee - 1;
            memcpy(t->payee, payee, n);
        } else if (led->n_txns && (*line == ' ' || *line == '\t')) {
            if (add_posting(&led->txns[led->n_txns - 1], line, err, cap, lineno) != 0)
                return -1;
        } else {
            snprintf(err, cap, "line %d: expected a date or an indented posting", lineno);
            return -1;
        }
        line = next;
    }
    return 0;
}
