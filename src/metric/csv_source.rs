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

use std::collections::VecDeque;
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
/// use outcome_billing::metric::CsvSource;
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
pub(crate) struct Columns {
    pub series: usize,
    pub timestamp: usize,
    pub value: usize,
    pub id: Option<usize>,
    pub recorded_at: Option<usize>,
    pub customer: Option<usize>,
    pub void: Option<usize>,
    /// Dimension columns, sorted by name.
    pub dimensions: Vec<(String, usize)>,
    /// Fields in the header.
    pub width: usize,
}

impl CsvSource {
    /// Reads and checks the CSV file at `path`.
    ///
    /// # Errors
    /// An I/O error when the file cannot be read; a data error at
    /// `FILE:LINE:COLUMN` for a missing required column or a malformed row.
    pub fn open(path: impl AsRef<Path>) -> Result<CsvSource> {
        CsvSource::from_rows(CsvRows::open(path.as_ref())?)
    }

    /// Reads and checks CSV data from `reader`, calling it `name` in
    /// messages.
    ///
    /// # Errors
    /// As [`CsvSource::open`].
    pub fn from_reader(name: &str, reader: impl Read) -> Result<CsvSource> {
        CsvSource::from_rows(CsvRows::from_reader(name, reader)?)
    }

    fn from_rows<R: Read>(mut rows: CsvRows<R>) -> Result<CsvSource> {
        let mut memory = MemorySource::new().with_name(rows.name());
        for dimension in rows.dimensions() {
            memory.declare_dimension(dimension);
        }
        while let Some(obs) = rows.next_row()? {
            memory.push(obs);
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
    fn scan(
        &self,
        query: &Query<'_>,
        visit: &mut dyn FnMut(&Observation) -> Result<()>,
    ) -> Result<()> {
        self.memory.scan(query, visit)
    }

    fn aggregate(
        &self,
        query: &Query<'_>,
        aggregate: Aggregate,
        of: Option<&str>,
    ) -> Result<Reduced> {
        self.memory.aggregate(query, aggregate, of)
    }

    fn name(&self) -> &str {
        self.memory.name()
    }

    fn has_dimension(&self, name: &str) -> Result<bool> {
        self.memory.has_dimension(name)
    }

    fn groups(
        &self,
        query: &Query<'_>,
        dimension: &str,
        groups: &mut std::collections::BTreeSet<String>,
    ) -> Result<()> {
        self.memory.groups(query, dimension, groups)
    }

    fn scan_group(
        &self,
        query: &Query<'_>,
        group: super::Group<'_>,
        visit: &mut dyn FnMut(&Observation) -> Result<()>,
    ) -> Result<()> {
        self.memory.scan_group(query, group, visit)
    }

    fn aggregate_group(
        &self,
        query: &Query<'_>,
        group: super::Group<'_>,
        aggregate: Aggregate,
        of: Option<&str>,
    ) -> Result<Reduced> {
        self.memory.aggregate_group(query, group, aggregate, of)
    }

    fn check_versions(
        &self,
        customer: &str,
        timezone: chrono_tz::Tz,
        as_of: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<()> {
        self.memory.check_versions(customer, timezone, as_of)
    }
}

/// A metric CSV read one checked row at a time, for every reader of the
/// format (the CSV source, imports into a store), so all of them apply the
/// same rules and name the same `FILE:LINE:COLUMN`.
/// `R` without its byte order mark: the bytes read to look for one, put
/// back when they were not one, then the rest.
pub(crate) type Unmarked<R> = io::Chain<io::Cursor<Vec<u8>>, R>;

/// A reader of metric CSV positioned after its header: what every reader
/// of the format starts from.
pub(crate) struct Header<R> {
    /// The reader, after the header; its offsets count from after the byte
    /// order mark, if any.
    pub csv: csv::Reader<LineCounter<Unmarked<R>>>,
    pub record: ByteRecord,
    pub columns: Columns,
    /// The length of the byte order mark skipped (0 or 3).
    pub bom: u64,
}

/// Skips a byte order mark, then reads and checks the header of CSV data
/// from `reader`, called `name` in messages.
pub(crate) fn read_header<R: Read>(name: &str, reader: R) -> Result<Header<R>> {
    let (reader, bom) = skip_bom(name, reader)?;
    let mut csv = csv_reader(reader);
    let mut record = ByteRecord::new();
    let Some(line) = read(name, &mut csv, &mut record)? else {
        return Err(Error::data(
            format!("{name}:1:1"),
            "the file is empty: expected a header with columns series, timestamp and value",
        ));
    };
    let columns = header(name, line, &record)?;
    Ok(Header {
        csv,
        record,
        columns,
        bom,
    })
}

pub(crate) struct CsvRows<R> {
    name: String,
    csv: csv::Reader<LineCounter<Unmarked<R>>>,
    record: ByteRecord,
    columns: Columns,
}

impl CsvRows<File> {
    /// Opens the CSV file at `path` and reads its header; the file is
    /// named by `path` as displayed.
    pub(crate) fn open(path: &Path) -> Result<CsvRows<File>> {
        let name = path.display().to_string();
        let file = File::open(path).map_err(|e| io_error(&name, &e))?;
        CsvRows::from_reader(&name, file)
    }
}

impl<R: Read> CsvRows<R> {
    /// Reads the header of CSV data from `reader`, called `name` in
    /// messages.
    pub(crate) fn from_reader(name: &str, reader: R) -> Result<CsvRows<R>> {
        let Header {
            csv,
            record,
            columns,
            ..
        } = read_header(name, reader)?;
        Ok(CsvRows {
            name: name.to_owned(),
            csv,
            record,
            columns,
        })
    }

    /// The name used in messages and origins.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The dimension columns of the header, sorted by name.
    pub(crate) fn dimensions(&self) -> impl Iterator<Item = &str> {
        self.columns.dimensions.iter().map(|(d, _)| d.as_str())
    }

    /// The next row, checked, or none at the end of the data.
    pub(crate) fn next_row(&mut self) -> Result<Option<Observation>> {
        match read(&self.name, &mut self.csv, &mut self.record)? {
            Some(line) => row(&self.name, line, &self.columns, &self.record).map(Some),
            None => Ok(None),
        }
    }
}

/// A CSV reader of the format's rules (no header row of its own, any
/// width, so that a row of the wrong width is our error), counting lines.
pub(crate) fn csv_reader<R: Read>(input: R) -> csv::Reader<LineCounter<R>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(1 << 16)
        .from_reader(LineCounter::new(input))
}

/// An I/O error on `name`, worded in lowercase like every message.
pub(crate) fn io_error(name: &str, error: &io::Error) -> Error {
    let message = error.to_string();
    let mut chars = message.chars();
    let message = match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => message,
    };
    Error::io(name, io::Error::new(error.kind(), error.to_string())).with_message(message)
}

/// `reader` without a leading UTF-8 byte order mark.
fn skip_bom<R: Read>(name: &str, mut reader: R) -> Result<(Unmarked<R>, u64)> {
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
    let (kept, skipped) = if &head[..filled] == BOM {
        (Vec::new(), BOM.len() as u64)
    } else {
        (head[..filled].to_vec(), 0)
    };
    Ok((io::Cursor::new(kept).chain(reader), skipped))
}

/// Reads the next record into `record`; the line it starts on, or none at
/// the end of the data.
pub(crate) fn read<R: Read>(
    name: &str,
    csv: &mut csv::Reader<LineCounter<R>>,
    record: &mut ByteRecord,
) -> Result<Option<u64>> {
    let more = csv.read_byte_record(record).map_err(|e| {
        let line = e.position().map_or(0, |p| p.line());
        match e.into_kind() {
            csv::ErrorKind::Io(io) => io_error(name, &io),
            other => Error::data(
                format!("{name}:{line}:1"),
                format!("unreadable CSV: {other:?}"),
            ),
        }
    })?;
    if !more {
        return Ok(None);
    }
    let end = csv.position().byte();
    Ok(Some(csv.get_mut().first_line(end, record)))
}

/// A reader that remembers where line feeds are, so a record's line can be
/// told exactly. (The csv crate's own line count misses line feeds inside
/// quoted fields.) Lines are counted by line feeds, so CRLF and LF files
/// are numbered right.
pub(crate) struct LineCounter<R> {
    inner: R,
    /// Bytes read so far.
    offset: u64,
    /// Offsets of line feeds read but not yet passed by a record.
    pending: VecDeque<u64>,
    /// Line feeds passed by records.
    passed: u64,
    /// Offset of the last line feed passed.
    last_passed: Option<u64>,
}

impl<R: Read> Read for LineCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let offset = self.offset;
        self.pending
            .extend(memchr::memchr_iter(b'\n', &buf[..n]).map(|i| offset + i as u64));
        self.offset += n as u64;
        Ok(n)
    }
}

