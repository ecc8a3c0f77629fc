//! A PostgreSQL metric store (feature `postgres`) whose window queries are
//! answered in SQL.
//!
//! # Schema
//!
//! The `metrics` component of the store's versioned schema (see
//! [`crate::store`]), created by [`import_csv`] or [`import_observations`]
//! from `migrations/postgres/metrics/`. Version 1:
//!
//! ```sql
//! CREATE TABLE outcome_observations (
//!     row_id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, -- import order
//!     customer      TEXT NOT NULL DEFAULT '',   -- '': every customer
//!     series        TEXT NOT NULL,
//!     timestamp_at  TIMESTAMPTZ,                -- the timestamp: an instant,
//!     timestamp_day DATE,                       --   or a date (exactly one)
//!     value         NUMERIC NOT NULL,           -- exact, scale kept: 1.50 stays 1.50
//!     id            TEXT,                       -- NULL: no id
//!     recorded_at   TIMESTAMPTZ,                -- when known: an instant,
//!     recorded_day  DATE,                       --   or a date (both NULL: the timestamp)
//!     void          BOOLEAN NOT NULL DEFAULT false,
//!     dimensions    JSONB NOT NULL DEFAULT '{}',-- the other columns, as strings
//!     origin_file   TEXT,                       -- the file's absolute path
//!     origin_line   BIGINT,                     -- and line
//!     approx_key    BIGINT NOT NULL             -- the timestamp's UTC second (a date's UTC midnight)
//! );
//! CREATE INDEX outcome_observations_window ON outcome_observations (series, customer, approx_key);
//! CREATE INDEX outcome_observations_versions ON outcome_observations (customer, series, id)
//!     WHERE id IS NOT NULL;
//! CREATE UNIQUE INDEX outcome_observations_origin ON outcome_observations (origin_file, origin_line);
//! CREATE TABLE outcome_dimensions (name TEXT PRIMARY KEY);
//! ```
//!
//! and two functions, `outcome_local_midnight(date, zone)` (inlined into
//! queries) and its slow path `outcome_local_midnight_exact`, which give
//! the instant a date means in a zone exactly as
//! [`crate::period::local_midnight`] does, also where PostgreSQL's own
//! reading differs (a midnight the clock goes back over, or skips).
//!
//! A date-only stamp is stored as a date, so the *reading* contract's zone
//! applies at query time. `approx_key` lets a window be found through an
//! index: a date's true instant lies within two days of its UTC midnight
//! in any zone, so the query reads the window widened by two days and then
//! places each row exactly. `outcome_dimensions` lists the dimension
//! columns of every import, so that a filter on a column that is empty in
//! every row is not an error, as with the CSV source; a name found only in
//! some row's `dimensions` counts too.
//!
//! Imports are idempotent: the unique index on the origin (the CSV file's
//! absolute path and line) skips rows already imported, so importing a file
//! twice adds nothing, and importing it again after appending lines adds
//! only those. Rows without a `FILE:LINE` origin (from
//! [`import_observations`]) are always added.
//!
//! # What is pushed down
//!
//! Everything. [`MetricSource::aggregate`] runs one prepared statement per
//! call that selects the window's candidates through the window index and
//! every version of their ids through the versions index, then, in SQL:
//! drops versions recorded after `as_of`, keeps the latest recorded
//! version of each (customer, series, id) (its timestamp decides its
//! window), finds the first conflicting tie in scan order (two different
//! versions sharing the latest `recorded_at`, as the in-memory source
//! reports it), drops void winners, places timestamps in the window (dates
//! at local midnight in the query's zone), applies the dimension filter,
//! checks that the dimensions named exist, and reduces: `count`; `sum` and
//! `mean` from the exact `NUMERIC` sum, rounded in Rust by the code
//! [`reduce`](super::reduce) uses; `min`, `max`, `first` and `last` with
//! `reduce`'s tie-breaking (`ORDER BY … LIMIT 1`), returning both ends of a
//! tie at the first or last instant so that a conflict there is reported
//! as `reduce` reports it; `unique_count` as a distinct count of non-empty
//! values. The groups of a charge grouped by a dimension
//! ([`MetricSource::groups`]) are the same statement reducing the winners
//! to `array_agg(DISTINCT …)` of the dimension's values, `''` for a row
//! without it. [`MetricSource::check_versions`] is one statement too. Results
//! and errors are those of a [`MemorySource`] holding every row of the
//! store, pushed in `row_id` order (origins are compared as file, then
//! line, which is the in-memory order for `FILE:LINE` origins).
//!
//! With [`PostgresSource::with_push_down`] off, the same candidate rows
//! are fetched instead and reduced in Rust by a [`MemorySource`]: the
//! baseline the push-down is measured against.
//!
//! Instants are stored to the microsecond: an import refuses a time with
//! finer precision rather than round it. Time zones are read from the
//! server's time zone database, which should be as recent as the one this
//! crate is built with.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, TimeZone, Utc};
use chrono_tz::Tz;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};
use postgres::{Client, Row, Statement};
use rust_decimal::Decimal;

use super::csv_source::CsvRows;
use super::memory::{DateWindow, WIDEN_SECONDS, approximate_key};
use super::store_schema::METRICS;
use super::{Aggregate, MemorySource, MetricSource, Observation, Query, Reduced, sum_or_mean};
use crate::error::{Error, ErrorKind, Result};
use crate::money::ExactSum;
use crate::period::Stamp;
use crate::store::pool::Pool;
use crate::store::postgres::{check, connect, describe, migrate, pg_error};
use crate::store::redact;

/// The most connections one source opens (each only when needed).
const CONNECTIONS_MAX: usize = 8;

/// The earliest year a query bound or a stored stamp may have: PostgreSQL
/// stores nothing before 4713 BC.
const YEAR_MIN: i32 = -4000;

/// The candidate rows of a window: those of its series and customers whose
/// approximate key is in the widened window, and every version of their
/// ids. Parameters: $1 series, $2 customers, $3 and $4 the widened window's
/// keys.
const CANDIDATES: &str = "
cand AS (
    SELECT * FROM outcome_observations
    WHERE series = $1 AND customer = ANY($2) AND approx_key >= $3 AND approx_key < $4
), versions AS (
    SELECT * FROM cand WHERE id IS NULL
    UNION ALL
    SELECT o.* FROM outcome_observations o
    WHERE o.series = $1 AND o.customer = ANY($2) AND o.id IS NOT NULL
      AND (o.customer, o.id) IN (SELECT customer, id FROM cand WHERE id IS NOT NULL)
)";

