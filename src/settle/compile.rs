//! Compiling a contract version into a program: names resolved to slots,
//! expressions checked, dependencies known for traces.

use std::collections::HashMap;

use rust_decimal::Decimal;

pub(crate) use crate::charge::Body;
use crate::charge::kind::{CompileContext, ContractView};
use crate::contract::rules::line_rounding;
use crate::contract::shape::CHAIN_MAX;
use crate::contract::{BaselineKind, Contract, LimitKind, Missing, Scope, Window};
use crate::error::{Error, Result};
use crate::expr::{Expr, Field};
use crate::metric::Aggregate;

/// What a slot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlotKind {
    Param,
    Metric,
    Kpi,
    Baseline,
    Charge,
    Limit,
}

/// One name of the contract's namespace.
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    pub name: String,
    pub kind: SlotKind,
    /// Position among the items of its kind.
    pub index: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct CMetric {
    pub name: String,
    pub series: String,
    pub aggregate: Aggregate,
    pub window: Window,
    pub filter: Vec<(String, String)>,
    pub missing: Missing,
    pub of: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) enum CBaseline {
    Value(Field),
    Historical {
        metric: usize,
        laid: Vec<(chrono::NaiveDate, chrono::NaiveDate)>,
    },
    HighWaterMark {
        metric: usize,
        initial: Field,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct CCharge {
    pub id: String,
    pub kind: String,
    pub body: Body,
    /// Slots read directly or through KPIs and baselines, in slot order:
    /// the inputs a trace lists.
    pub inputs: Vec<u32>,
}

#[derive(Debug, Clone)]
pub(crate) struct CLimit {
    pub name: String,
    pub kind: LimitKind,
    pub scope: Scope,
    pub amount: Field,
    /// The amount rounded like a line, when it is a constant.
    pub rounded: Option<Decimal>,
    /// Charges the limit applies to (positions).
    pub charges: Vec<usize>,
    /// Earlier limits whose lines are part of this limit's base.
    pub nested: Vec<usize>,
}

/// A contract version, ready to settle.
#[derive(Debug, Clone)]
pub(crate) struct Program {
    pub slots: Vec<Slot>,
    pub params: Vec<Decimal>,
    pub metrics: Vec<CMetric>,
    pub kpis: Vec<Field>,
    pub baselines: Vec<CBaseline>,
    pub charges: Vec<CCharge>,
    pub limits: Vec<CLimit>,
    /// Slot number of the first charge (charges occupy consecutive slots).
    pub charge_slot0: u32,
    /// The grouped charges, when some charge has `group_by` (rare, so kept
    /// behind a box: the ungrouped program stays as small as before).
    pub grouping: Option<Box<Grouping>>,
}

/// What settling the grouped charges of a program needs.
#[derive(Debug, Clone)]
pub(crate) struct Grouping {
    /// The dimensions charges are grouped by, in byte order.
    pub dimensions: Vec<String>,
    /// Per charge: its dimension (a position in `dimensions`) and where its
    /// groups come from; none for an ungrouped charge.
    pub charges: Vec<Option<GroupedCharge>>,
    /// Per dimension: the program compiled with each of its `params_by`
    /// values' params, by value.
    pub variants: Vec<std::collections::BTreeMap<String, Program>>,
}

/// Where a grouped charge's groups come from.
#[derive(Debug, Clone)]
pub(crate) struct GroupedCharge {
    /// The dimension's position in [`Grouping::dimensions`].
    pub dimension: usize,
    /// Metrics read in their own window (directly or through KPIs and
    /// baselines of value).
    pub metrics: Vec<usize>,
    /// Historical baselines read: their laid periods are windows too.
    pub historical: Vec<usize>,
    /// Grouped charges named (in expressions or `of`): their groups are
    /// this charge's groups too.
    pub charges: Vec<usize>,
}

/// The namespace: every name of the contract and its slot.
struct Names {
    slots: Vec<Slot>,
    index: HashMap<String, u32>,
}

impl Names {
    fn of(contract: &Contract) -> Result<Names> {
        let mut names = Names {
            slots: Vec::new(),
            index: HashMap::new(),
        };
        for (i, name) in contract.params.keys().enumerate() {
            names.add(format!("params.{name}"), name, SlotKind::Param, i)?;
        }
        for (i, name) in contract.metrics.keys().enumerate() {
            names.add(format!("metrics.{name}"), name, SlotKind::Metric, i)?;
        }
        for (i, name) in contract.kpis.keys().enumerate() {
            names.add(format!("kpis.{name}"), name, SlotKind::Kpi, i)?;
        }
        for (i, name) in contract.baselines.keys().enumerate() {
            names.add(format!("baselines.{name}"), name, SlotKind::Baseline, i)?;
        }
        for (i, charge) in contract.charges.iter().enumerate() {
            names.add(format!("charges[{i}].id"), &charge.id, SlotKind::Charge, i)?;
        }
        for (i, limit) in contract.limits.iter().enumerate() {
            if let Some(id) = &limit.id {
                names.add(format!("limits[{i}].id"), id, SlotKind::Limit, i)?;
            }
        }
        Ok(names)
    }

    fn add(&mut self, path: String, name: &str, kind: SlotKind, index: usize) -> Result<()> {
        if let Some(&slot) = self.index.get(name) {
            let other = &self.slots[slot as usize];
            return Err(Error::contract(
                path,
                format!("{name} is already the name of {}", kind_phrase(other.kind)),
            ));
        }
        self.index.insert(name.to_string(), self.slots.len() as u32);
        self.slots.push(Slot {
            name: name.to_string(),
            kind,
            index,
        });
        Ok(())
    }
}

fn kind_phrase(kind: SlotKind) -> &'static str {
    match kind {
        SlotKind::Param => "a param",
        SlotKind::Metric => "a metric",
        SlotKind::Kpi => "a kpi",
        SlotKind::Baseline => "a baseline",
        SlotKind::Charge => "a charge",
        SlotKind::Limit => "a limit",
    }
}

/// What a name in an expression at some place may refer to.
#[derive(Clone, Copy)]
enum Allowed {
    /// KPIs and baselines: no charges.
    NoCharges,
    /// A charge's fields: charges before `before`.
    ChargesBefore(usize),
    /// A limit's amount: any charge.
    AnyCharge,
}

struct Compiler<'c> {
    names: &'c Names,
    deps: Vec<Vec<u32>>,
    /// The version compiled, whose params fold into constants.
    contract: &'c Contract,
    /// The slots read by the fields compiled since it was last cleared:
    /// `field` records them, so a charge's trace inputs are exactly what its
    /// fields read.
    reads: Vec<u32>,
    /// The dimension the charge being compiled is grouped by.
    group: Option<&'c str>,
    /// Charges named outside expressions (`of`) by the charge being
    /// compiled.
    named: Vec<usize>,
}

