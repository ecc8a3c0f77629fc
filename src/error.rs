//! The crate's one error type.

use std::fmt;

/// Everything that can go wrong, with the context needed to find it.
///
/// Each variant carries a human sentence (`message`) and a location
/// (`location()`): a field path inside a contract, a `FILE:LINE:COLUMN`
/// position in a data file, or the contract and period being settled.
/// Messages are lowercase and carry no final period.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A contract is invalid: `path` names the field
    /// (`charges[2].tiers[1].up_to`), `file` the file it came from if any.
    #[error("{}{path}: {message}", file_prefix(.file))]
    Contract {
        /// The file the contract was read from, if any.
        file: Option<String>,
        /// The field path inside the contract.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A file could not be parsed as its format (TOML, JSON, YAML, scenario).
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        /// The file.
        file: String,
        /// 1-based line.
        line: u64,
        /// 1-based column.
        column: u64,
        /// What is wrong.
        message: String,
    },
    /// Metric data is malformed or inconsistent. `location` is
    /// `FILE:LINE:COLUMN` for a row, or names the series and rows at fault.
    #[error("{location}: {message}")]
    Data {
        /// Where: `FILE:LINE:COLUMN`, `FILE:LINE`, or a source name.
        location: String,
        /// What is wrong.
        message: String,
    },
    /// Settlement of one period failed (division by zero, a missing metric,
    /// an overflow, a rule broken by an expression's value).
    #[error("{contract}: period {period}: {message}")]
    Settlement {
        /// The contract id.
        contract: String,
        /// The period, as `START..END` local dates.
        period: String,
        /// What is wrong, naming the charge, metric or expression.
        message: String,
    },
    /// A file or store could not be read or written.
    #[error("{path}: {message}")]
    Io {
        /// The file or store.
        path: String,
        /// What the operating system or store said.
        message: String,
    },
    /// The caller asked for something that does not make sense (a date that
    /// is not a period start, an unknown option value).
    #[error("{message}")]
    Usage {
        /// What is wrong.
        message: String,
    },
}

fn file_prefix(file: &Option<String>) -> String {
    match file {
        Some(f) => format!("{f}: "),
        None => String::new(),
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A contract error at `path`.
    pub fn contract(path: impl Into<String>, message: impl fmt::Display) -> Error {
        Error::Contract {
            file: None,
            path: path.into(),
            message: message.to_string(),
        }
    }

    /// A data error at `location`.
    pub fn data(location: impl Into<String>, message: impl fmt::Display) -> Error {
        Error::Data {
            location: location.into(),
            message: message.to_string(),
        }
    }

    /// A usage error.
    pub fn usage(message: impl fmt::Display) -> Error {
        Error::Usage {
            message: message.to_string(),
        }
    }

    /// The same error, said to come from `file` (contract errors only).
    pub fn in_file(self, name: impl Into<String>) -> Error {
        match self {
            Error::Contract { path, message, .. } => Error::Contract {
                file: Some(name.into()),
                path,
                message,
            },
            other => other,
        }
    }

    /// The sentence that says what is wrong, without its location.
    pub fn message(&self) -> &str {
        match self {
            Error::Contract { message, .. }
            | Error::Syntax { message, .. }
            | Error::Data { message, .. }
            | Error::Settlement { message, .. }
            | Error::Io { message, .. }
            | Error::Usage { message } => message,
        }
    }

    /// Where the error is: a field path (with its file), a file position, or
    /// a contract and period. Empty for usage errors.
    pub fn location(&self) -> String {
        match self {
            Error::Contract { file, path, .. } => format!("{}{path}", file_prefix(file)),
            Error::Syntax {
                file, line, column, ..
            } => format!("{file}:{line}:{column}"),
            Error::Data { location, .. } => location.clone(),
            Error::Settlement {
                contract, period, ..
            } => format!("contract {contract}, period {period}"),
            Error::Io { path, .. } => path.clone(),
            Error::Usage { .. } => String::new(),
        }
    }

    /// The command line's exit status for this error: 2 for an invalid
    /// contract or a usage error, 1 for data, settlement and I/O errors.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Contract { .. } | Error::Syntax { .. } | Error::Usage { .. } => 2,
            Error::Data { .. } | Error::Settlement { .. } | Error::Io { .. } => 1,
        }
    }
}
