//! `credit`: a prepaid balance drawn down by the base.

use rust_decimal::Decimal;

use super::Terms;

/// `-min(balance, max(base, 0))`, the balance being what is left of the
/// amount after the credit drawn earlier in the scope.
#[inline(always)]
pub(super) fn line(
    t: Terms<'_>,
    describe: &mut impl FnMut(&dyn Fn() -> String, Decimal),
) -> Option<Decimal> {
    let zero = Decimal::ZERO;
    let Terms {
        amount,
        base,
        running,
        ..
    } = t;
    let before = *running;
    let balance = amount.checked_sub(before)?.max(zero);
    describe(&|| "credit drawn earlier in the scope".into(), before);
    describe(&|| "balance: max(0, amount - drawn)".into(), balance);
    let line = -(balance.min(base.max(zero)));
    describe(&|| "-min(balance, max(base, 0))".into(), line);
    *running = before.checked_sub(line)?;
    Some(line)
}
