//! `outcome issue` and `reconcile --ledger` as processes: killed midway
//! and run again, run twice at once, and given stores that are missing,
//! unreachable, foreign or too new.

#[path = "common/pg.rs"]
mod pg;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_outcome");

/// Contract `k` of a generated run: 12 monthly periods, a tiered charge
/// with year-to-date tiers and a yearly cap, so state carries.
fn contract(k: usize) -> String {
    format!(
        r#"format = 1
id = "c{k:04}"
customer = "cust{k}"
currency = "USD"
start = "2026-01-01"
end = "2027-01-01"
cadence = "monthly"

[metrics.units]
series = "units"
aggregate = "sum"

[[charges]]
id = "usage"
kind = "tiered"
mode = "graduated"
quantity = "units"
accumulate = "contract_year"
tiers = [ {{ up_to = "500", unit_price = "1.10" }}, {{ unit_price = "0.75" }} ]

[[charges]]
id = "platform"
kind = "fixed"
amount = "{}"

[[limits]]
id = "yearly_cap"
kind = "cap"
amount = "2500"
scope = "contract_year"
"#,
        10 + k % 7
    )
}

/// A folder of `n` contracts and one metric file for them all.
fn billing_run(dir: &Path, n: usize) -> (PathBuf, PathBuf) {
    let contracts = dir.join("contracts");
    std::fs::create_dir_all(&contracts).unwrap();
    let mut csv = String::from("customer,series,timestamp,value,id\n");
    for k in 0..n {
        std::fs::write(contracts.join(format!("c{k:04}.toml")), contract(k)).unwrap();
        for month in 1..=12 {
            let value = (k * 37 + month * 11) % 90 + 5;
            writeln!(
                csv,
                "cust{k},units,2026-{month:02}-15T10:00:00Z,{value},u-{k}-{month}"
            )
            .unwrap();
        }
    }
    let metrics = dir.join("metrics.csv");
    std::fs::write(&metrics, csv).unwrap();
    (contracts, metrics)
}

fn issue(contracts: &Path, metrics: &Path, ledger: &str) -> Command {
    let mut c = Command::new(BIN);
    c.arg("issue")
        .arg(contracts)
        .arg("--metrics")
        .arg(metrics)
        .arg("--ledger")
        .arg(ledger)
        .args(["--as-of", "2027-01-10", "--format", "csv"]);
    c
}

fn run(mut command: Command) -> Output {
    command.output().unwrap()
}

/// The statement lines `settle` gives for the run, as CSV rows sorted.
fn settled_rows(contracts: &Path, metrics: &Path) -> Vec<String> {
    let out = run({
        let mut c = Command::new(BIN);
        c.arg("settle")
            .arg(contracts)
            .arg("--metrics")
            .arg(metrics)
            .args(["--as-of", "2027-01-10", "--format", "csv"]);
        c
    });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut rows: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .skip(1)
        .map(str::to_owned)
        .collect();
    rows.sort();
    rows
}

