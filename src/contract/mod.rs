//! The contract file format, version 1: typed, public and buildable in code.
//!
//! The types here are plain data that mirror the format page field by
//! field. Loading (`load`), the validation rules (`rules`) and amendments
//! (`amend`) live in submodules; `Contract::validate` runs them all.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::expr::Expr;
use crate::metric::Aggregate;
use crate::money::{Currency, RoundingMode};
use crate::period::Cadence;

pub(crate) mod amend;
pub(crate) mod load;
pub(crate) mod rules;
pub mod shape;

pub use crate::charge::ChargeKind;
pub use crate::charge::bands::{Band, BandsCharge};
pub use crate::charge::corridor::{CorridorBand, CorridorCharge, CorridorDirection};
pub use crate::charge::expr::ExprCharge;
pub use crate::charge::fixed::FixedCharge;
pub use crate::charge::gain_share::{
    Direction, GainShareCharge, Losses, ShareCap, Sharing, Threshold,
};
pub use crate::charge::package::{PackageCharge, PackageRound};
pub use crate::charge::percentage::{PerObservation, PercentageCharge};
pub use crate::charge::tiered::{Accumulate, Tier, TierMode, TieredCharge};
pub use crate::charge::unit::UnitCharge;
pub use crate::limit::{LimitKind, Scope};
pub use crate::metric::Window;
pub use amend::Version;

pub(crate) use crate::expr::DECIMAL_TOKEN;

/// A contract: who pays what, for which outcomes, over which term.
///
/// # Example
/// ```
/// use outcome_billing::Contract;
/// let contract = Contract::from_toml_str(r#"
///     format = 1
///     id = "demo"
///     customer = "acme"
///     currency = "USD"
///     start = "2026-01-01"
///     end = "2027-01-01"
///     cadence = "monthly"
///
///     [metrics.resolutions]
///     series = "resolved_conversations"
///     aggregate = "sum"
///
///     [[charges]]
///     id = "per_resolution"
///     kind = "unit"
///     quantity = "resolutions"
///     unit_price = "0.99"
/// "#)?;
/// assert_eq!(contract.charges.len(), 1);
/// # Ok::<(), outcome_billing::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contract {
    /// The format version: 1.
    pub format: u32,
    /// The contract's id.
    pub id: String,
    /// The customer, matched against the `customer` column of metric data.
    pub customer: String,
    /// A note for people; not read by settlement (an extension of the format).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The ISO 4217 currency of every amount.
    pub currency: Currency,
    /// First day of the term (a local date).
    pub start: NaiveDate,
    /// Day after the last day of the term (exclusive).
    pub end: NaiveDate,
    /// How often the contract settles.
    pub cadence: Cadence,
    /// Where period boundaries fall, if not at `start + n * cadence`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor: Option<NaiveDate>,
    /// The IANA time zone whose local midnights bound periods.
    #[serde(default = "utc", skip_serializing_if = "is_utc")]
    pub timezone: Tz,
    /// How lines are rounded; defaults to the currency's minor units, half even.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rounding: Option<RoundingSpec>,
    /// Named constants usable in expressions.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, Expr>,
    /// Series of metric data and how each is reduced per period.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, Metric>,
    /// Named expressions.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub kpis: BTreeMap<String, Kpi>,
    /// Reference values that outcomes are measured against.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub baselines: BTreeMap<String, Baseline>,
    /// The charges, evaluated in the order written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub charges: Vec<Charge>,
    /// Caps, floors and credits, applied after the charges in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub limits: Vec<Limit>,
    /// Changes of values from a date of the term on; a date inside a
    /// period cuts it into parts (see [`Amendment`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amendments: Vec<Amendment>,
    /// Params that differ for some values of a dimension, in the charges
    /// grouped by it: `params_by.DIMENSION."value".PARAM = decimal` (see
    /// [`Charge::group_by`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params_by: BTreeMap<String, BTreeMap<String, BTreeMap<String, Expr>>>,
}

