//! The hot pieces of a month-end billing run, each measured on its own so a
//! regression shows where it happened:
//!
//! - `csv_scan_and_route/*`: [`BillingRun::settle_csv`] over one generated
//!   metrics file (1,000 contracts × 12 months, ~22 rows per contract-month,
//!   the shape `benches/billing-run/generate.py` writes): parse, check,
//!   route every row to its contracts' accumulators, resolve corrections by
//!   id, settle 12,000 periods. Untraced as `outcome settle --format csv`,
//!   traced as `--format json`. Throughput in bytes of the file.
//! - `csv_scan_only/*`: the same file, run by contracts whose customers are
//!   not in it, so that no row is routed: the cost of parsing and checking
//!   every row, the floor of the path above. With one contract the floor is
//!   the parse alone; with 1,000 it adds settling their empty periods.
//!   Throughput in bytes.
//! - `aggregation_heavy/*`: a file whose every row feeds many accumulators:
//!   each contract reads one series with every aggregate (sum, count, mean,
//!   min, max, first, last, unique_count of a dimension, a filtered
//!   family), over the period, the contract year to date and the term to
//!   date, and a historical baseline over the year before the term.
//!   Throughput in rows.
//! - `settle_one_contract_period/*`: one period of one template contract
//!   against a small [`MemorySource`] (one customer's year of rows):
//!   [`CompiledContract::settle_next_amounts`] (no allocation once warm),
//!   and [`CompiledContract::settle_next`] without and with traces.
//! - `settle_source_reference/*`: [`BillingRun::settle_source`] over a
//!   [`CsvSource`] of the `csv_scan_and_route` file, the in-memory reference
//!   path: opening the file and settling (the whole job, comparable with
//!   `csv_scan_and_route/*_untraced`), and settling an already opened
//!   source. Throughput in bytes of the file, for comparison.
//!
//! The data is generated in Rust from a fixed seed (integer arithmetic
//! only, the same on every machine) into `target/tmp/billing_run_bench/`
//! on every run; before measuring, every run is checked to settle every
//! contract, and the streaming and reference paths to agree on the grand
//! total.
//!
//! Run: `cargo bench --bench billing_run` (about a minute of measuring on 2
//! cores, after the build).

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::Duration;

use chrono::{DateTime, Datelike, Months, NaiveDate, TimeZone, Utc};
use criterion::{
    BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
    measurement::WallTime,
};
use outcome_billing::metric::{CsvSource, MemorySource, Observation};
use outcome_billing::money::parse_decimal;
use outcome_billing::period::Stamp;
use outcome_billing::report::RunItem;
use outcome_billing::run::{BillingRun, RunOptions};
use outcome_billing::settle::Amounts;
use outcome_billing::{CompiledContract, Contract, SettleOptions};
use rust_decimal::Decimal;

/// Contracts of the template run.
const CONTRACTS: usize = 1_000;
/// Months of the template term (2026-01-01 onwards, UTC).
const MONTHS: u32 = 12;
/// Contracts of the aggregation-heavy run.
const HEAVY_CONTRACTS: usize = 500;
/// Rows per contract and month of the aggregation-heavy file.
const HEAVY_ROWS_PER_MONTH: u32 = 20;
/// The seed of every generated number.
const SEED: u64 = 20_260_101;

// ---------------------------------------------------------------------------
// Run options and checks

/// The run's clock and as-of date: 14 days after the term's end, when every
/// period has ended and the last month's corrections are known.
fn options(trace: bool) -> RunOptions {
    let now = Utc
        .with_ymd_and_hms(2027, 1, 15, 0, 0, 0)
        .single()
        .expect("a valid instant");
    RunOptions::new(now)
        .as_of(Stamp::parse("2027-01-15").expect("a date"))
        .trace(trace)
}

/// The as-of instant of [`options`] (every contract here is in UTC).
fn as_of() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, 1, 15, 0, 0, 0)
        .single()
        .expect("a valid instant")
}

