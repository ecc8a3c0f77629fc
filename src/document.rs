//! The statement document: what `settle --format json` prints and what
//! `reconcile` prints and reads back, as one set of types.
//!
//! A contract's document is a [`StatementDocument`]; a run of several
//! contracts is a [`RunDocument`], `{ "contracts": [...] }`, whose items are
//! documents or failures ([`RunEntry`]). A reconcile document is a statement
//! document with `"adjustments"`. Every amount is a JSON string carrying the
//! contract's scale (`"2050000.00"`, an [`Amount`]), written from and read
//! into an exact decimal, never a binary float; quantities are strings
//! without trailing zeros; dates are `YYYY-MM-DD`.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::error::{Error, Result};
use crate::money::{Currency, RoundingMode, format_scaled, parse_decimal, round_dp};
use crate::period::Period;
use crate::settle::{Line, Statement, Step};
use crate::text::{date_text, quantity_text};

/// One contract's statement document, as `settle --format json` prints it
/// (and `reconcile`, with `adjustments`).
///
/// # Example
/// ```
/// use outcome_billing::{CompiledContract, SettleOptions};
/// use outcome_billing::metric::CsvSource;
/// use outcome_billing::report::{ContractStatements, StatementDocument};
/// let c = CompiledContract::from_path("examples/support-agent/contract.toml")?;
/// let source = CsvSource::open("examples/support-agent/metrics.csv")?;
/// let statements = c.settle_through(&source, 0, &SettleOptions::default())?;
/// let settled = ContractStatements {
///     contract: c.contract().id.clone(),
///     currency: c.currency(),
///     rounding: c.rounding(),
///     statements,
/// };
/// let text = serde_json::to_string_pretty(&settled.to_document()?).unwrap();
/// let doc: StatementDocument = serde_json::from_str(&text).unwrap();
/// assert_eq!(doc.contract, c.contract().id);
/// assert_eq!(doc.to_statements(c.periods())?, settled.statements);
/// # Ok::<(), outcome_billing::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementDocument {
    /// The contract id.
    pub contract: String,
    /// The contract's currency, as its code.
    pub currency: Currency,
    /// The statements, in period order.
    pub statements: Vec<StatementEntry>,
    /// The sum of the statements' totals.
    pub total: Amount,
    /// A reconcile document's adjustments; `None` (and absent from the
    /// JSON) in a settle document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adjustments: Option<Vec<AdjustmentEntry>>,
}

impl StatementDocument {
    /// The statements again, each with its period looked up in `periods`
    /// (a compiled contract's [`periods`](crate::CompiledContract::periods)).
    ///
    /// # Errors
    /// A usage error naming the first statement whose period is not in
    /// `periods`.
    pub fn to_statements(&self, periods: &[Period]) -> Result<Vec<Statement>> {
        self.statements
            .iter()
            .map(|s| {
                s.to_statement(periods).ok_or_else(|| {
                    Error::usage(format!(
                        "period {}..{} is not a period of contract {}",
                        s.period.start, s.period.end, self.contract
                    ))
                })
            })
            .collect()
    }
}

/// One statement of a [`StatementDocument`]: `{ period, lines, total }`.
///
/// A [`Statement`] serializes in this shape, with more of its period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementEntry {
    /// Its number in the ledger, for a statement read back from one
    /// (`outcome issue`); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// When it was issued, for a statement read back from a ledger; absent
    /// otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<DateTime<Utc>>,
    /// The period's dates.
    pub period: PeriodEntry,
    /// The lines.
    #[serde(default)]
    pub lines: Vec<LineEntry>,
    /// The sum of the lines.
    pub total: Amount,
}

/// One line of a [`StatementEntry`]: `{ charge, kind, quantity (when there
/// is one), amount, trace }`.
///
/// A [`Line`] serializes in this shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineEntry {
    /// The charge's id, or the limit's.
    pub charge: String,
    /// The charge kind, or `cap`, `floor`, `credit`.
    pub kind: String,
    /// The quantity, for `unit`, `tiered` and `package`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "quantity_text"
    )]
    pub quantity: Option<Decimal>,
    /// The amount.
    pub amount: Amount,
    /// Inputs and steps (none when absent).
    #[serde(default)]
    pub trace: Vec<Step>,
    /// A grouped charge's groups, in byte order of their values (none for
    /// other lines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<GroupEntry>>,
}

