//! Billing runs: streaming a metric CSV once gives what the in-memory source
//! gives.
//!
//! `BillingRun::settle_csv` reads the file once, in parallel chunks, and
//! routes each row to the accumulators that read it; [`reference`] settles
//! every contract against a `CsvSource` of the same file. Generated runs
//! live in a small space (two customers with contracts, one without, a few
//! series, ids, dimension values and dates) so that versions, ties, shared
//! rows and window boundaries collide often. Every item, traces included,
//! and the rendered JSON and CSV must be the same, on any number of
//! threads; bad input (a malformed row, a conflicting tie, a missing file)
//! must fail the same contracts with the same error.
//!
//! Property tests run 64 cases by default (PROPTEST_CASES overrides it) so
//! the file runs in seconds in debug; failures are kept in
//! `tests/billing_run.proptest-regressions`.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::LazyLock;

use chrono::{DateTime, Duration, FixedOffset, Months, NaiveDate, SecondsFormat, TimeZone, Utc};
use chrono_tz::Tz;
use outcome_billing::metric::CsvSource;
use outcome_billing::period::Stamp;
use outcome_billing::report::{RunItem, run_csv, run_json};
use outcome_billing::run::{BillingRun, RunOptions};
use outcome_billing::{CompiledContract, Contract, ErrorKind, Location};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::FileFailurePersistence;
use rust_decimal::Decimal;

// ---------------------------------------------------------------------------
// Helpers

/// The clock of every run: after every generated term has ended, except
/// the longest ones.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, 6, 1, 0, 0, 0).unwrap()
}

fn date(s: &str) -> NaiveDate {
    s.parse().unwrap_or_else(|e| panic!("date {s:?}: {e}"))
}

fn add_months(d: NaiveDate, months: u32) -> NaiveDate {
    d.checked_add_months(Months::new(months))
        .expect("a date in range")
}

/// `default_cases` cases unless PROPTEST_CASES says otherwise, with
/// failures kept beside this file.
fn config(default_cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/billing_run.proptest-regressions",
        ))),
        ..ProptestConfig::default()
    }
}

/// What the streaming path must give: every contract settled against the
/// in-memory source of the file, or, when the file cannot be opened (a
/// missing file, a malformed row), every contract failed with that error.
fn reference(run: &BillingRun, path: &Path, options: &RunOptions) -> Vec<RunItem> {
    match CsvSource::open(path) {
        Ok(source) => run.settle_source(&source, options),
        Err(error) => run
            .contracts()
            .iter()
            .map(|c| RunItem::Failed {
                contract: c.contract().id.clone(),
                error: error.clone(),
            })
            .collect(),
    }
}

/// An item as a reader compares it: its JSON document, or its error.
fn show(item: &RunItem) -> String {
    match item {
        RunItem::Settled(_) => run_json(std::slice::from_ref(item), false)
            .unwrap_or_else(|e| format!("(does not render: {e})\n{item:#?}")),
        RunItem::Failed { error, .. } => format!("failed: {error:?}"),
    }
}

/// Checks that `actual` holds the items of `expected`, in order and equal,
/// and renders to the same JSON and CSV bytes; says where they first differ.
fn same_items(what: &str, expected: &[RunItem], actual: &[RunItem]) -> Result<(), String> {
    let ids = |items: &[RunItem]| -> Vec<String> {
        items.iter().map(|i| i.contract().to_owned()).collect()
    };
    if ids(expected) != ids(actual) {
        return Err(format!(
            "{what}: contracts {:?} where the reference has {:?}",
            ids(actual),
            ids(expected)
        ));
    }
    for (e, a) in expected.iter().zip(actual) {
        if e != a {
            let (se, sa) = (show(e), show(a));
            let (se, sa) = if se == sa {
                // The documents agree: the difference is in what they do not show.
                (format!("{e:#?}"), format!("{a:#?}"))
            } else {
                (se, sa)
            };
            return Err(format!(
                "{what}: contract {} differs\n--- reference\n{se}\n--- {what}\n{sa}",
                e.contract()
            ));
        }
    }
    let (je, ja) = (run_json(expected, true), run_json(actual, true));
    if je != ja {
        return Err(format!(
            "{what}: JSON differs\n--- reference\n{je:?}\n--- {what}\n{ja:?}"
        ));
    }
    let (ce, ca) = (run_csv(expected), run_csv(actual));
    if ce != ca {
        return Err(format!(
            "{what}: CSV differs\n--- reference\n{ce}\n--- {what}\n{ca}"
        ));
    }
    Ok(())
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a thread pool")
}

static ONE_THREAD: LazyLock<rayon::ThreadPool> = LazyLock::new(|| pool(1));
static TWO_THREADS: LazyLock<rayon::ThreadPool> = LazyLock::new(|| pool(2));

/// Streams `path` on one thread and on two, and checks both against the
/// streaming result on the global pool (`streamed`).
fn same_on_one_and_two_threads(
    run: &BillingRun,
    path: &Path,
    options: &RunOptions,
    streamed: &[RunItem],
) -> Result<(), String> {
    let one = ONE_THREAD.install(|| run.settle_csv(path, options));
    let two = TWO_THREADS.install(|| run.settle_csv(path, options));
    same_items("one thread", streamed, &one)?;
    same_items("two threads", streamed, &two)
}

fn compile(text: &str) -> CompiledContract {
    Contract::from_toml_str(text)
        .and_then(CompiledContract::new)
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// A CSV field, quoted where CSV requires.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// The columns of generated metric data, in their canonical order.
const COLUMNS: [&str; 9] = [
    "customer",
    "series",
    "timestamp",
    "value",
    "id",
    "recorded_at",
    "void",
    "region",
    "user",
];

/// A value written with one more decimal place: equal as a number.
fn rescaled(value: &str) -> String {
    if value.contains('.') {
        format!("{value}0")
    } else {
        format!("{value}.0")
    }
}

/// An instant written at a fixed UTC offset (seconds east), with a
/// fraction only where it has one.
fn at_offset(at: DateTime<Utc>, east: i32) -> String {
    let offset = FixedOffset::east_opt(east).expect("an offset");
    at.with_timezone(&offset)
        .to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

fn zulu(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

// ---------------------------------------------------------------------------
// Generated contracts

const ZONES: [&str; 5] = [
    "UTC",
    "America/New_York",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
];

/// Ids whose byte order differs from their order of generation (capitals
/// before lower case, digits first, a non-ASCII letter last).
const CONTRACT_IDS: [&str; 8] = [
    "acme-2026",
    "acme-q",
    "Beta",
    "beta_2",
    "a",
    "z-last",
    "é-contract",
    "0-first",
];

/// Customers with contracts; the data also has `gamma`, which has none.
const CUSTOMERS: [&str; 2] = ["acme", "beta"];

/// Series contracts read; the data also has `noise`, which none reads.
const SERIES_READ: [&str; 4] = ["calls", "pay", "nav", "logins"];
const SERIES_ALL: [&str; 5] = ["calls", "pay", "nav", "logins", "noise"];

const AGGREGATES: [&str; 8] = [
    "sum",
    "count",
    "mean",
    "min",
    "max",
    "first",
    "last",
    "unique_count",
];

const MODES: [&str; 7] = [
    "half_even",
    "half_up",
    "half_down",
    "up",
    "down",
    "ceiling",
    "floor",
];

/// Starts and anchors: on and off boundaries, so that leading stubs are
/// laid both ways.
const STARTS: [(&str, Option<&str>); 7] = [
    ("2026-01-01", None),
    ("2026-01-01", Some("2026-02-15")),
    ("2026-01-15", Some("2026-02-01")),
    ("2026-01-15", None),
    ("2025-12-01", None),
    ("2026-02-10", Some("2026-01-01")),
    ("2026-03-01", None),
];

/// The decimal `units * 10^-scale`, as text.
fn dec(units: i64, scale: u32) -> String {
    Decimal::new(units, scale).to_string()
}

fn money() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => (-20_000i64..20_000, 0u32..4).prop_map(|(u, s)| dec(u, s)),
        1 => select(vec!["0", "0.005", "-0.005", "1", "-1", "100"]).prop_map(str::to_string),
    ]
}

fn nonneg() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => (0i64..20_000, 0u32..4).prop_map(|(u, s)| dec(u, s)),
        1 => select(vec!["0", "0.005", "1", "100"]).prop_map(str::to_string),
    ]
}

/// A share or rate between 0 and 1.
fn fraction() -> impl Strategy<Value = String> {
    (0i64..=1000, 3u32..4).prop_map(|(u, s)| dec(u, s))
}

/// Sorted distinct values from `range`, `len` of them at most.
fn edges(range: std::ops::Range<i64>, len: usize) -> impl Strategy<Value = Vec<i64>> {
    proptest::collection::btree_set(range, 0..=len).prop_map(|s| s.into_iter().collect())
}

#[derive(Debug, Clone)]
struct MetricGen {
    series: &'static str,
    aggregate: &'static str,
    window: &'static str,
    filter: Option<&'static str>,
    /// None: the default for the aggregate.
    missing: Option<&'static str>,
}

