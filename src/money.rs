//! Money: currencies, rounding, and the strict decimal syntax of the formats.

use std::fmt;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// An ISO 4217 currency, with its minor units.
///
/// # Example
/// ```
/// use outcome_billing::money::Currency;
/// let usd: Currency = "USD".parse()?;
/// assert_eq!(usd.code(), "USD");
/// assert_eq!(usd.minor_units(), Some(2));
/// assert_eq!("JPY".parse::<Currency>()?.minor_units(), Some(0));
/// # Ok::<(), outcome_billing::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency(iso_currency::Currency);

impl Currency {
    /// The three-letter code.
    pub fn code(&self) -> &'static str {
        self.0.code()
    }

    /// The number of minor-unit digits (2 for USD, 0 for JPY), or `None`
    /// for codes that have none defined (gold, special drawing rights).
    pub fn minor_units(&self) -> Option<u32> {
        self.0.exponent().map(u32::from)
    }
}

impl FromStr for Currency {
    type Err = Error;

    fn from_str(code: &str) -> Result<Currency> {
        iso_currency::Currency::from_code(code)
            .map(Currency)
            .ok_or_else(|| {
                Error::usage(format!(
                    "unknown currency {code:?}: expected an ISO 4217 code"
                ))
            })
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Currency, D::Error> {
        let code = String::deserialize(d)?;
        iso_currency::Currency::from_code(&code)
            .map(Currency)
            .ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "unknown currency {code:?}: expected an ISO 4217 code"
                ))
            })
    }
}

/// How a value is rounded to a scale. The names are the contract format's.
///
/// For negative amounts the modes mirror positive ones: under `HalfUp`,
/// −1.005 becomes −1.01.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoundingMode {
    /// Ties to the even digit (banker's rounding). The default.
    #[default]
    HalfEven,
    /// Ties away from zero.
    HalfUp,
    /// Ties toward zero.
    HalfDown,
    /// Away from zero.
    Up,
    /// Toward zero (truncate).
    Down,
    /// Toward +∞.
    Ceiling,
    /// Toward −∞.
    Floor,
}

impl RoundingMode {
    fn strategy(self) -> RoundingStrategy {
        match self {
            RoundingMode::HalfEven => RoundingStrategy::MidpointNearestEven,
            RoundingMode::HalfUp => RoundingStrategy::MidpointAwayFromZero,
            RoundingMode::HalfDown => RoundingStrategy::MidpointTowardZero,
            RoundingMode::Up => RoundingStrategy::AwayFromZero,
            RoundingMode::Down => RoundingStrategy::ToZero,
            RoundingMode::Ceiling => RoundingStrategy::ToPositiveInfinity,
            RoundingMode::Floor => RoundingStrategy::ToNegativeInfinity,
        }
    }
}

/// A scale and a mode: how every line of a contract is rounded, once.
///
/// # Example
/// ```
/// use outcome_billing::money::{Rounding, RoundingMode};
/// use rust_decimal::Decimal;
/// let r = Rounding::new(2, RoundingMode::HalfUp);
/// assert_eq!(r.round("-1.005".parse::<Decimal>().unwrap()).to_string(), "-1.01");
/// assert_eq!(r.format("3".parse::<Decimal>().unwrap()), "3.00");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rounding {
    /// Decimal places kept.
    pub scale: u32,
    /// How the dropped digits are rounded.
    pub mode: RoundingMode,
}

impl Rounding {
    /// A rounding to `scale` places with `mode`.
    pub fn new(scale: u32, mode: RoundingMode) -> Rounding {
        Rounding { scale, mode }
    }

    /// `value` rounded to this scale and mode, carried at exactly this scale
    /// (so `3` becomes `3.00`) and never a negative zero.
    #[inline(always)]
    pub fn round(&self, value: Decimal) -> Decimal {
        // Most lines are at the scale already: a look at the flags settles
        // it without handing the whole value to `round_dp`.
        if value.scale() == self.scale && !value.is_zero() {
            return value;
        }
        round_dp(value, self.scale, self.mode)
    }

    /// The rounded value as text with exactly `scale` places.
    pub fn format(&self, value: Decimal) -> String {
        format_scaled(self.round(value), self.scale)
    }
}

