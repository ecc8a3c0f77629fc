//! outcome-billing: settle contracts whose charges depend on outcomes.
#![deny(missing_docs)]

mod charge;
mod contract;
mod error;
mod expr;
mod metric;
mod money;
mod period;
mod report;
mod settle;

pub use charge::{ChargeContext, ChargeRule, CustomCharge};
pub use contract::*;
pub use error::{Error, Result};
pub use expr::{Compiled, Env, EvalError, Expr, ExprError};
pub use metric::{
    Aggregate, CsvSource, MemorySource, MetricSource, Observation, Query, Reduced, reduce,
};
pub use money::{Currency, Money, Rounding, RoundingMode, parse_decimal};
pub use period::{
    Cadence, PERIODS_MAX, Period, Schedule, Stamp, add_months, lay, local_midnight, parse_as_of,
};
pub use report::{ContractStatements, RunItem, run_csv, run_json, run_table};
pub use settle::{Amounts, CompiledContract, Line, SettleOptions, State, Statement, Step};
