//! The pipeline of one correlation scope (a replay, or one partition): raw event → check →
//! catalog → correlator → aggregates and the dead-letter sink, counting every event once.

use std::io;
use std::sync::Arc;

use crate::engine::aggregate::Aggregates;
use crate::engine::calendar::Calendar;
use crate::engine::catalog::Catalog;
use crate::engine::correlate::{Correlator, CorrelatorConfig, Output, Pos, Req, Resp, Verdict};
use crate::engine::definitions::Definitions;
use crate::engine::event::{Availability, DeadReason, Event};
use crate::engine::time::Ts;

use super::accounting::{EventResult, EventType, PipelineStats};
use super::check::{Checked, check};
use super::deadletter::{DeadLetter, DeadLetterSink, SourceName};
use super::misses::{MissSink, Missed};

/// Offers each miss of a decision to `sink`, with its evidence text.
fn stream_misses(
    sink: &dyn MissSink,
    agg: &mut Aggregates,
    cat: &Catalog,
    d: &crate::engine::correlate::Decision,
    text: &str,
) -> io::Result<()> {
    let month = agg.month_of(d.due);
    let defs = agg.definitions();
    for rule in cat.rules(d.srv, d.provider).of(d.future_dated()) {
        let o = crate::engine::aggregate::outcome(rule, d, cat);
        if let (Some(bucket), Some(m)) = (o.bucket, defs.measures.get(rule.measure as usize)) {
            sink.missed(&Missed {
                month,
                measure: &m.id,
                region: d.region,
                bucket,
                evidence: text,
            })?;
        }
    }
    Ok(())
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
    /// Types of line counted and otherwise left alone (`input.ignore_types`).
    pub ignore_types: Arc<[String]>,
    /// The correlator's horizons and caps.
    pub correlator: CorrelatorConfig,
    /// The exemption register the views are computed under.
    pub register: Arc<crate::engine::exemption::Register>,
    /// Missed requests kept per row and failure bucket (`[evidence] sample`).
    pub evidence_sample: usize,
    /// Where every missed request goes as it is decided (`[evidence] sample = "all"`).
    pub misses: Option<Arc<dyn MissSink>>,
    /// A month with a longer gap between valid events is incomplete (`time.coverage_max_gap`).
    pub coverage_max_gap: crate::engine::time::Dur,
}

/// Decode → correlate → aggregate for one correlation scope (a replay, or one partition).
pub struct Pipeline<S: DeadLetterSink> {
    pub(super) max_event_bytes: usize,
    /// Where every miss goes as decided, when asked.
    pub(super) misses: Option<Arc<dyn MissSink>>,
    pub(super) ignore_types: Arc<[String]>,
    pub(super) catalog: Catalog,
    pub(super) correlator: Correlator,
    pub(super) aggregates: Aggregates,
    pub(super) sink: S,
    pub(super) sources: Vec<SourceName>,
    pub(super) out: Vec<Output>,
    pub(super) stats: PipelineStats,
    pub(super) sample_countdown: u32,
    pub(super) future_limit: Option<Ts>,
    /// `max_waiting_responses`, for the message when it is reached.
    pub(super) waiting_cap: usize,
    /// The evictions' current burst: the total evicted before it began, and the event count at
    /// its latest eviction.
    pub(super) burst: Option<(u64, u64)>,
}

/// Events without an eviction that end a burst of them (the burst's count is then logged).
const QUIET_EVENTS: u64 = 100_000;

impl<S: DeadLetterSink> Pipeline<S> {
    /// A pipeline over `sources` (indexed by [`Pos::source`]) writing dead letters to `sink`.
    pub fn new(cfg: &PipelineConfig, sources: Vec<SourceName>, sink: S) -> Pipeline<S> {
        let defs = cfg.definitions.clone();
        Pipeline {
            max_event_bytes: cfg.max_event_bytes,
            ignore_types: cfg.ignore_types.clone(),
            catalog: Catalog::new(defs.clone()),
            correlator: Correlator::new(cfg.correlator.clone()),
            aggregates: Aggregates::new(defs, cfg.calendar.clone())
                .with_register(cfg.register.clone())
                .with_sample_cap(cfg.evidence_sample)
                .with_coverage_gap(cfg.coverage_max_gap),
            misses: cfg.misses.clone(),
            sink,
            sources,
            out: Vec::with_capacity(64),
            stats: PipelineStats::default(),
            sample_countdown: 0,
            future_limit: None,
            waiting_cap: cfg.correlator.max_waiting_responses,
            burst: None,
        }
    }

