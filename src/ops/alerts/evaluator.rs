//! The evaluator: a synchronous core that samples the live counters, decides which alerts hold
//! (a region's month-to-date RPL below TPL or MPL, a fast or slow burn of the month's error
//! budget, a measure gone silent, a stalled consumer, a stuck watermark, rising dead letters,
//! an interface down or below SUM1's TPL, a signed month restated, and the connections: no
//! broker, a refusal, no partition, the store gone), and reports each change. [`Evaluator::step`] takes the time it is given, so tests drive it
//! through hours of windows in microseconds.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use super::kinds::{AlertKey, AlertKind, REGIONS, alert_regions};
use crate::config::settings::AlertSettings;
use crate::engine::calendar::Calendar;
use crate::engine::definitions::{Definitions, Measure};
use crate::engine::domain::Basis;
use crate::engine::time::{Dur, Ts, wall_rfc3339};
use crate::ops::live::{LiveSnapshot, MeasureCounts};
use crate::ops::objective::{hits_to_target, project_month_end};

/// An alert that holds now.
#[derive(Debug, Clone, PartialEq)]
pub struct Active {
    /// What, where.
    pub key: AlertKey,
    /// One line for a person.
    pub summary: String,
    /// When its condition started to hold (wall clock).
    pub since: SystemTime,
    /// When it fired (its condition held for `alerts.for`), if it has.
    pub fired: Option<SystemTime>,
}

/// A change the evaluator reports.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Transition {
    /// An alert fired.
    Fired(Active),
    /// A fired alert's condition no longer holds.
    Resolved(Active, SystemTime),
}

/// What the evaluator publishes for `/metrics`: the alerts firing and each measure and
/// region's projection.
#[derive(Debug, Default, Clone)]
pub struct AlertBoard {
    /// Keys of the alerts firing.
    pub firing: Vec<AlertKey>,
    /// Projected month-end RPL (percent), by (measure, region index 0–3).
    pub projected: BTreeMap<(usize, usize), f64>,
    /// Notifications Alertmanager did not accept (each retried).
    pub notify_errors: u64,
    /// The firing alerts as a person reads them: `NAME (severity): summary`.
    pub summaries: Vec<String>,
    /// The firing alerts, whole (since when, and when they fired).
    pub fired: Vec<Active>,
    /// Evaluations done so far: whoever needs a board judged after some moment waits for this
    /// to move on twice (the first may have started before it).
    pub evaluations: u64,
}

/// One sample of the counters.
#[derive(Debug, Clone)]
struct Sample {
    at: Instant,
    /// Requests and hits over all months by measure, region 0–3.
    requests: Vec<[u64; 4]>,
    hits: Vec<[u64; 4]>,
    /// Events read (the pipeline's progress).
    events: u64,
    dead: u64,
    /// Waiting responses the cap dead-lettered early.
    evicted: u64,
    watermark: Option<Ts>,
    lag: i64,
    /// Each partition held: (topic, partition) → (next offset, lag if known).
    offsets: BTreeMap<(String, i32), (i64, Option<i64>)>,
    /// Undecodable batches reported so far, and the last reason.
    undecodable: (u64, String),
}

/// The evaluator's state: samples covering the longest window, and the alerts pending/firing.
pub struct Evaluator {
    cfg: AlertSettings,
    defs: Arc<Definitions>,
    calendar: Calendar,
    history: VecDeque<Sample>,
    pub(super) active: BTreeMap<AlertKey, Active>,
    /// The interfaces' figures (issue 30), when availability is evaluated.
    interfaces: Option<crate::ops::interfaces::Interfaces>,
}

fn by_region(
    c: &MeasureCounts,
    basis_of: impl Fn(usize) -> Basis,
) -> (Vec<[u64; 4]>, Vec<[u64; 4]>) {
    let mut req = Vec::with_capacity(c.len());
    let mut hit = Vec::with_capacity(c.len());
    for (m, rs) in c.iter().enumerate() {
        let (mut r4, mut h4) = ([0u64; 4], [0u64; 4]);
        for (i, x) in rs.iter().enumerate() {
            let h = x.hits(basis_of(m));
            r4[i] = x.requests;
            h4[i] = h;
            r4[3] += x.requests;
            h4[3] += h;
        }
        req.push(r4);
        hit.push(h4);
    }
    (req, hit)
}

fn at(v: &[[u64; 4]], m: usize, r: usize) -> u64 {
    v.get(m).map_or(0, |x| x[r])
}

impl Evaluator {
    /// An evaluator for these definitions, months in `calendar`'s zone.
    pub(crate) fn new(cfg: AlertSettings, defs: Arc<Definitions>, calendar: Calendar) -> Evaluator {
        Evaluator {
            cfg,
            defs,
            calendar,
            history: VecDeque::new(),
            active: BTreeMap::new(),
            interfaces: None,
        }
    }

    /// The calendar its months are in.
    pub fn calendar(&self) -> &Calendar {
        &self.calendar
    }

    /// This evaluator judging the interfaces too: `SrvInterfaceDown` and
    /// `SrvInterfaceBelowTarget`.
    pub(crate) fn with_interfaces(
        mut self,
        interfaces: crate::ops::interfaces::Interfaces,
    ) -> Evaluator {
        self.interfaces = Some(interfaces);
        self
    }

