//! `minimum`: the example kind of DESIGN.md ("Adding a charge kind"), built
//! in test builds only. The contract format (`contract-format.md`) has no
//! such kind, and a kind it does not define would extend the format, so this
//! one proves the recipe without shipping it: one module and one line of
//! the `kinds!` table, under `#[cfg(test)]`.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::kind::{CompileContext, Kind, Price, PriceContext, Rules};
use crate::error::{Error, R, Result};
use crate::expr::{Expr, Field};

/// `minimum`: an amount, raised to a floor: `max(amount, floor)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinimumCharge {
    /// The amount.
    pub amount: Expr,
    /// The least the line is.
    pub floor: Expr,
}

/// A compiled `minimum` charge.
#[derive(Debug, Clone)]
pub(crate) struct MinimumBody {
    amount: Field,
    floor: Field,
}

impl Kind for MinimumCharge {
    const AMENDABLE: &'static [&'static str] = &["amount", "floor"];
    type Body = MinimumBody;

    /// A constant floor is not negative.
    fn check(&self, rules: &Rules<'_>) -> Result<()> {
        match rules.constant("floor", &self.floor)? {
            Some(f) if f < Decimal::ZERO => Err(Error::contract(
                rules.path("floor"),
                format!("a floor must not be negative ({f})"),
            )),
            _ => Ok(()),
        }
    }

    fn compile<C: CompileContext>(&self, c: &mut C) -> Result<MinimumBody> {
        Ok(MinimumBody {
            amount: c.field("amount", &self.amount)?,
            floor: c.field("floor", &self.floor)?,
        })
    }
}

impl Price for MinimumBody {
    fn amount<P: PriceContext>(&self, cx: &mut P) -> R<Decimal> {
        let a = cx.value("amount", &self.amount)?;
        let f = cx.value("floor", &self.floor)?;
        cx.trace(|| format!("amount: {}", self.amount.text), a);
        cx.trace(|| format!("floor: {}", self.floor.text), f);
        let v = a.max(f);
        cx.trace(|| "max(amount, floor)".into(), v);
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use crate::metric::{MemorySource, Observation};
    use crate::period::Stamp;
    use crate::{CompiledContract, Contract, SettleOptions};

    const CONTRACT: &str = r#"
format = 1
id = "m"
customer = "acme"
currency = "USD"
start = "2026-01-01"
end = "2026-03-01"
cadence = "monthly"

[params]
least = "100"

[metrics.units]
aggregate = "sum"

[[charges]]
id = "usage"
kind = "minimum"
amount = "units * 0.5"
floor = "least"

[[amendments]]
effective = "2026-02-01"
set = { "charges.usage.floor" = "20" }
"#;

    #[test]
    fn a_kind_added_by_one_module_and_one_line_loads_checks_amends_and_settles() {
        // Proves the recipe of DESIGN.md: the kind is read by its name,
        // its rule runs at load, it can be amended, and it settles with a
        // trace whose inputs come from the fields it compiled.
        let contract = Contract::from_toml_str(CONTRACT).expect("valid");
        let compiled = CompiledContract::new(contract).expect("compiles");
        let mut source = MemorySource::new();
        for (day, value) in [("2026-01-10", 60), ("2026-02-10", 60)] {
            source.push(Observation::new(
                "units",
                Stamp::parse(day).expect("a date"),
                value.into(),
            ));
        }
        let options = SettleOptions {
            trace: true,
            ..SettleOptions::default()
        };
        let statements = compiled
            .settle_through(&source, 1, &options)
            .expect("settles");
        let january = &statements[0].lines[0];
        assert_eq!(january.kind, "minimum");
        assert_eq!(january.amount.to_string(), "100.00");
        let steps: Vec<(&str, &str)> = january
            .trace
            .iter()
            .map(|s| (s.step.as_str(), s.value.as_str()))
            .collect();
        assert_eq!(
            steps,
            [
                ("param least", "100"),
                ("metric units: sum of units (1 observation)", "60"),
                ("amount: units * 0.5", "30"),
                ("floor: least", "100"),
                ("max(amount, floor)", "100"),
                ("rounded half_even to 2 places", "100.00"),
            ]
        );
        // From February the amended floor, 20, is below the amount.
        assert_eq!(statements[1].lines[0].amount.to_string(), "30.00");
    }

    #[test]
    fn a_minimum_kind_rule_is_checked_at_load() {
        let text = CONTRACT.replace("least = \"100\"", "least = \"-1\"");
        let e = Contract::from_toml_str(&text).expect_err("rejected");
        assert!(
            e.to_string()
                .starts_with("charges[0].floor: a floor must not be negative (-1)"),
            "{e}"
        );
    }

    #[test]
    fn a_test_only_kind_is_not_listed_as_a_kind_of_the_format() {
        let names = crate::charge::ChargeKind::names();
        assert!(!names.contains(&"minimum"), "{names:?}");
        assert_eq!(names.len(), 9);
    }
}
