//! A SQLite metric store (feature `sqlite`).
//!
//! # Schema
//!
//! The store is a versioned component, `metrics`, of the crate's database
//! stores (see [`crate::store`]): table `outcome_schema` records its
//! version, and the migrations in `migrations/sqlite/metrics/` create it.
//! Version 1 is
//!
//! ```sql
//! CREATE TABLE outcome_observations (
//!     row_id       INTEGER PRIMARY KEY,            -- the order rows were written in
//!     customer     TEXT    NOT NULL DEFAULT '',    -- '': every customer
//!     series       TEXT    NOT NULL CHECK (series <> ''),
//!     id           TEXT    CHECK (id <> ''),       -- NULL: no id
//!     at_ns        INTEGER,                        -- timestamp: an instant
//!     at_day       INTEGER,                        --   or a date
//!     recorded_ns  INTEGER,                        -- recorded_at: an instant
//!     recorded_day INTEGER,                        --   or a date; both NULL: the timestamp
//!     value        TEXT    NOT NULL,               -- the exact decimal as written: 12.50
//!     value_key    BLOB    NOT NULL,               -- order-preserving key of the number
//!     value_scale  INTEGER NOT NULL,               -- digits after the point in value
//!     void         INTEGER NOT NULL DEFAULT 0 CHECK (void IN (0, 1)),
//!     dimensions   TEXT    NOT NULL DEFAULT '{}',  -- JSON object of strings, keys sorted
//!     file         TEXT,                           -- origin: the file the row came from
//!     line         INTEGER,                        --   and its line there
//!     CHECK ((at_ns IS NULL) <> (at_day IS NULL)),
//!     CHECK (recorded_ns IS NULL OR recorded_day IS NULL)
//! );
//! CREATE INDEX outcome_observations_at
//!     ON outcome_observations (customer, series, at_ns) WHERE at_ns IS NOT NULL;
//! CREATE INDEX outcome_observations_day
//!     ON outcome_observations (customer, series, at_day) WHERE at_day IS NOT NULL;
//! CREATE INDEX outcome_observations_versions
//!     ON outcome_observations (customer, series, id, recorded_ns, recorded_day, at_ns, at_day)
//!     WHERE id IS NOT NULL;
//! CREATE UNIQUE INDEX outcome_observations_origin ON outcome_observations (file, line);
//! CREATE TABLE outcome_dimensions (name TEXT PRIMARY KEY NOT NULL) WITHOUT ROWID;
//! ```
//!
//! - **Instants** are integers, nanoseconds since 1970-01-01T00:00:00Z (the
//!   resolution of the crate's times), so a store holds stamps from
//!   1678-01-01 to 2261-12-31 only; an import refuses others.
//! - **A date-only stamp** means local midnight in the *reading* contract's
//!   time zone, so no instant can be stored for it: it is kept as its day
//!   number (days since 1970-01-01) and each query places it in its own
//!   zone.
//! - **Values** are kept as written (`value`, so `1.50` keeps its scale),
//!   with `value_key`, a byte string whose order (SQLite compares blobs
//!   bytewise) is the numbers' order and which is equal exactly for equal
//!   numbers (`1` and `1.0`): `01` for zero; for a positive number whose
//!   digits without trailing zeros are `d1…dn` and whose value is
//!   `0.d1…dn × 10^e`, the bytes `02`, `e + 128`, then each digit as a byte
//!   `00`–`09`; for a negative number `00`, `127 - e`, each digit as
//!   `9 - d`, then `0A`.
//! - **Dimensions** are a JSON object of strings with keys in byte order,
//!   so two rows' dimensions are equal exactly when their texts are.
//!   `outcome_dimensions` names every dimension of the data, including CSV
//!   columns empty in every row, so that a filter on one is not an error.
//! - **A row is identified by its origin**, the file it came from and its
//!   line: see [`import_csv`].
//!
//! Writers other than [`import_csv`] and [`import_observations`] must fill
//! every column as described (a malformed value is reported when a query
//! reads it; other columns are trusted).
//!
//! # What is pushed down
//!
//! [`SqliteSource`]'s `aggregate` runs one SQL statement per call that does
//! everything: it selects the query's series and customer (its own rows
//! and the shared ones, customer `''`) in the window, placing date-only
//! stamps at local midnight in the query's zone; drops versions recorded
//! after `as_of`; resolves versions per (customer, series, id), the latest
//! recorded one winning (first written among equal ones) with its own
//! timestamp deciding its window; reports the first conflicting tie; drops
//! void winners; applies the filter on dimensions; and reduces. SQLite
//! has no exact decimal arithmetic (its `SUM` goes through binary floats),
//! so the connection carries two functions written in Rust:
//!
//! - `outcome_midnight(day, zone)`: the instant (nanoseconds) of a day's
//!   local midnight in a zone, as [`crate::period::local_midnight`] says;
//! - `outcome_sum(value, row_id)`: the exact sum of decimal texts, kept in
//!   256 bits and rounded once, as [`super::reduce`] sums.
//!
//! `min` and `max` order by (`value_key`, `value_scale`), and `first` and
//! `last` by (`value_key`, `id`, `value_scale`, `file`, `line`) at the
//! earliest or latest instant, which are the tie-breaking rules of
//! [`super::reduce`]; `unique_count` counts distinct non-empty values of
//! the dimension with `count(DISTINCT …)`. The result and every error are
//! those of a [`MemorySource`] holding the store's rows in `row_id` order;
//! messages name a row by its origin (`FILE:LINE`), or, where it has none,
//! as `STORE: row ROW_ID`.
//!
//! The statement is built from these parts (here for `sum` with one
//! filter):
//!
//! ```sql
//! WITH
//! inside AS (                        -- the window, by instant and by day
//!   SELECT … FROM outcome_observations o WHERE o.customer IN (:customer, '')
//!     AND o.series = :series AND o.at_ns >= :start AND o.at_ns < :end
//!   UNION ALL
//!   SELECT … FROM outcome_observations o WHERE o.customer IN (:customer, '')
//!     AND o.series = :series AND o.at_day >= :first_day AND o.at_day < :after_day),
//! known AS MATERIALIZED (            -- when each row became known, in the zone
//!   SELECT w.*, CASE WHEN w.id IS NOT NULL OR :as_of IS NOT NULL THEN
//!     COALESCE(w.recorded_ns, outcome_midnight(w.recorded_day, :tz),
//!              w.at_ns, outcome_midnight(w.at_day, :tz)) END AS rec
//!   FROM inside w),
//! ranked AS MATERIALIZED (           -- 1 wins, 0 superseded, 2 conflicting tie, 3 equal tie
//!   SELECT k.*, CASE WHEN k.id IS NULL THEN 1 ELSE (
//!     SELECT CASE WHEN max(v.r > k.rec) THEN 0
//!                 WHEN max(CASE WHEN v.r = k.rec AND v.row_id <> k.row_id
//!                               THEN NOT (<same version>) END) THEN 2
//!                 WHEN min(CASE WHEN v.r = k.rec THEN v.row_id END) = k.row_id THEN 1
//!                 ELSE 3 END
//!     FROM (SELECT x.*, <recorded instant of x> AS r FROM outcome_observations x
//!           WHERE x.customer = k.customer AND x.series = :series AND x.id = k.id) v
//!     WHERE :as_of IS NULL OR v.r <= :as_of) END AS status
//!   FROM known k WHERE :as_of IS NULL OR k.rec <= :as_of),
//! bad AS (…first status-2 row in the memory source's scan order…),
//! bad_first AS (…), bad_other AS (…),  -- the two rows the error names
//! counted AS (
//!   SELECT * FROM ranked r WHERE r.status = 1 AND r.void = 0
//!     AND EXISTS (SELECT 1 FROM json_each(r.dimensions) d
//!                 WHERE d.key = :f0_name AND d.value = :f0_value))
//! SELECT a.n, a.v,
//!        EXISTS (SELECT 1 FROM outcome_dimensions WHERE name = :f0_name),
//!        f.…, g.…
//! FROM (SELECT count(*) AS n, outcome_sum(value, row_id) AS v FROM counted) a
//!   LEFT JOIN bad_first f ON 1 LEFT JOIN bad_other g ON 1
//! ```
//!
//! `min` and `max` add `(SELECT value FROM counted ORDER BY value_key,
//! value_scale LIMIT 1)` (descending for `max`); `first` and `last` add
//! the rows at the extreme instant (`timed`, `extreme`, `low`, `high`).
//! The groups of a charge grouped by a dimension (`groups`) are the same
//! statement reducing to `json_group_array(DISTINCT …)` of the dimension's
//! values, `''` for a row without it.
//!
//! [`MetricSource::check_versions`] is one statement too: the latest
//! recorded versions of each id (`GROUP BY customer, series, id`), and
//! among ids with several, those whose versions differ (`HAVING min(…) <>
//! max(…)`).
//!
//! # Indexes
//!
//! - `outcome_observations_at` and `outcome_observations_day` find a window:
//!   equality on customer (the query's and `''`) and series, a range on the
//!   instant or the day. Two partial indexes, because a window is a range
//!   of instants for some rows and a range of days for others.
//! - `outcome_observations_versions` finds the versions of one id, and holds
//!   every column that says when each was recorded, so deciding which
//!   version wins reads the index only (the table is read for ties).
//!   Leading with the customer also serves `check_versions`, which reads
//!   every id of one customer and the shared rows.
//! - `outcome_observations_origin` makes an import idempotent.
//!
//! The fetching path ([`SqliteSource::with_push_down`] off, and `scan`)
//! selects with the same window query, adds every version of the ids it
//! found, and reduces in Rust with the in-memory source; it checks every
//! column of the rows it reads.
//!
//! # Stores of older builds
//!
//! Stores made before the schema was versioned (a table `observations`, no
//! `outcome_schema`) are refused by readers and by imports, with a message
//! saying to import the CSV files again into a new store: their rows lack
//! the columns above, and their origins named files as they were typed, so
//! an import could not tell which rows it already holds.

