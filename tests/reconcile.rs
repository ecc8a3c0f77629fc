//! Corrections settled as adjustments: `reconcile` against issued statements.

use std::process::Command;

use outcome_billing::metric::{MemorySource, Observation};
use outcome_billing::period::Stamp;
use outcome_billing::reconcile::{issued_lines, reconcile};
use outcome_billing::report::{ContractStatements, RunItem, run_json};
use outcome_billing::{CompiledContract, Contract, SettleOptions};
use proptest::prelude::*;
use rust_decimal::Decimal;

const CONTRACT: &str = r#"
format = 1
id = "rec"
customer = "acme"
currency = "USD"
start = "2026-01-01"
end = "2026-07-01"
cadence = "monthly"

[metrics.units]
series = "units"
aggregate = "sum"

[[charges]]
id = "usage"
kind = "tiered"
mode = "graduated"
quantity = "units"
accumulate = "contract_year"
tiers = [ { up_to = "100", unit_price = "1" }, { unit_price = "0.5" } ]

[[charges]]
id = "bonus"
kind = "bands"
kpi = "units"
bands = [ { from = "50", amount = "10" } ]

[[limits]]
id = "cap"
kind = "cap"
amount = "150"
scope = "term"
"#;

fn at(text: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&chrono::Utc)
}

/// Observations with ids: each (month, value, recorded day) is a version.
fn source(versions: &[(u32, u32, i64, u32)]) -> MemorySource {
    let mut s = MemorySource::new();
    for &(month, id, value, recorded_day) in versions {
        let ts = chrono::NaiveDate::from_ymd_opt(2026, month, 10)
            .unwrap()
            .and_hms_opt(12, 0, 0)
            .unwrap()
            .and_utc();
        let mut o = Observation::new("units", Stamp::At(ts), Decimal::from(value));
        o.id = Some(format!("u-{month}-{id}"));
        o.customer = Some("acme".into());
        let rec = chrono::NaiveDate::from_ymd_opt(2026, 7, 1).unwrap()
            + chrono::Days::new(u64::from(recorded_day));
        o.recorded_at = Some(Stamp::At(if recorded_day == 0 {
            ts
        } else {
            rec.and_hms_opt(0, 0, 0).unwrap().and_utc()
        }));
        s.push(o);
    }
    s
}

fn issued_document(
    c: &CompiledContract,
    src: &MemorySource,
    as_of: chrono::DateTime<chrono::Utc>,
) -> String {
    let statements = c
        .settle_through(src, 5, &SettleOptions::default().as_of(as_of))
        .unwrap();
    let item = RunItem::Settled(ContractStatements {
        contract: c.contract().id.clone(),
        currency: c.currency(),
        rounding: c.rounding(),
        statements,
    });
    run_json(&[item], false).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Settling with the corrections equals the issued amounts plus the
    /// adjustments, line by line; and reconciling again adds nothing.
    #[test]
    fn issued_plus_adjustments_equals_settled_with_corrections(
        versions in proptest::collection::vec((1u32..=6, 0u32..3, -20i64..200, 0u32..20), 1..30),
    ) {
        let c = CompiledContract::new(Contract::from_toml_str(CONTRACT).unwrap()).unwrap();
        let src = source(&versions);
        let first = at("2026-07-05T00:00:00Z");
        let later = at("2026-08-01T00:00:00Z");
        let Ok(_) = c.settle_through(&src, 5, &SettleOptions::default().as_of(later)) else {
            // Ties between different versions are a data error; skip such draws.
            return Ok(());
        };
        let Ok(_) = c.settle_through(&src, 5, &SettleOptions::default().as_of(first)) else { return Ok(()); };
        let doc = issued_document(&c, &src, first);
        let issued = issued_lines("issued.json", &doc, "rec").unwrap();
        let result = reconcile(&c, &src, &issued, Some(later)).unwrap();
        for s in &result.settled.statements {
            for line in &s.lines {
                let was: Decimal = issued.iter().filter(|l| l.period_start == s.period.start && l.charge == line.charge).map(|l| l.amount).sum();
                let adj: Decimal = result.adjustments.iter().filter(|a| a.period_start == s.period.start && a.charge == line.charge).map(|a| a.amount).sum();
                prop_assert_eq!(was + adj, line.amount, "{} {}", s.period.start, line.charge);
            }
        }
        // Lines found only on the issued side are reversed in full.
        for l in &issued {
            let still = result.settled.statements.iter().any(|s| s.period.start == l.period_start && s.lines.iter().any(|x| x.charge == l.charge));
            if !still && !l.amount.is_zero() {
                prop_assert!(result.adjustments.iter().any(|a| a.period_start == l.period_start && a.charge == l.charge && a.amount == -l.amount));
            }
        }
        let again = serde_json::to_string(&result.to_json().unwrap()).unwrap();
        let issued_again = issued_lines("reconciled.json", &again, "rec").unwrap();
        let twice = reconcile(&c, &src, &issued_again, Some(later)).unwrap();
        prop_assert!(twice.adjustments.is_empty());
    }
}

#[test]
fn the_command_line_reconciles_a_late_correction() {
    // A correction recorded after the first settlement becomes one
    // adjustment; reconciling the output again prints an empty list.
    let dir = tempfile::tempdir().unwrap();
    let contract = dir.path().join("rec.toml");
    std::fs::write(&contract, CONTRACT).unwrap();
    let data = dir.path().join("data.csv");
    std::fs::write(
        &data,
        "customer,series,timestamp,value,id,recorded_at\n\
         acme,units,2026-01-10T12:00:00Z,40,a,2026-01-10T12:00:00Z\n\
         acme,units,2026-01-10T12:00:00Z,60,a,2026-02-15T00:00:00Z\n",
    )
    .unwrap();
    // `outcome COMMAND CONTRACT --metrics DATA ARGS... --format json`.
    let outcome = |command: &str, args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_outcome"))
            .args([
                command,
                contract.to_str().unwrap(),
                "--metrics",
                data.to_str().unwrap(),
            ])
            .args(args)
            .args(["--format", "json"])
            .output()
            .unwrap()
    };
    let out = outcome("settle", &["--as-of", "2026-02-01"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let issued = dir.path().join("issued.json");
    std::fs::write(&issued, &out.stdout).unwrap();
    let out = outcome(
        "reconcile",
        &[
            "--issued",
            issued.to_str().unwrap(),
            "--as-of",
            "2026-03-01",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let adjustments = doc["adjustments"].as_array().unwrap();
    // January: 40 units -> 60 units at 1.00 each (+20.00), and the bonus band from 50 (+10.00).
    let amounts: Vec<(&str, &str)> = adjustments
        .iter()
        .map(|a| (a["charge"].as_str().unwrap(), a["amount"].as_str().unwrap()))
        .collect();
    assert_eq!(amounts, [("usage", "20.00"), ("bonus", "10.00")]);
    assert_eq!(adjustments[0]["issued"], "40.00");
    assert_eq!(adjustments[0]["settled"], "60.00");
    let again = dir.path().join("reconciled.json");
    std::fs::write(&again, &out.stdout).unwrap();
    let out = outcome(
        "reconcile",
        &["--issued", again.to_str().unwrap(), "--as-of", "2026-03-01"],
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["adjustments"], serde_json::json!([]));
}
