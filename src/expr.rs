//! The expression language: parse, check, evaluate, over exact decimals.
//!
//! # Grammar
//!
//! ```text
//! expr    = or
//! or      = and { "or" and }
//! and     = not { "and" not }
//! not     = "not" not | compare
//! compare = sum [ ("<" | "<=" | ">" | ">=" | "==" | "!=") sum ]
//! sum     = product { ("+" | "-") product }
//! product = unary { ("*" | "/") unary }
//! unary   = "-" unary | primary
//! primary = DECIMAL | NAME | NAME "(" [ or { "," or } ] ")" | "(" or ")"
//! ```
//!
//! A decimal is digits with an optional `.` and digits (no sign, no
//! exponent); a name is an ASCII letter followed by letters, digits and
//! `_`. `and`, `or`, `not` and the function names (`min`, `max`, `abs`,
//! `clamp`, `if`, `round`, `ceil`, `floor`) are reserved. Whitespace may
//! separate tokens.
//!
//! Every expression is checked for types while it is parsed: names,
//! literals and arithmetic are numbers; comparisons, `and`, `or` and `not`
//! are conditions, and the two never stand in for each other. Nesting
//! (parentheses, calls, unary minus and `not`) is limited to
//! 64 levels, and every other construct is a loop, so neither
//! parsing nor evaluation can exhaust the stack whatever the input: the
//! parser is safe on untrusted text and never panics.
//!
//! # Functions
//!
//! - `min(a, ...)`, `max(a, ...)`: one argument or more.
//! - `abs(x)`; `ceil(x)` and `floor(x)`, to a whole number.
//! - `clamp(x, lo, hi)`: `min(max(x, lo), hi)`, so `hi` when `lo > hi`.
//! - `if(cond, a, b)`: evaluates only the branch it picks. The branches are
//!   two numbers or two conditions; the first one decides which is expected.
//! - `round(x, scale)`: in the environment's rounding mode; `scale` must be
//!   a whole number from 0 to 28 ([`EvalError::BadScale`] otherwise).
//!
//! # Evaluation
//!
//! Arithmetic is rust_decimal's checked arithmetic: a product or quotient
//! with more decimals than fit is rounded half-even to the most that fit,
//! a whole part that does not fit is [`EvalError::Overflow`], and a zero
//! divisor is [`EvalError::DivisionByZero`]. `and` and `or` stop as soon as
//! the result is known. Comparisons compare values (`1.0 == 1`). A result
//! is never a negative zero.
//!
//! Chains of the same operators (`a + b - c`, `x and y and z`) are kept as
//! one node with a list of operands, which keeps the tree shallow however
//! long the chain, and makes `(a + b) + c` the same tree as `a + b + c`.

use std::collections::HashMap;
use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::money::{Rounding, parse_decimal, round_dp};

/// The most levels an expression may nest: parentheses, calls, unary minus
/// and `not` each count one.
const DEPTH_MAX: u32 = 64;

/// The map key by which a loader hands a non-integer number's exact source
/// text to `Expr`'s deserializer: `{ DECIMAL_TOKEN: "0.99" }`, so bare
/// floats in TOML, JSON or YAML never pass through a binary float.
pub(crate) const DECIMAL_TOKEN: &str = "$outcome_billing::decimal";

/// Up to this many distinct names are deduplicated by a linear scan; beyond
/// it a hash map takes over, so a pathological expression with thousands
/// of names still parses in linear time.
const NAMES_SCANNED_MAX: usize = 32;

/// A parsed expression and the text it was parsed from.
///
/// Two expressions are equal when their parsed trees are: `0.99` equals
/// `0.990`, and `(a + b) * c` equals `(a+b)*c`.
///
/// # Example
/// ```
/// use outcome_billing::expr::Expr;
/// let e = Expr::parse("if(conversations > 0, resolutions / conversations, 0)")?;
/// assert_eq!(e.names(), ["conversations", "resolutions"]);
/// # Ok::<(), outcome_billing::expr::ExprError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Expr {
    text: Box<str>,
    /// Boxed, so that the many expression fields of a contract stay small.
    tree: Box<Tree>,
}

#[derive(Debug, Clone)]
struct Tree {
    /// Each distinct name, at its first occurrence, in order of first
    /// appearance; `Num::Name(i)` in `root` is `names[i]`.
    names: Vec<NameAt>,
    root: Num,
    /// The deepest nesting the text reached (0 to 64).
    nesting: u32,
}

/// Where a name first occurs in the text: a byte range.
#[derive(Debug, Clone, Copy)]
struct NameAt {
    start: usize,
    end: usize,
}

/// A number-valued node. In an [`Expr`], `Name` holds an index into the
/// expression's name table; in a [`Compiled`], the slot it resolved to.
#[derive(Debug, Clone, PartialEq)]
enum Num {
    Lit(Decimal),
    Name(u32),
    Neg(Box<Num>),
    /// `first op1 x1 op2 x2 ...`, left to right; the operators are all
    /// additive or all multiplicative, and there is at least one.
    Arith(Box<Num>, Box<[(ArithOp, Num)]>),
    Min(Box<[Num]>),
    Max(Box<[Num]>),
    Abs(Box<Num>),
    /// `[x, lo, hi]`.
    Clamp(Box<[Num; 3]>),
    If(Box<NumIf>),
    /// `[x, scale]`.
    Round(Box<[Num; 2]>),
    Ceil(Box<Num>),
    Floor(Box<Num>),
}

/// `if(cond, then, otherwise)` with number branches.
#[derive(Debug, Clone, PartialEq)]
struct NumIf {
    cond: Cond,
    then: Num,
    otherwise: Num,
}

/// A condition-valued node.
#[derive(Debug, Clone, PartialEq)]
enum Cond {
    Cmp(CmpOp, Box<[Num; 2]>),
    /// At least two operands.
    And(Box<[Cond]>),
    /// At least two operands.
    Or(Box<[Cond]>),
    Not(Box<Cond>),
    /// `[cond, then, otherwise]`.
    If(Box<[Cond; 3]>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
}

impl ArithOp {
    fn is_additive(self) -> bool {
        matches!(self, ArithOp::Add | ArithOp::Sub)
    }

    #[inline]
    fn apply(self, a: Decimal, b: Decimal) -> Result<Decimal, EvalError> {
        let result = match self {
            ArithOp::Add => a.checked_add(b),
            ArithOp::Sub => a.checked_sub(b),
            // A product or quotient with more decimals than fit is rounded
            // by rust_decimal to the most that fit; `None` is a whole part
            // that does not fit.
            ArithOp::Mul => a.checked_mul(b),
            ArithOp::Div => {
                if b.is_zero() {
                    return Err(EvalError::DivisionByZero);
                }
                a.checked_div(b)
            }
        };
        result.ok_or(EvalError::Overflow)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CmpOp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl CmpOp {
    fn test(self, a: Decimal, b: Decimal) -> bool {
        // Decimal compares values, not representations: 1.0 == 1.
        match self {
            CmpOp::Lt => a < b,
            CmpOp::Le => a <= b,
            CmpOp::Gt => a > b,
            CmpOp::Ge => a >= b,
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
        }
    }
}

impl PartialEq for Expr {
    fn eq(&self, other: &Expr) -> bool {
        self.tree.root == other.tree.root && self.names().into_iter().eq(other.names())
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
            EvalError::BadScale(s) => {
                write!(f, "round() needs a whole scale from 0 to 28, not {s}")
            }
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
    fn value(&mut self, slot: u32) -> Result<Decimal, Box<Error>>;

    /// The contract's rounding mode (the scale comes from the call).
    fn rounding(&self) -> Rounding;
}

/// An expression whose names are resolved to slots, ready to evaluate.
///
/// # Example
/// ```
/// use outcome_billing::Error;
/// use outcome_billing::expr::{Env, Expr};
/// use outcome_billing::money::{Rounding, RoundingMode};
/// use rust_decimal::Decimal;
///
/// struct Values(Vec<Decimal>);
/// impl Env for Values {
///     fn value(&mut self, slot: u32) -> Result<Decimal, Box<Error>> {
///         Ok(self.0[slot as usize])
///     }
///     fn rounding(&self) -> Rounding {
///         Rounding::new(2, RoundingMode::HalfEven)
///     }
/// }
///
/// let e = Expr::parse("units * price + 0.30")?;
/// let compiled = e.compile(&mut |name| match name {
///     "units" => Some(0),
///     "price" => Some(1),
///     _ => None,
/// })?;
/// let mut env = Values(vec![Decimal::from(3), "0.99".parse().unwrap()]);
/// assert_eq!(compiled.eval(&mut env).unwrap().to_string(), "3.27");
/// # Ok::<(), outcome_billing::expr::ExprError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Compiled {
    root: Num,
    /// The source's deepest nesting, to reserve stack for deep trees.
    nesting: u32,
    /// The value, worked out once, when the expression reads no name and
    /// does not depend on the rounding mode.
    constant: Option<Decimal>,
}

/// A compiled expression with the text it came from (for traces and
/// errors): what a charge kind's field compiles to.
#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub text: String,
    pub code: Compiled,
}

impl Expr {
    /// Parses `text`, which must be a number (not a condition).
    ///
    /// # Errors
    /// Syntax errors, comparisons chained or used as numbers, numbers used as
    /// conditions, unknown functions, wrong argument counts, nesting deeper
    /// than 64, each with the column.
    ///
    /// # Example
    /// ```
    /// use outcome_billing::expr::Expr;
    /// let err = Expr::parse("1 + (a < b)").unwrap_err();
    /// assert_eq!(err.message, "a condition cannot be used as a number");
    /// assert_eq!(err.column, 5);
    /// ```
    pub fn parse(text: &str) -> Result<Expr, ExprError> {
        let mut parser = Parser::new(text)?;
        let parsed = parser.or()?;
        if parser.tok.kind != Tok::End {
            let tok = parser.tok;
            return Err(parser.error(
                tok.start,
                format!(
                    "unexpected {}: expected an operator or the end of the expression",
                    parser.quote(tok)
                ),
            ));
        }
        let root = parser.num(parsed)?;
        let nesting = parser.nesting;
        let mut e = Expr::from_parts(text.into(), parser.names, root);
        e.tree.nesting = nesting;
        Ok(e)
    }

