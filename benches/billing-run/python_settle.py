#!/usr/bin/env python3
"""Settle the generated billing run in plain Python with exact decimals.

    python3 benches/billing-run/python_settle.py CONTRACTS_DIR METRICS.csv --as-of T [--by-contract]

One process, standard library only: the contract files are read with
`tomllib`, the metrics with `csv`, and every amount is a `decimal.Decimal`,
rounded half-even to the contract's 2 places once per line. Prints the grand
total of every line of every contract (or, with `--by-contract`, a CSV of
`contract,total`).

It implements the rules of the contract format and the metric data pages for
the shape of contract that `generate.py` writes (fixed, graduated tiered,
gain_share against a fixed baseline, bands on a metric; monthly cadence in
UTC); anything else in a contract is refused rather than guessed:

* a contract reads the rows whose `customer` is its own or empty;
* rows with an `id` are versions of one observation per (customer, series,
  id): rows recorded after `--as-of` are ignored, the latest `recorded_at`
  wins (default: the timestamp), a tie between different versions is an
  error, and a winning `void = true` version removes the observation; rows
  without an `id` all count;
* an observation's period is the calendar month (UTC) of the winning
  version's timestamp;
* the periods settled are those that have ended by `--as-of`, and any later
  one up to the last that holds an observation the contract reads;
* metrics aggregate with `sum` or `min` (`missing`: zero for sum, an error
  for min), and each line is rounded once.
"""

import argparse
import csv
import os
import re
import sys
import tomllib
from datetime import datetime, timezone
from decimal import ROUND_HALF_EVEN, Context, Decimal, setcontext

# Plenty of digits: every product and sum here is exact.
setcontext(Context(prec=60, rounding=ROUND_HALF_EVEN))
ZERO = Decimal(0)
CENT = Decimal("0.01")
HUNDRED = Decimal(100)
# An optional sign, digits and an optional fraction; no exponent.
DECIMAL_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\Z")


class SettleError(Exception):
    """A contract or data error: the run fails, as the crate's would."""


def parse_instant(text):
    """RFC 3339 (or a date meaning midnight UTC, the contracts' time zone)."""
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        if len(text) != 10:
            raise SettleError(f"timestamp without an offset: {text!r}")
        return dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def parse_decimal(text):
    """A decimal without exponent, as the format page defines it."""
    if not DECIMAL_RE.match(text):
        raise SettleError(f"malformed decimal {text!r}")
    return Decimal(text)


class Contract:
    """One contract of the generated shape, with its numbers resolved."""

    def __init__(self, path):
        with open(path, "rb") as f:
            doc = tomllib.load(f)
        self.path = path
        self.id = doc["id"]
        self.customer = doc["customer"]
        if doc.get("format") != 1 or doc.get("cadence") != "monthly":
            raise SettleError(f"{path}: only format 1, monthly contracts are supported here")
        if doc.get("timezone", "UTC") != "UTC" or "anchor" in doc or "amendments" in doc:
            raise SettleError(f"{path}: only UTC contracts without anchor or amendments")
        if doc.get("rounding", {"scale": 2, "mode": "half_even"}) != {"scale": 2, "mode": "half_even"}:
            raise SettleError(f"{path}: only 2-place half-even rounding")
        if doc.get("limits") or doc.get("kpis"):
            raise SettleError(f"{path}: limits and KPIs are not supported here")
        self.params = {k: parse_decimal(str(v)) for k, v in doc.get("params", {}).items()}
        # Periods: calendar months [start, end) as (year, month) keys.
        start = datetime.fromisoformat(doc["start"])
        end = datetime.fromisoformat(doc["end"])
        if start.day != 1 or end.day != 1:
            raise SettleError(f"{path}: the term must start and end on a first of the month")
        self.periods = []
        y, m = start.year, start.month
        while (y, m) < (end.year, end.month):
            self.periods.append((y, m))
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        # Metrics: name -> (series, aggregate).
        self.metrics = {}
        for name, spec in doc.get("metrics", {}).items():
            agg = spec["aggregate"]
            if agg not in ("sum", "min") or "filter" in spec or spec.get("window", "period") != "period":
                raise SettleError(f"{path}: metric {name}: only sum or min over the period")
            missing = spec.get("missing", "zero" if agg == "sum" else "error")
            self.metrics[name] = (spec.get("series", name), agg, missing)
        self.baselines = {}
        for name, spec in doc.get("baselines", {}).items():
            if spec["kind"] != "fixed":
                raise SettleError(f"{path}: baseline {name}: only fixed baselines")
            self.baselines[name] = self.num(spec["value"])
        self.charges = doc["charges"]
        for ch in self.charges:
            if ch["kind"] not in ("fixed", "tiered", "gain_share", "bands"):
                raise SettleError(f"{path}: charge {ch['id']}: kind {ch['kind']} not supported here")

    def num(self, v):
        """A decimal literal or the name of a param (no other expressions)."""
        v = str(v)
        if v in self.params:
            return self.params[v]
        return parse_decimal(v)

    def series(self):
        """The series this contract reads."""
        return {s for s, _, _ in self.metrics.values()}


