//! Statements rendered in the spec's shapes: JSON and CSV (stable), and a
//! table for people.

use std::fmt::Write as _;

use rust_decimal::Decimal;
use serde_json::Value;

use crate::error::{Error, Result};

pub use crate::document::{
    AdjustmentEntry, Amount, GroupEntry, LineEntry, PeriodEntry, RunDocument, RunEntry,
    StatementDocument, StatementEntry,
};
use crate::money::{Currency, Rounding, format_normalized};
use crate::settle::Statement;

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

    /// The statement document of the spec (`settle --format json`):
    /// amounts at the contract's scale.
    ///
    /// # Errors
    /// When the term total overflows.
    pub fn to_document(&self) -> Result<StatementDocument> {
        let scale = self.rounding.scale;
        Ok(StatementDocument {
            contract: self.contract.clone(),
            currency: self.currency,
            statements: self
                .statements
                .iter()
                .map(|s| StatementEntry::new(s, scale))
                .collect(),
            total: Amount::new(self.total()?, scale),
            adjustments: None,
        })
    }

    /// The statement document of the spec (`settle --format json`) as a
    /// JSON value: [`ContractStatements::to_document`]'s.
    ///
    /// # Errors
    /// When the term total overflows.
    pub fn to_json(&self) -> Result<Value> {
        to_value(&self.to_document()?)
    }
}

/// `document` as a JSON value.
pub(crate) fn to_value(document: &impl serde::Serialize) -> Result<Value> {
    // The documents hold strings, arrays and objects only: this cannot fail.
    serde_json::to_value(document).map_err(|e| Error::usage(e.to_string()))
}

/// The CSV export's header (`settle --format csv`).
pub const CSV_HEADER: &str = "contract,period_start,period_end,charge,kind,quantity,amount,group\n";

/// How a run is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunFormat {
    /// For people; its layout may change.
    Table,
    /// The statement document of the spec.
    Json,
    /// The invoicing export of the spec.
    Csv,
}

impl RunItem {
    /// This item's part of a run's output in `format`: its JSON document
    /// (pretty, no final newline), its CSV rows (no header), or its table.
    ///
    /// # Errors
    /// When a term total overflows (JSON only).
    pub fn render(&self, format: RunFormat) -> Result<String> {
        Ok(match format {
            RunFormat::Json => {
                let entry = match self {
                    RunItem::Settled(s) => RunEntry::Settled(s.to_document()?),
                    RunItem::Failed { contract, error } => RunEntry::Failed {
                        contract: contract.clone(),
                        error: error.to_string(),
                    },
                };
                serde_json::to_string_pretty(&entry).unwrap_or_default()
            }
            RunFormat::Csv => match self {
                RunItem::Settled(s) => s.csv_rows(),
                RunItem::Failed { .. } => String::new(),
            },
            RunFormat::Table => self.table(),
        })
    }

    fn table(&self) -> String {
        let mut out = String::new();
        match self {
            RunItem::Failed { contract, error } => {
                let _ = writeln!(out, "{contract}: failed: {error}");
            }
            RunItem::Settled(s) => {
                let _ = writeln!(out, "{} ({})", s.contract, s.currency);
                let width = s
                    .statements
                    .iter()
                    .flat_map(|st| {
                        st.lines.iter().map(|l| {
                            let groups =
                                l.groups.iter().flatten().map(|g| g.group.len().max(2) + 2);
                            groups.fold(l.charge.len(), usize::max)
                        })
                    })
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
                        // Groups indented under their charge.
                        for g in l.groups.iter().flatten() {
                            let q = g
                                .quantity
                                .map(|q| group_thousands(&format_normalized(q)))
                                .unwrap_or_default();
                            let name =
                                format!("  {}", if g.group.is_empty() { "\"\"" } else { &g.group });
                            let _ = writeln!(
                                out,
                                "  {:<width$}  {:<10}  {:>12}  {:>14}",
                                name,
                                "",
                                q,
                                amount(g.amount)
                            );
                        }
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
        out
    }
}

impl ContractStatements {
    /// The CSV rows of these statements, without the header.
    fn csv_rows(&self) -> String {
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        for st in &self.statements {
            let (start, end) = (st.period.start.to_string(), st.period.end.to_string());
            for l in &st.lines {
                // A grouped charge gives one row per group instead of its
                // line's row, or one row of 0 with no group: the amount
                // column still sums to the totals.
                let rows: Vec<(Option<Decimal>, Decimal, &str)> = match &l.groups {
                    None => vec![(l.quantity, l.amount, "")],
                    Some(groups) if groups.is_empty() => {
                        vec![(l.quantity, Decimal::ZERO, "")]
                    }
                    Some(groups) => groups
                        .iter()
                        .map(|g| (g.quantity, g.amount, g.group.as_str()))
                        .collect(),
                };
                for (quantity, amount, group) in rows {
                    let quantity = quantity.map(format_normalized).unwrap_or_default();
                    // Writing to a Vec cannot fail.
                    let _ = w.write_record([
                        self.contract.as_str(),
                        &start,
                        &end,
                        &l.charge,
                        &l.kind,
                        &quantity,
                        &self.amount(amount),
                        group,
                    ]);
                }
            }
        }
        String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
    }
}

/// Writes a run's output as its items arrive, in the spec's shapes: one
/// CSV header, `{ "contracts": [...] }` around several JSON documents (or
/// one document alone), tables one after another.
///
/// # Example
/// ```
/// use outcome_billing::report::{RunFormat, RunWriter};
/// let mut out = Vec::new();
/// let mut writer = RunWriter::new(&mut out, RunFormat::Json, true);
/// writer.start()?;
/// writer.item("{\n  \"contract\": \"a\",\n  \"error\": \"x\"\n}")?;
/// writer.finish()?;
/// assert!(String::from_utf8(out).unwrap().starts_with("{\n  \"contracts\": [\n    {"));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct RunWriter<W: std::io::Write> {
    out: W,
    format: RunFormat,
    several: bool,
    written: usize,
}

impl<W: std::io::Write> RunWriter<W> {
    /// A writer of `format` to `out`; `several` wraps JSON documents in
    /// `contracts` (a run of several files, or a folder).
    pub fn new(out: W, format: RunFormat, several: bool) -> RunWriter<W> {
        RunWriter {
            out,
            format,
            several,
            written: 0,
        }
    }

