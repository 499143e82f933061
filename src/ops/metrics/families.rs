//! The constructors every family of `/metrics` is made with (each registers what it makes),
//! and the one way a counter is set to a total.

use prometheus::{Gauge, GaugeVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

/// Makes a family and registers it.
fn reg<T: prometheus::core::Collector + Clone + 'static>(
    r: &Registry,
    c: prometheus::Result<T>,
) -> prometheus::Result<T> {
    let c = c?;
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

/// The registry families are made in: one constructor per kind of family.
pub(super) struct Families<'a>(pub(super) &'a Registry);

impl Families<'_> {
    pub(super) fn gauge(&self, name: &str, help: &str) -> prometheus::Result<Gauge> {
        reg(self.0, Gauge::new(name, help))
    }

    pub(super) fn int_gauge(&self, name: &str, help: &str) -> prometheus::Result<IntGauge> {
        reg(self.0, IntGauge::new(name, help))
    }

    pub(super) fn gauges(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> prometheus::Result<GaugeVec> {
        reg(self.0, GaugeVec::new(Opts::new(name, help), labels))
    }

    pub(super) fn int_gauges(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> prometheus::Result<IntGaugeVec> {
        reg(self.0, IntGaugeVec::new(Opts::new(name, help), labels))
    }

    pub(super) fn counters(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> prometheus::Result<IntCounterVec> {
        reg(self.0, IntCounterVec::new(Opts::new(name, help), labels))
    }
}

/// Counters only move forward: set to a total by adding the difference.
pub(super) fn set_counter(c: &IntCounterVec, labels: &[&str], total: u64) {
    let m = c.with_label_values(labels);
    let now = m.get();
    if total > now {
        m.inc_by(total - now);
    }
}
