//! Reading contracts from TOML, JSON and YAML with exact decimals and field
//! paths in every error.
//!
//! Every format is first read into one intermediate tree, a
//! `serde_json::Value`, in which each non-integer number is the map
//! `{ DECIMAL_TOKEN: "<its source text>" }`: a bare float never passes
//! through a binary float, and `Expr`'s deserializer reads the text exactly
//! (rejecting exponents). Dates become strings. The `Contract` is then
//! deserialized from that tree with `serde_path_to_error`, so every error
//! names the field path (`charges[2].tiers[1].up_to`).
//!
//! `Charge` and `Baseline` choose their fields by `kind`, so they buffer
//! their table and deserialize the kind's fields with a path tracker of
//! their own; the inner path travels to the loader inside the error message
//! (between two `INNER_PATH_MARK`s) and is joined to the outer one there.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;

use serde::de::{self, Deserialize, DeserializeOwned, Deserializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::{AmendValue, Baseline, BaselineKind, Charge, ChargeKind, Contract, DECIMAL_TOKEN};
use crate::error::{Error, Result};
use crate::expr::Expr;
use crate::money::parse_decimal;

/// Delimits a nested deserializer's inner path (a JSON array of keys and
/// indices) at the start of its error message.
const INNER_PATH_MARK: char = '\u{1f}';

/// The baseline kinds a file may name.
const BASELINE_KINDS: &str = "fixed, historical, expr, high_water_mark";

/// The formats a contract file can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Toml,
    Json,
    #[cfg(feature = "yaml")]
    Yaml,
}

impl Format {
    /// The name used for text that came from no file (`<toml>`).
    fn anonymous(self) -> &'static str {
        match self {
            Format::Toml => "<toml>",
            Format::Json => "<json>",
            #[cfg(feature = "yaml")]
            Format::Yaml => "<yaml>",
        }
    }
}

impl Contract {
    /// Parses a contract from TOML text, without validating it: see
    /// [`Contract::from_toml_str`] (which does) and
    /// [`CompiledContract`](crate::CompiledContract), the one validation.
    ///
    /// Bare float literals are read exactly from their text.
    ///
    /// # Errors
    /// An invalid contract at a position of `<toml>` when the text is not
    /// TOML, or at a field path when a field is missing, unknown or of the
    /// wrong type.
    pub fn parse_toml_str(text: &str) -> Result<Contract> {
        parse(text, Format::Toml, Format::Toml.anonymous())
    }

    /// Parses a contract from JSON text, without validating it (see
    /// [`Contract::parse_toml_str`]). Numbers are read exactly from their
    /// text.
    ///
    /// # Errors
    /// An invalid contract at a position of `<json>` when the text is not
    /// JSON or has a key twice in one object, or at a field path.
    pub fn parse_json_str(text: &str) -> Result<Contract> {
        parse(text, Format::Json, Format::Json.anonymous())
    }

    /// Parses a contract from YAML text (one document), without validating
    /// it (see [`Contract::parse_toml_str`]). Numbers are read exactly from
    /// their text. Needs the `yaml` feature.
    ///
    /// # Errors
    /// An invalid contract at a position of `<yaml>` when the text is not
    /// YAML or its aliases expand too far, or at a field path, also for what
    /// the format has no place for (non-scalar keys).
    #[cfg(feature = "yaml")]
    pub fn parse_yaml_str(text: &str) -> Result<Contract> {
        parse(text, Format::Yaml, Format::Yaml.anonymous())
    }

    /// Parses a contract file, its format told by the extension (`.toml`,
    /// `.json`, `.yaml` or `.yml`), without validating it (see
    /// [`Contract::from_path`], which does).
    ///
    /// # Errors
    /// An invalid argument for another extension, or for `.yaml` and
    /// `.yml` when the crate is built without its `yaml` feature; an I/O
    /// error when the file cannot be read, and the errors of the format's
    /// parser, located in the file.
    pub fn parse_path(path: impl AsRef<Path>) -> Result<Contract> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let format = match extension.as_deref() {
            Some("toml") => Format::Toml,
            Some("json") => Format::Json,
            #[cfg(feature = "yaml")]
            Some("yaml" | "yml") => Format::Yaml,
            #[cfg(not(feature = "yaml"))]
            Some("yaml" | "yml") => {
                return Err(Error::usage(format!(
                    "cannot read {name:?}: outcome-billing was built without its `yaml` feature, so it reads no YAML contracts (use .toml or .json, or enable the feature)"
                )));
            }
            _ => {
                return Err(Error::usage(format!(
                    "cannot tell the format of {name:?}: expected a .toml, .json, .yaml or .yml file"
                )));
            }
        };
        let bytes = std::fs::read(path).map_err(|e| Error::io(name.clone(), e))?;
        let text = std::str::from_utf8(&bytes).map_err(|e| not_utf8(&name, &bytes, &e))?;
        parse(text, format, &name).map_err(|e| e.in_file(name.clone()))
    }

    /// Writes the contract as TOML that [`Contract::from_toml_str`] reads
    /// back to an equal contract. Decimals are written as strings.
    ///
    /// # Errors
    /// an invalid-argument [`Error`] when the contract holds what the format cannot carry
    /// (a charge kind defined in Rust).
    pub fn to_toml_string(&self) -> Result<String> {
        toml::to_string(self)
            .map_err(|e| Error::usage(format!("cannot write contract {} as TOML: {e}", self.id)))
    }

    /// Writes the contract as pretty-printed JSON that
    /// [`Contract::from_json_str`] reads back to an equal contract.
    ///
    /// # Errors
    /// an invalid-argument [`Error`] when the contract holds what the format cannot carry
    /// (a charge kind defined in Rust).
    pub fn to_json_string(&self) -> Result<String> {
        serde_json::to_string_pretty(self)
            .map_err(|e| Error::usage(format!("cannot write contract {} as JSON: {e}", self.id)))
    }
}

/// Parses `text` as `format`, deserializes and validates the contract.
/// `file` names the text in syntax errors.
/// Parses `text` as `format` and deserializes the contract.
fn parse(text: &str, format: Format, file: &str) -> Result<Contract> {
    let tree = match format {
        Format::Toml => toml_tree(text, file)?,
        Format::Json => json_tree(text, file)?,
        #[cfg(feature = "yaml")]
        Format::Yaml => yaml_tree(text, file)?,
    };
    from_tree(&tree)
}

/// A contract file that is not UTF-8: a syntax error at the first bad byte
/// (its line, and its column counted in characters before it).
fn not_utf8(file: &str, bytes: &[u8], error: &std::str::Utf8Error) -> Error {
    let good = &bytes[..error.valid_up_to()];
    let line_start = good.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let line = 1 + good.iter().filter(|&&b| b == b'\n').count() as u64;
    let column = 1 + String::from_utf8_lossy(&good[line_start..]).chars().count() as u64;
    Error::syntax(
        file.to_owned(),
        line,
        column,
        "the file is not UTF-8 text".to_owned(),
    )
}

