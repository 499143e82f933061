//! The live view of a running service: what every partition's worker last published (counts,
//! pending state, watermark, offsets) and what librdkafka last reported, read by `/metrics` and
//! `/readyz`. Workers publish snapshots at most a few times a second, so readers never touch the
//! pipelines and the hot path never touches a lock per event.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::engine::aggregate::{Aggregates, Days, Row, Segments};
use crate::engine::availability::Timeline;
use crate::engine::calendar::Month;
use crate::engine::domain::Basis;
use crate::engine::pipeline::PipelineStats;
use crate::engine::time::Ts;

/// Decided-request counts of one measure in one region.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Requests decided.
    pub requests: u64,
    /// Of which answered successfully within the TRT.
    pub within_target: u64,
    /// Of which succeeded at all (MP242).
    pub succeeded: u64,
    /// Of which got no final response within the deadline.
    pub no_response: u64,
}

impl Counts {
    /// Adds another's counts (partitions, or regions into `all`).
    pub fn add(&mut self, o: &Counts) {
        self.requests += o.requests;
        self.within_target += o.within_target;
        self.succeeded += o.succeeded;
        self.no_response += o.no_response;
    }

    /// A month row's counts.
    pub fn of(row: &Row) -> Counts {
        Counts {
            requests: row.requests,
            within_target: row.within_target,
            succeeded: row.succeeded,
            no_response: row.no_response,
        }
    }

    /// Hits for a measure of `basis`: within TRT, or succeeded (MP242).
    pub fn hits(&self, basis: Basis) -> u64 {
        match basis {
            Basis::Trt => self.within_target,
            Basis::Success => self.succeeded,
        }
    }
}

/// Counts by measure (configuration order), then region (north, central, south).
pub type MeasureCounts = Vec<[Counts; 3]>;

/// Counts by day of the month (requests, within target, succeeded), by measure, then region.
pub(crate) type MeasureDays = Vec<[Days; 3]>;

/// Misses by failure bucket (`failures.csv`'s), by measure, then region.
pub(crate) type MeasureBuckets = Vec<[BTreeMap<crate::engine::catalog::Bucket, u64>; 3]>;

fn add_buckets(into: &mut MeasureBuckets, from: &MeasureBuckets) {
    if into.len() < from.len() {
        into.resize(from.len(), Default::default());
    }
    for (a, b) in into.iter_mut().zip(from) {
        for (x, y) in a.iter_mut().zip(b) {
            for (k, n) in y {
                *x.entry(*k).or_insert(0) += n;
            }
        }
    }
}

/// Months whose counts by day (and failure buckets) a partition publishes: the latest ones, where the month that
/// holds the combined watermark is.
const DAY_MONTHS: usize = 2;

fn add_days(into: &mut MeasureDays, from: &MeasureDays) {
    if into.len() < from.len() {
        into.resize(from.len(), [[[0; 3]; 31]; 3]);
    }
    for (a, b) in into.iter_mut().zip(from) {
        for (x, y) in a.iter_mut().zip(b) {
            for (p, q) in x.iter_mut().zip(y) {
                for (m, n) in p.iter_mut().zip(q) {
                    *m += n;
                }
            }
        }
    }
}

fn add_counts(into: &mut MeasureCounts, from: &MeasureCounts) {
    if into.len() < from.len() {
        into.resize(from.len(), [Counts::default(); 3]);
    }
    for (a, b) in into.iter_mut().zip(from) {
        for (x, y) in a.iter_mut().zip(b) {
            x.add(y);
        }
    }
}

fn add_rt(into: &mut Segments, from: &Segments) {
    for (into, from) in into.iter_mut().zip(from) {
        if into.len() < from.len() {
            into.resize(from.len(), Default::default());
        }
        for (a, b) in into.iter_mut().zip(from) {
            for (x, y) in a.iter_mut().zip(b) {
                x.merge(y);
            }
        }
    }
}

