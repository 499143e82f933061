//! Which stretches of each month the feed's valid events cover (issue 33): per month, the
//! sorted stretches of event time in which consecutive events are at most [`JOIN`] apart. A
//! month is complete when its stretches reach from its first minute to its last with no gap
//! longer than `time.coverage_max_gap` between them (nor before the first, nor after the last).
//!
//! Stretches merge exactly: a stretch's events are at most `JOIN` apart, so the union of two
//! partitions' stretches, joined again where they come within `JOIN`, is what one pipeline would
//! have recorded from all their events (order and partitioning change nothing). A feed has one
//! stretch a month; a gap of more than `JOIN` starts another.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::engine::calendar::Month;
use crate::engine::time::{NANOS_PER_SEC, Ts};

/// Events this close (15 minutes) are one stretch; `time.coverage_max_gap` is at least this.
pub const JOIN: i64 = 15 * 60 * NANOS_PER_SEC;

/// Each month's stretches: `[first, last]` event times (ns), sorted, more than [`JOIN`] apart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    months: BTreeMap<Month, Vec<(i64, i64)>>,
}

/// A month's stretches as a checkpoint keeps them (in the partition's meta).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedCoverage {
    /// `YYYY-MM`.
    pub month: String,
    /// `[first, last]` event times (ns) of each stretch.
    pub stretches: Vec<(i64, i64)>,
}

/// A month judged: whether it is complete, and each gap longer than the limit (from, to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judged {
    /// Events from the month's first minute to its last, no gap over the limit.
    pub complete: bool,
    /// The gaps over the limit, in order: `[from, to)` with no event (a month without events is
    /// one gap, the whole month).
    pub gaps: Vec<(Ts, Ts)>,
}

impl Coverage {
    /// An event at `at` in `month`.
    #[inline]
    pub fn record(&mut self, month: Month, at: Ts) {
        let v = self.months.entry(month).or_default();
        let t = at.0;
        // The common case: within or just after the newest stretch.
        if let Some(last) = v.last_mut()
            && t >= last.0
        {
            if t <= last.1 {
                return;
            }
            if t - last.1 <= JOIN {
                last.1 = t;
                return;
            }
            v.push((t, t));
            return;
        }
        insert(v, (t, t));
    }

    /// Adds another's stretches (another partition, a restored checkpoint).
    pub fn merge(&mut self, other: &Coverage) {
        for (m, theirs) in &other.months {
            let v = self.months.entry(*m).or_default();
            for s in theirs {
                insert(v, *s);
            }
        }
    }

    /// `month` judged against `max_gap` (ns), the month being `[start, end)`.
    pub fn judge(&self, month: Month, start: Ts, end: Ts, max_gap: i64) -> Judged {
        let mut gaps = Vec::new();
        let mut from = start.0;
        for &(a, b) in self.months.get(&month).map_or(&[][..], |v| v.as_slice()) {
            if a - from > max_gap {
                gaps.push((Ts(from), Ts(a)));
            }
            from = from.max(b);
        }
        if end.0 - from > max_gap {
            gaps.push((Ts(from), end));
        }
        Judged {
            complete: gaps.is_empty(),
            gaps,
        }
    }

    /// The months with events.
    pub fn months(&self) -> impl Iterator<Item = Month> + '_ {
        self.months.keys().copied()
    }

    /// As a checkpoint keeps it.
    pub fn save(&self) -> Vec<SavedCoverage> {
        self.months
            .iter()
            .map(|(m, v)| SavedCoverage {
                month: m.to_string(),
                stretches: v.clone(),
            })
            .collect()
    }

    /// Adds saved stretches; a month that does not read is left out and named.
    pub fn restore(&mut self, saved: &[SavedCoverage]) -> Vec<String> {
        let mut bad = Vec::new();
        for s in saved {
            match Month::parse(&s.month) {
                Some(m) => {
                    let v = self.months.entry(m).or_default();
                    for st in &s.stretches {
                        insert(v, (st.0.min(st.1), st.0.max(st.1)));
                    }
                }
                None => bad.push(s.month.clone()),
            }
        }
        bad
    }
}

