#!/usr/bin/env python3
"""A month-end billing run on Spark: every contract of a folder settled on
one metrics export, each customer's rows settled together on an executor by
the `outcome_billing` package.

    python examples/spark/billing_run.py --contracts DIR --metrics PATH \\
        --out DIR [--as-of T] [--master local[2]] [--sorted-csv FILE]

writes

    OUT/lines/    the statement lines, one row per line, with the columns of
                  `outcome settle --format csv` (Parquet, or CSV with
                  `--out-format csv`), all strings: exact decimals stay text
    OUT/errors/   one row per contract that failed: contract, error
    FILE          with --sorted-csv: the lines as one CSV, ordered as
                  `outcome settle DIR --format csv` orders them (contract id
                  byte order, then period, then line order), so that
                  the two can be compared with `cmp`

How it works:

1. The metrics (CSV or Parquet) are read with every column as a string. No
   value is ever a float: amounts reach the library as the exact text they
   were written in.
2. Rows with an empty `customer` are read by every contract (see
   docs/metric-data.md). They are collected on the driver and broadcast once
   with the contracts' texts, `{customer: [(id, text, format), ...]}`.
3. `groupBy("customer").applyInArrow(settle_group, ...)` hands each customer's
   rows to `settle_group` as one Arrow table. It adds the shared rows, loads
   that customer's contracts (compiled once per executor process) and settles
   them with `Contract.settle_csv_text`, the same code `outcome settle` runs.
   A customer with contracts but no rows of its own still gets a group: one
   placeholder row per contract customer is added to the data and dropped
   again inside `settle_group`.
4. The lines are written as a table; a contract that fails has no lines and
   one row in OUT/errors, as the command line prints its error and goes on.

Exit status: 0 when every contract settled, 1 when one failed, 2 for an
invalid contract or a usage error (no contracts, two files with one id, a
float column in Parquet).
"""

import argparse
import csv
import hashlib
import io
import os
import sys

import pyarrow as pa

# The contract file extensions `outcome settle DIR` reads, and the format
# name `Contract.from_str` takes for each.
CONTRACT_FORMATS = {".toml": "toml", ".json": "json", ".yaml": "yaml", ".yml": "yml"}

# The columns of `outcome settle --format csv`, in order.
LINE_COLUMNS = ["contract", "period_start", "period_end", "charge", "kind", "quantity", "amount", "group"]

# What `settle_group` returns per customer: the CSV columns, the line's
# position in its contract's output (to restore the command line's order),
# and an error text for a contract that failed (then the other columns but
# `contract` are null).
RESULT_SCHEMA = pa.schema(
    [pa.field(name, pa.string()) for name in LINE_COLUMNS]
    + [pa.field("line", pa.int32()), pa.field("error", pa.string())]
)
RESULT_DDL = ", ".join(f"`{name}` string" for name in LINE_COLUMNS) + ", line int, error string"

# A column added to the data to mark the placeholder row that gives a
# customer without rows its group. Real rows have it null.
PLACEHOLDER = "__outcome_placeholder"


# ---------------------------------------------------------------------------
# Executor side. These run in Spark's Python workers. The script ships itself
# to them (`addPyFile`) and the driver passes `billing_run.settle_group`, so
# the function is pickled by reference and `_COMPILED` below is one dict per
# worker process, kept across tasks: a contract is compiled once per process,
# not once per task. (A function defined in `__main__` would be pickled by
# value with a fresh copy of every global it uses, for every task.)

# sha256 of (format, text) -> compiled `outcome_billing.Contract`.
_COMPILED = {}


def compiled_contract(text, fmt):
    """The contract of this text, compiled once per worker process."""
    from outcome_billing import Contract

    key = hashlib.sha256(fmt.encode() + b"\0" + text.encode("utf-8")).hexdigest()
    contract = _COMPILED.get(key)
    if contract is None:
        contract = _COMPILED[key] = Contract.from_str(text, format=fmt)
    return contract


def error_text(e):
    """An `OutcomeError` as the command line prints it (without `error: `)."""
    location = getattr(e, "location", None)
    message = getattr(e, "message", str(e))
    return f"{message}\n  at {location}" if location else message