/// The grand total of a run; panics unless every contract settled all
/// `periods` periods, so that a bench never measures a failing run.
fn grand_total(items: &[RunItem], periods: usize) -> Decimal {
    let mut total = Decimal::ZERO;
    for item in items {
        match item {
            RunItem::Settled(s) => {
                assert_eq!(s.statements.len(), periods, "{}: periods", s.contract);
                total += s.statements.iter().map(|st| st.total).sum::<Decimal>();
            }
            RunItem::Failed { contract, error } => panic!("{contract} failed: {error}"),
        }
    }
    total
}

/// Where the generated files go: Cargo's scratch directory for benches.
fn data_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("billing_run_bench");
    std::fs::create_dir_all(&dir).expect("create the bench data directory");
    dir
}

/// Writes `text` to `name` in [`data_dir`] through a temporary file, so a
/// concurrent run never reads half a file.
fn write_data(name: &str, text: &str) -> PathBuf {
    let dir = data_dir();
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, text).expect("write bench data");
    std::fs::rename(&tmp, &path).expect("move bench data into place");
    path
}

// ---------------------------------------------------------------------------
// Deterministic numbers

/// SplitMix64: a tiny generator whose stream is fixed by its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi` (the modulo bias is irrelevant here).
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }

    /// Uniform in `0..1000`.
    fn permille(&mut self) -> u64 {
        self.next() % 1000
    }
}

/// An integer number of cents as decimal text.
fn cents(c: u64) -> String {
    format!("{}.{:02}", c / 100, c % 100)
}

/// `(year, month)` plus `n` months.
fn add_months(year: i32, month: u32, n: u32) -> (i32, u32) {
    let k = year * 12 + month as i32 - 1 + n as i32;
    (k.div_euclid(12), k.rem_euclid(12) as u32 + 1)
}

fn first_of(year: i32, month: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, 1).expect("a valid month")
}

// ---------------------------------------------------------------------------
// The template run (generate.py's CONTRACT_TEMPLATE and data shape)

/// One contract's numbers, drawn as generate.py draws them.
struct Terms {
    n: usize,
    fee_cents: u64,
    volume: u64,
    allowance: u64,
    tier2_to: u64,
    /// Thousandths.
    price2: u64,
    /// Ten-thousandths.
    price3: u64,
    /// Whole dollars.
    baseline: u64,
    /// Hundredths.
    share: u64,
    cap: u64,
    credit_minor: &'static str,
    credit_major: &'static str,
}

impl Terms {
    fn draw(rng: &mut Rng, n: usize) -> Terms {
        let mut fee_cents = rng.range(10, 101) * 50 * 100;
        if rng.permille() < 250 {
            fee_cents -= 1;
        }
        let volume = rng.range(300, 4500);
        let allowance = rng.range(4, 41) * 50;
        let tier2_to = allowance + rng.range(5, 31) * 100;
        let price2 = rng.range(400, 1201);
        let price3 = price2 * rng.range(6000, 8501) / 1000;
        let baseline = rng.range(50, 501) * 1000;
        let share = rng.range(15, 31);
        let cap = baseline * rng.range(15, 51) / 1000;
        let credit_minor = ["-5", "-10", "-10", "-15"][rng.range(0, 4) as usize];
        let credit_major = ["-25", "-25", "-30"][rng.range(0, 3) as usize];
        Terms {
            n,
            fee_cents,
            volume,
            allowance,
            tier2_to,
            price2,
            price3,
            baseline,
            share,
            cap,
            credit_minor,
            credit_major,
        }
    }

