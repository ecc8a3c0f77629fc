//! `package`: a price per started or completed package of units.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::kind::{CompileContext, Kind, Price, PriceContext, Rules};
use crate::error::{Error, ErrorKind, R, Result};
use crate::expr::{Expr, Field};
use crate::money::format_normalized;

/// Whether a partial package is charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PackageRound {
    /// Every started package (the default).
    #[default]
    Up,
    /// Only completed packages.
    Down,
}

/// `package`: a price per package of `size` units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageCharge {
    /// The quantity in units.
    pub quantity: Expr,
    /// Units per package.
    pub size: Expr,
    /// The price of one package.
    pub price: Expr,
    /// Started (`up`) or completed (`down`) packages.
    #[serde(default, skip_serializing_if = "crate::text::is_default")]
    pub round: PackageRound,
}

/// A compiled `package` charge.
#[derive(Debug, Clone)]
pub(crate) struct PackageBody {
    pub quantity: Field,
    pub size: Field,
    pub price: Field,
    pub round: PackageRound,
}

impl Kind for PackageCharge {
    const AMENDABLE: &'static [&'static str] = &["quantity", "size", "price"];
    type Body = PackageBody;

    /// A constant size is positive.
    fn check(&self, rules: &Rules<'_>) -> Result<()> {
        if let Some(size) = rules.constant("size", &self.size)? {
            if size <= Decimal::ZERO {
                return Err(Error::contract(
                    rules.path("size"),
                    format!("a package size must be positive, not {size}"),
                ));
            }
        }
        Ok(())
    }

    fn compile<C: CompileContext>(&self, c: &mut C) -> Result<PackageBody> {
        Ok(PackageBody {
            quantity: c.field("quantity", &self.quantity)?,
            size: c.field("size", &self.size)?,
            price: c.field("price", &self.price)?,
            round: self.round,
        })
    }
}

impl Price for PackageBody {
    #[inline]
    fn amount<P: PriceContext>(&self, cx: &mut P) -> R<Decimal> {
        let q = cx.value("quantity", &self.quantity)?;
        let s = cx.value("size", &self.size)?;
        let p = cx.value("price", &self.price)?;
        cx.trace(|| format!("quantity: {}", self.quantity.text), q);
        if q.is_sign_negative() && !q.is_zero() {
            return Err(cx.fail(
                ErrorKind::InvalidValue,
                format_args!("quantity is negative ({q})"),
            ));
        }
        if s <= Decimal::ZERO {
            return Err(cx.fail(
                ErrorKind::InvalidValue,
                format_args!("size must be positive, not {s}"),
            ));
        }
        if let Some(part) = cx.part() {
            cx.set_quantity(q);
            let round = self.round;
            cx.trace(|| "size".into(), s);
            cx.trace(
                || {
                    let f = if round == PackageRound::Up {
                        "ceil"
                    } else {
                        "floor"
                    };
                    format!("price; A(x) = {f}(x / size) * price")
                },
                p,
            );
            return super::to_date::priced(cx, part, q, &|x| {
                let ratio = x.checked_div(s)?;
                let packages = match round {
                    PackageRound::Up => ratio.ceil(),
                    PackageRound::Down => ratio.floor(),
                };
                packages.checked_mul(p)
            });
        }
        let ratio = q.checked_div(s).ok_or_else(|| cx.overflow())?;
        let packages = match self.round {
            PackageRound::Up => ratio.ceil(),
            PackageRound::Down => ratio.floor(),
        };
        cx.trace(
            || {
                format!(
                    "packages of {}: {}",
                    format_normalized(s),
                    if self.round == PackageRound::Up {
                        "ceil(quantity / size)"
                    } else {
                        "floor(quantity / size)"
                    }
                )
            },
            packages,
        );
        let v = packages.checked_mul(p).ok_or_else(|| cx.overflow())?;
        cx.trace(|| format!("packages * price {}", format_normalized(p)), v);
        cx.set_quantity(q);
        Ok(v)
    }
}
