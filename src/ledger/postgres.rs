//! The ledger in a PostgreSQL database.

use chrono::NaiveDate;
use postgres::error::SqlState;
use postgres::{Client, Transaction};
use rust_decimal::Decimal;

use super::{
    Appended, Backend, LEDGER, NewReconciliation, NewStatement, Stamping, Stored,
    StoredReconciliation, StoredStatement,
};
use crate::error::Result;
use crate::reconcile::Adjustment;
use crate::store::postgres::{check, connect, migrate, pg_error};

pub(crate) struct PostgresLedger {
    name: String,
    client: Client,
}

impl PostgresLedger {
    /// Connects to `url`; with `create`, creates the ledger's tables when
    /// missing and migrates them.
    pub(crate) fn open(url: &str, name: &str, create: bool) -> Result<PostgresLedger> {
        let mut client = connect(url)?;
        if create {
            migrate(name, &mut client, &LEDGER)?;
        } else {
            check(name, &mut client, &LEDGER)?;
        }
        Ok(PostgresLedger {
            name: name.to_owned(),
            client,
        })
    }
}

/// Column `k` of `row`: a store error, never a panic, when a ledger's
/// table does not hold what its schema version promises.
fn col<'a, T: postgres::types::FromSql<'a>>(
    store: &str,
    row: &'a postgres::Row,
    k: usize,
) -> Result<T> {
    row.try_get(k).map_err(|e| pg_error(store, e))
}

