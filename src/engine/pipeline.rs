//! The one place the synchronous core is driven: raw event → [`decode`] → [`Catalog`] →
//! [`Correlator`] → [`Aggregates`] and the dead-letter sink, with the per-event accounting of
//! SPEC §2 and §6 (`srv_events_total{type,result}`).
//!
//! Sources (files now, Kafka partitions later) own the reading and the watermark arithmetic;
//! they call [`Pipeline::process`] per event and [`Pipeline::advance`] when their watermark moves.

use std::io;
use std::sync::Arc;

use crate::engine::aggregate::{AggregateStats, Aggregates, Row, SavedRow};
use crate::engine::calendar::{Calendar, Month};
use crate::engine::catalog::Catalog;
use crate::engine::correlate::{
    Changes, Correlator, CorrelatorConfig, CorrelatorStats, Output, Pos, Req, Resp, SavedEntry,
    SavedWaiting, Verdict, key_of,
};
use crate::engine::definitions::Definitions;
use crate::engine::event::{DeadReason, Event, decode};
use crate::engine::time::Ts;

/// An event as [`check`] read it: valid, with the key of its id, or rejected with a reason.
#[derive(Debug)]
pub enum Checked<'a> {
    /// A valid event.
    Valid {
        /// The event.
        event: Event<'a>,
        /// [`key_of`] its id.
        key: u128,
    },
    /// An event that is dead-lettered without touching any state.
    Rejected {
        /// Its type, for accounting (a well-formed event stamped in the future keeps its own).
        ty: EventType,
        /// Why.
        reason: DeadReason,
    },
}

/// The stateless half of [`Pipeline::process`]: decodes and validates `raw`, rejects an event
/// stamped after `future_limit`, and hashes the id. Touches no state, so a reading thread can
/// run it ahead of the thread that owns the pipeline.
pub fn check(raw: &[u8], max_event_bytes: usize, future_limit: Option<Ts>) -> Checked<'_> {
    let event = match decode(raw, max_event_bytes) {
        Ok(e) => e,
        Err(reason) => {
            return Checked::Rejected {
                ty: EventType::Invalid,
                reason,
            };
        }
    };
    if future_limit.is_some_and(|limit| event.at() > limit) {
        let ty = match event {
            Event::Request(_) => EventType::Request,
            Event::Response(_) => EventType::Response,
        };
        return Checked::Rejected {
            ty,
            reason: DeadReason::FutureTimestamp,
        };
    }
    let key = key_of(event.id());
    Checked::Valid { event, key }
}

/// Kind of event, for accounting (`type` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// A valid request.
    Request = 0,
    /// A valid response.
    Response = 1,
    /// An event that failed validation.
    Invalid = 2,
}

impl EventType {
    /// All types, in label order.
    pub const ALL: [EventType; 3] = [EventType::Request, EventType::Response, EventType::Invalid];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        ["request", "response", "invalid"][self as usize]
    }
}

/// What became of an event (`result` label). Each event gets exactly one, by priority:
/// dead letter, duplicate, late (behind the watermark on arrival), unmeasured, accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventResult {
    /// Applied, on time.
    Accepted = 0,
    /// A copy that changed nothing.
    Duplicate = 1,
    /// Applied, but it arrived behind the watermark.
    Late = 2,
    /// A request no measure selects.
    Unmeasured = 3,
    /// Dead-lettered.
    DeadLetter = 4,
}

impl EventResult {
    /// All results, in label order.
    pub const ALL: [EventResult; 5] = [
        EventResult::Accepted,
        EventResult::Duplicate,
        EventResult::Late,
        EventResult::Unmeasured,
        EventResult::DeadLetter,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        ["accepted", "duplicate", "late", "unmeasured", "dead_letter"][self as usize]
    }
}

/// A dead letter on its way out.
#[derive(Debug)]
pub struct DeadLetter<'a> {
    /// Why.
    pub reason: DeadReason,
    /// `path:line` or `topic/partition/offset`.
    pub origin: String,
    /// The event's bytes.
    pub raw: &'a [u8],
    /// `raw` was rebuilt from stored fields.
    pub reconstructed: bool,
}

