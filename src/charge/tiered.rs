//! `tiered`: graduated and volume tiers.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::kind::{CompileContext, Kind, Price, PriceContext, Rules};
use crate::error::{Error, ErrorKind, R, Result};
use crate::expr::{Expr, Field};
use crate::period::Part;

/// One tier's values for a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TierValues {
    pub up_to: Option<Decimal>,
    pub unit_price: Decimal,
    pub flat_fee: Decimal,
}

/// Checks that the tiers are well formed: all but the last have `up_to`,
/// strictly increasing and not negative. Returns the position and a message.
pub(crate) fn check(tiers: &[TierValues]) -> Result<(), (usize, String)> {
    let mut previous: Option<Decimal> = None;
    for (i, tier) in tiers.iter().enumerate() {
        let last = i + 1 == tiers.len();
        match (tier.up_to, last) {
            (Some(_), true) => return Err((i, "the last tier has no up_to".into())),
            (None, false) => return Err((i, "every tier but the last needs up_to".into())),
            (Some(u), false) => {
                if u.is_sign_negative() && !u.is_zero() {
                    return Err((i, format!("up_to must not be negative ({u})")));
                }
                if let Some(p) = previous {
                    if u <= p {
                        return Err((i, format!("tiers must increase ({p} then {u})")));
                    }
                }
                previous = Some(u);
            }
            (None, true) => {}
        }
    }
    Ok(())
}

/// The amount the tiers give `quantity` (not negative), exactly; `None` on
/// overflow. `describe` receives a step per tier that contributes.
pub(crate) fn amount(
    mode: TierMode,
    tiers: &[TierValues],
    quantity: Decimal,
    describe: &mut dyn FnMut(&dyn Fn() -> String, Decimal),
) -> Option<Decimal> {
    match mode {
        TierMode::Graduated => {
            let mut total = Decimal::ZERO;
            let mut previous = Decimal::ZERO;
            for (i, tier) in tiers.iter().enumerate() {
                if i > 0 && quantity <= previous {
                    break;
                }
                let upper = tier.up_to.map_or(quantity, |u| u.min(quantity));
                let units = (upper - previous).max(Decimal::ZERO);
                let part = units
                    .checked_mul(tier.unit_price)?
                    .checked_add(tier.flat_fee)?;
                describe(&|| tier_step(i, units, tier), part);
                total = total.checked_add(part)?;
                match tier.up_to {
                    Some(u) => previous = u,
                    None => break,
                }
            }
            Some(total)
        }
        TierMode::Volume => {
            let i = tiers
                .iter()
                .position(|t| t.up_to.is_none_or(|u| quantity <= u))
                .unwrap_or(tiers.len().saturating_sub(1));
            let tier = tiers.get(i)?;
            let total = quantity
                .checked_mul(tier.unit_price)?
                .checked_add(tier.flat_fee)?;
            describe(&|| tier_step(i, quantity, tier), total);
            Some(total)
        }
    }
}

/// For constant graduated tiers: entry `k` is the amount of every tier
/// before `k` taken whole, added in the order [`amount`] adds them (`None`
/// where that overflows, as `amount` would for any quantity past them).
pub(crate) fn graduated_before(tiers: &[TierValues]) -> Vec<Option<Decimal>> {
    let mut before = Vec::with_capacity(tiers.len());
    let mut total = Some(Decimal::ZERO);
    let mut previous = Decimal::ZERO;
    for tier in tiers {
        before.push(total);
        let Some(u) = tier.up_to else { break };
        // As `amount` computes a tier the quantity passes: `u.min(q)` is
        // `u` for any quantity above it. Tiers are checked, so `u` is not
        // below `previous` and the difference cannot overflow.
        let units = (u - previous).max(Decimal::ZERO);
        let part = units
            .checked_mul(tier.unit_price)
            .and_then(|x| x.checked_add(tier.flat_fee));
        total = total.zip(part).and_then(|(t, p)| t.checked_add(p));
        previous = u;
    }
    before
}