/// One group of a grouped charge's [`LineEntry`]: `{ group, quantity (when
/// there is one), amount, trace }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupEntry {
    /// The value of the dimension.
    pub group: String,
    /// The quantity, for `unit`, `tiered` and `package`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "quantity_text"
    )]
    pub quantity: Option<Decimal>,
    /// The amount.
    pub amount: Amount,
    /// Inputs and steps (none when absent).
    #[serde(default)]
    pub trace: Vec<Step>,
}

impl LineEntry {
    /// `line`'s entry, its amount at `scale` places.
    pub fn new(line: &Line, scale: u32) -> LineEntry {
        LineEntry {
            charge: line.charge.clone(),
            kind: line.kind.clone(),
            quantity: line.quantity,
            amount: Amount::new(line.amount, scale),
            trace: line.trace.clone(),
            groups: line.groups.as_ref().map(|groups| {
                groups
                    .iter()
                    .map(|g| GroupEntry {
                        group: g.group.clone(),
                        quantity: g.quantity,
                        amount: Amount::new(g.amount, scale),
                        trace: g.trace.clone(),
                    })
                    .collect()
            }),
        }
    }

    /// The line again.
    pub fn to_line(&self) -> Line {
        Line {
            charge: self.charge.clone(),
            kind: self.kind.clone(),
            quantity: self.quantity,
            amount: self.amount.value(),
            trace: self.trace.clone(),
            groups: self.groups.as_ref().map(|groups| {
                groups
                    .iter()
                    .map(|g| crate::settle::GroupLine {
                        group: g.group.clone(),
                        quantity: g.quantity,
                        amount: g.amount.value(),
                        trace: g.trace.clone(),
                    })
                    .collect()
            }),
        }
    }
}

/// An amount as a document prints it: a decimal string with exactly the
/// contract's places (`"2050000.00"`, `"12345.0000"`), however many digits
/// that takes, and read back as exactly that decimal and those places,
/// never through a float.
///
/// # Example
/// ```
/// use outcome_billing::report::Amount;
/// let a = Amount::new("3".parse().unwrap(), 2);
/// assert_eq!(serde_json::to_string(&a).unwrap(), r#""3.00""#);
/// assert_eq!(serde_json::from_str::<Amount>(r#""3.00""#).unwrap(), a);
/// assert!(serde_json::from_str::<Amount>("3.00").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Amount {
    value: Decimal,
    scale: u32,
}

impl Amount {
    /// `value` at `scale` places: rounded half-even when it has more,
    /// printed with trailing zeros when it has fewer.
    pub fn new(value: Decimal, scale: u32) -> Amount {
        Amount {
            value: scaled(value, scale),
            scale,
        }
    }

    /// The value.
    pub fn value(&self) -> Decimal {
        self.value
    }

    /// The places it prints with.
    pub fn scale(&self) -> u32 {
        self.scale
    }
}

impl std::fmt::Display for Amount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&format_scaled(self.value, self.scale))
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Amount, D::Error> {
        struct Text;
        impl Visitor<'_> for Text {
            type Value = Amount;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a decimal string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Amount, E> {
                let value = parse_decimal(v).map_err(E::custom)?;
                let places = v.split_once('.').map_or(0, |(_, f)| f.len());
                Ok(Amount {
                    value,
                    scale: u32::try_from(places).unwrap_or(u32::MAX),
                })
            }
        }
        d.deserialize_str(Text)
    }
}

impl StatementEntry {
    /// `statement`'s entry, amounts at `scale` places.
    pub fn new(statement: &Statement, scale: u32) -> StatementEntry {
        StatementEntry {
            id: None,
            issued_at: None,
            period: PeriodEntry::of(&statement.period),
            lines: statement
                .lines
                .iter()
                .map(|l| LineEntry::new(l, scale))
                .collect(),
            total: Amount::new(statement.total, scale),
        }
    }

    /// The statement again, its period the one of `periods` with the same
    /// start and end; `None` when there is none.
    pub fn to_statement(&self, periods: &[Period]) -> Option<Statement> {
        let period = periods
            .iter()
            .find(|p| p.start == self.period.start && p.end == self.period.end)?;
        Some(Statement {
            period: period.clone(),
            lines: self.lines.iter().map(LineEntry::to_line).collect(),
            total: self.total.value(),
        })
    }
}

