//! All month aggregates of one partition or run: blocks of month × measure (three regional
//! rows each), the live response-time histograms, the counters beside them, and the merge of
//! one partition's aggregates into another's.

use std::borrow::Cow;
use std::sync::Arc;

use hashbrown::HashMap;
use hdrhistogram::Histogram;

use crate::engine::availability::{
    MonthFigures, SavedTimeline, State, Timeline, exempt_windows, month_figures,
};
use crate::engine::calendar::{Calendar, Month};
use crate::engine::catalog::Catalog;
use crate::engine::correlate::Decision;
use crate::engine::definitions::Definitions;
use crate::engine::domain::Region;
use crate::engine::exemption::Register;
use crate::engine::time::Ts;

use super::exempt::Exempted;
use super::histogram::{RtHist, SEGMENT_ACK, SEGMENT_AFTER_ACK, SEGMENT_RESPONSE, Segments};
use super::row::{Outcome, Row, outcome};

/// The three regional rows of one month × measure, and the revision of their `all` row.
#[derive(Debug, Clone, Default)]
pub struct Block {
    /// North, central, south.
    pub regions: [Row; 3],
    /// Revision of the pooled row.
    pub all_revision: u32,
}

impl Block {
    /// The pooled (`all`) row, merged from the regions.
    pub fn all(&self) -> Row {
        let mut all = Row::default();
        for r in &self.regions {
            all.merge(r);
        }
        all.revision = self.all_revision;
        all
    }
}

/// Counts kept beside the rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AggregateStats {
    /// Requests decided (each once, whatever the measures).
    pub decided: u64,
    /// Decided requests that matched no measure.
    pub unmeasured: u64,
    /// Decided requests whose counts a later event changed.
    pub revised: u64,
}

/// All month aggregates of one partition or run.
#[derive(Clone)]
pub struct Aggregates {
    pub(super) defs: Arc<Definitions>,
    /// Response times and the acknowledgement segments over all months, by measure and region,
    /// in the live histogram's buckets.
    pub(super) rt: Segments,
    pub(super) calendar: Calendar,
    pub(super) blocks: HashMap<(Month, u16), Block>,
    pub(super) stats: AggregateStats,
    pub(super) watermark: Ts,
    pub(super) scratch: Option<Histogram<u64>>,
    /// Blocks changed since the last [`Aggregates::take_changes`], when a checkpoint store
    /// asked for them.
    pub(super) changed: Option<hashbrown::HashSet<(Month, u16)>>,
    /// The exemption register the views are computed under (empty: none).
    pub(super) register: Arc<Register>,
    /// What it exempts, per view, month, measure and region.
    pub(super) exempted: Exempted,
    /// Counts per minute changed since the last checkpoint, when a checkpoint store asked for
    /// them (with the blocks).
    pub(super) cells: Option<super::cells::CellDeltas>,
    /// Each configured interface's timeline of up/down changes (issue 30), in definition order.
    pub(super) availability: Vec<Timeline>,
    /// The newest `at` of an availability event of a known interface (`Ts::MIN`: none yet).
    pub(super) availability_newest: Ts,
    /// Missed requests kept per row and failure bucket (`[evidence] sample`).
    pub(super) sample_cap: usize,
    /// Which stretches of each month the valid events cover (issue 33).
    pub(super) coverage: super::coverage::Coverage,
    /// A longer gap makes a month incomplete (ns; `time.coverage_max_gap`).
    pub(super) coverage_max_gap: i64,
}

/// `time.coverage_max_gap`'s default: six hours.
pub(crate) const DEFAULT_COVERAGE_MAX_GAP: i64 = 6 * 3600 * crate::engine::time::NANOS_PER_SEC;

