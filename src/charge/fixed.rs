//! `fixed`: an amount, prorated by days in a stub period.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::kind::{CompileContext, Kind, Price, PriceContext};
use crate::error::{R, Result};
use crate::expr::{Expr, Field};
use crate::period::Part;

/// `fixed`: an amount, prorated by days in a stub period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixedCharge {
    /// The amount for a full period.
    pub amount: Expr,
    /// Whether a stub is charged `amount * d / D` (default true).
    #[serde(
        default = "crate::text::yes",
        skip_serializing_if = "crate::text::is_true"
    )]
    pub prorate: bool,
}

/// A compiled `fixed` charge.
#[derive(Debug, Clone)]
pub(crate) struct FixedBody {
    pub amount: Field,
    pub prorate: bool,
}

impl Kind for FixedCharge {
    const AMENDABLE: &'static [&'static str] = &["amount"];
    type Body = FixedBody;

    fn compile<C: CompileContext>(&self, c: &mut C) -> Result<FixedBody> {
        Ok(FixedBody {
            amount: c.field("amount", &self.amount)?,
            prorate: self.prorate,
        })
    }
}

/// `a` prorated by the days of the period over its full period's: the
/// amount, then the two day counts (for the trace).
#[inline]
fn prorated<P: PriceContext>(cx: &P, a: Decimal) -> R<(Decimal, Decimal, Decimal)> {
    let period = cx.period();
    let (d, full) = (
        Decimal::from(period.days()),
        Decimal::from(period.full_days()),
    );
    let v = a
        .checked_mul(d)
        .and_then(|x| x.checked_div(full))
        .ok_or_else(|| cx.overflow())?;
    Ok((v, d, full))
}

impl FixedBody {
    /// A part of a cut period: prorated by its days over the full period's
    /// (`prorate = false`: the whole amount in the first part, 0 after).
    /// Out of line, so the common path of [`Price::amount`] stays as it was.
    #[cold]
    #[inline(never)]
    fn amount_in_part<P: PriceContext>(&self, cx: &mut P, part: Part) -> R<Decimal> {
        let a = cx.value("amount", &self.amount)?;
        cx.trace(|| format!("amount {}", self.amount.text), a);
        let (number, count) = (part.number + 1, part.count);
        if !self.prorate {
            if part.is_first() {
                return Ok(a);
            }
            cx.trace(
                || {
                    format!(
                        "part {number} of {count} of a cut period: prorate = false bills the amount in the first part only"
                    )
                },
                Decimal::ZERO,
            );
            return Ok(Decimal::ZERO);
        }
        let (v, d, full) = prorated(cx, a)?;
        cx.trace(
            || {
                format!(
                    "prorated for part {number} of {count} of a cut period: amount * {d} / {full} days"
                )
            },
            v,
        );
        Ok(v)
    }
}

impl Price for FixedBody {
    #[inline]
    fn amount<P: PriceContext>(&self, cx: &mut P) -> R<Decimal> {
        if let Some(part) = cx.part() {
            return self.amount_in_part(cx, part);
        }
        let a = cx.value("amount", &self.amount)?;
        cx.trace(|| format!("amount {}", self.amount.text), a);
        let period = cx.period();
        if self.prorate && period.is_stub() {
            let (v, d, full) = prorated(cx, a)?;
            cx.trace(
                || format!("prorated for a stub: amount * {d} / {full} days"),
                v,
            );
            Ok(v)
        } else {
            Ok(a)
        }
    }
}