fn metric_gen() -> impl Strategy<Value = MetricGen> {
    (
        select(SERIES_READ.to_vec()),
        select(AGGREGATES.to_vec()),
        prop_oneof![
            3 => Just("period"),
            1 => Just("contract_year_to_date"),
            1 => Just("term_to_date"),
        ],
        prop_oneof![4 => Just(None), 1 => Just(Some("eu")), 1 => Just(Some("us"))],
        prop_oneof![1 => Just(None), 10 => Just(Some("zero")), 1 => Just(Some("error"))],
    )
        .prop_map(|(series, aggregate, window, filter, missing)| MetricGen {
            series,
            aggregate,
            window,
            filter,
            missing,
        })
}

impl MetricGen {
    fn toml(&self, name: &str) -> String {
        let mut t = format!(
            "[metrics.{name}]\nseries = \"{}\"\naggregate = \"{}\"\n",
            self.series, self.aggregate
        );
        if self.window != "period" {
            let _ = writeln!(t, "window = \"{}\"", self.window);
        }
        if let Some(region) = self.filter {
            let _ = writeln!(t, "filter = {{ region = \"{region}\" }}");
        }
        if let Some(missing) = self.missing {
            let _ = writeln!(t, "missing = \"{missing}\"");
        }
        if self.aggregate == "unique_count" {
            t.push_str("of = \"user\"\n");
        }
        t
    }
}

/// Quantities of `unit` charges, and the non-negative ones `tiered` needs.
const UNIT_QUANTITIES: [&str; 6] = ["m0", "m1", "m2", "pay", "m0 + m2", "k0"];
const TIER_QUANTITIES: [&str; 4] = ["abs(m0)", "max(m1, 0)", "abs(m2)", "abs(pay)"];
const EXPRS: [&str; 4] = [
    "m0 * 2 - m2",
    "if(m1 > 3, 10, -5)",
    "round(k0, 2)",
    "PREV + 1",
];

#[derive(Debug, Clone)]
enum ChargeGen {
    Fixed {
        amount: String,
        prorate: bool,
    },
    Unit {
        quantity: &'static str,
        /// None: the param `p0`, which an amendment changes.
        price: Option<String>,
    },
    Tiered {
        quantity: &'static str,
        volume: bool,
        year: bool,
        edges: Vec<i64>,
        /// Per tier; None: left out, or `p1` for the last tier.
        prices: Vec<Option<String>>,
        fees: Vec<Option<String>>,
        last_p1: bool,
    },
    Percentage {
        base: &'static str,
        rate: String,
        per_observation: Option<(Option<String>, Option<String>, Option<String>)>,
    },
    GainShare {
        actual: &'static str,
        baseline: &'static str,
        decrease: bool,
        share: String,
        threshold: Option<(bool, String)>,
        above: bool,
        cap: Option<(bool, String)>,
        losses: Option<String>,
    },
    Bands {
        kpi: &'static str,
        edges: Vec<i64>,
        payouts: Vec<(bool, String)>,
    },
    Expr {
        amount: &'static str,
    },
}

fn charge_gen() -> impl Strategy<Value = ChargeGen> {
    prop_oneof![
        1 => (money(), any::<bool>()).prop_map(|(amount, prorate)| ChargeGen::Fixed { amount, prorate }),
        1 => (select(UNIT_QUANTITIES.to_vec()), proptest::option::of(money()))
            .prop_map(|(quantity, price)| ChargeGen::Unit { quantity, price }),
        2 => (
            select(TIER_QUANTITIES.to_vec()),
            any::<bool>(),
            proptest::bool::weighted(0.4),
            edges(1..200, 3),
            proptest::collection::vec(proptest::option::of(nonneg()), 4),
            proptest::collection::vec(proptest::option::of(nonneg()), 4),
            any::<bool>(),
        )
            .prop_map(|(quantity, volume, year, edges, prices, fees, last_p1)| {
                ChargeGen::Tiered {
                    quantity,
                    volume,
                    year,
                    edges,
                    prices,
                    fees,
                    last_p1,
                }
            }),
        2 => (
            select(vec!["pay", "m0", "abs(m2)"]),
            fraction(),
            proptest::option::weighted(
                0.7,
                (
                    proptest::option::of(nonneg()),
                    proptest::option::of(nonneg()),
                    proptest::option::of(nonneg()),
                ),
            ),
        )
            .prop_map(|(base, rate, per_observation)| ChargeGen::Percentage {
                // Per-observation pricing reads the observations of a metric.
                base: if per_observation.is_some() { "pay" } else { base },
                rate,
                per_observation,
            }),
        1 => (
            (
                select(vec!["m0", "m2"]),
                select(vec!["bh", "bw", "bf", "p0 * 2"]),
                any::<bool>(),
                fraction(),
            ),
            (
                proptest::option::of((any::<bool>(), nonneg())),
                any::<bool>(),
                proptest::option::of((any::<bool>(), nonneg())),
                proptest::option::of(fraction()),
            ),
        )
            .prop_map(
                |((actual, baseline, decrease, share), (threshold, above, cap, losses))| {
                    ChargeGen::GainShare {
                        actual,
                        baseline,
                        decrease,
                        share,
                        threshold,
                        above,
                        cap,
                        losses,
                    }
                }
            ),
        1 => (
            select(vec!["k0", "k1", "m1"]),
            edges(-50..300, 3),
            proptest::collection::vec((any::<bool>(), money()), 4),
        )
            .prop_map(|(kpi, edges, payouts)| ChargeGen::Bands {
                kpi,
                edges,
                payouts
            }),
        1 => select(EXPRS.to_vec()).prop_map(|amount| ChargeGen::Expr { amount }),
    ]
}

fn threshold_toml(t: &(bool, String)) -> String {
    if t.0 {
        format!("{{ relative = \"{}\" }}", t.1)
    } else {
        format!("{{ absolute = \"{}\" }}", t.1)
    }
}

fn cap_toml(t: &(bool, String)) -> String {
    if t.0 {
        format!("{{ relative = \"{}\" }}", t.1)
    } else {
        format!("{{ amount = \"{}\" }}", t.1)
    }
}

impl ChargeGen {
    fn toml(&self, i: usize) -> String {
        let mut t = format!("[[charges]]\nid = \"c{i}\"\n");
        match self {
            ChargeGen::Fixed { amount, prorate } => {
                let _ = writeln!(t, "kind = \"fixed\"\namount = \"{amount}\"");
                if !prorate {
                    t.push_str("prorate = false\n");
                }
            }
            ChargeGen::Unit { quantity, price } => {
                let price = price.clone().unwrap_or_else(|| "p0".into());
                let _ = writeln!(
                    t,
                    "kind = \"unit\"\nquantity = \"{quantity}\"\nunit_price = \"{price}\""
                );
            }
            ChargeGen::Tiered {
                quantity,
                volume,
                year,
                edges,
                prices,
                fees,
                last_p1,
            } => {
                let mode = if *volume { "volume" } else { "graduated" };
                let _ = writeln!(
                    t,
                    "kind = \"tiered\"\nmode = \"{mode}\"\nquantity = \"{quantity}\""
                );
                if *year {
                    t.push_str("accumulate = \"contract_year\"\n");
                }
                let mut tiers = Vec::new();
                for k in 0..=edges.len() {
                    let mut parts = Vec::new();
                    if let Some(e) = edges.get(k) {
                        parts.push(format!("up_to = \"{e}\""));
                    }
                    if k == edges.len() && *last_p1 {
                        parts.push("unit_price = \"p1\"".to_string());
                    } else if let Some(p) = &prices[k] {
                        parts.push(format!("unit_price = \"{p}\""));
                    }
                    if let Some(f) = &fees[k] {
                        parts.push(format!("flat_fee = \"{f}\""));
                    }
                    tiers.push(format!("{{ {} }}", parts.join(", ")));
                }
                let _ = writeln!(t, "tiers = [ {} ]", tiers.join(", "));
            }
            ChargeGen::Percentage {
                base,
                rate,
                per_observation,
            } => {
                let _ = writeln!(
                    t,
                    "kind = \"percentage\"\nbase = \"{base}\"\nrate = \"{rate}\""
                );
                if let Some((fixed, lo, hi)) = per_observation {
                    let number = |s: &String| s.parse::<Decimal>().expect("a decimal");
                    let (lo, hi) = match (lo, hi) {
                        (Some(a), Some(b)) if number(a) > number(b) => (Some(b), Some(a)),
                        (a, b) => (a.as_ref(), b.as_ref()),
                    };
                    let mut parts = Vec::new();
                    if let Some(f) = fixed {
                        parts.push(format!("fixed = \"{f}\""));
                    }
                    if let Some(v) = lo {
                        parts.push(format!("min = \"{v}\""));
                    }
                    if let Some(v) = hi {
                        parts.push(format!("max = \"{v}\""));
                    }
                    let _ = writeln!(t, "per_observation = {{ {} }}", parts.join(", "));
                }
            }
            ChargeGen::GainShare {
                actual,
                baseline,
                decrease,
                share,
                threshold,
                above,
                cap,
                losses,
            } => {
                let direction = if *decrease { "decrease" } else { "increase" };
                let _ = writeln!(
                    t,
                    "kind = \"gain_share\"\nactual = \"{actual}\"\nbaseline = \"{baseline}\"\n\
                     direction = \"{direction}\"\nshare = \"{share}\""
                );
                if let Some(th) = threshold {
                    let _ = writeln!(t, "threshold = {}", threshold_toml(th));
                }
                if *above {
                    t.push_str("sharing = \"above_threshold\"\n");
                }
                if let Some(c) = cap {
                    let _ = writeln!(t, "cap = {}", cap_toml(c));
                }
                if let Some(share) = losses {
                    let _ = writeln!(t, "losses = {{ share = \"{share}\" }}");
                }
            }
            ChargeGen::Bands {
                kpi,
                edges,
                payouts,
            } => {
                let _ = writeln!(t, "kind = \"bands\"\nkpi = \"{kpi}\"");
                let earlier: Vec<String> = (0..i).map(|k| format!("\"c{k}\"")).collect();
                let mut bands = Vec::new();
                for k in 0..=edges.len() {
                    let mut parts = Vec::new();
                    if k > 0 {
                        parts.push(format!("from = \"{}\"", edges[k - 1]));
                    }
                    if let Some(e) = edges.get(k) {
                        parts.push(format!("to = \"{e}\""));
                    }
                    let (percent, value) = &payouts[k];
                    if *percent && i > 0 {
                        parts.push(format!(
                            "percent = \"{value}\", of = [{}]",
                            earlier.join(", ")
                        ));
                    } else {
                        parts.push(format!("amount = \"{value}\""));
                    }
                    // Leave some bands out, so that a KPI can fall in none.
                    if k % 2 == 0 || k == edges.len() {
                        bands.push(format!("{{ {} }}", parts.join(", ")));
                    }
                }
                let _ = writeln!(t, "bands = [ {} ]", bands.join(", "));
            }
            ChargeGen::Expr { amount } => {
                let previous = if i == 0 {
                    "m1".to_string()
                } else {
                    format!("c{}", i - 1)
                };
                let amount = amount.replace("PREV", &previous);
                let _ = writeln!(t, "kind = \"expr\"\namount = \"{amount}\"");
            }
        }
        t
    }
}

