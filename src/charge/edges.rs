//! Band edges known at load: the rule `bands` and `corridor` share, that
//! constant edges make ranges that do not overlap.

use rust_decimal::Decimal;

use super::kind::Rules;
use crate::error::{Error, Result};
use crate::expr::Expr;

/// One end of a band: none, a known value, or an expression's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Edge {
    Open,
    At(Decimal),
    Unknown,
}

/// The edge `expr` (at `path`) gives: open without one, its value when it
/// is a constant, unknown until settlement otherwise.
pub(crate) fn edge(rules: &Rules<'_>, path: &str, expr: Option<&Expr>) -> Result<Edge> {
    Ok(match expr {
        None => Edge::Open,
        Some(e) => rules
            .contract
            .constant(path, e)?
            .map_or(Edge::Unknown, Edge::At),
    })
}

/// A band's range for messages: `[0.8, 0.9)`, `[0.8, ∞)`, `(-∞, 0.9)`.
fn range_text(from: Edge, to: Edge) -> String {
    let low = match from {
        Edge::At(v) => format!("[{v}"),
        _ => "(-∞".to_string(),
    };
    let high = match to {
        Edge::At(v) => format!("{v})"),
        _ => "∞)".to_string(),
    };
    format!("{low}, {high}")
}

/// Checks `from < to` for each range and that no two known ranges overlap.
/// `ranges[j]` is the band at `{at}.bands[j]`.
pub(crate) fn no_overlap(at: &str, ranges: &[(Edge, Edge)]) -> Result<()> {
    for (j, &(from, to)) in ranges.iter().enumerate() {
        if let (Edge::At(low), Edge::At(high)) = (from, to) {
            if high <= low {
                return Err(Error::contract(
                    format!("{at}.bands[{j}].to"),
                    format!("to {high} is not greater than from {low}"),
                ));
            }
        }
    }
    for (k, &(from_k, to_k)) in ranges.iter().enumerate() {
        for (j, &(from_j, to_j)) in ranges.iter().enumerate().take(k) {
            if [from_k, to_k, from_j, to_j].contains(&Edge::Unknown) {
                continue;
            }
            // Two half-open ranges overlap when the greater start is below
            // the smaller end; an open start is -∞ and an open end ∞.
            let start = match (from_j, from_k) {
                (Edge::At(a), Edge::At(b)) => Some(a.max(b)),
                (Edge::At(a), _) | (_, Edge::At(a)) => Some(a),
                _ => None,
            };
            let end = match (to_j, to_k) {
                (Edge::At(a), Edge::At(b)) => Some(a.min(b)),
                (Edge::At(a), _) | (_, Edge::At(a)) => Some(a),
                _ => None,
            };
            let overlap = match (start, end) {
                (Some(s), Some(e)) => s < e,
                _ => true,
            };
            if overlap {
                return Err(Error::contract(
                    format!("{at}.bands[{k}]"),
                    format!(
                        "bands must not overlap: {} overlaps bands[{j}] {}",
                        range_text(from_k, to_k),
                        range_text(from_j, to_j)
                    ),
                ));
            }
        }
    }
    Ok(())
}