impl Compiler<'_> {
    fn field(&mut self, path: &str, expr: &Expr, allowed: Allowed) -> Result<Field> {
        let names = self.names;
        let reads = &mut self.reads;
        let contract = self.contract;
        let group = self.group;
        let mut problem: Option<String> = None;
        let code = expr
            .compile(&mut |name| {
                let slot = *names.index.get(name)?;
                reads.push(slot);
                let s = &names.slots[slot as usize];
                let ok = match (s.kind, allowed) {
                    (SlotKind::Limit, _) => false,
                    (SlotKind::Charge, Allowed::NoCharges) => false,
                    (SlotKind::Charge, Allowed::ChargesBefore(n)) => s.index < n,
                    _ => true,
                };
                if ok && s.kind == SlotKind::Charge && problem.is_none() {
                    if let (Some(dimension), Allowed::ChargesBefore(_)) = (group, allowed) {
                        problem = group_conflict(contract, dimension, s.index);
                    }
                }
                if !ok && problem.is_none() {
                    problem = Some(match (s.kind, allowed) {
                        (SlotKind::Limit, _) => format!("{name} is a limit, which expressions cannot name"),
                        (_, Allowed::NoCharges) => {
                            format!("{name} is a charge, which kpis and baselines cannot name")
                        }
                        _ => format!("{name} is this charge or a later one: a charge may name only earlier charges"),
                    });
                }
                Some(slot)
            })
            .map_err(|e| Error::contract(path, e))?;
        if let Some(p) = problem {
            return Err(Error::contract(path, p));
        }
        let mut code = code;
        // A param is a constant of its version: an expression reading only
        // params (`up_to = "allowance"`) is worked out once, here, as the
        // load-time rules work it out. One that fails (`1 / z` with z = 0)
        // is left to fail at settlement, where the error names the period.
        if code.constant().is_none() {
            if let Ok(Some(value)) = crate::contract::rules::constant(self.contract, path, expr) {
                code.fold(value);
            }
        }
        Ok(Field {
            text: expr.text().to_string(),
            code,
        })
    }

    fn slots_of(&self, expr: &Expr) -> Vec<u32> {
        expr.names()
            .iter()
            .filter_map(|n| self.names.index.get(*n).copied())
            .collect()
    }
}