/// From the candidates to the winners: the versions known at `as_of`
/// ($10), the latest of each id, conflicts among those, and the winners in
/// the window ($6–$9, dates in zone $5) matching the filter ($11).
const RESOLVE: &str = ",
known AS (
    SELECT v.row_id, v.customer, v.id, v.value, v.void, v.dimensions, v.approx_key,
           v.origin_file, v.origin_line, t.at,
           CASE WHEN v.timestamp_at IS NOT NULL THEN v.timestamp_at >= $6 AND v.timestamp_at < $7
                ELSE v.timestamp_day >= $8 AND v.timestamp_day < $9 END AS in_window,
           COALESCE(v.recorded_at, outcome_local_midnight(v.recorded_day, $5), t.at) AS recorded
    FROM versions v
    CROSS JOIN LATERAL (
        SELECT COALESCE(v.timestamp_at, outcome_local_midnight(v.timestamp_day, $5)) AS at
    ) t
), eligible AS (
    SELECT * FROM known WHERE $10::timestamptz IS NULL OR recorded <= $10
), latest AS (
    SELECT e.*, max(e.recorded) OVER (PARTITION BY e.customer, e.id) AS latest
    FROM eligible e WHERE e.id IS NOT NULL
), judged AS (
    SELECT l.*, first_value(l.row_id) OVER g AS first_id,
           NOT (l.value = first_value(l.value) OVER g AND l.at = first_value(l.at) OVER g
                AND l.void = first_value(l.void) OVER g
                AND l.dimensions = first_value(l.dimensions) OVER g) AS differs
    FROM latest l WHERE l.recorded = l.latest
    WINDOW g AS (PARTITION BY l.customer, l.id ORDER BY l.row_id)
), conflict AS (
    SELECT j.id, max(j.recorded) AS recorded, min(j.first_id) AS first_id,
           min(j.row_id) FILTER (WHERE j.differs) AS partner
    FROM judged j
    GROUP BY j.customer, j.id
    HAVING bool_or(j.differs) AND bool_or(j.in_window)
    ORDER BY min(ARRAY[j.approx_key, j.row_id]) FILTER (WHERE j.in_window)
    LIMIT 1
), winners AS (
    SELECT row_id, id, value, at, dimensions, origin_file, origin_line FROM eligible
    WHERE id IS NULL AND NOT void AND in_window AND dimensions @> $11
    UNION ALL
    SELECT row_id, id, value, at, dimensions, origin_file, origin_line FROM judged
    WHERE row_id = first_id AND NOT void AND in_window AND dimensions @> $11
)";

/// The columns every aggregate statement starts with: the first dimension
/// of $12 the store lacks, the conflict (id, recorded, both origins), and
/// the winners' count. Rows are named by `FILE:LINE`, or by row id ($13 is
/// the store's name).
const HEAD: &str = "
SELECT
    (SELECT d.n FROM unnest($12::text[]) WITH ORDINALITY AS d(n, i)
     WHERE NOT EXISTS (SELECT 1 FROM outcome_dimensions x WHERE x.name = d.n)
       AND NOT EXISTS (SELECT 1 FROM outcome_observations x WHERE x.dimensions ? d.n)
     ORDER BY d.i LIMIT 1),
    c.id, c.recorded,
    (SELECT COALESCE(o.origin_file || ':' || o.origin_line, o.origin_file, $13 || ': row ' || o.row_id)
     FROM outcome_observations o WHERE o.row_id = c.first_id),
    (SELECT COALESCE(o.origin_file || ':' || o.origin_line, o.origin_file, $13 || ': row ' || o.row_id)
     FROM outcome_observations o WHERE o.row_id = c.partner),
    (SELECT count(*) FROM winners)";

/// The statements a connection prepares, each once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    /// count, sum, mean: the count and the exact sum as text.
    Sums,
    Min,
    Max,
    First,
    Last,
    UniqueCount,
    /// The distinct values of dimension $14 among the winners (`''` for a
    /// row without it): the groups of a charge grouped by it.
    Groups,
    /// The candidate rows of a window, for reducing in Rust.
    Candidates,
    /// Which of some dimension names the store has.
    Dimensions,
    /// The first conflicting tie a contract reads.
    Conflicts,
    /// The rows with an id that a contract reads, for checking in Rust.
    Versioned,
}

impl Kind {
    fn for_aggregate(aggregate: Aggregate) -> Kind {
        match aggregate {
            Aggregate::Sum | Aggregate::Count | Aggregate::Mean => Kind::Sums,
            Aggregate::Min => Kind::Min,
            Aggregate::Max => Kind::Max,
            Aggregate::First => Kind::First,
            Aggregate::Last => Kind::Last,
            Aggregate::UniqueCount => Kind::UniqueCount,
        }
    }

    /// The statement's SQL and parameter types.
    fn sql(self) -> (String, &'static [Type]) {
        const AGGREGATE_TYPES: &[Type] = &[
            Type::TEXT,
            Type::TEXT_ARRAY,
            Type::INT8,
            Type::INT8,
            Type::TEXT,
            Type::TIMESTAMPTZ,
            Type::TIMESTAMPTZ,
            Type::DATE,
            Type::DATE,
            Type::TIMESTAMPTZ,
            Type::JSONB,
            Type::TEXT_ARRAY,
            Type::TEXT,
            Type::TEXT,
        ];
        // The tie order of `reduce`: value, id, scale, origin (file, line).
        let origin_key = "COALESCE(w.origin_file, $13 || ': row ' || w.row_id) COLLATE \"C\"";
        let origin = "COALESCE(w.origin_file || ':' || w.origin_line, w.origin_file, \
                      $13 || ': row ' || w.row_id)";
        let first_or_last = |extreme: &str| {
            format!(
                "WITH {CANDIDATES}{RESOLVE}{HEAD},
                    x.at, lo.value, lo.id, lo.origin, hi.value, hi.id, hi.origin
                FROM (SELECT 1) AS one
                LEFT JOIN conflict c ON true
                LEFT JOIN LATERAL (SELECT {extreme}(at) AS at FROM winners) x ON true
                LEFT JOIN LATERAL (
                    SELECT w.value, w.id, {origin} AS origin FROM winners w WHERE w.at = x.at
                    ORDER BY w.value, w.id COLLATE \"C\" NULLS FIRST, scale(w.value),
                             {origin_key}, w.origin_line NULLS FIRST
                    LIMIT 1
                ) lo ON true
                LEFT JOIN LATERAL (
                    SELECT w.value, w.id, {origin} AS origin FROM winners w WHERE w.at = x.at
                    ORDER BY w.value DESC, w.id COLLATE \"C\" DESC NULLS LAST, scale(w.value) DESC,
                             {origin_key} DESC, w.origin_line DESC NULLS LAST
                    LIMIT 1
                ) hi ON true"
            )
        };
        let simple = |tail: &str| {
            format!(
                "WITH {CANDIDATES}{RESOLVE}{HEAD},
                    {tail}
                FROM (SELECT 1) AS one LEFT JOIN conflict c ON true"
            )
        };
        match self {
            Kind::Sums => (
                simple("(SELECT sum(value)::text FROM winners)"),
                AGGREGATE_TYPES,
            ),
            // Numerically equal values are told apart by scale, as `reduce` does.
            Kind::Min => (
                simple("(SELECT value FROM winners ORDER BY value, scale(value) LIMIT 1)"),
                AGGREGATE_TYPES,
            ),
            Kind::Max => (
                simple(
                    "(SELECT value FROM winners ORDER BY value DESC, scale(value) DESC LIMIT 1)",
                ),
                AGGREGATE_TYPES,
            ),
            Kind::UniqueCount => (
                simple(
                    "(SELECT count(DISTINCT dimensions ->> $14) \
                     FILTER (WHERE dimensions ->> $14 <> '') FROM winners)",
                ),
                AGGREGATE_TYPES,
            ),
            Kind::Groups => (
                simple(
                    "(SELECT array_agg(DISTINCT COALESCE(dimensions ->> $14, '')) \
                     FROM winners)",
                ),
                AGGREGATE_TYPES,
            ),
            Kind::First => (first_or_last("min"), AGGREGATE_TYPES),
            Kind::Last => (first_or_last("max"), AGGREGATE_TYPES),
            Kind::Candidates => (
                format!("WITH {CANDIDATES} SELECT {ROW_COLUMNS} FROM versions ORDER BY row_id"),
                &[Type::TEXT, Type::TEXT_ARRAY, Type::INT8, Type::INT8],
            ),
            Kind::Dimensions => (
                "SELECT d.n FROM unnest($1::text[]) AS d(n) \
                 WHERE EXISTS (SELECT 1 FROM outcome_dimensions x WHERE x.name = d.n) \
                    OR EXISTS (SELECT 1 FROM outcome_observations x WHERE x.dimensions ? d.n)"
                    .to_owned(),
                &[Type::TEXT_ARRAY],
            ),
            Kind::Conflicts => (
                CONFLICTS.to_owned(),
                &[Type::TEXT_ARRAY, Type::TEXT, Type::TIMESTAMPTZ, Type::TEXT],
            ),
            Kind::Versioned => (
                format!(
                    "SELECT {ROW_COLUMNS} FROM outcome_observations \
                     WHERE customer = ANY($1) AND id IS NOT NULL ORDER BY row_id"
                ),
                &[Type::TEXT_ARRAY],
            ),
        }
    }
}

