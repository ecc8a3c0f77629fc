//! Statistics over runs and the reports of simulate, compare and sweep, in
//! the spec's JSON and CSV shapes and as tables for people.

use std::fmt::Write as _;

use rayon::prelude::*;
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Map, Value, json};

use super::engine::Runs;
use crate::error::{Error, ErrorKind, Result};
use crate::money::{Currency, Rounding, format_normalized, format_scaled};
use crate::period::Period;
use crate::settle::CompiledContract;

/// Decimal places of a share of runs.
const SHARE_PLACES: u32 = 4;

/// The mean and the 5th, 50th and 95th percentiles of a quantity over the
/// runs. Percentiles use the nearest rank: of N sorted results, the p-th
/// is the one at rank `ceil(p / 100 * N)` (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// The mean, rounded like a line of the contract.
    pub mean: Decimal,
    /// The 5th percentile.
    pub p5: Decimal,
    /// The median (50th percentile).
    pub p50: Decimal,
    /// The 95th percentile.
    pub p95: Decimal,
}

impl Stats {
    /// The statistics of `values` (which may be reordered), the mean
    /// rounded with `rounding`. `None` for no values or when their sum overflows.
    ///
    /// # Example
    /// ```
    /// use outcome_billing::money::{Rounding, RoundingMode};
    /// use outcome_billing::simulate::Stats;
    /// use rust_decimal::Decimal;
    /// let mut values: Vec<Decimal> = (1..=20).rev().map(Decimal::from).collect();
    /// let s = Stats::of(&mut values, Rounding::new(2, RoundingMode::HalfEven)).unwrap();
    /// // Ranks ceil(0.05 * 20) = 1, ceil(0.5 * 20) = 10, ceil(0.95 * 20) = 19.
    /// assert_eq!((s.p5, s.p50, s.p95), (Decimal::from(1), Decimal::from(10), Decimal::from(19)));
    /// assert_eq!(s.mean.to_string(), "10.50");
    /// ```
    pub fn of(values: &mut [Decimal], rounding: Rounding) -> Option<Stats> {
        let scale = values.first()?.scale();
        let sum = crate::money::checked_sum(values.iter())?;
        let mean = rounding.round(sum.checked_div(Decimal::from(values.len() as u64))?);
        // Amounts are rounded lines, almost always of one scale: then their
        // order is that of their coefficients, which compare as integers
        // far faster than decimals do.
        let (p5, p50, p95) = if values.iter().all(|v| v.scale() == scale) {
            let mut coefficients: Vec<i128> = values.iter().map(|v| v.mantissa()).collect();
            let (p5, p50, p95) = percentiles(&mut coefficients);
            let back = |m: i128| Decimal::try_from_i128_with_scale(m, scale).ok();
            (back(p5)?, back(p50)?, back(p95)?)
        } else {
            percentiles(values)
        };
        Some(Stats { mean, p5, p50, p95 })
    }

    fn to_json(self, scale: u32) -> Value {
        json!({
            "mean": format_scaled(self.mean, scale),
            "p5": format_scaled(self.p5, scale),
            "p50": format_scaled(self.p50, scale),
            "p95": format_scaled(self.p95, scale),
        })
    }
}

/// Decimal places that show a sweep's levels apart: the first level's own
/// places, or enough for three significant digits of the step between
/// levels, whichever is more (at most 28).
fn level_places(levels: &[SweepLevel]) -> u32 {
    let first = levels
        .first()
        .map_or(Decimal::ZERO, |l| l.level.normalize());
    let step = match levels {
        [a, b, ..] => b
            .level
            .checked_sub(a.level)
            .map_or(Decimal::ZERO, |d| d.abs().normalize()),
        _ => Decimal::ZERO,
    };
    let for_step = if step.is_zero() {
        0
    } else {
        // floor(log10(step)) is the coefficient's digits less one, less
        // the scale.
        let digits = step.mantissa().unsigned_abs().to_string().len() as i64;
        let magnitude = digits - 1 - i64::from(step.scale());
        (2 - magnitude).max(0)
    };
    (for_step.min(28) as u32).max(first.scale())
}