/// What a charge kind compiles its fields with: each field at its path
/// under the charge (`charges[2].tiers[1].up_to`), naming only earlier
/// charges, with the slots it reads recorded as the charge's trace inputs.
pub(crate) struct FieldCompiler<'a, 'c> {
    compiler: &'a mut Compiler<'c>,
    position: usize,
}

impl CompileContext for FieldCompiler<'_, '_> {
    fn field(&mut self, field: &str, expr: &Expr) -> Result<Field> {
        let path = self.path(field);
        self.compiler
            .field(&path, expr, Allowed::ChargesBefore(self.position))
    }

    fn path(&self, field: &str) -> String {
        format!("charges[{}].{field}", self.position)
    }

    fn metric(&self, name: &str) -> Option<(usize, Window)> {
        ContractView::metric(self.compiler.contract, name)
    }

    fn earlier_charge(&self, id: &str) -> Option<usize> {
        ContractView::charge(self.compiler.contract, id).filter(|&p| p < self.position)
    }

    fn named_charge(&mut self, position: usize) -> Option<String> {
        if let Some(dimension) = self.compiler.group {
            if let Some(problem) = group_conflict(self.compiler.contract, dimension, position) {
                return Some(problem);
            }
        }
        self.compiler.named.push(position);
        None
    }
}

/// Why a charge grouped by `dimension` cannot name the charge at
/// `position`: it is not grouped by the same dimension.
fn group_conflict(contract: &Contract, dimension: &str, position: usize) -> Option<String> {
    let other = contract.charges.get(position)?;
    match other.group_by.as_deref() {
        Some(d) if d == dimension => None,
        Some(d) => Some(format!(
            "{} is grouped by {d}: inside a charge grouped by {dimension}, only charges grouped by {dimension} can be named",
            other.id
        )),
        None => Some(format!(
            "{} is not grouped: inside a charge grouped by {dimension}, only charges grouped by {dimension} can be named",
            other.id
        )),
    }
}

/// Compiles one version, with a program for each `params_by` value of a
/// dimension some charge is grouped by.
pub(crate) fn compile(contract: &Contract) -> Result<Program> {
    let mut program = compile_one(contract)?;
    if let Some(grouping) = program.grouping.as_mut() {
        for (d, dimension) in grouping.dimensions.iter().enumerate() {
            let Some(values) = contract.params_by.get(dimension) else {
                continue;
            };
            for (value, set) in values {
                let variant = crate::contract::rules::with_params(contract, set);
                let compiled = compile_one(&variant)
                    .map_err(|e| crate::contract::rules::under_params_by(e, dimension, value))?;
                grouping.variants[d].insert(value.clone(), compiled);
            }
        }
    }
    Ok(program)
}

