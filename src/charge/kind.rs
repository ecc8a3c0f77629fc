//! The one interface every built-in charge kind implements, behind the
//! registration table in `charge/mod.rs` (`kinds!`), and the interfaces a
//! kind is given: what it may ask of the contract at load
//! ([`Rules`], [`ContractView`]), while its fields compile
//! ([`CompileContext`]) and while it prices a period ([`PriceContext`]).
//!
//! A kind is a module holding its field struct (the public data type), its
//! load-time rules ([`Kind::check`]), its compilation ([`Kind::compile`],
//! into a body) and its evaluation with its trace ([`Price::amount`]).
//!
//! The contexts are traits so that the kinds sit below the modules that
//! implement them: `contract` (the contract's names and constants) and
//! `settle` (compilation and the period's evaluation). Compilation and
//! pricing take them as generic parameters, not `dyn`: each has one
//! implementation, and settlement's hot loop stays statically dispatched.

use std::fmt::Display;

use rust_decimal::Decimal;
use serde::de::DeserializeOwned;

use super::{Buffers, ChargeContext};
use crate::error::{Error, ErrorKind, R, Result};
use crate::expr::{Expr, Field};
use crate::metric::{Observation, Window};
use crate::money::Rounding;
use crate::period::{Part, Period};

/// A built-in charge kind: its field struct implements this.
pub(crate) trait Kind {
    /// Fields (at any depth) that an amendment may set, besides
    /// `description`.
    const AMENDABLE: &'static [&'static str];

    /// The compiled form, evaluated each period.
    type Body: Price;

    /// The format's rules on constant values (literals and params), checked
    /// at load for every version. Every error names the field path.
    fn check(&self, _rules: &Rules<'_>) -> Result<()> {
        Ok(())
    }

    /// Compiles the kind's fields with `c.field`, which resolves names,
    /// folds constants and records what the field reads for the trace.
    fn compile<C: CompileContext>(&self, c: &mut C) -> Result<Self::Body>;
}

/// A compiled kind: the line's exact amount for a period.
pub(crate) trait Price {
    /// The line's exact (unrounded) amount. Steps, the line's quantity and
    /// an amount already rounded are reported through `cx`.
    fn amount<P: PriceContext>(&self, cx: &mut P) -> R<Decimal>;

    /// The metric charged observation by observation, if any (the streaming
    /// billing run keeps each observation's value for it).
    fn observed_metric(&self) -> Option<usize> {
        None
    }
}

/// What a kind's load-time rules may ask of the contract (one version of
/// it). Implemented by `contract::Contract`.
pub(crate) trait ContractView {
    /// The value of `expr` (at `path`, for errors) when it reads only
    /// literals and params.
    ///
    /// # Errors
    /// A constant expression that fails to evaluate, at `path`.
    fn constant(&self, path: &str, expr: &Expr) -> Result<Option<Decimal>>;

    /// The position among the metrics and the window of the metric `name`.
    fn metric(&self, name: &str) -> Option<(usize, Window)>;

    /// The position among the charges of the charge with id `id`.
    fn charge(&self, id: &str) -> Option<usize>;
}

/// Where a kind's load-time rules run: the contract and the charge's place.
pub(crate) struct Rules<'a> {
    /// The contract (one version of it).
    pub contract: &'a dyn ContractView,
    /// The charge's position among the charges.
    pub position: usize,
}

impl Rules<'_> {
    /// The path of one of the charge's fields: `charges[2].tiers[1].up_to`.
    pub fn path(&self, field: &str) -> String {
        format!("charges[{}].{field}", self.position)
    }

    /// The charge's own path: `charges[2]`.
    pub fn at(&self) -> String {
        format!("charges[{}]", self.position)
    }

    /// The value of `expr` (the field `field`) when it reads only literals
    /// and params.
    pub fn constant(&self, field: &str, expr: &Expr) -> Result<Option<Decimal>> {
        self.contract.constant(&self.path(field), expr)
    }
}

/// What a kind compiles its fields with: each field at its path under the
/// charge (`charges[2].tiers[1].up_to`), naming only earlier charges.
/// Implemented by settlement's compiler.
pub(crate) trait CompileContext {
    /// Compiles the charge's field `field` (a path under the charge).
    ///
    /// # Errors
    /// A name that is undefined or not allowed here, or a type error, at
    /// the field's path.
    fn field(&mut self, field: &str, expr: &Expr) -> Result<Field>;

