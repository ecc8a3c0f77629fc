//! Negative cases as data: every folder under `tests/cases/invalid/` is one
//! invalid contract (or invalid metric data, or a bad command line) and the
//! error it must give, checked both through the built `outcome` binary and
//! through the library.
//!
//! A case folder holds one contract file (`contract.toml`, `.json`, `.yaml`
//! or `.yml`), `metrics.csv` when the command is `settle`, and
//! `expect.toml`:
//!
//! ```toml
//! about = "what the case proves"
//! command = "settle"                # validate | settle
//! args = ["--as-of", "2026-04-01"]  # optional, after the contract (and --metrics)
//! exit = 1                          # the exit status: 2 invalid contract or usage, 1 data or settlement
//! stderr = ["metrics.csv:3:3", "malformed decimal \"1.2.3\""]
//! library = false                   # optional: command-line-only case (default true)
//! ```
//!
//! The command line must exit with `exit`, print nothing on stdout, start
//! stderr with `error: ` and contain every `stderr` substring. The library
//! (`CompiledContract::from_path`, then `CsvSource` and `settle_due` at the
//! `--as-of` instant for `settle`) must fail with an error whose `Display`
//! contains the same substrings and whose exit code is `exit`. Locations
//! are written as the file name plus what follows (`contract.toml: charges[0].kind`,
//! `metrics.csv:3:3`), so they match the relative paths the command line is
//! given and the absolute paths the library is given.
//!
//! To add a case, add a folder: it is discovered. Every failing case is
//! reported together, by name. See `tests/cases/README.md`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use outcome_billing::metric::CsvSource;
use outcome_billing::{CompiledContract, Error, ErrorKind, MetricSource, SettleOptions};

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde::Deserialize;

/// Fewest cases the folder must hold (so a moved folder cannot pass empty).
const CASES_MIN: usize = 40;

/// A case's `expect.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    about: String,
    command: String,
    #[serde(default)]
    args: Vec<String>,
    exit: i32,
    stderr: Vec<String>,
    #[serde(default = "yes")]
    library: bool,
}

fn yes() -> bool {
    true
}

/// One case folder, read.
struct Case {
    name: String,
    dir: PathBuf,
    contract: PathBuf,
    metrics: Option<PathBuf>,
    expect: Expect,
}

fn cases_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/cases/invalid")
}

fn read_case(dir: &Path) -> Result<Case, String> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut contracts = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        let file = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        match file {
            "contract.toml" | "contract.json" | "contract.yaml" | "contract.yml" => {
                contracts.push(path.clone())
            }
            "expect.toml" | "metrics.csv" => {}
            other => {
                return Err(format!(
                    "unexpected file {other} (see tests/cases/README.md)"
                ));
            }
        }
    }
    let [contract] = contracts.as_slice() else {
        return Err(format!(
            "want exactly one contract.{{toml,json,yaml,yml}}, found {}",
            contracts.len()
        ));
    };
    let text = std::fs::read_to_string(dir.join("expect.toml"))
        .map_err(|e| format!("expect.toml: {e}"))?;
    let expect: Expect = toml::from_str(&text).map_err(|e| format!("expect.toml: {e}"))?;
    if expect.about.trim().is_empty() {
        return Err("expect.toml: `about` must say what the case proves".into());
    }
    if !matches!(expect.command.as_str(), "validate" | "settle") {
        return Err(format!(
            "expect.toml: command {:?} is not validate or settle",
            expect.command
        ));
    }
    if !matches!(expect.exit, 1 | 2) {
        return Err(format!("expect.toml: exit {} is not 1 or 2", expect.exit));
    }
    if expect.stderr.is_empty() || expect.stderr.iter().any(|s| s.trim().is_empty()) {
        return Err("expect.toml: `stderr` needs non-empty substrings".into());
    }
    let metrics = dir.join("metrics.csv");
    let metrics = metrics.exists().then_some(metrics);
    if (expect.command == "settle") != metrics.is_some() {
        return Err("expect.toml: settle needs metrics.csv, and only settle reads it".into());
    }
    Ok(Case {
        name,
        dir: dir.to_path_buf(),
        contract: contract.clone(),
        metrics,
        expect,
    })
}

fn cases() -> Vec<Result<Case, (String, String)>> {
    let dir = cases_dir();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs.iter()
        .map(|d| {
            read_case(d).map_err(|e| {
                let name = d.file_name().unwrap_or_default().to_string_lossy();
                (name.into_owned(), e)
            })
        })
        .collect()
}

/// The substrings of `needles` that `text` lacks.
fn missing<'a>(text: &str, needles: &'a [String]) -> Vec<&'a str> {
    needles
        .iter()
        .filter(|n| !text.contains(n.as_str()))
        .map(String::as_str)
        .collect()
}