#[derive(Debug, Clone)]
struct LimitGen {
    kind: &'static str,
    scope: &'static str,
    amount: String,
}

fn limit_gen() -> impl Strategy<Value = LimitGen> {
    (
        select(vec!["cap", "floor", "credit"]),
        select(vec!["period", "contract_year", "term"]),
        prop_oneof![
            3 => (0i64..50_000, 0u32..3).prop_map(|(u, s)| dec(u, s)),
            1 => money(),
        ],
    )
        .prop_map(|(kind, scope, amount)| LimitGen {
            kind,
            scope,
            amount,
        })
}

#[derive(Debug, Clone)]
struct ContractGen {
    customer: &'static str,
    zone: &'static str,
    cadence: &'static str,
    start: (&'static str, Option<&'static str>),
    /// Whole cadences in the term; with `stub_days` the term ends that many
    /// days later.
    periods: u32,
    stub_days: i64,
    currency: &'static str,
    rounding: Option<(u32, &'static str)>,
    p0: String,
    p1: String,
    fixed_baseline: String,
    hwm_initial: String,
    /// `m0`, `m1`, `m2`.
    metrics: Vec<MetricGen>,
    /// The metric of the historical baseline (read with `missing = "zero"`).
    history: MetricGen,
    /// The per-observation metric `pay`: its aggregate and filter.
    pay: (&'static str, Option<&'static str>),
    charges: Vec<ChargeGen>,
    limits: Vec<LimitGen>,
    limit_on_c0: bool,
    /// An amendment at the start of period N (when the term has it): new
    /// `p0`, `p1` and high-water-mark `initial`.
    amendment: Option<(usize, String, String)>,
}

fn contract_gen() -> impl Strategy<Value = ContractGen> {
    (
        (
            select(CUSTOMERS.to_vec()),
            select(ZONES.to_vec()),
            select(vec!["monthly", "quarterly"]),
            select(STARTS.to_vec()),
            1u32..=5,
            prop_oneof![3 => Just(0i64), 1 => 1i64..25],
            select(vec!["USD", "EUR", "JPY"]),
            proptest::option::weighted(0.3, (0u32..4, select(MODES.to_vec()))),
        ),
        (
            money(),
            nonneg(),
            money(),
            money(),
            proptest::collection::vec(metric_gen(), 3),
            metric_gen(),
            (
                select(vec!["sum", "count", "max"]),
                prop_oneof![2 => Just(None), 1 => Just(Some("eu"))],
            ),
        ),
        (
            proptest::collection::vec(charge_gen(), 1..=5),
            proptest::collection::vec(limit_gen(), 0..=2),
            any::<bool>(),
            proptest::option::weighted(0.4, (1usize..6, money(), nonneg())),
        ),
    )
        .prop_map(
            |(
                (customer, zone, cadence, start, periods, stub_days, currency, rounding),
                (p0, p1, fixed_baseline, hwm_initial, metrics, history, pay),
                (charges, limits, limit_on_c0, amendment),
            )| ContractGen {
                customer,
                zone,
                cadence,
                start,
                periods,
                stub_days,
                currency,
                rounding,
                p0,
                p1,
                fixed_baseline,
                hwm_initial,
                metrics,
                history,
                pay,
                charges,
                limits,
                limit_on_c0,
                amendment,
            },
        )
}

impl ContractGen {
    fn months(&self) -> u32 {
        if self.cadence == "monthly" { 1 } else { 3 }
    }

    /// The contract text, with its amendment on `amendment_date` if given.
    fn toml(&self, id: &str, amendment_date: Option<NaiveDate>) -> String {
        let start = date(self.start.0);
        let end = add_months(start, self.months() * self.periods) + Duration::days(self.stub_days);
        let mut t = format!(
            "format = 1\nid = \"{id}\"\ncustomer = \"{}\"\ncurrency = \"{}\"\n\
             start = \"{start}\"\nend = \"{end}\"\ncadence = \"{}\"\ntimezone = \"{}\"\n",
            self.customer, self.currency, self.cadence, self.zone
        );
        if let Some(anchor) = self.start.1 {
            let _ = writeln!(t, "anchor = \"{anchor}\"");
        }
        if let Some((scale, mode)) = self.rounding {
            let _ = writeln!(t, "rounding = {{ scale = {scale}, mode = \"{mode}\" }}");
        }
        let _ = writeln!(t, "[params]\np0 = \"{}\"\np1 = \"{}\"", self.p0, self.p1);
        for (k, m) in self.metrics.iter().enumerate() {
            t.push_str(&m.toml(&format!("m{k}")));
        }
        let history = MetricGen {
            missing: Some("zero"),
            ..self.history.clone()
        };
        t.push_str(&history.toml("h"));
        let (pay_aggregate, pay_filter) = self.pay;
        t.push_str(
            &MetricGen {
                series: "pay",
                aggregate: pay_aggregate,
                window: "period",
                filter: pay_filter,
                missing: Some("zero"),
            }
            .toml("pay"),
        );
        // A year of history laid before the term: `to` is `from` plus
        // twelve months, a whole number of either cadence.
        let history_from = start
            .checked_sub_months(Months::new(12))
            .expect("a date in range");
        let _ = write!(
            t,
            "[kpis.k0]\nexpr = \"m0 / max(abs(m1), 1)\"\n\
             [kpis.k1]\nexpr = \"m2 - bh\"\n\
             [baselines.bf]\nkind = \"fixed\"\nvalue = \"{}\"\n\
             [baselines.bh]\nkind = \"historical\"\nmetric = \"h\"\nfrom = \"{history_from}\"\nto = \"{}\"\n\
             [baselines.bw]\nkind = \"high_water_mark\"\nmetric = \"m1\"\ninitial = \"{}\"\n",
            self.fixed_baseline,
            add_months(history_from, 12),
            self.hwm_initial,
        );
        for (i, charge) in self.charges.iter().enumerate() {
            t.push_str(&charge.toml(i));
        }
        for (j, l) in self.limits.iter().enumerate() {
            let _ = writeln!(
                t,
                "[[limits]]\nid = \"L{j}\"\nkind = \"{}\"\namount = \"{}\"\nscope = \"{}\"",
                l.kind, l.amount, l.scope
            );
            if j == 0 && self.limit_on_c0 {
                t.push_str("applies_to = [\"c0\"]\n");
            }
        }
        if let (Some((_, p0, p1)), Some(effective)) = (&self.amendment, amendment_date) {
            let _ = writeln!(
                t,
                "[[amendments]]\neffective = \"{effective}\"\n\
                 set = {{ \"params.p0\" = \"{p0}\", \"params.p1\" = \"{p1}\", \"baselines.bw.initial\" = \"{p1}\" }}"
            );
        }
        t
    }

