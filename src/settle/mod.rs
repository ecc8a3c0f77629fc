//! Settlement: a pure function of contract, metric source, period, as-of
//! instant and the state carried from earlier periods.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::contract::Contract;
use crate::error::{Error, ErrorKind, Result};
use crate::metric::{Aggregate, MetricSource, Query};
use crate::money::{Currency, Rounding, RoundingMode};
use crate::period::{Period, Schedule};

pub(crate) mod compile;
pub(crate) mod eval;
mod fingerprint;

pub(crate) use compile::Program;
pub use eval::Amounts;

/// How to settle: what was known when, and whether to write traces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettleOptions {
    /// Ignore metric rows recorded after this instant (none: read every row).
    pub as_of: Option<DateTime<Utc>>,
    /// Write a trace on every line (on by default; off for fast batch and
    /// simulation runs, where amounts are the same).
    pub trace: bool,
}

impl Default for SettleOptions {
    fn default() -> SettleOptions {
        SettleOptions {
            as_of: None,
            trace: true,
        }
    }
}

impl SettleOptions {
    /// Options that read rows known at `as_of`.
    pub fn as_of(mut self, as_of: DateTime<Utc>) -> SettleOptions {
        self.as_of = Some(as_of);
        self
    }

    /// Options with traces on or off.
    pub fn trace(mut self, on: bool) -> SettleOptions {
        self.trace = on;
        self
    }
}

/// What one period leaves for the next: year-to-date quantities, limits'
/// running totals and credit drawn, high-water marks.
///
/// Vectors are by position: `year_to_date` per charge, `running` per limit,
/// `marks` per baseline (in name order). Serialize it to carry settlement
/// across runs.
///
/// A state names the contract and the version of it that made it
/// ([`CompiledContract::version`]): settling with a state of another
/// contract, of an edited contract, or whose vectors do not fit the
/// contract's shape is an [`ErrorKind::StateMismatch`] error, never a wrong
/// number or a panic.
///
/// # Example
/// ```
/// use outcome_billing::{CompiledContract, ErrorKind, SettleOptions};
/// use outcome_billing::metric::MemorySource;
/// let c = CompiledContract::from_path("examples/support-agent/contract.toml")?;
/// let state = c.initial_state();
/// assert_eq!(state.contract, c.contract().id);
/// assert_eq!(state.version, c.version());
/// let mut foreign = state.clone();
/// foreign.contract = "someone-else".into();
/// let error = c
///     .settle_next(&MemorySource::new(), &foreign, &SettleOptions::default())
///     .unwrap_err();
/// assert_eq!(error.kind(), ErrorKind::StateMismatch);
/// # Ok::<(), outcome_billing::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct State {
    /// The id of the contract whose periods this state carries.
    pub contract: String,
    /// The version of the contract that made it ([`CompiledContract::version`]).
    pub version: String,
    /// The index of the next period to settle.
    pub next_period: usize,
    /// Per charge: the contract year's quantity to date (tiered charges
    /// with `accumulate = "contract_year"`).
    pub year_to_date: Vec<Decimal>,
    /// Per limit: the running total `C` of caps and floors, or the credit
    /// drawn, in the current scope.
    pub running: Vec<Decimal>,
    /// Per baseline: a high-water mark's mark so far, the greater of the
    /// baseline's value and its metric's value in every settled period.
    pub marks: Vec<Option<Decimal>>,
    /// Per charge: the quantity of the parts so far of a period cut by
    /// mid-period amendments (`tiered` with `accumulate = "period"` and
    /// `package` price the period-to-date quantity). Empty for a contract
    /// whose periods are not cut; a state persisted before cuts existed
    /// reads as empty.
    #[serde(default)]
    pub period_to_date: Vec<Decimal>,
    /// Per charge: the period-to-date quantity of each group of a grouped
    /// charge over the parts of a cut period, by group value (the format
    /// keeps it per group). Empty where `period_to_date` is; the maps of
    /// ungrouped charges stay empty.
    #[serde(default)]
    pub group_period_to_date: Vec<BTreeMap<String, Decimal>>,
}

/// One step of a line's trace: an input read or a step of the formula, and
/// its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// What was read or computed.
    pub step: String,
    /// Its value, as decimal text.
    pub value: String,
}

