//! Counts per minute of request `at`: for each month, minute, measure, region, provider and SRV,
//! the decided requests' counts. Exemption windows are whole minutes and scoped by exactly these,
//! so a register applied to a month long after its requests left the dedupe horizon (`rollup`,
//! `report`, a `run` restarted with another register) takes out exactly what a replay with that
//! register would (issue 29). A checkpoint writes the cells changed since the last one
//! ([`CellDeltas`], signed: a revision takes counts back); the store adds them up.

use hashbrown::HashMap;

use crate::engine::calendar::{Calendar, Month};
use crate::engine::catalog::Bucket;
use crate::engine::definitions::Definitions;
use crate::engine::domain::{Provider, Region};
use crate::engine::exemption::Register;

use super::exempt::Exempted;
use super::row::Outcome;

/// The counts of one cell: signed in a checkpoint's deltas, never negative once added up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CellCounts {
    /// Requests decided.
    pub requests: i64,
    /// Within target.
    pub within_target: i64,
    /// Succeeded.
    pub succeeded: i64,
    /// Without a final response within the deadline.
    pub no_response: i64,
    /// Misses by failure bucket ([`Bucket`]'s number), sorted.
    pub buckets: Vec<(u32, i64)>,
}

impl CellCounts {
    /// Counts (`add`) or takes back one request's outcome.
    pub(crate) fn apply(&mut self, o: &Outcome, add: bool) {
        let n = if add { 1 } else { -1 };
        self.requests += n;
        if o.within_target {
            self.within_target += n;
        }
        if o.succeeded {
            self.succeeded += n;
        }
        if o.no_response {
            self.no_response += n;
        }
        if let Some(b) = o.bucket {
            self.add_bucket(b.0, n);
        }
    }

    fn add_bucket(&mut self, bucket: u32, n: i64) {
        match self.buckets.binary_search_by_key(&bucket, |(b, _)| *b) {
            Ok(i) => {
                self.buckets[i].1 += n;
                if self.buckets[i].1 == 0 {
                    self.buckets.remove(i);
                }
            }
            Err(i) => self.buckets.insert(i, (bucket, n)),
        }
    }

    /// Adds `other` (a delta, or another partition's cell).
    pub fn add(&mut self, other: &CellCounts) {
        self.requests += other.requests;
        self.within_target += other.within_target;
        self.succeeded += other.succeeded;
        self.no_response += other.no_response;
        for (b, n) in &other.buckets {
            self.add_bucket(*b, *n);
        }
    }

    /// Whether it counts nothing.
    pub fn is_zero(&self) -> bool {
        self.requests == 0
            && self.within_target == 0
            && self.succeeded == 0
            && self.no_response == 0
            && self.buckets.is_empty()
    }

    /// Whether a stored cell's counts are possible (none negative, none above its requests).
    pub(crate) fn is_possible(&self) -> bool {
        let r = self.requests;
        r >= 0
            && (0..=r).contains(&self.within_target)
            && (0..=r).contains(&self.succeeded)
            && (0..=r).contains(&self.no_response)
            && self.buckets.iter().all(|(_, n)| *n >= 0)
            && self.buckets.iter().map(|(_, n)| *n).sum::<i64>() <= r
    }
}

/// One cell as it leaves the core (a checkpoint's delta) or comes back from the store: its
/// measure and SRV by name, so it outlives the process's interning and index order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedCell {
    /// The month of the requests' `at`.
    pub month: Month,
    /// The minute of that month (0 at its first instant).
    pub minute: u16,
    /// Measure id.
    pub measure: String,
    /// Region.
    pub region: Region,
    /// Provider.
    pub provider: Provider,
    /// SRV.
    pub srv: String,
    /// Counts (a delta, or the whole).
    pub counts: CellCounts,
}

/// The cells changed since the last checkpoint, keyed by month and a packed (minute, measure,
/// region, provider, interned SRV).
#[derive(Debug, Default, Clone)]
pub struct CellDeltas {
    map: HashMap<(Month, u64), CellCounts>,
}

