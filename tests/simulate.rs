//! Simulation through the public API and the command line: deterministic
//! scenarios settle exactly like the same data, seeded runs are
//! reproducible whatever the threads, the statistics are right, sweeps find
//! break-evens, and charts carry their labels.

use std::path::Path;
use std::process::Command;

use outcome_billing::metric::{CsvSource, MemorySource, Observation};
use outcome_billing::period::Stamp;
use outcome_billing::simulate::{
    Basis, ChartLabels, Scenario, SimulateOptions, SweepSpec, compare, simulate, sweep,
};
use outcome_billing::{CompiledContract, Contract, ErrorKind, SettleOptions};
use rust_decimal::Decimal;

fn d(s: &str) -> Decimal {
    s.parse().expect("a decimal")
}

fn compiled(text: &str) -> CompiledContract {
    CompiledContract::new(Contract::from_toml_str(text).expect("valid contract")).expect("compiles")
}

fn scenario(text: &str) -> Scenario {
    Scenario::from_toml_str(text).expect("valid scenario")
}

/// Five charges of different kinds over three series, a year-to-date
/// window, a stub, a KPI, a cap and a floor.
const DETERMINISTIC: &str = r#"
format = 1
id = "det-2026"
customer = "acme"
currency = "USD"
start = "2026-01-15"
end = "2027-01-15"
cadence = "monthly"
anchor = "2026-02-01"
timezone = "America/New_York"

[metrics.resolutions]
series = "resolved"
aggregate = "sum"

[metrics.conversations]
series = "conversations"
aggregate = "sum"

[metrics.payments]
series = "payments"
aggregate = "sum"

[metrics.resolved_ytd]
series = "resolved"
aggregate = "sum"
window = "contract_year_to_date"

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
accumulate = "contract_year"
tiers = [ { up_to = "5000", unit_price = "0.99" }, { unit_price = "0.79" } ]

[[charges]]
id = "processing"
kind = "percentage"
base = "payments"
rate = "0.029"
per_observation = { fixed = "0.30" }

[[charges]]
id = "bonus"
kind = "bands"
kpi = "rate"
bands = [ { from = "0.7", amount = "100" } ]

[[charges]]
id = "ytd_fee"
kind = "unit"
quantity = "resolved_ytd"
unit_price = "0.001"

[[limits]]
id = "resolution_cap"
kind = "cap"
amount = "1200"
applies_to = ["per_resolution"]
scope = "period"

[[limits]]
id = "minimum"
kind = "floor"
amount = "15000"
scope = "term"
"#;

const DETERMINISTIC_SCENARIO: &str = r#"
[series.resolved]
model = "growth"
start = "1000"
rate = "0.05"

[series.conversations]
model = "linear"
start = "1500"
step = "-25.5"

[series.payments]
model = "constant"
value = "12345.67"
"#;

/// The deterministic scenario's values, written as observations stamped at
/// each period's start.
fn deterministic_history(c: &CompiledContract) -> MemorySource {
    let mut rows = Vec::new();
    let mut resolved = d("1000");
    for (n, p) in c.periods().iter().enumerate() {
        let at = Stamp::At(p.start_at);
        if n > 0 {
            resolved *= d("1.05");
        }
        rows.push(Observation::new("resolved", at, resolved));
        let conversations = d("1500") + Decimal::from(n as u64) * d("-25.5");
        rows.push(Observation::new("conversations", at, conversations));
        rows.push(Observation::new("payments", at, d("12345.67")));
    }
    MemorySource::from_observations(rows).expect("valid rows")
}

#[test]
fn a_deterministic_scenario_settles_exactly_like_the_same_data() {
    // Proves constant, linear and growth series give every run exactly the amounts settle gives on the same values.
    let c = compiled(DETERMINISTIC);
    let report = simulate(
        &c,
        &scenario(DETERMINISTIC_SCENARIO),
        &SimulateOptions::new().runs(3),
    )
    .expect("simulates");
    let history = deterministic_history(&c);
    let statements = c
        .settle_through(&history, c.periods().len() - 1, &SettleOptions::default())
        .expect("settles");
    assert_eq!(report.periods.len(), statements.len());
    let mut limit_acted = false;
    for (p, s) in report.periods.iter().zip(&statements) {
        assert_eq!(p.period, s.period);
        for (id, stats) in &p.summary.charges {
            let line = s
                .lines
                .iter()
                .find(|l| &l.charge == id)
                .expect("a line per charge");
            for v in [stats.mean, stats.p5, stats.p50, stats.p95] {
                assert_eq!(v, line.amount, "{} {id}", s.period.label());
            }
        }
        let t = p.summary.total;
        assert_eq!(
            (t.mean, t.p5, t.p50, t.p95),
            (s.total, s.total, s.total, s.total)
        );
        for (id, share) in &p.summary.limits {
            let acted = s.lines.iter().any(|l| &l.charge == id);
            limit_acted |= acted;
            assert_eq!(
                *share,
                if acted { d("1.0000") } else { d("0.0000") },
                "{id}"
            );
        }
    }
    assert!(
        limit_acted,
        "the test contract's cap should act in some period"
    );
    let term: Decimal = statements.iter().map(|s| s.total).sum();
    assert_eq!(report.term.total.mean, term);
    assert_eq!(report.term_totals, vec![term; 3]);
}

