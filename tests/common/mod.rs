//! What several integration tests share: a PostgreSQL server to test
//! against, when there is one.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};

/// The URL of the PostgreSQL server the tests use: `OUTCOME_TEST_POSTGRES`.
/// Without it, prints one line saying how to run them and returns none;
/// but when `OUTCOME_REQUIRE_POSTGRES=1` (as `.ci/run` sets), a missing
/// server fails the test instead of skipping it.
pub fn postgres_url(test: &str) -> Option<String> {
    match std::env::var("OUTCOME_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("OUTCOME_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                panic!("{test}: OUTCOME_REQUIRE_POSTGRES=1 but OUTCOME_TEST_POSTGRES is not set");
            }
            eprintln!(
                "skipping {test}: set OUTCOME_TEST_POSTGRES=postgres://… to run it \
                 (`export OUTCOME_TEST_POSTGRES=$(bash .ci/start-postgres)` starts a server)"
            );
            None
        }
    }
}

/// A fresh, empty database on the server of `url`, for one test: its URL.
pub fn fresh_database(url: &str, test: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "t_{}_{}_{}",
        test.replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let mut client = postgres::Client::connect(url, postgres::NoTls)
        .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
    // One statement each: CREATE DATABASE cannot run inside a transaction.
    for sql in [
        format!("DROP DATABASE IF EXISTS {name}"),
        format!("CREATE DATABASE {name}"),
    ] {
        client.batch_execute(&sql).unwrap_or_else(|e| {
            panic!(
                "{sql}: {}",
                e.as_db_error()
                    .map_or(e.to_string(), |d| d.message().to_owned())
            )
        });
    }
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let root = match base.rfind('/') {
        Some(k) if k > base.find("://").map_or(0, |s| s + 2) => &base[..k],
        _ => base,
    };
    format!("{root}/{name}{query}")
}
