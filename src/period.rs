//! Periods: cadences, anchors, stubs, contract years and time zones.
//!
//! Periods are half-open `[start, end)` in local calendar dates of the
//! contract's time zone; their instants are the local midnights.

use std::fmt;
use std::ops::Range;

use chrono::{
    DateTime, Datelike, Months, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Utc,
};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The most periods a schedule may hold (a monthly term of 8,333 years). A
/// mistyped year such as `20260` would otherwise lay hundreds of thousands
/// of periods before anyone notices.
pub const PERIODS_MAX: usize = 100_000;

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

    /// The cadence's name as contracts write it (`monthly`).
    pub fn name(self) -> &'static str {
        match self {
            Cadence::Monthly => "monthly",
            Cadence::Quarterly => "quarterly",
            Cadence::Semiannual => "semiannual",
            Cadence::Annual => "annual",
        }
    }
}

impl fmt::Display for Cadence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
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
    pub fn parse(text: &str) -> Result<Stamp> {
        let bytes = text.as_bytes();
        if is_date_shape(text) {
            if let Some(date) = digits_date(bytes) {
                return Ok(Stamp::Date(date));
            }
        }
        // The common shape of machine-written data, `2026-01-03T14:20:00Z`,
        // read without the general parser; anything else (offsets,
        // fractions, leap seconds, a bad date) goes to chrono's RFC 3339.
        if bytes.len() == 20
            && bytes[10] == b'T'
            && bytes[19] == b'Z'
            && is_date_shape(&text[..10])
            && bytes[13] == b':'
            && bytes[16] == b':'
        {
            let two = |i: usize| -> Option<u32> {
                let (a, b) = (bytes[i].wrapping_sub(b'0'), bytes[i + 1].wrapping_sub(b'0'));
                (a < 10 && b < 10).then(|| u32::from(a) * 10 + u32::from(b))
            };
            let time = two(11)
                .zip(two(14))
                .zip(two(17))
                .and_then(|((h, m), s)| NaiveTime::from_hms_opt(h, m, s));
            if let Some((date, time)) = digits_date(bytes).zip(time) {
                return Ok(Stamp::At(date.and_time(time).and_utc()));
            }
        }
        DateTime::parse_from_rfc3339(text)
            .map(|at| Stamp::At(at.with_timezone(&Utc)))
            .map_err(|_| {
                Error::usage(format!("malformed time {text:?}: expected RFC 3339 with an offset (2026-01-03T14:20:00Z) or a date (2026-01-03)"))
            })
    }
}

/// The date of `DDDD-DD-DD` at the start of `bytes` (its shape checked by
/// [`is_date_shape`]), if it is a real date.
fn digits_date(bytes: &[u8]) -> Option<NaiveDate> {
    let n = |range: std::ops::Range<usize>| {
        bytes[range]
            .iter()
            .fold(0u32, |acc, b| acc * 10 + u32::from(b - b'0'))
    };
    NaiveDate::from_ymd_opt(i32::try_from(n(0..4)).ok()?, n(5..7), n(8..10))
}

/// Whether `text` is exactly `DDDD-DD-DD` in ASCII digits: chrono's `%Y`
/// alone would also take a sign or a short year.
fn is_date_shape(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        })
}

/// Reads an as-of instant: RFC 3339 with an offset, or a date meaning local
/// midnight in `tz` (the contract's time zone).
///
/// # Errors
/// The message quotes the text and says what was expected.
///
/// # Example
/// ```
/// use outcome_billing::period::parse_as_of;
/// let tz = chrono_tz::America::New_York;
/// assert_eq!(parse_as_of("2026-03-01", tz)?.to_rfc3339(), "2026-03-01T05:00:00+00:00");
/// assert_eq!(parse_as_of("2026-03-01T12:00:00+01:00", tz)?.to_rfc3339(), "2026-03-01T11:00:00+00:00");
/// # Ok::<(), outcome_billing::Error>(())
/// ```
pub fn parse_as_of(text: &str, tz: Tz) -> Result<DateTime<Utc>> {
    Stamp::parse(text).map(|stamp| stamp.instant(tz))
}

/// The instant of local midnight at the start of `date` in `tz`. Where the
/// zone skips midnight, the first instant of that date (the end of the gap,
/// to the second, even when the gap ends at an odd local time such as
/// 00:44:30, or when the whole date is skipped); where midnight occurs
/// twice, the earlier.
///
/// # Example
/// ```
/// use outcome_billing::period::local_midnight;
/// use chrono::NaiveDate;
/// let date = NaiveDate::from_ymd_opt(2018, 11, 4).ok_or("bad date")?;
/// // São Paulo skipped from 00:00 to 01:00 that day.
/// let at = local_midnight(date, chrono_tz::America::Sao_Paulo);
/// assert_eq!(at.to_rfc3339(), "2018-11-04T03:00:00+00:00");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn local_midnight(date: NaiveDate, tz: Tz) -> DateTime<Utc> {
    use chrono::LocalResult;
    let midnight = date.and_time(NaiveTime::MIN);
    match tz.from_local_datetime(&midnight) {
        LocalResult::Single(at) => at.with_timezone(&Utc),
        LocalResult::Ambiguous(earlier, _) => earlier.with_timezone(&Utc),
        LocalResult::None => first_instant_at_or_after(midnight, tz),
    }
}

/// The earliest instant whose local time in `tz` is at or after `local`,
/// for a `local` that falls in a gap. The transition that opened the gap is
/// found by bisection over whole seconds (zone transitions fall on whole
/// seconds).
fn first_instant_at_or_after(local: NaiveDateTime, tz: Tz) -> DateTime<Utc> {
    // UTC offsets lie within ±26 h and a gap skips at most a day, so the
    // instant sought is within two days of `local` read as UTC.
    const WINDOW_SECONDS: i64 = 2 * 24 * 3600;
    let as_utc = local.and_utc();
    let local_of = |seconds: i64| -> Option<NaiveDateTime> {
        let utc = DateTime::from_timestamp(seconds, 0)?.naive_utc();
        let offset = tz.offset_from_utc_datetime(&utc).fix();
        utc.checked_add_signed(chrono::Duration::seconds(i64::from(
            offset.local_minus_utc(),
        )))
    };
    let mut before = as_utc.timestamp() - WINDOW_SECONDS;
    let mut after = as_utc.timestamp() + WINDOW_SECONDS;
    // Only at the very ends of chrono's range can these fail; UTC midnight
    // is then as good an answer as any.
    match (local_of(before), local_of(after)) {
        (Some(b), Some(a)) if b < local && a >= local => {}
        _ => return as_utc,
    }
    // Invariant: local_of(before) < local <= local_of(after).
    while after - before > 1 {
        let middle = before + (after - before) / 2;
        match local_of(middle) {
            Some(at) if at >= local => after = middle,
            Some(_) => before = middle,
            None => return as_utc,
        }
    }
    DateTime::from_timestamp(after, 0).unwrap_or(as_utc)
}

/// `date` moved by `months` calendar months (back when negative), clamped
/// to the end of the month: Jan 31 + 1 is Feb 28 (29 in a leap year), and
/// Jan 31 + 2 is Mar 31 because every step is taken from `date` itself.
/// `None` when the result is outside chrono's date range.
///
/// # Example
/// ```
/// use outcome_billing::period::add_months;
/// use chrono::NaiveDate;
/// let jan31 = NaiveDate::from_ymd_opt(2026, 1, 31).ok_or("bad date")?;
/// assert_eq!(add_months(jan31, 1), NaiveDate::from_ymd_opt(2026, 2, 28));
/// assert_eq!(add_months(jan31, 2), NaiveDate::from_ymd_opt(2026, 3, 31));
/// assert_eq!(add_months(jan31, -2), NaiveDate::from_ymd_opt(2025, 11, 30));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn add_months(date: NaiveDate, months: i64) -> Option<NaiveDate> {
    let magnitude = Months::new(u32::try_from(months.unsigned_abs()).ok()?);
    if months >= 0 {
        date.checked_add_months(magnitude)
    } else {
        date.checked_sub_months(magnitude)
    }
}

