//! A scenario laid on one contract's periods, and the metric source a run
//! of it reads.
//!
//! Every model but `replay` generates one observation per series and
//! period, stamped at the period's start, so a window query is a binary
//! search over period starts and a fold over a slice of decimals: no
//! allocation, no scan. Replayed history is moved into the periods once,
//! when the frame is laid, and answered by an in-memory source.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;

use super::scenario::{Model, Scenario};
use crate::error::{Error, Result};
use crate::metric::{
    Aggregate, CsvSource, MemorySource, MetricSource, Observation, Query, Reduced,
};
use crate::period::{Stamp, add_months, local_midnight};
use crate::settle::CompiledContract;

/// A scenario laid on one contract's periods: the generated series' values
/// that never change, the random series' draws to make, and the history
/// replayed into the periods.
///
/// Lay it once per contract and scenario, then for each run
/// [`draw`](ScenarioFrame::draw) the values into a buffer you reuse and
/// settle against [`source`](ScenarioFrame::source).
///
/// # Example
/// ```
/// use outcome_billing::{CompiledContract, Contract};
/// use outcome_billing::simulate::{Scenario, ScenarioFrame};
/// let contract = CompiledContract::new(Contract::from_toml_str(r#"
///     format = 1
///     id = "demo"
///     customer = "acme"
///     currency = "USD"
///     start = "2026-01-01"
///     end = "2026-04-01"
///     cadence = "monthly"
///     [metrics.resolutions]
///     series = "resolved"
///     aggregate = "sum"
///     [[charges]]
///     id = "per_resolution"
///     kind = "unit"
///     quantity = "resolutions"
///     unit_price = "0.99"
/// "#)?)?;
/// let scenario = Scenario::from_toml_str(r#"
///     [series.resolved]
///     model = "linear"
///     start = "1000"
///     step = "100"
/// "#)?;
/// let frame = ScenarioFrame::new(&contract, &scenario)?;
/// let mut values = Vec::new();
/// frame.draw(0, 0, &mut values)?;
/// let mut state = contract.initial_state();
/// let mut amounts = Default::default();
/// let mut totals = Vec::new();
/// for _ in 0..frame.periods() {
///     contract.settle_next_amounts(&frame.source(&values), &mut state, &mut amounts, None)?;
///     totals.push(amounts.total.to_string());
/// }
/// assert_eq!(totals, ["990.00", "1089.00", "1188.00"]);
/// # Ok::<(), outcome_billing::Error>(())
/// ```
pub struct ScenarioFrame<'a> {
    /// Named in data errors.
    name: String,
    /// The start instant of each simulated period.
    starts: Vec<DateTime<Utc>>,
    /// Generated series, sorted by name.
    names: Vec<String>,
    /// Per generated series, its values period by period
    /// (`series * periods + period`); random series' entries are 0 here.
    template: Vec<Decimal>,
    /// The random series, in name order: the order of draws in a period.
    random: Vec<RandomSeries>,
    /// Replayed history, and the names of the series it answers (sorted).
    replay: Option<(Vec<String>, MemorySource)>,
    /// How many periods as laid (before mid-period cuts) are simulated:
    /// the count a model's `n` runs over.
    laid: usize,
    /// How a laid period's value is split among its parts; `None` when no
    /// simulated period is cut (values are then laid period by period).
    split: Option<Box<Split>>,
    /// Answers the series the scenario does not generate or replay.
    base: Option<&'a dyn MetricSource>,
}

impl std::fmt::Debug for ScenarioFrame<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScenarioFrame")
            .field("name", &self.name)
            .field("periods", &self.starts.len())
            .field("generated", &self.names)
            .field("random", &self.random.len())
            .field("replayed", &self.replay.as_ref().map(|r| &r.0))
            .field("base", &self.base.map(|b| b.name().to_string()))
            .finish()
    }
}

/// How each laid period's value is split among the periods settled (its
/// parts, or itself when it is not cut), in proportion to their days.
struct Split {
    /// Per laid period: the settled periods it became.
    settled: Vec<std::ops::Range<usize>>,
    /// Per settled period: its days `d`.
    days: Vec<Decimal>,
    /// Per laid period: its days `D`.
    laid_days: Vec<Decimal>,
}

impl Split {
    /// Writes `value`, laid period `n`'s, into its settled periods of row
    /// `row` (`series * periods`): `value * d / D` each, multiplied first,
    /// with the last part taking what the others leave so the parts add up
    /// to the value exactly.
    #[inline(never)]
    fn spread(&self, values: &mut [Decimal], row: usize, n: usize, value: Decimal) -> Option<()> {
        let range = self.settled[n].clone();
        let last = range.end - 1;
        let mut left = value;
        for k in range {
            let v = if k == last {
                left
            } else {
                value
                    .checked_mul(self.days[k])?
                    .checked_div(self.laid_days[n])?
            };
            left = left.checked_sub(v)?;
            values[row + k] = v;
        }
        Some(())
    }
}

