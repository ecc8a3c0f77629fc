//! `unit`: quantity times unit price.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::kind::{CompileContext, Kind, Price, PriceContext};
use crate::error::{R, Result};
use crate::expr::{Expr, Field};
use crate::money::format_normalized;

/// `unit`: quantity times unit price.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitCharge {
    /// The quantity.
    pub quantity: Expr,
    /// The price of one unit.
    pub unit_price: Expr,
}

/// A compiled `unit` charge.
#[derive(Debug, Clone)]
pub(crate) struct UnitBody {
    pub quantity: Field,
    pub unit_price: Field,
}

impl Kind for UnitCharge {
    const AMENDABLE: &'static [&'static str] = &["quantity", "unit_price"];
    type Body = UnitBody;

    fn compile<C: CompileContext>(&self, c: &mut C) -> Result<UnitBody> {
        Ok(UnitBody {
            quantity: c.field("quantity", &self.quantity)?,
            unit_price: c.field("unit_price", &self.unit_price)?,
        })
    }
}

impl Price for UnitBody {
    #[inline]
    fn amount<P: PriceContext>(&self, cx: &mut P) -> R<Decimal> {
        let q = cx.value("quantity", &self.quantity)?;
        let p = cx.value("unit_price", &self.unit_price)?;
        cx.trace(|| format!("quantity: {}", self.quantity.text), q);
        let v = q.checked_mul(p).ok_or_else(|| cx.overflow())?;
        cx.trace(
            || format!("quantity * unit_price {}", format_normalized(p)),
            v,
        );
        cx.set_quantity(q);
        Ok(v)
    }
}