/// Calendar months from `from`'s month to `to`'s month, ignoring days.
fn months_between(from: NaiveDate, to: NaiveDate) -> i64 {
    (i64::from(to.year()) - i64::from(from.year())) * 12 + i64::from(to.month0())
        - i64::from(from.month0())
}

/// The settlement periods of a term, laid by cadence (and anchor) in a time
/// zone, with their contract years.
///
/// Built once per contract; every other part of settlement asks it which
/// period holds an instant, which periods form a contract year, and where
/// stubs are.
///
/// # Example
/// ```
/// use outcome_billing::period::{Cadence, Schedule};
/// use chrono::NaiveDate;
/// let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).ok_or("bad date");
/// let schedule = Schedule::new(
///     date(2026, 1, 15)?,
///     date(2027, 1, 15)?,
///     Cadence::Monthly,
///     Some(date(2026, 2, 1)?),
///     chrono_tz::UTC,
/// )?;
/// let first = &schedule.periods()[0];
/// assert_eq!(first.label(), "2026-01-15..2026-02-01");
/// assert_eq!((first.days(), first.full_days()), (17, 31));
/// assert_eq!(schedule.len(), 13);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    start: NaiveDate,
    end: NaiveDate,
    cadence: Cadence,
    anchor: Option<NaiveDate>,
    tz: Tz,
    /// Never empty: `new` rejects an empty term.
    periods: Vec<Period>,
    /// Index of the first period of each contract year; starts with 0 and
    /// strictly increases.
    year_starts: Vec<usize>,
    /// The periods as laid before mid-period cuts, and where each part
    /// stands; `None` when no period is cut (kept out of the way, so an
    /// uncut schedule is as it always was).
    cut: Option<Box<Cut>>,
}

/// What cutting periods left behind: the periods as laid and each period's
/// place among the parts of the period it came from.
#[derive(Debug, Clone, PartialEq)]
struct Cut {
    /// The periods as laid, before any cut.
    laid: Vec<Period>,
    /// Per period (after cuts): its part, `None` for a period not cut.
    parts: Vec<Option<Part>>,
    /// Per period (after cuts): the index of the laid period it is or was
    /// cut from.
    laid_of: Vec<usize>,
    /// How many laid periods were cut.
    cut_periods: usize,
}

/// Where a period stands among the parts of a period cut by mid-period
/// amendments (see [`Schedule::cut`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Part {
    /// The index of the period as laid before any cut.
    pub laid: usize,
    /// The part's position among the parts, from 0.
    pub number: usize,
    /// How many parts the period was cut into (at least 2).
    pub count: usize,
}

impl Part {
    /// Whether this is the first part of its period.
    pub fn is_first(&self) -> bool {
        self.number == 0
    }

    /// Whether this is the last part of its period.
    pub fn is_last(&self) -> bool {
        self.number + 1 == self.count
    }
}

impl Schedule {
    /// Lays the periods of the term `[start, end)`.
    ///
    /// Without `anchor`, period n starts at `start + n * cadence` (computed
    /// from `start` each time) and the last ends at `end`, possibly as a
    /// trailing stub cut from `[start + n * cadence, start + (n + 1) *
    /// cadence)`. With `anchor`, boundaries are `anchor + n * cadence` for
    /// every integer n; the first period runs from `start` to the first
    /// boundary after it (a leading stub when `start` is not a boundary) and
    /// every stub is cut from the anchored period that holds it.
    ///
    /// A contract year begins with the first period, and again with the
    /// first period starting on or after each anniversary `start + 12k
    /// months`. Where two anniversaries lead to the same period (an annual
    /// cadence anchored on Feb 28 in a term from Feb 29), one year begins
    /// there, so years are numbered without gaps.
    ///
    /// # Errors
    /// When `end` is not after `start`, when a boundary falls outside
    /// chrono's date range, or when the term holds more than
    /// [`PERIODS_MAX`] periods.
    pub fn new(
        start: NaiveDate,
        end: NaiveDate,
        cadence: Cadence,
        anchor: Option<NaiveDate>,
        tz: Tz,
    ) -> Result<Schedule> {
        if end <= start {
            return Err(Error::usage(format!(
                "end {end} must be after start {start}"
            )));
        }
        let origin = anchor.unwrap_or(start);
        let step = i64::from(cadence.months());
        // Month counts between chrono dates stay within ±6.3 million, so
        // no product below can overflow an i64.
        let boundary = |n: i64| {
            add_months(origin, n * step).ok_or_else(|| {
                Error::usage(format!(
                    "dates out of range: {origin} plus {} months",
                    n * step
                ))
            })
        };

        // The boundary at or before `start`: guess from the month
        // difference, then correct. The guess is off by at most one, when
        // the boundary falls in `start`'s month but on a later day.
        let mut n = months_between(origin, start).div_euclid(step);
        while boundary(n)? > start {
            n -= 1;
        }
        while boundary(n + 1)? <= start {
            n += 1;
        }

        let mut periods: Vec<Period> = Vec::new();
        let mut period_start = start;
        let mut full_start = boundary(n)?;
        let mut start_at = local_midnight(start, tz);
        loop {
            if periods.len() == PERIODS_MAX {
                return Err(Error::usage(format!(
                    "term {start}..{end} holds more than {PERIODS_MAX} {cadence} periods"
                )));
            }
            n += 1;
            let full_end = boundary(n)?;
            let period_end = full_end.min(end);
            let end_at = local_midnight(period_end, tz);
            periods.push(Period {
                index: periods.len(),
                start: period_start,
                end: period_end,
                start_at,
                end_at,
                full_start,
                full_end,
                contract_year: 0,
            });
            if period_end == end {
                break;
            }
            period_start = full_end;
            full_start = full_end;
            start_at = end_at;
        }

        let year_starts = contract_year_starts(start, &periods);
        for (year, window) in year_starts.windows(2).enumerate() {
            for period in &mut periods[window[0]..window[1]] {
                period.contract_year = year;
            }
        }
        // `year_starts` is never empty (it starts with 0).
        let last_year = year_starts.len() - 1;
        for period in &mut periods[year_starts[last_year]..] {
            period.contract_year = last_year;
        }

        Ok(Schedule {
            start,
            end,
            cadence,
            anchor,
            tz,
            periods,
            year_starts,
            cut: None,
        })
    }

