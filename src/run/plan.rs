//! What each contract of a run reads, laid out for routing rows: its
//! families of metrics (a series and a filter), the windows they are read
//! over, and where each (contract, family, window) keeps its accumulator.

use rustc_hash::FxHashMap as HashMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use rayon::prelude::*;

use super::RunOptions;
use crate::metric::Aggregate;
use crate::settle::CompiledContract;
use crate::settle::compile::CBaseline;

/// What the accumulators of a family must keep, beyond the count.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Needs {
    pub sum: bool,
    pub min: bool,
    pub max: bool,
    pub first: bool,
    pub last: bool,
    /// The observations one by one (`per_observation` percentages).
    pub observations: bool,
}

/// A list of disjoint windows, sorted, as instants in whole seconds (every
/// boundary is a local midnight, which falls on a whole second).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Windows {
    pub bounds: Vec<(i64, i64)>,
}

impl Windows {
    /// The window holding the instant `secs` (with any fraction of a second:
    /// boundaries are whole seconds, so the second decides).
    pub fn find(&self, secs: i64) -> Option<usize> {
        let i = self.bounds.partition_point(|&(start, _)| start <= secs);
        let i = i.checked_sub(1)?;
        (secs < self.bounds[i].1).then_some(i)
    }

    /// The windows `i..=j` whose union is exactly `[start, end)`.
    pub fn span(&self, start: i64, end: i64) -> Option<(usize, usize)> {
        let i = self.bounds.iter().position(|&(s, _)| s == start)?;
        let mut j = i;
        loop {
            if self.bounds[j].1 == end {
                return Some((i, j));
            }
            if j + 1 >= self.bounds.len() || self.bounds[j + 1].0 != self.bounds[j].1 {
                return None;
            }
            j += 1;
        }
    }
}

/// One series and filter that metrics of a contract read.
#[derive(Debug, Clone)]
pub(super) struct Family {
    pub series: String,
    pub filter: Vec<(String, String)>,
    /// The filter as (dimension position in the header, value); none when
    /// the data lacks one of its dimensions (no row matches, and a query
    /// is a data error).
    pub filter_at: Option<Vec<(usize, String)>>,
    pub needs: Needs,
    /// Dimensions whose distinct values `unique_count` counts, with their
    /// position in the header (none when the data lacks it).
    pub unique: Vec<(String, Option<usize>)>,
    /// The window lists read (index into the contract's `windows`) and the
    /// first cell of each.
    pub sets: Vec<(usize, u32)>,
}

/// One contract of the run, laid out for routing.
#[derive(Debug, Clone)]
pub(super) struct ContractPlan {
    pub zone: Tz,
    pub as_of: Option<DateTime<Utc>>,
    pub families: Vec<Family>,
    /// (series number, family) for every family, sorted by series number.
    pub by_series: Vec<(u32, u32)>,
    /// Window lists: 0 is the periods, then each historical baseline's laid
    /// periods.
    pub windows: Vec<Windows>,
}

/// The whole run laid out: contracts, who reads which customer's rows,
/// and the cells of every accumulator.
#[derive(Debug)]
pub(super) struct Plan {
    pub contracts: Vec<ContractPlan>,
    /// The first cell of each contract; one more entry holds the total.
    pub cell_base: Vec<u32>,
    /// Customer name to its reader group (1-based; 0 is the rows without a
    /// customer, read by every contract).
    pub customers: HashMap<Box<str>, u32>,
    /// Per reader group, the readers by time zone.
    pub groups: Vec<Vec<Readers>>,
    /// Series read by some contract, numbered.
    pub series: HashMap<Box<str>, u32>,
    /// The data's dimension columns, sorted by name.
    pub dimensions: Vec<String>,
}

/// The contracts of one reader group in one time zone: they see the same
/// instants and the same as-of.
#[derive(Debug)]
pub(super) struct Readers {
    pub zone: Tz,
    pub as_of: Option<DateTime<Utc>>,
    pub contracts: Vec<u32>,
}

