//! `bands`: a KPI picks a band, which pays a fixed amount or a percentage
//! of earlier charges.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::edges::{edge, no_overlap};
use super::kind::{CompileContext, Kind, Price, PriceContext, Rules};
use crate::error::{Error, ErrorKind, R, Result};
use crate::expr::{Expr, Field};
use crate::money::format_normalized;

/// One band of a `bands` charge: a fixed amount, or a percentage of charges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Band {
    /// Lower edge, inclusive; none for no lower edge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Expr>,
    /// Upper edge, exclusive; none for no upper edge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Expr>,
    /// A fixed amount (exclusive with `percent`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Expr>,
    /// A percentage of the charges named in `of`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<Expr>,
    /// Earlier charges whose rounded amounts `percent` applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub of: Option<Vec<String>>,
}

/// `bands`: a KPI picks a band.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BandsCharge {
    /// The KPI (any expression).
    pub kpi: Expr,
    /// Non-overlapping bands.
    pub bands: Vec<Band>,
}

/// What a compiled band pays.
#[derive(Debug, Clone)]
pub(crate) enum BandValue {
    Amount(Field),
    /// A percentage of the charges at these positions.
    Percent(Field, Vec<usize>),
}

/// A compiled band.
#[derive(Debug, Clone)]
pub(crate) struct CBand {
    pub from: Option<Field>,
    pub to: Option<Field>,
    pub value: BandValue,
}

/// A compiled `bands` charge.
#[derive(Debug, Clone)]
pub(crate) struct BandsBody {
    pub kpi: Field,
    pub bands: Vec<CBand>,
    /// The bands' edges when all are constants (checked at load).
    pub edges: Option<Vec<(Option<Decimal>, Option<Decimal>)>>,
}

impl Kind for BandsCharge {
    const AMENDABLE: &'static [&'static str] = &["kpi", "from", "to", "amount", "percent"];
    type Body = BandsBody;

    /// Each band pays `amount` or `percent` `of` earlier charges; constant
    /// edges do not overlap.
    fn check(&self, rules: &Rules<'_>) -> Result<()> {
        let at = rules.at();
        let mut ranges = Vec::with_capacity(self.bands.len());
        for (j, band) in self.bands.iter().enumerate() {
            let path = format!("{at}.bands[{j}]");
            band_payout(rules, &path, band)?;
            ranges.push((
                edge(rules, &format!("{path}.from"), band.from.as_ref())?,
                edge(rules, &format!("{path}.to"), band.to.as_ref())?,
            ));
        }
        no_overlap(&at, &ranges)
    }

    fn compile<C: CompileContext>(&self, c: &mut C) -> Result<BandsBody> {
        let mut bands = Vec::new();
        for (j, band) in self.bands.iter().enumerate() {
            let bp = |f: &str| format!("bands[{j}].{f}");
            let value = match (&band.amount, &band.percent, &band.of) {
                (Some(a), None, None) => BandValue::Amount(c.field(&bp("amount"), a)?),
                (None, Some(pct), Some(of)) => {
                    let mut idx = Vec::new();
                    for (k, id) in of.iter().enumerate() {
                        let pos = c.earlier_charge(id).ok_or_else(|| {
                            Error::contract(
                                c.path(&bp(&format!("of[{k}]"))),
                                format!("{id} is not an earlier charge"),
                            )
                        })?;
                        if let Some(problem) = c.named_charge(pos) {
                            return Err(Error::contract(c.path(&bp(&format!("of[{k}]"))), problem));
                        }
                        idx.push(pos);
                    }
                    BandValue::Percent(c.field(&bp("percent"), pct)?, idx)
                }
                (None, Some(_), None) => {
                    return Err(Error::contract(
                        c.path(&bp("of")),
                        "a band with percent needs of, the charges it is a percentage of",
                    ));
                }
                (Some(_), Some(_), _) => {
                    return Err(Error::contract(
                        c.path(&bp("percent")),
                        "a band has either amount or percent, not both",
                    ));
                }
                (None, None, _) => {
                    return Err(Error::contract(
                        c.path(&bp("amount")),
                        "a band needs amount, or percent with of",
                    ));
                }
                (Some(_), None, Some(_)) => {
                    return Err(Error::contract(
                        c.path(&bp("of")),
                        "of goes with percent, not with amount",
                    ));
                }
            };
            bands.push(CBand {
                from: c.opt(&bp("from"), &band.from)?,
                to: c.opt(&bp("to"), &band.to)?,
                value,
            });
        }
        let value = |f: &Option<Field>| match f {
            None => Some(None),
            Some(f) => f.code.constant().map(Some),
        };
        let edges = bands
            .iter()
            .map(|b| Some((value(&b.from)?, value(&b.to)?)))
            .collect();
        Ok(BandsBody {
            kpi: c.field("kpi", &self.kpi)?,
            bands,
            edges,
        })
    }
}

