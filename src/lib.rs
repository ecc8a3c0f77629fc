#![doc = include_str!("../README.md")]
//!
//! # Glossary
//!
//! - **Contract**: the file format's whole document ([`Contract`]); compiled
//!   for settlement as a [`CompiledContract`].
//! - **Metric**: one series of the metric data reduced to a value per window
//!   (`sum`, `mean`, `unique_count`, …). Data comes from a [`MetricSource`].
//! - **KPI**: a named [`Expr`] over params, metrics, baselines and KPIs.
//! - **Baseline**: what an outcome is measured against (fixed, historical
//!   mean, expression, high-water mark).
//! - **Charge**: one line of every statement (unit, tiered, gain share, …).
//! - **Limit**: a cap, floor or prepaid credit acting on charges' lines over
//!   a period, contract year or term; it adds a line only where it acts.
//! - **Period**: a half-open `[start, end)` of local dates ([`Period`]); a
//!   **stub** is a period shorter than the full period it is cut from.
//! - **Statement**: a period's lines and total ([`Statement`]); each
//!   [`Line`] carries a **trace** of its inputs and steps.
//! - **State**: what one period carries to the next ([`State`]):
//!   year-to-date quantities, limits' running totals, high-water marks.
//! - **Adjustment**: the difference between an issued statement and the same
//!   period settled again with corrected data.
//!
//! # Untrusted input
//!
//! Contract files, expressions and metric rows are untrusted: every bad
//! input is an [`Error`] that says what is wrong and where (a field path, or
//! `FILE:LINE:COLUMN`), never a panic. Expressions nest at most 64 levels;
//! terms hold at most [`PERIODS_MAX`] periods; arithmetic that overflows a
//! decimal is an error. Money never passes through a binary float.
//!
//! # Features
//!
//! Without default features the library settles, runs and reconciles;
//! `simulate` and `yaml` (both on with the default `cli`) add simulation
//! and YAML contracts, as the table above says.
#![deny(missing_docs)]

mod charge;
mod contract;
mod document;
mod error;
mod expr;
mod limit;
mod metric;
mod money;
mod period;
mod reconcile;
mod report;
mod run;
mod settle;
#[cfg(feature = "simulate")]
mod simulate;

pub use charge::{ChargeContext, ChargeRule, CustomCharge};
pub use contract::*;
pub use document::{
    AdjustmentEntry, Amount, LineEntry, PeriodEntry, RunDocument, RunEntry, StatementDocument,
    StatementEntry,
};
pub use error::{Error, ErrorKind, Location, Result};
pub use expr::{Compiled, Env, EvalError, Expr, ExprError};
pub use metric::{
    Aggregate, CsvSource, MemorySource, MetricSource, Observation, Query, Reduced, reduce,
};
#[cfg(feature = "sqlite")]
pub use metric::{SqliteSource, import_csv, import_observations};
pub use money::{Currency, Money, Rounding, RoundingMode, parse_decimal};
pub use period::{
    Cadence, PERIODS_MAX, Period, Schedule, Stamp, add_months, lay, local_midnight, parse_as_of,
};
pub use reconcile::{Adjustment, IssuedLine, Reconciliation, issued_lines, reconcile};
pub use report::{
    CSV_HEADER, ContractStatements, RunFormat, RunItem, RunWriter, run_csv, run_json, run_table,
};
pub use run::{BillingRun, RunOptions};
pub use settle::{Amounts, CompiledContract, Line, SettleOptions, State, Statement, Step};
#[cfg(feature = "simulate")]
pub use simulate::{
    Basis, BreakEven, ChartLabels, Comparison, DECIMALS_DEFAULT, DECIMALS_MAX, Difference, Model,
    PeriodSummary, Progress, ProgressFn, RUNS_DEFAULT, STEPS_DEFAULT, STEPS_MAX, Scenario,
    ScenarioFrame, ScenarioSource, SimulateOptions, SimulationReport, Stats, Summary, SweepLevel,
    SweepReport, SweepSpec, compare, simulate, sweep,
};