/// One line of a statement: a charge's amount, or a limit's adjustment.
///
/// It serializes in the shape of a line of the statement document
/// ([`LineEntry`](crate::report::LineEntry)): `{ "charge", "kind", "quantity" (when
/// there is one), "amount", "trace" }`, decimals as JSON strings (the
/// quantity without trailing zeros, the amount with its own places, which
/// settlement makes the contract's), read back exactly, never through a
/// float. A missing `trace` reads as none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// The charge's id, or the limit's id (`limits[N]` without one).
    pub charge: String,
    /// The charge kind, or `cap`, `floor`, `credit`.
    pub kind: String,
    /// The quantity field's value, for `unit`, `tiered` and `package`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::text::quantity_text"
    )]
    pub quantity: Option<Decimal>,
    /// The amount, rounded once to the contract's scale.
    #[serde(with = "crate::text::decimal_text")]
    pub amount: Decimal,
    /// Inputs and steps, enough to check the line by hand.
    #[serde(default)]
    pub trace: Vec<Step>,
    /// A grouped charge's groups (a charge with `group_by`), in byte order
    /// of their values: the line's amount and quantity are their sums.
    /// Empty when the period has no group; none for other lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<GroupLine>>,
}

/// One group of a grouped charge's line: the charge settled over the
/// observations whose value of the dimension is `group`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupLine {
    /// The value of the dimension (`""` for observations without one).
    pub group: String,
    /// The quantity field's value in the group, for `unit`, `tiered` and
    /// `package`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::text::quantity_text"
    )]
    pub quantity: Option<Decimal>,
    /// The group's amount, rounded once to the contract's scale.
    #[serde(with = "crate::text::decimal_text")]
    pub amount: Decimal,
    /// Inputs and steps in the group.
    #[serde(default)]
    pub trace: Vec<Step>,
}

/// A period's statement.
///
/// It serializes in the shape of a statement of the statement document
/// ([`StatementEntry`](crate::report::StatementEntry)), `{ "period", "lines",
/// "total" }`, amounts as decimal strings; its `period` carries `start` and
/// `end` and then the rest of the [`Period`] (`index`, `contract_year`,
/// `full_start`, `full_end`, `start_at`, `end_at`), so that it reads back
/// equal. (A document's statement has only the dates: read it as a
/// [`StatementEntry`](crate::report::StatementEntry) and find its period with
/// [`StatementEntry::to_statement`](crate::report::StatementEntry::to_statement).)
///
/// # Example
/// ```
/// use outcome_billing::{CompiledContract, SettleOptions, Statement};
/// use outcome_billing::metric::CsvSource;
/// let c = CompiledContract::from_path("examples/support-agent/contract.toml")?;
/// let source = CsvSource::open("examples/support-agent/metrics.csv")?;
/// let statement = c.settle_through(&source, 0, &SettleOptions::default())?.remove(0);
/// let text = serde_json::to_string(&statement).unwrap();
/// assert!(text.starts_with(r#"{"period":{"start":"2026-01-15","end":""#));
/// let back: Statement = serde_json::from_str(&text).unwrap();
/// assert_eq!(back, statement);
/// # Ok::<(), outcome_billing::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    /// The period.
    #[serde(with = "crate::text::period_full")]
    pub period: Period,
    /// Every charge's line in the order written, then limit lines that
    /// acted.
    #[serde(default)]
    pub lines: Vec<Line>,
    /// The sum of the lines, never rounded again.
    #[serde(with = "crate::text::decimal_text")]
    pub total: Decimal,
}

/// A validated, compiled contract, ready to settle.
///
/// # Example
/// ```
/// use outcome_billing::{CompiledContract, Contract, SettleOptions};
/// use outcome_billing::metric::{MemorySource, Observation};
/// use outcome_billing::period::Stamp;
/// let contract = Contract::from_toml_str(r#"
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
/// "#)?;
/// let compiled = CompiledContract::new(contract)?;
/// let mut source = MemorySource::new();
/// source.push(Observation::new("resolved", Stamp::parse("2026-01-05").unwrap(), 1000.into()));
/// let statements = compiled.settle_through(&source, 0, &SettleOptions::default())?;
/// assert_eq!(statements[0].total.to_string(), "990.00");
/// # Ok::<(), outcome_billing::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct CompiledContract {
    contract: Contract,
    schedule: Schedule,
    rounding: Rounding,
    /// Each version's first period and program, in order.
    versions: Vec<(usize, Program)>,
    /// The contract's fingerprint, worked out when first asked for.
    fingerprint: std::sync::OnceLock<String>,
}

