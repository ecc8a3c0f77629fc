//! Evaluating one period: metrics, KPIs, baselines, charges, limits.

use rust_decimal::Decimal;

use super::compile::{BandValue, Body, CBaseline, CSide, CThreshold, Field, Program, SlotKind};
use super::{CompiledContract, Line, SettleOptions, State, Statement, Step};

use crate::charge::{ChargeContext, corridor, gain_share, tiered};
use crate::contract::{Accumulate, Direction, LimitKind, Missing, PackageRound, Scope, Window};
use crate::error::{Error, ErrorKind, Result};

/// Results inside evaluation box their error, so the values that flow on
/// the hot path stay small.
type R<T> = std::result::Result<T, Box<Error>>;
use crate::expr::{Env, EvalError};
use crate::metric::{MetricSource, Query};
use crate::money::{Rounding, format_normalized};
use crate::period::Period;

/// A line's trace, written only when tracing is on.
pub(crate) struct Trace {
    on: bool,
    steps: Vec<Step>,
}

impl Trace {
    fn new(on: bool) -> Trace {
        Trace {
            on,
            steps: Vec::new(),
        }
    }

    fn step(&mut self, step: impl FnOnce() -> String, value: Decimal) {
        if self.on {
            self.steps.push(Step {
                step: step(),
                value: format_normalized(value),
            });
        }
    }

    /// A step writer for the charge-kind functions, which report steps as
    /// they compute, lazily: no text is made with tracing off.
    fn describer(&mut self) -> impl FnMut(&dyn Fn() -> String, Decimal) + '_ {
        move |step: &dyn Fn() -> String, value| {
            if self.on {
                self.steps.push(Step {
                    step: step(),
                    value: format_normalized(value),
                });
            }
        }
    }

    fn rounded(&mut self, rounding: Rounding, value: Decimal) {
        if self.on {
            self.steps.push(Step {
                step: format!(
                    "rounded {} to {} places",
                    mode_name(rounding),
                    rounding.scale
                ),
                value: rounding.format(value),
            });
        }
    }
}

fn mode_name(r: Rounding) -> &'static str {
    use crate::money::RoundingMode::*;
    match r.mode {
        HalfEven => "half_even",
        HalfUp => "half_up",
        HalfDown => "half_down",
        Up => "up",
        Down => "down",
        Ceiling => "ceiling",
        Floor => "floor",
    }
}

/// Everything one period's evaluation reads and caches.
struct Eval<'a> {
    cc: &'a CompiledContract,
    program: &'a Program,
    source: &'a dyn MetricSource,
    period: &'a Period,
    as_of: Option<chrono::DateTime<chrono::Utc>>,
    /// High-water marks as carried into this period.
    marks: &'a [Option<Decimal>],
    values: Vec<Option<Decimal>>,
    /// Reused buffers, so evaluating tiers and bands does not allocate.
    tier_buf: Vec<tiered::TierValues>,
    band_buf: Vec<corridor::BandValues>,
    edge_buf: Vec<(Option<Decimal>, Option<Decimal>)>,
    /// Observations read per metric (for traces).
    counts: Vec<u64>,
    /// Where an error is being reported from.
    context: Context,
}

/// The item being evaluated, named in errors only (no allocation otherwise).
#[derive(Clone, Copy)]
enum Context {
    None,
    Charge(usize),
    Limit(usize),
}

impl Eval<'_> {
    fn context(&self) -> String {
        match self.context {
            Context::None => String::new(),
            Context::Charge(i) => format!("charges[{i}] {}", self.program.charges[i].id),
            Context::Limit(j) => format!("limits[{j}] {}", self.program.limits[j].name),
        }
    }
}