/// What [`amount`] gives, without steps: for graduated tiers with their
/// [`graduated_before`] totals, the quantity's own tier is the only one
/// computed, and its part is added to the same total of the tiers before
/// it, so the result is the same decimal, scale included.
pub(crate) fn amount_quietly(
    mode: TierMode,
    tiers: &[TierValues],
    before: &[Option<Decimal>],
    quantity: Decimal,
) -> Option<Decimal> {
    if mode != TierMode::Graduated || before.len() != tiers.len() || tiers.is_empty() {
        return amount(mode, tiers, quantity, &mut |_, _| {});
    }
    // The first tier holding the quantity (`amount` stops after it).
    let k = tiers
        .iter()
        .position(|t| t.up_to.is_none_or(|u| quantity <= u))
        .unwrap_or(tiers.len() - 1);
    let previous = match k {
        0 => Decimal::ZERO,
        _ => tiers[k - 1].up_to?,
    };
    let tier = &tiers[k];
    let upper = tier.up_to.map_or(quantity, |u| u.min(quantity));
    let units = (upper - previous).max(Decimal::ZERO);
    let part = units
        .checked_mul(tier.unit_price)?
        .checked_add(tier.flat_fee)?;
    before[k]?.checked_add(part)
}

fn tier_step(i: usize, units: Decimal, tier: &TierValues) -> String {
    let units = crate::money::format_normalized(units);
    let price = crate::money::format_normalized(tier.unit_price);
    if tier.flat_fee.is_zero() {
        format!("tiers[{i}]: {units} units at {price}")
    } else {
        let fee = crate::money::format_normalized(tier.flat_fee);
        format!("tiers[{i}]: {units} units at {price} + flat fee {fee}")
    }
}

/// How tiers price a quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TierMode {
    /// Each unit at the price of the tier it falls in.
    Graduated,
    /// All units at the price of the tier the total falls in.
    Volume,
}

/// Which quantity tiers price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Accumulate {
    /// The period's quantity.
    #[default]
    Period,
    /// The contract year's quantity to date.
    ContractYear,
}

/// One tier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// The greatest quantity the tier holds (inclusive); none on the last tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up_to: Option<Expr>,
    /// The price of each unit (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_price: Option<Expr>,
    /// A fee for reaching the tier (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flat_fee: Option<Expr>,
}

/// `tiered`: graduated or volume pricing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TieredCharge {
    /// The quantity.
    pub quantity: Expr,
    /// Graduated or volume.
    pub mode: TierMode,
    /// The tiers, `up_to` strictly increasing.
    pub tiers: Vec<Tier>,
    /// Price the period's or the contract year's quantity.
    #[serde(default, skip_serializing_if = "crate::text::is_default")]
    pub accumulate: Accumulate,
}

/// A compiled tier.
#[derive(Debug, Clone)]
pub(crate) struct CTier {
    pub up_to: Option<Field>,
    pub unit_price: Option<Field>,
    pub flat_fee: Option<Field>,
}

/// A compiled `tiered` charge.
#[derive(Debug, Clone)]
pub(crate) struct TieredBody {
    pub quantity: Field,
    pub mode: TierMode,
    pub tiers: Vec<CTier>,
    /// The tiers' values when all are constants: evaluated and checked
    /// once, here, instead of every period.
    pub constant: Option<Vec<TierValues>>,
    /// For constant graduated tiers, the whole amounts of the tiers before
    /// each (`graduated_before`); empty otherwise.
    pub before: Vec<Option<Decimal>>,
    pub accumulate: Accumulate,
}

impl Kind for TieredCharge {
    const AMENDABLE: &'static [&'static str] = &["quantity", "up_to", "unit_price", "flat_fee"];
    type Body = TieredBody;

    /// At least one tier; every tier but the last has `up_to`; constant
    /// edges are not negative and increase.
    fn check(&self, rules: &Rules<'_>) -> Result<()> {
        if self.tiers.is_empty() {
            return Err(Error::contract(
                rules.path("tiers"),
                "at least one tier is required",
            ));
        }
        let last = self.tiers.len() - 1;
        let mut previous: Option<Decimal> = None;
        for (j, tier) in self.tiers.iter().enumerate() {
            let field = format!("tiers[{j}].up_to");
            let path = rules.path(&field);
            match (&tier.up_to, j == last) {
                (Some(_), true) => {
                    return Err(Error::contract(
                        path,
                        "the last tier has no up_to: it holds every greater quantity",
                    ));
                }
                (None, false) => {
                    return Err(Error::contract(
                        path,
                        "missing field: every tier but the last needs up_to",
                    ));
                }
                (Some(up_to), false) => {
                    if let Some(value) = rules.constant(&field, up_to)? {
                        if value.is_sign_negative() && !value.is_zero() {
                            return Err(Error::contract(
                                path,
                                format!("up_to must not be negative ({value})"),
                            ));
                        }
                        if let Some(before) = previous {
                            if value <= before {
                                return Err(Error::contract(
                                    path,
                                    format!("tiers must increase ({before} then {value})"),
                                ));
                            }
                        }
                        previous = Some(value);
                    }
                }
                (None, true) => {}
            }
        }
        Ok(())
    }

    fn compile<C: CompileContext>(&self, c: &mut C) -> Result<TieredBody> {
        let mut tiers = Vec::new();
        for (j, tier) in self.tiers.iter().enumerate() {
            tiers.push(CTier {
                up_to: c.opt(&format!("tiers[{j}].up_to"), &tier.up_to)?,
                unit_price: c.opt(&format!("tiers[{j}].unit_price"), &tier.unit_price)?,
                flat_fee: c.opt(&format!("tiers[{j}].flat_fee"), &tier.flat_fee)?,
            });
        }
        if tiers.is_empty() {
            return Err(Error::contract(
                c.path("tiers"),
                "a tiered charge needs at least one tier",
            ));
        }
        // Constant tiers were checked at load (`check`), under every
        // version; only their values are kept here.
        let constant = constant_tiers(&tiers);
        let before = match (&constant, self.mode) {
            (Some(values), TierMode::Graduated) => graduated_before(values),
            _ => Vec::new(),
        };
        Ok(TieredBody {
            quantity: c.field("quantity", &self.quantity)?,
            mode: self.mode,
            tiers,
            constant,
            before,
            accumulate: self.accumulate,
        })
    }
}

