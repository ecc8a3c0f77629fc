//! Charge kinds: the built-in ones, one file each, and the trait by which an
//! embedding program adds its own.

use std::fmt;
use std::sync::Arc;

use rust_decimal::Decimal;
use serde::Serialize;

use crate::error::{R, Result};
use crate::expr::Expr;
use crate::period::Period;

/// A charge kind defined in Rust by the embedding program.
///
/// Its fields are expressions, checked and compiled with the contract's
/// names like the built-in kinds' fields, and evaluated for the period on
/// request; each step it records shows in the line's trace.
///
/// # Example
/// ```
/// use outcome_billing::charge::{ChargeContext, ChargeRule, CustomCharge};
/// use outcome_billing::contract::{Charge, ChargeKind};
/// use outcome_billing::expr::Expr;
/// use outcome_billing::metric::MemorySource;
/// use outcome_billing::{CompiledContract, Contract, Result, SettleOptions};
/// use rust_decimal::Decimal;
///
/// /// Half the quantity, rounded down to a whole number.
/// #[derive(Debug)]
/// struct Half(Expr);
///
/// impl ChargeRule for Half {
///     fn kind(&self) -> &str { "half" }
///     fn fields(&self) -> Vec<(&str, &Expr)> { vec![("quantity", &self.0)] }
///     fn amount(&self, ctx: &mut dyn ChargeContext) -> Result<Decimal> {
///         let q = ctx.field(0)?;
///         ctx.set_quantity(q);
///         let half = (q / Decimal::TWO).floor();
///         ctx.step("floor(quantity / 2)".into(), half);
///         Ok(half)
///     }
/// }
///
/// let mut contract = Contract::from_toml_str(r#"
///     format = 1
///     id = "half"
///     customer = "acme"
///     currency = "USD"
///     start = "2026-01-01"
///     end = "2026-02-01"
///     cadence = "monthly"
///     [params]
///     units = "7"
/// "#)?;
/// contract.charges.push(Charge {
///     id: "halved".into(),
///     description: None,
///     group_by: None,
///     kind: ChargeKind::Custom(CustomCharge::new(Half(Expr::parse("units").unwrap()))),
/// });
/// let compiled = CompiledContract::new(contract)?;
/// let statements = compiled.settle_through(&MemorySource::new(), 0, &SettleOptions::default())?;
/// assert_eq!(statements[0].lines[0].kind, "half");
/// assert_eq!(statements[0].total.to_string(), "3.00");
/// # Ok::<(), outcome_billing::Error>(())
/// ```
pub trait ChargeRule: Send + Sync + fmt::Debug {
    /// The kind's name, shown in statements (`"kind": "..."`).
    fn kind(&self) -> &str;

    /// The expressions the rule reads, as (field name, expression).
    fn fields(&self) -> Vec<(&str, &Expr)>;

    /// The line's exact (unrounded) amount for the period.
    ///
    /// # Errors
    /// Whatever evaluating a field fails with, or a rule of the kind.
    fn amount(&self, ctx: &mut dyn ChargeContext) -> Result<Decimal>;
}

/// What a [`ChargeRule`] can ask while it computes a period's amount.
pub trait ChargeContext {
    /// The value of the rule's field number `index` (in the order of
    /// [`ChargeRule::fields`]) for this period.
    ///
    /// # Errors
    /// Whatever evaluating the expression fails with.
    fn field(&mut self, index: usize) -> Result<Decimal>;

    /// The period being settled.
    fn period(&self) -> &Period;

    /// Records a step of the formula and its value in the line's trace.
    fn step(&mut self, step: String, value: Decimal);

    /// Sets the line's `quantity`.
    fn set_quantity(&mut self, quantity: Decimal);
}

/// A charge kind defined in Rust: a shared [`ChargeRule`].
#[derive(Clone)]
pub struct CustomCharge(pub Arc<dyn ChargeRule>);

impl CustomCharge {
    /// Wraps a rule.
    pub fn new(rule: impl ChargeRule + 'static) -> CustomCharge {
        CustomCharge(Arc::new(rule))
    }

    /// The kind's name.
    pub fn kind_name(&self) -> &str {
        self.0.kind()
    }
}