/// A period's dates in a document: `{ "start": ..., "end": ... }`, the end
/// exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PeriodEntry {
    /// First local date.
    #[serde(with = "date_text")]
    pub start: NaiveDate,
    /// Local date after the last.
    #[serde(with = "date_text")]
    pub end: NaiveDate,
}

impl PeriodEntry {
    /// The dates of `period`.
    pub fn of(period: &Period) -> PeriodEntry {
        PeriodEntry {
            start: period.start,
            end: period.end,
        }
    }
}

/// One adjustment of a reconcile document, amounts at the contract's scale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdjustmentEntry {
    /// The period's dates.
    pub period: PeriodEntry,
    /// The charge or limit.
    pub charge: String,
    /// Its kind.
    pub kind: String,
    /// What was issued.
    pub issued: Amount,
    /// What settles now.
    pub settled: Amount,
    /// `settled - issued`.
    pub amount: Amount,
}

/// The document of a run of several contracts: `{ "contracts": [...] }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunDocument {
    /// One item per contract, in the run's order.
    pub contracts: Vec<RunEntry>,
}

/// One contract of a [`RunDocument`]: its statement document, or
/// `{ "contract": ID, "error": SENTENCE }` when it failed.
///
/// An item with an `"error"` reads as [`RunEntry::Failed`]; any other as
/// [`RunEntry::Settled`], whose errors name the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum RunEntry {
    /// Settled.
    Settled(StatementDocument),
    /// Failed.
    Failed {
        /// The id, or the file path when the id could not be read.
        contract: String,
        /// What went wrong.
        error: String,
    },
}

impl<'de> Deserialize<'de> for RunEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<RunEntry, D::Error> {
        #[derive(Deserialize)]
        struct Failed {
            contract: String,
            error: String,
        }
        let value = serde_json::Value::deserialize(d)?;
        if value.get("error").is_some() {
            let Failed { contract, error } =
                serde_json::from_value(value).map_err(de::Error::custom)?;
            return Ok(RunEntry::Failed { contract, error });
        }
        serde_path_to_error::deserialize(value)
            .map(RunEntry::Settled)
            .map_err(|e| de::Error::custom(located("", &e)))
    }
}

/// `e`'s message after its path inside a document at `at` (empty at the
/// top), as `statements[2].lines[0].amount: malformed decimal ...`; a
/// missing field reads `missing "amount"`, or `has no "statements"` at the
/// top.
pub(crate) fn located(at: &str, e: &serde_path_to_error::Error<serde_json::Error>) -> String {
    let path = e.path().to_string();
    let path = match (at, path.as_str()) {
        (at, ".") => at.to_string(),
        ("", path) => path.to_string(),
        (at, path) => format!("{at}.{path}"),
    };
    let inner = e.inner().to_string();
    let missing = inner
        .strip_prefix("missing field `")
        .and_then(|f| f.strip_suffix('`'));
    match (missing, path.is_empty()) {
        (Some(field), true) => format!("has no {field:?}"),
        (Some(field), false) => format!("{path}: missing {field:?}"),
        (None, true) => inner,
        (None, false) => format!("{path}: {inner}"),
    }
}