    /// Cuts the periods as laid (replacing any earlier cut) at `dates`:
    /// every date inside a period (after its
    /// start, before its end) becomes a boundary, cutting that period into
    /// parts, one more for each such date in it. Dates that are already
    /// period starts, and dates outside the term, change nothing.
    ///
    /// Each part is a stub cut from the same full period as the period it
    /// came from (so a `fixed` amount is prorated by its days over the full
    /// period's) and belongs to that period's contract year: years are laid
    /// before any cut. [`Schedule::part`] tells where a part stands.
    ///
    /// # Errors
    /// When the cut term holds more than [`PERIODS_MAX`] periods.
    ///
    /// # Example
    /// ```
    /// use outcome_billing::period::{Cadence, Schedule};
    /// use chrono::NaiveDate;
    /// let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).ok_or("bad date");
    /// let laid = Schedule::new(date(2026, 1, 1)?, date(2026, 4, 1)?, Cadence::Monthly, None, chrono_tz::UTC)?;
    /// let cut = laid.cut(&[date(2026, 2, 10)?, date(2026, 3, 1)?])?;
    /// assert_eq!(cut.len(), 4);
    /// let second = &cut.periods()[1];
    /// assert_eq!(second.label(), "2026-02-01..2026-02-10");
    /// assert_eq!((second.days(), second.full_days()), (9, 28));
    /// assert!(cut.part(1).is_some_and(|p| p.is_first() && p.count == 2));
    /// assert_eq!(cut.part(0), None);
    /// assert_eq!((cut.laid_periods().len(), cut.cut_periods()), (3, 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cut(&self, dates: &[NaiveDate]) -> Result<Schedule> {
        let mut dates: Vec<NaiveDate> = dates
            .iter()
            .copied()
            .filter(|d| *d > self.start && *d < self.end)
            .collect();
        dates.sort_unstable();
        dates.dedup();
        let laid = self.laid_periods();
        let mut periods = Vec::with_capacity(laid.len() + dates.len());
        let mut parts = Vec::with_capacity(laid.len() + dates.len());
        let mut laid_of = Vec::with_capacity(laid.len() + dates.len());
        let mut year_starts = Vec::with_capacity(self.year_starts.len());
        let mut cut_periods = 0;
        let laid_year_starts = self.laid_year_starts();
        let mut next = dates.iter().peekable();
        for (n, period) in laid.iter().enumerate() {
            if laid_year_starts.binary_search(&n).is_ok() {
                year_starts.push(periods.len());
            }
            let mut inside = Vec::new();
            while let Some(&&d) = next.peek() {
                if d >= period.end {
                    break;
                }
                if d > period.start {
                    inside.push(d);
                }
                next.next();
            }
            if inside.is_empty() {
                parts.push(None);
                laid_of.push(n);
                periods.push(Period {
                    index: periods.len(),
                    ..period.clone()
                });
                continue;
            }
            cut_periods += 1;
            let count = inside.len() + 1;
            let mut from = (period.start, period.start_at);
            for (number, to) in inside.into_iter().map(Some).chain([None]).enumerate() {
                let to = match to {
                    Some(d) => (d, local_midnight(d, self.tz)),
                    None => (period.end, period.end_at),
                };
                parts.push(Some(Part {
                    laid: n,
                    number,
                    count,
                }));
                laid_of.push(n);
                periods.push(Period {
                    index: periods.len(),
                    start: from.0,
                    end: to.0,
                    start_at: from.1,
                    end_at: to.1,
                    ..period.clone()
                });
                from = to;
            }
        }
        if periods.len() > PERIODS_MAX {
            return Err(Error::usage(format!(
                "term {}..{} holds more than {PERIODS_MAX} periods once cut",
                self.start, self.end
            )));
        }
        if cut_periods == 0 {
            return Ok(self.clone());
        }
        Ok(Schedule {
            periods,
            year_starts,
            cut: Some(Box::new(Cut {
                laid: laid.to_vec(),
                laid_of,
                parts,
                cut_periods,
            })),
            ..self.clone()
        })
    }

    /// The first period of each contract year among the periods as laid.
    fn laid_year_starts(&self) -> Vec<usize> {
        match &self.cut {
            None => self.year_starts.clone(),
            Some(_) => {
                let mut starts: Vec<usize> = self
                    .year_starts
                    .iter()
                    .map(|&i| self.laid_index(i))
                    .collect();
                starts.dedup();
                starts
            }
        }
    }

    /// The periods as laid by cadence and anchor, before any mid-period
    /// cut (the same as [`Schedule::periods`] when none is cut).
    pub fn laid_periods(&self) -> &[Period] {
        match &self.cut {
            Some(cut) => &cut.laid,
            None => &self.periods,
        }
    }

    /// Where period `index` stands among the parts of a cut period; `None`
    /// for a period that is not cut (or an index past the term).
    #[inline]
    pub fn part(&self, index: usize) -> Option<Part> {
        match &self.cut {
            Some(cut) => cut.parts.get(index).copied().flatten(),
            None => None,
        }
    }

    /// The index, among [`Schedule::laid_periods`], of the period that
    /// period `index` is or was cut from.
    pub fn laid_index(&self, index: usize) -> usize {
        match &self.cut {
            None => index,
            Some(cut) => cut.laid_of.get(index).copied().unwrap_or(index),
        }
    }

    /// How many periods as laid are cut into parts (0 without mid-period
    /// amendments).
    pub fn cut_periods(&self) -> usize {
        self.cut.as_ref().map_or(0, |c| c.cut_periods)
    }

    /// Lays `[from, to)` by `cadence` from `from`, without anchor, where
    /// `to` must be `from` plus a whole number of cadences (so no period is
    /// a stub): the periods of a historical baseline.
    ///
    /// # Errors
    /// When `to` is not `from + k * cadence` for a whole `k >= 1`, or the
    /// errors of [`Schedule::new`].
    ///
    /// # Example
    /// ```
    /// use outcome_billing::period::{Cadence, Schedule};
    /// use chrono::NaiveDate;
    /// let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).ok_or("bad date");
    /// let laid = Schedule::lay(date(2025, 1, 1)?, date(2026, 1, 1)?, Cadence::Quarterly, chrono_tz::UTC)?;
    /// assert_eq!(laid.len(), 4);
    /// assert!(Schedule::lay(date(2025, 1, 1)?, date(2025, 12, 15)?, Cadence::Quarterly, chrono_tz::UTC).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lay(from: NaiveDate, to: NaiveDate, cadence: Cadence, tz: Tz) -> Result<Schedule> {
        let months = months_between(from, to);
        let step = i64::from(cadence.months());
        // Month-end clamping makes `from + k * cadence` land in exactly one
        // month, so only one `k` can match.
        let whole = months >= step && months % step == 0 && add_months(from, months) == Some(to);
        if !whole {
            return Err(Error::usage(format!(
                "`to` must be `from` plus a whole number of cadences (from {from}, to {to}, cadence {cadence})"
            )));
        }
        Schedule::new(from, to, cadence, None, tz)
    }

    /// The periods, in order; never empty.
    pub fn periods(&self) -> &[Period] {
        &self.periods
    }

    /// How many periods the term holds (at least 1).
    pub fn len(&self) -> usize {
        self.periods.len()
    }

    /// Always false: a schedule holds at least one period.
    pub fn is_empty(&self) -> bool {
        self.periods.is_empty()
    }

    /// The time zone periods are laid in.
    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// The cadence periods are laid by.
    pub fn cadence(&self) -> Cadence {
        self.cadence
    }

    /// The anchor, if the contract gives one.
    pub fn anchor(&self) -> Option<NaiveDate> {
        self.anchor
    }

    /// The term's first local date.
    pub fn start(&self) -> NaiveDate {
        self.start
    }

    /// The term's end (exclusive local date).
    pub fn end(&self) -> NaiveDate {
        self.end
    }

    /// The instant the term starts (local midnight of `start`).
    pub fn start_at(&self) -> DateTime<Utc> {
        self.periods[0].start_at
    }

    /// The instant the term ends (local midnight of `end`), exclusive.
    pub fn end_at(&self) -> DateTime<Utc> {
        self.periods[self.periods.len() - 1].end_at
    }

    /// The period whose first day is `date` (how `--period START` names
    /// one), if any.
    pub fn period_starting(&self, date: NaiveDate) -> Option<&Period> {
        let index = self
            .periods
            .binary_search_by_key(&date, |period| period.start)
            .ok()?;
        Some(&self.periods[index])
    }

    /// The index of the period whose `[start_at, end_at)` holds `instant`;
    /// `None` outside the term.
    pub fn index_at(&self, instant: DateTime<Utc>) -> Option<usize> {
        let after = self
            .periods
            .partition_point(|period| period.start_at <= instant);
        let index = after.checked_sub(1)?;
        (instant < self.periods[index].end_at).then_some(index)
    }

    /// How many contract years the term holds (at least 1; the last may be
    /// short).
    pub fn contract_years(&self) -> usize {
        self.year_starts.len()
    }

    /// The indices of contract year `contract_year`'s periods (from 0); an
    /// empty range past the last year.
    pub fn year_periods(&self, contract_year: usize) -> Range<usize> {
        let Some(&first) = self.year_starts.get(contract_year) else {
            return self.periods.len()..self.periods.len();
        };
        let end = self
            .year_starts
            .get(contract_year + 1)
            .copied()
            .unwrap_or(self.periods.len());
        first..end
    }

    /// Whether period `index` closes its contract year (the last period of
    /// the term does); false for an index past the term.
    pub fn is_last_of_year(&self, index: usize) -> bool {
        match (self.periods.get(index), self.periods.get(index + 1)) {
            (Some(_), None) => true,
            (Some(this), Some(next)) => next.contract_year != this.contract_year,
            (None, _) => false,
        }
    }
}