fn utc() -> Tz {
    Tz::UTC
}

fn is_utc(tz: &Tz) -> bool {
    *tz == Tz::UTC
}

/// The `rounding` table: scale and mode, each optional.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoundingSpec {
    /// Decimal places; default: the currency's minor units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<u32>,
    /// Rounding mode; default `half_even`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<RoundingMode>,
}

/// What a metric read over an empty window means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Missing {
    /// The value is 0.
    Zero,
    /// Settlement fails, naming the metric and period.
    Error,
}

/// A metric: one series of the source, reduced to a value per window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metric {
    /// A note for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The series read; default: the metric's own name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<String>,
    /// How observations are reduced.
    pub aggregate: Aggregate,
    /// Which observations: the period, or to date.
    #[serde(default, skip_serializing_if = "crate::text::is_default")]
    pub window: Window,
    /// Dimensions that every observation read must match.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub filter: BTreeMap<String, String>,
    /// What an empty window means; default: zero for sum, count and
    /// unique_count, error otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<Missing>,
    /// With `unique_count`: the dimension whose distinct values count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub of: Option<String>,
}

impl Metric {
    /// The rule in force for an empty window, default applied.
    pub fn missing_rule(&self) -> Missing {
        self.missing.unwrap_or(match self.aggregate {
            Aggregate::Sum | Aggregate::Count | Aggregate::UniqueCount => Missing::Zero,
            _ => Missing::Error,
        })
    }
}

/// A named expression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kpi {
    /// A note for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The expression.
    pub expr: Expr,
}

/// A baseline: what an outcome is measured against.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Baseline {
    /// A note for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The kind and its fields.
    #[serde(flatten)]
    pub kind: BaselineKind,
}

/// The kinds of baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum BaselineKind {
    /// One value for every period.
    Fixed {
        /// The value.
        value: Expr,
    },
    /// The mean of a metric's per-period values over a past range.
    Historical {
        /// The metric read.
        metric: String,
        /// First local date, inclusive.
        from: NaiveDate,
        /// Last local date, exclusive; `from` plus whole cadences.
        to: NaiveDate,
    },
    /// An expression (a regression baseline, for instance).
    Expr {
        /// The expression.
        expr: Expr,
    },
    /// The greater of `initial` and the metric's value in every earlier period.
    HighWaterMark {
        /// The metric read.
        metric: String,
        /// The starting mark.
        initial: Expr,
    },
}

/// A charge: one line of every statement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Charge {
    /// The charge's id, unique among all names.
    pub id: String,
    /// A note for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The dimension of the metric data the charge is priced per value of
    /// (`group_by = "workspace"`): it is settled once for each group (each
    /// value of the dimension among the observations it reads) and its
    /// amount is the sum of the groups' amounts. Any kind but `fixed`.
    ///
    /// # Example
    /// ```
    /// use outcome_billing::{CompiledContract, SettleOptions};
    /// use outcome_billing::metric::{MemorySource, Observation};
    /// use outcome_billing::period::Stamp;
    /// let c = CompiledContract::from_toml_str(r#"
    ///     format = 1
    ///     id = "agent"
    ///     customer = "acme"
    ///     currency = "USD"
    ///     start = "2026-01-01"
    ///     end = "2026-02-01"
    ///     cadence = "monthly"
    ///     [params]
    ///     allowance = "100"
    ///     [params_by.workspace]
    ///     "ws-enterprise" = { allowance = "500" }
    ///     [metrics.resolutions]
    ///     aggregate = "sum"
    ///     [[charges]]
    ///     id = "per_workspace"
    ///     kind = "tiered"
    ///     mode = "graduated"
    ///     quantity = "resolutions"
    ///     group_by = "workspace"
    ///     tiers = [ { up_to = "allowance", unit_price = "0" }, { unit_price = "1" } ]
    /// "#)?;
    /// let mut source = MemorySource::new();
    /// for (workspace, n) in [("ws-a", 150), ("ws-enterprise", 600)] {
    ///     let mut obs = Observation::new("resolutions", Stamp::parse("2026-01-05").unwrap(), n.into());
    ///     obs.dimensions = vec![("workspace".into(), workspace.into())];
    ///     source.push(obs);
    /// }
    /// let statement = c.settle_through(&source, 0, &SettleOptions::default())?.remove(0);
    /// let line = &statement.lines[0];
    /// let groups = line.groups.as_ref().unwrap();
    /// assert_eq!(groups.len(), 2);
    /// assert_eq!(groups[0].amount.to_string(), "50.00"); // 150 - 100 free
    /// assert_eq!(groups[1].amount.to_string(), "100.00"); // 600 - 500 free
    /// assert_eq!(line.amount.to_string(), "150.00");
    /// # Ok::<(), outcome_billing::Error>(())
    /// ```
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_by: Option<String>,
    /// The kind and its fields.
    #[serde(flatten)]
    pub kind: ChargeKind,
}

