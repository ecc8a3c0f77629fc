//! An in-memory metric source.
//!
//! Observations are kept in buckets by series and customer (rows without a
//! customer share one bucket per series, read by every query of that
//! series), so a query touches only its customer's rows and the shared ones.
//! Inside a bucket an index orders rows by an approximate UTC key — an
//! instant, or a date's UTC midnight — and a query binary-searches its
//! window widened by two days (more than any zone's offset), then checks
//! each row exactly in the query's time zone. Versions of one id are linked
//! in a ring, so resolving which version wins costs only the versions of
//! that id.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::OnceLock;

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;

use super::{Aggregate, MetricSource, Observation, Query, Reduced, reduce};
use crate::error::{Error, ErrorKind, Result};
use crate::period::Stamp;

/// How far a date-only stamp's local midnight can be from its UTC
/// midnight, with room to spare: zone offsets stay within ±14 hours, and a
/// zone that skips midnight moves it by at most a few hours more.
pub(crate) const WIDEN_SECONDS: i64 = 2 * 24 * 60 * 60;

/// Observations held in memory, indexed by customer and series.
///
/// Rows with the same customer, series and id are versions of one
/// observation; which one counts is decided at query time, because it
/// depends on the query's `as_of` and time zone (see [`MetricSource::scan`]).
///
/// Building with [`MemorySource::from_observations`] checks the rows and
/// indexes them at once; [`MemorySource::push`] appends a row and leaves
/// its bucket to be re-indexed by the next query that reads it, so
/// alternating pushes and queries on one large bucket re-sorts it each time.
///
/// # Example
/// ```
/// use chrono::{TimeZone, Utc};
/// use outcome_billing::MetricSource;
/// use outcome_billing::metric::{Aggregate, MemorySource, Observation, Query};
/// use outcome_billing::period::Stamp;
/// use rust_decimal::Decimal;
///
/// let at = Utc.with_ymd_and_hms(2026, 3, 2, 12, 0, 0).unwrap();
/// let source = MemorySource::from_observations(vec![
///     Observation::new("payments", Stamp::At(at), Decimal::new(1050, 2)),
/// ])?;
/// let query = Query {
///     customer: "shopco",
///     series: "payments",
///     start: Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap(),
///     end: Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap(),
///     timezone: chrono_tz::UTC,
///     filter: &[],
///     as_of: None,
/// };
/// let sum = source.aggregate(&query, Aggregate::Sum, None)?;
/// assert_eq!(sum.value, Some(Decimal::new(1050, 2)));
/// # Ok::<(), outcome_billing::Error>(())
/// ```
pub struct MemorySource {
    name: String,
    series: HashMap<String, SeriesBuckets>,
    dimensions: BTreeSet<String>,
    len: usize,
}

/// The buckets of one series: the shared rows and each customer's.
#[derive(Default)]
struct SeriesBuckets {
    shared: Bucket,
    customers: HashMap<String, Bucket>,
}

/// The rows of one (customer, series), in insertion order, and their index.
#[derive(Default)]
struct Bucket {
    rows: Vec<Row>,
    /// Built on first use after a push; a push clears it.
    index: OnceLock<Index>,
}

struct Row {
    obs: Observation,
    /// The approximate UTC key the index sorts by, in seconds.
    key: i64,
    /// Position in the order rows were pushed into the source.
    seq: u64,
}

struct Index {
    /// (key, row) sorted; rows with equal keys stay in insertion order.
    order: Vec<(i64, u32)>,
    /// For a row with an id, the next version of that id (a ring in
    /// increasing row order); for any other row, the row itself.
    next_version: Vec<u32>,
}

impl MemorySource {
    /// An empty source named `memory`.
    pub fn new() -> MemorySource {
        MemorySource {
            name: "memory".to_owned(),
            series: HashMap::new(),
            dimensions: BTreeSet::new(),
            len: 0,
        }
    }

    /// The same source, named `name` in messages.
    pub fn with_name(mut self, name: impl Into<String>) -> MemorySource {
        self.name = name.into();
        self
    }

    /// A source holding `observations`, checked and indexed.
    ///
    /// # Errors
    /// A data error, located at the row's origin (or the source's name),
    /// for an empty series or a dimension named twice in one row.
    pub fn from_observations(observations: Vec<Observation>) -> Result<MemorySource> {
        let mut source = MemorySource::new();
        for mut obs in observations {
            let at = || obs.origin.clone().unwrap_or_else(|| source.name.clone());
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
            source.push(obs);
        }
        source.build_indexes();
        Ok(source)
    }

