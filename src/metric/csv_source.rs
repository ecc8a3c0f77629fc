//! A CSV metric source.
//!
//! The whole file is read and checked when the source is opened — a
//! malformed row fails every contract that reads the file, whoever's row it
//! is — and kept in a [`MemorySource`] that answers the queries.
//!
//! Columns are found by header name. `series`, `timestamp` and `value` are
//! required; `id`, `recorded_at`, `customer` and `void` are optional; every
//! other column is a dimension. An empty cell of a dimension column is
//! kept as the dimension with an empty value: a filter compares exact
//! text (so `region = ""` matches it), and `unique_count` does not count
//! it.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use csv::ByteRecord;

use super::{Aggregate, MemorySource, MetricSource, Observation, Query, Reduced};
use crate::error::{Error, Result};
use crate::money::parse_decimal;
use crate::period::Stamp;

/// Metric data read from a CSV file.
///
/// # Example
/// ```
/// use outcome_billing::CsvSource;
///
/// let data = "series,timestamp,value,region\nlogins,2026-01-03,1,eu\n";
/// let source = CsvSource::from_reader("logins.csv", data.as_bytes())?;
/// assert_eq!(source.series_names(), vec!["logins"]);
///
/// let bad = "series,timestamp,value\nlogins,2026-01-03,1e3\n";
/// let error = CsvSource::from_reader("bad.csv", bad.as_bytes()).unwrap_err();
/// assert_eq!(error.location(), "bad.csv:2:3");
/// # Ok::<(), outcome_billing::Error>(())
/// ```
#[derive(Debug)]
pub struct CsvSource {
    memory: MemorySource,
}

/// Where each known column sits in the header (0-based).
struct Columns {
    series: usize,
    timestamp: usize,
    value: usize,
    id: Option<usize>,
    recorded_at: Option<usize>,
    customer: Option<usize>,
    void: Option<usize>,
    /// Dimension columns, sorted by name.
    dimensions: Vec<(String, usize)>,
    /// Fields in the header.
    width: usize,
}

impl CsvSource {
    /// Reads and checks the CSV file at `path`.
    ///
    /// # Errors
    /// An I/O error when the file cannot be read; a data error at
    /// `FILE:LINE:COLUMN` for a missing required column or a malformed row.
    pub fn open(path: impl AsRef<Path>) -> Result<CsvSource> {
        let name = path.as_ref().display().to_string();
        let file = File::open(path.as_ref()).map_err(|e| io_error(&name, &e))?;
        CsvSource::from_reader(&name, file)
    }

    /// Reads and checks CSV data from `reader`, calling it `name` in
    /// messages.
    ///
    /// # Errors
    /// As [`CsvSource::open`].
    pub fn from_reader(name: &str, reader: impl Read) -> Result<CsvSource> {
        let reader = skip_bom(name, reader)?;
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(reader);
        let mut record = ByteRecord::new();
        if !read(name, &mut csv, &mut record)? {
            return Err(Error::data(
                format!("{name}:1:1"),
                "the file is empty: expected a header with columns series, timestamp and value",
            ));
        }
        let columns = header(name, &record)?;
        let mut memory = MemorySource::new().with_name(name);
        for (dimension, _) in &columns.dimensions {
            memory.declare_dimension(dimension);
        }
        while read(name, &mut csv, &mut record)? {
            memory.push(row(name, &columns, &record)?);
        }
        memory.build_indexes();
        Ok(CsvSource { memory })
    }

    /// The number of rows read (every version counts).
    pub fn len(&self) -> usize {
        self.memory.len()
    }

    /// Whether the file has no data row.
    pub fn is_empty(&self) -> bool {
        self.memory.is_empty()
    }

    /// The series names in the file, sorted.
    pub fn series_names(&self) -> Vec<&str> {
        self.memory.series_names()
    }
}

impl MetricSource for CsvSource {
    fn scan(&self, query: &Query<'_>, visit: &mut dyn FnMut(&Observation) -> Result<()>) -> Result<()> {
        self.memory.scan(query, visit)
    }

    fn aggregate(&self, query: &Query<'_>, aggregate: Aggregate, of: Option<&str>) -> Result<Reduced> {
        self.memory.aggregate(query, aggregate, of)
    }

    fn name(&self) -> &str {
        self.memory.name()
    }
}

/// An I/O error on `name`, worded in lowercase like every message.
fn io_error(name: &str, error: &io::Error) -> Error {
    let message = error.to_string();
    let mut chars = message.chars();
    let message = match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => message,
    };
    Error::Io {
        path: name.to_owned(),
        message,
    }
}

/// `reader` without a leading UTF-8 byte order mark.
fn skip_bom<R: Read>(name: &str, mut reader: R) -> Result<io::Chain<io::Cursor<Vec<u8>>, R>> {
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    let mut head = [0u8; 3];
    let mut filled = 0;
    while filled < head.len() {
        match reader.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error(name, &e)),
        }
    }
    let kept = if &head[..filled] == BOM { Vec::new() } else { head[..filled].to_vec() };
    Ok(io::Cursor::new(kept).chain(reader))
}

