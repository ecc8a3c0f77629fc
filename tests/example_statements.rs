//! The example folders that carry their statements: every
//! `examples/NAME/expected.csv` is what `outcome settle --format csv` prints
//! for `contract.toml` over `metrics.csv`, settled at the instant the
//! contract names in a comment line `# as-of: T`. Each folder's README holds
//! the hand computation.

#[path = "common/command.rs"]
mod command;
use command::as_of;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The example folders with an `expected.csv`, in name order.
fn folders() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("expected.csv").is_file())
        .collect();
    out.sort();
    out
}

/// Settles one folder and compares with its `expected.csv`: a description
/// of what differs, or none.
fn check(folder: &Path) -> Option<String> {
    let contract = folder.join("contract.toml");
    let as_of = match as_of(&contract) {
        Ok(t) => t,
        Err(e) => return Some(e),
    };
    let expected = match std::fs::read_to_string(folder.join("expected.csv")) {
        Ok(t) => t,
        Err(e) => return Some(format!("expected.csv: {e}")),
    };
    let output = match Command::new(env!("CARGO_BIN_EXE_outcome"))
        .arg("settle")
        .arg(&contract)
        .arg("--metrics")
        .arg(folder.join("metrics.csv"))
        .arg("--as-of")
        .arg(&as_of)
        .arg("--format")
        .arg("csv")
        .output()
    {
        Ok(o) => o,
        Err(e) => return Some(format!("cannot run outcome: {e}")),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Some(format!(
            "exited with {}; stderr:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    if stdout != expected {
        return Some(format!(
            "output differs from expected.csv:\n--- expected\n{expected}--- printed\n{stdout}"
        ));
    }
    None
}

#[test]
fn every_example_with_expected_statements_settles_to_them() {
    // Proves each example folder's expected.csv, computed by hand in its
    // README, is what the command line prints for it, byte for byte.
    let folders = folders();
    assert!(
        folders.len() >= 2,
        "expected at least the ai-workspaces and mid-month-repricing folders, found {}",
        folders.len()
    );
    let mut report = String::new();
    for folder in &folders {
        if let Some(problem) = check(folder) {
            let name = folder.file_name().unwrap_or_default().to_string_lossy();
            report.push_str(&format!("\n== examples/{name}\n{problem}\n"));
        }
    }
    assert!(report.is_empty(), "examples differ:{report}");
}
