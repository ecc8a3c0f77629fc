//! A carried `State` is untrusted input: it may come from a file, a
//! database or another contract. These tests feed random states to every
//! settlement entry point and check that each one gives statements or an
//! error, never a panic, and that a state of another contract, of another
//! version of the contract or of the wrong shape is refused as a
//! `StateMismatch`.

use outcome_billing::metric::{MemorySource, Observation};
use outcome_billing::period::Stamp;
use outcome_billing::settle::Amounts;
use outcome_billing::{CompiledContract, Contract, ErrorKind, SettleOptions, State};
use proptest::prelude::*;
use rust_decimal::Decimal;

/// A contract with every kind of carried value: a year-to-date tiered
/// charge, a yearly cap, a term credit, and a high-water mark.
const CONTRACT: &str = r#"
format = 1
id = "carried"
customer = "acme"
currency = "USD"
start = "2026-01-01"
end = "2027-07-01"
cadence = "monthly"

[metrics.calls]
aggregate = "sum"

[metrics.nav]
aggregate = "last"
missing = "zero"

[baselines.mark]
kind = "high_water_mark"
metric = "nav"
initial = "100"

[[charges]]
id = "usage"
kind = "tiered"
quantity = "calls"
mode = "graduated"
accumulate = "contract_year"
tiers = [{ up_to = "1000", unit_price = "0.10" }, { unit_price = "0.05" }]

[[charges]]
id = "fee"
kind = "gain_share"
actual = "nav"
baseline = "mark"
direction = "increase"
share = "0.2"

[[limits]]
id = "yearly_cap"
kind = "cap"
amount = "500"
scope = "contract_year"

[[limits]]
id = "welcome"
kind = "credit"
amount = "50"
scope = "term"
"#;

fn contract() -> CompiledContract {
    CompiledContract::new(Contract::from_toml_str(CONTRACT).expect("the contract is valid"))
        .expect("the contract compiles")
}

fn source() -> MemorySource {
    let mut source = MemorySource::new();
    for (month, calls, nav) in [(1, 700, 104), (2, 900, 99), (3, 400, 120)] {
        let at = Stamp::parse(&format!("2026-{month:02}-10")).expect("a date");
        source.push(Observation::new("calls", at, calls.into()));
        source.push(Observation::new("nav", at, nav.into()));
    }
    source
}

/// A decimal from anywhere in its range, small and huge.
fn decimal() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        (-1_000_000i64..1_000_000).prop_map(Decimal::from),
        any::<i64>().prop_map(|n| Decimal::new(n, 2)),
        Just(Decimal::MAX),
        Just(Decimal::MIN),
    ]
}

/// A state of any shape: some of the contract's, some not.
fn any_state(good: State) -> impl Strategy<Value = State> {
    let contract = prop_oneof![Just(good.contract.clone()), ".{0,12}"];
    let version = prop_oneof![Just(good.version.clone()), "[0-9a-f]{0,64}"];
    (
        contract,
        version,
        0usize..40,
        prop::collection::vec(decimal(), 0..4),
        prop::collection::vec(decimal(), 0..4),
        prop::collection::vec(prop::option::of(decimal()), 0..3),
    )
        .prop_map(
            |(contract, version, next_period, year_to_date, running, marks)| State {
                contract,
                version,
                next_period,
                year_to_date,
                running,
                marks,
                period_to_date: Vec::new(),
                group_period_to_date: Vec::new(),
            },
        )
}

/// A state of the contract's identity and shape, with random values.
fn fitting_state(good: State) -> impl Strategy<Value = State> {
    (
        0usize..25,
        prop::collection::vec(decimal(), 2),
        prop::collection::vec(decimal(), 2),
        prop::collection::vec(prop::option::of(decimal()), 1),
    )
        .prop_map(move |(next_period, year_to_date, running, marks)| State {
            next_period,
            year_to_date,
            running,
            marks,
            ..good.clone()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn any_state_gives_statements_or_an_error(state in any_state(contract().initial_state())) {
        let c = contract();
        let src = source();
        let fits = state.contract == c.contract().id
            && state.version == c.version()
            && state.year_to_date.len() == 2
            && state.running.len() == 2
            && state.marks.len() == 1;
        let settled = c.settle_next(&src, &state, &SettleOptions::default());
        if !fits {
            let error = settled.expect_err("a state that does not fit is refused");
            prop_assert_eq!(error.kind(), ErrorKind::StateMismatch, "{}", error);
        }
        let mut carried = state.clone();
        let mut out = Amounts::default();
        let quiet = c.settle_next_amounts(&src, &mut carried, &mut out, None);
        if !fits {
            let error = quiet.expect_err("the quiet path refuses it too");
            prop_assert_eq!(error.kind(), ErrorKind::StateMismatch, "{}", error);
        }
    }

    #[test]
    fn a_fitting_state_with_any_values_never_panics(state in fitting_state(contract().initial_state())) {
        let c = contract();
        let src = source();
        // Ok or an error (an overflow, a period past the term); a panic fails the test.
        let traced = c.settle_next(&src, &state, &SettleOptions::default());
        let mut carried = state.clone();
        let mut out = Amounts::default();
        let quiet = c.settle_next_amounts(&src, &mut carried, &mut out, None);
        prop_assert_eq!(traced.is_ok(), quiet.is_ok());
        if let (Ok((statement, next)), Ok(())) = (&traced, &quiet) {
            prop_assert_eq!(statement.total, out.total);
            prop_assert_eq!(next, &carried);
        }
    }
}

#[test]
fn a_state_names_its_contract_and_version_and_round_trips() {
    let c = contract();
    let state = c.initial_state();
    assert_eq!(state.contract, "carried");
    assert_eq!(state.version, c.version());
    let (_, next) = c
        .settle_next(&source(), &state, &SettleOptions::default())
        .expect("the first period settles");
    let text = serde_json::to_string(&next).expect("a state serializes");
    let back: State = serde_json::from_str(&text).expect("and reads back");
    assert_eq!(back, next);
    let (statement, _) = c
        .settle_next(&source(), &back, &SettleOptions::default())
        .expect("a read-back state settles on");
    assert_eq!(statement.period.start.to_string(), "2026-02-01");
}

#[test]
fn a_state_of_an_edited_contract_is_refused() {
    let c = contract();
    let edited = CompiledContract::new(
        Contract::from_toml_str(&CONTRACT.replace("amount = \"500\"", "amount = \"600\""))
            .expect("still valid"),
    )
    .expect("compiles");
    assert_ne!(c.version(), edited.version());
    let error = edited
        .settle_next(&source(), &c.initial_state(), &SettleOptions::default())
        .expect_err("another version's state");
    assert_eq!(error.kind(), ErrorKind::StateMismatch);
    assert!(error.message().contains("another version"), "{error}");
    // The lean form keeps the version of the contract as written.
    assert_eq!(c.clone().into_lean().version(), c.version());
}

#[test]
fn a_state_of_the_wrong_shape_says_which_vector() {
    let c = contract();
    let mut state = c.initial_state();
    state.running.pop();
    let error = c
        .settle_next(&source(), &state, &SettleOptions::default())
        .expect_err("one limit's running total is missing");
    assert_eq!(error.kind(), ErrorKind::StateMismatch);
    assert!(
        error.message().contains("running holds 1 values"),
        "{error}"
    );
}
