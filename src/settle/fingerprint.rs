//! A contract's version: SHA-256 of everything it says.
//!
//! Each field is written as the format's JSON writes it, in a fixed order,
//! so the fingerprint depends on what the contract says and not on how it
//! was read (TOML, JSON, YAML or built in code) or on the machine. A charge
//! of a kind defined in Rust, which the format cannot write, is written as
//! its kind's name and its fields' expressions.

use std::io::Write;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::contract::{ChargeKind, Contract};

/// The fingerprint of `contract`, as 64 hex digits.
pub(crate) fn of(contract: &Contract) -> String {
    let mut hash = Sha256::new();
    hash.update(b"outcome-billing contract\n");
    let Contract {
        format,
        id,
        customer,
        description,
        currency,
        start,
        end,
        cadence,
        anchor,
        timezone,
        rounding,
        params,
        metrics,
        kpis,
        baselines,
        charges,
        limits,
        amendments,
        params_by,
    } = contract;
    field(&mut hash, "format", format);
    field(&mut hash, "id", id);
    field(&mut hash, "customer", customer);
    field(&mut hash, "description", description);
    field(&mut hash, "currency", currency);
    field(&mut hash, "start", start);
    field(&mut hash, "end", end);
    field(&mut hash, "cadence", cadence);
    field(&mut hash, "anchor", anchor);
    field(&mut hash, "timezone", timezone);
    field(&mut hash, "rounding", rounding);
    field(&mut hash, "params", params);
    field(&mut hash, "metrics", metrics);
    field(&mut hash, "kpis", kpis);
    field(&mut hash, "baselines", baselines);
    for charge in charges {
        match &charge.kind {
            ChargeKind::Custom(custom) => {
                let rule = &custom.0;
                let fields: Vec<(&str, &str)> = rule
                    .fields()
                    .into_iter()
                    .map(|(name, expr)| (name, expr.text()))
                    .collect();
                field(
                    &mut hash,
                    "custom charge",
                    &(&charge.id, &charge.description, rule.kind(), fields),
                );
            }
            _ => field(&mut hash, "charge", charge),
        }
    }
    field(&mut hash, "limits", limits);
    field(&mut hash, "amendments", amendments);
    // Written only when present, so a contract without it keeps the
    // fingerprint it had before revision 1.1.
    if !params_by.is_empty() {
        field(&mut hash, "params_by", params_by);
    }
    let digest = hash.finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `name`, the value as JSON, and a line end.
fn field(hash: &mut Sha256, name: &str, value: &impl Serialize) {
    hash.update(name.as_bytes());
    hash.update(b"=");
    // Writing into a hash cannot fail, and every value here serializes (a
    // custom charge, the one that cannot, is written by its parts); a
    // failure would only leave the value out of the fingerprint.
    let _ = serde_json::to_writer(&mut *hash, value);
    let _ = hash.write_all(b"\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOML: &str = r#"
        format = 1
        id = "c"
        customer = "a"
        currency = "USD"
        start = "2026-01-01"
        end = "2026-03-01"
        cadence = "monthly"
        [params]
        price = "0.50"
        [[charges]]
        id = "f"
        kind = "fixed"
        amount = "price"
    "#;

    #[test]
    fn the_same_contract_read_two_ways_has_one_version() {
        let a = Contract::from_toml_str(TOML).unwrap();
        let b = Contract::from_json_str(&a.to_json_string().unwrap()).unwrap();
        assert_eq!(of(&a), of(&b));
        assert_eq!(of(&a).len(), 64);
    }

    #[test]
    fn any_change_makes_another_version() {
        let a = Contract::from_toml_str(TOML).unwrap();
        let b = Contract::from_toml_str(&TOML.replace("0.50", "0.5")).unwrap();
        let c = Contract::from_toml_str(&TOML.replace("id = \"f\"", "id = \"g\"")).unwrap();
        assert_ne!(of(&a), of(&b), "a price's scale is part of what it says");
        assert_ne!(of(&a), of(&c));
    }
}
