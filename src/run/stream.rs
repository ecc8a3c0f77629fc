//! The streaming path of a billing run.
//!
//! The file is cut into chunks of a fixed size (so the result never depends
//! on the number of threads), each parsed by whichever thread is free. A
//! chunk guesses that its first record starts after the first line feed
//! past its nominal start; the chunk before it ends where its last record
//! really ends, and a guess that does not match (a quoted field holding a
//! line feed across the cut) is parsed again from the right place. Each
//! row is checked and routed at once: a row without `id` to the
//! accumulators of the contracts, metrics and windows that read it, a row
//! with `id` to the versions kept for that id. Chunk results are merged in
//! file order, so line numbers, the first error and every sum come out the
//! same on any number of threads.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use csv::{ByteRecord, StringRecord};
use rayon::prelude::*;
use rustc_hash::FxHashMap as HashMap;

use super::acc::{Acc, Obs};
use super::plan::{ContractPlan, Family, Plan};
use super::versions::{self, Key, Resolved, Version};
use super::{BillingRun, RunOptions, item, settle_against};
use crate::error::{Error, Result};
use crate::metric::csv_source::{
    Columns, Header, csv_reader, io_error, parse_row, parse_text_row, read, read_header,
};
use crate::metric::{Aggregate, MetricSource, Observation, Query, Reduced};
use crate::period::Stamp;
use crate::report::RunItem;

/// Bytes per chunk: large enough that a chunk's setup is noise, small
/// enough that two threads stay busy and in-flight results stay small.
const CHUNK_BYTES: u64 = 4 << 20;

/// Ids resolved by one task, and by one batch of tasks.
const RESOLVE_GROUP: usize = 4096;
const RESOLVE_BATCH: usize = 64 * RESOLVE_GROUP;

/// Contracts settled and handed on together.
const SETTLE_BATCH: usize = 256;

pub(super) fn settle_csv<T: Send>(
    run: &BillingRun,
    path: &Path,
    options: &RunOptions,
    map: &(dyn Fn(RunItem) -> T + Sync),
    emit: &mut dyn FnMut(T) -> io::Result<()>,
) -> io::Result<()> {
    let name = path.display().to_string();
    let grouped = run.contracts().iter().any(|c| c.is_grouped());
    if grouped || std::fs::metadata(path).is_ok_and(|m| !m.is_file()) {
        // A pipe or another stream cannot be read in chunks from several
        // places: it goes through the in-memory source, once. So does a run
        // with a grouped charge, whose groups come from the rows themselves
        // (the streaming accumulators sum a window without them).
        let items = match crate::metric::CsvSource::open(path) {
            Ok(source) => run.settle_source(&source, options),
            Err(error) => run
                .contracts()
                .iter()
                .map(|c| item(c, Err(error.clone())))
                .collect(),
        };
        for it in items {
            emit(map(it))?;
        }
        return Ok(());
    }
    let read = Data::read(path, &name, run, options);
    for batch in run
        .contracts()
        .chunks(SETTLE_BATCH)
        .enumerate()
        .map(|(b, contracts)| {
            let first = b * SETTLE_BATCH;
            contracts
                .par_iter()
                .enumerate()
                .map(|(k, c)| {
                    let result = match &read {
                        Err(e) => Err(e.clone()),
                        Ok(data) => {
                            let source = data.source(first + k);
                            settle_against(c, &source, options)
                        }
                    };
                    map(item(c, result))
                })
                .collect::<Vec<T>>()
        })
    {
        for out in batch {
            emit(out)?;
        }
    }
    Ok(())
}

/// Everything the run keeps of the file.
struct Data {
    name: String,
    plan: Plan,
    cells: Vec<Acc>,
    /// Per contract, the first conflicting tie among the rows it reads.
    conflicts: Vec<Option<(u64, Error)>>,
}

/// One chunk's work: where it really started and ended, its line feeds,
/// and what it routed, counted from its own first line.
struct Chunk {
    start: u64,
    end: u64,
    newlines: u64,
    /// A guessed chunk that reached its read limit: parse it again.
    truncated: bool,
    /// The first bad row: its line (from the chunk's first) and record.
    error: Option<ChunkError>,
    cells: HashMap<u32, Acc>,
    versions: Vec<(Key, Version)>,
}

enum ChunkError {
    /// A row that fails its checks, to be checked again at its real line.
    Row(u64, ByteRecord),
    /// Any other error (I/O), final as it is.
    Other(Error),
}

