//! The Python module `outcome_billing`: contracts loaded and validated,
//! settled from Python rows, an Arrow table, a pandas DataFrame or a metric
//! CSV file into Python data or an Arrow table, and simulated, compared and
//! swept, all through the Rust library.
//!
//! Money crosses into Python as `decimal.Decimal` built from the amount's
//! exact text, and into Rust as text: no amount ever passes through a
//! binary float, and Python floats in metric rows are refused rather than
//! rounded. Every bad input raises `OutcomeError`, never a panic: nothing
//! here unwraps a value that came from Python.

use std::path::PathBuf;

use chrono::{Datelike, NaiveDate};
use outcome_billing::report::{CSV_HEADER, RunFormat, RunItem, StatementEntry};
use outcome_billing::run::BillingRun;
use outcome_billing::{CompiledContract, Error, Location};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};

pyo3::create_exception!(
    outcome_billing,
    OutcomeError,
    PyValueError,
    "An invalid contract, malformed metric data or a settlement that failed.\n\n\
     `str(e)` is `LOCATION: MESSAGE` (the field path or `FILE:LINE:COLUMN` first);\n\
     `e.kind` names the kind of error (\"invalid contract\", \"malformed data\", ...),\n\
     `e.location` is the field path, `FILE:LINE:COLUMN` or None, and\n\
     `e.message` is the text the command line prints after `error: `."
);

mod data;
mod run;
mod table;
mod whatif;

/// `error` as an `OutcomeError` carrying its kind, location and message.
pub(crate) fn raise(py: Python<'_>, error: &Error) -> PyErr {
    let err = OutcomeError::new_err(error.to_string());
    let value = err.value(py);
    let location = match error.location() {
        Location::None => None,
        at => Some(at.to_string()),
    };
    // Setting attributes on a fresh exception instance only fails when
    // memory is exhausted; the exception is still worth raising then.
    let _ = value.setattr("kind", error.kind().name());
    let _ = value.setattr("location", location);
    let _ = value.setattr("message", error.message());
    err
}

/// A usage error (bad argument) as an `OutcomeError`.
pub(crate) fn usage(py: Python<'_>, message: impl std::fmt::Display) -> PyErr {
    raise(py, &Error::usage(message))
}

/// `decimal.Decimal` and `datetime.date`, looked up once per interpreter.
pub(crate) struct Types<'py> {
    decimal: Bound<'py, PyAny>,
    date: Bound<'py, PyAny>,
}

static DECIMAL: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static DATE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

impl<'py> Types<'py> {
    pub(crate) fn get(py: Python<'py>) -> PyResult<Types<'py>> {
        let decimal = DECIMAL.import(py, "decimal", "Decimal")?.clone();
        let date = DATE.import(py, "datetime", "date")?.clone();
        Ok(Types { decimal, date })
    }

    /// A `Decimal` from decimal text (never a float).
    pub(crate) fn decimal(&self, text: &str) -> PyResult<Bound<'py, PyAny>> {
        self.decimal.call1((text,))
    }

    pub(crate) fn date(&self, d: NaiveDate) -> PyResult<Bound<'py, PyAny>> {
        self.date.call1((d.year(), d.month(), d.day()))
    }
}

/// A contract, loaded, validated and compiled for settlement.
#[pyclass(frozen, module = "outcome_billing")]
pub(crate) struct Contract {
    /// A run of this contract alone: settling it is what `outcome settle`
    /// does for one file.
    run: BillingRun,
}

impl Contract {
    fn new(py: Python<'_>, compiled: Result<CompiledContract, Error>) -> PyResult<Contract> {
        let compiled = compiled.map_err(|e| raise(py, &e))?;
        let run = BillingRun::new(vec![compiled]).map_err(|e| raise(py, &e))?;
        Ok(Contract { run })
    }

    pub(crate) fn compiled(&self) -> PyResult<&CompiledContract> {
        // A run is made of exactly one contract in `Contract::new`.
        self.run
            .contracts()
            .first()
            .ok_or_else(|| PyValueError::new_err("a contract without its compiled form"))
    }

    /// Settles as `outcome settle` does, with the GIL released while the
    /// Rust library works; a failure is raised.
    fn run(
        &self,
        py: Python<'_>,
        rows: Option<&Bound<'_, PyAny>>,
        csv: Option<PathBuf>,
        as_of: Option<&Bound<'_, PyAny>>,
        period: Option<&Bound<'_, PyAny>>,
        trace: bool,
    ) -> PyResult<RunItem> {
        let mut items = run::run_items(py, &self.run, rows, csv, as_of, period, trace)?;
        match items.pop() {
            Some(RunItem::Failed { error, .. }) => Err(raise(py, &error)),
            Some(item) if items.is_empty() => Ok(item),
            _ => Err(PyValueError::new_err(
                "a run of one contract gave another count of results",
            )),
        }
    }
}

