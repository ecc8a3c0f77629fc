#!/usr/bin/env python3
"""Generate a month-end billing run: N contract files, one metrics CSV and a
terms CSV, deterministically from a fixed seed.

    python3 benches/billing-run/generate.py OUT_DIR --contracts N [--months 12] [--seed S]

writes

    OUT_DIR/contracts/c000001.toml ...   one contract per customer (format 1)
    OUT_DIR/metrics.csv                  every customer's metric data, one file
    OUT_DIR/terms.csv                    the per-contract numbers of the contracts,
                                         one row per contract (for the SQL engine)
    OUT_DIR/meta.json                    N, months, seed, as-of, row count

Every contract has the same shape (a template) and its own numbers: a
monthly platform fee (`fixed`), graduated usage tiers on resolved tickets
(`tiered`), a share of revenue above a fixed baseline (`gain_share`, 2%
relative threshold, first-dollar sharing, a cap) and SLA credits on the
month's minimum uptime (`bands`, percent of platform + usage).

The term runs from 2026-01-01 for `--months` monthly periods in UTC; the
run is settled as of 14 days after the term's end (2027-01-15 for 12
months), when every period has ended.

Per contract and month, about 22 rows:

* ~15 `tickets_resolved` rows, whole counts, no id;
* 4 weekly `revenue` rows with a unique id and a `recorded_at`;
* 1 `uptime_pct` row, 3 decimals, stamped at the first instant of the month
  (mostly >= 99.9, sometimes lower so that credits happen);
* 1 to 3 corrections (about 2): later versions of that month's revenue ids,
  with a later `recorded_at` (two corrections of one id are ordered by it).
  About 1% are recorded after the as-of time (they must be ignored), 0.5%
  are `void = true` versions (the observation is removed unless a later
  version restores it), 1% move the observation's timestamp into the next
  month (the winning version's timestamp decides the period), and 0.2% of
  the first corrections are recorded exactly at the as-of time (they count).

Rows are written month by month, contract by contract: a month's block starts
with the corrections of the month before (recorded early in this one), then
this month's originals. About 0.3% of corrections are written *before* their
original, to make sure that file order does not matter. December's
corrections and the late ones close the file.

Written with plain `random.Random(seed)`: the same seed gives the same files
on every machine. No third-party package is needed.
"""

import argparse
import calendar
import hashlib
import json
import os
import random
import sys
import time

# The first day of the term; the term is `--months` monthly periods from it.
TERM_START = (2026, 1)
# Contracts written per buffered write of the metrics file.
CHUNK = 2000


def add_months(year, month, n):
    """(year, month) plus n months."""
    k = year * 12 + (month - 1) + n
    return k // 12, k % 12 + 1


def cents(c):
    """An integer number of cents as a decimal string (no exponent)."""
    sign = "-" if c < 0 else ""
    c = abs(c)
    return f"{sign}{c // 100}.{c % 100:02d}"


def contract_terms(rng, n):
    """Draw one contract's numbers. Returns a dict of decimal strings."""
    # Platform fee: whole dollars, a quarter of them with cents.
    fee = rng.randrange(500, 5001, 50) * 100
    if rng.random() < 0.25:
        fee -= 1  # 1499.99
    # Ticket volume per month and the tiers around it.
    volume = rng.randrange(300, 4500)
    allowance = rng.randrange(200, 2001, 50)
    tier2_to = allowance + rng.randrange(500, 3001, 100)
    price2 = rng.randrange(400, 1201)  # thousandths: 0.400 .. 1.200
    price3 = price2 * rng.randrange(6000, 8501) // 1000  # ten-thousandths: 60% .. 85% of price2
    # Revenue baseline (whole dollars), share, cap.
    baseline = rng.randrange(50, 501) * 1000
    share = rng.randrange(15, 31)  # hundredths: 0.15 .. 0.30
    cap = baseline * rng.randrange(15, 51) // 1000  # 1.5% .. 5% of baseline
    # SLA credit percentages (negative: credits).
    minor = rng.choice(("-5", "-10", "-10", "-15"))
    major = rng.choice(("-25", "-25", "-30"))
    return {
        "contract": f"c{n:06d}",
        "customer": f"cust{n:06d}",
        "fee": cents(fee),
        "volume": volume,
        "price1": "0",
        "allowance": str(allowance),
        "tier2_to": str(tier2_to),
        "price2": f"{price2 // 1000}.{price2 % 1000:03d}",
        "price3": f"{price3 // 10000}.{price3 % 10000:04d}",
        "baseline": str(baseline),
        "share": f"0.{share:02d}",
        "threshold_rel": "0.02",
        "cap": str(cap),
        "minor_from": "99.0",
        "minor_to": "99.9",
        "credit_minor": minor,
        "major_to": "99.0",
        "credit_major": major,
    }


