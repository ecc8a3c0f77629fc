//! A SQLite metric store (feature `sqlite`).
//!
//! # Schema
//!
//! One table holds the rows of metric data, with the columns of the CSV
//! format and a few of its own:
//!
//! ```sql
//! CREATE TABLE observations (
//!     customer            TEXT,              -- NULL or '': every customer
//!     series              TEXT NOT NULL,
//!     timestamp           TEXT NOT NULL,     -- RFC 3339 in UTC, or a date YYYY-MM-DD
//!     value               TEXT NOT NULL,     -- exact decimal text: 12.50, never a float
//!     id                  TEXT,              -- NULL or '': no id
//!     recorded_at         TEXT,              -- as timestamp; NULL: the timestamp
//!     void                INTEGER NOT NULL DEFAULT 0,  -- 0 or 1
//!     dimensions          TEXT,              -- JSON object of the other columns' text
//!     file                TEXT,              -- origin: the file the row came from
//!     line                INTEGER,           -- origin: its line in that file
//!     approx_utc          INTEGER NOT NULL,  -- the timestamp's approximate UTC second
//!     approx_recorded_utc INTEGER NOT NULL   -- recorded_at's (or the timestamp's)
//! );
//! CREATE INDEX observations_window ON observations (series, customer, approx_utc);
//! CREATE INDEX observations_versions ON observations (series, customer, id) WHERE id IS NOT NULL;
//! CREATE TABLE dimensions (name TEXT PRIMARY KEY NOT NULL);
//! ```
//!
//! A date-only stamp means local midnight in the *reading* contract's time
//! zone, so no single instant can be stored for it. The `approx_*` keys
//! hold an instant's UTC second, or a date's UTC midnight, as in
//! [`MemorySource`]: a date's true instant lies within two days of its key
//! whatever the zone. Writers other than [`import_csv`] and
//! [`import_observations`] must fill them the same way.
//!
//! `dimensions` (the table) lists the dimension columns of every imported
//! file, so that a filter on a column that is empty in every row is not an
//! error, as with the CSV source; a name found only in some row's JSON
//! counts as well.
//!
//! # What is pushed down
//!
//! SQL selects, through the indexes, the rows a query may read: its series,
//! the query's customer and the shared rows (customer NULL or empty), with
//! `approx_utc` in the window widened by two days on each side, and then
//! every version of each id among them (a correction may have moved an
//! observation across the window's edge). Rows whose `approx_recorded_utc`
//! is more than two days after `as_of` are left out: they were not known at
//! `as_of`, so they neither count nor beat another version.
//!
//! Everything after that selection is done in Rust by the same code as the
//! in-memory source, on the selected rows only: which version wins, void,
//! the exact placement of date-only stamps in the query's zone, filters,
//! and the reduction. SQLite has no exact decimal arithmetic (its `SUM`
//! goes through binary floats), so no sum, mean, min or max is computed in
//! SQL. The result is the one a [`MemorySource`] holding every row of the
//! store gives, row for row and error for error.
//!
//! Rows written by [`import_csv`] were checked as the CSV source checks
//! them. Rows written by other tools are checked when a query reads them: a
//! malformed one is a data error at `PATH: row ROWID, column NAME`.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use chrono::SecondsFormat;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, params};

use super::csv_source::{CsvRows, io_error};
use super::memory::{WIDEN_SECONDS, approximate_key};
use super::{Aggregate, MemorySource, MetricSource, Observation, Query, Reduced};
use crate::error::{Error, ErrorKind, Location, Result};
use crate::money::parse_decimal;
use crate::period::Stamp;

/// Columns `observations` must have, in the order the reading query names
/// them after `rowid`.
const COLUMNS: [&str; 12] = [
    "customer",
    "series",
    "timestamp",
    "value",
    "id",
    "recorded_at",
    "void",
    "dimensions",
    "file",
    "line",
    "approx_utc",
    "approx_recorded_utc",
];

