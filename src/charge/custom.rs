//! Kinds defined in Rust by the embedding program ([`ChargeRule`]): their
//! fields compile like any kind's, and their rule computes the amount
//! through the same context the built-in kinds use.

use std::sync::Arc;

use rust_decimal::Decimal;

use super::kind::{CompileContext, Price, PriceContext};
use super::{ChargeRule, CustomCharge};
use crate::error::{R, Result};
use crate::expr::Field;

/// A compiled custom charge: the rule and its fields, in its order.
#[derive(Debug, Clone)]
pub(crate) struct CustomBody {
    pub rule: Arc<dyn ChargeRule>,
    pub fields: Vec<Field>,
}

/// Compiles the rule's fields, each at `charges[N].NAME`.
pub(crate) fn compile<C: CompileContext>(custom: &CustomCharge, c: &mut C) -> Result<CustomBody> {
    let rule = custom.0.clone();
    let mut fields = Vec::new();
    for (name, e) in rule.fields() {
        fields.push(c.field(name, e)?);
    }
    Ok(CustomBody { rule, fields })
}

impl Price for CustomBody {
    fn amount<P: PriceContext>(&self, cx: &mut P) -> R<Decimal> {
        let rule = &self.rule;
        Ok(cx.with_fields(&self.fields, |ctx| rule.amount(ctx))?)
    }
}