/// Deserializes any part of a contract from an intermediate tree, naming
/// the field path (relative to `tree`) in the error.
pub(crate) fn from_tree<T: DeserializeOwned>(tree: &Value) -> Result<T> {
    serde_path_to_error::deserialize::<_, T>(tree).map_err(|e| {
        let (segments, message) = split_error(e.path(), &e.inner().to_string());
        let (segments, message) = explain(segments, message, tree);
        Error::contract(format_path(&segments), message)
    })
}

// ---------------------------------------------------------------------------
// Paths

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    /// A table key.
    Key(String),
    /// A list position.
    Index(usize),
}

impl Segment {
    fn to_value(&self) -> Value {
        match self {
            Segment::Key(k) => Value::String(k.clone()),
            Segment::Index(i) => Value::from(*i),
        }
    }

    fn from_value(v: &Value) -> Option<Segment> {
        match v {
            Value::String(k) => Some(Segment::Key(k.clone())),
            Value::Number(n) => n
                .as_u64()
                .and_then(|i| usize::try_from(i).ok())
                .map(Segment::Index),
            _ => None,
        }
    }
}

/// A key as written in a path: bare when it is letters, digits, `_` and
/// `-`, quoted otherwise (`set."charges.x.kind"`).
pub(crate) fn path_key(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}

/// `charges[2].tiers[1].up_to`; `(top level)` for the empty path.
pub(crate) fn format_path(segments: &[Segment]) -> String {
    if segments.is_empty() {
        return "(top level)".to_string();
    }
    let mut out = String::new();
    for segment in segments {
        match segment {
            Segment::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&path_key(k));
            }
            Segment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// The segments of a tracked path, joined with the inner path a nested
/// deserializer put in `message`, and the message without it.
fn split_error(path: &serde_path_to_error::Path, message: &str) -> (Vec<Segment>, String) {
    let mut segments: Vec<Segment> = path
        .iter()
        .map(|s| match s {
            serde_path_to_error::Segment::Seq { index } => Segment::Index(*index),
            serde_path_to_error::Segment::Map { key } => Segment::Key(key.clone()),
            serde_path_to_error::Segment::Enum { variant } => Segment::Key(variant.clone()),
            _ => Segment::Key("?".to_string()),
        })
        .collect();
    let (inner, message) = split_marked(message);
    segments.extend(inner);
    (segments, message)
}

/// Splits `MARK[inner path]MARKmessage` into the path and the message.
fn split_marked(message: &str) -> (Vec<Segment>, String) {
    if let Some(rest) = message.strip_prefix(INNER_PATH_MARK) {
        if let Some((path, text)) = rest.split_once(INNER_PATH_MARK) {
            if let Ok(Value::Array(items)) = serde_json::from_str::<Value>(path) {
                let segments: Option<Vec<Segment>> =
                    items.iter().map(Segment::from_value).collect();
                if let Some(segments) = segments {
                    return (segments, text.to_string());
                }
            }
        }
    }
    (Vec::new(), message.to_string())
}

/// An error raised inside `Charge` or `Baseline` deserialization, at a path
/// relative to the charge or baseline.
#[derive(Debug)]
struct NestedError {
    segments: Vec<Segment>,
    message: String,
}

impl NestedError {
    fn at(segments: Vec<Segment>, message: impl Into<String>) -> NestedError {
        NestedError {
            segments,
            message: message.into(),
        }
    }

    fn key(key: &str, message: impl Into<String>) -> NestedError {
        NestedError::at(vec![Segment::Key(key.to_string())], message)
    }

    fn from_tracked(e: serde_path_to_error::Error<serde_json::Error>) -> NestedError {
        let (segments, message) = split_error(e.path(), &e.inner().to_string());
        NestedError { segments, message }
    }
}

impl fmt::Display for NestedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = Value::Array(self.segments.iter().map(Segment::to_value).collect());
        write!(
            f,
            "{INNER_PATH_MARK}{path}{INNER_PATH_MARK}{}",
            self.message
        )
    }
}

/// Makes serde's messages name the field and the value: a missing or unknown
/// field joins the path, a decimal where a whole number belongs is quoted,
/// a malformed date says what a date looks like.
fn explain(mut segments: Vec<Segment>, message: String, tree: &Value) -> (Vec<Segment>, String) {
    if let Some(field) = quoted_after(&message, "missing field `") {
        segments.push(Segment::Key(field));
        return (segments, "missing field".to_string());
    }
    if let Some(field) = quoted_after(&message, "unknown field `") {
        if segments.last() != Some(&Segment::Key(field.clone())) {
            segments.push(Segment::Key(field));
        }
        return (segments, message);
    }
    let found = lookup(tree, &segments);
    if let (Some(rest), Some(text)) = (
        message.strip_prefix("invalid type: map, "),
        found.and_then(decimal_text),
    ) {
        return (segments, format!("invalid type: decimal `{text}`, {rest}"));
    }
    if let Some(Value::String(text)) = found {
        if CHRONO_MESSAGES.contains(&message.as_str()) {
            return (
                segments,
                format!("malformed date {text:?}: expected YYYY-MM-DD ({message})"),
            );
        }
    }
    (segments, message)
}

/// chrono's parse error messages, which say nothing of the text or format.
const CHRONO_MESSAGES: [&str; 7] = [
    "input contains invalid characters",
    "premature end of input",
    "input is out of range",
    "input is not enough for unique date and time",
    "trailing input",
    "no possible date and time matching input",
    "bad or unsupported format string",
];

/// The text between `prefix` and the next backtick, when `message` starts
/// with `prefix`.
fn quoted_after(message: &str, prefix: &str) -> Option<String> {
    let rest = message.strip_prefix(prefix)?;
    rest.split_once('`').map(|(name, _)| name.to_string())
}

/// The node of `tree` at `segments`.
fn lookup<'a>(tree: &'a Value, segments: &[Segment]) -> Option<&'a Value> {
    segments
        .iter()
        .try_fold(tree, |node, segment| match segment {
            Segment::Key(k) => node.as_object()?.get(k),
            Segment::Index(i) => node.as_array()?.get(*i),
        })
}

/// The source text of a decimal token.
fn decimal_text(node: &Value) -> Option<&str> {
    let map = node.as_object()?;
    if map.len() != 1 {
        return None;
    }
    map.get(DECIMAL_TOKEN).and_then(Value::as_str)
}