/// Every line the ledger holds, as `settle --format csv` rows, sorted; and
/// how many statements it holds of each (contract, period).
fn ledger_rows(ledger: &str) -> (Vec<String>, BTreeMap<(String, String), usize>) {
    let mut lines = Vec::new();
    let mut counts = BTreeMap::new();
    let mut push = |contract: String,
                    start: String,
                    end: String,
                    charge: String,
                    kind: String,
                    quantity: Option<String>,
                    amount: String| {
        lines.push(format!(
            "{contract},{start},{end},{charge},{kind},{},{amount},",
            quantity.unwrap_or_default()
        ));
    };
    if let Some(path) = ledger.strip_prefix("sqlite:") {
        let db = rusqlite::Connection::open(path).unwrap();
        let mut q = db
            .prepare(
                "SELECT s.contract, s.period_start, s.period_end, l.charge, l.kind, l.quantity, l.amount
                 FROM outcome_statements s JOIN outcome_statement_lines l ON l.statement_id = s.id",
            )
            .unwrap();
        let mut rows = q.query([]).unwrap();
        while let Some(r) = rows.next().unwrap() {
            push(
                r.get(0).unwrap(),
                r.get(1).unwrap(),
                r.get(2).unwrap(),
                r.get(3).unwrap(),
                r.get(4).unwrap(),
                r.get(5).unwrap(),
                r.get(6).unwrap(),
            );
        }
        let mut q = db
            .prepare(
                "SELECT contract, period_start, count(*) FROM outcome_statements GROUP BY 1, 2",
            )
            .unwrap();
        let mut rows = q.query([]).unwrap();
        while let Some(r) = rows.next().unwrap() {
            counts.insert(
                (r.get(0).unwrap(), r.get(1).unwrap()),
                r.get::<_, i64>(2).unwrap() as usize,
            );
        }
    } else {
        let mut client = postgres::Client::connect(ledger, postgres::NoTls).unwrap();
        for r in client
            .query(
                "SELECT s.contract, s.period_start::text, s.period_end::text, l.charge, l.kind,
                        l.quantity::text, l.amount::text
                 FROM outcome_statements s JOIN outcome_statement_lines l ON l.statement_id = s.id",
                &[],
            )
            .unwrap()
        {
            push(
                r.get(0),
                r.get(1),
                r.get(2),
                r.get(3),
                r.get(4),
                r.get(5),
                r.get(6),
            );
        }
        for r in client
            .query(
                "SELECT contract, period_start::text, count(*) FROM outcome_statements GROUP BY 1, 2",
                &[],
            )
            .unwrap()
        {
            counts.insert((r.get(0), r.get(1)), r.get::<_, i64>(2) as usize);
        }
    }
    lines.sort();
    (lines, counts)
}

/// After whatever happened, the ledger holds every statement of the run
/// exactly once, equal to what `settle` gives.
fn assert_complete(ledger: &str, contracts: &Path, metrics: &Path, n: usize) {
    let (lines, counts) = ledger_rows(ledger);
    assert_eq!(
        counts.len(),
        n * 12,
        "every period of every contract issued"
    );
    assert!(counts.values().all(|&c| c == 1), "no period issued twice");
    assert_eq!(lines, settled_rows(contracts, metrics));
}

/// Kills `outcome issue` with SIGKILL at points spread over a whole run,
/// each time on a fresh ledger, then runs it again to the end.
fn killed_and_rerun(ledger_for: &dyn Fn(usize) -> String, dir: &Path) {
    let n = 150;
    let (contracts, metrics) = billing_run(dir, n);
    // How long a whole run takes here, to spread the kills over it.
    let probe = ledger_for(0);
    let started = Instant::now();
    let out = run(issue(&contracts, &metrics, &probe));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let whole = started.elapsed();
    assert_complete(&probe, &contracts, &metrics, n);
    let mut killed_midway = 0;
    for trial in 1..=6u32 {
        let ledger = ledger_for(trial as usize);
        // Points from the start-up to past the end, never the same twice.
        let at = whole * (trial * 9) / 60;
        let mut child = issue(&contracts, &metrics, &ledger)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(at);
        if child.try_wait().unwrap().is_none() {
            killed_midway += 1;
        }
        let _ = child.kill();
        let _ = child.wait();
        let out = run(issue(&contracts, &metrics, &ledger));
        assert!(
            out.status.success(),
            "rerun after a kill at {at:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_complete(&ledger, &contracts, &metrics, n);
        // A third run finds everything issued: it appends nothing.
        let out = run(issue(&contracts, &metrics, &ledger));
        assert!(out.status.success());
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).lines().count(),
            1,
            "only the header"
        );
        assert_complete(&ledger, &contracts, &metrics, n);
    }
    assert!(killed_midway > 0, "no kill landed while the run was going");
}