const SCHEMA: &str = "
CREATE TABLE observations (
    customer            TEXT,
    series              TEXT NOT NULL,
    timestamp           TEXT NOT NULL,
    value               TEXT NOT NULL,
    id                  TEXT,
    recorded_at         TEXT,
    void                INTEGER NOT NULL DEFAULT 0,
    dimensions          TEXT,
    file                TEXT,
    line                INTEGER,
    approx_utc          INTEGER NOT NULL,
    approx_recorded_utc INTEGER NOT NULL
);
CREATE INDEX observations_window ON observations (series, customer, approx_utc);
CREATE INDEX observations_versions ON observations (series, customer, id) WHERE id IS NOT NULL;
CREATE TABLE IF NOT EXISTS dimensions (name TEXT PRIMARY KEY NOT NULL);
";

const SELECT: &str = "SELECT rowid, customer, series, timestamp, value, id, recorded_at, void, \
                      dimensions, file, line FROM observations";

/// Metric data read from a SQLite store (see the module docs for the
/// schema and for what SQL does).
///
/// # Example
/// ```
/// use chrono::{TimeZone, Utc};
/// use outcome_billing::MetricSource;
/// use outcome_billing::metric::{Aggregate, Query, SqliteSource, import_csv};
/// use rust_decimal::Decimal;
///
/// let dir = tempfile::tempdir().unwrap();
/// let csv = dir.path().join("logins.csv");
/// std::fs::write(&csv, "series,timestamp,value,id,recorded_at\n\
///     logins,2026-03-02,1,a,\n\
///     logins,2026-03-02,3,a,2026-03-05T00:00:00Z\n").unwrap();
/// let store = dir.path().join("metrics.db");
/// assert_eq!(import_csv(&csv, &store)?, 2);
///
/// let source = SqliteSource::open(&store)?;
/// let query = Query {
///     customer: "shopco",
///     series: "logins",
///     start: Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap(),
///     end: Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap(),
///     timezone: chrono_tz::UTC,
///     filter: &[],
///     as_of: None,
/// };
/// // The correction replaces the first version.
/// assert_eq!(source.aggregate(&query, Aggregate::Sum, None)?.value, Some(Decimal::from(3)));
/// # Ok::<(), outcome_billing::Error>(())
/// ```
pub struct SqliteSource {
    name: String,
    inner: Mutex<Inner>,
}

struct Inner {
    connection: Connection,
    /// Whether the store has the `dimensions` table.
    has_dimensions_table: bool,
    /// Dimension names known to be in the store.
    known_dimensions: HashSet<String>,
}

