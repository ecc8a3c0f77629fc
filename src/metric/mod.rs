//! Metric data: observations, the `MetricSource` trait, and its in-memory,
//! CSV, (with the `sqlite` feature) SQLite and (with the `postgres`
//! feature) PostgreSQL implementations.
//!
//! A source answers one question: what do the winning versions of a
//! customer's observations of one series, inside a window, reduce to? A
//! simple source hands rows to [`MetricSource::scan`] and lets the default
//! [`MetricSource::aggregate`] reduce them; a database overrides
//! `aggregate` and does the summing itself (push-down).

use std::cmp::Ordering;
use std::collections::HashSet;

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::period::Stamp;

pub(crate) mod csv_source;
pub(crate) mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) mod store_schema;

pub use csv_source::CsvSource;
pub use memory::MemorySource;
#[cfg(feature = "postgres")]
pub use postgres::PostgresSource;
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteSource, import_csv, import_observations};

/// How a metric reduces its window's observations to one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    /// The sum of values.
    Sum,
    /// The number of observations.
    Count,
    /// The sum divided by the count.
    Mean,
    /// The least value.
    Min,
    /// The greatest value.
    Max,
    /// The value with the earliest timestamp.
    First,
    /// The value with the latest timestamp.
    Last,
    /// The number of distinct non-empty values of a dimension.
    UniqueCount,
}

impl Aggregate {
    /// The name used in contract files.
    pub fn name(self) -> &'static str {
        match self {
            Aggregate::Sum => "sum",
            Aggregate::Count => "count",
            Aggregate::Mean => "mean",
            Aggregate::Min => "min",
            Aggregate::Max => "max",
            Aggregate::First => "first",
            Aggregate::Last => "last",
            Aggregate::UniqueCount => "unique_count",
        }
    }
}

/// Which observations a metric reduces in a period (also
/// [`contract::Window`](crate::contract::Window), where the format uses it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    /// The period itself.
    #[default]
    Period,
    /// From the start of the contract year to the end of the period.
    ContractYearToDate,
    /// From the start of the term to the end of the period.
    TermToDate,
}

/// One version of one observation, as read from a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// The series it belongs to.
    pub series: String,
    /// When it happened (a date means local midnight of the reading contract).
    pub timestamp: Stamp,
    /// The value.
    pub value: Decimal,
    /// Identity shared by the versions of one observation.
    pub id: Option<String>,
    /// When this version became known (default: the timestamp).
    pub recorded_at: Option<Stamp>,
    /// The customer; none or empty means every customer.
    pub customer: Option<String>,
    /// Whether this version removes the observation.
    pub void: bool,
    /// Other columns, as (name, value), sorted by name.
    pub dimensions: Vec<(String, String)>,
    /// Where the row came from (`FILE:LINE`), for messages.
    pub origin: Option<String>,
}

impl Observation {
    /// A plain observation: no id, no dimensions, recorded when it happened.
    pub fn new(series: impl Into<String>, timestamp: Stamp, value: Decimal) -> Observation {
        Observation {
            series: series.into(),
            timestamp,
            value,
            id: None,
            recorded_at: None,
            customer: None,
            void: false,
            dimensions: Vec::new(),
            origin: None,
        }
    }

    /// The value of dimension `name`, if the observation has it.
    pub fn dimension(&self, name: &str) -> Option<&str> {
        self.dimensions
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
            .map(|i| self.dimensions[i].1.as_str())
    }
}

/// What a window query asks of a source.
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    /// The contract's customer: rows of this customer and rows with no
    /// customer are read.
    pub customer: &'a str,
    /// The series.
    pub series: &'a str,
    /// First instant of the window (inclusive).
    pub start: DateTime<Utc>,
    /// End of the window (exclusive).
    pub end: DateTime<Utc>,
    /// The reading contract's time zone, for date-only stamps.
    pub timezone: Tz,
    /// Dimensions every observation must match, as (name, value).
    pub filter: &'a [(String, String)],
    /// Ignore versions recorded after this instant.
    pub as_of: Option<DateTime<Utc>>,
}

/// One group of a grouped charge: the observations whose value of
/// `dimension` is `value` (an observation without the dimension has the
/// empty value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group<'a> {
    /// The dimension the charge is grouped by.
    pub dimension: &'a str,
    /// The group's value of it.
    pub value: &'a str,
}