impl Eval<'_> {
    fn fail(&self, kind: ErrorKind, message: impl Into<String>) -> Box<Error> {
        Box::new(Error::settlement(
            kind,
            self.cc.contract.id.clone(),
            self.period.label(),
            message.into(),
        ))
    }

    /// An expression's failure, named by `what` and the expression's text.
    fn expr_failed(
        &self,
        what: impl std::fmt::Display,
        field: &Field,
        e: &EvalError,
    ) -> Box<Error> {
        let kind = match e {
            EvalError::DivisionByZero => ErrorKind::DivisionByZero,
            EvalError::Overflow => ErrorKind::Overflow,
            _ => ErrorKind::InvalidValue,
        };
        self.fail(kind, format!("{what} {:?}: {e}", field.text))
    }

    fn query<'q>(
        &'q self,
        metric: &'q super::compile::CMetric,
        start: chrono::DateTime<chrono::Utc>,
        end: chrono::DateTime<chrono::Utc>,
    ) -> Query<'q> {
        Query {
            customer: &self.cc.contract.customer,
            series: &metric.series,
            start,
            end,
            timezone: self.cc.contract.timezone,
            filter: &metric.filter,
            as_of: self.as_of,
        }
    }

    /// The window a metric reads in this period.
    fn window(
        &self,
        window: Window,
    ) -> (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) {
        let periods = self.cc.periods();
        let start = match window {
            Window::Period => self.period.start_at,
            Window::ContractYearToDate => {
                let first = self
                    .cc
                    .schedule
                    .year_periods(self.period.contract_year)
                    .start;
                periods[first].start_at
            }
            Window::TermToDate => periods[0].start_at,
        };
        (start, self.period.end_at)
    }

    fn metric(&mut self, index: usize) -> R<Decimal> {
        let program = self.program;
        let m = &program.metrics[index];
        let (start, end) = self.window(m.window);
        let reduced =
            self.source
                .aggregate(&self.query(m, start, end), m.aggregate, m.of.as_deref())?;
        self.counts[index] = reduced.count;
        match (reduced.value, m.missing) {
            (Some(v), _) => Ok(v),
            (None, Missing::Zero) => Ok(Decimal::ZERO),
            (None, Missing::Error) => Err(self.fail(
                ErrorKind::MissingData,
                format!(
                    "metric {} has no observation of series {} in its window (missing = \"error\")",
                    m.name, m.series
                ),
            )),
        }
    }

    fn baseline(&mut self, index: usize) -> R<Decimal> {
        let program = self.program;
        match &program.baselines[index] {
            CBaseline::Value(f) => {
                self.field_in(|e| format!("baseline {}", e.baseline_name(index)), f)
            }
            CBaseline::Historical { metric, laid } => {
                let m = &program.metrics[*metric];
                let tz = self.cc.contract.timezone;
                let mut sum = Decimal::ZERO;
                for (from, to) in laid {
                    let q = self.query(
                        m,
                        crate::period::local_midnight(*from, tz),
                        crate::period::local_midnight(*to, tz),
                    );
                    let reduced = self.source.aggregate(&q, m.aggregate, m.of.as_deref())?;
                    let v = match (reduced.value, m.missing) {
                        (Some(v), _) => v,
                        (None, Missing::Zero) => Decimal::ZERO,
                        (None, Missing::Error) => {
                            return Err(self.fail(ErrorKind::MissingData, format!(
                                "baseline {}: metric {} has no observation in {from}..{to} (missing = \"error\")",
                                self.baseline_name(index),
                                m.name
                            )));
                        }
                    };
                    sum = sum
                        .checked_add(v)
                        .ok_or_else(|| self.fail(ErrorKind::Overflow, "baseline sum overflows"))?;
                }
                let n = Decimal::from(laid.len() as u64);
                sum.checked_div(n).ok_or_else(|| {
                    self.fail(ErrorKind::InvalidValue, "historical baseline has no period")
                })
            }
            CBaseline::HighWaterMark { initial, .. } => {
                let initial =
                    self.field_in(|e| format!("baseline {}", e.baseline_name(index)), initial)?;
                Ok(match self.marks.get(index).copied().flatten() {
                    Some(mark) => mark.max(initial),
                    None => initial,
                })
            }
        }
    }

    fn baseline_name(&self, index: usize) -> &str {
        self.program
            .slots
            .iter()
            .find(|s| s.kind == SlotKind::Baseline && s.index == index)
            .map_or("?", |s| s.name.as_str())
    }

    /// Evaluates a field, naming `what` and the expression in any error.
    /// Evaluates a field; `what` names it in an error (built only then).
    #[inline]
    fn field_in(&mut self, what: impl FnOnce(&Self) -> String, field: &Field) -> R<Decimal> {
        match field.code.eval_in(self) {
            Ok(v) => Ok(v),
            Err(EvalError::Lookup(e)) => Err(e),
            Err(e) => Err(self.expr_failed(what(self), field, &e)),
        }
    }

    #[inline(always)]
    fn field(&mut self, name: impl std::fmt::Display, field: &Field) -> R<Decimal> {
        // Constants (prices, tier edges, caps) are most fields: answered
        // here, without the frame of a call.
        match field.code.constant() {
            Some(v) => Ok(v),
            None => self.evaluate(name, field),
        }
    }

    #[inline(never)]
    fn evaluate(&mut self, name: impl std::fmt::Display, field: &Field) -> R<Decimal> {
        match field.code.eval_in(self) {
            Ok(v) => Ok(v),
            Err(EvalError::Lookup(e)) => Err(e),
            Err(e) => Err(self.expr_failed(format_args!("{} {name}", self.context()), field, &e)),
        }
    }

    fn opt(&mut self, name: impl std::fmt::Display, field: &Option<Field>) -> R<Option<Decimal>> {
        match field {
            Some(f) => self.field(name, f).map(Some),
            None => Ok(None),
        }
    }

    fn overflow(&self) -> Box<Error> {
        self.fail(
            ErrorKind::Overflow,
            format!("{}: the amount overflows a decimal", self.context()),
        )
    }

    /// Describes an input slot for a trace.
    fn describe_input(&self, slot: u32) -> Option<(String, Decimal)> {
        let s = &self.program.slots[slot as usize];
        // A param read only by expressions folded at compile time is never
        // looked up, but it is still an input of the charge.
        let value = match s.kind {
            SlotKind::Param => self.program.params[s.index],
            _ => self.values[slot as usize]?,
        };
        let text = match s.kind {
            SlotKind::Param => format!("param {}", s.name),
            SlotKind::Metric => {
                let m = &self.program.metrics[s.index];
                let n = self.counts[s.index];
                let obs = if n == 1 {
                    "observation"
                } else {
                    "observations"
                };
                let window = match m.window {
                    Window::Period => "",
                    Window::ContractYearToDate => ", contract year to date",
                    Window::TermToDate => ", term to date",
                };
                format!(
                    "metric {}: {} of {} ({n} {obs}{window})",
                    s.name,
                    m.aggregate.name(),
                    m.series
                )
            }
            SlotKind::Kpi => format!("kpi {} = {}", s.name, self.program.kpis[s.index].text),
            SlotKind::Baseline => match &self.program.baselines[s.index] {
                CBaseline::Value(f) => format!("baseline {} = {}", s.name, f.text),
                CBaseline::Historical { laid, metric } => format!(
                    "baseline {}: mean of {} over {} periods {}..{}",
                    s.name,
                    self.program.metrics[*metric].name,
                    laid.len(),
                    laid.first().map(|l| l.0.to_string()).unwrap_or_default(),
                    laid.last().map(|l| l.1.to_string()).unwrap_or_default()
                ),
                CBaseline::HighWaterMark { metric, .. } => {
                    format!(
                        "baseline {}: high-water mark of {}",
                        s.name, self.program.metrics[*metric].name
                    )
                }
            },
            SlotKind::Charge => format!("charge {} (rounded)", s.name),
            SlotKind::Limit => return None,
        };
        Some((text, value))
    }
}

