//! Limit kinds: one file each, and the table that registers them.
//!
//! A limit acts on the rounded lines of some charges (its *base*) over a
//! period, contract year or term. Each kind's module holds its formula and
//! trace; evaluation (`settle::eval`) works out the base, the amount and
//! the running total, and writes the line.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

mod cap;
mod credit;
mod floor;

/// What a limit kind's formula reads for one period.
pub(crate) struct Terms<'r> {
    /// Period, contract year or term.
    pub scope: Scope,
    /// The limit's amount, rounded like a line.
    pub amount: Decimal,
    /// The sum of the lines the limit acts on.
    pub base: Decimal,
    /// The scope's running total (or credit drawn) before this period; the
    /// formula sets it to the total after it.
    pub running: &'r mut Decimal,
    /// Whether this period is the last of the limit's scope.
    pub last: &'r dyn Fn() -> bool,
}

/// The registration table: one line per limit kind,
/// `Variant = "name" => module`, whose module has
/// `fn line(Terms, describe) -> Option<Decimal>` (`None` on overflow). It
/// makes the public [`LimitKind`] enum, its name and the dispatch.
macro_rules! limits {
    ($( $(#[doc = $doc:literal])* $variant:ident = $name:literal => $module:ident, )*) => {
        /// The kinds of limit.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum LimitKind {
            $( $(#[doc = $doc])* #[serde(rename = $name)] $variant, )*
        }

        impl LimitKind {
            /// The kind's name as written in contract files and statements.
            pub(crate) fn name(self) -> &'static str {
                match self {
                    $( LimitKind::$variant => $name, )*
                }
            }

            /// The limit's line for the period; `None` on overflow.
            /// `describe` receives the formula's steps.
            #[inline(always)]
            pub(crate) fn line(
                self,
                terms: Terms<'_>,
                describe: &mut impl FnMut(&dyn Fn() -> String, Decimal),
            ) -> Option<Decimal> {
                match self {
                    $( LimitKind::$variant => $module::line(terms, describe), )*
                }
            }
        }
    };
}

limits! {
    /// A maximum.
    Cap = "cap" => cap,
    /// A minimum (commitment), trued up.
    Floor = "floor" => floor,
    /// A prepaid balance drawn down.
    Credit = "credit" => credit,
}

/// Over what a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Each period alone.
    Period,
    /// Each contract year.
    ContractYear,
    /// The whole term.
    Term,
}