def settle_customer(customer, rows, contracts, as_of):
    """Settle one customer's contracts on its rows (shared rows included).

    Returns the result columns as a dict of lists (RESULT_SCHEMA's names).
    Pure: the same rows and contracts give the same lines, so a retried or
    speculative task writes exactly what the first attempt would have.
    """
    from outcome_billing import OutcomeError

    out = {name: [] for name in RESULT_SCHEMA.names}

    def emit(values, line, error):
        for name, value in zip(LINE_COLUMNS, values):
            out[name].append(value)
        out["line"].append(line)
        out["error"].append(error)

    for contract_id, text, fmt in contracts:
        try:
            contract = compiled_contract(text, fmt)
            csv_text = contract.settle_csv_text(rows=rows, as_of=as_of)
        except OutcomeError as e:
            emit([contract_id] + [None] * (len(LINE_COLUMNS) - 1), None, error_text(e))
            continue
        records = csv.reader(io.StringIO(csv_text, newline=""))
        header = next(records)
        if header != LINE_COLUMNS:
            raise RuntimeError(f"unexpected CSV header from the package: {header}")
        for n, record in enumerate(records):
            emit(record, n, None)
    return out


def make_settle_group(shared, as_of):
    """The function `applyInArrow` calls once per customer group.

    `shared` is the broadcast `(shared rows, {customer: contracts})`; its value
    is read on the executor, once per worker process.
    """

    def settle_group(key, table):
        customer = key[0].as_py()
        shared_rows, contracts_by_customer = shared.value
        contracts = contracts_by_customer.get(customer)
        if not contracts:
            # Rows of a customer no contract bills: nobody reads them.
            return RESULT_SCHEMA.empty_table()
        # The group's own rows (the placeholder dropped), then the rows every
        # contract reads. Each row is a dict of column -> str or None (empty).
        placeholder = table.column(PLACEHOLDER).is_null()
        own = table.filter(placeholder).drop_columns([PLACEHOLDER]).to_pylist()
        out = settle_customer(customer, own + shared_rows, contracts, as_of)
        return pa.Table.from_pydict(out, schema=RESULT_SCHEMA)

    return settle_group


# ---------------------------------------------------------------------------
# Driver side.


def usage_error(message):
    """Stop with exit status 2, as the command line does for usage errors."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def load_contracts(directory):
    """The contract files directly in DIRECTORY, as `outcome settle DIR` takes
    them: `{customer: [(id, text, format), ...]}` and the invalid ones as
    `[(file, error)]`. Two files with one id is a usage error."""
    from outcome_billing import Contract, OutcomeError

    by_customer, invalid, seen = {}, [], {}
    for name in sorted(os.listdir(directory)):
        fmt = CONTRACT_FORMATS.get(os.path.splitext(name)[1])
        path = os.path.join(directory, name)
        if fmt is None or not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8") as f:
            text = f.read()
        try:
            contract = Contract.from_str(text, format=fmt)  # validated on the driver
        except OutcomeError as e:
            invalid.append((name, error_text(e)))
            continue
        if contract.id in seen:
            usage_error(f"{seen[contract.id]} and {name} have one id: {contract.id}")
        seen[contract.id] = name
        by_customer.setdefault(contract.customer, []).append((contract.id, text, fmt))
    return by_customer, invalid


def read_metrics(spark, path):
    """The metric rows as a DataFrame of string columns, and the column names."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    if path.rstrip("/").endswith(".parquet"):  # a Parquet file, or a folder of them
        df = spark.read.parquet(path)
        columns = []
        for field in df.schema.fields:
            c = F.col(f"`{field.name}`")
            if isinstance(field.dataType, (T.FloatType, T.DoubleType)):
                # A float cannot hold 0.1: refuse it rather than bill a rounding error.
                usage_error(
                    f"{path}: column {field.name} is {field.dataType.simpleString()}; "
                    "write amounts as decimal or string"
                )
            if isinstance(field.dataType, T.TimestampNTZType):
                # Which instant is it? The data spec wants an offset; don't guess.
                usage_error(f"{path}: column {field.name} is a timestamp without time zone")
            if isinstance(field.dataType, T.TimestampType):
                # An instant: RFC 3339 with its offset (the session time zone is UTC).
                c = F.date_format(c, "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX")
            # Decimal, integer, date and boolean columns cast to their exact text.
            columns.append(c.cast("string").alias(field.name))
        df = df.select(columns)
    else:
        # No schema inference: every column is a string. RFC 4180 quoting
        # (a quote is escaped by doubling it), and a malformed line fails the
        # job rather than becoming nulls.
        df = (
            spark.read.option("header", True)
            .option("inferSchema", False)
            .option("escape", '"')
            .option("mode", "FAILFAST")
            .csv(path)
        )
    return df, df.columns