    /// Writes what comes before the first item.
    ///
    /// # Errors
    /// The writer's.
    pub fn start(&mut self) -> std::io::Result<()> {
        match self.format {
            RunFormat::Csv => self.out.write_all(CSV_HEADER.as_bytes()),
            RunFormat::Json if self.several => self.out.write_all(b"{\n  \"contracts\": ["),
            _ => Ok(()),
        }
    }

    /// Writes one item's text, as [`RunItem::render`] gives it.
    ///
    /// # Errors
    /// The writer's.
    pub fn item(&mut self, text: &str) -> std::io::Result<()> {
        match self.format {
            RunFormat::Csv => self.out.write_all(text.as_bytes())?,
            RunFormat::Table => {
                if self.written > 0 {
                    self.out.write_all(b"\n")?;
                }
                self.out.write_all(text.as_bytes())?;
            }
            RunFormat::Json if self.several => {
                self.out
                    .write_all(if self.written > 0 { b",\n" } else { b"\n" })?;
                for (i, line) in text.split('\n').enumerate() {
                    if i > 0 {
                        self.out.write_all(b"\n")?;
                    }
                    self.out.write_all(b"    ")?;
                    self.out.write_all(line.as_bytes())?;
                }
            }
            RunFormat::Json => {
                self.out.write_all(text.as_bytes())?;
                self.out.write_all(b"\n")?;
            }
        }
        self.written += 1;
        Ok(())
    }

    /// Writes what follows the last item, and flushes.
    ///
    /// # Errors
    /// The writer's.
    pub fn finish(&mut self) -> std::io::Result<()> {
        if self.format == RunFormat::Json && self.several {
            let end: &[u8] = if self.written > 0 {
                b"\n  ]\n}\n"
            } else {
                b"]\n}\n"
            };
            self.out.write_all(end)?;
        }
        self.out.flush()
    }
}

/// The JSON of a run: one contract's document alone, or
/// `{ "contracts": [...] }` when `several` (items in the order given).
///
/// # Errors
/// When a term total overflows.
pub fn run_json(items: &[RunItem], several: bool) -> Result<String> {
    run_text(items, RunFormat::Json, several || items.len() != 1)
}

/// The CSV export of a run: one header, one row per line; failed contracts
/// have no rows.
pub fn run_csv(items: &[RunItem]) -> String {
    // Only JSON rendering can fail.
    run_text(items, RunFormat::Csv, true).unwrap_or_default()
}

/// A table for people: each contract's statements with their lines and
/// totals, amounts grouped by thousands. Its layout may change; use JSON or
/// CSV in programs.
pub fn run_table(items: &[RunItem]) -> String {
    // Only JSON rendering can fail.
    run_text(items, RunFormat::Table, true).unwrap_or_default()
}

fn run_text(items: &[RunItem], format: RunFormat, several: bool) -> Result<String> {
    let mut out = Vec::new();
    let mut writer = RunWriter::new(&mut out, format, several);
    // Writing to a Vec cannot fail.
    let _ = writer.start();
    for item in items {
        let _ = writer.item(&item.render(format)?);
    }
    let _ = writer.finish();
    Ok(String::from_utf8(out).unwrap_or_default())
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
