#!/usr/bin/env python3
"""Month-end billing run, side by side: the crate, plain Python decimal, DuckDB SQL.

    python3 benches/billing-run/compare.py [--contracts 20000] [--months 12] [--rounds 3]
                                           [--python-rounds R] [--skip-python] [--skip-duckdb]
                                           [--only-crate] [--outcome PATH]

1. Generates the run once into target/billing-run/N/ (generate.py: contract
   files, metrics.csv, terms.csv) and reuses it while its meta.json matches
   (same size, seed and generate.py).
2. Builds the crate (`cargo build --release`) unless --outcome names a binary.
3. Creates target/bench-venv and installs the pinned DuckDB into it
   (requirements.txt), and loads terms.csv into a DuckDB database file beside
   the data (not timed).
4. Reads metrics.csv once to warm the page cache, then runs, interleaved,
   round after round:
     crate   target/release/outcome settle DIR/contracts --metrics DIR/metrics.csv
             --as-of T --format csv > out.csv
     duckdb  target/bench-venv/bin/python duckdb_run.py settle DB metrics.csv --as-of T
     python  python3 python_settle.py DIR/contracts metrics.csv --as-of T
   Each is one child process, timed from spawn to exit with time.perf_counter;
   its peak resident set comes from os.wait4 (ru_maxrss), CPU time from the
   same rusage. Nothing else runs meanwhile.
5. Checks that every engine's grand total (the crate's: the sum of the
   `amount` column of its CSV) agrees to the cent, in every round, and prints
   medians and ratios to the crate. Exits 1 if a run fails or totals differ.
"""

import argparse
import csv
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
TARGET = ROOT / "target"
VENV = TARGET / "bench-venv"
SEED = 20260101
CENT = Decimal("0.01")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def fmt_int(n):
    return f"{n:,}"


# ---------------------------------------------------------------- setup


def ensure_data(contracts, months):
    """Generate the billing run unless an identical one is already there."""
    name = str(contracts) if months == 12 else f"{contracts}-{months}m"
    data = TARGET / "billing-run" / name
    meta_path = data / "meta.json"
    want = {"contracts": contracts, "months": months, "seed": SEED,
            "generator": hashlib.sha256((HERE / "generate.py").read_bytes()).hexdigest()[:16]}
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if all(meta.get(k) == v for k, v in want.items()):
            log(f"reusing {data}")
            return data, meta
        meta_path.unlink()
    if (data / "contracts").exists():
        shutil.rmtree(data / "contracts")
    log(f"generating {contracts} contracts x {months} months into {data}")
    subprocess.run(
        [sys.executable, str(HERE / "generate.py"), str(data), "--contracts", str(contracts),
         "--months", str(months), "--seed", str(SEED)],
        check=True,
    )
    return data, json.loads(meta_path.read_text())


