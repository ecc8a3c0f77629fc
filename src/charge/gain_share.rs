//! `gain_share`: a share of an improvement's value, with thresholds, caps and
//! an optional loss side.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::kind::{CompileContext, Kind, Price, PriceContext};
use crate::error::{R, Result};
use crate::expr::{Expr, Field};
use crate::money::format_normalized;

/// One side's terms, evaluated for the period, in money.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Side {
    pub share: Decimal,
    /// Threshold in money (0 without one).
    pub threshold: Decimal,
    pub sharing: Sharing,
    /// Cap in money, if any.
    pub cap: Option<Decimal>,
}

/// The amount for value `v` (money): gains positive, losses negative; `None`
/// on overflow. `describe` receives the formula's steps.
pub(crate) fn amount(
    v: Decimal,
    gains: &Side,
    losses: Option<&Side>,
    describe: &mut dyn FnMut(&dyn Fn() -> String, Decimal),
) -> Option<Decimal> {
    if v > Decimal::ZERO && v >= gains.threshold {
        let shared = match gains.sharing {
            Sharing::FirstDollar => v,
            Sharing::AboveThreshold => v.checked_sub(gains.threshold)?,
        };
        let mut amount = gains.share.checked_mul(shared)?;
        describe(
            &|| {
                format!(
                    "gain: share {} * {}",
                    gains.share.normalize(),
                    shared.normalize()
                )
            },
            amount,
        );
        if let Some(cap) = gains.cap {
            if amount > cap {
                amount = cap;
                describe(&|| format!("at most the cap {}", cap.normalize()), amount);
            }
        }
        return Some(amount);
    }
    if let Some(l) = losses {
        let loss = -v;
        if loss > Decimal::ZERO && loss >= l.threshold {
            let shared = match l.sharing {
                Sharing::FirstDollar => loss,
                Sharing::AboveThreshold => loss.checked_sub(l.threshold)?,
            };
            let mut amount = -(l.share.checked_mul(shared)?);
            describe(
                &|| {
                    format!(
                        "loss: -(share {} * {})",
                        l.share.normalize(),
                        shared.normalize()
                    )
                },
                amount,
            );
            if let Some(cap) = l.cap {
                if amount < -cap {
                    amount = -cap;
                    describe(
                        &|| format!("at least minus the loss cap {}", cap.normalize()),
                        amount,
                    );
                }
            }
            return Some(amount);
        }
    }
    describe(&|| "no gain or loss to share".into(), Decimal::ZERO);
    Some(Decimal::ZERO)
}

/// Whether an improvement is an increase or a decrease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Improvement is `actual - baseline`.
    Increase,
    /// Improvement is `baseline - actual`.
    Decrease,
}

/// A gain-share threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Threshold {
    /// A fraction of the baseline, in money.
    Relative(Expr),
    /// An amount of money.
    Absolute(Expr),
}

/// A gain-share cap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ShareCap {
    /// An amount of money.
    Amount(Expr),
    /// A fraction of the baseline, in money.
    Relative(Expr),
}

/// Whether a share applies from the first dollar or above the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sharing {
    /// The whole value is shared once the threshold is met.
    #[default]
    FirstDollar,
    /// Only the value above the threshold is shared.
    AboveThreshold,
}

/// The loss side of a two-sided gain share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Losses {
    /// The share of losses paid back.
    pub share: Expr,
    /// The loss threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<Threshold>,
    /// First dollar or above threshold.
    #[serde(default, skip_serializing_if = "crate::text::is_default")]
    pub sharing: Sharing,
    /// The most paid back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<ShareCap>,
}

/// `gain_share`: a share of the value of an improvement over a baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GainShareCharge {
    /// The measured value.
    pub actual: Expr,
    /// A baseline's name, or an expression.
    pub baseline: Expr,
    /// Whether improvement is an increase or a decrease.
    pub direction: Direction,
    /// Money per unit of improvement (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_per_unit: Option<Expr>,
    /// The share of gains.
    pub share: Expr,
    /// The least gain that is shared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<Threshold>,
    /// First dollar or above threshold.
    #[serde(default, skip_serializing_if = "crate::text::is_default")]
    pub sharing: Sharing,
    /// The most paid for gains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap: Option<ShareCap>,
    /// The loss side; without it losses cost nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub losses: Option<Losses>,
}

