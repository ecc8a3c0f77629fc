//! The one interface every built-in charge kind implements, behind the
//! registration table in `charge/mod.rs` (`kinds!`).
//!
//! A kind is a module holding its field struct (the public data type), its
//! load-time rules ([`Kind::check`]), its compilation ([`Kind::compile`],
//! into a body) and its evaluation with its trace ([`Price::amount`]).

use rust_decimal::Decimal;
use serde::de::DeserializeOwned;

use crate::contract::Contract;
use crate::error::Result;
use crate::expr::Expr;
use crate::settle::compile::FieldCompiler;
use crate::settle::eval::{Pricing, R};

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
    fn compile(&self, c: &mut FieldCompiler<'_, '_>) -> Result<Self::Body>;
}

/// A compiled kind: the line's exact amount for a period.
pub(crate) trait Price {
    /// The line's exact (unrounded) amount. Steps, the line's quantity and
    /// an amount already rounded are reported through `cx`.
    fn amount(&self, cx: &mut Pricing<'_, '_>) -> R<Decimal>;

    /// The metric charged observation by observation, if any (the streaming
    /// billing run keeps each observation's value for it).
    fn observed_metric(&self) -> Option<usize> {
        None
    }
}

/// Where a kind's load-time rules run: the contract and the charge's place.
pub(crate) struct Rules<'a> {
    /// The contract (one version of it).
    pub contract: &'a Contract,
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
        crate::contract::rules::constant(self.contract, &self.path(field), expr)
    }
}

/// How the loader reads a kind's fields from what is left of a charge's
/// table once `id`, `kind` and `description` are taken.
pub(crate) trait FieldReader {
    /// The loader's error.
    type Error;

    /// Reads the fields as `T`.
    fn read<T: DeserializeOwned>(&mut self) -> std::result::Result<T, Self::Error>;
}
