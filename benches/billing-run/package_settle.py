#!/usr/bin/env python3
"""Settle the generated billing run with the `outcome_billing` package in one
Python process: the baseline the Spark example is measured against.

    python benches/billing-run/package_settle.py CONTRACTS_DIR METRICS.csv --as-of T [--run] > lines.csv

Reads the metrics once with `csv.DictReader` (every cell a string), groups
the rows by customer, and settles each contract, in id order, on its
customer's rows and the rows with an empty customer with
`Contract.settle_csv_text`. Prints the lines as `outcome settle --format
csv` does; a contract that fails prints its error on stderr and has no
lines (exit status 1).

With `--run`, the package's `BillingRun` settles every contract on one read
of the file instead, on every core, as `outcome settle DIR` does (a contract
that fails stops the run with its error).
"""

import argparse
import csv
import os
import sys

from outcome_billing import BillingRun, Contract, OutcomeError

FORMATS = {".toml": "toml", ".json": "json", ".yaml": "yaml", ".yml": "yml"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("contracts_dir")
    ap.add_argument("metrics")
    ap.add_argument("--as-of")
    ap.add_argument("--run", action="store_true", help="settle with BillingRun on one read of the file")
    args = ap.parse_args()

    contracts = []
    for name in sorted(os.listdir(args.contracts_dir)):
        fmt = FORMATS.get(os.path.splitext(name)[1])
        if fmt:
            contracts.append(Contract.from_path(os.path.join(args.contracts_dir, name)))
    contracts.sort(key=lambda c: c.id.encode())
    if args.run:
        try:
            sys.stdout.write(BillingRun(contracts).settle_csv_text(csv=args.metrics, as_of=args.as_of))
        except OutcomeError as e:
            print(f"error: {e}\n  at contract {getattr(e, 'contract', '?')}", file=sys.stderr)
            return 1
        return 0

    by_customer = {}
    with open(args.metrics, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            by_customer.setdefault(row.get("customer") or "", []).append(row)
    shared = by_customer.get("", [])

    out = sys.stdout
    out.write("contract,period_start,period_end,charge,kind,quantity,amount,group\n")
    status = 0
    for c in contracts:
        try:
            text = c.settle_csv_text(rows=by_customer.get(c.customer, []) + shared, as_of=args.as_of)
        except OutcomeError as e:
            print(f"error: {e}\n  at contract {c.id}", file=sys.stderr)
            status = 1
            continue
        out.write(text.split("\n", 1)[1])
    return status


if __name__ == "__main__":
    sys.exit(main())
