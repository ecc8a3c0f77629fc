//! The `outcome` command line: validate, settle, simulate, compare and
//! sweep outcome-based contracts. Thin over the `outcome_billing` library.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use std::io::IsTerminal;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, NaiveDate, Utc};
use clap::{ArgGroup, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use outcome_billing::ledger::Ledger;
use outcome_billing::metric::{CsvSource, PostgresSource, SqliteSource};
use outcome_billing::money::parse_decimal;
use outcome_billing::period::{Stamp, parse_as_of};
use outcome_billing::report::{RunEntry, RunFormat, RunItem, RunWriter};
use outcome_billing::run::{BillingRun, RunOptions};
use outcome_billing::simulate::{
    Basis, ChartLabels, RUNS_DEFAULT, STEPS_DEFAULT, STEPS_MAX, Scenario, SimulateOptions,
    SweepSpec,
};
use outcome_billing::store::Store;
use outcome_billing::{CompiledContract, Error, ErrorKind, Location, MetricSource};
use rayon::prelude::*;

/// Writes to stdout like `print!`, except that a reader that went away (a
/// closed pipe, as with `| head`) ends the output quietly instead of
/// panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

/// `out!` with a final newline.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

#[derive(Parser)]
#[command(
    name = "outcome",
    version,
    about = "Settle and explore outcome-based contracts"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Table,
    Json,
    Csv,
}