/// The decimal token for a number's exact text.
fn decimal_token(text: String) -> Value {
    let mut map = Map::new();
    map.insert(DECIMAL_TOKEN.to_string(), Value::String(text));
    Value::Object(map)
}

/// A JSON or YAML number's text as an integer when it is one that fits,
/// else as a decimal token.
fn number_node(text: String) -> Value {
    if !text.contains(['.', 'e', 'E']) {
        if let Ok(i) = text.parse::<i64>() {
            return Value::from(i);
        }
        if let Ok(u) = text.parse::<u64>() {
            return Value::from(u);
        }
    }
    decimal_token(text)
}

// ---------------------------------------------------------------------------
// TOML

/// The 1-based line and column (in characters) of byte `offset` of `text`.
fn line_column(text: &str, offset: usize) -> (u64, u64) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line as u64, column as u64)
}

/// Parses TOML text into the intermediate tree (decimals kept as text);
/// `file` names the text in syntax errors. Scenario files reuse it.
pub(crate) fn toml_tree(text: &str, file: &str) -> Result<Value> {
    // The `toml` crate's borrowed tree keeps each number's text as written
    // (without `_`), and costs far less than an editable document.
    let document = toml::de::DeTable::parse(text).map_err(|e| {
        let (line, column) = line_column(text, e.span().map_or(0, |s| s.start));
        Error::syntax(
            file.to_string(),
            line,
            column,
            e.message().trim_end().to_string(),
        )
    })?;
    Ok(toml_table(document.get_ref()))
}

fn toml_table(table: &toml::de::DeTable<'_>) -> Value {
    let mut map = Map::with_capacity(table.len());
    for (key, value) in table {
        map.insert(key.get_ref().to_string(), toml_value(value.get_ref()));
    }
    Value::Object(map)
}

fn toml_value(value: &toml::de::DeValue<'_>) -> Value {
    use toml::de::DeValue;
    match value {
        DeValue::String(s) => Value::String(s.to_string()),
        // An integer that does not fit 64 bits reaches the decimal reader
        // as text, which names the field it is in.
        DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
            Ok(n) => Value::from(n),
            Err(_) if i.radix() == 10 => decimal_token(i.as_str().to_owned()),
            Err(_) => Value::String(i.to_string()),
        },
        // The literal as written. `inf`, `nan` and exponents reach the
        // decimal reader as text and are rejected there with the field path.
        DeValue::Float(f) => decimal_token(f.as_str().to_owned()),
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Datetime(d) => Value::String(d.to_string()),
        DeValue::Array(a) => Value::Array(a.iter().map(|v| toml_value(v.get_ref())).collect()),
        DeValue::Table(t) => toml_table(t),
    }
}

// ---------------------------------------------------------------------------
// JSON

/// How deep a JSON contract may nest objects and arrays. A contract nests a
/// handful of levels; the bound keeps re-reading each level's text (below)
/// proportional to the file's size.
const JSON_DEPTH_MAX: usize = 32;

/// Parses JSON text into the intermediate tree (numbers kept as their
/// text); `file` names the text in syntax errors.
///
/// serde_json hands numbers to a visitor as binary floats (its
/// `arbitrary_precision` feature would change that for every program this
/// crate is part of), so the document is read as raw text: each object and
/// array is read one level at a time as the raw text of its members, and a
/// number is taken as written.
fn json_tree(text: &str, file: &str) -> Result<Value> {
    let raw: &RawValue = serde_json::from_str(text).map_err(|e| {
        // Skipping over a value, as reading it raw does, says less about
        // some mistakes ("key must be a string" for a trailing comma) than
        // reading it as a tree: on the error path, say what the tree says.
        let e = serde_json::from_str::<Value>(text).err().unwrap_or(e);
        json_error(text, 0, &e, file)
    })?;
    json_node(text, raw, 1, file)
}

/// The tree of one raw JSON value of `doc`, at nesting `depth` (1 for the
/// document itself).
fn json_node(doc: &str, raw: &RawValue, depth: usize, file: &str) -> Result<Value> {
    let text = raw.get();
    // `raw` borrows from `doc` (serde_json reads raw values in place), so
    // its text starts this many bytes into the document.
    let offset = (text.as_ptr() as usize)
        .checked_sub(doc.as_ptr() as usize)
        .filter(|&o| o <= doc.len())
        .unwrap_or(0);
    let error = |e: serde_json::Error| json_error(doc, offset, &e, file);
    match text.as_bytes().first() {
        Some(b'{' | b'[') if depth > JSON_DEPTH_MAX => {
            let (line, column) = json_position(doc, offset + 1);
            Err(Error::syntax(
                file.to_string(),
                line,
                column,
                format!("objects and arrays nest more than {JSON_DEPTH_MAX} levels deep"),
            ))
        }
        Some(b'{') => {
            let JsonMembers(members) = serde_json::from_str(text).map_err(error)?;
            let mut map = Map::with_capacity(members.len());
            for (key, value) in members {
                let value = json_node(doc, value, depth + 1, file)?;
                map.insert(key, value);
            }
            Ok(Value::Object(map))
        }
        Some(b'[') => {
            let items: Vec<&RawValue> = serde_json::from_str(text).map_err(error)?;
            items
                .into_iter()
                .map(|item| json_node(doc, item, depth + 1, file))
                .collect::<Result<Vec<Value>>>()
                .map(Value::Array)
        }
        Some(b'-' | b'0'..=b'9') => Ok(number_node(text.to_string())),
        // A string, true, false or null: no number to lose.
        _ => serde_json::from_str(text).map_err(error),
    }
}

/// A syntax error serde_json found reading the part of `doc` that starts
/// `offset` bytes in, at its position in the whole document.
fn json_error(doc: &str, offset: usize, e: &serde_json::Error, file: &str) -> Error {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let (line, column) = if offset == 0 {
        (e.line() as u64, e.column() as u64)
    } else {
        let (line, column) = json_position(doc, offset);
        if e.line() <= 1 {
            (line, column + e.column() as u64)
        } else {
            (line + e.line() as u64 - 1, e.column() as u64)
        }
    };
    Error::syntax(
        file.to_string(),
        line,
        column,
        full.strip_suffix(&suffix).unwrap_or(&full).to_string(),
    )
}

/// The position serde_json reports after reading `offset` bytes of `doc`:
/// the 1-based line, and the bytes read of that line.
fn json_position(doc: &str, offset: usize) -> (u64, u64) {
    let before = &doc.as_bytes()[..offset.min(doc.len())];
    let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
    let column = before.len()
        - before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
    (line as u64, column as u64)
}

/// One JSON object's members, each value as its raw text; a key twice in
/// the object is rejected.
struct JsonMembers<'a>(Vec<(String, &'a RawValue)>);

