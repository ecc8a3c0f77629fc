//! Billing runs: every contract of a billing backend settled at once.
//!
//! A [`BillingRun`] holds compiled contracts in the byte order of their ids
//! and settles them against one metric source, in parallel, into one
//! [`RunItem`] per contract. Two paths give the same statements:
//!
//! - [`BillingRun::settle_source`] settles each contract against any
//!   [`MetricSource`] (an in-memory source, a database). It is the
//!   reference: simple, and as fast as its source.
//! - [`BillingRun::settle_csv`] streams a metric CSV file once, in parallel,
//!   and routes each row as it is read to the aggregation state of the
//!   contracts, metrics and windows that read it. Memory is bounded by that
//!   state (one accumulator per contract, metric and window, the versions of
//!   observations that have an `id`, the distinct values of `unique_count`
//!   and the observations priced one by one), never by the file's size.
//!
//! Both apply every data rule of the format: customer match, corrections
//! by `id`, `void`, `--as-of`, dates as local midnights in each reading
//! contract's zone, and a malformed row or a conflicting tie failing every
//! contract that reads the rows.

use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::metric::MetricSource;
use crate::period::Stamp;
use crate::report::{ContractStatements, RunItem};
use crate::settle::{CompiledContract, SettleOptions, Statement};

mod acc;
mod plan;
mod stream;
mod versions;

/// What a billing run settles: which rows are known, which periods.
///
/// # Example
/// ```
/// use outcome_billing::period::Stamp;
/// use outcome_billing::run::RunOptions;
/// let options = RunOptions::new(chrono::Utc::now())
///     .as_of(Stamp::parse("2027-01-15").unwrap())
///     .trace(false);
/// assert!(!options.trace);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOptions {
    /// Ignore rows recorded after this stamp (a date is local midnight in
    /// each contract's zone), and settle the periods ended by it. None:
    /// read every row and judge periods against `now`.
    pub as_of: Option<Stamp>,
    /// The current time, which decides the periods that have ended when
    /// `as_of` is none. The library never reads the clock.
    pub now: DateTime<Utc>,
    /// Settle only the period starting on this local date (the earlier
    /// periods are settled only to carry their state). None: every period
    /// due.
    pub period: Option<NaiveDate>,
    /// Write a trace on every line.
    pub trace: bool,
}

impl RunOptions {
    /// Options for a run at `now`: every row read, every due period, traces
    /// on.
    pub fn new(now: DateTime<Utc>) -> RunOptions {
        RunOptions {
            as_of: None,
            now,
            period: None,
            trace: true,
        }
    }

    /// The same options, reading what was known at `as_of`.
    pub fn as_of(mut self, as_of: Stamp) -> RunOptions {
        self.as_of = Some(as_of);
        self
    }

    /// The same options, settling only the period starting on `start`.
    pub fn period(mut self, start: NaiveDate) -> RunOptions {
        self.period = Some(start);
        self
    }

    /// The same options, with traces on or off.
    pub fn trace(mut self, on: bool) -> RunOptions {
        self.trace = on;
        self
    }

    /// The as-of instant for a contract in time zone `tz`.
    fn as_of_in(&self, tz: chrono_tz::Tz) -> Option<DateTime<Utc>> {
        self.as_of.map(|s| s.instant(tz))
    }
}

/// Contracts settled together against one source: a month-end billing run.
///
/// # Example
/// ```
/// use outcome_billing::{CompiledContract, Contract};
/// use outcome_billing::period::Stamp;
/// use outcome_billing::report::RunItem;
/// use outcome_billing::run::{BillingRun, RunOptions};
/// let contract = Contract::from_toml_str(r#"
///     format = 1
///     id = "demo"
///     customer = "acme"
///     currency = "USD"
///     start = "2026-01-01"
///     end = "2026-03-01"
///     cadence = "monthly"
///     [metrics.resolutions]
///     series = "resolved"
///     aggregate = "sum"
///     [[charges]]
///     id = "per_resolution"
///     kind = "unit"
///     quantity = "resolutions"
///     unit_price = "0.99"
/// "#)?;
/// let run = BillingRun::new(vec![CompiledContract::new(contract)?])?;
/// let dir = tempfile::tempdir().unwrap();
/// let data = dir.path().join("metrics.csv");
/// std::fs::write(&data, "customer,series,timestamp,value\nacme,resolved,2026-01-05,1000\n").unwrap();
/// let options = RunOptions::new(chrono::Utc::now()).as_of(Stamp::parse("2026-03-01").unwrap());
/// let items = run.settle_csv(&data, &options);
/// let RunItem::Settled(settled) = &items[0] else { panic!("settled") };
/// assert_eq!(settled.statements[0].total.to_string(), "990.00");
/// # Ok::<(), outcome_billing::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct BillingRun {
    /// Sorted by the byte order of their ids; ids are distinct.
    contracts: Vec<CompiledContract>,
}