#[derive(Subcommand)]
enum Command {
    /// Check contract files and report their periods, charges and limits.
    Validate {
        /// Contract files (TOML, JSON or YAML) or folders of them.
        #[arg(required = true)]
        contracts: Vec<PathBuf>,
    },
    /// Settle contracts against metric data.
    Settle {
        /// Contract files or folders of them.
        #[arg(required = true)]
        contracts: Vec<PathBuf>,
        /// Metric data: a CSV file, `sqlite:PATH` or a `postgres://` URL.
        #[arg(long)]
        metrics: String,
        /// Settle only the period that starts on this date (earlier periods
        /// are settled to carry their state).
        #[arg(long)]
        period: Option<String>,
        /// Read only what was recorded by this time (RFC 3339 or a date), and
        /// judge which periods have ended against it.
        #[arg(long = "as-of")]
        as_of: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Settle issued periods again and list what changed as adjustments.
    Reconcile {
        /// The contract file.
        contract: PathBuf,
        /// Metric data: a CSV file, `sqlite:PATH` or a `postgres://` URL.
        #[arg(long)]
        metrics: String,
        /// The issued statements: a document printed by `settle --format json`.
        #[arg(long, required_unless_present = "ledger", conflicts_with = "ledger")]
        issued: Option<PathBuf>,
        /// A ledger store (`sqlite:PATH` or a `postgres://` URL).
        #[arg(long)]
        ledger: Option<String>,
        /// Settle with what was recorded by this time (RFC 3339 or a date).
        #[arg(long = "as-of")]
        as_of: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Settle the periods due and append them to a ledger of issued
    /// statements; periods already issued are skipped and named on stderr.
    Issue {
        /// Contract files or folders of them.
        #[arg(required = true)]
        contracts: Vec<PathBuf>,
        /// Metric data: a CSV file, `sqlite:PATH` or a `postgres://` URL.
        #[arg(long)]
        metrics: String,
        /// The ledger: `sqlite:PATH` (created if missing) or a `postgres://`
        /// URL (its tables created if missing).
        #[arg(long)]
        ledger: String,
        /// Issue only the period that starts on this date.
        #[arg(long)]
        period: Option<String>,
        /// Read only what was recorded by this time (RFC 3339 or a date), and
        /// judge which periods have ended against it.
        #[arg(long = "as-of")]
        as_of: Option<String>,
        /// Output format of the statements issued.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Append the rows of a metric CSV file to a store.
    Import {
        /// The metric CSV file.
        data: PathBuf,
        /// The store: `sqlite:PATH` (created if missing) or a `postgres://` URL.
        #[arg(long)]
        into: String,
    },
    /// Simulate a contract under a scenario: the spread of each charge and
    /// the total per period and for the term, and how often limits act.
    Simulate {
        /// The contract file.
        contract: PathBuf,
        /// The scenario file (TOML).
        #[arg(long)]
        scenario: PathBuf,
        #[command(flatten)]
        runs: RunArgs,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// Also draw a fan chart of the period totals into this SVG file.
        #[arg(long, value_name = "FILE.svg")]
        plot: Option<PathBuf>,
    },
    /// Compare contracts on identical draws of a scenario, or on history.
    #[command(group(ArgGroup::new("basis").required(true).args(["metrics", "scenario"])))]
    Compare {
        /// Contract files (at least two), compared with the first.
        #[arg(required = true, num_args = 2..)]
        contracts: Vec<PathBuf>,
        /// Metric data (a CSV file): settle the history once.
        #[arg(long)]
        metrics: Option<String>,
        /// The scenario file (TOML).
        #[arg(long)]
        scenario: Option<PathBuf>,
        /// With --metrics: settle the periods due at this time instead of
        /// now (RFC 3339, or a date meaning local midnight in each
        /// contract's time zone), as `settle --as-of` does.
        #[arg(long = "as-of", requires = "metrics")]
        as_of: Option<String>,
        #[command(flatten)]
        runs: RunArgs,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// Also draw every contract's fan on one chart into this SVG file.
        #[arg(long, value_name = "FILE.svg")]
        plot: Option<PathBuf>,
    },
    /// Sweep one series over a range and find where contracts break even.
    #[command(group(ArgGroup::new("basis").required(false).args(["metrics", "scenario"])))]
    Sweep {
        /// Contract files.
        #[arg(required = true)]
        contracts: Vec<PathBuf>,
        /// The swept series: its value in every period.
        #[arg(long, value_name = "SERIES")]
        metric: String,
        /// The first level.
        #[arg(long, allow_hyphen_values = true)]
        from: String,
        /// The last level.
        #[arg(long, allow_hyphen_values = true)]
        to: String,
        /// Steps between the levels (steps + 1 levels).
        #[arg(long, default_value_t = STEPS_DEFAULT, value_parser = steps_in_range)]
        steps: usize,
        /// Metric data (a CSV file) for the other series.
        #[arg(long)]
        metrics: Option<String>,
        /// A scenario file (TOML) for the other series.
        #[arg(long)]
        scenario: Option<PathBuf>,
        /// With --metrics: settle only the periods due at this time (RFC
        /// 3339, or a date meaning local midnight in each contract's time
        /// zone), as `settle --as-of` does; without it, the whole term.
        #[arg(long = "as-of", requires = "metrics")]
        as_of: Option<String>,
        #[command(flatten)]
        runs: RunArgs,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// Also draw each contract's term total over the levels into this
        /// SVG file.
        #[arg(long, value_name = "FILE.svg")]
        plot: Option<PathBuf>,
    },
}

/// Runs and seed of a simulation.
/// Reads `--runs`: at least 1.
fn runs_at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1, not 0".into()),
        Ok(runs) => Ok(runs),
        Err(_) => Err(format!("{text:?} is not a whole number")),
    }
}

/// Reads `--steps`: 1 to `STEPS_MAX`.
fn steps_in_range(text: &str) -> Result<usize, String> {
    let steps: usize = text
        .parse()
        .map_err(|_| format!("{text:?} is not a whole number"))?;
    if (1..=STEPS_MAX).contains(&steps) {
        Ok(steps)
    } else {
        Err(format!("must be 1 to {STEPS_MAX}, not {steps}"))
    }
}

#[derive(clap::Args)]
struct RunArgs {
    /// Runs of a random scenario.
    #[arg(long, default_value_t = RUNS_DEFAULT, value_parser = runs_at_least_one)]
    runs: usize,
    /// Seed of the draws: the same seed gives the same results.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let code = match cli.command {
        Command::Validate { contracts } => validate(&contracts),
        Command::Settle {
            contracts,
            metrics,
            period,
            as_of,
            format,
        } => settle(
            &contracts,
            &metrics,
            period.as_deref(),
            as_of.as_deref(),
            format,
        ),
        Command::Reconcile {
            contract,
            metrics,
            issued,
            ledger,
            as_of,
            format,
        } => status(reconcile(
            &contract,
            &metrics,
            issued.as_deref(),
            ledger.as_deref(),
            as_of.as_deref(),
            format,
        )),
        Command::Issue {
            contracts,
            metrics,
            ledger,
            period,
            as_of,
            format,
        } => issue(
            &contracts,
            &metrics,
            &ledger,
            period.as_deref(),
            as_of.as_deref(),
            format,
        ),
        Command::Import { data, into } => status(import(&data, &into)),
        Command::Simulate {
            contract,
            scenario,
            runs,
            format,
            plot,
        } => status(simulate(
            &contract,
            &scenario,
            &runs,
            format,
            plot.as_deref(),
        )),
        Command::Compare {
            contracts,
            metrics,
            scenario,
            as_of,
            runs,
            format,
            plot,
        } => status(compare(
            &contracts,
            metrics.as_deref(),
            scenario.as_deref(),
            as_of.as_deref(),
            &runs,
            format,
            plot.as_deref(),
        )),
        Command::Sweep {
            contracts,
            metric,
            from,
            to,
            steps,
            metrics,
            scenario,
            as_of,
            runs,
            format,
            plot,
        } => status(sweep(
            &contracts,
            &metric,
            (&from, &to, steps),
            metrics.as_deref(),
            scenario.as_deref(),
            as_of.as_deref(),
            &runs,
            format,
            plot.as_deref(),
        )),
    };
    ExitCode::from(code as u8)
}

