//! Each interface's month-to-date availability (issue 30): `srv_interface_up`, its percentage
//! and target, its down and exempted minutes, and the downtime the month can still take.

use prometheus::{GaugeVec, IntGaugeVec};

use super::families::Families;
use crate::engine::calendar::Calendar;
use crate::engine::definitions::Definitions;
use crate::ops::interfaces::Interfaces;
use crate::ops::live::LiveSnapshot;

/// The interfaces' month-to-date availability (issue 30), from the timelines of the partitions
/// held, under the register's `opr` view; shown once any availability event has been seen.
pub(super) struct AvailabilityGauges {
    interfaces: Interfaces,
    up: IntGaugeVec,
    percent: GaugeVec,
    target: GaugeVec,
    down: IntGaugeVec,
    exempted: IntGaugeVec,
    left: IntGaugeVec,
}

impl AvailabilityGauges {
    /// Registers the families, for `interfaces`.
    pub(super) fn new(
        f: &Families<'_>,
        interfaces: Interfaces,
    ) -> prometheus::Result<AvailabilityGauges> {
        let l = &["interface"];
        Ok(AvailabilityGauges {
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
        })
    }

    /// The interfaces' gauges from a snapshot.
    pub(super) fn refresh(&self, defs: &Definitions, calendar: &Calendar, s: &LiveSnapshot) {
        let g = self;
        for i in g.interfaces.now(defs, calendar, s) {
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
}