#[test]
fn replaying_history_into_its_own_periods_settles_like_the_history() {
    // Proves a replay with the default `from` and scale 1 reads every observation into the period it came from.
    let dir = tempfile::tempdir().expect("temp dir");
    let csv = dir.path().join("history.csv");
    let mut text = String::from("series,timestamp,value,customer\n");
    for month in 1..=12u32 {
        for day in [1u32, 14, 28] {
            text.push_str(&format!(
                "resolved,2026-{month:02}-{day:02}T15:00:00Z,{},acme\n",
                100 + month * day
            ));
        }
        text.push_str(&format!(
            "conversations,2026-{month:02}-10,{},\n",
            200 + month
        ));
        text.push_str(&format!(
            "payments,2026-{month:02}-20T12:00:00Z,{}.25,acme\n",
            500 + month
        ));
    }
    text.push_str("resolved,2026-03-05T15:00:00Z,9999,someone-else\n");
    std::fs::write(&csv, &text).expect("write");
    // Without a stub, windows laid from the contract's start are its periods.
    let c = compiled(
        &DETERMINISTIC
            .replace("start = \"2026-01-15\"", "start = \"2026-01-01\"")
            .replace("end = \"2027-01-15\"", "end = \"2027-01-01\"")
            .replace("anchor = \"2026-02-01\"\n", ""),
    );
    assert!(c.periods().iter().all(|p| !p.is_stub()));
    let replay = format!(
        "[series.resolved]\nmodel = \"replay\"\nfile = {0:?}\n[series.conversations]\nmodel = \"replay\"\nfile = {0:?}\n[series.payments]\nmodel = \"replay\"\nfile = {0:?}\n",
        csv.display().to_string()
    );
    let report =
        simulate(&c, &scenario(&replay), &SimulateOptions::new().runs(1)).expect("simulates");
    let history = CsvSource::open(&csv).expect("reads");
    let statements = c
        .settle_through(&history, c.periods().len() - 1, &SettleOptions::default())
        .expect("settles");
    for (p, s) in report.periods.iter().zip(&statements) {
        assert_eq!(p.summary.total.p50, s.total, "{}", s.period.label());
    }
}

/// A contract of one unit charge (price 2 per unit) with a period cap of
/// 2100 on it, over a series drawn from a normal distribution.
const CAPPED: &str = r#"
format = 1
id = "capped"
customer = "acme"
currency = "USD"
start = "2026-01-01"
end = "2027-01-01"
cadence = "monthly"

[metrics.units]
series = "units"
aggregate = "sum"

[[charges]]
id = "per_unit"
kind = "unit"
quantity = "units"
unit_price = "2"

[[limits]]
id = "cap"
kind = "cap"
amount = "2100"
scope = "period"
"#;

const NORMAL: &str = r#"
[series.units]
model = "normal"
mean = "1000"
sd = "100"
"#;

#[test]
fn the_same_seed_gives_the_same_bytes_on_any_number_of_threads() {
    // Proves JSON is byte-identical across calls and rayon pools of 1 and 2 threads, and a different seed differs.
    let c = compiled(CAPPED);
    let s = scenario(NORMAL);
    let options = SimulateOptions::new().runs(500).seed(42);
    let json = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool")
            .install(|| {
                simulate(&c, &s, &options)
                    .expect("simulates")
                    .to_json_string()
            })
    };
    let one = json(1);
    assert_eq!(one, json(1));
    assert_eq!(one, json(2));
    let explicit = simulate(&c, &s, &options.clone().threads(2)).expect("simulates");
    assert_eq!(one, explicit.to_json_string());
    let other = simulate(&c, &s, &options.clone().seed(43)).expect("simulates");
    assert_ne!(one, other.to_json_string());
    assert!(one.contains("\"seed\": 42"));
}

/// The standard normal distribution function, from the error function's
/// Abramowitz-Stegun approximation 7.1.26 (absolute error below 1.5e-7).
// Floats here compute a reference probability for a tolerance check only.
#[allow(clippy::float_arithmetic)]
fn normal_cdf(z: f64) -> f64 {
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-x * x).exp();
    if z >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
}

fn to_f64(v: Decimal) -> f64 {
    use rust_decimal::prelude::ToPrimitive;
    v.to_f64().expect("finite")
}