/// A band pays a fixed `amount`, or a `percent` `of` earlier charges.
fn band_payout(rules: &Rules<'_>, path: &str, band: &Band) -> Result<()> {
    match (&band.amount, &band.percent, &band.of) {
        (Some(_), None, None) | (None, Some(_), Some(_)) => {}
        (Some(_), Some(_), _) => {
            return Err(Error::contract(
                format!("{path}.percent"),
                "a band has amount or percent, not both",
            ));
        }
        (Some(_), None, Some(_)) => {
            return Err(Error::contract(
                format!("{path}.of"),
                "of goes with percent, not with amount",
            ));
        }
        (None, Some(_), None) => {
            return Err(Error::contract(
                format!("{path}.of"),
                "missing field: percent needs of, the charges it is a percentage of",
            ));
        }
        (None, None, Some(_)) => {
            return Err(Error::contract(
                format!("{path}.percent"),
                "missing field: of needs percent",
            ));
        }
        (None, None, None) => {
            return Err(Error::contract(
                path,
                "a band needs amount, or percent with of",
            ));
        }
    }
    let Some(of) = &band.of else { return Ok(()) };
    if of.is_empty() {
        return Err(Error::contract(
            format!("{path}.of"),
            "must name at least one charge",
        ));
    }
    let position = rules.position;
    for (k, name) in of.iter().enumerate() {
        let item = format!("{path}.of[{k}]");
        match rules.contract.charge(name) {
            None => return Err(Error::contract(item, format!("{name} is not a charge"))),
            Some(p) if p == position => {
                return Err(Error::contract(
                    item,
                    format!("{name} is this charge itself"),
                ));
            }
            Some(p) if p > position => {
                return Err(Error::contract(
                    item,
                    format!(
                        "{name} is not an earlier charge: charges are evaluated in the order written"
                    ),
                ));
            }
            Some(_) => {}
        }
        if of[..k].contains(name) {
            return Err(Error::contract(item, format!("{name} is listed twice")));
        }
    }
    Ok(())
}

impl Price for BandsBody {
    #[inline]
    fn amount<P: PriceContext>(&self, cx: &mut P) -> R<Decimal> {
        let k = cx.value("kpi", &self.kpi)?;
        cx.trace(|| format!("kpi: {}", self.kpi.text), k);
        let band_of = |edges: &[(Option<Decimal>, Option<Decimal>)]| {
            edges
                .iter()
                .position(|(f, to)| f.is_none_or(|f| f <= k) && to.is_none_or(|to| k < to))
        };
        let chosen = match &self.edges {
            // Every edge constant (checked at load): read in place.
            Some(fixed) => band_of(fixed),
            None => {
                let mut edges = std::mem::take(&mut cx.buffers().edges);
                edges.clear();
                for (j, band) in self.bands.iter().enumerate() {
                    let from = cx.opt(format_args!("bands[{j}].from"), &band.from)?;
                    let to = cx.opt(format_args!("bands[{j}].to"), &band.to)?;
                    if let (Some(f), Some(t)) = (from, to) {
                        if f >= t {
                            return Err(cx.fail(
                                ErrorKind::InvalidValue,
                                format_args!("bands[{j}]: from must be below to ({f} then {t})"),
                            ));
                        }
                    }
                    for (o, (of, ot)) in edges.iter().enumerate() {
                        let overlap = to.is_none_or(|t| of.is_none_or(|f: Decimal| f < t))
                            && ot.is_none_or(|t: Decimal| from.is_none_or(|f| f < t));
                        if overlap {
                            return Err(cx.fail(
                                ErrorKind::InvalidValue,
                                format_args!("bands[{j}] overlaps bands[{o}]"),
                            ));
                        }
                    }
                    edges.push((from, to));
                }
                let chosen = band_of(&edges);
                cx.buffers().edges = edges;
                chosen
            }
        };
        let Some(j) = chosen else {
            cx.trace(|| "in no band".into(), Decimal::ZERO);
            return Ok(Decimal::ZERO);
        };
        let Some(band) = self.bands.get(j) else {
            return Ok(Decimal::ZERO);
        };
        match &band.value {
            BandValue::Amount(a) => {
                let v = cx.value(format_args!("bands[{j}].amount"), a)?;
                cx.trace(|| format!("bands[{j}]: amount {}", a.text), v);
                Ok(v)
            }
            BandValue::Percent(p, of) => {
                let pct = cx.value(format_args!("bands[{j}].percent"), p)?;
                let mut sum = Decimal::ZERO;
                for &c in of {
                    let amount = cx.charge_amount(c);
                    sum = sum.checked_add(amount).ok_or_else(|| cx.overflow())?;
                }
                cx.trace_in(
                    |cx| {
                        let names: Vec<&str> = of.iter().map(|&c| cx.charge_id(c)).collect();
                        format!("sum of {}", names.join(", "))
                    },
                    sum,
                );
                let v = pct
                    .checked_mul(sum)
                    .and_then(|x| x.checked_div(Decimal::ONE_HUNDRED))
                    .ok_or_else(|| cx.overflow())?;
                cx.trace(
                    || format!("bands[{j}]: {}% of the sum", format_normalized(pct)),
                    v,
                );
                Ok(v)
            }
        }
    }
}
