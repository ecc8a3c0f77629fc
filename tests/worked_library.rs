//! The worked examples of `tests/worked/` through the library rather than
//! the binary: for every `NAME.toml`, `CompiledContract::from_path`, a
//! `CsvSource` over `NAME.csv` and `settle_due` at the contract's
//! `# as-of: T` instant (with `SettleOptions` reading rows known at `T`, as
//! `outcome settle --as-of T` does). Every statement line's period, charge,
//! kind, quantity and amount must equal the row of `NAME.expect.csv` in the
//! same position (amounts and quantities compared as decimals), there must
//! be as many lines as rows, and each statement's total must be the sum of
//! its lines. A grouped charge's line stands for one row per group (its
//! groups in order, each with its group value, quantity and amount; one row
//! of 0 with an empty group when it has none), as in the CSV export, and
//! its amount must be the sum of its groups'. Every mismatch of every
//! example is reported together.
//!
//! To add a case, add a worked example (`NAME.toml` with its `# as-of:`
//! line, `NAME.csv`, `NAME.expect.csv`) to `tests/worked/`: it is
//! discovered here and by `tests/worked_examples.rs`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use outcome_billing::metric::CsvSource;
use outcome_billing::{CompiledContract, MetricSource, SettleOptions, Statement};

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use rust_decimal::Decimal;

/// Fewest examples the folder must hold.
const EXAMPLES_MIN: usize = 37;

fn worked_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/worked")
}

fn contracts() -> Vec<PathBuf> {
    let dir = worked_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

/// The `# as-of: T` comment of a contract.
fn as_of_comment(contract: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(contract).map_err(|e| e.to_string())?;
    text.lines()
        .filter_map(|l| l.trim().strip_prefix('#'))
        .find_map(|l| l.trim().strip_prefix("as-of:"))
        .map(|t| t.trim().to_string())
        .ok_or_else(|| "no `# as-of: T` comment line".to_string())
}

/// `text` as the command line reads `--as-of`: RFC 3339, or a date meaning
/// local midnight in `tz` (a midnight the zone skips: the next whole hour
/// that exists).
fn instant(text: &str, tz: chrono_tz::Tz) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let date =
        NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|e| format!("as-of {text:?}: {e}"))?;
    (0..4)
        .find_map(|h| {
            let local = date.and_hms_opt(h, 0, 0)?;
            tz.from_local_datetime(&local).earliest()
        })
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| format!("as-of {text:?}: no local midnight in {tz}"))
}

/// The metric source of an example (kept in one place: `CsvSource` may move).
fn open_metrics(path: &Path) -> Result<Box<dyn MetricSource>, String> {
    CsvSource::open(path)
        .map(|s| Box::new(s) as Box<dyn MetricSource>)
        .map_err(|e| e.to_string())
}

/// One row of an `expect.csv`: what a statement line must be.
#[derive(Debug)]
struct Row {
    period_start: String,
    period_end: String,
    charge: String,
    kind: String,
    quantity: Option<Decimal>,
    amount: Decimal,
    group: String,
}

fn expected_rows(path: &Path) -> Result<Vec<Row>, String> {
    let mut reader = csv::Reader::from_path(path).map_err(|e| e.to_string())?;
    let header = reader.headers().map_err(|e| e.to_string())?.clone();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| format!("no column {name} in the header {header:?}"))
    };
    let (start, end, charge, kind, quantity, amount, group) = (
        col("period_start")?,
        col("period_end")?,
        col("charge")?,
        col("kind")?,
        col("quantity")?,
        col("amount")?,
        col("group")?,
    );
    let decimal = |text: &str, line: u64| {
        text.parse::<Decimal>()
            .map_err(|e| format!("line {line}: {text:?}: {e}"))
    };
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| e.to_string())?;
        let line = i as u64 + 2;
        let field = |k: usize| record.get(k).unwrap_or_default();
        rows.push(Row {
            period_start: field(start).to_string(),
            period_end: field(end).to_string(),
            charge: field(charge).to_string(),
            kind: field(kind).to_string(),
            quantity: match field(quantity) {
                "" => None,
                q => Some(decimal(q, line)?),
            },
            amount: decimal(field(amount), line)?,
            group: field(group).to_string(),
        });
    }
    Ok(rows)
}

