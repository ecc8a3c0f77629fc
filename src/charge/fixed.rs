//! `fixed`: an amount, prorated by days in a stub period.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::kind::{CompileContext, Kind, Price, PriceContext};
use crate::error::{R, Result};
use crate::expr::{Expr, Field};

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

impl Price for FixedBody {
    #[inline]
    fn amount<P: PriceContext>(&self, cx: &mut P) -> R<Decimal> {
        let a = cx.value("amount", &self.amount)?;
        cx.trace(|| format!("amount {}", self.amount.text), a);
        if !self.prorate {
            if let Some(part) = cx.part().filter(|p| !p.is_first()) {
                cx.trace(
                    || {
                        format!(
                            "part {} of {} of a cut period: prorate = false bills the amount in the first part only",
                            part.number + 1,
                            part.count
                        )
                    },
                    Decimal::ZERO,
                );
                return Ok(Decimal::ZERO);
            }
        }
        let part = cx.part();
        let period = cx.period();
        if self.prorate && period.is_stub() {
            let (d, full) = (
                Decimal::from(period.days()),
                Decimal::from(period.full_days()),
            );
            let v = a
                .checked_mul(d)
                .and_then(|x| x.checked_div(full))
                .ok_or_else(|| cx.overflow())?;
            match part {
                Some(p) => cx.trace(
                    || {
                        format!(
                            "prorated for part {} of {} of a cut period: amount * {d} / {full} days",
                            p.number + 1,
                            p.count
                        )
                    },
                    v,
                ),
                None => cx.trace(
                    || format!("prorated for a stub: amount * {d} / {full} days"),
                    v,
                ),
            }
            Ok(v)
        } else {
            Ok(a)
        }
    }
}