/// Compiles one version with the params it has.
fn compile_one(contract: &Contract) -> Result<Program> {
    let names = Names::of(contract)?;
    let mut c = Compiler {
        names: &names,
        deps: vec![Vec::new(); names.slots.len()],
        contract,
        reads: Vec::new(),
        group: None,
        named: Vec::new(),
    };

    let mut params = Vec::new();
    for (name, value) in &contract.params {
        let v = value.as_literal().ok_or_else(|| {
            Error::contract(
                format!("params.{name}"),
                format!("a param is a constant decimal, not {:?}", value.text()),
            )
        })?;
        params.push(v);
    }

    let mut metrics = Vec::new();
    for (name, m) in &contract.metrics {
        metrics.push(CMetric {
            name: name.clone(),
            series: m.series.clone().unwrap_or_else(|| name.clone()),
            aggregate: m.aggregate,
            window: m.window,
            filter: m
                .filter
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            missing: m.missing_rule(),
            of: m.of.clone(),
        });
    }

    let mut kpis = Vec::new();
    for (name, kpi) in &contract.kpis {
        let path = format!("kpis.{name}.expr");
        let field = c.field(&path, &kpi.expr, Allowed::NoCharges)?;
        let slot = names.index[name.as_str()];
        c.deps[slot as usize] = c.slots_of(&kpi.expr);
        kpis.push(field);
    }

    let metric_index = |path: String, name: &str| -> Result<usize> {
        contract
            .metrics
            .keys()
            .position(|k| k == name)
            .ok_or_else(|| Error::contract(path, format!("undefined metric {name}")))
    };
    let mut baselines = Vec::new();
    for (name, b) in &contract.baselines {
        let slot = names.index[name.as_str()] as usize;
        let compiled = match &b.kind {
            BaselineKind::Fixed { value } => {
                c.deps[slot] = c.slots_of(value);
                CBaseline::Value(c.field(
                    &format!("baselines.{name}.value"),
                    value,
                    Allowed::NoCharges,
                )?)
            }
            BaselineKind::Expr { expr } => {
                c.deps[slot] = c.slots_of(expr);
                CBaseline::Value(c.field(
                    &format!("baselines.{name}.expr"),
                    expr,
                    Allowed::NoCharges,
                )?)
            }
            BaselineKind::Historical { metric, from, to } => {
                let m = metric_index(format!("baselines.{name}.metric"), metric)?;
                let laid = crate::period::lay(*from, *to, contract.cadence, contract.timezone)
                    .map_err(|e| Error::contract(format!("baselines.{name}.to"), e))?;
                c.deps[slot] = vec![names.index[metric.as_str()]];
                CBaseline::Historical { metric: m, laid }
            }
            BaselineKind::HighWaterMark { metric, initial } => {
                let m = metric_index(format!("baselines.{name}.metric"), metric)?;
                c.deps[slot] = c.slots_of(initial);
                CBaseline::HighWaterMark {
                    metric: m,
                    initial: c.field(
                        &format!("baselines.{name}.initial"),
                        initial,
                        Allowed::NoCharges,
                    )?,
                }
            }
        };
        baselines.push(compiled);
    }
    check_cycles(&names, &c.deps)?;

    let mut charges = Vec::new();
    let mut grouped: Vec<Option<GroupedCharge>> = Vec::new();
    let mut dimensions: Vec<String> = contract
        .charges
        .iter()
        .filter_map(|ch| ch.group_by.clone())
        .collect();
    dimensions.sort_unstable();
    dimensions.dedup();
    for (i, charge) in contract.charges.iter().enumerate() {
        // Each field the kind compiles records the slots it reads.
        c.reads.clear();
        c.named.clear();
        c.group = charge.group_by.as_deref();
        let body = charge.kind.compile(&mut FieldCompiler {
            compiler: &mut c,
            position: i,
        })?;
        c.group = None;
        grouped.push(match &charge.group_by {
            Some(dimension) => Some(group_sources(
                &names,
                &c,
                i,
                dimensions.iter().position(|d| d == dimension).unwrap_or(0),
                dimension,
            )?),
            None => None,
        });
        charges.push(CCharge {
            id: charge.id.clone(),
            kind: charge.kind.name().to_string(),
            body,
            inputs: closure(&c.deps, &c.reads),
        });
    }

    let all: Vec<usize> = (0..contract.charges.len()).collect();
    let mut limits: Vec<CLimit> = Vec::new();
    for (i, limit) in contract.limits.iter().enumerate() {
        let mut set = match &limit.applies_to {
            None => all.clone(),
            Some(ids) => {
                let mut set = Vec::new();
                for (k, id) in ids.iter().enumerate() {
                    let pos = contract
                        .charges
                        .iter()
                        .position(|ch| &ch.id == id)
                        .ok_or_else(|| {
                            Error::contract(
                                format!("limits[{i}].applies_to[{k}]"),
                                format!("{id} is not a charge"),
                            )
                        })?;
                    set.push(pos);
                }
                set
            }
        };
        set.sort_unstable();
        set.dedup();
        let nested = limits
            .iter()
            .enumerate()
            .filter(|(_, l)| l.charges.iter().all(|c| set.contains(c)))
            .map(|(j, _)| j)
            .collect();
        let amount = c.field(
            &format!("limits[{i}].amount"),
            &limit.amount,
            Allowed::AnyCharge,
        )?;
        limits.push(CLimit {
            name: limit.id.clone().unwrap_or_else(|| format!("limits[{i}]")),
            kind: limit.kind,
            scope: limit.scope,
            rounded: amount
                .code
                .constant()
                .map(|a| line_rounding(contract).round(a)),
            amount,
            charges: set,
            nested,
        });
    }

    let charge_slot0 = names
        .slots
        .iter()
        .position(|s| s.kind == SlotKind::Charge)
        .unwrap_or(names.slots.len()) as u32;
    let grouping = (!dimensions.is_empty()).then(|| {
        Box::new(Grouping {
            variants: vec![Default::default(); dimensions.len()],
            dimensions,
            charges: grouped,
        })
    });
    Ok(Program {
        slots: names.slots,
        params,
        metrics,
        kpis,
        baselines,
        charges,
        limits,
        charge_slot0,
        grouping,
    })
}

