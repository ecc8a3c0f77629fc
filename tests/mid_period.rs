//! Mid-period amendments: an `effective` date inside a period cuts it into
//! parts, each with its own statement, priced as the spec's "Amendments"
//! section says. Through the public API and the command line.

#[path = "common/command.rs"]
mod command;
use command::{json, outcome_in, write};

use outcome_billing::metric::{MemorySource, Observation};
use outcome_billing::period::Stamp;
use outcome_billing::{CompiledContract, SettleOptions, Statement};
use proptest::prelude::*;
use rust_decimal::Decimal;

/// January to March 2026, monthly, UTC, with a `units` metric; `body` adds
/// charges, limits and amendments.
fn contract(body: &str) -> String {
    format!(
        "format = 1\nid = \"mid\"\ncustomer = \"acme\"\ncurrency = \"USD\"\n\
         start = \"2026-01-01\"\nend = \"2026-04-01\"\ncadence = \"monthly\"\n\
         [metrics.units]\nseries = \"units\"\naggregate = \"sum\"\n\
         [metrics.sales]\nseries = \"sales\"\naggregate = \"sum\"\n{body}"
    )
}

/// An amendment from `date` setting `key` to `value`.
fn amend(date: &str, key: &str, value: &str) -> String {
    format!("[[amendments]]\neffective = \"{date}\"\nset = {{ \"{key}\" = \"{value}\" }}\n")
}

fn compiled(body: &str) -> CompiledContract {
    CompiledContract::from_toml_str(&contract(body)).unwrap_or_else(|e| panic!("{e}"))
}

fn d(text: &str) -> Decimal {
    text.parse().expect("decimal")
}

/// `(series, RFC 3339 instant, value)` rows for customer acme.
fn source(rows: &[(&str, &str, &str)]) -> MemorySource {
    let mut s = MemorySource::new();
    for (series, at, value) in rows {
        s.push(Observation::new(
            *series,
            Stamp::parse(at).expect("stamp"),
            d(value),
        ));
    }
    s
}