use std::fmt;
use std::path::Path;

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, Utc};
use chrono_tz::Tz;
use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, OptionalExtension, ToSql, Transaction, params};
use rust_decimal::Decimal;

use super::csv_source::{CsvRows, io_error};
use super::memory::DateWindow;
use super::store_schema::METRICS;
use super::{
    Aggregate, MemorySource, MetricSource, Observation, Query, Reduced, check_dimension,
    sum_or_mean_of,
};
use crate::error::{Error, ErrorKind, Location, Result};
use crate::money::{ExactSum, parse_decimal};
use crate::period::{Stamp, local_midnight};
use crate::store::pool::{Pool, Pooled};

/// The first and last years a store holds: instants are 64-bit
/// nanoseconds, which reach from 1677-09-21 to 2262-04-11, and a date's
/// local midnight lies within a day of its UTC midnight.
const YEARS: std::ops::RangeInclusive<i32> = 1678..=2261;

/// Days from 0001-01-01 (day 1 of the common era) to 1970-01-01.
const UNIX_EPOCH_DAY_CE: i32 = 719_163;

/// Messages of the crate's SQL functions start with this, so that a
/// failed statement can be told from a failing store.
const FUNCTION_ERROR: &str = "outcome: ";

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
/// // Importing the same file again adds nothing.
/// assert_eq!(import_csv(&csv, &store)?, 0);
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
    push_down: bool,
    path: std::path::PathBuf,
    /// Read-only connections, one per thread of a parallel run.
    pool: Pool<Connection>,
}

impl SqliteSource {
    /// Opens the store at `path` for reading; never creates or changes a
    /// file.
    ///
    /// # Errors
    /// A store error naming the file when it is missing or cannot be
    /// opened, when it holds no metric schema, one of an older build, or
    /// one a newer build migrated further; a data error when it is not a
    /// SQLite database.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteSource> {
        let path = path.as_ref();
        let name = path.display().to_string();
        std::fs::metadata(path).map_err(|e| {
            let message = format!(
                "cannot open the SQLite store: {}",
                io_error(&name, &e).message()
            );
            Error::io(name.clone(), e)
                .with_kind(ErrorKind::StoreUnavailable)
                .with_message(message)
        })?;
        let connection = reader(path, &name)?;
        check_store(&name, &connection)?;
        crate::store::sqlite::check(&name, &connection, &METRICS)?;
        Ok(SqliteSource {
            name,
            push_down: true,
            path: path.to_owned(),
            pool: Pool::new(
                Pool::<Connection>::size_for_threads(CONNECTIONS_MAX),
                connection,
            ),
        })
    }

    /// The same source, answering `aggregate` in SQL (`true`, the default)
    /// or by fetching the candidate rows and reducing them in Rust
    /// (`false`, the path of stores without push-down, kept to compare
    /// with). Both give the same results and errors.
    ///
    /// # Example
    /// ```
    /// # use outcome_billing::metric::{SqliteSource, import_observations};
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("m.db");
    /// # import_observations(&path, Vec::new())?;
    /// let fetching = SqliteSource::open(&path)?.with_push_down(false);
    /// # Ok::<(), outcome_billing::Error>(())
    /// ```
    pub fn with_push_down(mut self, on: bool) -> SqliteSource {
        self.push_down = on;
        self
    }

    /// The number of rows in the store (every version counts).
    ///
    /// # Errors
    /// A store error when the store cannot be read.
    pub fn row_count(&self) -> Result<usize> {
        let connection = self.lock()?;
        let n: i64 = connection
            .query_row("SELECT count(*) FROM outcome_observations", [], |r| {
                r.get(0)
            })
            .map_err(|e| db_error(&self.name, e))?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// A connection of the pool (each thread of a parallel run reads on
    /// its own), opened on first use.
    fn lock(&self) -> Result<Pooled<'_, Connection>> {
        self.pool.get(|| reader(&self.path, &self.name), |_| true)
    }

    /// Turns a failed statement into an error: a data error for a
    /// malformed value found by one of the crate's SQL functions, a store
    /// error otherwise.
    fn query_error(&self, error: rusqlite::Error) -> Error {
        if let rusqlite::Error::SqliteFailure(_, Some(message)) = &error {
            if let Some(rest) = message.strip_prefix(FUNCTION_ERROR) {
                return Error::data(self.name.as_str(), rest);
            }
        }
        db_error(&self.name, error)
    }

    /// Reads a stored decimal text found by a query.
    fn value(&self, text: &str) -> Result<Decimal> {
        parse_decimal(text).map_err(|e| Error::data(self.name.as_str(), e.message()))
    }

    /// How a row is named in messages: its origin, or its place in the
    /// store.
    fn describe(&self, row_id: i64, file: Option<&str>, line: Option<i64>) -> String {
        origin_text(&self.name, row_id, file, line)
    }

    /// Answers `aggregate` for `query` in one SQL statement (see the
    /// module docs).
    fn aggregate_in_sql(
        &self,
        query: &Query<'_>,
        aggregate: Aggregate,
        of: Option<&str>,
    ) -> Result<Reduced> {
        if aggregate == Aggregate::UniqueCount && of.is_none() {
            return Err(Error::usage(
                "unique_count needs the dimension to count (of)",
            ));
        }
        self.reduce_in_sql(
            query,
            Reduction::Aggregate(aggregate),
            of,
            |row, count, column| self.aggregate_value(query, aggregate, row, count, column),
        )
    }

    /// Adds the groups of `dimension` among the rows `query` reads in one
    /// statement: the distinct values of the winning rows, with the checks
    /// of `aggregate` (a conflicting tie, a filter on a dimension the store
    /// lacks) made first, as a scan would make them.
    fn groups_in_sql(
        &self,
        query: &Query<'_>,
        dimension: &str,
        groups: &mut std::collections::BTreeSet<String>,
    ) -> Result<()> {
        let values =
            self.reduce_in_sql(query, Reduction::Groups, Some(dimension), |row, _, _| {
                let list: Option<String> = row.get(1).map_err(|e| self.query_error(e))?;
                list.map(|text| {
                    serde_json::from_str::<Vec<String>>(&text).map_err(|e| {
                        Error::data(
                            self.name.as_str(),
                            format!("the groups of {dimension:?} came back malformed: {e}"),
                        )
                    })
                })
                .transpose()
            })?;
        groups.extend(values.into_iter().flatten());
        Ok(())
    }

    /// Runs the window statement of `reduction` for `query` and checks its
    /// one row (dimensions the store lacks, the first conflicting tie);
    /// `read` then takes the row, the count of winning rows and the first
    /// column after the checks. `of` is bound as `:of`: the dimension an
    /// aggregate counts (checked to exist) or the one grouped by (not
    /// checked: a row without it is in the group `""`).
    fn reduce_in_sql<T>(
        &self,
        query: &Query<'_>,
        reduction: Reduction,
        of: Option<&str>,
        read: impl FnOnce(&rusqlite::Row<'_>, u64, usize) -> Result<T>,
    ) -> Result<T> {
        let check_of = match reduction {
            Reduction::Aggregate(aggregate) => of.map(|of| (of, aggregate.name())),
            Reduction::Groups => None,
        };
        let sql = aggregate_sql(reduction, query.filter.len(), check_of.is_some());
        let bounds = Bounds::of(query);
        let tz = query.timezone.name();
        let mut names: Vec<String> = Vec::new();
        for i in 0..query.filter.len() {
            names.push(format!(":f{i}_name"));
            names.push(format!(":f{i}_value"));
        }
        let mut values: Vec<(&str, &dyn ToSql)> = vec![
            (":customer", &query.customer),
            (":series", &query.series),
            (":start", &bounds.start),
            (":end", &bounds.end),
            (":first_day", &bounds.first_day),
            (":after_day", &bounds.after_day),
            (":as_of", &bounds.as_of),
            (":tz", &tz),
        ];
        if let Some(of) = &of {
            values.push((":of", of));
        }
        for (i, (name, value)) in query.filter.iter().enumerate() {
            values.push((names[2 * i].as_str(), name));
            values.push((names[2 * i + 1].as_str(), value));
        }

        let connection = self.lock()?;
        let mut statement = connection
            .prepare_cached(&sql)
            .map_err(|e| self.query_error(e))?;
        let mut rows = statement
            .query(values.as_slice())
            .map_err(|e| self.query_error(e))?;
        let row = rows
            .next()
            .map_err(|e| self.query_error(e))?
            .ok_or_else(|| Error::data(self.name.as_str(), "the aggregate query gave no row"))?;
        let fail = |e: rusqlite::Error| self.query_error(e);

        let count: i64 = row.get(0).map_err(fail)?;
        let count = u64::try_from(count).unwrap_or(0);
        let mut column = 2;
        if let Some((of, what)) = check_of {
            let known: bool = row.get(column).map_err(fail)?;
            column += 1;
            check_dimension(&self.name, of, what, known)?;
        }
        for (name, _) in query.filter {
            let known: bool = row.get(column).map_err(fail)?;
            column += 1;
            check_dimension(&self.name, name, "filter", known)?;
        }
        let conflict = Conflict::read(row, column).map_err(fail)?;
        column += Conflict::COLUMNS;
        if let Some(conflict) = conflict {
            return Err(conflict.error(self));
        }
        read(row, count, column)
    }

    /// The value of `aggregate` in the row of its statement, whose checks
    /// passed: `count` winning rows, `column` the first after the checks.
    fn aggregate_value(
        &self,
        query: &Query<'_>,
        aggregate: Aggregate,
        row: &rusqlite::Row<'_>,
        count: u64,
        column: usize,
    ) -> Result<Reduced> {
        let fail = |e: rusqlite::Error| self.query_error(e);
        let value = match aggregate {
            Aggregate::Sum | Aggregate::Mean => {
                let total: Option<String> = row.get(1).map_err(fail)?;
                let total = total.map(|t| self.value(&t)).transpose()?;
                sum_or_mean_of(aggregate, total, count, &self.name, query.series)?
            }
            Aggregate::Count => (count > 0).then(|| Decimal::from(count)),
            Aggregate::Min | Aggregate::Max => {
                let text: Option<String> = row.get(1).map_err(fail)?;
                text.map(|t| self.value(&t)).transpose()?
            }
            Aggregate::UniqueCount => {
                let distinct: i64 = row.get(1).map_err(fail)?;
                (count > 0).then(|| Decimal::from(distinct))
            }
            Aggregate::First | Aggregate::Last => {
                let at: Option<i64> = row.get(column).map_err(fail)?;
                let low = Extreme::read(row, column + 1).map_err(fail)?;
                let high = Extreme::read(row, column + 1 + Extreme::COLUMNS).map_err(fail)?;
                match (at, low, high) {
                    (Some(at), Some(low), Some(high)) => {
                        if low.value_key != high.value_key || low.id != high.id {
                            let at = DateTime::from_timestamp_nanos(at);
                            return Err(Error::data(
                                self.name.as_str(),
                                format!(
                                    "{}: two observations of {} at {}: {} and {}",
                                    aggregate.name(),
                                    query.series,
                                    at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
                                    self.describe(low.row_id, low.file.as_deref(), low.line),
                                    self.describe(high.row_id, high.file.as_deref(), high.line),
                                ),
                            )
                            .with_kind(ErrorKind::ConflictingData));
                        }
                        Some(self.value(&low.value)?)
                    }
                    _ => None,
                }
            }
        };
        Ok(Reduced { value, count })
    }

    /// The rows `query` may read, in a [`MemorySource`] that answers it
    /// exactly as one holding the whole store would: every row in the
    /// window of the query's customer and the shared rows, and every
    /// version of their ids, pushed in `row_id` order. Dimensions named by
    /// the filter or by `of` that the store has are declared in it.
    fn candidates(&self, query: &Query<'_>, of: Option<&str>) -> Result<MemorySource> {
        let connection = self.lock()?;
        let fail = |e: rusqlite::Error| self.query_error(e);
        let mut memory = MemorySource::new().with_name(self.name.as_str());
        let names = query.filter.iter().map(|(n, _)| n.as_str()).chain(of);
        for dimension in names {
            let known = connection
                .prepare_cached("SELECT 1 FROM outcome_dimensions WHERE name = ?1")
                .and_then(|mut s| s.exists([dimension]))
                .map_err(fail)?;
            if known {
                memory.declare_dimension(dimension);
            }
        }
        let bounds = Bounds::of(query);
        let mut statement = connection.prepare_cached(&fetch_sql()).map_err(fail)?;
        let mut rows = statement
            .query(rusqlite::named_params! {
                ":customer": query.customer,
                ":series": query.series,
                ":start": bounds.start,
                ":end": bounds.end,
                ":first_day": bounds.first_day,
                ":after_day": bounds.after_day,
            })
            .map_err(fail)?;
        while let Some(row) = rows.next().map_err(fail)? {
            memory.push(read_row(&self.name, row)?);
        }
        Ok(memory)
    }
}