/// A compiled threshold or cap: a fraction of the baseline, or money.
#[derive(Debug, Clone)]
pub(crate) enum CThreshold {
    Relative(Field),
    Absolute(Field),
}

/// A compiled side.
#[derive(Debug, Clone)]
pub(crate) struct CSide {
    pub share: Field,
    pub threshold: Option<CThreshold>,
    pub sharing: Sharing,
    pub cap: Option<CThreshold>,
}

/// A compiled `gain_share` charge.
#[derive(Debug, Clone)]
pub(crate) struct GainShareBody {
    pub actual: Field,
    pub baseline: Field,
    pub direction: Direction,
    pub value_per_unit: Option<Field>,
    pub gains: CSide,
    pub losses: Option<CSide>,
}

impl Kind for GainShareCharge {
    const AMENDABLE: &'static [&'static str] = &[
        "actual",
        "baseline",
        "value_per_unit",
        "share",
        "relative",
        "absolute",
        "amount",
    ];
    type Body = GainShareBody;

    fn compile<C: CompileContext>(&self, c: &mut C) -> Result<GainShareBody> {
        let threshold =
            |c: &mut C, path: &str, t: &Option<Threshold>| -> Result<Option<CThreshold>> {
                Ok(match t {
                    None => None,
                    Some(Threshold::Relative(e)) => Some(CThreshold::Relative(
                        c.field(&format!("{path}.relative"), e)?,
                    )),
                    Some(Threshold::Absolute(e)) => Some(CThreshold::Absolute(
                        c.field(&format!("{path}.absolute"), e)?,
                    )),
                })
            };
        let cap = |c: &mut C, path: &str, t: &Option<ShareCap>| -> Result<Option<CThreshold>> {
            Ok(match t {
                None => None,
                Some(ShareCap::Relative(e)) => Some(CThreshold::Relative(
                    c.field(&format!("{path}.relative"), e)?,
                )),
                Some(ShareCap::Amount(e)) => {
                    Some(CThreshold::Absolute(c.field(&format!("{path}.amount"), e)?))
                }
            })
        };
        let gains = CSide {
            share: c.field("share", &self.share)?,
            threshold: threshold(c, "threshold", &self.threshold)?,
            sharing: self.sharing,
            cap: cap(c, "cap", &self.cap)?,
        };
        let losses = match &self.losses {
            None => None,
            Some(l) => Some(CSide {
                share: c.field("losses.share", &l.share)?,
                threshold: threshold(c, "losses.threshold", &l.threshold)?,
                sharing: l.sharing,
                cap: cap(c, "losses.cap", &l.cap)?,
            }),
        };
        Ok(GainShareBody {
            actual: c.field("actual", &self.actual)?,
            baseline: c.field("baseline", &self.baseline)?,
            direction: self.direction,
            value_per_unit: c.opt("value_per_unit", &self.value_per_unit)?,
            gains,
            losses,
        })
    }
}

impl Price for GainShareBody {
    #[inline]
    fn amount<P: PriceContext>(&self, cx: &mut P) -> R<Decimal> {
        let a = cx.value("actual", &self.actual)?;
        let b = cx.value("baseline", &self.baseline)?;
        let vpu = cx
            .opt("value_per_unit", &self.value_per_unit)?
            .unwrap_or(Decimal::ONE);
        cx.trace(|| format!("actual: {}", self.actual.text), a);
        cx.trace(|| format!("baseline: {}", self.baseline.text), b);
        let improvement = match self.direction {
            Direction::Increase => a.checked_sub(b),
            Direction::Decrease => b.checked_sub(a),
        }
        .ok_or_else(|| cx.overflow())?;
        cx.trace(
            || match self.direction {
                Direction::Increase => "improvement: actual - baseline".into(),
                Direction::Decrease => "improvement: baseline - actual".into(),
            },
            improvement,
        );
        let v = improvement.checked_mul(vpu).ok_or_else(|| cx.overflow())?;
        cx.trace(
            || {
                format!(
                    "value: improvement * value_per_unit {}",
                    format_normalized(vpu)
                )
            },
            v,
        );
        let money_base = b.checked_mul(vpu).ok_or_else(|| cx.overflow())?;
        let g = side(cx, "", &self.gains, money_base)?;
        let l = match &self.losses {
            Some(l) => Some(side(cx, "losses.", l, money_base)?),
            None => None,
        };
        let v = amount(v, &g, l.as_ref(), &mut cx.describer());
        v.ok_or_else(|| cx.overflow())
    }
}