impl Env for Eval<'_> {
    #[inline]
    fn value(&mut self, slot: u32) -> R<Decimal> {
        match self.values.get(slot as usize).copied().flatten() {
            Some(v) => Ok(v),
            None => self.look_up(slot),
        }
    }

    fn rounding(&self) -> Rounding {
        self.cc.rounding
    }
}

impl Eval<'_> {
    /// A slot's value not yet known this period: read, computed, cached.
    #[inline(never)]
    fn look_up(&mut self, slot: u32) -> R<Decimal> {
        let program = self.program;
        let s = &program.slots[slot as usize];
        let (kind, index) = (s.kind, s.index);
        // A KPI or baseline may read another, up to `CHAIN_MAX` deep: each
        // level makes sure of the stack the next needs.
        let v = match kind {
            SlotKind::Param => self.program.params[index],
            SlotKind::Metric => self.metric(index)?,
            SlotKind::Kpi => stacker::maybe_grow(CHAIN_RED_ZONE, CHAIN_GROWTH, || {
                self.field_in(|_| format!("kpi {}", s.name), &program.kpis[index])
            })?,
            SlotKind::Baseline => {
                stacker::maybe_grow(CHAIN_RED_ZONE, CHAIN_GROWTH, || self.baseline(index))?
            }
            // Compilation lets a charge name only earlier charges, whose
            // values are set before this one runs; limits cannot be named.
            SlotKind::Charge | SlotKind::Limit => {
                return Err(self.fail(
                    ErrorKind::InvalidValue,
                    format!("{} is read before it is settled", s.name),
                ));
            }
        };
        self.values[slot as usize] = Some(v);
        Ok(v)
    }
}

/// When less stack than this is left, looking up a KPI or baseline grows it.
const CHAIN_RED_ZONE: usize = 64 * 1024;
/// How much stack a lookup adds at a time.
const CHAIN_GROWTH: usize = 1024 * 1024;

/// A custom rule's view of the period.
struct CustomCtx<'e, 'a> {
    eval: &'e mut Eval<'a>,
    fields: &'a [Field],
    trace: &'e mut Trace,
    quantity: Option<Decimal>,
}

impl ChargeContext for CustomCtx<'_, '_> {
    fn field(&mut self, index: usize) -> Result<Decimal> {
        let fields = self.fields;
        let f = fields.get(index).ok_or_else(|| {
            *self.eval.fail(
                ErrorKind::InvalidArgument,
                format!("{}: no field {index}", self.eval.context()),
            )
        })?;
        self.eval
            .field(format_args!("field {index}"), f)
            .map_err(|e| *e)
    }

    fn period(&self) -> &Period {
        self.eval.period
    }

    fn step(&mut self, step: String, value: Decimal) {
        self.trace.step(|| step, value);
    }

    fn set_quantity(&mut self, quantity: Decimal) {
        self.quantity = Some(quantity);
    }
}

pub(crate) fn settle_period(
    cc: &CompiledContract,
    source: &dyn MetricSource,
    state: &State,
    options: &SettleOptions,
) -> R<(Statement, State)> {
    let mut next = state.clone();
    let mut amounts = Amounts::default();
    let mut lines = Vec::new();
    let trace = options.trace;
    settle_core(
        cc,
        source,
        &mut next,
        options.as_of,
        &mut amounts,
        Some((&mut lines, trace)),
    )?;
    let period = cc.periods()[state.next_period].clone();
    Ok((
        Statement {
            period,
            lines,
            total: amounts.total,
        },
        next,
    ))
}

/// One period's amounts, without lines or traces: what simulation and
/// batch runs read. Reuse one value across periods and runs: its buffers are
/// kept, so settling does not allocate.
#[derive(Debug, Clone, Default)]
pub struct Amounts {
    /// Each charge's rounded amount, in the order written.
    pub charges: Vec<Decimal>,
    /// Each limit's line, 0 where the limit did not act.
    pub limits: Vec<Decimal>,
    /// The statement total.
    pub total: Decimal,
    values: Vec<Option<Decimal>>,
    counts: Vec<u64>,
    tiers: Vec<tiered::TierValues>,
    bands: Vec<corridor::BandValues>,
    edges: Vec<(Option<Decimal>, Option<Decimal>)>,
}

