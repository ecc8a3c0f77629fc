"""Shared helpers: the worked examples of ``tests/worked/``, found as
``tests/worked_examples.rs`` finds them."""

import csv
from decimal import Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKED = ROOT / "tests" / "worked"

# A two-month contract billing 0.99 per resolution, for API tests.
CONTRACT = """
format = 1
id = "demo"
customer = "acme"
currency = "USD"
start = "2026-01-01"
end = "2026-03-01"
cadence = "monthly"

[metrics.resolutions]
series = "resolved"
aggregate = "sum"

[[charges]]
id = "per_resolution"
kind = "unit"
quantity = "resolutions"
unit_price = "0.99"
"""


def as_of_comment(contract: Path) -> str:
    """The ``# as-of: T`` comment line of a worked example's contract."""
    for line in contract.read_text(encoding="utf-8").splitlines():
        text = line.strip()
        if text.startswith("#") and text[1:].strip().startswith("as-of:"):
            return text[1:].strip()[len("as-of:"):].strip()
    raise AssertionError(f"{contract.name}: no `# as-of: T` comment line")


def expected_rows(path: Path) -> list:
    """The rows of an ``expect.csv``, amounts and quantities as Decimal."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row["amount"] = Decimal(row["amount"])
        row["quantity"] = Decimal(row["quantity"]) if row["quantity"] else None
    return rows


def worked_examples() -> list:
    return sorted(WORKED.glob("*.toml"))


@pytest.fixture
def worked():
    return WORKED


@pytest.fixture
def outcome_bin() -> Path:
    """The command line to compare with: ``$OUTCOME_BIN``, or the debug build
    ``cargo test`` leaves. Under CI (``OUTCOME_REQUIRE_CLI``) a missing one
    fails instead of skipping."""
    import os

    path = Path(os.environ.get("OUTCOME_BIN", ROOT / "target" / "debug" / "outcome"))
    if not path.exists():
        if os.environ.get("OUTCOME_REQUIRE_CLI"):
            pytest.fail(f"{path} is not built")
        pytest.skip(f"{path} is not built (cargo build)")
    return path