/// A side's terms in money for this period.
fn side<P: PriceContext>(cx: &mut P, prefix: &str, s: &CSide, money_base: Decimal) -> R<Side> {
    let share = cx.value(format_args!("{prefix}share"), &s.share)?;
    let money = |cx: &mut P, name: &str, th: &CThreshold| -> R<Decimal> {
        match th {
            CThreshold::Absolute(f) => cx.value(format_args!("{prefix}{name}"), f),
            CThreshold::Relative(f) => {
                let r = cx.value(format_args!("{prefix}{name}.relative"), f)?;
                r.checked_mul(money_base).ok_or_else(|| cx.overflow())
            }
        }
    };
    let threshold = match &s.threshold {
        Some(th) => money(cx, "threshold", th)?,
        None => Decimal::ZERO,
    };
    let cap = match &s.cap {
        Some(c) => Some(money(cx, "cap", c)?),
        None => None,
    };
    let side_name = if prefix.is_empty() { "gains" } else { "losses" };
    cx.trace(|| format!("{side_name}: share"), share);
    if s.threshold.is_some() {
        cx.trace(|| format!("{side_name}: threshold in money"), threshold);
    }
    if let Some(c) = cap {
        cx.trace(|| format!("{side_name}: cap in money"), c);
    }
    Ok(Side {
        share,
        threshold,
        sharing: s.sharing,
        cap,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn side(share: &str, threshold: &str, sharing: Sharing, cap: Option<&str>) -> Side {
        Side {
            share: d(share),
            threshold: d(threshold),
            sharing,
            cap: cap.map(d),
        }
    }

    #[test]
    fn first_dollar_shares_the_whole_gain_once_the_threshold_is_met() {
        // Below the threshold nothing; at it, the whole value is shared.
        let g = side("0.5", "100", Sharing::FirstDollar, None);
        assert_eq!(amount(d("99"), &g, None, &mut |_, _| {}), Some(d("0")));
        assert_eq!(amount(d("100"), &g, None, &mut |_, _| {}), Some(d("50")));
    }

    #[test]
    fn above_threshold_shares_only_the_excess_and_caps_apply() {
        // 0.5 * (300 - 100) = 100, capped at 80.
        let g = side("0.5", "100", Sharing::AboveThreshold, Some("80"));
        assert_eq!(amount(d("300"), &g, None, &mut |_, _| {}), Some(d("80")));
        assert_eq!(amount(d("200"), &g, None, &mut |_, _| {}), Some(d("50")));
    }

    #[test]
    fn losses_cost_nothing_without_a_loss_side() {
        // One-sided: a loss is 0; two-sided: -(share * loss), at least -cap.
        let g = side("0.5", "0", Sharing::FirstDollar, None);
        assert_eq!(amount(d("-500"), &g, None, &mut |_, _| {}), Some(d("0")));
        let l = side("0.6", "0", Sharing::FirstDollar, Some("200"));
        assert_eq!(
            amount(d("-100"), &g, Some(&l), &mut |_, _| {}),
            Some(d("-60"))
        );
        assert_eq!(
            amount(d("-1000"), &g, Some(&l), &mut |_, _| {}),
            Some(d("-200"))
        );
    }

    proptest! {
        /// A gain-share amount never exceeds its caps on either side.
        #[test]
        fn caps_bound_both_sides(v in -1_000_000i64..1_000_000, cap in 0i64..10_000, lcap in 0i64..10_000, share in 0i64..=100) {
            let g = Side { share: Decimal::new(share, 2), threshold: Decimal::ZERO, sharing: Sharing::FirstDollar, cap: Some(Decimal::from(cap)) };
            let l = Side { cap: Some(Decimal::from(lcap)), ..g };
            let a = amount(Decimal::from(v), &g, Some(&l), &mut |_, _| {}).unwrap();
            prop_assert!(a <= Decimal::from(cap));
            prop_assert!(a >= -Decimal::from(lcap));
        }
    }
}
