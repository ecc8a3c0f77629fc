//! Amendments: dot paths, cumulative application, versions in force.
//!
//! An amendment's `set` key names one value: charges and limits by id
//! (`charges.per_resolution.tiers[1].unit_price`, `limits.annual_cap.amount`),
//! other list items by position, params, KPIs and baselines by name. A key
//! is applied by writing the named item to the intermediate tree, replacing
//! the one value, and reading the item back, so the new value is read and
//! checked exactly as it would be in a contract file.

use chrono::NaiveDate;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::load::{from_tree, path_key};
use super::{Contract, rules};
use crate::error::{Error, Result};

/// The contract as in force from `effective` on (all amendments up to it
/// applied).
#[derive(Debug, Clone, PartialEq)]
pub struct Version {
    /// The first day this version is in force (the term start for the first).
    pub effective: NaiveDate,
    /// The contract with the amendments applied. Its `amendments` list is
    /// empty: they are already in its values.
    pub contract: Contract,
}

/// The amendable fields of a limit.
const LIMIT_FIELDS: &[&str] = &["amount", "description"];

/// The amendable fields of a KPI.
const KPI_FIELDS: &[&str] = &["expr", "description"];

/// The amendable fields of a baseline (not `metric`, `from` or `to`, which
/// say what is measured).
const BASELINE_FIELDS: &[&str] = &["value", "expr", "initial", "description"];

/// Tables whose one key says which kind they are (`threshold = { relative =
/// .. }`): an amendment may change the value, never the kind.
const ONE_KEY_TABLES: &[&str] = &["threshold", "cap"];

/// The top-level fields of the format (all of them structure, except the
/// tables whose items are named further).
const TOP_LEVEL: &[&str] = &[
    "format",
    "id",
    "customer",
    "description",
    "currency",
    "start",
    "end",
    "cadence",
    "anchor",
    "timezone",
    "rounding",
    "amendments",
];

impl Contract {
    /// The contract's versions: the contract as written, in force from
    /// `start`, then one per amendment in `effective` order, each with every
    /// amendment up to it applied. The version in force on a date is the
    /// last whose `effective` is on or before it.
    ///
    /// Values are not re-validated here; [`Contract::validate`] does that.
    ///
    /// # Errors
    /// an invalid-contract [`Error`] at `amendments[N].set."KEY"` when a key does not
    /// name an existing amendable value, or the value is malformed.
    ///
    /// # Example
    /// ```
    /// use outcome_billing::Contract;
    /// let contract = Contract::from_toml_str(r#"
    ///     format = 1
    ///     id = "demo"
    ///     customer = "acme"
    ///     currency = "USD"
    ///     start = "2026-01-01"
    ///     end = "2027-01-01"
    ///     cadence = "monthly"
    ///
    ///     [[charges]]
    ///     id = "plan"
    ///     kind = "fixed"
    ///     amount = "49"
    ///
    ///     [[amendments]]
    ///     effective = "2026-07-01"
    ///     set = { "charges.plan.amount" = "59" }
    /// "#)?;
    /// let versions = contract.versions()?;
    /// assert_eq!(versions.len(), 2);
    /// assert_eq!(versions[1].effective.to_string(), "2026-07-01");
    /// # Ok::<(), outcome_billing::Error>(())
    /// ```
    pub fn versions(&self) -> Result<Vec<Version>> {
        let mut current = Contract {
            amendments: Vec::new(),
            ..self.clone()
        };
        let mut versions = Vec::with_capacity(self.amendments.len() + 1);
        if self.amendments.is_empty() {
            versions.push(Version {
                effective: self.start,
                contract: current,
            });
            return Ok(versions);
        }
        versions.push(Version {
            effective: self.start,
            contract: current.clone(),
        });
        let mut order: Vec<usize> = (0..self.amendments.len()).collect();
        // Stable: amendments on one date (rejected by validation) keep the
        // order written.
        order.sort_by_key(|&i| self.amendments[i].effective);
        for i in order {
            let amendment = &self.amendments[i];
            for (key, value) in &amendment.set {
                apply(&mut current, key, &value.0).map_err(|message| {
                    Error::contract(format!("amendments[{i}].set.{}", path_key(key)), message)
                })?;
            }
            versions.push(Version {
                effective: amendment.effective,
                contract: current.clone(),
            });
        }
        Ok(versions)
    }

