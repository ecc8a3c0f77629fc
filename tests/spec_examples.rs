//! Every example of the two spec pages loads, and every contract example
//! settles: the fragments of `contract-format.md` inside a whole contract,
//! the complete contract with its data, and the CSV rows of
//! `cli-and-data.md`.

use std::path::PathBuf;

use outcome_billing::metric::{CsvSource, MemorySource, Observation};
use outcome_billing::period::Stamp;
use outcome_billing::{CompiledContract, Contract, SettleOptions};
use rust_decimal::Decimal;

/// The spec pages beside the repository (`../shared/spec`), the acceptance
/// reference of the format. A clone with nothing beside it has no such
/// folder: the tests that read it then say so and pass, except under CI,
/// which always has it.
fn spec_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/spec");
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{} is missing: CI runs with the spec beside the repository",
        dir.display()
    );
    eprintln!(
        "skipped: {} is not beside this clone (the spec pages are checked where they are)",
        dir.display()
    );
    None
}

fn spec(page: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/spec")
        .join(page);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The fenced blocks of `lang` in a page, in order.
fn blocks(page: &str, lang: &str) -> Vec<String> {
    let text = spec(page);
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match &mut current {
            None if line.trim() == format!("```{lang}") => current = Some(String::new()),
            Some(block) if line.trim() == "```" => {
                out.push(std::mem::take(block));
                current = None;
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {}
        }
    }
    out
}

const HEADER: &str = r#"
format = 1
id = "fragment"
customer = "acme"
currency = "USD"
start = "2026-01-01"
end = "2027-01-01"
cadence = "monthly"
"#;

/// A source with a little of every series the fragments read.
fn data() -> MemorySource {
    let mut s = MemorySource::new();
    for month in 1..=12 {
        for year in [2025, 2026] {
            let date = chrono::NaiveDate::from_ymd_opt(year, month, 5).unwrap();
            for (series, value) in [
                ("resolved_conversations", 120),
                ("conversations", 150),
                ("logins", 1),
                ("tickets", 300),
                ("nav", 100 + i64::from(month)),
                ("energy_kwh", 100_000),
                ("heating_degree_days", 400),
                ("savings", 1000),
            ] {
                let mut o = Observation::new(series, Stamp::Date(date), Decimal::from(value));
                o.dimensions = vec![
                    ("region".into(), "eu".into()),
                    ("user_id".into(), format!("u{month}")),
                    ("workspace".into(), "ws-a".into()),
                ];
                s.push(o);
            }
        }
    }
    s
}

fn settles(name: &str, text: &str) {
    let contract = Contract::from_toml_str(text).unwrap_or_else(|e| panic!("{name}: {e}\n{text}"));
    let compiled = CompiledContract::new(contract).unwrap_or_else(|e| panic!("{name}: {e}"));
    let last = compiled.periods().len() - 1;
    let statements = compiled
        .settle_through(&data(), last, &SettleOptions::default())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(statements.len(), last + 1, "{name}");
}

#[test]
fn every_contract_fragment_loads_and_settles_inside_a_whole_contract() {
    if spec_dir().is_none() {
        return;
    }
    // The format page's fragments, each completed with the few definitions
    // it names but does not show.
    let fragments = blocks("contract-format.md", "toml");
    assert_eq!(fragments.len(), 8, "the page has eight TOML blocks");
    let support = [
        // 0: the top level (a whole header by itself).
        "",
        // 1: metrics.
        "[[charges]]\nid = \"c\"\nkind = \"expr\"\namount = \"resolutions + active_users\"\n",
        // 2: a KPI over two metrics.
        "[metrics.resolutions]\nseries = \"resolved_conversations\"\naggregate = \"sum\"\n[metrics.conversations]\naggregate = \"sum\"\n[[charges]]\nid = \"c\"\nkind = \"expr\"\namount = \"resolution_rate\"\n",
        // 3: baselines.
        "[metrics.tickets]\naggregate = \"sum\"\n[metrics.heating_degree_days]\naggregate = \"sum\"\n[metrics.nav]\naggregate = \"last\"\n[[charges]]\nid = \"c\"\nkind = \"expr\"\namount = \"energy + tickets_before + adjusted_energy + nav_hwm\"\n",
        // 4: pricing per dimension value (revision 1.1 of the page).
        "[params]\nallowance = \"50\"\n[metrics.resolutions]\nseries = \"resolved_conversations\"\naggregate = \"sum\"\n",
        // 5: a limit on a charge.
        "[metrics.savings]\naggregate = \"sum\"\n[[charges]]\nid = \"savings_share\"\nkind = \"unit\"\nquantity = \"savings\"\nunit_price = \"0.5\"\n",
        // 6: an amendment of a charge and a param.
        "[params]\nseat_equivalent = \"45\"\n[metrics.resolutions]\nseries = \"resolved_conversations\"\naggregate = \"sum\"\n[[charges]]\nid = \"per_resolution\"\nkind = \"unit\"\nquantity = \"resolutions\"\nunit_price = \"0.99\"\n[[charges]]\nid = \"seats\"\nkind = \"expr\"\namount = \"seat_equivalent\"\n",
        // 7: the complete contract.
        "",
    ];
    for (i, fragment) in fragments.iter().enumerate() {
        let text = match i {
            0 | 7 => fragment.clone(),
            // Tables must follow the top-level keys; amendments and grouped
            // charges are arrays of tables.
            4 | 6 => format!("{HEADER}{}{fragment}", support[i]),
            _ => format!("{HEADER}{fragment}{}", support[i]),
        };
        if i == 7 {
            // The complete contract settles on its own data below.
            Contract::from_toml_str(&text).unwrap_or_else(|e| panic!("complete contract: {e}"));
            continue;
        }
        settles(&format!("fragment {i}"), &text);
    }
}

#[test]
fn the_complete_contract_settles_on_its_data() {
    if spec_dir().is_none() {
        return;
    }
    // The page's complete contract, as the example file beside the spec,
    // settles every period on the example CSV.
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/spec/examples");
    let contract = Contract::from_path(dir.join("support-agent-2026.toml")).unwrap();
    let in_page = Contract::from_toml_str(&blocks("contract-format.md", "toml")[7]).unwrap();
    assert_eq!(
        contract, in_page,
        "the page and the example file are the same contract"
    );
    let compiled = CompiledContract::new(contract).unwrap();
    let source = CsvSource::open(dir.join("support-agent-2026.csv")).unwrap();
    let statements = compiled
        .settle_through(
            &source,
            compiled.periods().len() - 1,
            &SettleOptions::default(),
        )
        .unwrap();
    assert_eq!(statements.len(), 13);
    // The leading stub Jan 15 - Feb 1 of a monthly term anchored on the 1st:
    // 49 * 17 / 31 = 26.87 (the figure the spec's simulate example shows).
    assert_eq!(statements[0].lines[0].amount.to_string(), "26.87");
}

#[test]
fn the_data_page_csv_example_reads() {
    if spec_dir().is_none() {
        return;
    }
    // The CSV rows of the data page parse, with a dimension column.
    let csv = &blocks("cli-and-data.md", "csv")[0];
    let source = CsvSource::from_reader("example.csv", csv.as_bytes()).unwrap();
    assert_eq!(source.len(), 2);
}
