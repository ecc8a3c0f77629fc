"""The Spark billing run bills what `outcome settle` bills, line for line.

    python -m pytest -q examples/spark

Generates a billing run of 2,000 contracts (benches/billing-run/generate.py),
settles it with the command line (`target/debug/outcome`, or $OUTCOME_BIN) and
with `billing_run.py` in `local[2]`, and compares the two CSVs byte for byte.
Skipped when pyspark (or the package) is not installed; `.ci/run` installs it
and sets OUTCOME_REQUIRE_SPARK=1, which turns the skips into failures.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

if os.environ.get("OUTCOME_REQUIRE_SPARK"):
    # Under CI a missing package fails the run instead of skipping it.
    import outcome_billing  # noqa: F401
    import pyspark  # noqa: F401
else:
    pytest.importorskip("pyspark", reason="pyspark is not installed (pip install 'pyspark==4.3.*' pyarrow 'pandas<3')")
    pytest.importorskip("outcome_billing", reason="the outcome_billing package is not installed (see README, From Python)")

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).resolve().parent / "billing_run.py"
AS_OF = "2027-01-15"
CONTRACTS = int(os.environ.get("OUTCOME_SPARK_CONTRACTS", "2000"))


def outcome_bin() -> Path:
    path = Path(os.environ.get("OUTCOME_BIN", ROOT / "target" / "debug" / "outcome"))
    if not path.exists():
        if os.environ.get("OUTCOME_REQUIRE_SPARK"):
            pytest.fail(f"{path} is not built")
        pytest.skip(f"{path} is not built (cargo build)")
    return path


def settle_both(contracts: Path, metrics: Path, out: Path, as_of: str = AS_OF, spark_metrics: Path = None):
    """(CLI run, Spark run, Spark's sorted CSV bytes); both runs unchecked.
    Spark reads `spark_metrics` if given (the same data as Parquet)."""
    cli = subprocess.run(
        [str(outcome_bin()), "settle", str(contracts), "--metrics", str(metrics), "--as-of", as_of, "--format", "csv"],
        capture_output=True,
    )
    sorted_csv = out / "spark.csv"
    spark = subprocess.run(
        [sys.executable, str(SCRIPT), "--contracts", str(contracts), "--metrics", str(spark_metrics or metrics),
         "--out", str(out / "out"), "--as-of", as_of, "--master", "local[2]", "--sorted-csv", str(sorted_csv)],
        capture_output=True,
        env=spark_env(),
    )
    assert sorted_csv.exists(), spark.stderr.decode()[-3000:]
    return cli, spark, sorted_csv.read_bytes()


@pytest.fixture(scope="module")
def billing_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("billing-run")
    subprocess.run(
        [sys.executable, str(ROOT / "benches" / "billing-run" / "generate.py"), str(out), "--contracts", str(CONTRACTS)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return out


def spark_env() -> dict:
    # The workers must run this interpreter, the one with pyarrow and the package.
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    return env


def assert_same_lines(cli: bytes, spark: bytes):
    cli_lines = cli.decode().splitlines()
    spark_lines = spark.decode().splitlines()
    assert len(spark_lines) == len(cli_lines)
    for n, (a, b) in enumerate(zip(cli_lines, spark_lines), start=1):
        assert a == b, f"line {n} differs"
    assert spark == cli


def test_spark_matches_the_command_line(billing_run, tmp_path):
    cli, spark, spark_csv = settle_both(billing_run / "contracts", billing_run / "metrics.csv", tmp_path)
    assert cli.returncode == 0, cli.stderr.decode()
    assert spark.returncode == 0, spark.stderr.decode()[-3000:]
    # Every contract billed: 12 months of at least a fee line each.
    assert cli.stdout.count(b"\n") > CONTRACTS * 12
    assert_same_lines(cli.stdout, spark_csv)
    # The table holds the lines too, in Spark's own order.
    assert (tmp_path / "out" / "lines" / "_SUCCESS").exists()
    shutil.rmtree(tmp_path / "out")


def to_parquet(csv_path: Path, parquet_path: Path):
    """The metrics as Parquet: every column a string, `timestamp` a UTC instant."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    with csv_path.open(encoding="utf-8") as f:
        names = f.readline().strip().split(",")
    options = pcsv.ConvertOptions(column_types={n: pa.string() for n in names}, strings_can_be_null=False)
    table = pcsv.read_csv(csv_path, convert_options=options)
    at = table.schema.get_field_index("timestamp")
    instants = pc.assume_timezone(pc.strptime(table["timestamp"], format="%Y-%m-%dT%H:%M:%SZ", unit="us"), "UTC")
    pq.write_table(table.set_column(at, "timestamp", instants), parquet_path)


def test_shared_rows_customers_without_rows_and_failures(tmp_path):
    """Rows with an empty customer reach every contract, a contract whose
    customer has no rows is settled on them alone, rows nobody bills are
    ignored, and a contract that fails has no lines but does not stop the run.
    Spark reads the data as Parquet, the command line as CSV."""
    run = tmp_path / "run"
    subprocess.run(
        [sys.executable, str(ROOT / "benches" / "billing-run" / "generate.py"), str(run), "--contracts", "20"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    contracts = run / "contracts"
    template = (contracts / "c000001.toml").read_text(encoding="utf-8")
    for cid, customer in (("c900000", "cust-no-rows"), ("c900001", "cust-tie")):
        text = template.replace('id = "c000001"', f'id = "{cid}"').replace('customer = "cust000001"', f'customer = "{customer}"')
        (contracts / f"{cid}.toml").write_text(text, encoding="utf-8")
    with (run / "metrics.csv").open("a", encoding="utf-8") as f:
        # Shared: an uptime reading every month (a low one in March), and
        # revenue every contract sees.
        for month in range(1, 13):
            f.write(f",uptime_pct,2026-{month:02d}-01T00:00:00Z,{'98.500' if month == 3 else '99.950'},,,\n")
        f.write(",revenue,2026-05-20T00:00:00Z,1234.56,shared-1,,\n")
        # Two versions of one observation recorded at the same time: an error.
        f.write("cust-tie,revenue,2026-02-03T00:00:00Z,10.00,r1,2026-02-04T00:00:00Z,\n")
        f.write("cust-tie,revenue,2026-02-03T00:00:00Z,11.00,r1,2026-02-04T00:00:00Z,\n")
        # A customer no contract bills.
        f.write("cust-nobody,tickets_resolved,2026-02-03T00:00:00Z,5,,,\n")
    # Spark reads it as Parquet: strings, and the timestamps as instants.
    parquet = run / "metrics.parquet"
    to_parquet(run / "metrics.csv", parquet)
    cli, spark, spark_csv = settle_both(contracts, run / "metrics.csv", tmp_path, spark_metrics=parquet)
    assert cli.returncode == 1, cli.stderr.decode()
    assert spark.returncode == 1, spark.stderr.decode()[-3000:]
    assert b"c900000," in cli.stdout and b"c900001," not in cli.stdout
    assert b"at contract c900001" in spark.stderr
    assert_same_lines(cli.stdout, spark_csv)