/// The columns [`observation`] reads, in its order.
const ROW_COLUMNS: &str = "row_id, customer, series, timestamp_at, timestamp_day, value, id, \
                           recorded_at, recorded_day, void, dimensions, origin_file, origin_line";

/// The first conflicting tie among the versions a contract reads ($1 its
/// customers, $2 its zone, $3 as of), by the row order of the tie's first
/// row, as [`MemorySource`] reports it.
const CONFLICTS: &str = "
WITH known AS (
    SELECT o.row_id, o.series, o.customer, o.id, o.value, o.void, o.dimensions, t.at,
           COALESCE(o.recorded_at, outcome_local_midnight(o.recorded_day, $2), t.at) AS recorded
    FROM outcome_observations o
    CROSS JOIN LATERAL (
        SELECT COALESCE(o.timestamp_at, outcome_local_midnight(o.timestamp_day, $2)) AS at
    ) t
    WHERE o.customer = ANY($1) AND o.id IS NOT NULL
), latest AS (
    SELECT k.*, max(k.recorded) OVER (PARTITION BY k.series, k.customer, k.id) AS latest
    FROM known k WHERE $3::timestamptz IS NULL OR k.recorded <= $3
), judged AS (
    SELECT l.*, first_value(l.row_id) OVER g AS first_id,
           NOT (l.value = first_value(l.value) OVER g AND l.at = first_value(l.at) OVER g
                AND l.void = first_value(l.void) OVER g
                AND l.dimensions = first_value(l.dimensions) OVER g) AS differs
    FROM latest l WHERE l.recorded = l.latest
    WINDOW g AS (PARTITION BY l.series, l.customer, l.id ORDER BY l.row_id)
), conflict AS (
    SELECT j.series, j.id, max(j.recorded) AS recorded, min(j.first_id) AS first_id,
           min(j.row_id) FILTER (WHERE j.differs) AS partner
    FROM judged j
    GROUP BY j.series, j.customer, j.id
    HAVING bool_or(j.differs)
    ORDER BY min(j.first_id)
    LIMIT 1
)
SELECT c.series, c.id, c.recorded,
    (SELECT COALESCE(o.origin_file || ':' || o.origin_line, o.origin_file, $4 || ': row ' || o.row_id)
     FROM outcome_observations o WHERE o.row_id = c.first_id),
    (SELECT COALESCE(o.origin_file || ':' || o.origin_line, o.origin_file, $4 || ': row ' || o.row_id)
     FROM outcome_observations o WHERE o.row_id = c.partner)
FROM conflict c";

/// One pooled connection and the statements prepared on it.
struct Connection {
    client: Client,
    statements: HashMap<Kind, Statement>,
}

impl Connection {
    /// A pooled connection on `client`. Its statements use generic plans:
    /// planning the aggregate statement for each call's parameters costs
    /// more than running it (about 1 ms against 0.3 ms), and the generic
    /// plan reads the same indexes. JIT compilation is off: the estimate of
    /// the rarely run full scan for an undeclared dimension can pass the
    /// JIT threshold, and compiling costs some 150 ms a call.
    fn new(store: &str, mut client: Client) -> Result<Connection> {
        client
            .batch_execute("SET plan_cache_mode = force_generic_plan; SET jit = off")
            .map_err(|e| pg_error(store, e))?;
        Ok(Connection {
            client,
            statements: HashMap::new(),
        })
    }

    fn statement(&mut self, store: &str, kind: Kind) -> Result<Statement> {
        if let Some(s) = self.statements.get(&kind) {
            return Ok(s.clone());
        }
        let (sql, types) = kind.sql();
        let statement = self
            .client
            .prepare_typed(&sql, types)
            .map_err(|e| pg_error(store, e))?;
        self.statements.insert(kind, statement.clone());
        Ok(statement)
    }

    fn query(
        &mut self,
        store: &str,
        kind: Kind,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>> {
        let statement = self.statement(store, kind)?;
        self.client
            .query(&statement, params)
            .map_err(|e| pg_error(store, e))
    }
}

/// Metric data read from a PostgreSQL store, with window queries answered
/// in SQL (see the module docs for the schema and what is pushed down).
///
/// The source keeps a few connections, opened as parallel queries need
/// them, so that a parallel billing run is not serialized on one.
///
/// # Example
/// ```no_run
/// use chrono::{TimeZone, Utc};
/// use outcome_billing::MetricSource;
/// use outcome_billing::metric::{Aggregate, PostgresSource, Query, postgres::import_csv};
///
/// let url = "postgres://outcome@127.0.0.1:54329/outcome";
/// import_csv("metrics.csv", url)?;
/// let source = PostgresSource::open(url)?;
/// let query = Query {
///     customer: "shopco",
///     series: "resolved_conversations",
///     start: Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap(),
///     end: Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap(),
///     timezone: chrono_tz::UTC,
///     filter: &[],
///     as_of: None,
/// };
/// let sum = source.aggregate(&query, Aggregate::Sum, None)?;
/// println!("{:?} from {} observations", sum.value, sum.count);
/// # Ok::<(), outcome_billing::Error>(())
/// ```
pub struct PostgresSource {
    /// The URL without password, for messages.
    name: String,
    /// The URL, to open more connections.
    url: String,
    push_down: bool,
    pool: Pool<Connection>,
}

impl PostgresSource {
    /// Connects to the store at `url` (a `postgres://` URL) and checks that
    /// it holds a metric store of this build's schema version. Writes
    /// nothing.
    ///
    /// # Errors
    /// A store error ([`ErrorKind::StoreUnavailable`]) naming the URL
    /// without its password when the server is unreachable, the database
    /// is missing, it holds no metric store (create one with
    /// [`import_csv`]), or its schema is older or newer than this build's.
    ///
    /// # Example
    /// ```
    /// use outcome_billing::ErrorKind;
    /// use outcome_billing::metric::PostgresSource;
    ///
    /// let e = PostgresSource::open("postgres://billing:secret@127.0.0.1:1/metrics").unwrap_err();
    /// assert_eq!(e.kind(), ErrorKind::StoreUnavailable);
    /// assert_eq!(e.location(), "postgres://billing:***@127.0.0.1:1/metrics");
    /// ```
    pub fn open(url: &str) -> Result<PostgresSource> {
        let name = redact(url);
        let mut client = connect(url)?;
        check(&name, &mut client, &METRICS)?;
        let first = Connection::new(&name, client)?;
        Ok(PostgresSource {
            name,
            url: url.to_owned(),
            push_down: true,
            pool: Pool::new(Pool::<Connection>::size_for_threads(CONNECTIONS_MAX), first),
        })
    }