impl fmt::Debug for SqliteSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteSource")
            .field("name", &self.name)
            .field("push_down", &self.push_down)
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
        if self.push_down {
            self.aggregate_in_sql(query, aggregate, of)
        } else {
            self.candidates(query, of)?.aggregate(query, aggregate, of)
        }
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn has_dimension(&self, name: &str) -> Result<bool> {
        let connection = self.lock()?;
        connection
            .prepare_cached("SELECT 1 FROM outcome_dimensions WHERE name = ?1")
            .and_then(|mut s| s.exists([name]))
            .map_err(|e| self.query_error(e))
    }

    /// With push-down, the distinct values in one statement; without, from
    /// the window's rows.
    fn groups(
        &self,
        query: &Query<'_>,
        dimension: &str,
        groups: &mut std::collections::BTreeSet<String>,
    ) -> Result<()> {
        if self.push_down {
            self.groups_in_sql(query, dimension, groups)
        } else {
            self.candidates(query, None)?
                .groups(query, dimension, groups)
        }
    }

    /// A group with a value is one more filter, answered in SQL like any
    /// window; the group `""` (an empty value or none) is reduced from the
    /// window's rows.
    fn aggregate_group(
        &self,
        query: &Query<'_>,
        group: super::Group<'_>,
        aggregate: Aggregate,
        of: Option<&str>,
    ) -> Result<Reduced> {
        super::aggregate_group_in_sql(self, self.push_down, query, group, aggregate, of)
    }

    fn check_versions(
        &self,
        customer: &str,
        timezone: Tz,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<()> {
        let connection = self.lock()?;
        let fail = |e: rusqlite::Error| self.query_error(e);
        let mut statement = connection
            .prepare_cached(&check_versions_sql())
            .map_err(fail)?;
        let mut rows = statement
            .query(rusqlite::named_params! {
                ":customer": customer,
                ":tz": timezone.name(),
                ":as_of": as_of.map(clamp_ns),
            })
            .map_err(fail)?;
        let row = rows
            .next()
            .map_err(fail)?
            .ok_or_else(|| Error::data(self.name.as_str(), "the version query gave no row"))?;
        match Conflict::read(row, 0).map_err(fail)? {
            Some(conflict) => Err(conflict.error(self)),
            None => Ok(()),
        }
    }
}

/// A query's window and `as_of` as the store keeps times.
struct Bounds {
    /// The window's instants, in nanoseconds, clamped to 64 bits (every
    /// stored instant lies well inside).
    start: i64,
    end: i64,
    /// The day numbers whose local midnight in the query's zone lies in
    /// the window: `first_day <= day < after_day`.
    first_day: i64,
    after_day: i64,
    /// `as_of` in nanoseconds, clamped; none when the query has none.
    as_of: Option<i64>,
}

impl Bounds {
    fn of(query: &Query<'_>) -> Bounds {
        let days = DateWindow::of(query);
        Bounds {
            start: clamp_ns(query.start),
            end: clamp_ns(query.end),
            first_day: day_number(days.first),
            after_day: day_number(days.after),
            as_of: query.as_of.map(clamp_ns),
        }
    }
}

/// A conflicting tie found by a query: the two rows its message names.
struct Conflict {
    first_row: i64,
    first_file: Option<String>,
    first_line: Option<i64>,
    series: String,
    id: String,
    recorded_ns: i64,
    other_row: i64,
    other_file: Option<String>,
    other_line: Option<i64>,
}

impl Conflict {
    /// The number of columns [`CONFLICT_COLUMNS`] selects.
    const COLUMNS: usize = 9;

    /// Reads the conflict columns starting at `at`; none when there is no
    /// conflict.
    fn read(row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Option<Conflict>> {
        let Some(first_row) = row.get::<_, Option<i64>>(at)? else {
            return Ok(None);
        };
        let other_row: Option<i64> = row.get(at + 6)?;
        let Some(other_row) = other_row else {
            return Ok(None);
        };
        Ok(Some(Conflict {
            first_row,
            first_file: row.get(at + 1)?,
            first_line: row.get(at + 2)?,
            series: row.get(at + 3)?,
            id: row.get(at + 4)?,
            recorded_ns: row.get(at + 5)?,
            other_row,
            other_file: row.get(at + 7)?,
            other_line: row.get(at + 8)?,
        }))
    }

    /// The error, worded as the in-memory source words it.
    fn error(&self, source: &SqliteSource) -> Error {
        let recorded = DateTime::from_timestamp_nanos(self.recorded_ns);
        Error::data(
            source.name.as_str(),
            format!(
                "two versions of {} id {:?} recorded at {} differ: {} and {}",
                self.series,
                self.id,
                recorded.to_rfc3339_opts(SecondsFormat::AutoSi, true),
                source.describe(self.first_row, self.first_file.as_deref(), self.first_line),
                source.describe(self.other_row, self.other_file.as_deref(), self.other_line),
            ),
        )
        .with_kind(ErrorKind::ConflictingData)
    }
}

/// The least or greatest observation at the earliest or latest instant,
/// for `first` and `last`.
struct Extreme {
    value: String,
    value_key: Vec<u8>,
    id: Option<String>,
    file: Option<String>,
    line: Option<i64>,
    row_id: i64,
}

impl Extreme {
    /// The number of columns [`EXTREME_COLUMNS`] selects.
    const COLUMNS: usize = 6;