// Floats compute statistical tolerances for the checks, not amounts.
#[allow(clippy::float_arithmetic)]
#[test]
fn statistics_match_the_distribution() {
    // Proves over 10,000 runs: the mean of p*X is within 4 standard errors of p*m, percentiles are ordered and near theory, and a period cap binds as often as P(X > cap/p).
    let runs = 10_000usize;
    let (price, mean, sd, cap) = (2.0f64, 1000.0f64, 100.0f64, 2100.0f64);
    let c = compiled(CAPPED);
    let report = simulate(
        &c,
        &scenario(NORMAL),
        &SimulateOptions::new().runs(runs).seed(1),
    )
    .expect("simulates");
    let n = runs as f64;
    // Tolerance for the mean: 4 standard errors of the mean, 4 * p * s / sqrt(N) = 8.
    let mean_tolerance = 4.0 * price * sd / n.sqrt();
    // Tolerance for a 5th or 95th percentile: 4 standard errors of a sample
    // quantile, 4 * sqrt(q(1-q)/N) / pdf(z_q) * p * s (about 17).
    let z95 = 1.644_853_6;
    let pdf = (-z95 * z95 / 2.0f64).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let quantile_tolerance = 4.0 * (0.05f64 * 0.95 / n).sqrt() / pdf * price * sd;
    // The cap binds when p * X > cap, i.e. X > 1050: probability 1 - Phi(0.5).
    let bind = 1.0 - normal_cdf((cap / price - mean) / sd);
    assert!((bind - 0.308_537_5).abs() < 1e-6, "{bind}");
    // Tolerance for the share: 4 standard errors of a proportion, 4 * sqrt(P(1-P)/N).
    let share_tolerance = 4.0 * (bind * (1.0 - bind) / n).sqrt();
    for p in &report.periods {
        let (id, s) = &p.summary.charges[0];
        assert_eq!(id, "per_unit");
        let m = to_f64(s.mean);
        assert!(
            (m - price * mean).abs() <= mean_tolerance,
            "{} mean {m}",
            p.period.label()
        );
        assert!(s.p5 <= s.p50 && s.p50 <= s.p95, "{s:?}");
        assert!(
            (to_f64(s.p5) - price * (mean - z95 * sd)).abs() <= quantile_tolerance,
            "{s:?}"
        );
        assert!(
            (to_f64(s.p95) - price * (mean + z95 * sd)).abs() <= quantile_tolerance,
            "{s:?}"
        );
        let t = p.summary.total;
        assert!(t.p5 <= t.p50 && t.p50 <= t.p95, "{t:?}");
        assert!(
            t.p95 <= d("2100.00"),
            "the cap holds every total down: {t:?}"
        );
        let (limit, share) = &p.summary.limits[0];
        assert_eq!(limit, "cap");
        let share = to_f64(*share);
        assert!(
            (share - bind).abs() <= share_tolerance,
            "{}: cap bound in {share} of runs, expected {bind} ± {share_tolerance}",
            p.period.label()
        );
    }
    // Over twelve independent months the cap binds at least once in almost every run.
    let term_share = to_f64(report.term.limits[0].1);
    assert!(term_share > 0.98, "{term_share}");
}

const SEATS: &str = r#"
format = 1
id = "seats"
customer = "acme"
currency = "USD"
start = "2026-01-01"
end = "2027-01-01"
cadence = "monthly"

[metrics.tickets]
series = "tickets"
aggregate = "sum"

[[charges]]
id = "fee"
kind = "fixed"
amount = "1000"
"#;

const USAGE: &str = r#"
format = 1
id = "usage"
customer = "acme"
currency = "USD"
start = "2026-01-01"
end = "2027-01-01"
cadence = "monthly"

[metrics.tickets]
series = "tickets"
aggregate = "sum"

[[charges]]
id = "per_ticket"
kind = "unit"
quantity = "tickets"
unit_price = "2"
"#;

#[test]
fn sweep_finds_the_break_even_of_a_fee_and_a_price() {
    // Proves a 1000 fee and a price of 2 per unit break even at 500 units, interpolated between steps or exact at a step.
    let contracts = [compiled(SEATS), compiled(USAGE)];
    let empty = Scenario::default();
    let between = SweepSpec::new("tickets", d("0"), d("900")).steps(3);
    let report = sweep(
        &contracts,
        &between,
        Basis::Scenario(&empty),
        &SimulateOptions::new(),
    )
    .expect("sweeps");
    assert_eq!(report.levels.len(), 4);
    assert_eq!(report.levels[1].totals, vec![d("12000.00"), d("7200.00")]);
    assert_eq!(report.break_even.len(), 1);
    assert_eq!(
        report.break_even[0].contracts,
        ("seats".to_string(), "usage".to_string())
    );
    assert_eq!(report.break_even[0].level, d("500"));
    let on_step = SweepSpec::new("tickets", d("0"), d("1000")).steps(4);
    let report = sweep(
        &contracts,
        &on_step,
        Basis::Scenario(&empty),
        &SimulateOptions::new(),
    )
    .expect("sweeps");
    assert_eq!(report.break_even.len(), 1);
    assert_eq!(report.break_even[0].level, d("500"));
    let json = report.to_json();
    assert_eq!(json["series"], "tickets");
    assert_eq!(json["levels"][2]["level"], "500");
    assert_eq!(json["levels"][2]["totals"]["usage"], "12000.00");
    assert_eq!(json["break_even"][0]["contracts"][1], "usage");
    assert_eq!(json["break_even"][0]["level"], "500");
    assert_eq!(
        report.to_csv().lines().take(2).collect::<Vec<_>>(),
        ["contract,level,total", "seats,0,12000.00"]
    );
    // A series no contract reads is a usage error.
    let nothing = SweepSpec::new("nothing", d("0"), d("1"));
    let e = sweep(
        &contracts,
        &nothing,
        Basis::Scenario(&empty),
        &SimulateOptions::new(),
    )
    .expect_err("nobody reads it");
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
}