/// Runs the case through the binary: its problems.
fn check_cli(case: &Case) -> Vec<String> {
    let file = |p: &Path| p.file_name().unwrap_or_default().to_os_string();
    let mut command = Command::new(env!("CARGO_BIN_EXE_outcome"));
    command
        .current_dir(&case.dir)
        .arg(&case.expect.command)
        .arg(file(&case.contract));
    if let Some(metrics) = &case.metrics {
        command.arg("--metrics").arg(file(metrics));
    }
    let output = match command.args(&case.expect.args).output() {
        Ok(o) => o,
        Err(e) => return vec![format!("cannot run outcome: {e}")],
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut problems = Vec::new();
    if output.status.code() != Some(case.expect.exit) {
        problems.push(format!(
            "cli: exit {:?}, want {}",
            output.status.code(),
            case.expect.exit
        ));
    }
    if !stdout.is_empty() {
        problems.push(format!("cli: stdout is not empty:\n{stdout}"));
    }
    if !stderr.starts_with("error: ") {
        problems.push("cli: stderr does not start with `error: `".into());
    }
    let lacks = missing(&stderr, &case.expect.stderr);
    if !lacks.is_empty() {
        problems.push(format!("cli: stderr lacks {lacks:?}; stderr:\n{stderr}"));
    }
    problems
}

/// The `--as-of` of a case's arguments, if any.
fn as_of_arg(args: &[String]) -> Option<&str> {
    args.iter()
        .position(|a| a == "--as-of")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

/// `text` as the command line reads `--as-of`: RFC 3339, or a date meaning
/// local midnight in `tz` (a midnight skipped by the zone: the next whole
/// hour that exists, enough for these cases).
fn instant(text: &str, tz: chrono_tz::Tz) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|e| format!("--as-of {text:?}: {e}"))?;
    (0..4)
        .find_map(|h| {
            let local = date.and_hms_opt(h, 0, 0)?;
            tz.from_local_datetime(&local).earliest()
        })
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| format!("--as-of {text:?}: no local midnight in {tz}"))
}

/// The metric source of a case (kept in one place: `CsvSource` may move).
fn open_metrics(path: &Path) -> Result<Box<dyn MetricSource>, Error> {
    Ok(Box::new(CsvSource::open(path)?))
}

/// Loads, compiles and (for `settle`) settles the case through the library:
/// the error, or a description of why there was none.
fn library_error(case: &Case) -> Result<Error, String> {
    let compiled = match CompiledContract::from_path(&case.contract) {
        Ok(c) => c,
        Err(e) => return Ok(e),
    };
    let Some(metrics) = &case.metrics else {
        return Err("lib: the contract loads and compiles".into());
    };
    let source = match open_metrics(metrics) {
        Ok(s) => s,
        Err(e) => return Ok(e),
    };
    let result = match as_of_arg(&case.expect.args) {
        Some(text) => {
            let at = instant(text, compiled.contract().timezone)?;
            let options = SettleOptions::default().as_of(at);
            compiled.settle_due(source.as_ref(), at, &options)
        }
        None => {
            let last = compiled.periods().len().saturating_sub(1);
            compiled.settle_through(source.as_ref(), last, &SettleOptions::default())
        }
    };
    match result {
        Err(e) => Ok(e),
        Ok(statements) => Err(format!(
            "lib: settles without error ({} statements)",
            statements.len()
        )),
    }
}

/// The exit code the command line gives an error of this kind: 2 for input
/// that is wrong as given, 1 for data, arithmetic and system failures.
fn exit_code(error: &Error) -> i32 {
    match error.kind() {
        ErrorKind::InvalidContract | ErrorKind::InvalidArgument | ErrorKind::StateMismatch => 2,
        _ => 1,
    }
}

/// Runs the case through the library: its problems.
fn check_library(case: &Case) -> Vec<String> {
    let error = match library_error(case) {
        Ok(e) => e,
        Err(problem) => return vec![problem],
    };
    let text = error.to_string();
    let mut problems = Vec::new();
    if exit_code(&error) != case.expect.exit {
        problems.push(format!(
            "lib: the error's kind ({}) means exit code {}, want {}: {text}",
            error.kind(),
            exit_code(&error),
            case.expect.exit
        ));
    }
    let lacks = missing(&text, &case.expect.stderr);
    if !lacks.is_empty() {
        problems.push(format!("lib: error lacks {lacks:?}; error:\n{text}"));
    }
    problems
}

#[test]
fn every_invalid_case_fails_as_expected_in_the_cli_and_the_library() {
    // Proves every invalid contract, data file and command line in
    // tests/cases/invalid fails with its exit status and names where and
    // what, the same through the binary and through the library.
    let cases = cases();
    let mut report = String::new();
    let mut failed = 0;
    for case in &cases {
        let (name, problems) = match case {
            Err((name, e)) => (name.as_str(), vec![e.clone()]),
            Ok(case) => {
                let mut problems = check_cli(case);
                if case.expect.library {
                    problems.extend(check_library(case));
                }
                (case.name.as_str(), problems)
            }
        };
        if !problems.is_empty() {
            failed += 1;
            let about = case.as_ref().map(|c| c.expect.about.as_str()).unwrap_or("");
            let _ = writeln!(report, "\n== {name} ({about})");
            for p in problems {
                let _ = writeln!(report, "  {}", p.trim_end().replace('\n', "\n    "));
            }
        }
    }
    assert!(
        failed == 0,
        "{failed} of {} invalid cases failed:{report}",
        cases.len()
    );
}

#[test]
fn there_are_enough_invalid_cases() {
    // Proves the case folder is found and keeps its promised size, so the
    // runner cannot pass on an empty or moved folder.
    let n = cases().len();
    assert!(
        n >= CASES_MIN,
        "only {n} invalid cases, want at least {CASES_MIN}"
    );
}