    /// A literal.
    pub fn literal(value: Decimal) -> Expr {
        let value = zero_positive(value);
        Expr::from_parts(value.to_string().into(), Vec::new(), Num::Lit(value))
    }

    fn from_parts(text: Box<str>, names: Vec<NameAt>, root: Num) -> Expr {
        Expr {
            text,
            tree: Box::new(Tree {
                names,
                root,
                nesting: 0,
            }),
        }
    }

    /// The source text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The value, when the expression is a bare literal (possibly negated,
    /// possibly in parentheses: `-5`, `(0.5)`).
    pub fn as_literal(&self) -> Option<Decimal> {
        match self.tree.root {
            Num::Lit(v) => Some(v),
            _ => None,
        }
    }

    /// The name, when the expression is a bare name.
    pub fn as_name(&self) -> Option<&str> {
        match self.tree.root {
            Num::Name(i) => Some(self.name(i)),
            _ => None,
        }
    }

    /// Every name the expression reads, once each, in order of first use.
    pub fn names(&self) -> Vec<&str> {
        (0..self.tree.names.len())
            .map(|i| self.name(i as u32))
            .collect()
    }

    /// The text of name `i` of the table.
    fn name(&self, i: u32) -> &str {
        let at = self.tree.names[i as usize];
        // The range was cut by the lexer at ASCII boundaries of this text.
        &self.text[at.start..at.end]
    }

    /// Resolves every name to a slot with `resolve`, which is called once
    /// for each distinct name, in order of first use.
    ///
    /// # Errors
    /// `undefined name X` at the name's first column when `resolve` gives
    /// none.
    pub fn compile(
        &self,
        resolve: &mut dyn FnMut(&str) -> Option<u32>,
    ) -> Result<Compiled, ExprError> {
        let mut slots = Vec::with_capacity(self.tree.names.len());
        for (i, at) in self.tree.names.iter().enumerate() {
            let name = self.name(i as u32);
            match resolve(name) {
                Some(slot) => slots.push(slot),
                None => {
                    return Err(ExprError {
                        column: column_of(&self.text, at.start),
                        message: format!("undefined name {name}"),
                    });
                }
            }
        }
        let (root, constant) = if slots.is_empty() {
            let constant = if self.tree.root.reads_rounding() {
                None
            } else {
                // No name and no `round`: the environment is never asked.
                let mut env = ValuesEnv {
                    values: &[],
                    rounding: Rounding::new(0, Default::default()),
                };
                with_stack_for(self.tree.nesting, || eval_num(&self.tree.root, &mut env))
                    .ok()
                    .map(zero_positive)
            };
            (self.tree.root.clone(), constant)
        } else {
            (self.tree.root.map_names(&slots), None)
        };
        Ok(Compiled {
            root,
            nesting: self.tree.nesting,
            constant,
        })
    }

    /// Evaluates the expression when `lookup` gives a value for every name
    /// in [`names`](Expr::names) (even one the expression would not read
    /// for these values); `None` when it lacks one. `rounding` is used by
    /// `round(x, scale)`. Used to check rules on constant values at load.
    ///
    /// # Example
    /// ```
    /// use outcome_billing::expr::Expr;
    /// use outcome_billing::money::{Rounding, RoundingMode};
    /// use rust_decimal::Decimal;
    /// let e = Expr::parse("round(seats * 1.005, 2)")?;
    /// let rounding = Rounding::new(2, RoundingMode::HalfUp);
    /// let seats = |name: &str| (name == "seats").then(|| Decimal::from(1));
    /// let value = e.eval_constant(&seats, rounding).unwrap().unwrap();
    /// assert_eq!(value.to_string(), "1.01");
    /// assert!(e.eval_constant(&|_| None, rounding).is_none());
    /// # Ok::<(), outcome_billing::expr::ExprError>(())
    /// ```
    pub fn eval_constant(
        &self,
        lookup: &dyn Fn(&str) -> Option<Decimal>,
        rounding: Rounding,
    ) -> Option<Result<Decimal, EvalError>> {
        let values = (0..self.tree.names.len())
            .map(|i| lookup(self.name(i as u32)))
            .collect::<Option<Vec<Decimal>>>()?;
        let mut env = ValuesEnv {
            values: &values,
            rounding,
        };
        Some(
            with_stack_for(self.tree.nesting, || eval_num(&self.tree.root, &mut env))
                .map(zero_positive),
        )
    }
}

impl Compiled {
    /// Evaluates with `env`; only the branch `if` picks and the operands
    /// `and`/`or` need are evaluated. The result is never a negative zero.
    ///
    /// # Errors
    /// Division by zero, overflow, a bad `round` scale, or a failed lookup.
    #[inline]
    pub fn eval(&self, env: &mut dyn Env) -> Result<Decimal, EvalError> {
        self.eval_in(env)
    }

    /// [`eval`](Compiled::eval) with the environment's type known, so its
    /// lookups can inline (settlement's hot path).
    #[inline]
    pub(crate) fn eval_in<E: Env + ?Sized>(&self, env: &mut E) -> Result<Decimal, EvalError> {
        match self.constant {
            Some(value) => Ok(value),
            None => with_stack_for(self.nesting, || value_of(&self.root, env)).map(zero_positive),
        }
    }

    /// The value, when the expression reads no name and evaluates without
    /// error. An expression calling `round` has none, since its value
    /// depends on the contract's rounding mode. A contract's compilation
    /// also fixes the value of expressions that read only its params.
    pub fn constant(&self) -> Option<Decimal> {
        self.constant
    }

    /// Fixes the value: `value` is what the expression gives in every
    /// environment it will be evaluated in (the caller's promise).
    pub(crate) fn fold(&mut self, value: Decimal) {
        self.constant = Some(value);
    }
}

/// `value`, with a negative zero made positive.
fn zero_positive(mut value: Decimal) -> Decimal {
    if value.is_zero() {
        value.set_sign_positive(true);
    }
    value
}

/// The 1-based character column of byte offset `at` in `text`.
fn column_of(text: &str, at: usize) -> usize {
    text.get(..at)
        .map_or(text.chars().count(), |before| before.chars().count())
        + 1
}

/// An environment over a slice of values, by slot.
struct ValuesEnv<'a> {
    values: &'a [Decimal],
    rounding: Rounding,
}

impl Env for ValuesEnv<'_> {
    fn value(&mut self, slot: u32) -> Result<Decimal, Box<Error>> {
        self.values
            .get(slot as usize)
            .copied()
            .ok_or_else(|| Box::new(Error::usage(format!("no value for expression slot {slot}"))))
    }

    fn rounding(&self) -> Rounding {
        self.rounding
    }
}

// ---------------------------------------------------------------------------
// Tree helpers

impl Num {
    /// The same tree with every `Name(i)` replaced by `Name(slots[i])`.
    fn map_names(&self, slots: &[u32]) -> Num {
        let map = |n: &Num| n.map_names(slots);
        let map_all = |ns: &[Num]| ns.iter().map(map).collect();
        match self {
            Num::Lit(v) => Num::Lit(*v),
            // Every index in the tree is one of the table's, and `slots`
            // has one entry for each.
            Num::Name(i) => Num::Name(slots[*i as usize]),
            Num::Neg(x) => Num::Neg(Box::new(map(x))),
            Num::Arith(first, rest) => Num::Arith(
                Box::new(map(first)),
                rest.iter().map(|(op, x)| (*op, map(x))).collect(),
            ),
            Num::Min(args) => Num::Min(map_all(args)),
            Num::Max(args) => Num::Max(map_all(args)),
            Num::Abs(x) => Num::Abs(Box::new(map(x))),
            Num::Clamp(a) => Num::Clamp(Box::new([map(&a[0]), map(&a[1]), map(&a[2])])),
            Num::If(b) => Num::If(Box::new(NumIf {
                cond: b.cond.map_names(slots),
                then: map(&b.then),
                otherwise: map(&b.otherwise),
            })),
            Num::Round(a) => Num::Round(Box::new([map(&a[0]), map(&a[1])])),
            Num::Ceil(x) => Num::Ceil(Box::new(map(x))),
            Num::Floor(x) => Num::Floor(Box::new(map(x))),
        }
    }

    /// Whether the tree calls `round`, whose value depends on the mode.
    fn reads_rounding(&self) -> bool {
        match self {
            Num::Lit(_) | Num::Name(_) => false,
            Num::Neg(x) | Num::Abs(x) | Num::Ceil(x) | Num::Floor(x) => x.reads_rounding(),
            Num::Arith(first, rest) => {
                first.reads_rounding() || rest.iter().any(|(_, x)| x.reads_rounding())
            }
            Num::Min(args) | Num::Max(args) => args.iter().any(Num::reads_rounding),
            Num::Clamp(a) => a.iter().any(Num::reads_rounding),
            Num::If(b) => {
                b.cond.reads_rounding() || b.then.reads_rounding() || b.otherwise.reads_rounding()
            }
            Num::Round(_) => true,
        }
    }
}

impl Cond {
    fn map_names(&self, slots: &[u32]) -> Cond {
        let map_all = |cs: &[Cond]| cs.iter().map(|c| c.map_names(slots)).collect();
        match self {
            Cond::Cmp(op, a) => Cond::Cmp(
                *op,
                Box::new([a[0].map_names(slots), a[1].map_names(slots)]),
            ),
            Cond::And(cs) => Cond::And(map_all(cs)),
            Cond::Or(cs) => Cond::Or(map_all(cs)),
            Cond::Not(c) => Cond::Not(Box::new(c.map_names(slots))),
            Cond::If(a) => Cond::If(Box::new([
                a[0].map_names(slots),
                a[1].map_names(slots),
                a[2].map_names(slots),
            ])),
        }
    }

    fn reads_rounding(&self) -> bool {
        match self {
            Cond::Cmp(_, a) => a.iter().any(Num::reads_rounding),
            Cond::And(cs) | Cond::Or(cs) => cs.iter().any(Cond::reads_rounding),
            Cond::Not(c) => c.reads_rounding(),
            Cond::If(a) => a.iter().any(Cond::reads_rounding),
        }
    }
}

// ---------------------------------------------------------------------------
// Evaluation

/// The value of `node`, with the leaves handled in place: the operands of
/// arithmetic are mostly names and literals, and this spares them a call.
#[inline(always)]
fn value_of<E: Env + ?Sized>(node: &Num, env: &mut E) -> Result<Decimal, EvalError> {
    match node {
        Num::Lit(v) => Ok(*v),
        Num::Name(slot) => read(env, *slot),
        _ => eval_num(node, env),
    }
}