/// The file's layout: its header and where the data starts.
struct Layout {
    columns: Columns,
    /// Byte offset of the first data record.
    data_start: u64,
    /// The line of the first data record's first byte.
    data_line: u64,
    /// File size (`settle_csv` sends anything but a regular file to the
    /// in-memory source).
    size: u64,
}

impl Data {
    fn read(path: &Path, name: &str, run: &BillingRun, options: &RunOptions) -> Result<Data> {
        let layout = Layout::read(path, name)?;
        let dimensions: Vec<String> = layout
            .columns
            .dimensions
            .iter()
            .map(|(d, _)| d.clone())
            .collect();
        let plan = Plan::new(run.contracts(), options, &dimensions);
        let cells = plan.cells().ok_or_else(|| {
            Error::usage(
                "the run has more windows to aggregate than one run can hold (4,294,967,295)",
            )
        })?;
        let mut data = Data {
            name: name.to_owned(),
            // Touched on both cores: a large run has millions of cells.
            cells: (0..cells).into_par_iter().map(|_| Acc::default()).collect(),
            conflicts: vec![None; plan.contracts.len()],
            plan,
        };
        let mut pieces: Vec<Vec<(Key, Version)>> = Vec::new();
        data.scan(path, &layout, &mut pieces)?;
        // One allocation of the exact size, each chunk's piece freed as it
        // is moved: never two copies of the versions.
        let mut versions = Vec::with_capacity(pieces.iter().map(Vec::len).sum());
        for piece in pieces {
            versions.extend(piece);
        }
        data.resolve(versions);
        Ok(data)
    }

    /// Reads every chunk, in parallel, merging results in file order.
    fn scan(
        &mut self,
        path: &Path,
        layout: &Layout,
        versions: &mut Vec<Vec<(Key, Version)>>,
    ) -> Result<()> {
        let (name, plan) = (self.name.as_str(), &self.plan);
        let merger = Merger {
            cells: &mut self.cells,
            versions,
            start: layout.data_start,
            line: layout.data_line,
        };
        let size = layout.size;
        let span = size.saturating_sub(layout.data_start);
        let count = span.div_ceil(CHUNK_BYTES).max(1) as usize;
        let nominal = |k: usize| (layout.data_start + k as u64 * CHUNK_BYTES).min(size);
        let next = AtomicUsize::new(0);
        struct Shared<'m, 'v> {
            merger: Merger<'m, 'v>,
            /// Parsed chunks waiting for their turn.
            done: HashMap<usize, Result<Chunk>>,
            turn: usize,
            failed: Option<Error>,
        }
        let shared = Mutex::new(Shared {
            merger,
            done: HashMap::default(),
            turn: 0,
            failed: None,
        });
        // Workers parse; whoever finishes the chunk whose turn it is merges
        // every finished chunk in order.
        rayon::scope(|s| {
            for _ in 0..rayon::current_num_threads() {
                s.spawn(|_| {
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        if k >= count {
                            break;
                        }
                        let result = Chunk::parse(
                            plan,
                            name,
                            path,
                            layout,
                            nominal(k),
                            nominal(k + 1),
                            k == 0,
                        );
                        let mut guard = shared.lock().unwrap_or_else(|p| p.into_inner());
                        let sh = &mut *guard;
                        if sh.failed.is_some() {
                            break;
                        }
                        sh.done.insert(k, result);
                        while let Some(result) = sh.done.remove(&sh.turn) {
                            let turn = sh.turn;
                            sh.turn += 1;
                            let chunk = match result {
                                Ok(c) if c.start == sh.merger.start && !c.truncated => Ok(c),
                                // A quoted line feed fooled the guess: parse
                                // again from where the chunk before ended.
                                Ok(_) => {
                                    let from = sh.merger.start;
                                    Chunk::parse(
                                        plan,
                                        name,
                                        path,
                                        layout,
                                        from,
                                        nominal(turn + 1).max(from),
                                        true,
                                    )
                                }
                                Err(e) => Err(e),
                            };
                            if let Err(e) = chunk.and_then(|c| sh.merger.merge(c, name, layout)) {
                                sh.failed = Some(e);
                                break;
                            }
                        }
                    }
                });
            }
        });
        let shared = shared.into_inner().unwrap_or_else(|p| p.into_inner());
        match shared.failed {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Settles which version of each id counts for each reader, records
    /// conflicting ties, and routes the winners. `versions` holds every
    /// version of every id, in file order.
    fn resolve(&mut self, mut versions: Vec<(Key, Version)>) {
        // By id, then line: the versions of an id in file order. In place,
        // so sorting needs no second copy of the versions.
        versions.par_sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.line.cmp(&b.1.line)));
        let runs: Vec<&[(Key, Version)]> = versions.chunk_by(|a, b| a.0 == b.0).collect();
        let Data {
            name,
            plan,
            cells,
            conflicts,
        } = self;
        let (name, plan) = (name.as_str(), &*plan);
        // Groups of ids are resolved in parallel; their results are applied
        // in order, so the same run gives the same sums on any thread count.
        // A batch of groups at a time bounds what waits to be applied.
        for batch in runs.chunks(RESOLVE_BATCH) {
            let results: Vec<Resolution<'_>> = batch
                .par_chunks(RESOLVE_GROUP)
                .map(|group| {
                    let mut out = Resolution::default();
                    for run in group {
                        resolve_id(plan, name, run, &mut out);
                    }
                    out
                })
                .collect();
            for result in results {
                for (ci, line, error) in result.conflicts {
                    let slot = &mut conflicts[ci as usize];
                    if slot.as_ref().is_none_or(|(l, _)| line < *l) {
                        *slot = Some((line, error));
                    }
                }
                for (cell, family, obs, dims) in result.winners {
                    let unique = family
                        .unique
                        .iter()
                        .map(|(_, p)| p.map_or("", |p| &*dims[p]));
                    cells[cell as usize].add(&family.needs, &obs, unique);
                }
            }
        }
    }

    /// The metric source contract `ci` settles against.
    fn source(&self, ci: usize) -> Routed<'_> {
        let base = self.plan.cell_base[ci] as usize;
        let end = self.plan.cell_base[ci + 1] as usize;
        Routed {
            name: &self.name,
            plan: &self.plan.contracts[ci],
            dimensions: &self.plan.dimensions,
            cells: &self.cells[base..end],
            conflict: self.conflicts[ci].as_ref().map(|(_, e)| e),
        }
    }
}

