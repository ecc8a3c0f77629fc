//! `corridor`: shares of the relative deviation from a target, by band.

use rust_decimal::Decimal;

use crate::contract::CorridorDirection;

/// One band on |d|, evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BandValues {
    pub from: Decimal,
    pub to: Option<Decimal>,
    pub share: Decimal,
}

/// Checks bands: non-negative edges, `from < to`, no overlap.
pub(crate) fn check(bands: &[BandValues]) -> Result<(), (usize, String)> {
    for (i, b) in bands.iter().enumerate() {
        if b.from.is_sign_negative() && !b.from.is_zero() {
            return Err((i, format!("band edges must not be negative ({})", b.from)));
        }
        if let Some(to) = b.to {
            if to <= b.from {
                return Err((
                    i,
                    format!("a band's from must be below its to ({} then {to})", b.from),
                ));
            }
        }
        for (j, o) in bands.iter().enumerate().take(i) {
            let overlaps = b.to.is_none_or(|t| o.from < t) && o.to.is_none_or(|t| b.from < t);
            if overlaps {
                return Err((i, format!("bands[{i}] overlaps bands[{j}]")));
            }
        }
    }
    Ok(())
}

/// `target * Σ share * (part of |d| in band)`, signed by direction; `None`
/// on overflow. The caller checks `target != 0`.
pub(crate) fn amount(
    actual: Decimal,
    target: Decimal,
    bands: &[BandValues],
    direction: CorridorDirection,
    describe: &mut dyn FnMut(&dyn Fn() -> String, Decimal),
) -> Option<Decimal> {
    let d = actual.checked_sub(target)?.checked_div(target)?;
    describe(&|| "d = (actual - target) / target".into(), d);
    let ad = d.abs();
    let mut sum = Decimal::ZERO;
    for (i, b) in bands.iter().enumerate() {
        let upper = b.to.map_or(ad, |t| t.min(ad));
        let part = (upper - b.from).max(Decimal::ZERO);
        if !part.is_zero() {
            let term = b.share.checked_mul(part)?;
            describe(
                &|| {
                    format!(
                        "bands[{i}]: share {} * {}",
                        b.share.normalize(),
                        part.normalize()
                    )
                },
                term,
            );
            sum = sum.checked_add(term)?;
        }
    }
    let magnitude = target.checked_mul(sum)?;
    let over = actual > target;
    let sign_positive = match direction {
        CorridorDirection::PayOverrun => over,
        CorridorDirection::PayUnderrun => !over,
    };
    let amount = if sign_positive { magnitude } else { -magnitude };
    describe(
        &|| {
            format!(
                "target * sum, {}",
                if over { "overrun" } else { "underrun" }
            )
        },
        amount,
    );
    Some(amount)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn deviation_is_shared_band_by_band() {
        // Target 100, actual 110: d = 0.1; bands 0-0.03 share 0, 0.03-0.08 share 0.5, 0.08+ share 0.8:
        // 100 * (0.5 * 0.05 + 0.8 * 0.02) = 4.1.
        let bands = [
            BandValues {
                from: d("0"),
                to: Some(d("0.03")),
                share: d("0"),
            },
            BandValues {
                from: d("0.03"),
                to: Some(d("0.08")),
                share: d("0.5"),
            },
            BandValues {
                from: d("0.08"),
                to: None,
                share: d("0.8"),
            },
        ];
        let a = amount(
            d("110"),
            d("100"),
            &bands,
            CorridorDirection::PayOverrun,
            &mut |_, _| {},
        );
        assert_eq!(a, Some(d("4.1")));
        let a = amount(
            d("90"),
            d("100"),
            &bands,
            CorridorDirection::PayOverrun,
            &mut |_, _| {},
        );
        assert_eq!(a, Some(d("-4.1")));
        let a = amount(
            d("90"),
            d("100"),
            &bands,
            CorridorDirection::PayUnderrun,
            &mut |_, _| {},
        );
        assert_eq!(a, Some(d("4.1")));
    }

    #[test]
    fn overlapping_bands_are_rejected() {
        // [0, 0.05) and [0.03, ∞) overlap.
        let bands = [
            BandValues {
                from: d("0"),
                to: Some(d("0.05")),
                share: d("0"),
            },
            BandValues {
                from: d("0.03"),
                to: None,
                share: d("1"),
            },
        ];
        assert_eq!(check(&bands).unwrap_err().0, 1);
    }
}