CONTRACT_TEMPLATE = """\
# Generated billing-run contract (benches/billing-run/generate.py).
format = 1
id = "{contract}"
customer = "{customer}"
currency = "USD"
start = "{start}"
end = "{end}"
cadence = "monthly"
timezone = "UTC"

[params]
fee = "{fee}"
allowance = "{allowance}"
tier2_to = "{tier2_to}"
price2 = "{price2}"
price3 = "{price3}"
share = "{share}"
gain_cap = "{cap}"
credit_minor = "{credit_minor}"
credit_major = "{credit_major}"

[metrics.resolved]
series = "tickets_resolved"
aggregate = "sum"

[metrics.revenue]
series = "revenue"
aggregate = "sum"

[metrics.uptime]
series = "uptime_pct"
aggregate = "min"

[baselines.revenue_baseline]
kind = "fixed"
value = "{baseline}"

[[charges]]
id = "platform"
kind = "fixed"
amount = "fee"

[[charges]]
id = "usage"
kind = "tiered"
mode = "graduated"
quantity = "resolved"
tiers = [
  {{ up_to = "allowance", unit_price = "{price1}" }},
  {{ up_to = "tier2_to", unit_price = "price2" }},
  {{ unit_price = "price3" }},
]

[[charges]]
id = "revenue_share"
kind = "gain_share"
actual = "revenue"
baseline = "revenue_baseline"
direction = "increase"
share = "share"
threshold = {{ relative = "{threshold_rel}" }}
sharing = "first_dollar"
cap = {{ amount = "gain_cap" }}

[[charges]]
id = "sla_credit"
kind = "bands"
kpi = "uptime"
bands = [
  {{ from = "{minor_from}", to = "{minor_to}", percent = "credit_minor", of = ["platform", "usage"] }},
  {{ to = "{major_to}", percent = "credit_major", of = ["platform", "usage"] }},
]
"""

# Columns of terms.csv, in order: what the SQL engine needs of each contract.
TERMS_COLUMNS = [
    "contract", "customer", "term_start", "term_end", "fee", "price1",
    "allowance", "tier2_to", "price2", "price3", "baseline", "share",
    "threshold_rel", "cap", "minor_from", "minor_to", "credit_minor",
    "major_to", "credit_major",
]


class Month:
    """Precomputed timestamp strings of one month of the term."""

    def __init__(self, year, month):
        self.year, self.month = year, month
        self.ym = f"{year:04d}-{month:02d}"
        days = calendar.monthrange(year, month)[1]
        nyear, nmonth = add_months(year, month, 1)
        self.next_ym = f"{nyear:04d}-{nmonth:02d}"
        # Ticket rows: up to 17 stamps spread over the month's days.
        self.ticket_ts = [
            f"{self.ym}-{1 + k * (days - 1) // 16:02d}T{8 + k % 10:02d}:{(k * 7) % 60:02d}:00Z"
            for k in range(17)
        ]
        # Weekly revenue: days 7, 14, 21, 28 at 23:30, recorded the next day.
        self.rev_ts = []
        self.rev_rec = []
        for w in range(4):
            day = 7 * (w + 1)
            self.rev_ts.append(f"{self.ym}-{day:02d}T23:30:00Z")
            rec_y, rec_m, rec_d = year, month, day + 1
            if rec_d > days:
                rec_y, rec_m = nyear, nmonth
                rec_d = 1
            self.rev_rec.append(f"{rec_y:04d}-{rec_m:02d}-{rec_d:02d}T02:00:00Z")
        # Uptime: the first instant of the month (the period's own start).
        self.uptime_ts = f"{self.ym}-01T00:00:00Z"
        # A moved correction lands at the first instant of the next month.
        self.moved_ts = f"{self.next_ym}-01T00:00:00Z"
        # Corrections j = 0, 1, 2 are recorded on days 3, 8, 13 of the next month.
        self.corr_rec = [f"{self.next_ym}-{3 + 5 * j:02d}T09:{15 * j:02d}:00Z" for j in range(3)]


