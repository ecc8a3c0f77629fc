//! Settling a contract over many runs, in parallel, keeping every run's
//! amounts in run order so the result never depends on the thread count.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use rayon::prelude::*;
use rust_decimal::Decimal;

use super::source::ScenarioFrame;
use super::{Progress, ProgressFn};
use crate::error::{Error, Location, Result};
use crate::metric::MetricSource;
use crate::settle::{Amounts, CompiledContract, State};

/// The most values one contract's runs may hold in memory (16 bytes each):
/// runs × periods × (charges + total + limits).
pub(crate) const CELLS_MAX: usize = 32 * 1024 * 1024;

/// Runs settled by one task of the parallel loop: enough to make the
/// task's overhead and its progress report negligible.
const RUNS_PER_TASK: usize = 32;

/// The report's columns for one contract: the charges and limits of every
/// version, by first appearance, and where each period's version puts its
/// own charges and limits among them.
#[derive(Debug, Clone)]
pub(crate) struct Columns {
    pub charges: Vec<String>,
    pub limits: Vec<String>,
    /// Per period: each charge's column, each limit's column, in the
    /// order the period's version writes them.
    pub per_period: Vec<(Vec<usize>, Vec<usize>)>,
}

impl Columns {
    pub(crate) fn of(contract: &CompiledContract, periods: usize) -> Columns {
        let mut charges: Vec<String> = Vec::new();
        let mut limits: Vec<String> = Vec::new();
        let mut per_period = Vec::with_capacity(periods);
        let column =
            |names: &mut Vec<String>, name: &str| match names.iter().position(|n| n == name) {
                Some(i) => i,
                None => {
                    names.push(name.to_string());
                    names.len() - 1
                }
            };
        for n in 0..periods {
            let program = contract.program_for(n);
            let c = program
                .charges
                .iter()
                .map(|ch| column(&mut charges, &ch.id))
                .collect();
            let l = program
                .limits
                .iter()
                .map(|li| column(&mut limits, &li.name))
                .collect();
            per_period.push((c, l));
        }
        if periods == 0 {
            let program = contract.program_for(0);
            charges = program.charges.iter().map(|c| c.id.clone()).collect();
            limits = program.limits.iter().map(|l| l.name.clone()).collect();
        }
        Columns {
            charges,
            limits,
            per_period,
        }
    }
}

/// Every run's amounts for one contract.
#[derive(Debug, Clone)]
pub(crate) struct Runs {
    pub runs: usize,
    pub periods: usize,
    pub columns: Columns,
    /// `runs × periods × (charges + 1)`: each charge's amount (0 where the
    /// period's version lacks it), then the statement total.
    amounts: Vec<Decimal>,
    /// `runs × periods × limits`: whether the limit added a line.
    acted: Vec<bool>,
}

impl Runs {
    fn new(runs: usize, periods: usize, columns: Columns) -> Result<Runs> {
        let width = columns.charges.len() + 1;
        let limits = columns.limits.len();
        let cells = runs
            .checked_mul(periods)
            .and_then(|x| x.checked_mul(width + limits))
            .filter(|&c| c <= CELLS_MAX)
            .ok_or_else(|| {
                Error::usage(format!(
                    "{runs} runs of {periods} periods with {} charges and {limits} limits hold more than {CELLS_MAX} amounts: use fewer runs",
                    width - 1
                ))
            })?;
        debug_assert!(cells <= CELLS_MAX);
        Ok(Runs {
            runs,
            periods,
            amounts: vec![Decimal::ZERO; runs * periods * width],
            acted: vec![false; runs * periods * limits],
            columns,
        })
    }

    /// Charges plus the total.
    pub(crate) fn width(&self) -> usize {
        self.columns.charges.len() + 1
    }

    /// Run `run`'s amount in column `column` (a charge, or the total at
    /// `charges.len()`) of period `period`.
    pub(crate) fn amount(&self, run: usize, period: usize, column: usize) -> Decimal {
        let w = self.width();
        self.amounts[(run * self.periods + period) * w + column]
    }

    /// Whether limit `limit` added a line in period `period` of run `run`.
    pub(crate) fn acted(&self, run: usize, period: usize, limit: usize) -> bool {
        let l = self.columns.limits.len();
        self.acted[(run * self.periods + period) * l + limit]
    }
}

/// Reports progress across threads: settlements done of the total.
pub(crate) struct Meter<'a> {
    total: u64,
    done: AtomicU64,
    callback: Option<&'a ProgressFn>,
}