/// One random series: where its values go and how they are drawn.
struct RandomSeries {
    /// Position among the generated series.
    series: usize,
    draw: Draw,
    /// Decimal places kept.
    decimals: u32,
    min: Option<Decimal>,
    max: Option<Decimal>,
}

/// A distribution with its parameters as binary floats, converted once
/// when the frame is laid.
enum Draw {
    Normal {
        mean: f64,
        sd: f64,
    },
    LogNormal {
        mu: f64,
        sigma: f64,
    },
    /// `None`: a mean of 0, every draw 0.
    Poisson(Option<rand_distr::Poisson<f64>>),
}

impl<'a> ScenarioFrame<'a> {
    /// Lays `scenario` on `contract`'s periods: its `periods` first periods
    /// (default: the whole term). Replayed history is read now.
    ///
    /// # Errors
    /// A contract-style error at `periods` when the scenario has more
    /// periods than the term, or at a series' field when a deterministic
    /// value overflows; I/O and data errors from replayed files.
    pub fn new(contract: &CompiledContract, scenario: &Scenario) -> Result<ScenarioFrame<'static>> {
        ScenarioFrame::lay(contract, scenario, None)
    }

    /// Lays `scenario` on `contract`'s periods over recorded history:
    /// series the scenario does not generate are read from `base` (used by
    /// a sweep over history, where only the swept series is generated).
    ///
    /// # Errors
    /// As [`ScenarioFrame::new`].
    pub fn with_base(
        contract: &CompiledContract,
        scenario: &Scenario,
        base: &'a dyn MetricSource,
    ) -> Result<ScenarioFrame<'a>> {
        ScenarioFrame::lay(contract, scenario, Some(base))
    }

    fn lay(
        contract: &CompiledContract,
        scenario: &Scenario,
        base: Option<&'a dyn MetricSource>,
    ) -> Result<ScenarioFrame<'a>> {
        // A model's `n` counts periods as laid, before any mid-period cut;
        // the settled periods are those the simulated laid periods became.
        let schedule = contract.schedule();
        let term = schedule.laid_periods();
        let periods = scenario.periods.unwrap_or(term.len());
        if periods > term.len() {
            return Err(scenario.error(
                "periods".to_string(),
                format!(
                    "the scenario has {periods} periods but contract {} has {} in its term",
                    contract.contract().id,
                    term.len()
                ),
            ));
        }
        let settled: Vec<&crate::period::Period> = contract
            .periods()
            .iter()
            .take_while(|p| schedule.laid_index(p.index) < periods)
            .collect();
        let starts: Vec<DateTime<Utc>> = settled.iter().map(|p| p.start_at).collect();
        let split = if schedule.cut_periods() == 0 {
            None
        } else {
            let mut ranges = vec![0..0; periods];
            for p in &settled {
                let n = schedule.laid_index(p.index);
                if ranges[n].is_empty() {
                    ranges[n] = p.index..p.index + 1;
                } else {
                    ranges[n].end = p.index + 1;
                }
            }
            Some(Box::new(Split {
                settled: ranges,
                days: settled.iter().map(|p| Decimal::from(p.days())).collect(),
                laid_days: term[..periods]
                    .iter()
                    .map(|p| Decimal::from(p.days()))
                    .collect(),
            }))
        };
        let mut names = Vec::new();
        let mut template = Vec::new();
        let mut random = Vec::new();
        let mut replayed = Vec::new();
        for (name, model) in &scenario.series {
            if let Model::Replay { .. } = model {
                replayed.push(name.as_str());
                continue;
            }
            let series = names.len();
            names.push(name.clone());
            let at = |field: &str, n: usize| {
                scenario.error(
                    Scenario::field_path(name, field),
                    format!("the value in period {n} overflows a decimal"),
                )
            };
            match model {
                Model::Constant { value } => template.extend((0..periods).map(|_| *value)),
                Model::Linear { start, step } => {
                    for n in 0..periods {
                        let v = Decimal::from(n as u64)
                            .checked_mul(*step)
                            .and_then(|s| start.checked_add(s))
                            .ok_or_else(|| at("step", n))?;
                        template.push(v);
                    }
                }
                Model::Growth { start, rate } => {
                    let factor = Decimal::ONE
                        .checked_add(*rate)
                        .ok_or_else(|| at("rate", 0))?;
                    let mut v = *start;
                    for n in 0..periods {
                        if n > 0 {
                            v = v.checked_mul(factor).ok_or_else(|| at("rate", n))?;
                        }
                        template.push(v);
                    }
                }
                Model::Normal {
                    mean,
                    sd,
                    min,
                    max,
                    decimals,
                } => {
                    template.extend((0..periods).map(|_| Decimal::ZERO));
                    random.push(RandomSeries {
                        series,
                        draw: Draw::Normal {
                            mean: to_f64(*mean),
                            sd: to_f64(*sd),
                        },
                        decimals: *decimals,
                        min: *min,
                        max: *max,
                    });
                }
                Model::LogNormal {
                    median,
                    sigma,
                    min,
                    max,
                    decimals,
                } => {
                    template.extend((0..periods).map(|_| Decimal::ZERO));
                    random.push(RandomSeries {
                        series,
                        draw: Draw::LogNormal {
                            mu: to_f64(*median).ln(),
                            sigma: to_f64(*sigma),
                        },
                        decimals: *decimals,
                        min: *min,
                        max: *max,
                    });
                }
                Model::Poisson { lambda } => {
                    template.extend((0..periods).map(|_| Decimal::ZERO));
                    let dist =
                        if lambda.is_zero() {
                            None
                        } else {
                            Some(rand_distr::Poisson::new(to_f64(*lambda)).map_err(|e| {
                                scenario.error(Scenario::field_path(name, "lambda"), e)
                            })?)
                        };
                    random.push(RandomSeries {
                        series,
                        draw: Draw::Poisson(dist),
                        decimals: 0,
                        min: None,
                        max: None,
                    });
                }
                // Skipped above; kept for exhaustiveness.
                Model::Replay { .. } => {}
            }
        }
        let replay = if replayed.is_empty() {
            None
        } else {
            Some((
                replayed.iter().map(|s| s.to_string()).collect(),
                replay(contract, scenario, &replayed, periods)?,
            ))
        };
        let name = scenario
            .origin
            .clone()
            .unwrap_or_else(|| "scenario".to_string());
        // Deterministic values are laid per laid period above; split them
        // once here among the parts of cut periods.
        if let Some(split) = &split {
            let laid_template = std::mem::take(&mut template);
            let count = starts.len();
            template = vec![Decimal::ZERO; laid_template.len() / periods.max(1) * count];
            for series in 0..names.len() {
                for n in 0..periods {
                    split
                        .spread(&mut template, series * count, n, laid_template[series * periods + n])
                        .ok_or_else(|| {
                            Error::data(
                                name.as_str(),
                                format!(
                                    "series {}: splitting period {n}'s value among its parts overflows",
                                    names[series]
                                ),
                            )
                        })?;
                }
            }
        }
        Ok(ScenarioFrame {
            name,
            starts,
            names,
            template,
            random,
            replay,
            laid: periods,
            split,
            base,
        })
    }

    /// The number of periods simulated (settled: the parts of a period cut
    /// by a mid-period amendment count one each).
    pub fn periods(&self) -> usize {
        self.starts.len()
    }

    /// The number of periods as laid before mid-period cuts that are
    /// simulated: what the scenario's `periods` and a model's `n` count.
    pub fn laid_periods(&self) -> usize {
        self.laid
    }

    /// Whether any series draws random values.
    pub fn is_random(&self) -> bool {
        !self.random.is_empty()
    }

    /// Fills `values` with run `run`'s values: the generated series' fixed
    /// values and fresh draws of the random ones, from a ChaCha8 generator
    /// seeded with `seed` on stream `run`, period by period and, within a
    /// period, series by series in name order. The same seed and run give
    /// the same values on every machine and thread. Reuse `values` across
    /// runs: after the first, drawing does not allocate.
    ///
    /// # Errors
    /// A data error when a draw does not fit a decimal at its places.
    pub fn draw(&self, seed: u64, run: u64, values: &mut Vec<Decimal>) -> Result<()> {
        values.clear();
        values.extend_from_slice(&self.template);
        if self.random.is_empty() {
            return Ok(());
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(run);
        let periods = self.starts.len();
        // One draw per series and laid period; a cut period's draw is split
        // among its parts where it is stored.
        for n in 0..self.laid {
            for r in &self.random {
                let x = r.draw.sample(&mut rng);
                let mut v = match (to_decimal(x, r.decimals), x.is_sign_positive()) {
                    (Some(v), _) => v,
                    // Far beyond a bound, the bound is the answer whatever the digits.
                    (None, true) if r.max.is_some() => r.max.unwrap_or_default(),
                    (None, false) if r.min.is_some() => r.min.unwrap_or_default(),
                    (None, _) => {
                        return Err(Error::data(
                            self.name.as_str(),
                            format!(
                                "series {}: a draw of {x} does not fit a decimal at {} places",
                                self.names[r.series], r.decimals
                            ),
                        ));
                    }
                };
                if let Some(min) = r.min {
                    v = v.max(min);
                }
                if let Some(max) = r.max {
                    v = v.min(max);
                }
                match &self.split {
                    None => values[r.series * periods + n] = v,
                    Some(split) => self.spread_draw(split, values, r.series, n, v)?,
                }
            }
        }
        Ok(())
    }

    /// Splits a draw of laid period `n` among its parts (out of line: only
    /// frames with cut periods come here).
    #[cold]
    #[inline(never)]
    fn spread_draw(
        &self,
        split: &Split,
        values: &mut [Decimal],
        series: usize,
        n: usize,
        v: Decimal,
    ) -> Result<()> {
        split
            .spread(values, series * self.starts.len(), n, v)
            .ok_or_else(|| {
                Error::data(
                    self.name.as_str(),
                    format!(
                        "series {}: splitting a draw of {v} among the parts of period {n} overflows",
                        self.names[series]
                    ),
                )
            })
    }

    /// The metric source of one run, over `values` filled by
    /// [`ScenarioFrame::draw`].
    ///
    /// # Panics
    /// When `values` does not hold one value per generated series and
    /// period (it was not filled by this frame's `draw`).
    pub fn source<'s>(&'s self, values: &'s [Decimal]) -> ScenarioSource<'s> {
        assert_eq!(
            values.len(),
            self.template.len(),
            "values must come from this frame's draw"
        );
        ScenarioSource {
            frame: self,
            values,
        }
    }

    /// The position of a generated series.
    fn generated(&self, series: &str) -> Option<usize> {
        // A few names are scanned: `==` compares lengths before bytes, so
        // this is cheaper than a search's byte comparisons. Names are unique.
        if self.names.len() <= 8 {
            return self.names.iter().position(|n| n == series);
        }
        self.names.binary_search_by(|n| n.as_str().cmp(series)).ok()
    }
}