impl Group<'_> {
    /// Whether `obs` belongs to the group.
    pub fn holds(&self, obs: &Observation) -> bool {
        obs.dimension(self.dimension).unwrap_or("") == self.value
    }
}

/// A source seen through one group: what the default
/// [`MetricSource::aggregate_group`] reduces.
struct InGroup<'s, S: ?Sized> {
    source: &'s S,
    group: Group<'s>,
}

impl<S: MetricSource + ?Sized> MetricSource for InGroup<'_, S> {
    fn scan(
        &self,
        query: &Query<'_>,
        visit: &mut dyn FnMut(&Observation) -> Result<()>,
    ) -> Result<()> {
        self.source.scan_group(query, self.group, visit)
    }

    fn name(&self) -> &str {
        self.source.name()
    }
}

/// A window's reduction: the value (none for an empty window) and how many
/// observations it read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reduced {
    /// The aggregate, or none when no observation was read.
    pub value: Option<Decimal>,
    /// The number of observations read.
    pub count: u64,
}

/// Where metric data comes from.
///
/// Implement `scan` for a source that hands over rows; override `aggregate`
/// too when the source can reduce a window itself. The trait is object safe:
/// settlement takes `&dyn MetricSource`.
pub trait MetricSource: Send + Sync {
    /// Calls `visit` once for each observation that is the winning version
    /// of its id as of `query.as_of` (the latest `recorded_at` not after it;
    /// rows without id always win), is not void, belongs to the query's
    /// customer or to none, is of the series, lies in the window, and
    /// matches the filter. The order is the source's; it must be the same
    /// on every call.
    ///
    /// # Errors
    /// A data error when the filter names a dimension the data lacks, or
    /// when two different versions share the latest `recorded_at`.
    fn scan(
        &self,
        query: &Query<'_>,
        visit: &mut dyn FnMut(&Observation) -> Result<()>,
    ) -> Result<()>;

    /// Reduces the window with `aggregate`; `of` names the dimension for
    /// `unique_count`. The default scans and reduces with [`reduce`].
    ///
    /// # Errors
    /// As `scan`, and a data error when `first`/`last` find two
    /// observations at the same instant, or a sum overflows.
    fn aggregate(
        &self,
        query: &Query<'_>,
        aggregate: Aggregate,
        of: Option<&str>,
    ) -> Result<Reduced> {
        reduce(self, query, aggregate, of)
    }

    /// A short name for messages (a file path, a URL without password).
    fn name(&self) -> &str {
        "metrics"
    }

    /// Whether the data has the dimension `name` (a column of a CSV file,
    /// a dimension of some row). A grouped charge's dimension that the data
    /// lacks is a data error. The default says yes: a source that does not
    /// know its columns (a scenario) gives every observation an empty value
    /// of any dimension.
    ///
    /// # Errors
    /// A source that cannot be read.
    fn has_dimension(&self, name: &str) -> Result<bool> {
        let _ = name;
        Ok(true)
    }

    /// Adds to `groups` the value of `dimension` of every observation
    /// [`MetricSource::scan`] visits for `query` (an observation without the
    /// dimension has the empty value): the groups of a charge grouped by
    /// it. The default scans.
    ///
    /// # Errors
    /// As `scan`.
    fn groups(
        &self,
        query: &Query<'_>,
        dimension: &str,
        groups: &mut std::collections::BTreeSet<String>,
    ) -> Result<()> {
        self.scan(query, &mut |obs| {
            let value = obs.dimension(dimension).unwrap_or("");
            if !groups.contains(value) {
                groups.insert(value.to_owned());
            }
            Ok(())
        })
    }

    /// Like [`MetricSource::scan`], visiting only the observations of
    /// `group`: those whose value of its dimension is its value (an
    /// observation without the dimension has the empty value).
    ///
    /// # Errors
    /// As `scan`.
    fn scan_group(
        &self,
        query: &Query<'_>,
        group: Group<'_>,
        visit: &mut dyn FnMut(&Observation) -> Result<()>,
    ) -> Result<()> {
        self.scan(query, &mut |obs| {
            if group.holds(obs) { visit(obs) } else { Ok(()) }
        })
    }

