//! Statement lines as a pyarrow Table with the columns of `outcome settle
//! --format csv`, read from that export so the two cannot differ.
//!
//! The columns are typed: `period_start` and `period_end` are `date32`,
//! `quantity` and `amount` are exact decimals (`decimal128`, or
//! `decimal256` when a value needs more than 38 digits) at the largest
//! scale the column holds, `quantity` null where the CSV leaves it empty;
//! the others are strings (`group` empty for an ungrouped line, as in the
//! CSV).

use chrono::NaiveDate;
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::{Types, usage};

/// The columns, in the order of the CSV export.
const COLUMNS: [&str; 8] = [
    "contract",
    "period_start",
    "period_end",
    "charge",
    "kind",
    "quantity",
    "amount",
    "group",
];

/// The widest decimal a column holds: digits before and after the point.
#[derive(Default)]
struct Width {
    integer: usize,
    scale: usize,
}

impl Width {
    fn fit(&mut self, text: &str) {
        let digits = text.trim_start_matches('-');
        let (integer, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        self.integer = self.integer.max(integer.len());
        self.scale = self.scale.max(fraction.len());
    }

    /// The pyarrow decimal type that holds every value of the column.
    fn arrow_type<'py>(&self, pyarrow: &Bound<'py, PyModule>) -> PyResult<Bound<'py, PyAny>> {
        if self.integer + self.scale <= 38 {
            pyarrow.call_method1("decimal128", (38, self.scale))
        } else {
            pyarrow.call_method1("decimal256", (76, self.scale))
        }
    }
}

/// The lines of the CSV export `rows` (no header) as a pyarrow Table.
pub(crate) fn lines_table<'py>(py: Python<'py>, rows: &str) -> PyResult<Bound<'py, PyAny>> {
    let pyarrow = py.import("pyarrow").map_err(|_| {
        usage(
            py,
            "an Arrow table needs pyarrow installed (pip install pyarrow)",
        )
    })?;
    let types = Types::get(py)?;
    let mut text: [Vec<String>; 8] = Default::default();
    let (mut quantity, mut amount) = (Width::default(), Width::default());
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(rows.as_bytes());
    for record in reader.records() {
        let record = record.map_err(|e| usage(py, format!("the CSV export: {e}")))?;
        if record.len() != COLUMNS.len() {
            return Err(usage(
                py,
                format!("the CSV export has a row of {} fields", record.len()),
            ));
        }
        for (column, field) in text.iter_mut().zip(record.iter()) {
            column.push(field.to_owned());
        }
        quantity.fit(&record[5]);
        amount.fit(&record[6]);
    }
    let date = |s: &str| -> PyResult<Bound<'py, PyAny>> {
        let d = NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map_err(|_| usage(py, format!("the CSV export has a period date {s:?}")))?;
        types.date(d)
    };
    let decimal = |s: &str| -> PyResult<Bound<'py, PyAny>> {
        if s.is_empty() {
            Ok(py.None().into_bound(py))
        } else {
            types.decimal(s)
        }
    };
    let string = pyarrow.call_method0("string")?;
    let date32 = pyarrow.call_method0("date32")?;
    let arrays = PyList::empty(py);
    let fields = PyList::empty(py);
    for (n, (name, values)) in COLUMNS.iter().zip(&text).enumerate() {
        let (dtype, items) = match n {
            1 | 2 => (
                date32.clone(),
                values
                    .iter()
                    .map(|s| date(s))
                    .collect::<PyResult<Vec<_>>>()?,
            ),
            5 | 6 => (
                if n == 5 { &quantity } else { &amount }.arrow_type(&pyarrow)?,
                values
                    .iter()
                    .map(|s| decimal(s))
                    .collect::<PyResult<Vec<_>>>()?,
            ),
            _ => (
                string.clone(),
                values
                    .iter()
                    .map(|s| Ok(s.into_pyobject(py)?.into_any()))
                    .collect::<PyResult<Vec<_>>>()?,
            ),
        };
        let nullable = n == 5;
        arrays.append(pyarrow.call_method1("array", (items, &dtype))?)?;
        fields.append(pyarrow.call_method1("field", (*name, dtype, nullable))?)?;
    }
    let schema = pyarrow.call_method1("schema", (fields,))?;
    let kwargs = pyo3::types::PyDict::new(py);
    kwargs.set_item("schema", schema)?;
    pyarrow
        .getattr("Table")?
        .call_method("from_arrays", (arrays,), Some(&kwargs))
}