    fn read(row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Option<Extreme>> {
        let Some(row_id) = row.get::<_, Option<i64>>(at + 5)? else {
            return Ok(None);
        };
        Ok(Some(Extreme {
            value: row.get(at)?,
            value_key: row.get(at + 1)?,
            id: row.get(at + 2)?,
            file: row.get(at + 3)?,
            line: row.get(at + 4)?,
            row_id,
        }))
    }
}

// ---------------------------------------------------------------------------
// The SQL.

/// When row `t` became known, in the query's zone `:tz`: its
/// `recorded_at`, else its timestamp, in nanoseconds.
fn recorded_sql(t: &str) -> String {
    format!(
        "COALESCE({t}.recorded_ns, outcome_midnight({t}.recorded_day, :tz), \
         {t}.at_ns, outcome_midnight({t}.at_day, :tz))"
    )
}

/// The instant of row `t`'s timestamp in the query's zone `:tz`.
fn instant_sql(t: &str) -> String {
    format!("COALESCE({t}.at_ns, outcome_midnight({t}.at_day, :tz))")
}

/// Whether rows `a` and `b`, versions of one id recorded at one instant,
/// are equal as the reading contract sees them (`same_version` of the
/// in-memory source): value as a number, timestamp as an instant, void,
/// dimensions.
fn same_version_sql(a: &str, b: &str) -> String {
    format!(
        "({a}.value_key = {b}.value_key AND {a}.void = {b}.void \
         AND {a}.dimensions = {b}.dimensions AND {} = {})",
        instant_sql(a),
        instant_sql(b)
    )
}

/// The rows of the window of `:customer` and the shared rows of `:series`:
/// instants in `[:start, :end)`, dates in `[:first_day, :after_day)`.
fn window_sql(columns: &str) -> String {
    format!(
        "SELECT {columns} FROM outcome_observations o \
         WHERE o.customer IN (:customer, '') AND o.series = :series \
         AND o.at_ns >= :start AND o.at_ns < :end \
         UNION ALL \
         SELECT {columns} FROM outcome_observations o \
         WHERE o.customer IN (:customer, '') AND o.series = :series \
         AND o.at_day >= :first_day AND o.at_day < :after_day"
    )
}

/// Given a CTE `bad (customer, series, id, rec)` naming a conflicting tie,
/// the CTEs `bad_first` (its first row) and `bad_other` (the first row
/// after it that differs from it). `CROSS JOIN` keeps the one-row side
/// outside, so the versions are found through their index.
fn conflict_ctes() -> String {
    format!(
        "bad_first AS MATERIALIZED (\
           SELECT x.row_id, x.customer, x.series, x.id, x.value_key, x.void, x.dimensions, \
                  x.at_ns, x.at_day, x.file, x.line, b.rec \
           FROM bad b CROSS JOIN outcome_observations x \
             ON x.customer = b.customer AND x.series = b.series AND x.id = b.id \
           WHERE {rec_x} = b.rec ORDER BY x.row_id LIMIT 1), \
         bad_other AS MATERIALIZED (\
           SELECT x.row_id, x.file, x.line \
           FROM bad_first f CROSS JOIN outcome_observations x \
             ON x.customer = f.customer AND x.series = f.series AND x.id = f.id \
           WHERE x.row_id > f.row_id AND {rec_x} = f.rec AND NOT {same} \
           ORDER BY x.row_id LIMIT 1)",
        rec_x = recorded_sql("x"),
        same = same_version_sql("x", "f"),
    )
}

/// The columns [`Conflict::read`] reads, from `bad_first f` and
/// `bad_other g`.
const CONFLICT_COLUMNS: &str =
    "f.row_id, f.file, f.line, f.series, f.id, f.rec, g.row_id, g.file, g.line";

/// The columns [`Extreme::read`] reads, from a row `t`.
const EXTREME_COLUMNS: &str = "t.value, t.value_key, t.id, t.file, t.line, t.row_id";

/// The memory source's scan order: a timestamp's UTC second (rounded
/// down), or a date's UTC midnight, then the order rows were written in.
const SCAN_ORDER: &str = "CASE WHEN at_ns IS NOT NULL \
     THEN (at_ns - ((at_ns % 1000000000) + 1000000000) % 1000000000) / 1000000000 \
     ELSE at_day * 86400 END, row_id";

/// What a window statement reduces the winning rows to.
#[derive(Debug, Clone, Copy)]
enum Reduction {
    /// An aggregate.
    Aggregate(Aggregate),
    /// The distinct values of dimension `:of` (`''` for a row without it),
    /// as a JSON array: the groups of a charge grouped by it.
    Groups,
}

/// The statement answering `reduction` over a query with `filters` filter
/// entries, `with_of` when the dimension `:of` must be checked to exist.
/// Its one row holds: the count; the aggregate (sum text, min/max text or
/// distinct count; NULL for first/last) or the groups; whether `of` and
/// each filter's dimension exist; the conflict columns; and for
/// first/last, the extreme instant and the least and greatest observation
/// there.
fn aggregate_sql(reduction: Reduction, filters: usize, with_of: bool) -> String {
    let columns = "o.row_id, o.customer, o.id, o.at_ns, o.at_day, o.recorded_ns, \
                   o.recorded_day, o.value, o.value_key, o.value_scale, o.void, \
                   o.dimensions, o.file, o.line";
    let mut sql = format!(
        "WITH \
         inside AS ({window}), \
         known AS MATERIALIZED (\
           SELECT w.*, CASE WHEN w.id IS NOT NULL OR :as_of IS NOT NULL THEN {rec_w} END AS rec \
           FROM inside w), \
         ranked AS MATERIALIZED (\
           SELECT k.*, CASE WHEN k.id IS NULL THEN 1 ELSE (\
             SELECT CASE \
               WHEN max(v.r > k.rec) THEN 0 \
               WHEN max(CASE WHEN v.r = k.rec AND v.row_id <> k.row_id THEN NOT {same} END) THEN 2 \
               WHEN min(CASE WHEN v.r = k.rec THEN v.row_id END) = k.row_id THEN 1 \
               ELSE 3 END \
             FROM (SELECT x.row_id, x.value_key, x.void, x.dimensions, x.at_ns, x.at_day, \
                          {rec_x} AS r \
                   FROM outcome_observations x \
                   WHERE x.customer = k.customer AND x.series = :series AND x.id = k.id) AS v \
             WHERE :as_of IS NULL OR v.r <= :as_of) END AS status \
           FROM known k WHERE :as_of IS NULL OR k.rec <= :as_of), \
         bad AS (\
           SELECT customer, :series AS series, id, rec FROM ranked WHERE status = 2 \
           ORDER BY {SCAN_ORDER} LIMIT 1), \
         {conflict}, \
         counted AS (SELECT * FROM ranked r WHERE r.status = 1 AND r.void = 0",
        window = window_sql(columns),
        rec_w = recorded_sql("w"),
        rec_x = recorded_sql("x"),
        same = same_version_sql("v", "k"),
        conflict = conflict_ctes(),
    );
    for i in 0..filters {
        sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM json_each(r.dimensions) AS d \
             WHERE d.key = :f{i}_name AND d.value = :f{i}_value)"
        ));
    }
    sql.push(')');
    let extreme = match reduction {
        Reduction::Aggregate(Aggregate::First) => Some("min"),
        Reduction::Aggregate(Aggregate::Last) => Some("max"),
        _ => None,
    };
    if let Some(pick) = extreme {
        sql.push_str(&format!(
            ", timed AS MATERIALIZED (SELECT c.*, {at_c} AS at FROM counted c), \
             extreme AS (SELECT {pick}(at) AS at FROM timed), \
             low AS (SELECT {EXTREME_COLUMNS} FROM timed t JOIN extreme e ON t.at = e.at \
               ORDER BY t.value_key, t.id, t.value_scale, t.file, t.line LIMIT 1), \
             high AS (SELECT {EXTREME_COLUMNS} FROM timed t JOIN extreme e ON t.at = e.at \
               ORDER BY t.value_key DESC, t.id DESC, t.value_scale DESC, t.file DESC, \
               t.line DESC LIMIT 1)",
            at_c = instant_sql("c"),
        ));
    }
    // One pass over the counted rows gives the count and, but for min and
    // max (an ordered search), the aggregate or the groups.
    let (pass, value) = match reduction {
        Reduction::Groups => (
            "json_group_array(DISTINCT COALESCE(\
             (SELECT j.value FROM json_each(dimensions) AS j WHERE j.key = :of), ''))",
            "a.v",
        ),
        Reduction::Aggregate(Aggregate::Sum | Aggregate::Mean) => {
            ("outcome_sum(value, row_id)", "a.v")
        }
        Reduction::Aggregate(Aggregate::UniqueCount) => (
            "count(DISTINCT (SELECT j.value FROM json_each(dimensions) AS j \
             WHERE j.key = :of AND j.value <> ''))",
            "a.v",
        ),
        Reduction::Aggregate(Aggregate::Min) => (
            "NULL",
            "(SELECT value FROM counted ORDER BY value_key, value_scale LIMIT 1)",
        ),
        Reduction::Aggregate(Aggregate::Max) => (
            "NULL",
            "(SELECT value FROM counted ORDER BY value_key DESC, value_scale DESC LIMIT 1)",
        ),
        Reduction::Aggregate(Aggregate::Count | Aggregate::First | Aggregate::Last) => {
            ("NULL", "NULL")
        }
    };
    sql.push_str(&format!(" SELECT a.n, {value}"));
    sql.push_str(&checks_sql(filters, with_of));
    if extreme.is_some() {
        sql.push_str(
            ", (SELECT at FROM extreme), l.value, l.value_key, l.id, l.file, l.line, \
             l.row_id, h.value, h.value_key, h.id, h.file, h.line, h.row_id",
        );
    }
    sql.push_str(&format!(
        " FROM (SELECT count(*) AS n, {pass} AS v FROM counted) AS a \
         LEFT JOIN bad_first f ON 1 LEFT JOIN bad_other g ON 1"
    ));
    if extreme.is_some() {
        sql.push_str(" LEFT JOIN low l ON 1 LEFT JOIN high h ON 1");
    }
    sql
}