/// The tiers' values, when every field of every tier is a constant.
fn constant_tiers(tiers: &[CTier]) -> Option<Vec<TierValues>> {
    let value = |f: &Option<Field>| -> Option<Option<Decimal>> {
        match f {
            None => Some(None),
            Some(f) => f.code.constant().map(Some),
        }
    };
    tiers
        .iter()
        .map(|t| {
            Some(TierValues {
                up_to: value(&t.up_to)?,
                unit_price: value(&t.unit_price)?.unwrap_or_default(),
                flat_fee: value(&t.flat_fee)?.unwrap_or_default(),
            })
        })
        .collect()
}

impl TieredBody {
    /// The quantity, traced; an error when it is negative.
    #[inline]
    fn quantity<P: PriceContext>(&self, cx: &mut P) -> R<Decimal> {
        let q = cx.value("quantity", &self.quantity)?;
        cx.trace(|| format!("quantity: {}", self.quantity.text), q);
        if q.is_sign_negative() && !q.is_zero() {
            return Err(cx.fail(
                ErrorKind::InvalidValue,
                format_args!("quantity is negative ({q})"),
            ));
        }
        Ok(q)
    }

    /// Evaluates the tiers into `buf` (cleared first) and checks them: what
    /// both [`Price::amount`] and a part of a cut period price.
    #[inline]
    fn tier_values<P: PriceContext>(&self, cx: &mut P, buf: &mut Vec<TierValues>) -> R<()> {
        buf.clear();
        for (j, tier) in self.tiers.iter().enumerate() {
            buf.push(TierValues {
                up_to: cx.opt(format_args!("tiers[{j}].up_to"), &tier.up_to)?,
                unit_price: cx
                    .opt(format_args!("tiers[{j}].unit_price"), &tier.unit_price)?
                    .unwrap_or_default(),
                flat_fee: cx
                    .opt(format_args!("tiers[{j}].flat_fee"), &tier.flat_fee)?
                    .unwrap_or_default(),
            });
        }
        if let Err((j, m)) = check(buf) {
            return Err(cx.fail(ErrorKind::InvalidValue, format_args!("tiers[{j}]: {m}")));
        }
        Ok(())
    }

    /// The line of a part of a cut period with `accumulate = "period"`:
    /// the period-to-date quantity priced (see `to_date::priced`). Out of
    /// line, so the common path of [`Price::amount`] stays as it was.
    #[cold]
    #[inline(never)]
    fn amount_in_part<P: PriceContext>(&self, cx: &mut P, part: Part) -> R<Decimal> {
        let q = self.quantity(cx)?;
        let values: Vec<TierValues> = match &self.constant {
            Some(fixed) => fixed.clone(),
            None => {
                let mut buf = Vec::with_capacity(self.tiers.len());
                self.tier_values(cx, &mut buf)?;
                buf
            }
        };
        cx.set_quantity(q);
        let (mode, before) = (self.mode, &self.before);
        super::to_date::priced(cx, part, q, &|x| amount_quietly(mode, &values, before, x))
    }
}