    /// Adds one observation (one version of it, when it has an id).
    ///
    /// Its dimensions are sorted by name if they are not; unlike
    /// [`MemorySource::from_observations`], nothing else is checked.
    pub fn push(&mut self, mut obs: Observation) {
        if !obs.dimensions.is_sorted_by(|a, b| a.0 <= b.0) {
            obs.dimensions.sort_by(|a, b| a.0.cmp(&b.0));
        }
        for (name, _) in &obs.dimensions {
            if !self.dimensions.contains(name) {
                self.dimensions.insert(name.clone());
            }
        }
        let key = approximate_key(&obs.timestamp);
        let seq = self.len as u64;
        let buckets = match self.series.get_mut(&obs.series) {
            Some(b) => b,
            None => self.series.entry(obs.series.clone()).or_default(),
        };
        let bucket = match obs.customer.as_deref().filter(|c| !c.is_empty()) {
            None => &mut buckets.shared,
            Some(customer) => match buckets.customers.get_mut(customer) {
                Some(b) => b,
                None => buckets.customers.entry(customer.to_owned()).or_default(),
            },
        };
        bucket.rows.push(Row { obs, key, seq });
        bucket.index = OnceLock::new();
        self.len += 1;
    }

    /// The number of rows held (every version counts).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the source holds no row.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The series names held, sorted.
    pub fn series_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.series.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// Records that the data has dimension `name` even if no row has it
    /// yet (a CSV column), so filters on it are not errors.
    pub(crate) fn declare_dimension(&mut self, name: &str) {
        if !self.dimensions.contains(name) {
            self.dimensions.insert(name.to_owned());
        }
    }

    /// Builds every bucket's index now, so no query pays for it.
    pub(crate) fn build_indexes(&self) {
        for buckets in self.series.values() {
            buckets.shared.index();
            for bucket in buckets.customers.values() {
                bucket.index();
            }
        }
    }

    fn check_dimension(&self, name: &str, what: &str) -> Result<()> {
        super::check_dimension(&self.name, name, what, self.dimensions.contains(name))
    }

    /// How a row is named in messages: its origin, or its push position.
    fn describe(row: &Row) -> String {
        match &row.obs.origin {
            Some(origin) => origin.clone(),
            None => format!("pushed row {}", row.seq + 1),
        }
    }

    /// Whether row `i` of `bucket` is the version that counts for `query`:
    /// recorded by `as_of`, the latest such version of its id (the first
    /// pushed of equal latest versions), and not void.
    fn counts(&self, bucket: &Bucket, index: &Index, i: usize, query: &Query<'_>) -> Result<bool> {
        let rows = &bucket.rows;
        let tz = query.timezone;
        let eligible = |at: DateTime<Utc>| query.as_of.is_none_or(|t| at <= t);
        let row = &rows[i];
        let recorded = recorded_at(&row.obs, tz);
        if !eligible(recorded) {
            return Ok(false);
        }
        let next = |j: usize| index.next_version[j] as usize;
        if next(i) == i {
            return Ok(!row.obs.void);
        }
        let mut j = next(i);
        while j != i {
            let at = recorded_at(&rows[j].obs, tz);
            if eligible(at) && at > recorded {
                return Ok(false);
            }
            j = next(j);
        }
        // Row i is among the latest versions; the first pushed of them
        // represents them all, and all must be equal to it.
        let mut first = i;
        j = next(i);
        while j != i {
            if j < first && recorded_at(&rows[j].obs, tz) == recorded {
                first = j;
            }
            j = next(j);
        }
        j = next(first);
        while j != first {
            if recorded_at(&rows[j].obs, tz) == recorded
                && !same_version(&rows[first].obs, &rows[j].obs, tz)
            {
                let obs = &rows[first].obs;
                return Err(Error::data(
                    self.name.as_str(),
                    format!(
                        "two versions of {} id {:?} recorded at {} differ: {} and {}",
                        obs.series,
                        obs.id.as_deref().unwrap_or(""),
                        recorded.to_rfc3339_opts(SecondsFormat::AutoSi, true),
                        Self::describe(&rows[first]),
                        Self::describe(&rows[j]),
                    ),
                )
                .with_kind(ErrorKind::ConflictingData));
            }
            j = next(j);
        }
        Ok(first == i && !row.obs.void)
    }
}

