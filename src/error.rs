//! The crate's one error type: what went wrong ([`ErrorKind`]), where
//! ([`Location`]), a sentence, and the underlying cause when there is one.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

/// What kind of thing went wrong: the part of an error a caller matches on.
///
/// A billing backend decides what to do from the kind alone: an invalid
/// contract goes back to whoever wrote it, missing data waits for the data,
/// an overflow or a division by zero is a contract whose numbers make no
/// sense for the period, an unavailable store is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A contract (or scenario) file cannot be parsed, or breaks a rule of
    /// the format, or one of the limits on its shape.
    InvalidContract,
    /// Metric data or a document (issued statements) cannot be read: a
    /// malformed row, a wrong header, a value that is not a decimal.
    MalformedData,
    /// A metric whose `missing` rule is `error` has no observation in its
    /// window.
    MissingData,
    /// Two versions of one observation id are equally recent and disagree.
    ConflictingData,
    /// An amount or intermediate value does not fit a decimal.
    Overflow,
    /// An expression or formula divides by zero.
    DivisionByZero,
    /// A value computed for the period breaks a rule of its charge (a
    /// negative quantity, tiers out of order, a negative package size).
    InvalidValue,
    /// A file could not be read or written.
    Io,
    /// A metric or ledger store could not be opened or queried.
    StoreUnavailable,
    /// A carried [`State`](crate::State) belongs to another contract or
    /// version, or does not fit the contract's shape.
    StateMismatch,
    /// The caller asked for something that does not make sense: a date that
    /// is not a period start, a period already settled, an unknown option.
    InvalidArgument,
}

impl ErrorKind {
    /// A short lowercase name (`invalid contract`, `missing data`, …).
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::InvalidContract => "invalid contract",
            ErrorKind::MalformedData => "malformed data",
            ErrorKind::MissingData => "missing data",
            ErrorKind::ConflictingData => "conflicting data",
            ErrorKind::Overflow => "arithmetic overflow",
            ErrorKind::DivisionByZero => "division by zero",
            ErrorKind::InvalidValue => "invalid value",
            ErrorKind::Io => "i/o",
            ErrorKind::StoreUnavailable => "store unavailable",
            ErrorKind::StateMismatch => "state mismatch",
            ErrorKind::InvalidArgument => "invalid argument",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where an error is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Location {
    /// Nowhere in particular (a bad argument).
    None,
    /// A field of a contract: `path` like `charges[2].tiers[1].up_to`, and
    /// the file the contract was read from, if any.
    Field {
        /// The file, when the contract came from one.
        file: Option<String>,
        /// The field path inside the contract.
        path: String,
    },
    /// A position in a file: 1-based line and column.
    Position {
        /// The file.
        file: String,
        /// 1-based line.
        line: u64,
        /// 1-based column.
        column: u64,
    },
    /// A place in metric data, said as text: `FILE:LINE:COLUMN`,
    /// `FILE:LINE`, or a source and the rows at fault.
    Data(String),
    /// A contract's period being settled.
    Period {
        /// The contract id.
        contract: String,
        /// The period as `START..END` local dates.
        period: String,
    },
    /// A file or a store.
    File(String),
}

impl Location {
    /// Whether the location reads as `text`.
    fn eq_text(&self, text: &str) -> bool {
        use fmt::Write as _;
        let mut own = String::new();
        // Writing into a String cannot fail.
        let _ = write!(own, "{self}");
        own == text
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::None => Ok(()),
            Location::Field { file, path } => {
                if let Some(file) = file {
                    write!(f, "{file}: ")?;
                }
                f.write_str(path)
            }
            Location::Position { file, line, column } => write!(f, "{file}:{line}:{column}"),
            Location::Data(at) | Location::File(at) => f.write_str(at),
            Location::Period { contract, period } => {
                write!(f, "contract {contract}, period {period}")
            }
        }
    }
}

/// A location compares equal to its text, so a test can say
/// `assert_eq!(error.location(), "m.csv:2:3")`.
impl PartialEq<str> for Location {
    fn eq(&self, other: &str) -> bool {
        self.eq_text(other)
    }
}

impl PartialEq<&str> for Location {
    fn eq(&self, other: &&str) -> bool {
        self.eq_text(other)
    }
}

impl PartialEq<String> for Location {
    fn eq(&self, other: &String) -> bool {
        self.eq_text(other)
    }
}

impl PartialEq<String> for &Location {
    fn eq(&self, other: &String) -> bool {
        self.eq_text(other)
    }
}

/// Everything that can go wrong: its [`ErrorKind`], its [`Location`] and a
/// sentence saying what is wrong, lowercase and without a final period.
/// Errors that come from the operating system or a store keep it as their
/// [`source`](std::error::Error::source).
///
/// # Example
/// ```
/// use outcome_billing::{Contract, ErrorKind, Location};
/// let error = Contract::from_toml_str("format = 1\nid = \"\"").unwrap_err();
/// assert_eq!(error.kind(), ErrorKind::InvalidContract);
/// assert!(matches!(error.location(), Location::Field { .. }));
/// ```
#[derive(Clone)]
pub struct Error {
    // Boxed: results travel through the settlement loop, and an error is
    // rare there, so the `Ok` side stays small.
    inner: Box<Inner>,
}