/// The exit status of a command, its error reported.
fn status(result: Result<(), Error>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            report(&e);
            exit_code(&e)
        }
    }
}

/// Prints an error on stderr: the sentence, then where.
fn report(error: &Error) {
    eprintln!("error: {}", error.message());
    let at = error.location();
    if *at != Location::None {
        eprintln!("  at {at}");
    }
}

/// The exit status for an error: 2 when the input given is wrong (an
/// invalid contract or scenario, a bad argument, a state that does not fit),
/// 1 when the data, the arithmetic or the system failed.
fn exit_code(error: &Error) -> i32 {
    match error.kind() {
        ErrorKind::InvalidContract | ErrorKind::InvalidArgument | ErrorKind::StateMismatch => 2,
        _ => 1,
    }
}

/// The contract files named: files as given, folders' contract files sorted.
fn contract_files(args: &[PathBuf]) -> Result<Vec<PathBuf>, Error> {
    let mut files = Vec::new();
    for arg in args {
        if arg.is_dir() {
            let entries =
                std::fs::read_dir(arg).map_err(|e| Error::io(arg.display().to_string(), e))?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && is_contract_file(p))
                .collect();
            found.sort();
            files.extend(found);
        } else if arg.exists() {
            files.push(arg.clone());
        } else {
            return Err(Error::usage(format!(
                "no such contract file or folder: {}",
                arg.display()
            )));
        }
    }
    if files.is_empty() {
        return Err(Error::usage(
            "no contract files found (expected .toml, .json, .yaml or .yml)",
        ));
    }
    Ok(files)
}

fn is_contract_file(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("toml" | "json" | "yaml" | "yml")
    )
}

/// Loads and compiles a contract file.
fn load(path: &Path) -> Result<CompiledContract, Error> {
    CompiledContract::from_path(path)
}

/// The id written in a file that fails validation, when it can be read.
fn id_of(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let value: serde_json::Value = match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => toml::from_str(&text).ok()?,
        Some("json") => serde_json::from_str(&text).ok()?,
        Some("yaml" | "yml") => {
            let docs = yaml_rust2::YamlLoader::load_from_str(&text).ok()?;
            return docs.first()?["id"].as_str().map(str::to_string);
        }
        _ => return None,
    };
    value.get("id")?.as_str().map(str::to_string)
}

/// What `validate` adds after its counts for grouped charges:
/// `; 1 charge grouped by workspace, 2 charges grouped by site`, one item
/// per dimension in byte order; nothing without grouped charges, so the
/// line of a contract without them is as the data page gives it.
fn grouped_note(contract: &outcome_billing::Contract) -> String {
    let mut by_dimension: std::collections::BTreeMap<&str, usize> = Default::default();
    for charge in &contract.charges {
        if let Some(dimension) = &charge.group_by {
            *by_dimension.entry(dimension.as_str()).or_default() += 1;
        }
    }
    if by_dimension.is_empty() {
        return String::new();
    }
    let items: Vec<String> = by_dimension
        .iter()
        .map(|(dimension, n)| {
            let noun = if *n == 1 { "charge" } else { "charges" };
            format!("{n} {noun} grouped by {dimension}")
        })
        .collect();
    format!("; {}", items.join(", "))
}

fn validate(args: &[PathBuf]) -> i32 {
    let files = match contract_files(args) {
        Ok(f) => f,
        Err(e) => {
            report(&e);
            return exit_code(&e);
        }
    };
    let mut status = 0;
    for file in files {
        match load(&file) {
            Ok(c) => outln!(
                "{}: ok ({} periods, {} charges, {} limits){}{}",
                c.contract().id,
                c.periods().len(),
                c.contract().charges.len(),
                c.contract().limits.len(),
                grouped_note(c.contract()),
                cut_note(&c)
            ),
            Err(e) => {
                report(&e);
                status = status.max(exit_code(&e));
            }
        }
    }
    status
}

