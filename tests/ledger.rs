//! The ledger: issued statements never change, corrections arrive as
//! adjustments, and issued plus adjustments is always what a fresh
//! settlement of the corrected data gives, in SQLite and in PostgreSQL.

#[path = "common/pg.rs"]
mod pg;

use chrono::{DateTime, Days, NaiveDate, Utc};
use outcome_billing::ledger::Ledger;
use outcome_billing::metric::{MemorySource, Observation};
use outcome_billing::period::Stamp;
use outcome_billing::run::RunOptions;
use outcome_billing::store::Store;
use outcome_billing::{CompiledContract, ErrorKind, SettleOptions};
use proptest::prelude::*;
use rust_decimal::Decimal;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A contract of 18 monthly periods (two contract years, the second
/// short) with what carries state from one period to the next:
/// year-to-date graduated tiers, a high-water mark, and optional caps,
/// floors and credits of every scope.
#[derive(Debug, Clone)]
struct Terms {
    tier_up_to: u32,
    tier_prices: (u32, u32),
    fee: u32,
    share: u32,
    cap: Option<(u32, &'static str)>,
    floor: Option<(u32, &'static str)>,
    credit: Option<(u32, &'static str)>,
}

fn scope() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("period"), Just("contract_year"), Just("term")]
}

fn terms() -> impl Strategy<Value = Terms> {
    (
        10u32..200,
        (1u32..20, 1u32..20),
        0u32..100,
        1u32..50,
        proptest::option::of((50u32..3000, scope())),
        proptest::option::of((50u32..3000, scope())),
        proptest::option::of((10u32..500, scope())),
    )
        .prop_map(
            |(tier_up_to, tier_prices, fee, share, cap, floor, credit)| Terms {
                tier_up_to,
                tier_prices,
                fee,
                share,
                cap,
                floor,
                credit,
            },
        )
}

impl Terms {
    fn toml(&self) -> String {
        let mut t = format!(
            r#"
format = 1
id = "ledger-test"
customer = "acme"
currency = "USD"
start = "2026-01-01"
end = "2027-07-01"
cadence = "monthly"

[metrics.units]
series = "units"
aggregate = "sum"

[metrics.nav]
series = "nav"
aggregate = "last"
missing = "zero"

[baselines.mark]
kind = "high_water_mark"
metric = "nav"
initial = "100"

[[charges]]
id = "usage"
kind = "tiered"
mode = "graduated"
quantity = "units"
accumulate = "contract_year"
tiers = [ {{ up_to = "{}", unit_price = "{}.25" }}, {{ unit_price = "{}.5" }} ]

[[charges]]
id = "performance"
kind = "gain_share"
actual = "nav"
baseline = "mark"
direction = "increase"
share = "0.{:02}"

[[charges]]
id = "platform"
kind = "fixed"
amount = "{}"
"#,
            self.tier_up_to, self.tier_prices.0, self.tier_prices.1, self.share, self.fee
        );
        if let Some((amount, scope)) = self.cap {
            t += &format!(
                "\n[[limits]]\nid = \"cap\"\nkind = \"cap\"\namount = \"{amount}\"\napplies_to = [\"usage\"]\nscope = \"{scope}\"\n"
            );
        }
        if let Some((amount, scope)) = self.floor {
            t += &format!(
                "\n[[limits]]\nid = \"floor\"\nkind = \"floor\"\namount = \"{amount}\"\nscope = \"{scope}\"\n"
            );
        }
        if let Some((amount, scope)) = self.credit {
            t += &format!(
                "\n[[limits]]\nid = \"credit\"\nkind = \"credit\"\namount = \"{amount}\"\nscope = \"{scope}\"\n"
            );
        }
        t
    }
}

/// One version of an observation: its month (0 = January 2026), series,
/// id, value, and how many days after its month's end it became known.
type Version = (u32, bool, u32, u32, u32);

fn month_start(month: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 1)
        .unwrap()
        .checked_add_months(chrono::Months::new(month))
        .unwrap()
}

fn source(versions: &[Version]) -> MemorySource {
    let mut s = MemorySource::new();
    for (k, &(month, nav, id, value, late)) in versions.iter().enumerate() {
        // Versions of one id share their timestamp; ids differ in theirs,
        // so `last` never meets two observations at one instant.
        let at = (month_start(month) + Days::new(u64::from(2 + 7 * id)))
            .and_hms_opt(12, 0, 0)
            .unwrap()
            .and_utc();
        let series = if nav { "nav" } else { "units" };
        let mut o = Observation::new(series, Stamp::At(at), Decimal::from(value));
        o.id = Some(format!("{series}-{month}-{id}"));
        o.customer = Some("acme".into());
        // Each version is recorded at its own minute: never a tie.
        let known = (month_start(month + 1) + Days::new(u64::from(late)))
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
            + chrono::Duration::minutes(k as i64);
        o.recorded_at = Some(Stamp::At(known));
        o.void = value % 17 == 16;
        s.push(o);
    }
    s
}

/// When the tests' last reconciliations happen.
const NOW: DateTime<Utc> = DateTime::from_timestamp_nanos(1_830_297_600_000_000_000);

fn month_end(month: u32) -> DateTime<Utc> {
    month_start(month + 1)
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
}

/// Issues month by month at each month's end plus `lag` days, with a
/// reconciliation after every `every` months, then reconciles with
/// everything known; checks that issued plus adjustments equals a fresh
/// settlement line by line, and that a second reconciliation appends
/// nothing.
fn check_ledger(store: &Store, terms: &Terms, versions: &[Version], lag: u32, every: u32) {
    let ledger = Ledger::create(store).unwrap();
    let contract = CompiledContract::from_toml_str(&terms.toml()).unwrap();
    let src = source(versions);
    for month in 0..18u32 {
        let at = month_end(month) + chrono::Duration::days(i64::from(lag));
        let as_of = Stamp::At(at);
        ledger
            .issue(&contract, &src, &RunOptions::new(at).as_of(as_of))
            .unwrap();
        if every > 0 && month % every == every - 1 {
            ledger.reconcile(&contract, &src, Some(at), at).unwrap();
        }
    }
    let final_reconciliation = ledger.reconcile(&contract, &src, None, NOW).unwrap();
    let history = ledger.history("ledger-test").unwrap();
    let fresh = contract
        .settle_through(&src, 17, &SettleOptions::default())
        .unwrap();
    assert_eq!(history.statements.len(), 18, "every period issued once");
    for (issued, settled) in history.statements.iter().zip(&fresh) {
        assert_eq!(issued.entry.period.start, settled.period.start);
        let adjusted = |charge: &str| -> Decimal {
            history
                .adjustments
                .iter()
                .filter(|a| {
                    a.adjustment.period_start == settled.period.start
                        && a.adjustment.charge == charge
                })
                .map(|a| a.adjustment.amount)
                .sum()
        };
        for line in &settled.lines {
            let was: Decimal = issued
                .entry
                .lines
                .iter()
                .filter(|l| l.charge == line.charge)
                .map(|l| l.amount.value())
                .sum();
            assert_eq!(
                was + adjusted(&line.charge),
                line.amount,
                "{} {}",
                settled.period.start,
                line.charge
            );
        }
        for l in &issued.entry.lines {
            if !settled.lines.iter().any(|x| x.charge == l.charge) {
                assert_eq!(
                    l.amount.value() + adjusted(&l.charge),
                    Decimal::ZERO,
                    "{} {} (issued only)",
                    settled.period.start,
                    l.charge
                );
            }
        }
    }
    let _ = final_reconciliation;
    let again = ledger.reconcile(&contract, &src, None, NOW).unwrap();
    assert!(again.adjustments.is_empty(), "{:?}", again.adjustments);
    assert_eq!(
        ledger.history("ledger-test").unwrap().adjustments.len(),
        history.adjustments.len()
    );
}

fn versions() -> impl Strategy<Value = Vec<Version>> {
    proptest::collection::vec(
        (0u32..18, any::<bool>(), 0u32..3, 0u32..400, 0u32..60),
        1..60,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// For random contracts and random corrections arriving after issue,
    /// issued statements plus every adjustment equal a fresh settlement of
    /// the corrected data, per period and line, to the cent; a second
    /// reconciliation appends nothing. (SQLite.)
    #[test]
    fn issued_plus_adjustments_is_a_fresh_settlement_sqlite(
        terms in terms(), versions in versions(), lag in 0u32..40, every in 0u32..5,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::Sqlite(dir.path().join("ledger.db"));
        check_ledger(&store, &terms, &versions, lag, every);
    }
}

/// Numbers the PostgreSQL property test's schemas.
static NEXT: AtomicUsize = AtomicUsize::new(0);

#[test]
fn issued_plus_adjustments_is_a_fresh_settlement_postgres() {
    let Some(_) = pg::server() else {
        return;
    };
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(12));
    runner
        .run(
            &(terms(), versions(), 0u32..40, 0u32..5),
            |(terms, versions, lag, every)| {
                let db = pg::fresh(&format!(
                    "ledger_prop_{}",
                    NEXT.fetch_add(1, Ordering::Relaxed)
                ))
                .unwrap();
                check_ledger(&Store::Postgres(db), &terms, &versions, lag, every);
                Ok(())
            },
        )
        .unwrap();
}

const SIMPLE: &str = r#"
format = 1
id = "simple"
customer = "acme"
currency = "USD"
start = "2026-01-01"
end = "2026-04-01"
cadence = "monthly"

[metrics.units]
series = "units"
aggregate = "sum"

[[charges]]
id = "usage"
kind = "unit"
quantity = "units"
unit_price = "2"
"#;

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn units(month: u32, value: i64, id: &str, recorded: &str) -> Observation {
    let mut o = Observation::new(
        "units",
        Stamp::At(month_end(month) - chrono::Duration::days(5)),
        Decimal::from(value),
    );
    o.id = Some(id.into());
    o.recorded_at = Some(Stamp::At(at(recorded)));
    o
}

/// The same scenario in each store: issue, skip, correct, reconcile.
fn lifecycle(store: &Store) {
    let ledger = Ledger::create(store).unwrap();
    let c = CompiledContract::from_toml_str(SIMPLE).unwrap();
    let mut src = MemorySource::new();
    src.push(units(0, 10, "a", "2026-01-26T00:00:00Z"));
    src.push(units(1, 20, "b", "2026-02-23T00:00:00Z"));
    let now = at("2026-03-01T00:00:00Z");
    let first = ledger.issue(&c, &src, &RunOptions::new(now)).unwrap();
    assert_eq!(first.statements.len(), 2);
    assert!(first.skipped.is_empty());
    assert_eq!(first.statements[0].entry.total.to_string(), "20.00");
    assert!(first.statements[0].entry.id.is_some());
    // Issuing again skips both periods and appends nothing.
    let again = ledger.issue(&c, &src, &RunOptions::new(now)).unwrap();
    assert!(again.statements.is_empty());
    assert_eq!(again.skipped.len(), 2);
    // A correction to January arrives after issue.
    src.push(units(0, 15, "a", "2026-03-05T00:00:00Z"));
    let r = ledger.reconcile(&c, &src, None, now).unwrap();
    assert_eq!(r.adjustments.len(), 1);
    assert_eq!(r.adjustments[0].amount, Decimal::from(10));
    assert_eq!(r.adjustments[0].issued, Decimal::from(20));
    // As of before the correction, nothing changed from what was issued
    // plus the adjustment: it is reversed.
    let before = ledger
        .reconcile(&c, &src, Some(at("2026-03-02T00:00:00Z")), now)
        .unwrap();
    assert_eq!(before.adjustments.len(), 1);
    assert_eq!(before.adjustments[0].amount, Decimal::from(-10));
    let now_again = ledger.reconcile(&c, &src, None, now).unwrap();
    assert_eq!(now_again.adjustments[0].amount, Decimal::from(10));
    assert!(
        ledger
            .reconcile(&c, &src, None, now)
            .unwrap()
            .adjustments
            .is_empty()
    );
    let history = ledger.history("simple").unwrap();
    assert_eq!(history.statements.len(), 2);
    assert_eq!(history.adjustments.len(), 3);
    assert_eq!(
        history.statements[0].entry.total.to_string(),
        "20.00",
        "the issued statement itself never changes"
    );
    // Read back, a statement carries its id and when it was issued.
    let s = &history.statements[1];
    assert_eq!(s.entry.id, Some(s.id));
    assert_eq!(s.entry.issued_at, Some(s.issued_at));
    assert_eq!(s.version, c.version());
    // `--period` issues the one period asked for.
    let march = ledger
        .issue(
            &c,
            &src,
            &RunOptions::new(now).period(NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()),
        )
        .unwrap();
    assert_eq!(march.statements.len(), 1);
    let bad = ledger
        .issue(
            &c,
            &src,
            &RunOptions::new(now).period(NaiveDate::from_ymd_opt(2026, 3, 2).unwrap()),
        )
        .unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::InvalidArgument);
}

