//! Settlement worked by hand from the format page: every charge kind,
//! baseline kind, limit kind and scope, amendments, time zones, stubs,
//! rounding modes, data versions and the errors the spec names.
//!
//! Each expected amount is computed in the comment above its assertion from
//! the spec's formulas, not copied from the program's output.

use chrono::{DateTime, Utc};
use outcome_billing::metric::{MemorySource, Observation};
use outcome_billing::period::Stamp;
use outcome_billing::{CompiledContract, Contract, ErrorKind, Location, SettleOptions, Statement};
use rust_decimal::Decimal;

// ---------------------------------------------------------------------------
// Helpers

fn d(s: &str) -> Decimal {
    s.parse().unwrap_or_else(|e| panic!("decimal {s:?}: {e}"))
}

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap_or_else(|e| panic!("instant {s:?}: {e}"))
}

/// The top of a contract: the required fields, then `extra` top-level keys.
fn head(start: &str, end: &str, cadence: &str, extra: &str) -> String {
    format!(
        "format = 1\nid = \"t\"\ncustomer = \"acme\"\ncurrency = \"USD\"\n\
         start = \"{start}\"\nend = \"{end}\"\ncadence = \"{cadence}\"\n{extra}\n"
    )
}

fn compile(text: &str) -> CompiledContract {
    let contract = Contract::from_toml_str(text).unwrap_or_else(|e| panic!("load: {e}\n{text}"));
    CompiledContract::new(contract).unwrap_or_else(|e| panic!("compile: {e}\n{text}"))
}

fn stamp(s: &str) -> Stamp {
    Stamp::parse(s).unwrap_or_else(|e| panic!("{e}"))
}

fn ob(series: &str, at: &str, value: &str) -> Observation {
    Observation::new(series, stamp(at), d(value))
}

/// A version of observation `id`, recorded at `recorded`.
fn version(series: &str, id: &str, at: &str, value: &str, recorded: &str) -> Observation {
    Observation {
        id: Some(id.into()),
        recorded_at: Some(stamp(recorded)),
        ..ob(series, at, value)
    }
}

fn source(obs: Vec<Observation>) -> MemorySource {
    MemorySource::from_observations(obs).unwrap_or_else(|e| panic!("{e}"))
}

/// Settles every period of the term.
fn settle_all(c: &CompiledContract, src: &MemorySource) -> Vec<Statement> {
    settle_n(c, src, c.periods().len())
}

/// Settles the first `n` periods.
fn settle_n(c: &CompiledContract, src: &MemorySource, n: usize) -> Vec<Statement> {
    c.settle_through(src, n - 1, &SettleOptions::default())
        .unwrap_or_else(|e| panic!("settle: {e}"))
}

/// The amount of the line named `charge`, or none when it has no line.
fn line(st: &Statement, charge: &str) -> Option<Decimal> {
    st.lines
        .iter()
        .find(|l| l.charge == charge)
        .map(|l| l.amount)
}

/// The amount of the line named `charge`, which must be there.
fn amt(st: &Statement, charge: &str) -> Decimal {
    line(st, charge).unwrap_or_else(|| {
        panic!(
            "no line {charge} in {}: {:?}",
            st.period.label(),
            st.lines.iter().map(|l| &l.charge).collect::<Vec<_>>()
        )
    })
}

/// The amounts of `charge` in every statement.
fn amounts(sts: &[Statement], charge: &str) -> Vec<Decimal> {
    sts.iter()
        .map(|s| line(s, charge).unwrap_or_default())
        .collect()
}

fn ds(v: &[&str]) -> Vec<Decimal> {
    v.iter().map(|s| d(s)).collect()
}

/// One observation of series `q` at each date, with each value.
fn series(name: &str, points: &[(&str, &str)]) -> Vec<Observation> {
    points.iter().map(|(at, v)| ob(name, at, v)).collect()
}

const Q_SUM: &str = "[metrics.q]\nseries = \"q\"\naggregate = \"sum\"\n";

// ---------------------------------------------------------------------------
// fixed

#[test]
fn fixed_is_prorated_in_a_leading_and_trailing_stub_by_days() {
    // Proves a stub charges amount * d / D, D the days of the anchored period
    // it is cut from, and prorate = false charges the full amount.
    let c = compile(&format!(
        "{}[[charges]]\nid = \"plan\"\nkind = \"fixed\"\namount = \"300\"\n\
         [[charges]]\nid = \"flat\"\nkind = \"fixed\"\namount = \"300\"\nprorate = false\n",
        head(
            "2026-04-16",
            "2026-06-10",
            "monthly",
            "anchor = \"2026-05-01\""
        )
    ));
    let p = c.periods();
    assert_eq!(p.len(), 3);
    assert_eq!(
        (p[0].start.to_string(), p[0].end.to_string()),
        ("2026-04-16".into(), "2026-05-01".into())
    );
    assert_eq!(
        (p[2].start.to_string(), p[2].end.to_string()),
        ("2026-06-01".into(), "2026-06-10".into())
    );
    assert!(p[0].is_stub() && !p[1].is_stub() && p[2].is_stub());
    let sts = settle_all(&c, &MemorySource::new());
    // Apr 16 – May 1 is 15 of April's 30 days: 300 * 15 / 30 = 150;
    // Jun 1 – Jun 10 is 9 of June's 30: 300 * 9 / 30 = 90.
    assert_eq!(amounts(&sts, "plan"), ds(&["150", "300", "90"]));
    assert_eq!(amounts(&sts, "flat"), ds(&["300", "300", "300"]));
}

#[test]
fn fixed_proration_multiplies_before_it_divides() {
    // Proves amount * d / D is multiplied first: 0.01 * 15 / 30 = 0.005
    // exactly, which half_up rounds to 0.01 (dividing first gives
    // 0.0049999… and 0.00).
    let c = compile(&format!(
        "{}[[charges]]\nid = \"tiny\"\nkind = \"fixed\"\namount = \"0.01\"\n",
        head(
            "2026-04-16",
            "2026-06-01",
            "monthly",
            "anchor = \"2026-05-01\"\nrounding = { scale = 2, mode = \"half_up\" }"
        )
    ));
    let sts = settle_all(&c, &MemorySource::new());
    assert_eq!(amounts(&sts, "tiny"), ds(&["0.01", "0.01"]));
}

#[test]
fn fixed_trailing_stub_without_anchor_is_cut_from_the_period_as_laid() {
    // Proves without anchor periods are start + n months from start (Jan 31
    // + 1 month = Feb 28) and a trailing stub Feb 28 – Mar 15 is cut from
    // Feb 28 – Mar 31 (31 days): 310 * 15 / 31 = 150.
    let c = compile(&format!(
        "{}[[charges]]\nid = \"plan\"\nkind = \"fixed\"\namount = \"310\"\n",
        head("2026-01-31", "2026-03-15", "monthly", "")
    ));
    let p = c.periods();
    assert_eq!(p.len(), 2);
    assert_eq!(p[1].start.to_string(), "2026-02-28");
    assert_eq!(p[1].full_end.to_string(), "2026-03-31");
    let sts = settle_all(&c, &MemorySource::new());
    assert_eq!(amounts(&sts, "plan"), ds(&["310", "150"]));
}

// ---------------------------------------------------------------------------
// unit and package

#[test]
fn unit_is_quantity_times_price_and_reports_the_quantity() {
    // Proves a unit line is quantity * unit_price with the quantity shown:
    // 1000 resolutions * 0.99 = 990.00.
    let c = compile(&format!(
        "{}{Q_SUM}[[charges]]\nid = \"u\"\nkind = \"unit\"\nquantity = \"q\"\nunit_price = \"0.99\"\n",
        head("2026-01-01", "2026-02-01", "monthly", "")
    ));
    let src = source(series(
        "q",
        &[("2026-01-03", "400"), ("2026-01-20T10:00:00Z", "600")],
    ));
    let sts = settle_all(&c, &src);
    assert_eq!(amt(&sts[0], "u"), d("990"));
    assert_eq!(sts[0].lines[0].quantity, Some(d("1000")));
    assert_eq!(sts[0].lines[0].kind, "unit");
}

#[test]
fn package_charges_started_or_completed_packages() {
    // Proves package = ceil|floor(quantity / size) * price, quantity shown in
    // units: 250 units in packages of 100 at 10 is 30 (up) or 20 (down);
    // 200 is 20 either way; 99 is 10 up and 0 down; 0 is 0; free units go
    // in the quantity (max(q - 100, 0) of 250 = 150 → 2 packages = 20).
    let c = compile(&format!(
        "{}{Q_SUM}\
         [[charges]]\nid = \"up\"\nkind = \"package\"\nquantity = \"q\"\nsize = \"100\"\nprice = \"10\"\n\
         [[charges]]\nid = \"down\"\nkind = \"package\"\nquantity = \"q\"\nsize = \"100\"\nprice = \"10\"\nround = \"down\"\n\
         [[charges]]\nid = \"free\"\nkind = \"package\"\nquantity = \"max(q - 100, 0)\"\nsize = \"100\"\nprice = \"10\"\n",
        head("2026-01-01", "2026-05-01", "monthly", "")
    ));
    let src = source(series(
        "q",
        &[
            ("2026-01-02", "250"),
            ("2026-02-02", "200"),
            ("2026-03-02", "99"),
        ],
    ));
    let sts = settle_all(&c, &src);
    assert_eq!(amounts(&sts, "up"), ds(&["30", "20", "10", "0"]));
    assert_eq!(amounts(&sts, "down"), ds(&["20", "20", "0", "0"]));
    assert_eq!(amounts(&sts, "free"), ds(&["20", "10", "0", "0"]));
    assert_eq!(sts[0].lines[0].quantity, Some(d("250")));
    assert_eq!(sts[0].lines[2].quantity, Some(d("150")));
}

#[test]
fn package_with_a_negative_quantity_is_a_settlement_error() {
    // Proves a negative package quantity fails settlement (it is never
    // billed as a negative number of packages), naming the period.
    let c = compile(&format!(
        "{}{Q_SUM}[[charges]]\nid = \"p\"\nkind = \"package\"\nquantity = \"q\"\nsize = \"100\"\nprice = \"10\"\n",
        head("2026-01-01", "2026-03-01", "monthly", "")
    ));
    let src = source(series("q", &[("2026-01-02", "5"), ("2026-02-02", "-5")]));
    assert_eq!(settle_n(&c, &src, 1)[0].total, d("10"));
    let err = c
        .settle_through(&src, 1, &SettleOptions::default())
        .unwrap_err();
    assert!(matches!(err.location(), Location::Period { .. }), "{err}");
    assert!(
        err.location()
            .to_string()
            .contains("2026-02-01..2026-03-01"),
        "{err}"
    );
    assert!(err.message().contains("negative"), "{err}");
}

// ---------------------------------------------------------------------------
// tiered

fn tiers3() -> &'static str {
    "tiers = [ { up_to = \"100\", unit_price = \"1\", flat_fee = \"10\" },\n\
              { up_to = \"200\", unit_price = \"0.5\", flat_fee = \"5\" },\n\
              { unit_price = \"0.25\", flat_fee = \"2\" } ]\n"
}

