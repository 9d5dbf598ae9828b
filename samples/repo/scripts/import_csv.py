#!/usr/bin/env python3
"""Converts a bank's CSV export (date;payee;amount) to ledgerlite transactions.

Each row becomes a transaction against the given bank account; the other
side goes to Expenses:Unsorted (or Income:Unsorted for positive amounts) so
that the result always balances and can be sorted by hand afterwards.
"""
import csv
import sys


def convert(rows, bank_account):
    for date, payee, amount in rows:
        day, month, year = date.split(".")
        value = amount.replace(".", "").replace(",", ".")
        other = "Income:Unsorted" if not value.startswith("-") else "Expenses:Unsorted"
        yield (f"{year}-{month}-{day} {payee.strip()}\n"
               f"    {bank_account}  {value}\n"
               f"    {other}\n\n")


def main(argv):
    if len(argv) != 3:
        print("usage: import_csv.py EXPORT.csv BANK_ACCOUNT", file=sys.stderr)
        return 2
    with open(argv[1], newline="", encoding="utf-8") as f:
        rows = [r for r in csv.reader(f, delimiter=";") if r and not r[0].startswith("Date")]
    sys.stdout.writelines(convert(rows, argv[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