    /// The same source, reducing windows in SQL (`true`, the default) or
    /// fetching each window's candidate rows and reducing them in Rust
    /// (`false`). Both give the same results and errors; the second is
    /// the baseline the first is measured against.
    pub fn with_push_down(mut self, on: bool) -> PostgresSource {
        self.push_down = on;
        self
    }

    /// The number of rows in the store (every version counts).
    ///
    /// # Errors
    /// A store error when the store cannot be queried.
    pub fn row_count(&self) -> Result<u64> {
        self.with_connection(|c| {
            let row = c
                .client
                .query_one("SELECT count(*) FROM outcome_observations", &[])
                .map_err(|e| pg_error(&self.name, e))?;
            let n: i64 = row.try_get(0).map_err(|e| pg_error(&self.name, e))?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    /// Runs `f` on a free connection of the pool (opening it if needed,
    /// or again after the server closed it), or waits for one.
    fn with_connection<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        self.pool.with(
            || Connection::new(&self.name, connect(&self.url)?),
            |c| !c.client.is_closed(),
            f,
        )
    }

    /// Reduces the window in one statement (see the module docs).
    fn aggregate_in_sql(
        &self,
        query: &Query<'_>,
        aggregate: Aggregate,
        of: Option<&str>,
    ) -> Result<Reduced> {
        let kind = Kind::for_aggregate(aggregate);
        let checked = of.map(|of| (of, aggregate.name()));
        self.reduce_in_sql(query, kind, of, checked, |row, count| {
            self.aggregate_value(query, aggregate, row, count)
        })
    }

    /// Adds the groups of `dimension` among the rows `query` reads in one
    /// statement, with the checks of an aggregate (a conflicting tie, a
    /// filter on a dimension the store lacks), as a scan makes them.
    fn groups_in_sql(
        &self,
        query: &Query<'_>,
        dimension: &str,
        groups: &mut std::collections::BTreeSet<String>,
    ) -> Result<()> {
        let values: Option<Vec<String>> =
            self.reduce_in_sql(query, Kind::Groups, Some(dimension), None, |row, _| {
                self.get(row, 6)
            })?;
        groups.extend(values.into_iter().flatten());
        Ok(())
    }

    /// Runs the statement of `kind` for `query` with `of` as $14 and
    /// checks its row: the dimensions the store lacks among the filter's and
    /// `checked` (a dimension `of` and the aggregate that needs it), then
    /// the first conflicting tie. `read` takes the row and the count of
    /// winners.
    fn reduce_in_sql<T>(
        &self,
        query: &Query<'_>,
        kind: Kind,
        of: Option<&str>,
        checked: Option<(&str, &str)>,
        read: impl FnOnce(&Row, u64) -> Result<T>,
    ) -> Result<T> {
        let window = Window::of(query);
        let mut names: Vec<&str> = checked.map(|(of, _)| of).into_iter().collect();
        names.extend(query.filter.iter().map(|(n, _)| n.as_str()));
        let filter = filter_json(query.filter);
        let zone = query.timezone.name();
        let params: [&(dyn ToSql + Sync); 14] = [
            &query.series,
            &window.customers,
            &window.low_key,
            &window.high_key,
            &zone,
            &window.start,
            &window.end,
            &window.first_day,
            &window.after_day,
            &window.as_of,
            &filter,
            &names,
            &self.name,
            &of,
        ];
        let rows = self.with_connection(|c| c.query(&self.name, kind, &params))?;
        let row = rows
            .first()
            .ok_or_else(|| self.malformed("the aggregate query returned no row"))?;

        let missing: Option<String> = self.get(row, 0)?;
        if let Some(missing) = missing {
            let what = match checked {
                Some((of, what)) if of == missing => what,
                _ => "filter",
            };
            // The store lacks it: always an error.
            super::check_dimension(&self.name, &missing, what, false)?;
        }
        let conflict_id: Option<String> = self.get(row, 1)?;
        if let Some(id) = conflict_id {
            let recorded: DateTime<Utc> = self.get(row, 2)?;
            let first: String = self.get(row, 3)?;
            let partner: String = self.get(row, 4)?;
            return Err(self.conflict(query.series, &id, recorded, &first, &partner));
        }
        let count: i64 = self.get(row, 5)?;
        let count = u64::try_from(count).map_err(|_| self.malformed("a negative count"))?;
        read(row, count)
    }

    /// The value of `aggregate` in the row of its statement, whose checks
    /// passed, over `count` winners.
    fn aggregate_value(
        &self,
        query: &Query<'_>,
        aggregate: Aggregate,
        row: &Row,
        count: u64,
    ) -> Result<Reduced> {
        let value = match aggregate {
            Aggregate::Count => (count > 0).then(|| Decimal::from(count)),
            Aggregate::Sum | Aggregate::Mean => {
                let text: Option<String> = self.get(row, 6)?;
                let sum = match text {
                    Some(t) => ExactSum::from_text(&t)
                        .ok_or_else(|| self.malformed(format!("a sum {t:?}")))?,
                    None => ExactSum::default(),
                };
                sum_or_mean(aggregate, &sum, count, &self.name, query.series)?
            }
            Aggregate::Min | Aggregate::Max => self.get(row, 6)?,
            Aggregate::UniqueCount => {
                let distinct: i64 = self.get(row, 6)?;
                let distinct =
                    u64::try_from(distinct).map_err(|_| self.malformed("a negative count"))?;
                (count > 0).then(|| Decimal::from(distinct))
            }
            Aggregate::First | Aggregate::Last => {
                let at: Option<DateTime<Utc>> = self.get(row, 6)?;
                match at {
                    None => None,
                    Some(at) => {
                        let low: Decimal = self.get(row, 7)?;
                        let low_id: Option<String> = self.get(row, 8)?;
                        let low_origin: String = self.get(row, 9)?;
                        let high: Decimal = self.get(row, 10)?;
                        let high_id: Option<String> = self.get(row, 11)?;
                        let high_origin: String = self.get(row, 12)?;
                        if low != high || low_id != high_id {
                            return Err(Error::data(
                                self.name.as_str(),
                                format!(
                                    "{}: two observations of {} at {}: {} and {}",
                                    aggregate.name(),
                                    query.series,
                                    at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
                                    low_origin,
                                    high_origin
                                ),
                            )
                            .with_kind(ErrorKind::ConflictingData));
                        }
                        Some(low)
                    }
                }
            }
        };
        Ok(Reduced { value, count })
    }

    /// The rows `query` may read, in a [`MemorySource`] that answers it as
    /// one holding the whole store would: the window's candidates and
    /// every version of their ids, in row order, with the dimensions named
    /// by the filter or by `of` that the store has declared.
    fn candidates(&self, query: &Query<'_>, of: Option<&str>) -> Result<MemorySource> {
        let window = Window::of(query);
        let mut names: Vec<&str> = of.into_iter().collect();
        names.extend(query.filter.iter().map(|(n, _)| n.as_str()));
        let (known, rows) = self.with_connection(|c| {
            let known = if names.is_empty() {
                Vec::new()
            } else {
                c.query(&self.name, Kind::Dimensions, &[&names])?
            };
            let rows = c.query(
                &self.name,
                Kind::Candidates,
                &[
                    &query.series,
                    &window.customers,
                    &window.low_key,
                    &window.high_key,
                ],
            )?;
            Ok((known, rows))
        })?;
        let mut memory = MemorySource::new().with_name(self.name.as_str());
        for row in &known {
            let name: String = self.get(row, 0)?;
            memory.declare_dimension(&name);
        }
        for row in &rows {
            memory.push(self.observation(row)?);
        }
        Ok(memory)
    }

    /// Reads one row of [`ROW_COLUMNS`].
    fn observation(&self, row: &Row) -> Result<Observation> {
        let row_id: i64 = self.get(row, 0)?;
        let customer: String = self.get(row, 1)?;
        let series: String = self.get(row, 2)?;
        let stamp = |at: Option<DateTime<Utc>>, day: Option<NaiveDate>| match (at, day) {
            (Some(at), _) => Some(Stamp::At(at)),
            (None, Some(day)) => Some(Stamp::Date(day)),
            (None, None) => None,
        };
        let timestamp = stamp(self.get(row, 3)?, self.get(row, 4)?)
            .ok_or_else(|| self.malformed(format!("row {row_id} has no timestamp")))?;
        let value: Decimal = self.get(row, 5)?;
        let id: Option<String> = self.get(row, 6)?;
        let recorded_at = stamp(self.get(row, 7)?, self.get(row, 8)?);
        let void: bool = self.get(row, 9)?;
        let json: serde_json::Value = self.get(row, 10)?;
        let mut dimensions: Vec<(String, String)> = Vec::new();
        if let Some(object) = json.as_object() {
            for (k, v) in object {
                let v = v.as_str().ok_or_else(|| {
                    self.malformed(format!(
                        "row {row_id} has a dimension {k:?} that is not text"
                    ))
                })?;
                dimensions.push((k.clone(), v.to_owned()));
            }
        }
        dimensions.sort_by(|a, b| a.0.cmp(&b.0));
        let file: Option<String> = self.get(row, 11)?;
        let line: Option<i64> = self.get(row, 12)?;
        let origin = match (file, line) {
            (Some(file), Some(line)) => format!("{file}:{line}"),
            (Some(file), None) => file,
            (None, _) => format!("{}: row {row_id}", self.name),
        };
        Ok(Observation {
            series,
            timestamp,
            value,
            id: id.filter(|i| !i.is_empty()),
            recorded_at,
            customer: (!customer.is_empty()).then_some(customer),
            void,
            dimensions,
            origin: Some(origin),
        })
    }

    /// Column `i` of `row`, or a data error naming the store.
    fn get<'a, T: postgres::types::FromSql<'a>>(&self, row: &'a Row, i: usize) -> Result<T> {
        row.try_get(i).map_err(|e| {
            let column = row.columns().get(i).map_or("?", |c| c.name());
            Error::data(
                self.name.as_str(),
                format!("unreadable column {column}: {}", describe(&e)),
            )
            .with_source(e)
        })
    }

    /// A data error about something the store returned that it should not.
    fn malformed(&self, what: impl fmt::Display) -> Error {
        Error::data(
            self.name.as_str(),
            format!("unexpected data in the store: {what}"),
        )
    }

    /// Two versions of `id` recorded at `recorded` differ, as the
    /// in-memory source says it.
    fn conflict(
        &self,
        series: &str,
        id: &str,
        recorded: DateTime<Utc>,
        first: &str,
        partner: &str,
    ) -> Error {
        Error::data(
            self.name.as_str(),
            format!(
                "two versions of {series} id {id:?} recorded at {} differ: {first} and {partner}",
                recorded.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            ),
        )
        .with_kind(ErrorKind::ConflictingData)
    }
}

impl fmt::Debug for PostgresSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresSource")
            .field("name", &self.name)
            .field("push_down", &self.push_down)
            .field("connections_max", &self.pool.capacity())
            .finish_non_exhaustive()
    }
}

impl MetricSource for PostgresSource {
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
        if aggregate == Aggregate::UniqueCount && of.is_none() {
            return Err(Error::usage(
                "unique_count needs the dimension to count (of)",
            ));
        }
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
        let names = vec![name.to_owned()];
        let known = self.with_connection(|c| c.query(&self.name, Kind::Dimensions, &[&names]))?;
        Ok(!known.is_empty())
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
        let customers = customers(customer);
        let as_of = as_of.map(clamp_instant);
        if !self.push_down {
            let rows =
                self.with_connection(|c| c.query(&self.name, Kind::Versioned, &[&customers]))?;
            let mut memory = MemorySource::new().with_name(self.name.as_str());
            for row in &rows {
                memory.push(self.observation(row)?);
            }
            return memory.check_versions(customer, timezone, as_of);
        }
        let zone = timezone.name();
        let rows = self.with_connection(|c| {
            c.query(
                &self.name,
                Kind::Conflicts,
                &[&customers, &zone, &as_of, &self.name],
            )
        })?;
        match rows.first() {
            None => Ok(()),
            Some(row) => {
                let series: String = self.get(row, 0)?;
                let id: String = self.get(row, 1)?;
                let recorded: DateTime<Utc> = self.get(row, 2)?;
                let first: String = self.get(row, 3)?;
                let partner: String = self.get(row, 4)?;
                Err(self.conflict(&series, &id, recorded, &first, &partner))
            }
        }
    }
}