class Data:
    """The winning observations, aggregated per (customer, series, month).

    For every key it keeps [sum, min, count]; the contracts pick what their
    metrics need.
    """

    def __init__(self, path, as_of):
        self.agg = {}
        self.last_month = {}  # (customer, series) -> last (year, month) holding an observation
        versions = {}  # (customer, series, id) -> (recorded_at, timestamp, value, void, line)
        with open(path, newline="") as f:
            reader = csv.reader(f)
            header = next(reader)
            col = {name: i for i, name in enumerate(header)}
            for req in ("series", "timestamp", "value"):
                if req not in col:
                    raise SettleError(f"{path}: no {req} column")
            i_cust = col.get("customer")
            i_series, i_ts, i_val = col["series"], col["timestamp"], col["value"]
            i_id, i_rec, i_void = col.get("id"), col.get("recorded_at"), col.get("void")
            for line, row in enumerate(reader, start=2):
                if len(row) != len(header):
                    raise SettleError(f"{path}:{line}: {len(row)} fields, the header has {len(header)}")
                # Every row is checked, whoever's it is.
                try:
                    ts = parse_instant(row[i_ts])
                except ValueError:
                    raise SettleError(f"{path}:{line}:{i_ts + 1}: malformed timestamp") from None
                value = parse_decimal(row[i_val])
                rec_text = row[i_rec] if i_rec is not None else ""
                try:
                    rec = parse_instant(rec_text) if rec_text else ts
                except ValueError:
                    raise SettleError(f"{path}:{line}:{i_rec + 1}: malformed recorded_at") from None
                void_text = row[i_void] if i_void is not None else ""
                if void_text in ("", "false"):
                    void = False
                elif void_text == "true":
                    void = True
                else:
                    raise SettleError(f"{path}:{line}:{i_void + 1}: void must be true, false or empty")
                if rec > as_of:
                    continue
                customer = row[i_cust] if i_cust is not None else ""
                series = row[i_series]
                oid = row[i_id] if i_id is not None else ""
                if not oid:
                    self.add(customer, series, ts, value)
                    continue
                key = (customer, series, oid)
                old = versions.get(key)
                if old is None or rec > old[0]:
                    versions[key] = (rec, ts, value, void, line)
                elif rec == old[0] and (ts, value, void) != old[1:4]:
                    # Rows differing in any other column would also conflict;
                    # the generated data has none.
                    raise SettleError(f"{path}: lines {old[4]} and {line}: two versions of {oid} recorded at the same time")
        for (customer, series, _), (_, ts, value, void, _) in versions.items():
            if not void:
                self.add(customer, series, ts, value)
        for (customer, series, month) in self.agg:
            last = self.last_month.get((customer, series))
            if last is None or month > last:
                self.last_month[(customer, series)] = month

    def add(self, customer, series, ts, value):
        key = (customer, series, (ts.year, ts.month))
        a = self.agg.get(key)
        if a is None:
            self.agg[key] = [value, value, 1]
        else:
            a[0] += value
            if value < a[1]:
                a[1] = value
            a[2] += 1

    def last_observed(self, contract):
        """The last month holding an observation the contract reads, or None."""
        months = [
            self.last_month.get((cust, series))
            for cust in (contract.customer, "")
            for series in contract.series()
        ]
        return max((m for m in months if m is not None), default=None)

    def metric(self, contract, name, month):
        """A metric's value for a contract's period (own rows and empty-customer rows)."""
        series, agg, missing = contract.metrics[name]
        parts = [self.agg.get((c, series, month)) for c in (contract.customer, "")]
        parts = [p for p in parts if p is not None]
        if not parts:
            if missing == "zero":
                return ZERO
            raise SettleError(f"{contract.id}: metric {name} has no observation in the period starting {month[0]}-{month[1]:02d}-01")
        if agg == "sum":
            return sum((p[0] for p in parts), ZERO)
        return min(p[1] for p in parts)