impl SqliteSource {
    /// Opens the store at `path` for reading; never creates a file.
    ///
    /// # Errors
    /// An I/O error when the file is missing or cannot be opened; a data
    /// error when it is not a SQLite database or lacks the table
    /// `observations` or one of its columns.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteSource> {
        let path = path.as_ref();
        let name = path.display().to_string();
        std::fs::metadata(path).map_err(|e| {
            let message = format!(
                "cannot open the SQLite store: {}",
                io_error(&name, &e).message()
            );
            Error::io(name.clone(), e).with_message(message)
        })?;
        let connection = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| db_error(&name, e))?;
        if !check_schema(&name, &connection)? {
            return Err(Error::data(
                &name,
                "no table observations: not a metric store (create one with `outcome import`)",
            ));
        }
        let has_dimensions_table = has_table(&name, &connection, "dimensions")?;
        Ok(SqliteSource {
            name,
            inner: Mutex::new(Inner {
                connection,
                has_dimensions_table,
                known_dimensions: HashSet::new(),
            }),
        })
    }

    /// The number of rows in the store (every version counts).
    ///
    /// # Errors
    /// An I/O error when the store cannot be read.
    pub fn row_count(&self) -> Result<usize> {
        let inner = self.lock();
        let n: i64 = inner
            .connection
            .query_row("SELECT COUNT(*) FROM observations", [], |r| r.get(0))
            .map_err(|e| db_error(&self.name, e))?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while the lock was held cannot leave the connection
        // half-changed: reads run in SQLite's own transactions.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The rows `query` may read, in a [`MemorySource`] that answers it
    /// exactly as one holding the whole store would: every row in the
    /// widened window of the query's customer and the shared rows, and
    /// every version of their ids, pushed in rowid order. Dimensions named
    /// by the filter or by `of` that the store has are declared in it.
    fn candidates(&self, query: &Query<'_>, of: Option<&str>) -> Result<MemorySource> {
        let mut inner = self.lock();
        let mut memory = MemorySource::new().with_name(self.name.as_str());
        let names = query.filter.iter().map(|(n, _)| n.as_str()).chain(of);
        for dimension in names {
            if inner.has_dimension(&self.name, dimension)? {
                memory.declare_dimension(dimension);
            }
        }

        let low = query.start.timestamp().saturating_sub(WIDEN_SECONDS);
        let high = query.end.timestamp().saturating_add(WIDEN_SECONDS);
        let known_by = query
            .as_of
            .map_or(i64::MAX, |t| t.timestamp().saturating_add(WIDEN_SECONDS));
        let own = Some(query.customer).filter(|c| !c.is_empty());
        let shared = [Some(""), None];
        let connection = &inner.connection;

        let mut rows: BTreeMap<i64, Observation> = BTreeMap::new();
        let window = format!(
            "{SELECT} WHERE series = ?1 AND customer IS ?2 AND approx_utc >= ?3 \
             AND approx_utc < ?4 AND approx_recorded_utc <= ?5"
        );
        for customer in own.into_iter().map(Some).chain(shared) {
            self.select(
                connection,
                &window,
                params![query.series, customer, low, high, known_by],
                &mut rows,
            )?;
        }

        // Every version of each id in the window, in its own bucket.
        let ids: BTreeSet<(bool, String)> = rows
            .values()
            .filter_map(|o| {
                let is_shared = o.customer.as_deref().is_none_or(str::is_empty);
                o.id.clone().map(|id| (is_shared, id))
            })
            .collect();
        let versions = format!(
            "{SELECT} WHERE series = ?1 AND customer IS ?2 AND id = ?3 \
             AND approx_recorded_utc <= ?4"
        );
        for (is_shared, id) in &ids {
            let customers: &[Option<&str>] = if *is_shared { &shared } else { &[own] };
            for customer in customers {
                self.select(
                    connection,
                    &versions,
                    params![query.series, customer, id, known_by],
                    &mut rows,
                )?;
            }
        }

        for obs in rows.into_values() {
            memory.push(obs);
        }
        Ok(memory)
    }

    /// Runs `sql` with `params` and adds the rows it finds to `rows`.
    fn select(
        &self,
        connection: &Connection,
        sql: &str,
        params: impl rusqlite::Params,
        rows: &mut BTreeMap<i64, Observation>,
    ) -> Result<()> {
        let fail = |e: rusqlite::Error| db_error(&self.name, e);
        let mut statement = connection.prepare_cached(sql).map_err(fail)?;
        let mut found = statement.query(params).map_err(fail)?;
        while let Some(row) = found.next().map_err(fail)? {
            let rowid: i64 = row.get(0).map_err(fail)?;
            if let std::collections::btree_map::Entry::Vacant(slot) = rows.entry(rowid) {
                slot.insert(read_row(&self.name, rowid, row)?);
            }
        }
        Ok(())
    }
}

impl Inner {
    /// Whether the store has dimension `name`: in the `dimensions` table,
    /// or in some row's JSON. Only a found name is remembered, so rows
    /// added later are seen.
    fn has_dimension(&mut self, store: &str, name: &str) -> Result<bool> {
        if self.known_dimensions.contains(name) {
            return Ok(true);
        }
        let fail = |e: rusqlite::Error| db_error(store, e);
        let mut found = false;
        if self.has_dimensions_table {
            found = self
                .connection
                .prepare_cached("SELECT 1 FROM dimensions WHERE name = ?1")
                .and_then(|mut s| s.exists([name]))
                .map_err(fail)?;
        }
        if !found {
            // A full scan: only for names no import declared.
            found = self
                .connection
                .prepare_cached(
                    "SELECT 1 FROM observations, json_each(observations.dimensions) \
                     WHERE json_each.key = ?1 LIMIT 1",
                )
                .and_then(|mut s| s.exists([name]))
                .map_err(fail)?;
        }
        if found {
            self.known_dimensions.insert(name.to_owned());
        }
        Ok(found)
    }
}

