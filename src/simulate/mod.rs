//! Simulation: what a contract is likely to bill under a scenario of its
//! metrics (Monte Carlo), how contracts compare on identical draws or on
//! history, and where they break even as one series sweeps a range.
//!
//! Simulation reuses settlement: every run settles every period with
//! [`CompiledContract::settle_next_amounts`], the same formula as a
//! statement, against a [`ScenarioSource`] that answers window queries from
//! the run's generated values. Runs are drawn from ChaCha8 generators
//! seeded with the seed on the run's own stream, so results depend on the
//! seed and the run index only: the same bytes for 1 thread or 16.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rayon::prelude::*;
use rust_decimal::{Decimal, RoundingStrategy};

use crate::error::{Error, ErrorKind, Result};
use crate::metric::MetricSource;
use crate::money::Rounding;
use crate::settle::CompiledContract;

mod chart;
pub use chart::ChartLabels;
mod engine;
mod scenario;
mod source;
mod stats;

use engine::{Meter, run_frame, run_history};
pub use scenario::{DECIMALS_DEFAULT, DECIMALS_MAX, Model, Scenario};
pub use source::{ScenarioFrame, ScenarioSource};
pub use stats::{
    BreakEven, Comparison, Difference, PeriodSummary, SimulationReport, Stats, Summary, SweepLevel,
    SweepReport,
};

/// The default number of runs.
pub const RUNS_DEFAULT: usize = 1000;

/// The default number of steps of a sweep.
pub const STEPS_DEFAULT: usize = 10;

/// The most steps a sweep may take.
pub const STEPS_MAX: usize = 10_000;

/// Decimal places of an interpolated break-even level.
const BREAK_EVEN_PLACES: u32 = 6;

/// How far a simulation has come: contract-period settlements done of the
/// total expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Settlements done.
    pub done: u64,
    /// Settlements in all.
    pub total: u64,
}

/// A progress callback; called from worker threads, often.
pub type ProgressFn = dyn Fn(Progress) + Send + Sync;

/// How to simulate: runs, seed, threads, and for a history basis the
/// instant that decides which periods are due.
///
/// # Example
/// ```
/// use outcome_billing::simulate::SimulateOptions;
/// let options = SimulateOptions::new().runs(10_000).seed(42).threads(2);
/// assert_eq!((options.runs, options.seed, options.threads), (10_000, 42, Some(2)));
/// assert_eq!(SimulateOptions::default().runs, 1000);
/// ```
#[derive(Clone)]
pub struct SimulateOptions {
    /// Runs of a random scenario (default 1000). A scenario without random
    /// series is settled once and reported as this many equal runs; a
    /// history is settled once and reported as one run.
    pub runs: usize,
    /// The seed of the draws (default 0).
    pub seed: u64,
    /// Threads to run on (default: the current rayon pool).
    pub threads: Option<usize>,
    /// With a history basis, settle the periods due at this instant (see
    /// [`CompiledContract::last_due`]); without it, the whole term. The
    /// library never reads the clock.
    pub now: Option<DateTime<Utc>>,
    progress: Option<Arc<ProgressFn>>,
}

impl Default for SimulateOptions {
    fn default() -> SimulateOptions {
        SimulateOptions {
            runs: RUNS_DEFAULT,
            seed: 0,
            threads: None,
            now: None,
            progress: None,
        }
    }
}