#[inline(always)]
fn read<E: Env + ?Sized>(env: &mut E, slot: u32) -> Result<Decimal, EvalError> {
    env.value(slot).map_err(lookup_failed)
}

#[cold]
fn lookup_failed(e: Box<Error>) -> EvalError {
    EvalError::Lookup(e)
}

fn eval_num<E: Env + ?Sized>(node: &Num, env: &mut E) -> Result<Decimal, EvalError> {
    Ok(match node {
        Num::Lit(v) => *v,
        Num::Name(slot) => read(env, *slot)?,
        // Negation flips the sign bit: it cannot overflow.
        Num::Neg(x) => -value_of(x, env)?,
        Num::Arith(first, rest) => {
            let mut acc = value_of(first, env)?;
            for (op, x) in rest.iter() {
                let operand = value_of(x, env)?;
                acc = op.apply(acc, operand)?;
            }
            acc
        }
        Num::Min(args) => fold_args(args, env, Decimal::min)?,
        Num::Max(args) => fold_args(args, env, Decimal::max)?,
        Num::Abs(x) => value_of(x, env)?.abs(),
        Num::Clamp(a) => {
            let x = value_of(&a[0], env)?;
            let lo = value_of(&a[1], env)?;
            let hi = value_of(&a[2], env)?;
            // min(max(x, lo), hi): with lo > hi the result is hi.
            x.max(lo).min(hi)
        }
        Num::If(b) => {
            if eval_cond(&b.cond, env)? {
                value_of(&b.then, env)?
            } else {
                value_of(&b.otherwise, env)?
            }
        }
        Num::Round(a) => {
            let x = value_of(&a[0], env)?;
            let scale = value_of(&a[1], env)?;
            let places = whole_scale(scale).ok_or(EvalError::BadScale(scale))?;
            round_dp(x, places, env.rounding().mode)
        }
        Num::Ceil(x) => value_of(x, env)?.ceil(),
        Num::Floor(x) => value_of(x, env)?.floor(),
    })
}

/// `f` folded over the values of `args` (at least one, by the parser).
fn fold_args<E: Env + ?Sized>(
    args: &[Num],
    env: &mut E,
    f: fn(Decimal, Decimal) -> Decimal,
) -> Result<Decimal, EvalError> {
    let mut acc: Option<Decimal> = None;
    for x in args {
        let v = value_of(x, env)?;
        acc = Some(acc.map_or(v, |a| f(a, v)));
    }
    // The parser rejects min() and max() without arguments.
    acc.ok_or(EvalError::Overflow)
}

/// `scale` as a number of places, when it is a whole number from 0 to 28.
fn whole_scale(scale: Decimal) -> Option<u32> {
    if scale.is_zero() {
        // A negative zero is zero too.
        return Some(0);
    }
    if !scale.fract().is_zero() {
        return None;
    }
    u32::try_from(scale).ok().filter(|&s| s <= 28)
}

fn eval_cond<E: Env + ?Sized>(node: &Cond, env: &mut E) -> Result<bool, EvalError> {
    Ok(match node {
        Cond::Cmp(op, a) => {
            let left = value_of(&a[0], env)?;
            let right = value_of(&a[1], env)?;
            op.test(left, right)
        }
        Cond::And(cs) => {
            for c in cs.iter() {
                if !eval_cond(c, env)? {
                    return Ok(false);
                }
            }
            true
        }
        Cond::Or(cs) => {
            for c in cs.iter() {
                if eval_cond(c, env)? {
                    return Ok(true);
                }
            }
            false
        }
        Cond::Not(c) => !eval_cond(c, env)?,
        Cond::If(a) => {
            if eval_cond(&a[0], env)? {
                eval_cond(&a[1], env)?
            } else {
                eval_cond(&a[2], env)?
            }
        }
    })
}

// ---------------------------------------------------------------------------
// Parsing

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Number,
    Name,
    LParen,
    RParen,
    Comma,
    Plus,
    Minus,
    Star,
    Slash,
    Cmp(CmpOp),
    End,
}

/// A token: its kind and byte range in the text.
#[derive(Debug, Clone, Copy)]
struct Token {
    kind: Tok,
    start: usize,
    end: usize,
}

/// A parsed subexpression of either type, and where it starts.
struct Parsed {
    start: usize,
    typed: Typed,
}

enum Typed {
    Num(Num),
    Cond(Cond),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    Min,
    Max,
    Abs,
    Clamp,
    If,
    Round,
    Ceil,
    Floor,
}

impl Func {
    fn named(name: &str) -> Option<Func> {
        Some(match name {
            "min" => Func::Min,
            "max" => Func::Max,
            "abs" => Func::Abs,
            "clamp" => Func::Clamp,
            "if" => Func::If,
            "round" => Func::Round,
            "ceil" => Func::Ceil,
            "floor" => Func::Floor,
            _ => return None,
        })
    }

    /// The number of arguments it takes; `None` for one or more.
    fn arity(self) -> Option<usize> {
        match self {
            Func::Min | Func::Max => None,
            Func::Abs | Func::Ceil | Func::Floor => Some(1),
            Func::Round => Some(2),
            Func::Clamp | Func::If => Some(3),
        }
    }
}

fn is_keyword(name: &str) -> bool {
    matches!(name, "and" | "or" | "not")
}

/// A recursive-descent parser with one token of lookahead, lexing on
/// demand. Recursion happens only where nesting is counted, so its depth
/// is bounded by [`DEPTH_MAX`].
/// Stack reserved per level of nesting before evaluating a deep tree: a
/// level is one or two frames of the recursive evaluator, a few KiB in a
/// debug build.
const EVAL_LEVEL_BYTES: usize = 32 * 1024;

/// Runs `f`, an evaluation of a tree nested `nesting` levels deep, with
/// enough stack for it: shallow trees (almost all) pay nothing; deep ones
/// grow the stack on the heap when the thread has too little left.
fn with_stack_for<T>(nesting: u32, f: impl FnOnce() -> T) -> T {
    if nesting <= 8 {
        return f();
    }
    let need = (nesting as usize + 4) * EVAL_LEVEL_BYTES;
    stacker::maybe_grow(need, need * 2, f)
}

/// When less stack than this is left, `Parser::nested` grows it.
const STACK_RED_ZONE_BYTES: usize = 128 * 1024;
/// How much stack `Parser::nested` adds at a time.
const STACK_GROWTH_BYTES: usize = 2 * 1024 * 1024;

struct Parser<'t> {
    text: &'t str,
    /// Byte offset just after `tok`.
    pos: usize,
    /// The current token, not yet consumed.
    tok: Token,
    depth: u32,
    /// The deepest `depth` reached.
    nesting: u32,
    names: Vec<NameAt>,
    /// Name text to index, once there are too many names to scan.
    name_index: HashMap<&'t str, u32>,
}

impl<'t> Parser<'t> {
    fn new(text: &'t str) -> Result<Parser<'t>, ExprError> {
        let mut parser = Parser {
            text,
            pos: 0,
            tok: Token {
                kind: Tok::End,
                start: 0,
                end: 0,
            },
            depth: 0,
            nesting: 0,
            names: Vec::new(),
            name_index: HashMap::new(),
        };
        parser.advance()?;
        Ok(parser)
    }

    fn error(&self, at: usize, message: String) -> ExprError {
        ExprError {
            column: column_of(self.text, at),
            message,
        }
    }

    fn slice(&self, tok: Token) -> &'t str {
        self.text.get(tok.start..tok.end).unwrap_or("")
    }

    /// The token as a message shows it: quoted text, or `end of expression`.
    fn quote(&self, tok: Token) -> String {
        match tok.kind {
            Tok::End => "end of expression".to_string(),
            _ => format!("{:?}", self.slice(tok)),
        }
    }

    /// `expected WHAT but found TOKEN` at the current token.
    fn expected(&self, what: &str) -> ExprError {
        self.error(
            self.tok.start,
            format!("expected {what} but found {}", self.quote(self.tok)),
        )
    }

    fn at_keyword(&self, keyword: &str) -> bool {
        self.tok.kind == Tok::Name && self.slice(self.tok) == keyword
    }