/// What `validate` appends for periods cut by mid-period amendments:
/// `; 1 cut period`, `; 2 cut periods`, or nothing.
fn cut_note(c: &CompiledContract) -> String {
    match c.schedule().cut_periods() {
        0 => String::new(),
        1 => "; 1 cut period".to_string(),
        n => format!("; {n} cut periods"),
    }
}

/// A metric source named on the command line: `sqlite:PATH`, a
/// `postgres://` URL, or a CSV file.
fn open_source(spec: &str) -> Result<Box<dyn MetricSource>, Error> {
    if !Store::is_store(spec) {
        return Ok(Box::new(CsvSource::open(spec)?));
    }
    Ok(match Store::parse(spec)? {
        Store::Sqlite(path) => Box::new(SqliteSource::open(path)?),
        Store::Postgres(url) => Box::new(PostgresSource::open(&url)?),
    })
}

/// `import DATA.csv --into STORE`.
fn import(data: &Path, into: &str) -> Result<(), Error> {
    let store = Store::parse(into)?;
    let (n, name) = match &store {
        Store::Sqlite(path) => (
            outcome_billing::metric::sqlite::import_csv(data, path)?,
            path.display().to_string(),
        ),
        Store::Postgres(url) => (
            outcome_billing::metric::postgres::import_csv(data, url)?,
            store.to_string(),
        ),
    };
    outln!("imported {n} rows into {name}");
    Ok(())
}

fn settle(
    args: &[PathBuf],
    metrics: &str,
    period: Option<&str>,
    as_of: Option<&str>,
    format: Format,
) -> i32 {
    let files = match contract_files(args) {
        Ok(f) => f,
        Err(e) => {
            report(&e);
            return exit_code(&e);
        }
    };
    let several = files.len() > 1 || args.iter().any(|a| a.is_dir());
    let options = match settle_options(period, as_of, format == Format::Json) {
        Ok(options) => options,
        Err(e) => {
            report(&e);
            return 2;
        }
    };
    let Loaded {
        contracts,
        failed,
        status,
    } = match load_run(files) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let run = match BillingRun::new(contracts) {
        Ok(run) => run,
        Err(e) => {
            report(&e);
            return 2;
        }
    };

    let format = match format {
        Format::Json => RunFormat::Json,
        Format::Csv => RunFormat::Csv,
        Format::Table => RunFormat::Table,
    };
    let stdout = std::io::stdout();
    let mut printer = Printer {
        writer: RunWriter::new(
            std::io::BufWriter::with_capacity(1 << 20, stdout.lock()),
            format,
            several,
        ),
        format,
        failed: failed.into_iter().peekable(),
        reported: std::collections::HashSet::new(),
        status,
        buffered: (!several).then(Vec::new),
    };
    let written = (|| -> std::io::Result<()> {
        if several {
            printer.writer.start()?;
        }
        let map = |item: RunItem| {
            let text = item.render(format);
            (item, text)
        };
        if Store::is_store(metrics) {
            match open_source(metrics) {
                Ok(source) => {
                    for item in run.settle_source(source.as_ref(), &options) {
                        printer.print(map(item))?;
                    }
                }
                Err(e) => {
                    // The source fails every contract of the run.
                    for c in run.contracts() {
                        let item = RunItem::Failed {
                            contract: c.contract().id.clone(),
                            error: e.clone(),
                        };
                        printer.print(map(item))?;
                    }
                }
            }
        } else {
            run.settle_csv_with(Path::new(metrics), &options, map, |out| printer.print(out))?;
        }
        printer.finish()
    })();
    // The process ends next: freeing every compiled contract one by one
    // would only delay the exit of a large run.
    std::mem::forget(run);
    match written {
        Ok(()) => printer.status,
        // A closed pipe (`| head`) is not an error of the run.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => printer.status,
        Err(e) => {
            report(&Error::io("standard output", e));
            1
        }
    }
}

/// `--period` and `--as-of` as run options at the current time.
fn settle_options(
    period: Option<&str>,
    as_of: Option<&str>,
    trace: bool,
) -> Result<RunOptions, Error> {
    let mut options = RunOptions::new(Utc::now()).trace(trace);
    if let Some(p) = period {
        let d = NaiveDate::parse_from_str(p, "%Y-%m-%d")
            .map_err(|_| Error::usage(format!("--period {p:?} is not a date (YYYY-MM-DD)")))?;
        options = options.period(d);
    }
    if let Some(t) = as_of {
        let stamp = Stamp::parse(t).map_err(|m| Error::usage(format!("--as-of: {m}")))?;
        options = options.as_of(stamp);
    }
    Ok(options)
}