impl fmt::Debug for SimulateOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimulateOptions")
            .field("runs", &self.runs)
            .field("seed", &self.seed)
            .field("threads", &self.threads)
            .field("now", &self.now)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl SimulateOptions {
    /// The defaults: 1000 runs, seed 0, the current thread pool.
    pub fn new() -> SimulateOptions {
        SimulateOptions::default()
    }

    /// With `runs` runs.
    pub fn runs(mut self, runs: usize) -> SimulateOptions {
        self.runs = runs;
        self
    }

    /// With seed `seed`.
    pub fn seed(mut self, seed: u64) -> SimulateOptions {
        self.seed = seed;
        self
    }

    /// On a pool of `threads` threads.
    pub fn threads(mut self, threads: usize) -> SimulateOptions {
        self.threads = Some(threads);
        self
    }

    /// With a history basis, settle the periods due at `now`.
    pub fn now(mut self, now: DateTime<Utc>) -> SimulateOptions {
        self.now = Some(now);
        self
    }

    /// Calls `callback` as settlements complete (from worker threads).
    pub fn progress(
        mut self,
        callback: impl Fn(Progress) + Send + Sync + 'static,
    ) -> SimulateOptions {
        self.progress = Some(Arc::new(callback));
        self
    }

    fn check(&self) -> Result<()> {
        if self.runs == 0 {
            return Err(Error::usage("runs must be at least 1, not 0"));
        }
        if self.threads == Some(0) {
            return Err(Error::usage("threads must be at least 1, not 0"));
        }
        Ok(())
    }

    /// Runs `work` on the requested pool (or the current one).
    fn install<T: Send>(&self, work: impl FnOnce() -> Result<T> + Send) -> Result<T> {
        match self.threads {
            None => work(),
            Some(n) => rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .map_err(|e| Error::usage(format!("cannot start {n} threads: {e}")))?
                .install(work),
        }
    }

    fn meter(&self, total: u64) -> Meter<'_> {
        Meter::new(total, self.progress.as_deref())
    }
}

/// What `compare` and `sweep` settle against.
#[derive(Clone, Copy)]
pub enum Basis<'a> {
    /// Draws of a scenario: every contract sees the same draws in each run.
    Scenario(&'a Scenario),
    /// Recorded history, settled once.
    History(&'a dyn MetricSource),
}

impl fmt::Debug for Basis<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Basis::Scenario(s) => f.debug_tuple("Scenario").field(s).finish(),
            Basis::History(h) => f.debug_tuple("History").field(&h.name()).finish(),
        }
    }
}

/// The one instant that `as_of` text names for every contract of a run
/// over history: RFC 3339 is that instant, and a date is local midnight in
/// each contract's time zone, so contracts in different zones must be given
/// a time instead. `None` when there is no contract.
///
/// # Errors
/// A usage error for malformed text, or a date that is midnight at
/// different instants in two of the contracts' zones.
///
/// # Example
/// ```
/// use outcome_billing::{CompiledContract, Contract};
/// use outcome_billing::simulate::common_instant;
/// let contract = |tz: &str| -> Result<CompiledContract, outcome_billing::Error> {
///     CompiledContract::new(Contract::from_toml_str(&format!(r#"
///         format = 1
///         id = "c-{tz}"
///         customer = "acme"
///         currency = "USD"
///         timezone = "{tz}"
///         start = "2026-01-01"
///         end = "2026-04-01"
///         cadence = "monthly"
///         [[charges]]
///         id = "fee"
///         kind = "fixed"
///         amount = "100"
///     "#))?)
/// };
/// let two = [contract("UTC")?, contract("Europe/Paris")?];
/// let at = common_instant(&two, "2026-03-01T00:00:00Z")?;
/// assert_eq!(at.map(|t| t.to_rfc3339()).as_deref(), Some("2026-03-01T00:00:00+00:00"));
/// // A date is midnight at different instants in the two zones.
/// assert!(common_instant(&two, "2026-03-01").is_err());
/// # Ok::<(), outcome_billing::Error>(())
/// ```
pub fn common_instant(contracts: &[CompiledContract], text: &str) -> Result<Option<DateTime<Utc>>> {
    let stamp = crate::period::Stamp::parse(text)?;
    let mut at: Option<(DateTime<Utc>, &CompiledContract)> = None;
    for c in contracts {
        let t = stamp.instant(c.contract().timezone);
        match at {
            Some((first, f)) if first != t => {
                return Err(Error::usage(format!(
                    "{text:?} is midnight at different instants in {} ({}) and {} ({}): give a time with an offset",
                    f.contract().id,
                    f.contract().timezone,
                    c.contract().id,
                    c.contract().timezone
                )));
            }
            Some(_) => {}
            None => at = Some((t, c)),
        }
    }
    Ok(at.map(|(t, _)| t))
}