/// Two `outcome issue` at once on one ledger: each period issued once.
fn two_at_once(ledger: &str, dir: &Path) {
    let n = 120;
    let (contracts, metrics) = billing_run(dir, n);
    let spawn = || {
        issue(&contracts, &metrics, ledger)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    // What one issued, the other skipped: together, every row once.
    let rows = |o: &Output| String::from_utf8_lossy(&o.stdout).lines().skip(1).count();
    // Skipped periods are named on one line per contract.
    let skipped = |o: &Output| {
        String::from_utf8_lossy(&o.stderr)
            .lines()
            .filter(|l| l.contains("issued already, skipped: "))
            .map(|l| l.matches(" .. ").count())
            .sum::<usize>()
    };
    assert_eq!(rows(&a) + rows(&b), n * 12 * 2, "two lines per statement");
    assert_eq!(skipped(&a) + skipped(&b), n * 12);
    assert_complete(ledger, &contracts, &metrics, n);
}

#[test]
fn a_killed_issue_run_completes_when_run_again_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().to_owned();
    killed_and_rerun(
        &|k| format!("sqlite:{}", base.join(format!("ledger{k}.db")).display()),
        dir.path(),
    );
}

#[test]
fn a_killed_issue_run_completes_when_run_again_postgres() {
    let Some(_) = pg::server() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    killed_and_rerun(
        &|k| pg::fresh(&format!("ledger_killed_{k}")).unwrap(),
        dir.path(),
    );
}

#[test]
fn two_issue_runs_at_once_issue_each_period_once_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = format!("sqlite:{}", dir.path().join("ledger.db").display());
    two_at_once(&ledger, dir.path());
}

#[test]
fn two_issue_runs_at_once_issue_each_period_once_postgres() {
    let Some(_) = pg::server() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    two_at_once(&pg::fresh("ledger_twice").unwrap(), dir.path());
}

fn example() -> (&'static str, &'static str) {
    (
        "examples/support-agent/contract.toml",
        "examples/support-agent/metrics.csv",
    )
}

fn reconcile_ledger(ledger: &str) -> Output {
    let (contract, metrics) = example();
    run({
        let mut c = Command::new(BIN);
        c.args([
            "reconcile",
            contract,
            "--metrics",
            metrics,
            "--ledger",
            ledger,
        ]);
        c
    })
}

fn issue_example(ledger: &str) -> Output {
    let (contract, metrics) = example();
    run({
        let mut c = Command::new(BIN);
        c.args(["issue", contract, "--metrics", metrics, "--ledger", ledger]);
        c
    })
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_missing_ledger_is_an_error_naming_it_and_is_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.db");
    let out = reconcile_ledger(&format!("sqlite:{}", path.display()));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("missing.db"), "{}", stderr(&out));
    assert!(!path.exists());
}

#[test]
fn an_unreachable_server_is_an_error_naming_it_without_password() {
    let url = "postgres://billing:secret@127.0.0.1:1/ledger";
    for out in [issue_example(url), reconcile_ledger(url)] {
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let e = stderr(&out);
        assert!(
            e.contains("postgres://billing:***@127.0.0.1:1/ledger"),
            "{e}"
        );
        assert!(!e.contains("secret"), "{e}");
    }
}

#[test]
fn a_file_that_is_not_a_database_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.db");
    std::fs::write(&path, "these are notes, not a database\n".repeat(100)).unwrap();
    let before = std::fs::read(&path).unwrap();
    for out in [
        issue_example(&format!("sqlite:{}", path.display())),
        reconcile_ledger(&format!("sqlite:{}", path.display())),
    ] {
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(stderr(&out).contains("notes.db"), "{}", stderr(&out));
    }
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

/// Sets the ledger's recorded schema version, as a newer build would.
fn bump_sqlite(path: &Path) {
    let db = rusqlite::Connection::open(path).unwrap();
    db.execute(
        "UPDATE outcome_schema SET version = 99 WHERE component = 'ledger'",
        [],
    )
    .unwrap();
}