#[test]
fn a_random_sweep_uses_the_mean_of_the_runs() {
    // Proves a sweep over a random scenario reports each level's mean term total over the runs, like simulate does.
    let contracts = [compiled(CAPPED)];
    let s = scenario("[series.noise]\nmodel = \"normal\"\nmean = 1\nsd = 1\n");
    let spec = SweepSpec::new("units", d("1000"), d("1100")).steps(1);
    let options = SimulateOptions::new().runs(50).seed(9);
    let report = sweep(&contracts, &spec, Basis::Scenario(&s), &options).expect("sweeps");
    let at = |level: &str| {
        let fixed = s.clone().with_series(
            "units",
            outcome_billing::simulate::Model::Constant { value: d(level) },
        );
        simulate(&contracts[0], &fixed, &options)
            .expect("simulates")
            .term
            .total
            .mean
    };
    assert_eq!(report.levels[0].totals[0], at("1000"));
    assert_eq!(report.levels[1].totals[0], at("1100"));
    assert_eq!(report.levels[1].totals[0], d("25200.00"));
}

#[test]
fn compare_uses_identical_draws_and_history_once() {
    // Proves compare differences are per run on identical draws, and a history basis settles once.
    let cheap = compiled(USAGE);
    let dear = compiled(
        &USAGE
            .replace("\"usage\"", "\"dear\"")
            .replace("\"2\"", "\"2.5\""),
    );
    let s = scenario("[series.tickets]\nmodel = \"poisson\"\nlambda = 400\n");
    let c = compare(
        &[cheap.clone(), dear.clone()],
        Basis::Scenario(&s),
        &SimulateOptions::new().runs(300),
    )
    .expect("compares");
    let diff = &c.differences[0];
    assert_eq!(diff.contract, "dear");
    assert_eq!(diff.larger, d("1.0000"));
    // On identical draws the dearer contract costs exactly 25 % more in every run.
    for (a, b) in c.contracts[0]
        .term_totals
        .iter()
        .zip(&c.contracts[1].term_totals)
    {
        assert_eq!(*b - *a, *a / d("4"));
    }
    let json = c.to_json();
    assert_eq!(json["contracts"][1]["contract"], "dear");
    assert_eq!(json["difference"][0]["larger"], "1.0000");

    let mut history = MemorySource::new();
    for p in &cheap.periods()[..3] {
        history.push(Observation::new("tickets", Stamp::At(p.start_at), d("100")));
    }
    let now = cheap.periods()[2].end_at;
    let c = compare(
        &[cheap, dear],
        Basis::History(&history),
        &SimulateOptions::new().now(now),
    )
    .expect("compares");
    assert_eq!(c.contracts[0].runs, 1);
    assert_eq!(c.contracts[0].periods.len(), 3);
    assert_eq!(c.contracts[0].term.total.mean, d("600.00"));
    assert_eq!(c.differences[0].stats.mean, d("150.00"));
}

/// Checks that tags open and close in order (a tiny well-formedness test).
fn balanced(svg: &str) -> bool {
    let mut stack: Vec<String> = Vec::new();
    let mut rest = svg;
    while let Some(start) = rest.find('<') {
        let Some(len) = rest[start..].find('>') else {
            return false;
        };
        let tag = &rest[start + 1..start + len];
        rest = &rest[start + len + 1..];
        if tag.starts_with('?') || tag.starts_with('!') || tag.ends_with('/') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            if stack.pop().as_deref() != Some(name.trim()) {
                return false;
            }
        } else {
            stack.push(tag.split_whitespace().next().unwrap_or("").to_string());
        }
    }
    stack.is_empty()
}