impl CompiledContract {
    /// Validates and compiles `contract` and each of its amended versions.
    ///
    /// # Errors
    /// An invalid contract, with the field path.
    pub fn new(contract: Contract) -> Result<CompiledContract> {
        let versions = contract.check_rules()?;
        let laid = Schedule::new(
            contract.start,
            contract.end,
            contract.cadence,
            contract.anchor,
            contract.timezone,
        )
        .map_err(|m| Error::contract("end", m))?;
        // An amendment dated inside a period cuts it there, so every
        // version begins at a period start.
        let schedule = if versions.len() > 1 {
            let dates: Vec<_> = versions.iter().skip(1).map(|v| v.effective).collect();
            laid.cut(&dates)
                .map_err(|m| Error::contract("amendments", m))?
        } else {
            laid
        };
        let rounding = rounding_of(&contract)?;
        let mut programs = Vec::new();
        for (k, version) in versions.into_iter().enumerate() {
            let first = schedule
                .period_starting(version.effective)
                .map(|p| p.index)
                .ok_or_else(|| {
                    Error::contract(
                        format!("amendments[{}].effective", k.saturating_sub(1)),
                        format!("{} is not a date of the term", version.effective),
                    )
                })?;
            let program =
                compile::compile(&version.contract).map_err(|e| match e.field_path() {
                    Some(path) if k > 0 => Error::contract(
                        format!("amendments[{}].set", k - 1),
                        format!("{path}: {}", e.message()),
                    ),
                    _ => e,
                })?;
            programs.push((first, program));
        }
        Ok(CompiledContract {
            contract,
            schedule,
            rounding,
            versions: programs,
            fingerprint: std::sync::OnceLock::new(),
        })
    }

    /// Reads, validates and compiles the contract file at `path`, its
    /// format told by its extension, checking its rules once.
    ///
    /// # Errors
    /// As [`Contract::parse_path`], then the first rule broken, with the
    /// file and the field path.
    pub fn from_path(path: impl AsRef<std::path::Path>) -> Result<CompiledContract> {
        let path = path.as_ref();
        let contract = Contract::parse_path(path)?;
        CompiledContract::new(contract).map_err(|e| e.in_file(path.display().to_string()))
    }

    /// Reads, validates and compiles a contract in TOML text.
    ///
    /// # Errors
    /// As [`Contract::parse_toml_str`], then the first rule broken.
    pub fn from_toml_str(text: &str) -> Result<CompiledContract> {
        CompiledContract::new(Contract::parse_toml_str(text)?)
    }

    /// Reads, validates and compiles a contract in JSON text.
    ///
    /// # Errors
    /// As [`Contract::parse_json_str`], then the first rule broken.
    pub fn from_json_str(text: &str) -> Result<CompiledContract> {
        CompiledContract::new(Contract::parse_json_str(text)?)
    }

    /// Reads, validates and compiles a contract in YAML text. Needs the
    /// `yaml` feature.
    ///
    /// # Errors
    /// As [`Contract::parse_yaml_str`], then the first rule broken.
    #[cfg(feature = "yaml")]
    pub fn from_yaml_str(text: &str) -> Result<CompiledContract> {
        CompiledContract::new(Contract::parse_yaml_str(text)?)
    }

    /// The contract as written, giving up its compiled form.
    pub fn into_contract(self) -> Contract {
        self.contract
    }

    /// The same compiled contract without the body of the contract as
    /// written: settlement reads only the compiled programs and the
    /// contract's header (id, customer, currency, term, cadence, zone,
    /// rounding), so a billing run that holds many contracts at once can
    /// keep them at about half the memory. Afterwards
    /// [`CompiledContract::contract`] shows that header with no params,
    /// metrics, KPIs, baselines, charges, limits or amendments.
    ///
    /// # Example
    /// ```
    /// use outcome_billing::CompiledContract;
    /// let c = CompiledContract::from_path("examples/support-agent/contract.toml")?;
    /// let lean = c.clone().into_lean();
    /// assert_eq!(lean.contract().id, c.contract().id);
    /// assert!(lean.contract().charges.is_empty());
    /// assert_eq!(lean.periods(), c.periods());
    /// # Ok::<(), outcome_billing::Error>(())
    /// ```
    pub fn into_lean(self) -> CompiledContract {
        // The version is of the contract as written: known before its body goes.
        self.version();
        self.strip_body()
    }

