#!/usr/bin/env python3
"""Monthly income/expense report for a ledgerlite file.

    python3 scripts/report.py examples/household.ledger --month 2024-02
"""
import argparse
import collections
import re
import sys

DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})\s+(.*)$")
POSTING = re.compile(r"^\s+(\S(?:.*?\S)?)(?:\s{2,}|\t)(-?[\d,]+(?:\.\d{1,2})?)\s*$")


def parse(path):
    """Yields (month, account, cents) for every posting; the one posting of a
    transaction that has no amount gets the negated sum of the others."""
    month, postings = None, []

    def flush():
        known = sum(c for _, c in postings if c is not None)
        for account, cents in postings:
            yield month, account, -known if cents is None else cents
        postings.clear()

    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith(";") or not line.strip():
                continue
            m = DATE.match(line)
            if m:
                yield from flush()
                month = f"{m.group(1)}-{m.group(2)}"
                continue
            p = POSTING.match(line)
            if p:
                postings.append((p.group(1), round(float(p.group(2).replace(",", "")) * 100)))
            elif line.strip():
                postings.append((line.strip(), None))
    yield from flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ledger")
    ap.add_argument("--month", help="YYYY-MM; default: every month")
    args = ap.parse_args()
    totals = collections.defaultdict(int)
    for month, account, cents in parse(args.ledger):
        if args.month and month != args.month:
            continue
        top = account.split(":")[0]
        if top in ("Income", "Expenses"):
            totals[account] += cents
    if not totals:
        print("no income or expenses", file=sys.stderr)
        return 1
    width = max(len(a) for a in totals)
    for account in sorted(totals):
        print(f"{account:<{width}}  {totals[account] / 100:>10.2f}")
    net = -sum(totals.values())
    print(f"{'net':<{width}}  {net / 100:>10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