/// The 5th, 50th and 95th percentiles of non-empty `values` (reordered).
///
/// Three selections instead of a sort: the median first, then the 5th
/// percentile among the values below it and the 95th among those above
/// (ranks are ordered, so each lies in its part).
fn percentiles<T: Ord + Copy>(values: &mut [T]) -> (T, T, T) {
    let n = values.len();
    let (i5, i50, i95) = (rank(5, n), rank(50, n), rank(95, n));
    let p50 = *values.select_nth_unstable(i50).1;
    let p5 = if i5 < i50 {
        *values[..i50].select_nth_unstable(i5).1
    } else {
        p50
    };
    let p95 = if i95 > i50 {
        *values[i50 + 1..].select_nth_unstable(i95 - i50 - 1).1
    } else {
        p50
    };
    (p5, p50, p95)
}

/// The 0-based position of the `p`-th percentile (0 < p <= 100) among `n`
/// sorted values: the nearest rank `ceil(p / 100 * n)`, less 1.
fn rank(p: usize, n: usize) -> usize {
    (p * n).div_ceil(100).max(1) - 1
}

/// The `p`-th percentile of sorted, non-empty `values` by nearest rank.
#[cfg(test)]
fn nearest_rank(sorted: &[Decimal], p: usize) -> Decimal {
    sorted[rank(p, sorted.len())]
}

/// `count / runs` with 4 places, rounded half-even.
fn share(count: usize, runs: usize) -> Decimal {
    let mut s = (Decimal::from(count as u64) / Decimal::from(runs.max(1) as u64))
        .round_dp_with_strategy(SHARE_PLACES, RoundingStrategy::MidpointNearestEven);
    s.rescale(SHARE_PLACES);
    s
}

/// Per charge, in total, and per limit: what the runs did in a period or
/// over the term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Each charge's statistics, in the order written.
    pub charges: Vec<(String, Stats)>,
    /// The statement total's (or the term total's) statistics.
    pub total: Stats,
    /// Each limit (its id, or `limits[N]`) and the share of runs in which
    /// it added a line, with 4 places.
    pub limits: Vec<(String, Decimal)>,
}

impl Summary {
    fn to_json(&self, scale: u32) -> Map<String, Value> {
        let mut charges = Map::new();
        for (id, s) in &self.charges {
            charges.insert(id.clone(), s.to_json(scale));
        }
        let mut limits = Map::new();
        for (id, share) in &self.limits {
            limits.insert(
                id.clone(),
                Value::String(format_scaled(*share, SHARE_PLACES)),
            );
        }
        let mut m = Map::new();
        m.insert("charges".into(), Value::Object(charges));
        m.insert("total".into(), self.total.to_json(scale));
        m.insert("limits".into(), Value::Object(limits));
        m
    }
}

/// One period's summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodSummary {
    /// The period.
    pub period: Period,
    /// What the runs did in it.
    pub summary: Summary,
}

/// What `simulate` found for one contract: per period and for the term,
/// the mean and percentiles of each charge and the total over the runs,
/// and how often each limit acted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulationReport {
    /// The contract id.
    pub contract: String,
    /// The contract's currency.
    pub currency: Currency,
    /// The contract's rounding (means are rounded with it; its scale fixes
    /// how amounts print).
    pub rounding: Rounding,
    /// The number of runs.
    pub runs: usize,
    /// The seed of the draws.
    pub seed: u64,
    /// Each simulated period's summary, in order.
    pub periods: Vec<PeriodSummary>,
    /// The term's summary: per run, the sum over the simulated periods; a
    /// limit's share counts runs in which it acted in any period.
    pub term: Summary,
    /// Each run's term total, in run order.
    pub term_totals: Vec<Decimal>,
}