/// Folds chunks into the run's state, in file order.
struct Merger<'m, 'v> {
    cells: &'m mut Vec<Acc>,
    /// Each chunk's versions, lines made absolute, in file order.
    versions: &'v mut Vec<Vec<(Key, Version)>>,
    /// Where the next chunk must start, and its first line.
    start: u64,
    line: u64,
}

impl Merger<'_, '_> {
    fn merge(&mut self, chunk: Chunk, name: &str, layout: &Layout) -> Result<()> {
        let line = self.line;
        if let Some(e) = chunk.error {
            return Err(match e {
                ChunkError::Row(l, record) => row_error(name, layout, line + l - 1, &record),
                ChunkError::Other(e) => e,
            });
        }
        self.start = chunk.end;
        self.line += chunk.newlines;
        let lines = line - 1;
        let mut piece = chunk.versions;
        piece.shrink_to_fit();
        for (_, v) in &mut piece {
            v.line += lines;
        }
        self.versions.push(piece);
        for (cell, acc) in chunk.cells {
            self.cells[cell as usize].merge(acc, lines);
        }
        Ok(())
    }
}

/// What resolving some ids found: conflicting ties (contract, line of the
/// tie's first row, error) and the winners' observations for each cell.
#[derive(Default)]
struct Resolution<'a> {
    conflicts: Vec<(u32, u64, Error)>,
    winners: Vec<(u32, &'a Family, Obs<'a>, &'a [Box<str>])>,
}

/// Resolves the versions of one id (`run`, in file order) for each zone
/// of its readers.
fn resolve_id<'a>(plan: &'a Plan, name: &str, run: &'a [(Key, Version)], out: &mut Resolution<'a>) {
    let Some(((group, series, id), _)) = run.first() else {
        return;
    };
    let series_no = plan.series.get(&**series).copied();
    for r in &plan.groups[*group as usize] {
        match versions::resolve(
            run.iter().map(|(_, v)| v),
            r.zone,
            r.as_of,
            name,
            series,
            id,
        ) {
            Resolved::Nothing => {}
            Resolved::Conflict(line, error) => {
                for &ci in &r.contracts {
                    out.conflicts.push((ci, line, error.clone()));
                }
            }
            Resolved::Winner(v) => {
                let Some(series_no) = series_no else { continue };
                if v.void {
                    continue;
                }
                let obs = observation(&v.timestamp, r.zone, v.value, Some(id), v.line);
                let dims = |p: usize| -> &str { &v.dims[p] };
                for &ci in &r.contracts {
                    let c = &plan.contracts[ci as usize];
                    let base = plan.cell_base[ci as usize];
                    route(c, base, series_no, &obs, &dims, &mut |cell, family| {
                        out.winners.push((cell, family, obs, &v.dims));
                    });
                }
            }
        }
    }
}

