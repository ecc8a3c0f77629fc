//! Reconciliation: settle issued periods again with what is known now, and
//! turn every changed line into an adjustment.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::metric::MetricSource;
use crate::money::{format_scaled, parse_decimal};
use crate::report::ContractStatements;
use crate::settle::{CompiledContract, SettleOptions};

/// One line as issued: a period, a charge or limit, its kind and amount
/// (earlier adjustments included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedLine {
    /// First day of the period.
    pub period_start: NaiveDate,
    /// Day after its last day.
    pub period_end: NaiveDate,
    /// The charge or limit.
    pub charge: String,
    /// Its kind.
    pub kind: String,
    /// The amount issued.
    pub amount: Decimal,
}

/// A change found by reconciliation: `amount = settled - issued`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adjustment {
    /// First day of the period.
    pub period_start: NaiveDate,
    /// Day after its last day.
    pub period_end: NaiveDate,
    /// The charge or limit.
    pub charge: String,
    /// Its kind.
    pub kind: String,
    /// What was issued (with earlier adjustments).
    pub issued: Decimal,
    /// What settles now.
    pub settled: Decimal,
    /// `settled - issued`; negative is a credit.
    pub amount: Decimal,
}

/// The result of a reconciliation: the periods settled again, and the
/// adjustments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciliation {
    /// The re-settled statements of the issued periods.
    pub settled: ContractStatements,
    /// One item per period and line whose amount changed.
    pub adjustments: Vec<Adjustment>,
}

impl Reconciliation {
    /// The settle document of the re-settled periods plus `"adjustments"`.
    ///
    /// # Errors
    /// When a total overflows.
    pub fn to_json(&self) -> Result<Value> {
        let mut doc = self.settled.to_json()?;
        let scale = self.settled.rounding.scale;
        let items: Vec<Value> = self
            .adjustments
            .iter()
            .map(|a| {
                json!({
                    "period": { "start": a.period_start.to_string(), "end": a.period_end.to_string() },
                    "charge": a.charge,
                    "kind": a.kind,
                    "issued": format_scaled(a.issued, scale),
                    "settled": format_scaled(a.settled, scale),
                    "amount": format_scaled(a.amount, scale),
                })
            })
            .collect();
        if let Value::Object(map) = &mut doc {
            map.insert("adjustments".into(), Value::Array(items));
        }
        Ok(doc)
    }
}

impl Reconciliation {
    /// The adjustments as CSV, one row each under the header
    /// `contract,period_start,period_end,charge,kind,issued,settled,amount`,
    /// amounts at the contract's scale, fields quoted as CSV requires.
    pub fn to_csv(&self) -> String {
        let scale = self.settled.rounding.scale;
        let mut w = csv::Writer::from_writer(Vec::new());
        // Writing to a Vec cannot fail.
        let _ = w.write_record([
            "contract",
            "period_start",
            "period_end",
            "charge",
            "kind",
            "issued",
            "settled",
            "amount",
        ]);
        for a in &self.adjustments {
            let _ = w.write_record([
                self.settled.contract.clone(),
                a.period_start.to_string(),
                a.period_end.to_string(),
                a.charge.clone(),
                a.kind.clone(),
                format_scaled(a.issued, scale),
                format_scaled(a.settled, scale),
                format_scaled(a.amount, scale),
            ]);
        }
        String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
    }
}

