//! St. Mary's hospital: an ESCO's share of verified gas savings, measured
//! against a weather-adjusted (heating degree-day) baseline.
//!
//! 1. Settle the first contract year and show, from each line's trace, the
//!    baseline, the gas burned and whether the threshold or the cap acted.
//! 2. What if the savings erode? Replay 2025 with the hospital burning 0-10%
//!    more gas, under shared savings and under the guaranteed-savings
//!    alternative.
//! 3. Chart both structures month by month on 2025's actuals.
//!
//! Run with `cargo run --example energy-savings`.

use std::path::Path;

use outcome_billing::metric::CsvSource;
use outcome_billing::simulate::{Basis, ChartLabels, Model, Scenario, SimulateOptions, compare};
use outcome_billing::{CompiledContract, Contract, Line, SettleOptions};
use rust_decimal::Decimal;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/energy-savings");
    let contracts = [
        CompiledContract::new(Contract::from_path(dir.join("contract.toml"))?)?,
        CompiledContract::new(Contract::from_path(dir.join("guaranteed-savings.toml"))?)?,
    ];
    let shared = &contracts[0];

    // 1. The first contract year of ten. Traces are on: they carry the
    // baseline and the meter reading behind every share.
    let history = CsvSource::open(dir.join("metrics.csv"))?;
    let year = shared.settle_through(&history, 11, &SettleOptions::default())?;
    println!("St. Mary's shared savings, contract year 1 (2025)");
    println!("month      HDD  baseline therms  gas burned  saved  ESCO share");
    for statement in &year {
        let line = statement.lines.iter().find(|l| l.charge == "savings_share");
        let Some(line) = line else { continue };
        let baseline = step(line, "baseline:");
        let actual = step(line, "actual:");
        let note = if has_step(line, "at most the cap") {
            "capped at $8,000"
        } else if has_step(line, "no gain") {
            "under the 5% threshold: nothing"
        } else {
            ""
        };
        let row = format!(
            "{}  {:>5}  {:>15}  {:>10}  {:>4}%  {:>10}  {}",
            statement.period.start.format("%b %Y"),
            grouped(step(line, "metric hdd:")),
            grouped(baseline),
            grouped(actual),
            ((baseline - actual) / baseline * Decimal::from(100)).round(),
            usd(line.amount),
            note
        );
        println!("{}", row.trim_end());
    }
    let total: Decimal = year.iter().map(|s| s.total).sum();
    println!(
        "year 1 total, shares plus the $450 monthly M&V fee: {}\n",
        usd(total)
    );

    // 2. Savings erosion: the scenario replays 2025's days and weather; we
    // scale the gas burned by 1.00 to 1.10.
    let scenario = Scenario::from_path(dir.join("scenario.toml"))?;
    println!("If the hospital burned more gas than in 2025 (same weather):");
    println!("more gas  shared savings  months paid nothing  guaranteed savings");
    let mut rows = Vec::new();
    for percent in [0, 2, 4, 6, 8, 10] {
        let drift = Decimal::new(100 + percent, 2); // 1.00, 1.02, ...
        let mut what_if = scenario.clone();
        if let Some(Model::Replay { scale, .. }) = what_if.series.get_mut("gas_therms") {
            *scale = drift;
        }
        let c = compare(
            &contracts,
            Basis::Scenario(&what_if),
            &SimulateOptions::new().runs(1),
        )?;
        let (shared_fee, guaranteed_fee) = (
            c.contracts[0].term.total.mean,
            c.contracts[1].term.total.mean,
        );
        let months_at_zero = c.contracts[0]
            .periods
            .iter()
            .filter(|p| {
                p.summary
                    .charges
                    .iter()
                    .any(|(id, s)| id == "savings_share" && s.mean.is_zero())
            })
            .count();
        println!(
            "{:>7}%  {:>14}  {:>19}  {:>18}",
            percent,
            usd(shared_fee),
            months_at_zero,
            usd(guaranteed_fee)
        );
        rows.push((Decimal::from(percent), shared_fee, guaranteed_fee));
    }
    // Where shared savings stops paying better: interpolate the sign change
    // of the difference between two drift levels.
    for pair in rows.windows(2) {
        let ((x0, s0, g0), (x1, s1, g1)) = (pair[0], pair[1]);
        let (d0, d1) = (s0 - g0, s1 - g1);
        if d0.is_sign_positive() != d1.is_sign_positive() {
            let at = x0 + (x1 - x0) * d0 / (d0 - d1);
            println!(
                "Shared savings pays the ESCO more until the hospital burns about {}% more gas; past that the guarantee pays more.",
                at.round_dp(1)
            );
        }
    }
    let ((_, s0, g0), (_, s10, g10)) = (rows[0], rows[rows.len() - 1]);
    println!(
        "Each 1% of erosion costs the ESCO about {} a year under shared savings, {} under the guarantee.",
        usd((s0 - s10) / Decimal::from(10)),
        usd((g0 - g10) / Decimal::from(10))
    );

    // 3. Both structures on 2025's actuals, month by month. History is
    // settled through the periods due at the end of 2025.
    let through_2025 = SimulateOptions::new().now(shared.periods()[11].end_at);
    let actuals = compare(&contracts, Basis::History(&history), &through_2025)?;
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/examples");
    std::fs::create_dir_all(&out)?;
    let chart = out.join("energy-savings.svg");
    std::fs::write(
        &chart,
        actuals.chart_svg_with(
            &ChartLabels::new()
                .title("St Mary's 2025: shared savings vs guaranteed savings")
                .y("payment to the ESCO per month (USD)"),
        )?,
    )?;
    println!(
        "\nChart (ESCO income per month, both structures, 2025): {}",
        chart.display()
    );
    Ok(())
}

/// The value of the first trace step that starts with `prefix`.
fn step(line: &Line, prefix: &str) -> Decimal {
    line.trace
        .iter()
        .find(|s| s.step.starts_with(prefix))
        .and_then(|s| s.value.parse().ok())
        .unwrap_or_default()
}

fn has_step(line: &Line, prefix: &str) -> bool {
    line.trace.iter().any(|s| s.step.starts_with(prefix))
}

/// Whole dollars with thousands separators: `$50,648`, `-$1,166`.
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