/// Simulates `contract` under `scenario`: `options.runs` runs of every
/// simulated period, in parallel, summarized per period and for the term.
///
/// # Errors
/// A usage error for 0 runs or too many to hold; the scenario's errors when
/// it is laid on the contract (too many periods, an unreadable replay
/// file); the first failing run's settlement or data error.
///
/// # Example
/// ```
/// use outcome_billing::{CompiledContract, Contract};
/// use outcome_billing::simulate::{Scenario, SimulateOptions, simulate};
/// let contract = CompiledContract::new(Contract::from_toml_str(r#"
///     format = 1
///     id = "uptime-sla"
///     customer = "acme"
///     currency = "USD"
///     start = "2026-01-01"
///     end = "2027-01-01"
///     cadence = "monthly"
///     [metrics.uptime]
///     series = "uptime_pct"
///     aggregate = "min"
///     [[charges]]
///     id = "plan"
///     kind = "fixed"
///     amount = "1000"
///     [[charges]]
///     id = "sla_credit"
///     kind = "bands"
///     kpi = "uptime"
///     bands = [ { to = "99.9", percent = "-10", of = ["plan"] } ]
/// "#)?)?;
/// let scenario = Scenario::from_toml_str(r#"
///     [series.uptime_pct]
///     model = "normal"
///     mean = "99.95"
///     sd = "0.05"
///     max = "100"
///     decimals = 3
/// "#)?;
/// let report = simulate(&contract, &scenario, &SimulateOptions::new().runs(2000).seed(7))?;
/// let credit = &report.periods[0].summary.charges[1].1;
/// // The credit applies when uptime < 99.9 (about 16 % of months): p5 is a credit, p50 none.
/// assert_eq!((credit.p5.to_string(), credit.p50.to_string()), ("-100.00".into(), "0.00".into()));
/// # Ok::<(), outcome_billing::Error>(())
/// ```
pub fn simulate(
    contract: &CompiledContract,
    scenario: &Scenario,
    options: &SimulateOptions,
) -> Result<SimulationReport> {
    options.check()?;
    let frame = ScenarioFrame::new(contract, scenario)?;
    let meter = options.meter((settled_runs(&frame, options) * frame.periods()) as u64);
    options.install(|| simulate_frame(contract, &frame, options, &meter))
}

/// The runs worth settling: all of them when a series is random, else one.
fn settled_runs(frame: &ScenarioFrame<'_>, options: &SimulateOptions) -> usize {
    if frame.is_random() { options.runs } else { 1 }
}

/// Simulates `options.runs` runs of a laid scenario. Without random series
/// every run is the same: one is settled and reported as all of them (the
/// statistics of identical values are that value; shares are 0 or 1).
fn simulate_frame(
    contract: &CompiledContract,
    frame: &ScenarioFrame<'_>,
    options: &SimulateOptions,
    meter: &Meter<'_>,
) -> Result<SimulationReport> {
    let settled = settled_runs(frame, options);
    let runs = run_frame(contract, frame, settled, options.seed, meter)?;
    let mut report = SimulationReport::from_runs(contract, &runs, options.seed)?;
    if settled < options.runs {
        report.runs = options.runs;
        report.term_totals = vec![report.term_totals[0]; options.runs];
    }
    Ok(report)
}