/// Where dead letters go. A failure to write one is fatal to the pipeline: bad input may never
/// disappear.
pub trait DeadLetterSink {
    /// Writes one dead letter.
    fn write(&mut self, dl: &DeadLetter<'_>) -> io::Result<()>;
}

/// A sink that keeps dead letters in memory (tests, `demo`).
#[derive(Debug, Default)]
pub struct VecDeadLetters(pub Vec<(DeadReason, String, Vec<u8>)>);

impl DeadLetterSink for VecDeadLetters {
    fn write(&mut self, dl: &DeadLetter<'_>) -> io::Result<()> {
        self.0.push((dl.reason, dl.origin.clone(), dl.raw.to_vec()));
        Ok(())
    }
}

/// The small part of a partition's checkpoint, stored whole each time.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SavedMeta {
    /// The correlator's watermark (ns).
    pub watermark: i64,
    /// The aggregates' watermark (ns), which decides final months.
    pub aggregate_watermark: i64,
    /// Interned SRVs, in id order.
    pub srvs: Vec<String>,
    /// Interned codes, in id order.
    pub codes: Vec<String>,
    /// Event counters.
    pub stats: PipelineStats,
    /// Decision counters.
    pub aggregate_stats: AggregateStats,
    /// Waiting responses evicted by the cap.
    pub evicted_waiting: u64,
}

/// A month × measure block as stored: the three regions' rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedBlock {
    /// Month.
    pub month: Month,
    /// Measure index in the definitions.
    pub measure: u16,
    /// North, central, south.
    pub regions: [SavedRow; 3],
}

/// What a checkpoint writes: the records, waiting responses and blocks changed since the
/// previous one, and the meta in full.
#[derive(Debug)]
pub struct Delta {
    /// Correlator records and waiting responses changed.
    pub changes: Changes,
    /// Blocks changed.
    pub blocks: Vec<SavedBlock>,
    /// Counters and watermarks.
    pub meta: SavedMeta,
    /// Records the correlator holds after it (for operators reading the store).
    pub records: u64,
    /// Waiting responses it holds after it.
    pub waiting: u64,
}

/// A partition's whole state as read back from a store.
#[derive(Debug)]
pub struct SavedPipeline {
    /// Counters and watermarks.
    pub meta: SavedMeta,
    /// Every record.
    pub entries: Vec<(u128, SavedEntry)>,
    /// Every waiting response.
    pub waiting: Vec<(u128, SavedWaiting)>,
    /// Evidence texts of pending records.
    pub texts: Vec<(u128, crate::engine::correlate::Evidence)>,
    /// Every block.
    pub blocks: Vec<SavedBlock>,
}

/// How a source names positions in dead-letter origins.
#[derive(Debug, Clone)]
pub struct SourceName {
    /// File path, or `topic/partition`.
    pub name: String,
    /// `:` for `path:line`, `/` for `topic/partition/offset`.
    pub separator: char,
}

/// Counts of what the pipeline saw.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PipelineStats {
    /// Events read (blank lines excluded).
    pub events: u64,
    /// Blank lines skipped.
    pub blank_lines: u64,
    /// Events by `[type][result]`.
    pub by_type_result: [[u64; 5]; 3],
    /// Dead letters by reason (SPEC order).
    pub dead_letters: [u64; 13],
    /// Most requests pending at once.
    pub peak_pending: u64,
    /// Most responses waiting at once.
    pub peak_waiting: u64,
    /// Most bytes of correlation state at once (sampled every 4,096 events).
    pub peak_state_bytes: u64,
}

impl PipelineStats {
    /// Adds another partition's counts (peaks add too: partitions hold their state at once).
    pub fn add(&mut self, o: &PipelineStats) {
        self.events += o.events;
        self.blank_lines += o.blank_lines;
        for (row, orow) in self.by_type_result.iter_mut().zip(&o.by_type_result) {
            for (n, on) in row.iter_mut().zip(orow) {
                *n += on;
            }
        }
        for (n, on) in self.dead_letters.iter_mut().zip(&o.dead_letters) {
            *n += on;
        }
        self.peak_pending += o.peak_pending;
        self.peak_waiting += o.peak_waiting;
        self.peak_state_bytes += o.peak_state_bytes;
    }

    /// Events of a type, whatever their result.
    pub fn of_type(&self, t: EventType) -> u64 {
        self.by_type_result[t as usize].iter().sum()
    }

