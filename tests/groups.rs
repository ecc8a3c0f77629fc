//! Pricing per dimension value (`group_by`, `params_by`), through the public
//! API and the command line: per-group amounts and traces, `params_by`
//! overrides, `missing = "error"` per group, references between charges
//! grouped by one dimension, historical baselines' groups, the JSON, CSV and
//! table outputs, `validate`, the sources agreeing, and every load-time
//! rejection of the format's section naming its field path.

#[path = "common/command.rs"]
mod command;
use command::{outcome, write};

#[path = "common/pg.rs"]
mod pg;

use outcome_billing::metric::{CsvSource, MemorySource, Observation};
use outcome_billing::period::Stamp;
use outcome_billing::{CompiledContract, Contract, MetricSource, SettleOptions, Statement};
use proptest::prelude::*;
use rust_decimal::Decimal;

// ---------------------------------------------------------------------------
// Helpers

/// A contract `id`, January to March 2026, monthly, with `body`.
fn contract(body: &str) -> String {
    format!(
        "format = 1\nid = \"g\"\ncustomer = \"acme\"\ncurrency = \"USD\"\n\
         start = \"2026-01-01\"\nend = \"2026-04-01\"\ncadence = \"monthly\"\n{body}"
    )
}

fn compiled(body: &str) -> CompiledContract {
    CompiledContract::from_toml_str(&contract(body)).expect("a valid contract")
}

fn rejected(body: &str) -> String {
    match Contract::from_toml_str(&contract(body)) {
        Ok(_) => panic!("accepted:\n{body}"),
        Err(e) => e.to_string(),
    }
}

fn d(s: &str) -> Decimal {
    s.parse().expect("a decimal")
}

/// An observation of `series` on `date` with `value` and dimensions.
fn obs(series: &str, date: &str, value: &str, dims: &[(&str, &str)]) -> Observation {
    let mut o = Observation::new(series, Stamp::parse(date).expect("a date"), d(value));
    o.dimensions = dims
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    o
}

fn memory(rows: Vec<Observation>) -> MemorySource {
    let mut m = MemorySource::new();
    for r in rows {
        m.push(r);
    }
    m
}

fn settle(c: &CompiledContract, source: &dyn MetricSource, through: usize) -> Vec<Statement> {
    c.settle_through(source, through, &SettleOptions::default())
        .expect("settles")
}