    /// Compiles an optional field.
    ///
    /// # Errors
    /// As [`CompileContext::field`].
    fn opt(&mut self, field: &str, expr: &Option<Expr>) -> Result<Option<Field>> {
        expr.as_ref().map(|e| self.field(field, e)).transpose()
    }

    /// The path of the charge's field `field`, for errors.
    fn path(&self, field: &str) -> String;

    /// The position among the metrics and the window of the metric `name`.
    fn metric(&self, name: &str) -> Option<(usize, Window)>;

    /// The position of the charge with id `id`, if it is written before
    /// this one.
    fn earlier_charge(&self, id: &str) -> Option<usize>;

    /// Why this charge cannot name the earlier charge at `position` outside
    /// an expression (in `of`): inside a grouped charge, only a charge
    /// grouped by the same dimension can be named. Records the charge as
    /// named otherwise.
    fn named_charge(&mut self, position: usize) -> Option<String> {
        let _ = position;
        None
    }
}

/// What a kind reads and reports while it prices a period. Implemented by
/// settlement's evaluation of the period.
pub(crate) trait PriceContext {
    /// A field's value; `name` names it in an error (made only then).
    fn value(&mut self, name: impl Display, field: &Field) -> R<Decimal>;

    /// An optional field's value.
    fn opt(&mut self, name: impl Display, field: &Option<Field>) -> R<Option<Decimal>>;

    /// Records a step of the trace; its text is made only when tracing.
    fn trace(&mut self, step: impl FnOnce() -> String, value: Decimal);

    /// Records a step whose text reads the context (names of charges,
    /// series); made only when tracing.
    fn trace_in(&mut self, step: impl FnOnce(&Self) -> String, value: Decimal);

    /// Records a step whose value is shown as `value` gives it.
    fn trace_text(&mut self, step: impl FnOnce() -> String, value: impl FnOnce() -> String);

    /// Whether the line's trace is written.
    fn tracing(&self) -> bool;

    /// A step writer for the kinds' pure functions (lazy, like `trace`).
    fn describer(&mut self) -> impl FnMut(&dyn Fn() -> String, Decimal) + '_;

    /// A settlement error of `kind`, prefixed with the charge.
    fn fail(&self, kind: ErrorKind, message: impl Display) -> Box<Error>;

    /// The amount overflows a decimal.
    fn overflow(&self) -> Box<Error>;

    /// The period being settled.
    fn period(&self) -> &Period;

    /// The contract's line rounding.
    fn rounding(&self) -> Rounding;

    /// Whether the period is the first of its contract year.
    fn year_starts(&self) -> bool;

    /// The charge's year-to-date quantity (before this period, until set).
    fn year_to_date(&mut self) -> &mut Decimal;

    /// Where the period stands among the parts of a period cut by
    /// mid-period amendments; `None` for a period not cut.
    fn part(&self) -> Option<Part>;

    /// The charge's quantity over the earlier parts of a cut period
    /// (before this part, until set).
    ///
    /// # Errors
    /// A state without period-to-date quantities.
    fn period_to_date(&mut self) -> R<&mut Decimal>;

    /// Sets the line's `quantity`.
    fn set_quantity(&mut self, quantity: Decimal);

    /// The amount returned is already rounded (year-to-date tiers).
    fn set_rounded(&mut self);

    /// Buffers reused across periods.
    fn buffers(&mut self) -> &mut Buffers;

    /// The rounded amount of the earlier charge at `position` this period.
    fn charge_amount(&self, position: usize) -> Decimal;

    /// The id of the charge at `position`.
    fn charge_id(&self, position: usize) -> &str;

    /// The series metric `metric` reads.
    fn series(&self, metric: usize) -> &str;

    /// Hands every observation metric `metric` reads in the period itself
    /// to `visit`.
    fn scan_period(
        &mut self,
        metric: usize,
        visit: &mut dyn FnMut(&Observation) -> Result<()>,
    ) -> R<()>;

    /// Runs a custom rule with its fields as the context's fields.
    fn with_fields<T>(
        &mut self,
        fields: &[Field],
        rule: impl FnOnce(&mut dyn ChargeContext) -> T,
    ) -> T;
}

/// How the loader reads a kind's fields from what is left of a charge's
/// table once `id`, `kind` and `description` are taken.
pub(crate) trait FieldReader {
    /// The loader's error.
    type Error;

    /// Reads the fields as `T`.
    fn read<T: DeserializeOwned>(&mut self) -> std::result::Result<T, Self::Error>;
}
