//! Charge kinds: the built-in ones, one file each, and the trait by which an
//! embedding program adds its own.

use std::fmt;
use std::sync::Arc;

use rust_decimal::Decimal;

use crate::error::Result;
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
/// use outcome_billing::*;
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

pub(crate) mod corridor;
pub(crate) mod gain_share;
pub(crate) mod tiered;
