//! `expr`: an expression's value.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::kind::{CompileContext, Kind, Price, PriceContext};
use crate::error::{R, Result};
use crate::expr::{Expr, Field};

/// `expr`: an expression's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExprCharge {
    /// The amount.
    pub amount: Expr,
}

/// A compiled `expr` charge.
#[derive(Debug, Clone)]
pub(crate) struct ExprBody {
    pub amount: Field,
}

impl Kind for ExprCharge {
    const AMENDABLE: &'static [&'static str] = &["amount"];
    type Body = ExprBody;

    fn compile<C: CompileContext>(&self, c: &mut C) -> Result<ExprBody> {
        Ok(ExprBody {
            amount: c.field("amount", &self.amount)?,
        })
    }
}

impl Price for ExprBody {
    #[inline]
    fn amount<P: PriceContext>(&self, cx: &mut P) -> R<Decimal> {
        let v = cx.value("amount", &self.amount)?;
        cx.trace(|| format!("amount: {}", self.amount.text), v);
        Ok(v)
    }
}