    /// An interface down for longer than `alerts.interface_down_for` (event time: from its
    /// outage's first `down` to what is known), and a month-to-date availability below SUM1's
    /// TPL.
    fn interface_conditions(&self, snap: &LiveSnapshot, holding: &mut BTreeMap<AlertKey, String>) {
        let Some(ifs) = &self.interfaces else {
            return;
        };
        let limit = self.cfg.interface_down_for;
        for i in ifs.now(&self.defs, &self.calendar, snap) {
            let Some(ii) = self.defs.interfaces.iter().position(|x| x.id == i.id) else {
                continue;
            };
            if let Some(since) = i.down_since
                && i.known_to.since(since) >= limit
            {
                holding.insert(
                    (AlertKind::InterfaceDown, Some(ii), None),
                    format!(
                        "{} down since {} ({} complete minutes this month)",
                        i.id,
                        since.to_rfc3339_exact(),
                        i.figures.down_minutes
                    ),
                );
            }
            if let (Some(p), Some(t)) = (i.percent(), i.target)
                && p < t
            {
                holding.insert(
                    (AlertKind::InterfaceBelowTarget, Some(ii), None),
                    format!(
                        "{} at {:.4} % in {} so far, below SUM1's TPL of {t} % ({} minutes \
                         down, {} exempted)",
                        i.id, p, i.month, i.figures.down_minutes, i.figures.exempted_minutes
                    ),
                );
            }
        }
    }

    fn longest_window(&self) -> Duration {
        let c = &self.cfg;
        [
            c.fast_burn_windows.0,
            c.slow_burn_windows.0,
            Dur(c.no_data_window.0 + c.no_data_lookback.0),
            c.stall_window,
            c.watermark_stuck_window,
            c.dead_letter_window,
        ]
        .into_iter()
        .max()
        .unwrap_or(c.slow_burn_windows.0)
        .to_std()
    }

    /// The newest sample at least `w` older than the latest (or the oldest there is, when the
    /// history is shorter: a partial window, as Prometheus's `increase` over a young series),
    /// and whether the history covers the whole window.
    fn back(&self, w: Duration) -> Option<(&Sample, bool)> {
        let last = self.history.back()?;
        let target = last.at.checked_sub(w)?;
        match self.history.iter().rev().find(|s| s.at <= target) {
            Some(s) => Some((s, true)),
            None => self.history.front().map(|s| (s, false)),
        }
    }

    /// Takes a sample at `now` (wall clock `wall`) and returns the alerts that fired or resolved.
    pub(crate) fn step(
        &mut self,
        snap: &LiveSnapshot,
        now: Instant,
        wall: SystemTime,
    ) -> (Vec<Transition>, AlertBoard) {
        let (holding, board) = if snap.assigned == 0 && !snap.finished {
            // Holding no partition (starting, between rebalances, stopping, or no broker): the
            // figures say nothing, so the other alerts stay as they are rather than resolve; the
            // pipeline's health is judged all the same (this is when it matters most). A run that
            // ended on purpose is judged on its last figures, which are final.
            let mut holding: BTreeMap<AlertKey, String> = self
                .active
                .iter()
                .filter(|(k, _)| !k.0.is_connection())
                .map(|(k, a)| (*k, a.summary.clone()))
                .collect();
            health_conditions(snap, &mut holding);
            (holding, AlertBoard::default())
        } else {
            self.sample(snap, now);
            self.conditions(snap)
        };
        let mut out = Vec::new();
        // Conditions that stopped holding: resolved if they had fired, forgotten if pending.
        let gone: Vec<AlertKey> = self
            .active
            .keys()
            .filter(|k| !holding.contains_key(*k))
            .copied()
            .collect();
        for k in gone {
            if let Some(a) = self.active.remove(&k)
                && a.fired.is_some()
            {
                out.push(Transition::Resolved(a, wall));
            }
        }
        for (k, summary) in holding {
            let hold = k.0.hold(&self.cfg).to_std();
            let a = self.active.entry(k).or_insert_with(|| Active {
                key: k,
                summary: summary.clone(),
                since: wall,
                fired: None,
            });
            a.summary = summary;
            if a.fired.is_none() && wall.duration_since(a.since).unwrap_or(Duration::ZERO) >= hold {
                a.fired = Some(wall);
                out.push(Transition::Fired(a.clone()));
            }
        }
        let fired: Vec<&Active> = self.active.values().filter(|a| a.fired.is_some()).collect();
        let board = AlertBoard {
            firing: fired.iter().map(|a| a.key).collect(),
            summaries: fired
                .iter()
                .map(|a| format!("{} ({}): {}", a.key.0.name(), a.key.0.severity(), a.summary))
                .collect(),
            fired: fired.iter().map(|a| (*a).clone()).collect(),
            ..board
        };
        (out, board)
    }

