//! An in-memory metric source. SKELETON.

/// Observations held in memory, indexed by customer and series.
#[derive(Debug, Default)]
pub struct MemorySource {}