impl Aggregates {
    /// Empty aggregates; months in `calendar`'s zone.
    pub fn new(defs: Arc<Definitions>, calendar: Calendar) -> Aggregates {
        let defs_interfaces = defs.interfaces.len();
        let per_measure: Vec<[RtHist; 3]> =
            vec![RtHist::new(defs.rt_bounds_ms.len()); defs.measures.len()]
                .into_iter()
                .map(|h| [h.clone(), h.clone(), h])
                .collect();
        let rt = [per_measure.clone(), per_measure.clone(), per_measure];
        Aggregates {
            defs,
            rt,
            calendar,
            blocks: HashMap::new(),
            stats: AggregateStats::default(),
            watermark: Ts::MIN,
            scratch: None,
            changed: None,
            register: Arc::new(Register::default()),
            exempted: Exempted::default(),
            cells: None,
            availability: vec![Timeline::default(); defs_interfaces],
            availability_newest: Ts::MIN,
            sample_cap: super::row::SAMPLE_SIZE,
            coverage: super::coverage::Coverage::default(),
            coverage_max_gap: DEFAULT_COVERAGE_MAX_GAP,
        }
    }

    /// These aggregates judging a month incomplete at a gap longer than `gap`.
    pub(crate) fn with_coverage_gap(mut self, gap: crate::engine::time::Dur) -> Aggregates {
        self.coverage_max_gap = gap.0;
        self
    }

    /// A valid event at `at`: its instant is covered.
    #[inline]
    pub(crate) fn record_event(&mut self, at: Ts) {
        let month = self.calendar.month_of(at);
        self.coverage.record(month, at);
    }

    /// The stretches the valid events cover.
    pub(crate) fn coverage(&self) -> &super::coverage::Coverage {
        &self.coverage
    }

    /// Adds saved stretches (a restored checkpoint, another partition's in a store); the months
    /// that do not read.
    pub(crate) fn restore_coverage(
        &mut self,
        saved: &[super::coverage::SavedCoverage],
    ) -> Vec<String> {
        self.coverage.restore(saved)
    }

    /// Whether `month` is complete: its valid events reach from its first minute to its last
    /// with no gap longer than `time.coverage_max_gap`; and the gaps that are.
    pub(crate) fn completeness(&self, month: Month) -> super::coverage::Judged {
        self.coverage.judge(
            month,
            self.calendar.start_of(month),
            self.calendar.end_of(month),
            self.coverage_max_gap,
        )
    }

    /// The longest gap a complete month may have (ns).
    pub fn coverage_max_gap(&self) -> i64 {
        self.coverage_max_gap
    }

    /// These aggregates keeping up to `cap` missed requests per row and failure bucket.
    pub(crate) fn with_sample_cap(mut self, cap: usize) -> Aggregates {
        self.sample_cap = cap.clamp(1, usize::from(u16::MAX));
        self
    }

    /// These aggregates counting what `register` exempts, from now on.
    pub fn with_register(mut self, register: Arc<Register>) -> Aggregates {
        self.register = register;
        self
    }

    /// The register the views are computed under.
    pub fn register(&self) -> &Arc<Register> {
        &self.register
    }

    /// What the register exempts, per view, month, measure and region.
    pub fn exempted(&self) -> &Exempted {
        &self.exempted
    }

