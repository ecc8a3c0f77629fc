//! The ledger in a SQLite file.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior, params};
use rust_decimal::Decimal;

use super::{
    Appended, Backend, LEDGER, NewReconciliation, NewStatement, Stamping, Stored,
    StoredReconciliation, StoredStatement,
};
use crate::error::{Error, Result};
use crate::reconcile::Adjustment;
use crate::store::sqlite::{check, db_error, migrate};

/// How long a writer waits for another's lock before it gives up.
const BUSY: Duration = Duration::from_secs(60);

pub(crate) struct SqliteLedger {
    name: String,
    connection: Connection,
}

impl SqliteLedger {
    /// Opens the file at `path`; with `create`, creates it when missing and
    /// migrates it.
    pub(crate) fn open(path: &Path, name: &str, create: bool) -> Result<SqliteLedger> {
        if !create {
            std::fs::metadata(path).map_err(|e| {
                let message = format!(
                    "cannot open the ledger: {}",
                    crate::store::lowercase_first(&e.to_string())
                );
                Error::io(name, e).with_message(message)
            })?;
        }
        let flags = if create {
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE
        } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut connection =
            Connection::open_with_flags(path, flags).map_err(|e| db_error(name, e))?;
        connection
            .busy_timeout(BUSY)
            .map_err(|e| db_error(name, e))?;
        if create {
            // Write-ahead logging lets readers go on while a run appends;
            // FULL syncs each commit, so a crash keeps every committed one.
            connection
                .pragma_update(None, "journal_mode", "WAL")
                .map_err(|e| db_error(name, e))?;
            migrate(name, &mut connection, &LEDGER)?;
        } else {
            check(name, &connection, &LEDGER)?;
        }
        connection
            .pragma_update(None, "synchronous", "FULL")
            .map_err(|e| db_error(name, e))?;
        connection
            .pragma_update(None, "foreign_keys", "ON")
            .map_err(|e| db_error(name, e))?;
        Ok(SqliteLedger {
            name: name.to_owned(),
            connection,
        })
    }
}

fn stamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.code == ErrorCode::ConstraintViolation
            && matches!(f.extended_code, rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY))
}