    /// Events with a result, whatever their type.
    pub fn of_result(&self, r: EventResult) -> u64 {
        self.by_type_result.iter().map(|row| row[r as usize]).sum()
    }

    /// All dead letters.
    pub fn dead_letters_total(&self) -> u64 {
        self.dead_letters.iter().sum()
    }
}

/// What a pipeline needs to know of the configuration (`Config::pipeline` builds it): shared by
/// every pipeline of a process, so partitions share one copy of the definitions.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// The regulatory definitions.
    pub definitions: Arc<Definitions>,
    /// Months in the configured zone.
    pub calendar: Calendar,
    /// Longer events are `oversized`.
    pub max_event_bytes: usize,
    /// The correlator's horizons and caps.
    pub correlator: CorrelatorConfig,
}

/// Decode → correlate → aggregate for one correlation scope (a replay, or one partition).
pub struct Pipeline<S: DeadLetterSink> {
    max_event_bytes: usize,
    catalog: Catalog,
    correlator: Correlator,
    aggregates: Aggregates,
    sink: S,
    sources: Vec<SourceName>,
    out: Vec<Output>,
    stats: PipelineStats,
    sample_countdown: u32,
    future_limit: Option<Ts>,
}

impl<S: DeadLetterSink> Pipeline<S> {
    /// A pipeline over `sources` (indexed by [`Pos::source`]) writing dead letters to `sink`.
    pub fn new(cfg: &PipelineConfig, sources: Vec<SourceName>, sink: S) -> Pipeline<S> {
        let defs = cfg.definitions.clone();
        Pipeline {
            max_event_bytes: cfg.max_event_bytes,
            catalog: Catalog::new(defs.clone()),
            correlator: Correlator::new(cfg.correlator.clone()),
            aggregates: Aggregates::new(defs, cfg.calendar.clone()),
            sink,
            sources,
            out: Vec::with_capacity(64),
            stats: PipelineStats::default(),
            sample_countdown: 0,
            future_limit: None,
        }
    }

    /// Valid events stamped after `limit` are dead-lettered as `future_timestamp` (`run` sets it
    /// to the wall clock plus `max_future_skew` before each event; files have no such guard).
    pub fn set_future_limit(&mut self, limit: Option<Ts>) {
        self.future_limit = limit;
    }

    /// Dead-letters an event the source itself rejected (`wrong_partition`).
    pub fn reject(&mut self, reason: DeadReason, pos: Pos, raw: &[u8]) -> io::Result<()> {
        self.stats.events += 1;
        self.count(EventType::Invalid, EventResult::DeadLetter);
        self.dead(reason, pos, raw, false)
    }

    /// Counts a blank line.
    pub fn blank(&mut self) {
        self.stats.blank_lines += 1;
    }

    /// Processes one event; returns its `at` if it was valid (only valid events move watermarks).
    pub fn process(&mut self, raw: &[u8], pos: Pos) -> io::Result<Option<Ts>> {
        let checked = check(raw, self.max_event_bytes, self.future_limit);
        self.apply(checked, raw, pos)
    }

    /// What [`check`] needs to know: the size limit and the future limit.
    pub fn limits(&self) -> (usize, Option<Ts>) {
        (self.max_event_bytes, self.future_limit)
    }

