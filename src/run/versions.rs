//! Versions of observations that have an `id`: which one counts is known
//! only once the whole file is read, so each id keeps the versions that can
//! still win for some reader, and nothing more.

use chrono::{DateTime, NaiveTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;

use crate::error::Error;
use crate::metric::memory::WIDEN_SECONDS;
use crate::period::Stamp;

/// Identifies an observation: reader group (0: no customer), series, id.
pub(super) type Key = (u32, Box<str>, Box<str>);

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

/// Seconds of a stamp's UTC reading (a date's UTC midnight).
fn utc_seconds(stamp: &Stamp) -> i64 {
    match stamp {
        Stamp::At(at) => at.timestamp(),
        Stamp::Date(d) => d.and_time(NaiveTime::MIN).and_utc().timestamp(),
    }
}

/// Whether `a` is later than `b` in every time zone.
fn later_everywhere(a: &Stamp, b: &Stamp) -> bool {
    match (a, b) {
        (Stamp::At(x), Stamp::At(y)) => x > y,
        // Local midnights of later dates are later in any one zone.
        (Stamp::Date(x), Stamp::Date(y)) => x > y,
        _ => utc_seconds(a) - WIDEN_SECONDS > utc_seconds(b) + WIDEN_SECONDS,
    }
}

/// Whether `a` is at or before `b` in every time zone.
fn not_after_everywhere(a: &Stamp, b: &Stamp) -> bool {
    match (a, b) {
        (Stamp::At(x), Stamp::At(y)) => x <= y,
        (Stamp::Date(x), Stamp::Date(y)) => x <= y,
        _ => utc_seconds(a) + WIDEN_SECONDS <= utc_seconds(b) - WIDEN_SECONDS,
    }
}

impl Version {
    /// Equal in every column as written, so equal for every reader.
    fn identical(&self, other: &Version) -> bool {
        self.recorded == other.recorded
            && self.timestamp == other.timestamp
            && self.value == other.value
            && self.void == other.void
            && self.dims == other.dims
    }

    /// Equal in every column as a reader in `tz` sees them.
    fn same_in(&self, other: &Version, tz: Tz) -> bool {
        self.value == other.value
            && (self.timestamp == other.timestamp
                || self.timestamp.instant(tz) == other.timestamp.instant(tz))
            && self.void == other.void
            && self.dims == other.dims
    }
}

/// Adds `v` to the versions kept for its id, in line order, dropping every
/// version that can no longer count for any reader: recorded after the
/// as-of everywhere, or older everywhere than a version known everywhere.
pub(super) fn keep(versions: &mut Vec<Version>, v: Version, as_of: Option<&Stamp>) {
    let known_everywhere = |w: &Version| as_of.is_none_or(|t| not_after_everywhere(&w.recorded, t));
    if as_of.is_some_and(|t| later_everywhere(&v.recorded, t)) {
        return;
    }
    if versions.iter().any(|w| {
        w.identical(&v) || (known_everywhere(w) && later_everywhere(&w.recorded, &v.recorded))
    }) {
        return;
    }
    if known_everywhere(&v) {
        versions.retain(|w| !later_everywhere(&v.recorded, &w.recorded));
    }
    versions.push(v);
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
    versions: &'a [Version],
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
    let Some(latest) = versions.iter().filter_map(eligible).max() else {
        return Resolved::Nothing;
    };
    let mut tied = versions.iter().filter(|v| eligible(v) == Some(latest));
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
            ),
        );
    }
    Resolved::Winner(first)
}
