//! Every metric source gives the same answers: the in-memory, CSV, SQLite
//! and PostgreSQL sources (push-down on and off) reduce generated data —
//! customers, corrections, ties, void rows, dates and instants, filters,
//! zones and as-of — to identical results and errors, and settle a
//! contract to identical statements. And a PostgreSQL store that is
//! unreachable, of the wrong schema or too new is refused, naming it, with
//! nothing written.
//!
//! The PostgreSQL tests need `OUTCOME_TEST_POSTGRES` (see `common/pg.rs`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use outcome_billing::metric::postgres::{import_csv, import_observations};
use outcome_billing::metric::{
    Aggregate, CsvSource, Group, MemorySource, Observation, PostgresSource, Query, Reduced,
    SqliteSource,
};
use outcome_billing::period::Stamp;
use outcome_billing::{
    CompiledContract, ErrorKind, MetricSource, Result, SettleOptions, Statement,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};
use rust_decimal::Decimal;

#[path = "common/pg.rs"]
mod pg;

/// One generated CSV row.
#[derive(Debug, Clone)]
struct Row {
    customer: &'static str,
    series: &'static str,
    timestamp: Stamp,
    value: Decimal,
    id: Option<&'static str>,
    recorded_at: Option<Stamp>,
    void: &'static str,
    region: &'static str,
    user: &'static str,
}

/// Days around the month boundaries of the term (Feb–May 2026).
const DAYS: [(u32, u32); 12] = [
    (1, 31),
    (2, 1),
    (2, 2),
    (2, 28),
    (3, 1),
    (3, 15),
    (3, 31),
    (4, 1),
    (4, 30),
    (5, 1),
    (5, 31),
    (6, 1),
];

/// Times of day in UTC that fall on either side of local midnight in New
/// York (04:00/05:00) and Kolkata (18:30 the day before).
const TIMES: [(u32, u32); 6] = [(0, 0), (3, 59), (4, 0), (5, 0), (18, 30), (23, 0)];

fn stamp() -> impl Strategy<Value = Stamp> {
    (0..DAYS.len(), 0..TIMES.len(), 0u8..3).prop_map(|(d, t, kind)| {
        let (m, day) = DAYS[d];
        let date = NaiveDate::from_ymd_opt(2026, m, day).unwrap();
        if kind == 0 {
            Stamp::Date(date)
        } else {
            let (h, min) = TIMES[t];
            Stamp::At(date.and_hms_opt(h, min, 0).unwrap().and_utc())
        }
    })
}

fn row() -> impl Strategy<Value = Row> {
    (
        prop::sample::select(vec!["acme", "beta", ""]),
        prop::sample::select(vec!["s", "t"]),
        stamp(),
        (-300i64..300, 0u32..4),
        prop::option::weighted(0.6, prop::sample::select(vec!["a", "b", "c", "d"])),
        prop::option::weighted(0.6, stamp()),
        prop::sample::select(vec!["", "", "", "false", "true"]),
        prop::sample::select(vec!["eu", "us", ""]),
        prop::sample::select(vec!["ann", "bob", "", "Ann"]),
    )
        .prop_map(
            |(
                customer,
                series,
                timestamp,
                (mantissa, scale),
                id,
                recorded_at,
                void,
                region,
                user,
            )| {
                Row {
                    customer,
                    series,
                    timestamp,
                    value: Decimal::new(mantissa, scale),
                    id,
                    recorded_at,
                    void,
                    region,
                    user,
                }
            },
        )
}

/// Rows, with some repeated exactly (equal versions count once).
fn rows() -> impl Strategy<Value = Vec<Row>> {
    (
        prop::collection::vec(row(), 1..28),
        prop::collection::vec(any::<prop::sample::Index>(), 0..4),
    )
        .prop_map(|(mut rows, repeats)| {
            for r in repeats {
                let copy = rows[r.index(rows.len())].clone();
                rows.push(copy);
            }
            rows
        })
}

fn stamp_text(stamp: &Stamp) -> String {
    match stamp {
        Stamp::Date(d) => d.to_string(),
        Stamp::At(at) => at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    }
}

fn csv_text(rows: &[Row]) -> String {
    let mut text =
        String::from("customer,series,timestamp,value,id,recorded_at,void,region,user\n");
    for r in rows {
        writeln!(
            text,
            "{},{},{},{},{},{},{},{},{}",
            r.customer,
            r.series,
            stamp_text(&r.timestamp),
            r.value,
            r.id.unwrap_or(""),
            r.recorded_at.as_ref().map(stamp_text).unwrap_or_default(),
            r.void,
            r.region,
            r.user
        )
        .unwrap();
    }
    text
}