impl MemorySource {
    /// The first conflicting tie among the versions that a contract of
    /// `customer` in zone `tz` reads (its customer's rows and the rows
    /// without customer, of every series), by the push order of the tie's
    /// first row; see [`MetricSource::check_versions`].
    fn first_conflict(
        &self,
        customer: &str,
        tz: Tz,
        as_of: Option<DateTime<Utc>>,
    ) -> Option<(u64, Error)> {
        let mut found: Option<(u64, Error)> = None;
        for (series, buckets) in &self.series {
            let own = match customer {
                "" => None,
                c => buckets.customers.get(c),
            };
            for bucket in own.into_iter().chain([&buckets.shared]) {
                let query = Query {
                    customer,
                    series,
                    start: DateTime::<Utc>::MIN_UTC,
                    end: DateTime::<Utc>::MAX_UTC,
                    timezone: tz,
                    filter: &[],
                    as_of,
                };
                let index = bucket.index();
                for (i, row) in bucket.rows.iter().enumerate() {
                    if row.obs.id.is_none() || found.as_ref().is_some_and(|(s, _)| *s <= row.seq) {
                        continue;
                    }
                    // Rows are visited in push order, so the first row of a
                    // group that reports the tie is the tie's first row.
                    if let Err(e) = self.counts(bucket, index, i, &query) {
                        found = Some((row.seq, e));
                    }
                }
            }
        }
        found
    }
}

impl Default for MemorySource {
    fn default() -> MemorySource {
        MemorySource::new()
    }
}

impl fmt::Debug for MemorySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemorySource")
            .field("name", &self.name)
            .field("len", &self.len)
            .field("series", &self.series_names())
            .field("dimensions", &self.dimensions)
            .finish()
    }
}

impl Bucket {
    fn index(&self) -> &Index {
        self.index.get_or_init(|| {
            // Row positions are stored as u32: four billion rows of one
            // customer and series do not fit in memory anyway.
            assert!(
                u32::try_from(self.rows.len()).is_ok(),
                "bucket too large to index"
            );
            let mut order: Vec<(i64, u32)> = self
                .rows
                .iter()
                .enumerate()
                .map(|(i, r)| (r.key, i as u32))
                .collect();
            order.sort_unstable();
            let mut next_version: Vec<u32> = (0..self.rows.len() as u32).collect();
            let mut with_id: Vec<u32> = (0..self.rows.len() as u32)
                .filter(|&i| self.rows[i as usize].obs.id.is_some())
                .collect();
            let id = |i: u32| self.rows[i as usize].obs.id.as_deref();
            with_id.sort_unstable_by(|&a, &b| id(a).cmp(&id(b)).then(a.cmp(&b)));
            for run in with_id.chunk_by(|&a, &b| id(a) == id(b)) {
                for (k, &i) in run.iter().enumerate() {
                    next_version[i as usize] = run[(k + 1) % run.len()];
                }
            }
            Index {
                order,
                next_version,
            }
        })
    }

    /// The index entries whose key may lie in the query's window.
    fn window<'a>(&self, index: &'a Index, query: &Query<'_>) -> &'a [(i64, u32)] {
        let low = query.start.timestamp().saturating_sub(WIDEN_SECONDS);
        let high = query.end.timestamp().saturating_add(WIDEN_SECONDS);
        let from = index.order.partition_point(|&(k, _)| k < low);
        let to = index.order.partition_point(|&(k, _)| k < high);
        &index.order[from..to.max(from)]
    }
}

