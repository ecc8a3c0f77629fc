//! Versions of observations that have an `id`: which one counts is known
//! only once the whole file is read, so every version of an id is kept
//! (compactly) until then.

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;

use crate::error::{Error, ErrorKind};
use crate::period::Stamp;

/// Identifies an observation: reader group (0: no customer), series, id.
pub(super) type Key = (u32, std::sync::Arc<str>, Box<str>);

/// One version of an observation with an id.
#[derive(Debug, Clone)]
pub(super) struct Version {
    pub line: u64,
    /// Its `recorded_at`, or its timestamp.
    pub recorded: Stamp,
    pub timestamp: Stamp,
    pub value: Decimal,
    pub void: bool,
    /// Dimension values, in the header's order.
    pub dims: Box<[Box<str>]>,
}

impl Version {
    /// Equal in every column as a reader in `tz` sees them.
    fn same_in(&self, other: &Version, tz: Tz) -> bool {
        self.value == other.value
            && (self.timestamp == other.timestamp
                || self.timestamp.instant(tz) == other.timestamp.instant(tz))
            && self.void == other.void
            && self.dims == other.dims
    }
}

/// What one id resolves to for readers in `tz` reading as of `as_of`.
pub(super) enum Resolved<'a> {
    /// No version was recorded by then.
    Nothing,
    /// This version counts (it may be void).
    Winner(&'a Version),
    /// Two different versions share the latest `recorded_at`: the line of
    /// the first, and the error.
    Conflict(u64, Error),
}

/// Resolves the versions of one id (kept in line order) as the in-memory
/// source does: the latest recorded by `as_of`, the first in the file of
/// those tied, all tied ones equal to it.
pub(super) fn resolve<'a>(
    versions: impl Iterator<Item = &'a Version> + Clone,
    tz: Tz,
    as_of: Option<DateTime<Utc>>,
    source: &str,
    series: &str,
    id: &str,
) -> Resolved<'a> {
    let eligible = |v: &Version| {
        let at = v.recorded.instant(tz);
        as_of.is_none_or(|t| at <= t).then_some(at)
    };
    let Some(latest) = versions.clone().filter_map(eligible).max() else {
        return Resolved::Nothing;
    };
    let mut tied = versions.filter(|v| eligible(v) == Some(latest));
    let Some(first) = tied.next() else {
        return Resolved::Nothing;
    };
    if let Some(other) = tied.find(|v| !first.same_in(v, tz)) {
        return Resolved::Conflict(
            first.line,
            Error::data(
                source,
                format!(
                    "two versions of {series} id {id:?} recorded at {} differ: {source}:{} and {source}:{}",
                    latest.to_rfc3339_opts(SecondsFormat::AutoSi, true),
                    first.line,
                    other.line
                ),
            )
            .with_kind(ErrorKind::ConflictingData),
        );
    }
    Resolved::Winner(first)
}