fn observations(rows: &[Row], path: &Path) -> Vec<Observation> {
    rows.iter()
        .enumerate()
        .map(|(i, r)| Observation {
            series: r.series.to_owned(),
            timestamp: r.timestamp,
            value: r.value,
            id: r.id.map(str::to_owned),
            recorded_at: r.recorded_at,
            customer: (!r.customer.is_empty()).then(|| r.customer.to_owned()),
            void: r.void == "true",
            dimensions: vec![
                ("region".to_owned(), r.region.to_owned()),
                ("user".to_owned(), r.user.to_owned()),
            ],
            origin: Some(format!("{}:{}", path.display(), i + 2)),
        })
        .collect()
}

const ZONES: [Tz; 3] = [
    chrono_tz::America::New_York,
    chrono_tz::Asia::Kolkata,
    chrono_tz::UTC,
];

/// As-of instants around the recorded times the generator writes.
fn as_of() -> impl Strategy<Value = Option<DateTime<Utc>>> {
    prop::option::weighted(
        0.6,
        (0..DAYS.len(), 0..TIMES.len()).prop_map(|(d, t)| {
            let (m, day) = DAYS[d];
            let (h, min) = TIMES[t];
            Utc.with_ymd_and_hms(2026, m, day, h, min, 0).unwrap()
        }),
    )
}

const AGGREGATES: [(Aggregate, Option<&str>); 10] = [
    (Aggregate::Sum, None),
    (Aggregate::Count, None),
    (Aggregate::Mean, None),
    (Aggregate::Min, None),
    (Aggregate::Max, None),
    (Aggregate::First, None),
    (Aggregate::Last, None),
    (Aggregate::UniqueCount, Some("user")),
    (Aggregate::UniqueCount, Some("plan")),
    (Aggregate::Count, Some("region")),
];

/// A comparable form of a result: the value with its scale, or the error's
/// kind and message (its location names the source, so it differs).
fn shape<T: std::fmt::Debug>(r: &Result<T>) -> String {
    match r {
        Ok(v) => format!("{v:?}"),
        Err(e) => format!("{:?}: {}", e.kind(), e.message()),
    }
}

/// The groups of `dimension` `source` finds for `query`, or its error's
/// shape.
fn groups_shape(source: &dyn MetricSource, query: &Query<'_>, dimension: &str) -> String {
    let mut groups = std::collections::BTreeSet::new();
    let r = source.groups(query, dimension, &mut groups);
    match r {
        Ok(()) => format!("{groups:?}"),
        Err(_) => shape(&r),
    }
}

fn reduced_shape(r: &Result<Reduced>) -> String {
    match r {
        Ok(Reduced { value, count }) => {
            format!(
                "{:?} (scale {:?}) of {count}",
                value,
                value.map(|v| v.scale())
            )
        }
        Err(_) => shape(r),
    }
}

fn contract(tz: Tz, customer: &str) -> CompiledContract {
    let text = format!(
        r#"
format = 1
id = "sources"
customer = "{customer}"
currency = "USD"
start = "2026-02-01"
end = "2026-06-01"
cadence = "monthly"
timezone = "{tz}"

[metrics.total]
series = "s"
aggregate = "sum"

[metrics.n]
series = "t"
aggregate = "count"

[metrics.avg]
series = "s"
aggregate = "mean"
missing = "zero"

[metrics.lo]
series = "t"
aggregate = "min"
missing = "zero"

[metrics.hi]
series = "t"
aggregate = "max"
window = "term_to_date"
missing = "zero"

[metrics.early]
series = "s"
aggregate = "first"
filter = {{ region = "eu" }}
missing = "zero"

[metrics.late]
series = "t"
aggregate = "last"
missing = "zero"

[metrics.users]
series = "s"
aggregate = "unique_count"
of = "user"
window = "contract_year_to_date"

[metrics.blank]
series = "t"
aggregate = "sum"
filter = {{ region = "" }}

[[charges]]
id = "all"
kind = "expr"
amount = "total + n + avg + lo + hi + early + late + users + blank"

[[charges]]
id = "fees"
kind = "percentage"
base = "total"
rate = "0.1"
per_observation = {{ fixed = "0.30" }}
"#
    );
    CompiledContract::from_toml_str(&text).unwrap()
}

fn settle(
    contract: &CompiledContract,
    source: &dyn MetricSource,
    as_of: Option<DateTime<Utc>>,
) -> String {
    let options = SettleOptions {
        as_of,
        ..SettleOptions::default()
    };
    let last = contract.periods().len() - 1;
    let r: Result<Vec<Statement>> = contract.settle_through(source, last, &options);
    shape(&r)
}

