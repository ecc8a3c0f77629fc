//! Golden traces: `tests/golden/NAME.json` is the exact output of
//!
//! ```text
//! outcome settle tests/worked/NAME.toml --metrics tests/worked/NAME.csv --as-of AS_OF --format json
//! ```
//!
//! with `AS_OF` from the contract's `# as-of: T` comment line (as
//! `tests/worked_examples.rs` reads it). The hand-computed amounts are
//! checked by `worked_examples.rs`; these files pin everything else the JSON
//! carries, above all every line's trace, byte for byte, so any change to a
//! trace shows up as a diff in review.
//!
//! When a change to a trace is intended, run the tests with
//! `OUTCOME_BLESS=1` to rewrite the files, and commit them with the change.
//! To add a golden trace, create an empty `tests/golden/NAME.json` for a
//! worked example `NAME` and bless. See `tests/golden/README.md`.

#[path = "common/command.rs"]
mod command;
use command::as_of;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;

/// Fewest golden files the folder must hold.
const GOLDEN_MIN: usize = 5;

/// Lines of context shown around the first difference.
const CONTEXT: usize = 3;

/// Lines shown of each side's differing part, at most.
const SHOWN: usize = 20;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn golden_files() -> Vec<PathBuf> {
    let dir = repo().join("tests/golden");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

/// The settle JSON of worked example `name`, as the binary prints it.
fn settle_json(name: &str) -> Result<String, String> {
    let worked = repo().join("tests/worked");
    let contract = worked.join(format!("{name}.toml"));
    let metrics = worked.join(format!("{name}.csv"));
    if !contract.exists() || !metrics.exists() {
        return Err(format!(
            "no worked example {name}: want tests/worked/{name}.toml and {name}.csv"
        ));
    }
    let as_of = as_of(&contract)?;
    let output = Command::new(env!("CARGO_BIN_EXE_outcome"))
        .arg("settle")
        .arg(&contract)
        .arg("--metrics")
        .arg(&metrics)
        .arg("--as-of")
        .arg(&as_of)
        .arg("--format")
        .arg("json")
        .output()
        .map_err(|e| format!("cannot run outcome: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "outcome exited with {}; stderr:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    String::from_utf8(output.stdout).map_err(|e| format!("stdout is not UTF-8: {e}"))
}

/// The first differing lines of `expected` and `actual`, with context, in
/// the style of a unified diff (`-` golden, `+` program), line numbers of
/// the golden file.
fn first_difference(expected: &str, actual: &str) -> String {
    let exp: Vec<&str> = expected.split_inclusive('\n').collect();
    let act: Vec<&str> = actual.split_inclusive('\n').collect();
    let prefix = exp.iter().zip(&act).take_while(|(a, b)| a == b).count();
    let suffix = exp[prefix..]
        .iter()
        .rev()
        .zip(act[prefix..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let from = prefix.saturating_sub(CONTEXT);
    let (exp_end, act_end) = (exp.len() - suffix, act.len() - suffix);
    let mut out = format!(
        "@@ golden line {}, {} line(s) differ on the golden side, {} on the program's @@\n",
        prefix + 1,
        exp_end - prefix,
        act_end - prefix
    );
    let show = |out: &mut String, mark: char, lines: &[&str]| {
        for l in lines.iter().take(SHOWN) {
            let _ = writeln!(out, "{mark}{}", l.trim_end_matches('\n'));
        }
        if lines.len() > SHOWN {
            let _ = writeln!(out, "{mark} … {} more", lines.len() - SHOWN);
        }
    };
    show(&mut out, ' ', &exp[from..prefix]);
    show(&mut out, '-', &exp[prefix..exp_end]);
    show(&mut out, '+', &act[prefix..act_end]);
    show(
        &mut out,
        ' ',
        &exp[exp_end..(exp_end + CONTEXT).min(exp.len())],
    );
    if expected.ends_with('\n') != actual.ends_with('\n') {
        out.push_str("(the two differ in the final newline)\n");
    }
    out
}

fn blessing() -> bool {
    std::env::var_os("OUTCOME_BLESS").is_some_and(|v| v == "1")
}

#[test]
fn settle_json_matches_the_golden_traces() {
    // Proves the JSON statements of the chosen worked examples, traces
    // included, are byte for byte the reviewed golden files (or rewrites
    // them under OUTCOME_BLESS=1).
    let bless = blessing();
    let mut report = String::new();
    let mut failed = 0;
    let files = golden_files();
    for file in &files {
        let name = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let problem = match settle_json(&name) {
            Err(e) => Some(e),
            Ok(actual) if bless => std::fs::write(file, actual)
                .err()
                .map(|e| format!("cannot write {}: {e}", file.display())),
            Ok(actual) => match std::fs::read_to_string(file) {
                Err(e) => Some(format!("{}: {e}", file.display())),
                Ok(expected) if expected == actual => None,
                Ok(expected) => Some(format!(
                    "differs from tests/golden/{name}.json (OUTCOME_BLESS=1 rewrites it):\n{}",
                    first_difference(&expected, &actual)
                )),
            },
        };
        if let Some(p) = problem {
            failed += 1;
            let _ = writeln!(
                report,
                "\n== {name}\n  {}",
                p.trim_end().replace('\n', "\n  ")
            );
        }
    }
    assert!(
        failed == 0,
        "{failed} of {} golden traces failed:{report}",
        files.len()
    );
}

#[test]
fn there_are_enough_golden_traces() {
    // Proves the golden folder is found and keeps its promised size.
    let n = golden_files().len();
    assert!(
        n >= GOLDEN_MIN,
        "only {n} golden files, want at least {GOLDEN_MIN}"
    );
}
