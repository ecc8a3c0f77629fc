//! Simulation throughput: contract-period settlements per second on one
//! core, for a contract of four charges (fixed, tiered, unit, bands) and
//! two limits over a 12-period scenario of random series.
//!
//! Run: `cargo bench --bench simulate`. Criterion reports throughput in
//! elements per second, one element being one contract-period settlement
//! (runs × periods).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use outcome_billing::settle::Amounts;
use outcome_billing::simulate::{Scenario, ScenarioFrame, SimulateOptions, simulate};
use outcome_billing::{CompiledContract, Contract};
use rust_decimal::Decimal;

const RUNS: usize = 1000;

const CONTRACT: &str = r#"
format = 1
id = "bench-2026"
customer = "acme"
currency = "USD"
start = "2026-01-01"
end = "2027-01-01"
cadence = "monthly"
timezone = "America/New_York"

[params]
allowance = "50"

[metrics.resolutions]
series = "resolved"
aggregate = "sum"

[metrics.conversations]
series = "conversations"
aggregate = "sum"

[metrics.uptime]
series = "uptime_pct"
aggregate = "min"

[kpis.rate]
expr = "if(conversations > 0, resolutions / conversations, 0)"

[[charges]]
id = "plan"
kind = "fixed"
amount = "49"

[[charges]]
id = "per_resolution"
kind = "tiered"
mode = "graduated"
quantity = "resolutions"
tiers = [ { up_to = "allowance", unit_price = "0" }, { up_to = "1000", unit_price = "0.99" }, { unit_price = "0.89" } ]

[[charges]]
id = "per_conversation"
kind = "unit"
quantity = "conversations"
unit_price = "0.05"

[[charges]]
id = "quality"
kind = "bands"
kpi = "rate"
bands = [ { from = "0.8", amount = "100" }, { to = "0.5", amount = "-50" } ]

[[limits]]
id = "monthly_cap"
kind = "cap"
amount = "1200"
applies_to = ["per_resolution", "quality"]
scope = "period"

[[limits]]
id = "commit"
kind = "floor"
amount = "12000"
scope = "contract_year"
"#;

const SCENARIO: &str = r#"
periods = 12

[series.resolved]
model = "lognormal"
median = "900"
sigma = "0.3"
decimals = 0

[series.conversations]
model = "normal"
mean = "1200"
sd = "150"
min = "0"
decimals = 0

[series.uptime_pct]
model = "normal"
mean = "99.95"
sd = "0.05"
max = "100"
decimals = 3
"#;

fn bench(c: &mut Criterion) {
    let contract =
        CompiledContract::new(Contract::from_toml_str(CONTRACT).expect("valid contract"))
            .expect("compiles");
    let scenario = Scenario::from_toml_str(SCENARIO).expect("valid scenario");
    let frame = ScenarioFrame::new(&contract, &scenario).expect("lays");
    let periods = frame.periods();
    // One core: a pool of one thread, built once.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a pool");

    let mut group = c.benchmark_group("simulate");
    group.sample_size(20);
    group.throughput(Throughput::Elements((RUNS * periods) as u64));

    // The whole of `simulate`: draws, settlement, statistics and report.
    let options = SimulateOptions::new().runs(RUNS).seed(1);
    group.bench_function("1000_runs_12_periods_one_core", |b| {
        b.iter(|| {
            pool.install(|| simulate(&contract, &scenario, &options).expect("simulates"))
                .term
                .total
                .mean
        })
    });

    // The inner loop alone: draw a run, settle its periods.
    group.bench_function("draw_and_settle_loop_one_core", |b| {
        let mut values = Vec::new();
        let mut amounts = Amounts::default();
        b.iter(|| {
            let mut total = Decimal::ZERO;
            for run in 0..RUNS as u64 {
                frame.draw(1, run, &mut values).expect("draws");
                let source = frame.source(&values);
                let mut state = contract.initial_state();
                for _ in 0..periods {
                    contract
                        .settle_next_amounts(&source, &mut state, &mut amounts, None)
                        .expect("settles");
                    total += amounts.total;
                }
            }
            total
        })
    });

    // The same loop timed by the thread's CPU time rather than the wall
    // clock, so other work on a shared machine does not count against it
    // (Linux; elsewhere, the wall clock).
    group.bench_function("draw_and_settle_loop_one_core_cpu_time", |b| {
        let mut values = Vec::new();
        let mut amounts = Amounts::default();
        b.iter_custom(|iterations| {
            let wall = std::time::Instant::now();
            let cpu = thread_cpu_ns();
            let mut total = Decimal::ZERO;
            for _ in 0..iterations {
                for run in 0..RUNS as u64 {
                    frame.draw(1, run, &mut values).expect("draws");
                    let source = frame.source(&values);
                    let mut state = contract.initial_state();
                    for _ in 0..periods {
                        contract
                            .settle_next_amounts(&source, &mut state, &mut amounts, None)
                            .expect("settles");
                        total += amounts.total;
                    }
                }
            }
            std::hint::black_box(total);
            match (cpu, thread_cpu_ns()) {
                (Some(a), Some(b)) => std::time::Duration::from_nanos(b - a),
                _ => wall.elapsed(),
            }
        })
    });

    // Draws alone, for the split between drawing and settling.
    group.bench_function("draws_only", |b| {
        let mut values = Vec::new();
        b.iter(|| {
            for run in 0..RUNS as u64 {
                frame.draw(1, run, &mut values).expect("draws");
            }
            values.len()
        })
    });
    group.finish();
}

/// Nanoseconds this thread has spent on a CPU (the first field of
/// `/proc/thread-self/schedstat`), where Linux says.
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

criterion_group!(benches, bench);
criterion_main!(benches);