def line_round(x):
    return x.quantize(CENT, rounding=ROUND_HALF_EVEN)


def settle_period(c, data, month):
    """The rounded lines of one period, in charge order: {charge id: amount}."""
    lines = {}
    for ch in c.charges:
        kind = ch["kind"]
        if kind == "fixed":
            amount = c.num(ch["amount"])
        elif kind == "tiered":
            if ch["mode"] != "graduated" or ch.get("accumulate", "period") != "period":
                raise SettleError(f"{c.id}: only graduated tiers per period")
            q = data.metric(c, ch["quantity"], month)
            if q < 0:
                raise SettleError(f"{c.id}: negative quantity for {ch['id']}")
            amount, lower = ZERO, ZERO
            for i, t in enumerate(ch["tiers"]):
                price = c.num(t.get("unit_price", "0"))
                upper = c.num(t["up_to"]) if "up_to" in t else None
                # A tier is reached: the first always, a later one when the
                # quantity exceeds the previous up_to.
                if i == 0 or q > lower:
                    amount += c.num(t.get("flat_fee", "0"))
                top = q if upper is None else min(q, upper)
                if top > lower:
                    amount += (top - lower) * price
                if upper is None or q <= upper:
                    break
                lower = upper
        elif kind == "gain_share":
            actual = data.metric(c, ch["actual"], month)
            baseline = c.baselines[ch["baseline"]]
            vpu = c.num(ch.get("value_per_unit", "1"))
            improvement = actual - baseline if ch["direction"] == "increase" else baseline - actual
            v = improvement * vpu
            thr = ch.get("threshold")
            threshold = ZERO
            if thr is not None:
                threshold = c.num(thr["relative"]) * baseline * vpu if "relative" in thr else c.num(thr["absolute"])
            share = c.num(ch["share"])
            amount = ZERO
            if v > 0 and v >= threshold:
                amount = share * v if ch.get("sharing", "first_dollar") == "first_dollar" else share * (v - threshold)
                cap = ch.get("cap")
                if cap is not None:
                    cap_money = c.num(cap["relative"]) * baseline * vpu if "relative" in cap else c.num(cap["amount"])
                    amount = min(amount, cap_money)
            if "losses" in ch:
                raise SettleError(f"{c.id}: losses are not supported here")
        elif kind == "bands":
            kpi = data.metric(c, ch["kpi"], month)
            amount = ZERO
            for b in ch["bands"]:
                lo = c.num(b["from"]) if "from" in b else None
                hi = c.num(b["to"]) if "to" in b else None
                if (lo is None or lo <= kpi) and (hi is None or kpi < hi):
                    if "amount" in b:
                        amount = c.num(b["amount"])
                    else:
                        base = sum((lines[x] for x in b["of"]), ZERO)
                        amount = c.num(b["percent"]) / HUNDRED * base
                    break
        lines[ch["id"]] = line_round(amount)
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("contracts_dir")
    ap.add_argument("metrics")
    ap.add_argument("--as-of", required=True, help="RFC 3339 or a date (midnight UTC)")
    ap.add_argument("--by-contract", action="store_true", help="print contract,total rows instead of the grand total")
    args = ap.parse_args()

    as_of = parse_instant(args.as_of)
    files = sorted(e.path for e in os.scandir(args.contracts_dir) if e.name.endswith(".toml"))
    contracts = [Contract(p) for p in files]
    contracts.sort(key=lambda c: c.id.encode())
    if len({c.id for c in contracts}) != len(contracts):
        raise SettleError("two contract files have one id")
    data = Data(args.metrics, as_of)

    grand = ZERO
    out = []
    for c in contracts:
        # Periods that have ended by as-of, and any later one up to the last
        # that holds an observation of this contract.
        last_obs = data.last_observed(c)
        total = ZERO
        for month in c.periods:
            y, m = month
            end = datetime(y + (m == 12), m % 12 + 1, 1, tzinfo=timezone.utc)
            if end > as_of and (last_obs is None or month > last_obs):
                break
            total += sum(settle_period(c, data, month).values(), ZERO)
        grand += total
        out.append(f"{c.id},{total}\n")
    if args.by_contract:
        sys.stdout.write("contract,total\n" + "".join(out))
    else:
        print(grand)


if __name__ == "__main__":
    try:
        main()
    except SettleError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