/// What one partition's worker last published.
#[derive(Debug, Clone)]
pub struct PartView {
    /// Event accounting so far.
    pub stats: PipelineStats,
    /// Requests waiting for a decision.
    pub pending: u64,
    /// Responses waiting for their request.
    pub waiting: u64,
    /// The partition's watermark.
    pub watermark: Ts,
    /// When the partition last delivered an event (wall clock).
    pub last_event: Instant,
    /// The next offset to process.
    pub next_offset: i64,
    /// Decided counts by month.
    pub months: BTreeMap<Month, MeasureCounts>,
    /// Decided counts by day, of the latest months.
    pub days: BTreeMap<Month, MeasureDays>,
    /// The `opr` view's misses by failure bucket, of the latest months.
    pub buckets: BTreeMap<Month, MeasureBuckets>,
    /// Requests the `opr` view's exemptions took out of the counts above, by month.
    pub exempted: BTreeMap<Month, MeasureCounts>,
    /// Response times and acknowledgement segments over all months, by measure and region.
    pub rt: Segments,
    /// With a store: since when it has events not yet checkpointed (`None`: all are).
    pub unsaved_since: Option<Instant>,
    /// Each interface's availability timeline (issue 30; sparse, so copied whole).
    pub availability: Vec<Timeline>,
    /// The newest availability event's `at` (`Ts::MIN`: none).
    pub availability_newest: Ts,
    /// Which stretches of each month its valid events cover (issue 33; a few per month).
    pub coverage: crate::engine::aggregate::Coverage,
}

impl PartView {
    /// A snapshot of a partition's pipeline state.
    pub fn capture(
        stats: &PipelineStats,
        pending: usize,
        waiting: usize,
        aggregates: &Aggregates,
        last_event: Instant,
        next_offset: i64,
        unsaved_since: Option<Instant>,
    ) -> PartView {
        let n = aggregates.definitions().measures.len();
        let mut months: BTreeMap<Month, MeasureCounts> = BTreeMap::new();
        let blocks = aggregates.blocks();
        let mut recent: Vec<Month> = blocks.iter().map(|(m, _, _)| *m).collect();
        recent.dedup();
        let recent = &recent[recent.len().saturating_sub(DAY_MONTHS)..];
        let mut days: BTreeMap<Month, MeasureDays> = BTreeMap::new();
        let mut buckets: BTreeMap<Month, MeasureBuckets> = BTreeMap::new();
        let mut exempted: BTreeMap<Month, MeasureCounts> = BTreeMap::new();
        // The `opr` view's figures: the register's exemptions taken out (issue 29), so the
        // month to date, hits to target and every alert judge what the OPR will count.
        for (month, measure, block) in blocks {
            let view = aggregates.exempted().regions(0, month, measure);
            let opr = aggregates.view_rows(0, month, measure, block);
            let row = months
                .entry(month)
                .or_insert_with(|| vec![[Counts::default(); 3]; n]);
            if let Some(slot) = row.get_mut(measure as usize) {
                for (c, r) in slot.iter_mut().zip(&opr) {
                    *c = Counts::of(r);
                }
            }
            if let Some(t) = view {
                let row = exempted
                    .entry(month)
                    .or_insert_with(|| vec![[Counts::default(); 3]; n]);
                if let Some(slot) = row.get_mut(measure as usize) {
                    for (c, t) in slot.iter_mut().zip(t) {
                        *c = Counts {
                            requests: t.requests,
                            within_target: t.within_target,
                            succeeded: t.succeeded,
                            no_response: t.no_response,
                        };
                    }
                }
            }
            if !recent.contains(&month) {
                continue;
            }
            let row = days
                .entry(month)
                .or_insert_with(|| vec![[[[0; 3]; 31]; 3]; n]);
            if let Some(slot) = row.get_mut(measure as usize) {
                for (d, r) in slot.iter_mut().zip(&opr) {
                    *d = r.day_counts();
                }
            }
            let row = buckets
                .entry(month)
                .or_insert_with(|| vec![Default::default(); n]);
            if let Some(slot) = row.get_mut(measure as usize) {
                for (b, r) in slot.iter_mut().zip(&opr) {
                    b.clone_from(&r.buckets);
                }
            }
        }
        PartView {
            stats: stats.clone(),
            pending: pending as u64,
            waiting: waiting as u64,
            watermark: aggregates.watermark(),
            last_event,
            next_offset,
            months,
            days,
            buckets,
            exempted,
            rt: aggregates.response_times().clone(),
            unsaved_since,
            availability: aggregates.timelines().to_vec(),
            availability_newest: aggregates.availability_newest(),
            coverage: aggregates.coverage().clone(),
        }
    }