/// Settles period `state.next_period` into `out`, updating `state` in
/// place, and writes lines when `lines` is given (with traces when its flag
/// is set). The one settlement formula: every entry point comes here.
pub(crate) fn settle_core(
    cc: &CompiledContract,
    source: &dyn MetricSource,
    state: &mut State,
    as_of: Option<chrono::DateTime<chrono::Utc>>,
    out: &mut Amounts,
    mut lines: Option<(&mut Vec<Line>, bool)>,
) -> R<()> {
    let index = state.next_period;
    let periods = cc.periods();
    let period = periods.get(index).ok_or_else(|| {
        Error::usage(format!(
            "contract {} has {} periods; all are settled",
            cc.contract.id,
            periods.len()
        ))
    })?;
    let program = cc.program_for(index);
    let State {
        next_period,
        year_to_date,
        running,
        marks,
        ..
    } = state;
    let year_starts = index == 0 || periods[index - 1].contract_year != period.contract_year;
    if year_starts {
        year_to_date.iter_mut().for_each(|q| *q = Decimal::ZERO);
    }
    for (j, limit) in program.limits.iter().enumerate() {
        let reset = match limit.scope {
            Scope::Period => true,
            Scope::ContractYear => year_starts,
            Scope::Term => index == 0,
        };
        if reset {
            running[j] = Decimal::ZERO;
        }
    }

    let rounding = cc.rounding;
    let tracing = matches!(lines, Some((_, true)));
    let mut values = std::mem::take(&mut out.values);
    values.clear();
    values.resize(program.slots.len(), None);
    let mut counts = std::mem::take(&mut out.counts);
    counts.clear();
    counts.resize(program.metrics.len(), 0);
    let mut eval = Eval {
        cc,
        program,
        source,
        period,
        as_of,
        marks: marks.as_slice(),
        values,
        tier_buf: std::mem::take(&mut out.tiers),
        band_buf: std::mem::take(&mut out.bands),
        edge_buf: std::mem::take(&mut out.edges),
        counts,
        context: Context::None,
    };

    out.charges.clear();
    for (i, charge) in program.charges.iter().enumerate() {
        eval.context = Context::Charge(i);
        let mut trace = Trace::new(tracing);
        let (exact, quantity, already_rounded) =
            charge_amount(&mut eval, i, &charge.body, &mut trace, year_to_date)?;
        let amount = if already_rounded {
            exact
        } else {
            rounding.round(exact)
        };
        if !already_rounded {
            trace.rounded(rounding, exact);
        }
        eval.values[program.charge_slot0 as usize + i] = Some(amount);
        out.charges.push(amount);
        if let Some((lines, _)) = lines.as_mut() {
            let mut steps = Vec::new();
            if tracing {
                for &slot in &charge.inputs {
                    if let Some((text, value)) = eval.describe_input(slot) {
                        steps.push(Step {
                            step: text,
                            value: format_normalized(value),
                        });
                    }
                }
                steps.append(&mut trace.steps);
            }
            lines.push(Line {
                charge: charge.id.clone(),
                kind: charge.kind.clone(),
                quantity,
                amount,
                trace: steps,
            });
        }
    }

    out.limits.clear();
    out.limits.resize(program.limits.len(), Decimal::ZERO);
    for (j, limit) in program.limits.iter().enumerate() {
        eval.context = Context::Limit(j);
        let mut trace = Trace::new(tracing);
        let (charges, limits) = (&out.charges, &out.limits);
        let base = crate::money::checked_sum(
            limit
                .charges
                .iter()
                .map(|&c| &charges[c])
                .chain(limit.nested.iter().map(|&k| &limits[k])),
        )
        .ok_or_else(|| eval.overflow())?;
        let amount = match limit.rounded {
            Some(amount) => amount,
            None => rounding.round(eval.field("amount", &limit.amount)?),
        };
        trace.step(|| format!("base: sum of {}", base_names(program, j)), base);
        trace.step(|| format!("amount {}", limit.amount.text), amount);
        let zero = Decimal::ZERO;
        let before = running[j];
        let line = match (limit.kind, limit.scope) {
            (LimitKind::Cap, Scope::Period) => {
                let line = amount
                    .checked_sub(base)
                    .ok_or_else(|| eval.overflow())?
                    .min(zero);
                trace.step(|| "min(0, amount - base)".into(), line);
                line
            }
            (LimitKind::Cap, _) => {
                trace.step(|| "running total C before this period".into(), before);
                let room = amount
                    .checked_sub(before)
                    .and_then(|r| r.checked_sub(base))
                    .ok_or_else(|| eval.overflow())?;
                let line = room.max(-base.max(zero)).min(zero);
                trace.step(
                    || "min(0, max(amount - C - base, -max(base, 0)))".into(),
                    line,
                );
                running[j] = before
                    .checked_add(base)
                    .and_then(|r| r.checked_add(line))
                    .ok_or_else(|| eval.overflow())?;
                line
            }
            (LimitKind::Floor, Scope::Period) => {
                let line = amount
                    .checked_sub(base)
                    .ok_or_else(|| eval.overflow())?
                    .max(zero);
                trace.step(|| "max(0, amount - base)".into(), line);
                line
            }
            (LimitKind::Floor, scope) => {
                let last = match scope {
                    Scope::Term => index + 1 == periods.len(),
                    _ => cc.schedule.is_last_of_year(index),
                };
                trace.step(|| "running total C before this period".into(), before);
                let line = if last {
                    let room = amount
                        .checked_sub(before)
                        .and_then(|r| r.checked_sub(base))
                        .ok_or_else(|| eval.overflow())?;
                    let line = room.max(zero);
                    trace.step(
                        || "true-up in the scope's last period: max(0, amount - C - base)".into(),
                        line,
                    );
                    line
                } else {
                    zero
                };
                running[j] = before
                    .checked_add(base)
                    .and_then(|r| r.checked_add(line))
                    .ok_or_else(|| eval.overflow())?;
                line
            }
            (LimitKind::Credit, _) => {
                let balance = amount
                    .checked_sub(before)
                    .ok_or_else(|| eval.overflow())?
                    .max(zero);
                trace.step(|| "credit drawn earlier in the scope".into(), before);
                trace.step(|| "balance: max(0, amount - drawn)".into(), balance);
                let line = -(balance.min(base.max(zero)));
                trace.step(|| "-min(balance, max(base, 0))".into(), line);
                running[j] = before.checked_sub(line).ok_or_else(|| eval.overflow())?;
                line
            }
        };
        out.limits[j] = line;
        if let Some((lines, _)) = lines.as_mut() {
            if !line.is_zero() {
                lines.push(Line {
                    charge: limit.name.clone(),
                    kind: match limit.kind {
                        LimitKind::Cap => "cap",
                        LimitKind::Floor => "floor",
                        LimitKind::Credit => "credit",
                    }
                    .to_string(),
                    quantity: None,
                    amount: line,
                    trace: trace.steps,
                });
            }
        }
    }

    let total = crate::money::checked_sum(out.charges.iter().chain(out.limits.iter()))
        .ok_or_else(|| eval.fail(ErrorKind::Overflow, "the statement total overflows"))?;
    out.total = rounding.round(total);

    // A high-water mark carries the greater of its value in this period
    // (which holds the initial in force, so an amendment lowering `initial`
    // never lowers the mark) and this period's value of its metric.
    let mut new_marks: Option<Vec<(usize, Decimal)>> = None;
    for (b, baseline) in program.baselines.iter().enumerate() {
        if let CBaseline::HighWaterMark { metric, .. } = baseline {
            let mut mark = eval.baseline(b)?;
            let m = &program.metrics[*metric];
            let (start, end) = eval.window(m.window);
            let reduced =
                source.aggregate(&eval.query(m, start, end), m.aggregate, m.of.as_deref())?;
            if let Some(v) = reduced.value {
                mark = mark.max(v);
            }
            new_marks.get_or_insert_with(Vec::new).push((b, mark));
        }
    }
    out.values = std::mem::take(&mut eval.values);
    out.counts = std::mem::take(&mut eval.counts);
    out.tiers = std::mem::take(&mut eval.tier_buf);
    out.bands = std::mem::take(&mut eval.band_buf);
    out.edges = std::mem::take(&mut eval.edge_buf);
    drop(eval);
    for (b, v) in new_marks.into_iter().flatten() {
        marks[b] = Some(v);
    }
    *next_period = index + 1;
    Ok(())
}

