//! The validation rules of the contract format that need no expression
//! type checking: the top level, the one namespace, metrics, baselines,
//! tiers, bands, corridors, limits and amendment dates.
//!
//! Names used inside expressions, cycles and types are checked where
//! settlement compiles the contract. Every error names the field path.

use std::collections::{BTreeSet, HashMap};

#[cfg(test)]
use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::load::path_key;
use super::{BaselineKind, Contract, Window};
use crate::charge::kind::ContractView;
use crate::error::{Error, Result};
use crate::expr::{Env, Expr};
use crate::metric::Aggregate;
use crate::money::{Rounding, RoundingMode};

/// The most decimal places a decimal holds.
const SCALE_MAX: u32 = 28;

/// Checks every rule of this module on `contract` as written (amendments
/// are applied and checked by `Contract::validate`).
pub(crate) fn check(contract: &Contract) -> Result<()> {
    super::shape::check(contract)?;
    top_level(contract)?;
    namespace(contract)?;
    params(contract)?;
    metrics(contract)?;
    baselines(contract)?;
    for (i, charge) in contract.charges.iter().enumerate() {
        charge.kind.check(&crate::charge::kind::Rules {
            contract,
            position: i,
        })?;
    }
    limits(contract)?;
    amendment_dates(contract)?;
    groups(contract)?;
    Ok(())
}

/// Columns of the metric data that are not dimensions, so no charge can be
/// grouped by them.
const NOT_DIMENSIONS: &[&str] = &crate::metric::csv_source::COLUMNS;

/// The rules of `group_by` and `params_by` that need no compilation: no
/// `fixed` charge and no reserved column is grouped, no grouped charge
/// accumulates over the contract year, every `params_by` entry names a
/// param and is a decimal, and the kinds' rules on constant values hold
/// under every `params_by` value of the dimension a charge is grouped by.
/// (References between charges and to high-water marks are checked where
/// the contract compiles.)
fn groups(contract: &Contract) -> Result<()> {
    for (i, charge) in contract.charges.iter().enumerate() {
        let Some(dimension) = &charge.group_by else {
            continue;
        };
        let path = format!("charges[{i}].group_by");
        if dimension.is_empty() {
            return Err(Error::contract(path, "group_by names no dimension (empty)"));
        }
        if NOT_DIMENSIONS.contains(&dimension.as_str()) {
            return Err(Error::contract(
                path,
                format!(
                    "{dimension:?} is a column of the metric data, not a dimension: group_by cannot name {}",
                    NOT_DIMENSIONS.join(", ")
                ),
            ));
        }
        match &charge.kind {
            super::ChargeKind::Fixed(_) => {
                return Err(Error::contract(
                    path,
                    "a fixed charge cannot be grouped: group_by is for every kind but fixed",
                ));
            }
            super::ChargeKind::Tiered(t) if t.accumulate == super::Accumulate::ContractYear => {
                return Err(Error::contract(
                    format!("charges[{i}].accumulate"),
                    format!(
                        "a charge grouped by {dimension} cannot accumulate over the contract year: its year-to-date state would be per group"
                    ),
                ));
            }
            _ => {}
        }
    }
    for (dimension, values) in &contract.params_by {
        for (value, set) in values {
            for (param, decimal) in set {
                let path = format!(
                    "params_by.{}.{}.{}",
                    path_key(dimension),
                    path_key(value),
                    path_key(param)
                );
                if !contract.params.contains_key(param) {
                    return Err(Error::contract(
                        path,
                        format!(
                            "no param is named {param} (params_by can only change an existing param)"
                        ),
                    ));
                }
                if decimal.as_literal().is_none() {
                    return Err(Error::contract(
                        path,
                        format!("a params_by value is a decimal, not {:?}", decimal.text()),
                    ));
                }
            }
            let grouped: Vec<usize> = (0..contract.charges.len())
                .filter(|&i| contract.charges[i].group_by.as_deref() == Some(dimension.as_str()))
                .collect();
            if grouped.is_empty() {
                continue;
            }
            let variant = with_params(contract, set);
            for i in grouped {
                variant.charges[i]
                    .kind
                    .check(&crate::charge::kind::Rules {
                        contract: &variant,
                        position: i,
                    })
                    .map_err(|e| under_params_by(e, dimension, value))?;
            }
        }
    }
    Ok(())
}

/// The contract with the params of one `params_by` value in force (and no
/// `params_by` of its own).
pub(crate) fn with_params(
    contract: &Contract,
    set: &std::collections::BTreeMap<String, Expr>,
) -> Contract {
    let mut variant = Contract {
        params_by: Default::default(),
        amendments: Vec::new(),
        ..contract.clone()
    };
    for (param, value) in set {
        if let Some(slot) = variant.params.get_mut(param) {
            *slot = value.clone();
        }
    }
    variant
}