/// Reads the replayed series from their files, moved into the periods.
fn replay(
    contract: &CompiledContract,
    scenario: &Scenario,
    replayed: &[&str],
    periods: usize,
) -> Result<MemorySource> {
    let c = contract.contract();
    let tz = c.timezone;
    let months = i64::from(c.cadence.months());
    let mut files: BTreeMap<PathBuf, CsvSource> = BTreeMap::new();
    let mut out = MemorySource::new().with_name(format!(
        "{} (replayed)",
        scenario.origin.as_deref().unwrap_or("scenario")
    ));
    for &name in replayed {
        let Some(Model::Replay { file, scale, from }) = scenario.series.get(name) else {
            continue;
        };
        if !files.contains_key(file) {
            files.insert(file.clone(), CsvSource::open(file)?);
        }
        let csv = &files[file];
        let from = from.unwrap_or(c.start);
        let out_of_range = |n: usize| {
            scenario.error(
                Scenario::field_path(name, "from"),
                format!("{from} plus {} months is out of range", (n as i64) * months),
            )
        };
        // History moves by laid periods: a cut period's parts take what
        // falls in each of them.
        for (n, period) in contract.schedule().laid_periods()[..periods]
            .iter()
            .enumerate()
        {
            let n64 = n as i64;
            let window_start = add_months(from, n64 * months).ok_or_else(|| out_of_range(n))?;
            let window_end =
                add_months(from, (n64 + 1) * months).ok_or_else(|| out_of_range(n + 1))?;
            let (start, end) = (
                local_midnight(window_start, tz),
                local_midnight(window_end, tz),
            );
            let offset = period.start_at - start;
            let query = Query {
                customer: &c.customer,
                series: name,
                start,
                end,
                timezone: tz,
                filter: &[],
                as_of: None,
            };
            let mut moved = Vec::new();
            csv.scan(&query, &mut |obs| {
                let at = obs.timestamp.instant(tz) + offset;
                if at < period.start_at || at >= period.end_at {
                    return Ok(());
                }
                let value = obs.value.checked_mul(*scale).ok_or_else(|| {
                    Error::data(
                        obs.origin.clone().unwrap_or_else(|| csv.name().to_string()),
                        format!("{} times scale {scale} overflows a decimal", obs.value),
                    )
                })?;
                let mut o = Observation::new(name, Stamp::At(at), value);
                o.dimensions = obs.dimensions.clone();
                o.origin = obs.origin.clone();
                moved.push(o);
                Ok(())
            })?;
            moved.into_iter().for_each(|o| out.push(o));
        }
    }
    Ok(out)
}