    /// The contract file, for customer `customer`. `uptime_missing` is
    /// added to the uptime metric (for runs that read no rows).
    fn contract(&self, customer: &str, uptime_missing: &str) -> CompiledContract {
        let (ey, em) = add_months(2026, 1, MONTHS);
        let text = format!(
            r#"
format = 1
id = "c{n:06}"
customer = "{customer}"
currency = "USD"
start = "2026-01-01"
end = "{end}"
cadence = "monthly"
timezone = "UTC"

[params]
fee = "{fee}"
allowance = "{allowance}"
tier2_to = "{tier2_to}"
price2 = "{p2a}.{p2b:03}"
price3 = "{p3a}.{p3b:04}"
share = "0.{share:02}"
gain_cap = "{cap}"
credit_minor = "{credit_minor}"
credit_major = "{credit_major}"

[metrics.resolved]
series = "tickets_resolved"
aggregate = "sum"

[metrics.revenue]
series = "revenue"
aggregate = "sum"

[metrics.uptime]
series = "uptime_pct"
aggregate = "min"
{uptime_missing}

[baselines.revenue_baseline]
kind = "fixed"
value = "{baseline}"

[[charges]]
id = "platform"
kind = "fixed"
amount = "fee"

[[charges]]
id = "usage"
kind = "tiered"
mode = "graduated"
quantity = "resolved"
tiers = [
  {{ up_to = "allowance", unit_price = "0" }},
  {{ up_to = "tier2_to", unit_price = "price2" }},
  {{ unit_price = "price3" }},
]

[[charges]]
id = "revenue_share"
kind = "gain_share"
actual = "revenue"
baseline = "revenue_baseline"
direction = "increase"
share = "share"
threshold = {{ relative = "0.02" }}
sharing = "first_dollar"
cap = {{ amount = "gain_cap" }}

[[charges]]
id = "sla_credit"
kind = "bands"
kpi = "uptime"
bands = [
  {{ from = "99.0", to = "99.9", percent = "credit_minor", of = ["platform", "usage"] }},
  {{ to = "99.0", percent = "credit_major", of = ["platform", "usage"] }},
]
"#,
            n = self.n,
            end = first_of(ey, em),
            fee = cents(self.fee_cents),
            allowance = self.allowance,
            tier2_to = self.tier2_to,
            p2a = self.price2 / 1000,
            p2b = self.price2 % 1000,
            p3a = self.price3 / 10000,
            p3b = self.price3 % 10000,
            share = self.share,
            cap = self.cap,
            credit_minor = self.credit_minor,
            credit_major = self.credit_major,
            baseline = self.baseline,
        );
        let contract = Contract::from_toml_str(&text).expect("the template is a valid contract");
        CompiledContract::new(contract).expect("the template compiles")
    }
}

/// Precomputed timestamp text of one month of the term.
struct Month {
    ticket_ts: Vec<String>,
    rev_ts: [String; 4],
    rev_rec: [String; 4],
    ym: String,
    uptime_ts: String,
    moved_ts: String,
    corr_rec: [String; 3],
}

impl Month {
    fn new(year: i32, month: u32) -> Month {
        let start = first_of(year, month);
        let next = start + Months::new(1);
        let days = (next - start).num_days() as u32;
        let ym = format!("{year:04}-{month:02}");
        let next_ym = format!("{:04}-{:02}", next.year(), next.month());
        let ticket_ts = (0..17)
            .map(|k| {
                format!(
                    "{ym}-{:02}T{:02}:{:02}:00Z",
                    1 + k * (days - 1) / 16,
                    8 + k % 10,
                    (k * 7) % 60
                )
            })
            .collect();
        let rev_ts = std::array::from_fn(|w| format!("{ym}-{:02}T23:30:00Z", 7 * (w + 1)));
        let rev_rec = std::array::from_fn(|w| {
            let day = 7 * (w as u32 + 1) + 1;
            if day > days {
                format!("{next_ym}-01T02:00:00Z")
            } else {
                format!("{ym}-{day:02}T02:00:00Z")
            }
        });
        let corr_rec =
            std::array::from_fn(|j| format!("{next_ym}-{:02}T09:{:02}:00Z", 3 + 5 * j, 15 * j));
        Month {
            ticket_ts,
            rev_ts,
            rev_rec,
            uptime_ts: format!("{ym}-01T00:00:00Z"),
            moved_ts: format!("{next_ym}-01T00:00:00Z"),
            ym,
            corr_rec,
        }
    }
}

