"""Metric data as a pyarrow Table or a pandas DataFrame, and statement lines
as a pyarrow Table: the same numbers as rows and as the CSV export."""

import csv as csvmod
import datetime
from decimal import Decimal

import pytest

import outcome_billing as ob
from conftest import CONTRACT, as_of_comment, worked_examples

pa = pytest.importorskip("pyarrow")
pd = pytest.importorskip("pandas")

EXAMPLES = worked_examples()



def csv_rows(path):
    with path.open(newline="", encoding="utf-8") as f:
        return list(csvmod.DictReader(f))


@pytest.mark.parametrize("contract", EXAMPLES, ids=lambda p: p.stem)
def test_arrow_and_pandas_settle_as_the_file(contract):
    # Proves every worked example's metric data, given as a pyarrow Table of
    # strings or as a pandas DataFrame, settles to the file's statements.
    c = ob.Contract.from_path(contract)
    metrics = contract.with_suffix(".csv")
    rows = csv_rows(metrics)
    as_of = as_of_comment(contract)
    want = c.settle(csv=metrics, as_of=as_of)
    assert c.settle(rows=pa.Table.from_pylist(rows), as_of=as_of) == want
    assert c.settle(rows=pd.DataFrame(rows, dtype="string"), as_of=as_of) == want


@pytest.mark.parametrize("contract", EXAMPLES, ids=lambda p: p.stem)
def test_settle_table_is_the_csv_export(contract):
    # Proves settle_table() has the columns and rows of `settle --format csv`
    # (the expected file), with dates as dates and amounts as exact decimals.
    c = ob.Contract.from_path(contract)
    table = c.settle_table(csv=contract.with_suffix(".csv"), as_of=as_of_comment(contract))
    want = csv_rows(contract.with_name(contract.stem + ".expect.csv"))
    assert table.column_names == list(want[0].keys()) if want else True
    assert pa.types.is_date32(table.schema.field("period_start").type)
    assert pa.types.is_decimal(table.schema.field("amount").type)
    got = table.to_pylist()
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g["period_start"].isoformat() == w["period_start"]
        assert g["period_end"].isoformat() == w["period_end"]
        assert (g["contract"], g["charge"], g["kind"], g["group"]) == (
            w["contract"], w["charge"], w["kind"], w["group"])
        assert isinstance(g["amount"], Decimal) and g["amount"] == Decimal(w["amount"])
        assert g["quantity"] == (Decimal(w["quantity"]) if w["quantity"] else None)


def test_typed_arrow_columns():
    # Proves typed Arrow columns are read exactly: decimal128 values, int64
    # values, timestamps with a zone and date32 stamps.
    c = ob.Contract.from_str(CONTRACT)
    table = pa.table({
        "customer": ["acme", "acme", "acme"],
        "series": ["resolved"] * 3,
        "timestamp": pa.array(
            [datetime.datetime(2026, 1, 5, 12, tzinfo=datetime.timezone.utc),
             datetime.datetime(2026, 1, 31, 23, 30, tzinfo=datetime.timezone.utc),
             datetime.datetime(2026, 2, 2, tzinfo=datetime.timezone.utc)],
            pa.timestamp("us", tz="UTC")),
        "value": pa.array([Decimal("1000.5"), Decimal("0.25"), Decimal("3")], pa.decimal128(10, 2)),
    })
    [jan, feb] = c.settle(rows=table, as_of="2026-03-01")
    assert jan["lines"][0]["quantity"] == Decimal("1000.75")
    assert jan["total"] == Decimal("990.74")
    assert feb["total"] == Decimal("2.97")
    ints = table.set_column(3, "value", pa.array([1000, 0, 3], pa.int64()))
    assert c.settle(rows=ints, as_of="2026-03-01")[0]["total"] == Decimal("990.00")
    dates = table.set_column(2, "timestamp", pa.array(
        [datetime.date(2026, 1, 5), datetime.date(2026, 1, 31), datetime.date(2026, 2, 2)], pa.date32()))
    assert [s["total"] for s in c.settle(rows=dates, as_of="2026-03-01")] == [
        Decimal("990.74"), Decimal("2.97")]
    batch = table.to_batches()[0]
    assert c.settle(rows=batch, as_of="2026-03-01") == c.settle(rows=table, as_of="2026-03-01")


def test_float_columns_are_refused():
    # Proves a float column, in Arrow or pandas, raises naming the column,
    # instead of settling an amount that a binary float rounded.
    c = ob.Contract.from_str(CONTRACT)
    data = {"customer": ["acme"], "series": ["resolved"], "timestamp": ["2026-01-05"], "value": [0.1]}
    for rows in (pa.table(data), pd.DataFrame(data)):
        with pytest.raises(ob.OutcomeError) as e:
            c.settle(rows=rows, as_of="2026-03-01")
        assert '"value"' in str(e.value) and "float" in str(e.value)
        assert e.value.kind == "invalid argument"


def test_pandas_missing_values_are_empty_cells():
    # Proves None / NaN / pd.NA in a pandas column are empty cells: an empty
    # `recorded_at` is a row without one, an empty value a malformed row at
    # its line and column.
    c = ob.Contract.from_str(CONTRACT)
    frame = pd.DataFrame({
        "customer": ["acme", "acme"],
        "series": ["resolved", "resolved"],
        "timestamp": pd.to_datetime(["2026-01-05", "2026-01-06"]).tz_localize("UTC"),
        "value": pd.array([10, 20], dtype="Int64"),
        "recorded_at": [None, float("nan")],
    })
    [jan, _] = c.settle(rows=frame, as_of="2026-03-01")
    assert jan["lines"][0]["quantity"] == Decimal("30")
    frame.loc[1, "value"] = pd.NA
    with pytest.raises(ob.OutcomeError) as e:
        c.settle(rows=frame, as_of="2026-03-01")
    assert e.value.location == "rows:3:4"


def test_malformed_table_value_has_its_line_and_column():
    # Proves a malformed value in a table is reported at rows:LINE:COLUMN,
    # the first row at line 2, as for rows and files.
    c = ob.Contract.from_str(CONTRACT)
    table = pa.table({"customer": ["acme", "acme"], "series": ["resolved", "resolved"],
                      "timestamp": ["2026-01-05", "2026-13-05"], "value": ["1", "2"]})
    with pytest.raises(ob.OutcomeError) as e:
        c.settle(rows=table)
    assert e.value.location == "rows:3:3"
    assert e.value.kind == "malformed data"


def test_arrow_stream_objects_are_read_through_pyarrow():
    # Proves an object that only exports an Arrow stream (as polars and
    # DuckDB results do) is read like the table it streams.
    c = ob.Contract.from_str(CONTRACT)
    table = pa.table({"customer": ["acme"], "series": ["resolved"],
                      "timestamp": ["2026-01-05"], "value": ["7"]})

    class Stream:
        def __arrow_c_stream__(self, requested_schema=None):
            return table.__arrow_c_stream__(requested_schema)

    assert c.settle(rows=Stream(), as_of="2026-03-01") == c.settle(rows=table, as_of="2026-03-01")


def test_settle_table_of_nothing_due_is_empty_with_the_columns():
    # Proves a settlement without statements still gives the export's columns.
    c = ob.Contract.from_str(CONTRACT)
    table = c.settle_table(rows=[], as_of="2025-12-01")
    assert table.num_rows == 0
    assert table.column_names == [
        "contract", "period_start", "period_end", "charge", "kind", "quantity", "amount", "group"]
