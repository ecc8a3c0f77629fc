//! A billing run from the database stores: 10,000 contracts × 12 monthly
//! periods settled from PostgreSQL with the window aggregates pushed down
//! into SQL, from PostgreSQL fetching each window's rows and reducing them
//! in Rust, from SQLite, and from the CSV file (in memory) for reference.
//! Every run must bill the same grand total.
//!
//! Not a Criterion bench: one run of each takes seconds to minutes, and the
//! server's caches make repeats of a run the interesting figure, so each is
//! run `STORE_RUN_ROUNDS` times (default 3), the sources interleaved in
//! each round, and the median of each is printed.
//!
//! ```sh
//! export OUTCOME_TEST_POSTGRES="$(bash .ci/start-postgres)"
//! cargo bench --bench store_run
//! ```
//!
//! `STORE_RUN_CONTRACTS` (default 10000) sets the number of contracts and
//! `STORE_RUN_TICKETS` (default 4) the ticket rows per contract and month,
//! besides four rows of other series. The data goes to
//! `target/store-run/N/` and into the schema `bench_store_run` of the
//! server's database, both replaced on every start.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use outcome_billing::metric::postgres::import_csv as import_postgres;
use outcome_billing::metric::{CsvSource, PostgresSource, SqliteSource, import_csv};
use outcome_billing::period::Stamp;
use outcome_billing::report::RunItem;
use outcome_billing::run::{BillingRun, RunOptions};
use outcome_billing::{CompiledContract, MetricSource};
use rust_decimal::Decimal;

const MONTHS: u32 = 12;

/// SplitMix64: deterministic numbers without a dependency.
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

fn contract(k: usize, rng: &mut Rng) -> CompiledContract {
    let text = format!(
        r#"
format = 1
id = "c{k:05}"
customer = "c{k:05}"
currency = "USD"
start = "2026-01-01"
end = "2027-01-01"
cadence = "monthly"
timezone = "UTC"

[metrics.tickets]
series = "tickets"
aggregate = "sum"

[metrics.revenue]
series = "revenue"
aggregate = "sum"

[metrics.uptime]
series = "uptime_pct"
aggregate = "min"
missing = "zero"

[[charges]]
id = "platform"
kind = "fixed"
amount = "{fee}"

[[charges]]
id = "usage"
kind = "unit"
quantity = "tickets"
unit_price = "0.{price:02}"

[[charges]]
id = "share"
kind = "percentage"
base = "revenue"
rate = "0.{share:02}"

[[charges]]
id = "sla"
kind = "bands"
kpi = "uptime"
bands = [ {{ to = "99.0", percent = "-10", of = ["platform", "usage"] }} ]
"#,
        fee = 100 + rng.below(900),
        price = 10 + rng.below(89),
        share = 5 + rng.below(20),
    );
    match CompiledContract::from_toml_str(&text) {
        Ok(c) => c,
        Err(e) => panic!("generated contract: {e}"),
    }
}

/// Per contract and month: `tickets` ticket counts (default 4), a date-only
/// uptime reading, two revenue rows with ids and a correction of one of
/// them (a void one time in ten) recorded two days later.
fn metrics_csv(contracts: usize, tickets: u32, rng: &mut Rng) -> String {
    let mut csv = String::from("customer,series,timestamp,value,id,recorded_at,void\n");
    for k in 0..contracts {
        for m in 1..=MONTHS {
            let c = format!("c{k:05}");
            for t in 0..tickets {
                let (day, minute) = (1 + t % 28, t / 28 % 1440);
                let v = rng.below(500);
                writeln!(
                    csv,
                    "{c},tickets,2026-{m:02}-{day:02}T{:02}:{:02}:00Z,{v},,,",
                    minute / 60,
                    minute % 60
                )
                .ok();
            }
            let up = 9850 + rng.below(151);
            writeln!(
                csv,
                "{c},uptime_pct,2026-{m:02}-15,{}.{:02},,,",
                up / 100,
                up % 100
            )
            .ok();
            for (day, tag) in [(5, 'a'), (20, 'b')] {
                let cents = rng.below(1_000_000);
                writeln!(
                    csv,
                    "{c},revenue,2026-{m:02}-{day:02}T17:00:00Z,{}.{:02},r{k}-{m}-{tag},,",
                    cents / 100,
                    cents % 100
                )
                .ok();
            }
            let cents = rng.below(1_000_000);
            let void = if rng.below(10) == 0 { "true" } else { "" };
            writeln!(
                csv,
                "{c},revenue,2026-{m:02}-05T17:00:00Z,{}.{:02},r{k}-{m}-a,2026-{m:02}-07T00:00:00Z,{void}",
                cents / 100,
                cents % 100
            )
            .ok();
        }
    }
    csv
}

