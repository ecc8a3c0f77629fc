"""Every worked example settles through Python to the amounts of its
expected CSV export, as it does through the command line."""

import csv as csvmod
from decimal import Decimal

import pytest

import outcome_billing as ob
from conftest import as_of_comment, expected_rows, worked_examples

EXAMPLES = worked_examples()


def test_there_are_enough_worked_examples():
    # Proves the parametrized tests below run on the whole set, not on none.
    assert len(EXAMPLES) >= 14


@pytest.mark.parametrize("contract", EXAMPLES, ids=lambda p: p.stem)
def test_settle_matches_expected_lines(contract):
    # Proves settle() gives each line's period, charge, kind, quantity and
    # amount of the expected export, in order, as Decimals, and totals that
    # are the sums of their lines; a grouped line gives its groups' rows, as
    # the export does, and is the sum of its groups.
    c = ob.Contract.from_path(contract)
    statements = c.settle(csv=contract.with_suffix(".csv"), as_of=as_of_comment(contract))
    want = expected_rows(contract.with_name(contract.stem + ".expect.csv"))
    got = []
    for s in statements:
        assert isinstance(s["total"], Decimal)
        assert s["total"] == sum((l["amount"] for l in s["lines"]), Decimal(0))
        for line in s["lines"]:
            assert isinstance(line["amount"], Decimal)
            assert line["quantity"] is None or isinstance(line["quantity"], Decimal)
            row = {
                "contract": c.id,
                "period_start": s["period"]["start"].isoformat(),
                "period_end": s["period"]["end"].isoformat(),
                "charge": line["charge"],
                "kind": line["kind"],
                "quantity": line["quantity"],
                "amount": line["amount"],
                "group": "",
            }
            groups = line.get("groups")
            if not groups:
                # An ungrouped line, or a grouped one with no group this
                # period (one row of amount 0).
                got.append(row)
                continue
            assert line["amount"] == sum((g["amount"] for g in groups), Decimal(0))
            for g in groups:
                got.append({**row, "quantity": g["quantity"], "amount": g["amount"],
                            "group": g["group"]})
    assert got == want


@pytest.mark.parametrize("contract", EXAMPLES, ids=lambda p: p.stem)
def test_csv_export_is_byte_for_byte(contract):
    # Proves settle_csv_text() prints exactly the command line's
    # `settle --format csv`, which the expected file records.
    c = ob.Contract.from_path(contract)
    text = c.settle_csv_text(csv=contract.with_suffix(".csv"), as_of=as_of_comment(contract))
    assert text == contract.with_name(contract.stem + ".expect.csv").read_text(encoding="utf-8")


@pytest.mark.parametrize("contract", EXAMPLES, ids=lambda p: p.stem)
def test_rows_settle_as_the_file(contract):
    # Proves metric rows given as Python dicts settle to the same statements
    # as the CSV file they came from.
    c = ob.Contract.from_path(contract)
    metrics = contract.with_suffix(".csv")
    with metrics.open(newline="", encoding="utf-8") as f:
        rows = list(csvmod.DictReader(f))
    as_of = as_of_comment(contract)
    assert c.settle(rows=rows, as_of=as_of) == c.settle(csv=metrics, as_of=as_of)
