//! The ledger: an append-only store of issued statements and of the
//! adjustments reconciliation finds afterwards (features `sqlite` and
//! `postgres`).
//!
//! [`Ledger::issue`] settles a contract's due periods and appends those not
//! issued before; a period already issued is skipped, never changed, so
//! issuing again is safe. [`Ledger::reconcile`] settles the issued periods
//! again with what is known now and appends one adjustment per line whose
//! amount changed, against what was issued plus every adjustment already
//! appended, so reconciling twice appends nothing.
//!
//! # What is stored
//!
//! Each issued statement is kept whole, as `settle --format json` prints it
//! (traces included), with its lines in a table of their own for SQL, the
//! contract version that settled it, what was known (`as_of`), when it was
//! issued, and the [`State`] carried into the next period. Each
//! reconciliation that found a change is kept with its adjustments and the
//! state after the last period it settled. The next `issue` starts from the
//! newest of those states when it was made by the same contract version,
//! so issuing month 12 settles month 12, not months 1 to 11 again; after a
//! contract edit it settles from the first period. Reconciliation always
//! settles every issued period again: a correction to any of them, and
//! what it carries into the later ones (year-to-date tiers, yearly caps
//! and floors, credits, high-water marks), is found.
//!
//! # Safety
//!
//! One contract's statements of one `issue`, or one reconciliation's
//! adjustments, are appended in one transaction: a crash leaves all of
//! them or none. A unique constraint on (contract, period start), not a
//! check in Rust, stops two runs from issuing one period twice; the run
//! that loses the race finds the period issued and skips it. Triggers
//! refuse every `UPDATE` and `DELETE` of issued rows.
//!
//! The schema, with its migrations, is in the repository's `migrations/`
//! folder (`sqlite/ledger/`, `postgres/ledger/`) and in `docs/ledger.md`.
//!
//! # Example
//! ```
//! # #[cfg(feature = "sqlite")] {
//! use outcome_billing::CompiledContract;
//! use outcome_billing::ledger::Ledger;
//! use outcome_billing::metric::CsvSource;
//! use outcome_billing::period::Stamp;
//! use outcome_billing::run::RunOptions;
//! use outcome_billing::store::Store;
//! let dir = tempfile::tempdir().unwrap();
//! let store = Store::Sqlite(dir.path().join("ledger.db"));
//! let ledger = Ledger::create(&store)?;
//! let contract = CompiledContract::from_path("examples/support-agent/contract.toml")?;
//! let source = CsvSource::open("examples/support-agent/metrics.csv")?;
//! // Month end: what was known on April 1 settles January to March.
//! let now = "2026-04-01T00:00:00Z".parse().unwrap();
//! let options = RunOptions::new(now).as_of(Stamp::At(now));
//! let first = ledger.issue(&contract, &source, &options)?;
//! assert_eq!(first.statements.len(), 3);
//! let again = ledger.issue(&contract, &source, &options)?;
//! assert!(again.statements.is_empty());
//! assert_eq!(again.skipped.len(), 3);
//! let reconciled = ledger.reconcile(&contract, &source, None, now)?;
//! assert!(reconciled.adjustments.is_empty());
//! # }
//! # Ok::<(), outcome_billing::Error>(())
//! ```

use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

use crate::document::{Amount, StatementDocument, StatementEntry};
use crate::error::{Error, ErrorKind, Location, Result};
use crate::metric::MetricSource;
use crate::period::Period;
use crate::reconcile::{Adjustment, IssuedLine, Reconciliation, compare};
use crate::report::ContractStatements;
use crate::run::RunOptions;
use crate::settle::{CompiledContract, SettleOptions, State, Statement};
use crate::store::{Migration, Schema, Store};

#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

/// The ledger's schema: its migrations for each database.
pub(crate) const LEDGER: Schema = Schema {
    component: "ledger",
    what: "ledger",
    create_with: "outcome issue",
    sqlite: &[Migration {
        version: 1,
        sql: include_str!("../../migrations/sqlite/ledger/0001_ledger.sql"),
    }],
    postgres: &[Migration {
        version: 1,
        sql: include_str!("../../migrations/postgres/ledger/0001_ledger.sql"),
    }],
};