/// `(group, amount)` of a line's groups.
fn groups(st: &Statement, line: usize) -> Vec<(String, String)> {
    st.lines[line]
        .groups
        .as_ref()
        .expect("a grouped line")
        .iter()
        .map(|g| (g.group.clone(), g.amount.to_string()))
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

const AGENT: &str = r#"
[params]
allowance = "100"
price = "0.99"

[params_by.workspace]
"ws-enterprise" = { allowance = "500", price = "0.79" }

[metrics.resolutions]
series = "resolved"
aggregate = "sum"

[[charges]]
id = "per_workspace"
kind = "tiered"
mode = "graduated"
quantity = "resolutions"
group_by = "workspace"
tiers = [ { up_to = "allowance", unit_price = "0" }, { unit_price = "price" } ]
"#;

fn agent_rows() -> Vec<Observation> {
    vec![
        obs("resolved", "2026-01-03", "120", &[("workspace", "ws-b")]),
        obs("resolved", "2026-01-04", "30", &[("workspace", "ws-a")]),
        obs(
            "resolved",
            "2026-01-09",
            "650",
            &[("workspace", "ws-enterprise")],
        ),
        obs("resolved", "2026-01-10", "50", &[("workspace", "ws-a")]),
        obs("resolved", "2026-02-02", "10", &[("workspace", "ws-a")]),
    ]
}

// ---------------------------------------------------------------------------
// Settlement

#[test]
fn each_workspace_has_its_own_allowance_and_the_enterprise_its_own_rate() {
    // ws-a 80 (inside 100), ws-b 120 (20 * 0.99), ws-enterprise 650 (150 * 0.79 under
    // its params_by values); groups in byte order, the line their sum.
    let c = compiled(AGENT);
    let st = settle(&c, &memory(agent_rows()), 1);
    assert_eq!(
        groups(&st[0], 0),
        pairs(&[
            ("ws-a", "0.00"),
            ("ws-b", "19.80"),
            ("ws-enterprise", "118.50")
        ])
    );
    let line = &st[0].lines[0];
    assert_eq!(line.amount, d("138.30"));
    assert_eq!(line.quantity, Some(d("850")));
    let g = &line.groups.as_ref().unwrap()[2];
    assert_eq!(g.quantity, Some(d("650")));
    // The group's trace shows the param in force there.
    assert!(
        g.trace
            .iter()
            .any(|s| s.step == "param allowance" && s.value == "500"),
        "{:?}",
        g.trace
    );
    assert!(
        line.trace
            .iter()
            .any(|s| s.step == "group_by workspace: 3 groups" && s.value == "3"),
        "{:?}",
        line.trace
    );
    // February: only ws-a, inside its allowance.
    assert_eq!(groups(&st[1], 0), pairs(&[("ws-a", "0.00")]));
    assert_eq!(st[1].total, d("0.00"));
}

#[test]
fn a_period_without_observations_has_no_group_and_amount_zero() {
    // March has no row: `groups` is empty and the line is 0.
    let c = compiled(AGENT);
    let st = settle(&c, &memory(agent_rows()), 2);
    assert_eq!(st[2].lines[0].groups, Some(Vec::new()));
    assert_eq!(st[2].lines[0].amount, d("0"));
    assert_eq!(st[2].lines[0].quantity, Some(d("0")));
}

#[test]
fn an_observation_without_the_dimension_is_in_the_empty_group() {
    // A row with no workspace value is group "", never left out.
    let c = compiled(AGENT);
    let mut rows = agent_rows();
    rows.push(obs("resolved", "2026-01-20", "150", &[]));
    let st = settle(&c, &memory(rows), 0);
    assert_eq!(st[0].lines[0].groups.as_ref().unwrap()[0].group, "");
    assert_eq!(
        st[0].lines[0].groups.as_ref().unwrap()[0].amount,
        d("49.50")
    );
}

#[test]
fn grouped_unit_percentage_gain_share_and_bands() {
    // Each kind is its formula per group, rounded per group, summed.
    let c = compiled(
        r#"
[metrics.units]
aggregate = "sum"
[metrics.revenue]
aggregate = "sum"
[metrics.uptime]
aggregate = "min"
[[charges]]
id = "u"
kind = "unit"
quantity = "units"
unit_price = "0.333"
group_by = "site"
[[charges]]
id = "p"
kind = "percentage"
base = "revenue"
rate = "0.1"
group_by = "site"
[[charges]]
id = "gs"
kind = "gain_share"
actual = "units"
baseline = "10"
direction = "increase"
value_per_unit = "2"
share = "0.5"
group_by = "site"
[[charges]]
id = "sla"
kind = "bands"
kpi = "uptime"
bands = [ { to = "99", percent = "-10", of = ["u", "p"] } ]
group_by = "site"
"#,
    );
    let rows = vec![
        obs("units", "2026-01-02", "11", &[("site", "x")]),
        obs("units", "2026-01-02", "21", &[("site", "y")]),
        obs("revenue", "2026-01-02", "100.05", &[("site", "x")]),
        obs("revenue", "2026-01-02", "200", &[("site", "y")]),
        obs("uptime", "2026-01-02", "98", &[("site", "x")]),
        obs("uptime", "2026-01-02", "99.5", &[("site", "y")]),
    ];
    let st = settle(&c, &memory(rows), 0);
    // 11 * 0.333 = 3.663 -> 3.66; 21 * 0.333 = 6.993 -> 6.99.
    assert_eq!(groups(&st[0], 0), pairs(&[("x", "3.66"), ("y", "6.99")]));
    assert_eq!(st[0].lines[0].amount, d("10.65"));
    // 10.005 -> 10.00 (half even); 20.00.
    assert_eq!(groups(&st[0], 1), pairs(&[("x", "10.00"), ("y", "20.00")]));
    // (11 - 10) * 2 * 0.5 = 1; (21 - 10) * 2 * 0.5 = 11.
    assert_eq!(groups(&st[0], 2), pairs(&[("x", "1.00"), ("y", "11.00")]));
    // Site x is below 99: -10% of its own u and p (3.66 + 10.00); y is in no band.
    assert_eq!(groups(&st[0], 3), pairs(&[("x", "-1.37"), ("y", "0.00")]));
    assert_eq!(
        st[0].total,
        d("10.65") + d("30.00") + d("12.00") - d("1.37")
    );
}

#[test]
fn missing_error_applies_to_each_group() {
    // Group y has units but no price observation: the error names the group.
    let c = compiled(
        r#"
[metrics.units]
aggregate = "sum"
[metrics.price]
aggregate = "last"
[[charges]]
id = "u"
kind = "unit"
quantity = "units"
unit_price = "price"
group_by = "site"
"#,
    );
    let rows = vec![
        obs("units", "2026-01-02", "2", &[("site", "x")]),
        obs("units", "2026-01-02", "3", &[("site", "y")]),
        obs("price", "2026-01-02", "5", &[("site", "x")]),
    ];
    let e = c
        .settle_through(&memory(rows), 0, &SettleOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("metric price"), "{e}");
    assert!(e.contains("in group \"y\" of site"), "{e}");
}

#[test]
fn a_grouped_charge_reads_a_same_dimension_charge_in_its_group() {
    // `fee` names `u`: in each group it reads u's amount there, 0 where u has
    // no such group; the groups of `fee` include u's.
    let c = compiled(
        r#"
[metrics.units]
aggregate = "sum"
[metrics.tickets]
aggregate = "sum"
[[charges]]
id = "u"
kind = "unit"
quantity = "units"
unit_price = "1"
group_by = "site"
[[charges]]
id = "fee"
kind = "expr"
amount = "u * 0.1 + tickets"
group_by = "site"
[[charges]]
id = "all"
kind = "expr"
amount = "u"
"#,
    );
    let rows = vec![
        obs("units", "2026-01-02", "40", &[("site", "x")]),
        obs("tickets", "2026-01-02", "1", &[("site", "z")]),
    ];
    let st = settle(&c, &memory(rows), 0);
    assert_eq!(groups(&st[0], 1), pairs(&[("x", "4.00"), ("z", "1.00")]));
    // An ungrouped charge reads the sum.
    assert_eq!(st[0].lines[2].amount, d("40.00"));
}

#[test]
fn a_historical_baseline_gives_groups_from_its_laid_periods() {
    // Site old has history only: it is a group (its improvement is negative,
    // so it pays nothing); site new has this period's data only.
    let text = r#"
format = 1
id = "h"
customer = "acme"
currency = "USD"
start = "2026-01-01"
end = "2026-03-01"
cadence = "monthly"
[metrics.tickets]
aggregate = "sum"
[baselines.before]
kind = "historical"
metric = "tickets"
from = "2025-11-01"
to = "2026-01-01"
[[charges]]
id = "saving"
kind = "gain_share"
actual = "tickets"
baseline = "before"
direction = "decrease"
share = "1"
group_by = "site"
"#;
    let c = CompiledContract::from_toml_str(text).unwrap();
    let rows = vec![
        obs("tickets", "2025-11-05", "10", &[("site", "old")]),
        obs("tickets", "2025-12-05", "30", &[("site", "old")]),
        obs("tickets", "2026-01-05", "5", &[("site", "old")]),
        obs("tickets", "2026-01-05", "7", &[("site", "new")]),
    ];
    let st = settle(&c, &memory(rows), 0);
    // old: baseline 20, actual 5: 15. new: baseline 0, actual 7: no gain.
    assert_eq!(
        groups(&st[0], 0),
        pairs(&[("new", "0.00"), ("old", "15.00")])
    );
}

#[test]
fn a_dimension_the_data_lacks_is_a_data_error_naming_it() {
    // No row has `region`: settlement fails naming the dimension and charge.
    let c = compiled(
        "[metrics.units]\naggregate = \"sum\"\n[[charges]]\nid = \"u\"\nkind = \"unit\"\nquantity = \"units\"\nunit_price = \"1\"\ngroup_by = \"region\"\n",
    );
    let e = c
        .settle_through(
            &memory(vec![obs("units", "2026-01-02", "1", &[("site", "x")])]),
            0,
            &SettleOptions::default(),
        )
        .unwrap_err();
    assert_eq!(e.kind(), outcome_billing::ErrorKind::MalformedData, "{e}");
    let e = e.to_string();
    assert!(
        e.contains("dimension \"region\", which the data lacks"),
        "{e}"
    );
    assert!(e.contains("charges[0] u"), "{e}");
}

#[test]
fn limits_and_later_charges_see_the_sum() {
    // A period cap on the grouped charge acts on the sum of its groups.
    let c = compiled(&format!(
        "{AGENT}\n[[limits]]\nkind = \"cap\"\namount = \"100\"\nscope = \"period\"\n"
    ));
    let st = settle(&c, &memory(agent_rows()), 0);
    assert_eq!(st[0].lines[1].amount, d("-38.30"));
    assert_eq!(st[0].total, d("100.00"));
}

#[test]
fn memory_csv_and_sqlite_sources_agree() {
    // The same rows through each source give the same statements.
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("m.csv");
    std::fs::write(
        &csv,
        "series,timestamp,value,workspace\n\
         resolved,2026-01-03,120,ws-b\n\
         resolved,2026-01-04,30,ws-a\n\
         resolved,2026-01-09,650,ws-enterprise\n\
         resolved,2026-01-10,50,ws-a\n\
         resolved,2026-02-02,10,ws-a\n\
         resolved,2026-02-03,5,\n",
    )
    .unwrap();
    let c = compiled(AGENT);
    let from_csv = settle(&c, &CsvSource::open(&csv).unwrap(), 2);
    let mut rows = agent_rows();
    rows.push(obs("resolved", "2026-02-03", "5", &[("workspace", "")]));
    let from_memory = settle(&c, &memory(rows), 2);
    assert_eq!(from_csv, from_memory);
    assert_eq!(
        groups(&from_csv[1], 0),
        pairs(&[("", "0.00"), ("ws-a", "0.00")])
    );
    let store = dir.path().join("m.db");
    outcome_billing::metric::import_csv(&csv, &store).unwrap();
    let sqlite = outcome_billing::metric::SqliteSource::open(&store).unwrap();
    assert_eq!(settle(&c, &sqlite, 2), from_csv);
    let lean = outcome_billing::metric::SqliteSource::open(&store)
        .unwrap()
        .with_push_down(false);
    assert_eq!(settle(&c, &lean, 2), from_csv);
    // A dimension the store lacks is a data error there too.
    let other = compiled(&AGENT.replace("group_by = \"workspace\"", "group_by = \"site\""));
    let e = other
        .settle_through(&sqlite, 0, &SettleOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("\"site\", which the data lacks"), "{e}");
    if let Some(url) = pg::fresh("groups_sources_agree") {
        outcome_billing::metric::postgres::import_csv(&csv, &url).unwrap();
        let postgres = outcome_billing::metric::PostgresSource::open(&url).unwrap();
        assert_eq!(settle(&c, &postgres, 2), from_csv);
        let e = other
            .settle_through(&postgres, 0, &SettleOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"site\", which the data lacks"), "{e}");
    }
}