/// Reads the issued lines of `contract` from a document printed by `settle
/// --format json` (a single contract's, or a run's `{ "contracts": [...] }`).
///
/// A document printed by `reconcile` holds statements already settled
/// again, so its `"adjustments"` are not added to them: reconciling its
/// output once more finds nothing to adjust.
///
/// # Errors
/// A data error naming `name` when the document is not of that shape, or
/// holds no statement of the contract.
pub fn issued_lines(name: &str, text: &str, contract: &str) -> Result<Vec<IssuedLine>> {
    let bad = |m: String| Error::data(name, m);
    let doc: Value =
        serde_json::from_str(text).map_err(|e| bad(format!("not a settle document: {e}")))?;
    let doc = match doc.get("contracts").and_then(Value::as_array) {
        Some(list) => list
            .iter()
            .find(|d| d.get("contract").and_then(Value::as_str) == Some(contract))
            .cloned()
            .ok_or_else(|| bad(format!("holds no statements of contract {contract}")))?,
        None => doc,
    };
    match doc.get("contract").and_then(Value::as_str) {
        Some(id) if id == contract => {}
        Some(id) => {
            return Err(bad(format!(
                "holds statements of contract {id}, not {contract}"
            )));
        }
        None => return Err(bad("has no \"contract\"".into())),
    }
    let str_of = |v: &Value, key: &str, at: &str| -> Result<String> {
        v.get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| bad(format!("{at}: missing {key:?}")))
    };
    let date_of = |v: &Value, at: &str| -> Result<(NaiveDate, NaiveDate)> {
        let p = v
            .get("period")
            .ok_or_else(|| bad(format!("{at}: missing \"period\"")))?;
        let parse = |k: &str| -> Result<NaiveDate> {
            let t = str_of(p, k, &format!("{at}.period"))?;
            NaiveDate::parse_from_str(&t, "%Y-%m-%d")
                .map_err(|_| bad(format!("{at}.period.{k}: {t:?} is not a date")))
        };
        Ok((parse("start")?, parse("end")?))
    };
    let amount_of = |v: &Value, key: &str, at: &str| -> Result<Decimal> {
        let t = str_of(v, key, at)?;
        parse_decimal(&t).map_err(|m| bad(format!("{at}.{key}: {m}")))
    };
    let mut lines: Vec<IssuedLine> = Vec::new();
    let statements = doc
        .get("statements")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("has no \"statements\"".into()))?;
    for (i, s) in statements.iter().enumerate() {
        let at = format!("statements[{i}]");
        let (start, end) = date_of(s, &at)?;
        for (j, l) in s
            .get("lines")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let at = format!("{at}.lines[{j}]");
            lines.push(IssuedLine {
                period_start: start,
                period_end: end,
                charge: str_of(l, "charge", &at)?,
                kind: str_of(l, "kind", &at)?,
                amount: amount_of(l, "amount", &at)?,
            });
        }
    }
    Ok(lines)
}

/// Settles again every period that `issued` holds (earlier periods only to
/// carry their state) with what is known at `as_of` (everything when none),
/// and lists what changed.
///
/// # Errors
/// A usage error when an issued period is not a period of the contract;
/// settlement errors as [`CompiledContract::settle_through`].
pub fn reconcile(
    contract: &CompiledContract,
    source: &dyn MetricSource,
    issued: &[IssuedLine],
    as_of: Option<DateTime<Utc>>,
) -> Result<Reconciliation> {
    let periods = contract.periods();
    let mut wanted: Vec<usize> = Vec::new();
    for line in issued {
        let index = periods
            .iter()
            .position(|p| p.start == line.period_start && p.end == line.period_end)
            .ok_or_else(|| {
                Error::usage(format!(
                    "issued period {}..{} is not a period of contract {}",
                    line.period_start,
                    line.period_end,
                    contract.contract().id
                ))
            })?;
        if !wanted.contains(&index) {
            wanted.push(index);
        }
    }
    wanted.sort_unstable();
    let statements = match wanted.last() {
        Some(&last) => {
            contract.settle_through(source, last, &SettleOptions { as_of, trace: true })?
        }
        None => Vec::new(),
    };
    let statements: Vec<_> = statements
        .into_iter()
        .filter(|s| wanted.contains(&s.period.index))
        .collect();
    let mut adjustments = Vec::new();
    for s in &statements {
        let mut seen = vec![false; issued.len()];
        let mut issued_of = |charge: &str| -> Decimal {
            issued
                .iter()
                .enumerate()
                .filter(|(_, l)| l.period_start == s.period.start && l.charge == charge)
                .map(|(k, l)| {
                    seen[k] = true;
                    l.amount
                })
                .sum()
        };
        for line in &s.lines {
            let was = issued_of(&line.charge);
            if was != line.amount {
                adjustments.push(Adjustment {
                    period_start: s.period.start,
                    period_end: s.period.end,
                    charge: line.charge.clone(),
                    kind: line.kind.clone(),
                    issued: was,
                    settled: line.amount,
                    amount: line.amount - was,
                });
            }
        }
        let mut only_issued: Map<String, Value> = Map::new();
        for (k, l) in issued.iter().enumerate() {
            if l.period_start == s.period.start
                && !seen[k]
                && !s.lines.iter().any(|x| x.charge == l.charge)
            {
                if only_issued.contains_key(&l.charge) {
                    continue;
                }
                only_issued.insert(l.charge.clone(), Value::Null);
                let was: Decimal = issued
                    .iter()
                    .filter(|x| x.period_start == s.period.start && x.charge == l.charge)
                    .map(|x| x.amount)
                    .sum();
                if !was.is_zero() {
                    adjustments.push(Adjustment {
                        period_start: s.period.start,
                        period_end: s.period.end,
                        charge: l.charge.clone(),
                        kind: l.kind.clone(),
                        issued: was,
                        settled: Decimal::ZERO,
                        amount: -was,
                    });
                }
            }
        }
    }
    Ok(Reconciliation {
        settled: ContractStatements {
            contract: contract.contract().id.clone(),
            currency: contract.currency(),
            rounding: contract.rounding(),
            statements,
        },
        adjustments,
    })
}
