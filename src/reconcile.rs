//! Reconciliation: settle issued periods again with what is known now, and
//! turn every changed line into an adjustment.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::Value;

use crate::document::{AdjustmentEntry, Amount, PeriodEntry, StatementDocument, located};
use crate::error::{Error, ErrorKind, Location, Result};
use crate::metric::MetricSource;
use crate::money::{checked_sum, format_scaled};
use crate::report::{ContractStatements, to_value};
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
    /// The reconcile document: the settle document of the re-settled
    /// periods with its `adjustments`, amounts at the contract's scale.
    ///
    /// # Errors
    /// When a total overflows.
    pub fn to_document(&self) -> Result<StatementDocument> {
        let mut doc = self.settled.to_document()?;
        let scale = self.settled.rounding.scale;
        doc.adjustments = Some(
            self.adjustments
                .iter()
                .map(|a| AdjustmentEntry {
                    period: PeriodEntry {
                        start: a.period_start,
                        end: a.period_end,
                    },
                    charge: a.charge.clone(),
                    kind: a.kind.clone(),
                    issued: Amount::new(a.issued, scale),
                    settled: Amount::new(a.settled, scale),
                    amount: Amount::new(a.amount, scale),
                })
                .collect(),
        );
        Ok(doc)
    }

    /// The settle document of the re-settled periods plus `"adjustments"`,
    /// as a JSON value: [`Reconciliation::to_document`]'s.
    ///
    /// # Errors
    /// When a total overflows.
    pub fn to_json(&self) -> Result<Value> {
        to_value(&self.to_document()?)
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
/// The contract's document is read as a [`StatementDocument`]; in a run,
/// the other contracts' items are not read.
///
/// # Errors
/// A data error naming `name` when the document is not of that shape (with
/// the path of the field at fault, as `statements[2].lines[0].amount`,
/// after `contracts[K]` in a run), or holds no statement of the contract.
pub fn issued_lines(name: &str, text: &str, contract: &str) -> Result<Vec<IssuedLine>> {
    let bad = |m: String| Error::data(name, m);
    let mut doc: Value =
        serde_json::from_str(text).map_err(|e| bad(format!("not a settle document: {e}")))?;
    // In a run, the contract's item; `at` is its path, for messages.
    let (doc, at) = match doc.get_mut("contracts").and_then(Value::as_array_mut) {
        Some(list) => {
            let k = list
                .iter()
                .position(|d| d.get("contract").and_then(Value::as_str) == Some(contract))
                .ok_or_else(|| bad(format!("holds no statements of contract {contract}")))?;
            (list.swap_remove(k), format!("contracts[{k}]"))
        }
        None => (doc, String::new()),
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
    if let Some(error) = doc.get("error").filter(|_| doc.get("statements").is_none()) {
        let error = error
            .as_str()
            .map_or_else(|| error.to_string(), str::to_string);
        return Err(bad(format!(
            "holds no statements of contract {contract}: {at} failed: {error}"
        )));
    }
    let doc: StatementDocument =
        serde_path_to_error::deserialize(doc).map_err(|e| bad(located(&at, &e)))?;
    Ok(doc
        .statements
        .into_iter()
        .flat_map(|s| {
            let period = s.period;
            s.lines.into_iter().map(move |l| IssuedLine {
                period_start: period.start,
                period_end: period.end,
                charge: l.charge,
                kind: l.kind,
                amount: l.amount.value(),
            })
        })
        .collect())
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
    compare(
        ContractStatements {
            contract: contract.contract().id.clone(),
            currency: contract.currency(),
            rounding: contract.rounding(),
            statements,
        },
        issued,
    )
}

/// The adjustments that take what was `issued` (several lines of one
/// period and charge add up) to the `settled` statements: one per period
/// and line whose amount differs, in the settled statements' order, then
/// the lines found only on the issued side (a line missing on one side
/// counts as 0).
///
/// # Errors
/// An overflow error when a sum of issued amounts, or a difference, does
/// not fit a decimal.
pub(crate) fn compare(
    settled: ContractStatements,
    issued: &[IssuedLine],
) -> Result<Reconciliation> {
    let overflow = || {
        Error::new(
            ErrorKind::Overflow,
            Location::None,
            format!(
                "{}: an issued amount or an adjustment overflows",
                settled.contract
            ),
        )
    };
    // What was issued of a period and a charge: the sum of its lines.
    let issued_of = |start: NaiveDate, charge: &str| -> Result<Decimal> {
        checked_sum(
            issued
                .iter()
                .filter(|l| l.period_start == start && l.charge == charge)
                .map(|l| l.amount)
                .collect::<Vec<_>>(),
        )
        .ok_or_else(overflow)
    };
    let mut adjustments = Vec::new();
    for s in &settled.statements {
        for line in &s.lines {
            let was = issued_of(s.period.start, &line.charge)?;
            if was != line.amount {
                adjustments.push(Adjustment {
                    period_start: s.period.start,
                    period_end: s.period.end,
                    charge: line.charge.clone(),
                    kind: line.kind.clone(),
                    issued: was,
                    settled: line.amount,
                    amount: line.amount.checked_sub(was).ok_or_else(overflow)?,
                });
            }
        }
        // Lines only issued: reversed in full, in the order first issued.
        let mut done: Vec<&str> = Vec::new();
        for l in issued.iter().filter(|l| l.period_start == s.period.start) {
            if done.contains(&l.charge.as_str()) || s.lines.iter().any(|x| x.charge == l.charge) {
                continue;
            }
            done.push(&l.charge);
            let was = issued_of(s.period.start, &l.charge)?;
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
    Ok(Reconciliation {
        settled,
        adjustments,
    })
}
