//! What-if from Python: `simulate`, `compare` and `sweep`, as the commands
//! of those names do, returning the report the command prints with
//! `--format json` as Python data.
//!
//! The JSON documents write money and shares as decimal text; here each
//! becomes a `decimal.Decimal` and each period's dates a `datetime.date`,
//! by where they stand in the document (see [`to_python`]), so an id that
//! looks like a number stays a `str`.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use outcome_billing::metric::CsvSource;
use outcome_billing::money::parse_decimal;
use outcome_billing::simulate as sim;
use outcome_billing::simulate::{
    Basis, ChartLabels, RUNS_DEFAULT, STEPS_DEFAULT, SimulateOptions, SweepSpec,
};
use outcome_billing::{CompiledContract, Error, MetricSource};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use serde_json::Value;

use crate::data::{ROWS_NAME, cell_text, metric_csv};
use crate::{Contract, Types, raise, usage};

/// A scenario for `simulate`, `compare` and `sweep`: a model per series
/// (see the scenario files of `docs/command-line.md`).
#[pyclass(frozen, module = "outcome_billing")]
pub(crate) struct Scenario {
    scenario: sim::Scenario,
}

#[pymethods]
impl Scenario {
    /// A scenario without series: every period of the contract's term, and
    /// no value for any series but the one a sweep sets.
    #[new]
    fn new() -> Scenario {
        Scenario {
            scenario: sim::Scenario::default(),
        }
    }

    /// Reads a scenario file (TOML). Raises `OutcomeError` with the file
    /// and the field at fault.
    #[staticmethod]
    fn from_path(py: Python<'_>, path: PathBuf) -> PyResult<Scenario> {
        let scenario = sim::Scenario::from_path(&path).map_err(|e| raise(py, &e))?;
        Ok(Scenario { scenario })
    }

    /// Reads a scenario from its TOML text. Raises `OutcomeError` with the
    /// field at fault.
    #[staticmethod]
    fn from_str(py: Python<'_>, text: &str) -> PyResult<Scenario> {
        let scenario = sim::Scenario::from_toml_str(text).map_err(|e| raise(py, &e))?;
        Ok(Scenario { scenario })
    }

    /// Whether a series is drawn at random (then runs differ).
    #[getter]
    fn is_random(&self) -> bool {
        self.scenario.is_random()
    }

    fn __repr__(&self) -> String {
        format!("<Scenario random={}>", self.scenario.is_random())
    }
}

/// Simulation options from the keyword arguments every what-if takes.
fn options(
    py: Python<'_>,
    runs: usize,
    seed: u64,
    threads: Option<usize>,
) -> PyResult<SimulateOptions> {
    let options = SimulateOptions::new().runs(runs).seed(seed);
    let options = match threads {
        Some(0) => return Err(usage(py, "threads must be at least 1")),
        Some(n) => options.threads(n),
        None => options,
    };
    Ok(options)
}

