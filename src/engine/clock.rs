//! A source's event-time clock: the newest `at` of a file or partition that its watermark may
//! follow, which one event far ahead of the rest cannot move on its own.
//!
//! Bounded-out-of-orderness watermarks (Flink's, Kafka Streams', Arroyo's) follow the newest
//! timestamp seen, so a single event stamped months ahead (a device or export clock error) sends
//! the watermark there and every later event on time becomes late, then `too_late` and lost.
//! Here an event more than `jump` ahead of the clock (the dedupe horizon: the distance at which
//! a jump starts to drop events) is held as a candidate instead. The clock moves to it only when
//! [`CONFIRM`] consecutive events of the source agree (each within `jump` of the others): traffic
//! that resumes after a gap of days, or a new file that starts later, is followed within a few
//! events; a lone outlier, or a broken device's request and its responses, is interrupted by
//! normal traffic first and moves nothing. A source's first events are candidates too
//! ([`CONFIRM_START`] of them), so an outlier on the first line cannot anchor the clock. The events themselves are always applied:
//! only the watermark ignores them.

use super::time::{Dur, Ts};

/// Consecutive events, consistent with each other, that confirm a jump.
pub const CONFIRM: usize = 8;

/// The same for a source's first events, which start its clock: two, so that an outlier on the
/// first line cannot start it and an event behind the first is judged late as before (a pair of
/// outliers at the very start is the one case left unguarded).
pub const CONFIRM_START: usize = 2;

/// One source's clock.
#[derive(Debug, Clone)]
pub struct SourceClock {
    max_at: Ts,
    jump: Dur,
    /// Candidates since the last event the clock accepted, in arrival order (at most CONFIRM).
    run: Vec<Ts>,
    /// Events that were candidates and did not move the clock, not yet taken.
    held_back: u64,
}

impl SourceClock {
    /// A clock that has seen nothing.
    pub fn new(jump: Dur) -> SourceClock {
        SourceClock::restored(Ts::MIN, jump)
    }

    /// A clock that had reached `max_at` (from a checkpoint; a run of candidates not yet
    /// confirmed then is not kept, and starts again).
    pub fn restored(max_at: Ts, jump: Dur) -> SourceClock {
        SourceClock {
            max_at,
            jump,
            run: Vec::with_capacity(CONFIRM),
            held_back: 0,
        }
    }

    /// The newest `at` the watermark may follow (`Ts::MIN` before the first confirmed events).
    pub fn max_at(&self) -> Ts {
        self.max_at
    }

    /// A valid event's `at`; true when the clock moved.
    pub(crate) fn observe(&mut self, at: Ts) -> bool {
        if self.max_at != Ts::MIN && at <= self.max_at.plus(self.jump) {
            // Normal traffic: any candidates before it were outliers.
            self.drop_run();
            if at > self.max_at {
                self.max_at = at;
                return true;
            }
            return false;
        }
        let (lo, hi) = self
            .run
            .iter()
            .fold((at, at), |(l, h), &t| (l.min(t), h.max(t)));
        if hi > lo.plus(self.jump) {
            // Far from the run it would join: the run was not a jump, this may start one.
            self.drop_run();
        }
        self.run.push(at);
        let need = if self.max_at == Ts::MIN {
            CONFIRM_START
        } else {
            CONFIRM
        };
        if self.run.len() < need {
            return false;
        }
        let newest = self.run.iter().copied().max().unwrap_or(at);
        self.run.clear();
        if newest > self.max_at {
            self.max_at = newest;
            return true;
        }
        false
    }

    /// The input ended. A run still unconfirmed is accepted only if the clock never started (a
    /// file of one event has nothing to be an outlier against); otherwise its events were
    /// outliers. True when the clock moved.
    pub fn finish(&mut self) -> bool {
        if self.max_at == Ts::MIN
            && let Some(newest) = self.run.iter().copied().max()
        {
            self.run.clear();
            self.max_at = newest;
            return true;
        }
        self.drop_run();
        false
    }

    /// Events held back (candidates that moved nothing) since the last call.
    pub(crate) fn take_held_back(&mut self) -> u64 {
        std::mem::take(&mut self.held_back)
    }

    fn drop_run(&mut self) {
        self.held_back += self.run.len() as u64;
        self.run.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn t(s: i64) -> Ts {
        Ts(s * 1_000_000_000)
    }

    fn clock() -> SourceClock {
        SourceClock::new(Dur::from_secs(7 * DAY))
    }

    fn feed(c: &mut SourceClock, secs: impl IntoIterator<Item = i64>) {
        for s in secs {
            c.observe(t(s));
        }
    }

    #[test]
    fn the_first_events_start_the_clock_once_they_agree() {
        let mut c = clock();
        assert!(!c.observe(t(10)));
        assert_eq!(c.max_at(), Ts::MIN);
        assert!(c.observe(t(100)));
        assert_eq!(c.max_at(), t(100));
        assert!(c.observe(t(101)));
        assert!(!c.observe(t(50)), "behind: nothing moves");
        assert_eq!(c.take_held_back(), 0);
    }

    #[test]
    fn a_lone_outlier_moves_nothing_and_is_counted() {
        let mut c = clock();
        feed(&mut c, 0..100);
        // Months ahead, then two more like it (a request and its responses), then normal.
        feed(&mut c, [200 * DAY, 200 * DAY + 1, 200 * DAY + 2]);
        assert_eq!(c.max_at(), t(99));
        feed(&mut c, 100..200);
        assert_eq!(c.max_at(), t(199));
        assert_eq!(c.take_held_back(), 3);
    }

    #[test]
    fn an_outlier_on_the_first_line_cannot_anchor_the_clock() {
        let mut c = clock();
        feed(&mut c, [300 * DAY]);
        feed(&mut c, 0..20);
        assert_eq!(c.max_at(), t(19));
        assert_eq!(c.take_held_back(), 1);
    }

    #[test]
    fn traffic_that_resumes_after_days_is_followed() {
        let mut c = clock();
        feed(&mut c, 0..100);
        let resume = 30 * DAY;
        feed(&mut c, (0..CONFIRM as i64 - 1).map(|i| resume + i));
        assert_eq!(c.max_at(), t(99), "not yet confirmed");
        assert!(c.observe(t(resume + 100)));
        assert_eq!(c.max_at(), t(resume + 100));
        // From then on it is normal traffic.
        assert!(c.observe(t(resume + 101)));
        assert_eq!(c.take_held_back(), 0);
    }

    #[test]
    fn a_short_file_is_accepted_at_its_end_and_a_trailing_outlier_is_not() {
        let mut c = clock();
        feed(&mut c, [30]);
        assert_eq!(c.max_at(), Ts::MIN);
        assert!(c.finish());
        assert_eq!(c.max_at(), t(30));

        let mut c = clock();
        feed(&mut c, 0..50);
        feed(&mut c, [100 * DAY]);
        assert!(!c.finish());
        assert_eq!(c.max_at(), t(49));
        assert_eq!(c.take_held_back(), 1);
    }

    #[test]
    fn candidates_far_from_each_other_do_not_confirm_one_another() {
        let mut c = clock();
        feed(&mut c, 0..10);
        // Alternating outliers months apart: never CONFIRM in agreement.
        feed(&mut c, (0..40).map(|i| (100 + (i % 2) * 100) * DAY));
        assert_eq!(c.max_at(), t(9));
    }
}
