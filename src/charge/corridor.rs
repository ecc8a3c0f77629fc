//! `corridor`: shares of the relative deviation from a target, by band.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::edges::{Edge, edge, no_overlap};
use super::kind::{CompileContext, Kind, Price, PriceContext, Rules};
use crate::error::{Error, ErrorKind, R, Result};
use crate::expr::{Expr, Field};

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

/// Which deviation a corridor pays for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CorridorDirection {
    /// Positive when actual exceeds target.
    PayOverrun,
    /// Positive when actual falls short of target.
    PayUnderrun,
}

/// One band of a corridor, on the relative deviation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorridorBand {
    /// Lower edge of |d| (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Expr>,
    /// Upper edge of |d| (default: no end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Expr>,
    /// The share of the deviation inside the band.
    pub share: Expr,
}

/// `corridor`: a risk corridor around a target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorridorCharge {
    /// The measured value.
    pub actual: Expr,
    /// The target.
    pub target: Expr,
    /// Bands on |d|.
    pub bands: Vec<CorridorBand>,
    /// Which deviation is paid.
    pub direction: CorridorDirection,
}

/// A compiled corridor band.
#[derive(Debug, Clone)]
pub(crate) struct CCorridorBand {
    pub from: Option<Field>,
    pub to: Option<Field>,
    pub share: Field,
}

/// A compiled `corridor` charge.
#[derive(Debug, Clone)]
pub(crate) struct CorridorBody {
    pub actual: Field,
    pub target: Field,
    pub bands: Vec<CCorridorBand>,
    pub direction: CorridorDirection,
}

impl Kind for CorridorCharge {
    const AMENDABLE: &'static [&'static str] = &["actual", "target", "from", "to", "share"];
    type Body = CorridorBody;

    /// Constant edges are not negative and bands do not overlap.
    fn check(&self, rules: &Rules<'_>) -> Result<()> {
        let at = rules.at();
        let mut ranges = Vec::with_capacity(self.bands.len());
        for (j, band) in self.bands.iter().enumerate() {
            let path = format!("{at}.bands[{j}]");
            // `from` defaults to 0: the deviation |d| is never negative.
            let from = match edge(rules, &format!("{path}.from"), band.from.as_ref())? {
                Edge::Open => Edge::At(Decimal::ZERO),
                other => other,
            };
            let to = edge(rules, &format!("{path}.to"), band.to.as_ref())?;
            for (name, e) in [("from", from), ("to", to)] {
                if let Edge::At(v) = e {
                    if v.is_sign_negative() && !v.is_zero() {
                        return Err(Error::contract(
                            format!("{path}.{name}"),
                            format!(
                                "must not be negative ({v}): bands are on the size of the deviation"
                            ),
                        ));
                    }
                }
            }
            ranges.push((from, to));
        }
        no_overlap(&at, &ranges)
    }

    fn compile<C: CompileContext>(&self, c: &mut C) -> Result<CorridorBody> {
        let mut bands = Vec::new();
        for (j, band) in self.bands.iter().enumerate() {
            bands.push(CCorridorBand {
                from: c.opt(&format!("bands[{j}].from"), &band.from)?,
                to: c.opt(&format!("bands[{j}].to"), &band.to)?,
                share: c.field(&format!("bands[{j}].share"), &band.share)?,
            });
        }
        Ok(CorridorBody {
            actual: c.field("actual", &self.actual)?,
            target: c.field("target", &self.target)?,
            bands,
            direction: self.direction,
        })
    }
}

impl Price for CorridorBody {
    #[inline]
    fn amount<P: PriceContext>(&self, cx: &mut P) -> R<Decimal> {
        let a = cx.value("actual", &self.actual)?;
        let tg = cx.value("target", &self.target)?;
        cx.trace(|| format!("actual: {}", self.actual.text), a);
        cx.trace(|| format!("target: {}", self.target.text), tg);
        if tg.is_zero() {
            return Err(cx.fail(
                ErrorKind::DivisionByZero,
                format_args!("target {:?} is 0: division by zero", self.target.text),
            ));
        }
        let mut values = std::mem::take(&mut cx.buffers().bands);
        values.clear();
        for (j, band) in self.bands.iter().enumerate() {
            values.push(BandValues {
                from: cx
                    .opt(format_args!("bands[{j}].from"), &band.from)?
                    .unwrap_or_default(),
                to: cx.opt(format_args!("bands[{j}].to"), &band.to)?,
                share: cx.value(format_args!("bands[{j}].share"), &band.share)?,
            });
        }
        if let Err((j, m)) = check(&values) {
            return Err(cx.fail(ErrorKind::InvalidValue, format_args!("bands[{j}]: {m}")));
        }
        let v = amount(a, tg, &values, self.direction, &mut cx.describer());
        cx.buffers().bands = values;
        v.ok_or_else(|| cx.overflow())
    }
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