#[test]
fn a_newer_schema_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let ledger = format!("sqlite:{}", path.display());
    let (contract, metrics) = example();
    let first = run({
        let mut c = Command::new(BIN);
        c.args(["issue", contract, "--metrics", metrics, "--ledger", &ledger])
            .args(["--as-of", "2026-03-01"]);
        c
    });
    assert!(first.status.success(), "{}", stderr(&first));
    bump_sqlite(&path);
    let (before, _) = ledger_rows(&ledger);
    for out in [issue_example(&ledger), reconcile_ledger(&ledger)] {
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let e = stderr(&out);
        assert!(
            e.contains("schema version 99") && e.contains("ledger.db"),
            "{e}"
        );
    }
    assert_eq!(ledger_rows(&ledger).0, before);
}

#[test]
fn a_store_of_another_schema_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    {
        let db = rusqlite::Connection::open(&path).unwrap();
        db.execute_batch("CREATE TABLE outcome_statements (x TEXT); INSERT INTO outcome_statements VALUES ('mine');")
            .unwrap();
    }
    let ledger = format!("sqlite:{}", path.display());
    let out = reconcile_ledger(&ledger);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("not a ledger"), "{}", stderr(&out));
    let out = issue_example(&ledger);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("other.db"), "{}", stderr(&out));
    let db = rusqlite::Connection::open(&path).unwrap();
    let tables: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(tables, ["outcome_statements"], "nothing was created");
}

#[test]
fn postgres_stores_of_another_or_newer_schema_are_refused() {
    let Some(_) = pg::server() else {
        return;
    };
    let empty = pg::fresh("ledger_empty").unwrap();
    let out = reconcile_ledger(&empty);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("not a ledger"), "{}", stderr(&out));

    let newer = pg::fresh("ledger_newer").unwrap();
    let first = issue_example(&newer);
    assert!(first.status.success(), "{}", stderr(&first));
    let mut client = postgres::Client::connect(&newer, postgres::NoTls).unwrap();
    client
        .batch_execute("UPDATE outcome_schema SET version = 99 WHERE component = 'ledger'")
        .unwrap();
    let (before, _) = ledger_rows(&newer);
    for out in [issue_example(&newer), reconcile_ledger(&newer)] {
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("schema version 99"),
            "{}",
            stderr(&out)
        );
    }
    assert_eq!(ledger_rows(&newer).0, before);
}

/// A ledger whose rows were tampered with (its triggers dropped first) is
/// an error naming it, never a panic or a wrong number.
#[test]
fn a_tampered_ledger_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let ledger = format!("sqlite:{}", path.display());
    let first = issue_example(&ledger);
    assert!(first.status.success(), "{}", stderr(&first));
    let db = rusqlite::Connection::open(&path).unwrap();
    db.execute_batch(
        "DROP TRIGGER outcome_statements_no_update;
         UPDATE outcome_statements SET statement = '{\"period\": 7}' WHERE id = 2;",
    )
    .unwrap();
    drop(db);
    let out = reconcile_ledger(&ledger);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let e = stderr(&out);
    assert!(
        e.contains("issued statement 2") && e.contains("ledger.db"),
        "{e}"
    );
}

#[test]
fn reconciling_a_contract_never_issued_is_a_data_error() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = format!("sqlite:{}", dir.path().join("ledger.db").display());
    let other = dir.path().join("other.toml");
    std::fs::write(&other, contract(1)).unwrap();
    let out = run({
        let mut c = Command::new(BIN);
        c.arg("issue")
            .arg(&other)
            .args(["--metrics", example().1, "--ledger", &ledger]);
        c
    });
    assert!(out.status.success(), "{}", stderr(&out));
    let out = reconcile_ledger(&ledger);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("holds no issued statement of contract support-agent-2026"),
        "{}",
        stderr(&out)
    );
}