#[test]
fn tiered_graduated_and_volume() {
    // Proves graduated prices each unit in its tier plus the flat fee of
    // every tier reached, volume prices all units at the total's tier plus
    // that tier's fee, and a tier holds quantities up to and including
    // up_to. Tiers: ≤100 at 1 (+10), ≤200 at 0.5 (+5), above at 0.25 (+2).
    let c = compile(&format!(
        "{}{Q_SUM}\
         [[charges]]\nid = \"g\"\nkind = \"tiered\"\nmode = \"graduated\"\nquantity = \"q\"\n{}\
         [[charges]]\nid = \"v\"\nkind = \"tiered\"\nmode = \"volume\"\nquantity = \"q\"\n{}",
        head("2026-01-01", "2026-05-01", "monthly", ""),
        tiers3(),
        tiers3()
    ));
    let src = source(series(
        "q",
        &[
            ("2026-01-02", "250"),
            ("2026-02-02", "100"),
            ("2026-04-02", "150"),
        ],
    ));
    let sts = settle_all(&c, &src);
    // Graduated: 250 → 100*1 + 100*0.5 + 50*0.25 + 10 + 5 + 2 = 179.5;
    // 100 → 100 + 10 (tier 2 not reached: 100 does not exceed 100) = 110;
    // 0 → the first tier is always reached: 10; 150 → 100 + 25 + 10 + 5 = 140.
    assert_eq!(amounts(&sts, "g"), ds(&["179.5", "110", "10", "140"]));
    // Volume: 250 → 250*0.25 + 2 = 64.5; 100 → 100*1 + 10 = 110;
    // 0 → 0 + 10; 150 → 150*0.5 + 5 = 80.
    assert_eq!(amounts(&sts, "v"), ds(&["64.5", "110", "10", "80"]));
    assert_eq!(sts[0].lines[0].quantity, Some(d("250")));
}

#[test]
fn tiered_with_a_negative_quantity_is_a_settlement_error() {
    // Proves a negative tiered quantity fails settlement.
    let c = compile(&format!(
        "{}{Q_SUM}[[charges]]\nid = \"g\"\nkind = \"tiered\"\nmode = \"graduated\"\nquantity = \"q\"\n{}",
        head("2026-01-01", "2026-02-01", "monthly", ""),
        tiers3()
    ));
    let src = source(series("q", &[("2026-01-02", "-1")]));
    let err = c
        .settle_through(&src, 0, &SettleOptions::default())
        .unwrap_err();
    assert!(matches!(err.location(), Location::Period { .. }), "{err}");
}

#[test]
fn tiered_accumulating_over_the_contract_year_bills_the_first_flat_fee_once() {
    // Proves accumulate = contract_year bills round(A(Y)) - round(A(Y - q)),
    // the first tier's flat fee once in the year's first period (even with
    // no quantity), and a fresh year starts again. Tiers: ≤100 at 1 with a
    // flat fee of 50, then 0.5; quarterly over two years.
    let c = compile(&format!(
        "{}{Q_SUM}[[charges]]\nid = \"t\"\nkind = \"tiered\"\nmode = \"graduated\"\nquantity = \"q\"\n\
         accumulate = \"contract_year\"\n\
         tiers = [ {{ up_to = \"100\", unit_price = \"1\", flat_fee = \"50\" }}, {{ unit_price = \"0.5\" }} ]\n",
        head("2026-01-01", "2028-01-01", "quarterly", "")
    ));
    let src = source(series(
        "q",
        &[
            ("2026-04-02", "60"),
            ("2026-07-02", "60"),
            ("2026-10-02", "30"),
            ("2027-01-02", "10"),
        ],
    ));
    let sts = settle_all(&c, &src);
    // Y: 0, 60, 120, 150 | 10, 10, 10, 10.
    // A(0) = 50; A(60) = 110; A(120) = 100 + 10 + 50 = 160; A(150) = 175.
    // Lines: 50, 110 - 50 = 60, 160 - 110 = 50, 175 - 160 = 15;
    // year two: A(10) = 60, then 60 - 60 = 0.
    assert_eq!(
        amounts(&sts, "t"),
        ds(&["50", "60", "50", "15", "60", "0", "0", "0"])
    );
    assert_eq!(sts[1].lines[0].quantity, Some(d("60")));
}

#[test]
fn tiered_accumulating_rounds_the_year_to_date_amounts_not_the_period() {
    // Proves the year-to-date difference of rounded amounts: at 0.005 a
    // unit, one unit a month gives round(0.005) = 0.00, then 0.01 - 0.00,
    // 0.02 - 0.01, 0.02 - 0.02: the lines add up to round(A(4)) = 0.02.
    let c = compile(&format!(
        "{}{Q_SUM}[[charges]]\nid = \"t\"\nkind = \"tiered\"\nmode = \"graduated\"\nquantity = \"q\"\n\
         accumulate = \"contract_year\"\ntiers = [ {{ unit_price = \"0.005\" }} ]\n",
        head("2026-01-01", "2026-05-01", "monthly", "")
    ));
    let src = source(series(
        "q",
        &[
            ("2026-01-02", "1"),
            ("2026-02-02", "1"),
            ("2026-03-02", "1"),
            ("2026-04-02", "1"),
        ],
    ));
    let sts = settle_all(&c, &src);
    assert_eq!(amounts(&sts, "t"), ds(&["0", "0.01", "0.01", "0"]));
}

#[test]
fn tiered_volume_accumulating_can_give_back_when_the_year_reaches_a_cheaper_tier() {
    // Proves the formula also holds for volume tiers: ≤100 at 1, then all
    // units at 0.5. 80 then 40: A(80) = 80, A(120) = 60, so 60 - 80 = -20.
    let c = compile(&format!(
        "{}{Q_SUM}[[charges]]\nid = \"t\"\nkind = \"tiered\"\nmode = \"volume\"\nquantity = \"q\"\n\
         accumulate = \"contract_year\"\n\
         tiers = [ {{ up_to = \"100\", unit_price = \"1\" }}, {{ unit_price = \"0.5\" }} ]\n",
        head("2026-01-01", "2026-03-01", "monthly", "")
    ));
    let src = source(series("q", &[("2026-01-02", "80"), ("2026-02-02", "40")]));
    let sts = settle_all(&c, &src);
    assert_eq!(amounts(&sts, "t"), ds(&["80", "-20"]));
}

#[test]
fn tier_rules_on_expression_values_are_checked_at_settlement() {
    // Proves rules that cannot be checked at load because a value is an
    // expression (tiers increasing) fail settlement in the period where the
    // value breaks them: up_to = edge is 100 in January and 0 in February.
    let c = compile(&format!(
        "{}{Q_SUM}[metrics.edge]\naggregate = \"sum\"\n\
         [[charges]]\nid = \"t\"\nkind = \"tiered\"\nmode = \"graduated\"\nquantity = \"q\"\n\
         tiers = [ {{ up_to = \"50\", unit_price = \"1\" }}, {{ up_to = \"edge\", unit_price = \"0.5\" }}, {{ unit_price = \"0.1\" }} ]\n",
        head("2026-01-01", "2026-03-01", "monthly", "")
    ));
    let src = source(vec![
        ob("edge", "2026-01-02", "100"),
        ob("q", "2026-01-02", "110"),
    ]);
    // 50 * 1 + 50 * 0.5 + 10 * 0.1 = 76.
    assert_eq!(settle_n(&c, &src, 1)[0].total, d("76"));
    let err = c
        .settle_through(&src, 1, &SettleOptions::default())
        .unwrap_err();
    assert!(matches!(err.location(), Location::Period { .. }), "{err}");
    assert!(
        err.location()
            .to_string()
            .contains("2026-02-01..2026-03-01"),
        "{err}"
    );
    assert!(err.message().contains("tiers[1]"), "{err}");
}

// ---------------------------------------------------------------------------
// percentage

#[test]
fn percentage_is_base_times_rate_with_expressions() {
    // Proves base * rate with expression fields: (1000 - 100) * (0.5 * 0.1)
    // = 45, and a plain 2.9% of 1000 = 29.
    let c = compile(&format!(
        "{}[params]\nr = \"0.1\"\n[metrics.payments]\naggregate = \"sum\"\n\
         [[charges]]\nid = \"fee\"\nkind = \"percentage\"\nbase = \"payments\"\nrate = \"0.029\"\n\
         [[charges]]\nid = \"share\"\nkind = \"percentage\"\nbase = \"payments - 100\"\nrate = \"0.5 * r\"\n",
        head("2026-01-01", "2026-02-01", "monthly", "")
    ));
    let src = source(series(
        "payments",
        &[("2026-01-02", "400"), ("2026-01-09", "600")],
    ));
    let sts = settle_all(&c, &src);
    assert_eq!(amt(&sts[0], "fee"), d("29"));
    assert_eq!(amt(&sts[0], "share"), d("45"));
}

#[test]
fn percentage_per_observation_caps_each_and_rounds_the_exact_sum_once() {
    // Proves per_observation charges value * rate + fixed per observation,
    // at most max, sums exactly and rounds once: 100 → 3.20, 1000 → 29.30
    // capped to 5.00, 0.5 → 0.3145 twice; sum 8.829 → 8.83 (rounding each
    // would give 8.82).
    let c = compile(&format!(
        "{}[metrics.payments]\naggregate = \"sum\"\n\
         [[charges]]\nid = \"processing\"\nkind = \"percentage\"\nbase = \"payments\"\nrate = \"0.029\"\n\
         per_observation = {{ fixed = \"0.30\", max = \"5.00\" }}\n",
        head("2026-01-01", "2026-02-01", "monthly", "")
    ));
    let src = source(series(
        "payments",
        &[
            ("2026-01-02", "100"),
            ("2026-01-03", "1000"),
            ("2026-01-04", "0.5"),
            ("2026-01-05", "0.5"),
        ],
    ));
    assert_eq!(amt(&settle_all(&c, &src)[0], "processing"), d("8.83"));
}

#[test]
fn percentage_per_observation_raises_each_to_min() {
    // Proves min raises each observation's charge: 1 → 0.029 + 0.30 = 0.329
    // raised to 0.50; 10 → 0.59 stays; total 1.09. Fixed defaults to 0:
    // a second charge without fixed gives 0.029 → 0.10 and 0.29 → 0.39.
    let c = compile(&format!(
        "{}[metrics.payments]\naggregate = \"sum\"\n\
         [[charges]]\nid = \"a\"\nkind = \"percentage\"\nbase = \"payments\"\nrate = \"0.029\"\n\
         per_observation = {{ fixed = \"0.30\", min = \"0.50\" }}\n\
         [[charges]]\nid = \"b\"\nkind = \"percentage\"\nbase = \"payments\"\nrate = \"0.029\"\n\
         per_observation = {{ min = \"0.10\" }}\n",
        head("2026-01-01", "2026-02-01", "monthly", "")
    ));
    let src = source(series(
        "payments",
        &[("2026-01-02", "1"), ("2026-01-03", "10")],
    ));
    let sts = settle_all(&c, &src);
    assert_eq!(amt(&sts[0], "a"), d("1.09"));
    assert_eq!(amt(&sts[0], "b"), d("0.39"));
}

// ---------------------------------------------------------------------------
// gain_share

