//! Scenario files: how each series behaves over the periods of a simulation.
//!
//! A scenario is read like a contract: TOML into the loader's exact-decimal
//! tree (`toml_tree`), then each part deserialized with `from_tree`, so a
//! bare float never passes through a binary float and every error names its
//! field path (`series.uptime_pct.sd`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde::de::{self, Deserializer};
use serde_json::Value;

use crate::contract::DECIMAL_TOKEN;
use crate::contract::load::{from_tree, path_key, toml_tree};
use crate::error::{Error, Location, Result};
use crate::money::parse_decimal;

/// The most decimal places a random draw may keep: a binary float carries
/// about 15 significant digits, so more places would be noise.
pub const DECIMALS_MAX: u32 = 15;

/// The default number of decimal places of a random draw.
pub const DECIMALS_DEFAULT: u32 = 6;

/// The largest Poisson mean accepted: draws must stay whole numbers that a
/// binary float holds exactly (below 2^53).
const LAMBDA_MAX: i64 = 1_000_000_000_000_000;

/// The model names a scenario may use, in the order of the format page.
const MODELS: &str = "constant, linear, growth, normal, lognormal, poisson, replay";

/// How one series behaves, period by period.
///
/// Deterministic models give the same value in every run; random ones draw
/// a new value per period and run; `replay` replays recorded history.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Model {
    /// The same value in every period.
    Constant {
        /// The value.
        value: Decimal,
    },
    /// `start + n * step` in period `n` (from 0).
    Linear {
        /// The value in the first period.
        start: Decimal,
        /// The change per period.
        step: Decimal,
    },
    /// `start * (1 + rate)^n` in period `n`, exact.
    Growth {
        /// The value in the first period.
        start: Decimal,
        /// The growth per period (`0.05` is 5 %).
        rate: Decimal,
    },
    /// A normal draw, rounded half-even to `decimals` places, then clamped.
    Normal {
        /// The mean.
        mean: Decimal,
        /// The standard deviation (0 or more).
        sd: Decimal,
        /// The least value a draw may take.
        min: Option<Decimal>,
        /// The greatest value a draw may take.
        max: Option<Decimal>,
        /// Decimal places kept (default 6).
        decimals: u32,
    },
    /// A log-normal draw `median * exp(sigma * z)`, rounded half-even to
    /// `decimals` places, then clamped.
    LogNormal {
        /// The median (more than 0).
        median: Decimal,
        /// The standard deviation of the logarithm (0 or more).
        sigma: Decimal,
        /// The least value a draw may take.
        min: Option<Decimal>,
        /// The greatest value a draw may take.
        max: Option<Decimal>,
        /// Decimal places kept (default 6).
        decimals: u32,
    },
    /// A Poisson draw: a whole number with mean `lambda`.
    Poisson {
        /// The mean (0 or more).
        lambda: Decimal,
    },
    /// Recorded history replayed period by period: every observation of the
    /// series in `file` between `from + n * cadence` and
    /// `from + (n + 1) * cadence`, moved into period `n` by the same offset,
    /// its value times `scale`.
    Replay {
        /// The metric CSV (relative paths are resolved against the
        /// scenario file's folder when it is read from a file).
        file: PathBuf,
        /// The factor applied to every value (default 1).
        scale: Decimal,
        /// The first day of the history to replay (default: the
        /// contract's start).
        from: Option<NaiveDate>,
    },
}

impl Model {
    /// The model's name as scenario files write it.
    pub fn name(&self) -> &'static str {
        match self {
            Model::Constant { .. } => "constant",
            Model::Linear { .. } => "linear",
            Model::Growth { .. } => "growth",
            Model::Normal { .. } => "normal",
            Model::LogNormal { .. } => "lognormal",
            Model::Poisson { .. } => "poisson",
            Model::Replay { .. } => "replay",
        }
    }

    /// Whether the model draws random values.
    pub fn is_random(&self) -> bool {
        matches!(
            self,
            Model::Normal { .. } | Model::LogNormal { .. } | Model::Poisson { .. }
        )
    }
}