/// How often one contract's append is tried again after another run
/// appended first.
const ATTEMPTS: usize = 8;

/// A statement as the ledger holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedStatement {
    /// Its number in the ledger.
    pub id: i64,
    /// The contract id.
    pub contract: String,
    /// The contract version that settled it ([`CompiledContract::version`]).
    pub version: String,
    /// When it was issued.
    pub issued_at: DateTime<Utc>,
    /// What was known when it was settled; none: everything.
    pub as_of: Option<DateTime<Utc>>,
    /// The statement, as `settle --format json` prints it.
    pub entry: StatementEntry,
    /// The state it carried into the next period.
    pub state_after: State,
}

/// An adjustment as the ledger holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedAdjustment {
    /// The reconciliation that appended it: 1, 2, … per contract.
    pub sequence: i64,
    /// When.
    pub reconciled_at: DateTime<Utc>,
    /// The adjustment.
    pub adjustment: Adjustment,
}

/// Everything a ledger holds of one contract.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct History {
    /// Issued statements, by period.
    pub statements: Vec<IssuedStatement>,
    /// Adjustments, in the order appended.
    pub adjustments: Vec<RecordedAdjustment>,
}

/// What one [`Ledger::issue`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Issued {
    /// The statements it appended, by period.
    pub statements: Vec<IssuedStatement>,
    /// The periods it found issued already and left alone.
    pub skipped: Vec<Period>,
}

impl Issued {
    /// The statements issued, as a settle document whose statements carry
    /// their `id` and `issued_at` (what `outcome issue --format json`
    /// prints).
    ///
    /// # Errors
    /// When the total overflows.
    pub fn to_document(&self, contract: &CompiledContract) -> Result<StatementDocument> {
        let scale = contract.rounding().scale;
        let mut total = Decimal::ZERO;
        for s in &self.statements {
            total = total.checked_add(s.entry.total.value()).ok_or_else(|| {
                Error::new(
                    ErrorKind::Overflow,
                    Location::None,
                    format!(
                        "{}: the issued statements' total overflows",
                        contract.contract().id
                    ),
                )
            })?;
        }
        Ok(StatementDocument {
            contract: contract.contract().id.clone(),
            currency: contract.currency(),
            statements: self.statements.iter().map(|s| s.entry.clone()).collect(),
            total: Amount::new(total, scale),
            adjustments: None,
        })
    }