impl<R> LineCounter<R> {
    pub(crate) fn new(inner: R) -> LineCounter<R> {
        LineCounter {
            inner,
            offset: 0,
            pending: VecDeque::new(),
            passed: 0,
            last_passed: None,
        }
    }

    /// The bytes read from the inner reader so far.
    pub(crate) fn bytes_read(&self) -> u64 {
        self.offset
    }

    /// Whether the byte at `at`, read already and not passed, is a line
    /// feed.
    pub(crate) fn is_line_feed(&self, at: u64) -> bool {
        self.pending.iter().any(|&p| p == at)
    }

    /// The number of line feeds before byte `end`; `end` never goes back.
    pub(crate) fn lines_before(&mut self, end: u64) -> u64 {
        while let Some(&at) = self.pending.front() {
            if at >= end {
                break;
            }
            self.passed += 1;
            self.last_passed = Some(at);
            self.pending.pop_front();
        }
        self.passed
    }

    /// The line on which `record`, which ends at byte `end` (after its
    /// terminator, or the first byte of a CRLF terminator), begins: the
    /// line of its last byte, less the line feeds inside its fields.
    pub(crate) fn first_line(&mut self, end: u64, record: &ByteRecord) -> u64 {
        self.lines_before(end);
        let terminator = u64::from(end > 0 && self.last_passed == Some(end - 1));
        let inside = memchr::memchr_iter(b'\n', record.as_slice()).count() as u64;
        (1 + self.passed)
            .saturating_sub(terminator)
            .saturating_sub(inside)
    }
}

