"""simulate, compare and sweep from Python: the reports the command line
prints as JSON, as Python data with Decimal amounts and date periods."""

import datetime
import json
import subprocess
from decimal import Decimal

import pytest

import outcome_billing as ob
from conftest import ROOT

EXAMPLE = ROOT / "examples" / "ai-support-agent"
CONTRACT = EXAMPLE / "contract.toml"
SEATS = EXAMPLE / "seat-plan.toml"
SCENARIO = EXAMPLE / "scenario.toml"
METRICS = EXAMPLE / "metrics.csv"


def cli_json(outcome_bin, *args):
    """The command's `--format json` output, parsed with every string kept."""
    out = subprocess.run([str(outcome_bin), *map(str, args), "--format", "json"],
                         check=True, capture_output=True)
    return json.loads(out.stdout)


def as_json(value):
    """Python data as the JSON document would write it: Decimals and dates
    as their text."""
    if isinstance(value, dict):
        return {k: as_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_json(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    return value


def walk(value, path=""):
    """Every (path, leaf) of a report."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from walk(v, f"{path}.{k}")
    elif isinstance(value, list):
        for n, v in enumerate(value):
            yield from walk(v, f"{path}[{n}]")
    else:
        yield path, value


def test_simulate_is_the_command_lines_report(outcome_bin):
    # Proves simulate() returns `outcome simulate --format json` exactly,
    # with amounts and shares as Decimals and periods as dates.
    c = ob.Contract.from_path(CONTRACT)
    report = ob.simulate(c, ob.Scenario.from_path(SCENARIO), runs=300, seed=7)
    assert as_json(report) == cli_json(outcome_bin, "simulate", CONTRACT, "--scenario", SCENARIO,
                                       "--runs", 300, "--seed", 7)
    assert report["runs"] == 300 and report["contract"] == c.id
    assert isinstance(report["periods"][0]["period"]["start"], datetime.date)
    assert isinstance(report["term"]["total"]["p95"], Decimal)
    shares = report["term"]["limits"]
    assert shares and all(isinstance(v, Decimal) for v in shares.values())
    assert all(not isinstance(v, float) for _, v in walk(report))


def test_compare_on_a_scenario_and_on_history(outcome_bin):
    # Proves compare() gives the command line's report on identical draws of
    # a scenario, and on history settled as of a date.
    contracts = [ob.Contract.from_path(CONTRACT), ob.Contract.from_path(SEATS)]
    drawn = ob.compare(contracts, ob.Scenario.from_path(SCENARIO), runs=200, seed=3)
    assert as_json(drawn) == cli_json(outcome_bin, "compare", CONTRACT, SEATS,
                                      "--scenario", SCENARIO, "--runs", 200, "--seed", 3)
    assert isinstance(drawn["difference"][0]["larger"], Decimal)
    history = ob.compare(contracts, csv=METRICS, as_of="2026-01-01")
    assert as_json(history) == cli_json(outcome_bin, "compare", CONTRACT, SEATS,
                                        "--metrics", METRICS, "--as-of", "2026-01-01")
    with METRICS.open(newline="", encoding="utf-8") as f:
        import csv
        rows = list(csv.DictReader(f))
    assert ob.compare(contracts, rows=rows, as_of=datetime.date(2026, 1, 1)) == history


def test_sweep_is_the_command_lines_report(outcome_bin):
    # Proves sweep() gives the command line's levels, totals and break-even,
    # levels given as int, str or Decimal.
    contracts = [ob.Contract.from_path(CONTRACT), ob.Contract.from_path(SEATS)]
    report = ob.sweep(contracts, "resolved_conversations", 0, "12000", steps=6,
                      scenario=ob.Scenario.from_path(SCENARIO), runs=50)
    assert as_json(report) == cli_json(outcome_bin, "sweep", CONTRACT, SEATS,
                                       "--metric", "resolved_conversations", "--from", 0,
                                       "--to", 12000, "--steps", 6, "--scenario", SCENARIO,
                                       "--runs", 50)
    assert [l["level"] for l in report["levels"]] == [Decimal(2000 * k) for k in range(7)]
    ids = {c.id for c in contracts}
    assert all(set(l["totals"]) == ids for l in report["levels"])
    assert all(isinstance(v, Decimal) for l in report["levels"] for v in l["totals"].values())
    history = ob.sweep(contracts, "resolved_conversations", Decimal("0"), Decimal("9000"),
                       steps=3, csv=METRICS)
    assert as_json(history) == cli_json(outcome_bin, "sweep", CONTRACT, SEATS,
                                        "--metric", "resolved_conversations", "--from", 0,
                                        "--to", 9000, "--steps", 3, "--metrics", METRICS)


def test_results_do_not_depend_on_threads():
    # Proves the seed alone decides the draws: one thread and two agree.
    c = ob.Contract.from_path(CONTRACT)
    scenario = ob.Scenario.from_path(SCENARIO)
    assert ob.simulate(c, scenario, runs=100, seed=1, threads=1) == \
        ob.simulate(c, scenario, runs=100, seed=1, threads=2)


def test_plot_writes_the_chart(tmp_path):
    # Proves plot= writes the SVG chart, and refuses a path that is not .svg
    # before any work.
    c = ob.Contract.from_path(CONTRACT)
    ob.simulate(c, ob.Scenario.from_path(SCENARIO), runs=20, plot=tmp_path / "chart.svg")
    assert (tmp_path / "chart.svg").read_text().startswith("<svg")
    with pytest.raises(ob.OutcomeError, match=r"\.svg"):
        ob.simulate(c, ob.Scenario.from_path(SCENARIO), runs=20, plot=tmp_path / "chart.png")


def test_what_if_errors():
    # Proves bad what-if arguments raise OutcomeError with what is wrong.
    c = ob.Contract.from_path(CONTRACT)
    scenario = ob.Scenario.from_path(SCENARIO)
    with pytest.raises(ob.OutcomeError, match="float"):
        ob.sweep([c], "resolved_conversations", 0.5, 10)
    with pytest.raises(ob.OutcomeError, match="not both"):
        ob.compare([c], scenario, csv=METRICS)
    with pytest.raises(ob.OutcomeError, match="needs metric data"):
        ob.compare([c])
    with pytest.raises(ob.OutcomeError, match="threads"):
        ob.simulate(c, scenario, threads=0)
    with pytest.raises(ob.OutcomeError) as e:
        ob.Scenario.from_str('[series.x]\nmodel = "normal"\nmean = "1"\n')
    assert e.value.location == "series.x.sd"
    with pytest.raises(ob.OutcomeError, match="nothing to sweep"):
        ob.sweep([c], "no_such_series", 0, 10)
    paris = ob.Contract.from_str(CONTRACT.read_text().replace("America/Chicago", "Europe/Paris")
                                 .replace("northwind-per-resolution", "paris"))
    with pytest.raises(ob.OutcomeError, match="different instants"):
        ob.compare([c, paris], csv=METRICS, as_of="2025-06-01")