    /// Valid events stamped after `limit` are dead-lettered as `future_timestamp` (`run` sets it
    /// to the wall clock plus `max_future_skew` before each event; files have no such guard).
    pub(crate) fn set_future_limit(&mut self, limit: Option<Ts>) {
        self.future_limit = limit;
    }

    /// Dead-letters an event the source itself rejected (`wrong_partition`).
    pub fn reject(&mut self, reason: DeadReason, pos: Pos, raw: &[u8]) -> io::Result<()> {
        self.stats.events += 1;
        self.count(EventType::Invalid, EventResult::DeadLetter);
        self.dead(reason, pos, raw, false)
    }

    /// Counts events the source's clock held back (they did not move its watermark).
    pub(crate) fn count_watermark_outliers(&mut self, n: u64) {
        self.stats.watermark_outliers += n;
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
        // A type the configuration says to leave alone (another kind of message on a shared
        // topic): counted, no dead letter, no watermark. Only unknown types pay for the look.
        if let Checked::Rejected { reason, .. } = &checked
            && let Some(t) = crate::engine::event::ignored_type(raw, *reason, &self.ignore_types)
        {
            *self
                .stats
                .ignored_by_type
                .entry(t.into_owned())
                .or_insert(0) += 1;
            return Ok(None);
        }
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
        // Every valid event shows the feed covered its instant (issue 33's `complete`).
        self.aggregates.record_event(at);
        let wm = self.correlator.watermark();
        if let Event::Availability(a) = &event {
            return self.availability(a, pos, raw, wm);
        }
        let (ty, verdict, measured) = match &event {
            Event::Request(r) => {
                let srv = self.catalog.srv(&r.srv);
                let due = r.execute_at.unwrap_or(at);
                let measured = !self.catalog.rules(srv, r.provider).of(due > at).is_empty();
                // Users are counted per measure (`users.csv`): one lookup for a measured request.
                let user = if measured {
                    self.catalog.user(r.user.as_deref())
                } else {
                    0
                };
                let req = Req {
                    key,
                    srv,
                    region: r.region,
                    provider: r.provider,
                    at,
                    due,
                    user,
                    pos,
                };
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
            Event::Availability(_) => return Ok(Some(at)),
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
        let evicted = self.correlator.stats().evicted_waiting;
        if evicted != self.stats.evicted_waiting {
            self.evictions(evicted);
        } else if let Some((_, last)) = self.burst
            && self.stats.events - last >= QUIET_EVENTS
        {
            self.end_burst();
        }
        Ok(Some(at))
    }

    /// An availability event: an interface the definitions know goes into its timeline (a
    /// repeat is a duplicate; one behind the watermark is late, and still lands where it
    /// belongs); any other is `unknown_interface`. Valid ones move watermarks like SRV events.
    fn availability(
        &mut self,
        a: &Availability<'_>,
        pos: Pos,
        raw: &[u8],
        wm: Ts,
    ) -> io::Result<Option<Ts>> {
        let Some(i) = self
            .catalog
            .definitions()
            .interfaces
            .iter()
            .position(|i| i.id == a.interface)
        else {
            self.count(EventType::Invalid, EventResult::DeadLetter);
            self.dead(DeadReason::UnknownInterface, pos, raw, false)?;
            return Ok(None);
        };
        let result = if !self.aggregates.record_availability(i, a.at, a.state) {
            EventResult::Duplicate
        } else if a.at < wm {
            EventResult::Late
        } else {
            EventResult::Accepted
        };
        self.count(EventType::Availability, result);
        Ok(Some(a.at))
    }

    /// The waiting-response cap evicted responses (SPEC §2): counted, and logged once when a
    /// burst of evictions begins; [`Pipeline::end_burst`] logs its count.
    fn evictions(&mut self, total: u64) {
        if self.burst.is_none() {
            tracing::warn!(
                scope = self.scope(),
                max_waiting_responses = self.waiting_cap,
                "the waiting-response cap is reached: the oldest waiting responses become \
                 orphan_response early, although their requests may still come (raise \
                 time.max_waiting_responses, or look for a source whose requests stopped)"
            );
            self.burst = Some((self.stats.evicted_waiting, self.stats.events));
        }
        if let Some(b) = &mut self.burst {
            b.1 = self.stats.events;
        }
        self.stats.evicted_waiting = total;
    }

    /// A burst of evictions is over (quiet for a while, or the input ended): its count.
    fn end_burst(&mut self) {
        if let Some((before, _)) = self.burst.take() {
            tracing::warn!(
                scope = self.scope(),
                evicted = self.stats.evicted_waiting - before,
                evicted_in_all = self.stats.evicted_waiting,
                "waiting responses dead-lettered early by the waiting-response cap"
            );
        }
    }

    /// The source a message names (a file, or a topic's partition).
    fn scope(&self) -> &str {
        self.sources.first().map_or("", |s| s.name.as_str())
    }

    /// Moves the watermark: decides, expires and orphans what it passed.
    pub fn advance(&mut self, watermark: Ts) -> io::Result<()> {
        self.correlator.advance(watermark, &mut self.out);
        // What this advance decided was due before it: counted under the watermark it passed,
        // so only a request decided after its month was already final is a revision.
        self.drain()?;
        self.aggregates.set_watermark(self.correlator.watermark());
        Ok(())
    }

    /// End of input: every pending request is decided, every waiting response is an orphan.
    pub fn finish(&mut self) -> io::Result<()> {
        self.sample();
        while !self.correlator.finish(&mut self.out, 65_536) {
            self.drain()?;
        }
        self.drain()?;
        self.end_burst();
        Ok(())
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
                    if let (Some(sink), Some(t)) = (&self.misses, text.as_deref())
                        && result.is_ok()
                    {
                        result = stream_misses(&**sink, &mut self.aggregates, &self.catalog, &d, t);
                    }
                    self.aggregates
                        .apply_with(&d, &self.catalog, text.as_deref())
                }
                Output::Revised(r) => self.aggregates.revise(&r.old, &r.new, &self.catalog),
                Output::Settled { verdict, behind } => {
                    let r = match verdict {
                        Verdict::Duplicate => EventResult::Duplicate,
                        _ if behind => EventResult::Late,
                        _ => EventResult::Accepted,
                    };
                    self.count(EventType::Response, r);
                }
                Output::Dead(d) => {
                    let ty = if d.is_request {
                        EventType::Request
                    } else {
                        EventType::Response
                    };
                    if let Some(was) = d.displaced {
                        // Its line was counted when it arrived; it has one result, and now it
                        // is this dead letter.
                        let counted = if was.late {
                            EventResult::Late
                        } else if !was.measured {
                            EventResult::Unmeasured
                        } else {
                            EventResult::Accepted
                        };
                        let n = &mut self.stats.by_type_result[ty as usize][counted as usize];
                        *n = n.saturating_sub(1);
                    }
                    self.count(ty, EventResult::DeadLetter);
                    if result.is_ok() {
                        result = self.dead(d.reason, d.pos, &d.raw, d.displaced.is_some());
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

    /// Adds what the register exempts of requests decided elsewhere (before a restored
    /// checkpoint).
    pub(crate) fn add_exempted(&mut self, more: &crate::engine::aggregate::Exempted) {
        self.aggregates.add_exempted(more);
    }

    /// The aggregates so far.
    pub fn aggregates(&self) -> &Aggregates {
        &self.aggregates
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Takes the pipeline apart after [`Pipeline::finish`].
    pub fn into_parts(self) -> (Aggregates, PipelineStats, S) {
        (self.aggregates, self.stats, self.sink)
    }
}