fn settle_all(c: &CompiledContract, s: &MemorySource) -> Vec<Statement> {
    c.settle_through(s, c.periods().len() - 1, &SettleOptions::default())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Each statement's `(start, amount of charge)`, as text.
fn amounts(statements: &[Statement], charge: &str) -> Vec<(String, String)> {
    statements
        .iter()
        .map(|s| {
            let line = s.lines.iter().find(|l| l.charge == charge);
            (
                s.period.start.to_string(),
                line.map_or_else(|| "-".to_string(), |l| l.amount.to_string()),
            )
        })
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

const UNIT: &str =
    "[[charges]]\nid = \"u\"\nkind = \"unit\"\nquantity = \"units\"\nunit_price = \"1\"\n";

/// 100 units on Feb 5 and 100 on Feb 20: one on each side of a Feb 11 cut.
fn february() -> MemorySource {
    source(&[
        ("units", "2026-02-05T10:00:00Z", "100"),
        ("units", "2026-02-20T10:00:00Z", "100"),
    ])
}

#[test]
fn a_mid_month_repricing_of_a_unit_charge_cuts_february() {
    // Proves a Feb 11 amendment cuts February into Feb 1–11 and Feb 11–Mar 1,
    // each with its own statement under the price in force on its first day.
    let c = compiled(&format!(
        "{UNIT}{}",
        amend("2026-02-11", "charges.u.unit_price", "2")
    ));
    let statements = settle_all(&c, &february());
    let labels: Vec<String> = statements.iter().map(|s| s.period.label()).collect();
    assert_eq!(
        labels,
        [
            "2026-01-01..2026-02-01",
            "2026-02-01..2026-02-11",
            "2026-02-11..2026-03-01",
            "2026-03-01..2026-04-01"
        ]
    );
    assert_eq!(
        amounts(&statements, "u"),
        pairs(&[
            ("2026-01-01", "0.00"),
            ("2026-02-01", "100.00"),
            ("2026-02-11", "200.00"),
            ("2026-03-01", "0.00")
        ])
    );
    // Both parts are cut from the full February and stay in year 0.
    for part in &statements[1..3] {
        assert_eq!(part.period.full_start.to_string(), "2026-02-01");
        assert_eq!(part.period.full_end.to_string(), "2026-03-01");
        assert_eq!(part.period.contract_year, 0);
    }
    assert_eq!(c.schedule().cut_periods(), 1);
    assert_eq!(c.schedule().laid_periods().len(), 3);
}

#[test]
fn a_fixed_fee_is_prorated_by_days_over_the_full_period() {
    // Proves a `fixed` amount in a part is amount * d / D with D the full
    // period's days (10/28 and 18/28 of February), and the trace says so.
    let c = compiled(&format!(
        "[[charges]]\nid = \"plan\"\nkind = \"fixed\"\namount = \"28\"\n{}",
        amend("2026-02-11", "charges.plan.amount", "56")
    ));
    let statements = settle_all(&c, &MemorySource::new());
    assert_eq!(
        amounts(&statements, "plan"),
        pairs(&[
            ("2026-01-01", "28.00"),
            ("2026-02-01", "10.00"),
            ("2026-02-11", "36.00"),
            ("2026-03-01", "56.00")
        ])
    );
    let trace = &statements[2].lines[0].trace;
    assert!(
        trace.iter().any(|s| s.step
            == "prorated for part 2 of 2 of a cut period: amount * 18 / 28 days"
            && s.value == "36"),
        "{trace:?}"
    );
}

#[test]
fn a_fixed_fee_without_proration_is_billed_in_the_first_part_only() {
    // Proves `prorate = false` bills the whole amount in the first part and
    // 0 in later parts, saying why.
    let c = compiled(&format!(
        "[[charges]]\nid = \"plan\"\nkind = \"fixed\"\namount = \"28\"\nprorate = false\n{}",
        amend("2026-02-11", "charges.plan.amount", "56")
    ));
    let statements = settle_all(&c, &MemorySource::new());
    assert_eq!(
        amounts(&statements, "plan"),
        pairs(&[
            ("2026-01-01", "28.00"),
            ("2026-02-01", "28.00"),
            ("2026-02-11", "0.00"),
            ("2026-03-01", "56.00")
        ])
    );
    assert!(
        statements[2].lines[0]
            .trace
            .iter()
            .any(|s| s.step.contains("first part only"))
    );
}

#[test]
fn graduated_tiers_grant_the_allowance_once_across_the_parts() {
    // Proves period-to-date tiers: 80 units in each part of February with
    // 100 free, then 1.00 (2.00 from Feb 11): the first part is free, the
    // second pays round(A(160)) - round(A(80)) = 60 * 2.00 under its terms.
    let tiers = "[[charges]]\nid = \"t\"\nkind = \"tiered\"\nmode = \"graduated\"\nquantity = \"units\"\n\
                 tiers = [ { up_to = \"100\", unit_price = \"0\" }, { unit_price = \"1\" } ]\n";
    let c = compiled(&format!(
        "{tiers}{}",
        amend("2026-02-11", "charges.t.tiers[1].unit_price", "2")
    ));
    let s = source(&[
        ("units", "2026-01-10T00:00:00Z", "150"),
        ("units", "2026-02-05T00:00:00Z", "80"),
        ("units", "2026-02-20T00:00:00Z", "80"),
        ("units", "2026-03-20T00:00:00Z", "150"),
    ]);
    let statements = settle_all(&c, &s);
    assert_eq!(
        amounts(&statements, "t"),
        pairs(&[
            ("2026-01-01", "50.00"),
            ("2026-02-01", "0.00"),
            ("2026-02-11", "120.00"),
            // March is a new period: the allowance again, at 2.00 after it.
            ("2026-03-01", "100.00")
        ])
    );
    let line = &statements[2].lines[0];
    assert_eq!(line.quantity, Some(d("80")));
    let steps: Vec<(&str, &str)> = line
        .trace
        .iter()
        .map(|s| (s.step.as_str(), s.value.as_str()))
        .collect();
    assert!(steps.contains(&(
        "part 2 of 2 of a cut period: quantity of the earlier parts",
        "80"
    )));
    assert!(steps.contains(&("period to date Y = earlier parts + quantity q", "160")));
    assert!(steps.contains(&("round(A(Y)) - round(A(Y - q))", "120.00")));
}

#[test]
fn a_package_counts_units_across_the_parts() {
    // Proves `package` prices the period-to-date quantity: 50 then 60 units
    // in packages of 100 cost one package at 10 in the first part, and
    // round(A(110)) - round(A(50)) = 24 - 12 at the new price 12.
    let c = compiled(&format!(
        "[[charges]]\nid = \"p\"\nkind = \"package\"\nquantity = \"units\"\nsize = \"100\"\nprice = \"10\"\n{}",
        amend("2026-02-11", "charges.p.price", "12")
    ));
    let s = source(&[
        ("units", "2026-02-05T00:00:00Z", "50"),
        ("units", "2026-02-20T00:00:00Z", "60"),
    ]);
    let statements = settle_all(&c, &s);
    assert_eq!(
        amounts(&statements, "p"),
        pairs(&[
            ("2026-01-01", "0.00"),
            ("2026-02-01", "10.00"),
            ("2026-02-11", "12.00"),
            ("2026-03-01", "0.00")
        ])
    );
}

#[test]
fn period_caps_floors_and_credits_run_across_the_parts() {
    // Proves `period` limits keep one running total across the parts: a cap
    // of 150 cuts the second part by 50, a floor of 300 trues up 100 in the
    // last part only, a credit of 150 is one balance for both parts; March
    // starts afresh.
    let limits = "[[limits]]\nid = \"cap\"\nkind = \"cap\"\namount = \"150\"\nscope = \"period\"\n";
    let floor =
        "[[limits]]\nid = \"floor\"\nkind = \"floor\"\namount = \"300\"\nscope = \"period\"\n";
    let credit =
        "[[limits]]\nid = \"credit\"\nkind = \"credit\"\namount = \"150\"\nscope = \"period\"\n";
    let cut = amend("2026-02-11", "charges.u.unit_price", "1");
    let s = source(&[
        ("units", "2026-02-05T00:00:00Z", "100"),
        ("units", "2026-02-20T00:00:00Z", "100"),
        ("units", "2026-03-20T00:00:00Z", "200"),
    ]);
    let cap = settle_all(&compiled(&format!("{UNIT}{limits}{cut}")), &s);
    assert_eq!(
        amounts(&cap, "cap"),
        pairs(&[
            ("2026-01-01", "-"),
            ("2026-02-01", "-"),
            ("2026-02-11", "-50.00"),
            ("2026-03-01", "-50.00")
        ])
    );
    assert!(
        cap[2]
            .lines
            .iter()
            .find(|l| l.charge == "cap")
            .is_some_and(|l| l.trace.iter().any(|s| s.step.starts_with("part 2 of 2")))
    );
    let floored = settle_all(&compiled(&format!("{UNIT}{floor}{cut}")), &s);
    assert_eq!(
        amounts(&floored, "floor"),
        pairs(&[
            ("2026-01-01", "300.00"),
            ("2026-02-01", "-"),
            ("2026-02-11", "100.00"),
            ("2026-03-01", "100.00")
        ])
    );
    let credited = settle_all(&compiled(&format!("{UNIT}{credit}{cut}")), &s);
    assert_eq!(
        amounts(&credited, "credit"),
        pairs(&[
            ("2026-01-01", "-"),
            ("2026-02-01", "-100.00"),
            ("2026-02-11", "-50.00"),
            ("2026-03-01", "-150.00")
        ])
    );
}

#[test]
fn a_cap_amended_mid_period_applies_its_amount_in_force_in_each_part() {
    // Proves the running total carries across the parts while each part
    // uses the cap amount in force on its first day (150, then 120).
    let body = format!(
        "{UNIT}[[limits]]\nid = \"cap\"\nkind = \"cap\"\namount = \"150\"\nscope = \"period\"\n{}",
        amend("2026-02-11", "limits.cap.amount", "120")
    );
    let statements = settle_all(&compiled(&body), &february());
    assert_eq!(
        amounts(&statements, "cap")[1..3],
        pairs(&[("2026-02-01", "-"), ("2026-02-11", "-80.00")])
    );
}

#[test]
fn a_cut_part_belongs_to_the_contract_year_laid_before_the_cut() {
    // Proves contract years are laid before any cut: a yearly floor trues
    // up in the last part of the year's last period, and a cut on the
    // first day of a period cuts nothing.
    let body = format!(
        "{UNIT}[[limits]]\nid = \"min\"\nkind = \"floor\"\namount = \"1000\"\nscope = \"contract_year\"\n{}{}",
        amend("2026-03-15", "charges.u.unit_price", "1"),
        amend("2026-02-01", "charges.u.unit_price", "1")
    );
    let c = compiled(&body);
    assert_eq!(c.periods().len(), 4);
    assert_eq!(c.schedule().cut_periods(), 1);
    let statements = settle_all(&c, &february());
    assert_eq!(
        amounts(&statements, "min"),
        pairs(&[
            ("2026-01-01", "-"),
            ("2026-02-01", "-"),
            ("2026-03-01", "-"),
            ("2026-03-15", "800.00")
        ])
    );
}

#[test]
fn amendments_outside_the_term_are_rejected_naming_the_field() {
    // Proves an `effective` before `start` or on or after `end` is rejected
    // at load, naming `amendments[N].effective`.
    for date in ["2025-12-31", "2026-04-01"] {
        let e = CompiledContract::from_toml_str(&contract(&format!(
            "{UNIT}{}",
            amend(date, "charges.u.unit_price", "2")
        )))
        .expect_err("outside the term");
        assert_eq!(e.field_path(), Some("amendments[0].effective"), "{e}");
        assert!(e.to_string().contains(date), "{e}");
    }
}

#[test]
fn a_state_persisted_before_cuts_existed_reads_and_settles() {
    // Proves `period_to_date` defaults when a persisted state lacks it, and
    // a contract with cuts refuses a state without it (a shape mismatch,
    // not a panic).
    let plain = compiled(UNIT);
    let mut text = serde_json::to_value(plain.initial_state()).unwrap();
    text.as_object_mut().unwrap().remove("period_to_date");
    let state: outcome_billing::State = serde_json::from_value(text).unwrap();
    assert!(
        plain
            .settle_next(&MemorySource::new(), &state, &SettleOptions::default())
            .is_ok()
    );
    let cut = compiled(&format!(
        "{UNIT}{}",
        amend("2026-02-11", "charges.u.unit_price", "2")
    ));
    let mut state = cut.initial_state();
    assert_eq!(state.period_to_date.len(), 1);
    state.period_to_date.clear();
    let e = cut
        .settle_next(&MemorySource::new(), &state, &SettleOptions::default())
        .expect_err("mismatch");
    assert_eq!(e.kind(), outcome_billing::ErrorKind::StateMismatch);
}

// The command line.

const DATA: &str = "customer,series,timestamp,value,id,recorded_at\n\
                    acme,units,2026-02-05T10:00:00Z,100,a,2026-02-05T10:00:00Z\n\
                    acme,units,2026-02-20T10:00:00Z,100,b,2026-02-20T10:00:00Z\n";

fn cut_contract_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "mid.toml",
        &contract(&format!(
            "{UNIT}{}",
            amend("2026-02-11", "charges.u.unit_price", "2")
        )),
    );
    write(dir.path(), "data.csv", DATA);
    dir
}