impl fmt::Debug for SqliteSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteSource")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl MetricSource for SqliteSource {
    fn scan(
        &self,
        query: &Query<'_>,
        visit: &mut dyn FnMut(&Observation) -> Result<()>,
    ) -> Result<()> {
        self.candidates(query, None)?.scan(query, visit)
    }

    fn aggregate(
        &self,
        query: &Query<'_>,
        aggregate: Aggregate,
        of: Option<&str>,
    ) -> Result<Reduced> {
        self.candidates(query, of)?.aggregate(query, aggregate, of)
    }

    fn name(&self) -> &str {
        &self.name
    }
}

/// Appends the rows of the metric CSV file at `csv_path` to the SQLite
/// store at `sqlite_path`, creating the file and its schema if missing;
/// returns the number of rows imported.
///
/// Every row is checked as [`crate::metric::CsvSource`] checks it, and all rows go
/// in one transaction: on any error nothing is imported (and a store file
/// this call created is removed). Rows remember their file (as `csv_path`
/// is displayed) and line, so messages name them as the CSV source does.
///
/// # Errors
/// An I/O error when a file cannot be read or written; a data error at
/// `FILE:LINE:COLUMN` for a malformed row, or when the store is not a
/// SQLite database or its `observations` table lacks a column.
pub fn import_csv(csv_path: impl AsRef<Path>, sqlite_path: impl AsRef<Path>) -> Result<usize> {
    let mut rows = CsvRows::open(csv_path.as_ref())?;
    let dimensions: Vec<String> = rows.dimensions().map(str::to_owned).collect();
    write(sqlite_path.as_ref(), &dimensions, || rows.next_row())
}

/// Appends `observations` to the SQLite store at `sqlite_path`, creating
/// the file and its schema if missing; returns the number of rows written.
///
/// Rows are checked as [`MemorySource::from_observations`] checks them;
/// all go in one transaction, so on any error nothing is written. An
/// origin `FILE:LINE` is kept as its file and line. An empty id is stored
/// as no id, as in CSV.
///
/// # Errors
/// As [`import_csv`], and a data error for a stamp outside the years 0000
/// to 9999 in UTC (RFC 3339 cannot write it).
pub fn import_observations(
    sqlite_path: impl AsRef<Path>,
    observations: impl IntoIterator<Item = Observation>,
) -> Result<usize> {
    let mut observations = observations.into_iter();
    write(sqlite_path.as_ref(), &[], || Ok(observations.next()))
}

