//! `/metrics`: the SPEC §6 metrics in Prometheus text format, from an explicit registry that is
//! refreshed from the [`Live`] view at each scrape. Every series is created up front from the
//! configuration (measures × regions, event types × results, dead-letter reasons), so no event
//! content can ever create a new one; only `srv_consumer_lag` and `srv_partition_offset` follow the
//! partitions held.

use std::sync::{Arc, Mutex};

use prometheus::core::{Collector, Desc};
use prometheus::proto;
use prometheus::{Encoder, Gauge, GaugeVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use rust_decimal::prelude::ToPrimitive;

use crate::engine::definitions::Definitions;

use crate::engine::aggregate::RtHist;
use crate::engine::calendar::Calendar;
use crate::engine::domain::Region;
use crate::engine::event::DeadReason;
use crate::engine::pipeline::{EventResult, EventType};
use crate::ops::alerts::{AlertBoard, AlertKey, AlertKind, alert_regions};
use crate::ops::live::{Counts, Live, LiveSnapshot, MeasureCounts};
use crate::ops::objective::{error_budget, hits_to_target};

use crate::ops::alerts::REGIONS;

/// The registry and its metric families.
pub struct Metrics {
    registry: Registry,
    defs: Arc<Definitions>,
    calendar: Mutex<Calendar>,
    live: Arc<Live>,
    /// The month holding the combined watermark.
    month: MonthToDate,
    events: IntCounterVec,
    /// `srv_events_ignored_total{type}`: lines of the types `input.ignore_types` lists.
    ignored: IntCounterVec,
    dead_letters: IntCounterVec,
    requests: IntCounterVec,
    within_target: IntCounterVec,
    succeeded: IntCounterVec,
    target: GaugeVec,
    minimum: GaugeVec,
    pending: IntGauge,
    waiting: IntGauge,
    watermark_lag: Gauge,
    consumer_lag: IntGaugeVec,
    partition_offset: IntGaugeVec,
    assigned: IntGauge,
    brokers_up: IntGaugeVec,
    refused: IntGaugeVec,
    store_up: IntGauge,
    kafka_errors: IntCounterVec,
    /// `srv_availability_webhook_notifications_total{outcome}` (issue 30).
    webhook: IntCounterVec,
    undecodable: IntCounterVec,
    evicted_waiting: IntCounterVec,
    handed_over: IntCounterVec,
    watermark: Gauge,
    checkpoint_age: Option<Gauge>,
    alert_active: IntGaugeVec,
    /// Every `srv_alert_active` series, made up front, by the alert it shows.
    alert_series: Vec<(AlertKey, IntGauge)>,
    notify_errors: IntCounterVec,
    /// `srv_response_time_seconds`, `srv_ack_time_seconds`, `srv_after_ack_time_seconds`, in
    /// [`Segments`](crate::engine::aggregate::Segments) order.
    response_times: [Arc<ResponseTimes>; 3],
    board: Option<Arc<Mutex<AlertBoard>>>,
    scrape: Mutex<()>,
    /// `srv_exemption_active` by exemption, with its window (set by [`Metrics::with_register`]).
    exemptions: Vec<(IntGauge, crate::engine::time::Ts, crate::engine::time::Ts)>,
    /// The interfaces' families (set by [`Metrics::with_availability`]).
    availability: Option<AvailabilityGauges>,
    /// `srv_signed_month_restated_fields` (set by [`Metrics::with_signoffs`]).
    signoffs: Option<IntGaugeVec>,
}

/// The interfaces' month-to-date availability (issue 30), from the timelines of the partitions
/// held, under the register's `opr` view; shown once any availability event has been seen.
struct AvailabilityGauges {
    interfaces: crate::ops::interfaces::Interfaces,
    up: IntGaugeVec,
    percent: GaugeVec,
    target: GaugeVec,
    down: IntGaugeVec,
    exempted: IntGaugeVec,
    left: IntGaugeVec,
}

/// `srv_response_time_seconds`: a histogram exposed from the aggregates' bucket counts (the
/// prometheus crate's own histogram only observes; these totals are set at each scrape).
struct ResponseTimes {
    desc: Desc,
    bounds_s: Vec<f64>,
    ids: Vec<String>,
    latest: Mutex<Vec<[RtHist; 4]>>,
}

impl Collector for ResponseTimes {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<proto::MetricFamily> {
        let latest = self
            .latest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut metrics = Vec::with_capacity(self.ids.len() * 4);
        for (mi, id) in self.ids.iter().enumerate() {
            for (ri, region) in REGIONS.iter().enumerate() {
                let h = latest.get(mi).map(|r| &r[ri]);
                let mut buckets = Vec::with_capacity(self.bounds_s.len());
                let mut cumulative = 0u64;
                for (i, b) in self.bounds_s.iter().enumerate() {
                    cumulative += h.and_then(|h| h.counts.get(i)).copied().unwrap_or(0);
                    let mut bucket = proto::Bucket::default();
                    bucket.set_upper_bound(*b);
                    bucket.set_cumulative_count(cumulative);
                    buckets.push(bucket);
                }
                let mut ph = proto::Histogram::default();
                ph.set_bucket(buckets);
                ph.set_sample_count(h.map_or(0, RtHist::count));
                ph.set_sample_sum(h.map_or(0.0, |h| h.sum_ms as f64 / 1000.0));
                let label = |n: &str, v: &str| {
                    let mut l = proto::LabelPair::default();
                    l.set_name(n.to_string());
                    l.set_value(v.to_string());
                    l
                };
                let mut m =
                    proto::Metric::from_label(vec![label("measure", id), label("region", region)]);
                m.set_histogram(ph);
                metrics.push(m);
            }
        }
        let mut f = proto::MetricFamily::default();
        f.set_name(self.desc.fq_name.clone());
        f.set_help(self.desc.help.clone());
        f.set_field_type(proto::MetricType::HISTOGRAM);
        f.set_metric(metrics);
        vec![f]
    }
}

fn reg<T: prometheus::core::Collector + Clone + 'static>(
    r: &Registry,
    c: prometheus::Result<T>,
) -> prometheus::Result<T> {
    let c = c?;
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

/// The registry families are made in: one constructor per kind of family.
struct Families<'a>(&'a Registry);