/// The contracts of a run, loaded, and those that failed to load.
struct Loaded {
    /// Compiled, without their bodies as written.
    contracts: Vec<CompiledContract>,
    /// Failed to load, reported on stderr, sorted by id.
    failed: Vec<RunItem>,
    /// The highest exit status of the failures.
    status: i32,
}

/// Loads every contract file, in parallel; two files with one id stop the
/// whole run (the exit status is the error).
fn load_run(files: Vec<PathBuf>) -> Result<Loaded, i32> {
    let loaded: Vec<(PathBuf, Result<CompiledContract, Error>)> = files
        .into_par_iter()
        .map(|file| {
            // Settlement reads only the compiled form: the run holds every
            // contract at once, so the body as written is dropped.
            let result = load(&file).map(CompiledContract::into_lean);
            (file, result)
        })
        .collect();
    let mut ids: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut status = 0;
    let mut contracts = Vec::new();
    let mut failed = Vec::new();
    for (file, result) in loaded {
        let id = match &result {
            Ok(c) => Some(c.contract().id.clone()),
            Err(_) => id_of(&file),
        };
        if let Some(id) = &id {
            if let Some(other) = ids.insert(id.clone(), file.clone()) {
                let e = Error::usage(format!(
                    "two contract files have the id {id}: {} and {}; nothing was settled",
                    other.display(),
                    file.display()
                ));
                report(&e);
                return Err(2);
            }
        }
        match result {
            Ok(c) => contracts.push(c),
            Err(error) => {
                report(&error);
                status = status.max(exit_code(&error));
                failed.push(RunItem::Failed {
                    contract: id.unwrap_or_else(|| file.display().to_string()),
                    error,
                });
            }
        }
    }
    failed.sort_by(|a, b| a.contract().as_bytes().cmp(b.contract().as_bytes()));
    Ok(Loaded {
        contracts,
        failed,
        status,
    })
}

/// How many contracts `outcome issue` settles at once before printing them.
const ISSUE_SLICE: usize = 256;

/// `outcome issue`: settles each contract's due periods and appends those
/// not issued before to the ledger, one transaction per contract, then
/// prints what was issued (statements with their ledger `id` and
/// `issued_at`).
fn issue(
    args: &[PathBuf],
    metrics: &str,
    ledger: &str,
    period: Option<&str>,
    as_of: Option<&str>,
    format: Format,
) -> i32 {
    let prepared = (|| {
        let files = contract_files(args)?;
        let store = Store::parse(ledger)?;
        let options = settle_options(period, as_of, true)?;
        Ok::<_, Error>((files, store, options))
    })();
    let (files, store, options) = match prepared {
        Ok(p) => p,
        Err(e) => {
            report(&e);
            return exit_code(&e);
        }
    };
    let several = files.len() > 1 || args.iter().any(|a| a.is_dir());
    let Loaded {
        mut contracts,
        failed,
        mut status,
    } = match load_run(files) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    contracts.sort_by(|a, b| a.contract().id.as_bytes().cmp(b.contract().id.as_bytes()));
    let opened = Ledger::create(&store).and_then(|ledger| Ok((ledger, open_source(metrics)?)));
    let (ledger, source) = match opened {
        Ok(opened) => opened,
        Err(e) => {
            report(&e);
            return exit_code(&e).max(status);
        }
    };
    let format = match format {
        Format::Json => RunFormat::Json,
        Format::Csv => RunFormat::Csv,
        Format::Table => RunFormat::Table,
    };
    // What one contract's issue prints, and the periods it skipped.
    let render = |c: &CompiledContract| -> (Vec<String>, Result<String, Error>) {
        let id = &c.contract().id;
        match ledger.issue(c, source.as_ref(), &options) {
            Err(e) => (Vec::new(), Err(e)),
            Ok(issued) => {
                // One line per contract names every period it skipped.
                let skipped = (!issued.skipped.is_empty())
                    .then(|| {
                        let periods: Vec<String> = issued
                            .skipped
                            .iter()
                            .map(|p| format!("{} .. {}", p.start, p.end))
                            .collect();
                        format!("{id}: issued already, skipped: {}", periods.join(", "))
                    })
                    .into_iter()
                    .collect();
                let text = match format {
                    RunFormat::Json => issued.to_document(c).map(|doc| {
                        serde_json::to_string_pretty(&RunEntry::Settled(doc)).unwrap_or_default()
                    }),
                    RunFormat::Table if issued.statements.is_empty() => {
                        Ok(format!("{id}: nothing new to issue\n"))
                    }
                    _ => issued
                        .to_statements(c)
                        .and_then(|s| RunItem::Settled(s).render(format)),
                };
                (skipped, text)
            }
        }
    };
    let stdout = std::io::stdout();
    let mut writer = RunWriter::new(stdout.lock(), format, several);
    let mut failed = failed.into_iter().peekable();
    let put_failed = |item: RunItem, writer: &mut RunWriter<_>| -> std::io::Result<()> {
        match item.render(format) {
            Ok(text) if several => writer.item(&text),
            _ => Ok(()),
        }
    };
    let written = (|| -> std::io::Result<()> {
        writer.start()?;
        // Contracts settle in parallel, a slice at a time so that memory
        // holds one slice's statements; each appends in its own
        // transaction, and prints in the byte order of the ids.
        for slice in contracts.chunks(ISSUE_SLICE) {
            let done: Vec<_> = slice.par_iter().map(|c| (c, render(c))).collect();
            for (c, (skipped, text)) in done {
                let id = c.contract().id.as_str();
                while let Some(f) = failed.next_if(|f| f.contract().as_bytes() < id.as_bytes()) {
                    put_failed(f, &mut writer)?;
                }
                for line in skipped {
                    eprintln!("{line}");
                }
                match text {
                    Ok(text) => writer.item(&text)?,
                    Err(error) => {
                        report(&error);
                        status = status.max(exit_code(&error));
                        put_failed(
                            RunItem::Failed {
                                contract: id.to_owned(),
                                error,
                            },
                            &mut writer,
                        )?;
                    }
                }
            }
        }
        for f in failed.by_ref() {
            put_failed(f, &mut writer)?;
        }
        writer.finish()
    })();
    match written {
        Ok(()) => status,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => status,
        Err(e) => {
            report(&Error::io("standard output", e));
            1
        }
    }
}

