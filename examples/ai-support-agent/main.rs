//! Northwind's AI support agent: per-resolution pricing against the seat
//! plan it would replace.
//!
//! 1. Settle 2025's actual volumes under both plans, month by month.
//! 2. Simulate next year on identical draws for both plans (compare).
//! 3. Sweep monthly resolutions to find where the two plans cost the same.
//!
//! Run with `cargo run --example ai-support-agent`.

use std::path::Path;

use outcome_billing::metric::CsvSource;
use outcome_billing::simulate::{
    Basis, ChartLabels, Scenario, SimulateOptions, SweepSpec, compare, sweep,
};
use outcome_billing::{CompiledContract, Contract, SettleOptions, Statement};
use rust_decimal::Decimal;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ai-support-agent");
    let per_resolution = CompiledContract::new(Contract::from_path(dir.join("contract.toml"))?)?;
    let seats = CompiledContract::new(Contract::from_path(dir.join("seat-plan.toml"))?)?;

    // 1. The 2025 history, settled under both plans.
    let history = CsvSource::open(dir.join("metrics.csv"))?;
    let options = SettleOptions::default().trace(false);
    let last = per_resolution.periods().len() - 1;
    let billed = per_resolution.settle_through(&history, last, &options)?;
    let seat_billed = seats.settle_through(&history, last, &options)?;

    println!("Northwind, 2025 actuals under both plans");
    println!("month      billable  per-resolution  seat plan  difference");
    for (p, s) in billed.iter().zip(&seat_billed) {
        let billable = p.lines.iter().find(|l| l.charge == "per_resolution");
        let billable = billable.and_then(|l| l.quantity).unwrap_or_default();
        println!(
            "{}  {:>8}  {:>14}  {:>9}  {:>10}",
            p.period.start.format("%b %Y"),
            grouped(billable),
            usd(p.total),
            usd(s.total),
            usd(p.total - s.total),
        );
    }
    let (year, seat_year) = (sum(&billed), sum(&seat_billed));
    println!(
        "2025 total          {:>14}  {:>9}  {:>10}\n",
        usd(year),
        usd(seat_year),
        usd(year - seat_year)
    );

    // 2. Next year: both plans on the same 1,000 simulated years.
    let scenario = Scenario::from_path(dir.join("scenario.toml"))?;
    let sim = SimulateOptions::new().runs(1000).seed(0);
    let contracts = [seats, per_resolution];
    let comparison = compare(&contracts, Basis::Scenario(&scenario), &sim)?;
    let offer = &comparison.contracts[1];
    let t = offer.term.total;
    let (_, cap_share) = &offer.term.limits[0];
    let diff = &comparison.differences[0];
    println!(
        "Next year, {} simulated years (scenario.toml):",
        grouped(offer.runs.into())
    );
    println!(
        "  per-resolution revenue: expected {} (5th-95th percentile: {} to {})",
        usd(t.mean),
        usd(t.p5),
        usd(t.p95)
    );
    println!(
        "  that is {} more than the seat plan's $72,000 on average; per resolution earns more in {} of years",
        usd(diff.stats.mean),
        percent(diff.larger)
    );
    let worst = offer.term_totals.iter().copied().max().unwrap_or_default();
    println!(
        "  the $66,000 usage cap binds in {} of years; the customer's dearest year is {}",
        percent(*cap_share),
        usd(worst)
    );

    // 3. Where do the plans cost the same? Resolutions a month from 2,000 to
    // 10,000; the other series as the scenario draws them.
    let spec = SweepSpec::new("resolved_conversations", 2000.into(), 10_000.into()).steps(16);
    let report = sweep(&contracts, &spec, Basis::Scenario(&scenario), &sim)?;
    for b in &report.break_even {
        println!(
            "  breaks even with the seat plan at {} resolved conversations a month",
            grouped(b.level)
        );
    }

    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/examples");
    std::fs::create_dir_all(&out)?;
    let chart = out.join("ai-support-agent.svg");
    std::fs::write(
        &chart,
        report.chart_svg_with(
            &ChartLabels::new()
                .title("Northwind: per-resolution pricing vs the seat plan")
                .x("resolved conversations a month")
                .y("expected cost for the year (USD)"),
        )?,
    )?;
    println!(
        "\nChart (term total by monthly resolutions): {}",
        chart.display()
    );
    Ok(())
}

fn sum(statements: &[Statement]) -> Decimal {
    statements.iter().map(|s| s.total).sum()
}

/// Whole dollars with thousands separators: `$70,402`, `-$1,598`.
fn usd(amount: Decimal) -> String {
    let sign = if amount.is_sign_negative() && !amount.round().is_zero() {
        "-"
    } else {
        ""
    };
    format!("{sign}${}", grouped(amount.abs()))
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

/// A share of runs (`0.4530`) as a percentage (`45.3%`).
fn percent(share: Decimal) -> String {
    format!("{}%", (share * Decimal::from(100)).round_dp(1).normalize())
}