/// Compares contracts on one basis: each is simulated on identical draws
/// of a scenario (the same seed per run), or settled once on history, and
/// each contract after the first is compared with the first run by run.
///
/// # Errors
/// A usage error for no contract, two with one id, or different
/// currencies; otherwise as [`simulate`], or a data error from the history.
///
/// # Example
/// ```
/// use outcome_billing::{CompiledContract, Contract};
/// use outcome_billing::simulate::{Basis, Scenario, SimulateOptions, compare};
/// let contract = |id: &str, price: &str| -> Result<CompiledContract, outcome_billing::Error> {
///     CompiledContract::new(Contract::from_toml_str(&format!(r#"
///         format = 1
///         id = "{id}"
///         customer = "acme"
///         currency = "USD"
///         start = "2026-01-01"
///         end = "2026-04-01"
///         cadence = "monthly"
///         [metrics.tickets]
///         series = "tickets"
///         aggregate = "sum"
///         [[charges]]
///         id = "per_ticket"
///         kind = "unit"
///         quantity = "tickets"
///         unit_price = "{price}"
///     "#))?)
/// };
/// let contracts = [contract("cheap", "1.00")?, contract("dear", "1.10")?];
/// let scenario = Scenario::from_toml_str("[series.tickets]\nmodel = \"poisson\"\nlambda = 500\n")?;
/// let c = compare(&contracts, Basis::Scenario(&scenario), &SimulateOptions::new().runs(200))?;
/// // Identical draws: the dearer contract costs more in every run.
/// assert_eq!(c.differences[0].larger.to_string(), "1.0000");
/// # Ok::<(), outcome_billing::Error>(())
/// ```
pub fn compare(
    contracts: &[CompiledContract],
    basis: Basis<'_>,
    options: &SimulateOptions,
) -> Result<Comparison> {
    options.check()?;
    check_contracts(contracts, "compare")?;
    let reports = match basis {
        Basis::Scenario(scenario) => {
            let frames = contracts
                .iter()
                .map(|c| ScenarioFrame::new(c, scenario))
                .collect::<Result<Vec<_>>>()?;
            let total = frames
                .iter()
                .map(|f| settled_runs(f, options) * f.periods())
                .sum::<usize>();
            let meter = options.meter(total as u64);
            options.install(|| {
                contracts
                    .iter()
                    .zip(&frames)
                    .map(|(c, frame)| simulate_frame(c, frame, options, &meter))
                    .collect::<Result<Vec<_>>>()
            })?
        }
        Basis::History(source) => {
            let mut periods = Vec::with_capacity(contracts.len());
            for c in contracts {
                periods.push(match options.now {
                    Some(now) => c.last_due(source, now, None)?.map_or(0, |last| last + 1),
                    None => c.periods().len(),
                });
            }
            let meter = options.meter(periods.iter().sum::<usize>() as u64);
            contracts
                .iter()
                .zip(&periods)
                .map(|(c, &n)| {
                    let runs = run_history(c, source, n, &meter)?;
                    SimulationReport::from_runs(c, &runs, options.seed)
                })
                .collect::<Result<Vec<_>>>()?
        }
    };
    let mut differences = Vec::new();
    if let Some((first, rest)) = reports.split_first() {
        for other in rest {
            differences.push(difference(first, other)?);
        }
    }
    Ok(Comparison {
        contracts: reports,
        differences,
    })
}

/// Statistics of `other`'s term total minus `first`'s, run by run.
fn difference(first: &SimulationReport, other: &SimulationReport) -> Result<Difference> {
    let scale = first.rounding.scale.max(other.rounding.scale);
    let rounding = Rounding::new(scale, other.rounding.mode);
    let overflow = || {
        Error::settlement(
            ErrorKind::Overflow,
            other.contract.clone(),
            "term",
            format!("the difference from {} overflows a decimal", first.contract),
        )
    };
    let mut diffs = other
        .term_totals
        .iter()
        .zip(&first.term_totals)
        .map(|(b, a)| b.checked_sub(*a).ok_or_else(overflow))
        .collect::<Result<Vec<_>>>()?;
    let larger = diffs
        .iter()
        .filter(|d| d.is_sign_positive() && !d.is_zero())
        .count();
    let n = diffs.len();
    let stats = Stats::of(&mut diffs, rounding).ok_or_else(overflow)?;
    let mut share = (Decimal::from(larger as u64) / Decimal::from(n.max(1) as u64))
        .round_dp_with_strategy(4, RoundingStrategy::MidpointNearestEven);
    share.rescale(4);
    Ok(Difference {
        contract: other.contract.clone(),
        stats,
        larger: share,
        scale,
    })
}

/// A sweep: the series, the range and the number of steps.
///
/// # Example
/// ```
/// use outcome_billing::simulate::SweepSpec;
/// let spec = SweepSpec::new("tickets", "0".parse().unwrap(), "1000".parse().unwrap()).steps(4);
/// let levels: Vec<String> = spec.levels()?.iter().map(|l| l.to_string()).collect();
/// assert_eq!(levels, ["0", "250", "500", "750", "1000"]);
/// # Ok::<(), outcome_billing::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepSpec {
    /// The swept series: its value in every period is the level.
    pub series: String,
    /// The first level.
    pub from: Decimal,
    /// The last level.
    pub to: Decimal,
    /// The number of steps (default 10): `steps + 1` levels.
    pub steps: usize,
}