    /// The contract text and the compiled contract; the amendment, if any,
    /// takes effect at the start of one of its periods.
    fn build(&self, id: &str) -> Result<(String, CompiledContract), TestCaseError> {
        let load = |text: &str| {
            Contract::from_toml_str(text)
                .and_then(CompiledContract::new)
                .map_err(|e| {
                    TestCaseError::fail(format!(
                        "the generator made an invalid contract: {e}\n{text}"
                    ))
                })
        };
        let plain = self.toml(id, None);
        let c = load(&plain)?;
        let effective = match &self.amendment {
            Some((k, _, _)) if *k < c.periods().len() => c.periods()[*k].start,
            _ => return Ok((plain, c)),
        };
        let text = self.toml(id, Some(effective));
        let c = load(&text)?;
        Ok((text, c))
    }
}

// ---------------------------------------------------------------------------
// Generated metric data

/// One generated row, placed on a contract's timeline when the run is built.
#[derive(Debug, Clone)]
struct RowGen {
    /// The contract whose timeline places the row (modulo the run's size).
    timeline: u8,
    /// 0..=9: a period; 10..=12: the year of history before the term;
    /// 13: long before that; 14: after the term; 15..=17: the first
    /// instant of a period.
    place: u8,
    minutes: u32,
    /// How the timestamp is written: 0 `Z`, 1 `+00:00`, 2 `-05:00`, 3
    /// `+05:30`, 4 `+13:45`, 5 with milliseconds, 6..=8 a bare local date.
    stamp: u8,
    /// 0..=1 empty; 2..=6 the timeline contract's customer; 7..=8 the other
    /// customer with contracts; 9 `gamma`, who has none.
    customer: u8,
    series: u8,
    value: String,
    id: Option<u8>,
    /// Hours after the timestamp, and how it is written: 0 `Z`, 1 a bare
    /// UTC date, 2 `+05:30`, 3 left empty.
    recorded: Option<(i32, u8)>,
    /// 0 empty, 1 `false`, 2 `true`.
    void: u8,
    region: u8,
    user: u8,
    /// An equal second version of the row: see `twin`.
    twin: Option<u8>,
}

fn value_text() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => (-300i64..3000, 0u32..4).prop_map(|(u, s)| dec(u, s)),
        2 => select(vec!["1", "1.0", "-2.50", "0", "-0", "+7", "007.50", "0.001", "12.5"])
            .prop_map(str::to_string),
    ]
}

fn row_gen() -> impl Strategy<Value = RowGen> {
    (
        (
            any::<u8>(),
            0u8..18,
            any::<u32>(),
            0u8..9,
            0u8..10,
            0u8..5,
            value_text(),
        ),
        (
            proptest::option::weighted(0.55, 0u8..4),
            proptest::option::weighted(0.7, (-48i32..2500, 0u8..4)),
            prop_oneof![6 => Just(0u8), 2 => Just(1u8), 1 => Just(2u8)],
            prop_oneof![4 => Just(0u8), 4 => Just(1u8), 1 => Just(2u8), 1 => Just(3u8)],
            0u8..6,
            proptest::option::weighted(0.2, any::<u8>()),
        ),
    )
        .prop_map(
            |(
                (timeline, place, minutes, stamp, customer, series, value),
                (id, recorded, void, region, user, twin),
            )| RowGen {
                timeline,
                place,
                minutes,
                stamp,
                customer,
                series,
                value,
                id,
                recorded,
                void,
                region,
                user,
                twin,
            },
        )
}

const IDS: [&str; 4] = ["a1", "a2", "b,3", "c\"4"];
const REGIONS: [&str; 4] = ["eu", "us", "", "eu, west\n\"annex\""];
const USERS: [&str; 6] = ["u0", "u1", "u2", "u3", "", "u,4\nx"];

/// Which optional columns the file has, their order, and its bytes' form.
#[derive(Debug, Clone)]
struct LayoutGen {
    /// Per column of `COLUMNS`; the required ones are always kept.
    keep: Vec<bool>,
    order: Vec<usize>,
    shuffle: bool,
    crlf: bool,
    bom: bool,
    final_newline: bool,
}

fn layout_gen() -> impl Strategy<Value = LayoutGen> {
    (
        // Optional columns are left out now and then; the dimensions less
        // often, since a metric filtering or counting by a dimension the
        // data lacks fails its contract.
        (
            proptest::collection::vec(proptest::bool::weighted(0.9), 7),
            proptest::collection::vec(proptest::bool::weighted(0.96), 2),
        )
            .prop_map(|(mut known, dimensions)| {
                known.extend(dimensions);
                known
            }),
        Just((0..COLUMNS.len()).collect::<Vec<usize>>()).prop_shuffle(),
        proptest::bool::weighted(0.3),
        proptest::bool::weighted(0.2),
        proptest::bool::weighted(0.15),
        proptest::bool::weighted(0.8),
    )
        .prop_map(
            |(keep, order, shuffle, crlf, bom, final_newline)| LayoutGen {
                keep,
                order,
                shuffle,
                crlf,
                bom,
                final_newline,
            },
        )
}

impl LayoutGen {
    fn has(&self, column: &str) -> bool {
        let k = COLUMNS
            .iter()
            .position(|c| *c == column)
            .expect("a known column");
        matches!(column, "series" | "timestamp" | "value") || self.keep[k]
    }

    /// The columns written, in file order, as indexes into `COLUMNS`.
    fn columns(&self) -> Vec<usize> {
        let order: Vec<usize> = if self.shuffle {
            self.order.clone()
        } else {
            (0..COLUMNS.len()).collect()
        };
        order
            .into_iter()
            .filter(|&k| self.has(COLUMNS[k]))
            .collect()
    }
}

#[derive(Debug, Clone)]
enum AsOfGen {
    None,
    /// Days after 2025-12-15: local midnight in each contract's zone.
    Date(i64),
    /// Minutes after 2025-12-15T00:00:00Z.
    Instant(i64),
}

fn as_of_gen() -> impl Strategy<Value = AsOfGen> {
    prop_oneof![
        2 => Just(AsOfGen::None),
        1 => (0i64..560).prop_map(AsOfGen::Date),
        1 => (0i64..560 * 24 * 60).prop_map(AsOfGen::Instant),
    ]
}

#[derive(Debug, Clone)]
struct RunGen {
    contracts: Vec<ContractGen>,
    ids: Vec<&'static str>,
    rows: Vec<RowGen>,
    /// Rarely: two versions of one id recorded at the same instant with
    /// different values, after row N (modulo the rows).
    conflict: Option<u16>,
    layout: LayoutGen,
    as_of: AsOfGen,
    /// Sometimes one period: by N % 8, the start of a period of the first
    /// contract, a date that starts a period of most contracts, or
    /// (7) one that starts none.
    period: Option<u8>,
}

fn run_gen() -> impl Strategy<Value = RunGen> {
    (
        proptest::collection::vec(contract_gen(), 1..=6),
        Just(CONTRACT_IDS.to_vec()).prop_shuffle(),
        proptest::collection::vec(row_gen(), 0..80),
        proptest::option::weighted(0.15, any::<u16>()),
        proptest::bool::weighted(0.25),
        layout_gen(),
        as_of_gen(),
        proptest::option::weighted(0.2, any::<u8>()),
    )
        .prop_map(
            |(mut contracts, ids, rows, conflict, utc_only, layout, as_of, period)| {
                if utc_only {
                    // Every reader in UTC: a date and its UTC midnight are
                    // then the same instant for all, and twins use both.
                    for c in &mut contracts {
                        c.zone = "UTC";
                    }
                }
                RunGen {
                    contracts,
                    ids,
                    rows,
                    conflict,
                    layout,
                    as_of,
                    period,
                }
            },
        )
}

/// One row of the file, by column of `COLUMNS`.
type Row = [String; 9];

/// The built run: its contracts' texts, the run, the file and the options.
struct Case {
    texts: Vec<String>,
    run: BillingRun,
    csv: String,
    options: RunOptions,
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

impl RunGen {
    fn build(&self) -> Result<Case, TestCaseError> {
        let mut texts = Vec::new();
        let mut compiled = Vec::new();
        for (g, id) in self.contracts.iter().zip(&self.ids) {
            let (text, c) = g.build(id)?;
            texts.push(text);
            compiled.push(c);
        }
        let csv = self.csv(&compiled);
        let options = self.options(&compiled);
        let run = BillingRun::new(compiled).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let path = dir.path().join("metrics.csv");
        std::fs::write(&path, &csv).map_err(|e| TestCaseError::fail(e.to_string()))?;
        Ok(Case {
            texts,
            run,
            csv,
            options,
            _dir: dir,
            path,
        })
    }

    fn options(&self, compiled: &[CompiledContract]) -> RunOptions {
        let base = date("2025-12-15");
        let mut options = RunOptions::new(now()).trace(true);
        match self.as_of {
            AsOfGen::None => {}
            AsOfGen::Date(days) => {
                options = options.as_of(Stamp::Date(base + Duration::days(days)))
            }
            AsOfGen::Instant(minutes) => {
                let at = base.and_hms_opt(0, 0, 0).expect("midnight").and_utc()
                    + Duration::minutes(minutes);
                options = options.as_of(Stamp::At(at));
            }
        }
        if let Some(k) = self.period {
            let start = match k % 8 {
                0..=2 => {
                    let periods = compiled[0].periods();
                    periods[k as usize / 8 % periods.len()].start
                }
                // A start of most generated terms, monthly or quarterly.
                3..=5 => date("2026-04-01"),
                6 => date("2026-07-01"),
                _ => date("2026-02-17"),
            };
            options = options.period(start);
        }
        options
    }

    /// Whether every contract that reads rows of `customer` is in UTC (so
    /// a date and its UTC midnight are the same for all of them).
    fn readers_in_utc(&self, compiled: &[CompiledContract], customer: &str) -> bool {
        compiled
            .iter()
            .filter(|c| {
                !self.layout.has("customer")
                    || customer.is_empty()
                    || c.contract().customer == customer
            })
            .all(|c| c.contract().timezone == Tz::UTC)
    }

