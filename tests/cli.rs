//! The `outcome` command line against the data page: `validate` lines and
//! exit statuses, invalid contracts named by field path and value, `settle`
//! on the spec example, malformed data, billing runs over several contracts
//! and the stable JSON and CSV shapes.

#[path = "common/command.rs"]
mod command;
use command::{Run, json, outcome_in, write};

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

// ---------------------------------------------------------------------------
// Helpers

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn example(file: &str) -> String {
    repo()
        .join("examples/support-agent")
        .join(file)
        .display()
        .to_string()
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// A contract with id `id`, January to March 2026, monthly, and `body`.
fn contract(id: &str, extra: &str, body: &str) -> String {
    format!(
        "format = 1\nid = \"{id}\"\ncustomer = \"acme\"\ncurrency = \"USD\"\n\
         start = \"2026-01-01\"\nend = \"2026-04-01\"\ncadence = \"monthly\"\n{extra}\n{body}"
    )
}

const PLAN: &str = "[[charges]]\nid = \"plan\"\nkind = \"fixed\"\namount = \"10\"\n";

/// A unit price on the sum of series `resolved`.
const UNIT: &str = "[metrics.resolved]\naggregate = \"sum\"\n\
                    [[charges]]\nid = \"u\"\nkind = \"unit\"\nquantity = \"resolved\"\nunit_price = \"0.5\"\n";

/// `value` as a string, which it must be.
fn s(value: &Value) -> &str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("expected a string, got {value}"))
}

/// Runs `validate` on one contract text and returns the run.
fn validate_text(text: &str) -> Run {
    let dir = tmp();
    let file = write(dir.path(), "c.toml", text);
    outcome_in(&["validate", &file], dir.path())
}

/// Asserts an invalid contract exits 2 and stderr names every one of
/// `needles` (the field path and the offending value).
fn assert_invalid(body: &str, needles: &[&str]) {
    let run = validate_text(&contract("t", "", body));
    assert_eq!(run.code, 2, "stderr: {}", run.stderr);
    assert!(run.stdout.is_empty(), "stdout: {}", run.stdout);
    for n in needles {
        assert!(
            run.stderr.contains(n),
            "stderr lacks {n:?}:\n{}",
            run.stderr
        );
    }
}

// ---------------------------------------------------------------------------
// validate

#[test]
fn validate_prints_the_summary_line_and_exits_0() {
    // Proves `validate` prints `ID: ok (N periods, M charges, K limits)` per
    // contract and exits 0.
    let run = outcome_in(&["validate", &example("contract.toml")], &repo());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "support-agent-2026: ok (13 periods, 5 charges, 2 limits)\n"
    );
    let dir = tmp();
    let a = write(dir.path(), "a.toml", &contract("one", "", PLAN));
    let b = write(
        dir.path(),
        "b.json",
        r#"{"format": 1, "id": "two", "customer": "c", "currency": "EUR",
        "start": "2026-01-01", "end": "2027-01-01", "cadence": "quarterly",
        "charges": [{"id": "x", "kind": "expr", "amount": 1.5}],
        "limits": [{"kind": "cap", "amount": "10", "scope": "term"}, {"kind": "floor", "amount": "1", "scope": "period"}]}"#,
    );
    let run = outcome_in(&["validate", &a, &b], dir.path());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "one: ok (3 periods, 1 charges, 0 limits)\ntwo: ok (4 periods, 1 charges, 2 limits)\n"
    );
}

#[test]
fn invalid_unknown_field() {
    // Proves an unknown field is rejected with exit 2, naming its path.
    assert_invalid(&format!("{PLAN}amont = \"2\"\n"), &["charges[0].amont"]);
    let run = validate_text(&contract("t", "colour = \"red\"", PLAN));
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("colour"), "{}", run.stderr);
}

#[test]
fn invalid_wrong_type() {
    // Proves a value of the wrong type is rejected, naming the path and
    // quoting the value.
    assert_invalid(
        &format!("{PLAN}prorate = \"yes\"\n"),
        &["charges[0].prorate", "yes"],
    );
}

#[test]
fn invalid_tiers_out_of_order() {
    // Proves tiers whose up_to does not increase are rejected at load,
    // naming the tier and both values.
    assert_invalid(
        "[[charges]]\nid = \"a\"\nkind = \"tiered\"\nmode = \"graduated\"\nquantity = \"1\"\n\
         tiers = [ { up_to = \"100\", unit_price = \"1\" }, { up_to = \"50\", unit_price = \"1\" }, { unit_price = \"0.5\" } ]\n",
        &["charges[0].tiers[1].up_to", "100", "50"],
    );
}

#[test]
fn invalid_undefined_name() {
    // Proves an undefined name in an expression is rejected, naming it.
    assert_invalid(
        "[[charges]]\nid = \"a\"\nkind = \"unit\"\nquantity = \"outcome_count\"\nunit_price = \"1\"\n",
        &["charges[0].quantity", "undefined name outcome_count"],
    );
}