impl SimulationReport {
    /// Summarizes the runs of one contract.
    pub(crate) fn from_runs(
        contract: &CompiledContract,
        runs: &Runs,
        seed: u64,
    ) -> Result<SimulationReport> {
        let rounding = contract.rounding();
        let id = &contract.contract().id;
        let n_runs = runs.runs;
        let width = runs.width();
        let total_column = width - 1;
        let overflow = |where_: String| {
            Error::settlement(
                ErrorKind::Overflow,
                id.clone(),
                where_,
                format!("the mean over {n_runs} runs overflows a decimal"),
            )
        };
        let stats_of = |column: &(dyn Fn(usize) -> Decimal + Sync), where_: &dyn Fn() -> String| {
            let mut values: Vec<Decimal> = (0..n_runs).map(column).collect();
            Stats::of(&mut values, rounding).ok_or_else(|| overflow(where_()))
        };
        // Periods and columns are independent: summarize them in parallel,
        // collecting in order (the first error in period order wins).
        let periods = &contract.periods()[..runs.periods];
        let period_summaries: Vec<Result<PeriodSummary>> = periods
            .par_iter()
            .enumerate()
            .map(|(n, period)| {
                let (charge_columns, limit_columns) = &runs.columns.per_period[n];
                let label = || period.label();
                let mut charges = Vec::with_capacity(charge_columns.len());
                for &c in charge_columns {
                    let s = stats_of(&|r| runs.amount(r, n, c), &label)?;
                    charges.push((runs.columns.charges[c].clone(), s));
                }
                let total = stats_of(&|r| runs.amount(r, n, total_column), &label)?;
                let limits = limit_columns
                    .iter()
                    .map(|&l| {
                        let count = (0..n_runs).filter(|&r| runs.acted(r, n, l)).count();
                        (runs.columns.limits[l].clone(), share(count, n_runs))
                    })
                    .collect();
                Ok(PeriodSummary {
                    period: period.clone(),
                    summary: Summary {
                        charges,
                        total,
                        limits,
                    },
                })
            })
            .collect();
        let period_summaries = period_summaries.into_iter().collect::<Result<Vec<_>>>()?;

        // The term: per run, each column summed over the periods.
        let term_label = || "term".to_string();
        let term_columns: Vec<Result<Vec<Decimal>>> = (0..width)
            .into_par_iter()
            .map(|c| {
                (0..n_runs)
                    .map(|r| {
                        crate::money::checked_sum((0..runs.periods).map(|n| runs.amount(r, n, c)))
                            .ok_or_else(|| overflow(term_label()))
                    })
                    .collect()
            })
            .collect();
        let term_columns = term_columns.into_iter().collect::<Result<Vec<_>>>()?;
        let term_totals = term_columns[total_column].clone();
        let mut charges = Vec::with_capacity(width - 1);
        for (c, id) in runs.columns.charges.iter().enumerate() {
            let s = stats_of(&|r| term_columns[c][r], &term_label)?;
            charges.push((id.clone(), s));
        }
        let total = stats_of(&|r| term_columns[total_column][r], &term_label)?;
        let limits = runs
            .columns
            .limits
            .iter()
            .enumerate()
            .map(|(l, id)| {
                let count = (0..n_runs)
                    .filter(|&r| (0..runs.periods).any(|n| runs.acted(r, n, l)))
                    .count();
                (id.clone(), share(count, n_runs))
            })
            .collect();
        Ok(SimulationReport {
            contract: id.clone(),
            currency: contract.currency(),
            rounding,
            runs: n_runs,
            seed,
            periods: period_summaries,
            term: Summary {
                charges,
                total,
                limits,
            },
            term_totals,
        })
    }