    /// The structural rules on the contract and every version; returns the
    /// versions.
    pub(crate) fn check_rules(&self) -> Result<Vec<Version>> {
        rules::check(self)?;
        let versions = self.versions()?;
        // The first version is the contract as written, checked above.
        for version in versions.iter().skip(1) {
            rules::check(&version.contract).map_err(|e| in_version(e, version.effective))?;
        }
        Ok(versions)
    }
}

/// Says that a contract error holds in the version in force from `effective`.
fn in_version(error: Error, effective: NaiveDate) -> Error {
    if error.field_path().is_none() {
        return error;
    }
    let message = format!(
        "{} (in the version in force from {effective}, as amended)",
        error.message()
    );
    error.with_message(message)
}

/// One step of an amendment key.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Name(String),
    Index(usize),
}

/// Splits `charges.leads.tiers[1].unit_price` into its steps.
fn parse_key(key: &str) -> std::result::Result<Vec<Step>, String> {
    let malformed = || {
        format!(
            "malformed key {key:?}: expected a dot path such as charges.plan.amount or charges.t.tiers[1].unit_price"
        )
    };
    let mut steps = Vec::new();
    for part in key.split('.') {
        let (name, mut rest) = match part.find('[') {
            Some(p) => (&part[..p], &part[p..]),
            None => (part, ""),
        };
        if name.is_empty() {
            return Err(malformed());
        }
        steps.push(Step::Name(name.to_string()));
        while !rest.is_empty() {
            let inner = rest.strip_prefix('[').ok_or_else(malformed)?;
            let (digits, after) = inner.split_once(']').ok_or_else(malformed)?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(malformed());
            }
            steps.push(Step::Index(digits.parse().map_err(|_| malformed())?));
            rest = after;
        }
    }
    Ok(steps)
}

/// Sets the value named by `key` in `contract` to `text`.
fn apply(contract: &mut Contract, key: &str, text: &str) -> std::result::Result<(), String> {
    let steps = parse_key(key)?;
    let (Step::Name(top), rest) = (&steps[0], &steps[1..]) else {
        // parse_key always starts with a name.
        return Err(format!("malformed key {key:?}"));
    };
    let name = match rest.first() {
        Some(Step::Name(n)) => Some(n.as_str()),
        Some(Step::Index(_)) if matches!(top.as_str(), "charges" | "limits") => {
            return Err(format!(
                "{top} are named by id ({top}.ID...), not by position"
            ));
        }
        _ => None,
    };
    match (top.as_str(), name) {
        ("params_by", _) => Err("params_by is structure and cannot be amended: only numbers, expressions and descriptions can".into()),
        ("metrics", _) => Err("metrics cannot be amended: a metric's series, aggregate, window and filter are structure".into()),
        ("params", Some(p)) => {
            if rest.len() > 1 {
                return Err(format!("params.{p} is a value, with no fields"));
            }
            let slot = contract
                .params
                .get_mut(p)
                .ok_or_else(|| format!("no param is named {p} (an amendment cannot add one)"))?;
            *slot = super::load::parse_expr_text(text)?;
            Ok(())
        }
        ("kpis", Some(k)) => {
            let kpi = contract
                .kpis
                .get_mut(k)
                .ok_or_else(|| format!("no KPI is named {k} (an amendment cannot add one)"))?;
            set_in_item(kpi, &format!("kpis.{k}"), &rest[1..], text, KPI_FIELDS)
        }
        ("baselines", Some(b)) => {
            let baseline = contract
                .baselines
                .get_mut(b)
                .ok_or_else(|| format!("no baseline is named {b} (an amendment cannot add one)"))?;
            set_in_item(baseline, &format!("baselines.{b}"), &rest[1..], text, BASELINE_FIELDS)
        }
        ("charges", Some(id)) => {
            let charge = contract
                .charges
                .iter_mut()
                .find(|c| c.id == id)
                .ok_or_else(|| format!("no charge has id {id} (an amendment cannot add one)"))?;
            if let super::ChargeKind::Custom(c) = &charge.kind {
                return Err(format!(
                    "charges.{id} is of kind {}, defined in Rust, and cannot be amended",
                    c.kind_name()
                ));
            }
            set_in_item(
                charge,
                &format!("charges.{id}"),
                &rest[1..],
                text,
                &super::ChargeKind::amendable_fields(),
            )
        }
        ("limits", Some(id)) => {
            let limit = contract
                .limits
                .iter_mut()
                .find(|l| l.id.as_deref() == Some(id))
                .ok_or_else(|| format!("no limit has id {id} (an amendment cannot add one)"))?;
            set_in_item(limit, &format!("limits.{id}"), &rest[1..], text, LIMIT_FIELDS)
        }
        ("params" | "kpis" | "baselines" | "charges" | "limits", None) => {
            Err(format!("{top} is a table: name one value in it ({top}.NAME...)"))
        }
        (other, _) if TOP_LEVEL.contains(&other) => Err(format!(
            "{other} is a top-level field and cannot be amended: only numbers, expressions and descriptions can"
        )),
        (other, _) => Err(format!("unknown field {other}")),
    }
}

