//! Evaluating one period: metrics, KPIs, baselines, charges, limits.

use std::collections::BTreeMap;
use std::fmt::Display;

use rust_decimal::Decimal;

use super::compile::{CBaseline, Program, SlotKind};
use super::{CompiledContract, Line, SettleOptions, State, Statement, Step};

use crate::charge::ChargeContext;
use crate::charge::kind::PriceContext;
use crate::contract::{Missing, Scope, Window};
use crate::error::{Error, ErrorKind, R, Result};
use crate::expr::{Env, EvalError, Field};
use crate::metric::{Group, MetricSource, Query};
use crate::money::{Rounding, format_normalized};
use crate::period::{Part, Period};

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

    #[inline(always)]
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

    /// Records the line's rounding step. Inlined down to the flag test,
    /// which is all an untraced settlement pays per charge.
    #[inline(always)]
    fn rounded(&mut self, rounding: Rounding, value: Decimal) {
        if self.on {
            self.push_rounded(rounding, value);
        }
    }

    #[cold]
    #[inline(never)]
    fn push_rounded(&mut self, rounding: Rounding, value: Decimal) {
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
///
/// `WHOLE` is true when the period is not cut and no charge of its version
/// is grouped: the common case, compiled without the tests of either (its
/// part is `None` and it has no group, as constants). Its evaluation is the
/// one contracts without revision 1.1's features ran before that revision.
struct Eval<'a, const WHOLE: bool> {
    cc: &'a CompiledContract,
    program: &'a Program,
    source: &'a dyn MetricSource,
    period: &'a Period,
    as_of: Option<chrono::DateTime<chrono::Utc>>,
    /// High-water marks as carried into this period.
    marks: &'a [Option<Decimal>],
    /// Where the period stands among the parts of a cut period (`None`
    /// for a period not cut: the common case, whose path is unchanged).
    part: Option<Part>,
    /// Per charge: the quantity of the cut period's parts so far (empty
    /// for a contract without cut periods).
    period_to_date: &'a mut [Decimal],
    values: Vec<Option<Decimal>>,
    /// Reused buffers, so evaluating tiers and bands does not allocate.
    buffers: crate::charge::Buffers,
    /// Observations read per metric (for traces).
    counts: Vec<u64>,
    /// Where an error is being reported from.
    context: Context,
    /// The group being settled, inside a grouped charge: its dimension and
    /// value. Every metric read sees only the group's observations.
    group: Option<(&'a str, String)>,
}

/// The item being evaluated, named in errors only (no allocation otherwise).
#[derive(Clone, Copy)]
enum Context {
    None,
    Charge(usize),
    Limit(usize),
}

impl<const WHOLE: bool> Eval<'_, WHOLE> {
    fn context(&self) -> String {
        match self.context {
            Context::None => String::new(),
            Context::Charge(i) => format!(
                "charges[{i}] {}{}",
                self.program.charges[i].id,
                self.in_group()
            ),
            Context::Limit(j) => format!("limits[{j}] {}", self.program.limits[j].name),
        }
    }

    /// Where the period stands among the parts of a cut period: `None` for
    /// a whole period, known at compile time.
    #[inline(always)]
    fn part(&self) -> Option<Part> {
        if WHOLE { None } else { self.part }
    }

    /// The group being settled, inside a grouped charge: none for a whole
    /// period, known at compile time.
    #[inline(always)]
    fn group(&self) -> Option<Group<'_>> {
        if WHOLE {
            return None;
        }
        self.group
            .as_ref()
            .map(|(dimension, value)| Group { dimension, value })
    }

    /// Reduces metric `m` over `query`, in the group being settled if any.
    fn reduce(
        &self,
        query: &Query<'_>,
        m: &super::compile::CMetric,
    ) -> Result<crate::metric::Reduced> {
        match self.group() {
            None => self.source.aggregate(query, m.aggregate, m.of.as_deref()),
            Some(group) => self
                .source
                .aggregate_group(query, group, m.aggregate, m.of.as_deref()),
        }
    }

    /// ` in group "VALUE" of DIMENSION` inside a grouped charge, for
    /// messages.
    fn in_group(&self) -> String {
        match self.group() {
            None => String::new(),
            Some(Group { dimension, value }) => format!(" in group {value:?} of {dimension}"),
        }
    }
}