    /// The spec's simulate document:
    /// `{ contract, currency, runs, seed, periods: [...], term: {...} }`.
    ///
    /// # Example
    /// ```
    /// use outcome_billing::{CompiledContract, Contract};
    /// use outcome_billing::simulate::{Scenario, SimulateOptions, simulate};
    /// let contract = CompiledContract::new(Contract::from_toml_str(r#"
    ///     format = 1
    ///     id = "demo"
    ///     customer = "acme"
    ///     currency = "USD"
    ///     start = "2026-01-01"
    ///     end = "2026-03-01"
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
    /// let scenario = Scenario::from_toml_str("[series.resolved]\nmodel = \"constant\"\nvalue = 100\n")?;
    /// let report = simulate(&contract, &scenario, &SimulateOptions::new().runs(10))?;
    /// let json = report.to_json();
    /// assert_eq!(json["runs"], 10);
    /// assert_eq!(json["periods"][0]["charges"]["per_resolution"]["p95"], "99.00");
    /// assert_eq!(json["term"]["total"]["mean"], "198.00");
    /// # Ok::<(), outcome_billing::Error>(())
    /// ```
    pub fn to_json(&self) -> Value {
        let scale = self.rounding.scale;
        let periods: Vec<Value> = self
            .periods
            .iter()
            .map(|p| {
                let mut m = Map::new();
                m.insert(
                    "period".into(),
                    json!({ "start": p.period.start.to_string(), "end": p.period.end.to_string() }),
                );
                m.extend(p.summary.to_json(scale));
                Value::Object(m)
            })
            .collect();
        let mut doc = Map::new();
        doc.insert("contract".into(), Value::String(self.contract.clone()));
        doc.insert(
            "currency".into(),
            Value::String(self.currency.code().into()),
        );
        doc.insert("runs".into(), Value::from(self.runs as u64));
        doc.insert("seed".into(), Value::from(self.seed));
        doc.insert("periods".into(), Value::Array(periods));
        doc.insert("term".into(), Value::Object(self.term.to_json(scale)));
        Value::Object(doc)
    }

    /// The JSON document, pretty-printed with a final newline.
    pub fn to_json_string(&self) -> String {
        pretty(&self.to_json())
    }

    /// The CSV rows `contract,period_start,period_end,charge,mean,p5,p50,p95`
    /// with a header: per period each charge then `total`, then the term's
    /// rows with empty period columns.
    pub fn to_csv(&self) -> String {
        let mut w = csv_writer();
        self.write_csv(&mut w);
        finish_csv(w)
    }

    fn write_csv(&self, w: &mut csv::Writer<Vec<u8>>) {
        let scale = self.rounding.scale;
        let mut row = |start: &str, end: &str, charge: &str, s: &Stats| {
            let _ = w.write_record([
                self.contract.as_str(),
                start,
                end,
                charge,
                &format_scaled(s.mean, scale),
                &format_scaled(s.p5, scale),
                &format_scaled(s.p50, scale),
                &format_scaled(s.p95, scale),
            ]);
        };
        for p in &self.periods {
            let (start, end) = (p.period.start.to_string(), p.period.end.to_string());
            for (id, s) in &p.summary.charges {
                row(&start, &end, id, s);
            }
            row(&start, &end, "total", &p.summary.total);
        }
        for (id, s) in &self.term.charges {
            row("", "", id, s);
        }
        row("", "", "total", &self.term.total);
    }

    /// A table for people: amounts with thousands separators, limits as
    /// percentages of runs.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let runs = if self.runs == 1 {
            "1 run".to_string()
        } else {
            format!("{} runs, seed {}", self.runs, self.seed)
        };
        let _ = writeln!(
            out,
            "{}: {runs}, amounts in {}",
            self.contract,
            self.currency.code()
        );
        let mut rows: Vec<[String; 6]> = vec![[
            "period".into(),
            "line".into(),
            "mean".into(),
            "p5".into(),
            "p50".into(),
            "p95".into(),
        ]];
        let scale = self.rounding.scale;
        let mut section = |label: String, s: &Summary| {
            let mut first = true;
            let mut label_once = || {
                if std::mem::take(&mut first) {
                    label.clone()
                } else {
                    String::new()
                }
            };
            for (id, st) in s
                .charges
                .iter()
                .chain(std::iter::once(&("total".to_string(), s.total)))
            {
                rows.push([
                    label_once(),
                    id.clone(),
                    money(st.mean, scale),
                    money(st.p5, scale),
                    money(st.p50, scale),
                    money(st.p95, scale),
                ]);
            }
            for (id, share) in &s.limits {
                rows.push([
                    label_once(),
                    format!("{id} acted in"),
                    format!("{} of runs", percent(*share)),
                    String::new(),
                    String::new(),
                    String::new(),
                ]);
            }
        };
        for p in &self.periods {
            section(p.period.label(), &p.summary);
        }
        section("term".to_string(), &self.term);
        out.push_str(&table(&rows, &[false, false, true, true, true, true]));
        out
    }
}

