//! Schemas in PostgreSQL: connecting, and reading and applying a
//! component's migrations.

use postgres::{Client, NoTls};

use super::{Schema, lowercase_first, redact};
use crate::error::{Error, ErrorKind, Location, Result};

const META: &str = "CREATE TABLE IF NOT EXISTS outcome_schema (
    component  TEXT PRIMARY KEY,
    version    BIGINT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)";

/// Connects to `url` (without TLS).
///
/// # Errors
/// A store error naming the URL without its password when the server is
/// unreachable or refuses the connection.
pub(crate) fn connect(url: &str) -> Result<Client> {
    Client::connect(url, NoTls).map_err(|e| {
        let name = redact(url);
        let message = format!("cannot connect to PostgreSQL: {}", describe(&e));
        pg_error(&name, e).with_message(message)
    })
}

/// The version of `schema` recorded in the database; none when it has no
/// `outcome_schema` table or no row for the component.
pub(crate) fn version(
    store: &str,
    client: &mut impl postgres::GenericClient,
    schema: &Schema,
) -> Result<Option<i64>> {
    let has_meta: bool = client
        .query_one("SELECT to_regclass('outcome_schema') IS NOT NULL", &[])
        .map_err(|e| pg_error(store, e))?
        .get(0);
    if !has_meta {
        return Ok(None);
    }
    let row = client
        .query_opt(
            "SELECT version FROM outcome_schema WHERE component = $1",
            &[&schema.component],
        )
        .map_err(|e| pg_error(store, e))?;
    Ok(row.map(|r| r.get(0)))
}

fn latest(schema: &Schema) -> i64 {
    schema.postgres.last().map_or(0, |m| m.version)
}

/// Refuses a database whose `schema` is absent, older or newer than this
/// build's.
pub(crate) fn check(store: &str, client: &mut Client, schema: &Schema) -> Result<()> {
    let latest = latest(schema);
    schema.check_version(store, version(store, client, schema)?, latest)
}

/// Applies the migrations of `schema` the database lacks, each in one
/// transaction with the row recording it, under a transaction-scoped
/// advisory lock so that two writers never apply one twice.
///
/// # Errors
/// A store error when the database is migrated further than this build
/// knows, or a migration fails.
pub(crate) fn migrate(store: &str, client: &mut Client, schema: &Schema) -> Result<()> {
    let latest = latest(schema);
    loop {
        let mut tx = client.transaction().map_err(|e| pg_error(store, e))?;
        // One lock key for every component's migrations ("outc" in ASCII).
        tx.execute("SELECT pg_advisory_xact_lock(1869968483)", &[])
            .map_err(|e| pg_error(store, e))?;
        tx.batch_execute(META).map_err(|e| pg_error(store, e))?;
        let current = version(store, &mut tx, schema)?.unwrap_or(0);
        if current > latest {
            return Err(schema.too_new(store, current, latest));
        }
        let Some(step) = schema.postgres.iter().find(|m| m.version == current + 1) else {
            return Ok(());
        };
        tx.batch_execute(step.sql).map_err(|e| {
            let message = format!(
                "migration {} of the {} schema failed: {}",
                step.version,
                schema.component,
                describe(&e)
            );
            pg_error(store, e).with_message(message)
        })?;
        tx.execute(
            "INSERT INTO outcome_schema (component, version) VALUES ($1, $2)
             ON CONFLICT (component) DO UPDATE SET version = excluded.version, applied_at = now()",
            &[&schema.component, &step.version],
        )
        .map_err(|e| pg_error(store, e))?;
        tx.commit().map_err(|e| pg_error(store, e))?;
    }
}

/// The server's message when there is one (the driver's own `Display` says
/// only "db error"), else the driver's, in lowercase.
pub(crate) fn describe(error: &postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => lowercase_first(db.message()),
        None => {
            let mut text = lowercase_first(&error.to_string());
            let mut source = std::error::Error::source(error);
            while let Some(cause) = source {
                text.push_str(": ");
                text.push_str(&cause.to_string());
                source = cause.source();
            }
            text
        }
    }
}

/// A store error naming `store` (a URL without password), with the
/// driver's error as the source.
pub(crate) fn pg_error(store: &str, error: postgres::Error) -> Error {
    let message = describe(&error);
    Error::new(
        ErrorKind::StoreUnavailable,
        Location::File(store.to_owned()),
        message,
    )
    .with_source(error)
}