    /// Like [`MetricSource::aggregate`] over the observations of `group`
    /// only. The default reduces [`MetricSource::scan_group`] with
    /// [`reduce`].
    ///
    /// # Errors
    /// As `aggregate`.
    fn aggregate_group(
        &self,
        query: &Query<'_>,
        group: Group<'_>,
        aggregate: Aggregate,
        of: Option<&str>,
    ) -> Result<Reduced> {
        reduce(
            &InGroup {
                source: self,
                group,
            },
            query,
            aggregate,
            of,
        )
    }

    /// Checks every row a contract of `customer` in zone `timezone` reads
    /// as of `as_of` (its customer's rows and those without customer), of
    /// every series, whether or not a metric reads it: two different
    /// versions of one id sharing the latest `recorded_at` are a data error
    /// that fails the contract, like a malformed row. Settlement calls it
    /// once before the first period. The default finds nothing to check (a
    /// source that resolves versions elsewhere, a scenario).
    ///
    /// # Errors
    /// A data error naming the first such tie, in the source's order.
    fn check_versions(
        &self,
        customer: &str,
        timezone: Tz,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<()> {
        let _ = (customer, timezone, as_of);
        Ok(())
    }
}

/// Reduces the observations `source.scan` visits for `query` with
/// `aggregate` (`of` names the dimension for `unique_count`).
///
/// The result does not depend on the order of the scan: `min`, `max`,
/// `first` and `last` break ties between numerically equal values by a
/// fixed order (value, id, scale, origin by file and line number), and sums
/// are exact whatever their order (kept in 256 bits, rounded once at the
/// end). The count in the result is the number of observations read,
/// whatever the aggregate; the value is none when no observation was read.
///
/// # Errors
/// As [`MetricSource::aggregate`]: a data error, located at the source's
/// name, when a sum overflows or `first`/`last` find two different
/// observations at the same instant; a usage error for `unique_count`
/// without `of`.
pub fn reduce<S: MetricSource + ?Sized>(
    source: &S,
    query: &Query<'_>,
    aggregate: Aggregate,
    of: Option<&str>,
) -> Result<Reduced> {
    let mut count: u64 = 0;
    let value = match aggregate {
        Aggregate::Sum | Aggregate::Mean => {
            // Exact whatever the order of the scan, rounded once.
            let mut sum = crate::money::ExactSum::default();
            source.scan(query, &mut |obs| {
                count += 1;
                sum.add(obs.value);
                Ok(())
            })?;
            sum_or_mean(aggregate, &sum, count, source.name(), query.series)?
        }
        Aggregate::Count => {
            source.scan(query, &mut |_| {
                count += 1;
                Ok(())
            })?;
            (count > 0).then(|| Decimal::from(count))
        }
        Aggregate::Min | Aggregate::Max => {
            let want = if aggregate == Aggregate::Min {
                Ordering::Less
            } else {
                Ordering::Greater
            };
            let mut best: Option<Decimal> = None;
            source.scan(query, &mut |obs| {
                count += 1;
                best = match best {
                    Some(b) if cmp_exact(obs.value, b) != want => Some(b),
                    _ => Some(obs.value),
                };
                Ok(())
            })?;
            best
        }
        Aggregate::First | Aggregate::Last => {
            let want = if aggregate == Aggregate::First {
                Ordering::Less
            } else {
                Ordering::Greater
            };
            let mut extreme: Option<DateTime<Utc>> = None;
            // The least and greatest observation at the extreme instant, by
            // (value, id, scale, origin): they differ in value or id exactly
            // when some two observations there do.
            let mut low = Candidate::default();
            let mut high = Candidate::default();
            source.scan(query, &mut |obs| {
                count += 1;
                let at = obs.timestamp.instant(query.timezone);
                match extreme.map(|e| at.cmp(&e)) {
                    Some(Ordering::Equal) => {
                        if low.cmp_obs(obs) == Ordering::Greater {
                            low.set(obs);
                        }
                        if high.cmp_obs(obs) == Ordering::Less {
                            high.set(obs);
                        }
                    }
                    Some(o) if o != want => {}
                    _ => {
                        extreme = Some(at);
                        low.set(obs);
                        high.set(obs);
                    }
                }
                Ok(())
            })?;
            if let Some(at) = extreme {
                if low.value != high.value || low.id() != high.id() {
                    return Err(Error::data(
                        source.name(),
                        format!(
                            "{}: two observations of {} at {}: {} and {}",
                            aggregate.name(),
                            query.series,
                            at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
                            low.origin(),
                            high.origin()
                        ),
                    )
                    .with_kind(ErrorKind::ConflictingData));
                }
            }
            extreme.map(|_| low.value)
        }
        Aggregate::UniqueCount => {
            let of =
                of.ok_or_else(|| Error::usage("unique_count needs the dimension to count (of)"))?;
            let mut seen: HashSet<String> = HashSet::new();
            source.scan(query, &mut |obs| {
                count += 1;
                if let Some(v) = obs.dimension(of) {
                    if !v.is_empty() && !seen.contains(v) {
                        seen.insert(v.to_owned());
                    }
                }
                Ok(())
            })?;
            (count > 0).then(|| Decimal::from(seen.len() as u64))
        }
    };
    Ok(Reduced { value, count })
}

/// The reduction of one group of a database source: a group with a value
/// is one more filter, answered by `source.aggregate` like any window when
/// `push_down`; the group `""` (an empty value or none), or any group
/// without `push_down`, is reduced from the window's rows. So is a group
/// whose dimension the store lacks (no row is in it, where the filter
/// would be an error), found when the pushed-down query fails.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn aggregate_group_in_sql<S: MetricSource + ?Sized>(
    source: &S,
    push_down: bool,
    query: &Query<'_>,
    group: Group<'_>,
    aggregate: Aggregate,
    of: Option<&str>,
) -> Result<Reduced> {
    if group.value.is_empty() || !push_down {
        return reduce(&InGroup { source, group }, query, aggregate, of);
    }
    let mut filter = query.filter.to_vec();
    filter.push((group.dimension.to_owned(), group.value.to_owned()));
    let pushed = source.aggregate(
        &Query {
            filter: &filter,
            ..*query
        },
        aggregate,
        of,
    );
    match pushed {
        Err(_) if !source.has_dimension(group.dimension)? => {
            reduce(&InGroup { source, group }, query, aggregate, of)
        }
        answer => answer,
    }
}