    fn row(&self, g: &RowGen, compiled: &[CompiledContract]) -> Row {
        let c = &compiled[g.timeline as usize % compiled.len()];
        let tz = c.contract().timezone;
        let periods = c.periods();
        let term_start = periods[0].start_at;
        let term_end = periods[periods.len() - 1].end_at;
        let history_from = outcome_billing::period::local_midnight(
            c.contract()
                .start
                .checked_sub_months(Months::new(12))
                .expect("a date in range"),
            tz,
        );
        let (from, to) = match g.place {
            0..=9 => {
                let p = &periods[g.place as usize % periods.len()];
                (p.start_at, p.end_at)
            }
            10..=12 => (history_from, term_start),
            13 => (history_from - Duration::days(400), history_from),
            14 => (term_end, term_end + Duration::days(60)),
            _ => {
                let p = &periods[g.minutes as usize % periods.len()];
                (p.start_at, p.start_at)
            }
        };
        let span = (to - from).num_minutes().max(1);
        let mut at = from + Duration::minutes(i64::from(g.minutes) % span);
        if g.place >= 15 {
            at = from;
        }
        let timestamp = match g.stamp {
            0 => zulu(at),
            1 => at_offset(at, 0),
            2 => at_offset(at, -5 * 3600),
            3 => at_offset(at, 5 * 3600 + 1800),
            4 => at_offset(at, 13 * 3600 + 45 * 60),
            5 => {
                let at = at + Duration::milliseconds(250);
                zulu(at)
            }
            _ => at.with_timezone(&tz).date_naive().to_string(),
        };
        let own = c.contract().customer.as_str();
        let other = if own == "acme" { "beta" } else { "acme" };
        let customer = match g.customer {
            0..=1 => "",
            2..=6 => own,
            7..=8 => other,
            _ => "gamma",
        };
        let recorded = match g.recorded {
            None | Some((_, 3)) => String::new(),
            Some((hours, style)) => {
                let r = at + Duration::hours(i64::from(hours));
                match style {
                    0 => zulu(r),
                    1 => r.date_naive().to_string(),
                    _ => at_offset(r, 5 * 3600 + 1800),
                }
            }
        };
        [
            customer.to_string(),
            SERIES_ALL[g.series as usize % SERIES_ALL.len()].to_string(),
            timestamp,
            g.value.clone(),
            g.id.map(|k| IDS[k as usize % IDS.len()].to_string())
                .unwrap_or_default(),
            recorded,
            ["", "false", "true"][g.void as usize % 3].to_string(),
            REGIONS[g.region as usize % REGIONS.len()].to_string(),
            USERS[g.user as usize % USERS.len()].to_string(),
        ]
    }

    /// A second version of `row` equal to it after parsing for every
    /// contract that reads it: the value with one more decimal place, the
    /// timestamp or `recorded_at` written another way (a date as its UTC
    /// midnight only where every reader is in UTC), `void` empty for
    /// `false`, or the same row again.
    fn twin(&self, kind: u8, row: &Row, compiled: &[CompiledContract]) -> Row {
        let mut twin = row.clone();
        let in_utc = self.readers_in_utc(compiled, &row[0]);
        let rewrite_stamp = |text: &str| -> Option<String> {
            match Stamp::parse(text).ok()? {
                Stamp::Date(d) if in_utc => Some(format!("{d}T00:00:00Z")),
                Stamp::Date(_) => None,
                Stamp::At(at) => Some(at_offset(at, 13 * 3600 + 45 * 60)),
            }
        };
        let changed = match kind % 5 {
            0 => None,
            1 => rewrite_stamp(&row[2]).map(|t| twin[2] = t),
            2 if self.layout.has("recorded_at") => {
                if row[5].is_empty() {
                    // The default, written out: the timestamp as written.
                    twin[5] = row[2].clone();
                    Some(())
                } else {
                    rewrite_stamp(&row[5]).map(|t| twin[5] = t)
                }
            }
            3 => Some(()),
            4 if self.layout.has("void") && row[6] != "true" => {
                twin[6] = if row[6].is_empty() { "false" } else { "" }.to_string();
                Some(())
            }
            _ => None,
        };
        if changed.is_none() {
            twin[3] = rescaled(&row[3]);
        }
        twin
    }

    fn rows(&self, compiled: &[CompiledContract]) -> Vec<Row> {
        let mut rows = Vec::new();
        let mut later = Vec::new();
        for g in &self.rows {
            let row = self.row(g, compiled);
            rows.push(row.clone());
            if let Some(kind) = g.twin {
                let twin = self.twin(kind, &row, compiled);
                if kind / 5 % 2 == 0 {
                    rows.push(twin);
                } else {
                    later.push(twin);
                }
            }
        }
        rows.append(&mut later);
        if let (Some(k), false) = (self.conflict, rows.is_empty()) {
            let at = k as usize % rows.len();
            let mut first = rows[at].clone();
            first[4] = "k9".into();
            first[3] = "1".into();
            first[6] = String::new();
            let mut second = first.clone();
            second[3] = "2".into();
            rows.insert(at + 1, first);
            rows.push(second);
        }
        rows
    }

    fn csv(&self, compiled: &[CompiledContract]) -> String {
        let columns = self.layout.columns();
        let eol = if self.layout.crlf { "\r\n" } else { "\n" };
        let mut out = String::new();
        if self.layout.bom {
            out.push('\u{feff}');
        }
        let header: Vec<&str> = columns.iter().map(|&k| COLUMNS[k]).collect();
        out.push_str(&header.join(","));
        let rows = self.rows(compiled);
        for row in &rows {
            out.push_str(eol);
            let fields: Vec<String> = columns.iter().map(|&k| csv_field(&row[k])).collect();
            out.push_str(&fields.join(","));
        }
        if self.layout.final_newline || rows.is_empty() {
            out.push_str(eol);
        }
        out
    }
}

impl Case {
    /// What a failing case shows: the contracts and the data.
    fn context(&self) -> String {
        format!(
            "options: {:?}\n--- contracts\n{}\n--- {}\n{}",
            self.options,
            self.texts.join("\n"),
            self.path.display(),
            self.csv
        )
    }
}

// ---------------------------------------------------------------------------
// Law 1: the streaming path gives the reference's items, and the same bytes

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn streaming_settles_like_the_reference(g in run_gen()) {
        // Proves settle_csv gives, item for item and trace for trace, what
        // settling each contract against the in-memory CsvSource gives, and
        // that both render to the same JSON and CSV bytes: over several
        // contracts per customer, shared rows, versions, voids, ties, dates
        // in every zone, as-of cuts and one-period runs.
        let case = g.build()?;
        let expected = reference(&case.run, &case.path, &case.options);
        let streamed = case.run.settle_csv(&case.path, &case.options);
        same_items("settle_csv", &expected, &streamed)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{}", case.context())))?;
    }
}

// ---------------------------------------------------------------------------
// Law 2: the result does not depend on the number of threads

proptest! {
    #![proptest_config(config(24))]

    #[test]
    fn streaming_gives_the_same_bytes_on_one_and_two_threads(g in run_gen()) {
        // Proves settle_csv gives the same items, JSON and CSV inside a
        // one-thread and a two-thread pool as on the global pool.
        let case = g.build()?;
        let streamed = case.run.settle_csv(&case.path, &case.options);
        same_on_one_and_two_threads(&case.run, &case.path, &case.options, &streamed)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{}", case.context())))?;
    }
}

// ---------------------------------------------------------------------------
// Large files: the streaming reader's chunks