/// Where the groups of charge `position`, grouped by `dimension`, come
/// from: what its fields read (`c.reads`, `c.named`), followed through KPIs
/// and baselines. A high-water mark among them is rejected: its state would
/// be per group.
fn group_sources(
    names: &Names,
    c: &Compiler<'_>,
    position: usize,
    dimension_index: usize,
    dimension: &str,
) -> Result<GroupedCharge> {
    let mut metrics = Vec::new();
    let mut historical = Vec::new();
    let mut charges: Vec<usize> = c.named.clone();
    let mut seen = vec![false; c.deps.len()];
    let mut stack: Vec<u32> = c.reads.clone();
    while let Some(slot) = stack.pop() {
        if std::mem::replace(&mut seen[slot as usize], true) {
            continue;
        }
        let s = &names.slots[slot as usize];
        match s.kind {
            SlotKind::Metric => metrics.push(s.index),
            SlotKind::Charge => charges.push(s.index),
            SlotKind::Baseline => {
                match &c.contract.baselines.values().nth(s.index).map(|b| &b.kind) {
                    Some(BaselineKind::Historical { .. }) => historical.push(s.index),
                    Some(BaselineKind::HighWaterMark { .. }) => {
                        return Err(Error::contract(
                            format!("charges[{position}].group_by"),
                            format!(
                                "a charge grouped by {dimension} cannot read the high_water_mark baseline {}: its mark would be per group",
                                s.name
                            ),
                        ));
                    }
                    _ => stack.extend(&c.deps[slot as usize]),
                }
            }
            _ => stack.extend(&c.deps[slot as usize]),
        }
    }
    metrics.sort_unstable();
    metrics.dedup();
    historical.sort_unstable();
    historical.dedup();
    charges.sort_unstable();
    charges.dedup();
    Ok(GroupedCharge {
        dimension: dimension_index,
        metrics,
        historical,
        charges,
    })
}

/// The slots `direct` reads, directly or through KPIs and baselines, sorted.
fn closure(deps: &[Vec<u32>], direct: &[u32]) -> Vec<u32> {
    let mut seen = vec![false; deps.len()];
    let mut stack: Vec<u32> = direct.to_vec();
    while let Some(s) = stack.pop() {
        if !std::mem::replace(&mut seen[s as usize], true) {
            stack.extend(&deps[s as usize]);
        }
    }
    (0..deps.len() as u32)
        .filter(|&s| seen[s as usize])
        .collect()
}