    /// Keeps a sample of the counters at `now`, dropping those older than the longest window.
    fn sample(&mut self, snap: &LiveSnapshot, now: Instant) {
        let basis = |m: usize| self.defs.measures.get(m).map_or(Basis::Trt, |x| x.basis);
        let (requests, hits) = by_region(&snap.totals, basis);
        let lag = snap.lag.iter().map(|(_, _, l)| *l).sum();
        self.history.push_back(Sample {
            at: now,
            requests,
            hits,
            // Progress is every line processed: lines of an ignored type are progress too (a
            // topic of alerts alone is not a stalled consumer).
            events: snap.stats.events + snap.stats.ignored_by_type.values().sum::<u64>(),
            dead: snap.stats.dead_letters.iter().sum(),
            evicted: snap.stats.evicted_waiting,
            watermark: snap.combined,
            lag,
            offsets: snap
                .partitions
                .iter()
                .map(|p| ((p.topic.clone(), p.partition), (p.next_offset, p.lag)))
                .collect(),
            undecodable: snap.undecodable.clone(),
        });
        let keep = self.longest_window() + self.cfg.interval.to_std() * 2;
        while self
            .history
            .front()
            .is_some_and(|s| now.saturating_duration_since(s.at) > keep)
        {
            self.history.pop_front();
        }
    }

    /// The alerts whose conditions hold now, with their summaries, and the projections.
    fn conditions(&self, snap: &LiveSnapshot) -> (BTreeMap<AlertKey, String>, AlertBoard) {
        let mut holding = BTreeMap::new();
        let mut board = AlertBoard::default();
        let Some(last) = self.history.back() else {
            return (holding, board);
        };
        let basis = |m: usize| self.defs.measures.get(m).map_or(Basis::Trt, |x| x.basis);
        let month = snap
            .month
            .as_ref()
            .map(|(m, counts)| (*m, by_region(counts, basis)));
        // Event-time share of the month gone, for the projection.
        let elapsed = match (&month, snap.combined) {
            (Some((m, _)), Some(wm)) => self.calendar.share_gone(*m, wm),
            _ => None,
        };
        for (mi, measure) in self.defs.measures.iter().enumerate() {
            for &ri in alert_regions(measure.regional) {
                let place = Where {
                    mi,
                    ri,
                    label: format!("{} {}", measure.id, REGIONS[ri]),
                };
                if let Some((_, (mreq, mhit))) = &month {
                    let counts = (at(mreq, mi, ri), at(mhit, mi, ri));
                    if let Some(f) = elapsed {
                        self.project(last, &place, counts, f, &mut board);
                    }
                    self.below_levels(measure, &place, counts, &mut holding);
                }
                if !snap.finished {
                    self.budget_burns(measure, last, &place, &mut holding);
                    self.no_data(last, &place, &mut holding);
                }
            }
        }
        // A run that ended on purpose reads nothing: its figures are judged (they are final),
        // its progress and connections are not.
        if !snap.finished {
            self.pipeline_conditions(last, &mut holding);
            health_conditions(snap, &mut holding);
        }
        self.interface_conditions(snap, &mut holding);
        signoff_conditions(snap, &mut holding);
        (holding, board)
    }

    /// Requests and hits of measure `m`, region `r` over the window `w` back from `last`, and
    /// whether the history covers all of it.
    fn window(&self, last: &Sample, w: Duration, m: usize, r: usize) -> Option<(u64, u64, bool)> {
        let (old, full) = self.back(w)?;
        let req = at(&last.requests, m, r).saturating_sub(at(&old.requests, m, r));
        let hit = at(&last.hits, m, r).saturating_sub(at(&old.hits, m, r));
        Some((req, hit, full))
    }

    /// The projected month-end RPL: the rest of the month (`elapsed` of it gone) at the month's
    /// volume so far, hit at the slow-burn window's ratio (the month's when that window is
    /// quiet).
    fn project(
        &self,
        last: &Sample,
        w: &Where,
        (r, h): (u64, u64),
        elapsed: f64,
        board: &mut AlertBoard,
    ) {
        let c = &self.cfg;
        let recent = self
            .window(last, c.slow_burn_windows.0.to_std(), w.mi, w.ri)
            .filter(|(q, _, _)| *q >= c.min_requests.max(1))
            .map(|(q, x, _)| (q, x));
        if let Some(p) = project_month_end(r, h, elapsed, recent) {
            board.projected.insert((w.mi, w.ri), p);
        }
    }

    /// The month-to-date RPL below TPL or MPL, compared exactly, once the month has
    /// `min_requests`.
    fn below_levels(
        &self,
        measure: &Measure,
        w: &Where,
        (r, h): (u64, u64),
        holding: &mut BTreeMap<AlertKey, String>,
    ) {
        if r == 0 || r < self.cfg.min_requests {
            return;
        }
        let rpl = h as f64 * 100.0 / r as f64;
        let label = &w.label;
        let exact_below =
            |level: Decimal| Decimal::from(h) * Decimal::ONE_HUNDRED < level * Decimal::from(r);
        if let Some(tpl) = measure.tpl
            && exact_below(tpl)
        {
            holding.insert(
                (AlertKind::RplBelowTarget, Some(w.mi), Some(w.ri)),
                // Whose figures, and current: the summary is remade at every evaluation, and
                // says it judges this instance's partitions (a group's page may show the
                // store's figures for the whole group beside it).
                format!(
                    "{label}: month-to-date RPL {rpl:.2} % is below TPL {tpl} % \
                     ({} more hits in a row to reach it; {h} hits of {r} requests on this \
                     instance's partitions)",
                    hits_to_target(r, h, tpl)
                ),
            );
        }
        if let Some(mpl) = measure.mpl
            && exact_below(mpl)
        {
            holding.insert(
                (AlertKind::RplBelowMinimum, Some(w.mi), Some(w.ri)),
                format!(
                    "{label}: month-to-date RPL {rpl:.2} % is below MPL {mpl} %: \
                     this month scores nothing for it"
                ),
            );
        }
    }