#[test]
fn invalid_kpi_cycle() {
    // Proves a cycle among KPIs is rejected, naming the KPIs on the cycle.
    let body = "[kpis.a]\nexpr = \"b + 1\"\n[kpis.b]\nexpr = \"a * 2\"\n\
                [[charges]]\nid = \"x\"\nkind = \"expr\"\namount = \"a\"\n";
    assert_invalid(body, &["kpis.", "cycle"]);
    let run = validate_text(&contract("t", "", body));
    assert!(
        run.stderr.contains("a -> b") || run.stderr.contains("b -> a"),
        "{}",
        run.stderr
    );
}

#[test]
fn invalid_charge_naming_a_later_charge() {
    // Proves a charge naming itself or a later charge is rejected.
    assert_invalid(
        "[[charges]]\nid = \"a\"\nkind = \"expr\"\namount = \"b\"\n\
         [[charges]]\nid = \"b\"\nkind = \"expr\"\namount = \"1\"\n",
        &["charges[0].amount", " b "],
    );
    assert_invalid(
        "[[charges]]\nid = \"a\"\nkind = \"expr\"\namount = \"a + 1\"\n",
        &["charges[0].amount"],
    );
}

#[test]
fn invalid_duplicate_name() {
    // Proves a name defined twice in the shared namespace is rejected,
    // naming it and the earlier kind.
    assert_invalid(
        "[metrics.leads]\naggregate = \"sum\"\n\
         [[charges]]\nid = \"leads\"\nkind = \"expr\"\namount = \"1\"\n",
        &["charges[0].id", "leads", "metric"],
    );
    assert_invalid(&format!("{PLAN}{PLAN}"), &["charges[1].id", "plan"]);
}

#[test]
fn invalid_amendment_outside_the_term() {
    // Proves an amendment dated outside the term is rejected, naming
    // `amendments[N].effective` and quoting the date (a mid-period date
    // inside the term is accepted: it cuts its period).
    assert_invalid(
        &format!(
            "{PLAN}[[amendments]]\neffective = \"2025-02-15\"\nset = {{ \"charges.plan.amount\" = \"2\" }}\n"
        ),
        &[
            "amendments[0].effective",
            "2025-02-15",
            "not a date of the term",
        ],
    );
}

#[test]
fn invalid_unknown_currency() {
    // Proves a currency that is not an ISO 4217 code is rejected.
    let run = validate_text(&contract("t", "", PLAN).replace("USD", "XYZ"));
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("currency"), "{}", run.stderr);
    assert!(run.stderr.contains("XYZ"), "{}", run.stderr);
}

#[test]
fn invalid_expression_syntax_names_the_column() {
    // Proves an expression syntax error names the field, the column and
    // the offending token.
    assert_invalid(
        "[[charges]]\nid = \"a\"\nkind = \"expr\"\namount = \"1 + * 2\"\n",
        &["charges[0].amount", "column 5", "*"],
    );
}

#[test]
fn invalid_contract_file_with_bad_syntax_names_the_position() {
    // Proves a file that is not TOML exits 2 naming FILE:LINE:COLUMN.
    let run = validate_text("format = 1\nid = \n");
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("c.toml:2:"), "{}", run.stderr);
}

#[test]
fn validate_reports_every_contract_and_exits_with_the_highest_status() {
    // Proves validate goes on after an invalid contract: one ok line, one
    // error, exit 2.
    let dir = tmp();
    let a = write(dir.path(), "a.toml", &contract("good", "", PLAN));
    let b = write(
        dir.path(),
        "b.toml",
        &contract("bad", "", "[[charges]]\nid = 3\n"),
    );
    let run = outcome_in(&["validate", &a, &b], dir.path());
    assert_eq!(run.code, 2);
    assert_eq!(run.stdout, "good: ok (3 periods, 1 charges, 0 limits)\n");
    assert!(run.stderr.contains("charges[0]"), "{}", run.stderr);
}

// ---------------------------------------------------------------------------
// settle: one contract