/// The metric source of one simulation run: generated series from the
/// run's values, replayed history, and a base source for the rest.
///
/// Generated observations have no dimensions (a filter on them is a data
/// error), belong to every customer, and are recorded when they happen.
#[derive(Debug, Clone, Copy)]
pub struct ScenarioSource<'s> {
    frame: &'s ScenarioFrame<'s>,
    values: &'s [Decimal],
}

impl ScenarioSource<'_> {
    /// The periods whose generated observation lies in the query's window
    /// (and is known by its `as_of`).
    #[inline]
    fn window(&self, query: &Query<'_>) -> std::ops::Range<usize> {
        let starts = &self.frame.starts;
        let lo = starts.partition_point(|s| *s < query.start);
        // Most queries cover one period: when the start at `lo` is before
        // the end and the next is not, `hi` is `lo + 1` without a search
        // (every start before `lo` is before `query.start`, so before the
        // end too).
        let one = starts.get(lo).is_some_and(|s| *s < query.end)
            && starts.get(lo + 1).is_none_or(|s| *s >= query.end);
        let mut hi = if one {
            lo + 1
        } else {
            starts.partition_point(|s| *s < query.end)
        };
        if let Some(t) = query.as_of {
            hi = hi.min(starts.partition_point(|s| *s <= t));
        }
        lo..hi.max(lo)
    }

    fn no_filter(&self, query: &Query<'_>) -> Result<()> {
        match query.filter.first() {
            None => Ok(()),
            Some((name, _)) => Err(Error::data(
                self.frame.name.as_str(),
                format!(
                    "filter names dimension {name:?}, which series {} lacks: the scenario generates it without dimensions",
                    query.series
                ),
            )),
        }
    }

    /// The source that answers a series the scenario does not generate.
    fn other(&self, series: &str) -> Option<&dyn MetricSource> {
        if let Some((names, memory)) = &self.frame.replay {
            if names.binary_search_by(|n| n.as_str().cmp(series)).is_ok() {
                return Some(memory);
            }
        }
        self.frame.base
    }
}