    /// The error budget burning fast or slowly: the miss ratio over both windows of a pair
    /// above its rate times the budget ratio (100 − TPL) %.
    fn budget_burns(
        &self,
        measure: &Measure,
        last: &Sample,
        w: &Where,
        holding: &mut BTreeMap<AlertKey, String>,
    ) {
        let Some(tpl) = measure.tpl.and_then(|t| t.to_f64()) else {
            return;
        };
        let c = &self.cfg;
        let budget = (100.0 - tpl) / 100.0;
        let burn = |d: Duration| {
            self.window(last, d, w.mi, w.ri).map(|(q, x, _)| {
                let miss = if q == 0 {
                    0.0
                } else {
                    (q - x) as f64 / q as f64
                };
                (q, if budget > 0.0 { miss / budget } else { 0.0 })
            })
        };
        for (kind, (long, short), rate) in [
            (
                AlertKind::ErrorBudgetFastBurn,
                c.fast_burn_windows,
                c.fast_burn_rate,
            ),
            (
                AlertKind::ErrorBudgetSlowBurn,
                c.slow_burn_windows,
                c.slow_burn_rate,
            ),
        ] {
            if let (Some((ql, bl)), Some((_, bs))) = (burn(long.to_std()), burn(short.to_std()))
                && ql >= c.min_requests
                && bl > rate
                && bs > rate
            {
                holding.insert(
                    (kind, Some(w.mi), Some(w.ri)),
                    format!(
                        "{}: the error budget burns {bl:.1}x over {long} and {bs:.1}x over \
                         {short} (alerting above {rate}x)",
                        w.label
                    ),
                );
            }
        }
    }

    /// Silent now, after traffic before: only once the history covers both spans.
    fn no_data(&self, last: &Sample, w: &Where, holding: &mut BTreeMap<AlertKey, String>) {
        let c = &self.cfg;
        let quiet = self.window(last, c.no_data_window.to_std(), w.mi, w.ri);
        let before = self.back(c.no_data_window.to_std()).and_then(|(mid, _)| {
            let far = Dur(c.no_data_window.0 + c.no_data_lookback.0).to_std();
            let (old, full) = self.back(far)?;
            Some((
                at(&mid.requests, w.mi, w.ri).saturating_sub(at(&old.requests, w.mi, w.ri)),
                full,
            ))
        });
        if let (Some((0, _, true)), Some((n, true))) = (quiet, before)
            && n > 0
        {
            holding.insert(
                (AlertKind::MeasureNoData, Some(w.mi), Some(w.ri)),
                format!(
                    "{}: no requests for {} after {n} in the {} before",
                    w.label, c.no_data_window, c.no_data_lookback
                ),
            );
        }
    }

    /// Partitions of `last` with messages waiting whose offset was the same in `old`: each as
    /// `t/2 at offset 1234 with 5000 behind it`.
    fn stuck(last: &Sample, old: &Sample) -> Vec<String> {
        last.offsets
            .iter()
            .filter_map(|((topic, p), (offset, lag))| {
                let waiting = lag.filter(|l| *l > 0)?;
                (old.offsets.get(&(topic.clone(), *p)).map(|o| o.0) == Some(*offset))
                    .then(|| format!("{topic}/{p} at offset {offset} with {waiting} behind it"))
            })
            .collect()
    }

    /// The pipeline's own alerts: a stalled consumer or partition, undecodable batches, a stuck
    /// watermark, rising dead letters.
    fn pipeline_conditions(&self, last: &Sample, holding: &mut BTreeMap<AlertKey, String>) {
        let c = &self.cfg;
        // One partition stuck while the others flow: invisible to the consumer-wide stall.
        if let Some((old, true)) = self.back(c.stall_window.to_std()) {
            let stuck = Self::stuck(last, old);
            if !stuck.is_empty() {
                holding.insert(
                    (AlertKind::PartitionStalled, None, None),
                    format!("{} unmoved for {}", cut_list(&stuck, 5), c.stall_window),
                );
            }
        }
        if let Some((old, _)) = self.back(c.stall_window.to_std())
            && last.undecodable.0 > old.undecodable.0
        {
            let stuck = Self::stuck(last, old);
            holding.insert(
                (AlertKind::KafkaUndecodable, None, None),
                format!(
                    "{} undecodable batches reported in {} ({}){}: their partitions are stuck \
                     with every message behind them",
                    last.undecodable.0 - old.undecodable.0,
                    c.stall_window,
                    last.undecodable.1,
                    if stuck.is_empty() {
                        String::new()
                    } else {
                        format!("; stuck: {}", cut_list(&stuck, 5))
                    }
                ),
            );
        }
        if let Some((old, true)) = self.back(c.stall_window.to_std())
            && last.lag > 0
            && last.events == old.events
        {
            holding.insert(
                (AlertKind::ConsumerStalled, None, None),
                format!(
                    "{} messages wait and none was processed for {}",
                    last.lag, c.stall_window
                ),
            );
        }
        if let Some((old, true)) = self.back(c.watermark_stuck_window.to_std())
            && last.events > old.events
            && last.watermark == old.watermark
        {
            holding.insert(
                (AlertKind::WatermarkStuck, None, None),
                format!(
                    "{} events processed in {} and the watermark did not move",
                    last.events - old.events,
                    c.watermark_stuck_window
                ),
            );
        }
        if let Some((old, _)) = self.back(c.dead_letter_window.to_std()) {
            let (dead, events) = (
                last.dead - old.dead.min(last.dead),
                last.events - old.events.min(last.events),
            );
            if dead >= 10 && dead as f64 * 100.0 > c.dead_letter_percent * events as f64 {
                holding.insert(
                    (AlertKind::DeadLettersRising, None, None),
                    format!(
                        "{dead} of {events} events dead-lettered in {} (above {} %)",
                        c.dead_letter_window, c.dead_letter_percent
                    ),
                );
            }
            // Any at all: each is a response whose request may yet come, counted as a miss.
            let evicted = last.evicted - old.evicted.min(last.evicted);
            if evicted > 0 {
                holding.insert(
                    (AlertKind::WaitingResponsesEvicted, None, None),
                    format!(
                        "{evicted} waiting responses dead-lettered early in {}: \
                         max_waiting_responses is reached",
                        c.dead_letter_window
                    ),
                );
            }
        }
    }
}