fn pack(minute: u16, measure: u16, region: Region, provider: Provider, srv: u32) -> u64 {
    u64::from(minute) << 48
        | u64::from(measure) << 32
        | (region as u64) << 30
        | (provider as u64) << 28
        | u64::from(srv & 0x0fff_ffff)
}

impl CellDeltas {
    /// One request's outcome in a measure, counted (`add`) or taken back.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn apply(
        &mut self,
        month: Month,
        minute: u16,
        measure: u16,
        region: Region,
        provider: Provider,
        srv: u32,
        o: &Outcome,
        add: bool,
    ) {
        let c = self
            .map
            .entry((month, pack(minute, measure, region, provider, srv)))
            .or_default();
        c.apply(o, add);
        if c.is_zero() {
            self.map
                .remove(&(month, pack(minute, measure, region, provider, srv)));
        }
    }

    /// Cells changed so far.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether none changed.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The deltas, by name (`srv_name` resolves an interned SRV), sorted by month and minute;
    /// emptied.
    pub fn take(&mut self, defs: &Definitions, srv_name: impl Fn(u32) -> String) -> Vec<SavedCell> {
        let mut out: Vec<SavedCell> = self
            .map
            .drain()
            .filter_map(|((month, k), counts)| {
                let measure = defs.measures.get((k >> 32 & 0xffff) as usize)?.id.clone();
                Some(SavedCell {
                    month,
                    minute: (k >> 48) as u16,
                    measure,
                    region: Region::from_index((k >> 30 & 3) as usize),
                    provider: Provider::ALL[((k >> 28 & 3) as usize).min(2)],
                    srv: srv_name((k & 0x0fff_ffff) as u32),
                    counts,
                })
            })
            .collect();
        out.sort_by(|a, b| {
            (a.month, a.minute, &a.measure, a.region, a.provider, &a.srv)
                .cmp(&(b.month, b.minute, &b.measure, b.region, b.provider, &b.srv))
        });
        out
    }
}

impl Exempted {
    /// Adds what `register` exempts of stored `cells` (whole counts, as a store adds them up):
    /// the same tallies the decisions themselves would have made. Cells of a measure the
    /// definitions no longer have are left out.
    pub(crate) fn add_cells<'a>(
        &mut self,
        register: &Register,
        defs: &Definitions,
        calendar: &mut Calendar,
        cells: impl IntoIterator<Item = &'a SavedCell>,
    ) {
        for c in cells {
            let Some(measure) = defs.measure_index(&c.measure) else {
                continue;
            };
            if c.counts.requests <= 0 {
                continue;
            }
            // Any instant of the minute: windows are whole minutes.
            let at = calendar.minute_start(c.month, c.minute);
            let day = calendar.day_of(at);
            for view in 0..register.views.len() {
                let Some(e) =
                    register.exempting(view, at, measure as u16, c.region, c.provider, &c.srv)
                else {
                    continue;
                };
                let t = &mut self
                    .blocks
                    .entry((view as u8, c.month, measure as u16))
                    .or_default()[c.region as usize];
                t.add_counts(&c.counts, e as u16, day);
            }
        }
    }
}

impl super::exempt::Tally {
    /// Adds a cell's counts, exempted by `exemption`, on `day`.
    pub(super) fn add_counts(&mut self, c: &CellCounts, exemption: u16, day: u8) {
        let n = |v: i64| v.max(0) as u64;
        self.requests += n(c.requests);
        self.within_target += n(c.within_target);
        self.succeeded += n(c.succeeded);
        self.no_response += n(c.no_response);
        for (b, k) in &c.buckets {
            *self.buckets.entry(Bucket(*b)).or_insert(0) += n(*k);
        }
        let d = &mut self.days.get_or_insert_with(|| Box::new([[0; 3]; 31]))
            [usize::from(day.clamp(1, 31)) - 1];
        d[0] += n(c.requests);
        d[1] += n(c.within_target);
        d[2] += n(c.succeeded);
        *self.by_exemption.entry(exemption).or_insert(0) += n(c.requests);
    }
}