/// A contract reading every aggregate, window and baseline kind over the
/// series of the large files, with a cap, a credit and (if `amend`) an
/// amendment at the start of its middle period.
fn rich_contract(
    id: &str,
    customer: &str,
    zone: &str,
    cadence: &str,
    (start, end, anchor): (&str, &str, Option<&str>),
    amend: bool,
) -> CompiledContract {
    let history_from = date(start)
        .checked_sub_months(Months::new(12))
        .expect("a date in range");
    let anchor = anchor.map_or(String::new(), |a| format!("anchor = \"{a}\"\n"));
    let text = |amendment: &str| {
        format!(
            r#"format = 1
id = "{id}"
customer = "{customer}"
currency = "USD"
start = "{start}"
end = "{end}"
cadence = "{cadence}"
timezone = "{zone}"
{anchor}
[params]
price = "0.01"
allowance = "40"

[metrics.calls]
series = "calls"
aggregate = "sum"

[metrics.calls_eu]
series = "calls"
aggregate = "mean"
filter = {{ region = "eu" }}
missing = "zero"

[metrics.calls_year]
series = "calls"
aggregate = "sum"
window = "contract_year_to_date"

[metrics.calls_term]
series = "calls"
aggregate = "count"
window = "term_to_date"

[metrics.nav_first]
series = "nav"
aggregate = "first"
missing = "zero"

[metrics.nav_last]
series = "nav"
aggregate = "last"
missing = "zero"

[metrics.nav_low]
series = "nav"
aggregate = "min"
missing = "zero"

[metrics.nav_high]
series = "nav"
aggregate = "max"
missing = "zero"

[metrics.users]
series = "logins"
aggregate = "unique_count"
of = "user"

[metrics.users_us]
series = "logins"
aggregate = "unique_count"
of = "user"
filter = {{ region = "us" }}
window = "term_to_date"

[metrics.pay]
series = "pay"
aggregate = "sum"

[metrics.history]
series = "calls"
aggregate = "sum"

[kpis.drift]
expr = "nav_last - nav_first"

[baselines.before]
kind = "historical"
metric = "history"
from = "{history_from}"
to = "{start}"

[baselines.mark]
kind = "high_water_mark"
metric = "nav_high"
initial = "100"

[[charges]]
id = "plan"
kind = "fixed"
amount = "49"

[[charges]]
id = "per_call"
kind = "unit"
quantity = "calls"
unit_price = "price"

[[charges]]
id = "seats"
kind = "tiered"
mode = "graduated"
accumulate = "contract_year"
quantity = "users"
tiers = [ {{ up_to = "allowance", unit_price = "0" }}, {{ unit_price = "1.5", flat_fee = "5" }} ]

[[charges]]
id = "volume"
kind = "tiered"
mode = "volume"
quantity = "abs(calls_term)"
tiers = [ {{ up_to = "1000", unit_price = "0.002" }}, {{ unit_price = "0.001" }} ]

[[charges]]
id = "processing"
kind = "percentage"
base = "pay"
rate = "0.029"
per_observation = {{ fixed = "0.30", min = "0.05", max = "5.00" }}

[[charges]]
id = "savings"
kind = "gain_share"
actual = "calls"
baseline = "before"
direction = "decrease"
share = "0.2"
cap = {{ relative = "0.1" }}

[[charges]]
id = "performance"
kind = "gain_share"
actual = "nav_high"
baseline = "mark"
direction = "increase"
share = "0.2"

[[charges]]
id = "drift_bonus"
kind = "bands"
kpi = "drift"
bands = [ {{ from = "0", amount = "10" }}, {{ to = "0", percent = "-10", of = ["plan", "per_call"] }} ]

[[charges]]
id = "mix"
kind = "expr"
amount = "calls_year / 1000 + calls_eu / 100 + nav_low / 10 + users_us"

[[limits]]
id = "yearly_cap"
kind = "cap"
amount = "5000"
applies_to = ["per_call", "seats"]
scope = "contract_year"

[[limits]]
id = "credit"
kind = "credit"
amount = "150"
scope = "term"
{amendment}"#
        )
    };
    let plain = compile(&text(""));
    if !amend {
        return plain;
    }
    let effective = plain.periods()[plain.periods().len() / 2].start;
    compile(&text(&format!(
        "\n[[amendments]]\neffective = \"{effective}\"\n\
         set = {{ \"params.price\" = \"0.012\", \"baselines.mark.initial\" = \"150\" }}\n"
    )))
}

/// The contracts of the large-file tests: two customers with two contracts
/// each in different zones and cadences, and one whose customer has no
/// rows (it reads only the rows without customer).
fn rich_run() -> BillingRun {
    BillingRun::new(vec![
        rich_contract(
            "acme-utc",
            "acme",
            "UTC",
            "monthly",
            ("2026-01-01", "2027-01-01", None),
            false,
        ),
        rich_contract(
            "acme-ny",
            "acme",
            "America/New_York",
            "quarterly",
            ("2026-01-15", "2027-01-15", Some("2026-02-01")),
            true,
        ),
        rich_contract(
            "beta-kolkata",
            "beta",
            "Asia/Kolkata",
            "monthly",
            ("2026-02-10", "2026-12-10", Some("2026-03-01")),
            true,
        ),
        rich_contract(
            "beta-chatham",
            "beta",
            "Pacific/Chatham",
            "quarterly",
            ("2026-01-01", "2027-01-01", None),
            false,
        ),
        rich_contract(
            "delta-howe",
            "delta",
            "Australia/Lord_Howe",
            "monthly",
            ("2026-01-01", "2026-08-01", None),
            false,
        ),
    ])
    .expect("distinct ids")
}

/// A deterministic generator (SplitMix64), so a failing file can be made again.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// How a large file is made.
struct Big {
    rows: u64,
    seed: u64,
    crlf: bool,
    bom: bool,
    /// Every this many rows, a region holding a comma, a quote and a line
    /// feed (0: never).
    quoted_every: u64,
    /// Every user (but the empty ones) written over three lines, so that
    /// most line feeds of the file are inside quotes.
    multiline_users: bool,
    /// The header, as indexes into `COLUMNS` (all of them).
    columns: [usize; 9],
    /// A row whose value is written `1e3`.
    malformed_at: Option<u64>,
    /// Two versions of one id recorded at one instant with different
    /// values: (customer, first row, second row).
    conflict: Option<(&'static str, u64, u64)>,
}

impl Default for Big {
    fn default() -> Big {
        Big {
            rows: 4000,
            seed: 1,
            crlf: false,
            bom: false,
            quoted_every: 0,
            multiline_users: false,
            columns: [0, 1, 2, 3, 4, 5, 6, 7, 8],
            malformed_at: None,
            conflict: None,
        }
    }
}

/// What a large file holds besides its rows: the line of its malformed
/// row and the lines of its conflicting versions.
#[derive(Debug, Default)]
struct BigLines {
    malformed: Option<u64>,
    conflict: Vec<u64>,
}

/// A large metric file: every row at its own instant (so `first` and
/// `last` never tie), ids with versions spread over the whole file, each
/// recorded at its own instant, with some voids, exact duplicates and
/// duplicates written with another scale, rows of a customer without
/// contract, rows without customer, bare dates in `calls`, and rows before
/// and after every term.
fn big_csv(spec: &Big) -> (String, BigLines) {
    let mut rng = Rng(spec.seed);
    let rows = spec.rows;
    assert!(
        gcd(7919, rows) == 1 && gcd(104_729, rows) == 1,
        "pick another row count"
    );
    let t0 = Utc.with_ymd_and_hms(2024, 12, 1, 0, 0, 0).unwrap();
    let step =
        (Utc.with_ymd_and_hms(2027, 2, 1, 0, 0, 0).unwrap() - t0).num_seconds() / rows as i64;
    let r0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let rstep =
        (Utc.with_ymd_and_hms(2027, 3, 1, 0, 0, 0).unwrap() - r0).num_seconds() / rows as i64;
    assert!(step >= 1 && rstep >= 1);
    let eol = if spec.crlf { "\r\n" } else { "\n" };
    let mut out = String::new();
    if spec.bom {
        out.push('\u{feff}');
    }
    let header: Vec<&str> = spec.columns.iter().map(|&k| COLUMNS[k]).collect();
    out.push_str(&header.join(","));
    out.push_str(eol);
    let mut lines = BigLines::default();
    // The line the next record starts on.
    let mut line: u64 = 2;
    let emit = |row: &Row, out: &mut String, line: &mut u64| {
        let fields: Vec<String> = spec.columns.iter().map(|&k| csv_field(&row[k])).collect();
        let text = fields.join(",");
        *line += text.matches('\n').count() as u64 + 1;
        out.push_str(&text);
        out.push_str(eol);
    };
    for i in 0..rows {
        let customer = ["acme", "acme", "beta", "beta", "gamma", "", ""][rng.below(7) as usize];
        let series = ["calls", "calls", "pay", "nav", "logins", "noise"][rng.below(6) as usize];
        let mut at = t0 + Duration::seconds(((i * 7919) % rows) as i64 * step);
        if rng.below(4) == 0 {
            at += Duration::milliseconds(rng.below(999) as i64 + 1);
        }
        let timestamp = if series == "calls" && i % 40 == 0 {
            at.date_naive().to_string()
        } else {
            match rng.below(3) {
                0 => zulu(at),
                1 => at_offset(at, 5 * 3600 + 1800),
                _ => at_offset(at, -5 * 3600),
            }
        };
        let value = match rng.below(50) {
            0 => "+7".to_string(),
            1 => "-0".to_string(),
            _ => dec(rng.below(5500) as i64 - 500, rng.below(4) as u32),
        };
        let id = (rng.below(5) < 3).then(|| format!("i{}", rng.below(400)));
        let recorded_at = r0 + Duration::seconds(((i * 104_729) % rows) as i64 * rstep);
        let recorded = match (&id, rng.below(3)) {
            (Some(_), 0) => at_offset(recorded_at, 5 * 3600 + 1800),
            (Some(_), _) => zulu(recorded_at),
            // Dates only where no version can tie with them.
            (None, 0) => String::new(),
            (None, 1) => recorded_at.date_naive().to_string(),
            (None, _) => zulu(recorded_at),
        };
        let void = if id.is_some() && rng.below(12) == 0 {
            "true"
        } else {
            ["", "false"][rng.below(2) as usize]
        };
        let region = if spec.quoted_every > 0 && i % spec.quoted_every == 0 {
            "eu, west\n\"annex\"".to_string()
        } else {
            ["eu", "us", ""][rng.below(3) as usize].to_string()
        };
        let user = if rng.below(20) == 0 {
            String::new()
        } else if spec.multiline_users {
            let n = rng.below(300);
            format!("u{n}{eol}user {n}{eol}")
        } else {
            format!("u{}", rng.below(300))
        };
        let mut row: Row = [
            customer.to_string(),
            series.to_string(),
            timestamp,
            value,
            id.clone().unwrap_or_default(),
            recorded,
            void.to_string(),
            region,
            user,
        ];
        if spec.malformed_at == Some(i) {
            row[3] = "1e3".into();
            lines.malformed = Some(line);
        }
        if let Some((customer, first, second)) = spec.conflict {
            if i == first || i == second {
                row[0] = customer.to_string();
                row[1] = "noise".into();
                row[2] = "2026-03-04T05:06:07Z".into();
                row[3] = if i == first { "1" } else { "2" }.into();
                row[4] = "tie".into();
                row[5] = "2026-03-05T00:00:00Z".into();
                row[6] = String::new();
                lines.conflict.push(line);
            }
        }
        emit(&row, &mut out, &mut line);
        if id.is_some() && i % 97 == 0 {
            emit(&row, &mut out, &mut line);
        } else if id.is_some() && i % 89 == 0 {
            row[3] = rescaled(&row[3]);
            emit(&row, &mut out, &mut line);
        }
    }
    (out, lines)
}

/// Writes `spec`'s file in a fresh directory; the directory, the path and
/// the file's special lines.
fn write_big(spec: &Big) -> (tempfile::TempDir, std::path::PathBuf, BigLines) {
    let (csv, lines) = big_csv(spec);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("big.csv");
    std::fs::write(&path, csv).expect("the file is written");
    (dir, path, lines)
}

/// Settles `path` by streaming (on the global pool, one thread and two) and
/// by the reference, checks they agree, and returns the reference.
fn settle_every_way(run: &BillingRun, path: &Path, options: &RunOptions) -> Vec<RunItem> {
    let expected = reference(run, path, options);
    let streamed = run.settle_csv(path, options);
    if let Err(e) = same_items("settle_csv", &expected, &streamed)
        .and_then(|()| same_on_one_and_two_threads(run, path, options, &streamed))
    {
        panic!("{e}");
    }
    expected
}

fn settled_count(items: &[RunItem]) -> usize {
    items
        .iter()
        .filter(|i| matches!(i, RunItem::Settled(_)))
        .count()
}

#[test]
fn a_large_file_with_quoted_line_feeds_streams_like_the_reference() {
    // Proves a file of several megabytes, with a dimension value holding a
    // comma, a quote and a line feed every 7 rows (so chunk cuts fall
    // inside quoted fields), settles the same by streaming on any number of
    // threads as in memory, with and without an as-of instant.
    let (_dir, path, _) = write_big(&Big {
        rows: 120_001,
        seed: 7,
        quoted_every: 7,
        ..Big::default()
    });
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(
        size > 8 << 20,
        "{size} bytes: the file spans several chunks"
    );
    let run = rich_run();
    let items = settle_every_way(&run, &path, &RunOptions::new(now()));
    assert_eq!(
        settled_count(&items),
        5,
        "{}",
        run_json(&items, true).unwrap()
    );
    let as_of = RunOptions::new(now()).as_of(Stamp::At(
        Utc.with_ymd_and_hms(2026, 9, 14, 12, 30, 0).unwrap(),
    ));
    let items = settle_every_way(&run, &path, &as_of);
    assert_eq!(settled_count(&items), 5);
}

#[test]
fn a_large_crlf_file_with_multiline_fields_streams_like_the_reference() {
    // Proves CRLF line endings, a header in another order and quoted CRLFs
    // settle the same by streaming as in memory, as of a date (local
    // midnight in each zone). Users are written over three lines in the
    // last column, so nearly every line feed is inside quotes and nearly
    // every chunk's guess of where its first record starts is wrong and
    // must be caught.
    let (_dir, path, _) = write_big(&Big {
        rows: 60_001,
        seed: 11,
        crlf: true,
        quoted_every: 301,
        multiline_users: true,
        columns: [3, 1, 0, 7, 5, 2, 6, 4, 8],
        ..Big::default()
    });
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size > 4 << 20, "{size} bytes: the file spans chunks");
    let run = rich_run();
    let options = RunOptions::new(now()).as_of(Stamp::Date(date("2026-10-01")));
    let items = settle_every_way(&run, &path, &options);
    assert_eq!(
        settled_count(&items),
        5,
        "{}",
        run_json(&items, true).unwrap()
    );
}