    /// The three regional rows view `view` reports for a block (`month`, `measure`): each less
    /// what the view's exemptions took out of it (borrowed when they took nothing: the live
    /// view asks every second, and a row's histogram is not worth copying for nothing).
    pub(crate) fn view_rows<'a>(
        &self,
        view: usize,
        month: Month,
        measure: u16,
        block: &'a Block,
    ) -> [Cow<'a, Row>; 3] {
        let tallies = self.exempted.regions(view, month, measure);
        std::array::from_fn(
            |i| match tallies.map(|t| &t[i]).filter(|t| t.requests > 0) {
                Some(t) => Cow::Owned(t.taken_from(&block.regions[i])),
                None => Cow::Borrowed(&block.regions[i]),
            },
        )
    }

    /// Adds tallies made elsewhere (from a store's cells, for the register of these
    /// aggregates).
    pub(crate) fn add_exempted(&mut self, more: &Exempted) {
        self.exempted.merge(more);
    }

    /// Counts kept beside the rows.
    pub fn stats(&self) -> AggregateStats {
        self.stats
    }

    /// The definitions.
    pub fn definitions(&self) -> &Arc<Definitions> {
        &self.defs
    }

    /// The calendar.
    pub fn calendar(&self) -> &Calendar {
        &self.calendar
    }

    /// The month of `t` in the calendar's zone.
    pub fn month_of(&mut self, t: Ts) -> Month {
        self.calendar.month_of(t)
    }

    /// Sets the combined watermark (it never goes back) that decides which months are final.
    pub fn set_watermark(&mut self, wm: Ts) {
        if wm > self.watermark {
            self.watermark = wm;
        }
    }

    /// These aggregates with `wm` as their watermark: for merged partitions, whose combined
    /// watermark is the minimum of theirs (merging keeps the largest).
    pub(crate) fn with_watermark(mut self, wm: Ts) -> Aggregates {
        self.watermark = wm;
        self
    }

    /// The combined watermark.
    pub fn watermark(&self) -> Ts {
        self.watermark
    }

    /// A month is final once the watermark has passed its end plus the longest deadline.
    pub fn is_final(&self, month: Month) -> bool {
        self.calendar.end_of(month).plus(self.defs.longest_deadline) < self.watermark
    }

    /// Counts a decided request.
    pub fn apply(&mut self, d: &Decision, cat: &Catalog) {
        self.apply_with(d, cat, None);
    }

    /// Counts a decided request, offering its evidence text to the samples of the failure
    /// buckets it lands in.
    pub fn apply_with(&mut self, d: &Decision, cat: &Catalog, evidence: Option<&str>) {
        self.stats.decided += 1;
        self.change(d, cat, true, evidence);
        // A request decided after its month became final (it came late, inside the horizon)
        // changes final rows: a revision, as a late response's is, never a silent change. The
        // first test is one comparison: most decisions are far too recent to be in such a month.
        if d.due.plus(self.defs.longest_deadline) < self.watermark {
            let month = self.calendar.month_of(d.due);
            for r in cat.rules(d.srv, d.provider).of(d.future_dated()) {
                self.revise_if_final(month, r.measure, d.region);
            }
        }
    }

    /// A late change to a row: once its month is final, its revision (and its `all` row's)
    /// rises by one.
    fn revise_if_final(&mut self, month: Month, measure: u16, region: Region) {
        if self.is_final(month)
            && let Some(b) = self.blocks.get_mut(&(month, measure))
        {
            b.regions[region as usize].revision += 1;
            b.all_revision += 1;
        }
    }

    fn change(&mut self, d: &Decision, cat: &Catalog, add: bool, evidence: Option<&str>) {
        let rules = cat.rules(d.srv, d.provider).of(d.future_dated());
        if rules.is_empty() {
            self.stats.unmeasured = if add {
                self.stats.unmeasured + 1
            } else {
                self.stats.unmeasured.saturating_sub(1)
            };
            return;
        }
        // A request counts where it was due: its month, day and minute (and the exemption
        // windows) are those of a future-dated request's `execute_at`.
        let month = self.calendar.month_of(d.due);
        let day = self.calendar.day_of(d.due);
        // The minute, only where a store keeps the cells.
        let minute = if self.cells.is_some() {
            self.calendar.minute_of(d.due).1
        } else {
            0
        };
        let user = (cat.user_name(d.user), cat.user_hash(d.user));
        if let Some(c) = &mut self.changed {
            c.extend(rules.iter().map(|r| (month, r.measure)));
        }
        // Most requests are outside every window: one comparison each.
        let exemptible = self.register.may_cover(d.due);
        for rule in rules.iter() {
            let o = outcome(rule, d, cat);
            if exemptible {
                for view in 0..self.register.views.len() {
                    if let Some(e) = self.register.exempting(
                        view,
                        d.due,
                        rule.measure,
                        d.region,
                        d.provider,
                        cat.srv_name(d.srv),
                    ) {
                        self.exempted.apply(
                            view,
                            month,
                            rule.measure,
                            d.region as usize,
                            &o,
                            add,
                            e as u16,
                            day,
                            1,
                        );
                    }
                }
            }
            if let Some(cells) = &mut self.cells {
                cells.apply(
                    month,
                    minute,
                    rule.measure,
                    d.region,
                    d.provider,
                    d.srv,
                    &o,
                    add,
                );
            }
            let block = self.blocks.entry((month, rule.measure)).or_default();
            let row = &mut block.regions[d.region as usize];
            if self.sample_cap != super::row::SAMPLE_SIZE {
                row.set_sample_cap(self.sample_cap);
            }
            row.apply(&o, add, &mut self.scratch, (d.key, evidence), day, user);
            for (segment, ms) in [
                (SEGMENT_RESPONSE, o.rt_ms),
                (SEGMENT_ACK, o.ack_ms),
                (SEGMENT_AFTER_ACK, o.after_ack_ms),
            ] {
                if let Some(ms) = ms
                    && let Some(h) = self.rt[segment].get_mut(rule.measure as usize)
                {
                    let h = &mut h[d.region as usize];
                    if add {
                        h.add_n(&self.defs.rt_bounds_ms, ms, 1);
                    } else {
                        h.remove(&self.defs.rt_bounds_ms, ms);
                    }
                }
            }
        }
    }

    /// Replaces a decided request's counts: `old` out, `new` in. Rows of final months whose
    /// counts change get their revision raised.
    pub fn revise(&mut self, old: &Decision, new: &Decision, cat: &Catalog) {
        let effect =
            |this: &mut Aggregates, d: &Decision| -> Vec<((Month, u16, Region), Outcome)> {
                let month = this.calendar.month_of(d.due);
                cat.rules(d.srv, d.provider)
                    .of(d.future_dated())
                    .iter()
                    .map(|r| ((month, r.measure, d.region), outcome(r, d, cat)))
                    .collect()
            };
        let before = effect(self, old);
        let after = effect(self, new);
        let counts = |o: &Outcome| {
            (
                o.within_target,
                o.succeeded,
                o.no_response,
                o.bucket,
                o.ack_ms.is_some(),
            )
        };
        let mut changed: Vec<(Month, u16, Region)> = Vec::new();
        for (k, o) in &before {
            if !after
                .iter()
                .any(|(k2, o2)| k2 == k && counts(o2) == counts(o))
            {
                changed.push(*k);
            }
        }
        for (k, o) in &after {
            if !before
                .iter()
                .any(|(k2, o2)| k2 == k && counts(o2) == counts(o))
                && !changed.contains(k)
            {
                changed.push(*k);
            }
        }
        let unmeasured_changed = before.is_empty() != after.is_empty();
        if changed.is_empty() && !unmeasured_changed && before == after {
            return;
        }
        // The revised request leaves its old bucket's sample; its text is gone by now (only
        // pending requests keep theirs), so its new bucket does not sample it.
        self.change(old, cat, false, None);
        self.change(new, cat, true, None);
        if !changed.is_empty() || unmeasured_changed {
            self.stats.revised += 1;
        }
        for (month, measure, region) in changed {
            self.revise_if_final(month, measure, region);
        }
    }

    /// Response times and acknowledgement segments over every month, by measure and region
    /// (the live histograms).
    pub(crate) fn response_times(&self) -> &Segments {
        &self.rt
    }

    /// Adds another partition's aggregates into these (same definitions assumed).
    pub fn merge(&mut self, other: &Aggregates) {
        for (mine, theirs) in self.rt.iter_mut().zip(&other.rt) {
            for (a, b) in mine.iter_mut().zip(theirs) {
                for (x, y) in a.iter_mut().zip(b) {
                    x.merge(y);
                }
            }
        }
        for (k, ob) in &other.blocks {
            let b = self.blocks.entry(*k).or_default();
            for i in 0..3 {
                b.regions[i].merge(&ob.regions[i]);
            }
            b.all_revision += ob.all_revision;
        }
        self.exempted.merge(&other.exempted);
        for (a, b) in self.availability.iter_mut().zip(&other.availability) {
            a.merge(b);
        }
        self.availability_newest = self.availability_newest.max(other.availability_newest);
        self.coverage.merge(&other.coverage);
        self.stats.decided += other.stats.decided;
        self.stats.unmeasured += other.stats.unmeasured;
        self.stats.revised += other.stats.revised;
        self.set_watermark(other.watermark);
    }

    /// Records that interface `interface` (its index in the definitions) was `state` from `at`;
    /// returns whether that changed its timeline (a repeat does not).
    pub(crate) fn record_availability(&mut self, interface: usize, at: Ts, state: State) -> bool {
        let Some(t) = self.availability.get_mut(interface) else {
            return false;
        };
        self.availability_newest = self.availability_newest.max(at);
        t.record(at, state)
    }

    /// How far availability is known: the watermark, or the newest availability event if it is
    /// later. Availability events are sparse (most months have none), so the rule that keeps a
    /// lone event far ahead from moving a source's clock (it guards correlation against a
    /// device's clock error) would hold nearly every one back; they come from monitoring, and
    /// what they say is known up to the newest of them.
    pub(crate) fn availability_bound(&self) -> Ts {
        self.watermark.max(self.availability_newest)
    }

    /// The timelines with changes, as a checkpoint keeps them, and the newest availability
    /// event's `at` (ns).
    pub(crate) fn save_availability(&self) -> (Vec<SavedTimeline>, Option<i64>) {
        let saved = self
            .defs
            .interfaces
            .iter()
            .zip(&self.availability)
            .filter(|(_, t)| !t.is_empty())
            .map(|(i, t)| t.save(&i.id))
            .collect();
        let newest = (self.availability_newest > Ts::MIN).then_some(self.availability_newest.0);
        (saved, newest)
    }

    /// Adds saved timelines (a restored checkpoint, another partition's in a store); returns
    /// the ids of interfaces the definitions no longer have (their changes are left out).
    pub(crate) fn restore_availability(
        &mut self,
        saved: &[SavedTimeline],
        newest: Option<i64>,
    ) -> Vec<String> {
        let mut unknown = Vec::new();
        for st in saved {
            match self
                .defs
                .interfaces
                .iter()
                .position(|i| i.id == st.interface)
            {
                Some(i) => self.availability[i].restore(st),
                None => unknown.push(st.interface.clone()),
            }
        }
        if let Some(n) = newest {
            self.availability_newest = self.availability_newest.max(Ts(n));
        }
        unknown
    }

    /// The newest `at` of an availability event (`Ts::MIN`: none yet).
    pub fn availability_newest(&self) -> Ts {
        self.availability_newest
    }

    /// Each configured interface's timeline, in definition order.
    pub fn timelines(&self) -> &[Timeline] {
        &self.availability
    }

    /// The months availability is reported for: from that of the first availability event to
    /// that of the watermark; none before any availability event.
    pub(crate) fn availability_months(&self) -> Vec<Month> {
        let first = self
            .availability
            .iter()
            .filter_map(|t| t.changes().next().map(|(at, _)| at))
            .min();
        let Some(first) = first else {
            return Vec::new();
        };
        let mut cal = self.calendar.clone();
        // The month of the last elapsed instant: a bound on a month's first instant has not
        // entered that month yet.
        let bound = self.availability_bound();
        let (mut m, last) = (
            cal.month_of(first),
            cal.month_of(Ts(bound.0 - 1).max(first)),
        );
        let mut out = Vec::new();
        while m <= last {
            out.push(m);
            m = m.next();
        }
        out
    }

    /// Whether `month`'s availability is final: known past its end.
    pub(crate) fn availability_final(&self, month: Month) -> bool {
        self.availability_bound() >= self.calendar.end_of(month)
    }

    /// Every configured interface's figures for `month` in view `view` (an index of the
    /// register's views), as far as the watermark.
    pub(crate) fn availability(&self, view: usize, month: Month) -> Vec<MonthFigures> {
        self.defs
            .interfaces
            .iter()
            .zip(&self.availability)
            .map(|(i, t)| {
                let windows = exempt_windows(&self.register, view, &i.id);
                let bound = self.availability_bound();
                month_figures(&self.calendar, month, &t.outages(bound), &windows, bound)
            })
            .collect()
    }

    /// Blocks in report order: month, then measure in definition order.
    pub fn blocks(&self) -> Vec<(Month, u16, &Block)> {
        let mut v: Vec<(Month, u16, &Block)> =
            self.blocks.iter().map(|((m, i), b)| (*m, *i, b)).collect();
        v.sort_by_key(|(m, i, _)| (*m, *i));
        v
    }

    /// Months with at least one request.
    pub fn months(&self) -> Vec<Month> {
        let mut v: Vec<Month> = self.blocks.keys().map(|(m, _)| *m).collect();
        v.sort();
        v.dedup();
        v
    }
}
