"""BillingRun: many contracts settled on one read of the metric data, as
`outcome settle DIR` does."""

import json
import subprocess
import sys
from decimal import Decimal

import pytest

import outcome_billing as ob
from conftest import ROOT
from test_whatif import as_json

AS_OF = "2027-01-15"


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """A generated billing run of 40 contracts, plus two that fail: one whose
    customer has no rows, one whose metric data holds a conflicting tie."""
    run = tmp_path_factory.mktemp("run")
    subprocess.run([sys.executable, str(ROOT / "benches" / "billing-run" / "generate.py"), str(run),
                    "--contracts", "40"], check=True, stdout=subprocess.DEVNULL)
    contracts = run / "contracts"
    template = (contracts / "c000001.toml").read_text(encoding="utf-8")
    for cid, customer in (("c900000", "cust-no-rows"), ("c900001", "cust-tie")):
        text = template.replace('id = "c000001"', f'id = "{cid}"').replace(
            'customer = "cust000001"', f'customer = "{customer}"')
        (contracts / f"{cid}.toml").write_text(text, encoding="utf-8")
    with (run / "metrics.csv").open("a", encoding="utf-8") as f:
        f.write("cust-tie,revenue,2026-02-03T00:00:00Z,10.00,r1,2026-02-04T00:00:00Z,\n")
        f.write("cust-tie,revenue,2026-02-03T00:00:00Z,11.00,r1,2026-02-04T00:00:00Z,\n")
    return run


def load(run):
    return ob.BillingRun([ob.Contract.from_path(p) for p in sorted((run / "contracts").glob("*.toml"))])


def cli(outcome_bin, run, fmt):
    out = subprocess.run([str(outcome_bin), "settle", str(run / "contracts"), "--metrics",
                          str(run / "metrics.csv"), "--as-of", AS_OF, "--format", fmt],
                         capture_output=True)
    assert out.returncode == 1, out.stderr  # the two contracts that fail
    return out.stdout.decode()


def test_run_csv_is_the_command_lines(generated, outcome_bin):
    # Proves a run's CSV export is `outcome settle DIR --format csv` byte for
    # byte when failures are skipped, and that a failure raises by default,
    # naming its contract.
    run = load(generated)
    assert len(run) == 42 and run.ids == sorted(run.ids)
    text = run.settle_csv_text(csv=generated / "metrics.csv", as_of=AS_OF, errors="skip")
    assert text == cli(outcome_bin, generated, "csv")
    with pytest.raises(ob.OutcomeError) as e:
        run.settle_csv_text(csv=generated / "metrics.csv", as_of=AS_OF)
    # The first failure in id order: c900000's customer has no rows at all.
    assert e.value.contract == "c900000" and e.value.kind == "missing data"
    with pytest.raises(ob.OutcomeError, match="errors"):
        run.settle_csv_text(csv=generated / "metrics.csv", errors="ignore")


def test_run_documents_are_the_command_lines(generated, outcome_bin):
    # Proves settle() gives the run's JSON documents, a failed contract as
    # {"contract", "error"} in its place, the others settled.
    run = load(generated)
    got = run.settle(csv=generated / "metrics.csv", as_of=AS_OF)
    want = json.loads(cli(outcome_bin, generated, "json"))["contracts"]
    assert [d["contract"] for d in got] == [d["contract"] for d in want]
    for g, w in zip(got, want):
        if "error" in w:
            assert g == {"contract": w["contract"], "error": w["error"]}
        else:
            assert isinstance(g["total"], Decimal)
            # The JSON leaves out `quantity` where Python has None.
            for s in g["statements"]:
                for line in s["lines"]:
                    if line["quantity"] is None:
                        del line["quantity"]
            assert as_json(g) == w


def test_run_table_and_rows(generated):
    # Proves the run's Arrow table holds the CSV export's lines, and that the
    # data given as a pyarrow Table settles as the file does.
    pa = pytest.importorskip("pyarrow")
    import pyarrow.csv as pcsv

    run = load(generated)
    metrics = generated / "metrics.csv"
    table = run.settle_table(csv=metrics, as_of=AS_OF, errors="skip")
    text = run.settle_csv_text(csv=metrics, as_of=AS_OF, errors="skip")
    assert table.num_rows == text.count("\n") - 1
    assert sum(table.column("amount").to_pylist(), Decimal(0)) == sum(
        Decimal(line.split(",")[6]) for line in text.splitlines()[1:])
    with metrics.open(encoding="utf-8") as f:
        names = f.readline().strip().split(",")
    data = pcsv.read_csv(metrics, convert_options=pcsv.ConvertOptions(
        column_types={n: pa.string() for n in names}, strings_can_be_null=False))
    assert run.settle_csv_text(rows=data, as_of=AS_OF, errors="skip") == text


def test_two_contracts_with_one_id_raise():
    # Proves a run refuses two contracts with one id, as the command line does.
    c = ob.Contract.from_path(ROOT / "examples" / "support-agent" / "contract.toml")
    with pytest.raises(ob.OutcomeError, match="two contracts have the id"):
        ob.BillingRun([c, c])