#[derive(Clone)]
struct Inner {
    kind: ErrorKind,
    location: Location,
    message: String,
    source: Option<Arc<dyn StdError + Send + Sync>>,
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Results inside evaluation box their error, so the values that flow on
/// the hot path stay small.
pub(crate) type R<T> = std::result::Result<T, Box<Error>>;

impl Error {
    /// An error of `kind` at `location`.
    pub fn new(kind: ErrorKind, location: Location, message: impl fmt::Display) -> Error {
        Error {
            inner: Box::new(Inner {
                kind,
                location,
                message: message.to_string(),
                source: None,
            }),
        }
    }

    /// An invalid contract at field `path`.
    pub fn contract(path: impl Into<String>, message: impl fmt::Display) -> Error {
        Error::new(
            ErrorKind::InvalidContract,
            Location::Field {
                file: None,
                path: path.into(),
            },
            message,
        )
    }

    /// A file that cannot be parsed as its format, at a line and column.
    pub fn syntax(
        file: impl Into<String>,
        line: u64,
        column: u64,
        message: impl fmt::Display,
    ) -> Error {
        Error::new(
            ErrorKind::InvalidContract,
            Location::Position {
                file: file.into(),
                line,
                column,
            },
            message,
        )
    }

    /// Malformed data at `location` (`FILE:LINE:COLUMN`, or a source name).
    pub fn data(location: impl Into<String>, message: impl fmt::Display) -> Error {
        Error::new(
            ErrorKind::MalformedData,
            Location::Data(location.into()),
            message,
        )
    }

    /// A failure settling `period` of `contract`.
    pub fn settlement(
        kind: ErrorKind,
        contract: impl Into<String>,
        period: impl Into<String>,
        message: impl fmt::Display,
    ) -> Error {
        Error::new(
            kind,
            Location::Period {
                contract: contract.into(),
                period: period.into(),
            },
            message,
        )
    }

    /// A file that cannot be read or written; the operating system's error
    /// is the source.
    pub fn io(path: impl Into<String>, source: std::io::Error) -> Error {
        let message = source.to_string();
        Error::new(ErrorKind::Io, Location::File(path.into()), message).with_source(source)
    }

    /// A store that cannot be opened or queried; its error is the source.
    pub fn store(path: impl Into<String>, source: impl StdError + Send + Sync + 'static) -> Error {
        let message = source.to_string();
        Error::new(
            ErrorKind::StoreUnavailable,
            Location::File(path.into()),
            message,
        )
        .with_source(source)
    }

    /// A request that does not make sense.
    pub fn usage(message: impl fmt::Display) -> Error {
        Error::new(ErrorKind::InvalidArgument, Location::None, message)
    }

    /// The same error with `source` as its cause.
    pub fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Error {
        self.inner.source = Some(Arc::new(source));
        self
    }

    /// The same error with another kind.
    pub fn with_kind(mut self, kind: ErrorKind) -> Error {
        self.inner.kind = kind;
        self
    }

    /// The same error with another sentence (the location and kind kept).
    pub fn with_message(mut self, message: impl fmt::Display) -> Error {
        self.inner.message = message.to_string();
        self
    }

    /// The same error at another location.
    pub fn at(mut self, location: Location) -> Error {
        self.inner.location = location;
        self
    }

    /// The same error, said to come from `file` (contract field errors only).
    pub fn in_file(mut self, name: impl Into<String>) -> Error {
        if let Location::Field { file, .. } = &mut self.inner.location {
            *file = Some(name.into());
        }
        self
    }

    /// What kind of error this is.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// Where the error is.
    pub fn location(&self) -> &Location {
        &self.inner.location
    }

    /// The sentence that says what is wrong, without its location.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// The field path of a contract error, if the error is at one.
    pub fn field_path(&self) -> Option<&str> {
        match &self.inner.location {
            Location::Field { path, .. } => Some(path),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Inner {
            location, message, ..
        } = &*self.inner;
        match location {
            Location::None => f.write_str(message),
            Location::Period { contract, period } => {
                write!(f, "{contract}: period {period}: {message}")
            }
            other => write!(f, "{other}: {message}"),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.inner.kind)
            .field("location", &self.inner.location)
            .field("message", &self.inner.message);
        if let Some(source) = &self.inner.source {
            d.field("source", source);
        }
        d.finish()
    }
}

/// Two errors are equal when their kind, location and sentence are; a
/// source is not compared (the sentence already says it).
impl PartialEq for Error {
    fn eq(&self, other: &Error) -> bool {
        self.inner.kind == other.inner.kind
            && self.inner.location == other.inner.location
            && self.inner.message == other.inner.message
    }
}

impl Eq for Error {}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_puts_the_location_first() {
        let e = Error::contract("charges[0].amount", "bad").in_file("c.toml");
        assert_eq!(e.to_string(), "c.toml: charges[0].amount: bad");
        let e = Error::syntax("c.toml", 3, 7, "expected `=`");
        assert_eq!(e.to_string(), "c.toml:3:7: expected `=`");
        let e = Error::settlement(ErrorKind::Overflow, "acme", "2026-01-01..2026-02-01", "big");
        assert_eq!(e.to_string(), "acme: period 2026-01-01..2026-02-01: big");
        assert_eq!(
            e.location().to_string(),
            "contract acme, period 2026-01-01..2026-02-01"
        );
        assert_eq!(Error::usage("no").to_string(), "no");
    }

    #[test]
    fn io_errors_keep_their_source() {
        let os = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let e = Error::io("m.csv", os);
        assert_eq!(e.kind(), ErrorKind::Io);
        assert_eq!(e.to_string(), "m.csv: gone");
        let source = e.source().expect("an i/o error has a source");
        assert_eq!(source.to_string(), "gone");
    }
}