fn base_names(program: &Program, limit: usize) -> String {
    let l = &program.limits[limit];
    let mut names: Vec<&str> = l
        .charges
        .iter()
        .map(|&c| program.charges[c].id.as_str())
        .collect();
    names.extend(l.nested.iter().map(|&k| program.limits[k].name.as_str()));
    names.join(", ")
}

/// Computes charge `i`'s exact amount, its quantity, and whether the amount
/// is already rounded (year-to-date tiers round inside their formula).
#[inline(always)]
fn charge_amount<'a>(
    e: &mut Eval<'a>,
    i: usize,
    body: &'a Body,
    t: &mut Trace,
    year_to_date: &mut [Decimal],
) -> R<(Decimal, Option<Decimal>, bool)> {
    let overflow = |e: &Eval<'_>| e.overflow();
    match body {
        Body::Fixed { amount, prorate } => {
            let a = e.field("amount", amount)?;
            t.step(|| format!("amount {}", amount.text), a);
            if *prorate && e.period.is_stub() {
                let (d, full) = (
                    Decimal::from(e.period.days()),
                    Decimal::from(e.period.full_days()),
                );
                let v = a
                    .checked_mul(d)
                    .and_then(|x| x.checked_div(full))
                    .ok_or_else(|| overflow(e))?;
                t.step(
                    || format!("prorated for a stub: amount * {d} / {full} days"),
                    v,
                );
                Ok((v, None, false))
            } else {
                Ok((a, None, false))
            }
        }
        Body::Unit {
            quantity,
            unit_price,
        } => {
            let q = e.field("quantity", quantity)?;
            let p = e.field("unit_price", unit_price)?;
            t.step(|| format!("quantity: {}", quantity.text), q);
            let v = q.checked_mul(p).ok_or_else(|| overflow(e))?;
            t.step(
                || format!("quantity * unit_price {}", format_normalized(p)),
                v,
            );
            Ok((v, Some(q), false))
        }
        Body::Package {
            quantity,
            size,
            price,
            round,
        } => {
            let q = e.field("quantity", quantity)?;
            let s = e.field("size", size)?;
            let p = e.field("price", price)?;
            t.step(|| format!("quantity: {}", quantity.text), q);
            if q.is_sign_negative() && !q.is_zero() {
                return Err(e.fail(
                    ErrorKind::InvalidValue,
                    format!("{}: quantity is negative ({q})", e.context()),
                ));
            }
            if s <= Decimal::ZERO {
                return Err(e.fail(
                    ErrorKind::InvalidValue,
                    format!("{}: size must be positive, not {s}", e.context()),
                ));
            }
            let ratio = q.checked_div(s).ok_or_else(|| overflow(e))?;
            let packages = match round {
                PackageRound::Up => ratio.ceil(),
                PackageRound::Down => ratio.floor(),
            };
            t.step(
                || {
                    format!(
                        "packages of {}: {}",
                        format_normalized(s),
                        if *round == PackageRound::Up {
                            "ceil(quantity / size)"
                        } else {
                            "floor(quantity / size)"
                        }
                    )
                },
                packages,
            );
            let v = packages.checked_mul(p).ok_or_else(|| overflow(e))?;
            t.step(|| format!("packages * price {}", format_normalized(p)), v);
            Ok((v, Some(q), false))
        }
        Body::Tiered {
            quantity,
            mode,
            tiers,
            constant,
            before: whole_before,
            accumulate,
        } => {
            let q = e.field("quantity", quantity)?;
            t.step(|| format!("quantity: {}", quantity.text), q);
            if q.is_sign_negative() && !q.is_zero() {
                return Err(e.fail(
                    ErrorKind::InvalidValue,
                    format!("{}: quantity is negative ({q})", e.context()),
                ));
            }
            // Constant tiers are read where they are; others are evaluated
            // into the reused buffer.
            let mut buf = Vec::new();
            let values: &[tiered::TierValues] = match constant {
                Some(fixed) => fixed,
                None => {
                    buf = std::mem::take(&mut e.tier_buf);
                    buf.clear();
                    for (j, tier) in tiers.iter().enumerate() {
                        buf.push(tiered::TierValues {
                            up_to: e.opt(format_args!("tiers[{j}].up_to"), &tier.up_to)?,
                            unit_price: e
                                .opt(format_args!("tiers[{j}].unit_price"), &tier.unit_price)?
                                .unwrap_or_default(),
                            flat_fee: e
                                .opt(format_args!("tiers[{j}].flat_fee"), &tier.flat_fee)?
                                .unwrap_or_default(),
                        });
                    }
                    if let Err((j, m)) = tiered::check(&buf) {
                        return Err(e.fail(
                            ErrorKind::InvalidValue,
                            format!("{}: tiers[{j}]: {m}", e.context()),
                        ));
                    }
                    &buf
                }
            };
            let result = match accumulate {
                Accumulate::Period => {
                    let v = priced(*mode, values, whole_before, q, t).ok_or_else(|| overflow(e))?;
                    Ok((v, Some(q), false))
                }
                Accumulate::ContractYear => {
                    let before = year_to_date[i];
                    let y = before.checked_add(q).ok_or_else(|| overflow(e))?;
                    let first = e.period.index == 0
                        || e.cc.periods()[e.period.index - 1].contract_year
                            != e.period.contract_year;
                    let r = e.cc.rounding;
                    let a_y =
                        priced(*mode, values, whole_before, y, t).ok_or_else(|| overflow(e))?;
                    let a_y = r.round(a_y);
                    let a_before = if first {
                        Decimal::ZERO
                    } else {
                        r.round(
                            tiered::amount_quietly(*mode, values, whole_before, before)
                                .ok_or_else(|| overflow(e))?,
                        )
                    };
                    year_to_date[i] = y;
                    t.step(|| "year to date Y".into(), y);
                    t.step(|| "round(A(Y))".into(), a_y);
                    t.step(
                        || {
                            if first {
                                "round(A(Y - q)): 0 in the year's first period".into()
                            } else {
                                "round(A(Y - q))".into()
                            }
                        },
                        a_before,
                    );
                    let v = a_y - a_before;
                    if t.on {
                        t.steps.push(Step {
                            step: "round(A(Y)) - round(A(Y - q))".into(),
                            value: r.format(v),
                        });
                    }
                    Ok((r.round(v), Some(q), true))
                }
            };
            if constant.is_none() {
                e.tier_buf = buf;
            }
            result
        }
        Body::Percentage {
            base,
            rate,
            per_observation,
        } => {
            let r = e.field("rate", rate)?;
            match per_observation {
                None => {
                    let b = e.field("base", base)?;
                    t.step(|| format!("base: {}", base.text), b);
                    let v = b.checked_mul(r).ok_or_else(|| overflow(e))?;
                    t.step(|| format!("base * rate {}", format_normalized(r)), v);
                    Ok((v, None, false))
                }
                Some(po) => {
                    let fixed = e
                        .opt("per_observation.fixed", &po.fixed)?
                        .unwrap_or_default();
                    let min = e.opt("per_observation.min", &po.min)?;
                    let max = e.opt("per_observation.max", &po.max)?;
                    let program = e.program;
                    let m = &program.metrics[po.metric];
                    let (start, end) = e.window(Window::Period);
                    let query = e.query(m, start, end);
                    let mut sum = Decimal::ZERO;
                    let mut n: u64 = 0;
                    let mut overflowed = false;
                    e.source.scan(&query, &mut |o| {
                        let mut each = o.value.checked_mul(r).and_then(|x| x.checked_add(fixed));
                        if let Some(v) = each.as_mut() {
                            if let Some(lo) = min {
                                *v = (*v).max(lo);
                            }
                            if let Some(hi) = max {
                                *v = (*v).min(hi);
                            }
                        }
                        match each.and_then(|v| sum.checked_add(v)) {
                            Some(s) => sum = s,
                            None => overflowed = true,
                        }
                        n += 1;
                        Ok(())
                    })?;
                    if overflowed {
                        return Err(overflow(e));
                    }
                    t.step(
                        || {
                            let mut s = format!(
                                "{n} observations of {}: each value * {} + {}",
                                m.series,
                                format_normalized(r),
                                format_normalized(fixed)
                            );
                            if let Some(lo) = min {
                                s.push_str(&format!(", at least {}", format_normalized(lo)));
                            }
                            if let Some(hi) = max {
                                s.push_str(&format!(", at most {}", format_normalized(hi)));
                            }
                            s.push_str("; summed");
                            s
                        },
                        sum,
                    );
                    Ok((sum, None, false))
                }
            }
        }
        Body::GainShare {
            actual,
            baseline,
            direction,
            value_per_unit,
            gains,
            losses,
        } => {
            let a = e.field("actual", actual)?;
            let b = e.field("baseline", baseline)?;
            let vpu = e
                .opt("value_per_unit", value_per_unit)?
                .unwrap_or(Decimal::ONE);
            t.step(|| format!("actual: {}", actual.text), a);
            t.step(|| format!("baseline: {}", baseline.text), b);
            let improvement = match direction {
                Direction::Increase => a.checked_sub(b),
                Direction::Decrease => b.checked_sub(a),
            }
            .ok_or_else(|| overflow(e))?;
            t.step(
                || match direction {
                    Direction::Increase => "improvement: actual - baseline".into(),
                    Direction::Decrease => "improvement: baseline - actual".into(),
                },
                improvement,
            );
            let v = improvement.checked_mul(vpu).ok_or_else(|| overflow(e))?;
            t.step(
                || {
                    format!(
                        "value: improvement * value_per_unit {}",
                        format_normalized(vpu)
                    )
                },
                v,
            );
            let money_base = b.checked_mul(vpu).ok_or_else(|| overflow(e))?;
            let g = side(e, "", gains, money_base, t)?;
            let l = match losses {
                Some(l) => Some(side(e, "losses.", l, money_base, t)?),
                None => None,
            };
            let mut describe = t.describer();
            let amount =
                gain_share::amount(v, &g, l.as_ref(), &mut describe).ok_or_else(|| overflow(e))?;
            Ok((amount, None, false))
        }
        Body::Bands {
            kpi,
            bands,
            edges: constant,
        } => {
            let k = e.field("kpi", kpi)?;
            t.step(|| format!("kpi: {}", kpi.text), k);
            let band_of = |edges: &[(Option<Decimal>, Option<Decimal>)]| {
                edges
                    .iter()
                    .position(|(f, to)| f.is_none_or(|f| f <= k) && to.is_none_or(|to| k < to))
            };
            let chosen = match constant {
                // Every edge constant (checked at load): read in place.
                Some(fixed) => band_of(fixed),
                None => {
                    let mut edges = std::mem::take(&mut e.edge_buf);
                    edges.clear();
                    for (j, band) in bands.iter().enumerate() {
                        let from = e.opt(format_args!("bands[{j}].from"), &band.from)?;
                        let to = e.opt(format_args!("bands[{j}].to"), &band.to)?;
                        if let (Some(f), Some(t)) = (from, to) {
                            if f >= t {
                                return Err(e.fail(
                                    ErrorKind::InvalidValue,
                                    format!(
                                        "{}: bands[{j}]: from must be below to ({f} then {t})",
                                        e.context()
                                    ),
                                ));
                            }
                        }
                        for (o, (of, ot)) in edges.iter().enumerate() {
                            let overlap = to.is_none_or(|t| of.is_none_or(|f: Decimal| f < t))
                                && ot.is_none_or(|t: Decimal| from.is_none_or(|f| f < t));
                            if overlap {
                                return Err(e.fail(
                                    ErrorKind::InvalidValue,
                                    format!("{}: bands[{j}] overlaps bands[{o}]", e.context()),
                                ));
                            }
                        }
                        edges.push((from, to));
                    }
                    let chosen = band_of(&edges);
                    e.edge_buf = edges;
                    chosen
                }
            };
            match chosen {
                None => {
                    t.step(|| "in no band".into(), Decimal::ZERO);
                    Ok((Decimal::ZERO, None, false))
                }
                Some(j) => match &bands[j].value {
                    BandValue::Amount(a) => {
                        let v = e.field(format_args!("bands[{j}].amount"), a)?;
                        t.step(|| format!("bands[{j}]: amount {}", a.text), v);
                        Ok((v, None, false))
                    }
                    BandValue::Percent(p, of) => {
                        let pct = e.field(format_args!("bands[{j}].percent"), p)?;
                        let mut sum = Decimal::ZERO;
                        for &c in of {
                            let amount =
                                e.values[e.program.charge_slot0 as usize + c].unwrap_or_default();
                            sum = sum.checked_add(amount).ok_or_else(|| overflow(e))?;
                        }
                        let names: Vec<&str> = of
                            .iter()
                            .map(|&c| e.program.charges[c].id.as_str())
                            .collect();
                        t.step(|| format!("sum of {}", names.join(", ")), sum);
                        let v = pct
                            .checked_mul(sum)
                            .and_then(|x| x.checked_div(Decimal::ONE_HUNDRED))
                            .ok_or_else(|| overflow(e))?;
                        t.step(
                            || format!("bands[{j}]: {}% of the sum", format_normalized(pct)),
                            v,
                        );
                        Ok((v, None, false))
                    }
                },
            }
        }
        Body::Corridor {
            actual,
            target,
            bands,
            direction,
        } => {
            let a = e.field("actual", actual)?;
            let tg = e.field("target", target)?;
            t.step(|| format!("actual: {}", actual.text), a);
            t.step(|| format!("target: {}", target.text), tg);
            if tg.is_zero() {
                return Err(e.fail(
                    ErrorKind::DivisionByZero,
                    format!(
                        "{}: target {:?} is 0: division by zero",
                        e.context(),
                        target.text
                    ),
                ));
            }
            let mut values = std::mem::take(&mut e.band_buf);
            values.clear();
            for (j, band) in bands.iter().enumerate() {
                values.push(corridor::BandValues {
                    from: e
                        .opt(format_args!("bands[{j}].from"), &band.from)?
                        .unwrap_or_default(),
                    to: e.opt(format_args!("bands[{j}].to"), &band.to)?,
                    share: e.field(format_args!("bands[{j}].share"), &band.share)?,
                });
            }
            if let Err((j, m)) = corridor::check(&values) {
                return Err(e.fail(
                    ErrorKind::InvalidValue,
                    format!("{}: bands[{j}]: {m}", e.context()),
                ));
            }
            let mut describe = t.describer();
            let v = corridor::amount(a, tg, &values, *direction, &mut describe);
            e.band_buf = values;
            Ok((v.ok_or_else(|| overflow(e))?, None, false))
        }
        Body::Expr { amount } => {
            let v = e.field("amount", amount)?;
            t.step(|| format!("amount: {}", amount.text), v);
            Ok((v, None, false))
        }
        Body::Custom { rule, fields } => {
            let rule = rule.clone();
            let mut ctx = CustomCtx {
                eval: e,
                fields,
                trace: t,
                quantity: None,
            };
            let v = rule.amount(&mut ctx)?;
            let q = ctx.quantity;
            Ok((v, q, false))
        }
    }
}