    /// The stateful half of [`Pipeline::process`]: takes an event [`check`] has already read
    /// (perhaps on another thread, with [`Pipeline::limits`]); returns its `at` if it was valid.
    pub fn apply(&mut self, checked: Checked<'_>, raw: &[u8], pos: Pos) -> io::Result<Option<Ts>> {
        self.stats.events += 1;
        self.sample_countdown = self.sample_countdown.wrapping_sub(1);
        if self.sample_countdown == 0 {
            self.sample();
            self.sample_countdown = 4096;
        }
        let (event, key) = match checked {
            Checked::Valid { event, key } => (event, key),
            Checked::Rejected { ty, reason } => {
                self.count(ty, EventResult::DeadLetter);
                self.dead(reason, pos, raw, false)?;
                return Ok(None);
            }
        };
        let at = event.at();
        let wm = self.correlator.watermark();
        let (ty, verdict, measured) = match &event {
            Event::Request(r) => {
                let srv = self.catalog.srv(&r.srv);
                let req = Req {
                    key,
                    srv,
                    region: r.region,
                    provider: r.provider,
                    at,
                    pos,
                };
                let measured = !self.catalog.rules(srv, r.provider).rules.is_empty();
                let who = measured.then_some((r.user.as_deref(), r.device.as_deref()));
                let v = self
                    .correlator
                    .request_with(req, &r.id, who, &self.catalog, &mut self.out);
                (EventType::Request, v, measured)
            }
            Event::Response(r) => {
                let code = self.catalog.code(&r.code);
                let resp = Resp { key, code, at, pos };
                let v = self
                    .correlator
                    .response(resp, raw, &self.catalog, &mut self.out);
                (EventType::Response, v, true)
            }
        };
        match verdict {
            Verdict::Accepted => {
                let result = if at < wm {
                    EventResult::Late
                } else if !measured {
                    EventResult::Unmeasured
                } else {
                    EventResult::Accepted
                };
                self.count(ty, result);
            }
            Verdict::Duplicate => self.count(ty, EventResult::Duplicate),
            Verdict::Waiting => {}
            Verdict::Dead(reason) => {
                self.count(ty, EventResult::DeadLetter);
                self.dead(reason, pos, raw, false)?;
            }
        }
        self.drain()?;
        Ok(Some(at))
    }

    /// Moves the watermark: decides, expires and orphans what it passed.
    pub fn advance(&mut self, watermark: Ts) -> io::Result<()> {
        self.correlator.advance(watermark, &mut self.out);
        self.aggregates.set_watermark(self.correlator.watermark());
        self.drain()
    }

    /// End of input: every pending request is decided, every waiting response is an orphan.
    pub fn finish(&mut self) -> io::Result<()> {
        self.sample();
        while !self.correlator.finish(&mut self.out, 65_536) {
            self.drain()?;
        }
        self.drain()
    }

    fn count(&mut self, ty: EventType, result: EventResult) {
        self.stats.by_type_result[ty as usize][result as usize] += 1;
    }

    fn dead(
        &mut self,
        reason: DeadReason,
        pos: Pos,
        raw: &[u8],
        reconstructed: bool,
    ) -> io::Result<()> {
        self.stats.dead_letters[reason.index()] += 1;
        let origin = match self.sources.get(pos.source() as usize) {
            Some(s) => format!("{}{}{}", s.name, s.separator, pos.n()),
            None => format!("source{}:{}", pos.source(), pos.n()),
        };
        self.sink.write(&DeadLetter {
            reason,
            origin,
            raw,
            reconstructed,
        })
    }