/// `value` rounded to `scale` places with `mode`, carried at exactly that
/// scale where the coefficient allows, and never a negative zero.
///
/// Settlement rounds every line, so the common cases (already at the
/// scale, or short of it by a few zeros) take integer shortcuts that give
/// the same decimal, scale included, as rust_decimal's general routines.
#[inline]
pub(crate) fn round_dp(value: Decimal, scale: u32, mode: RoundingMode) -> Decimal {
    let mut rounded = if value.scale() > scale {
        value.round_dp_with_strategy(scale, mode.strategy())
    } else {
        value
    };
    if rounded.scale() < scale {
        rounded = with_scale(rounded, scale);
    }
    if rounded.is_zero() {
        rounded.set_sign_positive(true);
    }
    rounded
}

/// `value` (of a scale below `scale`) with trailing zeros up to `scale`;
/// when the coefficient cannot hold them all, the value with as many as fit.
fn with_scale(value: Decimal, scale: u32) -> Decimal {
    let shift = scale - value.scale();
    let coefficient = value.mantissa().unsigned_abs();
    // A coefficient of 64 bits times a power of ten of 64 bits is one
    // machine multiplication, and cannot overflow 128 bits.
    let widened = match (u64::try_from(coefficient), 10u64.checked_pow(shift)) {
        (Ok(c), Some(p)) => Some(u128::from(c) * u128::from(p)),
        _ => POW10
            .get(shift as usize)
            .and_then(|p| coefficient.checked_mul(p.unsigned_abs())),
    }
    // No decimal has more than 28 places: past that, `rescale` below.
    .filter(|m| *m <= COEFFICIENT_MAX && scale <= MAX_SCALE);
    match widened {
        Some(m) => {
            // Each part is 32 bits of a coefficient below 2^96: the casts
            // keep exactly those bits.
            Decimal::from_parts(
                m as u32,
                (m >> 32) as u32,
                (m >> 64) as u32,
                value.is_sign_negative(),
                scale,
            )
        }
        None => {
            // `rescale` only adds trailing zeros here; when the coefficient
            // (or the greatest scale) cannot hold them it keeps the value
            // and a smaller scale.
            let mut d = value;
            d.rescale(scale);
            d
        }
    }
}

/// The greatest scale a decimal has.
const MAX_SCALE: u32 = 28;

/// Powers of ten by exponent, up to the greatest scale a decimal has (28).
const POW10: [i128; 29] = {
    let mut p = [1i128; 29];
    let mut i = 1;
    while i < p.len() {
        p[i] = p[i - 1] * 10;
        i += 1;
    }
    p
};

/// The sum of `values` as adding them in turn with `checked_add` gives it
/// (value and scale), except that it is never a negative zero. `None` when
/// that overflows a decimal.
///
/// Statement totals and limit bases add a handful of amounts of one scale
/// every period; doing it in one 128-bit integer spares the per-add
/// realignment of decimals. Where an operand or a partial sum does not fit
/// 96 bits (where `checked_add` starts rounding), the values are added in
/// turn with `checked_add` itself.
///
/// Always inlined: the sums of a period are of a few amounts, and the call
/// and the iterator it is handed cost more than the sum. (The compiler
/// stopped inlining it into the settlement loop as that loop grew; the
/// call cost a simulated period about 2%.)
#[inline(always)]
pub(crate) fn checked_sum<I>(values: I) -> Option<Decimal>
where
    I: IntoIterator,
    I::Item: std::borrow::Borrow<Decimal>,
    I::IntoIter: Clone,
{
    use std::borrow::Borrow;
    let mut values = values.into_iter();
    let mut probe = values.clone();
    if let (Some(only), None) = (probe.next(), probe.next()) {
        // One value (a metric's window of one period) is its own sum.
        let mut sum = *only.borrow();
        if sum.is_zero() {
            sum.set_sign_positive(true);
        }
        return Some(sum);
    }
    exact_sum(values.clone()).or_else(|| {
        values
            .try_fold(Decimal::ZERO, |sum, v| sum.checked_add(*v.borrow()))
            .map(|mut sum| {
                if sum.is_zero() {
                    sum.set_sign_positive(true);
                }
                sum
            })
    })
}

/// Adding in turn, in one `i128`: `None` as soon as an aligned operand or
/// a partial sum needs more than 96 bits, where `checked_add` would start
/// rounding.
fn exact_sum<D: std::borrow::Borrow<Decimal>>(values: impl Iterator<Item = D>) -> Option<Decimal> {
    let fits = |m: i128| (m.unsigned_abs() <= COEFFICIENT_MAX).then_some(m);
    let mut scale = 0u32;
    let mut sum: i128 = 0;
    for v in values {
        let v = v.borrow();
        let (s, mut m) = (v.scale(), v.mantissa());
        if sum == 0 {
            // `checked_add` gives the other operand as it is when one side
            // is zero: a zero sum takes on the value, scale included.
            (sum, scale) = (m, s);
            continue;
        }
        if m == 0 {
            // And a zero added leaves the sum as it is, whatever its scale.
            continue;
        }
        if s > scale {
            sum = fits(sum.checked_mul(*POW10.get((s - scale) as usize)?)?)?;
            scale = s;
        } else if s < scale {
            m = fits(m.checked_mul(*POW10.get((scale - s) as usize)?)?)?;
        }
        sum = fits(sum.checked_add(m)?)?;
    }
    Decimal::try_from_i128_with_scale(sum, scale).ok()
}

