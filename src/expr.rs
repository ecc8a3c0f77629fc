//! The expression language: parse, check, evaluate, over exact decimals.
//!
//! SKELETON: the parser, checker and evaluator are being written; the public
//! API below is fixed.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::money::{Rounding, parse_decimal};

/// A parsed expression and the text it was parsed from.
///
/// # Example
/// ```
/// use outcome_billing::Expr;
/// let e = Expr::parse("if(conversations > 0, resolutions / conversations, 0)")?;
/// assert_eq!(e.names(), ["conversations", "resolutions"]);
/// # Ok::<(), outcome_billing::ExprError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Expr {
    text: String,
    node: Node,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Literal(Decimal),
}

impl PartialEq for Expr {
    fn eq(&self, other: &Expr) -> bool {
        self.node == other.node
    }
}

/// An expression that could not be parsed or checked: what is wrong, and
/// the 1-based character column in the expression's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExprError {
    /// 1-based character position in the expression text.
    pub column: usize,
    /// What is wrong (`undefined name outcome_count`).
    pub message: String,
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at column {})", self.message, self.column)
    }
}

impl std::error::Error for ExprError {}

/// Why evaluating an expression failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvalError {
    /// A division by zero.
    DivisionByZero,
    /// A result whose whole part does not fit a decimal.
    Overflow,
    /// `round(x, scale)` with a scale that is not a whole number from 0 to 28.
    BadScale(Decimal),
    /// Looking a name up failed (a metric with `missing = "error"`, say).
    Lookup(Box<Error>),
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvalError::DivisionByZero => f.write_str("division by zero"),
            EvalError::Overflow => f.write_str("the result overflows a decimal"),
            EvalError::BadScale(s) => write!(f, "round() needs a whole scale from 0 to 28, not {s}"),
            EvalError::Lookup(e) => write!(f, "{}", e.message()),
        }
    }
}

/// What an expression reads while it evaluates: the values of its names,
/// by the slot numbers given at [`Expr::compile`], and the rounding used by
/// `round(x, scale)`.
pub trait Env {
    /// The value of the name compiled to `slot`.
    ///
    /// # Errors
    /// Whatever reading the value fails with.
    fn value(&mut self, slot: u32) -> Result<Decimal, Error>;

    /// The contract's rounding mode (the scale comes from the call).
    fn rounding(&self) -> Rounding;
}

/// An expression whose names are resolved to slots, ready to evaluate.
#[derive(Debug, Clone)]
pub struct Compiled {
    node: Node,
}

impl Expr {
    /// Parses `text`.
    ///
    /// # Errors
    /// Syntax errors, comparisons chained or used as numbers, numbers used as
    /// conditions, unknown functions, wrong argument counts, nesting deeper
    /// than 64, each with the column.
    pub fn parse(text: &str) -> Result<Expr, ExprError> {
        match parse_decimal(text) {
            Ok(v) => Ok(Expr { text: text.to_string(), node: Node::Literal(v) }),
            Err(m) => Err(ExprError { column: 1, message: m }),
        }
    }

    /// A literal.
    pub fn literal(value: Decimal) -> Expr {
        Expr { text: value.to_string(), node: Node::Literal(value) }
    }

    /// The source text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The value, when the expression is a bare literal (possibly negated).
    pub fn as_literal(&self) -> Option<Decimal> {
        match self.node {
            Node::Literal(v) => Some(v),
        }
    }

    /// The name, when the expression is a bare name.
    pub fn as_name(&self) -> Option<&str> {
        None
    }

    /// Every name the expression reads, once each, in order of first use.
    pub fn names(&self) -> Vec<&str> {
        Vec::new()
    }

    /// Resolves every name to a slot with `resolve`.
    ///
    /// # Errors
    /// `undefined name X` at the name's column when `resolve` gives none.
    pub fn compile(&self, _resolve: &mut dyn FnMut(&str) -> Option<u32>) -> Result<Compiled, ExprError> {
        Ok(Compiled { node: self.node.clone() })
    }
}

impl Compiled {
    /// Evaluates with `env`; only the branch `if` picks and the operands
    /// `and`/`or` need are evaluated.
    ///
    /// # Errors
    /// Division by zero, overflow, a bad `round` scale, or a failed lookup.
    pub fn eval(&self, _env: &mut dyn Env) -> Result<Decimal, EvalError> {
        match self.node {
            Node::Literal(v) => Ok(v),
        }
    }

    /// The value, when the expression reads no name.
    pub fn constant(&self) -> Option<Decimal> {
        match self.node {
            Node::Literal(v) => Some(v),
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Expr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.as_literal() {
            Some(v) => s.serialize_str(&v.to_string()),
            None => s.serialize_str(&self.text),
        }
    }
}

impl<'de> Deserialize<'de> for Expr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Expr, D::Error> {
        d.deserialize_any(ExprVisitor)
    }
}

struct ExprVisitor;

/// serde_json's key for a number's text under `arbitrary_precision`.
const SERDE_JSON_NUMBER_TOKEN: &str = "$serde_json::private::Number";

impl<'de> serde::de::Visitor<'de> for ExprVisitor {
    type Value = Expr;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a decimal or an expression")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Expr, E> {
        Expr::parse(text).map_err(|e| E::custom(format!("{e} in {text:?}")))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Expr, E> {
        Ok(Expr::literal(Decimal::from(v)))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Expr, E> {
        Ok(Expr::literal(Decimal::from(v)))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Expr, E> {
        Err(E::custom(format!(
            "the number {v} reached the loader as a binary float; write it as a string (\"{v}\") or load the file with Contract::from_path"
        )))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Expr, A::Error> {
        use serde::de::Error as _;
        let key: Option<String> = map.next_key()?;
        match key.as_deref() {
            Some(crate::contract::DECIMAL_TOKEN) | Some(SERDE_JSON_NUMBER_TOKEN) => {
                let text: String = map.next_value()?;
                let value = parse_decimal(&text).map_err(A::Error::custom)?;
                Ok(Expr { text, node: Node::Literal(value) })
            }
            _ => Err(A::Error::custom("expected a decimal or an expression, found a table")),
        }
    }
}