#[test]
fn settle_the_spec_example() {
    // Proves the spec example settles with exit 0 in every stable format,
    // and its first period matches the numbers worked by hand.
    let args = |format: &'static str| {
        vec![
            "settle".to_string(),
            example("contract.toml"),
            "--metrics".into(),
            example("metrics.csv"),
            "--as-of".into(),
            "2026-03-01".into(),
            "--format".into(),
            format.into(),
        ]
    };
    for format in ["table", "json", "csv"] {
        let a = args(format);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let run = outcome_in(&a, &repo());
        assert_eq!(run.code, 0, "{format}: {}", run.stderr);
        assert!(!run.stdout.is_empty());
    }
    let a = args("json");
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let doc = json(&outcome_in(&a, &repo()).stdout);
    assert_eq!(doc["contract"], "support-agent-2026");
    assert_eq!(doc["currency"], "USD");
    let first = &doc["statements"][0];
    assert_eq!(first["period"]["start"], "2026-01-15");
    assert_eq!(first["period"]["end"], "2026-02-01");
    let amounts: Vec<(&str, &str)> = first["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (s(&l["charge"]), s(&l["amount"])))
        .collect();
    assert_eq!(
        amounts,
        [
            ("plan", "26.87"),
            ("per_resolution", "69.30"),
            ("quality_bonus", "0.00"),
            ("processing", "11.40"),
            ("uptime_credit", "0.00"),
            ("onboarding_credit", "-107.57"),
        ]
    );
    assert_eq!(first["total"], "0.00");
    // By 2026-03-01 (New York midnight) January and February have ended,
    // and the uptime row dated 2026-03-01 makes March due too.
    let starts: Vec<&str> = doc["statements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|st| s(&st["period"]["start"]))
        .collect();
    assert_eq!(starts, ["2026-01-15", "2026-02-01", "2026-03-01"]);
}

#[test]
fn settle_without_as_of_reads_every_row() {
    // Proves settle without --as-of exits 0 on the example (periods judged
    // against the clock, no row ignored).
    let run = outcome_in(
        &[
            "settle",
            &example("contract.toml"),
            "--metrics",
            &example("metrics.csv"),
            "--format",
            "json",
        ],
        &repo(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc = json(&run.stdout);
    assert!(doc["statements"].as_array().unwrap().len() >= 10);
}

#[test]
fn settle_a_malformed_csv_row_names_file_line_and_column() {
    // Proves a malformed row exits 1 with FILE:LINE:COLUMN (1-based, header
    // line 1): `1e3` in the third column of line 3.
    let dir = tmp();
    let c = write(dir.path(), "c.toml", &contract("t", "", PLAN));
    write(
        dir.path(),
        "bad.csv",
        "series,timestamp,value\nq,2026-01-03,1\nq,2026-01-04,1e3\n",
    );
    let run = outcome_in(
        &["settle", &c, "--metrics", "bad.csv", "--format", "json"],
        dir.path(),
    );
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("bad.csv:3:3"), "{}", run.stderr);
    // Another customer's malformed row fails every contract that reads the
    // file.
    write(
        dir.path(),
        "theirs.csv",
        "customer,series,timestamp,value\nacme,q,2026-01-03,1\nother,q,2026-01-04,abc\n",
    );
    let run = outcome_in(&["settle", &c, "--metrics", "theirs.csv"], dir.path());
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("theirs.csv:3:4"), "{}", run.stderr);
    // A bad timestamp in column 2 of line 2, with the columns reordered.
    write(
        dir.path(),
        "bad2.csv",
        "value,timestamp,series\n1,2026-13-01,q\n",
    );
    let run = outcome_in(&["settle", &c, "--metrics", "bad2.csv"], dir.path());
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("bad2.csv:2:2"), "{}", run.stderr);
}

#[test]
fn settle_with_a_missing_metrics_file_exits_1() {
    // Proves a metric source that does not exist is a data error: exit 1,
    // the file named on stderr.
    let dir = tmp();
    let c = write(dir.path(), "c.toml", &contract("t", "", PLAN));
    let run = outcome_in(&["settle", &c, "--metrics", "nowhere.csv"], dir.path());
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("nowhere.csv"), "{}", run.stderr);
}