/// The index of each contract year's first period: 0, then the first
/// period starting on or after each anniversary of `start`, once each.
fn contract_year_starts(start: NaiveDate, periods: &[Period]) -> Vec<usize> {
    let mut starts = vec![0];
    let Some(last) = periods.last() else {
        return starts;
    };
    let mut index = 0;
    for years in 1_i64.. {
        // Past chrono's range no period can start after the anniversary.
        let Some(anniversary) = add_months(start, 12 * years) else {
            break;
        };
        if anniversary > last.start {
            break;
        }
        while periods[index].start < anniversary {
            index += 1;
        }
        if starts.last() != Some(&index) {
            starts.push(index);
        }
    }
    starts
}

/// The `(start, end)` local dates of the periods laid from `from` to `to`
/// by `cadence`: `[from + n * cadence, from + (n + 1) * cadence)`, the
/// windows of a historical baseline. [`Schedule::lay`] gives the same
/// periods with their instants in `tz`.
///
/// # Errors
/// `` `to` must be `from` plus a whole number of cadences (…) `` when it
/// is not `from + k * cadence` for a whole `k >= 1`.
///
/// # Example
/// ```
/// use outcome_billing::period::{lay, Cadence};
/// use chrono::NaiveDate;
/// let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).ok_or("bad date");
/// let laid = lay(date(2025, 1, 31)?, date(2025, 4, 30)?, Cadence::Monthly, chrono_tz::UTC)?;
/// assert_eq!(laid[1], (date(2025, 2, 28)?, date(2025, 3, 31)?));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn lay(
    from: NaiveDate,
    to: NaiveDate,
    cadence: Cadence,
    tz: Tz,
) -> Result<Vec<(NaiveDate, NaiveDate)>> {
    let schedule = Schedule::lay(from, to, cadence, tz)?;
    Ok(schedule
        .periods()
        .iter()
        .map(|period| (period.start, period.end))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::{America, Atlantic};
    use proptest::prelude::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        // Test dates are written by hand and valid.
        NaiveDate::from_ymd_opt(y, m, d).expect("valid test date")
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("valid test instant")
            .with_timezone(&Utc)
    }

    fn schedule(
        start: NaiveDate,
        end: NaiveDate,
        cadence: Cadence,
        anchor: Option<NaiveDate>,
    ) -> Schedule {
        Schedule::new(start, end, cadence, anchor, chrono_tz::UTC).expect("valid test schedule")
    }

    fn bounds(schedule: &Schedule) -> Vec<(NaiveDate, NaiveDate)> {
        schedule
            .periods()
            .iter()
            .map(|p| (p.start, p.end))
            .collect()
    }

    #[test]
    fn add_months_clamps_and_counts_from_the_given_date() {
        // Month-end clamping, leap years, negative steps and out-of-range results.
        assert_eq!(add_months(date(2026, 1, 31), 1), Some(date(2026, 2, 28)));
        assert_eq!(add_months(date(2028, 1, 31), 1), Some(date(2028, 2, 29)));
        assert_eq!(add_months(date(2026, 1, 31), 2), Some(date(2026, 3, 31)));
        assert_eq!(add_months(date(2026, 1, 31), 3), Some(date(2026, 4, 30)));
        assert_eq!(add_months(date(2026, 3, 31), -1), Some(date(2026, 2, 28)));
        assert_eq!(add_months(date(2026, 1, 15), -13), Some(date(2024, 12, 15)));
        assert_eq!(add_months(date(2024, 2, 29), 12), Some(date(2025, 2, 28)));
        assert_eq!(add_months(date(2026, 5, 5), 0), Some(date(2026, 5, 5)));
        assert_eq!(add_months(NaiveDate::MAX, 1), None);
        assert_eq!(add_months(NaiveDate::MIN, -1), None);
        assert_eq!(add_months(date(2026, 1, 1), i64::MAX), None);
        assert_eq!(add_months(date(2026, 1, 1), i64::MIN), None);
    }

    #[test]
    fn monthly_without_anchor_lays_calendar_months() {
        // A year-long monthly term is twelve full calendar months in one contract year.
        let s = schedule(date(2026, 1, 1), date(2027, 1, 1), Cadence::Monthly, None);
        assert_eq!(s.len(), 12);
        for (i, p) in s.periods().iter().enumerate() {
            assert_eq!(p.index, i);
            assert_eq!(p.start, date(2026, i as u32 + 1, 1));
            assert!(!p.is_stub());
            assert_eq!(p.contract_year, 0);
        }
        assert_eq!(s.periods()[1].days(), 28);
        assert_eq!(s.contract_years(), 1);
        assert_eq!(s.year_periods(0), 0..12);
        assert_eq!(s.year_periods(1), 12..12);
    }

    #[test]
    fn quarterly_semiannual_and_annual_without_anchor() {
        // Longer cadences step by 3, 6 and 12 months from the start.
        let q = schedule(
            date(2026, 2, 10),
            date(2027, 2, 10),
            Cadence::Quarterly,
            None,
        );
        assert_eq!(
            bounds(&q),
            vec![
                (date(2026, 2, 10), date(2026, 5, 10)),
                (date(2026, 5, 10), date(2026, 8, 10)),
                (date(2026, 8, 10), date(2026, 11, 10)),
                (date(2026, 11, 10), date(2027, 2, 10)),
            ]
        );
        let h = schedule(
            date(2026, 1, 1),
            date(2028, 1, 1),
            Cadence::Semiannual,
            None,
        );
        assert_eq!(h.len(), 4);
        assert_eq!(h.periods()[1].start, date(2026, 7, 1));
        assert_eq!(
            h.periods()
                .iter()
                .map(|p| p.contract_year)
                .collect::<Vec<_>>(),
            vec![0, 0, 1, 1]
        );
        let a = schedule(date(2026, 1, 1), date(2029, 1, 1), Cadence::Annual, None);
        assert_eq!(a.len(), 3);
        assert_eq!(a.contract_years(), 3);
        assert_eq!(a.periods()[2].full_days(), 366); // 2028 is a leap year
        assert!(a.periods().iter().all(|p| !p.is_stub()));
    }

    #[test]
    fn january_31_start_clamps_to_month_ends() {
        // Each boundary is computed from the start, so a short February does not shift March.
        let s = schedule(date(2026, 1, 31), date(2026, 7, 31), Cadence::Monthly, None);
        assert_eq!(
            s.periods().iter().map(|p| p.start).collect::<Vec<_>>(),
            vec![
                date(2026, 1, 31),
                date(2026, 2, 28),
                date(2026, 3, 31),
                date(2026, 4, 30),
                date(2026, 5, 31),
                date(2026, 6, 30),
            ]
        );
        assert_eq!(s.periods()[0].days(), 28);
        assert_eq!(s.periods()[1].days(), 31);
        assert!(s.periods().iter().all(|p| !p.is_stub()));
    }

    #[test]
    fn anchor_gives_leading_and_trailing_stubs() {
        // Start Jan 15 anchored on the 1st: a leading stub cut from January and a trailing one cut from January next year.
        let s = schedule(
            date(2026, 1, 15),
            date(2027, 1, 15),
            Cadence::Monthly,
            Some(date(2026, 2, 1)),
        );
        assert_eq!(s.len(), 13);
        let first = &s.periods()[0];
        assert_eq!(
            (first.start, first.end),
            (date(2026, 1, 15), date(2026, 2, 1))
        );
        assert_eq!(
            (first.full_start, first.full_end),
            (date(2026, 1, 1), date(2026, 2, 1))
        );
        assert!(first.is_stub());
        assert_eq!((first.days(), first.full_days()), (17, 31));
        let second = &s.periods()[1];
        assert_eq!(
            (second.start, second.end),
            (date(2026, 2, 1), date(2026, 3, 1))
        );
        assert!(!second.is_stub());
        let last = &s.periods()[12];
        assert_eq!(
            (last.start, last.end),
            (date(2027, 1, 1), date(2027, 1, 15))
        );
        assert_eq!(
            (last.full_start, last.full_end),
            (date(2027, 1, 1), date(2027, 2, 1))
        );
        assert_eq!((last.days(), last.full_days()), (14, 31));
        assert_eq!(s.contract_years(), 1);
        assert!(s.is_last_of_year(12));
        assert!(!s.is_last_of_year(11));
        assert!(!s.is_last_of_year(13));
    }

    #[test]
    fn trailing_stub_without_anchor_is_cut_from_the_laid_period() {
        // The spec's example: a monthly stub Apr 15 – May 1 of a term laid from the 15th prorates 16/30.
        let s = schedule(date(2026, 1, 15), date(2026, 5, 1), Cadence::Monthly, None);
        let last = &s.periods()[s.len() - 1];
        assert_eq!(
            (last.start, last.end),
            (date(2026, 4, 15), date(2026, 5, 1))
        );
        assert_eq!(
            (last.full_start, last.full_end),
            (date(2026, 4, 15), date(2026, 5, 15))
        );
        assert!(last.is_stub());
        assert_eq!((last.days(), last.full_days()), (16, 30));
        assert!(s.periods()[..s.len() - 1].iter().all(|p| !p.is_stub()));
    }

    #[test]
    fn anchor_after_start_and_far_away() {
        // An anchor years after or before the start lays the same boundaries as a nearby one.
        let near = schedule(
            date(2026, 3, 10),
            date(2027, 3, 10),
            Cadence::Quarterly,
            Some(date(2026, 5, 1)),
        );
        assert_eq!(
            bounds(&near)[..2],
            [
                (date(2026, 3, 10), date(2026, 5, 1)),
                (date(2026, 5, 1), date(2026, 8, 1)),
            ]
        );
        assert_eq!(
            (near.periods()[0].full_start, near.periods()[0].full_end),
            (date(2026, 2, 1), date(2026, 5, 1))
        );
        for anchor in [
            date(1900, 2, 1),
            date(2200, 11, 1),
            date(-50_000, 8, 1),
            date(90_000, 5, 1),
        ] {
            let far = schedule(
                date(2026, 3, 10),
                date(2027, 3, 10),
                Cadence::Quarterly,
                Some(anchor),
            );
            assert_eq!(far.periods(), near.periods(), "anchor {anchor}");
        }
        // An anchor on the start itself is the same as no anchor.
        let on_start = schedule(
            date(2026, 3, 10),
            date(2027, 3, 10),
            Cadence::Quarterly,
            Some(date(2026, 3, 10)),
        );
        let none = schedule(
            date(2026, 3, 10),
            date(2027, 3, 10),
            Cadence::Quarterly,
            None,
        );
        assert_eq!(on_start.periods(), none.periods());
    }

    #[test]
    fn month_end_anchor_follows_month_ends() {
        // Anchored on Jan 31, boundaries are the last day of each month, and a start just after one is found.
        let s = schedule(
            date(2026, 3, 1),
            date(2026, 6, 1),
            Cadence::Monthly,
            Some(date(2025, 1, 31)),
        );
        assert_eq!(
            bounds(&s),
            vec![
                (date(2026, 3, 1), date(2026, 3, 31)),
                (date(2026, 3, 31), date(2026, 4, 30)),
                (date(2026, 4, 30), date(2026, 5, 31)),
                (date(2026, 5, 31), date(2026, 6, 1)),
            ]
        );
        assert_eq!(
            (s.periods()[0].full_start, s.periods()[0].full_end),
            (date(2026, 2, 28), date(2026, 3, 31))
        );
        // A start in the boundary's month but before its day steps the guess back.
        let t = schedule(
            date(2026, 4, 29),
            date(2026, 5, 2),
            Cadence::Monthly,
            Some(date(2026, 1, 31)),
        );
        assert_eq!(
            bounds(&t),
            vec![
                (date(2026, 4, 29), date(2026, 4, 30)),
                (date(2026, 4, 30), date(2026, 5, 2)),
            ]
        );
    }

    #[test]
    fn term_inside_one_anchored_period_is_one_double_stub() {
        // A term shorter than a period is one stub cut from the anchored period around it.
        let s = schedule(
            date(2026, 1, 10),
            date(2026, 1, 20),
            Cadence::Monthly,
            Some(date(2026, 2, 1)),
        );
        assert_eq!(s.len(), 1);
        let p = &s.periods()[0];
        assert_eq!(
            (p.full_start, p.full_end),
            (date(2026, 1, 1), date(2026, 2, 1))
        );
        assert_eq!((p.days(), p.full_days()), (10, 31));
        assert!(s.is_last_of_year(0));
    }

    #[test]
    fn contract_years_without_anchor_begin_at_anniversaries() {
        // Without anchor each anniversary is a period start, and a short last year is kept.
        let s = schedule(date(2026, 1, 15), date(2028, 4, 15), Cadence::Monthly, None);
        assert_eq!(s.contract_years(), 3);
        assert_eq!(s.year_periods(0), 0..12);
        assert_eq!(s.year_periods(1), 12..24);
        assert_eq!(s.year_periods(2), 24..27);
        assert_eq!(s.periods()[12].start, date(2027, 1, 15));
        assert_eq!(s.periods()[24].start, date(2028, 1, 15));
        assert!(s.is_last_of_year(11) && s.is_last_of_year(23) && s.is_last_of_year(26));
        assert!(!s.is_last_of_year(12));
        for year in 0..3 {
            assert!(
                s.year_periods(year)
                    .all(|i| s.periods()[i].contract_year == year)
            );
        }
    }

    #[test]
    fn contract_years_with_anchor_begin_at_the_first_period_after_anniversaries() {
        // The spec's example: from Jan 15 anchored on Feb 1, year 2 starts with the Feb 1, 2027 period.
        let s = schedule(
            date(2026, 1, 15),
            date(2028, 1, 15),
            Cadence::Monthly,
            Some(date(2026, 2, 1)),
        );
        assert_eq!(s.contract_years(), 2);
        assert_eq!(s.year_periods(0), 0..13);
        assert_eq!(s.year_periods(1), 13..25);
        assert_eq!(s.periods()[12].start, date(2027, 1, 1));
        assert_eq!(s.periods()[12].contract_year, 0);
        assert_eq!(s.periods()[13].start, date(2027, 2, 1));
        assert_eq!(s.periods()[13].contract_year, 1);
        // The Jan 1, 2028 stub starts before the second anniversary: still year 1.
        assert_eq!(s.periods()[24].start, date(2028, 1, 1));
        assert_eq!(s.periods()[24].contract_year, 1);
    }

    #[test]
    fn anniversaries_leading_to_one_period_begin_one_year() {
        // From Feb 29 anchored on Feb 28, the 2028 and 2029 anniversaries meet at one period: years stay numbered without gaps.
        let s = schedule(
            date(2024, 2, 29),
            date(2031, 2, 28),
            Cadence::Annual,
            Some(date(2024, 2, 28)),
        );
        let years: Vec<usize> = s.periods().iter().map(|p| p.contract_year).collect();
        assert_eq!(years, vec![0, 1, 2, 3, 3, 4, 5]);
        assert_eq!(s.contract_years(), 6);
        assert_eq!(s.year_periods(3), 3..5);
    }

    #[test]
    fn new_york_boundaries_are_local_midnights_across_dst() {
        // Boundaries around the 2026 DST changes are local midnights, EST or EDT as in force.
        let s = Schedule::new(
            date(2026, 1, 1),
            date(2027, 1, 1),
            Cadence::Monthly,
            None,
            America::New_York,
        )
        .expect("valid schedule");
        let march = s.period_starting(date(2026, 3, 1)).expect("march period");
        assert_eq!(march.start_at, utc("2026-03-01T05:00:00Z"));
        assert_eq!(march.end_at, utc("2026-04-01T04:00:00Z"));
        let november = s
            .period_starting(date(2026, 11, 1))
            .expect("november period");
        assert_eq!(november.start_at, utc("2026-11-01T04:00:00Z"));
        assert_eq!(november.end_at, utc("2026-12-01T05:00:00Z"));
        assert_eq!(s.start_at(), utc("2026-01-01T05:00:00Z"));
        assert_eq!(s.end_at(), utc("2027-01-01T05:00:00Z"));
        assert_eq!(s.timezone(), America::New_York);
        // The days of the changes themselves start at local midnight too.
        assert_eq!(
            local_midnight(date(2026, 3, 8), America::New_York),
            utc("2026-03-08T05:00:00Z")
        );
        assert_eq!(
            local_midnight(date(2026, 3, 9), America::New_York),
            utc("2026-03-09T04:00:00Z")
        );
        assert_eq!(
            local_midnight(date(2026, 11, 1), America::New_York),
            utc("2026-11-01T04:00:00Z")
        );
        assert_eq!(
            local_midnight(date(2026, 11, 2), America::New_York),
            utc("2026-11-02T05:00:00Z")
        );
    }

    #[test]
    fn skipped_midnight_is_the_first_instant_of_the_date() {
        // Where a zone jumps over midnight, the date starts when the clock lands after the gap.
        // São Paulo, 2018-11-04: 00:00 -03:00 became 01:00 -02:00.
        assert_eq!(
            local_midnight(date(2018, 11, 4), America::Sao_Paulo),
            utc("2018-11-04T03:00:00Z")
        );
        // Havana, 2026-03-08: 00:00 -05:00 becomes 01:00 -04:00.
        assert_eq!(
            local_midnight(date(2026, 3, 8), America::Havana),
            utc("2026-03-08T05:00:00Z")
        );
        // Azores, 2026-03-29: 00:00 -01:00 becomes 01:00 +00:00.
        assert_eq!(
            local_midnight(date(2026, 3, 29), Atlantic::Azores),
            utc("2026-03-29T01:00:00Z")
        );
        // Monrovia, 1972-01-07: from -00:44:30 to GMT, so the date began at 00:44:30 GMT, not on a whole minute.
        assert_eq!(
            local_midnight(date(1972, 1, 7), chrono_tz::Africa::Monrovia),
            utc("1972-01-07T00:44:30Z")
        );
        // Apia skipped 2011-12-30 entirely: that date and the next begin at the same instant.
        let apia = chrono_tz::Pacific::Apia;
        assert_eq!(
            local_midnight(date(2011, 12, 30), apia),
            utc("2011-12-30T10:00:00Z")
        );
        assert_eq!(
            local_midnight(date(2011, 12, 31), apia),
            utc("2011-12-30T10:00:00Z")
        );
        assert_eq!(
            local_midnight(date(2011, 12, 29), apia),
            utc("2011-12-29T10:00:00Z")
        );
    }

    #[test]
    fn repeated_midnight_is_the_earlier() {
        // Where midnight occurs twice, the date starts at the first one.
        // Havana, 2026-11-01: 01:00 -04:00 falls back to 00:00 -05:00.
        assert_eq!(
            local_midnight(date(2026, 11, 1), America::Havana),
            utc("2026-11-01T04:00:00Z")
        );
        // Azores, 2026-10-25: 01:00 +00:00 falls back to 00:00 -01:00.
        assert_eq!(
            local_midnight(date(2026, 10, 25), Atlantic::Azores),
            utc("2026-10-25T00:00:00Z")
        );
    }

    #[test]
    fn cuts_make_parts_of_the_same_full_period_in_the_same_year() {
        // Proves a cut keeps each part's full period and contract year, maps
        // parts to their laid period, and leaves boundaries and outside
        // dates alone.
        let laid = schedule(
            date(2026, 1, 15),
            date(2027, 3, 1),
            Cadence::Monthly,
            Some(date(2026, 2, 1)),
        );
        let cut = laid
            .cut(&[
                date(2026, 1, 20),
                date(2026, 3, 1),
                date(2027, 1, 20),
                date(2027, 1, 25),
                date(2030, 1, 1),
            ])
            .expect("cut");
        assert_eq!(cut.len(), laid.len() + 3);
        assert_eq!(cut.cut_periods(), 2);
        let first = &cut.periods()[0];
        assert_eq!(
            (first.start, first.end),
            (date(2026, 1, 15), date(2026, 1, 20))
        );
        assert_eq!(
            (first.full_start, first.full_end),
            (date(2026, 1, 1), date(2026, 2, 1))
        );
        assert_eq!((first.days(), first.full_days()), (5, 31));
        assert_eq!(
            cut.part(0),
            Some(Part {
                laid: 0,
                number: 0,
                count: 2
            })
        );
        assert_eq!(
            cut.part(1),
            Some(Part {
                laid: 0,
                number: 1,
                count: 2
            })
        );
        assert_eq!(cut.part(2), None);
        assert_eq!(cut.laid_index(2), 1);
        // January 2027 is cut in three; its parts stay in the year that
        // began with it (the first period starting on or after 2027-01-15).
        let jan = cut
            .period_starting(date(2027, 1, 1))
            .expect("january")
            .index;
        assert_eq!(cut.part(jan + 2).map(|p| (p.number, p.count)), Some((2, 3)));
        let years: Vec<usize> = cut.periods()[jan..jan + 4]
            .iter()
            .map(|p| p.contract_year)
            .collect();
        let laid_jan = laid.period_starting(date(2027, 1, 1)).expect("january");
        assert_eq!(
            years,
            [laid_jan.contract_year; 3]
                .iter()
                .copied()
                .chain([laid.periods()[laid_jan.index + 1].contract_year])
                .collect::<Vec<_>>()
        );
        assert_eq!(cut.contract_years(), laid.contract_years());
        assert_eq!(cut.laid_index(jan + 3), laid_jan.index + 1);
        for (i, p) in cut.periods().iter().enumerate() {
            assert_eq!(p.index, i);
            assert_eq!(
                cut.laid_periods()[cut.laid_index(i)].full_start,
                p.full_start
            );
        }
        // Only boundaries or outside dates: nothing is cut.
        let same = laid
            .cut(&[date(2026, 3, 1), date(2020, 1, 1)])
            .expect("cut");
        assert_eq!(same, laid);
    }

    #[test]
    fn index_at_is_half_open() {
        // An instant on a boundary belongs to the period it starts; the term's end is outside.
        let s = Schedule::new(
            date(2026, 1, 1),
            date(2026, 4, 1),
            Cadence::Monthly,
            None,
            America::New_York,
        )
        .expect("valid schedule");
        let second = chrono::Duration::seconds(1);
        assert_eq!(s.index_at(utc("2026-01-01T05:00:00Z")), Some(0));
        assert_eq!(s.index_at(utc("2026-01-01T05:00:00Z") - second), None);
        assert_eq!(s.index_at(utc("2026-02-01T05:00:00Z") - second), Some(0));
        assert_eq!(s.index_at(utc("2026-02-01T05:00:00Z")), Some(1));
        assert_eq!(s.index_at(utc("2026-03-01T05:00:00Z")), Some(2));
        assert_eq!(s.index_at(utc("2026-04-01T04:00:00Z") - second), Some(2));
        assert_eq!(s.index_at(utc("2026-04-01T04:00:00Z")), None);
        // In UTC terms, 2026-04-01T02:00Z is still March in New York.
        assert_eq!(s.index_at(utc("2026-04-01T02:00:00Z")), Some(2));
    }

    #[test]
    fn period_starting_finds_only_first_days() {
        // `--period START` must name a period's first day exactly.
        let s = schedule(
            date(2026, 1, 15),
            date(2026, 6, 1),
            Cadence::Monthly,
            Some(date(2026, 2, 1)),
        );
        assert_eq!(
            s.period_starting(date(2026, 1, 15)).map(|p| p.index),
            Some(0)
        );
        assert_eq!(
            s.period_starting(date(2026, 3, 1)).map(|p| p.index),
            Some(2)
        );
        assert!(s.period_starting(date(2026, 1, 1)).is_none());
        assert!(s.period_starting(date(2026, 3, 2)).is_none());
        assert!(s.period_starting(date(2026, 6, 1)).is_none());
    }

    #[test]
    fn invalid_terms_are_rejected() {
        // An empty or reversed term, a term past chrono's range, or one with too many periods is an error naming the values.
        let err = Schedule::new(
            date(2026, 1, 1),
            date(2026, 1, 1),
            Cadence::Monthly,
            None,
            chrono_tz::UTC,
        )
        .expect_err("empty term");
        assert_eq!(
            err.message(),
            "end 2026-01-01 must be after start 2026-01-01"
        );
        assert!(
            Schedule::new(
                date(2026, 2, 1),
                date(2026, 1, 1),
                Cadence::Monthly,
                None,
                chrono_tz::UTC
            )
            .is_err()
        );
        let last_month = add_months(NaiveDate::MAX, -1).expect("in range");
        let err = Schedule::new(
            last_month,
            NaiveDate::MAX,
            Cadence::Annual,
            None,
            chrono_tz::UTC,
        )
        .expect_err("boundary out of range");
        assert!(err.message().starts_with("dates out of range: "), "{err}");
        let err = Schedule::new(
            date(2026, 1, 1),
            date(20260, 1, 1),
            Cadence::Monthly,
            None,
            chrono_tz::UTC,
        )
        .expect_err("too many periods");
        assert_eq!(
            err.message(),
            "term 2026-01-01..+20260-01-01 holds more than 100000 monthly periods"
        );
    }

    #[test]
    fn lay_requires_whole_cadences() {
        // Historical baselines lay full periods from `from`; a `to` off the grid is refused with the values.
        assert_eq!(
            lay(
                date(2025, 1, 1),
                date(2026, 1, 1),
                Cadence::Quarterly,
                chrono_tz::UTC
            ),
            Ok(vec![
                (date(2025, 1, 1), date(2025, 4, 1)),
                (date(2025, 4, 1), date(2025, 7, 1)),
                (date(2025, 7, 1), date(2025, 10, 1)),
                (date(2025, 10, 1), date(2026, 1, 1)),
            ])
        );
        assert_eq!(
            lay(
                date(2025, 1, 31),
                date(2025, 3, 31),
                Cadence::Monthly,
                chrono_tz::UTC
            ),
            Ok(vec![
                (date(2025, 1, 31), date(2025, 2, 28)),
                (date(2025, 2, 28), date(2025, 3, 31)),
            ])
        );
        let err = lay(
            date(2025, 1, 1),
            date(2025, 12, 15),
            Cadence::Monthly,
            chrono_tz::UTC,
        )
        .expect_err("off the grid");
        assert_eq!(
            err.message(),
            "`to` must be `from` plus a whole number of cadences (from 2025-01-01, to 2025-12-15, cadence monthly)"
        );
        for (from, to, cadence) in [
            (date(2025, 1, 1), date(2025, 1, 1), Cadence::Monthly),
            (date(2025, 1, 1), date(2024, 1, 1), Cadence::Annual),
            (date(2025, 1, 1), date(2025, 5, 1), Cadence::Quarterly),
            (date(2025, 1, 31), date(2025, 2, 27), Cadence::Monthly),
            (date(2025, 1, 28), date(2025, 2, 28), Cadence::Annual),
        ] {
            assert!(
                lay(from, to, cadence, chrono_tz::UTC).is_err(),
                "{from} {to} {cadence}"
            );
        }
        let laid = Schedule::lay(
            date(2025, 1, 1),
            date(2026, 1, 1),
            Cadence::Monthly,
            America::New_York,
        )
        .expect("whole cadences");
        assert_eq!(laid.start_at(), utc("2025-01-01T05:00:00Z"));
        assert!(laid.periods().iter().all(|p| !p.is_stub()));
    }

    #[test]
    fn stamp_parse_reads_instants_and_dates() {
        // Z and offsets become UTC instants, a bare date stays a date, and anything else is refused.
        assert_eq!(
            Stamp::parse("2026-01-03T14:20:00Z"),
            Ok(Stamp::At(utc("2026-01-03T14:20:00Z")))
        );
        assert_eq!(
            Stamp::parse("2026-01-03T14:20:00+02:00"),
            Ok(Stamp::At(utc("2026-01-03T12:20:00Z")))
        );
        assert_eq!(
            Stamp::parse("2026-01-03T14:20:00.5-05:30"),
            Ok(Stamp::At(utc("2026-01-03T19:50:00.5Z")))
        );
        assert_eq!(
            Stamp::parse("2026-01-03"),
            Ok(Stamp::Date(date(2026, 1, 3)))
        );
        for bad in [
            "",
            "garbage",
            "2026-01-03T14:20:00",
            "2026-01-03 14:20",
            "2026-02-30",
            "2026-1-3",
            "+026-01-03",
            "2026-01-03Z",
            " 2026-01-03",
        ] {
            let err = Stamp::parse(bad).expect_err(bad);
            assert!(
                err.message()
                    .starts_with(&format!("malformed time {bad:?}: expected RFC 3339")),
                "{err}"
            );
        }
    }

    #[test]
    fn stamp_instant_and_parse_as_of_read_dates_in_the_zone() {
        // A date means local midnight of the reader's zone; an instant ignores the zone.
        let stamp = Stamp::parse("2026-07-01").expect("date");
        assert_eq!(
            stamp.instant(America::New_York),
            utc("2026-07-01T04:00:00Z")
        );
        assert_eq!(stamp.instant(chrono_tz::UTC), utc("2026-07-01T00:00:00Z"));
        assert_eq!(
            parse_as_of("2026-07-01", America::New_York),
            Ok(utc("2026-07-01T04:00:00Z"))
        );
        assert_eq!(
            parse_as_of("2026-07-01T00:00:00Z", America::New_York),
            Ok(utc("2026-07-01T00:00:00Z"))
        );
        assert!(parse_as_of("yesterday", chrono_tz::UTC).is_err());
    }

    #[test]
    fn cadence_displays_its_contract_name() {
        // Messages name cadences as contracts write them.
        assert_eq!(Cadence::Monthly.to_string(), "monthly");
        assert_eq!(Cadence::Semiannual.to_string(), "semiannual");
        assert_eq!(Cadence::Annual.name(), "annual");
    }

    /// A date in 1900..2200 whose day is drawn from 1..=31 and clamped, so
    /// month ends (and Feb 29) come up often.
    fn any_date() -> impl Strategy<Value = NaiveDate> {
        (1900i32..2200, 1u32..=12, 1u32..=31).prop_map(|(y, m, d)| {
            (1..=d)
                .rev()
                .find_map(|day| NaiveDate::from_ymd_opt(y, m, day))
                .expect("day 1 always exists")
        })
    }

    fn any_cadence() -> impl Strategy<Value = Cadence> {
        prop_oneof![
            Just(Cadence::Monthly),
            Just(Cadence::Quarterly),
            Just(Cadence::Semiannual),
            Just(Cadence::Annual),
        ]
    }

    fn any_zone() -> impl Strategy<Value = Tz> {
        prop_oneof![
            Just(chrono_tz::UTC),
            Just(America::New_York),
            Just(America::Sao_Paulo),
            Just(America::Havana),
            Just(Atlantic::Azores),
            Just(chrono_tz::Australia::Lord_Howe),
        ]
    }

    proptest! {
        #[test]
        fn cuts_tile_the_term_and_keep_years(
            start in any_date(),
            months in 1i64..40,
            cadence in any_cadence(),
            offsets in prop::collection::vec(0i64..1300, 0..6),
        ) {
            // Proves cut periods tile the term, every date inside the term
            // becomes a period start, and years run as laid.
            let end = add_months(start, months).expect("in range");
            let laid = Schedule::new(start, end, cadence, None, chrono_tz::UTC).expect("valid");
            let dates: Vec<NaiveDate> = offsets.iter().map(|&o| start + chrono::Days::new(o as u64)).collect();
            let cut = laid.cut(&dates).expect("cut");
            let periods = cut.periods();
            prop_assert_eq!(periods[0].start, start);
            prop_assert_eq!(periods[periods.len() - 1].end, end);
            for w in periods.windows(2) {
                prop_assert_eq!(w[0].end, w[1].start);
                prop_assert!(w[0].contract_year <= w[1].contract_year);
            }
            for d in &dates {
                if *d > start && *d < end {
                    prop_assert!(cut.period_starting(*d).is_some());
                }
            }
            for (i, p) in periods.iter().enumerate() {
                let from = &laid.periods()[cut.laid_index(i)];
                prop_assert_eq!(p.contract_year, from.contract_year);
                prop_assert_eq!((p.full_start, p.full_end), (from.full_start, from.full_end));
            }
            prop_assert_eq!(cut.contract_years(), laid.contract_years());
        }

        #[test]
        fn periods_tile_the_term(
            start in any_date(),
            length_days in 1i64..4000,
            cadence in any_cadence(),
            anchor in proptest::option::of(any_date()),
            tz in any_zone(),
        ) {
            // Periods are contiguous, non-empty, cover [start, end) exactly, sit inside their full periods, and years run 0, 1, 2... from anniversaries.
            let end = start + chrono::Duration::days(length_days);
            let s = Schedule::new(start, end, cadence, anchor, tz).expect("valid term");
            let periods = s.periods();
            prop_assert!(!periods.is_empty());
            prop_assert_eq!(periods[0].start, start);
            prop_assert_eq!(periods[periods.len() - 1].end, end);
            prop_assert_eq!(periods[0].contract_year, 0);
            for (i, p) in periods.iter().enumerate() {
                prop_assert_eq!(p.index, i);
                prop_assert!(p.start < p.end);
                prop_assert!(p.full_start <= p.start && p.end <= p.full_end);
                prop_assert!(p.days() >= 1 && p.days() <= p.full_days());
                prop_assert_eq!(p.start_at, local_midnight(p.start, tz));
                prop_assert_eq!(p.end_at, local_midnight(p.end, tz));
                prop_assert!(p.start_at < p.end_at);
                prop_assert_eq!(s.index_at(p.start_at), Some(i));
                prop_assert_eq!(s.index_at(p.end_at - chrono::Duration::seconds(1)), Some(i));
                prop_assert_eq!(s.period_starting(p.start).map(|q| q.index), Some(i));
                if i > 0 && i + 1 < periods.len() {
                    prop_assert!(!p.is_stub());
                }
                let full_months = months_between(p.full_start, p.full_end);
                prop_assert_eq!(full_months, i64::from(cadence.months()));
                if let Some(next) = periods.get(i + 1) {
                    prop_assert_eq!(p.end, next.start);
                    prop_assert_eq!(p.end_at, next.start_at);
                    prop_assert_eq!(p.full_end, next.full_start);
                    prop_assert!(next.contract_year == p.contract_year || next.contract_year == p.contract_year + 1);
                }
            }
            prop_assert_eq!(s.index_at(s.end_at()), None);
            prop_assert_eq!(s.index_at(s.start_at() - chrono::Duration::seconds(1)), None);
            // Each later year begins with the first period at or after some anniversary.
            let mut covered = 0;
            for year in 0..s.contract_years() {
                let range = s.year_periods(year);
                prop_assert_eq!(range.start, covered);
                prop_assert!(range.end > range.start);
                covered = range.end;
                prop_assert!(s.is_last_of_year(range.end - 1));
                if year > 0 {
                    let first = &periods[range.start];
                    let before = &periods[range.start - 1];
                    let crossed = (1..=i64::try_from(year).expect("small") * 2 + 2)
                        .filter_map(|k| add_months(start, 12 * k))
                        .any(|a| before.start < a && a <= first.start);
                    prop_assert!(crossed);
                }
            }
            prop_assert_eq!(covered, periods.len());
            // Without anchor, period n starts at start + n * cadence.
            if anchor.is_none() {
                for (i, p) in periods.iter().enumerate() {
                    let n = i64::try_from(i).expect("small");
                    prop_assert_eq!(Some(p.start), add_months(start, n * i64::from(cadence.months())));
                }
            }
        }

        #[test]
        fn lay_accepts_exactly_whole_cadences(
            from in any_date(),
            months in -3i64..60,
            shift_days in -2i64..=2,
            cadence in any_cadence(),
        ) {
            // `lay` succeeds exactly when `to` is `from + k * cadence` for k >= 1, and then tiles it with full periods.
            let Some(grid) = add_months(from, months) else { return Ok(()) };
            let to = grid + chrono::Duration::days(shift_days);
            let step = i64::from(cadence.months());
            let on_grid = (1..=60 / step).any(|k| add_months(from, k * step) == Some(to));
            match lay(from, to, cadence, chrono_tz::UTC) {
                Ok(laid) => {
                    prop_assert!(on_grid);
                    prop_assert_eq!(laid[0].0, from);
                    prop_assert_eq!(laid[laid.len() - 1].1, to);
                    for (n, window) in laid.iter().enumerate() {
                        let n = i64::try_from(n).expect("small");
                        prop_assert_eq!(Some(window.0), add_months(from, n * step));
                        prop_assert_eq!(Some(window.1), add_months(from, (n + 1) * step));
                    }
                }
                Err(_) => prop_assert!(!on_grid),
            }
        }
    }

    proptest! {
        #[test]
        fn the_fast_stamp_reader_agrees_with_chrono(
            year in 0i32..=9999, month in 0u32..=13, day in 0u32..=32,
            hour in 0u32..=25, minute in 0u32..=61, second in 0u32..=61,
            zulu in any::<bool>(),
        ) {
            // Proves the shortcut for `YYYY-MM-DDTHH:MM:SSZ` reads exactly
            // what chrono's RFC 3339 parser reads, and fails where it fails.
            let text = format!(
                "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{}",
                if zulu { "Z" } else { "+00:00" }
            );
            let general = DateTime::parse_from_rfc3339(&text).map(|t| Stamp::At(t.with_timezone(&Utc)));
            prop_assert_eq!(Stamp::parse(&text).ok(), general.ok());
            let date = format!("{year:04}-{month:02}-{day:02}");
            let general = NaiveDate::parse_from_str(&date, "%Y-%m-%d").map(Stamp::Date);
            prop_assert_eq!(Stamp::parse(&date).ok(), general.ok());
        }
    }
}
