//! The interfaces now (issue 30): each configured interface's state and month-to-date
//! availability from a live snapshot's timelines, under the register's `opr` view, with SUM1's
//! TPL of the month's scheme. One computation for `/metrics` and the alert evaluator, so the two
//! never disagree.

use std::sync::Arc;

use crate::engine::availability::{MonthFigures, State, exempt_windows, month_figures};
use crate::engine::calendar::{Calendar, Month};
use crate::engine::definitions::Definitions;
use crate::engine::exemption::Register;
use crate::engine::time::{NANOS_PER_SEC, Ts};
use crate::ops::live::LiveSnapshot;
use crate::score::scheme::{RegYear, Scheme};

/// What the interfaces' figures need beyond a snapshot: the register and SUM1's TPLs.
#[derive(Debug, Clone, Default)]
pub struct Interfaces {
    register: Arc<Register>,
    /// SUM1's TPL per regulatory year, from the schemes.
    tpl: Vec<(RegYear, f64)>,
}

/// One interface now.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct InterfaceNow {
    /// Its id.
    pub id: String,
    /// Up as far as is known.
    pub up: bool,
    /// When its current outage began (`None` while up).
    pub down_since: Option<Ts>,
    /// How far availability is known.
    pub known_to: Ts,
    /// The month shown: that of the last known instant.
    pub month: Month,
    /// The month's figures so far.
    pub figures: MonthFigures,
    /// SUM1's TPL in the month's scheme, if it has one.
    pub target: Option<f64>,
    /// Minutes of downtime the whole month may still take before it falls below the TPL
    /// (negative: below already).
    pub left: Option<i64>,
}

impl InterfaceNow {
    /// The month-to-date availability, percent.
    pub fn percent(&self) -> Option<f64> {
        self.figures
            .percent()
            .and_then(|p| p.to_string().parse::<f64>().ok())
    }
}

impl Interfaces {
    /// For `register`, with SUM1's TPL from each of `schemes`.
    pub fn new(register: Arc<Register>, schemes: &[Scheme]) -> Interfaces {
        let tpl = schemes
            .iter()
            .filter_map(|sc| {
                let m = sc.measures.iter().find(|m| m.id == "SUM1")?;
                let t = m.tpl?.to_string().parse::<f64>().ok()?;
                Some((sc.year, t))
            })
            .collect();
        Interfaces { register, tpl }
    }

    /// Every configured interface now; empty until an availability event has been seen.
    pub(crate) fn now(
        &self,
        defs: &Definitions,
        calendar: &Calendar,
        s: &LiveSnapshot,
    ) -> Vec<InterfaceNow> {
        if s.availability.iter().all(|t| t.is_empty()) {
            return Vec::new();
        }
        let known_to = s.combined.unwrap_or(Ts::MIN).max(s.availability_newest);
        let month = calendar.clone().month_of(Ts(known_to.0.saturating_sub(1)));
        let target = RegYear::of_month(&month.to_string())
            .and_then(|y| self.tpl.iter().find(|(year, _)| *year == y))
            .map(|(_, t)| *t);
        let month_minutes =
            (calendar.end_of(month).0 - calendar.start_of(month).0) / (60 * NANOS_PER_SEC);
        defs.interfaces
            .iter()
            .zip(&s.availability)
            .map(|(i, t)| {
                let windows = exempt_windows(&self.register, 0, &i.id);
                let figures =
                    month_figures(calendar, month, &t.outages(known_to), &windows, known_to);
                let up = t.state_at(known_to) == State::Up;
                // The whole month's allowance: UD may reach (100 − TPL) % of its minutes.
                let left = target.map(|tpl| {
                    (month_minutes as f64 * (100.0 - tpl) / 100.0).floor() as i64
                        - i64::from(figures.unavailable())
                });
                InterfaceNow {
                    id: i.id.clone(),
                    up,
                    down_since: if up { None } else { t.down_since(known_to) },
                    known_to,
                    month,
                    figures,
                    target,
                    left,
                }
            })
            .collect()
    }
}