/// The template run's metrics file as text, and its number of data rows.
///
/// Per contract and month: 13 to 17 `tickets_resolved` counts without id,
/// 4 weekly `revenue` rows with an id and a `recorded_at`, one
/// `uptime_pct` reading, and 1 to 3 corrections of the month's revenue ids
/// recorded early the next month (written at the start of its block): 1%
/// recorded after the as-of date, 0.5% void, 1% moved into the next month,
/// 0.2% recorded exactly at the as-of instant, 0.3% written before their
/// original. December's corrections and the late ones close the file.
fn template_csv(terms: &[Terms]) -> (String, u64) {
    let mut rng = Rng(SEED + 1);
    let months: Vec<Month> = (0..MONTHS)
        .map(|k| {
            let (y, m) = add_months(2026, 1, k);
            Month::new(y, m)
        })
        .collect();
    let (ay, am) = add_months(2026, 1, MONTHS + 1);
    let late_rec: [String; 3] =
        std::array::from_fn(|j| format!("{ay:04}-{am:02}-{:02}T09:00:00Z", 1 + j));
    let as_of_text = as_of().format("%Y-%m-%dT%H:%M:%SZ").to_string();

    let mut out = String::with_capacity(terms.len() * MONTHS as usize * 22 * 70);
    out.push_str("customer,series,timestamp,value,id,recorded_at,void\n");
    let mut rows = 0u64;
    let mut carry = String::new();
    let mut late = String::new();
    let mut block = String::new();
    let mut early = String::new();
    for (mi, mo) in months.iter().enumerate() {
        let last_month = mi + 1 == months.len();
        rows += carry.lines().count() as u64;
        out.push_str(&carry);
        carry.clear();
        for t in terms {
            let cust = format!("cust{:06}", t.n);
            let cid = format!("c{:06}", t.n);
            block.clear();
            early.clear();
            let k = rng.range(13, 18) as usize;
            let per = t.volume / k as u64;
            for ts in &mo.ticket_ts[..k] {
                let v = per * rng.range(500, 1500) / 1000;
                writeln!(block, "{cust},tickets_resolved,{ts},{v},,,").expect("write to a String");
            }
            let month_c = t.baseline * 100 * rng.range(900, 1301) / 1000;
            let mut week = [0u64; 4];
            for (w, v) in week.iter_mut().enumerate() {
                *v = month_c / 4 * rng.range(850, 1151) / 1000;
                writeln!(
                    block,
                    "{cust},revenue,{},{},{cid}-r-{}-{},{},",
                    mo.rev_ts[w],
                    cents(*v),
                    mo.ym,
                    w + 1,
                    mo.rev_rec[w]
                )
                .expect("write to a String");
            }
            let u = rng.permille();
            let up = if u < 880 {
                99_900 + rng.range(0, 101)
            } else if u < 970 {
                99_000 + rng.range(0, 900)
            } else {
                97_000 + rng.range(0, 2000)
            };
            writeln!(
                block,
                "{cust},uptime_pct,{},{}.{:03},,,",
                mo.uptime_ts,
                up / 1000,
                up % 1000
            )
            .expect("write to a String");
            rows += k as u64 + 5;
            let r = rng.permille();
            let ncorr = if r < 250 {
                1
            } else if r < 750 {
                2
            } else {
                3
            };
            let corrections = mo.corr_rec.iter().zip(&late_rec).enumerate().take(ncorr);
            for (j, (corr_rec, late_rec)) in corrections {
                let w = rng.range(0, 4) as usize;
                let v = week[w] * rng.range(900, 1101) / 1000;
                let mut ts = mo.rev_ts[w].as_str();
                let mut rec = corr_rec.as_str();
                let mut void = "";
                let mut to_late = false;
                let r = rng.range(0, 10_000);
                if r < 100 {
                    rec = late_rec;
                    to_late = true;
                } else if r < 150 {
                    void = "true";
                } else if r < 250 {
                    if !last_month {
                        ts = &mo.moved_ts;
                    }
                } else if r < 270 && j == 0 {
                    rec = &as_of_text;
                    to_late = true;
                }
                let dest = if rng.range(0, 10_000) < 30 {
                    &mut early
                } else if to_late || last_month {
                    &mut late
                } else {
                    &mut carry
                };
                writeln!(
                    dest,
                    "{cust},revenue,{ts},{},{cid}-r-{}-{},{rec},{void}",
                    cents(v),
                    mo.ym,
                    w + 1
                )
                .expect("write to a String");
            }
            rows += early.lines().count() as u64;
            out.push_str(&early);
            out.push_str(&block);
        }
    }
    rows += (carry.lines().count() + late.lines().count()) as u64;
    out.push_str(&carry);
    out.push_str(&late);
    (out, rows)
}