/// The error of a bad row, checked again at its real line.
fn row_error(name: &str, layout: &Layout, line: u64, record: &ByteRecord) -> Error {
    match parse_row(name, line, &layout.columns, record) {
        Err(e) => e,
        // The row failed once; it fails again the same way.
        Ok(_) => Error::data(format!("{name}:{line}"), "unreadable row"),
    }
}

impl Layout {
    fn read(path: &Path, name: &str) -> Result<Layout> {
        let file = File::open(path).map_err(|e| io_error(name, &e))?;
        let meta = file.metadata().map_err(|e| io_error(name, &e))?;
        let Header {
            mut csv,
            columns,
            bom,
            ..
        } = read_header(name, file)?;
        let end = csv.position().byte();
        let newlines = csv.get_mut().lines_before(end);
        Ok(Layout {
            columns,
            data_start: bom + end,
            data_line: 1 + newlines,
            size: meta.len(),
        })
    }
}

impl Chunk {
    /// Parses the records that start in `[from, to)`: from `from` itself
    /// when `exact`, else from the first line feed at or after `from - 1`.
    fn parse(
        plan: &Plan,
        name: &str,
        path: &Path,
        layout: &Layout,
        from: u64,
        to: u64,
        exact: bool,
    ) -> Result<Chunk> {
        let mut file = File::open(path).map_err(|e| io_error(name, &e))?;
        let start = if exact {
            from
        } else {
            after_line_feed(&mut file, name, from - 1)?
        };
        file.seek(SeekFrom::Start(start))
            .map_err(|e| io_error(name, &e))?;
        let mut chunk = Chunk {
            start,
            end: start,
            newlines: 0,
            truncated: false,
            error: None,
            cells: HashMap::default(),
            versions: Vec::new(),
        };
        // A guess may start inside a quoted field and read a "record" to the
        // end of the file: it may read one chunk past its end at most, and
        // is parsed again from the right place if it needs more.
        let limit = if exact {
            u64::MAX
        } else {
            to.saturating_sub(start).saturating_add(CHUNK_BYTES)
        };
        // The csv crate strips a byte order mark at the start of what it
        // reads, which only the file's own start may have: a line feed
        // first (a blank line, skipped) keeps a record's first bytes. So the
        // reader's offsets and lines are one more than the chunk's.
        let input = io::Cursor::new(&b"\n"[..]).chain(file.take(limit));
        let mut csv = csv_reader(input);
        let mut record = ByteRecord::new();
        let mut scratch = Scratch::default();
        let mut pos = 0u64;
        loop {
            if start + pos >= to {
                break;
            }
            let line = match read(name, &mut csv, &mut record) {
                Ok(Some(line)) => line - 1,
                Ok(None) => break,
                Err(e) => {
                    chunk.error = Some(ChunkError::Other(e));
                    break;
                }
            };
            pos = csv.position().byte().saturating_sub(1);
            // One UTF-8 check per record (a pass over its bytes when they
            // are ASCII); a bad row is checked again field by field, at its
            // real line, so its message is the reference's.
            match StringRecord::from_byte_record(std::mem::take(&mut record)) {
                Err(e) => {
                    chunk.error = Some(ChunkError::Row(line, e.into_byte_record()));
                    break;
                }
                Ok(text) => {
                    match parse_text_row(name, line, &layout.columns, &text) {
                        Err(_) => {
                            chunk.error = Some(ChunkError::Row(line, text.into_byte_record()));
                            break;
                        }
                        Ok(row) => chunk.route_row(plan, layout, &text, &row, line, &mut scratch),
                    }
                    record = text.into_byte_record();
                }
            }
        }
        let counter = csv.get_mut();
        chunk.truncated = counter.bytes_read().saturating_sub(1) >= limit;
        // After a record ending in CRLF the reader stands on the LF: the
        // next record starts after it.
        let mut end = pos + 1;
        if counter.is_line_feed(end) {
            end += 1;
        }
        chunk.newlines = counter.lines_before(end).saturating_sub(1);
        chunk.end = start + end - 1;
        Ok(chunk)
    }

