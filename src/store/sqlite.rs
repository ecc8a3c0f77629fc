//! Schemas in SQLite: reading and applying a component's migrations.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::{Schema, lowercase_first};
use crate::error::{Error, ErrorKind, Location, Result};

const META: &str = "CREATE TABLE IF NOT EXISTS outcome_schema (
    component  TEXT PRIMARY KEY NOT NULL,
    version    INTEGER NOT NULL,
    applied_at TEXT NOT NULL
)";

/// The version of `schema` recorded in the store; none when the store has
/// no `outcome_schema` table or no row for the component.
pub(crate) fn version(
    store: &str,
    connection: &Connection,
    schema: &Schema,
) -> Result<Option<i64>> {
    let has_meta = connection
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'outcome_schema'",
            [],
            |_| Ok(()),
        )
        .optional()
        .map_err(|e| db_error(store, e))?
        .is_some();
    if !has_meta {
        return Ok(None);
    }
    connection
        .query_row(
            "SELECT version FROM outcome_schema WHERE component = ?1",
            [schema.component],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| db_error(store, e))
}

/// Refuses a store whose `schema` is absent, older or newer than this
/// build's.
pub(crate) fn check(store: &str, connection: &Connection, schema: &Schema) -> Result<()> {
    let latest = latest(schema);
    schema.check_version(store, version(store, connection, schema)?, latest)
}

fn latest(schema: &Schema) -> i64 {
    schema.sqlite.last().map_or(0, |m| m.version)
}

/// Applies the migrations of `schema` the store lacks, each in its own
/// immediate (write-locking) transaction with the row recording it, so that
/// two writers never apply one twice and a crash leaves a whole version.
///
/// # Errors
/// A store error when the store is migrated further than this build knows,
/// or a migration fails.
pub(crate) fn migrate(store: &str, connection: &mut Connection, schema: &Schema) -> Result<()> {
    let latest = latest(schema);
    loop {
        let tx = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| db_error(store, e))?;
        tx.execute_batch(META).map_err(|e| db_error(store, e))?;
        let current = version(store, &tx, schema)?.unwrap_or(0);
        if current > latest {
            return Err(schema.too_new(store, current, latest));
        }
        let Some(step) = schema.sqlite.iter().find(|m| m.version == current + 1) else {
            return Ok(());
        };
        tx.execute_batch(step.sql).map_err(|e| {
            let message = format!(
                "migration {} of the {} schema failed: {}",
                step.version,
                schema.component,
                lowercase_first(&e.to_string())
            );
            db_error(store, e).with_message(message)
        })?;
        tx.execute(
            "INSERT INTO outcome_schema (component, version, applied_at)
             VALUES (?1, ?2, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
             ON CONFLICT (component) DO UPDATE SET version = excluded.version, applied_at = excluded.applied_at",
            rusqlite::params![schema.component, step.version],
        )
        .map_err(|e| db_error(store, e))?;
        tx.commit().map_err(|e| db_error(store, e))?;
    }
}

/// A store error naming `store`: of the wrong shape when the file is not a
/// database, unavailable otherwise; the driver's error is the source.
pub(crate) fn db_error(store: &str, error: rusqlite::Error) -> Error {
    let message = lowercase_first(&error.to_string());
    let message = match error.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) => {
            format!("not a SQLite store: {message}")
        }
        _ => message,
    };
    Error::new(
        ErrorKind::StoreUnavailable,
        Location::File(store.to_owned()),
        message,
    )
    .with_source(error)
}
