//! A CSV metric source. SKELETON.

/// Metric data read from a CSV file.
#[derive(Debug)]
pub struct CsvSource {}