impl Families<'_> {
    fn gauge(&self, name: &str, help: &str) -> prometheus::Result<Gauge> {
        reg(self.0, Gauge::new(name, help))
    }

    fn int_gauge(&self, name: &str, help: &str) -> prometheus::Result<IntGauge> {
        reg(self.0, IntGauge::new(name, help))
    }

    fn gauges(&self, name: &str, help: &str, labels: &[&str]) -> prometheus::Result<GaugeVec> {
        reg(self.0, GaugeVec::new(Opts::new(name, help), labels))
    }

    fn int_gauges(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> prometheus::Result<IntGaugeVec> {
        reg(self.0, IntGaugeVec::new(Opts::new(name, help), labels))
    }

    fn counters(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> prometheus::Result<IntCounterVec> {
        reg(self.0, IntCounterVec::new(Opts::new(name, help), labels))
    }
}

/// The month-to-date families: the month holding the combined watermark, per measure and
/// region.
struct MonthToDate {
    exempted: IntGaugeVec,
    requests: IntGaugeVec,
    hits: IntGaugeVec,
    rpl: GaugeVec,
    to_target: IntGaugeVec,
    projected: GaugeVec,
    budget: IntGaugeVec,
}

impl MonthToDate {
    fn new(f: &Families<'_>) -> prometheus::Result<MonthToDate> {
        let mr = &["measure", "region"];
        Ok(MonthToDate {
            exempted: f.int_gauges(
                "srv_month_to_date_exempted",
                "Requests of the month holding the combined watermark that the exemption \
                 register's opr view took out (in none of the other month-to-date figures)",
                mr,
            )?,
            requests: f.int_gauges(
                "srv_month_to_date_requests",
                "Requests decided in the month holding the combined watermark",
                mr,
            )?,
            hits: f.int_gauges(
                "srv_month_to_date_hits",
                "Hits (within TRT, or succeeded for MP242 measures) in the month holding the \
                 combined watermark",
                mr,
            )?,
            rpl: f.gauges(
                "srv_month_to_date_rpl_percent",
                "Month-to-date reported performance level of the month holding the combined \
                 watermark",
                mr,
            )?,
            to_target: f.int_gauges(
                "srv_hits_to_target",
                "Hits in a row needed for the month-to-date RPL to reach TPL (0 at or above it)",
                mr,
            )?,
            projected: f.gauges(
                "srv_projected_rpl_percent",
                "Month-end RPL if the rest of the month comes at the month's volume so far and \
                 the last slow-burn window's hit ratio",
                mr,
            )?,
            budget: f.int_gauges(
                "srv_error_budget_remaining",
                "Misses still allowed this month before the RPL falls below TPL \
                 (floor(requests x (100 - TPL) / 100) - misses)",
                mr,
            )?,
        })
    }
}

impl Metrics {
    /// Counts a notification of the Alertmanager webhook: `stored`, `refused` or
    /// `unavailable`.
    pub fn count_webhook(&self, outcome: &'static str) {
        self.webhook.with_label_values(&[outcome]).inc();
    }

    /// Registers every family and pre-creates every configured series. `checkpointing`: a
    /// state store is configured (else there is no checkpoint age to show); `board`: what the
    /// alert evaluator publishes.
    pub fn new(
        defs: Arc<Definitions>,
        calendar: Calendar,
        live: Arc<Live>,
        checkpointing: bool,
        board: Option<Arc<Mutex<AlertBoard>>>,
    ) -> prometheus::Result<Metrics> {
        let r = Registry::new();
        let f = Families(&r);
        let mr = &["measure", "region"];
        let response_times = response_time_families(&r, &defs)?;
        let checkpoint_age = checkpointing
            .then(|| {
                f.gauge(
                    "srv_checkpoint_age_seconds",
                    "How long the oldest work not yet checkpointed has waited (0: all \
                     checkpointed)",
                )
            })
            .transpose()?;
        let mut m = Metrics {
            alert_series: Vec::new(),
            response_times,
            board,
            watermark: f.gauge(
                "srv_watermark_timestamp_seconds",
                "The combined watermark (event time, Unix seconds)",
            )?,
            checkpoint_age,
            month: MonthToDate::new(&f)?,
            notify_errors: f.counters(
                "srv_alert_notifications_failed_total",
                "Alert notifications Alertmanager did not accept (retried)",
                &[],
            )?,
            alert_active: f.int_gauges(
                "srv_alert_active",
                "1 while the in-process evaluator's alert fires",
                &["alert", "measure", "region", "severity"],
            )?,
            events: f.counters(
                "srv_events_total",
                "Events read, by type and what became of them",
                &["type", "result"],
            )?,
            ignored: f.counters(
                "srv_events_ignored_total",
                "Lines of a type input.ignore_types lists: counted, otherwise left alone",
                &["type"],
            )?,
            dead_letters: f.counters(
                "srv_dead_letters_total",
                "Dead letters, by reason",
                &["reason"],
            )?,
            requests: f.counters("srv_requests_total", "Requests decided", mr)?,
            within_target: f.counters(
                "srv_within_target_total",
                "Requests decided that succeeded within their TRT",
                mr,
            )?,
            succeeded: f.counters("srv_succeeded_total", "Requests decided that succeeded", mr)?,
            target: f.gauges(
                "srv_target_percent",
                "Target performance level (TPL)",
                &["measure"],
            )?,
            minimum: f.gauges(
                "srv_minimum_percent",
                "Minimum performance level (MPL)",
                &["measure"],
            )?,
            pending: f.int_gauge("srv_pending_requests", "Requests waiting for a decision")?,
            waiting: f.int_gauge(
                "srv_waiting_responses",
                "Responses waiting for their request",
            )?,
            watermark_lag: f.gauge(
                "srv_watermark_lag_seconds",
                "Wall clock minus the combined watermark",
            )?,
            consumer_lag: f.int_gauges(
                "srv_consumer_lag",
                "Messages of a held partition not yet processed",
                &["topic", "partition"],
            )?,
            partition_offset: f.int_gauges(
                "srv_partition_offset",
                "The next offset a held partition will process (unchanged while it has lag: \
                 stuck)",
                &["topic", "partition"],
            )?,
            assigned: f.int_gauge(
                "srv_assigned_partitions",
                "Partitions held by this instance",
            )?,
            brokers_up: f.int_gauges(
                "srv_kafka_brokers_up",
                "Broker connections up in the Kafka client's latest statistics (absent before \
                 the first; 0: no figure can move)",
                &[],
            )?,
            refused: f.int_gauges(
                "srv_kafka_connection_refused",
                "1 while no broker connection is up and the brokers refused this client, by \
                 reason: authentication (SASL, ACLs) or tls",
                &["reason"],
            )?,
            store_up: f.int_gauge(
                "srv_state_store_up",
                "0 while the state store does not answer (its operations retried on new \
                 connections for state.reconnect_timeout), else 1",
            )?,
            evicted_waiting: f.counters(
                "srv_waiting_responses_evicted_total",
                "Waiting responses dead-lettered early (orphan_response) because \
                 max_waiting_responses was reached",
                &[],
            )?,
            webhook: f.counters(
                "srv_availability_webhook_notifications_total",
                "Alertmanager notifications received on the availability webhook, by outcome: \
                 stored (its events acknowledged by the broker), refused (400/413), \
                 unavailable (503: Alertmanager sends it again)",
                &["outcome"],
            )?,
            kafka_errors: f.counters(
                "srv_kafka_errors_total",
                "Errors reported by the Kafka client (it retries them itself)",
                &[],
            )?,
            undecodable: f.counters(
                "srv_kafka_undecodable_total",
                "Batches the consumer could not decode (each attempt: the partition holding one \
                 is stuck at it)",
                &[],
            )?,
            handed_over: f.counters(
                "srv_partitions_handed_over_total",
                "Partitions revoked from this instance and handed over",
                &[],
            )?,
            registry: r,
            calendar: Mutex::new(calendar),
            live,
            scrape: Mutex::new(()),
            exemptions: Vec::new(),
            availability: None,
            signoffs: None,
            defs,
        };
        m.precreate();
        Ok(m)
    }

    /// Creates every series the configuration knows, so each exists (at zero) from the start
    /// and no event content can create one.
    fn precreate(&mut self) {
        for t in EventType::ALL {
            for res in EventResult::ALL {
                self.events.with_label_values(&[t.as_str(), res.as_str()]);
            }
        }
        for reason in DeadReason::ALL {
            self.dead_letters.with_label_values(&[reason.as_str()]);
        }
        for kind in AlertKind::ALL
            .iter()
            .filter(|k| !k.per_measure() && !k.per_interface())
        {
            let g = self
                .alert_active
                .with_label_values(&[kind.name(), "", "", kind.severity()]);
            self.alert_series.push(((*kind, None, None), g));
        }
        for ii in 0..self.defs.interfaces.len() {
            for kind in AlertKind::ALL.iter().filter(|k| k.per_interface()) {
                let key = (*kind, Some(ii), None);
                let measure = crate::ops::alerts::measure_label(&self.defs, &key);
                let g = self.alert_active.with_label_values(&[
                    kind.name(),
                    &measure,
                    "",
                    kind.severity(),
                ]);
                self.alert_series.push((key, g));
            }
        }
        for (mi, measure) in self.defs.measures.iter().enumerate() {
            for region in REGIONS {
                let l = [measure.id.as_str(), region];
                self.requests.with_label_values(&l);
                self.within_target.with_label_values(&l);
                self.succeeded.with_label_values(&l);
            }
            if measure.tpl.is_some() {
                for &ri in alert_regions(measure.regional) {
                    for kind in AlertKind::ALL.iter().filter(|k| k.per_measure()) {
                        if *kind == AlertKind::RplBelowMinimum && measure.mpl.is_none() {
                            continue;
                        }
                        let g = self.alert_active.with_label_values(&[
                            kind.name(),
                            &measure.id,
                            REGIONS[ri],
                            kind.severity(),
                        ]);
                        self.alert_series.push(((*kind, Some(mi), Some(ri)), g));
                    }
                }
            }
            if let Some(t) = measure.tpl.and_then(|d| d.to_f64()) {
                self.target.with_label_values(&[&measure.id]).set(t);
            }
            if let Some(t) = measure.mpl.and_then(|d| d.to_f64()) {
                self.minimum.with_label_values(&[&measure.id]).set(t);
            }
        }
    }

    /// The text exposition of every metric, read from the live view now.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        // One scrape at a time: the refresh below resets and sets whole families.
        let _one = self
            .scrape
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let snap = {
            let mut cal = self
                .calendar
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            self.live.snapshot(|ts| cal.month_of(ts))
        };
        self.refresh(&snap);
        let mut buf = Vec::with_capacity(16 << 10);
        prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut buf)?;
        String::from_utf8(buf).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }

    /// These metrics with `srv_exemption_active` for each exemption of `register`: 1 while the
    /// wall clock is inside its window (labels from the register: its id and reason).
    pub fn with_register(
        mut self,
        register: &crate::engine::exemption::Register,
    ) -> prometheus::Result<Metrics> {
        if register.is_empty() {
            return Ok(self);
        }
        let active = IntGaugeVec::new(
            prometheus::Opts::new(
                "srv_exemption_active",
                "1 while the wall clock is inside the exemption's window, else 0",
            ),
            &["exemption", "reason"],
        )?;
        self.registry.register(Box::new(active.clone()))?;
        for e in &register.exemptions {
            let g = active.with_label_values(&[e.id.as_str(), e.reason.as_str()]);
            self.exemptions.push((g, e.from, e.to));
        }
        Ok(self)
    }

    /// These metrics with each interface's availability (issue 30): `srv_interface_up`,
    /// `srv_interface_month_to_date_availability_percent`, `…_down_minutes`,
    /// `…_exempted_minutes` and `srv_interface_downtime_left_minutes` (before the month falls
    /// below SUM1's TPL in the month's scheme).
    pub fn with_availability(
        mut self,
        interfaces: crate::ops::interfaces::Interfaces,
    ) -> prometheus::Result<Metrics> {
        let f = Families(&self.registry);
        let l = &["interface"];
        self.availability = Some(AvailabilityGauges {
            interfaces,
            up: f.int_gauges(
                "srv_interface_up",
                "1 while the interface is up as the availability events say, 0 while down",
                l,
            )?,
            percent: f.gauges(
                "srv_interface_month_to_date_availability_percent",
                "100 x (RT - UD) / RT of the month availability is known in, so far",
                l,
            )?,
            target: f.gauges(
                "srv_interface_target_percent",
                "SUM1's TPL in the scheme of the month shown",
                l,
            )?,
            down: f.int_gauges(
                "srv_interface_month_to_date_down_minutes",
                "Complete minutes the interface was down this month, exempted ones included",
                l,
            )?,
            exempted: f.int_gauges(
                "srv_interface_month_to_date_exempted_minutes",
                "Of the down minutes, those inside an exemption window of the opr view",
                l,
            )?,
            left: f.int_gauges(
                "srv_interface_downtime_left_minutes",
                "Minutes of downtime the month can still take before its availability falls \
                 below SUM1's TPL (negative: below already)",
                l,
            )?,
        });
        Ok(self)
    }

    /// These metrics with `srv_signed_month_restated_fields{month, view}` (issue 31): for each
    /// signed month, how many of its fields differ from its latest sign-off (0: it stands), as
    /// the sign-off watcher last read the store.
    pub fn with_signoffs(mut self) -> prometheus::Result<Metrics> {
        self.signoffs = Some(Families(&self.registry).int_gauges(
            "srv_signed_month_restated_fields",
            "Fields of a signed month that differ from its latest sign-off (srv-opr \
             restatements lists them with their causes)",
            &["month", "view"],
        )?);
        Ok(self)
    }

    /// The signed months' gauge from a snapshot: a month signed since appears, none vanishes
    /// (sign-offs are never deleted).
    fn refresh_signoffs(&self, s: &LiveSnapshot) {
        let (Some(g), Some(read)) = (&self.signoffs, &s.signoffs) else {
            return;
        };
        for m in &read.months {
            g.with_label_values(&[m.month.as_str(), m.view.as_str()])
                .set(m.restated_fields as i64);
        }
    }

    /// The interfaces' gauges from a snapshot.
    fn refresh_availability(&self, s: &LiveSnapshot) {
        let Some(g) = &self.availability else {
            return;
        };
        let calendar = self
            .calendar
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for i in g.interfaces.now(&self.defs, &calendar, s) {
            let l = [i.id.as_str()];
            g.up.with_label_values(&l).set(i64::from(i.up));
            if let Some(p) = i.percent() {
                g.percent.with_label_values(&l).set(p);
            }
            if let Some(t) = i.target {
                g.target.with_label_values(&l).set(t);
            }
            g.down
                .with_label_values(&l)
                .set(i64::from(i.figures.down_minutes));
            g.exempted
                .with_label_values(&l)
                .set(i64::from(i.figures.exempted_minutes));
            if let Some(left) = i.left {
                g.left.with_label_values(&l).set(left);
            }
        }
    }

    fn refresh(&self, s: &LiveSnapshot) {
        self.refresh_availability(s);
        self.refresh_signoffs(s);
        for t in EventType::ALL {
            for r in EventResult::ALL {
                set_counter(
                    &self.events,
                    &[t.as_str(), r.as_str()],
                    s.stats.by_type_result[t as usize][r as usize],
                );
            }
        }
        // Only the configured types reach this map: its keys are configuration, not content.
        for (t, n) in &s.stats.ignored_by_type {
            set_counter(&self.ignored, &[t.as_str()], *n);
        }
        for (i, reason) in DeadReason::ALL.iter().enumerate() {
            set_counter(
                &self.dead_letters,
                &[reason.as_str()],
                s.stats.dead_letters[i],
            );
        }
        let month = s.month.as_ref().map(|(_, c)| c);
        let now = crate::engine::time::now();
        for (g, from, to) in &self.exemptions {
            g.set(i64::from(now >= *from && now < *to));
        }
        for (mi, measure) in self.defs.measures.iter().enumerate() {
            let totals = region_counts(&s.totals, mi);
            let mtd = month.map(|c| region_counts(c, mi));
            let exempted = region_counts(&s.month_exempted, mi);
            for (ri, region) in REGIONS.iter().enumerate() {
                let l = [measure.id.as_str(), *region];
                set_counter(&self.requests, &l, totals[ri].requests);
                set_counter(&self.within_target, &l, totals[ri].within_target);
                set_counter(&self.succeeded, &l, totals[ri].succeeded);
                let Some(mtd) = &mtd else { continue };
                self.month
                    .exempted
                    .with_label_values(&l)
                    .set(exempted[ri].requests.min(i64::MAX as u64) as i64);
                let c = mtd[ri];
                let hits = c.hits(measure.basis);
                if c.requests > 0 {
                    self.month
                        .rpl
                        .with_label_values(&l)
                        .set(hits as f64 * 100.0 / c.requests as f64);
                }
                self.month
                    .requests
                    .with_label_values(&l)
                    .set(c.requests.min(i64::MAX as u64) as i64);
                self.month
                    .hits
                    .with_label_values(&l)
                    .set(hits.min(i64::MAX as u64) as i64);
                if let Some(tpl) = measure.tpl {
                    self.month
                        .budget
                        .with_label_values(&l)
                        .set(error_budget(c.requests, hits, tpl));
                    self.month
                        .to_target
                        .with_label_values(&l)
                        .set(hits_to_target(c.requests, hits, tpl).min(i64::MAX as u64) as i64);
                }
            }
        }
        for (segment, hists) in self.response_times.iter().zip(&s.rt) {
            let mut rt: Vec<[RtHist; 4]> = Vec::with_capacity(hists.len());
            for regions in hists {
                let mut all = RtHist::default();
                for h in regions {
                    all.merge(h);
                }
                rt.push([
                    regions[0].clone(),
                    regions[1].clone(),
                    regions[2].clone(),
                    all,
                ]);
            }
            *segment
                .latest
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = rt;
        }
        if let Some(board) = &self.board {
            let b = board
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            set_counter(&self.notify_errors, &[], b.notify_errors);
            for ((mi, ri), p) in &b.projected {
                if let (Some(m), Some(r)) = (self.defs.measures.get(*mi), REGIONS.get(*ri)) {
                    self.month
                        .projected
                        .with_label_values(&[m.id.as_str(), *r])
                        .set(*p);
                }
            }
            // Every series exists from the start: set each to whether it fires now.
            for (key, g) in &self.alert_series {
                g.set(b.firing.contains(key) as i64);
            }
        }
        if let Some(g) = &self.checkpoint_age {
            g.set(s.checkpoint_age);
        }
        self.pending.set(s.pending as i64);
        self.waiting.set(s.waiting as i64);
        if let Some(wm) = s.combined {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            self.watermark_lag.set(now - wm.0 as f64 / 1e9);
            self.watermark.set(wm.0 as f64 / 1e9);
        }
        // Partitions come and go with rebalances: only the ones held now have a lag series.
        self.consumer_lag.reset();
        for (topic, partition, lag) in &s.lag {
            self.consumer_lag
                .with_label_values(&[topic.as_str(), &partition.to_string()])
                .set(*lag);
        }
        self.partition_offset.reset();
        for p in &s.partitions {
            self.partition_offset
                .with_label_values(&[p.topic.as_str(), &p.partition.to_string()])
                .set(p.next_offset);
        }
        self.assigned.set(s.assigned as i64);
        if let Some(n) = s.link.brokers_up {
            self.brokers_up.with_label_values::<&str>(&[]).set(n as i64);
        }
        self.refused.reset();
        if let Some((t, _)) = s.link.kafka_down()
            && t != crate::ops::health::Trouble::Unreachable
        {
            self.refused.with_label_values(&[t.word()]).set(1);
        }
        self.store_up.set(i64::from(s.link.store_down.is_none()));
        set_counter(&self.kafka_errors, &[], s.kafka_errors);
        set_counter(&self.undecodable, &[], s.undecodable.0);
        set_counter(&self.evicted_waiting, &[], s.stats.evicted_waiting);
        set_counter(&self.handed_over, &[], self.live.handed_over());
    }
}