impl<'de> Deserialize<'de> for JsonMembers<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<JsonMembers<'de>, D::Error> {
        d.deserialize_map(JsonMembersVisitor)
    }
}

struct JsonMembersVisitor;

impl<'de> de::Visitor<'de> for JsonMembersVisitor {
    type Value = JsonMembers<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut access: A) -> Result<JsonMembers<'de>, A::Error> {
        let mut members = Vec::new();
        let mut seen = HashSet::new();
        while let Some(key) = access.next_key::<String>()? {
            let value: &RawValue = access.next_value()?;
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!("duplicate key {key:?}")));
            }
            members.push((key, value));
        }
        Ok(JsonMembers(members))
    }
}

// ---------------------------------------------------------------------------
// YAML

#[cfg(feature = "yaml")]
fn yaml_tree(text: &str, file: &str) -> Result<Value> {
    use yaml_rust2::{Yaml, YamlLoader};
    super::shape::yaml_expansion(text, file)?;
    let documents = YamlLoader::load_from_str(text).map_err(|e| {
        Error::syntax(
            file.to_string(),
            e.marker().line() as u64,
            e.marker().col() as u64 + 1,
            e.info().to_string(),
        )
    })?;
    let syntax = |message: &str| Error::syntax(file.to_string(), 1, 1, message.to_string());
    match documents.as_slice() {
        [] => Err(syntax("the text holds no YAML document")),
        [Yaml::Hash(_)] => yaml_node(&documents[0], &mut Vec::new()),
        [_] => Err(Error::contract(
            "(top level)",
            "expected a mapping of the contract's fields",
        )),
        _ => Err(syntax("the text holds more than one YAML document")),
    }
}

#[cfg(feature = "yaml")]
fn yaml_node(node: &yaml_rust2::Yaml, path: &mut Vec<Segment>) -> Result<Value> {
    use yaml_rust2::Yaml;
    Ok(match node {
        Yaml::Real(text) => decimal_token(text.clone()),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Null => Value::Null,
        Yaml::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                path.push(Segment::Index(i));
                out.push(yaml_node(item, path)?);
                path.pop();
            }
            Value::Array(out)
        }
        Yaml::Hash(entries) => {
            let mut map = Map::new();
            for (key, value) in entries {
                let key = match key {
                    Yaml::String(s) | Yaml::Real(s) => s.clone(),
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    other => {
                        return Err(Error::contract(
                            format_path(path),
                            format!("a key must be text, not {}", yaml_kind(other)),
                        ));
                    }
                };
                path.push(Segment::Key(key.clone()));
                let value = yaml_node(value, path)?;
                path.pop();
                map.insert(key, value);
            }
            Value::Object(map)
        }
        Yaml::Alias(_) => {
            return Err(Error::contract(
                format_path(path),
                "YAML aliases are not supported: write the value out",
            ));
        }
        Yaml::BadValue => {
            return Err(Error::contract(
                format_path(path),
                "malformed value: its YAML tag does not match its text",
            ));
        }
    })
}

#[cfg(feature = "yaml")]
fn yaml_kind(node: &yaml_rust2::Yaml) -> &'static str {
    use yaml_rust2::Yaml;
    match node {
        Yaml::Array(_) => "a sequence",
        Yaml::Hash(_) => "a mapping",
        Yaml::Null => "null",
        Yaml::Alias(_) => "an alias",
        _ => "a scalar",
    }
}

// ---------------------------------------------------------------------------
// Charge, Baseline, AmendValue

/// Removes `key` from a charge's or baseline's table and reads it as text.
fn take_text(map: &mut Map<String, Value>, key: &str) -> Result<Option<String>, NestedError> {
    match map.shift_remove(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(NestedError::key(
            key,
            format!("invalid type: {}, expected a string", describe(&other)),
        )),
    }
}

/// Like serde's `Unexpected`: what a node of the tree is, with its value.
fn describe(node: &Value) -> String {
    match node {
        Value::Null => "null".to_string(),
        Value::Bool(b) => format!("boolean `{b}`"),
        Value::Number(n) => format!("integer `{n}`"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "sequence".to_string(),
        Value::Object(_) => match decimal_text(node) {
            Some(text) => format!("decimal `{text}`"),
            None => "map".to_string(),
        },
    }
}

/// Deserializes a kind's own fields from what is left of the table.
fn kind_fields<T: DeserializeOwned>(rest: &Value) -> Result<T, NestedError> {
    serde_path_to_error::deserialize::<_, T>(rest).map_err(NestedError::from_tracked)
}

/// The table of a charge or baseline, or an error saying what was found.
fn table(value: Value, what: &str) -> Result<Map<String, Value>, NestedError> {
    match value {
        Value::Object(map) if !(map.len() == 1 && map.contains_key(DECIMAL_TOKEN)) => Ok(map),
        other => Err(NestedError::at(
            Vec::new(),
            format!("invalid type: {}, expected {what}", describe(&other)),
        )),
    }
}

/// A charge kind's fields, read from what is left of its table.
struct KindFields<'v>(&'v Value);

impl crate::charge::kind::FieldReader for KindFields<'_> {
    type Error = NestedError;

    fn read<T: DeserializeOwned>(&mut self) -> Result<T, NestedError> {
        kind_fields::<T>(self.0)
    }
}

fn charge_from_tree(value: Value) -> Result<Charge, NestedError> {
    let mut map = table(value, "a charge table with id and kind")?;
    let id = take_text(&mut map, "id")?.ok_or_else(|| NestedError::key("id", "missing field"))?;
    let kind =
        take_text(&mut map, "kind")?.ok_or_else(|| NestedError::key("kind", "missing field"))?;
    let description = take_text(&mut map, "description")?;
    let group_by = take_text(&mut map, "group_by")?;
    let rest = Value::Object(map);
    let kind = ChargeKind::read(&kind, &mut KindFields(&rest)).unwrap_or_else(|| {
        Err(NestedError::key(
            "kind",
            format!(
                "unknown kind {kind:?}, expected one of {}",
                ChargeKind::names().join(", ")
            ),
        ))
    })?;
    Ok(Charge {
        id,
        description,
        group_by,
        kind,
    })
}

impl<'de> Deserialize<'de> for Charge {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Charge, D::Error> {
        let value = Value::deserialize(d)?;
        charge_from_tree(value).map_err(de::Error::custom)
    }
}

/// The fields of each baseline kind, read with the kind removed.
mod baseline_fields {
    use chrono::NaiveDate;
    use serde::Deserialize;