/// Field `i` of `record`, which begins on `line`, as text.
fn field<'r>(name: &str, line: u64, record: &'r ByteRecord, i: usize) -> Result<&'r str> {
    // Callers only ask for fields below the record's checked width.
    let bytes = record.get(i).unwrap_or_default();
    std::str::from_utf8(bytes).map_err(|_| {
        Error::data(
            format!("{name}:{line}:{}", i + 1),
            format!("invalid UTF-8 in {:?}", String::from_utf8_lossy(bytes)),
        )
    })
}

/// The columns of the metric data that are not dimensions, in the order a
/// header's columns are looked up: the first three are required.
pub(crate) const COLUMNS: [&str; 7] = [
    "series",
    "timestamp",
    "value",
    "id",
    "recorded_at",
    "customer",
    "void",
];

pub(crate) fn header(name: &str, line: u64, record: &ByteRecord) -> Result<Columns> {
    let mut found: [Option<usize>; 7] = [None; 7];
    let mut dimensions: Vec<(String, usize)> = Vec::new();
    for i in 0..record.len() {
        let column = field(name, line, record, i)?;
        let at = || format!("{name}:{line}:{}", i + 1);
        if column.is_empty() {
            return Err(Error::data(at(), "empty column name"));
        }
        let seen_before = COLUMNS
            .iter()
            .zip(found.iter())
            .any(|(k, f)| *k == column && f.is_some())
            || dimensions.iter().any(|(d, _)| d == column);
        if seen_before {
            return Err(Error::data(
                at(),
                format!("column {column:?} appears twice"),
            ));
        }
        match COLUMNS.iter().position(|k| *k == column) {
            Some(k) => found[k] = Some(i),
            None => dimensions.push((column.to_owned(), i)),
        }
    }
    for (k, required) in COLUMNS.iter().take(3).enumerate() {
        if found[k].is_none() {
            return Err(Error::data(
                format!("{name}:{line}:1"),
                format!("missing required column {required}"),
            ));
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

/// A checked row, borrowing its text from the record: every reader of the
/// format builds on it, so all apply the same rules and messages.
pub(crate) struct RowRef<'r> {
    pub series: &'r str,
    pub timestamp: Stamp,
    pub value: rust_decimal::Decimal,
    pub id: Option<&'r str>,
    pub recorded_at: Option<Stamp>,
    /// Empty when the row has no customer.
    pub customer: &'r str,
    pub void: bool,
}

/// Checks the record at `line` against the header and reads its known
/// columns; dimensions are read with [`dimension_values`].
pub(crate) fn parse_row<'r>(
    name: &str,
    line: u64,
    columns: &Columns,
    record: &'r ByteRecord,
) -> Result<RowRef<'r>> {
    parse_fields(name, line, columns, record.len(), |i| {
        field(name, line, record, i)
    })
}