def build_crate():
    """cargo build --release; returns the path of the `outcome` binary."""
    log("cargo build --release")
    p = subprocess.run(
        ["cargo", "build", "--release", "--bin", "outcome", "--message-format=json-render-diagnostics"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )
    if p.returncode != 0:
        sys.exit("cargo build --release failed")
    exe = None
    for line in p.stdout.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg.get("target", {}).get("name") == "outcome" \
                and msg.get("executable"):
            exe = msg["executable"]
    if exe is None:
        sys.exit("cargo build did not report the outcome binary")
    return Path(exe)


def ensure_venv():
    """A virtualenv with the pinned DuckDB; returns its python and the version."""
    py = VENV / "bin" / "python"
    req = HERE / "requirements.txt"
    pinned = next(
        line.split("==")[1].strip() for line in req.read_text().splitlines() if line.startswith("duckdb==")
    )

    def installed():
        if not py.exists():
            return None
        p = subprocess.run([str(py), "-c", "import duckdb; print(duckdb.__version__)"],
                           capture_output=True, text=True)
        return p.stdout.strip() if p.returncode == 0 else None

    if installed() != pinned:
        if not py.exists():
            log(f"creating {VENV}")
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        log(f"installing duckdb=={pinned} into {VENV}")
        subprocess.run([str(py), "-m", "pip", "install", "--quiet", "-r", str(req)], check=True)
        if installed() != pinned:
            sys.exit(f"duckdb {pinned} did not install into {VENV}")
    return py, pinned


def ensure_duckdb_terms(py, version, data):
    """The terms table in a database file (one per DuckDB version: storage formats differ)."""
    db = data / f"terms-duckdb-{version}.duckdb"
    terms = data / "terms.csv"
    if not db.exists() or db.stat().st_mtime < terms.stat().st_mtime:
        subprocess.run([str(py), str(HERE / "duckdb_run.py"), "prepare", str(db), str(terms)], check=True)
    return db


def warm(path):
    """Read a file once so that no engine pays for the first cold read."""
    with open(path, "rb", buffering=0) as f:
        while f.read(1 << 24):
            pass


# ---------------------------------------------------------------- running


def run_child(cmd, stdout_path, stderr_path):
    """Run one child; returns wall seconds, peak RSS in KiB, CPU seconds, exit code."""
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4, not by Popen
    return wall, ru.ru_maxrss, ru.ru_utime + ru.ru_stime, p.returncode


def crate_total(path):
    """The sum of the `amount` column (found by its header name)."""
    with open(path, newline="") as f:
        r = csv.reader(f)
        header = next(r)
        i = header.index("amount")
        return sum((Decimal(row[i]) for row in r), Decimal(0))


def crate_by_contract(path):
    totals = {}
    with open(path, newline="") as f:
        r = csv.DictReader(f)
        for row in r:
            totals[row["contract"]] = totals.get(row["contract"], Decimal(0)) + Decimal(row["amount"])
    return totals


def text_total(path):
    return Decimal(Path(path).read_text().strip())


class Engine:
    def __init__(self, key, label, cmd, total, rounds):
        self.key, self.label, self.cmd, self.total_of, self.rounds = key, label, cmd, total, rounds
        self.walls, self.rss, self.cpu, self.totals = [], [], [], []


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--contracts", type=int, default=20000, help="contracts in the run (default 20000)")
    ap.add_argument("--months", type=int, default=12, help="monthly periods in the term (default 12)")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds per engine (default 3)")
    ap.add_argument("--python-rounds", type=int, default=None,
                    help="rounds of the Python implementation (default: --rounds)")
    ap.add_argument("--skip-python", action="store_true", help="leave out the Python implementation")
    ap.add_argument("--skip-duckdb", action="store_true", help="leave out DuckDB")
    ap.add_argument("--only-crate", action="store_true", help="run the crate alone (a memory check)")
    ap.add_argument("--outcome", type=Path, help="an outcome binary to time instead of building one")
    args = ap.parse_args()
    if args.rounds < 1:
        sys.exit("--rounds must be at least 1")
    py_rounds = args.rounds if args.python_rounds is None else min(args.python_rounds, args.rounds)
    skip_python = args.skip_python or args.only_crate or py_rounds < 1
    skip_duckdb = args.skip_duckdb or args.only_crate

    data, meta = ensure_data(args.contracts, args.months)
    exe = args.outcome.resolve() if args.outcome else build_crate()
    contracts, metrics, as_of = data / "contracts", data / "metrics.csv", meta["as_of"]
    out = data / "out"
    out.mkdir(exist_ok=True)

    engines = [Engine(
        "crate", "crate (outcome settle)",
        [str(exe), "settle", str(contracts), "--metrics", str(metrics), "--as-of", as_of, "--format", "csv"],
        crate_total, args.rounds,
    )]
    if not skip_duckdb:
        vpy, version = ensure_venv()
        db = ensure_duckdb_terms(vpy, version, data)
        engines.append(Engine(
            "duckdb", f"DuckDB {version} SQL",
            [str(vpy), str(HERE / "duckdb_run.py"), "settle", str(db), str(metrics), "--as-of", as_of],
            text_total, args.rounds,
        ))
    if not skip_python:
        engines.append(Engine(
            "python", f"Python {sys.version.split()[0]} decimal",
            [sys.executable, str(HERE / "python_settle.py"), str(contracts), str(metrics), "--as-of", as_of],
            text_total, py_rounds,
        ))

    size = metrics.stat().st_size
    log(f"billing run: {fmt_int(args.contracts)} contracts x {args.months} months, "
        f"{fmt_int(meta['metric_rows'])} metric rows ({size / 2**20:,.0f} MiB), as of {as_of}")
    warm(metrics)
    load = os.getloadavg()[0]

    failed = False
    for r in range(args.rounds):
        for e in engines:
            if r >= e.rounds:
                continue
            stdout, stderr = out / f"{e.key}.out", out / f"{e.key}.err"
            wall, rss, cpu, rc = run_child(e.cmd, stdout, stderr)
            if rc != 0:
                how = f"was killed by signal {-rc} (out of memory?)" if rc < 0 else f"exited with {rc}"
                log(f"round {r + 1}: {e.key} {how}; its stderr ends:")
                log("".join(Path(stderr).read_text(errors="replace").splitlines(True)[-10:]))
                failed = True
                continue
            total = e.total_of(stdout)
            e.walls.append(wall)
            e.rss.append(rss)
            e.cpu.append(cpu)
            e.totals.append(total)
            log(f"round {r + 1}: {e.key:<6} {wall:8.2f} s wall {cpu:8.2f} s cpu "
                f"{rss / 1024:9,.0f} MiB peak RSS  total {total}")
        if failed:
            break
    if failed:
        sys.exit(1)

    # Every total of every round, to the cent.
    totals = {t.quantize(CENT) for e in engines for t in e.totals}
    agree = len(totals) == 1 and all(t == t.quantize(CENT) for e in engines for t in e.totals)

    base = engines[0]
    bw, br = statistics.median(base.walls), statistics.median(base.rss)
    print()
    print(f"billing run: {fmt_int(args.contracts)} contracts x {args.months} months, "
          f"{fmt_int(meta['metric_rows'])} metric rows ({size / 2**20:,.0f} MiB CSV), as of {as_of}")
    print(f"machine: {os.cpu_count()} cores, load average {load:.2f} before the rounds; medians over "
          f"rounds; wall from spawn to exit, peak RSS from wait4")
    print()
    head = f"{'engine':<26} {'rounds':>6} {'wall s':>9} {'cpu s':>9} {'peak RSS MiB':>13} " \
           f"{'wall/crate':>10} {'RSS/crate':>10}  grand total"
    print(head)
    print("-" * len(head))
    results = []
    for e in engines:
        w, m, c = statistics.median(e.walls), statistics.median(e.rss), statistics.median(e.cpu)
        print(f"{e.label:<26} {len(e.walls):>6} {w:>9.2f} {c:>9.2f} {m / 1024:>13,.0f} "
              f"{w / bw:>10.2f} {m / br:>10.2f}  {e.totals[-1]}")
        results.append({"engine": e.key, "label": e.label, "rounds": len(e.walls),
                        "wall_s": e.walls, "cpu_s": e.cpu, "peak_rss_kib": e.rss,
                        "totals": [str(t) for t in e.totals]})
    print()
    if len(engines) == 1:
        print(f"grand total {base.totals[-1]} (the crate alone: nothing to compare)")
    elif agree:
        print(f"grand totals agree to the cent: {totals.pop()}")
    else:
        print("GRAND TOTALS DISAGREE")
        diagnose(engines, data, as_of)

    summary = {"meta": meta, "cores": os.cpu_count(), "load_before": load, "as_of": as_of, "totals_agree": agree,
               "outcome": str(exe), "results": results}
    (out / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"(rounds in {out / 'results.json'})")
    sys.exit(0 if agree else 1)


def diagnose(engines, data, as_of):
    """Per-contract totals of each engine: print the first contracts that differ."""
    per = {"crate": crate_by_contract(data / "out" / "crate.out")}
    for e in engines[1:]:
        cmd = e.cmd + ["--by-contract"]
        p = subprocess.run(cmd, capture_output=True, text=True, check=True)
        rows = csv.DictReader(p.stdout.splitlines())
        per[e.key] = {row["contract"]: Decimal(row["total"]) for row in rows}
    ids = sorted(set().union(*per.values()))
    shown = 0
    for cid in ids:
        vals = {k: v.get(cid) for k, v in per.items()}
        if len(set(vals.values())) > 1:
            print(f"  {cid}: " + ", ".join(f"{k} {v}" for k, v in vals.items()))
            shown += 1
            if shown == 10:
                break


if __name__ == "__main__":
    main()