/// The connections: no broker up (an outage, or the brokers refusing this client), no partition
/// while the brokers answer, the state store unreachable. Each says since when and why.
fn health_conditions(snap: &LiveSnapshot, holding: &mut BTreeMap<AlertKey, String>) {
    use crate::ops::health::Trouble;
    let link = &snap.link;
    let since = |t: Option<SystemTime>| {
        t.map_or_else(String::new, |t| format!(" since {}", wall_rfc3339(t)))
    };
    match link.kafka_down() {
        Some((Trouble::Unreachable, why)) => {
            holding.insert(
                (AlertKind::KafkaUnreachable, None, None),
                format!(
                    "no Kafka broker answers{} ({why}): nothing is read and no figure moves \
                     (kafka.brokers; srv-opr check tests the connection)",
                    since(link.down_since)
                ),
            );
        }
        Some((t, why)) => {
            let what = if t == Trouble::Tls {
                "refuse this client's TLS (a certificate not trusted, expired or for another \
                 host; kafka.properties ssl.*)"
            } else {
                "refuse this client's credentials or authorisation (kafka.properties \
                 sasl.username and its password secret, or the broker's ACLs)"
            };
            holding.insert(
                (AlertKind::KafkaRefused, None, None),
                format!(
                    "the Kafka brokers {what}{}: {why}; nothing is read and no figure moves",
                    since(link.down_since)
                ),
            );
        }
        None => {
            if link.brokers_up.is_some_and(|n| n > 0) && snap.assigned == 0 {
                holding.insert(
                    (AlertKind::NoPartitionAssigned, None, None),
                    "the brokers answer and this instance holds no partition: the group has as \
                     many members as partitions already, the topics are missing, or the group \
                     has not finished assigning"
                        .to_string(),
                );
            }
        }
    }
    if let Some((at, why)) = &link.store_down {
        holding.insert(
            (AlertKind::StoreUnreachable, None, None),
            format!(
                "the state store does not answer since {} ({why}): checkpoints wait, and `run` \
                 stops after state.reconnect_timeout",
                wall_rfc3339(*at)
            ),
        );
    }
}

/// A signed month whose figures differ from its latest sign-off (as the sign-off watcher last
/// read the store): one alert naming every such month, its fields and causes.
fn signoff_conditions(snap: &LiveSnapshot, holding: &mut BTreeMap<AlertKey, String>) {
    let Some(read) = &snap.signoffs else {
        return;
    };
    let restated: Vec<String> = read
        .months
        .iter()
        .filter(|m| m.restated_fields > 0)
        .map(|m| {
            format!(
                "{} ({} view, signed by {} at {}): {} fields restated ({})",
                m.month,
                m.view,
                m.signed_by,
                m.signed_at,
                m.restated_fields,
                cut_list(&m.causes, 3)
            )
        })
        .collect();
    if !restated.is_empty() {
        holding.insert(
            (AlertKind::SignedMonthRestated, None, None),
            format!(
                "signed months differ from their sign-off: {} (srv-opr restatements)",
                cut_list(&restated, 3)
            ),
        );
    }
}

/// The first `n` of `items` joined, and how many more.
fn cut_list(items: &[String], n: usize) -> String {
    let mut s = items.iter().take(n).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > n {
        s.push_str(&format!(" and {} more", items.len() - n));
    }
    s
}

/// A measure and region being judged, and how its summaries name it (`PM4.3 central`).
struct Where {
    mi: usize,
    ri: usize,
    label: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::engine::calendar::Month;
    use crate::ops::alerts::kinds::labels;
    use crate::ops::alerts::notifier::Alertmanager;
    use crate::ops::live::Counts;

    /// A test's clock and counters: measure 0 (PM4.3, TPL 99, MPL 96, per region).
    struct World {
        eval: Evaluator,
        snap: LiveSnapshot,
        t0: Instant,
        w0: SystemTime,
        secs: u64,
    }