impl<const WHOLE: bool> Eval<'_, WHOLE> {
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
        let reduced = self.reduce(&self.query(m, start, end), m)?;
        self.counts[index] = reduced.count;
        match (reduced.value, m.missing) {
            (Some(v), _) => Ok(v),
            (None, Missing::Zero) => Ok(Decimal::ZERO),
            (None, Missing::Error) => Err(self.fail(
                ErrorKind::MissingData,
                format!(
                    "metric {} has no observation of series {} in its window{} (missing = \"error\")",
                    m.name,
                    m.series,
                    self.in_group()
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
                    let reduced = self.reduce(&q, m)?;
                    let v = match (reduced.value, m.missing) {
                        (Some(v), _) => v,
                        (None, Missing::Zero) => Decimal::ZERO,
                        (None, Missing::Error) => {
                            return Err(self.fail(ErrorKind::MissingData, format!(
                                "baseline {}: metric {} has no observation in {from}..{to}{} (missing = \"error\")",
                                self.baseline_name(index),
                                m.name,
                                self.in_group()
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

impl<const WHOLE: bool> Env for Eval<'_, WHOLE> {
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

impl<const WHOLE: bool> Eval<'_, WHOLE> {
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

/// What a charge kind reads and reports while it prices a period: the
/// built-in kinds' view of the period, and (as a [`ChargeContext`]) the
/// embedding program's rules' view too.
///
/// `WHOLE` is its evaluation's (see [`Eval`]): the kinds' pricing in a
/// whole period is a type of its own, with one call site in the whole
/// period's charge loop, where it is inlined.
pub(crate) struct Pricing<'e, 'a, const WHOLE: bool> {
    eval: &'e mut Eval<'a, WHOLE>,
    trace: &'e mut Trace,
    /// The charge's position.
    charge: usize,
    /// Year-to-date quantities, one per charge.
    year_to_date: &'e mut [Decimal],
    /// A custom rule's fields (none for built-in kinds).
    fields: &'e [Field],
    quantity: Option<Decimal>,
    rounded: bool,
}

impl<const WHOLE: bool> PriceContext for Pricing<'_, '_, WHOLE> {
    /// A field's value; `name` names it in an error (made only then).
    #[inline(always)]
    fn value(&mut self, name: impl Display, field: &Field) -> R<Decimal> {
        self.eval.field(name, field)
    }

    /// An optional field's value.
    #[inline]
    fn opt(&mut self, name: impl Display, field: &Option<Field>) -> R<Option<Decimal>> {
        self.eval.opt(name, field)
    }

    /// Records a step of the trace; its text is made only when tracing.
    #[inline(always)]
    fn trace(&mut self, step: impl FnOnce() -> String, value: Decimal) {
        self.trace.step(step, value);
    }

    fn trace_in(&mut self, step: impl FnOnce(&Self) -> String, value: Decimal) {
        if self.trace.on {
            let step = step(self);
            self.trace.steps.push(Step {
                step,
                value: format_normalized(value),
            });
        }
    }

    /// Records a step whose value is shown as `value` gives it.
    fn trace_text(&mut self, step: impl FnOnce() -> String, value: impl FnOnce() -> String) {
        if self.trace.on {
            self.trace.steps.push(Step {
                step: step(),
                value: value(),
            });
        }
    }

    /// Whether the line's trace is written.
    fn tracing(&self) -> bool {
        self.trace.on
    }

    /// A step writer for the kinds' pure functions (lazy, like `trace`).
    fn describer(&mut self) -> impl FnMut(&dyn Fn() -> String, Decimal) + '_ {
        self.trace.describer()
    }

    /// A settlement error of `kind`, prefixed with the charge.
    fn fail(&self, kind: ErrorKind, message: impl Display) -> Box<Error> {
        self.eval
            .fail(kind, format!("{}: {message}", self.eval.context()))
    }

    /// The amount overflows a decimal.
    fn overflow(&self) -> Box<Error> {
        self.eval.overflow()
    }

    /// The period being settled.
    fn period(&self) -> &Period {
        self.eval.period
    }

    /// The contract's line rounding.
    fn rounding(&self) -> Rounding {
        self.eval.cc.rounding
    }

    /// Whether the period is the first of its contract year.
    fn year_starts(&self) -> bool {
        let e = &self.eval;
        e.period.index == 0
            || e.cc.periods()[e.period.index - 1].contract_year != e.period.contract_year
    }

    /// The charge's year-to-date quantity (before this period, until set).
    fn year_to_date(&mut self) -> &mut Decimal {
        &mut self.year_to_date[self.charge]
    }

    /// Where the period stands among the parts of a cut period.
    #[inline(always)]
    fn part(&self) -> Option<Part> {
        self.eval.part()
    }

    /// The charge's period-to-date quantity over the parts of a cut period
    /// (before this part, until set).
    fn period_to_date(&mut self) -> R<&mut Decimal> {
        let charge = self.charge;
        if charge < self.eval.period_to_date.len() {
            Ok(&mut self.eval.period_to_date[charge])
        } else {
            Err(self.eval.fail(
                ErrorKind::InvalidValue,
                "the state holds no period-to-date quantity for this charge",
            ))
        }
    }

    /// Sets the line's `quantity`.
    fn set_quantity(&mut self, quantity: Decimal) {
        self.quantity = Some(quantity);
    }

    /// The amount returned is already rounded (year-to-date tiers).
    fn set_rounded(&mut self) {
        self.rounded = true;
    }

    /// Buffers reused across periods.
    fn buffers(&mut self) -> &mut crate::charge::Buffers {
        &mut self.eval.buffers
    }

    /// The rounded amount of the earlier charge at `position` this period.
    fn charge_amount(&self, position: usize) -> Decimal {
        let slot = self.eval.program.charge_slot0 as usize + position;
        self.eval
            .values
            .get(slot)
            .copied()
            .flatten()
            .unwrap_or_default()
    }

    /// The id of the charge at `position`.
    fn charge_id(&self, position: usize) -> &str {
        self.eval
            .program
            .charges
            .get(position)
            .map_or("", |c| c.id.as_str())
    }

    /// The series metric `metric` reads.
    fn series(&self, metric: usize) -> &str {
        self.eval
            .program
            .metrics
            .get(metric)
            .map_or("", |m| m.series.as_str())
    }

    /// Hands every observation metric `metric` reads in the period itself
    /// to `visit`.
    fn scan_period(
        &mut self,
        metric: usize,
        visit: &mut dyn FnMut(&crate::metric::Observation) -> Result<()>,
    ) -> R<()> {
        let e = &*self.eval;
        let Some(m) = e.program.metrics.get(metric) else {
            return Err(e.fail(ErrorKind::InvalidValue, format!("no metric {metric}")));
        };
        let (start, end) = e.window(Window::Period);
        let query = e.query(m, start, end);
        match e.group() {
            None => e.source.scan(&query, visit)?,
            Some(group) => e.source.scan_group(&query, group, visit)?,
        }
        Ok(())
    }

    /// Runs a custom rule with its fields as the context's fields.
    fn with_fields<T>(
        &mut self,
        fields: &[Field],
        rule: impl FnOnce(&mut dyn ChargeContext) -> T,
    ) -> T {
        let mut cx = Pricing::<WHOLE> {
            eval: &mut *self.eval,
            trace: &mut *self.trace,
            charge: self.charge,
            year_to_date: &mut *self.year_to_date,
            fields,
            quantity: self.quantity,
            rounded: self.rounded,
        };
        let out = rule(&mut cx);
        let (quantity, rounded) = (cx.quantity, cx.rounded);
        self.quantity = quantity;
        self.rounded = rounded;
        out
    }
}

impl<const WHOLE: bool> ChargeContext for Pricing<'_, '_, WHOLE> {
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
    buffers: crate::charge::Buffers,
}

/// Settles period `state.next_period` into `out`, updating `state` in
/// place, and writes lines when `lines` is given (with traces when its flag
/// is set). The one settlement formula: every entry point comes here.
///
/// A whole period (not cut, no charge grouped) is settled by the
/// evaluation compiled for it, without the tests of either feature.
pub(crate) fn settle_core(
    cc: &CompiledContract,
    source: &dyn MetricSource,
    state: &mut State,
    as_of: Option<chrono::DateTime<chrono::Utc>>,
    out: &mut Amounts,
    lines: Option<(&mut Vec<Line>, bool)>,
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
    let part = cc.schedule.part(index);
    let at = At {
        index,
        period,
        program,
        part,
    };
    if part.is_none() && program.grouping.is_none() {
        settle_in::<true>(cc, source, state, at, as_of, out, lines)
    } else {
        settle_in::<false>(cc, source, state, at, as_of, out, lines)
    }
}

/// The period being settled: its index, its version's program, and where
/// it stands among the parts of a cut period.
#[derive(Clone, Copy)]
struct At<'a> {
    index: usize,
    period: &'a Period,
    program: &'a Program,
    part: Option<Part>,
}

/// [`settle_core`] for a whole period (`WHOLE`) or any period.
fn settle_in<const WHOLE: bool>(
    cc: &CompiledContract,
    source: &dyn MetricSource,
    state: &mut State,
    At {
        index,
        period,
        program,
        part,
    }: At<'_>,
    as_of: Option<chrono::DateTime<chrono::Utc>>,
    out: &mut Amounts,
    mut lines: Option<(&mut Vec<Line>, bool)>,
) -> R<()>
where
    for<'a> Eval<'a, WHOLE>: SettleCharges,
{
    let periods = cc.periods();
    let State {
        next_period,
        year_to_date,
        running,
        marks,
        period_to_date,
        group_period_to_date,
        ..
    } = state;
    let year_starts = index == 0 || periods[index - 1].contract_year != period.contract_year;
    if year_starts {
        year_to_date.iter_mut().for_each(|q| *q = Decimal::ZERO);
    }
    // A cut period's parts accumulate together: its first part starts
    // afresh, later parts carry on.
    let part = if WHOLE { None } else { part };
    let period_starts = part.is_none_or(|p| p.is_first());
    if part.is_some() && period_starts {
        period_to_date.iter_mut().for_each(|q| *q = Decimal::ZERO);
        group_period_to_date.iter_mut().for_each(BTreeMap::clear);
    }
    for (j, limit) in program.limits.iter().enumerate() {
        let reset = match limit.scope {
            Scope::Period => period_starts,
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
    // Evaluation in a block: `eval` is dropped where it lies, not moved
    // (a copy of the whole struct per period) to be dropped before the
    // marks it borrows are written.
    let new_marks = {
        let mut eval = Eval::<WHOLE> {
            cc,
            program,
            source,
            period,
            as_of,
            marks: marks.as_slice(),
            part,
            period_to_date: period_to_date.as_mut_slice(),
            values,
            buffers: std::mem::take(&mut out.buffers),
            counts,
            context: Context::None,
            group: None,
        };

        out.charges.clear();
        eval.settle_charges(
            year_to_date,
            group_period_to_date,
            &mut out.charges,
            tracing,
            lines.as_mut().map(|(l, t)| (&mut **l, *t)),
        )?;

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
            let running = &mut running[j];
            let line = match part {
                // In the parts of a cut period, a `period` limit keeps one
                // running total, true-up and balance across them, by the
                // `contract_year` formulas, its scope ending with the last part.
                Some(p) if limit.scope == Scope::Period => {
                    part_limit_line(limit, amount, base, running, &mut trace, p)
                }
                _ => {
                    let scope = limit.scope;
                    let last = || match scope {
                        Scope::Term => index + 1 == periods.len(),
                        _ => cc.schedule.is_last_of_year(index),
                    };
                    let terms = crate::limit::Terms {
                        scope,
                        amount,
                        base,
                        running,
                        last: &last,
                    };
                    limit.kind.line(terms, &mut trace.describer())
                }
            }
            .ok_or_else(|| eval.overflow())?;
            out.limits[j] = line;
            if let Some((lines, _)) = lines.as_mut() {
                if !line.is_zero() {
                    lines.push(Line {
                        charge: limit.name.clone(),
                        kind: limit.kind.name().to_string(),
                        quantity: None,
                        amount: line,
                        trace: trace.steps,
                        groups: None,
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
                let reduced = eval.reduce(&eval.query(m, start, end), m)?;
                if let Some(v) = reduced.value {
                    mark = mark.max(v);
                }
                new_marks.get_or_insert_with(Vec::new).push((b, mark));
            }
        }
        out.values = std::mem::take(&mut eval.values);
        out.counts = std::mem::take(&mut eval.counts);
        out.buffers = std::mem::take(&mut eval.buffers);
        new_marks
    };
    for (b, v) in new_marks.into_iter().flatten() {
        marks[b] = Some(v);
    }
    *next_period = index + 1;
    Ok(())
}

/// The charge loop of an evaluation: in a whole period, each charge priced
/// in turn; in any other, grouped charges settled group by group.
trait SettleCharges {
    /// Prices the period's charges in order, pushing their amounts.
    fn settle_charges(
        &mut self,
        year_to_date: &mut [Decimal],
        group_period_to_date: &mut [BTreeMap<String, Decimal>],
        amounts: &mut Vec<Decimal>,
        tracing: bool,
        lines: Option<(&mut Vec<Line>, bool)>,
    ) -> R<()>;
}

impl SettleCharges for Eval<'_, true> {
    #[inline(always)]
    fn settle_charges(
        &mut self,
        year_to_date: &mut [Decimal],
        _: &mut [BTreeMap<String, Decimal>],
        amounts: &mut Vec<Decimal>,
        tracing: bool,
        lines: Option<(&mut Vec<Line>, bool)>,
    ) -> R<()> {
        settle_ungrouped(self, year_to_date, amounts, tracing, lines)
    }
}

impl SettleCharges for Eval<'_, false> {
    fn settle_charges(
        &mut self,
        year_to_date: &mut [Decimal],
        group_period_to_date: &mut [BTreeMap<String, Decimal>],
        amounts: &mut Vec<Decimal>,
        tracing: bool,
        lines: Option<(&mut Vec<Line>, bool)>,
    ) -> R<()> {
        match self.program.grouping.as_deref() {
            None => settle_ungrouped(self, year_to_date, amounts, tracing, lines),
            Some(grouping) => settle_charges_grouped(
                self,
                grouping,
                year_to_date,
                group_period_to_date,
                amounts,
                tracing,
                lines,
            ),
        }
    }
}

/// The charges of a version without grouped charges, priced in order.
#[inline(always)]
fn settle_ungrouped<const WHOLE: bool>(
    eval: &mut Eval<'_, WHOLE>,
    year_to_date: &mut [Decimal],
    amounts: &mut Vec<Decimal>,
    tracing: bool,
    mut lines: Option<(&mut Vec<Line>, bool)>,
) -> R<()> {
    let program = eval.program;
    // Read once, not once per charge through `eval`.
    let hoisted = (eval.cc.rounding, program.charge_slot0 as usize);
    for (i, charge) in program.charges.iter().enumerate() {
        eval.context = Context::Charge(i);
        let amount = price_charge(
            eval,
            hoisted,
            charge,
            i,
            year_to_date,
            tracing,
            lines.as_mut().map(|(l, _)| &mut **l),
        )?;
        amounts.push(amount);
    }
    Ok(())
}

/// A `period` limit in a part of a cut period runs by the `contract_year`
/// formulas, its scope ending with the last part; the trace says so. Out
/// of line: only cut periods come here.
#[cold]
#[inline(never)]
fn part_limit_line(
    limit: &super::compile::CLimit,
    amount: Decimal,
    base: Decimal,
    running: &mut Decimal,
    trace: &mut Trace,
    p: Part,
) -> Option<Decimal> {
    trace.step(
        || {
            format!(
                "part {} of {} of a cut period: the period's running total carries across its parts",
                p.number + 1,
                p.count
            )
        },
        Decimal::from(p.number + 1),
    );
    let last = p.is_last();
    let last = || last;
    let terms = crate::limit::Terms {
        scope: Scope::ContractYear,
        amount,
        base,
        running,
        last: &last,
    };
    limit.kind.line(terms, &mut trace.describer())
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

/// Prices the ungrouped charge at `position` for the period, records its
/// rounded amount for the expressions after it, writes its line when
/// `lines` is given, and returns the amount.
#[inline(always)]
fn price_charge<const WHOLE: bool>(
    eval: &mut Eval<'_, WHOLE>,
    (rounding, charge_slot0): (Rounding, usize),
    charge: &super::compile::CCharge,
    position: usize,
    year_to_date: &mut [Decimal],
    tracing: bool,
    lines: Option<&mut Vec<Line>>,
) -> R<Decimal> {
    let mut trace = Trace::new(tracing);
    let mut cx = Pricing::<WHOLE> {
        eval: &mut *eval,
        trace: &mut trace,
        charge: position,
        year_to_date,
        fields: &[],
        quantity: None,
        rounded: false,
    };
    let exact = charge.body.amount(&mut cx)?;
    let (quantity, already_rounded) = (cx.quantity, cx.rounded);
    let amount = if already_rounded {
        exact
    } else {
        trace.rounded(rounding, exact);
        rounding.round(exact)
    };
    eval.values[charge_slot0 + position] = Some(amount);
    if let Some(lines) = lines {
        let steps = line_steps(eval, &charge.inputs, &mut trace);
        lines.push(Line {
            charge: charge.id.clone(),
            kind: charge.kind.clone(),
            quantity,
            amount,
            trace: steps,
            groups: None,
        });
    }
    Ok(amount)
}

/// A line's trace: the inputs the charge read (`inputs`, its slots), then
/// the steps of its formula. Empty when not tracing.
fn line_steps<const WHOLE: bool>(
    eval: &Eval<'_, WHOLE>,
    inputs: &[u32],
    trace: &mut Trace,
) -> Vec<Step> {
    let mut steps = Vec::new();
    if trace.on {
        for &slot in inputs {
            if let Some((text, value)) = eval.describe_input(slot) {
                steps.push(Step {
                    step: text,
                    value: format_normalized(value),
                });
            }
        }
        steps.append(&mut trace.steps);
    }
    steps
}

/// The charges of a version with some grouped charge: each grouped one by
/// [`settle_grouped`], the others as in a period without groups. Kept out
/// of line: contracts without grouped charges never come here.
#[inline(never)]
fn settle_charges_grouped<'a>(
    eval: &mut Eval<'a, false>,
    grouping: &'a super::compile::Grouping,
    year_to_date: &mut [Decimal],
    group_period_to_date: &mut [BTreeMap<String, Decimal>],
    amounts: &mut Vec<Decimal>,
    tracing: bool,
    mut lines: Option<(&mut Vec<Line>, bool)>,
) -> R<()> {
    let program = eval.program;
    // Each grouped charge's amount in each of its groups, for the grouped
    // charges after it that name it.
    let mut group_amounts: Vec<Vec<(String, Decimal)>> = vec![Vec::new(); program.charges.len()];
    for (i, charge) in program.charges.iter().enumerate() {
        eval.context = Context::Charge(i);
        let amount = match &grouping.charges[i] {
            Some(grouped) => {
                let line = settle_grouped(
                    eval,
                    grouping,
                    grouped,
                    i,
                    &mut group_amounts,
                    group_period_to_date.get_mut(i),
                    lines.as_ref().map(|(_, t)| *t),
                )?;
                let amount = line.amount;
                eval.values[program.charge_slot0 as usize + i] = Some(amount);
                if let Some((lines, _)) = lines.as_mut() {
                    lines.push(line);
                }
                amount
            }
            None => price_charge(
                eval,
                (eval.cc.rounding, program.charge_slot0 as usize),
                charge,
                i,
                year_to_date,
                tracing,
                lines.as_mut().map(|(l, _)| &mut **l),
            )?,
        };
        amounts.push(amount);
    }
    Ok(())
}

/// Settles the grouped charge at `position` (see the format's "Pricing per
/// dimension value"): finds its groups, settles it once in each with every
/// metric read restricted to the group and the group's `params_by` values
/// in force, and returns its line, whose amount and quantity are the sums
/// of the groups'. `lines` is whether the line is wanted, and with traces.
/// Kept out of line: contracts without grouped charges never come here.
#[inline(never)]
fn settle_grouped<'a>(
    eval: &mut Eval<'a, false>,
    grouping: &'a super::compile::Grouping,
    grouped: &'a super::compile::GroupedCharge,
    position: usize,
    group_amounts: &mut [Vec<(String, Decimal)>],
    mut to_date: Option<&mut BTreeMap<String, Decimal>>,
    lines: Option<bool>,
) -> R<Line> {
    let program = eval.program;
    let charge = &program.charges[position];
    let dimension = grouping.dimensions[grouped.dimension].as_str();
    let groups = find_groups(eval, grouped, dimension, group_amounts)?;

    let rounding = eval.cc.rounding;
    let tracing = lines == Some(true);
    let has_quantity = matches!(charge.kind.as_str(), "unit" | "tiered" | "package");
    let saved_values = eval.values.clone();
    let saved_counts = eval.counts.clone();
    let mut scratch_year = vec![Decimal::ZERO; program.charges.len()];
    let mut total = Decimal::ZERO;
    let mut quantity_total: Option<Decimal> = has_quantity.then_some(Decimal::ZERO);
    let mut group_lines = Vec::new();
    let mut amounts = Vec::with_capacity(groups.len());
    let outcome = (|| -> R<()> {
        for group in &groups {
            let variant = grouping.variants[grouped.dimension]
                .get(group)
                .unwrap_or(program);
            eval.program = variant;
            eval.group = Some((dimension, group.clone()));
            // A fresh cache: metrics, KPIs and baselines have the group's
            // values; charges grouped by the same dimension read their
            // amount in this group.
            for (slot, value) in eval.values.iter_mut().enumerate() {
                let s = &program.slots[slot];
                *value = match s.kind {
                    SlotKind::Charge
                        if grouping.charges[s.index]
                            .as_ref()
                            .is_some_and(|g| g.dimension == grouped.dimension) =>
                    {
                        Some(
                            group_amounts[s.index]
                                .iter()
                                .find(|(g, _)| g == group)
                                .map_or(Decimal::ZERO, |(_, a)| *a),
                        )
                    }
                    SlotKind::Charge => saved_values[slot],
                    _ => None,
                };
            }
            eval.counts.iter_mut().for_each(|c| *c = 0);
            // In the parts of a cut period, the period-to-date quantity is
            // the group's own: the charge's slot holds it while the group
            // is priced.
            if let Some(map) = to_date.as_deref() {
                if let Some(q) = eval.period_to_date.get_mut(position) {
                    *q = map.get(group).copied().unwrap_or_default();
                }
            }
            let body = &variant.charges[position].body;
            let mut trace = Trace::new(tracing);
            let mut cx = Pricing::<false> {
                eval: &mut *eval,
                trace: &mut trace,
                charge: position,
                year_to_date: &mut scratch_year,
                fields: &[],
                quantity: None,
                rounded: false,
            };
            let exact = body.amount(&mut cx)?;
            let (quantity, already_rounded) = (cx.quantity, cx.rounded);
            if let (Some(map), Some(q)) =
                (to_date.as_deref_mut(), eval.period_to_date.get(position))
            {
                if eval.part.is_some() {
                    map.insert(group.clone(), *q);
                }
            }
            let amount = if already_rounded {
                exact
            } else {
                trace.rounded(rounding, exact);
                rounding.round(exact)
            };
            total = total.checked_add(amount).ok_or_else(|| eval.overflow())?;
            if let (Some(sum), Some(q)) = (quantity_total.as_mut(), quantity) {
                *sum = sum.checked_add(q).ok_or_else(|| eval.overflow())?;
            }
            amounts.push((group.clone(), amount));
            if lines.is_some() {
                let steps = line_steps(eval, &variant.charges[position].inputs, &mut trace);
                group_lines.push(super::GroupLine {
                    group: group.clone(),
                    quantity: if has_quantity { quantity } else { None },
                    amount,
                    trace: steps,
                });
            }
        }
        Ok(())
    })();
    eval.program = program;
    eval.group = None;
    eval.values = saved_values;
    eval.counts = saved_counts;
    outcome?;
    group_amounts[position] = amounts;

    let mut trace = Trace::new(tracing);
    trace.step(
        || {
            format!(
                "group_by {dimension}: {} group{}",
                groups.len(),
                if groups.len() == 1 { "" } else { "s" }
            )
        },
        Decimal::from(groups.len() as u64),
    );
    trace.step(|| "sum of the groups' amounts".to_string(), total);
    Ok(Line {
        charge: charge.id.clone(),
        kind: charge.kind.clone(),
        quantity: quantity_total,
        amount: total,
        trace: trace.steps,
        groups: Some(group_lines),
    })
}

/// The groups of a grouped charge this period, in byte order: the values
/// of `dimension` among the observations it reads (each metric in its own
/// window, each historical baseline in its laid periods), and the groups
/// of the grouped charges it names.
fn find_groups(
    eval: &Eval<'_, false>,
    grouped: &super::compile::GroupedCharge,
    dimension: &str,
    group_amounts: &[Vec<(String, Decimal)>],
) -> R<std::collections::BTreeSet<String>> {
    let program = eval.program;
    let mut groups = std::collections::BTreeSet::new();
    let reads_data = !grouped.metrics.is_empty() || !grouped.historical.is_empty();
    if reads_data && !eval.source.has_dimension(dimension)? {
        return Err(Box::new(Error::data(
            eval.source.name(),
            format!(
                "{}: group_by names dimension {dimension:?}, which the data lacks",
                eval.context()
            ),
        )));
    }
    for &index in &grouped.metrics {
        let m = &program.metrics[index];
        let (start, end) = eval.window(m.window);
        eval.source
            .groups(&eval.query(m, start, end), dimension, &mut groups)?;
    }
    for &index in &grouped.historical {
        if let CBaseline::Historical { metric, laid } = &program.baselines[index] {
            let m = &program.metrics[*metric];
            let tz = eval.cc.contract.timezone;
            for (from, to) in laid {
                let q = eval.query(
                    m,
                    crate::period::local_midnight(*from, tz),
                    crate::period::local_midnight(*to, tz),
                );
                eval.source.groups(&q, dimension, &mut groups)?;
            }
        }
    }
    for &other in &grouped.charges {
        for (group, _) in group_amounts.get(other).into_iter().flatten() {
            if !groups.contains(group) {
                groups.insert(group.clone());
            }
        }
    }
    Ok(groups)
}