/// `value` at `scale` places (as many as a decimal's coefficient can hold),
/// rounded half-even when it has more; never a negative zero.
fn scaled(value: Decimal, scale: u32) -> Decimal {
    round_dp(value, scale, RoundingMode::HalfEven)
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::CompiledContract;
    use crate::period::Stamp;
    use crate::reconcile::{issued_lines, reconcile};
    use crate::report::{RunItem, run_json};
    use crate::run::{BillingRun, RunOptions};

    /// Every worked example: its compiled contract, data file and as-of.
    fn worked() -> Vec<(CompiledContract, PathBuf, String)> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/worked");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        assert!(!files.is_empty());
        files
            .into_iter()
            .map(|toml| {
                let text = std::fs::read_to_string(&toml).unwrap();
                let as_of = text
                    .lines()
                    .filter_map(|l| l.trim().strip_prefix('#'))
                    .find_map(|l| l.trim().strip_prefix("as-of:"))
                    .map(|t| t.trim().to_string())
                    .unwrap();
                let c = CompiledContract::from_path(&toml).unwrap();
                (c, toml.with_extension("csv"), as_of)
            })
            .collect()
    }

    fn settle(c: &CompiledContract, data: &Path, as_of: &str) -> RunItem {
        let run = BillingRun::new(vec![c.clone()]).unwrap();
        let now = Stamp::parse("2100-01-01").unwrap().instant(chrono_tz::UTC);
        let options = RunOptions::new(now).as_of(Stamp::parse(as_of).unwrap());
        run.settle_csv(data, &options).remove(0)
    }

    #[test]
    fn worked_examples_read_back_as_the_statements_settled() {
        // Settle, print as `settle --format json` does, read the text back
        // through the document type: the same statements, and the type
        // prints the same text again.
        let mut items = Vec::new();
        for (c, data, as_of) in worked() {
            let item = settle(&c, &data, &as_of);
            let RunItem::Settled(settled) = &item else {
                panic!("{}: {item:?}", c.contract().id)
            };
            assert!(!settled.statements.is_empty(), "{}", c.contract().id);
            let text = run_json(std::slice::from_ref(&item), false).unwrap();
            let doc: StatementDocument = serde_json::from_str(&text).unwrap();
            assert_eq!(doc, settled.to_document().unwrap());
            assert_eq!(doc.contract, settled.contract);
            assert_eq!(doc.total.value(), settled.total().unwrap());
            assert_eq!(doc.total.scale(), settled.rounding.scale);
            assert_eq!(doc.adjustments, None);
            assert_eq!(
                doc.to_statements(c.periods()).unwrap(),
                settled.statements,
                "{}",
                c.contract().id
            );
            assert_eq!(serde_json::to_string_pretty(&doc).unwrap() + "\n", text);
            items.push(item);
        }
        items.push(RunItem::Failed {
            contract: "broken".into(),
            error: Error::usage("it broke"),
        });
        // A run: `{ "contracts": [...] }` with a failed item.
        let text = run_json(&items, true).unwrap();
        let run: RunDocument = serde_json::from_str(&text).unwrap();
        assert_eq!(run.contracts.len(), items.len());
        for (entry, item) in run.contracts.iter().zip(&items) {
            match (entry, item) {
                (RunEntry::Settled(doc), RunItem::Settled(s)) => {
                    assert_eq!(doc, &s.to_document().unwrap());
                }
                (RunEntry::Failed { contract, error }, RunItem::Failed { .. }) => {
                    assert_eq!(contract, "broken");
                    assert_eq!(error, "it broke");
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(serde_json::to_string_pretty(&run).unwrap() + "\n", text);
    }

    #[test]
    fn a_reconcile_document_reads_back_with_its_adjustments() {
        let (c, data, as_of) = worked().remove(0);
        let RunItem::Settled(settled) = settle(&c, &data, &as_of) else {
            panic!("settled")
        };
        let source = crate::metric::CsvSource::open(&data).unwrap();
        let mut issued = issued_lines(
            "issued.json",
            &serde_json::to_string(&settled.to_document().unwrap()).unwrap(),
            &c.contract().id,
        )
        .unwrap();
        for l in &mut issued {
            l.amount += Decimal::ONE;
        }
        let result = reconcile(&c, &source, &issued, None).unwrap();
        assert!(!result.adjustments.is_empty());
        let doc = result.to_document().unwrap();
        let text = serde_json::to_string_pretty(&doc).unwrap();
        assert_eq!(
            text,
            serde_json::to_string_pretty(&result.to_json().unwrap()).unwrap()
        );
        let back: StatementDocument = serde_json::from_str(&text).unwrap();
        assert_eq!(back, doc);
        let adjustments = back.adjustments.unwrap();
        assert_eq!(adjustments.len(), result.adjustments.len());
        assert_eq!(adjustments[0].amount.value(), result.adjustments[0].amount);
        assert_eq!(
            adjustments[0].period.start,
            result.adjustments[0].period_start
        );
    }

    #[test]
    fn amounts_keep_the_contract_scale_and_never_read_through_a_float() {
        let line: Line = serde_json::from_str(
            r#"{"charge":"a","kind":"unit","quantity":"1.50","amount":"3.10"}"#,
        )
        .unwrap();
        assert_eq!(line.amount.to_string(), "3.10");
        assert_eq!(line.quantity.map(|q| q.to_string()), Some("1.50".into()));
        assert!(line.trace.is_empty());
        // The quantity prints without trailing zeros, the amount at its scale.
        assert_eq!(
            serde_json::to_string(&line).unwrap(),
            r#"{"charge":"a","kind":"unit","quantity":"1.5","amount":"3.10","trace":[]}"#
        );
        // 28 digits survive; numbers are refused.
        let exact: Line = serde_json::from_str(
            r#"{"charge":"a","kind":"k","amount":"0.1000000000000000000000000001"}"#,
        )
        .unwrap();
        assert_eq!(exact.amount.to_string(), "0.1000000000000000000000000001");
        let e = serde_json::from_str::<Line>(r#"{"charge":"a","kind":"k","amount":0.1}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected a decimal string"), "{e}");
        // A document's amounts carry the contract's scale, however many
        // digits that takes, and read back as written.
        for (value, scale, text) in [
            (Decimal::from(3), 2, "3.00"),
            (Decimal::new(-5, 3), 2, "0.00"),
            (Decimal::new(1235, 3), 2, "1.24"),
            (Decimal::MAX, 4, "79228162514264337593543950335.0000"),
            (
                Decimal::from(12345),
                28,
                "12345.0000000000000000000000000000",
            ),
        ] {
            let a = Amount::new(value, scale);
            let json = serde_json::to_string(&a).unwrap();
            assert_eq!(json, format!("\"{text}\""));
            assert_eq!(serde_json::from_str::<Amount>(&json).unwrap(), a);
        }
    }

    #[test]
    fn malformed_documents_name_the_field_at_fault() {
        let (c, data, as_of) = worked().remove(0);
        let item = settle(&c, &data, &as_of);
        let id = c.contract().id.clone();
        let good: serde_json::Value =
            serde_json::from_str(&run_json(std::slice::from_ref(&item), false).unwrap()).unwrap();
        let message = |doc: &serde_json::Value| {
            issued_lines("issued.json", &doc.to_string(), &id)
                .unwrap_err()
                .to_string()
        };
        let mut doc = good.clone();
        doc["statements"][0]["lines"][0]["amount"] = "1e3".into();
        assert!(
            message(&doc).starts_with(
                "issued.json: statements[0].lines[0].amount: malformed decimal \"1e3\""
            ),
            "{}",
            message(&doc)
        );
        let mut doc = good.clone();
        doc["statements"][0]["lines"][0]
            .as_object_mut()
            .unwrap()
            .remove("amount");
        assert_eq!(
            message(&doc),
            "issued.json: statements[0].lines[0]: missing \"amount\""
        );
        let mut doc = good.clone();
        doc["statements"][0]["period"]["end"] = "2015-13-01".into();
        assert_eq!(
            message(&doc),
            "issued.json: statements[0].period.end: \"2015-13-01\" is not a date"
        );
        let mut doc = good.clone();
        doc.as_object_mut().unwrap().remove("statements");
        assert_eq!(message(&doc), "issued.json: has no \"statements\"");
        // In a run, the item's path comes first; other items are not read.
        let mut bad = good.clone();
        bad["statements"][0]["lines"][0]["amount"] = 12.into();
        let run = serde_json::json!({ "contracts": [{ "contract": "x", "statements": 7 }, bad] });
        let m = message(&run);
        assert!(
            m.starts_with(
                "issued.json: contracts[1].statements[0].lines[0].amount: invalid type: "
            ) && m.ends_with("expected a decimal string"),
            "{m}"
        );
        let run = serde_json::json!({ "contracts": [{ "contract": id, "error": "it broke" }] });
        assert_eq!(
            message(&run),
            format!(
                "issued.json: holds no statements of contract {id}: contracts[0] failed: it broke"
            )
        );
        let run = serde_json::json!({ "contracts": [{ "contract": "x", "statements": 7 }, good] });
        assert!(issued_lines("issued.json", &run.to_string(), &id).is_ok());
    }

    #[test]
    fn a_statement_reads_back_equal_and_as_an_entry() {
        let (c, data, as_of) = worked().remove(0);
        let RunItem::Settled(settled) = settle(&c, &data, &as_of) else {
            panic!("settled")
        };
        let s = &settled.statements[0];
        let text = serde_json::to_string(s).unwrap();
        assert_eq!(&serde_json::from_str::<Statement>(&text).unwrap(), s);
        // Read as a document's statement, it is the entry (its amounts are
        // at the contract's scale already).
        let entry: StatementEntry = serde_json::from_str(&text).unwrap();
        assert_eq!(entry, StatementEntry::new(s, settled.rounding.scale));
    }
}