    fn drain(&mut self) -> io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let mut out = std::mem::take(&mut self.out);
        let mut result = Ok(());
        for o in out.drain(..) {
            match o {
                Output::Decided(d, text) => {
                    self.aggregates
                        .apply_with(&d, &self.catalog, text.as_deref())
                }
                Output::Revised { old, new } => self.aggregates.revise(&old, &new, &self.catalog),
                Output::Settled { verdict, behind } => {
                    let r = match verdict {
                        Verdict::Duplicate => EventResult::Duplicate,
                        _ if behind => EventResult::Late,
                        _ => EventResult::Accepted,
                    };
                    self.count(EventType::Response, r);
                }
                Output::Dead(d) => {
                    if !d.reconstructed {
                        let ty = if d.is_request {
                            EventType::Request
                        } else {
                            EventType::Response
                        };
                        self.count(ty, EventResult::DeadLetter);
                    }
                    if result.is_ok() {
                        result = self.dead(d.reason, d.pos, &d.raw, d.reconstructed);
                    }
                }
            }
        }
        self.out = out;
        result
    }

    fn sample(&mut self) {
        let s = &mut self.stats;
        s.peak_pending = s.peak_pending.max(self.correlator.pending() as u64);
        s.peak_waiting = s.peak_waiting.max(self.correlator.waiting() as u64);
        s.peak_state_bytes = s.peak_state_bytes.max(self.correlator.state_bytes() as u64);
    }

    /// The watermark the correlator has reached.
    pub fn watermark(&self) -> Ts {
        self.correlator.watermark()
    }

    /// Counts so far.
    pub fn stats(&self) -> &PipelineStats {
        &self.stats
    }

    /// The correlator (for gauges: pending, waiting).
    pub fn correlator(&self) -> &Correlator {
        &self.correlator
    }

    /// The aggregates so far.
    pub fn aggregates(&self) -> &Aggregates {
        &self.aggregates
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Starts recording what changes, for [`Pipeline::take_delta`] (a checkpointed `run`).
    pub fn track_changes(&mut self) {
        self.correlator.track_changes();
        self.aggregates.track_changes();
    }

    /// What changed since the last call: the delta a checkpoint writes. With `full`, the
    /// correlator part is a whole snapshot instead (it replaces the partition's state log);
    /// month blocks are always only the changed ones.
    pub fn take_delta(&mut self, full: bool) -> Result<Delta, String> {
        let changes = if full {
            self.correlator.take_snapshot()
        } else {
            self.correlator.take_changes()
        };
        let mut blocks = Vec::new();
        for (month, measure, b) in self.aggregates.take_changes() {
            let [n, c, s] = &b.regions;
            blocks.push(SavedBlock {
                month,
                measure,
                regions: [n.save()?, c.save()?, s.save()?],
            });
        }
        Ok(Delta {
            changes,
            blocks,
            meta: self.meta(),
            records: self.correlator.records() as u64,
            waiting: self.correlator.waiting() as u64,
        })
    }

    /// About how many bytes a full snapshot of the correlator takes in the state log (records
    /// are 52 bytes; a waiting response is counted at 128 with its raw bytes).
    pub fn snapshot_bytes(&self) -> u64 {
        let c = &self.correlator;
        c.records() as u64 * 52 + c.waiting() as u64 * 128
    }

    /// The small, always-complete part of a checkpoint.
    pub fn meta(&self) -> SavedMeta {
        SavedMeta {
            watermark: self.correlator.watermark().0,
            aggregate_watermark: self.aggregates.watermark().0,
            srvs: self.catalog.srv_names(),
            codes: self.catalog.code_names(),
            stats: self.stats.clone(),
            aggregate_stats: self.aggregates.stats(),
            evicted_waiting: self.correlator.stats().evicted_waiting,
        }
    }

    /// A pipeline rebuilt from a checkpoint (with change tracking on).
    pub fn restore(
        cfg: &PipelineConfig,
        sources: Vec<SourceName>,
        sink: S,
        saved: SavedPipeline,
    ) -> Result<Pipeline<S>, String> {
        let mut p = Pipeline::new(cfg, sources, sink);
        let defs = p.catalog.definitions().clone();
        let meta = saved.meta;
        p.catalog = Catalog::restore(defs.clone(), &meta.srvs, &meta.codes);
        let ccfg = cfg.correlator.clone();
        for (_, e) in &saved.entries {
            if e.srv as usize >= meta.srvs.len()
                || (e.fin_at.is_some() && e.fin_code as usize >= meta.codes.len())
            {
                return Err("a stored request names an SRV or code the checkpoint lacks".into());
            }
        }
        if let Some((_, w)) = saved
            .waiting
            .iter()
            .find(|(_, w)| w.code as usize >= meta.codes.len())
        {
            return Err(format!(
                "a stored waiting response has code id {} the checkpoint lacks",
                w.code
            ));
        }
        p.correlator = Correlator::restore(
            ccfg,
            Ts(meta.watermark),
            saved.entries,
            saved.waiting,
            saved.texts,
            CorrelatorStats {
                evicted_waiting: meta.evicted_waiting,
            },
            &p.catalog,
        );
        for b in saved.blocks {
            if b.measure as usize >= defs.measures.len() {
                return Err(format!(
                    "a stored block names measure {} of {}",
                    b.measure,
                    defs.measures.len()
                ));
            }
            let [n, c, s] = &b.regions;
            p.aggregates.restore_block(
                b.month,
                b.measure,
                [Row::restore(n)?, Row::restore(c)?, Row::restore(s)?],
            );
        }
        p.aggregates.restore_stats(meta.aggregate_stats);
        p.aggregates.set_watermark(Ts(meta.aggregate_watermark));
        p.stats = meta.stats;
        p.track_changes();
        Ok(p)
    }

    /// Takes the pipeline apart after [`Pipeline::finish`].
    pub fn into_parts(self) -> (Aggregates, PipelineStats, S) {
        (self.aggregates, self.stats, self.sink)
    }
}
