//! Limits on a contract's shape.
//!
//! A contract file is untrusted input. Its depth of nesting is bounded by
//! the parsers (and an expression's by the expression parser), but a file can also
//! be costly through its breadth: thousands of KPIs that read each other in
//! a chain, a tiered charge with a million tiers, aliases in YAML that
//! expand a small file into a huge tree. Each limit below is far beyond any
//! real contract, and a contract over one is an invalid-contract error that
//! names the limit and the field, never a crash or a run out of memory.

use crate::error::{Error, Result};

use super::{ChargeKind, Contract};

/// The most params a contract may hold.
pub const PARAMS_MAX: usize = 1_000;
/// The most metrics a contract may hold.
pub const METRICS_MAX: usize = 1_000;
/// The most KPIs a contract may hold.
pub const KPIS_MAX: usize = 1_000;
/// The most baselines a contract may hold.
pub const BASELINES_MAX: usize = 1_000;
/// The most charges a contract may hold.
pub const CHARGES_MAX: usize = 1_000;
/// The most tiers of a tiered charge, or bands of a bands or corridor charge.
pub const TIERS_MAX: usize = 1_000;
/// The most limits (caps, floors, credits) a contract may hold.
pub const LIMITS_MAX: usize = 100;
/// The most amendments a contract may hold.
pub const AMENDMENTS_MAX: usize = 100;
/// The most values one amendment may set.
pub const AMENDMENT_VALUES_MAX: usize = 1_000;
/// The longest chain of KPIs and baselines that read each other
/// (`a = "b + 1"`, `b = "c * 2"`, … counts one per name).
pub const CHAIN_MAX: usize = 64;
/// The most values (scalars, lists and tables) a YAML contract may expand
/// to once its aliases are copied out.
pub const YAML_VALUES_MAX: u64 = 100_000;

/// Checks the counts of `contract`'s parts against the limits above.
pub(crate) fn check(contract: &Contract) -> Result<()> {
    let counts = [
        ("params", contract.params.len(), PARAMS_MAX, "params"),
        ("metrics", contract.metrics.len(), METRICS_MAX, "metrics"),
        ("kpis", contract.kpis.len(), KPIS_MAX, "KPIs"),
        (
            "baselines",
            contract.baselines.len(),
            BASELINES_MAX,
            "baselines",
        ),
        ("charges", contract.charges.len(), CHARGES_MAX, "charges"),
        ("limits", contract.limits.len(), LIMITS_MAX, "limits"),
        (
            "amendments",
            contract.amendments.len(),
            AMENDMENTS_MAX,
            "amendments",
        ),
    ];
    for (path, count, max, what) in counts {
        over(path.to_string(), count, max, what)?;
    }
    for (i, charge) in contract.charges.iter().enumerate() {
        let (field, count) = match &charge.kind {
            ChargeKind::Tiered(t) => ("tiers", t.tiers.len()),
            ChargeKind::Bands(b) => ("bands", b.bands.len()),
            ChargeKind::Corridor(c) => ("bands", c.bands.len()),
            _ => continue,
        };
        over(format!("charges[{i}].{field}"), count, TIERS_MAX, field)?;
    }
    for (i, amendment) in contract.amendments.iter().enumerate() {
        over(
            format!("amendments[{i}].set"),
            amendment.set.len(),
            AMENDMENT_VALUES_MAX,
            "values set",
        )?;
    }
    Ok(())
}

fn over(path: String, count: usize, max: usize, what: &str) -> Result<()> {
    if count > max {
        return Err(Error::contract(
            path,
            format!("{count} {what} is more than the {max} a contract may hold"),
        ));
    }
    Ok(())
}

/// Checks that YAML `text` expands to at most [`YAML_VALUES_MAX`] values
/// once aliases are copied out, before a loader copies them. Text that does
/// not parse passes here: the loader reports its syntax error.
#[cfg(feature = "yaml")]
pub(crate) fn yaml_expansion(text: &str, file: &str) -> Result<()> {
    use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
    use yaml_rust2::scanner::Marker;

    /// Counts values as the parser reports them: an alias counts as the
    /// whole value it names.
    struct Count {
        /// Values so far inside each open list or table.
        open: Vec<(usize, u64)>,
        /// Values inside each anchored value, by anchor id.
        anchored: Vec<u64>,
        total: u64,
        /// Where the count first went over, to name in the error.
        over_at: Option<Marker>,
    }

    impl Count {
        fn add(&mut self, values: u64, anchor: usize, mark: Marker) {
            if anchor > 0 {
                if self.anchored.len() <= anchor {
                    self.anchored.resize(anchor + 1, 0);
                }
                self.anchored[anchor] = values;
            }
            match self.open.last_mut() {
                Some((_, inside)) => *inside = inside.saturating_add(values),
                None => self.total = self.total.saturating_add(values),
            }
            let seen = self
                .open
                .iter()
                .fold(self.total, |sum, (_, inside)| sum.saturating_add(*inside));
            if seen > YAML_VALUES_MAX && self.over_at.is_none() {
                self.over_at = Some(mark);
            }
        }
    }

    impl MarkedEventReceiver for Count {
        fn on_event(&mut self, event: Event, mark: Marker) {
            match event {
                Event::Scalar(_, _, anchor, _) => self.add(1, anchor, mark),
                Event::Alias(anchor) => {
                    let values = self.anchored.get(anchor).copied().unwrap_or(1);
                    self.add(values, 0, mark);
                }
                Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                    self.open.push((anchor, 0));
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    if let Some((anchor, inside)) = self.open.pop() {
                        self.add(inside.saturating_add(1), anchor, mark);
                    }
                }
                _ => {}
            }
        }
    }

    let mut count = Count {
        open: Vec::new(),
        anchored: Vec::new(),
        total: 0,
        over_at: None,
    };
    // A syntax error is the loader's to report, with its position.
    let _ = Parser::new_from_str(text).load(&mut count, true);
    match count.over_at {
        Some(mark) => Err(Error::syntax(
            file,
            mark.line() as u64,
            mark.col() as u64 + 1,
            format!(
                "the YAML expands to more than {YAML_VALUES_MAX} values once its aliases are copied out"
            ),
        )),
        None => Ok(()),
    }
}

#[cfg(all(test, feature = "yaml"))]
mod tests {
    use super::*;

    #[test]
    fn a_few_aliases_pass_and_a_billion_laughs_does_not() {
        assert!(yaml_expansion("a: &x [1, 2]\nb: *x\nc: *x\n", "<yaml>").is_ok());
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..9 {
            let prev = level - 1;
            text.push_str(&format!(
                "a{level}: &a{level} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        let error = yaml_expansion(&text, "<yaml>").unwrap_err();
        assert!(
            error.message().contains("more than 100000 values"),
            "{error}"
        );
        assert!(error.to_string().starts_with("<yaml>:"), "{error}");
    }
}
