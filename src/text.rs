//! How statement values are written as JSON text and read back: decimals
//! as their text (never through a float), quantities without trailing
//! zeros, dates as `YYYY-MM-DD`, and a statement's whole period. Shared by
//! the statement types and the documents report and reconcile exchange;
//! and the small serde helpers the contract format's types share.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::money::{format_normalized, parse_decimal};
use crate::period::Period;

/// Whether a field holds its default (`skip_serializing_if`): a field
/// written only when set.
pub(crate) fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// Whether a flag is on (`skip_serializing_if` of a flag on by default).
pub(crate) fn is_true(v: &bool) -> bool {
    *v
}

/// `true`, the default of a flag on by default (`serde(default = ...)`).
pub(crate) fn yes() -> bool {
    true
}

/// A decimal as JSON text, read with [`parse_decimal`].
struct DecimalText(Decimal);

impl<'de> Deserialize<'de> for DecimalText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<DecimalText, D::Error> {
        struct Text;
        impl Visitor<'_> for Text {
            type Value = Decimal;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a decimal string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Decimal, E> {
                parse_decimal(v).map_err(E::custom)
            }
        }
        d.deserialize_str(Text).map(DecimalText)
    }
}

/// Amounts: a decimal written as its text (its own scale) and read as
/// decimal text, never through a float.
pub(crate) mod decimal_text {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        v: &Decimal,
        s: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> std::result::Result<Decimal, D::Error> {
        DecimalText::deserialize(d).map(|t| t.0)
    }
}

/// Quantities: an optional decimal written without trailing zeros, read as
/// decimal text (`null` or absent: none).
pub(crate) mod quantity_text {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        v: &Option<Decimal>,
        s: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        match v {
            Some(q) => s.collect_str(&format_normalized(*q)),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> std::result::Result<Option<Decimal>, D::Error> {
        Ok(Option::<DecimalText>::deserialize(d)?.map(|t| t.0))
    }
}

/// Local dates as `YYYY-MM-DD`.
pub(crate) mod date_text {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        v: &NaiveDate,
        s: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> std::result::Result<NaiveDate, D::Error> {
        let text = String::deserialize(d)?;
        NaiveDate::parse_from_str(&text, "%Y-%m-%d")
            .map_err(|_| de::Error::custom(format!("{text:?} is not a date")))
    }
}

/// A statement's whole [`Period`]: the entry's `start` and `end`, then the
/// rest of what the schedule knows of it.
pub(crate) mod period_full {
    use super::*;

    #[derive(Serialize, Deserialize)]
    struct Repr {
        #[serde(with = "date_text")]
        start: NaiveDate,
        #[serde(with = "date_text")]
        end: NaiveDate,
        index: usize,
        contract_year: usize,
        #[serde(with = "date_text")]
        full_start: NaiveDate,
        #[serde(with = "date_text")]
        full_end: NaiveDate,
        start_at: DateTime<Utc>,
        end_at: DateTime<Utc>,
    }

    pub(crate) fn serialize<S: Serializer>(
        p: &Period,
        s: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        Repr {
            start: p.start,
            end: p.end,
            index: p.index,
            contract_year: p.contract_year,
            full_start: p.full_start,
            full_end: p.full_end,
            start_at: p.start_at,
            end_at: p.end_at,
        }
        .serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> std::result::Result<Period, D::Error> {
        let r = Repr::deserialize(d)?;
        Ok(Period {
            index: r.index,
            start: r.start,
            end: r.end,
            start_at: r.start_at,
            end_at: r.end_at,
            full_start: r.full_start,
            full_end: r.full_end,
            contract_year: r.contract_year,
        })
    }
}