fn is_unique_violation(e: &postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

impl Backend for PostgresLedger {
    fn load(&mut self, contract: &str, full: bool) -> Result<Stored> {
        let name = self.name.clone();
        let fail = |e| pg_error(&name, e);
        // One snapshot: the statements and reconciliations are of one moment.
        let mut tx = self
            .client
            .build_transaction()
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(fail)?;
        let statements = tx
            .query(
                if full {
                    "SELECT id, period_start, version, as_of, issued_at, statement::text, state_after::text
                     FROM outcome_statements WHERE contract = $1 ORDER BY period_start"
                } else {
                    "SELECT id, period_start, version, as_of, issued_at, '', ''
                     FROM outcome_statements WHERE contract = $1 ORDER BY period_start"
                },
                &[&contract],
            )
            .map_err(fail)?
            .iter()
            .map(|r| {
                Ok(StoredStatement {
                    id: col(&name, r, 0)?,
                    period_start: col(&name, r, 1)?,
                    version: col(&name, r, 2)?,
                    as_of: col(&name, r, 3)?,
                    issued_at: col(&name, r, 4)?,
                    statement: col(&name, r, 5)?,
                    state_after: col(&name, r, 6)?,
                })
            })
            .collect::<Result<_>>()?;
        let mut ids: Vec<i64> = Vec::new();
        let mut reconciliations: Vec<StoredReconciliation> = tx
            .query(
                "SELECT id, sequence, reconciled_at
                 FROM outcome_reconciliations WHERE contract = $1 ORDER BY sequence",
                &[&contract],
            )
            .map_err(fail)?
            .iter()
            .map(|r| {
                ids.push(col(&name, r, 0)?);
                Ok(StoredReconciliation {
                    sequence: i64::from(col::<i32>(&name, r, 1)?),
                    reconciled_at: col(&name, r, 2)?,
                    adjustments: Vec::new(),
                })
            })
            .collect::<Result<_>>()?;
        let adjustments = if full {
            tx.query(
                "SELECT reconciliation_id, period_start, period_end, charge, kind, issued, settled, amount
                 FROM outcome_adjustments WHERE contract = $1 ORDER BY reconciliation_id, position",
                &[&contract],
            )
            .map_err(fail)?
        } else {
            Vec::new()
        };
        for r in &adjustments {
            let owner: i64 = col(&name, r, 0)?;
            let Some(k) = ids.iter().position(|&id| id == owner) else {
                continue;
            };
            reconciliations[k].adjustments.push(Adjustment {
                period_start: col(&name, r, 1)?,
                period_end: col(&name, r, 2)?,
                charge: col(&name, r, 3)?,
                kind: col(&name, r, 4)?,
                issued: col(&name, r, 5)?,
                settled: col(&name, r, 6)?,
                amount: col(&name, r, 7)?,
            });
        }
        tx.commit().map_err(fail)?;
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
        let row = self
            .client
            .query_opt(
                "SELECT state_after::text FROM (
                     SELECT state_after, 1 AS newer, sequence AS k FROM outcome_reconciliations
                     WHERE contract = $1 AND version = $2 AND through_start = $3
                     UNION ALL
                     SELECT state_after, 0, 0 FROM outcome_statements
                     WHERE contract = $1 AND version = $2 AND period_start = $3) AS known
                 ORDER BY newer DESC, k DESC LIMIT 1",
                &[&contract, &version, &start],
            )
            .map_err(|e| pg_error(&self.name, e))?;
        row.map(|r| col(&self.name, &r, 0)).transpose()
    }

    fn append_statements(
        &mut self,
        stamping: &Stamping,
        statements: &[NewStatement],
    ) -> Result<Appended<Vec<i64>>> {
        let name = self.name.clone();
        let fail = |e| pg_error(&name, e);
        let mut tx = self.client.transaction().map_err(fail)?;
        let mut ids = Vec::with_capacity(statements.len());
        for s in statements {
            match insert_statement(&mut tx, stamping, s) {
                Ok(id) => ids.push(id),
                // Another run issued the period first: the transaction is
                // dropped, rolled back, and nothing of it is kept.
                Err(e) if is_unique_violation(&e) => return Ok(Appended::Conflict),
                Err(e) => return Err(fail(e)),
            }
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
        let fail = |e| pg_error(&name, e);
        let mut tx = self.client.transaction().map_err(fail)?;
        let sequence = i32::try_from(r.sequence).unwrap_or(i32::MAX);
        let inserted = tx.query_one(
            "INSERT INTO outcome_reconciliations
             (contract, sequence, version, through_start, state_after, as_of, reconciled_at)
             VALUES ($1, $2, $3, $4, $5::text::jsonb, $6, $7) RETURNING id",
            &[
                &stamping.contract,
                &sequence,
                &stamping.version,
                &r.through_start,
                &r.state_after,
                &stamping.as_of,
                &stamping.at,
            ],
        );
        let id: i64 = match inserted {
            Ok(row) => col(&name, &row, 0)?,
            Err(e) if is_unique_violation(&e) => return Ok(Appended::Conflict),
            Err(e) => return Err(fail(e)),
        };
        let insert = tx
            .prepare(
                "INSERT INTO outcome_adjustments
                 (reconciliation_id, contract, period_start, period_end, position, charge, kind, issued, settled, amount)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .map_err(fail)?;
        for (position, a) in r.adjustments.iter().enumerate() {
            let position = i32::try_from(position).unwrap_or(i32::MAX);
            tx.execute(
                &insert,
                &[
                    &id,
                    &stamping.contract,
                    &a.period_start,
                    &a.period_end,
                    &position,
                    &a.charge,
                    &a.kind,
                    &a.issued,
                    &a.settled,
                    &a.amount,
                ],
            )
            .map_err(fail)?;
        }
        tx.commit().map_err(fail)?;
        Ok(Appended::Done(()))
    }
}

fn insert_statement(
    tx: &mut Transaction<'_>,
    stamping: &Stamping,
    s: &NewStatement,
) -> std::result::Result<i64, postgres::Error> {
    let row = tx.query_one(
        "INSERT INTO outcome_statements
         (contract, period_start, period_end, version, currency, total, statement, state_after, as_of, issued_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb, $8::text::jsonb, $9, $10) RETURNING id",
        &[
            &stamping.contract,
            &s.period_start,
            &s.period_end,
            &stamping.version,
            &s.currency,
            &s.total,
            &s.statement,
            &s.state_after,
            &stamping.as_of,
            &stamping.at,
        ],
    )?;
    let id: i64 = row.try_get(0)?;
    let insert = tx.prepare(
        "INSERT INTO outcome_statement_lines (statement_id, position, charge, kind, quantity, amount)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )?;
    for (position, l) in s.lines.iter().enumerate() {
        let position = i32::try_from(position).unwrap_or(i32::MAX);
        let quantity: Option<Decimal> = l.quantity;
        tx.execute(
            &insert,
            &[&id, &position, &l.charge, &l.kind, &quantity, &l.amount],
        )?;
    }
    Ok(id)
}