#[pymethods]
impl Contract {
    /// Loads and validates the contract file at `path` (`.toml`, `.json`,
    /// `.yaml` or `.yml`).
    ///
    /// Raises `OutcomeError` naming the field at fault (`e.location`) when
    /// the contract is invalid, or the file when it cannot be read.
    #[staticmethod]
    fn from_path(py: Python<'_>, path: PathBuf) -> PyResult<Contract> {
        let compiled = py.detach(|| CompiledContract::from_path(&path));
        Contract::new(py, compiled)
    }

    /// Loads and validates a contract from its text, in `format` ("toml",
    /// "json" or "yaml").
    ///
    /// Raises `OutcomeError` naming the field at fault when it is invalid.
    #[staticmethod]
    #[pyo3(signature = (text, format = "toml"))]
    fn from_str(py: Python<'_>, text: &str, format: &str) -> PyResult<Contract> {
        let compiled = match format {
            "toml" => CompiledContract::from_toml_str(text),
            "json" => CompiledContract::from_json_str(text),
            "yaml" | "yml" => CompiledContract::from_yaml_str(text),
            other => {
                return Err(usage(
                    py,
                    format!("format {other:?}: expected \"toml\", \"json\" or \"yaml\""),
                ));
            }
        };
        Contract::new(py, compiled)
    }

    /// The contract's id.
    #[getter]
    fn id(&self) -> PyResult<String> {
        Ok(self.compiled()?.contract().id.clone())
    }

    /// The customer the contract bills.
    #[getter]
    fn customer(&self) -> PyResult<String> {
        Ok(self.compiled()?.contract().customer.clone())
    }

    /// The currency's ISO 4217 code.
    #[getter]
    fn currency(&self) -> PyResult<String> {
        Ok(self.compiled()?.currency().to_string())
    }

    /// The fingerprint of the contract's settlement rules: it changes when
    /// anything that can change an amount changes.
    #[getter]
    fn version(&self) -> PyResult<String> {
        Ok(self.compiled()?.version().to_owned())
    }

    /// The billing periods, as `(start, end)` dates; `end` is exclusive.
    #[getter]
    fn periods<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyTuple>>> {
        let types = Types::get(py)?;
        self.compiled()?
            .periods()
            .iter()
            .map(|p| PyTuple::new(py, [types.date(p.start)?, types.date(p.end)?]))
            .collect()
    }

    /// Settles the periods due, as `outcome settle --format json` does.
    ///
    /// Metric data is `rows` or `csv` (the path of a metric CSV file).
    /// `rows` has the metric CSV's columns: an iterable of dicts (values
    /// `str`, `int`, `Decimal`, `bool`, dates or `None`), a `pyarrow.Table`
    /// or `RecordBatch` (or any object with `__arrow_c_stream__`), or a
    /// `pandas.DataFrame`; floats are refused, a missing value is an empty
    /// cell. `as_of` (a date, a timezone-aware
    /// datetime, or their ISO text) reads only what was known then and
    /// settles the periods it ended; without it every row is read and the
    /// periods ended by now are settled. `period` (a date) settles only the
    /// period starting on it.
    ///
    /// Returns one dict per statement: `{"period": {"start", "end"},
    /// "lines": [{"charge", "kind", "quantity", "amount", "trace"}],
    /// "total"}`, every amount and quantity a `decimal.Decimal`, `quantity`
    /// None for kinds without one, `trace` a list of `{"step", "value"}`.
    ///
    /// Raises `OutcomeError`: a malformed metric row at `FILE:LINE:COLUMN`
    /// (`rows:LINE:COLUMN` for rows, the first at line 2), a settlement
    /// that fails at its contract and period.
    #[pyo3(signature = (rows = None, csv = None, as_of = None, period = None, trace = true))]
    fn settle<'py>(
        &self,
        py: Python<'py>,
        rows: Option<&Bound<'py, PyAny>>,
        csv: Option<PathBuf>,
        as_of: Option<&Bound<'py, PyAny>>,
        period: Option<&Bound<'py, PyAny>>,
        trace: bool,
    ) -> PyResult<Bound<'py, PyList>> {
        let item = self.run(py, rows, csv, as_of, period, trace)?;
        let RunItem::Settled(settled) = item else {
            return Err(PyValueError::new_err("a failed run was not raised"));
        };
        let document = settled.to_document().map_err(|e| raise(py, &e))?;
        let types = Types::get(py)?;
        let list = PyList::empty(py);
        for entry in &document.statements {
            list.append(statement(py, &types, entry)?)?;
        }
        Ok(list)
    }

    /// The invoicing export of `outcome settle --format csv`, header
    /// included, byte for byte; the arguments are those of `settle`.
    #[pyo3(signature = (rows = None, csv = None, as_of = None, period = None))]
    fn settle_csv_text(
        &self,
        py: Python<'_>,
        rows: Option<&Bound<'_, PyAny>>,
        csv: Option<PathBuf>,
        as_of: Option<&Bound<'_, PyAny>>,
        period: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<String> {
        let item = self.run(py, rows, csv, as_of, period, false)?;
        let rows = item.render(RunFormat::Csv).map_err(|e| raise(py, &e))?;
        Ok(format!("{CSV_HEADER}{rows}"))
    }

    /// The lines of `outcome settle --format csv` as a `pyarrow.Table`
    /// with the same columns and rows: `period_start` and `period_end`
    /// dates, `quantity` and `amount` exact decimals (`quantity` null where
    /// the kind has none), the others strings. The arguments are those of
    /// `settle`; pyarrow must be installed.
    #[pyo3(signature = (rows = None, csv = None, as_of = None, period = None))]
    fn settle_table<'py>(
        &self,
        py: Python<'py>,
        rows: Option<&Bound<'py, PyAny>>,
        csv: Option<PathBuf>,
        as_of: Option<&Bound<'py, PyAny>>,
        period: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let item = self.run(py, rows, csv, as_of, period, false)?;
        let rows = item.render(RunFormat::Csv).map_err(|e| raise(py, &e))?;
        table::lines_table(py, &rows)
    }

    fn __repr__(&self) -> PyResult<String> {
        Ok(format!("<Contract {:?}>", self.compiled()?.contract().id))
    }
}

