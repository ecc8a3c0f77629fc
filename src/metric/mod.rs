//! Metric data: observations, the `MetricSource` trait, and its in-memory
//! and CSV implementations.
//!
//! A source answers one question: what do the winning versions of a
//! customer's observations of one series, inside a window, reduce to? A
//! simple source hands rows to [`MetricSource::scan`] and lets the default
//! [`MetricSource::aggregate`] reduce them; a database overrides
//! `aggregate` and does the summing itself (push-down).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::period::Stamp;

mod csv_source;
mod memory;

pub use csv_source::CsvSource;
pub use memory::MemorySource;

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
    fn scan(&self, query: &Query<'_>, visit: &mut dyn FnMut(&Observation) -> Result<()>) -> Result<()>;

    /// Reduces the window with `aggregate`; `of` names the dimension for
    /// `unique_count`. The default scans and reduces with [`reduce`].
    ///
    /// # Errors
    /// As `scan`, and a data error when `first`/`last` find two
    /// observations at the same instant, or a sum overflows.
    fn aggregate(&self, query: &Query<'_>, aggregate: Aggregate, of: Option<&str>) -> Result<Reduced> {
        reduce(self, query, aggregate, of)
    }

    /// A short name for messages (a file path, a URL without password).
    fn name(&self) -> &str {
        "metrics"
    }
}

/// Reduces the observations `source.scan` visits for `query` with
/// `aggregate` (`of` names the dimension for `unique_count`). SKELETON.
///
/// # Errors
/// As [`MetricSource::aggregate`].
pub fn reduce<S: MetricSource + ?Sized>(
    source: &S,
    query: &Query<'_>,
    aggregate: Aggregate,
    of: Option<&str>,
) -> Result<Reduced> {
    let _ = (source, query, aggregate, of);
    Ok(Reduced { value: None, count: 0 })
}
