//! Billing runs from Python: many contracts settled on one read of the
//! metric data, as `outcome settle DIR` does, on every core.

use std::path::PathBuf;

use chrono::{NaiveDate, Utc};
use outcome_billing::metric::CsvSource;
use outcome_billing::period::Stamp;
use outcome_billing::report::{CSV_HEADER, RunFormat, RunItem};
use outcome_billing::run::{BillingRun, RunOptions};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::data::{ROWS_NAME, metric_csv};
use crate::{Contract, Types, iso_text, raise, statement, table, usage};

/// Settles every contract of `run` on the metric data given, as `outcome
/// settle` does, with the GIL released while the library works: one item
/// per contract, in the byte order of the ids.
pub(crate) fn run_items(
    py: Python<'_>,
    run: &BillingRun,
    rows: Option<&Bound<'_, PyAny>>,
    csv: Option<PathBuf>,
    as_of: Option<&Bound<'_, PyAny>>,
    period: Option<&Bound<'_, PyAny>>,
    trace: bool,
) -> PyResult<Vec<RunItem>> {
    let mut options = RunOptions::new(Utc::now()).trace(trace);
    if let Some(as_of) = as_of {
        let text = iso_text(as_of)?;
        let stamp = Stamp::parse(&text).map_err(|e| usage(py, format!("as_of: {e}")))?;
        options = options.as_of(stamp);
    }
    if let Some(period) = period {
        let text = iso_text(period)?;
        let start = NaiveDate::parse_from_str(&text, "%Y-%m-%d").map_err(|_| {
            usage(
                py,
                format!("period {text:?} is not a date (YYYY-MM-DD or datetime.date)"),
            )
        })?;
        options = options.period(start);
    }
    match (rows, csv) {
        (Some(_), Some(_)) => Err(usage(py, "give rows or csv, not both")),
        (None, None) => Err(usage(py, "give the metric data: rows or csv")),
        (None, Some(path)) => Ok(py.detach(|| run.settle_csv(&path, &options))),
        (Some(rows), None) => {
            let text = metric_csv(rows)?;
            py.detach(|| {
                CsvSource::from_reader(ROWS_NAME, text.as_bytes())
                    .map(|source| run.settle_source(&source, &options))
            })
            .map_err(|e| raise(py, &e))
        }
    }
}

/// Many contracts settled on one read of the metric data, in parallel on
/// every core: what `outcome settle DIR --metrics FILE` does.
#[pyclass(frozen, module = "outcome_billing", name = "BillingRun")]
pub(crate) struct Run {
    run: BillingRun,
}

impl Run {
    /// The CSV export's rows (no header) of the items; a failed contract
    /// raises under `errors="raise"` and has no rows under `"skip"`.
    fn csv_rows(py: Python<'_>, items: &[RunItem], errors: &str) -> PyResult<String> {
        let skip = match errors {
            "raise" => false,
            "skip" => true,
            other => {
                return Err(usage(
                    py,
                    format!("errors {other:?}: expected \"raise\" or \"skip\""),
                ));
            }
        };
        let mut rows = String::new();
        for item in items {
            if let (RunItem::Failed { contract, error }, false) = (item, skip) {
                let err = raise(py, error);
                // The contract's id, for a caller that skips nothing; setting
                // it only fails when memory is exhausted.
                let _ = err.value(py).setattr("contract", contract);
                return Err(err);
            }
            rows.push_str(&item.render(RunFormat::Csv).map_err(|e| raise(py, &e))?);
        }
        Ok(rows)
    }
}

#[pymethods]
impl Run {
    /// A run of `contracts` (each a `Contract`); two with one id raise.
    #[new]
    fn new(py: Python<'_>, contracts: Vec<PyRef<'_, Contract>>) -> PyResult<Run> {
        let compiled = contracts
            .iter()
            .map(|c| c.compiled().cloned())
            .collect::<PyResult<Vec<_>>>()?;
        let run = BillingRun::new(compiled).map_err(|e| raise(py, &e))?;
        Ok(Run { run })
    }

    /// The contracts' ids, in the byte order the run settles and prints them.
    #[getter]
    fn ids(&self) -> Vec<String> {
        self.run
            .contracts()
            .iter()
            .map(|c| c.contract().id.clone())
            .collect()
    }

    fn __len__(&self) -> usize {
        self.run.contracts().len()
    }

    /// Settles every contract, as `outcome settle --format json` does for a
    /// run; the arguments are those of `Contract.settle`.
    ///
    /// Returns one dict per contract in id order: `{"contract", "currency",
    /// "statements", "total"}` (statements as `Contract.settle` returns
    /// them), or `{"contract", "error"}` for one that failed; a failure does
    /// not stop the others. Metric data that cannot be read raises.
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
        let items = run_items(py, &self.run, rows, csv, as_of, period, trace)?;
        let types = Types::get(py)?;
        let out = PyList::empty(py);
        for item in &items {
            let d = PyDict::new(py);
            d.set_item("contract", item.contract())?;
            match item {
                RunItem::Failed { error, .. } => d.set_item("error", error.to_string())?,
                RunItem::Settled(settled) => {
                    let document = settled.to_document().map_err(|e| raise(py, &e))?;
                    d.set_item("currency", settled.currency.code())?;
                    let statements = PyList::empty(py);
                    for entry in &document.statements {
                        statements.append(statement(py, &types, entry)?)?;
                    }
                    d.set_item("statements", statements)?;
                    d.set_item("total", types.decimal(&document.total.to_string())?)?;
                }
            }
            out.append(d)?;
        }
        Ok(out)
    }

    /// `outcome settle DIR --format csv` byte for byte, header included.
    /// A contract that fails raises `OutcomeError` (with `e.contract`) under
    /// `errors="raise"`, and has no rows under `errors="skip"`.
    #[pyo3(signature = (rows = None, csv = None, as_of = None, period = None, errors = "raise"))]
    fn settle_csv_text(
        &self,
        py: Python<'_>,
        rows: Option<&Bound<'_, PyAny>>,
        csv: Option<PathBuf>,
        as_of: Option<&Bound<'_, PyAny>>,
        period: Option<&Bound<'_, PyAny>>,
        errors: &str,
    ) -> PyResult<String> {
        let items = run_items(py, &self.run, rows, csv, as_of, period, false)?;
        Ok(format!(
            "{CSV_HEADER}{}",
            Run::csv_rows(py, &items, errors)?
        ))
    }

    /// The lines of `settle_csv_text` as a `pyarrow.Table`, typed as
    /// `Contract.settle_table` types them.
    #[pyo3(signature = (rows = None, csv = None, as_of = None, period = None, errors = "raise"))]
    fn settle_table<'py>(
        &self,
        py: Python<'py>,
        rows: Option<&Bound<'py, PyAny>>,
        csv: Option<PathBuf>,
        as_of: Option<&Bound<'py, PyAny>>,
        period: Option<&Bound<'py, PyAny>>,
        errors: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let items = run_items(py, &self.run, rows, csv, as_of, period, false)?;
        table::lines_table(py, &Run::csv_rows(py, &items, errors)?)
    }

    fn __repr__(&self) -> String {
        format!("<BillingRun of {} contracts>", self.run.contracts().len())
    }
}
