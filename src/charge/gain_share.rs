//! `gain_share`: a share of an improvement's value, with thresholds, caps and
//! an optional loss side.

use rust_decimal::Decimal;

use crate::contract::Sharing;

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
