"""The Spark billing run bills what `outcome settle` bills, line for line.

    python -m pytest -q examples/spark

Generates a billing run of 2,000 contracts (benches/billing-run/generate.py),
settles it with the command line (`target/debug/outcome`, or $OUTCOME_BIN) and
with `billing_run.py` in `local[2]`, and compares the two CSVs byte for byte.
Skipped when pyspark (or the package) is not installed; `.ci/run` installs it.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pyspark", reason="pyspark is not installed (pip install 'pyspark==4.3.*' pyarrow 'pandas<3')")
pytest.importorskip("outcome_billing", reason="the outcome_billing package is not installed (see README, From Python)")

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).resolve().parent / "billing_run.py"
AS_OF = "2027-01-15"
CONTRACTS = int(os.environ.get("OUTCOME_SPARK_CONTRACTS", "2000"))


def outcome_bin() -> Path:
    path = Path(os.environ.get("OUTCOME_BIN", ROOT / "target" / "debug" / "outcome"))
    if not path.exists():
        pytest.skip(f"{path} is not built (cargo build)")
    return path


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


def test_spark_matches_the_command_line(billing_run, tmp_path):
    cli = subprocess.run(
        [str(outcome_bin()), "settle", str(billing_run / "contracts"), "--metrics", str(billing_run / "metrics.csv"),
         "--as-of", AS_OF, "--format", "csv"],
        check=True,
        capture_output=True,
    ).stdout
    spark_csv = tmp_path / "spark.csv"
    subprocess.run(
        [sys.executable, str(SCRIPT), "--contracts", str(billing_run / "contracts"),
         "--metrics", str(billing_run / "metrics.csv"), "--out", str(tmp_path / "out"),
         "--as-of", AS_OF, "--master", "local[2]", "--sorted-csv", str(spark_csv)],
        check=True,
        env=spark_env(),
    )
    cli_lines = cli.decode().splitlines()
    spark_lines = spark_csv.read_text(encoding="utf-8").splitlines()
    # Every contract billed: 12 months of at least a fee line each.
    assert len(cli_lines) > CONTRACTS * 12
    assert len(spark_lines) == len(cli_lines)
    for n, (a, b) in enumerate(zip(cli_lines, spark_lines), start=1):
        assert a == b, f"line {n} differs"
    assert spark_csv.read_bytes() == cli
    # The table holds the same lines (in Spark's own order).
    assert (tmp_path / "out" / "lines").is_dir()
    shutil.rmtree(tmp_path / "out")