// ---------------------------------------------------------------------------
// Load-time rejections, each at its field path

#[test]
fn a_fixed_charge_cannot_be_grouped() {
    // group_by is for every kind but fixed.
    let e = rejected(
        "[[charges]]\nid = \"f\"\nkind = \"fixed\"\namount = \"1\"\ngroup_by = \"site\"\n",
    );
    assert!(
        e.starts_with("charges[0].group_by: a fixed charge cannot be grouped"),
        "{e}"
    );
}

#[test]
fn a_reserved_column_is_not_a_dimension() {
    // Each column of the data that is not a dimension is rejected.
    for column in [
        "series",
        "timestamp",
        "value",
        "id",
        "recorded_at",
        "customer",
        "void",
    ] {
        let e = rejected(&format!(
            "[metrics.u]\naggregate = \"sum\"\n[[charges]]\nid = \"c\"\nkind = \"unit\"\nquantity = \"u\"\nunit_price = \"1\"\ngroup_by = \"{column}\"\n"
        ));
        assert!(e.starts_with("charges[0].group_by: "), "{e}");
        assert!(e.contains("not a dimension"), "{e}");
    }
}

#[test]
fn params_by_must_name_a_param_with_a_decimal() {
    // An unknown param and a non-decimal are named at their path.
    let e = rejected("[params]\nrate = \"1\"\n[params_by.site]\nx = { nope = \"2\" }\n");
    assert!(
        e.starts_with("params_by.site.x.nope: no param is named nope"),
        "{e}"
    );
    let e =
        rejected("[params]\nrate = \"1\"\n[params_by.site]\n\"ws-1\" = { rate = \"rate * 2\" }\n");
    assert!(
        e.starts_with("params_by.site.ws-1.rate: a params_by value is a decimal"),
        "{e}"
    );
}

