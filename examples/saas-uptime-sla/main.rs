//! Fabrikam's RouteCloud subscription: what the uptime SLA credits cost.
//!
//! 1. Settle 2025: the monthly uptime and the credit it triggered.
//! 2. Simulate 1,000 years of normally distributed monthly uptime: how often
//!    credits bite, and how that changes if the platform gets less reliable.
//! 3. Sweep a constant monthly uptime to chart the credit schedule.
//!
//! Run with `cargo run --example saas-uptime-sla`.

use std::path::Path;

use outcome_billing::metric::CsvSource;
use outcome_billing::simulate::{
    Basis, ChartLabels, Model, Scenario, SimulateOptions, SweepSpec, simulate, sweep,
};
use outcome_billing::{CompiledContract, Contract, SettleOptions};
use rust_decimal::Decimal;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/saas-uptime-sla");
    let contract = CompiledContract::new(Contract::from_path(dir.join("contract.toml"))?)?;

    // 1. 2025, with traces: the credit line records the month's uptime.
    let history = CsvSource::open(dir.join("metrics.csv"))?;
    let last = contract.periods().len() - 1;
    let year = contract.settle_through(&history, last, &SettleOptions::default())?;
    println!("Fabrikam RouteCloud, 2025");
    println!("month       uptime   SLA credit    invoice");
    for statement in &year {
        let Some(credit) = statement.lines.iter().find(|l| l.charge == "sla_credit") else {
            continue;
        };
        let uptime = credit
            .trace
            .iter()
            .find(|s| s.step.starts_with("kpi: uptime"))
            .and_then(|s| s.value.parse::<Decimal>().ok())
            .unwrap_or_default();
        println!(
            "{}  {:>7}%  {:>10}  {:>9}",
            statement.period.start.format("%b %Y"),
            format!("{:.3}", uptime.round_dp(3)), // {:.3} alone truncates
            usd(credit.amount),
            usd(statement.total)
        );
    }
    let billed: Decimal = year.iter().map(|s| s.total).sum();
    println!("2025 total                        {:>9}\n", usd(billed));

    // 2. The scenario: monthly uptime normal around 99.95%, sd 0.08 points.
    // Then the same with the mean slipping, to see how fast credits grow.
    let scenario = Scenario::from_path(dir.join("scenario.toml"))?;
    let options = SimulateOptions::new().runs(1000).seed(0);
    println!("1,000 simulated years of monthly uptime (normal, sd 0.08 points):");
    println!("mean uptime  expected credits  years with a credit  worst 1 year in 20");
    for mean_uptime in ["99.97", "99.95", "99.93", "99.90"] {
        let mut what_if = scenario.clone();
        if let Some(Model::Normal { mean, .. }) = what_if.series.get_mut("uptime_pct") {
            *mean = mean_uptime.parse()?;
        }
        let report = simulate(&contract, &what_if, &options)?;
        // A year without credit bills exactly the fixed fees.
        let full: Decimal = report
            .term
            .charges
            .iter()
            .filter(|(id, _)| id != "sla_credit")
            .map(|(_, s)| s.mean)
            .sum();
        let credited = report.term_totals.iter().filter(|t| **t < full).count();
        let credit = report
            .term
            .charges
            .iter()
            .find(|(id, _)| id == "sla_credit")
            .map(|(_, s)| *s);
        let Some(credit) = credit else { continue };
        println!(
            "{:>10}%  {:>16}  {:>19}  {:>18}",
            mean_uptime,
            usd(-credit.mean),
            percent(credited, report.runs),
            usd(-credit.p5)
        );
    }
    println!("(the contract is worth $246,000 a year before credits)");

    // 3. The credit schedule itself: a year at one constant monthly uptime.
    let spec = SweepSpec::new("uptime_pct", "98.8".parse()?, "100".parse()?).steps(120);
    let schedule = sweep(
        std::slice::from_ref(&contract),
        &spec,
        Basis::Scenario(&Scenario::default()),
        &options,
    )?;
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/examples");
    std::fs::create_dir_all(&out)?;
    let chart = out.join("saas-uptime-sla.svg");
    std::fs::write(
        &chart,
        schedule.chart_svg_with(
            &ChartLabels::new()
                .title("RouteCloud: the year's invoice after uptime credits")
                .x("monthly uptime, the same every month (%)")
                .y("invoice for the year (USD)"),
        )?,
    )?;
    println!(
        "\nChart (a year's revenue at a constant monthly uptime): {}",
        chart.display()
    );
    Ok(())
}

/// Whole dollars with thousands separators: `$246,000`, `-$1,800`.
fn usd(amount: Decimal) -> String {
    let sign = if amount.round().is_sign_negative() && !amount.round().is_zero() {
        "-"
    } else {
        ""
    };
    let digits = amount.round().abs().to_string();
    let mut out = String::new();
    for (k, c) in digits.chars().enumerate() {
        if k > 0 && (digits.len() - k) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}${out}")
}

/// `count` out of `runs` as a percentage with one decimal: `97.4%`.
fn percent(count: usize, runs: usize) -> String {
    let share = Decimal::from(count as u64) * Decimal::from(100) / Decimal::from(runs as u64);
    format!("{:.1}%", share.round_dp(1))
}