/// Prints a run's items in the byte order of their ids as they come,
/// with the contracts that failed to load in their places, and reports
/// each failure on stderr once.
struct Printer<W: std::io::Write> {
    writer: RunWriter<W>,
    format: RunFormat,
    /// Contracts that failed to load (reported as they were found),
    /// sorted, not yet printed.
    failed: std::iter::Peekable<std::vec::IntoIter<RunItem>>,
    /// Errors said on stderr, so one that fails every contract (a malformed
    /// row) is said once.
    reported: std::collections::HashSet<String>,
    status: i32,
    /// With one contract, the items are held: a contract that failed
    /// prints nothing on stdout.
    buffered: Option<Vec<String>>,
}

impl<W: std::io::Write> Printer<W> {
    fn print(&mut self, (item, text): (RunItem, Result<String, Error>)) -> std::io::Result<()> {
        while let Some(f) = self
            .failed
            .next_if(|f| f.contract().as_bytes() < item.contract().as_bytes())
        {
            self.put(f, None, true)?;
        }
        self.put(item, Some(text), false)
    }

    /// Prints one item (its text, or rendered here); `said` when its error
    /// is on stderr already.
    fn put(
        &mut self,
        item: RunItem,
        text: Option<Result<String, Error>>,
        said: bool,
    ) -> std::io::Result<()> {
        let text = text.unwrap_or_else(|| item.render(self.format));
        // A contract whose document cannot be written (its term total
        // overflows) takes its place as a failed one.
        let (item, text) = match text {
            Ok(text) => (item, text),
            Err(error) => {
                let failed = RunItem::Failed {
                    contract: item.contract().to_owned(),
                    error,
                };
                let text = failed.render(self.format).unwrap_or_default();
                (failed, text)
            }
        };
        if let RunItem::Failed { error, .. } = &item {
            if !said && self.reported.insert(error.to_string()) {
                report(error);
            }
            self.status = self.status.max(exit_code(error));
        }
        match &mut self.buffered {
            Some(held) => {
                if !matches!(item, RunItem::Failed { .. }) {
                    held.push(text);
                }
                Ok(())
            }
            None => self.writer.item(&text),
        }
    }

    fn finish(&mut self) -> std::io::Result<()> {
        while let Some(f) = self.failed.next() {
            self.put(f, None, true)?;
        }
        if let Some(held) = self.buffered.take() {
            if held.is_empty() {
                return Ok(());
            }
            self.writer.start()?;
            for text in held {
                self.writer.item(&text)?;
            }
        }
        self.writer.finish()
    }
}