#[test]
fn every_source_gives_the_same_results_and_statements() {
    // Proves memory, CSV, SQLite and PostgreSQL (push-down and fetch) agree on every
    // aggregate of generated data, and on settling a contract over it.
    let Some(url) = pg::fresh("sources_agree") else {
        return;
    };
    import_observations(&url, Vec::new()).unwrap();
    let client = std::cell::RefCell::new(pg::client(&url));
    let dir = tempfile::tempdir().unwrap();
    let dir: PathBuf = std::fs::canonicalize(dir.path()).unwrap();
    let mut runner = TestRunner::new(Config {
        cases: 32,
        source_file: Some(file!()),
        failure_persistence: Some(Box::new(FileFailurePersistence::SourceParallel(
            "proptest-regressions",
        ))),
        ..Config::default()
    });
    let cases = std::cell::Cell::new(0);
    let strategy = (rows(), 0..ZONES.len(), as_of());
    let result = runner.run(&strategy, |(rows, zone, as_of)| {
        let case = cases.get() + 1;
        cases.set(case);
        let tz = ZONES[zone];
        let csv_path = dir.join(format!("case-{case}.csv"));
        std::fs::write(&csv_path, csv_text(&rows)).unwrap();
        let sqlite_path = dir.join(format!("case-{case}.db"));
        client
            .borrow_mut()
            .batch_execute(
                "TRUNCATE outcome_observations RESTART IDENTITY; TRUNCATE outcome_dimensions;",
            )
            .unwrap();

        let memory = MemorySource::from_observations(observations(&rows, &csv_path)).unwrap();
        let csv = CsvSource::open(&csv_path).unwrap();
        outcome_billing::metric::import_csv(&csv_path, &sqlite_path).unwrap();
        let sqlite = SqliteSource::open(&sqlite_path).unwrap();
        prop_assert_eq!(import_csv(&csv_path, &url).unwrap(), rows.len());
        let pushed = PostgresSource::open(&url).unwrap();
        let fetched = PostgresSource::open(&url).unwrap().with_push_down(false);
        let sources: [(&str, &dyn MetricSource); 5] = [
            ("memory", &memory),
            ("csv", &csv),
            ("sqlite", &sqlite),
            ("postgres", &pushed),
            ("postgres fetching", &fetched),
        ];

        let month = |m: u32| {
            let day = |m| NaiveDate::from_ymd_opt(2026, m, 1).unwrap();
            (
                outcome_billing::period::local_midnight(day(m), tz),
                outcome_billing::period::local_midnight(day(m + 1), tz),
            )
        };
        let windows = [
            month(2),
            month(3),
            month(4),
            month(5),
            (month(1).0, month(6).1),
        ];
        let filters: [Vec<(String, String)>; 5] = [
            vec![],
            vec![("region".into(), "eu".into())],
            vec![("region".into(), String::new())],
            vec![
                ("user".into(), "ann".into()),
                ("region".into(), "us".into()),
            ],
            vec![("plan".into(), "gold".into())],
        ];
        for (w, (start, end)) in windows.iter().enumerate() {
            for (c, customer) in ["acme", "beta", ""].iter().enumerate() {
                for (s, series) in ["s", "t"].iter().enumerate() {
                    let filter = &filters[(w + c + s) % filters.len()];
                    let query = Query {
                        customer,
                        series,
                        start: *start,
                        end: *end,
                        timezone: tz,
                        filter,
                        as_of,
                    };
                    for (aggregate, of) in AGGREGATES {
                        let want = reduced_shape(&memory.aggregate(&query, aggregate, of));
                        for (name, source) in &sources[1..] {
                            let got = reduced_shape(&source.aggregate(&query, aggregate, of));
                            prop_assert_eq!(
                                &got,
                                &want,
                                "{} differs from memory on {:?} {:?} {:?}",
                                name,
                                aggregate,
                                of,
                                query
                            );
                        }
                    }
                    for dimension in ["user", "region", "plan", "absent"] {
                        let want = groups_shape(&memory, &query, dimension);
                        for (name, source) in &sources[1..] {
                            prop_assert_eq!(
                                &groups_shape(*source, &query, dimension),
                                &want,
                                "{} finds other groups of {} on {:?}",
                                name,
                                dimension,
                                query
                            );
                        }
                        // Each group's sum, the group "" (no value, or none) included.
                        for value in ["", "eu", "ann"] {
                            let group = Group { dimension, value };
                            let want = reduced_shape(&memory.aggregate_group(
                                &query,
                                group,
                                Aggregate::Sum,
                                None,
                            ));
                            for (name, source) in &sources[1..] {
                                let got = reduced_shape(&source.aggregate_group(
                                    &query,
                                    group,
                                    Aggregate::Sum,
                                    None,
                                ));
                                prop_assert_eq!(
                                    &got,
                                    &want,
                                    "{} reduces {:?} otherwise on {:?}",
                                    name,
                                    group,
                                    query
                                );
                            }
                        }
                    }
                }
            }
        }

        for customer in ["acme", "beta"] {
            let contract = contract(tz, customer);
            let want = settle(&contract, &memory, as_of);
            for (name, source) in &sources[1..] {
                let got = settle(&contract, *source, as_of);
                prop_assert_eq!(&got, &want, "{} settles differently for {}", name, customer);
            }
        }
        Ok::<(), TestCaseError>(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Whether `url`'s store has the table of metric rows, and how many rows.
fn rows_in(url: &str) -> Option<i64> {
    let mut client = pg::client(url);
    let exists: bool = client
        .query_one(
            "SELECT to_regclass('outcome_observations') IS NOT NULL",
            &[],
        )
        .unwrap()
        .get(0);
    exists.then(|| {
        client
            .query_one("SELECT count(*) FROM outcome_observations", &[])
            .unwrap()
            .get(0)
    })
}

fn one_row() -> Vec<Observation> {
    let mut o = Observation::new("s", Stamp::parse("2026-03-02").unwrap(), Decimal::ONE);
    o.origin = Some("f.csv:2".into());
    vec![o]
}

#[test]
fn a_database_without_a_metric_store_is_refused() {
    // Proves a database with unrelated tables is refused by name, and opening it writes nothing.
    let Some(url) = pg::fresh("sources_wrong_schema") else {
        return;
    };
    let mut client = pg::client(&url);
    client
        .batch_execute("CREATE TABLE invoices (number TEXT PRIMARY KEY, total NUMERIC)")
        .unwrap();
    let e = PostgresSource::open(&url).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::StoreUnavailable);
    assert_eq!(e.location().to_string(), url);
    assert!(
        e.message()
            .starts_with("not a metric store (no metrics schema"),
        "{e}"
    );
    let tables: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(tables, 1, "opening wrote nothing");

    // A table of our name that no migration made: the import fails and changes nothing.
    client
        .batch_execute("CREATE TABLE outcome_observations (x INT)")
        .unwrap();
    let e = import_observations(&url, one_row()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::StoreUnavailable);
    assert!(
        e.message()
            .starts_with("migration 1 of the metrics schema failed"),
        "{e}"
    );
    let schema_table: bool = client
        .query_one("SELECT to_regclass('outcome_dimensions') IS NOT NULL", &[])
        .unwrap()
        .get(0);
    assert!(!schema_table);
}

#[test]
fn a_store_of_a_newer_schema_is_refused_and_left_alone() {
    // Proves a store migrated past this build's version is refused for reading and importing,
    // naming the store and both versions, with no row written.
    let Some(url) = pg::fresh("sources_newer") else {
        return;
    };
    assert_eq!(import_observations(&url, one_row()).unwrap(), 1);
    let mut client = pg::client(&url);
    client
        .batch_execute("UPDATE outcome_schema SET version = 99 WHERE component = 'metrics'")
        .unwrap();
    let e = PostgresSource::open(&url).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::StoreUnavailable);
    assert_eq!(e.location().to_string(), url);
    assert_eq!(
        e.message(),
        "the metric store is at schema version 99, newer than this build knows (1): use a newer outcome"
    );
    let mut more = one_row();
    more[0].origin = Some("f.csv:3".into());
    let e = import_observations(&url, more).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::StoreUnavailable);
    assert!(e.message().contains("newer than this build knows"), "{e}");
    assert_eq!(rows_in(&url), Some(1));

    // An older version (as after a partial upgrade) is refused for reading too.
    client
        .batch_execute("UPDATE outcome_schema SET version = 0 WHERE component = 'metrics'")
        .unwrap();
    let e = PostgresSource::open(&url).unwrap_err();
    assert!(e.message().contains("schema version 0"), "{e}");
}

#[test]
fn a_missing_database_or_server_is_a_store_error() {
    // Proves a database that does not exist and a server that does not answer are store
    // errors naming the URL (without its password), with nothing created.
    let url = "postgres://outcome:hunter2@127.0.0.1:1/metrics";
    for e in [
        PostgresSource::open(url).unwrap_err(),
        import_observations(url, one_row()).unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::StoreUnavailable);
        assert_eq!(
            e.location().to_string(),
            "postgres://outcome:***@127.0.0.1:1/metrics"
        );
        assert!(!format!("{e} {e:?}").contains("hunter2"));
    }
    let Some(server) = pg::server() else {
        return;
    };
    let (base, _) = server.rsplit_once('/').unwrap();
    let missing = format!("{base}/outcome_no_such_database");
    let e = PostgresSource::open(&missing).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::StoreUnavailable);
    assert!(e.message().contains("does not exist"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("m.csv");
    std::fs::write(&csv, "series,timestamp,value\ns,2026-03-02,1\n").unwrap();
    let e = import_csv(&csv, &missing).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::StoreUnavailable);
}