#[test]
fn a_grouped_charge_names_only_charges_grouped_by_its_dimension() {
    // In an expression and in `of`, an ungrouped or other-dimension charge is rejected.
    let head = "[metrics.u]\naggregate = \"sum\"\n\
        [[charges]]\nid = \"plain\"\nkind = \"unit\"\nquantity = \"u\"\nunit_price = \"1\"\n\
        [[charges]]\nid = \"by_region\"\nkind = \"unit\"\nquantity = \"u\"\nunit_price = \"1\"\ngroup_by = \"region\"\n";
    let e = rejected(&format!(
        "{head}[[charges]]\nid = \"e\"\nkind = \"expr\"\namount = \"plain * 2\"\ngroup_by = \"site\"\n"
    ));
    assert!(
        e.starts_with("charges[2].amount: plain is not grouped"),
        "{e}"
    );
    let e = rejected(&format!(
        "{head}[[charges]]\nid = \"e\"\nkind = \"expr\"\namount = \"by_region\"\ngroup_by = \"site\"\n"
    ));
    assert!(
        e.starts_with("charges[2].amount: by_region is grouped by region"),
        "{e}"
    );
    let e = rejected(&format!(
        "{head}[[charges]]\nid = \"b\"\nkind = \"bands\"\nkpi = \"u\"\nbands = [ {{ from = \"0\", percent = \"10\", of = [\"by_region\"] }} ]\ngroup_by = \"site\"\n"
    ));
    assert!(
        e.starts_with("charges[2].bands[0].of[0]: by_region is grouped by region"),
        "{e}"
    );
}