/// Settles one example through the library.
fn settle(contract: &Path) -> Result<Vec<Statement>, String> {
    let compiled = CompiledContract::from_path(contract).map_err(|e| e.to_string())?;
    let source = open_metrics(&contract.with_extension("csv"))?;
    let at = instant(&as_of_comment(contract)?, compiled.contract().timezone)?;
    compiled
        .settle_due(source.as_ref(), at, &SettleOptions::default().as_of(at))
        .map_err(|e| e.to_string())
}

fn check(contract: &Path) -> Vec<String> {
    let name = contract
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let expect = worked_dir().join(format!("{name}.expect.csv"));
    let rows = match expected_rows(&expect) {
        Ok(r) => r,
        Err(e) => return vec![format!("{name}.expect.csv: {e}")],
    };
    let statements = match settle(contract) {
        Ok(s) => s,
        Err(e) => return vec![format!("does not settle: {e}")],
    };
    let mut problems = Vec::new();
    let mut n = 0;
    for s in &statements {
        let (start, end) = (s.period.start.to_string(), s.period.end.to_string());
        let mut sum = Decimal::ZERO;
        for line in &s.lines {
            sum = match sum.checked_add(line.amount) {
                Some(v) => v,
                None => {
                    problems.push(format!(
                        "statement {start}..{end}: the sum of lines overflows"
                    ));
                    break;
                }
            };
            // The rows this line stands for, as the CSV export prints them.
            let parts: Vec<(Option<Decimal>, Decimal, &str)> = match &line.groups {
                None => vec![(line.quantity, line.amount, "")],
                Some(groups) if groups.is_empty() => vec![(line.quantity, Decimal::ZERO, "")],
                Some(groups) => groups
                    .iter()
                    .map(|g| (g.quantity, g.amount, g.group.as_str()))
                    .collect(),
            };
            if let Some(groups) = &line.groups {
                let group_sum = groups
                    .iter()
                    .try_fold(Decimal::ZERO, |acc, g| acc.checked_add(g.amount));
                if group_sum != Some(line.amount) {
                    problems.push(format!(
                        "statement {start}..{end}: {} is {}, not the sum of its groups {group_sum:?}",
                        line.charge, line.amount
                    ));
                }
            }
            for (quantity, amount, group) in parts {
                let got = format!(
                    "{start},{end},{},{},{},{amount},{group}",
                    line.charge,
                    line.kind,
                    quantity
                        .map(|q| q.normalize().to_string())
                        .unwrap_or_default(),
                );
                match rows.get(n) {
                    None => problems.push(format!("line {n}: extra {got}")),
                    Some(row) => {
                        let same = row.period_start == start
                            && row.period_end == end
                            && row.charge == line.charge
                            && row.kind == line.kind
                            && row.quantity == quantity
                            && row.amount == amount
                            && row.group == group;
                        if !same {
                            problems.push(format!(
                                "line {n}: got {got}, want {},{},{},{},{},{},{}",
                                row.period_start,
                                row.period_end,
                                row.charge,
                                row.kind,
                                row.quantity
                                    .map(|q| q.normalize().to_string())
                                    .unwrap_or_default(),
                                row.amount,
                                row.group
                            ));
                        }
                    }
                }
                n += 1;
            }
        }
        if s.total != sum {
            problems.push(format!(
                "statement {start}..{end}: total {} is not the sum of its lines {sum}",
                s.total
            ));
        }
    }
    for row in rows.iter().skip(n) {
        problems.push(format!(
            "missing line: {},{},{},{},{},{}",
            row.period_start, row.period_end, row.charge, row.kind, row.amount, row.group
        ));
    }
    problems
}

#[test]
fn every_worked_example_settles_as_computed_by_hand_through_the_library() {
    // Proves the library (not only the binary) reproduces every worked
    // example's hand-computed lines, and that statement totals are the sums
    // of their lines.
    let contracts = contracts();
    let mut report = String::new();
    let mut failed = 0;
    for contract in &contracts {
        let problems = check(contract);
        if !problems.is_empty() {
            failed += 1;
            let name = contract.file_stem().unwrap_or_default().to_string_lossy();
            let _ = writeln!(report, "\n== {name}");
            for p in problems {
                let _ = writeln!(report, "  {}", p.trim_end().replace('\n', "\n  "));
            }
        }
    }
    assert!(
        failed == 0,
        "{failed} of {} worked examples failed through the library:{report}",
        contracts.len()
    );
}

#[test]
fn there_are_enough_worked_examples_for_the_library() {
    // Proves the worked folder is found and keeps its promised size.
    let n = contracts().len();
    assert!(
        n >= EXAMPLES_MIN,
        "only {n} worked examples, want at least {EXAMPLES_MIN}"
    );
}
