//! The alert evaluator's families: `srv_alert_active` (every series the configuration can
//! raise, made up front) and the notifications Alertmanager did not accept.

use prometheus::{IntCounterVec, IntGauge, IntGaugeVec};

use super::families::{Families, set_counter};
use crate::engine::definitions::Definitions;
use crate::ops::alerts::{AlertBoard, AlertKey, AlertKind, REGIONS, alert_regions};

/// The alerts' families.
pub(super) struct Alerts {
    active: IntGaugeVec,
    /// Every `srv_alert_active` series, made up front, by the alert it shows.
    series: Vec<(AlertKey, IntGauge)>,
    notify_errors: IntCounterVec,
}

impl Alerts {
    /// Registers the families and makes every series the configuration can raise: the
    /// pipeline's, each interface's, and each judged measure and region's.
    pub(super) fn new(f: &Families<'_>, defs: &Definitions) -> prometheus::Result<Alerts> {
        let mut a = Alerts {
            active: f.int_gauges(
                "srv_alert_active",
                "1 while the in-process evaluator's alert fires",
                &["alert", "measure", "region", "severity"],
            )?,
            series: Vec::new(),
            notify_errors: f.counters(
                "srv_alert_notifications_failed_total",
                "Alert notifications Alertmanager did not accept (retried)",
                &[],
            )?,
        };
        for kind in AlertKind::ALL
            .iter()
            .filter(|k| !k.per_measure() && !k.per_interface())
        {
            a.add((*kind, None, None), "", "");
        }
        for ii in 0..defs.interfaces.len() {
            for kind in AlertKind::ALL.iter().filter(|k| k.per_interface()) {
                let key = (*kind, Some(ii), None);
                let measure = crate::ops::alerts::measure_label(defs, &key);
                a.add(key, &measure, "");
            }
        }
        for (mi, measure) in defs.measures.iter().enumerate() {
            if measure.tpl.is_none() {
                continue;
            }
            for &ri in alert_regions(measure.regional) {
                for kind in AlertKind::ALL.iter().filter(|k| k.per_measure()) {
                    if *kind == AlertKind::RplBelowMinimum && measure.mpl.is_none() {
                        continue;
                    }
                    a.add((*kind, Some(mi), Some(ri)), &measure.id, REGIONS[ri]);
                }
            }
        }
        Ok(a)
    }

    /// Makes the series of one alert.
    fn add(&mut self, key: AlertKey, measure: &str, region: &str) {
        let kind = key.0;
        let g = self
            .active
            .with_label_values(&[kind.name(), measure, region, kind.severity()]);
        self.series.push((key, g));
    }

    /// Every series set to whether its alert fires now.
    pub(super) fn refresh(&self, board: &AlertBoard) {
        set_counter(&self.notify_errors, &[], board.notify_errors);
        for (key, g) in &self.series {
            g.set(board.firing.contains(key) as i64);
        }
    }
}