#[test]
fn validate_counts_cut_periods_after_the_summary() {
    // Proves `validate` keeps the spec's line for a contract without cuts,
    // counts periods after cuts, and appends `; N cut period(s)`.
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        (String::new(), "mid: ok (3 periods, 1 charges, 0 limits)\n"),
        (
            amend("2026-02-01", "charges.u.unit_price", "2"),
            "mid: ok (3 periods, 1 charges, 0 limits)\n",
        ),
        (
            amend("2026-02-11", "charges.u.unit_price", "2"),
            "mid: ok (4 periods, 1 charges, 0 limits); 1 cut period\n",
        ),
        (
            format!(
                "{}{}{}",
                amend("2026-02-11", "charges.u.unit_price", "2"),
                amend("2026-02-20", "charges.u.unit_price", "3"),
                amend("2026-03-05", "charges.u.unit_price", "4")
            ),
            "mid: ok (6 periods, 1 charges, 0 limits); 2 cut periods\n",
        ),
    ];
    for (amendments, line) in cases {
        write(
            dir.path(),
            "c.toml",
            &contract(&format!("{UNIT}{amendments}")),
        );
        let run = outcome_in(&["validate", "c.toml"], dir.path());
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(run.stdout, line);
    }
}

#[test]
fn settle_period_selects_a_part_by_its_start() {
    // Proves `--period` names a part by its first day and carries the state
    // of the earlier parts; the old period start still names the first part.
    let dir = cut_contract_dir();
    let run = outcome_in(
        &[
            "settle",
            "mid.toml",
            "--metrics",
            "data.csv",
            "--period",
            "2026-02-11",
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc = json(&run.stdout);
    let statements = doc["statements"].as_array().expect("statements");
    assert_eq!(statements.len(), 1);
    assert_eq!(statements[0]["period"]["start"], "2026-02-11");
    assert_eq!(statements[0]["period"]["end"], "2026-03-01");
    assert_eq!(statements[0]["total"], "200.00");
    let run = outcome_in(
        &[
            "settle",
            "mid.toml",
            "--metrics",
            "data.csv",
            "--period",
            "2026-02-12",
        ],
        dir.path(),
    );
    assert_eq!(run.code, 2, "{}", run.stdout);
}

#[test]
fn reconcile_adjusts_a_part_of_a_cut_period() {
    // Proves `reconcile` treats a part like any period: a late correction
    // in the second part of February is one adjustment dated by the part.
    let dir = cut_contract_dir();
    let settle = outcome_in(
        &[
            "settle",
            "mid.toml",
            "--metrics",
            "data.csv",
            "--as-of",
            "2026-03-02",
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(settle.code, 0, "{}", settle.stderr);
    write(dir.path(), "issued.json", &settle.stdout);
    write(
        dir.path(),
        "data.csv",
        &format!("{DATA}acme,units,2026-02-20T10:00:00Z,130,b,2026-03-10T00:00:00Z\n"),
    );
    let run = outcome_in(
        &[
            "reconcile",
            "mid.toml",
            "--metrics",
            "data.csv",
            "--issued",
            "issued.json",
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc = json(&run.stdout);
    let adjustments = doc["adjustments"].as_array().expect("adjustments");
    assert_eq!(adjustments.len(), 1, "{adjustments:?}");
    assert_eq!(adjustments[0]["period"]["start"], "2026-02-11");
    assert_eq!(adjustments[0]["period"]["end"], "2026-03-01");
    assert_eq!(adjustments[0]["issued"], "200.00");
    assert_eq!(adjustments[0]["settled"], "260.00");
    assert_eq!(adjustments[0]["amount"], "60.00");
}

#[test]
fn issue_writes_each_part_to_the_ledger_once() {
    // Proves `issue` appends each part as a statement of its own, and a
    // second issue skips them all.
    let dir = cut_contract_dir();
    let args = [
        "issue",
        "mid.toml",
        "--metrics",
        "data.csv",
        "--ledger",
        "sqlite:ledger.db",
        "--as-of",
        "2026-03-02",
    ];
    let run = outcome_in(&args, dir.path());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = outcome_in(&args, dir.path());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("2026-02-11"), "{}", run.stderr);
    // Reconciling against the ledger finds nothing to adjust.
    let run = outcome_in(
        &[
            "reconcile",
            "mid.toml",
            "--metrics",
            "data.csv",
            "--ledger",
            "sqlite:ledger.db",
            "--as-of",
            "2026-03-02",
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc = json(&run.stdout);
    assert_eq!(doc["adjustments"], serde_json::json!([]));
    let starts: Vec<&str> = doc["statements"]
        .as_array()
        .expect("statements")
        .iter()
        .map(|s| s["period"]["start"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(starts, ["2026-01-01", "2026-02-01", "2026-02-11"]);
}

#[test]
fn simulate_splits_a_cut_periods_value_among_its_parts_by_days() {
    // Proves a scenario's `n` counts periods as laid (linear 28 per period:
    // 28, 56, 84), and February's 56 is split 10/28 and 18/28 between its
    // parts, stamped at each part's start.
    let dir = cut_contract_dir();
    write(
        dir.path(),
        "s.toml",
        "[series.units]\nmodel = \"linear\"\nstart = \"28\"\nstep = \"28\"\n",
    );
    let run = outcome_in(
        &[
            "simulate",
            "mid.toml",
            "--scenario",
            "s.toml",
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc = json(&run.stdout);
    let periods: Vec<(String, String)> = doc["periods"]
        .as_array()
        .expect("periods")
        .iter()
        .map(|p| {
            (
                p["period"]["start"].as_str().unwrap_or("").to_string(),
                p["charges"]["u"]["mean"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        periods,
        pairs(&[
            ("2026-01-01", "28.00"),
            // 56 * 10 / 28 = 20 units at 1.00; 56 * 18 / 28 = 36 at 2.00.
            ("2026-02-01", "20.00"),
            ("2026-02-11", "72.00"),
            ("2026-03-01", "168.00")
        ])
    );
    // A random model draws once per laid period: the parts of February add
    // up to one draw, whatever it is.
    write(
        dir.path(),
        "r.toml",
        "periods = 2\n[series.units]\nmodel = \"poisson\"\nlambda = \"280\"\n",
    );
    let run = outcome_in(
        &[
            "simulate",
            "mid.toml",
            "--scenario",
            "r.toml",
            "--runs",
            "5",
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc = json(&run.stdout);
    let starts: Vec<&str> = doc["periods"]
        .as_array()
        .expect("periods")
        .iter()
        .map(|p| p["period"]["start"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(starts, ["2026-01-01", "2026-02-01", "2026-02-11"]);
}

// Laws.

/// A contract whose charges cover the kinds the laws speak of; `extra`
/// adds amendments.
fn law_contract(extra: &str) -> CompiledContract {
    compiled(&format!(
        "[[charges]]\nid = \"grad\"\nkind = \"tiered\"\nmode = \"graduated\"\nquantity = \"units\"\n\
         tiers = [ {{ up_to = \"40\", unit_price = \"0\", flat_fee = \"5\" }}, {{ up_to = \"90\", unit_price = \"0.37\", flat_fee = \"2\" }}, {{ unit_price = \"0.113\" }} ]\n\
         [[charges]]\nid = \"vol\"\nkind = \"tiered\"\nmode = \"volume\"\nquantity = \"units\"\n\
         tiers = [ {{ up_to = \"50\", unit_price = \"0.7\" }}, {{ unit_price = \"0.333\", flat_fee = \"1.5\" }} ]\n\
         [[charges]]\nid = \"pack\"\nkind = \"package\"\nquantity = \"units\"\nsize = \"30\"\nprice = \"7.77\"\n\
         [[charges]]\nid = \"pack_down\"\nkind = \"package\"\nquantity = \"units\"\nsize = \"25\"\nprice = \"3.1\"\nround = \"down\"\n\
         [[charges]]\nid = \"u\"\nkind = \"unit\"\nquantity = \"units\"\nunit_price = \"0.0137\"\n\
         [[charges]]\nid = \"share\"\nkind = \"percentage\"\nbase = \"sales\"\nrate = \"0.029\"\n\
         [[charges]]\nid = \"plan\"\nkind = \"fixed\"\namount = \"99.99\"\n{extra}"
    ))
}

/// `(series, day of February, hour, value)` rows.
fn february_rows() -> impl Strategy<Value = Vec<(bool, u32, u32, Decimal)>> {
    prop::collection::vec(
        (
            any::<bool>(),
            1u32..=28,
            0u32..24,
            (0i64..5_000, 0u32..4).prop_map(|(m, s)| Decimal::new(m, s)),
        ),
        0..12,
    )
}

fn rows_source(rows: &[(bool, u32, u32, Decimal)]) -> MemorySource {
    let mut s = MemorySource::new();
    for &(units, day, hour, value) in rows {
        let at = chrono::NaiveDate::from_ymd_opt(2026, 2, day)
            .and_then(|d| d.and_hms_opt(hour, 0, 0))
            .expect("a February instant")
            .and_utc();
        let series = if units { "units" } else { "sales" };
        s.push(Observation::new(series, Stamp::At(at), value));
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// An amendment that sets fields to the values they already have cuts
    /// February; its parts' lines add up to the uncut line exactly for
    /// period-to-date `tiered` and `package`, and within one unit of the
    /// last place per part for `unit`, `percentage` and prorated `fixed`.
    #[test]
    fn parts_add_up_to_the_uncut_period(
        rows in february_rows(),
        cuts in prop::collection::btree_set(2u32..=28, 1..4),
    ) {
        let same: String = cuts
            .iter()
            .map(|day| amend(&format!("2026-02-{day:02}"), "charges.u.unit_price", "0.0137"))
            .collect();
        let uncut = law_contract("");
        let cut = law_contract(&same);
        prop_assert_eq!(cut.periods().len(), 3 + cuts.len());
        let s = rows_source(&rows);
        let whole = settle_all(&uncut, &s);
        let parts = settle_all(&cut, &s);
        let february = &whole[1];
        let feb_parts = &parts[1..2 + cuts.len()];
        let unit = d("0.01");
        for (i, line) in february.lines.iter().enumerate() {
            let sum: Decimal = feb_parts.iter().map(|p| p.lines[i].amount).sum();
            match line.charge.as_str() {
                "grad" | "vol" | "pack" | "pack_down" => {
                    prop_assert_eq!(sum, line.amount, "{}", line.charge);
                    let q: Decimal = feb_parts.iter().map(|p| p.lines[i].quantity.unwrap_or_default()).sum();
                    prop_assert_eq!(Some(q), line.quantity);
                }
                _ => {
                    let n = Decimal::from(feb_parts.len() as u64);
                    prop_assert!((sum - line.amount).abs() <= unit * n,
                        "{}: parts {} uncut {}", line.charge, sum, line.amount);
                }
            }
        }
        // The other months are as if nothing was amended.
        prop_assert_eq!(&whole[0], &parts[0]);
        prop_assert_eq!(&whole[2].lines, &parts[2 + cuts.len()].lines);
    }

    /// Statements of a contract with cut periods do not depend on the
    /// order of the rows.
    #[test]
    fn statements_do_not_depend_on_row_order(
        rows in february_rows(),
        cut in 2u32..=28,
        seed in any::<u64>(),
    ) {
        let c = law_contract(&amend(&format!("2026-02-{cut:02}"), "charges.pack.price", "8"));
        let mut shuffled = rows.clone();
        // A seeded Fisher-Yates shuffle, so a failure replays.
        let mut x = seed | 1;
        for i in (1..shuffled.len()).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            shuffled.swap(i, (x % (i as u64 + 1)) as usize);
        }
        prop_assert_eq!(
            settle_all(&c, &rows_source(&rows)),
            settle_all(&c, &rows_source(&shuffled))
        );
    }
}

#[test]
fn compare_and_sweep_run_contracts_with_cut_periods() {
    // Proves compare and sweep settle a contract with a cut period on the
    // same scenario as one without: linear 28, 56, 84 costs 168.00 uncut
    // and 28 + 20 + 72 + 168 = 288.00 repriced from Feb 11; at a level of
    // 280 a period, 840.00 against 280 + 100 + 360 + 560 = 1300.00.
    let dir = cut_contract_dir();
    write(
        dir.path(),
        "plain.toml",
        &contract(UNIT).replace("\"mid\"", "\"plain\""),
    );
    write(
        dir.path(),
        "s.toml",
        "[series.units]\nmodel = \"linear\"\nstart = \"28\"\nstep = \"28\"\n",
    );
    let run = outcome_in(
        &[
            "compare",
            "plain.toml",
            "mid.toml",
            "--scenario",
            "s.toml",
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc = json(&run.stdout);
    assert_eq!(doc["contracts"][0]["term"]["total"]["mean"], "168.00");
    assert_eq!(doc["contracts"][1]["term"]["total"]["mean"], "288.00");
    assert_eq!(doc["difference"][0]["mean"], "120.00");
    let run = outcome_in(
        &[
            "sweep",
            "plain.toml",
            "mid.toml",
            "--metric",
            "units",
            "--from",
            "0",
            "--to",
            "280",
            "--steps",
            "1",
            "--scenario",
            "s.toml",
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc = json(&run.stdout);
    assert_eq!(doc["levels"][1]["totals"]["plain"], "840.00");
    assert_eq!(doc["levels"][1]["totals"]["mid"], "1300.00");
}

#[test]
fn a_billing_run_streams_a_cut_contract_like_the_reference() {
    // Proves `settle DIR` (the streaming billing run) gives a contract with
    // a cut period the same CSV rows as settling its file alone.
    let dir = cut_contract_dir();
    let run_dir = dir.path().join("run");
    std::fs::create_dir(&run_dir).expect("mkdir");
    std::fs::copy(dir.path().join("mid.toml"), run_dir.join("mid.toml")).expect("copy");
    let args = |target: &'static str| {
        [
            "settle",
            target,
            "--metrics",
            "data.csv",
            "--as-of",
            "2026-03-02",
            "--format",
            "csv",
        ]
    };
    let streamed = outcome_in(&args("run"), dir.path());
    assert_eq!(streamed.code, 0, "{}", streamed.stderr);
    let alone = outcome_in(&args("mid.toml"), dir.path());
    assert_eq!(alone.code, 0, "{}", alone.stderr);
    assert_eq!(streamed.stdout, alone.stdout);
    assert!(
        streamed
            .stdout
            .contains("mid,2026-02-11,2026-03-01,u,unit,100,200.00"),
        "{}",
        streamed.stdout
    );
}
