//! Amendments: dot paths, cumulative application, versions in force. SKELETON.

use chrono::NaiveDate;

use super::Contract;

/// The contract as in force from `effective` on (all amendments up to it
/// applied).
#[derive(Debug, Clone, PartialEq)]
pub struct Version {
    /// The first day this version is in force (the term start for the first).
    pub effective: NaiveDate,
    /// The contract with the amendments applied.
    pub contract: Contract,
}