    /// [`CompiledContract::into_lean`] without working out the version, for
    /// runs that never hand out a state.
    pub(crate) fn strip_body(mut self) -> CompiledContract {
        let c = &mut self.contract;
        c.params = Default::default();
        c.metrics = Default::default();
        c.kpis = Default::default();
        c.baselines = Default::default();
        c.charges = Vec::new();
        c.limits = Vec::new();
        c.amendments = Vec::new();
        self
    }

    /// Whether some version has a grouped charge (`group_by`).
    pub(crate) fn is_grouped(&self) -> bool {
        self.versions.iter().any(|(_, p)| p.grouping.is_some())
    }

    /// The contract as written.
    pub fn contract(&self) -> &Contract {
        &self.contract
    }

    /// The term's periods.
    pub fn periods(&self) -> &[Period] {
        self.schedule.periods()
    }

    /// The schedule of periods and contract years.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// The rounding every line gets.
    pub fn rounding(&self) -> Rounding {
        self.rounding
    }

    /// The currency.
    pub fn currency(&self) -> Currency {
        self.contract.currency
    }

    /// The contract's version: a fingerprint of everything it says (SHA-256
    /// of its fields as the format writes them, as hex), the same for the
    /// same contract however it was read and on every machine. A state
    /// carries it, so one made by an edited contract is refused.
    pub fn version(&self) -> &str {
        self.fingerprint
            .get_or_init(|| fingerprint::of(&self.contract))
    }

    /// The state before the first period.
    pub fn initial_state(&self) -> State {
        State {
            contract: self.contract.id.clone(),
            version: self.version().to_string(),
            ..self.blank_state()
        }
    }

    /// The state before the first period, not naming the contract: for the
    /// settlement loops inside the crate, which never hand it out.
    fn blank_state(&self) -> State {
        let program = &self.versions[0].1;
        State {
            contract: String::new(),
            version: String::new(),
            next_period: 0,
            year_to_date: vec![Decimal::ZERO; program.charges.len()],
            running: vec![Decimal::ZERO; program.limits.len()],
            marks: vec![None; program.baselines.len()],
            period_to_date: vec![Decimal::ZERO; self.period_to_date_len()],
            group_period_to_date: vec![BTreeMap::new(); self.period_to_date_len()],
        }
    }

    /// How many period-to-date quantities a state holds: one per charge
    /// when some period is cut, else none.
    fn period_to_date_len(&self) -> usize {
        if self.schedule.cut_periods() == 0 {
            0
        } else {
            self.versions[0].1.charges.len()
        }
    }

    /// Every version's program, in order.
    pub(crate) fn programs(&self) -> impl Iterator<Item = &Program> {
        self.versions.iter().map(|(_, p)| p)
    }

    pub(crate) fn program_for(&self, period: usize) -> &Program {
        let k = self.versions.partition_point(|(first, _)| *first <= period);
        // The first version starts at period 0, so k >= 1.
        &self.versions[k.saturating_sub(1)].1
    }

    /// Settles the period `state.next_period` and returns its statement and
    /// the state for the next period.
    ///
    /// # Errors
    /// A settlement or data error naming the period and what failed, or a
    /// usage error when the term has no such period.
    pub fn settle_next(
        &self,
        source: &dyn MetricSource,
        state: &State,
        options: &SettleOptions,
    ) -> Result<(Statement, State)> {
        self.check_state(state)?;
        eval::settle_period(self, source, state, options).map_err(|e| *e)
    }

    /// Refuses a state that is not this contract's, or that does not fit it.
    #[inline]
    fn check_state(&self, state: &State) -> Result<()> {
        let program = &self.versions[0].1;
        let to_date = self.period_to_date_len();
        let fits = state.year_to_date.len() == program.charges.len()
            && state.running.len() == program.limits.len()
            && state.marks.len() == program.baselines.len()
            && state.period_to_date.len() == to_date
            && state.group_period_to_date.len() == to_date
            && state.contract == self.contract.id
            && state.version == self.version();
        if fits {
            Ok(())
        } else {
            self.state_mismatch(state)
        }
    }