/// The contracts' compiled forms, in the order given.
fn compiled(contracts: &[PyRef<'_, Contract>]) -> PyResult<Vec<CompiledContract>> {
    contracts.iter().map(|c| c.compiled().cloned()).collect()
}

/// Metric history from `rows` (row dicts, an Arrow table or a DataFrame) or
/// the metric CSV file at `csv`; None when neither is given.
fn history(
    py: Python<'_>,
    rows: Option<&Bound<'_, PyAny>>,
    csv: Option<PathBuf>,
) -> PyResult<Option<CsvSource>> {
    let source = match (rows, csv) {
        (Some(_), Some(_)) => return Err(usage(py, "give rows or csv, not both")),
        (None, None) => return Ok(None),
        (None, Some(path)) => py.detach(|| CsvSource::open(&path)),
        (Some(rows), None) => {
            let text = metric_csv(rows)?;
            py.detach(|| CsvSource::from_reader(ROWS_NAME, text.as_bytes()))
        }
    };
    source.map(Some).map_err(|e| raise(py, &e))
}

/// The instant `as_of` names for every contract; without it, now.
fn due_at(
    py: Python<'_>,
    contracts: &[CompiledContract],
    as_of: Option<&Bound<'_, PyAny>>,
) -> PyResult<DateTime<Utc>> {
    let Some(as_of) = as_of else {
        return Ok(Utc::now());
    };
    let text = crate::iso_text(as_of)?;
    sim::common_instant(contracts, &text)
        .map(|at| at.unwrap_or_else(Utc::now))
        .map_err(|e| usage(py, format!("as_of: {}", e.message())))
}

/// Checks that `plot` names an SVG file, before any work.
fn check_plot(py: Python<'_>, plot: Option<&Path>) -> PyResult<()> {
    match plot {
        Some(p) if !p.extension().is_some_and(|e| e.eq_ignore_ascii_case("svg")) => Err(usage(
            py,
            format!("plot {} must name an .svg file", p.display()),
        )),
        _ => Ok(()),
    }
}

/// Writes the chart to `plot`, when given.
fn write_plot(
    py: Python<'_>,
    plot: Option<&Path>,
    svg: impl FnOnce() -> Result<String, Error>,
) -> PyResult<()> {
    if let Some(path) = plot {
        let svg = svg().map_err(|e| raise(py, &e))?;
        std::fs::write(path, svg)
            .map_err(|e| raise(py, &Error::io(path.display().to_string(), e)))?;
    }
    Ok(())
}

/// Simulates `contract` under `scenario`, as `outcome simulate` does.
///
/// Returns the JSON report as Python data: `{"contract", "currency", "runs",
/// "seed", "periods": [{"period": {"start", "end"}, "charges": {ID: {"mean",
/// "p5", "p50", "p95"}}, "total": {...}, "limits": {ID: share}}], "term":
/// {...}}`, every amount and share a `decimal.Decimal`. `plot` writes the
/// chart as SVG. The GIL is released while the runs settle.
#[pyfunction]
#[pyo3(signature = (contract, scenario, *, runs = RUNS_DEFAULT, seed = 0, threads = None, plot = None))]
pub(crate) fn simulate<'py>(
    py: Python<'py>,
    contract: PyRef<'py, Contract>,
    scenario: PyRef<'py, Scenario>,
    runs: usize,
    seed: u64,
    threads: Option<usize>,
    plot: Option<PathBuf>,
) -> PyResult<Bound<'py, PyAny>> {
    check_plot(py, plot.as_deref())?;
    let options = options(py, runs, seed, threads)?;
    let compiled = contract.compiled()?;
    let scenario = &scenario.scenario;
    let report = py
        .detach(|| sim::simulate(compiled, scenario, &options))
        .map_err(|e| raise(py, &e))?;
    write_plot(py, plot.as_deref(), || report.chart_svg())?;
    to_python(py, &report.to_json())
}

/// Compares contracts, as `outcome compare` does: on identical draws of a
/// `scenario`, or settled once on metric history (`rows` or `csv`, and
/// `as_of` deciding which periods are due, as `--as-of` does).
///
/// Returns `{"contracts": [<a simulate report per contract>],
/// "difference": [{"contract", "mean", "p5", "p50", "p95", "larger"}]}`
/// with every amount and share a `decimal.Decimal`.
#[pyfunction]
#[pyo3(signature = (contracts, scenario = None, *, rows = None, csv = None, as_of = None, runs = RUNS_DEFAULT, seed = 0, threads = None, plot = None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn compare<'py>(
    py: Python<'py>,
    contracts: Vec<PyRef<'py, Contract>>,
    scenario: Option<PyRef<'py, Scenario>>,
    rows: Option<&Bound<'py, PyAny>>,
    csv: Option<PathBuf>,
    as_of: Option<&Bound<'py, PyAny>>,
    runs: usize,
    seed: u64,
    threads: Option<usize>,
    plot: Option<PathBuf>,
) -> PyResult<Bound<'py, PyAny>> {
    check_plot(py, plot.as_deref())?;
    let contracts = compiled(&contracts)?;
    let options = options(py, runs, seed, threads)?;
    let source = history(py, rows, csv)?;
    let (comparison, labels) = match (&source, &scenario) {
        (Some(_), Some(_)) => {
            return Err(usage(
                py,
                "give metric data (rows or csv) or a scenario, not both",
            ));
        }
        (None, None) => {
            return Err(usage(
                py,
                "compare needs metric data (rows or csv) or a scenario",
            ));
        }
        (Some(source), None) => {
            let options = options.now(due_at(py, &contracts, as_of)?);
            let as_of_text = as_of.map(crate::iso_text).transpose()?;
            let comparison = py.detach(|| {
                sim::compare(
                    &contracts,
                    Basis::History(source as &dyn MetricSource),
                    &options,
                )
            });
            (comparison, ChartLabels::history(as_of_text.as_deref()))
        }
        (None, Some(scenario)) => {
            let scenario = &scenario.scenario;
            let comparison =
                py.detach(|| sim::compare(&contracts, Basis::Scenario(scenario), &options));
            (comparison, ChartLabels::new())
        }
    };
    let comparison = comparison.map_err(|e| raise(py, &e))?;
    write_plot(py, plot.as_deref(), || comparison.chart_svg_with(&labels))?;
    to_python(py, &comparison.to_json())
}