#[test]
fn charts_carry_titles_axes_and_names() {
    // Proves each chart is well-formed SVG naming its title, axes, and every series or contract.
    let usage = compiled(USAGE);
    let seats = compiled(SEATS);
    let s = scenario("[series.tickets]\nmodel = \"normal\"\nmean = 400\nsd = 80\n");
    let report = simulate(&usage, &s, &SimulateOptions::new().runs(200)).expect("simulates");
    let svg = report.chart_svg().expect("draws");
    assert!(balanced(&svg), "malformed SVG");
    for text in [
        "usage: total per period (USD)",
        "total per period (USD)",
        "period (start date)",
        "5th to 95th percentile",
        "median (50th percentile)",
        "\nmean\n",
        "Jan 2026",
    ] {
        assert!(svg.contains(text), "missing {text:?}");
    }
    let c = compare(
        &[seats.clone(), usage.clone()],
        Basis::Scenario(&s),
        &SimulateOptions::new().runs(100),
    )
    .expect("compares");
    let svg = c.chart_svg().expect("draws");
    assert!(balanced(&svg), "malformed SVG");
    for text in [
        "\nseats\n",
        "usage: median",
        "total per period (USD)",
        "Total per period (USD): seats vs usage",
    ] {
        assert!(svg.contains(text), "missing {text:?}");
    }
    let spec = SweepSpec::new("tickets", d("0"), d("900")).steps(3);
    let r = sweep(
        &[seats, usage],
        &spec,
        Basis::Scenario(&Scenario::default()),
        &SimulateOptions::new(),
    )
    .expect("sweeps");
    let svg = r.chart_svg().expect("draws");
    assert!(balanced(&svg), "malformed SVG");
    for text in [
        "Term total (USD) by level of tickets",
        "term total (USD)",
        "tickets in every period (level swept)",
        "\nseats\n",
        "\nusage\n",
        "break-even: seats = usage at 500",
    ] {
        assert!(svg.contains(text), "missing {text:?}");
    }
}

#[test]
fn compare_charts_of_identical_runs_show_no_spread() {
    // Proves a compare chart of history or of a scenario without random series lists no percentile band or median and says what it shows.
    let seats = compiled(SEATS);
    let usage = compiled(USAGE);
    let mut history = MemorySource::new();
    for p in &usage.periods()[..3] {
        history.push(Observation::new("tickets", Stamp::At(p.start_at), d("100")));
    }
    let now = usage.periods()[2].end_at;
    let c = compare(
        &[seats.clone(), usage.clone()],
        Basis::History(&history),
        &SimulateOptions::new().now(now),
    )
    .expect("compares");
    let svg = c.chart_svg().expect("draws");
    assert!(balanced(&svg), "malformed SVG");
    assert!(svg.contains("history: one run"), "{svg}");
    for text in ["percentile", "median", "runs on identical draws"] {
        assert!(!svg.contains(text), "history chart says {text:?}");
    }
    assert!(svg.contains("\nseats\n") && svg.contains("\nusage\n"));

    let fixed = scenario("[series.tickets]\nmodel = \"constant\"\nvalue = 400\n");
    let c = compare(
        &[seats.clone(), usage.clone()],
        Basis::Scenario(&fixed),
        &SimulateOptions::new().runs(1000),
    )
    .expect("compares");
    let svg = c.chart_svg().expect("draws");
    assert!(svg.contains("deterministic scenario"), "{svg}");
    for text in ["percentile", "median", "1,000 runs", "1000 runs"] {
        assert!(!svg.contains(text), "deterministic chart says {text:?}");
    }
    let report = simulate(&usage, &fixed, &SimulateOptions::new().runs(50)).expect("simulates");
    let svg = report.chart_svg().expect("draws");
    assert!(svg.contains("deterministic scenario") && !svg.contains("percentile"));

    // A random scenario keeps its bands, and names the runs.
    let random = scenario("[series.tickets]\nmodel = \"poisson\"\nlambda = 400\n");
    let c = compare(
        &[seats, usage],
        Basis::Scenario(&random),
        &SimulateOptions::new().runs(1000),
    )
    .expect("compares");
    let svg = c.chart_svg().expect("draws");
    assert!(svg.contains("1,000 runs on identical draws"), "{svg}");
    assert!(svg.contains("usage: 5th to 95th percentile"));
    // The fixed fee is the same in every run: a line, no band.
    assert!(!svg.contains("seats: 5th to 95th percentile"));
}

/// The text of every `<text>` element, trimmed.
fn texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let body = &t[t.find('>')? + 1..];
            Some(body[..body.find("</text>")?].trim().to_string())
        })
        .collect()
}

#[test]
fn sweep_charts_label_negative_totals_and_both_ends() {
    // Proves the sweep chart labels ticks below zero with a zero line, and labels the first and last level even when neither is round.
    let usage = compiled(USAGE);
    let spec = SweepSpec::new("tickets", d("-1000"), d("2970")).steps(10);
    let r = sweep(
        &[usage],
        &spec,
        Basis::Scenario(&Scenario::default()),
        &SimulateOptions::new(),
    )
    .expect("sweeps");
    let svg = r.chart_svg().expect("draws");
    assert!(balanced(&svg), "malformed SVG");
    let labels = texts(&svg);
    // Totals run from -24,000 to 71,280.
    assert!(labels.iter().any(|t| t == "-20k"), "{labels:?}");
    assert!(labels.iter().any(|t| t == "0"), "{labels:?}");
    assert!(svg.contains("#464646"), "no zero line");
    assert!(labels.iter().any(|t| t == "-1,000"), "{labels:?}");
    assert!(labels.iter().any(|t| t == "2,970"), "{labels:?}");

    // An uptime-like sweep: the last level, 100.00, is labelled.
    let uptime = compiled(&USAGE.replace("series = \"tickets\"", "series = \"uptime_pct\""));
    let spec = SweepSpec::new("uptime_pct", d("98.8"), d("100")).steps(12);
    let r = sweep(
        &[uptime],
        &spec,
        Basis::Scenario(&Scenario::default()),
        &SimulateOptions::new(),
    )
    .expect("sweeps");
    let labels = texts(&r.chart_svg().expect("draws"));
    assert!(labels.iter().any(|t| t == "98.80"), "{labels:?}");
    assert!(labels.iter().any(|t| t == "100.00"), "{labels:?}");
}

