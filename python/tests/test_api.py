"""The Python API's contract: loading, errors with their locations,
Decimal amounts, and metric rows."""

import datetime
from decimal import Decimal

import pytest

import outcome_billing as ob
from conftest import CONTRACT


ROWS = [
    {"customer": "acme", "series": "resolved", "timestamp": "2026-01-05", "value": 1000},
    {"customer": "acme", "series": "resolved", "timestamp": "2026-02-05", "value": Decimal("0.1")},
]


def test_contract_properties():
    # Proves a contract read from text tells its id, currency and periods.
    c = ob.Contract.from_str(CONTRACT)
    assert c.id == "demo"
    assert c.customer == "acme"
    assert c.currency == "USD"
    assert len(c.version) == 64
    assert c.periods == [
        (datetime.date(2026, 1, 1), datetime.date(2026, 2, 1)),
        (datetime.date(2026, 2, 1), datetime.date(2026, 3, 1)),
    ]


def test_json_and_yaml_read_as_toml():
    # Proves the three formats are read, and give the same rules.
    toml = ob.Contract.from_str(CONTRACT)
    json = ob.Contract.from_str(
        '{"format": 1, "id": "demo", "customer": "acme", "currency": "USD",'
        ' "start": "2026-01-01", "end": "2026-03-01", "cadence": "monthly",'
        ' "metrics": {"resolutions": {"series": "resolved", "aggregate": "sum"}},'
        ' "charges": [{"id": "per_resolution", "kind": "unit",'
        ' "quantity": "resolutions", "unit_price": "0.99"}]}',
        format="json",
    )
    yaml = ob.Contract.from_str(
        "format: 1\nid: demo\ncustomer: acme\ncurrency: USD\nstart: '2026-01-01'\n"
        "end: '2026-03-01'\ncadence: monthly\nmetrics:\n  resolutions:\n"
        "    series: resolved\n    aggregate: sum\ncharges:\n  - id: per_resolution\n"
        "    kind: unit\n    quantity: resolutions\n    unit_price: '0.99'\n",
        format="yaml",
    )
    assert toml.version == json.version == yaml.version


def test_bad_contract_raises_with_its_field_path():
    # Proves an invalid contract raises OutcomeError (a ValueError) whose
    # text and location name the field at fault.
    bad = CONTRACT.replace('unit_price = "0.99"', 'unit_price = "abc"')
    with pytest.raises(ob.OutcomeError) as info:
        ob.Contract.from_str(bad)
    e = info.value
    assert isinstance(e, ValueError)
    assert e.kind == "invalid contract"
    assert e.location == "charges[0].unit_price"
    assert str(e).startswith("charges[0].unit_price: ")
    assert e.message and e.message in str(e)


def test_bad_contract_file_raises_with_its_field_path(tmp_path):
    # Proves a contract file is checked as text is, located as the command
    # line locates it: the file, then the field path.
    path = tmp_path / "bad.toml"
    path.write_text(CONTRACT.replace('cadence = "monthly"', 'cadence = "fortnightly"'))
    with pytest.raises(ob.OutcomeError) as info:
        ob.Contract.from_path(path)
    assert info.value.location == f"{path}: cadence"
    assert info.value.kind == "invalid contract"


def test_unknown_format_is_refused():
    # Proves a format other than toml, json or yaml is an error, not a guess.
    with pytest.raises(ob.OutcomeError, match="format"):
        ob.Contract.from_str(CONTRACT, format="ini")


def test_amounts_are_decimals_never_floats():
    # Proves every amount, quantity and trace value is a Decimal with the
    # contract's places, computed exactly (0.1 * 0.99 is not a float sum).
    c = ob.Contract.from_str(CONTRACT)
    statements = c.settle(rows=ROWS, as_of="2026-03-01")
    assert [s["total"] for s in statements] == [Decimal("990.00"), Decimal("0.10")]
    assert str(statements[0]["total"]) == "990.00"
    for s in statements:
        for line in s["lines"]:
            assert type(line["amount"]) is Decimal
            assert type(line["quantity"]) is Decimal
            assert line["trace"], "traces are on by default"
            for step in line["trace"]:
                assert isinstance(step["step"], str)
                assert type(step["value"]) is Decimal
    assert statements[1]["lines"][0]["quantity"] == Decimal("0.1")


def test_trace_off_and_one_period():
    # Proves trace=False leaves the trace empty and period= settles one period.
    c = ob.Contract.from_str(CONTRACT)
    statements = c.settle(rows=ROWS, as_of="2026-03-01", period=datetime.date(2026, 2, 1), trace=False)
    assert len(statements) == 1
    assert statements[0]["period"]["start"] == datetime.date(2026, 2, 1)
    assert statements[0]["lines"][0]["trace"] == []


def test_as_of_limits_the_periods_settled():
    # Proves as_of (a date object too) settles only the periods it ended.
    c = ob.Contract.from_str(CONTRACT)
    assert len(c.settle(rows=ROWS, as_of=datetime.date(2026, 2, 1))) == 1


def test_float_metric_value_is_refused():
    # Proves a float in a metric row raises rather than being rounded.
    c = ob.Contract.from_str(CONTRACT)
    rows = [{"customer": "acme", "series": "resolved", "timestamp": "2026-01-05", "value": 0.1}]
    with pytest.raises(ob.OutcomeError, match=r"rows\[0\]\.value: 0\.1 is a float"):
        c.settle(rows=rows, as_of="2026-03-01")


