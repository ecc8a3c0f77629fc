//! Statements rendered in the spec's shapes: JSON and CSV (stable), and a
//! table for people.

use std::fmt::Write as _;

use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::money::{Currency, Rounding, format_normalized};
use crate::settle::{Line, Statement};

/// One contract's settled statements, ready to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractStatements {
    /// The contract id.
    pub contract: String,
    /// The contract's currency.
    pub currency: Currency,
    /// The contract's rounding (its scale fixes how amounts print).
    pub rounding: Rounding,
    /// The statements, in period order.
    pub statements: Vec<Statement>,
}

/// One contract of a billing run: its statements, or why it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunItem {
    /// Settled.
    Settled(ContractStatements),
    /// Failed: the contract id (or its file, when the id is unknown) and the error.
    Failed {
        /// The id, or the file path when the id could not be read.
        contract: String,
        /// What went wrong.
        error: Error,
    },
}

impl RunItem {
    /// The id the item sorts and prints under.
    pub fn contract(&self) -> &str {
        match self {
            RunItem::Settled(s) => &s.contract,
            RunItem::Failed { contract, .. } => contract,
        }
    }
}

impl ContractStatements {
    /// The sum of the statements' totals.
    ///
    /// # Errors
    /// When the sum overflows.
    pub fn total(&self) -> Result<Decimal> {
        self.statements.iter().try_fold(Decimal::ZERO, |acc, s| {
            acc.checked_add(s.total)
                .ok_or_else(|| Error::usage(format!("{}: the term total overflows", self.contract)))
        })
    }

    fn amount(&self, v: Decimal) -> String {
        crate::money::format_scaled(v, self.rounding.scale)
    }

    /// The statement document of the spec (`settle --format json`).
    ///
    /// # Errors
    /// When the term total overflows.
    pub fn to_json(&self) -> Result<Value> {
        let statements: Vec<Value> = self
            .statements
            .iter()
            .map(|s| {
                let lines: Vec<Value> = s.lines.iter().map(|l| self.line_json(l)).collect();
                json!({
                    "period": { "start": s.period.start.to_string(), "end": s.period.end.to_string() },
                    "lines": lines,
                    "total": self.amount(s.total),
                })
            })
            .collect();
        let mut doc = Map::new();
        doc.insert("contract".into(), Value::String(self.contract.clone()));
        doc.insert(
            "currency".into(),
            Value::String(self.currency.code().into()),
        );
        doc.insert("statements".into(), Value::Array(statements));
        doc.insert("total".into(), Value::String(self.amount(self.total()?)));
        Ok(Value::Object(doc))
    }

    fn line_json(&self, l: &Line) -> Value {
        let mut m = Map::new();
        m.insert("charge".into(), Value::String(l.charge.clone()));
        m.insert("kind".into(), Value::String(l.kind.clone()));
        if let Some(q) = l.quantity {
            m.insert("quantity".into(), Value::String(format_normalized(q)));
        }
        m.insert("amount".into(), Value::String(self.amount(l.amount)));
        let trace: Vec<Value> = l
            .trace
            .iter()
            .map(|s| json!({ "step": s.step, "value": s.value }))
            .collect();
        m.insert("trace".into(), Value::Array(trace));
        Value::Object(m)
    }
}

/// The JSON of a run: one contract's document alone, or
/// `{ "contracts": [...] }` when `several` (items in the order given).
///
/// # Errors
/// When a term total overflows.
pub fn run_json(items: &[RunItem], several: bool) -> Result<String> {
    let mut docs = Vec::new();
    for item in items {
        docs.push(match item {
            RunItem::Settled(s) => s.to_json()?,
            RunItem::Failed { contract, error } => {
                json!({ "contract": contract, "error": error.to_string() })
            }
        });
    }
    let value = if several || docs.len() != 1 {
        json!({ "contracts": docs })
    } else {
        docs.pop().unwrap_or(Value::Null)
    };
    Ok(pretty(&value))
}

/// Pretty JSON with a final newline.
pub(crate) fn pretty(value: &Value) -> String {
    let mut s = serde_json::to_string_pretty(value).unwrap_or_default();
    s.push('\n');
    s
}

/// The CSV export of a run: one header, one row per line; failed contracts
/// have no rows.
pub fn run_csv(items: &[RunItem]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut rows: Vec<[String; 7]> = Vec::new();
    for item in items {
        if let RunItem::Settled(s) = item {
            for st in &s.statements {
                for l in &st.lines {
                    rows.push([
                        s.contract.clone(),
                        st.period.start.to_string(),
                        st.period.end.to_string(),
                        l.charge.clone(),
                        l.kind.clone(),
                        l.quantity.map(format_normalized).unwrap_or_default(),
                        s.amount(l.amount),
                    ]);
                }
            }
        }
    }
    // Writing to a Vec cannot fail.
    let _ = w.write_record([
        "contract",
        "period_start",
        "period_end",
        "charge",
        "kind",
        "quantity",
        "amount",
    ]);
    for r in &rows {
        let _ = w.write_record(r);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// A table for people: each contract's statements with their lines and
/// totals, amounts grouped by thousands. Its layout may change; use JSON or
/// CSV in programs.
pub fn run_table(items: &[RunItem]) -> String {
    let mut out = String::new();
    for (k, item) in items.iter().enumerate() {
        if k > 0 {
            out.push('\n');
        }
        match item {
            RunItem::Failed { contract, error } => {
                let _ = writeln!(out, "{contract}: failed: {error}");
            }
            RunItem::Settled(s) => {
                let _ = writeln!(out, "{} ({})", s.contract, s.currency);
                let width = s
                    .statements
                    .iter()
                    .flat_map(|st| st.lines.iter().map(|l| l.charge.len()))
                    .max()
                    .unwrap_or(6)
                    .max(6);
                let amount = |v: Decimal| group_thousands(&s.amount(v));
                let _ = writeln!(
                    out,
                    "  {:<width$}  {:<10}  {:>12}  {:>14}",
                    "charge", "kind", "quantity", "amount"
                );
                for st in &s.statements {
                    let _ = writeln!(out, "  {} .. {}", st.period.start, st.period.end);
                    for l in &st.lines {
                        let q = l
                            .quantity
                            .map(|q| group_thousands(&format_normalized(q)))
                            .unwrap_or_default();
                        let _ = writeln!(
                            out,
                            "  {:<width$}  {:<10}  {:>12}  {:>14}",
                            l.charge,
                            l.kind,
                            q,
                            amount(l.amount)
                        );
                    }
                    let _ = writeln!(
                        out,
                        "  {:<width$}  {:<10}  {:>12}  {:>14}",
                        "total",
                        "",
                        "",
                        amount(st.total)
                    );
                }
                let total = s.total().map(amount).unwrap_or_else(|_| "overflow".into());
                let _ = writeln!(out, "  term total: {total} {}", s.currency);
            }
        }
    }
    out
}

/// `1234567.89` as `1,234,567.89`, for people.
pub(crate) fn group_thousands(text: &str) -> String {
    let (sign, rest) = text.strip_prefix('-').map_or(("", text), |r| ("-", r));
    let (whole, fraction) = rest
        .split_once('.')
        .map_or((rest, None), |(w, f)| (w, Some(f)));
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match fraction {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped_for_people() {
        // Signs and fractions are kept; short numbers are unchanged.
        assert_eq!(group_thousands("1234567.89"), "1,234,567.89");
        assert_eq!(group_thousands("-1000"), "-1,000");
        assert_eq!(group_thousands("999.5"), "999.5");
        assert_eq!(group_thousands("0.00"), "0.00");
    }
}