    /// The statements issued, for printing as CSV rows or a table.
    ///
    /// # Errors
    /// A usage error when a statement's period is not one of `contract`'s.
    pub fn to_statements(&self, contract: &CompiledContract) -> Result<ContractStatements> {
        let statements = self
            .statements
            .iter()
            .map(|s| {
                s.entry.to_statement(contract.periods()).ok_or_else(|| {
                    Error::usage(format!(
                        "period {}..{} is not a period of contract {}",
                        s.entry.period.start,
                        s.entry.period.end,
                        contract.contract().id
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(ContractStatements {
            contract: contract.contract().id.clone(),
            currency: contract.currency(),
            rounding: contract.rounding(),
            statements,
        })
    }
}

/// A statement to append: its row and lines.
#[derive(Debug, Clone)]
pub(crate) struct NewStatement {
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    pub currency: String,
    pub total: Decimal,
    pub statement: String,
    pub lines: Vec<NewLine>,
    pub state_after: String,
}

/// A line of a [`NewStatement`].
#[derive(Debug, Clone)]
pub(crate) struct NewLine {
    pub charge: String,
    pub kind: String,
    pub quantity: Option<Decimal>,
    pub amount: Decimal,
}

/// What every appended row of one transaction shares.
#[derive(Debug, Clone)]
pub(crate) struct Stamping {
    pub contract: String,
    pub version: String,
    pub as_of: Option<DateTime<Utc>>,
    pub at: DateTime<Utc>,
}

/// A reconciliation to append.
#[derive(Debug, Clone)]
pub(crate) struct NewReconciliation {
    pub sequence: i64,
    pub through_start: NaiveDate,
    pub state_after: String,
    pub adjustments: Vec<Adjustment>,
}

/// A statement row as read back.
#[derive(Debug, Clone)]
pub(crate) struct StoredStatement {
    pub id: i64,
    pub period_start: NaiveDate,
    pub version: String,
    pub as_of: Option<DateTime<Utc>>,
    pub issued_at: DateTime<Utc>,
    pub statement: String,
    pub state_after: String,
}

/// A reconciliation row as read back, with its adjustments.
#[derive(Debug, Clone)]
pub(crate) struct StoredReconciliation {
    pub sequence: i64,
    pub reconciled_at: DateTime<Utc>,
    pub adjustments: Vec<Adjustment>,
}

/// One contract's rows.
#[derive(Debug, Clone, Default)]
pub(crate) struct Stored {
    /// By period start.
    pub statements: Vec<StoredStatement>,
    /// By sequence.
    pub reconciliations: Vec<StoredReconciliation>,
}

/// Whether an append went in, or lost a race to another run's.
#[derive(Debug)]
pub(crate) enum Appended<T> {
    Done(T),
    Conflict,
}

/// A database holding a ledger.
pub(crate) trait Backend: Send {
    /// The contract's rows; without `full`, only their keys: no statement
    /// or state text, no adjustments (what `issue` needs to skip periods).
    fn load(&mut self, contract: &str, full: bool) -> Result<Stored>;
    /// The newest state the ledger holds after the period starting on
    /// `start`, made by `version`: a reconciliation's through that period
    /// (the newest), else the statement's.
    fn state_after(
        &mut self,
        contract: &str,
        version: &str,
        start: NaiveDate,
    ) -> Result<Option<String>>;
    /// Appends `statements` in one transaction, returning their ids in
    /// order; `Conflict` (and nothing written) when one of the periods was
    /// issued meanwhile.
    fn append_statements(
        &mut self,
        stamping: &Stamping,
        statements: &[NewStatement],
    ) -> Result<Appended<Vec<i64>>>;
    /// Appends a reconciliation and its adjustments in one transaction;
    /// `Conflict` when another took its sequence number meanwhile.
    fn append_reconciliation(
        &mut self,
        stamping: &Stamping,
        reconciliation: &NewReconciliation,
    ) -> Result<Appended<()>>;
}

/// An append-only store of issued statements and adjustments (see the
/// module docs).
pub struct Ledger {
    name: String,
    backend: Mutex<Box<dyn Backend>>,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger").field("name", &self.name).finish()
    }
}

impl Ledger {
    /// Opens an existing ledger for reading and appending; creates and
    /// migrates nothing.
    ///
    /// # Errors
    /// A store error naming the store when it is missing, unreachable, not
    /// a ledger, or of another schema version.
    pub fn open(store: &Store) -> Result<Ledger> {
        Ledger::connect(store, false)
    }

    /// Opens the ledger at `store`, creating it (a SQLite file, or the
    /// tables in a PostgreSQL database) when missing and applying the
    /// migrations it lacks.
    ///
    /// # Errors
    /// A store error naming the store when it cannot be created or reached,
    /// is not a database, or a newer build migrated it.
    pub fn create(store: &Store) -> Result<Ledger> {
        Ledger::connect(store, true)
    }

    fn connect(store: &Store, create: bool) -> Result<Ledger> {
        let name = store.to_string();
        let backend: Box<dyn Backend> = match store {
            #[cfg(feature = "sqlite")]
            Store::Sqlite(path) => Box::new(sqlite::SqliteLedger::open(path, &name, create)?),
            #[cfg(feature = "postgres")]
            Store::Postgres(url) => Box::new(postgres::PostgresLedger::open(url, &name, create)?),
            #[allow(unreachable_patterns)]
            _ => {
                return Err(Error::new(
                    ErrorKind::StoreUnavailable,
                    Location::File(name.clone()),
                    "this build has no support for this kind of store (features sqlite, postgres)",
                ));
            }
        };
        Ok(Ledger {
            name,
            backend: Mutex::new(backend),
        })
    }

    /// The store's address, without password.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn backend(&self) -> MutexGuard<'_, Box<dyn Backend>> {
        // A panic while the lock was held cannot leave a transaction open:
        // each backend call commits or rolls back before it returns.
        self.backend
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Everything the ledger holds of `contract`.
    ///
    /// # Errors
    /// A store error; a data error naming the store when a row cannot be
    /// read back.
    pub fn history(&self, contract: &str) -> Result<History> {
        let stored = self.backend().load(contract, true)?;
        self.history_of(contract, &stored)
    }

    fn read_statement(&self, contract: &str, s: &StoredStatement) -> Result<IssuedStatement> {
        let bad = |what: &str, e: serde_json::Error| {
            Error::data(
                &self.name,
                format!(
                    "issued statement {} of {contract}: unreadable {what}: {e}",
                    s.id
                ),
            )
        };
        Ok(IssuedStatement {
            id: s.id,
            contract: contract.to_owned(),
            version: s.version.clone(),
            issued_at: s.issued_at,
            as_of: s.as_of,
            entry: StatementEntry {
                id: Some(s.id),
                issued_at: Some(s.issued_at),
                ..serde_json::from_str(&s.statement).map_err(|e| bad("statement", e))?
            },
            state_after: serde_json::from_str(&s.state_after).map_err(|e| bad("state", e))?,
        })
    }

    /// Settles `contract`'s periods due at `options` (or the one period
    /// `options.period` names) and appends those not issued before, in one
    /// transaction. Statements are traced whatever `options.trace` says:
    /// the ledger keeps the audit trail.
    ///
    /// # Errors
    /// A usage error when `options.period` is not a period start; a store
    /// error; settlement and data errors as
    /// [`CompiledContract::settle_next`]. Nothing is appended on error.
    pub fn issue(
        &self,
        contract: &CompiledContract,
        source: &dyn MetricSource,
        options: &RunOptions,
    ) -> Result<Issued> {
        let id = &contract.contract().id;
        let tz = contract.contract().timezone;
        let as_of = options.as_of.map(|s| s.instant(tz));
        let settle = SettleOptions { as_of, trace: true };
        let periods = contract.periods();
        source.check_versions(&contract.contract().customer, tz, as_of)?;
        let wanted: Vec<usize> = match options.period {
            Some(start) => vec![period_index(contract, start)?],
            None => match contract.last_due(source, as_of.unwrap_or(options.now), as_of)? {
                Some(last) => (0..=last).collect(),
                None => Vec::new(),
            },
        };
        for _ in 0..ATTEMPTS {
            let stored = self.backend().load(id, false)?;
            let issued: Vec<NaiveDate> = stored.statements.iter().map(|s| s.period_start).collect();
            let (skipped, todo): (Vec<usize>, Vec<usize>) = wanted
                .iter()
                .partition(|&&k| issued.contains(&periods[k].start));
            let skipped: Vec<Period> = skipped.iter().map(|&k| periods[k].clone()).collect();
            let (Some(&first), Some(&last)) = (todo.first(), todo.last()) else {
                return Ok(Issued {
                    statements: Vec::new(),
                    skipped,
                });
            };
            let mut state = self.state_before(contract, first)?;
            let mut fresh = Vec::new();
            while state.next_period <= last {
                let index = state.next_period;
                let (statement, next) = contract.settle_next(source, &state, &settle)?;
                if todo.contains(&index) {
                    fresh.push((statement, next.clone()));
                }
                state = next;
            }
            let stamping = Stamping {
                contract: id.clone(),
                version: contract.version().to_owned(),
                as_of,
                at: options.now,
            };
            let scale = contract.rounding().scale;
            let rows = fresh
                .iter()
                .map(|(s, after)| new_statement(contract, s, after, scale))
                .collect::<Result<Vec<_>>>()?;
            match self.backend().append_statements(&stamping, &rows)? {
                Appended::Done(ids) => {
                    let statements = fresh
                        .into_iter()
                        .zip(ids)
                        .map(|((statement, state_after), id)| IssuedStatement {
                            id,
                            contract: stamping.contract.clone(),
                            version: stamping.version.clone(),
                            issued_at: stamping.at,
                            as_of,
                            entry: StatementEntry {
                                id: Some(id),
                                issued_at: Some(stamping.at),
                                ..StatementEntry::new(&statement, scale)
                            },
                            state_after,
                        })
                        .collect();
                    return Ok(Issued {
                        statements,
                        skipped,
                    });
                }
                Appended::Conflict => continue,
            }
        }
        Err(self.busy(id))
    }

    /// The state to settle period `first` from: the newest state the ledger
    /// holds after period `first - 1`, when this contract version made it;
    /// else the state before the first period (settlement then carries it
    /// through the earlier periods).
    fn state_before(&self, contract: &CompiledContract, first: usize) -> Result<State> {
        let initial = contract.initial_state();
        if first == 0 {
            return Ok(initial);
        }
        let before = contract.periods()[first - 1].start;
        let text = self
            .backend()
            .state_after(&initial.contract, &initial.version, before)?;
        if let Some(state) = text.and_then(|t| serde_json::from_str::<State>(&t).ok()) {
            if state.contract == initial.contract
                && state.version == initial.version
                && state.next_period == first
            {
                return Ok(state);
            }
        }
        Ok(initial)
    }

    /// Settles every issued period of `contract` again with what is known
    /// at `as_of` (everything when none), compares with what was issued
    /// plus every adjustment appended so far, and appends the adjustments
    /// (none when nothing changed), stamped as reconciled at `now` (the
    /// library never reads the clock). Returns them with the periods
    /// settled again, as [`crate::reconcile::reconcile`] does for a
    /// document.
    ///
    /// # Errors
    /// A store error; a data error when the ledger holds no statement of
    /// the contract; a usage error when it holds one whose period is not
    /// the contract's; settlement errors. Nothing is appended on error.
    pub fn reconcile(
        &self,
        contract: &CompiledContract,
        source: &dyn MetricSource,
        as_of: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Reconciliation> {
        let id = &contract.contract().id;
        for _ in 0..ATTEMPTS {
            let stored = self.backend().load(id, true)?;
            let history = self.history_of(id, &stored)?;
            if history.statements.is_empty() {
                // As a settle document without the contract: a data error.
                return Err(Error::data(
                    &self.name,
                    format!(
                        "holds no issued statement of contract {id} (issue some with `outcome issue`)"
                    ),
                ));
            }
            let issued = issued_lines(&history);
            let mut last = 0;
            for s in &history.statements {
                last = last.max(period_of(
                    contract,
                    s.entry.period.start,
                    s.entry.period.end,
                )?);
            }
            source.check_versions(
                &contract.contract().customer,
                contract.contract().timezone,
                as_of,
            )?;
            let settle = SettleOptions { as_of, trace: true };
            let mut state = contract.initial_state();
            let mut statements = Vec::with_capacity(last + 1);
            while state.next_period <= last {
                let (statement, next) = contract.settle_next(source, &state, &settle)?;
                statements.push(statement);
                state = next;
            }
            let wanted: Vec<NaiveDate> = history
                .statements
                .iter()
                .map(|s| s.entry.period.start)
                .collect();
            statements.retain(|s| wanted.contains(&s.period.start));
            let reconciliation = compare(
                ContractStatements {
                    contract: id.clone(),
                    currency: contract.currency(),
                    rounding: contract.rounding(),
                    statements,
                },
                &issued,
            )?;
            if reconciliation.adjustments.is_empty() {
                return Ok(reconciliation);
            }
            let new = NewReconciliation {
                sequence: stored.reconciliations.last().map_or(0, |r| r.sequence) + 1,
                through_start: contract.periods()[last].start,
                state_after: to_json(&self.name, &state)?,
                adjustments: reconciliation.adjustments.clone(),
            };
            let stamping = Stamping {
                contract: id.clone(),
                version: contract.version().to_owned(),
                as_of,
                at: now,
            };
            match self.backend().append_reconciliation(&stamping, &new)? {
                Appended::Done(()) => return Ok(reconciliation),
                Appended::Conflict => continue,
            }
        }
        Err(self.busy(id))
    }

    fn history_of(&self, contract: &str, stored: &Stored) -> Result<History> {
        let statements = stored
            .statements
            .iter()
            .map(|s| self.read_statement(contract, s))
            .collect::<Result<Vec<_>>>()?;
        let adjustments = stored
            .reconciliations
            .iter()
            .flat_map(|r| {
                r.adjustments.iter().map(|a| RecordedAdjustment {
                    sequence: r.sequence,
                    reconciled_at: r.reconciled_at,
                    adjustment: a.clone(),
                })
            })
            .collect();
        Ok(History {
            statements,
            adjustments,
        })
    }

    fn busy(&self, contract: &str) -> Error {
        Error::new(
            ErrorKind::StoreUnavailable,
            Location::File(self.name.clone()),
            format!(
                "other runs kept appending to contract {contract} ({ATTEMPTS} attempts); nothing was appended, run again"
            ),
        )
    }
}

/// What was issued of each period and line, with every adjustment so far
/// as one more line of its period.
fn issued_lines(history: &History) -> Vec<IssuedLine> {
    let mut lines: Vec<IssuedLine> = history
        .statements
        .iter()
        .flat_map(|s| {
            s.entry.lines.iter().map(|l| IssuedLine {
                period_start: s.entry.period.start,
                period_end: s.entry.period.end,
                charge: l.charge.clone(),
                kind: l.kind.clone(),
                amount: l.amount.value(),
            })
        })
        .collect();
    lines.extend(history.adjustments.iter().map(|r| {
        let a = &r.adjustment;
        IssuedLine {
            period_start: a.period_start,
            period_end: a.period_end,
            charge: a.charge.clone(),
            kind: a.kind.clone(),
            amount: a.amount,
        }
    }));
    lines
}

/// The index of the period starting on `start`.
fn period_index(contract: &CompiledContract, start: NaiveDate) -> Result<usize> {
    contract
        .periods()
        .iter()
        .position(|p| p.start == start)
        .ok_or_else(|| {
            Error::usage(format!(
                "period {start} is not the start of a period of contract {}",
                contract.contract().id
            ))
        })
}

/// The index of the period `[start, end)`.
fn period_of(contract: &CompiledContract, start: NaiveDate, end: NaiveDate) -> Result<usize> {
    contract
        .periods()
        .iter()
        .position(|p| p.start == start && p.end == end)
        .ok_or_else(|| {
            Error::usage(format!(
                "issued period {start}..{end} is not a period of contract {}",
                contract.contract().id
            ))
        })
}

fn new_statement(
    contract: &CompiledContract,
    statement: &Statement,
    state_after: &State,
    scale: u32,
) -> Result<NewStatement> {
    let entry = StatementEntry::new(statement, scale);
    let name = &contract.contract().id;
    Ok(NewStatement {
        period_start: statement.period.start,
        period_end: statement.period.end,
        currency: contract.currency().code().to_owned(),
        total: entry.total.value(),
        statement: to_json(name, &entry)?,
        lines: entry
            .lines
            .iter()
            .map(|l| NewLine {
                charge: l.charge.clone(),
                kind: l.kind.clone(),
                quantity: l.quantity,
                amount: l.amount.value(),
            })
            .collect(),
        state_after: to_json(name, state_after)?,
    })
}

fn to_json<T: serde::Serialize>(name: &str, value: &T) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|e| Error::data(name, format!("cannot write JSON for the ledger: {e}")))
}