/// Text of `value` with exactly `scale` decimal places and no `-0`.
///
/// Pads the decimal's own text with zeros rather than using a formatting
/// precision, which rust_decimal cannot honour past 32 characters.
pub(crate) fn format_scaled(value: Decimal, scale: u32) -> String {
    let mut v = value;
    if v.scale() > scale {
        v = v.round_dp_with_strategy(scale, RoundingStrategy::MidpointNearestEven);
    }
    if v.is_zero() {
        v.set_sign_positive(true);
    }
    let mut text = v.to_string();
    let have = text.split_once('.').map_or(0, |(_, f)| f.len());
    if scale > 0 && have == 0 {
        text.push('.');
    }
    for _ in have..scale as usize {
        text.push('0');
    }
    text
}

/// A value normalised for display: no trailing zeros, no exponent, no `-0`.
pub(crate) fn format_normalized(value: Decimal) -> String {
    let mut v = value.normalize();
    if v.is_zero() {
        v = Decimal::ZERO;
    }
    v.to_string()
}

/// An amount of money in one currency.
///
/// Arithmetic across currencies is an error, never a silent conversion.
///
/// # Example
/// ```
/// use outcome_billing::money::Money;
/// let a = Money::new("10.00".parse().unwrap(), "USD".parse()?);
/// let parts = a.allocate(&[1, 1, 1])?;
/// let sum: Vec<String> = parts.iter().map(|m| m.amount().to_string()).collect();
/// assert_eq!(sum, ["3.34", "3.33", "3.33"]);
/// # Ok::<(), outcome_billing::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    amount: Decimal,
    currency: Currency,
}

impl Money {
    /// `amount` of `currency`.
    pub fn new(amount: Decimal, currency: Currency) -> Money {
        Money { amount, currency }
    }

    /// The amount.
    pub fn amount(&self) -> Decimal {
        self.amount
    }

    /// The currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// The sum of two amounts of the same currency.
    ///
    /// # Errors
    /// When the currencies differ or the sum overflows.
    pub fn checked_add(&self, other: &Money) -> Result<Money> {
        if self.currency != other.currency {
            return Err(Error::usage(format!(
                "cannot add {} to {}",
                other.currency, self.currency
            )));
        }
        let amount = self
            .amount
            .checked_add(other.amount)
            .ok_or_else(|| Error::usage(format!("{} + {} overflows", self.amount, other.amount)))?;
        Ok(Money::new(amount, self.currency))
    }

