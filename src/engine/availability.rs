//! Interface availability in event time (issue 30): each interface's timeline of `up`/`down`
//! events, the outages it makes, and a calendar month's figure by the SEC's rule, `100 × (RT −
//! UD) / RT`, where RT is the month's elapsed minutes and UD its **complete** minutes of
//! downtime less those inside an exemption window. Synchronous and I/O-free: the pipeline feeds
//! events, the outputs and the live view ask for months.
//!
//! The timeline keeps every change it was given, keyed by time, so events may arrive in any
//! order and a late one lands where it belongs: outages are always computed from the sorted
//! whole. Availability events are sparse (a few a month), so this costs next to nothing; a
//! flapping monitor is bounded by [`Timeline::compact`], which folds what no event can reach any
//! more.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::calendar::{Calendar, Month};
use super::exemption::{Exemption, Register};
use super::time::{NANOS_PER_SEC, Ts};

/// One minute in nanoseconds.
const MINUTE: i64 = 60 * NANOS_PER_SEC;

/// An interface's state as an event gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    /// Available.
    Up,
    /// Unavailable.
    Down,
}

impl State {
    /// `up` or `down` as events write it.
    pub fn parse(s: &[u8]) -> Option<State> {
        match s {
            b"up" => Some(State::Up),
            b"down" => Some(State::Down),
            _ => None,
        }
    }

    /// Its name in events and outputs.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Up => "up",
            State::Down => "down",
        }
    }
}

/// An interface's changes of state, by time. Up until an event says otherwise.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timeline {
    /// State from each instant on. Two events at the same instant: `down` wins (a monitor that
    /// says both at once has seen it down).
    changes: BTreeMap<Ts, State>,
}

impl Timeline {
    /// Records that the interface was `state` from `at`; returns whether anything changed (a
    /// repeat of a known event changes nothing).
    pub fn record(&mut self, at: Ts, state: State) -> bool {
        match self.changes.get(&at) {
            Some(s) if *s == state || *s == State::Down => false,
            _ => {
                self.changes.insert(at, state);
                true
            }
        }
    }

    /// Every change, in time order (for checkpoints and merges).
    pub fn changes(&self) -> impl Iterator<Item = (Ts, State)> + '_ {
        self.changes.iter().map(|(t, s)| (*t, *s))
    }

    /// Adds another timeline's changes (another partition's, a checkpoint's).
    pub fn merge(&mut self, other: &Timeline) {
        for (at, s) in other.changes() {
            self.record(at, s);
        }
    }

    /// Whether it has no change.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The state at `at` (up before the first change).
    pub(crate) fn state_at(&self, at: Ts) -> State {
        self.changes
            .range(..=at)
            .next_back()
            .map_or(State::Up, |(_, s)| *s)
    }

    /// When the outage holding at `at` began (`None` when up at `at`): the first `down` after
    /// the last `up` before it.
    pub(crate) fn down_since(&self, at: Ts) -> Option<Ts> {
        if self.state_at(at) == State::Up {
            return None;
        }
        let last_up = self
            .changes
            .range(..=at)
            .rev()
            .find(|(_, s)| **s == State::Up)
            .map(|(t, _)| *t);
        let from = match last_up {
            Some(t) => self.changes.range(t..=at),
            None => self.changes.range(..=at),
        };
        from.into_iter()
            .find(|(_, s)| **s == State::Down)
            .map(|(t, _)| *t)
    }

    /// The outages, `[down, up)`, as far as `until`: an outage still open then runs to it.
    /// Repeated `down`s inside an outage are the same outage.
    pub fn outages(&self, until: Ts) -> Vec<(Ts, Ts)> {
        let mut out = Vec::new();
        let mut down_since: Option<Ts> = None;
        for (&at, &s) in self.changes.range(..until) {
            match (s, down_since) {
                (State::Down, None) => down_since = Some(at),
                (State::Up, Some(from)) => {
                    out.push((from, at));
                    down_since = None;
                }
                _ => {}
            }
        }
        if let Some(from) = down_since
            && from < until
        {
            out.push((from, until));
        }
        out
    }

    /// Folds changes before `before` that repeat the state before them (they cannot start or
    /// end an outage unless an event lands between them, which an event that old no longer
    /// can). Returns how many were folded.
    pub fn compact(&mut self, before: Ts) -> usize {
        let mut last: Option<State> = None;
        let mut redundant = Vec::new();
        for (&at, &s) in self.changes.range(..before) {
            if last.unwrap_or(State::Up) == s {
                redundant.push(at);
            }
            last = Some(s);
        }
        for at in &redundant {
            self.changes.remove(at);
        }
        redundant.len()
    }
}