impl<'a> Meter<'a> {
    pub(crate) fn new(total: u64, callback: Option<&'a ProgressFn>) -> Meter<'a> {
        Meter {
            total,
            done: AtomicU64::new(0),
            callback,
        }
    }

    fn add(&self, settlements: u64) {
        if let Some(callback) = self.callback {
            let done = self.done.fetch_add(settlements, Ordering::Relaxed) + settlements;
            callback(Progress {
                done: done.min(self.total),
                total: self.total,
            });
        }
    }
}

/// What one thread reuses from run to run, so settling does not allocate.
struct Workspace {
    values: Vec<Decimal>,
    settler: Settler,
}

/// The settlement buffers of one thread.
struct Settler {
    amounts: Amounts,
    state: State,
}

/// Settles `periods` periods of one run against `source`, writing the
/// run's row of amounts and limit flags.
fn settle_run(
    contract: &CompiledContract,
    source: &dyn MetricSource,
    initial: &State,
    columns: &Columns,
    settler: &mut Settler,
    amount_row: &mut [Decimal],
    acted_row: &mut [bool],
) -> Result<()> {
    let Settler { amounts, state } = settler;
    // Reset in place: `clone_from` on the vectors keeps their buffers.
    state.next_period = initial.next_period;
    state.year_to_date.clone_from(&initial.year_to_date);
    state.running.clone_from(&initial.running);
    state.marks.clone_from(&initial.marks);
    state.period_to_date.clone_from(&initial.period_to_date);
    state
        .group_period_to_date
        .clone_from(&initial.group_period_to_date);
    let width = columns.charges.len() + 1;
    let limits = columns.limits.len();
    for (n, (charge_columns, limit_columns)) in columns.per_period.iter().enumerate() {
        // The state is reset from the contract's own initial state above.
        contract.settle_own_next_amounts(source, state, amounts, None)?;
        let row = &mut amount_row[n * width..(n + 1) * width];
        for (&column, &amount) in charge_columns.iter().zip(&amounts.charges) {
            row[column] = amount;
        }
        row[width - 1] = amounts.total;
        let flags = &mut acted_row[n * limits..(n + 1) * limits];
        for (&column, line) in limit_columns.iter().zip(&amounts.limits) {
            flags[column] = !line.is_zero();
        }
    }
    Ok(())
}

/// Settles `runs` runs of `frame` (run `r` drawn from `seed` on stream
/// `r`), in parallel on the current rayon pool. The amounts are the same,
/// in the same order, whatever the number of threads; when runs fail, the
/// error is the first failing run's.
pub(crate) fn run_frame(
    contract: &CompiledContract,
    frame: &ScenarioFrame<'_>,
    runs: usize,
    seed: u64,
    meter: &Meter<'_>,
) -> Result<Runs> {
    let periods = frame.periods();
    let mut out = Runs::new(runs, periods, Columns::of(contract, periods))?;
    let width = out.width();
    let limits = out.columns.limits.len();
    let initial = contract.initial_state();
    let columns = &out.columns;
    let first_failed = AtomicUsize::new(usize::MAX);
    let failure: Mutex<Option<(usize, Error)>> = Mutex::new(None);
    let amount_rows = (periods * width).max(1);
    let acted_rows = (periods * limits).max(1);
    // Rows of zero width (no period, or no limit) still need one chunk per
    // task: pad the flags with a spare slice.
    let mut spare_acted = Vec::new();
    let acted: &mut [bool] = if periods * limits == 0 {
        spare_acted.resize(runs, false);
        &mut spare_acted
    } else {
        &mut out.acted
    };
    let mut spare_amounts = Vec::new();
    let amounts: &mut [Decimal] = if periods == 0 {
        spare_amounts.resize(runs, Decimal::ZERO);
        &mut spare_amounts
    } else {
        &mut out.amounts
    };
    amounts
        .par_chunks_mut(amount_rows * RUNS_PER_TASK)
        .zip(acted.par_chunks_mut(acted_rows * RUNS_PER_TASK))
        .enumerate()
        .for_each_init(
            || Workspace {
                values: Vec::new(),
                settler: Settler {
                    amounts: Amounts::default(),
                    state: initial.clone(),
                },
            },
            |ws, (task, (amount_chunk, acted_chunk))| {
                let first_run = task * RUNS_PER_TASK;
                let in_task = amount_chunk.len() / amount_rows;
                for k in 0..in_task {
                    let run = first_run + k;
                    if run > first_failed.load(Ordering::Relaxed) {
                        return;
                    }
                    let result = frame.draw(seed, run as u64, &mut ws.values).and_then(|()| {
                        settle_run(
                            contract,
                            &frame.source(&ws.values),
                            &initial,
                            columns,
                            &mut ws.settler,
                            &mut amount_chunk[k * amount_rows..][..periods * width],
                            &mut acted_chunk[k * acted_rows..][..periods * limits],
                        )
                    });
                    if let Err(e) = result {
                        first_failed.fetch_min(run, Ordering::Relaxed);
                        let mut slot = failure.lock().unwrap_or_else(|p| p.into_inner());
                        if slot.as_ref().is_none_or(|(r, _)| run < *r) {
                            *slot = Some((run, e));
                        }
                        return;
                    }
                }
                meter.add((in_task * periods) as u64);
            },
        );
    if let Some((run, e)) = failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(in_run(e, run, seed, runs));
    }
    Ok(out)
}

/// Settles periods `0..periods` once against recorded history.
pub(crate) fn run_history(
    contract: &CompiledContract,
    source: &dyn MetricSource,
    periods: usize,
    meter: &Meter<'_>,
) -> Result<Runs> {
    let mut out = Runs::new(1, periods, Columns::of(contract, periods))?;
    let initial = contract.initial_state();
    let mut settler = Settler {
        amounts: Amounts::default(),
        state: initial.clone(),
    };
    settle_run(
        contract,
        source,
        &initial,
        &out.columns,
        &mut settler,
        &mut out.amounts,
        &mut out.acted,
    )?;
    meter.add(periods as u64);
    Ok(out)
}

/// A settlement error of a simulation run says which run failed, so the
/// failure can be replayed.
fn in_run(error: Error, run: usize, seed: u64, runs: usize) -> Error {
    if runs > 1 && matches!(error.location(), Location::Period { .. }) {
        let message = format!("{} (in simulation run {run}, seed {seed})", error.message());
        error.with_message(message)
    } else {
        error
    }
}