/// Registers a shared collector (the registry takes ownership of a box).
struct ArcCollector(Arc<ResponseTimes>);

impl Collector for ArcCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.0.desc()
    }

    fn collect(&self) -> Vec<proto::MetricFamily> {
        self.0.collect()
    }
}

/// North, central, south and all (merged) for one measure.
fn region_counts(c: &MeasureCounts, measure: usize) -> [Counts; 4] {
    let mut out = [Counts::default(); 4];
    if let Some(rs) = c.get(measure) {
        for r in Region::ALL {
            let x = rs[r as usize];
            out[r as usize] = x;
            out[3].add(&x);
        }
    }
    out
}

/// The three response-time families (request to final response, to the first acknowledgement,
/// and after it), each with a bucket edge at every configured TRT and deadline.
fn response_time_families(
    r: &Registry,
    defs: &Definitions,
) -> prometheus::Result<[Arc<ResponseTimes>; 3]> {
    let segment = |name: &str, help: &str| -> prometheus::Result<Arc<ResponseTimes>> {
        let h = Arc::new(ResponseTimes {
            desc: Desc::new(
                name.into(),
                help.into(),
                vec!["measure".into(), "region".into()],
                Default::default(),
            )?,
            bounds_s: defs
                .rt_bounds_ms
                .iter()
                .map(|b| *b as f64 / 1000.0)
                .collect(),
            ids: defs.measures.iter().map(|m| m.id.clone()).collect(),
            latest: Mutex::new(Vec::new()),
        });
        r.register(Box::new(ArcCollector(h.clone())))?;
        Ok(h)
    };
    Ok([
        segment(
            "srv_response_time_seconds",
            "Response time of requests with a final response within the deadline, over \
             every month this process counted; a bucket edge at every configured TRT",
        )?,
        segment(
            "srv_ack_time_seconds",
            "Request to its first acknowledgement (DCC accepted it), of acknowledged \
             requests, over every month this process counted",
        )?,
        segment(
            "srv_after_ack_time_seconds",
            "First acknowledgement to final response, of requests with both (the final \
             response within the deadline), over every month this process counted",
        )?,
    ])
}

/// Counters only move forward: set to a total by adding the difference.
fn set_counter(c: &IntCounterVec, labels: &[&str], total: u64) {
    let m = c.with_label_values(labels);
    let now = m.get();
    if total > now {
        m.inc_by(total - now);
    }
}
