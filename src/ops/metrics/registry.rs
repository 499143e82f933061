//! The registry of `/metrics` and its families (SPEC §6), refreshed from the [`Live`] view at
//! each scrape: the pipeline's, what became of the lines read, each measure's totals and month
//! to date, the alerts', the response times', and, when configured, the exemptions', the
//! interfaces' and the signed months'.

use std::sync::{Arc, Mutex};

use prometheus::{Encoder, IntCounterVec, IntGauge, IntGaugeVec, Registry};

use super::alerts::Alerts;
use super::families::Families;
use super::interfaces::AvailabilityGauges;
use super::measures::{MonthToDate, Totals};
use super::pipeline::Pipeline;
use super::response_times::{self, ResponseTimes};
use super::traffic::Traffic;
use crate::engine::calendar::Calendar;
use crate::engine::definitions::Definitions;
use crate::ops::alerts::AlertBoard;
use crate::ops::live::{Live, LiveSnapshot};

/// The registry and its metric families.
pub struct Metrics {
    registry: Registry,
    defs: Arc<Definitions>,
    calendar: Mutex<Calendar>,
    live: Arc<Live>,
    pipeline: Pipeline,
    traffic: Traffic,
    totals: Totals,
    /// The month holding the combined watermark.
    month: MonthToDate,
    alerts: Alerts,
    /// `srv_availability_webhook_notifications_total{outcome}` (issue 30).
    webhook: IntCounterVec,
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

impl Metrics {
    /// Counts a notification of the Alertmanager webhook: `stored`, `refused` or
    /// `unavailable`.
    pub(crate) fn count_webhook(&self, outcome: &'static str) {
        self.webhook.with_label_values(&[outcome]).inc();
    }

    /// Registers every family and pre-creates every configured series (so each exists, at
    /// zero, from the start and no event content can create one). `checkpointing`: a state
    /// store is configured (else there is no checkpoint age to show); `board`: what the alert
    /// evaluator publishes.
    pub fn new(
        defs: Arc<Definitions>,
        calendar: Calendar,
        live: Arc<Live>,
        checkpointing: bool,
        board: Option<Arc<Mutex<AlertBoard>>>,
    ) -> prometheus::Result<Metrics> {
        let registry = Registry::new();
        let f = Families(&registry);
        let m = Metrics {
            pipeline: Pipeline::new(&f, checkpointing)?,
            traffic: Traffic::new(&f)?,
            totals: Totals::new(&f)?,
            month: MonthToDate::new(&f)?,
            alerts: Alerts::new(&f, &defs)?,
            webhook: f.counters(
                "srv_availability_webhook_notifications_total",
                "Alertmanager notifications received on the availability webhook, by outcome: \
                 stored (its events acknowledged by the broker), refused (400/413), \
                 unavailable (503: Alertmanager sends it again)",
                &["outcome"],
            )?,
            response_times: response_times::families(&registry, &defs)?,
            board,
            registry,
            calendar: Mutex::new(calendar),
            live,
            scrape: Mutex::new(()),
            exemptions: Vec::new(),
            availability: None,
            signoffs: None,
            defs,
        };
        m.traffic.precreate();
        m.totals.precreate(&m.defs);
        Ok(m)
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
        self.availability = Some(AvailabilityGauges::new(
            &Families(&self.registry),
            interfaces,
        )?);
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

    fn refresh(&self, s: &LiveSnapshot) {
        if let Some(g) = &self.availability {
            let calendar = self
                .calendar
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            g.refresh(&self.defs, &calendar, s);
        }
        self.refresh_signoffs(s);
        self.traffic.refresh(s);
        let now = crate::engine::time::now();
        for (g, from, to) in &self.exemptions {
            g.set(i64::from(now >= *from && now < *to));
        }
        self.totals.refresh(&self.defs, s);
        self.month.refresh(&self.defs, s);
        response_times::refresh(&self.response_times, s);
        if let Some(board) = &self.board {
            let b = board
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            self.alerts.refresh(&b);
            self.month.project(&self.defs, &b.projected);
        }
        self.pipeline.refresh(s, self.live.handed_over());
    }
}