impl BillingRun {
    /// A run of `contracts`, which are put in the byte order of their ids.
    ///
    /// # Errors
    /// A usage error when two contracts have the same id.
    pub fn new(mut contracts: Vec<CompiledContract>) -> Result<BillingRun> {
        contracts.par_sort_unstable_by(|a, b| {
            a.contract().id.as_bytes().cmp(b.contract().id.as_bytes())
        });
        if let Some(pair) = contracts
            .windows(2)
            .find(|p| p[0].contract().id == p[1].contract().id)
        {
            return Err(Error::usage(format!(
                "two contracts have the id {}",
                pair[0].contract().id
            )));
        }
        Ok(BillingRun { contracts })
    }

    /// The contracts, in the byte order of their ids.
    pub fn contracts(&self) -> &[CompiledContract] {
        &self.contracts
    }

    /// Settles every contract against `source`, in parallel; one item per
    /// contract, in the byte order of the ids.
    pub fn settle_source(&self, source: &dyn MetricSource, options: &RunOptions) -> Vec<RunItem> {
        self.contracts
            .par_iter()
            .map(|c| item(c, settle_against(c, source, options)))
            .collect()
    }

    /// Streams the metric CSV file at `path` once and settles every
    /// contract; one item per contract, in the byte order of the ids. The
    /// same statements as [`BillingRun::settle_source`] on a [`CsvSource`]
    /// of the same file, with memory bounded by the aggregation state.
    ///
    /// A file that cannot be read, or a malformed row anywhere in it, fails
    /// every contract; a conflicting tie between versions fails the
    /// contracts that read those rows.
    ///
    /// [`CsvSource`]: crate::metric::CsvSource
    pub fn settle_csv(&self, path: impl AsRef<Path>, options: &RunOptions) -> Vec<RunItem> {
        let mut items = Vec::with_capacity(self.contracts.len());
        // Collecting into a Vec cannot fail.
        let _ = self.settle_csv_with(
            path.as_ref(),
            options,
            |item| item,
            |item| {
                items.push(item);
                Ok(())
            },
        );
        items
    }

    /// As [`BillingRun::settle_csv`], for output larger than memory: each
    /// contract's item is turned into a `T` by `map` (in parallel: format it
    /// there) and handed to `emit` in the byte order of the ids, as soon as
    /// it and every contract before it are settled.
    ///
    /// # Errors
    /// The first error `emit` returns; the run stops there.
    pub fn settle_csv_with<T: Send>(
        &self,
        path: &Path,
        options: &RunOptions,
        map: impl Fn(RunItem) -> T + Sync,
        mut emit: impl FnMut(T) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        stream::settle_csv(self, path, options, &map, &mut emit)
    }
}

/// A contract's statements as a run item.
fn item(c: &CompiledContract, result: Result<Vec<Statement>>) -> RunItem {
    match result {
        Ok(statements) => RunItem::Settled(ContractStatements {
            contract: c.contract().id.clone(),
            currency: c.currency(),
            rounding: c.rounding(),
            statements,
        }),
        Err(error) => RunItem::Failed {
            contract: c.contract().id.clone(),
            error,
        },
    }
}

/// One contract's statements of a run: the due periods, or the one asked
/// for (with the state of the earlier ones carried).
fn settle_against(
    c: &CompiledContract,
    source: &dyn MetricSource,
    options: &RunOptions,
) -> Result<Vec<Statement>> {
    let as_of = options.as_of_in(c.contract().timezone);
    let settle = SettleOptions {
        as_of,
        trace: options.trace,
    };
    match options.period {
        Some(start) => {
            let index = c
                .periods()
                .iter()
                .position(|p| p.start == start)
                .ok_or_else(|| {
                    Error::usage(format!(
                        "period {start} is not the start of a period of contract {}",
                        c.contract().id
                    ))
                })?;
            let mut all = c.settle_through(source, index, &settle)?;
            Ok(all.split_off(index))
        }
        None => c.settle_due(source, as_of.unwrap_or(options.now), &settle),
    }
}