/// The columns after the reduction: whether `:of` (when `with_of`) and
/// each filter's dimension exist, then the conflict columns.
fn checks_sql(filters: usize, with_of: bool) -> String {
    let mut sql = String::new();
    if with_of {
        sql.push_str(", EXISTS (SELECT 1 FROM outcome_dimensions WHERE name = :of)");
    }
    for i in 0..filters {
        sql.push_str(&format!(
            ", EXISTS (SELECT 1 FROM outcome_dimensions WHERE name = :f{i}_name)"
        ));
    }
    sql.push_str(&format!(", {CONFLICT_COLUMNS}"));
    sql
}

/// The statement of `check_versions`: the conflicting tie whose first row
/// comes first, among every id of `:customer` and the shared rows, with
/// versions recorded after `:as_of` left out.
fn check_versions_sql() -> String {
    format!(
        "WITH \
         known AS MATERIALIZED (\
           SELECT x.row_id, x.customer, x.series, x.id, {rec_x} AS rec \
           FROM outcome_observations x \
           WHERE x.customer IN (:customer, '') AND x.id IS NOT NULL), \
         eligible AS (SELECT * FROM known WHERE :as_of IS NULL OR rec <= :as_of), \
         latest AS MATERIALIZED (\
           SELECT customer, series, id, max(rec) AS rec FROM eligible \
           GROUP BY customer, series, id), \
         ties AS MATERIALIZED (\
           SELECT e.row_id, e.customer, e.series, e.id, e.rec FROM eligible e JOIN latest l \
             ON e.customer = l.customer AND e.series = l.series AND e.id = l.id \
             AND e.rec = l.rec), \
         several AS (\
           SELECT customer, series, id FROM ties GROUP BY customer, series, id \
           HAVING count(*) > 1), \
         bad AS (\
           SELECT t.customer, t.series, t.id, t.rec, min(t.row_id) AS first_row \
           FROM ties t \
           JOIN several s ON t.customer = s.customer AND t.series = s.series AND t.id = s.id \
           JOIN outcome_observations x ON x.row_id = t.row_id \
           GROUP BY t.customer, t.series, t.id \
           HAVING min(x.value_key) <> max(x.value_key) OR min(x.void) <> max(x.void) \
             OR min(x.dimensions) <> max(x.dimensions) OR min({at_x}) <> max({at_x}) \
           ORDER BY first_row LIMIT 1), \
         {conflict} \
         SELECT {CONFLICT_COLUMNS} \
         FROM (SELECT 1) LEFT JOIN bad_first f ON 1 LEFT JOIN bad_other g ON 1",
        rec_x = recorded_sql("x"),
        at_x = instant_sql("x"),
        conflict = conflict_ctes(),
    )
}

/// The columns [`read_row`] reads, from a row `x`.
const READ_COLUMNS: &str = "x.row_id, x.customer, x.series, x.id, x.at_ns, x.at_day, \
     x.recorded_ns, x.recorded_day, x.value, x.void, x.dimensions, x.file, x.line";

/// The statement of the fetching path: the window's rows and every
/// version of their ids, in `row_id` order.
fn fetch_sql() -> String {
    format!(
        "WITH inside AS MATERIALIZED ({window}) \
         SELECT {READ_COLUMNS} FROM outcome_observations x \
         WHERE x.row_id IN (SELECT row_id FROM inside) \
         UNION \
         SELECT {READ_COLUMNS} \
         FROM (SELECT DISTINCT customer, id FROM inside WHERE id IS NOT NULL) AS k \
         CROSS JOIN outcome_observations x \
           ON x.customer = k.customer AND x.series = :series AND x.id = k.id \
         ORDER BY 1",
        window = window_sql("o.row_id, o.customer, o.id"),
    )
}

// ---------------------------------------------------------------------------
// The SQL functions.

/// A read-only connection to the store at `path`, with the crate's SQL
/// functions.
fn reader(path: &Path, name: &str) -> Result<Connection> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| db_error(name, e))?;
    register_functions(&connection).map_err(|e| db_error(name, e))?;
    // One cached statement per aggregate and filter length in use.
    connection.set_prepared_statement_cache_capacity(64);
    Ok(connection)
}

/// The most connections one source opens (each only when needed).
const CONNECTIONS_MAX: usize = 8;

/// Registers `outcome_midnight` and `outcome_sum` on `connection`.
fn register_functions(connection: &Connection) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    connection.create_scalar_function("outcome_midnight", 2, flags, midnight_function)?;
    connection.create_aggregate_function("outcome_sum", 2, flags, SumFunction)
}

/// An error of one of the crate's SQL functions, marked so that
/// [`SqliteSource::query_error`] reports it as a data error.
fn function_error(message: impl fmt::Display) -> rusqlite::Error {
    rusqlite::Error::UserFunctionError(format!("{FUNCTION_ERROR}{message}").into())
}

/// `outcome_midnight(day, zone)`: the instant, in nanoseconds, of local
/// midnight at the start of day number `day` in the zone named `zone`;
/// NULL for a NULL day.
fn midnight_function(ctx: &Context<'_>) -> rusqlite::Result<Option<i64>> {
    let Some(day) = ctx.get::<Option<i64>>(0)? else {
        return Ok(None);
    };
    // The zone is the same for every row of a statement: parse it once.
    let tz = ctx.get_or_create_aux(1, |zone| -> rusqlite::Result<Tz> {
        let name = match zone {
            ValueRef::Text(bytes) => std::str::from_utf8(bytes).ok(),
            _ => None,
        };
        name.and_then(|n| n.parse::<Tz>().ok())
            .ok_or_else(|| function_error("outcome_midnight: not a time zone"))
    })?;
    let date = date_of_day(day)
        .ok_or_else(|| function_error(format!("day {day} is outside the years a store holds")))?;
    local_midnight(date, *tz)
        .timestamp_nanos_opt()
        .map(Some)
        .ok_or_else(|| function_error(format!("day {day} is outside the years a store holds")))
}

/// `outcome_sum(value, row_id)`: the exact sum of decimal texts as
/// [`ExactSum`] keeps it, rounded once; NULL when it overflows a decimal.
struct SumFunction;

impl rusqlite::functions::Aggregate<ExactSum, Option<String>> for SumFunction {
    fn init(&self, _: &mut Context<'_>) -> rusqlite::Result<ExactSum> {
        Ok(ExactSum::default())
    }

    fn step(&self, ctx: &mut Context<'_>, sum: &mut ExactSum) -> rusqlite::Result<()> {
        let text = match ctx.get_raw(0) {
            ValueRef::Text(bytes) => std::str::from_utf8(bytes).ok(),
            _ => None,
        };
        let value = text.and_then(|t| parse_decimal(t).ok());
        match value {
            Some(v) => {
                sum.add(v);
                Ok(())
            }
            None => {
                let row: i64 = ctx.get(1)?;
                let shown = match ctx.get_raw(0) {
                    ValueRef::Text(bytes) => format!("{:?}", String::from_utf8_lossy(bytes)),
                    other => format!("of type {}", other.data_type()),
                };
                Err(function_error(format!(
                    "row {row}, column value: malformed decimal {shown}"
                )))
            }
        }
    }

    fn finalize(
        &self,
        _: &mut Context<'_>,
        sum: Option<ExactSum>,
    ) -> rusqlite::Result<Option<String>> {
        Ok(sum.unwrap_or_default().value().map(|d| d.to_string()))
    }
}

// ---------------------------------------------------------------------------
// Stored forms.

/// The day number of `date`: days since 1970-01-01.
fn day_number(date: NaiveDate) -> i64 {
    i64::from(date.num_days_from_ce() - UNIX_EPOCH_DAY_CE)
}

/// The date of day number `day`, if it is one a store holds.
fn date_of_day(day: i64) -> Option<NaiveDate> {
    let ce = i32::try_from(day).ok()?.checked_add(UNIX_EPOCH_DAY_CE)?;
    NaiveDate::from_num_days_from_ce_opt(ce).filter(|d| YEARS.contains(&d.year()))
}

/// An instant in nanoseconds, clamped to 64 bits: every stored instant
/// lies well inside, so comparisons with it are exact.
fn clamp_ns(at: DateTime<Utc>) -> i64 {
    at.timestamp_nanos_opt().unwrap_or(if at.timestamp() < 0 {
        i64::MIN
    } else {
        i64::MAX
    })
}

/// A stamp as its pair of columns (instant, day); none outside the years a
/// store holds.
fn stamp_columns(stamp: &Stamp) -> Option<(Option<i64>, Option<i64>)> {
    match *stamp {
        Stamp::At(at) => YEARS
            .contains(&at.year())
            .then(|| at.timestamp_nanos_opt())
            .flatten()
            .map(|ns| (Some(ns), None)),
        Stamp::Date(date) => YEARS
            .contains(&date.year())
            .then(|| (None, Some(day_number(date)))),
    }
}