    impl World {
        fn new(hold: &str) -> World {
            let mut cfg = Config::builtin().unwrap();
            cfg.settings.alerts.hold = Dur::parse(hold).unwrap();
            cfg.settings.alerts.health_for = cfg.settings.alerts.hold;
            let defs = Arc::new(cfg.definitions.clone());
            let n = defs.measures.len();
            let calendar = Calendar::new(&cfg.settings.time.zone).unwrap();
            let mut snap = LiveSnapshot {
                totals: vec![[Counts::default(); 3]; n],
                assigned: 3,
                ..LiveSnapshot::default()
            };
            snap.month = Some((Month::new(2024, 3), vec![[Counts::default(); 3]; n]));
            // Mid-March in event time.
            snap.combined = Some(Ts(1_710_460_800 * 1_000_000_000));
            World {
                eval: Evaluator::new(cfg.settings.alerts.clone(), defs, calendar),
                snap,
                t0: Instant::now(),
                w0: SystemTime::now(),
                secs: 0,
            }
        }

        /// `requests` decided in `region` of measure 0, `hits` of them hits, then time passes
        /// by `secs` and the evaluator runs.
        fn traffic(
            &mut self,
            region: usize,
            requests: u64,
            hits: u64,
            secs: u64,
        ) -> Vec<Transition> {
            for c in [
                &mut self.snap.totals[0][region],
                &mut self.snap.month.as_mut().unwrap().1[0][region],
            ] {
                c.requests += requests;
                c.within_target += hits;
                c.succeeded += hits;
            }
            self.snap.stats.events += requests * 2;
            if let Some(wm) = &mut self.snap.combined {
                wm.0 += 1_000_000_000;
            }
            self.tick(secs)
        }

        fn tick(&mut self, secs: u64) -> Vec<Transition> {
            self.secs += secs;
            let d = Duration::from_secs(self.secs);
            self.eval.step(&self.snap, self.t0 + d, self.w0 + d).0
        }

        fn firing(&self) -> Vec<(AlertKind, Option<usize>)> {
            self.eval
                .active
                .values()
                .filter(|a| a.fired.is_some())
                .map(|a| (a.key.0, a.key.2))
                .collect()
        }
    }