/// A cap, floor or credit over some charges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    /// The limit's id; its line is named `limits[N]` without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// A note for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Cap, floor or credit.
    pub kind: LimitKind,
    /// The limit's amount (it may name charges).
    pub amount: Expr,
    /// The charges it acts on; default every charge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applies_to: Option<Vec<String>>,
    /// Period, contract year or term.
    pub scope: Scope,
}

/// New values for some fields from a date of the term on.
///
/// `effective` may be any date on or after the contract's `start` and
/// before its `end` (another is rejected at load, at
/// `amendments[N].effective`). A date that is not a period boundary *cuts*
/// the period holding it into parts (one more part per such date). Each
/// part is a period of its own: its own statement (`--period` selects it by
/// its start), the version in force on its first day, metric windows that
/// begin and end with it, and a `fixed` amount prorated by its days over
/// the full period's days (with `prorate = false`, billed in the first part
/// only). What the contract accumulates or limits over a period runs over
/// the parts together: `tiered` with `accumulate = "period"` and `package`
/// price the period-to-date quantity, `round(A(Y)) - round(A(Y - q))`, and
/// `period` caps, floors and credits keep one running total, true-up and
/// balance by the `contract_year` formulas. Contract years are laid before
/// any cut. See [`Schedule::cut`](crate::period::Schedule::cut).
///
/// # Example
/// ```
/// use outcome_billing::CompiledContract;
/// let c = CompiledContract::from_toml_str(r#"
///     format = 1
///     id = "repriced"
///     customer = "acme"
///     currency = "USD"
///     start = "2026-01-01"
///     end = "2026-04-01"
///     cadence = "monthly"
///     [[charges]]
///     id = "plan"
///     kind = "fixed"
///     amount = "28"
///     [[amendments]]
///     effective = "2026-02-11"
///     set = { "charges.plan.amount" = "56" }
/// "#)?;
/// let labels: Vec<String> = c.periods().iter().map(|p| p.label()).collect();
/// assert_eq!(labels[1..3], ["2026-02-01..2026-02-11", "2026-02-11..2026-03-01"]);
/// let source = outcome_billing::metric::MemorySource::new();
/// let s = c.settle_through(&source, 2, &Default::default())?;
/// // 28 * 10 / 28 days, then 56 * 18 / 28 days.
/// assert_eq!((s[1].total.to_string(), s[2].total.to_string()), ("10.00".into(), "36.00".into()));
/// # Ok::<(), outcome_billing::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Amendment {
    /// A note for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The first day the values are in force: a date of the term; inside a
    /// period, it cuts the period there.
    pub effective: NaiveDate,
    /// Dot paths (`charges.leads.tiers[1].unit_price`) and their new values
    /// (decimals, expressions, or a description's text).
    pub set: BTreeMap<String, AmendValue>,
}

/// A value set by an amendment: the text of a decimal, an expression, or a
/// description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct AmendValue(pub String);