impl SweepSpec {
    /// A sweep of `series` from `from` to `to` in 10 steps.
    pub fn new(series: impl Into<String>, from: Decimal, to: Decimal) -> SweepSpec {
        SweepSpec {
            series: series.into(),
            from,
            to,
            steps: STEPS_DEFAULT,
        }
    }

    /// With `steps` steps.
    pub fn steps(mut self, steps: usize) -> SweepSpec {
        self.steps = steps;
        self
    }

    /// The levels `from + k * (to - from) / steps`, k = 0..=steps.
    ///
    /// # Errors
    /// A usage error for 0 steps or more than [`STEPS_MAX`], or when a
    /// level overflows a decimal.
    pub fn levels(&self) -> Result<Vec<Decimal>> {
        if self.steps == 0 || self.steps > STEPS_MAX {
            return Err(Error::usage(format!(
                "steps must be 1 to {STEPS_MAX}, not {}",
                self.steps
            )));
        }
        let overflow = || {
            Error::usage(format!(
                "the levels from {} to {} overflow a decimal",
                self.from, self.to
            ))
        };
        let span = self.to.checked_sub(self.from).ok_or_else(overflow)?;
        let steps = Decimal::from(self.steps as u64);
        (0..=self.steps)
            .map(|k| {
                span.checked_mul(Decimal::from(k as u64))
                    .and_then(|x| x.checked_div(steps))
                    .and_then(|x| self.from.checked_add(x))
                    .map(|x| x.normalize())
                    .ok_or_else(overflow)
            })
            .collect()
    }
}