/// The tiers' amount for `quantity`: with its steps when tracing, else by
/// the quiet path (the same decimal).
fn priced(
    mode: crate::contract::TierMode,
    values: &[tiered::TierValues],
    before: &[Option<Decimal>],
    quantity: Decimal,
    t: &mut Trace,
) -> Option<Decimal> {
    if t.on {
        tiered::amount(mode, values, quantity, &mut t.describer())
    } else {
        tiered::amount_quietly(mode, values, before, quantity)
    }
}

/// A gain-share side's terms in money for this period.
fn side(
    e: &mut Eval<'_>,
    prefix: &str,
    s: &CSide,
    money_base: Decimal,
    t: &mut Trace,
) -> R<gain_share::Side> {
    let share = e.field(format_args!("{prefix}share"), &s.share)?;
    let money = |e: &mut Eval<'_>, name: &str, th: &CThreshold| -> R<Decimal> {
        match th {
            CThreshold::Absolute(f) => e.field(format_args!("{prefix}{name}"), f),
            CThreshold::Relative(f) => {
                let r = e.field(format_args!("{prefix}{name}.relative"), f)?;
                r.checked_mul(money_base).ok_or_else(|| e.overflow())
            }
        }
    };
    let threshold = match &s.threshold {
        Some(th) => money(e, "threshold", th)?,
        None => Decimal::ZERO,
    };
    let cap = match &s.cap {
        Some(c) => Some(money(e, "cap", c)?),
        None => None,
    };
    let side_name = if prefix.is_empty() { "gains" } else { "losses" };
    t.step(|| format!("{side_name}: share"), share);
    if s.threshold.is_some() {
        t.step(|| format!("{side_name}: threshold in money"), threshold);
    }
    if let Some(c) = cap {
        t.step(|| format!("{side_name}: cap in money"), c);
    }
    Ok(gain_share::Side {
        share,
        threshold,
        sharing: s.sharing,
        cap,
    })
}