/// Settles one period of a gain share whose actual is `actual`, baseline a
/// fixed 1000, and whose other fields are `fields`.
fn gain_share(actual: &str, fields: &str) -> Decimal {
    let c = compile(&format!(
        "{}[params]\na = \"{actual}\"\n[baselines.base]\nkind = \"fixed\"\nvalue = \"1000\"\n\
         [[charges]]\nid = \"gs\"\nkind = \"gain_share\"\nactual = \"a\"\nbaseline = \"base\"\n{fields}",
        head("2026-01-01", "2026-02-01", "monthly", "")
    ));
    amt(&settle_all(&c, &MemorySource::new())[0], "gs")
}

#[test]
fn gain_share_increase_and_decrease() {
    // Proves I = actual - baseline (increase) or baseline - actual
    // (decrease), V = I * value_per_unit, paid share * V; no losses side
    // means a loss costs nothing.
    let inc = "direction = \"increase\"\nvalue_per_unit = \"2\"\nshare = \"0.5\"\n";
    // (1200 - 1000) * 2 * 0.5 = 200
    assert_eq!(gain_share("1200", inc), d("200"));
    // A loss without `losses`: 0.
    assert_eq!(gain_share("900", inc), d("0"));
    let dec = "direction = \"decrease\"\nshare = \"0.5\"\n";
    // (1000 - 900) * 1 * 0.5 = 50
    assert_eq!(gain_share("900", dec), d("50"));
    assert_eq!(gain_share("1100", dec), d("0"));
}

#[test]
fn gain_share_relative_threshold_first_dollar_and_above() {
    // Proves a relative threshold is relative * baseline * value_per_unit
    // (0.02 * 1000 * 2 = 40 in money), that V must reach it (V >= T), and
    // that first_dollar shares all of V while above_threshold shares V - T.
    let first = "direction = \"increase\"\nvalue_per_unit = \"2\"\nshare = \"0.5\"\n\
                 threshold = { relative = \"0.02\" }\n";
    let above = format!("{first}sharing = \"above_threshold\"\n");
    // V = 30 < 40: nothing.
    assert_eq!(gain_share("1015", first), d("0"));
    assert_eq!(gain_share("1015", &above), d("0"));
    // V = 40 = T: 20 first dollar, 0 above.
    assert_eq!(gain_share("1020", first), d("20"));
    assert_eq!(gain_share("1020", &above), d("0"));
    // V = 200: 100 first dollar, 0.5 * 160 = 80 above.
    assert_eq!(gain_share("1100", first), d("100"));
    assert_eq!(gain_share("1100", &above), d("80"));
}

#[test]
fn gain_share_absolute_threshold() {
    // Proves an absolute threshold is money: V = 400 < 500 gives 0; V = 600
    // gives 0.5 * 600 = 300 first dollar, 0.5 * 100 = 50 above.
    let first = "direction = \"increase\"\nshare = \"0.5\"\nthreshold = { absolute = \"500\" }\n";
    let above = format!("{first}sharing = \"above_threshold\"\n");
    assert_eq!(gain_share("1400", first), d("0"));
    assert_eq!(gain_share("1600", first), d("300"));
    assert_eq!(gain_share("1600", &above), d("50"));
}

#[test]
fn gain_share_caps_by_amount_and_relative() {
    // Proves the gain is at most cap: 0.5 * 400 = 200 capped at amount 100,
    // and at relative 0.03 * 1000 * 2 = 60.
    let base = "direction = \"increase\"\nvalue_per_unit = \"2\"\nshare = \"0.5\"\n";
    assert_eq!(
        gain_share("1200", &format!("{base}cap = {{ amount = \"100\" }}\n")),
        d("100")
    );
    assert_eq!(
        gain_share("1200", &format!("{base}cap = {{ relative = \"0.03\" }}\n")),
        d("60")
    );
    // Below the cap it does nothing: 0.5 * 2 * 20 = 20.
    assert_eq!(
        gain_share("1020", &format!("{base}cap = {{ amount = \"100\" }}\n")),
        d("20")
    );
}

#[test]
fn gain_share_losses_take_their_own_defaults_not_the_gain_sides() {
    // Proves fields left out of `losses` default to no threshold, first
    // dollar and no cap, whatever the gain side says: L = 1000 with share
    // 0.25 gives -250 (the gain side's threshold 500 above-threshold would
    // give -125, its cap 100 would give -100).
    let fields = "direction = \"increase\"\nshare = \"0.5\"\nthreshold = { absolute = \"500\" }\n\
                  sharing = \"above_threshold\"\ncap = { amount = \"100\" }\n\
                  losses = { share = \"0.25\" }\n";
    assert_eq!(gain_share("0", fields), d("-250"));
    // L = 200: -50 (the gain threshold of 500 would give 0).
    assert_eq!(gain_share("800", fields), d("-50"));
    // The gain side still uses its own: V = 1000 → 0.5 * 500 = 250, capped 100.
    assert_eq!(gain_share("2000", fields), d("100"));
}

#[test]
fn gain_share_losses_with_threshold_sharing_and_cap() {
    // Proves the loss side's threshold, above_threshold sharing and cap:
    // threshold 100, share 0.5, cap 30. L = 50 < 100: 0; L = 150:
    // -(0.5 * 50) = -25; L = 200: -(0.5 * 100) = -50, at least -30.
    let fields = "direction = \"decrease\"\nshare = \"0.5\"\n\
                  losses = { share = \"0.5\", threshold = { absolute = \"100\" }, \
                  sharing = \"above_threshold\", cap = { amount = \"30\" } }\n";
    assert_eq!(gain_share("1050", fields), d("0"));
    assert_eq!(gain_share("1150", fields), d("-25"));
    assert_eq!(gain_share("1200", fields), d("-30"));
    // A relative loss cap: 0.01 * 1000 = 10.
    let relative = "direction = \"decrease\"\nshare = \"0.5\"\n\
                    losses = { share = \"0.5\", cap = { relative = \"0.01\" } }\n";
    assert_eq!(gain_share("1200", relative), d("-10"));
    // A relative loss threshold: 0.1 * 1000 = 100; L = 150 first dollar:
    // -(0.5 * 150) = -75.
    let rel_threshold = "direction = \"decrease\"\nshare = \"0.5\"\n\
                         losses = { share = \"0.5\", threshold = { relative = \"0.1\" } }\n";
    assert_eq!(gain_share("1150", rel_threshold), d("-75"));
    assert_eq!(gain_share("1050", rel_threshold), d("0"));
}

// ---------------------------------------------------------------------------
// bands

#[test]
fn bands_give_amounts_or_percentages_of_earlier_charges() {
    // Proves the band with from <= kpi < to is used, a percent band is
    // percent/100 of the named charges' rounded amounts (negative for a
    // credit), and a KPI in no band gives 0.
    let c = compile(&format!(
        "{}{Q_SUM}[metrics.uptime]\nseries = \"uptime\"\naggregate = \"min\"\n\
         [[charges]]\nid = \"plan\"\nkind = \"fixed\"\namount = \"100\"\n\
         [[charges]]\nid = \"usage\"\nkind = \"unit\"\nquantity = \"q\"\nunit_price = \"1\"\n\
         [[charges]]\nid = \"credit\"\nkind = \"bands\"\nkpi = \"uptime\"\n\
         bands = [ {{ from = \"99.0\", to = \"99.9\", percent = \"-10\", of = [\"plan\", \"usage\"] }},\n\
                   {{ to = \"99.0\", percent = \"-25\", of = [\"plan\"] }} ]\n\
         [[charges]]\nid = \"bonus\"\nkind = \"bands\"\nkpi = \"q\"\nbands = [ {{ from = \"40\", amount = \"100\" }} ]\n",
        head("2026-01-01", "2026-06-01", "monthly", "")
    ));
    let mut obs = series(
        "uptime",
        &[
            ("2026-01-02", "99.5"),
            ("2026-02-02", "98"),
            ("2026-03-02", "99.95"),
            ("2026-04-02", "99.9"),
            ("2026-05-02", "99.0"),
        ],
    );
    obs.extend(series(
        "q",
        &[
            ("2026-01-02", "50"),
            ("2026-02-02", "50"),
            ("2026-03-02", "30"),
            ("2026-04-02", "40"),
            ("2026-05-02", "50"),
        ],
    ));
    let sts = settle_all(&c, &source(obs));
    // 99.5: -10% of 150 = -15; 98: -25% of 100 = -25; 99.95: no band;
    // 99.9: `to` is exclusive, no band; 99.0: `from` is inclusive, -15.
    assert_eq!(
        amounts(&sts, "credit"),
        ds(&["-15", "-25", "0", "0", "-15"])
    );
    // q >= 40 gives the bonus; 30 is in no band.
    assert_eq!(
        amounts(&sts, "bonus"),
        ds(&["100", "100", "0", "100", "100"])
    );
    // Every charge has a line, also at 0.
    assert_eq!(sts[2].lines.len(), 4);
}

#[test]
fn bands_percent_reads_rounded_amounts() {
    // Proves percent applies to the named charge's rounded amount: usage
    // 1.0049 rounds to 1.00, and 150% of it is 1.50 (not 1.51 from 1.50735).
    let c = compile(&format!(
        "{}[[charges]]\nid = \"usage\"\nkind = \"unit\"\nquantity = \"1\"\nunit_price = \"1.0049\"\n\
         [[charges]]\nid = \"extra\"\nkind = \"bands\"\nkpi = \"1\"\n\
         bands = [ {{ percent = \"150\", of = [\"usage\"] }} ]\n",
        head("2026-01-01", "2026-02-01", "monthly", "")
    ));
    let sts = settle_all(&c, &MemorySource::new());
    assert_eq!(amt(&sts[0], "usage"), d("1.00"));
    assert_eq!(amt(&sts[0], "extra"), d("1.50"));
}

// ---------------------------------------------------------------------------
// corridor

#[test]
fn corridor_pays_the_deviation_in_bands_in_both_directions() {
    // Proves d = (actual - target) / target, the amount target * Σ share *
    // (part of |d| in the band), signed by direction. Bands: 0–5% share 0,
    // 5–10% share 0.5, above 10% share 0.8; target 1000.
    let bands = "bands = [ { to = \"0.05\", share = \"0\" }, { from = \"0.05\", to = \"0.10\", share = \"0.5\" },\n\
                 { from = \"0.10\", share = \"0.8\" } ]\n";
    let c = compile(&format!(
        "{}[metrics.cost]\naggregate = \"sum\"\n\
         [[charges]]\nid = \"over\"\nkind = \"corridor\"\nactual = \"cost\"\ntarget = \"1000\"\n\
         direction = \"pay_overrun\"\n{bands}\
         [[charges]]\nid = \"under\"\nkind = \"corridor\"\nactual = \"cost\"\ntarget = \"1000\"\n\
         direction = \"pay_underrun\"\n{bands}",
        head("2026-01-01", "2026-04-01", "monthly", "")
    ));
    let src = source(series(
        "cost",
        &[
            ("2026-01-02", "1150"),
            ("2026-02-02", "880"),
            ("2026-03-02", "1030"),
        ],
    ));
    let sts = settle_all(&c, &src);
    // 1150: |d| = 0.15 → 0.05*0 + 0.05*0.5 + 0.05*0.8 = 0.065 → 65.
    // 880: |d| = 0.12 → 0.025 + 0.02*0.8 = 0.041 → 41, actual below target.
    // 1030: |d| = 0.03 → 0.
    assert_eq!(amounts(&sts, "over"), ds(&["65", "-41", "0"]));
    assert_eq!(amounts(&sts, "under"), ds(&["-65", "41", "0"]));
}