    /// Says how `state` does not fit (the rare path of `check_state`).
    #[cold]
    #[inline(never)]
    fn state_mismatch(&self, state: &State) -> Result<()> {
        let id = &self.contract.id;
        let mismatch = |message: String| {
            Err(Error::new(
                ErrorKind::StateMismatch,
                crate::error::Location::None,
                message,
            ))
        };
        if state.contract != *id {
            return mismatch(format!(
                "the state is of contract {:?}, not {id:?}",
                state.contract
            ));
        }
        if state.version != self.version() {
            return mismatch(format!(
                "the state was made by another version of contract {id:?} (version {:?}, not {:?}): settle again from its initial state",
                state.version,
                self.version()
            ));
        }
        let program = &self.versions[0].1;
        let shape = [
            (
                "year_to_date",
                state.year_to_date.len(),
                program.charges.len(),
                "charge",
            ),
            (
                "running",
                state.running.len(),
                program.limits.len(),
                "limit",
            ),
            (
                "marks",
                state.marks.len(),
                program.baselines.len(),
                "baseline",
            ),
            (
                "period_to_date",
                state.period_to_date.len(),
                self.period_to_date_len(),
                "charge of a contract with cut periods",
            ),
            (
                "group_period_to_date",
                state.group_period_to_date.len(),
                self.period_to_date_len(),
                "charge of a contract with cut periods",
            ),
        ];
        for (field, got, want, per) in shape {
            if got != want {
                return mismatch(format!(
                    "the state's {field} holds {got} values; contract {id:?} needs one per {per}, {want}"
                ));
            }
        }
        Ok(())
    }