#[test]
fn a_large_file_with_a_byte_order_mark_streams_like_the_reference() {
    // Proves a UTF-8 byte order mark before the header is skipped the same
    // way by streaming as in memory, and one period asked for settles the
    // same (with the state of the earlier ones carried).
    let (_dir, path, _) = write_big(&Big {
        rows: 60_007,
        seed: 13,
        bom: true,
        quoted_every: 1013,
        ..Big::default()
    });
    let run = rich_run();
    let items = settle_every_way(&run, &path, &RunOptions::new(now()).trace(false));
    assert_eq!(
        settled_count(&items),
        5,
        "{}",
        run_json(&items, true).unwrap()
    );
    // 2026-07-01 starts a period of every contract but acme-ny (quarterly
    // from February): it fails with the same usage error both ways.
    let july = date("2026-07-01");
    let items = settle_every_way(&run, &path, &RunOptions::new(now()).period(july));
    for (item, c) in items.iter().zip(run.contracts()) {
        let starts_july = c.periods().iter().any(|p| p.start == july);
        assert_eq!(
            starts_july,
            c.contract().id != "acme-ny",
            "{} {:?}",
            c.contract().id,
            c.periods().iter().map(|p| p.start).collect::<Vec<_>>()
        );
        match item {
            RunItem::Settled(s) => {
                assert!(starts_july, "{}", s.contract);
                assert_eq!(s.statements.len(), 1);
                assert_eq!(s.statements[0].period.start, july);
            }
            RunItem::Failed { error, .. } => {
                assert!(
                    !starts_july && matches!(error.kind(), ErrorKind::InvalidArgument),
                    "{error:?}"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Bad input

#[test]
fn a_malformed_row_far_into_a_large_file_fails_every_contract_at_its_position() {
    // Proves a value written `1e3` near the end of a file of several
    // megabytes, after quoted fields holding line feeds, fails every
    // contract with the error of the in-memory source, located at the
    // row's FILE:LINE:COLUMN (lines counted from the header, line feeds
    // inside quotes included; the column of `value` in a shuffled header).
    let columns = [1, 8, 2, 0, 3, 7, 4, 5, 6];
    let value_column = columns.iter().position(|&k| COLUMNS[k] == "value").unwrap() + 1;
    let (_dir, path, lines) = write_big(&Big {
        rows: 70_001,
        seed: 17,
        quoted_every: 5,
        columns,
        malformed_at: Some(69_000),
        ..Big::default()
    });
    let line = lines.malformed.expect("the malformed row is written");
    assert!(line > 69_000, "line {line} counts the quoted line feeds");
    let run = rich_run();
    let items = settle_every_way(&run, &path, &RunOptions::new(now()));
    assert_eq!(items.len(), 5);
    for item in &items {
        let RunItem::Failed { error, .. } = item else {
            panic!("{} settled despite a malformed row", item.contract());
        };
        assert!(matches!(error.location(), Location::Data(_)), "{error:?}");
        assert_eq!(
            error.location(),
            format!("{}:{line}:{value_column}", path.display())
        );
        assert!(error.message().contains("1e3"), "{}", error.message());
    }
}

/// A contract of `customer` in `zone` that reads `calls` (and not `noise`).
fn calls_contract(id: &str, customer: &str, zone: &str) -> CompiledContract {
    compile(&format!(
        "format = 1\nid = \"{id}\"\ncustomer = \"{customer}\"\ncurrency = \"USD\"\n\
         start = \"2026-01-01\"\nend = \"2026-04-01\"\ncadence = \"monthly\"\ntimezone = \"{zone}\"\n\
         [metrics.calls]\nseries = \"calls\"\naggregate = \"sum\"\n\
         [[charges]]\nid = \"per_call\"\nkind = \"unit\"\nquantity = \"calls\"\nunit_price = \"1\"\n"
    ))
}

/// The failed items' contract ids, in the run's order (the byte order of
/// the ids).
fn failed(items: &[RunItem]) -> Vec<&str> {
    items
        .iter()
        .filter(|i| matches!(i, RunItem::Failed { .. }))
        .map(RunItem::contract)
        .collect()
}

#[test]
fn a_conflicting_tie_in_an_unread_series_fails_every_reader_of_its_rows() {
    // new rule: conflicting ties fail every reader
    // Proves two versions of one id recorded at one instant with different
    // values fail every contract that reads those rows, though no metric
    // reads their series: the contracts of their customer, or every
    // contract when the rows have no customer; other customers' contracts
    // settle, and a tie of a customer without contract fails nobody. The
    // error names both lines. Also in a large file, the versions megabytes
    // apart.
    let run = BillingRun::new(vec![
        calls_contract("acme-utc", "acme", "UTC"),
        calls_contract("acme-ny", "acme", "America/New_York"),
        calls_contract("beta", "beta", "UTC"),
    ])
    .unwrap();
    let options = RunOptions::new(now());
    for (customer, want_failed) in [
        ("acme", vec!["acme-ny", "acme-utc"]),
        ("", vec!["acme-ny", "acme-utc", "beta"]),
        ("gamma", vec![]),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tie.csv");
        std::fs::write(
            &path,
            format!(
                "customer,series,timestamp,value,id,recorded_at\n\
                 acme,calls,2026-01-05T10:00:00Z,3,,\n\
                 {customer},noise,2026-01-06T10:00:00Z,1,n1,2026-01-07T00:00:00Z\n\
                 beta,calls,2026-01-05T10:00:00Z,4,,\n\
                 {customer},noise,2026-01-06T10:00:00Z,2,n1,2026-01-07T00:00:00Z\n"
            ),
        )
        .unwrap();
        let items = settle_every_way(&run, &path, &options);
        assert_eq!(failed(&items), want_failed, "rows of {customer:?}");
        let name = path.display().to_string();
        for item in &items {
            match item {
                RunItem::Failed { error, .. } => {
                    assert!(matches!(error.location(), Location::Data(_)), "{error:?}");
                    let message = error.to_string();
                    assert!(
                        message.contains("noise")
                            && message.contains(&format!("{name}:3"))
                            && message.contains(&format!("{name}:5")),
                        "{message}"
                    );
                }
                RunItem::Settled(s) => assert_eq!(s.statements.len(), 3),
            }
        }
    }

    // The same tie in a large file, its versions megabytes apart.
    let (_dir, path, lines) = write_big(&Big {
        rows: 60_001,
        seed: 19,
        quoted_every: 11,
        conflict: Some(("beta", 5, 59_000)),
        ..Big::default()
    });
    assert_eq!(lines.conflict.len(), 2);
    let run = rich_run();
    let items = settle_every_way(&run, &path, &RunOptions::new(now()));
    assert_eq!(failed(&items), ["beta-chatham", "beta-kolkata"]);
    let name = path.display().to_string();
    for item in &items {
        if let RunItem::Failed { error, .. } = item {
            let message = error.to_string();
            for line in &lines.conflict {
                assert!(message.contains(&format!("{name}:{line}")), "{message}");
            }
        }
    }
}

#[test]
fn a_date_and_its_utc_midnight_tie_only_where_they_are_the_same_instant() {
    // new rule: conflicting ties fail every reader
    // Proves versions recorded at one instant, one with the timestamp
    // `2026-01-15` and one with `2026-01-15T00:00:00Z` and an equal value
    // (`5`, `5.0`), count once for a UTC contract, where the two are the
    // same instant, and are a conflicting tie for an America/New_York
    // contract, where the date is 05:00Z; and that versions whose
    // `recorded_at` differ that way are a tie in UTC (equal: counted once)
    // and no tie in New York (the later one wins).
    let run = BillingRun::new(vec![
        calls_contract("utc", "acme", "UTC"),
        calls_contract("ny", "acme", "America/New_York"),
    ])
    .unwrap();
    let options = RunOptions::new(now());
    let dir = tempfile::tempdir().unwrap();

    let path = dir.path().join("timestamps.csv");
    std::fs::write(
        &path,
        "customer,series,timestamp,value,id,recorded_at\n\
         acme,calls,2026-01-15,5,x,2026-01-20T00:00:00Z\n\
         acme,calls,2026-01-15T00:00:00Z,5.0,x,2026-01-20T00:00:00Z\n",
    )
    .unwrap();
    let items = settle_every_way(&run, &path, &options);
    assert_eq!(failed(&items), ["ny"]);
    let name = path.display().to_string();
    for item in &items {
        match item {
            RunItem::Failed { error, .. } => {
                let message = error.to_string();
                assert!(matches!(error.location(), Location::Data(_)), "{error:?}");
                assert!(
                    message.contains(&format!("{name}:2"))
                        && message.contains(&format!("{name}:3")),
                    "{message}"
                );
            }
            RunItem::Settled(s) => {
                assert_eq!(s.contract, "utc");
                assert_eq!(s.statements[0].total.to_string(), "5.00", "counted once");
            }
        }
    }

    let path = dir.path().join("recorded.csv");
    std::fs::write(
        &path,
        "customer,series,timestamp,value,id,recorded_at\n\
         acme,calls,2026-01-15T12:00:00Z,5,x,2026-01-20\n\
         acme,calls,2026-01-15T12:00:00Z,5.0,x,2026-01-20T00:00:00Z\n",
    )
    .unwrap();
    let items = settle_every_way(&run, &path, &options);
    assert_eq!(failed(&items), Vec::<&str>::new());
    for item in &items {
        let RunItem::Settled(s) = item else {
            unreachable!()
        };
        assert_eq!(
            s.statements[0].total.to_string(),
            "5.00",
            "{} counts once",
            s.contract
        );
    }
}

#[test]
fn a_missing_file_fails_every_contract_with_an_io_error_naming_it() {
    // Proves a metric file that does not exist fails every contract of the
    // run with an I/O error located at its path, as the reference does.
    let run = rich_run();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.csv");
    let items = settle_every_way(&run, &path, &RunOptions::new(now()));
    assert_eq!(items.len(), 5);
    for item in &items {
        let RunItem::Failed { error, .. } = item else {
            panic!("{} settled without data", item.contract());
        };
        assert!(matches!(error.kind(), ErrorKind::Io), "{error:?}");
        assert_eq!(error.location(), path.display().to_string());
        assert!(!error.message().is_empty());
    }
}

#[test]
fn a_run_with_two_contracts_of_one_id_is_a_usage_error() {
    // Proves BillingRun::new refuses two contracts with one id, so nothing
    // is settled.
    let e = BillingRun::new(vec![
        calls_contract("same", "acme", "UTC"),
        calls_contract("same", "beta", "UTC"),
    ])
    .unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::InvalidArgument), "{e:?}");
}

/// A UTC contract, January 2026, one unit charge on metric `m` of series
/// `s` reduced with `aggregate`.
fn one_metric(aggregate: &str) -> CompiledContract {
    compile(&format!(
        "format = 1\nid = \"c\"\ncustomer = \"acme\"\ncurrency = \"USD\"\n\
         start = \"2026-01-01\"\nend = \"2026-02-01\"\ncadence = \"monthly\"\n\
         [metrics.m]\nseries = \"s\"\naggregate = \"{aggregate}\"\n\
         [[charges]]\nid = \"u\"\nkind = \"unit\"\nquantity = \"m\"\nunit_price = \"1\"\n"
    ))
}

/// Settles `data` with one contract both ways and requires the same items.
fn both_ways(contract: CompiledContract, data: &[u8]) -> Vec<RunItem> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("m.csv");
    std::fs::write(&path, data).expect("write");
    let run = BillingRun::new(vec![contract]).expect("run");
    let options = RunOptions::new(now()).as_of(Stamp::parse("2026-02-01").expect("stamp"));
    let streamed = run.settle_csv(&path, &options);
    let expected = reference(&run, &path, &options);
    same_items("streaming", &expected, &streamed).unwrap_or_else(|e| panic!("{e}"));
    streamed
}

#[test]
fn a_byte_order_mark_inside_the_data_is_part_of_its_row() {
    // Proves only the file's own byte order mark is dropped: one at the
    // start of a data row stays in its series (which nothing reads), and a
    // row that is only a mark is a malformed row, as in the reference.
    let items = both_ways(
        one_metric("sum"),
        b"series,timestamp,value,customer\n\xEF\xBB\xBFs,2026-01-10,5,acme\ns,2026-01-11,1,acme\n",
    );
    let RunItem::Settled(s) = &items[0] else {
        panic!("settled: {items:?}")
    };
    assert_eq!(
        s.statements[0].lines[0]
            .quantity
            .map(|q| q.to_string())
            .as_deref(),
        Some("1")
    );
    let items = both_ways(
        one_metric("sum"),
        b"series,timestamp,value,customer\n\xEF\xBB\xBF\ns,2026-01-11,1,acme\n",
    );
    assert!(matches!(&items[0], RunItem::Failed { .. }), "{items:?}");
}

#[test]
fn a_first_tie_names_the_same_rows_however_lines_are_numbered() {
    // Proves the two rows a `first` tie names are chosen by line number,
    // the same in the streaming path (which numbers lines per chunk) as in
    // the reference: lines 10 and 12, not 11 and 12.
    let mut data = String::from("series,timestamp,value,customer\n");
    for _ in 2..=9 {
        data.push_str("s,2026-01-20,1,acme\n");
    }
    data.push_str("s,2026-01-05,1,acme\ns,2026-01-05,1,acme\ns,2026-01-05,2,acme\n");
    let items = both_ways(one_metric("first"), data.as_bytes());
    let RunItem::Failed { error, .. } = &items[0] else {
        panic!("a tie: {items:?}")
    };
    assert!(
        error.message().contains(":10 and ") && error.message().ends_with(":12"),
        "{error}"
    );
}

#[test]
fn sums_do_not_depend_on_the_order_of_rows() {
    // Proves a sum that adding in turn would round, or overflow part way,
    // is the same exact sum on both paths whatever the file order.
    let items = both_ways(
        one_metric("sum"),
        b"series,timestamp,value,customer\ns,2026-01-10,10000000000,acme\n\
          s,2026-01-20,-10000000000,acme\ns,2026-01-05,0.0000000000000000000000000001,acme\n",
    );
    let RunItem::Settled(s) = &items[0] else {
        panic!("settled: {items:?}")
    };
    assert_eq!(
        s.statements[0].lines[0]
            .quantity
            .map(|q| q.to_string())
            .as_deref(),
        Some("0.0000000000000000000000000001")
    );
    let items = both_ways(
        one_metric("sum"),
        b"series,timestamp,value,customer\ns,2026-01-10,79228162514264337593543950335,acme\n\
          s,2026-01-20,-1,acme\ns,2026-01-05,1,acme\n",
    );
    assert!(matches!(&items[0], RunItem::Settled(_)), "{items:?}");
}