impl Plan {
    /// Lays out `contracts` for data whose dimension columns are
    /// `dimensions` (sorted by name).
    pub fn new(
        contracts: &[CompiledContract],
        options: &RunOptions,
        dimensions: &[String],
    ) -> Plan {
        let position = |name: &str| dimensions.iter().position(|d| d == name);
        // Each contract is laid out on its own, in parallel; numbering the
        // cells and the series is done after, in contract order.
        let laid: Vec<(ContractPlan, u64)> = contracts
            .par_iter()
            .map(|c| {
                let zone = c.contract().timezone;
                let periods = Windows {
                    bounds: c
                        .periods()
                        .iter()
                        .map(|p| (p.start_at.timestamp(), p.end_at.timestamp()))
                        .collect(),
                };
                let mut windows = vec![periods];
                let mut families: Vec<Family> = Vec::new();
                // Windows each family reads beyond the periods.
                let mut extra: Vec<Vec<usize>> = Vec::new();
                for program in c.programs() {
                    let mut family_of = Vec::with_capacity(program.metrics.len());
                    for m in &program.metrics {
                        let k = match families
                            .iter()
                            .position(|f| f.series == m.series && f.filter == m.filter)
                        {
                            Some(k) => k,
                            None => {
                                families.push(Family {
                                    series: m.series.clone(),
                                    filter: m.filter.clone(),
                                    filter_at: m
                                        .filter
                                        .iter()
                                        .map(|(d, v)| position(d).map(|p| (p, v.clone())))
                                        .collect(),
                                    needs: Needs::default(),
                                    unique: Vec::new(),
                                    sets: Vec::new(),
                                });
                                extra.push(Vec::new());
                                families.len() - 1
                            }
                        };
                        let f = &mut families[k];
                        match m.aggregate {
                            Aggregate::Sum | Aggregate::Mean => f.needs.sum = true,
                            Aggregate::Min => f.needs.min = true,
                            Aggregate::Max => f.needs.max = true,
                            Aggregate::First => f.needs.first = true,
                            Aggregate::Last => f.needs.last = true,
                            Aggregate::Count => {}
                            Aggregate::UniqueCount => {
                                if let Some(of) = &m.of {
                                    if !f.unique.iter().any(|(d, _)| d == of) {
                                        f.unique.push((of.clone(), position(of)));
                                    }
                                }
                            }
                        }
                        family_of.push(k);
                    }
                    for b in &program.baselines {
                        if let CBaseline::Historical { metric, laid } = b {
                            let w = Windows {
                                bounds: laid
                                    .iter()
                                    .map(|(from, to)| {
                                        (
                                            crate::period::local_midnight(*from, zone).timestamp(),
                                            crate::period::local_midnight(*to, zone).timestamp(),
                                        )
                                    })
                                    .collect(),
                            };
                            let at = match windows.iter().position(|x| *x == w) {
                                Some(at) => at,
                                None => {
                                    windows.push(w);
                                    windows.len() - 1
                                }
                            };
                            let k = family_of[*metric];
                            if !extra[k].contains(&at) {
                                extra[k].push(at);
                            }
                        }
                    }
                    for charge in &program.charges {
                        if let Some(metric) = charge.body.observed_metric() {
                            families[family_of[metric]].needs.observations = true;
                        }
                    }
                }
                let mut local: u64 = 0;
                for (f, extra) in families.iter_mut().zip(&extra) {
                    for set in std::iter::once(0).chain(extra.iter().copied()) {
                        f.sets.push((set, u32::try_from(local).unwrap_or(u32::MAX)));
                        local += windows[set].bounds.len() as u64;
                    }
                }
                let plan = ContractPlan {
                    zone,
                    as_of: options.as_of.map(|s| s.instant(zone)),
                    families,
                    by_series: Vec::new(),
                    windows,
                };
                (plan, local)
            })
            .collect();
        let mut series: HashMap<Box<str>, u32> = HashMap::default();
        let mut plans = Vec::with_capacity(contracts.len());
        let mut cell_base = Vec::with_capacity(contracts.len() + 1);
        let mut cells: u64 = 0;
        for (mut plan, local) in laid {
            cell_base.push(u32::try_from(cells).unwrap_or(u32::MAX));
            cells += local;
            for (k, f) in plan.families.iter().enumerate() {
                let next = series.len() as u32;
                let id = *series.entry(f.series.as_str().into()).or_insert(next);
                plan.by_series.push((id, k as u32));
            }
            plan.by_series.sort_unstable();
            plans.push(plan);
        }
        cell_base.push(u32::try_from(cells).unwrap_or(u32::MAX));

        // Reader groups: 0 for rows without customer, then one per customer.
        let mut customers: HashMap<Box<str>, u32> = HashMap::default();
        let mut members: Vec<Vec<u32>> = vec![(0..contracts.len() as u32).collect()];
        for (i, c) in contracts.iter().enumerate() {
            let next = members.len() as u32;
            let g = *customers
                .entry(c.contract().customer.as_str().into())
                .or_insert(next);
            if g as usize == members.len() {
                members.push(Vec::new());
            }
            members[g as usize].push(i as u32);
        }
        let groups = members
            .into_iter()
            .map(|readers| {
                let mut by_zone: Vec<Readers> = Vec::new();
                for ci in readers {
                    let p = &plans[ci as usize];
                    match by_zone.iter_mut().find(|r| r.zone == p.zone) {
                        Some(r) => r.contracts.push(ci),
                        None => by_zone.push(Readers {
                            zone: p.zone,
                            as_of: p.as_of,
                            contracts: vec![ci],
                        }),
                    }
                }
                by_zone
            })
            .collect();
        Plan {
            contracts: plans,
            cell_base,
            customers,
            groups,
            series,
            dimensions: dimensions.to_vec(),
        }
    }

    /// The number of cells, or none when the run needs more than a `u32`
    /// can number.
    pub fn cells(&self) -> Option<usize> {
        let total = *self.cell_base.last().unwrap_or(&0);
        (total != u32::MAX).then_some(total as usize)
    }
}