    /// Splits the amount in proportion to `shares`, in the currency's minor
    /// units, handing the remainder out one minor unit at a time from the
    /// first part on, so the parts add up to the whole exactly.
    ///
    /// # Errors
    /// When there are no shares, all shares are zero, or the currency has no
    /// minor units defined.
    pub fn allocate(&self, shares: &[u32]) -> Result<Vec<Money>> {
        let total: u64 = shares.iter().map(|&s| u64::from(s)).sum();
        if total == 0 {
            return Err(Error::usage("allocate needs at least one non-zero share"));
        }
        let scale = self
            .currency
            .minor_units()
            .ok_or_else(|| Error::usage(format!("{} has no minor units", self.currency)))?;
        let unit = Decimal::new(1, scale);
        let whole = round_dp(self.amount, scale, RoundingMode::Down);
        let mut parts: Vec<Decimal> = shares
            .iter()
            .map(|&s| {
                let exact = whole * Decimal::from(s) / Decimal::from(total);
                round_dp(exact, scale, RoundingMode::Down)
            })
            .collect();
        let mut remainder = whole - parts.iter().copied().sum::<Decimal>();
        let step = if remainder.is_sign_negative() {
            -unit
        } else {
            unit
        };
        let mut i = 0;
        while !remainder.is_zero() {
            if shares[i % shares.len()] != 0 {
                parts[i % shares.len()] += step;
                remainder -= step;
            }
            i += 1;
        }
        Ok(parts
            .into_iter()
            .map(|a| Money::new(a, self.currency))
            .collect())
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

/// The greatest coefficient a decimal holds: 2^96 − 1.
const COEFFICIENT_MAX: u128 = (1u128 << 96) - 1;

/// Reads a decimal in the formats' strict syntax: an optional sign, digits,
/// and an optional `.` with digits; no exponent, no spaces.
///
/// A number with more decimal places than fit (at most 28) is rounded half
/// even to the most that fit; one whose whole part does not fit a 96-bit
/// coefficient is rejected. The message of the error quotes the text.
///
/// # Example
/// ```
/// use outcome_billing::money::parse_decimal;
/// assert_eq!(parse_decimal("-0.990").unwrap().to_string(), "-0.990");
/// assert!(parse_decimal("1e3").is_err());
/// assert!(parse_decimal(".5").is_err());
/// ```
pub fn parse_decimal(text: &str) -> Result<Decimal> {
    let bad = || {
        Error::usage(format!(
            "malformed decimal {text:?}: expected digits with an optional sign and fraction, no exponent"
        ))
    };
    let (negative, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (whole, fraction) = match rest.split_once('.') {
        Some((w, f)) => (w, f),
        None => (rest, ""),
    };
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
        || (rest.contains('.') && fraction.is_empty())
    {
        return Err(bad());
    }
    let whole = whole.trim_start_matches('0');
    if whole.len() > 29
        || (whole.len() == 29 && whole.parse::<u128>().map_or(true, |w| w > COEFFICIENT_MAX))
    {
        return Err(Error::usage(format!(
            "{text:?} is too large: its whole part does not fit a 96-bit decimal"
        )));
    }
    // Keep as many fraction digits as fit (at most 28), rounding half even
    // on the digit string so no precision is lost before the decision.
    let mut kept = fraction.len().min(28);
    loop {
        let digits = format!("{whole}{}", &fraction[..kept]);
        let mut coefficient: u128 = if digits.is_empty() {
            0
        } else {
            digits.parse().map_err(|_| bad())?
        };
        let dropped = &fraction[kept..];
        if round_up_half_even(coefficient, dropped) {
            coefficient += 1;
        }
        if coefficient <= COEFFICIENT_MAX {
            let signed = if negative {
                -(coefficient as i128)
            } else {
                coefficient as i128
            };
            // The coefficient fits 96 bits and the scale is at most 28.
            let mut value = Decimal::from_i128_with_scale(signed, kept as u32);
            if value.is_zero() {
                value.set_sign_positive(true);
            }
            return Ok(value);
        }
        if kept == 0 {
            return Err(Error::usage(format!(
                "{text:?} is too large: its whole part does not fit a 96-bit decimal"
            )));
        }
        kept -= 1;
    }
}

/// Whether dropping `dropped` digits from `kept` rounds up, half to even.
fn round_up_half_even(kept: u128, dropped: &str) -> bool {
    let mut bytes = dropped.bytes();
    match bytes.next() {
        None => false,
        Some(d) if d > b'5' => true,
        Some(d) if d < b'5' => false,
        Some(_) => bytes.any(|b| b != b'0') || kept % 2 == 1,
    }
}

/// A sum of decimals whose value does not depend on the order of its
/// terms: kept exactly, in 256 bits at the largest scale among them, and
/// rounded once at the end, half even, to the most decimal places that fit
/// a 96-bit coefficient (as the format's arithmetic rounds). Adding in turn
/// with `Decimal::checked_add` gives the same value whenever no partial sum
/// needs rounding; where one would, the result of adding in turn depends on
/// the order, and this one does not.
///
/// Up to 2^64 terms fit without overflow of the 256 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct ExactSum {
    total: ethnum::I256,
    scale: u32,
}

/// 10^n for n ≤ 28, in 256 bits.
fn pow10_256(n: u32) -> ethnum::I256 {
    ethnum::I256::from(10i128.pow(n.min(28)))
}

impl ExactSum {
    /// Adds one term.
    pub(crate) fn add(&mut self, term: Decimal) {
        if term.scale() == self.scale {
            // The common case: terms of one scale add without rescaling.
            self.total = self.total.wrapping_add(ethnum::I256::from(term.mantissa()));
        } else {
            self.merge(&ExactSum {
                total: ethnum::I256::from(term.mantissa()),
                scale: term.scale(),
            });
        }
    }

    /// An exact sum written as decimal text (`-1234.50`: digits with an
    /// optional sign and point, no exponent), as a database computes it,
    /// so that [`ExactSum::value`] rounds it as a sum made here would be.
    /// None when the text is of another shape, has more than 28 decimal
    /// places, or does not fit 256 bits.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn from_text(text: &str) -> Option<ExactSum> {
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let scale = u32::try_from(fraction.len()).ok().filter(|s| *s <= 28)?;
        if whole.is_empty() || !(whole.bytes().chain(fraction.bytes())).all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let ten = ethnum::I256::from(10u8);
        let mut total = ethnum::I256::ZERO;
        for b in whole.bytes().chain(fraction.bytes()) {
            total = total
                .checked_mul(ten)?
                .checked_add(ethnum::I256::from(b - b'0'))?;
        }
        Some(ExactSum {
            total: if negative { -total } else { total },
            scale,
        })
    }

    /// Adds every term of `other`.
    pub(crate) fn merge(&mut self, other: &ExactSum) {
        let scale = self.scale.max(other.scale);
        // Terms are below 2^96 times 10^28 < 2^190 each: 2^64 of them stay
        // below 2^255, so the products and the sum cannot overflow.
        let align = |t: ethnum::I256, s: u32| {
            if s == scale {
                t
            } else {
                t.wrapping_mul(pow10_256(scale - s))
            }
        };
        self.total = align(self.total, self.scale).wrapping_add(align(other.total, other.scale));
        self.scale = scale;
    }

    /// The sum as a decimal, rounded once to fit; none when its whole part
    /// does not fit 96 bits.
    pub(crate) fn value(&self) -> Option<Decimal> {
        let limit = ethnum::U256::from(COEFFICIENT_MAX);
        for drop in 0..=self.scale {
            let q = if drop == 0 {
                self.total
            } else {
                div_half_even(self.total, pow10_256(drop))
            };
            if q.unsigned_abs() <= limit {
                let mut d =
                    Decimal::try_from_i128_with_scale(q.as_i128(), self.scale - drop).ok()?;
                if d.is_zero() {
                    d.set_sign_positive(true);
                }
                return Some(d);
            }
        }
        None
    }
}

/// `t / p` rounded half even (`p` positive).
fn div_half_even(t: ethnum::I256, p: ethnum::I256) -> ethnum::I256 {
    let (q, r) = (t / p, t % p);
    let (twice, whole) = (r.unsigned_abs() * 2, p.unsigned_abs());
    if twice > whole || (twice == whole && q % 2 != 0) {
        q + if t < 0 { -1 } else { 1 }
    } else {
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_exact_sum_read_from_text_rounds_as_one_made_here() {
        // Proves a database's exact sum, read as text, gives the value adding the terms gives.
        let d = |s: &str| Decimal::from_str(s).unwrap();
        let added = |terms: &[&str]| {
            let mut s = ExactSum::default();
            for t in terms {
                s.add(d(t));
            }
            s
        };
        let max = Decimal::MAX.to_string();
        for (text, terms) in [
            (
                "9.0000000000000000000000000002",
                &["9", "0.0000000000000000000000000002"][..],
            ),
            (
                "-9.0000000000000000000000000006",
                &["-9", "-0.0000000000000000000000000006"],
            ),
            ("0.00", &["1.50", "-1.50"]),
            ("3.60", &["1.50", "2.1"]),
            ("158456325028528675187087900670", &[&max, &max]),
        ] {
            let read = ExactSum::from_text(text).unwrap();
            assert_eq!(read.value(), added(terms).value(), "{text}");
            assert_eq!(
                read.value().map(|v| v.scale()),
                added(terms).value().map(|v| v.scale())
            );
        }
        for bad in [
            "",
            "-",
            ".5",
            "1e3",
            "1.2.3",
            "+1",
            "1 ",
            &format!("0.{}", "0".repeat(29)),
        ] {
            assert_eq!(ExactSum::from_text(bad), None, "{bad:?}");
        }
        assert_eq!(ExactSum::from_text(&"9".repeat(90)), None);
    }

    #[test]
    fn an_exact_sum_does_not_depend_on_order() {
        // Proves sums that adding in turn would round (or overflow part
        // way) give one value in any order, rounded once, half even.
        let d = |s: &str| Decimal::from_str(s).unwrap();
        let sum = |terms: &[&str]| {
            let mut s = ExactSum::default();
            for t in terms {
                s.add(d(t));
            }
            s.value()
        };
        let terms = [
            "10000000000",
            "-10000000000",
            "0.0000000000000000000000000001",
        ];
        let mut orders = vec![terms.to_vec()];
        orders.push(vec![terms[2], terms[0], terms[1]]);
        orders.push(vec![terms[0], terms[2], terms[1]]);
        for o in &orders {
            assert_eq!(sum(o), Some(d("0.0000000000000000000000000001")), "{o:?}");
        }
        let max = Decimal::MAX.to_string();
        assert_eq!(sum(&[&max, "-1", "1"]), Some(Decimal::MAX));
        assert_eq!(sum(&["1", &max, "-1"]), Some(Decimal::MAX));
        assert_eq!(sum(&[&max, "1"]), None);
        // 9 + 2e-28 does not fit 96 bits at scale 28: rounded once, half
        // even, at scale 27.
        assert_eq!(
            sum(&["9", "0.0000000000000000000000000002"]),
            Some(d("9.000000000000000000000000000"))
        );
        assert_eq!(
            sum(&["9", "0.0000000000000000000000000006"]),
            Some(d("9.000000000000000000000000001"))
        );
        assert_eq!(
            sum(&["-9", "-0.0000000000000000000000000006"]),
            Some(d("-9.000000000000000000000000001"))
        );
        assert_eq!(
            sum(&["9", "0.0000000000000000000000000005"]),
            Some(d("9.000000000000000000000000000"))
        );
        assert_eq!(
            sum(&["9", "0.0000000000000000000000000015"]),
            Some(d("9.000000000000000000000000002"))
        );
        assert_eq!(
            sum(&["1.5", "-1.5"]).map(|v| v.to_string()),
            Some("0.0".to_owned())
        );
        assert_eq!(sum(&[]), Some(Decimal::ZERO));
    }

    proptest! {
        #[test]
        fn an_exact_sum_is_adding_in_turn_when_nothing_rounds(
            terms in proptest::collection::vec(any_decimal(), 0..20),
        ) {
            // Proves the exact sum is checked_add's value and scale for
            // ordinary amounts, and the same in reverse order.
            let mut exact = ExactSum::default();
            let mut reversed = ExactSum::default();
            let mut turn = Decimal::ZERO;
            for t in &terms {
                exact.add(*t);
                turn = turn.checked_add(*t).unwrap();
            }
            for t in terms.iter().rev() {
                reversed.add(*t);
            }
            if turn.is_zero() {
                turn.set_sign_positive(true);
            }
            let value = exact.value().unwrap();
            prop_assert_eq!(value, turn);
            prop_assert_eq!(value.scale(), turn.scale());
            prop_assert_eq!(reversed.value(), Some(value));
        }
    }

    /// A decimal of up to 20 digits at a scale from 0 to 8, either sign.
    fn any_decimal() -> impl Strategy<Value = Decimal> {
        (any::<i64>(), 0u32..=8).prop_map(|(m, scale)| Decimal::new(m, scale))
    }

    /// Zeros of any scale and sign, small amounts, and coefficients of up
    /// to 96 bits at scales up to 28: what adding in turn treats apart.
    fn any_addend() -> impl Strategy<Value = Decimal> {
        prop_oneof![
            (0u32..=28, any::<bool>()).prop_map(|(scale, negative)| {
                let mut zero = Decimal::new(0, scale);
                zero.set_sign_negative(negative);
                zero
            }),
            (-100_000i64..100_000, 0u32..=4).prop_map(|(m, scale)| Decimal::new(m, scale)),
            (
                any::<u32>(),
                any::<u32>(),
                any::<u32>(),
                any::<bool>(),
                0u32..=28
            )
                .prop_map(|(lo, mid, hi, negative, scale)| Decimal::from_parts(
                    lo, mid, hi, negative, scale
                )),
        ]
    }

    proptest! {
        #[test]
        fn checked_sum_is_adding_in_turn(values in proptest::collection::vec(any_decimal(), 0..8)) {
            let in_turn = values
                .iter()
                .try_fold(Decimal::ZERO, |s, v| s.checked_add(*v))
                .unwrap();
            let sum = checked_sum(&values).unwrap();
            prop_assert_eq!(sum, in_turn);
            prop_assert_eq!(sum.scale(), in_turn.scale());
            prop_assert!(!(sum.is_zero() && sum.is_sign_negative()));
        }

        #[test]
        fn round_dp_is_rust_decimals_rounding_for_any_coefficient(v in any_addend(), scale in 0u32..=28) {
            // The shortcuts give rust_decimal's own round and rescale,
            // scale included, for coefficients up to 96 bits.
            let mut expected = v.round_dp_with_strategy(scale, RoundingStrategy::MidpointAwayFromZero);
            expected.rescale(scale);
            if expected.is_zero() {
                expected.set_sign_positive(true);
            }
            let rounded = round_dp(v, scale, RoundingMode::HalfUp);
            prop_assert_eq!(rounded, expected);
            prop_assert_eq!(rounded.scale(), expected.scale());
            prop_assert_eq!(rounded.is_sign_negative(), expected.is_sign_negative());
        }

        #[test]
        fn checked_sum_is_adding_in_turn_with_zeros_and_huge_values(
            values in proptest::collection::vec(any_addend(), 0..6)
        ) {
            // Same value, same scale, same overflow; only a zero's sign differs.
            let in_turn = values.iter().try_fold(Decimal::ZERO, |s, v| s.checked_add(*v));
            let sum = checked_sum(&values);
            prop_assert_eq!(sum, in_turn);
            prop_assert_eq!(sum.map(|d| d.scale()), in_turn.map(|d| d.scale()));
            prop_assert!(sum.is_none_or(|d| !(d.is_zero() && d.is_sign_negative())));
        }

        #[test]
        fn round_dp_is_rust_decimals_rounding_at_the_scale(v in any_decimal(), scale in 0u32..=6) {
            let rounded = round_dp(v, scale, RoundingMode::HalfEven);
            let mut expected = v.round_dp_with_strategy(scale, RoundingStrategy::MidpointNearestEven);
            expected.rescale(scale);
            prop_assert_eq!(rounded, expected);
            prop_assert_eq!(rounded.scale(), scale);
            prop_assert!(!(rounded.is_zero() && rounded.is_sign_negative()));
        }
    }

    #[test]
    fn checked_sum_of_amounts_too_big_for_one_scale_adds_in_turn() {
        // 7.9e27 twice needs more than 96 bits at scale 1: adding in turn
        // drops to scale 0, as checked_add does; past the maximum it fails.
        let big = Decimal::from_i128_with_scale(790_000_000_000_000_000_000_000_000, 1);
        let sum = checked_sum([big, big]).unwrap();
        assert_eq!(sum, big.checked_add(big).unwrap());
        assert_eq!(checked_sum([Decimal::MAX, Decimal::ONE]), None);
        assert_eq!(checked_sum([Decimal::ZERO; 0]), Some(Decimal::ZERO));
        let minus_zero = Decimal::new(-0, 2) * Decimal::NEGATIVE_ONE;
        assert!(!checked_sum([minus_zero]).unwrap().is_sign_negative());
    }

    #[test]
    fn checked_sum_adds_in_turn_where_partial_sums_overflow() {
        // Found in review: the exact sum keeps the cent that adding in turn
        // rounds away, and turns an overflow into a number. Both now agree
        // with checked_add in turn.
        let big = d("600000000000000000000000000.01");
        let values = [
            big,
            d("600000000000000000000000000.00"),
            -d("600000000000000000000000000.00"),
        ];
        let in_turn = values
            .iter()
            .try_fold(Decimal::ZERO, |s, v| s.checked_add(*v));
        assert_eq!(checked_sum(values.iter()), in_turn);
        assert_eq!(
            checked_sum(values).map(|s| s.scale()),
            in_turn.map(|s| s.scale())
        );
        assert_eq!(
            checked_sum([Decimal::MAX, Decimal::ONE, Decimal::NEGATIVE_ONE]),
            None
        );
        // A zero leaves the scale of the sum as adding in turn does.
        assert_eq!(
            checked_sum([d("0.00"), d("38.1")]).unwrap().to_string(),
            "38.1"
        );
        assert_eq!(
            checked_sum([d("1.50"), d("-1.50"), d("2")])
                .unwrap()
                .to_string(),
            "2"
        );
    }

    #[test]
    fn rounding_past_the_greatest_scale_does_not_panic() {
        // Rounding's fields are public: a scale of 29 is a caller's
        // mistake, answered with what rescale can do, not a panic.
        let r = Rounding::new(29, RoundingMode::HalfUp);
        assert_eq!(r.round(Decimal::new(1, 10)), Decimal::new(1, 10));
        assert!(r.round(Decimal::ZERO).is_zero());
    }

    #[test]
    fn round_dp_widens_what_fits_and_keeps_the_value_otherwise() {
        assert_eq!(
            round_dp(d("3"), 2, RoundingMode::HalfUp).to_string(),
            "3.00"
        );
        assert_eq!(
            round_dp(d("-0.5"), 0, RoundingMode::HalfUp).to_string(),
            "-1"
        );
        // 28 digits cannot take two more zeros: the value stays.
        let long = d("7922816251426433759354395033");
        assert_eq!(round_dp(long, 2, RoundingMode::HalfUp), long);
    }

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn each_mode_rounds_positive_and_negative_ties_as_named() {
        // Table from the contract format page: every mode on ±1.005 and ±1.015.
        let cases = [
            (RoundingMode::HalfEven, "1.005", "1.00"),
            (RoundingMode::HalfEven, "1.015", "1.02"),
            (RoundingMode::HalfEven, "-1.005", "-1.00"),
            (RoundingMode::HalfUp, "1.005", "1.01"),
            (RoundingMode::HalfUp, "-1.005", "-1.01"),
            (RoundingMode::HalfDown, "1.005", "1.00"),
            (RoundingMode::HalfDown, "-1.005", "-1.00"),
            (RoundingMode::Up, "1.001", "1.01"),
            (RoundingMode::Up, "-1.001", "-1.01"),
            (RoundingMode::Down, "1.009", "1.00"),
            (RoundingMode::Down, "-1.009", "-1.00"),
            (RoundingMode::Ceiling, "1.001", "1.01"),
            (RoundingMode::Ceiling, "-1.009", "-1.00"),
            (RoundingMode::Floor, "1.009", "1.00"),
            (RoundingMode::Floor, "-1.001", "-1.01"),
        ];
        for (mode, input, want) in cases {
            assert_eq!(
                Rounding::new(2, mode).format(d(input)),
                want,
                "{mode:?} {input}"
            );
        }
    }

    #[test]
    fn amounts_print_at_any_scale_without_panicking() {
        // 28 places on a five-digit whole part, and the largest coefficient at 4 places.
        assert_eq!(
            format_scaled(d("12345"), 28),
            format!("12345.{}", "0".repeat(28))
        );
        assert_eq!(
            format_scaled(d("79228162514264337593543950335"), 4),
            "79228162514264337593543950335.0000"
        );
        assert_eq!(format_scaled(d("-1.5"), 0), "-2");
    }

    #[test]
    fn rounding_never_yields_negative_zero() {
        assert_eq!(
            Rounding::new(2, RoundingMode::HalfEven).format(d("-0.001")),
            "0.00"
        );
        assert_eq!(format_scaled(d("-0.00"), 2), "0.00");
    }

    #[test]
    fn strict_decimal_syntax_rejects_exponents_and_loose_forms() {
        for bad in [
            "", "-", "1e3", ".5", "5.", "1,000", " 1", "1 ", "0x10", "--1", "1.2.3", "NaN",
        ] {
            assert!(parse_decimal(bad).is_err(), "{bad:?} should be rejected");
        }
        assert_eq!(parse_decimal("+12.50").unwrap(), d("12.50"));
        assert_eq!(parse_decimal("007").unwrap(), d("7"));
        assert_eq!(parse_decimal("-0").unwrap().to_string(), "0");
    }

    #[test]
    fn long_fractions_round_half_even_to_what_fits() {
        // 30 places: rounded half even to 28.
        let v = parse_decimal("0.123456789012345678901234567850").unwrap();
        assert_eq!(v.to_string(), "0.1234567890123456789012345678");
        let v = parse_decimal("0.123456789012345678901234567950").unwrap();
        assert_eq!(v.to_string(), "0.1234567890123456789012345680");
        // A large whole part leaves room for fewer places.
        let v = parse_decimal("1234567890.123456789012345678901").unwrap();
        assert_eq!(v.to_string(), "1234567890.1234567890123456789");
    }

    #[test]
    fn whole_parts_beyond_96_bits_are_rejected() {
        assert!(parse_decimal("79228162514264337593543950335").is_ok());
        assert!(parse_decimal("79228162514264337593543950336").is_err());
        assert!(parse_decimal("100000000000000000000000000000").is_err());
    }

    #[test]
    fn allocation_parts_add_up_to_the_whole() {
        let usd: Currency = "USD".parse().unwrap();
        let parts = Money::new(d("100.00"), usd).allocate(&[1, 2, 3]).unwrap();
        let sum: Decimal = parts.iter().map(Money::amount).sum();
        assert_eq!(sum, d("100.00"));
        assert!(Money::new(d("1"), usd).allocate(&[0, 0]).is_err());
    }

    #[test]
    fn adding_different_currencies_is_an_error() {
        let a = Money::new(d("1"), "USD".parse().unwrap());
        let b = Money::new(d("1"), "EUR".parse().unwrap());
        assert!(a.checked_add(&b).is_err());
    }
}