    use crate::expr::Expr;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Fixed {
        pub(super) value: Expr,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Historical {
        pub(super) metric: String,
        pub(super) from: NaiveDate,
        pub(super) to: NaiveDate,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Expression {
        pub(super) expr: Expr,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct HighWaterMark {
        pub(super) metric: String,
        pub(super) initial: Expr,
    }
}

fn baseline_from_tree(value: Value) -> Result<Baseline, NestedError> {
    let mut map = table(value, "a baseline table with kind")?;
    let kind =
        take_text(&mut map, "kind")?.ok_or_else(|| NestedError::key("kind", "missing field"))?;
    let description = take_text(&mut map, "description")?;
    let rest = Value::Object(map);
    let kind = match kind.as_str() {
        "fixed" => {
            let f: baseline_fields::Fixed = kind_fields(&rest)?;
            BaselineKind::Fixed { value: f.value }
        }
        "historical" => {
            let f: baseline_fields::Historical = kind_fields(&rest)?;
            BaselineKind::Historical {
                metric: f.metric,
                from: f.from,
                to: f.to,
            }
        }
        "expr" => {
            let f: baseline_fields::Expression = kind_fields(&rest)?;
            BaselineKind::Expr { expr: f.expr }
        }
        "high_water_mark" => {
            let f: baseline_fields::HighWaterMark = kind_fields(&rest)?;
            BaselineKind::HighWaterMark {
                metric: f.metric,
                initial: f.initial,
            }
        }
        other => {
            return Err(NestedError::key(
                "kind",
                format!("unknown kind {other:?}, expected one of {BASELINE_KINDS}"),
            ));
        }
    };
    Ok(Baseline { description, kind })
}

impl<'de> Deserialize<'de> for Baseline {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Baseline, D::Error> {
        let value = Value::deserialize(d)?;
        baseline_from_tree(value).map_err(de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for AmendValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<AmendValue, D::Error> {
        d.deserialize_any(AmendValueVisitor)
    }
}

struct AmendValueVisitor;

impl<'de> de::Visitor<'de> for AmendValueVisitor {
    type Value = AmendValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a decimal, an expression or a description")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<AmendValue, E> {
        Ok(AmendValue(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<AmendValue, E> {
        Ok(AmendValue(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<AmendValue, E> {
        Ok(AmendValue(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<AmendValue, E> {
        Err(E::custom(format!(
            "the number {v} reached the loader as a binary float; write it as a string (\"{v}\") or load the file with Contract::from_path"
        )))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<AmendValue, A::Error> {
        let key: Option<String> = map.next_key()?;
        match key.as_deref() {
            Some(DECIMAL_TOKEN) => {
                let text: String = map.next_value()?;
                parse_decimal(&text).map_err(de::Error::custom)?;
                Ok(AmendValue(text))
            }
            _ => Err(de::Error::custom(
                "invalid type: map, expected a decimal, an expression or a description",
            )),
        }
    }
}

/// Reads an expression from text, for amendments: the same errors as a
/// contract file gives.
pub(crate) fn parse_expr_text(text: &str) -> std::result::Result<Expr, String> {
    Expr::parse(text).map_err(|e| format!("{e} in {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{Band, Tier};
    use crate::error::{ErrorKind, Location};
    use rust_decimal::Decimal;

    const HEAD: &str = r#"
format = 1
id = "demo"
customer = "acme"
currency = "USD"
start = "2026-01-01"
end = "2027-01-01"
cadence = "monthly"
"#;

    fn toml(body: &str) -> Result<Contract> {
        Contract::from_toml_str(&format!("{HEAD}{body}"))
    }

    fn err(body: &str) -> Error {
        toml(body).expect_err("the contract should be rejected")
    }

    fn path_of(e: &Error) -> String {
        match e {
            other if other.field_path().is_some() => {
                other.field_path().unwrap_or_default().to_string()
            }
            other => panic!("expected a contract error, got {other:?}"),
        }
    }

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn unit_price(c: &Contract) -> Decimal {
        match &c.charges[0].kind {
            ChargeKind::Unit(u) => u.unit_price.as_literal().unwrap(),
            other => panic!("expected a unit charge, got {other:?}"),
        }
    }

    const UNIT: &str = r#"
[metrics.resolutions]
aggregate = "sum"

[[charges]]
id = "per_resolution"
kind = "unit"
quantity = "7"
"#;

    #[test]
    fn toml_bare_float_is_read_exactly() {
        // A float literal with more digits than an f64 holds keeps every digit.
        let c = toml(&format!("{UNIT}unit_price = 1234567890.123456789\n")).unwrap();
        assert_eq!(unit_price(&c), d("1234567890.123456789"));
        assert_eq!(unit_price(&c).to_string(), "1234567890.123456789");
    }

    #[test]
    fn toml_float_with_underscores_and_sign_reads_its_digits() {
        // `_` only groups digits in TOML; a leading `+` is allowed.
        let c = toml(&format!("{UNIT}unit_price = +1_000.000_1\n")).unwrap();
        assert_eq!(unit_price(&c), d("1000.0001"));
    }

    #[test]
    fn exponent_is_rejected_with_the_field_path() {
        // `1e3` is a valid TOML float but not a decimal of the format.
        let e = err(&format!("{UNIT}unit_price = 1e3\n"));
        assert_eq!(path_of(&e), "charges[0].unit_price");
        assert!(e.message().contains("1e3"), "{e}");
        let e = Contract::from_json_str(&json_with_price("1E3")).unwrap_err();
        assert_eq!(path_of(&e), "charges[0].unit_price");
        #[cfg(feature = "yaml")]
        {
            let e = Contract::from_yaml_str(&yaml_with_price("1e3")).unwrap_err();
            assert_eq!(path_of(&e), "charges[0].unit_price");
        }
    }

    #[test]
    fn special_floats_are_rejected_with_the_field_path() {
        // inf and nan are TOML and YAML floats, never decimals.
        for literal in ["inf", "-inf", "nan"] {
            let e = err(&format!("{UNIT}unit_price = {literal}\n"));
            assert_eq!(path_of(&e), "charges[0].unit_price", "{literal}");
            assert!(e.message().contains(literal), "{e}");
        }
        #[cfg(feature = "yaml")]
        {
            let e = Contract::from_yaml_str(&yaml_with_price(".inf")).unwrap_err();
            assert_eq!(path_of(&e), "charges[0].unit_price");
        }
    }

    fn json_with_price(price: &str) -> String {
        format!(
            r#"{{"format": 1, "id": "demo", "customer": "acme", "currency": "USD",
               "start": "2026-01-01", "end": "2027-01-01", "cadence": "monthly",
               "metrics": {{"resolutions": {{"aggregate": "sum"}}}},
               "charges": [{{"id": "per_resolution", "kind": "unit", "quantity": "7", "unit_price": {price}}}]}}"#
        )
    }

    #[cfg(feature = "yaml")]
    fn yaml_with_price(price: &str) -> String {
        format!(
            "format: 1\nid: demo\ncustomer: acme\ncurrency: USD\nstart: 2026-01-01\nend: 2027-01-01\n\
             cadence: monthly\nmetrics:\n  resolutions:\n    aggregate: sum\ncharges:\n  - id: per_resolution\n    \
             kind: unit\n    quantity: \"7\"\n    unit_price: {price}\n"
        )
    }

    #[test]
    #[cfg(feature = "yaml")]
    fn json_and_yaml_decimals_are_exact() {
        // 0.1 has no binary float; JSON and YAML keep its text.
        let j = Contract::from_json_str(&json_with_price("0.1")).unwrap();
        assert_eq!(unit_price(&j).to_string(), "0.1");
        let y = Contract::from_yaml_str(&yaml_with_price("0.1")).unwrap();
        assert_eq!(unit_price(&y).to_string(), "0.1");
        let j = Contract::from_json_str(&json_with_price("1234567890.1234567890123")).unwrap();
        assert_eq!(unit_price(&j), d("1234567890.1234567890123"));
    }

    #[test]
    #[cfg(feature = "yaml")]
    fn json_and_yaml_equal_their_toml() {
        // The same small contract in three formats loads to one value.
        let t = toml(&format!("{UNIT}unit_price = 0.1\n")).unwrap();
        let j = Contract::from_json_str(&json_with_price("0.1")).unwrap();
        let y = Contract::from_yaml_str(&yaml_with_price("0.1")).unwrap();
        assert_eq!(t, j);
        assert_eq!(t, y);
    }

    #[test]
    fn unknown_field_names_its_path() {
        // A misspelt field is rejected at the path of the misspelt key.
        let e = err(&format!("{UNIT}unit_price = 1\nunit_prize = 2\n"));
        assert_eq!(path_of(&e), "charges[0].unit_prize");
        assert!(e.message().starts_with("unknown field `unit_prize`"), "{e}");
        let e = err("colour = \"blue\"\n");
        assert_eq!(path_of(&e), "colour");
        let e = err("[metrics.m]\naggregate = \"sum\"\nwindw = \"period\"\n");
        assert_eq!(path_of(&e), "metrics.m.windw");
        let e = err(&format!(
            "{UNIT}unit_price = 1\n[baselines.b]\nkind = \"fixed\"\nvalue = 1\nvalu = 2\n"
        ));
        assert_eq!(path_of(&e), "baselines.b.valu");
    }

    #[test]
    fn missing_field_names_its_path() {
        // A required field left out is named by the path it should have had.
        let e = err("[[charges]]\nid = \"u\"\nkind = \"unit\"\nunit_price = 1\n");
        assert_eq!(path_of(&e), "charges[0].quantity");
        assert_eq!(e.message(), "missing field");
        let e = err("[[charges]]\nkind = \"unit\"\n");
        assert_eq!(path_of(&e), "charges[0].id");
        let e = err("[[charges]]\nid = \"u\"\n");
        assert_eq!(path_of(&e), "charges[0].kind");
        let e = Contract::from_toml_str("format = 1\n").unwrap_err();
        assert_eq!(path_of(&e), "id");
        let e =
            err("[baselines.b]\nkind = \"historical\"\nmetric = \"m\"\nfrom = \"2025-01-01\"\n");
        assert_eq!(path_of(&e), "baselines.b.to");
    }

    #[test]
    fn wrong_type_names_its_path() {
        // A value of the wrong type is named by its path and described.
        let e = err(&format!("{UNIT}unit_price = true\n"));
        assert_eq!(path_of(&e), "charges[0].unit_price");
        assert!(e.message().contains("boolean"), "{e}");
        let e = Contract::from_toml_str(&HEAD.replace("format = 1", "format = 1.5")).unwrap_err();
        assert_eq!(path_of(&e), "format");
        assert!(e.message().contains("1.5"), "{e}");
        let e = err("[metrics.m]\naggregate = \"sum\"\nfilter = { region = 5 }\n");
        assert_eq!(path_of(&e), "metrics.m.filter.region");
        let e =
            Contract::from_toml_str(&HEAD.replace("\"2027-01-01\"", "\"01/01/2027\"")).unwrap_err();
        assert_eq!(path_of(&e), "end");
        assert!(
            e.message()
                .starts_with("malformed date \"01/01/2027\": expected YYYY-MM-DD"),
            "{e}"
        );
        let e = Contract::from_toml_str(&HEAD.replace("\"2027-01-01\"", "2027-01-01T00:00:00Z"))
            .unwrap_err();
        assert_eq!(path_of(&e), "end");
        assert!(e.message().contains("2027-01-01T00:00:00Z"), "{e}");
        let e = err("[[charges]]\nid = 5\nkind = \"unit\"\n");
        assert_eq!(path_of(&e), "charges[0].id");
        let e = Contract::from_toml_str(&HEAD.replace("USD", "USX")).unwrap_err();
        assert_eq!(path_of(&e), "currency");
        assert!(e.message().contains("USX"), "{e}");
        let e =
            Contract::from_toml_str(&format!("{HEAD}timezone = \"Mars/Olympus\"\n")).unwrap_err();
        assert_eq!(path_of(&e), "timezone");
    }

    #[test]
    fn deep_errors_join_the_charge_path() {
        // An error inside a kind's nested table carries the whole path.
        let e = err(r#"
[[charges]]
id = "a"
kind = "fixed"
amount = 1

[[charges]]
id = "t"
kind = "tiered"
mode = "graduated"
quantity = "5"
tiers = [ { up_to = 10 }, { up_to = "x y", unit_price = 1 }, { unit_price = 2 } ]
"#);
        assert_eq!(path_of(&e), "charges[1].tiers[1].up_to");
        let e = err(r#"
[[charges]]
id = "g"
kind = "gain_share"
actual = 1
baseline = 2
direction = "increase"
share = 0.5
threshold = { relative = "0.0.2" }
"#);
        assert_eq!(path_of(&e), "charges[0].threshold.relative");
    }

    #[test]
    fn unknown_kind_lists_the_kinds() {
        // A kind the format does not define is named, with the choices.
        let e = err("[[charges]]\nid = \"x\"\nkind = \"foo\"\n");
        assert_eq!(path_of(&e), "charges[0].kind");
        assert_eq!(
            e.message(),
            "unknown kind \"foo\", expected one of fixed, unit, package, tiered, percentage, gain_share, bands, corridor, expr"
        );
        let e = err("[baselines.b]\nkind = \"custom\"\n");
        assert_eq!(path_of(&e), "baselines.b.kind");
        assert!(e.message().contains("\"custom\""), "{e}");
    }

    #[test]
    fn syntax_errors_give_line_and_column() {
        // Malformed text is a syntax error at its position, named by format.
        let e = Contract::from_toml_str("format = 1\nid = = 2\n").unwrap_err();
        match e.location().clone() {
            Location::Position { file, line, .. } => {
                assert_eq!(file, "<toml>");
                assert_eq!(line, 2);
            }
            other => panic!("{other:?}"),
        }
        let e = Contract::from_json_str("{\"format\": 1,\n \"id\": }").unwrap_err();
        match e.location().clone() {
            Location::Position { file, line, column } => {
                assert_eq!((file.as_str(), line), ("<json>", 2));
                assert!(column > 1);
            }
            other => panic!("{other:?}"),
        }
        #[cfg(feature = "yaml")]
        {
            let e = Contract::from_yaml_str("format: 1\nid: [1, 2\n").unwrap_err();
            assert!(
                matches!(e.location(), Location::Position { file, .. } if file == "<yaml>"),
                "{e:?}"
            );
        }
    }

    #[test]
    fn toml_dates_may_be_bare() {
        // A TOML local date literal reads as the date it writes.
        let bare = HEAD.replace("\"2026-01-01\"", "2026-01-01");
        let c = Contract::from_toml_str(&bare).unwrap();
        assert_eq!(c.start.to_string(), "2026-01-01");
    }

    #[test]
    #[cfg(feature = "yaml")]
    fn yaml_aliases_resolve_and_a_non_mapping_is_named() {
        // yaml-rust2 copies an anchored value to its alias; a document that is
        // not a mapping is rejected at the top level.
        let c = Contract::from_yaml_str(&format!(
            "{}params:\n  a: &x \"1.5\"\n  b: *x\n",
            yaml_with_price("1")
        ))
        .unwrap();
        assert_eq!(c.params["b"].as_literal(), Some(d("1.5")));
        let e = Contract::from_yaml_str("- 1\n").unwrap_err();
        assert_eq!(path_of(&e), "(top level)");
    }

    #[test]
    fn json_duplicate_keys_are_rejected() {
        // JSON allows a key twice; a contract never silently drops one.
        let e = Contract::from_json_str("{\"format\": 1, \"format\": 2}").unwrap_err();
        assert!(matches!(e.location(), Location::Position { .. }), "{e:?}");
        assert!(e.message().contains("duplicate key \"format\""), "{e}");
        #[cfg(feature = "yaml")]
        {
            let e = Contract::from_yaml_str("format: 1\nformat: 2\n").unwrap_err();
            assert!(matches!(e.location(), Location::Position { .. }), "{e:?}");
        }
    }

    #[test]
    fn json_decimals_keep_their_text_and_scale() {
        // serde_json reads numbers as binary floats; the JSON loader takes
        // each number's text instead, so 12.50 keeps its digits and scale.
        let c = Contract::from_json_str(&json_with_price("12.50")).unwrap();
        let ChargeKind::Unit(u) = &c.charges[0].kind else {
            panic!("expected a unit charge");
        };
        assert_eq!(u.unit_price.text(), "12.50");
        assert_eq!(u.unit_price.as_literal().map(|v| v.scale()), Some(2));
        let c =
            Contract::from_json_str(&json_with_price("-0.000000000000000000000000001")).unwrap();
        assert_eq!(unit_price(&c), d("-0.000000000000000000000000001"));
    }

    #[test]
    fn embedding_programs_read_json_numbers_as_serde_json_does() {
        // The crate does not turn on serde_json's `arbitrary_precision` for
        // the programs it is built into (features unify across a build, so
        // this test sees what they would). With it, a float would reach
        // `deserialize_any` as a map, which breaks untagged enums, and a
        // `Value` would print the number's text (`1.50`) rather than `1.5`.
        #[derive(Debug, PartialEq, serde::Deserialize)]
        #[serde(untagged)]
        enum Amount {
            Float(f64),
            Text(String),
        }
        assert_eq!(
            serde_json::from_str::<Amount>("1.50").unwrap(),
            Amount::Float(1.5)
        );
        assert_eq!(
            serde_json::from_str::<Amount>("\"1.50\"").unwrap(),
            Amount::Text("1.50".into())
        );
        let v: Value = serde_json::from_str("1.50").unwrap();
        assert_eq!(v.to_string(), "1.5");
        assert_eq!(v, serde_json::json!(1.5));
    }

    #[test]
    fn json_nesting_is_bounded_with_the_position() {
        // A contract nests a few levels; past 32 a JSON file is refused
        // where the 33rd level opens, before any of it is read as a tree.
        let ok = format!("{}{}", "[".repeat(31), "]".repeat(31));
        let e = Contract::from_json_str(&format!("{{\"params\": {ok}}}")).unwrap_err();
        assert!(e.field_path().is_some(), "{e:?}");
        let deep = format!("{}{}", "[".repeat(32), "]".repeat(32));
        let e = Contract::from_json_str(&format!("{{\"format\": 1,\n \"params\": {deep}}}"))
            .unwrap_err();
        match e.location() {
            Location::Position { file, line, column } => {
                assert_eq!((file.as_str(), *line, *column), ("<json>", 2, 43));
                let message = e.message();
                assert!(message.contains("more than 32 levels"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        // Far deeper text is refused by serde_json itself.
        let e = Contract::from_json_str(&"[".repeat(100_000)).unwrap_err();
        assert!(matches!(e.location(), Location::Position { .. }), "{e:?}");
    }

    #[test]
    fn json_errors_inside_an_object_name_their_place_in_the_file() {
        // A duplicate key deep in the file is reported at its own line and
        // column, not at the object's.
        let e = Contract::from_json_str(
            "{\"format\": 1,\n \"metrics\": {\"m\": {\"aggregate\": \"sum\",\n   \"aggregate\": \"max\"}}}",
        )
        .unwrap_err();
        match e.location() {
            Location::Position { line, column, .. } => {
                assert_eq!(e.message(), "duplicate key \"aggregate\"");
                assert_eq!(*line, 3);
                assert!(*column > 3, "{e}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn big_json_integers_are_exact() {
        // An integer beyond 64 bits is still read exactly as a decimal.
        let c = Contract::from_json_str(&json_with_price("123456789012345678901234567")).unwrap();
        assert_eq!(unit_price(&c), d("123456789012345678901234567"));
    }

    fn example() -> Contract {
        Contract::from_path(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/support-agent/contract.toml"
        ))
        .unwrap()
    }

    #[test]

    fn spec_example_round_trips_through_toml_and_json() {
        // Writing the complete example and reading it back gives it again.
        let c = example();
        let t = c.to_toml_string().unwrap();
        assert_eq!(Contract::from_toml_str(&t).unwrap(), c, "{t}");
        let j = c.to_json_string().unwrap();
        assert_eq!(Contract::from_json_str(&j).unwrap(), c, "{j}");
    }

    #[test]
    fn literal_contract_round_trips_through_toml_and_json() {
        // Every kind with literal values survives writing and reading.
        let text = format!(
            "{HEAD}{}",
            r#"
description = "all kinds"
anchor = "2026-02-01"
timezone = "Europe/Paris"
rounding = { scale = 3, mode = "half_up" }
[params]
p = "45.50"
[metrics.m]
aggregate = "unique_count"
of = "user"
filter = { region = "eu" }
window = "term_to_date"
missing = "error"
[kpis.k]
expr = "2"
[baselines.f]
kind = "fixed"
value = 3
description = "three"
[baselines.h]
kind = "historical"
metric = "m"
from = "2025-01-01"
to = "2026-01-01"
[baselines.x]
kind = "expr"
expr = 4
[baselines.w]
kind = "high_water_mark"
metric = "m"
initial = 100.0
[[charges]]
id = "fixed"
kind = "fixed"
amount = 49
prorate = false
description = "plan"
[[charges]]
id = "unit"
kind = "unit"
quantity = 1
unit_price = 0.99
[[charges]]
id = "package"
kind = "package"
quantity = 1
size = 10
price = 5
round = "down"
[[charges]]
id = "tiered"
kind = "tiered"
quantity = 1
mode = "volume"
accumulate = "contract_year"
tiers = [ { up_to = 10, flat_fee = 1 }, { unit_price = 2 } ]
[[charges]]
id = "percentage"
kind = "percentage"
base = 1
rate = 0.029
[[charges]]
id = "gain"
kind = "gain_share"
actual = 1
baseline = 2
direction = "decrease"
value_per_unit = 3
share = 0.5
threshold = { relative = 0.02 }
sharing = "above_threshold"
cap = { amount = 1000 }
losses = { share = 0.25, threshold = { absolute = 500 }, cap = { relative = 0.1 } }
[[charges]]
id = "bands"
kind = "bands"
kpi = 1
bands = [ { to = 0.5, amount = -10 }, { from = 0.5, percent = 5, of = ["fixed", "unit"] } ]
[[charges]]
id = "corridor"
kind = "corridor"
actual = 1
target = 2
direction = "pay_underrun"
bands = [ { to = 0.05, share = 0 }, { from = 0.05, share = 0.5 } ]
[[charges]]
id = "e"
kind = "expr"
amount = 7
[[limits]]
id = "cap"
kind = "cap"
amount = 100
applies_to = ["unit"]
scope = "period"
[[limits]]
kind = "floor"
amount = 10
scope = "term"
[[amendments]]
effective = "2026-03-01"
description = "cheaper"
set = { "charges.unit.unit_price" = 0.89, "params.p" = "40", "charges.fixed.description" = "new plan" }
"#
        );
        let c = Contract::from_toml_str(&text).unwrap();
        let t = c.to_toml_string().unwrap();
        assert_eq!(Contract::from_toml_str(&t).unwrap(), c, "{t}");
        let j = c.to_json_string().unwrap();
        assert_eq!(Contract::from_json_str(&j).unwrap(), c, "{j}");
        assert_eq!(
            c.amendments[0].set["charges.unit.unit_price"],
            AmendValue("0.89".into())
        );
        match &c.charges[3].kind {
            ChargeKind::Tiered(t) => assert_eq!(
                t.tiers[0],
                Tier {
                    up_to: Some(Expr::literal(d("10"))),
                    unit_price: None,
                    flat_fee: Some(Expr::literal(d("1")))
                }
            ),
            other => panic!("{other:?}"),
        }
        match &c.charges[6].kind {
            ChargeKind::Bands(b) => assert_eq!(
                b.bands[0],
                Band {
                    from: None,
                    to: Some(Expr::literal(d("0.5"))),
                    amount: Some(Expr::literal(d("-10"))),
                    percent: None,
                    of: None
                }
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn amend_value_rejects_exponents_with_the_key_path() {
        // A bare float in `set` is read exactly, and an exponent is refused.
        let e = err(&format!(
            "{UNIT}unit_price = 1\n[[amendments]]\neffective = \"2026-03-01\"\nset = {{ \"charges.per_resolution.unit_price\" = 1e3 }}\n"
        ));
        assert_eq!(
            path_of(&e),
            "amendments[0].set.\"charges.per_resolution.unit_price\""
        );
    }

    #[test]
    fn from_path_reads_by_extension_and_names_the_file() {
        // The extension picks the format; errors carry the file name.
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("c.json");
        std::fs::write(&good, json_with_price("0.1")).unwrap();
        assert_eq!(unit_price(&Contract::from_path(&good).unwrap()), d("0.1"));
        let yaml = dir.path().join("c.yml");
        std::fs::write(&yaml, "format: 1\n").unwrap();
        #[cfg(feature = "yaml")]
        {
            std::fs::write(&yaml, yaml_with_price("0.1")).unwrap();
            assert_eq!(unit_price(&Contract::from_path(&yaml).unwrap()), d("0.1"));
        }
        // Without the feature a YAML file is refused, saying why.
        #[cfg(not(feature = "yaml"))]
        {
            let e = Contract::from_path(&yaml).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e:?}");
            assert!(e.to_string().contains("without its `yaml` feature"), "{e}");
        }
        let bad = dir.path().join("c.json");
        std::fs::write(&bad, json_with_price("1e3")).unwrap();
        let e = Contract::from_path(&bad).unwrap_err();
        assert!(
            e.to_string()
                .starts_with(&format!("{}: charges[0].unit_price: ", bad.display())),
            "{e}"
        );
        let broken = dir.path().join("c.toml");
        std::fs::write(&broken, "format = \n").unwrap();
        match Contract::from_path(&broken).unwrap_err().location().clone() {
            Location::Position { file, line, .. } => {
                assert_eq!(file, broken.display().to_string());
                assert_eq!(line, 1);
            }
            other => panic!("{other:?}"),
        }
        let other = dir.path().join("c.txt");
        assert!(matches!(
            Contract::from_path(&other),
            Err(e) if e.kind() == ErrorKind::InvalidArgument
        ));
        let missing = dir.path().join("missing.toml");
        assert!(matches!(
            Contract::from_path(&missing),
            Err(e) if e.kind() == ErrorKind::Io
        ));
    }

    #[test]

    fn example_file_loads() {
        // The complete contract of the format page loads as it stands.
        let c = example();
        assert_eq!(c.charges.len(), 5);
        assert_eq!(c.limits.len(), 2);
        assert_eq!(c.amendments.len(), 1);
    }
}
