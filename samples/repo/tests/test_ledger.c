/* test_ledger.c — parser and balance checks. */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "ledger.h"

static void test_elided_amount(void)
{
    const char *text = "2024-01-05 Rent\n    Expenses:Rent  950.00\n    Assets:Bank\n";
    ll_ledger led;
    char err[128];
    assert(ll_parse(text, strlen(text), &led, err, sizeof err) == 0);
    assert(ll_check(&led, err, sizeof err) == 0);
    assert(led.txns[0].postings[1].amount == -95000);
    ll_ledger_free(&led);
}

static void test_unbalanced(void)
{
    const char *text = "2024-01-05 Typo\n    Expenses:Food  10.00\n    Assets:Bank  -9.00\n";
    ll_ledger led;
    char err[128];
    assert(ll_parse(text, strlen(text), &led, err, sizeof err) == 0);
    assert(ll_check(&led, err, sizeof err) != 0);
    assert(strstr(err, "off by 1.00"));
    ll_ledger_free(&led);
}

static void test_money(void)
{
    ll_money m;
    assert(ll_money_parse("1,250.5", &m) == 0 && m == 125050);
    assert(ll_money_parse("-3", &m) == 0 && m == -300);
    assert(ll_money_parse("1.234", &m) != 0);
}

int main(void)
{
    test_elided_amount();
    test_unbalanced();
    test_money();
    puts("ok");
    return 0;
}