impl MetricSource for ScenarioSource<'_> {
    fn scan(
        &self,
        query: &Query<'_>,
        visit: &mut dyn FnMut(&Observation) -> Result<()>,
    ) -> Result<()> {
        let Some(series) = self.frame.generated(query.series) else {
            return match self.other(query.series) {
                Some(source) => source.scan(query, visit),
                None => Ok(()),
            };
        };
        self.no_filter(query)?;
        let periods = self.frame.starts.len();
        let mut obs: Option<Observation> = None;
        for n in self.window(query) {
            let at = Stamp::At(self.frame.starts[n]);
            let value = self.values[series * periods + n];
            let o = obs.get_or_insert_with(|| Observation::new(query.series, at, value));
            o.timestamp = at;
            o.value = value;
            visit(o)?;
        }
        Ok(())
    }

    fn aggregate(
        &self,
        query: &Query<'_>,
        aggregate: Aggregate,
        of: Option<&str>,
    ) -> Result<Reduced> {
        let Some(series) = self.frame.generated(query.series) else {
            return match self.other(query.series) {
                Some(source) => source.aggregate(query, aggregate, of),
                None => Ok(Reduced {
                    value: None,
                    count: 0,
                }),
            };
        };
        self.no_filter(query)?;
        let periods = self.frame.starts.len();
        let window = self.window(query);
        let values = &self.values[series * periods + window.start..series * periods + window.end];
        let count = values.len() as u64;
        let (Some(&first), Some(&last)) = (values.first(), values.last()) else {
            if aggregate == Aggregate::UniqueCount && of.is_none() {
                return Err(Error::usage(
                    "unique_count needs the dimension to count (of)",
                ));
            }
            return Ok(Reduced {
                value: None,
                count: 0,
            });
        };
        let sum = || {
            crate::money::checked_sum(values).ok_or_else(|| {
                Error::data(
                    self.frame.name.as_str(),
                    format!("sum of {} overflows a 96-bit decimal", query.series),
                )
            })
        };
        // Ties between numerically equal values go by scale, as `reduce` does.
        let exact = |a: &Decimal, b: &Decimal| a.cmp(b).then(a.scale().cmp(&b.scale()));
        let value = match aggregate {
            Aggregate::Sum => sum()?,
            Aggregate::Count => Decimal::from(count),
            Aggregate::Mean => sum()?.checked_div(Decimal::from(count)).ok_or_else(|| {
                Error::data(
                    self.frame.name.as_str(),
                    format!("mean of {} cannot be computed", query.series),
                )
            })?,
            Aggregate::Min => values.iter().copied().min_by(exact).unwrap_or(first),
            Aggregate::Max => values.iter().copied().max_by(exact).unwrap_or(first),
            // Generated observations are at distinct instants (period starts).
            Aggregate::First => first,
            Aggregate::Last => last,
            Aggregate::UniqueCount => {
                if of.is_none() {
                    return Err(Error::usage(
                        "unique_count needs the dimension to count (of)",
                    ));
                }
                // No generated observation has a dimension to count.
                Decimal::ZERO
            }
        };
        Ok(Reduced {
            value: Some(value),
            count,
        })
    }

    fn name(&self) -> &str {
        &self.frame.name
    }

    /// A generated series has no dimensions: its observations are all in
    /// the group `""`; a replayed or historical one has the history's.
    fn groups(
        &self,
        query: &Query<'_>,
        dimension: &str,
        groups: &mut std::collections::BTreeSet<String>,
    ) -> Result<()> {
        if self.frame.generated(query.series).is_none() {
            return match self.other(query.series) {
                Some(source) => source.groups(query, dimension, groups),
                None => Ok(()),
            };
        }
        self.no_filter(query)?;
        if !self.window(query).is_empty() && !groups.contains("") {
            groups.insert(String::new());
        }
        Ok(())
    }

    fn aggregate_group(
        &self,
        query: &Query<'_>,
        group: crate::metric::Group<'_>,
        aggregate: Aggregate,
        of: Option<&str>,
    ) -> Result<Reduced> {
        if self.frame.generated(query.series).is_none() {
            return match self.other(query.series) {
                Some(source) => source.aggregate_group(query, group, aggregate, of),
                None => Ok(Reduced {
                    value: None,
                    count: 0,
                }),
            };
        }
        if group.value.is_empty() {
            self.aggregate(query, aggregate, of)
        } else {
            self.no_filter(query)?;
            Ok(Reduced {
                value: None,
                count: 0,
            })
        }
    }
}