    /// Settles the period `state.next_period` into `out` and advances
    /// `state` in place: the same amounts as [`CompiledContract::settle_next`],
    /// without lines or traces and without allocating once `out` has been
    /// used. For simulation and large batch runs.
    ///
    /// # Errors
    /// As [`CompiledContract::settle_next`]; after an error `state` may be
    /// partly advanced and should be discarded.
    pub fn settle_next_amounts(
        &self,
        source: &dyn MetricSource,
        state: &mut State,
        out: &mut Amounts,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<()> {
        self.check_state(state)?;
        self.settle_own_next_amounts(source, state, out, as_of)
    }

    /// [`CompiledContract::settle_next_amounts`] for a state that this
    /// contract made ([`CompiledContract::initial_state`]) and only its own
    /// settlements advanced, as the simulation's runs do: such a state fits,
    /// so the check of its shape and of the contract and version it names
    /// (two string comparisons per call) is left out.
    pub(crate) fn settle_own_next_amounts(
        &self,
        source: &dyn MetricSource,
        state: &mut State,
        out: &mut Amounts,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<()> {
        debug_assert!(self.check_state(state).is_ok());
        eval::settle_core(self, source, state, as_of, out, None).map_err(|e| *e)
    }

    /// Settles periods `0..=last`, carrying state, and returns their
    /// statements.
    ///
    /// # Errors
    /// As [`CompiledContract::settle_next`].
    pub fn settle_through(
        &self,
        source: &dyn MetricSource,
        last: usize,
        options: &SettleOptions,
    ) -> Result<Vec<Statement>> {
        if last >= self.periods().len() {
            return Err(Error::usage(format!(
                "the term has {} periods; there is no period {last}",
                self.periods().len()
            )));
        }
        source.check_versions(
            &self.contract.customer,
            self.contract.timezone,
            options.as_of,
        )?;
        self.settle_checked(source, last, options)
    }

    /// [`CompiledContract::settle_through`] once the source's rows are checked.
    fn settle_checked(
        &self,
        source: &dyn MetricSource,
        last: usize,
        options: &SettleOptions,
    ) -> Result<Vec<Statement>> {
        let mut state = self.blank_state();
        let mut out = Vec::with_capacity(last + 1);
        while state.next_period <= last {
            let (statement, next) =
                eval::settle_period(self, source, &state, options).map_err(|e| *e)?;
            out.push(statement);
            state = next;
        }
        Ok(out)
    }

    /// The index of the last period that is due at `now`: the last that has
    /// ended by `now` (its end at or before it) or that holds an observation
    /// the contract reads. `None` when no period is due.
    ///
    /// # Errors
    /// A data error from the source.
    pub fn last_due(
        &self,
        source: &dyn MetricSource,
        now: DateTime<Utc>,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<Option<usize>> {
        source.check_versions(&self.contract.customer, self.contract.timezone, as_of)?;
        let periods = self.periods();
        let ended = periods.iter().rposition(|p| p.end_at <= now);
        let program = self.program_for(0);
        for p in periods.iter().rev() {
            if ended.is_some_and(|e| p.index <= e) {
                break;
            }
            for m in &program.metrics {
                let query = Query {
                    customer: &self.contract.customer,
                    series: &m.series,
                    start: p.start_at,
                    end: p.end_at,
                    timezone: self.contract.timezone,
                    filter: &m.filter,
                    as_of,
                };
                if source.aggregate(&query, Aggregate::Count, None)?.count > 0 {
                    return Ok(Some(p.index));
                }
            }
        }
        Ok(ended)
    }

    /// Settles every period due at `now` (see [`CompiledContract::last_due`]).
    ///
    /// # Errors
    /// As [`CompiledContract::settle_next`].
    pub fn settle_due(
        &self,
        source: &dyn MetricSource,
        now: DateTime<Utc>,
        options: &SettleOptions,
    ) -> Result<Vec<Statement>> {
        match self.last_due(source, now, options.as_of)? {
            Some(last) => self.settle_checked(source, last, options),
            None => Ok(Vec::new()),
        }
    }
}

/// The validating readers: each parses with the format's loader, then
/// validates by compiling, once, through [`CompiledContract::new`], the one
/// place the rules are checked.
impl Contract {
    /// Reads a contract from TOML text and validates it: the contract of
    /// [`CompiledContract::from_toml_str`].
    ///
    /// # Errors
    /// As [`Contract::parse_toml_str`], then the first rule broken, at its
    /// field path.
    ///
    /// # Example
    /// ```
    /// use outcome_billing::Contract;
    /// let err = Contract::from_toml_str(r#"
    ///     format = 1
    ///     id = "demo"
    ///     customer = "acme"
    ///     currency = "USD"
    ///     start = "2026-01-01"
    ///     end = "2027-01-01"
    ///     cadence = "monthly"
    ///
    ///     [[charges]]
    ///     id = "plan"
    ///     kind = "fixed"
    ///     amount = 1e3
    /// "#).unwrap_err();
    /// assert!(err.to_string().starts_with("charges[0].amount: "));
    /// ```
    pub fn from_toml_str(text: &str) -> Result<Contract> {
        CompiledContract::from_toml_str(text).map(CompiledContract::into_contract)
    }

    /// Reads a contract from JSON text and validates it.
    ///
    /// # Errors
    /// As [`Contract::parse_json_str`], then the first rule broken.
    pub fn from_json_str(text: &str) -> Result<Contract> {
        CompiledContract::from_json_str(text).map(CompiledContract::into_contract)
    }

    /// Reads a contract from YAML text and validates it. Needs the `yaml`
    /// feature.
    ///
    /// # Errors
    /// As [`Contract::parse_yaml_str`], then the first rule broken.
    #[cfg(feature = "yaml")]
    pub fn from_yaml_str(text: &str) -> Result<Contract> {
        CompiledContract::from_yaml_str(text).map(CompiledContract::into_contract)
    }

    /// Reads a contract file (its format told by its extension) and
    /// validates it.
    ///
    /// # Errors
    /// As [`Contract::parse_path`], then the first rule broken, with the
    /// file and the field path.
    pub fn from_path(path: impl AsRef<std::path::Path>) -> Result<Contract> {
        CompiledContract::from_path(path).map(CompiledContract::into_contract)
    }

    /// Checks every rule of the format on the contract and on every version
    /// its amendments make, including names, types and cycles in
    /// expressions, by compiling it as [`CompiledContract::new`] does. To
    /// settle, compile instead: this compiles a copy and drops it.
    ///
    /// # Errors
    /// The first rule broken, as an invalid-contract [`Error`] naming the
    /// field path; for a version made by amendments the message says from
    /// which date.
    pub fn validate(&self) -> Result<()> {
        CompiledContract::new(self.clone()).map(drop)
    }
}

fn rounding_of(contract: &Contract) -> Result<Rounding> {
    let spec = contract.rounding.unwrap_or(crate::contract::RoundingSpec {
        scale: None,
        mode: None,
    });
    let scale = match spec.scale {
        Some(s) if s > 28 => {
            return Err(Error::contract(
                "rounding.scale",
                format!("scale must be at most 28, not {s}"),
            ));
        }
        Some(s) => s,
        None => contract.currency.minor_units().ok_or_else(|| {
            Error::contract(
                "rounding.scale",
                format!(
                    "{} has no minor units: set rounding.scale",
                    contract.currency
                ),
            )
        })?,
    };
    Ok(Rounding::new(
        scale,
        spec.mode.unwrap_or(RoundingMode::HalfEven),
    ))
}