/// An interface's timeline as a checkpoint keeps it: by the interface's id (so a reordered
/// configuration restores to the right one), each change as (ns, down).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SavedTimeline {
    /// The interface's id.
    pub interface: String,
    /// Its changes in time order: (`at` in ns, whether down).
    pub changes: Vec<(i64, bool)>,
}

impl Timeline {
    /// The checkpoint form of this timeline for `interface`.
    pub(crate) fn save(&self, interface: &str) -> SavedTimeline {
        SavedTimeline {
            interface: interface.to_string(),
            changes: self
                .changes()
                .map(|(at, s)| (at.0, s == State::Down))
                .collect(),
        }
    }

    /// Adds a saved timeline's changes.
    pub(crate) fn restore(&mut self, saved: &SavedTimeline) {
        for &(at, down) in &saved.changes {
            self.record(Ts(at), if down { State::Down } else { State::Up });
        }
    }
}

/// The complete minutes of `[from, to)`: minutes whose every instant lies in it, as the
/// minute-aligned range `[first, end)` (empty when none).
pub fn complete_minutes(from: Ts, to: Ts) -> (Ts, Ts) {
    let first = Ts(from.0.div_euclid(MINUTE) * MINUTE
        + if from.0.rem_euclid(MINUTE) == 0 {
            0
        } else {
            MINUTE
        });
    let end = Ts(to.0.div_euclid(MINUTE) * MINUTE);
    if end.0 > first.0 {
        (first, end)
    } else {
        (first, first)
    }
}

/// Minutes in the minute-aligned range `[from, to)`.
fn minutes(from: Ts, to: Ts) -> u32 {
    u32::try_from((to.0 - from.0).max(0) / MINUTE).unwrap_or(u32::MAX)
}

/// Whether an exemption covers an interface's downtime: its `interfaces` name it, or it has no
/// `interfaces` key (absent = all, as for every scope key). The request scopes (measures,
/// regions, providers, SRVs) do not narrow it: an interface's minute has none of them.
pub(crate) fn covers_interface(e: &Exemption, interface: &str) -> bool {
    e.interfaces
        .as_ref()
        .is_none_or(|set| set.contains(interface))
}

/// The windows of `register` that take `interface`'s minutes in view `view`, merged where
/// they overlap, in time order.
pub fn exempt_windows(register: &Register, view: usize, interface: &str) -> Vec<(Ts, Ts)> {
    let mut w: Vec<(Ts, Ts)> = register
        .exemptions
        .iter()
        .filter(|e| e.views.contains(&view) && covers_interface(e, interface))
        .map(|e| (e.from, e.to))
        .collect();
    w.sort();
    let mut merged: Vec<(Ts, Ts)> = Vec::with_capacity(w.len());
    for (a, b) in w {
        match merged.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    merged
}

/// One interface's figures for one month and view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MonthFigures {
    /// RT: the month's minutes elapsed (all of them once the month is over).
    pub minutes: u32,
    /// Complete minutes down.
    pub down_minutes: u32,
    /// Of those, minutes inside an exemption window (not downtime).
    pub exempted_minutes: u32,
}

impl MonthFigures {
    /// UD: the downtime counted.
    pub fn unavailable(&self) -> u32 {
        self.down_minutes.saturating_sub(self.exempted_minutes)
    }

    /// Minutes counted as up: RT − UD.
    pub(crate) fn up_minutes(&self) -> u32 {
        self.minutes.saturating_sub(self.unavailable())
    }

    /// `100 × (RT − UD) / RT`, exact to 28 significant digits; `None` when no minute has
    /// elapsed.
    pub fn percent(&self) -> Option<Decimal> {
        (self.minutes > 0).then(|| {
            Decimal::from(self.up_minutes()) * Decimal::ONE_HUNDRED / Decimal::from(self.minutes)
        })
    }
}