/// The template run: its terms, the metrics file and its size.
struct TemplateData {
    terms: Vec<Terms>,
    path: PathBuf,
    bytes: u64,
    rows: u64,
}

static TEMPLATE: LazyLock<TemplateData> = LazyLock::new(|| {
    let mut rng = Rng(SEED);
    let terms: Vec<Terms> = (1..=CONTRACTS).map(|n| Terms::draw(&mut rng, n)).collect();
    let (text, rows) = template_csv(&terms);
    let path = write_data("template.csv", &text);
    TemplateData {
        terms,
        path,
        bytes: text.len() as u64,
        rows,
    }
});

/// The template run: one contract per customer of the file.
fn template_run() -> BillingRun {
    let contracts = TEMPLATE
        .terms
        .iter()
        .map(|t| t.contract(&format!("cust{:06}", t.n), ""))
        .collect();
    BillingRun::new(contracts).expect("distinct ids")
}

// ---------------------------------------------------------------------------
// The aggregation-heavy run

/// A contract reading one series (`calls`) with every aggregate and window.
fn heavy_contract(n: usize) -> CompiledContract {
    let text = format!(
        r#"
format = 1
id = "h{n:06}"
customer = "cust{n:06}"
currency = "USD"
start = "2026-01-01"
end = "2027-01-01"
cadence = "monthly"
timezone = "UTC"

[metrics.calls]
series = "calls"
aggregate = "sum"

[metrics.calls_count]
series = "calls"
aggregate = "count"

[metrics.calls_mean]
series = "calls"
aggregate = "mean"
missing = "zero"

[metrics.calls_min]
series = "calls"
aggregate = "min"
missing = "zero"

[metrics.calls_max]
series = "calls"
aggregate = "max"
missing = "zero"

[metrics.calls_first]
series = "calls"
aggregate = "first"
missing = "zero"

[metrics.calls_last]
series = "calls"
aggregate = "last"
missing = "zero"

[metrics.users]
series = "calls"
aggregate = "unique_count"
of = "user"

[metrics.users_eu]
series = "calls"
aggregate = "unique_count"
of = "user"
filter = {{ region = "eu" }}

[metrics.calls_eu]
series = "calls"
aggregate = "sum"
filter = {{ region = "eu" }}

[metrics.calls_year]
series = "calls"
aggregate = "sum"
window = "contract_year_to_date"

[metrics.calls_term]
series = "calls"
aggregate = "count"
window = "term_to_date"

[baselines.before]
kind = "historical"
metric = "calls"
from = "2025-01-01"
to = "2026-01-01"

[[charges]]
id = "plan"
kind = "fixed"
amount = "49"

[[charges]]
id = "per_call"
kind = "unit"
quantity = "calls"
unit_price = "0.01"

[[charges]]
id = "seats"
kind = "tiered"
mode = "graduated"
quantity = "users"
tiers = [ {{ up_to = "10", unit_price = "0" }}, {{ unit_price = "1.5" }} ]

[[charges]]
id = "savings"
kind = "gain_share"
actual = "calls"
baseline = "before"
direction = "decrease"
share = "0.2"

[[charges]]
id = "mix"
kind = "expr"
amount = "calls_count / 1000 + calls_mean / 100 + (calls_max - calls_min) / 10 + (calls_last - calls_first) / 10 + users_eu + calls_eu / 1000 + calls_year / 10000 + calls_term / 1000"
"#
    );
    let contract = Contract::from_toml_str(&text).expect("a valid contract");
    CompiledContract::new(contract).expect("compiles")
}