def test_malformed_metric_row_raises_at_file_line_column(tmp_path):
    # Proves a malformed row of a metric file raises at FILE:LINE:COLUMN.
    path = tmp_path / "metrics.csv"
    path.write_text(
        "customer,series,timestamp,value\n"
        "acme,resolved,2026-01-05,1000\n"
        "acme,resolved,2026-01-06,ten\n"
    )
    c = ob.Contract.from_str(CONTRACT)
    with pytest.raises(ob.OutcomeError) as info:
        c.settle(csv=path, as_of="2026-03-01")
    assert info.value.location == f"{path}:3:4"
    assert str(info.value).startswith(f"{path}:3:4: ")
    assert info.value.kind == "malformed data"


def test_malformed_python_row_raises_at_its_line():
    # Proves a malformed row given from Python is located as `rows:LINE:COLUMN`,
    # the first row on line 2.
    c = ob.Contract.from_str(CONTRACT)
    rows = ROWS + [{"customer": "acme", "series": "resolved", "timestamp": "not a time", "value": 1}]
    with pytest.raises(ob.OutcomeError) as info:
        c.settle(rows=rows, as_of="2026-03-01")
    assert info.value.location == "rows:4:3"


def test_missing_metric_file_raises():
    # Proves an unreadable metric file is an OutcomeError naming it.
    c = ob.Contract.from_str(CONTRACT)
    with pytest.raises(ob.OutcomeError, match="no-such.csv"):
        c.settle(csv="no-such.csv", as_of="2026-03-01")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "rows or csv"),
        ({"rows": ROWS, "csv": "x.csv"}, "not both"),
        ({"rows": ROWS, "as_of": "yesterday"}, "as_of"),
        ({"rows": ROWS, "period": "2026-02"}, "period"),
        ({"rows": [1]}, r"rows\[0\]: expected a dict"),
        ({"rows": [{"value": object()}]}, "not a metric value"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    # Proves each bad argument raises OutcomeError saying what is wrong.
    c = ob.Contract.from_str(CONTRACT)
    with pytest.raises(ob.OutcomeError, match=message):
        c.settle(**kwargs)


def test_settle_csv_text_has_the_export_header():
    # Proves the CSV export starts with the columns of `settle --format csv`.
    c = ob.Contract.from_str(CONTRACT)
    text = c.settle_csv_text(rows=ROWS, as_of="2026-03-01")
    assert text.splitlines() == [
        "contract,period_start,period_end,charge,kind,quantity,amount,group",
        "demo,2026-01-01,2026-02-01,per_resolution,unit,1000,990.00,",
        "demo,2026-02-01,2026-03-01,per_resolution,unit,0.1,0.10,",
    ]


def test_stubs_name_what_the_module_has():
    # Proves the type stubs and the compiled module agree on the public
    # names, so a renamed method cannot leave its stub behind.
    import ast
    from pathlib import Path

    stub = ast.parse((Path(__file__).resolve().parents[1] / "outcome_billing.pyi").read_text())
    classes = {n.name: n for n in stub.body if isinstance(n, ast.ClassDef)}
    contract = {n.name for n in classes["Contract"].body if isinstance(n, ast.FunctionDef)}
    public = {n for n in dir(ob.Contract) if not n.startswith("_")}
    assert contract == public
    scenario = {n.name for n in classes["Scenario"].body if isinstance(n, ast.FunctionDef)}
    assert scenario - {"__init__"} == {n for n in dir(ob.Scenario) if not n.startswith("_")}
    run = {n.name for n in classes["BillingRun"].body if isinstance(n, ast.FunctionDef)}
    assert run - {"__init__", "__len__"} == {n for n in dir(ob.BillingRun) if not n.startswith("_")}
    functions = {n.name for n in stub.body if isinstance(n, ast.FunctionDef)}
    module = {n for n in dir(ob) if not n.startswith("_") and callable(getattr(ob, n))
              and not isinstance(getattr(ob, n), type)}
    assert functions == module == {"simulate", "compare", "sweep"}
    assert ob.simulate.__doc__ and ob.Scenario.from_path.__doc__ and ob.Contract.settle_table.__doc__
    assert issubclass(ob.OutcomeError, ValueError)
    assert ob.Contract.settle.__doc__ and ob.Contract.from_path.__doc__


GROUPED = CONTRACT.replace('unit_price = "0.99"', 'unit_price = "0.99"\ngroup_by = "workspace"')


def test_grouped_lines_carry_their_groups():
    # Proves a grouped charge's line lists its groups in byte order, each with
    # Decimal quantity and amount, and that the line is their sum.
    c = ob.Contract.from_str(GROUPED)
    rows = [
        {"customer": "acme", "series": "resolved", "timestamp": "2026-01-05", "value": 10, "workspace": "b"},
        {"customer": "acme", "series": "resolved", "timestamp": "2026-01-06", "value": 20, "workspace": "a"},
    ]
    line = c.settle(rows=rows, as_of="2026-02-01")[0]["lines"][0]
    assert [g["group"] for g in line["groups"]] == ["a", "b"]
    assert line["groups"][0]["quantity"] == Decimal("20")
    assert line["groups"][0]["amount"] == Decimal("19.80")
    assert line["amount"] == Decimal("29.70")
    plain = ob.Contract.from_str(CONTRACT).settle(rows=ROWS, as_of="2026-03-01")[0]["lines"][0]
    assert "groups" not in plain