/// `month`'s figures for an interface with these `outages` (from [`Timeline::outages`]) and
/// these exemption `windows` (from [`exempt_windows`]), as far as `until` (the watermark: RT
/// counts the month's minutes before it).
pub(crate) fn month_figures(
    cal: &Calendar,
    month: Month,
    outages: &[(Ts, Ts)],
    windows: &[(Ts, Ts)],
    until: Ts,
) -> MonthFigures {
    let (start, end) = (cal.start_of(month), cal.end_of(month));
    let elapsed_end = Ts(end.0.min(until.0.div_euclid(MINUTE) * MINUTE).max(start.0));
    let mut f = MonthFigures {
        minutes: minutes(start, elapsed_end),
        down_minutes: 0,
        exempted_minutes: 0,
    };
    for &(from, to) in outages {
        // Month edges fall on whole minutes (zones differ from UTC by whole minutes), so the
        // complete minutes of the clipped outage are the outage's minutes in the month.
        let (a, b) = complete_minutes(from.max(start), to.min(elapsed_end));
        if a >= b {
            continue;
        }
        f.down_minutes += minutes(a, b);
        for &(wa, wb) in windows {
            let (x, y) = (a.max(wa), b.min(wb));
            if x < y {
                f.exempted_minutes += minutes(x, y);
            }
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::time::parse_rfc3339;

    fn t(s: &str) -> Ts {
        parse_rfc3339(s.as_bytes()).unwrap()
    }

    fn london() -> Calendar {
        Calendar::new("Europe/London").unwrap()
    }

    #[test]
    fn complete_minutes_leave_out_the_partial_ones_at_both_ends() {
        let (a, b) = complete_minutes(t("2024-03-01T10:00:30Z"), t("2024-03-01T10:05:10Z"));
        assert_eq!(
            (a, b),
            (t("2024-03-01T10:01:00Z"), t("2024-03-01T10:05:00Z"))
        );
        let (a, b) = complete_minutes(t("2024-03-01T10:00:00Z"), t("2024-03-01T10:01:00Z"));
        assert_eq!(minutes(a, b), 1);
        // A blip inside one minute, or across a minute edge, is no complete minute.
        let (a, b) = complete_minutes(t("2024-03-01T10:00:10Z"), t("2024-03-01T10:00:50Z"));
        assert_eq!(minutes(a, b), 0);
        let (a, b) = complete_minutes(t("2024-03-01T10:00:30Z"), t("2024-03-01T10:01:30Z"));
        assert_eq!(minutes(a, b), 0);
    }

    #[test]
    fn repeated_downs_are_one_outage_and_order_of_arrival_does_not_matter() {
        let events = [
            ("2024-03-01T10:00:00Z", State::Down),
            ("2024-03-01T10:10:00Z", State::Down),
            ("2024-03-01T10:20:00Z", State::Up),
            ("2024-03-01T11:00:00Z", State::Up),
            ("2024-03-01T12:00:00Z", State::Down),
        ];
        let mut forward = Timeline::default();
        let mut backward = Timeline::default();
        for (at, s) in events {
            forward.record(t(at), s);
        }
        for (at, s) in events.iter().rev() {
            backward.record(t(at), *s);
        }
        assert_eq!(forward, backward);
        assert_eq!(
            forward.outages(t("2024-03-01T12:30:00Z")),
            vec![
                (t("2024-03-01T10:00:00Z"), t("2024-03-01T10:20:00Z")),
                (t("2024-03-01T12:00:00Z"), t("2024-03-01T12:30:00Z")),
            ]
        );
        assert_eq!(forward.state_at(t("2024-03-01T12:00:00Z")), State::Down);
        assert_eq!(
            forward.down_since(t("2024-03-01T10:15:00Z")),
            Some(t("2024-03-01T10:00:00Z"))
        );
        assert_eq!(forward.down_since(t("2024-03-01T10:30:00Z")), None);
        assert_eq!(forward.state_at(t("2024-03-01T09:00:00Z")), State::Up);
    }

    #[test]
    fn down_wins_at_the_same_instant_and_a_repeat_changes_nothing() {
        let mut tl = Timeline::default();
        assert!(tl.record(t("2024-03-01T10:00:00Z"), State::Up));
        assert!(tl.record(t("2024-03-01T10:00:00Z"), State::Down));
        assert!(!tl.record(t("2024-03-01T10:00:00Z"), State::Up));
        assert!(!tl.record(t("2024-03-01T10:00:00Z"), State::Down));
        assert_eq!(tl.state_at(t("2024-03-01T10:00:00Z")), State::Down);
    }

    #[test]
    fn compacting_keeps_every_outage() {
        let mut tl = Timeline::default();
        for (at, s) in [
            ("2024-03-01T09:00:00Z", State::Up),
            ("2024-03-01T10:00:00Z", State::Down),
            ("2024-03-01T10:05:00Z", State::Down),
            ("2024-03-01T10:20:00Z", State::Up),
            ("2024-03-01T10:30:00Z", State::Up),
            ("2024-03-01T12:00:00Z", State::Down),
        ] {
            tl.record(t(at), s);
        }
        let until = t("2024-03-02T00:00:00Z");
        let before = tl.outages(until);
        assert_eq!(tl.compact(t("2024-03-01T11:00:00Z")), 3);
        assert_eq!(tl.outages(until), before);
        assert_eq!(tl.changes().count(), 3);
    }

    /// The seed's August 2023: a Category 2 incident took three interfaces to 99.13 % for the
    /// month; 388 complete minutes of 44,640 give 99.1308 %.
    #[test]
    fn the_seeds_august_incident() {
        let cal = london();
        let aug = Month::new(2023, 8);
        let outage = [(
            t("2023-08-14T09:12:00+01:00"),
            t("2023-08-14T15:40:00+01:00"),
        )];
        let f = month_figures(&cal, aug, &outage, &[], t("2023-09-05T00:00:00Z"));
        assert_eq!(
            (f.minutes, f.down_minutes, f.exempted_minutes),
            (44_640, 388, 0)
        );
        assert_eq!(f.percent().unwrap().round_dp(4).to_string(), "99.1308");
        // Planned maintenance over the last hour of it is not downtime.
        let windows = [(
            t("2023-08-14T14:40:00+01:00"),
            t("2023-08-14T16:00:00+01:00"),
        )];
        let f = month_figures(&cal, aug, &outage, &windows, t("2023-09-05T00:00:00Z"));
        assert_eq!(
            (f.down_minutes, f.exempted_minutes, f.unavailable()),
            (388, 60, 328)
        );
    }

    #[test]
    fn months_have_their_local_minutes_and_an_outage_splits_at_the_local_edge() {
        let cal = london();
        let late = t("2025-01-01T00:00:00Z");
        let rt = |m| month_figures(&cal, m, &[], &[], late).minutes;
        assert_eq!(rt(Month::new(2024, 3)), 44_580); // the clocks go forward
        assert_eq!(rt(Month::new(2023, 10)), 44_700); // and back
        assert_eq!(rt(Month::new(2024, 2)), 41_760);
        // Down from 23:30 BST on 31 March to 00:30 BST on 1 April: 30 minutes in each month.
        let outage = [(
            t("2024-03-31T23:30:00+01:00"),
            t("2024-04-01T00:30:00+01:00"),
        )];
        for m in [Month::new(2024, 3), Month::new(2024, 4)] {
            assert_eq!(month_figures(&cal, m, &outage, &[], late).down_minutes, 30);
        }
        // A month in progress counts its minutes up to the watermark (whole minutes).
        let f = month_figures(
            &cal,
            Month::new(2024, 4),
            &outage,
            &[],
            t("2024-04-01T01:00:30+01:00"),
        );
        assert_eq!((f.minutes, f.down_minutes), (60, 30));
    }

    #[test]
    fn overlapping_windows_exempt_a_minute_once() {
        let cal = london();
        let outage = [(t("2024-05-01T10:00:00Z"), t("2024-05-01T11:00:00Z"))];
        let windows = [(t("2024-05-01T09:50:00Z"), t("2024-05-01T10:30:00Z"))];
        let f = month_figures(
            &cal,
            Month::new(2024, 5),
            &outage,
            &windows,
            t("2024-06-01T00:00:00Z"),
        );
        assert_eq!((f.down_minutes, f.exempted_minutes), (60, 30));
    }
}