fn grand_total(items: &[RunItem]) -> Decimal {
    let mut total = Decimal::ZERO;
    for item in items {
        match item {
            RunItem::Settled(s) => {
                assert_eq!(s.statements.len(), MONTHS as usize, "{}", s.contract);
                total += s.statements.iter().map(|st| st.total).sum::<Decimal>();
            }
            RunItem::Failed { contract, error } => panic!("{contract} failed: {error}"),
        }
    }
    total
}

fn seconds(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported.
    let Ok(server) = std::env::var("OUTCOME_TEST_POSTGRES") else {
        println!(
            "skipping: set OUTCOME_TEST_POSTGRES=postgres://… (bash .ci/start-postgres starts a server)"
        );
        return;
    };
    let contracts: usize = std::env::var("STORE_RUN_CONTRACTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let tickets: u32 = std::env::var("STORE_RUN_TICKETS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(4);
    let rounds: usize = std::env::var("STORE_RUN_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target/store-run")
        .join(format!("{contracts}-{tickets}"));
    std::fs::create_dir_all(&dir).expect("make the data directory");

    let mut rng = Rng(20_260_101);
    let run = BillingRun::new((0..contracts).map(|k| contract(k, &mut rng)).collect())
        .expect("distinct contract ids");
    let csv_path = dir.join("metrics.csv");
    std::fs::write(&csv_path, metrics_csv(contracts, tickets, &mut rng))
        .expect("write the metrics");
    let rows = contracts * MONTHS as usize * (tickets as usize + 4);

    let schema = "bench_store_run";
    let mut client = postgres::Client::connect(&server, postgres::NoTls).expect("reach the server");
    client
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema};"
        ))
        .expect("make the schema");
    let separator = if server.contains('?') { '&' } else { '?' };
    let url = format!("{server}{separator}options=-csearch_path%3D{schema}");
    let sqlite_path = dir.join("metrics.db");
    let _ = std::fs::remove_file(&sqlite_path);

    println!(
        "{contracts} contracts × {MONTHS} months, {tickets} ticket rows a month, {rows} metric rows"
    );
    let t = Instant::now();
    let added = import_postgres(&csv_path, &url).expect("import into PostgreSQL");
    println!("import into PostgreSQL (COPY): {}", seconds(t.elapsed()));
    assert_eq!(added, rows);
    client
        .batch_execute(&format!("ANALYZE {schema}.outcome_observations"))
        .expect("analyze");
    let t = Instant::now();
    import_csv(&csv_path, &sqlite_path).expect("import into SQLite");
    println!("import into SQLite: {}", seconds(t.elapsed()));
    let t = Instant::now();
    assert_eq!(import_postgres(&csv_path, &url).expect("import again"), 0);
    println!(
        "import into PostgreSQL again (nothing added): {}",
        seconds(t.elapsed())
    );

    let now = Utc
        .with_ymd_and_hms(2027, 1, 15, 0, 0, 0)
        .single()
        .expect("an instant");
    let options = RunOptions::new(now)
        .as_of(Stamp::parse("2027-01-15").expect("a date"))
        .trace(false);

    let t = Instant::now();
    let csv = CsvSource::open(&csv_path).expect("read the CSV");
    println!("read the CSV into memory: {}", seconds(t.elapsed()));
    let sqlite = SqliteSource::open(&sqlite_path).expect("open SQLite");
    let sqlite_fetched = SqliteSource::open(&sqlite_path)
        .expect("open SQLite")
        .with_push_down(false);
    let pushed = PostgresSource::open(&url).expect("open PostgreSQL");
    let fetched = PostgresSource::open(&url)
        .expect("open PostgreSQL")
        .with_push_down(false);
    let sources: [(&str, &dyn MetricSource); 5] = [
        ("CSV (in memory)", &csv),
        ("SQLite, push-down", &sqlite),
        ("SQLite, fetching rows", &sqlite_fetched),
        ("PostgreSQL, push-down", &pushed),
        ("PostgreSQL, fetching rows", &fetched),
    ];
    // Rounds interleave the sources, so a slow minute of this shared
    // machine falls on all of them; each source's median is reported.
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); sources.len()];
    let mut want: Option<Decimal> = None;
    for round in 1..=rounds {
        for (k, (name, source)) in sources.iter().enumerate() {
            let t = Instant::now();
            let items = run.settle_source(*source, &options);
            let elapsed = t.elapsed();
            let total = grand_total(&items);
            assert_eq!(
                *want.get_or_insert(total),
                total,
                "{name} bills differently"
            );
            println!("round {round}: settle from {name}: {}", seconds(elapsed));
            times[k].push(elapsed);
        }
    }
    println!("medians of {rounds} rounds:");
    for ((name, _), mut t) in sources.iter().zip(times) {
        t.sort();
        let median = t[t.len() / 2];
        let per_second =
            (contracts as u128 * u128::from(MONTHS) * 1_000_000) / median.as_micros().max(1);
        println!(
            "  {name:<28} {:>8}  {per_second:>9} contract-periods/s",
            seconds(median)
        );
    }
}