/// Opens or creates the store, then writes the rows `next` yields and
/// the declared `dimensions` in one transaction. A store file created here
/// is removed when anything fails.
fn write(
    path: &Path,
    dimensions: &[String],
    next: impl FnMut() -> Result<Option<Observation>>,
) -> Result<usize> {
    let name = path.display().to_string();
    let existed = path.try_exists().map_err(|e| io_error(&name, &e))?;
    let result = (|| {
        let mut connection = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| db_error(&name, e))?;
        let tx = connection.transaction().map_err(|e| db_error(&name, e))?;
        if !check_schema(&name, &tx)? {
            tx.execute_batch(SCHEMA).map_err(|e| db_error(&name, e))?;
        }
        let count = write_rows(&name, &tx, dimensions, next)?;
        tx.commit().map_err(|e| db_error(&name, e))?;
        connection.close().map_err(|(_, e)| db_error(&name, e))?;
        Ok(count)
    })();
    if result.is_err() && !existed {
        // Best effort: the error said what went wrong; a leftover empty
        // file would only hide it on the next attempt.
        for suffix in ["", "-journal", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
    result
}

fn write_rows(
    name: &str,
    tx: &Transaction<'_>,
    dimensions: &[String],
    mut next: impl FnMut() -> Result<Option<Observation>>,
) -> Result<usize> {
    let fail = |e: rusqlite::Error| db_error(name, e);
    // The dimensions table may be missing from a store another tool made.
    tx.execute_batch("CREATE TABLE IF NOT EXISTS dimensions (name TEXT PRIMARY KEY NOT NULL)")
        .map_err(fail)?;
    let mut declare = tx
        .prepare_cached("INSERT OR IGNORE INTO dimensions (name) VALUES (?1)")
        .map_err(fail)?;
    for dimension in dimensions {
        declare.execute([dimension]).map_err(fail)?;
    }
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO observations (customer, series, timestamp, value, id, recorded_at, \
             void, dimensions, file, line, approx_utc, approx_recorded_utc) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )
        .map_err(fail)?;
    let mut seen: HashSet<String> = dimensions.iter().cloned().collect();
    let mut count = 0usize;
    while let Some(mut obs) = next()? {
        let at = || obs.origin.clone().unwrap_or_else(|| name.to_owned());
        if obs.series.is_empty() {
            return Err(Error::data(
                at(),
                "empty series: every observation needs one",
            ));
        }
        obs.dimensions.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(pair) = obs.dimensions.windows(2).find(|p| p[0].0 == p[1].0) {
            return Err(Error::data(
                at(),
                format!("dimension {:?} is named twice", pair[0].0),
            ));
        }
        let timestamp = stamp_text(&obs.timestamp).ok_or_else(|| out_of_range(at()))?;
        let recorded_at = match &obs.recorded_at {
            Some(s) => Some(stamp_text(s).ok_or_else(|| out_of_range(at()))?),
            None => None,
        };
        let dimensions_json = if obs.dimensions.is_empty() {
            None
        } else {
            let map: serde_json::Map<String, serde_json::Value> = obs
                .dimensions
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect();
            Some(serde_json::Value::Object(map).to_string())
        };
        for (dimension, _) in &obs.dimensions {
            if !seen.contains(dimension) {
                declare.execute([dimension]).map_err(fail)?;
                seen.insert(dimension.clone());
            }
        }
        let (file, line) = split_origin(obs.origin.as_deref());
        let recorded = obs.recorded_at.unwrap_or(obs.timestamp);
        insert
            .execute(params![
                obs.customer,
                obs.series,
                timestamp,
                obs.value.to_string(),
                obs.id.as_deref().filter(|id| !id.is_empty()),
                recorded_at,
                obs.void,
                dimensions_json,
                file,
                line,
                approximate_key(&obs.timestamp),
                approximate_key(&recorded),
            ])
            .map_err(fail)?;
        count += 1;
    }
    Ok(count)
}

fn out_of_range(at: String) -> Error {
    Error::data(
        at,
        "time outside the years 0000 to 9999 in UTC cannot be stored",
    )
}

/// A stamp as stored: a date as `YYYY-MM-DD`, an instant as RFC 3339 in
/// UTC; none when the text would not read back as the same stamp.
fn stamp_text(stamp: &Stamp) -> Option<String> {
    let text = match stamp {
        Stamp::Date(d) => d.format("%Y-%m-%d").to_string(),
        Stamp::At(at) => at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
    };
    (Stamp::parse(&text).as_ref() == Ok(stamp)).then_some(text)
}

/// An origin `FILE:LINE` as its file and line; any other origin as a file.
fn split_origin(origin: Option<&str>) -> (Option<&str>, Option<i64>) {
    match origin {
        None => (None, None),
        Some(o) => match o.rsplit_once(':') {
            Some((file, line)) if !line.is_empty() && line.bytes().all(|b| b.is_ascii_digit()) => {
                match line.parse::<i64>() {
                    Ok(n) => (Some(file), Some(n)),
                    Err(_) => (Some(o), None),
                }
            }
            _ => (Some(o), None),
        },
    }
}