def write_sorted_csv(lines, path):
    """The lines as one CSV, in the command line's order, written by the driver."""
    from pyspark.sql import functions as F

    # Spark compares strings by their UTF-8 bytes: the byte order of ids.
    ordered = lines.orderBy(F.col("contract"), F.col("line"))
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(LINE_COLUMNS)
        for row in ordered.select(LINE_COLUMNS).toLocalIterator():
            writer.writerow(["" if v is None else v for v in row])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--contracts", required=True, metavar="DIR", help="folder of contract files")
    ap.add_argument("--metrics", required=True, metavar="PATH", help="metric data: .csv or .parquet")
    ap.add_argument("--out", required=True, metavar="DIR", help="output folder (replaced)")
    ap.add_argument("--as-of", metavar="T", help="RFC 3339 instant or date, as for `outcome settle`")
    ap.add_argument("--master", default="local[2]", help="Spark master (default local[2])")
    ap.add_argument("--out-format", choices=("parquet", "csv"), default="parquet")
    ap.add_argument("--partitions", type=int, help="shuffle partitions (default: Spark's)")
    ap.add_argument("--sorted-csv", metavar="FILE", help="also write one CSV ordered as the command line orders it")
    args = ap.parse_args(argv)

    contracts, invalid = load_contracts(args.contracts)
    for name, error in invalid:
        print(f"error: {error}\n  in {name}", file=sys.stderr)
    if not contracts and not invalid:
        print(f"error: no contract files in {args.contracts}", file=sys.stderr)
        return 2

    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    builder = (
        SparkSession.builder.master(args.master)
        .appName("outcome billing run")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        # Let adaptive execution merge small shuffle partitions even though the
        # result is cached (a few customers per task instead of 200 tiny tasks).
        .config("spark.sql.optimizer.canChangeCachedPlanOutputPartitioning", "true")
    )
    if args.partitions:
        builder = builder.config("spark.sql.shuffle.partitions", str(args.partitions))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    # Ship this file to the executors so that `settle_group`'s module, and its
    # cache of compiled contracts, is importable there (see _COMPILED).
    spark.sparkContext.addPyFile(os.path.abspath(__file__))
    import billing_run  # this file, as a module the workers can import

    metrics, columns = read_metrics(spark, args.metrics)
    if "customer" not in columns:
        # Without the column, every row is every contract's.
        metrics = metrics.withColumn("customer", F.lit(None).cast("string"))
        columns = metrics.columns
    is_shared = F.col("customer").isNull() | (F.col("customer") == "")

    # The rows every contract reads, collected once and broadcast with the
    # contracts: one copy per executor, not one per row or per task.
    shared_rows = [row.asDict() for row in metrics.filter(is_shared).collect()]
    shared = spark.sparkContext.broadcast((shared_rows, contracts))

    # One placeholder row per contract customer, so that a customer with no
    # rows of its own still gets a group (and is settled on the shared rows).
    placeholders = spark.createDataFrame(
        [[customer if c == "customer" else None for c in columns] + ["1"] for customer in sorted(contracts)],
        schema=", ".join(f"`{c}` string" for c in columns) + f", `{PLACEHOLDER}` string",
    )
    own_rows = metrics.filter(~is_shared).withColumn(PLACEHOLDER, F.lit(None).cast("string"))
    grouped = own_rows.unionByName(placeholders).groupBy("customer")

    result = grouped.applyInArrow(billing_run.make_settle_group(shared, args.as_of), RESULT_DDL)
    # Written twice (lines, errors) and maybe sorted: settle once.
    result = result.persist()

    lines = result.filter(F.col("error").isNull()).drop("error")
    errors = result.filter(F.col("error").isNotNull()).select("contract", "error")
    writer = lines.select(LINE_COLUMNS).write.mode("overwrite")
    if args.out_format == "csv":
        # Empty cells stay empty (Spark would write "" for an empty string).
        writer.option("header", True).option("emptyValue", "").csv(os.path.join(args.out, "lines"))
    else:
        writer.parquet(os.path.join(args.out, "lines"))
    errors.orderBy("contract").write.mode("overwrite").option("header", True).csv(os.path.join(args.out, "errors"))
    if args.sorted_csv:
        write_sorted_csv(lines, args.sorted_csv)

    failed = errors.collect()
    for row in failed:
        print(f"error: {row.error}\n  at contract {row.contract}", file=sys.stderr)
    spark.stop()
    # As the command line: 2 for an invalid contract, 1 for a failed settlement.
    return 2 if invalid else 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
