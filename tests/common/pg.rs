//! The PostgreSQL server of the tests, shared by the unit tests (through
//! `#[path]`) and the integration tests.
//!
//! `OUTCOME_TEST_POSTGRES` holds the server's URL (`bash .ci/start-postgres`
//! starts one and prints it). Without it a test that needs the server
//! prints one line and passes, unless `OUTCOME_REQUIRE_POSTGRES=1` (CI)
//! makes it fail.

#![allow(dead_code)]

use std::env;

/// The server's URL, or none (after saying so) when no server is set and
/// none is required.
///
/// # Panics
/// When `OUTCOME_REQUIRE_POSTGRES=1` and `OUTCOME_TEST_POSTGRES` is unset.
pub fn server() -> Option<String> {
    match env::var("OUTCOME_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                env::var("OUTCOME_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "OUTCOME_REQUIRE_POSTGRES=1 but OUTCOME_TEST_POSTGRES is unset: \
                 export OUTCOME_TEST_POSTGRES=\"$(bash .ci/start-postgres)\""
            );
            println!(
                "skipping: set OUTCOME_TEST_POSTGRES=postgres://… (bash .ci/start-postgres starts a server)"
            );
            None
        }
    }
}

/// A URL of the server whose objects live in a new, empty schema named
/// after `test` (dropped first if a previous run left it), so that tests
/// run in parallel without seeing each other's tables; none as
/// [`server`].
///
/// # Panics
/// When the server cannot be reached or the schema cannot be made.
pub fn fresh(test: &str) -> Option<String> {
    let url = server()?;
    let schema: String = format!("test_{test}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    let mut client = postgres::Client::connect(&url, postgres::NoTls)
        .unwrap_or_else(|e| panic!("cannot reach the test server {url}: {e}"));
    client
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema};"
        ))
        .unwrap_or_else(|e| panic!("cannot make schema {schema}: {e}"));
    let separator = if url.contains('?') { '&' } else { '?' };
    Some(format!("{url}{separator}options=-csearch_path%3D{schema}"))
}

/// A client of the store at `url` (as [`fresh`] gives it), for checking
/// what a test wrote.
///
/// # Panics
/// When the server cannot be reached.
pub fn client(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls)
        .unwrap_or_else(|e| panic!("cannot reach the test server: {e}"))
}