#[test]
fn lifecycle_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    lifecycle(&Store::Sqlite(dir.path().join("ledger.db")));
}

#[test]
fn lifecycle_postgres() {
    let Some(_) = pg::server() else {
        return;
    };
    lifecycle(&Store::Postgres(pg::fresh("ledger_lifecycle").unwrap()));
}

#[test]
fn issued_rows_cannot_be_changed_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let ledger = Ledger::create(&Store::Sqlite(path.clone())).unwrap();
    let c = CompiledContract::from_toml_str(SIMPLE).unwrap();
    let mut src = MemorySource::new();
    src.push(units(0, 10, "a", "2026-01-26T00:00:00Z"));
    ledger
        .issue(&c, &src, &RunOptions::new(at("2026-02-01T00:00:00Z")))
        .unwrap();
    drop(ledger);
    let db = rusqlite::Connection::open(&path).unwrap();
    for sql in [
        "UPDATE outcome_statements SET total = '0'",
        "DELETE FROM outcome_statements",
        "UPDATE outcome_statement_lines SET amount = '0'",
        "DELETE FROM outcome_statement_lines",
    ] {
        let e = db.execute(sql, []).unwrap_err();
        assert!(e.to_string().contains("append-only"), "{sql}: {e}");
    }
}

#[test]
fn issued_rows_cannot_be_changed_in_postgres() {
    let Some(_) = pg::server() else {
        return;
    };
    let db = pg::fresh("ledger_append_only").unwrap();
    let ledger = Ledger::create(&Store::Postgres(db.clone())).unwrap();
    let c = CompiledContract::from_toml_str(SIMPLE).unwrap();
    let mut src = MemorySource::new();
    src.push(units(0, 10, "a", "2026-01-26T00:00:00Z"));
    ledger
        .issue(&c, &src, &RunOptions::new(at("2026-02-01T00:00:00Z")))
        .unwrap();
    let mut client = postgres::Client::connect(&db, postgres::NoTls).unwrap();
    for sql in [
        "UPDATE outcome_statements SET total = 0",
        "DELETE FROM outcome_statements",
        "TRUNCATE outcome_statements CASCADE",
        "DELETE FROM outcome_statement_lines",
    ] {
        let e = client.batch_execute(sql).unwrap_err();
        let text = e
            .as_db_error()
            .map(|d| d.message().to_owned())
            .unwrap_or_default();
        assert!(text.contains("append-only"), "{sql}: {text}");
    }
}

/// A state made by another contract version is not used to carry into the
/// next period: the ledger settles afresh from the first period instead.
#[test]
fn an_edited_contract_settles_afresh() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::create(&Store::Sqlite(dir.path().join("l.db"))).unwrap();
    let c = CompiledContract::from_toml_str(SIMPLE).unwrap();
    let edited = CompiledContract::from_toml_str(&SIMPLE.replace("\"2\"", "\"3\"")).unwrap();
    let mut src = MemorySource::new();
    src.push(units(0, 10, "a", "2026-01-26T00:00:00Z"));
    src.push(units(1, 10, "b", "2026-02-26T00:00:00Z"));
    let february = at("2026-02-01T00:00:00Z");
    ledger
        .issue(
            &c,
            &src,
            &RunOptions::new(february).as_of(Stamp::At(february)),
        )
        .unwrap();
    let second = ledger
        .issue(&edited, &src, &RunOptions::new(at("2026-03-01T00:00:00Z")))
        .unwrap();
    assert_eq!(second.statements.len(), 1);
    assert_eq!(second.statements[0].entry.total.to_string(), "30.00");
    assert_eq!(second.statements[0].version, edited.version());
}
