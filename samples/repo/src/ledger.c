/* ledger.c — balancing transactions and summing accounts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger.h"

int ll_check(ll_ledger *led, char *err, size_t cap)
{
    for (size_t i = 0; i < led->n_txns; i++) {
        ll_txn *t = &led->txns[i];
        ll_money sum = 0;
        ll_posting *elided = NULL;
        for (size_t k = 0; k < t->n_postings; k++) {
            ll_posting *p = &t->postings[k];
            if (!p->has_amount) {
                if (elided) {
                    snprintf(err, cap, "line %d: two postings without an amount", t->line);
                    return -1;
                }
                elided = p;
                continue;
            }
            sum += p->amount;
        }
        if (elided) {
            elided->amount = -sum;
            elided->has_amount = 1;
        } else if (sum != 0) {
            char buf[32];
            ll_money_format(sum, buf, sizeof buf);
            snprintf(err, cap, "line %d: transaction '%s' is off by %s", t->line, t->payee, buf);
            return -1;
        }
    }
    return 0;
}

static int by_account(const void *a, const void *b)
{
    return strcmp(((const ll_balance *)a)->account, ((const ll_balance *)b)->account);
}

int ll_balances(const ll_ledger *led, ll_balance **out, size_t *n_out)
{
    ll_balance *bal = NULL;
    size_t n = 0;
    for (size_t i = 0; i < led->n_txns; i++) {
        for (size_t k = 0; k < led->txns[i].n_postings; k++) {
            const ll_posting *p = &led->txns[i].postings[k];
            size_t j = 0;
            while (j < n && strcmp(bal[j].account, p->account) != 0)
                j++;
            if (j == n) {
                ll_balance *grown = realloc(bal, (n + 1) * sizeof *grown);
                if (!grown) {
                    free(bal);
                    return -1;
                }
                bal = grown;
                bal[n++] = (ll_balance){p->account, 0};
            }
            bal[j].total += p->amount;
        }
    }
    qsort(bal, n, sizeof *bal, by_account);
    *out = bal;
    *n_out = n;
    return 0;
}

void ll_ledger_free(ll_ledger *led)
{
    for (size_t i = 0; i < led->n_txns; i++)
        free(led->txns[i].postings);
    free(led->txns);
    led->txns = NULL;
    led->n_txns = 0;
}