/// Reads one row of [`SELECT`] as an observation, checking every column.
fn read_row(store: &str, rowid: i64, row: &rusqlite::Row<'_>) -> Result<Observation> {
    let at = |column: &str| format!("{store}: row {rowid}, column {column}");
    let text = |i: usize| -> Result<Option<String>> {
        row.get::<_, Option<String>>(i)
            .map_err(|e| Error::data(at(COLUMNS[i - 1]), format!("expected text: {e}")))
    };
    let integer = |i: usize| -> Result<Option<i64>> {
        row.get::<_, Option<i64>>(i)
            .map_err(|e| Error::data(at(COLUMNS[i - 1]), format!("expected an integer: {e}")))
    };
    let required = |i: usize| -> Result<String> {
        text(i)?.ok_or_else(|| Error::data(at(COLUMNS[i - 1]), "missing value"))
    };
    let stamp = |i: usize, t: &str| Stamp::parse(t).map_err(|m| Error::data(at(COLUMNS[i - 1]), m));

    let customer = text(1)?;
    let series = required(2)?;
    if series.is_empty() {
        return Err(Error::data(
            at("series"),
            "empty series: every row needs one",
        ));
    }
    let timestamp = stamp(3, &required(3)?)?;
    let value = parse_decimal(&required(4)?).map_err(|m| Error::data(at("value"), m))?;
    let id = text(5)?.filter(|id| !id.is_empty());
    let recorded_at = match text(6)?.filter(|t| !t.is_empty()) {
        Some(t) => Some(stamp(6, &t)?),
        None => None,
    };
    let void = match integer(7)? {
        Some(0) => false,
        Some(1) => true,
        other => {
            return Err(Error::data(
                at("void"),
                format!("malformed void {other:?}: expected 0 or 1"),
            ));
        }
    };
    let mut dimensions: Vec<(String, String)> = Vec::new();
    if let Some(json) = text(8)?.filter(|j| !j.is_empty()) {
        let bad = || {
            Error::data(
                at("dimensions"),
                format!("malformed dimensions {json:?}: expected a JSON object of strings"),
            )
        };
        let parsed: serde_json::Value = serde_json::from_str(&json).map_err(|_| bad())?;
        let object = parsed.as_object().ok_or_else(bad)?;
        for (k, v) in object {
            dimensions.push((k.clone(), v.as_str().ok_or_else(bad)?.to_owned()));
        }
        dimensions.sort_by(|a, b| a.0.cmp(&b.0));
    }
    let origin = match (text(9)?, integer(10)?) {
        (Some(file), Some(line)) => format!("{file}:{line}"),
        (Some(file), None) => file,
        (None, Some(line)) => format!("{store}:{line}"),
        (None, None) => format!("{store}: row {rowid}"),
    };
    Ok(Observation {
        series,
        timestamp,
        value,
        id,
        recorded_at,
        customer,
        void,
        dimensions,
        origin: Some(origin),
    })
}

/// Whether the store has table `observations`; an error when it has it
/// without every column of [`COLUMNS`].
fn check_schema(store: &str, connection: &Connection) -> Result<bool> {
    if !has_table(store, connection, "observations")? {
        return Ok(false);
    }
    let fail = |e: rusqlite::Error| db_error(store, e);
    let mut statement = connection
        .prepare("SELECT name FROM pragma_table_info('observations')")
        .map_err(fail)?;
    let present: HashSet<String> = statement
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(fail)?
        .collect::<rusqlite::Result<_>>()
        .map_err(fail)?;
    let missing: Vec<&str> = COLUMNS
        .iter()
        .copied()
        .filter(|c| !present.contains(*c))
        .collect();
    if !missing.is_empty() {
        return Err(Error::data(
            store,
            format!(
                "table observations lacks column{} {}",
                if missing.len() == 1 { "" } else { "s" },
                missing.join(", ")
            ),
        ));
    }
    Ok(true)
}

fn has_table(store: &str, connection: &Connection, table: &str) -> Result<bool> {
    connection
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [table],
            |_| Ok(()),
        )
        .optional()
        .map(|found| found.is_some())
        .map_err(|e| db_error(store, e))
}