/// Says that an error holds in the group of `value` of `dimension`, where
/// `params_by` changes some params.
pub(crate) fn under_params_by(error: Error, dimension: &str, value: &str) -> Error {
    if error.field_path().is_none() {
        return error;
    }
    let message = format!(
        "{} (in the group {value:?} of {dimension}, with its params_by values)",
        error.message()
    );
    error.with_message(message)
}

/// The rounding a contract's lines use, defaults applied (a currency without
/// minor units and no `rounding.scale` is an error caught by `top_level`).
pub(crate) fn line_rounding(contract: &Contract) -> Rounding {
    let spec = contract.rounding.unwrap_or(super::RoundingSpec {
        scale: None,
        mode: None,
    });
    let scale = spec.scale.or(contract.currency.minor_units()).unwrap_or(2);
    Rounding::new(scale, spec.mode.unwrap_or(RoundingMode::HalfEven))
}

fn top_level(contract: &Contract) -> Result<()> {
    if contract.format != 1 {
        return Err(Error::contract(
            "format",
            format!("unsupported format {}, expected 1", contract.format),
        ));
    }
    if contract.id.is_empty() {
        return Err(Error::contract("id", "must not be empty"));
    }
    if contract.customer.is_empty() {
        return Err(Error::contract("customer", "must not be empty"));
    }
    let scale = contract.rounding.and_then(|r| r.scale);
    match scale {
        Some(s) if s > SCALE_MAX => {
            return Err(Error::contract(
                "rounding.scale",
                format!("{s} is more than the {SCALE_MAX} decimal places a decimal holds"),
            ));
        }
        None if contract.currency.minor_units().is_none() => {
            return Err(Error::contract(
                "rounding.scale",
                format!(
                    "missing field: {} has no minor units, so the scale must be given",
                    contract.currency
                ),
            ));
        }
        _ => {}
    }
    if contract.end <= contract.start {
        return Err(Error::contract(
            "end",
            format!("{} is not after start {}", contract.end, contract.start),
        ));
    }
    Ok(())
}

/// Params, metrics, KPIs, baselines, charge ids and limit ids share one
/// namespace.
fn namespace(contract: &Contract) -> Result<()> {
    let mut seen: HashMap<String, &'static str> = HashMap::new();
    let mut add = |name: &str, what: &'static str, path: String| -> Result<()> {
        if name.is_empty() {
            return Err(Error::contract(path, "a name must not be empty"));
        }
        if let Some(first) = seen.get(name) {
            return Err(Error::contract(
                path,
                format!("{name} is already the name of {}", article(first)),
            ));
        }
        seen.insert(name.to_string(), what);
        Ok(())
    };
    for name in contract.params.keys() {
        add(name, "param", format!("params.{}", path_key(name)))?;
    }
    for name in contract.metrics.keys() {
        add(name, "metric", format!("metrics.{}", path_key(name)))?;
    }
    for name in contract.kpis.keys() {
        add(name, "KPI", format!("kpis.{}", path_key(name)))?;
    }
    for name in contract.baselines.keys() {
        add(name, "baseline", format!("baselines.{}", path_key(name)))?;
    }
    for (i, charge) in contract.charges.iter().enumerate() {
        add(&charge.id, "charge", format!("charges[{i}].id"))?;
    }
    for (i, limit) in contract.limits.iter().enumerate() {
        if let Some(id) = &limit.id {
            add(id, "limit", format!("limits[{i}].id"))?;
        }
    }
    Ok(())
}

fn article(what: &str) -> String {
    format!("a {what}")
}

/// Params are named constants: decimals, not expressions.
fn params(contract: &Contract) -> Result<()> {
    for (name, value) in &contract.params {
        if value.as_literal().is_none() {
            return Err(Error::contract(
                format!("params.{}", path_key(name)),
                format!(
                    "a param is a named constant: expected a decimal, not the expression {:?}",
                    value.text()
                ),
            ));
        }
    }
    Ok(())
}

fn metrics(contract: &Contract) -> Result<()> {
    for (name, metric) in &contract.metrics {
        let at = format!("metrics.{}", path_key(name));
        match (metric.aggregate, &metric.of) {
            (Aggregate::UniqueCount, None) => {
                return Err(Error::contract(
                    format!("{at}.of"),
                    "missing field: unique_count needs of, the dimension whose distinct values count",
                ));
            }
            (Aggregate::UniqueCount, Some(of)) if of.is_empty() => {
                return Err(Error::contract(format!("{at}.of"), "must name a dimension"));
            }
            (aggregate, Some(_)) if aggregate != Aggregate::UniqueCount => {
                return Err(Error::contract(
                    format!("{at}.of"),
                    format!(
                        "only unique_count takes of, not aggregate {}",
                        aggregate.name()
                    ),
                ));
            }
            _ => {}
        }
        if metric.series.as_deref() == Some("") {
            return Err(Error::contract(format!("{at}.series"), "must not be empty"));
        }
    }
    Ok(())
}