/// That a query names a dimension the data lacks: `what` names the field
/// (`filter`, or the aggregate counting it). `known` says whether the data
/// has the dimension.
pub(crate) fn check_dimension(source: &str, name: &str, what: &str, known: bool) -> Result<()> {
    if known {
        Ok(())
    } else {
        Err(Error::data(
            source,
            format!("{what} names dimension {name:?}, which the data lacks"),
        ))
    }
}

/// The `sum` or `mean` of `count` observations summing to `sum`: none when
/// there is none; errors located at `source`, naming `series`.
pub(crate) fn sum_or_mean(
    aggregate: Aggregate,
    sum: &crate::money::ExactSum,
    count: u64,
    source: &str,
    series: &str,
) -> Result<Option<Decimal>> {
    sum_or_mean_of(aggregate, sum.value(), count, source, series)
}

/// As [`sum_or_mean`], for a sum already rounded once (none: it
/// overflowed), as a database's exact sum hands it over.
pub(crate) fn sum_or_mean_of(
    aggregate: Aggregate,
    sum: Option<Decimal>,
    count: u64,
    source: &str,
    series: &str,
) -> Result<Option<Decimal>> {
    let sum = sum.ok_or_else(|| {
        Error::data(
            source,
            format!("sum of {series} overflows a 96-bit decimal"),
        )
        .with_kind(ErrorKind::Overflow)
    })?;
    if count == 0 {
        Ok(None)
    } else if aggregate == Aggregate::Sum {
        Ok(Some(sum))
    } else {
        // Division rounds to the 28 significant digits a Decimal holds.
        sum.checked_div(Decimal::from(count))
            .map(Some)
            .ok_or_else(|| Error::data(source, format!("mean of {series} cannot be computed")))
    }
}

/// Orders decimals by value, then numerically equal ones by scale, so a
/// choice between `1.0` and `1.00` does not depend on which came first.
fn cmp_exact(a: Decimal, b: Decimal) -> Ordering {
    a.cmp(&b).then(a.scale().cmp(&b.scale()))
}

/// An observation kept by `first`/`last`, with buffers reused across rows
/// so that a scan allocates only when an id or origin grows.
#[derive(Default)]
struct Candidate {
    value: Decimal,
    has_id: bool,
    id: String,
    has_origin: bool,
    origin: String,
}