impl Price for TieredBody {
    #[inline]
    fn amount<P: PriceContext>(&self, cx: &mut P) -> R<Decimal> {
        // The part first: in a whole period it is `None` at compile time.
        if let Some(part) = cx.part() {
            if self.accumulate == Accumulate::Period {
                return self.amount_in_part(cx, part);
            }
        }
        let q = self.quantity(cx)?;
        // Constant tiers are read where they are; others are evaluated into
        // the reused buffer.
        let mut buf = Vec::new();
        let values: &[TierValues] = match &self.constant {
            Some(fixed) => fixed,
            None => {
                buf = std::mem::take(&mut cx.buffers().tiers);
                self.tier_values(cx, &mut buf)?;
                &buf
            }
        };
        let mode = self.mode;
        let whole_before = &self.before;
        cx.set_quantity(q);
        let result = match self.accumulate {
            Accumulate::Period => priced(mode, values, whole_before, q, cx),
            Accumulate::ContractYear => {
                let before = *cx.year_to_date();
                let y = before.checked_add(q).ok_or_else(|| cx.overflow())?;
                let first = cx.year_starts();
                let r = cx.rounding();
                let a_y = priced(mode, values, whole_before, y, cx)?;
                let a_y = r.round(a_y);
                let a_before = if first {
                    Decimal::ZERO
                } else {
                    r.round(
                        amount_quietly(mode, values, whole_before, before)
                            .ok_or_else(|| cx.overflow())?,
                    )
                };
                *cx.year_to_date() = y;
                cx.trace(|| "year to date Y".into(), y);
                cx.trace(|| "round(A(Y))".into(), a_y);
                cx.trace(
                    || {
                        if first {
                            "round(A(Y - q)): 0 in the year's first period".into()
                        } else {
                            "round(A(Y - q))".into()
                        }
                    },
                    a_before,
                );
                let v = a_y - a_before;
                cx.trace_text(|| "round(A(Y)) - round(A(Y - q))".into(), || r.format(v));
                cx.set_rounded();
                Ok(r.round(v))
            }
        };
        if self.constant.is_none() {
            cx.buffers().tiers = buf;
        }
        result
    }
}