    fn totals(&self) -> MeasureCounts {
        let mut t = MeasureCounts::new();
        for c in self.months.values() {
            add_counts(&mut t, c);
        }
        t
    }
}

#[derive(Default)]
struct State {
    parts: BTreeMap<(String, i32), PartView>,
    /// Last stable offset of each assigned partition, from librdkafka's statistics.
    end_offsets: BTreeMap<(String, i32), i64>,
    /// Counts of partitions handed over, so counters never go back.
    retired_stats: PipelineStats,
    retired_totals: MeasureCounts,
    retired_rt: Segments,
    combined: Option<Ts>,
    assigned: usize,
}

/// One partition held, as the status page shows it.
#[derive(Debug, Clone)]
pub struct PartitionSnapshot {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The next offset to process.
    pub next_offset: i64,
    /// Messages not yet processed, where the end offset is known.
    pub lag: Option<i64>,
    /// Its watermark, once it has one.
    pub watermark: Option<Ts>,
    /// How long ago it last delivered an event (wall clock).
    pub last_event: Duration,
    /// With a store: how long its oldest unsaved work has waited for a checkpoint.
    pub unsaved_for: Option<Duration>,
    /// Requests pending in it.
    pub pending: u64,
    /// Responses waiting for their request in it.
    pub waiting: u64,
}

/// The shared live view (one per process).
pub struct Live {
    state: Mutex<State>,
    /// Messages processed, bumped per batch (fresher than the snapshots; the demo paces on it).
    processed: std::sync::atomic::AtomicU64,
    kafka_errors: std::sync::atomic::AtomicU64,
    /// Batches the consumer could not decode, and what librdkafka last said of one.
    undecodable: std::sync::atomic::AtomicU64,
    undecodable_reason: Mutex<String>,
    handed_over: std::sync::atomic::AtomicU64,
    /// The signed months as the sign-off watcher last read them (issue 31).
    signoffs: Mutex<Option<std::sync::Arc<SignoffsRead>>>,
    idle_timeout: Duration,
    /// When the service started.
    pub started: Instant,
    /// What the Kafka client says of its connections (and the store's reach, read with it).
    pub link: crate::ops::health::KafkaLink,
    /// The run ended on purpose and the view is served on (`demo --keep-serving`): nothing is
    /// read any more, so the connections are not judged and the figures are the final ones.
    finished: std::sync::atomic::AtomicBool,
}

/// A consistent read of the live view, for one scrape.
#[derive(Debug, Clone, Default)]
pub(crate) struct LiveSnapshot {
    /// Event accounting over every partition this process has held.
    pub stats: PipelineStats,
    /// Decided counts over every partition this process has held, all months.
    pub totals: MeasureCounts,
    /// Response times over every partition this process has held, by measure and region.
    pub rt: Segments,
    /// Seconds the oldest unsaved work has waited for a checkpoint (0 when everything
    /// processed is checkpointed).
    pub checkpoint_age: f64,
    /// Decided counts of the month containing the combined watermark, current partitions only.
    pub month: Option<(Month, MeasureCounts)>,
    /// The same month's counts by day.
    pub month_days: MeasureDays,
    /// The same month's misses by failure bucket.
    pub month_buckets: MeasureBuckets,
    /// The same month's requests the `opr` view's exemptions took out (not in the counts).
    pub month_exempted: MeasureCounts,
    /// Each partition held now.
    pub partitions: Vec<PartitionSnapshot>,
    /// Requests pending now.
    pub pending: u64,
    /// Responses waiting now.
    pub waiting: u64,
    /// The combined watermark (never goes back), if any partition has one.
    pub combined: Option<Ts>,
    /// Messages not yet processed, by partition, where the end offset is known.
    pub lag: Vec<(String, i32, i64)>,
    /// Partitions assigned now.
    pub assigned: usize,
    /// Errors librdkafka reported.
    pub kafka_errors: u64,
    /// Batches the consumer could not decode (each report; librdkafka fetches the batch again,
    /// so a stuck one counts on), and the last reason.
    pub undecodable: (u64, String),
    /// Each interface's availability timeline over the partitions held now (issue 30).
    pub availability: Vec<Timeline>,
    /// The newest availability event's `at` over them (`Ts::MIN`: none).
    pub availability_newest: Ts,
    /// The signed months and their restatements, as last read from the store (none without a
    /// store, or before the first read).
    pub signoffs: Option<std::sync::Arc<SignoffsRead>>,
    /// The connections to the brokers and the store.
    pub link: crate::ops::health::LinkState,
    /// Which stretches of each month the held partitions' valid events cover.
    pub coverage: crate::engine::aggregate::Coverage,
    /// The run has ended on purpose (`Live::set_finished`).
    pub finished: bool,
}