/// The stamp stored as the pair (instant, day), if exactly one is set and
/// it is in range.
fn stamp_of(ns: Option<i64>, day: Option<i64>) -> Option<Stamp> {
    match (ns, day) {
        (Some(ns), None) => Some(Stamp::At(DateTime::from_timestamp_nanos(ns))),
        (None, Some(day)) => date_of_day(day).map(Stamp::Date),
        _ => None,
    }
}

/// The order-preserving key of a number (see the module docs).
fn value_key(value: Decimal) -> Vec<u8> {
    if value.is_zero() {
        return vec![1];
    }
    let normal = value.normalize();
    let digits = normal.mantissa().unsigned_abs().to_string();
    // A 96-bit coefficient has at most 29 digits and the scale is at most
    // 28, so the exponent lies in -27..=29.
    let exponent = digits.len() as i64 - i64::from(normal.scale());
    assert!(
        (-27..=29).contains(&exponent),
        "decimal exponent out of range"
    );
    let biased = (exponent + 128) as u8;
    let mut key = Vec::with_capacity(digits.len() + 3);
    if value.is_sign_positive() {
        key.push(2);
        key.push(biased);
        key.extend(digits.bytes().map(|b| b - b'0'));
    } else {
        key.push(0);
        key.push(255 - biased);
        key.extend(digits.bytes().map(|b| 9 - (b - b'0')));
        key.push(10);
    }
    key
}