def generator_digest():
    """A digest of this file: data written by another version is not reused."""
    with open(os.path.abspath(__file__), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--contracts", type=int, required=True)
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--seed", type=int, default=20260101)
    args = ap.parse_args()
    if args.contracts < 1 or args.contracts > 999_999:
        sys.exit("--contracts must be between 1 and 999999")
    if args.months < 1 or args.months > 36:
        sys.exit("--months must be between 1 and 36")

    t0 = time.perf_counter()
    out = args.out_dir
    cdir = os.path.join(out, "contracts")
    os.makedirs(cdir, exist_ok=True)

    sy, sm = TERM_START
    ey, em = add_months(sy, sm, args.months)
    start = f"{sy:04d}-{sm:02d}-01"
    end = f"{ey:04d}-{em:02d}-01"
    # As of 14 days after the end: every period has ended, and the last
    # month's corrections (recorded on days 3..13 of the next month) count.
    as_of_date = f"{ey:04d}-{em:02d}-15"
    as_of = f"{as_of_date}T00:00:00Z"
    la_y, la_m = add_months(ey, em, 1)
    late_rec = [f"{la_y:04d}-{la_m:02d}-{1 + j:02d}T09:00:00Z" for j in range(3)]

    # Contracts and terms (their own generator, so that the data stream does
    # not depend on how the terms were drawn).
    trng = random.Random(args.seed)
    terms = []
    with open(os.path.join(out, "terms.csv"), "w", newline="") as tf:
        tf.write(",".join(TERMS_COLUMNS) + "\n")
        for n in range(1, args.contracts + 1):
            t = contract_terms(trng, n)
            t["term_start"], t["term_end"] = start, end
            terms.append(t)
            with open(os.path.join(cdir, f"{t['contract']}.toml"), "w") as f:
                f.write(CONTRACT_TEMPLATE.format(start=start, end=end, **t))
            tf.write(",".join(str(t[c]) for c in TERMS_COLUMNS) + "\n")

    # Per-contract numbers the data stream reads, as plain lists.
    customers = [t["customer"] for t in terms]
    contract_ids = [t["contract"] for t in terms]
    volumes = [t["volume"] for t in terms]
    baselines_c = [int(t["baseline"]) * 100 for t in terms]  # cents

    rng = random.Random(args.seed + 1)
    rand = rng.random
    months = [Month(*add_months(sy, sm, k)) for k in range(args.months)]
    rows = 0
    carry = []  # corrections recorded in the next month: start of its block
    late = []  # corrections recorded after the as-of time: end of the file

    path = os.path.join(out, "metrics.csv")
    tmp = path + ".tmp"
    with open(tmp, "w", buffering=1 << 22, newline="") as f:
        f.write("customer,series,timestamp,value,id,recorded_at,void\n")
        for mi, mo in enumerate(months):
            last_month = mi == len(months) - 1
            f.write("".join(carry))
            rows += len(carry)
            carry = []
            for lo in range(0, len(customers), CHUNK):
                buf = []
                put = buf.append
                for ci in range(lo, min(lo + CHUNK, len(customers))):
                    cust = customers[ci]
                    cid = contract_ids[ci]
                    early = []
                    # Tickets: 13..17 rows summing to about the contract's volume.
                    k = 13 + int(rand() * 5)
                    per = volumes[ci] / k
                    for ts in mo.ticket_ts[:k]:
                        put(f"{cust},tickets_resolved,{ts},{int(per * (0.5 + rand()))},,,\n")
                    # Revenue: the month's total is 0.90 .. 1.30 of the baseline,
                    # so that it is below the baseline, within the threshold,
                    # above it, or above the cap.
                    month_c = baselines_c[ci] * (0.90 + 0.40 * rand())
                    week = []
                    for w in range(4):
                        v = int(month_c / 4 * (0.85 + 0.30 * rand()))
                        week.append(v)
                        put(f"{cust},revenue,{mo.rev_ts[w]},{cents(v)},{cid}-r-{mo.ym}-{w + 1},{mo.rev_rec[w]},\n")
                    # Uptime: one row, 3 decimals.
                    u = rand()
                    if u < 0.88:
                        up = 99900 + int(rand() * 101)
                    elif u < 0.97:
                        up = 99000 + int(rand() * 900)
                    else:
                        up = 97000 + int(rand() * 2000)
                    put(f"{cust},uptime_pct,{mo.uptime_ts},{up // 1000}.{up % 1000:03d},,,\n")
                    # Corrections: 1..3, of random weeks, recorded in order j.
                    r = rand()
                    ncorr = 1 if r < 0.25 else (2 if r < 0.75 else 3)
                    for j in range(ncorr):
                        w = int(rand() * 4)
                        v = int(week[w] * (0.9 + 0.2 * rand()))
                        ts = mo.rev_ts[w]
                        rec = mo.corr_rec[j]
                        void = ""
                        dest = carry
                        r = rand()
                        if r < 0.010:
                            rec = late_rec[j]  # after the as-of time: ignored
                            dest = late
                        elif r < 0.015:
                            void = "true"  # removes the observation
                        elif r < 0.025:
                            if not last_month:
                                ts = mo.moved_ts  # now belongs to the next month
                        elif r < 0.027 and j == 0:
                            rec = as_of  # exactly at the as-of time: counts
                            dest = late
                        if last_month and dest is carry:
                            dest = late
                        if rand() < 0.003:
                            dest = early  # written before its original
                        dest.append(f"{cust},revenue,{ts},{cents(v)},{cid}-r-{mo.ym}-{w + 1},{rec},{void}\n")
                    if early:
                        # Put them in front of this contract's originals.
                        idx = len(buf) - (k + 5)
                        buf[idx:idx] = early
                rows += len(buf)
                f.write("".join(buf))
        f.write("".join(carry))
        f.write("".join(late))
        rows += len(carry) + len(late)
    os.replace(tmp, path)

    meta = {
        "contracts": args.contracts,
        "months": args.months,
        "seed": args.seed,
        "generator": generator_digest(),
        "term_start": start,
        "term_end": end,
        "as_of": as_of_date,
        "metric_rows": rows,
    }
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    print(
        f"generated {args.contracts} contracts x {args.months} months, {rows} metric rows "
        f"in {time.perf_counter() - t0:.1f} s -> {out}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