/// Inserts stretch `s` into sorted stretches `v`, joining every stretch within [`JOIN`] of it.
fn insert(v: &mut Vec<(i64, i64)>, s: (i64, i64)) {
    // The first stretch that could join `s`: the first whose end comes within JOIN of its start.
    let lo = v.partition_point(|x| x.1 < s.0 - JOIN);
    let mut hi = lo;
    let mut joined = s;
    while hi < v.len() && v[hi].0 <= joined.1 + JOIN {
        joined = (joined.0.min(v[hi].0), joined.1.max(v[hi].1));
        hi += 1;
    }
    v.splice(lo..hi, [joined]);
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60 * NANOS_PER_SEC;
    const HOUR: i64 = 60 * MIN;

    fn march() -> (Month, Ts, Ts) {
        // A 31-day month in UTC terms (the calendar's zone is the caller's business).
        let start = 1_709_251_200 * NANOS_PER_SEC;
        (Month::new(2024, 3), Ts(start), Ts(start + 31 * 24 * HOUR))
    }

    #[test]
    fn any_order_and_any_split_give_the_same_stretches() {
        let (m, s, _) = march();
        // Every 10 minutes for a day, then nothing for 7 h, then every 14 min for 3 h.
        let mut times: Vec<i64> = (0..144).map(|i| s.0 + i * 10 * MIN).collect();
        let resume = s.0 + 143 * 10 * MIN + 7 * HOUR;
        times.extend((0..13).map(|i| resume + i * 14 * MIN));
        let mut one = Coverage::default();
        for t in &times {
            one.record(m, Ts(*t));
        }
        assert_eq!(one.months[&m].len(), 2, "{:?}", one.months);
        // Reversed, and split between three partitions by a scramble, then merged.
        let mut parts = vec![Coverage::default(); 3];
        for (i, t) in times.iter().rev().enumerate() {
            parts[(i * 7 + 3) % 3].record(m, Ts(*t));
        }
        let mut merged = Coverage::default();
        for p in parts.iter().rev() {
            merged.merge(p);
        }
        assert_eq!(merged, one);
        let mut restored = Coverage::default();
        assert!(restored.restore(&one.save()).is_empty());
        assert_eq!(restored, one);
    }

    #[test]
    fn a_month_is_complete_only_from_its_first_minute_to_its_last_without_a_long_gap() {
        let (m, s, e) = march();
        let six = 6 * HOUR;
        let every = |from: i64, to: i64, step: i64| {
            let mut c = Coverage::default();
            let mut t = from;
            while t < to {
                c.record(m, Ts(t));
                t += step;
            }
            c
        };
        // Every 5 minutes, the whole month.
        let full = every(s.0, e.0, 5 * MIN);
        assert!(full.judge(m, s, e, six).complete);
        // From the 29th on only (a replay that starts late): one gap, from the start.
        let late = every(s.0 + 28 * 24 * HOUR, e.0, 5 * MIN);
        let j = late.judge(m, s, e, six);
        assert!(!j.complete);
        assert_eq!(j.gaps, [(s, Ts(s.0 + 28 * 24 * HOUR))]);
        // A day missing in the middle.
        let mut gap = every(s.0, s.0 + 10 * 24 * HOUR, 5 * MIN);
        gap.merge(&every(s.0 + 11 * 24 * HOUR, e.0, 5 * MIN));
        let j = gap.judge(m, s, e, six);
        assert_eq!(j.gaps.len(), 1, "{:?}", j.gaps);
        assert!(!j.complete);
        // Six hours exactly is not longer than six hours; a minute more is.
        let mut edge = every(s.0, s.0 + 10 * HOUR, 5 * MIN);
        let last = s.0 + 10 * HOUR - 5 * MIN;
        edge.merge(&every(last + six, e.0, 5 * MIN));
        assert!(edge.judge(m, s, e, six).complete);
        let mut over = every(s.0, s.0 + 10 * HOUR, 5 * MIN);
        over.merge(&every(last + six + MIN, e.0, 5 * MIN));
        assert!(!over.judge(m, s, e, six).complete);
        // Stopping early: the end is a gap too. No event at all: the whole month.
        assert!(
            !every(s.0, e.0 - 7 * HOUR, 5 * MIN)
                .judge(m, s, e, six)
                .complete
        );
        assert_eq!(Coverage::default().judge(m, s, e, six).gaps, [(s, e)]);
    }
}
