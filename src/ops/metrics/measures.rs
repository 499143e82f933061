//! The families of each measure and region: the totals decided (`srv_requests_total`,
//! `srv_within_target_total`, `srv_succeeded_total`), the targets, and the month to date of the
//! month holding the combined watermark (RPL, hits to target, error budget, projection).

use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec};
use rust_decimal::prelude::ToPrimitive;

use super::families::{Families, set_counter};
use crate::engine::definitions::Definitions;
use crate::engine::domain::Region;
use crate::ops::alerts::REGIONS;
use crate::ops::live::{Counts, LiveSnapshot, MeasureCounts};
use crate::ops::objective::{error_budget, hits_to_target};

/// Every request decided since the process started, and the targets, per measure and region.
pub(super) struct Totals {
    requests: IntCounterVec,
    within_target: IntCounterVec,
    succeeded: IntCounterVec,
    target: GaugeVec,
    minimum: GaugeVec,
}

impl Totals {
    /// Registers the families.
    pub(super) fn new(f: &Families<'_>) -> prometheus::Result<Totals> {
        let mr = &["measure", "region"];
        Ok(Totals {
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
        })
    }

    /// Every configured measure's series, at zero, and its targets.
    pub(super) fn precreate(&self, defs: &Definitions) {
        for measure in &defs.measures {
            for region in REGIONS {
                let l = [measure.id.as_str(), region];
                self.requests.with_label_values(&l);
                self.within_target.with_label_values(&l);
                self.succeeded.with_label_values(&l);
            }
            if let Some(t) = measure.tpl.and_then(|d| d.to_f64()) {
                self.target.with_label_values(&[&measure.id]).set(t);
            }
            if let Some(t) = measure.mpl.and_then(|d| d.to_f64()) {
                self.minimum.with_label_values(&[&measure.id]).set(t);
            }
        }
    }

    /// The totals from a snapshot.
    pub(super) fn refresh(&self, defs: &Definitions, s: &LiveSnapshot) {
        for (mi, measure) in defs.measures.iter().enumerate() {
            let totals = region_counts(&s.totals, mi);
            for (ri, region) in REGIONS.iter().enumerate() {
                let l = [measure.id.as_str(), *region];
                set_counter(&self.requests, &l, totals[ri].requests);
                set_counter(&self.within_target, &l, totals[ri].within_target);
                set_counter(&self.succeeded, &l, totals[ri].succeeded);
            }
        }
    }
}

/// The month-to-date families: the month holding the combined watermark, per measure and
/// region.
pub(super) struct MonthToDate {
    exempted: IntGaugeVec,
    requests: IntGaugeVec,
    hits: IntGaugeVec,
    rpl: GaugeVec,
    to_target: IntGaugeVec,
    projected: GaugeVec,
    budget: IntGaugeVec,
}

impl MonthToDate {
    pub(super) fn new(f: &Families<'_>) -> prometheus::Result<MonthToDate> {
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

    /// The month-to-date figures of every measure and region from a snapshot (nothing before
    /// the first month is known).
    pub(super) fn refresh(&self, defs: &Definitions, s: &LiveSnapshot) {
        let Some((_, month)) = s.month.as_ref() else {
            return;
        };
        for (mi, measure) in defs.measures.iter().enumerate() {
            let mtd = region_counts(month, mi);
            let exempted = region_counts(&s.month_exempted, mi);
            for (ri, region) in REGIONS.iter().enumerate() {
                let l = [measure.id.as_str(), *region];
                self.exempted
                    .with_label_values(&l)
                    .set(exempted[ri].requests.min(i64::MAX as u64) as i64);
                let c = mtd[ri];
                let hits = c.hits(measure.basis);
                if c.requests > 0 {
                    self.rpl
                        .with_label_values(&l)
                        .set(hits as f64 * 100.0 / c.requests as f64);
                }
                self.requests
                    .with_label_values(&l)
                    .set(c.requests.min(i64::MAX as u64) as i64);
                self.hits
                    .with_label_values(&l)
                    .set(hits.min(i64::MAX as u64) as i64);
                if let Some(tpl) = measure.tpl {
                    self.budget
                        .with_label_values(&l)
                        .set(error_budget(c.requests, hits, tpl));
                    self.to_target
                        .with_label_values(&l)
                        .set(hits_to_target(c.requests, hits, tpl).min(i64::MAX as u64) as i64);
                }
            }
        }
    }

    /// The month-end projections the alert evaluator made, by measure and region.
    pub(super) fn project(
        &self,
        defs: &Definitions,
        projected: &std::collections::BTreeMap<(usize, usize), f64>,
    ) {
        for ((mi, ri), p) in projected {
            if let (Some(m), Some(r)) = (defs.measures.get(*mi), REGIONS.get(*ri)) {
                self.projected
                    .with_label_values(&[m.id.as_str(), *r])
                    .set(*p);
            }
        }
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