/// `value` as ISO text: a `str` as it is, a `date` or `datetime` by its
/// `isoformat()` (a naive datetime then fails to parse, as it should: it
/// names no instant).
pub(crate) fn iso_text(value: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(text) = value.cast::<PyString>() {
        return text.extract();
    }
    match value.getattr("isoformat") {
        Ok(f) => f.call0()?.extract(),
        Err(_) => Err(usage(
            value.py(),
            format!(
                "expected a date, a datetime or ISO text, not {}",
                value.get_type().name()?
            ),
        )),
    }
}

/// A trace as a list of `{ step, value }` dicts.
fn trace_list<'py>(
    py: Python<'py>,
    types: &Types<'py>,
    steps: &[outcome_billing::settle::Step],
) -> PyResult<Bound<'py, PyList>> {
    let trace = PyList::empty(py);
    for step in steps {
        let s = PyDict::new(py);
        s.set_item("step", &step.step)?;
        // Steps' values are decimal text; one that Python cannot read as
        // a Decimal stays text rather than failing the statement.
        match types.decimal(&step.value) {
            Ok(v) => s.set_item("value", v)?,
            Err(_) => s.set_item("value", &step.value)?,
        }
        trace.append(s)?;
    }
    Ok(trace)
}

/// One statement entry as the dict `settle` returns.
pub(crate) fn statement<'py>(
    py: Python<'py>,
    types: &Types<'py>,
    entry: &StatementEntry,
) -> PyResult<Bound<'py, PyDict>> {
    let period = PyDict::new(py);
    period.set_item("start", types.date(entry.period.start)?)?;
    period.set_item("end", types.date(entry.period.end)?)?;
    let lines = PyList::empty(py);
    for line in &entry.lines {
        let d = PyDict::new(py);
        d.set_item("charge", &line.charge)?;
        d.set_item("kind", &line.kind)?;
        // Quantities print as the JSON document does: without trailing zeros.
        match line.quantity {
            Some(q) => d.set_item("quantity", types.decimal(&q.normalize().to_string())?)?,
            None => d.set_item("quantity", py.None())?,
        }
        d.set_item("amount", types.decimal(&line.amount.to_string())?)?;
        d.set_item("trace", trace_list(py, types, &line.trace)?)?;
        // A grouped charge's groups, as the JSON document has them; only
        // grouped lines have the key.
        if let Some(groups) = &line.groups {
            let list = PyList::empty(py);
            for g in groups {
                let gd = PyDict::new(py);
                gd.set_item("group", &g.group)?;
                match g.quantity {
                    Some(q) => {
                        gd.set_item("quantity", types.decimal(&q.normalize().to_string())?)?
                    }
                    None => gd.set_item("quantity", py.None())?,
                }
                gd.set_item("amount", types.decimal(&g.amount.to_string())?)?;
                gd.set_item("trace", trace_list(py, types, &g.trace)?)?;
                list.append(gd)?;
            }
            d.set_item("groups", list)?;
        }
        lines.append(d)?;
    }
    let out = PyDict::new(py);
    out.set_item("period", period)?;
    out.set_item("lines", lines)?;
    out.set_item("total", types.decimal(&entry.total.to_string())?)?;
    Ok(out)
}

/// Outcome-based contracts settled in exact decimal money.
#[pymodule(name = "outcome_billing")]
fn outcome_billing_py(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("OutcomeError", m.py().get_type::<OutcomeError>())?;
    m.add_class::<Contract>()?;
    m.add_class::<run::Run>()?;
    m.add_class::<whatif::Scenario>()?;
    m.add_function(wrap_pyfunction!(whatif::simulate, m)?)?;
    m.add_function(wrap_pyfunction!(whatif::compare, m)?)?;
    m.add_function(wrap_pyfunction!(whatif::sweep, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