impl MetricSource for MemorySource {
    fn scan(
        &self,
        query: &Query<'_>,
        visit: &mut dyn FnMut(&Observation) -> Result<()>,
    ) -> Result<()> {
        for (name, _) in query.filter {
            self.check_dimension(name, "filter")?;
        }
        let Some(buckets) = self.series.get(query.series) else {
            return Ok(());
        };
        let empty = Bucket::default();
        let own = match query.customer {
            "" => &empty,
            customer => buckets.customers.get(customer).unwrap_or(&empty),
        };
        let shared = &buckets.shared;
        let (own_index, shared_index) = (own.index(), shared.index());
        let (mut a, mut b) = (
            own.window(own_index, query),
            shared.window(shared_index, query),
        );
        let dates = DateWindow::of(query);
        // Merge the two runs by (key, push order), so the scan order is
        // the same on every call.
        loop {
            let take_own = match (a.first(), b.first()) {
                (None, None) => return Ok(()),
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some(&(ka, ia)), Some(&(kb, ib))) => {
                    (ka, own.rows[ia as usize].seq) < (kb, shared.rows[ib as usize].seq)
                }
            };
            let (bucket, index, i) = if take_own {
                let i = a[0].1 as usize;
                a = &a[1..];
                (own, own_index, i)
            } else {
                let i = b[0].1 as usize;
                b = &b[1..];
                (shared, shared_index, i)
            };
            let obs = &bucket.rows[i].obs;
            if !dates.holds(&obs.timestamp, query) {
                continue;
            }
            if self.counts(bucket, index, i, query)? && matches(obs, query.filter) {
                visit(obs)?;
            }
        }
    }

    fn aggregate(
        &self,
        query: &Query<'_>,
        aggregate: Aggregate,
        of: Option<&str>,
    ) -> Result<Reduced> {
        if let Some(of) = of {
            self.check_dimension(of, aggregate.name())?;
        }
        reduce(self, query, aggregate, of)
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn has_dimension(&self, name: &str) -> Result<bool> {
        Ok(self.dimensions.contains(name))
    }

    fn aggregate_group(
        &self,
        query: &Query<'_>,
        group: super::Group<'_>,
        aggregate: Aggregate,
        of: Option<&str>,
    ) -> Result<Reduced> {
        if let Some(of) = of {
            self.check_dimension(of, aggregate.name())?;
        }
        reduce(
            &super::InGroup {
                source: self,
                group,
            },
            query,
            aggregate,
            of,
        )
    }

    fn check_versions(
        &self,
        customer: &str,
        timezone: Tz,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<()> {
        match self.first_conflict(customer, timezone, as_of) {
            Some((_, e)) => Err(e),
            None => Ok(()),
        }
    }
}

/// A query's window as local dates, so a date-only stamp is placed without
/// converting it to an instant: `local_midnight` is increasing in the date,
/// so `local_midnight(d)` lies in `[start, end)` exactly when `first <= d <
/// after`. (The SQLite and PostgreSQL stores place dates in SQL with these
/// bounds.)
pub(crate) struct DateWindow {
    /// The first date whose local midnight is at or after the start.
    pub(crate) first: chrono::NaiveDate,
    /// The first date whose local midnight is at or after the end.
    pub(crate) after: chrono::NaiveDate,
}

impl DateWindow {
    pub(crate) fn of(query: &Query<'_>) -> DateWindow {
        let first_at_or_after = |at: DateTime<Utc>| {
            let midnight = |d| crate::period::local_midnight(d, query.timezone);
            let mut d = at.with_timezone(&query.timezone).date_naive();
            if midnight(d) < at {
                d = d.succ_opt().unwrap_or(d);
            }
            // A skipped date shares its midnight with the next one.
            while let Some(p) = d.pred_opt().filter(|&p| midnight(p) >= at) {
                d = p;
            }
            d
        };
        DateWindow {
            first: first_at_or_after(query.start),
            after: first_at_or_after(query.end),
        }
    }

    fn holds(&self, stamp: &Stamp, query: &Query<'_>) -> bool {
        match *stamp {
            Stamp::At(at) => at >= query.start && at < query.end,
            Stamp::Date(d) => d >= self.first && d < self.after,
        }
    }
}

/// A stamp's sort key: its instant, or for a date its UTC midnight, in
/// seconds.
pub(super) fn approximate_key(stamp: &Stamp) -> i64 {
    match stamp {
        Stamp::At(at) => at.timestamp(),
        Stamp::Date(date) => date.and_time(chrono::NaiveTime::MIN).and_utc().timestamp(),
    }
}

/// When a version became known: its `recorded_at`, or its timestamp.
fn recorded_at(obs: &Observation, tz: Tz) -> DateTime<Utc> {
    obs.recorded_at.unwrap_or(obs.timestamp).instant(tz)
}

/// Whether two versions sharing their customer, series, id and recorded
/// instant are equal in every column after parsing, as a contract in `tz`
/// reads them (so they count once): values as numbers, timestamps as the
/// instants they mean there.
pub(crate) fn same_version(a: &Observation, b: &Observation, tz: Tz) -> bool {
    a.value == b.value
        && (a.timestamp == b.timestamp || a.timestamp.instant(tz) == b.timestamp.instant(tz))
        && a.void == b.void
        && a.dimensions == b.dimensions
}

/// Whether `obs` has every dimension of `filter` with exactly its value.
fn matches(obs: &Observation, filter: &[(String, String)]) -> bool {
    filter
        .iter()
        .all(|(name, value)| obs.dimension(name) == Some(value.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, TimeZone};
    use proptest::prelude::*;
    use rust_decimal::Decimal;

    fn utc(m: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, m, d, h, 0, 0).unwrap()
    }

    /// A version of observation `id` of series `s`, customer `c`.
    fn version(
        id: &str,
        at: DateTime<Utc>,
        value: i64,
        recorded: DateTime<Utc>,
        origin: &str,
    ) -> Observation {
        let mut o = Observation::new("s", Stamp::At(at), Decimal::from(value));
        o.id = Some(id.to_owned());
        o.recorded_at = Some(Stamp::At(recorded));
        o.customer = Some("c".to_owned());
        o.origin = Some(origin.to_owned());
        o
    }

    fn plain(customer: Option<&str>, at: Stamp, value: i64) -> Observation {
        let mut o = Observation::new("s", at, Decimal::from(value));
        o.customer = customer.map(str::to_owned);
        o
    }

    fn month(m: u32) -> Query<'static> {
        Query {
            customer: "c",
            series: "s",
            start: utc(m, 1, 0),
            end: utc(m + 1, 1, 0),
            timezone: chrono_tz::UTC,
            filter: &[],
            as_of: None,
        }
    }

    fn sum(source: &MemorySource, query: &Query<'_>) -> Result<Option<Decimal>> {
        source
            .aggregate(query, Aggregate::Sum, None)
            .map(|r| r.value)
    }

    fn visited(source: &MemorySource, query: &Query<'_>) -> Vec<String> {
        let mut seen = Vec::new();
        source
            .scan(query, &mut |o| {
                seen.push(format!(
                    "{}={}",
                    o.origin.as_deref().unwrap_or("-"),
                    o.value
                ));
                Ok(())
            })
            .unwrap();
        seen
    }

    #[test]
    fn the_latest_recorded_version_wins() {
        // Proves a correction replaces the value it corrects, never adding to it.
        let source = MemorySource::from_observations(vec![
            version("a", utc(3, 5, 0), 10, utc(3, 6, 0), "f:2"),
            version("a", utc(3, 5, 0), 12, utc(3, 9, 0), "f:3"),
            version("b", utc(3, 7, 0), 1, utc(3, 7, 0), "f:4"),
        ])
        .unwrap();
        assert_eq!(visited(&source, &month(3)), ["f:3=12", "f:4=1"]);
        assert_eq!(sum(&source, &month(3)).unwrap(), Some(Decimal::from(13)));
    }

    #[test]
    fn a_correction_moves_an_observation_between_periods() {
        // Proves the winner's timestamp decides the period, and the loser counts nowhere.
        let source = MemorySource::from_observations(vec![
            version("a", utc(3, 31, 23), 10, utc(3, 31, 23), "f:2"),
            version("a", utc(4, 1, 1), 10, utc(4, 2, 0), "f:3"),
        ])
        .unwrap();
        assert_eq!(sum(&source, &month(3)).unwrap(), None);
        assert_eq!(sum(&source, &month(4)).unwrap(), Some(Decimal::from(10)));
        // As of before the correction, the first version holds in March.
        let early = Query {
            as_of: Some(utc(4, 1, 12)),
            ..month(3)
        };
        assert_eq!(sum(&source, &early).unwrap(), Some(Decimal::from(10)));
        let early_april = Query {
            as_of: Some(utc(4, 1, 12)),
            ..month(4)
        };
        assert_eq!(sum(&source, &early_april).unwrap(), None);
    }

    #[test]
    fn as_of_ignores_versions_recorded_later() {
        // Proves as_of picks the older version, and hides an observation recorded after it.
        let source = MemorySource::from_observations(vec![
            version("a", utc(3, 5, 0), 10, utc(3, 6, 0), "f:2"),
            version("a", utc(3, 5, 0), 12, utc(3, 9, 0), "f:3"),
            plain(Some("c"), Stamp::At(utc(3, 20, 0)), 100),
        ])
        .unwrap();
        let at = |t| Query {
            as_of: Some(t),
            ..month(3)
        };
        assert_eq!(
            sum(&source, &at(utc(3, 9, 0))).unwrap(),
            Some(Decimal::from(12))
        );
        assert_eq!(
            sum(&source, &at(utc(3, 8, 0))).unwrap(),
            Some(Decimal::from(10))
        );
        assert_eq!(sum(&source, &at(utc(3, 5, 12))).unwrap(), None);
        // A row without recorded_at is known at its timestamp.
        assert_eq!(
            sum(&source, &at(utc(3, 21, 0))).unwrap(),
            Some(Decimal::from(112))
        );
    }

    #[test]
    fn void_removes_and_a_later_version_restores() {
        // Proves a void winner removes the observation and a later normal version restores it.
        let mut voided = version("a", utc(3, 5, 0), 10, utc(3, 7, 0), "f:3");
        voided.void = true;
        let source = MemorySource::from_observations(vec![
            version("a", utc(3, 5, 0), 10, utc(3, 6, 0), "f:2"),
            voided,
            version("a", utc(3, 5, 0), 10, utc(3, 8, 0), "f:4"),
        ])
        .unwrap();
        let at = |t| Query {
            as_of: Some(t),
            ..month(3)
        };
        assert_eq!(
            sum(&source, &at(utc(3, 6, 12))).unwrap(),
            Some(Decimal::from(10))
        );
        assert_eq!(sum(&source, &at(utc(3, 7, 12))).unwrap(), None);
        assert_eq!(sum(&source, &month(3)).unwrap(), Some(Decimal::from(10)));
        // A void row without id removes only itself.
        let mut lone = plain(Some("c"), Stamp::At(utc(3, 9, 0)), 5);
        lone.void = true;
        let source = MemorySource::from_observations(vec![lone]).unwrap();
        assert_eq!(
            source
                .aggregate(&month(3), Aggregate::Count, None)
                .unwrap()
                .count,
            0
        );
    }

    #[test]
    fn equal_versions_at_the_latest_instant_count_once() {
        // Proves duplicate rows (equal after parsing) are one observation.
        let mut twin = version("a", utc(3, 5, 0), 10, utc(3, 6, 0), "f:3");
        twin.value = Decimal::new(1000, 2);
        let source = MemorySource::from_observations(vec![
            version("a", utc(3, 5, 0), 10, utc(3, 6, 0), "f:2"),
            twin,
            version("a", utc(3, 5, 0), 10, utc(3, 6, 0), "f:4"),
        ])
        .unwrap();
        assert_eq!(visited(&source, &month(3)), ["f:2=10"]);
    }

    #[test]
    fn different_versions_at_the_latest_instant_are_an_error() {
        // Proves a tie between different versions names both lines.
        let source = MemorySource::from_observations(vec![
            version("a", utc(3, 5, 0), 10, utc(3, 6, 0), "f:2"),
            version("a", utc(3, 5, 0), 11, utc(3, 6, 0), "f:3"),
        ])
        .unwrap();
        let e = sum(&source, &month(3)).unwrap_err();
        assert_eq!(e.location(), "memory");
        assert_eq!(
            e.message(),
            "two versions of s id \"a\" recorded at 2026-03-06T00:00:00Z differ: f:2 and f:3"
        );
        // An older tie is harmless once a later version exists.
        let mut rows = vec![
            version("a", utc(3, 5, 0), 10, utc(3, 6, 0), "f:2"),
            version("a", utc(3, 5, 0), 11, utc(3, 6, 0), "f:3"),
            version("a", utc(3, 5, 0), 12, utc(3, 7, 0), "f:4"),
        ];
        let source = MemorySource::from_observations(rows.clone()).unwrap();
        assert_eq!(sum(&source, &month(3)).unwrap(), Some(Decimal::from(12)));
        // Without origins, rows are named by push position.
        for r in &mut rows {
            r.origin = None;
        }
        let source = MemorySource::from_observations(rows).unwrap();
        let e = sum(
            &source,
            &Query {
                as_of: Some(utc(3, 6, 0)),
                ..month(3)
            },
        )
        .unwrap_err();
        assert!(
            e.message()
                .ends_with("differ: pushed row 1 and pushed row 2"),
            "{}",
            e.message()
        );
    }

    #[test]
    fn a_query_reads_its_customer_and_shared_rows_only() {
        // Proves customer matching: own rows, empty or absent customer, never other customers.
        let t = Stamp::At(utc(3, 5, 0));
        let mut other = version("a", utc(3, 5, 0), 1000, utc(3, 5, 0), "f:9");
        other.customer = Some("other".into());
        let source = MemorySource::from_observations(vec![
            plain(Some("c"), t, 1),
            plain(Some(""), t, 10),
            plain(None, t, 100),
            plain(Some("other"), t, 1000),
            version("a", utc(3, 5, 0), 10000, utc(3, 5, 0), "f:8"),
            // Same id, other customer: a different observation, not a version.
            other,
        ])
        .unwrap();
        assert_eq!(sum(&source, &month(3)).unwrap(), Some(Decimal::from(10111)));
        let nobody = Query {
            customer: "",
            ..month(3)
        };
        assert_eq!(sum(&source, &nobody).unwrap(), Some(Decimal::from(110)));
        let other = Query {
            customer: "other",
            ..month(3)
        };
        assert_eq!(sum(&source, &other).unwrap(), Some(Decimal::from(2110)));
        let unknown = Query {
            series: "nope",
            ..month(3)
        };
        assert_eq!(sum(&source, &unknown).unwrap(), None);
    }

    #[test]
    fn filters_match_exact_dimension_values() {
        // Proves filters need every named dimension with exactly its value.
        let row = |region: Option<&str>, tier: &str, value| {
            let mut o = plain(Some("c"), Stamp::At(utc(3, 5, 0)), value);
            o.dimensions = vec![("tier".into(), tier.into())];
            if let Some(r) = region {
                o.dimensions.push(("region".into(), r.into()));
            }
            o
        };
        let source = MemorySource::from_observations(vec![
            row(Some("eu"), "gold", 1),
            row(Some("EU"), "gold", 10),
            row(Some("eu"), "silver", 100),
            row(None, "gold", 1000),
            row(Some(""), "gold", 10000),
        ])
        .unwrap();
        let eu = [("region".to_owned(), "eu".to_owned())];
        assert_eq!(
            sum(
                &source,
                &Query {
                    filter: &eu,
                    ..month(3)
                }
            )
            .unwrap(),
            Some(Decimal::from(101))
        );
        let eu_gold = [
            ("region".to_owned(), "eu".to_owned()),
            ("tier".to_owned(), "gold".to_owned()),
        ];
        assert_eq!(
            sum(
                &source,
                &Query {
                    filter: &eu_gold,
                    ..month(3)
                }
            )
            .unwrap(),
            Some(Decimal::from(1))
        );
        let empty = [("region".to_owned(), String::new())];
        assert_eq!(
            sum(
                &source,
                &Query {
                    filter: &empty,
                    ..month(3)
                }
            )
            .unwrap(),
            Some(Decimal::from(10000))
        );
    }

    #[test]
    fn a_filter_on_a_dimension_the_data_lacks_is_an_error() {
        // Proves an unknown dimension fails even over an empty window.
        let source = MemorySource::from_observations(vec![plain(None, Stamp::At(utc(3, 5, 0)), 1)])
            .unwrap()
            .with_name("data.csv");
        let f = [("region".to_owned(), "eu".to_owned())];
        let e = sum(
            &source,
            &Query {
                filter: &f,
                ..month(7)
            },
        )
        .unwrap_err();
        assert_eq!(e.location(), "data.csv");
        assert_eq!(
            e.message(),
            "filter names dimension \"region\", which the data lacks"
        );
    }

    #[test]
    fn dates_are_local_midnights_of_the_reading_zone() {
        // Proves date-only stamps fall in the window of the query's zone (New York).
        let day = |m, d| Stamp::Date(NaiveDate::from_ymd_opt(2026, m, d).unwrap());
        let mut late_recorded = plain(None, day(3, 2), 100);
        late_recorded.id = Some("x".into());
        late_recorded.recorded_at = Some(day(4, 1));
        let source = MemorySource::from_observations(vec![
            plain(None, day(2, 28), 1),
            plain(None, day(3, 1), 10),
            plain(None, day(3, 31), 1000),
            plain(None, day(4, 1), 10000),
            late_recorded,
        ])
        .unwrap();
        let ny: Tz = "America/New_York".parse().unwrap();
        let start = crate::period::local_midnight(NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(), ny);
        let end = crate::period::local_midnight(NaiveDate::from_ymd_opt(2026, 4, 1).unwrap(), ny);
        let q = Query {
            start,
            end,
            timezone: ny,
            ..month(3)
        };
        assert_eq!(sum(&source, &q).unwrap(), Some(Decimal::from(1110)));
        // recorded_at 2026-04-01 is New York midnight (04:00Z): not yet known at 03:59Z.
        let before = Query {
            as_of: Some(Utc.with_ymd_and_hms(2026, 4, 1, 3, 59, 0).unwrap()),
            ..q
        };
        assert_eq!(sum(&source, &before).unwrap(), Some(Decimal::from(1010)));
        let after = Query {
            as_of: Some(Utc.with_ymd_and_hms(2026, 4, 1, 4, 0, 0).unwrap()),
            ..q
        };
        assert_eq!(sum(&source, &after).unwrap(), Some(Decimal::from(1110)));
        // The same dates read in Tokyo land in the same local March.
        let tokyo: Tz = "Asia/Tokyo".parse().unwrap();
        let start =
            crate::period::local_midnight(NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(), tokyo);
        let end =
            crate::period::local_midnight(NaiveDate::from_ymd_opt(2026, 4, 1).unwrap(), tokyo);
        let q = Query {
            start,
            end,
            timezone: tokyo,
            ..month(3)
        };
        assert_eq!(sum(&source, &q).unwrap(), Some(Decimal::from(1110)));
    }

    #[test]
    fn scan_order_is_by_time_then_push_order() {
        // Proves the scan order is deterministic across customer and shared buckets.
        let mut rows = Vec::new();
        for (i, (customer, day)) in [(Some("c"), 9), (None, 3), (Some("c"), 3), (None, 1)]
            .into_iter()
            .enumerate()
        {
            let mut o = plain(customer, Stamp::At(utc(3, day, 0)), i as i64);
            o.origin = Some(format!("f:{}", i + 2));
            rows.push(o);
        }
        let source = MemorySource::from_observations(rows).unwrap();
        assert_eq!(
            visited(&source, &month(3)),
            ["f:5=3", "f:3=1", "f:4=2", "f:2=0"]
        );
        assert_eq!(source.len(), 4);
        assert_eq!(source.series_names(), ["s"]);
    }

    #[test]
    fn pushes_after_a_query_are_seen_by_the_next_query() {
        // Proves push invalidates a bucket's index.
        let mut source = MemorySource::new();
        source.push(plain(None, Stamp::At(utc(3, 9, 0)), 1));
        assert_eq!(sum(&source, &month(3)).unwrap(), Some(Decimal::from(1)));
        source.push(plain(None, Stamp::At(utc(3, 2, 0)), 2));
        assert_eq!(sum(&source, &month(3)).unwrap(), Some(Decimal::from(3)));
    }

    #[test]
    fn from_observations_checks_rows() {
        // Proves an empty series and a repeated dimension are data errors at the row.
        let mut o = plain(None, Stamp::At(utc(3, 9, 0)), 1);
        o.series.clear();
        o.origin = Some("f:7".into());
        let e = MemorySource::from_observations(vec![o]).unwrap_err();
        assert_eq!(e.location(), "f:7");
        let mut o = plain(None, Stamp::At(utc(3, 9, 0)), 1);
        o.dimensions = vec![
            ("b".into(), "1".into()),
            ("a".into(), "x".into()),
            ("b".into(), "2".into()),
        ];
        let e = MemorySource::from_observations(vec![o]).unwrap_err();
        assert_eq!(e.message(), "dimension \"b\" is named twice");
    }

    /// Rows over a few days around March and April, with ids, versions,
    /// voids, customers and date-only stamps.
    fn arbitrary_rows() -> impl Strategy<Value = Vec<Observation>> {
        let row = (
            0u8..4,
            0u32..50,
            -1000i64..1000,
            0u32..3,
            0u32..24,
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(
                |(id, hours, cents, customer, recorded, void, date, shared)| {
                    let at = utc(3, 30, 0) + chrono::Duration::hours(i64::from(hours));
                    let stamp = if date {
                        Stamp::Date(at.date_naive())
                    } else {
                        Stamp::At(at)
                    };
                    let mut o = Observation::new("s", stamp, Decimal::new(cents, 2));
                    o.id = (id > 0).then(|| format!("id{id}"));
                    o.recorded_at = Some(Stamp::At(utc(4, 2, recorded)));
                    o.customer = if shared {
                        None
                    } else {
                        Some(["c", "d", ""][customer as usize].to_owned())
                    };
                    o.void = void;
                    o
                },
            );
        proptest::collection::vec(row, 0..40)
    }

    proptest! {
        #[test]
        fn sum_and_count_do_not_depend_on_push_order(
            (rows, shuffled) in arbitrary_rows().prop_flat_map(|rows| (Just(rows.clone()), Just(rows).prop_shuffle())),
            as_of_hour in proptest::option::of(0u32..24),
        ) {
            // Proves the window's sum and count are the same whatever order rows were pushed in.
            let ny: Tz = "America/New_York".parse().unwrap();
            let a = MemorySource::from_observations(rows).unwrap();
            let b = MemorySource::from_observations(shuffled).unwrap();
            for (start, end) in [(utc(3, 1, 0), utc(4, 1, 4)), (utc(4, 1, 4), utc(5, 1, 4))] {
                let q = Query {
                    start,
                    end,
                    timezone: ny,
                    as_of: as_of_hour.map(|h| utc(4, 2, h)),
                    ..month(3)
                };
                for aggregate in [Aggregate::Sum, Aggregate::Count] {
                    let (x, y) = (a.aggregate(&q, aggregate, None), b.aggregate(&q, aggregate, None));
                    match (x, y) {
                        (Ok(x), Ok(y)) => {
                            prop_assert_eq!(x.count, y.count);
                            prop_assert_eq!(x.value.map(|v| v.to_string()), y.value.map(|v| v.to_string()));
                        }
                        (Err(_), Err(_)) => {}
                        (x, y) => prop_assert!(false, "{:?} vs {:?}", x, y),
                    }
                }
            }
        }
    }

    #[test]
    fn date_window_agrees_with_converting_each_date() {
        // The date shortcut in `scan` places every date exactly where its
        // local midnight falls, across DST changes and skipped midnights.
        use chrono::NaiveDate;
        let zones: [chrono_tz::Tz; 4] = [
            chrono_tz::America::New_York,
            chrono_tz::America::Sao_Paulo,
            chrono_tz::Pacific::Apia,
            chrono_tz::UTC,
        ];
        let day0 = NaiveDate::from_ymd_opt(2011, 12, 20).unwrap();
        for tz in zones {
            for (a, b) in [(0i64, 31i64), (3, 4), (10, 40)] {
                let start = crate::period::local_midnight(day0 + chrono::Days::new(a as u64), tz);
                let end = crate::period::local_midnight(day0 + chrono::Days::new(b as u64), tz)
                    + chrono::Duration::hours(5);
                let query = Query {
                    customer: "",
                    series: "s",
                    start,
                    end,
                    timezone: tz,
                    filter: &[],
                    as_of: None,
                };
                let window = DateWindow::of(&query);
                for k in -5..60 {
                    let d = day0 + chrono::Duration::days(k);
                    let at = crate::period::local_midnight(d, tz);
                    let want = at >= start && at < end;
                    assert_eq!(window.holds(&Stamp::Date(d), &query), want, "{tz} {d}");
                }
            }
        }
    }
}