#[test]
fn corridor_with_a_zero_target_is_a_division_by_zero_error() {
    // Proves target 0 fails settlement as a division by zero in its period.
    let c = compile(&format!(
        "{}[metrics.cost]\naggregate = \"sum\"\n[metrics.goal]\naggregate = \"sum\"\n\
         [[charges]]\nid = \"over\"\nkind = \"corridor\"\nactual = \"cost\"\ntarget = \"goal\"\n\
         direction = \"pay_overrun\"\nbands = [ {{ share = \"1\" }} ]\n",
        head("2026-01-01", "2026-02-01", "monthly", "")
    ));
    let src = source(series("cost", &[("2026-01-02", "5")]));
    let err = c
        .settle_through(&src, 0, &SettleOptions::default())
        .unwrap_err();
    assert!(matches!(err.location(), Location::Period { .. }));
    assert!(err.message().contains("division by zero"), "{err}");
    assert!(
        err.location()
            .to_string()
            .contains("2026-01-01..2026-02-01"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------
// expr, and charges named by later charges

#[test]
fn expr_charge_and_a_charge_naming_an_earlier_charge() {
    // Proves an expr charge is its expression's value (max(12 - 10, 0) * 2.5
    // = 5), and that a later charge reads an earlier charge's rounded amount
    // (1.0049 → 1.00, so 1.5 * it = 1.50, not 1.51).
    let c = compile(&format!(
        "{}[metrics.leads]\naggregate = \"sum\"\n\
         [[charges]]\nid = \"lead_fee\"\nkind = \"expr\"\namount = \"max(leads - 10, 0) * 2.5\"\n\
         [[charges]]\nid = \"a\"\nkind = \"unit\"\nquantity = \"1\"\nunit_price = \"1.0049\"\n\
         [[charges]]\nid = \"b\"\nkind = \"expr\"\namount = \"a * 1.5\"\n\
         [[charges]]\nid = \"c\"\nkind = \"percentage\"\nbase = \"a + lead_fee\"\nrate = \"0.1\"\n",
        head("2026-01-01", "2026-03-01", "monthly", "")
    ));
    let src = source(series(
        "leads",
        &[("2026-01-02", "12"), ("2026-02-02", "3")],
    ));
    let sts = settle_all(&c, &src);
    assert_eq!(amounts(&sts, "lead_fee"), ds(&["5", "0"]));
    assert_eq!(amounts(&sts, "b"), ds(&["1.50", "1.50"]));
    // 0.1 * (1.00 + 5) = 0.60; 0.1 * 1.00 = 0.10.
    assert_eq!(amounts(&sts, "c"), ds(&["0.60", "0.10"]));
}

// ---------------------------------------------------------------------------
// baselines

#[test]
fn baseline_fixed_and_expr() {
    // Proves a fixed baseline is its value in every period and an expr
    // baseline is evaluated per period: 5000 + 12.5 * hdd.
    let c = compile(&format!(
        "{}[metrics.hdd]\naggregate = \"sum\"\n\
         [baselines.flat]\nkind = \"fixed\"\nvalue = \"120000\"\n\
         [baselines.adjusted]\nkind = \"expr\"\nexpr = \"5000 + 12.5 * hdd\"\n\
         [[charges]]\nid = \"f\"\nkind = \"expr\"\namount = \"flat\"\n\
         [[charges]]\nid = \"e\"\nkind = \"expr\"\namount = \"adjusted\"\n",
        head("2026-01-01", "2026-03-01", "monthly", "")
    ));
    let src = source(series(
        "hdd",
        &[("2026-01-02", "100"), ("2026-02-02", "40")],
    ));
    let sts = settle_all(&c, &src);
    assert_eq!(amounts(&sts, "f"), ds(&["120000", "120000"]));
    assert_eq!(amounts(&sts, "e"), ds(&["6250", "5500"]));
}

#[test]
fn baseline_historical_is_the_mean_of_laid_periods() {
    // Proves a historical baseline lays periods from `from` to `to` by the
    // cadence, reduces each with the metric's aggregate and takes the mean
    // over the laid periods, an empty one counting 0 under missing = zero:
    // Jan 2025 100 + 20 + 30, Feb 90, Mar 60, Apr none → (150 + 90 + 60 + 0)
    // / 4 = 75 (the mean of the five observations would be 60).
    let c = compile(&format!(
        "{}[metrics.tickets]\naggregate = \"sum\"\n\
         [baselines.before]\nkind = \"historical\"\nmetric = \"tickets\"\nfrom = \"2025-01-01\"\nto = \"2025-05-01\"\n\
         [[charges]]\nid = \"b\"\nkind = \"expr\"\namount = \"before\"\n\
         [[charges]]\nid = \"saved\"\nkind = \"gain_share\"\nactual = \"tickets\"\nbaseline = \"before\"\n\
         direction = \"decrease\"\nshare = \"1\"\n",
        head("2026-01-01", "2026-02-01", "monthly", "")
    ));
    let src = source(series(
        "tickets",
        &[
            ("2025-01-02", "100"),
            ("2025-01-10", "20"),
            ("2025-01-20", "30"),
            ("2025-02-02", "90"),
            ("2025-03-02", "60"),
            ("2026-01-05", "70"),
        ],
    ));
    let sts = settle_all(&c, &src);
    assert_eq!(amt(&sts[0], "b"), d("75"));
    // 75 - 70 = 5.
    assert_eq!(amt(&sts[0], "saved"), d("5"));
}

#[test]
fn baseline_high_water_mark_skips_periods_without_observations() {
    // Proves a high-water mark is the greater of `initial` and the metric
    // in every earlier period, and that an earlier period without an
    // observation leaves it unchanged (no error, though `last` defaults to
    // missing = error). nav: 110, none, 105, 130, 90, none; initial 100.
    let c = compile(&format!(
        "{}[metrics.nav]\naggregate = \"last\"\n\
         [baselines.hwm]\nkind = \"high_water_mark\"\nmetric = \"nav\"\ninitial = \"100\"\n\
         [[charges]]\nid = \"mark\"\nkind = \"expr\"\namount = \"hwm\"\n",
        head("2026-01-01", "2026-07-01", "monthly", "")
    ));
    let src = source(series(
        "nav",
        &[
            ("2026-01-02", "110"),
            ("2026-03-02", "105"),
            ("2026-04-02", "130"),
            ("2026-05-02", "90"),
        ],
    ));
    let sts = settle_all(&c, &src);
    // Before each period: 100; 110; 110 (Feb had none); 110; 130; 130.
    assert_eq!(
        amounts(&sts, "mark"),
        ds(&["100", "110", "110", "110", "130", "130"])
    );
}

#[test]
fn baseline_high_water_mark_with_an_amended_initial() {
    // Proves an amended `initial` raises the mark to the greater of its
    // state and the new initial, and later values still raise it: 110, 105,
    // 130; initial 100 amended to 120 from March.
    let c = compile(&format!(
        "{}[metrics.nav]\naggregate = \"last\"\n\
         [baselines.hwm]\nkind = \"high_water_mark\"\nmetric = \"nav\"\ninitial = \"100\"\n\
         [[charges]]\nid = \"mark\"\nkind = \"expr\"\namount = \"hwm\"\n\
         [[amendments]]\neffective = \"2026-03-01\"\nset = {{ \"baselines.hwm.initial\" = \"120\" }}\n",
        head("2026-01-01", "2026-06-01", "monthly", "")
    ));
    let src = source(series(
        "nav",
        &[
            ("2026-01-02", "110"),
            ("2026-02-02", "105"),
            ("2026-03-02", "130"),
        ],
    ));
    let sts = settle_all(&c, &src);
    // 100; 110; max(110, 120) = 120; then 130 from April.
    assert_eq!(
        amounts(&sts, "mark"),
        ds(&["100", "110", "120", "130", "130"])
    );
}

#[test]
fn baseline_high_water_mark_never_falls_when_initial_is_lowered() {
    // Proves a high-water mark never falls: it "becomes the greater of its
    // state and a new initial", and its state already holds the old initial
    // (the mark was 100 in January and February). nav 90, 95; initial 100
    // amended to 50 from March: the mark stays 100 (not 95).
    let c = compile(&format!(
        "{}[metrics.nav]\naggregate = \"last\"\n\
         [baselines.hwm]\nkind = \"high_water_mark\"\nmetric = \"nav\"\ninitial = \"100\"\n\
         [[charges]]\nid = \"mark\"\nkind = \"expr\"\namount = \"hwm\"\n\
         [[amendments]]\neffective = \"2026-03-01\"\nset = {{ \"baselines.hwm.initial\" = \"50\" }}\n",
        head("2026-01-01", "2026-04-01", "monthly", "")
    ));
    let src = source(series("nav", &[("2026-01-02", "90"), ("2026-02-02", "95")]));
    let sts = settle_all(&c, &src);
    assert_eq!(amounts(&sts, "mark"), ds(&["100", "100", "100"]));
}

// ---------------------------------------------------------------------------
// limits

/// A contract charging `q * 1` per period as `usage`, with `limits` after it.
fn limited(start: &str, end: &str, cadence: &str, limits: &str) -> CompiledContract {
    compile(&format!(
        "{}{Q_SUM}[[charges]]\nid = \"usage\"\nkind = \"unit\"\nquantity = \"q\"\nunit_price = \"1\"\n{limits}",
        head(start, end, cadence, "")
    ))
}

/// One observation of `q` on the second day of each month from `start`'s
/// month on, quarter by quarter when `months` is 3.
fn per_period(year: i32, first_month: u32, months: u32, values: &[&str]) -> MemorySource {
    let mut obs = Vec::new();
    for (k, v) in values.iter().enumerate() {
        let m0 = first_month - 1 + k as u32 * months;
        let (y, m) = (year + (m0 / 12) as i32, m0 % 12 + 1);
        obs.push(ob("q", &format!("{y:04}-{m:02}-02"), v));
    }
    source(obs)
}

#[test]
fn cap_per_period() {
    // Proves a period cap adds min(0, amount - base), only where not zero:
    // 150 over a cap of 100 gives -50; 80 gives no line.
    let c = limited(
        "2026-01-01",
        "2026-03-01",
        "monthly",
        "[[limits]]\nid = \"cap\"\nkind = \"cap\"\namount = \"100\"\nscope = \"period\"\n",
    );
    let sts = settle_all(&c, &per_period(2026, 1, 1, &["150", "80"]));
    assert_eq!(line(&sts[0], "cap"), Some(d("-50")));
    assert_eq!(sts[0].total, d("100"));
    assert_eq!(line(&sts[1], "cap"), None);
    assert_eq!(sts[0].lines[1].kind, "cap");
}

#[test]
fn cap_per_contract_year_never_claws_back_and_resets() {
    // Proves the running-total cap: min(0, max(amount - C - base,
    // -max(base, 0))), C = earlier bases + earlier lines; a negative base
    // frees room but is never pushed positive; a new contract year resets.
    // Quarterly, cap 250 a year; bases 100, 100, 100, -30 | 100, 100, 100, 100.
    let c = limited(
        "2026-01-01",
        "2028-01-01",
        "quarterly",
        "[[limits]]\nid = \"cap\"\nkind = \"cap\"\namount = \"250\"\nscope = \"contract_year\"\n",
    );
    let src = per_period(
        2026,
        1,
        3,
        &["100", "100", "100", "-30", "100", "100", "100", "100"],
    );
    let sts = settle_all(&c, &src);
    // C: 0 → 0; 100 → 0; 200 → 250-200-100 = -50; C = 250, base -30:
    // 250-250+30 = 30 → min(0, max(30, 0)) = 0 (no line).
    // Year two: 0, 0, -50, -100 (250 - 250 - 100 = -100, at least -100).
    assert_eq!(
        amounts(&sts, "cap"),
        ds(&["0", "0", "-50", "0", "0", "0", "-50", "-100"])
    );
    assert_eq!(line(&sts[3], "cap"), None);
}

#[test]
fn cap_over_the_term_counts_freed_room() {
    // Proves a term cap over all periods, and that a negative base lowers
    // the running total so a later period may use the room: cap 150; bases
    // 100, 100, -40, 100. C: 0 → 0; 100 → 150-100-100 = -50 (C = 150);
    // -40 → 150-150+40 = 40 → 0 (C = 110); 100 → 150-110-100 = -60.
    let c = limited(
        "2026-01-01",
        "2026-05-01",
        "monthly",
        "[[limits]]\nkind = \"cap\"\namount = \"150\"\nscope = \"term\"\n",
    );
    let sts = settle_all(&c, &per_period(2026, 1, 1, &["100", "100", "-40", "100"]));
    // The limit has no id: its line is `limits[0]`.
    assert_eq!(amounts(&sts, "limits[0]"), ds(&["0", "-50", "0", "-60"]));
    let term: Decimal = sts.iter().map(|s| s.total).sum();
    assert_eq!(term, d("150"));
}

#[test]
fn floor_per_period() {
    // Proves a period floor adds max(0, amount - base): base 60 → 40,
    // 120 → no line, -20 → 120.
    let c = limited(
        "2026-01-01",
        "2026-04-01",
        "monthly",
        "[[limits]]\nid = \"min\"\nkind = \"floor\"\namount = \"100\"\nscope = \"period\"\n",
    );
    let sts = settle_all(&c, &per_period(2026, 1, 1, &["60", "120", "-20"]));
    assert_eq!(line(&sts[0], "min"), Some(d("40")));
    assert_eq!(line(&sts[1], "min"), None);
    assert_eq!(line(&sts[2], "min"), Some(d("120")));
    assert_eq!(sts[0].lines[1].kind, "floor");
}

#[test]
fn floor_per_contract_year_trues_up_in_the_last_period_only() {
    // Proves a contract-year floor adds nothing until the year's last
    // period, which carries max(0, amount - C - base): bases 100 × 4 under
    // 500 → 100 in Q4; year two 600, 0, 0, 0 → nothing.
    let c = limited(
        "2026-01-01",
        "2028-01-01",
        "quarterly",
        "[[limits]]\nid = \"commit\"\nkind = \"floor\"\namount = \"500\"\nscope = \"contract_year\"\n",
    );
    let src = per_period(2026, 1, 3, &["100", "100", "100", "100", "600"]);
    let sts = settle_all(&c, &src);
    assert_eq!(
        amounts(&sts, "commit"),
        ds(&["0", "0", "0", "100", "0", "0", "0", "0"])
    );
    assert!(
        sts.iter()
            .enumerate()
            .all(|(i, s)| i == 3 || line(s, "commit").is_none())
    );
}

#[test]
fn floor_over_the_term_trues_up_in_the_last_period() {
    // Proves a term floor: bases 200, 300, 100 under 1000 → 400 in the last.
    let c = limited(
        "2026-01-01",
        "2026-04-01",
        "monthly",
        "[[limits]]\nid = \"commit\"\nkind = \"floor\"\namount = \"1000\"\nscope = \"term\"\n",
    );
    let sts = settle_all(&c, &per_period(2026, 1, 1, &["200", "300", "100"]));
    assert_eq!(amounts(&sts, "commit"), ds(&["0", "0", "400"]));
}

#[test]
fn floor_contract_year_with_a_short_last_year() {
    // Proves the last contract year may be short and its last period (the
    // term's last) carries the true-up: 18 months, floor 100 a year; year
    // two runs Jan–Jun 2027 with bases 10 each → 100 - 50 - 10 = 40.
    let c = limited(
        "2026-01-01",
        "2027-07-01",
        "monthly",
        "[[limits]]\nid = \"commit\"\nkind = \"floor\"\namount = \"100\"\nscope = \"contract_year\"\n",
    );
    let mut values = vec!["10"; 18];
    values[0] = "200";
    let sts = settle_all(&c, &per_period(2026, 1, 1, &values));
    let commit = amounts(&sts, "commit");
    // Year one: 200 + 11*10 = 310 ≥ 100: no true-up.
    assert!(commit[..12].iter().all(|a| a.is_zero()), "{commit:?}");
    assert_eq!(commit[17], d("40"));
}

#[test]
fn credit_per_contract_year_is_drawn_and_expires() {
    // Proves a credit is drawn by positive bases, -min(balance, max(base,
    // 0)), and what is unused expires when the scope ends. 150 a year,
    // quarterly; bases 100, 100, -20, 50 | 30.
    let c = limited(
        "2026-01-01",
        "2028-01-01",
        "quarterly",
        "[[limits]]\nid = \"prepaid\"\nkind = \"credit\"\namount = \"150\"\nscope = \"contract_year\"\n",
    );
    let src = per_period(2026, 1, 3, &["100", "100", "-20", "50", "30"]);
    let sts = settle_all(&c, &src);
    // -100 (50 left), -50 (0 left), none (negative base draws nothing and
    // is not made positive), none; year two: a fresh 150, -30.
    assert_eq!(
        amounts(&sts, "prepaid"),
        ds(&["-100", "-50", "0", "0", "-30", "0", "0", "0"])
    );
    assert_eq!(sts[0].lines[1].kind, "credit");
}

#[test]
fn credit_per_period_and_over_the_term() {
    // Proves a period credit is a fresh balance each period (20 of 50, 20
    // of 30, 5 of 5) and a term credit is one balance for the whole term
    // (the example's onboarding credit: 40 of 50 + ... drawn until gone).
    let c = limited(
        "2026-01-01",
        "2026-04-01",
        "monthly",
        "[[limits]]\nid = \"monthly\"\nkind = \"credit\"\namount = \"20\"\nscope = \"period\"\n\
         [[limits]]\nid = \"welcome\"\nkind = \"credit\"\namount = \"40\"\nscope = \"term\"\n",
    );
    let sts = settle_all(&c, &per_period(2026, 1, 1, &["50", "30", "5"]));
    assert_eq!(amounts(&sts, "monthly"), ds(&["-20", "-20", "-5"]));
    // The term credit's base includes the earlier credit's line (both apply
    // to every charge): 30, 10, 0 → draws 30, then 10, then nothing.
    assert_eq!(amounts(&sts, "welcome"), ds(&["-30", "-10", "0"]));
}

#[test]
fn a_later_limits_base_includes_an_earlier_narrower_limits_line() {
    // Proves nesting: a cap of 100 on `a` cuts 130 to 100 (-30); a cap of
    // 150 on every charge sees a + b + the first cap's line = 130 + 80 - 30
    // = 180 and cuts 30 (without the nested line it would cut 60). A limit
    // on `b` alone is disjoint from the first and does not see its line.
    let c = compile(&format!(
        "{}[metrics.qa]\naggregate = \"sum\"\n[metrics.qb]\naggregate = \"sum\"\n\
         [[charges]]\nid = \"a\"\nkind = \"unit\"\nquantity = \"qa\"\nunit_price = \"1\"\n\
         [[charges]]\nid = \"b\"\nkind = \"unit\"\nquantity = \"qb\"\nunit_price = \"1\"\n\
         [[limits]]\nid = \"a_cap\"\nkind = \"cap\"\namount = \"100\"\napplies_to = [\"a\"]\nscope = \"period\"\n\
         [[limits]]\nid = \"b_floor\"\nkind = \"floor\"\namount = \"90\"\napplies_to = [\"b\"]\nscope = \"period\"\n\
         [[limits]]\nid = \"all_cap\"\nkind = \"cap\"\namount = \"150\"\nscope = \"period\"\n",
        head("2026-01-01", "2026-02-01", "monthly", "")
    ));
    let src = source(vec![
        ob("qa", "2026-01-02", "130"),
        ob("qb", "2026-01-02", "80"),
    ]);
    let sts = settle_all(&c, &src);
    assert_eq!(amt(&sts[0], "a_cap"), d("-30"));
    // b_floor: 90 - 80 = 10 (its base is b alone).
    assert_eq!(amt(&sts[0], "b_floor"), d("10"));
    // all_cap: 130 + 80 - 30 + 10 = 190 → -40.
    assert_eq!(amt(&sts[0], "all_cap"), d("-40"));
    assert_eq!(sts[0].total, d("150"));
    // Limit lines follow the charges, in the order written.
    let names: Vec<&str> = sts[0].lines.iter().map(|l| l.charge.as_str()).collect();
    assert_eq!(names, ["a", "b", "a_cap", "b_floor", "all_cap"]);
}

#[test]
fn limit_amount_is_rounded_like_a_line_and_may_name_charges() {
    // Proves a limit's amount is an expression that may name charges and is
    // rounded like a line: cap = usage * 0.5 + 0.004 on 100 → 50.004 →
    // 50.00, so the line is -50.00.
    let c = limited(
        "2026-01-01",
        "2026-02-01",
        "monthly",
        "[[limits]]\nid = \"half\"\nkind = \"cap\"\namount = \"usage * 0.5 + 0.004\"\nscope = \"period\"\n",
    );
    let sts = settle_all(&c, &per_period(2026, 1, 1, &["100"]));
    assert_eq!(amt(&sts[0], "half"), d("-50"));
    assert_eq!(sts[0].total, d("50"));
}

// ---------------------------------------------------------------------------
// amendments

#[test]
fn amendment_changes_a_price_from_a_period_start_and_state_carries() {
    // Proves an amendment sets a value from its effective period on, and a
    // contract-year cap's running total carries across it: price 1 → 0.5
    // from March; q = 100 a month; cap 250 a year.
    // Usage: 100, 100, 50, 50, 50. Cap: C = 0, 100, 200 (50 ≤ 50: no cut),
    // 250 → -50, 250 → -50.
    let c = compile(&format!(
        "{}{Q_SUM}[[charges]]\nid = \"usage\"\nkind = \"unit\"\nquantity = \"q\"\nunit_price = \"1\"\n\
         [[limits]]\nid = \"cap\"\nkind = \"cap\"\namount = \"250\"\nscope = \"contract_year\"\n\
         [[amendments]]\neffective = \"2026-03-01\"\nset = {{ \"charges.usage.unit_price\" = \"0.5\" }}\n",
        head("2026-01-01", "2026-06-01", "monthly", "")
    ));
    let sts = settle_all(
        &c,
        &per_period(2026, 1, 1, &["100", "100", "100", "100", "100"]),
    );
    assert_eq!(
        amounts(&sts, "usage"),
        ds(&["100", "100", "50", "50", "50"])
    );
    assert_eq!(amounts(&sts, "cap"), ds(&["0", "0", "0", "-50", "-50"]));
}

#[test]
fn amendment_of_tiers_prices_the_year_to_date_under_the_tiers_in_force() {
    // Proves year-to-date quantity carries across an amendment and A uses
    // the tiers in force this period: ≤150 at 1, then 0.5, amended to 0.25
    // from March; q = 100 a month.
    // Jan: A(100) = 100. Feb: A(200) - A(100) = 175 - 100 = 75.
    // Mar (new tiers): A(300) - A(200) = 187.5 - 162.5 = 25.
    let c = compile(&format!(
        "{}{Q_SUM}[[charges]]\nid = \"t\"\nkind = \"tiered\"\nmode = \"graduated\"\nquantity = \"q\"\n\
         accumulate = \"contract_year\"\n\
         tiers = [ {{ up_to = \"150\", unit_price = \"1\" }}, {{ unit_price = \"0.5\" }} ]\n\
         [[amendments]]\neffective = \"2026-03-01\"\nset = {{ \"charges.t.tiers[1].unit_price\" = \"0.25\" }}\n",
        head("2026-01-01", "2026-04-01", "monthly", "")
    ));
    let sts = settle_all(&c, &per_period(2026, 1, 1, &["100", "100", "100"]));
    assert_eq!(amounts(&sts, "t"), ds(&["100", "75", "25"]));
}

#[test]
fn amendment_changes_a_param_and_a_credit_keeps_what_was_drawn() {
    // Proves a param amendment reaches every expression that reads it, and
    // that lowering a credit's amount claws nothing back: price p = 2 then
    // 1; term credit 100 lowered to 60 from March after 80 was drawn:
    // balance max(0, 60 - 80) = 0.
    let c = compile(&format!(
        "{}[params]\np = \"2\"\n{Q_SUM}[[charges]]\nid = \"usage\"\nkind = \"unit\"\nquantity = \"q\"\nunit_price = \"p\"\n\
         [[limits]]\nid = \"credit\"\nkind = \"credit\"\namount = \"100\"\nscope = \"term\"\n\
         [[amendments]]\neffective = \"2026-03-01\"\n\
         set = {{ \"params.p\" = \"1\", \"limits.credit.amount\" = \"60\" }}\n",
        head("2026-01-01", "2026-04-01", "monthly", "")
    ));
    let sts = settle_all(&c, &per_period(2026, 1, 1, &["20", "20", "20"]));
    assert_eq!(amounts(&sts, "usage"), ds(&["40", "40", "20"]));
    assert_eq!(amounts(&sts, "credit"), ds(&["-40", "-40", "0"]));
}

// ---------------------------------------------------------------------------
// time zones, stubs

#[test]
fn new_york_periods_end_at_local_midnight_across_dst() {
    // Proves periods in America/New_York are bounded by local midnights:
    // March starts 2026-03-01T05:00Z (EST), April 2026-04-01T04:00Z (EDT),
    // so 2026-03-01T04:30Z belongs to February and 03:59:59Z on April 1 to
    // March; a date without a time is local midnight.
    let c = compile(&format!(
        "{}{Q_SUM}[[charges]]\nid = \"usage\"\nkind = \"unit\"\nquantity = \"q\"\nunit_price = \"1\"\n",
        head(
            "2026-01-01",
            "2026-05-01",
            "monthly",
            "timezone = \"America/New_York\""
        )
    ));
    let p = c.periods();
    assert_eq!(p[2].start_at, utc("2026-03-01T05:00:00Z"));
    assert_eq!(p[3].start_at, utc("2026-04-01T04:00:00Z"));
    assert_eq!(p[3].end_at, utc("2026-05-01T04:00:00Z"));
    let src = source(vec![
        ob("q", "2026-03-01T04:30:00Z", "1"),
        ob("q", "2026-03-01T05:00:00Z", "10"),
        ob("q", "2026-04-01T03:59:59Z", "100"),
        ob("q", "2026-04-01T04:00:00Z", "1000"),
        ob("q", "2026-04-01", "10000"),
        ob("q", "2026-01-01T04:59:59Z", "100000"),
    ]);
    let sts = settle_all(&c, &src);
    // Jan: 0 (the last row is Dec 31 in New York, before the term);
    // Feb: 1; Mar: 10 + 100; Apr: 1000 + 10000.
    assert_eq!(amounts(&sts, "usage"), ds(&["0", "1", "110", "11000"]));
    assert_eq!(sts[1].period.end.to_string(), "2026-03-01");
}

#[test]
fn leading_stub_with_anchor_and_contract_years() {
    // Proves with an anchor the first period runs from start to the first
    // boundary (a leading stub) and the term ends with a trailing stub; a
    // contract year starts with the first period starting on or after the
    // anniversary of start.
    let c = compile(&format!(
        "{}[[charges]]\nid = \"plan\"\nkind = \"fixed\"\namount = \"62\"\n",
        head(
            "2026-01-15",
            "2027-01-15",
            "monthly",
            "anchor = \"2026-02-01\""
        )
    ));
    let p = c.periods();
    assert_eq!(p.len(), 13);
    assert_eq!(
        (p[0].start.to_string(), p[0].end.to_string()),
        ("2026-01-15".into(), "2026-02-01".into())
    );
    assert_eq!(
        (p[12].start.to_string(), p[12].end.to_string()),
        ("2027-01-01".into(), "2027-01-15".into())
    );
    // Every period is in the first contract year but the last, which starts
    // on 2027-01-01, before the anniversary 2027-01-15: also year one.
    assert!(p.iter().all(|p| p.contract_year == 0));
    let sts = settle_all(&c, &MemorySource::new());
    // 62 * 17 / 31 = 34; 62 * 14 / 31 = 28.
    assert_eq!(amt(&sts[0], "plan"), d("34"));
    assert_eq!(amt(&sts[12], "plan"), d("28"));
    assert_eq!(amt(&sts[5], "plan"), d("62"));
}

// ---------------------------------------------------------------------------
// rounding

#[test]
fn each_rounding_mode_on_positive_and_negative_lines() {
    // Proves the seven modes on unit lines, for ties, non-ties and
    // negatives alike (under half_up, -1.005 becomes -1.01).
    let values = [
        "1.005", "1.015", "1.006", "1.001", "-1.005", "-1.015", "-1.006", "-1.001", "-0.001",
    ];
    let expected: [(&str, [&str; 9]); 7] = [
        (
            "half_even",
            [
                "1.00", "1.02", "1.01", "1.00", "-1.00", "-1.02", "-1.01", "-1.00", "0",
            ],
        ),
        (
            "half_up",
            [
                "1.01", "1.02", "1.01", "1.00", "-1.01", "-1.02", "-1.01", "-1.00", "0",
            ],
        ),
        (
            "half_down",
            [
                "1.00", "1.01", "1.01", "1.00", "-1.00", "-1.01", "-1.01", "-1.00", "0",
            ],
        ),
        (
            "up",
            [
                "1.01", "1.02", "1.01", "1.01", "-1.01", "-1.02", "-1.01", "-1.01", "-0.01",
            ],
        ),
        (
            "down",
            [
                "1.00", "1.01", "1.00", "1.00", "-1.00", "-1.01", "-1.00", "-1.00", "0",
            ],
        ),
        (
            "ceiling",
            [
                "1.01", "1.02", "1.01", "1.01", "-1.00", "-1.01", "-1.00", "-1.00", "0",
            ],
        ),
        (
            "floor",
            [
                "1.00", "1.01", "1.00", "1.00", "-1.01", "-1.02", "-1.01", "-1.01", "-0.01",
            ],
        ),
    ];
    for (mode, want) in expected {
        let mut text = head(
            "2026-01-01",
            "2026-02-01",
            "monthly",
            &format!("rounding = {{ scale = 2, mode = \"{mode}\" }}"),
        );
        for (i, v) in values.iter().enumerate() {
            text.push_str(&format!(
                "[[charges]]\nid = \"c{i}\"\nkind = \"unit\"\nquantity = \"1\"\nunit_price = \"{v}\"\n"
            ));
        }
        let sts = settle_all(&compile(&text), &MemorySource::new());
        for (i, w) in want.iter().enumerate() {
            let got = amt(&sts[0], &format!("c{i}"));
            assert_eq!(got, d(w), "{mode} of {}", values[i]);
            assert!(
                !(got.is_zero() && got.is_sign_negative()),
                "{mode} of {} is -0",
                values[i]
            );
        }
        // The total is the sum of the rounded lines, never rounded again.
        let sum: Decimal = sts[0].lines.iter().map(|l| l.amount).sum();
        assert_eq!(sts[0].total, sum);
    }
}

#[test]
fn rounding_scale_defaults_to_the_currencys_minor_units() {
    // Proves the default scale is the currency's: JPY has 0 decimals, so
    // 100.5 rounds half-even to 100 and 101.5 to 102; BHD has 3.
    let mut jpy = head("2026-01-01", "2026-02-01", "monthly", "").replace("USD", "JPY");
    jpy.push_str(
        "[[charges]]\nid = \"a\"\nkind = \"expr\"\namount = \"100.5\"\n\
         [[charges]]\nid = \"b\"\nkind = \"expr\"\namount = \"101.5\"\n",
    );
    let sts = settle_all(&compile(&jpy), &MemorySource::new());
    assert_eq!(amounts(&sts, "a"), ds(&["100"]));
    assert_eq!(amounts(&sts, "b"), ds(&["102"]));
    let mut bhd = head("2026-01-01", "2026-02-01", "monthly", "").replace("USD", "BHD");
    bhd.push_str("[[charges]]\nid = \"a\"\nkind = \"expr\"\namount = \"1.23456\"\n");
    let sts = settle_all(&compile(&bhd), &MemorySource::new());
    assert_eq!(amounts(&sts, "a"), ds(&["1.235"]));
}

// ---------------------------------------------------------------------------
// errors

#[test]
fn missing_error_names_the_metric_and_the_period() {
    // Proves a metric with missing = "error" read over an empty window fails
    // settlement naming the metric and the period; it never bills a zero.
    // `min` defaults to missing = error; a sum can ask for it.
    let c = compile(&format!(
        "{}[metrics.uptime]\nseries = \"uptime_pct\"\naggregate = \"min\"\n\
         [metrics.leads]\naggregate = \"sum\"\nmissing = \"error\"\n\
         [[charges]]\nid = \"u\"\nkind = \"expr\"\namount = \"uptime\"\n\
         [[charges]]\nid = \"l\"\nkind = \"expr\"\namount = \"leads\"\n",
        head("2026-01-01", "2026-03-01", "monthly", "")
    ));
    let src = source(vec![
        ob("uptime_pct", "2026-01-02", "99"),
        ob("leads", "2026-01-02", "3"),
    ]);
    assert_eq!(settle_n(&c, &src, 1)[0].total, d("102"));
    let err = c
        .settle_through(&src, 1, &SettleOptions::default())
        .unwrap_err();
    assert!(matches!(err.location(), Location::Period { .. }));
    assert!(err.message().contains("uptime"), "{err}");
    assert!(
        err.location()
            .to_string()
            .contains("2026-02-01..2026-03-01"),
        "{err}"
    );

    let src = source(vec![ob("uptime_pct", "2026-01-02", "99")]);
    let err = c
        .settle_through(&src, 0, &SettleOptions::default())
        .unwrap_err();
    assert!(err.message().contains("leads"), "{err}");
    assert!(
        err.location()
            .to_string()
            .contains("2026-01-01..2026-02-01"),
        "{err}"
    );
}

#[test]
fn division_by_zero_names_the_expression_and_the_period() {
    // Proves a division by zero fails settlement naming the expression and
    // the period.
    let c = compile(&format!(
        "{}[metrics.resolutions]\naggregate = \"sum\"\n[metrics.conversations]\naggregate = \"sum\"\n\
         [kpis.rate]\nexpr = \"resolutions / conversations\"\n\
         [[charges]]\nid = \"bonus\"\nkind = \"bands\"\nkpi = \"rate\"\nbands = [ {{ from = \"0.8\", amount = \"100\" }} ]\n",
        head("2026-01-01", "2026-03-01", "monthly", "")
    ));
    let src = source(vec![
        ob("resolutions", "2026-01-02", "9"),
        ob("conversations", "2026-01-02", "10"),
        ob("resolutions", "2026-02-02", "9"),
    ]);
    assert_eq!(settle_n(&c, &src, 1)[0].total, d("100"));
    let err = c
        .settle_through(&src, 1, &SettleOptions::default())
        .unwrap_err();
    assert!(matches!(err.location(), Location::Period { .. }));
    assert!(err.message().contains("division by zero"), "{err}");
    assert!(
        err.message().contains("resolutions / conversations"),
        "{err}"
    );
    assert!(
        err.location()
            .to_string()
            .contains("2026-02-01..2026-03-01"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------
// data versions, customers, as-of

fn usage_contract() -> CompiledContract {
    compile(&format!(
        "{}{Q_SUM}[[charges]]\nid = \"usage\"\nkind = \"unit\"\nquantity = \"q\"\nunit_price = \"1\"\n",
        head("2026-01-01", "2026-04-01", "monthly", "")
    ))
}

#[test]
fn as_of_ignores_corrections_recorded_later() {
    // Proves a later version replaces an earlier one (a correction, not a
    // double count), its timestamp decides its period, and as_of ignores
    // versions recorded after it.
    let c = usage_contract();
    let src = source(vec![
        version("q", "x", "2026-01-10", "10", "2026-01-11"),
        version("q", "x", "2026-01-10", "15", "2026-02-10"),
        version("q", "y", "2026-01-20", "7", "2026-01-21"),
        // y moves to February in a correction recorded in March.
        version("q", "y", "2026-02-03", "8", "2026-03-05T12:00:00Z"),
        ob("q", "2026-01-05", "1"),
    ]);
    let all = settle_all(&c, &src);
    assert_eq!(amounts(&all, "usage"), ds(&["16", "8", "0"]));
    let feb1 = SettleOptions::default().as_of(utc("2026-02-01T00:00:00Z"));
    let early = c.settle_through(&src, 2, &feb1).unwrap();
    assert_eq!(amounts(&early, "usage"), ds(&["18", "0", "0"]));
    let mar1 = SettleOptions::default().as_of(utc("2026-03-01T00:00:00Z"));
    let mid = c.settle_through(&src, 2, &mar1).unwrap();
    assert_eq!(amounts(&mid, "usage"), ds(&["23", "0", "0"]));
    // A version recorded exactly at as_of is known (rows with recorded_at > T
    // are ignored).
    let exact = SettleOptions::default().as_of(utc("2026-03-05T12:00:00Z"));
    let at = c.settle_through(&src, 2, &exact).unwrap();
    assert_eq!(amounts(&at, "usage"), ds(&["16", "8", "0"]));
}

#[test]
fn void_versions_remove_and_later_versions_restore() {
    // Proves a void version removes its observation and a later version
    // restores it; a void without a later version keeps it removed.
    let c = usage_contract();
    let void = |id: &str, at: &str, recorded: &str| Observation {
        void: true,
        ..version("q", id, at, "999", recorded)
    };
    let src = source(vec![
        version("q", "a", "2026-01-10", "10", "2026-01-10"),
        void("a", "2026-01-10", "2026-01-15"),
        version("q", "b", "2026-02-10", "20", "2026-02-10"),
        void("b", "2026-02-10", "2026-02-12"),
        version("q", "b", "2026-02-10", "25", "2026-02-20"),
        version("q", "c", "2026-03-10", "3", "2026-03-10"),
    ]);
    let sts = settle_all(&c, &src);
    assert_eq!(amounts(&sts, "usage"), ds(&["0", "25", "3"]));
    // As of Feb 14, b is void.
    let opts = SettleOptions::default().as_of(utc("2026-02-14T00:00:00Z"));
    let sts = c.settle_through(&src, 1, &opts).unwrap();
    assert_eq!(amounts(&sts, "usage"), ds(&["0", "0"]));
}

#[test]
fn only_the_contracts_customer_and_shared_rows_are_read() {
    // Proves a contract reads rows of its own customer and rows with no
    // customer, never another customer's, and ids are per customer.
    let c = usage_contract();
    let with = |customer: &str, v: &str| Observation {
        customer: Some(customer.into()),
        ..ob("q", "2026-01-10", v)
    };
    let src = source(vec![
        with("acme", "1"),
        with("other", "10"),
        with("", "100"),
        ob("q", "2026-01-11", "1000"),
        Observation {
            customer: Some("acme".into()),
            ..version("q", "same-id", "2026-01-12", "10000", "2026-01-12")
        },
        Observation {
            customer: Some("other".into()),
            ..version("q", "same-id", "2026-01-12", "0", "2026-01-13")
        },
    ]);
    let sts = settle_all(&c, &src);
    assert_eq!(amt(&sts[0], "usage"), d("11101"));
}

#[test]
fn settle_due_stops_at_the_last_ended_period_or_the_last_with_an_observation() {
    // Proves settle_due settles through the last period ended by `now` (its
    // end at or before now), or further through the last period holding an
    // observation the contract reads; other customers, other series and
    // rows recorded after as_of do not count.
    let c = compile(&format!(
        "{}[metrics.q]\nseries = \"q\"\naggregate = \"sum\"\nfilter = {{ region = \"eu\" }}\n\
         [[charges]]\nid = \"usage\"\nkind = \"unit\"\nquantity = \"q\"\nunit_price = \"1\"\n",
        head("2026-01-01", "2027-01-01", "monthly", "")
    ));
    let opts = SettleOptions::default();
    let eu = |at: &str| Observation {
        dimensions: vec![("region".into(), "eu".into())],
        ..ob("q", at, "1")
    };
    let empty = source(vec![eu("2026-01-02")]);
    // Mid-March: January and February have ended.
    assert_eq!(
        c.settle_due(&empty, utc("2026-03-15T00:00:00Z"), &opts)
            .unwrap()
            .len(),
        2
    );
    // Exactly at March 1 midnight February has ended.
    assert_eq!(
        c.settle_due(&empty, utc("2026-03-01T00:00:00Z"), &opts)
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        c.settle_due(&empty, utc("2026-02-28T23:59:59Z"), &opts)
            .unwrap()
            .len(),
        1
    );
    // Before the first period ends and with no observation: nothing.
    let none = source(vec![Observation {
        dimensions: vec![("region".into(), "eu".into())],
        ..ob("unread", "2026-02-02", "1")
    }]);
    assert!(
        c.settle_due(&none, utc("2026-01-15T00:00:00Z"), &opts)
            .unwrap()
            .is_empty()
    );
    // An observation in May makes May due.
    let may = source(vec![eu("2026-05-03")]);
    let sts = c
        .settle_due(&may, utc("2026-03-15T00:00:00Z"), &opts)
        .unwrap();
    assert_eq!(sts.len(), 5);
    assert_eq!(amt(&sts[4], "usage"), d("1"));
    // Rows the contract does not read do not make a period due.
    let unread = source(vec![
        Observation {
            customer: Some("other".into()),
            ..eu("2026-06-03")
        },
        ob("unread_series", "2026-07-03", "1"),
        Observation {
            dimensions: vec![("region".into(), "us".into())],
            ..ob("q", "2026-08-03", "1")
        },
        Observation {
            recorded_at: Some(stamp("2026-04-01")),
            id: Some("late".into()),
            ..eu("2026-09-03")
        },
    ]);
    let as_of = opts.as_of(utc("2026-03-15T00:00:00Z"));
    let sts = c
        .settle_due(&unread, utc("2026-03-15T00:00:00Z"), &as_of)
        .unwrap();
    assert_eq!(sts.len(), 2);
    // Without as_of the late row counts: September is due.
    let sts = c
        .settle_due(&unread, utc("2026-03-15T00:00:00Z"), &opts)
        .unwrap();
    assert_eq!(sts.len(), 9);
}

#[test]
fn statement_total_is_the_sum_of_lines_and_a_credit_is_reported_negative() {
    // Proves a negative total is reported as it is: plan 10, credit band
    // -30 → total -20.
    let c = compile(&format!(
        "{}[[charges]]\nid = \"plan\"\nkind = \"fixed\"\namount = \"10\"\n\
         [[charges]]\nid = \"sla\"\nkind = \"expr\"\namount = \"-30\"\n",
        head("2026-01-01", "2026-02-01", "monthly", "")
    ));
    let sts = settle_all(&c, &MemorySource::new());
    assert_eq!(sts[0].total, d("-20"));
}

#[test]
fn the_spec_example_settles_its_first_period_as_computed_by_hand() {
    // Proves the example contract's first (stub) period: plan 49 * 17 / 31
    // = 26.87; 120 resolutions with 50 free at 0.99 = 69.30; payments 120,
    // 250, 80 at 2.9% + 0.30, at most 5 → 3.78 + 5.00 + 2.62 = 11.40; the
    // onboarding credit of 150 draws the whole 107.57; total 0.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let contract = Contract::from_path(root.join("examples/support-agent/contract.toml")).unwrap();
    let c = CompiledContract::new(contract).unwrap();
    let src =
        outcome_billing::metric::CsvSource::open(root.join("examples/support-agent/metrics.csv"))
            .unwrap();
    let sts = c
        .settle_through(&src, 1, &SettleOptions::default())
        .unwrap();
    assert_eq!(amt(&sts[0], "plan"), d("26.87"));
    assert_eq!(amt(&sts[0], "per_resolution"), d("69.30"));
    assert_eq!(amt(&sts[0], "processing"), d("11.40"));
    assert_eq!(amt(&sts[0], "onboarding_credit"), d("-107.57"));
    assert_eq!(sts[0].total, d("0"));
    // The rest of the credit, 42.43, goes in February.
    assert_eq!(amt(&sts[1], "onboarding_credit"), d("-42.43"));
}

// ---------------------------------------------------------------------------
// metric windows and aggregates

#[test]
fn to_date_windows_reset_with_the_contract_year_or_run_the_term() {
    // Proves window = contract_year_to_date sums from the year's first
    // period and term_to_date from the term's: quarterly over 18 months with
    // 1..6 per quarter gives 1, 3, 6, 10 | 5, 11 and 1, 3, 6, 10, 15, 21.
    let c = compile(&format!(
        "{}[metrics.ytd]\nseries = \"s\"\naggregate = \"sum\"\nwindow = \"contract_year_to_date\"\n\
         [metrics.ttd]\nseries = \"s\"\naggregate = \"sum\"\nwindow = \"term_to_date\"\n\
         [[charges]]\nid = \"y\"\nkind = \"expr\"\namount = \"ytd\"\n\
         [[charges]]\nid = \"t\"\nkind = \"expr\"\namount = \"ttd\"\n",
        head("2026-01-01", "2027-07-01", "quarterly", "")
    ));
    let src = source(series(
        "s",
        &[
            ("2026-01-02", "1"),
            ("2026-04-02", "2"),
            ("2026-07-02", "3"),
            ("2026-10-02", "4"),
            ("2027-01-02", "5"),
            ("2027-04-02", "6"),
        ],
    ));
    let sts = settle_all(&c, &src);
    assert_eq!(amounts(&sts, "y"), ds(&["1", "3", "6", "10", "5", "11"]));
    assert_eq!(amounts(&sts, "t"), ds(&["1", "3", "6", "10", "15", "21"]));
}

#[test]
fn unique_count_first_last_and_filters() {
    // Proves unique_count counts distinct non-empty values of `of`, first
    // and last take the earliest and latest timestamps (not the order
    // given), and a filter keeps only matching observations.
    let c = compile(&format!(
        "{}[metrics.users]\nseries = \"login\"\naggregate = \"unique_count\"\nof = \"user\"\n\
         [metrics.eu_logins]\nseries = \"login\"\naggregate = \"count\"\nfilter = {{ region = \"eu\" }}\n\
         [metrics.opening]\nseries = \"nav\"\naggregate = \"first\"\n\
         [metrics.closing]\nseries = \"nav\"\naggregate = \"last\"\n\
         [[charges]]\nid = \"u\"\nkind = \"expr\"\namount = \"users\"\n\
         [[charges]]\nid = \"e\"\nkind = \"expr\"\namount = \"eu_logins\"\n\
         [[charges]]\nid = \"o\"\nkind = \"expr\"\namount = \"opening\"\n\
         [[charges]]\nid = \"c\"\nkind = \"expr\"\namount = \"closing\"\n",
        head("2026-01-01", "2026-02-01", "monthly", "")
    ));
    let login = |user: &str, region: &str| Observation {
        dimensions: vec![
            ("region".into(), region.into()),
            ("user".into(), user.into()),
        ],
        ..ob("login", "2026-01-05", "1")
    };
    let src = source(vec![
        login("a", "eu"),
        login("b", "us"),
        login("a", "eu"),
        login("", "eu"),
        ob("nav", "2026-01-20", "7"),
        ob("nav", "2026-01-05", "10"),
        ob("nav", "2026-01-12T10:00:00Z", "8"),
    ]);
    let sts = settle_all(&c, &src);
    assert_eq!(amt(&sts[0], "u"), d("2"));
    assert_eq!(amt(&sts[0], "e"), d("3"));
    assert_eq!(amt(&sts[0], "o"), d("10"));
    assert_eq!(amt(&sts[0], "c"), d("7"));
}

#[test]
fn a_last_tie_is_a_data_error_naming_both_rows() {
    // Proves `last` with two different observations at the latest instant
    // fails with a data error naming both rows (FILE:LINE).
    let c = compile(&format!(
        "{}[metrics.closing]\nseries = \"nav\"\naggregate = \"last\"\n\
         [[charges]]\nid = \"c\"\nkind = \"expr\"\namount = \"closing\"\n",
        head("2026-01-01", "2026-02-01", "monthly", "")
    ));
    let data =
        "series,timestamp,value\nnav,2026-01-05,1\nnav,2026-01-20T00:00:00Z,7\nnav,2026-01-20,8\n";
    let src = outcome_billing::metric::CsvSource::from_reader("nav.csv", data.as_bytes()).unwrap();
    let err = c
        .settle_through(&src, 0, &SettleOptions::default())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConflictingData, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("nav.csv:3") && text.contains("nav.csv:4"),
        "{text}"
    );
}

#[test]
fn contract_years_begin_at_the_first_period_on_or_after_each_anniversary() {
    // Proves with an anchor the second contract year begins with the first
    // period starting on or after the anniversary of start: start Jan 15,
    // anchor Feb 1 → year two starts Feb 1 2027 (Jan 1 2027 is before the
    // anniversary); a contract-year cap restarts there.
    let c = compile(&format!(
        "{}{Q_SUM}[[charges]]\nid = \"usage\"\nkind = \"unit\"\nquantity = \"q\"\nunit_price = \"1\"\n\
         [[limits]]\nid = \"cap\"\nkind = \"cap\"\namount = \"1250\"\nscope = \"contract_year\"\n",
        head(
            "2026-01-15",
            "2027-04-01",
            "monthly",
            "anchor = \"2026-02-01\""
        )
    ));
    let p = c.periods();
    let years: Vec<usize> = p.iter().map(|p| p.contract_year).collect();
    assert_eq!(years, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]);
    assert_eq!(p[13].start.to_string(), "2027-02-01");
    let mut obs = Vec::new();
    for period in p {
        obs.push(Observation::new("q", Stamp::Date(period.start), d("100")));
    }
    let sts = settle_all(&c, &source(obs));
    // 13 periods of 100 in year one: the 13th is cut by 50; year two is fresh.
    let cap = amounts(&sts, "cap");
    assert_eq!(cap[12], d("-50"));
    assert_eq!(cap[13], d("0"));
}

#[test]
fn a_limit_amount_is_not_prorated_in_a_stub() {
    // Proves a limit's amount is not prorated for a short period: a stub of
    // 15/30 days bills a fixed 30 as 15, and a period floor of 100 tops it
    // up by 85 (not to 50).
    let c = compile(&format!(
        "{}[[charges]]\nid = \"plan\"\nkind = \"fixed\"\namount = \"30\"\n\
         [[limits]]\nid = \"min\"\nkind = \"floor\"\namount = \"100\"\nscope = \"period\"\n",
        head(
            "2026-04-16",
            "2026-06-01",
            "monthly",
            "anchor = \"2026-05-01\""
        )
    ));
    let sts = settle_all(&c, &MemorySource::new());
    assert_eq!(amt(&sts[0], "plan"), d("15"));
    assert_eq!(amt(&sts[0], "min"), d("85"));
    assert_eq!(amt(&sts[1], "min"), d("70"));
}

#[test]
fn historical_baseline_with_missing_error_names_the_empty_laid_period() {
    // Proves a historical baseline whose metric has missing = "error" fails
    // settlement when a laid period has no observation, naming the metric.
    let c = compile(&format!(
        "{}[metrics.peak]\nseries = \"load\"\naggregate = \"max\"\n\
         [baselines.before]\nkind = \"historical\"\nmetric = \"peak\"\nfrom = \"2025-10-01\"\nto = \"2026-01-01\"\n\
         [[charges]]\nid = \"b\"\nkind = \"expr\"\namount = \"before\"\n",
        head("2026-01-01", "2026-02-01", "monthly", "")
    ));
    let src = source(series(
        "load",
        &[("2025-10-03", "10"), ("2025-12-03", "30")],
    ));
    let err = c
        .settle_through(&src, 0, &SettleOptions::default())
        .unwrap_err();
    assert!(matches!(err.location(), Location::Period { .. }), "{err}");
    assert!(err.message().contains("peak"), "{err}");
    // With November filled in, the mean of 10, 20, 30 is 20.
    let src = source(series(
        "load",
        &[
            ("2025-10-03", "10"),
            ("2025-11-03", "20"),
            ("2025-12-03", "30"),
        ],
    ));
    assert_eq!(amt(&settle_all(&c, &src)[0], "b"), d("20"));
}

#[test]
fn a_recorded_at_date_is_local_midnight_in_the_contracts_zone() {
    // Proves a date-only recorded_at means local midnight of the reading
    // contract: a correction recorded "2026-02-01" is known in New York
    // from 05:00Z, so as of 03:00Z it is not yet known (under UTC it
    // would be).
    let c = compile(&format!(
        "{}{Q_SUM}[[charges]]\nid = \"usage\"\nkind = \"unit\"\nquantity = \"q\"\nunit_price = \"1\"\n",
        head(
            "2026-01-01",
            "2026-02-01",
            "monthly",
            "timezone = \"America/New_York\""
        )
    ));
    let src = source(vec![
        version("q", "x", "2026-01-10", "10", "2026-01-10"),
        version("q", "x", "2026-01-10", "15", "2026-02-01"),
    ]);
    let early = SettleOptions::default().as_of(utc("2026-02-01T03:00:00Z"));
    assert_eq!(
        amounts(&c.settle_through(&src, 0, &early).unwrap(), "usage"),
        ds(&["10"])
    );
    let late = SettleOptions::default().as_of(utc("2026-02-01T05:00:00Z"));
    assert_eq!(
        amounts(&c.settle_through(&src, 0, &late).unwrap(), "usage"),
        ds(&["15"])
    );
}

#[test]
fn versions_sharing_the_latest_recorded_at_count_once_or_conflict() {
    // Proves rows of one id sharing the latest recorded_at count once when
    // equal in every column, and are a data error naming both lines when
    // they differ.
    let c = compile(&format!(
        "{}{Q_SUM}[[charges]]\nid = \"usage\"\nkind = \"unit\"\nquantity = \"q\"\nunit_price = \"1\"\n",
        head("2026-01-01", "2026-02-01", "monthly", "")
    ));
    let same = "series,timestamp,value,id,recorded_at\n\
                q,2026-01-10,5,x,2026-01-11\n\
                q,2026-01-10,5.0,x,2026-01-11\n\
                q,2026-01-12,1,,\n\
                q,2026-01-12,1,,\n";
    let src = outcome_billing::metric::CsvSource::from_reader("same.csv", same.as_bytes()).unwrap();
    // x counts once (5 and 5.0 are equal after parsing); rows without id
    // are all counted.
    let sts = c
        .settle_through(&src, 0, &SettleOptions::default())
        .unwrap();
    assert_eq!(amt(&sts[0], "usage"), d("7"));
    let clash = "series,timestamp,value,id,recorded_at\n\
                 q,2026-01-10,5,x,2026-01-11\n\
                 q,2026-01-10,6,x,2026-01-11\n";
    let result = outcome_billing::metric::CsvSource::from_reader("clash.csv", clash.as_bytes())
        .and_then(|src| c.settle_through(&src, 0, &SettleOptions::default()));
    let err = result.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConflictingData, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("clash.csv:2") && text.contains("clash.csv:3"),
        "{text}"
    );
}

#[test]
fn a_quarterly_stub_is_prorated_over_the_anchored_quarter() {
    // Proves D is the days of the anchored period the stub is cut from for
    // any cadence: Feb 15 – Apr 1 2026 is cut from the quarter Jan 1 – Apr 1
    // (90 days), d = 45, so 900 * 45 / 90 = 450.
    let c = compile(&format!(
        "{}[[charges]]\nid = \"plan\"\nkind = \"fixed\"\namount = \"900\"\n",
        head(
            "2026-02-15",
            "2026-07-01",
            "quarterly",
            "anchor = \"2026-04-01\""
        )
    ));
    let p = c.periods();
    assert_eq!(p[0].full_start.to_string(), "2026-01-01");
    let sts = settle_all(&c, &MemorySource::new());
    assert_eq!(amounts(&sts, "plan"), ds(&["450", "900"]));
}
