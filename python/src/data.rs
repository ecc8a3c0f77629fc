//! Metric data given from Python, turned into the CSV text the library
//! reads: an iterable of row dicts, a pyarrow `Table` or `RecordBatch` (or
//! any object with `__arrow_c_stream__`, read through pyarrow), or a pandas
//! `DataFrame`. The CSV reader then checks every cell exactly as it checks
//! a file, so a malformed value is reported at `rows:LINE:COLUMN` (the
//! first row at line 2) whichever shape the data came in.
//!
//! No value passes through a float: float cells and float columns are
//! refused with a message saying what to give instead.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PySlice, PyString};

use crate::{Types, usage};

/// The name metric data given as Python objects goes by in messages.
pub(crate) const ROWS_NAME: &str = "rows";

/// Metric data as CSV text, header first.
pub(crate) fn metric_csv(data: &Bound<'_, PyAny>) -> PyResult<String> {
    let (columns, records) = if is_pandas(data)? {
        pandas_cells(data)?
    } else if let Some(table) = arrow_table(data)? {
        arrow_cells(&table)?
    } else {
        row_cells(data)?
    };
    if columns.is_empty() && records.is_empty() {
        // No rows at all (an empty list): no observation, not a file
        // without a header.
        return Ok(format!("{}\n", REQUIRED.join(",")));
    }
    write_csv(data.py(), &columns, &records)
}

/// The columns every metric CSV has.
const REQUIRED: [&str; 3] = ["series", "timestamp", "value"];

/// The module the object's type is defined in (`pandas.core.frame`, ...).
fn type_module(data: &Bound<'_, PyAny>) -> PyResult<String> {
    data.get_type().getattr("__module__")?.extract()
}

/// Whether `data` is a pandas DataFrame. Checked by its type's module, so
/// pandas is never imported here.
fn is_pandas(data: &Bound<'_, PyAny>) -> PyResult<bool> {
    Ok(type_module(data)?.starts_with("pandas.") && data.get_type().name()? == "DataFrame")
}

/// `data` as a pyarrow Table or RecordBatch, if it is one or exports an
/// Arrow stream; None for anything else.
fn arrow_table<'py>(data: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyAny>>> {
    let name = data.get_type().name()?;
    if type_module(data)?.starts_with("pyarrow") && (name == "Table" || name == "RecordBatch") {
        return Ok(Some(data.clone()));
    }
    if !data.hasattr("__arrow_c_stream__")? {
        return Ok(None);
    }
    let py = data.py();
    let pyarrow = py.import("pyarrow").map_err(|_| {
        usage(
            py,
            format!("{ROWS_NAME}: reading a {name}, an Arrow stream, needs pyarrow installed"),
        )
    })?;
    pyarrow.call_method1("table", (data,)).map(Some)
}

/// A message for a column of floats.
fn float_column(column: &str, dtype: &str) -> String {
    format!(
        "{ROWS_NAME}: column {column:?} holds floats ({dtype}), which cannot hold decimal \
         amounts exactly: give strings, integers or decimals"
    )
}

/// Column names and cells of a pyarrow Table or RecordBatch, converted a
/// column at a time.
fn arrow_cells(table: &Bound<'_, PyAny>) -> PyResult<(Vec<String>, Vec<Vec<String>>)> {
    let py = table.py();
    let is_floating = py.import("pyarrow.types")?.getattr("is_floating")?;
    let schema = table.getattr("schema")?;
    let rows: usize = table.getattr("num_rows")?.extract()?;
    let mut columns = Vec::new();
    let mut records = vec![Vec::new(); rows];
    for (i, field) in schema.try_iter()?.enumerate() {
        let field = field?;
        let name: String = field.getattr("name")?.extract()?;
        let dtype = field.getattr("type")?;
        if is_floating.call1((&dtype,))?.is_truthy()? {
            return Err(usage(py, float_column(&name, &dtype.str()?.to_string())));
        }
        let values = table
            .call_method1("column", (i,))?
            .call_method0("to_pylist")?;
        push_column(&name, &values, &mut records)?;
        columns.push(name);
    }
    Ok((columns, records))
}

/// Column names and cells of a pandas DataFrame, converted a column at a
/// time; a missing value (`None`, `NaN`, `NaT`, `pd.NA`) is an empty cell.
fn pandas_cells(frame: &Bound<'_, PyAny>) -> PyResult<(Vec<String>, Vec<Vec<String>>)> {
    let py = frame.py();
    let names = frame
        .getattr("columns")?
        .try_iter()?
        .collect::<PyResult<Vec<_>>>()?;
    let rows: usize = frame.len()?;
    let iloc = frame.getattr("iloc")?;
    let mut columns = Vec::with_capacity(names.len());
    let mut records = vec![Vec::with_capacity(names.len()); rows];
    for (i, name) in names.iter().enumerate() {
        let name: String = name.extract().map_err(|_| {
            usage(
                py,
                format!(
                    "{ROWS_NAME}: column names must be str, not {}",
                    type_name(name)
                ),
            )
        })?;
        // By position: a name held by two columns would give a DataFrame.
        let series = iloc.get_item((PySlice::full(py), i))?;
        let dtype = series.getattr("dtype")?;
        let present = series.call_method0("notna")?;
        // A float column of missing values only (pandas' type for a column
        // of None and NaN) holds no float to refuse.
        if dtype.getattr("kind")?.extract::<String>()? == "f"
            && present.call_method0("any")?.is_truthy()?
        {
            return Err(usage(py, float_column(&name, &dtype.str()?.to_string())));
        }
        let values = series
            .call_method1("astype", ("object",))?
            .call_method1("where", (present, py.None()))?
            .call_method0("tolist")?;
        push_column(&name, &values, &mut records)?;
        columns.push(name);
    }
    Ok((columns, records))
}