    fn fired(t: &[Transition]) -> Vec<(AlertKind, Option<usize>)> {
        t.iter()
            .filter_map(|t| match t {
                Transition::Fired(a) => Some((a.key.0, a.key.2)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_region_below_target_fires_after_the_hold_and_recovery_resolves_it() {
        let mut w = World::new("2m");
        // North and south healthy, central at 98 % (below TPL 99, above MPL 96).
        for _ in 0..4 {
            w.traffic(0, 1000, 1000, 0);
            w.traffic(2, 1000, 995, 0);
            let t = w.traffic(1, 1000, 980, 60);
            if w.secs < 120 {
                assert!(fired(&t).is_empty(), "before the hold: {t:?}");
            }
        }
        let f = w.firing();
        assert!(f.contains(&(AlertKind::RplBelowTarget, Some(1))), "{f:?}");
        assert!(!f.contains(&(AlertKind::RplBelowTarget, Some(0))), "{f:?}");
        assert!(!f.contains(&(AlertKind::RplBelowTarget, Some(2))), "{f:?}");
        assert!(!f.contains(&(AlertKind::RplBelowMinimum, Some(1))), "{f:?}");
        let summary = &w.eval.active[&(AlertKind::RplBelowTarget, Some(0), Some(1))].summary;
        // 3,920 of 4,000: 40 hits in a row would make 3,960 of 4,040 = 98.02 %… the exact need
        // is (99 × 4000 − 100 × 3920) / 1 = 4,000.
        assert!(summary.contains("4000 more hits"), "{summary}");
        // Central recovers: a long run of hits lifts the month above TPL.
        let t = w.traffic(1, 10_000, 10_000, 60);
        assert!(
            t.iter().any(|t| matches!(t, Transition::Resolved(a, _)
                if a.key == (AlertKind::RplBelowTarget, Some(0), Some(1)))),
            "{t:?}"
        );
    }

    #[test]
    fn a_condition_shorter_than_the_hold_never_fires() {
        let mut w = World::new("10m");
        w.traffic(1, 1000, 900, 60);
        assert!(w.firing().is_empty());
        w.traffic(1, 100_000, 100_000, 60);
        w.tick(600);
        assert!(w.firing().is_empty(), "{:?}", w.firing());
    }

    #[test]
    fn one_partition_stuck_while_the_others_flow_is_named_and_undecodable_batches_page() {
        use crate::ops::live::PartitionSnapshot;
        let mut w = World::new("0s");
        let part = |p: i32, offset: i64, lag: i64| PartitionSnapshot {
            topic: "t".into(),
            partition: p,
            next_offset: offset,
            lag: Some(lag),
            watermark: None,
            last_event: Duration::ZERO,
            unsaved_for: None,
            pending: 0,
            waiting: 0,
        };
        // Partition 1 flows; partition 0 holds at offset 7 with 900 behind it.
        let mut t = Vec::new();
        for i in 0..7 {
            w.snap.partitions = vec![part(0, 7, 900), part(1, 100 * i, 0)];
            t.extend(w.traffic(0, 100, 100, 60));
        }
        assert!(
            !fired(&t).contains(&(AlertKind::ConsumerStalled, None)),
            "events flow: {t:?}"
        );
        assert!(
            fired(&t).contains(&(AlertKind::PartitionStalled, None)),
            "{t:?}"
        );
        let summary = &w.eval.active[&(AlertKind::PartitionStalled, None, None)].summary;
        assert!(
            summary.starts_with("t/0 at offset 7 with 900 behind it"),
            "{summary}"
        );
        assert!(!summary.contains("t/1"), "{summary}");
        // The consumer reports undecodable batches: paged, the stuck partition named.
        w.snap.undecodable = (3, "Local: Bad compression".into());
        let t = w.traffic(0, 100, 100, 60);
        assert!(
            fired(&t).contains(&(AlertKind::KafkaUndecodable, None)),
            "{t:?}"
        );
        let summary = &w.eval.active[&(AlertKind::KafkaUndecodable, None, None)].summary;
        assert!(
            summary.contains("Bad compression") && summary.contains("t/0 at offset 7"),
            "{summary}"
        );
        // It moves again: both resolve once the window holds no report and no stuck offset.
        w.snap.partitions = vec![part(0, 907, 0), part(1, 800, 0)];
        for _ in 0..6 {
            w.traffic(0, 100, 100, 60);
        }
        assert!(w.firing().is_empty(), "{:?}", w.firing());
    }

    #[test]
    fn the_connections_are_judged_with_no_partition_held_and_the_figures_alerts_stay() {
        use crate::ops::health::{KafkaLink, Trouble};
        let mut w = World::new("0s");
        w.eval.cfg.health_for = Dur::parse("30s").unwrap();
        // Central below TPL fires first.
        w.traffic(1, 1000, 980, 60);
        w.tick(60);
        assert_eq!(w.firing(), [(AlertKind::RplBelowTarget, Some(1))]);
        // The broker goes: no partition, no broker up. The measure's alert stays as it is.
        let link = KafkaLink::default();
        link.brokers(0, w.w0);
        link.error(
            Some(rdkafka::error::RDKafkaErrorCode::AllBrokersDown),
            "1/1 brokers are down",
        );
        w.snap.link = link.state();
        w.snap.assigned = 0;
        w.snap.month = None;
        let t = w.tick(15);
        assert!(fired(&t).is_empty(), "held for health_for first: {t:?}");
        let t = w.tick(30);
        assert_eq!(fired(&t), [(AlertKind::KafkaUnreachable, None)]);
        assert!(
            w.firing().contains(&(AlertKind::RplBelowTarget, Some(1))),
            "not resolved by the figures vanishing: {:?}",
            w.firing()
        );
        let summary = &w.eval.active[&(AlertKind::KafkaUnreachable, None, None)].summary;
        assert!(summary.contains("1/1 brokers are down"), "{summary}");
        // It answers and refuses our password: the outage resolves, the refusal fires.
        link.error(
            Some(rdkafka::error::RDKafkaErrorCode::Authentication),
            "SASL authentication error: invalid credentials",
        );
        w.snap.link = link.state();
        assert_eq!(
            w.snap.link.kafka_down().map(|x| x.0),
            Some(Trouble::Authentication)
        );
        w.tick(15);
        let t = w.tick(30);
        assert_eq!(fired(&t), [(AlertKind::KafkaRefused, None)]);
        assert!(!w.firing().contains(&(AlertKind::KafkaUnreachable, None)));
        // Back, but no partition: a warning; then the store stops answering: critical.
        link.brokers(1, w.w0);
        w.snap.link = link.state();
        w.snap.link.store_down = Some((w.w0, "connection refused".into()));
        w.tick(15);
        let t = w.tick(30);
        assert_eq!(
            fired(&t),
            [
                (AlertKind::NoPartitionAssigned, None),
                (AlertKind::StoreUnreachable, None)
            ]
        );
        assert_eq!(AlertKind::NoPartitionAssigned.severity(), "warning");
        assert!(!w.firing().contains(&(AlertKind::KafkaRefused, None)));
    }

    #[test]
    fn a_run_ended_on_purpose_is_judged_on_its_last_figures_and_not_as_an_outage() {
        let mut w = World::new("0s");
        w.traffic(1, 1000, 980, 60);
        w.tick(60);
        assert_eq!(w.firing(), [(AlertKind::RplBelowTarget, Some(1))]);
        // The last events, then the run ends: no partition held, the brokers still answer,
        // nothing moves for long enough that a live run would be stalled and silent.
        for c in [
            &mut w.snap.totals[0][1],
            &mut w.snap.month.as_mut().unwrap().1[0][1],
        ] {
            c.requests += 500;
            c.within_target += 490;
            c.succeeded += 490;
        }
        let link = crate::ops::health::KafkaLink::default();
        link.brokers(1, w.w0);
        w.snap.link = link.state();
        w.snap.assigned = 0;
        w.snap.finished = true;
        let t = w.tick(3600);
        assert!(fired(&t).is_empty(), "{t:?}");
        assert_eq!(w.firing(), [(AlertKind::RplBelowTarget, Some(1))]);
        // Its summary counts the last figures, not those of the evaluation before.
        let summary = &w.eval.active[&(AlertKind::RplBelowTarget, Some(0), Some(1))].summary;
        assert!(summary.contains("1470 hits of 1500 requests"), "{summary}");
        // Without the mark, the same state is a group member holding nothing.
        w.snap.finished = false;
        w.tick(15);
        assert!(
            w.firing().contains(&(AlertKind::NoPartitionAssigned, None)),
            "{:?}",
            w.firing()
        );
    }

    #[test]
    fn a_fast_burn_pages_but_a_quiet_hour_cannot() {
        let mut w = World::new("0s");
        // A month of good traffic first, so the month-to-date RPL stays above TPL.
        w.traffic(0, 1_000_000, 1_000_000, 300);
        for _ in 0..12 {
            w.traffic(0, 10_000, 10_000, 300);
        }
        assert!(w.firing().is_empty(), "{:?}", w.firing());
        // A quiet bad hour: 50 requests, all missed, under min_requests (100).
        let mut t = Vec::new();
        for _ in 0..12 {
            t.extend(w.traffic(2, 4, 0, 300));
        }
        assert!(
            !fired(&t).contains(&(AlertKind::ErrorBudgetFastBurn, Some(2))),
            "{t:?}"
        );
        // A busy bad hour in the north: 20 % misses is 20x the 1 % budget.
        let mut t = Vec::new();
        for _ in 0..12 {
            t.extend(w.traffic(0, 1000, 800, 300));
        }
        assert!(
            fired(&t).contains(&(AlertKind::ErrorBudgetFastBurn, Some(0))),
            "{t:?}"
        );
        assert!(!w.firing().contains(&(AlertKind::RplBelowTarget, Some(0))));
    }

    #[test]
    fn a_measure_gone_silent_raises_no_data_and_the_pipeline_alerts_hold() {
        let mut w = World::new("0s");
        for _ in 0..24 {
            w.traffic(0, 500, 500, 900);
        }
        // Silence in the north for 30 minutes and more.
        let mut t = Vec::new();
        for _ in 0..3 {
            t.extend(w.tick(900));
        }
        assert!(
            fired(&t).contains(&(AlertKind::MeasureNoData, Some(0))),
            "{t:?}"
        );
        // Messages wait, nothing is processed: the consumer is stalled.
        w.snap.lag = vec![("t".into(), 0, 500)];
        let t = w.tick(600);
        assert!(
            fired(&t).contains(&(AlertKind::ConsumerStalled, None)),
            "{t:?}"
        );
        // Events flow again but the watermark stays: stuck.
        let mut t = Vec::new();
        for _ in 0..4 {
            w.snap.stats.events += 1000;
            t.extend(w.tick(300));
        }
        assert!(
            fired(&t).contains(&(AlertKind::WatermarkStuck, None)),
            "{t:?}"
        );
        // 5 % dead letters.
        w.snap.stats.events += 1000;
        w.snap.stats.dead_letters[0] += 50;
        let t = w.tick(60);
        assert!(
            fired(&t).contains(&(AlertKind::DeadLettersRising, None)),
            "{t:?}"
        );
        assert!(
            !w.firing()
                .contains(&(AlertKind::WaitingResponsesEvicted, None))
        );
        // One response evicted by the waiting cap is enough; quiet for the window, it resolves.
        w.snap.stats.evicted_waiting += 1;
        let t = w.tick(60);
        assert!(
            fired(&t).contains(&(AlertKind::WaitingResponsesEvicted, None)),
            "{t:?}"
        );
        let summary = &w.eval.active[&(AlertKind::WaitingResponsesEvicted, None, None)].summary;
        assert!(summary.starts_with("1 waiting responses"), "{summary}");
        w.tick(1200);
        assert!(
            !w.firing()
                .contains(&(AlertKind::WaitingResponsesEvicted, None))
        );
    }

    #[test]
    fn an_unreachable_alertmanager_is_an_error_counted_not_a_panic() {
        // Port 1 on loopback: nothing listens there.
        let mut s = crate::config::settings::AlertmanagerSettings {
            url: "http://127.0.0.1:1/".into(),
            timeout: crate::engine::time::Dur::from_millis(2_000),
            ..Default::default()
        };
        let mut am = Alertmanager::new(&s).unwrap();
        let e = am.post("[]").unwrap_err();
        assert!(e.to_string().contains("127.0.0.1:1"), "{e}");
        assert_eq!(am.errors, 1);
        // A CA file that is not there stops the start, naming the setting and the file.
        s.url = "https://127.0.0.1:1".into();
        s.ca_file = "/nonexistent/ca.pem".into();
        let e = Alertmanager::new(&s).err().unwrap().to_string();
        assert!(
            e.contains("alerts.alertmanager_ca_file /nonexistent/ca.pem"),
            "{e}"
        );
    }

    #[test]
    fn alertmanager_bodies_carry_labels_and_ends() {
        let defs = Config::builtin().unwrap().definitions;
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let body = Alertmanager::body(&[
            (
                labels(&defs, &(AlertKind::RplBelowTarget, Some(0), Some(1))),
                "s".into(),
                t,
                None,
            ),
            (
                labels(&defs, &(AlertKind::ConsumerStalled, None, None)),
                "x".into(),
                t,
                Some(t + Duration::from_secs(60)),
            ),
        ]);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v[0]["labels"]["alertname"], "SrvRplBelowTarget");
        assert_eq!(v[0]["labels"]["measure"], "PM4.3");
        assert_eq!(v[0]["labels"]["region"], "central");
        assert_eq!(v[0]["labels"]["severity"], "warning");
        assert!(v[0].get("endsAt").is_none());
        assert!(
            v[1]["labels"].get("measure").is_none(),
            "empty labels are left out"
        );
        assert_eq!(v[1]["endsAt"], "2023-11-14T22:14:20.000Z");
    }
}
