//! Period-to-date pricing in the parts of a period cut by a mid-period
//! amendment: `tiered` with `accumulate = "period"` and `package` price the
//! quantity of the parts so far, so a change of price mid-period neither
//! grants an allowance twice nor starts a package afresh.

use rust_decimal::Decimal;

use super::kind::PriceContext;
use crate::error::R;
use crate::period::Part;

/// The line of a part: `round(A(Y)) - round(A(Y - q))`, where `q` is the
/// part's quantity, `Y` the quantity of the parts so far including this
/// one, and `A` (`amount_of`, `None` on overflow) the amount under the
/// part's own terms; in the first part the second term is 0. Updates the
/// charge's period-to-date quantity to `Y` and marks the amount rounded.
///
/// Kept out of line: only cut periods come here, and the kinds' common
/// path stays as small as it was.
#[inline(never)]
pub(crate) fn priced<P: PriceContext>(
    cx: &mut P,
    part: Part,
    quantity: Decimal,
    amount_of: &dyn Fn(Decimal) -> Option<Decimal>,
) -> R<Decimal> {
    let first = part.is_first();
    let before = if first {
        Decimal::ZERO
    } else {
        *cx.period_to_date()?
    };
    let y = before.checked_add(quantity).ok_or_else(|| cx.overflow())?;
    let r = cx.rounding();
    let a_y = r.round(amount_of(y).ok_or_else(|| cx.overflow())?);
    let a_before = if first {
        Decimal::ZERO
    } else {
        r.round(amount_of(before).ok_or_else(|| cx.overflow())?)
    };
    *cx.period_to_date()? = y;
    let (number, count) = (part.number + 1, part.count);
    cx.trace(
        || format!("part {number} of {count} of a cut period: quantity of the earlier parts"),
        before,
    );
    cx.trace(|| "period to date Y = earlier parts + quantity q".into(), y);
    cx.trace(|| "round(A(Y)) under this part's terms".into(), a_y);
    cx.trace(
        || {
            if first {
                "round(A(Y - q)): 0 in the period's first part".into()
            } else {
                "round(A(Y - q)) under this part's terms".into()
            }
        },
        a_before,
    );
    let v = a_y.checked_sub(a_before).ok_or_else(|| cx.overflow())?;
    cx.trace_text(|| "round(A(Y)) - round(A(Y - q))".into(), || r.format(v));
    cx.set_rounded();
    Ok(r.round(v))
}