/// Reads the next record into `record`; false at the end of the data.
fn read<R: Read>(name: &str, csv: &mut csv::Reader<R>, record: &mut ByteRecord) -> Result<bool> {
    csv.read_byte_record(record).map_err(|e| {
        let line = e.position().map_or(0, |p| p.line());
        match e.into_kind() {
            csv::ErrorKind::Io(io) => io_error(name, &io),
            other => Error::data(format!("{name}:{line}:1"), format!("unreadable CSV: {other:?}")),
        }
    })
}

/// The line a record starts on (1-based).
fn line_of(record: &ByteRecord) -> u64 {
    record.position().map_or(0, |p| p.line())
}

/// Field `i` of `record` as text.
fn field<'r>(name: &str, record: &'r ByteRecord, i: usize) -> Result<&'r str> {
    // Callers only ask for fields below the record's checked width.
    let bytes = record.get(i).unwrap_or_default();
    std::str::from_utf8(bytes).map_err(|_| {
        Error::data(
            format!("{name}:{}:{}", line_of(record), i + 1),
            format!("invalid UTF-8 in {:?}", String::from_utf8_lossy(bytes)),
        )
    })
}

fn header(name: &str, record: &ByteRecord) -> Result<Columns> {
    let line = line_of(record);
    const KNOWN: [&str; 7] = ["series", "timestamp", "value", "id", "recorded_at", "customer", "void"];
    let mut found: [Option<usize>; 7] = [None; 7];
    let mut dimensions: Vec<(String, usize)> = Vec::new();
    for i in 0..record.len() {
        let column = field(name, record, i)?;
        let at = || format!("{name}:{line}:{}", i + 1);
        if column.is_empty() {
            return Err(Error::data(at(), "empty column name"));
        }
        let seen_before = KNOWN.iter().zip(found.iter()).any(|(k, f)| *k == column && f.is_some())
            || dimensions.iter().any(|(d, _)| d == column);
        if seen_before {
            return Err(Error::data(at(), format!("column {column:?} appears twice")));
        }
        match KNOWN.iter().position(|k| *k == column) {
            Some(k) => found[k] = Some(i),
            None => dimensions.push((column.to_owned(), i)),
        }
    }
    for (k, required) in KNOWN.iter().take(3).enumerate() {
        if found[k].is_none() {
            return Err(Error::data(format!("{name}:{line}:1"), format!("missing required column {required}")));
        }
    }
    dimensions.sort();
    Ok(Columns {
        // The three required columns were checked just above.
        series: found[0].unwrap_or_default(),
        timestamp: found[1].unwrap_or_default(),
        value: found[2].unwrap_or_default(),
        id: found[3],
        recorded_at: found[4],
        customer: found[5],
        void: found[6],
        dimensions,
        width: record.len(),
    })
}

fn row(name: &str, columns: &Columns, record: &ByteRecord) -> Result<Observation> {
    let line = line_of(record);
    let at = |i: usize| format!("{name}:{line}:{}", i + 1);
    if record.len() != columns.width {
        let (what, first) = if record.len() < columns.width {
            ("missing", record.len())
        } else {
            ("extra", columns.width)
        };
        return Err(Error::data(
            at(first),
            format!(
                "the row has {} fields where the header has {}: field {} is {what}",
                record.len(),
                columns.width,
                first + 1
            ),
        ));
    }
    let text = |i: usize| field(name, record, i);
    let optional = |i: Option<usize>| -> Result<Option<&str>> {
        match i {
            Some(i) => text(i).map(|t| (!t.is_empty()).then_some(t)),
            None => Ok(None),
        }
    };

    let series = text(columns.series)?;
    if series.is_empty() {
        return Err(Error::data(at(columns.series), "empty series: every row needs one"));
    }
    let timestamp = Stamp::parse(text(columns.timestamp)?).map_err(|m| Error::data(at(columns.timestamp), m))?;
    let value = parse_decimal(text(columns.value)?).map_err(|m| Error::data(at(columns.value), m))?;
    let id = optional(columns.id)?.map(str::to_owned);
    let recorded_at = match optional(columns.recorded_at)? {
        Some(t) => Some(Stamp::parse(t).map_err(|m| Error::data(at(columns.recorded_at.unwrap_or_default()), m))?),
        None => None,
    };
    let customer = optional(columns.customer)?.map(str::to_owned);
    let void = match optional(columns.void)? {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(Error::data(
                at(columns.void.unwrap_or_default()),
                format!("malformed void {other:?}: expected true, false or empty"),
            ));
        }
    };
    let mut dimensions = Vec::with_capacity(columns.dimensions.len());
    for (dimension, i) in &columns.dimensions {
        dimensions.push((dimension.clone(), text(*i)?.to_owned()));
    }
    Ok(Observation {
        series: series.to_owned(),
        timestamp,
        value,
        id,
        recorded_at,
        customer,
        void,
        dimensions,
        origin: Some(format!("{name}:{line}")),
    })
}