/// How a contract's term total differs from the first contract's, run by
/// run, on identical draws.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The contract compared with the first.
    pub contract: String,
    /// Statistics of its term total minus the first's.
    pub stats: Stats,
    /// The share of runs in which its term total is larger, with 4 places.
    pub larger: Decimal,
    /// The scale the difference prints with (the larger of the two
    /// contracts').
    pub scale: u32,
}

/// What `compare` found: each contract's simulation on identical draws (or
/// on the same history), and each later contract's difference from the
/// first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    /// One report per contract, in the order given.
    pub contracts: Vec<SimulationReport>,
    /// For each contract after the first, its difference from the first.
    pub differences: Vec<Difference>,
}

impl Comparison {
    /// `{ "contracts": [simulate documents], "difference": [...] }`.
    pub fn to_json(&self) -> Value {
        let differences: Vec<Value> = self
            .differences
            .iter()
            .map(|d| {
                let mut m = Map::new();
                m.insert("contract".into(), Value::String(d.contract.clone()));
                if let Value::Object(s) = d.stats.to_json(d.scale) {
                    m.extend(s);
                }
                m.insert(
                    "larger".into(),
                    Value::String(format_scaled(d.larger, SHARE_PLACES)),
                );
                Value::Object(m)
            })
            .collect();
        json!({
            "contracts": self.contracts.iter().map(SimulationReport::to_json).collect::<Vec<_>>(),
            "difference": differences,
        })
    }

    /// The JSON document, pretty-printed with a final newline.
    pub fn to_json_string(&self) -> String {
        pretty(&self.to_json())
    }

    /// Every contract's simulate rows under one header, in the order given.
    pub fn to_csv(&self) -> String {
        let mut w = csv_writer();
        for c in &self.contracts {
            c.write_csv(&mut w);
        }
        finish_csv(w)
    }

    /// Each contract's table, then the differences.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        for c in &self.contracts {
            out.push_str(&c.to_table());
            out.push('\n');
        }
        if let Some(first) = self.contracts.first() {
            if !self.differences.is_empty() {
                let _ = writeln!(
                    out,
                    "term total minus {}'s, per run, in {}",
                    first.contract,
                    first.currency.code()
                );
                let mut rows: Vec<[String; 6]> = vec![[
                    "contract".into(),
                    "mean".into(),
                    "p5".into(),
                    "p50".into(),
                    "p95".into(),
                    "larger in".into(),
                ]];
                for d in &self.differences {
                    rows.push([
                        d.contract.clone(),
                        money(d.stats.mean, d.scale),
                        money(d.stats.p5, d.scale),
                        money(d.stats.p50, d.scale),
                        money(d.stats.p95, d.scale),
                        format!("{} of runs", percent(d.larger)),
                    ]);
                }
                out.push_str(&table(&rows, &[false, true, true, true, true, true]));
            }
        }
        out
    }
}

/// One level of a sweep and each contract's term total there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepLevel {
    /// The swept series' value in every period.
    pub level: Decimal,
    /// Each contract's term total (the mean over the runs for a random
    /// scenario), in the order of [`SweepReport::contracts`].
    pub totals: Vec<Decimal>,
}

/// A level at which two contracts cost the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakEven {
    /// The two contracts, in the order given.
    pub contracts: (String, String),
    /// The level, interpolated linearly between the two steps where the
    /// difference of their totals changes sign (or a step where it is 0),
    /// rounded half-even to 6 places.
    pub level: Decimal,
}

/// What `sweep` found: term totals by level of one series, and where
/// contracts break even.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepReport {
    /// The swept series.
    pub series: String,
    /// The contract ids, in the order given.
    pub contracts: Vec<String>,
    /// The contracts' common currency.
    pub currency: Currency,
    /// Each contract's rounding (its scale fixes how its totals print).
    pub roundings: Vec<Rounding>,
    /// The levels, from `from` to `to`.
    pub levels: Vec<SweepLevel>,
    /// Every break-even, by pair of contracts then level.
    pub break_even: Vec<BreakEven>,
}