/// As [`parse_row`], for a record already known to be UTF-8 (each field
/// checked once, by the csv crate, without a second pass per field).
pub(crate) fn parse_text_row<'r>(
    name: &str,
    line: u64,
    columns: &Columns,
    record: &'r csv::StringRecord,
) -> Result<RowRef<'r>> {
    parse_fields(name, line, columns, record.len(), |i| {
        Ok(record.get(i).unwrap_or_default())
    })
}

/// The checks of a row, reading field `i` as text with `text`.
fn parse_fields<'r>(
    name: &str,
    line: u64,
    columns: &Columns,
    width: usize,
    text: impl Fn(usize) -> Result<&'r str>,
) -> Result<RowRef<'r>> {
    let at = |i: usize| format!("{name}:{line}:{}", i + 1);
    if width != columns.width {
        let (what, first) = if width < columns.width {
            ("missing", width)
        } else {
            ("extra", columns.width)
        };
        return Err(Error::data(
            at(first),
            format!(
                "the row has {width} fields where the header has {}: field {} is {what}",
                columns.width,
                first + 1
            ),
        ));
    }
    let optional = |i: Option<usize>| -> Result<Option<&'r str>> {
        match i {
            Some(i) => text(i).map(|t| (!t.is_empty()).then_some(t)),
            None => Ok(None),
        }
    };

    let series = text(columns.series)?;
    if series.is_empty() {
        return Err(Error::data(
            at(columns.series),
            "empty series: every row needs one",
        ));
    }
    let timestamp = Stamp::parse(text(columns.timestamp)?)
        .map_err(|m| Error::data(at(columns.timestamp), m))?;
    let value =
        parse_decimal(text(columns.value)?).map_err(|m| Error::data(at(columns.value), m))?;
    let id = optional(columns.id)?;
    let recorded_at = match optional(columns.recorded_at)? {
        Some(t) => Some(
            Stamp::parse(t)
                .map_err(|m| Error::data(at(columns.recorded_at.unwrap_or_default()), m))?,
        ),
        None => None,
    };
    let customer = optional(columns.customer)?.unwrap_or("");
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
    for (_, i) in &columns.dimensions {
        text(*i)?;
    }
    Ok(RowRef {
        series,
        timestamp,
        value,
        id,
        recorded_at,
        customer,
        void,
    })
}

/// The row's dimension values, in the header's dimension order (by name).
/// The row has been checked by [`parse_row`], so every field is UTF-8.
pub(crate) fn dimension_values<'r>(
    columns: &'r Columns,
    record: &'r ByteRecord,
) -> impl Iterator<Item = (&'r str, &'r str)> + 'r {
    columns.dimensions.iter().map(|(dimension, i)| {
        let bytes = record.get(*i).unwrap_or_default();
        (
            dimension.as_str(),
            std::str::from_utf8(bytes).unwrap_or_default(),
        )
    })
}