/// A scenario: how many periods to simulate and how each series behaves.
///
/// # Example
/// ```
/// use outcome_billing::simulate::{Model, Scenario};
/// let scenario = Scenario::from_toml_str(r#"
///     periods = 12
///     [series.resolved_conversations]
///     model = "growth"
///     start = "1000"
///     rate = 0.05
///     [series.uptime_pct]
///     model = "normal"
///     mean = "99.95"
///     sd = "0.05"
///     max = "100"
///     decimals = 3
/// "#)?;
/// assert_eq!(scenario.periods, Some(12));
/// assert!(scenario.series["uptime_pct"].is_random());
///
/// let err = Scenario::from_toml_str("[series.x]\nmodel = \"normal\"\nmean = 1\nsd = -1\n").unwrap_err();
/// assert_eq!(err.to_string(), "series.x.sd: a standard deviation cannot be negative (-1)");
/// # Ok::<(), outcome_billing::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scenario {
    /// Periods to simulate from the start of the term (default: the whole
    /// term; more than the term is an error).
    pub periods: Option<usize>,
    /// Each series' model, by series name.
    pub series: BTreeMap<String, Model>,
    /// The file the scenario was read from, for messages.
    pub origin: Option<String>,
}

impl Scenario {
    /// Reads a scenario from TOML text. Relative `replay` files are left
    /// relative to the working directory.
    ///
    /// # Errors
    /// an invalid-contract [`Error`] at a file position (file `<toml>`) when the text is not TOML;
    /// an invalid-contract [`Error`] naming the field path when a field is missing,
    /// unknown or out of range, or a model is unknown.
    pub fn from_toml_str(text: &str) -> Result<Scenario> {
        load(text, "<toml>", None)
    }

    /// Reads a scenario file (TOML). Relative `replay` files are resolved
    /// against the file's folder.
    ///
    /// # Errors
    /// an I/O [`Error`] when the file cannot be read, and the errors of
    /// [`Scenario::from_toml_str`] located in the file.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Scenario> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(name.clone(), e))?;
        let folder = path.parent().filter(|p| !p.as_os_str().is_empty());
        let mut scenario = load(&text, &name, folder).map_err(|e| e.in_file(name.clone()))?;
        scenario.origin = Some(name);
        Ok(scenario)
    }

    /// Whether any series draws random values (otherwise every run is the
    /// same and one run says it all).
    pub fn is_random(&self) -> bool {
        self.series.values().any(Model::is_random)
    }

    /// The same scenario with `series` set to `model` (added or replaced).
    pub fn with_series(mut self, series: impl Into<String>, model: Model) -> Scenario {
        self.series.insert(series.into(), model);
        self
    }

    /// The error for field `field` of series `name`, located in the
    /// scenario's file when it came from one.
    pub(crate) fn error(&self, path: String, message: impl fmt::Display) -> Error {
        let e = Error::contract(path, message);
        match &self.origin {
            Some(file) => e.in_file(file.clone()),
            None => e,
        }
    }

    /// The field path of `field` in series `name`.
    pub(crate) fn field_path(name: &str, field: &str) -> String {
        format!("series.{}.{field}", path_key(name))
    }
}

/// The top level, with each series kept as a tree to read by its model.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    #[serde(default)]
    periods: Option<u64>,
    #[serde(default)]
    series: BTreeMap<String, Value>,
}

fn load(text: &str, file: &str, folder: Option<&Path>) -> Result<Scenario> {
    let tree = toml_tree(text, file)?;
    let raw: RawScenario = from_tree(&tree)?;
    let periods = match raw.periods {
        None => None,
        Some(0) => {
            return Err(Error::contract(
                "periods",
                "a scenario needs at least 1 period, not 0",
            ));
        }
        Some(n) => Some(
            usize::try_from(n)
                .map_err(|_| Error::contract("periods", format!("too many periods ({n})")))?,
        ),
    };
    let mut series = BTreeMap::new();
    for (name, node) in raw.series {
        let prefix = format!("series.{}", path_key(&name));
        if name.is_empty() {
            return Err(Error::contract(prefix, "a series needs a name"));
        }
        let model = model_from_tree(node, folder).map_err(|e| under(e, &prefix))?;
        series.insert(name, model);
    }
    Ok(Scenario {
        periods,
        series,
        origin: None,
    })
}

/// The error with its field path put under `prefix`.
fn under(error: Error, prefix: &str) -> Error {
    let Location::Field { file, path } = error.location() else {
        return error;
    };
    let path = if path == "(top level)" {
        prefix.to_string()
    } else if path.starts_with('[') {
        format!("{prefix}{path}")
    } else {
        format!("{prefix}.{path}")
    };
    let file = file.clone();
    error.at(Location::Field { file, path })
}

/// A decimal written as a string, an integer or a bare float (read from its
/// text by the loader), in the contract format's strict syntax.
#[derive(Debug, Clone, Copy)]
struct Num(Decimal);

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Num, D::Error> {
        d.deserialize_any(NumVisitor)
    }
}