#[test]
fn a_grouped_charge_cannot_accumulate_over_the_year_or_read_a_high_water_mark() {
    // Their state would be per group.
    let e = rejected(
        "[metrics.u]\naggregate = \"sum\"\n[[charges]]\nid = \"t\"\nkind = \"tiered\"\nmode = \"graduated\"\naccumulate = \"contract_year\"\nquantity = \"u\"\ntiers = [ { unit_price = \"1\" } ]\ngroup_by = \"site\"\n",
    );
    assert!(e.starts_with("charges[0].accumulate: "), "{e}");
    let e = rejected(
        "[metrics.nav]\naggregate = \"last\"\n[baselines.hwm]\nkind = \"high_water_mark\"\nmetric = \"nav\"\ninitial = \"100\"\n\
         [kpis.gain]\nexpr = \"nav - hwm\"\n\
         [[charges]]\nid = \"perf\"\nkind = \"expr\"\namount = \"max(gain, 0) * 0.2\"\ngroup_by = \"fund\"\n",
    );
    assert!(e.starts_with("charges[0].group_by: "), "{e}");
    assert!(e.contains("high_water_mark baseline hwm"), "{e}");
}

#[test]
fn amendments_cannot_change_group_by_or_params_by() {
    // Both are structure.
    let body = format!(
        "{AGENT}\n[[amendments]]\neffective = \"2026-02-01\"\nset = {{ \"charges.per_workspace.group_by\" = \"site\" }}\n"
    );
    let e = rejected(&body);
    assert!(
        e.starts_with("amendments[0].set.\"charges.per_workspace.group_by\""),
        "{e}"
    );
    assert!(e.contains("structure"), "{e}");
    let body = format!(
        "{AGENT}\n[[amendments]]\neffective = \"2026-02-01\"\nset = {{ \"params_by.workspace.ws-enterprise.allowance\" = \"1\" }}\n"
    );
    let e = rejected(&body);
    assert!(e.starts_with("amendments[0].set."), "{e}");
    assert!(e.contains("params_by is structure"), "{e}");
}