impl SweepReport {
    /// `{ "series", "levels": [{ "level", "totals": { ID: amount } }],
    /// "break_even": [{ "contracts": [ID, ID], "level" }] }`.
    pub fn to_json(&self) -> Value {
        let levels: Vec<Value> = self
            .levels
            .iter()
            .map(|l| {
                let mut totals = Map::new();
                for ((id, total), r) in self.contracts.iter().zip(&l.totals).zip(&self.roundings) {
                    totals.insert(id.clone(), Value::String(format_scaled(*total, r.scale)));
                }
                json!({ "level": format_normalized(l.level), "totals": totals })
            })
            .collect();
        let break_even: Vec<Value> = self
            .break_even
            .iter()
            .map(|b| {
                json!({
                    "contracts": [b.contracts.0, b.contracts.1],
                    "level": format_normalized(b.level),
                })
            })
            .collect();
        json!({ "series": self.series, "levels": levels, "break_even": break_even })
    }

    /// The JSON document, pretty-printed with a final newline.
    pub fn to_json_string(&self) -> String {
        pretty(&self.to_json())
    }

    /// `contract,level,total` rows with a header, by contract then level.
    pub fn to_csv(&self) -> String {
        let mut w = csv_writer_with(["contract", "level", "total"]);
        for (c, (id, r)) in self.contracts.iter().zip(&self.roundings).enumerate() {
            for l in &self.levels {
                let _ = w.write_record([
                    id.as_str(),
                    &format_normalized(l.level),
                    &format_scaled(l.totals[c], r.scale),
                ]);
            }
        }
        finish_csv(w)
    }

    /// A table of term totals by level, then the break-even levels.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "term totals in {} by level of {}",
            self.currency.code(),
            self.series
        );
        let mut header = vec![self.series.clone()];
        header.extend(self.contracts.iter().cloned());
        let mut rows = vec![header];
        // Levels between round ends can carry 28 digits (1000 + 8000 / 9):
        // the table shows what tells the steps apart; JSON and CSV keep
        // every digit.
        let places = level_places(&self.levels);
        let shown = |level: Decimal, places: u32| {
            let rounded =
                level.round_dp_with_strategy(places, RoundingStrategy::MidpointNearestEven);
            group_thousands(&format_normalized(rounded))
        };
        for l in &self.levels {
            let mut row = vec![shown(l.level, places)];
            for (total, r) in l.totals.iter().zip(&self.roundings) {
                row.push(money(*total, r.scale));
            }
            rows.push(row);
        }
        let right = vec![true; self.contracts.len() + 1];
        out.push_str(&table(&rows, &right));
        if self.break_even.is_empty() {
            if self.contracts.len() > 1 {
                out.push_str("no break-even in the range swept\n");
            }
        } else {
            for b in &self.break_even {
                let _ = writeln!(
                    out,
                    "{} and {} break even at {} = {}",
                    b.contracts.0,
                    b.contracts.1,
                    self.series,
                    shown(b.level, places + 2)
                );
            }
        }
        out
    }
}

/// Pretty JSON with a final newline.
fn pretty(value: &Value) -> String {
    let mut s = serde_json::to_string_pretty(value).unwrap_or_default();
    s.push('\n');
    s
}

fn csv_writer() -> csv::Writer<Vec<u8>> {
    csv_writer_with([
        "contract",
        "period_start",
        "period_end",
        "charge",
        "mean",
        "p5",
        "p50",
        "p95",
    ])
}

fn csv_writer_with<const N: usize>(header: [&str; N]) -> csv::Writer<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(header);
    w
}