#[test]
fn chart_titles_read_as_words_and_callers_may_set_them() {
    // Proves default titles name the currency and the series in words, and ChartLabels replaces title, subtitle and axis labels.
    let usage = compiled(&USAGE.replace("series = \"tickets\"", "series = \"paid_claims\""));
    let spec = SweepSpec::new("paid_claims", d("0"), d("100")).steps(4);
    let r = sweep(
        &[usage],
        &spec,
        Basis::Scenario(&Scenario::default()),
        &SimulateOptions::new(),
    )
    .expect("sweeps");
    let svg = r.chart_svg().expect("draws");
    assert!(
        svg.contains("Term total (USD) by level of paid claims"),
        "{svg}"
    );
    assert!(!svg.contains("Term total by paid_claims"));
    let labels = ChartLabels::new()
        .title("What the ACO settles")
        .subtitle("one performance year")
        .x("annual paid claims (USD)")
        .y("shared savings (+) or losses (-)");
    let svg = r.chart_svg_with(&labels).expect("draws");
    assert!(balanced(&svg), "malformed SVG");
    for text in [
        "What the ACO settles",
        "one performance year",
        "annual paid claims (USD)",
        "shared savings (+) or losses (-)",
    ] {
        assert!(svg.contains(text), "missing {text:?}");
    }
    assert!(!svg.contains("Term total (USD)"));
}

// ---------------------------------------------------------------------------
// The command line

fn outcome(args: &[&str], dir: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_outcome"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn files(pairs: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, text) in pairs {
        std::fs::write(dir.path().join(name), text).expect("write");
    }
    dir
}

#[test]
fn cli_simulate_prints_the_spec_shapes_and_a_chart() {
    // Proves simulate's JSON keys, CSV header and rows, table, and --plot through the binary.
    let dir = files(&[("c.toml", CAPPED), ("s.toml", NORMAL)]);
    let p = dir.path();
    let (code, json, err) = outcome(
        &[
            "simulate",
            "c.toml",
            "--scenario",
            "s.toml",
            "--runs",
            "50",
            "--format",
            "json",
        ],
        p,
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.is_empty(), "quiet when not a terminal: {err}");
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    let keys: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["contract", "currency", "runs", "seed", "periods", "term"]
    );
    assert_eq!(v["runs"], 50);
    assert_eq!(v["seed"], 0);
    assert_eq!(v["periods"].as_array().expect("periods").len(), 12);
    let period = &v["periods"][0];
    assert_eq!(period["period"]["start"], "2026-01-01");
    assert_eq!(period["period"]["end"], "2026-02-01");
    let stats: Vec<&str> = period["charges"]["per_unit"]
        .as_object()
        .expect("stats")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(stats, ["mean", "p5", "p50", "p95"]);
    assert!(period["limits"]["cap"].as_str().expect("share").len() == 6);
    assert!(
        v["term"]["total"]["p50"]
            .as_str()
            .expect("amount")
            .ends_with(|c: char| c.is_ascii_digit())
    );
    let (again, _, _) = outcome(
        &[
            "simulate",
            "c.toml",
            "--scenario",
            "s.toml",
            "--runs",
            "50",
            "--format",
            "json",
        ],
        p,
    );
    assert_eq!(again, 0);
    assert_eq!(
        json,
        outcome(
            &[
                "simulate",
                "c.toml",
                "--scenario",
                "s.toml",
                "--runs",
                "50",
                "--format",
                "json"
            ],
            p
        )
        .1
    );

    let (code, csv, _) = outcome(
        &[
            "simulate",
            "c.toml",
            "--scenario",
            "s.toml",
            "--runs",
            "20",
            "--format",
            "csv",
            "--seed",
            "3",
        ],
        p,
    );
    assert_eq!(code, 0);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "contract,period_start,period_end,charge,mean,p5,p50,p95"
    );
    assert!(lines[1].starts_with("capped,2026-01-01,2026-02-01,per_unit,"));
    assert!(lines[2].starts_with("capped,2026-01-01,2026-02-01,total,"));
    assert!(lines[lines.len() - 1].starts_with("capped,,,total,"));
    assert_eq!(lines.len(), 1 + 12 * 2 + 2);

    let (code, table, _) = outcome(
        &[
            "simulate",
            "c.toml",
            "--scenario",
            "s.toml",
            "--runs",
            "20",
            "--plot",
            "fan.svg",
        ],
        p,
    );
    assert_eq!(code, 0);
    assert!(
        table.starts_with("capped: 20 runs, seed 0, amounts in USD"),
        "{table}"
    );
    assert!(table.contains("cap acted in"));
    let svg = std::fs::read_to_string(p.join("fan.svg")).expect("chart written");
    assert!(svg.contains("capped: total per period (USD)"));
}