/// How a stored row is named in messages: `FILE:LINE` from its origin,
/// or the store and row where it has none.
fn origin_text(store: &str, row_id: i64, file: Option<&str>, line: Option<i64>) -> String {
    match (file, line) {
        (Some(file), Some(line)) => format!("{file}:{line}"),
        (Some(file), None) => file.to_owned(),
        (None, Some(line)) => format!("{store}:{line}"),
        (None, None) => format!("{store}: row {row_id}"),
    }
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

/// Reads one row of [`READ_COLUMNS`] as an observation, checking every
/// column.
fn read_row(store: &str, row: &rusqlite::Row<'_>) -> Result<Observation> {
    const NAMES: [&str; 13] = [
        "row_id",
        "customer",
        "series",
        "id",
        "at_ns",
        "at_day",
        "recorded_ns",
        "recorded_day",
        "value",
        "void",
        "dimensions",
        "file",
        "line",
    ];
    let row_id: i64 = row
        .get(0)
        .map_err(|e| Error::data(store, format!("row_id: {e}")))?;
    let at = |i: usize| format!("{store}: row {row_id}, column {}", NAMES[i]);
    let text = |i: usize| -> Result<Option<String>> {
        row.get::<_, Option<String>>(i)
            .map_err(|e| Error::data(at(i), format!("expected text: {e}")))
    };
    let integer = |i: usize| -> Result<Option<i64>> {
        row.get::<_, Option<i64>>(i)
            .map_err(|e| Error::data(at(i), format!("expected an integer: {e}")))
    };
    let required = |i: usize| -> Result<String> {
        text(i)?.ok_or_else(|| Error::data(at(i), "missing value"))
    };

    let customer = text(1)?.filter(|c| !c.is_empty());
    let series = required(2)?;
    if series.is_empty() {
        return Err(Error::data(at(2), "empty series: every row needs one"));
    }
    let id = text(3)?.filter(|id| !id.is_empty());
    let timestamp = stamp_of(integer(4)?, integer(5)?).ok_or_else(|| {
        Error::data(
            at(4),
            "expected exactly one of at_ns and at_day, in the years 1678 to 2261",
        )
    })?;
    let recorded_at = match (integer(6)?, integer(7)?) {
        (None, None) => None,
        (ns, day) => Some(stamp_of(ns, day).ok_or_else(|| {
            Error::data(
                at(6),
                "expected at most one of recorded_ns and recorded_day, in the years 1678 to 2261",
            )
        })?),
    };
    let value = parse_decimal(&required(8)?).map_err(|e| Error::data(at(8), e.message()))?;
    let void = match integer(9)? {
        Some(0) => false,
        Some(1) => true,
        other => {
            return Err(Error::data(
                at(9),
                format!("malformed void {other:?}: expected 0 or 1"),
            ));
        }
    };
    let mut dimensions: Vec<(String, String)> = Vec::new();
    if let Some(json) = text(10)?.filter(|j| !j.is_empty()) {
        let bad = || {
            Error::data(
                at(10),
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
    let origin = origin_text(store, row_id, text(11)?.as_deref(), integer(12)?);
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

// ---------------------------------------------------------------------------
// Opening and writing.

/// Refuses what is not a SQLite database (a data error) and a metric store
/// of an older build (a store error); both before anything is written.
fn check_store(store: &str, connection: &Connection) -> Result<()> {
    let legacy = connection
        .query_row(
            "SELECT 1 FROM pragma_table_info('observations') WHERE name = 'approx_utc'",
            [],
            |_| Ok(()),
        )
        .optional()
        .map_err(|e| db_error(store, e))?
        .is_some();
    if legacy && crate::store::sqlite::version(store, connection, &METRICS)?.is_none() {
        return Err(Error::new(
            ErrorKind::StoreUnavailable,
            Location::File(store.to_owned()),
            "a metric store of an older build (table observations, no schema version): \
             import its CSV files again into a new store with `outcome import`",
        ));
    }
    Ok(())
}

/// Adds the rows of the metric CSV file at `csv_path` to the SQLite store
/// at `sqlite_path`, creating the file and migrating its schema first if
/// needed; returns the number of rows added.
///
/// An import is idempotent: a row is identified by its origin, the file's
/// absolute path (symbolic links resolved) and its line, and rows whose
/// origin the store holds already are skipped. Importing a file again
/// adds nothing; importing it after rows were appended adds only the new
/// lines. (A line edited in place is not imported again: corrections are
/// new rows, with an `id` and a later `recorded_at`.)
///
/// Every row is checked as [`crate::metric::CsvSource`] checks it, and all
/// rows go in one transaction: on any error no row is added (and a store
/// file this call created is removed). The schema migration, when one is
/// needed, is committed before the rows.
///
/// # Errors
/// An I/O error when the CSV file cannot be read; a data error at
/// `FILE:LINE:COLUMN` for a malformed row, or for a time outside the years
/// 1678 to 2261; a store error, naming the store, when it cannot be
/// written, was made by an older build, or was migrated by a newer one; a
/// data error when it is not a SQLite database.
pub fn import_csv(csv_path: impl AsRef<Path>, sqlite_path: impl AsRef<Path>) -> Result<usize> {
    let csv_path = csv_path.as_ref();
    let absolute = std::fs::canonicalize(csv_path)
        .map_err(|e| io_error(&csv_path.display().to_string(), &e))?;
    let mut rows = CsvRows::open(&absolute)?;
    let dimensions: Vec<String> = rows.dimensions().map(str::to_owned).collect();
    write(sqlite_path.as_ref(), &dimensions, || rows.next_row())
}

/// Adds `observations` to the SQLite store at `sqlite_path`, creating the
/// file and migrating its schema first if needed; returns the number of
/// rows added.
///
/// Rows are checked as [`MemorySource::from_observations`] checks them;
/// all go in one transaction, so on any error nothing is added. An origin
/// `FILE:LINE` is kept as its file and line, and identifies the row as in
/// [`import_csv`]: a row whose origin the store holds already (or an
/// earlier row of `observations` had) is skipped. Rows without such an
/// origin are always added. An empty id is stored as no id, as in CSV;
/// an empty customer as none.
///
/// # Errors
/// As [`import_csv`].
pub fn import_observations(
    sqlite_path: impl AsRef<Path>,
    observations: impl IntoIterator<Item = Observation>,
) -> Result<usize> {
    let mut observations = observations.into_iter();
    write(sqlite_path.as_ref(), &[], || Ok(observations.next()))
}

/// Opens or creates the store and migrates it, then writes the rows
/// `next` yields and the declared `dimensions` in one transaction. A store
/// file created here is removed when anything fails.
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
        check_store(&name, &connection)?;
        crate::store::sqlite::migrate(&name, &mut connection, &METRICS)?;
        let tx = connection.transaction().map_err(|e| db_error(&name, e))?;
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
    let mut declare = tx
        .prepare_cached(
            "INSERT INTO outcome_dimensions (name) VALUES (?1) ON CONFLICT (name) DO NOTHING",
        )
        .map_err(fail)?;
    for dimension in dimensions {
        declare.execute([dimension]).map_err(fail)?;
    }
    // Only a clash of origins is passed over; any other broken constraint
    // fails the import.
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO outcome_observations (customer, series, id, at_ns, at_day, \
             recorded_ns, recorded_day, value, value_key, value_scale, void, dimensions, \
             file, line) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) \
             ON CONFLICT (file, line) DO NOTHING",
        )
        .map_err(fail)?;
    let mut declared: std::collections::HashSet<String> = dimensions.iter().cloned().collect();
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
        let (at_ns, at_day) = stamp_columns(&obs.timestamp).ok_or_else(|| out_of_range(at()))?;
        let (recorded_ns, recorded_day) = match &obs.recorded_at {
            Some(s) => stamp_columns(s).ok_or_else(|| out_of_range(at()))?,
            None => (None, None),
        };
        // Keys in byte order, as the sorted pairs are: equal dimensions
        // give equal texts.
        let map: serde_json::Map<String, serde_json::Value> = obs
            .dimensions
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        let dimensions_json = serde_json::Value::Object(map).to_string();
        for (dimension, _) in &obs.dimensions {
            if !declared.contains(dimension) {
                declare.execute([dimension]).map_err(fail)?;
                declared.insert(dimension.clone());
            }
        }
        let (file, line) = split_origin(obs.origin.as_deref());
        count += insert
            .execute(params![
                obs.customer.as_deref().unwrap_or(""),
                obs.series,
                obs.id.as_deref().filter(|id| !id.is_empty()),
                at_ns,
                at_day,
                recorded_ns,
                recorded_day,
                obs.value.to_string(),
                value_key(obs.value),
                obs.value.scale(),
                obs.void,
                dimensions_json,
                file,
                line,
            ])
            .map_err(fail)?;
    }
    Ok(count)
}

fn out_of_range(at: String) -> Error {
    Error::data(
        at,
        "time outside the years 1678 to 2261 (UTC) cannot be stored",
    )
}

/// A store error: a data error when the file is not a database (the wrong
/// shape), a store error otherwise, worded in lowercase.
fn db_error(store: &str, error: rusqlite::Error) -> Error {
    match error.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) => {
            let message = crate::store::lowercase_first(&error.to_string());
            Error::data(store, format!("not a SQLite metric store: {message}")).with_source(error)
        }
        _ => crate::store::sqlite::db_error(store, error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use chrono::{NaiveDate, TimeZone};
    use proptest::prelude::*;

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

    fn version(id: &str, at: DateTime<Utc>, value: i64, recorded: Stamp, line: u32) -> Observation {
        let mut o = Observation::new("s", Stamp::At(at), Decimal::from(value));
        o.id = Some(id.to_owned());
        o.recorded_at = Some(recorded);
        o.customer = Some("c".to_owned());
        o.origin = Some(format!("f.csv:{line}"));
        o
    }

    /// Every aggregate's answer, as text, from `source`.
    fn answers(source: &dyn MetricSource, query: &Query<'_>) -> Vec<String> {
        [
            Aggregate::Sum,
            Aggregate::Count,
            Aggregate::Mean,
            Aggregate::Min,
            Aggregate::Max,
            Aggregate::First,
            Aggregate::Last,
            Aggregate::UniqueCount,
        ]
        .into_iter()
        .map(|a| {
            let of = (a == Aggregate::UniqueCount).then_some("user");
            match source.aggregate(query, a, of) {
                Ok(r) => format!(
                    "{a:?} {:?} from {}",
                    r.value.map(|v| v.to_string()),
                    r.count
                ),
                Err(e) => format!("{a:?} {:?} at {}: {}", e.kind(), e.location(), e.message()),
            }
        })
        .collect()
    }

    #[test]
    fn stamps_and_values_round_trip_exactly() {
        // Proves stored columns read back as the same stamps and the same decimal, scale included.
        let mut o = Observation::new(
            "s",
            Stamp::At(utc(3, 2, 19) + chrono::Duration::nanoseconds(500_000_001)),
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
    fn each_aggregate_is_answered_in_sql_as_in_memory() {
        // Proves sum, count, mean, min, max, first, last and unique_count agree with the
        // in-memory source and with the fetching path, with ties of scale and of instant.
        let day = |d| Stamp::Date(NaiveDate::from_ymd_opt(2026, 3, d).unwrap());
        let mut rows = Vec::new();
        for (i, (stamp, value, user)) in [
            (Stamp::At(utc(3, 2, 0)), "3.0", "ann"),
            (day(2), "3.00", "bob"),
            (Stamp::At(utc(3, 9, 5)), "-1.25", ""),
            (day(31), "7", "ann"),
            (Stamp::At(utc(3, 31, 0)), "7.000", "Ann"),
            (Stamp::At(utc(4, 1, 0)), "100", "zed"),
        ]
        .into_iter()
        .enumerate()
        {
            let mut o = Observation::new("s", stamp, value.parse().unwrap());
            o.dimensions = vec![("user".into(), user.into())];
            o.origin = Some(format!("f.csv:{}", i + 2));
            rows.push(o);
        }
        // Equal to the row at f.csv:6 but for its id: last has two observations.
        let mut other = rows[4].clone();
        other.id = Some("x".into());
        other.origin = Some("f.csv:9".into());
        rows.push(other);
        let (_dir, sql) = store(rows.clone());
        let memory = MemorySource::from_observations(rows).unwrap();
        let dir = sql.name().to_owned();
        let fetching = SqliteSource::open(&dir).unwrap().with_push_down(false);
        let kolkata: Tz = "Asia/Kolkata".parse().unwrap();
        for tz in [chrono_tz::UTC, chrono_tz::America::New_York, kolkata] {
            let q = Query {
                timezone: tz,
                ..march()
            };
            let want = answers(&memory, &q).join("\n").replace("memory", &dir);
            assert_eq!(answers(&sql, &q).join("\n"), want, "{tz}");
            assert_eq!(answers(&fetching, &q).join("\n"), want, "{tz}");
        }
        let utc_answers = answers(&sql, &march());
        assert_eq!(utc_answers[0], "Sum Some(\"25.750\") from 6");
        assert_eq!(utc_answers[3], "Min Some(\"-1.25\") from 6");
        assert_eq!(utc_answers[4], "Max Some(\"7.000\") from 6");
        assert_eq!(utc_answers[5], "First Some(\"3.0\") from 6");
        assert!(
            utc_answers[6].ends_with(
                "last: two observations of s at 2026-03-31T00:00:00Z: f.csv:5 and f.csv:9"
            ),
            "{}",
            utc_answers[6]
        );
        assert_eq!(utc_answers[7], "UniqueCount Some(\"3\") from 6");
    }

    #[test]
    fn versions_outside_the_window_still_decide() {
        // Proves a correction recorded far from the window moves the observation out of it.
        let first = version("a", utc(3, 31, 23), 10, Stamp::At(utc(3, 31, 23)), 2);
        let mut moved = version("a", utc(6, 1, 0), 10, Stamp::At(utc(6, 2, 0)), 3);
        moved.timestamp = Stamp::At(utc(6, 1, 0));
        let (_dir, source) = store(vec![first, moved]);
        for push_down in [true, false] {
            let source = SqliteSource::open(source.name())
                .unwrap()
                .with_push_down(push_down);
            let sum = |q: &Query<'_>| source.aggregate(q, Aggregate::Sum, None).unwrap().value;
            assert_eq!(sum(&march()), None);
            let early = Query {
                as_of: Some(utc(5, 1, 0)),
                ..march()
            };
            assert_eq!(sum(&early), Some(Decimal::from(10)));
        }
    }

    #[test]
    fn conflicting_ties_are_reported_as_in_memory() {
        // Proves a tie between different versions is an error naming both rows, from the
        // aggregate and from check_versions, and that dates recorded at the same instant
        // as an RFC 3339 stamp tie with it in a UTC contract only.
        let day = Stamp::Date(NaiveDate::from_ymd_opt(2026, 3, 6).unwrap());
        let rows = vec![
            version("a", utc(3, 5, 0), 10, Stamp::At(utc(3, 6, 0)), 2),
            version("a", utc(3, 5, 0), 10, Stamp::At(utc(3, 6, 0)), 3),
            version("a", utc(3, 5, 0), 11, day, 4),
            version("b", utc(3, 7, 0), 1, Stamp::At(utc(3, 7, 0)), 5),
        ];
        let (_dir, sql) = store(rows.clone());
        let memory = MemorySource::from_observations(rows).unwrap();
        let name = sql.name().to_owned();
        let fetching = SqliteSource::open(&name).unwrap().with_push_down(false);
        for tz in [chrono_tz::UTC, chrono_tz::America::New_York] {
            let q = Query {
                timezone: tz,
                ..march()
            };
            let want = answers(&memory, &q).join("\n").replace("memory", &name);
            assert_eq!(answers(&sql, &q).join("\n"), want, "{tz}");
            assert_eq!(answers(&fetching, &q).join("\n"), want, "{tz}");
            let check = |s: &dyn MetricSource| {
                s.check_versions("c", tz, None)
                    .map_err(|e| e.message().to_owned())
            };
            assert_eq!(check(&sql), check(&memory), "{tz}");
        }
        let e = sql.check_versions("c", chrono_tz::UTC, None).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConflictingData);
        assert_eq!(e.location(), name.as_str());
        assert_eq!(
            e.message(),
            "two versions of s id \"a\" recorded at 2026-03-06T00:00:00Z differ: f.csv:2 and f.csv:4"
        );
        assert!(
            sql.check_versions("c", chrono_tz::America::New_York, None)
                .is_ok()
        );
        // Another customer does not read the rows.
        assert!(sql.check_versions("d", chrono_tz::UTC, None).is_ok());
        // Before the tie was recorded there is none.
        assert!(
            sql.check_versions("c", chrono_tz::UTC, Some(utc(3, 5, 12)))
                .is_ok()
        );
    }

    #[test]
    fn queries_use_the_indexes() {
        // Proves the window, the version resolution and check_versions search indexes.
        let (_dir, source) = store(vec![Observation::new(
            "s",
            Stamp::At(utc(3, 2, 0)),
            Decimal::ONE,
        )]);
        let connection = source.lock().unwrap();
        let plan = |sql: &str, params: &[(&str, &dyn ToSql)]| -> String {
            let mut statement = connection
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap();
            let rows: Vec<String> = statement
                .query_map(params, |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            rows.join("; ")
        };
        let window: [(&str, &dyn ToSql); 8] = [
            (":customer", &"c"),
            (":series", &"s"),
            (":start", &0),
            (":end", &1),
            (":first_day", &0),
            (":after_day", &1),
            (":as_of", &Some(5)),
            (":tz", &"UTC"),
        ];
        let sum = plan(
            &aggregate_sql(Reduction::Aggregate(Aggregate::Sum), 0, false),
            &window,
        );
        for index in [
            "outcome_observations_at (customer=? AND series=? AND at_ns>? AND at_ns<?)",
            "outcome_observations_day (customer=? AND series=? AND at_day>? AND at_day<?)",
            "INDEX outcome_observations_versions (customer=? AND series=? AND id=?)",
        ] {
            assert!(sum.contains(index), "{index}: {sum}");
        }
        assert!(!sum.contains("SCAN x"), "{sum}");
        let fetch = plan(&fetch_sql(), &window[..6]);
        assert!(
            fetch.contains("outcome_observations_versions (customer=? AND series=? AND id=?)"),
            "{fetch}"
        );
        let check: [(&str, &dyn ToSql); 3] =
            [(":customer", &"c"), (":tz", &"UTC"), (":as_of", &Some(5))];
        let versions = plan(&check_versions_sql(), &check);
        assert!(
            versions.contains("outcome_observations_versions (customer=?)"),
            "{versions}"
        );
    }

    /// The bytes of every file in `dir`, to prove nothing was written.
    fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let p = e.unwrap().path();
                (p.display().to_string(), std::fs::read(&p).unwrap())
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn stores_of_the_wrong_shape_are_refused_and_left_alone() {
        // Proves a non-database, a database without the metrics schema, a store of an
        // older build and one of a newer schema version fail at open and at import with
        // errors naming the store, and that no file changes.
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("m.csv");
        std::fs::write(&text, "series,timestamp,value\n".repeat(40)).unwrap();
        let other = dir.path().join("other.db");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE other (x INTEGER)")
            .unwrap();
        let legacy = dir.path().join("legacy.db");
        Connection::open(&legacy)
            .unwrap()
            .execute_batch(
                "CREATE TABLE observations (customer TEXT, series TEXT NOT NULL, \
                 timestamp TEXT NOT NULL, value TEXT NOT NULL, id TEXT, recorded_at TEXT, \
                 void INTEGER NOT NULL DEFAULT 0, dimensions TEXT, file TEXT, line INTEGER, \
                 approx_utc INTEGER NOT NULL, approx_recorded_utc INTEGER NOT NULL);",
            )
            .unwrap();
        let newer = dir.path().join("newer.db");
        import_observations(&newer, Vec::new()).unwrap();
        Connection::open(&newer)
            .unwrap()
            .execute_batch("UPDATE outcome_schema SET version = 7 WHERE component = 'metrics'")
            .unwrap();
        let before = files(dir.path());

        let e = SqliteSource::open(&text).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::MalformedData, "{e}");
        assert!(e.message().starts_with("not a SQLite metric store"), "{e}");
        assert_eq!(e.location(), text.display().to_string().as_str());

        let e = SqliteSource::open(&other).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::StoreUnavailable, "{e}");
        assert_eq!(
            e.message(),
            "not a metric store (no metrics schema; create one with `outcome import`)"
        );

        let e = SqliteSource::open(&legacy).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::StoreUnavailable, "{e}");
        assert!(
            e.message().starts_with("a metric store of an older build"),
            "{e}"
        );
        assert!(e.message().contains("import its CSV files again"), "{e}");

        let e = SqliteSource::open(&newer).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::StoreUnavailable, "{e}");
        assert_eq!(
            e.message(),
            "the metric store is at schema version 7, newer than this build knows (1): use a newer outcome"
        );
        assert_eq!(e.location(), newer.display().to_string().as_str());

        for (path, kind) in [
            (&text, ErrorKind::MalformedData),
            (&legacy, ErrorKind::StoreUnavailable),
            (&newer, ErrorKind::StoreUnavailable),
        ] {
            let row = Observation::new("s", Stamp::At(utc(3, 2, 0)), Decimal::ONE);
            let e = import_observations(path, vec![row]).unwrap_err();
            assert_eq!(e.kind(), kind, "{e}");
        }
        assert_eq!(files(dir.path()), before);
    }

    #[test]
    fn opening_a_missing_store_creates_nothing() {
        // Proves open is a store error for a missing file, naming it, and leaves no file behind.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing.db");
        let e = SqliteSource::open(&path).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::StoreUnavailable, "{e}");
        assert_eq!(e.location(), path.display().to_string().as_str());
        assert!(
            e.message()
                .starts_with("cannot open the SQLite store: no such file"),
            "{e}"
        );
        assert!(!path.exists());
    }

    #[test]
    fn rows_written_by_other_tools_are_checked_when_read() {
        // Proves a malformed stored value is a data error naming the row, from the sum in
        // SQL and from the fetching path.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        import_observations(&path, Vec::new()).unwrap();
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "INSERT INTO outcome_observations (series, at_day, value, value_key, value_scale)
                 VALUES ('s', 20514, '1e3', x'01', 0);",
            )
            .unwrap();
        let source = SqliteSource::open(&path).unwrap();
        let e = source
            .aggregate(&march(), Aggregate::Sum, None)
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::MalformedData);
        assert_eq!(e.location(), path.display().to_string().as_str());
        assert_eq!(
            e.message(),
            "row 1, column value: malformed decimal \"1e3\""
        );
        let e = source
            .with_push_down(false)
            .aggregate(&march(), Aggregate::Sum, None)
            .unwrap_err();
        assert_eq!(
            e.location(),
            format!("{}: row 1, column value", path.display())
        );
        assert!(e.message().starts_with("malformed decimal \"1e3\""), "{e}");
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
        assert_eq!(origin_text("m.db", 4, None, None), "m.db: row 4");
    }

    #[test]
    fn a_stamp_outside_the_stored_years_is_refused() {
        // Proves an instant or date outside 1678..=2261 is a data error at the row, and
        // that the boundary years are stored.
        for (text, ok) in [
            ("1677-12-31", false),
            ("1678-01-01", true),
            ("2261-12-31T23:59:59.999999999Z", true),
            ("2262-01-01T00:00:00Z", false),
            ("9999-12-31T23:00:00-05:00", false),
        ] {
            let stamp = Stamp::parse(text).unwrap();
            assert_eq!(stamp_columns(&stamp).is_some(), ok, "{text}");
            if let Some((ns, day)) = stamp_columns(&stamp) {
                assert_eq!(stamp_of(ns, day), Some(stamp), "{text}");
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        let mut o = Observation::new("s", Stamp::parse("2262-01-01").unwrap(), Decimal::ONE);
        o.origin = Some("f:2".into());
        let e = import_observations(&path, vec![o]).unwrap_err();
        assert_eq!(e.location(), "f:2");
        assert!(!path.exists());
    }

    #[test]
    fn midnights_in_sql_are_the_crates() {
        // Proves outcome_midnight gives local_midnight's instant, across a skipped day.
        let connection = Connection::open_in_memory().unwrap();
        register_functions(&connection).unwrap();
        let apia: Tz = "Pacific/Apia".parse().unwrap();
        for date in [
            NaiveDate::from_ymd_opt(2011, 12, 29).unwrap(),
            NaiveDate::from_ymd_opt(2011, 12, 30).unwrap(),
            NaiveDate::from_ymd_opt(2011, 12, 31).unwrap(),
            NaiveDate::from_ymd_opt(1678, 1, 1).unwrap(),
        ] {
            for tz in [apia, chrono_tz::America::Sao_Paulo, chrono_tz::UTC] {
                let ns: i64 = connection
                    .query_row(
                        "SELECT outcome_midnight(?1, ?2)",
                        params![day_number(date), tz.name()],
                        |r| r.get(0),
                    )
                    .unwrap();
                assert_eq!(ns, local_midnight(date, tz).timestamp_nanos_opt().unwrap());
            }
        }
        let none: Option<i64> = connection
            .query_row("SELECT outcome_midnight(NULL, 'UTC')", [], |r| r.get(0))
            .unwrap();
        assert_eq!(none, None);
        let e = connection
            .query_row("SELECT outcome_midnight(1, 'Mars/Base')", [], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap_err();
        assert!(e.to_string().contains("not a time zone"), "{e}");
    }

    proptest! {
        #[test]
        fn value_keys_order_numbers(a in any::<Decimal>(), b in any::<Decimal>(), shift in 0u32..5) {
            // Proves keys compare as the numbers do, and are equal exactly for equal numbers,
            // whatever the scale.
            prop_assert_eq!(value_key(a).cmp(&value_key(b)), a.cmp(&b));
            let mut rescaled = a;
            rescaled.rescale(a.scale().saturating_add(shift).min(28));
            if rescaled == a {
                prop_assert_eq!(value_key(rescaled), value_key(a));
            }
        }

        #[test]
        fn exact_sums_in_sql_are_the_crates(values in proptest::collection::vec(any::<Decimal>(), 0..20)) {
            // Proves outcome_sum gives ExactSum's value, overflow included.
            let connection = Connection::open_in_memory().unwrap();
            register_functions(&connection).unwrap();
            connection.execute_batch("CREATE TABLE t (v TEXT)").unwrap();
            for v in &values {
                connection.execute("INSERT INTO t VALUES (?1)", [v.to_string()]).unwrap();
            }
            let got: Option<String> = connection
                .query_row("SELECT outcome_sum(v, rowid) FROM t", [], |r| r.get(0))
                .unwrap();
            let mut want = ExactSum::default();
            for v in &values {
                want.add(*v);
            }
            prop_assert_eq!(got, want.value().map(|d| d.to_string()));
        }
    }
}