fn row(name: &str, line: u64, columns: &Columns, record: &ByteRecord) -> Result<Observation> {
    let r = parse_row(name, line, columns, record)?;
    Ok(Observation {
        series: r.series.to_owned(),
        timestamp: r.timestamp,
        value: r.value,
        id: r.id.map(str::to_owned),
        recorded_at: r.recorded_at,
        customer: (!r.customer.is_empty()).then(|| r.customer.to_owned()),
        void: r.void,
        dimensions: dimension_values(columns, record)
            .map(|(d, v)| (d.to_owned(), v.to_owned()))
            .collect(),
        origin: Some(format!("{name}:{line}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Location;
    use chrono::{DateTime, NaiveDate, TimeZone, Utc};
    use chrono_tz::Tz;
    use rust_decimal::Decimal;
    use std::str::FromStr;

    const EXAMPLE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/support-agent/metrics.csv"
    );

    fn utc(m: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, m, d, h, 0, 0).unwrap()
    }

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    /// The local month `m` of 2026 in `tz`, for `customer` and `series`.
    fn month<'a>(customer: &'a str, series: &'a str, m: u32, tz: Tz) -> Query<'a> {
        let day = |m| NaiveDate::from_ymd_opt(2026, m, 1).unwrap();
        Query {
            customer,
            series,
            start: crate::period::local_midnight(day(m), tz),
            end: crate::period::local_midnight(day(m + 1), tz),
            timezone: tz,
            filter: &[],
            as_of: None,
        }
    }

    fn reduce_to(source: &CsvSource, query: &Query<'_>, aggregate: Aggregate) -> Option<Decimal> {
        source.aggregate(query, aggregate, None).unwrap().value
    }

    fn error(data: &str) -> Error {
        CsvSource::from_reader("m.csv", data.as_bytes()).unwrap_err()
    }

    #[test]
    fn the_example_file_settles_as_the_spec_says() {
        // Proves the example file: sums per customer, corrections, voids and shared rows.
        let source = CsvSource::open(EXAMPLE).unwrap();
        assert_eq!(source.name(), EXAMPLE);
        assert_eq!(
            source.series_names(),
            [
                "conversations",
                "payment_amount",
                "resolved_conversations",
                "uptime_pct"
            ]
        );
        let utc_tz = chrono_tz::UTC;
        let pay = |m| month("shopco", "payment_amount", m, utc_tz);
        // Other customers' payments (otherco's 5000.00) are not shopco's.
        assert_eq!(
            reduce_to(&source, &pay(3), Aggregate::Sum),
            Some(dec("135.50"))
        );
        // pay-2001 is voided on Aug 27; known on Aug 21 it still counted.
        assert_eq!(
            reduce_to(&source, &pay(8), Aggregate::Sum),
            Some(dec("249.99"))
        );
        let aug_21 = Query {
            as_of: Some(utc(8, 21, 0)),
            ..pay(8)
        };
        assert_eq!(
            reduce_to(&source, &aug_21, Aggregate::Sum),
            Some(dec("559.99"))
        );
        // pay-2002 is voided on Oct 16 and restored on Oct 17.
        assert_eq!(
            reduce_to(&source, &pay(10), Aggregate::Sum),
            Some(dec("227.07"))
        );
        let oct_16 = Query {
            as_of: Some(utc(10, 16, 14)),
            ..pay(10)
        };
        assert_eq!(
            reduce_to(&source, &oct_16, Aggregate::Sum),
            Some(dec("163.07"))
        );
        // r-20260216 is corrected from 178 to 128.
        let resolved = month("shopco", "resolved_conversations", 2, utc_tz);
        assert_eq!(
            reduce_to(&source, &resolved, Aggregate::Sum),
            Some(dec("900"))
        );
        // Uptime rows without customer are everyone's; otherco's own row is only its.
        let uptime = |c| month(c, "uptime_pct", 7, utc_tz);
        assert_eq!(
            reduce_to(&source, &uptime("shopco"), Aggregate::Mean),
            Some(dec("99.9725"))
        );
        assert_eq!(
            reduce_to(&source, &uptime("otherco"), Aggregate::Min),
            Some(dec("12.5"))
        );
        // Rows remember where they came from.
        let mut origins = Vec::new();
        source
            .scan(&pay(3), &mut |o| {
                origins.push(o.origin.clone().unwrap());
                Ok(())
            })
            .unwrap();
        assert_eq!(origins, [format!("{EXAMPLE}:35"), format!("{EXAMPLE}:38")]);
    }

    #[test]
    fn a_correction_moves_pay_1013_into_new_york_june() {
        // Proves pay-1013's correction moves it from May to June in New York, and as_of undoes that.
        let source = CsvSource::open(EXAMPLE).unwrap();
        let ny: Tz = "America/New_York".parse().unwrap();
        let pay = |m| month("shopco", "payment_amount", m, ny);
        assert_eq!(reduce_to(&source, &pay(5), Aggregate::Sum), None);
        assert_eq!(
            reduce_to(&source, &pay(6), Aggregate::Sum),
            Some(dec("105.00"))
        );
        // Before the correction was recorded (09:00 New York), it was May's; pay-1012
        // (June 2) was not known yet either.
        let early = Some(utc(6, 1, 12));
        assert_eq!(
            reduce_to(
                &source,
                &Query {
                    as_of: early,
                    ..pay(5)
                },
                Aggregate::Sum
            ),
            Some(dec("75.00"))
        );
        assert_eq!(
            reduce_to(
                &source,
                &Query {
                    as_of: early,
                    ..pay(6)
                },
                Aggregate::Sum
            ),
            None
        );
    }

    #[test]
    fn malformed_rows_name_file_line_and_column() {
        // Proves each kind of malformed row is reported at FILE:LINE:COLUMN with the value quoted.
        let head = "series,timestamp,value,void,recorded_at,region\n";
        let ok = "s,2026-01-03,1,,,eu\n";
        let cases = [
            (
                "s,2026-01-03,1e3,,,eu\n",
                "m.csv:3:3",
                "malformed decimal \"1e3\"",
            ),
            (
                "s,2026-13-03,1,,,eu\n",
                "m.csv:3:2",
                "malformed time \"2026-13-03\"",
            ),
            (
                "s,2026-01-03,1,yes,,eu\n",
                "m.csv:3:4",
                "malformed void \"yes\": expected true, false or empty",
            ),
            (
                "s,2026-01-03,1,,03/01/2026,eu\n",
                "m.csv:3:5",
                "malformed time \"03/01/2026\"",
            ),
            (
                ",2026-01-03,1,,,eu\n",
                "m.csv:3:1",
                "empty series: every row needs one",
            ),
            (
                "s,2026-01-03,1\n",
                "m.csv:3:4",
                "the row has 3 fields where the header has 6: field 4 is missing",
            ),
            (
                "s,2026-01-03,1,,,eu,x\n",
                "m.csv:3:7",
                "the row has 7 fields where the header has 6: field 7 is extra",
            ),
            (
                "s,2026-01-03,,,,eu\n",
                "m.csv:3:3",
                "malformed decimal \"\"",
            ),
        ];
        for (bad, location, message) in cases {
            let e = error(&format!("{head}{ok}{bad}{ok}"));
            assert!(matches!(e.location(), Location::Data(_)), "{e}");
            assert_eq!(e.location(), location, "{bad}");
            assert!(e.message().starts_with(message), "{bad}: {}", e.message());
        }
    }

    #[test]
    fn the_header_needs_the_required_columns_once() {
        // Proves a missing, repeated or empty column name is an error in line 1.
        let e = error("series,timestamp,id\ns,2026-01-03,a\n");
        assert_eq!(
            (e.location().to_string().as_str(), e.message()),
            ("m.csv:1:1", "missing required column value")
        );
        let e = error("series,timestamp,value,region,region\n");
        assert_eq!(
            (e.location().to_string().as_str(), e.message()),
            ("m.csv:1:5", "column \"region\" appears twice")
        );
        let e = error("series,,timestamp,value\n");
        assert_eq!(
            (e.location().to_string().as_str(), e.message()),
            ("m.csv:1:2", "empty column name")
        );
        let e = error("");
        assert_eq!(e.location(), "m.csv:1:1");
    }

    #[test]
    fn bom_crlf_and_quoted_fields_are_read() {
        // Proves a byte order mark, CRLF endings and quoted fields (with commas, quotes and
        // newlines) are read, and lines after a multi-line field are counted right.
        let data = "\u{feff}\"series\",timestamp,value,note\r\n\
                    \"s\",2026-01-03,\"1.5\",\"a, \"\"quoted\"\" note\"\r\n\
                    s,2026-01-04,2,\"two\r\nlines\"\r\n\
                    s,2026-01-05,x,\r\n";
        let e = error(data);
        assert_eq!(e.location(), "m.csv:5:3");
        let good = data.rsplit_once("s,2026-01-05").unwrap().0;
        let source = CsvSource::from_reader("m.csv", good.as_bytes()).unwrap();
        assert_eq!(source.len(), 2);
        let q = Query {
            start: utc(1, 1, 0),
            end: utc(2, 1, 0),
            ..month("c", "s", 1, chrono_tz::UTC)
        };
        let mut notes = Vec::new();
        source
            .scan(&q, &mut |o| {
                notes.push(o.dimension("note").unwrap().to_owned());
                Ok(())
            })
            .unwrap();
        assert_eq!(notes, ["a, \"quoted\" note", "two\r\nlines"]);
        assert_eq!(reduce_to(&source, &q, Aggregate::Sum), Some(dec("3.5")));
    }

    #[test]
    fn line_numbers_count_blank_lines_and_line_feeds_in_fields() {
        // Proves reported lines are physical lines, with LF or CRLF endings.
        for eol in ["\n", "\r\n"] {
            let data = [
                "series,timestamp,value,note",
                "",
                "s,2026-01-03,1,\"a",
                "b",
                "\"",
                "",
                "",
                "s,2026-01-03,2,",
                "s,x,3,",
            ]
            .join(eol);
            let e = error(&data);
            assert_eq!(e.location(), "m.csv:9:2", "{eol:?}");
            let good = data.rsplit_once(eol).unwrap().0;
            let source = CsvSource::from_reader("m.csv", good.as_bytes()).unwrap();
            let q = month("c", "s", 1, chrono_tz::UTC);
            let mut origins = Vec::new();
            source
                .scan(&q, &mut |o| {
                    origins.push(o.origin.clone().unwrap());
                    Ok(())
                })
                .unwrap();
            assert_eq!(origins, ["m.csv:3", "m.csv:8"], "{eol:?}");
        }
    }

    #[test]
    fn columns_are_found_by_name_and_dimensions_kept() {
        // Proves column order does not matter, empty cells are empty dimensions, and a
        // dimension column with no rows still counts as present.
        let data = "region,value,customer,timestamp,id,series,void,user\n\
                    eu,1,c,2026-03-02T10:00:00+01:00,a,s,false,ann\n\
                    ,2,,2026-03-03,,s,,\n\
                    us,4,d,2026-03-04,,s,true,bob\n";
        let source = CsvSource::from_reader("m.csv", data.as_bytes()).unwrap();
        let q = month("c", "s", 3, chrono_tz::UTC);
        let r = source
            .aggregate(&q, Aggregate::UniqueCount, Some("user"))
            .unwrap();
        assert_eq!(
            r,
            Reduced {
                value: Some(Decimal::ONE),
                count: 2
            }
        );
        let empty_region = [("region".to_owned(), String::new())];
        let q2 = Query {
            filter: &empty_region,
            ..q
        };
        assert_eq!(reduce_to(&source, &q2, Aggregate::Sum), Some(dec("2")));
        let e = source
            .aggregate(&q, Aggregate::UniqueCount, Some("plan"))
            .unwrap_err();
        assert_eq!(e.location(), "m.csv");

        let header_only =
            CsvSource::from_reader("h.csv", "series,timestamp,value,region\n".as_bytes()).unwrap();
        assert!(header_only.is_empty());
        let eu = [("region".to_owned(), "eu".to_owned())];
        assert_eq!(
            header_only
                .aggregate(&Query { filter: &eu, ..q }, Aggregate::Sum, None)
                .unwrap()
                .value,
            None
        );
    }

    #[test]
    fn a_missing_file_is_an_io_error() {
        // Proves an unreadable path is an I/O error naming the path.
        let e = CsvSource::open("/nonexistent/metrics.csv").unwrap_err();
        assert!(
            matches!(e.location(), Location::File(path) if path == "/nonexistent/metrics.csv"),
            "{e}"
        );
        assert!(e.message().starts_with("no such file"), "{e}");
    }
}