/// The name of `value`'s type, for messages.
fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default()
}

/// Appends one column's values (a Python list, one per row) to `records`.
fn push_column(name: &str, values: &Bound<'_, PyAny>, records: &mut [Vec<String>]) -> PyResult<()> {
    let py = values.py();
    for (n, value) in values.try_iter()?.enumerate() {
        let value = value?;
        let text = cell_text(&value)
            .map_err(|why| usage(py, format!("{ROWS_NAME}[{n}].{name}: {why}")))?;
        match records.get_mut(n) {
            Some(record) => record.push(text),
            None => {
                return Err(usage(
                    py,
                    format!("{ROWS_NAME}: column {name:?} is longer than the table"),
                ));
            }
        }
    }
    Ok(())
}

/// Column names, in the order first met, and cells of an iterable of row
/// dicts; a row without a column leaves it empty.
fn row_cells(rows: &Bound<'_, PyAny>) -> PyResult<(Vec<String>, Vec<Vec<String>>)> {
    let py = rows.py();
    let mut columns: Vec<String> = Vec::new();
    let mut records: Vec<Vec<String>> = Vec::new();
    for (n, row) in rows.try_iter()?.enumerate() {
        let row = row?;
        let row = row.cast::<PyDict>().map_err(|_| {
            usage(
                py,
                format!("{ROWS_NAME}[{n}]: expected a dict of column to value"),
            )
        })?;
        let mut record = vec![String::new(); columns.len()];
        for (key, value) in row.iter() {
            let key: String = key
                .extract()
                .map_err(|_| usage(py, format!("{ROWS_NAME}[{n}]: column names must be str")))?;
            let text = cell_text(&value)
                .map_err(|why| usage(py, format!("{ROWS_NAME}[{n}].{key}: {why}")))?;
            let k = match columns.iter().position(|c| *c == key) {
                Some(k) => k,
                None => {
                    columns.push(key);
                    record.push(String::new());
                    columns.len() - 1
                }
            };
            record[k] = text;
        }
        records.push(record);
    }
    Ok((columns, records))
}

/// The header and records as CSV text; records shorter than the header
/// (rows met before a column first appeared) end in empty cells.
fn write_csv(py: Python<'_>, columns: &[String], records: &[Vec<String>]) -> PyResult<String> {
    let mut writer = csv::WriterBuilder::new().from_writer(Vec::new());
    let fail = |e: csv::Error| usage(py, format!("{ROWS_NAME}: {e}"));
    writer.write_record(columns).map_err(fail)?;
    let mut line: Vec<&str> = Vec::with_capacity(columns.len());
    for record in records {
        line.clear();
        line.extend(record.iter().map(String::as_str));
        line.resize(columns.len(), "");
        writer.write_record(&line).map_err(fail)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| usage(py, format!("{ROWS_NAME}: {e}")))?;
    String::from_utf8(bytes).map_err(|e| usage(py, format!("{ROWS_NAME}: {e}")))
}

/// One cell of metric data as CSV text, or why it cannot be one.
pub(crate) fn cell_text(value: &Bound<'_, PyAny>) -> Result<String, String> {
    if value.is_none() {
        return Ok(String::new());
    }
    // Before `int`: `bool` is a subclass of it.
    if let Ok(b) = value.cast::<PyBool>() {
        return Ok(if b.is_true() { "true" } else { "false" }.to_owned());
    }
    if value.cast::<PyFloat>().is_ok() {
        return Err(format!(
            "{} is a float, which cannot hold decimal amounts exactly: \
             give a str, an int or a decimal.Decimal",
            value.repr().map_err(|e| e.to_string())?
        ));
    }
    let is_text_like = value.cast::<PyString>().is_ok() || value.cast::<PyInt>().is_ok();
    let py = value.py();
    let is_decimal = Types::get(py)
        .and_then(|t| value.is_instance(&t.decimal))
        .map_err(|e| e.to_string())?;
    let is_temporal = value.hasattr("isoformat").map_err(|e| e.to_string())?;
    if is_decimal {
        // Positional notation: the CSV reader takes no exponents (`1E+3`).
        value
            .call_method1("__format__", ("f",))
            .and_then(|s| s.extract())
            .map_err(|e| e.to_string())
    } else if is_text_like {
        value
            .str()
            .and_then(|s| s.extract())
            .map_err(|e| e.to_string())
    } else if is_temporal {
        value
            .call_method0("isoformat")
            .and_then(|s| s.extract())
            .map_err(|e| e.to_string())
    } else {
        let name = type_name(value);
        Err(format!(
            "a {name} is not a metric value: give a str, an int, a decimal.Decimal, a bool, \
             a date or datetime, or None"
        ))
    }
}