    fn route_row(
        &mut self,
        plan: &Plan,
        layout: &Layout,
        record: &StringRecord,
        row: &crate::metric::csv_source::RowRef<'_>,
        line: u64,
        scratch: &mut Scratch,
    ) {
        let Scratch {
            zones,
            series: series_names,
        } = scratch;
        let group = if row.customer.is_empty() {
            0
        } else {
            match plan.customers.get(row.customer) {
                Some(&g) => g,
                // No contract of the run reads this customer's rows.
                None => return,
            }
        };
        if let Some(id) = row.id {
            let series = match series_names.get(row.series) {
                Some(s) => Arc::clone(s),
                None => {
                    let s: Arc<str> = row.series.into();
                    series_names.insert(Arc::clone(&s));
                    s
                }
            };
            self.versions.push((
                (group, series, id.into()),
                Version {
                    line,
                    recorded: row.recorded_at.unwrap_or(row.timestamp),
                    timestamp: row.timestamp,
                    value: row.value,
                    void: row.void,
                    dims: layout
                        .columns
                        .dimensions
                        .iter()
                        .map(|(_, i)| record.get(*i).unwrap_or_default().into())
                        .collect(),
                },
            ));
            return;
        }
        let Some(&series_no) = plan.series.get(row.series) else {
            return;
        };
        if row.void {
            return;
        }
        let recorded = row.recorded_at.unwrap_or(row.timestamp);
        let dims = |p: usize| -> &str {
            record
                .get(layout.columns.dimensions[p].1)
                .unwrap_or_default()
        };
        for r in &plan.groups[group as usize] {
            let (tz, as_of, readers) = (&r.zone, &r.as_of, &r.contracts);
            if as_of.is_some_and(|t| zones.at(&recorded, *tz) > t) {
                continue;
            }
            let (secs, nanos) = zones.parts(&row.timestamp, *tz);
            let obs = Obs {
                secs,
                nanos,
                key: sort_key(&row.timestamp),
                value: row.value,
                id: None,
                line,
            };
            for &ci in readers {
                let c = &plan.contracts[ci as usize];
                let base = plan.cell_base[ci as usize];
                route(c, base, series_no, &obs, &dims, &mut |cell, family| {
                    let unique = family.unique.iter().map(|(_, p)| p.map_or("", dims));
                    self.cells
                        .entry(cell)
                        .or_default()
                        .add(&family.needs, &obs, unique);
                });
            }
        }
    }
}

/// Offset just after the first line feed at or after `at`.
fn after_line_feed(file: &mut File, name: &str, at: u64) -> Result<u64> {
    file.seek(SeekFrom::Start(at))
        .map_err(|e| io_error(name, &e))?;
    let mut buf = [0u8; 8192];
    let mut offset = at;
    loop {
        let n = match file.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_error(name, &e)),
        };
        if n == 0 {
            return Ok(offset);
        }
        if let Some(i) = buf[..n].iter().position(|&b| b == b'\n') {
            return Ok(offset + i as u64 + 1);
        }
        offset += n as u64;
    }
}

/// What a chunk's parser reuses from row to row.
#[derive(Default)]
struct Scratch {
    zones: ZoneCache,
    /// Series names of rows with an id, shared by their keys.
    series: HashSet<Arc<str>>,
}

/// Date stamps' instants per zone, cached: a file has few distinct dates.
#[derive(Default)]
struct ZoneCache {
    dates: HashMap<(NaiveDate, Tz), DateTime<Utc>>,
}

impl ZoneCache {
    fn at(&mut self, stamp: &Stamp, tz: Tz) -> DateTime<Utc> {
        match *stamp {
            Stamp::At(at) => at,
            Stamp::Date(d) => *self
                .dates
                .entry((d, tz))
                .or_insert_with(|| crate::period::local_midnight(d, tz)),
        }
    }

    fn parts(&mut self, stamp: &Stamp, tz: Tz) -> (i64, u32) {
        let at = self.at(stamp, tz);
        (at.timestamp(), at.timestamp_subsec_nanos())
    }
}

/// The in-memory source's sort key of a stamp.
fn sort_key(stamp: &Stamp) -> i64 {
    match stamp {
        Stamp::At(at) => at.timestamp(),
        Stamp::Date(d) => d.and_time(NaiveTime::MIN).and_utc().timestamp(),
    }
}

/// An observation of a winning version, for a reader in `tz`.
fn observation<'a>(
    timestamp: &Stamp,
    tz: Tz,
    value: rust_decimal::Decimal,
    id: Option<&'a str>,
    line: u64,
) -> Obs<'a> {
    let at = timestamp.instant(tz);
    Obs {
        secs: at.timestamp(),
        nanos: at.timestamp_subsec_nanos(),
        key: sort_key(timestamp),
        value,
        id,
        line,
    }
}