/// A query's bounds as the statements take them.
struct Window {
    customers: Vec<String>,
    low_key: i64,
    high_key: i64,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    first_day: NaiveDate,
    after_day: NaiveDate,
    as_of: Option<DateTime<Utc>>,
}

impl Window {
    fn of(query: &Query<'_>) -> Window {
        let dates = DateWindow::of(query);
        Window {
            customers: customers(query.customer),
            low_key: query.start.timestamp().saturating_sub(WIDEN_SECONDS),
            high_key: query.end.timestamp().saturating_add(WIDEN_SECONDS),
            start: clamp_instant(query.start),
            end: clamp_instant(query.end),
            first_day: clamp_day(dates.first),
            after_day: clamp_day(dates.after),
            as_of: query.as_of.map(clamp_instant),
        }
    }
}

/// The customers whose rows a contract of `customer` reads: its own and
/// the shared ones ('').
fn customers(customer: &str) -> Vec<String> {
    if customer.is_empty() {
        vec![String::new()]
    } else {
        vec![customer.to_owned(), String::new()]
    }
}

/// The earliest instant a statement is given: no stored stamp is earlier,
/// and PostgreSQL refuses instants before 4713 BC.
fn clamp_instant(at: DateTime<Utc>) -> DateTime<Utc> {
    match Utc.with_ymd_and_hms(YEAR_MIN, 1, 1, 0, 0, 0).single() {
        Some(low) if at < low => low,
        _ => at,
    }
}

fn clamp_day(day: NaiveDate) -> NaiveDate {
    match NaiveDate::from_ymd_opt(YEAR_MIN, 1, 1) {
        Some(low) if day < low => low,
        _ => day,
    }
}

/// The filter as a JSON object for `dimensions @> $filter`. A filter that
/// asks one dimension for two different values matches nothing: it becomes
/// an empty array, which no object contains.
fn filter_json(filter: &[(String, String)]) -> serde_json::Value {
    let mut object = serde_json::Map::new();
    for (name, value) in filter {
        match object.get(name) {
            Some(v) if v.as_str() != Some(value.as_str()) => {
                return serde_json::Value::Array(Vec::new());
            }
            _ => {
                object.insert(name.clone(), serde_json::Value::String(value.clone()));
            }
        }
    }
    serde_json::Value::Object(object)
}