fn finish_csv(w: csv::Writer<Vec<u8>>) -> String {
    // Writing into a Vec cannot fail, and every field is UTF-8.
    w.into_inner()
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

/// An amount at `scale` places with thousands separators: `12,345.60`.
fn money(v: Decimal, scale: u32) -> String {
    group_thousands(&format_scaled(v, scale))
}

/// Commas between thousands in the whole part of decimal text.
pub(crate) fn group_thousands(text: &str) -> String {
    let (sign, rest) = match text.strip_prefix('-') {
        Some(r) => ("-", r),
        None => ("", text),
    };
    let (whole, fraction) = match rest.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (rest, None),
    };
    let mut out = String::from(sign);
    for (i, ch) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    if let Some(f) = fraction {
        out.push('.');
        out.push_str(f);
    }
    out
}

/// A share with 4 places as a percentage with 1: `0.1234` is `12.3%`.
fn percent(share: Decimal) -> String {
    let p = (share * Decimal::ONE_HUNDRED)
        .round_dp_with_strategy(1, RoundingStrategy::MidpointNearestEven);
    format!("{}%", format_scaled(p, 1))
}

/// Rows padded into columns, two spaces apart; `right[i]` aligns column i
/// to the right.
fn table<R: AsRef<[String]>>(rows: &[R], right: &[bool]) -> String {
    let columns = rows.iter().map(|r| r.as_ref().len()).max().unwrap_or(0);
    let mut widths = vec![0; columns];
    for r in rows {
        for (i, cell) in r.as_ref().iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, cell) in r.as_ref().iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let pad = widths[i] - cell.chars().count();
            if right.get(i).copied().unwrap_or(false) {
                line.extend(std::iter::repeat_n(' ', pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::RoundingMode;

    fn d(s: &str) -> Decimal {
        s.parse().expect("a decimal")
    }

    #[test]
    fn nearest_rank_follows_the_spec() {
        // Proves rank ceil(p/100*N) (1-based) at small and round N.
        let values: Vec<Decimal> = (1..=10).map(Decimal::from).collect();
        assert_eq!(nearest_rank(&values, 5), d("1"));
        assert_eq!(nearest_rank(&values, 50), d("5"));
        assert_eq!(nearest_rank(&values, 95), d("10"));
        let values: Vec<Decimal> = (1..=100).map(Decimal::from).collect();
        assert_eq!(nearest_rank(&values, 5), d("5"));
        assert_eq!(nearest_rank(&values, 95), d("95"));
        let one = [d("7")];
        assert_eq!(nearest_rank(&one, 5), d("7"));
        assert_eq!(nearest_rank(&one, 95), d("7"));
        let values: Vec<Decimal> = (1..=21).map(Decimal::from).collect();
        // ceil(1.05) = 2, ceil(10.5) = 11, ceil(19.95) = 20.
        assert_eq!(
            (
                nearest_rank(&values, 5),
                nearest_rank(&values, 50),
                nearest_rank(&values, 95)
            ),
            (d("2"), d("11"), d("20"))
        );
    }

    #[test]
    fn selection_finds_the_same_percentiles_as_sorting() {
        // Proves Stats::of's selections agree with nearest ranks of the sorted values, for every small N and shuffled input.
        let r = Rounding::new(2, RoundingMode::HalfEven);
        for n in 1..=60u64 {
            // A fixed shuffle with repeated values.
            let mut values: Vec<Decimal> =
                (0..n).map(|k| Decimal::from((k * 37 + 11) % 23)).collect();
            let mut sorted = values.clone();
            sorted.sort_unstable();
            let s = Stats::of(&mut values, r).expect("stats");
            assert_eq!(s.p5, nearest_rank(&sorted, 5), "n = {n}");
            assert_eq!(s.p50, nearest_rank(&sorted, 50), "n = {n}");
            assert_eq!(s.p95, nearest_rank(&sorted, 95), "n = {n}");
        }
    }

    #[test]
    fn percentiles_are_the_same_whether_scales_agree_or_not() {
        // Proves the integer shortcut for values of one scale picks what a
        // decimal sort picks, negatives included, and so does the mixed path.
        let r = Rounding::new(2, RoundingMode::HalfEven);
        for mixed in [false, true] {
            let mut values: Vec<Decimal> = (0..40i64)
                .map(|k| {
                    let v = Decimal::new((k * 7919 % 97 - 48) * 100, 2);
                    if mixed && k % 3 == 0 {
                        v.normalize()
                    } else {
                        v
                    }
                })
                .collect();
            let mut sorted = values.clone();
            sorted.sort_unstable();
            let s = Stats::of(&mut values, r).expect("stats");
            assert_eq!(s.p5, nearest_rank(&sorted, 5), "mixed = {mixed}");
            assert_eq!(s.p50, nearest_rank(&sorted, 50), "mixed = {mixed}");
            assert_eq!(s.p95, nearest_rank(&sorted, 95), "mixed = {mixed}");
            assert!(s.p5 < Decimal::ZERO && s.p95 > Decimal::ZERO);
            let sum: Decimal = sorted.iter().sum();
            assert_eq!(s.mean, r.round(sum / Decimal::from(40)), "mixed = {mixed}");
        }
    }

    #[test]
    fn means_round_like_lines_and_shares_keep_four_places() {
        // Proves the mean takes the contract's rounding, and shares print 4 places half-even.
        let r = Rounding::new(2, RoundingMode::HalfUp);
        let mut v = vec![d("0.01"), d("0.02")];
        assert_eq!(
            Stats::of(&mut v, r).expect("stats").mean.to_string(),
            "0.02"
        );
        let r = Rounding::new(2, RoundingMode::Down);
        let mut v = vec![d("0.01"), d("0.02")];
        assert_eq!(
            Stats::of(&mut v, r).expect("stats").mean.to_string(),
            "0.01"
        );
        assert!(Stats::of(&mut [], r).is_none());
        assert_eq!(share(1, 3).to_string(), "0.3333");
        assert_eq!(share(0, 7).to_string(), "0.0000");
        assert_eq!(share(7, 7).to_string(), "1.0000");
        assert_eq!(share(1, 80_000).to_string(), "0.0000");
        assert_eq!(share(3, 80_000).to_string(), "0.0000");
        assert_eq!(share(5, 10_000).to_string(), "0.0005");
    }

    #[test]
    fn sweep_tables_show_levels_to_the_places_that_tell_them_apart() {
        // Proves a table rounds levels for reading (1000 + 8000 / 9 shows
        // as 1,889) and small steps keep their digits, while JSON keeps
        // every digit.
        let at = |level: &str| SweepLevel {
            level: d(level),
            totals: vec![d("1")],
        };
        let report = |levels: Vec<SweepLevel>| SweepReport {
            series: "tickets".into(),
            contracts: vec!["a".into()],
            currency: "USD".parse().expect("a currency"),
            roundings: vec![Rounding::new(2, RoundingMode::HalfEven)],
            levels,
            break_even: vec![],
        };
        let ninths = report(vec![
            at("1000"),
            at("1888.8888888888888888888888889"),
            at("2777.7777777777777777777777778"),
        ]);
        let table = ninths.to_table();
        assert!(
            table.contains("1,889") && table.contains("2,778"),
            "{table}"
        );
        assert!(!table.contains("1,888.88"), "{table}");
        assert_eq!(
            ninths.to_json()["levels"][1]["level"],
            "1888.8888888888888888888888889"
        );
        let fine = report(vec![at("0.8"), at("0.801"), at("0.802")]);
        let table = fine.to_table();
        assert!(
            table.contains("0.801") && table.contains("0.802"),
            "{table}"
        );
        assert_eq!(level_places(&[at("0.5")]), 1);
        assert_eq!(level_places(&[]), 0);
    }

    #[test]
    fn thousands_are_grouped() {
        // Proves separators in whole parts of any length and sign, fractions untouched.
        assert_eq!(group_thousands("0.50"), "0.50");
        assert_eq!(group_thousands("999"), "999");
        assert_eq!(group_thousands("1000"), "1,000");
        assert_eq!(group_thousands("-1234567.891"), "-1,234,567.891");
        assert_eq!(group_thousands("123456"), "123,456");
        assert_eq!(percent(d("0.1234")), "12.3%");
        assert_eq!(percent(d("1.0000")), "100.0%");
    }
}
