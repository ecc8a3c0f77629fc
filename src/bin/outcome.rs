//! The `outcome` command line: validate, settle, simulate, compare and
//! sweep outcome-based contracts. Thin over the `outcome_billing` library.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::{NaiveDate, Utc};
use clap::{Parser, Subcommand, ValueEnum};
use outcome_billing::{
    CompiledContract, Contract, ContractStatements, CsvSource, Error, MetricSource, RunItem,
    SettleOptions, parse_as_of, run_csv, run_json, run_table,
};

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
        /// Metric data: a CSV file or `sqlite:PATH`.
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
        /// Metric data: a CSV file or `sqlite:PATH`.
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
    /// Append the rows of a metric CSV file to a store.
    Import {
        /// The metric CSV file.
        data: PathBuf,
        /// The store: `sqlite:PATH` (created if missing) or a `postgres://` URL.
        #[arg(long)]
        into: String,
    },
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
        } => {
            match reconcile(
                &contract,
                &metrics,
                issued.as_deref(),
                ledger.as_deref(),
                as_of.as_deref(),
                format,
            ) {
                Ok(()) => 0,
                Err(e) => {
                    report(&e);
                    e.exit_code()
                }
            }
        }
        Command::Import { data, into } => match import(&data, &into) {
            Ok(()) => 0,
            Err(e) => {
                report(&e);
                e.exit_code()
            }
        },
    };
    ExitCode::from(code as u8)
}

/// Prints an error on stderr: the sentence, then where.
fn report(error: &Error) {
    eprintln!("error: {}", error.message());
    let at = error.location();
    if !at.is_empty() {
        eprintln!("  at {at}");
    }
}