    /// Counts one more level of nesting, opened at byte `at`.
    fn enter(&mut self, at: usize) -> Result<(), ExprError> {
        self.depth += 1;
        self.nesting = self.nesting.max(self.depth);
        if self.depth > DEPTH_MAX {
            return Err(self.error(
                at,
                format!(
                    "the expression nests more than {DEPTH_MAX} levels deep (parentheses, calls, unary minus and not each count one)"
                ),
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// Parses one level deeper. A level of nesting costs several frames of
    /// recursive descent (tens of KiB in a debug build), so the stack is
    /// grown on the heap when it runs low: 64 levels parse on any thread.
    fn nested(
        &mut self,
        parse: fn(&mut Self) -> Result<Parsed, ExprError>,
    ) -> Result<Parsed, ExprError> {
        stacker::maybe_grow(STACK_RED_ZONE_BYTES, STACK_GROWTH_BYTES, || parse(self))
    }

    /// Moves to the next token.
    fn advance(&mut self) -> Result<(), ExprError> {
        self.tok = self.lex()?;
        self.pos = self.tok.end;
        Ok(())
    }

    fn lex(&self) -> Result<Token, ExprError> {
        let bytes = self.text.as_bytes();
        let mut start = self.pos;
        while start < bytes.len() && bytes[start].is_ascii_whitespace() {
            start += 1;
        }
        let Some(&first) = bytes.get(start) else {
            return Ok(Token {
                kind: Tok::End,
                start: bytes.len(),
                end: bytes.len(),
            });
        };
        let next = bytes.get(start + 1).copied();
        let run = |from: usize, keep: fn(u8) -> bool| {
            let mut end = from;
            while end < bytes.len() && keep(bytes[end]) {
                end += 1;
            }
            end
        };
        let single = |kind| {
            Ok(Token {
                kind,
                start,
                end: start + 1,
            })
        };
        let double = |kind| {
            Ok(Token {
                kind,
                start,
                end: start + 2,
            })
        };
        match first {
            // A literal runs on over letters and dots too, so that `1e3`
            // and `1.2.3` are reported whole, as malformed decimals.
            b'0'..=b'9' => Ok(Token {
                kind: Tok::Number,
                start,
                end: run(start, |b| {
                    b.is_ascii_alphanumeric() || b == b'_' || b == b'.'
                }),
            }),
            b'.' if next.is_some_and(|b| b.is_ascii_digit()) => Ok(Token {
                kind: Tok::Number,
                start,
                end: run(start, |b| {
                    b.is_ascii_alphanumeric() || b == b'_' || b == b'.'
                }),
            }),
            b'a'..=b'z' | b'A'..=b'Z' => Ok(Token {
                kind: Tok::Name,
                start,
                end: run(start, |b| b.is_ascii_alphanumeric() || b == b'_'),
            }),
            b'(' => single(Tok::LParen),
            b')' => single(Tok::RParen),
            b',' => single(Tok::Comma),
            b'+' => single(Tok::Plus),
            b'-' => single(Tok::Minus),
            b'*' => single(Tok::Star),
            b'/' => single(Tok::Slash),
            b'<' if next == Some(b'=') => double(Tok::Cmp(CmpOp::Le)),
            b'<' => single(Tok::Cmp(CmpOp::Lt)),
            b'>' if next == Some(b'=') => double(Tok::Cmp(CmpOp::Ge)),
            b'>' => single(Tok::Cmp(CmpOp::Gt)),
            b'=' if next == Some(b'=') => double(Tok::Cmp(CmpOp::Eq)),
            b'!' if next == Some(b'=') => double(Tok::Cmp(CmpOp::Ne)),
            b'=' => Err(self.error(start, "unexpected \"=\": did you mean \"==\"?".to_string())),
            b'!' => Err(self.error(
                start,
                "unexpected \"!\": did you mean \"not\" or \"!=\"?".to_string(),
            )),
            b'&' => Err(self.error(start, "unexpected \"&\": did you mean \"and\"?".to_string())),
            b'|' => Err(self.error(start, "unexpected \"|\": did you mean \"or\"?".to_string())),
            _ => {
                // `start` is a char boundary: every token so far ended at one.
                let c = self
                    .text
                    .get(start..)
                    .and_then(|rest| rest.chars().next())
                    .unwrap_or('?');
                Err(self.error(start, format!("unexpected {:?}", c.to_string())))
            }
        }
    }

    /// `parsed` as a number, or an error at its start.
    fn num(&self, parsed: Parsed) -> Result<Num, ExprError> {
        match parsed.typed {
            Typed::Num(n) => Ok(n),
            Typed::Cond(_) => Err(self.error(
                parsed.start,
                "a condition cannot be used as a number".to_string(),
            )),
        }
    }

    /// `parsed` as a condition, or an error at its start.
    fn cond(&self, parsed: Parsed) -> Result<Cond, ExprError> {
        match parsed.typed {
            Typed::Cond(c) => Ok(c),
            Typed::Num(_) => Err(self.error(
                parsed.start,
                "a number cannot be used as a condition".to_string(),
            )),
        }
    }

    /// `or = and { "or" and }`
    fn or(&mut self) -> Result<Parsed, ExprError> {
        let first = self.and()?;
        if !self.at_keyword("or") {
            return Ok(first);
        }
        let start = first.start;
        let mut operands = match self.cond(first)? {
            // `(a or b) or c` is the same tree as `a or b or c`.
            Cond::Or(cs) => cs.into_vec(),
            c => vec![c],
        };
        while self.at_keyword("or") {
            self.advance()?;
            let next = self.and()?;
            operands.push(self.cond(next)?);
        }
        Ok(Parsed {
            start,
            typed: Typed::Cond(Cond::Or(operands.into())),
        })
    }

    /// `and = not { "and" not }`
    fn and(&mut self) -> Result<Parsed, ExprError> {
        let first = self.not()?;
        if !self.at_keyword("and") {
            return Ok(first);
        }
        let start = first.start;
        let mut operands = match self.cond(first)? {
            Cond::And(cs) => cs.into_vec(),
            c => vec![c],
        };
        while self.at_keyword("and") {
            self.advance()?;
            let next = self.not()?;
            operands.push(self.cond(next)?);
        }
        Ok(Parsed {
            start,
            typed: Typed::Cond(Cond::And(operands.into())),
        })
    }

    /// `not = "not" not | compare`
    fn not(&mut self) -> Result<Parsed, ExprError> {
        if !self.at_keyword("not") {
            return self.compare();
        }
        let start = self.tok.start;
        self.enter(start)?;
        self.advance()?;
        let operand = self.nested(Parser::not)?;
        let c = self.cond(operand)?;
        self.leave();
        Ok(Parsed {
            start,
            typed: Typed::Cond(Cond::Not(Box::new(c))),
        })
    }

    /// `compare = sum [ op sum ]`, and no second comparison.
    fn compare(&mut self) -> Result<Parsed, ExprError> {
        let left = self.sum()?;
        let Tok::Cmp(op) = self.tok.kind else {
            return Ok(left);
        };
        let start = left.start;
        let left = self.num(left)?;
        self.advance()?;
        let right = self.sum()?;
        let right = self.num(right)?;
        if let Tok::Cmp(_) = self.tok.kind {
            return Err(self.error(self.tok.start, "comparisons cannot be chained".to_string()));
        }
        Ok(Parsed {
            start,
            typed: Typed::Cond(Cond::Cmp(op, Box::new([left, right]))),
        })
    }

    /// `sum = product { ("+" | "-") product }`
    fn sum(&mut self) -> Result<Parsed, ExprError> {
        self.chain(true)
    }

    /// `product = unary { ("*" | "/") unary }`
    fn product(&mut self) -> Result<Parsed, ExprError> {
        self.chain(false)
    }

    /// One level of left-associative arithmetic: additive or multiplicative.
    fn chain(&mut self, additive: bool) -> Result<Parsed, ExprError> {
        let operand = |p: &mut Parser<'t>| if additive { p.product() } else { p.unary() };
        let op_here = |tok: Tok| match (additive, tok) {
            (true, Tok::Plus) => Some(ArithOp::Add),
            (true, Tok::Minus) => Some(ArithOp::Sub),
            (false, Tok::Star) => Some(ArithOp::Mul),
            (false, Tok::Slash) => Some(ArithOp::Div),
            _ => None,
        };
        let first = operand(self)?;
        if op_here(self.tok.kind).is_none() {
            return Ok(first);
        }
        let start = first.start;
        let (first, mut rest) = match self.num(first)? {
            // `(a + b) - c` is the same tree as `a + b - c`.
            Num::Arith(first, rest)
                if rest
                    .first()
                    .is_some_and(|(op, _)| op.is_additive() == additive) =>
            {
                (first, rest.into_vec())
            }
            n => (Box::new(n), Vec::new()),
        };
        while let Some(op) = op_here(self.tok.kind) {
            self.advance()?;
            let next = operand(self)?;
            rest.push((op, self.num(next)?));
        }
        Ok(Parsed {
            start,
            typed: Typed::Num(Num::Arith(first, rest.into())),
        })
    }

    /// `unary = "-" unary | primary`
    fn unary(&mut self) -> Result<Parsed, ExprError> {
        if self.tok.kind != Tok::Minus {
            return self.primary();
        }
        let start = self.tok.start;
        self.enter(start)?;
        self.advance()?;
        let operand = self.nested(Parser::unary)?;
        let n = self.num(operand)?;
        self.leave();
        let negated = match n {
            // `-5` is the literal -5, so it reads back as a bare literal.
            Num::Lit(v) => Num::Lit(zero_positive(-v)),
            n => Num::Neg(Box::new(n)),
        };
        Ok(Parsed {
            start,
            typed: Typed::Num(negated),
        })
    }

    /// `primary = DECIMAL | NAME | call | "(" or ")"`
    fn primary(&mut self) -> Result<Parsed, ExprError> {
        let tok = self.tok;
        match tok.kind {
            Tok::Number => {
                let value = parse_decimal(self.slice(tok))
                    .map_err(|m| self.error(tok.start, m.message().to_string()))?;
                self.advance()?;
                Ok(Parsed {
                    start: tok.start,
                    typed: Typed::Num(Num::Lit(value)),
                })
            }
            Tok::Name => {
                let name = self.slice(tok);
                if is_keyword(name) {
                    return Err(self.error(
                        tok.start,
                        format!("unexpected {name:?}: expected a number, a name or \"(\""),
                    ));
                }
                self.advance()?;
                if self.tok.kind == Tok::LParen {
                    return self.call(tok);
                }
                if Func::named(name).is_some() {
                    return Err(self.expected(&format!("\"(\" after the function {name}")));
                }
                let index = self.name_index_of(tok)?;
                Ok(Parsed {
                    start: tok.start,
                    typed: Typed::Num(Num::Name(index)),
                })
            }
            Tok::LParen => {
                self.enter(tok.start)?;
                self.advance()?;
                let inner = self.nested(Parser::or)?;
                if self.tok.kind != Tok::RParen {
                    return Err(self.expected("\")\""));
                }
                self.advance()?;
                self.leave();
                Ok(Parsed {
                    start: tok.start,
                    typed: inner.typed,
                })
            }
            Tok::End => Err(self.expected("a number, a name or \"(\"")),
            _ => Err(self.error(
                tok.start,
                format!(
                    "unexpected {}: expected a number, a name or \"(\"",
                    self.quote(tok)
                ),
            )),
        }
    }

    /// The index of the name token `tok` in the name table, adding it on
    /// first use.
    fn name_index_of(&mut self, tok: Token) -> Result<u32, ExprError> {
        let name = self.slice(tok);
        let found = if self.names.len() <= NAMES_SCANNED_MAX {
            self.names
                .iter()
                .position(|at| self.text.get(at.start..at.end) == Some(name))
                .map(|i| i as u32)
        } else {
            self.name_index.get(name).copied()
        };
        if let Some(i) = found {
            return Ok(i);
        }
        let index = u32::try_from(self.names.len())
            .map_err(|_| self.error(tok.start, "the expression has too many names".to_string()))?;
        self.names.push(NameAt {
            start: tok.start,
            end: tok.end,
        });
        if self.names.len() == NAMES_SCANNED_MAX + 1 {
            // Switching over: index every name so far.
            for (i, at) in self.names.iter().enumerate() {
                self.name_index
                    .insert(self.text.get(at.start..at.end).unwrap_or(""), i as u32);
            }
        } else if self.names.len() > NAMES_SCANNED_MAX + 1 {
            self.name_index.insert(name, index);
        }
        Ok(index)
    }

    /// A call of the function named by `name_tok`; the current token is `(`.
    fn call(&mut self, name_tok: Token) -> Result<Parsed, ExprError> {
        let name = self.slice(name_tok);
        let start = name_tok.start;
        let Some(func) = Func::named(name) else {
            return Err(self.error(start, format!("unknown function {name}")));
        };
        self.enter(start)?;
        self.advance()?;
        let mut args = Vec::new();
        if self.tok.kind != Tok::RParen {
            loop {
                args.push(self.nested(Parser::or)?);
                match self.tok.kind {
                    Tok::Comma => self.advance()?,
                    Tok::RParen => break,
                    _ => return Err(self.expected("\",\" or \")\"")),
                }
            }
        }
        self.advance()?;
        self.leave();
        let found = args.len();
        let arity_ok = match func.arity() {
            Some(n) => found == n,
            None => found >= 1,
        };
        let arity_error = || {
            let message = match func.arity() {
                Some(1) => format!("{name} takes 1 argument, found {found}"),
                Some(n) => format!("{name} takes {n} arguments, found {found}"),
                None => format!("{name} takes at least 1 argument, found {found}"),
            };
            self.error(start, message)
        };
        if !arity_ok {
            return Err(arity_error());
        }
        if func == Func::If {
            let [cond, then, otherwise]: [Parsed; 3] =
                args.try_into().map_err(|_| arity_error())?;
            return Ok(Parsed {
                start,
                typed: self.if_call(cond, then, otherwise)?,
            });
        }
        let mut nums = Vec::with_capacity(found);
        for arg in args {
            nums.push(self.num(arg)?);
        }
        let node = match func {
            Func::Min => Num::Min(nums.into()),
            Func::Max => Num::Max(nums.into()),
            _ => {
                // The count was checked above, so `next` always has one;
                // the error is there only to keep a panic path out.
                let mut it = nums.into_iter();
                let mut next = || it.next().ok_or_else(arity_error);
                match func {
                    Func::Abs => Num::Abs(Box::new(next()?)),
                    Func::Ceil => Num::Ceil(Box::new(next()?)),
                    Func::Floor => Num::Floor(Box::new(next()?)),
                    Func::Round => Num::Round(Box::new([next()?, next()?])),
                    Func::Clamp => Num::Clamp(Box::new([next()?, next()?, next()?])),
                    Func::Min | Func::Max | Func::If => return Err(arity_error()),
                }
            }
        };
        Ok(Parsed {
            start,
            typed: Typed::Num(node),
        })
    }

    /// `if(cond, a, b)`: two numbers make a number, two conditions a
    /// condition.
    fn if_call(&self, cond: Parsed, then: Parsed, otherwise: Parsed) -> Result<Typed, ExprError> {
        let cond = self.cond(cond)?;
        Ok(match then.typed {
            Typed::Num(then) => {
                let otherwise = self.num(otherwise)?;
                Typed::Num(Num::If(Box::new(NumIf {
                    cond,
                    then,
                    otherwise,
                })))
            }
            Typed::Cond(then) => {
                let otherwise = self.cond(otherwise)?;
                Typed::Cond(Cond::If(Box::new([cond, then, otherwise])))
            }
        })
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

/// Reads a string (parsed), an integer (exactly), or a decimal token of the
/// contract loaders (its text, exactly). A binary float is refused: its
/// digits are already lost, so `12.50` from `serde_json::from_str` would not
/// be the `12.50` written.
struct ExprVisitor;

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
            "the number {v} arrived as a binary float, which does not keep a decimal's digits: write decimals as strings (\"12.50\") or load the contract with Contract::from_json_str, which reads numbers exactly"
        )))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Expr, A::Error> {
        use serde::de::Error as _;
        let key: Option<String> = map.next_key()?;
        match key.as_deref() {
            Some(DECIMAL_TOKEN) => {
                let text: String = map.next_value()?;
                let value = parse_decimal(&text).map_err(A::Error::custom)?;
                Ok(Expr::from_parts(text.into(), Vec::new(), Num::Lit(value)))
            }
            _ => Err(A::Error::custom(
                "expected a decimal or an expression, found a table",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::RoundingMode;
    use proptest::prelude::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    /// An environment over optional values: a `None` slot fails to read, so
    /// a test can prove a branch is never evaluated.
    struct TestEnv {
        values: Vec<Option<Decimal>>,
        mode: RoundingMode,
    }

    impl Env for TestEnv {
        fn value(&mut self, slot: u32) -> Result<Decimal, Box<Error>> {
            self.values[slot as usize]
                .ok_or_else(|| Box::new(Error::usage(format!("slot {slot} was read"))))
        }

        fn rounding(&self) -> Rounding {
            Rounding::new(2, self.mode)
        }
    }

    /// Evaluates `text` with `vars` (name, value; a value of "fail" fails
    /// when read) under `mode`.
    fn eval_mode(
        text: &str,
        vars: &[(&str, &str)],
        mode: RoundingMode,
    ) -> Result<Decimal, EvalError> {
        let e = Expr::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let compiled = e
            .compile(&mut |name| vars.iter().position(|(n, _)| *n == name).map(|i| i as u32))
            .unwrap_or_else(|e| panic!("{text}: {e}"));
        let values = vars
            .iter()
            .map(|(_, v)| if *v == "fail" { None } else { Some(d(v)) })
            .collect();
        compiled.eval(&mut TestEnv { values, mode })
    }

    fn eval(text: &str, vars: &[(&str, &str)]) -> Result<Decimal, EvalError> {
        eval_mode(text, vars, RoundingMode::HalfEven)
    }

    /// The value as text, for comparisons that also check the scale.
    fn show(text: &str, vars: &[(&str, &str)]) -> String {
        eval(text, vars)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .to_string()
    }

    fn parse_err(text: &str) -> (usize, String) {
        match Expr::parse(text) {
            Ok(e) => panic!("{text:?} parsed as {e:?}"),
            Err(e) => (e.column, e.message),
        }
    }

    /// Prints the tree back as text, every compound in parentheses.
    fn print(e: &Expr) -> String {
        fn num(e: &Expr, n: &Num, out: &mut String) {
            let list = |out: &mut String, name: &str, args: &[&Num]| {
                out.push_str(name);
                out.push('(');
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    num(e, a, out);
                }
                out.push(')');
            };
            match n {
                Num::Lit(v) => out.push_str(&format!("({v})")),
                Num::Name(i) => out.push_str(e.name(*i)),
                Num::Neg(x) => {
                    out.push_str("(-");
                    num(e, x, out);
                    out.push(')');
                }
                Num::Arith(first, rest) => {
                    out.push('(');
                    num(e, first, out);
                    for (op, x) in rest.iter() {
                        out.push_str(match op {
                            ArithOp::Add => " + ",
                            ArithOp::Sub => " - ",
                            ArithOp::Mul => " * ",
                            ArithOp::Div => " / ",
                        });
                        num(e, x, out);
                    }
                    out.push(')');
                }
                Num::Min(a) => list(out, "min", &a.iter().collect::<Vec<_>>()),
                Num::Max(a) => list(out, "max", &a.iter().collect::<Vec<_>>()),
                Num::Abs(x) => list(out, "abs", &[x]),
                Num::Ceil(x) => list(out, "ceil", &[x]),
                Num::Floor(x) => list(out, "floor", &[x]),
                Num::Clamp(a) => list(out, "clamp", &[&a[0], &a[1], &a[2]]),
                Num::Round(a) => list(out, "round", &[&a[0], &a[1]]),
                Num::If(b) => {
                    out.push_str("if(");
                    cond(e, &b.cond, out);
                    out.push_str(", ");
                    num(e, &b.then, out);
                    out.push_str(", ");
                    num(e, &b.otherwise, out);
                    out.push(')');
                }
            }
        }
        fn cond(e: &Expr, c: &Cond, out: &mut String) {
            let join = |out: &mut String, cs: &[Cond], word: &str| {
                out.push('(');
                for (i, c) in cs.iter().enumerate() {
                    if i > 0 {
                        out.push_str(word);
                    }
                    cond(e, c, out);
                }
                out.push(')');
            };
            match c {
                Cond::Cmp(op, a) => {
                    out.push('(');
                    num(e, &a[0], out);
                    out.push_str(match op {
                        CmpOp::Lt => " < ",
                        CmpOp::Le => " <= ",
                        CmpOp::Gt => " > ",
                        CmpOp::Ge => " >= ",
                        CmpOp::Eq => " == ",
                        CmpOp::Ne => " != ",
                    });
                    num(e, &a[1], out);
                    out.push(')');
                }
                Cond::And(cs) => join(out, cs, " and "),
                Cond::Or(cs) => join(out, cs, " or "),
                Cond::Not(x) => {
                    out.push_str("(not ");
                    cond(e, x, out);
                    out.push(')');
                }
                Cond::If(a) => {
                    out.push_str("if(");
                    cond(e, &a[0], out);
                    out.push_str(", ");
                    cond(e, &a[1], out);
                    out.push_str(", ");
                    cond(e, &a[2], out);
                    out.push(')');
                }
            }
        }
        let mut out = String::new();
        num(e, &e.tree.root, &mut out);
        out
    }

    #[test]
    fn precedence_and_associativity_follow_the_spec() {
        // * binds tighter than +, unary minus tighter than *, and chains of
        // one level associate to the left.
        assert_eq!(show("1 + 2 * 3", &[]), "7");
        assert_eq!(show("(1 + 2) * 3", &[]), "9");
        assert_eq!(show("10 - 4 - 3", &[]), "3");
        assert_eq!(show("10 - (4 - 3)", &[]), "9");
        assert_eq!(show("24 / 4 / 2", &[]), "3");
        assert_eq!(eval("2 * 3 / 4", &[]), Ok(d("1.5")));
        assert_eq!(show("-2 * 3 + 10", &[]), "4");
        assert_eq!(show("2 * -3", &[]), "-6");
        assert_eq!(show("2 - -3", &[]), "5");
        assert_eq!(show("- 2 - 3", &[]), "-5");
        // or < and < not < comparisons.
        assert_eq!(show("if(1 > 2 and 2 > 1 or 1 == 1, 1, 0)", &[]), "1");
        assert_eq!(show("if(1 == 1 or 1 > 2 and 2 > 3, 1, 0)", &[]), "1");
        assert_eq!(show("if(not 1 > 2 and 2 > 1, 1, 0)", &[]), "1");
        assert_eq!(show("if(not (1 < 2 and 2 > 3), 1, 0)", &[]), "1");
        assert_eq!(show("if(1 + 1 == 2, 1, 0)", &[]), "1");
        // Tight spacing parses the same.
        assert_eq!(
            Expr::parse("a*b+c").unwrap(),
            Expr::parse(" a * b\t+\nc ").unwrap()
        );
        assert_eq!(
            Expr::parse("(a + b) - c").unwrap(),
            Expr::parse("a + b - c").unwrap()
        );
        assert_ne!(
            Expr::parse("a - (b - c)").unwrap(),
            Expr::parse("a - b - c").unwrap()
        );
    }

    #[test]
    fn every_function_computes_what_the_spec_says() {
        // min, max, abs, clamp, if, round, ceil and floor, on edge cases.
        assert_eq!(show("min(3)", &[]), "3");
        assert_eq!(show("min(3, -1, 2)", &[]), "-1");
        assert_eq!(show("max(3, -1, 2)", &[]), "3");
        assert_eq!(show("abs(-2.50)", &[]), "2.50");
        assert_eq!(show("abs(2)", &[]), "2");
        assert_eq!(show("clamp(5, 0, 10)", &[]), "5");
        assert_eq!(show("clamp(-5, 0, 10)", &[]), "0");
        assert_eq!(show("clamp(15, 0, 10)", &[]), "10");
        // lo above hi: min(max(x, lo), hi) gives hi.
        assert_eq!(show("clamp(5, 8, 2)", &[]), "2");
        assert_eq!(show("if(1 < 2, 10, 20)", &[]), "10");
        assert_eq!(show("if(1 > 2, 10, 20)", &[]), "20");
        assert_eq!(show("round(2.345, 2)", &[]), "2.34");
        assert_eq!(show("round(3, 2)", &[]), "3.00");
        assert_eq!(show("round(2.5, 0)", &[]), "2");
        assert_eq!(show("ceil(1.2)", &[]), "2");
        assert_eq!(show("ceil(-1.2)", &[]), "-1");
        assert_eq!(show("ceil(-0.2)", &[]), "0");
        assert_eq!(show("floor(1.8)", &[]), "1");
        assert_eq!(show("floor(-1.2)", &[]), "-2");
        assert_eq!(show("floor(7)", &[]), "7");
        assert_eq!(
            show(
                "ceil(q / size) * price",
                &[("q", "250"), ("size", "100"), ("price", "9")]
            ),
            "27"
        );
    }

    #[test]
    fn round_uses_the_environments_mode() {
        // Each mode on a positive and a negative tie, and the scale checks.
        let cases = [
            (RoundingMode::HalfEven, "1.005", "1.00"),
            (RoundingMode::HalfEven, "1.015", "1.02"),
            (RoundingMode::HalfUp, "1.005", "1.01"),
            (RoundingMode::HalfUp, "-1.005", "-1.01"),
            (RoundingMode::HalfDown, "1.005", "1.00"),
            (RoundingMode::Up, "1.001", "1.01"),
            (RoundingMode::Up, "-1.001", "-1.01"),
            (RoundingMode::Down, "1.009", "1.00"),
            (RoundingMode::Ceiling, "-1.009", "-1.00"),
            (RoundingMode::Ceiling, "1.001", "1.01"),
            (RoundingMode::Floor, "-1.001", "-1.01"),
            (RoundingMode::Floor, "1.009", "1.00"),
        ];
        for (mode, x, want) in cases {
            let got = eval_mode("round(x, 2)", &[("x", x)], mode).unwrap();
            assert_eq!(got.to_string(), want, "{mode:?} {x}");
        }
        assert_eq!(eval("round(-0.001, 2)", &[]).unwrap().to_string(), "0.00");
        assert_eq!(
            eval("round(1.5, s)", &[("s", "0.0")]).unwrap().to_string(),
            "2"
        );
        assert_eq!(eval("round(1, 28)", &[]).unwrap(), d("1"));
        for bad in ["2.5", "-1", "29", "100000000000"] {
            assert_eq!(
                eval("round(1, s)", &[("s", bad)]),
                Err(EvalError::BadScale(d(bad))),
                "{bad}"
            );
        }
    }

    #[test]
    fn type_errors_are_rejected_at_parse_with_the_column() {
        // Conditions as numbers and numbers as conditions, wherever they stand.
        let cond_as_num = "a condition cannot be used as a number".to_string();
        let num_as_cond = "a number cannot be used as a condition".to_string();
        assert_eq!(parse_err("a < b"), (1, cond_as_num.clone()));
        assert_eq!(parse_err("1 + (a < b)"), (5, cond_as_num.clone()));
        assert_eq!(parse_err("(a < b) * 2"), (1, cond_as_num.clone()));
        assert_eq!(parse_err("min(1, a == b)"), (8, cond_as_num.clone()));
        assert_eq!(parse_err("-(a < b)"), (2, cond_as_num.clone()));
        assert_eq!(parse_err("(a < b) < c"), (1, cond_as_num.clone()));
        assert_eq!(parse_err("if(a > 0, 1, b > 0)"), (14, cond_as_num.clone()));
        assert_eq!(parse_err("if(a, 1, 2)"), (4, num_as_cond.clone()));
        assert_eq!(
            parse_err("if(a > 1 and b, 1, 2)"),
            (14, num_as_cond.clone())
        );
        assert_eq!(parse_err("if(not a, 1, 2)"), (8, num_as_cond.clone()));
        assert_eq!(parse_err("if(a > 1 or 2, 1, 2)"), (13, num_as_cond.clone()));
        // With mismatched branches, the first one decides the type.
        assert_eq!(
            parse_err("if(a > 0, if(b > 0, b > 1, c > 1), 3)"),
            (36, num_as_cond.clone())
        );
        assert_eq!(
            parse_err("if(a > 0, if(b > 0, b > 1, 5) > 0, 3)"),
            (28, num_as_cond)
        );
        // Conditions of conditions are fine.
        assert!(Expr::parse("if(if(a > 0, b > 1, c > 1) and not d == 0, 1, 2)").is_ok());
    }

    #[test]
    fn chained_comparisons_are_rejected() {
        // `a < b < c` reads as nonsense over conditions: it is an error at the second operator.
        assert_eq!(
            parse_err("if(a < b < c, 1, 2)"),
            (10, "comparisons cannot be chained".to_string())
        );
        assert_eq!(
            parse_err("if(a == b != c, 1, 2)"),
            (11, "comparisons cannot be chained".to_string())
        );
        assert!(Expr::parse("if(a < b and b < c, 1, 2)").is_ok());
    }

    #[test]
    fn syntax_errors_say_what_was_expected_and_quote_the_text() {
        // Messages and columns of the usual mistakes.
        let cases: [(&str, usize, &str); 18] = [
            (
                "",
                1,
                "expected a number, a name or \"(\" but found end of expression",
            ),
            ("(1 + 2", 7, "expected \")\" but found end of expression"),
            (
                "1 +",
                4,
                "expected a number, a name or \"(\" but found end of expression",
            ),
            (
                "1 * * 2",
                5,
                "unexpected \"*\": expected a number, a name or \"(\"",
            ),
            (
                "1 2",
                3,
                "unexpected \"2\": expected an operator or the end of the expression",
            ),
            (
                "(1))",
                4,
                "unexpected \")\": expected an operator or the end of the expression",
            ),
            ("foo(1)", 1, "unknown function foo"),
            (
                "min + 1",
                5,
                "expected \"(\" after the function min but found \"+\"",
            ),
            ("round(1, 2, 3)", 1, "round takes 2 arguments, found 3"),
            ("abs()", 1, "abs takes 1 argument, found 0"),
            ("max()", 1, "max takes at least 1 argument, found 0"),
            (
                "min(1,)",
                7,
                "unexpected \")\": expected a number, a name or \"(\"",
            ),
            ("min(1 2)", 7, "expected \",\" or \")\" but found \"2\""),
            ("1 and 2", 1, "a number cannot be used as a condition"),
            ("x = 1", 3, "unexpected \"=\": did you mean \"==\"?"),
            ("a + é", 5, "unexpected \"é\""),
            ("é + é", 1, "unexpected \"é\""),
            (
                "1 + not",
                5,
                "unexpected \"not\": expected a number, a name or \"(\"",
            ),
        ];
        for (text, column, message) in cases {
            assert_eq!(parse_err(text), (column, message.to_string()), "{text:?}");
        }
        // Literals are strict: the whole malformed literal is quoted.
        let (column, message) = parse_err("2 * 1e3");
        assert_eq!(column, 5);
        assert!(
            message.starts_with("malformed decimal \"1e3\""),
            "{message}"
        );
        assert!(parse_err(".5").1.starts_with("malformed decimal \".5\""));
        assert!(parse_err("5.").1.starts_with("malformed decimal \"5.\""));
        assert!(
            parse_err("1.2.3")
                .1
                .starts_with("malformed decimal \"1.2.3\"")
        );
        assert!(
            parse_err("100000000000000000000000000000")
                .1
                .contains("too large")
        );
        // Reserved words cannot be names; `_x` is not a name.
        assert_eq!(
            parse_err("and + 1").1,
            "unexpected \"and\": expected a number, a name or \"(\""
        );
        assert_eq!(parse_err("_x").1, "unexpected \"_\"");
        // Keywords are case sensitive, so `AND` is an ordinary name.
        assert_eq!(Expr::parse("AND").unwrap().as_name(), Some("AND"));
    }

    #[test]
    fn nesting_64_levels_is_accepted_and_65_rejected() {
        // Parentheses, calls, unary minus and not each count one level.
        let parens = |n: usize| format!("{}x{}", "(".repeat(n), ")".repeat(n));
        let minus = |n: usize| format!("{}x", "-".repeat(n));
        let calls = |n: usize| format!("{}x{}", "abs(".repeat(n), ")".repeat(n));
        let nots = |n: usize| format!("if({}x > 0, 1, 2)", "not ".repeat(n));
        for (make, extra) in [
            (&parens as &dyn Fn(usize) -> String, 0),
            (&minus, 0),
            (&calls, 0),
            (&nots, 1),
        ] {
            let ok = make(64 - extra);
            assert!(Expr::parse(&ok).is_ok(), "{ok}");
            let deep = make(65 - extra);
            let message = Expr::parse(&deep).unwrap_err().message;
            assert!(
                message.starts_with("the expression nests more than 64 levels deep"),
                "{message}"
            );
        }
        // The column is where the 65th level opens.
        assert_eq!(Expr::parse(&parens(65)).unwrap_err().column, 65);
        // Mixed: 32 parentheses around 32 minus signs is 64.
        assert!(
            Expr::parse(&format!(
                "{}{}x{}",
                "(".repeat(32),
                "-".repeat(32),
                ")".repeat(32)
            ))
            .is_ok()
        );
        assert!(
            Expr::parse(&format!(
                "{}{}x{}",
                "(".repeat(32),
                "-".repeat(33),
                ")".repeat(32)
            ))
            .is_err()
        );
        // Siblings do not add up: depth is nesting, not count.
        let wide = vec![parens(60); 100].join(" + ");
        assert!(Expr::parse(&wide).is_ok());
    }

    #[test]
    fn hostile_input_neither_panics_nor_overflows_the_stack() {
        // 10_000 openers of every kind, and very long flat chains.
        for opener in ["(", "-", "not ", "min(", "if(", "abs(-(", "((((-"] {
            let text = opener.repeat(10_000);
            let e = Expr::parse(&text).unwrap_err();
            assert!(e.message.contains("64 levels"), "{opener}: {}", e.message);
        }
        let chain = vec!["1"; 100_000].join(" + ");
        let e = Expr::parse(&chain).unwrap();
        assert_eq!(
            e.compile(&mut |_| None).unwrap().constant(),
            Some(d("100000"))
        );
        let conds = format!("if({}, 1, 0)", vec!["a < 1"; 50_000].join(" and "));
        assert_eq!(eval(&conds, &[("a", "0")]).unwrap(), d("1"));
        let args = format!("max({})", vec!["a"; 50_000].join(", "));
        assert_eq!(eval(&args, &[("a", "7")]).unwrap(), d("7"));
        // Many distinct names are deduplicated past the linear-scan limit.
        let names: Vec<String> = (0..1000).map(|i| format!("n{i}")).collect();
        let text = format!("{} + {}", names.join(" + "), names.join(" * "));
        let e = Expr::parse(&text).unwrap();
        assert_eq!(
            e.names(),
            names.iter().map(String::as_str).collect::<Vec<_>>()
        );
    }

    #[test]
    fn division_by_zero_and_overflow_are_errors() {
        // Checked arithmetic everywhere, with the zero test before dividing.
        assert_eq!(eval("1 / 0", &[]), Err(EvalError::DivisionByZero));
        assert_eq!(
            eval("a / (b - b)", &[("a", "1"), ("b", "3")]),
            Err(EvalError::DivisionByZero)
        );
        assert_eq!(eval("0 / 0.00", &[]), Err(EvalError::DivisionByZero));
        let max = Decimal::MAX.to_string();
        assert_eq!(eval("m * 2", &[("m", &max)]), Err(EvalError::Overflow));
        assert_eq!(eval("m + 1", &[("m", &max)]), Err(EvalError::Overflow));
        assert_eq!(eval("-m - 1", &[("m", &max)]), Err(EvalError::Overflow));
        assert_eq!(eval("m / 0.5", &[("m", &max)]), Err(EvalError::Overflow));
        assert_eq!(eval("-m", &[("m", &max)]).unwrap(), Decimal::MIN);
        // Results that do not fit in decimals are rounded, not errors.
        assert_eq!(show("1 / 3", &[]), "0.3333333333333333333333333333");
        assert_eq!(show("2 / 3", &[]), "0.6666666666666666666666666667");
        assert_eq!(
            show("0.0000000000000001 * 0.0000000000000001", &[]),
            "0.0000000000000000000000000000"
        );
        // Ties in the dropped digits go to the even digit.
        assert_eq!(
            show("0.0000000000000000000000000005 * 0.5", &[]),
            "0.0000000000000000000000000002"
        );
        assert_eq!(
            show("0.0000000000000000000000000007 * 0.5", &[]),
            "0.0000000000000000000000000004"
        );
    }

    #[test]
    fn and_or_and_if_evaluate_only_what_they_need() {
        // `fail` errors when read: reaching it would show in the result.
        let vars = [("a", "1"), ("fail", "fail")];
        assert_eq!(show("if(a > 0, 5, fail)", &vars), "5");
        assert_eq!(show("if(a < 0, fail, 6)", &vars), "6");
        assert_eq!(show("if(a > 0 or fail > 0, 1, 2)", &vars), "1");
        assert_eq!(show("if(a < 0 and fail > 0, 1, 2)", &vars), "2");
        assert_eq!(show("if(if(a > 0, a == 1, fail > 0), 1, 2)", &vars), "1");
        // And the failing operand is read when it is needed.
        assert!(matches!(
            eval("if(a < 0, 5, fail)", &vars),
            Err(EvalError::Lookup(_))
        ));
        assert!(matches!(
            eval("if(a < 0 or fail > 0, 1, 2)", &vars),
            Err(EvalError::Lookup(_))
        ));
        assert!(matches!(
            eval("if(a > 0 and fail > 0, 1, 2)", &vars),
            Err(EvalError::Lookup(_))
        ));
        let e = eval("fail + 1", &vars).unwrap_err();
        assert_eq!(e.to_string(), "slot 1 was read");
    }

    #[test]
    fn if_with_comparisons_picks_by_value() {
        // Every comparison operator, comparing values not representations.
        let vars = [("a", "1.0"), ("b", "1")];
        for (op, want) in [
            ("<", "0"),
            ("<=", "1"),
            (">", "0"),
            (">=", "1"),
            ("==", "1"),
            ("!=", "0"),
        ] {
            assert_eq!(show(&format!("if(a {op} b, 1, 0)"), &vars), want, "{op}");
        }
        assert_eq!(show("if(a < 2, 1, 0)", &vars), "1");
        let rate = "if(conversations > 0, resolutions / conversations, 0)";
        assert_eq!(
            show(rate, &[("conversations", "0"), ("resolutions", "0")]),
            "0"
        );
        assert_eq!(
            show(rate, &[("conversations", "8"), ("resolutions", "6")]),
            "0.75"
        );
    }

    #[test]
    fn unary_minus_negates_names_and_never_leaves_negative_zero() {
        // -x of a name, nested minus signs, and -0 made 0.
        assert_eq!(show("-a", &[("a", "2.5")]), "-2.5");
        assert_eq!(show("--a", &[("a", "2.5")]), "2.5");
        assert_eq!(show("-a * b", &[("a", "2"), ("b", "3")]), "-6");
        assert_eq!(show("-a", &[("a", "0")]), "0");
        assert_eq!(show("a * -1", &[("a", "0")]), "0");
        assert_eq!(show("-0.00", &[]), "0.00");
        assert_eq!(
            Expr::parse("-0").unwrap().as_literal().unwrap().to_string(),
            "0"
        );
    }

    #[test]
    fn accessors_report_literals_names_and_text() {
        // as_literal, as_name, names, text, equality of trees.
        assert_eq!(Expr::parse("-5").unwrap().as_literal(), Some(d("-5")));
        assert_eq!(
            Expr::parse(" ( 0.50 ) ").unwrap().as_literal(),
            Some(d("0.5"))
        );
        assert_eq!(Expr::parse("a").unwrap().as_literal(), None);
        assert_eq!(Expr::parse("1 + 1").unwrap().as_literal(), None);
        assert_eq!(Expr::parse(" units ").unwrap().as_name(), Some("units"));
        assert_eq!(Expr::parse("-units").unwrap().as_name(), None);
        let e = Expr::parse("b * a + b / c - a").unwrap();
        assert_eq!(e.names(), ["b", "a", "c"]);
        assert_eq!(e.text(), "b * a + b / c - a");
        assert_eq!(e.to_string(), "b * a + b / c - a");
        assert_eq!(Expr::parse("0.99").unwrap(), Expr::parse("0.990").unwrap());
        assert_eq!(Expr::parse("0.99").unwrap(), Expr::literal(d("0.99")));
        assert_eq!(Expr::parse("-5").unwrap(), Expr::literal(d("-5")));
        assert_ne!(Expr::parse("a + b").unwrap(), Expr::parse("a + c").unwrap());
        assert_ne!(Expr::parse("a + b").unwrap(), Expr::parse("b + a").unwrap());
        assert_eq!(Expr::literal(d("12.50")).text(), "12.50");
        // Function names are not names the expression reads.
        assert_eq!(
            Expr::parse("max(x, min(y, 1))").unwrap().names(),
            ["x", "y"]
        );
    }

    #[test]
    fn compile_resolves_each_name_once_and_reports_undefined_ones() {
        // The resolver sees each distinct name once; a missing one is an
        // error at its first column.
        let e = Expr::parse("a + b * a + outcome_count").unwrap();
        let mut seen = Vec::new();
        let err = e
            .compile(&mut |name| {
                seen.push(name.to_string());
                (name != "outcome_count").then_some(seen.len() as u32)
            })
            .unwrap_err();
        assert_eq!(seen, ["a", "b", "outcome_count"]);
        assert_eq!(
            err,
            ExprError {
                column: 13,
                message: "undefined name outcome_count".to_string()
            }
        );
        assert_eq!(
            err.to_string(),
            "undefined name outcome_count (at column 13)"
        );
        // Slots are what the resolver said, not positions.
        let e = Expr::parse("x - y").unwrap();
        let c = e
            .compile(&mut |name| Some(if name == "x" { 7 } else { 3 }))
            .unwrap();
        let mut values = vec![None; 8];
        values[7] = Some(d("10"));
        values[3] = Some(d("4"));
        assert_eq!(
            c.eval(&mut TestEnv {
                values,
                mode: RoundingMode::HalfEven
            })
            .unwrap(),
            d("6")
        );
        assert_eq!(c.constant(), None);
    }

    #[test]
    fn constants_are_known_without_an_environment() {
        // Compiled::constant and Expr::eval_constant.
        let constant = |t: &str| {
            Expr::parse(t)
                .unwrap()
                .compile(&mut |_| None)
                .unwrap()
                .constant()
        };
        assert_eq!(constant("1.5 * 2"), Some(d("3")));
        assert_eq!(constant("-0.0"), Some(d("0")));
        assert_eq!(constant("1 / 0"), None);
        assert_eq!(constant("round(1.005, 2)"), None);
        let e = Expr::parse("1 / 0")
            .unwrap()
            .compile(&mut |_| None)
            .unwrap();
        assert_eq!(
            e.eval(&mut TestEnv {
                values: vec![],
                mode: RoundingMode::HalfEven
            }),
            Err(EvalError::DivisionByZero)
        );

        let e = Expr::parse("if(tier > 1, base * 2, base)").unwrap();
        let rounding = Rounding::new(2, RoundingMode::HalfEven);
        let both = |n: &str| match n {
            "tier" => Some(d("2")),
            "base" => Some(d("10")),
            _ => None,
        };
        assert_eq!(e.eval_constant(&both, rounding), Some(Ok(d("20"))));
        let tier_only = |n: &str| (n == "tier").then(|| d("2"));
        assert_eq!(e.eval_constant(&tier_only, rounding), None);
        let zero = |_: &str| Some(Decimal::ZERO);
        assert_eq!(
            Expr::parse("1 / x").unwrap().eval_constant(&zero, rounding),
            Some(Err(EvalError::DivisionByZero))
        );
        let up = Rounding::new(2, RoundingMode::Up);
        assert_eq!(
            Expr::parse("round(1.001, 2)")
                .unwrap()
                .eval_constant(&|_| None, up),
            Some(Ok(d("1.01")))
        );
    }

    #[test]
    fn serde_reads_strings_numbers_and_writes_literals_normalised() {
        // The serde impls: a string is parsed, an integer is a literal, a
        // binary float is refused, and a literal is written as its value.
        let e: Expr = serde_json::from_str("\"a * 2\"").unwrap();
        assert_eq!(e, Expr::parse("a*2").unwrap());
        let e: Expr = serde_json::from_str("\"12.50\"").unwrap();
        assert_eq!((e.as_literal(), e.text()), (Some(d("12.50")), "12.50"));
        let e: Expr = serde_json::from_str("-12").unwrap();
        assert_eq!(e.as_literal(), Some(d("-12")));
        let e: Expr = serde_json::from_str("18446744073709551615").unwrap();
        assert_eq!(e.as_literal(), Some(d("18446744073709551615")));
        // serde_json reads a bare 12.50 as the float 12.5: refused, never
        // rounded through f64.
        let err = serde_json::from_str::<Expr>("12.50")
            .unwrap_err()
            .to_string();
        assert!(err.contains("write decimals as strings"), "{err}");
        assert!(err.contains("Contract::from_json_str"), "{err}");
        assert_eq!(
            serde_json::to_string(&Expr::parse("-(5)").unwrap()).unwrap(),
            "\"-5\""
        );
        assert_eq!(
            serde_json::to_string(&Expr::parse("a*2").unwrap()).unwrap(),
            "\"a*2\""
        );
        let err = serde_json::from_str::<Expr>("\"a <\"")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("but found end of expression (at column 4)"),
            "{err}"
        );
    }

    /// Text of a random well-typed number expression over names a..d.
    fn num_text() -> impl Strategy<Value = String> {
        let leaf = prop_oneof!["[0-9]{1,3}(\\.[0-9]{1,3})?", "[a-d]", Just("0".to_string()),];
        leaf.prop_recursive(4, 48, 4, |inner| {
            let cmp = prop_oneof![
                Just("<"),
                Just("<="),
                Just(">"),
                Just(">="),
                Just("=="),
                Just("!=")
            ];
            let cond =
                (inner.clone(), cmp, inner.clone()).prop_map(|(a, op, b)| format!("{a} {op} {b}"));
            let cond = prop_oneof![
                cond.clone(),
                (cond.clone(), cond.clone()).prop_map(|(a, b)| format!("{a} and {b}")),
                (cond.clone(), cond.clone()).prop_map(|(a, b)| format!("{a} or {b}")),
                cond.clone().prop_map(|a| format!("not {a}")),
                (cond.clone(), cond.clone(), cond.clone())
                    .prop_map(|(a, b, c)| format!("(if({a}, {b}, {c}))")),
            ];
            let op = prop_oneof![Just("+"), Just("-"), Just("*"), Just("/")];
            prop_oneof![
                (inner.clone(), op, inner.clone()).prop_map(|(a, op, b)| format!("{a} {op} {b}")),
                inner.clone().prop_map(|a| format!("({a})")),
                inner.clone().prop_map(|a| format!("-{a}")),
                prop::collection::vec(inner.clone(), 1..4)
                    .prop_map(|v| format!("min({})", v.join(", "))),
                prop::collection::vec(inner.clone(), 1..4)
                    .prop_map(|v| format!("max({})", v.join(","))),
                inner.clone().prop_map(|a| format!("abs({a})")),
                inner.clone().prop_map(|a| format!("ceil({a})")),
                inner.clone().prop_map(|a| format!("floor({a})")),
                (inner.clone(), 0u32..30).prop_map(|(a, s)| format!("round({a}, {s})")),
                (inner.clone(), inner.clone(), inner.clone())
                    .prop_map(|(a, b, c)| format!("clamp({a}, {b}, {c})")),
                (cond, inner.clone(), inner).prop_map(|(c, a, b)| format!("if({c}, {a}, {b})")),
            ]
        })
    }

    fn value() -> impl Strategy<Value = Decimal> {
        prop_oneof![
            Just(Decimal::ZERO),
            Just(Decimal::MAX),
            Just(Decimal::MIN),
            (-1000i64..1000, 0u32..6).prop_map(|(m, s)| Decimal::new(m, s)),
            any::<Decimal>(),
        ]
    }

    proptest! {
        #[test]
        fn parse_never_panics_on_arbitrary_text(text in any::<String>()) {
            // Any text at all: an expression or an error, never a panic.
            let _ = Expr::parse(&text);
        }

        #[test]
        fn parse_never_panics_on_token_soup(
            parts in prop::collection::vec(
                prop_oneof![
                    Just("("), Just(")"), Just(","), Just("-"), Just("+"), Just("*"), Just("/"),
                    Just("<"), Just("<="), Just("=="), Just("!="), Just("="), Just("!"),
                    Just("and"), Just("or"), Just("not"), Just("if"), Just("min"), Just("round"),
                    Just("a"), Just("b_1"), Just("1"), Just("2.5"), Just("."), Just("e"), Just(" "),
                    Just("é"), Just("9999999999999999999999999999999"),
                ],
                0..40,
            )
        ) {
            // Sequences of real tokens reach deeper into the parser than random text.
            let text = parts.concat();
            if let Err(e) = Expr::parse(&text) {
                prop_assert!(e.column >= 1 && e.column <= text.chars().count() + 1, "{text:?}: {e}");
                prop_assert!(!e.message.is_empty());
            }
        }

    }

    #[test]
    fn the_deepest_expressions_parse_and_evaluate_on_a_small_stack() {
        // 64 levels of every kind of nesting parse, compile and evaluate on
        // a 256 KiB thread in any build: the parser grows its stack on
        // demand, and nothing else recurses deeply.
        let deep = [
            format!("{}a{}", "abs(".repeat(64), ")".repeat(64)),
            format!("{}a{}", "(".repeat(64), ")".repeat(64)),
            format!("{}a", "-".repeat(64)),
            format!("{}a{}", "max(1, ".repeat(64), ")".repeat(64)),
            format!("if({}a > 0, 1, 2)", "not ".repeat(62)),
            format!("{}a{}", "-(".repeat(32), ")".repeat(32)),
        ];
        let ok = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || {
                for text in &deep {
                    let e = Expr::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
                    let c = e.compile(&mut |_| Some(0)).unwrap();
                    let mut env = TestEnv {
                        values: vec![Some(Decimal::ONE)],
                        mode: RoundingMode::HalfEven,
                    };
                    c.eval(&mut env).unwrap();
                    let too_deep = format!("({text})");
                    assert!(
                        Expr::parse(&too_deep).is_err() || text.starts_with("if("),
                        "{too_deep}"
                    );
                }
            })
            .unwrap()
            .join();
        assert!(ok.is_ok());
    }
    #[test]
    fn generated_expressions_print_and_reparse_to_the_same_tree() {
        // Generating these trees nests proptest's strategy combinators deep
        // enough to need more than a test thread's 2 MiB of stack in a debug
        // build, so the property runs on a thread with room.
        use proptest::test_runner::{TestCaseError, TestRunner};
        let run = || {
            let mut runner = TestRunner::default();
            let strategy = (num_text(), prop::collection::vec(value(), 4));
            runner
                .run(&strategy, |(text, values)| {
                    // Well-typed expressions parse; the printed tree parses back
                    // equal and evaluates the same; evaluation never panics.
                    let e = Expr::parse(&text)
                        .map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
                    let printed = print(&e);
                    let again = Expr::parse(&printed)
                        .map_err(|e| TestCaseError::fail(format!("{printed}: {e}")))?;
                    prop_assert_eq!(&again, &e, "{} printed as {}", text, printed);
                    let names = ["a", "b", "c", "d"];
                    let resolve =
                        &mut |n: &str| names.iter().position(|x| *x == n).map(|i| i as u32);
                    let env = || TestEnv {
                        values: values.iter().copied().map(Some).collect(),
                        mode: RoundingMode::HalfUp,
                    };
                    let first = e.compile(resolve).unwrap().eval(&mut env());
                    let second = again.compile(resolve).unwrap().eval(&mut env());
                    prop_assert_eq!(&first, &second);
                    if let Ok(v) = first {
                        prop_assert!(
                            !(v.is_zero() && v.is_sign_negative()),
                            "negative zero from {}",
                            text
                        );
                    }
                    let lookup = |n: &str| names.iter().position(|x| *x == n).map(|i| values[i]);
                    let constant = e.eval_constant(&lookup, Rounding::new(2, RoundingMode::HalfUp));
                    prop_assert_eq!(constant, Some(first));
                    Ok(())
                })
                .map_err(|e| e.to_string())
        };
        let outcome = std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn(run)
            .unwrap()
            .join()
            .unwrap();
        outcome.unwrap();
    }
}