/// Sweeps one series over a range: at each level (the series' value in
/// every period; other series as the basis has them) each contract's term
/// total — the mean over the runs when the scenario is random — and the
/// levels where two contracts break even.
///
/// With a history basis the whole term is settled (the swept series has an
/// observation in every period).
///
/// # Errors
/// A usage error for no contract, two with one id, different currencies,
/// a series no contract reads, or bad steps; otherwise as [`simulate`].
///
/// # Example
/// ```
/// use outcome_billing::{CompiledContract, Contract};
/// use outcome_billing::simulate::{Basis, Scenario, SimulateOptions, SweepSpec, sweep};
/// let head = r#"
///     format = 1
///     customer = "acme"
///     currency = "USD"
///     start = "2026-01-01"
///     end = "2027-01-01"
///     cadence = "monthly"
///     [metrics.tickets]
///     series = "tickets"
///     aggregate = "sum"
/// "#;
/// let seats = Contract::from_toml_str(&format!(
///     "id = \"seats\"\n{head}\n[[charges]]\nid = \"fee\"\nkind = \"fixed\"\namount = \"1000\"\n"))?;
/// let usage = Contract::from_toml_str(&format!(
///     "id = \"usage\"\n{head}\n[[charges]]\nid = \"per_ticket\"\nkind = \"unit\"\nquantity = \"tickets\"\nunit_price = \"2\"\n"))?;
/// let contracts = [CompiledContract::new(seats)?, CompiledContract::new(usage)?];
/// let spec = SweepSpec::new("tickets", "0".parse().unwrap(), "900".parse().unwrap()).steps(3);
/// let report = sweep(&contracts, &spec, Basis::Scenario(&Scenario::default()), &SimulateOptions::new())?;
/// assert_eq!(report.break_even[0].level.to_string(), "500");
/// # Ok::<(), outcome_billing::Error>(())
/// ```
pub fn sweep(
    contracts: &[CompiledContract],
    spec: &SweepSpec,
    basis: Basis<'_>,
    options: &SimulateOptions,
) -> Result<SweepReport> {
    options.check()?;
    check_contracts(contracts, "sweep")?;
    let levels = spec.levels()?;
    let reads = contracts.iter().any(|c| {
        (0..c.periods().len().max(1)).any(|n| {
            c.program_for(n)
                .metrics
                .iter()
                .any(|m| m.series == spec.series)
        })
    });
    if !reads {
        return Err(Error::usage(format!(
            "no contract reads series {:?}: nothing to sweep",
            spec.series
        )));
    }
    // One scenario per level: the swept series constant at the level.
    let scenarios: Vec<Scenario> = levels
        .iter()
        .map(|&level| {
            let model = Model::Constant { value: level };
            match basis {
                Basis::Scenario(s) => s.clone().with_series(spec.series.clone(), model),
                Basis::History(_) => Scenario::default().with_series(spec.series.clone(), model),
            }
        })
        .collect();
    // The swept series is constant at every level, so either every level's
    // scenario is random or none is.
    let random = scenarios.first().is_some_and(Scenario::is_random);
    let runs = if random { options.runs } else { 1 };
    // Over history with `now` set, each contract runs only its periods due
    // then (as `compare` does), not a term whose data may not exist yet.
    let mut due: Vec<Option<usize>> = vec![None; contracts.len()];
    if let (Basis::History(h), Some(now)) = (basis, options.now) {
        for (d, c) in due.iter_mut().zip(contracts) {
            // A scenario counts periods as laid: the due periods' laid
            // periods (a cut period due in part is run whole).
            *d = Some(
                c.last_due(h, now, None)?
                    .map_or(0, |last| c.schedule().laid_index(last) + 1),
            );
        }
    }
    let mut per_contract: Vec<Vec<Scenario>> = Vec::with_capacity(scenarios.len());
    for scenario in &scenarios {
        per_contract.push(
            due.iter()
                .map(|d| match d {
                    Some(n) => Scenario {
                        periods: Some(*n),
                        ..scenario.clone()
                    },
                    None => scenario.clone(),
                })
                .collect(),
        );
    }
    let mut tasks = Vec::with_capacity(levels.len() * contracts.len());
    for scenarios in &per_contract {
        for (scenario, contract) in scenarios.iter().zip(contracts) {
            tasks.push((scenario, contract));
        }
    }
    let total: usize = tasks
        .iter()
        .map(|(s, c)| runs * settled_periods(c, s.periods))
        .sum();
    let meter = options.meter(total as u64);
    let totals: Vec<Result<Decimal>> = options.install(|| {
        Ok(tasks
            .par_iter()
            .map(|(scenario, contract)| {
                let frame = match basis {
                    Basis::Scenario(_) => ScenarioFrame::new(contract, scenario)?,
                    Basis::History(h) => ScenarioFrame::with_base(contract, scenario, h)?,
                };
                let result = run_frame(contract, &frame, runs, options.seed, &meter)?;
                let report = SimulationReport::from_runs(contract, &result, options.seed)?;
                Ok(report.term.total.mean)
            })
            .collect())
    })?;
    let totals = totals.into_iter().collect::<Result<Vec<_>>>()?;
    let levels: Vec<SweepLevel> = levels
        .iter()
        .enumerate()
        .map(|(k, &level)| SweepLevel {
            level,
            totals: totals[k * contracts.len()..(k + 1) * contracts.len()].to_vec(),
        })
        .collect();
    let ids: Vec<String> = contracts.iter().map(|c| c.contract().id.clone()).collect();
    let break_even = break_even(&ids, &levels)?;
    Ok(SweepReport {
        series: spec.series.clone(),
        contracts: ids,
        currency: contracts[0].currency(),
        roundings: contracts.iter().map(CompiledContract::rounding).collect(),
        levels,
        break_even,
    })
}

/// How many periods a scenario of `laid` periods as laid (the whole term
/// when `None`) settles: the parts of cut periods count one each.
fn settled_periods(contract: &CompiledContract, laid: Option<usize>) -> usize {
    let schedule = contract.schedule();
    match laid {
        None => schedule.len(),
        Some(n) => (0..schedule.len())
            .take_while(|&i| schedule.laid_index(i) < n)
            .count(),
    }
}

