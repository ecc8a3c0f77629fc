//! Lakeshore ACO: two-sided shared savings and losses on total cost of care.
//!
//! 1. Settle the 2025 performance year and show the reconciliation from the
//!    line's trace: benchmark, paid claims, savings rate, sharing.
//! 2. Simulate 1,000 performance years: how often the ACO earns shared
//!    savings, lands in the corridor, or owes shared losses; how often the
//!    caps bind.
//! 3. Sweep paid claims to chart the settlement against spending.
//!
//! Run with `cargo run --example value-based-care`.

use std::path::Path;

use outcome_billing::metric::CsvSource;
use outcome_billing::simulate::{
    Basis, ChartLabels, Scenario, SimulateOptions, SweepSpec, simulate, sweep,
};
use outcome_billing::{CompiledContract, Contract, Line, SettleOptions};
use rust_decimal::Decimal;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/value-based-care");
    let contract = CompiledContract::new(Contract::from_path(dir.join("contract.toml"))?)?;

    // 1. One annual period: the reconciliation, read back from the trace.
    let history = CsvSource::open(dir.join("metrics.csv"))?;
    let year = contract.settle_through(&history, 0, &SettleOptions::default())?;
    let statement = &year[0];
    let fee = line(&statement.lines, "care_coordination");
    let shared = line(&statement.lines, "shared_savings");
    let member_months = step(shared, "metric member_months");
    let benchmark = step(shared, "baseline: benchmark");
    let claims = step(shared, "actual: paid_claims");
    let savings = benchmark - claims;
    println!("Lakeshore ACO, performance year 2025");
    println!("  member months        {:>12}", grouped(member_months));
    println!(
        "  benchmark            {:>12}  (${:.2} PMPM)",
        usd(benchmark),
        (benchmark / member_months).round_dp(2)
    );
    println!(
        "  paid claims          {:>12}  (${:.2} PMPM)",
        usd(claims),
        (claims / member_months).round_dp(2)
    );
    println!(
        "  savings              {:>12}  ({:.2}% of the benchmark; 2% needed)",
        usd(savings),
        (savings / benchmark * Decimal::from(100)).round_dp(2)
    );
    println!(
        "  shared savings       {:>12}  (50% x quality {})",
        usd(shared.amount),
        step(shared, "metric quality_score")
    );
    println!("  care coordination    {:>12}  ($3 PMPM)", usd(fee.amount));
    println!("  owed to the ACO      {:>12}\n", usd(statement.total));

    // 2. 1,000 performance years on a fixed panel (scenario.toml).
    let scenario = Scenario::from_path(dir.join("scenario.toml"))?;
    let options = SimulateOptions::new().runs(1000).seed(0);
    let report = simulate(&contract, &scenario, &options)?;
    let t = report.term.total;
    let fee = report.term.charges[0].1.mean; // the fee is fixed by the fixed panel
    let totals = &report.term_totals;
    let share = |count: usize| percent(count, totals.len());
    println!("1,000 simulated performance years:");
    println!(
        "  settlement: expected {} to the ACO (5th-95th percentile: {} to {})",
        usd(t.mean),
        usd(t.p5),
        usd(t.p95)
    );
    println!(
        "  shared savings in {} of years, inside the 2% corridor in {}, shared losses in {}",
        share(totals.iter().filter(|x| **x > fee).count()),
        share(totals.iter().filter(|x| **x == fee).count()),
        share(totals.iter().filter(|x| **x < fee).count()),
    );
    // A capped year lands exactly on the cap; uncapped results are spread
    // out, so a best or worst total that repeats is a cap at work.
    let (best, worst) = (
        totals.iter().copied().max().unwrap_or_default(),
        totals.iter().copied().min().unwrap_or_default(),
    );
    let at = |x: Decimal| totals.iter().filter(|t| **t == x).count();
    println!(
        "  the savings cap binds in {} of years (best year {}); the loss cap in {} (worst year {})",
        share(if at(best) > 1 { at(best) } else { 0 }),
        usd(best),
        share(if at(worst) > 1 { at(worst) } else { 0 }),
        usd(worst)
    );

    // 3. The settlement against paid claims, 82 to 106 million.
    let spec = SweepSpec::new("paid_claims", 82_000_000.into(), 106_000_000.into()).steps(96);
    let curve = sweep(
        std::slice::from_ref(&contract),
        &spec,
        Basis::Scenario(&scenario),
        &options.clone().runs(200),
    )?;
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/examples");
    std::fs::create_dir_all(&out)?;
    let chart = out.join("value-based-care.svg");
    std::fs::write(&chart, curve.chart_svg_with(
            &ChartLabels::new()
                .title("Lakeshore ACO 2025: shared savings (+) or losses (-) by paid claims")
                .subtitle("the year's settlement at each level of paid claims; mean of 200 simulated years")
                .x("paid claims for the performance year (USD)")
                .y("settlement (USD; below 0 the ACO pays back)"),
        )?)?;
    println!(
        "\nChart (settlement by paid claims for the year): {}",
        chart.display()
    );
    Ok(())
}

fn line<'a>(lines: &'a [Line], charge: &str) -> &'a Line {
    // Every charge has a line in every statement (the statement format).
    lines
        .iter()
        .find(|l| l.charge == charge)
        .unwrap_or(&lines[0])
}

/// The value of the first trace step that starts with `prefix`.
fn step(line: &Line, prefix: &str) -> Decimal {
    line.trace
        .iter()
        .find(|s| s.step.starts_with(prefix))
        .and_then(|s| s.value.parse().ok())
        .unwrap_or_default()
}

/// Whole dollars with thousands separators: `$1,454,439`, `-$1,453,860`.
fn usd(amount: Decimal) -> String {
    let sign = if amount.round().is_sign_negative() && !amount.round().is_zero() {
        "-"
    } else {
        ""
    };
    format!("{sign}${}", grouped(amount))
}

/// A number rounded to a whole, with thousands separators.
fn grouped(value: Decimal) -> String {
    let digits = value.round().abs().to_string();
    let mut out = String::new();
    for (k, c) in digits.chars().enumerate() {
        if k > 0 && (digits.len() - k) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `count` out of `runs` as a percentage with one decimal: `12.4%`.
fn percent(count: usize, runs: usize) -> String {
    let share = Decimal::from(count as u64) * Decimal::from(100) / Decimal::from(runs as u64);
    format!("{:.1}%", share.round_dp(1))
}