fn baselines(contract: &Contract) -> Result<()> {
    for (name, baseline) in &contract.baselines {
        let at = format!("baselines.{}", path_key(name));
        match &baseline.kind {
            BaselineKind::Historical { metric, from, to } => {
                metric_name(contract, &format!("{at}.metric"), metric)?;
                if to <= from {
                    return Err(Error::contract(
                        format!("{at}.to"),
                        format!("{to} is not after from {from}"),
                    ));
                }
                if crate::period::lay(*from, *to, contract.cadence, contract.timezone).is_err() {
                    return Err(Error::contract(
                        format!("{at}.to"),
                        format!(
                            "{to} is not {from} plus a whole number of {} periods",
                            contract.cadence.name()
                        ),
                    ));
                }
            }
            BaselineKind::HighWaterMark { metric, .. } => {
                metric_name(contract, &format!("{at}.metric"), metric)?
            }
            BaselineKind::Fixed { .. } | BaselineKind::Expr { .. } => {}
        }
    }
    Ok(())
}

fn metric_name(contract: &Contract, path: &str, name: &str) -> Result<()> {
    if contract.metrics.contains_key(name) {
        Ok(())
    } else {
        Err(Error::contract(path, format!("undefined metric {name}")))
    }
}

/// The first day of every period of the term, in order (empty when the
/// term itself is invalid, which `top_level` reports).
#[cfg(test)]
pub(crate) fn period_starts(contract: &Contract) -> Vec<NaiveDate> {
    crate::period::Schedule::new(
        contract.start,
        contract.end,
        contract.cadence,
        contract.anchor,
        contract.timezone,
    )
    .map(|s| s.periods().iter().map(|p| p.start).collect())
    .unwrap_or_default()
}

/// The value of `expr` when it reads only literals and params.
///
/// # Errors
/// A constant expression that fails to evaluate (division by zero), at `path`.
pub(crate) fn constant(contract: &Contract, path: &str, expr: &Expr) -> Result<Option<Decimal>> {
    if let Some(value) = expr.as_literal() {
        return Ok(Some(value));
    }
    let mut values: Vec<Decimal> = Vec::new();
    let compiled = expr.compile(&mut |name| {
        let value = contract.params.get(name)?.as_literal()?;
        values.push(value);
        u32::try_from(values.len() - 1).ok()
    });
    let Ok(compiled) = compiled else {
        // A name other than a param: the value is known only at settlement.
        return Ok(None);
    };
    let mut env = ParamEnv {
        values,
        rounding: line_rounding(contract),
    };
    compiled
        .eval(&mut env)
        .map(Some)
        .map_err(|e| Error::contract(path, format!("{e} in {:?}", expr.text())))
}

/// The values of params, by the slots `constant` gave them.
struct ParamEnv {
    values: Vec<Decimal>,
    rounding: Rounding,
}

impl Env for ParamEnv {
    fn value(&mut self, slot: u32) -> std::result::Result<Decimal, Box<Error>> {
        let index = usize::try_from(slot).ok();
        index
            .and_then(|i| self.values.get(i).copied())
            .ok_or_else(|| Box::new(Error::usage(format!("no param at slot {slot}"))))
    }

    fn rounding(&self) -> Rounding {
        self.rounding
    }
}

/// What a charge kind's load-time rules ask of the contract.
impl ContractView for Contract {
    fn constant(&self, path: &str, expr: &Expr) -> Result<Option<Decimal>> {
        constant(self, path, expr)
    }

    fn metric(&self, name: &str) -> Option<(usize, Window)> {
        self.metrics
            .iter()
            .enumerate()
            .find(|(_, (k, _))| k.as_str() == name)
            .map(|(i, (_, m))| (i, m.window))
    }

    fn charge(&self, id: &str) -> Option<usize> {
        self.charges.iter().position(|c| c.id == id)
    }
}

fn limit_set(contract: &Contract, i: usize) -> Result<BTreeSet<&str>> {
    let limit = &contract.limits[i];
    let Some(applies_to) = &limit.applies_to else {
        return Ok(contract.charges.iter().map(|c| c.id.as_str()).collect());
    };
    let at = format!("limits[{i}].applies_to");
    if applies_to.is_empty() {
        return Err(Error::contract(
            at,
            "must name at least one charge (leave it out to apply to every charge)",
        ));
    }
    let mut set = BTreeSet::new();
    for (k, name) in applies_to.iter().enumerate() {
        if !contract.charges.iter().any(|c| &c.id == name) {
            return Err(Error::contract(
                format!("{at}[{k}]"),
                format!("{name} is not a charge"),
            ));
        }
        if !set.insert(name.as_str()) {
            return Err(Error::contract(
                format!("{at}[{k}]"),
                format!("{name} is listed twice"),
            ));
        }
    }
    Ok(set)
}