/// The aggregation-heavy file: for every contract, 24 months (the year
/// before the term, for the baseline, and the term) of `calls` rows with a
/// `user` and a `region`, no id.
fn heavy_csv() -> (String, u64) {
    let mut rng = Rng(SEED + 2);
    let mut out = String::with_capacity(HEAVY_CONTRACTS * 24 * HEAVY_ROWS_PER_MONTH as usize * 56);
    out.push_str("customer,series,timestamp,value,user,region\n");
    let mut rows = 0u64;
    for k in 0..24 {
        let (y, m) = add_months(2025, 1, k);
        let start = first_of(y, m);
        let days = ((start + Months::new(1)) - start).num_days() as u32;
        for n in 1..=HEAVY_CONTRACTS {
            for r in 0..HEAVY_ROWS_PER_MONTH {
                let day = 1 + r * (days - 1) / (HEAVY_ROWS_PER_MONTH - 1);
                let value = rng.range(100, 10_000);
                let user = rng.range(0, 40);
                let region = if rng.next() % 2 == 0 { "eu" } else { "us" };
                writeln!(
                    out,
                    "cust{n:06},calls,{y:04}-{m:02}-{day:02}T{:02}:{:02}:00Z,{}.{:02},u{user:02},{region}",
                    r % 24,
                    (r * 7) % 60,
                    value / 100,
                    value % 100
                )
                .expect("write to a String");
                rows += 1;
            }
        }
    }
    (out, rows)
}

// ---------------------------------------------------------------------------
// Benches

/// A group of whole-run benches: few samples, one iteration each.
fn run_group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    group
}

fn csv_scan_and_route(c: &mut Criterion) {
    let data = &*TEMPLATE;
    let run = template_run();
    let mut group = run_group(c, "csv_scan_and_route");
    group.throughput(Throughput::Bytes(data.bytes));
    for (name, trace) in [
        ("1000_contracts_12_months_untraced", false),
        ("1000_contracts_12_months_traced", true),
    ] {
        let options = options(trace);
        grand_total(&run.settle_csv(&data.path, &options), MONTHS as usize);
        group.bench_function(name, |b| {
            b.iter(|| run.settle_csv(black_box(&data.path), &options))
        });
    }
    group.finish();
}

fn csv_scan_only(c: &mut Criterion) {
    let data = &*TEMPLATE;
    // The same contracts for customers the file does not have; an empty
    // uptime window reads as zero so that they settle.
    let absent = |terms: &[Terms]| {
        let contracts = terms
            .iter()
            .map(|t| t.contract(&format!("absent{:06}", t.n), "missing = \"zero\""))
            .collect();
        BillingRun::new(contracts).expect("distinct ids")
    };
    let options = options(false);
    let mut group = run_group(c, "csv_scan_only");
    group.throughput(Throughput::Bytes(data.bytes));
    for (name, run) in [
        ("1000_absent_contracts", absent(&data.terms)),
        ("1_absent_contract", absent(&data.terms[..1])),
    ] {
        grand_total(&run.settle_csv(&data.path, &options), MONTHS as usize);
        group.bench_function(name, |b| {
            b.iter(|| run.settle_csv(black_box(&data.path), &options))
        });
    }
    group.finish();
}

fn aggregation_heavy(c: &mut Criterion) {
    let (text, rows) = heavy_csv();
    let path = write_data("heavy.csv", &text);
    drop(text);
    let run =
        BillingRun::new((1..=HEAVY_CONTRACTS).map(heavy_contract).collect()).expect("distinct ids");
    let options = options(false);
    let streamed = grand_total(&run.settle_csv(&path, &options), 12);
    let source = CsvSource::open(&path).expect("the generated file reads");
    let reference = grand_total(&run.settle_source(&source, &options), 12);
    assert_eq!(streamed, reference, "settle_csv and settle_source disagree");
    drop(source);

    let mut group = run_group(c, "aggregation_heavy");
    group.throughput(Throughput::Elements(rows));
    group.bench_function("500_contracts_24_months_12_metrics", |b| {
        b.iter(|| run.settle_csv(black_box(&path), &options))
    });
    group.finish();
}

