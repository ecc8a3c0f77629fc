//! Periods: cadences, anchors, stubs, contract years and time zones.
//!
//! Periods are half-open `[start, end)` in local calendar dates of the
//! contract's time zone; their instants are the local midnights.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// How often a contract settles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cadence {
    /// Every month.
    Monthly,
    /// Every three months.
    Quarterly,
    /// Every six months.
    Semiannual,
    /// Every twelve months.
    Annual,
}

impl Cadence {
    /// The cadence's length in months.
    pub fn months(self) -> u32 {
        match self {
            Cadence::Monthly => 1,
            Cadence::Quarterly => 3,
            Cadence::Semiannual => 6,
            Cadence::Annual => 12,
        }
    }
}

/// One settlement period of a term.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Period {
    /// Position in the term, from 0.
    pub index: usize,
    /// First local date (inclusive).
    pub start: NaiveDate,
    /// Local date after the last (exclusive).
    pub end: NaiveDate,
    /// The instant of `start`'s local midnight.
    pub start_at: DateTime<Utc>,
    /// The instant of `end`'s local midnight.
    pub end_at: DateTime<Utc>,
    /// First date of the full period this one is cut from (equal to `start`
    /// unless this is a stub).
    pub full_start: NaiveDate,
    /// End of the full period this one is cut from.
    pub full_end: NaiveDate,
    /// The contract year holding this period, from 0.
    pub contract_year: usize,
}

impl Period {
    /// Whether the period is shorter than the full period it is cut from.
    pub fn is_stub(&self) -> bool {
        self.start != self.full_start || self.end != self.full_end
    }

    /// Calendar days in the period (`d` in the proration rule).
    pub fn days(&self) -> i64 {
        (self.end - self.start).num_days()
    }

    /// Calendar days in the full period it is cut from (`D`).
    pub fn full_days(&self) -> i64 {
        (self.full_end - self.full_start).num_days()
    }

    /// `START..END`, the form used in messages.
    pub fn label(&self) -> String {
        format!("{}..{}", self.start, self.end)
    }
}

/// A point in time as metric data writes it: an instant, or a local date
/// that means midnight in the reading contract's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stamp {
    /// An instant (RFC 3339 with an offset).
    At(DateTime<Utc>),
    /// A local date: midnight in the reader's time zone.
    Date(NaiveDate),
}

impl Stamp {
    /// The instant this stamp means in time zone `tz`.
    pub fn instant(&self, tz: Tz) -> DateTime<Utc> {
        match *self {
            Stamp::At(at) => at,
            Stamp::Date(date) => local_midnight(date, tz),
        }
    }

    /// Reads RFC 3339 (`2026-01-03T14:20:00Z`, `…+02:00`) or a date
    /// (`2026-01-03`).
    ///
    /// # Errors
    /// The message quotes the text and says what was expected.
    pub fn parse(text: &str) -> std::result::Result<Stamp, String> {
        if text.len() == 10 {
            if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
                return Ok(Stamp::Date(date));
            }
        }
        DateTime::parse_from_rfc3339(text)
            .map(|at| Stamp::At(at.with_timezone(&Utc)))
            .map_err(|_| {
                format!("malformed time {text:?}: expected RFC 3339 with an offset (2026-01-03T14:20:00Z) or a date (2026-01-03)")
            })
    }
}

/// The instant of local midnight at the start of `date` in `tz`. Where the
/// zone skips midnight, the first instant of that date; where midnight
/// occurs twice, the earlier.
pub fn local_midnight(date: NaiveDate, tz: Tz) -> DateTime<Utc> {
    use chrono::{LocalResult, TimeZone};
    let mut local = date.and_time(chrono::NaiveTime::MIN);
    // A zone skips at most a few hours; step by minutes until a local time
    // exists (no zone has a gap longer than a day).
    for _ in 0..(24 * 60) {
        match tz.from_local_datetime(&local) {
            LocalResult::Single(t) => return t.with_timezone(&Utc),
            LocalResult::Ambiguous(earlier, _) => return earlier.with_timezone(&Utc),
            LocalResult::None => local += chrono::Duration::minutes(1),
        }
    }
    // Unreachable for real zones; fall back to UTC midnight.
    date.and_time(chrono::NaiveTime::MIN).and_utc()
}