/// A decimal parameter as a binary float, for a distribution. Decimals
/// hold at most 28 digits, so the result is always finite.
fn to_f64(v: Decimal) -> f64 {
    use rust_decimal::prelude::ToPrimitive;
    v.to_f64().unwrap_or(0.0)
}

// The crate denies float arithmetic; random draws are the one place where
// it is the right tool. Each draw becomes an exact decimal in `to_decimal`,
// once, and nothing after that computes in floats.
#[allow(clippy::float_arithmetic)]
impl Draw {
    fn sample(&self, rng: &mut ChaCha8Rng) -> f64 {
        use rand_distr::{Distribution, StandardNormal};
        match self {
            Draw::Normal { mean, sd } => {
                let z: f64 = StandardNormal.sample(rng);
                mean + sd * z
            }
            Draw::LogNormal { mu, sigma } => {
                let z: f64 = StandardNormal.sample(rng);
                (mu + sigma * z).exp()
            }
            Draw::Poisson(Some(p)) => p.sample(rng),
            Draw::Poisson(None) => 0.0,
        }
    }
}

/// Powers of ten as floats, exact up to 10^22.
const POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// `x` rounded half-even to `places` decimal places, as an exact decimal:
/// scaled to an integer first (a `Decimal::from_f64` costs ten times as
/// much). `None` when it does not fit (or is not finite).
#[allow(clippy::float_arithmetic)]
fn to_decimal(x: f64, places: u32) -> Option<Decimal> {
    let scaled = (x * POW10[places as usize]).round_ties_even();
    // 2^63: the first float beyond i64.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if scaled.is_finite() && scaled.abs() < LIMIT {
        Some(Decimal::new(scaled as i64, places))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::Contract;
    use crate::error::Location;

    fn contract(extra: &str) -> CompiledContract {
        let text = format!(
            r#"
format = 1
id = "demo"
customer = "acme"
currency = "USD"
start = "2026-01-01"
end = "2026-07-01"
cadence = "monthly"
timezone = "America/New_York"
[metrics.n]
series = "n"
aggregate = "sum"
[[charges]]
id = "per_n"
kind = "unit"
quantity = "n"
unit_price = "1"
{extra}
"#
        );
        CompiledContract::new(Contract::from_toml_str(&text).expect("valid")).expect("compiles")
    }

    fn scenario(text: &str) -> Scenario {
        Scenario::from_toml_str(text).expect("valid scenario")
    }

    fn query<'a>(series: &'a str, start: DateTime<Utc>, end: DateTime<Utc>) -> Query<'a> {
        Query {
            customer: "anyone",
            series,
            start,
            end,
            timezone: chrono_tz::America::New_York,
            filter: &[],
            as_of: None,
        }
    }

    #[test]
    fn deterministic_models_are_exact() {
        // Proves constant, linear and growth values per period, growth by repeated exact multiplication.
        let c = contract("");
        let s = scenario(
            r#"
[series.a]
model = "constant"
value = "7.5"
[series.b]
model = "linear"
start = "10"
step = "-3"
[series.c]
model = "growth"
start = "1000"
rate = "0.05"
"#,
        );
        let frame = ScenarioFrame::new(&c, &s).expect("lays");
        let mut values = Vec::new();
        frame.draw(0, 0, &mut values).expect("draws");
        let text: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        assert_eq!(&text[0..6], ["7.5"; 6]);
        assert_eq!(&text[6..12], ["10", "7", "4", "1", "-2", "-5"]);
        assert_eq!(
            &text[12..18],
            [
                "1000",
                "1050.00",
                "1102.5000",
                "1157.625000",
                "1215.50625000",
                "1276.2815625000"
            ]
        );
        assert!(!frame.is_random());
    }

    #[test]
    fn aggregates_answer_windows_without_scanning() {
        // Proves each aggregate over period and to-date windows, customers ignored, as_of respected.
        let c = contract("");
        let s = scenario("[series.b]\nmodel = \"linear\"\nstart = 1\nstep = 1\n");
        let frame = ScenarioFrame::new(&c, &s).expect("lays");
        let mut values = Vec::new();
        frame.draw(0, 0, &mut values).expect("draws");
        let source = frame.source(&values);
        let p = c.periods();
        let month = query("b", p[1].start_at, p[1].end_at);
        let to_date = query("b", p[0].start_at, p[3].end_at);
        let get = |q: &Query<'_>, a: Aggregate| {
            source
                .aggregate(q, a, Some("region"))
                .expect("answers")
                .value
                .map(|v| v.to_string())
        };
        assert_eq!(get(&month, Aggregate::Sum).as_deref(), Some("2"));
        assert_eq!(get(&to_date, Aggregate::Sum).as_deref(), Some("10"));
        assert_eq!(get(&to_date, Aggregate::Count).as_deref(), Some("4"));
        assert_eq!(get(&to_date, Aggregate::Mean).as_deref(), Some("2.50"));
        assert_eq!(get(&to_date, Aggregate::Min).as_deref(), Some("1"));
        assert_eq!(get(&to_date, Aggregate::Max).as_deref(), Some("4"));
        assert_eq!(get(&to_date, Aggregate::First).as_deref(), Some("1"));
        assert_eq!(get(&to_date, Aggregate::Last).as_deref(), Some("4"));
        assert_eq!(get(&to_date, Aggregate::UniqueCount).as_deref(), Some("0"));
        // The answer matches the default reduction over a scan.
        for a in [
            Aggregate::Sum,
            Aggregate::Count,
            Aggregate::Mean,
            Aggregate::Min,
            Aggregate::Last,
        ] {
            assert_eq!(
                source.aggregate(&to_date, a, None).expect("answers"),
                crate::metric::reduce(&source, &to_date, a, None).expect("reduces")
            );
        }
        // A window with no period start is empty; an as_of before period 2 hides it.
        let inside = query("b", p[1].start_at + chrono::Duration::hours(1), p[1].end_at);
        assert_eq!(
            source
                .aggregate(&inside, Aggregate::Sum, None)
                .expect("answers")
                .count,
            0
        );
        let mut known = to_date;
        known.as_of = Some(p[1].start_at);
        assert_eq!(get(&known, Aggregate::Sum).as_deref(), Some("3"));
        // A series the scenario does not know is empty, not an error.
        let other = query("unknown", p[0].start_at, p[5].end_at);
        assert_eq!(
            source
                .aggregate(&other, Aggregate::Sum, None)
                .expect("answers")
                .count,
            0
        );
    }

    #[test]
    fn filters_on_generated_series_are_data_errors() {
        // Proves a filter on a generated series names the dimension and the series.
        let c = contract("");
        let s = scenario("[series.b]\nmodel = \"constant\"\nvalue = 1\n");
        let frame = ScenarioFrame::new(&c, &s).expect("lays");
        let mut values = Vec::new();
        frame.draw(0, 0, &mut values).expect("draws");
        let filter = [("region".to_string(), "eu".to_string())];
        let mut q = query("b", c.periods()[0].start_at, c.periods()[0].end_at);
        q.filter = &filter;
        let e = frame
            .source(&values)
            .aggregate(&q, Aggregate::Sum, None)
            .expect_err("filter");
        assert!(matches!(e.location(), Location::Data(_)));
        assert!(e.to_string().contains("\"region\""), "{e}");
    }

    #[test]
    fn too_many_periods_is_an_error_at_periods() {
        // Proves a scenario longer than the term is refused naming `periods`.
        let c = contract("");
        let e = ScenarioFrame::new(&c, &scenario("periods = 7\n")).expect_err("too long");
        assert_eq!(
            e.to_string(),
            "periods: the scenario has 7 periods but contract demo has 6 in its term"
        );
        assert_eq!(e.kind(), crate::error::ErrorKind::InvalidContract);
        let frame = ScenarioFrame::new(&c, &scenario("periods = 2\n")).expect("shorter is fine");
        assert_eq!(frame.periods(), 2);
    }

    #[test]
    fn draws_are_seeded_per_run_rounded_and_clamped() {
        // Proves draws depend only on seed and run, keep their places, and respect min and max.
        let c = contract("");
        let s = scenario(
            "[series.x]\nmodel = \"normal\"\nmean = 100\nsd = 10\nmin = 95\nmax = 105\ndecimals = 2\n[series.y]\nmodel = \"poisson\"\nlambda = 3\n",
        );
        let frame = ScenarioFrame::new(&c, &s).expect("lays");
        let (mut a, mut b) = (Vec::new(), Vec::new());
        frame.draw(7, 3, &mut a).expect("draws");
        frame.draw(7, 3, &mut b).expect("draws");
        assert_eq!(a, b);
        frame.draw(7, 4, &mut b).expect("draws");
        assert_ne!(a, b);
        frame.draw(8, 3, &mut b).expect("draws");
        assert_ne!(a, b);
        for v in &a[..6] {
            assert!(*v >= Decimal::from(95) && *v <= Decimal::from(105), "{v}");
            assert!(v.scale() <= 2, "{v}");
        }
        for v in &a[6..] {
            assert_eq!(v.fract(), Decimal::ZERO, "{v}");
            assert!(!v.is_sign_negative());
        }
    }

    #[test]
    fn to_decimal_rounds_half_even_and_refuses_what_does_not_fit() {
        // Proves the float-to-decimal boundary: half-even at the places, None beyond i64 or for NaN.
        assert_eq!(to_decimal(2.5, 0), Some(Decimal::from(2)));
        assert_eq!(to_decimal(3.5, 0), Some(Decimal::from(4)));
        assert_eq!(to_decimal(-1.25, 1), Some(Decimal::new(-12, 1)));
        assert_eq!(to_decimal(99.9512, 3), Some(Decimal::new(99951, 3)));
        assert_eq!(to_decimal(1e19, 0), None);
        assert_eq!(to_decimal(f64::NAN, 2), None);
        assert_eq!(to_decimal(f64::INFINITY, 2), None);
    }

    #[test]
    fn replay_moves_history_into_periods() {
        // Proves replayed observations shift by the window offset, scale, and drop when they leave the period.
        let dir = tempfile::tempdir().expect("temp dir");
        let csv = dir.path().join("h.csv");
        std::fs::write(
            &csv,
            "series,timestamp,value,customer\n\
             n,2025-01-10T12:00:00Z,5,acme\n\
             n,2025-01-20T12:00:00Z,7,other\n\
             n,2025-02-03T12:00:00Z,11,\n\
             n,2025-03-31T12:00:00Z,13,acme\n",
        )
        .expect("write");
        let text = format!(
            "[series.n]\nmodel = \"replay\"\nfile = {:?}\nscale = \"2\"\nfrom = 2025-01-01\n",
            csv.display().to_string()
        );
        let c = contract("");
        let frame = ScenarioFrame::new(&c, &scenario(&text)).expect("lays");
        let mut values = Vec::new();
        frame.draw(0, 0, &mut values).expect("draws");
        let source = frame.source(&values);
        let sums: Vec<String> = c
            .periods()
            .iter()
            .map(|p| {
                let q = Query {
                    customer: "acme",
                    ..query("n", p.start_at, p.end_at)
                };
                source
                    .aggregate(&q, Aggregate::Sum, None)
                    .expect("answers")
                    .value
                    .map_or("-".to_string(), |v| v.to_string())
            })
            .collect();
        // Jan 10 (acme) -> 10; Jan 20 is another customer's; Feb 3 (shared) -> 22;
        // Mar 31 12:00Z is Mar 31 in New York and stays in March -> 26.
        assert_eq!(sums, ["10", "22", "26", "-", "-", "-"]);
    }
}
