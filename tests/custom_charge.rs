//! A charge kind defined in Rust, without forking: it compiles, settles and
//! traces like the built-in kinds.

use outcome_billing::charge::{ChargeContext, ChargeKind, ChargeRule, CustomCharge};
use outcome_billing::contract::Charge;
use outcome_billing::expr::Expr;
use outcome_billing::metric::{MemorySource, Observation};
use outcome_billing::period::Stamp;
use outcome_billing::{CompiledContract, Contract, Result, SettleOptions};
use rust_decimal::Decimal;

/// A success fee: `rate` of each closed deal's value, but at least `minimum`.
#[derive(Debug)]
struct SuccessFee {
    value: Expr,
    rate: Expr,
    minimum: Expr,
}

impl ChargeRule for SuccessFee {
    fn kind(&self) -> &str {
        "success_fee"
    }

    fn fields(&self) -> Vec<(&str, &Expr)> {
        vec![
            ("value", &self.value),
            ("rate", &self.rate),
            ("minimum", &self.minimum),
        ]
    }

    fn amount(&self, ctx: &mut dyn ChargeContext) -> Result<Decimal> {
        let value = ctx.field(0)?;
        let rate = ctx.field(1)?;
        let minimum = ctx.field(2)?;
        ctx.set_quantity(value);
        let fee = value * rate;
        ctx.step(format!("value * rate {rate}"), fee);
        let amount = fee.max(minimum);
        ctx.step(format!("at least the minimum {minimum}"), amount);
        Ok(amount)
    }
}

fn contract() -> Contract {
    let mut contract = Contract::from_toml_str(
        r#"
        format = 1
        id = "custom"
        customer = "acme"
        currency = "EUR"
        start = "2026-01-01"
        end = "2026-03-01"
        cadence = "monthly"
        [params]
        floor_fee = "250"
        [metrics.deals]
        series = "closed_deal_value"
        aggregate = "sum"
        "#,
    )
    .unwrap();
    contract.charges.push(Charge {
        id: "success".into(),
        description: Some("success fee on closed deals".into()),
        group_by: None,
        kind: ChargeKind::Custom(CustomCharge::new(SuccessFee {
            value: Expr::parse("deals").unwrap(),
            rate: Expr::parse("0.05").unwrap(),
            minimum: Expr::parse("floor_fee").unwrap(),
        })),
    });
    contract
}

#[test]
fn a_rust_defined_kind_settles_and_traces_like_a_built_in_one() {
    // The custom line has its kind, quantity, amount (rounded once) and a
    // trace listing its inputs (the metric, the param) and its own steps.
    let compiled = CompiledContract::new(contract()).unwrap();
    let mut source = MemorySource::new();
    source.push(Observation::new(
        "closed_deal_value",
        Stamp::parse("2026-01-10").unwrap(),
        Decimal::new(1_234_567, 2),
    ));
    let statements = compiled
        .settle_through(&source, 1, &SettleOptions::default())
        .unwrap();
    let jan = &statements[0].lines[0];
    assert_eq!(jan.kind, "success_fee");
    assert_eq!(jan.quantity, Some(Decimal::new(1_234_567, 2)));
    // 12,345.67 * 0.05 = 617.2835 -> 617.28 (half even, EUR has 2 places).
    assert_eq!(jan.amount.to_string(), "617.28");
    let steps: Vec<&str> = jan.trace.iter().map(|s| s.step.as_str()).collect();
    assert!(
        steps
            .iter()
            .any(|s| s.starts_with("metric deals: sum of closed_deal_value (1 observation")),
        "{steps:?}"
    );
    assert!(steps.contains(&"param floor_fee"), "{steps:?}");
    assert!(steps.contains(&"value * rate 0.05"), "{steps:?}");
    // February has no deals: the minimum applies.
    assert_eq!(statements[1].lines[0].amount.to_string(), "250.00");
}

#[test]
fn a_rust_defined_kind_is_checked_like_a_built_in_one() {
    // An undefined name in a custom rule's field is rejected with its path.
    let mut c = contract();
    if let ChargeKind::Custom(_) = &c.charges[0].kind {
        c.charges[0].kind = ChargeKind::Custom(CustomCharge::new(SuccessFee {
            value: Expr::parse("deals").unwrap(),
            rate: Expr::parse("commission").unwrap(),
            minimum: Expr::parse("0").unwrap(),
        }));
    }
    let e = CompiledContract::new(c).unwrap_err();
    assert!(
        e.to_string()
            .contains("charges[0].rate: undefined name commission"),
        "{e}"
    );
}