/// Hands `obs` of series `series_no` to every accumulator of contract `c`
/// (whose cells start at `base`) that reads it: each family of the series
/// whose filter it matches, in each window list, in the window holding it.
fn route<'p, 'd>(
    c: &'p ContractPlan,
    base: u32,
    series_no: u32,
    obs: &Obs<'_>,
    dims: &dyn Fn(usize) -> &'d str,
    add: &mut dyn FnMut(u32, &'p Family),
) {
    let from = c.by_series.partition_point(|&(s, _)| s < series_no);
    for &(s, f) in &c.by_series[from..] {
        if s != series_no {
            break;
        }
        let family = &c.families[f as usize];
        let Some(filter) = &family.filter_at else {
            continue;
        };
        if !filter.iter().all(|(p, v)| dims(*p) == v) {
            continue;
        }
        for &(set, first) in &family.sets {
            if let Some(w) = c.windows[set].find(obs.secs) {
                add(base + first + w as u32, family);
            }
        }
    }
}

/// The source one contract settles against: its accumulators.
struct Routed<'a> {
    name: &'a str,
    plan: &'a ContractPlan,
    dimensions: &'a [String],
    cells: &'a [Acc],
    conflict: Option<&'a Error>,
}

impl Routed<'_> {
    fn check_dimension(&self, name: &str, what: &str) -> Result<()> {
        let known = self.dimensions.iter().any(|d| d == name);
        crate::metric::check_dimension(self.name, name, what, known)
    }

    /// The family and windows a query reads, combined into one accumulator.
    fn window(&self, query: &Query<'_>) -> Result<(usize, Acc)> {
        for (name, _) in query.filter {
            self.check_dimension(name, "filter")?;
        }
        let missing = || {
            Error::usage(format!(
                "internal: the billing run did not prepare {} over {}..{}",
                query.series, query.start, query.end
            ))
        };
        let f = self
            .plan
            .families
            .iter()
            .position(|f| f.series == query.series && f.filter.as_slice() == query.filter)
            .ok_or_else(missing)?;
        let family = &self.plan.families[f];
        let (start, end) = (query.start.timestamp(), query.end.timestamp());
        for &(set, first) in &family.sets {
            if let Some((i, j)) = self.plan.windows[set].span(start, end) {
                let cells = &self.cells[first as usize + i..=first as usize + j];
                let mut acc = cells[0].clone();
                for c in &cells[1..] {
                    acc.merge(c.clone(), 0);
                }
                return Ok((f, acc));
            }
        }
        Err(missing())
    }
}

impl MetricSource for Routed<'_> {
    fn scan(
        &self,
        query: &Query<'_>,
        visit: &mut dyn FnMut(&Observation) -> Result<()>,
    ) -> Result<()> {
        let (_, acc) = self.window(query)?;
        let Some(extra) = acc.extra else {
            return Ok(());
        };
        let mut observations = extra.observations;
        observations.sort_unstable_by_key(|&(key, line, _)| (key, line));
        let mut obs = Observation::new(
            query.series,
            Stamp::At(query.start),
            rust_decimal::Decimal::ZERO,
        );
        for (_, line, value) in observations {
            obs.value = value;
            obs.origin = Some(format!("{}:{line}", self.name));
            visit(&obs)?;
        }
        Ok(())
    }

    fn aggregate(
        &self,
        query: &Query<'_>,
        aggregate: Aggregate,
        of: Option<&str>,
    ) -> Result<Reduced> {
        if let Some(of) = of {
            self.check_dimension(of, aggregate.name())?;
        }
        let (f, acc) = self.window(query)?;
        let unique = match (aggregate, of) {
            (Aggregate::UniqueCount, None) => {
                return Err(Error::usage(
                    "unique_count needs the dimension to count (of)",
                ));
            }
            (_, Some(of)) => self.plan.families[f]
                .unique
                .iter()
                .position(|(d, _)| d == of),
            _ => None,
        };
        acc.reduce(aggregate, unique, self.name, query.series)
    }

    fn name(&self) -> &str {
        self.name
    }

    fn check_versions(
        &self,
        _customer: &str,
        _timezone: Tz,
        _as_of: Option<DateTime<Utc>>,
    ) -> Result<()> {
        match self.conflict {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }
}