#[test]
fn cli_errors_have_the_spec_exit_statuses() {
    // Proves invalid scenarios and usage exit 2 naming the field, missing data exits 1.
    let dir = files(&[
        ("c.toml", CAPPED),
        ("u.toml", USAGE),
        ("seats.toml", SEATS),
        (
            "bad.toml",
            "[series.units]\nmodel = \"normal\"\nmean = 1\nsd = 1\ncolour = \"red\"\n",
        ),
        ("long.toml", "periods = 13\n"),
        ("syntax.toml", "periods = \n"),
        (
            "replay.toml",
            "[series.units]\nmodel = \"replay\"\nfile = \"missing.csv\"\n",
        ),
        ("s.toml", NORMAL),
    ]);
    let p = dir.path();
    let (code, _, err) = outcome(&["simulate", "c.toml", "--scenario", "bad.toml"], p);
    assert_eq!(code, 2);
    assert!(err.contains("series.units.colour"), "{err}");
    assert!(err.starts_with("error: unknown field `colour`"), "{err}");
    let (code, _, err) = outcome(&["simulate", "c.toml", "--scenario", "long.toml"], p);
    assert_eq!(code, 2);
    assert!(err.contains("long.toml: periods"), "{err}");
    let (code, _, err) = outcome(&["simulate", "c.toml", "--scenario", "syntax.toml"], p);
    assert_eq!(code, 2);
    assert!(err.contains("syntax.toml:1:"), "{err}");
    let (code, _, err) = outcome(&["simulate", "c.toml", "--scenario", "nowhere.toml"], p);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = outcome(&["simulate", "c.toml", "--scenario", "replay.toml"], p);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("missing.csv"), "{err}");
    let (code, _, _) = outcome(
        &["simulate", "c.toml", "--scenario", "s.toml", "--runs", "0"],
        p,
    );
    assert_eq!(code, 2);
    let (code, _, _) = outcome(
        &[
            "simulate",
            "c.toml",
            "--scenario",
            "s.toml",
            "--plot",
            "fan.png",
        ],
        p,
    );
    assert_eq!(code, 2);
    let (code, _, _) = outcome(&["compare", "c.toml", "u.toml"], p);
    assert_eq!(code, 2, "compare needs a basis");
    let (code, _, _) = outcome(
        &["compare", "c.toml", "u.toml", "--metrics", "nothing.csv"],
        p,
    );
    assert_eq!(code, 1);
    let (code, _, err) = outcome(
        &[
            "sweep",
            "seats.toml",
            "u.toml",
            "--metric",
            "tickets",
            "--from",
            "1e3",
            "--to",
            "5",
        ],
        p,
    );
    assert_eq!(code, 2);
    assert!(err.contains("--from"), "{err}");
    let (code, _, _) = outcome(
        &[
            "sweep",
            "seats.toml",
            "u.toml",
            "--metric",
            "tickets",
            "--from",
            "0",
            "--to",
            "5",
            "--steps",
            "0",
        ],
        p,
    );
    assert_eq!(code, 2);
}