impl Backend for SqliteLedger {
    fn load(&mut self, contract: &str, full: bool) -> Result<Stored> {
        let name = self.name.clone();
        let bad = |what: &str, text: &str| {
            Error::data(
                &name,
                format!("contract {contract}: unreadable {what} {text:?} in the ledger"),
            )
        };
        let date = |text: String| -> Result<NaiveDate> {
            NaiveDate::parse_from_str(&text, "%Y-%m-%d").map_err(|_| bad("date", &text))
        };
        let instant = |text: String| -> Result<DateTime<Utc>> {
            DateTime::parse_from_rfc3339(&text)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| bad("time", &text))
        };
        let decimal = |text: String| -> Result<Decimal> {
            Decimal::from_str(&text).map_err(|_| bad("amount", &text))
        };
        // One read transaction: the statements and reconciliations are of
        // one moment.
        let tx = self
            .connection
            .transaction()
            .map_err(|e| db_error(&name, e))?;
        let mut statements = Vec::new();
        {
            let mut query = tx
                .prepare_cached(if full {
                    "SELECT id, period_start, version, as_of, issued_at, statement, state_after
                     FROM outcome_statements WHERE contract = ?1 ORDER BY period_start"
                } else {
                    "SELECT id, period_start, version, as_of, issued_at, '', ''
                     FROM outcome_statements WHERE contract = ?1 ORDER BY period_start"
                })
                .map_err(|e| db_error(&name, e))?;
            let mut rows = query.query([contract]).map_err(|e| db_error(&name, e))?;
            while let Some(row) = rows.next().map_err(|e| db_error(&name, e))? {
                let get = |k: usize| row.get::<_, String>(k).map_err(|e| db_error(&name, e));
                statements.push(StoredStatement {
                    id: row.get(0).map_err(|e| db_error(&name, e))?,
                    period_start: date(get(1)?)?,
                    version: get(2)?,
                    as_of: row
                        .get::<_, Option<String>>(3)
                        .map_err(|e| db_error(&name, e))?
                        .map(instant)
                        .transpose()?,
                    issued_at: instant(get(4)?)?,
                    statement: get(5)?,
                    state_after: get(6)?,
                });
            }
        }
        let mut reconciliations: Vec<StoredReconciliation> = Vec::new();
        let mut ids = Vec::new();
        {
            let mut query = tx
                .prepare_cached(
                    "SELECT id, sequence, reconciled_at
                     FROM outcome_reconciliations WHERE contract = ?1 ORDER BY sequence",
                )
                .map_err(|e| db_error(&name, e))?;
            let mut rows = query.query([contract]).map_err(|e| db_error(&name, e))?;
            while let Some(row) = rows.next().map_err(|e| db_error(&name, e))? {
                let get = |k: usize| row.get::<_, String>(k).map_err(|e| db_error(&name, e));
                ids.push(row.get::<_, i64>(0).map_err(|e| db_error(&name, e))?);
                reconciliations.push(StoredReconciliation {
                    sequence: row.get(1).map_err(|e| db_error(&name, e))?,
                    reconciled_at: instant(get(2)?)?,
                    adjustments: Vec::new(),
                });
            }
        }
        if full {
            let mut query = tx
                .prepare_cached(
                    "SELECT reconciliation_id, period_start, period_end, charge, kind, issued, settled, amount
                     FROM outcome_adjustments WHERE contract = ?1 ORDER BY reconciliation_id, position",
                )
                .map_err(|e| db_error(&name, e))?;
            let mut rows = query.query([contract]).map_err(|e| db_error(&name, e))?;
            while let Some(row) = rows.next().map_err(|e| db_error(&name, e))? {
                let get = |k: usize| row.get::<_, String>(k).map_err(|e| db_error(&name, e));
                let owner: i64 = row.get(0).map_err(|e| db_error(&name, e))?;
                let Some(k) = ids.iter().position(|&id| id == owner) else {
                    continue;
                };
                reconciliations[k].adjustments.push(Adjustment {
                    period_start: date(get(1)?)?,
                    period_end: date(get(2)?)?,
                    charge: get(3)?,
                    kind: get(4)?,
                    issued: decimal(get(5)?)?,
                    settled: decimal(get(6)?)?,
                    amount: decimal(get(7)?)?,
                });
            }
        }
        tx.finish().map_err(|e| db_error(&name, e))?;
        Ok(Stored {
            statements,
            reconciliations,
        })
    }

    fn state_after(
        &mut self,
        contract: &str,
        version: &str,
        start: NaiveDate,
    ) -> Result<Option<String>> {
        self.connection
            .prepare_cached(
                "SELECT state_after FROM (
                     SELECT state_after, 1 AS newer, sequence AS k FROM outcome_reconciliations
                     WHERE contract = ?1 AND version = ?2 AND through_start = ?3
                     UNION ALL
                     SELECT state_after, 0, 0 FROM outcome_statements
                     WHERE contract = ?1 AND version = ?2 AND period_start = ?3)
                 ORDER BY newer DESC, k DESC LIMIT 1",
            )
            .and_then(|mut q| {
                q.query_row(params![contract, version, start.to_string()], |r| r.get(0))
                    .optional()
            })
            .map_err(|e| db_error(&self.name, e))
    }

    fn append_statements(
        &mut self,
        stamping: &Stamping,
        statements: &[NewStatement],
    ) -> Result<Appended<Vec<i64>>> {
        let name = self.name.clone();
        let fail = |e| db_error(&name, e);
        let tx = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(fail)?;
        let mut ids = Vec::with_capacity(statements.len());
        for s in statements {
            let inserted = tx
                .prepare_cached(
                    "INSERT INTO outcome_statements
                     (contract, period_start, period_end, version, currency, total, statement, state_after, as_of, issued_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )
                .and_then(|mut q| {
                    q.execute(params![
                        stamping.contract,
                        s.period_start.to_string(),
                        s.period_end.to_string(),
                        stamping.version,
                        s.currency,
                        s.total.to_string(),
                        s.statement,
                        s.state_after,
                        stamping.as_of.map(stamp),
                        stamp(stamping.at),
                    ])
                });
            match inserted {
                Ok(_) => {}
                // Another run issued the period first: nothing of this
                // transaction is kept.
                Err(e) if is_unique_violation(&e) => return Ok(Appended::Conflict),
                Err(e) => return Err(fail(e)),
            }
            let id = tx.last_insert_rowid();
            let mut line = tx
                .prepare_cached(
                    "INSERT INTO outcome_statement_lines (statement_id, position, charge, kind, quantity, amount)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(fail)?;
            for (position, l) in s.lines.iter().enumerate() {
                line.execute(params![
                    id,
                    position as i64,
                    l.charge,
                    l.kind,
                    l.quantity.map(|q| q.normalize().to_string()),
                    l.amount.to_string(),
                ])
                .map_err(fail)?;
            }
            ids.push(id);
        }
        tx.commit().map_err(fail)?;
        Ok(Appended::Done(ids))
    }

    fn append_reconciliation(
        &mut self,
        stamping: &Stamping,
        r: &NewReconciliation,
    ) -> Result<Appended<()>> {
        let name = self.name.clone();
        let fail = |e| db_error(&name, e);
        let tx = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(fail)?;
        let inserted = tx.execute(
            "INSERT INTO outcome_reconciliations
             (contract, sequence, version, through_start, state_after, as_of, reconciled_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                stamping.contract,
                r.sequence,
                stamping.version,
                r.through_start.to_string(),
                r.state_after,
                stamping.as_of.map(stamp),
                stamp(stamping.at),
            ],
        );
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => return Ok(Appended::Conflict),
            Err(e) => return Err(fail(e)),
        }
        let id = tx.last_insert_rowid();
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO outcome_adjustments
                     (reconciliation_id, contract, period_start, period_end, position, charge, kind, issued, settled, amount)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )
                .map_err(fail)?;
            for (position, a) in r.adjustments.iter().enumerate() {
                insert
                    .execute(params![
                        id,
                        stamping.contract,
                        a.period_start.to_string(),
                        a.period_end.to_string(),
                        position as i64,
                        a.charge,
                        a.kind,
                        a.issued.to_string(),
                        a.settled.to_string(),
                        a.amount.to_string(),
                    ])
                    .map_err(fail)?;
            }
        }
        tx.commit().map_err(fail)?;
        Ok(Appended::Done(()))
    }
}
