//! `cap`: a maximum on the base, per period or on a running total.

use rust_decimal::Decimal;

use super::{Scope, Terms};

/// `min(0, amount - base)` in a period scope; over a year or the term, what
/// is left of the amount after the running total, never taking back more
/// than a positive base.
#[inline(always)]
pub(super) fn line(
    t: Terms<'_>,
    describe: &mut impl FnMut(&dyn Fn() -> String, Decimal),
) -> Option<Decimal> {
    let zero = Decimal::ZERO;
    let Terms {
        scope,
        amount,
        base,
        running,
        ..
    } = t;
    if scope == Scope::Period {
        let line = amount.checked_sub(base)?.min(zero);
        describe(&|| "min(0, amount - base)".into(), line);
        return Some(line);
    }
    let before = *running;
    describe(&|| "running total C before this period".into(), before);
    let room = amount.checked_sub(before)?.checked_sub(base)?;
    let line = room.max(-base.max(zero)).min(zero);
    describe(
        &|| "min(0, max(amount - C - base, -max(base, 0)))".into(),
        line,
    );
    *running = before.checked_add(base)?.checked_add(line)?;
    Some(line)
}