impl fmt::Debug for CustomCharge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl PartialEq for CustomCharge {
    fn eq(&self, other: &CustomCharge) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

pub(crate) mod kind;

pub(crate) mod bands;
pub(crate) mod corridor;
pub(crate) mod custom;
mod edges;
pub(crate) mod expr;
pub(crate) mod fixed;
pub(crate) mod gain_share;
#[cfg(test)]
pub(crate) mod minimum;
pub(crate) mod package;
pub(crate) mod percentage;
pub(crate) mod tiered;
mod to_date;
pub(crate) mod unit;

use bands::BandsCharge;
use corridor::CorridorCharge;
use expr::ExprCharge;
use fixed::FixedCharge;
use gain_share::GainShareCharge;
use kind::{CompileContext, FieldReader, Kind, Price, PriceContext, Rules};
use package::PackageCharge;
use percentage::PercentageCharge;
use tiered::TieredCharge;
use unit::UnitCharge;

/// Buffers reused from period to period, so evaluating expression tiers and
/// bands does not allocate.
#[derive(Debug, Clone, Default)]
pub(crate) struct Buffers {
    /// Tier values (`tiered`).
    pub tiers: Vec<tiered::TierValues>,
    /// Corridor bands (`corridor`).
    pub bands: Vec<corridor::BandValues>,
    /// Band edges (`bands`).
    pub edges: Vec<(Option<Decimal>, Option<Decimal>)>,
}

/// The registration table: one line per built-in kind,
/// `Variant(FieldStruct) = "name"`, whose field struct implements
/// [`Kind`]. It makes the public [`ChargeKind`] enum and every dispatch on
/// it: the name, the loader's name → struct, the load-time rules, the
/// amendable fields, compilation and evaluation. A line under `#[cfg(...)]`
/// exists only in that build and is not one of the format's kinds.
macro_rules! kinds {
    ($(
        $(#[doc = $doc:literal])*
        $(#[cfg($cfg:meta)])?
        $variant:ident($fields:ty) = $name:literal,
    )*) => {
        /// The kinds of charge.
        #[derive(Debug, Clone, PartialEq, Serialize)]
        #[serde(tag = "kind")]
        pub enum ChargeKind {
            $(
                $(#[doc = $doc])*
                $(#[cfg($cfg)])?
                #[serde(rename = $name)]
                $variant($fields),
            )*
            /// A kind defined in Rust by the embedding program.
            #[serde(skip)]
            Custom(CustomCharge),
        }

        impl ChargeKind {
            /// The kind's name as written in contract files.
            pub fn name(&self) -> &str {
                match self {
                    $( $(#[cfg($cfg)])? ChargeKind::$variant(_) => $name, )*
                    ChargeKind::Custom(c) => c.kind_name(),
                }
            }

            /// Reads the fields of the kind named `name`; `None` for a name
            /// that is no kind.
            pub(crate) fn read<F: FieldReader>(
                name: &str,
                fields: &mut F,
            ) -> Option<std::result::Result<ChargeKind, F::Error>> {
                match name {
                    $( $(#[cfg($cfg)])? $name => Some(fields.read::<$fields>().map(ChargeKind::$variant)), )*
                    _ => None,
                }
            }

            /// The format's kinds, in the order of its page (for messages).
            // One statement per kind, so a kind under `cfg` can be left out.
            #[allow(clippy::vec_init_then_push)]
            pub(crate) fn names() -> Vec<&'static str> {
                let mut names = Vec::new();
                $( $(#[cfg(all(any(), $cfg))])? names.push($name); )*
                names
            }

            /// The fields of a charge (at any depth) an amendment may set:
            /// those some kind lists, and `description`.
            pub(crate) fn amendable_fields() -> Vec<&'static str> {
                let mut fields: Vec<&'static str> = Vec::new();
                $( $(#[cfg($cfg)])? fields.extend(<$fields as Kind>::AMENDABLE); )*
                fields.push("description");
                fields
            }

            /// Checks the kind's load-time rules.
            pub(crate) fn check(&self, rules: &Rules<'_>) -> Result<()> {
                match self {
                    $( $(#[cfg($cfg)])? ChargeKind::$variant(k) => k.check(rules), )*
                    ChargeKind::Custom(_) => Ok(()),
                }
            }

            /// Compiles the kind's fields.
            pub(crate) fn compile<C: CompileContext>(&self, c: &mut C) -> Result<Body> {
                Ok(match self {
                    $( $(#[cfg($cfg)])? ChargeKind::$variant(k) => Body::$variant(k.compile(c)?), )*
                    ChargeKind::Custom(k) => Body::Custom(custom::compile(k, c)?),
                })
            }
        }

        /// A compiled charge: the body of its kind.
        // Bodies are built once per contract version and read in place;
        // boxing the large ones would add an indirection to every period.
        #[allow(clippy::large_enum_variant)]
        #[derive(Debug, Clone)]
        pub(crate) enum Body {
            $( $(#[cfg($cfg)])? $variant(<$fields as Kind>::Body), )*
            Custom(custom::CustomBody),
        }

        impl Body {
            /// The line's exact amount for the period.
            #[inline(always)]
            pub(crate) fn amount<P: PriceContext>(&self, cx: &mut P) -> R<Decimal> {
                match self {
                    $( $(#[cfg($cfg)])? Body::$variant(b) => b.amount(cx), )*
                    Body::Custom(b) => b.amount(cx),
                }
            }

            /// The metric charged observation by observation, if any.
            pub(crate) fn observed_metric(&self) -> Option<usize> {
                match self {
                    $( $(#[cfg($cfg)])? Body::$variant(b) => b.observed_metric(), )*
                    Body::Custom(b) => b.observed_metric(),
                }
            }
        }
    };
}

kinds! {
    /// A fixed amount, prorated in stubs.
    Fixed(FixedCharge) = "fixed",
    /// Quantity times unit price.
    Unit(UnitCharge) = "unit",
    /// A price per started or completed package.
    Package(PackageCharge) = "package",
    /// Graduated or volume tiers.
    Tiered(TieredCharge) = "tiered",
    /// A rate on a base (revenue share, success fee, card-style fee).
    Percentage(PercentageCharge) = "percentage",
    /// A share of an improvement over a baseline, with thresholds and caps.
    GainShare(GainShareCharge) = "gain_share",
    /// A fixed amount or a percentage chosen by the band a KPI falls in.
    Bands(BandsCharge) = "bands",
    /// A risk corridor: shares of the deviation from a target, by band.
    Corridor(CorridorCharge) = "corridor",
    /// Any expression.
    Expr(ExprCharge) = "expr",
    /// The greater of an amount and a floor (the example of DESIGN.md, in
    /// test builds only: the format has no such kind).
    #[cfg(test)]
    Minimum(minimum::MinimumCharge) = "minimum",
}
