//! Accumulators: what one (contract, family, window) keeps of the rows
//! routed to it, enough to answer every aggregate exactly as
//! [`crate::metric::reduce`] does over the same observations.

use std::cmp::Ordering;
use std::collections::HashSet;

use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;

use super::plan::Needs;
use crate::error::{Error, ErrorKind, Result};
use crate::metric::{Aggregate, Reduced};
use crate::money::ExactSum;

/// One observation as routed: its instant, value, identity and where it
/// came from.
#[derive(Debug, Clone, Copy)]
pub(super) struct Obs<'a> {
    /// The instant in whole seconds and nanoseconds.
    pub secs: i64,
    pub nanos: u32,
    /// The sort key of the in-memory source (an instant, or a date's UTC
    /// midnight), so observations priced one by one are added in its order.
    pub key: i64,
    pub value: Decimal,
    pub id: Option<&'a str>,
    /// The line it was read from.
    pub line: u64,
}

/// An observation kept by `first` or `last`.
#[derive(Debug, Clone)]
pub(super) struct Candidate {
    pub value: Decimal,
    pub id: Option<Box<str>>,
    pub line: u64,
}

impl Candidate {
    fn of(obs: &Obs<'_>) -> Candidate {
        Candidate {
            value: obs.value,
            id: obs.id.map(Into::into),
            line: obs.line,
        }
    }

    /// The in-memory source's order: value, id, scale, then origin (one
    /// file's lines, in number order).
    fn cmp(&self, other: &Candidate) -> Ordering {
        self.value
            .cmp(&other.value)
            .then_with(|| self.id.cmp(&other.id))
            .then_with(|| self.value.scale().cmp(&other.value.scale()))
            .then_with(|| self.line.cmp(&other.line))
    }
}

/// The observations at the earliest (or latest) instant: the least and
/// greatest of them by [`Candidate::cmp`].
#[derive(Debug, Clone)]
pub(super) struct Extreme {
    pub at: (i64, u32),
    pub low: Candidate,
    pub high: Candidate,
}

impl Extreme {
    fn add(slot: &mut Option<Extreme>, want: Ordering, other: Extreme) {
        match slot {
            None => *slot = Some(other),
            Some(e) => match other.at.cmp(&e.at) {
                Ordering::Equal => {
                    if other.low.cmp(&e.low) == Ordering::Less {
                        e.low = other.low;
                    }
                    if other.high.cmp(&e.high) == Ordering::Greater {
                        e.high = other.high;
                    }
                }
                o if o == want => *e = other,
                _ => {}
            },
        }
    }
}

/// The rare parts of an accumulator, boxed so the common ones stay small.
#[derive(Debug, Clone, Default)]
pub(super) struct Extra {
    pub first: Option<Extreme>,
    pub last: Option<Extreme>,
    /// Per dimension of the family's `unique`, the distinct non-empty values.
    pub unique: Vec<HashSet<Box<str>>>,
    /// (sort key, line, value) of each observation, for per-observation
    /// pricing.
    pub observations: Vec<(i64, u64, Decimal)>,
}

/// What one window of one family has seen.
#[derive(Debug, Clone, Default)]
pub(super) struct Acc {
    pub count: u64,
    pub sum: ExactSum,
    pub min: Option<Decimal>,
    pub max: Option<Decimal>,
    pub extra: Option<Box<Extra>>,
}

/// Orders decimals by value, then equal ones by scale (as the in-memory
/// source does, so the choice never depends on order).
fn cmp_exact(a: Decimal, b: Decimal) -> Ordering {
    a.cmp(&b).then(a.scale().cmp(&b.scale()))
}