struct NumVisitor;

impl<'de> de::Visitor<'de> for NumVisitor {
    type Value = Num;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a decimal")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> std::result::Result<Num, E> {
        parse_decimal(text).map(Num).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Num, E> {
        Ok(Num(Decimal::from(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Num, E> {
        Ok(Num(Decimal::from(v)))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<Num, A::Error> {
        match map.next_key::<String>()?.as_deref() {
            Some(DECIMAL_TOKEN) => {
                let text: String = map.next_value()?;
                parse_decimal(&text).map(Num).map_err(de::Error::custom)
            }
            _ => Err(de::Error::custom("invalid type: table, expected a decimal")),
        }
    }
}

fn decimals_default() -> u32 {
    DECIMALS_DEFAULT
}

/// The fields of each model, read with `model` removed.
mod fields {
    use chrono::NaiveDate;
    use serde::Deserialize;

    use super::{Num, decimals_default};

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Constant {
        pub(super) value: Num,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Linear {
        pub(super) start: Num,
        pub(super) step: Num,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Growth {
        pub(super) start: Num,
        pub(super) rate: Num,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Normal {
        pub(super) mean: Num,
        pub(super) sd: Num,
        #[serde(default)]
        pub(super) min: Option<Num>,
        #[serde(default)]
        pub(super) max: Option<Num>,
        #[serde(default = "decimals_default")]
        pub(super) decimals: u32,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct LogNormal {
        pub(super) median: Num,
        pub(super) sigma: Num,
        #[serde(default)]
        pub(super) min: Option<Num>,
        #[serde(default)]
        pub(super) max: Option<Num>,
        #[serde(default = "decimals_default")]
        pub(super) decimals: u32,
    }

    /// `decimals` is accepted, as for every random model, but a Poisson
    /// draw is a whole number: rounding it changes nothing.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Poisson {
        pub(super) lambda: Num,
        #[serde(default = "decimals_default")]
        pub(super) decimals: u32,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Replay {
        pub(super) file: String,
        #[serde(default)]
        pub(super) scale: Option<Num>,
        #[serde(default)]
        pub(super) from: Option<NaiveDate>,
    }
}

/// Reads one series' table: its `model`, then that model's fields, and
/// checks their ranges. Paths in errors are relative to the table.
fn model_from_tree(node: Value, folder: Option<&Path>) -> Result<Model> {
    let mut map = match node {
        Value::Object(map) if !map.contains_key(DECIMAL_TOKEN) => map,
        _ => {
            return Err(Error::contract(
                "(top level)",
                "expected a table with a model and its fields",
            ));
        }
    };
    let model = match map.shift_remove("model") {
        Some(Value::String(s)) => s,
        Some(_) => {
            return Err(Error::contract(
                "model",
                "expected the model's name as a string",
            ));
        }
        None => return Err(Error::contract("model", "missing field")),
    };
    let rest = Value::Object(map);
    Ok(match model.as_str() {
        "constant" => {
            let f: fields::Constant = from_tree(&rest)?;
            Model::Constant { value: f.value.0 }
        }
        "linear" => {
            let f: fields::Linear = from_tree(&rest)?;
            Model::Linear {
                start: f.start.0,
                step: f.step.0,
            }
        }
        "growth" => {
            let f: fields::Growth = from_tree(&rest)?;
            Model::Growth {
                start: f.start.0,
                rate: f.rate.0,
            }
        }
        "normal" => {
            let f: fields::Normal = from_tree(&rest)?;
            if f.sd.0.is_sign_negative() && !f.sd.0.is_zero() {
                return Err(Error::contract(
                    "sd",
                    format!("a standard deviation cannot be negative ({})", f.sd.0),
                ));
            }
            let (min, max) = bounds(f.min, f.max)?;
            Model::Normal {
                mean: f.mean.0,
                sd: f.sd.0,
                min,
                max,
                decimals: decimals(f.decimals)?,
            }
        }
        "lognormal" => {
            let f: fields::LogNormal = from_tree(&rest)?;
            if f.median.0 <= Decimal::ZERO {
                return Err(Error::contract(
                    "median",
                    format!("a log-normal median must be more than 0 ({})", f.median.0),
                ));
            }
            if f.sigma.0.is_sign_negative() && !f.sigma.0.is_zero() {
                return Err(Error::contract(
                    "sigma",
                    format!("sigma cannot be negative ({})", f.sigma.0),
                ));
            }
            let (min, max) = bounds(f.min, f.max)?;
            Model::LogNormal {
                median: f.median.0,
                sigma: f.sigma.0,
                min,
                max,
                decimals: decimals(f.decimals)?,
            }
        }
        "poisson" => {
            let f: fields::Poisson = from_tree(&rest)?;
            decimals(f.decimals)?;
            let lambda = f.lambda.0;
            if lambda.is_sign_negative() && !lambda.is_zero() {
                return Err(Error::contract(
                    "lambda",
                    format!("a Poisson mean cannot be negative ({lambda})"),
                ));
            }
            if lambda > Decimal::from(LAMBDA_MAX) {
                return Err(Error::contract(
                    "lambda",
                    format!("a Poisson mean must be at most {LAMBDA_MAX} ({lambda})"),
                ));
            }
            Model::Poisson { lambda }
        }
        "replay" => {
            let f: fields::Replay = from_tree(&rest)?;
            if f.file.is_empty() {
                return Err(Error::contract(
                    "file",
                    "a replay needs the metric CSV's path",
                ));
            }
            let file = PathBuf::from(&f.file);
            let file = match folder {
                Some(folder) if file.is_relative() => folder.join(file),
                _ => file,
            };
            Model::Replay {
                file,
                scale: f.scale.map_or(Decimal::ONE, |s| s.0),
                from: f.from,
            }
        }
        other => {
            return Err(Error::contract(
                "model",
                format!("unknown model {other:?}, expected one of {MODELS}"),
            ));
        }
    })
}

fn bounds(min: Option<Num>, max: Option<Num>) -> Result<(Option<Decimal>, Option<Decimal>)> {
    let (min, max) = (min.map(|n| n.0), max.map(|n| n.0));
    if let (Some(lo), Some(hi)) = (min, max) {
        if lo > hi {
            return Err(Error::contract(
                "max",
                format!("max must not be less than min ({hi} < {lo})"),
            ));
        }
    }
    Ok((min, max))
}

fn decimals(places: u32) -> Result<u32> {
    if places > DECIMALS_MAX {
        return Err(Error::contract(
            "decimals",
            format!("at most {DECIMALS_MAX} decimal places, not {places}"),
        ));
    }
    Ok(places)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().expect("a decimal")
    }

    fn err(text: &str) -> String {
        Scenario::from_toml_str(text)
            .expect_err("the scenario should be rejected")
            .to_string()
    }

    #[test]
    fn every_model_reads_its_fields_exactly() {
        // Proves each model's fields arrive as exact decimals, strings or bare numbers, with defaults.
        let s = Scenario::from_toml_str(
            r#"
periods = 3
[series.a]
model = "constant"
value = 0.1
[series.b]
model = "linear"
start = "10"
step = -2
[series.c]
model = "growth"
start = 1000
rate = "0.05"
[series.d]
model = "normal"
mean = 1234567890.123456789
sd = "0.5"
min = 0
[series.e]
model = "lognormal"
median = "20"
sigma = 0.25
max = "100"
decimals = 2
[series.f]
model = "poisson"
lambda = 4.5
[series.g]
model = "replay"
file = "history.csv"
scale = "1.1"
from = 2025-01-01
"#,
        )
        .expect("valid scenario");
        assert_eq!(s.periods, Some(3));
        assert_eq!(s.series["a"], Model::Constant { value: d("0.1") });
        assert_eq!(
            s.series["b"],
            Model::Linear {
                start: d("10"),
                step: d("-2")
            }
        );
        assert_eq!(
            s.series["d"],
            Model::Normal {
                mean: d("1234567890.123456789"),
                sd: d("0.5"),
                min: Some(d("0")),
                max: None,
                decimals: 6
            }
        );
        assert_eq!(
            s.series["e"],
            Model::LogNormal {
                median: d("20"),
                sigma: d("0.25"),
                min: None,
                max: Some(d("100")),
                decimals: 2
            }
        );
        assert_eq!(s.series["f"], Model::Poisson { lambda: d("4.5") });
        assert_eq!(
            s.series["g"],
            Model::Replay {
                file: PathBuf::from("history.csv"),
                scale: d("1.1"),
                from: NaiveDate::from_ymd_opt(2025, 1, 1)
            }
        );
        assert!(s.is_random());
        assert!(
            !Scenario::from_toml_str("")
                .expect("empty is valid")
                .is_random()
        );
    }

    #[test]
    fn errors_name_the_field_path() {
        // Proves unknown fields and models, bad values and ranges are rejected with the series' field path.
        assert_eq!(
            err("[series.uptime_pct]\nmodel = \"normal\"\nmean = 1\nsd = 1\ncolour = 1\n"),
            "series.uptime_pct.colour: unknown field `colour`, expected one of `mean`, `sd`, `min`, `max`, `decimals`"
        );
        assert_eq!(
            err("[series.x]\nmodel = \"gaussian\"\n"),
            "series.x.model: unknown model \"gaussian\", expected one of constant, linear, growth, normal, lognormal, poisson, replay"
        );
        assert_eq!(
            err("[series.x]\nvalue = 1\n"),
            "series.x.model: missing field"
        );
        assert_eq!(
            err("[series.x]\nmodel = \"normal\"\nmean = 1\n"),
            "series.x.sd: missing field"
        );
        assert!(
            err("[series.x]\nmodel = \"constant\"\nvalue = 1e3\n")
                .starts_with("series.x.value: malformed decimal \"1e3\"")
        );
        assert!(
            err("[series.x]\nmodel = \"constant\"\nvalue = \"abc\"\n")
                .starts_with("series.x.value: malformed decimal \"abc\"")
        );
        assert_eq!(
            err("[series.x]\nmodel = \"normal\"\nmean = 1\nsd = 1\nmin = 5\nmax = 4\n"),
            "series.x.max: max must not be less than min (4 < 5)"
        );
        assert_eq!(
            err("[series.x]\nmodel = \"lognormal\"\nmedian = 0\nsigma = 1\n"),
            "series.x.median: a log-normal median must be more than 0 (0)"
        );
        assert_eq!(
            err("[series.x]\nmodel = \"lognormal\"\nmedian = 1\nsigma = -0.1\n"),
            "series.x.sigma: sigma cannot be negative (-0.1)"
        );
        assert_eq!(
            err("[series.x]\nmodel = \"poisson\"\nlambda = -1\n"),
            "series.x.lambda: a Poisson mean cannot be negative (-1)"
        );
        assert_eq!(
            err("[series.x]\nmodel = \"normal\"\nmean = 1\nsd = 1\ndecimals = 16\n"),
            "series.x.decimals: at most 15 decimal places, not 16"
        );
        assert_eq!(
            err("[series.x]\nmodel = \"normal\"\nmean = 1\nsd = 1\ndecimals = 1.5\n"),
            "series.x.decimals: invalid type: decimal `1.5`, expected u32"
        );
        assert_eq!(
            err("periods = 0\n"),
            "periods: a scenario needs at least 1 period, not 0"
        );
        assert!(err("periods = 2\nrunz = 3\n").starts_with("runz: unknown field `runz`"));
        assert!(
            err("[series.x]\nmodel = \"replay\"\nfile = \"a.csv\"\nfrom = \"2025-13-01\"\n")
                .starts_with("series.x.from: malformed date \"2025-13-01\"")
        );
        assert_eq!(
            err("[series.\"odd name\"]\nmodel = \"constant\"\n"),
            "series.\"odd name\".value: missing field"
        );
    }

    #[test]
    fn syntax_errors_have_a_position() {
        // Proves TOML syntax errors are Syntax errors with line and column, exit status 2.
        let e = Scenario::from_toml_str("periods = 3\n[series.x\n").expect_err("bad toml");
        assert!(
            matches!(e.location(), Location::Position { line: 2, .. }),
            "{e:?}"
        );
        assert_eq!(e.kind(), crate::error::ErrorKind::InvalidContract);
    }

    #[test]
    fn replay_files_resolve_against_the_scenario_folder() {
        // Proves a relative replay file read from a scenario file is taken relative to that file's folder.
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("s.toml");
        std::fs::write(&path, "[series.x]\nmodel = \"replay\"\nfile = \"h.csv\"\n").expect("write");
        let s = Scenario::from_path(&path).expect("valid");
        assert_eq!(
            s.series["x"],
            Model::Replay {
                file: dir.path().join("h.csv"),
                scale: Decimal::ONE,
                from: None
            }
        );
        assert_eq!(
            s.origin.as_deref(),
            Some(path.display().to_string().as_str())
        );
        std::fs::write(&path, "[series.x]\nmodel = \"normal\"\nmean = 1\nsd = -1\n")
            .expect("write");
        let e = Scenario::from_path(&path).expect_err("negative sd");
        assert_eq!(e.location(), format!("{}: series.x.sd", path.display()));
    }
}