/// What the sign-off watcher read from the store.
#[derive(Debug, Clone, Default)]
pub struct SignoffsRead {
    /// Every signed month and view, its latest sign-off against its figures now.
    pub months: Vec<crate::signoff::SignedMonth>,
    /// Why the last read failed, if it did (the months are then those of the read before).
    pub error: Option<String>,
    /// When the months were read.
    pub read_at: Option<std::time::SystemTime>,
}

impl Live {
    /// An empty view; partitions silent for `idle_timeout` stop holding the watermark back.
    pub fn new(idle_timeout: Duration) -> Live {
        Live {
            state: Mutex::new(State::default()),
            processed: std::sync::atomic::AtomicU64::new(0),
            kafka_errors: std::sync::atomic::AtomicU64::new(0),
            undecodable: std::sync::atomic::AtomicU64::new(0),
            undecodable_reason: Mutex::new(String::new()),
            handed_over: std::sync::atomic::AtomicU64::new(0),
            signoffs: Mutex::new(None),
            idle_timeout,
            started: Instant::now(),
            link: Default::default(),
            finished: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The run has ended on purpose, its partitions' last views published: from now on the
    /// figures are final and nothing is read (`demo --keep-serving`).
    pub(crate) fn set_finished(&self) {
        self.finished
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere must not take the metrics down with it: the data is plain counts.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A partition's worker publishes its state.
    pub fn publish(&self, topic: &str, partition: i32, view: PartView) {
        let mut s = self.lock();
        s.parts.insert((topic.to_string(), partition), view);
    }

    /// The partition left this process: its counts stay in the counters, its state goes.
    pub(crate) fn retire(&self, topic: &str, partition: i32) {
        self.handed_over
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut s = self.lock();
        // What the partition told about time stays told: the combined watermark never goes back.
        Self::combine(&mut s, self.idle_timeout);
        let key = (topic.to_string(), partition);
        if let Some(v) = s.parts.remove(&key) {
            s.retired_stats.add(&v.stats);
            // Peaks are per live partition; a retired one holds nothing any more.
            s.retired_stats.peak_pending = 0;
            s.retired_stats.peak_waiting = 0;
            s.retired_stats.peak_state_bytes = 0;
            let t = v.totals();
            add_counts(&mut s.retired_totals, &t);
            add_rt(&mut s.retired_rt, &v.rt);
        }
        s.end_offsets.remove(&key);
    }

    /// Partitions assigned now.
    pub fn set_assigned(&self, n: usize) {
        self.lock().assigned = n;
    }

    /// librdkafka reported an error (broker down, request failed); it retries by itself.
    pub(crate) fn count_kafka_error(&self) {
        self.kafka_errors
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// The consumer could not decode a batch (`reason`: librdkafka's error).
    pub(crate) fn count_undecodable(&self, reason: String) {
        self.undecodable
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut r) = self.undecodable_reason.lock() {
            *r = reason;
        }
    }

    /// Undecodable batches reported so far, and the last reason.
    pub fn undecodable(&self) -> (u64, String) {
        let n = self.undecodable.load(std::sync::atomic::Ordering::Relaxed);
        let reason = self
            .undecodable_reason
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default();
        (n, reason)
    }

    /// The sign-off watcher's latest read.
    pub fn set_signoffs(&self, read: SignoffsRead) {
        if let Ok(mut s) = self.signoffs.lock() {
            *s = Some(std::sync::Arc::new(read));
        }
    }

    /// What the sign-off watcher last read (none before its first read, or without a store).
    pub fn signoffs(&self) -> Option<std::sync::Arc<SignoffsRead>> {
        self.signoffs.lock().ok().and_then(|s| s.clone())
    }

    /// Errors librdkafka reported so far.
    pub fn kafka_errors(&self) -> u64 {
        self.kafka_errors.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Partitions handed over (revoked) so far.
    pub fn handed_over(&self) -> u64 {
        self.handed_over.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A worker processed `n` more messages.
    pub(crate) fn add_processed(&self, n: u64) {
        self.processed
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// Messages processed so far, over every partition this process has held.
    pub fn events_processed(&self) -> u64 {
        self.processed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Partitions assigned now (for `/readyz`).
    pub fn snapshot_assigned(&self) -> usize {
        self.lock().assigned
    }

    /// Partitions assigned, and the messages of held partitions not yet processed (where their
    /// end offsets are known), for `/readyz`.
    pub(crate) fn readiness(&self) -> (usize, i64) {
        let s = self.lock();
        let lag = s
            .parts
            .iter()
            .filter_map(|((t, p), v)| {
                s.end_offsets
                    .get(&(t.clone(), *p))
                    .map(|end| (end - v.next_offset).max(0))
            })
            .sum();
        (s.assigned, lag)
    }

    /// The end (last stable) offset of a partition, from librdkafka's statistics.
    pub fn set_end_offset(&self, topic: &str, partition: i32, end: i64) {
        self.lock()
            .end_offsets
            .insert((topic.to_string(), partition), end);
    }

    /// The combined watermark: the minimum over partitions that delivered an event within the
    /// idle timeout (all silent: the maximum, as nothing holds time back); it never goes back.
    pub(crate) fn combined_watermark(&self) -> Option<Ts> {
        let mut s = self.lock();
        Self::combine(&mut s, self.idle_timeout)
    }

    fn combine(s: &mut State, idle: Duration) -> Option<Ts> {
        let active = s
            .parts
            .values()
            .filter(|p| p.watermark > Ts::MIN && p.last_event.elapsed() < idle)
            .map(|p| p.watermark)
            .min();
        let any = s
            .parts
            .values()
            .map(|p| p.watermark)
            .filter(|w| *w > Ts::MIN)
            .max();
        if let Some(now) = active.or(any) {
            s.combined = Some(s.combined.map_or(now, |c| c.max(now)));
        }
        s.combined
    }

    /// Everything a scrape needs, read under one lock. `month_of` maps the combined watermark to
    /// its month.
    pub(crate) fn snapshot(&self, month_of: impl FnOnce(Ts) -> Month) -> LiveSnapshot {
        let mut s = self.lock();
        let combined = Self::combine(&mut s, self.idle_timeout);
        let mut out = LiveSnapshot {
            stats: s.retired_stats.clone(),
            totals: s.retired_totals.clone(),
            rt: s.retired_rt.clone(),
            combined,
            assigned: s.assigned,
            kafka_errors: self.kafka_errors(),
            undecodable: self.undecodable(),
            signoffs: self.signoffs(),
            link: self.link.state(),
            finished: self.finished.load(std::sync::atomic::Ordering::Relaxed),
            ..LiveSnapshot::default()
        };
        let month = combined.map(month_of);
        let mut month_counts = MeasureCounts::new();
        for ((topic, partition), v) in &s.parts {
            out.stats.add(&v.stats);
            add_counts(&mut out.totals, &v.totals());
            add_rt(&mut out.rt, &v.rt);
            if let Some(at) = v.unsaved_since {
                out.checkpoint_age = out.checkpoint_age.max(at.elapsed().as_secs_f64());
            }
            out.pending += v.pending;
            out.waiting += v.waiting;
            if out.availability.len() < v.availability.len() {
                out.availability
                    .resize(v.availability.len(), Timeline::default());
            }
            for (a, b) in out.availability.iter_mut().zip(&v.availability) {
                a.merge(b);
            }
            out.availability_newest = out.availability_newest.max(v.availability_newest);
            out.coverage.merge(&v.coverage);
            if let Some(m) = month
                && let Some(c) = v.months.get(&m)
            {
                add_counts(&mut month_counts, c);
            }
            if let Some(m) = month
                && let Some(d) = v.days.get(&m)
            {
                add_days(&mut out.month_days, d);
            }
            if let Some(m) = month
                && let Some(b) = v.buckets.get(&m)
            {
                add_buckets(&mut out.month_buckets, b);
            }
            if let Some(m) = month
                && let Some(e) = v.exempted.get(&m)
            {
                add_counts(&mut out.month_exempted, e);
            }
            let lag = s
                .end_offsets
                .get(&(topic.clone(), *partition))
                .map(|end| (end - v.next_offset).max(0));
            if let Some(lag) = lag {
                out.lag.push((topic.clone(), *partition, lag));
            }
            out.partitions.push(PartitionSnapshot {
                topic: topic.clone(),
                partition: *partition,
                next_offset: v.next_offset,
                lag,
                watermark: (v.watermark > Ts::MIN).then_some(v.watermark),
                last_event: v.last_event.elapsed(),
                unsaved_for: v.unsaved_since.map(|t| t.elapsed()),
                pending: v.pending,
                waiting: v.waiting,
            });
        }
        out.month = month.map(|m| (m, month_counts));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(wm: i64, last_event: Instant) -> PartView {
        PartView {
            stats: PipelineStats::default(),
            pending: 0,
            waiting: 0,
            watermark: Ts(wm),
            last_event,
            next_offset: 0,
            months: BTreeMap::new(),
            days: BTreeMap::new(),
            buckets: BTreeMap::new(),
            exempted: BTreeMap::new(),
            rt: Segments::default(),
            unsaved_since: None,
            availability: Vec::new(),
            availability_newest: Ts::MIN,
            coverage: Default::default(),
        }
    }

    #[test]
    fn idle_partitions_stop_holding_the_watermark_back_and_it_never_goes_back() {
        let live = Live::new(Duration::from_millis(200));
        let now = Instant::now();
        live.publish("t", 0, view(100, now));
        live.publish("t", 1, view(50, now));
        assert_eq!(live.combined_watermark(), Some(Ts(50)));
        // Partition 1 falls silent: only partition 0 holds time now.
        let long_ago = now.checked_sub(Duration::from_secs(5)).unwrap_or(now);
        live.publish("t", 1, view(50, long_ago));
        live.publish("t", 0, view(120, Instant::now()));
        assert_eq!(live.combined_watermark(), Some(Ts(120)));
        // A partition that wakes up behind does not pull the combined watermark back.
        live.publish("t", 1, view(60, Instant::now()));
        assert_eq!(live.combined_watermark(), Some(Ts(120)));
    }

    #[test]
    fn retired_partitions_keep_their_counts() {
        let live = Live::new(Duration::from_secs(30));
        let mut v = view(10, Instant::now());
        v.stats.events = 7;
        v.months.insert(
            Month::new(2024, 4),
            vec![[
                Counts {
                    requests: 3,
                    within_target: 2,
                    succeeded: 3,
                    no_response: 0,
                },
                Counts::default(),
                Counts::default(),
            ]],
        );
        live.publish("t", 0, v);
        live.set_end_offset("t", 0, 10);
        live.retire("t", 0);
        let s = live.snapshot(|_| Month::new(2024, 4));
        assert_eq!(s.stats.events, 7);
        assert_eq!(s.totals[0][0].requests, 3);
        assert!(s.lag.is_empty());
        assert_eq!(s.month.map(|(_, c)| c.len()), Some(0));
    }
}