impl Acc {
    /// Adds one observation; `unique` gives the value of each of the
    /// family's counted dimensions.
    pub fn add<'d>(
        &mut self,
        needs: &Needs,
        obs: &Obs<'_>,
        unique: impl ExactSizeIterator<Item = &'d str>,
    ) {
        self.count += 1;
        if needs.sum {
            self.sum.add(obs.value);
        }
        if needs.min
            && self
                .min
                .is_none_or(|m| cmp_exact(obs.value, m) == Ordering::Less)
        {
            self.min = Some(obs.value);
        }
        if needs.max
            && self
                .max
                .is_none_or(|m| cmp_exact(obs.value, m) == Ordering::Greater)
        {
            self.max = Some(obs.value);
        }
        if needs.first || needs.last || needs.observations || unique.len() > 0 {
            let extra = self.extra.get_or_insert_with(Default::default);
            let at = (obs.secs, obs.nanos);
            let extreme = || Extreme {
                at,
                low: Candidate::of(obs),
                high: Candidate::of(obs),
            };
            if needs.first {
                Extreme::add(&mut extra.first, Ordering::Less, extreme());
            }
            if needs.last {
                Extreme::add(&mut extra.last, Ordering::Greater, extreme());
            }
            if needs.observations {
                extra.observations.push((obs.key, obs.line, obs.value));
            }
            let n = unique.len();
            if extra.unique.len() < n {
                extra.unique.resize_with(n, HashSet::new);
            }
            for (set, value) in extra.unique.iter_mut().zip(unique) {
                if !value.is_empty() && !set.contains(value) {
                    set.insert(value.into());
                }
            }
        }
    }

    /// Adds what `other` has seen; `lines` is added to its line numbers
    /// (a chunk's lines are counted from its start).
    pub fn merge(&mut self, other: Acc, lines: u64) {
        self.count += other.count;
        self.sum.merge(&other.sum);
        if let Some(m) = other.min {
            if self.min.is_none_or(|s| cmp_exact(m, s) == Ordering::Less) {
                self.min = Some(m);
            }
        }
        if let Some(m) = other.max {
            if self
                .max
                .is_none_or(|s| cmp_exact(m, s) == Ordering::Greater)
            {
                self.max = Some(m);
            }
        }
        if let Some(mut o) = other.extra {
            let shift = |e: &mut Extreme| {
                e.low.line += lines;
                e.high.line += lines;
            };
            o.first.iter_mut().for_each(shift);
            o.last.iter_mut().for_each(shift);
            o.observations.iter_mut().for_each(|(_, l, _)| *l += lines);
            match &mut self.extra {
                None => self.extra = Some(o),
                Some(s) => {
                    if let Some(e) = o.first {
                        Extreme::add(&mut s.first, Ordering::Less, e);
                    }
                    if let Some(e) = o.last {
                        Extreme::add(&mut s.last, Ordering::Greater, e);
                    }
                    s.observations.append(&mut o.observations);
                    if s.unique.len() < o.unique.len() {
                        s.unique.resize_with(o.unique.len(), HashSet::new);
                    }
                    for (mine, theirs) in s.unique.iter_mut().zip(o.unique) {
                        if mine.len() < theirs.len() {
                            let smaller = std::mem::replace(mine, theirs);
                            mine.extend(smaller);
                        } else {
                            mine.extend(theirs);
                        }
                    }
                }
            }
        }
    }

    /// The window's reduction with `aggregate`, as [`crate::metric::reduce`]
    /// gives it; `unique` is the position of the counted dimension among the
    /// family's. Errors are located at `source`, naming `series`; origins
    /// are `source:LINE`.
    pub fn reduce(
        &self,
        aggregate: Aggregate,
        unique: Option<usize>,
        source: &str,
        series: &str,
    ) -> Result<Reduced> {
        let count = self.count;
        let value = match aggregate {
            Aggregate::Sum | Aggregate::Mean => {
                crate::metric::sum_or_mean(aggregate, &self.sum, count, source, series)?
            }
            Aggregate::Count => (count > 0).then(|| Decimal::from(count)),
            Aggregate::Min => self.min,
            Aggregate::Max => self.max,
            Aggregate::First | Aggregate::Last => {
                let extreme = self.extra.as_ref().and_then(|e| {
                    if aggregate == Aggregate::First {
                        e.first.as_ref()
                    } else {
                        e.last.as_ref()
                    }
                });
                match extreme {
                    None => None,
                    Some(e) => {
                        if e.low.value != e.high.value || e.low.id != e.high.id {
                            let at = DateTime::<Utc>::from_timestamp(e.at.0, e.at.1)
                                .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
                                .unwrap_or_default();
                            return Err(Error::data(
                                source,
                                format!(
                                    "{}: two observations of {series} at {at}: {source}:{} and {source}:{}",
                                    aggregate.name(),
                                    e.low.line,
                                    e.high.line
                                ),
                            )
            .with_kind(ErrorKind::ConflictingData));
                        }
                        Some(e.low.value)
                    }
                }
            }
            Aggregate::UniqueCount => {
                let n = match (unique, &self.extra) {
                    (Some(k), Some(e)) => e.unique.get(k).map_or(0, HashSet::len),
                    _ => 0,
                };
                (count > 0).then(|| Decimal::from(n as u64))
            }
        };
        Ok(Reduced { value, count })
    }
}