/// A store error: a data error when the file is not a database (the wrong
/// shape), an I/O error otherwise, worded in lowercase.
fn db_error(store: &str, error: rusqlite::Error) -> Error {
    let message = error.to_string();
    let mut chars = message.chars();
    let message: String = match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => message,
    };
    match error.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) => {
            Error::data(store, format!("not a SQLite metric store: {message}")).with_source(error)
        }
        _ => Error::new(
            ErrorKind::StoreUnavailable,
            Location::File(store.to_owned()),
            message,
        )
        .with_source(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ErrorKind, Location};
    use chrono::{DateTime, NaiveDate, TimeZone, Utc};
    use rust_decimal::Decimal;

    fn utc(m: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, m, d, h, 0, 0).unwrap()
    }

    fn march() -> Query<'static> {
        Query {
            customer: "c",
            series: "s",
            start: utc(3, 1, 0),
            end: utc(4, 1, 0),
            timezone: chrono_tz::UTC,
            filter: &[],
            as_of: None,
        }
    }

    fn store(rows: Vec<Observation>) -> (tempfile::TempDir, SqliteSource) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        import_observations(&path, rows).unwrap();
        let source = SqliteSource::open(&path).unwrap();
        (dir, source)
    }

    #[test]
    fn stamps_and_values_round_trip_exactly() {
        // Proves stored text reads back as the same stamp and the same decimal, scale included.
        let mut o = Observation::new(
            "s",
            Stamp::At(
                Utc.with_ymd_and_hms(2026, 3, 2, 19, 50, 0).unwrap()
                    + chrono::Duration::milliseconds(500),
            ),
            Decimal::new(12500, 3),
        );
        o.recorded_at = Some(Stamp::Date(NaiveDate::from_ymd_opt(2026, 3, 3).unwrap()));
        o.id = Some("x".into());
        o.dimensions = vec![("z".into(), "1".into()), ("a".into(), "".into())];
        o.origin = Some("data.csv:7".into());
        let (_dir, source) = store(vec![o.clone()]);
        let mut seen = Vec::new();
        source
            .scan(&march(), &mut |obs| {
                seen.push(obs.clone());
                Ok(())
            })
            .unwrap();
        o.dimensions.sort();
        assert_eq!(seen, [o]);
        assert_eq!(seen[0].value.to_string(), "12.500");
    }

    #[test]
    fn versions_outside_the_window_still_decide() {
        // Proves a correction recorded far from the window moves the observation out of it.
        let mut first = Observation::new("s", Stamp::At(utc(3, 31, 23)), Decimal::from(10));
        first.id = Some("a".into());
        first.customer = Some("c".into());
        let mut moved = first.clone();
        moved.timestamp = Stamp::At(utc(6, 1, 0));
        moved.recorded_at = Some(Stamp::At(utc(6, 2, 0)));
        let (_dir, source) = store(vec![first, moved]);
        assert_eq!(
            source
                .aggregate(&march(), Aggregate::Sum, None)
                .unwrap()
                .value,
            None
        );
        let early = Query {
            as_of: Some(utc(5, 1, 0)),
            ..march()
        };
        assert_eq!(
            source
                .aggregate(&early, Aggregate::Sum, None)
                .unwrap()
                .value,
            Some(Decimal::from(10))
        );
    }

    #[test]
    fn queries_use_the_indexes() {
        // Proves the window and version selections are index searches, not table scans.
        let (_dir, source) = store(vec![Observation::new(
            "s",
            Stamp::At(utc(3, 2, 0)),
            Decimal::ONE,
        )]);
        let inner = source.lock();
        let window = format!(
            "{SELECT} WHERE series = ?1 AND customer IS ?2 AND approx_utc >= ?3 \
             AND approx_utc < ?4 AND approx_recorded_utc <= ?5"
        );
        let versions = format!(
            "{SELECT} WHERE series = ?1 AND customer IS ?2 AND id = ?3 \
             AND approx_recorded_utc <= ?4"
        );
        for (sql, n, index) in [
            (window, 5, "observations_window"),
            (versions, 4, "observations_versions"),
        ] {
            let values: [&dyn rusqlite::ToSql; 5] = [&"s", &"c", &0, &1, &2];
            let plan: Vec<String> = inner
                .connection
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap()
                .query_map(&values[..n], |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            let plan = plan.join("; ");
            assert!(
                plan.contains(&format!("USING INDEX {index} ")),
                "{sql}: {plan}"
            );
        }
    }

    #[test]
    fn a_store_of_the_wrong_shape_is_a_data_error() {
        // Proves a file that is not a database, or lacks the table or columns, fails at open.
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("m.csv");
        std::fs::write(&text, "series,timestamp,value\n".repeat(40)).unwrap();
        let e = SqliteSource::open(&text).unwrap_err();
        assert!(matches!(e.location(), Location::Data(_)), "{e}");
        assert!(e.message().starts_with("not a SQLite metric store"), "{e}");

        let empty = dir.path().join("empty.db");
        Connection::open(&empty)
            .unwrap()
            .execute_batch("CREATE TABLE other (x INTEGER)")
            .unwrap();
        let e = SqliteSource::open(&empty).unwrap_err();
        assert_eq!(
            e.message(),
            "no table observations: not a metric store (create one with `outcome import`)"
        );

        let partial = dir.path().join("partial.db");
        Connection::open(&partial)
            .unwrap()
            .execute_batch("CREATE TABLE observations (series TEXT, timestamp TEXT, value TEXT)")
            .unwrap();
        let e = SqliteSource::open(&partial).unwrap_err();
        assert!(
            e.message()
                .starts_with("table observations lacks columns customer, id, recorded_at"),
            "{e}"
        );
        let e = import_observations(&partial, Vec::new()).unwrap_err();
        assert!(e.message().starts_with("table observations lacks"), "{e}");
    }

    #[test]
    fn opening_a_missing_store_creates_nothing() {
        // Proves open is an I/O error for a missing file and leaves no file behind.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing.db");
        let e = SqliteSource::open(&path).unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::Io), "{e}");
        assert!(
            e.message()
                .starts_with("cannot open the SQLite store: no such file"),
            "{e}"
        );
        assert!(!path.exists());
    }

    #[test]
    fn rows_written_by_other_tools_are_checked_when_read() {
        // Proves a malformed stored row is a data error naming the row and column.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        import_observations(&path, Vec::new()).unwrap();
        let connection = Connection::open(&path).unwrap();
        connection
            .execute_batch(
                "INSERT INTO observations (series, timestamp, value, approx_utc, approx_recorded_utc)
                 VALUES ('s', '2026-03-02', '1e3', 1772409600, 1772409600);",
            )
            .unwrap();
        let source = SqliteSource::open(&path).unwrap();
        let e = source
            .aggregate(&march(), Aggregate::Sum, None)
            .unwrap_err();
        assert_eq!(
            e.location(),
            format!("{}: row 1, column value", path.display())
        );
        assert!(e.message().starts_with("malformed decimal \"1e3\""), "{e}");
        connection
            .execute_batch(
                "UPDATE observations SET value = '2', dimensions = '{\"region\":\"eu\"}';",
            )
            .unwrap();
        // A dimension found only in a row's JSON (no import declared it) can be filtered on.
        let eu = [("region".to_owned(), "eu".to_owned())];
        let q = Query {
            filter: &eu,
            ..march()
        };
        assert_eq!(
            source.aggregate(&q, Aggregate::Sum, None).unwrap().value,
            Some(Decimal::from(2))
        );
        assert_eq!(source.row_count().unwrap(), 1);
    }

    #[test]
    fn origins_split_into_file_and_line() {
        // Proves FILE:LINE origins are stored as both parts, anything else as a file.
        assert_eq!(
            split_origin(Some("a:b.csv:12")),
            (Some("a:b.csv"), Some(12))
        );
        assert_eq!(split_origin(Some("gen")), (Some("gen"), None));
        assert_eq!(split_origin(Some("x:")), (Some("x:"), None));
        assert_eq!(split_origin(None), (None, None));
    }

    #[test]
    fn a_stamp_that_cannot_be_written_back_is_refused() {
        // Proves an instant past year 9999 in UTC is a data error and nothing is written.
        let far = Stamp::parse("9999-12-31T23:00:00-05:00").unwrap();
        assert_eq!(stamp_text(&far), None);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        let mut o = Observation::new("s", far, Decimal::ONE);
        o.origin = Some("f:2".into());
        let e = import_observations(&path, vec![o]).unwrap_err();
        assert_eq!(e.location(), "f:2");
        assert!(!path.exists());
    }
}
