/* main.c — ledgerlite command line: check | balance FILE */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger.h"

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        *len = (size_t)n;
    }
    return buf;
}

static int usage(void)
{
    fprintf(stderr, "usage: ledgerlite check|balance FILE\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return usage();
    size_t len = 0;
    char *text = slurp(argv[2], &len);
    if (!text) {
        perror(argv[2]);
        return 1;
    }
    ll_ledger led;
    char err[256];
    if (ll_parse(text, len, &led, err, sizeof err) != 0 || ll_check(&led, err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s\n", argv[2], err);
        free(text);
        ll_ledger_free(&led);
        return 1;
    }
    int rc = 0;
    if (strcmp(argv[1], "check") == 0) {
        printf("%zu transactions, all balanced\n", led.n_txns);
    } else if (strcmp(argv[1], "balance") == 0) {
        ll_balance *bal;
        size_t n;
        if (ll_balances(&led, &bal, &n) == 0) {
            for (size_t i = 0; i < n; i++) {
                char buf[32];
                ll_money_format(bal[i].total, buf, sizeof buf);
                printf("%14s  %s\n", buf, bal[i].account);
            }
            free(bal);
        }
    } else {
        rc = usage();
    }
    ll_ledger_free(&led);
    free(text);
    return rc;
}
