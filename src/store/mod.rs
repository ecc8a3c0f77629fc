//! Database stores: their addresses (`sqlite:PATH`, `postgres://…`) and the
//! versioned schemas the metric stores and the ledger keep in them.
//!
//! Every database this crate writes holds one bookkeeping table,
//!
//! ```sql
//! CREATE TABLE outcome_schema (
//!     component  TEXT PRIMARY KEY,   -- 'metrics' or 'ledger'
//!     version    INTEGER NOT NULL,   -- the last migration applied
//!     applied_at TEXT NOT NULL       -- when, RFC 3339 in UTC
//! );
//! ```
//!
//! and, per component, the tables its migrations create. The migrations
//! are SQL files in the repository's `migrations/` folder, numbered from 1
//! and applied in order, each in the transaction that records its number.
//! A writer (`outcome import`, `outcome issue`) migrates a store to the
//! newest version this build knows; a reader refuses a store that lacks
//! the component, or that a newer build has migrated further, with an
//! error naming the store and both versions, and writes nothing.

// Without a database feature, only the addresses are used.
#![cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]

use std::fmt;
use std::path::PathBuf;

use crate::error::{Error, ErrorKind, Location, Result};

#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) mod pool;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;

/// Where a store is: a SQLite file or a PostgreSQL database.
///
/// # Example
/// ```
/// use outcome_billing::store::Store;
/// let s = Store::parse("postgres://billing:secret@db.internal/ledger")?;
/// assert_eq!(s.to_string(), "postgres://billing:***@db.internal/ledger");
/// assert_eq!(Store::parse("sqlite:ledger.db")?, Store::Sqlite("ledger.db".into()));
/// assert!(Store::parse("ledger.db").is_err());
/// # Ok::<(), outcome_billing::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Store {
    /// `sqlite:PATH`: a SQLite database file.
    Sqlite(PathBuf),
    /// `postgres://…` or `postgresql://…`: a PostgreSQL connection URL.
    Postgres(String),
}

impl Store {
    /// Reads a store address: `sqlite:PATH`, or a `postgres://` (or
    /// `postgresql://`) URL.
    ///
    /// # Errors
    /// A usage error for anything else, or `sqlite:` without a path.
    pub fn parse(spec: &str) -> Result<Store> {
        if let Some(path) = spec.strip_prefix("sqlite:") {
            if path.is_empty() {
                return Err(Error::usage("sqlite: needs a path, as sqlite:ledger.db"));
            }
            return Ok(Store::Sqlite(PathBuf::from(path)));
        }
        if Store::is_postgres(spec) {
            return Ok(Store::Postgres(spec.to_owned()));
        }
        Err(Error::usage(format!(
            "{spec:?} is not a store: expected sqlite:PATH or a postgres:// URL"
        )))
    }

    /// Whether `spec` is a PostgreSQL URL.
    pub fn is_postgres(spec: &str) -> bool {
        spec.starts_with("postgres://") || spec.starts_with("postgresql://")
    }

    /// Whether `spec` names a database store rather than a file.
    pub fn is_store(spec: &str) -> bool {
        spec.starts_with("sqlite:") || Store::is_postgres(spec)
    }
}

/// The address as it may be shown: a URL's password is `***`.
impl fmt::Display for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Store::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            Store::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

/// `url` without its password, for messages.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// One numbered step of a component's schema.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    /// Its number: 1, 2, … in order.
    pub version: i64,
    /// The SQL that takes the schema from `version - 1` to `version`.
    pub sql: &'static str,
}

/// A component's schema: its name in `outcome_schema` and its migrations
/// for each database.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Schema {
    /// `metrics` or `ledger`.
    pub component: &'static str,
    /// What a store of this component is called in messages.
    pub what: &'static str,
    /// The command that creates one, for messages.
    pub create_with: &'static str,
    /// SQLite's migrations, in order.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub sqlite: &'static [Migration],
    /// PostgreSQL's migrations, in order.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub postgres: &'static [Migration],
}

impl Schema {
    /// Checks a store's recorded `version` (none: the component is absent)
    /// against `latest`, the newest this build knows.
    pub(crate) fn check_version(
        &self,
        store: &str,
        version: Option<i64>,
        latest: i64,
    ) -> Result<()> {
        match version {
            None => Err(Error::new(
                ErrorKind::StoreUnavailable,
                Location::File(store.to_owned()),
                format!(
                    "not a {} (no {} schema; create one with `{}`)",
                    self.what, self.component, self.create_with
                ),
            )),
            Some(v) if v > latest => Err(self.too_new(store, v, latest)),
            Some(v) if v < latest => Err(Error::new(
                ErrorKind::StoreUnavailable,
                Location::File(store.to_owned()),
                format!(
                    "the {} is at schema version {v}; this build reads version {latest} (migrate it with `{}`)",
                    self.what, self.create_with
                ),
            )),
            Some(_) => Ok(()),
        }
    }

    /// A store migrated further than this build knows.
    pub(crate) fn too_new(&self, store: &str, version: i64, latest: i64) -> Error {
        Error::new(
            ErrorKind::StoreUnavailable,
            Location::File(store.to_owned()),
            format!(
                "the {} is at schema version {version}, newer than this build knows ({latest}): use a newer outcome",
                self.what
            ),
        )
    }
}

/// A message from a database driver, starting in lowercase as the crate's
/// messages do.
pub(crate) fn lowercase_first(message: &str) -> String {
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact("postgres://u:p@h:5432/db?sslmode=disable"),
            "postgres://u:***@h:5432/db?sslmode=disable"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
        assert_eq!(
            redact("postgresql://u:p:q@h/d@x"),
            "postgresql://u:***@h/d@x"
        );
    }

    #[test]
    fn addresses() {
        assert!(Store::parse("sqlite:").is_err());
        assert_eq!(
            Store::parse("postgresql://h/db").unwrap(),
            Store::Postgres("postgresql://h/db".into())
        );
        assert!(Store::is_store("sqlite:x"));
        assert!(!Store::is_store("x.csv"));
    }
}