#[test]
fn constant_rules_hold_under_every_params_by_value() {
    // Tiers must increase with ws-small's allowance too.
    let e = rejected(
        "[params]\nallowance = \"100\"\n[params_by.workspace]\nws-small = { allowance = \"2000\" }\n\
         [metrics.u]\naggregate = \"sum\"\n\
         [[charges]]\nid = \"t\"\nkind = \"tiered\"\nmode = \"graduated\"\nquantity = \"u\"\ngroup_by = \"workspace\"\n\
         tiers = [ { up_to = \"allowance\", unit_price = \"0\" }, { up_to = \"1000\", unit_price = \"1\" }, { unit_price = \"2\" } ]\n",
    );
    assert!(e.starts_with("charges[0].tiers[1].up_to: "), "{e}");
    assert!(e.contains("in the group \"ws-small\" of workspace"), "{e}");
}

// ---------------------------------------------------------------------------
// Command line

const AGENT_CSV: &str = "series,timestamp,value,workspace\n\
    resolved,2026-01-03,120,ws-b\n\
    resolved,2026-01-04,30,ws-a\n\
    resolved,2026-01-09,650,ws-enterprise\n\
    resolved,2026-01-10,50,ws-a\n";

#[test]
fn settle_prints_groups_in_json_csv_and_table() {
    // JSON `groups`, one CSV row per group (and one 0 row without a group),
    // groups indented under their charge in the table.
    let dir = tempfile::tempdir().unwrap();
    let c = write(dir.path(), "c.toml", &contract(AGENT));
    let m = write(dir.path(), "m.csv", AGENT_CSV);
    let run = outcome(&[
        "settle",
        &c,
        "--metrics",
        &m,
        "--as-of",
        "2026-03-01",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let line = &doc["statements"][0]["lines"][0];
    assert_eq!(line["amount"], "138.30");
    assert_eq!(line["quantity"], "850");
    let g = &line["groups"];
    assert_eq!(g.as_array().unwrap().len(), 3);
    assert_eq!(g[1]["group"], "ws-b");
    assert_eq!(g[1]["quantity"], "120");
    assert_eq!(g[1]["amount"], "19.80");
    assert!(g[1]["trace"].as_array().unwrap().len() > 1);
    assert_eq!(
        doc["statements"][1]["lines"][0]["groups"],
        serde_json::json!([])
    );

    let run = outcome(&[
        "settle",
        &c,
        "--metrics",
        &m,
        "--as-of",
        "2026-03-01",
        "--format",
        "csv",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "contract,period_start,period_end,charge,kind,quantity,amount,group\n\
         g,2026-01-01,2026-02-01,per_workspace,tiered,80,0.00,ws-a\n\
         g,2026-01-01,2026-02-01,per_workspace,tiered,120,19.80,ws-b\n\
         g,2026-01-01,2026-02-01,per_workspace,tiered,650,118.50,ws-enterprise\n\
         g,2026-02-01,2026-03-01,per_workspace,tiered,0,0.00,\n"
    );

    let run = outcome(&["settle", &c, "--metrics", &m, "--as-of", "2026-03-01"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let table = run.stdout;
    let at = table.find("per_workspace").expect("the charge");
    let after = &table[at..];
    assert!(after.contains("\n    ws-a "), "{table}");
    assert!(after.contains("\n    ws-enterprise "), "{table}");
}

#[test]
fn validate_counts_grouped_charges_by_dimension() {
    // Without groups the line is as before; with them, one item per dimension.
    let dir = tempfile::tempdir().unwrap();
    let plain = write(
        dir.path(),
        "p.toml",
        &contract("[[charges]]\nid = \"f\"\nkind = \"fixed\"\namount = \"1\"\n"),
    );
    let run = outcome(&["validate", &plain]);
    assert_eq!(run.stdout, "g: ok (3 periods, 1 charges, 0 limits)\n");
    let grouped = write(
        dir.path(),
        "g.toml",
        &contract(
            "[metrics.u]\naggregate = \"sum\"\n\
             [[charges]]\nid = \"a\"\nkind = \"unit\"\nquantity = \"u\"\nunit_price = \"1\"\ngroup_by = \"workspace\"\n\
             [[charges]]\nid = \"b\"\nkind = \"unit\"\nquantity = \"u\"\nunit_price = \"1\"\ngroup_by = \"workspace\"\n\
             [[charges]]\nid = \"c\"\nkind = \"unit\"\nquantity = \"u\"\nunit_price = \"1\"\ngroup_by = \"site\"\n",
        ),
    );
    let run = outcome(&["validate", &grouped]);
    assert_eq!(
        run.stdout,
        "g: ok (3 periods, 3 charges, 0 limits); 1 charge grouped by site, 2 charges grouped by workspace\n"
    );
}

#[test]
fn settle_names_a_missing_dimension_with_exit_1() {
    // A data error: status 1, the dimension named.
    let dir = tempfile::tempdir().unwrap();
    let c = write(dir.path(), "c.toml", &contract(AGENT));
    let m = write(
        dir.path(),
        "m.csv",
        "series,timestamp,value,site\nresolved,2026-01-03,1,x\n",
    );
    let run = outcome(&["settle", &c, "--metrics", &m, "--as-of", "2026-02-01"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stderr.contains("\"workspace\", which the data lacks"),
        "{}",
        run.stderr
    );
}

// ---------------------------------------------------------------------------
// Laws

/// Rows of one series over January, each with a site among `sites`.
fn rows_strategy() -> impl Strategy<Value = Vec<(u32, i64, usize)>> {
    prop::collection::vec((1u32..28, -500i64..5000, 0usize..4), 1..24)
}

const SITES: [&str; 4] = ["", "a", "b", "c"];

fn law_contract(group: bool) -> CompiledContract {
    let g = if group { "group_by = \"site\"\n" } else { "" };
    compiled(&format!(
        "[params]\nfree = \"3\"\n[metrics.units]\naggregate = \"sum\"\n\
         [[charges]]\nid = \"u\"\nkind = \"unit\"\nquantity = \"units\"\nunit_price = \"0.333\"\n{g}\
         [[charges]]\nid = \"t\"\nkind = \"tiered\"\nmode = \"graduated\"\nquantity = \"max(units, 0)\"\n\
         tiers = [ {{ up_to = \"free\", unit_price = \"0\" }}, {{ unit_price = \"0.125\" }} ]\n{g}"
    ))
}

fn law_rows(rows: &[(u32, i64, usize)], one_site: Option<&str>) -> Vec<Observation> {
    rows.iter()
        .map(|&(day, cents, site)| {
            let value = Decimal::new(cents, 2).to_string();
            let site = one_site.unwrap_or(SITES[site]);
            obs(
                "units",
                &format!("2026-01-{day:02}"),
                &value,
                &[("site", site)],
            )
        })
        .collect()
}

proptest! {
    #[test]
    fn one_group_equals_the_charge_ungrouped(rows in rows_strategy()) {
        // Data with one value of the dimension: the grouped line's amount and
        // quantity are the ungrouped line's.
        let data = memory(law_rows(&rows, Some("only")));
        let grouped = settle(&law_contract(true), &data, 0).remove(0);
        let plain = settle(&law_contract(false), &data, 0).remove(0);
        for (g, p) in grouped.lines.iter().zip(&plain.lines) {
            if rows.is_empty() {
                prop_assert_eq!(g.amount, Decimal::ZERO);
            } else {
                prop_assert_eq!(g.amount, p.amount);
                prop_assert_eq!(g.quantity, p.quantity);
            }
        }
    }

    #[test]
    fn groups_sum_to_the_line_and_rows_order_does_not_matter(rows in rows_strategy(), seed in 0u64..1000) {
        // The groups' amounts and quantities add up to the line, and the
        // statement is the same for the rows in another order.
        let c = law_contract(true);
        let st = settle(&c, &memory(law_rows(&rows, None)), 0).remove(0);
        for line in &st.lines {
            let groups = line.groups.as_ref().unwrap();
            let sum: Decimal = groups.iter().map(|g| g.amount).sum();
            prop_assert_eq!(sum, line.amount);
            let q: Decimal = groups.iter().filter_map(|g| g.quantity).sum();
            prop_assert_eq!(Some(q), line.quantity);
            prop_assert!(groups.windows(2).all(|w| w[0].group.as_bytes() < w[1].group.as_bytes()));
        }
        let mut shuffled = law_rows(&rows, None);
        let n = shuffled.len();
        if n > 1 {
            for i in 0..n {
                let j = ((seed as usize).wrapping_mul(31).wrapping_add(i * 17)) % n;
                shuffled.swap(i, j);
            }
        }
        let again = settle(&c, &memory(shuffled), 0).remove(0);
        prop_assert_eq!(st, again);
    }
}

// ---------------------------------------------------------------------------
// Simulation

#[test]
fn a_random_scenario_gives_a_grouped_charge_the_one_group_empty() {
    // Generated observations have no dimensions: one group "", priced with
    // the default params, the same as the charge ungrouped.
    use outcome_billing::simulate::{Scenario, SimulateOptions, simulate};
    let scenario =
        Scenario::from_toml_str("[series.resolved]\nmodel = \"constant\"\nvalue = \"180\"\n")
            .unwrap();
    let grouped = simulate(&compiled(AGENT), &scenario, &SimulateOptions::new().runs(3)).unwrap();
    let plain = simulate(
        &compiled(&AGENT.replace("group_by = \"workspace\"\n", "")),
        &scenario,
        &SimulateOptions::new().runs(3),
    )
    .unwrap();
    // 80 * 0.99 per period.
    assert_eq!(grouped.periods[0].summary.total.mean, d("79.20"));
    for (g, p) in grouped.periods.iter().zip(&plain.periods) {
        assert_eq!(g.summary.total, p.summary.total);
    }
}

#[test]
fn a_replayed_history_keeps_its_groups() {
    // Under `replay` the history's workspaces are the groups, as when
    // settling the history itself.
    use outcome_billing::simulate::{Scenario, SimulateOptions, simulate};
    let dir = tempfile::tempdir().unwrap();
    let csv = write(dir.path(), "h.csv", AGENT_CSV);
    let scenario = Scenario::from_toml_str(&format!(
        "periods = 1\n[series.resolved]\nmodel = \"replay\"\nfile = {csv:?}\n"
    ))
    .unwrap();
    let c = compiled(AGENT);
    let report = simulate(&c, &scenario, &SimulateOptions::new().runs(1)).unwrap();
    assert_eq!(report.periods[0].summary.total.p50, d("138.30"));
}

// ---------------------------------------------------------------------------
// Documents, reconcile and the ledger

#[test]
fn the_statement_document_keeps_groups_through_reconcile_and_the_ledger() {
    // A settle document reads back with its groups; reconciling it against
    // the same data finds nothing; a correction in one group is one
    // adjustment of the line; statements issued to a ledger keep their groups.
    let dir = tempfile::tempdir().unwrap();
    let c = write(dir.path(), "c.toml", &contract(AGENT));
    let m = write(dir.path(), "m.csv", AGENT_CSV);
    let run = outcome(&[
        "settle",
        &c,
        "--metrics",
        &m,
        "--as-of",
        "2026-02-01",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc: outcome_billing::report::StatementDocument =
        serde_json::from_str(&run.stdout).unwrap();
    let again = serde_json::to_string_pretty(&doc).unwrap();
    assert_eq!(again, run.stdout.trim_end());
    let issued = write(dir.path(), "issued.json", &run.stdout);

    let run = outcome(&[
        "reconcile",
        &c,
        "--metrics",
        &m,
        "--issued",
        &issued,
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(out["adjustments"], serde_json::json!([]));
    assert_eq!(
        out["statements"][0]["lines"][0]["groups"][2]["group"],
        "ws-enterprise"
    );

    let corrected = write(
        dir.path(),
        "m2.csv",
        &format!("{AGENT_CSV}resolved,2026-01-20,10,ws-b\n"),
    );
    let run = outcome(&[
        "reconcile",
        &c,
        "--metrics",
        &corrected,
        "--issued",
        &issued,
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(out["adjustments"][0]["charge"], "per_workspace");
    assert_eq!(out["adjustments"][0]["amount"], "9.90");

    let store = format!("sqlite:{}", dir.path().join("ledger.db").display());
    let run = outcome(&[
        "issue",
        &c,
        "--metrics",
        &m,
        "--ledger",
        &store,
        "--as-of",
        "2026-02-01",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = outcome(&[
        "reconcile",
        &c,
        "--metrics",
        &m,
        "--ledger",
        &store,
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(out["adjustments"], serde_json::json!([]));
    let ledger = outcome_billing::ledger::Ledger::open(
        &outcome_billing::store::Store::parse(&store).unwrap(),
    )
    .unwrap();
    let history = ledger.history("g").unwrap();
    let line = &history.statements[0].entry.lines[0];
    let groups = line.groups.as_ref().expect("groups kept in the ledger");
    assert_eq!(groups.len(), 3);
    assert_eq!(groups[1].group, "ws-b");
    assert_eq!(groups[1].amount.value(), d("19.80"));
}