/// Customer `cust000001`'s rows of the template file, as observations.
fn first_customer_observations(path: &Path) -> Vec<Observation> {
    let text = std::fs::read_to_string(path).expect("the generated file reads");
    let stamp = |s: &str| Stamp::parse(s).expect("a generated stamp");
    text.lines()
        .skip(1)
        .filter(|line| line.starts_with("cust000001,"))
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            let mut o = Observation::new(
                f[1],
                stamp(f[2]),
                parse_decimal(f[3]).expect("a generated value"),
            );
            o.customer = Some(f[0].to_owned());
            o.id = (!f[4].is_empty()).then(|| f[4].to_owned());
            o.recorded_at = (!f[5].is_empty()).then(|| stamp(f[5]));
            o.void = f[6] == "true";
            o
        })
        .collect()
}

fn settle_one_contract_period(c: &mut Criterion) {
    let data = &*TEMPLATE;
    let contract = data.terms[0].contract("cust000001", "");
    let source = MemorySource::from_observations(first_customer_observations(&data.path))
        .expect("valid observations");
    let as_of = Some(as_of());
    let initial = contract.initial_state();

    // The amounts must be the statement's, so that both measure one thing.
    let (statement, _) = contract
        .settle_next(&source, &initial, &SettleOptions { as_of, trace: true })
        .expect("settles");
    let mut state = initial.clone();
    let mut out = Amounts::default();
    contract
        .settle_next_amounts(&source, &mut state, &mut out, as_of)
        .expect("settles");
    assert_eq!(out.total, statement.total, "amounts and statement disagree");

    let mut group = c.benchmark_group("settle_one_contract_period");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("amounts", |b| {
        b.iter(|| {
            // Back to period 0 without allocating.
            state.next_period = 0;
            state.year_to_date.fill(Decimal::ZERO);
            state.running.fill(Decimal::ZERO);
            state.marks.fill(None);
            contract
                .settle_next_amounts(black_box(&source), &mut state, &mut out, as_of)
                .expect("settles");
            out.total
        })
    });
    for (name, trace) in [("statement_untraced", false), ("statement_traced", true)] {
        let options = SettleOptions { as_of, trace };
        group.bench_function(name, |b| {
            b.iter(|| {
                contract
                    .settle_next(black_box(&source), &initial, &options)
                    .expect("settles")
            })
        });
    }
    group.finish();
}

fn settle_source_reference(c: &mut Criterion) {
    let data = &*TEMPLATE;
    let run = template_run();
    let options = options(false);
    let source = CsvSource::open(&data.path).expect("the generated file reads");
    assert_eq!(source.len() as u64, data.rows, "rows of the generated file");
    let reference = grand_total(&run.settle_source(&source, &options), MONTHS as usize);
    let streamed = grand_total(&run.settle_csv(&data.path, &options), MONTHS as usize);
    assert_eq!(streamed, reference, "settle_csv and settle_source disagree");

    let mut group = run_group(c, "settle_source_reference");
    group.throughput(Throughput::Bytes(data.bytes));
    group.bench_function("open_and_settle_untraced", |b| {
        b.iter(|| {
            let source = CsvSource::open(black_box(&data.path)).expect("reads");
            run.settle_source(&source, &options)
        })
    });
    group.bench_function("settle_opened_untraced", |b| {
        b.iter(|| run.settle_source(black_box(&source), &options))
    });
    group.finish();
}

criterion_group!(
    benches,
    csv_scan_and_route,
    csv_scan_only,
    aggregation_heavy,
    settle_one_contract_period,
    settle_source_reference
);
criterion_main!(benches);
