//! BluePeak Coffee: a 12% success fee on net attributed revenue, with a
//! monthly minimum (floor) and a yearly cap.
//!
//! 1. Settle 2025: the fee, the floor's top-ups and the cap's cut.
//! 2. Simulate 1,000 years of log-normal monthly revenue, at three levels of
//!    volatility: how often the floor and the cap act, and what the agency
//!    can expect.
//! 3. Chart the monthly invoice's spread over the year.
//!
//! Run with `cargo run --example revenue-share`.

use std::path::Path;

use outcome_billing::metric::CsvSource;
use outcome_billing::simulate::{ChartLabels, Model, Scenario, SimulateOptions, simulate};
use outcome_billing::{CompiledContract, Contract, SettleOptions, Statement};
use rust_decimal::Decimal;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/revenue-share");
    let contract = CompiledContract::new(Contract::from_path(dir.join("contract.toml"))?)?;

    // 1. 2025: the limits add a line only in months where they act.
    let history = CsvSource::open(dir.join("metrics.csv"))?;
    let last = contract.periods().len() - 1;
    let year = contract.settle_through(&history, last, &SettleOptions::default())?;
    println!("BluePeak success fee, 2025");
    println!("month     net revenue  12% fee  floor top-up  cap cut  invoice");
    for s in &year {
        let fee = amount(s, "success_fee");
        // The fee line's trace records its base: the month's net revenue.
        let net_revenue = s
            .lines
            .iter()
            .flat_map(|l| &l.trace)
            .find(|t| t.step.starts_with("base: net_revenue"))
            .and_then(|t| t.value.parse().ok())
            .unwrap_or_default();
        println!(
            "{}  {:>11}  {:>7}  {:>12}  {:>7}  {:>7}",
            s.period.start.format("%b %Y"),
            usd(net_revenue),
            usd(fee),
            usd(amount(s, "monthly_minimum")),
            usd(amount(s, "annual_cap")),
            usd(s.total)
        );
    }
    let billed: Decimal = year.iter().map(|s| s.total).sum();
    println!("2025 total{:>53}\n", usd(billed));

    // 2. The scenario (median $320,000 a month, sigma 0.40), then calmer and
    // wilder months with the same median.
    let scenario = Scenario::from_path(dir.join("scenario.toml"))?;
    let options = SimulateOptions::new().runs(1000).seed(0);
    println!("1,000 simulated years, monthly revenue log-normal around $320,000:");
    println!(
        "sigma  expected fee   5th-95th percentile  floor acts in  cap binds in  limits' net effect"
    );
    let mut chart_report = None;
    for sigma_text in ["0.25", "0.40", "0.55"] {
        let mut what_if = scenario.clone();
        if let Some(Model::LogNormal { sigma, .. }) = what_if.series.get_mut("attributed_revenue") {
            *sigma = sigma_text.parse()?;
        }
        let report = simulate(&contract, &what_if, &options)?;
        let t = report.term.total;
        let uncapped = report.term.charges[0].1.mean; // the 12% alone, before the limits
        let acted = |id: &str| {
            let share = report
                .term
                .limits
                .iter()
                .find(|(l, _)| l == id)
                .map(|(_, s)| *s);
            format!(
                "{}% of years",
                (share.unwrap_or_default() * Decimal::from(100)).round()
            )
        };
        println!(
            "{:>5}  {:>12}  {:>20}  {:>13}  {:>12}  {:>18}",
            sigma_text,
            usd(t.mean),
            format!("{} to {}", usd(t.p5), usd(t.p95)),
            acted("monthly_minimum"),
            acted("annual_cap"),
            usd(t.mean - uncapped),
        );
        if sigma_text == "0.40" {
            chart_report = Some(report);
        }
    }
    println!("(the limits' net effect: the floor's top-ups less the cap's cuts, on average)");

    // 3. The scenario's own volatility, month by month.
    if let Some(report) = chart_report {
        let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/examples");
        std::fs::create_dir_all(&out)?;
        let chart = out.join("revenue-share.svg");
        std::fs::write(
            &chart,
            report.chart_svg_with(
                &ChartLabels::new()
                    .title("Bluepeak success fee per month (revenue volatility sigma 0.40)")
                    .y("invoice per month (USD)"),
            )?,
        )?;
        println!("\nChart (monthly invoice, sigma 0.40): {}", chart.display());
    }
    Ok(())
}

/// The amount of the line `charge` in a statement, 0 when it has none (a
/// limit that did not act).
fn amount(statement: &Statement, charge: &str) -> Decimal {
    statement
        .lines
        .iter()
        .find(|l| l.charge == charge)
        .map_or(Decimal::ZERO, |l| l.amount)
}

/// Whole dollars with thousands separators: `$78,078`, `-$4,891`.
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
