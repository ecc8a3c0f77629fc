//! Billing-run benchmark: settle one month of 10,000 generated contracts
//! from an in-memory source.
//!
//! Run: `cargo bench --bench settle`

use criterion::{Criterion, criterion_group, criterion_main};
use outcome_billing::metric::{MemorySource, Observation};
use outcome_billing::period::Stamp;
use outcome_billing::{CompiledContract, Contract, SettleOptions};
use rust_decimal::Decimal;

const CONTRACTS: usize = 10_000;

/// A contract of four charges and two limits, varied by `n`.
fn contract(n: usize) -> Contract {
    let text = format!(
        r#"
format = 1
id = "c{n:05}"
customer = "cust{n:05}"
currency = "USD"
start = "2026-01-01"
end = "2027-01-01"
cadence = "monthly"
timezone = "America/New_York"

[params]
allowance = "{allowance}"

[metrics.resolutions]
series = "resolutions"
aggregate = "sum"

[metrics.conversations]
series = "conversations"
aggregate = "sum"

[metrics.uptime]
series = "uptime"
aggregate = "min"
missing = "zero"

[kpis.rate]
expr = "if(conversations > 0, resolutions / conversations, 0)"

[[charges]]
id = "plan"
kind = "fixed"
amount = "{plan}"

[[charges]]
id = "per_resolution"
kind = "tiered"
mode = "graduated"
quantity = "resolutions"
tiers = [ {{ up_to = "allowance", unit_price = "0" }}, {{ up_to = "1000", unit_price = "0.99" }}, {{ unit_price = "0.89" }} ]

[[charges]]
id = "quality_bonus"
kind = "bands"
kpi = "rate"
bands = [ {{ from = "0.8", amount = "100" }} ]

[[charges]]
id = "uptime_credit"
kind = "bands"
kpi = "uptime"
bands = [ {{ from = "99.0", to = "99.9", percent = "-10", of = ["plan", "per_resolution"] }} ]

[[limits]]
id = "monthly_cap"
kind = "cap"
amount = "2500"
applies_to = ["per_resolution", "quality_bonus"]
scope = "period"

[[limits]]
id = "commit"
kind = "floor"
amount = "1000"
scope = "contract_year"
"#,
        allowance = 50 + n % 100,
        plan = 49 + n % 50,
    );
    // The generated text is a valid contract by construction.
    Contract::from_toml_str(&text).expect("generated contract")
}

/// A month of daily observations for every customer.
fn source() -> MemorySource {
    let mut source = MemorySource::new();
    for n in 0..CONTRACTS {
        let customer = format!("cust{n:05}");
        for day in 1..=31u32 {
            let date = chrono::NaiveDate::from_ymd_opt(2026, 1, day).expect("January has 31 days");
            let stamp = Stamp::Date(date);
            for (series, value) in [
                ("resolutions", Decimal::from((n as u32 * 7 + day * 3) % 40)),
                (
                    "conversations",
                    Decimal::from((n as u32 * 5 + day) % 50 + 10),
                ),
                (
                    "uptime",
                    Decimal::new(9990 + i64::from((n as u32 + day) % 10), 2),
                ),
            ] {
                let mut o = Observation::new(series, stamp, value);
                o.customer = Some(customer.clone());
                source.push(o);
            }
        }
    }
    source
}

fn bench(c: &mut Criterion) {
    let contracts: Vec<CompiledContract> = (0..CONTRACTS)
        .map(|n| CompiledContract::new(contract(n)).expect("compiles"))
        .collect();
    let source = source();
    let mut group = c.benchmark_group("billing_run");
    group.sample_size(10);
    for (name, trace) in [
        ("10k_contracts_one_month_traced", true),
        ("10k_contracts_one_month_untraced", false),
    ] {
        let options = SettleOptions { as_of: None, trace };
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut total = Decimal::ZERO;
                for c in &contracts {
                    let (statement, _) = c
                        .settle_next(&source, &c.initial_state(), &options)
                        .expect("settles");
                    total += statement.total;
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