/// Rejects a cycle among KPIs and baselines, naming it, and a chain of
/// names reading names longer than [`CHAIN_MAX`]. The walk keeps its own
/// stack, so a contract's shape cannot exhaust the thread's.
fn check_cycles(names: &Names, deps: &[Vec<u32>]) -> Result<()> {
    /// Not yet reached.
    const NEW: u8 = 0;
    /// On the path being walked.
    const OPEN: u8 = 1;
    /// Walked; its chain length is known.
    const DONE: u8 = 2;
    let mut mark = vec![NEW; deps.len()];
    // The longest chain of names from each slot, itself included.
    let mut chain = vec![0usize; deps.len()];
    let place = |slot: usize| {
        let first = &names.slots[slot];
        match first.kind {
            SlotKind::Kpi => format!("kpis.{}", first.name),
            _ => format!("baselines.{}", first.name),
        }
    };
    for root in 0..deps.len() {
        if mark[root] != NEW {
            continue;
        }
        // Each entry: a slot on the path and how many of its names are done.
        let mut path: Vec<(usize, usize)> = vec![(root, 0)];
        mark[root] = OPEN;
        while let Some(&mut (slot, ref mut next)) = path.last_mut() {
            match deps[slot].get(*next) {
                Some(&d) => {
                    *next += 1;
                    let d = d as usize;
                    match mark[d] {
                        NEW => {
                            mark[d] = OPEN;
                            path.push((d, 0));
                        }
                        OPEN => {
                            let from = path.iter().position(|&(p, _)| p == d).unwrap_or(0);
                            let mut text: Vec<&str> = path[from..]
                                .iter()
                                .map(|&(p, _)| names.slots[p].name.as_str())
                                .collect();
                            text.push(names.slots[d].name.as_str());
                            return Err(Error::contract(
                                place(d),
                                format!("cycle among kpis and baselines: {}", text.join(" -> ")),
                            ));
                        }
                        _ => {}
                    }
                }
                None => {
                    let longest = deps[slot]
                        .iter()
                        .map(|&d| chain[d as usize])
                        .max()
                        .unwrap_or(0);
                    chain[slot] = longest + 1;
                    if chain[slot] > CHAIN_MAX {
                        return Err(Error::contract(
                            place(slot),
                            format!(
                                "{} reads a chain of {} kpis and baselines, each naming the next; at most {CHAIN_MAX} may chain",
                                names.slots[slot].name, chain[slot]
                            ),
                        ));
                    }
                    mark[slot] = DONE;
                    path.pop();
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::contract::Contract;

    const HEAD: &str = r#"
format = 1
id = "t"
customer = "acme"
currency = "USD"
start = "2026-01-01"
end = "2027-01-01"
cadence = "monthly"
[params]
rate = "0.5"
[metrics.units]
aggregate = "sum"
"#;

    fn error(body: &str) -> String {
        match Contract::from_toml_str(&format!("{HEAD}{body}")) {
            Ok(_) => panic!("accepted:\n{body}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn an_undefined_name_is_named_with_its_field_path() {
        // The spec's own example: `charges[0].quantity: undefined name outcome_count`.
        let e = error(
            "[[charges]]\nid = \"c\"\nkind = \"unit\"\nquantity = \"outcome_count\"\nunit_price = \"1\"\n",
        );
        assert!(
            e.starts_with("charges[0].quantity: undefined name outcome_count"),
            "{e}"
        );
    }

    #[test]
    fn expressions_of_params_fold_per_version_and_others_do_not() {
        // Proves a param-only field becomes a constant of its version (an
        // amendment's params fold too), while one reading a metric, or one
        // that fails to evaluate, is left to settlement.
        let text = format!(
            "{HEAD}[[charges]]\nid = \"c\"\nkind = \"unit\"\nquantity = \"units\"\nunit_price = \"round(rate * 3, 0)\"\n\
             [[charges]]\nid = \"d\"\nkind = \"fixed\"\namount = \"1 / (rate - rate)\"\n\
             [[amendments]]\neffective = \"2026-07-01\"\nset = {{ \"params.rate\" = \"0.9\" }}\n"
        );
        let contract = Contract::from_toml_str(&text).expect("valid");
        let versions = contract.versions().expect("versions");
        let folded: Vec<_> = versions
            .iter()
            .map(|v| {
                let program = super::compile(&v.contract).expect("compiles");
                match &program.charges[0].body {
                    super::Body::Unit(u) => {
                        (u.quantity.code.constant(), u.unit_price.code.constant())
                    }
                    _ => panic!("a unit charge"),
                }
            })
            .collect();
        // round(1.5) and round(2.7) half-even to whole units: 2, then 3.
        let d = |v: i64| Some(rust_decimal::Decimal::from(v));
        assert_eq!(folded, vec![(None, d(2)), (None, d(3))]);
        let program = super::compile(&versions[0].contract).expect("compiles");
        match &program.charges[1].body {
            super::Body::Fixed(f) => assert_eq!(f.amount.code.constant(), None),
            _ => panic!("a fixed charge"),
        }
    }

    #[test]
    fn a_cycle_among_kpis_is_named() {
        // a -> b -> a is rejected at the first KPI of the cycle, listing it.
        let e = error("[kpis.a]\nexpr = \"b + 1\"\n[kpis.b]\nexpr = \"a * 2\"\n");
        assert!(
            e.starts_with("kpis.a: cycle among kpis and baselines: a -> b -> a"),
            "{e}"
        );
    }

    #[test]
    fn a_cycle_through_a_baseline_is_named() {
        // A KPI reading an expr baseline that reads the KPI.
        let e =
            error("[kpis.k]\nexpr = \"base\"\n[baselines.base]\nkind = \"expr\"\nexpr = \"k\"\n");
        assert!(e.contains("cycle among kpis and baselines"), "{e}");
        assert!(
            e.starts_with("baselines.base") || e.starts_with("kpis.k"),
            "{e}"
        );
    }

    #[test]
    fn a_charge_may_not_name_itself_or_a_later_charge() {
        // Naming a later charge is rejected at the field that does it.
        let e = error(
            "[[charges]]\nid = \"a\"\nkind = \"expr\"\namount = \"b\"\n[[charges]]\nid = \"b\"\nkind = \"fixed\"\namount = \"1\"\n",
        );
        assert!(
            e.starts_with("charges[0].amount: b is this charge or a later one"),
            "{e}"
        );
        let e = error("[[charges]]\nid = \"a\"\nkind = \"expr\"\namount = \"a + 1\"\n");
        assert!(e.starts_with("charges[0].amount:"), "{e}");
    }

    #[test]
    fn kpis_and_baselines_may_not_name_charges() {
        // A KPI that reads a charge is rejected at `kpis.NAME.expr`.
        let e = error(
            "[kpis.k]\nexpr = \"c\"\n[[charges]]\nid = \"c\"\nkind = \"fixed\"\namount = \"1\"\n",
        );
        assert!(
            e.starts_with("kpis.k.expr: c is a charge, which kpis and baselines cannot name"),
            "{e}"
        );
    }

    #[test]
    fn a_name_defined_twice_is_rejected_where_it_is_defined_again() {
        // One namespace for params, metrics, KPIs, baselines, charges, limits.
        let e = error("[[charges]]\nid = \"units\"\nkind = \"fixed\"\namount = \"1\"\n");
        assert!(
            e.starts_with("charges[0].id: units is already the name of a metric"),
            "{e}"
        );
    }

    #[test]
    fn expressions_cannot_name_limits() {
        // A limit's id is a name, but not a value an expression can read.
        let e = error(
            "[[charges]]\nid = \"c\"\nkind = \"fixed\"\namount = \"1\"\n[[limits]]\nid = \"cap\"\nkind = \"cap\"\namount = \"10\"\nscope = \"period\"\n[[limits]]\nkind = \"floor\"\namount = \"cap\"\nscope = \"period\"\n",
        );
        assert!(e.starts_with("limits[1].amount: cap is a limit"), "{e}");
    }

    #[test]
    fn a_syntax_error_in_an_expression_gives_its_column() {
        // `units *` ends too early: the path and the column are named.
        let e = error("[[charges]]\nid = \"c\"\nkind = \"expr\"\namount = \"units *\"\n");
        assert!(e.starts_with("charges[0].amount:"), "{e}");
        assert!(e.contains("column"), "{e}");
    }

    #[test]
    fn a_condition_cannot_be_an_amount() {
        // `units > 3` is a condition, not a number.
        let e = error("[[charges]]\nid = \"c\"\nkind = \"expr\"\namount = \"units > 3\"\n");
        assert!(e.starts_with("charges[0].amount:"), "{e}");
        assert!(e.contains("condition"), "{e}");
    }

    #[test]
    fn an_amendment_that_breaks_a_rule_is_named() {
        // Setting an expression that reads an undefined name, from July on.
        let e = error(
            "[[charges]]\nid = \"c\"\nkind = \"unit\"\nquantity = \"units\"\nunit_price = \"1\"\n[[amendments]]\neffective = \"2026-07-01\"\nset = { \"charges.c.unit_price\" = \"nope * 2\" }\n",
        );
        assert!(e.contains("undefined name nope"), "{e}");
        assert!(e.starts_with("amendments[0]"), "{e}");
    }
}
