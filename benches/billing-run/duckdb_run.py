#!/usr/bin/env python3
"""Settle the generated billing run with DuckDB SQL (settle.sql).

    python3 duckdb_run.py prepare DB.duckdb TERMS.csv
    python3 duckdb_run.py settle  DB.duckdb METRICS.csv --as-of T [--by-contract]

`prepare` (not timed) loads the contracts' numbers from terms.csv into the
table `terms` of a persistent database file. `settle` (the timed process)
opens that file read-only, reads the metrics CSV with `read_csv` and explicit
column types, runs settle.sql and prints the grand total (or, with
`--by-contract`, a CSV of `contract,total`).

Needs the `duckdb` package (compare.py installs it into a virtualenv).

What the SQL does not do that the crate does: it trusts the data to have no
two different versions of one id recorded at the same time (the crate and
python_settle.py report those), and DuckDB's DECIMAL cast accepts an exponent
(`1e3`) that the format rejects. The generated data has neither.
"""

import argparse
import os
import sys

import duckdb

HERE = os.path.dirname(os.path.abspath(__file__))

# Types of the metric columns; any other column is a dimension (text).
METRIC_TYPES = {
    "customer": "VARCHAR",
    "series": "VARCHAR",
    "timestamp": "TIMESTAMPTZ",
    "value": "DECIMAL(18,4)",
    "id": "VARCHAR",
    "recorded_at": "TIMESTAMPTZ",
    "void": "BOOLEAN",
}

# Types of terms.csv: money, prices, rates and KPI edges are DECIMAL.
TERMS_TYPES = {
    "contract": "VARCHAR",
    "customer": "VARCHAR",
    "term_start": "DATE",
    "term_end": "DATE",
}
MONEY = "DECIMAL(18,4)"


def sql_string(s):
    return "'" + s.replace("'", "''") + "'"


def columns_struct(header, types, default):
    """A read_csv `columns` struct in the file's own column order."""
    return "{" + ", ".join(f"{sql_string(name)}: {sql_string(types.get(name, default))}" for name in header) + "}"


def read_header(path):
    with open(path, newline="") as f:
        return f.readline().rstrip("\r\n").split(",")


def prepare(db, terms):
    header = read_header(terms)
    if os.path.exists(db):
        os.remove(db)
    con = duckdb.connect(db)
    con.execute(
        "CREATE TABLE terms AS SELECT * FROM read_csv("
        f"{sql_string(terms)}, header = true, auto_detect = false, "
        f"columns = {columns_struct(header, TERMS_TYPES, MONEY)})"
    )
    n = con.execute("SELECT count(*) FROM terms").fetchone()[0]
    con.close()
    print(f"{db}: {n} contracts", file=sys.stderr)


def settle(db, metrics, as_of, by_contract):
    header = read_header(metrics)
    for req in ("series", "timestamp", "value"):
        if req not in header:
            sys.exit(f"error: {metrics}: no {req} column")
    source = (
        f"read_csv({sql_string(metrics)}, header = true, auto_detect = false, "
        f"columns = {columns_struct(header, METRIC_TYPES, 'VARCHAR')})"
    )
    # Optional columns the file lacks read as NULL.
    missing = [c for c in ("customer", "id", "recorded_at", "void") if c not in header]
    if missing:
        extra = ", ".join(f"NULL::{METRIC_TYPES[c]} AS {c}" for c in missing)
        source = f"(SELECT *, {extra} FROM {source})"
    line_sum = "sum(platform + usage + gain + credit)"
    if by_contract:
        select = f"contract, {line_sum} AS total, count(*) FILTER (WHERE uptime IS NULL) AS missing"
        group = "GROUP BY contract ORDER BY contract"
    else:
        select = f"{line_sum} AS total, count(*) FILTER (WHERE uptime IS NULL) AS missing"
        group = ""
    with open(os.path.join(HERE, "settle.sql")) as f:
        sql = f.read()
    sql = (
        sql.replace("@METRICS@", source)
        .replace("@AS_OF@", f"{sql_string(as_of)}::TIMESTAMPTZ")
        .replace("@SELECT@", select)
        .replace("@GROUP@", group)
    )

    con = duckdb.connect(db, read_only=True)
    # Periods are calendar months in UTC, whatever the machine's zone.
    con.execute("SET TimeZone = 'UTC'")
    rows = con.execute(sql).fetchall()
    if sum(r[-1] or 0 for r in rows):
        # The crate fails a contract whose `min` uptime has no observation.
        sys.exit("error: a settled period has no uptime_pct observation")
    if by_contract:
        sys.stdout.write("contract,total\n" + "".join(f"{r[0]},{r[1]}\n" for r in rows))
    else:
        total = rows[0][0]
        print("0.00" if total is None else total)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="load terms.csv into a database file (not timed)")
    p.add_argument("db")
    p.add_argument("terms")
    s = sub.add_parser("settle", help="settle the metrics against the terms (timed)")
    s.add_argument("db")
    s.add_argument("metrics")
    s.add_argument("--as-of", required=True)
    s.add_argument("--by-contract", action="store_true")
    args = ap.parse_args()
    if args.cmd == "prepare":
        prepare(args.db, args.terms)
    else:
        settle(args.db, args.metrics, args.as_of, args.by_contract)


if __name__ == "__main__":
    main()
