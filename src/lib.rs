#![doc = include_str!("../README.md")]
//!
//! # Glossary
//!
//! - **Contract**: the file format's whole document ([`Contract`]); compiled
//!   for settlement as a [`CompiledContract`].
//! - **Metric**: one series of the metric data reduced to a value per window
//!   (`sum`, `mean`, `unique_count`, …). Data comes from a [`MetricSource`].
//! - **KPI**: a named [`Expr`](expr::Expr) over params, metrics, baselines and KPIs.
//! - **Baseline**: what an outcome is measured against (fixed, historical
//!   mean, expression, high-water mark).
//! - **Charge**: one line of every statement (unit, tiered, gain share, …).
//! - **Limit**: a cap, floor or prepaid credit acting on charges' lines over
//!   a period, contract year or term; it adds a line only where it acts.
//! - **Period**: a half-open `[start, end)` of local dates ([`Period`](period::Period)); a
//!   **stub** is a period shorter than the full period it is cut from.
//! - **Statement**: a period's lines and total ([`Statement`]); each
//!   [`Line`] carries a **trace** of its inputs and steps.
//! - **State**: what one period carries to the next ([`State`]):
//!   year-to-date quantities, limits' running totals, high-water marks.
//! - **Adjustment**: the difference between an issued statement and the same
//!   period settled again with corrected data.
//!
//! # Where things are
//!
//! The crate root holds what every embedding program uses: [`Contract`],
//! [`CompiledContract`], [`SettleOptions`], [`State`], [`Statement`],
//! [`Line`], [`MetricSource`] and [`Error`]. The rest is in modules:
//!
//! | module | what it holds |
//! |---|---|
//! | [`contract`] | the contract format's types, every charge kind's fields, [`contract::shape`] limits |
//! | [`charge`] | [`charge::ChargeRule`]: charge kinds defined in Rust |
//! | [`expr`] | expressions: parsing, compiling, evaluating |
//! | [`metric`] | metric sources: in memory, CSV, SQLite (feature `sqlite`) |
//! | [`period`] | periods, schedules, instants and as-of times |
//! | [`money`] | currencies, rounding, exact decimal parsing |
//! | [`settle`] | the fast path's [`settle::Amounts`] and a trace's [`settle::Step`] |
//! | [`run`] | [`run::BillingRun`]: many contracts against one metric file |
//! | [`report`] | statements as JSON, CSV and tables, and the statement document |
//! | [`reconcile`] | issued statements settled again, as adjustments |
//! | [`store`] | database stores' addresses and versioned schemas |
//! | `ledger` | the append-only ledger of issued statements (features `sqlite`, `postgres`) |
//! | [`simulate`] | what-if: simulate, compare, sweep (feature `simulate`) |
//!
//! The user reference of the contract format, the metric data and the
//! command line is in the repository's `docs/` folder.
//!
//! # Untrusted input
//!
//! Contract files, expressions and metric rows are untrusted: every bad
//! input is an [`Error`] that says what is wrong and where (a field path, or
//! `FILE:LINE:COLUMN`), never a panic. Expressions nest at most 64 levels;
//! terms hold at most [`PERIODS_MAX`](period::PERIODS_MAX) periods; arithmetic that overflows a
//! decimal is an error. Money never passes through a binary float.
//!
//! # Features
//!
//! Without default features the library settles, runs and reconciles;
//! `simulate` and `yaml` (both on with the default `cli`) add simulation
//! and YAML contracts, as the table above says.
#![deny(missing_docs)]

pub mod charge;
pub mod contract;
mod document;
mod error;
pub mod expr;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub mod ledger;
mod limit;
pub mod metric;
pub mod money;
pub mod period;
pub mod reconcile;
pub mod report;
pub mod run;
pub mod settle;
#[cfg(feature = "simulate")]
pub mod simulate;
pub mod store;
mod text;

pub use contract::Contract;
pub use error::{Error, ErrorKind, Location, Result};
pub use metric::MetricSource;
pub use settle::{CompiledContract, GroupLine, Line, SettleOptions, State, Statement};