/// Imports the rows of the metric CSV file at `csv_path` into the
/// PostgreSQL store at `url`, creating or migrating its schema first;
/// returns the number of rows added.
///
/// Every row is checked as [`crate::metric::CsvSource`] checks it, and all
/// go in one transaction (through `COPY`): on any error no row is added.
/// Rows remember their origin, the file's absolute path and line, and
/// messages name them by it. A row whose origin is already in the store is
/// skipped (not counted): importing a file twice adds nothing, and
/// importing it after appending lines adds only those.
///
/// # Errors
/// An I/O error when the file cannot be read; a data error at
/// `FILE:LINE:COLUMN` for a malformed row, or at `FILE:LINE` for a time
/// PostgreSQL cannot store exactly (finer than a microsecond); a store
/// error naming the URL without password when the server is unreachable,
/// the schema is newer than this build's, or a write fails.
///
/// # Example
/// ```no_run
/// use outcome_billing::metric::postgres::import_csv;
///
/// let url = "postgres://outcome@127.0.0.1:54329/outcome";
/// let added = import_csv("metrics.csv", url)?;
/// // Nothing is added twice.
/// assert_eq!(import_csv("metrics.csv", url)?, 0);
/// println!("imported {added} rows");
/// # Ok::<(), outcome_billing::Error>(())
/// ```
pub fn import_csv(csv_path: impl AsRef<Path>, url: &str) -> Result<usize> {
    let path = csv_path.as_ref();
    let absolute = std::fs::canonicalize(path)
        .map_err(|e| super::csv_source::io_error(&path.display().to_string(), &e))?;
    let mut rows = CsvRows::open(&absolute)?;
    let dimensions: Vec<String> = rows.dimensions().map(str::to_owned).collect();
    write(url, dimensions, || rows.next_row())
}

/// Imports `observations` into the PostgreSQL store at `url`, creating or
/// migrating its schema first; returns the number of rows added.
///
/// Rows are checked as [`MemorySource::from_observations`] checks them;
/// all go in one transaction, so on any error none is added. An origin
/// `FILE:LINE` is kept as its file and line, and a row whose origin is
/// already in the store is skipped; rows without such an origin are always
/// added. An empty id or customer is stored as none.
///
/// # Errors
/// As [`import_csv`].
///
/// # Example
/// ```no_run
/// use outcome_billing::metric::Observation;
/// use outcome_billing::metric::postgres::import_observations;
/// use outcome_billing::period::Stamp;
/// use rust_decimal::Decimal;
///
/// let mut o = Observation::new("logins", Stamp::parse("2026-03-02")?, Decimal::ONE);
/// o.origin = Some("gateway.log:17".into());
/// let url = "postgres://outcome@127.0.0.1:54329/outcome";
/// import_observations(url, vec![o.clone()])?;
/// assert_eq!(import_observations(url, vec![o])?, 0);
/// # Ok::<(), outcome_billing::Error>(())
/// ```
pub fn import_observations(
    url: &str,
    observations: impl IntoIterator<Item = Observation>,
) -> Result<usize> {
    let mut observations = observations.into_iter();
    write(url, Vec::new(), || Ok(observations.next()))
}

/// The columns of the import's staging table, in `COPY` order. Values go
/// as text, cast to `NUMERIC` by the server: rust_decimal's binary
/// encoding writes a zero without its scale (`0.0` would become `0`).
const STAGING_TYPES: [Type; 14] = [
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::TIMESTAMPTZ,
    Type::DATE,
    Type::TEXT,
    Type::TEXT,
    Type::TIMESTAMPTZ,
    Type::DATE,
    Type::BOOL,
    Type::JSONB,
    Type::TEXT,
    Type::INT8,
    Type::INT8,
];

/// Migrates the store, then adds the rows `next` yields and the declared
/// `dimensions` in one transaction.
fn write(
    url: &str,
    mut dimensions: Vec<String>,
    mut next: impl FnMut() -> Result<Option<Observation>>,
) -> Result<usize> {
    let name = redact(url);
    let fail = |e: postgres::Error| pg_error(&name, e);
    let mut client = connect(url)?;
    migrate(&name, &mut client, &METRICS)?;
    let mut tx = client.transaction().map_err(fail)?;
    tx.batch_execute(
        "CREATE TEMPORARY TABLE outcome_import (
            ord BIGINT, customer TEXT, series TEXT, timestamp_at TIMESTAMPTZ,
            timestamp_day DATE, value TEXT, id TEXT, recorded_at TIMESTAMPTZ,
            recorded_day DATE, void BOOLEAN, dimensions JSONB, origin_file TEXT,
            origin_line BIGINT, approx_key BIGINT
        ) ON COMMIT DROP",
    )
    .map_err(fail)?;
    {
        let sink = tx
            .copy_in("COPY outcome_import FROM STDIN (FORMAT binary)")
            .map_err(fail)?;
        let mut writer = BinaryCopyInWriter::new(sink, &STAGING_TYPES);
        let mut ord: i64 = 0;
        // Dropping the writer on an error aborts the copy, and the
        // transaction rolls back.
        while let Some(obs) = next()? {
            let row = StagedRow::of(&name, obs)?;
            for (dimension, _) in &row.obs.dimensions {
                if !dimensions.contains(dimension) {
                    dimensions.push(dimension.clone());
                }
            }
            ord += 1;
            writer
                .write(&[
                    &ord,
                    &row.obs.customer.as_deref().unwrap_or(""),
                    &row.obs.series,
                    &row.timestamp_at,
                    &row.timestamp_day,
                    &row.obs.value.to_string(),
                    &row.obs.id.as_deref().filter(|id| !id.is_empty()),
                    &row.recorded_at,
                    &row.recorded_day,
                    &row.obs.void,
                    &row.dimensions,
                    &row.origin_file,
                    &row.origin_line,
                    &row.approx_key,
                ])
                .map_err(fail)?;
        }
        writer.finish().map_err(fail)?;
    }
    tx.execute(
        "INSERT INTO outcome_dimensions (name) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING",
        &[&dimensions],
    )
    .map_err(fail)?;
    let added = tx
        .execute(
            "INSERT INTO outcome_observations (customer, series, timestamp_at, timestamp_day,
                 value, id, recorded_at, recorded_day, void, dimensions, origin_file,
                 origin_line, approx_key)
             SELECT customer, series, timestamp_at, timestamp_day, value::numeric, id, recorded_at,
                 recorded_day, void, dimensions, origin_file, origin_line, approx_key
             FROM outcome_import ORDER BY ord
             ON CONFLICT (origin_file, origin_line) DO NOTHING",
            &[],
        )
        .map_err(fail)?;
    tx.commit().map_err(fail)?;
    Ok(usize::try_from(added).unwrap_or(usize::MAX))
}

/// A checked observation in the columns of the table.
struct StagedRow {
    obs: Observation,
    timestamp_at: Option<DateTime<Utc>>,
    timestamp_day: Option<NaiveDate>,
    recorded_at: Option<DateTime<Utc>>,
    recorded_day: Option<NaiveDate>,
    dimensions: serde_json::Value,
    origin_file: Option<String>,
    origin_line: Option<i64>,
    approx_key: i64,
}

