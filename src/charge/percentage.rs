//! `percentage`: a rate on a base, or on each observation of a metric.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::kind::{CompileContext, Kind, Price, PriceContext, Rules};
use crate::error::{Error, R, Result};
use crate::expr::{Expr, Field};
use crate::metric::Window;
use crate::money::format_normalized;

/// Per-observation terms of a percentage charge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerObservation {
    /// Added to each observation's charge (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed: Option<Expr>,
    /// The least each observation is charged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<Expr>,
    /// The most each observation is charged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<Expr>,
}

/// `percentage`: a rate on a base.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PercentageCharge {
    /// The base (with `per_observation`, a metric with `window = "period"`).
    pub base: Expr,
    /// The rate, as a fraction (`0.029` for 2.9%).
    pub rate: Expr,
    /// Charge each observation of the base separately.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_observation: Option<PerObservation>,
}

/// Compiled per-observation terms.
#[derive(Debug, Clone)]
pub(crate) struct PerObs {
    /// The base's metric (position among the metrics).
    pub metric: usize,
    pub fixed: Option<Field>,
    pub min: Option<Field>,
    pub max: Option<Field>,
}

/// A compiled `percentage` charge.
#[derive(Debug, Clone)]
pub(crate) struct PercentageBody {
    pub base: Field,
    pub rate: Field,
    pub per_observation: Option<PerObs>,
}

impl Kind for PercentageCharge {
    const AMENDABLE: &'static [&'static str] = &["base", "rate", "fixed", "min", "max"];
    type Body = PercentageBody;

    /// With `per_observation`, `base` names a metric read per period.
    fn check(&self, rules: &Rules<'_>) -> Result<()> {
        if self.per_observation.is_none() {
            return Ok(());
        }
        let path = rules.path("base");
        let Some(name) = self.base.as_name() else {
            return Err(Error::contract(
                path,
                format!(
                    "with per_observation, base must name a metric, not the expression {:?}",
                    self.base.text()
                ),
            ));
        };
        match rules.contract.metric(name) {
            None => Err(Error::contract(
                path,
                format!("with per_observation, base must name a metric: {name} is not one"),
            )),
            Some((_, window)) if window != Window::Period => Err(Error::contract(
                path,
                format!(
                    "with per_observation, base must be a metric with window = \"period\": {name} reads to date"
                ),
            )),
            Some(_) => Ok(()),
        }
    }

    fn compile<C: CompileContext>(&self, c: &mut C) -> Result<PercentageBody> {
        let per_observation = match &self.per_observation {
            None => None,
            Some(po) => {
                let metric = self
                    .base
                    .as_name()
                    .and_then(|n| c.metric(n))
                    .filter(|&(_, window)| window == Window::Period)
                    .map(|(index, _)| index)
                    .ok_or_else(|| {
                        Error::contract(
                            c.path("base"),
                            format!(
                                "with per_observation, base must name a metric with window = \"period\", not {:?}",
                                self.base.text()
                            ),
                        )
                    })?;
                Some(PerObs {
                    metric,
                    fixed: c.opt("per_observation.fixed", &po.fixed)?,
                    min: c.opt("per_observation.min", &po.min)?,
                    max: c.opt("per_observation.max", &po.max)?,
                })
            }
        };
        Ok(PercentageBody {
            base: c.field("base", &self.base)?,
            rate: c.field("rate", &self.rate)?,
            per_observation,
        })
    }
}

impl Price for PercentageBody {
    #[inline]
    fn amount<P: PriceContext>(&self, cx: &mut P) -> R<Decimal> {
        let r = cx.value("rate", &self.rate)?;
        let Some(po) = &self.per_observation else {
            let b = cx.value("base", &self.base)?;
            cx.trace(|| format!("base: {}", self.base.text), b);
            let v = b.checked_mul(r).ok_or_else(|| cx.overflow())?;
            cx.trace(|| format!("base * rate {}", format_normalized(r)), v);
            return Ok(v);
        };
        let fixed = cx
            .opt("per_observation.fixed", &po.fixed)?
            .unwrap_or_default();
        let min = cx.opt("per_observation.min", &po.min)?;
        let max = cx.opt("per_observation.max", &po.max)?;
        let mut sum = Decimal::ZERO;
        let mut n: u64 = 0;
        let mut overflowed = false;
        cx.scan_period(po.metric, &mut |o| {
            let mut each = o.value.checked_mul(r).and_then(|x| x.checked_add(fixed));
            if let Some(v) = each.as_mut() {
                if let Some(lo) = min {
                    *v = (*v).max(lo);
                }
                if let Some(hi) = max {
                    *v = (*v).min(hi);
                }
            }
            match each.and_then(|v| sum.checked_add(v)) {
                Some(s) => sum = s,
                None => overflowed = true,
            }
            n += 1;
            Ok(())
        })?;
        if overflowed {
            return Err(cx.overflow());
        }
        cx.trace_in(
            |cx| {
                let series = cx.series(po.metric);
                let mut s = format!(
                    "{n} observations of {series}: each value * {} + {}",
                    format_normalized(r),
                    format_normalized(fixed)
                );
                if let Some(lo) = min {
                    s.push_str(&format!(", at least {}", format_normalized(lo)));
                }
                if let Some(hi) = max {
                    s.push_str(&format!(", at most {}", format_normalized(hi)));
                }
                s.push_str("; summed");
                s
            },
            sum,
        );
        Ok(sum)
    }

    fn observed_metric(&self) -> Option<usize> {
        self.per_observation.as_ref().map(|po| po.metric)
    }
}
