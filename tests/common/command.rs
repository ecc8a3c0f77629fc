//! The `outcome` command line as the integration tests run it (through
//! `#[path]`), and the files they hand it.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// What a run of `outcome` gave: its exit status and its UTF-8 output.
pub struct Run {
    /// The exit status.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs `outcome` with `args` in the test's working directory (the
/// package's root).
///
/// # Panics
/// When the binary cannot run, is killed by a signal or writes other than
/// UTF-8.
pub fn outcome(args: &[&str]) -> Run {
    finished(Command::new(env!("CARGO_BIN_EXE_outcome")).args(args))
}

/// Runs `outcome` with `args` in `dir`.
///
/// # Panics
/// As [`outcome`].
pub fn outcome_in(args: &[&str], dir: &Path) -> Run {
    finished(
        Command::new(env!("CARGO_BIN_EXE_outcome"))
            .args(args)
            .current_dir(dir),
    )
}

fn finished(command: &mut Command) -> Run {
    let out = command.output().expect("run outcome");
    Run {
        code: out.status.code().expect("exit status"),
        stdout: String::from_utf8(out.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("utf-8 stderr"),
    }
}

/// Writes `text` to the file `name` in `dir`; its path.
///
/// # Panics
/// When the file cannot be written.
pub fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path.display().to_string()
}

/// `text` parsed as JSON.
///
/// # Panics
/// When it is not JSON, showing it.
pub fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

/// The `# as-of: T` comment line of a contract file: the instant its
/// expected output is settled at, or why there is none.
///
/// # Errors
/// When the file cannot be read or has no such line.
pub fn as_of(contract: &Path) -> Result<String, String> {
    let text =
        std::fs::read_to_string(contract).map_err(|e| format!("{}: {e}", contract.display()))?;
    text.lines()
        .filter_map(|l| l.trim().strip_prefix('#'))
        .find_map(|l| l.trim().strip_prefix("as-of:"))
        .map(|t| t.trim().to_string())
        .ok_or_else(|| format!("{}: no `# as-of: T` comment line", contract.display()))
}