fn limit_label(contract: &Contract, i: usize) -> String {
    match &contract.limits[i].id {
        Some(id) => format!("limits[{i}] ({id})"),
        None => format!("limits[{i}]"),
    }
}

/// Limits are written narrow to broad: none strictly contains, or partly
/// overlaps, a later one.
fn limits(contract: &Contract) -> Result<()> {
    let sets = (0..contract.limits.len())
        .map(|i| limit_set(contract, i))
        .collect::<Result<Vec<_>>>()?;
    for (i, earlier) in sets.iter().enumerate() {
        for (j, later) in sets.iter().enumerate().skip(i + 1) {
            let at = format!("limits[{i}].applies_to");
            if earlier.is_superset(later) && earlier != later {
                return Err(Error::contract(
                    at,
                    format!(
                        "applies to every charge of the later {} and more: limits are written from narrow to broad, so it must come after",
                        limit_label(contract, j)
                    ),
                ));
            }
            let shared: Vec<&str> = earlier.intersection(later).copied().collect();
            if !shared.is_empty() && !earlier.is_subset(later) && !later.is_subset(earlier) {
                return Err(Error::contract(
                    at,
                    format!(
                        "overlaps the later {} (both apply to {}) without either containing the other",
                        limit_label(contract, j),
                        shared.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Amendments take effect on dates of the term, one per date. A date that
/// is not a period start cuts its period (see `Schedule::cut`).
fn amendment_dates(contract: &Contract) -> Result<()> {
    for (i, amendment) in contract.amendments.iter().enumerate() {
        let at = format!("amendments[{i}].effective");
        let date = amendment.effective;
        if date < contract.start || date >= contract.end {
            return Err(Error::contract(
                at,
                format!(
                    "{date} is not a date of the term (the term runs from {} to {}, exclusive)",
                    contract.start, contract.end
                ),
            ));
        }
        if let Some(first) = contract.amendments[..i]
            .iter()
            .position(|a| a.effective == date)
        {
            return Err(Error::contract(
                at,
                format!("{date} is already the date of amendments[{first}]"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = r#"
format = 1
id = "demo"
customer = "acme"
currency = "USD"
start = "2026-01-01"
end = "2027-01-01"
cadence = "monthly"
"#;

    fn load(body: &str) -> Result<Contract> {
        Contract::from_toml_str(&format!("{HEAD}{body}"))
    }

    /// Asserts that `body` is rejected at `path` with a message containing `needle`.
    #[track_caller]
    fn rejected(body: &str, path: &str, needle: &str) {
        match load(body) {
            Err(e) if e.field_path().is_some() => {
                let (p, message) = (e.field_path().unwrap_or_default(), e.message());
                assert_eq!(p, path, "message: {message}");
                assert!(
                    message.contains(needle),
                    "{path}: {message:?} lacks {needle:?}"
                );
            }
            other => panic!("expected a contract error at {path}, got {other:?}"),
        }
    }

    /// A param `free` and a metric `u`, for grouped charges to read.
    const GROUPED: &str = "[params]\nfree = \"10\"\n[metrics.u]\naggregate = \"sum\"\n";

    #[test]
    fn group_by_rejections_name_their_field_paths() {
        // Each load-time rejection of group_by is at its path.
        rejected(
            "[[charges]]\nid = \"f\"\nkind = \"fixed\"\namount = \"1\"\ngroup_by = \"site\"\n",
            "charges[0].group_by",
            "a fixed charge cannot be grouped",
        );
        rejected(
            &format!(
                "{GROUPED}[[charges]]\nid = \"c\"\nkind = \"unit\"\nquantity = \"u\"\nunit_price = \"1\"\ngroup_by = \"void\"\n"
            ),
            "charges[0].group_by",
            "not a dimension",
        );
        rejected(
            &format!(
                "{GROUPED}[[charges]]\nid = \"t\"\nkind = \"tiered\"\nmode = \"volume\"\naccumulate = \"contract_year\"\nquantity = \"u\"\ntiers = [ {{ unit_price = \"1\" }} ]\ngroup_by = \"site\"\n"
            ),
            "charges[0].accumulate",
            "cannot accumulate over the contract year",
        );
    }

    #[test]
    fn params_by_rejections_name_their_field_paths() {
        // An unknown param, a non-decimal, and a tier rule broken under one value.
        rejected(
            &format!("{GROUPED}[params_by.site]\nx = {{ nope = \"1\" }}\n"),
            "params_by.site.x.nope",
            "no param is named nope",
        );
        rejected(
            &format!("{GROUPED}[params_by.site]\nx = {{ free = \"u\" }}\n"),
            "params_by.site.x.free",
            "a params_by value is a decimal",
        );
        rejected(
            &format!(
                "{GROUPED}[params_by.site]\nx = {{ free = \"90\" }}\n[[charges]]\nid = \"t\"\nkind = \"tiered\"\nmode = \"graduated\"\nquantity = \"u\"\ngroup_by = \"site\"\ntiers = [ {{ up_to = \"free\" }}, {{ up_to = \"50\", unit_price = \"1\" }}, {{ unit_price = \"2\" }} ]\n"
            ),
            "charges[0].tiers[1].up_to",
            "in the group \"x\" of site",
        );
    }

    #[test]
    fn format_must_be_1() {
        // A format version other than 1 is named at `format`.
        let e = Contract::from_toml_str(&HEAD.replace("format = 1", "format = 2")).unwrap_err();
        assert_eq!(e.to_string(), "format: unsupported format 2, expected 1");
    }

    #[test]
    fn id_and_customer_must_not_be_empty() {
        // Empty identity fields are named by path.
        let e = Contract::from_toml_str(&HEAD.replace("\"demo\"", "\"\"")).unwrap_err();
        assert_eq!(e.to_string(), "id: must not be empty");
        let e = Contract::from_toml_str(&HEAD.replace("\"acme\"", "\"\"")).unwrap_err();
        assert_eq!(e.to_string(), "customer: must not be empty");
    }

    #[test]
    fn rounding_scale_is_bounded_and_needed_without_minor_units() {
        // Scale above 28 and a currency with no minor units are named at rounding.scale.
        rejected("rounding = { scale = 29 }\n", "rounding.scale", "29");
        let gold = HEAD.replace("USD", "XAU");
        let e = Contract::from_toml_str(&gold).unwrap_err();
        assert_eq!(e.location(), "rounding.scale");
        assert!(e.message().contains("XAU"), "{e}");
        Contract::from_toml_str(&format!("{gold}rounding = {{ scale = 4 }}\n")).unwrap();
        let yen = HEAD.replace("USD", "JPY");
        assert_eq!(
            line_rounding(&Contract::from_toml_str(&yen).unwrap()).scale,
            0
        );
    }

    #[test]
    fn end_must_follow_start() {
        // A term that ends on or before its start is named at `end`.
        let e = Contract::from_toml_str(&HEAD.replace("2027-01-01", "2026-01-01")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "end: 2026-01-01 is not after start 2026-01-01"
        );
    }

    #[test]
    fn names_share_one_namespace() {
        // A name defined twice, across kinds or within charges and limits, is rejected at the second.
        rejected(
            "[metrics.leads]\naggregate = \"sum\"\n[[charges]]\nid = \"plan\"\nkind = \"fixed\"\namount = 1\n\
             [[charges]]\nid = \"leads\"\nkind = \"fixed\"\namount = 1\n",
            "charges[1].id",
            "leads is already the name of a metric",
        );
        rejected(
            "[params]\nx = 1\n[kpis.x]\nexpr = 1\n",
            "kpis.x",
            "x is already the name of a param",
        );
        rejected(
            "[[charges]]\nid = \"a\"\nkind = \"fixed\"\namount = 1\n[[charges]]\nid = \"a\"\nkind = \"fixed\"\namount = 2\n",
            "charges[1].id",
            "a is already the name of a charge",
        );
        rejected(
            "[[charges]]\nid = \"a\"\nkind = \"fixed\"\namount = 1\n[[limits]]\nid = \"a\"\nkind = \"cap\"\namount = 1\nscope = \"period\"\n",
            "limits[0].id",
            "a is already the name of a charge",
        );
        rejected(
            "[baselines.b]\nkind = \"fixed\"\nvalue = 1\n[[charges]]\nid = \"b\"\nkind = \"fixed\"\namount = 1\n",
            "charges[0].id",
            "b is already the name of a baseline",
        );
        rejected(
            "[[charges]]\nid = \"\"\nkind = \"fixed\"\namount = 1\n",
            "charges[0].id",
            "empty",
        );
    }

    #[test]

    fn params_must_be_literals() {
        // A param holding an expression is named at its key.
        rejected("[params]\na = 1\nb = \"a + 1\"\n", "params.b", "\"a + 1\"");
    }

    #[test]
    fn unique_count_needs_of_and_others_refuse_it() {
        // `of` goes with unique_count, and only with it.
        rejected(
            "[metrics.u]\naggregate = \"unique_count\"\n",
            "metrics.u.of",
            "unique_count",
        );
        rejected(
            "[metrics.u]\naggregate = \"sum\"\nof = \"user\"\n",
            "metrics.u.of",
            "not aggregate sum",
        );
    }

    #[test]
    fn filter_values_are_strings() {
        // A filter value that is not text is named at its key.
        rejected(
            "[metrics.m]\naggregate = \"sum\"\nfilter = { region = 5 }\n",
            "metrics.m.filter.region",
            "string",
        );
    }

    const TICKETS: &str = "[metrics.tickets]\naggregate = \"sum\"\n";

    #[test]
    fn historical_baseline_spans_whole_cadences() {
        // `to` must be `from` plus a whole number of periods, after `from`.
        let ok = format!(
            "{TICKETS}[baselines.b]\nkind = \"historical\"\nmetric = \"tickets\"\nfrom = \"2025-01-31\"\nto = \"2025-02-28\"\n"
        );
        load(&ok).unwrap();
        rejected(
            &format!(
                "{TICKETS}[baselines.b]\nkind = \"historical\"\nmetric = \"tickets\"\nfrom = \"2025-01-01\"\nto = \"2025-12-15\"\n"
            ),
            "baselines.b.to",
            "2025-12-15 is not 2025-01-01 plus a whole number of monthly periods",
        );
        rejected(
            &format!(
                "{TICKETS}[baselines.b]\nkind = \"historical\"\nmetric = \"tickets\"\nfrom = \"2025-01-01\"\nto = \"2025-01-01\"\n"
            ),
            "baselines.b.to",
            "not after from",
        );
    }

    #[test]
    fn baseline_metric_must_be_a_metric() {
        // Historical and high-water-mark baselines read a defined metric.
        rejected(
            "[baselines.b]\nkind = \"historical\"\nmetric = \"tickets\"\nfrom = \"2025-01-01\"\nto = \"2026-01-01\"\n",
            "baselines.b.metric",
            "undefined metric tickets",
        );
        rejected(
            "[baselines.b]\nkind = \"high_water_mark\"\nmetric = \"nav\"\ninitial = 100\n",
            "baselines.b.metric",
            "undefined metric nav",
        );
    }

    fn tiered(tiers: &str) -> String {
        format!(
            "[[charges]]\nid = \"t\"\nkind = \"tiered\"\nmode = \"graduated\"\nquantity = 5\ntiers = [ {tiers} ]\n"
        )
    }

    #[test]
    fn tiers_are_shaped_and_increase() {
        // Tier lists need a tier, up_to on all but the last, and increasing,
        // non-negative constants.
        rejected(
            &tiered("{ up_to = \"-5\", unit_price = 1 }, { unit_price = 2 }"),
            "charges[0].tiers[0].up_to",
            "must not be negative",
        );
        rejected(&tiered(""), "charges[0].tiers", "at least one tier");
        rejected(
            &tiered("{ up_to = 10 }"),
            "charges[0].tiers[0].up_to",
            "last tier",
        );
        rejected(
            &tiered("{ up_to = 10 }, { unit_price = 1 }, { unit_price = 2 }"),
            "charges[0].tiers[1].up_to",
            "every tier but the last",
        );
        rejected(
            &tiered("{ up_to = 100 }, { up_to = 50 }, { unit_price = 2 }"),
            "charges[0].tiers[1].up_to",
            "tiers must increase (100 then 50)",
        );
        rejected(
            &tiered("{ up_to = 100 }, { up_to = 100.0 }, { unit_price = 2 }"),
            "charges[0].tiers[1].up_to",
            "tiers must increase (100 then 100.0)",
        );
        load(&tiered("{ up_to = 10 }, { up_to = 10.5 }, {}")).unwrap();
    }

    #[test]

    fn tier_edges_from_params_are_checked_and_expressions_are_not() {
        // A param is a constant; an expression reading a metric waits for settlement.
        rejected(
            &format!(
                "[params]\ncap = 100\n{}",
                tiered("{ up_to = \"cap\" }, { up_to = \"cap / 2\" }, {}")
            ),
            "charges[0].tiers[1].up_to",
            "tiers must increase (100 then 50)",
        );
        load(&format!(
            "[metrics.m]\naggregate = \"sum\"\n{}",
            tiered("{ up_to = 100 }, { up_to = \"m\" }, {}")
        ))
        .unwrap();
        rejected(
            &format!("[params]\nz = 0\n{}", tiered("{ up_to = \"1 / z\" }, {}")),
            "charges[0].tiers[0].up_to",
            "division by zero",
        );
    }

    #[test]
    fn period_starts_follow_start_or_anchor() {
        // Starts are laid from `start`, or from `anchor` after a leading stub.
        let c = Contract::from_toml_str(&HEAD.replace("2026-01-01", "2026-01-31")).unwrap();
        let starts = period_starts(&c);
        assert_eq!(
            starts[..3],
            [d("2026-01-31"), d("2026-02-28"), d("2026-03-31")]
        );
        assert_eq!(starts.len(), 12);
        let c = Contract::from_toml_str(&format!(
            "{}anchor = \"2020-02-01\"\n",
            HEAD.replace("2026-01-01", "2026-01-15")
                .replace("2027-01-01", "2026-04-10")
        ))
        .unwrap();
        assert_eq!(
            period_starts(&c),
            [
                d("2026-01-15"),
                d("2026-02-01"),
                d("2026-03-01"),
                d("2026-04-01")
            ]
        );
        let c = Contract::from_toml_str(&format!(
            "{}anchor = \"2030-03-01\"\n",
            HEAD.replace("monthly", "quarterly")
        ))
        .unwrap();
        assert_eq!(
            period_starts(&c),
            [
                d("2026-01-01"),
                d("2026-03-01"),
                d("2026-06-01"),
                d("2026-09-01"),
                d("2026-12-01")
            ]
        );
    }

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    const TWO: &str = "[[charges]]\nid = \"plan\"\nkind = \"fixed\"\namount = 49\n[[charges]]\nid = \"usage\"\nkind = \"fixed\"\namount = 10\n";

    fn banded(bands: &str) -> String {
        format!("{TWO}[[charges]]\nid = \"b\"\nkind = \"bands\"\nkpi = 1\nbands = [ {bands} ]\n")
    }

    #[test]
    fn a_band_pays_amount_or_percent_of() {
        // Each band has exactly one payout: amount, or percent with of.
        rejected(
            &banded("{ from = 1 }"),
            "charges[2].bands[0]",
            "needs amount, or percent with of",
        );
        rejected(
            &banded("{ amount = 1, percent = 5, of = [\"plan\"] }"),
            "charges[2].bands[0].percent",
            "not both",
        );
        rejected(
            &banded("{ percent = 5 }"),
            "charges[2].bands[0].of",
            "percent needs of",
        );
        rejected(
            &banded("{ of = [\"plan\"] }"),
            "charges[2].bands[0].percent",
            "of needs percent",
        );
        rejected(
            &banded("{ amount = 1, of = [\"plan\"] }"),
            "charges[2].bands[0].of",
            "not with amount",
        );
        load(&banded(
            "{ to = 1, amount = -5 }, { from = 1, percent = -10, of = [\"plan\", \"usage\"] }",
        ))
        .unwrap();
    }

    #[test]
    fn band_of_names_earlier_charges() {
        // `of` may name only charges written before this one.
        rejected(
            &banded("{ percent = 5, of = [\"nope\"] }"),
            "charges[2].bands[0].of[0]",
            "nope is not a charge",
        );
        rejected(
            &banded("{ percent = 5, of = [\"plan\", \"b\"] }"),
            "charges[2].bands[0].of[1]",
            "itself",
        );
        rejected(
            &banded("{ percent = 5, of = [] }"),
            "charges[2].bands[0].of",
            "at least one",
        );
        rejected(
            &format!(
                "{}[[charges]]\nid = \"late\"\nkind = \"fixed\"\namount = 1\n",
                banded("{ percent = 5, of = [\"late\"] }")
            ),
            "charges[2].bands[0].of[0]",
            "not an earlier charge",
        );
        rejected(
            &banded("{ percent = 5, of = [\"plan\", \"plan\"] }"),
            "charges[2].bands[0].of[1]",
            "twice",
        );
    }

    #[test]
    fn bands_must_not_overlap() {
        // Constant band edges are ordered and disjoint, open ends included.
        rejected(
            &banded("{ from = 0.9, to = 0.8, amount = 1 }"),
            "charges[2].bands[0].to",
            "0.8 is not greater than from 0.9",
        );
        rejected(
            &banded("{ from = 0.8, amount = 1 }, { from = 0.9, to = 1, amount = 2 }"),
            "charges[2].bands[1]",
            "[0.9, 1) overlaps bands[0] [0.8, ∞)",
        );
        rejected(
            &banded("{ amount = 1 }, { to = 0, amount = 2 }"),
            "charges[2].bands[1]",
            "overlap",
        );
        load(&banded("{ to = 0.8, amount = 1 }, { from = 0.8, to = 0.9, amount = 2 }, { from = 0.9, amount = 3 }"))
            .unwrap();
    }

    fn corridor(bands: &str) -> String {
        format!(
            "[[charges]]\nid = \"c\"\nkind = \"corridor\"\nactual = 1\ntarget = 2\ndirection = \"pay_overrun\"\nbands = [ {bands} ]\n"
        )
    }

    #[test]
    fn corridor_bands_are_non_negative_ordered_and_disjoint() {
        // Corridor bands sit on |d| >= 0, with from < to and no overlap (from defaults to 0).
        rejected(
            &corridor("{ from = -0.1, share = 1 }"),
            "charges[0].bands[0].from",
            "must not be negative (-0.1)",
        );
        rejected(
            &corridor("{ to = -0.1, share = 1 }"),
            "charges[0].bands[0].to",
            "must not be negative",
        );
        rejected(
            &corridor("{ from = 0.2, to = 0.1, share = 1 }"),
            "charges[0].bands[0].to",
            "not greater",
        );
        rejected(
            &corridor("{ to = 0.1, share = 0 }, { from = 0.05, share = 1 }"),
            "charges[0].bands[1]",
            "overlaps bands[0] [0, 0.1)",
        );
        load(&corridor("{ to = 0.1, share = 0 }, { from = 0.1, to = 0.2, share = 0.5 }, { from = 0.2, share = 1 }"))
            .unwrap();
    }

    #[test]
    fn package_size_must_be_positive() {
        // A constant package size of zero or less is rejected at `size`.
        rejected(
            "[[charges]]\nid = \"p\"\nkind = \"package\"\nquantity = 1\nsize = 0\nprice = 5\n",
            "charges[0].size",
            "positive",
        );
    }

    #[test]
    fn per_observation_base_must_be_a_period_metric() {
        // Per-observation pricing reads a metric's observations, so base must name one.
        rejected(
            "[[charges]]\nid = \"p\"\nkind = \"percentage\"\nbase = 100\nrate = 0.1\nper_observation = {}\n",
            "charges[0].base",
            "must name a metric",
        );
    }

    const LIMITED: &str = "[[charges]]\nid = \"a\"\nkind = \"fixed\"\namount = 1\n[[charges]]\nid = \"b\"\nkind = \"fixed\"\namount = 1\n[[charges]]\nid = \"c\"\nkind = \"fixed\"\namount = 1\n";

    fn limit(applies_to: Option<&str>) -> String {
        let applies = applies_to.map_or(String::new(), |a| format!("applies_to = [{a}]\n"));
        format!("[[limits]]\nkind = \"cap\"\namount = 10\nscope = \"period\"\n{applies}")
    }

    #[test]
    fn limits_apply_to_existing_charges() {
        // applies_to names charges that exist, once each, and at least one.
        rejected(
            &format!("{LIMITED}{}", limit(Some("\"a\", \"z\""))),
            "limits[0].applies_to[1]",
            "z is not a charge",
        );
        rejected(
            &format!("{LIMITED}{}", limit(Some("\"a\", \"a\""))),
            "limits[0].applies_to[1]",
            "twice",
        );
        rejected(
            &format!("{LIMITED}{}", limit(Some(""))),
            "limits[0].applies_to",
            "at least one",
        );
    }

    #[test]
    fn limits_run_narrow_to_broad() {
        // An earlier limit may not contain or cross a later one; equal or narrower is fine.
        rejected(
            &format!("{LIMITED}{}{}", limit(None), limit(Some("\"a\""))),
            "limits[0].applies_to",
            "every charge of the later limits[1]",
        );
        rejected(
            &format!(
                "{LIMITED}{}{}",
                limit(Some("\"a\", \"b\"")),
                limit(Some("\"b\", \"c\""))
            ),
            "limits[0].applies_to",
            "overlaps the later limits[1] (both apply to b)",
        );
        load(&format!(
            "{LIMITED}{}{}{}",
            limit(Some("\"a\"")),
            limit(Some("\"b\"")),
            limit(Some("\"a\", \"b\""))
        ))
        .unwrap();
        load(&format!(
            "{LIMITED}{}{}{}",
            limit(Some("\"a\", \"b\", \"c\"")),
            limit(None),
            limit(None)
        ))
        .unwrap();
    }

    fn amendment(effective: &str) -> String {
        format!(
            "[[amendments]]\neffective = \"{effective}\"\nset = {{ \"charges.a.amount\" = 2 }}\n"
        )
    }

    #[test]
    fn amendments_take_effect_on_distinct_dates_of_the_term() {
        // An amendment takes effect on any date of the term, mid-period
        // included, and two never share one.
        load(&format!("{LIMITED}{}", amendment("2026-07-15"))).unwrap();
        rejected(
            &format!("{LIMITED}{}", amendment("2027-01-01")),
            "amendments[0].effective",
            "2027-01-01 is not a date of the term (the term runs from 2026-01-01 to 2027-01-01, exclusive)",
        );
        rejected(
            &format!("{LIMITED}{}", amendment("2025-12-31")),
            "amendments[0].effective",
            "the term runs",
        );
        rejected(
            &format!(
                "{LIMITED}{}{}{}",
                amendment("2026-03-01"),
                amendment("2026-07-01"),
                amendment("2026-03-01")
            ),
            "amendments[2].effective",
            "2026-03-01 is already the date of amendments[0]",
        );
        load(&format!("{LIMITED}{}", amendment("2026-07-01"))).unwrap();
    }
}