impl Candidate {
    fn set(&mut self, obs: &Observation) {
        self.value = obs.value;
        self.has_id = obs.id.is_some();
        self.id.clear();
        self.id.push_str(obs.id.as_deref().unwrap_or(""));
        self.has_origin = obs.origin.is_some();
        self.origin.clear();
        self.origin.push_str(obs.origin.as_deref().unwrap_or(""));
    }

    fn id(&self) -> Option<&str> {
        self.has_id.then_some(self.id.as_str())
    }

    fn origin(&self) -> &str {
        if self.has_origin {
            &self.origin
        } else {
            "a row without origin"
        }
    }

    /// Compares this candidate with `obs` by (value, id, scale, origin).
    fn cmp_obs(&self, obs: &Observation) -> Ordering {
        self.value
            .cmp(&obs.value)
            .then_with(|| self.id().cmp(&obs.id.as_deref()))
            .then_with(|| self.value.scale().cmp(&obs.value.scale()))
            .then_with(|| {
                cmp_origin(
                    self.has_origin.then_some(self.origin.as_str()),
                    obs.origin.as_deref(),
                )
            })
    }
}

/// Orders origins `FILE:LINE` by file, then line number (so line 9 comes
/// before line 10); an origin of another shape by its text.
fn cmp_origin(a: Option<&str>, b: Option<&str>) -> Ordering {
    fn split(o: &str) -> Option<(&str, u64)> {
        o.rsplit_once(':')
            .and_then(|(file, line)| line.parse::<u64>().ok().map(|n| (file, n)))
    }
    match (a, b) {
        (Some(x), Some(y)) => match (split(x), split(y)) {
            (Some(p), Some(q)) => p.cmp(&q),
            _ => x.cmp(y),
        },
        _ => a.cmp(&b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ErrorKind, Location};
    use chrono::TimeZone;
    use std::str::FromStr;

    fn at(d: u32, h: u32) -> Stamp {
        Stamp::At(Utc.with_ymd_and_hms(2026, 3, d, h, 0, 0).unwrap())
    }

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn obs(stamp: Stamp, value: &str, origin: &str) -> Observation {
        let mut o = Observation::new("s", stamp, dec(value));
        o.origin = Some(origin.to_owned());
        o
    }

    fn march() -> Query<'static> {
        Query {
            customer: "c",
            series: "s",
            start: Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap(),
            end: Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap(),
            timezone: chrono_tz::UTC,
            filter: &[],
            as_of: None,
        }
    }

    fn run(rows: Vec<Observation>, aggregate: Aggregate, of: Option<&str>) -> Result<Reduced> {
        let source = MemorySource::from_observations(rows)?;
        source.aggregate(&march(), aggregate, of)
    }

    fn value(rows: Vec<Observation>, aggregate: Aggregate) -> Option<String> {
        run(rows, aggregate, None)
            .unwrap()
            .value
            .map(|v| v.to_string())
    }

    fn sample() -> Vec<Observation> {
        vec![
            obs(at(5, 0), "2.5", "f:2"),
            obs(at(2, 0), "-1", "f:3"),
            obs(at(9, 0), "4.00", "f:4"),
            // Outside the window: read by nothing here.
            obs(
                at(31, 0)
                    .instant(chrono_tz::UTC)
                    .checked_add_signed(chrono::Duration::days(1))
                    .map(Stamp::At)
                    .unwrap(),
                "100",
                "f:5",
            ),
        ]
    }

    #[test]
    fn each_aggregate_reduces_the_window() {
        // Proves sum, count, mean, min, max, first and last over the same rows.
        assert_eq!(value(sample(), Aggregate::Sum).as_deref(), Some("5.50"));
        assert_eq!(value(sample(), Aggregate::Count).as_deref(), Some("3"));
        assert_eq!(
            value(sample(), Aggregate::Mean).as_deref(),
            Some("1.8333333333333333333333333333")
        );
        assert_eq!(value(sample(), Aggregate::Min).as_deref(), Some("-1"));
        assert_eq!(value(sample(), Aggregate::Max).as_deref(), Some("4.00"));
        assert_eq!(value(sample(), Aggregate::First).as_deref(), Some("-1"));
        assert_eq!(value(sample(), Aggregate::Last).as_deref(), Some("4.00"));
        assert_eq!(run(sample(), Aggregate::Max, None).unwrap().count, 3);
    }

    #[test]
    fn an_empty_window_has_no_value() {
        // Proves every aggregate reports none and a zero count when nothing is read.
        for aggregate in [
            Aggregate::Sum,
            Aggregate::Count,
            Aggregate::Mean,
            Aggregate::Min,
            Aggregate::First,
        ] {
            assert_eq!(
                run(Vec::new(), aggregate, None).unwrap(),
                Reduced {
                    value: None,
                    count: 0
                }
            );
        }
    }

    #[test]
    fn first_and_last_reject_different_observations_at_one_instant() {
        // Proves a tie at the earliest/latest instant names both rows, whatever the push order.
        let rows = vec![
            obs(at(2, 0), "1", "f:2"),
            obs(at(9, 0), "5", "f:3"),
            obs(at(2, 0), "2", "f:4"),
        ];
        let e = run(rows.clone(), Aggregate::First, None).unwrap_err();
        assert_eq!(e.location(), "memory");
        assert_eq!(
            e.message(),
            "first: two observations of s at 2026-03-02T00:00:00Z: f:2 and f:4"
        );
        let reversed: Vec<Observation> = rows.into_iter().rev().collect();
        assert_eq!(
            run(reversed.clone(), Aggregate::First, None).unwrap_err(),
            e
        );
        // The latest instant has one observation, so last is fine.
        assert_eq!(value(reversed, Aggregate::Last).as_deref(), Some("5"));

        let mut a = obs(at(9, 0), "5", "f:2");
        a.id = Some("x".into());
        let b = obs(at(9, 0), "5", "f:3");
        let e = run(vec![a, b], Aggregate::Last, None).unwrap_err();
        assert_eq!(
            e.message(),
            "last: two observations of s at 2026-03-09T00:00:00Z: f:3 and f:2"
        );
    }

    #[test]
    fn first_accepts_equal_observations_at_one_instant() {
        // Proves two rows with the same value and no id at the same instant are no tie error.
        let rows = vec![obs(at(2, 0), "1.0", "f:2"), obs(at(2, 0), "1.00", "f:3")];
        assert_eq!(
            value(rows.clone(), Aggregate::First).as_deref(),
            Some("1.0")
        );
        let reversed: Vec<Observation> = rows.into_iter().rev().collect();
        assert_eq!(value(reversed, Aggregate::First).as_deref(), Some("1.0"));
    }

    #[test]
    fn min_and_max_do_not_depend_on_order_for_equal_values() {
        // Proves numerically equal values of different scale give the same result in any order.
        let rows = vec![obs(at(2, 0), "3.0", "f:2"), obs(at(3, 0), "3.00", "f:3")];
        let reversed: Vec<Observation> = rows.iter().cloned().rev().collect();
        assert_eq!(
            value(rows.clone(), Aggregate::Min),
            value(reversed.clone(), Aggregate::Min)
        );
        assert_eq!(value(rows, Aggregate::Max), value(reversed, Aggregate::Max));
    }

    #[test]
    fn unique_count_counts_distinct_non_empty_values() {
        // Proves unique_count compares exact text, skips empty values and counts rows read.
        let users = ["ann", "bob", "ann", "", "Ann"];
        let rows: Vec<Observation> = users
            .iter()
            .enumerate()
            .map(|(i, u)| {
                let mut o = obs(at(i as u32 + 1, 0), "1", "f");
                o.dimensions = vec![("user".into(), (*u).into())];
                o
            })
            .collect();
        let r = run(rows.clone(), Aggregate::UniqueCount, Some("user")).unwrap();
        assert_eq!(
            r,
            Reduced {
                value: Some(Decimal::from(3)),
                count: 5
            }
        );

        let e = run(rows.clone(), Aggregate::UniqueCount, Some("country")).unwrap_err();
        assert_eq!(
            e.message(),
            "unique_count names dimension \"country\", which the data lacks"
        );
        assert!(matches!(
            run(rows, Aggregate::UniqueCount, None),
            Err(e) if e.kind() == ErrorKind::InvalidArgument
        ));
    }

    #[test]
    fn a_sum_that_overflows_is_a_data_error() {
        // Proves overflow is reported with the series, never a panic.
        let rows = vec![
            obs(at(2, 0), &Decimal::MAX.to_string(), "f:2"),
            obs(at(3, 0), "1", "f:3"),
        ];
        let e = run(rows, Aggregate::Sum, None).unwrap_err();
        assert_eq!(e.message(), "sum of s overflows a 96-bit decimal");
        assert!(matches!(e.location(), Location::Data(_)));
    }
}