/// Sets the value at `steps` inside `item` (named `prefix`) to `text`, by
/// way of the intermediate tree, and reads the item back.
fn set_in_item<T: Serialize + DeserializeOwned>(
    item: &mut T,
    prefix: &str,
    steps: &[Step],
    text: &str,
    amendable: &[&str],
) -> std::result::Result<(), String> {
    let Some((leaf, parents)) = steps.split_last() else {
        return Err(format!("{prefix} is a table: name one value in it"));
    };
    let mut tree =
        serde_json::to_value(&*item).map_err(|e| format!("{prefix} cannot be amended: {e}"))?;
    let mut node = &mut tree;
    let mut here = prefix.to_string();
    let mut parent_name: Option<&str> = None;
    for step in parents {
        node = match step {
            Step::Name(n) => {
                let Value::Object(map) = node else {
                    return Err(format!("{here} is a value, with no field {n}"));
                };
                let child = map
                    .get_mut(n)
                    .ok_or_else(|| format!("{here} has no {n}: an amendment cannot add a table"))?;
                here = format!("{here}.{n}");
                parent_name = Some(n);
                child
            }
            Step::Index(i) => {
                let Value::Array(items) = node else {
                    return Err(format!("{here} is not a list"));
                };
                let count = items.len();
                let child = items.get_mut(*i).ok_or_else(|| {
                    format!("{here} has no item {i} (it has {count}): an amendment cannot add one")
                })?;
                here = format!("{here}[{i}]");
                parent_name = None;
                child
            }
        };
    }
    let Step::Name(leaf) = leaf else {
        return Err(format!(
            "{here} names a list item, not a value: name one of its fields"
        ));
    };
    if !amendable.contains(&leaf.as_str()) {
        return Err(format!(
            "{leaf} is structure and cannot be amended: only numbers, expressions and descriptions can"
        ));
    }
    let Value::Object(map) = node else {
        return Err(format!("{here} is a value, with no field {leaf}"));
    };
    match map.get(leaf.as_str()) {
        Some(Value::Object(_) | Value::Array(_)) => {
            return Err(format!("{here}.{leaf} is a table or list, not a value"));
        }
        None if parent_name.is_some_and(|p| ONE_KEY_TABLES.contains(&p)) => {
            let kind = map.keys().next().cloned().unwrap_or_default();
            return Err(format!(
                "{here} is {kind}, not {leaf}: an amendment can change its value, not its kind"
            ));
        }
        _ => {}
    }
    map.insert(leaf.clone(), Value::String(text.to_string()));
    *item = from_tree::<T>(&tree).map_err(|e| e.message().to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;

    use super::*;
    use crate::contract::{ChargeKind, ShareCap, Threshold};

    const BODY: &str = r#"
format = 1
id = "demo"
customer = "acme"
currency = "USD"
start = "2026-01-01"
end = "2027-01-01"
cadence = "monthly"

[params]
seats = "45"

[metrics.m]
aggregate = "sum"

[metrics.nav]
aggregate = "last"

[kpis.k]
expr = "1"

[baselines.energy]
kind = "fixed"
value = "120000"

[baselines.hist]
kind = "historical"
metric = "m"
from = "2025-01-01"
to = "2026-01-01"

[baselines.mark]
kind = "high_water_mark"
metric = "nav"
initial = "100"

[[charges]]
id = "plan"
kind = "fixed"
amount = "49"

[[charges]]
id = "t"
kind = "tiered"
mode = "graduated"
quantity = "5"
tiers = [ { up_to = "100", unit_price = "1" }, { unit_price = "0.99" } ]

[[charges]]
id = "g"
kind = "gain_share"
actual = "1"
baseline = "2"
direction = "increase"
share = "0.5"
threshold = { relative = "0.02" }
cap = { amount = "1000" }

[[limits]]
id = "yearly"
kind = "cap"
amount = "20000"
scope = "contract_year"
"#;

    fn with(amendments: &str) -> Result<Contract> {
        Contract::from_toml_str(&format!("{BODY}{amendments}"))
    }

    fn amend(effective: &str, set: &str) -> String {
        format!("[[amendments]]\neffective = \"{effective}\"\nset = {{ {set} }}\n")
    }

    /// Asserts the amendments are rejected at `path` with a message containing `needle`.
    #[track_caller]
    fn rejected(amendments: &str, path: &str, needle: &str) {
        match with(amendments) {
            Err(e) if e.field_path().is_some() => {
                let (p, message) = (e.field_path().unwrap_or_default(), e.message());
                assert_eq!(p, path, "message: {message}");
                assert!(message.contains(needle), "{message:?} lacks {needle:?}");
            }
            other => panic!("expected a contract error at {path}, got {other:?}"),
        }
    }

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn tiers(c: &Contract) -> &crate::contract::TieredCharge {
        match &c.charges[1].kind {
            ChargeKind::Tiered(t) => t,
            other => panic!("{other:?}"),
        }
    }

    fn plan_amount(c: &Contract) -> Decimal {
        match &c.charges[0].kind {
            ChargeKind::Fixed(f) => f.amount.as_literal().unwrap(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn versions_apply_cumulatively_in_effective_order() {
        // Each version carries every earlier amendment, whatever order they are written in.
        let c = with(&format!(
            "{}{}",
            amend("2026-09-01", "\"charges.t.tiers[1].unit_price\" = \"0.79\""),
            amend(
                "2026-04-01",
                "\"charges.plan.amount\" = 59, \"charges.t.tiers[1].unit_price\" = 0.89"
            )
        ))
        .unwrap();
        let v = c.versions().unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].effective, c.start);
        assert_eq!(v[0].contract.amendments.len(), 0);
        assert_eq!(plan_amount(&v[0].contract), d("49"));
        assert_eq!(v[1].effective.to_string(), "2026-04-01");
        assert_eq!(plan_amount(&v[1].contract), d("59"));
        assert_eq!(
            tiers(&v[1].contract).tiers[1]
                .unit_price
                .as_ref()
                .unwrap()
                .as_literal(),
            Some(d("0.89"))
        );
        assert_eq!(v[2].effective.to_string(), "2026-09-01");
        assert_eq!(plan_amount(&v[2].contract), d("59"));
        assert_eq!(
            tiers(&v[2].contract).tiers[1]
                .unit_price
                .as_ref()
                .unwrap()
                .as_literal(),
            Some(d("0.79"))
        );
    }

    #[test]
    fn every_named_kind_of_value_can_be_amended() {
        // Params, KPIs, baselines, limits, nested tables and descriptions take new values.
        let c = with(&amend(
            "2026-02-01",
            "\"params.seats\" = 40, \"kpis.k.expr\" = 2, \"baselines.energy.value\" = 110000, \
             \"baselines.mark.initial\" = 120, \"limits.yearly.amount\" = 25000, \"charges.g.threshold.relative\" = 0.03, \
             \"charges.g.cap.amount\" = 900, \"charges.plan.description\" = \"the plan\", \"kpis.k.description\" = \"k\"",
        ))
        .unwrap();
        let v = &c.versions().unwrap()[1].contract;
        assert_eq!(v.params["seats"].as_literal(), Some(d("40")));
        assert_eq!(v.kpis["k"].expr.as_literal(), Some(d("2")));
        assert_eq!(v.kpis["k"].description.as_deref(), Some("k"));
        assert_eq!(v.limits[0].amount.as_literal(), Some(d("25000")));
        assert_eq!(v.charges[0].description.as_deref(), Some("the plan"));
        match &v.charges[2].kind {
            ChargeKind::GainShare(g) => {
                assert_eq!(
                    g.threshold,
                    Some(Threshold::Relative(crate::expr::Expr::literal(d("0.03"))))
                );
                assert_eq!(
                    g.cap,
                    Some(ShareCap::Amount(crate::expr::Expr::literal(d("900"))))
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_absent_optional_number_can_be_set() {
        // A tier's flat_fee left out may be given by an amendment.
        let c = with(&amend("2026-02-01", "\"charges.t.tiers[0].flat_fee\" = 10")).unwrap();
        let v = &c.versions().unwrap()[1].contract;
        assert_eq!(
            tiers(v).tiers[0].flat_fee.as_ref().unwrap().as_literal(),
            Some(d("10"))
        );
    }

    #[test]
    fn structure_keys_are_rejected_by_name() {
        // Kinds, ids, modes, scopes, metrics, baseline ranges and top-level fields cannot be amended.
        let cases = [
            ("charges.plan.kind", "kind is structure"),
            ("charges.plan.id", "id is structure"),
            ("charges.t.mode", "mode is structure"),
            ("charges.plan.prorate", "prorate is structure"),
            ("limits.yearly.scope", "scope is structure"),
            ("limits.yearly.applies_to", "applies_to is structure"),
            ("metrics.m.aggregate", "metrics cannot be amended"),
            ("baselines.hist.from", "from is structure"),
            ("baselines.hist.metric", "metric is structure"),
            ("currency", "top-level field"),
            ("end", "top-level field"),
            ("rounding.scale", "top-level field"),
            ("charges.t.tiers", "tiers is structure"),
            ("charges.g.threshold", "threshold is structure"),
        ];
        for (key, needle) in cases {
            rejected(
                &amend("2026-02-01", &format!("{key:?} = \"1\"")),
                &format!("amendments[0].set.{}", path_key(key)),
                needle,
            );
        }
    }

    #[test]
    fn unknown_names_and_added_items_are_rejected() {
        // A key must name an existing item; it cannot add a param, table, list item or kind.
        let cases = [
            ("charges.nope.amount", "no charge has id nope"),
            ("limits.nope.amount", "no limit has id nope"),
            ("params.extra", "no param is named extra"),
            ("kpis.nope.expr", "no KPI is named nope"),
            ("baselines.nope.value", "no baseline is named nope"),
            ("charges.t.tiers[2].unit_price", "has no item 2 (it has 2)"),
            ("charges.t.tiers[1]", "names a list item"),
            (
                "charges.g.losses.share",
                "has no losses: an amendment cannot add a table",
            ),
            ("charges.g.threshold.absolute", "not its kind"),
            ("charges.plan.unit_price", "unknown field `unit_price`"),
            ("charges[0].amount", "not by position"),
            ("charges.plan..amount", "malformed key"),
            ("bogus.x", "unknown field bogus"),
            ("params", "is a table"),
        ];
        for (key, needle) in cases {
            rejected(
                &amend("2026-02-01", &format!("{key:?} = \"1\"")),
                &format!("amendments[0].set.{}", path_key(key)),
                needle,
            );
        }
    }

    #[test]
    fn malformed_amended_values_are_rejected_with_the_key() {
        // The new value is read as a contract file's would be.
        rejected(
            &amend("2026-02-01", "\"charges.plan.amount\" = \"1.2.3\""),
            "amendments[0].set.\"charges.plan.amount\"",
            "1.2.3",
        );
    }

    #[test]
    fn an_amendment_that_breaks_a_rule_is_rejected() {
        // Rules run on every version: tiers must still increase after the amendment.
        rejected(
            &amend("2026-02-01", "\"charges.t.tiers[1].up_to\" = 200"),
            "charges[1].tiers[1].up_to",
            "last tier has no up_to: it holds every greater quantity (in the version in force from 2026-02-01",
        );
        let e = with(&format!(
            "{}{}",
            amend("2026-02-01", "\"charges.t.tiers[0].up_to\" = \"0\""),
            amend("2026-03-01", "\"charges.t.tiers[0].flat_fee\" = \"1\"")
        ));
        assert!(e.is_ok(), "{e:?}");
    }

    #[test]
    fn amendment_dates_are_checked() {
        // Same-date and off-term amendments are rejected at `effective`; a
        // mid-period date is accepted (it cuts its period).
        rejected(
            &format!(
                "{}{}",
                amend("2026-04-01", "\"charges.plan.amount\" = 1"),
                amend("2026-04-01", "\"charges.plan.amount\" = 2")
            ),
            "amendments[1].effective",
            "already the date of amendments[0]",
        );
        assert!(with(&amend("2026-04-15", "\"charges.plan.amount\" = 1")).is_ok());
        rejected(
            &amend("2030-04-15", "\"charges.plan.amount\" = 1"),
            "amendments[0].effective",
            "2030-04-15 is not a date of the term",
        );
    }

    #[test]
    fn key_parsing_reads_names_and_positions() {
        // Dot paths split into names and [index] steps.
        assert_eq!(
            parse_key("charges.x.tiers[1].unit_price").unwrap(),
            [
                Step::Name("charges".into()),
                Step::Name("x".into()),
                Step::Name("tiers".into()),
                Step::Index(1),
                Step::Name("unit_price".into())
            ]
        );
        assert!(parse_key("a.[1]").is_err());
        assert!(parse_key("a.b[x]").is_err());
        assert!(parse_key("a.b[1").is_err());
    }
}
