//! Worked examples from public pricing and contract documents, as data.
//!
//! Each `tests/worked/NAME.toml` is a contract whose first comment lines name
//! the public document it reproduces; `NAME.csv` is its metric data and
//! `NAME.expect.csv` the statement lines computed by hand from that
//! document's rules. The contract carries the settlement instant in a
//! comment line `# as-of: T`.
//!
//! One test runs the built `outcome` binary on every example and reports
//! every failure together: the CSV output must equal the expected file byte
//! for byte, and the JSON output must parse and carry a `total` equal to the
//! sum of the CSV amounts.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use rust_decimal::Decimal;

/// Fewest examples the set must hold.
const EXAMPLES_MIN: usize = 37;

fn worked_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/worked")
}

/// One example's files and the facts read from its contract's comments.
struct Example {
    name: String,
    contract: PathBuf,
    metrics: PathBuf,
    expect: PathBuf,
    as_of: String,
    /// The first comment line: the document the example reproduces.
    source: String,
}

fn examples() -> Result<Vec<Example>, String> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(worked_dir()).map_err(|e| format!("tests/worked: {e}"))?;
    let mut contracts: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    contracts.sort();
    for contract in contracts {
        let name = contract
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let text = std::fs::read_to_string(&contract)
            .map_err(|e| format!("{}: {e}", contract.display()))?;
        let as_of = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix('#'))
            .find_map(|l| l.trim().strip_prefix("as-of:"))
            .map(|t| t.trim().to_string())
            .ok_or_else(|| format!("{name}: no `# as-of: T` comment line"))?;
        let source = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix('#'))
            .map(|l| l.trim().to_string())
            .ok_or_else(|| format!("{name}: the first line must be a comment naming the source"))?;
        let dir = worked_dir();
        out.push(Example {
            metrics: dir.join(format!("{name}.csv")),
            expect: dir.join(format!("{name}.expect.csv")),
            name,
            contract,
            as_of,
            source,
        });
    }
    Ok(out)
}

/// Runs `outcome settle` on one example in one format: stdout, or a
/// description of the failure.
fn settle(example: &Example, format: &str) -> Result<String, String> {
    let output = Command::new(env!("CARGO_BIN_EXE_outcome"))
        .arg("settle")
        .arg(&example.contract)
        .arg("--metrics")
        .arg(&example.metrics)
        .arg("--as-of")
        .arg(&example.as_of)
        .arg("--format")
        .arg(format)
        .output()
        .map_err(|e| format!("cannot run outcome: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        return Err(format!(
            "`--format {format}` exited with {}; stderr:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(stdout)
}

/// A line-by-line diff good enough to read: lines only on one side are
/// marked `-` (expected) and `+` (program), equal lines are left out.
fn diff(expected: &str, actual: &str) -> String {
    let exp: Vec<&str> = expected.lines().collect();
    let act: Vec<&str> = actual.lines().collect();
    // Longest common subsequence table; the files are small.
    let mut lcs = vec![vec![0usize; act.len() + 1]; exp.len() + 1];
    for i in (0..exp.len()).rev() {
        for j in (0..act.len()).rev() {
            lcs[i][j] = if exp[i] == act[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < exp.len() || j < act.len() {
        if i < exp.len() && j < act.len() && exp[i] == act[j] {
            i += 1;
            j += 1;
        } else if j < act.len() && (i == exp.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            let _ = writeln!(out, "    + {}", act[j]);
            j += 1;
        } else {
            let _ = writeln!(out, "    - {}", exp[i]);
            i += 1;
        }
    }
    out
}

/// Sum of the `amount` column of a settle CSV document.
fn csv_total(text: &str) -> Result<Decimal, String> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    if header.last() != Some(&"group") || header.iter().rev().nth(1) != Some(&"amount") {
        return Err("amount and group are not the last columns".into());
    }
    let mut total = Decimal::ZERO;
    for line in lines.filter(|l| !l.is_empty()) {
        // Amounts are next to last and never quoted; the last column is a
        // group value, which no example writes with a comma or a quote.
        let field = line.rsplit(',').nth(1).unwrap_or_default();
        let amount: Decimal = field
            .parse()
            .map_err(|e| format!("amount {field:?}: {e}"))?;
        total = total.checked_add(amount).ok_or("amount sum overflows")?;
    }
    Ok(total)
}

fn check(example: &Example) -> Vec<String> {
    let mut problems = Vec::new();
    let expected = match std::fs::read_to_string(&example.expect) {
        Ok(t) => t,
        Err(e) => return vec![format!("{}: {e}", example.expect.display())],
    };
    if !example.metrics.exists() {
        return vec![format!("{} is missing", example.metrics.display())];
    }
    match settle(example, "csv") {
        Err(e) => problems.push(e),
        Ok(actual) if actual != expected => problems.push(format!(
            "CSV differs from {}:\n{}",
            file_name(&example.expect),
            diff(&expected, &actual)
        )),
        Ok(_) => {}
    }
    match settle(example, "json") {
        Err(e) => problems.push(e),
        Ok(json) => match serde_json::from_str::<serde_json::Value>(&json) {
            Err(e) => problems.push(format!("`--format json` does not parse: {e}")),
            Ok(doc) => {
                let total = doc
                    .get("total")
                    .and_then(|t| t.as_str())
                    .map(str::parse::<Decimal>);
                match (total, csv_total(&expected)) {
                    (Some(Ok(total)), Ok(sum)) if total == sum => {}
                    (Some(Ok(total)), Ok(sum)) => problems.push(format!(
                        "JSON total {total} is not the sum of the expected CSV amounts {sum}"
                    )),
                    (_, Err(e)) => problems.push(format!("{}: {e}", file_name(&example.expect))),
                    _ => problems.push("JSON has no decimal-string `total`".into()),
                }
            }
        },
    }
    problems
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[test]
fn every_worked_example_settles_as_computed_by_hand() {
    // Proves the program reproduces, line for line, the hand computations of
    // every worked example taken from a public document, and that its JSON
    // total agrees with its CSV lines.
    let examples = examples().unwrap_or_else(|e| panic!("{e}"));
    let mut report = String::new();
    let mut failed = 0;
    for example in &examples {
        let problems = check(example);
        if !problems.is_empty() {
            failed += 1;
            let _ = writeln!(report, "\n== {} ({})", example.name, example.source);
            for p in problems {
                let _ = writeln!(report, "  {}", p.trim_end().replace('\n', "\n  "));
            }
        }
    }
    assert!(
        failed == 0,
        "{failed} of {} worked examples failed:{report}",
        examples.len()
    );
}

#[test]
fn there_are_enough_worked_examples() {
    // Proves the worked-example set keeps at least its promised size.
    let examples = examples().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        examples.len() >= EXAMPLES_MIN,
        "only {} worked examples, want at least {EXAMPLES_MIN}",
        examples.len()
    );
}