/// The contract files named: files as given, folders' contract files sorted.
fn contract_files(args: &[PathBuf]) -> Result<Vec<PathBuf>, Error> {
    let mut files = Vec::new();
    for arg in args {
        if arg.is_dir() {
            let entries = std::fs::read_dir(arg).map_err(|e| Error::Io {
                path: arg.display().to_string(),
                message: e.to_string(),
            })?;
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
    let contract = Contract::from_path(path)?;
    CompiledContract::new(contract).map_err(|e| e.in_file(path.display().to_string()))
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

fn validate(args: &[PathBuf]) -> i32 {
    let files = match contract_files(args) {
        Ok(f) => f,
        Err(e) => {
            report(&e);
            return e.exit_code();
        }
    };
    let mut status = 0;
    for file in files {
        match load(&file) {
            Ok(c) => println!(
                "{}: ok ({} periods, {} charges, {} limits)",
                c.contract().id,
                c.periods().len(),
                c.contract().charges.len(),
                c.contract().limits.len()
            ),
            Err(e) => {
                report(&e);
                status = status.max(e.exit_code());
            }
        }
    }
    status
}

fn open_source(spec: &str) -> Result<Box<dyn MetricSource>, Error> {
    if let Some(path) = spec.strip_prefix("sqlite:") {
        return open_sqlite(path);
    }
    if is_postgres(spec) {
        return Err(Error::Io {
            path: spec.split('@').next_back().unwrap_or(spec).to_string(),
            message:
                "database metric sources are not supported by this build; export the data to CSV"
                    .into(),
        });
    }
    Ok(Box::new(CsvSource::open(spec)?))
}

fn is_postgres(spec: &str) -> bool {
    spec.starts_with("postgres://") || spec.starts_with("postgresql://")
}

#[cfg(feature = "sqlite")]
fn open_sqlite(path: &str) -> Result<Box<dyn MetricSource>, Error> {
    Ok(Box::new(outcome_billing::SqliteSource::open(path)?))
}

#[cfg(not(feature = "sqlite"))]
fn open_sqlite(path: &str) -> Result<Box<dyn MetricSource>, Error> {
    Err(no_sqlite(path))
}

#[cfg(not(feature = "sqlite"))]
fn no_sqlite(path: &str) -> Error {
    Error::Io {
        path: path.to_string(),
        message: "this build has no SQLite support (build with the sqlite feature)".into(),
    }
}

/// `import DATA.csv --into STORE`.
fn import(data: &Path, into: &str) -> Result<(), Error> {
    if let Some(path) = into.strip_prefix("sqlite:") {
        #[cfg(feature = "sqlite")]
        {
            let n = outcome_billing::import_csv(data, path)?;
            println!("imported {n} rows into {path}");
            return Ok(());
        }
        #[cfg(not(feature = "sqlite"))]
        {
            let _ = data;
            return Err(no_sqlite(path));
        }
    }
    if is_postgres(into) {
        return Err(Error::Io {
            path: into.split('@').next_back().unwrap_or(into).to_string(),
            message: "this build has no PostgreSQL support".into(),
        });
    }
    Err(Error::usage(format!(
        "--into {into:?} is not a store: expected sqlite:PATH or a postgres:// URL"
    )))
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
            return e.exit_code();
        }
    };
    let several = files.len() > 1 || args.iter().any(|a| a.is_dir());
    let period = match period.map(|p| NaiveDate::parse_from_str(p, "%Y-%m-%d")) {
        None => None,
        Some(Ok(d)) => Some(d),
        Some(Err(_)) => {
            let e = Error::usage(format!(
                "--period {:?} is not a date (YYYY-MM-DD)",
                period.unwrap_or_default()
            ));
            report(&e);
            return 2;
        }
    };
    if let Some(t) = as_of {
        if let Err(m) = parse_as_of(t, chrono_tz::UTC) {
            report(&Error::usage(format!("--as-of: {m}")));
            return 2;
        }
    }

    // Load every contract first: two files with one id stop the whole run.
    let mut status = 0;
    let mut loaded: Vec<(PathBuf, Result<CompiledContract, Error>)> = Vec::new();
    let mut ids: BTreeMap<String, PathBuf> = BTreeMap::new();
    for file in files {
        let result = load(&file);
        let id = match &result {
            Ok(c) => Some(c.contract().id.clone()),
            Err(_) => id_of(&file),
        };
        if let Some(id) = id {
            if let Some(other) = ids.insert(id.clone(), file.clone()) {
                let e = Error::usage(format!(
                    "two contract files have the id {id}: {} and {}; nothing was settled",
                    other.display(),
                    file.display()
                ));
                report(&e);
                return 2;
            }
        }
        loaded.push((file, result));
    }

    let source = match open_source(metrics) {
        Ok(s) => Some(s),
        Err(e) => {
            report(&e);
            status = status.max(e.exit_code());
            None
        }
    };

    let now = Utc::now();
    let mut items = Vec::new();
    for (file, result) in loaded {
        let item = match result {
            Err(e) => {
                report(&e);
                status = status.max(e.exit_code());
                RunItem::Failed {
                    contract: id_of(&file).unwrap_or_else(|| file.display().to_string()),
                    error: e,
                }
            }
            Ok(c) => match &source {
                None => continue,
                Some(source) => match settle_one(&c, source.as_ref(), period, as_of, now) {
                    Ok(statements) => RunItem::Settled(ContractStatements {
                        contract: c.contract().id.clone(),
                        currency: c.currency(),
                        rounding: c.rounding(),
                        statements,
                    }),
                    Err(e) => {
                        report(&e);
                        status = status.max(e.exit_code());
                        RunItem::Failed {
                            contract: c.contract().id.clone(),
                            error: e,
                        }
                    }
                },
            },
        };
        items.push(item);
    }
    if source.is_none() {
        return status;
    }
    items.sort_by(|a, b| a.contract().as_bytes().cmp(b.contract().as_bytes()));
    // One contract that failed has said so on stderr; stdout stays empty
    // rather than holding a document without statements.
    if !several && items.iter().all(|i| matches!(i, RunItem::Failed { .. })) {
        return status;
    }
    let out = match format {
        Format::Json => match run_json(&items, several) {
            Ok(s) => s,
            Err(e) => {
                report(&e);
                return 1;
            }
        },
        Format::Csv => run_csv(&items),
        Format::Table => run_table(&items),
    };
    print!("{out}");
    status
}

fn settle_one(
    c: &CompiledContract,
    source: &dyn MetricSource,
    period: Option<NaiveDate>,
    as_of: Option<&str>,
    now: chrono::DateTime<Utc>,
) -> Result<Vec<outcome_billing::Statement>, Error> {
    let tz = c.contract().timezone;
    let as_of = match as_of {
        Some(t) => Some(parse_as_of(t, tz).map_err(|m| Error::usage(format!("--as-of: {m}")))?),
        None => None,
    };
    let options = SettleOptions { as_of, trace: true };
    match period {
        Some(start) => {
            let index = c
                .periods()
                .iter()
                .position(|p| p.start == start)
                .ok_or_else(|| {
                    Error::usage(format!(
                        "--period {start} is not the start of a period of contract {}",
                        c.contract().id
                    ))
                })?;
            let mut all = c.settle_through(source, index, &options)?;
            Ok(all.split_off(index))
        }
        None => c.settle_due(source, as_of.unwrap_or(now), &options),
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
    if let Some(store) = ledger {
        return Err(Error::Io {
            path: store.split('@').next_back().unwrap_or(store).to_string(),
            message:
                "ledger stores are not supported by this build; use --issued with a settle document"
                    .into(),
        });
    }
    let source = open_source(metrics)?;
    let issued_path = issued.ok_or_else(|| Error::usage("give --issued or --ledger"))?;
    let text = std::fs::read_to_string(issued_path).map_err(|e| Error::Io {
        path: issued_path.display().to_string(),
        message: e.to_string(),
    })?;
    let lines =
        outcome_billing::issued_lines(&issued_path.display().to_string(), &text, &c.contract().id)?;
    let as_of = match as_of {
        Some(t) => Some(
            parse_as_of(t, c.contract().timezone)
                .map_err(|m| Error::usage(format!("--as-of: {m}")))?,
        ),
        None => None,
    };
    let result = outcome_billing::reconcile(&c, source.as_ref(), &lines, as_of)?;
    let rounding = c.rounding();
    let amount = |v: rust_decimal::Decimal| rounding.format(v);
    match format {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(&result.to_json()?).unwrap_or_default();
            s.push('\n');
            print!("{s}");
        }
        Format::Csv => {
            println!("contract,period_start,period_end,charge,kind,issued,settled,amount");
            for a in &result.adjustments {
                println!(
                    "{},{},{},{},{},{},{},{}",
                    csv_field(&c.contract().id),
                    a.period_start,
                    a.period_end,
                    csv_field(&a.charge),
                    csv_field(&a.kind),
                    amount(a.issued),
                    amount(a.settled),
                    amount(a.amount)
                );
            }
        }
        Format::Table => {
            if result.adjustments.is_empty() {
                println!("{}: no adjustments", c.contract().id);
            }
            for a in &result.adjustments {
                println!(
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

/// A CSV field, quoted when it holds a comma, quote or line break.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}