/// Settles each contract at `steps + 1` levels of the series `metric`, from
/// `from_` to `to` (each a `str`, `int` or `Decimal`), as `outcome sweep`
/// does: on a `scenario` (default: none, every other series absent), or on
/// metric history (`rows` or `csv`; with `as_of`, only the periods due then).
///
/// Returns `{"series", "levels": [{"level", "totals": {ID: amount}}],
/// "break_even": [{"contracts": [ID, ID], "level"}]}`, levels and amounts
/// `decimal.Decimal`.
#[pyfunction]
#[pyo3(signature = (contracts, metric, from_, to, *, steps = STEPS_DEFAULT, scenario = None, rows = None, csv = None, as_of = None, runs = RUNS_DEFAULT, seed = 0, threads = None, plot = None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn sweep<'py>(
    py: Python<'py>,
    contracts: Vec<PyRef<'py, Contract>>,
    metric: &str,
    from_: &Bound<'py, PyAny>,
    to: &Bound<'py, PyAny>,
    steps: usize,
    scenario: Option<PyRef<'py, Scenario>>,
    rows: Option<&Bound<'py, PyAny>>,
    csv: Option<PathBuf>,
    as_of: Option<&Bound<'py, PyAny>>,
    runs: usize,
    seed: u64,
    threads: Option<usize>,
    plot: Option<PathBuf>,
) -> PyResult<Bound<'py, PyAny>> {
    check_plot(py, plot.as_deref())?;
    let level = |name: &str, value: &Bound<'py, PyAny>| {
        cell_text(value)
            .map_err(|e| e.to_string())
            .and_then(|text| parse_decimal(&text).map_err(|e| e.message().to_owned()))
            .map_err(|why| usage(py, format!("{name}: {why}")))
    };
    let spec = SweepSpec::new(metric, level("from_", from_)?, level("to", to)?).steps(steps);
    spec.levels().map_err(|e| raise(py, &e))?;
    let contracts = compiled(&contracts)?;
    let options = options(py, runs, seed, threads)?;
    let source = history(py, rows, csv)?;
    let report = match (&source, &scenario) {
        (Some(_), Some(_)) => {
            return Err(usage(
                py,
                "give metric data (rows or csv) or a scenario, not both",
            ));
        }
        (Some(source), None) => {
            // Without `as_of` a sweep runs the whole term, clock or not.
            let options = match as_of {
                Some(_) => options.now(due_at(py, &contracts, as_of)?),
                None => options,
            };
            py.detach(|| {
                sim::sweep(
                    &contracts,
                    &spec,
                    Basis::History(source as &dyn MetricSource),
                    &options,
                )
            })
        }
        (None, scenario) => {
            let default = sim::Scenario::default();
            let scenario = scenario.as_ref().map_or(&default, |s| &s.scenario);
            py.detach(|| sim::sweep(&contracts, &spec, Basis::Scenario(scenario), &options))
        }
    };
    let report = report.map_err(|e| raise(py, &e))?;
    write_plot(py, plot.as_deref(), || report.chart_svg())?;
    to_python(py, &report.to_json())
}

/// Keys whose string values are decimal numbers in the what-if documents.
const DECIMAL_KEYS: &[&str] = &["mean", "p5", "p50", "p95", "larger", "level", "amount"];

/// Maps whose every value is a decimal number: limits' shares, a sweep
/// level's totals.
const DECIMAL_MAPS: &[&str] = &["limits", "totals"];

/// A what-if JSON document as Python data. A string becomes a
/// `decimal.Decimal` under a key of [`DECIMAL_KEYS`] or as a value of a map
/// named in [`DECIMAL_MAPS`], and a `datetime.date` as the `start` or `end`
/// of a `period`; every other string stays a `str`, numbers are `int`.
pub(crate) fn to_python<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    convert(py, &Types::get(py)?, value, None, None)
}

fn convert<'py>(
    py: Python<'py>,
    types: &Types<'py>,
    value: &Value,
    key: Option<&str>,
    parent: Option<&str>,
) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => u.into_pyobject(py)?.into_any(),
            (None, Some(i)) => i.into_pyobject(py)?.into_any(),
            _ => types.decimal(&n.to_string())?,
        },
        Value::String(s) => {
            let is_decimal = key.is_some_and(|k| DECIMAL_KEYS.contains(&k))
                || parent.is_some_and(|p| DECIMAL_MAPS.contains(&p));
            let is_date = parent == Some("period") && matches!(key, Some("start" | "end"));
            if is_decimal {
                types.decimal(s)?
            } else if is_date {
                match chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
                    Ok(d) => types.date(d)?,
                    Err(_) => s.into_pyobject(py)?.into_any(),
                }
            } else {
                s.into_pyobject(py)?.into_any()
            }
        }
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(convert(py, types, item, None, key)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(k, convert(py, types, v, Some(k), key)?)?;
            }
            dict.into_any()
        }
    })
}
