//! `floor`: a minimum (commitment), per period or trued up in the scope's
//! last period.

use rust_decimal::Decimal;

use super::{Scope, Terms};

/// `max(0, amount - base)` in a period scope; over a year or the term, 0
/// until the scope's last period, which trues up to the amount.
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
        last,
    } = t;
    if scope == Scope::Period {
        let line = amount.checked_sub(base)?.max(zero);
        describe(&|| "max(0, amount - base)".into(), line);
        return Some(line);
    }
    let before = *running;
    describe(&|| "running total C before this period".into(), before);
    let line = if last() {
        let room = amount.checked_sub(before)?.checked_sub(base)?;
        let line = room.max(zero);
        describe(
            &|| "true-up in the scope's last period: max(0, amount - C - base)".into(),
            line,
        );
        line
    } else {
        zero
    };
    *running = before.checked_add(base)?.checked_add(line)?;
    Some(line)
}