#[test]
fn settle_period_must_be_a_period_start() {
    // Proves --period with a date that is not a period start is a usage
    // error (exit 2), and with a period start settles that one period
    // carrying the earlier ones' state.
    let dir = tmp();
    let c = write(
        dir.path(),
        "c.toml",
        &contract(
            "t",
            "",
            "[metrics.q]\naggregate = \"sum\"\n\
             [[charges]]\nid = \"u\"\nkind = \"unit\"\nquantity = \"q\"\nunit_price = \"1\"\n\
             [[limits]]\nid = \"cap\"\nkind = \"cap\"\namount = \"150\"\nscope = \"term\"\n",
        ),
    );
    write(
        dir.path(),
        "m.csv",
        "series,timestamp,value\nq,2026-01-03,100\nq,2026-02-03,100\nq,2026-03-03,100\n",
    );
    let run = outcome_in(
        &["settle", &c, "--metrics", "m.csv", "--period", "2026-02-02"],
        dir.path(),
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("2026-02-02"), "{}", run.stderr);
    let run = outcome_in(
        &["settle", &c, "--metrics", "m.csv", "--period", "Feb"],
        dir.path(),
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    let run = outcome_in(
        &[
            "settle",
            &c,
            "--metrics",
            "m.csv",
            "--period",
            "2026-03-01",
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc = json(&run.stdout);
    let sts = doc["statements"].as_array().unwrap();
    assert_eq!(sts.len(), 1);
    assert_eq!(sts[0]["period"]["start"], "2026-03-01");
    // The term cap of 150 was reached in February: March is cut by 100.
    assert_eq!(sts[0]["lines"][1]["charge"], "cap");
    assert_eq!(sts[0]["lines"][1]["amount"], "-100.00");
}

// ---------------------------------------------------------------------------
// settle: billing runs

/// A folder of contracts: `files` as (file name, contract text).
fn folder(files: &[(&str, String)]) -> tempfile::TempDir {
    let dir = tmp();
    std::fs::create_dir(dir.path().join("contracts")).unwrap();
    for (name, text) in files {
        write(&dir.path().join("contracts"), name, text);
    }
    write(
        dir.path(),
        "m.csv",
        "series,timestamp,value\nq,2026-01-03,1\n",
    );
    dir
}

#[test]
fn settle_a_folder_orders_contracts_by_id_bytes() {
    // Proves a folder settles as `{ "contracts": [...] }` ordered by the
    // bytes of the contract ids, not by file name: Alpha < alpha < beta.
    let dir = folder(&[
        ("a.toml", contract("beta", "", PLAN)),
        ("b.toml", contract("alpha", "", PLAN)),
        ("c.json", contract_json("Alpha")),
        ("notes.txt", "not a contract".into()),
    ]);
    let run = outcome_in(
        &[
            "settle",
            "contracts",
            "--metrics",
            "m.csv",
            "--as-of",
            "2026-02-01",
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc = json(&run.stdout);
    let ids: Vec<&str> = doc["contracts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| s(&c["contract"]))
        .collect();
    assert_eq!(ids, ["Alpha", "alpha", "beta"]);
    // A folder with a single contract is still a run.
    let one = folder(&[("a.toml", contract("solo", "", PLAN))]);
    let run = outcome_in(
        &[
            "settle",
            "contracts",
            "--metrics",
            "m.csv",
            "--as-of",
            "2026-02-01",
            "--format",
            "json",
        ],
        one.path(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(json(&run.stdout)["contracts"][0]["contract"], "solo");
}

fn contract_json(id: &str) -> String {
    format!(
        r#"{{"format": 1, "id": "{id}", "customer": "acme", "currency": "USD",
        "start": "2026-01-01", "end": "2026-04-01", "cadence": "monthly",
        "charges": [{{"id": "plan", "kind": "fixed", "amount": "10"}}]}}"#
    )
}

#[test]
fn settle_two_files_with_one_id_is_a_usage_error_and_prints_nothing() {
    // Proves two files with one id stop the whole run: exit 2, nothing on
    // stdout, both files named on stderr.
    let dir = folder(&[
        ("a.toml", contract("same", "", PLAN)),
        ("b.toml", contract("other", "", PLAN)),
        ("c.toml", contract("same", "", PLAN)),
    ]);
    for format in ["json", "csv", "table"] {
        let run = outcome_in(
            &[
                "settle",
                "contracts",
                "--metrics",
                "m.csv",
                "--format",
                format,
            ],
            dir.path(),
        );
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(run.stdout.is_empty(), "{format}: {}", run.stdout);
        assert!(run.stderr.contains("same"), "{}", run.stderr);
    }
}

#[test]
fn settle_a_failing_contract_takes_its_place_and_does_not_stop_the_others() {
    // Proves a contract that fails settlement appears as
    // `{ "contract": ID, "error": SENTENCE }` in id order, is reported on
    // stderr, has no CSV rows, leaves the others settled, and the run exits
    // with the highest status (1 for settlement, 2 for an invalid contract).
    let failing = contract(
        "m-fails",
        "",
        "[metrics.uptime]\naggregate = \"min\"\n[[charges]]\nid = \"u\"\nkind = \"expr\"\namount = \"uptime\"\n",
    );
    let dir = folder(&[
        ("1.toml", contract("z-ok", "", PLAN)),
        ("2.toml", failing.clone()),
        ("3.toml", contract("a-ok", "", PLAN)),
    ]);
    let run = outcome_in(
        &[
            "settle",
            "contracts",
            "--metrics",
            "m.csv",
            "--as-of",
            "2026-02-01",
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("uptime"), "{}", run.stderr);
    let doc = json(&run.stdout);
    let items = doc["contracts"].as_array().unwrap();
    let ids: Vec<&str> = items.iter().map(|c| s(&c["contract"])).collect();
    assert_eq!(ids, ["a-ok", "m-fails", "z-ok"]);
    assert!(s(&items[1]["error"]).contains("uptime"), "{}", items[1]);
    assert_eq!(items[1].as_object().unwrap().len(), 2, "{}", items[1]);
    assert_eq!(items[0]["total"], "10.00");
    assert_eq!(items[2]["total"], "10.00");

    let run = outcome_in(
        &[
            "settle",
            "contracts",
            "--metrics",
            "m.csv",
            "--as-of",
            "2026-02-01",
            "--format",
            "csv",
        ],
        dir.path(),
    );
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stdout,
        "contract,period_start,period_end,charge,kind,quantity,amount,group\n\
         a-ok,2026-01-01,2026-02-01,plan,fixed,,10.00,\n\
         z-ok,2026-01-01,2026-02-01,plan,fixed,,10.00,\n"
    );

    // An invalid contract too: the run exits 2, and the invalid one is
    // listed under its id.
    let dir = folder(&[
        ("1.toml", contract("z-ok", "", PLAN)),
        ("2.toml", failing),
        (
            "3.toml",
            contract(
                "b-invalid",
                "",
                "[[charges]]\nid = \"x\"\nkind = \"nope\"\n",
            ),
        ),
    ]);
    let run = outcome_in(
        &[
            "settle",
            "contracts",
            "--metrics",
            "m.csv",
            "--as-of",
            "2026-02-01",
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    let doc = json(&run.stdout);
    let ids: Vec<&str> = doc["contracts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| s(&c["contract"]))
        .collect();
    assert_eq!(ids, ["b-invalid", "m-fails", "z-ok"]);
    assert!(run.stderr.contains("charges[0]"), "{}", run.stderr);
}

#[test]
fn settle_a_contract_whose_id_cannot_be_read_is_listed_under_its_path() {
    // Proves a contract file that cannot be read as its format is listed
    // under its file path, and the run still settles the others.
    let dir = folder(&[
        ("good.toml", contract("good", "", PLAN)),
        ("broken.toml", "this is = = not toml".into()),
    ]);
    let run = outcome_in(
        &[
            "settle",
            "contracts",
            "--metrics",
            "m.csv",
            "--as-of",
            "2026-02-01",
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    let doc = json(&run.stdout);
    let items = doc["contracts"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(
        items
            .iter()
            .any(|c| s(&c["contract"]).ends_with("broken.toml")),
        "{doc}"
    );
    assert!(
        items
            .iter()
            .any(|c| c["contract"] == "good" && c["total"] == "10.00"),
        "{doc}"
    );
}

#[test]
fn settle_a_failing_yaml_contract_is_listed_under_its_id() {
    // Proves the rule holds for YAML too: an invalid YAML contract whose id
    // can be read is listed under that id (the path is only for contracts
    // whose id cannot be read).
    let dir = folder(&[
        ("good.toml", contract("good", "", PLAN)),
        (
            "bad.yaml",
            "format: 1\nid: yaml-bad\ncustomer: acme\ncurrency: USD\nstart: 2026-01-01\n\
             end: 2026-04-01\ncadence: monthly\ncharges:\n  - id: x\n    kind: nope\n"
                .into(),
        ),
    ]);
    let run = outcome_in(
        &[
            "settle",
            "contracts",
            "--metrics",
            "m.csv",
            "--as-of",
            "2026-02-01",
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    let doc = json(&run.stdout);
    let ids: Vec<&str> = doc["contracts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| s(&c["contract"]))
        .collect();
    assert_eq!(ids, ["good", "yaml-bad"]);
}

// ---------------------------------------------------------------------------
// settle: output shapes

#[test]
fn csv_rows_are_ordered_with_exact_scales_and_no_negative_zero() {
    // Proves the CSV export: one header, rows by contract id, then period,
    // then line order; quantity only for unit/tiered/package; amounts with
    // exactly the contract's scale (2 for USD, 0 for JPY, 3 when set);
    // never `-0`; fields quoted as CSV requires.
    let usd = contract(
        "b-usd",
        "",
        "[metrics.q]\naggregate = \"sum\"\n\
         [[charges]]\nid = \"u\"\nkind = \"unit\"\nquantity = \"q\"\nunit_price = \"0.5\"\n\
         [[charges]]\nid = \"tiny credit\"\nkind = \"expr\"\namount = \"-0.001\"\n\
         [[charges]]\nid = \"p,q\"\nkind = \"package\"\nquantity = \"q\"\nsize = \"2\"\nprice = \"1\"\n",
    );
    let jpy = contract(
        "a-jpy",
        "",
        "[[charges]]\nid = \"fee\"\nkind = \"expr\"\namount = \"100.5\"\n",
    )
    .replace("USD", "JPY");
    let milli = contract(
        "c-milli",
        "rounding = { scale = 3, mode = \"half_up\" }",
        "[[charges]]\nid = \"fee\"\nkind = \"expr\"\namount = \"1.5\"\n\
         [[charges]]\nid = \"neg\"\nkind = \"expr\"\namount = \"-0.0004\"\n",
    );
    let dir = folder(&[("x.toml", usd), ("y.toml", jpy), ("z.toml", milli)]);
    write(
        dir.path(),
        "m.csv",
        "series,timestamp,value\nq,2026-01-03,3.50\nq,2026-02-03,0\n",
    );
    let run = outcome_in(
        &[
            "settle",
            "contracts",
            "--metrics",
            "m.csv",
            "--as-of",
            "2026-03-01",
            "--format",
            "csv",
        ],
        dir.path(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "contract,period_start,period_end,charge,kind,quantity,amount,group\n\
         a-jpy,2026-01-01,2026-02-01,fee,expr,,100,\n\
         a-jpy,2026-02-01,2026-03-01,fee,expr,,100,\n\
         b-usd,2026-01-01,2026-02-01,u,unit,3.5,1.75,\n\
         b-usd,2026-01-01,2026-02-01,tiny credit,expr,,0.00,\n\
         b-usd,2026-01-01,2026-02-01,\"p,q\",package,3.5,2.00,\n\
         b-usd,2026-02-01,2026-03-01,u,unit,0,0.00,\n\
         b-usd,2026-02-01,2026-03-01,tiny credit,expr,,0.00,\n\
         b-usd,2026-02-01,2026-03-01,\"p,q\",package,0,0.00,\n\
         c-milli,2026-01-01,2026-02-01,fee,expr,,1.500,\n\
         c-milli,2026-01-01,2026-02-01,neg,expr,,0.000,\n\
         c-milli,2026-02-01,2026-03-01,fee,expr,,1.500,\n\
         c-milli,2026-02-01,2026-03-01,neg,expr,,0.000,\n"
    );
    for row in run.stdout.lines().skip(1) {
        let amount = row.rsplit(',').nth(1).unwrap();
        assert!(
            !amount.starts_with('-')
                || !amount
                    .trim_matches(|c| c == '-' || c == '0' || c == '.')
                    .is_empty(),
            "negative zero in {row}"
        );
    }
}

#[test]
fn json_amounts_are_strings_with_the_exact_scale_and_limit_lines_only_when_not_zero() {
    // Proves JSON amounts and totals are decimal strings with exactly the
    // rounding scale, quantity is a normalised string only on unit, tiered
    // and package lines, and limit lines appear only where not zero, named
    // by id or `limits[N]`, with their kind.
    let dir = tmp();
    let c = write(
        dir.path(),
        "c.toml",
        &contract(
            "t",
            "",
            "[metrics.q]\naggregate = \"sum\"\n\
             [[charges]]\nid = \"u\"\nkind = \"unit\"\nquantity = \"q\"\nunit_price = \"1\"\n\
             [[charges]]\nid = \"plan\"\nkind = \"fixed\"\namount = \"5\"\n\
             [[limits]]\nkind = \"cap\"\namount = \"100\"\napplies_to = [\"u\"]\nscope = \"period\"\n\
             [[limits]]\nid = \"commit\"\nkind = \"floor\"\namount = \"50\"\nscope = \"period\"\n\
             [[limits]]\nkind = \"credit\"\namount = \"7\"\nscope = \"term\"\n",
        ),
    );
    write(
        dir.path(),
        "m.csv",
        "series,timestamp,value\nq,2026-01-03,150.500\nq,2026-02-03,20\nq,2026-03-03,80\n",
    );
    let run = outcome_in(
        &[
            "settle",
            &c,
            "--metrics",
            "m.csv",
            "--as-of",
            "2026-04-01",
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc = json(&run.stdout);
    let sts = doc["statements"].as_array().unwrap();
    assert_eq!(sts.len(), 3);
    let lines = |k: usize| -> Vec<(String, String, String)> {
        sts[k]["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    s(&l["charge"]).to_string(),
                    s(&l["kind"]).to_string(),
                    s(&l["amount"]).to_string(),
                )
            })
            .collect()
    };
    let own = |v: &[(&str, &str, &str)]| -> Vec<(String, String, String)> {
        v.iter()
            .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
            .collect()
    };
    // January: u 150.5 capped at 100 (-50.50); base of the floor
    // 150.50 + 5 - 50.50 = 105 ≥ 50; credit draws 7 of 105.
    assert_eq!(
        lines(0),
        own(&[
            ("u", "unit", "150.50"),
            ("plan", "fixed", "5.00"),
            ("limits[0]", "cap", "-50.50"),
            ("limits[2]", "credit", "-7.00"),
        ])
    );
    assert_eq!(sts[0]["lines"][0]["quantity"], "150.5");
    assert!(sts[0]["lines"][1].get("quantity").is_none());
    assert_eq!(sts[0]["total"], "98.00");
    // February: 25 under the floor of 50: +25; the credit is used up.
    assert_eq!(
        lines(1),
        own(&[
            ("u", "unit", "20.00"),
            ("plan", "fixed", "5.00"),
            ("commit", "floor", "25.00"),
        ])
    );
    assert_eq!(sts[1]["total"], "50.00");
    // March: no limit acts.
    assert_eq!(lines(2).len(), 2);
    assert_eq!(doc["total"], "233.00");
    // Every line has a trace of steps with string values.
    for st in sts {
        for l in st["lines"].as_array().unwrap() {
            let trace = l["trace"].as_array().unwrap();
            assert!(!trace.is_empty(), "{l}");
            assert!(
                trace
                    .iter()
                    .all(|t| t["step"].is_string() && t["value"].is_string())
            );
        }
    }
}

#[test]
fn as_of_as_a_date_is_local_midnight_in_the_contracts_zone() {
    // Proves `--as-of 2026-02-01` means 2026-02-01T05:00Z for a New York
    // contract: a correction recorded at 03:00Z is known, and January (which
    // ends at 05:00Z) has ended; for a UTC contract the same date is 00:00Z,
    // so the correction is not yet known.
    let data = "customer,series,timestamp,value,id,recorded_at\n\
                ,q,2026-01-10T12:00:00Z,10,x,2026-01-10T12:00:00Z\n\
                ,q,2026-01-10T12:00:00Z,15,x,2026-02-01T03:00:00Z\n";
    let body = "[metrics.q]\naggregate = \"sum\"\n\
                [[charges]]\nid = \"u\"\nkind = \"unit\"\nquantity = \"q\"\nunit_price = \"1\"\n";
    let dir = folder(&[
        (
            "ny.toml",
            contract("ny", "timezone = \"America/New_York\"", body),
        ),
        ("utc.toml", contract("utc", "", body)),
    ]);
    write(dir.path(), "m.csv", data);
    let run = outcome_in(
        &[
            "settle",
            "contracts",
            "--metrics",
            "m.csv",
            "--as-of",
            "2026-02-01",
            "--format",
            "csv",
        ],
        dir.path(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "contract,period_start,period_end,charge,kind,quantity,amount,group\n\
         ny,2026-01-01,2026-02-01,u,unit,15,15.00,\n\
         utc,2026-01-01,2026-02-01,u,unit,10,10.00,\n"
    );
    // An instant is the same for both: at 02:00Z New York's January has
    // not ended and holds an observation (so it is due); the correction is
    // unknown to both.
    let run = outcome_in(
        &[
            "settle",
            "contracts",
            "--metrics",
            "m.csv",
            "--as-of",
            "2026-02-01T02:00:00Z",
            "--format",
            "csv",
        ],
        dir.path(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "contract,period_start,period_end,charge,kind,quantity,amount,group\n\
         ny,2026-01-01,2026-02-01,u,unit,10,10.00,\n\
         utc,2026-01-01,2026-02-01,u,unit,10,10.00,\n"
    );
}

#[test]
fn settle_of_one_file_prints_one_document() {
    // Proves one contract file prints its document alone (not wrapped in
    // `contracts`), with contract, currency, statements and total.
    let dir = tmp();
    let c = write(dir.path(), "c.toml", &contract("t", "", PLAN));
    write(dir.path(), "m.csv", "series,timestamp,value\n");
    let run = outcome_in(
        &[
            "settle",
            &c,
            "--metrics",
            "m.csv",
            "--as-of",
            "2026-03-01",
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc = json(&run.stdout);
    let keys: Vec<&String> = doc.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["contract", "currency", "statements", "total"]);
    assert_eq!(doc["statements"].as_array().unwrap().len(), 2);
    assert_eq!(doc["total"], "20.00");
}

#[test]
fn settle_two_files_with_one_id_is_caught_when_one_is_invalid_yaml() {
    // Proves the one-id rule reads the id of an invalid YAML contract too:
    // a valid TOML contract and an invalid YAML one, both with id `same`,
    // stop the run with exit 2 and nothing on stdout.
    let dir = folder(&[
        ("a.toml", contract("same", "", PLAN)),
        (
            "b.yaml",
            "format: 1\nid: same\ncustomer: acme\ncurrency: USD\nstart: 2026-01-01\n\
             end: 2026-04-01\ncadence: monthly\ncharges:\n  - id: x\n    kind: nope\n"
                .into(),
        ),
    ]);
    let run = outcome_in(
        &[
            "settle",
            "contracts",
            "--metrics",
            "m.csv",
            "--as-of",
            "2026-02-01",
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
}

#[test]
fn invalid_limits_out_of_nesting_order() {
    // Proves a limit on every charge written before a limit on a subset is
    // rejected (limits go from narrow to broad), naming the limit.
    assert_invalid(
        &format!(
            "{PLAN}[[charges]]\nid = \"b\"\nkind = \"fixed\"\namount = \"1\"\n\
             [[limits]]\nid = \"all\"\nkind = \"cap\"\namount = \"5\"\nscope = \"period\"\n\
             [[limits]]\nid = \"just_plan\"\nkind = \"cap\"\namount = \"1\"\napplies_to = [\"plan\"]\nscope = \"period\"\n"
        ),
        &["limits[0].applies_to", "just_plan"],
    );
}

#[test]
fn invalid_amendment_that_breaks_a_rule() {
    // Proves the contract validates as a whole under every amendment: an
    // amendment that makes tiers decrease is rejected at load, and one that
    // sets structure (a kind) is rejected.
    assert_invalid(
        "[[charges]]\nid = \"a\"\nkind = \"tiered\"\nmode = \"graduated\"\nquantity = \"1\"\n\
         tiers = [ { up_to = \"100\", unit_price = \"1\" }, { up_to = \"150\", unit_price = \"1\" }, { unit_price = \"0.5\" } ]\n\
         [[amendments]]\neffective = \"2026-02-01\"\nset = { \"charges.a.tiers[0].up_to\" = \"200\" }\n",
        &["tiers[1].up_to", "200", "150"],
    );
    assert_invalid(
        &format!(
            "{PLAN}[[amendments]]\neffective = \"2026-02-01\"\nset = {{ \"charges.plan.kind\" = \"unit\" }}\n"
        ),
        &["amendments[0].set", "kind"],
    );
}

#[test]
fn a_contract_that_validates_settles_its_constant_tiers() {
    // Proves rules on constant values are checked at load, as the format
    // page says: tiers with a constant up_to of -5 either fail `validate`
    // (exit 2) or settle (exit 0); today validate says ok and settle exits 1
    // with "up_to must not be negative (-5)".
    let dir = tmp();
    let c = write(
        dir.path(),
        "c.toml",
        &contract(
            "t",
            "",
            "[[charges]]\nid = \"a\"\nkind = \"tiered\"\nmode = \"graduated\"\nquantity = \"1\"\n\
             tiers = [ { up_to = \"-5\", unit_price = \"1\" }, { unit_price = \"0.5\" } ]\n",
        ),
    );
    write(dir.path(), "m.csv", "series,timestamp,value\n");
    let validate = outcome_in(&["validate", &c], dir.path());
    let settle = outcome_in(
        &["settle", &c, "--metrics", "m.csv", "--as-of", "2026-02-01"],
        dir.path(),
    );
    assert!(
        validate.code == 2 || settle.code == 0,
        "validate {} ({}), settle {} ({})",
        validate.code,
        validate.stdout.trim(),
        settle.code,
        settle.stderr.trim()
    );
}

#[test]
fn a_contract_file_that_is_not_utf8_is_an_invalid_contract() {
    // Proves a contract with a byte that is not UTF-8 exits 2 (an invalid
    // contract, not a read error) naming the line and column of that byte,
    // and that the other contracts of a run still settle.
    let dir = tmp();
    std::fs::create_dir(dir.path().join("contracts")).expect("mkdir");
    let mut bad = contract("bad", "", PLAN).into_bytes();
    let at = bad.iter().position(|&b| b == b'a').expect("an a") + 3;
    bad.splice(at..at, [0xFFu8]);
    std::fs::write(dir.path().join("contracts/bad.toml"), bad).expect("write");
    write(
        &dir.path().join("contracts"),
        "good.toml",
        &contract("good", "", PLAN),
    );
    write(dir.path(), "m.csv", "series,timestamp,value\n");
    let run = outcome_in(&["validate", "contracts/bad.toml"], dir.path());
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("not UTF-8"), "{}", run.stderr);
    assert!(
        run.stderr.contains("contracts/bad.toml:1:"),
        "{}",
        run.stderr
    );

    let run = outcome_in(
        &[
            "settle",
            "contracts",
            "--metrics",
            "m.csv",
            "--as-of",
            "2026-02-01",
            "--format",
            "csv",
        ],
        dir.path(),
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "contract,period_start,period_end,charge,kind,quantity,amount,group\n\
         good,2026-01-01,2026-02-01,plan,fixed,,10.00,\n"
    );
}

#[test]
fn a_closed_pipe_is_not_an_error_of_the_run() {
    // Proves `outcome settle ... | head` stops quietly: a reader that goes
    // away early is not reported as a failure of the run.
    let dir = tmp();
    let c = write(dir.path(), "c.toml", &contract("t", "", PLAN));
    write(dir.path(), "m.csv", "series,timestamp,value\n");
    let mut child = Command::new(env!("CARGO_BIN_EXE_outcome"))
        .args(["settle", &c, "--metrics", "m.csv", "--as-of", "2026-04-01"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run outcome");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("panicked"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_billing_run_reads_metrics_from_a_pipe() {
    // Proves `--metrics` may name a stream that cannot be read in chunks
    // (a FIFO): it is read once, and settles as the same data in a file.
    let dir = tmp();
    write(dir.path(), "c.toml", &contract("t", "", UNIT));
    let data = "series,timestamp,value\nresolved,2026-01-05,7\nresolved,2026-02-05,3\n";
    write(dir.path(), "m.csv", data);
    let args = |m: &str| {
        vec![
            "settle".to_owned(),
            "c.toml".into(),
            "--metrics".into(),
            m.into(),
            "--as-of".into(),
            "2026-03-01".into(),
            "--format".into(),
            "csv".into(),
        ]
    };
    let from_file = outcome_in(
        &args("m.csv").iter().map(String::as_str).collect::<Vec<_>>(),
        dir.path(),
    );
    assert_eq!(from_file.code, 0, "{}", from_file.stderr);
    let fifo = dir.path().join("pipe.csv");
    let made = Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("skipped: mkfifo is not available here");
        return;
    }
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::write(fifo, data).expect("write to the pipe"))
    };
    let from_pipe = outcome_in(
        &args("pipe.csv")
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        dir.path(),
    );
    writer.join().expect("writer");
    assert_eq!(from_pipe.code, 0, "{}", from_pipe.stderr);
    assert_eq!(from_pipe.stdout, from_file.stdout);
}