fn reconcile(
    contract: &Path,
    metrics: &str,
    issued: Option<&Path>,
    ledger: Option<&str>,
    as_of: Option<&str>,
    format: Format,
) -> Result<(), Error> {
    let c = load(contract)?;
    let as_of = match as_of {
        Some(t) => Some(
            parse_as_of(t, c.contract().timezone)
                .map_err(|m| Error::usage(format!("--as-of: {m}")))?,
        ),
        None => None,
    };
    let result = if let Some(store) = ledger {
        let ledger = Ledger::open(&Store::parse(store)?)?;
        let source = open_source(metrics)?;
        ledger.reconcile(&c, source.as_ref(), as_of, Utc::now())?
    } else {
        let source = open_source(metrics)?;
        let issued_path = issued.ok_or_else(|| Error::usage("give --issued or --ledger"))?;
        let text = std::fs::read_to_string(issued_path)
            .map_err(|e| Error::io(issued_path.display().to_string(), e))?;
        let lines = outcome_billing::reconcile::issued_lines(
            &issued_path.display().to_string(),
            &text,
            &c.contract().id,
        )?;
        outcome_billing::reconcile::reconcile(&c, source.as_ref(), &lines, as_of)?
    };
    let rounding = c.rounding();
    let amount = |v: rust_decimal::Decimal| rounding.format(v);
    match format {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(&result.to_json()?).unwrap_or_default();
            s.push('\n');
            out!("{s}");
        }
        Format::Csv => out!("{}", result.to_csv()),
        Format::Table => {
            if result.adjustments.is_empty() {
                outln!("{}: no adjustments", c.contract().id);
            }
            for a in &result.adjustments {
                outln!(
                    "{} .. {}  {:<20} {:<10} issued {:>12}  settled {:>12}  adjustment {:>12}",
                    a.period_start,
                    a.period_end,
                    a.charge,
                    a.kind,
                    amount(a.issued),
                    amount(a.settled),
                    amount(a.amount)
                );
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// simulate, compare, sweep

/// Settlements above which a progress bar is worth showing (about half a
/// second of work).
const PROGRESS_THRESHOLD: u64 = 500_000;

/// Simulation options from the command line, with a progress bar on stderr
/// when it is a terminal and the work is long. Call the returned closure
/// when done to clear the bar.
fn run_options(args: &RunArgs) -> (SimulateOptions, impl FnOnce()) {
    let options = SimulateOptions::new().runs(args.runs).seed(args.seed);
    let bar: Arc<OnceLock<Option<ProgressBar>>> = Arc::new(OnceLock::new());
    let options = if std::io::stderr().is_terminal() {
        let cell = Arc::clone(&bar);
        options.progress(move |p| {
            let shown = cell.get_or_init(|| {
                (p.total >= PROGRESS_THRESHOLD).then(|| {
                    let b = ProgressBar::new(p.total);
                    if let Ok(style) =
                        ProgressStyle::with_template("{bar:40} {percent:>3}% settled, {eta} left")
                    {
                        b.set_style(style);
                    }
                    b
                })
            });
            if let Some(b) = shown {
                b.set_position(p.done);
            }
        })
    } else {
        options
    };
    let done = move || {
        if let Some(Some(b)) = bar.get() {
            b.finish_and_clear();
        }
    };
    (options, done)
}

/// Reads a scenario file; a missing file is a usage error like a missing
/// contract.
fn load_scenario(path: &Path) -> Result<Scenario, Error> {
    if !path.is_file() {
        return Err(Error::usage(format!(
            "no such scenario file: {}",
            path.display()
        )));
    }
    Scenario::from_path(path)
}

/// Checks `--plot` names an SVG file before any work is done.
fn check_plot(plot: Option<&Path>) -> Result<(), Error> {
    match plot {
        Some(p) if !p.extension().is_some_and(|e| e.eq_ignore_ascii_case("svg")) => Err(
            Error::usage(format!("--plot {} must name an .svg file", p.display())),
        ),
        _ => Ok(()),
    }
}

fn write_plot(
    plot: Option<&Path>,
    svg: impl FnOnce() -> Result<String, Error>,
) -> Result<(), Error> {
    if let Some(path) = plot {
        std::fs::write(path, svg()?).map_err(|e| Error::io(path.display().to_string(), e))?;
    }
    Ok(())
}

fn simulate(
    contract: &Path,
    scenario: &Path,
    args: &RunArgs,
    format: Format,
    plot: Option<&Path>,
) -> Result<(), Error> {
    check_plot(plot)?;
    let c = load(contract)?;
    let scenario = load_scenario(scenario)?;
    let (options, done) = run_options(args);
    let result = outcome_billing::simulate::simulate(&c, &scenario, &options);
    done();
    let report = result?;
    write_plot(plot, || report.chart_svg())?;
    out!(
        "{}",
        match format {
            Format::Json => report.to_json_string(),
            Format::Csv => report.to_csv(),
            Format::Table => report.to_table(),
        }
    );
    Ok(())
}

/// Loads the contracts named, in the order given (folders sorted).
fn load_all(args: &[PathBuf]) -> Result<Vec<CompiledContract>, Error> {
    contract_files(args)?.iter().map(|f| load(f)).collect()
}

/// The instant `--as-of` names for every contract (see
/// [`outcome_billing::simulate::common_instant`]); without `--as-of`, now.
fn due_at(contracts: &[CompiledContract], as_of: Option<&str>) -> Result<DateTime<Utc>, Error> {
    let Some(text) = as_of else {
        return Ok(Utc::now());
    };
    outcome_billing::simulate::common_instant(contracts, text)
        .map(|at| at.unwrap_or_else(Utc::now))
        .map_err(|e| Error::usage(format!("--as-of: {}", e.message())))
}

#[allow(clippy::too_many_arguments)]
fn compare(
    contracts: &[PathBuf],
    metrics: Option<&str>,
    scenario: Option<&Path>,
    as_of: Option<&str>,
    args: &RunArgs,
    format: Format,
    plot: Option<&Path>,
) -> Result<(), Error> {
    check_plot(plot)?;
    let contracts = load_all(contracts)?;
    let (options, done) = run_options(args);
    let result = match (metrics, scenario) {
        (Some(metrics), _) => {
            let source = open_source(metrics)?;
            let now = due_at(&contracts, as_of)?;
            outcome_billing::simulate::compare(
                &contracts,
                Basis::History(source.as_ref()),
                &options.now(now),
            )
        }
        (None, Some(scenario)) => {
            let scenario = load_scenario(scenario)?;
            outcome_billing::simulate::compare(&contracts, Basis::Scenario(&scenario), &options)
        }
        (None, None) => Err(Error::usage("compare needs --metrics or --scenario")),
    };
    done();
    let comparison = result?;
    write_plot(plot, || {
        if metrics.is_some() {
            comparison.chart_svg_with(&ChartLabels::history(as_of))
        } else {
            comparison.chart_svg()
        }
    })?;
    out!(
        "{}",
        match format {
            Format::Json => comparison.to_json_string(),
            Format::Csv => comparison.to_csv(),
            Format::Table => comparison.to_table(),
        }
    );
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn sweep(
    contracts: &[PathBuf],
    series: &str,
    (from, to, steps): (&str, &str, usize),
    metrics: Option<&str>,
    scenario: Option<&Path>,
    as_of: Option<&str>,
    args: &RunArgs,
    format: Format,
    plot: Option<&Path>,
) -> Result<(), Error> {
    check_plot(plot)?;
    let level = |flag: &str, text: &str| {
        parse_decimal(text).map_err(|m| Error::usage(format!("--{flag}: {m}")))
    };
    let spec = SweepSpec::new(series, level("from", from)?, level("to", to)?).steps(steps);
    spec.levels()?;
    let contracts = load_all(contracts)?;
    let (options, done) = run_options(args);
    let result = match (metrics, scenario) {
        (Some(metrics), _) => {
            let source = open_source(metrics)?;
            // Without --as-of a sweep runs the whole term, clock or not.
            let options = match as_of {
                Some(_) => options.now(due_at(&contracts, as_of)?),
                None => options,
            };
            outcome_billing::simulate::sweep(
                &contracts,
                &spec,
                Basis::History(source.as_ref()),
                &options,
            )
        }
        (None, scenario) => {
            let scenario = match scenario {
                Some(path) => load_scenario(path)?,
                None => Scenario::default(),
            };
            outcome_billing::simulate::sweep(
                &contracts,
                &spec,
                Basis::Scenario(&scenario),
                &options,
            )
        }
    };
    done();
    let report = result?;
    write_plot(plot, || report.chart_svg())?;
    out!(
        "{}",
        match format {
            Format::Json => report.to_json_string(),
            Format::Csv => report.to_csv(),
            Format::Table => report.to_table(),
        }
    );
    Ok(())
}