impl StagedRow {
    /// Checks `obs` as [`MemorySource::from_observations`] does, and that
    /// PostgreSQL can store its times exactly.
    fn of(store: &str, mut obs: Observation) -> Result<StagedRow> {
        let at = |obs: &Observation| obs.origin.clone().unwrap_or_else(|| store.to_owned());
        if obs.series.is_empty() {
            return Err(Error::data(
                at(&obs),
                "empty series: every observation needs one",
            ));
        }
        obs.dimensions.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(pair) = obs.dimensions.windows(2).find(|p| p[0].0 == p[1].0) {
            return Err(Error::data(
                at(&obs),
                format!("dimension {:?} is named twice", pair[0].0),
            ));
        }
        let split = |stamp: Option<Stamp>| -> Result<(Option<DateTime<Utc>>, Option<NaiveDate>)> {
            match stamp {
                None => Ok((None, None)),
                Some(Stamp::At(t))
                    if t.year() >= YEAR_MIN && t.timestamp_subsec_nanos() % 1000 == 0 =>
                {
                    Ok((Some(t), None))
                }
                Some(Stamp::Date(d)) if d.year() >= YEAR_MIN => Ok((None, Some(d))),
                Some(other) => Err(Error::data(
                    at(&obs),
                    format!(
                        "time {} cannot be stored exactly in PostgreSQL (microseconds, from year {YEAR_MIN})",
                        stamp_text(&other)
                    ),
                )),
            }
        };
        let (timestamp_at, timestamp_day) = split(Some(obs.timestamp))?;
        let (recorded_at, recorded_day) = split(obs.recorded_at)?;
        let dimensions = serde_json::Value::Object(
            obs.dimensions
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect(),
        );
        let (origin_file, origin_line) = split_origin(obs.origin.as_deref());
        Ok(StagedRow {
            approx_key: approximate_key(&obs.timestamp),
            timestamp_at,
            timestamp_day,
            recorded_at,
            recorded_day,
            dimensions,
            origin_file,
            origin_line,
            obs,
        })
    }
}

/// A stamp as RFC 3339 or a date, for messages.
fn stamp_text(stamp: &Stamp) -> String {
    match stamp {
        Stamp::Date(d) => d.to_string(),
        Stamp::At(at) => at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
    }
}

/// An origin `FILE:LINE` as its file and line; any other origin as a file.
fn split_origin(origin: Option<&str>) -> (Option<String>, Option<i64>) {
    match origin {
        None => (None, None),
        Some(o) => match o.rsplit_once(':') {
            Some((file, line)) if !line.is_empty() && line.bytes().all(|b| b.is_ascii_digit()) => {
                match line.parse::<i64>() {
                    Ok(n) => (Some(file.to_owned()), Some(n)),
                    Err(_) => (Some(o.to_owned()), None),
                }
            }
            _ => (Some(o.to_owned()), None),
        },
    }
}

