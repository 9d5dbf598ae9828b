/* ledger.h — accounts, postings and transactions of a plain-text ledger. */
#ifndef LEDGER_H
#define LEDGER_H

#include <stddef.h>
#include "../src/money.h"

typedef struct ll_posting {
    char account[96];  /* "Assets:Bank:Checking" */
    ll_money amount;   /* cents; 0 with has_amount == 0 means "the rest" */
    int has_amount;
} ll_posting;

typedef struct ll_txn {
    int year, month, day;
    char payee[128];
    ll_posting *postings;
    size_t n_postings;
    int line;          /* line of the date in the source file */
} ll_txn;

typedef struct ll_ledger {
    ll_txn *txns;
    size_t n_txns;
} ll_ledger;

typedef struct ll_balance {
    const char *account;
    ll_money total;
} ll_balance;

/* Parses text into led. On error returns -1 and writes "line N: why" to err. */
int ll_parse(const char *text, size_t len, ll_ledger *led, char *err, size_t err_cap);

/* Fills in elided amounts and checks that every transaction sums to zero. */
int ll_check(ll_ledger *led, char *err, size_t err_cap);

/* Balances per account, sorted by account name; *out is malloc'd. */
int ll_balances(const ll_ledger *led, ll_balance **out, size_t *n_out);

void ll_ledger_free(ll_ledger *led);

#endif
