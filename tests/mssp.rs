//! Real data: CMS's 333 Medicare Shared Savings Program settlements for
//! performance year 2014, reproduced by one contract template.
//!
//! Source: CMS, "Medicare Shared Savings Program Accountable Care
//! Organizations Performance Year 2014 Results" public use file (settlement
//! columns in `tests/data/mssp-2014`), and 42 CFR part 425 subpart G.

use std::path::PathBuf;

use outcome_billing::metric::CsvSource;
use outcome_billing::{CompiledContract, Contract, SettleOptions};
use rust_decimal::Decimal;

fn cms_data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/mssp-2014/aco-settlements.csv")
}

/// One ACO's published row.
struct Aco {
    id: String,
    earned: Decimal,
}

/// Turns the public use file into metric data (one observation per figure,
/// customer = ACO) and the list of published payments.
fn metric_csv_and_acos(text: &str) -> (String, Vec<Aco>) {
    let mut out = String::from("customer,series,timestamp,value\n");
    let mut acos = Vec::new();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("column {name}"))
    };
    let (id, t2, n, bench, exp, qual, perf, fin, earned) = (
        col("ACO_Num"),
        col("Track2"),
        col("N_AB"),
        col("ABtotBnchmk"),
        col("ABtotExp"),
        col("QualScore"),
        col("QualPerfShare"),
        col("FinalShareRate"),
        col("EarnSaveLoss"),
    );
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(',').collect();
        // Pay-for-reporting rows carry no score: their quality factor is the
        // final rate over the track's maximum (1 or 0), as the README says.
        let quality = if f[qual] == "P4R" {
            let fin: Decimal = f[fin].parse().unwrap();
            let perf: Decimal = f[perf].parse().unwrap();
            (fin / perf).round_dp(0).to_string()
        } else {
            f[qual].to_string()
        };
        for (series, value) in [
            ("benchmark", f[bench]),
            ("expenditure", f[exp]),
            ("beneficiaries", f[n]),
            ("quality", quality.as_str()),
            ("track2", f[t2]),
        ] {
            out.push_str(&format!("{},{series},2014-07-01,{value}\n", f[id]));
        }
        acos.push(Aco {
            id: f[id].to_string(),
            earned: f[earned].parse().unwrap(),
        });
    }
    (out, acos)
}

#[test]
fn every_aco_payment_is_reproduced_within_one_dollar() {
    // Proves the shared-savings rules, expressed once as a contract, give
    // each of the 333 ACOs the payment CMS made, within $1.
    let text = std::fs::read_to_string(cms_data())
        .expect("tests/data/mssp-2014/aco-settlements.csv in the repository");
    let (csv, acos) = metric_csv_and_acos(&text);
    assert_eq!(acos.len(), 333);
    let source = CsvSource::from_reader("mssp-2014.csv", csv.as_bytes()).unwrap();
    let template = Contract::from_path(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/mssp-2014.toml"
    ))
    .unwrap();
    let mut worst = Decimal::ZERO;
    let mut paid = 0;
    for aco in &acos {
        let mut contract = template.clone();
        contract.customer = aco.id.clone();
        contract.id = format!("mssp-2014-{}", aco.id);
        let compiled = CompiledContract::new(contract).unwrap();
        let statements = compiled
            .settle_through(&source, 0, &SettleOptions::default())
            .unwrap();
        let total = statements[0].total;
        let diff = (total - aco.earned).abs();
        assert!(
            diff <= Decimal::ONE,
            "{}: settled {total}, CMS paid {} (off by {diff})",
            aco.id,
            aco.earned
        );
        worst = worst.max(diff);
        if !aco.earned.is_zero() {
            paid += 1;
        }
    }
    // 2014: 86 ACOs earned shared savings payments.
    assert!(paid > 80, "only {paid} ACOs were paid");
    eprintln!("largest difference: ${worst}");
}