/// The test server helper the integration tests use too.
#[cfg(test)]
#[path = "../../tests/common/pg.rs"]
mod test_pg;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::CsvSource;
    use chrono::Duration;
    use std::io::Write;

    use super::test_pg as pg;

    const EXAMPLE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/support-agent/metrics.csv"
    );

    fn utc(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap()
    }

    /// Local month `m` of 2026 in `tz`.
    fn month<'a>(customer: &'a str, series: &'a str, m: u32, tz: Tz) -> Query<'a> {
        let day = |y, m| NaiveDate::from_ymd_opt(y, m, 1).unwrap();
        let (y2, m2) = if m == 12 { (2027, 1) } else { (2026, m + 1) };
        Query {
            customer,
            series,
            start: crate::period::local_midnight(day(2026, m), tz),
            end: crate::period::local_midnight(day(y2, m2), tz),
            timezone: tz,
            filter: &[],
            as_of: None,
        }
    }

    /// The same result or the same error (kind and message; the location
    /// names the source).
    fn same(a: &Result<Reduced>, b: &Result<Reduced>) -> bool {
        match (a, b) {
            (Ok(x), Ok(y)) => x == y && x.value.map(|v| v.scale()) == y.value.map(|v| v.scale()),
            (Err(x), Err(y)) => x.kind() == y.kind() && x.message() == y.message(),
            _ => false,
        }
    }

    const AGGREGATES: [(Aggregate, Option<&str>); 9] = [
        (Aggregate::Sum, None),
        (Aggregate::Count, None),
        (Aggregate::Mean, None),
        (Aggregate::Min, None),
        (Aggregate::Max, None),
        (Aggregate::First, None),
        (Aggregate::Last, None),
        (Aggregate::UniqueCount, Some("id")),
        (Aggregate::Sum, Some("region")),
    ];

    #[test]
    fn the_example_file_gives_the_csv_sources_answers_both_ways() {
        // Proves push-down and fetching agree with the CSV source on the example data, every
        // aggregate, month, customer, zone and several as-of instants.
        let Some(url) = pg::fresh("pg_unit_example") else {
            return;
        };
        let added = import_csv(EXAMPLE, &url).unwrap();
        assert_eq!(added, 217);
        let csv = CsvSource::open(EXAMPLE).unwrap();
        let sql = PostgresSource::open(&url).unwrap();
        assert_eq!(sql.row_count().unwrap(), 217);
        let fetch = PostgresSource::open(&url).unwrap().with_push_down(false);
        let zones: [Tz; 2] = [chrono_tz::America::New_York, chrono_tz::Asia::Kolkata];
        let series = [
            "conversations",
            "payment_amount",
            "resolved_conversations",
            "uptime_pct",
        ];
        let as_ofs = [None, Some(utc(2026, 6, 1)), Some(utc(2026, 8, 21))];
        let mut compared = 0;
        for tz in zones {
            for customer in ["shopco", "otherco", ""] {
                for s in series {
                    for m in 1..=12 {
                        for as_of in as_ofs {
                            let q = Query {
                                as_of,
                                ..month(customer, s, m, tz)
                            };
                            for (aggregate, of) in AGGREGATES {
                                // `id` is a column, not a dimension: an error everywhere.
                                let want = csv.aggregate(&q, aggregate, of);
                                let got = sql.aggregate(&q, aggregate, of);
                                let fetched = fetch.aggregate(&q, aggregate, of);
                                assert!(
                                    same(&want, &got),
                                    "{q:?} {aggregate:?}: {want:?} vs {got:?}"
                                );
                                assert!(
                                    same(&want, &fetched),
                                    "{q:?} {aggregate:?}: {want:?} vs {fetched:?}"
                                );
                                compared += 1;
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(compared, 2 * 3 * 4 * 12 * 3 * AGGREGATES.len());
        for customer in ["shopco", "otherco", ""] {
            assert_eq!(sql.check_versions(customer, zones[0], None), Ok(()));
        }
    }

    #[test]
    fn local_midnight_in_sql_is_the_crates() {
        // Proves outcome_local_midnight gives period::local_midnight's instant, also on dates
        // whose midnight the clock goes back over (Havana) or skips (Sao Paulo, Apia, Beirut).
        let Some(url) = pg::fresh("pg_unit_midnight") else {
            return;
        };
        import_observations(&url, Vec::new()).unwrap();
        let mut client = pg::client(&url);
        let first = NaiveDate::from_ymd_opt(1995, 1, 1).unwrap();
        let days: Vec<NaiveDate> = (0..(40 * 366)).map(|k| first + Duration::days(k)).collect();
        let zones: [Tz; 9] = [
            chrono_tz::America::Havana,
            chrono_tz::America::Sao_Paulo,
            chrono_tz::America::Santiago,
            chrono_tz::Pacific::Apia,
            chrono_tz::Asia::Beirut,
            chrono_tz::America::New_York,
            chrono_tz::Asia::Kolkata,
            chrono_tz::Australia::Lord_Howe,
            chrono_tz::UTC,
        ];
        for tz in zones {
            let rows = client
                .query(
                    "SELECT outcome_local_midnight(d, $2) FROM unnest($1::date[]) WITH ORDINALITY AS x(d, i) ORDER BY i",
                    &[&days, &tz.name()],
                )
                .unwrap();
            assert_eq!(rows.len(), days.len());
            for (day, row) in days.iter().zip(&rows) {
                let at: DateTime<Utc> = row.get(0);
                assert_eq!(at, crate::period::local_midnight(*day, tz), "{tz} {day}");
            }
        }
    }

    #[test]
    fn imports_are_idempotent_and_all_or_nothing() {
        // Proves a second import adds nothing, appended lines alone are added, and a malformed
        // row is reported at FILE:LINE:COLUMN with nothing added.
        let Some(url) = pg::fresh("pg_unit_import") else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.csv");
        std::fs::write(
            &path,
            "series,timestamp,value,region\ns,2026-03-02,1.50,eu\ns,2026-03-03T10:00:00Z,2,us\n",
        )
        .unwrap();
        assert_eq!(import_csv(&path, &url).unwrap(), 2);
        assert_eq!(import_csv(&path, &url).unwrap(), 0);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(b"s,2026-03-04,3,eu\n").unwrap();
        assert_eq!(import_csv(&path, &url).unwrap(), 1);
        file.write_all(b"s,2026-03-05,4,eu\ns,2026-03-06,1e3,eu\n")
            .unwrap();
        let e = import_csv(&path, &url).unwrap_err();
        let absolute = std::fs::canonicalize(&path).unwrap().display().to_string();
        assert_eq!(e.location(), format!("{absolute}:6:3").as_str());
        let source = PostgresSource::open(&url).unwrap();
        assert_eq!(source.row_count().unwrap(), 3);
        // The value keeps its scale, and rows are named by their absolute path.
        let q = month("c", "s", 3, chrono_tz::UTC);
        let min = source.aggregate(&q, Aggregate::Min, None).unwrap();
        assert_eq!(min.value.map(|v| v.to_string()).as_deref(), Some("1.50"));
        let mut origins = Vec::new();
        source
            .scan(&q, &mut |o| {
                origins.push(o.origin.clone().unwrap_or_default());
                Ok(())
            })
            .unwrap();
        assert_eq!(
            origins,
            [
                format!("{absolute}:2"),
                format!("{absolute}:3"),
                format!("{absolute}:4")
            ]
        );
        // A filter on a declared dimension works; on another, it is the usual data error.
        let eu = [("region".to_owned(), "eu".to_owned())];
        let r = source
            .aggregate(&Query { filter: &eu, ..q }, Aggregate::Sum, None)
            .unwrap();
        assert_eq!(r.value, Some(Decimal::new(450, 2)));
        let plan = [("plan".to_owned(), "gold".to_owned())];
        let e = source
            .aggregate(&Query { filter: &plan, ..q }, Aggregate::Sum, None)
            .unwrap_err();
        assert_eq!(
            e.message(),
            "filter names dimension \"plan\", which the data lacks"
        );
        assert_eq!(e.location(), source.name());
    }

    #[test]
    fn a_time_finer_than_a_microsecond_is_refused() {
        // Proves an instant PostgreSQL would round is a data error at the row, and nothing is added.
        let Some(url) = pg::fresh("pg_unit_precision") else {
            return;
        };
        let fine = Stamp::parse("2026-03-02T10:00:00.000000001Z").unwrap();
        let mut o = Observation::new("s", fine, Decimal::ONE);
        o.origin = Some("f:2".into());
        let ok = Observation::new("s", Stamp::parse("2026-03-02").unwrap(), Decimal::ONE);
        let e = import_observations(&url, vec![ok, o]).unwrap_err();
        assert_eq!(e.location(), "f:2");
        assert!(e.message().contains("cannot be stored exactly"), "{e}");
        assert_eq!(PostgresSource::open(&url).unwrap().row_count().unwrap(), 0);
    }

    #[test]
    fn the_window_query_uses_the_indexes() {
        // Proves the aggregate statement reads a store of thousands of rows through its indexes.
        let Some(url) = pg::fresh("pg_unit_explain") else {
            return;
        };
        let rows = (0..6000).map(|i: i64| {
            let at = utc(2026, 1, 1) + Duration::hours(i);
            let mut o = Observation::new(
                ["a", "b", "c"][(i % 3) as usize],
                Stamp::At(at),
                Decimal::from(i),
            );
            o.customer = Some(format!("customer-{}", i % 50));
            o.id = (i % 4 == 0).then(|| format!("id-{}", i / 8));
            o
        });
        assert_eq!(import_observations(&url, rows).unwrap(), 6000);
        let mut client = pg::client(&url);
        client
            .batch_execute("ANALYZE outcome_observations")
            .unwrap();
        let q = Query {
            customer: "customer-7",
            ..month("", "a", 3, chrono_tz::UTC)
        };
        let w = Window::of(&q);
        let (sql, types) = Kind::Sums.sql();
        let statement = client
            .prepare_typed(&format!("EXPLAIN {sql}"), types)
            .unwrap();
        let filter = filter_json(&[]);
        let names: Vec<&str> = Vec::new();
        let of: Option<&str> = None;
        let plan: Vec<String> = client
            .query(
                &statement,
                &[
                    &q.series,
                    &w.customers,
                    &w.low_key,
                    &w.high_key,
                    &"UTC",
                    &w.start,
                    &w.end,
                    &w.first_day,
                    &w.after_day,
                    &w.as_of,
                    &filter,
                    &names,
                    &"store",
                    &of,
                ],
            )
            .unwrap()
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect();
        let plan = plan.join("\n");
        assert!(plan.contains("outcome_observations_window"), "{plan}");
        assert!(plan.contains("outcome_observations_versions"), "{plan}");
        let source = PostgresSource::open(&url).unwrap();
        let count = source.aggregate(&q, Aggregate::Count, None).unwrap();
        let fetched = PostgresSource::open(&url)
            .unwrap()
            .with_push_down(false)
            .aggregate(&q, Aggregate::Count, None)
            .unwrap();
        assert_eq!(count, fetched);
        assert!(count.count > 0);
    }

    #[test]
    fn an_unreachable_server_is_a_store_error_without_password() {
        // Proves opening and importing fail with a store error naming the URL without its password.
        let url = "postgres://outcome:secret@127.0.0.1:1/outcome";
        let e = PostgresSource::open(url).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::StoreUnavailable);
        assert_eq!(e.location(), "postgres://outcome:***@127.0.0.1:1/outcome");
        assert!(
            e.message().starts_with("cannot connect to PostgreSQL"),
            "{e}"
        );
        assert!(!e.to_string().contains("secret"), "{e}");
        let e = import_observations(url, Vec::new()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::StoreUnavailable);
    }

    #[test]
    fn filters_asking_two_values_of_one_dimension_match_nothing() {
        // Proves the filter object for `@>` cannot silently drop a contradictory condition.
        let f = |pairs: &[(&str, &str)]| {
            let owned: Vec<(String, String)> = pairs
                .iter()
                .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                .collect();
            filter_json(&owned).to_string()
        };
        assert_eq!(f(&[]), "{}");
        assert_eq!(f(&[("r", "eu"), ("r", "eu")]), "{\"r\":\"eu\"}");
        assert_eq!(f(&[("r", "eu"), ("r", "us")]), "[]");
    }

    #[test]
    fn origins_split_into_file_and_line() {
        // Proves FILE:LINE origins are stored as both parts, anything else as a file.
        assert_eq!(
            split_origin(Some("a:b.csv:12")),
            (Some("a:b.csv".into()), Some(12))
        );
        assert_eq!(split_origin(Some("gen")), (Some("gen".into()), None));
        assert_eq!(split_origin(Some("x:")), (Some("x:".into()), None));
        assert_eq!(split_origin(None), (None, None));
    }
}