/// The tiers' amount for `quantity`: with its steps when tracing, else by
/// the quiet path (the same decimal).
fn priced<P: PriceContext>(
    mode: TierMode,
    values: &[TierValues],
    before: &[Option<Decimal>],
    quantity: Decimal,
    cx: &mut P,
) -> R<Decimal> {
    let v = if cx.tracing() {
        amount(mode, values, quantity, &mut cx.describer())
    } else {
        amount_quietly(mode, values, before, quantity)
    };
    v.ok_or_else(|| cx.overflow())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn tiers(spec: &[(Option<&str>, &str, &str)]) -> Vec<TierValues> {
        spec.iter()
            .map(|(u, p, f)| TierValues {
                up_to: u.map(d),
                unit_price: d(p),
                flat_fee: d(f),
            })
            .collect()
    }

    fn amt(mode: TierMode, t: &[TierValues], q: &str) -> Decimal {
        amount(mode, t, d(q), &mut |_, _| {}).unwrap()
    }

    #[test]
    fn graduated_prices_each_unit_in_its_tier_and_fees_of_reached_tiers() {
        // Stripe's graduated example: first 5 units at 5.00, next 5 at 4.00
        // with a flat fee... here with a 1.00 fee on the second tier.
        let t = tiers(&[
            (Some("5"), "5", "0"),
            (Some("10"), "4", "1"),
            (None, "3", "0"),
        ]);
        assert_eq!(amt(TierMode::Graduated, &t, "0"), d("0"));
        assert_eq!(amt(TierMode::Graduated, &t, "5"), d("25"));
        assert_eq!(amt(TierMode::Graduated, &t, "6"), d("30"));
        assert_eq!(amt(TierMode::Graduated, &t, "12"), d("52"));
    }

    #[test]
    fn volume_prices_all_units_at_the_tier_of_the_total() {
        // A quantity on an up_to belongs to that tier (inclusive).
        let t = tiers(&[
            (Some("5"), "5", "0"),
            (Some("10"), "4", "2"),
            (None, "3", "0"),
        ]);
        assert_eq!(amt(TierMode::Volume, &t, "5"), d("25"));
        assert_eq!(amt(TierMode::Volume, &t, "6"), d("26"));
        assert_eq!(amt(TierMode::Volume, &t, "11"), d("33"));
    }

    #[test]
    fn first_tier_flat_fee_is_always_reached() {
        // Graduated at zero quantity still pays the first tier's fee.
        let t = tiers(&[(Some("100"), "0", "10"), (None, "1", "5")]);
        assert_eq!(amt(TierMode::Graduated, &t, "0"), d("10"));
        assert_eq!(amt(TierMode::Graduated, &t, "100"), d("10"));
        assert_eq!(amt(TierMode::Graduated, &t, "100.5"), d("15.5"));
    }

    #[test]
    fn malformed_tiers_are_named() {
        // Decreasing up_to and a last tier with up_to are rejected with the tier's position.
        let bad = tiers(&[
            (Some("100"), "1", "0"),
            (Some("50"), "1", "0"),
            (None, "1", "0"),
        ]);
        assert_eq!(
            check(&bad).unwrap_err(),
            (1, "tiers must increase (100 then 50)".to_string())
        );
        let bad = tiers(&[(Some("100"), "1", "0")]);
        assert_eq!(check(&bad).unwrap_err().0, 0);
    }

    proptest! {
        /// A graduated amount without flat fees beyond the first tier is
        /// continuous and non-decreasing in quantity (non-negative prices).
        #[test]
        fn graduated_is_continuous_and_monotone(
            edges in proptest::collection::vec(1u32..1000, 1..5),
            prices in proptest::collection::vec(0u32..1000, 5),
            q in 0u32..5000, step in 1u32..100,
        ) {
            let mut ups: Vec<u32> = edges.clone();
            ups.sort_unstable();
            ups.dedup();
            let mut t: Vec<TierValues> = ups.iter().enumerate().map(|(i, &u)| TierValues {
                up_to: Some(Decimal::from(u)), unit_price: Decimal::new(i64::from(prices[i]), 2), flat_fee: Decimal::ZERO,
            }).collect();
            t.push(TierValues { up_to: None, unit_price: Decimal::new(i64::from(prices[4]), 2), flat_fee: Decimal::ZERO });
            let a = |q: Decimal| amount(TierMode::Graduated, &t, q, &mut |_, _| {}).unwrap();
            let q = Decimal::from(q);
            let dq = Decimal::new(i64::from(step), 3);
            // Monotone.
            prop_assert!(a(q + dq) >= a(q));
            // Continuous: a small step changes the amount by at most step * max price.
            let max_price = t.iter().map(|t| t.unit_price).max().unwrap();
            prop_assert!(a(q + dq) - a(q) <= dq * max_price);
        }

        /// The quiet graduated path (the tier of the quantity over the
        /// totals of the tiers before it) gives exactly `amount`'s decimal,
        /// scale included, for any tiers, fees, scales and quantity,
        /// including quantities on an edge and edges at zero.
        #[test]
        fn quiet_graduated_amount_is_amount_to_the_scale(
            edges in proptest::collection::vec((0i64..2000, 0u32..3), 0..5),
            prices in proptest::collection::vec((0i64..100_000, 0u32..5), 5),
            fees in proptest::collection::vec((0i64..5000, 0u32..3), 5),
            q in (0i64..3000, 0u32..3),
            on_edge in any::<bool>(),
        ) {
            let mut ups: Vec<Decimal> = edges.iter().map(|&(m, s)| Decimal::new(m, s)).collect();
            ups.sort();
            ups.dedup_by(|a, b| a == b);
            let tier = |i: usize, up_to| TierValues {
                up_to,
                unit_price: Decimal::new(prices[i].0, prices[i].1),
                flat_fee: Decimal::new(fees[i].0, fees[i].1),
            };
            let mut t: Vec<TierValues> = ups.iter().enumerate().map(|(i, &u)| tier(i, Some(u))).collect();
            t.push(tier(ups.len(), None));
            let before = graduated_before(&t);
            let q = match (on_edge, ups.first()) {
                (true, Some(&u)) => ups[(q.0 as usize) % ups.len()].max(u),
                _ => Decimal::new(q.0, q.1),
            };
            let full = amount(TierMode::Graduated, &t, q, &mut |_, _| {});
            let quiet = amount_quietly(TierMode::Graduated, &t, &before, q);
            prop_assert_eq!(quiet, full);
            prop_assert_eq!(quiet.map(|d| d.scale()), full.map(|d| d.scale()));
            prop_assert_eq!(
                amount_quietly(TierMode::Volume, &t, &[], q),
                amount(TierMode::Volume, &t, q, &mut |_, _| {})
            );
        }
    }
}