/// For each pair of contracts, the levels where the difference of their
/// totals is 0 at a step (the first of a run of zeros) or changes sign
/// between two steps (interpolated linearly).
fn break_even(ids: &[String], levels: &[SweepLevel]) -> Result<Vec<BreakEven>> {
    let overflow = || Error::usage("a break-even level overflows a decimal");
    let mut out = Vec::new();
    for i in 0..ids.len() {
        for j in i + 1..ids.len() {
            let mut previous: Option<(Decimal, Decimal)> = None;
            for l in levels {
                let diff = l.totals[i].checked_sub(l.totals[j]).ok_or_else(overflow)?;
                let at = match previous {
                    _ if diff.is_zero() => match previous {
                        Some((_, d)) if d.is_zero() => None,
                        _ => Some(l.level),
                    },
                    Some((level0, d0))
                        if !d0.is_zero() && d0.is_sign_negative() != diff.is_sign_negative() =>
                    {
                        // level0 + (level - level0) * d0 / (d0 - diff)
                        let step = l.level.checked_sub(level0).ok_or_else(overflow)?;
                        let fraction = d0
                            .checked_div(d0.checked_sub(diff).ok_or_else(overflow)?)
                            .ok_or_else(overflow)?;
                        let x = step
                            .checked_mul(fraction)
                            .and_then(|x| level0.checked_add(x))
                            .ok_or_else(overflow)?;
                        Some(
                            x.round_dp_with_strategy(
                                BREAK_EVEN_PLACES,
                                RoundingStrategy::MidpointNearestEven,
                            )
                            .normalize(),
                        )
                    }
                    _ => None,
                };
                if let Some(level) = at {
                    out.push(BreakEven {
                        contracts: (ids[i].clone(), ids[j].clone()),
                        level,
                    });
                }
                previous = Some((l.level, diff));
            }
        }
    }
    Ok(out)
}

/// Contracts to compare or sweep: at least one, distinct ids, one currency.
fn check_contracts(contracts: &[CompiledContract], what: &str) -> Result<()> {
    let Some(first) = contracts.first() else {
        return Err(Error::usage(format!("{what} needs at least one contract")));
    };
    for (k, c) in contracts.iter().enumerate() {
        let id = &c.contract().id;
        if contracts[..k].iter().any(|o| &o.contract().id == id) {
            return Err(Error::usage(format!(
                "two contracts have the id {id}: {what} needs distinct ids"
            )));
        }
        if c.currency() != first.currency() {
            return Err(Error::usage(format!(
                "{} bills in {} and {id} in {}: {what} needs one currency",
                first.contract().id,
                first.currency(),
                c.currency()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(totals: &[&str], level: &str) -> SweepLevel {
        SweepLevel {
            level: level.parse().expect("decimal"),
            totals: totals.iter().map(|t| t.parse().expect("decimal")).collect(),
        }
    }

    #[test]
    fn break_even_interpolates_sign_changes_and_takes_zeros_once() {
        // Proves linear interpolation between steps, an exact zero at a step reported once, and no touch without a change.
        let ids = ["a".to_string(), "b".to_string()];
        let levels = [
            level(&["1000", "0"], "0"),
            level(&["1000", "600"], "300"),
            level(&["1000", "1200"], "600"),
        ];
        let found = break_even(&ids, &levels).expect("finds");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].level.to_string(), "500");
        let levels = [
            level(&["10", "0"], "0"),
            level(&["10", "10"], "1"),
            level(&["10", "10"], "2"),
            level(&["10", "20"], "3"),
        ];
        let found = break_even(&ids, &levels).expect("finds");
        assert_eq!(
            found
                .iter()
                .map(|b| b.level.to_string())
                .collect::<Vec<_>>(),
            ["1"]
        );
        let levels = [level(&["1", "0"], "0"), level(&["3", "0"], "1")];
        assert!(break_even(&ids, &levels).expect("none").is_empty());
        // A third of the way: rounded to 6 places.
        let levels = [level(&["1", "0"], "0"), level(&["1", "3"], "1")];
        assert_eq!(
            break_even(&ids, &levels).expect("finds")[0]
                .level
                .to_string(),
            "0.333333"
        );
    }

    #[test]
    fn levels_are_exact_steps() {
        // Proves A + k(B-A)/N with exact decimals, descending ranges too, and the steps limit.
        let spec = SweepSpec::new("s", "10".parse().unwrap(), "0".parse().unwrap()).steps(4);
        let l: Vec<String> = spec
            .levels()
            .expect("levels")
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert_eq!(l, ["10", "7.5", "5", "2.5", "0"]);
        assert!(spec.clone().steps(0).levels().is_err());
        assert!(spec.steps(STEPS_MAX + 1).levels().is_err());
    }
}