#[test]
fn cli_compare_and_sweep_print_their_shapes() {
    // Proves compare's contracts and difference, sweep's levels and break-even, on scenario and history bases.
    // History of a term long past, so every period has ended whatever the clock says.
    let history = "series,timestamp,value\ntickets,2024-01-05,300\ntickets,2024-02-05,700\n";
    let past = |text: &str| {
        text.replace("2026-01-01", "2024-01-01")
            .replace("2027-01-01", "2025-01-01")
    };
    let (u_past, seats_past) = (past(USAGE), past(SEATS));
    let dir = files(&[
        ("u.toml", USAGE),
        ("seats.toml", SEATS),
        ("u-past.toml", &u_past),
        ("seats-past.toml", &seats_past),
        (
            "s.toml",
            "[series.tickets]\nmodel = \"poisson\"\nlambda = 500\n",
        ),
        ("h.csv", history),
    ]);
    let p = dir.path();
    let (code, json, err) = outcome(
        &[
            "compare",
            "seats.toml",
            "u.toml",
            "--scenario",
            "s.toml",
            "--runs",
            "40",
            "--format",
            "json",
            "--plot",
            "cmp.svg",
        ],
        p,
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(v["contracts"][0]["contract"], "seats");
    assert_eq!(v["contracts"][1]["runs"], 40);
    let diff: Vec<&str> = v["difference"][0]
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(diff, ["contract", "mean", "p5", "p50", "p95", "larger"]);
    assert!(p.join("cmp.svg").exists());

    let (code, json, err) = outcome(
        &[
            "compare",
            "seats-past.toml",
            "u-past.toml",
            "--metrics",
            "h.csv",
            "--format",
            "json",
        ],
        p,
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(v["contracts"][1]["runs"], 1);
    // Every period of 2024 has ended: seats bill 12000, usage 2000.
    assert_eq!(v["contracts"][0]["term"]["total"]["mean"], "12000.00");
    assert_eq!(v["contracts"][1]["term"]["total"]["mean"], "2000.00");
    assert_eq!(v["difference"][0]["mean"], "-10000.00");
    assert_eq!(v["difference"][0]["larger"], "0.0000");

    let (code, csv, err) = outcome(
        &[
            "sweep",
            "seats.toml",
            "u.toml",
            "--metric",
            "tickets",
            "--from",
            "0",
            "--to",
            "900",
            "--steps",
            "3",
            "--format",
            "csv",
        ],
        p,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(csv.lines().next(), Some("contract,level,total"));
    assert_eq!(csv.lines().count(), 1 + 2 * 4);
    let (code, json, _) = outcome(
        &[
            "sweep",
            "seats.toml",
            "u.toml",
            "--metric",
            "tickets",
            "--from",
            "0",
            "--to",
            "900",
            "--steps",
            "3",
            "--metrics",
            "h.csv",
            "--format",
            "json",
            "--plot",
            "sweep.svg",
        ],
        p,
    );
    // The history is of 2024 and these contracts run in 2026: only the swept series is read.
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(v["break_even"][0]["level"], "500");
    assert!(p.join("sweep.svg").exists());
    let (code, table, _) = outcome(
        &[
            "sweep",
            "seats.toml",
            "u.toml",
            "--metric",
            "tickets",
            "--from",
            "0",
            "--to",
            "900",
            "--steps",
            "3",
        ],
        p,
    );
    assert_eq!(code, 0);
    assert!(
        table.contains("seats and usage break even at tickets = 500"),
        "{table}"
    );
}

#[test]
fn cli_compare_and_sweep_take_as_of_over_history() {
    // Proves compare and sweep over history settle only the periods due at --as-of, and --help documents it.
    let history = "series,timestamp,value\ntickets,2024-01-05,300\ntickets,2024-02-05,700\n";
    let past = |text: &str| {
        text.replace("2026-01-01", "2024-01-01")
            .replace("2027-01-01", "2025-01-01")
    };
    let dir = files(&[
        ("u.toml", &past(USAGE)),
        ("seats.toml", &past(SEATS)),
        ("h.csv", history),
    ]);
    let p = dir.path();
    let (code, json, err) = outcome(
        &[
            "compare",
            "seats.toml",
            "u.toml",
            "--metrics",
            "h.csv",
            "--as-of",
            "2024-03-01",
            "--format",
            "json",
            "--plot",
            "h.svg",
        ],
        p,
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    // January and February are due on 1 March: 2 x 1000 and (300 + 700) x 2.
    assert_eq!(v["contracts"][0]["term"]["total"]["mean"], "2000.00");
    assert_eq!(v["contracts"][1]["term"]["total"]["mean"], "2000.00");
    let svg = std::fs::read_to_string(p.join("h.svg")).expect("chart written");
    assert!(
        svg.contains("history: the periods due at 2024-03-01"),
        "{svg}"
    );
    assert!(!svg.contains("percentile"));

    let (code, json, err) = outcome(
        &[
            "sweep",
            "seats.toml",
            "u.toml",
            "--metric",
            "tickets",
            "--from",
            "0",
            "--to",
            "900",
            "--steps",
            "3",
            "--metrics",
            "h.csv",
            "--as-of",
            "2024-03-01T00:00:00Z",
            "--format",
            "json",
        ],
        p,
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    // Two periods: seats 2000 at every level, usage 2 x 900 x 2 at the top.
    assert_eq!(v["levels"][3]["totals"]["seats"], "2000.00");
    assert_eq!(v["levels"][3]["totals"]["usage"], "3600.00");

    let (code, _, err) = outcome(
        &[
            "compare",
            "seats.toml",
            "u.toml",
            "--metrics",
            "h.csv",
            "--as-of",
            "soon",
        ],
        p,
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--as-of"), "{err}");
    // A date is midnight in each contract's zone: zones that disagree need a time.
    let ny = past(USAGE)
        .replace("\"usage\"", "\"usage-ny\"")
        .replace("cadence", "timezone = \"America/New_York\"\ncadence");
    std::fs::write(p.join("ny.toml"), ny).expect("writes");
    let (code, _, err) = outcome(
        &[
            "compare",
            "seats.toml",
            "ny.toml",
            "--metrics",
            "h.csv",
            "--as-of",
            "2024-03-01",
        ],
        p,
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("give a time with an offset"), "{err}");
    let (code, _, err) = outcome(
        &[
            "compare",
            "seats.toml",
            "ny.toml",
            "--metrics",
            "h.csv",
            "--as-of",
            "2024-03-01T12:00:00Z",
        ],
        p,
    );
    assert_eq!(code, 0, "{err}");
    for cmd in ["compare", "sweep"] {
        let (code, help, _) = outcome(&[cmd, "--help"], p);
        assert_eq!(code, 0);
        assert!(help.contains("--as-of"), "{help}");
    }
}
