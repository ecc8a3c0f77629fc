//! The `outcome` command line.
fn main() {}
